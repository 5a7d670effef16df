"""Soak check: many mixed public calls with resident memory flat, and concurrent calls that agree.

Run: PYTHONPATH=. python benchmarks/scripts/soak.py [--calls 10000] [--threads 8] [--seconds 60]

Part 1 makes `--calls` calls of every public function (conv2d dense/depthwise/grouped/strided/
dilated, im2col/col2im, dynamic_conv2d, signal.correlate2d/convolve2d, compose/add/fuse_bn/
separate, cost.conv2d_cost) on random small shapes from a seeded generator, checks one call in
`--check-every` against a float64 reference, and reads VmRSS every 1,000 calls: after the
warm-up (the first 1,000 calls, which compile and fill the caches) it must stay within 5%.
Part 2 runs a fixed set of cases from `--threads` threads for `--seconds` and compares every
result with the answer the same case gave on one thread.
"""

import argparse
import json
import sys
import threading
import time

import numpy as np
import scipy.signal

import fastconv
from fastconv import _reference
from fastconv.cost import conv2d_cost

# the test suite's table (tests/tolerance.py): relative to max |reference|, no floor
RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def close(got, ref, dtype):
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return False
    if ref.size == 0:
        return True
    scale = max(float(np.max(np.abs(ref))), float(np.finfo(dtype).tiny))
    return bool(np.max(np.abs(got - ref)) <= RTOL[np.dtype(dtype)] * scale)


# ---------------------------------------------------------------------------------------------
# Cases: each returns (name, dtype, call, reference); call() is the fastconv result, reference()
# the float64 answer computed without the function under test.
# ---------------------------------------------------------------------------------------------


def _arr(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _conv_args(rng, kind):
    groups = 1
    C = int(rng.integers(1, 7))
    if kind == "depthwise":
        groups = C
        K = C * int(rng.integers(1, 3))
    elif kind == "grouped":
        groups = int(rng.integers(2, 4))
        C = groups * int(rng.integers(1, 4))
        K = groups * int(rng.integers(1, 4))
    elif kind == "winograd":  # 3x3 with enough tiles that the planner may pick Winograd
        C = K = int(rng.integers(8, 17))
    else:
        K = int(rng.integers(1, 9))
    kh, kw = (int(v) for v in rng.integers(1, 6, 2))
    if kind == "winograd":
        kh = kw = 3
    elif kind == "large-kernel":  # large kernels: the planner's FFT side
        kh, kw = (int(v) for v in rng.integers(9, 16, 2))
    stride = (int(rng.integers(2, 4)),) * 2 if kind == "strided" else (1, int(rng.integers(1, 3)))
    dilation = (int(rng.integers(2, 4)),) * 2 if kind == "dilated" else (1, 1)
    pad = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    top = 24 if kind not in ("winograd", "large-kernel") else 44
    H = int(rng.integers(dilation[0] * (kh - 1) + 1, top))
    W = int(rng.integers(dilation[1] * (kw - 1) + 1, top))
    N = int(rng.integers(1, 3))
    return (N, C, H, W), (K, C // groups, kh, kw), stride, pad, dilation, groups


def case_conv2d(rng, dtype):
    kind = str(
        rng.choice(
            ["dense", "depthwise", "grouped", "strided", "dilated", "winograd", "large-kernel"],
            p=[0.25, 0.15, 0.15, 0.15, 0.1, 0.1, 0.1],
        )
    )
    xs, ws, stride, pad, dil, groups = _conv_args(rng, kind)
    x, w = _arr(rng, xs, dtype), _arr(rng, ws, dtype)
    b = _arr(rng, ws[0], dtype) if rng.random() < 0.5 else None
    return (
        f"conv2d-{kind}",
        dtype,
        lambda: fastconv.conv2d(x, w, b, stride, pad, dil, groups),
        lambda: _reference.conv2d(x, w, b, stride, pad, dil, groups),
    )


def case_im2col(rng, dtype):
    xs, ws, stride, pad, dil, _ = _conv_args(rng, rng.choice(["dense", "strided", "dilated"]))
    x = _arr(rng, xs, dtype)
    k = ws[2:]
    if rng.random() < 0.5:
        return (
            "im2col",
            dtype,
            lambda: fastconv.im2col(x, k, stride, pad, dil),
            lambda: _reference.im2col(x, k, stride, pad, dil),
        )
    cols = _reference.im2col(x, k, stride, pad, dil).astype(dtype)
    return (
        "col2im",
        dtype,
        lambda: fastconv.col2im(cols, xs[2:], k, stride, pad, dil),
        lambda: _reference.col2im(cols, xs[2:], k, stride, pad, dil),
    )


def case_dynamic(rng, dtype):
    xs, ws, stride, pad, dil, groups = _conv_args(rng, rng.choice(["dense", "grouped"]))
    E = int(rng.integers(1, 5))
    x = _arr(rng, xs, dtype)
    bank = _arr(rng, (E,) + ws, dtype)
    att = rng.random((xs[0], E)).astype(dtype)
    bias = _arr(rng, (E, ws[0]), dtype) if rng.random() < 0.5 else None

    def reference():
        out = []
        for n in range(xs[0]):
            a = att[n].astype(np.float64)
            wn = np.tensordot(a, bank.astype(np.float64), 1)
            bn = None if bias is None else a @ bias.astype(np.float64)
            out.append(_reference.conv2d(x[n], wn, bn, stride, pad, dil, groups))
        return np.stack(out)

    return (
        "dynamic_conv2d",
        dtype,
        lambda: fastconv.dynamic_conv2d(x, bank, att, bias, stride, pad, dil, groups),
        reference,
    )


def case_signal(rng, dtype):
    M, N = (int(v) for v in rng.integers(1, 40, 2))
    P, Q = (int(v) for v in rng.integers(1, 12, 2))
    x, k = _arr(rng, (M, N), dtype), _arr(rng, (P, Q), dtype)
    if rng.random() < 0.3:  # a separable kernel: the rank-1 path
        k = np.outer(_arr(rng, P, dtype), _arr(rng, Q, dtype)).astype(dtype)
    mode = str(rng.choice(["full", "same"] if (P > M or Q > N) else ["full", "same", "valid"]))
    boundary = str(rng.choice(["fill", "wrap", "symm"]))
    name = str(rng.choice(["correlate2d", "convolve2d"]))
    if boundary != "fill" and mode != "valid":
        # scipy wraps/mirrors once: kernels larger than the image are a separate matter
        P, Q = min(P, M), min(Q, N)
        k = k[:P, :Q].copy()
    x64, k64 = x.astype(np.float64), k.astype(np.float64)
    return (
        f"signal.{name}",
        dtype,
        lambda: getattr(fastconv.signal, name)(x, k, mode, boundary),
        lambda: getattr(scipy.signal, name)(x64, k64, mode, boundary),
    )


def _layer(rng, C, K, kh, kw, dtype, stride=1, padding=0):
    return fastconv.Conv2d(
        _arr(rng, (K, C, kh, kw), dtype), _arr(rng, K, dtype), stride=stride, padding=padding
    )


def _apply(layer, x):
    """The layer on x in float64 (its padding is per side: pad first, then run unpadded)."""
    pt, pb, pl, pr = layer.padding
    xp = np.pad(np.asarray(x, dtype=np.float64), ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    return _reference.conv2d(
        xp, layer.weight, layer.bias, layer.stride, 0, layer.dilation, layer.groups
    )


def case_algebra(rng, dtype):
    what = str(rng.choice(["compose", "add", "fuse_bn", "separate"]))
    C, K = (int(v) for v in rng.integers(1, 5, 2))
    x = _arr(rng, (1, C, int(rng.integers(8, 20)), int(rng.integers(8, 20))), dtype)
    if what == "compose":  # an unpadded later layer: exact for every input
        a = _layer(rng, C, K, *(int(v) for v in rng.integers(1, 4, 2)), dtype, 1, 1)
        b = _layer(
            rng, K, 3, *(int(v) for v in rng.integers(1, 4, 2)), dtype, int(rng.integers(1, 3))
        )
        return (
            "compose",
            dtype,
            lambda: _apply(fastconv.compose(a, b), x),
            lambda: _apply(b, _apply(a, x)),
        )
    if what == "add":
        a = _layer(rng, C, K, 3, 3, dtype, 1, 1)
        b = _layer(rng, C, K, 1, 1, dtype, 1, 0)
        return (
            "add",
            dtype,
            lambda: _apply(fastconv.add(a, b), x),
            lambda: _apply(a, x) + _apply(b, x),
        )
    if what == "fuse_bn":
        a = _layer(rng, C, K, 3, 3, dtype, 1, 1)
        g, be, mu = _arr(rng, K, dtype), _arr(rng, K, dtype), _arr(rng, K, dtype)
        var = (rng.random(K) + 0.5).astype(dtype)

        def reference():
            y = _apply(a, x)
            s = (g / np.sqrt(var.astype(np.float64) + 1e-5))[:, None, None]
            return (y - mu[:, None, None]) * s + be[:, None, None]

        return ("fuse_bn", dtype, lambda: _apply(fastconv.fuse_bn(a, g, be, mu, var), x), reference)
    kh, kw = (int(v) for v in rng.integers(1, 8, 2))
    rank = int(rng.integers(1, 3))
    k = sum(np.outer(_arr(rng, kh, dtype), _arr(rng, kw, dtype)) for _ in range(rank))
    k = np.asarray(k, dtype=dtype)

    def separated():
        cols, rows = fastconv.separate(k)
        return np.einsum("ri,rj->ij", cols.astype(np.float64), rows.astype(np.float64))

    return ("separate", dtype, separated, lambda: k.astype(np.float64))


def case_cost(rng, dtype):
    xs, ws, stride, pad, dil, groups = _conv_args(rng, rng.choice(["dense", "grouped", "strided"]))

    def macs():
        c = conv2d_cost(xs, ws, stride, pad, dil, groups, dtype)
        return np.array([c.macs, c.flops / 2, *c.out_shape], dtype=np.float64)

    def reference():
        out = _reference.conv2d(np.zeros(xs), np.zeros(ws), None, stride, pad, dil, groups).shape
        n = out[0] * out[1] * out[2] * out[3] * ws[1] * ws[2] * ws[3]
        return np.array([n, n, *out], dtype=np.float64)

    return ("cost.conv2d_cost", dtype, macs, reference)


CASES = [case_conv2d, case_conv2d, case_im2col, case_dynamic, case_signal, case_algebra, case_cost]


def make_case(rng):
    dtype = np.dtype(rng.choice([np.float32, np.float64]))
    return CASES[int(rng.integers(len(CASES)))](rng, dtype)


# ---------------------------------------------------------------------------------------------


def soak(calls, check_every=25, seed=1234, every=1000, warmup=1000):
    """Part 1: returns dict(rss={calls: MiB}, checked=n, failures=[...], growth=fraction)."""
    rng = np.random.default_rng(seed)
    rss, failures, checked = {0: rss_mib()}, [], 0
    for i in range(1, calls + 1):
        name, dtype, call, reference = make_case(rng)
        got = call()
        if i % check_every == 0:
            checked += 1
            if not close(got, reference(), dtype):
                failures.append(f"call {i}: {name} {dtype} differs from the float64 reference")
        if i % every == 0 or i == calls:
            rss[i] = rss_mib()
    base = rss[min(warmup, calls)]
    growth = max(v for k, v in rss.items() if k >= min(warmup, calls)) / base - 1
    return dict(rss=rss, checked=checked, failures=failures, growth=growth, warmup=warmup)


def concurrent(threads=8, seconds=60.0, cases=48, seed=4321):
    """Part 2: returns dict(calls=n, mismatches=[...], errors=[...])."""
    rng = np.random.default_rng(seed)
    pool = [make_case(rng) for _ in range(cases)]
    answers = []
    for name, dtype, call, reference in pool:
        got = np.asarray(call())
        if not close(got, reference(), dtype):
            raise AssertionError(f"{name} {dtype} differs from its reference on one thread")
        answers.append(got)
    counts = [0] * threads
    mismatches, errors = [], []
    stop = time.monotonic() + seconds

    def worker(t):
        r = np.random.default_rng(seed + 1 + t)
        try:
            while time.monotonic() < stop:
                j = int(r.integers(len(pool)))
                name, dtype, call, _ = pool[j]
                got = np.asarray(call())
                counts[t] += 1
                if not close(got, answers[j], dtype):
                    mismatches.append(f"thread {t}: {name} {dtype} (case {j})")
        except Exception as exc:  # reported, not swallowed: the caller fails on any
            errors.append(f"thread {t}: {type(exc).__name__}: {exc}")

    ts = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return dict(calls=sum(counts), mismatches=mismatches, errors=errors)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--calls", type=int, default=10000)
    p.add_argument("--check-every", type=int, default=25)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--json", action="store_true", help="print one JSON line of the figures")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    s = soak(args.calls, args.check_every, warmup=args.warmup, every=min(1000, args.warmup))
    t1 = time.perf_counter()
    c = concurrent(args.threads, args.seconds) if args.threads and args.seconds else None
    ok = (
        not s["failures"]
        and s["growth"] <= 0.05
        and (c is None or not (c["mismatches"] or c["errors"]))
    )
    if args.json:
        print(json.dumps(dict(soak=s, concurrent=c, ok=ok)))
        return 0 if ok else 1
    print(f"fastconv {fastconv.__version__}: {args.calls} mixed calls in {t1 - t0:.0f} s")
    print("RSS (MiB) by calls: " + ", ".join(f"{k}: {v:.0f}" for k, v in s["rss"].items()))
    print(
        f"after warm-up ({s['warmup']} calls): growth {s['growth']:+.1%} (limit +5%); "
        f"{s['checked']} spot checks against float64, {len(s['failures'])} failed"
    )
    for f in s["failures"][:20]:
        print("  " + f)
    if c is not None:
        print(
            f"{args.threads} threads x {args.seconds:.0f} s: {c['calls']} calls, "
            f"{len(c['mismatches'])} differ from the one-thread answer, {len(c['errors'])} raised"
        )
        for m in (c["mismatches"] + c["errors"])[:20]:
            print("  " + m)
    print("ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
