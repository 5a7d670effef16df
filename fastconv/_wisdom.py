"""Tuned plans remembered across processes (like FFTW's wisdom): a small JSON file in the user's cache.

`fastconv.tune` times the applicable algorithms of a call and records the winner here; the planner
looks a geometry up before it uses its cost model.  The file is written atomically (temporary file
and rename, merged under an advisory lock), ignored when unreadable, and keyed by CPU and version.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

__all__ = ["cache_dir", "clear", "lookup", "path", "record"]

_VERSION = 1
_loaded = None  # {key: [algorithm, nthreads]} for this machine, read once per process
_loaded_from = None


def cache_dir():
    """FASTCONV_CACHE_DIR, else the platform's per-user cache directory + "fastconv"."""
    env = os.environ.get("FASTCONV_CACHE_DIR")
    if env:
        return env
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~")
        return os.path.join(base, "fastconv", "Cache")
    if sys.platform == "darwin":
        return os.path.expanduser("~/Library/Caches/fastconv")
    return os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fastconv"
    )


def path():
    """The wisdom file."""
    return os.path.join(cache_dir(), "wisdom.json")


def _machine():
    from . import __version__

    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), ""
            )
    except OSError:
        pass
    import platform

    return f"{cpu or platform.processor() or platform.machine()}|{os.cpu_count()}|fastconv {__version__}"


def _read(p):
    """The file's entries for this machine; {} when missing, unreadable or of another format."""
    try:
        with open(p) as f:
            data = json.load(f)
        if data.get("version") != _VERSION or not isinstance(data.get("machines"), dict):
            return {}, {}
        return data["machines"], dict(data["machines"].get(_machine(), {}))
    except (OSError, ValueError, AttributeError, TypeError):
        return {}, {}


def _entries():
    global _loaded, _loaded_from
    p = path()
    if _loaded is None or _loaded_from != p:
        _loaded = _read(p)[1]
        _loaded_from = p
    return _loaded


def key(geom, backend, nthreads, per_sample):
    g = geom
    fields = (
        g.N,
        g.C,
        g.H,
        g.W,
        g.K,
        g.kh,
        g.kw,
        g.sh,
        g.sw,
        g.pt,
        g.pb,
        g.pl,
        g.pr,
        g.dh,
        g.dw,
        g.groups,
    )
    return f"{','.join(map(str, fields))}|{g.dtype.char}|{backend}|{nthreads}|{int(per_sample)}"


def lookup(geom, backend, nthreads, per_sample=False):
    """(algorithm, nthreads) tuned for this call, or None."""
    entries = _entries()
    if not entries:
        return None
    hit = entries.get(key(geom, backend, nthreads, per_sample))
    return tuple(hit) if hit else None


def record(geom, backend, nthreads, per_sample, algorithm, threads_used, persist=True):
    """Remember a tuned choice, in this process and (persist) in the file, merged with what
    other processes wrote."""
    global _loaded
    k = key(geom, backend, nthreads, per_sample)
    _entries()[k] = [algorithm, int(threads_used)]
    if not persist:
        return
    d = cache_dir()
    try:
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "wisdom.lock"), "a") as lock:
            try:
                import fcntl

                fcntl.flock(lock, fcntl.LOCK_EX)
            except (ImportError, OSError):  # no advisory locks here: last writer wins, still whole
                pass
            machines, mine = _read(path())
            mine[k] = [algorithm, int(threads_used)]
            machines[_machine()] = mine
            fd, tmp = tempfile.mkstemp(dir=d, prefix=".wisdom-", suffix=".json")
            with os.fdopen(fd, "w") as f:
                json.dump({"version": _VERSION, "machines": machines}, f, indent=0, sort_keys=True)
            os.replace(tmp, path())
            _loaded = mine
    except OSError:
        pass  # a read-only home: the choice still holds for this process


def clear():
    """Forget all tuned choices (the file and this process's copy)."""
    global _loaded
    _loaded = {}
    try:
        os.remove(path())
    except OSError:
        pass
