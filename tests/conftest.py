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
