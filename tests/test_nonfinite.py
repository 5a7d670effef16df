"""NaN, inf and -inf at random places in inputs, weights and biases: every public convolution puts
them where direct summation over the in-image taps puts them (torch's and scipy.signal's result).

A differential, property-based suite (issue 13, item 5).  References are independent of fastconv:
torch's unfold and a masked float64 sum for conv2d and dynamic_conv2d (torch's own conv2d
multiplies padding zeros by the weights on some of its paths: float64, depthwise with a channel
multiplier), torch's unfold for im2col, scipy.signal for convolve2d / correlate2d.  conv2d runs
every registered algorithm that applies to a call and promises direct summation's placement,
forced, and the planner's own choice on calls it sends to each algorithm (Winograd and FFT
included; `test_planner_reaches` checks the routes).  Placement is compared exactly (the NaN
mask, the +inf and -inf masks); finite values to the tolerance table.  A per-test timeout turns
a hang (an SVD on inf) into a failure.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from tolerance import RTOL

import fastconv
from conftest import BACKENDS
from fastconv import _plan

torch = pytest.importorskip("torch")
scipy_signal = pytest.importorskip("scipy.signal")
F = torch.nn.functional

SPECIAL = (np.nan, np.inf, -np.inf)
# algorithms whose rounding is relative to the data entering a transform, not to each output
TRANSFORMS = ("fft", "winograd")
# no shrinking: a failing example is printed as drawn, and the file stays within its time budget
SETTINGS = dict(
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ------------------------------------------------------------------ references (no fastconv)


def _pair(v):
    return (v, v) if np.isscalar(v) else tuple(v)


def torch_direct_conv2d(x, w, b, stride, padding, dilation, groups):
    """float64 conv2d summing only the taps that fall inside the image, from torch's unfold.

    The mask of in-image taps is the unfold of an all-ones image (1 where the tap reads the
    image, 0 on padding); output sizes come from the formula.  One output channel at a time, so
    the terms stay small."""
    xt = torch.from_numpy(np.asarray(x, np.float64))
    wt = torch.from_numpy(np.asarray(w, np.float64))
    N, C, H, W = xt.shape
    K, Cg, kh, kw = wt.shape
    kw_args = dict(kernel_size=(kh, kw), dilation=dilation, padding=padding, stride=stride)
    cols = F.unfold(xt, **kw_args)  # (N, C*kh*kw, L)
    inside = F.unfold(torch.ones((1, C, H, W), dtype=torch.float64), **kw_args) > 0
    Kg, R = K // groups, Cg * kh * kw
    zero = torch.zeros((), dtype=torch.float64)
    y = torch.empty((N, K, cols.shape[2]), dtype=torch.float64)
    for k in range(K):
        grp = k // Kg
        cg = cols[:, grp * R : (grp + 1) * R]  # (N, R, L)
        terms = wt[k].reshape(R, 1) * cg
        y[:, k] = torch.where(inside[:, grp * R : (grp + 1) * R], terms, zero).sum(dim=1)
    if b is not None:
        y = y + torch.from_numpy(np.asarray(b, np.float64))[None, :, None]
    ph, pw = _pair(padding)
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return y.reshape(N, K, Ho, Wo).numpy()


def assert_placement(actual, reference, dtype, scale=None):
    """Same NaN mask, same +inf and -inf masks (real and imaginary parts apart), and the finite
    values within the table's rtol of max |finite reference| (or of `scale`)."""
    actual, reference = np.asarray(actual), np.asarray(reference)
    assert actual.shape == reference.shape, (actual.shape, reference.shape)
    if actual.dtype.kind == "c" or reference.dtype.kind == "c":
        actual = np.stack([actual.real, actual.imag])
        reference = np.stack([reference.real, reference.imag])
    a, r = actual.astype(np.float64), reference.astype(np.float64)
    for what, test in (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf)):
        ma, mr = test(a), test(r)
        if not np.array_equal(ma, mr):
            at = tuple(int(i) for i in np.argwhere(ma != mr)[0])
            raise AssertionError(
                f"{what}: {int(ma.sum())} in actual, {int(mr.sum())} in reference; first "
                f"difference at {at}: actual {a[at]}, reference {r[at]}"
            )
    fin = np.isfinite(r)
    if fin.any():
        if scale is None:
            scale = float(np.abs(r[fin]).max())
        tol = RTOL[np.dtype(np.finfo(dtype).dtype)]  # complex64 -> float32's entry
        err = float(np.abs(a[fin] - r[fin]).max())
        assert err <= tol * max(scale, np.finfo(np.float32).tiny), (err, tol, scale)


def transform_scale(x, w, b):
    """max|x| * max_k sum|w_k| + max|b| over finite values: what FFT / Winograd round against."""

    def fin(a):
        a = np.abs(np.asarray(a)).astype(np.float64)
        return np.where(np.isfinite(a), a, 0.0)

    ws = float(fin(w).reshape(len(w), -1).sum(axis=1).max(initial=0.0)) if np.size(w) else 0.0
    return float(fin(x).max(initial=0.0)) * ws + (0.0 if b is None else float(fin(b).max()))


# ------------------------------------------------------------------ strategies


@st.composite
def sprinkled(draw, shape, dtype, most=3, allow_none=True):
    """A random array of `shape` with up to `most` NaN / inf / -inf at random places."""
    seed = draw(st.integers(0, 2**32 - 1))
    a = np.random.default_rng(seed).standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * np.random.default_rng(seed + 1).standard_normal(shape)
    a = a.astype(dtype)
    size = a.size
    if size == 0:
        return a
    k = draw(st.integers(0 if allow_none else 1, most))
    for _ in range(k):
        i = draw(st.integers(0, size - 1))
        v = draw(st.sampled_from(SPECIAL))
        if a.dtype.kind == "c":
            part = draw(st.sampled_from(("real", "imag", "both")))
            old = a.flat[i]
            a.flat[i] = complex(
                v if part != "imag" else old.real, v if part != "real" else old.imag
            )
        else:
            a.flat[i] = v
    return a


# Layer families, small enough for the reference: (C range, channel multiplier or output
# channels per group, groups, kernel, stride range, padding range, plane size range).  Every
# direct algorithm applicable to each is forced (test_conv2d_nonfinite_forced).
FAMILIES = {
    "depthwise": dict(C=(8, 20), mult=1, groups="C", k=3, stride=(1, 1), pad=(1, 1), H=(4, 20)),
    "depthwise_strided": dict(
        C=(16, 24), mult=1, groups="C", k=3, stride=(2, 2), pad=(1, 1), H=(6, 20)
    ),
    "depthwise_mult2": dict(
        C=(4, 8), mult=2, groups="C", k=3, stride=(1, 1), pad=(1, 2), H=(4, 40)
    ),
    "grouped": dict(C=(16, 32), groups=2, Kg=8, k=3, stride=(1, 1), pad=(1, 1), H=(8, 20)),
    "dense": dict(C=(3, 8), groups=1, Kg=8, k=3, stride=(1, 2), pad=(0, 2), H=(5, 14)),
    "pointwise": dict(C=(4, 16), groups=1, Kg=8, k=1, stride=(1, 1), pad=(0, 0), H=(3, 12)),
    "large_kernel": dict(C=(1, 2), groups=1, Kg=2, k=7, stride=(1, 1), pad=(0, 3), H=(8, 16)),
}

# Calls the planner itself sends to each algorithm (test_planner_reaches checks it does):
# conv2d's own choice must place NaN/inf as direct summation, transform-based ones included.
# (x shape, weight shape, conv kwargs, dtype)
PLANNED = {
    # shapes whose route the measured cost model does not hesitate over (each algorithm clearly
    # fastest there), so the test follows the planner's choice, not the model's close calls
    "winograd": ((2, 64, 56, 56), (64, 64, 3, 3), dict(padding=1), np.float32),
    "fft": ((1, 1, 128, 128), (1, 1, 31, 31), dict(padding=0), np.float64),
    "fft_f32": ((2, 1, 128, 128), (1, 1, 31, 31), dict(padding=3), np.float32),
    # 5x5 (no Winograd): with AVX2 Winograd beats packed on 16-channel 3x3 layers too
    "packed": ((2, 16, 12, 12), (16, 16, 5, 5), dict(padding=2), np.float32),
    "gemm": ((2, 16, 12, 12), (16, 16, 3, 3), dict(padding=1), np.float64),
    "pointwise": ((2, 8, 12, 12), (8, 8, 1, 1), dict(padding=0), np.float64),
    "depthwise": ((2, 32, 14, 14), (32, 1, 3, 3), dict(padding=1, groups=32), np.float64),
    # 5x5 outputs of 7x7 planes ("valid"): under the plane kernel's AVX-512 row blocks (8 columns)
    # and off its flat path (which takes "same" padding: stride 1 with Wo == W, stride 2 halving)
    "depthwise16": (
        (2, 32, 7, 7),
        (32, 1, 3, 3),
        dict(padding=0, groups=32),
        np.float32,
    ),
}


@st.composite
def layer(draw, family, dtype):
    f = FAMILIES[family]
    C = draw(st.integers(*f["C"]))
    if f["groups"] == "C":
        groups, K = C, C * f["mult"]
    else:
        groups = f["groups"]
        C = max(groups, C // groups * groups)
        K = f["Kg"] * groups
    H = draw(st.integers(*f["H"]))
    W = draw(st.integers(*f["H"]))
    N = draw(st.integers(1, 2))
    stride = draw(st.integers(*f["stride"]))
    padding = draw(st.integers(*f["pad"]))
    k = f["k"]
    x = draw(sprinkled((N, C, H, W), dtype))
    w = draw(sprinkled((K, C // groups, k, k), dtype))
    b = draw(st.none() | sprinkled((K,), dtype, most=1))
    return x, w, b, dict(stride=stride, padding=padding, dilation=1, groups=groups)


def _planned(x, w, kwargs, backend):
    """The algorithm conv2d's planner picks by itself for this call."""
    c = fastconv.cost.conv2d_cost(x.shape, w.shape, dtype=x.dtype, backend=backend, **kwargs)
    return c.algorithm


def _check_conv2d(x, w, b, kwargs, backend, algorithm="auto"):
    y = fastconv.conv2d(x, w, b, backend=backend, algorithm=algorithm, **kwargs)
    r = torch_direct_conv2d(x, w, b, **kwargs)
    used = _planned(x, w, kwargs, backend) if algorithm == "auto" else algorithm
    scale = transform_scale(x, w, b) if used in TRANSFORMS else None
    assert y.dtype == x.dtype
    assert_placement(y, r, x.dtype, scale)


def _geometry(x, w, b, kwargs):
    from fastconv._geometry import conv_geometry

    return conv_geometry(
        x, w, b, kwargs["stride"], kwargs["padding"], kwargs["dilation"], kwargs["groups"]
    )[3]


# ------------------------------------------------------------------ conv2d


@pytest.mark.timeout(60)
@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_conv2d_nonfinite_forced(family, dtype, backend):
    """Every algorithm of the registry that applies to the call and promises direct summation's
    placement (`exact_nonfinite`), forced, and the planner's own choice.  A transform-based
    algorithm forced by the user keeps its documented behaviour (NaN where the transform spreads
    an inf), so it is checked only as the planner's choice (test_conv2d_nonfinite_planned)."""

    @settings(max_examples=5, **SETTINGS)
    @given(data=layer(family, dtype))
    def check(data):
        x, w, b, kwargs = data
        names = _plan.applicable(_geometry(x, w, b, kwargs), backend)
        for name in names:
            if _plan.ALGORITHMS[name].exact_nonfinite:
                _check_conv2d(x, w, b, kwargs, backend, algorithm=name)
        _check_conv2d(x, w, b, kwargs, backend)

    check()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(PLANNED))
@pytest.mark.parametrize("backend", BACKENDS)
def test_conv2d_nonfinite_planned(case, backend):
    """Calls the planner sends to each algorithm by itself, Winograd and FFT included."""
    x_shape, w_shape, kwargs, dtype = PLANNED[case]
    kwargs = dict(dict(stride=1, dilation=1, groups=1), **kwargs)

    @settings(max_examples=4 if case != "winograd" else 3, **SETTINGS)
    @given(
        x=sprinkled(x_shape, dtype, allow_none=False),
        w=sprinkled(w_shape, dtype),
        b=st.none() | sprinkled((w_shape[0],), dtype, most=1),
    )
    def check(x, w, b):
        _check_conv2d(x, w, b, kwargs, backend)

    check()


def test_planner_reaches():
    """Each PLANNED call is routed where its name says (on the Cython backend; the Numba one where
    it differs still runs them above), and the registry's algorithms are all covered by the
    forced families or the planned calls."""
    if "cython" not in BACKENDS:
        pytest.skip("the routes are the Cython backend's")
    covered, absent = set(), set()
    for case, (x_shape, w_shape, kwargs, dtype) in PLANNED.items():
        name = case.split("_")[0]
        x = np.zeros(x_shape, dtype)
        w = np.zeros(w_shape, dtype)
        full = dict(dict(stride=1, padding=0, dilation=1, groups=1), **kwargs)
        if name not in _plan.applicable(_geometry(x, w, None, full), "cython"):
            # a kernel this CPU lacks (grouped is AVX-512 only, depthwise16 AVX-512 or AVX2)
            absent.add(name)
            continue
        c = fastconv.cost.conv2d_cost(x_shape, w_shape, dtype=dtype, backend="cython", **kwargs)
        assert c.algorithm == name, (case, c.algorithm)
        covered.add(c.algorithm)
    if _plan.cpu_level() == "v4":
        assert not absent, absent
    else:  # the AVX-512-only kernel applies to no shape here (nor depthwise16 without AVX2)
        absent |= {"grouped"} | ({"depthwise16"} if _plan.cpu_level() == "baseline" else set())
    for f in FAMILIES.values():
        C = f["C"][1]
        groups = C if f["groups"] == "C" else f["groups"]
        K = C * f["mult"] if f["groups"] == "C" else f["Kg"] * groups
        x = np.zeros((1, C, f["H"][1], f["H"][1]), np.float32)
        w = np.zeros((K, C // groups, f["k"], f["k"]), np.float32)
        kwargs = dict(stride=f["stride"][0], padding=f["pad"][0], dilation=1, groups=groups)
        for backend in BACKENDS:
            names = _plan.applicable(_geometry(x, w, None, kwargs), backend)
            covered |= {n for n in names if _plan.ALGORITHMS[n].exact_nonfinite}
    assert covered | absent == set(_plan.ALGORITHMS)


# ------------------------------------------------------------------ im2col, dynamic_conv2d


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=15, **SETTINGS)
@given(
    data=st.data(),
    C=st.integers(1, 4),
    H=st.integers(1, 9),
    W=st.integers(1, 9),
    k=st.integers(1, 4),
    stride=st.integers(1, 3),
    padding=st.integers(0, 2),
    dilation=st.integers(1, 2),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_im2col_nonfinite(backend, data, C, H, W, k, stride, padding, dilation, dtype):
    if H + 2 * padding < dilation * (k - 1) + 1 or W + 2 * padding < dilation * (k - 1) + 1:
        return
    x = data.draw(sprinkled((2, C, H, W), dtype, most=4, allow_none=False))
    y = fastconv.im2col(x, k, stride, padding, dilation, backend=backend)
    r = F.unfold(torch.from_numpy(x), k, dilation=dilation, padding=padding, stride=stride)
    assert y.dtype == x.dtype
    np.testing.assert_array_equal(y, r.numpy())  # NaN placement included, values exact


def _dynamic_reference(x, bank, att, bias_bank, kwargs):
    """The per-sample loop in float64 with torch: sample n's kernel is sum_e att[n, e] bank[e]."""
    bt = torch.from_numpy(np.asarray(bank, np.float64))
    at = torch.from_numpy(np.asarray(att, np.float64))
    out = []
    for n in range(x.shape[0]):
        wn = (at[n].reshape(-1, 1, 1, 1, 1) * bt).sum(dim=0).numpy()
        bn = None
        if bias_bank is not None:
            bn = (at[n].reshape(-1, 1) * torch.from_numpy(bias_bank.astype(np.float64))).sum(0)
            bn = bn.numpy()
        out.append(torch_direct_conv2d(x[n : n + 1], wn, bn, **kwargs))
    return np.concatenate(out)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", ["experts", "mix", "per_sample_calls"])
@settings(max_examples=5, **SETTINGS)
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_dynamic_conv2d_nonfinite(backend, shape, data, dtype):
    N, E = 2, 3
    # the planner runs these by its "experts", "mix" and per-sample-call methods
    C, K, groups, H = {
        "experts": (4, 8, 1, 9),
        "mix": (8, 8, 8, 10),
        "per_sample_calls": (32, 32, 1, 12),
    }[shape]
    x = data.draw(sprinkled((N, C, H, H), dtype, most=2))
    bank = data.draw(sprinkled((E, K, C // groups, 3, 3), dtype, most=2))
    att = np.abs(data.draw(sprinkled((N, E), dtype, most=0))) + 0.1
    bias = data.draw(st.none() | sprinkled((E, K), dtype, most=1))
    kwargs = dict(stride=1, padding=1, dilation=1, groups=groups)
    y = fastconv.dynamic_conv2d(x, bank, att, bias, backend=backend, **kwargs)
    r = _dynamic_reference(x, bank, att, bias, kwargs)
    combined = (att[:, :, None] * bank.reshape(E, -1)[None]).sum(1).reshape(N * K, -1)
    assert_placement(
        y, r, dtype, transform_scale(x, combined, None) if shape == "per_sample_calls" else None
    )


# ------------------------------------------------------------------ signal


@pytest.mark.timeout(60)
@pytest.mark.parametrize("func", ["convolve2d", "correlate2d"])
@pytest.mark.parametrize(
    "dtype",
    [np.float32, np.float64, np.complex64, np.complex128],
    ids=["f32", "f64", "c64", "c128"],
)
@settings(max_examples=12, **SETTINGS)
@given(
    data=st.data(),
    size=st.sampled_from(["small", "large"]),
    mode=st.sampled_from(["full", "same", "valid"]),
    boundary=st.sampled_from(["fill", "wrap", "symm"]),
)
def test_signal_nonfinite(func, dtype, data, size, mode, boundary):
    """Small kernels and large ones (a separable or FFT path may take those)."""
    if size == "small":
        s1 = (data.draw(st.integers(1, 12)), data.draw(st.integers(1, 12)))
        s2 = (data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)))
    else:
        s1 = (data.draw(st.integers(40, 64)), data.draw(st.integers(40, 64)))
        s2 = (data.draw(st.integers(9, 17)), data.draw(st.integers(9, 17)))
    a = data.draw(sprinkled(s1, dtype))
    k = data.draw(sprinkled(s2, dtype))
    if data.draw(st.booleans()):  # a rank-1 kernel (the separable path's case) with its specials
        u = np.random.default_rng(0).standard_normal(s2[0]).astype(dtype)
        v = np.random.default_rng(1).standard_normal(s2[1]).astype(dtype)
        k = np.where(np.isfinite(k), np.multiply.outer(u, v).astype(dtype), k)
    if mode == "valid" and not (
        all(i >= j for i, j in zip(s1, s2, strict=True))
        or all(i <= j for i, j in zip(s1, s2, strict=True))
    ):
        return
    y = getattr(fastconv.signal, func)(a, k, mode=mode, boundary=boundary)
    with np.errstate(all="ignore"):
        r = getattr(scipy_signal, func)(a, k, mode=mode, boundary=boundary)
    scale = None
    if size == "large":  # the FFT path rounds against the sum of |terms|
        scale = transform_scale(a[None], k[None], None)
    assert_placement(y, r, dtype, scale)


# ------------------------------------------------------------------ the two depthwise entries


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("entry", ["conv_depthwise_planes", "conv_depthwise16"])
@settings(max_examples=12, **SETTINGS)
@given(
    data=st.data(),
    C=st.integers(1, 20),
    mult=st.integers(1, 2),
    H=st.integers(1, 36),
    W=st.integers(1, 36),
    k=st.integers(1, 5),
    stride=st.integers(1, 2),
    padding=st.integers(0, 2),
    dilation=st.integers(1, 2),
)
def test_depthwise_entries_nonfinite(
    backend, entry, data, C, mult, H, W, k, stride, padding, dilation
):
    """The plane path and the 16-channels-in-lanes path, called as the planner calls them with
    their own workspace sizes: direct summation's placement over in-image taps."""
    mod = _plan.kernels(backend)
    if min(H, W) + 2 * padding < dilation * (k - 1) + 1:
        return
    _check_depthwise_entry(mod, entry, data, (2, C, H, W), mult, k, stride, padding, dilation)


def _check_depthwise_entry(mod, entry, data, shape, mult, k, stride, padding, dilation, check=None):
    """Call depthwise kernel `entry` as the planner does (its own workspace size, stale NaN in it,
    7.0 in the output beforehand) on drawn data with NaN/inf, against torch's direct sum.
    `check(g)` may assert something of the geometry first."""
    from fastconv._geometry import conv_geometry

    C, dtype = shape[1], data.draw(st.sampled_from([np.float32, np.float64]))
    if entry == "conv_depthwise16" and not mod.depthwise16_supported(np.dtype(dtype).char):
        return
    x = data.draw(sprinkled(shape, dtype))
    w = data.draw(sprinkled((C * mult, 1, k, k), dtype))
    b = data.draw(st.none() | sprinkled((C * mult,), dtype, most=1))
    x4, w4, b4, g = conv_geometry(x, w, b, stride, padding, dilation, C)
    if check is not None:
        check(g)
    geo, nt = g.as_array(), 2
    size = (
        mod.depthwise16_workspace if entry == "conv_depthwise16" else mod.depthwise_planes_workspace
    )(geo)
    ws = np.full((nt, size), np.nan, g.dtype)  # stale workspace must not leak into outputs
    out = np.full(g.out_shape, 7.0, g.dtype)
    bias = np.zeros((1, 1), g.dtype) if b is None else b4.reshape(1, -1)
    getattr(mod, entry)(x4, w4.reshape(1, g.K, -1), bias, b is not None, geo, out, ws, 0, nt)
    r = torch_direct_conv2d(x, w, b, stride, padding, dilation, C)
    assert_placement(out, r, dtype)


@pytest.mark.timeout(60)
@settings(max_examples=30, **SETTINGS)
@given(
    data=st.data(),
    C=st.integers(1, 40),
    mult=st.integers(1, 2),
    H=st.integers(1, 24),
    W=st.integers(1, 31),
    k=st.sampled_from([2, 3, 4, 5]),
    stride=st.integers(1, 2),
    dilation=st.integers(1, 2),
)
def test_depthwise_flat_planes_nonfinite(data, C, mult, H, W, k, stride, dilation):
    """The Cython plane kernel's flat path for planes under 16 wide (runs of 16 pixels across
    rows; at stride 2 over the polyphase split; 16 planes per task, two at a time, odd counts
    and channel multipliers), as the planner calls it: torch's direct sum, NaN/inf placement
    included (an inf weight on a padding tap adds no NaN).  "Same" padding, the geometry the
    path takes, and for even kernels the one beside it that it does not."""
    if "cython" not in BACKENDS:
        pytest.skip("the flat path is the Cython kernel's")
    mod = _plan.kernels("cython")
    padding = dilation * (k - 1) // 2
    if min(H, W) + 2 * padding < dilation * (k - 1) + 1:
        return

    def flat_when_it_applies(g):
        if g.dtype != np.float32 or _plan.cpu_level() != "v4":
            return
        same = (g.Wo == g.W) if stride == 1 else (g.Wo == (g.W + 1) // 2)
        want = same and g.Wo < 16 and g.Ho * g.Wo >= 16
        assert bool(mod.depthwise_plane_flat(g.as_array(), "f")) == want

    _check_depthwise_entry(
        mod,
        "conv_depthwise_planes",
        data,
        (2, C, H, W),
        mult,
        k,
        stride,
        padding,
        dilation,
        flat_when_it_applies,
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=12, **SETTINGS)
@given(
    data=st.data(),
    C=st.integers(1, 20),
    mult=st.integers(1, 3),
    H=st.integers(1, 40),
    W=st.integers(1, 40),
    stride=st.integers(1, 3),
)
def test_depthwise_1x1_planes_nonfinite(backend, data, C, mult, H, W, stride):
    """The plane kernel's one-pass 1x1 branch (no padding: every tap in the image), any channel
    multiplier and stride, as the planner calls it: torch's values and NaN/inf placement."""

    def one_pass(g):
        assert _plan._depthwise_one(g)

    mod = _plan.kernels(backend)
    _check_depthwise_entry(
        mod, "conv_depthwise_planes", data, (2, C, H, W), mult, 1, stride, 0, 1, one_pass
    )
