"""The Numba options every fastconv kernel shares, fixed in one place, and the parallel-call wrapper.

The wrapper sets Numba's thread count from the kernel's `nthreads` argument, serialises calls when
Numba runs on its workqueue layer (which aborts on concurrent parallel calls), and switches to a serial
compilation of the same function in a forked child (GNU OpenMP, Numba's default layer here, is not
fork-safe).
"""

import threading
import types

import numba
from numba import njit

from .. import _threads

_OPTIONS = dict(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
_workqueue_lock = threading.Lock()


def kernel(fn):
    """A serial helper kernel (inlined into the parallel kernels that call it)."""
    return njit(inline="always", **_OPTIONS)(fn)


class ParallelKernel:
    """A `@njit(parallel=True)` kernel whose last argument is the thread count."""

    def __init__(self, fn):
        self.py_func = fn
        self.parallel = njit(parallel=True, **_OPTIONS)(fn)
        self._serial = None
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__

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
            self._serial = njit(**_OPTIONS)(twin)
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
