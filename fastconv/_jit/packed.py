"""Numba twin of fastconv/_ext/packed.pyx: the packed, register-blocked convolution kernel.

Same names, signatures and workspace layout as the Cython/C kernel: weights packed once per call
into [K/MR][R][MR] panels, per-thread im2col panels of KC rows x NR pixels, tasks over (sample,
group, pixel stripe), output channels x pixels micro-tiles with the pixels in the vector lanes.
"""

import numba
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


def packed_prepack_size(geo):
    """Elements of weight panels this backend keeps for fixed weights: 0, its `conv_packed`
    packs them on every call (the Cython twin keeps them; see fastconv._plan.keep_packed).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._jit.packed import packed_prepack_size
    >>> packed_prepack_size(np.zeros(16, dtype=np.int64))
    0
    """
    return 0


def packed_klanes(geo):
    """False: this backend has no K-lanes mode (twin of the Cython function)."""
    return False


def packed_implicit(geo):
    """The Numba twin has no implicit mode (fastconv/_ext/packed.pyx's packed_implicit)."""
    return False


def packed_prepack(w, geo, apack):
    """Never called: packed_prepack_size is 0 here (twin of the Cython function)."""
    raise NotImplementedError("the Numba packed kernel packs its weight panels on every call")


def packed_prepack_phases(wt, taps, tstart, apack, nthreads):
    """Never called: packed_prepack_size is 0 here (twin of the Cython function)."""
    raise NotImplementedError("the Numba packed kernel packs its weight panels on every call")


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
def _pack_a(w2, apack, grp, Kg, K4, R):
    """Weights of one group as K4 (Kg rounded up to 4) rows of R, zero rows past Kg.

    Returns the sum of v - v over the weights: 0 when all are finite, NaN otherwise."""
    base = grp * K4 * R
    nf = 0.0
    for k in range(K4):
        if k < Kg:
            for r in range(R):
                v = w2[grp * Kg + k, r]
                apack[base + k * R + r] = v
                nf += v - v
        else:
            for r in range(R):
                apack[base + k * R + r] = 0.0
    return nf


@kernel
def _has_pad(geo):
    """Some output pixel has a tap in the padding."""
    return (
        geo[_PT] > 0
        or geo[_PL] > 0
        or (geo[_HO] - 1) * geo[_SH] + (geo[_KH] - 1) * geo[_DH] - geo[_PT] >= geo[_H]
        or (geo[_WO] - 1) * geo[_SW] + (geo[_KW] - 1) * geo[_DW] - geo[_PL] >= geo[_W]
    )


@kernel
def _fix_border(x, w2, bias, hb, geo, out):
    """Border pixels of the output channels whose weights are not all finite, by direct summation
    over the in-image taps: torch's (oneDNN's) direct convolution skips padding taps, so an inf
    weight there adds nothing, where the GEMM over a zero-padded im2col adds inf * 0 = NaN."""
    N, C, H, W, K = geo[_N], geo[_C], geo[_H], geo[_W], geo[_K]
    kh, kw, sh, sw, pt, pl = geo[_KH], geo[_KW], geo[_SH], geo[_SW], geo[_PT], geo[_PL]
    dh, dw, G, Ho, Wo = geo[_DH], geo[_DW], geo[_G], geo[_HO], geo[_WO]
    Cg, Kg, R = C // G, K // G, w2.shape[1]
    for k in range(K):
        nf = 0.0
        for r in range(R):
            nf += w2[k, r] - w2[k, r]
        if nf == 0.0:
            continue
        grp = k // Kg
        for n in range(N):
            for oh in range(Ho):
                ih0 = oh * sh - pt
                rin = ih0 >= 0 and ih0 + (kh - 1) * dh < H
                for ow in range(Wo):
                    iw0 = ow * sw - pl
                    if rin and iw0 >= 0 and iw0 + (kw - 1) * dw < W:
                        continue
                    acc = out.dtype.type(0)
                    for c in range(Cg):
                        for i in range(kh):
                            ih = ih0 + i * dh
                            if ih < 0 or ih >= H:
                                continue
                            for j in range(kw):
                                iw = iw0 + j * dw
                                if iw < 0 or iw >= W:
                                    continue
                                acc += w2[k, (c * kh + i) * kw + j] * x[n, grp * Cg + c, ih, iw]
                    out[n, k, oh, ow] = acc + (bias[k] if hb else 0.0)


@kernel
def _pack_bt(x3, geo, n, grp, p0, np_, rb, kc, panel, pbase):
    """Transposed im2col: pixel t of [p0, p0 + np_) gets rows [rb, rb + kc) at
    panel[pbase + t * KC + r], so the reduction over r reads contiguous memory."""
    H, W, kh, kw = geo[_H], geo[_W], geo[_KH], geo[_KW]
    sh, sw, pt, pl = geo[_SH], geo[_SW], geo[_PT], geo[_PL]
    dh, dw, Wo = geo[_DH], geo[_DW], geo[_WO]
    Cg = geo[_C] // geo[_G]
    khw = kh * kw
    cl0 = rb // khw
    i0 = (rb - cl0 * khw) // kw
    j0 = rb - cl0 * khw - i0 * kw
    for t in range(np_):
        p = p0 + t
        oh = p // Wo
        ow = p - oh * Wo
        dst = pbase + t * KC
        ih0 = oh * sh - pt
        iw0 = ow * sw - pl
        # walk (channel, kernel row, kernel column) incrementally: no divisions per element
        cl = cl0
        i = i0
        j = j0
        for r in range(kc):
            ih = ih0 + i * dh
            iw = iw0 + j * dw
            if ih >= 0 and ih < H and iw >= 0 and iw < W:
                panel[dst + r] = x3[n, grp * Cg + cl, ih * W + iw]
            else:
                panel[dst + r] = 0.0
            j += 1
            if j == kw:
                j = 0
                i += 1
                if i == kh:
                    i = 0
                    cl += 1


@kernel
def _put(o3, n, k, p, v, first, bias, hb, kend, pend):
    if k < kend and p < pend:
        if first:
            o3[n, k, p] = v + (bias[k] if hb else 0.0)
        else:
            o3[n, k, p] += v


@kernel(inline=True)  # per 4x4 tile: a call would cost as much as its FMAs
def _tile4x4(ws, a0, lda, b0, kc, o3, n, k0, p0, first, bias, hb, kend, pend):
    """4 channels x 4 pixels: sixteen dot products over r in one loop, which LLVM vectorises
    along r with the sixteen sums held in vector registers (8 loads per 16 FMAs)."""
    z = ws.dtype.type(0)  # float64 sums (ws[0] * 0 types so) would halve the float32 vectors
    s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = z
    s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = z
    # slices indexed by the loop counter: no negative-index wraparound select in the loop
    va0 = ws[a0 : a0 + kc]
    va1 = ws[a0 + lda : a0 + lda + kc]
    va2 = ws[a0 + 2 * lda : a0 + 2 * lda + kc]
    va3 = ws[a0 + 3 * lda : a0 + 3 * lda + kc]
    vb0 = ws[b0 : b0 + kc]
    vb1 = ws[b0 + KC : b0 + KC + kc]
    vb2 = ws[b0 + 2 * KC : b0 + 2 * KC + kc]
    vb3 = ws[b0 + 3 * KC : b0 + 3 * KC + kc]
    for r in range(kc):
        x0 = vb0[r]
        x1 = vb1[r]
        x2 = vb2[r]
        x3 = vb3[r]
        y0 = va0[r]
        y1 = va1[r]
        y2 = va2[r]
        y3 = va3[r]
        s00 += y0 * x0
        s01 += y0 * x1
        s02 += y0 * x2
        s03 += y0 * x3
        s10 += y1 * x0
        s11 += y1 * x1
        s12 += y1 * x2
        s13 += y1 * x3
        s20 += y2 * x0
        s21 += y2 * x1
        s22 += y2 * x2
        s23 += y2 * x3
        s30 += y3 * x0
        s31 += y3 * x1
        s32 += y3 * x2
        s33 += y3 * x3
    _put(o3, n, k0, p0, s00, first, bias, hb, kend, pend)
    _put(o3, n, k0, p0 + 1, s01, first, bias, hb, kend, pend)
    _put(o3, n, k0, p0 + 2, s02, first, bias, hb, kend, pend)
    _put(o3, n, k0, p0 + 3, s03, first, bias, hb, kend, pend)
    _put(o3, n, k0 + 1, p0, s10, first, bias, hb, kend, pend)
    _put(o3, n, k0 + 1, p0 + 1, s11, first, bias, hb, kend, pend)
    _put(o3, n, k0 + 1, p0 + 2, s12, first, bias, hb, kend, pend)
    _put(o3, n, k0 + 1, p0 + 3, s13, first, bias, hb, kend, pend)
    _put(o3, n, k0 + 2, p0, s20, first, bias, hb, kend, pend)
    _put(o3, n, k0 + 2, p0 + 1, s21, first, bias, hb, kend, pend)
    _put(o3, n, k0 + 2, p0 + 2, s22, first, bias, hb, kend, pend)
    _put(o3, n, k0 + 2, p0 + 3, s23, first, bias, hb, kend, pend)
    _put(o3, n, k0 + 3, p0, s30, first, bias, hb, kend, pend)
    _put(o3, n, k0 + 3, p0 + 1, s31, first, bias, hb, kend, pend)
    _put(o3, n, k0 + 3, p0 + 2, s32, first, bias, hb, kend, pend)
    _put(o3, n, k0 + 3, p0 + 3, s33, first, bias, hb, kend, pend)


def packed_fuses_epilogue(geo, residual):
    """False: this twin never applies conv2d's epilogue itself (the caller's pass does).

    Examples
    --------
    >>> import numpy as np
    >>> packed_fuses_epilogue(np.zeros(20, np.int64), False)
    False
    """
    return False


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
    K4 = (Kg + 3) // 4 * 4
    R = Cg * kh * kw
    P = Ho * Wo
    mb_n = (Kg + MR - 1) // MR
    ns = (P + NR - 1) // NR
    ntasks = N * G * ns
    ap = (G * mb_n * MR * R + 15) // 16 * 16  # same layout as the C kernel; K4 * R fits in it
    x3 = x.reshape(N, C, H * W)
    w2 = w.reshape(K, R)
    o3 = out.reshape(N, K, P)
    hb = has_bias and bias.shape[0] > 0
    nf = 0.0
    for grp in prange(G):
        nf += _pack_a(w2, ws, grp, Kg, K4, R)
    for task in prange(ntasks):
        tid = numba.get_thread_id()
        pbase = ap + tid * (KC * NR + 16)
        n = task // (G * ns)
        rest = task - n * G * ns
        grp = rest // ns
        st = rest - grp * ns
        p0 = st * NR
        np_ = min(NR, P - p0)
        for rb in range(0, R, KC):
            kc = min(KC, R - rb)
            _pack_bt(x3, geo, n, grp, p0, np_, rb, kc, ws, pbase)
            for m in range(0, K4, 4):
                abase = (grp * K4 + m) * R + rb
                for t in range(0, np_, 4):
                    _tile4x4(
                        ws,
                        abase,
                        R,
                        pbase + t * KC,
                        kc,
                        o3,
                        n,
                        grp * Kg + m,
                        p0 + t,
                        rb == 0,
                        bias,
                        hb,
                        (grp + 1) * Kg,
                        p0 + np_,
                    )
    if nf != 0.0 and _has_pad(geo):
        _fix_border(x, w2, bias, hb, geo, out)
