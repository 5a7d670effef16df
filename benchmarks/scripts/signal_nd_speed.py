"""fastconv.signal.convolve / correlate (N-d) against scipy.signal and numpy.convolve, one process.

Run from the repository root:  python benchmarks/scripts/signal_nd_speed.py [--rounds 5] [--threads 2]

Interleaved rounds; best times, GFLOP/s of the direct sums, the median of per-round ratios (peer /
fastconv: above 1 means fastconv is faster).  The last lines print the two constants of the
planner's direct-versus-FFT choice (fastconv._plan.SIGNAL_ND_*), measured here.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import numpy as np
import scipy.signal as ss

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(_HERE)))  # the repository root

import fastconv  # noqa: E402
import fastconv.signal as fs  # noqa: E402


def _t(fn, *a, **kw):
    t = time.perf_counter()
    fn(*a, **kw)
    return time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds per case")
    ap.add_argument("--threads", type=int, default=2, help="fastconv threads")
    args = ap.parse_args(argv)
    fastconv.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x1, h1 = rng.standard_normal(10**7), rng.standard_normal(63)
    v3, k3 = rng.standard_normal((128, 128, 128)), rng.standard_normal((5, 5, 5))
    i2, k2 = rng.standard_normal((512, 512)), rng.standard_normal((101, 101))
    cases = [
        (
            "1-D 1e7 x 63 taps, scipy direct",
            (x1, h1),
            dict(method="direct"),
            ss.convolve,
            dict(method="direct"),
        ),
        ("1-D 1e7 x 63 taps, numpy.convolve", (x1, h1), dict(method="direct"), np.convolve, {}),
        (
            "1-D 1e7 x 63 taps float32, scipy direct",
            (x1.astype(np.float32), h1.astype(np.float32)),
            dict(method="direct"),
            ss.convolve,
            dict(method="direct"),
        ),
        (
            "3-D 128^3 x 5^3 same, scipy direct",
            (v3, k3),
            dict(mode="same", method="direct"),
            ss.convolve,
            dict(mode="same", method="direct"),
        ),
        (
            "2-D 512^2 x 101^2 auto, scipy auto",
            (i2, k2),
            dict(method="auto"),
            ss.convolve,
            dict(method="auto"),
        ),
    ]
    print(f"{args.threads} threads, {args.rounds} rounds, load {os.getloadavg()[0]:.1f}")
    print(
        f"{'case':42s} {'fastconv':>10s} {'peer':>10s} {'GFLOP/s':>8s} {'median x':>9s} {'best x':>7s}"
    )
    for name, (a, b), kw, peer, pkw in cases:
        fs.convolve(a, b, **kw)
        mine, theirs = [], []
        for _ in range(args.rounds):
            mine.append(_t(fs.convolve, a, b, **kw))
            theirs.append(_t(peer, a, b, **pkw))
        ratio = statistics.median(p / m for p, m in zip(theirs, mine, strict=True))
        macs = math.prod(fs.convolve(a, b, **kw).shape) * b.size
        print(
            f"{name:42s} {min(mine):10.4f} {min(theirs):10.4f} {2 * macs / min(mine) / 1e9:8.1f} "
            f"{ratio:9.2f} {min(theirs) / min(mine):7.2f}"
        )
    # the planner's constants: direct seconds per multiply-add, FFT seconds per N log2 N
    t_d = min(_t(fs.convolve, v3, k3, mode="same", method="direct") for _ in range(3))
    full = [n + k - 1 for n, k in zip(i2.shape, k2.shape, strict=True)]
    t_f = min(_t(ss.fftconvolve, i2, k2) for _ in range(3))
    print(
        f"direct: {t_d / (v3.size * k3.size):.2e} s per multiply-add; "
        f"fft: {t_f / (math.prod(full) * math.log2(math.prod(full))):.2e} s per N log2 N"
    )


if __name__ == "__main__":
    main()
