import numpy as np
import pytest

from fastconv import _plan

BACKENDS = ["numba"] + (["cython"] if _plan.cython_available() else [])


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return np.dtype(request.param)


@pytest.fixture(autouse=True)
def _static_thread_budget(monkeypatch):
    """Plans in tests depend on arguments only, not on what else the machine runs: the busy-machine
    budget (fastconv._threads.budget) is off unless a test turns it on itself."""
    from fastconv import _threads

    monkeypatch.setattr(_threads, "dynamic", False)
