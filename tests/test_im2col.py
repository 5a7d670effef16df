"""im2col / col2im against the float64 reference and torch's unfold / fold."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerance import assert_close

import fastconv
from conftest import BACKENDS
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


# ---- 1-D and 3-D (a kernel_size tuple of one or three ints) ------------------------------------


def _unfold_nd_reference(x, k, s, p, d):
    """float64 N-d unfold by loops; sizes computed here.  Rows (c, taps...), columns positions."""
    import itertools

    x = np.asarray(x, np.float64)
    N, C, *size = x.shape
    r = len(size)
    osz = [
        (n + 2 * pp - dd * (kk - 1) - 1) // ss + 1
        for n, kk, ss, pp, dd in zip(size, k, s, p, d, strict=True)
    ]
    taps = list(itertools.product(*[range(kk) for kk in k]))
    cols = np.zeros((N, C * len(taps), int(np.prod(osz))))
    for j, o in enumerate(itertools.product(*[range(n) for n in osz])):
        for t_i, t in enumerate(taps):
            pos = [oo * ss - pp + tt * dd for oo, ss, pp, tt, dd in zip(o, s, p, t, d, strict=True)]
            if all(0 <= q < n for q, n in zip(pos, size, strict=True)):
                cols[:, np.arange(C) * len(taps) + t_i, j] = x[(slice(None), slice(None), *pos)]
    assert r in (1, 3)
    return cols


@st.composite
def nd_cases(draw):
    r = draw(st.sampled_from([1, 3]))
    N, C = draw(st.integers(0, 2)), draw(st.integers(1, 3))
    k = tuple(draw(st.integers(1, 3)) for _ in range(r))
    s = tuple(draw(st.integers(1, 2)) for _ in range(r))
    p = tuple(draw(st.integers(0, 1)) for _ in range(r))
    d = tuple(draw(st.integers(1, 2)) for _ in range(r))
    hi = 12 if r == 1 else 5
    size = tuple(
        draw(st.integers(max(1, dd * (kk - 1) + 1 - 2 * pp), hi))
        for kk, pp, dd in zip(k, p, d, strict=True)
    )
    return (N, C, *size), k, s, p, d


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=40, deadline=None)
@given(case=nd_cases(), dt=st.sampled_from([np.float32, np.float64]))
def test_nd_im2col_col2im_match_loops(backend, case, dt):
    shape, k, s, p, d = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dt)
    x0 = x.copy()
    cols = fastconv.im2col(x, k, s, p, d, backend=backend)
    want = _unfold_nd_reference(x, k, s, p, d)
    assert cols.dtype == dt and cols.shape == want.shape
    np.testing.assert_array_equal(cols, want.astype(dt))  # a copy: exact
    np.testing.assert_array_equal(x, x0)
    # col2im is the adjoint: <im2col(x), y> == <x, col2im(y)>, and col2im(want) by loops
    y = rng.standard_normal(cols.shape)
    back = fastconv.col2im(y, shape[2:], k, s, p, d, backend=backend)
    assert back.shape == shape
    lhs, rhs = float(np.sum(want * y)), float(np.sum(x.astype(np.float64) * back))
    assert abs(lhs - rhs) <= 1e-9 * max(1.0, abs(lhs))


def test_nd_unbatched_and_conv_identity():
    """conv3d == weight.reshape(K, -1) @ im2col(x): the layout the docstring promises."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6, 7, 5))  # unbatched (C, D, H, W)
    w = rng.standard_normal((4, 3, 3, 2, 3))
    cols = fastconv.im2col(x, (3, 2, 3), stride=(1, 2, 1), padding=1)
    y = fastconv.conv3d(x, w, stride=(1, 2, 1), padding=1)
    assert_close((w.reshape(4, -1) @ cols).reshape(y.shape), y, np.float64)
    sig = rng.standard_normal((2, 30))  # unbatched (C, L)
    w1 = rng.standard_normal((5, 2, 4))
    c1 = fastconv.im2col(sig, (4,), dilation=3, padding=2)
    assert_close(
        w1.reshape(5, -1) @ c1, fastconv.conv1d(sig, w1, dilation=3, padding=2), np.float64
    )


def test_nd_col2im_nan_and_inf_add_up_like_the_loop():
    cols = np.ones((1, 2 * 8, 8))
    cols[0, 3, 2], cols[0, 5, 7] = np.nan, np.inf
    out = fastconv.col2im(cols, (3, 3, 3), (2, 2, 2))
    want = np.zeros((1, 2, 3, 3, 3))
    import itertools

    for j, (a, b, c) in enumerate(itertools.product(range(2), repeat=3)):
        for t, (i, jj, kk) in enumerate(itertools.product(range(2), repeat=3)):
            for ch in range(2):
                want[0, ch, a + i, b + jj, c + kk] += cols[0, ch * 8 + t, j]
    assert_close(out, want, np.float64)


@pytest.mark.parametrize(
    "call,exc,msg",
    [
        (lambda: fastconv.im2col(np.zeros((1, 3, 3)), (2, 2, 2)), ValueError, "x must be 4-D"),
        (lambda: fastconv.im2col(np.zeros((1, 3, 3, 3)), (2,)), ValueError, "x must be 2-D"),
        (lambda: fastconv.im2col(np.zeros((1, 5)), (2,), stride=(1, 1)), TypeError, "stride"),
        (lambda: fastconv.im2col(np.zeros((1, 5)), (7,)), ValueError, "larger than the padded"),
        (lambda: fastconv.col2im(np.zeros((8, 8)), (3, 3), (2, 2, 2)), TypeError, "output_size"),
        (lambda: fastconv.col2im(np.zeros((7, 8)), (3, 3, 3), (2, 2, 2)), ValueError, "divisible"),
        (
            lambda: fastconv.col2im(np.zeros((8, 9)), (3, 3, 3), (2, 2, 2)),
            ValueError,
            "block positions",
        ),
    ],
)
def test_nd_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()
