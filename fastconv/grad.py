"""Training: conv2d's gradients (torch.nn.grad's names), transposed convolution, dynamic_conv2d's gradients.

Validation in _geometry (backward_geometry, transpose_geometry), every choice in _plan
(plan_conv_transpose, plan_conv2d_weight); the multiplies run on conv2d's own kernels and BLAS.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import _threads
from ._geometry import (
    as_float_array,
    backward_geometry,
    result_float_dtype,
    shape_tuple,
    transpose_geometry,
)
from ._plan import (
    _nonfinite,
    cached,
    cython_available,
    kernels,
    packed_phase_panels,
    plan_conv2d_weight,
    plan_conv_transpose,
    run_packed_panels,
    scratch,
)

__all__ = [
    "conv2d_backward",
    "conv2d_input",
    "conv2d_weight",
    "conv_transpose2d",
    "dynamic_conv2d_backward",
]


def _needs(needs, n):
    if (
        not isinstance(needs, (tuple, list))
        or len(needs) != n
        or not all(isinstance(v, (bool, np.bool_)) for v in needs)
    ):
        raise TypeError(f"needs must be a tuple of {n} bools, got {needs!r}")
    return tuple(bool(v) for v in needs)


def _arrays(named):
    """Named array-likes as ndarrays and their computing dtype (float32 unless any input is wider)."""
    arrs = {k: as_float_array(v, k) for k, v in named.items() if v is not None}
    return arrs, result_float_dtype(*arrs.values())


def _key(v):
    t = type(v)
    if t is int or t is str or v is None:
        return v
    if t is tuple or t is list:
        return (t, tuple(_key(e) for e in v))
    return (t, v)


def _transpose_plan(g, Hg, Wg, backend):
    key = ("grad_input", g, Hg, Wg, _key(backend), _threads.get_num_threads())
    return cached(key, lambda: plan_conv_transpose(g, Hg, Wg, backend))


def _weight_plan(g, backend):
    key = ("grad_weight", g, _key(backend), _threads.get_num_threads())
    return cached(key, lambda: plan_conv2d_weight(g, backend))


def _flipped(w, g):
    """conv2d's weight (K, Cg, kh, kw) as the weight of its transposed convolution, group by group:
    (C, Kg, kh, kw) with wt[grp*Cg + c, k] = w[grp*Kg + k, c] (taps flipped per phase later)."""
    G = g.groups
    return (
        w.reshape(G, g.Kg, g.Cg, g.kh, g.kw).transpose(0, 2, 1, 3, 4).reshape(g.C, g.Kg, g.kh, g.kw)
    )


def _phase_weights(wt, phases, backend):
    """For each phase of `phases`, wt[:, :, ph.rows][:, :, :, ph.cols] as a C-contiguous
    (C, Kg, len(rows)*len(cols)) array (None for a phase no tap reaches): views of one buffer,
    filled in one threaded pass over wt (phase_taps)."""
    C, Kg, kh, kw = wt.shape
    taps, start = [], [0]
    for ph in phases:
        if ph.geom is not None:
            taps.extend(a * kw + b for a in ph.rows for b in ph.cols)
            start.append(len(taps))
    buf = scratch("phase_weights", C * Kg * len(taps), wt.dtype)
    nt = 1 if buf.size < (1 << 16) else _threads.get_num_threads()
    kern = kernels(backend if backend == "numba" or cython_available("grad") else "numba", "grad")
    if backend == "cython":
        _threads.mark_pools_started()
    kern.phase_taps(
        wt, np.asarray(taps, dtype=np.int64), np.asarray(start, dtype=np.int64), buf, nt
    )
    out, p = [], 0
    for ph in phases:
        if ph.geom is None:
            out.append(None)
            continue
        out.append(buf[C * Kg * start[p] : C * Kg * start[p + 1]].reshape(C, Kg, -1))
        p += 1
    return out


def _phase_input(go4, ph):
    """grad_output's window that phase `ph` convolves, C-contiguous: a fresh copy (the phases'
    windows, at most a few hundred KiB, stay in malloc's heap; a scratch slot for them ran 0.2 ms
    slower on a 4.2 ms DCGAN layer, 16x256x8x8 4x4 stride 2)."""
    src = go4[:, :, ph.r0 : ph.r1, ph.c0 : ph.c1]
    return np.ascontiguousarray(src)


def _grad_input_into(plan, go4, wt, bias, g, out4):
    """out4 (N, C, H, W) = the transposed convolution of go4 (N, K, Hg, Wg) with wt (+ bias)."""
    from .conv import run_conv

    if plan.method == "gemm":
        return _grad_input_gemm(plan, go4, wt, bias, g, out4)
    b2 = None if bias is None else bias.reshape(1, g.C)
    live = [ph for ph in plan.phases if ph.geom is not None]
    for ph in plan.phases:
        if ph.geom is None:
            out4[:, :, ph.r :: g.sh, ph.c :: g.sw] = (
                0 if bias is None else bias[None, :, None, None]
            )
    if not live:
        return out4
    # every phase on the packed kernel: its weight panels straight from wt, in one pass;
    # else the phases' weights, gathered in one pass, each call packing its own
    panels = packed_phase_panels(plan.phases, wt, plan.backend, _threads.get_num_threads())
    if panels is None:
        weights = [w for w in _phase_weights(wt, plan.phases, plan.backend) if w is not None]

    def run(q, ph, win, dst):
        if panels is None:
            run_conv(ph.plan, win, weights[q].reshape(1, g.C, -1), b2, ph.geom, dst)
        else:
            run_packed_panels(ph.plan, win, panels[q], b2, ph.geom, dst)

    if len(plan.phases) == 1:  # stride 1: the convolution writes the result itself
        ph = live[0]
        run(0, ph, _phase_input(go4, ph), out4)
        return out4
    # the phases' results side by side in one buffer (the result's size at most), then one
    # pass puts them in place, a plane at a time (scatter_phases)
    sizes = [g.N * g.C * ph.geom.Ho * ph.geom.Wo for ph in live]
    lanes = 64 // g.dtype.itemsize  # each phase's result on a cache-line boundary
    ybuf = scratch("phase_out", sum(-(-n // lanes) * lanes for n in sizes), g.dtype)
    pinfo = np.empty((len(live), 5), dtype=np.int64)
    off = 0
    for q, ph in enumerate(live):
        sub = ph.geom
        # one copy from the strided view (fancy indexing made three: 2.4 ms of 6.9 on a
        # 256-channel 3x3 layer at 4x14x14, whose forward call takes 3.6)
        win = _phase_input(go4, ph)
        y = ybuf[off : off + sizes[q]].reshape(g.N, g.C, sub.Ho, sub.Wo)
        run(q, ph, win, y)
        pinfo[q] = (off, sub.Ho, sub.Wo, ph.r, ph.c)
        off += -(-sizes[q] // lanes) * lanes
    nt = 1 if out4.size < (1 << 16) else _threads.get_num_threads()
    kern = kernels(plan.backend if cython_available("grad") else "numba", "grad")
    if plan.backend == "cython":
        _threads.mark_pools_started()
    kern.scatter_phases(ybuf, pinfo, g.sh, g.sw, out4, nt)
    return out4


def _grad_input_gemm(plan, go4, wt, bias, g, out4):
    """out4 = col2im(W^T @ go4) (+ bias): GEMM + col2im, chunks of samples on static threads."""
    chunks = [(n0, min(g.N, n0 + plan.samples)) for n0 in range(0, g.N, plan.samples)]
    nt = min(plan.nthreads, len(chunks))
    with np.errstate(all="ignore"), _threads.blas_single():
        if nt <= 1:
            _grad_input_chunks(plan, go4, wt, bias, g, out4, chunks)
        else:
            pool = _pool(nt - 1)
            futs = [
                pool.submit(_grad_input_chunks, plan, go4, wt, bias, g, out4, chunks[t::nt])
                for t in range(1, nt)
            ]
            try:
                _grad_input_chunks(plan, go4, wt, bias, g, out4, chunks[::nt])
            finally:
                for f in futs:
                    f.result()
    return out4


def _grad_input_chunks(plan, go4, wt, bias, g, out4, chunks):
    """GEMM + col2im of the sample chunks `chunks` (one thread; BLAS and col2im on one thread)."""
    Hg, Wg = go4.shape[2], go4.shape[3]
    P, G, Kg, R = Hg * Wg, g.groups, g.Kg, g.R
    # wt (C, Kg, kh, kw) -> per group the (R, Kg) matrix whose product with grad_output's
    # (Kg, pixels) is that group's rows of the columns, ordered (c, i, j) as col2im reads them
    wg = wt.reshape(G, g.Cg, Kg, g.kh * g.kw).transpose(0, 1, 3, 2).reshape(G, R, Kg)
    geo = dataclasses.replace(g, Ho=Hg, Wo=Wg)
    kern = kernels(plan.backend)
    # reused: one chunk's columns at a time
    buf = scratch("gi_cols", plan.samples * G * R * P, g.dtype)
    for n0, n1 in chunks:
        nb = n1 - n0
        go3 = go4[n0:n1].reshape(nb, g.K, P)
        cols = buf[: nb * G * R * P].reshape(nb, G * R, P)
        if P >= 256:  # long rows: one GEMM per sample and group, straight into the columns
            for i in range(nb):
                for grp in range(G):
                    np.matmul(
                        wg[grp],
                        go3[i, grp * Kg : (grp + 1) * Kg],
                        out=cols[i, grp * R : (grp + 1) * R],
                    )
        else:  # short rows: the chunk's pixels side by side, one longer GEMM per group
            gt = go3.transpose(1, 0, 2).reshape(g.K, nb * P)
            for grp in range(G):
                c = wg[grp] @ gt[grp * Kg : (grp + 1) * Kg]
                cols[:, grp * R : (grp + 1) * R] = c.reshape(R, nb, P).transpose(1, 0, 2)
        sub = dataclasses.replace(geo, N=nb, K=g.C, groups=1)
        _threads.mark_pools_started()
        kern.col2im(cols, sub.as_array(), out4[n0:n1], 1)
        if bias is not None:
            out4[n0:n1] += bias[None, :, None, None]


def _grad_weight(plan, x4, go4, g):
    """dW (K, Cg, kh, kw) = sum over samples and output pixels of grad_output x the input taps."""
    K, Cg = g.K, g.Cg
    nt = plan.nthreads
    if plan.method == "conv" and _nonfinite(go4):
        plan = plan.fallback  # NaN/inf where torch puts them (_plan._weight_grad_conv_plan)
    if plan.method == "conv":  # _plan._weight_grad_conv_plan: x's channels conv grad_output's
        from .conv import run_conv

        sub = plan.geom
        xt = np.ascontiguousarray(x4[:, :, : sub.H, : sub.W].transpose(1, 0, 2, 3))
        gt = np.ascontiguousarray(go4.transpose(1, 0, 2, 3)).reshape(1, K, -1)
        y = run_conv(plan.conv, xt, gt, None, sub)  # (C, K, kh, kw)
        return np.ascontiguousarray(y.transpose(1, 0, 2, 3))
    if plan.method == "direct":  # _plan._weight_grad_direct_plan: no im2col matrix
        lanes = 64 // g.dtype.itemsize
        nparts = 1 if plan.ksplit else nt
        parts = scratch("wgrad_parts", (nparts, Cg * g.kh * g.kw, -(-K // lanes) * lanes), g.dtype)
        ws = scratch("wgrad_ws", (nt, -(-plan.thread_ws // lanes) * lanes), g.dtype)
        dw = np.empty((K, Cg, g.kh, g.kw), dtype=g.dtype)
        with np.errstate(all="ignore"):
            _threads.mark_pools_started()
            kernels(plan.backend, "grad").conv_wgrad_direct(
                x4,
                go4,
                g.as_array(),
                parts,
                ws,
                dw.reshape(K, -1),
                plan.samples,
                plan.rows,
                plan.cols,
                plan.ksplit,
                nt,
            )
        return dw
    dw = np.zeros((K, Cg * g.kh * g.kw), dtype=g.dtype)
    if g.N == 0:
        return dw.reshape(K, Cg, g.kh, g.kw)
    with np.errstate(all="ignore"):
        if plan.method == "depthwise":
            kern = kernels(plan.backend, "grad")
            _threads.mark_pools_started()
            kern.conv_depthwise_wgrad(x4, go4, g.as_array(), dw, plan.nthreads)
            return dw.reshape(K, Cg, g.kh, g.kw)
        tiles = _weight_tiles(plan, g)
        parts = [np.zeros_like(dw) for _ in range(min(nt, len(tiles)) - 1)]
        with _threads.blas_single():
            if len(parts) == 0:
                _weight_tiles_run(plan, x4, go4, g, tiles, dw)
            else:
                # static shares of the tiles on Python threads, each packing its own columns and
                # calling BLAS on one thread: measured on the loaded 2-core machine, alternating a
                # 2-thread im2col with a 2-thread GEMM ran 4x slower than one thread (the pools
                # spin against each other), and so did 2-thread OpenBLAS alone
                pool = _pool(len(parts))
                futs = [
                    pool.submit(_weight_tiles_run, plan, x4, go4, g, tiles[t + 1 :: nt], part)
                    for t, part in enumerate(parts)
                ]
                try:
                    _weight_tiles_run(plan, x4, go4, g, tiles[::nt], dw)
                finally:
                    for f in futs:
                        f.result()
                for part in parts:
                    dw += part
    return dw.reshape(K, Cg, g.kh, g.kw)


def _pool(n):
    """The persistent worker pool (_threads.worker_pool) of at least n threads."""
    return _threads.worker_pool(n)


def _weight_tiles(plan, g):
    """(n0, n1, h0, h1) tiles of samples x output rows covering the output."""
    return [
        (n0, min(g.N, n0 + plan.samples), h0, min(g.Ho, h0 + plan.rows))
        for n0 in range(0, g.N, plan.samples)
        for h0 in range(0, g.Ho, plan.rows)
    ]


def _weight_tiles_run(plan, x4, go4, g, tiles, dw):
    """dw += the weight gradient contributed by `tiles` (one thread; BLAS on one thread)."""
    K, Kg, G, R = g.K, g.Kg, g.groups, g.R
    kern = kernels(plan.backend)
    buf = None  # one column buffer per thread, reused by every tile (the bound is per thread)
    for n0, n1, h0, h1 in tiles:
        T = (h1 - h0) * g.Wo
        gt = go4[n0:n1, :, h0:h1].reshape(n1 - n0, K, T)
        if plan.method == "pointwise":
            cols = x4[n0:n1, :, h0:h1].reshape(n1 - n0, g.C, T)
        else:
            lo = h0 * g.sh - g.pt
            hi = (h1 - 1) * g.sh - g.pt + g.dh * (g.kh - 1) + 1
            a, b = max(lo, 0), min(hi, g.H)
            if a >= b:
                continue  # every tap of these rows is padding: no contribution
            xs = np.ascontiguousarray(x4[n0:n1, :, a:b])
            sub = dataclasses.replace(g, N=n1 - n0, H=b - a, pt=max(0, -lo), Ho=h1 - h0)
            if buf is None:
                buf = scratch(
                    "wgrad_cols", plan.samples * g.C * g.kh * g.kw * plan.rows * g.Wo, g.dtype
                )
            cols = buf[: (n1 - n0) * g.C * g.kh * g.kw * T].reshape(n1 - n0, g.C * g.kh * g.kw, T)
            _threads.mark_pools_started()
            kern.im2col(xs, sub.as_array(), cols, 1)
        for grp in range(G):
            cg = cols[:, grp * R : (grp + 1) * R]
            gg = gt[:, grp * Kg : (grp + 1) * Kg]
            for i in range(n1 - n0):  # 2-D products: a stacked matmul copies the transposed columns
                # columns x grad_output^T: OpenBLAS runs this orientation 15-25% faster here
                # (Kg=64, R=576: 92-94 against 74-78 GFLOP/s on one thread)
                dw[grp * Kg : (grp + 1) * Kg] += (cg[i] @ gg[i].T).T


def _as(a, dtype):
    return np.ascontiguousarray(a, dtype=dtype)


def conv2d_input(
    input_size, weight, grad_output, stride=1, padding=0, dilation=1, groups=1, *, backend="auto"
):
    """Gradient of `fastconv.conv2d` with respect to its input (``torch.nn.grad.conv2d_input``).

    Parameters
    ----------
    input_size : tuple of int
        Shape of the forward call's x: (N, C, H, W) or (C, H, W).
    weight : array_like, shape (K, C/groups, kh, kw)
        The forward call's filters.
    grad_output : array_like
        Gradient of the loss with respect to the forward call's output (its shape).
    stride : int or (int, int), default 1
        As for `fastconv.conv2d`.
    padding : int, (int, int) or {"valid", "same"}, default 0
        As for `fastconv.conv2d` (every padding form, "same" included).
    dilation : int or (int, int), default 1
        As for `fastconv.conv2d`.
    groups : int, default 1
        As for `fastconv.conv2d`.
    backend : {"auto", "numba", "cython"}
        Which compiled kernels run; both give the same results.

    Returns
    -------
    ndarray, shape `input_size`
        The input gradient: float32 if weight and grad_output are float32 (or narrower), float64
        otherwise.

    Raises
    ------
    ValueError, TypeError
        Everything `conv2d` would refuse for these shapes, and a grad_output whose shape is not
        the forward output's, naming the argument, before any computation.

    See Also
    --------
    conv2d_weight, conv2d_backward, conv_transpose2d

    Notes
    -----
    Computed as the transposed convolution of grad_output, split into stride phases: input
    rows ``r::stride`` receive only the taps of one residue class of the flipped weight, a stride-1
    convolution the planner runs like any forward call (packed kernel, Winograd, depthwise,
    grouped), so it costs the forward call's multiply-adds, with no zeros inserted.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> w = np.ones((1, 1, 3, 3), dtype=np.float32)
    >>> go = np.ones((1, 1, 2, 2), dtype=np.float32)
    >>> fastconv.conv2d_input((1, 1, 4, 4), w, go)[0, 0]
    array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]], dtype=float32)
    """
    arrs, dtype = _arrays({"weight": weight, "grad_output": grad_output})
    g = backward_geometry(
        input_size,
        arrs["weight"].shape,
        arrs["grad_output"].shape,
        stride,
        padding,
        dilation,
        groups,
        dtype,
    )
    w, go = _as(arrs["weight"], dtype), _as(arrs["grad_output"], dtype)
    go4 = go if g.batched else go[None]
    out = np.empty((g.N, g.C, g.H, g.W), dtype=dtype)
    if g.N:
        plan = _transpose_plan(g, g.Ho, g.Wo, backend)
        _grad_input_into(plan, go4, _flipped(w, g), None, g, out)
    return out if g.batched else out[0]


def conv2d_weight(
    input, weight_size, grad_output, stride=1, padding=0, dilation=1, groups=1, *, backend="auto"
):
    """Gradient of `fastconv.conv2d` with respect to its weight (``torch.nn.grad.conv2d_weight``).

    Parameters
    ----------
    input : array_like, shape (N, C, H, W) or (C, H, W)
        The forward call's x.
    weight_size : tuple of int
        Shape of the forward call's weight, (K, C/groups, kh, kw).
    grad_output : array_like
        Gradient of the loss with respect to the forward call's output (its shape).
    stride : int or (int, int), default 1
        As for `fastconv.conv2d`.
    padding : int, (int, int) or {"valid", "same"}, default 0
        As for `fastconv.conv2d`.
    dilation : int or (int, int), default 1
        As for `fastconv.conv2d`.
    groups : int, default 1
        As for `fastconv.conv2d`.
    backend : {"auto", "numba", "cython"}
        Which compiled kernels run; both give the same results.

    Returns
    -------
    ndarray, shape `weight_size`
        The weight gradient, in the computing dtype (float32 if the inputs are float32).

    Raises
    ------
    ValueError, TypeError
        As `conv2d_input`.

    See Also
    --------
    conv2d_input, conv2d_backward

    Notes
    -----
    The whole im2col matrix is never built.  groups=1 layers on a CPU with AVX-512 run a
    register tile of 64 output channels x 6 input taps over runs of about 144 output pixels
    (grad_output pixel-major and the input rows zero-padded per run, both in cache); the sums
    are the same on every call.  Elsewhere: one convolution of the input's channels with
    grad_output's, or one GEMM per group of grad_output's pixels against im2col tiles of the
    input (a few samples, or a band of output rows, at most 16 MiB of columns), accumulated;
    1x1 stride-1 layers multiply the input as it lies.  Depthwise layers sum vectors of output
    pixels per tap, in-image taps only.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.arange(16.0).reshape(1, 1, 4, 4)
    >>> go = np.ones((1, 1, 2, 2))
    >>> fastconv.conv2d_weight(x, (1, 1, 3, 3), go)[0, 0]
    array([[10., 14., 18.],
           [26., 30., 34.],
           [42., 46., 50.]])
    """
    arrs, dtype = _arrays({"input": input, "grad_output": grad_output})
    weight_size = shape_tuple(weight_size, "weight_size")
    g = backward_geometry(
        arrs["input"].shape,
        weight_size,
        arrs["grad_output"].shape,
        stride,
        padding,
        dilation,
        groups,
        dtype,
        names=("input", "weight_size"),
    )
    x4 = _as(arrs["input"] if g.batched else arrs["input"][None], dtype)
    go4 = _as(arrs["grad_output"] if g.batched else arrs["grad_output"][None], dtype)
    return _grad_weight(_weight_plan(g, backend), x4, go4, g)


def conv2d_backward(
    x,
    weight,
    grad_output,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    *,
    needs=(True, True, True),
    backend="auto",
):
    """The gradients of one `fastconv.conv2d` call: input, weight and bias, in one call.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W) or (C, H, W)
        The forward call's input.
    weight : array_like, shape (K, C/groups, kh, kw)
        The forward call's filters.
    grad_output : array_like
        Gradient of the loss with respect to the forward output (its shape).
    stride : int or (int, int), default 1
        As for `fastconv.conv2d`.
    padding : int, (int, int) or {"valid", "same"}, default 0
        As for `fastconv.conv2d`.
    dilation : int or (int, int), default 1
        As for `fastconv.conv2d`.
    groups : int, default 1
        As for `fastconv.conv2d`.
    needs : tuple of 3 bools, default (True, True, True)
        Which of (grad_x, grad_weight, grad_bias) to compute (torch's output_mask).
    backend : {"auto", "numba", "cython"}
        Which compiled kernels run; both give the same results.

    Returns
    -------
    grad_x, grad_weight, grad_bias : ndarray or None
        Shapes of x, weight and (K,); None where `needs` is False.

    Raises
    ------
    ValueError, TypeError
        As `conv2d`, plus a grad_output of the wrong shape or a bad `needs`, naming the argument.

    See Also
    --------
    conv2d_input, conv2d_weight, fastconv.conv2d

    Notes
    -----
    Validates once, converts every array once and plans both gradients from one geometry (the
    plans are remembered across calls with the same shapes, as conv2d's are).

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.ones((2, 3, 5, 5)); w = np.ones((4, 3, 3, 3))
    >>> go = np.ones((2, 4, 5, 5))
    >>> gx, gw, gb = fastconv.conv2d_backward(x, w, go, padding=1)
    >>> gx.shape, gw.shape, gb
    ((2, 3, 5, 5), (4, 3, 3, 3), array([50., 50., 50., 50.]))
    """
    needs = _needs(needs, 3)
    arrs, dtype = _arrays({"x": x, "weight": weight, "grad_output": grad_output})
    g = backward_geometry(
        arrs["x"].shape,
        arrs["weight"].shape,
        arrs["grad_output"].shape,
        stride,
        padding,
        dilation,
        groups,
        dtype,
        names=("x", "weight"),
    )
    x4 = _as(arrs["x"] if g.batched else arrs["x"][None], dtype)
    go4 = _as(arrs["grad_output"] if g.batched else arrs["grad_output"][None], dtype)
    w = _as(arrs["weight"], dtype)
    gx = gw = gb = None
    if needs[0]:
        gx = np.empty((g.N, g.C, g.H, g.W), dtype=dtype)
        if g.N:
            _grad_input_into(
                _transpose_plan(g, g.Ho, g.Wo, backend), go4, _flipped(w, g), None, g, gx
            )
        gx = gx if g.batched else gx[0]
    if needs[1]:
        gw = _grad_weight(_weight_plan(g, backend), x4, go4, g)
    if needs[2]:
        with np.errstate(all="ignore"):
            gb = go4.sum(axis=(0, 2, 3))
    return gx, gw, gb


def conv_transpose2d(
    x,
    weight,
    bias=None,
    stride=1,
    padding=0,
    output_padding=0,
    groups=1,
    dilation=1,
    *,
    backend="auto",
):
    """Transposed 2-D convolution with ``torch.nn.functional.conv_transpose2d``'s semantics.

    Parameters
    ----------
    x : array_like, shape (N, Cin, Hin, Win) or (Cin, Hin, Win)
        Input batch (or one unbatched image).
    weight : array_like, shape (Cin, Cout/groups, kh, kw)
        Filters, laid out as torch's (input channels first).
    bias : array_like, shape (Cout,), optional
        Added to every output pixel of each channel.
    stride : int or (int, int), default 1
        Upsampling factor: the step between the output positions neighbouring inputs land on.
    padding : int or (int, int), default 0
        ``dilation*(kernel_size-1) - padding`` zeros are (implicitly) added to both sides of x.
    output_padding : int or (int, int), default 0
        Extra rows/columns on the bottom/right of the output; smaller than stride or dilation.
    groups : int, default 1
        Channels are split into `groups` blocks transposed independently.
    dilation : int or (int, int), default 1
        Spacing between kernel taps.
    backend : {"auto", "numba", "cython"}
        Which compiled kernels run; both give the same results.

    Returns
    -------
    ndarray, shape (N, Cout, Hout, Wout) or (Cout, Hout, Wout)
        ``Hout = (Hin - 1)*stride - 2*padding + dilation*(kh - 1) + output_padding + 1``, likewise
        Wout.  float32 if every input is float32 or narrower, float64 otherwise.

    Raises
    ------
    ValueError, TypeError
        torch's errors (channels of x against weight.shape[0], groups, output_padding not below
        stride or dilation, an output size below one, string padding), naming the argument.

    See Also
    --------
    conv2d_input : The same computation, as conv2d's input gradient.

    Notes
    -----
    The transposed convolution is conv2d's input gradient; it runs as stride phases of stride-1
    convolutions (see `conv2d_input`), so a 2x2 stride-2 up-convolution is four 1x1 GEMMs and a
    4x4 stride-2 one four 2x2 convolutions.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.array([[[[1.0, 2.0]]]])
    >>> w = np.ones((1, 1, 2, 2))
    >>> fastconv.conv_transpose2d(x, w, stride=2)[0, 0]
    array([[1., 1., 2., 2.],
           [1., 1., 2., 2.]])
    """
    arrs, dtype = _arrays({"x": x, "weight": weight, "bias": bias})
    g, Hin, Win = transpose_geometry(
        arrs["x"].shape,
        arrs["weight"].shape,
        stride,
        padding,
        output_padding,
        groups,
        dilation,
        dtype,
    )
    b = None
    if bias is not None:
        if arrs["bias"].shape != (g.C,):
            raise ValueError(f"bias must have shape {(g.C,)}, got {arrs['bias'].shape}")
        b = _as(arrs["bias"], dtype)
    x4 = _as(arrs["x"] if g.batched else arrs["x"][None], dtype)
    w = _as(arrs["weight"], dtype)
    out = np.empty((g.N, g.C, g.H, g.W), dtype=dtype)
    if g.N:
        plan = _transpose_plan(g, Hin, Win, backend)
        _grad_input_into(plan, x4, _flipped(w, g), b, g, out)
    return out if g.batched else out[0]


def dynamic_conv2d_backward(
    x,
    weight_bank,
    attention,
    grad_output,
    bias_bank=None,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    *,
    backend="auto",
):
    """Compute the gradients of `fastconv.dynamic_conv2d` (x, the bank, the attention, the biases).

    Parameters
    ----------
    x : array_like, shape (N, C, H, W) or (C, H, W)
        The forward call's input.
    weight_bank : array_like, shape (E, K, C/groups, kh, kw)
        The forward call's expert kernels.
    attention : array_like, shape (N, E), or (E,) for an unbatched x
        The forward call's mixing coefficients.
    grad_output : array_like
        Gradient of the loss with respect to dynamic_conv2d's output (its shape).
    bias_bank : array_like, shape (E, K), optional
        The forward call's expert biases.
    stride : int or (int, int), default 1
        As for `fastconv.dynamic_conv2d`.
    padding : int, (int, int) or {"valid", "same"}, default 0
        As for `fastconv.dynamic_conv2d`.
    dilation : int or (int, int), default 1
        As for `fastconv.dynamic_conv2d`.
    groups : int, default 1
        As for `fastconv.dynamic_conv2d`.
    backend : {"auto", "numba", "cython"}
        Which compiled kernels run; both give the same results.

    Returns
    -------
    grad_x : ndarray, shape of x
        Gradient with respect to x.
    grad_bank : ndarray, shape (E, K, C/groups, kh, kw)
        Gradient with respect to the weight bank.
    grad_attention : ndarray, shape of attention
        Gradient with respect to the attention.
    grad_bias_bank : ndarray, shape (E, K), or None without bias_bank
        Gradient with respect to the bias bank.

    Raises
    ------
    ValueError, TypeError
        As `dynamic_conv2d`, plus a grad_output of the wrong shape, naming the argument.

    See Also
    --------
    fastconv.dynamic_conv2d, conv2d_backward

    Notes
    -----
    With ``W_n = sum_e attention[n, e] * bank[e]``: ``grad_x[n]`` is conv2d's input gradient with
    ``W_n``; with ``G_n`` the weight gradient of sample n alone, ``grad_bank[e] = sum_n
    attention[n, e] * G_n`` and ``grad_attention[n, e] = <G_n, bank[e]> + <g_n, bias_bank[e]>``
    (``g_n`` the bias gradient of sample n).  Samples run one at a time, so the extra memory is a
    few kernels, whatever the batch.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.ones((2, 1, 3, 3))
    >>> bank = np.stack([np.ones((1, 1, 1, 1)), 2 * np.ones((1, 1, 1, 1))])
    >>> att = np.array([[1.0, 0.0], [0.5, 0.5]])
    >>> go = np.ones((2, 1, 3, 3))
    >>> gx, gbank, gatt, gbias = fastconv.dynamic_conv2d_backward(x, bank, att, go)
    >>> gatt
    array([[ 9., 18.],
           [ 9., 18.]])
    """
    from .dynamic import _validate

    x4, bank, att, bias_bank, g, E = _validate(
        x, weight_bank, attention, bias_bank, stride, padding, dilation, groups
    )
    go = as_float_array(grad_output, "grad_output")
    if go.shape != tuple(g.out_shape):
        raise ValueError(f"grad_output must have shape {tuple(g.out_shape)}, got {go.shape}")
    dtype = result_float_dtype(go, x4)
    if dtype != g.dtype:
        x4, bank, att = x4.astype(dtype), bank.astype(dtype), att.astype(dtype)
        bias_bank = None if bias_bank is None else bias_bank.astype(dtype)
        g = dataclasses.replace(g, dtype=dtype)
    go4 = _as(go if g.batched else go[None], dtype)
    g1 = dataclasses.replace(g, N=1, batched=True)
    tplan = _transpose_plan(g1, g.Ho, g.Wo, backend)
    wplan = _weight_plan(g1, backend)
    bank2 = bank.reshape(E, -1)
    gx = np.empty((g.N, g.C, g.H, g.W), dtype=dtype)
    gbank = np.zeros_like(bank2)
    gatt = np.empty((g.N, E), dtype=dtype)
    gbias = None if bias_bank is None else np.zeros((E, g.K), dtype=dtype)
    with np.errstate(all="ignore"), _threads.blas_single():
        for n in range(g.N):
            wn = (att[n] @ bank2).reshape(g.K, g.Cg, g.kh, g.kw)
            _grad_input_into(tplan, go4[n : n + 1], _flipped(wn, g1), None, g1, gx[n : n + 1])
            gwn = _grad_weight(wplan, x4[n : n + 1], go4[n : n + 1], g1).reshape(-1)
            gbank += att[n][:, None] * gwn[None, :]
            gatt[n] = bank2 @ gwn
            if bias_bank is not None:
                gbn = go4[n].sum(axis=(1, 2))
                gbias += att[n][:, None] * gbn[None, :]
                gatt[n] += bias_bank @ gbn
    gbank = gbank.reshape(bank.shape)
    if not g.batched:
        return gx[0], gbank, gatt.reshape(np.shape(attention)), gbias
    return gx, gbank, gatt, gbias
