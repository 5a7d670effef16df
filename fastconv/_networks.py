"""Whole CNNs (ResNet-50, MobileNetV2, EfficientNet-B0) as fastconv.conv2d calls with NumPy glue.

Owns the architectures, their seeded random weights (plain dicts of NumPy arrays, keyed as the torch
modules of benchmarks/scripts/networks.py name their state_dict) and the inference forward passes with
batch norm folded by fastconv.fuse_bn.  Benchmarks and tests only; no framework is imported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from . import _plan, _threads
from .algebra import Conv2d, fuse_bn
from .conv import conv2d

__all__ = ["NETWORKS", "Network", "random_weights"]


@dataclass(frozen=True)
class ConvSpec:
    """One convolution followed by batch norm: `name`.conv.weight and `name`.bn.* in the weights."""

    name: str
    cin: int
    cout: int
    k: int
    stride: int = 1
    groups: int = 1

    @property
    def padding(self):
        return (self.k - 1) // 2


@dataclass(frozen=True)
class Arch:
    """A network: its conv+BN units in order, its squeeze-excitation layers (name, channels,
    squeezed), its classifier (in, out), the batch-norm eps and the block list the forward walks."""

    name: str
    convs: tuple
    se: tuple
    fc: tuple
    eps: float
    blocks: tuple


def _resnet50():
    convs = [ConvSpec("stem", 3, 64, 7, 2)]
    blocks = []
    cin = 64
    for i, (width, n) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
        for b in range(n):
            s = 2 if (b == 0 and i > 0) else 1
            p = f"layer{i + 1}.{b}"
            c1 = ConvSpec(p + ".conv1", cin, width, 1)
            c2 = ConvSpec(p + ".conv2", width, width, 3, s)  # v1.5: the stride on the 3x3
            c3 = ConvSpec(p + ".conv3", width, 4 * width, 1)
            down = ConvSpec(p + ".down", cin, 4 * width, 1, s) if b == 0 else None
            convs += [c1, c2, c3] + ([down] if down else [])
            blocks.append((c1, c2, c3, down))
            cin = 4 * width
    return Arch("resnet50", tuple(convs), (), (2048, 1000), 1e-5, tuple(blocks))


_MBV2 = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]  # (expansion t, channels c, repeats n, first stride s)
_EFFB0 = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
]  # (expansion, kernel, first stride, channels, repeats)


def _inverted_residuals(stem, stages, head, se):
    """MobileNetV2 / EfficientNet-B0: blocks of (expand or None, depthwise, project, se or None,
    residual?)."""
    convs = [ConvSpec("stem", 3, stem, 3, 2)]
    ses, blocks = [], []
    cin, i = stem, 0
    for t, k, s, c, n in stages:
        for r in range(n):
            stride = s if r == 0 else 1
            hid = cin * t
            p = f"block{i}"
            ex = ConvSpec(p + ".expand", cin, hid, 1) if t != 1 else None
            dw = ConvSpec(p + ".dw", hid, hid, k, stride, hid)
            pr = ConvSpec(p + ".project", hid, c, 1)
            sq = (p + ".se", hid, max(1, cin // 4)) if se else None
            convs += ([ex] if ex else []) + [dw, pr]
            if sq:
                ses.append(sq)
            blocks.append((ex, dw, pr, sq, stride == 1 and cin == c))
            cin, i = c, i + 1
    convs.append(ConvSpec("head", cin, head, 1))
    return convs, tuple(ses), tuple(blocks)


def _mobilenetv2():
    stages = [(t, 3, s, c, n) for t, c, n, s in _MBV2]
    convs, _, blocks = _inverted_residuals(32, stages, 1280, se=False)
    return Arch("mobilenetv2", tuple(convs), (), (1280, 1000), 1e-5, blocks)


def _efficientnet_b0():
    convs, ses, blocks = _inverted_residuals(32, _EFFB0, 1280, se=True)
    return Arch("efficientnet_b0", tuple(convs), ses, (1280, 1000), 1e-3, blocks)


NETWORKS = {"resnet50": _resnet50, "mobilenetv2": _mobilenetv2, "efficientnet_b0": _efficientnet_b0}


def random_weights(name, seed=0):
    """Seeded random float32 weights of network `name`, keyed as its torch state_dict.

    Parameters
    ----------
    name : {"resnet50", "mobilenetv2", "efficientnet_b0"}
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    dict of str to ndarray
        ``<unit>.conv.weight``, ``<unit>.bn.{weight,bias,running_mean,running_var}`` for every
        conv+BN unit, ``<se>.fc1.{weight,bias}`` / ``<se>.fc2.{weight,bias}`` for squeeze-excitation,
        ``fc.weight`` and ``fc.bias`` for the classifier.  He-scaled convolutions; the last batch
        norm of each residual block has a small scale so activations stay O(1) through the network.

    Examples
    --------
    >>> from fastconv._networks import random_weights
    >>> random_weights("resnet50")["stem.conv.weight"].shape
    (64, 3, 7, 7)
    """
    arch = NETWORKS[name]()
    rng = np.random.default_rng(seed)
    f32 = np.float32
    out = {}
    last = {b[2].name for b in arch.blocks}  # project / conv3: ends a residual branch
    for c in arch.convs:
        fan_in = (c.cin // c.groups) * c.k * c.k
        w = rng.standard_normal((c.cout, c.cin // c.groups, c.k, c.k)) * np.sqrt(2.0 / fan_in)
        out[c.name + ".conv.weight"] = w.astype(f32)
        lo, hi = (0.1, 0.3) if c.name in last else (0.5, 1.0)
        out[c.name + ".bn.weight"] = rng.uniform(lo, hi, c.cout).astype(f32)
        out[c.name + ".bn.bias"] = rng.uniform(-0.1, 0.1, c.cout).astype(f32)
        out[c.name + ".bn.running_mean"] = rng.uniform(-0.1, 0.1, c.cout).astype(f32)
        out[c.name + ".bn.running_var"] = rng.uniform(0.5, 1.5, c.cout).astype(f32)
    for p, ch, sq in arch.se:
        out[p + ".fc1.weight"] = (rng.standard_normal((sq, ch, 1, 1)) / np.sqrt(ch)).astype(f32)
        out[p + ".fc1.bias"] = rng.uniform(-0.1, 0.1, sq).astype(f32)
        out[p + ".fc2.weight"] = (rng.standard_normal((ch, sq, 1, 1)) / np.sqrt(sq)).astype(f32)
        out[p + ".fc2.bias"] = rng.uniform(0.5, 1.5, ch).astype(f32)
    fi, fo = arch.fc
    out["fc.weight"] = (rng.standard_normal((fo, fi)) / np.sqrt(fi)).astype(f32)
    out["fc.bias"] = rng.uniform(-0.1, 0.1, fo).astype(f32)
    return out


_REUSE_BYTES = 8 << 20  # outputs at least this large are written into a buffer kept per unit


def _silu(y, tmp):
    """y * sigmoid(y) = y / (1 + exp(-y)) in place; `tmp` is scratch of at least y's size.

    NumPy's float32 exp is vectorised; scipy.special.expit is not (measured on (1, 144, 56, 56):
    7.5 ms with expit, 0.83 ms this way).  exp(-y) overflows to inf for y < -88, giving -0 as
    torch does; -inf gives NaN (-inf / inf), as torch's -inf * 0 does.
    """
    t = tmp[: y.size].reshape(y.shape)
    with np.errstate(over="ignore", invalid="ignore"):
        np.negative(y, out=t)
        np.exp(t, out=t)
        np.add(t, 1, out=t)
        return np.divide(y, t, out=y)


def _compiled(backend, x):
    """The Cython kernel module for the network's glue on `x`, or None (NumPy then does it: the
    Numba twins of these loops are slower than NumPy's vector code)."""
    be = _plan.resolve_backend(backend)
    if be == "cython" and x.dtype in (np.float32, np.float64) and x.flags.c_contiguous:
        return _plan.kernels(be)
    return None


def _plane_means(x, backend):
    """x.mean(axis=(2, 3)) (global average pooling, squeeze-excitation's squeeze), the planes on
    fastconv's threads: NumPy's mean is single-threaded, 13-20% of EfficientNet-B0's 2-thread
    time with the gate multiply (_scale_planes)."""
    mod = _compiled(backend, x)
    if mod is None:
        return x.mean(axis=(2, 3), dtype=x.dtype)
    out = np.empty(x.shape[:2], dtype=x.dtype)
    _threads.mark_pools_started()
    mod.plane_means(x, out, _threads.budget())
    return out


def _scale_planes(x, s, backend):
    """x[n, c] *= s[n, c] in place, the planes on fastconv's threads."""
    mod = _compiled(backend, x)
    if mod is None:
        x *= s[:, :, None, None]
        return
    _threads.mark_pools_started()
    mod.scale_planes(x, np.ascontiguousarray(s, dtype=x.dtype), _threads.budget())


def _maxpool3s2(x, backend="auto"):
    """3x3 max pool, stride 2, padding 1 (ResNet's stem): NaN propagates as in torch.

    On the Cython backend, the compiled kernel (two AVX-512 vector passes a plane, the planes
    on fastconv's threads); on Numba, NumPy's maxima of the 9 strided views of a padded copy,
    which were the network's largest glue: at batch 8 on 2 threads 36-41 ms of ResNet-50's
    ~350 (the kernel: 1.6 ms; at batch 1, 1 thread, 0.37 against 1.13 ms).
    """
    N, C, H, W = x.shape
    Ho, Wo = (H - 1) // 2 + 1, (W - 1) // 2 + 1
    mod = _compiled(backend, x)
    if mod is not None:
        nt = _threads.budget()
        y = np.empty((N, C, Ho, Wo), dtype=x.dtype)
        ws = np.empty((nt, mod.max_pool2d_workspace(Wo)), dtype=x.dtype)
        _threads.mark_pools_started()
        mod.max_pool2d(x, y, 3, 3, 2, 2, 1, 1, ws, nt)
        return y
    p = np.full((N, C, H + 2, W + 2), -np.inf, dtype=x.dtype)
    p[:, :, 1:-1, 1:-1] = x
    y = p[:, :, 0 : 2 * Ho : 2, 0 : 2 * Wo : 2].copy()
    for i in range(3):
        for j in range(3):
            if i or j:
                np.maximum(y, p[:, :, i : i + 2 * Ho : 2, j : j + 2 * Wo : 2], out=y)
    return y


class Network:
    """An inference-mode network run by fastconv.conv2d with batch norm folded into each conv.

    Parameters
    ----------
    name : {"resnet50", "mobilenetv2", "efficientnet_b0"}
    weights : dict of str to ndarray, optional
        As `random_weights` returns them (the default, seed 0).
    backend : {"auto", "numba", "cython"}
        Passed to every conv2d call.
    dtype : {numpy.float32, numpy.float64}
        The dtype the network computes in (inputs are cast to it).

    Attributes
    ----------
    arch : Arch
    params : dict of str to (ndarray, ndarray)
        Each unit's folded weight and bias, in `dtype`.

    Notes
    -----
    Activations (ReLU, ReLU6, SiLU, sigmoid) and residual adds run in place on conv2d's output, so the
    glue allocates nothing beyond each conv's output, one SiLU scratch and the pooled vectors.
    `trace` lists every conv call a forward pass makes (the per-layer benchmark uses it).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._networks import Network
    >>> net = Network("mobilenetv2")
    >>> net(np.zeros((1, 3, 32, 32), dtype=np.float32)).shape
    (1, 1000)
    """

    def __init__(self, name, weights=None, backend="auto", dtype=np.float32):
        self.arch = NETWORKS[name]()
        self.backend = backend
        self.dtype = dt = np.dtype(dtype)
        if dt not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dt}")
        raw = random_weights(name) if weights is None else weights
        self.params = {}
        for c in self.arch.convs:
            w = np.asarray(raw[c.name + ".conv.weight"], dtype=dt)
            layer = Conv2d(w, None, c.stride, c.padding, 1, c.groups)
            bn = [
                raw[c.name + ".bn." + k] for k in ("weight", "bias", "running_mean", "running_var")
            ]
            f = fuse_bn(layer, *bn, eps=self.arch.eps)
            # fixed weights: a plan that packs weight panels packs these once (_plan.keep_packed)
            self.params[c.name] = (
                _plan.keep_packed(np.array(f.weight, dtype=dt, order="C")),
                np.ascontiguousarray(f.bias, dtype=dt),
            )
        for p, _, _ in self.arch.se:
            for fc in ("fc1", "fc2"):
                w = raw[f"{p}.{fc}.weight"]
                self.params[f"{p}.{fc}"] = (
                    np.ascontiguousarray(w.reshape(w.shape[0], -1).T, dtype=dt),
                    np.ascontiguousarray(raw[f"{p}.{fc}.bias"], dtype=dt),
                )
        self.params["fc"] = (
            np.ascontiguousarray(raw["fc.weight"].T, dtype=dt),
            np.ascontiguousarray(raw["fc.bias"], dtype=dt),
        )
        self.trace = None  # a list to record (spec, input shape) of each conv call
        self._out = {}  # (unit, input shape) -> its output buffer (large outputs only; see conv)

    def conv(self, x, c, activation=None, residual=None, scale=None):
        """Run unit `c` (conv + folded BN, then `activation` of it plus `residual`, fused into
        conv2d's epilogue: one pass over the output instead of one per NumPy operation) on `x`.

        Outputs of _REUSE_BYTES or more are written into the buffer this unit filled on the
        previous call of the same input shape: each unit runs once per forward pass, so no
        buffer is read after the next pass starts, and glibc serves allocations above its
        mmap threshold (32 MiB at most) with fresh pages every time, faulted in by the kernel
        (EfficientNet-B0 at batch 8: its first 1x1 layer writes 38.5 MB and took 6.5 ms on one
        thread, 8 ms on two, 2.6 ms of that page faults).

        `scale` (C,) multiplies the weight's input channels: conv(x * scale) without the pass
        over x (batch 1's squeeze-excitation gate, folded into the projection)."""
        if self.trace is not None:
            self.trace.append((c, x.shape))
        w, b = self.params[c.name]
        if scale is not None:
            w = w * scale[None, :, None, None]
        key = (c.name, x.shape)
        buf = self._out.get(key)
        y = conv2d(
            x,
            w,
            b,
            c.stride,
            c.padding,
            1,
            c.groups,
            out=buf,
            activation=activation,
            residual=residual,
            backend=self.backend,
        )
        if buf is None and y.nbytes >= _REUSE_BYTES:
            self._out[key] = y
        return y

    def _se(self, y, sq):
        """The squeeze-excitation gate (N, C) of y: pooled, two small FCs, sigmoid."""
        p = sq[0]
        s = _plane_means(y, self.backend)
        w1, b1 = self.params[p + ".fc1"]
        w2, b2 = self.params[p + ".fc2"]
        with _threads.blas_single():  # see __call__
            h = s @ w1
            h += b1
            h = _silu(h, np.empty(h.size, dtype=self.dtype))
            g = h @ w2
        g += b2
        expit(g, out=g)
        return g

    def features(self, x):
        """The last feature map (N, C, 7, 7 for a 224x224 input), before pooling (an array of
        its own: no buffer of the network)."""
        y = self._features(x)
        return y.copy() if any(y is buf for buf in self._out.values()) else y

    def _features(self, x):
        x = np.ascontiguousarray(x, dtype=self.dtype)
        a = self.arch
        if a.name == "resnet50":
            y = _maxpool3s2(self.conv(x, a.convs[0], "relu"), self.backend)
            for c1, c2, c3, down in a.blocks:
                h = self.conv(y, c1, "relu")
                h = self.conv(h, c2, "relu")
                y = self.conv(h, c3, "relu", y if down is None else self.conv(y, down))
            return y
        act = "relu6" if a.name == "mobilenetv2" else "silu"  # in conv2d's epilogue
        y = self.conv(x, a.convs[0], act)
        for ex, dw, pr, sq, residual in a.blocks:
            h = y if ex is None else self.conv(y, ex, act)
            h = self.conv(h, dw, act)
            gate = None
            if sq is not None:
                gate = self._se(h, sq)
                # batch 1: the gate scales the projection's weight (K x C) instead of the
                # activation (C x H x W, a single-threaded NumPy pass) where that is smaller,
                # paying the weight's repacking (it is no longer the kept one): EfficientNet-B0's
                # blocks at 14x14 and up
                if h.shape[0] != 1 or 2 * self.params[pr.name][0].shape[0] >= h[0, 0].size:
                    _scale_planes(h, gate, self.backend)
                    gate = None
            scale = None if gate is None else gate[0]
            y = self.conv(h, pr, None, y if residual else None, scale=scale)
        return self.conv(y, a.convs[-1], act)

    def __call__(self, x):
        """Logits (N, 1000) of a batch (N, 3, H, W)."""
        f = _plane_means(self._features(x), self.backend)
        w, b = self.params["fc"]
        # One BLAS thread: a multi-threaded call wakes OpenBLAS's pool, whose workers then spin
        # for ~0.1 s and take a core from the next forward pass's convolutions and glue
        # (ResNet-50 at batch 1 on 2 threads: 77 ms with a 2-thread FC, 36 ms with this).
        with _threads.blas_single():
            y = f @ w
        y += b
        return y
