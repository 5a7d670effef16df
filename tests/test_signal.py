"""Tests for fastconv.signal against scipy.signal: modes, boundaries, dtypes, methods, axes."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.signal as ss
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerance import assert_close

from fastconv import signal as fs
from fastconv._plan import cython_available

BACKENDS = ["numba"] + (["cython"] if cython_available("signal") else [])
FUNCS = [(fs.convolve2d, ss.convolve2d), (fs.correlate2d, ss.correlate2d)]
FUNC_IDS = ["convolve2d", "correlate2d"]


def _close(actual, ref, work):
    assert actual.dtype == ref.dtype
    assert_close(actual, ref, work)  # the one tolerance table (tests/tolerance.py)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@settings(max_examples=40, deadline=None)
@given(
    H=st.integers(1, 13),
    W=st.integers(1, 13),
    kh=st.integers(1, 7),
    kw=st.integers(1, 7),
    mode=st.sampled_from(["full", "same", "valid"]),
    boundary=st.sampled_from(["fill", "wrap", "symm"]),
    method=st.sampled_from(["auto", "direct", "fft"]),
    dtype=st.sampled_from(["<f4", ">f4", "<f8", ">f8"]),
    which=st.integers(0, 1),
    seed=st.integers(0, 2**31 - 1),
)
def test_matches_scipy(H, W, kh, kw, mode, boundary, method, dtype, which, seed):
    rng = np.random.default_rng(seed)
    if mode == "valid" and not ((kh <= H and kw <= W) or (kh >= H and kw >= W)):
        kh, kw = min(kh, H), min(kw, W)
    x = rng.standard_normal((H, W)).astype(dtype)
    k = rng.standard_normal((kh, kw)).astype(dtype)
    x0, k0 = x.copy(), k.copy()
    f, g = FUNCS[which]
    ref = g(x, k, mode, boundary, 0.5)
    for backend in BACKENDS:
        out = f(x, k, mode, boundary, 0.5, method=method, backend=backend)
        _close(out, ref, np.dtype(dtype).newbyteorder("="))
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(k, k0)


@pytest.mark.parametrize("fn", FUNCS, ids=FUNC_IDS)
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
def test_separable_method(fn, mode, boundary, backend):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 37))
    k = np.outer(rng.standard_normal(5), rng.standard_normal(4))
    f, g = fn
    out = f(x, k, mode, boundary, 1.25, method="separable", backend=backend)
    _close(out, g(x, k, mode, boundary, 1.25), np.float64)
    with pytest.raises(ValueError, match="rank-1"):
        f(x, rng.standard_normal((3, 3)), method="separable")


@pytest.mark.parametrize("fn", FUNCS, ids=FUNC_IDS)
@pytest.mark.parametrize(
    "dt1, dt2",
    [
        ("int8", "int8"),
        ("uint8", "uint8"),
        ("int8", "uint8"),
        ("int16", "int16"),
        ("uint16", "uint32"),
        ("int32", "int32"),
        ("int64", "int64"),
        ("uint64", "uint64"),
        ("uint64", "int64"),
        ("float32", "int16"),
        ("float32", "int64"),
        ("complex64", "complex64"),
        ("complex64", "float32"),
        ("complex128", "float64"),
        ("float64", "complex128"),
        ("longdouble", "float64"),
        ("clongdouble", "int8"),
        ("bool", "int32"),
    ],
)
def test_dtypes_exact_like_scipy(fn, dt1, dt2, backend):
    """scipy's dtype rules, integer wrap-around included; integers must be bit-exact."""
    rng = np.random.default_rng(2)
    f, g = fn

    def make(dt, shape):
        dt = np.dtype(dt)
        if dt.kind in "iub":
            info = np.iinfo(dt) if dt.kind != "b" else None
            lo, hi = (0, 2) if info is None else (max(info.min, -100), min(info.max, 100))
            return rng.integers(lo, hi, shape, endpoint=True).astype(dt)
        a = rng.standard_normal(shape)
        if dt.kind == "c":
            a = a + 1j * rng.standard_normal(shape)
        return a.astype(dt)

    x = make(dt1, (23, 19))
    k = make(dt2, (4, 3))
    for mode in ["full", "same", "valid"]:
        for boundary in ["fill", "symm", "wrap"]:
            ref = g(x, k, mode, boundary, 3)
            out = f(x, k, mode, boundary, 3, backend=backend)
            assert out.dtype == ref.dtype
            if ref.dtype.kind in "iu":
                np.testing.assert_array_equal(out, ref)
            else:
                work = np.float32 if ref.dtype in (np.float32, np.complex64) else np.float64
                _close(out, ref, work)


def test_integer_wraparound_and_huge():
    a = np.full((5, 5), 100, np.int8)
    np.testing.assert_array_equal(fs.convolve2d(a, a), ss.convolve2d(a, a))
    big = np.array([[2**62, 3], [5, -(2**61)]], np.int64)
    np.testing.assert_array_equal(fs.correlate2d(big, big), ss.correlate2d(big, big))
    np.testing.assert_array_equal(
        fs.convolve2d(big, big, "same", "symm"), ss.convolve2d(big, big, "same", "symm")
    )


def test_integer_image_separable_and_fft_are_rounded_exactly():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (64, 70)).astype(np.uint8).astype(np.int32)
    k = np.outer([1, 4, 6, 4, 1], [1, 2, 1]).astype(np.int32)
    ref = ss.correlate2d(x, k, "same", "symm")
    for method in ["auto", "direct", "separable", "fft"]:
        np.testing.assert_array_equal(fs.correlate2d(x, k, "same", "symm", method=method), ref)


def test_complex_conjugation_and_swap():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))
    b = rng.standard_normal((7, 9)) + 1j * rng.standard_normal((7, 9))
    for mode in ["full", "same", "valid"]:
        _close(fs.correlate2d(a, b, mode), ss.correlate2d(a, b, mode), np.float64)
        _close(fs.correlate2d(b, a, mode), ss.correlate2d(b, a, mode), np.float64)
        _close(fs.convolve2d(a, b, mode), ss.convolve2d(a, b, mode), np.float64)
    _close(
        fs.correlate2d(a, b, fillvalue=1 - 2j), ss.correlate2d(a, b, fillvalue=1 - 2j), np.float64
    )


@pytest.mark.parametrize("method", ["auto", "direct", "fft"])
def test_axes_stack(method, backend):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 2, 17, 15)).astype(np.float32)
    k = rng.standard_normal((5, 4)).astype(np.float32)
    out = fs.correlate2d(x, k, "same", "wrap", axes=(-2, -1), method=method, backend=backend)
    assert out.shape == x.shape and out.dtype == np.float32
    for i in range(3):
        for j in range(2):
            _close(out[i, j], ss.correlate2d(x[i, j], k, "same", "wrap"), np.float32)
    # filtered axes need not be the last two
    xt = np.moveaxis(x, (2, 3), (0, 1))
    out2 = fs.correlate2d(xt, k, "same", "wrap", axes=(0, 1), method=method, backend=backend)
    _close(np.moveaxis(out2, (0, 1), (2, 3)), out, np.float32)
    # 'valid' with the image smaller than the kernel: scipy's swap rule, image by image
    small = rng.standard_normal((2, 3, 3))
    big = rng.standard_normal((5, 6))
    out3 = fs.correlate2d(small, big, "valid", axes=(1, 2))
    for i in range(2):
        _close(out3[i], ss.correlate2d(small[i], big, "valid"), np.float64)


def test_strided_nan_and_large_kernel():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((80, 90))[::2, ::-3]
    k = rng.standard_normal((25, 21))
    _close(fs.convolve2d(x, k, "same", "symm"), ss.convolve2d(x, k, "same", "symm"), np.float64)
    x = np.ascontiguousarray(x)
    x[5, 7] = np.nan
    out = fs.correlate2d(x, k, "same")
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ss.correlate2d(x, k, "same")))


def test_choose_method():
    img = np.zeros((2048, 2048))
    g = np.exp(-0.5 * (np.arange(-7, 8) / 2.5) ** 2)
    c = fs.choose_method(img, np.outer(g, g), mode="same")
    assert c.method == "separable" and "rank-1" in c.reason
    rng = np.random.default_rng(7)
    assert fs.choose_method(img, rng.standard_normal((5, 5)), mode="same").method == "direct"
    assert fs.choose_method(img, rng.standard_normal((31, 31)), mode="same").method == "fft"
    nan = img.copy()
    nan[0, 0] = np.nan
    assert fs.choose_method(nan, rng.standard_normal((31, 31)), mode="same").method == "direct"


def test_threads_concurrent():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 64, 64))
    k = rng.standard_normal((5, 5))
    ref = fs.correlate2d(x, k, "same", axes=(-2, -1), method="direct", backend="numba")
    with ThreadPoolExecutor(4) as ex:
        outs = list(
            ex.map(lambda b: fs.correlate2d(x, k, "same", axes=(-2, -1), backend=b), BACKENDS * 3)
        )
    for o in outs:
        _close(o, ref, np.float64)


@pytest.mark.parametrize("fn", [fs.convolve2d, fs.correlate2d], ids=FUNC_IDS)
def test_errors(fn):
    a = np.ones((3, 3))
    with pytest.raises(ValueError, match="2-D arrays"):
        fn(np.ones((2, 3, 3)), a)
    with pytest.raises(ValueError, match="2-D arrays"):
        fn(np.ones(3), a)
    with pytest.raises(ValueError, match="in1 is empty"):
        fn(np.ones((0, 3)), a)
    with pytest.raises(ValueError, match="in2 is empty"):
        fn(a, np.ones((3, 0)))
    with pytest.raises(ValueError, match="mode flags.*'sam'"):
        fn(a, a, mode="sam")
    with pytest.raises(ValueError, match="boundary flags"):
        fn(a, a, boundary="reflect")
    with pytest.raises(ValueError, match="must be scalar"):
        fn(a, a, fillvalue=[1, 2])
    with pytest.raises(ValueError, match="cannot be an empty"):
        fn(a, a, fillvalue=[])
    with pytest.raises(ValueError, match="could not cast `fillvalue`"):
        fn(a, a, fillvalue=1j)
    with pytest.raises(ValueError, match="at least as large"):
        fn(np.ones((2, 5)), np.ones((5, 2)), mode="valid")
    with pytest.raises(ValueError, match="not available for this type"):
        fn(a.astype(bool), a.astype(bool))
    with pytest.raises(ValueError, match="method"):
        fn(a, a, method="winograd")
    with pytest.raises(ValueError, match="backend"):
        fn(a, a, backend="gpu")
    with pytest.raises(ValueError, match="in2 must be a 2-D kernel"):
        fn(np.ones((2, 3, 3)), np.ones((1, 3, 3)), axes=(1, 2))
    with pytest.raises(ValueError, match="different axes"):
        fn(np.ones((2, 3, 3)), a, axes=(1, 1))
    with pytest.raises(np.exceptions.AxisError):
        fn(np.ones((2, 3, 3)), a, axes=(1, 3))


# --------------------------------------------------------------------------------------------
# non-finite values (issue 13), the planner's choice reported as run (issue 12), axes


def _same_nonfinite(out, ref):
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    np.testing.assert_array_equal(np.isposinf(out.real), np.isposinf(ref.real))
    np.testing.assert_array_equal(np.isneginf(out.real), np.isneginf(ref.real))
    if np.iscomplexobj(ref):
        np.testing.assert_array_equal(np.isinf(out.imag), np.isinf(ref.imag))
        np.testing.assert_array_equal(np.isnan(out.imag), np.isnan(ref.imag))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_nonfinite_kernel_returns_and_matches_scipy(bad):
    k = np.ones((3, 3))
    k[2, 0] = bad
    x = np.ones((20, 20))
    for f, g in FUNCS:
        for mode in ["full", "same", "valid"]:
            _same_nonfinite(f(x, k, mode=mode), g(x, k, mode=mode))
    assert fs.choose_method(x, k, mode="same").method == "direct"
    # 'valid' swaps a NaN image into the kernel role
    small = np.ones((3, 3))
    small[1, 1] = bad
    _same_nonfinite(fs.correlate2d(small, x, "valid"), ss.correlate2d(small, x, "valid"))


@pytest.mark.timeout(120)
def test_nonfinite_large_kernel_and_rank1_kernel_with_inf():
    """The issue's case (was all-NaN through the separable path): 31x31, one inf, 300x300."""
    rng = np.random.default_rng(11)
    g = np.exp(-0.5 * (np.arange(-15, 16) / 4.0) ** 2)
    k = np.outer(g, g)
    k[3, 4] = np.inf
    x = rng.standard_normal((300, 300))
    for f, ref in FUNCS:
        _same_nonfinite(f(x, k, "same"), ref(x, k, "same"))
    # finite rank-1 kernel (runs separable where it wins) over an image with NaN and +-inf
    k = np.outer(g, g * np.sign(np.arange(31) - 15.5))
    k[:, 10] = 0.0
    x[10, 20], x[100, 200], x[150, 150] = np.nan, np.inf, -np.inf
    for mode in ["same", "full", "valid"]:
        for f, ref in FUNCS:
            _same_nonfinite(f(x, k, mode), ref(x, k, mode))
    x = np.zeros((1024, 1024))
    x[5, 5] = np.inf
    assert fs.choose_method(x, k).method in ("separable", "direct")
    _same_nonfinite(fs.correlate2d(x, k, "same"), ss.correlate2d(x, k, "same"))


@pytest.mark.timeout(120)
@settings(max_examples=60, deadline=None)
@given(
    H=st.integers(1, 9),
    W=st.integers(1, 9),
    kh=st.integers(1, 5),
    kw=st.integers(1, 5),
    mode=st.sampled_from(["full", "same", "valid"]),
    boundary=st.sampled_from(["fill", "wrap", "symm"]),
    kinds=st.sampled_from(["cc", "cr", "rc", "czi"]),
    where=st.lists(st.tuples(st.integers(0, 1), st.integers(0, 99), st.sampled_from(
        [np.inf, -np.inf, np.nan, complex(0, np.inf), complex(np.nan, np.inf), complex(-np.inf, 1)])),
        min_size=1, max_size=3),
    which=st.integers(0, 1),
)
def test_complex_nonfinite_placement_like_scipy(H, W, kh, kw, mode, boundary, kinds, where, which):
    """scipy.signal multiplies complex numbers tap by tap: a zero imaginary part times inf is NaN."""
    if mode == "valid" and not ((kh <= H and kw <= W) or (kh >= H and kw >= W)):
        kh, kw = min(kh, H), min(kw, W)
    rng = np.random.default_rng(H * 100 + W * 10 + kh)
    x = rng.standard_normal((H, W)) + (0 if kinds in ("rc", "czi") else 1j) * rng.standard_normal(
        (H, W)
    )
    k = rng.standard_normal((kh, kw)) + (0 if kinds == "cr" else 1j) * rng.standard_normal((kh, kw))
    if kinds == "czi":
        x = x.astype(complex)  # complex with a zero imaginary part
    elif kinds == "rc":
        x = x.real
    elif kinds == "cr":
        k = k.real
    for arr_i, pos, val in where:
        a = x if arr_i == 0 else k
        if np.iscomplexobj(val) and not np.iscomplexobj(a):
            val = np.inf
        a.flat[pos % a.size] = val
    f, g = FUNCS[which]
    out = f(x, k, mode, boundary)
    ref = g(x, k, mode, boundary)
    _same_nonfinite(out, ref)


@pytest.mark.timeout(60)
def test_nonfinite_fill_and_fft_kernel():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((64, 64))
    k = rng.standard_normal((31, 31))
    for fv in [np.nan, np.inf]:
        _same_nonfinite(fs.correlate2d(x, k, "same", fillvalue=fv), ss.correlate2d(x, k, "same", fillvalue=fv))
    k[0, 0] = np.inf
    _same_nonfinite(fs.correlate2d(x, k, "same"), ss.correlate2d(x, k, "same"))
    # a forced FFT keeps its documented behaviour: the NaN/inf spread
    assert np.isnan(fs.correlate2d(x, k, "same", method="fft")).all()


def _spy_methods(monkeypatch):
    ran = []
    real = fs._plan.plan_filter2d

    def spy(*args, **kwargs):
        plan = real(*args, **kwargs)
        ran.append("direct" if plan.method == "taps" else plan.method)
        return plan

    monkeypatch.setattr(fs._plan, "plan_filter2d", spy)
    return ran


def test_choose_method_reports_what_runs(monkeypatch):
    """The two cases the old choose_method got wrong, and the usual ones."""
    rng = np.random.default_rng(13)
    big = rng.standard_normal((512, 512))
    k31 = rng.standard_normal((31, 31))
    g = np.exp(-0.5 * (np.arange(-7, 8) / 2.5) ** 2)
    cases = [
        ((k31, big), dict(mode="valid")),  # 'valid' swap: the big image is the image (was "direct")
        ((big, k31), dict(mode="same", fillvalue=np.nan)),  # NaN fill: no FFT (was "fft")
        ((big, k31), dict(mode="same")),
        ((big, np.outer(g, g)), dict(mode="same")),
        ((np.ones((32, 32)), np.ones((3, 3))), dict(mode="same")),
    ]
    for (a, b), kw in cases:
        chosen = fs.choose_method(a, b, **kw).method
        ran = _spy_methods(monkeypatch)
        fs.correlate2d(a, b, **kw)
        monkeypatch.undo()
        assert ran == [chosen], (kw, ran, chosen)
    assert fs.choose_method(k31, big, mode="valid").method == "fft"
    assert fs.choose_method(big, k31, mode="same", fillvalue=np.nan).method == "direct"


def test_rank_test_runs_only_when_separable_could_win(monkeypatch):
    calls = []
    real = fs._rank1_factors
    monkeypatch.setattr(fs, "_rank1_factors", lambda *a: calls.append(1) or real(*a))
    fs.correlate2d(np.ones((32, 32)), np.ones((3, 3)), "same")
    assert calls == []
    fs.correlate2d(np.ones((1024, 1024)), np.ones((15, 15)), "same")
    assert calls


def test_pivot_factors_match_scipy():
    rng = np.random.default_rng(14)
    x = rng.standard_normal((300, 280))
    for dtype in [np.float32, np.float64]:
        k = np.outer(rng.standard_normal(9), rng.standard_normal(13)).astype(dtype)
        xd = x.astype(dtype)
        out = fs.correlate2d(xd, k, "same", method="separable")
        _close(out, ss.correlate2d(xd, k, "same"), dtype)
    with pytest.raises(ValueError, match="rank-1"):
        k = np.outer(np.ones(3), np.ones(3))
        k[0, 0] = np.inf
        fs.correlate2d(x, k, method="separable")


@pytest.mark.parametrize("axes", [(True, False), (np.True_, 1), (0.0, 1), "ab"])
def test_axes_must_be_ints_not_bools(axes):
    with pytest.raises(TypeError, match="axes"):
        fs.correlate2d(np.ones((2, 3, 3)), np.ones((2, 2)), axes=axes)


def test_axes_swapped_on_2d_and_plan_cache():
    rng = np.random.default_rng(15)
    x = rng.standard_normal((12, 17))
    k = rng.standard_normal((3, 4))
    out = fs.correlate2d(x, k, "same", axes=(1, 0))
    _close(out, ss.correlate2d(x.T, k, "same").T, np.float64)
    for _ in range(3):  # cached setup: same result, inputs untouched
        _close(fs.correlate2d(x, k, "same"), ss.correlate2d(x, k, "same"), np.float64)
