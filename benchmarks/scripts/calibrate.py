"""Measure every conv2d algorithm on a broad grid and fit the planner's cost model (fastconv/_costs.py).

Run from the repository root:
    python benchmarks/scripts/calibrate.py [--backend cython] [--points 400] [--write]
    python benchmarks/scripts/calibrate.py --evaluate          # planner's choice vs fastest, no fit
    python benchmarks/scripts/calibrate.py --evaluate --confirm  # and the cases above 1.1x again

For each grid point every applicable algorithm (fastconv._plan.ALGORITHMS) runs forced on 1 and on
all threads, each option's calls back to back, in two passes of opposite order; the best of
--repeat calls is kept.  Each algorithm's time is fitted as seconds = c0*f0 + c1*f1 + c2*f2 + c3*f3 over its own features
(call overhead, multiply-adds as its kernel executes them, elements moved, weight elements prepared
per call) by non-negative least
squares on relative error.  --write stores the coefficients, with the command, machine and date,
in fastconv/_costs.py, keyed by the CPU's ISA level and vendor (`_plan.cost_key()`: "v4-amd",
"v3-amd", "v4-intel"; the kernels differ by level, and OpenBLAS's by vendor: AVX-512 kernels on
Intel, AVX2 ones on AMD); the raw times go to
benchmarks/results/calibration-<backend>-<table>-<dtype>.csv.

The evaluation reads those times: for each point and thread budget, the planner's choice (algorithm
and thread count) against the fastest measured option, as the fraction of points within 10% and
the worst ratio.  --confirm then times the two options of every case above 1.1x again, interleaved
over 15 rounds, and reports the figures with those ratios: on a shared machine one best-of-5
figure taken during a hiccup makes an outlier either way (of 27 such float32 cases on
2026-12-07, 15 were within 10% when timed again, the 3.55x worst among them).
"""

from __future__ import annotations

import argparse
import csv
import datetime
import math
import os
import platform
import re
import sys
import time

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(os.path.dirname(_HERE))
sys.path.insert(0, _ROOT)

import fastconv  # noqa: E402
from fastconv import _plan  # noqa: E402
from fastconv._geometry import geometry_from_shapes  # noqa: E402
from fastconv.conv import run_conv  # noqa: E402

MAX_MACS = 6e8  # per point: keeps the slowest algorithm of a point under ~0.2 s on one thread
MAX_ELEMS = 2.5e7  # input or output elements per point
FIXED_WEIGHT = 5.0  # weight of the named layers in the fit


def grid(npoints, seed=0):
    """Random points of the issue's grid (batch 1-32, planes 7-224, channels 3-1024, kernels
    1x1-7x7 and odd ones, strides 1-2, dilations 1-4, groups 1/few/depthwise), within MAX_MACS,
    plus the layers users call most (ResNet, MobileNet, DeepLab, tiny calls)."""
    rng = np.random.default_rng(seed)
    fixed = [
        ((8, 64, 56, 56), (64, 64, 3, 3), 1, 1, 1, 1),
        ((8, 128, 28, 28), (128, 128, 3, 3), 1, 1, 1, 1),
        ((8, 256, 14, 14), (256, 256, 3, 3), 1, 1, 1, 1),
        ((1, 512, 7, 7), (512, 512, 3, 3), 1, 1, 1, 1),
        ((1, 256, 14, 14), (256, 256, 3, 3), 1, 1, 1, 1),
        ((1, 512, 14, 14), (512, 512, 3, 3), 2, 1, 1, 1),
        ((1, 256, 33, 33), (256, 256, 3, 3), 1, 4, 4, 1),
        ((1, 3, 8, 8), (4, 3, 3, 3), 1, 1, 1, 1),
        ((1, 16, 16, 16), (16, 16, 3, 3), 1, 1, 1, 1),
        ((8, 256, 56, 56), (64, 256, 1, 1), 1, 0, 1, 1),
        ((1, 960, 7, 7), (160, 960, 1, 1), 1, 0, 1, 1),
        # MobileNetV2's 1x1 layers at batch 1: expansions and projections on every plane size
        ((1, 16, 112, 112), (96, 16, 1, 1), 1, 0, 1, 1),
        ((1, 24, 56, 56), (144, 24, 1, 1), 1, 0, 1, 1),
        ((1, 32, 28, 28), (192, 32, 1, 1), 1, 0, 1, 1),
        ((1, 64, 14, 14), (384, 64, 1, 1), 1, 0, 1, 1),
        ((1, 576, 14, 14), (96, 576, 1, 1), 1, 0, 1, 1),
        ((1, 160, 7, 7), (960, 160, 1, 1), 1, 0, 1, 1),
        ((1, 320, 7, 7), (1280, 320, 1, 1), 1, 0, 1, 1),
        ((4, 144, 56, 56), (144, 1, 3, 3), 1, 1, 1, 144),
        ((4, 144, 56, 56), (144, 1, 3, 3), 2, 1, 1, 144),
        ((1, 672, 14, 14), (672, 1, 5, 5), 1, 2, 1, 672),
        ((2, 256, 28, 28), (256, 8, 3, 3), 1, 1, 1, 32),
        ((1, 3, 224, 224), (64, 3, 7, 7), 2, 3, 1, 1),
        ((1, 3, 224, 224), (64, 3, 3, 3), 1, 1, 1, 1),
        ((8, 64, 56, 56), (64, 64, 3, 3), 1, 2, 2, 1),
        ((2, 16, 64, 64), (16, 16, 11, 11), 1, 5, 1, 1),
    ]
    # the public layer suite: the layers the project's speed goals are stated on
    from fastconv._bench import PUBLIC_LAYERS

    for N, C, H, W, K, kh, kw, st, p, d, g in PUBLIC_LAYERS.values():
        fixed.append(((N, C, H, W), (K, C // g, kh, kw), st, p, d, g))
    pts = list(fixed)
    grid.n_fixed = len(fixed)
    planes = [7, 8, 13, 14, 17, 28, 33, 56, 64, 112, 224]
    chans = [3, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 1024]
    kernels = [
        (1, 1),
        (3, 3),
        (3, 3),
        (3, 3),
        (5, 5),
        (7, 7),
        (1, 7),
        (7, 1),
        (2, 2),
        (4, 4),
        (11, 11),
    ]
    tries = 0
    while len(pts) < npoints and tries < 100 * npoints:
        tries += 1
        N = int(rng.choice([1, 1, 2, 4, 8, 16, 32]))
        H = int(rng.choice(planes))
        W = H if rng.random() < 0.8 else int(rng.choice(planes))
        C = int(rng.choice(chans))
        K = int(rng.choice(chans))
        kh, kw = kernels[rng.integers(len(kernels))]
        s = int(rng.choice([1, 1, 1, 2]))
        d = int(rng.choice([1, 1, 1, 1, 2, 4])) if s == 1 and kh > 1 else 1
        kind = rng.choice(["dense", "dense", "dense", "grouped", "depthwise"])
        if kind == "depthwise":
            G, K, Cg = C, C * int(rng.choice([1, 1, 2])), 1
        elif kind == "grouped":
            G = int(rng.choice([2, 4, 8, 32]))
            if C % G or K % G:
                continue
            Cg = C // G
        else:
            G, Cg = 1, C
        p = (d * (kh - 1)) // 2 if rng.random() < 0.8 else 0
        try:
            g = geometry_from_shapes((N, C, H, W), (K, Cg, kh, kw), s, p, d, G)
        except ValueError:
            continue
        if g.N * g.K * g.P * g.R > MAX_MACS or max(N * C * H * W, N * K * g.P) > MAX_ELEMS:
            continue
        pts.append(((N, C, H, W), (K, Cg, kh, kw), s, p, d, G))
    return pts


def forced_plan(name, g, be, nt):
    fit = _plan.ALGORITHMS[name].workspace(g, be, nt, 1, _plan.WORKSPACE_BYTES)
    if fit is None:
        return None
    return _plan.ConvPlan(name, be, nt, fit[1], fit[0], forced=True)


def measure(points, be, dtype, threads, repeat, budget):
    """Rows (point index, algorithm, nthreads, best seconds)."""
    rng = np.random.default_rng(1)
    rows = []
    t_start = time.perf_counter()
    for i, (xs, ws, s, p, d, G) in enumerate(points):
        if time.perf_counter() - t_start > budget:
            print(f"time budget reached after {i} points", file=sys.stderr)
            break
        g = geometry_from_shapes(xs, ws, s, p, d, G, dtype)
        x = rng.standard_normal(xs).astype(dtype)
        w = rng.standard_normal(ws).astype(dtype)
        w3 = w.reshape(1, g.K, -1)
        out = np.empty((g.N, g.K, g.Ho, g.Wo), dtype)
        plans = []
        for name in _plan.applicable(g, be):
            for nt in threads:
                pl = forced_plan(name, g, be, nt)
                if pl is not None:
                    plans.append(pl)
        best = {}
        # Each option runs its calls back to back after a warm-up call: a pool that slept
        # through a one-thread call wakes slowly on a loaded machine, which would charge the
        # multi-threaded options for the alternation rather than for their own cost.  Two passes
        # over the options, in opposite orders, spread drifting load over all of them.
        for order in (plans, plans[::-1]):
            for pl in order:
                run_conv(pl, x, w3, None, g, out)
                key = (pl.algorithm, pl.nthreads)
                for _ in range(repeat):
                    t = time.perf_counter()
                    run_conv(pl, x, w3, None, g, out)
                    t = time.perf_counter() - t
                    best[key] = min(best.get(key, math.inf), t)
                    if t > 0.3:  # a hopeless option here: one timing is enough
                        break
        for (name, nt), t in best.items():
            rows.append((i, name, nt, t))
        if i % 20 == 0:
            print(
                f"{i}/{len(points)} points, {time.perf_counter() - t_start:.0f} s", file=sys.stderr
            )
    return rows


def fit(points, rows, be, dtype):
    """{(algorithm, backend, dtype char): {nthreads: (c0, c1, c2)}} by NNLS on relative error."""
    from scipy.optimize import nnls

    by = {}
    for i, name, nt, t in rows:
        xs, ws, s, p, d, G = points[i]
        g = geometry_from_shapes(xs, ws, s, p, d, G, dtype)
        if not _plan.ALGORITHMS[name].applies(g, be, False):
            continue  # a precondition added since the times were taken (--refit)
        # the named layers users run most (ResNet, MobileNet, the public suite) weigh 5x
        weight = FIXED_WEIGHT if i < getattr(grid, "n_fixed", 0) else 1.0
        by.setdefault((name, nt), []).append((_plan.ALGORITHMS[name].features(g), t, weight))
    out = {}
    for (name, nt), data in sorted(by.items()):
        A = np.array([f for f, _, _ in data], dtype=np.float64)
        t = np.array([t for _, t, _ in data])
        wt = np.array([w for _, _, w in data])
        scale = A.max(axis=0)
        scale[scale == 0] = 1
        coef, _ = nnls((A / scale) * (wt / t)[:, None], wt)
        coef = coef / scale
        key = (name, be, np.dtype(dtype).char, _plan.cost_key())
        out.setdefault(key, {})[nt] = tuple(float(c) for c in coef)
    return out


def evaluate(points, rows, be, dtype, threads):
    """Per point and thread budget: planner's measured time / fastest measured time."""
    times = {}
    for i, name, nt, t in rows:
        times.setdefault(i, {})[(name, nt)] = t
    ratios, worst = [], []
    for i, opts in times.items():
        xs, ws, s, p, d, G = points[i]
        g = geometry_from_shapes(xs, ws, s, p, d, G, dtype)
        for budget in threads:
            allowed = {k: v for k, v in opts.items() if k[1] in (1, budget)}
            if not allowed:
                continue
            plan = _plan.plan_conv2d(g, be, budget)
            got = allowed.get((plan.algorithm, plan.nthreads))
            if got is None:
                continue
            fastest = min(allowed.values())
            r = got / fastest
            ratios.append(r)
            worst.append(
                (r, i, budget, plan.algorithm, plan.nthreads, min(allowed, key=allowed.get))
            )
    ratios = np.array(ratios)
    worst.sort(reverse=True)
    return ratios, worst


def confirm(points, worst, be, dtype, rounds=15):
    """Time again, interleaved over `rounds` rounds, the planner's choice and the recorded
    fastest option of every case above 1.1x: a single best-of-`repeat` figure taken while the
    shared machine hiccupped makes an outlier either way.  Both options are re-timed alike and
    the ratio of their best times replaces the recorded one.  Returns [(old, new, case)]."""
    rng = np.random.default_rng(3)
    out = []
    for case in worst:
        r, i, budget, alg, nt, fast = case
        if r <= 1.10:
            continue
        xs, ws, s, p, d, G = points[i]
        g = geometry_from_shapes(xs, ws, s, p, d, G, dtype)
        x = rng.standard_normal(xs).astype(dtype)
        w3 = rng.standard_normal(ws).astype(dtype).reshape(1, g.K, -1)
        res = np.empty((g.N, g.K, g.Ho, g.Wo), dtype)
        plans = [forced_plan(alg, g, be, nt), forced_plan(fast[0], g, be, fast[1])]
        best = [math.inf, math.inf]
        with fastconv.threads(max(nt, fast[1])):
            for pl in plans:
                run_conv(pl, x, w3, None, g, res)
            for _ in range(rounds):
                for j, pl in enumerate(plans):
                    t = time.perf_counter()
                    run_conv(pl, x, w3, None, g, res)
                    best[j] = min(best[j], time.perf_counter() - t)
        out.append((r, best[0] / best[1], case))
    return out


def measure_mix(dtype, repeat):
    """The memory-bound mixing products of dynamic convolution ((N, E) @ (E, M) on one BLAS
    thread, as fastconv.dynamic runs them), fitted like an algorithm: (1, macs, elements, 0)."""
    from scipy.optimize import nnls

    from fastconv import _threads

    rng = np.random.default_rng(2)
    rows = []
    for N in (1, 4, 16, 64):
        for E in (2, 4, 8):
            for M in (1 << 10, 1 << 14, 1 << 17, 1 << 20):
                a = rng.standard_normal((N, E)).astype(dtype)
                b = rng.standard_normal((E, M)).astype(dtype)
                out = np.empty((N, M), dtype)
                best = math.inf
                with _threads.blas_single():
                    np.matmul(a, b, out=out)
                    for _ in range(repeat):
                        t = time.perf_counter()
                        np.matmul(a, b, out=out)
                        best = min(best, time.perf_counter() - t)
                rows.append(((1.0, N * E * M, E * M + N * M, 0.0), best))
    A = np.array([f for f, _ in rows])
    t = np.array([t for _, t in rows])
    scale = A.max(axis=0)
    scale[scale == 0] = 1
    coef, _ = nnls((A / scale) / t[:, None], np.ones(len(t)))
    key = ("mix", "numpy", np.dtype(dtype).char, _plan.cost_key())
    return {key: {1: tuple(float(c) for c in coef / scale)}}


def write_costs(costs, command, refit=False):
    path = os.path.join(_ROOT, "fastconv", "_costs.py")
    old, runs = {}, []
    backend = "numba" if "--backend numba" in command else "cython"
    level, key = _plan.cost_level(), _plan.cost_key()
    if os.path.exists(path):
        ns = {}
        text = open(path).read()
        exec(text, ns)
        old = ns.get("COSTS", {})
        # keep the record of the other runs (each backend's and each table's coefficients are
        # their own); a record's second line names its table: "(x86-64-v4, table v4-amd)"
        lines = text.splitlines()
        for i, line in enumerate(lines[:-1]):
            if line.startswith("    python benchmarks/scripts/calibrate.py"):
                other = "numba" if "--backend numba" in line else "cython"
                found = re.search(r"table ([\w-]+)\)", lines[i + 1])
                mine = (other, found.group(1) if found else "") == (backend, key)
                # a measuring run replaces this table's records; a refit keeps the run it
                # fitted again and replaces the earlier refits
                if not mine or (refit and "--refit" not in line):
                    if [line, lines[i + 1]] not in [
                        runs[j : j + 2] for j in range(0, len(runs), 2)
                    ]:
                        runs += [line, lines[i + 1]]
    old.update(costs)
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [
        '"""Cost-model coefficients of the planner: seconds = c0*f0 + c1*f1 + ... per algorithm.',
        "",
        "Written by benchmarks/scripts/calibrate.py; do not edit by hand.  The features f of each",
        "algorithm are defined next to it in fastconv/_plan.py (call overhead, multiply-adds as its",
        "kernel executes them, elements moved, weight elements prepared).  Measured by:",
        *runs,
        f"    {command}",
        f"    on {cpu} ({'x86-64-' + level if level != 'baseline' else 'baseline'}, table {key}), "
        f"{os.cpu_count()} CPUs, {datetime.date.today().isoformat()}",
        '"""',
        "",
        "# (algorithm, backend, dtype char, table: ISA level-CPU vendor): {threads: (c0, c1, ...)}",
        "COSTS = {",
    ]
    for key in sorted(old):
        inner = ", ".join(
            f"{nt}: ({', '.join(f'{c:.4g}' for c in v)})" for nt, v in sorted(old[key].items())
        )
        lines.append(f"    {key!r}: {{{inner}}},")
    lines.append("}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path}", file=sys.stderr)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="cython", choices=["cython", "numba"])
    ap.add_argument("--dtype", default="float32,float64", help="comma-separated (default both)")
    ap.add_argument("--points", type=int, default=300, help="grid points (default 300)")
    ap.add_argument("--repeat", type=int, default=3, help="timed calls per option (default 3)")
    ap.add_argument("--budget", type=float, default=900, help="seconds per dtype (default 900)")
    ap.add_argument("--write", action="store_true", help="store the fit in fastconv/_costs.py")
    ap.add_argument(
        "--evaluate",
        action="store_true",
        help="only compare the planner's choices with the recorded times",
    )
    ap.add_argument(
        "--refit",
        action="store_true",
        help="fit the recorded times again (after a precondition changed), measuring nothing",
    )
    ap.add_argument(
        "--confirm",
        action="store_true",
        help="after the evaluation, time the cases above 1.1x again (planner's choice and "
        "fastest, interleaved) and report the figures with those ratios",
    )
    args = ap.parse_args(argv)
    threads = sorted({1, os.cpu_count() or 1})
    points = grid(args.points)
    os.makedirs(os.path.join(_ROOT, "benchmarks", "results"), exist_ok=True)
    costs = {}
    for dn in args.dtype.split(","):
        dtype = np.dtype(dn)
        path = os.path.join(
            _ROOT,
            "benchmarks",
            "results",
            f"calibration-{args.backend}-{_plan.cost_key()}-{dn}.csv",
        )
        if args.evaluate or args.refit:
            with open(path) as f:
                rows = [(int(r[0]), r[1], int(r[2]), float(r[3])) for r in csv.reader(f)]
            if args.refit:
                costs.update(fit(points, rows, args.backend, dtype))
        else:
            with fastconv.threads(max(threads)):
                rows = measure(points, args.backend, dtype, threads, args.repeat, args.budget)
            with open(path, "w", newline="") as f:
                csv.writer(f).writerows(rows)
            costs.update(fit(points, rows, args.backend, dtype))
            costs.update(measure_mix(dtype, args.repeat))
        if args.write and not args.evaluate and costs:
            write_costs(
                costs,
                "python benchmarks/scripts/"
                + " ".join(
                    [os.path.basename(__file__)] + (argv if argv is not None else sys.argv[1:])
                ),
                refit=args.refit,
            )
            _reload_costs()
        ratios, worst = evaluate(points, rows, args.backend, dtype, threads)
        if len(ratios):
            print(
                f"{args.backend} {dn}: {len(ratios)} (point, thread budget) cases; planner within "
                f"10% of the fastest on {np.mean(ratios <= 1.10):.1%}, within 50% on "
                f"{np.mean(ratios <= 1.5):.1%}; median ratio {np.median(ratios):.3f}, "
                f"worst {ratios.max():.2f}"
            )
            for r, i, budget, alg, nt, fast in worst[: int(os.environ.get("CALIBRATE_SHOW", 8))]:
                print(
                    f"  {r:.2f}x  point {points[i]} budget {budget}: planner {alg}/{nt}, "
                    f"fastest {fast[0]}/{fast[1]}"
                )
            if args.confirm:
                again = {
                    id(case): r_new
                    for _, r_new, case in confirm(points, worst, args.backend, dtype)
                }
                for case in worst:
                    if id(case) in again:
                        r, i, budget, alg, nt, fast = case
                        print(
                            f"  again {r:.2f}x -> {again[id(case)]:.2f}x  point {points[i]} "
                            f"budget {budget}: {alg}/{nt} vs {fast[0]}/{fast[1]}"
                        )
                new = np.array([again.get(id(case), case[0]) for case in worst])
                print(
                    f"{args.backend} {dn}, cases above 1.1x timed again: planner within 10% on "
                    f"{np.mean(new <= 1.10):.1%}, within 50% on {np.mean(new <= 1.5):.1%}; "
                    f"worst {new.max():.2f}"
                )


def _reload_costs():
    import importlib

    import fastconv._costs

    importlib.reload(fastconv._costs)


if __name__ == "__main__":
    main()
