/* conv2d's fused epilogue, out = act(out + residual), over one chunk [i0, i1): act 0 none, 1 relu,
 * 2 relu6.  Written as compare-and-select so NaN stays NaN (both comparisons are false for it,
 * as torch's relu and hardtanh propagate it); gcc vectorises the loops into compares and blends.
 * No allocation, no validation, no OpenMP: the caller splits the chunks across threads. */
#ifndef FASTCONV_EPILOGUE_KERNEL_H
#define FASTCONV_EPILOGUE_KERNEL_H

#include <stdint.h>

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
    }                                                                                              \
}
FC_EPILOGUE(float, f32)
FC_EPILOGUE(double, f64)

#endif /* FASTCONV_EPILOGUE_KERNEL_H */
