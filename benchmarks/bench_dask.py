"""asv benchmarks for fastconv.dask, beside the peer a dask user writes today (map_overlap over
scipy.ndimage.correlate, what dask-image does) and the eager NumPy call."""

import numpy as np

try:
    import dask
    import dask.array as da

    import fastconv.dask as fdask
except ImportError:  # dask is optional
    dask = None

import fastconv


class FilterDask:
    params = ([2048, 4096], [5, 15], [1, 2])
    param_names = ["size", "kernel", "workers"]

    def setup(self, size, ksize, workers):
        if dask is None:
            raise NotImplementedError("dask not installed")
        rng = np.random.default_rng(1234)
        self.img = rng.standard_normal((size, size), dtype=np.float32)
        self.k = rng.standard_normal((ksize, ksize)).astype(np.float32)
        x = da.from_array(self.img, chunks=512)
        self.y = fdask.correlate2d(x, self.k, boundary="symm")
        import scipy.ndimage

        # scipy.ndimage's "reflect" repeats the edge sample, as scipy.signal's "symm" does
        h = ksize // 2
        self.peer = x.map_overlap(
            scipy.ndimage.correlate,
            depth=h,
            boundary="reflect",
            dtype=np.float32,
            weights=self.k,
            mode="reflect",
        )
        self.y.compute(scheduler="threads", num_workers=workers)  # JIT warm-up
        self.workers = workers

    def time_fastconv_dask(self, size, ksize, workers):
        self.y.compute(scheduler="threads", num_workers=workers)

    def time_ndimage_dask(self, size, ksize, workers):
        self.peer.compute(scheduler="threads", num_workers=workers)

    def time_fastconv_eager(self, size, ksize, workers):
        with fastconv.threads(workers):
            fastconv.signal.correlate2d(self.img, self.k, "same", "symm")

    def peakmem_fastconv_dask(self, size, ksize, workers):
        self.y.compute(scheduler="threads", num_workers=workers)


class Conv2dDask:
    params = ([(8, 32, 256, 256), (2, 64, 512, 512)], [1, 2])
    param_names = ["shape", "workers"]

    def setup(self, shape, workers):
        if dask is None:
            raise NotImplementedError("dask not installed")
        rng = np.random.default_rng(1234)
        self.x = rng.standard_normal(shape, dtype=np.float32)
        self.w = rng.standard_normal((shape[1], shape[1], 3, 3)).astype(np.float32)
        xd = da.from_array(self.x, chunks=(1, shape[1], shape[2] // 2, shape[3] // 2))
        self.y = fdask.conv2d(xd, self.w, padding=1)
        self.y.compute(scheduler="threads", num_workers=workers)

    def time_fastconv_dask(self, shape, workers):
        self.y.compute(scheduler="threads", num_workers=workers)

    def time_fastconv_eager(self, shape, workers):
        with fastconv.threads(workers):
            fastconv.conv2d(self.x, self.w, padding=1)

    def peakmem_fastconv_dask(self, shape, workers):
        self.y.compute(scheduler="threads", num_workers=workers)


class NdimageDask:
    """N-d filters on a chunked 3-D volume: fastconv.dask against map_overlap over scipy.ndimage
    (what dask-image does), same chunks, same scheduler."""

    params = (["correlate", "gaussian_filter"], [1, 2])
    param_names = ["filter", "workers"]
    timeout = 120

    def setup(self, filt, workers):
        if dask is None:
            raise NotImplementedError("dask not installed")
        import scipy.ndimage

        rng = np.random.default_rng(1234)
        vol = rng.standard_normal((128, 128, 128), dtype=np.float32)
        x = da.from_array(vol, chunks=64)
        if filt == "correlate":
            w = rng.standard_normal((5, 5, 5)).astype(np.float32)
            self.y = fdask.correlate(x, w)
            self.peer = x.map_overlap(
                scipy.ndimage.correlate, depth=2, boundary="none", dtype=np.float32, weights=w
            )
        else:
            self.y = fdask.gaussian_filter(x, 2.0)
            self.peer = x.map_overlap(
                scipy.ndimage.gaussian_filter, depth=8, boundary="none", dtype=np.float32, sigma=2.0
            )
        self.workers = workers

    def time_fastconv(self, filt, workers):
        self.y.compute(scheduler="threads", num_workers=self.workers)

    def time_scipy_map_overlap(self, filt, workers):
        self.peer.compute(scheduler="threads", num_workers=self.workers)
