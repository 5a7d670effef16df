"""Cython kernels for im2col, col2im, tiled im2col+GEMM convolution and direct depthwise convolution.

Twins of fastconv/_jit/conv.py (same names and signatures).  No validation, no allocation: the public
layer checks every argument and passes contiguous arrays, outputs and workspaces.
"""

from cython.parallel cimport parallel, prange, threadid
from cpython.pycapsule cimport PyCapsule_GetName, PyCapsule_GetPointer
from libc.string cimport memcpy, memset
from libc.stdint cimport int64_t

ctypedef fused floating:
    float
    double

ctypedef void (*sgemm_t)(char *transa, char *transb, int *m, int *n, int *k, float *alpha,
                         float *a, int *lda, float *b, int *ldb, float *beta, float *c,
                         int *ldc) noexcept nogil
ctypedef void (*dgemm_t)(char *transa, char *transb, int *m, int *n, int *k, double *alpha,
                         double *a, int *lda, double *b, int *ldb, double *beta, double *c,
                         int *ldc) noexcept nogil

cdef extern from *:
    """
    #ifndef FASTCONV_OPENMP
    #define FASTCONV_OPENMP 0
    #endif
    """
    int FASTCONV_OPENMP

#: True when this extension was compiled with OpenMP (otherwise its prange loops run serially).
openmp = bool(FASTCONV_OPENMP)

cdef extern from "_grouped_kernel.h" nogil:
    int fc_grouped_supported()
    void fc_grouped_vblock(const float *xp, int64_t plane, int64_t Wp, const float *wt,
                           int64_t Cg, int64_t kh, int64_t kw, int64_t dh, int64_t dw, float *o,
                           int64_t ldo, const float *bias8)

cdef extern from "_epilogue_kernel.h" nogil:
    void fc_epilogue_f32(float *out, const float *res, int64_t i0, int64_t i1, int act)
    void fc_epilogue_f64(double *out, const double *res, int64_t i0, int64_t i1, int act)

cdef extern from "_depthwise_kernel.h" nogil:
    int dw16_supported()
    void dw_init_perm()
    int64_t dw16_buffer_size(int64_t Hp, int64_t Wp, int64_t taps)
    int dw_plane_supported(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t dh,
                           int64_t dw, int64_t Ho, int64_t Wo)
    void dw_plane_f32(const float *x, int64_t H, int64_t W, int64_t pt, int64_t pl,
                      const float *wk, int64_t kh, float b, float *out, int64_t Ho, int64_t Wo,
                      int act, int64_t stride)
    int dw_flat_supported(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t H, int64_t W,
                          int64_t Ho, int64_t Wo)
    int64_t dw_flat_buffer_size(int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t sh,
                                int64_t Ho, int64_t Wo)
    int64_t dw_flat_table_size(int64_t kh, int64_t kw, int64_t Ho, int64_t Wo)
    void dw_flat_build_table(float *tab, int64_t H, int64_t W, int64_t kh, int64_t kw,
                             int64_t pt, int64_t pl, int64_t sh, int64_t dh, int64_t dw,
                             int64_t Ho, int64_t Wo)
    void dw_flat_planes_f32(const float *x, int64_t H, int64_t W, const float *w,
                            const float *bias, float *out, int64_t k0, int64_t k1, int64_t m,
                            int64_t kh, int64_t kw, int64_t sh, int64_t pt, int64_t pl,
                            int64_t dh, int64_t dw, int64_t Ho, int64_t Wo, const float *tab,
                            float *ph, int act)
    int64_t dw_small16_buffer_size(int64_t H, int64_t W, int64_t kh, int64_t kw, int64_t sh,
                                   int64_t sw, int64_t dh, int64_t dw, int64_t Ho, int64_t Wo)
    int dw_small16_supported(int64_t kh, int64_t kw, int64_t Wo)
    int dw_small16_wide_supported(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t H,
                                  int64_t W, int64_t Wo)
    int dw_small16_f32(const float *x, int64_t H, int64_t W, const float *w, const float *bias,
                       float *out, int64_t nk, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                       int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t Ho, int64_t Wo,
                       float *buf, int act)
    void dw16_task(const float *x, int64_t H, int64_t W, const float *w, const float *bias,
                   float *out, int64_t k0, int64_t nk, int64_t m, int64_t kh, int64_t kw,
                   int64_t sh, int64_t sw, int64_t pt, int64_t pl, int64_t dh, int64_t dw,
                   int64_t Ho, int64_t Wo, float *buf, int act)

cdef sgemm_t _sgemm = NULL
cdef dgemm_t _dgemm = NULL


def _load_blas():
    # SciPy's own BLAS through its Cython C-API capsules: no SciPy needed at build time.
    global _sgemm, _dgemm
    from scipy.linalg import cython_blas
    cap = cython_blas.__pyx_capi__["sgemm"]
    _sgemm = <sgemm_t>PyCapsule_GetPointer(cap, PyCapsule_GetName(cap))
    cap = cython_blas.__pyx_capi__["dgemm"]
    _dgemm = <dgemm_t>PyCapsule_GetPointer(cap, PyCapsule_GetName(cap))


_load_blas()

# positions in the geometry vector (fastconv._geometry.GEO_FIELDS)
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
DEF G_G = 13
DEF G_HO = 14
DEF G_WO = 15


cdef inline Py_ssize_t _wo_lo(Py_ssize_t off, Py_ssize_t sw) noexcept nogil:
    # first output column whose input column wo*sw + off is >= 0
    if off >= 0:
        return 0
    return (-off + sw - 1) // sw


cdef inline Py_ssize_t _wo_hi(Py_ssize_t off, Py_ssize_t sw, Py_ssize_t W) noexcept nogil:
    # one past the last output column whose input column wo*sw + off is <= W - 1
    if W - 1 - off < 0:
        return 0
    return (W - 1 - off) // sw + 1


cdef inline bint _all_finite(const floating *v, Py_ssize_t n, Py_ssize_t stride) noexcept nogil:
    # v - v is 0 for finite v and NaN for NaN or +-inf; OR-ing the comparisons (integers, so
    # the compiler may reorder and vectorise them, unlike a float sum) costs a few vectors per
    # task, not a dependent add per weight
    cdef int bad = 0
    cdef Py_ssize_t i
    for i in range(n):
        bad |= (v[i * stride] - v[i * stride]) != 0
    return bad == 0


cdef inline bint _padded(const int64_t *g) noexcept nogil:
    # some tap of some output falls on the zero padding (top, left, bottom or right)
    cdef int64_t pb = (g[G_HO] - 1) * g[G_SH] + g[G_DH] * (g[G_KH] - 1) + 1 - g[G_PT] - g[G_H]
    cdef int64_t pr = (g[G_WO] - 1) * g[G_SW] + g[G_DW] * (g[G_KW] - 1) + 1 - g[G_PL] - g[G_W]
    return g[G_PT] > 0 or g[G_PL] > 0 or pb > 0 or pr > 0


cdef void _direct_out(const floating *xs, Py_ssize_t Cg, const int64_t *g, const floating *wk,
                      Py_ssize_t ws, floating b, floating *o, Py_ssize_t p0,
                      Py_ssize_t T) noexcept nogil:
    """o[t] = b + sum of wk[((c*kh + i)*kw + j)*ws] * x over the taps that fall inside the image,
    for output pixels p0 + t (t < T) of one output channel; xs are its Cg input planes.

    Direct summation over in-image taps, which is what torch computes: kernels that read a
    zero-padded copy turn an inf or NaN weight times a padding zero into NaN, so they come here
    when a weight is not finite.  Whole output rows, tap by tap (vectorised along the row)."""
    cdef Py_ssize_t H = g[G_H], W = g[G_W], kh = g[G_KH], kw = g[G_KW]
    cdef Py_ssize_t sh = g[G_SH], sw = g[G_SW], pt = g[G_PT], pl = g[G_PL]
    cdef Py_ssize_t dh = g[G_DH], dw = g[G_DW], Wo = g[G_WO]
    cdef Py_ssize_t t, p, ho, wo, seg, c, i, j, hi, off, lo, hw, q
    cdef const floating *xr
    cdef floating *orow
    cdef floating wv
    for t in range(T):
        o[t] = b
    t = 0
    p = p0
    while t < T:
        ho = p // Wo
        wo = p - ho * Wo
        seg = Wo - wo
        if seg > T - t:
            seg = T - t
        orow = o + t - wo  # orow[q] is output column q of this row
        for c in range(Cg):
            for i in range(kh):
                hi = ho * sh - pt + i * dh
                if hi < 0 or hi >= H:
                    continue
                xr = xs + (c * H + hi) * W
                for j in range(kw):
                    wv = wk[((c * kh + i) * kw + j) * ws]
                    off = j * dw - pl
                    lo = _wo_lo(off, sw)
                    hw = _wo_hi(off, sw, W)
                    if lo < wo:
                        lo = wo
                    if hw > wo + seg:
                        hw = wo + seg
                    if sw == 1:
                        for q in range(lo, hw):
                            orow[q] += wv * xr[q + off]
                    else:
                        for q in range(lo, hw):
                            orow[q] += wv * xr[q * sw + off]
        t = t + seg
        p = p + seg


cdef void _pack(const floating *xs, Py_ssize_t Cn, const int64_t *g, Py_ssize_t p0,
                Py_ssize_t T, floating *dst, Py_ssize_t ld) noexcept nogil:
    """im2col of output pixels [p0, p0+T) of one sample and Cn channels into dst (rows c,i,j; stride ld)."""
    cdef Py_ssize_t H = g[G_H], W = g[G_W], kh = g[G_KH], kw = g[G_KW]
    cdef Py_ssize_t sh = g[G_SH], sw = g[G_SW], pt = g[G_PT], pl = g[G_PL]
    cdef Py_ssize_t dh = g[G_DH], dw = g[G_DW], Wo = g[G_WO]
    cdef Py_ssize_t c, i, j, t, p, ho, wo, seg, hi, off, lo, hw, q
    cdef const floating *xc
    cdef const floating *xr
    cdef floating *row
    for c in range(Cn):
        xc = xs + c * H * W
        for i in range(kh):
            for j in range(kw):
                row = dst + ((c * kh + i) * kw + j) * ld
                off = j * dw - pl
                t = 0
                p = p0
                while t < T:
                    ho = p // Wo
                    wo = p - ho * Wo
                    seg = Wo - wo
                    if seg > T - t:
                        seg = T - t
                    hi = ho * sh - pt + i * dh
                    if hi < 0 or hi >= H:
                        memset(row + t, 0, seg * sizeof(floating))
                    else:
                        xr = xc + hi * W
                        lo = _wo_lo(off, sw)
                        hw = _wo_hi(off, sw, W)
                        if lo < wo:
                            lo = wo
                        if lo > wo + seg:  # the in-image columns start past this segment
                            lo = wo + seg
                        if hw > wo + seg:
                            hw = wo + seg
                        if hw < lo:
                            hw = lo
                        if lo > wo:
                            memset(row + t, 0, (lo - wo) * sizeof(floating))
                        if sw == 1:
                            memcpy(row + t + (lo - wo), xr + lo + off, (hw - lo) * sizeof(floating))
                        else:
                            for q in range(lo, hw):
                                row[t + q - wo] = xr[q * sw + off]
                        if wo + seg > hw:
                            memset(row + t + (hw - wo), 0, (wo + seg - hw) * sizeof(floating))
                    t = t + seg
                    p = p + seg


def im2col(const floating[:, :, :, ::1] x, const int64_t[::1] geo, floating[:, :, ::1] cols, int nthreads):
    """cols[n] = unfold(x[n]); parallel over (sample, channel)."""
    cdef const int64_t *g = &geo[0]
    cdef Py_ssize_t N = g[G_N], C = g[G_C], kk = g[G_KH] * g[G_KW], L = g[G_HO] * g[G_WO]
    cdef Py_ssize_t task, n, c
    if N * C == 0 or L == 0:
        return
    for task in prange(N * C, nogil=True, num_threads=nthreads, schedule="static"):
        n = task // C
        c = task - n * C
        _pack(&x[n, c, 0, 0], 1, g, 0, L, &cols[n, c * kk, 0], L)


def col2im(const floating[:, :, ::1] cols, const int64_t[::1] geo, floating[:, :, :, ::1] out, int nthreads):
    """out = fold(cols), overlaps summed; parallel over (sample, channel) planes, so no races."""
    cdef const int64_t *g = &geo[0]
    cdef Py_ssize_t N = g[G_N], C = g[G_C], H = g[G_H], W = g[G_W], kh = g[G_KH], kw = g[G_KW]
    cdef Py_ssize_t sh = g[G_SH], sw = g[G_SW], pt = g[G_PT], pl = g[G_PL]
    cdef Py_ssize_t dh = g[G_DH], dw = g[G_DW], Ho = g[G_HO], Wo = g[G_WO]
    cdef Py_ssize_t task, n, c, i, j, ho, wo, hi, off, lo, hw
    cdef floating *o
    cdef const floating *src
    if N * C == 0:
        return
    for task in prange(N * C, nogil=True, num_threads=nthreads, schedule="static"):
        n = task // C
        c = task - n * C
        o = &out[n, c, 0, 0]
        memset(o, 0, H * W * sizeof(floating))
        for i in range(kh):
            for j in range(kw):
                src = &cols[n, (c * kh + i) * kw + j, 0]
                off = j * dw - pl
                lo = _wo_lo(off, sw)
                hw = _wo_hi(off, sw, W)
                if hw > Wo:
                    hw = Wo
                for ho in range(Ho):
                    hi = ho * sh - pt + i * dh
                    if hi < 0 or hi >= H:
                        continue
                    for wo in range(lo, hw):
                        o[hi * W + wo * sw + off] += src[ho * Wo + wo]


cdef inline void _gemm(floating *a, floating *b, floating *c, int m, int n, int k,
                       int lda, int ldb, int ldc) noexcept nogil:
    # column-major C (m x n) = A (m x k) @ B (k x n), beta = 0
    cdef char tr = b'N'
    cdef float one_s = 1.0, zero_s = 0.0
    cdef double one_d = 1.0, zero_d = 0.0
    if floating is float:
        _sgemm(&tr, &tr, &m, &n, &k, &one_s, a, &lda, b, &ldb, &zero_s, c, &ldc)
    else:
        _dgemm(&tr, &tr, &m, &n, &k, &one_d, a, &lda, b, &ldb, &zero_d, c, &ldc)


def conv_gemm(const floating[:, :, :, ::1] x, const floating[:, :, ::1] w, const floating[:, ::1] bias, bint has_bias,
              const int64_t[::1] geo, floating[:, :, ::1] out, floating[:, ::1] ws,
              Py_ssize_t tile, int nthreads):
    """Tiled im2col + GEMM, written straight into out (N, K, Ho*Wo).

    w is (Nw, K, Cg*kh*kw) with Nw = 1 (one kernel) or N (one kernel per sample, dynamic conv); bias is
    (Nb, K) likewise.  ws is (threads, Cg*kh*kw*tile): each thread packs one pixel tile at a time into its
    own row and multiplies it with BLAS (capped at one thread by the caller) into the output rows.
    """
    cdef const int64_t *g = &geo[0]
    cdef Py_ssize_t N = g[G_N], C = g[G_C], K = g[G_K], G = g[G_G]
    cdef Py_ssize_t P = g[G_HO] * g[G_WO]
    cdef Py_ssize_t Cg = C // G, Kg = K // G, R = Cg * g[G_KH] * g[G_KW]
    cdef Py_ssize_t Nw = w.shape[0], Nb = bias.shape[0]
    cdef Py_ssize_t ntiles = (P + tile - 1) // tile
    cdef Py_ssize_t ntasks = N * G * ntiles
    cdef Py_ssize_t task, n, grp, tl, p0, T, k, t, tid
    cdef floating *col
    cdef floating *o
    cdef const floating *wb
    cdef floating b
    cdef bint padded = _padded(g)
    if ntasks == 0:
        return
    with nogil, parallel(num_threads=nthreads):
        tid = threadid()
        col = &ws[tid, 0]
        for task in prange(ntasks, schedule="dynamic"):
            n = task // (G * ntiles)
            grp = (task // ntiles) % G
            tl = task % ntiles
            p0 = tl * tile
            T = P - p0
            if T > tile:
                T = tile
            o = &out[n, grp * Kg, p0]
            wb = &w[n if Nw > 1 else 0, grp * Kg, 0]
            if padded and not _all_finite(wb, Kg * R, 1):
                # the packed tile's padding zeros would meet a non-finite weight (NaN, not torch's
                # sum over in-image taps): this tile by direct summation
                for k in range(Kg):
                    b = bias[n if Nb > 1 else 0, grp * Kg + k] if has_bias else 0
                    _direct_out(&x[n, grp * Cg, 0, 0], Cg, g, wb + k * R, 1, b, o + k * P, p0, T)
            else:
                _pack(&x[n, grp * Cg, 0, 0], Cg, g, p0, T, col, T)
                _gemm(col, <floating *>wb, o, <int>T, <int>Kg, <int>R, <int>T, <int>R, <int>P)
                if has_bias:
                    for k in range(Kg):
                        b = bias[n if Nb > 1 else 0, grp * Kg + k]
                        for t in range(T):
                            o[k * P + t] += b


cdef inline void _pad_plane(const floating *src, Py_ssize_t H, Py_ssize_t W, Py_ssize_t pt,
                            Py_ssize_t pl, floating *dst, Py_ssize_t Hp, Py_ssize_t Wp) noexcept nogil:
    # dst (Hp, Wp) = src (H, W) placed at (pt, pl), zero elsewhere (cropped where Hp/Wp end first)
    cdef Py_ssize_t r, hi
    cdef Py_ssize_t c0 = pl if pl < Wp else Wp
    cdef Py_ssize_t c1 = pl + W if pl + W < Wp else Wp
    for r in range(Hp):
        hi = r - pt
        if hi < 0 or hi >= H:
            memset(dst + r * Wp, 0, Wp * sizeof(floating))
            continue
        if c0 > 0:
            memset(dst + r * Wp, 0, c0 * sizeof(floating))
        if c1 > c0:
            memcpy(dst + r * Wp + c0, src + hi * W, (c1 - c0) * sizeof(floating))
        if Wp > c1:
            memset(dst + r * Wp + c1, 0, (Wp - c1) * sizeof(floating))


cdef inline void _dw_block(const floating *xp, Py_ssize_t Wp, const floating *wk, Py_ssize_t kh,
                           Py_ssize_t kw, Py_ssize_t dh, Py_ssize_t dw, floating *o, Py_ssize_t Wo,
                           floating b, const Py_ssize_t NT) noexcept nogil:
    # 2 output rows x NT (32 or 16, a constant at each call) columns held in registers across all
    # taps, read from a zero-padded plane so no tap needs a bounds test; one store at the end.
    cdef floating a0[32]
    cdef floating a1[32]
    cdef Py_ssize_t i, j, t
    cdef floating wv
    cdef const floating *r0
    cdef const floating *r1
    for t in range(NT):
        a0[t] = b
        a1[t] = b
    for i in range(kh):
        r0 = xp + i * dh * Wp
        r1 = r0 + Wp
        for j in range(kw):
            wv = wk[i * kw + j]
            for t in range(NT):
                a0[t] += wv * r0[j * dw + t]
            for t in range(NT):
                a1[t] += wv * r1[j * dw + t]
    for t in range(NT):
        o[t] = a0[t]
        o[Wo + t] = a1[t]


def conv_depthwise_planes(const floating[:, :, :, ::1] x, const floating[:, :, ::1] w,
                          const floating[:, ::1] bias, bint has_bias, const int64_t[::1] geo,
                          floating[:, :, :, ::1] out, floating[:, ::1] ws, int act,
                          int nthreads):
    """Direct grouped convolution with one input channel per group (depthwise, channel multiplier
    K/C), one output plane per task (16 on the flat path); w is (Nw, K, kh*kw), bias (Nb, K); act 1 (relu), 2
    (relu6) or 3 (silu) is applied to each plane as it is written (0: none).

    1x1 taps that all fall inside the image: one pass, out = b + w * x at the strided pixels.
    float32 with AVX-512, planes under 16 wide (depthwise_plane_flat): flat runs of 16 pixels
    across rows, 16 planes per task (_depthwise_kernel.h).  float32 with AVX-512, 3x3 / 5x5 at
    stride 1 or 2 (depthwise_plane_fast): 4-row register blocks straight from the input.
    Stride 1 with output planes at least 2 x 16 (and ws of depthwise_planes_workspace elements
    per thread): the plane is copied once into the thread's zero-padded buffer and computed in
    register-held blocks of 2 rows x 32 columns (16 on planes narrower than 32), the last block of
    a row or the last row pair overlapping the previous one instead of a scalar tail (recomputed
    outputs are identical).  Other cases, and planes whose weights hold a NaN or inf where some
    tap falls on padding (a padding zero times inf is NaN, torch skips those taps), accumulate
    whole rows tap by tap over the in-image taps only.
    """
    _depthwise_planes(x, w, bias, has_bias, geo, out, ws, act, nthreads)


cdef inline void _act_plane(floating *o, Py_ssize_t n, int act) noexcept nogil:
    # relu (1) / relu6 (2) in place, compare-and-select: NaN stays NaN; silu (3) by the pass's
    # code (_epilogue_kernel.h)
    cdef Py_ssize_t i
    cdef floating v
    if act == 3:
        if floating is float:
            fc_epilogue_f32(o, NULL, 0, n, 3)
        else:
            fc_epilogue_f64(o, NULL, 0, n, 3)
        return
    for i in range(n):
        v = o[i]
        v = 0 if v < 0 else v
        if act == 2:
            v = 6 if v > 6 else v
        o[i] = v


cdef inline void _dw_one(const floating *xp, Py_ssize_t W, Py_ssize_t sh, Py_ssize_t sw,
                         floating wv, floating b, floating *o, Py_ssize_t Ho,
                         Py_ssize_t Wo) noexcept nogil:
    # a 1x1 plane without padding: o = b + wv * x at the strided pixels, one pass
    cdef Py_ssize_t ho, q
    cdef const floating *xr
    for ho in range(Ho):
        xr = xp + ho * sh * W
        if sw == 1:
            for q in range(Wo):
                o[q] = b + wv * xr[q]
        else:
            for q in range(Wo):
                o[q] = b + wv * xr[q * sw]
        o += Wo


cdef void _depthwise_planes(const floating[:, :, :, ::1] x, const floating[:, :, ::1] w,
                            const floating[:, ::1] bias, bint has_bias, const int64_t[::1] geo,
                            floating[:, :, :, ::1] out, floating[:, ::1] ws, int act,
                            int nthreads):
    cdef const int64_t *g = &geo[0]
    cdef Py_ssize_t N = g[G_N], C = g[G_C], H = g[G_H], W = g[G_W], K = g[G_K]
    cdef Py_ssize_t kh = g[G_KH], kw = g[G_KW], sh = g[G_SH], sw = g[G_SW]
    cdef Py_ssize_t pt = g[G_PT], pl = g[G_PL], dh = g[G_DH], dw = g[G_DW]
    cdef Py_ssize_t Ho = g[G_HO], Wo = g[G_WO]
    cdef Py_ssize_t Hp = Ho + dh * (kh - 1), Wp = Wo + dw * (kw - 1)
    cdef Py_ssize_t m = K // C, Nw = w.shape[0], Nb = bias.shape[0]
    # register blocks 32 columns wide, 16 on narrower planes (MobileNet's 28 and 14 pixel maps)
    cdef Py_ssize_t bw = 32 if Wo >= 32 else 16
    cdef bint blocked = sh == 1 and sw == 1 and Ho >= 2 and Wo >= 16 and ws.shape[1] >= Hp * Wp
    cdef bint padded = _padded(g)
    # float32 with AVX-512, 3x3 and 5x5: 4-row register blocks with the activation on the store
    cdef bint fast = floating is float and dw_plane_supported(kh, kw, sh, sw, dh, dw, Ho, Wo)
    cdef Py_ssize_t nkb = (K + 15) // 16, k1
    # 1x1 taps, every one inside the image: a scaled (strided) copy of the input plane, which
    # the padded copy and the tap loop made 3-6x slower (channel multipliers, stride 2)
    cdef bint one = (kh == 1 and kw == 1 and pt == 0 and pl == 0 and (Ho - 1) * sh < H
                     and (Wo - 1) * sw < W)
    # float32 with AVX-512, planes under 16 wide: flat runs of 16 pixels across rows, 16 planes
    # per task sharing one table of tap offsets and masks (padding taps are skipped, so no
    # weight test)
    cdef bint flat = (floating is float and not one
                      and dw_flat_supported(kh, kw, sh, sw, H, W, Ho, Wo)
                      and ws.shape[1] >= dw_flat_buffer_size(H, W, kh, kw, sh, Ho, Wo))
    cdef Py_ssize_t task, n, k, ho, q, tid
    cdef floating *buf
    cdef const floating *wk
    cdef floating b
    if N * K == 0:
        return
    cdef Py_ssize_t tab_n, sm_off
    cdef bint small16
    if flat:
        # the table of tap offsets and masks: one per call, at the start of thread 0's buffer;
        # every thread's phase planes follow it in its own, then its small16 buffer
        tab_n = dw_flat_table_size(kh, kw, Ho, Wo)
        sm_off = (dw_flat_buffer_size(H, W, kh, kw, sh, Ho, Wo) + 15) // 16 * 16
        # the 16-lane small-plane kernel where it was measured faster (_depthwise_kernel.h):
        # planes of at most 25 pixels, and 5x5 at stride 1 (or on at most 49 output pixels)
        small16 = (floating is float and m == 1 and _small16_mode
                   and (_small16_mode == 2 or Ho * Wo <= 25
                        or (kh * kw >= 25 and (sh == 1 or Ho * Wo <= 49)))
                   and dw_small16_supported(kh, kw, Wo)
                   and ws.shape[1] >= sm_off + dw_small16_buffer_size(H, W, kh, kw, sh, sw, dh,
                                                                      dw, Ho, Wo))
        if small16:
            dw_init_perm()
        dw_flat_build_table(<float *>&ws[0, 0], H, W, kh, kw, pt, pl, sh, dh, dw, Ho, Wo)
        with nogil, parallel(num_threads=nthreads):
            tid = threadid()
            for task in prange(N * nkb, schedule="static"):
                n = task // nkb
                k = (task - n * nkb) * 16
                k1 = k + 16 if k + 16 < K else K
                if small16 and dw_small16_f32(
                        <const float *>&x[n, k, 0, 0], H, W,
                        <const float *>&w[n if Nw > 1 else 0, k, 0],
                        <const float *>&bias[n if Nb > 1 else 0, k] if has_bias else NULL,
                        <float *>&out[n, k, 0, 0], k1 - k, kh, kw, sh, sw, pt, pl, dh, dw, Ho,
                        Wo, <float *>&ws[tid, sm_off], act):
                    continue
                dw_flat_planes_f32(<const float *>&x[n, 0, 0, 0], H, W,
                                   <const float *>&w[n if Nw > 1 else 0, 0, 0],
                                   <const float *>&bias[n if Nb > 1 else 0, 0]
                                   if has_bias else NULL,
                                   <float *>&out[n, 0, 0, 0], k, k1, m, kh, kw, sh, pt, pl, dh,
                                   dw, Ho, Wo, <const float *>&ws[0, 0],
                                   <float *>&ws[tid, tab_n], act)
        return
    # float32 with AVX-512, 5x5 at stride 1 on planes 16 to 40 wide: the 16-lane kernel, 16
    # planes a task (_depthwise_kernel.h); a task whose weights are not finite runs plane by plane
    cdef bint wide16 = (floating is float and m == 1 and _small16_mode and not one
                        and dw_small16_wide_supported(kh, kw, sh, sw, H, W, Wo)
                        and ws.shape[1] >= dw_small16_buffer_size(H, W, kh, kw, sh, sw, dh, dw,
                                                                  Ho, Wo))
    if wide16:
        dw_init_perm()
        with nogil, parallel(num_threads=nthreads):
            tid = threadid()
            for task in prange(N * nkb, schedule="static"):
                n = task // nkb
                k = (task - n * nkb) * 16
                k1 = k + 16 if k + 16 < K else K
                if dw_small16_f32(
                        <const float *>&x[n, k, 0, 0], H, W,
                        <const float *>&w[n if Nw > 1 else 0, k, 0],
                        <const float *>&bias[n if Nb > 1 else 0, k] if has_bias else NULL,
                        <float *>&out[n, k, 0, 0], k1 - k, kh, kw, sh, sw, pt, pl, dh, dw, Ho,
                        Wo, <float *>&ws[tid, 0], act):
                    continue
                while k < k1:  # a NaN or inf weight: the plane kernel, or the in-image taps
                    wk = &w[n if Nw > 1 else 0, k, 0]
                    b = bias[n if Nb > 1 else 0, k] if has_bias else 0
                    if fast and (not padded or _all_finite(wk, kh * kw, 1)):
                        dw_plane_f32(<const float *>&x[n, k, 0, 0], H, W, pt, pl,
                                     <const float *>wk, kh, <float>b, <float *>&out[n, k, 0, 0],
                                     Ho, Wo, act, sh)
                    else:
                        _direct_out(&x[n, k, 0, 0], 1, g, wk, 1, b, &out[n, k, 0, 0], 0,
                                    Ho * Wo)
                        if act:
                            _act_plane(&out[n, k, 0, 0], Ho * Wo, act)
                    k = k + 1
        return
    with nogil, parallel(num_threads=nthreads):
        tid = threadid()
        buf = &ws[tid, 0]
        for task in prange(N * K, schedule="static"):
            n = task // K
            k = task - n * K
            wk = &w[n if Nw > 1 else 0, k, 0]
            b = bias[n if Nb > 1 else 0, k] if has_bias else 0
            if one:
                _dw_one(&x[n, k // m, 0, 0], W, sh, sw, wk[0], b, &out[n, k, 0, 0], Ho, Wo)
                if act:
                    _act_plane(&out[n, k, 0, 0], Ho * Wo, act)
            elif fast and (not padded or _all_finite(wk, kh * kw, 1)):
                dw_plane_f32(<const float *>&x[n, k // m, 0, 0], H, W, pt, pl,
                             <const float *>wk, kh, <float>b, <float *>&out[n, k, 0, 0], Ho, Wo,
                             act, sh)
            elif blocked and (not padded or _all_finite(wk, kh * kw, 1)):
                _pad_plane(&x[n, k // m, 0, 0], H, W, pt, pl, buf, Hp, Wp)
                ho = 0
                while ho < Ho:
                    if ho + 2 > Ho:
                        ho = Ho - 2
                    q = 0
                    while q < Wo:
                        if q + bw > Wo:
                            q = Wo - bw
                        if bw == 32:
                            _dw_block(buf + ho * Wp + q, Wp, wk, kh, kw, dh, dw,
                                      &out[n, k, ho, q], Wo, b, 32)
                        else:
                            _dw_block(buf + ho * Wp + q, Wp, wk, kh, kw, dh, dw,
                                      &out[n, k, ho, q], Wo, b, 16)
                        q = q + bw
                    ho = ho + 2
                if act:
                    _act_plane(&out[n, k, 0, 0], Ho * Wo, act)
            else:
                _direct_out(&x[n, k // m, 0, 0], 1, g, wk, 1, b, &out[n, k, 0, 0], 0, Ho * Wo)
                if act:
                    _act_plane(&out[n, k, 0, 0], Ho * Wo, act)


def depthwise_plane_fast(const int64_t[::1] geo, dtype_char):
    """True when conv_depthwise_planes runs geo's planes in its AVX-512 4-row blocks straight
    from the input (float32, 3x3 or 5x5, stride 1 or 2, no dilation, planes at least 4 x 8)."""
    cdef const int64_t *g = &geo[0]
    return dtype_char == "f" and bool(dw_plane_supported(
        g[G_KH], g[G_KW], g[G_SH], g[G_SW], g[G_DH], g[G_DW], g[G_HO], g[G_WO]))


def depthwise_plane_flat(const int64_t[::1] geo, dtype_char):
    """True when conv_depthwise_planes runs geo's planes as flat runs of 16 pixels across rows
    (_depthwise_kernel.h: float32 with AVX-512, up to 25 taps, planes under 16 wide of at least
    16 pixels, stride 1 with Wo == W or stride 2 with ceil(W / 2) == Wo)."""
    cdef const int64_t *g = &geo[0]
    return dtype_char == "f" and bool(dw_flat_supported(
        g[G_KH], g[G_KW], g[G_SH], g[G_SW], g[G_H], g[G_W], g[G_HO], g[G_WO]))


def depthwise_planes_workspace(const int64_t[::1] geo):
    """Elements of workspace one thread of conv_depthwise_planes needs: one zero-padded plane,
    or the flat path's table and phase planes and the small16 buffer after them (a multiple of
    16: every thread's row starts on a line)."""
    cdef const int64_t *g = &geo[0]
    cdef int64_t padded = (g[G_HO] + g[G_DH] * (g[G_KH] - 1)) * (g[G_WO] + g[G_DW] * (g[G_KW] - 1))
    cdef int64_t flat = dw_flat_buffer_size(g[G_H], g[G_W], g[G_KH], g[G_KW], g[G_SH], g[G_HO],
                                            g[G_WO])
    if dw_flat_supported(g[G_KH], g[G_KW], g[G_SH], g[G_SW], g[G_H], g[G_W], g[G_HO], g[G_WO]):
        flat = (flat + 15) // 16 * 16 + dw_small16_buffer_size(
            g[G_H], g[G_W], g[G_KH], g[G_KW], g[G_SH], g[G_SW], g[G_DH], g[G_DW], g[G_HO],
            g[G_WO])
    elif dw_small16_wide_supported(g[G_KH], g[G_KW], g[G_SH], g[G_SW], g[G_H], g[G_W],
                                   g[G_WO]):
        flat = dw_small16_buffer_size(g[G_H], g[G_W], g[G_KH], g[G_KW], g[G_SH], g[G_SW],
                                      g[G_DH], g[G_DW], g[G_HO], g[G_WO])
    padded = padded if padded > flat else flat
    return (padded + 15) // 16 * 16


cdef int _small16_mode = 1


def _set_depthwise_small16(int on):
    """Whether conv_depthwise_planes's flat path runs 16-channel blocks of channel multiplier 1
    through dw_small16_f32 where it was measured faster (1, the default), wherever it can (2),
    or never: plane by plane (0); returns the previous setting.  For tests and measurements:
    all give the same bits."""
    global _small16_mode
    old = _small16_mode
    _small16_mode = on
    return old


def depthwise16_supported(dtype_char):
    """True when conv_depthwise16 runs here: float32 on a CPU with AVX-512F or AVX2+FMA."""
    return dtype_char == "f" and dw16_supported() == 1


def depthwise16_workspace(const int64_t[::1] geo):
    """Elements of workspace one thread of conv_depthwise16 needs: the 16 channels' zero-padded
    pixel-major planes and their weights (_depthwise_kernel.h)."""
    return _dw16_buffer(&geo[0])


def conv_depthwise16(const float[:, :, :, ::1] x, const float[:, :, ::1] w,
                     const float[:, ::1] bias, bint has_bias, const int64_t[::1] geo,
                     float[:, :, :, ::1] out, float[:, ::1] ws, int act, int nthreads):
    """Depthwise convolution (any channel multiplier, stride, dilation) with 16 channels in the
    AVX-512 lanes, float32: each task takes one sample's 16 output channels, transposed so the
    channels fill the vector lanes (_depthwise_kernel.h); act 1 (relu), 2 (relu6) or 3 (silu)
    on the store (0: none).  ws is (threads, depthwise16_workspace).
    Needs depthwise16_supported('f') (the planner checks).  Channel blocks whose weights hold a
    NaN or inf where some tap falls on padding are summed over in-image taps plane by plane."""
    # a memory-safety guard, not validation: the task fills a buffer of this size
    if (dw16_supported() != 1 or ws.shape[1] < _dw16_buffer(&geo[0])
            or ws.shape[0] < nthreads):
        raise ValueError("conv_depthwise16: CPU or workspace outside the kernel's preconditions")
    _depthwise16(x, w, bias, has_bias, geo, out, ws, act, nthreads)


cdef inline Py_ssize_t _dw16_buffer(const int64_t *g) noexcept nogil:
    cdef Py_ssize_t Hp = (g[G_HO] - 1) * g[G_SH] + g[G_DH] * (g[G_KH] - 1) + 1
    cdef Py_ssize_t Wp = (g[G_WO] - 1) * g[G_SW] + g[G_DW] * (g[G_KW] - 1) + 1
    return dw16_buffer_size(Hp, Wp, g[G_KH] * g[G_KW])


cdef void _depthwise16(const float[:, :, :, ::1] x, const float[:, :, ::1] w,
                       const float[:, ::1] bias, bint has_bias, const int64_t[::1] geo,
                       float[:, :, :, ::1] out, float[:, ::1] ws, int act, int nthreads):
    cdef const int64_t *g = &geo[0]
    cdef Py_ssize_t N = g[G_N], C = g[G_C], H = g[G_H], W = g[G_W], K = g[G_K]
    cdef Py_ssize_t kh = g[G_KH], kw = g[G_KW], sh = g[G_SH], sw = g[G_SW]
    cdef Py_ssize_t pt = g[G_PT], pl = g[G_PL], dh = g[G_DH], dw = g[G_DW]
    cdef Py_ssize_t Ho = g[G_HO], Wo = g[G_WO]
    cdef Py_ssize_t m = K // C, Nw = w.shape[0], Nb = bias.shape[0], taps = kh * kw
    cdef Py_ssize_t nkb = (K + 15) // 16, k0, nk, task, n, l, tid
    cdef bint padded = _padded(g)
    cdef const float *wn
    if N * K == 0:
        return
    dw_init_perm()
    with nogil, parallel(num_threads=nthreads):
        tid = threadid()
        for task in prange(N * nkb, schedule="dynamic"):
            n = task // nkb
            k0 = (task - n * nkb) * 16
            nk = K - k0 if K - k0 < 16 else 16
            wn = &w[n if Nw > 1 else 0, 0, 0]
            if padded and not _all_finite(wn + k0 * taps, nk * taps, 1):
                for l in range(nk):
                    _direct_out(&x[n, (k0 + l) // m, 0, 0], 1, g, wn + (k0 + l) * taps, 1,
                                bias[n if Nb > 1 else 0, k0 + l] if has_bias else 0,
                                &out[n, k0 + l, 0, 0], 0, Ho * Wo)
                    if act:
                        _act_plane(&out[n, k0 + l, 0, 0], Ho * Wo, act)
            else:
                dw16_task(&x[n, 0, 0, 0], H, W, wn,
                          &bias[n if Nb > 1 else 0, 0] if has_bias else NULL,
                          &out[n, 0, 0, 0], k0, nk, m, kh, kw, sh, sw, pt, pl, dh, dw,
                          Ho, Wo, &ws[tid, 0], act)


def grouped_supported(dtype_char):
    """True when conv_grouped runs here: float32 on a CPU with AVX-512F."""
    return dtype_char == "f" and fc_grouped_supported() == 1


def conv_grouped(const float[:, :, :, ::1] x, const float[:, :, :, ::1] wt,
                 const float[:, ::1] bias, bint has_bias, const int64_t[::1] geo,
                 float[:, :, :, ::1] out, float[:, ::1] ws, int nthreads):
    """Direct grouped convolution for small groups at stride 1 (ResNeXt's 32 groups of 8), float32.

    wt is (Nw, K/8, Cg*kh*kw, 8) from fastconv.conv.pack_grouped_weights (K/groups a multiple of 8);
    ws (threads, grouped_workspace) takes, per task (sample, group), the group's Cg zero-padded
    planes and the virtual output rows of 8 channels.  Blocks of 8 channels x 48 pixels of the
    output flattened at the padded width run in _grouped_kernel.h; the valid Wo columns of each
    row are then copied out.  Blocks of 8 channels whose weights hold a NaN or inf where some tap
    falls on padding are summed over in-image taps instead (torch's result; inf times a padding
    zero is NaN).  Needs grouped_supported('f') (the planner checks).
    """
    cdef const int64_t *g = &geo[0]
    cdef Py_ssize_t N = g[G_N], C = g[G_C], H = g[G_H], W = g[G_W], K = g[G_K], G = g[G_G]
    cdef Py_ssize_t kh = g[G_KH], kw = g[G_KW], pt = g[G_PT], pl = g[G_PL]
    cdef Py_ssize_t dh = g[G_DH], dw = g[G_DW], Ho = g[G_HO], Wo = g[G_WO]
    # rows are [gap zeros][W input columns]: the gap is the right padding of one row and the left
    # padding of the next, so virtual rows are W + max(pl, pr) wide, not W + pl + pr
    cdef Py_ssize_t gap = _grouped_gap(geo)
    cdef Py_ssize_t Hp = Ho + dh * (kh - 1), Wp = gap + W, plane = Hp * Wp
    cdef Py_ssize_t Cg = C // G, Kg = K // G, nvb = (Ho * Wp + 47) // 48, ldo = nvb * 48
    cdef Py_ssize_t Nw = wt.shape[0], Nb = bias.shape[0], slack = 48 + Wp + dw * (kw - 1)
    cdef Py_ssize_t task, n, grp, tid, c, kb, vb, k0, kk, ho
    cdef float *buf
    cdef float *zeros
    cdef float *vout
    cdef const float *wb
    cdef bint padded = _padded(g)
    if N * G == 0:
        return
    # a memory-safety guard, not validation: blocks write 8 channels of whole virtual rows
    if (Kg % 8 or g[G_SH] != 1 or g[G_SW] != 1
            or ws.shape[1] < grouped_workspace(geo) or ws.shape[0] < nthreads):
        raise ValueError("conv_grouped: geometry or workspace outside the kernel's preconditions")
    with nogil, parallel(num_threads=nthreads):
        tid = threadid()
        buf = &ws[tid, 0]
        zeros = buf + Cg * plane + slack  # 8 zero biases after the planes and their slack
        vout = zeros + 8
        for task in prange(N * G, schedule="dynamic"):
            n = task // G
            grp = task - n * G
            # the last blocks read up to 47 pixels and a row past the last plane: keep it finite
            memset(buf + Cg * plane, 0, (slack + 8) * sizeof(float))
            for c in range(Cg):
                _pad_plane(&x[n, grp * Cg + c, 0, 0], H, W, pt, gap, buf + c * plane, Hp, Wp)
            for kb in range(Kg // 8):
                k0 = grp * Kg + kb * 8
                wb = &wt[n if Nw > 1 else 0, k0 // 8, 0, 0]
                if padded and not _all_finite(wb, Cg * kh * kw * 8, 1):
                    # a non-finite weight would meet the padding zeros: direct summation
                    for kk in range(8):
                        _direct_out(&x[n, grp * Cg, 0, 0], Cg, g, wb + kk, 8,
                                    bias[n if Nb > 1 else 0, k0 + kk] if has_bias else 0,
                                    &out[n, k0 + kk, 0, 0], 0, Ho * Wo)
                    continue
                for vb in range(nvb):
                    fc_grouped_vblock(buf + (gap - pl) + vb * 48, plane, Wp,
                                      &wt[n if Nw > 1 else 0, k0 // 8, 0, 0], Cg, kh, kw, dh, dw,
                                      vout + vb * 48, ldo,
                                      &bias[n if Nb > 1 else 0, k0] if has_bias else zeros)
                for kk in range(8):
                    for ho in range(Ho):
                        memcpy(&out[n, k0 + kk, ho, 0], vout + kk * ldo + ho * Wp,
                               Wo * sizeof(float))


cdef inline Py_ssize_t _grouped_gap(const int64_t[::1] geo) noexcept nogil:
    # zeros between rows of conv_grouped's padded planes (stride 1): max(pl, pr), and wide enough
    # that a virtual row holds Wo outputs
    cdef Py_ssize_t W = geo[G_W], Wo = geo[G_WO], pl = geo[G_PL]
    cdef Py_ssize_t pr = Wo + geo[G_DW] * (geo[G_KW] - 1) - pl - W
    cdef Py_ssize_t gap = pl if pl > pr else pr
    return gap if gap > Wo - W else Wo - W


def grouped_workspace(const int64_t[::1] geo):
    """Elements of workspace one thread of this backend's conv_grouped needs: the padded planes,
    their slack, 8 zero biases and 8 virtual output rows."""
    cdef Py_ssize_t Cg = geo[G_C] // geo[G_G], Wp = _grouped_gap(geo) + geo[G_W]
    cdef Py_ssize_t Hp = geo[G_HO] + geo[G_DH] * (geo[G_KH] - 1)
    cdef Py_ssize_t nvb = (geo[G_HO] * Wp + 47) // 48
    return Cg * Hp * Wp + 48 + Wp + geo[G_DW] * (geo[G_KW] - 1) + 8 + 8 * nvb * 48


def conv_gemm_workspace(Py_ssize_t R, Py_ssize_t Kg, Py_ssize_t tile):
    """Elements of workspace one thread of this backend's conv_gemm needs."""
    return R * tile


def phase_split(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] xs, int dh, int dw,
                int nthreads):
    """xs[(a*dw + b)*N + n, c, i, j] = x[n, c, a + dh*i, b + dw*j]: the dh*dw phase sub-images of
    every plane, stacked as a batch (H and W multiples of dh and dw; xs is (dh*dw*N, C, H/dh, W/dw)).
    A dilated stride-1 convolution is an undilated one on each (ConvGeometry.dilation_phases)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t Ha = H // dh, Wa = W // dw, p, n, c, y, a, b, i, j
    cdef const floating *row
    cdef floating *dst
    with nogil:
        for p in prange(N * C, schedule="static", num_threads=nthreads):
            n = p // C
            c = p - n * C
            for y in range(Ha * dh):
                a = y % dh
                i = y // dh
                row = &x[n, c, y, 0]
                for b in range(dw):
                    dst = &xs[(a * dw + b) * N + n, c, i, 0]
                    for j in range(Wa):
                        dst[j] = row[b + dw * j]


def phase_merge(const floating[:, :, :, ::1] ys, floating[:, :, :, ::1] out, int dh, int dw,
                int nthreads):
    """out[n, k, r + dh*i, c + dw*j] = ys[(r*dw + c)*N + n, k, i, j]: phase_split's inverse, for
    the outputs (Ho and Wo multiples of dh and dw)."""
    cdef Py_ssize_t N = out.shape[0], K = out.shape[1], Ho = out.shape[2], Wo = out.shape[3]
    cdef Py_ssize_t Hr = Ho // dh, Wr = Wo // dw, p, n, k, y, r, c, i, j
    cdef const floating *src
    cdef floating *row
    with nogil:
        for p in prange(N * K, schedule="static", num_threads=nthreads):
            n = p // K
            k = p - n * K
            for y in range(Hr * dh):
                r = y % dh
                i = y // dh
                row = &out[n, k, y, 0]
                for c in range(dw):
                    src = &ys[(r * dw + c) * N + n, k, i, 0]
                    for j in range(Wr):
                        row[c + dw * j] = src[j]



DEF _EPI_CHUNK = 16384


def conv_epilogue(floating[::1] out, const floating[::1] residual, bint has_residual, int act,
                  int nthreads):
    """out = act(out + residual) in one pass, in place: act 0 none, 1 relu, 2 relu6 (clip to
    [0, 6]), 3 silu (x / (1 + exp(-x)); codes: fastconv._geometry.ACTIVATIONS).  NaN stays NaN, as torch's relu and hardtanh
    keep it (_epilogue_kernel.h)."""
    cdef Py_ssize_t n = out.shape[0], nchunks = (n + _EPI_CHUNK - 1) // _EPI_CHUNK, ch, i0, i1
    cdef floating *o
    cdef const floating *r = NULL
    if n == 0:
        return
    o = &out[0]
    if has_residual:
        r = &residual[0]
    with nogil:
        for ch in prange(nchunks, schedule="static", num_threads=nthreads):
            i0 = ch * _EPI_CHUNK
            i1 = i0 + _EPI_CHUNK if i0 + _EPI_CHUNK < n else n
            if floating is float:
                fc_epilogue_f32(o, r, i0, i1, act)
            else:
                fc_epilogue_f64(o, r, i0, i1, act)



cdef extern from "_pool_kernel.h" nogil:
    int64_t fc_maxpool_buffer_size(int64_t Wo)
    void fc_maxpool_plane_f32(const float *x, int64_t H, int64_t W, float *out, int64_t Ho,
                              int64_t Wo, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                              int64_t pt, int64_t pl, float *hb)
    void fc_maxpool_plane_f64(const double *x, int64_t H, int64_t W, double *out, int64_t Ho,
                              int64_t Wo, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                              int64_t pt, int64_t pl)
    float fc_plane_mean_f32(const float *x, int64_t n)
    double fc_plane_mean_f64(const double *x, int64_t n)
    void fc_plane_scale_f32(float *x, int64_t n, float s)
    void fc_plane_scale_f64(double *x, int64_t n, double s)


def max_pool2d_workspace(Py_ssize_t Wo):
    """Elements of workspace one thread of max_pool2d needs (float32's row buffer)."""
    return fc_maxpool_buffer_size(Wo)


def max_pool2d(const floating[:, :, :, ::1] x, floating[:, :, :, ::1] out, Py_ssize_t kh,
               Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t pt, Py_ssize_t pl,
               floating[:, ::1] ws, int nthreads):
    """out[n, c, oy, ox] = the largest of x[n, c, oy*sh - pt + i, ox*sw - pl + j] over the taps
    that fall in the image (padding never wins), NaN where one of them is NaN (torch's
    max_pool2d); out's Ho x Wo are the caller's.  One task per plane; ws: (nthreads,
    max_pool2d_workspace(Wo)) (_pool_kernel.h)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef Py_ssize_t Ho = out.shape[2], Wo = out.shape[3], p, n, c, tid
    if N * C * Ho * Wo == 0:
        return
    with nogil, parallel(num_threads=nthreads):
        tid = threadid()
        for p in prange(N * C, schedule="static"):
            n = p // C
            c = p - n * C
            if floating is float:
                fc_maxpool_plane_f32(&x[n, c, 0, 0], H, W, &out[n, c, 0, 0], Ho, Wo, kh, kw, sh,
                                     sw, pt, pl, &ws[tid, 0])
            else:
                fc_maxpool_plane_f64(&x[n, c, 0, 0], H, W, &out[n, c, 0, 0], Ho, Wo, kh, kw, sh,
                                     sw, pt, pl)


def plane_means(const floating[:, :, :, ::1] x, floating[:, ::1] out, int nthreads):
    """out[n, c] = the mean of plane x[n, c] (global average pooling), summed in double; one task
    per plane."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], P = x.shape[2] * x.shape[3], p, n, c
    if N * C == 0 or P == 0:
        return
    with nogil:
        for p in prange(N * C, schedule="static", num_threads=nthreads):
            n = p // C
            c = p - n * C
            if floating is float:
                out[n, c] = fc_plane_mean_f32(&x[n, c, 0, 0], P)
            else:
                out[n, c] = fc_plane_mean_f64(&x[n, c, 0, 0], P)


def scale_planes(floating[:, :, :, ::1] x, const floating[:, ::1] s, int nthreads):
    """x[n, c] *= s[n, c] in place (a squeeze-excitation gate); one task per plane."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], P = x.shape[2] * x.shape[3], p, n, c
    if N * C == 0 or P == 0:
        return
    with nogil:
        for p in prange(N * C, schedule="static", num_threads=nthreads):
            n = p // C
            c = p - n * C
            if floating is float:
                fc_plane_scale_f32(&x[n, c, 0, 0], P, s[n, c])
            else:
                fc_plane_scale_f64(&x[n, c, 0, 0], P, s[n, c])
