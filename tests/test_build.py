"""The install CI tests is the one users get: Cython kernels built, with OpenMP, and the demo runs."""

import os
import subprocess
import sys

import pytest

from fastconv import _plan

IN_CI = bool(os.environ.get("CI"))


@pytest.mark.skipif(not IN_CI, reason="a developer tree may be Numba-only on purpose")
def test_cython_kernels_are_built_with_openmp():
    assert _plan.cython_available(), (
        "fastconv._ext.conv is not built: backend='auto' would fall back"
    )
    assert _plan.kernels("cython").openmp, "the Cython kernels were built without OpenMP"


def test_auto_backend_prefers_the_compiled_extension():
    assert _plan.resolve_backend("auto") == ("cython" if _plan.cython_available() else "numba")


def test_info_runs():
    r = subprocess.run(
        [sys.executable, "-m", "fastconv", "info"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr
    assert "fastconv" in r.stdout and "threads" in r.stdout


def test_demo_runs_and_checks_pass():
    r = subprocess.run(
        [sys.executable, "-m", "fastconv", "demo"], capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all checks passed" in r.stdout


def test_every_isa_build_gives_the_same_results():
    """The baseline, AVX2 and AVX-512 builds of the loop kernels agree (the CPU picks one at run time)."""
    import importlib

    import numpy as np
    from tolerance import assert_close

    from fastconv._geometry import conv_geometry

    names = ["fastconv._ext.conv", "fastconv._ext._isa_conv_v3", "fastconv._ext._isa_conv_v4"]
    level = _plan.cpu_level()
    runnable = names[: 1 + ["", "v3", "v4"].index(level)]
    mods = []
    for n in runnable:
        try:
            mods.append(importlib.import_module(n))
        except ImportError:
            if IN_CI:
                raise
    if len(mods) < 2:
        pytest.skip("only one ISA build available here")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 13, 41)).astype(np.float32)  # wide enough for the 2x32 blocks
    wd = rng.standard_normal((12, 1, 3, 3)).astype(np.float32)
    wg = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    results = []
    for m in mods:
        x4, w4, _, g = conv_geometry(x, wd, None, 1, 1, 1, 6)
        dw = np.empty(g.out_shape, np.float32)
        ws = np.empty((2, m.depthwise_planes_workspace(g.as_array())), np.float32)
        m.conv_depthwise_planes(
            x4, w4.reshape(1, 12, 9), np.zeros((1, 1), np.float32), False, g.as_array(), dw, ws, 2
        )
        x4, w4, _, g = conv_geometry(x, wg, None, 2, 1, 1, 2)
        gm = np.empty((g.N, g.K, g.P), np.float32)
        ws = np.empty((2, m.conv_gemm_workspace(g.R, g.Kg, 16)), np.float32)
        m.conv_gemm(
            x4,
            w4.reshape(1, 4, -1),
            np.zeros((1, 1), np.float32),
            False,
            g.as_array(),
            gm,
            ws,
            16,
            2,
        )
        results.append((dw, gm))
    for dw, gm in results[1:]:
        assert_close(dw, results[0][0], np.float32)
        assert_close(gm, results[0][1], np.float32)
