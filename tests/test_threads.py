"""The thread knob: one setting for Numba, OpenMP and BLAS; restored after each call."""

import os
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import fastconv
from fastconv import _threads


def test_set_get_and_context():
    before = fastconv.get_num_threads()
    try:
        fastconv.set_num_threads(1)
        assert fastconv.get_num_threads() == 1
        with fastconv.threads(2):
            assert fastconv.get_num_threads() == 2
            seen = []
            t = threading.Thread(target=lambda: seen.append(fastconv.get_num_threads()))
            t.start()
            t.join()
            assert seen == [1]  # the context is per Python thread
        assert fastconv.get_num_threads() == 1
    finally:
        fastconv.set_num_threads(before)


@pytest.mark.parametrize(
    "bad,exc",
    [
        (0, ValueError),
        (-1, ValueError),
        (1.5, TypeError),
        (True, TypeError),
        ("2", TypeError),
        (None, TypeError),
        (1000, ValueError),  # issue 13: accepted silently before
        (4 * (os.cpu_count() or 1) + 1, ValueError),
        (2**64, ValueError),
    ],
)
def test_bad_thread_count(bad, exc):
    with pytest.raises(exc, match="n must be"):
        fastconv.set_num_threads(bad)
    with pytest.raises(exc, match="n must be"):
        with fastconv.threads(bad):
            pass


def test_thread_count_bound_is_four_per_cpu():
    before = fastconv.get_num_threads()
    top = 4 * (os.cpu_count() or 1)
    try:
        fastconv.set_num_threads(top)
        assert fastconv.get_num_threads() == top
        fastconv.set_num_threads(np.int64(1))  # NumPy ints are ints
        assert fastconv.get_num_threads() == 1
        with pytest.raises(ValueError, match="at most"):
            fastconv.set_num_threads(top + 1)
        assert fastconv.get_num_threads() == 1  # a refused call changes nothing
    finally:
        fastconv.set_num_threads(before)


def _blas_threads():
    return sorted(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")


def test_blas_setting_is_restored_after_a_call():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 12, 12)).astype(np.float32)
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    fastconv.conv2d(x, w)  # loads SciPy's BLAS
    before = _blas_threads()
    with _threads.blas_single():
        assert set(_blas_threads()) == {1}
    assert _blas_threads() == before
    fastconv.conv2d(x, w, padding=1)
    fastconv.conv2d(x, w[:, :, :1, :1])  # pointwise: BLAS at fastconv's thread count
    assert _blas_threads() == before


def test_results_do_not_depend_on_thread_count(backend):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6, 17, 13))
    w = rng.standard_normal((5, 6, 3, 3))
    outs = []
    for n in (1, 2, 3):
        with fastconv.threads(n):
            outs.append(fastconv.conv2d(x, w, padding=1, backend=backend))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(outs[0], outs[2], rtol=1e-12, atol=1e-12)
