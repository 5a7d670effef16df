"""Numba kernels for im2col, col2im, tiled im2col+GEMM convolution and direct depthwise convolution.

Twins of fastconv/_ext/conv.pyx (same names and signatures); no validation, no allocation beyond
what Numba's np.dot needs for nothing (it writes into the caller's workspace).
"""

import numpy as np
from numba import prange

from ._options import kernel, parallel_kernel

# positions in the geometry vector (fastconv._geometry.GEO_FIELDS)
G_N, G_C, G_H, G_W, G_K, G_KH, G_KW, G_SH, G_SW, G_PT, G_PL, G_DH, G_DW, G_G, G_HO, G_WO = range(16)


@kernel
def _wo_range(off, sw, W, Wo):
    # output columns whose input column wo*sw + off lies in [0, W)
    lo = 0 if off >= 0 else (-off + sw - 1) // sw
    hw = 0 if W - 1 - off < 0 else (W - 1 - off) // sw + 1
    return lo, min(hw, Wo)


@kernel
def _pack(xs, c0, Cn, g, p0, T, dst, base, ld):
    """im2col of output pixels [p0, p0+T) of channels c0..c0+Cn of one sample (xs: (C, H, W)) into
    the flat dst from `base`, rows ordered (c, i, j) with stride ld."""
    H, W, kh, kw = g[G_H], g[G_W], g[G_KH], g[G_KW]
    sh, sw, pt, pl, dh, dw, Wo = g[G_SH], g[G_SW], g[G_PT], g[G_PL], g[G_DH], g[G_DW], g[G_WO]
    for c in range(Cn):
        for i in range(kh):
            for j in range(kw):
                row = base + ((c * kh + i) * kw + j) * ld
                off = j * dw - pl
                lo0, hw0 = _wo_range(off, sw, W, Wo)
                t = 0
                p = p0
                while t < T:
                    ho = p // Wo
                    wo = p - ho * Wo
                    seg = min(Wo - wo, T - t)
                    hi = ho * sh - pt + i * dh
                    if hi < 0 or hi >= H:
                        dst[row + t : row + t + seg] = 0
                    else:
                        lo = min(max(lo0, wo), wo + seg)
                        hw = max(min(hw0, wo + seg), lo)
                        dst[row + t : row + t + lo - wo] = 0
                        for q in range(lo, hw):
                            dst[row + t + q - wo] = xs[c0 + c, hi, q * sw + off]
                        dst[row + t + hw - wo : row + t + seg] = 0
                    t += seg
                    p += seg


@kernel
def _all_finite(v):
    # v (2-D) - v is 0 for finite v and NaN for NaN or +-inf; OR-ing the comparisons (integers,
    # free to vectorise) rather than summing floats keeps the check a few vectors per task
    bad = 0
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            bad |= (v[i, j] - v[i, j]) != 0
    return bad == 0


@kernel
def _padded(g):
    # some tap of some output falls on the zero padding (top, left, bottom or right)
    pb = (g[G_HO] - 1) * g[G_SH] + g[G_DH] * (g[G_KH] - 1) + 1 - g[G_PT] - g[G_H]
    pr = (g[G_WO] - 1) * g[G_SW] + g[G_DW] * (g[G_KW] - 1) + 1 - g[G_PL] - g[G_W]
    return g[G_PT] > 0 or g[G_PL] > 0 or pb > 0 or pr > 0


@kernel
def _direct_out(xs, c0, Cg, g, wk, b, o, p0, T):
    """o[t] = b + sum of wk[(c*kh + i)*kw + j] * xs[c0 + c] over the taps inside the image, for
    output pixels p0 + t (t < T) of one output channel: direct summation over in-image taps
    (torch's result), which packing zeros for the padding turns into NaN when a weight is inf."""
    H, W, kh, kw = g[G_H], g[G_W], g[G_KH], g[G_KW]
    sh, sw, pt, pl, dh, dw, Wo = g[G_SH], g[G_SW], g[G_PT], g[G_PL], g[G_DH], g[G_DW], g[G_WO]
    o[:T] = b
    t = 0
    p = p0
    while t < T:
        ho = p // Wo
        wo = p - ho * Wo
        seg = min(Wo - wo, T - t)
        for c in range(Cg):
            for i in range(kh):
                hi = ho * sh - pt + i * dh
                if hi < 0 or hi >= H:
                    continue
                for j in range(kw):
                    wv = wk[(c * kh + i) * kw + j]
                    off = j * dw - pl
                    lo, hw = _wo_range(off, sw, W, Wo)
                    lo = max(lo, wo)
                    hw = min(hw, wo + seg)
                    for q in range(lo, hw):
                        o[t + q - wo] += wv * xs[c0 + c, hi, q * sw + off]
        t += seg
        p += seg


@parallel_kernel
def im2col(x, geo, cols, nthreads):
    """cols[n] = unfold(x[n]); parallel over (sample, channel)."""
    N, C, kk, L = geo[G_N], geo[G_C], geo[G_KH] * geo[G_KW], geo[G_HO] * geo[G_WO]
    for task in prange(N * C):
        n = task // C
        c = task - n * C
        _pack(x[n], c, 1, geo, 0, L, cols[n].reshape(-1), c * kk * L, L)


@parallel_kernel
def col2im(cols, geo, out, nthreads):
    """out = fold(cols), overlaps summed; parallel over (sample, channel) planes, so no races."""
    N, C, H, W, kh, kw = geo[G_N], geo[G_C], geo[G_H], geo[G_W], geo[G_KH], geo[G_KW]
    sh, sw, pt, pl, dh, dw = geo[G_SH], geo[G_SW], geo[G_PT], geo[G_PL], geo[G_DH], geo[G_DW]
    Ho, Wo = geo[G_HO], geo[G_WO]
    for task in prange(N * C):
        n = task // C
        c = task - n * C
        o = out[n, c]
        o[:, :] = 0
        for i in range(kh):
            for j in range(kw):
                src = cols[n, (c * kh + i) * kw + j]
                off = j * dw - pl
                lo, hw = _wo_range(off, sw, W, Wo)
                for ho in range(Ho):
                    hi = ho * sh - pt + i * dh
                    if hi < 0 or hi >= H:
                        continue
                    for wo in range(lo, hw):
                        o[hi, wo * sw + off] += src[ho * Wo + wo]


@parallel_kernel
def conv_gemm(x, w, bias, has_bias, geo, out, ws, tile, nthreads):
    """Tiled im2col + GEMM into out (N, K, Ho*Wo); see the Cython twin for the layout.

    Numba's np.dot cannot write with a leading dimension, so each thread multiplies into its own
    scratch rows of ws (after the packed tile) and copies them out with the bias.
    """
    N, C, K, G = geo[G_N], geo[G_C], geo[G_K], geo[G_G]
    P = geo[G_HO] * geo[G_WO]
    Cg, Kg = C // G, K // G
    R = Cg * geo[G_KH] * geo[G_KW]
    Nw, Nb = w.shape[0], bias.shape[0]
    ntiles = (P + tile - 1) // tile
    ntasks = N * G * ntiles
    padded = _padded(geo)
    for tid in prange(nthreads):
        buf = ws[tid]
        for task in range(tid, ntasks, nthreads):
            n = task // (G * ntiles)
            grp = (task // ntiles) % G
            p0 = (task % ntiles) * tile
            T = min(tile, P - p0)
            wb = w[n if Nw > 1 else 0, grp * Kg : (grp + 1) * Kg]
            if padded and not _all_finite(wb):
                # the packed tile's padding zeros would meet a non-finite weight: direct summation
                for k in range(Kg):
                    b = bias[n if Nb > 1 else 0, grp * Kg + k] if has_bias else 0.0
                    _direct_out(x[n], grp * Cg, Cg, geo, wb[k], b, out[n, grp * Kg + k, p0:], p0, T)
                continue
            _pack(x[n], grp * Cg, Cg, geo, p0, T, buf, 0, T)
            col = buf[: R * T].reshape((R, T))
            res = buf[R * tile : R * tile + Kg * T].reshape((Kg, T))
            np.dot(wb, col, res)
            for k in range(Kg):
                b = bias[n if Nb > 1 else 0, grp * Kg + k] if has_bias else 0.0
                out[n, grp * Kg + k, p0 : p0 + T] = res[k] + b


@parallel_kernel
def conv_depthwise_planes(x, w, bias, has_bias, geo, out, ws, act, nthreads):
    """Direct depthwise convolution (channel multiplier K/C); one output plane per task.

    Accumulates whole output rows tap by tap, which LLVM vectorises; ws (the Cython twin's padded
    planes) is accepted for the common signature and not needed here.  act 1 (relu), 2 (relu6) or
    3 (silu) is applied to each row as it is finished (0: none; NaN stays NaN).
    """
    N, C, H, W, K = geo[G_N], geo[G_C], geo[G_H], geo[G_W], geo[G_K]
    kh, kw, sh, sw = geo[G_KH], geo[G_KW], geo[G_SH], geo[G_SW]
    pt, pl, dh, dw = geo[G_PT], geo[G_PL], geo[G_DH], geo[G_DW]
    Ho, Wo = geo[G_HO], geo[G_WO]
    m = K // C
    Nw, Nb = w.shape[0], bias.shape[0]
    for task in prange(N * K):
        n = task // K
        k = task - n * K
        wk = w[n if Nw > 1 else 0, k]
        b = bias[n if Nb > 1 else 0, k] if has_bias else 0.0
        xc = x[n, k // m]
        for ho in range(Ho):
            orow = out[n, k, ho]
            orow[:] = b
            for i in range(kh):
                hi = ho * sh - pt + i * dh
                if hi < 0 or hi >= H:
                    continue
                xr = xc[hi]
                for j in range(kw):
                    wv = wk[i * kw + j]
                    off = j * dw - pl
                    lo, hw = _wo_range(off, sw, W, Wo)
                    for q in range(lo, hw):
                        orow[q] += wv * xr[q * sw + off]
            if act == 3:
                for q in range(Wo):
                    orow[q] = orow[q] / (1.0 + np.exp(-orow[q]))
            elif act:
                for q in range(Wo):
                    v = orow[q]
                    v = 0.0 if v < 0 else v
                    if act == 2:
                        v = 6.0 if v > 6 else v
                    orow[q] = v


#: No 16-lane kernel here (depthwise16_supported is False); the name runs the plane kernel, so a
#: forced call still gives the right answer.
conv_depthwise16 = conv_depthwise_planes


def depthwise16_supported(dtype_char):
    """False: the Numba backend has no 16-channels-in-lanes depthwise kernel."""
    return False


def depthwise16_workspace(geo):
    """Elements of workspace one thread of this backend's conv_depthwise16 needs."""
    return 1


def depthwise_plane_fast(geo, dtype_char):
    """False: this backend has no AVX-512 plane blocks (its rows are vectorised by LLVM)."""
    return False


def depthwise_planes_workspace(geo):
    """Elements of workspace one thread of this backend's conv_depthwise_planes needs."""
    return 1


def grouped_supported(dtype_char):
    """The Numba twin runs any float dtype (plain loops; the planner prefers Cython's AVX-512 one)."""
    return True


@parallel_kernel
def conv_grouped(x, wt, bias, has_bias, geo, out, ws, nthreads):
    """Direct grouped convolution at stride 1; wt is (Nw, K/8, Cg*kh*kw, 8) as in the Cython twin.
    Accumulates whole output rows tap by tap, which LLVM vectorises; ws is not needed here."""
    N, C, H, W, K, G = geo[G_N], geo[G_C], geo[G_H], geo[G_W], geo[G_K], geo[G_G]
    kh, kw, pt, pl, dh, dw = geo[G_KH], geo[G_KW], geo[G_PT], geo[G_PL], geo[G_DH], geo[G_DW]
    Ho, Wo = geo[G_HO], geo[G_WO]
    Cg, Kg = C // G, K // G
    Nw, Nb = wt.shape[0], bias.shape[0]
    for task in prange(N * K):
        n = task // K
        k = task - n * K
        grp = k // Kg
        wk = wt[n if Nw > 1 else 0, k // 8, :, k % 8]
        b = bias[n if Nb > 1 else 0, k] if has_bias else 0.0
        o = out[n, k]
        o[:, :] = b
        for c in range(Cg):
            xc = x[n, grp * Cg + c]
            for i in range(kh):
                for j in range(kw):
                    wv = wk[(c * kh + i) * kw + j]
                    off = j * dw - pl
                    lo, hw = _wo_range(off, 1, W, Wo)
                    for ho in range(Ho):
                        hi = ho - pt + i * dh
                        if hi < 0 or hi >= H:
                            continue
                        for q in range(lo, hw):
                            o[ho, q] += wv * xc[hi, q + off]


def grouped_workspace(geo):
    """Elements of workspace one thread of this backend's conv_grouped needs."""
    return 1


def conv_gemm_workspace(R, Kg, tile):
    """Elements of workspace one thread of this backend's conv_gemm needs."""
    return R * tile + Kg * tile


@parallel_kernel
def phase_split(x, xs, dh, dw, nthreads):
    """xs[(a*dw + b)*N + n, c, i, j] = x[n, c, a + dh*i, b + dw*j] (twin of the Cython kernel)."""
    N, C = x.shape[0], x.shape[1]
    Ha, Wa = x.shape[2] // dh, x.shape[3] // dw
    for p in prange(N * C):
        n = p // C
        c = p - n * C
        for y in range(Ha * dh):
            a = y % dh
            i = y // dh
            for b in range(dw):
                s = (a * dw + b) * N + n
                for j in range(Wa):
                    xs[s, c, i, j] = x[n, c, y, b + dw * j]


@parallel_kernel
def phase_merge(ys, out, dh, dw, nthreads):
    """out[n, k, r + dh*i, c + dw*j] = ys[(r*dw + c)*N + n, k, i, j] (twin of the Cython kernel)."""
    N, K = out.shape[0], out.shape[1]
    Hr, Wr = out.shape[2] // dh, out.shape[3] // dw
    for p in prange(N * K):
        n = p // K
        k = p - n * K
        for y in range(Hr * dh):
            r = y % dh
            i = y // dh
            for c in range(dw):
                s = (r * dw + c) * N + n
                for j in range(Wr):
                    out[n, k, y, c + dw * j] = ys[s, k, i, j]


_EPI_CHUNK = 16384


@parallel_kernel
def conv_epilogue(out, residual, has_residual, act, nthreads):
    """out = act(out + residual) in place: act 0 none, 1 relu, 2 relu6, 3 silu (twin of the
    Cython kernel; NaN stays NaN)."""
    n = out.shape[0]
    nchunks = (n + _EPI_CHUNK - 1) // _EPI_CHUNK
    for ch in prange(nchunks):
        i0 = ch * _EPI_CHUNK
        i1 = min(i0 + _EPI_CHUNK, n)
        if has_residual:
            for i in range(i0, i1):
                out[i] = out[i] + residual[i]
        if act == 1:
            for i in range(i0, i1):
                v = out[i]
                out[i] = 0 if v < 0 else v
        elif act == 2:
            for i in range(i0, i1):
                v = out[i]
                v = 0 if v < 0 else v
                out[i] = 6 if v > 6 else v
        elif act == 3:
            for i in range(i0, i1):
                v = out[i]
                out[i] = v / (1 + np.exp(-v))


def max_pool2d_workspace(Wo):
    """Elements of workspace one thread of max_pool2d needs (twin of the Cython function)."""
    return 3 * (Wo + 16) + 16


@parallel_kernel
def max_pool2d(x, out, kh, kw, sh, sw, pt, pl, ws, nthreads):
    """out[n, c, oy, ox] = the largest in-image tap of x's window, NaN where one is NaN (twin of
    the Cython kernel; ws unused here)."""
    N, C, H, W = x.shape
    Ho, Wo = out.shape[2], out.shape[3]
    for p in prange(N * C):
        n = p // C
        c = p - n * C
        for oy in range(Ho):
            y0 = oy * sh - pt
            ylo = max(y0, 0)
            yhi = min(y0 + kh, H)
            for ox in range(Wo):
                x0 = ox * sw - pl
                xlo = max(x0, 0)
                xhi = min(x0 + kw, W)
                m = x[n, c, ylo, xlo]
                for yy in range(ylo, yhi):
                    for xx in range(xlo, xhi):
                        v = x[n, c, yy, xx]
                        if v > m or v != v:
                            m = v
                out[n, c, oy, ox] = m


@parallel_kernel
def plane_means(x, out, nthreads):
    """out[n, c] = the mean of plane x[n, c], summed in float64 (twin of the Cython kernel)."""
    N, C, H, W = x.shape
    for p in prange(N * C):
        n = p // C
        c = p - n * C
        t = 0.0
        for i in range(H):
            for j in range(W):
                t += x[n, c, i, j]
        out[n, c] = t / (H * W)


@parallel_kernel
def scale_planes(x, s, nthreads):
    """x[n, c] *= s[n, c] in place (twin of the Cython kernel)."""
    N, C, H, W = x.shape
    for p in prange(N * C):
        n = p // C
        c = p - n * C
        v = s[n, c]
        for i in range(H):
            for j in range(W):
                x[n, c, i, j] *= v
