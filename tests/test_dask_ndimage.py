"""fastconv.dask's N-d filters against scipy.ndimage on the whole array (chunk edges invisible)."""

import numpy as np
import pytest
import scipy.ndimage as sn
from hypothesis import given, settings
from hypothesis import strategies as st

da = pytest.importorskip("dask.array")
import fastconv.dask as fd  # noqa: E402

MODES = [
    "reflect",
    "constant",
    "nearest",
    "mirror",
    "wrap",
    "grid-mirror",
    "grid-constant",
    "grid-wrap",
]


@st.composite
def volumes(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 9)) for _ in range(ndim))
    chunks = tuple(draw(st.integers(1, n)) for n in shape)
    return shape, chunks


@settings(max_examples=40, deadline=None)
@given(
    vol=volumes(),
    mode=st.sampled_from(MODES),
    flip=st.booleans(),
    data=st.data(),
)
def test_correlate_and_convolve_match_scipy_whatever_the_chunks(vol, mode, flip, data):
    shape, chunks = vol
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    k = tuple(data.draw(st.integers(1, 4)) for _ in shape)
    w = rng.standard_normal(k)
    origin = tuple(data.draw(st.integers(-(n // 2), (n - 1) // 2)) for n in k)
    f, ref = (fd.convolve, sn.convolve) if flip else (fd.correlate, sn.correlate)
    y = f(da.from_array(x, chunks=chunks), w, mode=mode, cval=0.5, origin=origin)
    assert isinstance(y, da.Array)
    want = ref(x, w, mode=mode, cval=0.5, origin=origin)
    np.testing.assert_allclose(y.compute(), want, rtol=1e-12, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(vol=volumes(), data=st.data())
def test_uniform_and_gaussian_match_scipy(vol, data):
    shape, chunks = vol
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    modes = [data.draw(st.sampled_from(MODES)) for _ in shape]
    size = [data.draw(st.integers(1, 5)) for _ in shape]
    dx = da.from_array(x, chunks=chunks)
    y = fd.uniform_filter(dx, size, mode=modes)
    assert y.dtype == np.float32
    np.testing.assert_allclose(
        y.compute(), sn.uniform_filter(x, size, mode=modes), rtol=1e-5, atol=1e-6
    )
    sigma = [data.draw(st.sampled_from([0.0, 0.7, 1.5])) for _ in shape]
    order = [data.draw(st.integers(0, 2)) for _ in shape]
    g = fd.gaussian_filter(dx, sigma, order=order, mode=modes)
    np.testing.assert_allclose(
        g.compute(), sn.gaussian_filter(x, sigma, order=order, mode=modes), rtol=1e-5, atol=1e-5
    )


def test_chunked_volume_with_axes_and_threads():
    """A 3-D volume in slabs, filtered over its last two axes (a stack of images) and as a volume."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((12, 20, 18))
    dx = da.from_array(x, chunks=(5, 7, 6))
    w2 = rng.standard_normal((5, 3))
    y = fd.correlate(dx, w2, axes=(1, 2), mode="nearest", threads=2)
    np.testing.assert_allclose(
        y.compute(), sn.correlate(x, w2, axes=(1, 2), mode="nearest"), rtol=1e-12
    )
    g = fd.gaussian_filter(dx, 2.0, radius=3, mode="wrap")
    np.testing.assert_allclose(
        g.compute(), sn.gaussian_filter(x, 2.0, radius=3, mode="wrap"), rtol=1e-12
    )


def test_nan_and_inf_spread_as_in_scipy():
    x = np.ones((9, 9))
    x[2, 3], x[7, 7] = np.nan, np.inf
    y = fd.correlate(da.from_array(x, chunks=4), np.ones((3, 3)))
    np.testing.assert_array_equal(y.compute(), sn.correlate(x, np.ones((3, 3))))


def test_bad_arguments_fail_when_the_graph_is_built():
    dx = da.ones((6, 6), chunks=3)
    with pytest.raises(TypeError, match="input must be a dask.array.Array"):
        fd.correlate(np.ones((6, 6)), np.ones((3, 3)))
    with pytest.raises((ValueError, RuntimeError), match="mode"):
        fd.correlate(dx, np.ones((3, 3)), mode="bogus")
    with pytest.raises((ValueError, RuntimeError)):
        fd.correlate(dx, np.ones((3, 3, 3)))
    with pytest.raises((ValueError, RuntimeError)):
        fd.uniform_filter(dx, 3, origin=5)
    with pytest.raises(ValueError, match="threads"):
        fd.gaussian_filter(dx, 1.0, threads=0)


def test_empty_and_zero_reach():
    e = da.zeros((0, 4), chunks=2)
    assert fd.uniform_filter(e, 3).compute().shape == (0, 4)
    x = np.arange(16.0).reshape(4, 4)
    np.testing.assert_array_equal(fd.gaussian_filter(da.from_array(x, chunks=2), 0.0).compute(), x)
