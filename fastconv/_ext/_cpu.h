/* Run-time CPU checks shared by the kernel headers (AVX-512 and AVX2 code is compiled through
   target attributes, never -march, and chosen here).  Each is cached per module.
   FASTCONV_NO_AVX512 / FASTCONV_NO_AVX2 (any value) force the portable path, to test it on any
   machine. */
#ifndef FASTCONV_CPU_H
#define FASTCONV_CPU_H

#include <stdlib.h>

#if defined(__GNUC__) && defined(__x86_64__)
static inline int fastconv_have_avx512(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && !getenv("FASTCONV_NO_AVX512") ? 1 : 0;
    }
    return cached;
}
static inline int fastconv_have_avx2_fma(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                         !getenv("FASTCONV_NO_AVX2")
                     ? 1
                     : 0;
    }
    return cached;
}
#else
static inline int fastconv_have_avx512(void) { return 0; }
static inline int fastconv_have_avx2_fma(void) { return 0; }
#endif

#endif /* FASTCONV_CPU_H */
