"""scipy.signal-compatible 2-D convolution and correlation: convolve2d, correlate2d, choose_method.

Same signature, results, dtypes and errors as scipy.signal; multi-threaded, batched over leading
axes with `axes`, and run by a direct SIMD kernel, two 1-D passes (rank-1 kernels) or FFT.

How ``method="auto"`` chooses: fastconv._plan.plan_filter2d (the "2-D filters" section of the
planner) ranks direct, separable and FFT by a cost model whose constants were fitted to forced
runs of each method (benchmarks/scripts/signal_cutover.py), and picks the cheapest that applies:
separable only for a finite rank-1 kernel (an O(kh * kw) pivot test, run only when separable
could win), FFT only when no NaN/inf would be spread by it.  Small work runs on one thread, from
one padded copy, with the plan of repeated shapes cached.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import NamedTuple

import numpy as np

from . import _plan, _threads
from ._fft import correlate_valid_fft
from ._geometry import (
    filter_axes,
    filter_boundary,
    filter_dtype,
    filter_fill,
    filter_geometry,
    filter_mode,
    filter_swap,
)
from ._plan import kernels, resolve_backend
from ._signal_nd import convolve, correlate

__all__ = [
    "MethodChoice",
    "choose_method",
    "convolve",
    "convolve2d",
    "correlate",
    "correlate2d",
]

_METHODS = ("auto", "direct", "fft", "separable")

# Below this many multiply-adds a kernel call runs on one thread (border strips, tiny images).
_SERIAL_WORK = 1 << 18
# Rows of output per block in the separable kernel's workspace.
_SEP_ROWS = 32


class MethodChoice(NamedTuple):
    """What ``method="auto"`` would run, and why (returned by `choose_method`).

    Parameters
    ----------
    method : {'direct', 'fft', 'separable'}
        The method `correlate2d` / `convolve2d` run with ``method="auto"``.
    reason : str
        One sentence: the kernel and output sizes and the estimated time of the choice.

    See Also
    --------
    choose_method : Computes it.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.signal import choose_method
    >>> choice = choose_method(np.zeros((64, 64)), np.ones((3, 3)))
    >>> choice.method
    'direct'
    """

    method: str
    reason: str


# --------------------------------------------------------------------------------------------
# data facts the planner asks for (each only when it decides)


def _rank1_factors(w, work):
    """(col, row) with outer(col, row) == w to the work dtype's precision, or None.

    O(kh * kw), no LAPACK: pivot on the largest |w[i, j]| and compare w with
    outer(w[:, j], w[i, :]) / w[i, j].  None for a non-finite kernel (never separable) and when
    the factors would not put w's zeros and signs where w has them: then a NaN/inf in the image
    lands exactly where direct summation puts it (inf * 0 = NaN at the same taps).
    """
    w64 = np.asarray(w, dtype=np.float64)
    flat = np.abs(w64).ravel()
    if not np.isfinite(flat.sum()):
        return None
    i, j = divmod(int(np.argmax(flat)), w64.shape[1])
    piv = w64[i, j]
    if piv == 0:
        return np.zeros(w64.shape[0], work), np.zeros(w64.shape[1], work)
    col = w64[:, j] / piv
    row = w64[i, :]
    approx = np.multiply.outer(col, row)
    tol = 16 * np.finfo(work).eps * abs(piv)
    if np.abs(approx - w64).max() > tol or not np.array_equal(np.sign(approx), np.sign(w64)):
        return None
    return col.astype(work), row.astype(work)


def _integer_bound(x, w, fill):
    """An upper bound of |x| * sum |w| (fill included), as a float."""
    ksum = float(np.abs(w.astype(np.float64)).sum())
    if x.dtype.kind == "b":
        xmax = 1
    elif x.dtype.itemsize <= 2:
        info = np.iinfo(x.dtype)
        xmax = max(-int(info.min), int(info.max))
    else:
        xmax = max(abs(int(x.max())), abs(int(x.min()))) if x.size else 0
    return max(xmax, abs(int(fill))) * ksum


def _all_finite(*arrays):
    # a sum is non-finite iff some term is (or the finite sum overflows: then FFT is no good either)
    with np.errstate(invalid="ignore", over="ignore"):
        return all(bool(np.isfinite(np.sum(a))) for a in arrays)


# --------------------------------------------------------------------------------------------
# the compute paths: every one is a 'valid' correlation of the boundary-extended image


def _index_map(idx, n, boundary):
    """Source indices of extended positions `idx` (may be outside [0, n)) and the in-range mask."""
    if boundary == "wrap":
        return idx % n, None
    if boundary == "symm":
        m = idx % (2 * n)
        return np.where(m < n, m, 2 * n - 1 - m), None
    inside = (idx >= 0) & (idx < n)
    return np.clip(idx, 0, n - 1), inside


def _extended_block(x, rows, cols, boundary, fill):
    """ext(x)[:, rows, cols] as a new C-contiguous array (rows/cols: int ranges, maybe outside)."""
    _, H, W = x.shape
    ri, rin = _index_map(np.arange(*rows), H, boundary)
    ci, cin = _index_map(np.arange(*cols), W, boundary)
    blk = x[:, ri[:, None], ci[None, :]]
    if boundary == "fill":
        if not rin.all():
            blk[:, ~rin, :] = fill
        if not cin.all():
            blk[:, :, ~cin] = fill
    return np.ascontiguousarray(blk)


def _extended(x, g, fill):
    """The whole extended image the 'valid' correlation reads: (B, OH + kh - 1, OW + kw - 1).

    Slice copies (np.pad costs 30 us of Python on a small image); the index map only for
    pads wider than the image.
    """
    _, H, W = x.shape
    t, lf = g.top, g.left
    ph, pw = g.padded
    b, r = ph - H - t, pw - W - lf
    if t == b == lf == r == 0:
        return x
    if min(t, b, lf, r) < 0 or (g.boundary != "fill" and max(t, b) > H or max(lf, r) > W):
        return _extended_block(x, (-t, ph - t), (-lf, pw - lf), g.boundary, fill)
    if g.boundary == "fill":
        xp = np.full((x.shape[0], ph, pw), fill, dtype=x.dtype)
        xp[:, t : t + H, lf : lf + W] = x
        return xp
    xp = np.empty((x.shape[0], ph, pw), dtype=x.dtype)
    xp[:, t : t + H, lf : lf + W] = x
    mid = slice(lf, lf + W)
    if g.boundary == "wrap":
        xp[:, :t, mid] = xp[:, H : H + t, mid]
        xp[:, t + H :, mid] = xp[:, t : t + b, mid]
        xp[:, :, :lf] = xp[:, :, W : W + lf]
        xp[:, :, lf + W :] = xp[:, :, lf : lf + r]
    else:  # symm: mirror with the edge repeated
        xp[:, :t, mid] = xp[:, t : 2 * t, mid][:, ::-1]
        xp[:, t + H :, mid] = xp[:, t + H - b : t + H, mid][:, ::-1]
        xp[:, :, :lf] = xp[:, :, lf : 2 * lf][:, :, ::-1]
        xp[:, :, lf + W :] = xp[:, :, lf + W - r : lf + W][:, :, ::-1]
    return xp


def _run_valid(x, out, g, fill, call, one_copy):
    """Fill `out` (B, OH, OW) with the 'valid' correlation of ext(x), by `call(block, r0, c0)`.

    one_copy: one padded copy, one kernel call (small images: the copy costs less than the
    calls).  Otherwise the interior, whose windows lie inside x, reads x itself (no padded copy
    of a large image) and only the border strips are built from extended blocks.
    """
    _, H, W = x.shape
    _, oh, ow = out.shape
    kh, kw, t, lf = g.kh, g.kw, g.top, g.left
    ih, iw = H - kh + 1, W - kw + 1
    if one_copy or ih <= 0 or iw <= 0 or t < 0 or lf < 0:
        call(_extended(x, g, fill), 0, 0, None)
        return
    call(x, t, lf, None)
    strips = [
        (0, t, 0, ow),  # top
        (t + ih, oh, 0, ow),  # bottom
        (t, t + ih, 0, lf),  # left
        (t, t + ih, lf + iw, ow),  # right
    ]
    for r0, r1, c0, c1 in strips:
        if r1 > r0 and c1 > c0:
            blk = _extended_block(
                x, (r0 - t, r1 + kh - 1 - t), (c0 - lf, c1 + kw - 1 - lf), g.boundary, fill
            )
            # border strips are thin: a parallel region per strip costs more than it saves (and
            # on a loaded machine each barrier can wait a whole time slice for a descheduled thread)
            small = (r1 - r0) * (c1 - c0) * kh * kw * x.shape[0] < _SERIAL_WORK
            call(blk, r0, c0, 1 if small else None)


def _real_correlate(x, w, g, fill, plan, mod, factors=None):
    """'valid' correlation of ext(x) (B, H, W real, work dtype) with real w: (B, OH, OW)."""
    B = x.shape[0]
    nthreads = plan.nthreads
    if plan.method == "fft":
        return _fft_correlate(_extended(x, g, fill), w, nthreads)
    out = np.empty((B, g.out_h, g.out_w), dtype=x.dtype)
    kh, kw = g.kh, g.kw
    if plan.method == "separable":
        col, row = factors if factors is not None else _rank1_factors(w, x.dtype)
        col = np.ascontiguousarray(col, dtype=x.dtype)
        row = np.ascontiguousarray(row, dtype=x.dtype)

        def call(blk, r0, c0, nt):
            oh = blk.shape[1] - kh + 1
            ow = blk.shape[2] - kw + 1
            nblocks = B * -(-oh // _SEP_ROWS)
            nchunks = max(1, min(nthreads * 4, nblocks))
            rb = min(_SEP_ROWS, oh)
            work = np.empty((nchunks, rb + kh - 1, ow), dtype=x.dtype)
            mod.correlate_separable(blk, col, row, out, work, r0, c0, nt or nthreads)
    else:
        wc = np.ascontiguousarray(w, dtype=x.dtype)

        def call(blk, r0, c0, nt):
            mod.correlate_valid(blk, wc, out, r0, c0, nt or nthreads)

    _run_valid(x, out, g, fill, call, plan.one_copy)
    return out


def _fft_correlate(xp, w, nthreads):
    """'valid' correlation of a stack (B, Hp, Wp) by FFT: the single-channel case of the shared
    multi-channel routine (see fastconv._fft for why this padding length is exact)."""
    with np.errstate(invalid="ignore", over="ignore"):  # forced on NaN/inf: spread, no warning
        y, _ = correlate_valid_fft(xp[:, None], np.asarray(w, dtype=xp.dtype)[None, None], nthreads)
    return np.ascontiguousarray(y[:, 0])


def _taps_exotic(x, w, g, fill, dt):
    """Tap-by-tap NumPy loop in the output dtype itself (longdouble, clongdouble, and integers
    too large to be exact through float64): the same arithmetic (wrap-around included) as scipy."""
    xp = _extended(x.astype(dt, copy=False), g, fill)
    oh, ow = g.out_h, g.out_w
    out = np.zeros((x.shape[0], oh, ow), dtype=dt)
    for p in range(w.shape[0]):
        for q in range(w.shape[1]):
            out += w[p : p + 1, q : q + 1] * xp[:, p : p + oh, q : q + ow]
    return out


def _cmul_c99(a, b):
    """a * b elementwise as C99 multiplies complex numbers (Annex G, gcc's __muldc3), which is what
    scipy.signal's direct loop runs: a NaN+NaNj product of an infinite operand is recovered as
    an infinity (NumPy's multiply leaves it NaN)."""
    a, b = np.broadcast_arrays(a, b)
    A, B, C, D = a.real.copy(), a.imag.copy(), b.real.copy(), b.imag.copy()
    ac, bd, ad, bc = A * C, B * D, A * D, B * C
    x, y = ac - bd, ad + bc
    bad = np.isnan(x) & np.isnan(y)

    def pack(re, im):  # not re + 1j * im: 1j * inf is nan + inf j
        z = np.empty(re.shape, np.complex128)
        z.real, z.imag = re, im
        return z

    if not bad.any():
        return pack(x, y)
    recalc = np.zeros(bad.shape, bool)
    zinf = bad & (np.isinf(A) | np.isinf(B))
    winf = bad & (np.isinf(C) | np.isinf(D))
    for m, (p, q), (r, t) in ((zinf, (A, B), (C, D)), (winf, (C, D), (A, B))):
        if m.any():
            p[m] = np.copysign(np.isinf(p[m]).astype(float), p[m])
            q[m] = np.copysign(np.isinf(q[m]).astype(float), q[m])
            for v in (r, t):
                n = m & np.isnan(v)
                v[n] = np.copysign(0.0, v[n])
            recalc |= m
    rest = bad & ~recalc & (np.isinf(ac) | np.isinf(bd) | np.isinf(ad) | np.isinf(bc))
    if rest.any():
        for v in (A, B, C, D):
            n = rest & np.isnan(v)
            v[n] = np.copysign(0.0, v[n])
        recalc |= rest
    with np.errstate(invalid="ignore"):
        x = np.where(recalc, np.inf * (A * C - B * D), x)
        y = np.where(recalc, np.inf * (A * D + B * C), y)
    return pack(x, y)


def _taps_complex_c99(x, w, g, fill, dt):
    """Complex direct summation with C99 products, tap by tap: only for non-finite data."""
    xp = _extended(x.astype(dt, copy=False), g, fill)
    oh, ow = g.out_h, g.out_w
    out = np.zeros((x.shape[0], oh, ow), dtype=dt)
    with np.errstate(invalid="ignore", over="ignore"):
        for p in range(w.shape[0]):
            for q in range(w.shape[1]):
                out += _cmul_c99(xp[:, p : p + oh, q : q + ow], w[p, q]).astype(dt)
    return out


def _plan_for(x, w, g, fill, method, backend, nthreads):
    """Ask the planner, with the data facts as lazy tests: (plan, separable factors or None)."""
    facts = {}

    def rank1():
        parts = [w.real, w.imag] if w.dtype.kind == "c" else [w]
        got = [_rank1_factors(p, g.work) for p in parts]
        facts["factors"] = got
        return all(f is not None for f in got)

    def finite():
        return _all_finite(x, w) and bool(np.isfinite(fill))

    def exact():
        return _integer_bound(x, w, fill)

    plan = _plan.plan_filter2d(
        g, method, backend, nthreads, rank1=rank1, finite=finite, exact=exact
    )
    return plan, facts.get("factors")


def _correlate_stack(x, w, g, fill, method, backend, plan=None):
    """Correlate every image of x (B, H, W) with w (2-D, already conjugated/flipped).

    `plan` overrides the planner (benchmarks/scripts/signal_cutover.py times forced plans).
    """
    dt = g.dtype
    factors = None
    if plan is None:
        plan, factors = _plan_for(x, w, g, fill, method, backend, _threads.get_num_threads())
    else:
        method = plan.method
    if plan.method == "taps":
        return _taps_exotic(x, w.astype(dt), g, fill, dt)
    if plan.method == "separable" and method == "separable" and factors is None:
        got = [
            _rank1_factors(p, g.work) for p in ([w.real, w.imag] if w.dtype.kind == "c" else [w])
        ]
        if any(f is None for f in got):
            raise ValueError(
                f"method='separable' needs a finite rank-1 kernel (in2 of shape {w.shape} is "
                "not); use method='auto', 'direct' or 'fft'"
            )
        factors = got
    work = g.work
    mod = None if plan.method == "fft" else kernels(plan.backend, "signal")
    if plan.backend == "cython" and plan.method != "fft":
        _threads.mark_pools_started()
    cplx = dt.kind == "c"
    if not cplx:
        xi = x if x.dtype == work and x.flags.c_contiguous else np.ascontiguousarray(x, work)
        r = _real_correlate(xi, w, g, fill, plan, mod, factors and factors[0])
        if dt.kind in "iu":
            if plan.method != "direct":
                np.rint(r, out=r)
            return r.astype(np.int64).astype(dt)
        return r
    # complex = combinations of real correlations; real and imaginary image parts share one call.
    # Zero parts are skipped only for finite data: scipy multiplies complex numbers, so a zero
    # imaginary part times inf is NaN there, and must be here too.
    xr = [x.real, x.imag]
    fills = [complex(fill).real, complex(fill).imag]
    wr = [w.real, w.imag]
    skip = _all_finite(x, w) and bool(np.isfinite(complex(fill)))
    if not skip and method == "auto":
        return _taps_complex_c99(x, w.astype(dt), g, fill, dt)
    res = {}
    for i, xpart in enumerate(xr):
        if skip and i and fills[i] == 0 and not np.any(xpart):
            continue
        xpart = np.ascontiguousarray(xpart, dtype=work)
        for j, wpart in enumerate(wr):
            if skip and j and not np.any(wpart):
                continue
            f = None if factors is None else factors[j]
            res[i, j] = _real_correlate(xpart, wpart, g, fills[i], plan, mod, f)
    out = np.zeros((g.batch, g.out_h, g.out_w), dtype=dt)
    for (i, j), r in res.items():
        if i == 0 and j == 0:
            out.real += r
        elif i == 1 and j == 1:
            out.real -= r
        else:
            out.imag += r
    return out


class _Setup(NamedTuple):
    """Everything about a call that depends only on shapes, dtypes and flags (cached)."""

    ax: tuple
    swap: bool  # 'valid' with the image smaller: in2 becomes the image
    batched_swap: bool  # ... and with batch axes: one 2-D call per image
    dt: np.dtype
    geom: object  # FilterGeometry, None when batched_swap


def _axes_arg(axes):
    """axes as a hashable tuple for the cache; bools are not axes."""
    try:
        items = tuple(axes)
    except TypeError:
        raise TypeError(f"axes must be a pair of ints, got {axes!r}") from None
    for a in items:
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, (numbers.Integral, np.integer)):
            raise TypeError(f"axes must be a pair of ints (not bools), got {axes!r}")
    if len(items) != 2:
        raise ValueError(f"axes must be a pair of ints, got {axes!r}")
    return tuple(int(a) for a in items)


@functools.lru_cache(maxsize=256)
def _setup(s1_full, dt1, s2, dt2, mode, boundary, axes, method, backend, corr):
    name = "correlate2d" if corr else "convolve2d"
    nd1, nd2 = len(s1_full), len(s2)
    if axes is None:
        if not nd1 == nd2 == 2:
            raise ValueError(
                f"{name} inputs must both be 2-D arrays (got in1.ndim={nd1}, "
                f"in2.ndim={nd2}; pass axes=(-2, -1) to filter a stack of images)"
            )
        ax = (0, 1)
    else:
        if nd2 != 2:
            raise ValueError(f"{name}: in2 must be a 2-D kernel, got in2.ndim={nd2}")
        if nd1 < 2:
            raise ValueError(f"{name}: in1 must have at least 2 dimensions, got {nd1}")
        ax = filter_axes(axes, nd1)
    mode = filter_mode(mode)
    bnd = filter_boundary(boundary)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    resolve_backend(backend, "signal")
    dt = filter_dtype(dt1, dt2, name)
    n1 = math.prod(s1_full)
    n2 = math.prod(s2)
    if n1 == 0 or n2 == 0:
        which, shp = ("in1", s1_full) if n1 == 0 else ("in2", s2)
        raise ValueError(f"{name}: {which} is empty (shape {shp})")
    s1 = (s1_full[ax[0]], s1_full[ax[1]])
    lead = math.prod(s1_full) // (s1[0] * s1[1])
    swap = filter_swap(mode, s1, s2)
    if swap and nd1 > 2:
        return _Setup(ax, True, True, dt, None)
    img_hw, k_hw = (s2, s1) if swap else (s1, s2)
    geom = filter_geometry(lead, img_hw, k_hw, mode, bnd, corr, dt)
    return _Setup(ax, swap, False, dt, geom)


def _prepare(in1, in2, mode, boundary, fillvalue, axes, method, backend, corr):
    """Validate (cached on shapes, dtypes and flags) and bring the data into the kernels' layout:
    (setup, x (B, H, W), w (kh, kw) conjugated/flipped, fill); x is None for a batched swap."""
    a1 = np.asarray(in1)
    a2 = np.asarray(in2)
    key_axes = None if axes is None else _axes_arg(axes)
    try:
        st = _setup(
            a1.shape, a1.dtype, a2.shape, a2.dtype, mode, boundary, key_axes, method, backend, corr
        )
    except TypeError as e:  # an unhashable flag: validate uncached (raises the right error)
        if "unhashable" not in str(e):
            raise
        st = _setup.__wrapped__(
            a1.shape, a1.dtype, a2.shape, a2.dtype, mode, boundary, key_axes, method, backend, corr
        )
    if st.batched_swap:
        return st, a1, a2, None
    dt, g = st.dt, st.geom
    fill = filter_fill(fillvalue, dt) if g.boundary == "fill" else 0
    last = st.ax == (a1.ndim - 2, a1.ndim - 1)
    img = a1 if last else np.moveaxis(a1, st.ax, (-2, -1))
    if st.swap:
        img, ker = a2, img
    else:
        ker = a2
    k = ker.astype(dt, copy=False)
    if corr:
        w = np.conj(k) if dt.kind == "c" else k
    else:
        w = k[::-1, ::-1]
    x = img.reshape((-1,) + img.shape[-2:])
    if dt.kind in "fc" and dt.itemsize <= (16 if dt.kind == "c" else 8):
        x = x.astype(dt, copy=False)
    return st, x, w, fill


def _dispatch(in1, in2, mode, boundary, fillvalue, axes, method, backend, corr):
    st, x, w, fill = _prepare(in1, in2, mode, boundary, fillvalue, axes, method, backend, corr)
    if st.batched_swap:
        # each image becomes the kernel slid over in2: one 2-D call per image
        img = np.moveaxis(x, st.ax, (-2, -1))
        lead = img.shape[:-2]
        outs = [
            _dispatch(im, w, mode, boundary, fillvalue, None, method, backend, corr)
            for im in img.reshape((-1,) + img.shape[-2:])
        ]
        res = np.stack(outs).reshape(lead + outs[0].shape)
        return np.moveaxis(res, (-2, -1), st.ax)
    res = _correlate_stack(x, w, st.geom, fill, method, backend)
    a1 = np.asarray(in1)
    last = st.ax == (a1.ndim - 2, a1.ndim - 1)
    if a1.ndim == 2:
        res = res[0]
        if st.swap and corr:
            res = res[::-1, ::-1].copy()
        return res if last else res.T
    lead = tuple(s for i, s in enumerate(a1.shape) if i not in st.ax)
    res = res.reshape(lead + res.shape[-2:])
    return res if last else np.moveaxis(res, (-2, -1), st.ax)


_DOC_COMMON = """
    Parameters
    ----------
    in1 : array_like
        First input: a 2-D image, or with `axes` an array of any rank whose two `axes` are filtered.
    in2 : array_like
        Second input, 2-D.  Should have the same number of dimensions as `in1` (without `axes`).
    mode : {{'full', 'valid', 'same'}}, optional
        ``full``: the full discrete linear {what}, shape ``in1 + in2 - 1`` per axis (default).
        ``valid``: only elements that do not rely on the boundary, shape ``in1 - in2 + 1``; one
        input must be at least as large as the other in every dimension, and the larger is used as
        the image (scipy's swap rule).
        ``same``: the same size as `in1`, centred with respect to the ``full`` output.
    boundary : {{'fill', 'wrap', 'symm'}}, optional
        ``fill``: pad with `fillvalue` (default); ``wrap`` (or ``circular``): periodic;
        ``symm`` (or ``symmetric``): mirror, edge included (``d c b a | a b c d | d c b a``).
    fillvalue : scalar, optional
        Value to pad with for ``boundary='fill'``.  Default 0.
    axes : pair of int, optional
        Keyword beyond scipy: the two axes of `in1` to filter; every other axis is a batch axis and
        the whole stack runs in one multi-threaded call.  Default: `in1` must be 2-D.
    method : {{'auto', 'direct', 'fft', 'separable'}}, optional
        Keyword beyond scipy.  ``auto`` (default) picks by measured cut-overs (see
        `choose_method`); ``separable`` needs a rank-1 kernel; ``fft`` is exact only to rounding.
    backend : {{'auto', 'numba', 'cython'}}, optional
        Keyword-only: which compiled kernels run (both give the same results).

    Returns
    -------
    out : ndarray
        The {what} in scipy's dtype: the inputs' common type (integers stay integers, with
        scipy's wrap-around on overflow; complex64 and float32 are kept).

    Raises
    ------
    ValueError
        ndim other than 2 without `axes`, empty inputs, unknown `mode`/`boundary`/`method`,
        a `fillvalue` that is not one value of the output type, 'valid' with neither input at least
        as large as the other, unsupported dtypes (bool, float16, object).
"""


def convolve2d(
    in1, in2, mode="full", boundary="fill", fillvalue=0, *, axes=None, method="auto", backend="auto"
):
    """Convolve two 2-D arrays: scipy.signal.convolve2d, multi-threaded and batched.
    {common}
    See Also
    --------
    correlate2d, choose_method, scipy.signal.convolve2d

    Notes
    -----
    Empty inputs raise ValueError (scipy returns arrays of zeros or, for some shapes,
    uninitialised memory).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.signal import convolve2d
    >>> convolve2d([[1, 2, 3], [3, 4, 5]], [[2, 3, 4], [4, 5, 6]])
    array([[ 2,  7, 16, 17, 12],
           [10, 30, 62, 58, 38],
           [12, 31, 58, 49, 30]])
    >>> stack = np.ones((4, 8, 8))
    >>> convolve2d(stack, np.ones((3, 3)), mode="same", axes=(-2, -1)).shape
    (4, 8, 8)
    """
    return _dispatch(in1, in2, mode, boundary, fillvalue, axes, method, backend, False)


def correlate2d(
    in1, in2, mode="full", boundary="fill", fillvalue=0, *, axes=None, method="auto", backend="auto"
):
    """Cross-correlate two 2-D arrays: scipy.signal.correlate2d, multi-threaded and batched.
    {common}
    See Also
    --------
    convolve2d, choose_method, scipy.signal.correlate2d

    Notes
    -----
    ``out[i, j] = sum_{{p, q}} in1[i + p - t, j + q - l] * conj(in2[p, q])`` over the
    extended `in1`.  As in scipy, when 'valid' mode swaps the inputs the result is computed
    with the roles exchanged and reversed.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.signal import correlate2d
    >>> correlate2d([[1, 2], [3, 4]], [[1, 0], [0, 1]], mode="same")
    array([[5, 2],
           [3, 4]])
    """
    return _dispatch(in1, in2, mode, boundary, fillvalue, axes, method, backend, True)


convolve2d.__doc__ = convolve2d.__doc__.format(common=_DOC_COMMON.format(what="convolution"))
correlate2d.__doc__ = correlate2d.__doc__.format(common=_DOC_COMMON.format(what="correlation"))


def choose_method(
    in1, in2, mode="full", boundary="fill", fillvalue=0, *, axes=None, correlate=True
):
    """Which method ``method="auto"`` runs for these inputs, and why.

    Parameters
    ----------
    in1, in2 : array_like
        The image and the kernel, as for `correlate2d` / `convolve2d`.
    mode : {'full', 'valid', 'same'}, optional
        Output size, as for `correlate2d` (default ``'full'``).
    boundary : {'fill', 'wrap', 'symm'}, optional
        Boundary handling, as for `correlate2d` (default ``'fill'``).
    fillvalue : scalar, optional
        Padding value for ``boundary='fill'`` (default 0).
    axes : pair of int, optional
        The two axes of `in1` to filter, as for `correlate2d`; default: `in1` is 2-D.
    correlate : bool, optional
        True for `correlate2d` (default), False for `convolve2d`.

    Returns
    -------
    MethodChoice
        ``(method, reason)``: method one of ``'direct'``, ``'fft'``, ``'separable'``; reason a
        sentence with the estimated times of the candidates.

    Raises
    ------
    ValueError
        The arguments `correlate2d` would refuse, with the same messages.

    See Also
    --------
    correlate2d, convolve2d
    MethodChoice : The result's fields.

    Notes
    -----
    The same planner call as the real path (fastconv._plan.plan_filter2d): the cheapest of the
    direct kernel, two 1-D passes (finite rank-1 kernels) and FFT by a cost model fitted on this
    machine.  Inputs with NaN/inf (fill value included) never go to FFT, and integer inputs only where rounding the
    floating result is provably exact.  longdouble/clongdouble and integers too large for float64
    run a tap-by-tap loop in their own dtype (reported as ``'direct'``).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.signal import choose_method
    >>> img = np.zeros((512, 512))
    >>> k = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1])  # rank 1: two 1-D passes of 5 taps
    >>> choose_method(img, k, mode="same").method
    'separable'
    >>> choose_method(img, np.eye(5), mode="same").method
    'direct'
    """
    st, x, w, fill = _prepare(in1, in2, mode, boundary, fillvalue, axes, "auto", "auto", correlate)
    if st.batched_swap:
        # 'valid' with each image smaller than in2: every image is slid over in2 as the kernel
        img = np.moveaxis(x, st.ax, (-2, -1))
        got = [
            choose_method(im, w, mode, boundary, fillvalue, correlate=correlate)
            for im in img.reshape((-1,) + img.shape[-2:])
        ]
        methods = sorted({c.method for c in got})
        if len(methods) == 1:
            return MethodChoice(methods[0], "per image, in2 as the image: " + got[0].reason)
        counts = ", ".join(f"{m}: {sum(c.method == m for c in got)}" for m in methods)
        return MethodChoice(got[0].method, f"per image, in2 as the image; images differ ({counts})")
    plan, _ = _plan_for(x, w, st.geom, fill, "auto", "auto", _threads.get_num_threads())
    method = "direct" if plan.method == "taps" else plan.method
    reason = plan.reason
    if st.swap:
        reason = "'valid' mode with in1 smaller than in2: inputs swapped; " + reason
    return MethodChoice(method, reason)
