"""The one tolerance table (DESIGN.md): float32 rtol 1e-4, float64 rtol 1e-10, relative to max |ref|."""

import numpy as np

RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}


def assert_close(actual, reference, dtype=None):
    """Assert |actual - reference| <= rtol * max|reference| elementwise, with the dtype's rtol."""
    actual = np.asarray(actual)
    reference = np.asarray(reference)
    dtype = np.dtype(dtype or actual.dtype)
    assert actual.shape == reference.shape, (actual.shape, reference.shape)
    if reference.size == 0:
        return
    scale = max(float(np.max(np.abs(reference))), 1.0)
    err = float(np.max(np.abs(actual.astype(np.float64) - reference.astype(np.float64))))
    assert err <= RTOL[dtype] * scale, f"max error {err:g} > {RTOL[dtype]:g} * {scale:g}"
