"""The install CI tests is the one users get: Cython kernels built, with OpenMP, and the demo runs."""

import os
import subprocess
import sys

import pytest

from fastconv import _plan

IN_CI = bool(os.environ.get("CI"))


@pytest.mark.skipif(not IN_CI, reason="a developer tree may be Numba-only on purpose")
def test_cython_kernels_are_built_with_openmp():
    assert _plan.cython_available(), "fastconv._ext.conv is not built: backend='auto' would fall back"
    assert _plan.kernels("cython").openmp, "the Cython kernels were built without OpenMP"


def test_auto_backend_prefers_the_compiled_extension():
    assert _plan.resolve_backend("auto") == ("cython" if _plan.cython_available() else "numba")


def test_info_runs():
    r = subprocess.run([sys.executable, "-m", "fastconv", "info"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "fastconv" in r.stdout and "threads" in r.stdout


def test_demo_runs_and_checks_pass():
    r = subprocess.run([sys.executable, "-m", "fastconv", "demo"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all checks passed" in r.stdout
