"""Plain-NumPy slow twins of the public functions, computed in float64.

Tests compare the compiled kernels against these; they share no code with the kernels beyond
`_geometry`, and they are written for obviousness, not speed.
"""

from __future__ import annotations

import numpy as np

from ._geometry import conv_geometry, pair

__all__ = ["col2im", "conv2d", "im2col"]


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Direct float64 convolution (cross-correlation, torch's convention); returns float64."""
    x4, w, b, g = conv_geometry(x, weight, bias, stride, padding, dilation, groups)
    x4 = x4.astype(np.float64)
    w = w.astype(np.float64)
    xp = np.pad(x4, ((0, 0), (0, 0), (g.pt, g.pb), (g.pl, g.pr)))
    out = np.zeros((g.N, g.K, g.Ho, g.Wo))
    for k in range(g.K):
        grp = k // g.Kg
        for c in range(g.Cg):
            src = xp[:, grp * g.Cg + c]
            for i in range(g.kh):
                for j in range(g.kw):
                    r0, c0 = i * g.dh, j * g.dw
                    win = src[
                        :,
                        r0 : r0 + g.sh * (g.Ho - 1) + 1 : g.sh,
                        c0 : c0 + g.sw * (g.Wo - 1) + 1 : g.sw,
                    ]
                    out[:, k] += w[k, c, i, j] * win
        if b is not None:
            out[:, k] += float(b[k])
    return out if g.batched else out[0]


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """torch.nn.functional.unfold in float64: (N, C*kh*kw, L), rows ordered (c, i, j)."""
    x = np.asarray(x, dtype=np.float64)
    batched = x.ndim == 4
    x4 = x if batched else x[None]
    kh, kw = pair(kernel_size, "kernel_size", minimum=1)
    sh, sw = pair(stride, "stride", minimum=1)
    ph, pw = pair(padding, "padding", minimum=0)
    dh, dw = pair(dilation, "dilation", minimum=1)
    N, C, H, W = x4.shape
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    xp = np.pad(x4, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
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
    H, W = pair(output_size, "output_size", minimum=1)
    kh, kw = pair(kernel_size, "kernel_size", minimum=1)
    sh, sw = pair(stride, "stride", minimum=1)
    ph, pw = pair(padding, "padding", minimum=0)
    dh, dw = pair(dilation, "dilation", minimum=1)
    N, CKK, L = c3.shape
    C = CKK // (kh * kw)
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
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
