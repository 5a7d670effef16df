"""asv benchmarks for fastconv.im2col and col2im, with torch unfold/fold and NumPy side by side.

NumPy's im2col is sliding_window_view + a contiguous copy; its col2im is one np.add.at-free loop
over the kh*kw taps (what a careful NumPy user writes).
"""

from __future__ import annotations

import numpy as np

from ._common import THREADS, fastconv, require_backend, require_torch, rng, use_threads, warm

# (N, C, H, W, kh, kw, stride, pad, dil)
UNFOLD_SHAPES = {
    "b4_c64_56x56_k3": (4, 64, 56, 56, 3, 3, 1, 1, 1),
    "b2_c32_40x40_k5_s2_d2": (2, 32, 40, 40, 5, 5, 2, 2, 2),
}
BACKENDS = ["numba", "cython", "torch", "numpy"]


def _out_hw(h, w, kh, kw, s, p, d):
    return (h + 2 * p - d * (kh - 1) - 1) // s + 1, (w + 2 * p - d * (kw - 1) - 1) // s + 1


def numpy_im2col(x, kh, kw, s, p, d):
    """(N, C*kh*kw, L) by sliding_window_view and one copy."""
    n, c = x.shape[:2]
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    v = np.lib.stride_tricks.sliding_window_view(xp, (d * (kh - 1) + 1, d * (kw - 1) + 1), (2, 3))
    v = v[:, :, ::s, ::s, ::d, ::d]  # (N, C, Ho, Wo, kh, kw)
    ho, wo = v.shape[2:4]
    return np.ascontiguousarray(v.transpose(0, 1, 4, 5, 2, 3)).reshape(n, c * kh * kw, ho * wo)


def numpy_col2im(cols, h, w, kh, kw, s, p, d):
    """Sum the blocks back: one strided add per kernel tap."""
    n, ckk, _ = cols.shape
    c = ckk // (kh * kw)
    ho, wo = _out_hw(h, w, kh, kw, s, p, d)
    out = np.zeros((n, c, h + 2 * p, w + 2 * p), cols.dtype)
    blocks = cols.reshape(n, c, kh, kw, ho, wo)
    for i in range(kh):
        for j in range(kw):
            out[
                :, :, i * d : i * d + s * (ho - 1) + 1 : s, j * d : j * d + s * (wo - 1) + 1 : s
            ] += blocks[:, :, i, j]
    return out[:, :, p : p + h, p : p + w]


class _Unfold:
    params = (["float32", "float64"], list(UNFOLD_SHAPES), BACKENDS, list(THREADS))
    params_memory = (["float32", "float64"], list(UNFOLD_SHAPES), BACKENDS, [1])
    param_names = ["dtype", "shape", "backend", "threads"]
    timeout = 60

    def _prepare(self, dtype, shape, backend, threads):
        if backend == "numpy" and threads != 1:
            raise NotImplementedError("NumPy's copies are single-threaded: measured at threads=1")
        n, c, h, w, kh, kw, s, p, d = UNFOLD_SHAPES[shape]
        x = rng().standard_normal((n, c, h, w)).astype(dtype)
        ho, wo = _out_hw(h, w, kh, kw, s, p, d)
        cols = rng().standard_normal((n, c * kh * kw, ho * wo)).astype(dtype)
        return x, cols, (h, w), (kh, kw, s, p, d)

    def teardown(self, *params):
        restore = getattr(self, "restore", None)
        if restore is not None:
            restore()


class Im2col(_Unfold):
    """im2col (torch's unfold) on a batch: fastconv's backends against torch and NumPy."""

    def setup(self, dtype, shape, backend, threads):
        x, _, _, (kh, kw, s, p, d) = self._prepare(dtype, shape, backend, threads)
        if backend == "torch":
            torch = require_torch()
            xt = torch.from_numpy(x)
            self.fn = lambda: torch.nn.functional.unfold(xt, (kh, kw), d, p, s)
        elif backend == "numpy":
            self.fn = lambda: numpy_im2col(x, kh, kw, s, p, d)
        else:
            require_backend(backend)
            self.fn = lambda: fastconv.im2col(x, (kh, kw), s, p, d, backend=backend)
        self.restore = use_threads(threads)
        if backend in ("numba", "cython"):
            warm(self.fn)
        else:
            self.fn()

    def time_im2col(self, dtype, shape, backend, threads):
        self.fn()


class Im2colMemory(Im2col):
    """Peak memory of one im2col call, one thread."""

    params = _Unfold.params_memory
    time_im2col = None

    def peakmem_im2col(self, dtype, shape, backend, threads):
        self.fn()


class Col2im(_Unfold):
    """col2im (torch's fold, overlaps summed): fastconv's backends against torch and NumPy."""

    def setup(self, dtype, shape, backend, threads):
        _, cols, (h, w), (kh, kw, s, p, d) = self._prepare(dtype, shape, backend, threads)
        if backend == "torch":
            torch = require_torch()
            ct = torch.from_numpy(cols)
            self.fn = lambda: torch.nn.functional.fold(ct, (h, w), (kh, kw), d, p, s)
        elif backend == "numpy":
            self.fn = lambda: numpy_col2im(cols, h, w, kh, kw, s, p, d)
        else:
            require_backend(backend)
            self.fn = lambda: fastconv.col2im(cols, (h, w), (kh, kw), s, p, d, backend=backend)
        self.restore = use_threads(threads)
        if backend in ("numba", "cython"):
            warm(self.fn)
        else:
            self.fn()

    def time_col2im(self, dtype, shape, backend, threads):
        self.fn()


class Col2imMemory(Col2im):
    """Peak memory of one col2im call, one thread."""

    params = _Unfold.params_memory
    time_col2im = None

    def peakmem_col2im(self, dtype, shape, backend, threads):
        self.fn()
