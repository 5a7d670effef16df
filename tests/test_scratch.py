"""The scratch arena (_plan.scratch): per-thread reuse, alignment, limits, and that nothing a
public call returns ever lives in it."""

import threading

import numpy as np
import pytest

import fastconv
from fastconv import _plan
from fastconv import _reference as ref
from tests.conftest import BACKENDS


@pytest.fixture(autouse=True)
def _fresh_arena():
    _plan.free_scratch()
    yield
    _plan.free_scratch()


def _base_address(a):
    return a.__array_interface__["data"][0]


def test_slot_is_reused_aligned_and_shaped():
    a = _plan.scratch("t", (300, 100), np.float32)
    assert a.shape == (300, 100) and a.dtype == np.float32
    assert _base_address(a) % 64 == 0
    b = _plan.scratch("t", (300, 100), np.float32)
    assert _base_address(b) == _base_address(a)  # the same memory, no fresh pages
    c = _plan.scratch("t", 12_000, np.float64)  # smaller, another dtype: still the slot's buffer
    assert np.shares_memory(c, b) and c.shape == (12_000,) and _base_address(c) % 64 == 0
    d = _plan.scratch("u", (300, 100), np.float32)  # another slot: other memory
    assert not np.shares_memory(d, b)
    assert _plan.scratch_bytes() >= a.nbytes + d.nbytes


def test_huge_buffers_are_not_kept_small_ones_are():
    small = _plan.scratch("s", 100, np.float32)
    huge = _plan.scratch("h", (_plan._SCRATCH_SLOT // 4) + 1, np.float32)
    assert small.shape == (100,) and huge.size == _plan._SCRATCH_SLOT // 4 + 1
    assert _plan.scratch_bytes() == small.nbytes + 64
    assert not np.shares_memory(_plan.scratch("h", huge.size, np.float32), huge)
    assert np.shares_memory(_plan.scratch("s", 100, np.float32), small)


def test_a_repeated_request_gets_its_view_and_other_arguments_their_own():
    a = _plan.scratch("r", (30, 10), np.float32)
    assert _plan.scratch("r", (30, 10), np.float32) is a  # the remembered view
    b = _plan.scratch("r", (10, 30), np.float32)  # same bytes, another shape
    assert b.shape == (10, 30) and np.shares_memory(a, b)
    c = _plan.scratch("r", 300, np.dtype(np.float64))  # the dtype as a dtype, not a type
    assert c.shape == (300,) and c.dtype == np.float64 and _base_address(c) % 64 == 0
    d = _plan.scratch("r", (30, 10), np.float64)
    assert d.shape == (30, 10) and d.dtype == np.float64
    _plan.free_scratch()
    e = _plan.scratch("r", (30, 10), np.float32)  # freed: a new buffer, not the old view
    assert e is not a and e.shape == (30, 10)


def test_a_thread_keeps_at_most_the_total():
    n = (_plan._SCRATCH_SLOT - 64) // 8
    views = [_plan.scratch(f"slot{i}", n, np.float64) for i in range(8)]
    assert _plan.scratch_bytes() <= _plan._SCRATCH_TOTAL
    for i, v in enumerate(views):  # every view, kept or not, is its own memory
        v[:] = i
    assert [v[0] for v in views] == list(range(8)) and [v[-1] for v in views] == list(range(8))


def test_growing_a_slot_replaces_its_buffer():
    a = _plan.scratch("g", 20_000, np.float32)
    b = _plan.scratch("g", 40_000, np.float32)
    assert b.size == 40_000 and _plan.scratch_bytes() == b.nbytes + 64
    a[:] = 1  # the old view keeps its own buffer alive: writing it is safe
    b[:] = 2
    assert (a == 1).all()


def test_threads_have_their_own_slots_and_free_reaches_them():
    mine = _plan.scratch("t", 50_000, np.float32)
    theirs = []
    ready, done = threading.Event(), threading.Event()

    def worker():
        theirs.append(_plan.scratch("t", 50_000, np.float32))
        ready.set()
        done.wait(10)

    t = threading.Thread(target=worker)
    t.start()
    ready.wait(10)
    assert not np.shares_memory(mine, theirs[0])
    assert _plan.scratch_bytes() >= 2 * mine.nbytes
    _plan.free_scratch()
    assert _plan.scratch_bytes() == 0
    done.set()
    t.join()


def _conv2d_cases():
    rng = np.random.default_rng(3)
    return [
        (rng.standard_normal((2, 32, 24, 24), dtype=np.float32), (32, 32, 3, 3), dict(padding=1)),
        (rng.standard_normal((2, 8, 24, 24), dtype=np.float32), (16, 8, 5, 5), dict(padding=2)),
        (
            rng.standard_normal((2, 32, 28, 28), dtype=np.float32),
            (32, 1, 3, 3),
            dict(padding=1, groups=32),
        ),
        (
            rng.standard_normal((2, 64, 20, 20), dtype=np.float32),
            (64, 8, 3, 3),
            dict(padding=1, groups=8),
        ),
        (rng.standard_normal((1, 16, 33, 33)), (16, 16, 3, 3), dict(padding=4, dilation=4)),
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_conv2d_results_survive_later_calls_on_every_algorithm(backend):
    """A result computed through scratch is unchanged by every later call (it never lives there)."""
    rng = np.random.default_rng(4)
    for x, wshape, kw in _conv2d_cases():
        w = rng.standard_normal(wshape).astype(x.dtype)
        expected = ref.conv2d(x, w, **kw)
        for algo in fastconv.algorithms(x.shape, w.shape, dtype=x.dtype, backend=backend, **kw):
            y = fastconv.conv2d(x, w, algorithm=algo, backend=backend, **kw)
            kept = y.copy()
            for _ in range(2):  # the same shapes again, then other data: the slots are rewritten
                fastconv.conv2d(x * 2, w, algorithm=algo, backend=backend, **kw)
            np.testing.assert_array_equal(y, kept)
            tol = 1e-4 if x.dtype == np.float32 else 1e-10
            np.testing.assert_allclose(y, expected, rtol=tol, atol=tol * np.abs(expected).max())


def _transpose_loop(x, w, s, p):
    """float64 conv_transpose2d (groups 1, dilation 1) as the scatter it is, sizes its own."""
    N, C, H, W = x.shape
    _, K, kh, kw = w.shape
    Ho, Wo = (H - 1) * s - 2 * p + kh, (W - 1) * s - 2 * p + kw
    full = np.zeros((N, K, (H - 1) * s + kh, (W - 1) * s + kw))
    for a in range(kh):
        for b in range(kw):
            contrib = np.einsum("nchw,ck->nkhw", x.astype(np.float64), w[:, :, a, b])
            full[:, :, a : a + (H - 1) * s + 1 : s, b : b + (W - 1) * s + 1 : s] += contrib
    return full[:, :, p : p + Ho, p : p + Wo]


@pytest.mark.parametrize("backend", BACKENDS)
def test_transpose_and_backward_results_survive_later_calls(backend):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 64, 8, 8), dtype=np.float32)
    w = rng.standard_normal((64, 32, 4, 4), dtype=np.float32)
    y = fastconv.conv_transpose2d(x, w, stride=2, padding=1, backend=backend)
    kept = y.copy()
    fastconv.conv_transpose2d(x + 1, w, stride=2, padding=1, backend=backend)
    np.testing.assert_array_equal(y, kept)
    np.testing.assert_allclose(y, _transpose_loop(x, w, 2, 1), rtol=1e-4, atol=1e-3)
    xf = rng.standard_normal((4, 16, 20, 20), dtype=np.float32)
    wf = rng.standard_normal((16, 16, 3, 3), dtype=np.float32)
    go = rng.standard_normal((4, 16, 10, 10), dtype=np.float32)
    grads = fastconv.conv2d_backward(xf, wf, go, stride=2, padding=1, backend=backend)
    kept = [gr.copy() for gr in grads]
    fastconv.conv2d_backward(xf * 3, wf, go - 1, stride=2, padding=1, backend=backend)
    for gr, k in zip(grads, kept, strict=True):
        np.testing.assert_array_equal(gr, k)


def test_concurrent_transposed_convolutions_from_python_threads():
    """Threads share no slot: concurrent calls give the serial results."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(6)
    xs = [rng.standard_normal((4, 64, 8, 8), dtype=np.float32) for _ in range(6)]
    w = rng.standard_normal((64, 32, 4, 4), dtype=np.float32)
    serial = [fastconv.conv_transpose2d(x, w, stride=2, padding=1) for x in xs]
    with ThreadPoolExecutor(3) as pool:
        got = list(pool.map(lambda x: fastconv.conv_transpose2d(x, w, stride=2, padding=1), xs * 3))
    for i, y in enumerate(got):
        np.testing.assert_array_equal(y, serial[i % len(xs)])
