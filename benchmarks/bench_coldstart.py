"""asv benchmarks of what a user pays once: importing fastconv and its first conv2d, fresh process.

``timeraw_`` benchmarks run each sample in a new interpreter, so nothing is warm; with
``jit_cache="uncached"`` Numba compiles from scratch (a fresh NUMBA_CACHE_DIR), as on first install.

``python -m benchmarks.bench_coldstart [--repeat N]`` times the issue's three first calls on the
Numba backend with an empty cache, each in a fresh process: wall time and the process's CPU time
(the compile runs on one core, so CPU time is the figure a loaded machine distorts least).
"""

from __future__ import annotations

import os

from ._common import REPO_ROOT, torch_available

# Makes the fresh interpreter find fastconv the way the benchmark process does: the installed
# package first, the in-place build in the repository as the fallback (asv --python=same).
_FIND_FASTCONV = f"""
import importlib.util, sys
if importlib.util.find_spec("fastconv") is None:
    sys.path.append({REPO_ROOT!r})
import numpy as np
"""

_FRESH_NUMBA_CACHE = """
import atexit, os, shutil, tempfile
_cache = tempfile.mkdtemp(prefix="fastconv-cold-")
os.environ["NUMBA_CACHE_DIR"] = _cache
atexit.register(shutil.rmtree, _cache, True)
"""

# A small layer: the first call's cost is compile/load/dispatch, not arithmetic.
_DATA = """
rng = np.random.default_rng(1234)
x = rng.standard_normal((1, 16, 32, 32)).astype(np.float32)
w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
x64 = rng.standard_normal((1, 64, 56, 56)).astype(np.float32)
w64 = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
wdw = rng.standard_normal((64, 1, 3, 3)).astype(np.float32)
img = rng.standard_normal((512, 512))
k5 = rng.standard_normal((5, 5))
"""

_FIRST_CALL = {
    "numba": ("import fastconv", "fastconv.conv2d(x, w, padding=1, backend='numba')"),
    "cython": ("import fastconv", "fastconv.conv2d(x, w, padding=1, backend='cython')"),
    # the cases: a ResNet-sized 64-channel 3x3 layer (the planner's default algorithm), a
    # depthwise layer and a float64 scipy-style filter, all on backend="numba"
    "numba-layer64": (
        "import fastconv",
        "fastconv.conv2d(x64, w64, padding=1, backend='numba')",
    ),
    "numba-depthwise": (
        "import fastconv",
        "fastconv.conv2d(x64, wdw, padding=1, groups=64, backend='numba')",
    ),
    "numba-correlate2d": (
        "import fastconv",
        "fastconv.signal.correlate2d(img, k5, mode='same', backend='numba')",
    ),
    "torch": (
        "import torch",
        "torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1)",
    ),
    "scipy": (
        "from scipy import signal",
        "xp = np.pad(x[0], ((0, 0), (1, 1), (1, 1)))\n"
        "[signal.correlate(xp, w[k], mode='valid') for k in range(16)]",
    ),
}


def _skip_unavailable(backend):
    if backend == "torch" and not torch_available():
        raise NotImplementedError("torch not importable")
    if backend == "cython":
        from ._common import require_backend

        require_backend("cython")


class Import:
    """``import fastconv`` (NumPy already imported) against ``import torch`` and scipy.signal."""

    params = (["fastconv", "torch", "scipy"],)
    param_names = ["package"]
    number = 1
    repeat = 3
    warmup_time = 0
    timeout = 120

    def setup(self, package):
        _skip_unavailable(package)

    def timeraw_import(self, package):
        stmt = {"fastconv": "import fastconv", "torch": "import torch"}.get(
            package, "from scipy import signal"
        )
        return stmt, _FIND_FASTCONV


class FirstCall:
    """The first conv2d call after import in a fresh process (Numba on-disk cache warm or empty)."""

    params = (
        [
            "numba",
            "numba-layer64",
            "numba-depthwise",
            "numba-correlate2d",
            "cython",
            "torch",
            "scipy",
        ],
        ["cached", "uncached"],
    )
    param_names = ["backend", "jit_cache"]
    number = 1
    repeat = 3
    warmup_time = 0
    timeout = 300

    def setup(self, backend, jit_cache):
        if jit_cache == "uncached" and not backend.startswith("numba"):
            raise NotImplementedError("only Numba has a JIT cache")
        _skip_unavailable(backend)
        if backend.startswith("numba") and jit_cache == "cached":
            # Fill the on-disk cache once, here, so the timed processes only load it.
            import subprocess
            import sys

            imp, stmt = _FIRST_CALL[backend]
            code = _FIND_FASTCONV + imp + "\n" + _DATA + stmt
            subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))

    def timeraw_first_conv2d(self, backend, jit_cache):
        imp, stmt = _FIRST_CALL[backend]
        setup = _FIND_FASTCONV + (_FRESH_NUMBA_CACHE if jit_cache == "uncached" else "")
        setup += imp + "\n" + _DATA
        return stmt, setup


_TIMED = """
import resource, sys, time
t0 = time.perf_counter()
{imp}
{data}
t1, c1 = time.perf_counter(), time.process_time()
{stmt}
t2, c2 = time.perf_counter(), time.process_time()
print(f"{{t1 - t0:.2f}} {{t2 - t1:.2f}} {{c2 - c1:.2f}}")
"""


def measure_first_calls(cases=("numba-layer64", "numba-depthwise", "numba-correlate2d"), repeat=1):
    """{case: [(import s, first call wall s, first call CPU s), ...]}, each run in a fresh process
    with an empty NUMBA_CACHE_DIR (the compile notice silenced so only figures are printed)."""
    import subprocess
    import sys
    import tempfile

    res = {}
    for case in cases:
        imp, stmt = _FIRST_CALL[case]
        code = _FIND_FASTCONV + _TIMED.format(imp=imp, data=_DATA, stmt=stmt)
        for _ in range(repeat):
            with tempfile.TemporaryDirectory(prefix="fastconv-cold-") as cache:
                env = dict(os.environ, NUMBA_CACHE_DIR=cache, FASTCONV_COMPILE_NOTICE_AFTER="1e9")
                out = subprocess.run(
                    [sys.executable, "-c", code],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            res.setdefault(case, []).append(tuple(float(v) for v in out.split()[-3:]))
    return res


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="first Numba calls on an empty cache, fresh processes")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    for case, runs in measure_first_calls(repeat=args.repeat).items():
        for imp, wall, cpu in runs:
            print(
                f"{case:<20} import {imp:5.2f} s  first call {wall:6.2f} s wall, {cpu:6.2f} s CPU"
            )
