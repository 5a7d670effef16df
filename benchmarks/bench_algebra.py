"""asv benchmarks of fastconv.algebra: what composing costs, and what a composed layer saves.

Peers: the same layers as a sequence through fastconv.conv2d, and torch (if importable) running the
sequence and the composed kernel with torch.nn.functional.conv2d.
"""

import numpy as np

from ._common import fastconv, require_torch, rng, warm

# chains to compose: name -> list of (K, C/groups, kh, kw, stride, padding, dilation, groups, bias)
CHAINS = {
    "3x3_then_5x5": [(100, 1, 3, 3, 1, 0, 1, 1, True), (2, 100, 5, 5, 1, 0, 1, 1, True)],
    "s2_d2_grouped_x3": [
        (32, 4, 3, 3, 2, 0, 1, 4, True),
        (32, 8, 3, 3, 1, 0, 2, 4, True),
        (16, 32, 3, 3, 2, 0, 1, 1, True),
    ],
    "padded_full_x4": [
        (16, 3, 3, 3, 1, 2, 1, 1, False),
        (16, 16, 3, 3, 1, 2, 1, 1, False),
        (16, 16, 3, 3, 1, 2, 1, 1, False),
        (8, 16, 3, 3, 1, 1, 1, 1, True),
    ],
}


def _layers(name):
    r = rng()
    out = []
    for K, Cg, kh, kw, s, p, d, g, bias in CHAINS[name]:
        b = r.standard_normal(K) if bias else None
        out.append(fastconv.Conv2d(r.standard_normal((K, Cg, kh, kw)), b, s, p, d, g))
    return out


class Compose:
    """Cost of fastconv.compose itself (kernel product plus the exactness analysis)."""

    params = [list(CHAINS)]
    param_names = ["chain"]

    def setup(self, chain):
        self.layers = _layers(chain)
        fastconv.compose(*self.layers)

    def time_compose(self, chain):
        fastconv.compose(*self.layers)

    def time_compose_inexact(self, chain):
        fastconv.compose(*self.layers, exact=False)


class AddRepVGG:
    """Cost of collapsing a RepVGG block (3x3+BN, 1x1+BN, identity+BN) into one layer."""

    params = [[16, 64, 256]]
    param_names = ["channels"]

    def setup(self, channels):
        r = rng()
        C = channels
        bn = [
            (r.uniform(0.5, 2, C), r.standard_normal(C), r.standard_normal(C), r.uniform(0.5, 2, C))
        ]
        self.bn = bn[0]
        self.k3 = fastconv.Conv2d(r.standard_normal((C, C, 3, 3)), padding=1)
        self.k1 = fastconv.Conv2d(r.standard_normal((C, C, 1, 1)))
        self.ident = fastconv.identity_conv(C, 3)

    def time_fuse_and_add(self, channels):
        fastconv.add(
            fastconv.fuse_bn(self.k3, *self.bn),
            fastconv.fuse_bn(self.k1, *self.bn),
            fastconv.fuse_bn(self.ident, *self.bn),
        )


class ApplyComposed:
    """A composed layer against the sequence it replaces (the issue's 100x1x3x3 then 2x100x5x5)."""

    params = [[1, 8], ["float32", "float64"]]
    param_names = ["batch", "dtype"]
    timeout = 240

    def setup(self, batch, dtype):
        self.a, self.b = _layers("3x3_then_5x5")
        self.c = fastconv.compose(self.a, self.b)
        self.x = rng().standard_normal((batch, 1, 256, 256)).astype(dtype)
        warm(self.c, self.x[:1])
        warm(self.b, self.a(self.x[:1]))

    def time_sequence(self, batch, dtype):
        self.b(self.a(self.x))

    def time_composed(self, batch, dtype):
        self.c(self.x)

    def peakmem_sequence(self, batch, dtype):
        self.b(self.a(self.x))

    def peakmem_composed(self, batch, dtype):
        self.c(self.x)


class ApplyComposedTorch:
    """The same comparison in torch (float32 only: its float64 CPU convolution takes minutes here)."""

    params = [[1, 8]]
    param_names = ["batch"]
    timeout = 240

    def setup(self, batch):
        # skip (NotImplementedError) in setup, never inside a timed method: asv counts that a failure
        torch = require_torch()
        a, b = _layers("3x3_then_5x5")
        c = fastconv.compose(a, b)
        x = rng().standard_normal((batch, 1, 256, 256)).astype(np.float32)
        self.f = torch.nn.functional.conv2d
        self.x = torch.from_numpy(x)
        self.layers = {
            name: (
                torch.from_numpy(np.array(layer.weight, dtype=np.float32)),
                torch.from_numpy(np.array(layer.bias, dtype=np.float32)),
            )
            for name, layer in (("a", a), ("b", b), ("c", c))
        }
        self.torch = torch

    def time_torch_sequence(self, batch):
        with self.torch.no_grad():
            self.f(self.f(self.x, *self.layers["a"]), *self.layers["b"])

    def time_torch_composed(self, batch):
        with self.torch.no_grad():
            self.f(self.x, *self.layers["c"])
