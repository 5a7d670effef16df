"""Fit fastconv.signal's cost model (fastconv._plan FILTER_COST) to forced runs of every method.

Times direct, separable and FFT, each forced through the real call path (validation and padding
included) on 1 and 2 threads, over kernels 1x1-64x64 (odd, even, non-square) and square images
16^2-4096^2 in float32 and float64; fits ``seconds = call + work / rate`` per (method, dtype,
threads) by least relative error; then replays the planner with the fitted constants on the same
grid and reports how often its choice is within 10% of the fastest applicable method, and the
worst ratio.  Points whose method would take over --cap seconds are not timed (that method is far
from the fastest there); 8192^2 images are left out (0.5-1 GiB per array on a shared machine).

Run: ``python benchmarks/scripts/signal_cutover.py [--quick] [--json out.json] [--load in.json]``
(about 4 minutes on 2 cores; ``--load`` refits and re-reports saved timings without timing).
"""

import argparse
import json
import platform
import sys
import time

import numpy as np
from scipy.optimize import nnls

import fastconv
from fastconv import _plan
from fastconv import signal as fs

KERNELS = [(1, 1), (3, 3), (4, 4), (5, 5), (7, 7), (3, 9), (11, 11), (16, 16), (15, 21),
           (31, 31), (64, 64)]
IMAGES = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
DTYPES = ["float32", "float64"]
THREADS = [1, 2]
METHODS = ["direct", "separable", "fft"]


def time_call(fn, budget=0.05, most=7):
    fn()
    best, spent, n = float("inf"), 0.0, 0
    while n < 2 or (spent < budget and n < most):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best, spent, n = min(best, dt), spent + dt, n + 1
    return best


def measure(kernels, images, cap):
    rng = np.random.default_rng(1234)
    rows = []
    for dtype in DTYPES:
        for n in images:
            img = rng.standard_normal((n, n)).astype(dtype)
            for kh, kw in kernels:
                if kh > n or kw > n:
                    continue
                k = np.outer(rng.standard_normal(kh), rng.standard_normal(kw)).astype(dtype)
                st, x, w, fill = fs._prepare(img, k, "same", "fill", 0, None, "auto", "auto", True)
                g = st.geom
                for th in THREADS:
                    for m in METHODS:
                        if m == "separable" and kh * kw == 1:
                            continue
                        if _plan.filter_seconds(g, m, 1) > cap * th:
                            rows.append([dtype, n, kh, kw, th, m, None])
                            continue
                        plan = _plan.FilterPlan(m, "cython", th, "forced", _one_copy(g))
                        t = time_call(lambda: fs._correlate_stack(x, w, g, fill, m, "auto", plan))
                        rows.append([dtype, n, kh, kw, th, m, t])
            print(f"{dtype} {n}^2 done", file=sys.stderr, flush=True)
    return rows


def _one_copy(g):
    ph, pw = g.padded
    return g.batch * g.parts * ph * pw * g.work.itemsize <= _plan.FILTER_ONE_COPY_BYTES


def geom(dtype, n, kh, kw):
    return fastconv._geometry.filter_geometry(1, (n, n), (kh, kw), "same", "fill", True, dtype)


def fit(rows):
    """1-thread (call, rate) per (method, itemsize) by least relative error; then the 1-thread
    time above which 2 threads pay (fewest points > 10% off) and their median speedup there."""
    cost = {}
    for m in METHODS:
        for dtype in DTYPES:
            pts = [r for r in rows if r[5] == m and r[0] == dtype and r[4] == 1 and r[6]]
            A = np.array([[1.0, _plan.filter_work(geom(*r[:4]), m)] for r in pts])
            t = np.array([r[6] for r in pts])
            (call, inv_rate), _ = nnls(A / t[:, None], np.ones(len(t)))
            cost[m, np.dtype(dtype).itemsize] = (float(call), float(1 / max(inv_rate, 1e-30)))
    t = {tuple(r[:6]): r[6] for r in rows if r[6]}
    pairs = [(t1, t[k[:4] + (2, k[5])]) for k, t1 in t.items() if k[4] == 1 and k[:4] + (2, k[5]) in t]
    pairs.sort()
    best = None
    for thr in [p[0] for p in pairs] + [float("inf")]:
        bad = sum((t2 if t1 >= thr else t1) > 1.1 * min(t1, t2) for t1, t2 in pairs)
        if best is None or bad < best[0]:
            best = (bad, thr)
    thr = best[1]
    above = [t1 / t2 for t1, t2 in pairs if t1 >= thr]
    speedup = float(np.median(above)) if above else 1.0
    return cost, float(thr), speedup


def evaluate(rows, fitted):
    cost, thr, speedup = fitted
    saved = dict(_plan.FILTER_COST), _plan.FILTER_PARALLEL_S, _plan.FILTER_SPEEDUP
    _plan.FILTER_COST.update(cost)
    _plan.FILTER_PARALLEL_S, _plan.FILTER_SPEEDUP = thr, speedup
    times = {}
    for r in rows:
        times[tuple(r[:6])] = r[6] if r[6] is not None else float("inf")
    ratios = []
    try:
        for dtype in DTYPES:
            for n in IMAGES:
                for kh, kw in KERNELS:
                    if (dtype, n, kh, kw, 1, "direct") not in times:
                        continue
                    g = geom(dtype, n, kh, kw)
                    for cap in THREADS:
                        ranking = _plan._filter_ranking_uncached(g, cap)
                        for rank1 in (True, False):
                            ok = {"direct", "fft"} | ({"separable"} if rank1 else set())
                            cands = [
                                times.get((dtype, n, kh, kw, th, m), float("inf"))
                                for m in ok for th in THREADS if th <= cap
                            ]
                            m, th, _ = next(e for e in ranking if e[0] in ok)
                            got = times.get((dtype, n, kh, kw, th, m), float("inf"))
                            ratios.append((got / min(cands), dtype, n, kh, kw, cap, rank1, m, th))
    finally:
        _plan.FILTER_COST.clear()
        _plan.FILTER_COST.update(saved[0])
        _plan.FILTER_PARALLEL_S, _plan.FILTER_SPEEDUP = saved[1:]
    return ratios


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="images up to 512^2 only")
    ap.add_argument("--cap", type=float, default=0.4, help="seconds above which not to time")
    ap.add_argument("--json", help="save the timings here")
    ap.add_argument("--load", help="refit saved timings instead of timing")
    args = ap.parse_args(argv)
    if args.load:
        rows = json.load(open(args.load))["rows"]
    else:
        images = [n for n in IMAGES if n <= 512] if args.quick else IMAGES
        rows = measure(KERNELS, images, args.cap)
        if args.json:
            meta = {"machine": platform.processor() or platform.machine(), "date": time.ctime()}
            json.dump({"rows": rows, "meta": meta}, open(args.json, "w"))
    fitted = fit(rows)
    print("FILTER_COST = {")
    for key, (call, rate) in sorted(fitted[0].items()):
        print(f"    {key!r}: ({call:.3g}, {rate:.3g}),")
    print("}")
    print(f"FILTER_PARALLEL_S = {fitted[1]:.3g}\nFILTER_SPEEDUP = {fitted[2]:.3g}")
    ratios = evaluate(rows, fitted)
    r = np.array([x[0] for x in ratios])
    print(f"grid points (dtype x image x kernel x thread cap x rank-1 or not): {len(r)}")
    print(f"auto within 10% of the fastest applicable: {np.mean(r <= 1.1):.1%}; worst {r.max():.2f}x")
    for x in sorted(ratios, reverse=True)[:8]:
        print("  worst:", x)


if __name__ == "__main__":
    main()
