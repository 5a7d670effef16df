"""conv1d and conv3d against torch on TCN, 3-D U-Net and C3D layers, interleaved in one process.

Run from the repository root:  python benchmarks/scripts/convnd_speed.py [--threads 2] [--rounds 7]

For each layer: fastconv's and torch's best time, GFLOP/s, and the median of per-round time ratios
(fastconv / torch; below 1 is faster).  Both libraries get the same thread count.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(_HERE)))  # the repository root

import fastconv  # noqa: E402

# (name, rank, x shape, weight shape, kwargs)
LAYERS = [
    ("tcn d1", 1, (8, 256, 4096), (256, 256, 3), dict(padding=1, dilation=1)),
    ("tcn d4", 1, (8, 256, 4096), (256, 256, 3), dict(padding=4, dilation=4)),
    ("tcn d16", 1, (8, 256, 4096), (256, 256, 3), dict(padding=16, dilation=16)),
    ("fir 63 taps", 1, (4, 16, 16384), (16, 16, 63), dict(padding=31)),
    ("unet3d 32->32", 3, (1, 32, 64, 64, 64), (32, 32, 3, 3, 3), dict(padding=1)),
    ("unet3d 64->64 s2", 3, (1, 64, 64, 64, 64), (64, 64, 3, 3, 3), dict(stride=2, padding=1)),
    ("c3d 64->128", 3, (1, 64, 16, 56, 56), (128, 64, 3, 3, 3), dict(padding=1)),
    ("dw3d 64", 3, (1, 64, 32, 32, 32), (64, 1, 3, 3, 3), dict(padding=1, groups=64)),
]


def _time(fn, *args, **kw):
    t = time.perf_counter()
    fn(*args, **kw)
    return time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="threads for both libraries")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds per layer")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    fastconv.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(
        f"threads {args.threads}, {args.dtype}, {args.rounds} rounds, load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'layer':18s} {'fastconv ms':>11s} {'GFLOP/s':>8s} {'torch ms':>9s} {'GFLOP/s':>8s} "
        f"{'median':>7s} {'best':>6s}"
    )
    ratios = []
    for name, rank, xs, ws, kw in LAYERS:
        x = rng.standard_normal(xs, dtype=np.float32).astype(args.dtype)
        w = rng.standard_normal(ws, dtype=np.float32).astype(args.dtype)
        f = fastconv.conv1d if rank == 1 else fastconv.conv3d
        tf = torch.nn.functional.conv1d if rank == 1 else torch.nn.functional.conv3d
        xt, wt = torch.from_numpy(x), torch.from_numpy(w)
        y = f(x, w, **kw)
        with torch.no_grad():
            ref = tf(xt, wt, **kw).numpy()
        err = float(np.abs(y - ref).max() / max(np.abs(ref).max(), 1e-30))
        flops = 2.0 * math.prod(y.shape) * math.prod(ws[1:])
        a, b = [], []
        with torch.no_grad():
            for _ in range(args.rounds):
                a.append(_time(f, x, w, **kw))
                b.append(_time(tf, xt, wt, **kw))
        r = [p / q for p, q in zip(a, b, strict=True)]
        ratios.append(statistics.median(r))
        print(
            f"{name:18s} {min(a) * 1e3:11.2f} {flops / min(a) / 1e9:8.1f} {min(b) * 1e3:9.2f} "
            f"{flops / min(b) / 1e9:8.1f} {statistics.median(r):7.2f} {min(a) / min(b):6.2f}"
            f"   (rel err {err:.1e})"
        )
    g = math.exp(sum(math.log(v) for v in ratios) / len(ratios))
    print(f"geomean of median ratios {g:.2f}, worst {max(ratios):.2f}")


if __name__ == "__main__":
    main()
