"""Tests for fastconv._separable: SVD split of 2-D kernels and their numerical rank."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastconv._separable import numerical_rank, svd_separate


def _rebuild(cols, rows):
    return np.einsum("ri,rj->ij", cols, rows)


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-5), (np.float64, 1e-12)])
def test_rank1_exact(dtype, rtol):
    k = np.outer([1, 4, 6, 4, 1], [1, 2, 0, -2, -1]).astype(dtype)
    cols, rows, s = svd_separate(k)
    assert cols.shape == (1, 5) and rows.shape == (1, 5) and s.shape == (1,)
    assert cols.dtype == dtype and rows.dtype == dtype and s.dtype == dtype
    np.testing.assert_allclose(_rebuild(cols, rows), k, rtol=0, atol=rtol * np.abs(k).max())
    assert numerical_rank(k) == 1
    assert cols[0, np.argmax(np.abs(cols[0]))] > 0


@settings(max_examples=40, deadline=None)
@given(
    kh=st.integers(1, 9),
    kw=st.integers(1, 9),
    r=st.integers(1, 4),
    seed=st.integers(0, 2**31 - 1),
)
def test_low_rank_recovered(kh, kw, r, seed):
    rng = np.random.default_rng(seed)
    r = min(r, kh, kw)
    k = rng.standard_normal((kh, r)) @ rng.standard_normal((r, kw))
    cols, rows, s = svd_separate(k)
    assert cols.shape[0] == rows.shape[0] == s.shape[0] == numerical_rank(k)
    assert numerical_rank(k) <= r
    np.testing.assert_allclose(_rebuild(cols, rows), k, rtol=0, atol=1e-10 * np.abs(k).max())
    assert np.all(np.diff(s) <= 0)


def test_truncation_and_options():
    rng = np.random.default_rng(0)
    k = rng.standard_normal((6, 7))
    full = np.linalg.svd(k, compute_uv=False)
    cols, rows, s = svd_separate(k, rank=2)
    assert cols.shape == (2, 6) and rows.shape == (2, 7)
    # Eckart-Young: the residual's spectral norm is the third singular value.
    np.testing.assert_allclose(np.linalg.norm(k - _rebuild(cols, rows), 2), full[2], rtol=1e-10)
    assert svd_separate(k, rank=99)[0].shape[0] == 6
    assert svd_separate(k, tol=full[1] * 1.0001)[0].shape[0] == 1
    assert numerical_rank(k, tol=full[3] * 0.9999) == 4
    k_in = k.copy()
    svd_separate(k)
    np.testing.assert_array_equal(k, k_in)


def test_integer_zero_and_errors():
    cols, rows, s = svd_separate(np.ones((3, 3), dtype=np.int64))
    assert cols.dtype == np.float64
    np.testing.assert_allclose(_rebuild(cols, rows), np.ones((3, 3)), atol=1e-14)
    cols, rows, s = svd_separate(np.zeros((3, 4)))
    assert cols.shape == (1, 3) and np.all(_rebuild(cols, rows) == 0)
    assert numerical_rank(np.zeros((3, 4))) == 0
    with pytest.raises(ValueError, match="kernel2d"):
        svd_separate(np.ones(3))
    with pytest.raises(TypeError, match="kernel2d"):
        svd_separate(np.ones((2, 2), complex))
    with pytest.raises(ValueError, match="rank"):
        svd_separate(np.ones((2, 2)), rank=-1)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_nonfinite_kernel_refused_without_lapack(bad, capfd):
    import fastconv

    k = np.ones((3, 3))
    k[2, 0] = bad
    for fn in (svd_separate, numerical_rank, fastconv.separate):
        with pytest.raises(ValueError, match="kernel2d must be finite"):
            fn(k)
    assert capfd.readouterr().out == ""  # LAPACK printed to stdout on inf
