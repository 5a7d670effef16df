"""conv1d and conv3d with ``torch.nn.functional``'s semantics, planned as 2-D convolutions.

One N-d geometry validates every rank (`_geometry.nd_conv_geometry`).  conv1d is conv2d on a
height-1 plane (a view, no copy).  conv3d gathers, for a slab of output depth planes at a time, the
kd input planes each one reads as extra channels, and runs one conv2d over them: the packed
micro-kernel, Winograd and the grouped/depthwise kernels all apply, through conv2d's planner.
"""

from __future__ import annotations

import numpy as np

from ._geometry import check_out, nd_conv_geometry
from ._lowering import gather_depth, tap_planes
from ._plan import cached, plan_depth_lowering
from .conv import _key, conv2d

__all__ = ["conv1d", "conv3d"]

_COMMON = """
    stride : int or tuple of {r} ints, default 1
        Step between output samples.
    padding : int, tuple of {r} ints, "same" or "valid", default 0
        Zero padding on both sides of each spatial axis.  "same" keeps the spatial size (stride 1
        only; an odd total goes to the high end, as torch does); "valid" means no padding.
    dilation : int or tuple of {r} ints, default 1
        Spacing between kernel taps.
    groups : int, default 1
        Channels are split into `groups` blocks convolved independently; ``groups == C`` is
        depthwise.
    out : ndarray, optional
        Where to write the result; must have the output shape and dtype.
    backend : {{"auto", "numba", "cython"}}
        Which compiled kernels to use; both give the same results.
    algorithm : str, default "auto"
        The 2-D algorithm (one of ``fastconv.algorithms()``) for the lowered convolution, or
        "auto" to let the planner choose.
"""


def _validated(x, weight, bias, stride, padding, dilation, groups, rank):
    """nd_conv_geometry's result; for plain ndarrays its geometry is remembered across calls with
    the same shapes, dtypes and arguments (what validation depends on), as conv2d's plans are."""
    plain = type(x) is np.ndarray and type(weight) is np.ndarray
    if not plain or (bias is not None and type(bias) is not np.ndarray):
        return nd_conv_geometry(x, weight, bias, stride, padding, dilation, groups, rank=rank)
    key = (
        "convnd",
        rank,
        x.shape,
        x.dtype,
        weight.shape,
        weight.dtype,
        None if bias is None else (bias.shape, bias.dtype),
        _key(stride),
        _key(padding),
        _key(dilation),
        _key(groups),
    )

    def make():
        return nd_conv_geometry(x, weight, bias, stride, padding, dilation, groups, rank=rank)[3]

    g = cached(key, make)
    x = np.ascontiguousarray(x if g.batched else x[None], dtype=g.dtype)
    weight = np.ascontiguousarray(weight, dtype=g.dtype)
    bias = None if bias is None else np.ascontiguousarray(bias, dtype=g.dtype)
    return x, weight, bias, g


def conv1d(
    x,
    weight,
    bias=None,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    *,
    out=None,
    backend="auto",
    algorithm="auto",
):
    """1-D convolution (cross-correlation) with ``torch.nn.functional.conv1d``'s semantics.

    Parameters
    ----------
    x : array_like, shape (N, C, L) or (C, L)
        Input batch (or one unbatched signal).
    weight : array_like, shape (K, C/groups, k)
        Filters.
    bias : array_like, shape (K,), optional
        Added to every output sample of each channel.
    {common}

    Returns
    -------
    ndarray, shape (N, K, Lo) or (K, Lo)
        ``Lo = (L + pad_lo + pad_hi - dilation*(k-1) - 1) // stride + 1``; float32 if every input
        is float32 (or narrower), float64 otherwise.

    Raises
    ------
    ValueError, TypeError
        On bad shapes, channel counts, groups, stride/padding/dilation values or dtypes, naming
        the argument, before any computation.

    See Also
    --------
    fastconv.conv2d : The 2-D convolution conv1d runs as.
    fastconv.conv3d : Three spatial axes.
    fastconv.signal.correlate2d : The scipy.signal-compatible filter.

    Notes
    -----
    The signal is a plane of height 1 (a view): conv2d's planner chooses the algorithm (packed
    micro-kernel, depthwise kernels, FFT for long kernels), its plan is cached per shape.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.arange(6, dtype=np.float32).reshape(1, 1, 6)
    >>> fastconv.conv1d(x, np.ones((1, 1, 3), dtype=np.float32), padding=1)
    array([[[ 1.,  3.,  6.,  9., 12.,  9.]]], dtype=float32)
    """
    x, weight, bias, g = _validated(x, weight, bias, stride, padding, dilation, groups, 1)
    out = check_out(out, g.out_shape, g.dtype)
    x4 = x[:, :, None, :]
    w4 = weight[:, :, None, :]
    pad2 = padding if isinstance(padding, str) else (0, g.pad[0][0])
    res = conv2d(
        x4,
        w4,
        bias,
        (1, g.stride[0]),
        pad2,
        (1, g.dilation[0]),
        g.groups,
        backend=backend,
        algorithm=algorithm,
    )
    res = res.reshape((g.N, g.K) + g.out_spatial)
    if not g.batched:
        res = res[0]
    if out is not None:
        out[...] = res
        return out
    return res


def conv3d(
    x,
    weight,
    bias=None,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    *,
    out=None,
    backend="auto",
    algorithm="auto",
):
    """3-D convolution (cross-correlation) with ``torch.nn.functional.conv3d``'s semantics.

    Parameters
    ----------
    x : array_like, shape (N, C, D, H, W) or (C, D, H, W)
        Input batch (or one unbatched volume).
    weight : array_like, shape (K, C/groups, kd, kh, kw)
        Filters.
    bias : array_like, shape (K,), optional
        Added to every output voxel of each channel.
    {common}

    Returns
    -------
    ndarray, shape (N, K, Do, Ho, Wo) or (K, Do, Ho, Wo)
        Each output extent is ``(n + pad_lo + pad_hi - dilation*(k-1) - 1) // stride + 1``;
        float32 if every input is float32 (or narrower), float64 otherwise.

    Raises
    ------
    ValueError, TypeError
        On bad shapes, channel counts, groups, stride/padding/dilation values or dtypes, naming
        the argument, before any computation.

    See Also
    --------
    fastconv.conv2d : The 2-D convolution conv3d is lowered to.
    fastconv.conv1d : One spatial axis.

    Notes
    -----
    Output depth plane ``od`` reads input planes ``od*sd - pad + k*dd`` (k < kd); the planner
    lowers the call to conv2d one of two ways.  Dense and grouped layers: for a slab of output
    planes at a time (bounded by conv2d's 64 MiB workspace), those planes are gathered as ``C*kd``
    channels and one conv2d with weight ``(K, C/groups*kd, kh, kw)`` computes the slab, so the
    packed micro-kernel and Winograd (3x3x3 layers) run a reduction kd times deeper.  Depthwise
    layers (and infinite weights with depth padding): one conv2d per depth tap over the planes it
    reads, summed, so the 2-D depthwise kernels apply.  Either way sums run over the in-volume
    taps only, as conv2d's do, and the extra memory is about one input and one output.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.ones((1, 1, 3, 3, 3), dtype=np.float32)
    >>> fastconv.conv3d(x, np.ones((1, 1, 3, 3, 3), dtype=np.float32), padding=1)[0, 0, 1]
    array([[12., 18., 12.],
           [18., 27., 18.],
           [12., 18., 12.]], dtype=float32)
    """
    x, weight, bias, g = _validated(x, weight, bias, stride, padding, dilation, groups, 3)
    out = check_out(out, g.out_shape, g.dtype)
    res = (
        np.empty((g.N, g.K) + g.out_spatial, dtype=g.dtype) if out is None or not g.batched else out
    )
    N, C, K = g.N, g.C, g.K
    (_, H, W), (kd, kh, kw) = g.spatial, g.kernel
    (sd, sh, sw), (dd, dh, dw), (pf, _) = g.stride, g.dilation, g.pad[0]
    Do, Ho, Wo = g.out_spatial
    Cg = g.Cg
    pad2 = padding if isinstance(padding, str) else (g.pad[1][0], g.pad[2][0])
    finite = bool(np.isfinite(weight.min()) and np.isfinite(weight.max())) if weight.size else True
    how, slab = plan_depth_lowering(g, weight_finite=finite)
    args = dict(backend=backend, algorithm=algorithm)
    if how == "taps":
        # the volume once as (N, D, C, H, W); per tap k, the output planes whose input plane is in
        # the volume read it as a view (a copy when N > 1 or the depth stride is not 1)
        xt = np.ascontiguousarray(x.transpose(0, 2, 1, 3, 4))
        acc = np.zeros((N, Do, K, Ho, Wo), dtype=g.dtype)
        if bias is not None:
            acc += bias.reshape(1, 1, K, 1, 1)
        for k in range(kd):
            j0, j1, src = tap_planes(xt, k, Do, sd, dd, pf)
            if j1 > j0:
                wk = np.ascontiguousarray(weight[:, :, k])
                y = conv2d(src, wk, None, (sh, sw), pad2, (dh, dw), g.groups, **args)
                acc[:, j0:j1] += y.reshape(N, j1 - j0, K, Ho, Wo)
        res[...] = acc.transpose(0, 2, 1, 3, 4)
    else:
        # weight (K, Cg, kd, kh, kw) -> (K, Cg*kd, kh, kw): channel c*kd + k, as gathered
        w4 = weight.reshape(K, Cg * kd, kh, kw)
        # flat buffers whose leading part is each slab's contiguous (N, n_o, ...) array
        stacked = np.empty(N * slab * C * kd * H * W, dtype=g.dtype)
        planes = np.empty(N * slab * K * Ho * Wo, dtype=g.dtype)
        for o0 in range(0, Do, slab):
            n_o = min(slab, Do - o0)
            st = stacked[: N * n_o * C * kd * H * W].reshape(N, n_o, C, kd, H, W)
            gather_depth(x, o0, n_o, kd, sd, dd, pf, st)
            y = planes[: N * n_o * K * Ho * Wo].reshape(N, n_o, K, Ho, Wo)
            conv2d(
                st.reshape(N * n_o, C * kd, H, W),
                w4,
                bias,
                (sh, sw),
                pad2,
                (dh, dw),
                g.groups,
                out=y.reshape(N * n_o, K, Ho, Wo),
                **args,
            )
            res[:, :, o0 : o0 + n_o] = y.transpose(0, 2, 1, 3, 4)
    if not g.batched:
        res = res[0]
        if out is not None:
            out[...] = res
            return out
    return res


conv1d.__doc__ = conv1d.__doc__.replace("    {common}\n", _COMMON.format(r=1).lstrip("\n"))
conv3d.__doc__ = conv3d.__doc__.replace("    {common}\n", _COMMON.format(r=3).lstrip("\n"))
