/* Pooling for fastconv, one plane at a time: max pooling NaN-propagating as torch's max_pool2d,
 * and global average pooling with its companion, the per-plane scale (a squeeze-excitation
 * gate).
 * The 3x3 stride-2 window (ResNet's stem) runs as two vector passes, AVX-512: each input row's
 * horizontal maxima of 3 at stride 2 (even lanes, odd lanes, and the odd lanes one pixel left,
 * from two loads and three permutes), then the vertical maxima of 3 rows; every other window
 * takes the scalar loop.  Padding never wins (out-of-image lanes read -inf).  No allocation, no
 * validation, no OpenMP: the caller runs planes in parallel and passes the row buffer. */
#ifndef FASTCONV_POOL_KERNEL_H
#define FASTCONV_POOL_KERNEL_H

#include <math.h>
#include <stdint.h>

#include "_cpu.h"

/* the scalar window loop, any geometry: the largest in-image tap, NaN if one is NaN */
#define FC_POOL_SCALAR(T, SFX)                                                                  \
static void fc_maxpool_plane_##SFX(const T *x, int64_t H, int64_t W, T *out, int64_t Ho,        \
                                   int64_t Wo, int64_t kh, int64_t kw, int64_t sh, int64_t sw,  \
                                   int64_t pt, int64_t pl) {                                    \
    for (int64_t oy = 0; oy < Ho; oy++) {                                                       \
        int64_t y0 = oy * sh - pt, ylo = y0 > 0 ? y0 : 0, yhi = y0 + kh < H ? y0 + kh : H;     \
        for (int64_t ox = 0; ox < Wo; ox++) {                                                   \
            int64_t x0 = ox * sw - pl, xlo = x0 > 0 ? x0 : 0, xhi = x0 + kw < W ? x0 + kw : W; \
            T m = x[ylo * W + xlo];                                                             \
            for (int64_t yy = ylo; yy < yhi; yy++)                                              \
                for (int64_t xx = xlo; xx < xhi; xx++) {                                        \
                    T v = x[yy * W + xx];                                                       \
                    if (v > m || v != v) m = v; /* NaN sticks: nothing is greater */          \
                }                                                                               \
            out[oy * Wo + ox] = m;                                                              \
        }                                                                                       \
    }                                                                                           \
}
FC_POOL_SCALAR(float, f32_scalar)
FC_POOL_SCALAR(double, f64)

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define FC_POOL_TARGET __attribute__((target("avx512f")))

/* max(a, b), NaN if either is (vmaxps returns b when a is NaN) */
static inline FC_POOL_TARGET __m512 fc_nmax16(__m512 a, __m512 b) {
    return _mm512_mask_mov_ps(_mm512_max_ps(a, b), _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q), a);
}
static inline FC_POOL_TARGET __mmask16 fc_pool_lanes(int64_t lo, int64_t hi) {
    /* lanes l with lo <= l < hi */
    if (hi <= 0 || lo >= 16) return 0;
    uint32_t m = hi >= 16 ? 0xFFFFu : ((1u << hi) - 1);
    if (lo > 0) m &= ~((1u << lo) - 1);
    return (__mmask16)m;
}
/* 16 floats from r + s, lanes outside [0, W) of the row read -inf */
static inline FC_POOL_TARGET __m512 fc_pool_load(const float *r, int64_t s, int64_t W) {
    return _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), fc_pool_lanes(-s, W - s), r + s);
}
/* 3x3, stride 2, padding 1 (any H, W: Ho = (H - 1) / 2 + 1, Wo likewise).  hb: 3 * (Wo + 16)
 * floats, the horizontal maxima of the three input rows an output row reads. */
static FC_POOL_TARGET void fc_maxpool3s2_plane_avx512(const float *x, int64_t H, int64_t W,
                                                      float *out, int64_t Ho, int64_t Wo,
                                                      float *hb) {
    const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i od = _mm512_add_epi32(ev, _mm512_set1_epi32(1));
    const int64_t ld = Wo + 16;
    for (int64_t oy = 0; oy < Ho; oy++) {
        int nr = 0;
        for (int64_t y = 2 * oy - 1; y <= 2 * oy + 1; y++) {
            if (y < 0 || y >= H) continue;
            const float *r = x + y * W;
            float *h = hb + nr * ld;
            for (int64_t o0 = 0; o0 < Wo; o0 += 16) {
                int64_t s = 2 * o0;  /* output o0 + k reads pixels s + 2k - 1 .. s + 2k + 1 */
                __m512 a = fc_pool_load(r, s, W), b = fc_pool_load(r, s + 16, W);
                __m512 a1 = fc_pool_load(r, s - 1, W), b1 = fc_pool_load(r, s + 15, W);
                __m512 e = _mm512_permutex2var_ps(a, ev, b);    /* pixel s + 2k */
                __m512 o = _mm512_permutex2var_ps(a, od, b);    /* s + 2k + 1 */
                __m512 l = _mm512_permutex2var_ps(a1, ev, b1);  /* s + 2k - 1 */
                _mm512_storeu_ps(h + o0, fc_nmax16(fc_nmax16(l, e), o));
            }
            nr++;
        }
        float *orow = out + oy * Wo;
        for (int64_t o0 = 0; o0 < Wo; o0 += 16) {
            __m512 m = _mm512_loadu_ps(hb + o0);
            for (int q = 1; q < nr; q++) m = fc_nmax16(m, _mm512_loadu_ps(hb + q * ld + o0));
            __mmask16 k = fc_pool_lanes(0, Wo - o0);
            if (k == (__mmask16)0xFFFF)
                _mm512_storeu_ps(orow + o0, m);
            else
                _mm512_mask_storeu_ps(orow + o0, k, m);
        }
    }
}
#endif

/* elements of the row buffer fc_maxpool_plane_f32 needs per thread */
static inline int64_t fc_maxpool_buffer_size(int64_t Wo) { return 3 * (Wo + 16) + 16; }

/* one plane, float32: the vector passes where they apply (3x3, stride 2, padding 1, the
 * output size they give), else the scalar loop */
static void fc_maxpool_plane_f32(const float *x, int64_t H, int64_t W, float *out, int64_t Ho,
                                 int64_t Wo, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                                 int64_t pt, int64_t pl, float *hb) {
#if defined(__GNUC__) && defined(__x86_64__)
    if (kh == 3 && kw == 3 && sh == 2 && sw == 2 && pt == 1 && pl == 1 && Ho == (H - 1) / 2 + 1 &&
        Wo == (W - 1) / 2 + 1 && fastconv_have_avx512()) {
        fc_maxpool3s2_plane_avx512(x, H, W, out, Ho, Wo, hb);
        return;
    }
#endif
    (void)hb;
    fc_maxpool_plane_f32_scalar(x, H, W, out, Ho, Wo, kh, kw, sh, sw, pt, pl);
}

/* the mean of n values, summed in 8 double lanes (gcc vectorises the independent lanes) */
#define FC_PLANE_MEAN(T, SFX)                                                                   \
static T fc_plane_mean_##SFX(const T *x, int64_t n) {                                          \
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                   \
    int64_t i = 0;                                                                              \
    for (; i + 8 <= n; i += 8)                                                                  \
        for (int j = 0; j < 8; j++) acc[j] += (double)x[i + j];                                 \
    double t = 0;                                                                               \
    for (; i < n; i++) t += (double)x[i];                                                       \
    for (int j = 0; j < 8; j++) t += acc[j];                                                    \
    return (T)(t / (double)n);                                                                  \
}                                                                                               \
static void fc_plane_scale_##SFX(T *x, int64_t n, T s) {                                        \
    for (int64_t i = 0; i < n; i++) x[i] *= s;                                                  \
}
FC_PLANE_MEAN(float, f32)
FC_PLANE_MEAN(double, f64)

#endif
