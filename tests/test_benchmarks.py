"""Smoke test of every asv benchmark in benchmarks/bench_*.py, without asv.

Each benchmark method runs once on its first parameter combination that is not skipped (asv's
NotImplementedError in setup), so a broken benchmark fails here in seconds, not in CI's asv pass.
"""

from __future__ import annotations

import glob
import importlib
import inspect
import itertools
import math
import numbers
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

PREFIXES = ("time_", "timeraw_", "mem_", "peakmem_", "track_")
MODULES = sorted(
    os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "benchmarks", "bench_*.py"))
)


def _is_benchmark(name, obj):
    return name.startswith(PREFIXES) and callable(obj)


def _collect():
    """(id, module name, class name or None, method name) for every benchmark asv would find."""
    found = []
    for modname in MODULES:
        try:
            mod = importlib.import_module("benchmarks." + modname)
        except Exception as exc:  # reported as its own failing case below
            found.append(pytest.param(modname, None, None, id=f"{modname}:import", marks=()))
            _IMPORT_ERRORS[modname] = exc
            continue
        for name, obj in sorted(vars(mod).items()):
            if inspect.isclass(obj) and obj.__module__ == mod.__name__:
                for meth in sorted(dir(obj)):
                    if _is_benchmark(meth, getattr(obj, meth)):
                        found.append(
                            pytest.param(modname, name, meth, id=f"{modname}.{name}.{meth}")
                        )
            elif inspect.isfunction(obj) and _is_benchmark(name, obj):
                found.append(pytest.param(modname, None, name, id=f"{modname}.{name}"))
    return found


_IMPORT_ERRORS = {}
CASES = _collect()


def _combinations(owner):
    params = getattr(owner, "params", None)
    if params is None or params == []:
        return [()]
    if not isinstance(params, (list, tuple)) or not params or not isinstance(params[0], list):
        params = [params]  # asv: a single list of values means one parameter
    return list(itertools.product(*params))


def _run_timeraw(code):
    stmt, setup = code if isinstance(code, tuple) else (code, "")
    src = textwrap.dedent(setup) + "\n" + textwrap.dedent(stmt) + "\n"
    r = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]


_CACHES = {}


def _setup_cache(cls):
    """asv runs one setup_cache per function (classes may share one): so does this test."""
    fn = cls.setup_cache
    if fn not in _CACHES:
        _CACHES[fn] = cls().setup_cache()
    return _CACHES[fn]


def _call(fn, args):
    return fn(*args)


def test_benchmarks_found():
    """The suite is not empty, and this file's own modules are there."""
    assert {"bench_conv", "bench_im2col", "bench_coldstart"} <= set(MODULES)
    assert len(CASES) >= 10


@pytest.mark.slow
@pytest.mark.parametrize("modname,clsname,method", CASES)
def test_benchmark_runs_once(modname, clsname, method):
    if clsname is None and method is None:
        raise _IMPORT_ERRORS[modname]
    mod = importlib.import_module("benchmarks." + modname)
    if clsname is None:
        owner, fn_of = mod, (lambda inst: getattr(mod, method))
        setup = getattr(mod, "setup", None)
        teardown = getattr(mod, "teardown", None)
        cache_args = ()
        make = lambda: None  # noqa: E731
    else:
        cls = getattr(mod, clsname)
        owner = cls
        make = cls
        fn_of = lambda inst: getattr(inst, method)  # noqa: E731
        setup = teardown = None
        cache_args = ()
        if hasattr(cls, "setup_cache"):
            cache_args = (_setup_cache(cls),)

    skipped = []
    for combo in _combinations(owner):
        inst = make()
        args = cache_args + tuple(combo)
        s = getattr(inst, "setup", None) if inst is not None else setup
        t = getattr(inst, "teardown", None) if inst is not None else teardown
        try:
            if s is not None:
                s(*args)
        except NotImplementedError as exc:  # asv's way of skipping a combination
            skipped.append(f"{combo}: {exc}")
            continue
        try:
            out = _call(fn_of(inst), args)
            if method.startswith("timeraw_"):
                _run_timeraw(out)
            elif method.startswith("track_"):
                assert isinstance(out, numbers.Real), f"track_ must return a number, got {out!r}"
                assert math.isfinite(out), out
        finally:
            if t is not None:
                t(*args)
        return
    pytest.skip("every parameter combination skipped: " + "; ".join(skipped[:3]))
