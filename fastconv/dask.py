"""fastconv on dask arrays: scipy.signal-style 2-D filtering, scipy.ndimage-style N-d filters and
conv2d, chunk by chunk with halos.

dask is imported inside the functions, so ``import fastconv`` works without it installed.
"""

from __future__ import annotations

import functools
import numbers
import os

import numpy as np

from . import _threads
from ._geometry import geometry_from_shapes, result_float_dtype

__all__ = [
    "conv2d",
    "convolve",
    "convolve2d",
    "correlate",
    "correlate2d",
    "from_npy",
    "gaussian_filter",
    "to_npy",
    "uniform_filter",
]

# scipy's names for the boundaries -> the name used here.
# scipy's "symm" repeats the edge sample (numpy's "symmetric"); dask's "reflect" does too.
_BOUNDARIES = {
    "fill": "fill",
    "pad": "fill",
    "wrap": "wrap",
    "circular": "wrap",
    "symm": "symm",
    "symmetric": "symm",
}


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
    """The same thread-count rule as fastconv.set_num_threads (1 to 4 per CPU)."""
    from ._threads import _check_n

    try:
        return _check_n(threads)
    except (TypeError, ValueError) as exc:  # always a ValueError naming this argument here
        raise ValueError(str(exc).replace("n must", "threads must")) from None


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


def _filter_task(block, kernel, threads):
    with _threads.threads(threads):
        return _correlate_valid(block, kernel)


def _normalise_axes(axes, ndim):
    try:
        pair = tuple(axes)
    except TypeError:
        pair = ()
    # bools are ints to Python, but axes=(True, False) is a mistake, not (1, 0)
    if len(pair) != 2 or not all(
        isinstance(a, (numbers.Integral, np.integer)) and not isinstance(a, (bool, np.bool_))
        for a in pair
    ):
        raise TypeError(f"axes must be a pair of ints, got {axes!r}")
    out = []
    for a in pair:
        if not -ndim <= a < ndim:
            raise ValueError(f"axes {axes!r} out of range for in1 with {ndim} dimensions")
        out.append(int(a) % ndim)
    if out[0] == out[1]:
        raise ValueError(f"axes must name two different axes, got {axes!r}")
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# One task per output block, reading its own haloed region of the source
# ---------------------------------------------------------------------------------------------
# map_overlap builds a block's halo from slices of its neighbours (getitem, concatenate, trim
# stages), so every source block stays in memory until all its neighbours have run: the memory
# then depends on the order the writer (da.store, to_zarr, compute) makes the scheduler run
# tasks, and grows with the image's width.  Here every output block is one task that assembles
# its haloed input itself: from the array-like under ``da.from_array`` (one read per block, no
# source block shared by two tasks), or else from the source blocks it overlaps.


def _axis_runs(lo, hi, size, boundary):
    """Positions lo..hi-1 of an axis of length `size` extended past its edges as `boundary`
    says, as segments (dst0, dst1, src0, src1, flip): source indices [src0, src1) land in the
    block at [dst0, dst1), reversed if flip; src0 None means the fill value."""
    idx = np.arange(lo, hi)
    if boundary == "wrap":
        src = idx % size
    elif boundary == "symm":  # the edge sample repeated: -1 -> 0, size -> size - 1
        src = np.where(idx < 0, -idx - 1, np.where(idx >= size, 2 * size - 1 - idx, idx))
    else:
        src = np.where((idx >= 0) & (idx < size), idx, -1)
    runs = []
    i = 0
    while i < len(src):
        j = i + 1
        if src[i] < 0:
            while j < len(src) and src[j] < 0:
                j += 1
            runs.append((i, j, None, None, False))
        else:
            step = src[j] - src[i] if j < len(src) and src[j] >= 0 else 1
            step = step if step in (1, -1) else 1
            while j < len(src) and src[j] >= 0 and src[j] - src[j - 1] == step:
                j += 1
            a, b = (
                (int(src[i]), int(src[j - 1]) + 1)
                if step == 1
                else (int(src[j - 1]), int(src[i]) + 1)
            )
            runs.append((i, j, a, b, step == -1))
        i = j
    return runs


def _batch_runs(chunks):
    """An axis read as it is chunked, no halo: one segment per chunk."""
    edges = np.cumsum((0,) + tuple(chunks)).tolist()
    return [[(0, b - a, a, b, False)] for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _split_at_chunks(seg, edges):
    """A segment cut where the source's chunks end: (dst0, dst1, block, lo, hi, flip) with
    [lo, hi) local to the block."""
    dst0, dst1, a, b, flip = seg
    if a is None:
        return [(dst0, dst1, None, None, None, False)]
    out = []
    first = int(np.searchsorted(edges, a, side="right")) - 1
    for blk in range(first, len(edges) - 1):
        lo, hi = max(a, edges[blk]), min(b, edges[blk + 1])
        if lo >= hi:
            break
        # a reversed segment's source [lo, hi) lands at the mirrored place of the block
        d0 = dst0 + (b - hi if flip else lo - a)
        out.append((d0, d0 + hi - lo, blk, lo - edges[blk], hi - edges[blk], flip))
    return out


class _LeafRead:
    """Reads a region of the array-like under ``da.from_array`` as that array's own tasks do
    (same getter, lock and asarray), then puts the axes in the working order."""

    def __init__(self, getter, kwargs, perm):
        self.getter, self.kwargs, self.perm = getter, kwargs, perm

    def __call__(self, arr, slices):
        src = [slice(None)] * sum(p is not None for p in self.perm)
        for s, p in zip(slices, self.perm, strict=True):
            if p is not None:
                src[p] = s
        piece = np.asarray(self.getter(arr, tuple(src), **self.kwargs))
        kept = [p for p in self.perm if p is not None]
        if kept != sorted(kept):
            piece = piece.transpose(np.argsort(np.argsort(kept)))
        new = [i for i, p in enumerate(self.perm) if p is None]
        return np.expand_dims(piece, new) if new else piece


def _leaf(src):
    """(key of the array-like, getter, getter kwargs) if `src` is exactly ``da.from_array`` of an
    array-like held once in the graph (from_npy, zarr, h5py, np.memmap), else None."""
    from dask.array.core import getter, getter_nofancy

    try:
        from dask._task_spec import TaskRef
    except ImportError:  # pragma: no cover - older dask
        return None
    graph = src.__dask_graph__()
    orig = "original-" + src.name
    layers = getattr(graph, "layers", {})
    if set(layers) != {orig, src.name}:
        return None
    task = dict(layers[src.name]).get((src.name,) + (0,) * src.ndim)
    func, args = getattr(task, "func", None), getattr(task, "args", ())
    if func not in (getter, getter_nofancy) or not args or not isinstance(args[0], TaskRef):
        return None
    if args[0].key != orig:
        return None
    return orig, func, dict(getattr(task, "kwargs", {}))


def _haloed_task(fn, shape, dtype, fill, pieces, read, *sources):
    """Assemble the haloed input of one output block from its pieces, then run `fn` on it.

    Piece (dst, k, sl, flip): ``sources[k][sl]`` (a region of a source block, or one of the
    cuts a neighbour's edge task made) lands at ``block[dst]``, reversed along flipped axes;
    k None means the fill value."""
    block = np.empty(shape, dtype)
    for dst, k, sl, flip in pieces:
        if k is None:
            block[dst] = fill
            continue
        piece = read(sources[k], sl) if read is not None else sources[k][sl]
        if any(flip):
            piece = piece[tuple(slice(None, None, -1) if f else slice(None) for f in flip)]
        block[dst] = piece
    return fn(block)


def _cut_edges(block, regions):
    """The regions of one source block that other output blocks read as their halo (copies,
    so the block itself can be freed)."""
    return [np.array(block[sl]) for sl in regions]


def _twin_key(key, tag):
    if isinstance(key, tuple):
        return (f"{key[0]}-twin-{tag}",) + key[1:]
    return f"{key}-twin-{tag}"


def _twin(src, keys, tag):
    """The tasks that compute `keys` of `src`, under new keys (see _twin_key): an independent
    copy, roots included (dask.graph_manipulation.clone keeps the roots shared)."""
    from dask._task_spec import convert_legacy_graph

    dsk = convert_legacy_graph(dict(src.__dask_graph__()))
    needed, todo = set(), list(keys)
    while todo:
        k = todo.pop()
        if k in needed:
            continue
        needed.add(k)
        todo.extend(d for d in dsk[k].dependencies if d not in needed)
    subs = {k: _twin_key(k, tag) for k in needed}
    return {subs[k]: dsk[k].substitute(subs, key=subs[k]) for k in needed}


def _haloed_map(
    leaf_src, src, perm, axis_runs, out_chunks, fn, work_dtype, out_dtype, fill, prefix
):
    """A dask array whose block (i, j, ...) is ``fn(haloed input)``, one task per block.

    axis_runs[d][i]: the segments (see _axis_runs) of working axis d that output chunk i reads.
    src: the source in the working axis order and dtype; leaf_src: the same data before
    moveaxis/astype, read directly when it is a plain ``da.from_array`` (perm: the leaf's axis
    of each working axis, None for an axis of length 1 added to it).

    Any other source is computed twice: each output block takes the source block it overlaps
    most ("home") whole, and its halo from the other blocks through small edge-cut tasks on a
    twin of the source graph (see _twin).  Then no source block feeds more than its own output block and
    one edge-cut task, and each is freed as soon as they have run, whatever order the writer
    makes the scheduler follow; sharing the blocks instead keeps a wavefront of them alive (a
    row of blocks or more: about half of a 1 GiB image under ``da.store``).
    """
    import itertools

    import dask.array as da
    from dask._task_spec import DataNode, Task, TaskRef
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    leaf = _leaf(leaf_src)
    name = f"{prefix}-" + tokenize(
        leaf_src.name, src.name, perm, axis_runs, out_chunks, fn, str(work_dtype), fill
    )
    fn_key = name + "-fn"
    layer = {fn_key: DataNode(fn_key, fn)}
    blocks = list(itertools.product(*(range(len(c)) for c in out_chunks)))
    segs_of = {index: [axis_runs[d][i] for d, i in enumerate(index)] for index in blocks}
    tasks = {}  # output index -> (source keys, pieces)
    if leaf is not None:
        orig, getter, kwargs = leaf
        read = _LeafRead(getter, kwargs, perm)
        deps = [leaf_src]
        for index in blocks:
            pieces = []
            for combo in itertools.product(*segs_of[index]):
                dst = tuple(slice(c[0], c[1]) for c in combo)
                if any(c[2] is None for c in combo):
                    pieces.append((dst, None, None, None))
                else:
                    sl = tuple(slice(c[2], c[3]) for c in combo)
                    pieces.append((dst, 0, sl, tuple(c[4] for c in combo)))
            tasks[index] = ([orig], pieces)
    else:
        read = None
        edges = [np.cumsum((0,) + c).tolist() for c in src.chunks]
        wanted = {}  # output index -> [(dst, source block, local slices, flip)]
        for index in blocks:
            split = [
                [p for seg in s for p in _split_at_chunks(seg, edges[d])]
                for d, s in enumerate(segs_of[index])
            ]
            wanted[index] = [
                (
                    tuple(slice(c[0], c[1]) for c in combo),
                    None if any(c[2] is None for c in combo) else tuple(c[2] for c in combo),
                    tuple(slice(c[3], c[4]) for c in combo),
                    tuple(c[5] for c in combo),
                )
                for combo in itertools.product(*split)
            ]
        # home: the source block giving the most samples; the rest come from edge cuts
        cuts = {}  # source block -> [local slices]
        homes = {}
        for index, pieces in wanted.items():
            size = {}
            for dst, blk, _, _ in pieces:
                if blk is not None:
                    n = int(np.prod([s.stop - s.start for s in dst]))
                    size[blk] = size.get(blk, 0) + n
            homes[index] = max(size, key=size.get) if size else None
            for _, blk, sl, _ in pieces:
                if blk is not None and blk != homes[index] and sl not in cuts.setdefault(blk, []):
                    cuts[blk].append(sl)
        deps = [src]
        twin = _twin(src, [(src.name,) + blk for blk in cuts], name)
        layer.update(twin)
        cut_name = name + "-edges"
        for blk, regions in cuts.items():
            key = (cut_name,) + blk
            twin_key = _twin_key((src.name,) + blk, name)
            layer[key] = Task(key, _cut_edges, TaskRef(twin_key), DataNode(None, regions))
        for index, wanted_pieces in wanted.items():
            keys, where, pieces = [], {}, []
            for dst, blk, sl, flip in wanted_pieces:
                if blk is None:
                    pieces.append((dst, None, None, None))
                    continue
                if blk == homes[index]:
                    key, sub = (src.name,) + blk, sl
                else:
                    key, sub = (cut_name,) + blk, cuts[blk].index(sl)
                if key not in where:
                    where[key] = len(keys)
                    keys.append(key)
                pieces.append((dst, where[key], sub, flip))
            tasks[index] = (keys, pieces)
    for index, (keys, pieces) in tasks.items():
        segs = segs_of[index]
        shape = tuple(s[-1][1] for s in segs)
        key = (name,) + index
        layer[key] = Task(
            key,
            _haloed_task,
            TaskRef(fn_key),
            shape,
            work_dtype,
            fill,
            DataNode(None, pieces),
            read,
            *(TaskRef(k) for k in keys),
        )
    graph = HighLevelGraph.from_collections(name, layer, dependencies=deps)
    meta = np.empty((0,) * len(out_chunks), dtype=out_dtype)
    return da.Array(graph, name, out_chunks, meta=meta)


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
        fillvalue, (bool, np.bool_)
    ):
        raise TypeError(f"fillvalue must be a real scalar, got {fillvalue!r}")
    threads = _check_threads(threads)
    ax = _normalise_axes(axes, in1.ndim)
    nd = in1.ndim
    # working order: the batch axes in their order, then the two filtered axes
    perm = tuple(i for i in range(nd) if i not in ax) + ax
    x = da.moveaxis(in1, ax, (-2, -1)) if ax != (nd - 2, nd - 1) else in1
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
    work_dtype = out_dtype if out_dtype.kind in "fc" else x.dtype
    # convolution is correlation with the flipped kernel; 'same' then centres differently
    # (scipy: convolve2d keeps rows [(P-1)//2, ...) of 'full', correlate2d rows [P//2, ...)).
    keff = np.ascontiguousarray(kernel[::-1, ::-1] if flip else kernel)
    before = [(P - 1) // 2 if not flip else P // 2, (Q - 1) // 2 if not flip else Q // 2]
    after = [P - 1 - before[0], Q - 1 - before[1]]
    # output o along a filtered axis reads input [o - offset, o - offset + k)
    if mode == "full":
        depth2, offset = [P - 1, Q - 1], [P - 1, Q - 1]
    elif mode == "same":
        depth2, offset = [max(before[0], after[0]), max(before[1], after[1])], before
    else:
        depth2, offset = [0, 0], [0, 0]
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
    if any(small):
        # dask's own rule: merge chunks smaller than the halo into a neighbour (documented); only
        # the output blocks change, each still reads its region from in1 as it is chunked
        from dask.array.overlap import ensure_minimum_chunksize

        chunks2 = tuple(
            ensure_minimum_chunksize(d, c) if d else c for c, d in zip(chunks2, depth2, strict=True)
        )
    axis_runs = []
    out2 = []
    for i, (size, k, chunks) in enumerate(zip((M, N), (P, Q), chunks2, strict=True)):
        length = {"full": size + k - 1, "same": size, "valid": size - k + 1}[mode]
        edges = np.cumsum((0,) + chunks)
        if mode == "full":
            edges[1:] += k - 1  # the first chunk also emits the rows before the image
        elif mode == "valid":
            edges = np.unique(np.clip(edges - before[i], 0, length))
        edges = edges.tolist()
        out2.append(tuple(b - a for a, b in zip(edges[:-1], edges[1:], strict=True)))
        axis_runs.append(
            [
                _axis_runs(a - offset[i], b - offset[i] + k - 1, size, boundary)
                for a, b in zip(edges[:-1], edges[1:], strict=True)
            ]
        )
    block_fn = functools.partial(_filter_task, kernel=keff, threads=threads)
    res = _haloed_map(
        in1,
        x,
        perm,
        [_batch_runs(c) for c in x.chunks[:-2]] + axis_runs,
        x.chunks[:-2] + tuple(out2),
        block_fn,
        work_dtype,
        out_dtype,
        fillvalue,
        f"fastconv-{name}-{mode}",
    )
    if ax != (nd - 2, nd - 1):
        res = da.moveaxis(res, (-2, -1), ax)
    return res


_FILTER_DOC = """{what} of a dask array with a 2-D kernel, chunk by chunk (scipy.signal semantics).

    Each output chunk is one task that reads its own region of in1, halo included, and
    extends the image past its edges as `boundary` says, so the result equals
    ``fastconv.signal.{name}`` on the computed array for any chunking.  No source block is kept
    for a neighbour, so the memory stays a few blocks per worker however the result is
    written (``da.store``, ``to_zarr``, `to_npy`, ``compute`` of a slice).  An in1 that is
    ``da.from_array`` of an array-like (`from_npy`, zarr, h5py, ``np.memmap``) is read once per
    output block, halo included; any other in1 is computed twice, once whole and once for the
    halos its neighbours take.

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
        the edge sample repeated.
    fillvalue : float, default 0
        The value past the edges for ``boundary="fill"``.
    axes : pair of int, default (-2, -1)
        The image axes of in1.
    allow_rechunk : bool, default True
        Output chunks along `axes` smaller than the halo (about half the kernel) are merged
        into a neighbour, as dask's map_overlap does; with False such a chunking of in1 raises
        ValueError.
    threads : int, default 1
        The fastconv threads inside each task.  Dask already runs one task per worker thread,
        so the default keeps the two from oversubscribing the cores.

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
    fastconv.signal.{name} : The same on NumPy arrays.

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


def _conv_task(block, weight, bias, stride, dilation, groups, threads, backend):
    from .conv import conv2d as eager

    with _threads.threads(threads):
        return eager(block, weight, bias, stride, 0, dilation, groups, backend=backend)


def _conv_axis(size, chunks, stride, extent, pad_before, n_out):
    """Output chunks along H or W and the input segments each reads: rows [o0*stride - pad, (o1-1)*stride + extent - pad), zeros
    outside the image."""
    # output o's window is centred on input row o*stride + (extent-1)//2 - pad_before: an output
    # chunk starts at the first window centred at or after an input chunk's start, so "same"
    # padding keeps the input's chunks
    edges = np.cumsum((0,) + tuple(chunks))
    first = -(-(edges + pad_before - (extent - 1) // 2) // stride)
    out_edges = np.unique(np.clip(first, 0, n_out))
    out_edges = np.union1d(out_edges, [0, n_out]).tolist()
    out_chunks = tuple(b - a for a, b in zip(out_edges[:-1], out_edges[1:], strict=True))
    runs = [
        _axis_runs(a * stride - pad_before, (b - 1) * stride + extent - pad_before, size, "fill")
        for a, b in zip(out_edges[:-1], out_edges[1:], strict=True)
    ]
    return out_chunks, runs


def conv2d(
    x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, threads=1, backend="auto"
):
    """``fastconv.conv2d`` on a dask array (N, C, H, W) or (C, H, W), chunk by chunk.

    Each output block is one task that reads its own input region: all channels, and the rows
    and columns its outputs' windows cover (the halo of ``dilation*(k-1)`` past the block, the
    stride's step, zeros for the padding), so the result equals ``fastconv.conv2d`` on the
    computed array for any chunking, and the memory stays a few blocks per worker however the
    result is written.  Output chunk edges fall where an input chunk edge starts a window.  An
    x that is ``da.from_array`` of an array-like is read directly; any other x is computed
    twice (whole, and for the halos its neighbours take).

    Parameters
    ----------
    x : dask.array.Array, shape (N, C, H, W) or (C, H, W)
        Input.  Every output block reads all channels, however the channel axis is chunked.
    weight : array_like, shape (K, C/groups, kh, kw)
        Filters (a NumPy array: sent to every task).
    bias : array_like, shape (K,), optional
        Per-output-channel bias (a NumPy array).
    stride : int or (int, int), default 1
        As in ``fastconv.conv2d`` (PyTorch's semantics).
    padding : int, (int, int) or {"valid", "same"}, default 0
        As in ``fastconv.conv2d``.
    dilation : int or (int, int), default 1
        As in ``fastconv.conv2d``.
    groups : int, default 1
        As in ``fastconv.conv2d``.
    threads : int, default 1
        The fastconv threads inside each task; the default avoids oversubscribing Dask's own
        workers.
    backend : {"auto", "numba", "cython"}
        Which compiled kernels the tasks run.

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
    fastconv.conv2d : The same on NumPy arrays.

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
    _require_dask(x, "x")
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
    H, W = x4.shape[2:]
    eh, ew = g.dh * (g.kh - 1) + 1, g.dw * (g.kw - 1) + 1
    oh, runs_h = _conv_axis(H, x4.chunks[2], g.sh, eh, g.pt, g.Ho)
    ow, runs_w = _conv_axis(W, x4.chunks[3], g.sw, ew, g.pl, g.Wo)
    block_fn = functools.partial(
        _conv_task,
        weight=weight,
        bias=bias,
        stride=(g.sh, g.sw),
        dilation=(g.dh, g.dw),
        groups=g.groups,
        threads=threads,
        backend=backend,
    )
    # every output block reads all input channels (each output channel needs them)
    out = _haloed_map(
        x,
        x4,
        (0, 1, 2, 3) if g.batched else (None, 0, 1, 2),
        [_batch_runs(x4.chunks[0]), [[(0, g.C, 0, g.C, False)]], runs_h, runs_w],
        (x4.chunks[0], (g.K,), oh, ow),
        block_fn,
        dtype,
        dtype,
        0,
        "fastconv-conv2d",
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
    chunks : int, tuple or "auto"
        Block shape, as ``dask.array.from_array`` takes it.

    Returns
    -------
    dask.array.Array
        Lazy, with the file's shape and dtype; each task opens the file and reads its block.

    See Also
    --------
    to_npy : The way back to a file, block by block.

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
        The array to compute.
    path : str or path-like
        The .npy file to create (overwritten if it exists).
    band : int or None, default 1
        Compute and write `band` rows of chunks (along axis 0) per pass.  fastconv.dask's own
        graphs keep their memory bounded in a single pass; the passes bound graphs that do not
        (dask's map_overlap on a 1 GiB image held about 0.7 GiB at once, one-row passes about
        0.2 GiB).  Use None for a single pass, e.g. when every block depends on a global
        reduction (``x / x.max()``), which each pass would otherwise recompute.
    **store_kwargs
        Passed to ``dask.array.store``, e.g. ``scheduler="threads", num_workers=2``.

    Raises
    ------
    ValueError
        `band` not a positive int or None, or a 0-d `x`.

    See Also
    --------
    from_npy : Read a .npy file lazily.

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


# ---------------------------------------------------------------------------------------------
# N-d filters (fastconv.ndimage on every chunk)
# ---------------------------------------------------------------------------------------------
# A chunk grows by each filtered axis's reach (the most samples the filter reads on one side);
# map_overlap gives it its neighbours' samples there and trims the result.  At the array's own
# edges nothing is added ("none") and fastconv.ndimage extends the chunk by `mode` itself, which is
# exactly how it extends the whole array, except for the wrap modes, whose extension comes from
# the opposite edge ("periodic").  The result equals fastconv.ndimage on the computed array.

_WRAP_MODES = ("wrap", "grid-wrap")


def _reach(size, origin):
    """Samples a filter of `size` taps with `origin` reads on its longer side."""
    left = size // 2 + origin
    return max(left, size - 1 - left, 0)


def _modes(mode, n):
    if isinstance(mode, str):
        return (mode,) * n
    return tuple(mode)


def _ndimage_probe(name, x, kwargs):
    """fastconv.ndimage.<name> on a one-element-per-axis array of x's dtype: a bad argument raises
    its ValueError/TypeError when the graph is built (not at compute time), and the probe's dtype
    is the result's."""
    _require_dask(x, "input")
    from . import ndimage

    return getattr(ndimage, name)(np.zeros((1,) * x.ndim, dtype=x.dtype), **kwargs)


def _ndimage_map(name, x, probe, reach, modes, threads, kwargs):
    """fastconv.ndimage.<name>(chunk, **kwargs) over the chunks of x, with halos `reach` per axis."""
    da = _require_dask(x, "input")
    threads = _check_threads(threads)
    from . import ndimage

    fn = getattr(ndimage, name)
    if x.size == 0:
        return da.from_array(fn(np.asarray(x), **kwargs), chunks=x.chunks)
    depth = {ax: int(r) for ax, r in enumerate(reach)}
    whole = {ax: -1 for ax, r in depth.items() if r and r >= x.shape[ax]}
    if whole:  # a reach past the whole axis: one chunk holds it, extended by mode, no halo
        x = x.rechunk(whole)
        depth.update(dict.fromkeys(whole, 0))
    boundary = {
        ax: ("periodic" if modes[ax] in _WRAP_MODES and depth[ax] else "none")
        for ax in range(x.ndim)
    }

    def task(block):
        with _threads.threads(threads):
            return fn(block, **kwargs)

    return x.map_overlap(
        task, depth=depth, boundary=boundary, dtype=probe.dtype, meta=probe[:0], trim=True
    )


def _per_axis(value, n, name):
    if isinstance(value, (numbers.Integral, np.integer)):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"{name} must be an int or a sequence of {n} ints, got {value!r}")
    return value


def _filtered_axes(axes, ndim):
    if axes is None:
        return tuple(range(ndim))
    axes = (axes,) if isinstance(axes, (numbers.Integral, np.integer)) else tuple(axes)
    return tuple(int(a) % ndim if -ndim <= int(a) < ndim else int(a) for a in axes)


def _nd_reach(x, sizes, origins, axes, modes):
    """Per-axis reach for filters of `sizes` with `origins` along `axes` of x (0 elsewhere), and
    the per-axis modes (a filtered axis's own mode, "constant" elsewhere: never used)."""
    reach = [0] * x.ndim
    mode_of = ["constant"] * x.ndim
    for i, ax in enumerate(axes):
        if 0 <= ax < x.ndim:
            reach[ax] = max(reach[ax], _reach(sizes[i], origins[i]))
            mode_of[ax] = modes[i] if len(modes) == len(axes) else modes[0]
    return reach, mode_of


def correlate(input, weights, mode="reflect", cval=0.0, origin=0, *, axes=None, threads=1):
    """Multidimensional correlation of a dask array, chunk by chunk (scipy.ndimage.correlate).

    Parameters
    ----------
    input : dask.array.Array
        The input array (known chunk sizes).
    weights : array_like
        The weights (a NumPy array sent to every task), with ``input.ndim`` dimensions or
        ``len(axes)``.
    mode : str, optional
        As `fastconv.ndimage.correlate` (default "reflect"): the extension at the array's edges.
    cval : scalar, optional
        Value past the edges for mode "constant".  Default 0.0.
    origin : int or sequence of int, optional
        Shifts the filter along each axis (default 0).
    axes : tuple of int or None, optional
        The axes to filter (default all).
    threads : int, optional
        Threads fastconv uses in each task (default 1: dask runs tasks in parallel).

    Returns
    -------
    dask.array.Array
        Lazy; equal to ``fastconv.ndimage.correlate`` of the computed input.

    Raises
    ------
    TypeError, ValueError
        As `fastconv.ndimage.correlate`, when the graph is built; `input` not a dask array.

    See Also
    --------
    fastconv.ndimage.correlate : The NumPy function each chunk runs.
    convolve : The same with the weights flipped.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastconv.dask, fastconv.ndimage
    >>> x = np.arange(64.0).reshape(8, 8)
    >>> y = fastconv.dask.correlate(da.from_array(x, chunks=3), np.ones((3, 3)), mode="wrap")
    >>> bool(np.array_equal(y.compute(), fastconv.ndimage.correlate(x, np.ones((3, 3)), mode="wrap")))
    True
    """
    return _correlate_nd("correlate", input, weights, mode, cval, origin, axes, threads)


def convolve(input, weights, mode="reflect", cval=0.0, origin=0, *, axes=None, threads=1):
    """Multidimensional convolution of a dask array, chunk by chunk (scipy.ndimage.convolve).

    Parameters
    ----------
    input : dask.array.Array
        The input array (known chunk sizes).
    weights : array_like
        The weights (a NumPy array sent to every task).
    mode : str, optional
        As `fastconv.ndimage.convolve` (default "reflect").
    cval : scalar, optional
        Value past the edges for mode "constant".  Default 0.0.
    origin : int or sequence of int, optional
        Shifts the filter along each axis (default 0).
    axes : tuple of int or None, optional
        The axes to filter (default all).
    threads : int, optional
        Threads fastconv uses in each task (default 1).

    Returns
    -------
    dask.array.Array
        Lazy; equal to ``fastconv.ndimage.convolve`` of the computed input.

    Raises
    ------
    TypeError, ValueError
        As `fastconv.ndimage.convolve`, when the graph is built; `input` not a dask array.

    See Also
    --------
    fastconv.ndimage.convolve : The NumPy function each chunk runs.
    correlate : Without the flip.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastconv.dask
    >>> x = da.ones((6, 6), chunks=4)
    >>> fastconv.dask.convolve(x, np.ones((3, 3)), mode="constant").compute()[0]
    array([4., 6., 6., 6., 6., 4.])
    """
    return _correlate_nd("convolve", input, weights, mode, cval, origin, axes, threads)


def _correlate_nd(name, x, weights, mode, cval, origin, axes, threads):
    _require_dask(x, "input")
    w = _small_numpy(weights, "weights", kinds="biufc")
    kw = dict(weights=w, mode=mode, cval=cval, origin=origin, axes=axes)
    probe = _ndimage_probe(name, x, kw)  # validates weights against axes, origin, mode
    ax = _filtered_axes(axes, x.ndim)
    origins = _per_axis(origin, len(ax), "origin")
    if name == "convolve":  # convolve = correlate with flipped weights and origins
        origins = tuple(-o - (1 - k % 2) for o, k in zip(origins, w.shape, strict=True))
    reach, modes = _nd_reach(x, w.shape, origins, ax, _modes(mode, 1))
    return _ndimage_map(name, x, probe, reach, modes, threads, kw)


def uniform_filter(input, size=3, mode="reflect", cval=0.0, origin=0, *, axes=None, threads=1):
    """Multidimensional uniform filter of a dask array, chunk by chunk (scipy.ndimage.uniform_filter).

    Parameters
    ----------
    input : dask.array.Array
        The input array (known chunk sizes).
    size : int or sequence of int, optional
        The filter size along each filtered axis (default 3).
    mode : str or sequence of str, optional
        As `fastconv.ndimage.uniform_filter` (default "reflect"); one per axis allowed.
    cval : scalar, optional
        Value past the edges for mode "constant".  Default 0.0.
    origin : int or sequence of int, optional
        Shifts the filter along each axis (default 0).
    axes : tuple of int or None, optional
        The axes to filter (default all).
    threads : int, optional
        Threads fastconv uses in each task (default 1).

    Returns
    -------
    dask.array.Array
        Lazy; equal to ``fastconv.ndimage.uniform_filter`` of the computed input.

    Raises
    ------
    TypeError, ValueError
        As `fastconv.ndimage.uniform_filter`, when the graph is built; `input` not a dask array.

    See Also
    --------
    fastconv.ndimage.uniform_filter : The NumPy function each chunk runs.
    gaussian_filter : A Gaussian instead of a box.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastconv.dask
    >>> fastconv.dask.uniform_filter(da.ones((5, 5), chunks=2), 3).compute()[2]
    array([1., 1., 1., 1., 1.])
    """
    kw = dict(size=size, mode=mode, cval=cval, origin=origin, axes=axes)
    probe = _ndimage_probe("uniform_filter", input, kw)
    ax = _filtered_axes(axes, input.ndim)
    sizes = _per_axis(size, len(ax), "size")
    origins = _per_axis(origin, len(ax), "origin")
    reach, modes = _nd_reach(input, sizes, origins, ax, _modes(mode, len(ax)))
    return _ndimage_map("uniform_filter", input, probe, reach, modes, threads, kw)


def gaussian_filter(
    input,
    sigma,
    order=0,
    mode="reflect",
    cval=0.0,
    truncate=4.0,
    *,
    radius=None,
    axes=None,
    threads=1,
):
    """Multidimensional Gaussian filter of a dask array, chunk by chunk (scipy.ndimage.gaussian_filter).

    Parameters
    ----------
    input : dask.array.Array
        The input array (known chunk sizes).
    sigma : scalar or sequence of scalars
        Standard deviation per filtered axis.
    order : int or sequence of ints, optional
        Derivative order per axis (default 0).
    mode : str or sequence of str, optional
        As `fastconv.ndimage.gaussian_filter` (default "reflect"); one per axis allowed.
    cval : scalar, optional
        Value past the edges for mode "constant".  Default 0.0.
    truncate : float, optional
        Truncate the kernel at this many standard deviations (default 4.0).
    radius : int or sequence of ints, optional
        The kernel radius per axis, overriding `truncate`.
    axes : tuple of int or None, optional
        The axes to filter (default all).
    threads : int, optional
        Threads fastconv uses in each task (default 1).

    Returns
    -------
    dask.array.Array
        Lazy; equal to ``fastconv.ndimage.gaussian_filter`` of the computed input.

    Raises
    ------
    TypeError, ValueError
        As `fastconv.ndimage.gaussian_filter`, when the graph is built; `input` not a dask array.

    See Also
    --------
    fastconv.ndimage.gaussian_filter : The NumPy function each chunk runs.
    uniform_filter : A box instead of a Gaussian.

    Examples
    --------
    >>> import numpy as np, dask.array as da, fastconv.dask
    >>> y = fastconv.dask.gaussian_filter(da.ones((6, 6), chunks=3), 1.0)
    >>> bool(np.allclose(y.compute(), 1.0))
    True
    """
    kw = dict(
        sigma=sigma, order=order, mode=mode, cval=cval, truncate=truncate, radius=radius, axes=axes
    )
    probe = _ndimage_probe("gaussian_filter", input, kw)
    ax = _filtered_axes(axes, input.ndim)
    sig = np.broadcast_to(np.asarray(sigma, dtype=float), (len(ax),))
    if radius is None:
        rad = tuple(int(float(truncate) * float(s) + 0.5) for s in sig)
    else:
        rad = _per_axis(radius, len(ax), "radius")
    rad = tuple(r if s > 1e-15 else 0 for r, s in zip(rad, sig, strict=True))
    reach, modes = _nd_reach(
        input, [2 * r + 1 for r in rad], [0] * len(ax), ax, _modes(mode, len(ax))
    )
    return _ndimage_map("gaussian_filter", input, probe, reach, modes, threads, kw)
