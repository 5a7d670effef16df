"""fastconv's command line: `fastconv demo | info | bench | warmup` (or `python -m fastconv ...`).

demo runs the engine on the photograph the package ships, checks it against scipy.signal and the
float64 reference, and prints a speed table against the peers; info says what this install can do;
bench times conv2d on the CNN layer suite against torch, onnxruntime and OpenVINO; warmup compiles
every Numba kernel into the on-disk cache so no later first call waits for it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from importlib import resources

import numpy as np


def load_sample_image():
    """The shipped grayscale photograph (600x512 uint8, public domain; see fastconv/data/README.md)."""
    with resources.files("fastconv").joinpath("data/grace_hopper.npz").open("rb") as f:
        return np.load(f)["image"]


class _Progress:
    """A one-line text progress bar on stderr (no dependency); a plain line per step when stderr
    is not a terminal (a log keeps every step, not carriage returns)."""

    def __init__(self, total, label):
        self.total, self.label, self.done = total, label, 0
        self.tty = sys.stderr.isatty()

    def step(self, what):
        self.done += 1
        if self.tty:
            filled = int(30 * self.done / self.total)
            bar = "#" * filled + "-" * (30 - filled)
            sys.stderr.write(f"\r{self.label} [{bar}] {self.done}/{self.total} {what:<40}")
            sys.stderr.flush()
            if self.done == self.total:
                sys.stderr.write("\n")
        else:
            sys.stderr.write(f"{self.label}: {self.done}/{self.total} {what}\n")
            sys.stderr.flush()


def _best(fn, repeat=5, budget=3.0):
    """Best wall time of `fn` over `repeat` runs (fewer when a run is slow)."""
    fn()  # warm-up (JIT, caches)
    best = float("inf")
    start = time.perf_counter()
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        if time.perf_counter() - start > budget:
            break
    return best


def _gaussian(size, sigma):
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-0.5 * (r / sigma) ** 2)
    k = np.outer(g, g)
    return k / k.sum()


def _check(name, got, ref, rtol):
    err = float(np.max(np.abs(got - ref)) / max(1.0, float(np.max(np.abs(ref)))))
    ok = err <= rtol
    print(f"  {'ok  ' if ok else 'FAIL'} {name:<46} max rel err {err:.1e} (tolerance {rtol:.0e})")
    return ok


def demo(args):
    import scipy.ndimage
    import scipy.signal

    import fastconv
    from fastconv import _reference

    try:
        import torch
    except ImportError:
        torch = None
    img = load_sample_image().astype(np.float64) / 255.0
    H, W = img.shape
    print(
        f"fastconv {fastconv.__version__} demo: sample photograph {H}x{W} (Grace Hopper, public domain), "
        f"{fastconv.get_num_threads()} threads\n"
    )

    print("Correctness")
    gauss = _gaussian(15, 3.0)
    sobel = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
    ok = True
    blur = fastconv.signal.correlate2d(img, gauss, mode="same", boundary="symm")
    ok &= _check(
        "signal.correlate2d 15x15 Gaussian vs scipy",
        blur,
        scipy.signal.correlate2d(img, gauss, mode="same", boundary="symm"),
        1e-10,
    )
    edges = fastconv.signal.convolve2d(img, sobel, mode="valid")
    ok &= _check(
        "signal.convolve2d Sobel vs scipy",
        edges,
        scipy.signal.convolve2d(img, sobel, mode="valid"),
        1e-10,
    )
    # a CNN layer on the photograph: 16 tiles of 128x128 as a batch, 3 -> 32 channels, 3x3
    rng = np.random.default_rng(0)
    tiles = (
        img[: 4 * 128, : 4 * 128]
        .reshape(4, 128, 4, 128)
        .transpose(0, 2, 1, 3)
        .reshape(16, 1, 128, 128)
    )
    x = np.concatenate([tiles, tiles**2, np.sqrt(tiles)], axis=1).astype(np.float32)
    w = (rng.standard_normal((32, 3, 3, 3)) / 5).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    y = fastconv.conv2d(x, w, b, padding=1)
    ok &= _check(
        "conv2d 16x3x128x128 -> 32ch vs float64 loop",
        y,
        _reference.conv2d(x, w, b, padding=1),
        1e-4,
    )
    if torch is not None:
        ty = torch.nn.functional.conv2d(
            torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), padding=1
        )
        ok &= _check("conv2d vs torch.nn.functional.conv2d", y, ty.numpy(), 1e-4)
    cols = fastconv.im2col(x, 3, padding=1)
    ok &= _check("im2col vs float64 loop", cols, _reference.im2col(x, 3, padding=1), 1e-6)
    print()

    print("Speed (best of several runs, same process; ratio = peer time / fastconv time)")
    big = np.tile(img, (4, 4))[:2048, :2048]  # the photograph tiled to 2048x2048
    gauss5 = _gaussian(5, 1.0)
    k5 = rng.standard_normal((5, 5))
    xl = rng.standard_normal((4, 64, 56, 56)).astype(np.float32)
    wl = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    layer_flops = 2 * 4 * 64 * 56 * 56 * 64 * 9
    cases = [
        (
            "2048^2 image, 5x5 kernel, same",
            "scipy.signal.correlate2d",
            lambda: fastconv.signal.correlate2d(big, k5, mode="same"),
            lambda: scipy.signal.correlate2d(big, k5, mode="same"),
            2 * 2048 * 2048 * 25,
        ),
        (
            "2048^2 image, 5x5 kernel, same",
            "scipy.ndimage.correlate",
            lambda: fastconv.signal.correlate2d(big, k5, mode="same"),
            lambda: scipy.ndimage.correlate(big, k5, mode="constant"),
            2 * 2048 * 2048 * 25,
        ),
        (
            "2048^2 image, 5x5 Gaussian, same",
            "scipy.ndimage.correlate",
            lambda: fastconv.signal.correlate2d(big, gauss5, mode="same"),
            lambda: scipy.ndimage.correlate(big, gauss5, mode="constant"),
            2 * 2048 * 2048 * 25,
        ),
        (
            "600x512 photo, 15x15 Gaussian",
            "scipy.signal.correlate2d",
            lambda: fastconv.signal.correlate2d(img, gauss, mode="same"),
            lambda: scipy.signal.correlate2d(img, gauss, mode="same"),
            2 * H * W * 225,
        ),
        (
            "conv2d 4x64x56x56, 64->64 3x3 (f32)",
            "numpy im2col+matmul",
            lambda: fastconv.conv2d(xl, wl, padding=1),
            lambda: _numpy_conv(xl, wl),
            layer_flops,
        ),
    ]
    if torch is not None:
        torch.set_num_threads(fastconv.get_num_threads())
        txl, twl = torch.from_numpy(xl), torch.from_numpy(wl)
        cases.append(
            (
                "conv2d 4x64x56x56, 64->64 3x3 (f32)",
                "torch conv2d (oneDNN)",
                lambda: fastconv.conv2d(xl, wl, padding=1),
                lambda: torch.nn.functional.conv2d(txl, twl, padding=1),
                layer_flops,
            )
        )
    progress = _Progress(len(cases), "timing")
    rows = []
    for what, peer, ours, theirs, flops in cases:
        t_ours = _best(ours)
        t_peer = _best(theirs, repeat=3)
        rows.append((what, peer, t_ours, t_peer, flops))
        progress.step(what)
    print(f"  {'case':<38} {'peer':<26} {'fastconv':>10} {'peer':>10} {'ratio':>7} {'GFLOP/s':>8}")
    for what, peer, t_ours, t_peer, flops in rows:
        print(
            f"  {what:<38} {peer:<26} {t_ours * 1e3:8.2f}ms {t_peer * 1e3:8.2f}ms "
            f"{t_peer / t_ours:6.1f}x {flops / t_ours / 1e9:8.1f}"
        )
    print("\n" + ("all checks passed" if ok else "SOME CHECKS FAILED"))
    return 0 if ok else 1


def _numpy_conv(x, w):
    """The NumPy way: sliding_window_view + einsum-free tensordot (BLAS)."""
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))  # N,C,H,W,3,3
    return np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)


def info(args):
    import numba
    import scipy
    import threadpoolctl

    import fastconv
    from fastconv import _plan

    print(f"fastconv     {fastconv.__version__}")
    print(f"python       {platform.python_version()} ({platform.machine()})")
    for mod in (np, scipy, numba, threadpoolctl):
        print(f"{mod.__name__:<12} {mod.__version__}")
    print(
        f"threads      {fastconv.get_num_threads()} (fastconv.set_num_threads / fastconv.threads)"
    )
    for line in _extension_lines():
        print(line)
    if _plan.cython_available():
        ext = _plan.kernels("cython")
        print(f"cython       built, OpenMP {'on' if ext.openmp else 'off (kernels run serially)'}")
    else:
        print("cython       not built (backend='auto' uses Numba)")
    simd = {"v4": "AVX-512", "v3": "AVX2+FMA"}.get(_plan.cpu_level(), "portable C")
    try:
        pk = _plan.kernels("cython", "packed")
        state = (
            f"{simd} float32 available" if pk.packed_supported("f") else "not supported by this CPU"
        )
        print(f"micro-kernel {state}")
    except ImportError:
        print("micro-kernel not built (the Numba kernels run instead)")
    try:
        wk = _plan.kernels("cython", "winograd")
        state = (
            f"{simd} float32" if wk.winograd_supported("f") else "portable C only (Numba twin used)"
        )
        print(f"winograd     F(2x2,3x3) {state}")
    except ImportError:
        print("winograd     Cython kernel not built (Numba twin used)")
    print(f"planner      {_cost_line()}")
    print(
        f"numba        threading layer (config) {numba.config.THREADING_LAYER}, "
        f"max threads {numba.config.NUMBA_NUM_THREADS}"
    )
    print(f"numba cache  {_cache_line()}")
    import scipy.linalg  # noqa: F401  (so SciPy's BLAS shows)

    libs = threadpoolctl.threadpool_info()
    for lib in libs:
        print(_threadpool_line(lib))
    hint = _blas_hint(libs, _plan.cpu_level())
    if hint:
        print(hint)
    return 0


def _blas_hint(libs, level):
    """A line for an AVX-512 CPU whose OpenBLAS runs AVX2 kernels, or "".

    OpenBLAS 0.3.31 (NumPy's and SciPy's wheels) does not recognise AMD Zen 5 as AVX-512 capable
    and picks its Haswell kernels; OPENBLAS_CORETYPE=SkylakeX, set before NumPy is imported, makes
    it use its AVX-512 ones (measured on a Zen 5: NumPy's 1024^3 sgemm 103 -> 196 GFLOP/s on one
    thread; fastconv's backward pass on the layer suite 1.94 -> 1.49x torch's time)."""
    slow = sorted(
        {
            lib.get("architecture")
            for lib in libs
            if lib.get("internal_api") == "openblas"
            and lib.get("architecture") in ("Haswell", "Zen", "Sandybridge")
        }
    )
    if level != "v4" or not slow:
        return ""
    return (
        f"blas hint    this CPU has AVX-512 but OpenBLAS runs its {'/'.join(slow)} kernels: "
        "OPENBLAS_CORETYPE=SkylakeX in the environment (before NumPy is imported) makes "
        "im2col+GEMM paths up to 2x faster"
    )


EXTENSIONS = ("conv", "signal", "packed", "winograd")


def _build_status():
    """What setup.py recorded about the C build (fastconv/_ext/build_status.json), or {}."""
    try:
        with resources.files("fastconv._ext").joinpath("build_status.json").open() as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _extension_stems(status):
    """The extensions this install should have: the four kernels modules, whatever the build
    recorded, and any .pyx beside them (a source tree), without the per-ISA variants."""
    stems = list(EXTENSIONS)
    names = list(status.get("built", [])) + list(status.get("failed", {}))
    names += [
        f.name[:-4] for f in resources.files("fastconv._ext").iterdir() if f.name.endswith(".pyx")
    ]
    for name in sorted(names):
        if not name.startswith("_isa_") and name not in stems:
            stems.append(name)
    return stems


def _cost_line():
    """Which measured cost table the planner reads on this machine (fastconv/_costs.py)."""
    from fastconv import _costs, _plan

    mine = _plan.cost_key()
    keys = {k[3] for k in _costs.COSTS if k[:3] == ("packed", "cython", "f")} or {
        k[3] for k in _costs.COSTS
    }
    used = next((k for k in _plan.cost_keys() if k in keys), None)
    if used == mine:
        return f"costs measured on this kind of CPU (table {mine})"
    return (
        f"costs of table {used} (none measured for {mine}: "
        "`python benchmarks/scripts/calibrate.py --write` measures one, fastconv.tune times a shape)"
    )


def _extension_lines():
    """Which C extensions import, and, for those that do not, why and what runs instead."""
    status = _build_status()
    failed = status.get("failed", {})
    stems = _extension_stems(status)
    missing = {}
    for stem in stems:
        try:
            importlib.import_module(f"fastconv._ext.{stem}")
        except ImportError as e:
            missing[stem] = failed.get(stem) or f"not built or not importable ({e})"
    if not missing:
        # only the builds this CPU runs: importing the AVX-512 build on an AVX2-only CPU would
        # stop the interpreter with SIGILL (its module code is compiled for x86-64-v4)
        from fastconv._plan import isa_runnable

        variants = [
            v
            for v in ("v3", "v4")
            if isa_runnable(f"_isa_conv_{v}") and _importable(f"fastconv._ext._isa_conv_{v}")
        ]
        isa = {"v3": "AVX2", "v4": "AVX-512"}
        extra = f"; ISA builds {', '.join(f'{v} ({isa[v]})' for v in variants)}" if variants else ""
        return [f"extensions   all {len(stems)} built ({', '.join(stems)}){extra}"]
    lines = [f"extensions   missing {len(missing)} of {len(stems)}: {', '.join(missing)}"]
    for reason in sorted(set(missing.values())):
        stems = [s for s, r in missing.items() if r == reason]
        lines.append(f"             {', '.join(stems)}: {reason}")
    lines.append(
        "             fastconv still works: every kernel has a Numba twin (fastconv/_jit) that "
        "backend='auto' uses, same results; first calls compile (`fastconv warmup` does it once)"
    )
    return lines


def _importable(name):
    try:
        importlib.import_module(name)
        return True
    except ImportError:
        return False


def _threadpool_line(lib):
    """One threadpoolctl entry: API, library, version (when known), threads, file."""
    name = lib.get("internal_api") or "?"
    if lib.get("user_api") == "openmp":
        # threadpoolctl knows an OpenMP runtime only by its file: "openmp openmp None" said nothing
        name = lib.get("prefix") or name
    what = [name] + [str(lib[k]) for k in ("version", "architecture") if lib.get(k)]
    return (
        f"{lib['user_api']:<12} {' '.join(what)} ({lib['num_threads']} threads) {lib['filepath']}"
    )


def _cache_line():
    """Whether the Numba kernels' on-disk cache is warm, from the cache indexes (no compile)."""
    from fastconv import _jit

    status = _jit.cache_status()
    if any(dtypes is None for _, dtypes in status):
        return "state unknown (this Numba's cache layout is not the one fastconv reads)"
    warm = sum(set(_jit.kernel_dtypes(name)) <= dtypes for name, dtypes in status)
    if warm == len(status):
        return f"warm: all {warm} kernels cached for {', '.join(_jit.DTYPES)}"
    return (
        f"cold: {warm} of {len(status)} kernels cached for {', '.join(_jit.DTYPES)} "
        "(first calls compile; `python -m fastconv warmup` compiles them all now)"
    )


def warmup(args):
    """Compile every Numba kernel for every dtype now (each is cached on disk for later processes)."""
    import numba

    from fastconv import _jit

    where = numba.config.CACHE_DIR or "__pycache__ beside the kernel sources"
    print(f"compiling every Numba kernel for {', '.join(_jit.DTYPES)} (cache: {where})")
    _jit.warmup(out=print)
    return 0


def bench(args):
    """The CNN layer suite: fastconv.conv2d against each installed peer, per thread count."""
    from fastconv import _bench

    layers = _bench.select_layers(_csv(args.layers))
    rows = _bench.layer_table(layers, threads=args.threads, peers=args.peers, repeat=args.repeat)
    if args.json:
        import fastconv

        with open(args.json, "w") as f:
            json.dump(
                {
                    "fastconv": fastconv.__version__,
                    "python": platform.python_version(),
                    "machine": platform.machine(),
                    "command": " ".join(["fastconv", "bench"] + args.argv),
                    "repeat": args.repeat,
                    "peers": _bench.peer_versions(args.peers)[0],
                    "rows": rows,
                },
                f,
                indent=1,
            )
        print(f"wrote {args.json}")
    return 0


def _csv(text):
    return [t.strip() for t in text.split(",") if t.strip()]


def _threads_arg(text):
    try:
        values = [int(t) for t in _csv(text)]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected thread counts like 1,2, got {text!r}")
    return values


def _layers_arg(text):
    from fastconv import _bench

    try:
        _bench.select_layers(_csv(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _peers_arg(text):
    from fastconv import _bench

    peers = [] if text.strip() == "none" else _csv(text)
    for q in peers:
        if q not in _bench.PEERS:
            raise argparse.ArgumentTypeError(
                f"unknown peer {q!r}: choose from {', '.join(_bench.PEERS)} or none"
            )
    return peers


def _version():
    import fastconv

    return fastconv.__version__


def parser():
    """The argument parser: every flag with its help and its default."""
    from fastconv import _bench, _threads

    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = argparse.ArgumentParser(
        prog="fastconv",
        description="Framework-free CPU convolution for NumPy: a demo, an install report, a "
        "layer benchmark and a Numba warm-up. Also runs as `python -m fastconv`.",
        formatter_class=fmt,
    )
    p.add_argument("--version", action="version", version=f"fastconv {_version()}")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.add_parser(
        "demo",
        help="run the engine on the shipped photograph, check it, time it against peers",
        description="Filter the shipped photograph and run a CNN layer on it; check the results "
        "against scipy.signal, torch (if installed) and a float64 loop; time it against peers.",
        formatter_class=fmt,
    )
    sub.add_parser(
        "info",
        help="versions, extensions, backends, threads and BLAS of this install",
        description="What this install can do: versions, which C extensions are built (and why "
        "not), OpenMP, the micro-kernels, Numba's threading and cache, the BLAS and OpenMP "
        "runtimes loaded.",
        formatter_class=fmt,
    )
    b = sub.add_parser(
        "bench",
        help="conv2d on the CNN layer suite against torch, onnxruntime and OpenVINO",
        description="Time fastconv.conv2d on real CNN layer shapes (float32) against each "
        "installed peer, interleaved in one process: best-of times, GFLOP/s, the best/best "
        "ratio and the median of per-round ratios. A peer that is not installed is skipped "
        "with a note. Progress goes to stderr, the table to stdout.",
        formatter_class=fmt,
    )
    every = list(_bench.PUBLIC_LAYERS) + list(_bench.EXTRA_LAYERS)
    b.add_argument(
        "--layers",
        type=_layers_arg,
        default="all",
        help="comma-separated layer names, or public (the public suite), extra or all; "
        f"the layers: {', '.join(every)}",
    )
    b.add_argument(
        "--threads",
        type=_threads_arg,
        default=str(_threads.get_num_threads()),
        help="comma-separated thread counts, one table each",
    )
    b.add_argument(
        "--peers",
        type=_peers_arg,
        default=",".join(_bench.PEERS),
        help="comma-separated peers: torch, onnxruntime, openvino (the last two run a one-node "
        "ONNX Conv model), sgemm (NumPy's GEMM on the equivalent matrix product); none for "
        "fastconv alone",
    )
    b.add_argument(
        "--repeat", type=int, default=7, help="interleaved timing rounds per layer (best of 3 each)"
    )
    b.add_argument(
        "--json", metavar="PATH", default=None, help="also write every result to this JSON file"
    )
    sub.add_parser(
        "warmup",
        help="compile every Numba kernel for float32 and float64 into the on-disk cache",
        description="Compile every Numba kernel for float32 and float64 now, so no later first "
        "call waits for the compiler (about 90 s of CPU, once per install).",
        formatter_class=fmt,
    )
    return p


def main(argv=None):
    """Run the command line; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    p = parser()
    args = p.parse_args(argv)
    if args.cmd is None:  # bare `fastconv`: the help, exit 0
        p.print_help()
        return 0
    args.argv = argv[argv.index(args.cmd) + 1 :]
    return {"demo": demo, "info": info, "bench": bench, "warmup": warmup}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
