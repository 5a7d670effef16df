"""conv2d with PyTorch's argument semantics on NumPy arrays, run by the planned algorithm.

Validation happens once in _geometry; this module allocates, plans, calls the kernels and restores shape.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass

import numpy as np

from . import _threads, _wisdom
from ._geometry import check_epilogue, check_out, conv_geometry, geometry_from_shapes
from ._plan import (
    ALGORITHMS,
    WORKSPACE_BYTES,
    ConvPlan,
    applicable,
    cached,
    clear_cache,
    empty_aligned,
    is_fixed,
    plan_conv2d,
    resolve_backend,
    run_epilogue,
)

__all__ = ["TuneResult", "algorithms", "conv2d", "tune"]


def conv2d(
    x,
    weight,
    bias=None,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    *,
    out=None,
    activation=None,
    residual=None,
    backend="auto",
    algorithm="auto",
):
    """2-D convolution (cross-correlation) with ``torch.nn.functional.conv2d``'s semantics.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W) or (C, H, W)
        Input batch (or one unbatched image).
    weight : array_like, shape (K, C/groups, kh, kw)
        Filters.
    bias : array_like, shape (K,), optional
        Added to every output pixel of each channel.
    stride : int or (int, int), default 1
        Step between output pixels.
    padding : int, (int, int), "same" or "valid", default 0
        Zero padding on both sides.  "same" keeps H and W (stride 1 only; for even kernel extents the
        extra row/column goes to the bottom/right, as torch does); "valid" means no padding.
    dilation : int or (int, int), default 1
        Spacing between kernel taps.
    groups : int, default 1
        Channels are split into `groups` blocks convolved independently; ``groups == C`` is depthwise.
    out : ndarray, optional
        Where to write the result; must have the output shape and dtype.  Left untouched if the call
        fails.
    activation : {None, "relu", "relu6", "silu"}, optional
        Applied to the result in the same pass that adds `residual`: ``activation(conv2d(x,
        weight, bias) + residual)``, what a CNN's conv -> (add) -> ReLU block computes, without
        the extra passes over memory NumPy glue makes (``y += r; np.maximum(y, 0, out=y)``).
        "relu6" clips to [0, 6] (MobileNet); "silu" is x / (1 + exp(-x)) (EfficientNet; float32
        within 2 ulp of the libm formula).  NaN stays NaN, as in torch.
    residual : array_like, optional
        Added to the result before `activation`; must have the output's shape.  It may be `out`
        itself (``out=y, residual=y``: y = conv + y); it is never modified otherwise.
    backend : {"auto", "numba", "cython"}
        Which compiled kernels to use; both give the same results.
    algorithm : str, default "auto"
        "auto" lets the planner choose; or one of ``fastconv.algorithms()`` to force it
        (ValueError if it does not apply to this call).  A forced transform-based algorithm
        ("winograd", "fft") keeps its own rounding and NaN/inf behaviour.

    Returns
    -------
    ndarray, shape (N, K, Ho, Wo) or (K, Ho, Wo)
        ``Ho = (H + pad_top + pad_bottom - dilation*(kh-1) - 1) // stride + 1``, likewise Wo.
        float32 if every input is float32 (or narrower), float64 otherwise.

    Raises
    ------
    ValueError, TypeError
        On bad shapes, channel counts, groups, stride/padding/dilation values or dtypes, naming the
        argument, before any computation.

    See Also
    --------
    fastconv.dynamic_conv2d : Per-sample kernels.
    fastconv.signal.correlate2d : The scipy.signal-compatible 2-D filter.
    fastconv.cost.conv2d_cost : FLOPs and memory of a call, and the algorithm it will use.

    Notes
    -----
    Algorithms (``fastconv.cost.conv2d_cost(...).algorithm`` tells which one a call takes): a 1x1
    stride-1 convolution reads the input as it lies; depthwise and small-group (ResNeXt) layers run
    direct kernels; 3x3 stride-1 layers with 32-256 channels per group (dilated ones phase by phase)
    run Winograd F(2x2, 3x3), 16 multiplications per 2x2 outputs instead of 36, whose rounding
    differs from direct summation by a few float32 ulps of the largest terms; large kernels may run
    by FFT; the rest run fastconv's packed AVX-512 micro-kernel where the CPU has it, or tiled im2col
    with one BLAS GEMM per tile, written straight into the output.  The whole im2col matrix is never
    built: extra memory stays within a bounded workspace (64 MiB) whatever the batch size.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.ones((1, 1, 4, 4), dtype=np.float32)
    >>> w = np.ones((1, 1, 3, 3), dtype=np.float32)
    >>> fastconv.conv2d(x, w, padding=1)[0, 0]
    array([[4., 6., 6., 4.],
           [6., 9., 9., 6.],
           [6., 9., 9., 6.],
           [4., 6., 6., 4.]], dtype=float32)
    """
    plan, g = _planned(x, weight, bias, stride, padding, dilation, groups, backend, algorithm)
    if plan is None:  # not plain ndarrays, or an unhashable argument: validate the long way
        x, weight, bias, g = conv_geometry(x, weight, bias, stride, padding, dilation, groups)
        plan = plan_conv2d(
            g, backend, algorithm=algorithm, has_bias=bias is not None, fixed=is_fixed(weight)
        )
    else:
        x = np.ascontiguousarray(x if g.batched else x[None], dtype=g.dtype)
        weight = np.ascontiguousarray(weight, dtype=g.dtype)
        bias = None if bias is None else np.ascontiguousarray(bias, dtype=g.dtype)
    out = check_out(out, g.out_shape, g.dtype)
    act, residual = check_epilogue(activation, residual, g.out_shape, g.dtype)
    w3 = weight.reshape(1, g.K, -1)
    b2 = None if bias is None else bias.reshape(1, g.K)
    if residual is not None and out is not None and np.may_share_memory(residual, out):
        residual = residual.copy()  # the convolution writes `out` before the epilogue reads it
    return run_conv(plan, x, w3, b2, g, out, (act, residual))


def _key(v):
    """A hashable key that tells apart what validation tells apart (True from 1, (1, 1) from [1, 1])."""
    t = type(v)
    if t is int or t is str:
        return v
    if t is tuple or t is list:
        return (type(v), tuple(_key(e) for e in v))
    return (type(v), v)


def _planned(x, weight, bias, stride, padding, dilation, groups, backend, algorithm):
    """(plan, geometry) of a call on plain ndarrays, remembered across calls with the same shapes,
    dtypes and arguments (validation and planning depend on nothing else); (None, None) when the
    call cannot be keyed."""
    if type(x) is not np.ndarray or type(weight) is not np.ndarray:
        return None, None
    if bias is not None and type(bias) is not np.ndarray:
        return None, None
    nt = _threads.budget()  # fewer threads than asked while other processes hold the CPUs
    fixed = is_fixed(weight)
    # ints and strings are their own keys (_key): spelled out, a repeated call's key costs
    # half a microsecond less
    key = (
        "conv2d",
        x.shape,
        x.dtype,
        weight.shape,
        weight.dtype,
        None if bias is None else (bias.shape, bias.dtype),
        stride if type(stride) is int else _key(stride),
        padding if type(padding) is int else _key(padding),
        dilation if type(dilation) is int else _key(dilation),
        groups if type(groups) is int else _key(groups),
        backend if type(backend) is str else _key(backend),
        algorithm if type(algorithm) is str else _key(algorithm),
        nt,
        fixed,
    )

    def make():
        _, _, _, g = conv_geometry(x, weight, bias, stride, padding, dilation, groups)
        plan = plan_conv2d(
            g, backend, nt, algorithm=algorithm, has_bias=bias is not None, fixed=fixed
        )
        return plan, g

    return cached(key, make)


_NO_BIAS = {}


def run_conv(plan, x4, w3, b2, g, out=None, epilogue=(0, None)):
    """Run a planned convolution.  Arrays are already validated and contiguous in g.dtype.

    w3 is (Nw, K, Cg*kh*kw) with Nw in {1, N} and b2 (Nb, K) or None: per-sample weights serve
    dynamic convolution through the same kernels.  Shared by conv2d and dynamic_conv2d.

    When an algorithm that is not exact on non-finite data (Winograd, FFT) meets a NaN or an inf,
    the call is recomputed by the best exact one, so NaN and inf land where direct summation puts
    them; an algorithm the caller forced keeps its own behaviour.
    """
    shape4 = (g.N, g.K, g.Ho, g.Wo)
    direct = out is not None and out.flags.c_contiguous and not np.may_share_memory(out, x4)
    res = out if direct else empty_aligned(g.out_shape, g.dtype)
    res4 = res.reshape(shape4)
    if g.N > 0:
        has_bias = b2 is not None
        if not has_bias:
            b2 = _NO_BIAS.get(g.dtype)
            if b2 is None:
                b2 = _NO_BIAS.setdefault(g.dtype, np.zeros((1, 1), dtype=g.dtype))
        _threads.mark_pools_started()
        alg = ALGORITHMS[plan.algorithm]
        if alg.epilogue:  # applies the epilogue itself (into its tasks where it can)
            bad = alg.run(plan, x4, w3, b2, has_bias, g, res4, epilogue)
        else:
            bad = alg.run(plan, x4, w3, b2, has_bias, g, res4)
        if bad and not plan.forced:
            exact = plan_conv2d(
                g, plan.backend, plan.nthreads, per_sample=w3.shape[0] > 1, exact_nonfinite=True
            )
            ALGORITHMS[exact.algorithm].run(exact, x4, w3, b2, has_bias, g, res4)
        if bad and not plan.forced or not alg.epilogue:
            run_epilogue(plan, res4, *epilogue)
    if out is not None and not direct:
        out[...] = res
        return out
    return res


@dataclass(frozen=True)
class TuneResult:
    """What `tune` measured: the winner and the best time of every option tried.

    Parameters
    ----------
    algorithm : str
        The fastest registry entry (a value for ``conv2d(algorithm=...)``).
    nthreads : int
        The thread count it won with (1 or the thread budget).
    seconds : dict of (str, int) to float
        ``{(algorithm, nthreads): best seconds}`` for every option timed.

    See Also
    --------
    tune : Returns it.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.ones((1, 8, 8, 8), np.float32); w = np.ones((8, 8, 3, 3), np.float32)
    >>> r = fastconv.tune(x, w, padding=1, repeat=1, remember=False)
    >>> (r.algorithm, r.nthreads) in r.seconds
    True
    """

    algorithm: str
    nthreads: int
    seconds: dict  # {(algorithm, nthreads): best seconds}


def algorithms(
    x_shape,
    weight_shape,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    dtype=np.float32,
    *,
    backend="auto",
):
    """The algorithms that can run a conv2d of these shapes (values for ``conv2d(algorithm=...)``).

    Parameters
    ----------
    x_shape, weight_shape : tuple of int
        As the shapes of `conv2d`'s x and weight.
    stride : int or (int, int), default 1
        As for `conv2d`.
    padding : int, (int, int) or {"valid", "same"}, default 0
        As for `conv2d`.
    dilation : int or (int, int), default 1
        As for `conv2d`.
    groups : int, default 1
        As for `conv2d`.
    dtype : {numpy.float32, numpy.float64}
        The computing dtype.
    backend : {"auto", "numba", "cython"}
        The backend whose kernels are asked (some entries exist on Cython only).

    Returns
    -------
    tuple of str
        Names from the planner's registry whose preconditions hold, in registry order.

    Raises
    ------
    ValueError, TypeError
        The arguments `conv2d` would refuse, with the same messages.

    See Also
    --------
    conv2d : Takes one of these as ``algorithm=``.
    tune : Times them all on this machine.

    Examples
    --------
    >>> import fastconv
    >>> "gemm" in fastconv.algorithms((1, 8, 16, 16), (8, 8, 3, 3), padding=1)
    True
    """
    from .cost import conv2d_cost  # validates the shapes and arguments like conv2d

    conv2d_cost(x_shape, weight_shape, stride, padding, dilation, groups, dtype, backend=backend)
    g = geometry_from_shapes(x_shape, weight_shape, stride, padding, dilation, groups, dtype)
    return tuple(applicable(g, backend))


def tune(
    x,
    weight,
    bias=None,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    *,
    backend="auto",
    repeat=5,
    remember=True,
):
    """Time every algorithm that applies to this conv2d call and make the fastest the plan for it.

    Like FFTW's wisdom or cuDNN's benchmark mode: the planner's cost model is measured on one
    machine and is right for most shapes; `tune` measures this shape on this machine.  The
    winner (algorithm and thread count) is used by every later `conv2d` call with the same
    shapes, dtype, arguments, backend and thread setting, in this process and, with
    ``remember=True``, in later ones (a small JSON file in the user's cache directory, or
    ``$FASTCONV_CACHE_DIR``; written atomically, ignored if unreadable).

    Parameters
    ----------
    x : array_like, shape (N, C, H, W) or (C, H, W)
        As for `conv2d` (the data is used for timing only).
    weight : array_like, shape (K, C/groups, kh, kw)
        As for `conv2d`.
    bias : array_like, shape (K,), optional
        As for `conv2d`.
    stride : int or (int, int), default 1
        As for `conv2d`.
    padding : int, (int, int) or {"valid", "same"}, default 0
        As for `conv2d`.
    dilation : int or (int, int), default 1
        As for `conv2d`.
    groups : int, default 1
        As for `conv2d`.
    backend : {"auto", "numba", "cython"}
        The backend to tune for; the plan applies to calls on that backend.
    repeat : int, default 5
        Timed calls per option and pass (two passes in opposite orders); the best counts.
    remember : bool, default True
        Store the winner in the cache file (else only for this process).

    Returns
    -------
    TuneResult
        ``algorithm``, ``nthreads`` and ``seconds``, the best time of each option tried.

    Raises
    ------
    ValueError, TypeError
        `repeat` not a positive int, or the arguments `conv2d` would refuse.

    See Also
    --------
    algorithms : The options it times.
    conv2d : Uses the winner for later calls of the same shapes.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.ones((1, 8, 16, 16), np.float32); w = np.ones((8, 8, 3, 3), np.float32)
    >>> r = fastconv.tune(x, w, padding=1, remember=False)
    >>> r.algorithm in fastconv.algorithms(x.shape, w.shape, padding=1)
    True
    """
    if isinstance(repeat, bool) or not isinstance(repeat, numbers.Integral) or repeat < 1:
        raise ValueError(f"repeat must be a positive int, got {repeat!r}")
    x4, w, b, g = conv_geometry(x, weight, bias, stride, padding, dilation, groups)
    be = resolve_backend(backend)
    budget = _threads.get_num_threads()
    w3 = w.reshape(1, g.K, -1)
    b2 = None if b is None else b.reshape(1, g.K)
    plans = [
        ConvPlan(name, be, nt, fit[1], fit[0], forced=True)
        for name in applicable(g, be)
        for nt in sorted({1, budget})
        for fit in [ALGORITHMS[name].workspace(g, be, nt, 1, WORKSPACE_BYTES)]
        if fit is not None
    ]
    res = np.empty((g.N, g.K, g.Ho, g.Wo), g.dtype)
    best = {}
    # each option's calls back to back after a warm-up call (a Numba kernel may compile, a
    # sleeping thread pool wakes), in two passes of opposite order so drifting load hits all
    for order in (plans, plans[::-1]):
        for p in order:
            run_conv(p, x4, w3, b2, g, res)
            k = (p.algorithm, p.nthreads)
            for _ in range(int(repeat)):
                t = time.perf_counter()
                run_conv(p, x4, w3, b2, g, res)
                best[k] = min(best.get(k, math.inf), time.perf_counter() - t)
    algorithm, nthreads = min(best, key=best.get)
    _wisdom.record(g, be, budget, False, algorithm, nthreads, persist=remember)
    clear_cache()
    return TuneResult(algorithm, nthreads, best)
