"""im2col and col2im: torch's unfold and fold on NumPy arrays, compiled in both backends.

Validation in _geometry; the kernels are fastconv/_jit/conv.py and fastconv/_ext/conv.pyx.
"""

from __future__ import annotations

import math

import numpy as np

from . import _threads
from ._geometry import (
    UnfoldGeometry,
    as_float_array,
    ntuple,
    result_float_dtype,
    unfold_nd_geometry,
)
from ._lowering import gather_depth, scatter_depth
from ._plan import kernels, plan_depth_slab, resolve_backend

__all__ = ["col2im", "im2col"]


def _geo_vector(u):
    # the conv geometry vector with K = C, groups = 1 (see _geometry.GEO_FIELDS)
    return np.array(
        [u.N, u.C, u.H, u.W, u.C, u.kh, u.kw, u.sh, u.sw, u.ph, u.pw, u.dh, u.dw, 1, u.Ho, u.Wo],
        dtype=np.int64,
    )


_SHAPES = {1: "(C, L)", 2: "(C, H, W)", 3: "(C, D, H, W)"}


def _rank(kernel_size):
    """Spatial axes of a call: the length of a kernel_size tuple of 1 or 3 ints, else 2 (an int
    kernel_size means 2-D, as torch's unfold/fold)."""
    if isinstance(kernel_size, (tuple, list)) and len(kernel_size) in (1, 3):
        return len(kernel_size)
    return 2


def _flat(u, plane):
    """The 2-D UnfoldGeometry of one lowered plane problem: the last two axes of u (a leading
    height-1 axis for 1-D), with `plane` (N, C) of the lowered call."""
    k, s, p, d, n, o = (
        t[-2:] if len(t) > 1 else (1,) + t
        for t in (u.kernel, u.stride, u.padding, u.dilation, u.spatial, u.out_spatial)
    )
    if len(u.kernel) == 1:
        p = (0, u.padding[0])
    return UnfoldGeometry(*plane, *n, *k, *s, *p, *d, *o, u.batched, u.dtype)


def _unfold_planes(x4, u2, be, cols):
    if cols.size:
        _threads.mark_pools_started()
        kernels(be).im2col(x4, _geo_vector(u2), cols, _threads.get_num_threads())


def _fold_planes(c3, u2, be, out):
    if out.size:
        _threads.mark_pools_started()
        kernels(be).col2im(c3, _geo_vector(u2), out, _threads.get_num_threads())


def im2col(x, kernel_size, stride=1, padding=0, dilation=1, *, backend="auto"):
    """Extract sliding blocks: ``torch.nn.functional.unfold`` for NumPy arrays.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W) or (C, H, W); (N, C, L) or (C, L); (N, C, D, H, W) or (C, D, H, W)
        The image batch (or one image); signals for a 1-D, volumes for a 3-D `kernel_size`.  Real
        numbers; float32 stays float32, anything else is computed in float64.
    kernel_size : int, (int, int), (int,) or (int, int, int)
        Block size ``(kh, kw)``; an int is used for both.  A tuple of one or three ints unfolds
        1-D signals or 3-D volumes instead (the tuple's length sets the number of spatial axes).
    stride : int or tuple of ints, default 1
        Step between neighbouring blocks, in pixels (one entry per spatial axis).
    padding : int or tuple of ints, default 0
        Zero padding on both sides.
    dilation : int or tuple of ints, default 1
        Spacing between a block's taps (``dilation * (kernel_size - 1) + 1`` pixels wide).
    backend : {"auto", "numba", "cython"}
        Which compiled kernels run ("auto": Cython when built, else Numba; same results).

    Returns
    -------
    ndarray, shape (N, C*kh*kw, L) or (C*kh*kw, L)
        Row ``(c*kh + i)*kw + j`` holds tap (i, j) of channel c for each of the
        ``L = Ho*Wo`` block positions (row-major).  dtype float32 for float32 input, else float64.
        In 1-D the rows are ``c*k + i`` and ``L = Lo``; in 3-D ``((c*kd + t)*kh + i)*kw + j`` and
        ``L = Do*Ho*Wo``, the layout of ``weight.reshape(K, -1) @ cols`` giving conv1d/conv3d.

    Raises
    ------
    TypeError
        `x` not array-like of real numbers (complex, object or ragged input).
    ValueError
        `x` not 3-D or 4-D; `kernel_size`, `stride` or `dilation` below 1, `padding` below 0
        or a string; a dilated kernel larger than the padded image; a result too large to
        allocate; an unknown `backend`.

    See Also
    --------
    col2im : The adjoint (sums overlapping blocks back).
    conv2d : Convolution without forming the columns.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.arange(9.0).reshape(1, 3, 3)
    >>> fastconv.im2col(x, 2)
    array([[0., 1., 3., 4.],
           [1., 2., 4., 5.],
           [3., 4., 6., 7.],
           [4., 5., 7., 8.]])
    >>> fastconv.im2col(np.arange(4.0).reshape(1, 4), (2,))  # 1-D: a tuple of one int
    array([[0., 1., 2.],
           [1., 2., 3.]])
    >>> fastconv.im2col(np.ones((2, 4, 5, 6)), (2, 3, 3)).shape  # 3-D: (C*kd*kh*kw, Do*Ho*Wo)
    (36, 36)
    """
    x = as_float_array(x, "x")
    r = _rank(kernel_size)
    if x.ndim not in (r + 1, r + 2):
        shp = _SHAPES[r]
        raise ValueError(
            f"x must be {r + 1}-D {shp} or {r + 2}-D (N, {shp[1:]}, got shape {x.shape}"
            + ("" if r == 2 else f" (kernel_size has {r} entries)")
        )
    dtype = result_float_dtype(x)
    batched = x.ndim == r + 2
    N, C, *spatial = x.shape if batched else (1,) + x.shape
    u = unfold_nd_geometry(
        N, C, spatial, kernel_size, stride, padding, dilation, batched, dtype, "input"
    )
    be = resolve_backend(backend)
    xb = np.ascontiguousarray(x if batched else x[None], dtype=dtype)
    cols = np.empty((N, u.rows, u.L), dtype=dtype)
    if r < 3:
        plane = (N, C) + ((1,) if r == 1 else ()) + tuple(spatial)
        _unfold_planes(xb.reshape(plane), _flat(u, (N, C)), be, cols)
    elif cols.size:
        _unfold_depth(xb, u, be, cols)
    return cols if batched else cols[0]


def _unfold_depth(x, u, be, cols):
    """3-D im2col: for a slab of output depth planes, gather their kd input planes as channels
    (fastconv._lowering), unfold those planes in 2-D, and move the columns into place."""
    N, C = u.N, u.C
    kd, P = u.kernel[0], math.prod(u.out_spatial[1:])
    H, W = u.spatial[1:]
    R = u.rows
    slab = plan_depth_slab(u, per_plane=N * (C * kd * H * W + R * P) * u.dtype.itemsize)
    stacked = np.empty(N * slab * C * kd * H * W, dtype=u.dtype)
    tile = np.empty(N * slab * R * P, dtype=u.dtype)
    for o0 in range(0, u.out_spatial[0], slab):
        n_o = min(slab, u.out_spatial[0] - o0)
        st = stacked[: N * n_o * C * kd * H * W].reshape(N, n_o, C, kd, H, W)
        gather_depth(x, o0, n_o, kd, u.stride[0], u.dilation[0], u.padding[0], st)
        t = tile[: N * n_o * R * P].reshape(N * n_o, R, P)
        _unfold_planes(st.reshape(N * n_o, C * kd, H, W), _flat(u, (N * n_o, C * kd)), be, t)
        cols.reshape(N, R, -1, P)[:, :, o0 : o0 + n_o] = t.reshape(N, n_o, R, P).transpose(
            0, 2, 1, 3
        )


def col2im(cols, output_size, kernel_size, stride=1, padding=0, dilation=1, *, backend="auto"):
    """Sum sliding blocks back into an image: ``torch.nn.functional.fold`` for NumPy arrays.

    Parameters
    ----------
    cols : array_like, shape (N, C*kh*kw, L) or (C*kh*kw, L)
        The blocks, laid out as `im2col` returns them.
    output_size : int or tuple of ints
        (H, W) of the image; (L,) or (D, H, W) with a 1-D or 3-D `kernel_size`.
    kernel_size : int, (int, int), (int,) or (int, int, int)
        As for `im2col` (a tuple of one or three ints: 1-D or 3-D).
    stride, padding, dilation : int or tuple of ints
        As for `im2col`; L must equal the number of block positions they give.
    backend : {"auto", "numba", "cython"}
        Which compiled kernels run ("auto": Cython when built, else Numba; same results).

    Returns
    -------
    ndarray, shape (N, C, H, W) or (C, H, W)
        Overlapping entries are summed, so ``col2im(im2col(x))`` is x times the number of blocks
        covering each pixel.

    Raises
    ------
    TypeError
        `cols` not array-like of real numbers.
    ValueError
        `cols` not 2-D or 3-D; ``cols.shape[-2]`` not a multiple of ``kh * kw``; ``L`` not the
        number of block positions; invalid sizes as for `im2col`; an unknown `backend`.

    See Also
    --------
    im2col : The blocks this sums back.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.ones((1, 3, 3))
    >>> fastconv.col2im(fastconv.im2col(x, 2), 3, 2)
    array([[[1., 2., 1.],
            [2., 4., 2.],
            [1., 2., 1.]]])
    """
    cols = as_float_array(cols, "cols")
    r = _rank(kernel_size)
    taps = {1: "k", 2: "kh*kw", 3: "kd*kh*kw"}[r]
    if cols.ndim not in (2, 3):
        raise ValueError(
            f"cols must be 2-D (C*{taps}, L) or 3-D (N, C*{taps}, L), got shape {cols.shape}"
        )
    dtype = result_float_dtype(cols)
    batched = cols.ndim == 3
    N, CKK, L = cols.shape if batched else (1,) + cols.shape
    spatial = ntuple(output_size, "output_size", r, minimum=1)
    kernel = ntuple(kernel_size, "kernel_size", r, minimum=1)
    if CKK % math.prod(kernel):
        raise ValueError(
            f"cols.shape[-2]={CKK} must be divisible by the product of kernel_size "
            f"({'*'.join(map(str, kernel))})"
        )
    u = unfold_nd_geometry(
        N,
        CKK // math.prod(kernel),
        spatial,
        kernel,
        stride,
        padding,
        dilation,
        batched,
        dtype,
        "output_size",
    )
    if L != u.L:
        raise ValueError(
            f"cols.shape[-1]={L} does not match the {u.L} = {'x'.join(map(str, u.out_spatial))} "
            f"block positions that output_size={spatial if r > 1 else spatial[0]}, kernel_size, "
            "stride, padding and dilation give"
        )
    be = resolve_backend(backend)
    c3 = np.ascontiguousarray(cols if batched else cols[None], dtype=dtype)
    if r < 3:
        out = np.empty((N, u.C) + spatial, dtype=dtype)
        plane = (N, u.C) + ((1,) if r == 1 else ()) + spatial
        _fold_planes(c3, _flat(u, (N, u.C)), be, out.reshape(plane))
    else:
        out = np.zeros((N, u.C) + spatial, dtype=dtype)
        if out.size:
            _fold_depth(c3, u, be, out)
    return out if batched else out[0]


def _fold_depth(c3, u, be, out):
    """3-D col2im, the adjoint of `_unfold_depth`: per slab, fold the columns of each output plane
    in 2-D into its kd gathered planes, then add those back to their input planes."""
    N, C = u.N, u.C
    kd, P = u.kernel[0], math.prod(u.out_spatial[1:])
    H, W = u.spatial[1:]
    R = u.rows
    slab = plan_depth_slab(u, per_plane=N * (C * kd * H * W + R * P) * u.dtype.itemsize)
    planes = np.empty(N * slab * C * kd * H * W, dtype=u.dtype)
    tile = np.empty(N * slab * R * P, dtype=u.dtype)
    for o0 in range(0, u.out_spatial[0], slab):
        n_o = min(slab, u.out_spatial[0] - o0)
        t = tile[: N * n_o * R * P].reshape(N, n_o, R, P)
        t[...] = c3.reshape(N, R, -1, P)[:, :, o0 : o0 + n_o].transpose(0, 2, 1, 3)
        pl = planes[: N * n_o * C * kd * H * W].reshape(N, n_o, C, kd, H, W)
        _fold_planes(
            t.reshape(N * n_o, R, P),
            _flat(u, (N * n_o, C * kd)),
            be,
            pl.reshape(N * n_o, C * kd, H, W),
        )
        scatter_depth(pl, o0, n_o, kd, u.stride[0], u.dilation[0], u.padding[0], out)
