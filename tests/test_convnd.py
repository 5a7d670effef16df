"""conv1d / conv3d against an independent float64 NumPy loop and against torch."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv
from conftest import BACKENDS
from tests.tolerance import assert_close

try:
    import torch
except ImportError:  # pragma: no cover - torch is a test extra
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed")


def reference(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """float64 N-d cross-correlation, sizes computed here, sums over in-input taps only."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    r = w.ndim - 2
    unbatched = x.ndim == r + 1
    if unbatched:
        x = x[None]
    tup = lambda v: (v,) * r if isinstance(v, int) else tuple(v)  # noqa: E731
    s, d, k = tup(stride), tup(dilation), w.shape[2:]
    if padding == "valid":
        lo = hi = (0,) * r
    elif padding == "same":
        tot = [dd * (kk - 1) for dd, kk in zip(d, k, strict=True)]
        lo, hi = tuple(t // 2 for t in tot), tuple(t - t // 2 for t in tot)
    else:
        lo = hi = tup(padding)
    N, C = x.shape[:2]
    K, Cg = w.shape[:2]
    size = x.shape[2:]
    osz = [
        (n + a + b_ - dd * (kk - 1) - 1) // ss + 1
        for n, a, b_, dd, kk, ss in zip(size, lo, hi, d, k, s, strict=True)
    ]
    out = np.zeros((N, K, *osz))
    Kg = K // groups
    for o in itertools.product(*[range(n) for n in osz]):
        for t in itertools.product(*[range(kk) for kk in k]):
            pos = [oo * ss - a + tt * dd for oo, ss, a, tt, dd in zip(o, s, lo, t, d, strict=True)]
            if any(p < 0 or p >= n for p, n in zip(pos, size, strict=True)):
                continue  # a tap on padding adds nothing (fastconv's convention)
            v = x[(slice(None), slice(None), *pos)]  # (N, C)
            for g in range(groups):
                xs = v[:, g * Cg : (g + 1) * Cg]
                ws = w[(slice(g * Kg, (g + 1) * Kg), slice(None), *t)]  # (Kg, Cg)
                with np.errstate(invalid="ignore", over="ignore"):
                    out[(slice(None), slice(g * Kg, (g + 1) * Kg), *o)] += xs @ ws.T
    if b is not None:
        out += np.asarray(b, np.float64).reshape((1, K) + (1,) * r)
    return out[0] if unbatched else out


FUNCS = {1: fastconv.conv1d, 3: fastconv.conv3d}


@st.composite
def cases(draw, rank):
    groups = draw(st.sampled_from([1, 2, 3]))
    cg, kg = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    n = draw(st.integers(0, 2)) if rank == 1 else draw(st.integers(1, 2))
    k = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    d = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    same = draw(st.booleans())
    s = (1,) * rank if same else tuple(draw(st.integers(1, 2)) for _ in range(rank))
    pad = "same" if same else tuple(draw(st.integers(0, 2)) for _ in range(rank))
    lo = 1 if rank == 3 else 1
    size = tuple(
        draw(st.integers(max(lo, dd * (kk - 1) + 1), (6 if rank == 3 else 20)))
        for kk, dd in zip(k, d, strict=True)
    )
    return dict(
        x=(n, groups * cg, *size),
        w=(groups * kg, cg, *k),
        bias=draw(st.booleans()),
        stride=s,
        padding=pad,
        dilation=d,
        groups=groups,
    )


def _arrays(case, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(case["x"]).astype(dtype)
    w = rng.standard_normal(case["w"]).astype(dtype)
    b = rng.standard_normal(case["w"][0]).astype(dtype) if case["bias"] else None
    return x, w, b


def _kw(case):
    return {k: case[k] for k in ("stride", "padding", "dilation", "groups")}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("rank", [1, 3])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_matches_float64_reference(rank, data, backend, dtype):
    case = data.draw(cases(rank))
    x, w, b = _arrays(case, dtype)
    x0, w0 = x.copy(), w.copy()
    y = FUNCS[rank](x, w, b, **_kw(case), backend=backend)
    assert y.dtype == np.dtype(dtype)
    assert_close(y, reference(x, w, b, **_kw(case)), dtype)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)


@needs_torch
@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
@pytest.mark.parametrize("rank", [1, 3])
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_matches_torch(rank, data):
    case = data.draw(cases(rank))
    if case["x"][0] == 0:
        return
    x, w, b = _arrays(case, np.float64)
    fn = {1: torch.nn.functional.conv1d, 3: torch.nn.functional.conv3d}[rank]
    t = fn(
        torch.from_numpy(x),
        torch.from_numpy(w),
        None if b is None else torch.from_numpy(b),
        **_kw(case),
    ).numpy()
    assert_close(FUNCS[rank](x, w, b, **_kw(case)), t, np.float64)


@pytest.mark.parametrize(
    "rank, x, w, kw",
    [
        (1, (2, 8, 300), (16, 8, 63), dict(padding=31)),  # a long FIR: the planner may pick FFT
        (1, (2, 16, 200), (16, 1, 3), dict(padding=8, dilation=8, groups=16)),  # depthwise TCN
        (3, (1, 8, 9, 12, 12), (8, 8, 3, 3, 3), dict(padding=1)),  # Winograd-sized 3x3x3
        (3, (2, 4, 9, 10, 11), (6, 4, 3, 1, 3), dict(stride=(2, 1, 2), padding=(0, 2, 1))),
        (3, (1, 6, 5, 7, 7), (6, 1, 3, 3, 3), dict(padding="same", groups=6)),  # depthwise 3-D
    ],
)
def test_layer_shapes(rank, x, w, kw, backend, dtype):
    case = dict(x=x, w=w, bias=True)
    xa, wa, ba = _arrays(case, dtype, seed=1)
    y = FUNCS[rank](xa, wa, ba, **kw, backend=backend)
    ref = reference(xa, wa, ba, **kw)
    assert y.shape == ref.shape
    from tests.tolerance import transform_scale

    assert_close(y, ref, dtype, scale=transform_scale(xa, wa, ba))


@pytest.mark.parametrize("rank", [1, 3])
def test_nan_and_inf_land_where_direct_summation_puts_them(rank, backend):
    rng = np.random.default_rng(3)
    shape = (2, 4, 40) if rank == 1 else (1, 4, 6, 7, 8)
    x = rng.standard_normal(shape)
    flat = x.reshape(-1)
    flat[[5, 17, 60]] = [np.nan, np.inf, -np.inf]
    w = rng.standard_normal((3, 4) + (3,) * rank)
    for pad in (0, 1):
        y = FUNCS[rank](x, w, padding=pad, backend=backend)
        assert_close(y, reference(x, w, padding=pad), np.float64)
    w[0, 0, ...] = np.inf  # inf weights: inf * finite and inf - inf like the loop
    y = FUNCS[rank](x, w, backend=backend)
    assert_close(y, reference(x, w), np.float64)
    if rank == 3:  # and with depth padding: padded planes add nothing, as in the loop
        y = FUNCS[rank](x, w, padding=(1, 0, 0), backend=backend)
        assert_close(y, reference(x, w, padding=(1, 0, 0)), np.float64)


@pytest.mark.parametrize("how", ["gather", "taps"])
@pytest.mark.parametrize(
    "x, w, kw",
    [
        ((2, 4, 7, 6, 5), (6, 2, 3, 2, 3), dict(stride=(2, 1, 1), padding=(2, 1, 0), groups=2)),
        ((1, 3, 6, 5, 5), (4, 3, 2, 3, 3), dict(dilation=(2, 1, 1), padding="same")),
        ((2, 4, 5, 5, 5), (8, 1, 3, 3, 3), dict(padding=1, groups=4)),
    ],
)
def test_conv3d_lowerings_agree(monkeypatch, how, x, w, kw):
    """Both ways conv3d lowers to conv2d, forced on the same calls, match the loop."""
    from fastconv import _plan

    rng = np.random.default_rng(6)
    xa, wa = rng.standard_normal(x), rng.standard_normal(w)
    b = rng.standard_normal(w[0])
    real = _plan.plan_depth_lowering
    monkeypatch.setattr(
        fastconv.convnd,
        "plan_depth_lowering",
        lambda g, weight_finite=True: (
            (how, None) if how == "taps" else ("gather", real(g)[1] or _plan.plan_depth_slab(g))
        ),
    )
    assert_close(fastconv.conv3d(xa, wa, b, **kw), reference(xa, wa, b, **kw), np.float64)


@pytest.mark.parametrize("rank", [1, 3])
def test_unbatched_out_and_float32(rank):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3,) + (7,) * rank).astype(np.float32)
    w = rng.standard_normal((2, 3) + (3,) * rank).astype(np.float32)
    y = FUNCS[rank](x, w, padding=1)
    assert y.shape == (2,) + (7,) * rank and y.dtype == np.float32
    out = np.full(y.shape, np.nan, np.float32)
    assert FUNCS[rank](x, w, padding=1, out=out) is out
    np.testing.assert_array_equal(out, y)
    assert_close(y, reference(x, w, padding=1), np.float32)


@pytest.mark.parametrize("planes_per_slab", [1, 2, 3])
def test_conv3d_slabs_give_the_same_result(monkeypatch, planes_per_slab):
    """A workspace that holds only a few output planes' gathered input: the slabs (the last one
    shorter) give the result of one whole call, to the last bits BLAS may round differently (a
    GEMM of another width may sum in another order: OpenBLAS's AVX2 kernels on an AMD EPYC
    differ from the whole call by 5e-15 on a tenth of the elements)."""
    from fastconv import _plan
    from fastconv._geometry import nd_geometry_from_shapes

    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 9, 6, 5))
    w = rng.standard_normal((4, 3, 3, 2, 3))
    kw = dict(stride=(2, 1, 1), padding=1)
    whole = fastconv.conv3d(x, w, **kw)  # Do = 5
    per_plane = 2 * 3 * 3 * 6 * 5 * 8
    monkeypatch.setattr(_plan, "WORKSPACE_BYTES", planes_per_slab * per_plane)
    g = nd_geometry_from_shapes(x.shape, w.shape, (2, 1, 1), 1, rank=3, dtype=np.float64)
    assert _plan.plan_depth_slab(g) == planes_per_slab
    np.testing.assert_allclose(fastconv.conv3d(x, w, **kw), whole, rtol=1e-13, atol=1e-13)
    assert_close(whole, reference(x, w, **kw), np.float64)


@pytest.mark.parametrize(
    "fn, x, w, kw, exc, msg",
    [
        ("conv1d", (1, 2, 5, 5), (1, 2, 3), {}, ValueError, "x must be 2-D .* or 3-D"),
        ("conv1d", (1, 2, 5), (1, 2, 3, 3), {}, ValueError, "weight must be 3-D"),
        ("conv1d", (1, 2, 5), (1, 2, 3), dict(stride=(1, 1)), TypeError, "stride"),
        ("conv1d", (1, 2, 5), (1, 2, 3), dict(stride=2, padding="same"), ValueError, "same"),
        ("conv1d", (1, 2, 5), (1, 2, 9), {}, ValueError, "larger than the padded"),
        ("conv3d", (2, 5, 5), (1, 2, 3, 3, 3), {}, ValueError, "x must be 4-D .* or 5-D"),
        ("conv3d", (1, 4, 5, 5, 5), (2, 2, 3, 3, 3), dict(groups=3), ValueError, "groups=3"),
        ("conv3d", (1, 2, 5, 5, 5), (1, 2, 3, 3, 3), dict(padding=(1, 1)), TypeError, "padding"),
        ("conv3d", (1, 2, 5, 5, 5), (1, 2, 3, 3, 3), dict(dilation=0), ValueError, "dilation"),
        ("conv3d", (1, 2, 5, 5, 5), (1, 2, 3, 3, 3), dict(padding=-1), ValueError, "padding"),
    ],
)
def test_bad_input_names_the_argument(fn, x, w, kw, exc, msg):
    with pytest.raises(exc, match=msg):
        getattr(fastconv, fn)(np.zeros(x), np.zeros(w), **kw)


def test_bias_shape_and_dtype_errors():
    with pytest.raises(ValueError, match="bias must have shape"):
        fastconv.conv3d(np.zeros((1, 2, 3, 3, 3)), np.zeros((4, 2, 1, 1, 1)), np.zeros(3))
    with pytest.raises(TypeError, match="x must have a real numeric dtype"):
        fastconv.conv1d(np.array([["a"]]), np.zeros((1, 1, 1)))
