"""Numba kernels: the same functions as fastconv._ext, compiled with Numba (parallel, cached).

Each kernel compiles lazily, per dtype, on first use; `warmup` compiles them all ahead of time.
"""

from __future__ import annotations

import time

#: The kernel modules of this backend (fastconv._plan loads them by these names).
MODULES = ("conv", "grad", "ndimage", "packed", "signal", "winograd")

#: What `warmup` compiles for: the dtypes the public layer hands the kernels.
DTYPES = ("float32", "float64")

#: Twins the planner runs on Cython only (fastconv._plan: the Numba grouped loop is reference-grade;
#: the direct weight gradient is chosen only with the Cython kernel's AVX-512 instance, the Numba
#: twin serves the tests), and the network runner's glue kernels (max pool, plane means and
#: scales: on the Numba backend it uses NumPy, faster than those scalar twins): no public call
#: compiles them on backend="numba", so neither warmup nor `info` counts them.
CYTHON_ONLY = (
    "conv_grouped",
    "conv_wgrad_direct",
    "max_pool2d",
    "plane_means",
    "scale_planes",
)

#: Kernels a public call runs for some dtypes only (none today: the phase scatter serves the
#: float32 transposed convolution and dilated Winograd in both dtypes).
ONLY_DTYPES = {}


def kernel_dtypes(name):
    """The dtypes of DTYPES a public call compiles kernel `name` for."""
    return ONLY_DTYPES.get(name, DTYPES)


def all_kernels():
    """Every parallel kernel a public call can run on backend="numba", each once (aliases too)."""
    import importlib

    from . import _options

    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")
    return [k for k in _options.KERNELS if k.__name__ not in CYTHON_ONLY]


def cache_status():
    """(kernel name, dtypes in the on-disk cache or None if unreadable) for every kernel."""
    return [(k.__name__, k.cached_dtypes()) for k in all_kernels()]


def _calls(dtype):
    """(label, thunk) pairs: small public calls on backend="numba" that between them reach every
    kernel for `dtype`, through the same validation and layout the public layer uses (so the
    types compiled are the ones a real call asks for)."""
    import numpy as np

    import fastconv

    rng = np.random.default_rng(1234)

    def arr(*shape):
        return rng.standard_normal(shape).astype(dtype)

    layers = [  # (x shape, w shape, conv2d keywords)
        ((1, 32, 12, 12), (32, 32, 3, 3), dict(padding=1)),
        # dilated Winograd needs 8x8 outputs per phase (the phase split and merge kernels)
        ((1, 32, 16, 16), (32, 32, 3, 3), dict(padding=2, dilation=2)),
        # phases not alike (17 = 9 + 8 rows): phase classes (gather_phases, scatter_phases)
        ((1, 32, 17, 17), (32, 32, 3, 3), dict(padding=2, dilation=2)),
        ((1, 8, 10, 10), (8, 1, 3, 3), dict(padding=1, groups=8)),
        ((1, 16, 10, 10), (16, 4, 3, 3), dict(padding=1, groups=4)),
        ((1, 16, 8, 8), (16, 16, 1, 1), {}),
    ]
    calls = []
    for xs, wsh, kw in layers:
        x, w, b = arr(*xs), arr(*wsh), arr(wsh[0])
        try:
            names = fastconv.algorithms(xs, wsh, dtype=np.dtype(dtype), backend="numba", **kw)
        except (AttributeError, TypeError):  # no algorithm registry: the planner's choice only
            names = ("auto",)
        for a in names:
            calls.append(
                (
                    f"conv2d {xs}*{wsh} {a}",
                    lambda x=x, w=w, b=b, kw=kw, a=a: fastconv.conv2d(
                        x, w, b, backend="numba", **kw, **({} if a == "auto" else {"algorithm": a})
                    ),
                )
            )
    xe, we, re_ = arr(1, 4, 6, 6), arr(4, 4, 1, 1), arr(1, 4, 6, 6)
    calls.append(
        (
            "conv2d activation + residual",
            lambda: fastconv.conv2d(xe, we, activation="relu", residual=re_, backend="numba"),
        )
    )
    xt, wt = arr(1, 16, 8, 8), arr(16, 8, 4, 4)
    calls.append(
        (
            "conv_transpose2d 4x4 stride 2 (stride phases)",
            lambda: fastconv.conv_transpose2d(xt, wt, stride=2, padding=1, backend="numba"),
        )
    )
    xd, gd = arr(1, 8, 10, 10), arr(1, 8, 10, 10)
    calls.append(
        (
            "conv2d_weight depthwise",
            lambda: fastconv.conv2d_weight(xd, (8, 1, 3, 3), gd, 1, 1, 1, 8, backend="numba"),
        )
    )
    wd = arr(8, 8, 3, 3)
    calls.append(
        (
            "conv2d_input (transposed convolution's phase weights)",
            lambda: fastconv.conv2d_input(xd.shape, wd, gd, 1, 1, backend="numba"),
        )
    )
    x = arr(1, 3, 10, 10)
    calls.append(("im2col", lambda: fastconv.im2col(x, 3, padding=1, backend="numba")))
    cols = arr(1, 27, 100)
    calls.append(("col2im", lambda: fastconv.col2im(cols, (10, 10), 3, padding=1, backend="numba")))
    img, k, col, row = arr(40, 40), arr(5, 5), arr(5), arr(5)
    for method, kern in (("direct", k), ("separable", np.outer(col, row))):
        calls.append(
            (
                f"signal.correlate2d {method}",
                lambda m=method, kern=kern: fastconv.signal.correlate2d(
                    img, kern, mode="same", method=m, backend="numba"
                ),
            )
        )
    vol, line = arr(6, 7, 40), arr(5)
    for label, call in (
        (
            "ndimage.correlate1d last axis",
            lambda: fastconv.ndimage.correlate1d(vol, line, axis=-1, backend="numba"),
        ),
        (
            "ndimage.correlate1d inner axis",
            lambda: fastconv.ndimage.correlate1d(vol, line, axis=0, backend="numba"),
        ),
        (
            "ndimage.correlate",
            lambda: fastconv.ndimage.correlate(vol, arr(3, 3, 3), backend="numba"),
        ),
        (
            "ndimage.uniform_filter",
            lambda: fastconv.ndimage.uniform_filter(vol, 3, backend="numba"),
        ),
    ):
        calls.append((label, call))
    return calls


def warmup(dtypes=DTYPES, out=print):
    """Compile (or load from the cache) every kernel for `dtypes`; report as it goes.

    Returns the names of kernels no call reached, as "name[dtype]" (empty when all were).
    """
    from . import _options

    kernels = all_kernels()
    notice = _options._notice
    start = time.perf_counter()
    was_quiet, notice.quiet = notice.quiet, True  # the table below says it instead
    try:
        for dtype in dtypes:
            for label, call in _calls(dtype):
                before, t0 = len(notice.log), time.perf_counter()
                try:
                    call()
                except ValueError as e:  # an algorithm the registry offers but this call refuses
                    out(f"  skipped {label} [{dtype}]: {e}")
                    continue
                compiled = ", ".join(f"{n}[{d}] {s:.1f} s" for n, d, s in notice.log[before:])
                dt = time.perf_counter() - t0
                out(
                    f"  {label} [{dtype}] {dt:5.1f} s"
                    + (f"  compiled {compiled}" if compiled else "")
                )
    finally:
        notice.quiet = was_quiet
    missed = [
        f"{k.__name__}[{d}]"
        for k in kernels
        for d in dtypes
        if d in kernel_dtypes(k.__name__) and d not in k.compiled_dtypes()
    ]
    total = time.perf_counter() - start
    ncompiled = len(notice.log)
    out(
        f"warmup: {len(kernels)} kernels x {len(dtypes)} dtypes ready in {total:.1f} s "
        f"({ncompiled} compiled in this process, the rest loaded from the cache)"
    )
    if missed:
        out("warmup: not reached by any call: " + ", ".join(missed))
    return missed
