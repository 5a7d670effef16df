"""im2col and col2im: torch's unfold and fold on NumPy arrays, compiled in both backends.

Validation in _geometry; the kernels are fastconv/_jit/conv.py and fastconv/_ext/conv.pyx.
"""

from __future__ import annotations

import numpy as np

from . import _threads
from ._geometry import as_float_array, pair, result_float_dtype, unfold_geometry
from ._plan import kernels, resolve_backend

__all__ = ["col2im", "im2col"]


def _geo_vector(u):
    # the conv geometry vector with K = C, groups = 1 (see _geometry.GEO_FIELDS)
    return np.array(
        [u.N, u.C, u.H, u.W, u.C, u.kh, u.kw, u.sh, u.sw, u.ph, u.pw, u.dh, u.dw, 1, u.Ho, u.Wo],
        dtype=np.int64,
    )


def im2col(x, kernel_size, stride=1, padding=0, dilation=1, *, backend="auto"):
    """Extract sliding blocks: ``torch.nn.functional.unfold`` for NumPy arrays.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W) or (C, H, W)
        The image batch (or one image).  Real numbers; float32 stays float32, anything else is
        computed in float64.
    kernel_size : int or (int, int)
        Block size ``(kh, kw)``; an int is used for both.
    stride : int or (int, int), default 1
        Step between neighbouring blocks, in pixels.
    padding : int or (int, int), default 0
        Zero padding on both sides.
    dilation : int or (int, int), default 1
        Spacing between a block's taps (``dilation * (kernel_size - 1) + 1`` pixels wide).
    backend : {"auto", "numba", "cython"}
        Which compiled kernels run ("auto": Cython when built, else Numba; same results).

    Returns
    -------
    ndarray, shape (N, C*kh*kw, L) or (C*kh*kw, L)
        Row ``(c*kh + i)*kw + j`` holds tap (i, j) of channel c for each of the
        ``L = Ho*Wo`` block positions (row-major).  dtype float32 for float32 input, else float64.

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
    """
    x = as_float_array(x, "x")
    if x.ndim not in (3, 4):
        raise ValueError(f"x must be 3-D (C, H, W) or 4-D (N, C, H, W), got shape {x.shape}")
    dtype = result_float_dtype(x)
    batched = x.ndim == 4
    N, C, H, W = x.shape if batched else (1,) + x.shape
    u = unfold_geometry(N, C, H, W, kernel_size, stride, padding, dilation, batched, dtype, "input")
    be = resolve_backend(backend)
    x4 = np.ascontiguousarray(x if batched else x[None], dtype=dtype)
    cols = np.empty((N, C * u.kh * u.kw, u.L), dtype=dtype)
    if cols.size:
        _threads.mark_pools_started()
        kernels(be).im2col(x4, _geo_vector(u), cols, _threads.get_num_threads())
    return cols if batched else cols[0]


def col2im(cols, output_size, kernel_size, stride=1, padding=0, dilation=1, *, backend="auto"):
    """Sum sliding blocks back into an image: ``torch.nn.functional.fold`` for NumPy arrays.

    Parameters
    ----------
    cols : array_like, shape (N, C*kh*kw, L) or (C*kh*kw, L)
        The blocks, laid out as `im2col` returns them.
    output_size : int or (int, int)
        (H, W) of the image.
    kernel_size, stride, padding, dilation : int or (int, int)
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
    if cols.ndim not in (2, 3):
        raise ValueError(
            f"cols must be 2-D (C*kh*kw, L) or 3-D (N, C*kh*kw, L), got shape {cols.shape}"
        )
    dtype = result_float_dtype(cols)
    batched = cols.ndim == 3
    N, CKK, L = cols.shape if batched else (1,) + cols.shape
    H, W = pair(output_size, "output_size", minimum=1)
    kh, kw = pair(kernel_size, "kernel_size", minimum=1)
    if CKK % (kh * kw):
        raise ValueError(
            f"cols.shape[-2]={CKK} must be divisible by the product of kernel_size ({kh}*{kw})"
        )
    u = unfold_geometry(
        N,
        CKK // (kh * kw),
        H,
        W,
        (kh, kw),
        stride,
        padding,
        dilation,
        batched,
        dtype,
        "output_size",
    )
    if L != u.L:
        raise ValueError(
            f"cols.shape[-1]={L} does not match the {u.L} = {u.Ho}x{u.Wo} block positions that "
            f"output_size={(H, W)}, kernel_size, stride, padding and dilation give"
        )
    be = resolve_backend(backend)
    c3 = np.ascontiguousarray(cols if batched else cols[None], dtype=dtype)
    out = np.empty((N, u.C, H, W), dtype=dtype)
    if out.size:
        _threads.mark_pools_started()
        kernels(be).col2im(c3, _geo_vector(u), out, _threads.get_num_threads())
    return out if batched else out[0]
