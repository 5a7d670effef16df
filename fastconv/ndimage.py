"""scipy.ndimage's correlation filters, multi-threaded: correlate1d, convolve1d, correlate, convolve,
uniform_filter(1d) and gaussian_filter(1d), with scipy's signatures, defaults, errors and results.

Every function computes as scipy.ndimage does (in float64, in scipy's summation order, the result cast
to the output dtype), so results are bit for bit scipy's on float32 and float64 data.
"""

from __future__ import annotations

import numbers
import operator

import numpy as np

from . import _geometry, _plan

__all__ = [
    "convolve",
    "convolve1d",
    "correlate",
    "correlate1d",
    "gaussian_filter",
    "gaussian_filter1d",
    "uniform_filter",
    "uniform_filter1d",
]

_MODES_DOC = """mode : {'reflect', 'constant', 'nearest', 'mirror', 'wrap', 'grid-mirror', \
'grid-constant', 'grid-wrap'}, optional
        How the array is extended beyond its edges (default 'reflect'):
        'reflect' (d c b a | a b c d | d c b a, same as 'grid-mirror'),
        'constant' (k k k k | a b c d | k k k k with k = `cval`, same as 'grid-constant'),
        'nearest' (a a a a | a b c d | d d d d),
        'mirror' (d c b | a b c d | c b a),
        'wrap' (a b c d | a b c d | a b c d, same as 'grid-wrap')."""


def _work_dtype(x, out):
    """The dtype the kernel reads and writes: float32 only when both input and output are float32
    (scipy computes in float64 and rounds once, which float32 -> float64 -> float32 also does)."""
    if x.dtype == np.float32 and out.dtype == np.float32:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def _as_input(x, work):
    """A C-contiguous native-order copy of x in `work` only when x is not one already."""
    return np.ascontiguousarray(x, dtype=work)


def _store(out, res):
    """Write res into out with the cast scipy's C loops compile to on x86-64: integers truncate
    toward zero, and out-of-range values wrap as the conversion instruction leaves them (through a
    32-bit int for 8- and 16-bit types, a 64-bit one for uint32), with no warnings."""
    if res is out:
        return
    with np.errstate(all="ignore"):
        if out.dtype.kind in "iu" and res.dtype.kind == "f":
            via = {1: np.int32, 2: np.int32, 4: np.int64 if out.dtype.kind == "u" else None}
            v = via.get(out.dtype.itemsize)
            if v is not None:
                res = res.astype(v)
        if out.dtype == np.bool_ and res.dtype.kind == "f":  # (npy_bool)d truncates like a byte
            np.copyto(out.view(np.uint8), res.astype(np.int32), casting="unsafe")
            return
        np.copyto(out, res, casting="unsafe")


def _destination(x, out, work):
    """The array the kernel writes: out itself when it has the work dtype, is C-contiguous and does
    not overlap the input; otherwise a new array (copied into out after the call)."""
    if (
        out.dtype == work
        and out.flags.c_contiguous
        and out.dtype.isnative
        and not np.may_share_memory(x, out)
    ):
        return out
    return np.empty(out.shape, dtype=work)


def _symmetry(w):
    """scipy's NI_Correlate1D test: 1 symmetric, -1 antisymmetric (odd lengths only), else 0."""
    k = w.shape[0]
    if k % 2 == 0:
        return 0
    h = k // 2
    eps = np.finfo(np.float64).eps
    lo, hi = w[:h][::-1], w[h + 1 :]
    if np.all(np.abs(hi - lo) <= eps):
        return 1
    if np.all(np.abs(hi + lo) <= eps):
        return -1
    return 0


def _correlate1d_run(x, w, axis, out, mode, cval, origin, backend):
    """One 1-D pass: x (any real dtype) correlated with float64 w along axis into out."""
    if x.size == 0:
        return out
    work = _work_dtype(x, out)
    xs = _as_input(x, work)
    dst = _destination(xs, out, work)
    shape = x.shape
    A = int(np.prod(shape[:axis], dtype=np.int64))
    L = shape[axis]
    C = int(np.prod(shape[axis + 1 :], dtype=np.int64))
    k = w.shape[0]
    before = k // 2 + origin
    lo, hi = _geometry.extension_edges(L, before, k - 1 - before, mode)
    plan = _plan.plan_ndimage("correlate1d", (A, L, C), k, backend)
    mod = plan.module()
    sym = _symmetry(w)
    if C == 1:
        mod.correlate1d_last(
            xs.reshape(A, L),
            lo,
            hi,
            w,
            sym,
            float(cval),
            dst.reshape(A, L),
            plan.workspace(),
            plan.tile[0],
            plan.nthreads,
        )
    else:
        mod.correlate1d_inner(
            xs.reshape(A, L, C),
            lo,
            hi,
            w,
            sym,
            float(cval),
            dst.reshape(A, L, C),
            plan.workspace(),
            plan.tile[0],
            plan.nthreads,
        )
    _store(out, dst)
    return out


def _uniform1d_run(x, size, axis, out, mode, cval, origin, backend):
    if x.size == 0:
        return out
    work = _work_dtype(x, out)
    xs = _as_input(x, work)
    dst = _destination(xs, out, work)
    shape = x.shape
    A = int(np.prod(shape[:axis], dtype=np.int64))
    L = shape[axis]
    C = int(np.prod(shape[axis + 1 :], dtype=np.int64))
    before = size // 2 + origin
    lo, hi = _geometry.extension_edges(L, before, size - 1 - before, mode)
    plan = _plan.plan_ndimage("uniform1d", (A, L, C), size, backend)
    plan.module().uniform1d(
        xs.reshape(A, L, C),
        lo,
        hi,
        size,
        float(cval),
        dst.reshape(A, L, C),
        plan.workspace(),
        plan.tile[0],
        plan.nthreads,
    )
    _store(out, dst)
    return out


def _check_dtype(dt, name):
    _geometry.ndimage_dtype(dt, name)
    if np.dtype(dt).kind == "c":
        raise TypeError(f"{name} must be real here, got dtype {dt}")


def _real_input(x, out=None):
    x = np.asarray(x)
    _check_dtype(x.dtype, "input")
    if out is not None:
        _check_dtype(out.dtype, "output")
    return x


def _complex_parts(func, x, w, out, cval, **kwargs):
    """scipy's complex filtering: a linear combination of real filterings of the parts."""
    cx, cw = x.dtype.kind == "c", np.asarray(w).dtype.kind == "c"
    if cx and cw:
        func(x.real, w.real, output=out.real, cval=np.real(cval), **kwargs)
        out.real -= func(x.imag, w.imag, output=None, cval=np.imag(cval), **kwargs)
        func(x.real, w.imag, output=out.imag, cval=np.real(cval), **kwargs)
        out.imag += func(x.imag, w.real, output=None, cval=np.imag(cval), **kwargs)
    elif cx:
        func(x.real, w, output=out.real, cval=np.real(cval), **kwargs)
        func(x.imag, w, output=out.imag, cval=np.imag(cval), **kwargs)
    else:
        if np.iscomplexobj(cval):
            raise ValueError("Cannot provide a complex-valued cval when the input is real.")
        func(x, w.real, output=out.real, cval=cval, **kwargs)
        func(x, w.imag, output=out.imag, cval=cval, **kwargs)
    return out


def _axis(axis, ndim):
    return int(np.lib.array_utils.normalize_axis_index(axis, ndim))


def correlate1d(
    input, weights, axis=-1, output=None, mode="reflect", cval=0.0, origin=0, *, backend="auto"
):
    """Calculate a 1-D correlation along the given axis (scipy.ndimage.correlate1d).

    The lines of the array along `axis` are correlated with `weights`:
    ``out[i] = sum_j weights[j] * ext[i + j - len(weights) // 2 - origin]``, `ext` the line
    extended by `mode`.

    Parameters
    ----------
    input : array_like
        The input array (any real or complex numeric dtype).
    weights : array_like
        1-D sequence of numbers.
    axis : int, optional
        The axis of `input` along which to calculate.  Default is -1.
    output : array or dtype, optional
        The array in which to place the output, or the dtype of the returned array.  By default
        an array of the same dtype as `input` is created.
    %(mode)s
    cval : scalar, optional
        Value to fill past edges of input if `mode` is 'constant'.  Default is 0.0.
    origin : int, optional
        Shifts the filter: -(len(weights) // 2) <= origin <= (len(weights) - 1) // 2.
    backend : {"auto", "numba", "cython"}, optional
        Which compiled kernels run; both give the same results.

    Returns
    -------
    ndarray
        The correlated array, the shape of `input` (`output` itself when it is an array).

    Raises
    ------
    RuntimeError
        (also a ValueError) no weights, an unknown `mode`, or an `output` of the wrong shape.
    ValueError
        An `origin` out of range or an `axis` out of range.

    See Also
    --------
    convolve1d, correlate, scipy.ndimage.correlate1d

    Notes
    -----
    Sums run in float64 in scipy's order (symmetric and antisymmetric kernels pair their taps
    first; others start with the last tap), without fused multiply-adds, so results are
    scipy.ndimage's bit for bit; NaN and inf propagate as in that sum.  Lines are split into
    segments and run on fastconv's threads (``fastconv.set_num_threads``).

    Examples
    --------
    >>> import fastconv.ndimage as fnd
    >>> fnd.correlate1d([2, 8, 0, 4, 1, 9, 9, 0], weights=[1, 3])
    array([ 8, 26,  8, 12,  7, 28, 36,  9])
    """
    x = np.asarray(input)
    wa = np.asarray(weights)
    if x.dtype.kind == "c" or wa.dtype.kind == "c":
        if wa.dtype.kind == "c":
            wa = wa.conj().astype(np.complex128, copy=False)
        out = _geometry.ndimage_output(output, x.shape, x.dtype, complex_output=True)
        return _complex_parts(
            correlate1d, x, wa, out, cval, axis=axis, mode=mode, origin=origin, backend=backend
        )
    x = _real_input(x)
    w = np.ascontiguousarray(wa, dtype=np.float64)
    if w.ndim != 1 or w.shape[0] < 1:
        raise _geometry.NdimageArgumentError(
            f"no filter weights given (weights must be 1-D and non-empty, got shape {w.shape})"
        )
    ax = _axis(axis, x.ndim)
    origin = _geometry.ndimage_origin(origin, w.shape[0])
    m = _geometry.ndimage_mode(mode)
    cval = _cval(cval)
    out = _geometry.ndimage_output(output, x.shape, x.dtype)
    _check_dtype(out.dtype, "output")
    return _correlate1d_run(x, w, ax, out, m, cval, origin, backend)


def convolve1d(
    input, weights, axis=-1, output=None, mode="reflect", cval=0.0, origin=0, *, backend="auto"
):
    """Calculate a 1-D convolution along the given axis (scipy.ndimage.convolve1d).

    The correlation with the reversed weights, its origin mirrored (and shifted by one for even
    lengths), as scipy defines it.

    Parameters
    ----------
    input : array_like
        The input array.
    weights : array_like
        1-D sequence of numbers.
    axis : int, optional
        The axis of `input` along which to calculate.  Default is -1.
    output : array or dtype, optional
        The array in which to place the output, or the dtype of the returned array.
    %(mode)s
    cval : scalar, optional
        Value to fill past edges of input if `mode` is 'constant'.  Default is 0.0.
    origin : int, optional
        Shifts the filter (default 0).
    backend : {"auto", "numba", "cython"}, optional
        Which compiled kernels run.

    Returns
    -------
    ndarray
        The convolved array, the shape of `input`.

    Raises
    ------
    RuntimeError
        (also a ValueError) no weights, an unknown `mode`, a wrong `output` shape.
    ValueError
        An `origin` or `axis` out of range.

    See Also
    --------
    correlate1d, convolve, scipy.ndimage.convolve1d

    Notes
    -----
    Bit for bit scipy.ndimage.convolve1d's result (see `correlate1d`).

    Examples
    --------
    >>> import fastconv.ndimage as fnd
    >>> fnd.convolve1d([2, 8, 0, 4, 1, 9, 9, 0], weights=[1, 3])
    array([14, 24,  4, 13, 12, 36, 27,  0])
    """
    w = np.asarray(weights)
    if w.ndim != 1 or w.shape[0] < 1:
        raise _geometry.NdimageArgumentError(
            f"no filter weights given (weights must be 1-D and non-empty, got shape {w.shape})"
        )
    w = w[::-1]
    origin = -_int(origin, "origin")
    if not w.shape[0] & 1:
        origin -= 1
    if w.dtype.kind == "c":
        w = w.conj()
    return correlate1d(input, w, axis, output, mode, cval, origin, backend=backend)


def _cval(cval):
    """cval as a float (a real input's fill value), or a TypeError naming it."""
    if np.iscomplexobj(cval):
        raise ValueError(
            f"Cannot provide a complex-valued cval when the input is real (cval={cval!r})"
        )
    try:
        return float(cval)
    except (TypeError, ValueError):
        raise TypeError(f"cval must be a real number, got {cval!r}") from None


def _int(v, name):
    """v as an int (operator.index), or a TypeError naming the argument."""
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {v!r}") from None


def _correlate_or_convolve(
    x, weights, output, mode, cval, origin, convolution, axes, backend, tap_eps=None
):
    """correlate/convolve.  `tap_eps`: weights with |w| <= it are left out of the sum (scipy's
    float64 epsilon by default; fastconv.signal passes -1 to keep every tap, zeros included, as
    scipy.signal's direct sums do)."""
    x = np.asarray(x)
    wa = np.asarray(weights)
    if x.dtype.kind == "c" or wa.dtype.kind == "c":
        if wa.dtype.kind == "c" and not convolution:
            wa = wa.conj()
        out = _geometry.ndimage_output(output, x.shape, x.dtype, complex_output=True)
        return _complex_parts(
            _correlate_or_convolve_kw,
            x,
            wa,
            out,
            cval,
            mode=mode,
            origin=origin,
            convolution=convolution,
            axes=axes,
            backend=backend,
            tap_eps=tap_eps,
        )
    x = _real_input(x)
    axes = _geometry.ndimage_axes(axes, x.ndim)
    w = np.asarray(wa, dtype=np.float64)
    if len(axes) < x.ndim:
        if w.ndim != len(axes):
            raise _geometry.NdimageArgumentError(
                f"weights.ndim ({w.ndim}) must match len(axes) ({len(axes)})"
            )
        w = np.expand_dims(w, tuple(ax for ax in range(x.ndim) if ax not in axes))
    origins = _geometry.ndimage_sequence(origin, len(axes), "origin")
    if len(axes) < x.ndim:
        full = [0] * x.ndim
        for o, ax in zip(origins, axes, strict=True):
            full[ax] = o
        origins = full
    wshape = [k for k in w.shape if k > 0]
    if len(wshape) != x.ndim:
        raise _geometry.NdimageArgumentError(
            f"weights.ndim ({len(wshape)}) must match len(axes) ({len(axes)})"
        )
    origins = [_int(o, "origin") for o in origins]
    if convolution:
        w = w[(slice(None, None, -1),) * w.ndim]
        origins = [-o - (0 if k & 1 else 1) for o, k in zip(origins, w.shape, strict=True)]
    origins = [_geometry.ndimage_origin(o, k) for o, k in zip(origins, wshape, strict=True)]
    if not isinstance(mode, str) and np.iterable(mode):
        raise _geometry.NdimageArgumentError("A sequence of modes is not supported (mode)")
    m = _geometry.ndimage_mode(mode)
    cval = _cval(cval)
    out = _geometry.ndimage_output(output, x.shape, x.dtype)
    _check_dtype(out.dtype, "output")
    if x.size == 0:
        return out
    g = _geometry.nd_filter_geometry(x.shape, w.shape, origins, m)
    T, kh, kw = g.kernel3
    w3 = np.ascontiguousarray(w.reshape(T, kh, kw))
    eps = _geometry.NDIMAGE_TAP_EPS if tap_eps is None else tap_eps
    tt, pp, qq = np.nonzero(np.abs(w3) > eps)
    taps = w3[tt, pp, qq].copy()
    plan = _plan.plan_ndimage("correlate", g.shape3, (T, kh, kw, taps.shape[0]), backend)
    work = _work_dtype(x, out)
    xs = _as_input(x, work)
    dst = _destination(xs, out, work)
    rows, cols = plan.tile
    plan.module().correlate_nd(
        xs.reshape(g.shape3),
        g.planes,
        plan.tap_offsets(tt, pp, qq, kh, kw),
        taps,
        *g.edges_h,
        *g.edges_w,
        float(cval),
        dst.reshape(g.shape3),
        plan.workspace(),
        rows,
        cols,
        plan.nthreads,
    )
    _store(out, dst)
    return out


def _correlate_or_convolve_kw(x, w, output=None, cval=0.0, **kw):
    return _correlate_or_convolve(
        x,
        w,
        output,
        kw["mode"],
        cval,
        kw["origin"],
        kw["convolution"],
        kw["axes"],
        kw["backend"],
        kw.get("tap_eps"),
    )


def correlate(
    input, weights, output=None, mode="reflect", cval=0.0, origin=0, *, axes=None, backend="auto"
):
    """Multidimensional correlation (scipy.ndimage.correlate).

    ``out[i] = sum_j weights[j] * ext[i + j - weights.shape // 2 - origin]`` over the N-d
    index j, `ext` the array extended by `mode`.

    Parameters
    ----------
    input : array_like
        The input array.
    weights : ndarray
        Array of weights, same number of dimensions as `input` (or as len(`axes`)).
    output : array or dtype, optional
        The array in which to place the output, or the dtype of the returned array.
    %(mode)s
    cval : scalar, optional
        Value to fill past edges of input if `mode` is 'constant'.  Default is 0.0.
    origin : int or sequence of int, optional
        Shifts the filter along each axis (default 0).
    axes : tuple of int or None, optional
        The axes to filter (default all); the weights have len(axes) dimensions.
    backend : {"auto", "numba", "cython"}, optional
        Which compiled kernels run.

    Returns
    -------
    ndarray
        The correlated array, the shape of `input`.

    Raises
    ------
    RuntimeError
        (also a ValueError) weights of the wrong rank, a sequence of modes, an unknown mode, an
        `output` of the wrong shape, `origin` of the wrong length.
    ValueError
        An `origin` out of range, bad `axes`.

    See Also
    --------
    convolve, correlate1d, scipy.ndimage.correlate

    Notes
    -----
    As scipy does, weights with ``|w|`` <= float64 epsilon are left out of the sum (so a zero weight
    next to an inf makes no NaN) and the sum runs from 0.0 over the remaining taps in C order, in
    float64 without fused multiply-adds: results are scipy's bit for bit.  The kernel runs tiles of
    output rows on fastconv's threads, the inner loop vectorised along the last axis.

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv.ndimage as fnd
    >>> a = np.arange(25).reshape(5, 5)
    >>> fnd.correlate(a, np.ones((2, 2)) / 4)
    array([[ 0,  0,  1,  2,  3],
           [ 2,  3,  4,  5,  6],
           [ 7,  8,  9, 10, 11],
           [12, 13, 14, 15, 16],
           [17, 18, 19, 20, 21]])
    """
    return _correlate_or_convolve(input, weights, output, mode, cval, origin, False, axes, backend)


def convolve(
    input, weights, output=None, mode="reflect", cval=0.0, origin=0, *, axes=None, backend="auto"
):
    """Multidimensional convolution (scipy.ndimage.convolve).

    The correlation with the weights reversed along every axis, the origins mirrored (and shifted
    by one along even-sized axes), as scipy defines it.

    Parameters
    ----------
    input : array_like
        The input array.
    weights : ndarray
        Array of weights, same number of dimensions as `input` (or as len(`axes`)).
    output : array or dtype, optional
        The array in which to place the output, or the dtype of the returned array.
    %(mode)s
    cval : scalar, optional
        Value to fill past edges of input if `mode` is 'constant'.  Default is 0.0.
    origin : int or sequence of int, optional
        Shifts the filter along each axis (default 0).
    axes : tuple of int or None, optional
        The axes to filter (default all).
    backend : {"auto", "numba", "cython"}, optional
        Which compiled kernels run.

    Returns
    -------
    ndarray
        The convolved array, the shape of `input`.

    Raises
    ------
    RuntimeError
        (also a ValueError) as `correlate`.
    ValueError
        An `origin` out of range, bad `axes`.

    See Also
    --------
    correlate, convolve1d, scipy.ndimage.convolve

    Notes
    -----
    Bit for bit scipy.ndimage.convolve's result (see `correlate`).

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv.ndimage as fnd
    >>> a = np.array([[1, 2, 0, 0], [5, 3, 0, 4], [0, 0, 0, 7], [9, 3, 0, 0]])
    >>> k = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0]])
    >>> fnd.convolve(a, k, mode='constant', cval=0.0)
    array([[11, 10,  7,  4],
           [10,  3, 11, 11],
           [15, 12, 14,  7],
           [12,  3,  7,  0]])
    """
    return _correlate_or_convolve(input, weights, output, mode, cval, origin, True, axes, backend)


def uniform_filter1d(
    input, size, axis=-1, output=None, mode="reflect", cval=0.0, origin=0, *, backend="auto"
):
    """Calculate a 1-D uniform filter along the given axis (scipy.ndimage.uniform_filter1d).

    The mean of `size` consecutive values of each line, as scipy's running sum computes it.

    Parameters
    ----------
    input : array_like
        The input array.
    size : int
        Length of the uniform filter (at least 1).
    axis : int, optional
        The axis of `input` along which to calculate.  Default is -1.
    output : array or dtype, optional
        The array in which to place the output, or the dtype of the returned array.
    %(mode)s
    cval : scalar, optional
        Value to fill past edges of input if `mode` is 'constant'.  Default is 0.0.
    origin : int, optional
        Shifts the filter (default 0).
    backend : {"auto", "numba", "cython"}, optional
        Which compiled kernels run.

    Returns
    -------
    ndarray
        The filtered array, the shape of `input`.

    Raises
    ------
    RuntimeError
        (also a ValueError) `size` < 1, an unknown `mode`, a wrong `output` shape.
    ValueError
        An `origin` out of range.

    See Also
    --------
    uniform_filter, scipy.ndimage.uniform_filter1d

    Notes
    -----
    scipy's running sum (the first window summed, then ``sum += new - old``, each output
    ``sum / size``), so results are scipy's bit for bit, including an inf turning every later value of its line into NaN.
    Lines run 32 side by side on fastconv's threads.

    Examples
    --------
    >>> import fastconv.ndimage as fnd
    >>> fnd.uniform_filter1d([2, 8, 0, 4, 1, 9, 9, 0], size=3)
    array([4, 3, 4, 1, 4, 6, 6, 3])
    """
    x = np.asarray(input)
    size = _int(size, "size")
    if size < 1:
        raise _geometry.NdimageArgumentError(f"incorrect filter size: size={size} (at least 1)")
    if x.dtype.kind == "c":
        out = _geometry.ndimage_output(output, x.shape, x.dtype, complex_output=True)
        uniform_filter1d(x.real, size, axis, out.real, mode, np.real(cval), origin, backend=backend)
        uniform_filter1d(x.imag, size, axis, out.imag, mode, np.imag(cval), origin, backend=backend)
        return out
    x = _real_input(x)
    ax = _axis(axis, x.ndim)
    origin = _int(origin, "origin")
    if size // 2 + origin < 0 or size // 2 + origin >= size:
        raise ValueError(f"invalid origin: origin={origin} for size={size}")
    m = _geometry.ndimage_mode(mode)
    cval = _cval(cval)
    out = _geometry.ndimage_output(output, x.shape, x.dtype)
    _check_dtype(out.dtype, "output")
    return _uniform1d_run(x, size, ax, out, m, cval, origin, backend)


def _passes(x, out, passes):
    """Run 1-D passes x -> ... -> out, intermediates in out's dtype (as scipy stores them), alternating
    between out and one scratch array so that no pass writes what it reads."""
    if not passes:
        _store(out, x)
        return out
    scratch = None
    src = x
    for i, run in enumerate(passes):
        last_to_out = (len(passes) - 1 - i) % 2 == 0
        for cand in ("out", "scratch") if last_to_out else ("scratch", "out"):
            if cand == "scratch" and scratch is None:
                scratch = np.empty(out.shape, dtype=out.dtype)
            dst = out if cand == "out" else scratch
            if not np.may_share_memory(src, dst):
                break
        run(src, dst)
        src = dst
    if src is not out:
        _store(out, src)
    return out


def uniform_filter(
    input, size=3, output=None, mode="reflect", cval=0.0, origin=0, *, axes=None, backend="auto"
):
    """Multidimensional uniform filter (scipy.ndimage.uniform_filter).

    Successive `uniform_filter1d` passes along the axes, intermediates stored in the output dtype.

    Parameters
    ----------
    input : array_like
        The input array.
    size : int or sequence of int, optional
        The filter size along each axis (default 3); axes of size 1 are skipped.
    output : array or dtype, optional
        The array in which to place the output, or the dtype of the returned array.
    %(mode)s
        A sequence gives one mode per axis.
    cval : scalar, optional
        Value to fill past edges of input if `mode` is 'constant'.  Default is 0.0.
    origin : int or sequence of int, optional
        Shifts the filter along each axis (default 0).
    axes : tuple of int or None, optional
        The axes to filter (default all).
    backend : {"auto", "numba", "cython"}, optional
        Which compiled kernels run.

    Returns
    -------
    ndarray
        The filtered array, the shape of `input`.

    Raises
    ------
    RuntimeError
        (also a ValueError) a sequence argument of the wrong length, an unknown mode.
    ValueError
        An `origin` out of range, bad `axes`.

    See Also
    --------
    uniform_filter1d, gaussian_filter, scipy.ndimage.uniform_filter

    Notes
    -----
    Bit for bit scipy's result: the same passes in the same order, each as `uniform_filter1d`.

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv.ndimage as fnd
    >>> fnd.uniform_filter(np.arange(9.0).reshape(3, 3), size=3)
    array([[1.33333333, 2.        , 2.66666667],
           [3.33333333, 4.        , 4.66666667],
           [5.33333333, 6.        , 6.66666667]])
    """
    x = np.asarray(input)
    axes = _geometry.ndimage_axes(axes, x.ndim)
    n = len(axes)
    sizes = _geometry.ndimage_sequence(size, n, "size")
    origins = _geometry.ndimage_sequence(origin, n, "origin")
    modes = _geometry.ndimage_sequence(mode, n, "mode")
    for m in modes:  # every argument checked before the output is allocated
        _geometry.ndimage_mode(m)
    for z, o in zip(sizes, origins, strict=True):
        if z > 1:  # scipy skips sizes <= 1 and truncates the others with int()
            z, o = int(z), _int(o, "origin")
            if z // 2 + o < 0 or z // 2 + o >= z:
                raise ValueError(f"invalid origin: origin={o} for size={z}")
    out = _geometry.ndimage_output(output, x.shape, x.dtype, complex_output=x.dtype.kind == "c")
    todo = [(axes[i], sizes[i], origins[i], modes[i]) for i in range(n) if sizes[i] > 1]
    passes = [
        (
            lambda s, d, a=a, z=z, o=o, m=m: uniform_filter1d(
                s, int(z), a, d, m, cval, o, backend=backend
            )
        )
        for a, z, o, m in todo
    ]
    return _passes(x, out, passes)


def _gaussian_kernel1d(sigma, order, radius):
    """scipy's Gaussian kernel (and its derivatives) of half-width `radius`, the same NumPy steps,
    so the weights are scipy's to the last bit."""
    if order < 0:
        raise ValueError(f"order must be non-negative (order={order})")
    exponent_range = np.arange(order + 1)
    sigma2 = sigma * sigma
    x = np.arange(-radius, radius + 1)
    phi_x = np.exp(-0.5 / sigma2 * x**2)
    phi_x = phi_x / phi_x.sum()
    if order == 0:
        return phi_x
    q = np.zeros(order + 1)
    q[0] = 1
    D = np.diag(exponent_range[1:], 1)  # D @ q(x) = q'(x)
    P = np.diag(np.ones(order) / -sigma2, -1)  # P @ q(x) = q(x) * p'(x)
    Q_deriv = D + P
    for _ in range(order):
        q = Q_deriv.dot(q)
    q = (x[:, None] ** exponent_range).dot(q)
    return q * phi_x


def _gaussian_weights(sigma, order, truncate, radius):
    sd = float(sigma)
    lw = int(truncate * sd + 0.5)
    if radius is not None:
        lw = radius
    if not isinstance(lw, numbers.Integral) or lw < 0:
        raise ValueError(f"Radius must be a nonnegative integer (radius={radius!r})")
    return np.ascontiguousarray(_gaussian_kernel1d(sigma, order, lw)[::-1])


def gaussian_filter1d(
    input,
    sigma,
    axis=-1,
    order=0,
    output=None,
    mode="reflect",
    cval=0.0,
    truncate=4.0,
    *,
    radius=None,
    backend="auto",
):
    """1-D Gaussian filter (scipy.ndimage.gaussian_filter1d).

    Parameters
    ----------
    input : array_like
        The input array.
    sigma : scalar
        Standard deviation of the Gaussian kernel.
    axis : int, optional
        The axis of `input` along which to calculate.  Default is -1.
    order : int, optional
        0 smooths; a positive order convolves with that derivative of the Gaussian.
    output : array or dtype, optional
        The array in which to place the output, or the dtype of the returned array.
    %(mode)s
    cval : scalar, optional
        Value to fill past edges of input if `mode` is 'constant'.  Default is 0.0.
    truncate : float, optional
        Truncate the filter at this many standard deviations (default 4.0).
    radius : None or int, optional
        The kernel's half-width; overrides `truncate` when given.
    backend : {"auto", "numba", "cython"}, optional
        Which compiled kernels run.

    Returns
    -------
    ndarray
        The filtered array, the shape of `input`.

    Raises
    ------
    ValueError
        A negative `order` or `radius`, an `axis` out of range.
    RuntimeError
        (also a ValueError) an unknown mode, a wrong `output` shape.

    See Also
    --------
    gaussian_filter, correlate1d, scipy.ndimage.gaussian_filter1d

    Notes
    -----
    The kernel is computed by the same NumPy expressions as scipy's and applied by `correlate1d`,
    so results are scipy's bit for bit.  The kernel has ``2 * radius + 1`` taps with
    ``radius = int(truncate * sigma + 0.5)``.

    Examples
    --------
    >>> import fastconv.ndimage as fnd
    >>> fnd.gaussian_filter1d([1.0, 2.0, 3.0, 4.0, 5.0], 1)
    array([1.42704095, 2.06782203, 3.        , 3.93217797, 4.57295905])
    """
    w = _gaussian_weights(sigma, order, truncate, radius)
    return correlate1d(input, w, axis, output, mode, cval, 0, backend=backend)


def gaussian_filter(
    input,
    sigma,
    order=0,
    output=None,
    mode="reflect",
    cval=0.0,
    truncate=4.0,
    *,
    radius=None,
    axes=None,
    backend="auto",
):
    """Multidimensional Gaussian filter (scipy.ndimage.gaussian_filter).

    Successive `gaussian_filter1d` passes along the axes, intermediates stored in the output dtype.

    Parameters
    ----------
    input : array_like
        The input array.
    sigma : scalar or sequence of scalars
        Standard deviation per axis; axes with sigma <= 1e-15 are skipped.
    order : int or sequence of ints, optional
        Derivative order per axis (default 0).
    output : array or dtype, optional
        The array in which to place the output, or the dtype of the returned array.
    %(mode)s
        A sequence gives one mode per axis.
    cval : scalar, optional
        Value to fill past edges of input if `mode` is 'constant'.  Default is 0.0.
    truncate : float, optional
        Truncate the filter at this many standard deviations (default 4.0).
    radius : None or int or sequence of ints, optional
        Kernel half-widths; override `truncate` when given.
    axes : tuple of int or None, optional
        The axes to filter (default all).
    backend : {"auto", "numba", "cython"}, optional
        Which compiled kernels run.

    Returns
    -------
    ndarray
        The filtered array, the shape of `input`.

    Raises
    ------
    RuntimeError
        (also a ValueError) a sequence argument of the wrong length, an unknown mode.
    ValueError
        A negative `order` or `radius`, bad `axes`.

    See Also
    --------
    gaussian_filter1d, uniform_filter, scipy.ndimage.gaussian_filter

    Notes
    -----
    Bit for bit scipy's result: the same passes in the same order.  Each pass is multi-threaded;
    passes alternate between the output and one scratch array.

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv.ndimage as fnd
    >>> fnd.gaussian_filter(np.arange(50, step=2).reshape(5, 5), sigma=1)
    array([[ 4,  6,  8,  9, 11],
           [10, 12, 14, 15, 17],
           [20, 22, 24, 25, 27],
           [29, 31, 33, 34, 36],
           [35, 37, 39, 40, 42]])
    """
    x = np.asarray(input)
    axes = _geometry.ndimage_axes(axes, x.ndim)
    n = len(axes)
    orders = _geometry.ndimage_sequence(order, n, "order")
    sigmas = _geometry.ndimage_sequence(sigma, n, "sigma")
    modes = _geometry.ndimage_sequence(mode, n, "mode")
    radii = _geometry.ndimage_sequence(radius, n, "radius")
    for sg, o, m, r in zip(sigmas, orders, modes, radii, strict=True):  # all before allocating
        _geometry.ndimage_mode(m)
        if sg > 1e-15:
            _gaussian_weights(sg, o, truncate, r)
    out = _geometry.ndimage_output(output, x.shape, x.dtype)
    todo = [
        (axes[i], sigmas[i], orders[i], modes[i], radii[i]) for i in range(n) if sigmas[i] > 1e-15
    ]
    passes = [
        (
            lambda s, d, a=a, sg=sg, o=o, m=m, r=r: gaussian_filter1d(
                s, sg, a, o, d, m, cval, truncate, radius=r, backend=backend
            )
        )
        for a, sg, o, m, r in todo
    ]
    return _passes(x, out, passes)


for _f in (
    correlate1d,
    convolve1d,
    correlate,
    convolve,
    uniform_filter1d,
    uniform_filter,
    gaussian_filter1d,
    gaussian_filter,
):
    _f.__doc__ = _f.__doc__.replace("%(mode)s", _MODES_DOC)
del _f
