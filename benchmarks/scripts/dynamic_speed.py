"""The must-show speed figures of dynamic convolution and of grouped / depthwise conv2d, vs torch.

Run from the repository root:  python benchmarks/scripts/dynamic_speed.py [--threads 2] [--repeat 15]
One process, float32, calls interleaved and the best of `repeat` kept (the machine is shared and
noisy), torch and fastconv on the same thread count.  Ratio = fastconv time / torch time (< 1:
fastconv faster).
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

import fastconv  # noqa: E402
from fastconv.cost import conv2d_cost  # noqa: E402
from fastconv.dynamic import _validate, dynamic_plan  # noqa: E402

# name: (N, C, H, W, K, kh, kw, stride, pad, dil, groups, E)
DYNAMIC = {
    "dyn b8 c64 56x56 3x3 E4": (8, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 4),
    "dyn b8 c128 28x28 g2 E4": (8, 128, 28, 28, 128, 3, 3, 1, 1, 1, 2, 4),
    "dyn b2 resnext g32 E4": (2, 256, 28, 28, 256, 3, 3, 1, 1, 1, 32, 4),
    "dyn b8 dw c144 56x56 E4": (8, 144, 56, 56, 144, 3, 3, 1, 1, 1, 144, 4),
}
# name: (N, C, H, W, K, kh, kw, stride, pad, dil, groups)
CONV = {
    "resnext b2 256 28x28 g32": (2, 256, 28, 28, 256, 3, 3, 1, 1, 1, 32),
    "resnext b4 256 28x28 g32": (4, 256, 28, 28, 256, 3, 3, 1, 1, 1, 32),
    "resnext b2 512 14x14 g32 s1": (2, 512, 14, 14, 512, 3, 3, 1, 1, 1, 32),
    "dw b4 c144 56x56": (4, 144, 56, 56, 144, 3, 3, 1, 1, 1, 144),
    "dw x2 b4 c144->288 56x56": (4, 144, 56, 56, 288, 3, 3, 1, 1, 1, 144),
    "dw x2 b4 c64->128 s2": (4, 64, 56, 56, 128, 3, 3, 2, 1, 1, 64),
}


def best_interleaved(fns, repeat, min_time=0.02):
    """Best time per call of each function; calls interleaved so noise hits all alike."""
    for f in fns:
        f()
    inner = []
    for f in fns:
        t0 = time.perf_counter()
        f()
        inner.append(max(1, int(min_time / max(time.perf_counter() - t0, 1e-6))))
    best = [math.inf] * len(fns)
    for _ in range(repeat):
        for i, f in enumerate(fns):
            t0 = time.perf_counter()
            for _ in range(inner[i]):
                f()
            best[i] = min(best[i], (time.perf_counter() - t0) / inner[i])
    return best


def dynamic_case(torch, spec, rng, backend):
    """((torch groups, torch loop, fastconv loop, dynamic_conv2d), method, flops) of a spec."""
    F = torch.nn.functional
    N, C, H, W, K, kh, kw, s, p, d, g, E = spec
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    bank = rng.standard_normal((E, K, C // g, kh, kw), dtype=np.float32) / 10
    z = rng.standard_normal((N, E))
    att = (np.exp(z) / np.exp(z).sum(1, keepdims=True)).astype(np.float32)
    bb = rng.standard_normal((E, K), dtype=np.float32)
    xt, bt, at, bbt = (torch.from_numpy(a) for a in (x, bank, att, bb))
    flat = bank.reshape(E, -1)

    def t_groups():
        with torch.no_grad():
            w = (at @ bt.reshape(E, -1)).reshape(N * K, C // g, kh, kw)
            y = F.conv2d(xt.reshape(1, N * C, H, W), w, (at @ bbt).reshape(-1), s, p, d, g * N)
            return y.reshape(N, K, *y.shape[2:])

    def t_loop():
        with torch.no_grad():
            tflat = bt.reshape(E, -1)
            ys = [
                F.conv2d(
                    xt[i : i + 1],
                    (at[i] @ tflat).reshape(K, C // g, kh, kw),
                    at[i] @ bbt,
                    s,
                    p,
                    d,
                    g,
                )
                for i in range(N)
            ]
            return torch.cat(ys)

    def f_loop():
        ys = [
            fastconv.conv2d(
                x[i : i + 1],
                (att[i] @ flat).reshape(K, C // g, kh, kw),
                att[i] @ bb,
                s,
                p,
                d,
                g,
                backend=backend,
            )
            for i in range(N)
        ]
        return np.concatenate(ys)

    def f_dyn():
        return fastconv.dynamic_conv2d(x, bank, att, bb, s, p, d, g, backend=backend)

    ref = t_groups().numpy()
    for f in (t_loop, f_loop, f_dyn):
        err = np.abs(np.asarray(f()) - ref).max() / np.abs(ref).max()
        assert err < 1e-4, (spec, f.__name__, err)
    geom = _validate(x, bank, att, bb, s, p, d, g)[4]
    method = dynamic_plan(geom, E, backend).method
    return (t_groups, t_loop, f_loop, f_dyn), method, 2.0 * N * K * geom.P * geom.R


def dynamic_rows(torch, repeat, backend, only=""):
    rng = np.random.default_rng(1234)
    print(
        f"{'dynamic (float32)':26s} {'method':>7s} {'torch grp':>9s} {'torch loop':>10s} "
        f"{'fc loop':>8s} {'dynamic':>8s} {'GF/s':>6s} {'vs grp':>7s}"
    )
    for name, spec in DYNAMIC.items():
        if only not in name:
            continue
        fns, method, flops = dynamic_case(torch, spec, rng, backend)
        tg, tl, fl, fd = best_interleaved(fns, repeat)
        print(
            f"{name:26s} {method:>7s} {tg * 1e3:9.2f} {tl * 1e3:10.2f} {fl * 1e3:8.2f} "
            f"{fd * 1e3:8.2f} {flops / fd / 1e9:6.1f} {fd / tg:7.2f}"
        )


def conv_case(torch, spec, rng, backends):
    """(torch conv2d, fastconv.conv2d per backend...) for a spec, checked against each other."""
    N, C, H, W, K, kh, kw, s, p, d, g = spec
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((K, C // g, kh, kw), dtype=np.float32)
    b = rng.standard_normal(K, dtype=np.float32)
    xt, wt, bt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)

    def t_conv():
        with torch.no_grad():
            return torch.nn.functional.conv2d(xt, wt, bt, s, p, d, g)

    def make(be):
        def f_conv():
            return fastconv.conv2d(x, w, b, s, p, d, g, backend=be)

        return f_conv

    fns = [t_conv] + [make(be) for be in backends]
    ref = t_conv().numpy()
    for f, be in zip(fns[1:], backends, strict=True):
        err = np.abs(f() - ref).max() / np.abs(ref).max()
        assert err < 1e-4, (spec, be, err)
    return fns, conv2d_cost(x.shape, w.shape, s, p, d, g)


def conv_rows(torch, repeat, backends, only=""):
    rng = np.random.default_rng(1234)
    head = f"{'conv2d (float32)':26s} {'algorithm':>10s} {'torch ms':>9s} {'GF/s':>6s}"
    for be in backends:
        head += f" {be + ' ms':>10s} {'GF/s':>6s} {'ratio':>6s}"
    print(head)
    for name, spec in CONV.items():
        if only not in name:
            continue
        fns, cost = conv_case(torch, spec, rng, backends)
        t = best_interleaved(fns, repeat)
        line = f"{name:26s} {cost.algorithm:>10s} {t[0] * 1e3:9.3f} {cost.flops / t[0] / 1e9:6.1f}"
        for tb in t[1:]:
            line += f" {tb * 1e3:10.3f} {cost.flops / tb / 1e9:6.1f} {tb / t[0]:6.2f}"
        print(line)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--backend", choices=["auto", "cython", "numba"], default="auto")
    ap.add_argument("--skip", choices=["dynamic", "conv"], default=None)
    ap.add_argument("--only", default="", help="run only rows whose name contains this text")
    ap.add_argument("--conv-backends", default="cython,numba", help="conv2d backends to time")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    fastconv.set_num_threads(args.threads)
    print("command: python " + " ".join([os.path.relpath(__file__)] + (argv or sys.argv[1:])))
    print(
        f"float32; threads={args.threads} (torch and fastconv); best of {args.repeat} interleaved; "
        f"torch {torch.__version__}"
    )
    if args.skip != "dynamic":
        dynamic_rows(torch, args.repeat, args.backend, args.only)
    if args.skip != "conv":
        conv_rows(torch, args.repeat, args.conv_backends.split(","), args.only)


if __name__ == "__main__":
    main()
