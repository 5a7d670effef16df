"""Backward-pass speed against torch autograd, same process, interleaved; and the backward workspace.

    python benchmarks/scripts/backward_speed.py [--rounds 15] [--threads 2] [--only backward|transpose|memory]

conv2d_backward (grad_x and grad_weight, no bias) on the public layer suite (fastconv._bench.PUBLIC_LAYERS)
against torch.autograd.grad of the same conv2d; conv_transpose2d on decoder layers (U-Net 2x2 stride-2
up-convolutions, DCGAN 4x4 stride 2) against torch.nn.functional.conv_transpose2d; float32.  Each round
runs every side as a short block (one untimed call, three timed); the table gives the best time of each
side, the median and the best of the per-round ratios, and the ratio of the two best times
(fastconv / torch: below 1 means fastconv is faster).  The machine this was written on is shared: quote figures as noisy and re-run on a quiet one.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
import tracemalloc

import numpy as np

import fastconv
import fastconv._plan
from fastconv._bench import PUBLIC_LAYERS, out_hw

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from benchmarks.bench_grad import (  # noqa: E402  (the asv suite's layers and callables)
    DECODER_LAYERS,
    backward_callable,
    transpose_callable,
)

#: calls per callable per round: 0 = one call each, alternating, with nothing in between
#: (--alternate: what a training loop does, where each call's buffers are freed before the next
#: library's call; a block of warm repeats hides page faults on freed workspace)
BLOCK = 3


def rounds(fns, n, block=None):
    """Per-round best time of each callable: each round runs each callable as a short block
    (or, with BLOCK 0, once each in turn)."""
    block = BLOCK if block is None else block
    for f in fns:
        f()
    if block == 0:
        out = []
        for _ in range(n):
            row = []
            for f in fns:
                t = time.perf_counter()
                f()
                row.append(time.perf_counter() - t)
            out.append(row)
        return out
    out = []
    for _ in range(n):
        row = []
        for f in fns:
            f()
            best = math.inf
            for _ in range(block):
                t = time.perf_counter()
                f()
                best = min(best, time.perf_counter() - t)
            row.append(best)
        out.append(row)
    return out


def summarise(name, flop, rs):
    ours = min(r[0] for r in rs)
    theirs = min(r[1] for r in rs)
    ratios = [r[0] / r[1] for r in rs]
    med = statistics.median(ratios)
    print(
        f"{name:<22} {ours * 1e3:8.2f}ms {flop / ours / 1e9:6.1f} {theirs * 1e3:8.2f}ms "
        f"{flop / theirs / 1e9:6.1f} {med:7.2f} {min(ratios):6.2f} {ours / theirs:8.2f}"
    )
    return med


def header(what):
    print(what)
    print(
        f"{'layer':<22} {'fastconv':>10} {'GF/s':>6} {'torch':>10} {'GF/s':>6} "
        f"{'median':>7} {'best':>6} {'best/best':>8}   (ratios fastconv/torch)"
    )


def geomean(v):
    return math.exp(sum(map(math.log, v)) / len(v))


def backward_table(torch, n):
    header("conv2d_backward (grad_x + grad_weight) vs torch.autograd.grad, float32")
    meds = []
    for name, spec in PUBLIC_LAYERS.items():
        N, C, H, W, K, kh, kw, s, p, d, g = spec
        Ho, Wo = out_hw(spec)
        fns = [
            backward_callable(spec, fastconv._plan.resolve_backend("auto")),
            backward_callable(spec, "torch"),
        ]
        flop = 2 * 2.0 * N * K * Ho * Wo * (C // g) * kh * kw  # two gradients, each the forward's
        meds.append(summarise(name, flop, rounds(fns, n)))
    print(f"geomean of median ratios: {geomean(meds):.3f} (max {max(meds):.2f})")


def transpose_table(torch, n):
    header("conv_transpose2d vs torch.nn.functional.conv_transpose2d, float32")
    meds = []
    for name, spec in DECODER_LAYERS.items():
        N, Ci, H, W, Co, k, s, p = spec
        fns = [
            transpose_callable(spec, fastconv._plan.resolve_backend("auto")),
            transpose_callable(spec, "torch"),
        ]
        flop = 2.0 * N * Ci * H * W * Co * k * k
        meds.append(summarise(name, flop, rounds(fns, n)))
    print(f"geomean of median ratios: {geomean(meds):.3f} (max {max(meds):.2f})")


def memory():
    """tracemalloc peak of conv2d_backward on (32, 64, 56, 56), 64->64 3x3, beyond its results."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 64, 56, 56), dtype=np.float32)
    w = rng.standard_normal((64, 64, 3, 3), dtype=np.float32)
    go = rng.standard_normal((32, 64, 56, 56), dtype=np.float32)
    fastconv.conv2d_backward(x, w, go, padding=1)  # compile and plan outside the trace
    held = fastconv._plan.scratch_bytes()
    fastconv._plan.free_scratch()  # the traced call allocates its scratch afresh: counted
    tracemalloc.start()
    gx, gw, gb = fastconv.conv2d_backward(x, w, go, padding=1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    results = gx.nbytes + gw.nbytes + gb.nbytes
    cost = fastconv.cost.conv2d_cost(x.shape, w.shape, padding=1, pass_="backward")
    print(
        f"backward workspace, x (32, 64, 56, 56) float32 64->64 3x3 padding 1: tracemalloc peak "
        f"{peak / 2**20:.1f} MiB, of which results {results / 2**20:.1f} MiB: workspace "
        f"{(peak - results) / 2**20:.1f} MiB (the whole im2col matrix would be "
        f"{cost.im2col_bytes / 2**20:.1f} MiB); scratch kept between calls "
        f"{held / 2**20:.1f} MiB"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", choices=("backward", "transpose", "memory"))
    ap.add_argument(
        "--alternate",
        action="store_true",
        help="one call of each library in turn per round (no warm block of repeats)",
    )
    a = ap.parse_args()
    global BLOCK
    if a.alternate:
        BLOCK = 0
    import torch

    torch.set_num_threads(a.threads)
    fastconv.set_num_threads(a.threads)
    print(
        f"{a.threads} threads, {a.rounds} rounds (python benchmarks/scripts/backward_speed.py "
        f"--rounds {a.rounds} --threads {a.threads}{' --alternate' if a.alternate else ''})"
    )
    if a.only in (None, "backward"):
        backward_table(torch, a.rounds)
    if a.only in (None, "transpose"):
        transpose_table(torch, a.rounds)
    if a.only in (None, "memory"):
        memory()


if __name__ == "__main__":
    main()
