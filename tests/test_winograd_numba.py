"""The Numba Winograd F(2x2, 3x3) kernel against the float64 reference convolution."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tolerance import assert_close

from fastconv import _reference
from fastconv._geometry import conv_geometry
from fastconv._jit import winograd


def _run(x, w, b, padding, groups, nthreads=2):
    """The kernel on x with weights w (K, Cg, 3, 3) shared, or (N, K, Cg, 3, 3) per sample, and bias
    None, (K,) or (N, K); NaN-filled output and workspace, so unwritten outputs and reads of
    uninitialised scratch show, and a guard past the workspace, so writes beyond its size show."""
    per_sample = w.ndim == 5
    x4, w4, _, g = conv_geometry(x, w[0] if per_sample else w, None, 1, padding, 1, groups)
    geo = g.as_array()
    dtype = g.dtype
    w3 = np.ascontiguousarray(w.reshape(-1, g.K, g.Cg * 9), dtype=dtype)
    if b is None:
        bias = np.zeros((1, 1), dtype)
    else:
        bias = np.ascontiguousarray(b.reshape(-1, g.K), dtype=dtype)
    out = np.full((g.N, g.K, g.Ho, g.Wo), np.nan, dtype)
    size = winograd.winograd_workspace_size(geo, w3.shape[0], nthreads)
    ws = np.full(size + 64, np.nan, dtype)
    ws[size:] = 12345.0  # a guard past the stated size: the kernel must stay inside it
    nonfinite = winograd.conv_winograd(x4, w3, bias, b is not None, geo, out, ws[:size], nthreads)
    assert (ws[size:] == 12345.0).all()
    assert nonfinite is (not bool(np.isfinite(out).all()))  # the flag the planner's recompute uses
    return out


def _reference_conv(x, w, b, padding, groups):
    """Float64 reference; per-sample weights and biases by looping over the samples."""
    N = x.shape[0]
    outs = []
    for n in range(N):
        wn = w[n] if w.ndim == 5 else w
        bn = None if b is None else (b[n] if b.ndim == 2 else b)
        outs.append(_reference.conv2d(x[n : n + 1], wn, bn, 1, padding, 1, groups))
    return np.concatenate(outs)


@st.composite
def cases(draw):
    groups = draw(st.sampled_from([1, 1, 2, 4]))
    cg = draw(st.integers(1, 6))  # crosses the 4-channel register block both ways
    kg = draw(st.integers(1, 6))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    # H, W down to 1 where the padding still leaves a 3x3 window: Ho = H + 2 ph - 2 >= 1
    H = draw(st.integers(max(1, 3 - 2 * ph), 20))
    W = draw(st.integers(max(1, 3 - 2 * pw), 20))
    N = draw(st.integers(1, 3))
    per_sample_w = draw(st.booleans())
    bias = draw(st.sampled_from(["none", "shared", "per_sample"]))
    nthreads = draw(st.sampled_from([1, 2, 3]))
    return N, cg * groups, H, W, kg * groups, (ph, pw), groups, per_sample_w, bias, nthreads


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases(), seed=st.integers(0, 2**31 - 1))
def test_against_reference(dtype, case, seed):
    N, C, H, W, K, padding, groups, per_sample_w, bias, nthreads = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    wshape = (N, K, C // groups, 3, 3) if per_sample_w else (K, C // groups, 3, 3)
    w = rng.standard_normal(wshape).astype(dtype)
    b = {
        "none": None,
        "shared": rng.standard_normal(K).astype(dtype),
        "per_sample": rng.standard_normal((N, K)).astype(dtype),
    }[bias]
    x0, w0 = x.copy(), w.copy()
    out = _run(x, w, b, padding, groups, nthreads)
    assert out.dtype == dtype
    assert np.isfinite(out).all()
    assert_close(out, _reference_conv(x, w, b, padding, groups), dtype)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)


LAYERS = [
    # N, C, H, W, K, padding, groups, per-sample weights
    (2, 64, 14, 14, 32, 1, 1, False),  # a ResNet-like layer, tiles split across tasks
    (4, 16, 7, 7, 24, 1, 1, False),  # small images: one tile block runs through several samples
    (3, 16, 9, 7, 24, 1, 1, True),  # the same with per-sample weights: blocks stop at samples
    (1, 8, 40, 41, 8, (0, 2), 2, False),  # many tiles, odd output width, asymmetric (ph, pw)
    (2, 6, 1, 30, 4, (1, 0), 1, False),  # a single input row, padding taller than the image
    (1, 300, 6, 6, 5, 0, 1, False),  # many channels (the cache cap on tiles per task)
]


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("nthreads", [1, 2, 4])
def test_layers(layer, nthreads):
    N, C, H, W, K, padding, groups, per_sample_w = layer
    rng = np.random.default_rng(1234)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    wshape = (N, K, C // groups, 3, 3) if per_sample_w else (K, C // groups, 3, 3)
    w = rng.standard_normal(wshape, dtype=np.float32)
    b = rng.standard_normal((N, K) if per_sample_w else K, dtype=np.float32)
    out = _run(x, w, b, padding, groups, nthreads)
    assert np.isfinite(out).all()
    assert_close(out, _reference_conv(x, w, b, padding, groups), np.float32)


def test_read_only_inputs():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 8, 12, 13))
    w = rng.standard_normal((8, 8, 3, 3))
    b = rng.standard_normal(8)
    for a in (x, w, b):
        a.flags.writeable = False
    out = _run(x, w, b, 1, 1)
    assert_close(out, _reference_conv(x, w, b, 1, 1), np.float64)


def test_short_workspace_raises():
    """The one check the kernel makes, as the C kernel does: a short workspace would be written
    out of bounds."""
    x4, w4, _, g = conv_geometry(np.ones((1, 2, 6, 6)), np.ones((3, 2, 3, 3)), None, 1, 1)
    geo = g.as_array()
    ws = np.empty(winograd.winograd_workspace_size(geo, 1, 2) - 1)
    out = np.empty((1, 3, 6, 6))
    with pytest.raises(ValueError, match="ws"):
        winograd.conv_winograd(x4, w4.reshape(1, 3, 18), np.zeros((1, 1)), False, geo, out, ws, 2)


def test_workspace_and_support():
    assert winograd.winograd_supported("f") and winograd.winograd_supported("d")
    assert not winograd.winograd_supported("e")
    _, _, _, g = conv_geometry(np.zeros((4, 16, 20, 20)), np.zeros((8, 16, 3, 3)), None, 1, 1)
    geo = g.as_array()
    one = winograd.winograd_workspace_size(geo, 1, 1)
    assert winograd.winograd_workspace_size(geo, 1, 2) > one  # scratch per thread
    # at least the transformed weights, 16 per 3x3 filter, per sample with per-sample weights
    assert winograd.winograd_workspace_size(geo, 4, 1) >= 4 * 16 * 8 * 16
    assert sorted(winograd.__all__) == [
        "conv_winograd",
        "winograd_supported",
        "winograd_workspace_size",
    ]
