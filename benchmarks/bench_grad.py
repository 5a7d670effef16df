"""asv benchmarks for fastconv's backward pass and transposed convolution, torch in the same graphs.

conv2d_backward (grad_x and grad_weight) on the public layer suite against torch.autograd.grad of the
same conv2d; conv_transpose2d on decoder layers (U-Net 2x2 stride-2 up-convolutions, DCGAN 4x4 stride 2)
against torch.nn.functional.conv_transpose2d; the backward pass's peak memory.  The ``impl`` parameter
holds fastconv's two backends and torch: each graph shows the ratio.
"""

from __future__ import annotations

import numpy as np

from ._common import (
    LAYERS,
    THREADS,
    fastconv,
    layer_out_hw,
    require_backend,
    require_torch,
    rng,
    warm,
)

# name -> (N, Cin, H, W, Cout, k, stride, padding), float32
DECODER_LAYERS = {
    "dcgan_64to3_32": (16, 64, 32, 32, 3, 4, 2, 1),
    "unet_up_512to256_28": (4, 512, 28, 28, 256, 2, 2, 0),
    "unet_up_256to128_56": (4, 256, 56, 56, 128, 2, 2, 0),
    "dcgan_512to256_4": (16, 512, 4, 4, 256, 4, 2, 1),
    "dcgan_256to128_8": (16, 256, 8, 8, 128, 4, 2, 1),
    "dcgan_128to64_16": (16, 128, 16, 16, 64, 4, 2, 1),
}
IMPLS = ("cython", "numba", "torch")
# the smoke test (tests/test_benchmarks.py) runs the first combination: the cheapest layer first
BACKWARD_LAYERS = ["b1_3x3_c64"] + [n for n in LAYERS if n != "b1_3x3_c64"]


class _Threads:
    def _use(self, n, impl):
        self._prev = fastconv.get_num_threads()
        fastconv.set_num_threads(n)
        self._torch = None
        if impl == "torch":
            self._torch = require_torch()
            self._prev_torch = self._torch.get_num_threads()
            self._torch.set_num_threads(n)
        else:
            require_backend(impl)

    def teardown(self, *args):
        if hasattr(self, "_prev"):
            fastconv.set_num_threads(self._prev)
        if getattr(self, "_torch", None) is not None:
            self._torch.set_num_threads(self._prev_torch)


def backward_callable(spec, impl):
    """A no-argument function computing grad_x and grad_weight of one layer with `impl`."""
    n, c, h, w, k, kh, kw, s, p, d, g = spec
    ho, wo = layer_out_hw(spec)
    r = rng()
    x = r.standard_normal((n, c, h, w)).astype(np.float32)
    wt = r.standard_normal((k, c // g, kh, kw)).astype(np.float32)
    go = r.standard_normal((n, k, ho, wo)).astype(np.float32)
    if impl != "torch":
        return lambda: fastconv.conv2d_backward(
            x, wt, go, s, p, d, g, needs=(True, True, False), backend=impl
        )
    torch = require_torch()
    tx = torch.from_numpy(x).requires_grad_()
    tw = torch.from_numpy(wt).requires_grad_()
    y = torch.nn.functional.conv2d(tx, tw, None, s, p, d, g)
    tgo = torch.from_numpy(go)
    return lambda: torch.autograd.grad(y, (tx, tw), tgo, retain_graph=True)


def weight_callable(spec, impl):
    """A no-argument function computing grad_weight alone of one layer with `impl`."""
    n, c, h, w, k, kh, kw, s, p, d, g = spec
    ho, wo = layer_out_hw(spec)
    r = rng()
    x = r.standard_normal((n, c, h, w)).astype(np.float32)
    wt = r.standard_normal((k, c // g, kh, kw)).astype(np.float32)
    go = r.standard_normal((n, k, ho, wo)).astype(np.float32)
    if impl != "torch":
        return lambda: fastconv.conv2d_weight(x, wt.shape, go, s, p, d, g, backend=impl)
    torch = require_torch()
    tx = torch.from_numpy(x)
    tw = torch.from_numpy(wt).requires_grad_()
    y = torch.nn.functional.conv2d(tx, tw, None, s, p, d, g)
    tgo = torch.from_numpy(go)
    return lambda: torch.autograd.grad(y, (tw,), tgo, retain_graph=True)


def transpose_callable(spec, impl):
    n, ci, h, w, co, k, s, p = spec
    r = rng()
    x = r.standard_normal((n, ci, h, w)).astype(np.float32)
    wt = r.standard_normal((ci, co, k, k)).astype(np.float32)
    b = r.standard_normal(co).astype(np.float32)
    if impl != "torch":
        return lambda: fastconv.conv_transpose2d(x, wt, b, s, p, backend=impl)
    torch = require_torch()
    tx, tw, tb = map(torch.from_numpy, (x, wt, b))

    def run():
        with torch.no_grad():
            return torch.nn.functional.conv_transpose2d(tx, tw, tb, s, p)

    return run


class Conv2dBackward(_Threads):
    """conv2d_backward (grad_x + grad_weight) on the public layer suite vs torch autograd, float32."""

    params = (BACKWARD_LAYERS, list(IMPLS), list(THREADS[::-1]))
    param_names = ["layer", "impl", "threads"]
    timeout = 300

    def setup(self, layer, impl, threads):
        self._use(threads, impl)
        self.fn = backward_callable(LAYERS[layer], impl)
        warm(self.fn)

    def time_backward(self, layer, impl, threads):
        self.fn()

    def peakmem_backward(self, layer, impl, threads):
        self.fn()


class Conv2dWeight(_Threads):
    """conv2d_weight alone (the direct weight-gradient kernel where it runs) on the public layer
    suite vs torch autograd's weight gradient, float32."""

    params = (BACKWARD_LAYERS, list(IMPLS), list(THREADS[::-1]))
    param_names = ["layer", "impl", "threads"]
    timeout = 300

    def setup(self, layer, impl, threads):
        self._use(threads, impl)
        self.fn = weight_callable(LAYERS[layer], impl)
        warm(self.fn)

    def time_conv2d_weight(self, layer, impl, threads):
        self.fn()


class ConvTranspose2d(_Threads):
    """conv_transpose2d on decoder layers vs torch.nn.functional.conv_transpose2d, float32."""

    params = (list(DECODER_LAYERS), list(IMPLS), list(THREADS[::-1]))
    param_names = ["layer", "impl", "threads"]
    timeout = 300

    def setup(self, layer, impl, threads):
        self._use(threads, impl)
        self.fn = transpose_callable(DECODER_LAYERS[layer], impl)
        warm(self.fn)

    def time_conv_transpose2d(self, layer, impl, threads):
        self.fn()


class BackwardWorkspace(_Threads):
    """Peak memory of the backward pass on (32, 64, 56, 56) 64->64 3x3 (bounded, not im2col-sized)."""

    params = (["cython", "numba"],)
    param_names = ["impl"]
    timeout = 300

    def setup(self, impl):
        self._use(THREADS[-1], impl)
        r = rng()
        self.x = r.standard_normal((32, 64, 56, 56)).astype(np.float32)
        self.w = r.standard_normal((64, 64, 3, 3)).astype(np.float32)
        self.go = r.standard_normal((32, 64, 56, 56)).astype(np.float32)
        self.impl = impl
        fastconv.conv2d_backward(self.x, self.w, self.go, padding=1, backend=impl)

    def peakmem_backward_b32_c64(self, impl):
        fastconv.conv2d_backward(self.x, self.w, self.go, padding=1, backend=self.impl)

    def track_workspace_mib(self, impl):
        import tracemalloc

        tracemalloc.start()
        r = fastconv.conv2d_backward(self.x, self.w, self.go, padding=1, backend=self.impl)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return (peak - sum(a.nbytes for a in r)) / 2**20

    track_workspace_mib.unit = "MiB"
