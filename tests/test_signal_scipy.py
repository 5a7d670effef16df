"""SciPy's own TestConvolve2d / TestCorrelate2d and the N-d TestConvolve / TestCorrelate* classes,
run against fastconv.signal's functions.

The classes are imported from the installed scipy's test module (not copied) and subclassed; a
fixture substitutes fastconv's convolve2d/correlate2d for scipy's in that module and in
scipy.signal for the duration of each test.
"""

import numpy as np
import pytest

import fastconv.signal as fsignal

sst = pytest.importorskip("scipy.signal.tests.test_signaltools")


@pytest.fixture
def xp():
    # scipy's array-API fixture, NumPy only: fastconv is a NumPy library
    return np


@pytest.fixture(autouse=True)
def _use_fastconv(monkeypatch, request):
    if request.node.get_closest_marker("slow") is not None:
        pytest.skip("scipy marks this slow (about 4 GB of arrays); scipy skips it by default too")
    import scipy.signal

    for mod in (sst, scipy.signal):
        monkeypatch.setattr(mod, "convolve2d", fsignal.convolve2d)
        monkeypatch.setattr(mod, "correlate2d", fsignal.correlate2d)
        monkeypatch.setattr(mod, "convolve", fsignal.convolve)
        monkeypatch.setattr(mod, "correlate", fsignal.correlate)


class TestConvolve2dFastconv(sst.TestConvolve2d):
    pass


class TestCorrelate2dFastconv(sst.TestCorrelate2d):
    pass


class TestConvolveFastconv(sst.TestConvolve):
    pass


class TestCorrelateRealFastconv(sst.TestCorrelateReal):
    pass


class TestCorrelateFastconv(sst.TestCorrelate):
    pass


class TestCorrelateComplexFastconv(sst.TestCorrelateComplex):
    pass


def test_substitution_is_active():
    import scipy.signal

    assert sst.convolve2d is fsignal.convolve2d
    assert scipy.signal.correlate2d is fsignal.correlate2d
    assert sst.convolve is fsignal.convolve and scipy.signal.correlate is fsignal.correlate
