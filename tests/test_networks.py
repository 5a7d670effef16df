"""fastconv._networks (ResNet-50, MobileNetV2, EfficientNet-B0 in fastconv + NumPy) against torch.

The torch twins are benchmarks/scripts/networks.py's, written out in torch.nn and run unfused (BN in
eval mode), so folding, padding, strides, SE and residual wiring are all checked; skipped without torch.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv
from fastconv._networks import NETWORKS, Network, random_weights
from tests import tolerance
from tests.tolerance import assert_close

torch = pytest.importorskip("torch")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _script():
    spec = importlib.util.spec_from_file_location(
        "_networks_script", os.path.join(ROOT, "benchmarks", "scripts", "networks.py")
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


SCRIPT = _script()
_NETS = {}
_TORCH = {}


def _net(name, backend, dtype):
    key = (name, backend, np.dtype(dtype))
    if key not in _NETS:
        _NETS[key] = Network(name, backend=backend, dtype=dtype)
    return _NETS[key]


def _torch(name, dtype):
    key = (name, np.dtype(dtype))
    if key not in _TORCH:
        m = SCRIPT.torch_network(name, random_weights(name))
        _TORCH[key] = m.double() if np.dtype(dtype) == np.float64 else m
    return _TORCH[key]


def _reference(name, x):
    with torch.inference_mode():
        return _torch(name, x.dtype)(torch.from_numpy(x)).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", ["numba", "cython"])
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_matches_torch(name, backend, dtype):
    x = np.random.default_rng(3).standard_normal((1, 3, 32, 32)).astype(dtype)
    keep = x.copy()
    y = _net(name, backend, dtype)(x)
    assert y.dtype == dtype and y.shape == (1, 1000)
    np.testing.assert_array_equal(x, keep)  # the input is never modified
    ref = _reference(name, x)
    # 50+ layers of float32 rounding (fastconv's folded BN vs torch's unfused one): the table's
    # rtol holds for the whole network, and the spread is a real signal (not all zeros).
    assert np.std(ref) > 1e-3
    assert_close(y, ref, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", ["numba", "cython"])
def test_mobilenetv2_both_backends_and_dtypes(backend, dtype):
    """The default tier's share of the slow matrix above: the cheapest network, both ways."""
    x = np.random.default_rng(5).standard_normal((1, 3, 32, 32)).astype(dtype)
    y = _net("mobilenetv2", backend, dtype)(x)
    assert y.dtype == dtype
    assert_close(y, _reference("mobilenetv2", x), dtype)


@settings(max_examples=4, deadline=None)
@given(
    name=st.sampled_from(sorted(NETWORKS)),
    n=st.integers(1, 2),
    h=st.integers(20, 48),
    w=st.integers(20, 48),
)
def test_shapes_match_torch(name, n, h, w):
    x = np.random.default_rng(h * 100 + w).standard_normal((n, 3, h, w)).astype(np.float32)
    assert_close(_net(name, "auto", np.float32)(x), _reference(name, x), np.float32)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_nonfinite_like_torch(name):
    x = np.random.default_rng(4).standard_normal((2, 3, 32, 32)).astype(np.float32)
    x[0, 1, 5, 7] = np.nan
    x[1, 0, 20, 3] = np.inf
    x[1, 2, 2, 30] = -np.inf
    y = _net(name, "auto", np.float32)(x)
    ref = _reference(name, x)
    assert not np.isfinite(ref).all()  # the non-finite values reached the logits
    assert_close(y, ref, np.float32)


def test_features_shape_and_trace():
    net = Network("resnet50")
    net.trace = []
    f = net.features(np.zeros((1, 3, 64, 64), dtype=np.float32))
    assert f.shape == (1, 2048, 2, 2)
    assert len(net.trace) == 53  # stem + 16 bottlenecks x 3 + 4 downsamples
    with pytest.raises(TypeError, match="dtype"):
        Network("mobilenetv2", dtype=np.int32)


# --- the busy-machine thread budget (fastconv._threads.budget, used by conv2d's plan) ---


def test_budget_caps_threads_when_other_processes_hold_the_cpus(monkeypatch):
    from fastconv import _plan, _threads

    monkeypatch.setattr(_threads, "_available_cpus", lambda: 2)
    monkeypatch.setattr(_threads, "_others_running", lambda: 1)
    monkeypatch.setattr(_threads, "_sample", (-1.0, 0))
    monkeypatch.setattr(_threads, "_last_seen", 1)  # seen in the reading before too
    monkeypatch.setattr(_threads, "dynamic", True)
    x = np.random.default_rng(0).standard_normal((4, 64, 56, 56)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((64, 64, 3, 3)).astype(np.float32)
    with fastconv.threads(2):
        assert _threads.get_num_threads() == 2  # the user's setting is untouched
        assert _threads.budget() == 1
        _plan.clear_cache()
        y = fastconv.conv2d(x, w, padding=1)
        plans = [v[0] for k, v in _plan._PLAN_CACHE.items() if k[0] == "conv2d"]
        assert plans and all(p.nthreads == 1 for p in plans)
    with torch.inference_mode():
        ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1)
    assert_close(y, ref.numpy(), np.float32, scale=tolerance.transform_scale(x, w))
    monkeypatch.setattr(_threads, "_others_running", lambda: 0)
    monkeypatch.setattr(_threads, "_sample", (-1.0, 0))
    with fastconv.threads(2):
        assert _threads.budget() == 2
    monkeypatch.setattr(_threads, "_others_running", lambda: 5)
    monkeypatch.setattr(_threads, "_sample", (-1.0, 0))
    monkeypatch.setattr(_threads, "dynamic", False)
    with fastconv.threads(2):
        assert _threads.budget() == 2  # FASTCONV_DYNAMIC_THREADS=0


def test_budget_ignores_a_task_seen_in_one_reading_only(monkeypatch):
    """A cap needs other runnable tasks in two /proc readings in a row (50 ms apart): one reading
    also sees kernel threads that run for microseconds."""
    from fastconv import _threads

    readings = iter([0, 1, 0, 1, 1, 1])
    monkeypatch.setattr(_threads, "_available_cpus", lambda: 2)
    monkeypatch.setattr(_threads, "_others_running", lambda: next(readings))
    monkeypatch.setattr(_threads, "_last_seen", 0)
    monkeypatch.setattr(_threads, "dynamic", True)
    got = []
    with fastconv.threads(2):
        for _ in range(6):
            monkeypatch.setattr(_threads, "_sample", (-1.0, 0))  # a new reading each call
            got.append(_threads.budget())
    assert got == [2, 2, 2, 2, 1, 1]


def test_others_running_sees_a_busy_process():
    import subprocess
    import sys
    import time

    from fastconv import _threads

    base = _threads._others_running()
    assert base >= 0
    p = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        seen = max(_threads._others_running() for _ in range(5))
    finally:
        p.terminate()
        p.wait()
    assert seen >= 1


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 2),
    c=st.integers(1, 5),
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    window=st.sampled_from([(3, 2, 1), (2, 2, 0), (3, 1, 1), (5, 3, 2)]),
    dtype=st.sampled_from([np.float32, np.float64]),
    nonfinite=st.booleans(),
    nthreads=st.integers(1, 2),
    seed=st.integers(0, 2**16),
)
@pytest.mark.parametrize("backend", ["numba", "cython"])
def test_max_pool2d_kernels_match_torch(
    backend, n, c, h, w, window, dtype, nonfinite, nthreads, seed
):
    """The max-pool kernel twins (3x3 stride 2 padding 1, ResNet's stem pool, is the vector path;
    other windows the scalar loop) against torch's max_pool2d: padding never wins, NaN
    propagates, -inf and inf stay."""
    from fastconv import _plan

    if backend == "cython" and not _plan.cython_available("conv"):
        pytest.skip("the Cython conv extension is not built")
    k, s, p = window
    if h + 2 * p < k or w + 2 * p < k:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    if nonfinite:
        for v in (np.nan, np.inf, -np.inf):
            x.flat[rng.integers(x.size)] = v
    ref = torch.nn.functional.max_pool2d(torch.from_numpy(x), k, s, p).numpy()
    mod = _plan.kernels(backend)
    out = np.zeros(ref.shape, dtype)
    ws = np.empty((nthreads, mod.max_pool2d_workspace(ref.shape[3])), dtype)
    mod.max_pool2d(x, out, k, k, s, s, p, p, ws, nthreads)
    np.testing.assert_array_equal(out, ref)


def test_resnet_stem_pool_is_the_kernel_and_numpys_alike():
    """_maxpool3s2 through the compiled kernel and through NumPy's strided maxima agree (NaN
    included); the network calls the first on the Cython backend."""
    from fastconv._networks import _maxpool3s2

    x = np.random.default_rng(6).standard_normal((2, 8, 23, 18)).astype(np.float32)
    x[0, 1, 4, 4] = np.nan
    x[1, 7, 22, 17] = np.inf
    want = torch.nn.functional.max_pool2d(torch.from_numpy(x), 3, 2, 1).numpy()
    np.testing.assert_array_equal(_maxpool3s2(x, "numba"), want)
    from fastconv import _plan

    if _plan.cython_available("conv"):
        np.testing.assert_array_equal(_maxpool3s2(x, "cython"), want)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 9),
    h=st.integers(1, 30),
    w=st.integers(1, 30),
    dtype=st.sampled_from([np.float32, np.float64]),
    nonfinite=st.booleans(),
    nthreads=st.integers(1, 2),
    seed=st.integers(0, 2**16),
)
@pytest.mark.parametrize("backend", ["numba", "cython"])
def test_plane_means_and_scale_planes_kernels(
    backend, n, c, h, w, dtype, nonfinite, nthreads, seed
):
    """The squeeze-excitation glue's kernel twins: plane_means against a float64 NumPy mean
    (NaN and inf propagate), scale_planes against NumPy's broadcast multiply (bit for bit)."""
    from fastconv import _plan

    if backend == "cython" and not _plan.cython_available("conv"):
        pytest.skip("the Cython conv extension is not built")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    if nonfinite:
        for v in (np.nan, np.inf, -np.inf):
            x.flat[rng.integers(x.size)] = v
    mod = _plan.kernels(backend)
    got = np.empty((n, c), dtype)
    mod.plane_means(x, got, nthreads)
    with np.errstate(invalid="ignore"):
        want = x.astype(np.float64).mean(axis=(2, 3))
    assert_close(got, want, dtype)
    s = rng.standard_normal((n, c)).astype(dtype)
    y = x.copy()
    mod.scale_planes(y, s, nthreads)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(y, x * s[:, :, None, None])
