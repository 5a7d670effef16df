"""im2col / col2im against the float64 reference and torch's unfold / fold."""

import numpy as np
import pytest
from conftest import BACKENDS
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerance import assert_close

import fastconv
from fastconv import _reference as ref


@st.composite
def unfold_cases(draw):
    N = draw(st.integers(0, 3))
    C = draw(st.integers(1, 4))
    H, W = draw(st.integers(1, 10)), draw(st.integers(1, 10))
    k = draw(st.sampled_from([1, 2, 3, (2, 3), (3, 1)]))
    s = draw(st.sampled_from([1, 2, 3, (1, 2)]))
    p = draw(st.sampled_from([0, 1, 2, (1, 0)]))
    d = draw(st.sampled_from([1, 2, (2, 1)]))
    batched = draw(st.booleans()) or N != 1
    return (N, C, H, W), k, s, p, d, batched


def _fits(shape, k, s, p, d):
    kh, kw = (k, k) if isinstance(k, int) else k
    ph, pw = (p, p) if isinstance(p, int) else p
    dh, dw = (d, d) if isinstance(d, int) else d
    return dh * (kh - 1) + 1 <= shape[2] + 2 * ph and dw * (kw - 1) + 1 <= shape[3] + 2 * pw


@settings(max_examples=60, deadline=None)
@given(case=unfold_cases(), dt=st.sampled_from([np.float32, np.float64]))
def test_im2col_col2im_match_reference(case, dt):
    shape, k, s, p, d, batched = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape if batched else shape[1:]).astype(dt)
    if not _fits(shape, k, s, p, d):
        with pytest.raises(ValueError, match="larger than the padded"):
            fastconv.im2col(x, k, s, p, d)
        return
    x0 = x.copy()
    expected = ref.im2col(x, k, s, p, d)
    cols = rng.standard_normal(expected.shape).astype(dt)
    folded = ref.col2im(cols, shape[2:], k, s, p, d)
    for be in BACKENDS:
        got = fastconv.im2col(x, k, s, p, d, backend=be)
        assert got.dtype == dt
        assert_close(got, expected, dt)
        back = fastconv.col2im(cols, shape[2:], k, s, p, d, backend=be)
        assert back.dtype == dt
        assert_close(back, folded, dt)
    np.testing.assert_array_equal(x, x0)


@settings(max_examples=40, deadline=None)
@given(case=unfold_cases())
def test_match_torch_unfold_fold(case):
    torch = pytest.importorskip("torch")
    shape, k, s, p, d, batched = case
    if not _fits(shape, k, s, p, d) or shape[0] == 0:
        return
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape if batched else shape[1:])
    kw = dict(kernel_size=k, dilation=d, padding=p, stride=s)
    expected = torch.nn.functional.unfold(torch.from_numpy(x), **kw).numpy()
    folded = torch.nn.functional.fold(torch.from_numpy(expected), shape[2:], **kw).numpy()
    for be in BACKENDS:
        assert_close(fastconv.im2col(x, backend=be, **kw), expected, np.float64)
        assert_close(fastconv.col2im(expected, shape[2:], backend=be, **kw), folded, np.float64)


def test_adjoint_identity(backend):
    """<im2col(x), y> == <x, col2im(y)>: col2im is im2col's transpose."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 11, 9))
    cols = fastconv.im2col(x, 3, 2, 1, 2, backend=backend)
    y = rng.standard_normal(cols.shape)
    lhs = float(np.sum(cols * y))
    rhs = float(np.sum(x * fastconv.col2im(y, (11, 9), 3, 2, 1, 2, backend=backend)))
    assert abs(lhs - rhs) <= 1e-10 * abs(lhs)


@pytest.mark.parametrize(
    "call,exc,msg",
    [
        (lambda: fastconv.im2col(np.zeros((3, 3)), 2), ValueError, "x must be 3-D"),
        (
            lambda: fastconv.im2col(np.zeros((1, 3, 3)), 0),
            ValueError,
            "kernel_size must be positive",
        ),
        (lambda: fastconv.im2col(np.zeros((1, 3, 3)), 2, stride=0), ValueError, "stride"),
        (lambda: fastconv.im2col(np.zeros((1, 3, 3)), 2, padding=-1), ValueError, "padding"),
        (lambda: fastconv.im2col(np.zeros((1, 3, 3)), 2, padding="same"), ValueError, "padding"),
        (lambda: fastconv.im2col(np.zeros((1, 3, 3)), 5), ValueError, "larger than the padded"),
        (
            lambda: fastconv.im2col(np.zeros((1, 3, 3), complex), 2),
            TypeError,
            "x must have a real numeric dtype",
        ),
        (lambda: fastconv.im2col(np.zeros((1, 3, 3)), 2, backend="x"), ValueError, "backend"),
        (lambda: fastconv.col2im(np.zeros((5, 4)), 3, 2), ValueError, "divisible"),
        (lambda: fastconv.col2im(np.zeros((4, 5)), 3, 2), ValueError, "block positions"),
        (lambda: fastconv.col2im(np.zeros(4), 3, 2), ValueError, "cols must be"),
        (lambda: fastconv.col2im(np.zeros((4, 4)), 0, 2), ValueError, "output_size"),
    ],
)
def test_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()
