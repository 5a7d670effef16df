"""scipy.signal-compatible 2-D convolution and correlation: convolve2d, correlate2d, choose_method.

Same signature, results, dtypes and errors as scipy.signal; multi-threaded, batched over leading
axes with `axes`, and run by a direct SIMD kernel, two 1-D passes (rank-1 kernels) or FFT.

How ``method="auto"`` chooses.  Measured on this machine (2 cores AMD Zen 4 with AVX-512, 2 threads,
float64, 2048x2048 image, kernel calls only, best of 5; the machine was shared, so these are
lower-load snapshots, not stable figures):

======  ===========  ==============
kernel  direct (ms)  separable (ms)
======  ===========  ==============
3x3          4.2           3.3
5x5          6.1           4.6
7x7          9.5           5.4
15x15      ~125 (f64)     ~10 (f32)
======  ===========  ==============

scipy.signal.fftconvolve of the same image took 134-136 ms for 5x5 to 31x31 kernels (single
thread).  The rates below come from these: direct about 35-45 GFLOP/s (2 * taps * pixels / time),
separable a rank-1 kernel at (kh + kw) taps per pixel.  The FFT rate is an estimate still to be
measured on a quiet machine with ``benchmarks/scripts/signal_speed.py --cutover``.  Model: direct costs
``taps * pixels / 20e9`` s, FFT ``5 * N * log2(N) / 3.5e9`` s, separable
``(kh + kw) * pixels / 12e9`` s; a rank-1 kernel with kh, kw >= 2 is always separable (it beat
direct from 3x3 up), otherwise the cheaper of direct and FFT runs.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from . import _threads
from ._fft import correlate_valid_fft, fft_len
from ._plan import kernels, resolve_backend
from ._separable import svd_separate

__all__ = ["MethodChoice", "choose_method", "convolve2d", "correlate2d"]

_MODES = ("full", "same", "valid")
_BOUNDARIES = {"fill": "fill", "pad": "fill", "wrap": "wrap", "circular": "wrap"}
_BOUNDARIES.update({"symm": "symm", "symmetric": "symm"})
_METHODS = ("auto", "direct", "fft", "separable")

# Cost-model rates (see the module docstring for the measurements they come from).
_DIRECT_RATE = 20e9  # taps * output pixels per second, 2 threads
_SEPARABLE_RATE = 12e9  # (kh + kw) * output pixels per second
_FFT_RATE = 3.5e9  # 5 N log2 N flops per second (scipy.fft, 2 workers)
# float32 runs the direct kernels at about twice the float64 rate (twice the lanes).
_F32_SPEEDUP = 1.8
# Integers are exact through float64 while |x| * sum|k| stays below 2**53 (direct) or, for the
# paths that round (separable, FFT), far enough below it that rounding errors stay < 0.5.
_EXACT_DIRECT = 2.0**53
_EXACT_ROUNDED = 2.0**36
# Below this many multiply-adds a kernel call runs on one thread (border strips, tiny images).
_SERIAL_WORK = 1 << 18
# Rows of output per block in the separable kernel's workspace.
_SEP_ROWS = 32


class MethodChoice(NamedTuple):
    """What ``method="auto"`` would run, and why."""

    method: str
    reason: str


# --------------------------------------------------------------------------------------------
# validation (scipy's rules, scipy's error types and messages, with the detail added)


def _check_mode(mode):
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"Acceptable mode flags are 'valid', 'same', or 'full'. (mode={mode!r})")
    return mode


def _check_boundary(boundary):
    if not isinstance(boundary, str) or boundary not in _BOUNDARIES:
        raise ValueError(
            "Acceptable boundary flags are 'fill', 'circular' (or 'wrap'), and 'symmetric' "
            f"(or 'symm'). (boundary={boundary!r})"
        )
    return _BOUNDARIES[boundary]


def _check_axes(axes, ndim):
    try:
        ax = tuple(int(a) for a in axes)
    except TypeError:
        raise TypeError(f"axes must be a pair of ints, got {axes!r}") from None
    if len(ax) != 2 or not all(isinstance(a, (numbers.Integral, np.integer)) for a in axes):
        raise ValueError(f"axes must be a pair of ints, got {axes!r}")
    norm = []
    for a in ax:
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(f"axes {axes!r} out of range for in1.ndim={ndim}")
        norm.append(a % ndim)
    if norm[0] == norm[1]:
        raise ValueError(f"axes must be two different axes, got {axes!r}")
    return tuple(norm)


def _typenum(a1, a2, name):
    dt = np.result_type(a1.dtype, a2.dtype)
    if dt.kind not in "iufc" or dt == np.float16:
        raise ValueError(
            f"{name} not available for this type. (inputs {a1.dtype} and {a2.dtype} compute in "
            f"{dt}; supported: integers, float32/64/longdouble, complex64/128/clongdouble)"
        )
    return dt


def _fill_value(fillvalue, dt):
    """scipy's conversion of `fillvalue` to the output dtype (including its error messages)."""
    try:
        fv = np.array(fillvalue, dtype=dt)
    except (TypeError, ValueError, OverflowError):
        # scipy retries through complex and refuses whatever needed that route
        np.array(fillvalue, dtype=np.complex128)  # raises scipy's error for malformed values
        raise ValueError(
            "could not cast `fillvalue` directly to the output type (it was first converted to "
            f"complex). (fillvalue={fillvalue!r}, output dtype {dt})"
        ) from None
    if fv.size != 1:
        if fv.size == 0:
            raise ValueError("`fillvalue` cannot be an empty array.")
        raise ValueError(
            f"`fillvalue` must be scalar or an array with one element. (got shape {fv.shape})"
        )
    return fv.reshape(()).item()


def _swap_needed(mode, s1, s2):
    if mode != "valid":
        return False
    ok1 = s1[0] >= s2[0] and s1[1] >= s2[1]
    ok2 = s2[0] >= s1[0] and s2[1] >= s1[1]
    if not (ok1 or ok2):
        raise ValueError(
            "For 'valid' mode, one must be at least as large as the other in every dimension "
            f"(shapes {tuple(s1)} and {tuple(s2)})"
        )
    return not ok1


def _geometry(mode, hw, khw, corr):
    """Output size, (top, left) pad: out[i, j] = sum w[p, q] * ext(x)[i + p - t, j + q - lf]."""
    (H, W), (kh, kw) = hw, khw
    if mode == "full":
        return (H + kh - 1, W + kw - 1), (kh - 1, kw - 1)
    if mode == "valid":
        return (H - kh + 1, W - kw + 1), (0, 0)
    # scipy centres 'same' at kh // 2 for correlation and (kh - 1) // 2 for convolution
    if corr:
        return (H, W), ((kh - 1) // 2, (kw - 1) // 2)
    return (H, W), (kh // 2, kw // 2)


# --------------------------------------------------------------------------------------------
# method choice


def _work_dtype(dt):
    if dt.kind in "iu":
        return np.dtype(np.float64)
    if dt.kind == "c":
        return np.dtype(np.float32) if dt == np.complex64 else np.dtype(np.float64)
    return np.dtype(np.float32) if dt == np.float32 else np.dtype(np.float64)


def _is_rank1(w, work=np.float64):
    """rank-1 test: both the real and imaginary parts are rank 1 to the work dtype's precision."""
    parts = [w.real, w.imag] if np.iscomplexobj(w) else [w]
    for part in parts:
        if not np.any(part):
            continue
        _, _, s = svd_separate(part, rank=2)
        if s.size > 1 and s[1] > max(part.shape) * np.finfo(work).eps * 16 * s[0]:
            return False
    return True


def _decide(nimg, out_hw, k_hw, padded_hw, dtype, rank1, exact_bound):
    """(method, reason) for a batch of `nimg` images; costs in seconds from the measured rates."""
    kh, kw = k_hw
    pix = nimg * out_hw[0] * out_hw[1]
    speed = _F32_SPEEDUP if dtype == np.float32 else 1.0
    direct = kh * kw * pix / (_DIRECT_RATE * speed)
    fh, fw = fft_len(padded_hw[0]), fft_len(padded_hw[1])
    n = fh * fw
    # forward of the image, product, inverse; the kernel's transform is small against them
    fft = nimg * 2 * 5 * n * math.log2(max(n, 2)) / 2 / _FFT_RATE
    integer = exact_bound is not None
    if rank1 and kh >= 2 and kw >= 2 and (not integer or exact_bound < _EXACT_ROUNDED):
        sep = (kh + kw) * pix / (_SEPARABLE_RATE * speed)
        return "separable", (
            f"rank-1 {kh}x{kw} kernel: two 1-D passes ({kh + kw} taps per pixel, est. "
            f"{sep * 1e3:.2f} ms) instead of {kh * kw} (direct, est. {direct * 1e3:.2f} ms)"
        )
    if integer and exact_bound >= _EXACT_ROUNDED:
        return "direct", (
            "integer input with |x| * sum|k| >= 2**36: only the direct kernel is exact "
            "(FFT/separable would need rounding)"
        )
    if fft < direct:
        return "fft", (
            f"{kh}x{kw} kernel: FFT est. {fft * 1e3:.2f} ms < direct est. {direct * 1e3:.2f} ms "
            f"({kh * kw} taps per pixel)"
        )
    return "direct", (
        f"{kh}x{kw} kernel: direct est. {direct * 1e3:.2f} ms <= FFT est. {fft * 1e3:.2f} ms"
        + ("" if kh * kw == 1 or not rank1 else "; rank-1 but too thin for two passes")
        + ("" if rank1 else "; kernel is not rank-1")
    )


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


def _extended(x, out_hw, k_hw, tl, boundary, fill):
    """The whole extended image the 'valid' correlation reads: (B, OH + kh - 1, OW + kw - 1)."""
    (oh, ow), (kh, kw), (t, lf) = out_hw, k_hw, tl
    _, H, W = x.shape
    b = oh + kh - 1 - H - t
    r = ow + kw - 1 - W - lf
    if t >= 0 and lf >= 0 and b >= 0 and r >= 0:
        if t == b == lf == r == 0:
            return x
        pad = ((0, 0), (t, b), (lf, r))
        if boundary == "fill":
            return np.pad(x, pad, mode="constant", constant_values=fill)
        return np.pad(x, pad, mode="wrap" if boundary == "wrap" else "symmetric")
    return _extended_block(x, (-t, oh + kh - 1 - t), (-lf, ow + kw - 1 - lf), boundary, fill)


def _run_valid(x, out, k_hw, tl, boundary, fill, call):
    """Fill `out` (B, OH, OW) with the 'valid' correlation of ext(x), by `call(block, r0, c0)`.

    The interior, whose windows lie inside x, reads x itself (no padded copy of the image); only
    the border strips are built from extended blocks.
    """
    _, H, W = x.shape
    _, oh, ow = out.shape
    (kh, kw), (t, lf) = k_hw, tl
    ih, iw = H - kh + 1, W - kw + 1
    if ih <= 0 or iw <= 0 or t < 0 or lf < 0:
        call(_extended(x, (oh, ow), k_hw, tl, boundary, fill), 0, 0, None)
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
                x, (r0 - t, r1 + kh - 1 - t), (c0 - lf, c1 + kw - 1 - lf), boundary, fill
            )
            # border strips are thin: a parallel region per strip costs more than it saves (and
            # on a loaded machine each barrier can wait a whole time slice for a descheduled thread)
            small = (r1 - r0) * (c1 - c0) * kh * kw * x.shape[0] < _SERIAL_WORK
            call(blk, r0, c0, 1 if small else None)


def _real_correlate(x, w, out_hw, tl, boundary, fill, method, mod, nthreads):
    """'valid' correlation of ext(x) (B, H, W real, work dtype) with real w: (B, OH, OW)."""
    B = x.shape[0]
    k_hw = w.shape
    if method == "fft":
        return _fft_correlate(_extended(x, out_hw, k_hw, tl, boundary, fill), w, nthreads)
    out = np.empty((B,) + tuple(out_hw), dtype=x.dtype)
    if method == "separable":
        cols, rows, _ = svd_separate(w, rank=1)
        col = np.ascontiguousarray(cols[0], dtype=x.dtype)
        row = np.ascontiguousarray(rows[0], dtype=x.dtype)
        kh, kw = k_hw

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

    _run_valid(x, out, k_hw, tl, boundary, fill, call)
    return out


def _fft_correlate(xp, w, nthreads):
    """'valid' correlation of a stack (B, Hp, Wp) by FFT: the single-channel case of the shared
    multi-channel routine (see fastconv._fft for why this padding length is exact)."""
    y, _ = correlate_valid_fft(xp[:, None], np.asarray(w, dtype=xp.dtype)[None, None], nthreads)
    return np.ascontiguousarray(y[:, 0])


def _taps_exotic(x, w, out_hw, tl, boundary, fill, dt):
    """Tap-by-tap NumPy loop in the output dtype itself (longdouble, clongdouble, and integers
    too large to be exact through float64): the same arithmetic (wrap-around included) as scipy."""
    xp = _extended(x.astype(dt, copy=False), out_hw, w.shape, tl, boundary, fill)
    oh, ow = out_hw
    out = np.zeros((x.shape[0], oh, ow), dtype=dt)
    for p in range(w.shape[0]):
        for q in range(w.shape[1]):
            out += w[p : p + 1, q : q + 1] * xp[:, p : p + oh, q : q + ow]
    return out


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


def _correlate_stack(x, w, mode, boundary, fillvalue, method, backend, corr, dt, name):
    """Correlate every image of x (B, H, W) with w (2-D, already conjugated/flipped)."""
    B, H, W = x.shape
    out_hw, tl = _geometry(mode, (H, W), w.shape, corr)
    fill = _fill_value(fillvalue, dt) if boundary == "fill" else 0
    if dt.kind == "f" and dt.itemsize > 8 or dt.kind == "c" and dt.itemsize > 16:
        return _taps_exotic(x, w.astype(dt), out_hw, tl, boundary, fill, dt)
    exact_bound = None
    if dt.kind in "iu":
        exact_bound = _integer_bound(x, w, fill)
        if exact_bound >= _EXACT_DIRECT:
            return _taps_exotic(x, w.astype(dt), out_hw, tl, boundary, fill, dt)
    work = _work_dtype(dt)
    chosen = method
    if method == "auto":
        chosen, _ = _decide(
            B * (2 if np.iscomplexobj(x) else 1),
            out_hw,
            w.shape,
            (out_hw[0] + w.shape[0] - 1, out_hw[1] + w.shape[1] - 1),
            work,
            _is_rank1(w, work),
            exact_bound,
        )
        if chosen == "fft" and not (np.isfinite(x).all() and np.isfinite(fill)):
            chosen = "direct"  # FFT would smear a NaN/inf over the whole image
    elif method == "separable" and not _is_rank1(w, work):
        raise ValueError(
            f"method='separable' needs a rank-1 kernel (in2 of shape {w.shape} is not); "
            "use method='auto', 'direct' or 'fft'"
        )
    bk = resolve_backend(backend, "signal")
    mod = None if chosen == "fft" else kernels(bk, "signal")
    nthreads = _threads.get_num_threads()
    if bk == "cython" and chosen != "fft":
        _threads.mark_pools_started()

    # complex = combinations of real correlations; real and imaginary image parts share one call
    xr = [x.real, x.imag] if np.iscomplexobj(x) else [x]
    fills = [complex(fill).real, complex(fill).imag] if np.iscomplexobj(x) else [fill]
    wr = [w.real, w.imag] if np.iscomplexobj(w) else [w]
    res = {}
    for i, xi in enumerate(xr):
        if i and fills[i] == 0 and not np.any(xi):
            continue
        xi = np.ascontiguousarray(xi, dtype=work)
        for j, wj in enumerate(wr):
            if not np.any(wj) and len(wr) > 1:
                continue
            wj = np.ascontiguousarray(wj, dtype=work)
            res[i, j] = _real_correlate(
                xi, wj, out_hw, tl, boundary, fills[i], chosen, mod, nthreads
            )
    if dt.kind in "iu":
        r = res[0, 0]
        if chosen != "direct":
            np.rint(r, out=r)
        return r.astype(np.int64).astype(dt)
    if dt.kind == "f":
        return res[0, 0]
    out = np.zeros((B,) + tuple(out_hw), dtype=dt)
    for (i, j), r in res.items():
        if i == 0 and j == 0:
            out.real += r
        elif i == 1 and j == 1:
            out.real -= r
        else:
            out.imag += r
    return out


def _dispatch(in1, in2, mode, boundary, fillvalue, axes, method, backend, corr):
    name = "correlate2d" if corr else "convolve2d"
    a1 = np.asarray(in1)
    a2 = np.asarray(in2)
    if axes is None:
        if not a1.ndim == a2.ndim == 2:
            raise ValueError(
                f"{name} inputs must both be 2-D arrays (got in1.ndim={a1.ndim}, "
                f"in2.ndim={a2.ndim}; pass axes=(-2, -1) to filter a stack of images)"
            )
        ax = (0, 1)
    else:
        if a2.ndim != 2:
            raise ValueError(f"{name}: in2 must be a 2-D kernel, got in2.ndim={a2.ndim}")
        if a1.ndim < 2:
            raise ValueError(f"{name}: in1 must have at least 2 dimensions, got {a1.ndim}")
        ax = _check_axes(axes, a1.ndim)
    mode = _check_mode(mode)
    bnd = _check_boundary(boundary)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    resolve_backend(backend, "signal") if backend != "auto" else None
    dt = _typenum(a1, a2, name)
    if a1.size == 0 or a2.size == 0:
        which = "in1" if a1.size == 0 else "in2"
        raise ValueError(f"{name}: {which} is empty (shape {(a1 if which == 'in1' else a2).shape})")

    img = np.moveaxis(a1, ax, (-2, -1))
    lead = img.shape[:-2]
    s1 = img.shape[-2:]
    if _swap_needed(mode, s1, a2.shape):
        if lead:
            # each image becomes the kernel slid over in2: one 2-D call per image
            outs = [
                _dispatch(im, a2, mode, boundary, fillvalue, None, method, backend, corr)
                for im in img.reshape((-1,) + s1)
            ]
            res = np.stack(outs).reshape(lead + outs[0].shape)
            return np.moveaxis(res, (-2, -1), ax)
        img, a2 = a2, img
        s1 = img.shape
        swapped = True
    else:
        swapped = False
    k = a2.astype(dt, copy=False)
    w = np.conj(k) if corr else k[::-1, ::-1]
    x = img.reshape((-1,) + tuple(s1))
    if dt.kind in "fc" and dt.itemsize <= (16 if dt.kind == "c" else 8):
        x = x.astype(dt, copy=False)
    res = _correlate_stack(x, w, mode, bnd, fillvalue, method, backend, corr, dt, name)
    res = res.reshape(lead + res.shape[-2:])
    if swapped and corr:
        res = res[::-1, ::-1].copy()
    return np.moveaxis(res, (-2, -1), ax) if lead else res


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
        scipy's dtype: the inputs' common type (integers stay integers, with scipy's wrap-around
        on overflow; complex64 and float32 are kept).

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
    in1, in2, mode, boundary, fillvalue, axes
        As for `correlate2d` / `convolve2d`.
    correlate : bool, optional
        True for `correlate2d` (default), False for `convolve2d`.

    Returns
    -------
    MethodChoice
        ``(method, reason)``: method one of ``'direct'``, ``'fft'``, ``'separable'``; reason a
        sentence with the estimated times of the candidates.

    Notes
    -----
    A rank-1 kernel (both sizes >= 2) runs as two 1-D passes; otherwise the cheaper of the direct
    kernel and the FFT by a cost model whose rates were measured on this machine (module
    docstring).  Inputs with NaN/inf never go to FFT, and integer inputs only where rounding the
    floating result is provably exact.  longdouble/clongdouble and integers too large for float64
    run a tap-by-tap loop in their own dtype (reported as ``'direct'``).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv.signal import choose_method
    >>> img = np.zeros((512, 512))
    >>> choose_method(img, np.outer([1, 2, 1], [1, 2, 1]), mode="same").method
    'separable'
    >>> choose_method(img, np.eye(3), mode="same").method
    'direct'
    """
    a1 = np.asarray(in1)
    a2 = np.asarray(in2)
    name = "correlate2d" if correlate else "convolve2d"
    if axes is None:
        if not a1.ndim == a2.ndim == 2:
            raise ValueError(f"{name} inputs must both be 2-D arrays")
        ax = (0, 1)
    else:
        ax = _check_axes(axes, a1.ndim)
    mode = _check_mode(mode)
    bnd = _check_boundary(boundary)
    dt = _typenum(a1, a2, name)
    if a1.size == 0 or a2.size == 0:
        raise ValueError(f"{name}: empty input")
    img = np.moveaxis(a1, ax, (-2, -1))
    s1 = img.shape[-2:]
    nimg = int(np.prod(img.shape[:-2], dtype=np.int64))
    if _swap_needed(mode, s1, a2.shape):
        return MethodChoice("direct", "'valid' mode with in1 smaller than in2: inputs swapped")
    if dt.kind == "f" and dt.itemsize > 8 or dt.kind == "c" and dt.itemsize > 16:
        return MethodChoice("direct", f"{dt} runs the tap-by-tap loop in its own precision")
    fill = _fill_value(fillvalue, dt) if bnd == "fill" else 0
    bound = None
    if dt.kind in "iu":
        bound = _integer_bound(img.reshape((-1,) + tuple(s1)).astype(dt), a2.astype(dt), fill)
        if bound >= _EXACT_DIRECT:
            return MethodChoice("direct", "integers beyond float64's exact range: exact loop")
    out_hw, _ = _geometry(mode, s1, a2.shape, correlate)
    method, reason = _decide(
        nimg * (2 if dt.kind == "c" else 1),
        out_hw,
        a2.shape,
        (out_hw[0] + a2.shape[0] - 1, out_hw[1] + a2.shape[1] - 1),
        _work_dtype(dt),
        _is_rank1(a2, _work_dtype(dt)),
        bound,
    )
    if method == "fft" and not np.isfinite(a1).all():
        return MethodChoice("direct", "in1 has NaN or inf, which FFT would spread: " + reason)
    return MethodChoice(method, reason)
