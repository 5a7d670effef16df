"""Tests of fastconv.algebra against an independent float64 NumPy sequence of layers.

The reference applies each layer by explicit zero padding and one strided slice per tap, sharing no
code with fastconv; torch is used only where importable, for avg-pool semantics.
"""

import math

import numpy as np
import pytest
import scipy.signal
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tolerance import assert_close

import fastconv
from fastconv import _separable
from fastconv.algebra import CompositionError, Conv2d


# -- independent reference ----------------------------------------------------------------------
def ref_layer(layer, x):
    """One layer in float64: explicit zero padding, then one strided slice and einsum per tap."""
    x = np.asarray(x, dtype=np.float64)
    pt, pb, pl, pr = layer.padding
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    w = np.asarray(layer.weight, dtype=np.float64)
    K, Cg, kh, kw = w.shape
    g = layer.groups
    (sh, sw), (dh, dw) = layer.stride, layer.dilation
    N, C, H, W = xp.shape
    Ho = (H - dh * (kh - 1) - 1) // sh + 1
    Wo = (W - dw * (kw - 1) - 1) // sw + 1
    assert Ho >= 1 and Wo >= 1
    out = np.zeros((N, g, K // g, Ho, Wo))
    wg = w.reshape(g, K // g, Cg, kh, kw)
    for i in range(kh):
        for j in range(kw):
            win = xp[
                :,
                :,
                i * dh : i * dh + sh * (Ho - 1) + 1 : sh,
                j * dw : j * dw + sw * (Wo - 1) + 1 : sw,
            ]
            out += np.einsum("gkc,ngchw->ngkhw", wg[..., i, j], win.reshape(N, g, Cg, Ho, Wo))
    out = out.reshape(N, K, Ho, Wo)
    if layer.bias is not None:
        out += np.asarray(layer.bias, dtype=np.float64)[:, None, None]
    return out


def ref_sequence(layers, x):
    for layer in layers:
        x = ref_layer(layer, x)
    return x


def valid_size(layers, axis):
    """The smallest input length the whole sequence accepts along `axis`."""
    for n in range(1, 10_000):
        m = n
        for L in layers:
            pt, pb = L.padding[2 * axis : 2 * axis + 2]
            e = L.receptive_field[axis]
            if m + pt + pb < e:
                break
            m = (m + pt + pb - e) // L.stride[axis] + 1
        else:
            return n
    raise AssertionError("no valid size")


# -- random chains ----------------------------------------------------------------------------
@st.composite
def layer_chains(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_layers = draw(st.integers(2, 4))
    chans = [draw(st.sampled_from([1, 2, 3, 4, 6]))]
    layers = []
    stride_product = 1
    for _ in range(n_layers):
        cin = chans[-1]
        cout = draw(st.sampled_from([1, 2, 3, 4, 6]))
        common = math.gcd(cin, cout)
        groups = draw(st.sampled_from([d for d in range(1, common + 1) if common % d == 0]))
        kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        stride = (draw(st.sampled_from([1, 1, 2])), draw(st.sampled_from([1, 1, 2])))
        if stride_product * max(stride) > 8:
            stride = (1, 1)
        stride_product *= max(stride)
        dilation = (draw(st.sampled_from([1, 1, 2])), draw(st.sampled_from([1, 1, 2])))
        kind = draw(st.sampled_from(["zero", "zero", "int", "sides", "same", "full"]))
        if kind == "zero":
            padding = 0
        elif kind == "int":
            padding = draw(st.integers(1, 2))
        elif kind == "sides":
            padding = tuple(draw(st.integers(0, 2)) for _ in range(4))
        elif kind == "same" and stride == (1, 1):
            padding = "same"
        else:  # "full": every window of a virtual output lies outside the input
            padding = (dilation[0] * (kh - 1), dilation[1] * (kw - 1))
        w = rng.standard_normal((cout, cin // groups, kh, kw))
        if draw(st.booleans()) and kh > 1:
            w[:, :, 0, :] = 0.0  # a sparse border row: exactness must look at non-zero taps
        bias_kind = draw(st.sampled_from(["none", "none", "random", "zeros"]))
        bias = {"none": None, "random": rng.standard_normal(cout), "zeros": np.zeros(cout)}[
            bias_kind
        ]
        layers.append(Conv2d(w, bias, stride, padding, dilation, groups))
        chans.append(cout)
    return layers


def _no_bias(layers):
    return [Conv2d(L.weight, None, L.stride, L.padding, L.dilation, L.groups) for L in layers]


def _channel_max_diff(a, b):
    """max |a - b| over batch and channels, per output position."""
    return np.abs(a - b).max(axis=(0, 1))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(layers=layer_chains())
def test_random_chains_exact_or_refused_with_counterexample(layers):
    rng = np.random.default_rng(1234)
    C = layers[0].in_channels
    H0, W0 = valid_size(layers, 0), valid_size(layers, 1)
    try:
        comp = fastconv.compose(*layers)
    except CompositionError as err:
        event(f"refused: {' + '.join(sorted(err.reasons))}")
        _check_refusal(layers, err, rng)
        return
    event("exact")
    for H, W in ((H0, W0), (H0 + 5, W0 + 3)):
        x = rng.standard_normal((2, C, H, W))
        ref = ref_sequence(layers, x)
        assert comp.output_shape(x.shape) == ref.shape
        assert_close(ref_layer(comp, x), ref, np.float64)  # the algebra, reference arithmetic
        got = comp(x)  # the same layer through fastconv.conv2d
        assert got.dtype == np.float64
        assert_close(got, ref, np.float64)
    naive, region = fastconv.compose(*layers, exact=False)
    assert (region.top, region.bottom, region.left, region.right) == (0, 0, 0, 0)
    assert region.mask(H0, W0).all()


def _check_refusal(layers, err, rng):
    assert isinstance(err, ValueError)
    k = err.layer
    assert 1 <= k < len(layers)
    assert err.reasons and err.reasons <= {"window", "bias", "size"}
    assert f"layer {k}" in str(err) or f"layers 0..{k}" in str(err)
    prefix = layers[: k + 1]
    if k > 1:  # the layers before the failing one do compose exactly
        fastconv.compose(*prefix[:-1])
    if "size" in err.reasons:
        _check_size_refusal(prefix)
        if err.reasons == {"size"}:
            return
    naive, region = fastconv.compose(*prefix, exact=False)
    C = prefix[0].in_channels
    H0, W0 = valid_size(prefix, 0), valid_size(prefix, 1)
    sizes = [(H0 + d, W0 + d) for d in range(0, 24)]
    bad_size = next(((H, W) for H, W in sizes if not region.mask(H, W).all()), None)
    assert bad_size is not None, "refused, yet the region is exact at every size tried"
    H, W = bad_size
    mask = region.mask(H, W)
    x = rng.standard_normal((2, C, H, W))
    ref = ref_sequence(prefix, x)
    out = ref_layer(naive, x)
    assert out.shape == ref.shape and mask.shape == ref.shape[-2:]
    rs, cs = region.slices(H, W)  # the per-axis region is the safe, rectangular part of the mask
    assert mask[rs, cs].all()
    scale = max(1.0, float(np.abs(ref).max()))
    diff = _channel_max_diff(out, ref)
    # exact where the region says so, and a counter-example everywhere else
    assert diff[mask].max(initial=0.0) <= 1e-10 * scale
    assert (diff[~mask] > 1e-8 * scale).all()
    # the reason is the right one: the bias alone (x = 0) shows "bias" ...
    zero = np.zeros_like(x)
    bias_diff = np.abs(ref_layer(naive, zero) - ref_sequence(prefix, zero)).max()
    if "bias" in err.reasons:
        hit = [
            np.abs(ref_layer(naive, z) - ref_sequence(prefix, z)).max() > 1e-10
            for z in (np.zeros((1, C, h, w)) for h, w in sizes)
        ]
        assert any(hit)
    else:
        assert bias_diff <= 1e-10 * scale
    # ... and without biases only the window remains
    plain = _no_bias(prefix)
    if "window" in err.reasons:
        with pytest.raises(CompositionError) as again:
            fastconv.compose(*plain)
        assert again.value.reasons - {"size"} == {"window"}
        naive0, region0 = fastconv.compose(*plain, exact=False)
        H, W = next((h, w) for h, w in sizes if not region0.mask(h, w).all())
        x0 = rng.standard_normal((1, C, H, W))
        ref0 = ref_sequence(plain, x0)
        d0 = _channel_max_diff(ref_layer(naive0, x0), ref0)
        m0 = region0.mask(H, W)
        scale = max(1.0, float(np.abs(ref0).max()))
        assert d0[m0].max(initial=0.0) <= 1e-10 * scale
        assert (d0[~m0] > 1e-8 * scale).all()
    else:
        fastconv.compose(*plain)


def _accepts(layer, C, H, W):
    try:
        layer.output_shape((1, C, H, W))
    except ValueError:
        return False
    return True


def _check_size_refusal(prefix):
    """A "size" refusal: the naive layer accepts a smaller input than the sequence does."""
    naive, _ = fastconv.compose(*prefix, exact=False)
    C = prefix[0].in_channels
    H0, W0 = valid_size(prefix, 0), valid_size(prefix, 1)
    smaller = [(h, W0) for h in range(1, H0)] + [(H0, w) for w in range(1, W0)]
    assert any(_accepts(naive, C, h, w) for h, w in smaller)


@st.composite
def hostile_chains(draw):
    """Small chains where later layers may be padded beyond their extent, all-zero or sparse:
    the cases where one convolution could run on inputs the sequence rejects."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    layers = []
    for _ in range(draw(st.integers(2, 3))):
        kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        padding = tuple(draw(st.integers(0, 3)) for _ in range(4))
        w = rng.standard_normal((1, 1, kh, kw))
        kind = draw(st.sampled_from(["dense", "zero", "delta"]))
        if kind == "zero":
            w[:] = 0.0
        elif kind == "delta":
            w[:] = 0.0
            w[0, 0, draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1))] = 1.0
        layers.append(Conv2d(w, None, stride, padding, dilation))
    return layers


def _sequence_or_error(layers, x):
    try:
        return ref_sequence(layers, x)
    except AssertionError:  # ref_layer's own size check: the sequence rejects x
        return None


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
@given(layers=hostile_chains(), H=st.integers(1, 7), W=st.integers(1, 7))
def test_compose_accepts_exactly_the_inputs_the_sequence_accepts(layers, H, W):
    """compose(...)(x) raises iff applying the layers one by one raises, and equals it otherwise
    (issue 13: an all-zero later kernel with stride 2 and padding 2 accepted a 1x1 input)."""
    x = np.random.default_rng(0).standard_normal((1, 1, H, W))
    ref = _sequence_or_error(layers, x)
    try:
        comp = fastconv.compose(*layers)
    except CompositionError as err:
        event("refused: " + " + ".join(sorted(err.reasons)))
        naive, region = fastconv.compose(*layers, exact=False)
        if ref is None:  # the region refuses the sizes the sequence rejects
            with pytest.raises(ValueError):
                region.mask(H, W)
        return
    event("composed")
    if ref is None:
        with pytest.raises(ValueError):
            comp.output_shape(x.shape)
        with pytest.raises(ValueError):
            comp(x)
        return
    assert comp.output_shape(x.shape) == ref.shape
    assert_close(comp(x), ref, np.float64)


def test_compose_refuses_a_single_layer_that_accepts_smaller_inputs():
    a = Conv2d(np.ones((1, 1, 3, 3)))
    b = Conv2d(np.zeros((1, 1, 3, 3)), stride=2, padding=2)  # the fuzz's example
    with pytest.raises(ValueError):
        b(a(np.ones((1, 1, 1, 1))))
    with pytest.raises(CompositionError, match="rejects an input height below 3") as err:
        fastconv.compose(a, b)
    assert err.value.reasons == {"size"} and err.value.layer == 1
    naive, region = fastconv.compose(a, b, exact=False)
    with pytest.raises(ValueError, match="not defined"):
        region.mask(1, 1)
    assert region.mask(3, 3).all()


def test_region_slices_are_exact():
    rng = np.random.default_rng(1234)
    a = Conv2d(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3), stride=2)
    b = Conv2d(rng.standard_normal((4, 3, 3, 3)), padding=1)
    with pytest.raises(CompositionError) as err:
        fastconv.compose(a, b)
    assert err.value.reasons == {"window", "bias"}
    assert "padded" in str(err.value) and "exact=False" in str(err.value)
    layer, region = fastconv.compose(a, b, exact=False)
    for H, W in ((17, 20), (18, 21)):
        x = rng.standard_normal((1, 2, H, W))
        rs, cs = region.slices(H, W)
        ref = ref_sequence([a, b], x)
        assert_close(layer(x)[..., rs, cs], ref[..., rs, cs], np.float64)
        assert rs.start >= 1 and cs.start >= 1
        assert region.top >= rs.start and region.left >= cs.start


# -- documented exact families ------------------------------------------------------------------
def test_later_unpadded_always_exact():
    rng = np.random.default_rng(1234)
    a = Conv2d(rng.standard_normal((5, 3, 3, 2)), rng.standard_normal(5), 2, (1, 0, 2, 1), (2, 1))
    b = Conv2d(rng.standard_normal((4, 5, 2, 3)), rng.standard_normal(4), (1, 2), 0, (1, 2))
    comp = fastconv.compose(a, b)
    assert comp.stride == (2, 4)
    x = rng.standard_normal((2, 3, 23, 29))
    assert_close(comp(x), b(a(x)), np.float64)


def test_full_padded_earlier_without_bias_is_exact():
    rng = np.random.default_rng(1234)
    a = Conv2d(rng.standard_normal((4, 2, 3, 3)), None, stride=2, padding=2)
    b = Conv2d(rng.standard_normal((3, 4, 3, 3)), rng.standard_normal(3), padding=1)
    comp = fastconv.compose(a, b)
    assert comp.padding == (4, 4, 4, 4)
    for H in (11, 12, 13):
        x = rng.standard_normal((1, 2, H, H + 1))
        assert_close(comp(x), ref_sequence([a, b], x), np.float64)
    biased = Conv2d(a.weight, np.ones(4), stride=2, padding=2)
    with pytest.raises(CompositionError) as err:
        fastconv.compose(biased, b)
    assert err.value.reasons == {"bias"}
    assert "bias" in str(err.value)


def test_composed_bias_is_carried_by_the_later_kernel_sum():
    w1, b1 = np.ones((1, 1, 1, 1)), np.array([2.0])
    w2 = np.full((1, 1, 3, 3), 0.5)
    comp = fastconv.compose(Conv2d(w1, b1), Conv2d(w2, np.array([1.0])))
    assert comp.bias[0] == pytest.approx(1.0 + 2.0 * 4.5)


def test_stride_spreads_later_kernel_and_dilation_is_kept():
    a = Conv2d(np.ones((1, 1, 2, 2)), stride=2)
    b = Conv2d(np.ones((1, 1, 3, 3)), dilation=1)
    comp = fastconv.compose(a, b)
    # taps at 2*j + i cover 0..5 densely: a 6x6 box with stride 2*1
    assert comp.weight.shape == (1, 1, 6, 6) and comp.stride == (2, 2)
    assert np.all(comp.weight == 1.0)
    c = fastconv.compose(
        Conv2d(np.ones((1, 1, 3, 3)), dilation=2), Conv2d(np.ones((1, 1, 3, 3)), dilation=2)
    )
    assert c.dilation == (2, 2) and c.kernel_size == (5, 5)
    x = np.random.default_rng(1234).standard_normal((1, 1, 20, 20))
    assert_close(c(x), ref_sequence([Conv2d(np.ones((1, 1, 3, 3)), dilation=2)] * 2, x), np.float64)


# -- groups -------------------------------------------------------------------------------------
def test_groups_keep_gcd_and_detect_block_diagonal():
    rng = np.random.default_rng(1234)
    a = Conv2d(rng.standard_normal((8, 2, 3, 3)), groups=4)  # 8 -> 8, 4 groups
    b = Conv2d(rng.standard_normal((4, 4, 1, 1)), groups=2)  # 8 -> 4, 2 groups
    comp = fastconv.compose(a, b)
    assert comp.groups == 2 and comp.weight.shape == (4, 4, 3, 3)
    x = rng.standard_normal((1, 8, 9, 9))
    assert_close(comp(x), ref_sequence([a, b], x), np.float64)
    # depthwise then depthwise stays depthwise
    d1 = Conv2d(rng.standard_normal((6, 1, 3, 3)), groups=6)
    d2 = Conv2d(rng.standard_normal((6, 1, 3, 3)), groups=6)
    dd = fastconv.compose(d1, d2)
    assert dd.groups == 6 and dd.weight.shape == (6, 1, 5, 5)
    # a dense layer whose weights happen to be block-diagonal composes to the larger group count
    dense = np.zeros((6, 6, 1, 1))
    for blk in range(3):
        dense[2 * blk : 2 * blk + 2, 2 * blk : 2 * blk + 2] = rng.standard_normal((2, 2, 1, 1))
    e = fastconv.compose(d1, Conv2d(dense))
    assert e.groups == 3
    x = rng.standard_normal((1, 6, 8, 8))
    assert_close(e(x), ref_sequence([d1, Conv2d(dense)], x), np.float64)
    # groups that do not nest (2 then 3) expand to one dense block
    f = fastconv.compose(
        Conv2d(rng.standard_normal((6, 3, 1, 1)), groups=2),
        Conv2d(rng.standard_normal((6, 2, 1, 1)), groups=3),
    )
    assert f.groups == 1


# -- compose_kernels ----------------------------------------------------------------------------
@pytest.mark.parametrize("s1, s2", [((3, 3), (5, 5)), ((1, 4), (2, 1)), ((2, 3), (3, 2))])
def test_compose_kernels_matches_scipy_full_convolution(s1, s2):
    rng = np.random.default_rng(1234)
    k1 = rng.standard_normal((1, 1) + s1)
    k2 = rng.standard_normal((1, 1) + s2)
    k = fastconv.compose_kernels(k1, k2)
    assert k.shape == (1, 1, s1[0] + s2[0] - 1, s1[1] + s2[1] - 1)
    assert_close(k[0, 0], scipy.signal.convolve2d(k1[0, 0], k2[0, 0], mode="full"), np.float64)


def test_compose_kernels_full_padding_identity():
    rng = np.random.default_rng(1234)
    k1 = rng.standard_normal((3, 2, 3, 2))
    k2 = rng.standard_normal((4, 3, 2, 4))
    k = fastconv.compose_kernels(k1, k2)
    expect = sum(
        np.array(
            [[scipy.signal.convolve2d(k1[j, c], k2[m, j]) for c in range(2)] for m in range(4)]
        )
        for j in range(3)
    )
    assert_close(k, expect, np.float64)
    x = rng.standard_normal((2, 2, 9, 11))
    seq = fastconv.conv2d(fastconv.conv2d(x, k1, padding=(2, 1)), k2, padding=(1, 3))
    assert_close(fastconv.conv2d(x, k, padding=(3, 4)), seq, np.float64)


def test_compose_kernels_bad_input():
    with pytest.raises(ValueError, match="k2 takes 3 input channels"):
        fastconv.compose_kernels(np.ones((2, 1, 3, 3)), np.ones((1, 3, 3, 3)))
    with pytest.raises(ValueError, match="k1 must be a non-empty 4-D"):
        fastconv.compose_kernels(np.ones((3, 3)), np.ones((1, 1, 3, 3)))


# -- add, fuse_bn, identity, avgpool ------------------------------------------------------------
def _bn(y, gamma, beta, mean, var, eps=1e-5):
    s = (gamma / np.sqrt(var + eps))[:, None, None]
    return (y - mean[:, None, None]) * s + beta[:, None, None]


def test_repvgg_block_collapses_to_one_3x3():
    rng = np.random.default_rng(1234)
    C = 4

    def bn_params():
        return (
            rng.uniform(0.5, 2, C),
            rng.standard_normal(C),
            rng.standard_normal(C),
            rng.uniform(0.5, 2, C),
        )

    k3 = Conv2d(rng.standard_normal((C, C, 3, 3)), padding=1)
    k1 = Conv2d(rng.standard_normal((C, C, 1, 1)))
    ident = fastconv.identity_conv(C, 3)
    p3, p1, pi = bn_params(), bn_params(), bn_params()
    one = fastconv.add(
        fastconv.fuse_bn(k3, *p3), fastconv.fuse_bn(k1, *p1), fastconv.fuse_bn(ident, *pi)
    )
    assert one.kernel_size == (3, 3) and one.padding == (1, 1, 1, 1) and one.groups == 1
    x = rng.standard_normal((2, C, 10, 12))
    x_copy = x.copy()
    block = _bn(ref_layer(k3, x), *p3) + _bn(ref_layer(k1, x), *p1) + _bn(x, *pi)
    assert_close(one(x), block, np.float64)
    assert_close(ref_layer(one, x), block, np.float64)
    np.testing.assert_array_equal(x, x_copy)


def test_add_pads_smaller_kernels_about_the_centre_and_dilations():
    rng = np.random.default_rng(1234)
    a = Conv2d(rng.standard_normal((2, 3, 3, 3)), rng.standard_normal(2), padding=2, dilation=2)
    b = Conv2d(rng.standard_normal((2, 3, 3, 3)), rng.standard_normal(2), padding=1)
    c = Conv2d(rng.standard_normal((2, 3, 1, 1)))
    s = fastconv.add(a, b, c)
    assert s.kernel_size == (5, 5) and s.dilation == (1, 1)
    x = rng.standard_normal((1, 3, 8, 9))
    assert_close(s(x), ref_layer(a, x) + ref_layer(b, x) + ref_layer(c, x), np.float64)
    d = fastconv.add(a, Conv2d(rng.standard_normal((2, 3, 1, 1))))
    assert d.dilation == (2, 2) and d.kernel_size == (3, 3)
    # strided branches and grouped ones
    e = Conv2d(rng.standard_normal((4, 2, 3, 3)), stride=2, padding=1, groups=2)
    f = Conv2d(rng.standard_normal((4, 1, 1, 1)), stride=2, groups=4)
    g = fastconv.add(e, f)
    assert g.groups == 2
    x = rng.standard_normal((1, 4, 9, 10))
    assert_close(g(x), ref_layer(e, x) + ref_layer(f, x), np.float64)


def test_add_refusals_say_why():
    rng = np.random.default_rng(1234)
    a = Conv2d(rng.standard_normal((2, 3, 3, 3)), padding=1)
    with pytest.raises(ValueError, match="stride"):
        fastconv.add(a, Conv2d(rng.standard_normal((2, 3, 3, 3)), padding=1, stride=2))
    with pytest.raises(ValueError, match="different height"):
        fastconv.add(a, Conv2d(rng.standard_normal((2, 3, 1, 1)), padding=(1, 0)))
    with pytest.raises(ValueError, match="channels"):
        fastconv.add(a, Conv2d(rng.standard_normal((3, 3, 3, 3)), padding=1))
    with pytest.raises(TypeError, match="Conv2d"):
        fastconv.add(a, np.ones((2, 3, 3, 3)))


def test_fuse_bn_matches_explicit_batch_norm():
    rng = np.random.default_rng(1234)
    conv = Conv2d(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3), stride=2)
    p = (
        rng.uniform(0.5, 2, 3),
        rng.standard_normal(3),
        rng.standard_normal(3),
        rng.uniform(0.5, 2, 3),
    )
    fused = fastconv.fuse_bn(conv, *p, eps=1e-3)
    x = rng.standard_normal((2, 2, 11, 11))
    assert_close(fused(x), _bn(ref_layer(conv, x), *p, eps=1e-3), np.float64)
    with pytest.raises(ValueError, match="gamma must have shape"):
        fastconv.fuse_bn(conv, np.ones(2), *p[1:])
    with pytest.raises(ValueError, match="var"):
        fastconv.fuse_bn(conv, p[0], p[1], p[2], -np.ones(3), eps=0.0)


@pytest.mark.parametrize(
    "which,value,msg",
    [
        ("var", np.nan, "var must be finite"),
        ("var", np.inf, "var must be finite"),
        ("var", -0.5, "var must be non-negative"),
        ("mean", np.nan, "mean must be finite"),
        ("gamma", -np.inf, "gamma must be finite"),
        ("beta", np.nan, "beta must be finite"),
    ],
)
def test_fuse_bn_refuses_non_finite_statistics(which, value, msg):
    conv = Conv2d(np.ones((3, 2, 3, 3)))
    stats = dict(gamma=np.ones(3), beta=np.zeros(3), mean=np.zeros(3), var=np.ones(3))
    stats[which] = stats[which].copy()
    stats[which][1] = value
    before = {k: v.copy() for k, v in stats.items()}
    with pytest.raises(ValueError, match=msg):
        fastconv.fuse_bn(conv, **stats)
    for k in stats:
        np.testing.assert_array_equal(stats[k], before[k])  # inputs untouched


def test_fuse_bn_refuses_zero_variance_without_eps_and_bad_eps():
    conv = Conv2d(np.ones((2, 1, 1, 1)))
    args = (np.ones(2), np.zeros(2), np.zeros(2))
    with pytest.raises(ValueError, match="var \\+ eps must be positive"):
        fastconv.fuse_bn(conv, *args, np.array([1.0, 0.0]), eps=0.0)
    for eps in (-1e-5, np.nan, np.inf, True):
        with pytest.raises(ValueError, match="eps must be"):
            fastconv.fuse_bn(conv, *args, np.ones(2), eps=eps)
    assert np.isfinite(fastconv.fuse_bn(conv, *args, np.zeros(2)).weight).all()  # eps saves it


@pytest.mark.parametrize("k, groups", [(3, 1), (1, 2), ((2, 4), 4), (5, 4)])
def test_identity_conv(k, groups):
    x = np.random.default_rng(1234).standard_normal((2, 4, 7, 6))
    layer = fastconv.identity_conv(4, k, groups=groups)
    assert layer.groups == groups
    assert_close(layer(x), x, np.float64)
    assert_close(ref_layer(layer, x), x, np.float64)


def test_avgpool_conv():
    x = np.random.default_rng(1234).standard_normal((2, 3, 8, 9))
    layer = fastconv.avgpool_conv(3, 2)
    expect = x[:, :, :8, :8].reshape(2, 3, 4, 2, 4, 2).mean(axis=(3, 5))
    assert_close(layer(x), expect, np.float64)
    torch = pytest.importorskip("torch")
    for kw in ({"kernel_size": 3, "stride": 1, "padding": 1}, {"kernel_size": (2, 3)}):
        t = torch.nn.functional.avg_pool2d(torch.from_numpy(x), **kw).numpy()
        extra = {k: v for k, v in kw.items() if k != "kernel_size"}
        assert_close(fastconv.avgpool_conv(3, kw["kernel_size"], **extra)(x), t, np.float64)


def test_avgpool_then_conv_composes():
    rng = np.random.default_rng(1234)
    pool = fastconv.avgpool_conv(2, 2)
    conv = Conv2d(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3))
    comp = fastconv.compose(pool, conv)
    assert comp.stride == (2, 2) and comp.kernel_size == (6, 6)
    x = rng.standard_normal((1, 2, 20, 21))
    assert_close(comp(x), ref_sequence([pool, conv], x), np.float64)


# -- Conv2d ---------------------------------------------------------------------------------------
def test_conv2d_layer_is_immutable_and_describes_itself():
    w = np.ones((4, 3, 3, 5))
    layer = Conv2d(w, np.zeros(4), stride=2, padding="valid", dilation=(1, 2))
    with pytest.raises(AttributeError):
        layer.stride = 1
    with pytest.raises(ValueError):
        layer.weight[0, 0, 0, 0] = 2.0
    w[0, 0, 0, 0] = 5.0
    assert layer.weight[0, 0, 0, 0] == 1.0  # copied
    assert layer.receptive_field == (3, 9)
    assert layer.in_channels == 3 and layer.out_channels == 4
    assert layer.output_shape((2, 3, 20, 30)) == (2, 4, 9, 11)
    assert layer.output_shape((3, 20, 30)) == (4, 9, 11)
    with pytest.raises(ValueError, match="input channels"):
        layer.output_shape((2, 5, 20, 30))
    assert "Conv2d" in repr(layer)


def test_conv2d_layer_asymmetric_padding_and_dtype():
    rng = np.random.default_rng(1234)
    layer = Conv2d(rng.standard_normal((2, 3, 4, 2)), rng.standard_normal(2), padding="same")
    assert layer.padding == (1, 2, 0, 1)
    x = rng.standard_normal((1, 3, 7, 8))
    y = layer(x)
    assert y.shape == (1, 2, 7, 8)
    assert_close(y, ref_layer(layer, x), np.float64)
    y32 = layer(x.astype(np.float32))
    assert y32.dtype == np.float32
    assert_close(y32, ref_layer(layer, x), np.float32)
    side = Conv2d(rng.standard_normal((2, 3, 3, 3)), padding=(0, 2, 3, 1))
    x3 = rng.standard_normal((3, 6, 5))  # unbatched
    assert_close(side(x3), ref_layer(side, x3[None])[0], np.float64)


def test_conv2d_layer_bad_input():
    with pytest.raises(ValueError, match="weight must be 4-D"):
        Conv2d(np.ones((3, 3)))
    with pytest.raises(ValueError, match="bias must have shape"):
        Conv2d(np.ones((2, 1, 3, 3)), np.ones(3))
    with pytest.raises(ValueError, match="groups"):
        Conv2d(np.ones((3, 1, 3, 3)), groups=2)
    with pytest.raises(ValueError, match="same"):
        Conv2d(np.ones((2, 1, 3, 3)), stride=2, padding="same")
    with pytest.raises(ValueError, match="stride"):
        Conv2d(np.ones((2, 1, 3, 3)), stride=0)
    with pytest.raises(TypeError, match="weight"):
        Conv2d(np.array([["a"]]))


def test_compose_bad_input():
    a = Conv2d(np.ones((3, 2, 3, 3)))
    with pytest.raises(ValueError, match="channel counts do not chain"):
        fastconv.compose(a, Conv2d(np.ones((2, 4, 3, 3))))
    with pytest.raises(ValueError, match="layer 1 -> layer 2"):
        fastconv.compose(a, Conv2d(np.ones((3, 3, 1, 1))), Conv2d(np.ones((1, 2, 1, 1))))
    with pytest.raises(TypeError, match="Conv2d"):
        fastconv.compose(a, np.ones((2, 3, 3, 3)))


# -- separate -------------------------------------------------------------------------------------
def test_separate_is_exact_for_low_rank_and_shares_the_signal_split():
    rng = np.random.default_rng(1234)
    k = np.outer(rng.standard_normal(5), rng.standard_normal(3)) + np.outer(
        rng.standard_normal(5), rng.standard_normal(3)
    )
    cols, rows = fastconv.separate(k)
    assert cols.shape == (2, 5) and rows.shape == (2, 3)
    assert_close(cols.T @ rows, k, np.float64)
    c2, r2, _ = _separable.svd_separate(k)
    np.testing.assert_array_equal(cols, c2)
    np.testing.assert_array_equal(rows, r2)
    c1, r1 = fastconv.separate(k, rank=1)
    assert c1.shape == (1, 5)
    c32, _ = fastconv.separate(k.astype(np.float32))
    assert c32.dtype == np.float32


def test_separate_bad_input():
    with pytest.raises(ValueError, match="kernel2d must be a non-empty 2-D"):
        fastconv.separate(np.ones((2, 3, 3)))
    with pytest.raises(ValueError, match="rank must be at most"):
        fastconv.separate(np.ones((2, 3)), rank=3)
    with pytest.raises(ValueError, match="tol"):
        fastconv.separate(np.ones((2, 3)), tol=-1.0)


def test_float32_layers_compose_to_float32():
    rng = np.random.default_rng(1234)
    a = Conv2d(rng.standard_normal((6, 2, 3, 3)).astype(np.float32), np.ones(6, np.float32))
    b = Conv2d(rng.standard_normal((3, 6, 3, 3)).astype(np.float32), stride=2)
    comp = fastconv.compose(a, b)
    assert comp.dtype == np.float32 and comp.bias.dtype == np.float32
    x = rng.standard_normal((2, 2, 15, 16)).astype(np.float32)
    x_copy = x.copy()
    y = comp(x)
    assert y.dtype == np.float32
    assert_close(y, ref_sequence([a, b], x), np.float32)
    np.testing.assert_array_equal(x, x_copy)


def test_repvgg_against_torch_modules():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    C = 8
    conv3 = torch.nn.Conv2d(C, C, 3, padding=1, bias=False).double()
    conv1 = torch.nn.Conv2d(C, C, 1, bias=False).double()
    bns = [torch.nn.BatchNorm2d(C).double() for _ in range(3)]
    for bn in bns:
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 2)
        bn.bias.data.uniform_(-1, 1)
        bn.eval()
    x = torch.randn(2, C, 12, 13, dtype=torch.float64)
    with torch.no_grad():
        block = bns[0](conv3(x)) + bns[1](conv1(x)) + bns[2](x)

    def bn_args(bn):
        return [t.detach().numpy() for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var)]

    one = fastconv.add(
        fastconv.fuse_bn(Conv2d(conv3.weight.detach().numpy(), padding=1), *bn_args(bns[0])),
        fastconv.fuse_bn(Conv2d(conv1.weight.detach().numpy()), *bn_args(bns[1])),
        fastconv.fuse_bn(fastconv.identity_conv(C, 3), *bn_args(bns[2])),
    )
    assert one.kernel_size == (3, 3)
    assert_close(one(x.numpy()), block.numpy(), np.float64)


def test_composed_layer_on_both_backends(backend, dtype):
    rng = np.random.default_rng(1234)
    a = Conv2d(rng.standard_normal((5, 3, 3, 3)), rng.standard_normal(5), stride=2, padding=2)
    b = Conv2d(rng.standard_normal((4, 5, 2, 3)), rng.standard_normal(4), dilation=(2, 1))
    comp = fastconv.compose(a, b)
    x = rng.standard_normal((2, 3, 21, 18)).astype(dtype)
    y = comp(x, backend=backend)
    assert y.dtype == dtype
    assert_close(y, ref_sequence([a, b], x), dtype)
    with pytest.raises(ValueError, match="backend"):
        comp(x, backend="fortran")
