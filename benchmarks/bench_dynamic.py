"""asv benchmarks for fastconv.dynamic_conv2d and DynamicConv2d, with the usual formulations beside.

Peers: the per-sample loop (mix one kernel, conv2d one sample at a time) in fastconv and in torch,
and torch's batch-to-groups trick (x as (1, N*C, H, W), conv with groups=N*groups).
"""

from __future__ import annotations

import numpy as np

from ._common import THREADS, fastconv, require_backend, require_torch, rng, warm

# (N, C, H, W, K, kh, kw, stride, pad, dil, groups, E)
DYNAMIC_SHAPES = {
    "b8_c64_56x56_k3_e4": (8, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 4),
    "b8_c128_28x28_k3_g2_e4": (8, 128, 28, 28, 128, 3, 3, 1, 1, 1, 2, 4),
    "b8_dw_c144_56x56_k3_e4": (8, 144, 56, 56, 144, 3, 3, 1, 1, 1, 144, 4),
    "b32_c256_7x7_k1_e8": (32, 256, 7, 7, 256, 1, 1, 1, 0, 1, 1, 8),
}
IMPLS = ("dynamic", "loop", "torch-groups", "torch-loop")


def dynamic_arrays(spec, dtype=np.float32):
    """(x, weight_bank, attention, bias_bank, conv kwargs) for a shape, from the house seed."""
    n, c, h, w, k, kh, kw, s, p, d, g, e = spec
    r = rng()
    x = r.standard_normal((n, c, h, w)).astype(dtype)
    bank = (r.standard_normal((e, k, c // g, kh, kw)) / np.sqrt(c // g * kh * kw)).astype(dtype)
    logits = r.standard_normal((n, e))
    att = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    bias = r.standard_normal((e, k)).astype(dtype)
    return x, bank, att.astype(dtype), bias, dict(stride=s, padding=p, dilation=d, groups=g)


def dynamic_callable(impl, backend, x, bank, att, bias, kw):
    """A no-argument function computing the dynamic convolution with `impl`."""
    n, c, h, w = x.shape
    e, k = bank.shape[:2]
    if impl == "dynamic":
        return lambda: fastconv.dynamic_conv2d(x, bank, att, bias, **kw, backend=backend)
    if impl == "loop":
        flat = bank.reshape(e, -1)

        def loop():
            out = []
            for i in range(n):
                wi = (att[i] @ flat).reshape(bank.shape[1:])
                out.append(fastconv.conv2d(x[i : i + 1], wi, att[i] @ bias, **kw, backend=backend))
            return np.concatenate(out)

        return loop
    torch = require_torch()
    xt, bt, at, bst = (torch.from_numpy(a) for a in (x, bank, att, bias))
    s, p, d, g = kw["stride"], kw["padding"], kw["dilation"], kw["groups"]
    if impl == "torch-groups":

        def groups_trick():
            with torch.no_grad():
                wt = (at @ bt.reshape(e, -1)).reshape(n * k, *bank.shape[2:])
                bb = (at @ bst).reshape(n * k)
                y = torch.nn.functional.conv2d(xt.reshape(1, n * c, h, w), wt, bb, s, p, d, g * n)
                return y.reshape(n, k, *y.shape[2:])

        return groups_trick

    def torch_loop():
        with torch.no_grad():
            flat = bt.reshape(e, -1)
            return torch.cat(
                [
                    torch.nn.functional.conv2d(
                        xt[i : i + 1],
                        (at[i] @ flat).reshape(bank.shape[1:]),
                        at[i] @ bst,
                        s,
                        p,
                        d,
                        g,
                    )
                    for i in range(n)
                ]
            )

    return torch_loop


class _Threads:
    def _use_threads(self, n, impl):
        self._prev = fastconv.get_num_threads()
        fastconv.set_num_threads(n)
        self._torch = None
        if impl.startswith("torch"):
            self._torch = require_torch()
            self._prev_torch = self._torch.get_num_threads()
            self._torch.set_num_threads(n)

    def teardown(self, *args):
        if hasattr(self, "_prev"):
            fastconv.set_num_threads(self._prev)
        if getattr(self, "_torch", None) is not None:
            self._torch.set_num_threads(self._prev_torch)


class DynamicConv2d(_Threads):
    """dynamic_conv2d against the per-sample loop and torch's batch-to-groups trick (float32)."""

    params = (list(DYNAMIC_SHAPES), list(IMPLS), ["cython", "numba"], list(THREADS))
    param_names = ["shape", "impl", "backend", "threads"]
    timeout = 180
    repeat = (2, 10, 10.0)

    def setup(self, shape, impl, backend, threads):
        if impl.startswith("torch") and backend != "cython":
            raise NotImplementedError("torch does not depend on fastconv's backend: shown once")
        require_backend(backend)
        x, bank, att, bias, kw = dynamic_arrays(DYNAMIC_SHAPES[shape])
        self._use_threads(threads, impl)
        self.fn = dynamic_callable(impl, backend, x, bank, att, bias, kw)
        warm(self.fn)

    def time_dynamic_conv2d(self, shape, impl, backend, threads):
        self.fn()

    def peakmem_dynamic_conv2d(self, shape, impl, backend, threads):
        self.fn()


class DynamicMethod(_Threads):
    """Both methods of dynamic_conv2d forced, to check the cost model's pick (all threads)."""

    params = (list(DYNAMIC_SHAPES), ["auto", "mix", "experts"])
    param_names = ["shape", "method"]
    timeout = 180

    def setup(self, shape, method):
        x, bank, att, bias, kw = dynamic_arrays(DYNAMIC_SHAPES[shape])
        self._use_threads(THREADS[-1], "dynamic")

        def run():
            return fastconv.dynamic_conv2d(x, bank, att, bias, **kw, method=method)

        self.fn = run
        warm(self.fn)

    def time_method(self, shape, method):
        self.fn()

    def peakmem_method(self, shape, method):
        self.fn()


class DynamicLayer(_Threads):
    """DynamicConv2d.__call__ (attention included), softmax and sigmoid routing, all threads."""

    params = (["softmax", "sigmoid"],)
    param_names = ["routing"]

    def setup(self, routing):
        self.layer = fastconv.DynamicConv2d(
            64, 64, 3, padding=1, num_experts=4, routing=routing, seed=0
        )
        self.x = rng().standard_normal((8, 64, 56, 56)).astype(np.float32)
        self._use_threads(THREADS[-1], "dynamic")
        warm(self.layer, self.x)

    def time_layer(self, routing):
        self.layer(self.x)

    def time_attention(self, routing):
        self.layer.attention(self.x)
