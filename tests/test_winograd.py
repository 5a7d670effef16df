"""The Winograd F(2x2, 3x3) algorithm against the float64 reference: shapes, padding, groups,
per-sample weights, the portable C path, and the planner's choice."""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerance import assert_close

import fastconv
from conftest import BACKENDS
from fastconv import _reference as ref
from fastconv._geometry import conv_geometry
from fastconv._plan import _winograd_phase_classes, kernels, plan_conv2d, winograd_plan
from fastconv.conv import run_conv


def _have(backend):
    try:
        kernels(backend, "winograd")
    except ImportError:
        return False
    return True


WG_BACKENDS = [b for b in BACKENDS if _have(b)]
pytestmark = pytest.mark.skipif(not WG_BACKENDS, reason="no Winograd kernel built")


def _run(backend, x, w, b, padding, groups, per_sample, nthreads=2):
    """Winograd forced through run_conv; w is (Nw, K, Cg, 3, 3), b (Nw, K) or None."""
    x4, _, _, g = conv_geometry(x, w[0], None if b is None else b[0], 1, padding, 1, groups)
    plan = winograd_plan(g, backend, nthreads, g.N if per_sample else 1)
    w3 = np.ascontiguousarray(w.reshape(w.shape[0], g.K, -1), dtype=g.dtype)
    b2 = None if b is None else np.ascontiguousarray(b, dtype=g.dtype)
    return run_conv(plan, x4, w3, b2, g)


def _expected(x, w, b, padding, groups):
    return np.concatenate(
        [
            ref.conv2d(
                x[n : n + 1],
                w[n if w.shape[0] > 1 else 0],
                None if b is None else b[n if b.shape[0] > 1 else 0],
                padding=padding,
                groups=groups,
            )
            for n in range(x.shape[0])
        ]
    )


@settings(max_examples=40, deadline=None)
@given(
    N=st.integers(1, 3),
    Cg=st.sampled_from([1, 3, 8, 17]),
    Kg=st.sampled_from([1, 5, 8, 16]),
    groups=st.sampled_from([1, 2]),
    H=st.integers(1, 21),
    W=st.integers(1, 40),
    padding=st.sampled_from([0, 1, 2, (0, 1), (2, 0), "same"]),
    bias=st.booleans(),
    per_sample=st.booleans(),
    dt=st.sampled_from([np.float32, np.float64]),
    backend=st.sampled_from(WG_BACKENDS or ["cython"]),
)
def test_winograd_matches_reference(
    N, Cg, Kg, groups, H, W, padding, bias, per_sample, dt, backend
):
    rng = np.random.default_rng(N * 1000 + H * 50 + W)
    C, K = Cg * groups, Kg * groups
    x = rng.standard_normal((N, C, H, W)).astype(dt)
    Nw = N if per_sample else 1
    w = rng.standard_normal((Nw, K, Cg, 3, 3)).astype(dt)
    b = rng.standard_normal((Nw, K)).astype(dt) if bias else None
    try:
        conv_geometry(x, w[0], None, 1, padding, 1, groups)
    except ValueError:
        return  # kernel larger than the padded input: conv2d's error, tested elsewhere
    x0, w0 = x.copy(), w.copy()
    got = _run(backend, x, w, b, padding, groups, per_sample)
    assert got.dtype == dt
    assert_close(got, _expected(x, w, b, padding, groups), dt)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)


@pytest.mark.slow
@pytest.mark.parametrize("backend", WG_BACKENDS)
@pytest.mark.parametrize(
    "shape",
    [(4, 64, 14, 14, 64), (2, 256, 7, 7, 256), (3, 40, 9, 33, 24), (1, 300, 6, 6, 72)],
)
def test_winograd_layer_shapes(backend, shape):
    """Blocks crossing samples and tile rows, partial last blocks, several m-block parts."""
    N, C, H, W, K = shape
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((1, K, C, 3, 3), dtype=np.float32)
    b = rng.standard_normal((1, K), dtype=np.float32)
    expected = _expected(x, w, b, 1, 1)
    for nt in (1, 2, 3):
        got = _run(backend, x, w, b, 1, 1, False, nthreads=nt)
        assert_close(got, expected, np.float32)


@pytest.mark.parametrize("backend", WG_BACKENDS)
def test_winograd_ignores_stale_workspace(backend):
    """The kernel must not read scratch it did not write: a NaN-filled workspace changes nothing."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 24, 11, 13), dtype=np.float32)
    w = rng.standard_normal((32, 24, 3, 3), dtype=np.float32)
    x4, w4, _, g = conv_geometry(x, w, None, 1, 1, 1, 1)
    mod = kernels(backend, "winograd")
    geo = g.as_array()
    ws = np.full(mod.winograd_workspace_size(geo, 1, 2), np.nan, np.float32)
    out = np.full((3, 32, 11, 13), np.nan, np.float32)
    bias = np.zeros((1, 1), np.float32)
    mod.conv_winograd(x4, w4.reshape(1, 32, -1), bias, False, geo, out, ws, 2)
    assert_close(out, ref.conv2d(x, w, padding=1), np.float32)


@pytest.mark.parametrize("path", ["avx2", "portable"])
def test_winograd_paths_without_avx512(path):
    """The AVX2 twin (CPUs with AVX2 and FMA, no AVX-512) and the portable C twin (neither) give
    the same results; the inf lands on the last pixel, a tile's edge."""
    if "cython" not in WG_BACKENDS:
        pytest.skip("Cython Winograd kernel not built")
    feats = getattr(np._core._multiarray_umath, "__cpu_features__", {})
    if path == "avx2" and not (feats.get("AVX2") and feats.get("FMA3")):
        pytest.skip("this CPU has no AVX2/FMA")
    env = dict(os.environ, FASTCONV_NO_AVX512="1")
    env.pop("FASTCONV_NO_AVX2", None)
    if path == "portable":
        env["FASTCONV_NO_AVX2"] = "1"
    script = (
        "import numpy as np\n"
        "from fastconv import _reference as ref\n"
        "from fastconv._ext import winograd as wk\n"
        "from fastconv._geometry import conv_geometry\n"
        f"assert wk.winograd_supported('f') == {path == 'avx2'}\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.standard_normal((2, 48, 15, 22), dtype=np.float32)\n"
        "w = rng.standard_normal((2, 40, 48, 3, 3), dtype=np.float32)\n"
        "b = rng.standard_normal((2, 40), dtype=np.float32)\n"
        "x4, _, _, g = conv_geometry(x, w[0], None, 1, 1, 1, 1)\n"
        "geo = g.as_array()\n"
        "ws = np.full(wk.winograd_workspace_size(geo, 2, 2), np.nan, np.float32)\n"
        "out = np.empty((2, 40, 15, 22), np.float32)\n"
        "assert wk.conv_winograd(x4, w.reshape(2, 40, -1), b, True, geo, out, ws, 2) is False\n"
        "exp = np.concatenate([ref.conv2d(x[n:n+1], w[n], b[n], padding=1) for n in range(2)])\n"
        "err = np.abs(out - exp).max() / np.abs(exp).max()\n"
        "assert err < 1e-5, err\n"
        "x4[1, 7, 14, 21] = np.inf  # the last pixel: a tile's edge, a masked store\n"
        "assert wk.conv_winograd(x4, w.reshape(2, 40, -1), b, True, geo, out, ws, 2) is True\n"
        "print('ok')\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


@settings(max_examples=30, deadline=None)
@given(
    N=st.integers(1, 2),
    C=st.sampled_from([8, 32]),
    K=st.sampled_from([8, 24]),
    H=st.integers(1, 12),
    W=st.integers(1, 20),
    padding=st.integers(0, 2),
    where=st.sampled_from(["none", "x", "w", "bias", "overflow"]),
    value=st.sampled_from([np.nan, np.inf, -np.inf]),
    dtype=st.sampled_from([np.float32, np.float64]),
    nthreads=st.integers(1, 2),
    seed=st.integers(0, 2**16),
    backend=st.sampled_from(WG_BACKENDS or ["numba"]),
)
def test_winograd_reports_nonfinite_outputs(
    N, C, K, H, W, padding, where, value, dtype, nthreads, seed, backend
):
    """conv_winograd returns True exactly when some output it wrote is NaN or +-inf (computed
    while the outputs are in registers, so the caller's recompute-on-non-finite costs nothing),
    on the AVX-512 float32 path and the portable float64 one; finite overflow counts too."""
    if H + 2 * padding < 3 or W + 2 * padding < 3:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((K, C, 3, 3)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    target = {"x": x, "w": w, "bias": b}.get(where)
    if target is not None:
        target.flat[rng.integers(target.size)] = value
    if where == "overflow":
        x *= np.finfo(dtype).max / 8
    x4, _, _, g = conv_geometry(x, w, None, 1, padding, 1, 1)
    mod = kernels(backend, "winograd")
    geo = g.as_array()
    ws = np.full(mod.winograd_workspace_size(geo, 1, nthreads), np.nan, dtype)
    out = np.full(g.out_shape, 7.0, dtype)
    with np.errstate(all="ignore"):
        flag = mod.conv_winograd(
            x4, w.reshape(1, K, -1), b.reshape(1, K), True, geo, out, ws, nthreads
        )
    assert flag is (not bool(np.isfinite(out).all()))


@settings(max_examples=40, deadline=None)
@given(
    H=st.integers(1, 19),
    W=st.integers(1, 19),
    d=st.sampled_from([2, 3, (2, 1), (1, 3), (4, 2)]),
    padding=st.sampled_from([0, 1, 2, 3, (0, 4), (4, 1), "same"]),
    per_sample=st.booleans(),
    backend=st.sampled_from(WG_BACKENDS or ["cython"]),
    dt=st.sampled_from([np.float32, np.float64]),
)
def test_dilated_winograd_by_phases(H, W, d, padding, per_sample, backend, dt):
    """Dilated stride-1 layers run as undilated phases; odd sizes give phases of unequal size
    (classes of phases, the smaller ones zero-extended into a class's larger geometry)."""
    rng = np.random.default_rng(H * 31 + W)
    N, C, K = 2, 6, 5
    x = rng.standard_normal((N, C, H, W)).astype(dt)
    Nw = N if per_sample else 1
    w = rng.standard_normal((Nw, K, C, 3, 3)).astype(dt)
    b = rng.standard_normal((Nw, K)).astype(dt)
    try:
        x4, _, _, g = conv_geometry(x, w[0], b[0], 1, padding, d, 1)
    except ValueError:
        return
    plan = winograd_plan(g, backend, 2, N if per_sample else 1)
    got = run_conv(plan, x4, w.reshape(Nw, K, -1), b, g)
    exp = np.concatenate(
        [
            ref.conv2d(x[n : n + 1], w[n % Nw], b[n % Nw], padding=padding, dilation=d)
            for n in range(N)
        ]
    )
    assert_close(got, exp, dt)
    for *_, p in g.dilation_phases():  # the phases tile the output exactly
        assert p.dh == p.dw == 1 and p.pt >= 0 and p.pl >= 0
    if g.dh * g.dw > 1 and g.stacked_phases() is None:
        _check_phase_classes(g)


def _check_phase_classes(g):
    """Every output phase in exactly one class, within the class's sizes and padding."""
    exact = {(r, c): (a, b, sub) for r, a, c, b, sub in g.dilation_phases()}
    seen = []
    for cls, phases in _winograd_phase_classes(g):
        assert cls.N == g.N * len(phases) and cls.dh == cls.dw == 1
        for r, a, c, b, hx, wx, ho, wo in phases:
            ea, eb, sub = exact[(r, c)]
            assert (a, b, hx, wx, ho, wo) == (ea, eb, sub.H, sub.W, sub.Ho, sub.Wo)
            assert (cls.pt, cls.pl) == (sub.pt, sub.pl)
            assert cls.H >= hx and cls.W >= wx and cls.Ho >= ho and cls.Wo >= wo
            seen.append((r, c))
    assert sorted(seen) == sorted(exact)


@pytest.mark.parametrize("backend", WG_BACKENDS)
def test_deeplab_phase_classes(backend):
    """1x32x33x33 at dilation 4 (phases of 9 and 8): two classes, results as the reference."""
    rng = np.random.default_rng(12)
    x = rng.standard_normal((1, 32, 33, 33), dtype=np.float32)
    w = rng.standard_normal((32, 32, 3, 3), dtype=np.float32)
    x4, _, _, g = conv_geometry(x, w, None, 1, 4, 4, 1)
    classes = _winograd_phase_classes(g)
    assert sorted((c.H, c.W, len(ph)) for c, ph in classes) == [(8, 8, 9), (9, 9, 7)]
    _check_phase_classes(g)
    got = run_conv(winograd_plan(g, backend, 2, 1), x4, w.reshape(1, 32, -1), None, g)
    assert_close(got, ref.conv2d(x, w, padding=4, dilation=4), np.float32)


@pytest.mark.parametrize("backend", WG_BACKENDS)
@pytest.mark.parametrize("per_sample", [False, True])
def test_dilated_alike_phases_run_as_one_batch(backend, per_sample):
    """dil2_3x3-like layer: the four phases are alike, split, run as one batch and merged."""
    rng = np.random.default_rng(11)
    N, C, K = 2, 32, 16
    x = rng.standard_normal((N, C, 12, 14), dtype=np.float32)
    Nw = N if per_sample else 1
    w = rng.standard_normal((Nw, K, C, 3, 3), dtype=np.float32)
    b = rng.standard_normal((Nw, K), dtype=np.float32)
    x4, _, _, g = conv_geometry(x, w[0], b[0], 1, 2, 2, 1)
    st = g.stacked_phases()
    assert st is not None and st.N == 4 * N and (st.H, st.W, st.dh) == (6, 7, 1)
    got = run_conv(winograd_plan(g, backend, 2, Nw), x4, w.reshape(Nw, K, -1), b, g)
    exp = np.concatenate(
        [ref.conv2d(x[n : n + 1], w[n % Nw], b[n % Nw], padding=2, dilation=2) for n in range(N)]
    )
    assert_close(got, exp, np.float32)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_phase_split_and_merge(backend, dt):
    """The phase kernels against NumPy slicing, and merge(split(x)) == x."""
    mod = kernels(backend)
    x = np.random.default_rng(2).standard_normal((2, 3, 6, 9)).astype(dt)
    xs = np.empty((6 * 2, 3, 3, 3), dt)
    mod.phase_split(x, xs, 2, 3, 2)
    for a in range(2):
        for b in range(3):
            np.testing.assert_array_equal(
                xs[(a * 3 + b) * 2 : (a * 3 + b + 1) * 2], x[:, :, a::2, b::3]
            )
    back = np.empty_like(x)
    mod.phase_merge(xs, back, 2, 3, 2)
    np.testing.assert_array_equal(back, x)


@pytest.mark.parametrize("backend", WG_BACKENDS)
@pytest.mark.parametrize("nthreads", [1, 2, 3])
def test_classes_side_by_side_match_one_call_each(backend, nthreads):
    """conv_winograd_classes (each geometry on its own thread) against conv_winograd of each
    geometry alone, and against the reference; a NaN reported from the class holding it."""
    mod = kernels(backend, "winograd")
    rng = np.random.default_rng(21)
    C, K = 32, 24
    w = rng.standard_normal((K, C, 3, 3), dtype=np.float32)
    b = rng.standard_normal(K, dtype=np.float32)
    shapes = [(3, 9, 9, 1), (2, 8, 11, 0), (1, 13, 7, 2)]  # (N, H, W, padding)
    geos, xs, offs, xo, yo = [], [], [], 0, 0
    for i, (N, H, W, p) in enumerate(shapes):
        x = rng.standard_normal((N, C, H, W), dtype=np.float32)
        g = conv_geometry(x, w, b, 1, p, 1, 1)[-1]
        geos.append(g)
        xs.append(x)
        offs.append((xo, yo, i % nthreads))
        xo += x.size + 5  # offsets need not be aligned
        yo += N * K * g.Ho * g.Wo + 3
    xbuf = np.zeros(xo, np.float32)
    for (o, _, _), x in zip(offs, xs, strict=True):
        xbuf[o : o + x.size] = x.ravel()
    ga = np.stack([g.as_array() for g in geos])
    w3, b2 = w.reshape(1, K, -1), b.reshape(1, K)
    u = np.zeros(max(1, mod.winograd_prepack_size(ga[0])), np.float32)
    if mod.winograd_prepack_size(ga[0]):
        mod.winograd_prepack(w3, ga[0], u, 1)
    ws = np.zeros(mod.winograd_classes_workspace_size(ga, nthreads), np.float32)
    ybuf = np.full(yo, np.nan, np.float32)
    offs = np.asarray(offs, np.int64)
    assert not mod.conv_winograd_classes(xbuf, w3, b2, True, ga, offs, ybuf, ws, nthreads, u)
    for (_, o, _), g, x in zip(offs, geos, xs, strict=True):
        got = ybuf[o : o + g.N * K * g.Ho * g.Wo].reshape(g.N, K, g.Ho, g.Wo)
        one = np.empty_like(got)
        ws1 = np.zeros(mod.winograd_workspace_size(g.as_array(), 1, 1), np.float32)
        mod.conv_winograd(x, w3, b2, True, g.as_array(), one, ws1, 1)
        np.testing.assert_allclose(got, one, rtol=1e-5, atol=1e-4)
        assert_close(got, ref.conv2d(x, w, b, padding=(g.pt, g.pl)), np.float32)
    xbuf[offs[2, 0]] = np.nan
    assert mod.conv_winograd_classes(xbuf, w3, b2, True, ga, offs, ybuf, ws, nthreads, u)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_gather_and_scatter_phases_with_extents(backend, dt):
    """gather_phases zero-extends each phase to its stored size; scatter_phases writes back
    only the stored results' real extent: against NumPy slicing."""
    mod = kernels(backend, "grad")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 9, 11)).astype(dt)
    # (r, q, real rows, real columns, stored rows, stored columns), dilation (3, 4)
    spec = [(0, 0, 3, 3, 3, 3), (1, 2, 3, 2, 4, 3), (2, 3, 2, 2, 3, 3)]
    pin, off = [], 0
    for r, q, hx, wx, hs, ws in spec:
        pin.append((off, hs, ws, r, q, hx, wx))
        off += 2 * 3 * hs * ws
    buf = np.full(off, np.nan, dt)
    mod.gather_phases(x, np.asarray(pin, np.int64), 3, 4, buf, 2)
    for o, hs, ws, r, q, hx, wx in pin:
        got = buf[o : o + 2 * 3 * hs * ws].reshape(2, 3, hs, ws)
        np.testing.assert_array_equal(got[:, :, :hx, :wx], x[:, :, r::3, q::4][:, :, :hx, :wx])
        assert (got[:, :, hx:] == 0).all() and (got[:, :, :, wx:] == 0).all()
    out = np.full_like(x, 7.0)
    mod.scatter_phases(buf, np.asarray(pin, np.int64), 3, 4, out, 2)
    expect = np.full_like(x, 7.0)
    for o, hs, ws, r, q, hx, wx in pin:
        part = buf[o : o + 2 * 3 * hs * ws].reshape(2, 3, hs, ws)[:, :, :hx, :wx]
        expect[:, :, r : r + 3 * hx : 3, q : q + 4 * wx : 4] = part
    np.testing.assert_array_equal(out, expect)


@pytest.mark.parametrize("backend", WG_BACKENDS)
def test_winograd_driver_rejects_mismatched_shapes(backend):
    """Kernels trust their inputs, but the compiled driver refuses shapes that would index past
    an array (the public layer never passes them)."""
    if backend != "cython":
        pytest.skip("the Numba twin checks only its workspace")
    mod = kernels(backend, "winograd")
    x = np.zeros((2, 32, 8, 8), np.float32)
    _, _, _, g = conv_geometry(x, np.zeros((16, 32, 3, 3), np.float32), None, 1, 1, 1, 1)
    geo = g.as_array()
    ws = np.zeros(mod.winograd_workspace_size(geo, 2, 1), np.float32)
    out = np.zeros((2, 16, 8, 8), np.float32)
    w = np.zeros((2, 16, 32 * 9), np.float32)
    with pytest.raises(ValueError, match="shapes"):
        mod.conv_winograd(x, w, np.zeros((3, 16), np.float32), True, geo, out, ws, 1)
    with pytest.raises(ValueError, match="shapes"):
        mod.conv_winograd(x, np.zeros((3, 16, 288), np.float32), w[0], False, geo, out, ws, 1)
    with pytest.raises(ValueError, match="shapes"):
        mod.conv_winograd(x[:1], w, np.zeros((2, 16), np.float32), False, geo, out, ws, 1)


def test_planner_picks_winograd_where_measured():
    """A ResNet 3x3 layer takes Winograd where the kernel is fast; shapes outside its
    preconditions (stride, dilation past 4, other kernel sizes, few channels per group) are not
    offered to the planner at all.  Where in between it wins is the cost model's business
    (fastconv/_costs.py), not a copy of it here."""
    from fastconv._plan import applicable, resolve_backend

    be = resolve_backend("auto")

    def geom(N, C, H, K, k=3, s=1, d=1, groups=1):
        x = np.zeros((N, C, H, H), np.float32)
        w = np.zeros((K, C // groups, k, k), np.float32)
        return conv_geometry(x, w, None, s, d * (k // 2), d, groups)[3]

    fast = _have(be) and kernels(be, "winograd").winograd_supported("f")
    assert (plan_conv2d(geom(4, 64, 56, 64)).algorithm == "winograd") == fast
    for g in (
        geom(4, 64, 56, 64, s=2),
        geom(4, 64, 56, 64, d=5),
        geom(4, 64, 56, 64, k=5),
        geom(2, 256, 28, 256, groups=32),  # 8 channels per group
    ):
        assert "winograd" not in applicable(g, be)
        assert "winograd" not in applicable(g, be, per_sample=True)


def test_conv2d_float32_winograd_matches_torch():
    """The public call on a layer the planner sends to Winograd, against torch."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 64, 20, 20), dtype=np.float32)
    w = rng.standard_normal((64, 64, 3, 3), dtype=np.float32) * 0.1
    b = rng.standard_normal(64, dtype=np.float32)
    got = fastconv.conv2d(x, w, b, padding=1)
    exp = torch.nn.functional.conv2d(*map(torch.from_numpy, (x, w, b)), padding=1).numpy()
    assert_close(got, exp, np.float32)
