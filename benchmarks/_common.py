"""Shared setup for fastconv's asv benchmarks: data, peers, layer suite, GFLOP/s, JIT warm-up.

Stable API for every benchmarks/bench_*.py and script (add names, never change these):
``fastconv`` (the imported package), ``rng()``, ``BACKENDS``, ``require_backend(name)``,
``THREADS``, ``require_torch()`` (lazy; ``torch`` attribute too), ``torch_available()``,
``load_layers()``, ``LAYERS``, ``layer_flops(spec)``, ``layer_out_hw(spec)``,
``layer_gemm_shape(spec)``, ``layer_arrays(spec, dtype)``, ``gflops(flops, seconds)``,
``best_time(fn, repeat)``, ``blas_limit(n)``, ``sgemm_gflops(m, k, n, dtype, repeat, threads)``,
``use_threads(n)`` (returns a restore function), ``warm(fn, *args, **kwargs)``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(_HERE)

try:
    import fastconv
except ImportError:  # the in-place build (`setup.py build_ext --inplace`) with asv --python=same
    # Only a fallback: under `asv run` the commit's own build in asv's virtualenv must win, so the
    # working tree is never put ahead of an installed fastconv.
    sys.path.append(REPO_ROOT)
    import fastconv

__all__ = [
    "BACKENDS",
    "LAYERS",
    "SEED",
    "THREADS",
    "best_time",
    "fastconv",
    "gflops",
    "layer_arrays",
    "layer_flops",
    "layer_out_hw",
    "load_layers",
    "require_backend",
    "require_torch",
    "rng",
    "sgemm_gflops",
    "blas_limit",
    "layer_gemm_shape",
    "torch_available",
    "use_threads",
    "warm",
]

_torch = None


def require_torch():
    """The torch module, or NotImplementedError (asv skips the benchmark) when not importable.

    Imported on first use, never at module import: torch brings its own OpenMP runtime, and the
    fastconv-only benchmarks should run in processes that do not have it loaded.
    """
    global _torch
    if _torch is None:
        try:
            import torch as _t
        except ImportError:
            raise NotImplementedError("torch not importable") from None
        _torch = _t
    return _torch


def torch_available():
    """Whether torch could be imported, without importing it."""
    return importlib.util.find_spec("torch") is not None


def __getattr__(name):
    # `from ._common import torch` keeps working (the module, or None), imported only on request.
    if name == "torch":
        try:
            return require_torch()
        except NotImplementedError:
            return None
    raise AttributeError(name)


SEED = 1234
BACKENDS = ("numba", "cython")
# One thread and every CPU we may use: ratios at both ends show the parallel scaling.
_NCPU = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
THREADS = (1, _NCPU) if _NCPU > 1 else (1,)


def rng():
    """A fresh generator with the house seed, so every benchmark sees the same data."""
    return np.random.default_rng(SEED)


def require_backend(name):
    """Raise NotImplementedError (asv's "skip") when backend `name` is not built here."""
    from fastconv import _plan

    if name == "cython" and not _plan.cython_available("conv"):
        raise NotImplementedError("cython backend not built")
    return name


def load_layers():
    """The public layer suite (fastconv._bench.PUBLIC_LAYERS).

    Returns
    -------
    dict
        name -> (N, C, H, W, K, kh, kw, stride, padding, dilation, groups)
    """
    from fastconv._bench import load_public_layers

    return load_public_layers()[0]


LAYERS = load_layers()


def layer_out_hw(spec):
    """(Ho, Wo) of a layer spec."""
    _, _, h, w, _, kh, kw, s, p, d, _ = spec
    return (h + 2 * p - d * (kh - 1) - 1) // s + 1, (w + 2 * p - d * (kw - 1) - 1) // s + 1


def layer_flops(spec):
    """FLOPs (2 per multiply-add) of one conv2d call on a layer spec."""
    n, c, _, _, k, kh, kw, _, _, _, g = spec
    ho, wo = layer_out_hw(spec)
    return 2.0 * n * k * ho * wo * (c // g) * kh * kw


def layer_arrays(spec, dtype=np.float32):
    """(x, weight, conv2d keyword arguments) for a layer spec, from the house seed."""
    n, c, h, w, k, kh, kw, s, p, d, g = spec
    r = rng()
    x = r.standard_normal((n, c, h, w)).astype(dtype)
    wt = r.standard_normal((k, c // g, kh, kw)).astype(dtype)
    return x, wt, dict(stride=s, padding=p, dilation=d, groups=g)


def gflops(flops, seconds):
    """GFLOP/s of `flops` done in `seconds`."""
    return flops / seconds / 1e9


def best_time(fn, repeat=5):
    """Best wall time of `repeat` calls of `fn()` (a noisy machine: the minimum is the signal)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


_controller = None


def _blas_controller():
    global _controller
    if _controller is None:
        import scipy.linalg  # noqa: F401  (loads SciPy's own BLAS, so it is controlled too)
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


def blas_limit(n):
    """Context capping the BLAS that NumPy/SciPy ship at `n` threads (threadpoolctl).

    Also usable as a plain call: keep the result and call ``.restore_original_limits()``.
    """
    return _blas_controller().limit(limits=n, user_api="blas")


def use_threads(n):
    """Run fastconv, the BLAS NumPy/SciPy ship, and torch (if loaded) on `n` threads.

    Returns a function that restores the previous settings (call it from ``teardown``).
    """
    prev = fastconv.get_num_threads()
    fastconv.set_num_threads(n)
    limiter = blas_limit(n)
    t = _torch
    prev_torch = t.get_num_threads() if t is not None else None
    if t is not None:
        t.set_num_threads(n)

    def restore():
        fastconv.set_num_threads(prev)
        limiter.restore_original_limits()
        if t is not None:
            t.set_num_threads(prev_torch)

    return restore


def layer_gemm_shape(spec):
    """(m, k, n) of one group's GEMM in a layer: (K/g x C/g*kh*kw) @ (C/g*kh*kw x N*Ho*Wo)."""
    n, c, _, _, k, kh, kw, _, _, _, g = spec
    ho, wo = layer_out_hw(spec)
    return k // g, (c // g) * kh * kw, n * ho * wo


def sgemm_gflops(m, k, n, dtype=np.float32, repeat=5, threads=None):
    """NumPy's matmul rate on an (m, k) @ (k, n) product: the BLAS yardstick for a conv's GEMM.

    `threads` caps BLAS for the measurement (default: BLAS as configured).
    """
    r = rng()
    a = r.standard_normal((m, k)).astype(dtype)
    b = r.standard_normal((k, n)).astype(dtype)
    c = np.empty((m, n), dtype=dtype)

    def run():
        np.matmul(a, b, out=c)
        return gflops(2.0 * m * k * n, best_time(lambda: np.matmul(a, b, out=c), repeat))

    if threads is None:
        return run()
    with blas_limit(threads):
        return run()


def _preload():
    """Import both backends' kernel modules and scan the BLAS libraries once, at import.

    asv's forkserver imports the benchmark modules once and forks a process per benchmark and
    parameter set, so what is loaded here is not paid again in each of those few hundred
    processes (Numba's import and cached-kernel load cost about a second each).  Nothing runs:
    no thread pool starts before the fork.  torch stays out (its OpenMP runtime would be loaded
    into every fastconv measurement).
    """
    import pkgutil

    for pkg in ("fastconv._jit", "fastconv._ext"):
        try:
            mod = importlib.import_module(pkg)
        except ImportError:
            continue
        try:  # an ISA build above this CPU's level would stop the process with SIGILL
            from fastconv._plan import isa_runnable
        except ImportError:  # an old commit: leave every ISA build out

            def isa_runnable(name):
                return not name.startswith("_isa_")

        for info in pkgutil.iter_modules(mod.__path__):
            if not isa_runnable(info.name):
                continue
            try:
                importlib.import_module(f"{pkg}.{info.name}")
            except Exception:  # an old commit, a missing extension: the benchmark will say
                pass
    try:
        _blas_controller()
        fastconv._threads._blas_libs()
    except Exception:
        pass
    try:  # Numba's typing and target contexts: a serial function starts no thread pool
        import numba

        numba.njit(lambda a: a + 1)(1)
    except Exception:
        pass


_preload()


def warm(fn, *args, **kwargs):
    """Call `fn` twice so Numba's compile and first-touch costs stay out of the timings."""
    fn(*args, **kwargs)
    return fn(*args, **kwargs)
