# cython: boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Cython kernels of the backward pass: the depthwise and the direct weight gradients.

Twin of fastconv/_jit/grad.py (same names and signatures).  No validation, no allocation.
"""

from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.string cimport memset

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


cdef extern from "_scatter_kernel.h" nogil:
    int ph_avx512()
    int ph_scatter2_plane(const float *p00, const float *p01, const float *p10, const float *p11,
                          int64_t hp, int64_t wp, float *out)


cdef extern from "_wgrad_kernel.h" nogil:
    void wg_task_f32(const float *x, const float *go, const int64_t *g, int64_t n0, int64_t ns,
                     int64_t h0, int64_t rows, int64_t w0, int64_t cols, int64_t kv0,
                     int64_t kv1, float *ws, float *dwt, int first)
    void wg_task_f64(const double *x, const double *go, const int64_t *g, int64_t n0, int64_t ns,
                     int64_t h0, int64_t rows, int64_t w0, int64_t cols, int64_t kv0,
                     int64_t kv1, double *ws, double *dwt, int first)
    int wg_avx512()
    void wgdw_f32_avx512(const float *x, const float *go, const int64_t *g, int64_t k,
                         float *dwk)



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
    (i, j), in-image taps only; one output channel per task.  float32 with column stride 1 on
    AVX-512: vectors of 16 output pixels under the in-image mask (_wgrad_kernel.h); otherwise
    eight scalar partial sums."""
    cdef const int64_t *g = &geo[0]
    cdef Py_ssize_t k, K = g[G_K]
    cdef bint vec = floating is float and g[G_SW] == 1 and wg_avx512()
    with nogil:
        for k in prange(K, num_threads=nthreads, schedule="static"):
            if floating is float:
                if vec:
                    wgdw_f32_avx512(&x[0, 0, 0, 0], &go[0, 0, 0, 0], g, k, &dw[k, 0])
                    continue
            _wgrad_channel(x, go, g, dw, k)




def wgrad_fast():
    """True when conv_wgrad_direct runs its AVX-512 instance on this CPU (the planner's check)."""
    return bool(wg_avx512())


def conv_wgrad_direct(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] go,
                      const int64_t[::1] geo, floating[:, :, ::1] parts, floating[:, ::1] ws,
                      floating[:, ::1] dw, Py_ssize_t samples, Py_ssize_t rows, Py_ssize_t cols,
                      bint ksplit, int nthreads):
    """dw (K x Q, Q = C*kh*kw) = the weight gradient of a groups-1 conv2d, with no im2col
    matrix (_wgrad_kernel.h).  Tasks of `samples` samples x `rows` output rows x `cols` output
    columns (rows < Ho only with samples 1, cols < Wo only with rows 1) into parts (Q x Kp
    each, Kp = K rounded up to 64 bytes): either contiguous runs of the tasks per thread, each
    thread into its own part parts[t] (its first task stores), or with `ksplit` every task on
    every thread, each thread for its own blocks of 64 bytes x 4 of output channels, into the one
    part parts[0].  A fixed order either way: the same sums whatever the timing.  Then the parts
    summed and transposed into dw.  ws[t] is thread t's workspace (wg_workspace elements)."""
    cdef const int64_t *g = &geo[0]
    cdef Py_ssize_t N = g[G_N], Ho = g[G_HO], Wo = g[G_WO], K = g[G_K]
    cdef Py_ssize_t Q = parts.shape[1], Kp = parts.shape[2], nparts = parts.shape[0]
    cdef Py_ssize_t nvec = Kp * sizeof(floating) // 64, nb4 = (nvec + 3) // 4
    cdef Py_ssize_t nc = (Wo + cols - 1) // cols
    cdef Py_ssize_t nb = (Ho + rows - 1) // rows * nc
    cdef Py_ssize_t ntasks = ((N + samples - 1) // samples) * nb
    cdef Py_ssize_t t, task, a, b, n0, h0, w0, ns, nr, ncl, kv0, kv1, T = nthreads
    cdef Py_ssize_t qb, q, q1, k, u
    cdef floating acc
    with nogil:
        for t in prange(T, num_threads=nthreads, schedule="static", chunksize=1):
            if ksplit:
                a = 0
                b = ntasks
                kv0 = 4 * (t * nb4 // T)
                kv1 = min(nvec, 4 * ((t + 1) * nb4 // T))
            else:
                a = t * ntasks // T
                b = (t + 1) * ntasks // T
                kv0 = 0
                kv1 = nvec
                if a == b:
                    memset(&parts[t, 0, 0], 0, Q * Kp * sizeof(floating))
            for task in range(a, b):
                n0 = (task // nb) * samples
                h0 = (task % nb) // nc * rows
                w0 = (task % nc) * cols
                ns = min(samples, N - n0)
                nr = min(rows, Ho - h0)
                ncl = min(cols, Wo - w0)
                if kv1 <= kv0:
                    break
                if floating is float:
                    wg_task_f32(&x[0, 0, 0, 0], &go[0, 0, 0, 0], g, n0, ns, h0, nr, w0, ncl,
                                kv0, kv1, &ws[t, 0], &parts[0 if ksplit else t, 0, 0],
                                task == a)
                else:
                    wg_task_f64(&x[0, 0, 0, 0], &go[0, 0, 0, 0], g, n0, ns, h0, nr, w0, ncl,
                                kv0, kv1, &ws[t, 0], &parts[0 if ksplit else t, 0, 0],
                                task == a)
        # blocks of 16 columns: their parts' rows stay in L1 while every channel's row is written
        for qb in prange((Q + 15) // 16, num_threads=nthreads, schedule="static"):
            q1 = min(Q, qb * 16 + 16)
            for k in range(K):
                for q in range(qb * 16, q1):
                    acc = parts[0, q, k]
                    for u in range(1, nparts):
                        acc = acc + parts[u, q, k]
                    dw[k, q] = acc


def phase_taps(const floating[:, :, :, :] wt, const int64_t[::1] taps,
               const int64_t[::1] tstart, floating[::1] out, int nthreads):
    """Every stride phase's weight of a transposed convolution in one pass over conv2d's weight
    seen as (C, Kg, kh, kw) (a strided view, grad._flipped): phase p's taps are the flattened
    tap indices (i*kw + j) taps[tstart[p]:tstart[p + 1]], and its weight, (C, Kg, taps)
    C-contiguous, starts at out[C*Kg*tstart[p]].  One read of each (c, k)'s taps (a cache line
    for a 4x4 kernel) serves all phases: a pass per phase read the whole weight four times on
    the 4x4 stride-2 layers (0.56 ms of a 7.9 ms DCGAN layer, one thread).  Blocks of 16 input
    channels: the weight is read along its rows while 16 output rows are written."""
    cdef Py_ssize_t C = wt.shape[0], Kg = wt.shape[1], kw = wt.shape[3]
    cdef Py_ssize_t P = tstart.shape[0] - 1, T = taps.shape[0], it = sizeof(floating)
    cdef Py_ssize_t s0 = wt.strides[0] // it, s1 = wt.strides[1] // it
    cdef Py_ssize_t s2 = wt.strides[2] // it, s3 = wt.strides[3] // it
    cdef Py_ssize_t cb, kb, c, k, t, p, c1, k1, base, t0, nt
    cdef const floating *src = &wt[0, 0, 0, 0]
    cdef floating *dst
    cdef int64_t eoff[1024]  # the taps' element offsets (kernels to 32x32; larger: computed)
    for t in range(min(T, 1024)):
        eoff[t] = (taps[t] // kw) * s2 + (taps[t] % kw) * s3
    with nogil:
        for cb in prange((C + 15) // 16, num_threads=nthreads, schedule="static"):
            c1 = min(C, cb * 16 + 16)
            for kb in range(0, Kg, 16):
                k1 = min(Kg, kb + 16)
                # a 16 x 16 block of (c, k): its taps are read into L1 once, then each phase's
                # rows are written as runs of 16 k's (one run per c: a 16-byte store per (c, k)
                # went to 64 lines 4 KiB apart on the 4x4 layers, one L1 set, and thrashed:
                # 0.65 -> 0.39 ms for 256x128x4x4, one thread)
                for c in range(cb * 16, c1):
                    for p in range(P):
                        t0 = tstart[p]
                        nt = tstart[p + 1] - t0
                        dst = &out[C * Kg * t0 + (c * Kg + kb) * nt]
                        for k in range(kb, k1):
                            base = c * s0 + k * s1
                            if T <= 1024:
                                for t in range(nt):
                                    dst[(k - kb) * nt + t] = src[base + eoff[t0 + t]]
                            else:
                                for t in range(nt):
                                    dst[(k - kb) * nt + t] = src[
                                        base + (taps[t0 + t] // kw) * s2 + (taps[t0 + t] % kw) * s3
                                    ]


def gather_phases(const floating[:, :, :, ::1] x, const int64_t[:, ::1] pinfo, int64_t sh,
                  int64_t sw, floating[::1] xbuf, int nthreads):
    """Phase p's sub-image (N, C, rows, columns) C-contiguous at xbuf[offset:], its element
    (n, c, m, j) = x[n, c, r + m*sh, q + j*sw] for m < hx, j < wx and 0 past them, for each row
    p of pinfo = (offset, rows, columns, r, q, hx, wx): scatter_phases' inverse, one pass a
    plane (the plane in L1 across the phases)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t P = pinfo.shape[0]
    cdef Py_ssize_t nc, p, m, j, hp, wp, hx, wx, dst, r0, q0
    cdef const floating *src
    if pinfo.shape[1] < 7:
        raise ValueError("gather_phases: pinfo rows are (offset, rows, columns, r, q, hx, wx)")
    with nogil:
        for nc in prange(N * C, num_threads=nthreads, schedule="static"):
            src = &x[0, 0, 0, 0] + nc * H * W
            for p in range(P):
                hp = pinfo[p, 1]
                wp = pinfo[p, 2]
                r0 = pinfo[p, 3]
                q0 = pinfo[p, 4]
                hx = pinfo[p, 5]
                wx = pinfo[p, 6]
                dst = pinfo[p, 0] + nc * hp * wp
                for m in range(hp):
                    for j in range(wp):
                        if m < hx and j < wx:
                            xbuf[dst + m * wp + j] = src[(r0 + m * sh) * W + q0 + j * sw]
                        else:
                            xbuf[dst + m * wp + j] = 0


def scatter_phases(const floating[::1] ybuf, const int64_t[:, ::1] pinfo, int64_t sh,
                   int64_t sw, floating[:, :, :, ::1] out, int nthreads):
    """out[n, c, r + m*sh, q + j*sw] = phase p's result at (n, c, m, j), for each row p of pinfo
    = (offset in ybuf, rows, columns, r, q[, hx, wx]), the phase results (N, C, rows, columns)
    C-contiguous in ybuf, of which the first hx rows and wx columns are stored (all without
    them): one pass a plane, the plane in L1 across the phases (NumPy's strided copies, one a
    phase, ran on one thread: 0.4 ms of a 4.4 ms DCGAN layer on two)."""
    cdef Py_ssize_t N = out.shape[0], C = out.shape[1], H = out.shape[2], W = out.shape[3]
    cdef Py_ssize_t P = pinfo.shape[0]
    cdef Py_ssize_t nc, p, m, j, hp, wp, src, r0, q0
    cdef Py_ssize_t o00 = 0, o01 = 0, o10 = 0, o11 = 0
    cdef floating *dst
    cdef bint two = False
    cdef bint extent = pinfo.shape[1] >= 7
    cdef Py_ssize_t hx, wx
    if floating is float and sh == 2 and sw == 2 and P == 4 and H % 2 == 0 and W % 2 == 0:
        # four equal phases (0, 0), (0, 1), (1, 0), (1, 1): rows interleaved in registers
        two = ph_avx512() != 0
        for p in range(4):
            if pinfo[p, 1] != H // 2 or pinfo[p, 2] != W // 2:
                two = False
            if extent and (pinfo[p, 5] != pinfo[p, 1] or pinfo[p, 6] != pinfo[p, 2]):
                two = False
            if pinfo[p, 3] == 0 and pinfo[p, 4] == 0:
                o00 = pinfo[p, 0]
            elif pinfo[p, 3] == 0 and pinfo[p, 4] == 1:
                o01 = pinfo[p, 0]
            elif pinfo[p, 3] == 1 and pinfo[p, 4] == 0:
                o10 = pinfo[p, 0]
            else:
                o11 = pinfo[p, 0]
    if floating is float:
        if two:
            hp = H // 2
            wp = W // 2
            with nogil:
                for nc in prange(N * C, num_threads=nthreads, schedule="static"):
                    ph_scatter2_plane(&ybuf[0] + o00 + nc * hp * wp, &ybuf[0] + o01 + nc * hp * wp,
                                      &ybuf[0] + o10 + nc * hp * wp, &ybuf[0] + o11 + nc * hp * wp,
                                      hp, wp, &out[0, 0, 0, 0] + nc * H * W)
            return
    with nogil:
        for nc in prange(N * C, num_threads=nthreads, schedule="static"):
            dst = &out[0, 0, 0, 0] + nc * H * W
            for p in range(P):
                hp = pinfo[p, 1]
                wp = pinfo[p, 2]
                r0 = pinfo[p, 3]
                q0 = pinfo[p, 4]
                hx = pinfo[p, 5] if extent else hp
                wx = pinfo[p, 6] if extent else wp
                src = pinfo[p, 0] + nc * hp * wp
                for m in range(hx):
                    for j in range(wx):
                        dst[(r0 + m * sh) * W + q0 + j * sw] = ybuf[src + m * wp + j]
