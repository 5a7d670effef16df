"""The planner's registry: every entry forced against torch / the float64 reference, the plan cache,
tuning across processes, and the thread choice."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv
from conftest import BACKENDS
from fastconv import _plan, _wisdom
from fastconv._geometry import geometry_from_shapes

torch = pytest.importorskip("torch")


def torch_conv(x, w, b, s, p, d, g):
    tb = None if b is None else torch.from_numpy(b.astype(np.float64))
    return torch.nn.functional.conv2d(
        torch.from_numpy(x.astype(np.float64)),
        torch.from_numpy(w.astype(np.float64)),
        tb,
        stride=s,
        padding=p,
        dilation=d,
        groups=g,
    ).numpy()


# Shapes that between them make every registry entry applicable on at least one backend.
LAYERS = [
    ((2, 32, 12, 12), (32, 32, 3, 3), 1, 1, 1, 1),  # packed, winograd, gemm, fft
    ((1, 32, 13, 11), (16, 32, 3, 3), 1, 4, 4, 1),  # dilated: winograd phases one by one
    ((2, 16, 12, 12), (16, 16, 3, 3), 1, 2, 2, 1),  # dilated: alike phases stacked
    ((2, 12, 9, 9), (12, 1, 3, 3), 2, 1, 1, 12),  # depthwise, strided
    ((2, 6, 9, 11), (12, 1, 1, 1), 2, 0, 1, 6),  # 1x1 depthwise, multiplier 2: one pass
    ((1, 4, 5, 6), (8, 1, 1, 1), 1, 1, 1, 4),  # 1x1 depthwise with padding: the general path
    ((2, 32, 10, 18), (32, 4, 3, 3), 1, 1, 1, 8),  # grouped
    ((2, 8, 7, 9), (8, 8, 1, 1), 1, 0, 1, 1),  # pointwise
    ((1, 3, 20, 20), (4, 3, 7, 7), 1, 3, 1, 1),  # large kernel: fft
]


def test_every_entry_is_exercised_by_the_layers_here():
    seen = set()
    for xs, ws, s, p, d, G in LAYERS:
        g = geometry_from_shapes(xs, ws, s, p, d, G)
        for be in BACKENDS:
            seen.update(_plan.applicable(g, be))
    # the grouped kernel exists only where the AVX-512 Cython build runs; winograd/packed and the
    # 16-lane depthwise kernel need a build for this CPU too (AVX-512 or AVX2+FMA)
    expected = set(_plan.ALGORITHMS) - {"grouped", "packed", "winograd"}
    if _plan.cpu_level() == "baseline":
        expected.discard("depthwise16")
    assert expected <= seen, expected - seen


@pytest.mark.parametrize("layer", LAYERS, ids=[str(lay[:2]) for lay in LAYERS])
@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["f32", "f64"])
def test_every_applicable_entry_forced_matches_torch(layer, dt, backend):
    xs, ws, s, p, d, G = layer
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(dt)
    w = rng.standard_normal(ws).astype(dt)
    b = rng.standard_normal(ws[0]).astype(dt)
    ref = torch_conv(x, w, b, s, p, d, G)
    g = geometry_from_shapes(xs, ws, s, p, d, G, dt)
    names = _plan.applicable(g, backend)
    assert "gemm" in names
    assert names == list(fastconv.algorithms(xs, ws, s, p, d, G, dt, backend=backend))
    tol = 2e-5 if dt == np.float32 else 1e-12
    for name in names:
        got = fastconv.conv2d(x, w, b, s, p, d, G, backend=backend, algorithm=name)
        assert got.dtype == dt
        err = np.abs(got - ref).max() / np.abs(ref).max()
        assert err <= tol, (name, err)


def test_forcing_an_entry_that_does_not_apply_names_it():
    x = np.ones((1, 4, 8, 8), np.float32)
    w = np.ones((4, 4, 3, 3), np.float32)
    with pytest.raises(ValueError, match="algorithm='pointwise' does not apply"):
        fastconv.conv2d(x, w, algorithm="pointwise")
    with pytest.raises(ValueError, match="algorithm must be 'auto' or one of"):
        fastconv.conv2d(x, w, algorithm="im2col")
    with pytest.raises(ValueError, match="algorithm must be 'auto' or one of"):
        fastconv.conv2d(x, w, algorithm=["packed"])


def test_listed_algorithms_fit_the_workspace_and_others_say_why():
    """algorithms() lists only entries that can be forced: an FFT whose workspace exceeds the
    bound is not listed, and forcing it says the workspace is the reason."""
    xs, ws = (42, 96, 64, 64), (32, 96, 3, 3)
    g = geometry_from_shapes(xs, ws, 1, 1, 1, 1, np.float32)
    names = fastconv.algorithms(xs, ws, padding=1)
    for name in _plan.ALGORITHMS:
        alg = _plan.ALGORITHMS[name]
        fits = alg.applies(g, "auto", False) and alg.workspace(
            g, _plan.resolve_backend("auto"), 1, 1, _plan.WORKSPACE_BYTES
        )
        assert (name in names) == bool(fits), name
    if (
        _plan.ALGORITHMS["fft"].applies(g, _plan.resolve_backend("auto"), False)
        and "fft" not in names
    ):
        with pytest.raises(
            ValueError, match="algorithm='fft' needs more than the 64 MiB workspace"
        ):
            fastconv.conv2d(
                np.zeros(xs, np.float32), np.zeros(ws, np.float32), padding=1, algorithm="fft"
            )


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 20),
    k=st.integers(1, 20),
    h=st.integers(1, 16),
    kh=st.integers(1, 5),
    s=st.integers(1, 2),
    p=st.integers(0, 2),
    d=st.integers(1, 2),
    nt=st.integers(1, 4),
)
def test_plan_is_applicable_and_within_the_thread_budget(n, c, k, h, kh, s, p, d, nt):
    try:
        g = geometry_from_shapes((n, c, h, h), (k, c, kh, kh), s, p, d, 1)
    except ValueError:
        return
    plan = _plan.plan_conv2d(g, nthreads=nt)
    assert plan.algorithm in _plan.applicable(g)
    assert 1 <= plan.nthreads <= nt
    # the plan is the cheapest by the planner's own estimates
    for name in _plan.applicable(g):
        most = _plan.ALGORITHMS[name].max_threads or nt  # pointwise: one BLAS thread only
        for t in {1, min(nt, most)}:
            if _plan.ALGORITHMS[name].workspace(g, plan.backend, t, 1, _plan.WORKSPACE_BYTES):
                assert plan.cost <= _plan.estimate(name, g, plan.backend, t) * (1 + 1e-12)


def test_small_work_runs_on_one_thread():
    g = geometry_from_shapes((1, 3, 8, 8), (4, 3, 3, 3), 1, 1, 1, 1)
    assert _plan.plan_conv2d(g, nthreads=2).nthreads == 1


def test_a_bias_and_fixed_weights_change_the_costs_they_touch():
    """The calibration grid runs without a bias and with fresh weights: the pointwise entry's
    bias is a second pass over the output (costed at its own rate for moved elements), and kept
    weight panels (keep_packed) drop the packed entry's weight-packing term."""
    g = geometry_from_shapes((1, 96, 14, 14), (576, 96, 1, 1), 1, 0, 1, 1)
    be = _plan.resolve_backend("auto")
    plain = _plan.estimate("pointwise", g, be, 1)
    with_bias = _plan.estimate("pointwise", g, be, 1, has_bias=True)
    coef = _plan._coefficients("pointwise", g, be, 1)
    assert with_bias == pytest.approx(plain + coef[2] * 2 * g.N * g.K * g.P, rel=1e-9)
    if "packed" in _plan.applicable(g, be):
        feats = _plan.ALGORITHMS["packed"].call_features(g, False, True)
        assert feats[4] == 0 and _plan.ALGORITHMS["packed"].features(g)[4] == g.K * g.R
        assert _plan.estimate("packed", g, be, 1, fixed=True) <= _plan.estimate("packed", g, be, 1)
        # the packed entry has no separate bias pass
        assert _plan.estimate("packed", g, be, 1, has_bias=True) == _plan.estimate(
            "packed", g, be, 1
        )


def test_conv2d_plans_kept_weights_apart_from_fresh_ones():
    _plan.clear_cache()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 8, 5, 5)).astype(np.float32)
    w = rng.standard_normal((4, 8, 1, 1)).astype(np.float32)
    kept = _plan.keep_packed(w.copy())
    assert _plan.is_fixed(kept) and _plan.is_fixed(kept[:, :]) and not _plan.is_fixed(w)
    a = fastconv.conv2d(x, w)
    n = len(_plan._PLAN_CACHE)
    np.testing.assert_allclose(fastconv.conv2d(x, kept), a, rtol=1e-5, atol=1e-6)
    assert len(_plan._PLAN_CACHE) == n + 1  # its own plan, planned with fixed=True
    assert any(k[-1] is True for k in _plan._PLAN_CACHE)


def test_repeated_calls_reuse_the_plan_and_tell_arguments_apart():
    _plan.clear_cache()
    x = np.random.default_rng(0).standard_normal((1, 2, 6, 6)).astype(np.float32)
    w = np.ones((2, 2, 3, 3), np.float32)
    a = fastconv.conv2d(x, w, padding=1)
    n = len(_plan._PLAN_CACHE)
    fastconv.conv2d(x, w, padding=1)
    assert len(_plan._PLAN_CACHE) == n
    # True is not a padding even though True == 1 and hash(True) == hash(1)
    with pytest.raises(TypeError):
        fastconv.conv2d(x, w, padding=True)
    # a list and a tuple are both accepted; a different padding is a different plan
    np.testing.assert_array_equal(fastconv.conv2d(x, w, padding=[1, 1]), a)
    assert fastconv.conv2d(x, w, padding=(0, 1)).shape == (1, 2, 4, 6)
    # the cache is bounded
    for i in range(_plan._PLAN_CACHE_SIZE + 10):
        fastconv.conv2d(np.ones((1, 1, 3, 3 + i), np.float32), np.ones((1, 1, 1, 1), np.float32))
    assert len(_plan._PLAN_CACHE) == _plan._PLAN_CACHE_SIZE


def test_cached_call_still_validates_dtype_and_out():
    x = np.ones((1, 2, 6, 6), np.float32)
    w = np.ones((2, 2, 3, 3), np.float32)
    fastconv.conv2d(x, w)
    with pytest.raises(ValueError, match="out must have shape"):
        fastconv.conv2d(x, w, out=np.empty((1, 2, 3, 3), np.float32))
    assert fastconv.conv2d(x.astype(np.float64), w).dtype == np.float64


def test_tune_records_the_winner_and_a_new_process_uses_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path))
    _wisdom.clear()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 16, 12, 12)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    r = fastconv.tune(x, w, padding=1, repeat=2)
    assert (r.algorithm, r.nthreads) == min(r.seconds, key=r.seconds.get)
    assert set(a for a, _ in r.seconds) == set(fastconv.algorithms(x.shape, w.shape, padding=1))
    g = geometry_from_shapes(x.shape, w.shape, 1, 1, 1, 1)
    plan = _plan.plan_conv2d(g)
    assert (plan.algorithm, plan.nthreads) == (r.algorithm, r.nthreads)
    data = json.loads((tmp_path / "wisdom.json").read_text())
    assert data["version"] == 1
    code = (
        "import fastconv; from fastconv import _plan; from fastconv._geometry import "
        "geometry_from_shapes as G; p = _plan.plan_conv2d(G((1, 16, 12, 12), (16, 16, 3, 3), 1, 1, 1, 1));"
        "print(p.algorithm, p.nthreads)"
    )
    env = dict(os.environ, FASTCONV_CACHE_DIR=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stdout.split() == [r.algorithm, str(r.nthreads)]
    _wisdom.clear()


def test_a_corrupt_wisdom_file_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTCONV_CACHE_DIR", str(tmp_path))
    (tmp_path / "wisdom.json").write_text("{not json")
    _wisdom._loaded = None
    g = geometry_from_shapes((1, 16, 12, 12), (16, 16, 3, 3), 1, 1, 1, 1)
    assert _plan.plan_conv2d(g).algorithm in _plan.applicable(g)
    x = np.ones((1, 16, 12, 12), np.float32)
    w = np.ones((16, 16, 3, 3), np.float32)
    fastconv.tune(x, w, padding=1, repeat=1)  # rewrites it whole
    assert json.loads((tmp_path / "wisdom.json").read_text())["version"] == 1
    _wisdom.clear()


def test_tune_validates_its_arguments():
    x = np.ones((1, 2, 6, 6), np.float32)
    w = np.ones((2, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="repeat"):
        fastconv.tune(x, w, repeat=0)
    with pytest.raises(ValueError, match="groups"):
        fastconv.tune(x, w, groups=3)


def test_winograd_meeting_an_inf_is_recomputed_exactly_unless_forced():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 32, 24, 24)).astype(np.float32)
    w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    x[1, 3, 5, 7] = np.inf
    w[2, 1, 0, 0] = np.nan
    if "winograd" not in fastconv.algorithms(x.shape, w.shape, padding=1):
        pytest.skip("no Winograd kernel on this build")
    ref = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1).numpy()
    _wisdom._loaded = {}
    g = geometry_from_shapes(x.shape, w.shape, 1, 1, 1, 1)
    key = _wisdom.key(g, _plan.resolve_backend("auto"), fastconv.get_num_threads(), False)
    _wisdom._loaded[key] = ["winograd", 1]  # make the planner pick it
    _plan.clear_cache()
    try:
        got = fastconv.conv2d(x, w, padding=1)
    finally:
        _wisdom._loaded = None
        _plan.clear_cache()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(ref))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(ref))
    forced = fastconv.conv2d(x, w, padding=1, algorithm="winograd")
    assert np.isnan(forced).sum() > np.isnan(ref).sum()  # its own behaviour, documented


def test_cost_tables_are_read_for_this_machine_first_then_the_nearest(monkeypatch):
    # every table in _costs.py is keyed "<level>-<vendor>" by calibrate.py (cost_key)
    from fastconv import _costs

    keys = {k[3] for k in _costs.COSTS}
    assert keys <= {f"{lv}-{v}" for lv in ("v4", "v3", "baseline") for v in ("amd", "intel")}
    monkeypatch.setattr(_plan, "_COST_LEVEL", ["v4"])
    monkeypatch.setattr(_plan, "_CPU_VENDOR", ["amd"])
    assert _plan.cost_key() == "v4-amd"
    order = _plan.cost_keys()
    assert order[:3] == ["v4-amd", "v4", "v4-intel"]
    assert order.index("v3-amd") < order.index("v3-intel") < order.index("baseline-amd")
    # a table only another vendor measured at this level is read before another level's
    fake = {
        ("packed", "cython", "f", "v4-intel"): {1: (1.0,)},
        ("packed", "cython", "f", "v3-amd"): {1: (2.0,)},
    }
    monkeypatch.setattr(_costs, "COSTS", fake)
    assert _plan.cost_table("packed", "cython", "f") == {1: (1.0,)}
    fake[("packed", "cython", "f", "v4-amd")] = {1: (3.0,)}
    assert _plan.cost_table("packed", "cython", "f") == {1: (3.0,)}
    # the numba backend falls back to cython's table; an unknown vendor reads the level alone
    assert _plan.cost_table("packed", "numba", "f") == {1: (3.0,)}
    monkeypatch.setattr(_plan, "_CPU_VENDOR", [""])
    assert _plan.cost_key() == "v4" and _plan.cost_keys()[0] == "v4"


def test_no_plan_starts_blas_threads_beside_fastconvs_own():
    """Every thread fastconv starts lives in one pool: a 1x1 layer never runs a multi-threaded
    BLAS call (OpenBLAS's spinning workers and OpenMP's took the cores from each other: 8 ms
    against 0.2 ms for a depthwise then a 1x1 conv on 2 threads)."""
    from threadpoolctl import threadpool_info

    for xs, ws in [((1, 96, 56, 56), (24, 96, 1, 1)), ((8, 512, 28, 28), (1024, 512, 1, 1))]:
        g = geometry_from_shapes(xs, ws, 1, 0, 1, 1, np.float32)
        for be in BACKENDS:
            plan = _plan.plan_conv2d(g, be, nthreads=2)
            assert plan.algorithm != "pointwise" or plan.nthreads == 1, plan
            forced = _plan.plan_conv2d(g, be, nthreads=2, algorithm="pointwise")
            assert forced.nthreads == 1
    # and the run itself holds BLAS at one thread (what threadpoolctl reports inside the call)
    seen = []
    real = np.matmul

    def spy(*a, **k):
        seen.append(max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"))
        return real(*a, **k)

    x = np.ones((1, 16, 8, 8), np.float32)
    w = np.ones((4, 16, 1, 1), np.float32)
    orig = _plan.np.matmul
    try:
        _plan.np.matmul = spy
        with fastconv.threads(2):
            fastconv.conv2d(
                x, w, algorithm="pointwise", backend="cython" if "cython" in BACKENDS else "numba"
            )
    finally:
        _plan.np.matmul = orig
    assert seen == [1]


@pytest.mark.parametrize(
    "shape, k, stride",
    [((1, 576, 14, 14), 3, 2), ((1, 1152, 7, 7), 5, 1), ((2, 96, 8, 8), 3, 1)],
)
def test_depthwise16_not_chosen_where_flat_runs(shape, k, stride):
    """Where the depthwise kernel runs its planes flat, "auto" does not pick depthwise16 (measured
    slower there, _depthwise16_dominated), and forcing it still runs it, to the same result."""
    g = geometry_from_shapes(shape, (shape[1], 1, k, k), stride, k // 2, 1, shape[1])
    if not _plan._depthwise_plane_flat(g):
        pytest.skip("the flat depthwise path needs float32 AVX-512 and the Cython build")
    assert _plan.plan_conv2d(g, "cython", 1).algorithm == "depthwise"
    assert "depthwise16" in _plan.applicable(g, "cython", False)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((shape[1], 1, k, k)).astype(np.float32)
    kw = dict(stride=stride, padding=k // 2, groups=shape[1], backend="cython")
    a = fastconv.conv2d(x, w, algorithm="depthwise16", **kw)
    ref = torch_conv(x, w, None, stride, k // 2, 1, shape[1])
    np.testing.assert_allclose(a, ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fastconv.conv2d(x, w, **kw), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape,k_out", [((1, 576, 7, 7), 160), ((8, 960, 7, 7), 320)])
def test_pointwise_not_chosen_for_kept_weights(shape, k_out):
    """With weights kept by keep_packed (their panels packed once), "auto" runs a 1x1 layer of
    more than 64 channels on packed, not on BLAS (which packs them again on every call:
    _pointwise_dominated); forcing pointwise still runs it, to the same result."""
    g = geometry_from_shapes(shape, (k_out, shape[1], 1, 1), 1, 0, 1, 1)
    if not _plan._packed_applies(g, "cython", False):
        pytest.skip("needs the Cython packed kernel")
    assert _plan.plan_conv2d(g, "cython", 1, fixed=True).algorithm != "pointwise"
    assert "pointwise" in _plan.applicable(g, "cython", False)
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape).astype(np.float32)
    w = _plan.keep_packed(rng.standard_normal((k_out, shape[1], 1, 1)).astype(np.float32))
    ref = torch_conv(x, w, None, 1, 0, 1, 1)
    forced = fastconv.conv2d(x, w, algorithm="pointwise", backend="cython")
    np.testing.assert_allclose(forced, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fastconv.conv2d(x, w, backend="cython"), ref, rtol=1e-4, atol=1e-4)
