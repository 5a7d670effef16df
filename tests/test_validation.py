"""Hostile sizes and values: every public entry refuses them with a ValueError/TypeError naming
the argument, before any kernel runs or anything large is allocated (issue 13, item 2).

The oracle is the documented rule, not fastconv._geometry: per-axis sizes above 2**31 - 1 and
arrays larger than the machine's physical memory (computed here from os.sysconf) are refused.
"""

import os
import tracemalloc

import numpy as np
import pytest

import fastconv
from fastconv.cost import conv2d_cost

X = np.ones((1, 3, 5, 5))
W = np.ones((4, 3, 3, 3))
RAM = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
C_INT = 2**31 - 1

# (keyword changes, exception, message); each is refused by conv2d, dynamic_conv2d, the cost
# model and a Conv2d layer alike
HOSTILE = [
    (dict(padding=(0, 10**9)), ValueError, "GiB.*memory; check padding"),  # was a 1 TiB MemoryError
    (dict(padding=2**62), ValueError, "padding must be at most"),  # was an OverflowError
    (dict(padding=C_INT + 1), ValueError, "padding must be at most"),
    (dict(padding=(C_INT, 0)), ValueError, "padded input"),  # fits alone, not with the image
    (dict(stride=2**40), ValueError, "stride must be at most"),
    (dict(stride=(1, 2**63)), ValueError, "stride must be at most"),
    (dict(dilation=2**31), ValueError, "dilation must be at most"),
    (dict(dilation=2**30), ValueError, "kernel extent"),  # 2*(3 - 1) + 1 > C int
    (dict(padding=np.int64(-1)), ValueError, "padding must be non-negative"),
    (dict(stride=True), TypeError, "stride must be an int"),
    (dict(padding=(1.0, 1)), TypeError, "padding must be an int"),
]
IDS = [str(h[0]) for h in HOSTILE]


def _small_peak(fn):
    """Run fn (which must raise) and return the peak traced allocation in bytes."""
    tracemalloc.start()
    try:
        with pytest.raises((ValueError, TypeError)) as err:
            fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return err, peak


@pytest.mark.parametrize("change,exc,msg", HOSTILE, ids=IDS)
def test_conv2d_refuses_hostile_sizes_before_allocating(change, exc, msg):
    x0 = X.copy()
    out = np.full((1, 4, 3, 3), 7.0)
    err, peak = _small_peak(lambda: fastconv.conv2d(X, W, out=out, **change))
    assert err.type is exc and err.match(msg)
    assert peak < 2**20  # refused before anything large was allocated
    np.testing.assert_array_equal(X, x0)
    assert (out == 7.0).all()


@pytest.mark.parametrize("change,exc,msg", HOSTILE, ids=IDS)
def test_dynamic_conv2d_refuses_hostile_sizes(change, exc, msg):
    bank = np.ones((2,) + W.shape)
    att = np.ones((1, 2))
    err, peak = _small_peak(lambda: fastconv.dynamic_conv2d(X, bank, att, **change))
    assert err.type is exc and err.match(msg)
    assert peak < 2**20


@pytest.mark.parametrize("change,exc,msg", HOSTILE, ids=IDS)
def test_cost_and_layers_refuse_hostile_sizes(change, exc, msg):
    with pytest.raises(exc, match=msg):
        conv2d_cost(X.shape, W.shape, **change)
    with pytest.raises(exc, match=msg.split(".*")[0] if "GiB" not in msg else "GiB"):
        fastconv.Conv2d(W, **change)(X)


def test_memory_limit_is_the_machines_memory():
    """The rule, from its definition: an output of more bytes than physical memory is refused,
    one just under it is accepted by the cost model (nothing is allocated there)."""
    from fastconv import _geometry

    assert _geometry.MAX_BYTES == min(RAM, np.iinfo(np.intp).max)
    # float64 x (1, 3, 5, 5) padded by p on each side of the width: the padded input holds
    # 3 * 5 * (5 + 2p) * 8 bytes, the largest array of the call
    over = RAM // (2 * 120) + 1  # just over physical memory
    with pytest.raises(ValueError, match="memory"):
        conv2d_cost(X.shape, W.shape, padding=(0, over), dtype=np.float64)
    under = RAM // (2 * 120) - 10  # just under: accepted (the cost model allocates nothing)
    c = conv2d_cost(X.shape, W.shape, padding=(0, under), dtype=np.float64)
    assert c.input_bytes + 2 * under * 3 * 5 * 8 <= RAM


def test_empty_batch_does_not_bypass_the_per_sample_limit():
    with pytest.raises(ValueError, match="GiB"):
        fastconv.conv2d(np.ones((0, 3, 5, 5)), W, padding=(0, 10**9))


@pytest.mark.parametrize(
    "args,exc,msg",
    [
        ((None, None), TypeError, "x_shape must be a tuple of ints"),
        (((1, 3, 5, 5), None), TypeError, "weight_shape must be a tuple of ints"),
        ((5, (4, 3, 3, 3)), TypeError, "x_shape must be a tuple of ints"),
        (((1, 3.0, 5, 5), (4, 3, 3, 3)), TypeError, "x_shape must be a tuple of ints"),
        (((1, True, 5, 5), (4, 3, 3, 3)), TypeError, "x_shape must be a tuple of ints"),
        (((1, -3, 5, 5), (4, 3, 3, 3)), ValueError, "x_shape must have non-negative"),
        (((1, 3, 5), (4, 3, 3, 3, 1)), ValueError, "weight_shape must be 4-D"),
        (((3, 5), (4, 3, 3, 3)), ValueError, "x_shape must be 3-D"),
    ],
)
def test_cost_validates_shapes(args, exc, msg):
    with pytest.raises(exc, match=msg):
        conv2d_cost(*args)


@pytest.mark.parametrize(
    "kw,msg",
    [
        (dict(padding=(0, 10**9)), "GiB"),
        (dict(padding=2**62), "padding must be at most"),
        (dict(stride=2**40), "stride must be at most"),
        (dict(dilation=2**30), "kernel extent"),
        (dict(kernel_size=2**31), "kernel_size must be at most"),
    ],
)
def test_im2col_and_col2im_refuse_hostile_sizes(kw, msg):
    args = dict(kernel_size=3)
    args.update(kw)
    err, peak = _small_peak(lambda: fastconv.im2col(X, **args))
    assert err.match(msg) and peak < 2**20
    cols = np.ones((27, 9))
    with pytest.raises(ValueError, match=msg):
        fastconv.col2im(cols, 5, **args)


def test_col2im_refuses_an_image_larger_than_memory():
    # one block position, a huge image: the output image itself is what would not fit
    err, peak = _small_peak(
        lambda: fastconv.col2im(np.ones((27, 1)), (10**6, 10**6), 3, stride=10**7)
    )
    assert err.match("image .* GiB") and peak < 2**20


def test_layer_with_asymmetric_padding_checks_before_padding_the_input():
    layer = fastconv.Conv2d(W, padding=(0, 10**9, 0, 0))  # numpy.pad would allocate 30 GiB
    err, peak = _small_peak(lambda: layer(X))
    assert err.match("GiB") and peak < 2**20
    with pytest.raises(ValueError, match="padding must be at most"):
        fastconv.Conv2d(W, padding=(0, 2**62, 0, 0))


def test_threads_refuse_absurd_counts():
    before = fastconv.get_num_threads()
    with pytest.raises(ValueError, match="n must be at most"):
        fastconv.set_num_threads(1000)
    with pytest.raises(ValueError, match="n must be at most"):
        with fastconv.threads(1000):
            pass
    assert fastconv.get_num_threads() == before
