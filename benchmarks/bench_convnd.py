"""asv benchmarks for fastconv.conv1d / conv3d (and 1-D/3-D im2col), torch alongside.

Layers: a temporal convolutional network (TCN) layer at dilations 1 and 16, a long FIR filter bank,
a 3-D U-Net 3x3x3 layer, a C3D layer and a depthwise 3-D layer, at batch sizes that keep a
benchmark under a second; the timings compare with torch (GFLOP/s: benchmarks/scripts/convnd_speed.py).
"""

from __future__ import annotations

from ._common import THREADS, fastconv, require_backend, require_torch, rng, use_threads, warm

# name: (rank, x shape, weight shape, kwargs)
LAYERS = {
    "tcn_256_d1": (1, (2, 256, 4096), (256, 256, 3), dict(padding=1)),
    "tcn_256_d16": (1, (2, 256, 4096), (256, 256, 3), dict(padding=16, dilation=16)),
    "fir_16x63": (1, (4, 16, 16384), (16, 16, 63), dict(padding=31)),
    "unet3d_32_32c": (3, (1, 32, 32, 32, 32), (32, 32, 3, 3, 3), dict(padding=1)),
    "c3d_64_128": (3, (1, 64, 8, 56, 56), (128, 64, 3, 3, 3), dict(padding=1)),
    "dw3d_64": (3, (1, 64, 16, 32, 32), (64, 1, 3, 3, 3), dict(padding=1, groups=64)),
}


class ConvNd:
    """conv1d / conv3d on layers of TCNs, FIR banks, 3-D U-Nets and C3D, against torch."""

    params = (["float32"], list(LAYERS), ["numba", "cython", "torch"], list(THREADS))
    param_names = ["dtype", "layer", "backend", "threads"]
    timeout = 120

    def setup(self, dtype, layer, backend, threads):
        rank, xs, ws, kw = LAYERS[layer]
        x = rng().standard_normal(xs).astype(dtype)
        w = rng().standard_normal(ws).astype(dtype)
        if backend == "torch":
            torch = require_torch()
            f = torch.nn.functional.conv1d if rank == 1 else torch.nn.functional.conv3d
            xt, wt = torch.from_numpy(x), torch.from_numpy(w)

            def fn():
                with torch.no_grad():
                    return f(xt, wt, **kw)

            self.fn = fn
        else:
            require_backend(backend)
            f = fastconv.conv1d if rank == 1 else fastconv.conv3d
            self.fn = lambda: f(x, w, **kw, backend=backend)
        self.restore = use_threads(threads)
        warm(self.fn)

    def teardown(self, *params):
        restore = getattr(self, "restore", None)  # setup may have skipped before setting it
        if restore is not None:
            restore()

    def time_conv(self, dtype, layer, backend, threads):
        self.fn()


class Unfold3d:
    """3-D im2col (kernel_size a tuple of three ints) and its col2im."""

    params = (["float32", "float64"], ["numba", "cython"])
    param_names = ["dtype", "backend"]

    def setup(self, dtype, backend):
        require_backend(backend)
        self.x = rng().standard_normal((1, 16, 16, 32, 32)).astype(dtype)
        self.cols = fastconv.im2col(self.x, (3, 3, 3), padding=1, backend=backend)
        self.backend = backend

    def time_im2col(self, dtype, backend):
        fastconv.im2col(self.x, (3, 3, 3), padding=1, backend=backend)

    def time_col2im(self, dtype, backend):
        fastconv.col2im(self.cols, (16, 32, 32), (3, 3, 3), padding=1, backend=backend)
