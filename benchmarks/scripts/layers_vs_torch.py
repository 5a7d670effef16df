"""fastconv.conv2d against PyTorch CPU (oneDNN) on the public layer suite, per layer and geomean.

Run from the repository root:  python benchmarks/scripts/layers_vs_torch.py [--threads 2] [--repeat 15]
Same process, interleaved best-of-N, float32; the algorithm the planner picked, NumPy's sgemm on
each layer's equivalent GEMM, and the packed direct kernel alone (preallocated) for reference.
GFLOP/s count direct-convolution FLOPs, so Winograd's (fewer multiplications) are "effective".
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(_HERE)))  # the repository root

from fastconv._bench import EXTRA_LAYERS, load_public_layers  # noqa: E402

load_layers = load_public_layers


class PackedConv:
    """Allocate once, then call the packed kernel: what the planner will do for this route."""

    def __init__(self, kernels, x, w, b, s, p, d, g, nthreads):
        from fastconv._geometry import conv_geometry

        self.k = kernels
        self.x, self.w, b4, geo = conv_geometry(x, w, b, s, p, d, g)
        self.geo = geo.as_array()
        self.out = np.empty((geo.N, geo.K, geo.Ho, geo.Wo), geo.dtype)
        self.ws = np.empty(kernels.packed_workspace_size(self.geo, nthreads), geo.dtype)
        self.b = b4 if b4 is not None else np.zeros(0, geo.dtype)
        self.has_bias = b4 is not None
        self.nthreads = nthreads

    def __call__(self):
        self.k.conv_packed(
            self.x, self.w, self.b, self.has_bias, self.geo, self.out, self.ws, self.nthreads
        )
        return self.out


def best_interleaved(fns, repeat, min_time=0.02, samples=None):
    """Best time of each function, calls interleaved so machine noise hits all alike.

    `samples`, a list, receives each round's times (for ratios of neighbouring calls).
    """
    for f in fns:
        f()
    inner = []
    for f in fns:
        t0 = time.perf_counter()
        f()
        dt = time.perf_counter() - t0
        inner.append(max(1, int(min_time / max(dt, 1e-6))))
    best = [math.inf] * len(fns)
    for _ in range(repeat):
        row = []
        for i, f in enumerate(fns):
            t0 = time.perf_counter()
            for _ in range(inner[i]):
                f()
            row.append((time.perf_counter() - t0) / inner[i])
            best[i] = min(best[i], row[-1])
        if samples is not None:
            samples.append(row)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument(
        "--min-time", type=float, default=0.02, help="seconds per sample (0: one call per sample)"
    )
    ap.add_argument("--extra", action="store_true", help="also run shapes beyond the public suite")
    ap.add_argument("--backend", choices=["cython", "numba"], default="cython")
    ap.add_argument("--only", default="", help="comma-separated layer names")
    args = ap.parse_args(argv)

    import torch
    from threadpoolctl import threadpool_limits

    if args.backend == "cython":
        from fastconv._ext import packed as kernels
    else:
        from fastconv._jit import packed as kernels
    import fastconv
    from fastconv import conv2d
    from fastconv.cost import conv2d_cost

    fastconv.set_num_threads(args.threads)

    torch.set_num_threads(args.threads)
    layers, source = load_layers()
    rows = [(n, v, "") for n, v in layers.items()]
    if args.extra:
        rows += [(n, v, "extra") for n, v in EXTRA_LAYERS.items()]
    if args.only:
        keep = set(args.only.split(","))
        rows = [r for r in rows if r[0] in keep]

    print("command: python " + " ".join([os.path.relpath(__file__)] + (argv or sys.argv[1:])))
    print(
        f"layers: {source}; float32; threads={args.threads}; best of {args.repeat} interleaved;"
        f" kernel backend={args.backend}; packed_supported={kernels.packed_supported('f')}"
    )
    hdr = (
        f"{'layer':18s} {'algorithm':9s} {'torch ms':>9s} {'conv2d ms':>9s} {'ratio':>6s} "
        f"{'med':>5s} {'torch GF':>8s} {'conv2d GF':>9s} {'sgemm GF':>8s} {'%sgemm':>6s} "
        f"{'packed ms':>9s} {'ratio':>6s}"
    )
    print(hdr)
    rng = np.random.default_rng(1234)
    ratios, meds, ratios_pk = [], [], []
    for name, (N, C, H, W, K, kh, kw, s, p, d, g), tag in rows:
        x = rng.standard_normal((N, C, H, W), dtype=np.float32)
        w = rng.standard_normal((K, C // g, kh, kw), dtype=np.float32) * 0.1
        b = rng.standard_normal(K, dtype=np.float32)
        Ho = (H + 2 * p - d * (kh - 1) - 1) // s + 1
        Wo = (W + 2 * p - d * (kw - 1) - 1) // s + 1
        Kg, R = K // g, C // g * kh * kw
        flops = (
            2.0 * N * K * Ho * Wo * R
        )  # direct-convolution FLOPs (Winograd's rate is "effective")
        xt, wt, bt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
        fc = PackedConv(kernels, x, w, b, s, p, d, g, args.threads)
        ref = torch.nn.functional.conv2d(xt, wt, bt, s, p, d, g).numpy()
        kwargs = dict(stride=s, padding=p, dilation=d, groups=g)
        for got in (fc(), conv2d(x, w, b, **kwargs)):
            err = np.abs(got - ref).max() / np.abs(ref).max()
            assert err < 1e-4, (name, err)
        algorithm = conv2d_cost(x.shape, w.shape, **kwargs).algorithm
        # the equivalent GEMM (one group's, scaled to all groups): (Kg x R) @ (R x N*Ho*Wo)
        ga = rng.standard_normal((Kg, R), dtype=np.float32)
        gb = rng.standard_normal((R, N * Ho * Wo), dtype=np.float32)
        conv_args = (xt, wt, bt, s, p, d, g)
        fns = [
            lambda a=conv_args: torch.nn.functional.conv2d(*a),
            lambda a=(x, w, b), k=kwargs: conv2d(*a, **k),
            fc,
        ]
        rounds = []
        t = best_interleaved(fns, args.repeat, args.min_time, rounds)
        # on a shared machine a slow spell can hit one side's best only: the median over rounds
        # of the ratio of neighbouring calls is the steadier figure
        med = float(np.median([r[1] / r[0] for r in rounds]))
        with threadpool_limits(args.threads, user_api="blas"):
            (tg,) = best_interleaved(
                [lambda a=ga, b=gb: a @ b], max(3, args.repeat // 3), args.min_time
            )
        sgemm_gf = 2.0 * Kg * R * N * Ho * Wo / tg / 1e9
        ratio, ratio_pk = t[1] / t[0], t[2] / t[0]
        if not tag:
            ratios.append(ratio)
            meds.append(med)
            ratios_pk.append(ratio_pk)
        line = (
            f"{name:18s} {algorithm:9s} {t[0] * 1e3:9.3f} {t[1] * 1e3:9.3f} {ratio:6.2f} "
            f"{med:5.2f} {flops / t[0] / 1e9:8.1f} {flops / t[1] / 1e9:9.1f} {sgemm_gf:8.1f} "
            f"{100 * flops / t[1] / 1e9 / sgemm_gf:5.0f}% {t[2] * 1e3:9.3f} {ratio_pk:6.2f}"
        )
        print(line + (f"  ({tag})" if tag else ""))

    def gmean(v):
        return math.exp(sum(map(math.log, v)) / len(v)) if v else float("nan")

    print(
        f"geomean fastconv.conv2d/torch over the public suite: {gmean(ratios):.3f} (best/best), "
        f"{gmean(meds):.3f} (median of neighbouring-call ratios), max {max(ratios):.2f}; "
        f"packed kernel alone: {gmean(ratios_pk):.3f}"
    )


if __name__ == "__main__":
    main()
