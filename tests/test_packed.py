"""The packed convolution kernel (both backends) against the float64 reference convolution."""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from tolerance import assert_close

from fastconv import _reference
from fastconv._geometry import conv_geometry

BACKENDS = ["cython", "numba"]


def _kernels(backend):
    if backend == "cython":
        from fastconv._ext import packed
    else:
        from fastconv._jit import packed
    return packed


def _run(kern, x, w, b, stride, padding, dilation, groups, nthreads=2):
    x4, w4, b4, g = conv_geometry(x, w, b, stride, padding, dilation, groups)
    geo = g.as_array()
    out = np.full((g.N, g.K, g.Ho, g.Wo), np.nan, g.dtype)  # NaN: every element must be written
    ws = np.full(kern.packed_workspace_size(geo, nthreads), np.nan, g.dtype)
    bias = b4 if b4 is not None else np.zeros(0, g.dtype)
    kern.conv_packed(x4, w4, bias, b4 is not None, geo, out, ws, nthreads)
    return out


def _check(out, ref, dtype):
    assert out.dtype == dtype
    assert_close(out, ref, dtype)


@st.composite
def conv_cases(draw):
    groups = draw(st.sampled_from([1, 1, 1, 2, 3]))
    cg = draw(st.integers(1, 12))
    kg = draw(st.integers(1, 19))  # crosses the 8-channel micro-tile edge
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    ekh, ekw = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    H = draw(st.integers(max(1, ekh - 2 * ph), 30))
    W = draw(st.integers(max(1, ekw - 2 * pw), 70))  # output rows longer and shorter than a stripe
    N = draw(st.integers(1, 3))
    bias = draw(st.booleans())
    return N, cg * groups, H, W, kg * groups, kh, kw, (sh, sw), (ph, pw), (dh, dw), groups, bias


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=conv_cases(), seed=st.integers(0, 2**31 - 1))
def test_against_reference(backend, dtype, case, seed):
    N, C, H, W, K, kh, kw, s, p, d, g, with_bias = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((K, C // g, kh, kw)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype) if with_bias else None
    x0, w0 = x.copy(), w.copy()
    out = _run(_kernels(backend), x, w, b, s, p, d, g)
    _check(out, _reference.conv2d(x, w, b, s, p, d, g), dtype)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)


@st.composite
def small_plane_cases(draw):
    """Few output pixels and many output channels: the K-lanes path (64 channels in the lanes)."""
    groups = draw(st.sampled_from([1, 1, 2]))
    cg = draw(st.integers(1, 24))
    kg = draw(st.integers(56, 140))  # whole and partial 64-channel blocks (and < 64: not K-lanes)
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    ekh, ekw = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    H = draw(st.integers(max(1, ekh - 2 * ph), 14))
    W = draw(st.integers(max(1, ekw - 2 * pw), 14))
    N = draw(st.integers(1, 3))
    nthreads = draw(st.integers(1, 3))
    return N, cg * groups, H, W, kg * groups, kh, kw, (sh, sw), (ph, pw), (dh, dw), groups, nthreads


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])  # float64 shares the workspace size
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=small_plane_cases(), seed=st.integers(0, 2**31 - 1))
def test_small_planes_against_reference(backend, dtype, case, seed):
    N, C, H, W, K, kh, kw, s, p, d, g, nthreads = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((K, C // g, kh, kw)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    out = _run(_kernels(backend), x, w, b, s, p, d, g, nthreads)
    _check(out, _reference.conv2d(x, w, b, s, p, d, g), dtype)


@st.composite
def narrow_stripe_cases(draw):
    """Narrow output rows (many short row segments a 48-pixel stripe) that pack stripes: every
    tap's load mask at the image's edges and padding, strides 1 and 2 (the masked packer) and 3
    (the scalar one), dilation, kernels to 7x7, segments crossing samples."""
    groups = draw(st.sampled_from([1, 1, 2]))
    cg = draw(st.integers(1, 6))
    kg = draw(st.integers(9, 40))  # below K-lanes' 64
    kh, kw = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 4)), draw(st.integers(0, 4))
    ekh, ekw = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    H = draw(st.integers(max(1, ekh - 2 * ph), ekh + 12))
    W = draw(st.integers(max(1, ekw - 2 * pw), ekw + 2 * 16))  # output rows of 1-17+ pixels
    N = draw(st.integers(1, 4))
    return N, cg * groups, H, W, kg * groups, kh, kw, (sh, sw), (ph, pw), (dh, dw), groups


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=narrow_stripe_cases(), seed=st.integers(0, 2**31 - 1))
def test_narrow_stripes_against_reference(case, seed):
    kern = _kernels("cython")
    N, C, H, W, K, kh, kw, s, p, d, g = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((K, C // g, kh, kw)).astype(np.float32)
    geo = conv_geometry(x, w, None, s, p, d, g)[3].as_array()
    assume(not kern.packed_implicit(geo) and not kern.packed_klanes(geo))
    x0 = x.copy()
    out = _run(kern, x, w, None, s, p, d, g)
    _check(out, _reference.conv2d(x, w, None, s, p, d, g), np.float32)
    np.testing.assert_array_equal(x, x0)


def _direct_in_image(x, w, stride, padding, dilation, groups):
    """float64 direct summation over the in-image taps only (padding taps skipped, never
    multiplied by zero): how oneDNN, torch's CPU convolution, places infs and NaNs."""
    x4, w4, _, g = conv_geometry(x, w, None, stride, padding, dilation, groups)
    x4, w4 = x4.astype(np.float64), w4.astype(np.float64)
    out = np.zeros((g.N, g.K, g.Ho, g.Wo))
    oh, ow = np.arange(g.Ho), np.arange(g.Wo)
    for grp in range(g.groups):
        ks = slice(grp * g.Kg, (grp + 1) * g.Kg)
        for c in range(g.Cg):
            for i in range(g.kh):
                ih = oh * g.sh - g.pt + i * g.dh
                rows = np.flatnonzero((ih >= 0) & (ih < g.H))
                for j in range(g.kw):
                    iw = ow * g.sw - g.pl + j * g.dw
                    cols = np.flatnonzero((iw >= 0) & (iw < g.W))
                    if rows.size == 0 or cols.size == 0:
                        continue
                    win = x4[:, grp * g.Cg + c][:, ih[rows]][:, :, iw[cols]]
                    wt = w4[ks, c, i, j]
                    out[:, ks, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] += (
                        wt[None, :, None, None] * win[:, None]
                    )
    return out


NONFINITE_LAYERS = [
    # N, C, H, W, K, kh, kw, stride, pad, dil, groups: one per B mode of the C kernel
    (1, 64, 7, 7, 128, 3, 3, 1, 1, 1, 1),  # K-lanes
    (1, 16, 30, 40, 16, 3, 3, 1, 1, 1, 1),  # padded-input (implicit) mode
    (1, 8, 20, 21, 20, 5, 3, 2, 2, 1, 1),  # packed stripes
    (2, 6, 9, 11, 10, 3, 3, 1, (2, 1), (2, 1), 2),  # groups, dilation, uneven padding
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer", NONFINITE_LAYERS)
def test_nonfinite_weights_over_padding(backend, dtype, layer):
    """An inf weight on a tap that lies in the padding adds nothing there, as in torch's direct
    convolution: the border pixels stay finite instead of inf * 0 = NaN."""
    N, C, H, W, K, kh, kw, s, p, d, g = layer
    rng = np.random.default_rng(3)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((K, C // g, kh, kw)).astype(dtype)
    w[0, 0, 0, 0] = np.inf  # top-left tap: in the padding for the first row and column
    w[K - 1, 0, kh - 1, kw - 1] = -np.inf
    w[K // 2, 0, 0, kw - 1] = np.nan
    ref = _direct_in_image(x, w, s, p, d, g)
    out = _run(_kernels(backend), x, w, None, s, p, d, g)
    assert_close(out, ref, dtype)  # NaN and signed-inf masks equal, finite values close


LAYERS = [
    # N, C, H, W, K, kh, kw, stride, pad, dil, groups: the paths the planner routes here
    (2, 64, 14, 14, 32, 3, 3, 1, 1, 1, 1),  # pixel remainder (196 = 4 * 48 + 4)
    (1, 300, 7, 9, 20, 3, 3, 1, 1, 1, 1),  # R > KC: accumulate over K blocks
    (2, 520, 8, 12, 16, 1, 1, 1, 0, 1, 1),  # 1x1 direct B over several K blocks
    (1, 32, 28, 28, 16, 1, 1, 2, 0, 1, 1),  # 1x1 strided: packed
    (1, 3, 40, 40, 16, 7, 7, 2, 3, 1, 1),  # stem-like, stride-2 packing
    (2, 64, 16, 16, 64, 3, 3, 1, 1, 1, 32),  # ResNeXt-like groups
    (1, 16, 20, 23, 24, 3, 3, 1, 2, 2, 1),  # dilation
    (2, 8, 19, 61, 8, 4, 2, 1, "same", (1, 3), 1),  # asymmetric padding, padded-input path
    (1, 4, 3, 50, 4, 3, 3, 1, (2, 0), 1, 1),  # padding taller than the image
    (1, 32, 7, 7, 140, 3, 3, 1, 1, 1, 1),  # few tiles: output channels split across tasks
    (1, 8, 2, 94, 136, 3, 3, 1, 1, 1, 1),  # the same on the padded-input path
    (2, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1),  # the 64-channel ResNet layer (padded-input path)
    (1, 512, 7, 7, 512, 3, 3, 1, 1, 1, 1),  # K-lanes: 7 pixels x 64 channels, R > KC
    (1, 64, 14, 14, 100, 3, 3, 2, 1, 1, 1),  # K-lanes, strided, a partial channel block
    (2, 24, 5, 5, 64, 3, 3, 1, 0, 1, 1),  # K-lanes, stripes across samples, no padding
    (2, 16, 56, 57, 16, 3, 3, 1, 1, 1, 1),  # 133 stripes: chunks of 2, a partial last, spread
]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("nthreads", [1, 2, 3])
def test_layers(backend, layer, nthreads):
    N, C, H, W, K, kh, kw, s, p, d, g = layer
    rng = np.random.default_rng(1234)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((K, C // g, kh, kw), dtype=np.float32)
    b = rng.standard_normal(K, dtype=np.float32)
    out = _run(_kernels(backend), x, w, b, s, p, d, g, nthreads)
    _check(out, _reference.conv2d(x, w, b, s, p, d, g), np.float32)


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_only_input_and_backends_agree(backend):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 8, 12, 48), dtype=np.float32)
    w = rng.standard_normal((8, 8, 1, 1), dtype=np.float32)
    x.flags.writeable = False
    w.flags.writeable = False
    out = _run(_kernels(backend), x, w, None, 1, 0, 1, 1)
    other = _run(_kernels("numba" if backend == "cython" else "cython"), x, w, None, 1, 0, 1, 1)
    np.testing.assert_allclose(out, other, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_workspace_and_support(backend):
    kern = _kernels(backend)
    geo = np.array([4, 256, 14, 14, 256, 3, 3, 1, 1, 1, 1, 1, 1, 1, 14, 14], dtype=np.int64)
    size = kern.packed_workspace_size(geo, 2)
    assert 256 * 2304 <= size <= 64 * 2**20 // 4
    assert kern.packed_workspace_size(geo, 4) > size
    assert isinstance(kern.packed_supported("f"), bool)
    assert kern.packed_supported("g") is False


def test_cython_workspace_too_small_is_refused():
    from fastconv._ext import packed

    x = np.ones((1, 4, 9, 9), np.float32)
    w = np.ones((4, 4, 3, 3), np.float32)
    x4, w4, _, g = conv_geometry(x, w, None, 1, 1, 1, 1)
    geo = g.as_array()
    out = np.zeros((1, 4, 9, 9), np.float32)
    ws = np.empty(packed.packed_workspace_size(geo, 1), np.float32)
    with pytest.raises(ValueError, match="packed_workspace_size"):
        packed.conv_packed(x4, w4, np.zeros(0, np.float32), False, geo, out, ws, 4)
    assert not out.any()


_PORTABLE_CHECK = """
import os
import numpy as np
from fastconv import _reference
from fastconv._ext import packed
from test_packed import LAYERS, _check, _kernels, _run
assert packed.packed_supported("f") == ("FASTCONV_NO_AVX2" not in os.environ)
rng = np.random.default_rng(5)
for N, C, H, W, K, kh, kw, s, p, d, g in LAYERS[:-1]:
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((K, C // g, kh, kw), dtype=np.float32)
    b = rng.standard_normal(K, dtype=np.float32)
    out = _run(_kernels("cython"), x, w, b, s, p, d, g)
    _check(out, _reference.conv2d(x, w, b, s, p, d, g), np.float32)
print("ok")
"""


def _has_avx2():
    feats = getattr(np._core._multiarray_umath, "__cpu_features__", {})
    return bool(feats.get("AVX2") and feats.get("FMA3"))


def _run_without_avx512(path, script, timeout):
    """Run `script` in a child process on the AVX2 path (AVX-512 off) or the portable one (AVX2
    off too); assert it printed ok."""
    if path == "avx2" and not _has_avx2():
        pytest.skip("this CPU has no AVX2/FMA")
    env = dict(os.environ, FASTCONV_NO_AVX512="1")
    env.pop("FASTCONV_NO_AVX2", None)
    if path == "portable":
        env["FASTCONV_NO_AVX2"] = "1"
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.pathsep.join([here, os.path.dirname(here), env.get("PYTHONPATH", "")])
    res = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


@pytest.mark.slow
@pytest.mark.parametrize("path", ["avx2", "portable"])
def test_paths_without_avx512(path):
    """The AVX2 tiles (CPUs with AVX2 and FMA but no AVX-512F) and the portable C path (neither),
    forced on this CPU in a child process."""
    _run_without_avx512(path, _PORTABLE_CHECK, 120)


_DW16_CHECK = """
import os
import numpy as np
import fastconv
from fastconv import _reference
from fastconv._ext import conv
supported = conv.depthwise16_supported("f")
assert supported == ("FASTCONV_NO_AVX2" not in os.environ), supported
rng = np.random.default_rng(3)
for xs, k, s, p, d, m in [((2, 33, 9, 11), 3, 1, 1, 1, 1), ((1, 20, 14, 14), 5, 2, 2, 1, 2),
                          ((1, 16, 7, 7), 3, 1, 2, 2, 1), ((1, 48, 3, 20), 3, 1, 1, 1, 1)]:
    C = xs[1]
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal((C * m, 1, k, k)).astype(np.float32)
    b = rng.standard_normal(C * m).astype(np.float32)
    ref = _reference.conv2d(x, w, b, s, p, d, C)
    alg = "depthwise16" if supported else "auto"
    y = fastconv.conv2d(x, w, b, stride=s, padding=p, dilation=d, groups=C, algorithm=alg)
    err = np.abs(y - ref).max() / np.abs(ref).max()
    assert err < 1e-5, (xs, err)
print("ok")
"""


@pytest.mark.slow
@pytest.mark.parametrize("path", ["avx2", "portable"])
def test_depthwise16_without_avx512(path):
    """The 16-lane depthwise kernel as two 8-lane AVX2 halves (no AVX-512), and not offered
    without AVX2, forced on this CPU in a child process."""
    _run_without_avx512(path, _DW16_CHECK, 300)
