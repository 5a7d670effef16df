"""SciPy's own scipy.ndimage filter tests, run against fastconv.ndimage's functions.

The tests are imported from the installed scipy's test module (not copied).  A fixture substitutes
fastconv.ndimage's eight functions for scipy.ndimage's in the `scipy.ndimage` namespace the tests
call through, and parametrized cases that name scipy's functions as objects get fastconv's.
Skipped: tests whose source calls none of the eight (scipy's other filters only), and cases of a
shared test body parametrized over another scipy filter (median, minimum, ...).  With scipy 1.17:
1457 of scipy's tests run against fastconv.ndimage and pass, 851 are skipped for those reasons.
"""

import inspect
import re
from collections.abc import Collection

import numpy as np
import pytest
from _pytest.mark.structures import ParameterSet

import fastconv.ndimage as fnd

sft = pytest.importorskip("scipy.ndimage.tests.test_filters")


OURS = (
    "correlate1d",
    "convolve1d",
    "correlate",
    "convolve",
    "uniform_filter1d",
    "uniform_filter",
    "gaussian_filter1d",
    "gaussian_filter",
)
_CALLS = re.compile(r"\bndimage\.(" + "|".join(OURS) + r")\b")
_SCIPY = {getattr(sft.ndimage, name): getattr(fnd, name) for name in OURS}


def _swap(v):
    """A parameter value with scipy's function objects replaced by fastconv's."""
    if isinstance(v, ParameterSet):
        return v._replace(values=tuple(_swap(u) for u in v.values))
    if isinstance(v, tuple):
        return tuple(_swap(u) for u in v)
    try:
        return _SCIPY.get(v, v)
    except TypeError:  # unhashable
        return v


def _fix_parametrize(fn):
    """Parametrized cases name scipy's functions as objects (filter_func=ndimage.convolve,
    captured at import): they get fastconv's instead, so they test fastconv.  scipy also
    parametrizes with iterators, which this pytest deprecates (an error here): lists instead."""
    for m in getattr(fn, "pytestmark", None) or ():
        if m.name == "parametrize" and len(m.args) >= 2:
            values = [
                _swap(v)
                for v in (m.args[1] if isinstance(m.args[1], Collection) else list(m.args[1]))
            ]
            object.__setattr__(m, "args", (m.args[0], values, *m.args[2:]))


for _cls in (sft.TestNdimageFilters, sft.TestThreading):
    for _f in vars(_cls).values():
        if inspect.isfunction(_f):
            _fix_parametrize(_f)


@pytest.fixture
def xp():
    # scipy's array-API fixture, NumPy only
    return np


def _calls_ours(fn):
    try:
        return _CALLS.search(inspect.getsource(fn)) is not None
    except (OSError, TypeError):
        return False


def _scipy_filter_param(params):
    """The name of a scipy.ndimage function (not one of the eight) among a case's parameters."""
    stack = list(params.values())
    while stack:
        v = stack.pop()
        if isinstance(v, tuple | list):
            stack.extend(v)
        elif callable(v) and getattr(v, "__module__", "").startswith("scipy.ndimage"):
            return v.__name__
    return None


@pytest.fixture(autouse=True)
def _use_fastconv(monkeypatch, request):
    import scipy.ndimage

    fn = getattr(request.function, "__wrapped__", request.function)
    if not _calls_ours(fn):
        pytest.skip("calls none of fastconv.ndimage's functions (scipy's other filters only)")
    other = _scipy_filter_param(getattr(getattr(request.node, "callspec", None), "params", {}))
    if other is not None:
        pytest.skip(f"this case runs scipy's {other} (a shared test body, parametrized)")
    for name in OURS:
        monkeypatch.setattr(scipy.ndimage, name, getattr(fnd, name))


class TestNdimageFiltersFastconv(sft.TestNdimageFilters):
    pass


class TestThreadingFastconv(sft.TestThreading):
    pass


for _name, _obj in list(vars(sft).items()):
    if _name.startswith("test_") and inspect.isfunction(_obj):
        _fix_parametrize(_obj)
        globals()[_name] = _obj
del _name, _obj, _cls, _f


def test_substitution_is_active():
    import scipy.ndimage

    with pytest.MonkeyPatch.context() as mp:
        for name in OURS:
            mp.setattr(scipy.ndimage, name, getattr(fnd, name))
        assert sft.ndimage.correlate1d is fnd.correlate1d
        assert scipy.ndimage.gaussian_filter is fnd.gaussian_filter
