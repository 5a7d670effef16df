"""fastconv.grad: conv2d's gradients, conv_transpose2d and dynamic_conv2d's gradients.

References: torch autograd in float64 (hypothesis over every parameter), central finite
differences and the adjoint identity <conv2d(x), y> = <x, conv_transpose2d(y)> (no torch).
"""

import dataclasses
import tracemalloc
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv
from fastconv import _plan
from tests.conftest import BACKENDS
from tests.tolerance import assert_close, transform_scale

torch = pytest.importorskip("torch")
F = torch.nn.functional

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


@st.composite
def conv_cases(draw):
    """A conv2d call (shapes and arguments) whose output is non-empty, any padding form."""
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cg = draw(st.integers(1, 3))
    kg = draw(st.integers(1, 3))
    depthwise = draw(st.booleans()) and groups > 1
    if depthwise:
        cg = 1
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(
        st.one_of(
            st.integers(0, 3),
            st.tuples(st.integers(0, 3), st.integers(0, 2)),
            st.sampled_from(["same", "valid"]),
        )
    )
    if padding == "same":
        stride = 1
    else:
        stride = draw(st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 2))))
    H = draw(st.integers(dh * (kh - 1) + 1, dh * (kh - 1) + 9))
    W = draw(st.integers(dw * (kw - 1) + 1, dw * (kw - 1) + 9))
    N = draw(st.integers(1, 3))
    backend = draw(st.sampled_from(BACKENDS))
    return dict(
        x=(N, cg * groups, H, W),
        w=(kg * groups, cg, kh, kw),
        stride=stride,
        padding=padding,
        dilation=(dh, dw),
        groups=groups,
        backend=backend,
    )


def _torch_grads(x, w, go, stride, padding, dilation, groups):
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.zeros(w.shape[0], dtype=tx.dtype, requires_grad=True)
    y = F.conv2d(tx, tw, tb, stride, padding, dilation, groups)
    y.backward(torch.tensor(go))
    return tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()


def _out_shape(c):
    y = F.conv2d(
        torch.zeros(c["x"], dtype=torch.float64),
        torch.zeros(c["w"], dtype=torch.float64),
        None,
        c["stride"],
        c["padding"],
        c["dilation"],
        c["groups"],
    )
    return tuple(y.shape)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@SETTINGS
@given(c=conv_cases(), seed=st.integers(0, 2**16))
def test_backward_matches_torch_autograd(c, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(c["x"])
    w = rng.standard_normal(c["w"])
    go = rng.standard_normal(_out_shape(c))
    args = (c["stride"], c["padding"], c["dilation"], c["groups"])
    x0, w0, go0 = x.copy(), w.copy(), go.copy()
    gx, gw, gb = fastconv.conv2d_backward(x, w, go, *args, backend=c["backend"])
    rx, rw, rb = _torch_grads(x, w, go, *args)
    for a, r in ((gx, rx), (gw, rw), (gb, rb)):
        assert a.dtype == np.float64
        assert_close(a, r)
    # the torch.nn.grad-named functions agree with the combined call
    assert_close(fastconv.conv2d_input(x.shape, w, go, *args, backend=c["backend"]), rx)
    assert_close(fastconv.conv2d_weight(x, w.shape, go, *args, backend=c["backend"]), rw)
    np.testing.assert_array_equal(x, x0)  # inputs are never modified
    np.testing.assert_array_equal(w, w0)
    np.testing.assert_array_equal(go, go0)


@st.composite
def transpose_cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin_g, cout_g = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 2))
    oh = draw(st.integers(0, max(sh, dh) - 1))
    ow = draw(st.integers(0, max(sw, dw) - 1))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    H, W = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    Ho = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oh + 1
    Wo = (W - 1) * sw - 2 * pw + dw * (kw - 1) + ow + 1
    if Ho < 1 or Wo < 1:
        ph = pw = 0
    return dict(
        x=(draw(st.integers(1, 2)), cin_g * groups, H, W),
        w=(cin_g * groups, cout_g, kh, kw),
        stride=(sh, sw),
        padding=(ph, pw),
        output_padding=(oh, ow),
        groups=groups,
        dilation=(dh, dw),
        bias=draw(st.booleans()),
        backend=draw(st.sampled_from(BACKENDS)),
    )


@SETTINGS
@given(c=transpose_cases(), seed=st.integers(0, 2**16))
def test_conv_transpose2d_matches_torch(c, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(c["x"])
    w = rng.standard_normal(c["w"])
    b = rng.standard_normal(c["w"][1] * c["groups"]) if c["bias"] else None
    args = (c["stride"], c["padding"], c["output_padding"], c["groups"], c["dilation"])
    ref = F.conv_transpose2d(
        torch.tensor(x), torch.tensor(w), None if b is None else torch.tensor(b), *args
    ).numpy()
    out = fastconv.conv_transpose2d(x, w, b, *args, backend=c["backend"])
    assert out.dtype == np.float64
    assert_close(out, ref)


@pytest.mark.parametrize("backend", BACKENDS)
def test_float32_and_winograd_phases(backend):
    """float32 through the fast paths: 3x3 stride 1 with 32 channels runs Winograd on grad_x."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 32, 14, 14), dtype=np.float32)
    w = rng.standard_normal((32, 32, 3, 3), dtype=np.float32)
    go = rng.standard_normal((2, 32, 14, 14), dtype=np.float32)
    cost = fastconv.cost.conv2d_cost(x.shape, w.shape, padding=1, backend=backend, pass_="backward")
    gx, gw, gb = fastconv.conv2d_backward(x, w, go, padding=1, backend=backend)
    rx, rw, rb = _torch_grads(x, w, go, 1, 1, 1, 1)
    assert gx.dtype == gw.dtype == gb.dtype == np.float32
    scale = (
        transform_scale(go, np.swapaxes(w, 0, 1))
        if cost.grad_input_algorithm == "winograd"
        else None
    )
    assert_close(gx, rx, scale=scale)
    assert_close(gw, rw)
    assert_close(gb, rb)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "spec",
    [  # (x shape, w shape, stride, padding, dilation, groups): the routes the planner has
        ((2, 8, 9, 9), (6, 8, 1, 1), 1, 0, 1, 1),  # pointwise weight gradient
        ((2, 8, 9, 9), (8, 1, 3, 3), 2, 1, 1, 8),  # depthwise, strided
        ((1, 4, 40, 40), (4, 2, 3, 3), 1, 2, 2, 2),  # grouped, dilated
        ((1, 3, 23, 23), (8, 3, 7, 7), 2, 3, 1, 1),  # stem-like: 4 stride phases
    ],
)
def test_routes_float32(spec, backend):
    xs, ws, s, p, d, g = spec
    rng = np.random.default_rng(5)
    x = rng.standard_normal(xs, dtype=np.float32)
    w = rng.standard_normal(ws, dtype=np.float32)
    go = rng.standard_normal(
        tuple(F.conv2d(torch.tensor(x), torch.tensor(w), None, s, p, d, g).shape), dtype=np.float32
    )
    gx, gw, gb = fastconv.conv2d_backward(x, w, go, s, p, d, g, backend=backend)
    rx, rw, rb = _torch_grads(
        x.astype(np.float64), w.astype(np.float64), go.astype(np.float64), s, p, d, g
    )
    assert_close(gx, rx, np.float32)
    assert_close(gw, rw, np.float32)


def test_weight_gradient_row_bands():
    """A tile budget below one sample's columns: the weight gradient runs in bands of rows."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 17, 13))
    w = rng.standard_normal((4, 3, 3, 3))
    go = rng.standard_normal((2, 4, 9, 7))
    g = fastconv._geometry.backward_geometry(x.shape, w.shape, go.shape, 2, 1, 1, 1, np.dtype("f8"))
    plan = _plan._weight_grad_tiles_plan(
        g, _plan.resolve_backend("auto"), 1, tile_bytes=3 * 27 * 7 * 8 * 2
    )
    assert plan.method == "im2col" and plan.rows < g.Ho
    from fastconv.grad import _grad_weight

    assert_close(_grad_weight(plan, x, go, g), _torch_grads(x, w, go, 2, 1, 1, 1)[1])


# -- independent of torch ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "spec",
    [
        ((2, 3, 6, 7), (4, 3, 3, 2), (2, 1), (1, 0), (1, 2), 1),
        ((1, 4, 5, 5), (4, 2, 3, 3), 1, "same", 1, 2),
    ],
)
def test_finite_differences(spec, backend):
    """Central differences of L = sum(conv2d(x, w) * go) in float64 (no torch involved)."""
    xs, ws, s, p, d, g = spec
    rng = np.random.default_rng(11)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    b = rng.standard_normal(ws[0])
    go = rng.standard_normal(fastconv.conv2d(x, w, b, s, p, d, g).shape)

    def loss(x_, w_, b_):
        return float((fastconv.conv2d(x_, w_, b_, s, p, d, g, backend=backend) * go).sum())

    gx, gw, gb = fastconv.conv2d_backward(x, w, go, s, p, d, g, backend=backend)
    eps = 1e-6
    for arr, grad, pos in ((x, gx, 0), (w, gw, 1), (b, gb, 2)):
        for flat in rng.choice(arr.size, size=min(arr.size, 12), replace=False):
            idx = np.unravel_index(flat, arr.shape)
            args_p = [x.copy(), w.copy(), b.copy()]
            args_m = [x.copy(), w.copy(), b.copy()]
            args_p[pos][idx] += eps
            args_m[pos][idx] -= eps
            fd = (loss(*args_p) - loss(*args_m)) / (2 * eps)
            assert abs(fd - grad[idx]) <= 1e-6 * max(1.0, abs(fd)), (pos, idx, fd, grad[idx])


@pytest.mark.parametrize("backend", BACKENDS)
def test_adjoint_identity(backend):
    """<conv2d(x, w), y> = <x, conv_transpose2d(y, w)>: the transposed convolution is the adjoint."""
    rng = np.random.default_rng(2)
    for s, p, d, g, op in ((2, 1, 1, 1, 1), (3, 0, 2, 2, 0), (1, 2, 3, 1, 2)):
        w = rng.standard_normal((4, 6 // g, 3, 3)) if g > 1 else rng.standard_normal((4, 6, 3, 3))
        y = rng.standard_normal((2, 4, 5, 4))
        xt = fastconv.conv_transpose2d(y, w, None, s, p, op, g, d, backend=backend)
        x = rng.standard_normal(xt.shape)
        fx = fastconv.conv2d(x, w, None, s, p, d, g, backend=backend)
        yy = np.zeros_like(fx)  # output_padding can leave conv2d's output larger than y
        yy[:, :, : y.shape[2], : y.shape[3]] = y
        lhs, rhs = float((fx * yy).sum()), float((x * xt).sum())
        assert abs(lhs - rhs) <= 1e-10 * max(abs(lhs), 1.0)


# -- dynamic convolution ------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bias", [False, True])
def test_dynamic_backward_matches_torch(bias, backend):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, 7, 6))
    bank = rng.standard_normal((3, 6, 2, 3, 3))
    att = rng.standard_normal((3, 3))
    bb = rng.standard_normal((3, 6)) if bias else None
    tx, tb, ta = (torch.tensor(v, requires_grad=True) for v in (x, bank, att))
    tbb = torch.tensor(bb, requires_grad=True) if bias else None
    wn = torch.einsum("ne,ekcij->nkcij", ta, tb)
    outs = [
        F.conv2d(tx[n : n + 1], wn[n], None if tbb is None else ta[n] @ tbb, 2, 1, 1, 2)
        for n in range(3)
    ]
    y = torch.cat(outs)
    go = rng.standard_normal(tuple(y.shape))
    y.backward(torch.tensor(go))
    gx, gbank, gatt, gbias = fastconv.dynamic_conv2d_backward(
        x, bank, att, go, bb, 2, 1, 1, 2, backend=backend
    )
    assert_close(gx, tx.grad.numpy())
    assert_close(gbank, tb.grad.numpy())
    assert_close(gatt, ta.grad.numpy())
    if bias:
        assert_close(gbias, tbb.grad.numpy())
    else:
        assert gbias is None
    # the forward it differentiates is fastconv's own
    assert_close(fastconv.dynamic_conv2d(x, bank, att, bb, 2, 1, 1, 2), y.detach().numpy())


# -- NaN and inf --------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("where", ["x", "go"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nonfinite_propagate_like_torch(where, value, backend):
    """A NaN or inf inside the image lands where torch's autograd puts it (float64)."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 8, 8))
    w = rng.standard_normal((4, 3, 3, 3))
    go = rng.standard_normal((2, 4, 4, 4))
    if where == "x":
        x[1, 2, 3, 4] = value
    else:
        go[0, 1, 2, 1] = value
    gx, gw, gb = fastconv.conv2d_backward(x, w, go, 2, 1, backend=backend)
    rx, rw, rb = _torch_grads(x, w, go, 2, 1, 1, 1)
    assert_close(gx, rx)
    assert_close(gw, rw)
    assert_close(gb, rb)
    assert not np.isfinite(gw).all()


# -- validation ---------------------------------------------------------------------------------


def test_bad_arguments_name_the_argument():
    x = np.ones((1, 4, 5, 5))
    w = np.ones((6, 4, 3, 3))
    go = np.ones((1, 6, 3, 3))
    with pytest.raises(ValueError, match="grad_output"):
        fastconv.conv2d_backward(x, w, np.ones((1, 6, 4, 4)))
    with pytest.raises(ValueError, match="grad_output"):
        fastconv.conv2d_input((1, 4, 5, 5), w, go, padding=1)
    with pytest.raises(ValueError, match="groups"):
        fastconv.conv2d_weight(x, (6, 4, 3, 3), go, groups=4)
    with pytest.raises(TypeError, match="needs"):
        fastconv.conv2d_backward(x, w, go, needs=(1, 1, 1))
    with pytest.raises(TypeError, match="input_size"):
        fastconv.conv2d_input(5, w, go)
    with pytest.raises(TypeError, match="grad_output"):
        fastconv.conv2d_backward(x, w, np.ones((1, 6, 3, 3), dtype=complex))
    with pytest.raises(ValueError, match="pass_"):
        fastconv.cost.conv2d_cost(x.shape, w.shape, pass_="sideways")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(weight=np.ones((3, 2, 3, 3))), "channels"),
        (dict(output_padding=2, stride=2), "output_padding"),
        (dict(output_padding=1), "output_padding"),
        (dict(padding="same"), "padding"),
        (dict(groups=3), "groups"),
        (dict(groups=0), "groups"),
        (dict(padding=5), "too small"),
        (dict(bias=np.ones(3)), "bias"),
        (dict(stride=0), "stride"),
    ],
)
def test_conv_transpose2d_errors_like_torch(kwargs, match):
    """Each call torch refuses, fastconv refuses too, with an error that names the argument."""
    args = dict(x=np.ones((1, 4, 3, 3)), weight=np.ones((4, 2, 3, 3)))
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        fastconv.conv_transpose2d(**args)
    targs = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in args.items()}
    targs["input"] = targs.pop("x")
    with pytest.raises((RuntimeError, ValueError, TypeError)):
        F.conv_transpose2d(**targs)


def test_dynamic_backward_bad_grad_output():
    with pytest.raises(ValueError, match="grad_output"):
        fastconv.dynamic_conv2d_backward(
            np.ones((2, 1, 3, 3)), np.ones((2, 1, 1, 1, 1)), np.ones((2, 2)), np.ones((2, 1, 2, 3))
        )


# -- cost and memory ------------------------------------------------------------------------------


def test_backward_cost_counts():
    c = fastconv.cost.conv2d_cost((4, 6, 10, 9), (8, 3, 3, 2), 2, 1, 1, 2, pass_="backward")
    Ho, Wo = (10 + 2 - 3) // 2 + 1, (9 + 2 - 2) // 2 + 1
    macs = 4 * 8 * Ho * Wo * 3 * 3 * 2
    assert c.grad_input_macs == c.grad_weight_macs == macs
    assert c.flops == 4 * macs + 4 * 8 * Ho * Wo
    assert c.saved_bytes == 4 * 6 * 10 * 9 * 4
    assert c.read_bytes == (4 * 6 * 10 * 9 + 8 * 3 * 3 * 2 + 4 * 8 * Ho * Wo) * 4


def test_backward_workspace_bounded():
    """tracemalloc: the backward pass allocates a bounded workspace, far below the im2col matrix."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 32, 40, 40), dtype=np.float32)
    w = rng.standard_normal((32, 32, 3, 3), dtype=np.float32)
    go = rng.standard_normal((32, 32, 40, 40), dtype=np.float32)
    fastconv.conv2d_backward(x, w, go, padding=1)
    _plan.free_scratch()  # the call's scratch is allocated, and counted, afresh
    tracemalloc.start()
    gx, gw, gb = fastconv.conv2d_backward(x, w, go, padding=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    cost = fastconv.cost.conv2d_cost(x.shape, w.shape, padding=1, pass_="backward")
    extra = peak - gx.nbytes - gw.nbytes - gb.nbytes
    assert extra <= 1.25 * max(cost.workspace_bytes, _plan.GRAD_WEIGHT_TILE_BYTES)
    assert extra < cost.im2col_bytes / 2


@pytest.mark.slow
@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    c=st.tuples(
        st.sampled_from([16, 32, 64]),  # channels: Winograd and the packed kernel apply
        st.sampled_from([1, 3]),
        st.sampled_from([1, 2]),
        st.sampled_from([1, 2]),
        st.sampled_from([1, 2, 16]),
        st.sampled_from(BACKENDS),
    ),
    seed=st.integers(0, 2**16),
)
def test_backward_float32_fast_paths_slow(c, seed):
    """float32 on shapes that reach the fast kernels (Winograd, packed, grouped, GEMM + col2im)."""
    ch, k, s, d, groups, backend = c
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, ch, 21, 19), dtype=np.float32)
    w = rng.standard_normal((ch, ch // groups, k, k), dtype=np.float32)
    p = d * (k - 1) // 2
    go = rng.standard_normal(
        tuple(F.conv2d(torch.tensor(x), torch.tensor(w), None, s, p, d, groups).shape),
        dtype=np.float32,
    )
    gx, gw, gb = fastconv.conv2d_backward(x, w, go, s, p, d, groups, backend=backend)
    x64, w64, go64 = (a.astype(np.float64) for a in (x, w, go))
    rx, rw, rb = _torch_grads(x64, w64, go64, s, p, d, groups)
    cost = fastconv.cost.conv2d_cost(
        x.shape, w.shape, s, p, d, groups, backend=backend, pass_="backward"
    )
    scale = (
        transform_scale(go, np.swapaxes(w, 0, 1))
        if cost.grad_input_algorithm == "winograd"
        else None
    )
    assert_close(gx, rx, np.float32, scale=scale)
    assert_close(gw, rw, np.float32)
    assert_close(gb, rb, np.float32)


@pytest.mark.parametrize("stride,dilation", [(1, 1), (2, 1), (1, 2)])
@pytest.mark.parametrize("where", ["nowhere", "x", "go", "go_corner"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_weight_gradient_as_a_packed_convolution(stride, dilation, where, value):
    """float32 groups=1 layers where the packed kernel runs: the weight gradient is one convolution
    of x's channels with grad_output's (_plan._weight_grad_conv_plan), against torch's autograd
    in float64 on the same data, NaN and inf included: in x the convolution puts them where
    torch does; in grad_output (a corner meets padding, where torch's 0 x inf makes NaN) the
    plan's im2col fallback runs."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 16, 13, 11), dtype=np.float32)
    w = rng.standard_normal((24, 16, 3, 3), dtype=np.float32)
    p = dilation
    ho = (13 + 2 * p - dilation * 2 - 1) // stride + 1
    wo = (11 + 2 * p - dilation * 2 - 1) // stride + 1
    go = rng.standard_normal((3, 24, ho, wo), dtype=np.float32)
    if where == "x":
        x[1, 5, 6, 4] = value
    elif where == "nowhere":
        pass
    elif where == "go":
        go[2, 3, 2, 1] = value
    else:
        go[0, 7, 0, 0] = value
    g = fastconv._geometry.backward_geometry(
        x.shape, w.shape, go.shape, stride, p, dilation, 1, np.dtype("f4")
    )
    if _plan._wgrad_direct_wins(g, _plan.resolve_backend("auto")):
        assert _plan.plan_conv2d_weight(g).method == "direct"
    elif _plan.ALGORITHMS["packed"].applies(g, _plan.resolve_backend("auto"), False):
        assert _plan.plan_conv2d_weight(g).method == "conv"
    gw = fastconv.conv2d_weight(x, w.shape, go, stride, p, dilation)
    _, rw, _ = _torch_grads(
        x.astype(np.float64), w.astype(np.float64), go.astype(np.float64), stride, p, dilation, 1
    )
    assert gw.dtype == np.float32
    assert_close(gw, rw, np.float32)
    assert (np.isnan(gw) == np.isnan(rw)).all() and (np.isinf(gw) == np.isinf(rw)).all()
    assert np.isfinite(gw).all() == (where == "nowhere")


@pytest.mark.parametrize(
    "xs,ws,s,p,op",
    [
        ((2, 16, 12, 12), (16, 24, 4, 4), 2, 1, 0),  # DCGAN-style 4x4 stride 2
        ((1, 32, 14, 14), (32, 16, 2, 2), 2, 0, 0),  # U-Net up-convolution
        ((2, 16, 10, 9), (16, 8, 3, 3), 2, 1, 1),
        ((1, 16, 9, 9), (16, 16, 3, 3), 3, 1, 2),
    ],
)
@pytest.mark.parametrize("value", [None, np.nan, np.inf])
@pytest.mark.parametrize("backend", BACKENDS)
def test_strided_transpose_as_phases_matches_torch(xs, ws, s, p, op, value, backend):
    """float32 strided transposed convolutions with large enough phases run as stride phases on
    the forward kernels (_plan._strided_phases_win): torch's float64 result on the same data,
    NaN and inf in x (a corner too) and in the weight landing where torch puts them."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(xs, dtype=np.float32)
    w = rng.standard_normal(ws, dtype=np.float32)
    if value is not None:
        x[0, 3, 0, 0] = value
        x[-1, 5, 4, 3] = value
        w[2, 1, 0, 0] = value
    g, Hin, Win = fastconv._geometry.transpose_geometry(
        x.shape, w.shape, s, p, op, 1, 1, np.dtype("f4")
    )
    plan = _plan.plan_conv_transpose(g, Hin, Win, backend)
    if _plan.ALGORITHMS["packed"].applies(g, _plan.resolve_backend(backend), False):
        assert plan.phases and len(plan.phases) == s * s
    y = fastconv.conv_transpose2d(x, w, None, s, p, op, backend=backend)
    r = F.conv_transpose2d(
        torch.tensor(x.astype(np.float64)), torch.tensor(w.astype(np.float64)), None, s, p, op
    ).numpy()
    assert y.dtype == np.float32
    assert_close(y, r, np.float32)
    assert (np.isnan(y) == np.isnan(r)).all() and (np.isinf(y) == np.isinf(r)).all()


def _weight_grad_loop(x, go, stride, padding, dilation, kh, kw):
    """The weight gradient of a groups-1 conv2d as a float64 NumPy loop over taps (its own
    sizes from the arguments; no fastconv code): dW[k, c, i, j] = sum go[n, k] x_pad[n, c, ...]."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    x = np.asarray(x, np.float64)
    go = np.asarray(go, np.float64)
    N, C, H, W = x.shape
    Ho, Wo = go.shape[2], go.shape[3]
    xp = np.zeros((N, C, H + 2 * ph + sh * Wo + kh * dh, W + 2 * pw + sw * Wo + kw * dw))
    xp[:, :, ph : ph + H, pw : pw + W] = x
    dw_ = np.zeros((go.shape[1], C, kh, kw))
    with np.errstate(all="ignore"):
        for i in range(kh):
            for j in range(kw):
                xs = xp[:, :, i * dh : i * dh + sh * Ho : sh, j * dw : j * dw + sw * Wo : sw]
                dw_[:, :, i, j] = np.einsum("nkhw,nchw->kc", go, xs[:, :, :Ho, :Wo])
    return dw_


@st.composite
def direct_cases(draw):
    """A groups-1 layer for the direct weight gradient: channel counts across the vector-block
    edges (16 and 64 lanes of float32, 8 and 32 of float64), any stride, dilation and padding,
    and a strip budget small enough that tasks split rows and columns."""
    K = draw(st.sampled_from([1, 3, 16, 17, 40, 64, 65, 100]))
    C = draw(st.integers(1, 5))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    H = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), dh * (kh - 1) + 12))
    W = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), dw * (kw - 1) + 12))
    return dict(
        N=draw(st.integers(1, 3)),
        C=C,
        H=H,
        W=W,
        K=K,
        kh=kh,
        kw=kw,
        stride=(sh, sw),
        padding=(ph, pw),
        dilation=(dh, dw),
        strip=draw(st.sampled_from([64, 1024, 4096, 36 * 1024])),
        nthreads=draw(st.integers(1, 3)),
        ksplit=draw(st.sampled_from([None, False, True])),
        nonfinite=draw(st.sampled_from([None, "x", "go", "go_corner"])),
    )


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=25, deadline=None, derandomize=True)
@given(c=direct_cases(), seed=st.integers(0, 2**16))
def test_direct_weight_gradient_matches_a_loop(backend, dtype, c, seed):
    """The direct weight gradient (_plan._weight_grad_direct_plan, forced on both backends and
    any strip budget, so tasks of whole samples, of rows and of a row's columns all run, the
    threads sharing the tasks or the output channels) against
    a float64 NumPy loop; NaN and inf from x or grad_output (a corner that meets the padding
    too) land where the loop puts them, as im2col's GEMM and torch put them."""
    from fastconv.grad import _grad_weight

    rng = np.random.default_rng(seed)
    (sh, sw), (ph, pw), (dh, dw) = c["stride"], c["padding"], c["dilation"]
    Ho = (c["H"] + 2 * ph - dh * (c["kh"] - 1) - 1) // sh + 1
    Wo = (c["W"] + 2 * pw - dw * (c["kw"] - 1) - 1) // sw + 1
    x = rng.standard_normal((c["N"], c["C"], c["H"], c["W"])).astype(dtype)
    go = rng.standard_normal((c["N"], c["K"], Ho, Wo)).astype(dtype)
    if c["nonfinite"] == "x":
        x[0, rng.integers(c["C"]), rng.integers(c["H"]), rng.integers(c["W"])] = np.inf
    elif c["nonfinite"] == "go":
        go[-1, rng.integers(c["K"]), rng.integers(Ho), rng.integers(Wo)] = np.nan
    elif c["nonfinite"] == "go_corner":
        go[0, 0, 0, 0] = -np.inf
    x0, go0 = x.copy(), go.copy()
    g = fastconv._geometry.backward_geometry(
        x.shape,
        (c["K"], c["C"], c["kh"], c["kw"]),
        go.shape,
        c["stride"],
        c["padding"],
        c["dilation"],
        1,
        np.dtype(dtype),
    )
    saved = _plan.WGRAD_STRIP_BYTES
    try:
        _plan.WGRAD_STRIP_BYTES = c["strip"]
        plan = _plan._weight_grad_direct_plan(g, backend, c["nthreads"], ksplit=c["ksplit"])
    finally:
        _plan.WGRAD_STRIP_BYTES = saved
    assert plan.method == "direct" and plan.nthreads <= c["nthreads"]
    got = _grad_weight(plan, x, go, g)
    ref = _weight_grad_loop(x, go, c["stride"], c["padding"], c["dilation"], c["kh"], c["kw"])
    assert got.dtype == dtype and got.shape == ref.shape
    assert (np.isnan(got) == np.isnan(ref)).all()
    assert (np.isposinf(got) == np.isposinf(ref)).all()
    assert (np.isneginf(got) == np.isneginf(ref)).all()
    fin = np.isfinite(ref)
    assert_close(np.where(fin, got, 0), np.where(fin, ref, 0), dtype)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(go, go0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_direct_weight_gradient_is_deterministic(backend):
    """Tasks run in a fixed order per thread: the same bits on every call."""
    from fastconv.grad import _grad_weight

    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 8, 19, 23), dtype=np.float32)
    go = rng.standard_normal((2, 70, 19, 23), dtype=np.float32)
    g = fastconv._geometry.backward_geometry(
        x.shape, (70, 8, 3, 3), go.shape, 1, 1, 1, 1, np.dtype("f4")
    )
    for ksplit in (False, True):
        plan = _plan._weight_grad_direct_plan(g, backend, 2, ksplit=ksplit)
        first = _grad_weight(plan, x, go, g)
        for _ in range(3):
            np.testing.assert_array_equal(_grad_weight(plan, x, go, g), first)


def _depthwise_weight_grad_loop(x, go, mult, stride, padding, dilation, kh, kw):
    """The depthwise weight gradient as a float64 NumPy loop over taps, in-image taps only (as
    torch's depthwise kernel sums): dW[k, 0, i, j] = sum of go[n, k] x[n, k // mult] at tap (i, j)."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    x = np.asarray(x, np.float64)
    go = np.asarray(go, np.float64)
    N, C, H, W = x.shape
    K, Ho, Wo = go.shape[1], go.shape[2], go.shape[3]
    out = np.zeros((K, 1, kh, kw))
    with np.errstate(all="ignore"):
        for i in range(kh):
            hi = np.arange(Ho) * sh + i * dh - ph
            rows = (hi >= 0) & (hi < H)
            for j in range(kw):
                wi = np.arange(Wo) * sw + j * dw - pw
                cols = (wi >= 0) & (wi < W)
                xs = x[:, :, np.clip(hi, 0, H - 1)][:, :, :, np.clip(wi, 0, W - 1)]
                xs = np.repeat(xs, mult, axis=1)
                prod = np.where(rows[:, None] & cols[None, :], go * xs, 0.0)
                out[:, 0, i, j] = prod.sum(axis=(0, 2, 3))
    return out


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("taps", [(3, 3), (5, 5), (1, 1), (2, 3), (7, 7), (3, 9)])
@settings(max_examples=15, deadline=None, derandomize=True)
@given(
    C=st.integers(2, 20),
    mult=st.integers(1, 2),
    sh=st.integers(1, 3),
    sw=st.sampled_from([1, 1, 2]),
    dh=st.integers(1, 3),
    dw=st.integers(1, 3),
    ph=st.integers(0, 3),
    pw=st.integers(0, 3),
    extra=st.tuples(st.integers(0, 12), st.integers(0, 40)),
    N=st.integers(1, 3),
    nonfinite=st.sampled_from([None, "x", "go", "go_corner"]),
    seed=st.integers(0, 2**16),
)
def test_depthwise_weight_gradient_float32_matches_a_loop(
    C, mult, taps, sh, sw, dh, dw, ph, pw, extra, N, nonfinite, backend, seed
):
    """float32 depthwise weight gradients (the AVX-512 kernels for column stride 1 and 3x3, 5x5
    or any other size; the scalar one otherwise) against an in-image-taps float64 loop: rows
    wider than 16 lanes and ragged, dilation, row strides, padding wider than the taps reach;
    NaN and inf land where the loop puts them."""
    kh, kw = taps
    H = max(1, dh * (kh - 1) + 1 - 2 * ph) + extra[0]
    W = max(1, dw * (kw - 1) + 1 - 2 * pw) + extra[1]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = np.ones((C * mult, 1, kh, kw), np.float32)
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    go = rng.standard_normal((N, C * mult, Ho, Wo)).astype(np.float32)
    if nonfinite == "x":
        x[0, rng.integers(C), rng.integers(H), rng.integers(W)] = np.inf
    elif nonfinite == "go":
        go[-1, rng.integers(C * mult), rng.integers(Ho), rng.integers(Wo)] = np.nan
    elif nonfinite == "go_corner":
        go[0, 0, 0, 0] = -np.inf
    got = fastconv.conv2d_weight(
        x, w.shape, go, (sh, sw), (ph, pw), (dh, dw), groups=C, backend=backend
    )
    ref = _depthwise_weight_grad_loop(x, go, mult, (sh, sw), (ph, pw), (dh, dw), kh, kw)
    assert got.dtype == np.float32
    assert (np.isnan(got) == np.isnan(ref)).all()
    assert (np.isposinf(got) == np.isposinf(ref)).all()
    assert (np.isneginf(got) == np.isneginf(ref)).all()
    fin = np.isfinite(ref)
    assert_close(np.where(fin, got, 0), np.where(fin, ref, 0), np.float32)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("taps", [(3, 3), (4, 4), (17, 18), (33, 32)])
@pytest.mark.parametrize("groups", [1, 2])
def test_phase_weight_matches_numpy_indexing(backend, taps, groups):
    """The transposed convolution's phase weights (grad._phase_weights, one kernel pass in both
    backends for all phases) equal NumPy's indexing of the flipped view: every phase of stride 1,
    2 and 3, dead phases (no tap) among them, kernels beyond the kernel's 1024-tap offset table
    included."""
    from fastconv.grad import _flipped, _phase_weights

    kh, kw = taps
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6 * groups, 5, kh, kw)).astype(np.float32)
    g = fastconv._geometry.backward_geometry(
        (2, 5 * groups, 40, 40),
        w.shape,
        (2, 6 * groups, 40 - kh + 1, 40 - kw + 1),
        1,
        0,
        1,
        groups,
        np.dtype("f4"),
    )
    wt = _flipped(w, g)
    for s in (1, 2, 3, kh + 1):  # stride kh + 1: phases no tap reaches
        phases = []
        for r in range(s):
            for c in range(s):
                rows = tuple(range(kh - 1 - r, -1, -s))
                cols = tuple(range(kw - 1 - c, -1, -s))
                live = bool(rows) and bool(cols)
                phases.append(type("Phase", (), {"rows": rows, "cols": cols, "geom": live or None}))
        got = _phase_weights(wt, phases, backend)
        for ph, gw in zip(phases, got):
            if ph.geom is None:
                assert gw is None
                continue
            ref = wt[:, :, list(ph.rows)][:, :, :, list(ph.cols)]
            assert gw.flags.c_contiguous
            np.testing.assert_array_equal(gw.reshape(ref.shape), ref)


def test_direct_weight_gradient_parts_stay_bounded():
    """A wide layer's dW parts (one per thread) would exceed the workspace bound: the plan keeps
    one part and splits its output channels between the threads instead (or runs one thread)."""
    g = fastconv._geometry.backward_geometry(
        (2, 1024, 9, 9), (2048, 1024, 3, 3), (2, 2048, 7, 7), 1, 0, 1, 1, np.dtype("f4")
    )
    for nt in (2, 3, 8):
        plan = _plan._weight_grad_direct_plan(g, _plan.resolve_backend("auto"), nt)
        parts = 1 if plan.ksplit else plan.nthreads
        assert parts * 1024 * 9 * 2048 * 4 <= max(_plan.WORKSPACE_BYTES, 1024 * 9 * 2048 * 4)
        assert plan.nthreads == nt or not plan.ksplit
    small = fastconv._geometry.backward_geometry(
        (8, 64, 30, 30), (64, 64, 3, 3), (8, 64, 28, 28), 1, 0, 1, 1, np.dtype("f4")
    )
    assert not _plan._weight_grad_direct_plan(small, "numba", 2).ksplit


@pytest.mark.skipif(not _plan.cython_available("packed"), reason="the Cython packed kernel")
@pytest.mark.parametrize(
    "C,Kg,kh,kw,s",
    [
        (128, 16, 4, 4, 2),  # DCGAN: four 2x2 phases, the AVX-512 transposing pass
        (21, 5, 3, 3, 2),  # phases of 4, 2, 2 and 1 taps; channels past 16 and 8
        (9, 3, 5, 5, 3),  # 25 taps: the scalar loop
        (8, 7, 2, 2, 2),  # one m-block (its pair past the end)
        (40, 6, 4, 4, 1),  # stride 1: one phase of 16 taps
    ],
)
def test_phase_panels_equal_packing_the_phase_weights(C, Kg, kh, kw, s):
    """packed_phase_panels (the weight panels of every phase straight from the flipped view, one
    pass) writes exactly what packed_prepack makes of each phase's gathered weight, and declines
    (None) when a weight is not finite."""
    from fastconv._ext import packed
    from fastconv.grad import _flipped, _phase_weights

    rng = np.random.default_rng(5)
    w = rng.standard_normal((Kg, C, kh, kw)).astype(np.float32)  # conv2d's weight (K, Cg, ..)
    g = fastconv._geometry.backward_geometry(
        (2, C, 12, 12), w.shape, (2, Kg, 12 - kh + 1, 12 - kw + 1), 1, 0, 1, 1, np.dtype("f4")
    )
    wt = _flipped(w, g)
    phases = []
    for r in range(s):
        for c in range(s):
            rows = tuple(range(kh - 1 - r, -1, -s))
            cols = tuple(range(kw - 1 - c, -1, -s))
            sub = dataclasses.replace(
                g,
                C=Kg,
                K=C,
                kh=len(rows),
                kw=len(cols),
                H=20 + len(rows) - 1,  # 2 x 20 x 20 pixels: not K-lanes mode
                W=20 + len(cols) - 1,
                Ho=20,
                Wo=20,
                pt=0,
                pb=0,
                pl=0,
                pr=0,
                sh=1,
                sw=1,
                dh=1,
                dw=1,
            )
            plan = _plan.plan_conv2d(sub, "cython", 1, algorithm="packed")
            phases.append(types.SimpleNamespace(rows=rows, cols=cols, geom=sub, plan=plan))
    for nt in (1, 2):
        got = _plan.packed_phase_panels(phases, wt, "cython", nt)
        assert got is not None
        for ph, pw, pan in zip(phases, _phase_weights(wt, phases, "cython"), got):
            geo = ph.geom.as_array()
            ref = np.empty(packed.packed_prepack_size(geo), np.float32)
            packed.packed_prepack(
                np.ascontiguousarray(pw).reshape(C, Kg, len(ph.rows), -1), geo, ref
            )
            np.testing.assert_array_equal(pan, ref)
    w[1, 2, 0, 0] = np.nan
    assert _plan.packed_phase_panels(phases, _flipped(w, g), "cython", 2) is None
