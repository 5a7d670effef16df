"""The Numba options every fastconv kernel shares, fixed in one place, and the parallel-call wrapper.

The wrapper sets Numba's thread count from the kernel's `nthreads` argument, serialises calls when
Numba runs on its workqueue layer (which aborts on concurrent parallel calls), and switches to a serial
compilation of the same function in a forked child (GNU OpenMP, Numba's default layer here, is not
fork-safe).

Compilation is lazy: a kernel compiles on its first call, for the argument types of that call only
(one dtype), and `cache=True` stores the machine code for later processes.  A compile that takes
longer than `NOTICE_AFTER` seconds says so on stderr, once per kernel and dtype (a cache hit is not
a compile and stays silent).
"""

import os
import sys
import threading
import time
import types

import numba
from numba import njit
from numba.core import event

from .. import _threads

_OPTIONS = dict(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
_workqueue_lock = threading.Lock()


def _notice_after():
    try:
        return float(os.environ.get("FASTCONV_COMPILE_NOTICE_AFTER", "1"))
    except ValueError:
        return 1.0


#: Seconds a compile runs before the stderr notice is written (FASTCONV_COMPILE_NOTICE_AFTER sets
#: it: 0 tells of every compile, a large value silences the notice).
NOTICE_AFTER = _notice_after()

#: Every ParallelKernel, in definition order (what `python -m fastconv warmup` checks it reached).
KERNELS = []


def kernel(fn=None, *, inline=False):
    """A serial helper kernel, compiled on its own and inlined by LLVM into its callers.

    Numba's IR-level inlining (`inline=True`) runs every parfor pass of the parallel caller over the
    helper's body again: it made the Winograd kernel's first compile 2.5x slower and the packed
    one's 4x (benchmarks/bench_coldstart.py), for no speed on kernels whose helpers do a block of
    work per call.  Only a helper called per few dozen FMAs, which LLVM's size threshold would keep
    out of line, needs it.
    """
    if fn is None:
        return lambda f: kernel(f, inline=inline)
    return njit(inline="always" if inline else "never", **_OPTIONS)(fn)


class ParallelKernel:
    """A `@njit(parallel=True)` kernel whose last argument is the thread count."""

    #: the Numba options of both compilations (a subclass may drop fastmath, e.g. ndimage's)
    options = _OPTIONS

    def __init__(self, fn):
        self.py_func = fn
        self.parallel = njit(parallel=True, **self.options)(fn)
        self._serial = None
        self.__name__ = fn.__name__
        self.__qualname__ = fn.__qualname__
        self.__module__ = fn.__module__
        self.__doc__ = fn.__doc__
        _notice.watch(self.parallel, fn.__name__)
        KERNELS.append(self)

    @property
    def serial(self):
        if self._serial is None:
            # A distinct function object and qualname: Numba's cache is keyed by qualname, not by the
            # `parallel` flag, and would otherwise hand back the parallel machine code.
            fn = self.py_func
            twin = types.FunctionType(
                fn.__code__,
                fn.__globals__,
                fn.__name__ + "_serial",
                fn.__defaults__,
                fn.__closure__,
            )
            twin.__qualname__ = fn.__qualname__ + "_serial"
            twin.__module__ = fn.__module__
            serial = njit(**self.options)(twin)
            _notice.watch(serial, fn.__name__ + " (serial)")
            self._serial = serial
        return self._serial

    def __call__(self, *args):
        nthreads = args[-1]
        if _threads.forked_after_pools():
            return self.serial(*args)
        _threads.mark_pools_started()
        numba.set_num_threads(max(1, min(int(nthreads), numba.config.NUMBA_NUM_THREADS)))
        if _layer_is_workqueue():
            with _workqueue_lock:
                return self.parallel(*args)
        return self.parallel(*args)

    def compiled_dtypes(self):
        """Dtypes this process holds machine code for (compiled or loaded from the cache)."""
        return {_dtype_of(sig) for sig in self.parallel.signatures}

    def cached_dtypes(self):
        """Dtypes the on-disk cache holds valid machine code for, or None if that cannot be read.

        Reads the kernel's small cache index only (no machine code is loaded); an entry counts when
        it was made for this source, this Numba and this CPU, as a load would require.
        """
        try:
            cache = self.parallel._cache
            codegen = self.parallel.targetctx.codegen()
            index = cache._cache_file._load_index()
            return {_dtype_of(k[0]) for k in index if k == cache._index_key(k[0], codegen)}
        except Exception:  # a Numba without this (private) layout: say "unknown", never fail
            return None


def _dtype_of(argtypes):
    """The dtype of the first array argument of a Numba signature, as a NumPy name."""
    for t in argtypes:
        if isinstance(t, numba.types.Array):
            return str(t.dtype)
    return "scalar"


class _CompileNotice(event.Listener):
    """Writes "fastconv: compiling Numba kernel NAME[DTYPE] ..." to stderr when a watched kernel's
    compile passes NOTICE_AFTER seconds, and its duration when it ends; records every compile.

    Numba fires "numba:compile" only on a cache miss, so a load from the cache is never reported.
    Nested compiles (the helpers a kernel calls) fall inside the kernel's own event.
    """

    def __init__(self):
        self._names = {}  # id(dispatcher) -> kernel name
        self._active = threading.local()
        self._told = set()
        self._lock = threading.Lock()
        self.quiet = False  # warmup prints its own table
        self.log = []  # (name, dtype, seconds) of every watched compile in this process

    def watch(self, dispatcher, name):
        self._names[id(dispatcher)] = name

    def on_start(self, ev):
        name = self._names.get(id(ev.data["dispatcher"]))
        if name is None or getattr(self._active, "job", None) is not None:
            return
        dtype = _dtype_of(ev.data["args"])
        job = {"key": (name, dtype), "ev": id(ev.data["dispatcher"]), "t0": time.perf_counter()}
        job["told"] = False
        with self._lock:
            first = job["key"] not in self._told
            self._told.add(job["key"])
        if first and not self.quiet:
            job["timer"] = threading.Timer(max(0.0, NOTICE_AFTER), self._tell, (job,))
            job["timer"].daemon = True
            job["timer"].start()
        self._active.job = job

    def _tell(self, job):
        with self._lock:
            if job.get("done"):  # ended while the timer fired
                return
            name, dtype = job["key"]
            sys.stderr.write(
                f"fastconv: compiling Numba kernel {name}[{dtype}] "
                "(first use; cached for next time)... "
            )
            sys.stderr.flush()
            job["told"] = True

    def on_end(self, ev):
        job = getattr(self._active, "job", None)
        if job is None or job["ev"] != id(ev.data["dispatcher"]):
            return
        self._active.job = None
        seconds = time.perf_counter() - job["t0"]
        if "timer" in job:
            job["timer"].cancel()
        with self._lock:
            job["done"] = True
            if job["told"]:
                # (a failed compile raises to the caller, which says more than this line could;
                # Numba 0.68's Event.is_failed is inverted, so it is not consulted)
                sys.stderr.write(f"{seconds:.1f} s\n")
                sys.stderr.flush()
        self.log.append((*job["key"], seconds))


_notice = _CompileNotice()
event.register("numba:compile", _notice)


_layer = None


def _layer_is_workqueue():
    global _layer
    if _layer is None:
        try:
            _layer = numba.threading_layer()
        except ValueError:  # no parallel region has run yet: be safe until one has
            return True
    return _layer == "workqueue"


def parallel_kernel(fn):
    """Decorator: compile `fn` as a parallel Numba kernel behind a ParallelKernel wrapper."""
    return ParallelKernel(fn)
