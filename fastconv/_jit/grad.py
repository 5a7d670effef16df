"""Numba kernels of the backward pass: the depthwise weight gradient.

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
