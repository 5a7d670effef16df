"""fastconv.ndimage against scipy.ndimage, same process, interleaved rounds.

Each round runs fastconv then scipy on the same data; the table gives the median of the per-round
ratios (scipy time / fastconv time) and the best-of-rounds times, GFLOP/s counting one multiply and
one add per tap and output.  The machine this was written on is shared: quote ratios, re-run quiet.

    python benchmarks/scripts/ndimage_speed.py [--rounds 3] [--threads 2] [--quick]
"""

import argparse
import statistics
import time

import numpy as np
import scipy.ndimage as sn

import fastconv
import fastconv.ndimage as fn


def cases(quick):
    n = 128 if quick else 256
    L = 10**6 if quick else 10**7
    rng = np.random.default_rng(1234)
    w3 = rng.standard_normal((5, 5, 5))
    w1 = rng.standard_normal(63)
    for dt in (np.float32, np.float64):
        vol = rng.standard_normal((n, n, n)).astype(dt)
        sig = rng.standard_normal(L).astype(dt)
        name = np.dtype(dt).name
        yield (
            f"correlate {n}^3 5x5x5 {name}",
            vol.size * 125,
            lambda v=vol: fn.correlate(v, w3),
            lambda v=vol: sn.correlate(v, w3),
        )
        taps = 3 * (2 * int(4.0 * 2 + 0.5) + 1)
        yield (
            f"gaussian_filter {n}^3 sigma 2 {name}",
            vol.size * taps,
            lambda v=vol: fn.gaussian_filter(v, 2),
            lambda v=vol: sn.gaussian_filter(v, 2),
        )
        yield (
            f"convolve1d {L:.0e} x 63 taps {name}",
            sig.size * 63,
            lambda s=sig: fn.convolve1d(s, w1),
            lambda s=sig: sn.convolve1d(s, w1),
        )
        yield (
            f"uniform_filter {n}^3 size 5 {name}",
            vol.size * 3 * 2,
            lambda v=vol: fn.uniform_filter(v, 5),
            lambda v=vol: sn.uniform_filter(v, 5),
        )


def timed(f):
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="128^3 volumes and 10^6 samples")
    args = ap.parse_args()
    fastconv.set_num_threads(args.threads)
    print(f"fastconv.ndimage vs scipy.ndimage, {args.threads} threads, {args.rounds} rounds")
    print(
        f"{'case':40s} {'fastconv s':>10s} {'scipy s':>9s} {'GFLOP/s':>8s} {'median x':>8s} "
        f"{'best x':>7s}"
    )
    for name, macs, ours, theirs in cases(args.quick):
        same = np.array_equal(ours(), theirs())  # also warms both up
        ratios, to, tt = [], [], []
        for _ in range(args.rounds):
            a, b = timed(ours), timed(theirs)
            to.append(a)
            tt.append(b)
            ratios.append(b / a)
        print(
            f"{name:40s} {min(to):10.4f} {min(tt):9.3f} {2 * macs / min(to) / 1e9:8.1f} "
            f"{statistics.median(ratios):8.1f} {min(tt) / min(to):7.1f}"
            f"{'' if same else '  (results differ!)'}"
        )


if __name__ == "__main__":
    main()
