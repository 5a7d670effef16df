"""Geometry and validation: the one place that normalises convolution arguments and raises the errors.

Every public function calls in here before any kernel runs, so kernels can trust their inputs.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass, replace

import numpy as np

__all__ = [
    "ConvGeometry",
    "SignalNdGeometry",
    "GEO_FIELDS",
    "check_out",
    "INT_MAX",
    "MAX_BYTES",
    "NdGeometry",
    "as_float_array",
    "check_nbytes",
    "conv_geometry",
    "filter_axes",
    "filter_boundary",
    "filter_dtype",
    "filter_fill",
    "filter_geometry",
    "filter_mode",
    "filter_swap",
    "geometry_from_shapes",
    "nd_conv_geometry",
    "nd_geometry_from_shapes",
    "ntuple",
    "padding_amounts",
    "padding_nd",
    "pair",
    "result_float_dtype",
    "shape_tuple",
    "signal_nd_geometry",
    "unfold_geometry",
    "unfold_nd_geometry",
]


# -- limits ----------------------------------------------------------------------------------------
# Every size and parameter is checked against these before anything is allocated, so a hostile
# value gets a ValueError naming the argument instead of a MemoryError, an OverflowError or a
# wrapped-around C integer inside a kernel.
#
# INT_MAX: every per-axis quantity (kernel size, stride, padding, dilation, kernel extent, padded
# and output extent) must fit a 32-bit C int.  The kernels index with int64, but thread counts,
# the BLAS that NumPy/SciPy ship (LP64: 32-bit dimensions) and the intrinsics' offsets take C
# ints, and no real image has an axis of 2**31 samples.
#
# MAX_BYTES: no array a call allocates or may copy (its output, the zero-padded input a kernel or
# numpy.pad may build, im2col's columns, col2im's image) may exceed the machine's physical memory.
# Such an array can never be computed without paging, and Linux's default overcommit heuristic
# refuses single allocations larger than RAM + swap anyway; refusing it up front turns a late
# MemoryError (or an hour of swapping) into an immediate error that names the argument.  Sizes
# are counted with at least one sample, so an empty batch cannot smuggle a per-sample workspace
# through.  Element counts under MAX_BYTES also keep every product of sizes far from int64 overflow.
INT_MAX = 2**31 - 1


def _physical_memory():
    try:
        n = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not POSIX
        n = -1
    return int(n) if n > 0 else 2**48


MAX_BYTES = min(_physical_memory(), np.iinfo(np.intp).max)


def _is_int(v):
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, (bool, np.bool_))


def _check_extent(value, what):
    """A derived per-axis extent (padded size, kernel extent) must fit a C int."""
    if value > INT_MAX:
        raise ValueError(
            f"{what} is {value}, more than {INT_MAX} (2**31 - 1) samples along an axis"
        )


def check_nbytes(shape, itemsize, what, blame):
    """Refuse an array of `shape` whose byte size exceeds MAX_BYTES (see the limits above).

    `what` says which array it is, `blame` which arguments set its size.
    """
    n = itemsize * max(int(shape[0]), 1)  # the batch: at least one sample
    for s in shape[1:]:
        n *= int(s)
    if n > MAX_BYTES:
        raise ValueError(
            f"{what} would have shape {tuple(shape)}: {n / 2**30:.4g} GiB, more than this "
            f"machine's {MAX_BYTES / 2**30:.4g} GiB of memory; check {blame}"
        )


def ntuple(value, name, n, *, minimum):
    """Normalise an int or a sequence of `n` ints (one int also accepted) to a tuple of `n` Python
    ints, each >= `minimum` and at most INT_MAX."""
    kind = "an int or a pair of ints" if n == 2 else f"an int or a tuple of {n} ints"
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool):
        out = (int(value),) * n
    elif isinstance(value, (tuple, list)) and len(value) == n:
        if not all(
            isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool) for v in value
        ):
            raise TypeError(f"{name} must be {kind}, got {value!r}")
        out = tuple(int(v) for v in value)
    elif isinstance(value, (tuple, list)) and len(value) == 1:
        return ntuple(value[0], name, n, minimum=minimum)
    else:
        raise TypeError(f"{name} must be {kind}, got {value!r}")
    if min(out) < minimum:
        what = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    if max(out) > INT_MAX:
        raise ValueError(f"{name} must be at most {INT_MAX} (2**31 - 1, a C int), got {value!r}")
    return out


def pair(value, name, *, minimum):
    """Normalise an int or a pair of ints to a tuple of two Python ints, each >= `minimum`
    and at most INT_MAX."""
    return ntuple(value, name, 2, minimum=minimum)


def shape_tuple(shape, name):
    """`shape` as a tuple of non-negative Python ints, or a TypeError/ValueError naming it."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(
            f"{name} must be a tuple of ints, got {type(shape).__name__} {shape!r}"
        ) from None
    if not all(_is_int(d) for d in dims):
        raise TypeError(f"{name} must be a tuple of ints, got {shape!r}")
    dims = tuple(int(d) for d in dims)
    if any(d < 0 for d in dims):
        raise ValueError(f"{name} must have non-negative sizes, got {dims}")
    return dims


def result_float_dtype(*arrays):
    """The floating dtype a convolution of `arrays` computes in: float32 if all are float32 or
    smaller, float64 otherwise (integers and bools promote as NumPy promotes them with float32)."""
    for a in arrays:
        if a.dtype.kind not in "biuf":
            raise TypeError(
                f"fastconv works on real numbers; got dtype {a.dtype} "
                "(complex, object and string arrays are not supported here)"
            )
    dt = np.result_type(np.float32, *[a.dtype for a in arrays])
    return np.dtype(np.float32) if dt == np.float32 else np.dtype(np.float64)


def as_float_array(a, name):
    """`a` as an ndarray (no copy), raising a TypeError that names the argument if it is not numeric."""
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be array-like of numbers: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must have a real numeric dtype, got {arr.dtype}")
    return arr


def _contig(a, dtype):
    """C-contiguous, native byte order, `dtype`; a view when `a` already is that."""
    return np.ascontiguousarray(a, dtype=dtype)


@dataclass(frozen=True)
class ConvGeometry:
    """Everything a kernel needs to know about one conv2d call, validated."""

    N: int
    C: int
    H: int
    W: int
    K: int
    kh: int
    kw: int
    sh: int
    sw: int
    pt: int  # padding top
    pb: int  # padding bottom
    pl: int  # padding left
    pr: int  # padding right
    dh: int
    dw: int
    groups: int
    Ho: int
    Wo: int
    batched: bool
    dtype: np.dtype

    @property
    def Cg(self):
        return self.C // self.groups

    @property
    def Kg(self):
        return self.K // self.groups

    @property
    def R(self):
        """Rows of the im2col matrix of one group: Cg * kh * kw."""
        return self.Cg * self.kh * self.kw

    @property
    def P(self):
        """Output pixels per sample."""
        return self.Ho * self.Wo

    @property
    def out_shape(self):
        s = (self.N, self.K, self.Ho, self.Wo)
        return s if self.batched else s[1:]

    @property
    def is_depthwise(self):
        return self.groups == self.C and self.groups > 1

    @property
    def is_pointwise(self):
        return (
            self.kh == self.kw == 1
            and self.sh == self.sw == 1
            and self.pt == self.pb == self.pl == self.pr == 0
        )

    @property
    def flops(self):
        return 2 * self.N * self.K * self.P * self.R

    def as_array(self):
        """The int64 vector every conv kernel takes (layout: GEO_FIELDS), built once per geometry
        (planned geometries are reused across calls; kernels only read it)."""
        geo = self.__dict__.get("_geo")
        if geo is None:
            geo = np.array([getattr(self, f) for f in GEO_FIELDS], dtype=np.int64)
            object.__setattr__(self, "_geo", geo)
        return geo

    def memo(self):
        """A dict kept with this geometry for what the dispatch layer derives from it alone (a
        kernel module's size or mode answers): a planned geometry serves every repeat of its
        call, and asking the kernel module again cost ~0.2 us an answer."""
        m = self.__dict__.get("_memo")
        if m is None:
            m = {}
            object.__setattr__(self, "_memo", m)
        return m

    def dilation_phases(self):
        """A stride-1 dilated convolution as dh*dw undilated ones on phase sub-images.

        Output rows oh = r, r + dh, ... read only input rows of one residue a mod dh: with
        r - pt = dh*q + a (0 <= a < dh, q <= 0), out[r + dh*j] = sum_i xa[j + i + q] w[i] where
        xa = x[a::dh] (likewise columns).  Returns (r, a, c, b, geometry) per phase: output rows
        r::dh and columns c::dw come from input rows a::dh and columns b::dw, and `geometry` is
        the undilated convolution of that sub-image (padding -q, bottom/right as needed).
        """
        if self.sh != 1 or self.sw != 1:
            raise ValueError("dilation phases need stride 1")
        phases = []
        for r in range(min(self.dh, self.Ho)):
            q, a = divmod(r - self.pt, self.dh)
            Ha, Hr = len(range(a, self.H, self.dh)), len(range(r, self.Ho, self.dh))
            for c in range(min(self.dw, self.Wo)):
                qw, b = divmod(c - self.pl, self.dw)
                Wa, Wr = len(range(b, self.W, self.dw)), len(range(c, self.Wo, self.dw))
                sub = replace(
                    self,
                    H=Ha,
                    W=Wa,
                    pt=-q,
                    pb=max(0, Hr + self.kh - 1 + q - Ha),
                    pl=-qw,
                    pr=max(0, Wr + self.kw - 1 + qw - Wa),
                    dh=1,
                    dw=1,
                    Ho=Hr,
                    Wo=Wr,
                )
                phases.append((r, a, c, b, sub))
        return phases

    def stacked_phases(self):
        """The phases of `dilation_phases` as one batch, when they are all alike, else None.

        With H, W, Ho, Wo and the top/left padding multiples of the dilation, phase (r, c)
        reads input phase (r, c) and every phase has the same geometry: the undilated
        convolution of a (dh*dw*N)-sample batch, phase-major (fastconv's phase_split layout).
        """
        dh, dw = self.dh, self.dw
        if any(v % dh for v in (self.H, self.Ho, self.pt)) or any(
            v % dw for v in (self.W, self.Wo, self.pl)
        ):
            return None
        sub = self.dilation_phases()[0][-1]
        return replace(sub, N=dh * dw * self.N)


# The geometry vector passed to kernels; both backends index it with these positions.
GEO_FIELDS = (
    "N",
    "C",
    "H",
    "W",
    "K",
    "kh",
    "kw",
    "sh",
    "sw",
    "pt",
    "pl",
    "dh",
    "dw",
    "groups",
    "Ho",
    "Wo",
)


def padding_nd(padding, kernel, dilation, stride):
    """((lo, hi), ...) per spatial axis from an int, a tuple, "same" or "valid" (torch's rules)."""
    n = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(
                    "padding='same' is not supported for strided convolutions (stride != 1)"
                )
            # torch puts the odd extra row/column at the bottom/right (the high end)
            tot = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
            return tuple((t // 2, t - t // 2) for t in tot)
        kind = "a pair" if n == 2 else f"a tuple of {n} ints"
        raise ValueError(f"padding must be an int, {kind}, 'same' or 'valid', got {padding!r}")
    return tuple((p, p) for p in ntuple(padding, "padding", n, minimum=0))


def padding_amounts(padding, kh, kw, dh, dw, stride):
    """(top, bottom, left, right) from an int, a pair, "same" or "valid" (torch's rules)."""
    (pt, pb), (pl, pr) = padding_nd(padding, (kh, kw), (dh, dw), stride)
    return pt, pb, pl, pr


_AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
_KAXES = {1: ("k",), 2: ("kh", "kw"), 3: ("kd", "kh", "kw")}


@dataclass(frozen=True)
class NdGeometry:
    """A validated convolution over `rank` spatial axes (1, 2 or 3): torch's conv1d/2d/3d rules.

    Tuples are per spatial axis; `pad` holds (lo, hi) pairs.  `conv2d`'s ConvGeometry is the rank-2
    case spelled out field by field; conv1d and conv3d lower to it (fastconv.convnd).
    """

    N: int
    C: int
    K: int
    groups: int
    spatial: tuple
    kernel: tuple
    stride: tuple
    pad: tuple
    dilation: tuple
    out_spatial: tuple
    batched: bool
    dtype: np.dtype

    @property
    def rank(self):
        return len(self.spatial)

    @property
    def Cg(self):
        return self.C // self.groups

    @property
    def out_shape(self):
        s = (self.N, self.K) + self.out_spatial
        return s if self.batched else s[1:]

    @property
    def flops(self):
        return 2 * self.N * self.K * math.prod(self.out_spatial) * self.Cg * math.prod(self.kernel)


def nd_geometry_from_shapes(
    x_shape,
    weight_shape,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    dtype=np.float32,
    *,
    rank=2,
    weight_ndim=None,
    names=("x", "weight"),
):
    """Validate the shapes and arguments of a conv1d/conv2d/conv3d call (``rank`` spatial axes) and
    return its NdGeometry, with torch's rules and errors, before anything is allocated.

    Besides torch's rules, refuses (ValueError naming the argument) any per-axis size above
    INT_MAX and any output or zero-padded input above MAX_BYTES (see the limits at the top of
    this module).  `weight_ndim` (default rank + 2) = rank + 3 accepts a bank (E, K, C/groups, ...)
    whose trailing rank + 2 dimensions are validated.  `names` are what errors call the two shapes.
    """
    xn, wn = names
    x_shape, weight_shape = shape_tuple(x_shape, xn), shape_tuple(weight_shape, wn)
    axes, kaxes = _AXES[rank], _KAXES[rank]
    if len(x_shape) not in (rank + 1, rank + 2):
        unb = "(C, " + ", ".join(axes) + ")"
        raise ValueError(
            f"{xn} must be {rank + 1}-D {unb} or {rank + 2}-D (N, {unb[1:]}, got shape {x_shape}"
        )
    weight_ndim = rank + 2 if weight_ndim is None else weight_ndim
    if len(weight_shape) != weight_ndim:
        want = "(" + ("E, " if weight_ndim > rank + 2 else "") + "K, C/groups, "
        want += ", ".join(kaxes) + ")"
        raise ValueError(f"{wn} must be {weight_ndim}-D {want}, got shape {weight_shape}")
    batched = len(x_shape) == rank + 2
    N, C, *spatial = x_shape if batched else (1,) + x_shape
    K, Cg, *kernel = weight_shape[-(rank + 2) :]
    spatial, kernel = tuple(spatial), tuple(kernel)
    if not isinstance(groups, (numbers.Integral, np.integer)) or isinstance(groups, bool):
        raise TypeError(f"groups must be an int, got {groups!r}")
    groups = int(groups)
    if groups < 1:
        raise ValueError(f"groups must be positive, got {groups}")
    if C % groups:
        raise ValueError(f"groups={groups} must divide the input channels C={C}")
    if K < 1 or Cg < 1 or min(kernel) < 1:
        raise ValueError(f"weight must have non-empty dimensions, got shape {weight_shape}")
    if K % groups:
        raise ValueError(
            f"groups={groups} must divide the output channels K={K} (weight.shape[-{rank + 2}])"
        )
    if Cg * groups != C:
        raise ValueError(
            f"weight expects {Cg * groups} input channels (weight.shape[-{rank + 1}]={Cg} x "
            f"groups={groups}), but x has C={C}"
        )
    if min(spatial) < 1:
        raise ValueError(f"x must have non-empty spatial dimensions, got shape {x_shape}")
    stride_ = ntuple(stride, "stride", rank, minimum=1)
    dilation_ = ntuple(dilation, "dilation", rank, minimum=1)
    pad = padding_nd(padding, kernel, dilation_, stride_)
    extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation_, strict=True))
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(spatial, pad, strict=True))
    _check_extent(max(extent), "the kernel extent dilation*(kernel_size - 1) + 1")
    _check_extent(max(padded), "the padded input (input plus padding)")
    if any(e > p for e, p in zip(extent, padded, strict=True)):
        raise ValueError(
            f"kernel of extent {extent} (kernel size with dilation) is larger than the padded "
            f"input {padded}; check weight, padding and dilation"
        )
    out_spatial = tuple((p - e) // s + 1 for p, e, s in zip(padded, extent, stride_, strict=True))
    item = np.dtype(dtype).itemsize
    check_nbytes((N, K) + out_spatial, item, "the output", "padding, stride and the input size")
    check_nbytes((N, C) + padded, item, "the zero-padded input", "padding")
    return NdGeometry(
        N,
        C,
        K,
        groups,
        spatial,
        kernel,
        stride_,
        pad,
        dilation_,
        out_spatial,
        batched,
        np.dtype(dtype),
    )


def geometry_from_shapes(
    x_shape,
    weight_shape,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    dtype=np.float32,
    *,
    weight_ndim=4,
    names=("x", "weight"),
):
    """Validate shapes and arguments of a conv2d call and return its ConvGeometry (no arrays needed).

    The rank-2 case of `nd_geometry_from_shapes` (same rules, same errors), spelled out in the
    flat fields the 2-D kernels take.
    """
    nd = nd_geometry_from_shapes(
        x_shape,
        weight_shape,
        stride,
        padding,
        dilation,
        groups,
        dtype,
        rank=2,
        weight_ndim=weight_ndim,
        names=names,
    )
    return _flat2d(nd)


def _flat2d(nd):
    """The ConvGeometry of a rank-2 NdGeometry."""
    (H, W), (kh, kw), (pt, pb), (pl, pr) = nd.spatial, nd.kernel, *nd.pad
    return ConvGeometry(
        nd.N,
        nd.C,
        H,
        W,
        nd.K,
        kh,
        kw,
        *nd.stride,
        pt,
        pb,
        pl,
        pr,
        *nd.dilation,
        nd.groups,
        *nd.out_spatial,
        nd.batched,
        nd.dtype,
    )


def conv_geometry(
    x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, weight_ndim=4
):
    """Validate a conv2d call and return (x4, weight, bias, geometry) with x4 batched.

    Arrays are returned C-contiguous in the computing dtype (views when they already are);
    nothing is written to them.  `weight_ndim=5` accepts a bank (E, K, C/groups, kh, kw) and
    validates its trailing four dimensions.  The rank-2 case of `nd_conv_geometry`.
    """
    x4, weight, bias, nd = nd_conv_geometry(
        x, weight, bias, stride, padding, dilation, groups, rank=2, weight_ndim=weight_ndim
    )
    return x4, weight, bias, _flat2d(nd)


def nd_conv_geometry(
    x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, rank, weight_ndim=None
):
    """Validate a conv1d/conv2d/conv3d call and return (x batched, weight, bias, NdGeometry).

    Arrays are returned C-contiguous in the computing dtype (views when they already are),
    nothing is written to them, and every error is raised before anything large is allocated.
    `weight_ndim` as for `nd_geometry_from_shapes` (a bank of weights, with one bias per entry).
    """
    x = as_float_array(x, "x")
    weight = as_float_array(weight, "weight")
    arrays = [x, weight]
    if bias is not None:
        bias = as_float_array(bias, "bias")
        arrays.append(bias)
    dtype = result_float_dtype(*arrays)
    geom = nd_geometry_from_shapes(
        x.shape,
        weight.shape,
        stride,
        padding,
        dilation,
        groups,
        dtype,
        rank=rank,
        weight_ndim=weight_ndim,
    )
    if bias is not None:
        want = weight.shape[: -(rank + 2)] + (geom.K,)
        if bias.shape != want:
            raise ValueError(f"bias must have shape {want}, got {bias.shape}")
        bias = _contig(bias, dtype)
    x = _contig(x if geom.batched else x[None], dtype)
    return x, _contig(weight, dtype), bias, geom


def check_out(out, shape, dtype):
    """Validate a caller-provided `out` before anything is written to it."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"out must have shape {tuple(shape)}, got {out.shape}")
    if out.dtype != dtype:
        raise TypeError(f"out must have dtype {dtype}, got {out.dtype}")
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    return out


#: conv2d's fused activations and their kernel codes (conv_epilogue)
ACTIVATIONS = {None: 0, "relu": 1, "relu6": 2, "silu": 3}


def check_epilogue(activation, residual, shape, dtype):
    """(activation code, residual array or None) of conv2d's fused epilogue, out = activation(
    conv + residual), validated before anything runs: `activation` one of ACTIVATIONS, `residual`
    an array of the output's shape (converted to its dtype, C-contiguous; the caller's is never
    written)."""
    if activation is not None and not isinstance(activation, str):
        raise TypeError(
            f"activation must be None, 'relu', 'relu6' or 'silu', got {type(activation).__name__}"
        )
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be None, 'relu', 'relu6' or 'silu', got {activation!r}")
    if residual is None:
        return ACTIVATIONS[activation], None
    if not isinstance(residual, np.ndarray):
        residual = np.asarray(residual)
    if residual.dtype.kind not in "biuf":
        raise TypeError(f"residual must be a real numeric array, got dtype {residual.dtype}")
    if residual.shape != tuple(shape):
        raise ValueError(
            f"residual must have the output's shape {tuple(shape)}, got {residual.shape}"
        )
    return ACTIVATIONS[activation], np.ascontiguousarray(residual, dtype=dtype)


@dataclass(frozen=True)
class UnfoldGeometry:
    """Geometry of im2col/col2im (torch's unfold/fold); padding is symmetric there."""

    N: int
    C: int
    H: int
    W: int
    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    dh: int
    dw: int
    Ho: int
    Wo: int
    batched: bool
    dtype: np.dtype

    @property
    def L(self):
        return self.Ho * self.Wo


@dataclass(frozen=True)
class UnfoldNdGeometry:
    """Geometry of im2col/col2im over 1, 2 or 3 spatial axes (tuples per axis, symmetric padding)."""

    N: int
    C: int
    spatial: tuple
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    out_spatial: tuple
    batched: bool
    dtype: np.dtype

    @property
    def L(self):
        return math.prod(self.out_spatial)

    @property
    def rows(self):
        return self.C * math.prod(self.kernel)


def unfold_nd_geometry(N, C, spatial, kernel_size, stride, padding, dilation, batched, dtype, what):
    """Validate im2col/col2im arguments for len(spatial) spatial axes; `what` names the spatial size
    in errors."""
    r = len(spatial)
    kernel = ntuple(kernel_size, "kernel_size", r, minimum=1)
    stride_ = ntuple(stride, "stride", r, minimum=1)
    if isinstance(padding, str):
        kind = "a pair of ints" if r == 2 else f"a tuple of {r} ints"
        raise ValueError(f"padding must be an int or {kind} for im2col/col2im, got {padding!r}")
    pad = ntuple(padding, "padding", r, minimum=0)
    dil = ntuple(dilation, "dilation", r, minimum=1)
    extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dil, strict=True))
    padded = tuple(n + 2 * p for n, p in zip(spatial, pad, strict=True))
    _check_extent(max(extent), "the kernel extent dilation*(kernel_size - 1) + 1")
    _check_extent(max(padded), f"the padded {what} ({what} plus padding)")
    if any(e > p for e, p in zip(extent, padded, strict=True)):
        ext = extent if r > 1 else f"({extent[0]},)"
        pd = padded if r > 1 else f"({padded[0]},)"
        raise ValueError(f"kernel of extent {ext} is larger than the padded {what} {pd}")
    out = tuple((p - e) // s + 1 for p, e, s in zip(padded, extent, stride_, strict=True))
    item = np.dtype(dtype).itemsize
    blame = f"{what}, kernel_size, stride and padding"
    taps = "*".join(("kd", "kh", "kw")[3 - r :]) if r > 1 else "k"
    check_nbytes(
        (N, C * math.prod(kernel), math.prod(out)), item, f"the columns (N, C*{taps}, L)", blame
    )
    check_nbytes(
        (N, C) + tuple(spatial), item, "the image (N, C, " + ", ".join(_AXES[r]) + ")", blame
    )
    return UnfoldNdGeometry(
        N, C, tuple(spatial), kernel, stride_, pad, dil, out, batched, np.dtype(dtype)
    )


def unfold_geometry(N, C, H, W, kernel_size, stride, padding, dilation, batched, dtype, what):
    """Validate 2-D im2col/col2im arguments (the rank-2 case of `unfold_nd_geometry`) and return
    the flat UnfoldGeometry the 2-D kernels take."""
    u = unfold_nd_geometry(
        N, C, (H, W), kernel_size, stride, padding, dilation, batched, dtype, what
    )
    return UnfoldGeometry(
        N, C, H, W, *u.kernel, *u.stride, *u.padding, *u.dilation, *u.out_spatial, batched, u.dtype
    )


# ---- 2-D filters (fastconv.signal) ----


@dataclass(frozen=True)
class FilterGeometry:
    """Sizes of one batched scipy.signal-style 2-D filter: a 'valid' correlation of the boundary-
    extended image, ``out[b, i, j] = sum w[p, q] * ext(x)[b, i + p - top, j + q - left]``.

    Hashable, so plans are cached on it.  `dtype` is the result dtype, `work` the float dtype the
    kernels run in, `parts` the number of real images per image (2 for complex).
    """

    batch: int
    H: int
    W: int
    kh: int
    kw: int
    mode: str
    boundary: str
    out_h: int
    out_w: int
    top: int
    left: int
    dtype: np.dtype
    work: np.dtype
    parts: int

    @property
    def taps(self):
        return self.kh * self.kw

    @property
    def pixels(self):
        """Output pixels of all real images of the batch."""
        return self.batch * self.parts * self.out_h * self.out_w

    @property
    def padded(self):
        """(rows, cols) of the extended image the 'valid' correlation reads."""
        return self.out_h + self.kh - 1, self.out_w + self.kw - 1


# --------------------------------------------------------------------------------------------
# fastconv.signal's arguments: scipy's rules, scipy's error types and messages, with the detail added


_MODES = ("full", "same", "valid")
_BOUNDARIES = {"fill": "fill", "pad": "fill", "wrap": "wrap", "circular": "wrap"}
_BOUNDARIES.update({"symm": "symm", "symmetric": "symm"})


def filter_mode(mode):
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"Acceptable mode flags are 'valid', 'same', or 'full'. (mode={mode!r})")
    return mode


def filter_boundary(boundary):
    if not isinstance(boundary, str) or boundary not in _BOUNDARIES:
        raise ValueError(
            "Acceptable boundary flags are 'fill', 'circular' (or 'wrap'), and 'symmetric' "
            f"(or 'symm'). (boundary={boundary!r})"
        )
    return _BOUNDARIES[boundary]


def filter_axes(axes, ndim):
    try:
        ax = tuple(int(a) for a in axes)
    except TypeError:
        raise TypeError(f"axes must be a pair of ints, got {axes!r}") from None
    if len(ax) != 2 or not all(isinstance(a, (numbers.Integral, np.integer)) for a in axes):
        raise ValueError(f"axes must be a pair of ints, got {axes!r}")
    norm = []
    for a in ax:
        if not -ndim <= a < ndim:
            raise np.exceptions.AxisError(f"axes {axes!r} out of range for in1.ndim={ndim}")
        norm.append(a % ndim)
    if norm[0] == norm[1]:
        raise ValueError(f"axes must be two different axes, got {axes!r}")
    return tuple(norm)


def filter_dtype(dt1, dt2, name):
    dt = np.result_type(dt1, dt2)
    if dt.kind not in "iufc" or dt == np.float16:
        raise ValueError(
            f"{name} not available for this type. (inputs {dt1} and {dt2} compute in "
            f"{dt}; supported: integers, float32/64/longdouble, complex64/128/clongdouble)"
        )
    return dt


def filter_fill(fillvalue, dt):
    """scipy's conversion of `fillvalue` to the output dtype (including its error messages)."""
    try:
        fv = np.array(fillvalue, dtype=dt)
    except (TypeError, ValueError, OverflowError):
        # scipy retries through complex and refuses whatever needed that route
        np.array(fillvalue, dtype=np.complex128)  # raises scipy's error for malformed values
        raise ValueError(
            "could not cast `fillvalue` directly to the output type (it was first converted to "
            f"complex). (fillvalue={fillvalue!r}, output dtype {dt})"
        ) from None
    if fv.size != 1:
        if fv.size == 0:
            raise ValueError("`fillvalue` cannot be an empty array.")
        raise ValueError(
            f"`fillvalue` must be scalar or an array with one element. (got shape {fv.shape})"
        )
    return fv.reshape(()).item()


def filter_swap(mode, s1, s2):
    if mode != "valid":
        return False
    ok1 = s1[0] >= s2[0] and s1[1] >= s2[1]
    ok2 = s2[0] >= s1[0] and s2[1] >= s1[1]
    if not (ok1 or ok2):
        raise ValueError(
            "For 'valid' mode, one must be at least as large as the other in every dimension "
            f"(shapes {tuple(s1)} and {tuple(s2)})"
        )
    return not ok1


def filter_geometry(batch, image_hw, kernel_hw, mode, boundary, corr, dtype):
    """FilterGeometry of a filter whose arguments signal.py has validated (mode, boundary names
    normalised, 'valid' inputs already swapped so the image is the larger).  scipy centres 'same'
    at (kh - 1) // 2 for correlation and kh // 2 for convolution."""
    (H, W), (kh, kw) = image_hw, kernel_hw
    if mode == "full":
        out, tl = (H + kh - 1, W + kw - 1), (kh - 1, kw - 1)
    elif mode == "valid":
        out, tl = (H - kh + 1, W - kw + 1), (0, 0)
    elif corr:
        out, tl = (H, W), ((kh - 1) // 2, (kw - 1) // 2)
    else:
        out, tl = (H, W), (kh // 2, kw // 2)
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        work = np.dtype(np.float32) if dtype == np.complex64 else np.dtype(np.float64)
    else:
        work = np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)
    parts = 2 if dtype.kind == "c" else 1
    return FilterGeometry(int(batch), H, W, kh, kw, mode, boundary, *out, *tl, dtype, work, parts)


# -- backward and transposed convolution (fastconv.grad) -------------------------------------------
# The gradients of conv2d and conv_transpose2d are described by the ConvGeometry of the forward
# convolution they differentiate; these checks add what the backward calls take on top of it
# (grad_output's shape, torch's output_padding rule) and raise torch's errors, naming the argument.


def weight_grad_geometry(g):
    """conv2d's weight gradient as a convolution, for groups = 1: (geometry, rows, cols).

    dW[k, c, i, j] = sum over n, oy, ox of go[n, k, oy, ox] * x[n, c, oy*sh + i*dh - pt, ...] is
    a conv2d whose samples are x's channels and whose channels are x's samples: input x
    transposed to (C, N, rows, cols), weight grad_output transposed to (K, N, Ho, Wo), stride
    (dh, dw), dilation (sh, sw), the forward call's top/left padding, and the bottom/right
    padding (or the input rows and cols kept, never more than x has) that make its output
    exactly kh x kw: that output, (C, K, kh, kw), is dW transposed.  Its padding taps are
    skipped, as the forward call's are.
    """
    need_h = (g.kh - 1) * g.dh + (g.Ho - 1) * g.sh + 1
    need_w = (g.kw - 1) * g.dw + (g.Wo - 1) * g.sw + 1
    rows, cols = max(0, min(g.H, need_h - g.pt)), max(0, min(g.W, need_w - g.pl))
    sub = replace(
        g,
        N=g.C,
        C=g.N,
        H=rows,
        W=cols,
        kh=g.Ho,
        kw=g.Wo,
        sh=g.dh,
        sw=g.dw,
        dh=g.sh,
        dw=g.sw,
        pb=need_h - g.pt - rows,
        pr=need_w - g.pl - cols,
        Ho=g.kh,
        Wo=g.kw,
        groups=1,
        batched=True,
    )
    return sub, rows, cols


def backward_geometry(
    input_size,
    weight_shape,
    grad_output_shape,
    stride,
    padding,
    dilation,
    groups,
    dtype,
    *,
    names=("input_size", "weight"),
):
    """The ConvGeometry of the forward conv2d whose gradients are asked for, checking that
    grad_output has the shape that forward call produces (torch.nn.grad's contract)."""
    g = geometry_from_shapes(
        input_size, weight_shape, stride, padding, dilation, groups, dtype, names=names
    )
    go = shape_tuple(grad_output_shape, "grad_output")
    if go != tuple(g.out_shape):
        raise ValueError(
            f"grad_output must have shape {tuple(g.out_shape)} (the conv2d output for "
            f"{names[0]}={tuple(shape_tuple(input_size, names[0]))}, weight, stride, padding and "
            f"dilation), got {go}"
        )
    return g


def transpose_geometry(
    x_shape, weight_shape, stride, padding, output_padding, groups, dilation, dtype
):
    """Validate a conv_transpose2d call (torch's rules) and return (g, Hin, Win).

    g is the ConvGeometry of the conv2d whose input gradient the transposed convolution is: its
    input is conv_transpose2d's output (N, Cout, Hout, Wout), its weight conv_transpose2d's weight
    (Cin, Cout/groups, kh, kw).  Its Ho may exceed Hin (output_padding >= stride, allowed when
    below the dilation): the rows of that conv's output past Hin are zero.
    """
    x_shape = shape_tuple(x_shape, "x")
    weight_shape = shape_tuple(weight_shape, "weight")
    if len(x_shape) not in (3, 4):
        raise ValueError(f"x must be 3-D (C, H, W) or 4-D (N, C, H, W), got shape {x_shape}")
    if len(weight_shape) != 4:
        raise ValueError(f"weight must be 4-D (Cin, Cout/groups, kh, kw), got shape {weight_shape}")
    batched = len(x_shape) == 4
    N, Cin, Hin, Win = x_shape if batched else (1,) + x_shape
    if not _is_int(groups):
        raise TypeError(f"groups must be an int, got {groups!r}")
    groups = int(groups)
    if groups < 1:
        raise ValueError(
            f"groups must be positive (non-positive groups is not supported), got {groups}"
        )
    if min(weight_shape) < 1:
        raise ValueError(f"weight must have non-empty dimensions, got shape {weight_shape}")
    if weight_shape[0] != Cin:
        raise ValueError(
            f"Given transposed=1, weight of size {list(weight_shape)}, expected x of shape "
            f"{list(x_shape)} to have {weight_shape[0]} channels, but got {Cin} channels instead"
        )
    if Cin % groups:
        raise ValueError(f"groups={groups} must divide the input channels of x ({Cin})")
    if Hin < 1 or Win < 1:
        raise ValueError(f"x must have non-empty spatial dimensions, got shape {x_shape}")
    if isinstance(padding, str):
        raise ValueError(
            f"padding must be an int or a pair of ints for conv_transpose2d, got {padding!r}"
        )
    sh, sw = pair(stride, "stride", minimum=1)
    ph, pw = pair(padding, "padding", minimum=0)
    oh, ow = pair(output_padding, "output_padding", minimum=0)
    dh, dw = pair(dilation, "dilation", minimum=1)
    if not (oh < sh or oh < dh) or not (ow < sw or ow < dw):
        raise ValueError(
            "output_padding must be smaller than either stride or dilation, but got "
            f"output_padding=({oh}, {ow}), stride=({sh}, {sw}), dilation=({dh}, {dw})"
        )
    kh, kw = weight_shape[2:]
    Hout = (Hin - 1) * sh - 2 * ph + dh * (kh - 1) + oh + 1
    Wout = (Win - 1) * sw - 2 * pw + dw * (kw - 1) + ow + 1
    if Hout < 1 or Wout < 1:
        raise ValueError(
            f"Given input size per channel ({Hin} x {Win}), the calculated output size per channel "
            f"({Hout} x {Wout}) is too small; check padding, stride, dilation and weight"
        )
    _check_extent(max(Hout, Wout), "the output of conv_transpose2d")
    Cout = weight_shape[1] * groups
    out_shape = (N, Cout, Hout, Wout) if batched else (Cout, Hout, Wout)
    g = geometry_from_shapes(
        out_shape, (Cin,) + tuple(weight_shape[1:]), (sh, sw), (ph, pw), (dh, dw), groups, dtype
    )
    return g, Hin, Win


# ----------------------------------------------------------------------------------------------
# fastconv.ndimage: scipy.ndimage's argument rules, the boundary extension maps and the N-d filter
# geometry (the array seen as outer planes x rows x columns).

import operator  # noqa: E402
from collections.abc import Iterable  # noqa: E402


class NdimageArgumentError(RuntimeError, ValueError):
    """A bad fastconv.ndimage argument where scipy.ndimage raises RuntimeError.

    fastconv's rule is a ValueError naming the argument; scipy.ndimage raises RuntimeError for
    modes, sizes, sequence lengths and output shapes.  This is both, so code written against either
    catches it.
    """


#: scipy.ndimage's filter modes and the extension each one means for a filter (the grid- variants
#: differ from their plain twins only in interpolation).
NDIMAGE_MODES = {
    "reflect": "reflect",
    "grid-mirror": "reflect",
    "constant": "constant",
    "grid-constant": "constant",
    "nearest": "nearest",
    "mirror": "mirror",
    "wrap": "wrap",
    "grid-wrap": "wrap",
}

#: scipy's weight threshold in the N-d correlate: taps with |w| <= DBL_EPSILON are left out.
NDIMAGE_TAP_EPS = float(np.finfo(np.float64).eps)


def ndimage_mode(mode, name="mode"):
    """The extension a scipy.ndimage filter mode names ('reflect', 'constant', 'nearest', 'mirror',
    'wrap'), or NdimageArgumentError naming the argument."""
    if isinstance(mode, str) and mode in NDIMAGE_MODES:
        return NDIMAGE_MODES[mode]
    raise NdimageArgumentError(
        f"boundary mode not supported: {name}={mode!r} (expected one of {sorted(NDIMAGE_MODES)})"
    )


def ndimage_axes(axes, ndim):
    """scipy.ndimage's `axes`: None (all), an int or an iterable of ints; unique, in range."""
    if axes is None:
        return tuple(range(ndim))
    if np.isscalar(axes):
        axes = (operator.index(axes),)
    elif isinstance(axes, Iterable):
        axes = tuple(operator.index(ax) for ax in axes)
    else:
        raise ValueError("axes must be an integer, iterable of integers, or None")
    for ax in axes:
        if ax < -ndim or ax > ndim - 1:
            raise ValueError(f"specified axis: {ax} is out of range (axes={axes}, ndim={ndim})")
    axes = tuple(ax % ndim if ax < 0 else ax for ax in axes)
    if len(set(axes)) != len(axes):
        raise ValueError(f"axes must be unique (axes={axes})")
    return axes


def ndimage_sequence(value, rank, name):
    """A scalar repeated `rank` times, or a sequence of exactly `rank` items (scipy's rule)."""
    if not isinstance(value, str) and np.iterable(value):
        seq = list(value)
        if len(seq) != rank:
            raise NdimageArgumentError(
                f"sequence argument must have length equal to input rank: {name} has "
                f"{len(seq)} items for {rank} axes"
            )
        return seq
    return [value] * rank


def ndimage_dtype(dt, name):
    """scipy.ndimage's dtypes: bool, integers, float32, float64, complex64 and complex128 (not
    float16 or the long doubles), else NdimageArgumentError naming the argument."""
    dt = np.dtype(dt)
    ok = dt.kind in "biu" or (dt.kind == "f" and dt.itemsize in (4, 8))
    ok = ok or (dt.kind == "c" and dt.itemsize in (8, 16))
    if not ok:
        raise NdimageArgumentError(f"array type not supported: {name} has dtype {dt}")
    return dt


def ndimage_output(output, shape, dtype, complex_output=False):
    """The output array scipy.ndimage's `output` argument names: None (the input's dtype), a dtype
    or a dtype name (a new array), or an array of the input's shape (used as it is)."""
    if output is None:
        dt = np.dtype(np.dtype(dtype).name)  # by name, as scipy does: native byte order
        if complex_output:
            dt = np.promote_types(dt, np.complex64)
        return np.zeros(shape, dtype=ndimage_dtype(dt, "output"))
    if isinstance(output, type | np.dtype):
        dt = np.dtype(output)
        if complex_output and dt.kind != "c":
            raise NdimageArgumentError(f"output must have complex dtype (output={dt})")
        return np.zeros(shape, dtype=ndimage_dtype(dt, "output"))
    if isinstance(output, str):
        dt = np.dtype(output)
        if complex_output and dt.kind != "c":
            raise NdimageArgumentError(f"output must have complex dtype (output={output!r})")
        if not issubclass(dt.type, np.number):
            raise NdimageArgumentError(f"output must have numeric dtype (output={output!r})")
        return np.zeros(shape, dtype=ndimage_dtype(dt, "output"))
    if not isinstance(output, np.ndarray):
        raise TypeError(
            f"output must be None, a dtype or a NumPy array, got {type(output).__name__}"
        )
    if output.shape != tuple(shape):
        raise NdimageArgumentError(
            f"output shape not correct: output has shape {output.shape}, the input {tuple(shape)}"
        )
    if complex_output and output.dtype.kind != "c":
        raise NdimageArgumentError("output must have complex dtype")
    if not output.flags.writeable:
        raise ValueError("output array is read-only")
    ndimage_dtype(output.dtype, "output")
    return output


def ndimage_origin(origin, size, name="origin"):
    """An origin as an int, checked as scipy does: -(size // 2) <= origin <= (size - 1) // 2."""
    try:
        o = operator.index(origin)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {origin!r}") from None
    if o < -(size // 2) or o > (size - 1) // 2:
        raise ValueError(
            f"Invalid origin; origin must satisfy -(weights.shape[k] // 2) <= origin[k] <= "
            f"(weights.shape[k]-1) // 2 ({name}={o} for a filter of size {size})"
        )
    return o


def _extend(i, n, mode):
    """Source indices of extended positions i (int64 array) of a line of n, -1 for cval."""
    if n == 0:
        return np.full(i.shape, -1, dtype=np.int64)
    if mode == "constant":
        return np.where((i >= 0) & (i < n), i, -1)
    if mode == "nearest":
        return np.clip(i, 0, n - 1)
    if mode == "wrap":
        return np.mod(i, n)
    if mode == "reflect":  # d c b a | a b c d | d c b a
        j = np.mod(i, 2 * n)
        return np.where(j < n, j, 2 * n - 1 - j)
    if mode == "mirror":  # d c b | a b c d | c b a
        if n == 1:
            return np.zeros(i.shape, dtype=np.int64)
        j = np.mod(i, 2 * n - 2)
        return np.where(j < n, j, 2 * n - 2 - j)
    raise AssertionError(mode)


def extension_index(n, before, after, mode):
    """int64 map of the extended line (before + n + after positions) to source indices, -1 where
    `mode` 'constant' puts cval.  Periodic for any pad length, like scipy's line extension."""
    return _extend(np.arange(-before, n + after, dtype=np.int64), n, mode).astype(np.int64)


def extension_edges(n, before, after, mode):
    """The two ends of extension_index (the middle is the identity): int64 arrays of `before` and
    `after` source indices, what the kernels take (a map of the whole line would cost more than
    the filtering of a long line)."""
    lo = _extend(np.arange(-before, 0, dtype=np.int64), n, mode).astype(np.int64)
    hi = _extend(np.arange(n, n + after, dtype=np.int64), n, mode).astype(np.int64)
    return np.ascontiguousarray(lo), np.ascontiguousarray(hi)


@dataclass(frozen=True)
class NdFilterGeometry:
    """An N-d correlation as the kernels see it: planes x rows x columns, the outer axes flattened.

    shape3 (P, H, W): the array; kernel3 (T, kh, kw): the weights with their outer axes flattened;
    planes (P, T): the source plane output plane p reads for outer tap combination t, or -1
    (all cval); edges_h, edges_w: the (before, after) extension_edges of the last two axes.
    """

    shape3: tuple
    kernel3: tuple
    planes: np.ndarray
    edges_h: tuple
    edges_w: tuple


def nd_filter_geometry(shape, wshape, origins, mode):
    """The NdFilterGeometry of a correlation of an array of `shape` with weights of `wshape`
    (same length, origins checked), every axis extended by `mode`."""
    shape = tuple(int(s) for s in shape)
    wshape = tuple(int(k) for k in wshape)
    if len(shape) < 3:
        pad = 3 - len(shape)
        shape, wshape, origins = (1,) * pad + shape, (1,) * pad + wshape, [0] * pad + list(origins)
    maps, edges = [], []
    for d, (n, k, o) in enumerate(zip(shape, wshape, origins, strict=True)):
        before = k // 2 + o
        if d < len(shape) - 2:
            maps.append(extension_index(n, before, k - 1 - before, mode))
        else:
            edges.append(extension_edges(n, before, k - 1 - before, mode))
    outer_n, outer_k = shape[:-2], wshape[:-2]
    P, T = math.prod(outer_n), math.prod(outer_k)
    planes = np.zeros((P, T), dtype=np.int64)
    valid = np.ones((P, T), dtype=bool)
    stride = 1
    for d in range(len(outer_n) - 1, -1, -1):
        n, k = outer_n[d], outer_k[d]
        o = np.arange(n).reshape((1,) * d + (n,) + (1,) * (len(outer_n) - d - 1))
        t = np.arange(k).reshape((1,) * d + (k,) + (1,) * (len(outer_k) - d - 1))
        src = maps[d][o.reshape(-1, 1) + t.reshape(1, -1)]  # (n, k)
        ob = np.broadcast_to(o, outer_n).reshape(-1)
        tb = np.broadcast_to(t, outer_k).reshape(-1)
        s = src[ob[:, None], tb[None, :]]
        valid &= s >= 0
        planes += np.where(s >= 0, s, 0) * stride
        stride *= n
    planes[~valid] = -1
    return NdFilterGeometry(
        shape[-3:] if len(shape) == 3 else (P, shape[-2], shape[-1]),
        (T, wshape[-2], wshape[-1]),
        np.ascontiguousarray(planes),
        edges[0],
        edges[1],
    )


# (end of the fastconv.ndimage section)


# ---- N-d scipy.signal.convolve / correlate (fastconv.signal) --------------------------------------

_SIGNAL_ND_MODES = ("full", "same", "valid")


@dataclass(frozen=True)
class SignalNdGeometry:
    """A validated N-d signal.convolve/correlate: the filtered axes, whether 'valid' swaps the
    inputs (in2 larger than in1 there), and the kernel's shape along the filtered axes."""

    mode: str
    axes: tuple
    swap: bool
    kernel: tuple
    out_shape: tuple


def signal_nd_geometry(shape1, shape2, mode, axes):
    """scipy.signal.convolve/correlate's rules and errors for these shapes, mode and axes.

    `axes` None filters every axis; otherwise in2 must have size 1 along the other axes (one
    kernel for every index there: a batch of signals).
    """
    if len(shape1) != len(shape2):
        raise ValueError("in1 and in2 should have the same dimensionality")
    if not isinstance(mode, str) or mode not in _SIGNAL_ND_MODES:
        raise ValueError("Acceptable mode flags are 'valid', 'same', or 'full'.")
    nd = len(shape1)
    if axes is None:
        ax = tuple(range(nd))
    else:
        raw = (axes,) if _is_int(axes) else tuple(axes)
        if not all(_is_int(a) for a in raw):
            raise TypeError(f"axes must be an int or a sequence of ints, got {axes!r}")
        if any(not -nd <= int(a) < nd for a in raw):
            raise ValueError(f"axes {axes!r} out of range for {nd}-D inputs")
        ax = tuple(sorted({int(a) % nd for a in raw}))
        if len(ax) != len(raw):
            raise ValueError(f"axes must not repeat an axis, got {axes!r}")
        for a in range(nd):
            if a not in ax and shape2[a] != 1:
                raise ValueError(
                    f"in2 must have size 1 along the axes not in axes={axes!r} (one kernel for "
                    f"every index there), got shape {tuple(shape2)}"
                )
    swap = False
    if mode == "valid" and nd:
        ok1 = all(shape1[a] >= shape2[a] for a in ax)
        ok2 = all(shape2[a] >= shape1[a] for a in ax)
        if not (ok1 or ok2):
            raise ValueError(
                "For 'valid' mode, one must be at least as large as the other in every dimension"
            )
        swap = not ok1
    big, small = (shape2, shape1) if swap else (shape1, shape2)
    out = list(shape1)  # axes not filtered keep in1's size (in2 is 1 there)
    for a in ax:
        if mode == "full":
            out[a] = shape1[a] + shape2[a] - 1 if shape1[a] and shape2[a] else 0
        elif mode == "valid":
            out[a] = big[a] - small[a] + 1 if big[a] and small[a] else 0
        else:
            out[a] = shape1[a]
    return SignalNdGeometry(mode, ax, swap, tuple(int(small[a]) for a in ax), tuple(out))
