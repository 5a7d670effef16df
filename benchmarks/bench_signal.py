"""asv benchmarks for fastconv.signal, with scipy.signal.correlate2d, scipy.ndimage.correlate,
scipy.signal.fftconvolve and oaconvolve side by side (float64, fastconv on all CPUs)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

from ._common import THREADS, rng, use_threads, warm

NTHREADS = THREADS[-1]

PEERS = [
    "fastconv-auto",
    "fastconv-numba",
    "fastconv-cython",
    "scipy.signal.correlate2d",
    "scipy.ndimage.correlate",
    "scipy.signal.fftconvolve",
    "scipy.signal.oaconvolve",
]


def _gaussian(n, sigma):
    g = np.exp(-0.5 * ((np.arange(n) - (n - 1) / 2) / sigma) ** 2)
    return np.outer(g, g) / g.sum() ** 2


def _kernel(name, r):
    kind, size = name.split("_")
    n = int(size)
    return _gaussian(n, n / 6) if kind == "gauss" else r.standard_normal((n, n))


def _runner(peer, x, k):
    """A no-argument callable computing correlate2d(x, k, 'same') by `peer`."""
    kf = np.ascontiguousarray(k[::-1, ::-1])  # correlation = convolution with the flipped kernel
    if peer.startswith("fastconv"):
        from fastconv import signal as fs

        backend = peer.split("-")[1]
        if backend == "cython":
            from fastconv._plan import cython_available

            if not cython_available("signal"):
                raise NotImplementedError("cython signal kernels not built")
        return lambda: fs.correlate2d(x, k, "same", backend=backend)
    if peer == "scipy.signal.correlate2d":
        if k.size > 81:
            raise NotImplementedError("minutes per call: skipped for kernels above 9x9")
        return lambda: signal.correlate2d(x, k, "same")
    if peer == "scipy.ndimage.correlate":
        if k.size > 225:
            raise NotImplementedError("seconds per call: skipped for kernels above 15x15")
        return lambda: ndimage.correlate(x, k, mode="constant")
    if peer == "scipy.signal.fftconvolve":
        return lambda: signal.fftconvolve(x, kf, "same")
    return lambda: signal.oaconvolve(x, kf, "same")


class Correlate2dImage:
    """One 2048x2048 float64 image, mode='same', boundary='fill'."""

    params = (["rand_5", "gauss_15", "rand_31"], PEERS)
    param_names = ["kernel", "peer"]
    timeout = 180

    def setup(self, kernel, peer):
        r = rng()
        self.x = r.standard_normal((2048, 2048))
        self.k = _kernel(kernel, r)
        self._restore = use_threads(NTHREADS)
        self.fn = _runner(peer, self.x, self.k)
        warm(self.fn)

    def teardown(self, kernel, peer):
        self._restore()

    def time_correlate2d(self, kernel, peer):
        self.fn()

    def peakmem_correlate2d(self, kernel, peer):
        self.fn()


class Correlate2dStack:
    """64 images of 512x512 float64 through axes=(-2, -1), against a Python loop."""

    params = (["rand_5", "gauss_15"], ["fastconv-axes", "fastconv-loop", "scipy.ndimage-loop"])
    param_names = ["kernel", "how"]
    timeout = 180

    def setup(self, kernel, how):
        from fastconv import signal as fs

        r = rng()
        self.x = r.standard_normal((64, 512, 512))
        self.k = _kernel(kernel, r)
        self._restore = use_threads(NTHREADS)
        x, k = self.x, self.k
        if how == "fastconv-axes":
            self.fn = lambda: fs.correlate2d(x, k, "same", axes=(-2, -1))
        elif how == "fastconv-loop":
            self.fn = lambda: [fs.correlate2d(im, k, "same") for im in x]
        else:
            self.fn = lambda: [ndimage.correlate(im, k, mode="constant") for im in x]
        warm(self.fn)

    def teardown(self, kernel, how):
        self._restore()

    def time_stack(self, kernel, how):
        self.fn()


class ConvolveNd:
    """N-d signal.convolve: a long FIR filter on 10^6 samples and a 3-D volume, fastconv against
    scipy.signal (method="direct") and numpy.convolve (1-D)."""

    params = (["fir_1e6_63", "volume_64_5"], ["fastconv", "scipy", "numpy"], list(THREADS))
    param_names = ["case", "impl", "threads"]

    def setup(self, case, impl, threads):
        import fastconv.signal as fs

        if case == "fir_1e6_63":
            a, b = rng().standard_normal(10**6), rng().standard_normal(63)
        else:
            if impl == "numpy":
                raise NotImplementedError("numpy.convolve is 1-D only")
            a, b = rng().standard_normal((64, 64, 64)), rng().standard_normal((5, 5, 5))
        if impl != "fastconv" and threads != 1:
            raise NotImplementedError("scipy and numpy run on one thread: measured at threads=1")
        if impl == "fastconv":
            self.fn = lambda: fs.convolve(a, b, mode="same", method="direct")
        elif impl == "scipy":
            self.fn = lambda: signal.convolve(a, b, mode="same", method="direct")
        else:
            self.fn = lambda: np.convolve(a, b, mode="same")
        self.restore = use_threads(threads)
        warm(self.fn)

    def teardown(self, *params):
        restore = getattr(self, "restore", None)  # setup may have skipped before setting it
        if restore is not None:
            restore()

    def time_convolve(self, case, impl, threads):
        self.fn()
