"""conv2d_cost against hand-computed figures and against what conv2d actually allocates."""

import numpy as np
import pytest

import fastconv
from fastconv.cost import conv2d_cost


def test_counts_match_hand_computation():
    c = conv2d_cost((4, 64, 56, 56), (128, 64, 3, 3), stride=2, padding=1)
    Ho = Wo = 28
    assert c.out_shape == (4, 128, Ho, Wo)
    assert c.macs == 4 * 128 * Ho * Wo * 64 * 9
    assert c.flops == 2 * c.macs
    assert c.input_bytes == 4 * 64 * 56 * 56 * 4
    assert c.weight_bytes == 128 * 64 * 9 * 4
    assert c.output_bytes == 4 * 128 * Ho * Wo * 4
    assert c.im2col_bytes == 4 * 64 * 9 * Ho * Wo * 4
    assert c.arithmetic_intensity == pytest.approx(
        c.flops / (c.input_bytes + c.weight_bytes + c.output_bytes)
    )


def test_grouped_and_float64():
    c = conv2d_cost((2, 32, 10, 10), (32, 1, 3, 3), padding=1, groups=32, dtype=np.float64)
    assert c.algorithm == "depthwise"
    assert c.macs == 2 * 32 * 100 * 9
    assert c.input_bytes == 2 * 32 * 100 * 8


def test_workspace_is_what_the_call_allocates():
    """The plan's workspace, for each algorithm, against tracemalloc's peak beyond the output."""
    import tracemalloc

    import fastconv

    rng = np.random.default_rng(0)
    cases = [
        ((4, 32, 28, 28), (32, 1, 3, 3), dict(padding=1, groups=32)),  # depthwise
        ((2, 64, 20, 20), (64, 8, 3, 3), dict(padding=1, groups=8)),  # grouped (where built)
        ((2, 64, 24, 24), (64, 64, 3, 3), dict(padding=1)),  # Winograd (where built)
        ((2, 8, 24, 24), (16, 8, 5, 5), dict(padding=2)),  # packed or gemm
    ]
    for xs, ws, kw in cases:
        x = rng.standard_normal(xs, dtype=np.float32)
        w = rng.standard_normal(ws, dtype=np.float32)
        c = conv2d_cost(xs, ws, dtype=np.float32, **kw)
        fastconv.conv2d(x, w, **kw)  # warm (JIT, imports)
        fastconv._plan.free_scratch()  # the call's scratch is allocated, and counted, afresh
        tracemalloc.start()
        try:
            y = fastconv.conv2d(x, w, **kw)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        extra = peak - y.nbytes
        assert c.workspace_bytes > 0, c.algorithm
        # the workspace is the bulk of what the call allocates (small arrays besides it)
        assert c.workspace_bytes <= extra <= c.workspace_bytes + 2**20, (c.algorithm, extra)


def test_pointwise_plan_needs_no_workspace():
    # float64 has no packed micro-kernel: a 1x1 layer on one thread is one GEMM on the input as
    # it lies (on more threads, im2col + GEMM tiles may win: pointwise keeps BLAS at one thread)
    c = conv2d_cost((4, 256, 56, 56), (64, 256, 1, 1), dtype=np.float64, nthreads=1)
    assert c.algorithm == "pointwise" and c.workspace_bytes == 0


def test_validates_like_conv2d():
    with pytest.raises(ValueError, match="groups=3 must divide"):
        conv2d_cost((1, 4, 8, 8), (3, 1, 3, 3), groups=3)
    with pytest.raises(TypeError, match="dtype"):
        conv2d_cost((1, 4, 8, 8), (3, 4, 3, 3), dtype=np.int32)


def test_workspace_bounded_for_large_batches():
    for n in (1, 32, 256):
        c = conv2d_cost((n, 64, 56, 56), (64, 64, 3, 3), padding=1)
        assert c.workspace_bytes <= 64 * 2**20
        assert fastconv.cost.conv2d_cost((n, 64, 56, 56), (64, 64, 3, 3), padding=1) == c
