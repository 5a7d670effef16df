"""Tests for fastconv.dask: results equal the eager functions for any chunking, errors, distributed.

The references are the eager functions on the computed NumPy array (fastconv.signal, or
scipy.signal until it exists, and fastconv.conv2d), checked again against scipy/_reference.
"""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerance import assert_close

da = pytest.importorskip("dask.array")

import fastconv  # noqa: E402
import fastconv.dask as fdask  # noqa: E402
from fastconv import _reference  # noqa: E402


def signal_reference():
    try:
        from fastconv import signal

        return signal
    except ImportError:
        return scipy.signal


class ArrayLike:
    """Not an ndarray, so da.from_array keeps it in the graph and reads it on demand, as it does
    a np.memmap, a zarr or an h5py array: the path where each block reads its own haloed region."""

    def __init__(self, a):
        self.a, self.shape, self.dtype, self.ndim = a, a.shape, a.dtype, a.ndim

    def __getitem__(self, key):
        return self.a[key]


SOURCES = ["numpy", "array-like", "computed"]


def source(x, chunks, kind):
    """x as a dask array of the given kind: from_array of NumPy (blocks already in memory), of an
    array-like (read per block), or a computed graph (blocks exist only once computed)."""
    if kind == "numpy":
        return da.from_array(x, chunks=chunks)
    xd = da.from_array(ArrayLike(x), chunks=chunks)
    assert fdask._leaf(xd) is not None
    if kind == "computed":
        xd = xd + np.zeros((), x.dtype)  # exact: adding zero changes no value
        assert fdask._leaf(xd) is None
    return xd


def split(draw, n):
    """A random chunking of an axis of length n: chunk edges anywhere, sizes 1..n."""
    cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=min(4, n - 1)))) if n > 1 else []
    edges = [0, *cuts, n]
    return tuple(b - a for a, b in zip(edges[:-1], edges[1:], strict=True))


@st.composite
def filter_case(draw):
    M, N = draw(st.integers(4, 40)), draw(st.integers(4, 40))
    P, Q = draw(st.integers(1, min(M, 9))), draw(st.integers(1, min(N, 9)))
    mode = draw(st.sampled_from(["same", "full", "valid"]))
    boundary = draw(st.sampled_from(["fill", "wrap", "symm"]))
    if mode == "full":  # the halo (k - 1) must fit in the image
        P, Q = min(P, M), min(Q, N)
    return dict(
        shape=(M, N),
        kshape=(P, Q),
        chunks=(split(draw, M), split(draw, N)),
        mode=mode,
        boundary=boundary,
        fillvalue=draw(st.sampled_from([0.0, 1.5, -2.0])),
        dtype=draw(st.sampled_from([np.float32, np.float64])),
        flip=draw(st.booleans()),
        source=draw(st.sampled_from(SOURCES)),
    )


@settings(max_examples=60, deadline=None)
@given(filter_case())
def test_filter_matches_eager_for_any_chunking(case):
    rng = np.random.default_rng(1234)
    dtype = case["dtype"]
    x = rng.standard_normal(case["shape"]).astype(dtype)
    k = rng.standard_normal(case["kshape"]).astype(dtype)
    x0, k0 = x.copy(), k.copy()
    name = "convolve2d" if case["flip"] else "correlate2d"
    args = dict(mode=case["mode"], boundary=case["boundary"], fillvalue=case["fillvalue"])
    got = getattr(fdask, name)(source(x, case["chunks"], case["source"]), k, **args)
    res = got.compute()
    assert res.shape == got.shape
    assert res.dtype == got.dtype == dtype
    assert_close(res, getattr(signal_reference(), name)(x, k, **args), dtype)
    assert_close(res, getattr(scipy.signal, name)(x, k, **args), dtype)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(k, k0)


@pytest.mark.parametrize("kind", SOURCES)
@pytest.mark.parametrize("axes", [(-2, -1), (0, 2), (2, 1), (1, 0)])
@pytest.mark.parametrize("mode", ["same", "full", "valid"])
def test_filter_stack_and_axes(axes, mode, kind):
    rng = np.random.default_rng(1234)
    x = rng.standard_normal((12, 5, 15)).astype(np.float32)
    k = rng.standard_normal((4, 3)).astype(np.float32)
    got = fdask.correlate2d(
        source(x, (5, 2, 4), kind), k, mode=mode, boundary="symm", axes=axes
    ).compute()
    # reference: move the filtered axes last, filter each image, move back
    a = [ax % 3 for ax in axes]
    xm = np.moveaxis(x, a, (-2, -1))
    ref = np.stack([scipy.signal.correlate2d(im, k, mode, "symm") for im in xm])
    assert_close(got, np.moveaxis(ref, (-2, -1), a), np.float32)


def test_small_chunks_rechunked_or_refused():
    rng = np.random.default_rng(1234)
    x = rng.standard_normal((20, 20))
    k = rng.standard_normal((7, 7))
    xd = da.from_array(x, chunks=(2, 20))
    ref = scipy.signal.correlate2d(x, k, "same", "wrap")
    assert_close(fdask.correlate2d(xd, k, boundary="wrap").compute(), ref, np.float64)
    with pytest.raises(ValueError, match="allow_rechunk"):
        fdask.correlate2d(xd, k, boundary="wrap", allow_rechunk=False)


def test_filter_bad_input():
    x = da.ones((8, 8), chunks=4)
    k = np.ones((3, 3))
    with pytest.raises(TypeError, match="in1"):
        fdask.correlate2d(np.ones((8, 8)), k)
    with pytest.raises(TypeError, match="in2"):
        fdask.correlate2d(x, da.ones((3, 3)))
    with pytest.raises(TypeError, match="in1"):
        fdask.correlate2d(x.astype(object), k)
    with pytest.raises(TypeError, match="in2"):
        fdask.convolve2d(x, k.astype("U1"))
    with pytest.raises(ValueError, match="in2"):
        fdask.correlate2d(x, np.ones(3))
    with pytest.raises(ValueError, match="boundary"):
        fdask.correlate2d(x, k, boundary="reflect")
    with pytest.raises(ValueError, match="mode"):
        fdask.correlate2d(x, k, mode="middle")
    with pytest.raises(ValueError, match="axes"):
        fdask.correlate2d(x, k, axes=(0, 0))
    # bools are ints to Python, but not axes
    for bad in [(True, False), (np.True_, 0), (0, 1.0), (0,), 1, "ab"]:
        with pytest.raises(TypeError, match="axes"):
            fdask.correlate2d(x, k, axes=bad)
    with pytest.raises(TypeError, match="fillvalue"):
        fdask.correlate2d(x, k, fillvalue=np.True_)
    with pytest.raises(ValueError, match="halo"):
        fdask.correlate2d(x, np.ones((12, 3)), mode="full")
    with pytest.raises(ValueError, match="valid"):
        fdask.correlate2d(x, np.ones((9, 3)), mode="valid")
    with pytest.raises(ValueError, match="threads"):
        fdask.correlate2d(x, k, threads=0)
    with pytest.raises(ValueError, match="threads must be at most"):  # set_num_threads's rule
        fdask.correlate2d(x, k, threads=1000)
    unknown = x[x[:, 0] > 0]  # rows kept depend on the data: chunk sizes unknown
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        fdask.correlate2d(unknown, k)


@pytest.mark.parametrize(
    "xdt, kdt",
    [
        (np.int64, np.float32),
        (np.int16, np.int16),
        (np.float32, np.float64),
        (np.complex64, np.float32),
    ],
)
def test_filter_dtype_follows_eager(xdt, kdt):
    rng = np.random.default_rng(1234)
    x = (rng.standard_normal((9, 8)) * 10).astype(xdt)
    k = (rng.standard_normal((3, 2)) * 3).astype(kdt)
    ref = signal_reference().convolve2d(x, k, "same", "symm")
    got = fdask.convolve2d(da.from_array(x, chunks=3), k, boundary="symm")
    assert got.dtype == ref.dtype
    res = got.compute()
    assert res.dtype == ref.dtype
    if ref.dtype.kind in "iu":
        np.testing.assert_array_equal(res, ref)
    else:
        assert_close(res, ref, np.float64 if ref.dtype.itemsize == 16 else np.float32)


@st.composite
def conv_case(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    Cg = draw(st.integers(1, 3))
    Kg = draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    padding = draw(
        st.one_of(
            st.tuples(st.integers(0, 3), st.integers(0, 3)),
            st.sampled_from(["valid", "same"] if (sh, sw) == (1, 1) else ["valid"]),
        )
    )
    H = draw(st.integers(dh * (kh - 1) + 1, 40))
    W = draw(st.integers(dw * (kw - 1) + 1, 40))
    N = draw(st.integers(1, 3))
    shape = (N, Cg * groups, H, W)
    chunks = tuple(split(draw, n) for n in shape)
    return dict(
        shape=shape,
        wshape=(Kg * groups, Cg, kh, kw),
        stride=(sh, sw),
        padding=padding,
        dilation=(dh, dw),
        groups=groups,
        chunks=chunks,
        bias=draw(st.booleans()),
        dtype=draw(st.sampled_from([np.float32, np.float64])),
        source=draw(st.sampled_from(SOURCES)),
        batched=draw(st.booleans()) if N == 1 else True,
    )


@settings(max_examples=60, deadline=None)
@given(conv_case())
def test_conv2d_matches_eager_for_any_chunking(case):
    rng = np.random.default_rng(1234)
    dtype = case["dtype"]
    x = rng.standard_normal(case["shape"]).astype(dtype)
    w = rng.standard_normal(case["wshape"]).astype(dtype)
    b = rng.standard_normal(case["wshape"][0]).astype(dtype) if case["bias"] else None
    args = dict(
        stride=case["stride"],
        padding=case["padding"],
        dilation=case["dilation"],
        groups=case["groups"],
    )
    if not case["batched"]:  # (C, H, W): the block reads add the batch axis
        x, chunks = x[0], case["chunks"][1:]
    else:
        chunks = case["chunks"]
    got = fdask.conv2d(source(x, chunks, case["source"]), w, b, **args)
    res = got.compute()
    ref = fastconv.conv2d(x, w, b, **args)
    assert res.shape == got.shape == ref.shape
    assert res.dtype == got.dtype == dtype
    assert_close(res, ref, dtype)
    if not isinstance(case["padding"], str):
        slow = _reference.conv2d(x, w, b, **args)
        assert_close(res, slow, dtype)


def test_conv2d_unbatched_and_threads(monkeypatch):
    from fastconv import conv

    seen = []
    eager = conv.conv2d

    def spy(*a, **k):
        seen.append(fastconv.get_num_threads())
        return eager(*a, **k)

    monkeypatch.setattr(conv, "conv2d", spy)
    rng = np.random.default_rng(1234)
    x = rng.standard_normal((2, 17, 19)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    y = fdask.conv2d(da.from_array(x, chunks=(1, 6, 7)), w, padding=1)
    assert_close(y.compute(scheduler="threads"), eager(x, w, padding=1), np.float32)
    assert seen and set(seen) == {1}
    seen.clear()
    fdask.conv2d(da.from_array(x, chunks=(2, 6, 7)), w, threads=2).compute(scheduler="sync")
    assert set(seen) == {2}


def test_conv2d_bad_input():
    x = da.ones((1, 4, 8, 8), chunks=(1, 4, 4, 4), dtype=np.float32)
    w = np.ones((2, 4, 3, 3), dtype=np.float32)
    with pytest.raises(TypeError, match="x must be a dask"):
        fdask.conv2d(np.ones((1, 4, 8, 8)), w)
    with pytest.raises(TypeError, match="weight"):
        fdask.conv2d(x, da.from_array(w))
    with pytest.raises(ValueError, match="channels"):
        fdask.conv2d(x, np.ones((2, 3, 3, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="bias"):
        fdask.conv2d(x, w, np.ones(3, dtype=np.float32))
    with pytest.raises(ValueError, match="stride"):
        fdask.conv2d(x, w, stride=0)
    with pytest.raises(TypeError, match="x"):
        fdask.conv2d(x.astype(np.complex64), w)
    with pytest.raises(ValueError, match="backend"):
        fdask.conv2d(x, w, backend="gpu")


def test_conv2d_mixed_dtypes_promote_like_eager():
    rng = np.random.default_rng(1234)
    x = rng.standard_normal((1, 2, 9, 9)).astype(np.float32)
    w = rng.standard_normal((2, 2, 3, 3))  # float64
    got = fdask.conv2d(da.from_array(x, chunks=(1, 1, 4, 5)), w, stride=2)
    ref = fastconv.conv2d(x, w, stride=2)
    assert got.dtype == ref.dtype == np.float64
    assert_close(got.compute(), ref, np.float64)


def _dependents(graph):
    from dask._task_spec import convert_legacy_graph

    dsk = convert_legacy_graph(dict(graph))
    users = {k: [] for k in dsk}
    for k, task in dsk.items():
        for d in task.dependencies:
            users[d].append(k)
    return dsk, users


@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
def test_each_output_block_reads_its_own_region(boundary):
    """The property that keeps memory bounded whatever the writer: no source block is kept for a
    neighbour (no getitem/concatenate stages, no block shared by two output blocks)."""
    x = np.arange(48 * 40, dtype=np.float64).reshape(48, 40)
    k = np.ones((5, 3))
    leaf = da.from_array(ArrayLike(x), chunks=(16, 10))
    y = fdask.correlate2d(leaf, k, boundary=boundary)
    from dask.core import flatten

    dsk, users = _dependents(y.__dask_graph__())
    orig = "original-" + leaf.name
    assert set(y.__dask_graph__().layers) == {orig, leaf.name, y.name}
    for kk in flatten(y.__dask_keys__()):
        assert dsk[kk].dependencies <= {orig, y.name + "-fn"}
    assert_close(y.compute(), scipy.signal.correlate2d(x, k, "same", boundary), np.float64)

    computed = leaf + 0.0
    y = fdask.correlate2d(computed, k, boundary=boundary)
    dsk, users = _dependents(y.__dask_graph__())
    outputs = {kk for kk in dsk if isinstance(kk, tuple) and kk[0] == y.name}
    for kk, who in users.items():
        if isinstance(kk, tuple) and kk[0] == computed.name:
            assert len(who) == 1 and who[0] in outputs  # its own output block only
        elif isinstance(kk, tuple) and "-twin-" in kk[0] and kk[0].startswith("add"):
            assert len(who) == 1 and who[0][0].endswith("-edges")  # one edge-cut task
    assert_close(y.compute(), scipy.signal.correlate2d(x, k, "same", boundary), np.float64)


@pytest.mark.parametrize("kind", SOURCES)
def test_every_writer_gives_the_eager_result(tmp_path, kind):
    rng = np.random.default_rng(1234)
    x = rng.standard_normal((200, 180)).astype(np.float32)
    k = rng.standard_normal((7, 6)).astype(np.float32)
    ref = scipy.signal.convolve2d(x, k, "same", "symm")
    y = fdask.convolve2d(source(x, 64, kind), k, boundary="symm")
    out = np.lib.format.open_memmap(tmp_path / "s.npy", mode="w+", dtype=y.dtype, shape=y.shape)
    da.store(y, out, lock=False, scheduler="threads", num_workers=2)
    assert_close(np.asarray(out), ref, np.float32)
    del out
    fdask.to_npy(y, tmp_path / "n.npy", band=None, scheduler="threads", num_workers=2)
    assert_close(np.load(tmp_path / "n.npy"), ref, np.float32)
    assert_close(y[60:130, 1:70].compute(), ref[60:130, 1:70], np.float32)
    assert_close(y[-1:, ::7].compute(scheduler="sync"), ref[-1:, ::7], np.float32)
    zarr = pytest.importorskip("zarr")
    y.to_zarr(str(tmp_path / "z.zarr"))
    assert_close(np.asarray(zarr.open_array(str(tmp_path / "z.zarr"), mode="r")), ref, np.float32)


def test_graph_pickles_and_holds_no_big_arrays(tmp_path):
    path = tmp_path / "img.npy"
    img = np.random.default_rng(1234).standard_normal((2048, 2048)).astype(np.float32)
    np.save(path, img)
    x = fdask.from_npy(path, chunks=512)
    y = fdask.correlate2d(x, np.ones((15, 15), np.float32) / 225, boundary="symm")
    blob = pickle.dumps(dict(y.__dask_graph__()))
    assert len(blob) < 1 << 20  # the graph names slices of the file; it never carries the image
    # the lazy array itself (reader, kernel, block functions) survives pickling, as on distributed
    y2 = pickle.loads(pickle.dumps(y))
    assert_close(y2[:600, :600].compute(), y[:600, :600].compute(), np.float32)


def test_out_of_core_roundtrip(tmp_path):
    src, dst = tmp_path / "img.npy", tmp_path / "out.npy"
    img = np.random.default_rng(1234).standard_normal((2048, 2048)).astype(np.float32)
    np.save(src, img)
    k = np.random.default_rng(1).standard_normal((15, 15)).astype(np.float32)
    y = fdask.correlate2d(fdask.from_npy(src, chunks=(700, 512)), k, boundary="symm")
    fdask.to_npy(y, dst, scheduler="threads", num_workers=2)
    out = np.load(dst)
    assert out.dtype == np.float32 and out.shape == img.shape
    # compare a band across chunk edges and the image corners with scipy
    ref = scipy.signal.correlate2d(img[:720, :530], k, "same", "symm")
    assert_close(out[:700, :512], ref[:700, :512], np.float32)
    assert_close(
        out[-5:, -5:],
        scipy.signal.correlate2d(img[-40:, -40:], k, "same", "symm")[-5:, -5:],
        np.float32,
    )


def test_package_imports_without_dask():
    code = (
        "import sys; sys.modules['dask'] = None; sys.modules['dask.array'] = None\n"
        "import fastconv, fastconv.dask\n"
        "try:\n"
        "    fastconv.dask.correlate2d(None, [[1.0]])\n"
        "except ImportError as e:\n"
        "    print('ok', 'dask' in str(e))\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok True"


def test_local_cluster_two_processes():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    try:
        with distributed.Client(cluster) as client:
            rng = np.random.default_rng(1234)
            x = rng.standard_normal((64, 80)).astype(np.float32)
            k = rng.standard_normal((5, 4)).astype(np.float32)
            y = fdask.convolve2d(da.from_array(x, chunks=(20, 30)), k, boundary="wrap")
            got = client.compute(y).result()
            assert_close(got, scipy.signal.convolve2d(x, k, "same", "wrap"), np.float32)
            xb = rng.standard_normal((4, 3, 20, 20)).astype(np.float32)
            w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
            yb = fdask.conv2d(da.from_array(xb, chunks=(2, 3, 9, 20)), w, stride=2, padding=1)
            ref = fastconv.conv2d(xb, w, None, 2, 1)
            assert_close(client.compute(yb).result(), ref, np.float32)
            # the tasks ran in the worker processes, not here
            pids = set(client.run(os.getpid).values())
            assert len(pids) == 2 and os.getpid() not in pids
    finally:
        cluster.close()
