"""N-d scipy.signal.convolve / correlate: scipy's results and errors, fastconv.ndimage's kernels.

A 'valid' correlation of in1 zero-extended is a constant-mode ndimage correlation with the origin at
the kernel's first tap, so every mode is one fastconv.ndimage call (float64 sums in scipy's order,
multi-threaded); method="fft" is scipy.signal.fftconvolve, as in scipy.  Exported by fastconv.signal.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.signal import correlate as _scipy_correlate
from scipy.signal import fftconvolve as _fftconvolve

from ._geometry import signal_nd_geometry
from ._plan import plan_convolve_nd

__all__ = ["convolve", "correlate"]

_DOC = """{what} of two N-dimensional arrays (``scipy.signal.{name}``).

    Parameters
    ----------
    in1 : array_like
        First input.
    in2 : array_like
        Second input; the same number of dimensions as `in1`.
    mode : {{'full', 'valid', 'same'}}, optional
        'full' (default): the full discrete linear {noun}; 'valid': only the elements that do not
        rely on zero-padding (one input must be at least as large as the other in every filtered
        dimension); 'same': the size of `in1`, centred with respect to 'full'.
    method : {{'auto', 'direct', 'fft'}}, optional
        'direct': the sum over taps (fastconv's multi-threaded kernels, float64 accumulation);
        'fft': ``scipy.signal.fftconvolve``; 'auto' (default): the one the planner estimates is
        faster (always 'direct' for integer, bool and object data).
    axes : int, sequence of int or None, optional
        The axes to filter (default all).  `in2` must have size 1 along the others: one kernel
        applied to every index there (a batch of signals).

    Returns
    -------
    ndarray
        The {noun}, dtype ``numpy.result_type(in1, in2)`` (integers stay integers).

    Raises
    ------
    ValueError
        Different numbers of dimensions, an unknown `mode` or `method`, 'valid' with neither input
        at least as large as the other, bad `axes`: scipy's messages, before any computation.

    See Also
    --------
    fastconv.signal.{name2d} : The 2-D function with boundaries and batches.
    fastconv.ndimage.{nd} : The same sums with scipy.ndimage's boundary modes.

    Notes
    -----
    Every mode is a constant-mode (zero) correlation of fastconv.ndimage: 'full' zero-pads `in1`
    on the low side by the kernel's size minus one, 'valid' and 'full' put the origin at the
    kernel's first tap, 'same' at its centre, so the sums and their order are those of
    scipy.ndimage; results equal scipy.signal's direct method to rounding (bit for bit on the
    cases in tests/test_signal_nd.py).  float16, longdouble and object arrays run scipy's own loop.
    As in scipy, NaN or inf reaching the FFT method spreads over the whole output (a RuntimeWarning
    says so).

    Examples
    --------
    >>> import numpy as np, fastconv.signal
    >>> fastconv.signal.{name}(np.array([3, 4, 5, 6, 5, 4]), np.array([1, 2, 3]))
    {example}
"""


def _native(a):
    """Whether fastconv.ndimage computes this dtype (else scipy's loop does)."""
    return a.dtype.kind in "biu" or a.dtype in (np.float32, np.float64, np.complex64, np.complex128)


def _corr_direct(a, w, g, dtype):
    """The correlation of a with w (no conjugation here) over g.axes in mode g.mode, no swap."""
    from . import ndimage

    ax = g.axes
    k = dict(zip(ax, g.kernel, strict=True))
    if g.mode == "full":
        a = np.pad(a, [(k[i] - 1, 0) if i in k else (0, 0) for i in range(a.ndim)])
    origin = 0 if g.mode == "same" else [-(k[i] // 2) for i in ax]
    wk = w.reshape([w.shape[i] for i in ax]) if len(ax) != w.ndim else w
    # every tap, zeros included (ndimage leaves |w| <= eps out; scipy.signal sums 0 * nan = nan)
    out = ndimage._correlate_or_convolve(
        a, wk, dtype, "constant", 0.0, origin, False, ax, "auto", tap_eps=-1.0
    )
    if g.mode == "valid":
        out = out[tuple(slice(0, g.out_shape[i]) for i in range(a.ndim))]
    return out


def _reverse_conj(w, axes):
    w = w[tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(w.ndim))]
    return w.conj() if w.dtype.kind == "c" else w


def _run(in1, in2, mode, method, axes, flip):
    a, w = np.asarray(in1), np.asarray(in2)
    if a.ndim == w.ndim == 0:
        return a * (w if flip or w.dtype.kind != "c" else w.conj())
    g = signal_nd_geometry(a.shape, w.shape, mode, axes)
    dtype = np.result_type(a, w)
    how = plan_convolve_nd(g, a.shape, w.shape, dtype, method)
    if a.size == 0 or w.size == 0:
        return np.zeros(g.out_shape, dtype=dtype)
    if not flip:  # correlate(in1, in2) = convolve(in1, reverse(conj(in2)))
        w = _reverse_conj(w, g.axes)
    # from here: a convolution of a with w
    if how == "fft":
        if g.swap:  # convolution commutes
            a, w = w, a
        out = _fftconvolve(a, w, mode=g.mode, axes=None if axes is None else g.axes)
        if dtype.kind in "biu":
            out = np.round(out)
        flat = out.reshape(-1)
        if flat.size and not np.isfinite(flat[0]):
            warnings.warn(
                "Use of fft convolution on input with NAN or inf results in NAN or inf output. "
                "Consider using method='direct' instead.",
                RuntimeWarning,
                stacklevel=3,
            )
        return out.astype(dtype)
    if not (_native(a) and _native(w)):
        ref = _reverse_conj(w, g.axes)  # back to the correlation kernel scipy's loop takes
        return _scipy_correlate(a, ref, mode=g.mode, method="direct")
    if g.swap:  # convolution commutes
        a, w = w, a
    # convolving = correlating with w reversed; ndimage.correlate conjugates complex weights (as
    # numpy.correlate does), so they go in conjugated
    return _corr_direct(a, _reverse_conj(w, g.axes), g, dtype)


def convolve(in1, in2, mode="full", method="auto", *, axes=None):
    return _run(in1, in2, mode, method, axes, flip=True)


def correlate(in1, in2, mode="full", method="auto", *, axes=None):
    return _run(in1, in2, mode, method, axes, flip=False)


convolve.__doc__ = _DOC.format(
    what="Convolve",
    name="convolve",
    noun="convolution",
    name2d="convolve2d",
    nd="convolve",
    example="array([ 3, 10, 22, 28, 32, 32, 23, 12])",
)
correlate.__doc__ = _DOC.format(
    what="Cross-correlate",
    name="correlate",
    noun="cross-correlation",
    name2d="correlate2d",
    nd="correlate",
    example="array([ 9, 18, 26, 32, 32, 28, 13,  4])",
)
