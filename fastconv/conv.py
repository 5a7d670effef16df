"""conv2d with PyTorch's argument semantics on NumPy arrays, run by the planned algorithm.

Validation happens once in _geometry; this module allocates, plans, calls the kernels and restores shape.
"""

from __future__ import annotations

import numpy as np

from . import _threads
from ._geometry import check_out, conv_geometry
from ._plan import kernels, plan_conv2d

__all__ = ["conv2d"]


def conv2d(
    x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, out=None, backend="auto"
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
    backend : {"auto", "numba", "cython"}
        Which compiled kernels to use; both give the same results.

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
    fastconv.dynamic_conv2d : per-sample kernels.
    fastconv.signal.correlate2d : scipy.signal-compatible 2-D filtering.
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
    x4, w, b, g = conv_geometry(x, weight, bias, stride, padding, dilation, groups)
    out = check_out(out, g.out_shape, g.dtype)
    plan = plan_conv2d(g, backend)
    w3 = w.reshape(1, g.K, -1)
    b2 = None if b is None else b.reshape(1, g.K)
    return run_conv(plan, x4, w3, b2, g, out)


def run_conv(plan, x4, w3, b2, g, out=None):
    """Run a planned convolution.  Arrays are already validated and contiguous in g.dtype.

    w3 is (Nw, K, Cg*kh*kw) with Nw in {1, N} and b2 (Nb, K) or None: per-sample weights serve
    dynamic convolution through the same kernels.  Shared by conv2d and dynamic_conv2d.
    """
    shape4 = (g.N, g.K, g.Ho, g.Wo)
    direct = out is not None and out.flags.c_contiguous and not np.may_share_memory(out, x4)
    res = out if direct else np.empty(g.out_shape, dtype=g.dtype)
    res4 = res.reshape(shape4)
    if g.N > 0:
        _dispatch(plan, x4, w3, b2, g, res4)
    if out is not None and not direct:
        out[...] = res
        return out
    return res


def _dispatch(plan, x4, w3, b2, g, res4):
    has_bias = b2 is not None
    bias = b2 if has_bias else np.zeros((1, 1), dtype=g.dtype)
    nt = plan.nthreads
    if plan.algorithm == "pointwise":
        # One GEMM per sample on the input as it lies; BLAS gets fastconv's thread count.
        with _threads.blas_threads(nt):
            np.matmul(w3, x4.reshape(g.N, g.C, g.H * g.W), out=res4.reshape(g.N, g.K, g.P))
        if has_bias:
            res4 += bias.reshape(bias.shape[0], g.K, 1, 1)
        return
    if plan.algorithm == "fft":
        _conv_fft(x4, w3[0], bias[0] if has_bias else None, g, res4, nt, plan.tile)
        return
    mod = kernels(plan.backend)
    geo = g.as_array()
    _threads.mark_pools_started()
    if plan.algorithm == "grouped":
        wt = pack_grouped_weights(w3, g)
        ws = np.empty((nt, mod.grouped_workspace(geo)), dtype=g.dtype)
        mod.conv_grouped(x4, wt, bias, has_bias, geo, res4, ws, nt)
        return
    if plan.algorithm == "depthwise":
        ws = np.empty((nt, mod.depthwise_workspace(geo)), dtype=g.dtype)
        mod.conv_depthwise(x4, w3, bias, has_bias, geo, res4, ws, nt)
    elif plan.algorithm == "winograd":
        ws = np.empty(plan.workspace, dtype=g.dtype)
        wk = kernels(plan.backend, "winograd")
        if g.dh == g.dw == 1:
            wk.conv_winograd(x4, w3, bias, has_bias, geo, res4, ws, nt)
            return
        # dilated: each phase sub-image is an undilated convolution (ConvGeometry.dilation_phases);
        # alike phases run as one batch, split and merged by the conv kernels
        st = g.stacked_phases()
        if st is not None:
            n_in, n_out = st.N * st.C * st.H * st.W, st.N * st.K * st.Ho * st.Wo
            xs = ws[:n_in].reshape(st.N, st.C, st.H, st.W)
            mod.phase_split(x4, xs, g.dh, g.dw, nt)
            ys = ws[n_in : n_in + n_out].reshape(st.N, st.K, st.Ho, st.Wo)
            reps = (g.dh * g.dw, 1, 1)
            w3s = w3 if w3.shape[0] == 1 else np.tile(w3, reps)
            bs = bias if bias.shape[0] == 1 else np.tile(bias, (g.dh * g.dw, 1))
            wk.conv_winograd(xs, w3s, bs, has_bias, st.as_array(), ys, ws[n_in + n_out :], nt)
            mod.phase_merge(ys, res4, g.dh, g.dw, nt)
            return
        for r, a, c, b, p in g.dilation_phases():
            n_in, n_out = p.N * p.C * p.H * p.W, p.N * p.K * p.Ho * p.Wo
            xa = ws[:n_in].reshape(p.N, p.C, p.H, p.W)
            xa[...] = x4[:, :, a :: g.dh, b :: g.dw]
            ya = ws[n_in : n_in + n_out].reshape(p.N, p.K, p.Ho, p.Wo)
            wk.conv_winograd(xa, w3, bias, has_bias, p.as_array(), ya, ws[n_in + n_out :], nt)
            res4[:, :, r :: g.dh, c :: g.dw] = ya
    elif plan.algorithm == "packed":
        ws = np.empty(plan.workspace, dtype=g.dtype)
        pk = kernels(plan.backend, "packed")
        pk.conv_packed(
            x4, w3[0].reshape(g.K, g.Cg, g.kh, g.kw), bias[0], has_bias, geo, res4, ws, nt
        )
    else:
        ws = np.empty((nt, plan.workspace // nt), dtype=g.dtype)
        with _threads.blas_single():
            mod.conv_gemm(
                x4, w3, bias, has_bias, geo, res4.reshape(g.N, g.K, g.P), ws, plan.tile, nt
            )


def _conv_fft(x4, w2, b, g, res4, nthreads, chunk):
    """conv2d by FFT, `chunk` samples at a time so the spectra stay within the workspace bound."""
    from ._fft import correlate_valid_fft

    w = w2.reshape(g.K, g.Cg, g.kh, g.kw)
    if g.dh > 1 or g.dw > 1:  # dilation: the kernel with zeros between its taps
        wd = np.zeros((g.K, g.Cg, g.dh * (g.kh - 1) + 1, g.dw * (g.kw - 1) + 1), g.dtype)
        wd[:, :, :: g.dh, :: g.dw] = w
        w = wd
    pad = ((0, 0), (0, 0), (g.pt, g.pb), (g.pl, g.pr))
    for grp in range(g.groups):
        cs, ks = slice(grp * g.Cg, (grp + 1) * g.Cg), slice(grp * g.Kg, (grp + 1) * g.Kg)
        wf = None
        for n0 in range(0, g.N, chunk):
            xp = np.pad(x4[n0 : n0 + chunk, cs], pad)
            y, wf = correlate_valid_fft(xp, w[ks], nthreads, wf)
            res4[n0 : n0 + chunk, ks] = y[:, :, :: g.sh, :: g.sw]
    if b is not None:
        res4 += b.reshape(1, g.K, 1, 1)


def pack_grouped_weights(w3, g):
    """(Nw, K, Cg*kh*kw) -> (Nw, K/8, Cg*kh*kw, 8): each block of 8 output channels tap-major, the
    layout conv_grouped broadcasts its weights from."""
    Nw = w3.shape[0]
    return np.ascontiguousarray(w3.reshape(Nw, g.K // 8, 8, g.R).transpose(0, 1, 3, 2))
