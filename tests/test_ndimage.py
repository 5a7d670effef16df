"""fastconv.ndimage against scipy.ndimage (bit for bit) and a float64 NumPy reference of its own.

Both backends, float32 and float64, every mode, origins, axes, output dtypes and arrays, NaN and
inf, and hypothesis over shapes and parameters.  Numba compiles each kernel on first use (about
5-20 s per kernel and dtype from a cold cache), so the Numba float32 cases are in the slow tier.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tolerance import assert_close

import fastconv
import fastconv.ndimage as fnd
from fastconv import _plan

sn = pytest.importorskip("scipy.ndimage")

MODES = [
    "reflect",
    "constant",
    "nearest",
    "mirror",
    "wrap",
    "grid-mirror",
    "grid-constant",
    "grid-wrap",
]
CYTHON = _plan.cython_available("ndimage")
CASES = [("cython", np.float32), ("cython", np.float64)] if CYTHON else []
CASES += [
    ("numba", np.float64),
    pytest.param(("numba", np.float32), marks=pytest.mark.slow, id="numba-float32"),
]


@pytest.fixture(params=CASES, ids=lambda c: f"{c[0]}-{np.dtype(c[1]).name}")
def case(request):
    return request.param


def _same(a, b):
    """Bit for bit: same dtype, same values, NaN where NaN, infs with their signs."""
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(a, b, strict=True)


def _data(rng, shape, dtype, nonfinite=True):
    x = rng.standard_normal(shape).astype(dtype)
    if nonfinite and x.size >= 8:
        flat = x.reshape(-1)
        idx = rng.choice(flat.size, size=3, replace=False)
        flat[idx] = [np.nan, np.inf, -np.inf]
    return x


def test_every_function_bitwise(case):
    be, dt = case
    rng = np.random.default_rng(0)
    x = _data(rng, (6, 21, 37), dt)
    x0 = x.copy()
    w1 = rng.standard_normal(6)
    sym = np.array([1.0, 2.0, 3.0, 2.0, 1.0])
    anti = np.array([1.0, -2.0, 0.0, 2.0, -1.0])
    w3 = rng.standard_normal((3, 4, 5))
    w3[1, 2, 0] = 0.0  # skipped by the N-d sum: no NaN from 0 * inf
    for mode in MODES:
        kw = dict(mode=mode, cval=0.25)
        for axis in (0, 1, 2, -1):
            for w in (w1, sym, anti):
                o = 1 if len(w) == 6 else -1
                _same(
                    fnd.correlate1d(x, w, axis, origin=o, backend=be, **kw),
                    sn.correlate1d(x, w, axis, origin=o, **kw),
                )
                _same(
                    fnd.convolve1d(x, w, axis, origin=o, backend=be, **kw),
                    sn.convolve1d(x, w, axis, origin=o, **kw),
                )
            _same(
                fnd.uniform_filter1d(x, 4, axis, origin=-1, backend=be, **kw),
                sn.uniform_filter1d(x, 4, axis, origin=-1, **kw),
            )
            _same(
                fnd.gaussian_filter1d(x, 1.5, axis, order=2, backend=be, **kw),
                sn.gaussian_filter1d(x, 1.5, axis, order=2, **kw),
            )
        _same(
            fnd.correlate(x, w3, origin=(0, 1, -2), backend=be, **kw),
            sn.correlate(x, w3, origin=(0, 1, -2), **kw),
        )
        _same(fnd.convolve(x, w3, backend=be, **kw), sn.convolve(x, w3, **kw))
        _same(
            fnd.correlate(x, w3[0], axes=(0, 2), backend=be, **kw),
            sn.correlate(x, w3[0], axes=(0, 2), **kw),
        )
    _same(fnd.uniform_filter(x, (3, 1, 5), backend=be), sn.uniform_filter(x, (3, 1, 5)))
    modes = ["mirror", "wrap", "constant"]
    _same(
        fnd.gaussian_filter(x, (1, 0, 2), order=(0, 1, 1), mode=modes, backend=be),
        sn.gaussian_filter(x, (1, 0, 2), order=(0, 1, 1), mode=modes),
    )
    _same(
        fnd.gaussian_filter(x, 2.0, truncate=2.0, radius=(1, 3, 2), backend=be),
        sn.gaussian_filter(x, 2.0, truncate=2.0, radius=(1, 3, 2)),
    )
    _same(x, x0)  # inputs are never modified


def _numpy_correlate(x, w, mode, cval, origins):
    """float64 reference: extend with np.pad (its own sizes), then sum the shifted slices."""
    x = np.asarray(x, dtype=np.float64)
    pad_mode = {"reflect": "symmetric", "mirror": "reflect", "nearest": "edge", "wrap": "wrap"}
    widths = []
    for k, o in zip(w.shape, origins, strict=True):
        before = k // 2 + o
        widths.append((before, k - 1 - before))
    if mode == "constant":
        xp = np.pad(x, widths, mode="constant", constant_values=cval)
    else:
        xp = np.pad(x, widths, mode=pad_mode[mode])
    out = np.zeros(x.shape)
    for j in np.ndindex(*w.shape):
        if w[j] != 0:
            out += w[j] * xp[tuple(slice(jj, jj + n) for jj, n in zip(j, x.shape, strict=True))]
    return out


@pytest.mark.parametrize("mode", ["reflect", "constant", "nearest", "mirror", "wrap"])
def test_correlate_against_numpy_reference(case, mode):
    be, dt = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal((9, 13, 40)).astype(dt)
    w = rng.standard_normal((3, 2, 5))
    got = fnd.correlate(x, w, mode=mode, cval=-1.5, origin=(1, 0, -1), backend=be)
    ref = _numpy_correlate(x, w, mode, -1.5, (1, 0, -1))
    assert_close(got, ref, dt)
    got = fnd.correlate1d(x, w[0, 0], axis=1, mode=mode, cval=2.0, backend=be)
    ref = _numpy_correlate(x, w[0, 0].reshape(1, 5, 1), mode, 2.0, (0, 0, 0))
    assert_close(got, ref, dt)


def test_long_lines_and_threads(case):
    """A line longer than a segment runs on every thread; 1 and 2 threads agree bit for bit."""
    be, dt = case
    rng = np.random.default_rng(2)
    x = _data(rng, 200_003, dt)
    w = rng.standard_normal(63)
    ref = sn.convolve1d(x, w, mode="wrap")
    for n in (1, 2):
        with fastconv.threads(n):
            _same(fnd.convolve1d(x, w, mode="wrap", backend=be), ref)
            _same(fnd.uniform_filter1d(x, 9, backend=be), sn.uniform_filter1d(x, 9))
    v = _data(rng, (40, 48, 50), dt)
    with fastconv.threads(2):
        _same(fnd.correlate(v, np.ones((3, 3, 3)), backend=be), sn.correlate(v, np.ones((3, 3, 3))))


def test_outputs_and_dtypes():
    """The public layer's dtype and output handling (the kernels are the same on both backends)."""
    backend = "auto"
    rng = np.random.default_rng(3)
    x = rng.standard_normal((17, 19)).astype(np.float32)
    w = rng.standard_normal((3, 3))
    for output in (np.float64, "float32", np.int16, np.uint32, np.dtype(np.int64)):
        _same(
            fnd.correlate(x * 100, w, output=output, backend=backend),
            sn.correlate(x * 100, w, output=output),
        )
        _same(
            fnd.gaussian_filter(x * 100, 1, output=output, backend=backend),
            sn.gaussian_filter(x * 100, 1, output=output),
        )
    # an output array, strided (not contiguous): written in place and returned
    buf = np.zeros((17, 38))
    out = buf[:, ::2]
    res = fnd.correlate1d(x, [1.0, 2.0], 0, output=out, backend=backend)
    assert res is out
    _same(out, sn.correlate1d(x, [1.0, 2.0], 0, output=np.float64))
    assert not buf[:, 1::2].any()
    # in place: output is the input
    y = x.copy()
    fnd.uniform_filter(y, 3, output=y, backend=backend)
    _same(y, sn.uniform_filter(x, 3))
    # integer, boolean and byte-swapped inputs compute in float64 like scipy
    xi = rng.integers(-50, 50, (11, 12)).astype(np.int32)
    _same(fnd.convolve(xi, w, backend=backend), sn.convolve(xi, w))
    _same(fnd.uniform_filter(xi > 0, 3, backend=backend), sn.uniform_filter(xi > 0, 3))
    xs = x.astype(">f8")
    _same(fnd.correlate(xs, w, backend=backend), sn.correlate(xs, w))
    # complex input and weights, F-order input, empty input
    xc = x + 1j * x[::-1]
    _same(fnd.correlate(xc, w + 0.5j, backend=backend), sn.correlate(xc, w + 0.5j))
    _same(fnd.correlate1d(xc, [1j, 2.0], backend=backend), sn.correlate1d(xc, [1j, 2.0]))
    xf = np.asfortranarray(x)
    _same(fnd.gaussian_filter(xf, 2, backend=backend), sn.gaussian_filter(xf, 2))
    e = np.zeros((0, 5), np.float32)
    _same(fnd.correlate(e, w, backend=backend), sn.correlate(e, w))
    _same(fnd.correlate1d(e, [1.0], backend=backend), sn.correlate1d(e, [1.0]))


def test_tiny_and_zero_weights():
    """scipy's N-d sum leaves out |w| <= eps (so 0 * inf makes no NaN); the 1-D sum keeps them."""
    x = np.array([0.0, 0.0, np.inf, 0.0, 0.0, 1e17, 0.0])
    for w in ([0.0, 1.0, 0.0], [1e-17, 1.0, 0.0], [2.220446049250313e-16, 1.0, 2.3e-16]):
        w = np.array(w)
        _same(fnd.correlate(x, w, mode="constant"), sn.correlate(x, w, mode="constant"))
        _same(fnd.correlate1d(x, w, mode="constant"), sn.correlate1d(x, w, mode="constant"))
    assert np.isnan(fnd.correlate1d(x, [0.0, 1.0, 0.0])[1])
    assert not np.isnan(fnd.correlate(x, np.array([0.0, 1.0, 0.0]))).any()


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda x: fnd.correlate1d(x, [1.0], mode="edge"), RuntimeError, "mode"),
        (
            lambda x: fnd.correlate(x, np.ones((3, 3)), mode=["reflect", "wrap"]),
            RuntimeError,
            "mode",
        ),
        (lambda x: fnd.correlate1d(x, []), RuntimeError, "weights"),
        (lambda x: fnd.correlate1d(x, [1.0, 1.0, 1.0], origin=2), ValueError, "origin"),
        (lambda x: fnd.correlate1d(x, [1.0], origin=0.5), TypeError, "origin"),
        (lambda x: fnd.correlate1d(x, [1.0], axis=2), ValueError, "axis"),
        (lambda x: fnd.correlate(x, np.ones((3,))), RuntimeError, "weights.ndim"),
        (lambda x: fnd.correlate(x, np.ones((3, 3)), origin=(0, 0, 0)), RuntimeError, "origin"),
        (lambda x: fnd.correlate(x, np.ones((3, 3)), origin=(0, 2)), ValueError, "origin"),
        (lambda x: fnd.correlate(x, np.ones((3,)), axes=(1, 1)), ValueError, "axes"),
        (lambda x: fnd.correlate(x, np.ones((3,)), axes=(3,)), ValueError, "axis"),
        (
            lambda x: fnd.correlate(x, np.ones((3, 3)), output=np.zeros((4, 4))),
            RuntimeError,
            "output",
        ),
        (lambda x: fnd.correlate(x, np.ones((3, 3)), output="U4"), RuntimeError, "output"),
        (lambda x: fnd.uniform_filter1d(x, 0), RuntimeError, "size"),
        (lambda x: fnd.uniform_filter1d(x, 3, origin=2), ValueError, "origin"),
        (lambda x: fnd.uniform_filter(x, (3, 3, 3)), RuntimeError, "size"),
        (lambda x: fnd.gaussian_filter(x, 1, order=-1), ValueError, "order"),
        (lambda x: fnd.gaussian_filter1d(x, 1, radius=-1), ValueError, "adius"),
        (lambda x: fnd.gaussian_filter(x, (1, 1, 1)), RuntimeError, "sigma"),
        (lambda x: fnd.correlate(x.astype(np.float16), np.ones((3, 3))), RuntimeError, "type"),
        (lambda x: fnd.correlate1d(x, [1.0], backend="fortran"), ValueError, "backend"),
    ],
)
def test_errors_name_the_argument(call, exc, match):
    x = np.ones((6, 7))
    with pytest.raises(exc, match=match):
        call(x)
    if exc is RuntimeError:  # scipy's type, and fastconv's rule (ValueError) at once
        with pytest.raises(ValueError):
            call(x)


@st.composite
def _problems(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 9), min_size=ndim, max_size=ndim)))
    wshape = tuple(draw(st.lists(st.integers(1, 5), min_size=ndim, max_size=ndim)))
    origins = tuple(draw(st.integers(-(k // 2), (k - 1) // 2)) for k in wshape)
    mode = draw(st.sampled_from(MODES))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**16))
    axis = draw(st.integers(-ndim, ndim - 1))
    return shape, wshape, origins, mode, dtype, seed, axis


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_problems(), st.sampled_from(["cython"] if CYTHON else ["numba"]))
def test_hypothesis_bitwise(problem, be):
    shape, wshape, origins, mode, dtype, seed, axis = problem
    rng = np.random.default_rng(seed)
    x = _data(rng, shape, dtype)
    w = rng.standard_normal(wshape)
    w[rng.random(wshape) < 0.2] = 0.0
    cval = float(rng.standard_normal())
    _same(
        fnd.correlate(x, w, mode=mode, cval=cval, origin=origins, backend=be),
        sn.correlate(x, w, mode=mode, cval=cval, origin=origins),
    )
    _same(
        fnd.convolve(x, w, mode=mode, cval=cval, backend=be),
        sn.convolve(x, w, mode=mode, cval=cval),
    )
    w1 = w.reshape(-1)[: wshape[0]]
    o = origins[0]
    _same(
        fnd.correlate1d(x, w1, axis, mode=mode, cval=cval, origin=o, backend=be),
        sn.correlate1d(x, w1, axis, mode=mode, cval=cval, origin=o),
    )
    _same(
        fnd.uniform_filter1d(x, wshape[0], axis, mode=mode, cval=cval, origin=o, backend=be),
        sn.uniform_filter1d(x, wshape[0], axis, mode=mode, cval=cval, origin=o),
    )
    sigma = 0.3 + rng.random() * 2
    _same(
        fnd.gaussian_filter(x, sigma, mode=mode, cval=cval, backend=be),
        sn.gaussian_filter(x, sigma, mode=mode, cval=cval),
    )


def test_plan_threads_and_tiles():
    """Small work runs on one thread; a single long line is split so every thread has work."""
    p = _plan.plan_ndimage("correlate1d", (1, 10**7, 1), 63, nthreads=2)
    assert p.kernel == "correlate1d_last" and p.nthreads == 2
    assert -(-(10**7) // p.tile[0]) >= 2
    assert _plan.plan_ndimage("correlate1d", (1, 100, 1), 3, nthreads=2).nthreads == 1
    p = _plan.plan_ndimage("correlate", (256, 256, 256), (5, 5, 5, 125), nthreads=2)
    assert p.kernel == "correlate_nd" and p.nthreads == 2
    assert p.ws_shape[1] * 8 <= 2 * _plan.NDIMAGE_TILE_BYTES
    p = _plan.plan_ndimage("correlate1d", (4, 300, 50), 7, nthreads=2)
    assert p.kernel == "correlate1d_inner"


def test_failed_call_leaves_output_untouched():
    """Every argument is checked before the output is written (or a new one allocated)."""
    x = np.ones((6, 7))
    out = np.full((6, 7), 7.0)
    bad = [
        lambda: fnd.correlate1d(x, [1.0, 2.0], output=out, mode="edge"),
        lambda: fnd.correlate(x, np.ones((3, 3)), output=out, origin=(0, 5)),
        lambda: fnd.uniform_filter(x, 3, output=out, mode=["reflect", "bogus"]),
        lambda: fnd.gaussian_filter(x, (1.0, 2.0), order=(0, -1), output=out),
        lambda: fnd.gaussian_filter(x, 1.0, output=out, mode=("wrap", 3)),
        lambda: fnd.correlate1d(x, [1.0], output=out, cval="a"),
    ]
    for call in bad:
        with pytest.raises((ValueError, TypeError)):
            call()
        assert (out == 7.0).all()


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_after_fork():
    """A child forked after the kernels' thread pools ran computes the same result on one thread."""
    import os

    x = np.random.default_rng(4).standard_normal((40, 50, 60))
    ref = sn.gaussian_filter(x, 2)
    _same(fnd.gaussian_filter(x, 2), ref)
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        code = 0 if np.array_equal(fnd.gaussian_filter(x, 2), ref) else 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
