# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Cython kernels of the backward pass: the depthwise weight gradient.

Twin of fastconv/_jit/grad.py (same names and signatures).  No validation, no allocation.
"""

from cython.parallel cimport prange
from libc.stdint cimport int64_t

ctypedef fused floating:
    float
    double

DEF G_N = 0
DEF G_C = 1
DEF G_H = 2
DEF G_W = 3
DEF G_K = 4
DEF G_KH = 5
DEF G_KW = 6
DEF G_SH = 7
DEF G_SW = 8
DEF G_PT = 9
DEF G_PL = 10
DEF G_DH = 11
DEF G_DW = 12
DEF G_HO = 14
DEF G_WO = 15


cdef inline void _wgrad_channel(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] go,
                                const int64_t *g, floating[:, ::1] dw, Py_ssize_t k) noexcept nogil:
    cdef Py_ssize_t N = g[G_N], C = g[G_C], H = g[G_H], W = g[G_W], K = g[G_K]
    cdef Py_ssize_t kh = g[G_KH], kw = g[G_KW], sh = g[G_SH], sw = g[G_SW]
    cdef Py_ssize_t pt = g[G_PT], pl = g[G_PL], dh = g[G_DH], dwl = g[G_DW]
    cdef Py_ssize_t Ho = g[G_HO], Wo = g[G_WO]
    cdef Py_ssize_t c = k // (K // C)
    cdef Py_ssize_t i, j, n, ho, wo, oh, ow, h0, h1, w0, w1, hi, q
    cdef floating acc
    cdef floating part[8]
    cdef const floating *gr
    cdef const floating *xr
    for i in range(kh):
        oh = i * dh - pt
        h0 = 0 if oh >= 0 else (-oh + sh - 1) // sh
        h1 = min(Ho, (H - 1 - oh) // sh + 1) if H - 1 - oh >= 0 else 0
        for j in range(kw):
            ow = j * dwl - pl
            w0 = 0 if ow >= 0 else (-ow + sw - 1) // sw
            w1 = min(Wo, (W - 1 - ow) // sw + 1) if W - 1 - ow >= 0 else 0
            # eight independent partial sums: without -ffast-math the compiler may not reorder a
            # single running sum, and its add latency would bound the loop (measured: 0.8 GFLOP/s)
            for q in range(8):
                part[q] = 0
            for n in range(N):
                for ho in range(h0, h1):
                    hi = ho * sh + oh
                    gr = &go[n, k, ho, 0]
                    xr = &x[n, c, hi, 0]
                    wo = w0
                    if sw == 1:
                        xr = xr + ow
                        while wo + 8 <= w1:
                            for q in range(8):
                                part[q] = part[q] + gr[wo + q] * xr[wo + q]
                            wo = wo + 8
                        while wo < w1:
                            part[0] = part[0] + gr[wo] * xr[wo]
                            wo = wo + 1
                    else:
                        while wo < w1:
                            part[wo & 7] = part[wo & 7] + gr[wo] * xr[wo * sw + ow]
                            wo = wo + 1
            acc = 0
            for q in range(8):
                acc = acc + part[q]
            dw[k, i * kw + j] = acc


def conv_depthwise_wgrad(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] go,
                         const int64_t[::1] geo, floating[:, ::1] dw, int nthreads):
    """dw[k, i*kw + j] = sum over samples and output pixels of go[n, k] * x[n, k // mult] at tap
    (i, j), in-image taps only; one output channel per task."""
    cdef const int64_t *g = &geo[0]
    cdef Py_ssize_t k, K = g[G_K]
    with nogil:
        for k in prange(K, num_threads=nthreads, schedule="static"):
            _wgrad_channel(x, go, g, dw, k)
