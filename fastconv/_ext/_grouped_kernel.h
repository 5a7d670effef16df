/* Direct grouped convolution for small groups (ResNeXt: 32 groups of 8 -> 8 channels), float32.

   One call computes a block of 8 output channels x 48 output pixels of the output flattened at
   the padded row width, held in 24 zmm accumulators across all Cg*kh*kw taps: per tap three input
   loads and 8 weight broadcasts feed 24 FMAs.  The input is a zero-padded copy of the group's
   planes, so no tap needs a bounds test.  AVX-512 through a target attribute and a run-time CPU check, never -march: the
   portable caller falls back to another algorithm when fc_grouped_supported() is 0.
*/
#ifndef FASTCONV_GROUPED_KERNEL_H
#define FASTCONV_GROUPED_KERNEL_H

#include <stdint.h>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

static inline int fc_grouped_supported(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") ? 1 : 0;
    }
    return cached;
}

/* One block of 8 output channels x 48 "virtual" pixels: the output flattened with the padded
   row width Wp (virtual pixel v = ho*Wp + wo; the Wp - Wo columns past each row are junk), so every
   tap is one offset into the padded planes and the 48 pixels three plain vector loads, whatever
   the image width (28-wide ResNeXt rows wasted 4 of every 32 lanes in 16-pixel blocks).
   24 zmm accumulators per 8 weight broadcasts.  xp: the block's first pixel in the padded planes
   (plane stride `plane`); wt: the 8 channels' weights, tap-major; o: virtual output rows of the 8
   channels, `ldo` apart, written whole (plain stores); bias8: 8 biases. */
__attribute__((target("avx512f,fma")))
static void fc_grouped_vblock(const float *xp, int64_t plane, int64_t Wp, const float *wt,
                              int64_t Cg, int64_t kh, int64_t kw, int64_t dh, int64_t dw,
                              float *o, int64_t ldo, const float *bias8) {
    __m512 a0[8], a1[8], a2[8];
#pragma GCC unroll 8
    for (int kk = 0; kk < 8; kk++) {
        a0[kk] = _mm512_set1_ps(bias8[kk]);
        a1[kk] = a0[kk];
        a2[kk] = a0[kk];
    }
    const float *w = wt;
    for (int64_t c = 0; c < Cg; c++) {
        for (int64_t i = 0; i < kh; i++) {
            const float *r0 = xp + c * plane + i * dh * Wp;
            for (int64_t j = 0; j < kw; j++) {
                const float *r = r0 + j * dw;
                __m512 x0 = _mm512_loadu_ps(r), x1 = _mm512_loadu_ps(r + 16);
                __m512 x2 = _mm512_loadu_ps(r + 32);
#pragma GCC unroll 8
                for (int kk = 0; kk < 8; kk++) {
                    __m512 wv = _mm512_set1_ps(w[kk]);
                    a0[kk] = _mm512_fmadd_ps(wv, x0, a0[kk]);
                    a1[kk] = _mm512_fmadd_ps(wv, x1, a1[kk]);
                    a2[kk] = _mm512_fmadd_ps(wv, x2, a2[kk]);
                }
                w += 8;
            }
        }
    }
#pragma GCC unroll 8
    for (int kk = 0; kk < 8; kk++) {
        _mm512_storeu_ps(o + kk * ldo, a0[kk]);
        _mm512_storeu_ps(o + kk * ldo + 16, a1[kk]);
        _mm512_storeu_ps(o + kk * ldo + 32, a2[kk]);
    }
}

#else
static inline int fc_grouped_supported(void) { return 0; }
static void fc_grouped_vblock(const float *xp, int64_t plane, int64_t Wp, const float *wt,
                              int64_t Cg, int64_t kh, int64_t kw, int64_t dh, int64_t dw,
                              float *o, int64_t ldo, const float *bias8) {
    (void)xp; (void)plane; (void)Wp; (void)wt; (void)Cg; (void)kh; (void)kw; (void)dh; (void)dw;
    (void)o; (void)ldo; (void)bias8;
}
#endif

#endif
