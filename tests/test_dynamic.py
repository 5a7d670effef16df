"""Tests of fastconv.dynamic: dynamic_conv2d against a float64 per-sample loop of the reference
conv2d and against torch's batch-to-groups formulation; DynamicConv2d's attention; bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerance import assert_close

from fastconv import _reference
from fastconv.dynamic import DynamicConv2d, dynamic_conv2d, dynamic_plan

METHODS = ["mix", "experts"]


def reference_dynamic(x, bank, att, bias_bank, stride, padding, dilation, groups):
    """Float64 per-sample loop: mix each sample's kernel, convolve it alone."""
    x = np.asarray(x, np.float64)
    batched = x.ndim == 4
    x4 = x if batched else x[None]
    att = np.asarray(att, np.float64).reshape(x4.shape[0], -1)
    bank = np.asarray(bank, np.float64)
    outs = []
    for n in range(x4.shape[0]):
        w = np.tensordot(att[n], bank, axes=1)
        b = None if bias_bank is None else att[n] @ np.asarray(bias_bank, np.float64)
        outs.append(_reference.conv2d(x4[n], w, b, stride, padding, dilation, groups))
    out = np.stack(outs)
    return out if batched else out[0]


def make(rng, N, C, K, H, W, E, kh, kw, groups, dtype, bias=True):
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    bank = rng.standard_normal((E, K, C // groups, kh, kw)).astype(dtype)
    att = rng.random((N, E)).astype(dtype)
    bb = rng.standard_normal((E, K)).astype(dtype) if bias else None
    return x, bank, att, bb


# (C, K, groups): plain, two groups, depthwise, depthwise with channel multiplier 2
CHANNELS = [(4, 6, 1), (4, 6, 2), (6, 6, 6), (4, 8, 4)]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("C,K,groups", CHANNELS)
@pytest.mark.parametrize("bias", [False, True])
def test_against_reference_loop(backend, dtype, method, C, K, groups, bias):
    rng = np.random.default_rng(1)
    x, bank, att, bb = make(rng, 3, C, K, 9, 8, 3, 3, 3, groups, dtype, bias)
    copies = [a.copy() for a in (x, bank, att) + ((bb,) if bias else ())]
    for stride, padding, dilation in [(1, 1, 1), (2, 0, 1), (1, 2, 2), ((2, 1), (0, 1), (1, 2))]:
        y = dynamic_conv2d(
            x, bank, att, bb, stride, padding, dilation, groups, backend=backend, method=method
        )
        assert y.dtype == dtype
        assert_close(
            y, reference_dynamic(x, bank, att, bb, stride, padding, dilation, groups), dtype
        )
    for a, c in zip((x, bank, att) + ((bb,) if bias else ()), copies, strict=True):
        np.testing.assert_array_equal(a, c)  # inputs unmodified


@settings(max_examples=40, deadline=None)
@given(
    N=st.integers(1, 3),
    E=st.integers(1, 4),
    grp=st.sampled_from([(1, 2, 3), (2, 2, 2), (3, 1, 2), (4, 1, 1)]),  # (groups, Cg, Kg)
    HW=st.tuples(st.integers(3, 11), st.integers(3, 11)),
    k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    padding=st.sampled_from([0, 1, (2, 0), "same", "valid"]),
    dilation=st.integers(1, 2),
    bias=st.booleans(),
    method=st.sampled_from(["auto", "mix", "experts"]),
    backend=st.sampled_from(["auto", "numba"]),
    f64=st.booleans(),
)
def test_hypothesis(N, E, grp, HW, k, stride, padding, dilation, bias, method, backend, f64):
    groups, Cg, Kg = grp
    dtype = np.dtype(np.float64 if f64 else np.float32)
    if padding == "same":
        stride = 1
    eh, ew = dilation * (k[0] - 1) + 1, dilation * (k[1] - 1) + 1
    ph, pw = {0: (0, 0), 1: (1, 1), (2, 0): (2, 0), "valid": (0, 0)}.get(padding, (eh, ew))
    if eh > HW[0] + 2 * ph or ew > HW[1] + 2 * pw:
        padding, stride = "same", 1
    rng = np.random.default_rng(N * 100 + E)
    x, bank, att, bb = make(
        rng, N, Cg * groups, Kg * groups, HW[0], HW[1], E, k[0], k[1], groups, dtype, bias
    )
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = dynamic_conv2d(x, bank, att, bb, **kw, method=method, backend=backend)
    assert y.dtype == dtype
    assert_close(y, reference_dynamic(x, bank, att, bb, stride, padding, dilation, groups), dtype)


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("dilation", [1, 2])
def test_float32_winograd_sized_layer(groups, dilation):
    """Per-sample kernels big enough for the Winograd path (32 channels per group, 144+ tiles per
    sample): the mixed kernels go to the kernel as per-sample weights, dilated ones by phases."""
    from dataclasses import replace

    from fastconv._geometry import conv_geometry
    from fastconv._plan import kernels, plan_conv2d, resolve_backend

    rng = np.random.default_rng(4)
    C = 32 * groups
    x, bank, att, bb = make(rng, 3, C, C, 24, 26, 3, 3, 3, groups, np.float32)
    g = conv_geometry(x, bank[0], None, 1, dilation, dilation, groups)[3]
    plan = plan_conv2d(g, per_sample=True)
    y = dynamic_conv2d(x, bank, att, bb, padding=dilation, dilation=dilation, groups=groups)
    ref = reference_dynamic(x, bank, att, bb, 1, dilation, dilation, groups)
    assert_close(y, ref, np.float32)
    # the path under test is taken wherever the auto backend's Winograd kernel is fast
    be = resolve_backend("auto")
    assert (plan.algorithm == "winograd") == kernels(be, "winograd").winograd_supported("f")
    assert dynamic_plan(replace(g, N=3), 3).method == "mix"


@pytest.mark.parametrize("N", [1, 3, 4, 9])
@pytest.mark.parametrize("nthreads", [1, 2, 3])
def test_float32_packed_sized_layer(N, nthreads):
    # big enough that float32 takes the packed kernel per sample (where the CPU has it), with
    # samples split over worker threads or each call on all threads, depending on N and threads
    import fastconv

    rng = np.random.default_rng(2)
    x, bank, att, bb = make(rng, N, 16, 32, 20, 20, 4, 3, 3, 2, np.float32)
    ref = reference_dynamic(x, bank, att, bb, 1, 1, 1, 2)
    with fastconv.threads(nthreads):
        for method in ["auto", "mix", "experts"]:
            y = dynamic_conv2d(x, bank, att, bb, padding=1, groups=2, method=method)
            assert_close(y, ref, np.float32)


def test_unbatched_and_out(dtype):
    rng = np.random.default_rng(3)
    x, bank, att, bb = make(rng, 1, 4, 6, 7, 7, 2, 3, 3, 2, dtype)
    ref = reference_dynamic(x[0], bank, att[0], bb, 1, 1, 1, 2)
    assert_close(dynamic_conv2d(x[0], bank, att[0], bb, padding=1, groups=2), ref, dtype)
    assert_close(dynamic_conv2d(x[0], bank, att, bb, padding=1, groups=2), ref, dtype)
    out = np.full((1, 6, 7, 7), np.nan, dtype)
    res = dynamic_conv2d(x, bank, att, bb, padding=1, groups=2, out=out)
    assert res is out
    assert_close(out[0], ref, dtype)


def test_dtype_promotion_by_attention():
    rng = np.random.default_rng(4)
    x, bank, att, bb = make(rng, 2, 4, 4, 6, 6, 3, 3, 3, 1, np.float32)
    y = dynamic_conv2d(x, bank, att.astype(np.float64), bb)
    assert y.dtype == np.float64
    assert_close(y, reference_dynamic(x, bank, att, bb, 1, 0, 1, 1), np.float32)


def test_empty_batch():
    x = np.zeros((0, 4, 5, 5), np.float32)
    bank = np.ones((2, 3, 4, 3, 3), np.float32)
    assert dynamic_conv2d(x, bank, np.zeros((0, 2), np.float32)).shape == (0, 3, 3, 3)


def test_plan_prefers_mix_for_conv_layers_and_experts_for_one_pixel():
    from fastconv._geometry import geometry_from_shapes

    g = geometry_from_shapes((8, 64, 56, 56), (4, 64, 64, 3, 3), 1, 1, weight_ndim=5)
    assert dynamic_plan(g, 4).method == "mix"
    # a 3x3 kernel over a 3x3 input: one output pixel, mixing kernels costs as much as the conv
    g = geometry_from_shapes((256, 64, 3, 3), (4, 64, 64, 3, 3), weight_ndim=5)
    assert dynamic_plan(g, 4).method == "experts"
    with pytest.raises(ValueError, match="method"):
        dynamic_plan(g, 4, method="fold")


# -- against torch's batch-to-groups formulation -------------------------------------------------


@pytest.mark.parametrize("C,K,groups", CHANNELS)
def test_against_torch_batch_to_groups(C, K, groups):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    N, E = 3, 4
    x, bank, att, bb = make(rng, N, C, K, 10, 9, E, 3, 3, groups, np.float64)
    for stride, padding, dilation in [(1, 1, 1), (2, 1, 2)]:
        w = (torch.from_numpy(att) @ torch.from_numpy(bank).reshape(E, -1)).reshape(
            N * K, C // groups, 3, 3
        )
        b = (torch.from_numpy(att) @ torch.from_numpy(bb)).reshape(N * K)
        ref = torch.nn.functional.conv2d(
            torch.from_numpy(x).reshape(1, N * C, 10, 9),
            w,
            b,
            stride,
            padding,
            dilation,
            groups * N,
        )
        ref = ref.reshape(N, K, *ref.shape[2:]).numpy()
        for method in METHODS:
            y = dynamic_conv2d(x, bank, att, bb, stride, padding, dilation, groups, method=method)
            assert_close(y, ref, np.float64)


# -- DynamicConv2d ------------------------------------------------------------------------------


def numpy_attention(x, fc1w, fc1b, fc2w, fc2b, temperature, routing):
    p = np.asarray(x, np.float64).mean(axis=(2, 3))
    h = np.maximum(p @ fc1w.T + fc1b, 0) if fc1w is not None else p
    z = (h @ fc2w.T + fc2b) / temperature
    if routing == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return 1 / (1 + np.exp(-z))


@pytest.mark.parametrize("routing", ["softmax", "sigmoid"])
def test_layer_attention_and_forward(dtype, routing):
    rng = np.random.default_rng(6)
    layer = DynamicConv2d(
        8,
        12,
        3,
        padding=1,
        groups=2,
        num_experts=3,
        routing=routing,
        temperature=0.7,
        dtype=dtype,
        seed=0,
    )
    x = rng.standard_normal((4, 8, 9, 9)).astype(dtype)
    a = layer.attention(x)
    assert a.shape == (4, 3) and a.dtype == dtype
    p = {k: (None if v is None else v.astype(np.float64)) for k, v in layer.parameters().items()}
    ref = numpy_attention(
        x, p["fc1_weight"], p["fc1_bias"], p["fc2_weight"], p["fc2_bias"], 0.7, routing
    )
    assert_close(a, ref, dtype)
    if routing == "softmax":
        assert_close(a.sum(axis=1), np.ones(4), dtype)
    else:
        assert np.all((a > 0) & (a < 1))
    y = layer(x)
    assert y.dtype == dtype
    assert_close(y, reference_dynamic(x, p["weight_bank"], ref, p["bias_bank"], 1, 1, 1, 2), dtype)
    assert layer(x[0]).shape == (12, 9, 9)


def test_layer_parameters_from_arrays():
    rng = np.random.default_rng(7)
    layer = DynamicConv2d(4, 4, (3, 1), num_experts=2, hidden=0, bias=False, seed=1)
    assert layer.fc1_weight is None and layer.bias_bank is None
    bank = rng.standard_normal((2, 4, 4, 3, 1))
    layer.set_parameters(weight_bank=bank, fc2_weight=np.zeros((2, 4)), fc2_bias=[0.0, 0.0])
    assert layer.weight_bank.dtype == np.float32
    bank[...] = 0  # the layer holds a copy
    assert layer.weight_bank.any()
    x = rng.standard_normal((2, 4, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(layer.attention(x), 0.5)  # zero logits: uniform softmax
    with pytest.raises(ValueError, match="fc2_weight"):
        layer.fc2_weight = np.zeros((3, 4))
    with pytest.raises(ValueError, match="fc1_weight"):
        layer.set_parameters(fc1_weight=np.zeros((1, 4)))
    with pytest.raises(TypeError, match="unknown"):
        layer.set_parameters(weight=bank)


def test_softmax_large_logits_are_stable():
    layer = DynamicConv2d(2, 2, 1, num_experts=3, hidden=0, temperature=1e-3, seed=2)
    x = np.ones((1, 2, 2, 2), np.float32) * 100
    a = layer.attention(x)
    assert np.all(np.isfinite(a)) and abs(a.sum() - 1) < 1e-6


# -- bad input ----------------------------------------------------------------------------------


def test_bad_input():
    rng = np.random.default_rng(8)
    x, bank, att, bb = make(rng, 2, 4, 6, 6, 6, 3, 3, 3, 2, np.float32)
    with pytest.raises(ValueError, match="attention"):
        dynamic_conv2d(x, bank, att[:, :2], groups=2)
    with pytest.raises(ValueError, match="attention"):
        dynamic_conv2d(x, bank, att[:1], groups=2)
    with pytest.raises(ValueError, match="attention"):
        dynamic_conv2d(x[0], bank, att, groups=2)
    with pytest.raises(ValueError, match="weight_bank"):
        dynamic_conv2d(x, bank, att)  # bank built for groups=2
    with pytest.raises(ValueError, match="groups"):
        dynamic_conv2d(x, bank, att, groups=4)
    with pytest.raises(ValueError, match="weight_bank"):
        dynamic_conv2d(x, bank[0], att, groups=2)
    with pytest.raises(ValueError, match="bias_bank"):
        dynamic_conv2d(x, bank, att, bb[:, :3], groups=2)
    with pytest.raises(TypeError, match="attention"):
        dynamic_conv2d(x, bank, att.astype(complex), groups=2)
    with pytest.raises(ValueError, match="stride"):
        dynamic_conv2d(x, bank, att, stride=0, groups=2)
    with pytest.raises(ValueError, match="backend"):
        dynamic_conv2d(x, bank, att, groups=2, backend="gpu")
    with pytest.raises(ValueError, match="method"):
        dynamic_conv2d(x, bank, att, groups=2, method="fold")
    out = np.full((2, 6, 4, 4), 7.0, np.float32)
    with pytest.raises(ValueError, match="out"):
        dynamic_conv2d(x, bank, att, groups=2, out=out[:1])
    with pytest.raises(ValueError, match="method"):
        dynamic_conv2d(x, bank, att, groups=2, method="fold", out=out)
    assert np.all(out == 7.0)  # a failed call leaves out untouched


@pytest.mark.parametrize("t", [-1.0, 0.0, float("nan"), float("inf")])
def test_bad_temperature(t):
    with pytest.raises(ValueError, match="temperature"):
        DynamicConv2d(4, 4, 3, temperature=t)
    layer = DynamicConv2d(4, 4, 3)
    with pytest.raises(ValueError, match="temperature"):
        layer.temperature = t
    assert layer.temperature == 1.0


def test_bad_layer_arguments():
    with pytest.raises(TypeError, match="temperature"):
        DynamicConv2d(4, 4, 3, temperature="hot")
    with pytest.raises(ValueError, match="groups"):
        DynamicConv2d(4, 6, 3, groups=4)
    with pytest.raises(ValueError, match="routing"):
        DynamicConv2d(4, 4, 3, routing="argmax")
    with pytest.raises(ValueError, match="num_experts"):
        DynamicConv2d(4, 4, 3, num_experts=0)
    with pytest.raises(ValueError, match="x must have shape"):
        DynamicConv2d(4, 4, 3).attention(np.zeros((1, 3, 5, 5)))


def test_awkward_layouts():
    # F-order x, byte-swapped bank, a strided view for attention, integer bias: same results
    rng = np.random.default_rng(9)
    x, bank, att, bb = make(rng, 3, 4, 6, 8, 7, 3, 3, 3, 2, np.float32)
    ref = reference_dynamic(x, bank, att, bb, 1, 1, 1, 2)
    att_wide = np.repeat(att, 2, axis=1)[:, ::2]
    y = dynamic_conv2d(np.asfortranarray(x), bank.astype(">f4"), att_wide, bb, padding=1, groups=2)
    assert y.dtype == np.float32
    assert_close(y, ref, np.float32)
    ib = np.arange(12, dtype=np.int16).reshape(2, 6)
    y = dynamic_conv2d(x, bank[:2], att[:, :2], ib, padding=1, groups=2)
    assert y.dtype == np.float32  # int16 with float32 stays float32, as NumPy promotes
    assert (
        dynamic_conv2d(x, bank[:2], att[:, :2], ib.astype(np.int64), groups=2).dtype == np.float64
    )
    assert_close(y, reference_dynamic(x, bank[:2], att[:, :2], ib, 1, 1, 1, 2), np.float32)


def test_concurrent_calls():
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(10)
    cases = [make(rng, 2, 8, 8, 12, 12, 3, 3, 3, g, np.float32) for g in (1, 2, 8)]
    refs = [reference_dynamic(*c, 1, 1, 1, g) for c, g in zip(cases, (1, 2, 8), strict=True)]

    def run(i):
        c, g = cases[i % 3], (1, 2, 8)[i % 3]
        return dynamic_conv2d(*c, padding=1, groups=g, method=("mix", "experts")[i % 2])

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(run, range(12)))
    for i, y in enumerate(results):
        assert_close(y, refs[i % 3], np.float32)
