"""fastconv on dask arrays: scipy.signal-style 2-D filtering and conv2d, chunk by chunk with halos.

dask is imported inside the functions, so ``import fastconv`` works without it installed.
"""

from __future__ import annotations

import numbers
import os

import numpy as np

from . import _threads
from ._geometry import geometry_from_shapes, result_float_dtype

__all__ = ["conv2d", "convolve2d", "correlate2d", "from_npy", "to_npy"]

# scipy's names for the boundaries -> dask's map_overlap boundary of the same meaning.
# scipy's "symm" repeats the edge sample (numpy's "symmetric"); dask's "reflect" does too.
_BOUNDARIES = {
    "fill": "fill",
    "pad": "fill",
    "wrap": "wrap",
    "circular": "wrap",
    "symm": "symm",
    "symmetric": "symm",
}
_DASK_BOUNDARY = {"wrap": "periodic", "symm": "reflect"}


def _dask_array():
    try:
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - exercised only without dask
        raise ImportError(
            "fastconv.dask needs dask: pip install 'dask[array]' (or fastconv[dask])"
        ) from exc
    return da


def _require_dask(x, name):
    da = _dask_array()
    if not isinstance(x, da.Array):
        raise TypeError(
            f"{name} must be a dask.array.Array, got {type(x).__name__}; wrap it with "
            "dask.array.from_array, or call the NumPy function in fastconv directly"
        )
    if any(c != c for chunks in x.chunks for c in chunks):  # NaN: sizes known only after compute
        raise ValueError(
            f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first "
            "(the halos are cut by position)"
        )
    return da


def _small_numpy(a, name, kinds="biuf"):
    """A kernel/weight/bias argument: small, sent to every task, so it must be a concrete array."""
    if a is None:
        return None
    if hasattr(a, "dask") or hasattr(a, "__dask_graph__"):
        raise TypeError(
            f"{name} must be a NumPy array (it is sent whole to every task); "
            "call .compute() on it first"
        )
    try:
        arr = np.asarray(a)
    except Exception as exc:
        raise TypeError(f"{name} must be array-like of numbers: {exc}") from None
    if arr.dtype.kind not in kinds:
        what = "a real" if kinds == "biuf" else "a numeric"
        raise TypeError(f"{name} must have {what} dtype, got {arr.dtype}")
    return arr


def _check_real(x, name, kinds="biuf"):
    if x.dtype.kind not in kinds:
        what = "a real" if kinds == "biuf" else "a numeric"
        raise TypeError(f"{name} must have {what} dtype, got {x.dtype}")


def _check_threads(threads):
    if not isinstance(threads, numbers.Integral) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be a positive int, got {threads!r}")
    return int(threads)


# ---------------------------------------------------------------------------------------------
# 2-D filtering
# ---------------------------------------------------------------------------------------------


def _signal_module():
    """fastconv.signal once it is importable, else scipy.signal (same semantics, no axes=)."""
    try:
        from . import signal as fsig

        return fsig, True
    except ImportError:
        import scipy.signal as ssig

        return ssig, False


def _correlate_valid(block, kernel):
    """'valid' cross-correlation over the last two axes of `block` (leading axes are a stack)."""
    mod, has_axes = _signal_module()
    if block.ndim == 2:
        return mod.correlate2d(block, kernel, mode="valid")
    if has_axes:
        return mod.correlate2d(block, kernel, mode="valid", axes=(-2, -1))
    lead = block.shape[:-2]
    flat = block.reshape((-1,) + block.shape[-2:])
    res = [mod.correlate2d(b, kernel, mode="valid") for b in flat]
    out = np.stack(res) if res else np.empty((0, 0, 0), dtype=block.dtype)
    return out.reshape(lead + out.shape[-2:])


def _signal_dtype(xdtype, kdtype):
    """The dtype the eager signal function returns for these input dtypes."""
    return _correlate_valid(np.zeros((1, 1), xdtype), np.zeros((1, 1), kdtype)).dtype


def _signal_block(block, kernel, crops, full_first, threads, block_info=None):
    """One output block from its haloed input block.

    crops: per filtered axis (top, bottom) halo rows to drop before the 'valid' correlation.
    full_first: per filtered axis, the top crop used instead when this is the first chunk
    (mode 'full' makes the first chunk emit the rows that lie before the image).
    """
    loc = block_info[None]["chunk-location"] if block_info else None
    sl = [slice(None)] * (block.ndim - 2)
    for i, (top, bottom) in enumerate(crops):
        ax = block.ndim - 2 + i
        if full_first is not None and loc is not None and loc[ax] == 0:
            top = full_first[i]
        sl.append(slice(top, block.shape[ax] - bottom))
    with _threads.threads(threads):
        return _correlate_valid(np.ascontiguousarray(block[tuple(sl)]), kernel)


def _normalise_axes(axes, ndim):
    try:
        a0, a1 = (int(a) for a in axes)
    except Exception:
        raise TypeError(f"axes must be a pair of ints, got {axes!r}") from None
    out = []
    for a in (a0, a1):
        if not -ndim <= a < ndim:
            raise ValueError(f"axes {axes!r} out of range for in1 with {ndim} dimensions")
        out.append(a % ndim)
    if out[0] == out[1]:
        raise ValueError(f"axes must name two different axes, got {axes!r}")
    return tuple(out)


def _filter2d(in1, in2, mode, boundary, fillvalue, axes, allow_rechunk, threads, flip, name):
    da = _require_dask(in1, "in1")
    # complex is allowed here, as fastconv.signal and scipy.signal allow it
    kernel = _small_numpy(in2, "in2", "biufc")
    _check_real(in1, "in1", "biufc")
    if kernel.ndim != 2:
        raise ValueError(f"in2 must be a 2-D kernel, got shape {kernel.shape}")
    if kernel.size == 0:
        raise ValueError("in2 must not be empty")
    if in1.ndim < 2:
        raise ValueError(f"in1 must have at least 2 dimensions, got shape {in1.shape}")
    if mode not in ("full", "same", "valid"):
        raise ValueError(f"mode must be 'full', 'same' or 'valid', got {mode!r}")
    if boundary not in _BOUNDARIES:
        raise ValueError(f"boundary must be 'fill', 'wrap' or 'symm', got {boundary!r}")
    boundary = _BOUNDARIES[boundary]
    if not isinstance(fillvalue, (numbers.Real, np.integer, np.floating)) or isinstance(
        fillvalue, bool
    ):
        raise TypeError(f"fillvalue must be a real scalar, got {fillvalue!r}")
    threads = _check_threads(threads)
    ax = _normalise_axes(axes, in1.ndim)
    x = da.moveaxis(in1, ax, (-2, -1)) if ax != (in1.ndim - 2, in1.ndim - 1) else in1
    M, N = x.shape[-2:]
    P, Q = kernel.shape
    if M == 0 or N == 0:
        raise ValueError(f"in1 must be non-empty along axes {axes!r}, got shape {in1.shape}")
    if mode == "valid" and (P > M or Q > N):
        raise ValueError(
            f"mode='valid' needs the kernel {kernel.shape} no larger than in1 along axes {axes!r} "
            f"({M}, {N}) on dask arrays"
        )
    out_dtype = _signal_dtype(x.dtype, kernel.dtype)
    if out_dtype.kind in "fc" and x.dtype != out_dtype:
        x = x.astype(out_dtype)
    # convolution is correlation with the flipped kernel; 'same' then centres differently
    # (scipy: convolve2d keeps rows [(P-1)//2, ...) of 'full', correlate2d rows [P//2, ...)).
    keff = np.ascontiguousarray(kernel[::-1, ::-1] if flip else kernel)
    before = [(P - 1) // 2 if not flip else P // 2, (Q - 1) // 2 if not flip else Q // 2]
    after = [P - 1 - before[0], Q - 1 - before[1]]
    if mode == "full":
        depth2 = [P - 1, Q - 1]
        crops = [(P - 1, 0), (Q - 1, 0)]
        full_first = (0, 0)
    else:
        depth2 = [max(before[0], after[0]), max(before[1], after[1])]
        crops = [(depth2[i] - before[i], depth2[i] - after[i]) for i in range(2)]
        full_first = None
    if mode == "valid":
        boundary = "fill"  # 'valid' never reads outside the image
    for size, d, axis in zip((M, N), depth2, axes, strict=True):
        if d > size:
            raise ValueError(
                f"the kernel's halo ({d}) is larger than in1 along axis {axis} ({size}); "
                "such a small image fits in memory: use fastconv.signal on the computed array"
            )
    chunks2 = x.chunks[-2:]
    small = [min(c) < d for c, d in zip(chunks2, depth2, strict=True)]
    if any(small) and not allow_rechunk:
        raise ValueError(
            f"in1 has chunks {chunks2} along axes {axes!r}, smaller than the halo {tuple(depth2)} "
            "the kernel needs; rechunk in1 or pass allow_rechunk=True"
        )
    nd = x.ndim
    depth = {i: 0 for i in range(nd - 2)}
    depth.update({nd - 2: depth2[0], nd - 1: depth2[1]})
    if boundary == "fill":
        bnd = fillvalue
    else:
        bnd = _DASK_BOUNDARY[boundary]
    bnds = {i: "none" for i in range(nd - 2)}
    bnds.update({nd - 2: bnd, nd - 1: bnd})
    if any(small):
        # dask's own rule: merge chunks smaller than the halo into a neighbour (documented)
        from dask.array.overlap import ensure_minimum_chunksize

        x = x.rechunk(
            x.chunks[:-2]
            + tuple(
                ensure_minimum_chunksize(d, c) if d else c
                for c, d in zip(chunks2, depth2, strict=True)
            )
        )
    out_chunks = list(x.chunks)
    if mode == "full":
        for i, e in ((nd - 2, P - 1), (nd - 1, Q - 1)):
            c = list(out_chunks[i])
            c[0] += e
            out_chunks[i] = tuple(c)
    res = da.map_overlap(
        _signal_block,
        x,
        depth=depth,
        boundary=bnds,
        trim=False,
        allow_rechunk=False,
        chunks=tuple(out_chunks),
        dtype=out_dtype,
        meta=np.empty((0,) * nd, dtype=out_dtype),
        kernel=keff,
        crops=crops,
        full_first=full_first,
        threads=threads,
        token=f"fastconv-{name}-{mode}",
    )
    if mode == "valid":
        res = res[..., before[0] : before[0] + M - P + 1, before[1] : before[1] + N - Q + 1]
    if ax != (in1.ndim - 2, in1.ndim - 1):
        res = da.moveaxis(res, (-2, -1), ax)
    return res


_FILTER_DOC = """{what} of a dask array with a 2-D kernel, chunk by chunk (scipy.signal semantics).

    Each output chunk is computed from its input chunk plus the halo the kernel needs
    (``dask.array.map_overlap``); the image boundary is extended as `boundary` says, so the result
    equals ``fastconv.signal.{name}`` on the computed array for any chunking.

    Parameters
    ----------
    in1 : dask.array.Array
        Image, or a stack of images (the two `axes` are filtered; others are a batch).
    in2 : array_like, 2-D
        The kernel (a NumPy array: it is sent to every task).
    mode : {{"same", "full", "valid"}}, default "same"
        As in scipy: "same" has in1's shape, "full" grows each filtered axis by ``k - 1``,
        "valid" shrinks it by ``k - 1`` (the kernel must not be larger than the image).
    boundary : {{"fill", "wrap", "symm"}}, default "fill"
        How the image is extended past its edges: by `fillvalue`, periodically, or mirrored with
        the edge sample repeated; these become map_overlap's constant, "periodic" and "reflect".
    fillvalue : float, default 0
        The value past the edges for ``boundary="fill"``.
    axes : pair of int, default (-2, -1)
        The image axes of in1.
    allow_rechunk : bool, default True
        Chunks along `axes` smaller than the halo (about half the kernel) are merged into a
        neighbour, as dask's map_overlap does; with False such a chunking raises ValueError.
    threads : int, default 1
        fastconv threads inside each task.  Dask already runs one task per worker thread, so the
        default keeps the two from oversubscribing the cores.

    Returns
    -------
    dask.array.Array
        Lazy result; dtype as the eager function's (float32 stays float32).

    Raises
    ------
    TypeError
        in1 not a dask array, in2 a dask array, or non-numeric dtypes.
    ValueError
        Bad mode/boundary/axes, a kernel whose halo exceeds the image, or chunks smaller than the
        halo with ``allow_rechunk=False``.

    See Also
    --------
    fastconv.signal.{name} : the same on NumPy arrays.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastconv.dask
    >>> x = da.ones((6, 6), chunks=3)
    >>> k = np.ones((3, 3))
    >>> fastconv.dask.{name}(x, k, boundary="symm").compute()[0]
    array([9., 9., 9., 9., 9., 9.])
    """


def correlate2d(
    in1,
    in2,
    mode="same",
    boundary="fill",
    fillvalue=0,
    axes=(-2, -1),
    *,
    allow_rechunk=True,
    threads=1,
):
    return _filter2d(
        in1, in2, mode, boundary, fillvalue, axes, allow_rechunk, threads, False, "correlate2d"
    )


def convolve2d(
    in1,
    in2,
    mode="same",
    boundary="fill",
    fillvalue=0,
    axes=(-2, -1),
    *,
    allow_rechunk=True,
    threads=1,
):
    return _filter2d(
        in1, in2, mode, boundary, fillvalue, axes, allow_rechunk, threads, True, "convolve2d"
    )


correlate2d.__doc__ = _FILTER_DOC.format(what="Cross-correlation", name="correlate2d")
convolve2d.__doc__ = _FILTER_DOC.format(what="Convolution", name="convolve2d")


# ---------------------------------------------------------------------------------------------
# conv2d
# ---------------------------------------------------------------------------------------------


def _conv_block(block, weight, bias, stride, padding, dilation, groups, threads, backend):
    from .conv import conv2d as eager

    with _threads.threads(threads):
        return eager(block, weight, bias, stride, padding, dilation, groups, backend=backend)


def _strided_chunks(size, chunks, stride, extent, n_out):
    """Input chunks along a padded axis whose edges fall on the stride, each >= the halo, and the
    output chunk each one yields (outputs o with o*stride inside the chunk)."""
    halo = extent - 1
    c = max(max(chunks), halo, stride)
    c = -(-c // stride) * stride
    edges = list(range(0, size, c)) + [size]
    # the last chunk must yield outputs and be large enough to lend its halo
    while len(edges) > 2 and (edges[-2] >= n_out * stride or edges[-1] - edges[-2] < halo):
        del edges[-2]
    in_chunks = tuple(b - a for a, b in zip(edges[:-1], edges[1:], strict=True))
    out_chunks = tuple(
        min(-(-b // stride), n_out) - a // stride
        for a, b in zip(edges[:-1], edges[1:], strict=True)
    )
    return in_chunks, out_chunks


def conv2d(
    x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, threads=1, backend="auto"
):
    """``fastconv.conv2d`` on a dask array (N, C, H, W) or (C, H, W), chunk by chunk.

    Batch chunks run independently (``map_blocks``).  When H or W is split into several chunks,
    the input is zero-padded, rechunked so that every chunk edge falls on a multiple of the
    stride, and each chunk gets the halo of ``dilation*(k-1)`` rows/columns that its outputs read
    from the next chunk (``map_overlap``): the result equals ``fastconv.conv2d`` on the computed
    array.

    Parameters
    ----------
    x : dask.array.Array, shape (N, C, H, W) or (C, H, W)
        Input.  The channel axis is rechunked to one chunk (every output channel reads them all).
    weight : array_like, shape (K, C/groups, kh, kw)
        Filters (a NumPy array: sent to every task).
    bias : array_like, shape (K,), optional
    stride, padding, dilation, groups
        As in ``fastconv.conv2d`` (PyTorch's semantics, padding "same"/"valid" included).
    threads : int, default 1
        fastconv threads inside each task; the default avoids oversubscribing Dask's own workers.
    backend : {"auto", "numba", "cython"}

    Returns
    -------
    dask.array.Array, shape (N, K, Ho, Wo) or (K, Ho, Wo)
        Lazy result; dtype as ``fastconv.conv2d`` gives (float32 if all inputs are float32).

    Raises
    ------
    TypeError, ValueError
        As ``fastconv.conv2d`` (naming the argument), and TypeError if x is not a dask array or
        weight/bias are dask arrays; raised when the graph is built, before anything is computed.

    See Also
    --------
    fastconv.conv2d : the same on NumPy arrays.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastconv.dask
    >>> x = da.ones((2, 1, 8, 8), dtype=np.float32, chunks=(1, 1, 4, 4))
    >>> w = np.ones((1, 1, 3, 3), dtype=np.float32)
    >>> y = fastconv.dask.conv2d(x, w, padding=1)
    >>> y.chunks
    ((1, 1), (1,), (4, 4), (4, 4))
    >>> y.compute()[0, 0, 0]
    array([4., 6., 6., 6., 6., 6., 6., 4.], dtype=float32)
    """
    da = _require_dask(x, "x")
    weight = _small_numpy(weight, "weight")
    bias = _small_numpy(bias, "bias")
    _check_real(x, "x")
    threads = _check_threads(threads)
    if backend not in ("auto", "numba", "cython"):
        raise ValueError(f"backend must be 'auto', 'numba' or 'cython', got {backend!r}")
    dtype = result_float_dtype(*[a for a in (x, weight, bias) if a is not None])
    g = geometry_from_shapes(x.shape, weight.shape, stride, padding, dilation, groups, dtype)
    if bias is not None and bias.shape != (g.K,):
        raise ValueError(f"bias must have shape {(g.K,)}, got {bias.shape}")
    weight = np.ascontiguousarray(weight, dtype=dtype)
    bias = None if bias is None else np.ascontiguousarray(bias, dtype=dtype)
    x4 = x if g.batched else x[None]
    if x4.dtype != dtype:
        x4 = x4.astype(dtype)
    if len(x4.chunks[1]) > 1:
        x4 = x4.rechunk({1: -1})
    common = dict(
        weight=weight,
        bias=bias,
        dilation=(g.dh, g.dw),
        groups=g.groups,
        threads=threads,
        backend=backend,
    )
    meta = np.empty((0, 0, 0, 0), dtype=dtype)
    if len(x4.chunks[2]) == 1 and len(x4.chunks[3]) == 1:
        out = x4.map_blocks(
            _conv_block,
            stride=(g.sh, g.sw),
            padding=(g.pt, g.pl) if (g.pt, g.pl) == (g.pb, g.pr) else padding,
            chunks=(x4.chunks[0], (g.K,), (g.Ho,), (g.Wo,)),
            dtype=dtype,
            meta=meta,
            token="fastconv-conv2d",
            **common,
        )
    else:
        if g.pt or g.pb or g.pl or g.pr:
            x4 = da.pad(x4, ((0, 0), (0, 0), (g.pt, g.pb), (g.pl, g.pr)), mode="constant")
        Hp, Wp = x4.shape[2:]
        eh, ew = g.dh * (g.kh - 1) + 1, g.dw * (g.kw - 1) + 1
        ih, oh = _strided_chunks(Hp, x4.chunks[2], g.sh, eh, g.Ho)
        iw, ow = _strided_chunks(Wp, x4.chunks[3], g.sw, ew, g.Wo)
        x4 = x4.rechunk((x4.chunks[0], x4.chunks[1], ih, iw))
        out = da.map_overlap(
            _conv_block,
            x4,
            depth={0: 0, 1: 0, 2: (0, eh - 1), 3: (0, ew - 1)},
            boundary="none",
            trim=False,
            allow_rechunk=False,
            chunks=(x4.chunks[0], (g.K,), oh, ow),
            dtype=dtype,
            meta=meta,
            stride=(g.sh, g.sw),
            padding=0,
            token="fastconv-conv2d",
            **common,
        )
    return out if g.batched else out[0]


# ---------------------------------------------------------------------------------------------
# .npy files too large for memory
# ---------------------------------------------------------------------------------------------


class _NpyReader:
    """Array-like view of a .npy file for ``dask.array.from_array``: each read maps the file, copies
    the slice and unmaps it, so neither whole-file copies nor mapped pages accumulate."""

    def __init__(self, path):
        self.path = os.fspath(path)
        mm = np.load(self.path, mmap_mode="r")
        self.shape, self.dtype, self.ndim = mm.shape, mm.dtype, mm.ndim
        del mm

    def __getitem__(self, key):
        mm = np.load(self.path, mmap_mode="r")
        try:
            return np.array(mm[key])
        finally:
            del mm


class _NpyWriter:
    """``dask.array.store`` target writing into an existing .npy file one block at a time; the
    mapping is closed after each block, so written pages do not pile up in the process."""

    def __init__(self, path, shape, dtype):
        self.path = os.fspath(path)
        self.shape, self.dtype, self.ndim = tuple(shape), np.dtype(dtype), len(shape)

    def __setitem__(self, key, value):
        mm = np.load(self.path, mmap_mode="r+")
        try:
            mm[key] = value
        finally:
            del mm


def from_npy(path, chunks="auto"):
    """A .npy file as a lazy dask array that reads only the blocks a computation asks for.

    ``dask.array.from_array`` on a ``numpy.memmap`` copies the whole file into memory first;
    this reads each block (with any halo) from the file when its task runs.

    Parameters
    ----------
    path : str or path-like
        A .npy file (C order).
    chunks : as ``dask.array.from_array``

    Returns
    -------
    dask.array.Array

    Examples
    --------
    >>> import numpy as np, tempfile, os, fastconv.dask
    >>> p = os.path.join(tempfile.mkdtemp(), "a.npy")
    >>> np.save(p, np.arange(16.0).reshape(4, 4))
    >>> fastconv.dask.from_npy(p, chunks=2).sum().compute()
    np.float64(120.0)
    """
    da = _dask_array()
    src = _NpyReader(path)
    return da.from_array(
        src,
        chunks=chunks,
        asarray=False,
        fancy=False,
        meta=np.empty((0,) * src.ndim, dtype=src.dtype),
        name=f"from-npy-{os.path.basename(src.path)}-{os.stat(src.path).st_mtime_ns}",
    )


def to_npy(x, path, band=1, **store_kwargs):
    """Compute a dask array into a new .npy file block by block, never holding it whole.

    The file is created with ``numpy.lib.format.open_memmap``; each block is written through its
    own short-lived mapping, so written pages do not pile up in the process either.

    Parameters
    ----------
    x : dask.array.Array
    path : str or path-like
        The .npy file to create (overwritten if it exists).
    band : int or None, default 1
        Compute and write `band` rows of chunks (along axis 0) per pass.  Within one graph dask's
        scheduler may read far ahead of what it writes: for a 1 GiB image filtered through
        map_overlap that held about 0.7 GiB at once, while one-row passes held about 0.2 GiB.
        A row of chunks is read again as the halo of the next pass (cheap: the OS page cache has
        it).  Use None for a single pass, e.g. when every block depends on a global reduction
        (``x / x.max()``), which each pass would otherwise recompute.
    **store_kwargs
        Passed to ``dask.array.store``, e.g. ``scheduler="threads", num_workers=2``.

    Examples
    --------
    >>> import numpy as np, tempfile, os, dask.array as da, fastconv.dask
    >>> p = os.path.join(tempfile.mkdtemp(), "b.npy")
    >>> fastconv.dask.to_npy(da.ones((4, 4), chunks=2), p)
    >>> float(np.load(p).sum())
    16.0
    """
    da = _require_dask(x, "x")
    if band is not None and (
        not isinstance(band, numbers.Integral) or isinstance(band, bool) or band < 1
    ):
        raise ValueError(f"band must be a positive int or None, got {band!r}")
    if x.ndim == 0:
        raise ValueError("x must have at least one dimension")
    mm = np.lib.format.open_memmap(os.fspath(path), mode="w+", dtype=x.dtype, shape=x.shape)
    del mm
    target = _NpyWriter(path, x.shape, x.dtype)
    store_kwargs.setdefault("lock", False)
    rows = np.cumsum((0,) + x.chunks[0]).tolist()
    step = len(x.chunks[0]) if band is None else band
    for i in range(0, len(x.chunks[0]), step):
        r0, r1 = rows[i], rows[min(i + step, len(rows) - 1)]
        region = (slice(r0, r1),) + (slice(None),) * (x.ndim - 1)
        da.store(x[r0:r1], target, regions=region, **store_kwargs)
