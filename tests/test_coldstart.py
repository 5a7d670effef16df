"""The Numba backend's first-use behaviour in fresh processes: the compile notice and the cache.

Each test runs Python in a subprocess with its own empty NUMBA_CACHE_DIR, so nothing compiled by
this test session (or cached beside the sources) can make a cold start look warm.  No test times
anything: they check what is printed and what the cache holds.
"""

import os
import subprocess
import sys

import pytest

# one small kernel: im2col on a tiny float64 input compiles in a few seconds
_IM2COL = (
    "import numpy as np, fastconv\n"
    "x = np.arange(2 * 5 * 5, dtype=np.float64).reshape(1, 2, 5, 5)\n"
    "cols = fastconv.im2col(x, 3, padding=1, backend='numba')\n"
    "assert cols.shape == (1, 18, 25)\n"
)


def _run(code, cache_dir, *args, notice_after="0", timeout=600):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    env["FASTCONV_COMPILE_NOTICE_AFTER"] = notice_after
    cmd = [sys.executable, *(("-c", code) if code else ()), *args]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stderr
    return res


@pytest.mark.timeout(600)
def test_compile_notice_on_cold_cache_only(tmp_path):
    # threshold 0: the notice's presence does not depend on how fast this machine compiles
    cold = _run(_IM2COL, tmp_path)
    lines = [ln for ln in cold.stderr.splitlines() if ln.startswith("fastconv: compiling")]
    assert len(lines) == 1, cold.stderr
    assert "im2col[float64]" in lines[0] and "cached for next time" in lines[0]
    assert lines[0].rstrip().endswith(" s"), lines[0]  # the time it took ends the line
    warm = _run(_IM2COL, tmp_path)
    assert "fastconv: compiling" not in warm.stderr, warm.stderr


@pytest.mark.timeout(600)
def test_notice_threshold_silences_short_compiles(tmp_path):
    res = _run(_IM2COL, tmp_path, notice_after="1e9")
    assert "fastconv: compiling" not in res.stderr, res.stderr


@pytest.mark.timeout(120)
def test_info_reports_a_cold_cache(tmp_path):
    res = _run(None, tmp_path, "-m", "fastconv", "info")
    (line,) = [ln for ln in res.stdout.splitlines() if ln.startswith("numba cache")]
    assert "cold: 0 of" in line, line


@pytest.mark.timeout(1800)
@pytest.mark.skipif(
    not os.environ.get("FASTCONV_TEST_WARMUP"),
    reason="compiles every kernel for two dtypes (minutes); CI sets FASTCONV_TEST_WARMUP=1",
)
def test_warmup_compiles_every_kernel(tmp_path):
    res = _run(None, tmp_path, "-m", "fastconv", "warmup", notice_after="1e9", timeout=1800)
    assert "not reached" not in res.stdout, res.stdout  # every kernel a public call can run
    assert "warmup:" in res.stdout and "ready in" in res.stdout
    info = _run(None, tmp_path, "-m", "fastconv", "info")
    assert "numba cache  warm: all" in info.stdout, info.stdout
    # a later process finds everything cached: no compile, so no notice even at threshold 0
    layer = (
        "import numpy as np, fastconv\n"
        "x = np.ones((1, 64, 16, 16), np.float32); w = np.ones((64, 64, 3, 3), np.float32)\n"
        "fastconv.conv2d(x, w, padding=1, backend='numba')\n"
    )
    assert "fastconv: compiling" not in _run(layer, tmp_path).stderr
