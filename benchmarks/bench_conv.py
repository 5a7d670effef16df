"""asv benchmarks for fastconv.conv2d, with torch, NumPy and SciPy in the same graphs.

The ``backend`` parameter holds fastconv's two backends and the peers: each graph shows the ratio.
"""

from __future__ import annotations

import numpy as np

from ._common import (
    LAYERS,
    THREADS,
    best_time,
    fastconv,
    gflops,
    layer_arrays,
    layer_flops,
    layer_gemm_shape,
    require_backend,
    require_torch,
    rng,
    use_threads,
    warm,
)

# Shapes beyond the public layer suite (which LayerTime/LayerSuite cover, b1_3x3_c64 included):
# (N, C, H, W, K, kh, kw, stride, pad, dil, groups).
CONV_SHAPES = {
    "b2_c16_32x32_k3": (2, 16, 32, 32, 32, 3, 3, 1, 1, 1, 1),
    "b2_c32_40x40_k5_s2_g4": (2, 32, 40, 40, 64, 5, 5, 2, 2, 1, 4),
}
FASTCONV = ("numba", "cython")
PEERS = ("torch", "numpy", "scipy")


def numpy_conv2d(x, w, s, p, d, g):
    """conv2d as a NumPy user writes it: sliding_window_view + einsum (BLAS through tensordot)."""
    n, c, _, _ = x.shape
    k, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    v = np.lib.stride_tricks.sliding_window_view(xp, (d * (kh - 1) + 1, d * (kw - 1) + 1), (2, 3))
    v = v[:, :, ::s, ::s, ::d, ::d]
    v = v.reshape(n, g, cg, *v.shape[2:])
    return np.einsum(
        "ngchwij,gkcij->ngkhw", v, w.reshape(g, k // g, cg, kh, kw), optimize=True
    ).reshape(n, k, v.shape[3], v.shape[4])


def scipy_conv2d(x, w, s, p, d, g):
    """conv2d by scipy.signal.correlate (direct or FFT, SciPy picks), one output channel a call."""
    from scipy import signal

    k, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    if d > 1:
        wd = np.zeros((k, cg, d * (kh - 1) + 1, d * (kw - 1) + 1), w.dtype)
        wd[:, :, ::d, ::d] = w
        w = wd
    kg = k // g
    return np.concatenate(
        [
            signal.correlate(
                xp[:, (o // kg) * cg : (o // kg + 1) * cg], w[o : o + 1], mode="valid"
            )[:, :, ::s, ::s]
            for o in range(k)
        ],
        axis=1,
    )


def conv_callable(backend, x, w, s, p, d, g):
    """A no-argument function running conv2d with `backend` (fastconv's or a peer's)."""
    if backend in FASTCONV:
        require_backend(backend)
        return lambda: fastconv.conv2d(x, w, None, s, p, d, g, backend=backend)
    if backend == "torch":
        torch = require_torch()
        xt, wt = torch.from_numpy(x), torch.from_numpy(w)

        def run():
            with torch.no_grad():
                return torch.nn.functional.conv2d(xt, wt, None, s, p, d, g)

        return run
    if backend == "numpy":
        return lambda: numpy_conv2d(x, w, s, p, d, g)
    if backend == "scipy":
        return lambda: scipy_conv2d(x, w, s, p, d, g)
    raise ValueError(backend)


class _Timed:
    """Benchmarks that time self.fn: setup builds it and calls `_start`, which sets the thread
    count (all threads unless given) and warms it; teardown restores the thread settings."""

    def _start(self, fn, threads=None, backend=None):
        self.restore = use_threads(THREADS[-1] if threads is None else threads)
        self.fn = fn
        if backend is None:
            warm(fn)
        else:
            _warm(backend, fn)

    def teardown(self, *params):
        restore = getattr(self, "restore", None)
        if restore is not None:
            restore()


class _AllThreads(_Timed):
    timeout = 120


class Conv2d(_Timed):
    """conv2d time on shapes beyond the layer suite, float32 and float64, 1 and all threads."""

    params = (["float32", "float64"], list(CONV_SHAPES), list(FASTCONV + PEERS), list(THREADS))
    param_names = ["dtype", "shape", "backend", "threads"]
    timeout = 120
    repeat = (2, 10, 10.0)

    def setup(self, dtype, shape, backend, threads):
        if backend == "scipy" and threads != 1:
            raise NotImplementedError("scipy.signal is single-threaded: measured at threads=1")
        if backend == "torch":
            require_torch()  # loaded before use_threads, so torch's threads are set too
        spec = CONV_SHAPES[shape]
        x, w, kw = layer_arrays(spec, np.dtype(dtype))
        self._start(conv_callable(backend, x, w, *kw.values()), threads, backend)

    def time_conv2d(self, dtype, shape, backend, threads):
        self.fn()


class Conv2dMemory(Conv2d):
    """Peak memory of one conv2d call, one thread (whole process: the peers' libraries count)."""

    params = (["float32", "float64"], list(CONV_SHAPES), list(FASTCONV + PEERS), [1])
    time_conv2d = None

    def peakmem_conv2d(self, dtype, shape, backend, threads):
        self.fn()


class Filter2d(_Timed):
    """One image, one kernel ('same' output): conv2d against scipy.signal, scipy.ndimage, NumPy."""

    params = (
        ["float32", "float64"],
        ["512x512_k3", "512x512_k9"],
        ["numba", "cython", "torch", "numpy", "scipy.signal", "scipy.ndimage"],
        list(THREADS),
    )
    param_names = ["dtype", "shape", "backend", "threads"]
    timeout = 60

    def setup(self, dtype, shape, backend, threads):
        if backend.startswith(("scipy", "numpy")) and threads != 1:
            raise NotImplementedError("single-threaded peer: measured at threads=1")
        if backend == "torch":
            require_torch()
        side, k = shape.split("_k")
        h = int(side.split("x")[0])
        k = int(k)
        r = rng()
        img = r.standard_normal((h, h)).astype(dtype)
        ker = r.standard_normal((k, k)).astype(dtype)
        p = k // 2
        if backend in FASTCONV or backend in ("torch", "numpy"):
            f = conv_callable(backend, img[None, None], ker[None, None], 1, p, 1, 1)
        elif backend == "scipy.signal":
            from scipy import signal

            def f():
                return signal.correlate2d(img, ker, mode="same")
        else:
            from scipy import ndimage

            def f():
                return ndimage.correlate(img, ker, mode="constant", cval=0.0)

        self._start(f, threads, backend)

    def time_filter2d(self, dtype, shape, backend, threads):
        self.fn()


class Filter2dMemory(Filter2d):
    """Peak memory of one 2-D filter call, one thread."""

    params = Filter2d.params[:3] + ([1],)
    time_filter2d = None

    def peakmem_filter2d(self, dtype, shape, backend, threads):
        self.fn()


def _by_flops():
    return sorted(LAYERS, key=lambda n: layer_flops(LAYERS[n]))


class LayerSuite:
    """The public CNN layer suite (float32, all threads): GFLOP/s, the fraction of NumPy's sgemm
    rate, and the ratio to torch, for fastconv's backends and torch.

    Everything is measured once, in ``setup_cache``, in ONE process, calls interleaved, best of
    several: on a noisy shared machine only same-process interleaved figures make fair ratios.  The
    sgemm yardstick is NumPy's matmul on one group's GEMM of the layer,
    (K/g x C/g*kh*kw) @ (C/g*kh*kw x N*Ho*Wo), at the same thread count.
    """

    # Cheapest layer first: the smoke test (tests/test_benchmarks.py) runs the first combination.
    params = (_by_flops(), ["numba", "cython", "torch"])
    param_names = ["layer", "backend"]
    timeout = 60
    repeat_calls = 3

    def setup_cache(self):
        n = THREADS[-1]
        fns, restore = {}, None
        results = {}
        try:
            for layer in _by_flops():
                spec = LAYERS[layer]
                x, w, kw = layer_arrays(spec, np.float32)
                m, k, nn = layer_gemm_shape(spec)
                a = rng().standard_normal((m, k)).astype(np.float32)
                b = rng().standard_normal((k, nn)).astype(np.float32)
                fns = {"sgemm": lambda a=a, b=b: a @ b}
                for backend in ("numba", "cython", "torch"):
                    try:
                        if backend == "torch":
                            require_torch()
                        fns[backend] = conv_callable(backend, x, w, *kw.values())
                    except NotImplementedError:
                        pass
                if restore is None:
                    restore = use_threads(n)
                for f in fns.values():
                    warm(f)
                best = dict.fromkeys(fns, float("inf"))
                for _ in range(self.repeat_calls):  # interleaved: noise hits every backend alike
                    for name, f in fns.items():
                        best[name] = min(best[name], best_time(f, 1))
                sgemm = gflops(2.0 * m * k * nn, best["sgemm"])
                flops = layer_flops(spec)
                for name, t in best.items():
                    results[(layer, name)] = {
                        "gflops": gflops(flops, t),
                        "sgemm_fraction": gflops(flops, t) / sgemm,
                        "torch_ratio": best["torch"] / t if "torch" in best else float("nan"),
                    }
                results[(layer, "sgemm")]["gflops"] = sgemm
        finally:
            if restore is not None:
                restore()
        return results

    setup_cache.timeout = 600

    def setup(self, results, layer, backend):
        if (layer, backend) not in results:
            raise NotImplementedError(f"{backend} not available")

    def track_gflops(self, results, layer, backend):
        return results[(layer, backend)]["gflops"]

    track_gflops.unit = "GFLOP/s"

    def track_sgemm_fraction(self, results, layer, backend):
        return results[(layer, backend)]["sgemm_fraction"]

    track_sgemm_fraction.unit = "x NumPy sgemm rate"


class LayerVsTorch:
    """torch's time / fastconv's time on each suite layer (above 1: faster than torch)."""

    params = (_by_flops(), list(FASTCONV))
    param_names = ["layer", "backend"]
    timeout = 60
    setup_cache = LayerSuite.setup_cache  # same function: asv measures once for all three classes
    repeat_calls = LayerSuite.repeat_calls

    def setup(self, results, layer, backend):
        if (layer, "torch") not in results or (layer, backend) not in results:
            raise NotImplementedError("needs torch and this backend")

    def track_speed_vs_torch(self, results, layer, backend):
        return results[(layer, backend)]["torch_ratio"]

    track_speed_vs_torch.unit = "x torch speed"


class LayerSgemm:
    """NumPy's sgemm rate on each layer's GEMM (measured with LayerSuite, in its process)."""

    params = (_by_flops(),)
    param_names = ["layer"]
    timeout = 60
    setup_cache = LayerSuite.setup_cache
    repeat_calls = LayerSuite.repeat_calls

    def track_gflops(self, results, layer):
        return results[(layer, "sgemm")]["gflops"]

    track_gflops.unit = "GFLOP/s"


class LayerTime(_AllThreads):
    """Wall time of fastconv on each suite layer (all threads): what `asv continuous` gates on."""

    params = (_by_flops(), list(FASTCONV))
    param_names = ["layer", "backend"]

    def setup(self, layer, backend):
        x, w, kw = layer_arrays(LAYERS[layer], np.float32)
        self._start(conv_callable(backend, x, w, *kw.values()))

    def time_layer(self, layer, backend):
        self.fn()


def _warm(backend, fn):
    """JIT-compiled backends get two warm-up calls; the peers one (imports, first-touch pages)."""
    if backend in FASTCONV:
        warm(fn)
    else:
        fn()


class Conv2dBoundedMemory:
    """conv2d on x (32, 64, 56, 56) with a 64->64 3x3 kernel: extra memory stays within the 64 MiB
    workspace bound, where a full im2col matrix would take 231 MB (issue 2's memory figure)."""

    params = [list(FASTCONV)]
    param_names = ["backend"]
    timeout = 300

    def setup(self, backend):
        require_backend(backend)
        g = rng()
        self.x = g.standard_normal((32, 64, 56, 56), dtype=np.float32)
        self.w = g.standard_normal((64, 64, 3, 3), dtype=np.float32)
        fastconv.conv2d(self.x[:1], self.w, padding=1, backend=backend)  # JIT warm-up

    def peakmem_conv2d_b32(self, backend):
        fastconv.conv2d(self.x, self.w, padding=1, backend=backend)

    def track_extra_mib(self, backend):
        """Peak memory the call allocates beyond its output, measured with tracemalloc (MiB)."""
        import tracemalloc

        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            out = fastconv.conv2d(self.x, self.w, padding=1, backend=backend)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        return (peak - out.nbytes) / 2**20

    track_extra_mib.unit = "MiB"


class Algorithms(_AllThreads):
    """The same 3x3 layers through each algorithm that can run them (Cython kernels, all threads):
    Winograd F(2x2, 3x3) against the packed direct kernel it replaced, and torch for scale."""

    params = (
        ["r50_3x3_c64", "r50_3x3_c128", "r50_3x3_c256", "dil2_3x3_c64"],
        ["winograd", "packed", "torch"],
    )
    param_names = ["layer", "algorithm"]

    def setup(self, layer, algorithm):
        if layer not in LAYERS:
            raise NotImplementedError(f"{layer} is not in this layer suite")
        x, w, kw = layer_arrays(LAYERS[layer], np.float32)
        if algorithm == "torch":
            self._start(conv_callable("torch", x, w, *kw.values()))
        else:
            self._start(_forced(algorithm, x, w, kw, THREADS[-1]))

    def time_algorithm(self, layer, algorithm):
        self.fn()


def _forced(algorithm, x, w, kw, nt):
    """conv2d with the planner's choice overridden (Cython kernels; NotImplementedError if absent)."""
    from fastconv._geometry import conv_geometry
    from fastconv._plan import ConvPlan, kernels, winograd_plan
    from fastconv.conv import run_conv

    require_backend("cython")
    x4, w4, _, g = conv_geometry(x, w, None, *kw.values())
    try:
        if algorithm == "winograd":
            plan = winograd_plan(g, "cython", nt)
        else:
            mod = kernels("cython", "packed")
            if not mod.packed_supported("f"):
                raise NotImplementedError("packed kernel needs AVX-512")
            ws = int(mod.packed_workspace_size(g.as_array(), nt))
            plan = ConvPlan("packed", "cython", nt, workspace=ws)
    except ImportError as e:
        raise NotImplementedError(str(e)) from None
    w3 = w4.reshape(1, g.K, -1)
    return lambda: run_conv(plan, x4, w3, None, g)


# (N, C, H, W, K, kh, kw, stride, pad, dil, groups)
DEPTHWISE_SHAPES = {
    "s2_c144_56": (4, 144, 56, 56, 144, 3, 3, 2, 1, 1, 144),
    "c192_28": (4, 192, 28, 28, 192, 3, 3, 1, 1, 1, 192),
    "c576_14": (4, 576, 14, 14, 576, 3, 3, 1, 1, 1, 576),
    "c960_7": (4, 960, 7, 7, 960, 3, 3, 1, 1, 1, 960),
}


class Depthwise(_AllThreads):
    """MobileNet-style depthwise layers beyond the suite's stride-1 56x56 one: downsampling
    (stride 2) and the small planes of later stages, float32, all threads."""

    params = (list(DEPTHWISE_SHAPES), list(FASTCONV) + ["torch"])
    param_names = ["layer", "backend"]

    def setup(self, layer, backend):
        x, w, kw = layer_arrays(DEPTHWISE_SHAPES[layer], np.float32)
        self._start(conv_callable(backend, x, w, *kw.values()))

    def time_depthwise(self, layer, backend):
        self.fn()


# Calls users make outside the suite (issue: the planner on every shape): a DeepLab dilated layer,
# ResNet-50's small planes at batch 1 and two tiny calls where per-call overhead is the cost.
PLANNER_SHAPES = {
    "deeplab_d4_33": (1, 256, 33, 33, 256, 3, 3, 1, 4, 4, 1),
    "r50_b1_c512_7": (1, 512, 7, 7, 512, 3, 3, 1, 1, 1, 1),
    "r50_b1_c256_14": (1, 256, 14, 14, 256, 3, 3, 1, 1, 1, 1),
    "r50_b1_c512_14_s2": (1, 512, 14, 14, 512, 3, 3, 2, 1, 1, 1),
    "tiny_3to4_8": (1, 3, 8, 8, 4, 3, 3, 1, 1, 1, 1),
    "small_16_16": (1, 16, 16, 16, 16, 3, 3, 1, 1, 1, 1),
}


class PlannerCases(_Timed):
    """The planner's choice (algorithm and thread count) on off-suite shapes, 1 and all threads,
    torch alongside (benchmarks/scripts/planner_cases.py prints the same as interleaved ratios)."""

    params = (list(PLANNER_SHAPES), list(FASTCONV) + ["torch"], list(THREADS))
    param_names = ["layer", "backend", "threads"]
    timeout = 120

    def setup(self, layer, backend, threads):
        if backend == "torch":
            require_torch()
        x, w, kw = layer_arrays(PLANNER_SHAPES[layer], np.float32)
        self._start(conv_callable(backend, x, w, *kw.values()), threads, backend)

    def time_case(self, layer, backend, threads):
        self.fn()


class Tuned(_Timed):
    """conv2d after fastconv.tune measured the shape (remembered for this process only), against
    the cost model's plan: the two should be within noise where the model is right."""

    params = (["r50_b1_c512_7", "deeplab_d4_33", "small_16_16"], ["model", "tuned"])
    param_names = ["layer", "plan"]
    timeout = 180

    def setup(self, layer, plan):
        x, w, kw = layer_arrays(PLANNER_SHAPES[layer], np.float32)
        restore = use_threads(THREADS[-1])
        try:
            from fastconv import _plan, _wisdom

            _wisdom._loaded = {}  # never the user's file: this benchmark's own in-memory wisdom
            _plan.clear_cache()
            if plan == "tuned":
                fastconv.tune(x, w, **kw, repeat=3, remember=False)
        finally:
            restore()
        self._start(lambda: fastconv.conv2d(x, w, **kw))

    def teardown(self, layer, plan):
        from fastconv import _plan, _wisdom

        _wisdom._loaded = None
        _plan.clear_cache()
        super().teardown(layer, plan)

    def time_conv2d(self, layer, plan):
        self.fn()


# conv -> (+ residual) -> activation blocks of the three networks (N, C, H, W, K, kh, kw, stride,
# pad, dil, groups): a 1x1 expansion on a large map, a 3x3 block on a small one
EPILOGUE_SHAPES = {
    "mbv2_expand_24to144_56": (1, 24, 56, 56, 144, 1, 1, 1, 0, 1, 1),
    "r50_3x3_c256_14": (1, 256, 14, 14, 256, 3, 3, 1, 1, 1, 1),
}


class Epilogue(_Timed):
    """conv2d's fused epilogue (activation + residual in one pass after the convolution) against
    the same block with NumPy glue (``y += r`` then the activation), and with the weight panels
    kept for fixed weights (``fastconv.Conv2d``) against packed on every call."""

    params = (
        list(EPILOGUE_SHAPES),
        ["relu", "silu"],
        ["numpy_glue", "fused", "fused_fixed_weights"],
    )
    param_names = ["shape", "activation", "variant"]
    timeout = 120

    def setup(self, shape, activation, variant):
        x, w, kw = layer_arrays(EPILOGUE_SHAPES[shape], np.float32)
        y = fastconv.conv2d(x, w, **kw)
        r = rng().standard_normal(y.shape).astype(np.float32)
        if variant == "numpy_glue":

            def act(v):
                if activation == "relu":
                    return np.maximum(v, 0, out=v)
                with np.errstate(over="ignore"):
                    np.divide(v, 1 + np.exp(-v), out=v)
                return v

            def fn():
                v = fastconv.conv2d(x, w, **kw)
                v += r
                return act(v)

        elif variant == "fused":

            def fn():
                return fastconv.conv2d(x, w, **kw, activation=activation, residual=r)

        else:
            layer = fastconv.Conv2d(
                w, None, kw["stride"], kw["padding"], kw["dilation"], kw["groups"]
            )

            def fn():
                return layer(x, activation=activation, residual=r)

        self._start(fn, 1)

    def time_block(self, shape, activation, variant):
        self.fn()
