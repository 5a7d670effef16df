"""The one thread knob: Numba, OpenMP (Cython) and BLAS threads, and the oversubscription policy.

Policy: fastconv's kernels parallelise over tiles themselves, so every BLAS call fastconv makes runs
with BLAS capped at one thread (`blas_single`), inside a parallel region or not: all of fastconv's
threads live in one pool (OpenMP or Numba's), since OpenBLAS's pool spinning after a call and
OpenMP's spinning after a region take the cores from each other (docs/design.md, Threads policy).  A forked child whose parent already
started an OpenMP pool runs single-threaded on the Cython backend, because GNU OpenMP is not
fork-safe (Numba's omp layer aborts, a libgomp pool hangs).
"""

from __future__ import annotations

import contextlib
import numbers
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

__all__ = ["get_num_threads", "set_num_threads", "threads"]


class _State(threading.local):
    override = None  # a class default: a missing attribute would cost an exception per lookup


_state = _State()
_num_threads = None  # None: all CPUs this process may use
_pools_started = False  # has this process entered an OpenMP / Numba parallel region?
_forked_after_pools = False
_blas_lock = threading.Lock()
_blas_depth = 0
_blas_saved = None
_controller = None


_cpus = None  # CPUs this process may use, read once (a syscall per call cost 2-3 us)


def _available_cpus():
    global _cpus
    if _cpus is None:
        try:
            _cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            _cpus = os.cpu_count() or 1
    return _cpus


def _after_fork_in_child():
    global _forked_after_pools, _blas_lock, _blas_depth, _blas_saved, _controller, _cpus
    _cpus = None  # a child may be pinned elsewhere
    _forked_after_pools = _pools_started
    _blas_lock = threading.Lock()
    _blas_depth = 0
    _blas_saved = None
    _controller = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def get_num_threads():
    """Number of threads fastconv's kernels use (in this thread's `threads` context, if any).

    Returns
    -------
    int
        The thread count; 1 in a forked child whose parent had started its thread pools.

    See Also
    --------
    set_num_threads : Set it for the process.
    threads : Set it for a block, in this Python thread.

    Examples
    --------
    >>> import fastconv
    >>> fastconv.get_num_threads() >= 1
    True
    """
    if _forked_after_pools:
        return 1
    n = getattr(_state, "override", None)
    if n is None:
        n = _num_threads if _num_threads is not None else _available_cpus()
    return n


# Busy machine: a parallel region ends at a barrier, so one of its threads descheduled by another
# process stalls the whole call for a time slice or more (measured, load 6-9 on 2 cores: MobileNetV2
# at batch 1 took 0.8-1.5 s on 2 threads against 76-92 ms on 1).  Like OpenMP's OMP_DYNAMIC, conv2d
# asks `budget()` and runs on no more threads than the CPUs other processes leave free, from a /proc
# sample refreshed every 50 ms.  FASTCONV_DYNAMIC_THREADS=0 turns it off.
dynamic = os.environ.get("FASTCONV_DYNAMIC_THREADS", "1") != "0"
_SAMPLE_SECONDS = 0.05
_sample = (-1.0, 0)  # (monotonic time, runnable tasks outside this process)
# The last /proc reading.  A cap needs the other tasks in two readings in a row: one reading sees
# kernel threads and workers that run for microseconds (2-4% of readings on an idle machine here,
# each of which capped conv2d at one thread for the next 50 ms; a 2-thread EfficientNet-B0 timing
# once ran at one thread's speed throughout).  A real busy process is seen 50 ms later too.
_last_seen = 1 << 30


def _others_running():
    """Runnable tasks on the machine that are not this process's threads (0 if /proc is absent)."""
    try:
        with open("/proc/loadavg", "rb") as f:
            running = int(f.read().split()[3].split(b"/")[0])
        own = 0
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                    stat = f.read()
            except OSError:  # the thread ended
                continue
            own += stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3] == b"R"
    except (OSError, ValueError, IndexError):
        return 0
    return max(0, running - own)


def budget():
    """Threads a conv2d call may use now: `get_num_threads()`, capped by the CPUs not taken by
    other processes' runnable tasks (at least 1), when `dynamic` is on."""
    global _sample, _last_seen
    n = get_num_threads()
    if n == 1 or not dynamic:
        return n
    now = time.monotonic()
    t, others = _sample
    if now - t > _SAMPLE_SECONDS:
        seen = _others_running()
        others = min(seen, _last_seen)
        _last_seen = seen
        _sample = (now, others)
    free = _available_cpus() - others
    return n if n <= free else (free if free > 1 else 1)


_LOGICAL_CPUS = os.cpu_count() or 1


def _check_n(n):
    if type(n) is not int and (not isinstance(n, numbers.Integral) or isinstance(n, bool)):
        raise TypeError(f"n must be an int, got {n!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    # the bound and why: set_num_threads's docstring.  The count is read once: os.cpu_count()
    # reads /sys on every call, 6.4 us, which made `with fastconv.threads(1)` cost 8 us
    cpus = _LOGICAL_CPUS
    if n > 4 * cpus:
        raise ValueError(
            f"n must be at most {4 * cpus} (4 x the {cpus} logical CPUs of this machine), got {n}"
        )
    return int(n)


def set_num_threads(n):
    """Set the number of threads for all of fastconv: Numba, OpenMP and BLAS calls it makes.

    Parameters
    ----------
    n : int
        Threads to use, from 1 to 4 x the machine's logical CPUs.  More than the CPUs
        available is allowed but oversubscribes.

    Raises
    ------
    TypeError
        `n` not an int (bools are refused).
    ValueError
        `n` below 1 or above 4 x ``os.cpu_count()``.  A few threads per CPU is a legitimate
        experiment (oversubscription; checking that results do not depend on the count); beyond
        that extra threads only cost: Numba's pool holds at most NUMBA_NUM_THREADS (the CPU count
        by default) and ignores the rest, OpenMP time-slices them, and every thread gets its own
        stack and packed-workspace tile, so memory grows with `n` (1000 threads is a typo, not
        a plan).

    See Also
    --------
    get_num_threads : The count in effect.
    threads : A temporary count for a block.

    Notes
    -----
    The BLAS libraries NumPy and SciPy ship are only adjusted for the duration of fastconv's own
    calls, never globally, so the rest of a program keeps its own BLAS settings.

    Examples
    --------
    >>> import fastconv
    >>> fastconv.set_num_threads(2)  # doctest: +SKIP
    >>> fastconv.set_num_threads(0)
    Traceback (most recent call last):
    ...
    ValueError: n must be >= 1, got 0
    """
    global _num_threads
    _num_threads = _check_n(n)


@contextlib.contextmanager
def threads(n):
    """Context manager: use `n` threads for fastconv calls made in this thread inside the block.

    Parameters
    ----------
    n : int
        Threads to use inside the block; `set_num_threads`'s rule (an int from 1 to 4 x the
        logical CPUs).

    Yields
    ------
    int
        `n`, the count in effect inside the block.

    Raises
    ------
    TypeError
        `n` not an int.
    ValueError
        `n` out of range.

    See Also
    --------
    set_num_threads : The process-wide count the block returns to.

    Examples
    --------
    >>> import fastconv
    >>> with fastconv.threads(1):
    ...     fastconv.get_num_threads()
    1
    """
    n = _check_n(n)
    prev = getattr(_state, "override", None)
    _state.override = n
    try:
        yield n
    finally:
        _state.override = prev


def mark_pools_started():
    """Called by the dispatch layer before a parallel kernel runs (fork-safety bookkeeping)."""
    global _pools_started
    _pools_started = True


def forked_after_pools():
    """True in a forked child whose parent had started OpenMP/Numba pools."""
    return _forked_after_pools


def _blas_libs():
    """[(get, set)] for each BLAS NumPy and SciPy ship: OpenBLAS on its pthreads layer through
    its own C entry points (1.3 us a call for get + set + restore on both libraries, against 11
    us through threadpoolctl's controllers, which a small call paid twice), any other BLAS
    through threadpoolctl."""
    global _controller
    if _controller is None:
        import scipy.linalg  # noqa: F401  (loads SciPy's BLAS, the one the kernels call)
        from threadpoolctl import ThreadpoolController

        knobs = []
        for lib in ThreadpoolController().lib_controllers:
            if lib.user_api != "blas":
                continue
            fast = None
            if lib.internal_api == "openblas" and lib.threading_layer == "pthreads":
                fast = _openblas_knob(lib.filepath)
            if fast is None:
                fast = (lambda lib=lib: lib.num_threads, lib.set_num_threads)
            knobs.append(fast)
        _controller = knobs
    return _controller


def _openblas_knob(path):
    """OpenBLAS's (get_num_threads, set_num_threads) in the library at `path` (already loaded),
    whatever its symbol prefix and suffix, or None."""
    import ctypes

    try:
        dll = ctypes.CDLL(path)
    except OSError:
        return None
    for prefix in ("", "scipy_"):
        for suffix in ("", "64_", "_64"):
            get = getattr(dll, f"{prefix}openblas_get_num_threads{suffix}", None)
            put = getattr(dll, f"{prefix}openblas_set_num_threads{suffix}", None)
            if get is not None and put is not None:
                get.restype, get.argtypes = ctypes.c_int, []
                put.restype, put.argtypes = None, [ctypes.c_int]
                return get, put
    return None


class _BlasCap:
    """The context manager `blas_threads` returns (a class, not a generator: this runs around
    every small call, and contextlib's machinery cost more than the cap itself)."""

    __slots__ = ("n",)

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        global _blas_depth, _blas_saved
        with _blas_lock:
            if _blas_depth == 0:
                saved = []
                for get, put in _blas_libs():
                    cur = get()
                    if cur != self.n:
                        put(self.n)
                        saved.append((put, cur))
                _blas_saved = saved
            _blas_depth += 1
        return self

    def __exit__(self, *exc):
        global _blas_depth, _blas_saved
        with _blas_lock:
            _blas_depth -= 1
            if _blas_depth == 0 and _blas_saved is not None:
                for put, cur in _blas_saved:
                    put(cur)
                _blas_saved = None
        return False


def blas_threads(n):
    """Cap the BLAS that NumPy/SciPy ship at `n` threads for the block, then restore.

    Reference-counted so concurrent fastconv calls from several Python threads restore the
    user's setting only when the last one leaves.
    """
    return _BlasCap(n)


_SINGLE = _BlasCap(1)


def blas_single():
    """BLAS on one thread: around every BLAS call fastconv makes (one thread pool)."""
    return _SINGLE


_POOL = {"pid": None, "pool": None, "size": 0}
_WORKER_PREFIX = "fastconv-worker"


def worker_pool(n):
    """A persistent pool of at least n Python worker threads (recreated after fork or to grow),
    for work split statically across threads that each run kernels on one thread: starting
    threads per call costs a measurable share of a millisecond-long call."""
    p = _POOL
    if p["pid"] != os.getpid() or p["size"] < n:
        p["pool"] = ThreadPoolExecutor(max(n, 1), thread_name_prefix=_WORKER_PREFIX)
        p["pid"], p["size"] = os.getpid(), max(n, 1)
    return p["pool"]
