"""The kernel-algebra speed figure: a composed layer against the two-layer sequence it replaces.

Layer a: 100x1x3x3 (+bias), layer b: 2x100x5x5 (+bias), x: (8, 1, 256, 256); compose(a, b) is one
2x1x7x7 layer.  Both sides run through fastconv.conv2d, timed interleaved in one process, best of
several.  Run: python benchmarks/scripts/algebra_speed.py [--repeat 7] [--dtype float32|float64]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/
from _common import fastconv, rng  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    args = parser.parse_args(argv)
    dtype = np.dtype(args.dtype)
    r = rng()
    a = fastconv.Conv2d(r.standard_normal((100, 1, 3, 3)), r.standard_normal(100))
    b = fastconv.Conv2d(r.standard_normal((2, 100, 5, 5)), r.standard_normal(2))
    x = r.standard_normal((8, 1, 256, 256)).astype(dtype)

    t0 = time.perf_counter()
    c = fastconv.compose(a, b)
    t_compose = time.perf_counter() - t0
    seq_params = a.weight.size + b.weight.size
    print(
        f"compose: {a.weight.shape} then {b.weight.shape} -> {c.weight.shape} "
        f"({seq_params} -> {c.weight.size} weights) in {t_compose * 1e3:.1f} ms"
    )

    def sequence():
        return b(a(x))

    def composed():
        return c(x)

    ys, yc = sequence(), composed()  # warm-up (JIT, first touch) and the agreement check
    scale = float(np.abs(ys).max())
    err = float(np.abs(ys.astype(np.float64) - yc).max()) / scale
    best_s = best_c = float("inf")
    for _ in range(args.repeat):  # interleaved, so drifts on a shared machine hit both sides
        t0 = time.perf_counter()
        sequence()
        best_s = min(best_s, time.perf_counter() - t0)
        t0 = time.perf_counter()
        composed()
        best_c = min(best_c, time.perf_counter() - t0)
    print(f"x {x.shape} {dtype}, threads={fastconv.get_num_threads()}, best of {args.repeat}")
    print(f"  sequence  a then b (fastconv.conv2d x2): {best_s * 1e3:9.2f} ms")
    print(f"  composed  compose(a, b)  (conv2d x1):    {best_c * 1e3:9.2f} ms")
    print(f"  ratio sequence/composed: {best_s / best_c:.1f}x   (max rel. difference {err:.1e})")
    print(f"command: python benchmarks/scripts/algebra_speed.py --repeat {args.repeat} --dtype {dtype}")
    return best_s / best_c


if __name__ == "__main__":
    main()
