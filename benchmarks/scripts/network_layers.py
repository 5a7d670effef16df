"""Every conv layer of ResNet-50 and MobileNetV2 (224x224 input) on 1 and on 2 threads, torch alongside.

Run from the repository root:  python benchmarks/scripts/network_layers.py [--batch 1] [--rounds 15]

For each distinct layer shape (with how often the network runs it): the planner's algorithm and
thread count, fastconv's best time with a 1-thread budget and with a 2-thread budget, their ratio
(the planner may keep small layers on one thread, so the 2-thread budget should never be slower),
and torch's 2-thread time.  Calls are interleaved; the ratio column is the median of per-round
ratios.  The last lines give each network's conv time summed over its layers.
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


def resnet50_layers(n=1):
    """[(name, (N, C, H, W, K, kh, kw, stride, pad, dil, groups), count)] of ResNet-50 (v1.5:
    the stride on the 3x3 of each first bottleneck)."""
    layers = [("stem", (n, 3, 224, 224, 64, 7, 7, 2, 3, 1, 1), 1)]
    cin, hw = 64, 56
    for i, (width, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
        out = 4 * width
        for b in range(blocks):
            s = 2 if (b == 0 and i > 0) else 1
            c = cin if b == 0 else out
            ho = hw // s
            layers.append((f"l{i + 1}_1x1a", (n, c, hw, hw, width, 1, 1, 1, 0, 1, 1), 1))
            layers.append((f"l{i + 1}_3x3", (n, width, hw, hw, width, 3, 3, s, 1, 1, 1), 1))
            layers.append((f"l{i + 1}_1x1b", (n, width, ho, ho, out, 1, 1, 1, 0, 1, 1), 1))
            if b == 0:
                layers.append((f"l{i + 1}_down", (n, c, hw, hw, out, 1, 1, s, 0, 1, 1), 1))
            hw = ho
        cin = out
    return _count(layers)


def mobilenetv2_layers(n=1):
    """The conv layers of MobileNetV2 (width 1.0)."""
    layers = [("stem", (n, 3, 224, 224, 32, 3, 3, 2, 1, 1, 1), 1)]
    cin, hw = 32, 112
    for t, c, reps, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                          (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for r in range(reps):
            stride = s if r == 0 else 1
            hid = cin * t
            if t != 1:
                layers.append((f"expand{hid}", (n, cin, hw, hw, hid, 1, 1, 1, 0, 1, 1), 1))
            layers.append((f"dw{hid}_s{stride}", (n, hid, hw, hw, hid, 3, 3, stride, 1, 1, hid), 1))
            hw //= stride
            layers.append((f"project{c}", (n, hid, hw, hw, c, 1, 1, 1, 0, 1, 1), 1))
            cin = c
    layers.append(("head", (n, 320, 7, 7, 1280, 1, 1, 1, 0, 1, 1), 1))
    return _count(layers)


def _count(layers):
    seen = {}
    for name, spec, k in layers:
        if spec in seen:
            seen[spec][2] += k
        else:
            seen[spec] = [name, spec, k]
    return [tuple(v) for v in seen.values()]


def _best(fn, inner):
    t = time.perf_counter()
    for _ in range(inner):
        fn()
    return (time.perf_counter() - t) / inner


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1, help="batch size (default 1)")
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    ap.add_argument("--net", default="resnet50,mobilenetv2", help="comma-separated networks")
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    nets = {"resnet50": resnet50_layers, "mobilenetv2": mobilenetv2_layers}
    for net in args.net.split(","):
        print(f"\n{net}, batch {args.batch}, float32")
        print("| layer | shape (N,C,H,W,K,kh,kw,s,p,d,g) | x | plan (2-thread budget) | 1-thread budget | "
              "2-thread budget | 2/1 median | torch 2 threads |")
        print("|---|---|---|---|---|---|---|---|")
        total = {"1": 0.0, "2": 0.0, "torch": 0.0}
        worst = (0.0, "")
        for name, spec, count in nets[net](args.batch):
            N, C, H, W, K, kh, kw, s, p, d, g = spec
            x = rng.standard_normal((N, C, H, W)).astype(np.float32)
            w = rng.standard_normal((K, C // g, kh, kw)).astype(np.float32)
            kw_ = dict(stride=s, padding=p, dilation=d, groups=g)
            with fastconv.threads(2):
                fastconv.conv2d(x, w, **kw_)
                from fastconv import _plan
                from fastconv._geometry import geometry_from_shapes

                plan = _plan.plan_conv2d(geometry_from_shapes(x.shape, w.shape, s, p, d, g))
            inner = max(1, int(2e-3 / max(1e-6, _best(lambda: fastconv.conv2d(x, w, **kw_), 1))))
            t1, t2, tt, ratios = [], [], [], []
            if torch is not None:
                xt, wt = torch.from_numpy(x), torch.from_numpy(w)
            for r in range(args.rounds):
                with fastconv.threads(1):
                    a = _best(lambda: fastconv.conv2d(x, w, **kw_), inner)
                with fastconv.threads(2):
                    b = _best(lambda: fastconv.conv2d(x, w, **kw_), inner)
                t1.append(a)
                t2.append(b)
                ratios.append(b / a)
                if torch is not None:
                    torch.set_num_threads(2)
                    with torch.no_grad():
                        tt.append(_best(lambda: torch.nn.functional.conv2d(xt, wt, None, s, p, d, g), inner))
            med = statistics.median(ratios)
            if med > worst[0]:
                worst = (med, name)
            total["1"] += count * min(t1)
            total["2"] += count * min(t2)
            total["torch"] += count * (min(tt) if tt else 0)
            torch_s = f"{min(tt) * 1e3:.3f} ms" if tt else "-"
            print(f"| {name} | {spec} | {count} | {plan.algorithm}/{plan.nthreads} | {min(t1) * 1e3:.3f} ms | "
                  f"{min(t2) * 1e3:.3f} ms | {med:.2f} | {torch_s} |", flush=True)
        print(f"{net} conv layers summed: 1-thread budget {total['1'] * 1e3:.2f} ms, 2-thread budget "
              f"{total['2'] * 1e3:.2f} ms, torch 2 threads {total['torch'] * 1e3:.2f} ms; "
              f"worst 2/1 median ratio {worst[0]:.2f} ({worst[1]})")


if __name__ == "__main__":
    main()
