"""Exact kernel algebra: Conv2d layer descriptions and the identities between them.

Owns Conv2d, compose_kernels, compose, add, fuse_bn, identity_conv, avgpool_conv and separate.

Conventions and derivations
---------------------------
Everything uses conv2d's convention (torch's): cross-correlation, stride, zero padding,
dilation, groups.  Both spatial axes behave alike and independently, so the algebra is
derived in 1-D.  Write a layer as (w, b, s, d, pt, pb) with k taps, extent e = d*(k-1) + 1,
and x_ext for the input extended by zeros without limit.  Output q of the layer is

    y[q] = b + sum_i w[i] x_ext[q*s - pt + i*d],   0 <= q < floor((H + pt + pb - e)/s) + 1.

Composition (``compose``).  Apply (w1, b1, s1, d1, p1t, p1b), then (w2, b2, s2, d2, p2t,
p2b).  Layer 2 reads u = q*s2 - p2t + j*d2 and sees y1[u] when 0 <= u < H1, and 0
otherwise (call those u "virtual").  If every u it reads were real, substituting y1 gives

    z[q] = b2 + sum_j w2[j] b1
              + sum_{j,i} w2[j] w1[i] x_ext[q*s1*s2 - (p1t + s1*p2t) + j*d2*s1 + i*d1],

one convolution with stride S = s1*s2, taps at t = j*(d2*s1) + i*d1 (the later kernel
spread by the earlier stride; extent E = e1 + s1*(e2 - 1), stored with dilation g = the
gcd of the tap spacings), bias b2 + (spatial sum of w2) @ b1, and padding
Pt = p1t + s1*p2t, Pb = p1b + s1*p2b.  Its output count floor((H + Pt + Pb - E)/S) + 1
equals layer 2's for every H, because floor((floor(A/s1) + B)/s2) = floor((A + s1*B)/S).

That formula also evaluates y1 at the virtual u, as
y1_ext[u] = b1 + sum_i w1[i] x_ext[u*s1 - p1t + i*d1], where the sequence has 0.  So the
single convolution is exact exactly when, for every input size, each virtual u that
layer 2 reads (through a tap whose weights are not all zero) has y1_ext[u] = 0 for all x:

1. window: no non-zero tap t of w1's window at u lands on a real sample,
   0 <= u*s1 - p1t + t < H;
2. bias: b1 = 0.  Otherwise the constant b1 is read where the sequence reads padding
   zeros, so the sequence's constant term varies near the border; one convolution has
   one bias for every output position and cannot reproduce that (x = 0 shows it).

Two families satisfy both for every kernel and stride:

* the later layer unpadded (p2t = p2b = 0): it never reads a virtual position;
* the earlier layer padded to "full" (p1t, p1b >= e1 - 1) and without bias: the window
  at u = -1 ends at -s1 - p1t + e1 - 1 < 0, and the window at u = H1 starts at
  H1*s1 - p1t >= H + p1b - e1 + 1 >= H, since H1*s1 >= H + p1t + p1b - e1 + 1.

In general (generic weights) the window condition on the top side is e1 <= p1t + s1*a,
a >= 1 being the distance of the nearest virtual row read; the bottom mirrors it but also
depends on H mod s1*s2, and dilated later layers can skip rows.  Rather than trust a closed
form for every corner, `compose` tracks along each axis which output rows are exact, for
every input length up to past all edge effects plus a full period of the strides: beyond
that the top edge no longer changes and the bottom repeats with period S, so the answer
holds for every input size.  It uses the actual non-zero taps, so sparse kernels
(identities, pooled kernels) compose where dense ones of the same shape would not.  A
chain is folded left to right; it is exact when every step is, and the refusal names the
first step that is not.  With ``exact=False`` the same tracking gives, for any input size,
the outputs on which the naive layer equals the sequence (an `ExactRegion`).

Groups.  Layer 1 with g1 groups feeds layer 2 with g2 groups: output channel m depends on
the input-channel blocks of the layer-1 channels its group reads, so the product is
block-diagonal with gcd(g1, g2) blocks.  The result keeps the largest group count (a
multiple of that gcd dividing both channel counts) whose off-diagonal blocks are all zero;
a layer whose groups do not survive is expanded to block-diagonal form, losing nothing.

Sums (``add``).  Branches with one stride s read x_ext at offsets i*d_k - pt_k from q*s;
placing every tap at offset + max(pt) in one kernel and summing biases gives one layer
with padding (max pt, max pb).  The branches' output counts agree for every H exactly when
pt_k + pb_k - e_k is the same for all k (different values differ for some H), so that and
an equal stride are required.  Smaller kernels so sit about the centre for "same" padding.

Batch norm (``fuse_bn``).  gamma*(conv(x) + b - mean)/sqrt(var + eps) + beta is the layer
with weight w*gamma/sqrt(var + eps) per output channel and bias
(b - mean)*gamma/sqrt(var + eps) + beta.

Asymmetric padding.  Composition gives per-side paddings (t, b, l, r), and conv2d takes
only symmetric pairs, so `Conv2d.__call__` passes the symmetric part to conv2d and pads the
remainder with zeros (numpy.pad) first.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np

from . import _plan
from ._geometry import (
    INT_MAX,
    as_float_array,
    geometry_from_shapes,
    padding_amounts,
    pair,
    result_float_dtype,
)

__all__ = [
    "CompositionError",
    "Conv2d",
    "ExactRegion",
    "add",
    "avgpool_conv",
    "compose",
    "compose_kernels",
    "fuse_bn",
    "identity_conv",
    "separate",
]


def _conv2d_impl():
    """The conv2d every layer runs through (one indirection, so it can be swapped in one place)."""
    from .conv import conv2d

    return conv2d


class CompositionError(ValueError):
    """Raised when a chain of layers has no exact single-convolution equivalent.

    Parameters
    ----------
    message : str
        The explanation `str` of the error shows.
    layer : int
        Stored as the `layer` attribute.
    reasons : iterable of str
        Stored as the `reasons` attribute.
    axes : iterable of str
        Stored as the `axes` attribute.

    Attributes
    ----------
    layer : int
        Index (in the chain) of the later layer of the first pair that does not compose exactly:
        layers ``0..layer-1`` compose exactly, adding ``layer`` does not.
    reasons : frozenset of str
        ``"window"``: the later layer's padding reads outputs of the earlier layers whose
        windows overlap the input; ``"bias"``: it reads the earlier layers' bias where the
        sequence reads padding zeros; ``"size"``: the single convolution would accept inputs
        too small for the earlier layers, which the sequence rejects.
    axes : frozenset of str
        ``"height"`` and/or ``"width"``.

    See Also
    --------
    compose : Raises it when ``exact=True``.
    ExactRegion : What ``exact=False`` returns instead.

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv
    >>> from fastconv.algebra import CompositionError
    >>> a = fastconv.Conv2d(np.ones((1, 1, 3, 3)))
    >>> b = fastconv.Conv2d(np.ones((1, 1, 3, 3)), padding=1)
    >>> try:
    ...     fastconv.compose(a, b)
    ... except CompositionError as e:
    ...     print(e.layer, sorted(e.reasons), sorted(e.axes))
    1 ['window'] ['height', 'width']
    """

    def __init__(self, message, layer, reasons, axes):
        super().__init__(message)
        self.layer = layer
        self.reasons = frozenset(reasons)
        self.axes = frozenset(axes)


def _int(value, name, minimum):
    if not isinstance(value, (numbers.Integral, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    if int(value) > INT_MAX:  # the kernels' C-int limit (fastconv._geometry)
        raise ValueError(f"{name} must be at most {INT_MAX} (2**31 - 1, a C int), got {value!r}")
    return int(value)


def _padding4(padding, kh, kw, dilation, stride):
    """(top, bottom, left, right) from int | pair | (t, b, l, r) | "same" | "valid"."""
    if isinstance(padding, (tuple, list)) and len(padding) == 4:
        out = tuple(_int(p, "padding", 0) for p in padding)
        return out
    return padding_amounts(padding, kh, kw, dilation[0], dilation[1], stride)


def _frozen(a):
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


class Conv2d:
    """An immutable description of one convolution layer; calling it runs `fastconv.conv2d`.

    Parameters
    ----------
    weight : array_like, shape (K, C/groups, kh, kw)
        Kernel (cross-correlation, as in conv2d). Copied and stored read-only in its floating dtype
        (float32 stays float32; integers become float64).
    bias : array_like, shape (K,), optional
        Per-output-channel bias, stored like the weight.
    stride : int or pair of ints
        As for `fastconv.conv2d`.
    padding : int, pair, (top, bottom, left, right), "same" or "valid"
        Stored as the four per-side amounts; "same" follows torch (the extra row/column goes
        to the bottom/right).
    dilation : int or pair of ints
        As for `fastconv.conv2d`.
    groups : int
        As for `fastconv.conv2d`; must divide K and the input channels.

    Attributes
    ----------
    weight, bias, stride, padding, dilation, groups
        The normalised arguments (read-only).
    in_channels, out_channels, kernel_size : int, int, (kh, kw)
        Channel counts and kernel size.
    receptive_field : (int, int)
        Extent of input one output sees, ``dilation*(kernel_size - 1) + 1`` per axis.

    See Also
    --------
    compose, add, fuse_bn : Build one layer from several.
    fastconv.conv2d : What calling the layer runs.

    Notes
    -----
    Calling the layer takes conv2d's `activation` and `residual` (its fused epilogue) and
    `backend`.  The weight is fixed, so where conv2d runs the packed algorithm its packed weight
    panels are made on the first call of each geometry and kept with the layer (about the
    weight's size again), not rebuilt on every call.

    conv2d takes only symmetric paddings; an asymmetric one (from "same" with an even kernel or
    from `compose`) is realised by zero-padding the input with `numpy.pad` for the asymmetric
    remainder and passing the symmetric part to conv2d.  The layer computes in the input's
    floating dtype: its weight is cast to float32 for a float32 input.

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv
    >>> layer = fastconv.Conv2d(np.ones((4, 3, 3, 3)), padding=1, stride=2)
    >>> layer.output_shape((2, 3, 32, 32))
    (2, 4, 16, 16)
    >>> layer(np.ones((2, 3, 32, 32))).shape
    (2, 4, 16, 16)
    """

    __slots__ = ("weight", "bias", "stride", "padding", "dilation", "groups")

    def __init__(self, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        w = as_float_array(weight, "weight")
        if w.ndim != 4:
            raise ValueError(f"weight must be 4-D (K, C/groups, kh, kw), got shape {w.shape}")
        if min(w.shape) < 1:
            raise ValueError(f"weight must not be empty, got shape {w.shape}")
        groups = _int(groups, "groups", 1)
        if w.shape[0] % groups:
            raise ValueError(f"groups={groups} must divide the output channels K={w.shape[0]}")
        arrays = [w]
        if bias is not None:
            bias = as_float_array(bias, "bias")
            if bias.shape != (w.shape[0],):
                raise ValueError(f"bias must have shape ({w.shape[0]},), got {bias.shape}")
            arrays.append(bias)
        dtype = result_float_dtype(*arrays)
        stride = pair(stride, "stride", minimum=1)
        dilation = pair(dilation, "dilation", minimum=1)
        padding = _padding4(padding, w.shape[2], w.shape[3], dilation, stride)
        setattr_ = object.__setattr__
        # its own read-only copy: fixed weights, whose packed panels the kernels may keep
        setattr_(self, "weight", _plan.keep_packed(_frozen(w.astype(dtype, copy=False))))
        setattr_(self, "bias", None if bias is None else _frozen(bias.astype(dtype, copy=False)))
        setattr_(self, "stride", stride)
        setattr_(self, "padding", padding)
        setattr_(self, "dilation", dilation)
        setattr_(self, "groups", groups)

    def __setattr__(self, name, value):
        raise AttributeError("Conv2d is immutable; build a new layer instead")

    def __delattr__(self, name):
        raise AttributeError("Conv2d is immutable")

    # -- description ------------------------------------------------------------------------------
    @property
    def out_channels(self):
        """Output channels K (``weight.shape[0]``)."""
        return self.weight.shape[0]

    @property
    def in_channels(self):
        """Input channels C (``weight.shape[1] * groups``)."""
        return self.weight.shape[1] * self.groups

    @property
    def kernel_size(self):
        """Kernel size ``(kh, kw)``."""
        return self.weight.shape[2], self.weight.shape[3]

    @property
    def dtype(self):
        """The floating dtype the weight is stored in."""
        return self.weight.dtype

    @property
    def receptive_field(self):
        """Extent of input one output sees: ``dilation * (kernel_size - 1) + 1`` per axis."""
        return tuple(d * (k - 1) + 1 for d, k in zip(self.dilation, self.kernel_size, strict=True))

    def output_shape(self, input_shape):
        """Shape of ``self(x)`` for x of shape (N, C, H, W) or (C, H, W).

        Parameters
        ----------
        input_shape : tuple of int
            ``(N, C, H, W)`` or ``(C, H, W)``.

        Returns
        -------
        tuple of int
            ``(N, K, Ho, Wo)`` or ``(K, Ho, Wo)``.

        Raises
        ------
        ValueError
            A shape of the wrong length, with the wrong channel count, or smaller than the
            receptive field after padding.

        See Also
        --------
        fastconv.cost.conv2d_cost : The same shape with FLOPs and bytes.

        Examples
        --------
        >>> import numpy as np
        >>> import fastconv
        >>> fastconv.Conv2d(np.ones((8, 3, 5, 5))).output_shape((3, 20, 30))
        (8, 16, 26)
        """
        shape = tuple(int(s) for s in input_shape)
        if len(shape) not in (3, 4):
            raise ValueError(f"input_shape must be (N, C, H, W) or (C, H, W), got {input_shape!r}")
        if shape[-3] != self.in_channels:
            raise ValueError(
                f"this layer takes {self.in_channels} input channels, input_shape has {shape[-3]}"
            )
        pt, pb, pl, pr = self.padding
        out = []
        for n, p, e, s in zip(
            shape[-2:], (pt + pb, pl + pr), self.receptive_field, self.stride, strict=True
        ):
            if n + p < e:
                raise ValueError(
                    f"kernel of extent {self.receptive_field} is larger than the padded input "
                    f"{(shape[-2] + pt + pb, shape[-1] + pl + pr)}"
                )
            out.append((n + p - e) // s + 1)
        return shape[:-3] + (self.out_channels, *out)

    def __call__(self, x, *, activation=None, residual=None, backend="auto"):
        conv2d = _conv2d_impl()
        x = as_float_array(x, "x")
        dtype = result_float_dtype(x)
        # the layer's read-only arrays go to the kernels as they are (const memoryviews): no copy
        w = self.weight.astype(dtype, copy=False)
        b = None if self.bias is None else self.bias.astype(dtype, copy=False)
        pt, pb, pl, pr = self.padding
        sym = (min(pt, pb), min(pl, pr))
        extra = ((pt - sym[0], pb - sym[0]), (pl - sym[1], pr - sym[1]))
        if extra != ((0, 0), (0, 0)):
            if x.ndim not in (3, 4):
                raise ValueError(
                    f"x must be 3-D (C, H, W) or 4-D (N, C, H, W), got shape {x.shape}"
                )
            # validate (sizes and memory limits included) before numpy.pad allocates the copy
            padded = x.shape[:-2] + (x.shape[-2] + sum(extra[0]), x.shape[-1] + sum(extra[1]))
            geometry_from_shapes(
                padded, w.shape, self.stride, sym, self.dilation, self.groups, dtype
            )
            x = np.pad(x, ((0, 0),) * (x.ndim - 2) + extra)
        return conv2d(
            x,
            w,
            b,
            self.stride,
            sym,
            self.dilation,
            self.groups,
            activation=activation,
            residual=residual,
            backend=backend,
        )

    def __repr__(self):
        b = "None" if self.bias is None else f"({self.out_channels},)"
        return (
            f"Conv2d(weight={self.weight.shape}, bias={b}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
            f"dtype={self.dtype})"
        )


def _as_layer(layer, name):
    if not isinstance(layer, Conv2d):
        raise TypeError(f"{name} must be a fastconv.Conv2d, got {type(layer).__name__}")
    return layer


# -- group handling --------------------------------------------------------------------------------
def _regroup(w, g_from, g_to, C):
    """Re-express a grouped weight (K, C/g_from, ...) with g_to groups, when one count divides the
    other: zero-filled block-diagonal expansion (g_to | g_from) or slicing (g_from | g_to), which
    must
    only drop zeros."""
    if g_from == g_to:
        return w
    K = w.shape[0]
    cf, ct = C // g_from, C // g_to
    out = np.zeros((K, ct) + w.shape[2:], dtype=w.dtype)
    for m0 in range(0, K, K // max(g_from, g_to)):
        m1 = m0 + K // max(g_from, g_to)
        old = (m0 // (K // g_from)) * cf
        new = (m0 // (K // g_to)) * ct
        if g_to < g_from:
            out[m0:m1, old - new : old - new + cf] = w[m0:m1]
        else:
            out[m0:m1] = w[m0:m1, new - old : new - old + ct]
    return out


def _largest_groups(w, g0, C):
    """The largest group count g (g0 | g, g | C, g | K) whose off-diagonal blocks of `w` (grouped
    with
    g0) are all zero; returns (w regrouped, g)."""
    K = w.shape[0]
    nz = np.any(w != 0, axis=(2, 3))  # (K, C/g0)
    best = g0
    for g in range(math.gcd(C, K), g0, -1):
        if g % g0 or C % g or K % g:
            continue
        ok = True
        kg, cg = K // g, C // g
        for m0 in range(0, K, kg):
            start = (m0 // kg) * cg - (m0 // (K // g0)) * (C // g0)
            row = nz[m0 : m0 + kg]
            if row[:, :start].any() or row[:, start + cg :].any():
                ok = False
                break
        if ok:
            best = g
            break
    return _regroup(w, g0, best, C), best


# -- composition -----------------------------------------------------------------------------------
def _compose_pair(a, b):
    """The naive single layer for a then b (exact when `_step_exact` says so)."""
    if a.out_channels != b.in_channels:
        raise ValueError(
            f"channel counts do not chain: the earlier layer gives {a.out_channels} channels, "
            f"the later one takes {b.in_channels}"
        )
    dtype = result_float_dtype(a.weight, b.weight)
    C, K1, K2 = a.in_channels, a.out_channels, b.out_channels
    g1, g2 = a.groups, b.groups
    g0 = math.gcd(g1, g2)
    w1 = _regroup(a.weight.astype(np.float64), g1, g0, C)  # (K1, C/g0, k1h, k1w)
    w2 = _regroup(b.weight.astype(np.float64), g2, g0, K1)  # (K2, K1/g0, k2h, k2w)
    (k1h, k1w), (k2h, k2w) = a.kernel_size, b.kernel_size
    s1, d1, d2 = a.stride, a.dilation, b.dilation
    D = (d2[0] * s1[0], d2[1] * s1[1])  # the later kernel spread by the earlier stride
    gh = math.gcd(d1[0] if k1h > 1 else 0, D[0] if k2h > 1 else 0) or 1
    gw = math.gcd(d1[1] if k1w > 1 else 0, D[1] if k2w > 1 else 0) or 1
    Eh = (k2h - 1) * D[0] + (k1h - 1) * d1[0] + 1
    Ew = (k2w - 1) * D[1] + (k1w - 1) * d1[1] + 1
    nh, nw = (Eh - 1) // gh + 1, (Ew - 1) // gw + 1
    Kg, Cg, K1g = K2 // g0, C // g0, K1 // g0
    W = np.zeros((g0, Kg, Cg, nh, nw))
    w1g = w1.reshape(g0, K1g, Cg, k1h, k1w)
    w2g = w2.reshape(g0, Kg, K1g, k2h, k2w)
    sh, sw = d1[0] // gh if k1h > 1 else 1, d1[1] // gw if k1w > 1 else 1
    for jh in range(k2h):
        for jw in range(k2w):
            part = np.einsum("gmk,gkcab->gmcab", w2g[..., jh, jw], w1g)
            r0, c0 = jh * D[0] // gh, jw * D[1] // gw
            W[..., r0 : r0 + sh * (k1h - 1) + 1 : sh, c0 : c0 + sw * (k1w - 1) + 1 : sw] += part
    W = W.reshape(K2, Cg, nh, nw)
    W, groups = _largest_groups(W, g0, C)
    bias = None
    if a.bias is not None:
        s2 = b.weight.astype(np.float64).sum(axis=(2, 3)).reshape(g2, K2 // g2, K1 // g2)
        b1 = a.bias.astype(np.float64).reshape(g2, 1, K1 // g2)
        bias = (s2 * b1).sum(-1).reshape(K2)
    if b.bias is not None:
        bias = b.bias.astype(np.float64) if bias is None else bias + b.bias
    p1, p2 = a.padding, b.padding
    padding = (
        p1[0] + s1[0] * p2[0],
        p1[1] + s1[0] * p2[1],
        p1[2] + s1[1] * p2[2],
        p1[3] + s1[1] * p2[3],
    )
    stride = (s1[0] * b.stride[0], s1[1] * b.stride[1])
    return Conv2d(
        W.astype(dtype),
        None if bias is None else bias.astype(dtype),
        stride,
        padding,
        (gh, gw),
        groups,
    )


@dataclass(frozen=True)
class _Axis:
    """One axis of one layer, as the exactness tracking needs it."""

    s: int  # stride
    pt: int
    pb: int
    e: int  # extent in input samples (dilation included)
    taps: np.ndarray  # offsets of the non-zero taps within the window

    @classmethod
    def of(cls, layer, axis):
        k = layer.weight.shape[2 + axis]
        d = layer.dilation[axis]
        other = 3 if axis == 0 else 2
        nz = np.flatnonzero(np.any(layer.weight != 0, axis=(0, 1, other)))
        return cls(
            layer.stride[axis],
            layer.padding[2 * axis],
            layer.padding[2 * axis + 1],
            d * (k - 1) + 1,
            nz * d,
        )

    def out_len(self, n):
        return (
            (n + self.pt + self.pb - self.e) // self.s + 1 if n + self.pt + self.pb >= self.e else 0
        )


def _step_masks(prev, cur, biased, n, prev_mask):
    """Along one axis for input length n: which outputs of naive(prev, cur) equal
    cur(prev-sequence),
    given prev_mask (exactness of prev's outputs) - plus the reasons of any failure.

    prev is the (naive) composite so far, cur the next layer; biased: prev's bias is non-zero."""
    n1 = prev.out_len(n)
    n2 = cur.out_len(n1)
    if n1 < 1 or n2 < 1:
        return None, set()
    u = np.arange(n2)[:, None] * cur.s - cur.pt + cur.taps[None, :]  # (n2, taps) rows of prev read
    virtual = (u < 0) | (u >= n1)
    real_ok = np.ones(u.shape, dtype=bool)
    real_ok[~virtual] = prev_mask[u[~virtual]]
    # the x samples the prev window at u covers, through its non-zero taps only
    xs = u[..., None] * prev.s - prev.pt + prev.taps[None, None, :]
    touches = np.any((xs >= 0) & (xs < n), axis=-1)
    win_bad = virtual & touches
    bias_bad = virtual & biased
    ok = np.where(virtual, ~(win_bad | bias_bad), real_ok)
    reasons = set()
    if win_bad.any():
        reasons.add("window")
    if bias_bad.any():
        reasons.add("bias")
    return ok.all(axis=1), reasons


def _sizes(layers, axis):
    """Input lengths past every edge effect of the chain, plus a full period of its strides."""
    S, span = 1, 1
    for L in layers:
        a = _Axis.of(L, axis)
        span += S * (a.e + a.pt + a.pb)
        S *= a.s
    return range(1, 2 * span + 2 * S + 2)


def _compose_chain(layers):
    """Fold left to right; return (composite, steps) with steps[i] = (prev composite, layer i+1)."""
    comp = layers[0]
    steps = []
    for i, L in enumerate(layers[1:], start=1):
        try:
            nxt = _compose_pair(comp, L)
        except ValueError as exc:
            raise ValueError(f"layer {i - 1} -> layer {i}: {exc}") from None
        steps.append((comp, L))
        comp = nxt
    return comp, steps


def _step_axes(steps, axis):
    """Per step (prev axis, cur axis, prev biased), built once per chain and axis."""
    key = (id(steps), axis)
    hit = _AXES_CACHE.get(key)
    if hit is not None and hit[0] is steps:
        return hit[1]
    out = [
        (_Axis.of(p, axis), _Axis.of(c, axis), p.bias is not None and bool(np.any(p.bias != 0)))
        for p, c in steps
    ]
    _AXES_CACHE.clear()  # one chain at a time; keeps the cache from holding layers alive
    _AXES_CACHE[key] = (steps, out)
    return out


_AXES_CACHE = {}


def _axis_masks(steps, axis, n):
    """Exactness mask of the final composite's outputs along `axis` for input length n (None if the
    sequence is not defined for n), and per step the reasons found."""
    mask = None
    found = []
    for k, (pa, ca, biased) in enumerate(_step_axes(steps, axis)):
        if mask is None:
            n1 = pa.out_len(n)
            if n1 < 1:
                return None, found
            mask = np.ones(n1, dtype=bool)
        mask, why = _step_masks(pa, ca, biased, n, mask)
        if mask is None:
            return None, found
        found.append((k, why))
    return mask, found


@dataclass(frozen=True)
class ExactRegion:
    """Where a naively composed layer (``compose(..., exact=False)``) equals the sequence.

    Parameters
    ----------
    top, bottom, left, right : int
        As the attributes; `compose` builds the region, users do not.
    _steps : tuple, optional
        Set by `compose`: what `mask` and `slices` evaluate (not part of the public API).

    Attributes
    ----------
    top, bottom, left, right : int
        Output rows/columns at each edge that may differ, the worst case over input sizes;
        everything inside them is exact for every input large enough to have an inside.

    See Also
    --------
    compose : Returns it with ``exact=False``.

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv
    >>> a = fastconv.Conv2d(np.ones((1, 1, 3, 3)))
    >>> b = fastconv.Conv2d(np.ones((1, 1, 3, 3)), padding=1)
    >>> layer, region = fastconv.compose(a, b, exact=False)
    >>> region.top, region.bottom, region.left, region.right
    (1, 1, 1, 1)
    """

    top: int
    bottom: int
    left: int
    right: int
    _steps: tuple = field(default=(), repr=False, compare=False)

    def mask(self, height, width):
        """Boolean (Ho, Wo) mask of the exact outputs for an input of spatial size (height, width).

        Parameters
        ----------
        height, width : int
            The input's spatial size.

        Returns
        -------
        ndarray of bool, shape (Ho, Wo)
            True where the composed layer equals the sequence for this input size.

        Raises
        ------
        ValueError
            A size the sequence of layers is not defined for.

        See Also
        --------
        slices : The exact interior as slices.

        Examples
        --------
        >>> import numpy as np
        >>> import fastconv
        >>> a = fastconv.Conv2d(np.ones((1, 1, 3, 3)))
        >>> b = fastconv.Conv2d(np.ones((1, 1, 3, 3)), padding=1)
        >>> layer, region = fastconv.compose(a, b, exact=False)
        >>> region.mask(6, 6)[:, 1]
        array([False,  True,  True, False])
        """
        height = _int(height, "height", 1)
        width = _int(width, "width", 1)
        self._line(0, height)  # validates that the sequence is defined for this size
        self._line(1, width)
        return _mask2d(self._steps, height, width)

    def slices(self, height, width):
        """(row slice, column slice) of the output that is exact for an input of this size.

        Parameters
        ----------
        height, width : int
            The input's spatial size.

        Returns
        -------
        tuple of slice
            ``(rows, cols)``: ``out[..., rows, cols]`` equals the sequence's output there.

        Raises
        ------
        ValueError
            A size the sequence of layers is not defined for.

        See Also
        --------
        mask : Every exact output, not only the interior rectangle.

        Examples
        --------
        >>> import numpy as np
        >>> import fastconv
        >>> a = fastconv.Conv2d(np.ones((1, 1, 3, 3)))
        >>> b = fastconv.Conv2d(np.ones((1, 1, 3, 3)), padding=1)
        >>> layer, region = fastconv.compose(a, b, exact=False)
        >>> region.slices(6, 6)
        (slice(1, 3, None), slice(1, 3, None))
        """
        return tuple(
            slice(*_interior(self._line(axis, n))) for axis, n in ((0, height), (1, width))
        )

    def _line(self, axis, n):
        n = _int(n, ("height", "width")[axis], 1)
        if not self._steps:
            raise ValueError("this region has no layers")
        mask, _ = _axis_masks(self._steps, axis, n)
        if mask is None:
            raise ValueError(
                f"the layers are not defined for an input {('height', 'width')[axis]} of {n}"
            )
        return mask


def _mask2d(steps, H, W):
    """Exactness of every output of the naive composite for one (H, W) input, in 2-D.

    Per axis, a virtual read is harmless when its window misses the input along that axis; in 2-D a
    virtual read (u, v) is harmless when the earlier composite's non-zero 2-D taps miss the input,
    which can hold at corners where neither axis alone is clear of it.  So `slices` (per axis, safe)
    can be smaller than this mask."""
    mask = None
    for prev, cur in steps:
        n1, m1 = _Axis.of(prev, 0).out_len(H), _Axis.of(prev, 1).out_len(W)
        n2, m2 = _Axis.of(cur, 0).out_len(n1), _Axis.of(cur, 1).out_len(m1)
        if mask is None:
            mask = np.ones((n1, m1), dtype=bool)
        (s, t), (dh, dw) = cur.stride, cur.dilation
        pt, pl = cur.padding[0], cur.padding[2]
        kh, kw = cur.kernel_size
        U = np.arange(-pt, (n2 - 1) * s - pt + dh * (kh - 1) + 1)
        V = np.arange(-pl, (m2 - 1) * t - pl + dw * (kw - 1) + 1)
        # which (U, V) outputs of prev have a window (non-zero 2-D taps) over the input
        taps = np.any(prev.weight != 0, axis=(0, 1)).astype(np.int64)
        (S, T), (gh, gw) = prev.stride, prev.dilation
        rr = U[:, None] * S - prev.padding[0] + gh * np.arange(taps.shape[0])[None, :]
        cc = V[:, None] * T - prev.padding[2] + gw * np.arange(taps.shape[1])[None, :]
        rows_in = ((rr >= 0) & (rr < H)).astype(np.int64)
        cols_in = ((cc >= 0) & (cc < W)).astype(np.int64)
        touch = (rows_in @ taps @ cols_in.T) > 0
        biased = prev.bias is not None and bool(np.any(prev.bias != 0))
        real = ((U >= 0) & (U < n1))[:, None] & ((V >= 0) & (V < m1))[None, :]
        grid = ~touch & (not biased)
        grid[real] = mask[np.ix_(U[(U >= 0) & (U < n1)], V[(V >= 0) & (V < m1)])].ravel()
        ok = np.ones((n2, m2), dtype=bool)
        for jh, jw in np.argwhere(np.any(cur.weight != 0, axis=(0, 1))):
            r = np.arange(n2) * s + jh * dh  # index into U (which starts at -pt)
            c = np.arange(m2) * t + jw * dw
            ok &= grid[np.ix_(r, c)]
        mask = ok
    return mask


def _interior(mask):
    """(start, stop) with every bad index below start or at/after stop, split at the middle."""
    n = mask.size
    bad = np.flatnonzero(~mask)
    lo, hi = bad[bad < n / 2], bad[bad >= n / 2]
    start = int(lo.max()) + 1 if lo.size else 0
    stop = int(hi.min()) if hi.size else n
    return start, max(start, stop)


def compose(a, b, *more, exact=True):
    """One layer equal to applying `a`, then `b`, then each of `more`, with no nonlinearity between.

    Parameters
    ----------
    a, b, *more : Conv2d
        Any kernel sizes, strides, paddings, dilations, groups and biases whose channel counts
        chain.
    exact : bool, default True
        If True, raise `CompositionError` (a ValueError) saying why when no single convolution
        equals the chain for every input size.  If False, return the naive composition and its
        `ExactRegion`.

    Returns
    -------
    Conv2d, or (Conv2d, ExactRegion) when ``exact=False``
        Stride is the product of the strides; the later kernel is spread by the earlier stride
        (taps at j*d2*s1 + i*d1, stored with the largest common dilation); the earlier bias
        reaches the result through the spatial sum of the later kernel; padding is p1 + s1*p2
        per side; groups are the largest count that stays exact.

    Raises
    ------
    CompositionError
        The later layer's padding reads positions where the sequence sees zeros but a single
        convolution would see the earlier layers' window over the input ("window") or their bias
        ("bias").  The module docstring derives the conditions.  A chain is exact whenever
        every later layer is unpadded, or when each earlier part is padded to "full" and has
        no bias.
    ValueError
        Channel counts that do not chain.

    See Also
    --------
    add : Parallel branches summed into one layer.
    compose_kernels : The kernel of two bare stride-1 convolutions.
    ExactRegion : Where a naive composition is exact.

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv
    >>> rng = np.random.default_rng(0)
    >>> a = fastconv.Conv2d(rng.standard_normal((100, 1, 3, 3)), rng.standard_normal(100))
    >>> b = fastconv.Conv2d(rng.standard_normal((2, 100, 5, 5)))
    >>> c = fastconv.compose(a, b)
    >>> c.weight.shape
    (2, 1, 7, 7)
    >>> x = rng.standard_normal((1, 1, 32, 32))
    >>> bool(np.allclose(c(x), b(a(x))))
    True
    """
    layers = [_as_layer(a, "a"), _as_layer(b, "b")]
    layers += [_as_layer(m, f"more[{i}]") for i, m in enumerate(more)]
    comp, steps = _compose_chain(layers)
    bad = {}  # step -> (reasons, axes)
    for axis in (0, 1):
        for n in _sizes(layers, axis):
            mask, found = _axis_masks(steps, axis, n)
            for k, why in found:
                if why:
                    r, ax = bad.setdefault(k, (set(), set()))
                    r.update(why)
                    ax.add(("height", "width")[axis])
    if exact:
        small = _smallest_inputs(layers, steps, comp)
        for k, (axis, _, _) in small.items():  # sizes the sequence rejects
            r, ax = bad.setdefault(k, (set(), set()))
            r.add("size")
            ax.add(("height", "width")[axis])
        if bad:
            k = min(bad)
            reasons, axes = bad[k]
            msg = _explain(k + 1, reasons - {"size"}, axes) if reasons - {"size"} else ""
            if k in small:
                axis, n_seq, n_one = small[k]
                msg = (
                    f"no single convolution equals layers 0..{k + 1}: the sequence rejects an "
                    f"input {('height', 'width')[axis]} below {n_seq}, the single convolution "
                    f"accepts one of {n_one}; "
                    + (
                        msg
                        or "compose(..., exact=False) returns the "
                        "layer and where it is exact (its mask refuses those sizes)"
                    )
                )
            raise CompositionError(msg, k + 1, reasons, axes)
        return comp
    return comp, _region(layers, steps)


def _smallest(axes_chain, limit):
    """The smallest input length for which every axis of the chain gives a non-empty output."""
    for n in range(1, limit):
        m = n
        for a in axes_chain:
            m = a.out_len(m)
            if m < 1:
                break
        else:
            return n
    return limit


def _smallest_inputs(layers, steps, comp):
    """Per step k whose composite accepts smaller inputs than the layers 0..k+1 in sequence:
    (axis, smallest length the sequence accepts, smallest the composite accepts), first axis.

    Output counts of the composite and of the sequence agree wherever the sequence is
    defined (module docstring), and both are non-decreasing in the input length, so the
    domains differ exactly when the smallest accepted lengths do.  The composite accepts more
    when a later layer's padding is at least its extent, so it can run on an input the
    earlier layers reject."""
    out = {}
    prefixes = [p for p, _ in steps[1:]] + [comp]  # composite of layers 0..k+1, per step k
    for axis in (0, 1):
        limit = _sizes(layers, axis).stop + 1
        for k, one in enumerate(prefixes):
            seq = [_Axis.of(L, axis) for L in layers[: k + 2]]
            n_seq = _smallest(seq, limit)
            n_one = _smallest([_Axis.of(one, axis)], limit)
            if n_one != n_seq and k not in out:
                out[k] = (axis, n_seq, n_one)
    return out


def _explain(layer, reasons, axes):
    earlier = "layer 0" if layer == 1 else f"layers 0..{layer - 1}"
    msg = [
        f"no single convolution equals layers 0..{layer}: layer {layer} is padded along "
        f"{' and '.join(sorted(axes))} and reads positions where the sequence sees zeros but one "
        "convolution would see"
    ]
    parts = []
    if "window" in reasons:
        parts.append(
            f"the window of {earlier} over the input (pad {earlier} further, to 'full', or "
            f"leave layer {layer} unpadded)"
        )
    if "bias" in reasons:
        parts.append(
            f"the bias of {earlier}, which a single convolution cannot vary with position "
            f"(drop that bias or leave layer {layer} unpadded)"
        )
    msg.append(" and ".join(parts))
    return " ".join(msg) + "; compose(..., exact=False) returns the layer and where it is exact"


def _region(layers, steps):
    margins = []
    for axis in (0, 1):
        sizes = list(_sizes(layers, axis))
        big = sizes[len(sizes) // 2 :]  # past every edge effect: the interior is well defined
        top = bot = 0
        for n in big:
            mask, _ = _axis_masks(steps, axis, n)
            if mask is None:
                continue
            start, stop = _interior(mask)
            top, bot = max(top, start), max(bot, mask.size - stop)
        margins += [top, bot]
    return ExactRegion(*margins, _steps=tuple(steps))


def compose_kernels(k1, k2):
    """The kernel k with conv2d(conv2d(x, k1, full), k2, full) == conv2d(x, k, full).

    Parameters
    ----------
    k1 : array_like, shape (K1, C, h1, w1)
        The first kernel.
    k2 : array_like, shape (K2, K1, h2, w2)
        The second kernel, applied to the first's output.

    Returns
    -------
    ndarray, shape (K2, C, h1 + h2 - 1, w1 + w2 - 1)
        ``k[m, c] = sum_k scipy.signal.convolve2d(k1[k, c], k2[m, k], mode="full")``; "full"
        padding is kernel size minus one on each side.  Stride 1, dilation 1, one group; see
        `compose` for the rest.

    Raises
    ------
    ValueError
        A kernel that is not 4-D or is empty, or channel counts that do not chain.

    See Also
    --------
    compose : The same for whole layers (stride, padding, dilation, groups, bias).

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv
    >>> k = fastconv.compose_kernels(np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)))
    >>> k[0, 0]
    array([[1., 2., 1.],
           [2., 4., 2.],
           [1., 2., 1.]])
    """
    k1 = as_float_array(k1, "k1")
    k2 = as_float_array(k2, "k2")
    for name, k in (("k1", k1), ("k2", k2)):
        if k.ndim != 4 or min(k.shape) < 1:
            raise ValueError(f"{name} must be a non-empty 4-D kernel (K, C, kh, kw), got {k.shape}")
    if k2.shape[1] != k1.shape[0]:
        raise ValueError(
            f"k2 takes {k2.shape[1]} input channels (k2.shape[1]) but k1 gives {k1.shape[0]} "
            "(k1.shape[0])"
        )
    return _compose_pair(Conv2d(k1), Conv2d(k2)).weight.copy()


# -- sums, batch norm and the stock layers ---------------------------------------------------------
def add(a, b, *more):
    """One layer equal to parallel branches summed, ``a(x) + b(x) + ...`` (RepVGG).

    Parameters
    ----------
    a, b, *more : Conv2d
        Same input and output channels and stride; any kernel sizes, dilations, groups and paddings
        whose output sizes agree for every input, i.e. with the same ``pt + pb - extent`` per axis
        (for example "same" paddings, or 3x3 with padding 1 beside 1x1 with padding 0).

    Returns
    -------
    Conv2d
        Smaller kernels are zero-padded about their padding offset (the centre for "same"),
        biases are summed, padding is the largest per side, groups the largest count that stays
        exact.

    Raises
    ------
    ValueError
        Channels, strides or output sizes that do not agree, with the reason.

    See Also
    --------
    fuse_bn : Fold each branch's batch norm first.
    compose : Layers in sequence instead of in parallel.

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv
    >>> rng = np.random.default_rng(0)
    >>> k3 = fastconv.Conv2d(rng.standard_normal((4, 4, 3, 3)), padding=1)
    >>> k1 = fastconv.Conv2d(rng.standard_normal((4, 4, 1, 1)))
    >>> one = fastconv.add(k3, k1, fastconv.identity_conv(4, 3))
    >>> x = rng.standard_normal((1, 4, 8, 8))
    >>> bool(np.allclose(one(x), k3(x) + k1(x) + x))
    True
    """
    branches = [_as_layer(a, "a"), _as_layer(b, "b")]
    branches += [_as_layer(m, f"more[{i}]") for i, m in enumerate(more)]
    first = branches[0]
    for i, L in enumerate(branches[1:], start=1):
        if (L.in_channels, L.out_channels) != (first.in_channels, first.out_channels):
            raise ValueError(
                f"branch {i} maps {L.in_channels} -> {L.out_channels} channels but branch 0 maps "
                f"{first.in_channels} -> {first.out_channels}; branches must agree to be summed"
            )
        if L.stride != first.stride:
            raise ValueError(
                f"branch {i} has stride {L.stride} but branch 0 has {first.stride}; branches with "
                "different strides sample different positions and cannot be summed into one layer"
            )
        for axis, what in ((0, "height"), (1, "width")):
            c0 = first.padding[2 * axis] + first.padding[2 * axis + 1] - first.receptive_field[axis]
            ci = L.padding[2 * axis] + L.padding[2 * axis + 1] - L.receptive_field[axis]
            if c0 != ci:
                raise ValueError(
                    f"branch {i} and branch 0 give outputs of different {what} (padding total "
                    f"minus kernel extent: {ci} vs {c0}); pad the smaller kernel by half the "
                    "difference in "
                    "extent (e.g. 'same' on both) so the outputs line up"
                )
    C, K = first.in_channels, first.out_channels
    dtype = result_float_dtype(*[L.weight for L in branches])
    g0 = 0
    for L in branches:
        g0 = math.gcd(g0, L.groups)
    Pt = max(L.padding[0] for L in branches)
    Pl = max(L.padding[2] for L in branches)
    # tap offsets of every branch in the merged kernel, to find the common dilation
    offs = []
    for L in branches:
        kh, kw = L.kernel_size
        dh, dw = L.dilation
        offs.append(
            (Pt - L.padding[0] + dh * np.arange(kh), Pl - L.padding[2] + dw * np.arange(kw))
        )
    gh = int(np.gcd.reduce(np.concatenate([o[0] for o in offs]))) or 1
    gw = int(np.gcd.reduce(np.concatenate([o[1] for o in offs]))) or 1
    nh = int(max(o[0].max() for o in offs)) // gh + 1
    nw = int(max(o[1].max() for o in offs)) // gw + 1
    W = np.zeros((K, C // g0, nh, nw))
    bias = None
    for L, (oh, ow) in zip(branches, offs, strict=True):
        w = _regroup(L.weight.astype(np.float64), L.groups, g0, C)
        W[:, :, (oh // gh)[:, None], (ow // gw)[None, :]] += w
        if L.bias is not None:
            bias = L.bias.astype(np.float64) + (0 if bias is None else bias)
    W, groups = _largest_groups(W, g0, C)
    padding = (
        Pt,
        max(L.padding[1] for L in branches),
        Pl,
        max(L.padding[3] for L in branches),
    )
    return Conv2d(
        W.astype(dtype),
        None if bias is None else bias.astype(dtype),
        first.stride,
        padding,
        (gh, gw),
        groups,
    )


def fuse_bn(conv, gamma, beta, mean, var, eps=1e-5):
    """Fold an inference-mode batch norm that follows `conv` into its weight and bias.

    Parameters
    ----------
    conv : Conv2d
        The convolution the batch norm follows.
    gamma, beta, mean, var : array_like, shape (conv.out_channels,)
        BatchNorm2d's weight, bias, running_mean and running_var.
    eps : float
        BatchNorm2d's eps (default 1e-5, torch's).

    Returns
    -------
    Conv2d
        Weight ``w * gamma / sqrt(var + eps)`` per output channel, bias
        ``(b - mean) * gamma / sqrt(var + eps) + beta``.

    Raises
    ------
    ValueError
        A statistic that is not finite (NaN or inf in gamma, beta, mean or var), a negative
        variance, an eps that is negative or not finite, or var + eps = 0 in some channel:
        each would give NaN or inf weights silently.

    See Also
    --------
    add : Sum the fused branches (RepVGG).

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv
    >>> conv = fastconv.Conv2d(np.ones((2, 1, 1, 1)))
    >>> bn = fastconv.fuse_bn(conv, [2.0, 1.0], [0.5, 0.0], [1.0, 0.0], [1.0, 4.0], eps=0.0)
    >>> bn.weight.ravel(), bn.bias
    (array([2. , 0.5]), array([-1.5,  0. ]))
    """
    conv = _as_layer(conv, "conv")
    K = conv.out_channels
    vals = []
    for name, v in (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var)):
        v = as_float_array(v, name)
        if v.shape != (K,):
            raise ValueError(
                f"{name} must have shape ({K},) (the layer's output channels), got {v.shape}"
            )
        vals.append(v.astype(np.float64))
    for name, v in zip(("gamma", "beta", "mean", "var"), vals, strict=True):
        bad = np.flatnonzero(~np.isfinite(v))
        if bad.size:
            raise ValueError(
                f"{name} must be finite, got {v[bad[0]]} in channel {bad[0]} "
                f"({bad.size} non-finite value(s))"
            )
    gamma, beta, mean, var = vals
    bad = np.flatnonzero(var < 0)
    if bad.size:
        raise ValueError(
            f"var must be non-negative (a variance), got {var[bad[0]]} in channel {bad[0]}"
        )
    if (
        not isinstance(eps, numbers.Real)
        or isinstance(eps, bool)
        or not math.isfinite(eps)
        or eps < 0
    ):
        raise ValueError(f"eps must be a finite non-negative number, got {eps!r}")
    bad = np.flatnonzero(var + eps <= 0)
    if bad.size:
        raise ValueError(
            f"var + eps must be positive in every channel; channel {bad[0]} has var "
            f"{var[bad[0]]} and eps {eps!r} (1/sqrt(0) is not a scale)"
        )
    scale = gamma / np.sqrt(var + eps)
    b = np.zeros(K) if conv.bias is None else conv.bias.astype(np.float64)
    dtype = conv.dtype
    return Conv2d(
        (conv.weight * scale[:, None, None, None]).astype(dtype),
        ((b - mean) * scale + beta).astype(dtype),
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
    )


def identity_conv(channels, kernel_size, groups=1):
    """A layer that returns its input: a centred delta kernel with "same" padding.

    Parameters
    ----------
    channels : int
        Input and output channels.
    kernel_size : int or pair
        The delta sits at ``(k - 1) // 2``, which with torch's "same" padding (extra at the
        bottom/right) is the identity for even sizes too.
    groups : int
        Must divide `channels`; the weight has shape (channels, channels // groups, kh, kw).

    Returns
    -------
    Conv2d
        The identity layer, stride 1, "same" padding.

    Raises
    ------
    ValueError
        `channels` or `kernel_size` below 1, or `groups` not dividing `channels`.

    See Also
    --------
    add : Adds it to other branches (RepVGG's identity branch).

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv
    >>> x = np.arange(16.0).reshape(1, 4, 2, 2)
    >>> bool(np.array_equal(fastconv.identity_conv(4, 3, groups=2)(x), x))
    True
    """
    channels = _int(channels, "channels", 1)
    kh, kw = pair(kernel_size, "kernel_size", minimum=1)
    groups = _int(groups, "groups", 1)
    if channels % groups:
        raise ValueError(f"groups={groups} must divide channels={channels}")
    cg = channels // groups
    w = np.zeros((channels, cg, kh, kw))
    w[np.arange(channels), np.arange(channels) % cg, (kh - 1) // 2, (kw - 1) // 2] = 1.0
    return Conv2d(w, padding="same", groups=groups)


def avgpool_conv(channels, kernel_size, *, stride=None, padding=0):
    """Average pooling as a depthwise layer (AvgPool2d with count_include_pad=True).

    Parameters
    ----------
    channels : int
        Input and output channels (one group per channel).
    kernel_size : int or pair
        The pooling window.
    stride : int or pair, optional
        Defaults to `kernel_size`, as AvgPool2d does.
    padding : int, pair, (t, b, l, r), "same" or "valid"
        Zero padding, counted in the average (``count_include_pad=True``).

    Returns
    -------
    Conv2d
        A depthwise layer whose kernel is ``1 / (kh * kw)`` everywhere.

    Raises
    ------
    ValueError
        `channels` or `kernel_size` below 1, or an invalid stride or padding.

    See Also
    --------
    compose : Fold the pooling into a neighbouring convolution.

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv
    >>> fastconv.avgpool_conv(1, 2)(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    channels = _int(channels, "channels", 1)
    kh, kw = pair(kernel_size, "kernel_size", minimum=1)
    stride = (kh, kw) if stride is None else stride
    w = np.full((channels, 1, kh, kw), 1.0 / (kh * kw))
    return Conv2d(w, stride=stride, padding=padding, groups=channels)


def separate(kernel2d, rank=None, tol=None):
    """Split a 2-D kernel into (column, row) 1-D pairs by SVD.

    ``kernel2d ~ sum_r outer(cols[r], rows[r])``.

    Parameters
    ----------
    kernel2d : array_like, shape (kh, kw)
        The kernel to split.
    rank : int, optional
        Number of pairs to keep; by default the numerical rank (singular values above `tol`).
    tol : float, optional
        Singular values at or below this are dropped when `rank` is None; defaults to
        ``max(kh, kw) * eps * s_max`` with the kernel's float eps (at least one pair is kept).

    Returns
    -------
    cols : ndarray, shape (r, kh)
        The column factors.
    rows : ndarray, shape (r, kw)
        The row factors.  Each pair scaled by the square root of its singular value (sign fixed so the largest
        entry of the column is positive); the sum of outer products equals `kernel2d` to rounding
        when the kernel has rank <= r, and is its best rank-r approximation otherwise.  float32
        stays float32.

    Raises
    ------
    ValueError
        `kernel2d` not 2-D (or empty) or holding NaN/inf, or `rank` out of range.

    See Also
    --------
    fastconv.signal.correlate2d : Runs rank-1 kernels as two 1-D passes (its own O(kh*kw)
        pivot test finds them; no SVD per call).

    Examples
    --------
    >>> import numpy as np
    >>> import fastconv
    >>> k = np.outer([1.0, 2.0, 1.0], [1.0, 0.0, -1.0])
    >>> cols, rows = fastconv.separate(k)
    >>> cols.shape, rows.shape, bool(np.allclose(cols.T @ rows, k))
    ((1, 3), (1, 3), True)
    """
    k = as_float_array(kernel2d, "kernel2d")
    if k.ndim != 2 or min(k.shape) < 1:
        raise ValueError(f"kernel2d must be a non-empty 2-D array (kh, kw), got shape {k.shape}")
    if rank is not None:
        rank = _int(rank, "rank", 1)
        if rank > min(k.shape):
            raise ValueError(f"rank must be at most min(kh, kw) = {min(k.shape)}, got {rank}")
    if tol is not None and (not isinstance(tol, numbers.Real) or tol < 0):
        raise ValueError(f"tol must be a non-negative number, got {tol!r}")
    from ._separable import svd_separate

    cols, rows, _ = svd_separate(k, rank=rank, tol=tol)
    return cols, rows
