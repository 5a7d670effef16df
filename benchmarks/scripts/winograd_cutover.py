"""Where Winograd F(2x2, 3x3) beats the packed direct kernel: the sweep behind the planner's rule.

Run from the repository root:  python benchmarks/scripts/winograd_cutover.py [--threads 2]
Both algorithms forced on 3x3 pad-1 C->C layers, same process, interleaved best-of-N, float32;
prints each layer's tiles (2x2 output tiles per weight set) and the time ratio Winograd / packed,
and what the planner would pick (W or P).  Needs the Cython kernels on an AVX-512 CPU.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(_HERE)))  # the repository root

from fastconv._geometry import conv_geometry  # noqa: E402
from fastconv._plan import ConvPlan, _winograd_applies, kernels, winograd_plan  # noqa: E402
from fastconv.conv import run_conv  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget", type=float, default=0.3, help="seconds per layer and algorithm")
    args = ap.parse_args(argv)
    pk = kernels("cython", "packed")
    if not pk.packed_supported("f"):
        sys.exit("the packed kernel needs AVX-512")
    nt = args.threads
    print("command: python " + " ".join([os.path.relpath(__file__)] + (argv or sys.argv[1:])))
    rng = np.random.default_rng(0)
    for N, C, H in itertools.product(
        [1, 4, 16], [32, 64, 128, 256, 384, 512], [7, 14, 28, 56, 112]
    ):
        if 2 * N * C * C * 9 * H * H > 30e9:
            continue
        x = rng.standard_normal((N, C, H, H), dtype=np.float32)
        w = rng.standard_normal((C, C, 3, 3), dtype=np.float32)
        x4, w4, _, g = conv_geometry(x, w, None, 1, 1, 1, 1)
        w3 = w4.reshape(1, C, -1)
        pw = winograd_plan(g, "cython", nt)
        pp = ConvPlan(
            "packed", "cython", nt, workspace=int(pk.packed_workspace_size(g.as_array(), nt))
        )
        out = np.empty((N, C, H, H), np.float32)
        fns = [
            lambda p=pw, a=(x4, w3, None, g, out): run_conv(p, *a),
            lambda p=pp, a=(x4, w3, None, g, out): run_conv(p, *a),
        ]
        for f in fns:
            f()
        t0 = time.perf_counter()
        fns[1]()
        rep = max(5, min(30, int(args.budget / (time.perf_counter() - t0))))
        best = [float("inf")] * 2
        for _ in range(rep):
            for i, f in enumerate(fns):
                t = time.perf_counter()
                f()
                best[i] = min(best[i], time.perf_counter() - t)
        tiles = N * ((H + 1) // 2) ** 2
        pick = "W" if _winograd_applies(g, "cython") else "P"
        print(
            f"N={N:2d} C={C:3d} H={H:3d} tiles={tiles:5d}  winograd {best[0] * 1e3:8.3f} ms  "
            f"packed {best[1] * 1e3:8.3f} ms  ratio {best[0] / best[1]:.2f}  planner={pick}",
            flush=True,
        )


if __name__ == "__main__":
    main()
