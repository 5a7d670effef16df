"""Where a whole network's time goes: each conv call inside the forward pass against the same call
repeated on its own (warm caches), and ONNX Runtime's own per-node profile of the same network.

    python benchmarks/scripts/innet_profile.py --net mobilenetv2 --batch 1 --threads 1

Prints, for fastconv: the forward pass, the sum of its conv calls as timed inside it (the
"in-network" time: the inputs, outputs, weights and workspaces as the forward leaves them in
the caches), and the sum of the same calls each repeated on its own ("warm"); then the calls with
the largest in-network penalty.  For ONNX Runtime (if installed, on the torch model's ONNX
export): the session's run time and its profiler's kernel time per operator type (its Conv
nodes are kernel time only, without the Python call).  A per-layer comparison of one-node models
(`networks.py --layers`) sees warm caches on both sides; this shows what the network adds.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time

import numpy as np

import fastconv
from fastconv._networks import Network

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def fastconv_profile(name, batch, rounds):
    net = Network(name)
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)
    conv = net.conv
    calls, times = [], []

    def timed(x_, c, activation=None, residual=None, scale=None):
        t = time.perf_counter()
        y = conv(x_, c, activation, residual, scale)
        times.append(time.perf_counter() - t)
        if record:
            r = None if residual is None else residual.copy()
            calls.append((c, x_.copy(), activation, r, scale))
        return y

    net.conv = timed
    record = True
    net(x)
    record = False
    runs, forward = [], []
    for _ in range(rounds):
        times.clear()
        t = time.perf_counter()
        net(x)
        forward.append(time.perf_counter() - t)
        runs.append(list(times))
    net.conv = conv
    innet = np.median(np.array(runs), axis=0)
    warm = []
    for c, xx, a, r, s in calls:
        conv(xx, c, a, r, s)
        b = []
        for _ in range(7):
            t = time.perf_counter()
            for _ in range(3):
                conv(xx, c, a, r, s)
            b.append((time.perf_counter() - t) / 3)
        warm.append(float(np.median(b)))
    return float(np.median(forward)), calls, innet, np.array(warm)


def ort_profile(name, batch, nthreads, rounds):
    try:
        import networks as nb
        import onnxruntime as ort
    except ImportError:
        return None
    tm = nb.torch_network(name, nb.random_weights(name))
    tmp = tempfile.mkdtemp()
    path = nb.export_onnx(tm, (batch, 3, 224, 224), os.path.join(tmp, "m.onnx"))
    so = ort.SessionOptions()
    so.intra_op_num_threads = nthreads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tmp, "prof")
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224), dtype=np.float32)
    inp = sess.get_inputs()[0].name
    warmup = 3
    for _ in range(rounds + warmup):
        sess.run(None, {inp: x})
    with open(sess.end_profiling()) as f:
        events = json.load(f)
    nodes, runs, first, plane = collections.defaultdict(list), [], {}, {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            nodes[e["name"]].append((e["dur"], e["args"].get("op_name")))
            first.setdefault(e["name"], e["ts"])
            shapes = e["args"].get("input_type_shape") or [{}]
            plane.setdefault(e["name"], list(shapes[0].values() or [[]])[0][2:])
        elif e.get("cat") == "Session" and e["name"] == "model_run":
            runs.append(e["dur"])
    by_op = collections.defaultdict(float)
    convs = []  # ORT's Conv nodes in the order they first ran, median kernel time in seconds
    for key in sorted(nodes, key=first.get):
        v = nodes[key]
        t = float(np.median([d for d, _ in v[warmup:]]))
        by_op[v[0][1]] += t / 1e3
        # a squeeze-excitation FC is a Conv node on a 1x1 plane there, a matmul in fastconv
        if v[0][1] == "Conv" and list(plane.get(key) or [0]) != [1, 1]:
            convs.append(t / 1e6)
    return float(np.median(runs[warmup:])) / 1e3, dict(by_op), convs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--net", default="mobilenetv2")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument(
        "--per-node",
        action="store_true",
        help="list every conv call in the network next to ORT's Conv node in the same place",
    )
    args = ap.parse_args(argv)
    with fastconv.threads(args.threads):
        fwd, calls, innet, warm = fastconv_profile(args.net, args.batch, args.rounds)
    print(
        f"{args.net}, batch {args.batch}, {args.threads} thread(s), load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"fastconv: forward {fwd * 1e3:.2f} ms; its {len(calls)} conv calls {innet.sum() * 1e3:.2f}"
        f" ms in the network, {warm.sum() * 1e3:.2f} ms each repeated on its own"
    )
    for i in np.argsort(warm - innet)[: args.top]:
        c, xx, a, r, _ = calls[i]
        print(
            f"  {c.name:18s} {c.cin:4d}->{c.cout:4d} k{c.k} s{c.stride} g{c.groups:<4d} "
            f"{'x'.join(map(str, xx.shape[2:])):>7s}  in network {innet[i] * 1e6:7.1f} us, "
            f"alone {warm[i] * 1e6:7.1f} us  (act {a}, residual {r is not None})"
        )
    prof = ort_profile(args.net, args.batch, args.threads, args.rounds)
    if prof is None:
        print("ONNX Runtime (or torch) not installed: no ORT profile")
        return
    run_ms, by_op, convs = prof
    print(f"ONNX Runtime: run {run_ms:.2f} ms; kernel time by operator (profiler):")
    for op, ms in sorted(by_op.items(), key=lambda t: -t[1]):
        print(f"  {op:24s} {ms:7.2f} ms")
    if not args.per_node:
        return
    if len(convs) != len(calls):
        print(f"ORT ran {len(convs)} Conv nodes against fastconv's {len(calls)} calls: no pairing")
        return
    print("every conv call: fastconv in the network, alone, ORT's node, in network - ORT (us)")
    for (c, xx, *_), t, a, o in zip(calls, innet, warm, convs):
        print(
            f"  {c.name:18s} {c.cin:4d}->{c.cout:4d} k{c.k} s{c.stride} g{c.groups:<4d} "
            f"{'x'.join(map(str, xx.shape[2:])):>7s}  {t * 1e6:7.1f} {a * 1e6:7.1f} "
            f"{o * 1e6:7.1f} {(t - o) * 1e6:+7.1f}"
        )
    print(f"  total {innet.sum() * 1e3:.2f} ms against {sum(convs) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
