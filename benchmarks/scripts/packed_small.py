"""The packed kernel on small planes and tiny calls against torch, the kernel call alone and conv2d.

Run from the repository root:  python benchmarks/scripts/packed_small.py [--threads 1,2] [--rounds 30]

Each round calls torch, conv2d and the packed kernel alone (preallocated workspace and output, the
planner's workspace size, no Python-side geometry or planning) once each, rotating the order; the
table gives the best time of each, GFLOP/s, and the median of the per-round ratios to torch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(_HERE)))  # the repository root

import fastconv  # noqa: E402
from fastconv._geometry import conv_geometry  # noqa: E402
from fastconv._plan import kernels  # noqa: E402

CASES = [
    # name, x shape, w shape, stride, padding, dilation
    ("r50_1x512x7x7", (1, 512, 7, 7), (512, 512, 3, 3), 1, 1, 1),
    ("r50_1x256x14x14", (1, 256, 14, 14), (256, 256, 3, 3), 1, 1, 1),
    ("r50_1x512x14x14_s2", (1, 512, 14, 14), (512, 512, 3, 3), 2, 1, 1),
    ("tiny_1x3x8x8_to4", (1, 3, 8, 8), (4, 3, 3, 3), 1, 1, 1),
    ("small_1x16x16x16", (1, 16, 16, 16), (16, 16, 3, 3), 1, 1, 1),
    ("deeplab_1x256x33x33_d4", (1, 256, 33, 33), (256, 256, 3, 3), 1, 4, 4),
]


def _best(fn, inner):
    best = float("inf")
    for _ in range(inner):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def kernel_call(x, w, s, p, d, nt):
    """The packed kernel alone, as conv._dispatch calls it, with its buffers made up front."""
    pk = kernels("cython", "packed")
    x4, w4, _, g = conv_geometry(x, w, None, s, p, d, 1)
    geo = g.as_array()
    out = np.empty((g.N, g.K, g.Ho, g.Wo), g.dtype)
    ws = np.empty(pk.packed_workspace_size(geo, nt), g.dtype)
    bias = np.zeros(g.K, g.dtype)

    def run():
        pk.conv_packed(x4, w4, bias, False, geo, out, ws, nt)

    return run, out, g.flops


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--only", default="", help="comma-separated substrings of case names")
    args = ap.parse_args(argv)
    import torch

    rng = np.random.default_rng(0)
    keep = [k for k in args.only.split(",") if k]
    print(
        "| case | thr | conv2d algo | torch | packed kernel | conv2d | kernel/torch best | "
        "median | conv2d/torch median | GFLOP/s torch, kernel |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for nt in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(nt)
        fastconv.set_num_threads(nt)
        for name, xs, wsh, s, p, d in CASES:
            if keep and not any(k in name for k in keep):
                continue
            x = rng.standard_normal(xs, dtype=np.float32)
            w = rng.standard_normal(wsh, dtype=np.float32)
            tx, tw = torch.from_numpy(x), torch.from_numpy(w)
            kern, kout, flops = kernel_call(x, w, s, p, d, nt)
            algo = fastconv.cost.conv2d_cost(xs, wsh, stride=s, padding=p, dilation=d).algorithm

            def f_torch(tx=tx, tw=tw, s=s, p=p, d=d):
                with torch.no_grad():
                    return torch.nn.functional.conv2d(tx, tw, stride=s, padding=p, dilation=d)

            def f_conv(x=x, w=w, s=s, p=p, d=d):
                return fastconv.conv2d(x, w, stride=s, padding=p, dilation=d)

            ref = f_torch().numpy()
            kern()
            err = np.abs(kout - ref).max() / np.abs(ref).max()
            assert err < 1e-4, (name, err)
            inner = 20 if flops < 5e7 else 1
            fns = [f_torch, kern, f_conv]
            for f in fns:
                f()
            times = [[], [], []]
            for r in range(args.rounds):
                order = [(r + i) % 3 for i in range(3)]
                for i in order:
                    times[i].append(_best(fns[i], inner))
            bt = [min(t) for t in times]
            rk = statistics.median(a / b for a, b in zip(times[1], times[0], strict=True))
            rc = statistics.median(a / b for a, b in zip(times[2], times[0], strict=True))
            print(
                f"| {name} | {nt} | {algo} | {bt[0] * 1e6:.1f} us | {bt[1] * 1e6:.1f} us | "
                f"{bt[2] * 1e6:.1f} us | {bt[1] / bt[0]:.2f} | {rk:.2f} | {rc:.2f} | "
                f"{flops / bt[0] / 1e9:.1f}, {flops / bt[1] / 1e9:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
