"""The conv2d layer-suite timing harness behind `python -m fastconv bench` and benchmarks/layers_vs_torch.py.

Same process, interleaved best-of-N, float32: fastconv.conv2d, torch (if installed) and NumPy's sgemm on
each layer's equivalent GEMM, reported as GFLOP/s and ratios (the machine is shared and noisy).
"""

from __future__ import annotations

import math
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


def layer_rows(layers, repeat=7, threads=None):
    """One dict per layer: times, GFLOP/s, ratio to torch and fraction of NumPy's sgemm rate."""
    import fastconv

    threads = threads or fastconv.get_num_threads()
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    with fastconv.threads(threads):
        return [_time_layer(name, spec, repeat, threads, torch) for name, spec in layers.items()]


def _time_layer(name, spec, repeat, threads, torch):
    import fastconv
    from fastconv import _threads

    N, C, H, W, K, kh, kw, s, p, d, g = spec
    x, w, b = arrays(spec)
    out = np.empty((N, K) + out_hw(spec), np.float32)
    fns = [lambda: fastconv.conv2d(x, w, b, s, p, d, g, out=out)]
    if torch is not None:
        tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
        fns.append(lambda: torch.nn.functional.conv2d(tx, tw, tb, s, p, d, g))
    times = interleaved_best(fns, repeat)
    row = dict(
        name=name, flops=flops(spec), fastconv=times[0], algorithm=_algorithm(x, w, s, p, d, g)
    )
    if torch is not None:
        row["torch"] = times[1]
    if g == 1:
        # The sgemm yardstick runs after the rounds, not inside them: OpenBLAS's worker threads spin
        # for a while after a GEMM and would steal the cores from whichever call came next
        # (measured: the 128-channel layer 4.5 -> 7.1 ms when it followed the sgemm).
        m, k, n = gemm_shape(spec)
        a = np.random.default_rng(0).standard_normal((m, k), dtype=np.float32)
        bm = np.random.default_rng(1).standard_normal((k, n), dtype=np.float32)
        cm = np.empty((m, n), np.float32)

        def sgemm():
            with _threads.blas_threads(threads):
                np.matmul(a, bm, out=cm)

        row["sgemm"] = interleaved_best([sgemm], repeat)[0]
        time.sleep(0.3)  # let OpenBLAS's threads go idle before the next layer's rounds
    return row


def _algorithm(x, w, s, p, d, g):
    from fastconv.cost import conv2d_cost

    return conv2d_cost(x.shape, w.shape, s, p, d, g).algorithm


def layer_table(repeat=7, threads=None, extra=True):
    """Print the layer table and the geomean ratio; returns 0."""
    import fastconv

    public, source = load_public_layers()
    layers = dict(public)
    if extra:
        layers.update(EXTRA_LAYERS)
    threads = threads or fastconv.get_num_threads()
    rows = layer_rows(layers, repeat, threads)
    print(f"layers from {source}")
    print(
        f"conv2d layer suite, float32, {threads} threads, best of {repeat} interleaved "
        f"(python -m fastconv bench --repeat {repeat})"
    )
    hdr = f"{'layer':<18} {'algorithm':<10} {'fastconv':>9} {'GF/s':>6} {'torch':>9} {'GF/s':>6} {'ratio':>6} {'%sgemm':>7}"
    print(hdr)
    ratios = []
    for r in rows:
        f = r["flops"]
        line = f"{r['name']:<18} {r['algorithm']:<10} {r['fastconv'] * 1e3:7.2f}ms {f / r['fastconv'] / 1e9:6.1f}"
        if "torch" in r:
            ratio = r["fastconv"] / r["torch"]
            if r["name"] in public:
                ratios.append(ratio)
            line += f" {r['torch'] * 1e3:7.2f}ms {f / r['torch'] / 1e9:6.1f} {ratio:6.2f}"
        else:
            line += f" {'-':>9} {'-':>6} {'-':>6}"
        if "sgemm" in r:
            line += f" {100 * r['sgemm'] / r['fastconv']:6.0f}%"
        print(line)
    if ratios:
        geo = math.exp(sum(math.log(v) for v in ratios) / len(ratios))
        print(
            f"geomean time ratio fastconv/torch over the public suite: {geo:.3f} "
            f"(max {max(ratios):.2f}); below 1 means fastconv is faster"
        )
    return 0
