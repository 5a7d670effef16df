"""The conv2d layer suite and its timing harness (`fastconv bench`, benchmarks/scripts/layers_vs_torch.py).

Same process, interleaved rounds, float32: fastconv.conv2d against each installed peer (torch,
onnxruntime and OpenVINO on a one-node ONNX Conv model, NumPy's sgemm on the equivalent GEMM),
reported as GFLOP/s, best-of times and the median of per-round ratios (the machine is shared).
"""

from __future__ import annotations

import math
import statistics
import sys
import tempfile
import time

import numpy as np

# The public layer suite: real CNN layer shapes, float32, NCHW, the performance goals' yardstick
# against torch at the same thread count: name -> (N, C, H, W, K, kh, kw, stride, pad, dil, groups)
PUBLIC_LAYERS = {
    "r50_3x3_c64": (4, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1),
    "r50_3x3_c128": (4, 128, 28, 28, 128, 3, 3, 1, 1, 1, 1),
    "r50_3x3_c256": (4, 256, 14, 14, 256, 3, 3, 1, 1, 1, 1),
    "r50_1x1_256to64": (4, 256, 56, 56, 64, 1, 1, 1, 0, 1, 1),
    "r50_s2_64to128": (4, 64, 56, 56, 128, 3, 3, 2, 1, 1, 1),
    "stem_7x7_s2": (4, 3, 224, 224, 64, 7, 7, 2, 3, 1, 1),
    "mbv2_dw_c144": (4, 144, 56, 56, 144, 3, 3, 1, 1, 1, 144),
    "dil2_3x3_c64": (4, 64, 56, 56, 64, 3, 3, 1, 2, 2, 1),
    "b1_3x3_c64": (1, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1),
}
# Beyond the public suite: ResNeXt groups, depthwise with a channel multiplier, an odd 5x5, a 7x7
# map with many channels, the 1x1 expansion.
EXTRA_LAYERS = {
    "resnext_g32_3x3": (2, 256, 28, 28, 256, 3, 3, 1, 1, 1, 32),
    "dw_mult2_c64": (4, 64, 56, 56, 128, 3, 3, 1, 1, 1, 64),
    "odd_5x5_c40": (3, 40, 33, 45, 72, 5, 5, 1, 2, 1, 1),
    "r50_3x3_c512_7": (4, 512, 7, 7, 512, 3, 3, 1, 1, 1, 1),
    "r50_1x1_64to256": (4, 64, 56, 56, 256, 1, 1, 1, 0, 1, 1),
}


def load_public_layers():
    """The public layer suite (PUBLIC_LAYERS above) and where it came from."""
    return dict(PUBLIC_LAYERS), "fastconv._bench.PUBLIC_LAYERS"


def out_hw(spec):
    N, C, H, W, K, kh, kw, s, p, d, g = spec
    return (H + 2 * p - d * (kh - 1) - 1) // s + 1, (W + 2 * p - d * (kw - 1) - 1) // s + 1


def flops(spec):
    N, C, H, W, K, kh, kw, s, p, d, g = spec
    Ho, Wo = out_hw(spec)
    return 2.0 * N * K * Ho * Wo * (C // g) * kh * kw


def gemm_shape(spec):
    """(M, K, N) of the layer's equivalent GEMM: output channels x reduction x output pixels."""
    N, C, H, W, K, kh, kw, s, p, d, g = spec
    Ho, Wo = out_hw(spec)
    return K, C // g * kh * kw, N * Ho * Wo


def arrays(spec, seed=1234):
    N, C, H, W, K, kh, kw, s, p, d, g = spec
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    w = rng.standard_normal((K, C // g, kh, kw), dtype=np.float32)
    b = rng.standard_normal(K, dtype=np.float32)
    return x, w, b


def interleaved_best(fns, repeat, block=3):
    """Best time of each callable over `repeat` rounds; each round runs every callable in turn
    as a short block (`block` calls after one untimed call), so drift hits all alike but no call
    starts while the other library's OpenMP threads are still spinning from its last call
    (measured: strict alternation inflated both sides by 15-20%, single outliers by 2x)."""
    for f in fns:
        f()
    best = [math.inf] * len(fns)
    for _ in range(repeat):
        for i, f in enumerate(fns):
            f()
            for _ in range(block):
                t0 = time.perf_counter()
                f()
                best[i] = min(best[i], time.perf_counter() - t0)
    return best


def interleaved_rounds(fns, repeat, block=3):
    """Per-round times of each callable: `repeat` rounds, each running every callable in turn as
    a short block (one untimed call, then the best of `block` timed ones), so drift hits all alike
    and a round's times can be compared with each other (a ratio per round)."""
    for f in fns:
        f()
    rounds = []
    for _ in range(repeat):
        row = []
        for f in fns:
            f()
            best = math.inf
            for _ in range(block):
                t0 = time.perf_counter()
                f()
                best = min(best, time.perf_counter() - t0)
            row.append(best)
        rounds.append(row)
    return rounds


PEERS = ("torch", "onnxruntime", "openvino", "sgemm")
PEER_TITLES = {
    "torch": "torch.nn.functional.conv2d (oneDNN)",
    "onnxruntime": "onnxruntime CPU, one-node ONNX Conv",
    "openvino": "OpenVINO CPU (f32), one-node ONNX Conv",
    "sgemm": "NumPy matmul on the layer's equivalent GEMM (a yardstick, not a convolution)",
}


def peer_versions(peers):
    """{peer: version} of the peers that import, {peer: reason} of those that do not."""
    found, missing = {}, {}
    for peer in peers:
        try:
            if peer == "sgemm":
                found[peer] = np.__version__
            else:
                found[peer] = __import__(peer).__version__
        except Exception as e:  # an ImportError, or a peer broken at import
            missing[peer] = f"{type(e).__name__}: {e}"
    return found, missing


def onnx_conv_model(spec, w, b):
    """A one-node ONNX model computing the layer: input "x", the weights and bias as initializers."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    N, C, H, W, K, kh, kw, s, p, d, g = spec
    Ho, Wo = out_hw(spec)
    node = helper.make_node(
        "Conv",
        ["x", "w", "b"],
        ["y"],
        kernel_shape=[kh, kw],
        strides=[s, s],
        pads=[p, p, p, p],
        dilations=[d, d],
        group=g,
    )
    graph = helper.make_graph(
        [node],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [N, C, H, W])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [N, K, Ho, Wo])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by older runtimes too
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _peer_call(peer, spec, x, w, b, threads):
    """A no-argument callable running the layer on `peer` with `threads` threads."""
    N, C, H, W, K, kh, kw, s, p, d, g = spec
    if peer == "torch":
        import torch

        torch.set_num_threads(threads)
        tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
        return lambda: torch.nn.functional.conv2d(tx, tw, tb, s, p, d, g).numpy()
    if peer == "onnxruntime":
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        # ORT's pool spins after each run and would take the cores from the next library's call
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sess = ort.InferenceSession(
            onnx_conv_model(spec, w, b), so, providers=["CPUExecutionProvider"]
        )
        return lambda: sess.run(None, {"x": x})[0]
    if peer == "openvino":
        import openvino as ov

        core = ov.Core()
        with tempfile.TemporaryDirectory() as d_:
            path = f"{d_}/conv.onnx"
            with open(path, "wb") as f:
                f.write(onnx_conv_model(spec, w, b))
            model = core.read_model(path)
        # f32: on CPUs with AVX512-BF16 OpenVINO would otherwise compute in bfloat16
        compiled = core.compile_model(
            model,
            "CPU",
            {
                "INFERENCE_NUM_THREADS": threads,
                "INFERENCE_PRECISION_HINT": "f32",
                "PERFORMANCE_HINT": "LATENCY",
                "NUM_STREAMS": 1,
            },
        )
        req = compiled.create_infer_request()
        return lambda: req.infer({0: x})[compiled.output(0)]
    raise ValueError(f"unknown peer {peer!r}")


def _sgemm_call(spec, threads):
    from fastconv import _threads

    m, k, n = gemm_shape(spec)
    a = np.random.default_rng(0).standard_normal((m, k), dtype=np.float32)
    bm = np.random.default_rng(1).standard_normal((k, n), dtype=np.float32)
    cm = np.empty((m, n), np.float32)

    def sgemm():
        with _threads.blas_threads(threads):
            np.matmul(a, bm, out=cm)

    return sgemm


def time_layer(name, spec, threads, peers=("torch",), repeat=7):
    """One layer on `threads` threads: fastconv and each peer interleaved in one process.

    Returns a dict: the layer, the planner's algorithm, fastconv's best time and GFLOP/s, and per
    peer its best time, GFLOP/s, best/best ratio fastconv/peer and the median of per-round ratios
    (below 1: fastconv faster), plus the peer's max relative difference from fastconv's result.
    """
    import fastconv

    N, C, H, W, K, kh, kw, s, p, d, g = spec
    x, w, b = arrays(spec)
    out = np.empty((N, K) + out_hw(spec), np.float32)
    with fastconv.threads(threads):
        ours = lambda: fastconv.conv2d(x, w, b, s, p, d, g, out=out)  # noqa: E731
        ref = ours().copy()
        conv_peers = [q for q in peers if q != "sgemm"]
        calls = [_peer_call(q, spec, x, w, b, threads) for q in conv_peers]
        diffs = {}
        for q, f in zip(conv_peers, calls, strict=True):
            y = np.asarray(f())
            diffs[q] = float(np.max(np.abs(y - ref)) / max(1.0, float(np.max(np.abs(ref)))))
        rounds = interleaved_rounds([ours] + calls, repeat)
        if "sgemm" in peers and g == 1:
            # after the rounds, not inside them: OpenBLAS's threads spin for a while after a GEMM
            # and would steal the cores from whichever call came next
            sg = [r[0] for r in interleaved_rounds([_sgemm_call(spec, threads)], repeat)]
            time.sleep(0.3)
        else:
            sg = None
    f_ = flops(spec)
    t_ours = [r[0] for r in rounds]
    row = dict(
        layer=name,
        spec=list(spec),
        threads=threads,
        algorithm=_algorithm(x, w, s, p, d, g),
        flops=f_,
        fastconv=dict(best_s=min(t_ours), median_s=statistics.median(t_ours)),
        peers={},
    )
    row["fastconv"]["gflops"] = f_ / row["fastconv"]["best_s"] / 1e9
    for i, q in enumerate(conv_peers, start=1):
        t = [r[i] for r in rounds]
        row["peers"][q] = dict(
            best_s=min(t),
            median_s=statistics.median(t),
            gflops=f_ / min(t) / 1e9,
            ratio_best=min(t_ours) / min(t),
            ratio_median=statistics.median(a / c for a, c in zip(t_ours, t, strict=True)),
            max_rel_diff=diffs[q],
        )
    if sg is not None:
        row["peers"]["sgemm"] = dict(
            best_s=min(sg),
            gflops=f_ / min(sg) / 1e9,
            ratio_best=min(t_ours) / min(sg),
        )
    return row


def _algorithm(x, w, s, p, d, g):
    from fastconv.cost import conv2d_cost

    return conv2d_cost(x.shape, w.shape, s, p, d, g).algorithm


def select_layers(names):
    """The layers named in `names` ("public", "extra", "all" or layer names), in suite order."""
    suites = {"public": PUBLIC_LAYERS, "extra": EXTRA_LAYERS}
    every = {**PUBLIC_LAYERS, **EXTRA_LAYERS}
    chosen = {}
    for n in names:
        if n == "all":
            chosen.update(every)
        elif n in suites:
            chosen.update(suites[n])
        elif n in every:
            chosen[n] = every[n]
        else:
            raise ValueError(
                f"unknown layer {n!r}: choose from public, extra, all or {', '.join(every)}"
            )
    return chosen


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def layer_table(
    layers=None, threads=(None,), peers=("torch", "sgemm"), repeat=7, out=print, progress=None
):
    """Time `layers` ({name: spec}; default the public suite and the extra layers) on each thread
    count against each peer; print a table per thread count and the geomeans; return the rows."""
    import fastconv

    if layers is None:
        layers = {**PUBLIC_LAYERS, **EXTRA_LAYERS}
    if progress is None:

        def progress(msg):
            sys.stderr.write(msg + "\n")
            sys.stderr.flush()

    found, missing = peer_versions(peers)
    threads = [t or fastconv.get_num_threads() for t in threads]
    out(
        f"conv2d layer suite: fastconv {fastconv.__version__}, float32, "
        f"{len(layers)} layers, {repeat} interleaved rounds per layer"
    )
    for q in peers:
        if q in found:
            out(f"  peer {q} {found[q]}: {PEER_TITLES[q]}")
        else:
            out(f"  note: peer {q} is not available ({missing[q]}); skipped")
    peers = [q for q in peers if q in found]
    conv_peers = [q for q in peers if q != "sgemm"]
    out(
        "  ratio = fastconv time / peer time (below 1: fastconv faster): best/best, and the "
        "median of per-round ratios; GF/s counts direct-convolution FLOPs"
    )
    rows = []
    total = len(layers) * len(threads)
    for t in threads:
        out(f"\n{t} thread{'s' if t > 1 else ''}")
        hdr = f"{'layer':<18} {'algorithm':<10} {'fastconv':>9} {'GF/s':>6}"
        for q in conv_peers:
            hdr += f" | {q[:11]:>11} {'GF/s':>6} {'ratio':>5} {'med':>5}"
        if "sgemm" in peers:
            hdr += f" | {'%sgemm':>6}"
        out(hdr)
        for name, spec in layers.items():
            t0 = time.perf_counter()
            progress(f"bench: [{len(rows) + 1}/{total}] {name}, {t} threads ...")
            r = time_layer(name, spec, t, peers, repeat)
            rows.append(r)
            progress(
                f"bench: [{len(rows)}/{total}] {name} done in {time.perf_counter() - t0:.1f} s"
            )
            fc = r["fastconv"]
            line = (
                f"{name:<18} {r['algorithm']:<10} {fc['best_s'] * 1e3:7.3f}ms {fc['gflops']:6.1f}"
            )
            for q in conv_peers:
                pq = r["peers"][q]
                line += (
                    f" | {pq['best_s'] * 1e3:9.3f}ms {pq['gflops']:6.1f} "
                    f"{pq['ratio_best']:5.2f} {pq['ratio_median']:5.2f}"
                )
                if pq["max_rel_diff"] > 1e-3:
                    line += f" (differs by {pq['max_rel_diff']:.1e})"
            if "sgemm" in peers:
                pq = r["peers"].get("sgemm")
                line += f" | {100 / pq['ratio_best']:5.0f}%" if pq else f" | {'-':>6}"
            out(line)
        for q in conv_peers:
            rs = [r["peers"][q] for r in rows if r["threads"] == t and r["layer"] in PUBLIC_LAYERS]
            if rs:
                out(
                    f"geomean fastconv/{q} over the {len(rs)} public-suite layers: "
                    f"{geomean([v['ratio_best'] for v in rs]):.3f} best/best, "
                    f"{geomean([v['ratio_median'] for v in rs]):.3f} median per round "
                    f"(worst layer {max(v['ratio_best'] for v in rs):.2f})"
                )
    return rows
