"""The planner: the one owner of what runs, with its algorithm registry and cost model.

Every algorithm is one `Algorithm` entry in `ALGORITHMS`: its preconditions for a geometry, backend
and dtype, its workspace, its cost (constants measured by benchmarks/scripts/calibrate.py, stored in
fastconv/_costs.py) and how it runs.  `plan_conv2d` takes the cheapest applicable entry and the
cheaper of one thread and all threads; conv2d, dynamic_conv2d, cost and the algebra ask it, and
nothing else anywhere chooses.  Adding an algorithm is a kernel in both backends and one entry here.
"""

from __future__ import annotations

import functools
import importlib
import math
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Callable, Optional

import numpy as np

from . import _costs, _threads, _wisdom

__all__ = [
    "ALGORITHMS",
    "Algorithm",
    "ConvPlan",
    "WORKSPACE_BYTES",
    "applicable",
    "kernels",
    "plan_conv2d",
    "resolve_backend",
]

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


def isa_runnable(module_name):
    """False for an ISA build (fastconv._ext._isa_<stem>_<level>) above this CPU's level: its
    module code is compiled for that level, so importing it on an older CPU stops the
    interpreter with SIGILL, not an ImportError."""
    leaf = module_name.rsplit(".", 1)[-1]
    if not leaf.startswith("_isa_"):
        return True
    tag = leaf.rsplit("_", 1)[-1]
    return tag in {"v4": ("v3", "v4"), "v3": ("v3",)}.get(cpu_level(), ())


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


def _optional(backend, name):
    """The kernel module, or None when it is not there (an extension that was not built)."""
    try:
        return _load(backend, name)
    except ImportError:
        return None


def cython_available(name="conv"):
    """True when the compiled Cython module `name` imports."""
    return _optional("cython", name) is not None


def resolve_backend(backend, name="conv"):
    """Map "auto" | "numba" | "cython" to a concrete backend name, validating the argument.

    auto prefers Cython: it has no JIT compile on first call (the cold-start cost users see) and
    measured at least as fast as Numba on every kernel both have (benchmarks/bench_im2col.py,
    bench_conv.py); Numba is used when the extension was not built.
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


def _address_of():
    """A function giving an ndarray's data address: the packed extension's data_address (50 ns),
    else ``__array_interface__`` (~1 us: it builds a dict), when the extension is not built."""
    global _address
    try:
        from fastconv._ext.packed import data_address as _address
    except ImportError:
        _address = _interface_address
    return _address


def _interface_address(a):
    return a.__array_interface__["data"][0]


_address = None


def empty_aligned(shape, dtype):
    """np.empty(shape, dtype) starting on a 64-byte boundary (NumPy's large buffers start 16
    bytes past a page).  Kernels then load and store whole cache lines: the packed kernel reads a
    1x1 layer's input planes in place (4-8% faster aligned, 4x64x56x56 -> 256), and the direct
    weight gradient's vector loads of its workspace never straddle two lines.  A conv2d result
    allocated this way is the next layer's aligned input."""
    n = math.prod(shape)
    item = dtype.itemsize if isinstance(dtype, np.dtype) else np.dtype(dtype).itemsize
    if n * item < _ALIGN_FROM:  # small: not worth the ~1 us the aligned view costs a call
        return np.empty(shape, dtype=dtype)
    buf = np.empty(n + 64 // item, dtype=dtype)
    off = (-(_address or _address_of())(buf) % 64) // item
    return buf[off : off + n].reshape(shape)


#: Bytes below which empty_aligned returns NumPy's own buffer: building the aligned view cost
#: 2 us (1 with data_address), a third of a (1,3,8,8) conv2d call's time.
_ALIGN_FROM = 1 << 16


# --------------------------------------------------------------------------------------------
# Scratch arena: a call's temporaries, kept per thread between calls
#
# A call's workspace (im2col tiles, packed panels, a transposed convolution's phase results) is
# freed when the call returns.  glibc hands buffers past its mmap threshold back to the OS, so the
# next call page-faults every one of them in again: on a DCGAN 256->128 4x4 stride-2 layer at 8x8
# (batch 16) the faults were 1.4 of a 5.6 ms call.  `scratch` keeps each named slot's buffer on
# its thread and hands out 64-byte-aligned views of it.  Rules: a slot's view is valid until the
# same slot is asked for again on that thread (so no site asks for a slot it already holds), and
# nothing returned to a caller ever lives in it.  Buffers above _SCRATCH_SLOT, or past
# _SCRATCH_TOTAL per thread, are fresh.  Small ones are kept too: a repeated call gets its last
# view back for a dict lookup (0.2 us), where a fresh small buffer and its view cost ~1.2 us (a
# third of the Python time of a small layer's call; 52 of them in a MobileNetV2 forward pass).

#: largest buffer one slot keeps
_SCRATCH_SLOT = 16 << 20
#: most bytes one thread's slots keep together
_SCRATCH_TOTAL = 64 << 20
_ARENA = threading.local()


class _Slots(dict):
    """One thread's scratch buffers by slot: a dict that free_scratch reaches weakly, hashed and
    compared by identity (two threads' empty dicts are two arenas)."""

    __hash__ = object.__hash__
    __eq__ = object.__eq__
    __ne__ = object.__ne__


_ARENAS = weakref.WeakSet()


def scratch(slot, shape, dtype):
    """An uninitialised, 64-byte-aligned array of `shape` and `dtype` in this thread's buffer for
    `slot` (a call site's name), valid until the next scratch(slot) on this thread."""
    slots = getattr(_ARENA, "slots", None)
    if slots is not None:
        # a repeated call asks for the view it had last time: hand that out again (same memory)
        got = slots.get(slot)
        if got is not None and got[2] == shape and got[3] is dtype:
            return got[4]
    asked = shape, dtype
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > _SCRATCH_SLOT:
        return empty_aligned(shape, dtype)
    if slots is None:
        slots = _ARENA.slots = _Slots()
        _ARENAS.add(slots)
    got = slots.get(slot)
    if got is None or got[0].nbytes < nbytes + 64:
        held = sum(v[0].nbytes for k, v in list(slots.items()) if k != slot)
        if held + nbytes + 64 > _SCRATCH_TOTAL:
            return empty_aligned(shape, dtype)
        slots.pop(slot, None)  # free the old one before the larger one is allocated
        buf = np.empty(nbytes + 64, np.uint8)
        # its first 64-byte boundary, found once
        got = (buf, -(_address or _address_of())(buf) % 64)
    buf, off = got[0], got[1]
    view = buf[off : off + nbytes].view(dtype).reshape(shape)
    # (buffer, offset, the arguments of this view, the view): the next call with the same
    # arguments gets the view back without the dtype, shape and slicing work (~1 us)
    slots[slot] = (buf, off, asked[0], asked[1], view)
    return view


def scratch_bytes():
    """Bytes the scratch slots of every thread hold."""
    return sum(v[0].nbytes for slots in list(_ARENAS) for v in list(slots.values()))


def free_scratch():
    """Release the scratch buffers of every thread (a view in use keeps its buffer until it
    goes; calls after this allocate again as they need)."""
    for slots in list(_ARENAS):
        slots.clear()


def kernels(backend, name="conv"):
    """The kernel module `name` of a concrete backend."""
    return _load(backend, name)


@dataclass(frozen=True)
class ConvPlan:
    """How one conv2d call runs."""

    algorithm: str  # a key of ALGORITHMS
    backend: str
    nthreads: int
    tile: int = 0  # output pixels per im2col tile (gemm); samples per chunk (fft)
    workspace: int = 0  # elements of workspace, all threads together
    forced: bool = False  # the caller named the algorithm: no non-finite fallback
    cost: float = 0.0  # the cost model's estimate, seconds

    def workspace_bytes(self, itemsize):
        return self.workspace * itemsize


@dataclass(frozen=True)
class Algorithm:
    """One way to run a convolution.

    applies(g, backend, per_sample) -> bool: preconditions (geometry, backend, dtype, CPU).
    workspace(g, backend, nthreads, nw, workspace_bytes) -> (elements, tile), or None when it
        cannot run within workspace_bytes.
    features(g) -> the terms of its cost model, seconds = coefficients . features (fastconv/_costs.py):
        (1 for the call, multiply-adds as its kernel executes them, elements of input and output
        moved, elements of weights prepared per call).
    run(plan, x4, w3, bias, has_bias, g, res4) -> True when its output holds a non-finite value
        (only reported by algorithms that are not exact on non-finite data), else None/False.
        With epilogue=True it takes conv2d's epilogue too, run(..., res4, (act, residual)),
        and applies it (the packed kernel inside its tasks, on outputs still in cache).
    exact_nonfinite: NaN and inf land where direct summation puts them.
    call_features(g, has_bias, fixed) -> the features of a call with a bias and with fixed
        weights (`keep_packed`), which the calibration grid does not run: the terms it costs
        (a separate bias pass, weight panels packed on every call) are the fitted ones.
    """

    name: str
    applies: Callable
    workspace: Callable
    features: Callable
    run: Callable
    exact_nonfinite: bool = True
    per_sample: bool = True  # runs per-sample weights (w3 of N weight sets) natively
    max_threads: int = 0  # most threads it runs on (0: any); see "pointwise"
    # run(..., res4, epilogue=(act, residual)) applies conv2d's epilogue itself (fused into its
    # tasks where it can, else by run_epilogue after)
    epilogue: bool = False
    # call_features(g, has_bias, fixed) -> features of one call: what the calibration grid
    # (no bias, fresh weights) does not see; None: features(g)
    call_features: Optional[Callable] = None
    # dominated(g, backend, fixed) -> True where another algorithm was measured faster, or within
    # a few percent, on every shape the condition covers (fixed: the weights are kept by
    # keep_packed): "auto" then never picks this one there (the
    # fitted rows cannot tell two kernels apart that close); forcing it by name still runs it
    dominated: Optional[Callable] = None


ALGORITHMS: "OrderedDict[str, Algorithm]" = OrderedDict()


def _register(alg):
    ALGORITHMS[alg.name] = alg
    return alg


def _ceil(a, b):
    return -(-a // b) * b


def _io_elems(g):
    return g.N * g.C * g.H * g.W + g.N * g.K * g.P


# --------------------------------------------------------------------------------------------
# packed: fastconv's register-blocked micro-kernel (8 output channels x 48 pixels), 1x1 included


def _packed_applies(g, be, per_sample):
    # a depthwise layer with one output channel per input channel fills one of the tile's 8
    # rows: the depthwise kernels run it (measured faster on 115 of 118 such grid points with
    # AVX2 and on all but one of 164 with AVX-512; benchmarks/results/calibration-*); with a
    # channel multiplier of 2 or more the packed tile is often faster and stays an option, unless
    # the 16-lane depthwise kernel runs it and the multiplier leaves most of the tile's 8 rows
    # idle (Kg < 8: packed 1.2-5x slower on 29 of 31 such AVX-512 grid points, Zen 5 and Xeon;
    # at best 0.79x, on a 3-channel layer)
    if g.Cg == 1 and g.groups > 1:
        if g.Kg == 1 or (g.Kg < 8 and _depthwise16_applies(g, be, per_sample)):
            return False
    mod = _optional(be, "packed")
    return mod is not None and not per_sample and bool(mod.packed_supported(g.dtype.char))


def _packed_workspace(g, be, nt, nw, limit):
    ws = int(_load(be, "packed").packed_workspace_size(g.as_array(), nt))
    return (ws, 0) if ws * g.dtype.itemsize <= limit else None


def _packed_klanes(g):
    """Whether the packed kernel runs its K-lanes tiles (64 output channels in the lanes, 4-7
    pixels broadcast) on g, and its pixels per tile: the header's fc_klanes/fc_kl_mp rule,
    mirrored so the cost counts the tiles that run (few pixels: late ResNet layers at batch 1)."""
    NP = g.N * g.P
    if NP > 392 or g.Kg < 64 or g.dtype != np.float32:
        return 0
    if g.is_pointwise and NP > 100:
        return 0
    mp = min(range(7, 3, -1), key=lambda m: (_ceil(NP, m), -m))
    if g.R * (-(-NP // mp)) * mp * g.groups > 4 << 20:
        return 0
    return mp


def _packed_call_features(g, has_bias, fixed):
    f = _packed_features(g)
    return f[:4] + (0.0,) + f[5:] if fixed else f  # kept panels: no weights packed per call


def _packed_features(g):
    # the micro-tile's idle lanes count: pixel-lane tiles round Kg up to 8 channels and pixels
    # to 48; K-lanes tiles round Kg up to 64 and the pixels to their 4-7 per tile
    # to 48; K-lanes tiles round Kg up to 64 and the pixels to their 4-7 per tile.  Each tile
    # has a fixed cost too (its loop, packing setup, stores), which dominates with many tiny
    # groups (packed on a depthwise layer)
    # Packing copies R rows of each 48-pixel stripe once per (group, stripe), whatever K is: the
    # cost of layers with few output channels (few m-blocks to spread it over).  Stride-1 rows
    # pack by whole vectors, other strides element by element on AVX2 (two terms).
    mp = _packed_klanes(g)
    if mp:
        tiles = g.groups * -(-g.Kg // 64) * -(-(g.N * g.P) // mp)
        return (1.0, 0.0, tiles * 64 * mp * g.R, _io_elems(g), g.K * g.R, tiles, 0.0, 0.0, 0.0)
    tiles = g.N * g.groups * -(-g.Kg // 8) * -(-g.P // 48)
    direct = g.is_pointwise and g.sh == g.sw == 1 and g.Ho == g.H and g.Wo == g.W
    packs = 0.0 if direct else g.groups * -(-(g.N * g.P) // 48) * 48.0 * g.R
    return (
        1.0,
        tiles * 8 * 48 * g.R,
        0.0,
        _io_elems(g),
        g.K * g.R,
        tiles,
        packs if g.sw == 1 else 0.0,
        packs if g.sw != 1 else 0.0,
        0.0 if direct else float(g.groups * g.R * g.N * g.Ho),  # packed row segments
    )


#: id(weight array) -> (weakref to it, {panel key: (packed panels, has a non-finite weight)})
_FIXED = {}


def keep_packed(w):
    """Mark `w` as fixed weights and return it: made read-only, so calls whose plan packs
    weight panels (the packed algorithm, every mode, on a backend that keeps them) pack them
    once and keep them while `w` lives, instead of on every call (a read of the weights and a
    write and read of their panels: ResNet-50's 100 MB per forward pass).  Costs the panels'
    memory, about the weights' own size.  `w` must own its data (a view could change through
    a writeable base): the network runner and `Conv2d` pass their own copies."""
    if not (isinstance(w, np.ndarray) and w.flags.owndata):
        raise ValueError("keep_packed needs an array that owns its data (pass a copy)")
    w.flags.writeable = False
    key = id(w)
    _FIXED[key] = (weakref.ref(w, lambda _, key=key: _FIXED.pop(key, None)), {})
    return w


def _fixed_base(w):
    """The array registered by keep_packed that w is (a view of), or None."""
    a = w
    while a is not None and id(a) not in _FIXED:
        a = a.base
    if a is None or _FIXED[id(a)][0]() is not a:
        return None
    return a


def is_fixed(w):
    """Whether `w` is (a view of) weights kept by keep_packed."""
    return bool(_FIXED) and _fixed_base(w) is not None


def _fixed_panels(mod, w4, g):
    """(panels, nonfinite) packed once for the fixed weights w4 is a view of, or None."""
    a = _fixed_base(w4)
    if a is None:
        return None
    memo = g.memo()
    shape = memo.get((mod, "panels"))
    if shape is None:
        geo = g.as_array()
        # the panels' size, and what tells two layouts apart (K-lanes panels have their own)
        shape = memo[(mod, "panels")] = (
            int(mod.packed_prepack_size(geo)),
            (g.K, g.Cg, g.kh, g.kw, g.groups, bool(mod.packed_klanes(geo))),
        )
    size, layout = shape
    if size == 0:
        return None
    store = _FIXED[id(a)][1]
    # where in `a` the weights start: 0 for a view of all of it (the usual call; reading the
    # address costs ~1 us), else the byte offset of the view's data
    at = 0
    if w4.nbytes != a.nbytes:
        at = w4.__array_interface__["data"][0] - a.__array_interface__["data"][0]
    key = (layout, at)
    got = store.get(key)
    if got is None:
        panels = np.empty(size, dtype=np.float32)
        got = store[key] = (panels, bool(mod.packed_prepack(w4, g.as_array(), panels)))
    return got


def packed_phase_panels(phases, wt, backend, nthreads):
    """The packed kernel's weight panels for every stride phase of a transposed convolution
    (grad._grad_input_into), packed in one pass from the flipped weight view `wt`, as a list
    (one flat array per phase, views of one buffer); None where that path does not apply
    (Numba, groups, float64, a phase on another algorithm or in K-lanes mode, a non-finite
    weight: the phases' weights are then gathered and each call packs its own)."""
    live = [ph for ph in phases if ph.geom is not None]
    if (
        backend != "cython"
        or not live
        or wt.dtype != np.float32
        or live[0].geom.groups != 1
        or any(ph.plan.algorithm != "packed" or ph.plan.backend != "cython" for ph in live)
    ):
        return None
    mod = _optional("cython", "packed")
    if mod is None or not hasattr(mod, "packed_prepack_phases"):
        return None
    geos = [ph.geom.as_array() for ph in live]
    if any(mod.packed_klanes(geo) or int(mod.packed_prepack_size(geo)) == 0 for geo in geos):
        return None
    C, Kg, kh, kw = wt.shape
    taps, start = [], [0]
    for ph in live:
        taps.extend(a * kw + b for a in ph.rows for b in ph.cols)
        start.append(len(taps))
    if len(taps) > 1024:
        return None
    mbn = -(-C // 8)
    sizes = [int(mod.packed_prepack_size(geo)) for geo in geos]
    if sizes != [8 * mbn * Kg * (start[p + 1] - start[p]) for p in range(len(live))]:
        return None  # not the layout this pass writes
    apack = scratch("phase_panels", sum(sizes), np.float32)
    nt = 1 if apack.size < (1 << 16) else int(nthreads)
    _threads.mark_pools_started()
    if mod.packed_prepack_phases(
        wt, np.asarray(taps, np.int64), np.asarray(start, np.int64), apack, nt
    ):
        return None
    return [apack[8 * mbn * Kg * start[p] : 8 * mbn * Kg * start[p + 1]] for p in range(len(live))]


#: a stand-in for the weights of a packed call whose panels are packed already and finite
#: (conv_packed then reads them only to pack panels or recompute a border: neither happens)
_NO_WEIGHTS = np.zeros((1, 1, 1, 1), dtype=np.float32)


def run_packed_panels(plan, x4, apack, bias, g, res4):
    """res4 = the packed convolution of x4 with weight panels `apack` (packed_phase_panels),
    bias (1, K) or None: the packed algorithm's call without packing weights."""
    ws = scratch("packed_ws", plan.workspace, g.dtype)
    mod = kernels(plan.backend, "packed")
    b = bias[0] if bias is not None else np.zeros(1, dtype=g.dtype)
    _threads.mark_pools_started()
    mod.conv_packed(
        x4, _NO_WEIGHTS, b, bias is not None, g.as_array(), res4, ws, plan.nthreads, apack, False
    )


def _fuses_epilogue(mod, g, geo, residual):
    """mod.packed_fuses_epilogue(geo, residual), asked once per geometry."""
    memo = g.memo()
    key = (mod, "fuses", residual)
    got = memo.get(key)
    if got is None:
        got = memo[key] = bool(mod.packed_fuses_epilogue(geo, residual))
    return got


def _packed_run(plan, x4, w3, bias, has_bias, g, res4, epilogue=(0, None)):
    ws = scratch("packed_ws", plan.workspace, g.dtype)
    w4 = w3[0].reshape(g.K, g.Cg, g.kh, g.kw)
    mod = kernels(plan.backend, "packed")
    geo = g.as_array()
    fixed = None
    if _FIXED and g.dtype == np.float32:
        fixed = _fixed_panels(mod, w4, g)  # None where the backend keeps no panels
    act, residual = epilogue
    if (act or residual is not None) and _fuses_epilogue(mod, g, geo, residual is not None):
        # each task applies the epilogue to the outputs it wrote, still in cache
        r = None if residual is None else residual.reshape(-1)
        apack, nonfinite = fixed if fixed is not None else (None, False)
        fused = mod.conv_packed(
            x4, w4, bias[0], has_bias, geo, res4, ws, plan.nthreads, apack, nonfinite, act, r
        )
        if not fused:
            run_epilogue(plan, res4, act, residual)
    elif fixed is None:
        mod.conv_packed(x4, w4, bias[0], has_bias, geo, res4, ws, plan.nthreads)
        run_epilogue(plan, res4, act, residual)
    else:
        mod.conv_packed(x4, w4, bias[0], has_bias, geo, res4, ws, plan.nthreads, *fixed)
        run_epilogue(plan, res4, act, residual)


_register(
    Algorithm(
        "packed",
        _packed_applies,
        _packed_workspace,
        _packed_features,
        _packed_run,
        per_sample=False,
        call_features=_packed_call_features,
        epilogue=True,
    )
)


# --------------------------------------------------------------------------------------------
# winograd: F(2x2, 3x3), 16 multiplications per 2x2 outputs instead of 36; dilated layers run as
# dh*dw undilated convolutions on phase sub-images (ConvGeometry.dilation_phases)


def _set_partitions(items):
    """Every partition of the list `items` into non-empty blocks (Bell(len) of them)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _set_partitions(rest):
        yield [[first]] + part
        for i in range(len(part)):
            yield part[:i] + [[first] + part[i]] + part[i + 1 :]


@functools.lru_cache(maxsize=256)
def _winograd_phase_classes(g):
    """A dilated g as classes of phase sub-images: ((geometry, phases), ...), geometry the
    undilated convolution of the class's phases stacked as one batch (phase-major), phases its
    (r, a, c, b, hx, wx, ho, wo): output phase (r, c) from input phase (a, b) (as in
    ConvGeometry.dilation_phases), of hx x wx inputs and ho x wo outputs.  One Winograd call a
    class.

    Phases of one top/left padding may share a class of their largest sizes: a smaller one is
    zero-extended (gather_phases) and its extra outputs dropped (scatter_phases).  The classes
    are the partition with the fewest tile slots the kernel computes (its blocks of 48 tiles, 32
    past 256 channels) plus a little for each call.  33x33 at dilation 4 (phases of 9 and 8 rows
    and columns): 9x9 + 9x8 + 8x9 as one class of seven 9x9, 8x8 as another, 336 slots, where
    one 36x36 frame took 432 and the four exact classes 384."""
    exact = {}
    for r, a, c, b, sub in g.dilation_phases():
        key = (sub.H, sub.W, sub.pt, sub.pb, sub.pl, sub.pr, sub.Ho, sub.Wo)
        exact.setdefault(key, (sub, []))[1].append((r, a, c, b, sub.H, sub.W, sub.Ho, sub.Wo))
    exact = list(exact.values())
    tn = 48 if g.Cg <= 256 else 32

    def merged(part):
        subs = [exact[i][0] for i in part]
        phases = [ph for i in part for ph in exact[i][1]]
        H, W = max(t.H for t in subs), max(t.W for t in subs)
        Ho, Wo = max(t.Ho for t in subs), max(t.Wo for t in subs)
        s0 = subs[0]
        geo = replace(
            s0,
            N=g.N * len(phases),
            H=H,
            W=W,
            pb=max(0, Ho + g.kh - 1 - s0.pt - H),
            pr=max(0, Wo + g.kw - 1 - s0.pl - W),
            Ho=Ho,
            Wo=Wo,
        )
        return geo, tuple(phases)

    def cost(classes):
        return sum(
            _ceil(st.N * ((st.Ho + 1) // 2) * ((st.Wo + 1) // 2), tn) + 4 for st, _ in classes
        )

    idx = list(range(len(exact)))
    if len(exact) <= 5:
        candidates = _set_partitions(idx)
    else:  # too many to try: exact, or one class a top/left padding
        pads = {}
        for i in idx:
            pads.setdefault((exact[i][0].pt, exact[i][0].pl), []).append(i)
        candidates = [[[i] for i in idx], list(pads.values())]
    best = None
    for part in candidates:
        if any(len({(exact[i][0].pt, exact[i][0].pl) for i in blk}) > 1 for blk in part):
            continue
        classes = tuple(merged(blk) for blk in part)
        c = cost(classes)
        if best is None or c < best[0]:
            best = (c, classes)
    return best[1]


def _winograd_layout(g):
    """(stacked, classes): what the Winograd run of g holds.  Undilated: (None, None).  Dilated
    with alike phases (H, W, Ho, Wo and the top/left padding multiples of the dilation): the
    phases as one batch, split and merged by phase_split/phase_merge, (stacked geometry, None).
    Else (None, _winograd_phase_classes(g)), gathered and scattered by gather/scatter_phases."""
    if g.dh == g.dw == 1:
        return None, None
    st = g.stacked_phases()
    if st is not None:
        return st, None
    return None, _winograd_phase_classes(g)


def _lanes16(n):
    return _ceil(n, 16)


#: Run a dilated layer's phase classes side by side, one thread each, when the busiest thread's
#: share is at most this much above an even split: one Winograd call on few tile blocks gains
#: 1.5-1.65x from a second thread (1x256 channels, 7x9x9 and 9x8x8 phases), two calls of one
#: thread each nearly 2x.
WINOGRAD_CLASS_SIDE = 1.25


def _winograd_class_threads(g, classes, nt, nw, backend):
    """The thread each class runs on when the classes run side by side, one thread each
    (conv_winograd_classes), or None: one class at a time on nt threads."""
    if backend != "cython" or nt < 2 or len(classes) < 2 or nw != 1:
        return None
    tn = 48 if g.Cg <= 256 else 32
    cost = [_ceil(st.N * ((st.Ho + 1) // 2) * ((st.Wo + 1) // 2), tn) + 4 for st, _ in classes]
    loads, owner = [0] * nt, [0] * len(classes)
    for i in sorted(range(len(cost)), key=lambda i: -cost[i]):  # longest first, least loaded
        t = loads.index(min(loads))
        loads[t] += cost[i]
        owner[i] = t
    if max(loads) > WINOGRAD_CLASS_SIDE * sum(cost) / nt:
        return None
    return owner


def _winograd_class_layout(g, classes, nw, nt, mod):
    """Element offsets in the workspace of a phase-class run: (x phases, y phases, U, kernel),
    each part starting on 16 elements, and the total."""
    nx = sum(_lanes16(st.N * st.C * st.H * st.W) for st, _ in classes)
    ny = sum(_lanes16(st.N * st.K * st.Ho * st.Wo) for st, _ in classes)
    nu = _lanes16(int(mod.winograd_prepack_size(g.as_array()))) if nw == 1 else 0
    ok = nx + ny + nu
    nk = max(
        int(mod.winograd_workspace_size(st.as_array(), nw * len(ph) if nw > 1 else 1, nt))
        for st, ph in classes
    )
    if nw == 1 and len(classes) > 1:  # side by side (_winograd_class_threads)
        geos = np.stack([st.as_array() for st, _ in classes])
        nk = max(nk, int(mod.winograd_classes_workspace_size(geos, nt)))
    return (0, nx, nx + ny, ok), ok + nk


def _winograd_applies(g, be, per_sample):
    # limits of the kernel (3x3 stride 1, dilation up to 4 phase by phase) and of the transform:
    # each of the 16 transform points is a GEMM over the input channels, so fewer than 16 leave
    # the micro-kernel mostly loading and storing
    if not (g.kh == g.kw == 3 and g.sh == g.sw == 1 and g.dh <= 4 and g.dw <= 4):
        return False
    if not (16 <= g.Cg <= 1024 and g.Kg >= 8):
        return False
    # dilated: every phase sub-image at least 8x8 outputs (4x4 tiles).  On smaller phases the
    # split and merge and the per-block work outweigh the saved multiplications: measured
    # 1.4-8.9x slower than the best other entry on 2-7 outputs per phase side, 0.6-1.2x from 8 up
    # (benchmarks/results/calibration-cython-v3-amd/v4-intel-float32.csv: 7x7 and 13x13 at dilation 2-4
    # against 33x33, 56x56, 224x224)
    if (g.dh > 1 or g.dw > 1) and (g.Ho // g.dh < 8 or g.Wo // g.dw < 8):
        return False
    mod = _optional(be, "winograd")
    return mod is not None and bool(mod.winograd_supported(g.dtype.char))


def _winograd_workspace(g, be, nt, nw, limit):
    """Elements: the kernel's own workspace, plus the phases' copies of input and output (and
    the shared weight transform of a phase-class run)."""
    mod = _load(be, "winograd")
    st, classes = _winograd_layout(g)
    if classes is not None:
        ws = _winograd_class_layout(g, classes, nw, nt, mod)[1]
    elif st is None:
        ws = int(mod.winograd_workspace_size(g.as_array(), nw, nt))
    else:
        nws = nw * g.dh * g.dw if nw > 1 else 1
        ws = int(mod.winograd_workspace_size(st.as_array(), nws, nt))
        ws += st.N * (st.C * st.H * st.W + st.K * st.Ho * st.Wo)
    return (ws, 0) if ws * g.dtype.itemsize <= limit else None


def _winograd_features(g):
    st, classes = _winograd_layout(g)
    parts = [st if st is not None else g] if classes is None else [c for c, _ in classes]
    # tiles in vectors of 16, per kernel call
    tiles = sum(_ceil(p.N * ((p.Ho + 1) // 2) * ((p.Wo + 1) // 2), 16) for p in parts)
    gemm = 16 * tiles * g.groups * _ceil(g.Kg, 8) * g.Cg  # multiply-adds of the 16 GEMMs
    moved = 16 * tiles * (g.C + g.K) + _io_elems(g)
    if g.dh > 1 or g.dw > 1:  # the phase split and merge copy input and output again
        moved += 2 * _io_elems(g)
    return (float(len(parts)), gemm, moved, 16 * g.K * g.Cg)


#: Largest Winograd transform (U, 16 x K x C/groups elements) kept for fixed weights: one that
#: fits in L2.  A larger one is read back from memory on every call of a network's forward pass
#: (ResNet-50 at batch 1: its 256->256 3x3 layers at 14x14, U 4 MB, took 2.0 ms a call in the
#: network with U kept against 0.83 ms in a loop over the one layer; the packed kernel 1.27), so
#: it is transformed per call and the planner costs it so.
WINOGRAD_KEEP_BYTES = 1 << 20


def _winograd_keeps(g):
    return 16 * g.K * g.Cg * g.dtype.itemsize <= WINOGRAD_KEEP_BYTES


def _winograd_call_features(g, has_bias, fixed):
    f = _winograd_features(g)
    # kept weights: no transform per call
    return f[:3] + (0.0,) if fixed and _winograd_keeps(g) else f


def _fixed_transform(wk, w3, g, nt):
    """The Winograd transform (U) of the fixed shared weights w3 is a view of, made once and kept
    beside them, as keep_packed keeps packed panels; None where the backend keeps none.  It
    depends on the weights alone (K, C/groups, groups), so dilated layers' phases share it."""
    if w3.shape[0] != 1 or not _winograd_keeps(g):
        return None
    a = _fixed_base(w3)
    if a is None:
        return None
    geo = g.as_array()
    size = int(wk.winograd_prepack_size(geo))
    if size == 0:
        return None
    store = _FIXED[id(a)][1]
    key = ("winograd", g.K, g.Cg, g.groups, w3.__array_interface__["data"][0], g.dtype.str)
    u = store.get(key)
    if u is None:
        u = store[key] = np.empty(size, dtype=g.dtype)
        wk.winograd_prepack(w3, geo, u, nt)
    return u


def winograd_run(plan, x4, w3, bias, has_bias, g, res4):
    """Run g by Winograd; True when the output holds a non-finite value."""
    wk = kernels(plan.backend, "winograd")
    ws = scratch("winograd_ws", plan.workspace, g.dtype)
    nt = plan.nthreads
    u = _fixed_transform(wk, w3, g, nt) if _FIXED else None
    kept = {} if u is None else {"upre": u}  # the Numba twin takes no upre (its prepack size is 0)
    st, classes = _winograd_layout(g)
    if classes is not None:
        return _winograd_classes_run(plan, wk, x4, w3, bias, has_bias, g, res4, ws, u, classes)
    if st is None:
        # the kernel reports a non-finite output, gathered while the outputs are in registers
        return bool(wk.conv_winograd(x4, w3, bias, has_bias, g.as_array(), res4, ws, nt, **kept))
    mod = kernels(plan.backend)
    # alike phases: split into one batch, one Winograd call, merge (the conv kernels copy)
    n_in, n_out = st.N * st.C * st.H * st.W, st.N * st.K * st.Ho * st.Wo
    xs = ws[:n_in].reshape(st.N, st.C, st.H, st.W)
    mod.phase_split(x4, xs, g.dh, g.dw, nt)
    ys = ws[n_in : n_in + n_out].reshape(st.N, st.K, st.Ho, st.Wo)
    reps = g.dh * g.dw
    w3s = w3 if w3.shape[0] == 1 else np.tile(w3, (reps, 1, 1))
    bs = bias if bias.shape[0] == 1 else np.tile(bias, (reps, 1))
    kept = kept if w3s is w3 else {}
    bad = wk.conv_winograd(xs, w3s, bs, has_bias, st.as_array(), ys, ws[n_in + n_out :], nt, **kept)
    mod.phase_merge(ys, res4, g.dh, g.dw, nt)
    return bool(bad)


def _winograd_classes_run(plan, wk, x4, w3, bias, has_bias, g, res4, ws, u, classes):
    """A dilated g whose phases are not alike, class by class (_winograd_phase_classes): one
    gather of every phase's sub-image, one Winograd call a class (the weights transformed once
    for all of them; the classes side by side on one thread each where that balances,
    _winograd_class_threads), one scatter of the phases' outputs into place."""
    nt = plan.nthreads
    nw = w3.shape[0]
    (ox, oy, ou, ok), _ = _winograd_class_layout(g, classes, nw, nt, wk)
    if u is None and nw == 1 and ok > ou:  # transform the shared weights once, into ws
        u = ws[ou:ok]
        wk.winograd_prepack(w3, g.as_array(), u, nt)
    kept = {} if u is None or nw > 1 else {"upre": u}
    pin, pout, calls = [], [], []
    x_off, y_off = ox, oy
    for st, phases in classes:
        cnt = len(phases)
        sub_x, sub_y = st.N // cnt * st.C * st.H * st.W, st.N // cnt * st.K * st.Ho * st.Wo
        calls.append((st, cnt, x_off, y_off))
        for i, (r, a, c, b, hx, wx, ho, wo) in enumerate(phases):  # sample i*N + n of the class
            pin.append((x_off + i * sub_x, st.H, st.W, a, b, hx, wx))
            pout.append((y_off - oy + i * sub_y, st.Ho, st.Wo, r, c, ho, wo))
        x_off += _lanes16(cnt * sub_x)
        y_off += _lanes16(cnt * sub_y)
    grad_kern = kernels(plan.backend if cython_available("grad") else "numba", "grad")
    grad_kern.gather_phases(x4, np.asarray(pin, np.int64), g.dh, g.dw, ws[:ok], nt)
    owner = _winograd_class_threads(g, classes, nt, nw, plan.backend) if kept else None
    if owner is not None:  # side by side, one thread each, in one parallel region
        geos = np.stack([st.as_array() for st, _, _, _ in calls])
        offs = np.array([(xo, yo - oy, t) for (_, _, xo, yo), t in zip(calls, owner, strict=True)])
        bad = bool(
            wk.conv_winograd_classes(
                ws[:oy], w3, bias, has_bias, geos, offs, ws[oy:ou], ws[ok:], nt, u
            )
        )
    else:
        bad = False
        for st, cnt, xo, yo in calls:
            xs = ws[xo : xo + st.N * st.C * st.H * st.W].reshape(st.N, st.C, st.H, st.W)
            ys = ws[yo : yo + st.N * st.K * st.Ho * st.Wo].reshape(st.N, st.K, st.Ho, st.Wo)
            w3s = w3 if nw == 1 else np.tile(w3, (cnt, 1, 1))
            bs = bias if bias.shape[0] == 1 else np.tile(bias, (cnt, 1))
            bad |= bool(
                wk.conv_winograd(xs, w3s, bs, has_bias, st.as_array(), ys, ws[ok:], nt, **kept)
            )
    grad_kern.scatter_phases(ws[oy:ou], np.asarray(pout, np.int64), g.dh, g.dw, res4, nt)
    return bad


_register(
    Algorithm(
        "winograd",
        _winograd_applies,
        _winograd_workspace,
        _winograd_features,
        winograd_run,
        exact_nonfinite=False,
        call_features=_winograd_call_features,
    )
)


# --------------------------------------------------------------------------------------------
# direct kernels: depthwise (one input plane per output plane) and small groups (ResNeXt)


def _depthwise_applies(g, be, per_sample):
    return g.Cg == 1 and g.groups > 1


def _depthwise_workspace(g, be, nt, nw, limit):
    return nt * int(kernels(be).depthwise_planes_workspace(g.as_array())), 0


def _depthwise_features(g):
    # float32 3x3 / 5x5 planes of at least 4 x 8 at stride 1 or 2 with AVX-512 run in blocks of
    # 4 rows x 32 (16) columns straight from the input (the last term: their vector FMAs); other
    # stride-1 planes of at least 2 x 16 in register blocks of 2 rows x 32 (16) columns over a
    # zero-padded copy, the last block overlapping the previous one; the rest runs a scalar
    # loop at a different rate (2 x 16 blocks hold too few accumulators to hide the FMA
    # latency: their own rate)
    taps = g.N * g.K * g.kh * g.kw
    if _depthwise_one(g):  # one pass over the input and output planes
        return (1.0, 0.0, 0.0, 0.0, _io_elems(g), 0.0, 0.0, 0.0)
    if _depthwise_plane_flat(g):
        # planes under 16 wide as flat runs of 16 pixels: each vector's taps are one masked load
        # and one FMA (the last term; no load is shared between output rows as in the row
        # blocks), stride 2 reading each input plane once more for its polyphase split
        split = g.N * g.K * g.H * g.W if g.sh == 2 else 0
        vecs = taps * _ceil(g.Ho * g.Wo, 16)
        return (1.0, 0.0, 0.0, 0.0, _io_elems(g) + split, 0.0, 0.0, float(vecs))
    if _depthwise_plane_fast(g):
        bw = 32 if g.Wo >= 32 and g.sw == 1 else 16  # stride 2: blocks of 16 columns
        fmas = taps * -(-g.Ho // 4) * -(-g.Wo // bw) * 4 * (bw // 16)
        return (1.0, 0.0, 0.0, 0.0, _io_elems(g), float(fmas), 0.0, 0.0)
    if g.sh == g.sw == 1 and g.Ho >= 2 and g.Wo >= 16:
        bw = 32 if g.Wo >= 32 else 16
        blocked = taps * _ceil(g.Ho, 2) * _ceil(g.Wo, bw)
        # each output plane first copies its input plane into the zero-padded buffer: a channel
        # multiplier m copies the input m times (1x1 layers with m = 2 spend their time there)
        padded = g.N * g.K * (g.H + g.pt + g.pb) * (g.W + g.pl + g.pr)
        return (
            1.0,
            blocked if bw == 32 else 0.0,
            blocked if bw == 16 else 0.0,
            0.0,
            _io_elems(g) + padded,
            0.0,
            0.0,
            0.0,
        )
    # the scalar loop sets up each output plane on its own (a 1x1 layer with a channel
    # multiplier on 7x7 planes spent 6x its estimate there): the 7th term counts planes
    return (1.0, 0.0, 0.0, taps * g.P, _io_elems(g), 0.0, float(g.N * g.K), 0.0)


def _depthwise_one(g):
    """Whether the plane kernel runs g as its 1x1 one-pass branch (every tap in the image)."""
    return (
        g.kh == g.kw == 1
        and g.pt == g.pl == 0
        and (g.Ho - 1) * g.sh < g.H
        and (g.Wo - 1) * g.sw < g.W
    )


@functools.lru_cache(maxsize=256)
def _plane_fast(key, dtype_char):
    return bool(_load("cython", "conv").depthwise_plane_fast(np.array(key, np.int64), dtype_char))


def _depthwise_plane_fast(g):
    """Whether the Cython plane kernel runs g in its AVX-512 blocks (the cost terms follow the
    code that runs; the Numba twin's rows share the table's other terms)."""
    if g.dtype != np.float32 or not cython_available("conv"):
        return False
    return _plane_fast(tuple(int(v) for v in g.as_array()), g.dtype.char)


@functools.lru_cache(maxsize=256)
def _plane_flat(key, dtype_char):
    return bool(_load("cython", "conv").depthwise_plane_flat(np.array(key, np.int64), dtype_char))


def _depthwise_plane_flat(g):
    """Whether the Cython plane kernel runs g as flat runs of 16 pixels (planes under 16 wide)."""
    if g.dtype != np.float32 or not cython_available("conv") or _depthwise_one(g):
        return False
    return _plane_flat(tuple(int(v) for v in g.as_array()), g.dtype.char)


def _depthwise16_features(g):
    # 16 channels per vector: the channel count rounds up to 16; each block is transposed into a
    # pixel-major buffer and back
    taps16 = g.N * _ceil(g.K, 16) * g.kh * g.kw * g.P
    # each task (sample, 16 output channels) first fills a zero-padded pixel-major buffer of the
    # input rows its outputs read: Hp x Wp x 16, larger than the outputs by the stride squared
    # (a strided 1x1 layer with a channel multiplier spends its time there, 3x the plane kernel)
    hp = (g.Ho - 1) * g.sh + g.dh * (g.kh - 1) + 1
    wp = (g.Wo - 1) * g.sw + g.dw * (g.kw - 1) + 1
    # rows of 16 or more outputs run in blocks of 16, the last overlapping the one before: the
    # last term counts the recomputed outputs' taps (a 17-wide row computes 32)
    cols = g.Wo if g.Wo < 16 else _ceil(g.Wo, 16)
    extra = g.N * _ceil(g.K, 16) * g.kh * g.kw * g.Ho * (cols - g.Wo)
    return (1.0, taps16, _io_elems(g), 0.0, g.N * _ceil(g.K, 16) * hp * wp, extra)


def _kernel_act(epilogue, g):
    """The activation a depthwise kernel applies on its store (relu 1, relu6 2, silu 3), or 0:
    the epilogue then runs as the pass after (a residual).  SiLU in the store, 5x5 included,
    since it is vector code (fc_silu16): 4-12% faster than the pass after on EfficientNet-B0's
    5x5 and stride-2 layers, 1 thread (the scalar SiLU made 5x5 planes 7-13% slower there)."""
    act, residual = epilogue
    if residual is not None:
        return 0
    return act


def _depthwise_run(plan, x4, w3, bias, has_bias, g, res4, epilogue=(0, None)):
    mod = kernels(plan.backend)
    geo = g.as_array()
    memo = g.memo()
    n = memo.get((mod, "depthwise_ws"))
    if n is None:
        n = memo[(mod, "depthwise_ws")] = int(mod.depthwise_planes_workspace(geo))
    ws = scratch("depthwise_ws", (plan.nthreads, n), g.dtype)
    act = _kernel_act(epilogue, g)
    mod.conv_depthwise_planes(x4, w3, bias, has_bias, geo, res4, ws, act, plan.nthreads)
    if not act:
        run_epilogue(plan, res4, *epilogue)


_register(
    Algorithm(
        "depthwise",
        _depthwise_applies,
        _depthwise_workspace,
        _depthwise_features,
        _depthwise_run,
        epilogue=True,
    )
)

#: Largest per-thread buffer (elements) of the 16-channels-in-lanes depthwise kernel: its 16
#: pixel-major zero-padded planes must stay in L2 (planes past about 250 x 250 do not).
DEPTHWISE16_MAX_BUFFER = 1 << 20


def _depthwise16_applies(g, be, per_sample):
    # 1x1 layers: the plane kernel's one-pass branch ran them 3-5x faster (channel multiplier 2,
    # stride 1 and 2, 7-224 pixel planes)
    if not (g.Cg == 1 and g.groups > 1) or g.kh * g.kw == 1:
        return False
    mod = kernels(be)
    return (
        bool(mod.depthwise16_supported(g.dtype.char))
        and int(mod.depthwise16_workspace(g.as_array())) <= DEPTHWISE16_MAX_BUFFER
    )


def _depthwise16_workspace(g, be, nt, nw, limit):
    return nt * int(kernels(be).depthwise16_workspace(g.as_array())), 0


def _depthwise16_run(plan, x4, w3, bias, has_bias, g, res4, epilogue=(0, None)):
    mod = kernels(plan.backend)
    geo = g.as_array()
    ws = scratch("depthwise16_ws", (plan.nthreads, mod.depthwise16_workspace(geo)), g.dtype)
    act = _kernel_act(epilogue, g)
    mod.conv_depthwise16(x4, w3, bias, has_bias, geo, res4, ws, act, plan.nthreads)
    if not act:
        run_epilogue(plan, res4, *epilogue)


def _depthwise16_dominated(g, be, fixed):
    """Planes the depthwise kernel runs flat (under 16 wide).  Flat was faster, or at most 5%
    slower, on all 308 float32 layers of a sweep (32-1152 channels, 4-29 pixel planes, 3x3 and
    5x5, stride 1 and 2, batch 1 and 8; 1 thread, median of 15 interleaved rounds): median
    flat/depthwise16 0.83, 0.74 at stride 1.  The 2-thread sweep agreed wherever a re-measure
    was steady.  The fitted depthwise16 row underestimated it on strided layers (0.042 ms
    predicted, 0.06 measured on 576x14x14 stride 2) and the planner sent 88 of the 308 there,
    MobileNetV2's and EfficientNet-B0's strided small-plane layers among them, up to 1.45x
    slower."""
    return be == "cython" and _depthwise_plane_flat(g)


# 16 channels in the AVX-512 lanes: wins where rows are short or strided (the plane kernel's
# 32-column register blocks run mostly empty there), measured in the commit that added it;
# not where the plane kernel runs flat runs of pixels (_depthwise16_dominated)
_register(
    Algorithm(
        "depthwise16",
        _depthwise16_applies,
        _depthwise16_workspace,
        _depthwise16_features,
        _depthwise16_run,
        epilogue=True,
        dominated=_depthwise16_dominated,
    )
)


def _grouped_applies(g, be, per_sample):
    """Direct grouped kernel: stride 1, a few channels per group, whole blocks of 8 outputs; only
    the AVX-512 Cython kernel (the Numba twin is a reference-grade loop)."""
    if not (g.groups > 1 and g.Cg <= 16 and g.Kg % 8 == 0 and g.sh == g.sw == 1):
        return False
    return be == "cython" and bool(kernels(be).grouped_supported(g.dtype.char))


def _grouped_workspace(g, be, nt, nw, limit):
    return nt * int(kernels(be).grouped_workspace(g.as_array())), 0


def _grouped_features(g):
    # the kernel computes whole virtual rows of the padded width (_grouped_gap in conv.pyx) in
    # blocks of 48: the last term is the multiply-adds it executes beyond the outputs' own
    # (dilated 4x4 taps with padding 6 on 8x8 planes: 1.75x, a 2.2x misestimate before it)
    pr = g.Wo + g.dw * (g.kw - 1) - g.pl - g.W
    wp = max(g.pl, pr, g.Wo - g.W) + g.W
    executed = g.N * g.K * g.R * _ceil(g.Ho * wp, 48)
    return (1.0, g.N * g.K * g.P * g.R, _io_elems(g), g.K * g.R, executed - g.N * g.K * g.P * g.R)


def pack_grouped_weights(w3, g):
    """(Nw, K, Cg*kh*kw) -> (Nw, K/8, Cg*kh*kw, 8): each block of 8 output channels tap-major, the
    layout conv_grouped broadcasts its weights from."""
    Nw = w3.shape[0]
    return np.ascontiguousarray(w3.reshape(Nw, g.K // 8, 8, g.R).transpose(0, 1, 3, 2))


def _grouped_run(plan, x4, w3, bias, has_bias, g, res4):
    mod = kernels(plan.backend)
    geo = g.as_array()
    ws = scratch("grouped_ws", (plan.nthreads, mod.grouped_workspace(geo)), g.dtype)
    mod.conv_grouped(x4, pack_grouped_weights(w3, g), bias, has_bias, geo, res4, ws, plan.nthreads)


_register(
    Algorithm("grouped", _grouped_applies, _grouped_workspace, _grouped_features, _grouped_run)
)


# --------------------------------------------------------------------------------------------
# BLAS paths: 1x1 stride 1 straight on the input, and tiled im2col + one GEMM per tile


def _pointwise_applies(g, be, per_sample):
    return g.is_pointwise and g.groups == 1


def _pointwise_workspace(g, be, nt, nw, limit):
    return 0, 0


def _pointwise_features(g):
    return (1.0, g.N * g.K * g.P * g.C, _io_elems(g), g.K * g.C)


def _pointwise_call_features(g, has_bias, fixed):
    f = _pointwise_features(g)
    # the bias is a second pass over the output (read and write), at the rate of its moves
    return f[:2] + (f[2] + 2.0 * g.N * g.K * g.P,) + f[3:] if has_bias else f


def _pointwise_dominated(g, be, fixed):
    """Weights kept by keep_packed, on the backend that keeps their panels, with more than 64
    input and output channels: the packed kernel then reads panels packed once, where BLAS packs
    the weights again on every call.  A sweep with kept weights (64-2048 channels each way,
    7x7-28x28 planes, batch 1 and 8: 136 float32 layers; 1 thread, median of 9 interleaved
    rounds): packed was faster on all 82 this covers (packed/pointwise at most 0.98, median
    0.90; 0.78-0.96 on the 20 the fitted rows sent to pointwise), and slower on 10 of the 54
    others, all with 64 channels in or out on 7x7 or 14x14 planes (up to 1.24x, on calls of
    25-100 us).  Inside a network the gap widens, the weights being cold there:
    MobileNetV2's 576->160 1x1 on 7x7 took 240 us as pointwise and 139 as packed in its forward
    pass (1 thread)."""
    return (
        fixed
        and be == "cython"
        and g.dtype == np.float32
        and g.K > 64
        and g.C > 64
        and _packed_applies(g, be, False)
    )


def _pointwise_run(plan, x4, w3, bias, has_bias, g, res4):
    # NaN/inf are data here: they propagate as in any sum, without a floating-point warning
    with _threads.blas_single(), np.errstate(invalid="ignore", over="ignore"):
        np.matmul(w3, x4.reshape(g.N, g.C, g.H * g.W), out=res4.reshape(g.N, g.K, g.P))
        if has_bias:
            res4 += bias.reshape(bias.shape[0], g.K, 1, 1)


# One BLAS thread only.  Every other entry runs its threads in fastconv's own OpenMP/Numba pool;
# a multi-threaded BLAS call would wake OpenBLAS's pool too, whose workers spin for up to 2^28
# cycles (~0.1 s) after each call, and the two pools then take the cores from each other at every
# hand-over (measured, Zen 5, 2 threads: a depthwise 3x3 then a 1x1 conv on 96x56x56 took
# 8.0 ms against 0.2 ms for the two apart; MobileNetV2 at batch 1 took 166 ms against 14.5 ms on
# one thread).  With one pool, a 1x1 layer that gains from two threads runs on "packed" or "gemm".
_register(
    Algorithm(
        "pointwise",
        _pointwise_applies,
        _pointwise_workspace,
        _pointwise_features,
        _pointwise_run,
        max_threads=1,
        call_features=_pointwise_call_features,
        dominated=_pointwise_dominated,
    )
)


def _gemm_applies(g, be, per_sample):
    return True


def gemm_tile(g, be, nt, limit=WORKSPACE_BYTES):
    """Output pixels per im2col tile: the tile in L2, at least two tiles per thread at small
    batch when the image allows, within the workspace bound."""
    per_pixel = kernels(be).conv_gemm_workspace(g.R, g.Kg, 1) * g.dtype.itemsize
    tile = max(1, TILE_BYTES // per_pixel)
    tiles_per_image = max(1, -(-2 * nt // max(1, g.N * g.groups)))
    tile = min(tile, -(-g.P // tiles_per_image))
    tile = min(tile, max(1, limit // (per_pixel * nt)), g.P)
    return max(1, tile)


def _gemm_workspace(g, be, nt, nw, limit):
    tile = gemm_tile(g, be, nt, limit)
    return int(kernels(be).conv_gemm_workspace(g.R, g.Kg, tile)) * nt, tile


def _gemm_features(g):
    # one BLAS call per (sample, group) at least: its fixed cost dominates depthwise and
    # small-plane layers
    return (
        1.0,
        g.N * g.K * g.P * g.R,
        g.N * g.groups * g.R * g.P + _io_elems(g),
        g.K * g.R,
        float(g.N * g.groups),
        float(g.N * g.groups * g.R * g.Ho),  # im2col row segments (short rows: small planes)
        # a strided im2col gathers every other element: its own rate (48->3 7x7 stride 2 on
        # 112x112 ran 2.7x the estimate without it, and gemm was chosen over a 4x faster packed)
        float(g.N * g.groups * g.R * g.P) if g.sw > 1 else 0.0,
    )


def _gemm_run(plan, x4, w3, bias, has_bias, g, res4):
    nt = plan.nthreads
    ws = scratch("gemm_ws", (nt, plan.workspace // nt), g.dtype)
    with _threads.blas_single():
        kernels(plan.backend).conv_gemm(
            x4, w3, bias, has_bias, g.as_array(), res4.reshape(g.N, g.K, g.P), ws, plan.tile, nt
        )


_register(Algorithm("gemm", _gemm_applies, _gemm_workspace, _gemm_features, _gemm_run))


# --------------------------------------------------------------------------------------------
# fft: large kernels, channels summed per frequency (fastconv._fft)


def _fft_applies(g, be, per_sample):
    # strides waste the full-resolution output; many groups make many tiny transforms
    return not per_sample and g.kh * g.kw >= 9 and g.groups <= 4


def _fft_workspace(g, be, nt, nw, limit):
    from ._fft import fft_chunk

    chunk = fft_chunk(g, limit)
    return (0, chunk) if chunk else None


def _fft_features(g):
    from ._fft import fft_len

    fh, fw = fft_len(g.H + g.pt + g.pb), fft_len(g.W + g.pl + g.pr)
    real = fh * fw
    transforms = g.N * g.C + g.N * g.K + g.K * g.Cg
    fft = transforms * real * max(1.0, math.log2(real))
    cmm = 4.0 * g.N * g.groups * g.Cg * g.Kg * fh * (fw // 2 + 1)
    return (1.0, fft + cmm, transforms * real, g.K * g.Cg * real)


def _fft_run(plan, x4, w3, bias, has_bias, g, res4):
    from ._fft import conv2d_fft

    if not plan.forced and (_nonfinite(x4) or _nonfinite(w3)):
        return True  # every output would be NaN: leave the call to an exact entry at once
    conv2d_fft(x4, w3[0], bias[0] if has_bias else None, g, res4, plan.nthreads, plan.tile)
    return _nonfinite(res4)


_register(
    Algorithm(
        "fft",
        _fft_applies,
        _fft_workspace,
        _fft_features,
        _fft_run,
        exact_nonfinite=False,
        per_sample=False,
    )
)


# --------------------------------------------------------------------------------------------
# choosing


def _nonfinite(a):
    """True when `a` holds a NaN or an inf (min and max propagate NaN; no temporary array)."""
    if a.size == 0:
        return False
    r = a.reshape(-1)
    return not (math.isfinite(r.min()) and math.isfinite(r.max()))


_COST_LEVEL = []  # cost_level(), worked out once
_CPU_VENDOR = []  # cpu_vendor(), read once
_VENDORS = ("amd", "intel")


def cost_level():
    """The ISA level whose measured costs the planner reads: "v4", "v3" or "baseline".

    The kernels differ by level (AVX-512 tiles, AVX2 tiles, portable C), and so do their costs:
    fastconv/_costs.py keeps one table per level and CPU vendor that calibrate.py measured."""
    if not _COST_LEVEL:
        _COST_LEVEL.append(cpu_level() or "baseline")
    return _COST_LEVEL[0]


def cpu_vendor():
    """ "amd", "intel" or "" (unknown), from /proc/cpuinfo's vendor_id.

    Same ISA level, different costs: an AMD core with AVX-512 runs OpenBLAS's AVX2 (Haswell)
    kernels, an Intel one its AVX-512 (SkylakeX) kernels, so the balance between im2col + BLAS
    and fastconv's own AVX-512 tiles differs by vendor."""
    if not _CPU_VENDOR:
        vendor = ""
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("vendor_id"):
                        name = line.split(":", 1)[1].strip()
                        vendor = {"AuthenticAMD": "amd", "GenuineIntel": "intel"}.get(name, "")
                        break
        except OSError:
            pass
        _CPU_VENDOR.append(vendor)
    return _CPU_VENDOR[0]


def cost_key():
    """The name of the cost table measured on this machine: "<level>-<vendor>" ("v4-amd"), or
    the level alone where the vendor is unknown.  calibrate.py writes under this key."""
    vendor = cpu_vendor()
    return f"{cost_level()}-{vendor}" if vendor else cost_level()


def cost_keys():
    """The cost tables to read, best first: this machine's level and vendor, the same level
    measured on another vendor, then the nearest other levels (each vendor's)."""
    level, vendor = cost_level(), cpu_vendor()
    mine = [vendor] if vendor else []
    others = [v for v in _VENDORS if v != vendor]
    keys = []
    nearest = {"v4": ("v4", "v3", "baseline"), "v3": ("v3", "v4", "baseline")}
    for lv in nearest.get(level, ("baseline", "v3", "v4")):
        keys += [f"{lv}-{v}" for v in mine] + [lv] + [f"{lv}-{v}" for v in others]
    return keys


def cost_table(name, backend, dtype_char):
    """{threads: coefficients} of `name` measured on this machine's ISA level and CPU vendor,
    else on the nearest table measured (then the other backend's), or None."""
    keys = cost_keys()
    for be in (backend, "cython"):
        for key in keys:
            table = _costs.COSTS.get((name, be, dtype_char, key))
            if table is not None:
                return table
    return None


def _coefficients(name, g, be, nt):
    """Cost coefficients of `name` for this dtype, backend, ISA level and thread count
    (fastconv/_costs.py)."""
    table = cost_table(name, be, g.dtype.char)
    if table is None:
        return None
    known = sorted(table)
    use = max([t for t in known if t <= nt] or [known[0]])
    c0, *work = table[use]
    scale = use / nt  # threads past the measured ones: work terms shrink, overhead does not
    # a table measured before a feature was added has no coefficient for it (counted in others)
    work += [0.0] * (len(ALGORITHMS[name].features(g)) - 1 - len(work))
    return (c0, *(c * scale for c in work))


def estimate(name, g, be, nt, has_bias=False, fixed=False):
    """Seconds the cost model gives algorithm `name` on geometry g with nt threads (a call
    with a bias, and with weights kept by `keep_packed`, when said)."""
    coef = _coefficients(name, g, be, nt)
    if coef is None:
        return math.inf
    alg = ALGORITHMS[name]
    if alg.call_features is not None and (has_bias or fixed):
        feats = alg.call_features(g, has_bias, fixed)
    else:
        feats = alg.features(g)
    return float(sum(c * f for c, f in zip(coef, feats, strict=True)))


def applicable(g, backend="auto", per_sample=False):
    """Names of the algorithms that can run geometry g on this backend: preconditions hold and the
    workspace fits the bound (on one thread, the smallest), so forcing any of them succeeds."""
    be = resolve_backend(backend)
    nw = g.N if per_sample else 1
    return [
        a.name
        for a in ALGORITHMS.values()
        if a.applies(g, be, per_sample) and a.workspace(g, be, 1, nw, WORKSPACE_BYTES) is not None
    ]


def _thread_options(nthreads):
    return sorted({1, nthreads})


#: outputs below this many elements take conv2d's fused epilogue on one thread: they are in
#: cache after the convolution, and an OpenMP region costs about as much as the pass
EPILOGUE_GRAIN = 1 << 16


def run_epilogue(plan, res4, act, residual):
    """conv2d's fused epilogue on the result: res4 = act(res4 + residual), in place, one pass
    (NumPy glue makes one pass per operation: `y += r` then `np.maximum(y, 0, out=y)`)."""
    if act == 0 and residual is None:
        return
    flat = res4.reshape(-1)
    nt = 1 if flat.size < EPILOGUE_GRAIN else plan.nthreads
    r = flat if residual is None else residual.reshape(-1)
    kernels(plan.backend).conv_epilogue(flat, r, residual is not None, act, nt)


def plan_conv2d(
    geom,
    backend="auto",
    nthreads=None,
    workspace_bytes=WORKSPACE_BYTES,
    per_sample=False,
    algorithm="auto",
    exact_nonfinite=False,
    has_bias=False,
    fixed=False,
):
    """Choose how `geom` (a ConvGeometry) runs: the cheapest applicable algorithm and thread count.

    Parameters
    ----------
    geom : ConvGeometry
    backend : {"auto", "numba", "cython"}
    nthreads : int, optional
        Most threads to use; defaults to fastconv.get_num_threads().  Small work runs on fewer
        when the cost model says one thread is faster.
    workspace_bytes : int
        Upper bound on the workspace (extra memory) of the plan.
    per_sample : bool
        Weights differ per sample (dynamic convolution).
    algorithm : str
        "auto", or a key of ALGORITHMS to force (ValueError when it does not apply).
    exact_nonfinite : bool
        Only algorithms that put NaN/inf where direct summation does (the recompute after a
        transform-based path met a non-finite value).
    has_bias, fixed : bool
        The call adds a bias; its weights are kept by `keep_packed` (`is_fixed`).  They change
        the costs of the algorithms whose call_features say so.
    """
    be = resolve_backend(backend)
    if nthreads is None:
        nthreads = _threads.get_num_threads()
    per_sample = bool(per_sample)
    if algorithm != "auto":
        if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
            raise ValueError(
                f"algorithm must be 'auto' or one of {tuple(ALGORITHMS)}, got {algorithm!r}"
            )
        names = [algorithm]
    else:
        names = list(ALGORITHMS)
    best = None
    if algorithm == "auto" and not exact_nonfinite:
        tuned = _wisdom.lookup(geom, be, nthreads, per_sample)  # fastconv.tune's measurement
        if tuned is not None and tuned[0] in ALGORITHMS:
            alg = ALGORITHMS[tuned[0]]
            fit = alg.applies(geom, be, per_sample) and alg.workspace(
                geom, be, tuned[1], geom.N if per_sample else 1, workspace_bytes
            )
            if fit and (not alg.max_threads or tuned[1] <= alg.max_threads):
                return ConvPlan(tuned[0], be, tuned[1], fit[1], fit[0], False, 0.0)
    for name in names:
        alg = ALGORITHMS[name]
        if exact_nonfinite and not alg.exact_nonfinite:
            continue
        if not alg.applies(geom, be, per_sample):
            continue
        if algorithm == "auto" and alg.dominated is not None and alg.dominated(geom, be, fixed):
            continue
        for nt in _thread_options(min(nthreads, alg.max_threads or nthreads)):
            fit = alg.workspace(geom, be, nt, geom.N if per_sample else 1, workspace_bytes)
            if fit is None:
                continue
            cost = estimate(name, geom, be, nt, has_bias, fixed)
            if best is None or cost < best[0]:
                best = (cost, ConvPlan(name, be, nt, fit[1], fit[0], algorithm != "auto", cost))
    if best is None:
        if algorithm != "auto":
            why = (
                f"needs more than the {workspace_bytes / 2**20:.4g} MiB workspace bound"
                if ALGORITHMS[algorithm].applies(geom, be, per_sample)
                else f"does not apply to this convolution on backend {be!r}"
            )
            raise ValueError(
                f"algorithm={algorithm!r} {why} (applicable: {applicable(geom, be, per_sample)})"
            )
        raise AssertionError("no algorithm applies")  # gemm always does
    return best[1]


def winograd_plan(geom, backend, nthreads, nw=1):
    """A Winograd plan for `nw` weight sets (1 shared, N per sample), its workspace sized."""
    be = resolve_backend(backend)
    ws, _ = _winograd_workspace(geom, be, nthreads, nw, math.inf)
    return ConvPlan("winograd", be, nthreads, workspace=ws, forced=True)


# --------------------------------------------------------------------------------------------
# repeated calls: the plan of a call depends only on shapes, dtypes and arguments


_PLAN_CACHE: "OrderedDict[tuple, tuple]" = OrderedDict()
_PLAN_CACHE_SIZE = 256


def cached(key, make):
    """make() for a hashable key, remembered for the last _PLAN_CACHE_SIZE distinct keys."""
    try:
        hit = _PLAN_CACHE.get(key)
    except TypeError:  # an unhashable argument (a list as padding): no caching
        return make()
    if hit is not None:
        _PLAN_CACHE.move_to_end(key)
        return hit
    value = make()
    _PLAN_CACHE[key] = value
    if len(_PLAN_CACHE) > _PLAN_CACHE_SIZE:
        _PLAN_CACHE.popitem(last=False)
    return value


def clear_cache():
    """Forget the remembered plans (after set_num_threads or tuning they are recomputed anyway)."""
    _PLAN_CACHE.clear()


# --------------------------------------------------------------------------------------------
# dynamic convolution (fastconv.dynamic_conv2d): mix the kernels first, or run the experts


@dataclass(frozen=True)
class DynamicPlan:
    """How one dynamic_conv2d call runs: the method, both estimates (seconds), the batch chunk.

    Parameters
    ----------
    method : {"mix", "experts"}
        Mix the kernels per sample first, or run the experts as one wide convolution.
    mix_cost, experts_cost : float
        The cost model's estimate of each way, in seconds.
    chunk : int
        Samples per pass (bounds the per-sample kernels or the expert outputs in memory).
    per_sample_calls : bool
        For "mix": one shared-weight kernel call per sample (packed) instead of one batched call.

    See Also
    --------
    fastconv.dynamic.dynamic_plan : Returns it.
    fastconv.dynamic_conv2d : Runs it (``method=`` forces one way).

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.ones((2, 4, 8, 8), dtype=np.float32)
    >>> bank = np.ones((3, 4, 4, 3, 3), dtype=np.float32)
    >>> att = np.full((2, 3), 1 / 3, dtype=np.float32)
    >>> fastconv.dynamic_conv2d(x, bank, att, padding=1, method="mix").shape
    (2, 4, 8, 8)
    """

    method: str  # "mix" | "experts"
    mix_cost: float  # mix the kernels per sample, then one convolution per sample
    experts_cost: float  # run the E experts as one convolution, then mix their outputs
    chunk: int  # samples per pass (bounds the per-sample kernels or the expert outputs in memory)
    per_sample_calls: bool  # mix: one shared-weight kernel call per sample (packed)


DYNAMIC_METHODS = ("auto", "mix", "experts")


def _mix_seconds(macs, elems, dtype, nt):
    """A memory-bound NumPy matmul (mixing kernels or expert outputs), by the measured rates."""
    table = cost_table("mix", "numpy", np.dtype(dtype).char) or {1: (5e-6, 2e-10, 4e-10, 0)}
    c0, c1, c2, _ = table[min(table)]  # the mixing runs on one BLAS thread (fastconv.dynamic)
    return c0 + c1 * macs + c2 * elems


def plan_dynamic(
    g, E, backend="auto", method="auto", nthreads=None, workspace_bytes=WORKSPACE_BYTES
):
    """Pick how a dynamic convolution runs, from the registry's cost of each way.

    g is the geometry of the whole batch with one kernel (K outputs), E the number of experts.
    mix: (N, E) @ (E, K*R) then the per-sample convolution (one batched call on an entry that
    takes per-sample weights, or one shared-weight call per sample, whichever is cheaper);
    experts: one shared-weight convolution with E*K outputs, then (1, E) @ (E, K*P) per sample.
    """
    if method not in DYNAMIC_METHODS:
        raise ValueError(f"method must be one of {DYNAMIC_METHODS}, got {method!r}")
    be = resolve_backend(backend)
    if nthreads is None:
        nthreads = _threads.get_num_threads()
    N, K, P, R = g.N, g.K, g.P, g.R
    batched = plan_conv2d(g, be, nthreads, workspace_bytes, per_sample=True).cost
    calls = N * plan_conv2d(replace(g, N=1), be, nthreads, workspace_bytes).cost
    per_sample_calls = calls < batched
    mix = _mix_seconds(N * E * K * R, E * K * R + N * K * R, g.dtype, nthreads) + min(
        batched, calls
    )
    gE = replace(g, K=E * K)
    experts = plan_conv2d(gE, be, nthreads, workspace_bytes).cost + _mix_seconds(
        N * E * K * P, N * (E + 1) * K * P, g.dtype, nthreads
    )
    if method == "auto":
        method = "mix" if mix <= experts else "experts"
    per_sample_bytes = g.dtype.itemsize * (K * R if method == "mix" else E * K * P)
    chunk = int(max(1, min(N, workspace_bytes // max(1, per_sample_bytes))))
    return DynamicPlan(method, mix, experts, chunk, per_sample_calls and method == "mix")


# ---- conv3d lowered to conv2d (fastconv.convnd) ----
# A 3-D convolution is a 2-D one over depth-stacked channels: output plane od reads the kd input
# planes od*sd - pd + k*dd, so gathering them as C*kd channels of one "sample" (N*Do samples in
# all) leaves a conv2d with weight (K, C/groups*kd, kh, kw), which every 2-D algorithm above plans
# (packed micro-kernel, Winograd for 3x3, grouped/depthwise).  The gathered copy is kd/sd times the
# input; it is built for a slab of output planes at a time, bounded by the workspace.


def plan_depth_slab(geom, workspace_bytes=None, per_plane=None):
    """Output depth planes per lowered 2-D call for a rank-3 geometry (conv3d's NdGeometry or a
    3-D unfold's): as many as keep the slab's buffers within the workspace, at least one.
    `per_plane` is their bytes per output plane; by default the gathered (N, C*kd, H, W) input."""
    limit = WORKSPACE_BYTES if workspace_bytes is None else workspace_bytes
    if per_plane is None:
        (_, H, W), kd = geom.spatial, geom.kernel[0]
        per_plane = geom.N * geom.C * kd * H * W * geom.dtype.itemsize
    return max(1, min(geom.out_spatial[0], limit // max(per_plane, 1)))


def plan_depth_lowering(geom, weight_finite=True):
    """How a rank-3 NdGeometry lowers to conv2d: ("gather", slab) or ("taps", None).

    "gather": slabs of output planes with their kd input planes stacked as C*kd channels, one conv2d
    per slab (the reduction is C*kd deep: the dense kernels' best case).  "taps": the volume
    transposed once to (N, D, C, H, W), then one conv2d per depth tap over the output planes whose
    input plane lies in the volume, summed; it reads planes as views instead of kd copies and skips
    depth padding exactly, so it serves depthwise layers (a kd-deep grouped reduction is the
    packed kernel's worst case; the 2-D depthwise kernels apply per tap) and infinite weights (a
    gathered zero plane times inf would be NaN, where direct summation adds nothing).
    """
    depth_padded = geom.pad[0] != (0, 0)
    if (geom.Cg == 1 and geom.groups > 1) or (depth_padded and not weight_finite):
        return "taps", None
    return "gather", plan_depth_slab(geom)


# ---- 2-D filters (fastconv.signal) ----
# What runs for signal.correlate2d / convolve2d: method ("direct", "separable", "fft", or "taps",
# the NumPy loop in the result's own dtype) and thread count, from a FilterGeometry.  The time of
# each method is  call + work / rate  with work = taps * pixels (direct), (kh + kw) * pixels
# (separable), or 5 N log2 N per real transform (fft, N the padded transform size).  The
# constants are fitted by benchmarks/scripts/signal_cutover.py (forced methods over a grid of
# kernels 1x1-64x64 and images 16^2-8192^2): see FILTER_FIT for the command, machine and date.

#: (method, work itemsize) -> (seconds per call, work units per second) on one thread.
FILTER_COST = {
    ("direct", 4): (1.3e-05, 1.25e10),
    ("direct", 8): (1.18e-05, 8.63e09),
    ("fft", 4): (7.9e-05, 1.22e10),
    ("fft", 8): (6.75e-05, 9.99e09),
    ("separable", 4): (4.04e-05, 5.34e09),
    ("separable", 8): (3.3e-05, 4.34e09),
}
#: Threads: work that one thread does in under FILTER_PARALLEL_S seconds runs on one thread (on
#: this shared 2-core machine a parallel region often waited a whole time slice, 12-28 ms
#: measured, for its second thread); above it, 2 threads divide the time by FILTER_SPEEDUP.
FILTER_PARALLEL_S = 0.27
FILTER_SPEEDUP = 1.1
FILTER_FIT = (
    "python benchmarks/scripts/signal_cutover.py --json ... (timings kept in "
    "benchmarks/scripts/signal_cutover_timings.json); 2-core AMD Zen 4 AVX-512, shared by ~7 "
    "jobs, 2026-12-01; on its grid auto was within 10% of the fastest on 86.7% of points"
)
#: Extended images up to this many bytes are built as one padded copy and run in one kernel call;
#: larger ones run the interior in place plus four border strips (no copy of the whole image).
FILTER_ONE_COPY_BYTES = 1 << 20
# Integers are exact through float64 while |x| * sum|k| stays below 2**53 (direct) or, for the
# paths that round (separable, FFT), far enough below it that rounding errors stay < 0.5.
EXACT_DIRECT = 2.0**53
EXACT_ROUNDED = 2.0**36


@dataclass(frozen=True)
class FilterPlan:
    """How one signal.correlate2d / convolve2d call runs."""

    method: str  # "direct" | "separable" | "fft" | "taps"
    backend: str
    nthreads: int
    reason: str
    one_copy: bool = True  # one padded copy and one kernel call (else interior + border strips)


def filter_work(fgeom, method):
    """The work units of `method` on `fgeom` (the cost model's abscissa)."""
    from ._fft import fft_len

    if method == "direct":
        return fgeom.taps * fgeom.pixels
    if method == "separable":
        # the row pass runs over kh - 1 extra rows per block of output rows
        return (fgeom.kh + fgeom.kw) * fgeom.pixels
    ph, pw = fgeom.padded
    n = fft_len(ph) * fft_len(pw)
    # forward of each real image and the inverse, the kernel's transform once
    return (2 * fgeom.batch * fgeom.parts + 1) * 5 * n * max(1.0, float(np.log2(n)))


def filter_seconds(fgeom, method, nthreads):
    """Estimated time of `method` on `nthreads` threads (inf: too little work for them)."""
    call, rate = FILTER_COST[method, fgeom.work.itemsize]
    one = call + filter_work(fgeom, method) / rate
    if nthreads == 1:
        return one
    if one < FILTER_PARALLEL_S:
        return float("inf")
    return one / (FILTER_SPEEDUP * nthreads / 2)


def _filter_ranking_uncached(fgeom, nthreads):
    best = []
    for method in ("direct", "separable", "fft"):
        if method == "separable" and fgeom.taps == 1:
            continue
        opts = [(filter_seconds(fgeom, method, n), n) for n in sorted({1, nthreads})]
        t, n = min(opts)
        best.append((t, method, n))
    best.sort()
    return tuple((m, n, t) for t, m, n in best)


_filter_ranking = functools.lru_cache(maxsize=512)(_filter_ranking_uncached)


def plan_filter2d(
    fgeom, method="auto", backend="auto", nthreads=None, *, rank1=None, finite=None, exact=None
):
    """Choose what runs for a FilterGeometry.

    Parameters
    ----------
    fgeom : FilterGeometry
    method : {"auto", "direct", "separable", "fft"}
        A forced method is kept (only its thread count is chosen).
    backend : {"auto", "numba", "cython"}
    nthreads : int, optional
        At most this many threads (default fastconv.get_num_threads()); fewer when that is faster.
    rank1, finite, exact : callables, optional
        Facts about the data, asked only when they decide: ``rank1()`` is the kernel rank 1 (and
        finite); ``finite()`` are image, kernel and fill value free of NaN/inf; ``exact()`` the
        bound |x| * sum|k| for integer inputs.  A cost-losing method never triggers its test.

    Returns
    -------
    FilterPlan
    """
    be = resolve_backend(backend, "signal")
    if nthreads is None:
        nthreads = _threads.get_num_threads()
    dt = fgeom.dtype
    if dt.kind in "fc" and dt.itemsize <= 16:
        ranking = _filter_ranking(fgeom, nthreads)
        if method != "auto" or ranking[0][0] == "direct":
            # no fact about the data decides (a forced method, or direct cheapest): the plan
            # depends on shapes and arguments only, so a repeated small call reuses it
            return cached(
                ("filter2d", fgeom, method, be, nthreads),
                lambda: _plan_filter2d(fgeom, method, be, nthreads, rank1, finite, exact),
            )
    return _plan_filter2d(fgeom, method, be, nthreads, rank1, finite, exact)


def _plan_filter2d(fgeom, method, be, nthreads, rank1, finite, exact):
    dt = fgeom.dtype
    ph, pw = fgeom.padded
    one_copy = fgeom.batch * fgeom.parts * ph * pw * fgeom.work.itemsize <= FILTER_ONE_COPY_BYTES
    if (dt.kind == "f" and dt.itemsize > 8) or (dt.kind == "c" and dt.itemsize > 16):
        return FilterPlan("taps", be, 1, f"{dt} runs the tap-by-tap loop in its own precision")
    bound = exact() if dt.kind in "iu" and exact is not None else None
    if bound is not None and bound >= EXACT_DIRECT:
        return FilterPlan("taps", be, 1, "integers beyond float64's exact range: exact loop")
    ranking = _filter_ranking(fgeom, nthreads)
    if method != "auto":
        n, t = next((n, t) for m, n, t in ranking if m == method)
        return FilterPlan(
            method, be, n, f"method={method!r} forced (est. {t * 1e6:.0f} us)", one_copy
        )
    direct_t = next(t for m, _, t in ranking if m == "direct")
    skipped = []
    for m, n, t in ranking:
        if m != "direct" and bound is not None and bound >= EXACT_ROUNDED:
            skipped.append(f"{m}: integers with |x| * sum|k| >= 2**36 need the exact path")
            continue
        if m == "separable" and not (rank1 is not None and rank1()):
            skipped.append("separable: kernel not rank 1 (or not finite)")
            continue
        if m == "fft" and not (finite is not None and finite()):
            skipped.append("fft: NaN/inf in the inputs, which FFT would spread")
            continue
        why = f"{fgeom.kh}x{fgeom.kw} kernel, {fgeom.out_h}x{fgeom.out_w} output: {m}"
        if m == "separable":
            why += f" (rank-1 kernel, {fgeom.kh + fgeom.kw} taps per pixel)"
        why += " est. "
        why += f"{t * 1e6:.0f} us on {n} thread{'s' if n > 1 else ''}"
        if m != "direct":
            why += f" < direct est. {direct_t * 1e6:.0f} us"
        if skipped:
            why += " (" + "; ".join(skipped) + ")"
        return FilterPlan(m, be, n, why, one_copy)
    raise AssertionError("direct always applies")


# --------------------------------------------------------------------------------------------
# backward and transposed convolution (fastconv.grad): how conv2d's gradients run


@dataclass(frozen=True)
class TransposePhase:
    """One stride phase of a transposed convolution (conv2d's input gradient).

    Input rows r::sh and columns c::sw of the gradient receive only the taps `rows` x `cols`
    (flipped order) of the weight: a stride-1 correlation of the grad_output window
    [r0, r1) x [c0, c1) with that sub-kernel, run by `plan` on `geom` (its padding, dilation
    dilation/gcd(dilation, stride)).  `geom` is None when no tap of the weight reaches the phase
    (its gradient is zero, or the bias).
    """

    r: int
    c: int
    rows: tuple
    cols: tuple
    r0: int
    r1: int
    c0: int
    c1: int
    geom: object
    plan: object


@dataclass(frozen=True)
class TransposePlan:
    """How conv2d's input gradient (conv_transpose2d) runs.

    method "phases": sh*sw stride-1 convolutions, each planned by plan_conv2d (so the packed
    kernel, Winograd, depthwise and grouped kernels all apply).  method "gemm": one GEMM per group
    of the weight's transpose against `samples` samples of grad_output at a time, then col2im;
    `nthreads` static shares of the sample chunks on Python threads, BLAS and col2im on one
    thread each.
    """

    phases: tuple
    method: str = "phases"
    samples: int = 0
    nthreads: int = 1
    backend: str = "cython"
    workspace: int = 0  # elements (gemm)


def _phase_axis(r, n_in, n_go, k, s, p, d):
    """Taps, dilation, output length and grad_output window of phase r along one axis: input
    positions i = r + s*m receive go[(i + p - d*t) / s] * w[t] for the taps t with
    (r + p - d*t) divisible by s, in decreasing t (increasing go position, step d/gcd(d, s))."""
    taps = tuple(t for t in range(k - 1, -1, -1) if (r + p - d * t) % s == 0)
    m = len(range(r, n_in, s))
    if not taps:
        return None
    dd = d // math.gcd(d, s)
    a = (r + p - d * taps[0]) // s
    b = a + m - 1 + (len(taps) - 1) * dd + 1
    lo, hi = max(a, 0), min(b, n_go)
    if lo >= hi:
        return None
    return taps, dd, m, lo, hi, lo - a, b - hi


def plan_conv_transpose(g, Hg, Wg, backend="auto", nthreads=None):
    """Plan the gradient with respect to the input of the conv2d described by `g` (a ConvGeometry),
    from a grad_output of Hg x Wg pixels (at most g.Ho x g.Wo: rows past it are zero).

    Stride-phase decomposition: a stride-s transposed convolution is s*s stride-1 convolutions of
    grad_output with sub-kernels of the flipped weight, each written to one phase of the result.
    This costs exactly the multiply-adds of the forward call (no zeros inserted between the
    grad_output pixels, no col2im scatter) and lets every forward algorithm run the phases: the
    GEMM + col2im alternative multiplies as many pixels but writes kh*kw times the image through
    col2im, which loses on every layer of the public suite (benchmarks/scripts/backward_speed.py).
    """
    be = resolve_backend(backend)
    if nthreads is None:
        nthreads = _threads.get_num_threads()
    phases = []
    for r in range(min(g.sh, g.H)):
        ar = _phase_axis(r, g.H, Hg, g.kh, g.sh, g.pt, g.dh)
        for c in range(min(g.sw, g.W)):
            ac = _phase_axis(c, g.W, Wg, g.kw, g.sw, g.pl, g.dw)
            if ar is None or ac is None:
                phases.append(TransposePhase(r, c, (), (), 0, 0, 0, 0, None, None))
                continue
            rows, ddh, mh, r0, r1, pt, pb = ar
            cols, ddw, mw, c0, c1, pl, pr = ac
            # the phase convolves grad_output (K channels) into C channels, stride 1
            sub = replace(
                g, C=g.K, H=r1 - r0, W=c1 - c0, K=g.C, kh=len(rows), kw=len(cols), sh=1, sw=1
            )
            sub = replace(sub, pt=pt, pb=pb, pl=pl, pr=pr, dh=ddh, dw=ddw, Ho=mh, Wo=mw)
            sub = replace(sub, batched=True)
            plan = plan_conv2d(sub, be, nthreads)
            phases.append(TransposePhase(r, c, rows, cols, r0, r1, c0, c1, sub, plan))
    if (g.sh > 1 or g.sw > 1) and not _strided_phases_win(phases, g, be):
        return _transpose_gemm_plan(g, Hg, Wg, be, nthreads)
    return TransposePlan(tuple(phases), backend=be)


def _strided_phases_win(phases, g, be):
    """Whether a strided transposed convolution runs as its stride phases (else GEMM + col2im).

    Measured on the decoder layers (Zen 5, 2 threads, float32, two runs each way): the phases on
    the packed kernel took 0.65x GEMM + col2im's time on U-Net's 512->256 at 28x28, 0.84x on
    256->128 at 56x56, 0.5-0.65x on DCGAN's 8x8 and 16x16 layers, but 1.15-1.3x on DCGAN's 4x4
    input (4x4-pixel phases) and as fast or slower with 3 output channels (the tile's 8 rows
    idle); float64 has no packed kernel and keeps GEMM + col2im."""
    live = [ph for ph in phases if ph.geom is not None]
    return (
        g.dtype == np.float32
        and g.C >= 8
        and bool(live)
        and all(ph.geom.Ho * ph.geom.Wo >= 64 for ph in live)
        and all(ALGORITHMS["packed"].applies(ph.geom, be, False) for ph in live)
    )


#: Bound on the columns (and their transposes) the GEMM + col2im route of conv_transpose2d holds
#: at once, all threads together.
TRANSPOSE_TILE_BYTES = 16 * 2**20


def _transpose_gemm_plan(g, Hg, Wg, be, nthreads):
    """Strided transposed convolutions where the phases do not win (_strided_phases_win):
    GEMM + col2im.

    Measured earlier on the decoder layers (U-Net 2x2 stride 2, DCGAN 4x4 stride 2; a loaded
    2-core Xeon, one process, interleaved): the stride phases are sh*sw small convolutions, each
    with its own call and a strided copy into the result, 1.3-6x slower than one GEMM per
    sample chunk and one col2im pass (whose scatter is cheap when the kernel barely exceeds
    the stride); with the packed kernel on this Zen 5 they win on large enough phases.
    """
    item = g.dtype.itemsize
    P = Hg * Wg
    per_sample = (g.C * g.kh * g.kw * P + g.K * P) * item * (1 if P >= 256 else 2)
    macs = g.N * g.K * P * g.Cg * g.kh * g.kw
    nt = 1 if macs < GRAD_WEIGHT_SERIAL_MACS or g.N < 2 else max(1, min(int(nthreads), g.N))
    samples = max(1, min(-(-g.N // nt), TRANSPOSE_TILE_BYTES // nt // max(1, per_sample)))
    return TransposePlan((), "gemm", samples, nt, be, nt * samples * per_sample // item)


#: Bound on the im2col columns one grad_weight step builds (all threads together): the GEMM
#: over them is long enough (Kg x R x pixels) to run BLAS near its peak, and the whole im2col
#: matrix is never built.
GRAD_WEIGHT_TILE_BYTES = 16 * 2**20
#: Multiply-adds below which the weight gradient runs on one thread (starting threads costs more).
GRAD_WEIGHT_SERIAL_MACS = 2_000_000


@dataclass(frozen=True)
class WeightGradPlan:
    """How conv2d's weight gradient runs.

    method: "conv" (groups = 1 where the packed kernel runs: one convolution of x's channels
    with grad_output's, _weight_grad_conv_plan), "pointwise" (1x1 stride 1: x is its own im2col
    matrix, one batched GEMM per group),
    "depthwise" (one output-channel plane per tap, direct: no GEMM is worth it at Cg = 1),
    "direct" (groups = 1: a register tile of output channels x (c, i, j) columns over tasks of
    samples x rows x cols output pixels, no im2col matrix, _weight_grad_direct_plan), or
    "im2col" (im2col tiles of `samples` samples x `rows` output rows, each one GEMM per group
    against grad_output's pixels, accumulated: workspace bounded by GRAD_WEIGHT_TILE_BYTES).
    """

    method: str
    backend: str
    nthreads: int
    samples: int = 1
    rows: int = 0
    workspace: int = 0  # elements
    cols: int = 0  # "direct": output columns a task (whole rows unless one row is too long)
    thread_ws: int = 0  # "direct": one thread's workspace elements (the dW parts aside)
    ksplit: bool = False  # "direct": threads split the output channels, not the tasks
    conv: object = None  # "conv": the ConvPlan of the transposed convolution
    geom: object = None  # "conv": its ConvGeometry (_geometry.weight_grad_geometry)
    fallback: object = None  # "conv": the tiles plan, for a grad_output holding NaN or inf

    def workspace_bytes(self, itemsize):
        return self.workspace * itemsize


def _weight_grad_conv_plan(g, be, nt):
    """The weight gradient as a "packed" convolution (_geometry.weight_grad_geometry), or None
    where that kernel does not run it (groups, float64, no build for this CPU) or its
    workspace with the two transposed copies exceeds WORKSPACE_BYTES.

    Measured on the public suite (Zen 5, 2 threads, median of interleaved ratios against the
    im2col + one-thread-BLAS tiles on Python threads): 0.34-0.85x their time on the 3x3 layers
    (stride 2 and dilation 2 included) and the 7x7 stem, 0.97x at batch 1: the packed tile reads
    each input pixel once per 8 output channels instead of writing and reading kh*kw copies of
    it, and runs in fastconv's own thread pool.  A 1x1 layer keeps its one GEMM on x as it lies
    ("pointwise": 1.22x as a convolution).

    The convolution skips padding taps; torch's autograd multiplies them (0 x inf = NaN), so a
    grad_output holding NaN or inf runs the plan's `fallback` (the im2col tiles), which puts
    every non-finite value where torch does."""
    if g.groups != 1 or g.is_pointwise or g.N == 0 or g.K == 0 or g.C == 0:
        return None
    from ._geometry import weight_grad_geometry

    sub, rows, cols = weight_grad_geometry(g)
    if rows == 0 or cols == 0 or not ALGORITHMS["packed"].applies(sub, be, False):
        return None
    copies = g.N * g.C * rows * cols + g.N * g.K * g.P  # x and grad_output, transposed
    fit = ALGORITHMS["packed"].workspace(
        sub, be, nt, 1, WORKSPACE_BYTES - copies * g.dtype.itemsize
    )
    if fit is None:
        return None
    plan = ConvPlan("packed", be, nt, fit[1], fit[0], True, estimate("packed", sub, be, nt))
    return WeightGradPlan("conv", be, nt, workspace=fit[0] + copies, conv=plan, geom=sub)


def plan_conv2d_weight(g, backend="auto", nthreads=None, tile_bytes=GRAD_WEIGHT_TILE_BYTES):
    """Plan the gradient with respect to the weight of the conv2d described by `g`.

    Tiles are whole samples when one sample's columns fit a thread's share of `tile_bytes`, else
    bands of output rows; at least two per thread when the batch and image allow, so the static
    shares of the threads stay even.  Work below GRAD_WEIGHT_SERIAL_MACS runs on one thread.
    """
    be = resolve_backend(backend)
    if nthreads is None:
        nthreads = _threads.get_num_threads()
    macs = g.N * g.K * g.P * g.R
    nt = 1 if macs < GRAD_WEIGHT_SERIAL_MACS else max(1, int(nthreads))
    if g.is_depthwise:  # the direct kernel (fastconv/_jit/grad.py, _ext/grad.pyx): Cg = 1, no GEMM
        dbe = be if be == "numba" or cython_available("grad") else "numba"
        return WeightGradPlan("depthwise", dbe, min(nt, g.K))
    direct = _weight_grad_direct_plan(g, be, nt) if _wgrad_direct_wins(g, be) else None
    if direct is not None:
        return direct
    conv = _weight_grad_conv_plan(g, be, nt)
    tiles = _weight_grad_tiles_plan(g, be, nt, tile_bytes)
    return tiles if conv is None else replace(conv, fallback=tiles)


#: Bytes of grad_output a direct weight-gradient tile streams over (a task's pixels x at most 4
#: vectors of output channels), re-read for every group of columns: it has to stay in L1.
#: Measured on the public suite (Xeon, 48 KiB L1d, 1 thread): 112-168 pixels of 64 channels
#: (28-42 KiB) ran at 175-189 GFLOP/s, 56 pixels at 155-160 (per-tile costs), 224 pixels at
#: 87-90 on the stem (the strip spills to L2).
WGRAD_STRIP_BYTES = 36 * 1024


def _wgrad_direct_wins(g, be):
    """Where the direct weight gradient runs by default: groups = 1, on the Cython kernel's
    AVX-512 instance.

    Measured (Xeon, float32, best of interleaved rounds): on the public suite's 3x3 and 7x7
    layers 0.45-0.75x the packed convolution's time ("conv") on 1 and 2 threads, 0.9-1.05x
    torch's conv2d_weight; on thirteen 1x1 layers (ResNet-50, MobileNetV2, batch 1-8) 0.26-0.87x
    the one GEMM a sample on Python threads ("pointwise") on 2 threads, 0.63-0.98x on 1 (the
    GEMMs' Python threads also met OpenMP's spinning pool when conv2d_backward ran the input
    gradient first: 3.2-9.7 ms a call on ResNet-50's 256->64).  Without AVX-512, or on the
    Numba twin, "conv", "pointwise" and the tiles keep it."""
    if g.groups != 1 or be != "cython" or not cython_available("grad"):
        return False
    return bool(_load("cython", "grad").wgrad_fast())


def _weight_grad_direct_plan(g, be, nt, ksplit=None):
    """The direct weight gradient's tasks: as many output pixels as WGRAD_STRIP_BYTES holds with
    4 vectors of channels (whole rows, whole samples when they fit, a row's columns in parts
    when one row is more); or None where it does not run.

    Threads share the tasks (each into a dW part of its own, summed after), or with `ksplit`
    (the default when there are fewer than two tasks a thread) split the register tile's blocks
    of output channels, every thread running every task into one part.  Measured (Xeon, 2
    threads, float32): ksplit 0.62x the tasks' time on 1x512x7x7 (one task), 0.94x on 4x512x7x7
    (two), 0.95x on 1x256x14x14 (two); 1.19-1.5x where tasks are many (4x256x14x14 with 8,
    4x128x28x28, 4x64x56x56 stride 2): each thread then copies every task's input rows."""
    if g.groups != 1 or g.N == 0 or g.K == 0 or g.C == 0 or g.Ho == 0 or g.Wo == 0:
        return None
    item = g.dtype.itemsize
    lanes = 64 // item
    kp = -(-g.K // lanes) * lanes
    budget = max(1, WGRAD_STRIP_BYTES // (min(kp, 4 * lanes) * item))
    cols = min(g.Wo, budget)
    rows = max(1, min(g.Ho, budget // g.Wo)) if cols == g.Wo else 1
    samples = max(1, min(g.N, budget // (g.Ho * g.Wo))) if rows == g.Ho else 1
    # even parts (14 rows as 7 + 7, not 10 + 4): each task pays a whole dW flush
    cols = -(-g.Wo // -(-g.Wo // cols))
    rows = -(-g.Ho // -(-g.Ho // rows))
    samples = -(-g.N // -(-g.N // samples))
    tasks = -(-g.N // samples) * -(-g.Ho // rows) * -(-g.Wo // cols)
    parts = g.C * g.kh * g.kw * kp
    blocks = -(-kp // (4 * lanes))  # of the register tile's 4 vectors of output channels
    if ksplit is None:  # too few tasks to share: the threads split the output channels
        ksplit = 1 < int(nt) <= blocks and tasks < 2 * int(nt)
        # a part per thread as large as the result beyond the workspace bound (wide layers:
        # 2048 -> 2048 3x3 is 151 MB a part): one part, the threads splitting its channels
        if not ksplit and int(nt) > 1 and int(nt) * parts * item > WORKSPACE_BYTES:
            ksplit = blocks >= 2
            nt = nt if ksplit else 1
    nt = max(1, min(int(nt), blocks if ksplit else tasks))
    span = (rows - 1) * g.sh + (g.kh - 1) * g.dh + 1
    wsp = (cols - 1) * g.sw + (g.kw - 1) * g.dw + 1
    per_thread = samples * rows * cols * kp + samples * g.C * span * wsp
    return WeightGradPlan(
        "direct",
        be,
        nt,
        samples,
        rows,
        nt * per_thread + (1 if ksplit else nt) * parts,
        cols=cols,
        thread_ws=per_thread,
        ksplit=bool(ksplit),
    )


def _weight_grad_tiles_plan(g, be, nt, tile_bytes):
    """The im2col tiles (or, 1x1, the one GEMM) of plan_conv2d_weight."""
    item = g.dtype.itemsize
    method = "pointwise" if g.is_pointwise else "im2col"
    per_row = (0 if g.is_pointwise else g.C * g.kh * g.kw * g.Wo * item) + g.K * g.Wo * item
    share = max(per_row, tile_bytes // nt)
    per_sample = per_row * g.Ho
    if per_sample <= share:
        samples = max(1, min(g.N, share // per_sample, -(-g.N // (2 * nt))))
        rows = g.Ho
    else:
        samples = 1
        rows = max(1, min(g.Ho, share // per_row))
    if g.N * -(-g.Ho // rows) < 2 * nt:
        rows = max(1, -(-g.Ho // -(-2 * nt // max(1, g.N))))
    ws = nt * (samples * rows * per_row // item + g.K * g.R)
    return WeightGradPlan(method, be, nt, samples, rows, ws)


# ----------------------------------------------------------------------------------------------
# fastconv.ndimage: which kernel runs, on which backend, on how many threads, in which tiles.

#: Multiply-adds below which an ndimage call runs on one thread (waking a pool that slept costs
#: more than the work; see the design notes on loaded machines).
NDIMAGE_SERIAL_WORK = 1 << 18

#: Bytes of float64 workspace one thread's tile may use: the extended rows stay in L2.
NDIMAGE_TILE_BYTES = 256 * 1024

_NDIMAGE_LANES = 32  # the kernels' output block width (ws slack and column blocks)


@dataclass(frozen=True)
class NdimagePlan:
    """How one ndimage kernel call runs: kernel name, backend, threads, tile and workspace."""

    kernel: str
    backend: str
    nthreads: int
    tile: tuple
    ws_shape: tuple
    why: str

    def workspace(self):
        """The per-thread float64 workspace the kernel expects (allocated by the caller)."""
        return np.empty(self.ws_shape, dtype=np.float64)

    def tap_offsets(self, t, p, q, kh, kw):
        """The correlate_nd kernel's tap offsets into one tile's workspace (its tile's layout)."""
        rows, cols = self.tile
        wp = cols + kw - 1 + _NDIMAGE_LANES
        return ((t.astype(np.int64) * (rows + kh - 1) + p) * wp + q).astype(np.int64)

    def module(self):
        """The kernel module; a Cython call first tells the fork-safety bookkeeping that OpenMP's
        pool is about to start, as signal's does (the Numba wrapper does so itself)."""
        if self.backend == "cython":
            _threads.mark_pools_started()
        return _load(self.backend, "ndimage")


def _ndimage_threads(work, nitems, nthreads):
    if nthreads is None:
        nthreads = _threads.get_num_threads()
    if work < NDIMAGE_SERIAL_WORK:
        return 1
    return max(1, min(int(nthreads), int(nitems)))


def plan_ndimage(kind, shape3, taps, backend="auto", nthreads=None):
    """The NdimagePlan of one pass.

    kind: "correlate1d" (shape3 (A, L, C), taps the filter length), "uniform1d" (the same, taps
    the window size) or "correlate" (shape3 (P, H, W), taps (T, kh, kw, nonzero taps)).  1-D
    passes along the last axis (C == 1) split lines into segments so one long line runs on every
    thread; along another axis they run 32 columns at a time, contiguous.
    """
    be = resolve_backend(backend, "ndimage")
    lanes = _NDIMAGE_LANES
    budget = _threads.get_num_threads() if nthreads is None else int(nthreads)
    if kind == "correlate":
        P, H, W = shape3
        T, kh, kw, nnz = taps
        work = P * H * W * max(nnz, 1)
        # columns first: T * kh extended rows of one output row must fit the tile (a 9^4 kernel
        # would otherwise ask for 100 MB a thread), then as many rows as the tile holds
        fit = NDIMAGE_TILE_BYTES // (8 * T * kh) - kw + 1 - lanes
        cols = max(lanes, min(W, 2048, fit))
        per_row = T * (cols + kw - 1 + lanes) * 8
        rows = max(1, min(H, NDIMAGE_TILE_BYTES // per_row - kh + 1))
        ncb = -(-W // cols)
        if P * -(-H // rows) * ncb < budget and H > 1:  # enough tiles for every thread
            rows = max(1, -(-H // max(1, budget // max(1, P * ncb))))
        nitems = P * -(-H // rows) * ncb
        nt = _ndimage_threads(work, nitems, budget)
        ws = (nt, T * (rows + kh - 1) * (cols + kw - 1 + lanes))
        why = f"direct taps on {rows}x{cols} tiles ({nnz} nonzero taps)"
        return NdimagePlan("correlate_nd", be, nt, (rows, cols), ws, why)
    A, L, C = shape3
    k = int(taps)
    if kind == "uniform1d":
        if C == 1:
            seg = max(1, min(L, 1024))
            elems = (seg + k) * lanes
            # the kernel's one-line path when the whole extension fits, else 32 rows together
            nitems = A if L + k - 1 <= elems else -(-A // lanes)
        else:  # blocks of up to 256 columns, rows read in runs (see correlate1d_inner)
            bw = min(-(-C // lanes) * lanes, 256)
            seg = min(L, max(16, NDIMAGE_TILE_BYTES // (8 * bw) - k))
            elems = (seg + k) * bw
            nitems = A * -(-C // bw)
        nt = _ndimage_threads(A * L * C * 2, nitems, budget)
        ws = (nt, elems)
        return NdimagePlan("uniform1d", be, nt, (seg,), ws, "running mean, 32 lines side by side")
    if C == 1:
        seg = max(1, min(L, 8192))
        if A * -(-L // seg) < budget:
            seg = max(1, -(-L // budget))
        nitems = A * -(-L // seg)
        nt = _ndimage_threads(A * L * k, nitems, budget)
        ws = (nt, seg + k - 1 + lanes)
        return NdimagePlan("correlate1d_last", be, nt, (seg,), ws, "lines in segments of %d" % seg)
    # column blocks of up to 256 (whole rows of short ones): rows are read in runs, not 32-wide
    # gathers whose power-of-two strides alias in the caches and the TLB
    cbw = min(-(-C // lanes) * lanes, 256)
    seg = max(8, NDIMAGE_TILE_BYTES // (8 * cbw) - k + 1)
    seg = min(L, seg)
    ncb = -(-C // cbw)
    if A * -(-L // seg) * ncb < budget:
        seg = max(1, -(-L // budget))
    nitems = A * -(-L // seg) * ncb
    nt = _ndimage_threads(A * L * C * k, nitems, budget)
    ws = (nt, (seg + k - 1) * cbw)
    why = "%d columns x %d rows" % (cbw, seg)
    return NdimagePlan("correlate1d_inner", be, nt, (seg,), ws, why)


# (end of the fastconv.ndimage section)


# ---- N-d signal.convolve / correlate (fastconv.signal) ----------------------------------------
# "direct" runs fastconv.ndimage's correlation kernels (float64 sums in scipy's order, threaded);
# "fft" runs scipy.signal.fftconvolve, as scipy's own method="fft" does.  Seconds per unit, measured
# on this project's 2-core machine (2 threads, quiet) by the last lines of
# benchmarks/scripts/signal_nd_speed.py: direct 5.4e-11 s per multiply-add (a 128^3 volume with a
# 5^3 kernel, padding included), scipy.signal.fftconvolve 1.6e-9 s per N log2 N of the full shape.
SIGNAL_ND_DIRECT_SECONDS_PER_MAC = 5.4e-11
SIGNAL_ND_FFT_SECONDS_PER_NLOGN = 1.6e-9


def plan_convolve_nd(geom, shape1, shape2, dtype, method="auto"):
    """'direct' or 'fft' for an N-d signal.convolve/correlate (a SignalNdGeometry), like scipy's
    choose_conv_method: integer, bool and object data always run direct (an FFT would round)."""
    if method in ("direct", "fft"):
        return method
    if method != "auto":
        raise ValueError("Acceptable method flags are 'auto', 'direct', or 'fft'.")
    if np.dtype(dtype).kind not in "fc":
        return "direct"
    macs = math.prod(geom.out_shape) * math.prod(geom.kernel)
    full = math.prod(shape1[a] + shape2[a] - 1 for a in geom.axes)  # one transform's elements
    batch = math.prod(shape1[a] for a in range(len(shape1)) if a not in geom.axes)
    n = max(1, full * batch)
    t_fft = SIGNAL_ND_FFT_SECONDS_PER_NLOGN * n * max(1.0, math.log2(max(2, full)))
    t_direct = SIGNAL_ND_DIRECT_SECONDS_PER_MAC * macs
    return "direct" if t_direct <= t_fft else "fft"
