"""conv2d against the float64 reference loop and torch.nn.functional.conv2d, for every algorithm."""

import multiprocessing as mp
import tracemalloc
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerance import TERMS_SCALED, assert_close, transform_scale

import fastconv
from conftest import BACKENDS
from fastconv import _plan
from fastconv import _reference as ref
from fastconv._geometry import conv_geometry
from fastconv._plan import ConvPlan, applicable, plan_conv2d
from fastconv.conv import run_conv


@st.composite
def conv_cases(draw, max_hw=12):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    Cg = draw(st.integers(1, 4))
    Kg = draw(st.integers(1, 4))
    N = draw(st.integers(0, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dil = draw(st.sampled_from([1, 2, (1, 2), (2, 1)]))
    padding = draw(st.sampled_from([0, 1, 2, (0, 1), (2, 0), "same", "valid"]))
    stride = 1 if padding == "same" else draw(st.sampled_from([1, 2, 3, (1, 2), (2, 1)]))
    H = draw(st.integers(1, max_hw))
    W = draw(st.integers(1, max_hw))
    bias = draw(st.booleans())
    batched = draw(st.booleans()) or N != 1
    return dict(
        N=N,
        C=Cg * groups,
        K=Kg * groups,
        H=H,
        W=W,
        kh=kh,
        kw=kw,
        groups=groups,
        stride=stride,
        padding=padding,
        dilation=dil,
        bias=bias,
        batched=batched,
    )


def torch_conv2d(x, w, b=None, **kw):
    """torch's conv2d on NumPy arrays; its 'same'-padding copy warning is not our concern."""
    import torch

    tb = None if b is None else torch.from_numpy(b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.nn.functional.conv2d(
            torch.from_numpy(x), torch.from_numpy(w), tb, **kw
        ).numpy()


def make(case, dtype, seed=0):
    rng = np.random.default_rng(seed)
    shape = (case["N"], case["C"], case["H"], case["W"])
    x = rng.standard_normal(shape if case["batched"] else shape[1:]).astype(dtype)
    w = rng.standard_normal(
        (case["K"], case["C"] // case["groups"], case["kh"], case["kw"])
    ).astype(dtype)
    b = rng.standard_normal(case["K"]).astype(dtype) if case["bias"] else None
    kw = dict(
        stride=case["stride"],
        padding=case["padding"],
        dilation=case["dilation"],
        groups=case["groups"],
    )
    return x, w, b, kw


def fits(case):
    """Whether conv2d must accept the case, by an oracle independent of fastconv._geometry:
    torch where it is installed, else the reference's own size formula."""
    x, w, b, kw = make(case, np.float64)
    try:
        import torch  # noqa: F401
    except ImportError:
        try:
            ref.conv2d(x, w, b, **kw)
        except ValueError:
            return False
        return True
    try:
        torch_conv2d(x, w, b, **kw)
    except (RuntimeError, ValueError):
        return False
    return True


def all_plans(g, backend):
    """Every registry entry that applies to g on this backend, forced (the tests run each one);
    FFT in chunks of two samples, so the chunk loop runs too."""
    plans = []
    for name in applicable(g, backend):
        plan = plan_conv2d(g, backend, nthreads=2, algorithm=name)
        plans.append(replace(plan, tile=min(plan.tile, 2)) if name == "fft" else plan)
    return plans


@settings(max_examples=60, deadline=None)
@given(case=conv_cases(), dt=st.sampled_from([np.float32, np.float64]))
def test_conv2d_matches_reference(case, dt):
    dt = np.dtype(dt)
    x, w, b, kw = make(case, dt)
    if not fits(case):
        with pytest.raises(ValueError):
            fastconv.conv2d(x, w, b, **kw)
        return
    expected = ref.conv2d(x, w, b, **kw)
    assert expected.shape == fastconv.cost.conv2d_cost(x.shape, w.shape, dtype=dt, **kw).out_shape
    tscale = transform_scale(x, w, b)
    x0, w0 = x.copy(), w.copy()
    for be in BACKENDS:
        got = fastconv.conv2d(x, w, b, backend=be, **kw)
        assert got.dtype == dt
        x4, w4, b4, g = conv_geometry(x, w, b, **kw)
        auto = plan_conv2d(g, be).algorithm
        assert_close(got, expected, dt, scale=tscale if auto in TERMS_SCALED else None)
        # every other algorithm that applies, forced
        for plan in all_plans(g, be):
            res = run_conv(
                plan, x4, w4.reshape(1, g.K, -1), None if b4 is None else b4.reshape(1, -1), g
            )
            scaled = plan.algorithm in TERMS_SCALED
            assert_close(res, expected, dt, scale=tscale if scaled else None)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)


@settings(max_examples=60, deadline=None)
@given(case=conv_cases(max_hw=9), data=st.data())
def test_reference_places_nan_and_inf_like_torch(case, data):
    """The float64 reference loop is itself checked against torch: sizes, padding, "same",
    errors, and NaN/inf placement (torch's float64 path multiplies the zero padding, the
    reference's skip_padding=False convention)."""
    pytest.importorskip("torch")
    x, w, b, kw = make(case, np.float64)
    for a in (x, w):
        if a.size:
            idx = data.draw(st.lists(st.integers(0, a.size - 1), max_size=3))
            vals = data.draw(st.lists(st.sampled_from([np.nan, np.inf, -np.inf]), min_size=3))
            a.flat[idx] = vals[: len(idx)]
    try:
        expected = torch_conv2d(x, w, b, **kw)
    except RuntimeError:
        with pytest.raises(ValueError):
            ref.conv2d(x, w, b, **kw)
        return
    assert_close(ref.conv2d(x, w, b, **kw, skip_padding=False), expected, np.float64)


@settings(max_examples=40, deadline=None)
@given(case=conv_cases(max_hw=9))
def test_conv2d_matches_torch(case):
    pytest.importorskip("torch")
    x, w, b, kw = make(case, np.float64)
    try:
        expected = torch_conv2d(x, w, b, **kw)
    except RuntimeError:
        with pytest.raises(ValueError):
            fastconv.conv2d(x, w, b, **kw)
        return
    for be in BACKENDS:
        got = fastconv.conv2d(x, w, b, backend=be, **kw)
        assert got.shape == expected.shape
        assert_close(got, expected, np.float64)


@pytest.mark.parametrize(
    "shape,groups,kw",
    [
        ((2, 64, 14, 14), 1, dict(padding=1)),  # dense 3x3
        ((2, 32, 10, 10), 32, dict(padding=1)),  # depthwise
        ((2, 16, 9, 9), 16, dict(padding=2, dilation=2, stride=2)),  # strided dilated depthwise
        ((1, 64, 12, 12), 32, dict(padding=1)),  # ResNeXt-style
        ((3, 24, 7, 7), 1, dict()),  # pointwise
        ((1, 3, 40, 40), 1, dict(stride=2, padding=3)),  # stem-like 7x7
    ],
)
def test_layer_shapes(shape, groups, kw, backend, dtype):
    rng = np.random.default_rng(3)
    C = shape[1]
    K = 2 * C if groups == C else C
    ks = 1 if shape == (3, 24, 7, 7) else (7 if C == 3 else 3)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((K, C // groups, ks, ks)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    got = fastconv.conv2d(x, w, b, groups=groups, backend=backend, **kw)
    assert got.dtype == dtype
    assert_close(got, ref.conv2d(x, w, b, groups=groups, **kw), dtype)


def test_awkward_inputs(backend):
    """F-order, strided views, byte-swapped, integer and mixed dtypes all give the reference."""
    rng = np.random.default_rng(4)
    base = rng.standard_normal((2, 3, 12, 14))
    w = rng.standard_normal((4, 3, 3, 3))
    expected = ref.conv2d(base[:, :, ::2, ::2], w, padding=1)
    for x in (np.asfortranarray(base)[:, :, ::2, ::2], base.astype(">f8")[:, :, ::2, ::2]):
        assert_close(fastconv.conv2d(x, w, padding=1, backend=backend), expected, np.float64)
    xi = (base * 10).astype(np.int32)
    got = fastconv.conv2d(xi, w.astype(np.float32), backend=backend)
    assert got.dtype == np.float64  # int32 with float32 promotes to float64, as NumPy does
    assert_close(got, ref.conv2d(xi, w.astype(np.float32)), np.float64)
    assert fastconv.conv2d(base.astype(np.float32), w, backend=backend).dtype == np.float64


def test_unbatched_and_empty_batch(backend):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    got = fastconv.conv2d(x, w, padding="same", backend=backend)
    assert got.shape == (5, 8, 8)
    assert_close(got, ref.conv2d(x, w, padding="same"), np.float32)
    empty = fastconv.conv2d(np.zeros((0, 3, 8, 8), np.float32), w, backend=backend)
    assert empty.shape == (0, 5, 6, 6) and empty.dtype == np.float32


def test_same_padding_even_kernel_is_asymmetric_like_torch(backend):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((1, 2, 7, 6))
    w = rng.standard_normal((3, 2, 4, 2))
    pytest.importorskip("torch")
    expected = torch_conv2d(x, w, padding="same", dilation=(1, 3))
    got = fastconv.conv2d(x, w, padding="same", dilation=(1, 3), backend=backend)
    assert_close(got, expected, np.float64)


def test_out_argument(backend):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    expected = ref.conv2d(x, w)
    out = np.full((2, 4, 7, 7), 7.0, np.float32)
    r = fastconv.conv2d(x, w, out=out, backend=backend)
    assert r is out
    assert_close(out, expected, np.float32)
    # a non-contiguous out is filled correctly
    big = np.zeros((2, 4, 7, 14), np.float32)
    fastconv.conv2d(x, w, out=big[..., ::2], backend=backend)
    assert_close(big[..., ::2], expected, np.float32)
    # a failed call leaves out untouched
    out[...] = 3.0
    with pytest.raises(ValueError):
        fastconv.conv2d(x, w, stride=0, out=out, backend=backend)
    with pytest.raises(TypeError):
        fastconv.conv2d(x, w, out=np.zeros((2, 4, 7, 7)), backend=backend)
    with pytest.raises(ValueError):
        fastconv.conv2d(x, w, out=np.zeros((2, 4, 7, 6), np.float32), backend=backend)
    assert (out == 3.0).all()


def test_out_aliasing_input(backend):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 4, 6, 6))
    w = rng.standard_normal((4, 4, 3, 3))
    expected = ref.conv2d(x, w, padding=1)
    fastconv.conv2d(x, w, padding=1, out=x, backend=backend)
    assert_close(x, expected, np.float64)


BAD = [
    (dict(x=np.zeros((2, 3, 4))[0, 0]), ValueError, "x must be 3-D"),
    (dict(w=np.zeros((4, 3, 3))), ValueError, "weight must be 4-D"),
    (dict(w=np.zeros((4, 2, 3, 3))), ValueError, "input channels"),
    (dict(groups=2), ValueError, "groups=2 must divide the input channels"),
    (dict(groups=0), ValueError, "groups must be positive"),
    (dict(groups=1.5), TypeError, "groups must be an int"),
    (dict(padding=-1), ValueError, "padding must be non-negative"),
    (dict(padding="full"), ValueError, "padding must be"),
    (dict(padding="same", stride=2), ValueError, "padding='same'"),
    (dict(stride=0), ValueError, "stride must be positive"),
    (dict(stride=-2), ValueError, "stride must be positive"),
    (dict(dilation=0), ValueError, "dilation must be positive"),
    (dict(stride=(1, 2, 3)), TypeError, "stride must be an int or a pair"),
    (dict(w=np.zeros((4, 3, 9, 3))), ValueError, "larger than the padded input"),
    (dict(x=np.zeros((1, 3, 5, 5), dtype=complex)), TypeError, "real numeric dtype"),
    (dict(x=np.array([["a"]])), TypeError, "x must have a real numeric dtype"),
    (dict(b=np.zeros(3)), ValueError, "bias must have shape"),
    (dict(backend="gpu"), ValueError, "backend must be one of"),
]


@pytest.mark.parametrize("change,exc,msg", BAD, ids=[b[2] for b in BAD])
def test_bad_input_names_the_argument(change, exc, msg):
    args = dict(x=np.zeros((1, 3, 5, 5)), w=np.zeros((4, 3, 3, 3)), b=None)
    args.update(change)
    x, w, b = args.pop("x"), args.pop("w"), args.pop("b")
    with pytest.raises(exc, match=msg):
        fastconv.conv2d(x, w, b, **args)


def test_groups_must_divide_output_channels():
    with pytest.raises(ValueError, match="output channels"):
        fastconv.conv2d(np.zeros((1, 4, 5, 5)), np.zeros((3, 2, 3, 3)), groups=2)


def test_workspace_is_bounded_whatever_the_batch():
    """(32, 64, 56, 56) with a 64->64 3x3 kernel: extra memory <= 64 MiB (full im2col: 231 MB)."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((32, 64, 56, 56), dtype=np.float32)
    w = rng.standard_normal((64, 64, 3, 3), dtype=np.float32)
    cost = fastconv.cost.conv2d_cost(x.shape, w.shape, padding=1)
    assert cost.im2col_bytes == 231211008
    assert cost.workspace_bytes <= 64 * 2**20
    fastconv._plan.free_scratch()  # the call's scratch is allocated, and counted, afresh
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        out = fastconv.conv2d(x, w, padding=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    extra = peak - out.nbytes
    assert extra <= 64 * 2**20, f"extra memory {extra / 2**20:.1f} MiB"


@pytest.mark.parametrize("C", [8, 32])  # packed; Winograd (32 channels, 200 tiles)
def test_concurrent_calls_from_python_threads(backend, C):
    rng = np.random.default_rng(10)
    xs = [rng.standard_normal((2, C, 20, 20)).astype(np.float32) for _ in range(8)]
    w = rng.standard_normal((C, C, 3, 3)).astype(np.float32)
    expected = [ref.conv2d(x, w, padding=1) for x in xs]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda x: fastconv.conv2d(x, w, padding=1, backend=backend), xs * 3))
    for i, g in enumerate(got):
        assert_close(g, expected[i % 8], np.float32)


def _child(backend, C, q):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, C, 24, 24)).astype(np.float32)
    w = rng.standard_normal((C, C, 3, 3)).astype(np.float32)
    q.put(fastconv.conv2d(x, w, padding=1, backend=backend))


@pytest.mark.parametrize("C", [8, 32])  # packed; Winograd (32 channels, 288 tiles)
@pytest.mark.parametrize("child_backend", ["auto"] + BACKENDS)
def test_forked_child_can_convolve_after_parent(child_backend, C):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, C, 24, 24)).astype(np.float32)
    w = rng.standard_normal((C, C, 3, 3)).astype(np.float32)
    for be in BACKENDS:  # start every pool in the parent first
        expected = fastconv.conv2d(x, w, padding=1, backend=be)
        fastconv.im2col(x, 3, backend=be)
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(child_backend, C, q))
    p.start()
    try:
        got = q.get(timeout=120)
    finally:
        p.join(30)
        if p.is_alive():
            p.kill()
    assert p.exitcode == 0
    assert_close(got, expected, np.float32)


def test_read_only_inputs(backend):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 4, 9, 9))
    w = rng.standard_normal((4, 2, 3, 3))
    b = rng.standard_normal(4)
    for a in (x, w, b):
        a.flags.writeable = False
    for groups, ww in ((2, w), (4, w[:, :1])):
        got = fastconv.conv2d(x, ww, b, padding=1, groups=groups, backend=backend)
        assert_close(got, ref.conv2d(x, ww, b, padding=1, groups=groups), np.float64)
    cols = fastconv.im2col(x, 3, backend=backend)
    cols.flags.writeable = False
    assert_close(fastconv.col2im(cols, 9, 3, backend=backend), ref.col2im(cols, 9, 3), np.float64)


def test_large_kernel_few_channels_runs_by_fft_and_is_exact(backend):
    rng = np.random.default_rng(13)
    x = rng.standard_normal((3, 1, 160, 160))
    w = rng.standard_normal((4, 1, 21, 21))
    b = rng.standard_normal(4)
    assert (
        fastconv.cost.conv2d_cost(x.shape, w.shape, padding=10, dtype=np.float64).algorithm == "fft"
    )
    got = fastconv.conv2d(x, w, b, padding=10, backend=backend)
    assert_close(got, ref.conv2d(x, w, b, padding=10), np.float64)
    # a workspace that fits one sample at a time still gives the same answer (chunked spectra)
    x4, w4, b4, g = conv_geometry(x, w, b, padding=10)
    plan = plan_conv2d(g, backend, workspace_bytes=6 * 2**20)  # room for one sample's spectra
    assert plan.algorithm == "fft" and plan.tile == 1
    assert_close(run_conv(plan, x4, w4.reshape(1, 4, -1), b4.reshape(1, 4), g), got, np.float64)


@pytest.mark.parametrize(
    "shape,K,groups,kw",
    [
        ((2, 64, 12, 20), 64, 8, dict(padding=1)),
        ((1, 32, 9, 18), 64, 4, dict()),
        ((2, 48, 10, 33), 96, 6, dict(padding=(1, 2))),
        ((1, 16, 8, 18), 16, 2, dict(padding=2, dilation=2)),
        ((2, 256, 7, 17), 256, 32, dict(padding=1)),
        ((3, 64, 1, 1), 64, 8, dict(padding=1)),  # one output pixel per plane
        ((1, 32, 5, 3), 32, 4, dict(padding=(0, 1))),  # rows narrower than a vector
        ((2, 64, 14, 14), 128, 4, dict(padding=1)),  # 16 channels per group, 14x14
    ],
)
def test_direct_grouped_kernel(shape, K, groups, kw, backend, dtype):
    """ResNeXt-style groups through the direct grouped kernel, forced, against the reference."""
    rng = np.random.default_rng(14)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((K, shape[1] // groups, 3, 3)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    expected = ref.conv2d(x, w, b, groups=groups, **kw)
    x4, w4, b4, g = conv_geometry(x, w, b, groups=groups, **kw)
    if backend == "cython" and not kernels_of(backend).grouped_supported(dtype.char):
        pytest.skip("the Cython grouped kernel is float32 AVX-512 only")
    plan = ConvPlan("grouped", backend, 2)
    got = run_conv(plan, x4, w4.reshape(1, K, -1), b4.reshape(1, K), g)
    assert_close(got, expected, dtype)


def test_direct_grouped_kernel_refuses_geometry_outside_its_preconditions():
    if "cython" not in BACKENDS or not kernels_of("cython").grouped_supported("f"):
        pytest.skip("needs the Cython AVX-512 grouped kernel")
    x4, w4, _, g = conv_geometry(
        np.ones((1, 32, 9, 16), np.float32), np.ones((64, 8, 3, 3), np.float32), stride=2, groups=4
    )
    with pytest.raises(ValueError, match="preconditions"):
        run_conv(ConvPlan("grouped", "cython", 2), x4, w4.reshape(1, 64, -1), None, g)


def kernels_of(backend):
    from fastconv._plan import kernels

    return kernels(backend)


@pytest.mark.parametrize(
    "shape,mult,kw",
    [
        ((2, 6, 70, 67), 1, dict(stride=2, padding=1)),  # MobileNet's downsampling 3x3
        ((1, 4, 71, 80), 2, dict(stride=2, padding=2)),  # 5x5, channel multiplier 2
        ((2, 3, 68, 66), 1, dict(stride=2, padding=2, dilation=2)),
        ((1, 5, 64, 66), 1, dict(stride=2)),  # no padding, even kernel (4x4)
        ((1, 4, 9, 130), 1, dict(stride=2, padding=(0, 3))),  # few rows, asymmetric padding
        ((2, 6, 56, 56), 2, dict(stride=2, padding=1)),  # 28 columns out
        ((2, 6, 28, 29), 1, dict(stride=1, padding=1)),  # stride 1, 16-wide blocks
        ((1, 3, 5, 17), 1, dict(stride=1, padding=(0, 1))),  # stride 1, narrowest blocked plane
        ((2, 40, 7, 7), 1, dict(stride=1, padding=1)),  # MobileNet's last stage, 7x7
        ((1, 20, 14, 14), 3, dict(stride=2, padding=1)),  # multiplier 3, 7x7 out
    ],
)
def test_depthwise_layer_shapes(shape, mult, kw, backend, dtype):
    """Depthwise layers on each of the kernel's paths (strides 1 and 2, plane widths from 7 to 65,
    channel counts not a multiple of 16, multipliers 1-3), against the float64 reference."""
    rng = np.random.default_rng(21)
    C = shape[1]
    ks = 5 if mult == 2 else (4 if "padding" not in kw else 3)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((C * mult, 1, ks, ks)).astype(dtype)
    b = rng.standard_normal(C * mult).astype(dtype)
    got = fastconv.conv2d(x, w, b, groups=C, backend=backend, **kw)
    assert_close(got, ref.conv2d(x, w, b, groups=C, **kw), dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=60, deadline=None)
@given(
    W=st.integers(1, 12),
    pl=st.integers(0, 7),
    kw=st.integers(1, 3),
    dw=st.integers(1, 3),
    sw=st.integers(1, 2),
    tile=st.integers(1, 9),
)
def test_gemm_packing_stays_in_its_tile(backend, W, pl, kw, dw, sw, tile):
    """im2col tiles that end inside a row's left padding wrote zeros past their end (heap
    corruption with padding 6, a 7x1 kernel and 146-pixel tiles); a guard band behind each
    thread's tile must stay untouched, and the result must match the reference."""
    if dw * (kw - 1) + 1 > W + 2 * pl:
        return
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 3, W)).astype(np.float32)
    w = rng.standard_normal((2, 2, 1, kw)).astype(np.float32)
    x4, w4, _, g = conv_geometry(x, w, None, (1, sw), (0, pl), (1, dw), 1)
    mod = fastconv._plan.kernels(backend)
    n = mod.conv_gemm_workspace(g.R, g.Kg, tile)
    ws = np.full((1, n + 64), np.nan, np.float32)
    out = np.empty((g.N, g.K, g.P), np.float32)
    mod.conv_gemm(
        x4,
        w4.reshape(1, g.K, -1),
        np.zeros((1, 1), np.float32),
        False,
        g.as_array(),
        out,
        ws[:, :n],
        tile,
        1,
    )
    assert np.isnan(ws[0, n:]).all(), "conv_gemm wrote past its workspace"
    assert_close(
        out.reshape(g.out_shape), ref.conv2d(x, w, None, (1, sw), (0, pl), (1, dw)), np.float32
    )


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 2),
    c=st.integers(2, 40),
    mult=st.integers(1, 2),
    h=st.integers(2, 24),
    w=st.integers(2, 31),
    k=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    stride=st.integers(1, 2),
    dilation=st.integers(1, 2),
    activation=st.sampled_from([None, "relu6", "silu"]),
    nonfinite=st.booleans(),
    nthreads=st.integers(1, 2),
    seed=st.integers(0, 2**16),
)
def test_depthwise_flat_planes_against_reference(
    n, c, mult, h, w, k, stride, dilation, activation, nonfinite, nthreads, seed
):
    """The depthwise plane kernel's flat path (float32, AVX-512, planes under 16 wide: runs of 16
    pixels across rows, masked tap loads from one table per call, the polyphase split at stride
    2, two planes at a time) against the float64 direct sum, on the "same" padding it takes:
    rectangular kernels up to 25 taps, dilation, odd plane counts and sizes, NaN/inf input and an
    inf weight (which a padding tap must skip)."""
    pads = tuple(dilation * (kk - 1) // 2 for kk in k)
    if h + 2 * pads[0] < dilation * (k[0] - 1) + 1 or w + 2 * pads[1] < dilation * (k[1] - 1) + 1:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = rng.standard_normal((c * mult, 1, *k)).astype(np.float32)
    if nonfinite:
        for v in (np.nan, np.inf, -np.inf):
            x.flat[rng.integers(x.size)] = v
        wt.flat[rng.integers(wt.size)] = np.inf
    b = rng.standard_normal(c * mult).astype(np.float32)
    g = conv_geometry(x, wt, b, stride, pads, dilation, c)[3]
    if _plan.cpu_level() == "v4" and _plan.cython_available("conv"):
        same = g.Wo == (g.W if stride == 1 else (g.W + 1) // 2)
        assert _plan._depthwise_plane_flat(g) == (
            same and g.Wo < 16 and g.Ho * g.Wo >= 16 and g.kh * g.kw > 1
        )
    with fastconv.threads(nthreads):
        got = fastconv.conv2d(
            x, wt, b, stride, pads, dilation, c, activation=activation, algorithm="depthwise"
        )
    want = ref.conv2d(x.astype(np.float64), wt.astype(np.float64), b, stride, pads, dilation, c)
    if activation == "relu6":
        want = np.clip(want, 0, 6)
    elif activation == "silu":
        with np.errstate(over="ignore", invalid="ignore"):
            want = want / (1 + np.exp(-want))
    assert_close(got, want, np.float32)


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 2),
    c=st.integers(2, 20),  # groups > 1: a depthwise layer
    mult=st.integers(1, 2),
    h=st.integers(4, 40),
    w=st.integers(6, 40),
    k=st.sampled_from([3, 5]),
    pads=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    stride=st.integers(1, 2),
    activation=st.sampled_from([None, "relu", "relu6", "silu"]),
    algorithm=st.sampled_from(["depthwise", "depthwise16"]),
    nonfinite=st.booleans(),
    nthreads=st.integers(1, 2),
    seed=st.integers(0, 2**16),
)
def test_depthwise_plane_blocks_against_reference(
    n, c, mult, h, w, k, pads, stride, activation, algorithm, nonfinite, nthreads, seed
):
    """The depthwise plane kernel's AVX-512 4-row blocks (float32, 3x3 and 5x5, stride 1 or 2
    (even lanes of two masked loads), read straight from the input with masked edges; the last
    blocks overlap; narrow planes store under a mask), the 16-channel kernel beside it, and
    the activations both apply as they store, against the float64 direct sum: all padding
    amounts, planes near and under the blocks' sizes, NaN/inf in the input."""
    if h + 2 * pads[0] < k or w + 2 * pads[1] < k:
        return
    if algorithm not in fastconv.algorithms(
        (n, c, h, w), (c * mult, 1, k, k), stride, pads, 1, c, dtype=np.float32
    ):
        return  # depthwise16 needs AVX-512 or AVX2
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    if nonfinite:
        for v in (np.nan, np.inf, -np.inf):
            x.flat[rng.integers(x.size)] = v
    wt = rng.standard_normal((c * mult, 1, k, k)).astype(np.float32)
    b = rng.standard_normal(c * mult).astype(np.float32)
    with fastconv.threads(nthreads):
        got = fastconv.conv2d(
            x, wt, b, stride, pads, 1, c, activation=activation, algorithm=algorithm
        )
    want = ref.conv2d(x.astype(np.float64), wt.astype(np.float64), b, stride, pads, 1, c)
    if activation == "relu":
        want = np.maximum(want, 0)
    elif activation == "relu6":
        want = np.clip(want, 0, 6)
    elif activation == "silu":
        with np.errstate(over="ignore", invalid="ignore"):
            want = want / (1 + np.exp(-want))
    assert_close(got, want, np.float32)


def _check_small16_modes(
    x, wt, stride, pads, dilation, activation, nonfinite, nthreads, rng, modes
):
    """conv2d's depthwise path under each _set_depthwise_small16 mode in `modes`, NaN and inf in
    x and an inf weight when `nonfinite`: every mode's bits equal the last one's (0: never the
    16-lane kernel), and all are within float32 tolerance of the float64 direct sum."""
    mod = _plan.kernels("cython") if _plan.cython_available("conv") else None
    if mod is None or not hasattr(mod, "_set_depthwise_small16"):
        pytest.skip("needs the Cython conv kernels")
    c = x.shape[1]
    if nonfinite:
        for v in (np.nan, np.inf, -np.inf):
            x.flat[rng.integers(x.size)] = v
        wt.flat[rng.integers(wt.size)] = np.inf
    b = rng.standard_normal(c).astype(np.float32)
    kw = dict(activation=activation, algorithm="depthwise", backend="cython")
    got = {}
    try:
        with fastconv.threads(nthreads):
            for mode in modes:
                mod._set_depthwise_small16(mode)
                got[mode] = fastconv.conv2d(x, wt, b, stride, pads, dilation, c, **kw)
    finally:
        mod._set_depthwise_small16(1)
    for mode in modes[:-1]:
        np.testing.assert_array_equal(got[mode], got[modes[-1]])
    want = ref.conv2d(x.astype(np.float64), wt.astype(np.float64), b, stride, pads, dilation, c)
    if activation in ("relu", "relu6"):
        want = np.maximum(want, 0) if activation == "relu" else np.clip(want, 0, 6)
    elif activation == "silu":
        with np.errstate(over="ignore", invalid="ignore"):
            want = want / (1 + np.exp(-want))
    assert_close(got[modes[-1]], want, np.float32)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 2),
    c=st.integers(2, 40),  # one channel is not depthwise (groups=1)
    h=st.integers(12, 40),
    w_=st.integers(16, 40),
    activation=st.sampled_from([None, "relu6", "silu"]),
    nonfinite=st.booleans(),
    nthreads=st.integers(1, 2),
    seed=st.integers(0, 2**16),
)
def test_depthwise_5x5_wide_planes_16_lanes_give_the_row_blocks_bits(
    n, c, h, w_, activation, nonfinite, nthreads, seed
):
    """5x5 depthwise at stride 1 on planes 16-40 wide runs 16 channels in the lanes
    (dw_small16_f32 in row chunks of up to 15 outputs); its sums are the 4-row blocks' (the
    plane kernel, _set_depthwise_small16(0)) bit for bit, NaN and inf in x included, and an inf
    weight sends its 16 channels to the plane kernel.  Both against the float64 direct sum."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w_)).astype(np.float32)
    wt = rng.standard_normal((c, 1, 5, 5)).astype(np.float32)
    _check_small16_modes(x, wt, 1, 2, 1, activation, nonfinite, nthreads, rng, (1, 0))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 2),
    c=st.integers(2, 40),
    h=st.integers(2, 15),
    k=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    stride=st.integers(1, 2),
    dilation=st.integers(1, 2),
    activation=st.sampled_from([None, "relu", "relu6", "silu"]),
    nonfinite=st.booleans(),
    nthreads=st.integers(1, 2),
    seed=st.integers(0, 2**16),
)
def test_depthwise_small16_gives_the_flat_paths_bits(
    n, c, h, k, stride, dilation, activation, nonfinite, nthreads, seed
):
    """The 16-channels-in-lanes kernel for small planes (dw_small16_f32: pixel-major transposes,
    a zero-bordered buffer) sums in the flat path's order, so both give the same bits, NaN and
    inf in x included; an inf weight (which a padding tap must skip) sends its 16 channels to
    the flat path.  Modes: everywhere it runs (2), where it is chosen (1), never (0).  Both are
    checked against the float64 direct sum too."""
    pads = tuple(dilation * (kk - 1) // 2 for kk in k)
    if h + 2 * pads[0] < dilation * (k[0] - 1) + 1 or h + 2 * pads[1] < dilation * (k[1] - 1) + 1:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, h)).astype(np.float32)
    wt = rng.standard_normal((c, 1, *k)).astype(np.float32)
    _check_small16_modes(
        x, wt, stride, pads, dilation, activation, nonfinite, nthreads, rng, (2, 1, 0)
    )
