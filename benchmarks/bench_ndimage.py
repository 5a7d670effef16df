"""asv benchmarks for fastconv.ndimage with scipy.ndimage side by side (the issue 17 targets:
256^3 volumes with 5x5x5 correlate and sigma-2 Gaussian, a 10^7-sample 63-tap convolve1d), and
torch's conv3d for the zero-padded correlate."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ._common import THREADS, require_torch, rng, use_threads, warm

NTHREADS = THREADS[-1]
PEERS = ["fastconv-auto", "fastconv-numba", "scipy.ndimage"]


def _module(peer):
    if peer == "scipy.ndimage":
        return ndimage, {}
    import fastconv.ndimage as fnd

    backend = peer.split("-")[1]
    return fnd, {"backend": backend}


class Volume:
    """A float32 or float64 cube: correlate with a 5x5x5 kernel, gaussian_filter sigma 2,
    uniform_filter size 5 (64^3 is the quick smoke size, 256^3 the issue's target)."""

    params = ([64, 256], ["float32", "float64"], PEERS)
    param_names = ["n", "dtype", "peer"]
    timeout = 600

    def setup(self, n, dtype, peer):
        r = rng()
        self.x = r.standard_normal((n, n, n)).astype(dtype)
        self.w = r.standard_normal((5, 5, 5))
        self.mod, self.kw = _module(peer)
        self._restore = use_threads(NTHREADS)
        warm(lambda: self.mod.correlate(self.x[:8, :8, :8], self.w, **self.kw))
        warm(lambda: self.mod.gaussian_filter(self.x[:8, :8, :8], 2, **self.kw))
        warm(lambda: self.mod.uniform_filter(self.x[:8, :8, :8], 5, **self.kw))

    def teardown(self, n, dtype, peer):
        self._restore()

    def time_correlate_5x5x5(self, n, dtype, peer):
        self.mod.correlate(self.x, self.w, **self.kw)

    def time_gaussian_filter_sigma2(self, n, dtype, peer):
        self.mod.gaussian_filter(self.x, 2, **self.kw)

    def time_uniform_filter_5(self, n, dtype, peer):
        self.mod.uniform_filter(self.x, 5, **self.kw)

    def peakmem_gaussian_filter_sigma2(self, n, dtype, peer):
        self.mod.gaussian_filter(self.x, 2, **self.kw)


class Signal1d:
    """convolve1d of a long float32/float64 signal with 63 taps (10^5 smoke size, 10^7 target)."""

    params = ([10**5, 10**7], ["float32", "float64"], PEERS)
    param_names = ["n", "dtype", "peer"]
    timeout = 300

    def setup(self, n, dtype, peer):
        r = rng()
        self.x = r.standard_normal(n).astype(dtype)
        self.w = r.standard_normal(63)
        self.mod, self.kw = _module(peer)
        self._restore = use_threads(NTHREADS)
        warm(lambda: self.mod.convolve1d(self.x[:1000], self.w, **self.kw))

    def teardown(self, n, dtype, peer):
        self._restore()

    def time_convolve1d_63(self, n, dtype, peer):
        self.mod.convolve1d(self.x, self.w, **self.kw)


class Image2d:
    """A 2048x2048 float64 image along one axis (axis 0: the column-blocked kernel) and N-d."""

    params = (["correlate1d-axis0", "correlate1d-axis1", "correlate-7x7"], PEERS)
    param_names = ["op", "peer"]
    timeout = 300

    def setup(self, op, peer):
        r = rng()
        self.x = r.standard_normal((2048, 2048))
        self.mod, self.kw = _module(peer)
        self._restore = use_threads(NTHREADS)
        w1, w2 = r.standard_normal(15), r.standard_normal((7, 7))
        m, kw, x = self.mod, self.kw, self.x
        if op == "correlate1d-axis0":
            self.fn = lambda: m.correlate1d(x, w1, 0, **kw)
        elif op == "correlate1d-axis1":
            self.fn = lambda: m.correlate1d(x, w1, 1, **kw)
        else:
            self.fn = lambda: m.correlate(x, w2, **kw)
        warm(self.fn)

    def teardown(self, op, peer):
        self._restore()

    def time_filter(self, op, peer):
        self.fn()


class VolumeZeroPadded:
    """correlate(mode='constant', cval=0) of a float32 cube with a 5x5x5 kernel beside torch's
    conv3d with padding 2 (the same numbers up to float32 rounding; torch sums in float32)."""

    params = ([64, 256], ["fastconv", "torch.conv3d"])
    param_names = ["n", "peer"]
    timeout = 300

    def setup(self, n, peer):
        r = rng()
        self.x = r.standard_normal((n, n, n)).astype(np.float32)
        self.w = r.standard_normal((5, 5, 5))
        self._restore = use_threads(NTHREADS)
        if peer == "torch.conv3d":
            torch = require_torch()
            torch.set_num_threads(NTHREADS)
            xt = torch.from_numpy(self.x)[None, None]
            wt = torch.from_numpy(self.w.astype(np.float32))[None, None]
            f = torch.nn.functional.conv3d

            def run():
                with torch.no_grad():
                    return f(xt, wt, padding=2)

            self.fn = run
        else:
            import fastconv.ndimage as fnd

            x, w = self.x, self.w
            self.fn = lambda: fnd.correlate(x, w, mode="constant")
        warm(self.fn)

    def teardown(self, n, peer):
        self._restore()

    def time_correlate_5x5x5(self, n, peer):
        self.fn()
