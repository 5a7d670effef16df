"""The calls a new user makes outside the layer suite, against their peers in the same process.

Run from the repository root:  python benchmarks/scripts/planner_cases.py [--threads 1,2] [--rounds 40]

Each round calls fastconv and the peer once each, alternating which goes first; the table gives the
best time of each, the median of the per-round ratios (fastconv / peer) and the worst round's ratio.
Cases: a DeepLab dilated layer, ResNet-50's small-plane layers at batch 1, tiny convolutions (where
per-call overhead is the cost) and scipy.signal's most common small filtering calls.
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


def conv_cases():
    """(name, x shape, w shape, stride, padding, dilation, groups)."""
    return [
        ("deeplab_1x256x33x33_d4", (1, 256, 33, 33), (256, 256, 3, 3), 1, 4, 4, 1),
        ("r50_1x512x7x7", (1, 512, 7, 7), (512, 512, 3, 3), 1, 1, 1, 1),
        ("r50_1x256x14x14", (1, 256, 14, 14), (256, 256, 3, 3), 1, 1, 1, 1),
        ("r50_1x512x14x14_s2", (1, 512, 14, 14), (512, 512, 3, 3), 2, 1, 1, 1),
        ("tiny_1x3x8x8_to4", (1, 3, 8, 8), (4, 3, 3, 3), 1, 1, 1, 1),
        ("small_1x16x16x16", (1, 16, 16, 16), (16, 16, 3, 3), 1, 1, 1, 1),
    ]


def signal_cases():
    """(name, image shape, kernel shape, mode, peer name)."""
    return [
        ("corr2d_32x32_3x3_same_vs_ndimage", (32, 32), (3, 3), "same", "ndimage"),
        ("corr2d_32x32_3x3_same_vs_signal", (32, 32), (3, 3), "same", "signal"),
        ("corr2d_64x64_5x5_same_vs_signal", (64, 64), (5, 5), "same", "signal"),
    ]


def _time(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def compare(fa, fb, rounds, inner):
    """Interleaved timing: best of each and the per-round ratios a/b."""
    fa(), fb()  # warm
    ta, tb, ratios = [], [], []
    for r in range(rounds):
        pair = [(0, fa), (1, fb)] if r % 2 == 0 else [(1, fb), (0, fa)]
        got = {}
        for i, f in pair:
            got[i] = min(_time(f) for _ in range(inner))
        ta.append(got[0])
        tb.append(got[1])
        ratios.append(got[0] / got[1])
    return min(ta), min(tb), statistics.median(ratios), max(ratios)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--rounds", type=int, default=40, help="interleaved rounds (default 40)")
    ap.add_argument("--only", default="", help="comma-separated substrings of case names")
    args = ap.parse_args(argv)
    import scipy.ndimage
    import scipy.signal
    import torch

    rng = np.random.default_rng(0)
    keep = [s for s in args.only.split(",") if s]
    print("| case | threads | algorithm | peer | peer best | fastconv best | best ratio | median ratio | worst round |")
    print("|---|---|---|---|---|---|---|---|---|")
    for nt in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(nt)
        fastconv.set_num_threads(nt)
        for name, xs, ws, s, p, d, g in conv_cases():
            if keep and not any(k in name for k in keep):
                continue
            x = rng.standard_normal(xs, dtype=np.float32)
            w = rng.standard_normal(ws, dtype=np.float32)
            tx, tw = torch.from_numpy(x), torch.from_numpy(w)
            inner = 20 if x.size < 10**5 else 1
            algo = fastconv.cost.conv2d_cost(xs, ws, stride=s, padding=p, dilation=d, groups=g).algorithm

            def fa(x=x, w=w, s=s, p=p, d=d, g=g):
                fastconv.conv2d(x, w, stride=s, padding=p, dilation=d, groups=g)

            def fb(tx=tx, tw=tw, s=s, p=p, d=d, g=g):
                with torch.no_grad():
                    torch.nn.functional.conv2d(tx, tw, stride=s, padding=p, dilation=d, groups=g)

            a, b, med, worst = compare(fa, fb, args.rounds, inner)
            print(f"| {name} | {nt} | {algo} | torch | {b * 1e6:.1f} us | {a * 1e6:.1f} us | "
                  f"{a / b:.2f} | {med:.2f} | {worst:.2f} |", flush=True)
        for name, xs, ks, mode, peer in signal_cases():
            if keep and not any(k in name for k in keep):
                continue
            img, k = rng.standard_normal(xs), rng.standard_normal(ks)
            algo = fastconv.signal.choose_method(img, k, mode=mode).method

            def fa(img=img, k=k, mode=mode):
                fastconv.signal.correlate2d(img, k, mode=mode)

            if peer == "ndimage":
                # scipy.signal's "same" centring for odd kernels is ndimage's default origin
                def fb(img=img, k=k):
                    scipy.ndimage.correlate(img, k, mode="constant")
            else:
                def fb(img=img, k=k, mode=mode):
                    scipy.signal.correlate2d(img, k, mode=mode)

            a, b, med, worst = compare(fa, fb, args.rounds, 20)
            print(f"| {name} | {nt} | {algo} | scipy.{peer} | {b * 1e6:.1f} us | {a * 1e6:.1f} us | "
                  f"{a / b:.2f} | {med:.2f} | {worst:.2f} |", flush=True)


if __name__ == "__main__":
    main()
