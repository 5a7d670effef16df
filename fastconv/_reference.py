"""Plain-NumPy slow twins of conv2d, im2col and col2im, computed in float64.

Independent of the package: they import nothing but NumPy, derive their own padding and output
sizes from torch's formulas, and are written for obviousness, not speed.  Tests compare the
compiled kernels against these, so a bug in `_geometry` cannot hide in both.

conv2d is direct summation over the taps inside the image: padded taps are skipped, not multiplied
by zero, so a non-finite weight next to the border does not make a NaN there.  That is fastconv's
contract for every algorithm (measured with torch 2.13: where torch's oneDNN kernels and its float32
depthwise kernel put NaN and inf).  torch's own fallback paths (float64, few channels) and
scipy.signal's boundary "fill" instead multiply the zero padding (inf * 0 = NaN);
``skip_padding=False`` computes that convention.  The two differ only where a weight is NaN or inf.
"""

from __future__ import annotations

import numpy as np

__all__ = ["col2im", "conv2d", "conv_output_size", "im2col"]


def _pair(v, name):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v), int(v)
    if isinstance(v, (tuple, list)) and len(v) == 1:
        return _pair(v[0], name)
    if isinstance(v, (tuple, list)) and len(v) == 2:
        return int(v[0]), int(v[1])
    raise TypeError(f"{name} must be an int or a pair, got {v!r}")


def _positive(v, name):
    if min(v) < 1:
        raise ValueError(f"{name} must be positive, got {v}")
    return v


def conv_output_size(n, k, stride, pad_lo, pad_hi, dilation):
    """torch's output size along one axis: (n + pad_lo + pad_hi - d*(k - 1) - 1) // s + 1.

    Raises ValueError when it is below 1 (the dilated kernel is larger than the padded input).
    """
    size = (n + pad_lo + pad_hi - dilation * (k - 1) - 1) // stride + 1
    if size < 1 or n < 1:
        raise ValueError(
            f"kernel of extent {dilation * (k - 1) + 1} is larger than the padded input "
            f"{n + pad_lo + pad_hi}"
        )
    return size


def conv_paddings(padding, kernel_hw, stride, dilation):
    """((top, bottom), (left, right)) from torch's padding argument, computed from its rules:
    "valid" is none; "same" pads d*(k - 1) in total, the odd extra at the bottom/right, and
    exists only for stride 1; an int or a pair pads both sides alike."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if tuple(stride) != (1, 1):
                raise ValueError("padding='same' needs stride 1")
            out = []
            for k, d in zip(kernel_hw, dilation, strict=True):
                total = d * (k - 1)
                out.append((total // 2, total - total // 2))
            return tuple(out)
        raise ValueError(f"unknown padding {padding!r}")
    ph, pw = _pair(padding, "padding")
    if min(ph, pw) < 0:
        raise ValueError(f"padding must be non-negative, got {padding!r}")
    return (ph, ph), (pw, pw)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, skip_padding=True):
    """Direct float64 convolution (cross-correlation, torch's convention); returns float64.

    x (N, C, H, W) or (C, H, W); weight (K, C/groups, kh, kw); bias (K,) or None.  Sums
    weight * x over the taps inside the image (fastconv's contract, torch's oneDNN kernels), or
    with ``skip_padding=False`` over every tap of the zero-padded input (torch's fallback paths,
    scipy.signal), in the order channel, row tap, column tap.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    batched = x.ndim == 4
    if x.ndim not in (3, 4) or w.ndim != 4:
        raise ValueError(f"x must be 3-D or 4-D and weight 4-D, got {x.shape} and {w.shape}")
    x4 = x if batched else x[None]
    N, C, H, W = x4.shape
    K, Cg, kh, kw = w.shape
    if groups < 1 or C % groups or K % groups or Cg * groups != C or min(K, kh, kw) < 1:
        raise ValueError(f"groups={groups} does not fit x {x.shape} and weight {w.shape}")
    sh, sw = _positive(_pair(stride, "stride"), "stride")
    dh, dw = _positive(_pair(dilation, "dilation"), "dilation")
    (pt, pb), (pl, pr) = conv_paddings(padding, (kh, kw), (sh, sw), (dh, dw))
    Ho = conv_output_size(H, kh, sh, pt, pb, dh)
    Wo = conv_output_size(W, kw, sw, pl, pr, dw)
    Kg = K // groups
    out = np.zeros((N, K, Ho, Wo))
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN, as in torch
        if skip_padding:
            _accumulate(out, x4, w, bias, Kg, Cg, (sh, sw), (pt, pl), (dh, dw), (H, W))
        else:
            xp = np.zeros((N, C, H + pt + pb, W + pl + pr))
            xp[:, :, pt : pt + H, pl : pl + W] = x4
            _accumulate(out, xp, w, bias, Kg, Cg, (sh, sw), (0, 0), (dh, dw), xp.shape[2:])
    return out if batched else out[0]


def _span(i, d, p, s, n, no):
    """Outputs o in [lo, hi) are those whose input index o*s + off (off = i*d - p) is in
    [0, n): lo = ceil(-off / s), hi = ceil((n - off) / s), clipped to [0, no)."""
    off = i * d - p
    lo = min(no, max(0, -(off // s)))
    hi = min(no, max(lo, -((off - n) // s)))
    return lo, hi, off


def _accumulate(out, x4, w, bias, Kg, Cg, stride, pad, dilation, hw):
    (sh, sw), (pt, pl), (dh, dw), (H, W) = stride, pad, dilation, hw
    K, _, kh, kw = w.shape
    Ho, Wo = out.shape[2:]
    for k in range(K):
        grp = k // Kg
        for c in range(Cg):
            src = x4[:, grp * Cg + c]
            for i in range(kh):
                r0, r1, roff = _span(i, dh, pt, sh, H, Ho)
                if r0 >= r1:
                    continue
                for j in range(kw):
                    c0, c1, coff = _span(j, dw, pl, sw, W, Wo)
                    if c0 >= c1:
                        continue
                    rows = slice(r0 * sh + roff, (r1 - 1) * sh + roff + 1, sh)
                    cols = slice(c0 * sw + coff, (c1 - 1) * sw + coff + 1, sw)
                    out[:, k, r0:r1, c0:c1] += w[k, c, i, j] * src[:, rows, cols]
        if bias is not None:
            out[:, k] += float(np.asarray(bias, dtype=np.float64)[k])


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """torch.nn.functional.unfold in float64: (N, C*kh*kw, L), rows ordered (c, i, j).

    Padded positions are zeros (copied, never multiplied)."""
    x = np.asarray(x, dtype=np.float64)
    batched = x.ndim == 4
    x4 = x if batched else x[None]
    kh, kw = _positive(_pair(kernel_size, "kernel_size"), "kernel_size")
    sh, sw = _positive(_pair(stride, "stride"), "stride")
    (ph, _), (pw, _) = conv_paddings(padding, (kh, kw), (sh, sw), (1, 1))
    dh, dw = _positive(_pair(dilation, "dilation"), "dilation")
    N, C, H, W = x4.shape
    Ho = conv_output_size(H, kh, sh, ph, ph, dh)
    Wo = conv_output_size(W, kw, sw, pw, pw, dw)
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    xp[:, :, ph : ph + H, pw : pw + W] = x4
    cols = np.empty((N, C, kh, kw, Ho, Wo))
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[
                :,
                :,
                i * dh : i * dh + sh * (Ho - 1) + 1 : sh,
                j * dw : j * dw + sw * (Wo - 1) + 1 : sw,
            ]
    cols = cols.reshape(N, C * kh * kw, Ho * Wo)
    return cols if batched else cols[0]


def col2im(cols, output_size, kernel_size, stride=1, padding=0, dilation=1):
    """torch.nn.functional.fold in float64: sums every column back into (N, C, H, W)."""
    cols = np.asarray(cols, dtype=np.float64)
    batched = cols.ndim == 3
    c3 = cols if batched else cols[None]
    H, W = _positive(_pair(output_size, "output_size"), "output_size")
    kh, kw = _positive(_pair(kernel_size, "kernel_size"), "kernel_size")
    sh, sw = _positive(_pair(stride, "stride"), "stride")
    (ph, _), (pw, _) = conv_paddings(padding, (kh, kw), (sh, sw), (1, 1))
    dh, dw = _positive(_pair(dilation, "dilation"), "dilation")
    N, CKK, L = c3.shape
    C = CKK // (kh * kw)
    Ho = conv_output_size(H, kh, sh, ph, ph, dh)
    Wo = conv_output_size(W, kw, sw, pw, pw, dw)
    if C * kh * kw != CKK or Ho * Wo != L:
        raise ValueError(f"cols of shape {cols.shape} do not fit the given sizes")
    v = c3.reshape(N, C, kh, kw, Ho, Wo)
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))
    for i in range(kh):
        for j in range(kw):
            xp[
                :,
                :,
                i * dh : i * dh + sh * (Ho - 1) + 1 : sh,
                j * dw : j * dw + sw * (Wo - 1) + 1 : sw,
            ] += v[:, :, i, j]
    out = xp[:, :, ph : ph + H, pw : pw + W]
    return out if batched else out[0]
