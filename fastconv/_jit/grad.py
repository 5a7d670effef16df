"""Numba kernels of the backward pass: the depthwise and the direct weight gradients.

Twin of fastconv/_ext/grad.pyx (same names and signatures); no validation, no allocation.
"""

from numba import prange

from ._options import parallel_kernel

# positions in the geometry vector (fastconv._geometry.GEO_FIELDS)
G_N, G_C, G_H, G_W, G_K, G_KH, G_KW, G_SH, G_SW, G_PT, G_PL, G_DH, G_DW, G_G, G_HO, G_WO = range(16)


@parallel_kernel
def conv_depthwise_wgrad(x, go, geo, dw, nthreads):
    """dw[k, i*kw + j] = sum over samples and output pixels of go[n, k] * x[n, k // mult] at tap
    (i, j), in-image taps only; one output channel per task (the planes stay in cache)."""
    N, C, H, W, K = geo[G_N], geo[G_C], geo[G_H], geo[G_W], geo[G_K]
    kh, kw, sh, sw, pt, pl = geo[G_KH], geo[G_KW], geo[G_SH], geo[G_SW], geo[G_PT], geo[G_PL]
    dh, dwl, Ho, Wo = geo[G_DH], geo[G_DW], geo[G_HO], geo[G_WO]
    mult = K // C
    for k in prange(K):
        c = k // mult
        for i in range(kh):
            oh = i * dh - pt
            h0 = 0 if oh >= 0 else (-oh + sh - 1) // sh
            h1 = min(Ho, (H - 1 - oh) // sh + 1) if H - 1 - oh >= 0 else 0
            for j in range(kw):
                ow = j * dwl - pl
                w0 = 0 if ow >= 0 else (-ow + sw - 1) // sw
                w1 = min(Wo, (W - 1 - ow) // sw + 1) if W - 1 - ow >= 0 else 0
                acc = go.dtype.type(0)
                for n in range(N):
                    for ho in range(h0, h1):
                        hi = ho * sh + oh
                        if sw == 1:  # unit stride: contiguous rows, the reduction vectorises
                            gr = go[n, k, ho]
                            xr = x[n, c, hi]
                            for wo in range(w0, w1):
                                acc += gr[wo] * xr[wo + ow]
                        else:
                            for wo in range(w0, w1):
                                acc += go[n, k, ho, wo] * x[n, c, hi, wo * sw + ow]
                dw[k, i * kw + j] = acc


def wgrad_fast():
    """The Cython twin's AVX-512 check; the Numba kernel has no vector instance of its own."""
    return False


@parallel_kernel
def conv_wgrad_direct(x, go, geo, parts, ws, dw, samples, rows, cols, ksplit, nthreads):
    """dw (K x Q) = the weight gradient of a groups-1 conv2d, with no im2col matrix: tasks of
    `samples` samples x `rows` output rows x `cols` output columns, either contiguous runs of
    them per thread, each thread adding into its own part parts[t] (Q x Kp), or (`ksplit`) all of
    them on every thread, each for its own blocks of 4 vectors of output channels of parts[0];
    then the parts summed into dw.  ws[t] holds a task's grad_output pixel-major (Kp channels,
    zeros beyond K) and its input rows zero-padded (the Cython twin's sizes:
    _ext/_wgrad_kernel.h)."""
    N, C, H, W, K = geo[G_N], geo[G_C], geo[G_H], geo[G_W], geo[G_K]
    kh, kw, sh, sw, pt, pl = geo[G_KH], geo[G_KW], geo[G_SH], geo[G_SW], geo[G_PT], geo[G_PL]
    dh, dwl, Ho, Wo = geo[G_DH], geo[G_DW], geo[G_HO], geo[G_WO]
    Kp = parts.shape[2]
    Q = C * kh * kw
    nc = (Wo + cols - 1) // cols
    nb = (Ho + rows - 1) // rows * nc
    ntasks = ((N + samples - 1) // samples) * nb
    lanes = 64 // x.itemsize
    nb4 = (Kp // lanes + 3) // 4
    T = max(1, nthreads) if ksplit else parts.shape[0]
    for t in prange(T):
        if ksplit:
            part = parts[0]
            a, b = 0, ntasks
            k0 = min(Kp, 4 * lanes * (t * nb4 // T))
            k1 = min(Kp, 4 * lanes * ((t + 1) * nb4 // T))
        else:
            part = parts[t]
            a, b = t * ntasks // T, (t + 1) * ntasks // T
            k0, k1 = 0, Kp
        part[:, k0:k1] = 0
        for task in range(a, b):
            n0 = (task // nb) * samples
            h0 = (task % nb) // nc * rows
            w0 = (task % nc) * cols
            ns = min(samples, N - n0)
            nr = min(rows, Ho - h0)
            ncl = min(cols, Wo - w0)
            span = (nr - 1) * sh + (kh - 1) * dh + 1
            wsp = (ncl - 1) * sw + (kw - 1) * dwl + 1
            P = ns * nr * ncl
            gt = ws[t, : P * Kp].reshape(P, Kp)
            xp = ws[t, P * Kp : P * Kp + ns * C * span * wsp].reshape(ns, C, span, wsp)
            p = 0
            for n in range(ns):
                for r in range(nr):
                    for c in range(ncl):
                        for k in range(K):
                            gt[p, k] = go[n0 + n, k, h0 + r, w0 + c]
                        for k in range(K, Kp):
                            gt[p, k] = 0
                        p += 1
            xp[...] = 0
            for n in range(ns):
                for c in range(C):
                    for r in range(span):
                        hi = h0 * sh - pt + r
                        if hi < 0 or hi >= H:
                            continue
                        for col in range(wsp):
                            wi = w0 * sw - pl + col
                            if 0 <= wi < W:
                                xp[n, c, r, col] = x[n0 + n, c, hi, wi]
            for q in range(Q):
                c = q // (kh * kw)
                i = (q % (kh * kw)) // kw
                j = q % kw
                row = part[q]
                p = 0
                for n in range(ns):
                    for r in range(nr):
                        xr = xp[n, c, r * sh + i * dh]
                        for col in range(ncl):
                            b = xr[col * sw + j * dwl]
                            g = gt[p]
                            for k in range(k0, k1):  # contiguous: vectorises
                                row[k] += g[k] * b
                            p += 1
    for q in prange(Q):
        for k in range(K):
            acc = parts[0, q, k]
            for u in range(1, parts.shape[0]):
                acc += parts[u, q, k]
            dw[k, q] = acc


@parallel_kernel
def phase_taps(wt, taps, tstart, out, nthreads):
    """Every stride phase's weight in one pass (twin of fastconv/_ext/grad.pyx): phase p's taps
    are the flattened tap indices taps[tstart[p]:tstart[p + 1]] of wt (C, Kg, kh, kw), a view;
    its (C, Kg, taps) weight starts at out[C*Kg*tstart[p]]."""
    C, Kg, kh, kw = wt.shape
    P = tstart.shape[0] - 1
    for cb in prange((C + 15) // 16):
        for kb in range(0, Kg, 16):
            for c in range(cb * 16, min(C, cb * 16 + 16)):
                for p in range(P):
                    t0 = tstart[p]
                    nt = tstart[p + 1] - t0
                    for k in range(kb, min(Kg, kb + 16)):
                        d0 = C * Kg * t0 + (c * Kg + k) * nt
                        for t in range(nt):
                            o = taps[t0 + t]
                            out[d0 + t] = wt[c, k, o // kw, o % kw]


@parallel_kernel
def gather_phases(x, pinfo, sh, sw, xbuf, nthreads):
    """Phase p's sub-image (N, C, rows, columns) at xbuf[offset:], its element (n, c, m, j) =
    x[n, c, r + m*sh, q + j*sw] for m < hx, j < wx, 0 past them (twin of fastconv/_ext/grad.pyx):
    pinfo rows (offset, rows, columns, r, q, hx, wx)."""
    N, C, H, W = x.shape
    for nc in prange(N * C):
        n = nc // C
        c = nc - n * C
        for p in range(pinfo.shape[0]):
            hp = pinfo[p, 1]
            wp = pinfo[p, 2]
            hx = pinfo[p, 5]
            wx = pinfo[p, 6]
            dst = pinfo[p, 0] + nc * hp * wp
            for m in range(hp):
                for j in range(wp):
                    if m < hx and j < wx:
                        xbuf[dst + m * wp + j] = x[n, c, pinfo[p, 3] + m * sh, pinfo[p, 4] + j * sw]
                    else:
                        xbuf[dst + m * wp + j] = 0


@parallel_kernel
def scatter_phases(ybuf, pinfo, sh, sw, out, nthreads):
    """out[n, c, r + m*sh, q + j*sw] = phase p's result at (n, c, m, j) (twin of
    fastconv/_ext/grad.pyx): pinfo rows (offset in ybuf, rows, columns, r, q[, hx, wx]), of
    which the first hx rows and wx columns are stored."""
    N, C, H, W = out.shape
    extent = pinfo.shape[1] >= 7
    for nc in prange(N * C):
        n = nc // C
        c = nc - n * C
        for p in range(pinfo.shape[0]):
            hp = pinfo[p, 1]
            wp = pinfo[p, 2]
            hx = pinfo[p, 5] if extent else hp
            wx = pinfo[p, 6] if extent else wp
            src = pinfo[p, 0] + nc * hp * wp
            for m in range(hx):
                for j in range(wx):
                    out[n, c, pinfo[p, 3] + m * sh, pinfo[p, 4] + j * sw] = ybuf[src + m * wp + j]
