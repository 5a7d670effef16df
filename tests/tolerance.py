"""The one tolerance table (DESIGN.md) and the one comparison every test uses.

float32 rtol 1e-4, float64 rtol 1e-10, relative to max |finite reference|, with no floor above the
dtype's tiny: a result whose largest reference value is 1e-6 must be right to 1e-10 in float32,
not to an absolute 1e-4.  NaN and inf are compared by placement: the same NaN mask, the same inf
mask with the same signs.
"""

import numpy as np

RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}

# Per-algorithm entries.  Transform-based algorithms (FFT, Winograd) round relative to the data
# entering the transform, not to each output: a transform mixes every tap and pixel of a tile,
# so even an output that is exactly 0 (a window over padding only) comes out as
# eps * max|x| * sum|w| noise (measured: 3.1e-10 in float32 from the FFT path for a 1x1 input
# whose outputs all read padding).  Their scale is therefore the bound on any output's sum of
# |terms|, max|x| * max_k sum|w_k| + max|b| (`transform_scale`), with the same rtol.  Direct
# algorithms (gemm, packed, pointwise, depthwise, grouped) add exact zeros and keep the output's
# own scale, max|reference|.
TERMS_SCALED = frozenset({"fft", "winograd"})


def rtol_for(dtype):
    """The table's rtol for a float or complex dtype (complex64 counts as float32)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        dtype = np.dtype(np.float32 if dtype.itemsize == 8 else np.float64)
    return RTOL[dtype]


def _as_real(a):
    """A complex array as its real and imaginary parts stacked; a real array as float64."""
    a = np.asarray(a)
    if a.dtype.kind == "c":
        return np.stack([a.real, a.imag]).astype(np.float64)
    return a.astype(np.float64)


def transform_scale(x, w, b=None):
    """max|x| * max_k sum|w[k]| + max|b| over the finite values: the scale of `TERMS_SCALED`."""

    def fmax(a):
        a = np.abs(np.asarray(a, dtype=np.float64))
        return float(np.max(a[np.isfinite(a)], initial=0.0))

    w = np.abs(np.asarray(w, dtype=np.float64))
    w = np.where(np.isfinite(w), w, 0.0).reshape(w.shape[0], -1) if w.size else w
    wsum = float(np.max(w.sum(axis=1), initial=0.0)) if w.size else 0.0
    return fmax(x) * wsum + (0.0 if b is None else fmax(b))


def assert_close(actual, reference, dtype=None, *, rtol=None, scale=None):
    """Assert `actual` equals `reference` to the table's tolerance, NaN and inf included.

    Parameters
    ----------
    actual, reference : array_like
        Same shape.  Complex arrays compare their real and imaginary parts.
    dtype : dtype, optional
        The computing dtype whose rtol applies (default: `actual`'s dtype).
    rtol : float, optional
        Overrides the table (for a documented per-algorithm entry only).
    scale : float, optional
        The scale of an algorithm in `TERMS_SCALED` (`transform_scale(x, w, b)`), in place of
        max |reference|.

    Checks: equal NaN masks; equal +inf and -inf masks; and at the positions finite in both,
    ``|actual - reference| <= rtol * max(max |finite reference|, tiny)`` (`scale` in place of
    max |finite reference| when given).
    """
    actual = np.asarray(actual)
    reference = np.asarray(reference)
    assert actual.shape == reference.shape, (actual.shape, reference.shape)
    dtype = np.dtype(dtype or actual.dtype)
    tol = rtol_for(dtype) if rtol is None else rtol
    tiny = float(np.finfo(dtype).tiny)
    if reference.size == 0:
        return
    a, r = _as_real(actual), _as_real(reference)
    for what, test in (
        ("NaN", np.isnan),
        ("+inf", np.isposinf),
        ("-inf", np.isneginf),
    ):
        ma, mr = test(a), test(r)
        if not np.array_equal(ma, mr):
            bad = np.argwhere(ma != mr)
            raise AssertionError(
                f"{what} at different places: {int(ma.sum())} in actual, {int(mr.sum())} in "
                f"reference; first difference at {tuple(bad[0])}: actual {a[tuple(bad[0])]}, "
                f"reference {r[tuple(bad[0])]}"
            )
    finite = np.isfinite(r)
    if not finite.any():
        return
    what = "max |reference|" if scale is None else "the algorithm's scale"
    if scale is None:
        scale = float(np.max(np.abs(r[finite])))
    scale = max(float(scale), tiny)
    err = float(np.max(np.abs(a[finite] - r[finite])))
    assert err <= tol * scale, f"max error {err:g} > {tol:g} * {scale:g} ({what})"
