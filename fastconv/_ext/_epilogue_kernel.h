/* conv2d's fused epilogue, out = act(out + residual), over one chunk [i0, i1): act 0 none, 1 relu,
 * 2 relu6, 3 silu (x / (1 + exp(-x)), torch's SiLU / swish).  Written as compare-and-select so NaN stays NaN (both comparisons are false for it,
 * as torch's relu and hardtanh propagate it); gcc vectorises the loops into compares and blends.
 * No allocation, no validation, no OpenMP: the caller splits the chunks across threads. */
#ifndef FASTCONV_EPILOGUE_KERNEL_H
#define FASTCONV_EPILOGUE_KERNEL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_cpu.h"

/* exp(t) for float32 in straight-line code gcc vectorises (libm's expf is a call per element):
 * Cephes' expf, range reduction by n = round(t / ln 2) in two parts and a degree-6 polynomial,
 * within 2 ulp of expf on [-86.5, 88.72]; t > 88.72 gives inf and t < -86.5 gives 0, so x / (1 + exp(-x))
 * is -0 for large negative x and NaN for x = -inf, as with libm (NaN in, NaN out via x). */
static inline float fc_expf(float t) {
    float big = t > 88.72f ? 1.0f : 0.0f, tiny = t < -86.5f ? 1.0f : 0.0f;
    t = t > 88.72f ? 88.72f : (t < -86.5f ? -86.5f : t);
    t = t == t ? t : 0.0f;  /* NaN: any finite value; the caller's x carries the NaN */
    /* round to nearest by the 1.5 * 2^23 shift (floorf is a libm call gcc does not vectorise;
     * without -ffast-math, gcc keeps (a + c) - c as written) */
    float n = (t * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = t - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 126) << 23;  /* 2^(n-1): n reaches 128 below the overflow */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    float e = p * scale * 2.0f;
    e = big != 0.0f ? INFINITY : e;
    return tiny != 0.0f ? 0.0f : e;
}
static inline float fc_silu_f32(float v) { return v / (1.0f + fc_expf(-v)); }
static inline double fc_silu_f64(double v) { return v / (1.0 + exp(-v)); }

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define FC_SILU_AVX512 1
#define FC_SILU_TARGET __attribute__((target("avx512f")))
/* silu on 16 lanes, AVX-512: fc_expf's reduction and polynomial in FMAs, 2^n by vscalefps (which
 * overflows to inf and underflows to 0 by itself), so no integer shifts, clamps on both results or
 * per-lane selects.  The loop gcc made of fc_silu_f32 ran 2.1 elements per ns, this 3.8 (Zen 4;
 * EfficientNet's 5x5 depthwise layers spent a third of their time in the pass); it is the
 * kernels' and the pass's code on AVX-512 CPUs.  -x is clamped to [-104, 88.8] first: NaN becomes -104 (vmaxps returns its
 * second operand) and x carries the NaN; e^88.8 overflows to inf, so x = -inf gives -inf / inf =
 * NaN and large negative x gives -0, as fc_silu_f32 and libm do. */
static inline FC_SILU_TARGET __m512 fc_silu16(__m512 x) {
    __m512 t = _mm512_sub_ps(_mm512_setzero_ps(), x);
    t = _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(88.8f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), t);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    const __m512 one = _mm512_set1_ps(1.0f);
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, one));
    /* a division, not vrcp14ps and a Newton step: that ran 2x slower here (denormal
       reciprocals for large |x|) and needs a fix-up where 1 + e^-x is inf */
    return _mm512_div_ps(x, _mm512_add_ps(one, _mm512_scalef_ps(p, n)));
}
/* out[i] = silu(out[i] (+ res[i])) for i in [i0, i1): whole vectors and one masked tail */
static FC_SILU_TARGET void fc_silu_pass_avx512(float *out, const float *res, int64_t i0,
                                               int64_t i1) {
    for (int64_t i = i0; i < i1; i += 16) {
        __mmask16 m = i + 16 <= i1 ? (__mmask16)0xFFFF : (__mmask16)((1u << (i1 - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, out + i);
        if (res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, res + i));
        v = fc_silu16(v);
        if (m == (__mmask16)0xFFFF)
            _mm512_storeu_ps(out + i, v);
        else
            _mm512_mask_storeu_ps(out + i, m, v);
    }
}
#else
#define FC_SILU_AVX512 0
static inline void fc_silu_pass_avx512(float *out, const float *res, int64_t i0, int64_t i1) {
    (void)out; (void)res; (void)i0; (void)i1;
}
#endif

#define FC_EPILOGUE(T, SFX, SILU)                                                                      \
static inline void fc_epilogue_##SFX(T *restrict out, const T *restrict res, int64_t i0,          \
                                     int64_t i1, int act) {                                        \
    if (res) {                                                                                     \
        if (act == 1)                                                                              \
            for (int64_t i = i0; i < i1; i++) {                                                    \
                T v = out[i] + res[i];                                                             \
                out[i] = v < 0 ? (T)0 : v;                                                         \
            }                                                                                      \
        else if (act == 2)                                                                         \
            for (int64_t i = i0; i < i1; i++) {                                                    \
                T v = out[i] + res[i];                                                             \
                v = v < 0 ? (T)0 : v;                                                              \
                out[i] = v > 6 ? (T)6 : v;                                                         \
            }                                                                                      \
        else if (act == 3)                                                                         \
            for (int64_t i = i0; i < i1; i++) out[i] = SILU(out[i] + res[i]);                      \
        else                                                                                       \
            for (int64_t i = i0; i < i1; i++) out[i] += res[i];                                    \
    } else if (act == 1) {                                                                         \
        for (int64_t i = i0; i < i1; i++) {                                                        \
            T v = out[i];                                                                          \
            out[i] = v < 0 ? (T)0 : v;                                                             \
        }                                                                                          \
    } else if (act == 2) {                                                                         \
        for (int64_t i = i0; i < i1; i++) {                                                        \
            T v = out[i];                                                                          \
            v = v < 0 ? (T)0 : v;                                                                  \
            out[i] = v > 6 ? (T)6 : v;                                                             \
        }                                                                                          \
    } else if (act == 3) {                                                                         \
        for (int64_t i = i0; i < i1; i++) out[i] = SILU(out[i]);                                   \
    }                                                                                              \
}
FC_EPILOGUE(float, f32_loop, fc_silu_f32)
FC_EPILOGUE(double, f64, fc_silu_f64)

/* float32: silu by fc_silu16 where AVX-512 runs (the kernels' in-register silu is the same code) */
static inline void fc_epilogue_f32(float *restrict out, const float *restrict res, int64_t i0,
                                   int64_t i1, int act) {
    if (act == 3 && fastconv_have_avx512())
        fc_silu_pass_avx512(out, res, i0, i1);
    else
        fc_epilogue_f32_loop(out, res, i0, i1, act);
}

#endif /* FASTCONV_EPILOGUE_KERNEL_H */
