"""Numba twin of fastconv/_ext/packed.pyx: the packed, register-blocked convolution kernel.

Same names, signatures and workspace layout as the Cython/C kernel: weights packed once per call
into [K/MR][R][MR] panels, per-thread im2col panels of KC rows x NR pixels, tasks over (sample,
group, pixel stripe), output channels x pixels micro-tiles with the pixels in the vector lanes.
"""

import numba
import numpy as np
from numba import prange

from ._options import kernel, parallel_kernel

__all__ = ["conv_packed", "packed_supported", "packed_workspace_size"]

MR = 8  # output channels per micro-tile
NR = 48  # pixels per stripe
KC = 256  # rows of B per panel
SLACK = 16  # the C kernel aligns the workspace start to 64 bytes; same size here

# geometry vector positions (fastconv._geometry.GEO_FIELDS)
_N, _C, _H, _W, _K, _KH, _KW, _SH, _SW, _PT, _PL, _DH, _DW, _G, _HO, _WO = range(16)


def packed_supported(dtype_char):
    """True when the packed kernel is a fast path for this dtype (float32 and float64 here).

    Examples
    --------
    >>> from fastconv._jit.packed import packed_supported
    >>> packed_supported("f")
    True
    """
    return dtype_char in ("f", "d")


def _apack_size(geo):
    G, K = int(geo[_G]), int(geo[_K])
    R = int(geo[_C]) // G * int(geo[_KH]) * int(geo[_KW])
    mb = (K // G + MR - 1) // MR
    return G * mb * MR * R


def packed_workspace_size(geo, nthreads):
    """Elements of workspace `conv_packed` needs: packed weights plus one panel per thread.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._jit.packed import packed_workspace_size
    >>> geo = np.array([1, 3, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 8, 8], dtype=np.int64)
    >>> packed_workspace_size(geo, 2) > 0
    True
    """
    ap = (_apack_size(geo) + 15) // 16 * 16
    return SLACK + ap + max(1, int(nthreads)) * (KC * NR + 16)


@kernel
def _pack_a(w2, apack, blk, Kg, R, mb_n):
    grp = blk // mb_n
    mb = blk - grp * mb_n
    base = blk * MR * R
    for m in range(MR):
        k = mb * MR + m
        if k < Kg:
            for r in range(R):
                apack[base + r * MR + m] = w2[grp * Kg + k, r]
        else:
            for r in range(R):
                apack[base + r * MR + m] = 0.0


@kernel
def _pack_b(x3, geo, n, grp, p0, np_, rb, kc, panel, pbase):
    """im2col rows [rb, rb + kc) of pixels [p0, p0 + np_) into panel[pbase + r * NR + col]."""
    H, W, kh, kw = geo[_H], geo[_W], geo[_KH], geo[_KW]
    sh, sw, pt, pl = geo[_SH], geo[_SW], geo[_PT], geo[_PL]
    dh, dw, Wo = geo[_DH], geo[_DW], geo[_WO]
    Cg = geo[_C] // geo[_G]
    khw = kh * kw
    for r in range(kc):
        rr = rb + r
        cl = rr // khw
        ij = rr - cl * khw
        i = ij // kw
        j = ij - i * kw
        c = grp * Cg + cl
        row = pbase + r * NR
        d = 0
        p = p0
        while d < np_:
            oh = p // Wo
            ow = p - oh * Wo
            seg = min(Wo - ow, np_ - d)
            ih = oh * sh - pt + i * dh
            iw = ow * sw - pl + j * dw
            if ih < 0 or ih >= H:
                for t in range(seg):
                    panel[row + d + t] = 0.0
            else:
                rowoff = ih * W
                for t in range(seg):
                    q = iw + t * sw
                    if q >= 0 and q < W:
                        panel[row + d + t] = x3[n, c, rowoff + q]
                    else:
                        panel[row + d + t] = 0.0
            d += seg
            p += seg


@kernel
def _micro(apack, abase, b, bbase, ldb, kc, acc):
    """acc[MR, NR] = A[kc][MR] x B[kc][NR]: eight accumulator rows per B row, so each B row
    is loaded once for eight FMAs and LLVM vectorises the pixel loop."""
    acc[:, :] = 0.0
    for r in range(kc):
        ar = abase + r * MR
        br = bbase + r * ldb
        a0 = apack[ar]
        a1 = apack[ar + 1]
        a2 = apack[ar + 2]
        a3 = apack[ar + 3]
        a4 = apack[ar + 4]
        a5 = apack[ar + 5]
        a6 = apack[ar + 6]
        a7 = apack[ar + 7]
        for p in range(NR):
            bp = b[br + p]
            acc[0, p] += a0 * bp
            acc[1, p] += a1 * bp
            acc[2, p] += a2 * bp
            acc[3, p] += a3 * bp
            acc[4, p] += a4 * bp
            acc[5, p] += a5 * bp
            acc[6, p] += a6 * bp
            acc[7, p] += a7 * bp


@kernel
def _store(o3, acc, n, k0, mrows, p0, np_, rb, bias, hb):
    """Write a micro-tile: overwrite (+ bias) on the first K block, accumulate after."""
    for m in range(mrows):
        if rb == 0:
            add = bias[k0 + m] if hb else 0.0
            for p in range(np_):
                o3[n, k0 + m, p0 + p] = acc[m, p] + add
        else:
            for p in range(np_):
                o3[n, k0 + m, p0 + p] += acc[m, p]


@parallel_kernel
def conv_packed(x, w, bias, has_bias, geo, out, ws, nthreads):
    """out = conv2d(x, w) (+ bias) through packed weight panels and per-thread im2col panels.

    x (N, C, H, W), w (K, C/groups, kh, kw), out (N, K, Ho, Wo), all C-contiguous; geo the int64
    vector of fastconv._geometry.GEO_FIELDS; ws of `packed_workspace_size(geo, nthreads)` elements.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._geometry import conv_geometry
    >>> from fastconv._jit.packed import conv_packed, packed_workspace_size
    >>> x = np.ones((1, 2, 4, 4), np.float32); w = np.ones((3, 2, 3, 3), np.float32)
    >>> x4, w4, _, g = conv_geometry(x, w, None, 1, 1, 1, 1)
    >>> geo = g.as_array(); out = np.empty((1, 3, 4, 4), np.float32)
    >>> ws = np.empty(packed_workspace_size(geo, 1), np.float32)
    >>> conv_packed(x4, w4, np.zeros(0, np.float32), False, geo, out, ws, 1)
    >>> float(out[0, 0, 1, 1]), float(out[0, 0, 0, 0])
    (18.0, 8.0)
    """
    N, C, H, W, K = geo[_N], geo[_C], geo[_H], geo[_W], geo[_K]
    kh, kw, G, Ho, Wo = geo[_KH], geo[_KW], geo[_G], geo[_HO], geo[_WO]
    Cg = C // G
    Kg = K // G
    R = Cg * kh * kw
    P = Ho * Wo
    mb_n = (Kg + MR - 1) // MR
    nab = G * mb_n
    ns = (P + NR - 1) // NR
    ntasks = N * G * ns
    ap = (nab * MR * R + 15) // 16 * 16
    x3 = x.reshape(N, C, H * W)
    w2 = w.reshape(K, R)
    o3 = out.reshape(N, K, P)
    xf = x.reshape(N * C * H * W)
    hb = has_bias and bias.shape[0] > 0
    direct = (
        kh == 1
        and kw == 1
        and geo[_SH] == 1
        and geo[_SW] == 1
        and geo[_PT] == 0
        and geo[_PL] == 0
        and Ho == H
        and Wo == W
    )
    for blk in prange(nab):
        _pack_a(w2, ws, blk, Kg, R, mb_n)
    for task in prange(ntasks):
        tid = numba.get_thread_id()
        pbase = ap + tid * (KC * NR + 16)
        n = task // (G * ns)
        rest = task - n * G * ns
        grp = rest // ns
        st = rest - grp * ns
        p0 = st * NR
        np_ = min(NR, P - p0)
        acc = np.empty((MR, NR), dtype=out.dtype)
        for rb in range(0, R, KC):
            kc = min(KC, R - rb)
            if direct and np_ == NR:
                # 1x1 stride 1: the input planes already are B (kept apart from ws, which may
                # differ in read-only-ness and so in Numba type)
                bbase = (n * C + grp * Cg + rb) * P + p0
                for mb in range(mb_n):
                    _micro(ws, (grp * mb_n + mb) * MR * R + rb * MR, xf, bbase, P, kc, acc)
                    _store(
                        o3, acc, n, grp * Kg + mb * MR, min(MR, Kg - mb * MR), p0, np_, rb, bias, hb
                    )
            else:
                _pack_b(x3, geo, n, grp, p0, np_, rb, kc, ws, pbase)
                for mb in range(mb_n):
                    _micro(ws, (grp * mb_n + mb) * MR * R + rb * MR, ws, pbase, NR, kc, acc)
                    _store(
                        o3, acc, n, grp * Kg + mb * MR, min(MR, Kg - mb * MR), p0, np_, rb, bias, hb
                    )
