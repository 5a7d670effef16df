/* conv2d's fused epilogue, out = act(out + residual), over one chunk [i0, i1): act 0 none, 1 relu,
 * 2 relu6, 3 silu (x / (1 + exp(-x)), torch's SiLU / swish).  Written as compare-and-select so NaN stays NaN (both comparisons are false for it,
 * as torch's relu and hardtanh propagate it); gcc vectorises the loops into compares and blends.
 * No allocation, no validation, no OpenMP: the caller splits the chunks across threads. */
#ifndef FASTCONV_EPILOGUE_KERNEL_H
#define FASTCONV_EPILOGUE_KERNEL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

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

#define FC_EPILOGUE(T, SFX)                                                                        \
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
            for (int64_t i = i0; i < i1; i++) out[i] = fc_silu_##SFX(out[i] + res[i]);             \
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
        for (int64_t i = i0; i < i1; i++) out[i] = fc_silu_##SFX(out[i]);                          \
    }                                                                                              \
}
FC_EPILOGUE(float, f32)
FC_EPILOGUE(double, f64)

#endif /* FASTCONV_EPILOGUE_KERNEL_H */
