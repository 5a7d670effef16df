"""conv2d's fused epilogue (activation, residual) and fixed-weight panels (_plan.keep_packed).

The reference is independent of the epilogue kernels: the float64 direct convolution, then the
residual added and the activation applied with NumPy (np.maximum and np.clip propagate NaN, as
torch's relu and relu6 do).
"""

import gc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tolerance import assert_close

import fastconv
from fastconv import _plan, _reference

BACKENDS = ["cython", "numba"]


def _act(y, activation):
    if activation == "relu":
        return np.maximum(y, 0)
    if activation == "relu6":
        return np.clip(y, 0, 6)
    if activation == "silu":
        with np.errstate(over="ignore", invalid="ignore"):
            return y / (1 + np.exp(-y))
    return y


def _expected(x, w, b, residual, activation, **kw):
    y = _reference.conv2d(x.astype(np.float64), w.astype(np.float64), b, **kw)
    if residual is not None:
        y = y + residual.astype(np.float64)
    return _act(y, activation)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 2),
    c=st.integers(1, 12),
    k=st.integers(1, 20),
    hw=st.integers(3, 17),
    ks=st.sampled_from([1, 3]),
    stride=st.integers(1, 2),
    activation=st.sampled_from([None, "relu", "relu6", "silu"]),
    with_residual=st.booleans(),
    dtype=st.sampled_from([np.float32, np.float64]),
    backend=st.sampled_from(BACKENDS),
    seed=st.integers(0, 2**16),
)
def test_matches_conv_then_add_then_activation(
    n, c, k, hw, ks, stride, activation, with_residual, dtype, backend, seed
):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, hw, hw)).astype(dtype)
    w = rng.standard_normal((k, c, ks, ks)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    ho = (hw + 2 * (ks // 2) - ks) // stride + 1
    r = None
    if with_residual:
        r = (4 * rng.standard_normal((n, k, ho, ho))).astype(dtype)
        r.flat[rng.integers(r.size)] = np.nan
        r.flat[rng.integers(r.size)] = np.inf
        r.flat[rng.integers(r.size)] = -np.inf
    r_before = None if r is None else r.copy()
    got = fastconv.conv2d(
        x, w, b, stride, ks // 2, activation=activation, residual=r, backend=backend
    )
    ref = _expected(x, w, b, r, activation, stride=stride, padding=ks // 2)
    assert got.dtype == dtype
    assert_close(got, ref, dtype)
    if r is not None:
        np.testing.assert_array_equal(r, r_before)  # the residual is only read


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_algorithm_applies_it(backend):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 16, 12, 12)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    r = rng.standard_normal((2, 16, 12, 12)).astype(np.float32)
    names = fastconv.algorithms(x.shape, w.shape, dtype=np.float32, backend=backend, padding=1)
    assert len(names) >= 2
    ref = _expected(x, w, None, r, "relu6", padding=1)
    for name in names:
        got = fastconv.conv2d(
            x, w, padding=1, activation="relu6", residual=r, backend=backend, algorithm=name
        )
        assert_close(got, ref, np.float32, scale=np.abs(ref).max() * 10)


def test_nan_from_the_convolution_survives_relu():
    x = np.ones((1, 2, 5, 5), dtype=np.float32)
    x[0, 0, 2, 2] = np.nan
    w = np.ones((3, 2, 3, 3), dtype=np.float32)
    got = fastconv.conv2d(x, -w, padding=1, activation="relu")
    ref = _expected(x, -w, None, None, "relu", padding=1)
    assert np.isnan(got).sum() == 27  # 3 channels x the 3x3 neighbourhood
    assert_close(got, ref, np.float32)


def test_residual_may_be_out():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    y = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    ref = _expected(x, w, None, y, "relu", padding=1)
    got = fastconv.conv2d(x, w, padding=1, out=y, residual=y, activation="relu")
    assert got is y
    assert_close(y, ref, np.float32)


def test_unbatched_and_integer_residual():
    x = np.arange(2 * 5 * 5, dtype=np.float64).reshape(2, 5, 5)
    w = np.ones((3, 2, 3, 3))
    r = np.full((3, 3, 3), -100, dtype=np.int64)
    got = fastconv.conv2d(x, w, residual=r, activation="relu")
    assert got.shape == (3, 3, 3)
    assert_close(got, _expected(x[None], w, None, r[None], "relu")[0], np.float64)


@pytest.mark.parametrize(
    "kwargs, exc, word",
    [
        (dict(activation="gelu"), ValueError, "activation"),
        (dict(activation="SiLU"), ValueError, "activation"),
        (dict(activation=1), TypeError, "activation"),
        (dict(residual=np.zeros((1, 4, 5, 5))), ValueError, "residual"),
        (dict(residual=np.zeros((1, 4, 6, 6), dtype=complex)), TypeError, "residual"),
    ],
)
def test_bad_epilogue_arguments_are_refused_before_anything_runs(kwargs, exc, word):
    x = np.ones((1, 2, 6, 6), dtype=np.float32)
    w = np.ones((4, 2, 3, 3), dtype=np.float32)
    out = np.full((1, 4, 6, 6), 7.0, dtype=np.float32)
    with pytest.raises(exc, match=word):
        fastconv.conv2d(x, w, padding=1, out=out, **kwargs)
    assert (out == 7.0).all()


# ------------------------------------------------------------------ fixed weights (keep_packed)

FIXED_LAYERS = [
    # x shape, K, kernel, stride, padding, dilation, groups: pixel-lane, implicit and
    # K-lanes modes (K-lanes keeps its own transposed panels)
    ((1, 64, 14, 14), 384, 1, 1, 0, 1, 1),
    ((2, 32, 9, 11), 40, 3, 1, 1, 1, 1),
    ((1, 16, 20, 23), 24, 3, 1, 2, 2, 1),
    ((2, 64, 16, 16), 64, 3, 1, 1, 1, 32),
    ((2, 64, 56, 56), 64, 3, 1, 1, 1, 1),
    ((1, 96, 7, 7), 128, 3, 1, 1, 1, 1),  # K-lanes: 3x3, R > KC
    ((1, 300, 7, 7), 100, 1, 1, 0, 1, 1),  # K-lanes: R > KC, a partial channel block
    ((2, 64, 14, 14), 100, 3, 2, 1, 1, 1),  # K-lanes, strided, across samples
]


@pytest.mark.parametrize("layer", FIXED_LAYERS)
@pytest.mark.parametrize("nthreads", [1, 2])
def test_fixed_weights_give_the_same_result(layer, nthreads):
    shape, k, ks, s, p, d, g = layer
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((k, shape[1] // g, ks, ks)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    wf = _plan.keep_packed(w.copy())
    with fastconv.threads(nthreads):
        plain = fastconv.conv2d(x, w, b, s, p, d, g, algorithm="packed")
        first = fastconv.conv2d(x, wf, b, s, p, d, g, algorithm="packed")
        again = fastconv.conv2d(x, wf, b, s, p, d, g, algorithm="packed")
    np.testing.assert_array_equal(first, plain)
    np.testing.assert_array_equal(again, plain)
    assert len(_plan._FIXED[id(wf)][1]) == 1  # the panels were kept (every mode keeps them)
    assert_close(plain, _reference.conv2d(x, w, b, s, p, d, g), np.float32)


WINOGRAD_FIXED = [
    # x shape, K, padding, dilation, groups (dilation 2: the phases share the kept transform;
    # 160 -> 160: a 1.6 MB transform, beyond WINOGRAD_KEEP_BYTES, made per call)
    ((2, 32, 12, 12), 48, 1, 1, 1),
    ((1, 32, 20, 18), 32, 2, 2, 1),
    ((2, 64, 10, 10), 64, 1, 1, 2),
    ((1, 160, 10, 10), 160, 1, 1, 1),
]


@pytest.mark.parametrize("layer", WINOGRAD_FIXED)
@pytest.mark.parametrize("nthreads", [1, 2])
def test_fixed_weights_keep_their_winograd_transform(layer, nthreads):
    """Winograd on fixed weights transforms them once (kept beside them, _plan._fixed_transform)
    and gives the same bits as transforming per call; NaN and inf in x still land where direct
    summation puts them (the exact recomputation runs as without kept weights)."""
    shape, k, p, d, g = layer
    dtype = np.float32  # the compiled Winograd kernel's dtype
    rng = np.random.default_rng(12)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((k, shape[1] // g, 3, 3)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    wf = _plan.keep_packed(w.copy())
    kept = (
        _plan.kernels(_plan.resolve_backend("auto"), "winograd").winograd_prepack_size(
            np.ones(16, np.int64)
        )
        > 0
        and 16 * k * (shape[1] // g) * 4 <= _plan.WINOGRAD_KEEP_BYTES
    )
    with fastconv.threads(nthreads):
        plain = fastconv.conv2d(x, w, b, 1, p, d, g, algorithm="winograd")
        first = fastconv.conv2d(x, wf, b, 1, p, d, g, algorithm="winograd")
        again = fastconv.conv2d(x, wf, b, 1, p, d, g, algorithm="winograd")
    np.testing.assert_array_equal(first, plain)
    np.testing.assert_array_equal(again, plain)
    store = _plan._FIXED[id(wf)][1]
    assert sum(key[0] == "winograd" for key in store) == (1 if kept else 0)
    assert_close(plain, _reference.conv2d(x, w, b, 1, p, d, g), dtype, scale=None)
    xn = x.copy()
    xn[0, 1, 3, 4] = np.inf
    xn[-1, 0, 0, 0] = np.nan
    with fastconv.threads(nthreads):
        got = fastconv.conv2d(xn, wf, b, 1, p, d, g)
    assert_close(got, _reference.conv2d(xn, w, b, 1, p, d, g), dtype)


def test_views_of_fixed_weights_keep_their_own_panels():
    """Two same-shape views of one kept array at different offsets are different weights: each
    gets its own panels (kept by where its data starts), and the whole array its own."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 8, 9, 9)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    wf = _plan.keep_packed(w.copy())
    for _ in range(2):  # the second round reads the kept panels
        for view, ref_w in ((wf[:8], w[:8]), (wf[8:], w[8:]), (wf, w)):
            got = fastconv.conv2d(x, view, padding=1, algorithm="packed")
            assert_close(got, _reference.conv2d(x, ref_w, None, 1, 1, 1, 1), np.float32)
    assert len(_plan._FIXED[id(wf)][1]) == 3


def test_fixed_weights_with_inf_and_nan_over_the_padding():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 8, 6, 6)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    w[0, 0, 0, 0] = np.inf  # over the padding for the first row and column
    w[5, 3, 2, 2] = np.nan
    got = fastconv.conv2d(x, _plan.keep_packed(w.copy()), padding=1, algorithm="packed")
    assert_close(got, _reference.conv2d(x, w, None, 1, 1, 1, 1), np.float32)
    # the same in K-lanes mode (few pixels)
    x = rng.standard_normal((1, 64, 5, 5)).astype(np.float32)
    w = rng.standard_normal((128, 64, 3, 3)).astype(np.float32)
    w[0, 0, 0, 0] = np.inf
    w[70, 3, 2, 2] = np.nan
    wf = _plan.keep_packed(w.copy())
    got = fastconv.conv2d(x, wf, padding=1, algorithm="packed")
    assert_close(got, _reference.conv2d(x, w, None, 1, 1, 1, 1), np.float32)


def test_fixed_weights_are_read_only_and_forgotten_with_the_array():
    w = _plan.keep_packed(np.ones((16, 8, 3, 3), dtype=np.float32))
    with pytest.raises(ValueError):
        w[0, 0, 0, 0] = 2.0
    x = np.ones((1, 8, 10, 10), dtype=np.float32)
    fastconv.conv2d(x, w, padding=1, algorithm="packed")
    key = id(w)
    assert key in _plan._FIXED
    del w
    gc.collect()
    assert key not in _plan._FIXED


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_silu_over_the_whole_float_range(backend, dtype):
    # the Cython float32 path has its own exp: check it across the exponent range and at the
    # edges where exp(-x) overflows or underflows, and its non-finite results
    v = np.concatenate(
        [
            np.linspace(-100, 100, 20001),
            [-1e30, -88.5, -87.5, -1e-30, 0.0, -0.0, 1e-30, 87.5, 88.5, 1e30],
            [np.inf, -np.inf, np.nan],
        ]
    ).astype(dtype)
    x = v.reshape(1, 1, 1, -1)
    w = np.ones((1, 1, 1, 1), dtype=dtype)
    got = fastconv.conv2d(x, w, activation="silu", backend=backend).ravel()
    with np.errstate(over="ignore", invalid="ignore"):
        ref = v.astype(np.float64) / (1 + np.exp(-v.astype(np.float64)))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    fin = np.isfinite(ref)
    np.testing.assert_array_equal(got[~fin & ~np.isnan(ref)], ref[~fin & ~np.isnan(ref)])
    # (float32 exp(-x) overflows for x < -88.72, where the float64 result is still ~1e-37)
    tiny = np.finfo(dtype).tiny
    np.testing.assert_allclose(got[fin], ref[fin], rtol=4 * np.finfo(dtype).eps, atol=32 * tiny)


def test_conv2d_layer_keeps_its_panels_and_takes_the_epilogue():
    rng = np.random.default_rng(8)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    layer = fastconv.Conv2d(w, b, padding=1)
    assert id(layer.weight) in _plan._FIXED
    x = rng.standard_normal((2, 16, 12, 12)).astype(np.float32)
    r = rng.standard_normal((2, 32, 12, 12)).astype(np.float32)
    ref = _expected(x, w, b, r, "relu6", padding=1)
    for _ in range(2):  # the second call reads the kept panels
        assert_close(layer(x, activation="relu6", residual=r), ref, np.float32)


def test_the_fixed_layers_cover_every_packed_mode():
    from fastconv._geometry import geometry_from_shapes

    if not (_plan.cython_available("packed") and _plan.cpu_level() == "v4"):
        pytest.skip("the implicit and K-lanes modes are AVX-512 only")

    mod = _plan.kernels("cython", "packed")
    modes = set()
    for shape, k, ks, s, p, d, g in FIXED_LAYERS:
        geo = geometry_from_shapes(shape, (k, shape[1] // g, ks, ks), s, p, d, g).as_array()
        modes.add(
            "klanes"
            if mod.packed_klanes(geo)
            else "implicit"
            if mod.packed_implicit(geo)
            else "stripes"
        )
    assert modes == {"klanes", "implicit", "stripes"}


@pytest.mark.parametrize("layer", FIXED_LAYERS)
@pytest.mark.parametrize("fixed", [False, True])
@pytest.mark.parametrize("nonfinite", [False, True])
@pytest.mark.parametrize(
    "activation, with_residual",
    [("relu", True), ("silu", True), ("relu", False), ("relu6", False), ("silu", False)],
)
def test_packed_modes_with_the_epilogue(layer, fixed, nonfinite, activation, with_residual):
    # every packed mode (pixel-lane, implicit, K-lanes), with weight panels packed per call or
    # kept; inf/NaN weights over the padding make the kernel recompute the border, and the
    # epilogue must see the recomputed values, applied exactly once.  Without a residual the
    # implicit mode applies the activation in its registers before the store, the pixel-lane
    # mode after each stripe, K-lanes in its transposing store; NaN in x must stay NaN
    shape, k, ks, s, p, d, g = layer
    rng = np.random.default_rng(13)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((k, shape[1] // g, ks, ks)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    if nonfinite:
        w[0, 0, 0, 0] = np.inf
        w[k // 2, 0, ks - 1, ks - 1] = np.nan
    else:
        x[0, 0, shape[2] // 2, shape[3] // 2] = np.nan
    ho = (shape[2] + 2 * p - d * (ks - 1) - 1) // s + 1
    wo = (shape[3] + 2 * p - d * (ks - 1) - 1) // s + 1
    r = rng.standard_normal((shape[0], k, ho, wo)).astype(np.float32) if with_residual else None
    wk = _plan.keep_packed(w.copy()) if fixed else w
    ref = _expected(x, w, b, r, activation, stride=s, padding=p, dilation=d, groups=g)
    for _ in range(2):
        got = fastconv.conv2d(
            x,
            wk,
            b,
            s,
            p,
            d,
            g,
            activation=activation,
            residual=r,
            backend="cython",
            algorithm="packed",
        )
        assert_close(got, ref, np.float32)


def test_keep_packed_refuses_a_view_and_numba_packs_per_call():
    base = np.ones((8, 16, 3, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="owns its data"):
        _plan.keep_packed(base[:4])
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 16, 10, 10)).astype(np.float32)
    w = rng.standard_normal((8, 16, 3, 3)).astype(np.float32)
    wf = _plan.keep_packed(w.copy())
    got = fastconv.conv2d(x, wf, padding=1, backend="numba", algorithm="packed")
    assert _plan._FIXED[id(wf)][1] == {}  # the Numba twin keeps no panels
    assert_close(got, _reference.conv2d(x, w, None, 1, 1, 1, 1), np.float32)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 3),
    c=st.integers(1, 40),
    k=st.sampled_from([8, 20, 64, 70, 100, 136]),  # K-lanes from 64 channels on small planes
    hw=st.integers(2, 30),
    ks=st.sampled_from([1, 3]),
    stride=st.integers(1, 2),
    activation=st.sampled_from([None, "relu", "relu6", "silu"]),
    with_residual=st.booleans(),
    nthreads=st.integers(1, 2),
    fixed=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_packed_tasks_apply_the_epilogue_as_the_pass_after(
    n, c, k, hw, ks, stride, activation, with_residual, nthreads, fixed, seed
):
    """The packed kernel applies the epilogue task by task (pixel-lane stripes, stripes crossing
    samples, output-channel splits, K-lanes tiles in their transposing store): every output
    exactly once, equal to the convolution followed by the separate pass; NaN and inf in the
    residual land as NumPy's add and compare-and-select put them."""
    if activation is None and not with_residual:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    w = rng.standard_normal((k, c, ks, ks)).astype(np.float32)
    b = rng.standard_normal(k).astype(np.float32)
    ho = (hw + 2 * (ks // 2) - ks) // stride + 1
    r = None
    if with_residual:
        r = (4 * rng.standard_normal((n, k, ho, ho))).astype(np.float32)
        for v in (np.nan, np.inf, -np.inf):
            r.flat[rng.integers(r.size)] = v
    wk = _plan.keep_packed(w.copy()) if fixed else w
    kw = dict(stride=stride, padding=ks // 2, backend="cython", algorithm="packed")
    with fastconv.threads(nthreads):
        plain = fastconv.conv2d(x, wk, b, **kw)
        got = fastconv.conv2d(x, wk, b, activation=activation, residual=r, **kw)
    want = plain if r is None else plain + r
    with np.errstate(invalid="ignore"):
        if activation == "relu":
            want = np.where(want < 0, np.float32(0), want)
        elif activation == "relu6":
            want = np.where(want < 0, np.float32(0), want)
            want = np.where(want > 6, np.float32(6), want)
    if activation == "silu":
        assert_close(got, _act(want.astype(np.float64), "silu"), np.float32)
    else:
        np.testing.assert_array_equal(got, want)
