"""Whole networks (ResNet-50, MobileNetV2, EfficientNet-B0): fastconv + NumPy vs torch, ORT, OpenVINO.

Run from the repository root:

    python benchmarks/scripts/networks.py                      # the network table
    python benchmarks/scripts/networks.py --busy               # quiet vs one busy process, 2 threads
    python benchmarks/scripts/networks.py --layers             # every conv layer, batch 1, 1 thread
    python benchmarks/scripts/networks.py --layers --threads 2 # the same on 2 threads
    python benchmarks/scripts/networks.py --glue               # fastconv's conv vs NumPy glue time
    python benchmarks/scripts/networks.py --table benchmarks/results/networks-busy.json

The networks are fastconv._networks' (BatchNorm folded with fastconv.fuse_bn, glue in NumPy) and the
same architectures written out here in torch.nn with the same seeded weights; every run first checks
that the outputs agree (float32, relative to max |torch|).  ONNX Runtime and OpenVINO run the
torch.onnx.export of the torch model (static shapes, opset 17, fp32 forced in OpenVINO).  All
libraries are timed interleaved in one process: each round runs each library's calls back to back
(one untimed call first, so a thread pool that slept wakes outside the timing), and the tables give
the best time, the median of per-round times and the median of per-round ratios fastconv / peer.
The "budget off" column is fastconv with FASTCONV_DYNAMIC_THREADS=0 (always the threads asked).
Peers are optional: a missing one is left out.  Raw results go to benchmarks/results/ as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

_HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(_HERE))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import fastconv  # noqa: E402
from fastconv._networks import NETWORKS, Network, random_weights  # noqa: E402

try:
    import torch
    from torch import nn
except ImportError:  # the peers are benchmark extras
    torch = nn = None
try:
    import onnxruntime as ort
except ImportError:
    ort = None
try:
    import openvino as ov
except ImportError:
    ov = None

RESULTS = os.path.join(ROOT, "benchmarks", "results")

# ---------------------------------------------------------------------------------------------
# The networks in torch.nn, written out (torchvision's definitions, renamed to match the weights)

if nn is not None:

    class ConvBN(nn.Module):
        def __init__(self, cin, cout, k, stride=1, groups=1, eps=1e-5):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False)
            self.bn = nn.BatchNorm2d(cout, eps=eps)

        def forward(self, x):
            return self.bn(self.conv(x))

    class Bottleneck(nn.Module):
        def __init__(self, cin, width, stride):
            super().__init__()
            self.conv1 = ConvBN(cin, width, 1)
            self.conv2 = ConvBN(width, width, 3, stride)
            self.conv3 = ConvBN(width, 4 * width, 1)
            self.down = (
                ConvBN(cin, 4 * width, 1, stride) if (stride != 1 or cin != 4 * width) else None
            )

        def forward(self, x):
            h = torch.relu(self.conv1(x))
            h = torch.relu(self.conv2(h))
            h = self.conv3(h)
            return torch.relu(h + (x if self.down is None else self.down(x)))

    class ResNet50(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = ConvBN(3, 64, 7, 2)
            self.pool = nn.MaxPool2d(3, 2, 1)
            cin = 64
            for i, (width, n) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
                blocks = []
                for b in range(n):
                    blocks.append(Bottleneck(cin, width, 2 if (b == 0 and i > 0) else 1))
                    cin = 4 * width
                self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            self.fc = nn.Linear(2048, 1000)

        def forward(self, x):
            x = self.pool(torch.relu(self.stem(x)))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    class SqueezeExcitation(nn.Module):
        def __init__(self, ch, sq):
            super().__init__()
            self.fc1 = nn.Conv2d(ch, sq, 1)
            self.fc2 = nn.Conv2d(sq, ch, 1)

        def forward(self, x):
            s = nn.functional.adaptive_avg_pool2d(x, 1)
            return x * torch.sigmoid(self.fc2(nn.functional.silu(self.fc1(s))))

    class InvertedResidual(nn.Module):
        def __init__(self, cin, cout, t, k, stride, act, se, eps):
            super().__init__()
            hid = cin * t
            self.act = act
            self.expand = ConvBN(cin, hid, 1, eps=eps) if t != 1 else None
            self.dw = ConvBN(hid, hid, k, stride, hid, eps=eps)
            self.se = SqueezeExcitation(hid, max(1, cin // 4)) if se else None
            self.project = ConvBN(hid, cout, 1, eps=eps)
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            h = x if self.expand is None else self.act(self.expand(x))
            h = self.act(self.dw(h))
            if self.se is not None:
                h = self.se(h)
            h = self.project(h)
            return h + x if self.residual else h

    class InvertedResidualNet(nn.Module):
        """MobileNetV2 (ReLU6, no SE) or EfficientNet-B0 (SiLU, SE, BN eps 1e-3)."""

        def __init__(self, stages, act, se, eps):
            super().__init__()
            self.act = act
            self.stem = ConvBN(3, 32, 3, 2, eps=eps)
            cin, i = 32, 0
            for t, k, s, c, n in stages:
                for r in range(n):
                    blk = InvertedResidual(cin, c, t, k, s if r == 0 else 1, act, se, eps)
                    self.add_module(f"block{i}", blk)
                    cin, i = c, i + 1
            self.nblocks = i
            self.head = ConvBN(cin, 1280, 1, eps=eps)
            self.fc = nn.Linear(1280, 1000)

        def forward(self, x):
            x = self.act(self.stem(x))
            for i in range(self.nblocks):
                x = getattr(self, f"block{i}")(x)
            x = self.act(self.head(x))
            return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    def torch_network(name, weights):
        """The torch twin of fastconv._networks.Network(name), eval mode, loaded with `weights`."""
        if name == "resnet50":
            m = ResNet50()
        elif name == "mobilenetv2":
            stages = [
                (1, 3, 1, 16, 1),
                (6, 3, 2, 24, 2),
                (6, 3, 2, 32, 3),
                (6, 3, 2, 64, 4),
                (6, 3, 1, 96, 3),
                (6, 3, 2, 160, 3),
                (6, 3, 1, 320, 1),
            ]
            m = InvertedResidualNet(stages, nn.functional.relu6, se=False, eps=1e-5)
        elif name == "efficientnet_b0":
            stages = [
                (1, 3, 1, 16, 1),
                (6, 3, 2, 24, 2),
                (6, 5, 2, 40, 2),
                (6, 3, 2, 80, 3),
                (6, 5, 1, 112, 3),
                (6, 5, 2, 192, 4),
                (6, 3, 1, 320, 1),
            ]
            m = InvertedResidualNet(stages, nn.functional.silu, se=True, eps=1e-3)
        else:
            raise ValueError(f"unknown network {name!r}")
        state = {k: torch.from_numpy(np.array(v)) for k, v in weights.items()}
        missing, unexpected = m.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise RuntimeError(
                f"{name}: weights do not match: missing {missing[:5]}, unexpected {unexpected[:5]}"
            )
        return m.eval()


# ---------------------------------------------------------------------------------------------
# Peers


def export_onnx(model, shape, path):
    # torch 2.13 calls the TorchScript exporter legacy; the dynamo one needs onnxscript
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(shape),),
            path,
            input_names=["x"],
            output_names=["y"],
            opset_version=17,
            dynamo=False,
        )
    return path


def ort_runner(path, nthreads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = nthreads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: x})[0]


_OV_CORE = None


def ov_runner(path, nthreads):
    global _OV_CORE
    if _OV_CORE is None:
        _OV_CORE = ov.Core()
    cfg = {
        "INFERENCE_NUM_THREADS": nthreads,
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32",
    }
    compiled = _OV_CORE.compile_model(path, "CPU", cfg)
    req = compiled.create_infer_request()

    def run(x):
        req.infer({0: x})
        return req.get_output_tensor(0).data

    return run


def torch_runner(model, nthreads):
    def run(x):
        torch.set_num_threads(nthreads)
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    return run


def fastconv_runner(net, nthreads):
    def run(x):
        with fastconv.threads(nthreads):
            return net(x)

    return run


def fastconv_static_runner(net, nthreads):
    """fastconv with the busy-machine budget off (FASTCONV_DYNAMIC_THREADS=0): always nthreads."""
    from fastconv import _threads

    def run(x):
        saved, _threads.dynamic = _threads.dynamic, False
        try:
            with fastconv.threads(nthreads):
                return net(x)
        finally:
            _threads.dynamic = saved

    return run


def peers_for(name, net, batch, threads, tmpdir, hw=224, static=True):
    """{library: {nthreads: fn(x)}} for one network and batch, each checked against torch."""
    shape = (batch, 3, hw, hw)
    libs = {"fastconv": {n: fastconv_runner(net, n) for n in threads}}
    multi = [n for n in threads if n > 1]
    if static and multi:
        libs["fastconv-static"] = {n: fastconv_static_runner(net, n) for n in multi}
    if torch is not None:
        tm = torch_network(name, random_weights(name))
        libs["torch"] = {n: torch_runner(tm, n) for n in threads}
        if ort is not None or ov is not None:
            path = export_onnx(tm, shape, os.path.join(tmpdir, f"{name}_b{batch}.onnx"))
            if ort is not None:
                libs["onnxruntime"] = {n: ort_runner(path, n) for n in threads}
            if ov is not None:
                libs["openvino"] = {n: ov_runner(path, n) for n in threads}
    return libs


def check(libs, x, tol=1e-5):
    """max |y - y_torch| / max |y_torch| of every library (one thread count each)."""
    if "torch" not in libs:
        return {}
    ref = next(iter(libs["torch"].values()))(x)
    scale = float(np.max(np.abs(ref)))
    errs = {}
    for lib, fns in libs.items():
        for n, fn in fns.items():
            y = np.asarray(fn(x))
            errs[f"{lib}/{n}"] = float(np.max(np.abs(y - ref))) / scale
    bad = {k: v for k, v in errs.items() if not v <= tol}
    if bad:
        raise AssertionError(f"outputs differ from torch beyond {tol}: {bad}")
    return errs


# ---------------------------------------------------------------------------------------------
# Timing


def _block(fn, x, inner):
    fn(x)  # untimed: wakes the pool, settles caches
    best = float("inf")
    for _ in range(inner):
        t = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - t)
    return best


def interleaved(fns, x, rounds, inner):
    """{name: [per-round best seconds]} with the order rotated each round."""
    names = list(fns)
    times = {k: [] for k in names}
    for r in range(rounds):
        for k in names[r % len(names) :] + names[: r % len(names)]:
            times[k].append(_block(fns[k], x, inner))
    return times


def summarise(times, ref="fastconv"):
    out = {}
    for k, ts in times.items():
        row = {"best_ms": min(ts) * 1e3, "median_ms": statistics.median(ts) * 1e3}
        if k != ref:
            ratios = [a / b for a, b in zip(times[ref], ts, strict=True)]
            row["ratio_median"] = statistics.median(ratios)
            row["ratio_best"] = min(times[ref]) / min(ts)
        out[k] = row
    return out


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[:3]
    except OSError:
        return None


@contextlib.contextmanager
def busy_process():
    """One CPU-bound process competing for the cores while the block runs."""
    p = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        yield p.pid
    finally:
        p.terminate()
        p.wait()


def _inner(batch):
    return 3 if batch == 1 else 1


def run_networks(args, tmpdir):
    rows = []
    for name in args.net:
        net = Network(name, backend=args.backend)
        for batch in args.batch:
            x = (
                np.random.default_rng(1)
                .standard_normal((batch, 3, args.hw, args.hw))
                .astype(np.float32)
            )
            libs = peers_for(name, net, batch, args.threads, tmpdir, args.hw)
            errs = check(libs, x)
            for n in args.threads:
                fns = {lib: f[n] for lib, f in libs.items() if n in f}
                modes = [("quiet", contextlib.nullcontext())]
                if args.busy:
                    modes.append(("busy", busy_process()))
                for mode, ctx in modes:
                    with ctx:
                        load = loadavg()
                        times = interleaved(fns, x, args.rounds, _inner(batch))
                    row = {
                        "net": name,
                        "batch": batch,
                        "threads": n,
                        "mode": mode,
                        "load": load,
                        "max_rel_err": errs,
                        "libs": summarise(times),
                        "raw_s": times,
                    }
                    rows.append(row)
                    print(format_row(row), flush=True)
    return rows


def format_row(row):
    libs = row["libs"]
    cells = [
        f"{row['net']}, {row['batch']}, {row['threads']}t"
        + (", busy" if row["mode"] == "busy" else "")
    ]
    for lib in ("fastconv", "fastconv-static", "torch", "onnxruntime", "openvino"):
        s = libs.get(lib)
        cells.append("-" if s is None else f"{s['median_ms']:.1f} ({s['best_ms']:.1f})")
    for lib in ("onnxruntime", "openvino", "torch"):
        s = libs.get(lib)
        cells.append("-" if s is None else f"{s['ratio_median']:.2f} ({s['ratio_best']:.2f})")
    cells.append(" ".join(row["load"] or []))
    return "| " + " | ".join(cells) + " |"


HEADER = (
    "| network, batch, threads | fastconv ms median (best) | fastconv, budget off | torch | "
    "ONNX Runtime | OpenVINO | fastconv/ORT median (best) | fastconv/OpenVINO | fastconv/torch | "
    "loadavg |\n|---|---|---|---|---|---|---|---|---|---|"
)


# ---------------------------------------------------------------------------------------------
# Per-layer mode


def conv_layers(name, hw=224):
    """Distinct (spec, input shape, count) of the conv calls of one batch-1 forward pass."""
    net = Network(name)
    net.trace = []
    net(np.zeros((1, 3, hw, hw), dtype=np.float32))
    seen = {}
    for spec, shape in net.trace:
        key = (spec.cin, spec.cout, spec.k, spec.stride, spec.groups, shape)
        if key in seen:
            seen[key][2] += 1
        else:
            seen[key] = [spec, shape, 1]
    return net, list(seen.values())


def one_node_onnx(w, b, stride, pad, groups, shape, path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    K = w.shape[0]
    Ho = (shape[2] + 2 * pad - w.shape[2]) // stride + 1
    Wo = (shape[3] + 2 * pad - w.shape[3]) // stride + 1
    node = helper.make_node(
        "Conv",
        ["x", "w", "b"],
        ["y"],
        strides=[stride, stride],
        pads=[pad] * 4,
        group=groups,
        kernel_shape=list(w.shape[2:]),
    )
    graph = helper.make_graph(
        [node],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [shape[0], K, Ho, Wo])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def run_layers(args, tmpdir):
    rows = []
    n = args.threads[0]  # one thread count: the first given (default 1)
    if torch is not None:
        torch.set_num_threads(n)
    print(
        "| net | layer | C->K, k, s, g, HxW | x | fastconv ms | torch | ORT | OpenVINO | "
        "fastconv/fastest peer median (best) | algorithm |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    for name in args.net:
        net, layers = conv_layers(name, args.hw)
        for spec, shape, count in layers:
            w, b = net.params[spec.name]
            x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
            kw = dict(stride=spec.stride, padding=spec.padding, groups=spec.groups)
            # the thread count is set around the timing, not per call (as a network sets it
            # once per forward pass): peers are timed without a per-call setting too
            fns = {"fastconv": lambda x, w=w, b=b, kw=kw: fastconv.conv2d(x, w, b, **kw)}
            if torch is not None:
                wt, bt = torch.from_numpy(w), torch.from_numpy(b)

                def tconv(x, wt=wt, bt=bt, kw=kw):
                    with torch.inference_mode():
                        return torch.nn.functional.conv2d(torch.from_numpy(x), wt, bt, **kw).numpy()

                fns["torch"] = tconv
            if ort is not None or ov is not None:
                path = one_node_onnx(
                    w,
                    b,
                    spec.stride,
                    spec.padding,
                    spec.groups,
                    shape,
                    os.path.join(tmpdir, "layer.onnx"),
                )
                if ort is not None:
                    fns["onnxruntime"] = ort_runner(path, n)
                if ov is not None:
                    fns["openvino"] = ov_runner(path, n)
            with fastconv.threads(n):
                ref = fns["fastconv"](x)
                for k, f in fns.items():
                    err = float(np.max(np.abs(np.asarray(f(x)) - ref)) / np.max(np.abs(ref)))
                    if not err <= 1e-4:
                        raise AssertionError(f"{name} {spec.name}: {k} differs by {err}")
                flops = 2 * ref.size * (spec.cin // spec.groups) * spec.k * spec.k
                inner = max(1, int(3e-3 / max(1e-6, _block(fns["fastconv"], x, 1))))
                times = interleaved(fns, x, args.rounds, inner)
            s = summarise(times)
            peers = [k for k in s if k != "fastconv"]
            fastest = min(peers, key=lambda k: s[k]["median_ms"]) if peers else None
            from fastconv import _plan
            from fastconv._geometry import geometry_from_shapes

            with fastconv.threads(n):
                # as the call plans it: with a bias, on the network's kept weights
                plan = _plan.plan_conv2d(
                    geometry_from_shapes(shape, w.shape, spec.stride, spec.padding, 1, spec.groups),
                    has_bias=True,
                    fixed=_plan.is_fixed(w),
                )
            row = {
                "net": name,
                "layer": spec.name,
                "cin": spec.cin,
                "cout": spec.cout,
                "k": spec.k,
                "stride": spec.stride,
                "groups": spec.groups,
                "shape": shape,
                "count": count,
                "threads": n,
                "flops": flops,
                "libs": s,
                "fastest_peer": fastest,
                "algorithm": f"{plan.algorithm}/{plan.nthreads}",
                "load": loadavg(),
            }
            rows.append(row)

            def cell(k, s=s):
                return f"{s[k]['median_ms']:.3f}" if k in s else "-"

            r = (
                f"{s[fastest]['ratio_median']:.2f} ({s[fastest]['ratio_best']:.2f}) vs {fastest}"
                if fastest
                else "-"
            )
            print(
                f"| {name} | {spec.name} | {spec.cin}->{spec.cout}, {spec.k}, {spec.stride}, "
                f"{spec.groups}, {shape[2]}x{shape[3]} | {count} | {cell('fastconv')} | "
                f"{cell('torch')} | {cell('onnxruntime')} | {cell('openvino')} | {r} | "
                f"{row['algorithm']} |",
                flush=True,
            )
    return rows


def layer_summary(rows):
    """Geomeans of fastconv / peer over the layers (each distinct layer once), and the worst."""
    out = {}
    for peer in ("torch", "onnxruntime", "openvino", "fastest"):
        rs = []
        for r in rows:
            k = r["fastest_peer"] if peer == "fastest" else peer
            if k in r["libs"]:
                rs.append(r["libs"][k]["ratio_median"])
        if rs:
            out[peer] = {
                "geomean": float(np.exp(np.mean(np.log(rs)))),
                "worst": max(rs),
                "over_1.25": sum(x > 1.25 for x in rs),
                "layers": len(rs),
            }
    return out


# ---------------------------------------------------------------------------------------------
# Glue mode: where fastconv's network time goes


def run_glue(args, tmpdir):
    rows = []
    for name in args.net:
        net = Network(name, backend=args.backend)
        for batch in args.batch:
            x = (
                np.random.default_rng(1)
                .standard_normal((batch, 3, args.hw, args.hw))
                .astype(np.float32)
            )
            for n in args.threads:
                conv = net.conv
                acc = [0.0]

                def timed(x_, c, *epilogue, conv=conv, acc=acc, **kw):
                    t = time.perf_counter()
                    y = conv(x_, c, *epilogue, **kw)  # the fused epilogue counts as conv
                    acc[0] += time.perf_counter() - t
                    return y

                totals, convs = [], []
                with fastconv.threads(n):
                    net(x)
                    net.conv = timed
                    for _ in range(args.rounds):
                        acc[0] = 0.0
                        t = time.perf_counter()
                        net(x)
                        totals.append(time.perf_counter() - t)
                        convs.append(acc[0])
                    del net.conv
                i = int(np.argmin(totals))
                row = {
                    "net": name,
                    "batch": batch,
                    "threads": n,
                    "total_ms": totals[i] * 1e3,
                    "conv_ms": convs[i] * 1e3,
                    "glue_fraction_median": statistics.median(
                        [1 - c / t for c, t in zip(convs, totals, strict=True)]
                    ),
                    "load": loadavg(),
                }
                rows.append(row)
                print(
                    f"| {name} | {batch} | {n} | {row['total_ms']:.1f} | {row['conv_ms']:.1f} | "
                    f"{100 * row['glue_fraction_median']:.1f}% | {' '.join(row['load'] or [])} |",
                    flush=True,
                )
    return rows


def print_tables(path):
    """The markdown tables of a JSON file this script wrote."""
    with open(path) as f:
        data = json.load(f)
    mode, rows = data["meta"]["mode"], data["rows"]
    print(f"{path}: {mode}, {data['meta']['date']}, load at start {data['meta']['load_start']}")
    if mode in ("networks", "busy"):
        print(HEADER)
        for row in rows:
            print(format_row(row))
    if mode == "busy":
        print(
            "\n| network, batch, threads | library | quiet median ms | busy median ms | busy/quiet |"
        )
        print("|---|---|---|---|---|")
        quiet = {(r["net"], r["batch"], r["threads"]): r for r in rows if r["mode"] == "quiet"}
        for r in rows:
            q = quiet.get((r["net"], r["batch"], r["threads"]))
            if r["mode"] != "busy" or q is None:
                continue
            for lib, s in r["libs"].items():
                qm = q["libs"][lib]["median_ms"]
                print(
                    f"| {r['net']}, {r['batch']}, {r['threads']}t | {lib} | {qm:.1f} | "
                    f"{s['median_ms']:.1f} | {s['median_ms'] / qm:.2f} |"
                )
    if mode == "layers":
        print(json.dumps(data["meta"].get("summary"), indent=1))
        worst = sorted(rows, key=lambda r: -r["libs"][r["fastest_peer"]]["ratio_median"])[:15]
        print("| net | layer | C->K, k, s, g, HxW | fastconv ms | fastest peer | ms | ratio |")
        print("|---|---|---|---|---|---|---|")
        for r in worst:
            p, s = r["fastest_peer"], r["libs"]
            print(
                f"| {r['net']} | {r['layer']} | {r['cin']}->{r['cout']}, {r['k']}, {r['stride']}, "
                f"{r['groups']}, {r['shape'][2]}x{r['shape'][3]} | {s['fastconv']['median_ms']:.3f}"
                f" | {p} | {s[p]['median_ms']:.3f} | {s[p]['ratio_median']:.2f} |"
            )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default=None, help="print the tables of a JSON result and exit")
    ap.add_argument("--net", default=",".join(NETWORKS), help="comma-separated networks")
    ap.add_argument("--batch", default="1,8", help="comma-separated batch sizes (default 1,8)")
    ap.add_argument(
        "--threads", default=None, help="comma-separated thread counts (default 1,2; 2 with --busy)"
    )
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    ap.add_argument("--hw", type=int, default=224, help="input height = width (default 224)")
    ap.add_argument("--backend", default="auto", help="fastconv backend (default auto)")
    ap.add_argument(
        "--busy",
        action="store_true",
        help="each case quiet and with one busy process (default threads: 2)",
    )
    ap.add_argument(
        "--layers", action="store_true", help="per-layer mode: batch 1, 1 thread (or --threads N)"
    )
    ap.add_argument("--glue", action="store_true", help="fastconv's conv vs glue time")
    ap.add_argument("--out", default=None, help="JSON file (default benchmarks/results/...)")
    args = ap.parse_args(argv)
    if args.table:
        return print_tables(args.table)
    args.net = args.net.split(",")
    args.batch = [int(b) for b in args.batch.split(",")]
    if args.threads is None:
        args.threads = "2" if args.busy else "1" if args.layers else "1,2"
    args.threads = [int(n) for n in args.threads.split(",")]
    mode = "layers" if args.layers else "glue" if args.glue else "busy" if args.busy else "networks"
    meta = {
        "mode": mode,
        "argv": sys.argv[1:],
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_start": loadavg(),
        "versions": {
            "numpy": np.__version__,
            "fastconv": fastconv.__version__,
            "torch": getattr(torch, "__version__", None),
            "onnxruntime": getattr(ort, "__version__", None),
            "openvino": getattr(ov, "__version__", None),
        },
    }
    print(f"load {meta['load_start']}; {meta['versions']}")
    with tempfile.TemporaryDirectory() as tmpdir:
        if args.layers:
            rows = run_layers(args, tmpdir)
            meta["summary"] = layer_summary(rows)
            print(json.dumps(meta["summary"], indent=1))
        elif args.glue:
            print(
                "| net | batch | threads | total ms | conv ms | glue (median) | loadavg |\n"
                "|---|---|---|---|---|---|---|"
            )
            rows = run_glue(args, tmpdir)
        else:
            print(HEADER)
            rows = run_networks(args, tmpdir)
    meta["load_end"] = loadavg()
    os.makedirs(RESULTS, exist_ok=True)
    path = args.out or os.path.join(
        RESULTS, f"networks-{mode}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    )
    with open(path, "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1, default=str)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
