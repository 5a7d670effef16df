"""asv benchmarks of what a user pays once: importing fastconv and its first conv2d, fresh process.

``timeraw_`` benchmarks run each sample in a new interpreter, so nothing is warm; with
``jit_cache="uncached"`` Numba compiles from scratch (a fresh NUMBA_CACHE_DIR), as on first install.
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
"""

_FIRST_CALL = {
    "numba": ("import fastconv", "fastconv.conv2d(x, w, padding=1, backend='numba')"),
    "cython": ("import fastconv", "fastconv.conv2d(x, w, padding=1, backend='cython')"),
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

    params = (["numba", "cython", "torch", "scipy"], ["cached", "uncached"])
    param_names = ["backend", "jit_cache"]
    number = 1
    repeat = 3
    warmup_time = 0
    timeout = 300

    def setup(self, backend, jit_cache):
        if jit_cache == "uncached" and backend != "numba":
            raise NotImplementedError("only Numba has a JIT cache")
        _skip_unavailable(backend)
        if backend == "numba" and jit_cache == "cached":
            # Fill the on-disk cache once, here, so the timed processes only load it.
            import subprocess
            import sys

            imp, stmt = _FIRST_CALL["numba"]
            code = _FIND_FASTCONV + imp + "\n" + _DATA + stmt
            subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))

    def timeraw_first_conv2d(self, backend, jit_cache):
        imp, stmt = _FIRST_CALL[backend]
        setup = _FIND_FASTCONV + (_FRESH_NUMBA_CACHE if jit_cache == "uncached" else "")
        setup += imp + "\n" + _DATA
        return stmt, setup
