"""The planner: picks backend, algorithm, tile size and workspace for a convolution from its geometry.

Cut-overs live here and only here, each with the measurement that set it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from . import _threads

__all__ = ["ConvPlan", "WORKSPACE_BYTES", "kernels", "plan_conv2d", "resolve_backend"]

#: Default bound on extra memory a conv2d call may use beyond x, weight and output.
WORKSPACE_BYTES = 64 * 2**20
#: Per-thread im2col tile target: the L2 size of this machine's cores (AMD Zen 4, 1 MiB), so the
#: packed tile stays in L2 while BLAS streams it against the weights.
TILE_BYTES = 1 * 2**20

_BACKENDS = ("auto", "numba", "cython")
_modules = {}


def cpu_level():
    """The best x86-64 ISA level this CPU runs that fastconv builds for: "v4", "v3" or "".

    FASTCONV_CPU=baseline|v3|v4 caps it (to test the baseline build on a modern machine).
    """
    import os

    import numpy as np

    try:
        feats = np._core._multiarray_umath.__cpu_features__
    except AttributeError:  # not NumPy 2, or not x86
        feats = {}
    level = ""
    if feats.get("AVX2") and feats.get("FMA3"):
        level = "v3"
    if level and feats.get("AVX512_SKX"):
        level = "v4"
    cap = os.environ.get("FASTCONV_CPU", "").strip().lower()
    order = ["", "v3", "v4"]
    if cap in ("baseline", "v3", "v4"):
        capped = "" if cap == "baseline" else cap
        level = order[min(order.index(level), order.index(capped))]
    return level


def _load(backend, name):
    key = (backend, name)
    if key not in _modules:
        if backend == "cython":
            mod = None
            level = cpu_level()
            # the build for this CPU's ISA level (AVX-512, AVX2), else the baseline build
            for tag in ["v4", "v3"] if level == "v4" else ["v3"] if level == "v3" else []:
                try:
                    mod = importlib.import_module(f"fastconv._ext._isa_{name}_{tag}")
                    break
                except ImportError:
                    continue
            _modules[key] = mod or importlib.import_module(f"fastconv._ext.{name}")
        else:
            _modules[key] = importlib.import_module(f"fastconv._jit.{name}")
    return _modules[key]


def cython_available(name="conv"):
    """True when the compiled Cython module `name` imports."""
    try:
        _load("cython", name)
    except ImportError:
        return False
    return True


def resolve_backend(backend, name="conv"):
    """Map "auto" | "numba" | "cython" to a concrete backend name, validating the argument.

    auto prefers Cython: it has no JIT compile on first call (the cold-start cost users see) and
    measured at least as fast as Numba on every kernel both have (benchmarks/bench_im2col.py,
    bench_conv.py); Numba is used when the extension was not built.  In a forked child whose parent
    had started OpenMP pools, Cython is used with one thread, the only fork-safe combination.
    """
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "cython" if cython_available(name) else "numba"
    if backend == "cython" and not cython_available(name):
        raise ValueError(
            "backend='cython' is not available: the extension fastconv._ext.%s is not built" % name
        )
    return backend


def kernels(backend, name="conv"):
    """The kernel module `name` of a concrete backend."""
    return _load(backend, name)


@dataclass(frozen=True)
class ConvPlan:
    """How one conv2d call runs."""

    algorithm: str  # "pointwise" | "depthwise" | "grouped" | "winograd" | "gemm" | "packed" | "fft"
    backend: str
    nthreads: int
    tile: int = 0  # output pixels per im2col tile (gemm); samples per chunk (fft)
    workspace: int = 0  # elements of workspace, all threads together

    def workspace_bytes(self, itemsize):
        return self.workspace * itemsize


def _grouped_applies(geom, backend):
    """Direct grouped kernel: stride 1, a few channels per group, whole blocks of 8 outputs; only
    where the AVX-512 Cython kernel runs (the Numba twin is a reference-grade loop, slower than
    packed/gemm there).  The kernel runs any image size; planes of at least 2 x 16 are where it
    measured ahead of the packed kernel (on 14x14 and 7x7, 16 and 8 channels per group, the two
    were even within this machine's noise)."""
    if not (
        geom.groups > 1
        and geom.Cg <= 16
        and geom.Kg % 8 == 0
        and geom.sh == geom.sw == 1
        and geom.Ho >= 2
        and geom.Wo >= 16
        and backend == "cython"
    ):
        return False
    return bool(kernels(backend).grouped_supported(geom.dtype.char))


#: Fewest 2x2 output tiles per weight set for which Winograd pays for transforming the weights
#: (16*K*C values) each call.  Measured here (2 threads, 32-512 channels, shared weights): 16-64
#: tiles ran 1.1-2.8x the packed kernel's time, 98-128 tiles 0.9-1.13x, 147 and more 0.5-0.85x.
WINOGRAD_MIN_TILES = 144


def _winograd_applies(geom, backend, per_sample=False):
    """Winograd F(2x2, 3x3) for 3x3 stride-1 layers, any dilation up to 4 (run per phase).

    Cython: float32 on AVX-512; Numba twin: float32 and float64.  Measured here (2 threads,
    layers_vs_torch.py): 0.6x torch's time on ResNet 3x3 layers of 64-128 channels, 0.85x at 256
    channels on 14x14; against the packed kernel, 0.5-0.85x on every layer of 32-512 channels
    with at least WINOGRAD_MIN_TILES tiles (Numba twin: 2.0-2.4x its packed kernel's speed).
    Limits: at least 32 input channels per group (each transform point is a GEMM over them; fewer
    leave the micro-kernel mostly loading and storing), at most 512 (past 256 the tile blocks
    shrink to 32 to keep their 16 transformed planes in L2), enough tiles per weight set, and
    outputs mostly covered by whole 2x2 tiles (a 7x7 output wastes 23% of the tile area).
    """
    if not (
        geom.kh == geom.kw == 3
        and geom.sh == geom.sw == 1
        and geom.dh <= 4
        and geom.dw <= 4
        and 32 <= geom.Cg <= 512
        and geom.Kg >= 16
    ):
        return False
    # dilated: one undilated convolution per phase sub-image (their tiles are what counts)
    phases = [geom] if geom.dh == geom.dw == 1 else [p[-1] for p in geom.dilation_phases()]
    tiles = sum(((p.Ho + 1) // 2) * ((p.Wo + 1) // 2) for p in phases)
    if geom.Ho * geom.Wo < 0.75 * 4 * tiles:
        return False
    if tiles * (1 if per_sample else geom.N) < WINOGRAD_MIN_TILES:
        return False
    try:
        mod = _load(backend, "winograd")
    except ImportError:
        return False
    return bool(mod.winograd_supported(geom.dtype.char))


def winograd_plan(geom, backend, nthreads, nw=1):
    """A Winograd plan for `nw` weight sets (1 shared, N per sample), its workspace sized.

    Dilated layers run phase by phase (ConvGeometry.dilation_phases); the workspace then also
    holds one phase's input and output copies.
    """
    mod = _load(backend, "winograd")
    stacked = None if geom.dh == geom.dw == 1 else geom.stacked_phases()
    if geom.dh == geom.dw == 1:
        ws = int(mod.winograd_workspace_size(geom.as_array(), nw, nthreads))
    elif stacked is not None:  # all phases in one call
        p, nws = stacked, nw * geom.dh * geom.dw if nw > 1 else 1
        ws = int(mod.winograd_workspace_size(p.as_array(), nws, nthreads))
        ws += p.N * (p.C * p.H * p.W + p.K * p.Ho * p.Wo)
    else:
        ws = max(
            int(mod.winograd_workspace_size(p.as_array(), nw, nthreads))
            + p.N * (p.C * p.H * p.W + p.K * p.Ho * p.Wo)
            for *_, p in geom.dilation_phases()
        )
    return ConvPlan("winograd", backend, nthreads, workspace=ws)


def _packed_module(backend):
    try:
        mod = _load(backend, "packed")
    except ImportError:
        return None
    return mod


def plan_conv2d(
    geom, backend="auto", nthreads=None, workspace_bytes=WORKSPACE_BYTES, per_sample=False
):
    """Choose the algorithm for `geom` (a ConvGeometry).

    Parameters
    ----------
    geom : ConvGeometry
    backend : {"auto", "numba", "cython"}
    nthreads : int, optional
        Defaults to fastconv.get_num_threads().
    workspace_bytes : int
        Upper bound on the workspace (extra memory) of the plan.
    per_sample : bool
        Weights differ per sample (dynamic convolution).
    """
    be = resolve_backend(backend)
    if nthreads is None:
        nthreads = _threads.get_num_threads()
    itemsize = geom.dtype.itemsize
    if geom.Cg == 1 and geom.groups > 1:
        # depthwise (any channel multiplier): GEMM with R = kh*kw is the wrong tool; the packed
        # micro-kernel measured 5x torch's time there, the direct kernel 0.2-0.5x.
        ws = nthreads * int(kernels(be).depthwise_workspace(geom.as_array()))
        return ConvPlan("depthwise", be, nthreads, workspace=ws)
    if _grouped_applies(geom, be):
        # small groups (ResNeXt: 32 x 8->8): the packed kernel reuses each packed input only Kg
        # times, so packing costs as much as the FMAs; the direct kernel keeps 8 channels x 2 rows
        # x 16 pixels in registers and reads each input once per tap (measured in the commit).
        ws = nthreads * int(kernels(be).grouped_workspace(geom.as_array()))
        return ConvPlan("grouped", be, nthreads, workspace=ws)
    if not per_sample and _fft_wins(geom, nthreads):
        chunk = _fft_chunk(geom, workspace_bytes)
        if chunk:
            return ConvPlan("fft", be, nthreads, tile=chunk, workspace=0)
    if _winograd_applies(geom, be, per_sample):
        # 16 multiplications per 2x2 outputs instead of 36, per-sample weights included
        plan = winograd_plan(geom, be, nthreads, geom.N if per_sample else 1)
        if plan.workspace * itemsize <= workspace_bytes:
            return plan
    packed = _packed_module(be)
    if packed is not None and not per_sample and packed.packed_supported(geom.dtype.char):
        # fastconv's own micro-kernel, including 1x1: it reads the input planes directly there and
        # measured 0.72-0.99x torch's time where OpenBLAS through np.matmul took 0.86-1.41x.
        ws = int(packed.packed_workspace_size(geom.as_array(), nthreads))
        if ws * itemsize <= workspace_bytes:
            return ConvPlan("packed", be, nthreads, workspace=ws)
    if geom.is_pointwise and geom.groups == 1:
        # 1x1 stride 1 is a GEMM on the input as it lies: no packing at all.
        return ConvPlan("pointwise", be, nthreads)
    mod = kernels(be)
    R, Kg, P = geom.R, geom.Kg, geom.P
    per_pixel = mod.conv_gemm_workspace(R, Kg, 1) * itemsize
    tile = max(1, TILE_BYTES // per_pixel)
    # keep every thread busy at small batch: at least two tiles per thread when the image allows
    tasks_wanted = 2 * nthreads
    tiles_per_image = max(1, -(-tasks_wanted // max(1, geom.N * geom.groups)))
    tile = min(tile, -(-P // tiles_per_image))
    tile = min(tile, max(1, workspace_bytes // (per_pixel * nthreads)), P)
    tile = max(1, tile)
    ws = mod.conv_gemm_workspace(R, Kg, tile) * nthreads
    return ConvPlan("gemm", be, nthreads, tile=tile, workspace=ws)


# FFT cut-over.  Rates measured here (2 threads, benchmarks/conv_fft_cutover.py): the direct path
# (packed micro-kernel / BLAS tiles) sustains about DIRECT_RATE; scipy.fft about FFT_RATE in
# 2.5 N log2 N flops; the per-frequency complex matmul about CMM_RATE.
DIRECT_RATE = {4: 60e9, 8: 25e9}
FFT_RATE = 3e9
CMM_RATE = 6e9


def fft_seconds(geom):
    """Estimated time of conv2d by FFT (all groups)."""
    from ._fft import fft_len

    Hp, Wp = geom.H + geom.pt + geom.pb, geom.W + geom.pl + geom.pr
    fh, fw = fft_len(Hp), fft_len(Wp)
    real = fh * fw
    cplx = fh * (fw // 2 + 1)
    transforms = geom.N * geom.C + geom.N * geom.K + geom.K * geom.Cg
    fft = transforms * 2.5 * real * max(1.0, np.log2(real)) / FFT_RATE
    cmm = 8.0 * geom.N * geom.groups * geom.Cg * geom.Kg * cplx / CMM_RATE
    return fft + cmm


def direct_seconds(geom):
    """Estimated time of the direct (GEMM-shaped) path.  Few output channels per group leave the
    micro-kernel's 8-channel tile partly idle and few reduction rows starve it (measured: 1->4
    channels 21x21 ran at a quarter of the dense rate)."""
    occupancy = min(1.0, geom.Kg / 16) * min(1.0, geom.R / 64)
    return geom.flops / (DIRECT_RATE[geom.dtype.itemsize] * occupancy)


def _fft_wins(geom, nthreads):
    # FFT pays off for large kernels only; strides waste the FFT's full-resolution output.
    if geom.kh * geom.kw < 25 or geom.groups > 4:
        return False
    return fft_seconds(geom) * geom.sh * geom.sw < 0.7 * direct_seconds(geom)


def _fft_chunk(geom, workspace_bytes):
    """Samples per FFT chunk within the workspace bound (0: not even one fits)."""
    from ._fft import spectra_bytes

    Hp, Wp = geom.H + geom.pt + geom.pb, geom.W + geom.pl + geom.pr
    one = spectra_bytes(1, geom.Cg, geom.Kg, Hp, Wp, geom.dtype)
    kernel = spectra_bytes(0, geom.Cg, geom.Kg, Hp, Wp, geom.dtype)
    per_sample = one - kernel
    # x padded copy, output block and irfft buffer are about 3 more planes per channel
    per_sample += (geom.Cg + 2 * geom.Kg) * Hp * Wp * geom.dtype.itemsize
    room = workspace_bytes - kernel
    return int(min(geom.N, room // per_sample)) if room > per_sample else 0
