"""fastconv.signal.convolve / correlate (N-d) against scipy.signal's direct method."""

import numpy as np
import pytest
import scipy.signal as ss
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv.signal as fs

FUNCS = {"convolve": (fs.convolve, ss.convolve), "correlate": (fs.correlate, ss.correlate)}


@st.composite
def pairs(draw):
    nd = draw(st.integers(1, 3))
    s1 = tuple(draw(st.integers(1, 7)) for _ in range(nd))
    s2 = tuple(draw(st.integers(1, 7)) for _ in range(nd))
    kind = draw(st.sampled_from(["f8", "f4", "c16", "i8", "mixed"]))
    return s1, s2, kind


def _arrays(s1, s2, kind, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(s1), rng.standard_normal(s2)
    if kind == "f4":
        a, b = a.astype(np.float32), b.astype(np.float32)
    elif kind == "c16":
        a = a + 1j * rng.standard_normal(s1)
        b = b - 0.5j * rng.standard_normal(s2)
    elif kind == "i8":
        a, b = (a * 20).astype(np.int64), (b * 20).astype(np.int64)
    elif kind == "mixed":
        a = (a * 20).astype(np.int32)
    return a, b


@settings(max_examples=80, deadline=None)
@given(
    case=pairs(), mode=st.sampled_from(["full", "same", "valid"]), fn=st.sampled_from(list(FUNCS))
)
def test_matches_scipy_direct(case, mode, fn):
    s1, s2, kind = case
    a, b = _arrays(s1, s2, kind)
    a0, b0 = a.copy(), b.copy()
    mine, ref = FUNCS[fn]
    try:
        want = ref(a, b, mode=mode, method="direct")
    except ValueError as exc:
        with pytest.raises(ValueError, match=str(exc)[:40]):
            mine(a, b, mode=mode, method="direct")
        return
    got = mine(a, b, mode=mode, method="direct")
    assert got.dtype == want.dtype and got.shape == want.shape
    if want.dtype.kind in "iu":
        np.testing.assert_array_equal(got, want)  # integer sums are exact
    else:
        rtol = 1e-5 if want.dtype in (np.float32, np.complex64) else 1e-12
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * max(1.0, np.abs(want).max()))
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


@pytest.mark.parametrize("method", ["fft", "auto"])
@pytest.mark.parametrize("fn", list(FUNCS))
def test_fft_and_auto_match_scipy(fn, method):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((40, 33)), rng.standard_normal((9, 12))
    mine, ref = FUNCS[fn]
    for mode in ("full", "same", "valid"):
        np.testing.assert_allclose(
            mine(a, b, mode=mode, method=method),
            ref(a, b, mode=mode, method="direct"),
            rtol=1e-10,
            atol=1e-10,
        )


def test_nan_and_inf_land_where_direct_summation_puts_them():
    a = np.ones((6, 7))
    a[1, 2], a[4, 5] = np.nan, np.inf
    b = np.arange(6.0).reshape(2, 3) - 2.0
    for fn in FUNCS:
        mine, ref = FUNCS[fn]
        for mode in ("full", "same", "valid"):
            with np.errstate(invalid="ignore"):
                want = ref(a, b, mode=mode, method="direct")
            np.testing.assert_array_equal(mine(a, b, mode=mode, method="direct"), want)


def test_axes_filter_a_batch_of_signals():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 200))  # five signals
    h = rng.standard_normal((1, 17))
    for fn in FUNCS:
        mine, ref = FUNCS[fn]
        got = mine(x, h, mode="same", axes=-1)
        want = np.stack([ref(x[i], h[0], mode="same", method="direct") for i in range(5)])
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(mine(x, h, axes=1, method="fft"), mine(x, h, axes=1), atol=1e-10)
    with pytest.raises(ValueError, match="size 1 along the axes not in axes"):
        fs.convolve(x, rng.standard_normal((2, 5)), axes=-1)
    with pytest.raises(ValueError, match="out of range"):
        fs.convolve(x, h, axes=2)


def test_long_fir_and_large_kernels_pick_sensibly():
    from fastconv import _plan
    from fastconv._geometry import signal_nd_geometry

    def pick(s1, s2, mode="full"):
        return _plan.plan_convolve_nd(signal_nd_geometry(s1, s2, mode, None), s1, s2, np.float64)

    assert pick((10**6,), (63,)) == "direct"  # a FIR filter: direct is cheap
    assert pick((512, 512), (101, 101)) == "fft"  # a large 2-D kernel
    assert pick((64, 64, 64), (3, 3, 3)) == "direct"


def test_errors_are_scipys():
    with pytest.raises(ValueError, match="same dimensionality"):
        fs.convolve(np.ones(3), np.ones((2, 2)))
    with pytest.raises(ValueError, match="Acceptable mode flags"):
        fs.correlate(np.ones(3), np.ones(2), mode="bogus")
    with pytest.raises(ValueError, match="Acceptable method flags"):
        fs.correlate(np.ones(3), np.ones(2), method="bogus")
    with pytest.raises(ValueError, match="at least as large"):
        fs.convolve(np.ones((3, 1)), np.ones((1, 3)), mode="valid")


def test_tiny_and_zero_weights_count_as_in_scipy_signal():
    """ndimage leaves |w| <= 2.2e-16 out; scipy.signal's sums keep every tap."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((30, 20)) * 1e30
    b = rng.standard_normal((3, 4)) * 1e-20
    b[0, 1] = 0.0
    a[5, 5] = np.nan
    for fn in FUNCS:
        mine, ref = FUNCS[fn]
        want = ref(a, b, method="direct")
        got = mine(a, b, method="direct")
        np.testing.assert_allclose(got, want, rtol=1e-12)
        assert np.array_equal(np.isnan(got), np.isnan(want))
