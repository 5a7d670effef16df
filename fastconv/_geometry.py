"""Geometry and validation: the one place that normalises convolution arguments and raises the errors.

Every public function calls in here before any kernel runs, so kernels can trust their inputs.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, replace

import numpy as np

__all__ = [
    "ConvGeometry",
    "GEO_FIELDS",
    "check_out",
    "as_float_array",
    "conv_geometry",
    "geometry_from_shapes",
    "padding_amounts",
    "pair",
    "result_float_dtype",
    "unfold_geometry",
]


def pair(value, name, *, minimum):
    """Normalise an int or a pair of ints to a tuple of two Python ints, each >= `minimum`."""
    if isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, bool):
        out = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        if not all(
            isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool) for v in value
        ):
            raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
        out = (int(value[0]), int(value[1]))
    elif isinstance(value, (tuple, list)) and len(value) == 1:
        return pair(value[0], name, minimum=minimum)
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(out) < minimum:
        what = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return out


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
        """The int64 vector every conv kernel takes (layout: GEO_FIELDS)."""
        return np.array([getattr(self, f) for f in GEO_FIELDS], dtype=np.int64)

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


def padding_amounts(padding, kh, kw, dh, dw, stride):
    """(top, bottom, left, right) from an int, a pair, "same" or "valid" (torch's rules)."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(
                    "padding='same' is not supported for strided convolutions (stride != 1)"
                )
            th, tw = dh * (kh - 1), dw * (kw - 1)
            # torch puts the odd extra row/column at the bottom/right
            return th // 2, th - th // 2, tw // 2, tw - tw // 2
        raise ValueError(f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    ph, pw = pair(padding, "padding", minimum=0)
    return ph, ph, pw, pw


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
):
    """Validate shapes and arguments of a conv2d call and return its ConvGeometry (no arrays needed)."""
    x_shape, weight_shape = tuple(x_shape), tuple(weight_shape)
    if len(x_shape) not in (3, 4):
        raise ValueError(f"x must be 3-D (C, H, W) or 4-D (N, C, H, W), got shape {x_shape}")
    if len(weight_shape) != weight_ndim:
        want = "(K, C/groups, kh, kw)" if weight_ndim == 4 else "(E, K, C/groups, kh, kw)"
        raise ValueError(f"weight must be {weight_ndim}-D {want}, got shape {weight_shape}")
    batched = len(x_shape) == 4
    N, C, H, W = x_shape if batched else (1,) + x_shape
    K, Cg, kh, kw = weight_shape[-4:]
    if not isinstance(groups, (numbers.Integral, np.integer)) or isinstance(groups, bool):
        raise TypeError(f"groups must be an int, got {groups!r}")
    groups = int(groups)
    if groups < 1:
        raise ValueError(f"groups must be positive, got {groups}")
    if C % groups:
        raise ValueError(f"groups={groups} must divide the input channels C={C}")
    if K < 1 or kh < 1 or kw < 1 or Cg < 1:
        raise ValueError(f"weight must have non-empty dimensions, got shape {weight_shape}")
    if K % groups:
        raise ValueError(
            f"groups={groups} must divide the output channels K={K} (weight.shape[-4])"
        )
    if Cg * groups != C:
        raise ValueError(
            f"weight expects {Cg * groups} input channels (weight.shape[-3]={Cg} x groups={groups}), "
            f"but x has C={C}"
        )
    if H < 1 or W < 1:
        raise ValueError(f"x must have non-empty spatial dimensions, got shape {x_shape}")
    stride_ = pair(stride, "stride", minimum=1)
    dilation_ = pair(dilation, "dilation", minimum=1)
    dh, dw = dilation_
    pt, pb, pl, pr = padding_amounts(padding, kh, kw, dh, dw, stride_)
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    Hp, Wp = H + pt + pb, W + pl + pr
    if eh > Hp or ew > Wp:
        raise ValueError(
            f"kernel of extent ({eh}, {ew}) (kernel size with dilation) is larger than the padded "
            f"input ({Hp}, {Wp}); check weight, padding and dilation"
        )
    Ho = (Hp - eh) // stride_[0] + 1
    Wo = (Wp - ew) // stride_[1] + 1
    return ConvGeometry(
        N,
        C,
        H,
        W,
        K,
        kh,
        kw,
        *stride_,
        pt,
        pb,
        pl,
        pr,
        dh,
        dw,
        groups,
        Ho,
        Wo,
        batched,
        np.dtype(dtype),
    )


def conv_geometry(
    x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, weight_ndim=4
):
    """Validate a conv2d call and return (x4, weight, bias, geometry) with x4 batched.

    Arrays are returned C-contiguous in the computing dtype (views when they already are);
    nothing is written to them.  `weight_ndim=5` accepts a bank (E, K, C/groups, kh, kw) and
    validates its trailing four dimensions.
    """
    x = as_float_array(x, "x")
    weight = as_float_array(weight, "weight")
    arrays = [x, weight]
    if bias is not None:
        bias = as_float_array(bias, "bias")
        arrays.append(bias)
    dtype = result_float_dtype(*arrays)
    geom = geometry_from_shapes(
        x.shape, weight.shape, stride, padding, dilation, groups, dtype, weight_ndim=weight_ndim
    )
    if bias is not None:
        want = weight.shape[:-4] + (geom.K,)
        if bias.shape != want:
            raise ValueError(f"bias must have shape {want}, got {bias.shape}")
        bias = _contig(bias, dtype)
    x4 = _contig(x if geom.batched else x[None], dtype)
    weight = _contig(weight, dtype)
    return x4, weight, bias, geom


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


def unfold_geometry(N, C, H, W, kernel_size, stride, padding, dilation, batched, dtype, what):
    """Validate im2col/col2im arguments; `what` names the spatial size in errors."""
    kh, kw = pair(kernel_size, "kernel_size", minimum=1)
    sh, sw = pair(stride, "stride", minimum=1)
    if isinstance(padding, str):
        raise ValueError(
            f"padding must be an int or a pair of ints for im2col/col2im, got {padding!r}"
        )
    ph, pw = pair(padding, "padding", minimum=0)
    dh, dw = pair(dilation, "dilation", minimum=1)
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if eh > H + 2 * ph or ew > W + 2 * pw:
        raise ValueError(
            f"kernel of extent ({eh}, {ew}) is larger than the padded {what} "
            f"({H + 2 * ph}, {W + 2 * pw})"
        )
    Ho = (H + 2 * ph - eh) // sh + 1
    Wo = (W + 2 * pw - ew) // sw + 1
    return UnfoldGeometry(N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, batched, dtype)
