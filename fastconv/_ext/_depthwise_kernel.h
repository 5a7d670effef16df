/* Depthwise convolution with 16 channels in the vector lanes, float32 AVX-512 (or AVX2+FMA as two
   8-lane halves).

   Per task (one sample, 16 output channels): the 16 input planes they read are transposed into a
   zero-padded pixel-major buffer P[Hp][Wp][16] (16x16 in-register transposes), so every tap of
   every output pixel is one full-vector FMA whatever the plane size, stride or dilation; blocks of
   16 output pixels along a row are transposed back and stored per channel.  The plane-by-plane
   kernel spends a small plane's time on its padding copy and edges (MobileNet's 28-, 14- and
   7-pixel layers ran 3-5x torch's time); here those costs are per 16 channels.
   AVX-512 / AVX2 through target attributes and a run-time CPU check, never -march.
*/
#ifndef FASTCONV_DEPTHWISE_KERNEL_H
#define FASTCONV_DEPTHWISE_KERNEL_H

#include <stdint.h>
#include <string.h>

#include "_epilogue_kernel.h"
#include "_transpose16.h"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define DW_TARGET __attribute__((target("avx512f")))

#define DW2_TARGET __attribute__((target("avx2,fma")))

static inline int dw16_avx512(void) { return fastconv_have_avx512(); }
static inline int dw16_avx2(void) { return fastconv_have_avx2_fma(); }
/* the 16-lane layout runs with AVX-512, or with AVX2+FMA as two 8-lane halves */
static inline int dw16_supported(void) { return dw16_avx512() || dw16_avx2(); }

/* conv2d's activation on one vector as the kernels store it: 1 relu, 2 relu6 (compare-and-
 * select: NaN stays NaN), 3 silu (_epilogue_kernel.h's fc_silu16, the pass's code) */
static inline DW_TARGET __m512 dw_act16(__m512 t, int act) {
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
    if (act == 3) return fc_silu16(t);
    if (act) t = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(t, zero, _CMP_LT_OQ), t, zero);
    if (act == 2) t = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(t, six, _CMP_GT_OQ), t, six);
    return t;
}


/* Which transposed vector holds element j: the network above leaves them permuted. */
static int dw_perm[16];
static int dw_perm_ready = 0;
static DW_TARGET void dw_init_perm_avx512(void) {
    if (dw_perm_ready) return;
    __m512 r[16];
    float buf[16];
    for (int i = 0; i < 16; i++) {
        for (int j = 0; j < 16; j++) buf[j] = (float)(i * 16 + j);
        r[i] = _mm512_loadu_ps(buf);
    }
    fc_transpose16(r);
    for (int v = 0; v < 16; v++) {
        _mm512_storeu_ps(buf, r[v]);
        dw_perm[(int)buf[0] % 16] = v;  /* vector v holds element (buf[0] % 16) of each row */
    }
    dw_perm_ready = 1;
}

static inline void dw_init_perm(void) {
    if (dw16_avx512()) dw_init_perm_avx512();
}

/* Elements of the per-thread buffer: the padded pixel-major planes plus 16 weights per tap. */
static inline int64_t dw16_buffer_size(int64_t Hp, int64_t Wp, int64_t taps) {
    return Hp * Wp * 16 + taps * 16 + 16;
}

/* One task: sample n, output channels [k0, k0 + 16) (nk <= 16 of them valid).
   x: the sample's C input planes (H x W); w: (K, kh*kw) weights of this sample; bias: K or NULL;
   out: the sample's K output planes; m: channel multiplier (output k reads input k / m). */
static DW_TARGET void dw16_task_avx512(const float *x, int64_t H, int64_t W, const float *w,
                                       const float *bias, float *out, int64_t k0, int64_t nk,
                                       int64_t m, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                                       int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t Ho,
                                       int64_t Wo, float *buf, int act) {
    int64_t Hp = (Ho - 1) * sh + dh * (kh - 1) + 1, Wp = (Wo - 1) * sw + dw * (kw - 1) + 1;
    int64_t taps = kh * kw;
    float *P = buf, *wt = buf + Hp * Wp * 16;
    const float *src[16];
    for (int l = 0; l < 16; l++) src[l] = x + ((k0 + (l < nk ? l : nk - 1)) / m) * H * W;
    /* weights: wt[tap][lane] */
    for (int64_t t = 0; t < taps; t++)
        for (int l = 0; l < 16; l++) wt[t * 16 + l] = l < nk ? w[(k0 + l) * taps + t] : 0.0f;
    /* P: zero border, transposed interior */
    const __m512 z = _mm512_setzero_ps();
    for (int64_t y = 0; y < Hp; y++) {
        int64_t iy = y - pt;
        float *prow = P + y * Wp * 16;
        if (iy < 0 || iy >= H) {
            for (int64_t xx = 0; xx < Wp; xx++) _mm512_storeu_ps(prow + xx * 16, z);
            continue;
        }
        /* columns of P left and right of the input */
        int64_t c0 = pl < Wp ? pl : Wp, c1 = pl + W < Wp ? pl + W : Wp;
        for (int64_t xx = 0; xx < c0; xx++) _mm512_storeu_ps(prow + xx * 16, z);
        for (int64_t xx = c1; xx < Wp; xx++) _mm512_storeu_ps(prow + xx * 16, z);
        /* input columns [ix0, ix1) land at P columns ix + pl */
        int64_t ix0 = c0 - pl, ix1 = c1 - pl;
        for (int64_t ix = ix0; ix < ix1; ix += 16) {
            int64_t n = ix1 - ix < 16 ? ix1 - ix : 16;
            __mmask16 mk = (__mmask16)((1u << n) - 1);
            __m512 r[16];
            for (int l = 0; l < 16; l++) r[l] = _mm512_maskz_loadu_ps(mk, src[l] + iy * W + ix);
            fc_transpose16(r);
            for (int64_t j = 0; j < n; j++)
                _mm512_storeu_ps(prow + (ix + pl + j) * 16, r[dw_perm[j]]);
        }
    }
    __m512 bv = z;
    if (bias) {
        float b16[16];
        for (int l = 0; l < 16; l++) b16[l] = l < nk ? bias[k0 + l] : 0.0f;
        bv = _mm512_loadu_ps(b16);
    }
    /* blocks of 16 output pixels along a row; the last block overlaps the previous one (outputs
       recomputed identically), or on rows under 16 pixels is masked at the store */
    for (int64_t ho = 0; ho < Ho; ho++) {
        for (int64_t q0 = 0; q0 < Wo; q0 += 16) {
            int64_t q = q0, np = 16;
            if (Wo < 16)
                np = Wo;
            else if (q + 16 > Wo)
                q = Wo - 16;
            __m512 acc[16];
            for (int p = 0; p < 16; p++) acc[p] = bv;
            for (int64_t i = 0; i < kh; i++) {
                const float *prow = P + ((ho * sh + i * dh) * Wp + q * sw) * 16;
                for (int64_t j = 0; j < kw; j++) {
                    __m512 wv = _mm512_loadu_ps(wt + (i * kw + j) * 16);
                    const float *pp = prow + j * dw * 16;
                    for (int p = 0; p < 16; p++)
                        if (p < np)
                            acc[p] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(pp + p * sw * 16), acc[p]);
                }
            }
            if (act)
                for (int p = 0; p < 16; p++)
                    if (p < np) acc[p] = dw_act16(acc[p], act);
            fc_transpose16(acc);
            __mmask16 sm = (__mmask16)((1u << np) - 1);
            for (int64_t l = 0; l < nk; l++) {
                float *o = out + (k0 + l) * Ho * Wo + ho * Wo + q;
                if (np == 16)
                    _mm512_storeu_ps(o, acc[dw_perm[l]]);
                else
                    _mm512_mask_storeu_ps(o, sm, acc[dw_perm[l]]);
            }
        }
    }
}

/* ---- Plane by plane, AVX-512: stride 1 or 2, no dilation, 3x3 or 5x5 ----
   One output plane straight from its input plane x (H x W; padding pt, pl), in register blocks
   of 4 output rows x 16 NV columns: each input row's KW shifted vectors are loaded once and feed
   the up to KH output rows of the block that read them, against 9 taps x 2 rows of loads per
   vector in the generic 2-row blocks over a zero-padded copy (which ran MobileNetV2's
   32x112x112 layer at 32 GFLOP/s, a third of it in the copy's short memcpys).  Columns outside
   the input are masked off the loads (zeros) and rows outside it skipped.  The weights stay in
   registers (3x3; 5x5 lets the compiler reload some).  The last block of a row and the last row
   block overlap the previous ones (recomputed from the input, identical).  act 1 relu, 2 relu6
   on the store, 3 silu (dw_act16).  Needs Ho >= 4 and Wo >= 8 (masked stores
   under 16). */
#ifndef DW_PLANE_MIN_WO
#define DW_PLANE_MIN_WO 8  /* narrower planes fill under half the lanes: depthwise16's */
#endif
static inline __mmask16 dw_cols(int64_t c0, int64_t W) {  /* lanes with 0 <= c0 + lane < W */
    int64_t lo = c0 < 0 ? -c0 : 0, hi = W - c0;
    if (hi > 16) hi = 16;
    if (hi <= lo) return 0;
    return (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

static inline __attribute__((always_inline)) DW_TARGET void
dw_plane_block(const int KH, const int KW, const int NV, const float *x, int64_t H, int64_t W,
               int64_t r0, int64_t c0, const __m512 *wv, __m512 bv, float *o, int64_t Wo,
               int act) {
    __m512 acc[4][2];
    __mmask16 mk[5][2];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) acc[r][v] = bv;
#pragma GCC unroll 5
    for (int j = 0; j < KW; j++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) mk[j][v] = dw_cols(c0 + j + 16 * v, W);
#pragma GCC unroll 8
    for (int ir = 0; ir < 4 + KH - 1; ir++) {
        int64_t y = r0 + ir;
        if (y < 0 || y >= H) continue;  /* a padding row: zeros */
        const float *row = x + y * W + c0;
#pragma GCC unroll 5
        for (int j = 0; j < KW; j++) {
            __m512 xv[2];
#pragma GCC unroll 2
            for (int v = 0; v < NV; v++) xv[v] = _mm512_maskz_loadu_ps(mk[j][v], row + j + 16 * v);
#pragma GCC unroll 5
            for (int i = 0; i < KH; i++) {
                const int orow = ir - i;
                if (orow < 0 || orow >= 4) continue;
#pragma GCC unroll 2
                for (int v = 0; v < NV; v++)
                    acc[orow][v] = _mm512_fmadd_ps(wv[i * KW + j], xv[v], acc[orow][v]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 2
        for (int v = 0; v < NV; v++) {
            __m512 t = act ? dw_act16(acc[r][v], act) : acc[r][v];
            if (Wo >= 16)
                _mm512_storeu_ps(o + r * Wo + 16 * v, t);
            else  /* a plane under 16 wide: the row's own columns only */
                _mm512_mask_storeu_ps(o + r * Wo, (__mmask16)((1u << Wo) - 1), t);
        }
}

/* Stride 2: 4 output rows x 16 columns; each tap of an input row is the even lanes of two
 * masked loads (one permute), feeding the up to ceil(KH / 2) output rows that read it. */
static inline __attribute__((always_inline)) DW_TARGET void
dw_plane_block_s2(const int KH, const int KW, const float *x, int64_t H, int64_t W, int64_t r0,
                  int64_t c0, const __m512 *wv, __m512 bv, float *o, int64_t Wo, int act) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4,
                                          2, 0);
    __m512 acc[4];
    __mmask16 mk[5][2];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) acc[r] = bv;
#pragma GCC unroll 5
    for (int j = 0; j < KW; j++)
#pragma GCC unroll 2
        for (int v = 0; v < 2; v++) mk[j][v] = dw_cols(c0 + j + 16 * v, W);
#pragma GCC unroll 12
    for (int ir = 0; ir < 6 + KH; ir++) {
        int64_t y = r0 + ir;
        if (y < 0 || y >= H) continue;  /* a padding row: zeros */
        const float *row = x + y * W + c0;
#pragma GCC unroll 5
        for (int j = 0; j < KW; j++) {
            __m512 lo = _mm512_maskz_loadu_ps(mk[j][0], row + j);
            __m512 hi = _mm512_maskz_loadu_ps(mk[j][1], row + j + 16);
            __m512 xv = _mm512_permutex2var_ps(lo, even, hi);
#pragma GCC unroll 5
            for (int i = 0; i < KH; i++) {
                if ((ir - i) & 1) continue;
                const int orow = (ir - i) / 2;
                if (ir < i || orow >= 4) continue;
                acc[orow] = _mm512_fmadd_ps(wv[i * KW + j], xv, acc[orow]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
        __m512 t = act ? dw_act16(acc[r], act) : acc[r];
        if (Wo >= 16)
            _mm512_storeu_ps(o + r * Wo, t);
        else
            _mm512_mask_storeu_ps(o + r * Wo, (__mmask16)((1u << Wo) - 1), t);
    }
}

static inline __attribute__((always_inline)) DW_TARGET void
dw_plane_k(const int KH, const int KW, const float *x, int64_t H, int64_t W, int64_t pt,
           int64_t pl, const float *wk, float b, float *out, int64_t Ho, int64_t Wo, int act,
           int64_t stride) {
    __m512 wv[25];
#pragma GCC unroll 25
    for (int t = 0; t < KH * KW; t++) wv[t] = _mm512_set1_ps(wk[t]);
    const __m512 bv = _mm512_set1_ps(b);
    if (stride == 2) {
        for (int64_t ho = 0; ho < Ho; ho += 4) {
            int64_t h = ho + 4 > Ho ? Ho - 4 : ho;
            for (int64_t q = 0; q < Wo; q += 16) {
                int64_t c = q + 16 > Wo ? (Wo > 16 ? Wo - 16 : 0) : q;
                dw_plane_block_s2(KH, KW, x, H, W, 2 * h - pt, 2 * c - pl, wv, bv,
                                  out + h * Wo + c, Wo, act);
            }
        }
        return;
    }
    const int64_t bw = Wo >= 32 ? 32 : 16;
    for (int64_t ho = 0; ho < Ho; ho += 4) {
        int64_t h = ho + 4 > Ho ? Ho - 4 : ho;
        for (int64_t q = 0; q < Wo; q += bw) {
            int64_t c = q + bw > Wo ? (Wo > bw ? Wo - bw : 0) : q;
            if (bw == 32)
                dw_plane_block(KH, KW, 2, x, H, W, h - pt, c - pl, wv, bv, out + h * Wo + c, Wo,
                               act);
            else
                dw_plane_block(KH, KW, 1, x, H, W, h - pt, c - pl, wv, bv, out + h * Wo + c, Wo,
                               act);
        }
    }
}

static DW_TARGET void dw_plane3_avx512(const float *x, int64_t H, int64_t W, int64_t pt,
                                       int64_t pl, const float *wk, float b, float *out,
                                       int64_t Ho, int64_t Wo, int act, int64_t stride) {
    dw_plane_k(3, 3, x, H, W, pt, pl, wk, b, out, Ho, Wo, act, stride);
}
static DW_TARGET void dw_plane5_avx512(const float *x, int64_t H, int64_t W, int64_t pt,
                                       int64_t pl, const float *wk, float b, float *out,
                                       int64_t Ho, int64_t Wo, int act, int64_t stride) {
    dw_plane_k(5, 5, x, H, W, pt, pl, wk, b, out, Ho, Wo, act, stride);
}

/* whether dw_plane_f32 runs this plane geometry (else the caller's generic blocks) */
static inline int dw_plane_supported(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t dh,
                                     int64_t dw, int64_t Ho, int64_t Wo) {
    return dw16_avx512() && kh == kw && (kh == 3 || kh == 5) && sh == sw && (sh == 1 || sh == 2) &&
           dh == 1 && dw == 1 && Ho >= 4 && Wo >= DW_PLANE_MIN_WO;
}
static inline void dw_plane_f32(const float *x, int64_t H, int64_t W, int64_t pt, int64_t pl,
                                const float *wk, int64_t kh, float b, float *out, int64_t Ho,
                                int64_t Wo, int act, int64_t stride) {
    if (kh == 3)
        dw_plane3_avx512(x, H, W, pt, pl, wk, b, out, Ho, Wo, act, stride);
    else
        dw_plane5_avx512(x, H, W, pt, pl, wk, b, out, Ho, Wo, act, stride);
}

/* ---- Small planes, AVX-512: the output plane as one flat run of Ho * Wo pixels ----
   A plane narrower than 16 fills under a vector per row in the row blocks above (masked stores,
   slow on Zen 4) and depthwise16 pays two transposes per 16 channels on it (MobileNetV2's and
   EfficientNet-B0's 14x14 and 7x7 layers ran there at 2x ONNX Runtime's NCHWc kernels).  Here
   the Ho * Wo outputs are vectors of 16 consecutive pixels that run across rows, in blocks of 4
   vectors (the last block holds the 1-3 left; the last vector overlaps the one before:
   recomputed, identical, every store a full one).  Every tap of every output vector is then one masked load at a fixed
   offset from the plane's start:
   - stride 1 with Wo == W: the input index is the output index plus a constant;
   - stride 2 with ceil(W / 2) == Wo: the plane is first split into its 4 polyphase planes
     (even / odd rows x even / odd columns, row stride Wo, in the thread's buffer), in which a
     stride-2 tap is a stride-1 tap of one phase.
   Offsets and lane masks (the taps whose input pixel lies in the image) depend on the geometry
   only: one table per call, shared by every task (computing them per tap cost 4x the FMAs).  The
   FMAs are merge-masked: a tap on padding is skipped, not multiplied by a zero, so an inf weight
   there adds no NaN (torch's direct sum skips it too).  Up to 25 taps, any dilation. */
#define DW_FLAT_MAX_TAPS 25

/* whether the plane is split into polyphase planes first (stride 2), else read in place */
static inline int dw_flat_phased(int64_t sh) { return sh == 2; }

/* Elements of ws one task needs: the table (an int32 offset per tap, a 16-bit lane mask per
   block, vector and tap) and, at stride 2, two planes' 4 phase planes with 16 elements of slack
   each (full-vector row stores overhang). */
static inline int64_t dw_flat_phase_size(int64_t H, int64_t Wo) { return ((H + 1) / 2) * Wo + 16; }
static inline int64_t dw_flat_table_size(int64_t kh, int64_t kw, int64_t Ho, int64_t Wo) {
    int64_t blocks = (Ho * Wo + 63) / 64, taps = kh * kw;
    return taps + (blocks * 4 * taps + 1) / 2;
}
static inline int64_t dw_flat_buffer_size(int64_t H, int64_t W, int64_t kh, int64_t kw,
                                          int64_t sh, int64_t Ho, int64_t Wo) {
    int64_t ph = dw_flat_phased(sh) ? 2 * 4 * dw_flat_phase_size(H, Wo) : 0;
    (void)W;
    return dw_flat_table_size(kh, kw, Ho, Wo) + ph + 16;
}

/* whether dw_flat_planes_f32 runs this plane: AVX-512, up to 25 taps, planes under 16 wide of
   at least 16 pixels, stride 1 with Wo == W or stride 2 with ceil(W / 2) == Wo */
static inline int dw_flat_supported(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t H,
                                    int64_t W, int64_t Ho, int64_t Wo) {
    (void)H;
    if (!dw16_avx512() || kh * kw > DW_FLAT_MAX_TAPS || Wo >= 16 || Ho * Wo < 16 || sh != sw)
        return 0;
    return (sh == 1 && W == Wo) || (sh == 2 && (W + 1) / 2 == Wo);
}

static inline int64_t dw_floor2(int64_t a) { return a >= 0 ? a / 2 : -((-a + 1) / 2); }

/* the start of vector v of the block at pixel blk: 16 apart, the last one ending at n */
static inline int64_t dw_flat_start(int64_t blk, int v, int64_t n) {
    return blk + 16 * v > n - 16 ? n - 16 : blk + 16 * v;
}

/* the table: off[t] the offset of tap t's input for output pixel 0 from the plane's (or phase
   buffer's) start (a vector starting at pixel st reads st + off[t]), mk[(b * 4 + v) * taps + t]
   the lanes of block b's vector v whose tap t lies in the image */
static DW_TARGET void dw_flat_table(int32_t *off, uint16_t *mk, int64_t H, int64_t W,
                                    int64_t kh, int64_t kw, int64_t pt, int64_t pl, int64_t sh,
                                    int64_t dh, int64_t dw, int64_t Ho, int64_t Wo) {
    const int64_t n = Ho * Wo, taps = kh * kw, phased = dw_flat_phased(sh);
    const int64_t PS = dw_flat_phase_size(H, Wo);
    const __m512 lane = _mm512_set_ps(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m512 inv = _mm512_set1_ps(1.0f / (float)Wo), half = _mm512_set1_ps(0.5f);
    const __m512i Wov = _mm512_set1_epi32((int)Wo);
    int64_t ra[DW_FLAT_MAX_TAPS], ca[DW_FLAT_MAX_TAPS], rows[DW_FLAT_MAX_TAPS],
        cols[DW_FLAT_MAX_TAPS];
    for (int64_t i = 0; i < kh; i++)
        for (int64_t j = 0; j < kw; j++) {
            int64_t t = i * kw + j, a = i * dh - pt, c = j * dw - pl;
            if (phased) {  /* phase (a mod 2, c mod 2), shifted by floor(a / 2) rows */
                int64_t ry = a - 2 * dw_floor2(a), rx = c - 2 * dw_floor2(c);
                a = dw_floor2(a);
                c = dw_floor2(c);
                rows[t] = (H - ry + 1) / 2;
                cols[t] = (W - rx + 1) / 2;
                off[t] = (int32_t)((ry * 2 + rx) * PS + a * Wo + c);
            } else {
                rows[t] = H;
                cols[t] = W;
                off[t] = (int32_t)(a * W + c);
            }
            ra[t] = a;
            ca[t] = c;
        }
    int64_t b = 0;
    for (int64_t blk = 0; blk < n; blk += 64, b++)
        for (int v = 0; v < 4; v++) {
            /* lane pixel p = st + lane: row p / Wo (floor((p + 0.5) / Wo), exact for p < 2^22),
               column p - row * Wo */
            __m512 p = _mm512_add_ps(lane, _mm512_set1_ps((float)dw_flat_start(blk, v, n)));
            __m512i oy = _mm512_cvttps_epi32(_mm512_mul_ps(_mm512_add_ps(p, half), inv));
            __m512i ox = _mm512_sub_epi32(_mm512_cvttps_epi32(p), _mm512_mullo_epi32(oy, Wov));
            for (int64_t t = 0; t < taps; t++) {
                __m512i y = _mm512_add_epi32(oy, _mm512_set1_epi32((int)ra[t]));
                __m512i x = _mm512_add_epi32(ox, _mm512_set1_epi32((int)ca[t]));
                mk[(b * 4 + v) * taps + t] =
                    _mm512_cmplt_epu32_mask(y, _mm512_set1_epi32((int)rows[t])) &
                    _mm512_cmplt_epu32_mask(x, _mm512_set1_epi32((int)cols[t]));
            }
        }
}

/* the 4 polyphase planes of an H x W plane (W <= 32), row stride Wo = ceil(W / 2), each row one
   full 16-lane store (overhanging into the next row, written after it, or the slack) */
static DW_TARGET void dw_flat_split(const float *x, int64_t H, int64_t W, int64_t Wo,
                                    float *ph) {
    const int64_t PS = dw_flat_phase_size(H, Wo);
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4,
                                          2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __mmask16 m0 = W >= 16 ? 0xffff : (__mmask16)((1u << W) - 1);
    const __mmask16 m1 = W <= 16 ? 0 : (__mmask16)((1u << (W - 16)) - 1);
    if (W <= 16) {
        /* one load a row, its phase rows (Wo <= 8) as 8-lane stores: a 16-lane store at a row's
           unaligned offset nearly always spans two lines (the split was 40% of a 576 x 14 x 14
           stride-2 layer's time, most of it in those stores) */
        for (int64_t y = 0; y < H; y++) {
            __m512 lo = _mm512_maskz_loadu_ps(m0, x + y * W);
            float *d = ph + (y & 1) * 2 * PS + (y >> 1) * Wo;
            _mm256_storeu_ps(d, _mm512_castps512_ps256(_mm512_permutexvar_ps(even, lo)));
            _mm256_storeu_ps(d + PS, _mm512_castps512_ps256(_mm512_permutexvar_ps(odd, lo)));
        }
        return;
    }
    for (int64_t y = 0; y < H; y++) {
        const float *r = x + y * W;
        __m512 lo = _mm512_maskz_loadu_ps(m0, r), hi = _mm512_maskz_loadu_ps(m1, r + 16);
        float *d = ph + (y & 1) * 2 * PS + (y >> 1) * Wo;
        _mm512_storeu_ps(d, _mm512_permutex2var_ps(lo, even, hi));
        _mm512_storeu_ps(d + PS, _mm512_permutex2var_ps(lo, odd, hi));
    }
}

/* one block of NP (1 or 2) planes: 4 vectors each, all taps, then the stores */
static inline __attribute__((always_inline)) DW_TARGET void
dw_flat_block(const int NP, const int NV, const float *const *src, const float *const *wk, const __m512 *bv,
              float *const *o, const int32_t *off, const uint16_t *mk, int64_t taps,
              const int64_t *st, int act) {
    __m512 acc[2][4];
#pragma GCC unroll 2
    for (int q = 0; q < NP; q++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[q][v] = bv[q];
    const float *s0[2][4];
#pragma GCC unroll 2
    for (int q = 0; q < NP; q++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) s0[q][v] = src[q] + st[v];
    for (int64_t t = 0; t < taps; t++) {
        const int64_t d = off[t];
        __mmask16 k[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) k[v] = (__mmask16)mk[v * taps + t];
#pragma GCC unroll 2
        for (int q = 0; q < NP; q++) {
            const __m512 wt = _mm512_set1_ps(wk[q][t]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++)
                acc[q][v] = _mm512_mask3_fmadd_ps(wt, _mm512_maskz_loadu_ps(k[v], s0[q][v] + d),
                                                  acc[q][v], k[v]);
        }
    }
#pragma GCC unroll 2
    for (int q = 0; q < NP; q++)
#pragma GCC unroll 4
        for (int v = NV - 1; v >= 0; v--)  /* the overlapping vector last: the same values */
            _mm512_storeu_ps(o[q] + st[v], act ? dw_act16(acc[q][v], act) : acc[q][v]);
}

/* The table of a call's geometry into tab (dw_flat_table_size elements), built once per call
   and read by every task (per task it cost 6-7 us of a 960 x 7 x 7 layer's ~40). */
static DW_TARGET void dw_flat_build_table(float *tab, int64_t H, int64_t W, int64_t kh,
                                          int64_t kw, int64_t pt, int64_t pl, int64_t sh,
                                          int64_t dh, int64_t dw, int64_t Ho, int64_t Wo) {
    dw_flat_table((int32_t *)tab, (uint16_t *)(tab + kh * kw), H, W, kh, kw, pt, pl, sh, dh, dw,
                  Ho, Wo);
}

/* Output planes [k0, k1) of one sample: input plane k / m of x (planes of H x W), weights
   w + k * taps, bias[k] (bias NULL: none), out planes of Ho x Wo.  tab: dw_flat_build_table's;
   ph: the thread's buffer for the phase planes (stride 2: 2 * 4 * dw_flat_phase_size elements).
   Two planes at a time share each mask and offset load. */
static DW_TARGET void dw_flat_planes_f32(const float *x, int64_t H, int64_t W, const float *w,
                                         const float *bias, float *out, int64_t k0, int64_t k1,
                                         int64_t m, int64_t kh, int64_t kw, int64_t sh,
                                         int64_t pt, int64_t pl, int64_t dh, int64_t dw,
                                         int64_t Ho, int64_t Wo, const float *tab, float *ph,
                                         int act) {
    const int64_t n = Ho * Wo, taps = kh * kw, nb = (n + 63) / 64, nvec = (n + 15) / 16;
    const int32_t *off = (const int32_t *)tab;
    const uint16_t *mk = (const uint16_t *)(tab + taps);
    const int64_t PS4 = 4 * dw_flat_phase_size(H, Wo);
    const int phased = dw_flat_phased(sh);
    (void)W, (void)pt, (void)pl, (void)dh, (void)dw;
    for (int64_t k = k0; k < k1; k += 2) {
        const int NP = k + 1 < k1 ? 2 : 1;
        const float *src[2];
        const float *wk[2];
        float *o[2];
        __m512 bv[2];
        for (int q = 0; q < NP; q++) {
            src[q] = x + ((k + q) / m) * H * W;
            if (phased) {
                dw_flat_split(src[q], H, W, Wo, ph + q * PS4);
                src[q] = ph + q * PS4;
            }
            wk[q] = w + (k + q) * taps;
            bv[q] = _mm512_set1_ps(bias ? bias[k + q] : 0.0f);
            o[q] = out + (k + q) * n;
        }
        for (int64_t b = 0, blk = 0; b < nb; b++, blk += 64) {
            int64_t st[4];
            const int nv = nvec - 4 * b < 4 ? (int)(nvec - 4 * b) : 4;
            for (int v = 0; v < 4; v++) st[v] = dw_flat_start(blk, v, n);
            const uint16_t *mb = mk + b * 4 * taps;
#define DW_FLAT_BLOCK(NV)                                                                   \
    if (NP == 2)                                                                            \
        dw_flat_block(2, NV, src, wk, bv, o, off, mb, taps, st, act);                       \
    else                                                                                    \
        dw_flat_block(1, NV, src, wk, bv, o, off, mb, taps, st, act);
            if (nv == 4) {
                DW_FLAT_BLOCK(4)
            } else if (nv == 3) {
                DW_FLAT_BLOCK(3)
            } else if (nv == 2) {
                DW_FLAT_BLOCK(2)
            } else {
                DW_FLAT_BLOCK(1)
            }
#undef DW_FLAT_BLOCK
        }
    }
}

/* ---- Small planes, 16 channels in the lanes, AVX-512 (channel multiplier 1) ----
   The flat path above spends its time in loads: every tap of every output vector is a load at
   an offset that is rarely a multiple of 16 floats, so nearly every load spans two cache lines,
   and each carries a lane mask (1152 x 7 x 7 5x5: 88 us; the FMAs alone 43, the loads 25, the
   masks 16).  Here 16 consecutive channels (their planes are one contiguous run of 16 * H * W
   floats, as their outputs are of 16 * Ho * Wo) are transposed in blocks of 16 pixels into a
   pixel-major, zero-bordered buffer P[Hp][Wp][16], every tap of every output pixel is then one
   aligned load and one FMA with all 16 lanes in use (49 pixels x 25 taps per 16 channels, where
   the flat path computes 64 pixels per plane), and the pixel-major results are transposed back
   in blocks of 16 pixels, the last block overlapping the one before (full stores).  Taps are
   summed in the flat path's order from the bias up, so the results are the same bits.  A
   padding tap reads a zero: a task whose weights hold an inf or NaN returns 0 and the caller
   runs the flat path, which skips those taps (torch does not multiply padding by a weight).
   The transposes cost about as much as a 3x3 plane's FMAs, so this wins where there are many
   taps per pixel or where the flat path wastes most (the polyphase split of a small strided
   plane).  Kernel time against the flat path, 1 thread, 256 and 960 channels: output planes of
   at most 25 pixels 0.52-0.98 (7x7 and 8x8 stride 2, 4x4); 5x5 on 7x7 outputs 0.73-0.99; 3x3
   on 7x7 1.02-1.23, on 8x8 and larger 1.1-1.6, 5x5 on 8x8 and larger 0.92-1.25.  With the
   5-wide rows' loads shared (dw_small16_rows_s1), 5x5 at stride 1 on 9x9-14x14 planes runs at
   0.79-0.87 of the flat path (1 thread, SiLU in the store, 128-672 channels; EfficientNet-B0's
   480 and 672 x 14 x 14 among them); 5x5 at stride 2 onto 10x10-14x14 stays at 1.02-1.14.  The
   caller runs it on planes of at most 25 pixels and on 5x5 layers at stride 1 or onto at most
   49 pixels (conv_depthwise_planes). */
static inline int64_t dw_small16_hp(int64_t kh, int64_t sh, int64_t dh, int64_t Ho) {
    return (Ho - 1) * sh + dh * (kh - 1) + 1;
}
/* elements of a task's buffer: P, the weights by tap (16 each), the pixel-major staging */
static inline int64_t dw_small16_buffer_size(int64_t H, int64_t W, int64_t kh, int64_t kw,
                                             int64_t sh, int64_t sw, int64_t dh, int64_t dw,
                                             int64_t Ho, int64_t Wo) {
    int64_t hp = dw_small16_hp(kh, sh, dh, Ho), wp = dw_small16_hp(kw, sw, dw, Wo);
    int64_t st = H * W > Ho * Wo ? H * W : Ho * Wo;
    if (st < 16) st = 16;
    return (hp * wp + kh * kw + st) * 16 + 16;
}
/* whether dw_small16_f32 runs this geometry: output rows under 16 pixels (the accumulators of
   one row stay in registers) */
static inline int dw_small16_supported(int64_t kh, int64_t kw, int64_t Wo) {
    return dw16_avx512() && Wo < 16 && kh * kw <= DW_FLAT_MAX_TAPS;
}

/* Largest input plane (pixels) the 16-lane kernel takes on planes 16 or more wide. */
#define DW_SMALL16_WIDE_MAX_PIXELS 1600
/* whether the plane kernel's 16-plane tasks run dw_small16_f32 on rows 16 or more wide (in
   chunks of at most 15 outputs): 5x5 at stride 1 on planes of at most 40 x 40 pixels.  Kernel
   time against the 4-row blocks, 1 thread, SiLU in the store, 32-480 channels: 0.87-0.95 on
   16x16-40x40 planes (EfficientNet-B0's 240 x 28 x 28: 0.89); on 56 x 56 1.03 (the staging,
   0.4 MB a task, leaves L1 and L2 little room), at stride 2 0.95-0.96 on 56 x 56 inputs but
   1.25 onto 16 x 16 outputs.  On 3x3 layers the transposes cost more than the row blocks'
   loads (the small planes' figures above). */
static inline int dw_small16_wide_supported(int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                                            int64_t H, int64_t W, int64_t Wo) {
    return dw16_avx512() && kh == 5 && kw == 5 && sh == 1 && sw == 1 && Wo >= 16 &&
           H * W <= DW_SMALL16_WIDE_MAX_PIXELS;
}

/* r[l] = 16 pixels [p0, p0 + 16) of plane l (planes n apart, nk of them; zeros past nk, and past
   n when n < 16), transposed: vector dw_perm[j] then holds pixel p0 + j of the 16 planes */
static inline __attribute__((always_inline)) DW_TARGET void
dw_small16_gather(const float *x, int64_t n, int64_t nk, int64_t p0, __m512 *r) {
    const __mmask16 m = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
    for (int l = 0; l < 16; l++)
        r[l] = l < nk ? _mm512_maskz_loadu_ps(m, x + l * n + p0) : _mm512_setzero_ps();
    fc_transpose16(r);
}

/* an output row's NQ accumulators (16 channels each) into the staging row t, act applied */
static inline __attribute__((always_inline)) DW_TARGET void
dw_small16_store_row(const int NQ, const __m512 *acc, float *t, int act) {
#pragma GCC unroll 16
    for (int q = 0; q < NQ; q++) _mm512_storeu_ps(t + q * 16, act ? dw_act16(acc[q], act) : acc[q]);
}

/* every output row of NQ (a constant: Wo, or a chunk of a wider row) pixels: their 16 channels
   in registers over all taps, then into the pixel-major staging T (rows TW pixels apart; P and T
   point at the chunk's first input and output pixel) */
static inline __attribute__((always_inline)) DW_TARGET void
dw_small16_rows(const int NQ, const float *P, int64_t Wp, const float *wt, __m512 bv, float *T,
                int64_t TW, int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t dh,
                int64_t dw, int64_t Ho, int act) {
    for (int64_t ho = 0; ho < Ho; ho++) {
        __m512 acc[16];
#pragma GCC unroll 16
        for (int q = 0; q < NQ; q++) acc[q] = bv;
        for (int64_t i = 0; i < kh; i++) {
            const float *prow = P + (ho * sh + i * dh) * Wp * 16;
            for (int64_t j = 0; j < kw; j++) {
                const __m512 wv = _mm512_loadu_ps(wt + (i * kw + j) * 16);
                const float *pp = prow + j * dw * 16;
#pragma GCC unroll 16
                for (int q = 0; q < NQ; q++)
                    acc[q] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(pp + q * sw * 16), acc[q]);
            }
        }
        dw_small16_store_row(NQ, acc, T + ho * TW * 16, act);
    }
}

/* The same rows for stride 1 and no dilation across a row, KW (3 or 5) a constant: each pixel of
   an input row is loaded once and feeds the up to KW outputs that read it (NQ + KW - 1 loads a
   row and tap row, against NQ * KW), with the row's KW weights in registers.  Each output still
   sums its taps in order (tap j of output q comes from pixel q + j, met in increasing j), so the
   results are dw_small16_rows's bits. */
static inline __attribute__((always_inline)) DW_TARGET void
dw_small16_rows_s1(const int NQ, const int KW, const float *P, int64_t Wp, const float *wt,
                   __m512 bv, float *T, int64_t TW, int64_t kh, int64_t sh, int64_t dh,
                   int64_t Ho, int act) {
    for (int64_t ho = 0; ho < Ho; ho++) {
        __m512 acc[16];
#pragma GCC unroll 16
        for (int q = 0; q < NQ; q++) acc[q] = bv;
        for (int64_t i = 0; i < kh; i++) {
            const float *prow = P + (ho * sh + i * dh) * Wp * 16;
            __m512 wr[5];
#pragma GCC unroll 5
            for (int j = 0; j < KW; j++) wr[j] = _mm512_loadu_ps(wt + (i * KW + j) * 16);
#pragma GCC unroll 20
            for (int p = 0; p < NQ + KW - 1; p++) {
                const __m512 v = _mm512_loadu_ps(prow + p * 16);
#pragma GCC unroll 5
                for (int j = 0; j < KW; j++) {
                    const int q = p - j;
                    if (q >= 0 && q < NQ) acc[q] = _mm512_fmadd_ps(wr[j], v, acc[q]);
                }
            }
        }
        dw_small16_store_row(NQ, acc, T + ho * TW * 16, act);
    }
}

#ifndef DW_SMALL16_REUSE
#define DW_SMALL16_REUSE 1
#endif

/* Output planes [k0, k0 + nk) (nk <= 16) of one sample from input planes [k0, k0 + nk) (channel
   multiplier 1): x and out point at plane k0; w at channel k0's taps; bias at channel k0's or
   NULL.  buf: dw_small16_buffer_size elements (64-byte aligned: its loads and stores are then whole lines).  Returns 1, or 0 (nothing
   written) when a weight is not finite. */
static DW_TARGET int dw_small16_f32(const float *x, int64_t H, int64_t W, const float *w,
                                    const float *bias, float *out, int64_t nk, int64_t kh,
                                    int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pl,
                                    int64_t dh, int64_t dw, int64_t Ho, int64_t Wo, float *buf,
                                    int act) {
    const int64_t taps = kh * kw, n = H * W, no = Ho * Wo;
    const int64_t Hp = dw_small16_hp(kh, sh, dh, Ho), Wp = dw_small16_hp(kw, sw, dw, Wo);
    float *P = buf, *wt = buf + Hp * Wp * 16, *T = wt + taps * 16;
    /* the weights by tap, 16 lanes each (the 16 channels' taps transposed in blocks of 16 taps,
       as the pixels below); a non-finite one sends the task to the flat path */
    __m512 bad = _mm512_setzero_ps();
    for (int64_t t0 = 0; t0 < taps; t0 += 16) {
        int64_t b = taps < 16 ? 0 : (t0 + 16 > taps ? taps - 16 : t0), cnt = taps < 16 ? taps : 16;
        __m512 r[16];
        dw_small16_gather(w, taps, nk, b, r);
        for (int64_t j = 0; j < cnt; j++) {
            __m512 wv = r[dw_perm[j]];
            bad = _mm512_add_ps(bad, _mm512_mul_ps(wv, _mm512_setzero_ps()));  /* NaN iff not finite */
            _mm512_storeu_ps(wt + (b + j) * 16, wv);
        }
    }
    if (_mm512_cmp_ps_mask(bad, bad, _CMP_UNORD_Q)) return 0;
    /* P: the zero border, then the transposed interior (input pixel (iy, ix) at row iy + pt,
       column ix + pl, where P has it) */
    const __m512 z = _mm512_setzero_ps();
    for (int64_t y = 0; y < Hp; y++) {
        int64_t iy = y - pt;
        float *prow = P + y * Wp * 16;
        if (iy < 0 || iy >= H) {
            for (int64_t c = 0; c < Wp; c++) _mm512_storeu_ps(prow + c * 16, z);
            continue;
        }
        for (int64_t c = 0; c < Wp; c++)
            if (c < pl || c >= pl + W) _mm512_storeu_ps(prow + c * 16, z);
    }
    for (int64_t p0 = 0; p0 < n; p0 += 16) {
        int64_t b = n < 16 ? 0 : (p0 + 16 > n ? n - 16 : p0), cnt = n < 16 ? n : 16;
        __m512 r[16];
        dw_small16_gather(x, n, nk, b, r);
        int64_t iy = b / W, ix = b - iy * W;
        for (int64_t j = 0; j < cnt; j++) {
            int64_t y = iy + pt, c = ix + pl;
            if (y < Hp && c < Wp) _mm512_storeu_ps(P + (y * Wp + c) * 16, r[dw_perm[j]]);
            if (++ix == W) {
                ix = 0;
                iy++;
            }
        }
    }
    /* every output row: its Wo pixels' 16 channels in registers over all taps */
    __m512 bv = z;
    if (bias) {
        float b16[16];
        for (int l = 0; l < 16; l++) b16[l] = l < nk ? bias[l] : 0.0f;
        bv = _mm512_loadu_ps(b16);
    }
    /* rows of up to 15 outputs at a time: a wider row in nch chunks of nearly equal size */
    const int reuse = DW_SMALL16_REUSE && sw == 1 && dw == 1 && kw == 5;
    const int64_t nch = (Wo + 14) / 15, base = Wo / nch, rem = Wo % nch;
    for (int64_t c = 0, q0 = 0; c < nch; c++) {
        const int64_t nq = base + (c < rem);
        const float *Pc = P + q0 * sw * 16;
        float *Tc = T + q0 * 16;
        switch (nq) {
#define DW_SMALL16_ROWS(NQ)                                                                   \
    case NQ:                                                                                  \
        if (reuse)                                                                            \
            dw_small16_rows_s1(NQ, 5, Pc, Wp, wt, bv, Tc, Wo, kh, sh, dh, Ho, act);           \
        else                                                                                  \
            dw_small16_rows(NQ, Pc, Wp, wt, bv, Tc, Wo, kh, kw, sh, sw, dh, dw, Ho, act);     \
        break;
            DW_SMALL16_ROWS(1) DW_SMALL16_ROWS(2) DW_SMALL16_ROWS(3) DW_SMALL16_ROWS(4)
            DW_SMALL16_ROWS(5) DW_SMALL16_ROWS(6) DW_SMALL16_ROWS(7) DW_SMALL16_ROWS(8)
            DW_SMALL16_ROWS(9) DW_SMALL16_ROWS(10) DW_SMALL16_ROWS(11) DW_SMALL16_ROWS(12)
            DW_SMALL16_ROWS(13) DW_SMALL16_ROWS(14) DW_SMALL16_ROWS(15)
#undef DW_SMALL16_ROWS
            default: break;
        }
        q0 += nq;
    }
    /* back to 16 planes of Ho * Wo: blocks of 16 pixels, the last overlapping the one before */
    for (int64_t p0 = 0; p0 < no; p0 += 16) {
        int64_t b = no < 16 ? 0 : (p0 + 16 > no ? no - 16 : p0);
        __m512 r[16];
        for (int j = 0; j < 16; j++)
            r[j] = j < no ? _mm512_loadu_ps(T + (b + j) * 16) : _mm512_setzero_ps();
        fc_transpose16(r);
        if (no >= 16) {
            for (int64_t l = 0; l < nk; l++) _mm512_storeu_ps(out + l * no + b, r[dw_perm[l]]);
        } else {
            const __mmask16 m = (__mmask16)((1u << no) - 1);
            for (int64_t l = 0; l < nk; l++)
                _mm512_mask_storeu_ps(out + l * no, m, r[dw_perm[l]]);
        }
    }
    return 1;
}

/* ---- AVX2+FMA: the same buffer layout, each 16-lane vector as two 8-lane halves */

/* r[i] (8 floats each) -> r[j] holds element j of every r[i] (an 8x8 transpose, in order) */
static inline DW2_TARGET void dw_transpose8(__m256 *r) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 2; i++) {
        u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x20);
        r[4 + i] = _mm256_permute2f128_ps(u[i], u[4 + i], 0x31);
    }
}

static DW2_TARGET void dw16_task_avx2(const float *x, int64_t H, int64_t W, const float *w,
                                      const float *bias, float *out, int64_t k0, int64_t nk,
                                      int64_t m, int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                                      int64_t pt, int64_t pl, int64_t dh, int64_t dw, int64_t Ho,
                                      int64_t Wo, float *buf, int act) {
    int64_t Hp = (Ho - 1) * sh + dh * (kh - 1) + 1, Wp = (Wo - 1) * sw + dw * (kw - 1) + 1;
    int64_t taps = kh * kw;
    float *P = buf, *wt = buf + Hp * Wp * 16;
    const float *src[16];
    for (int l = 0; l < 16; l++) src[l] = x + ((k0 + (l < nk ? l : nk - 1)) / m) * H * W;
    for (int64_t t = 0; t < taps; t++)
        for (int l = 0; l < 16; l++) wt[t * 16 + l] = l < nk ? w[(k0 + l) * taps + t] : 0.0f;
    const __m256 z = _mm256_setzero_ps();
    for (int64_t y = 0; y < Hp; y++) {
        int64_t iy = y - pt;
        float *prow = P + y * Wp * 16;
        if (iy < 0 || iy >= H) {
            for (int64_t xx = 0; xx < 2 * Wp; xx++) _mm256_storeu_ps(prow + xx * 8, z);
            continue;
        }
        int64_t c0 = pl < Wp ? pl : Wp, c1 = pl + W < Wp ? pl + W : Wp;
        for (int64_t xx = 0; xx < 2 * c0; xx++) _mm256_storeu_ps(prow + xx * 8, z);
        for (int64_t xx = 2 * c1; xx < 2 * Wp; xx++) _mm256_storeu_ps(prow + xx * 8, z);
        int64_t ix0 = c0 - pl, ix1 = c1 - pl;
        for (int64_t ix = ix0; ix < ix1; ix += 8) {
            int64_t n = ix1 - ix < 8 ? ix1 - ix : 8;
            for (int h = 0; h < 2; h++) {
                __m256 r[8];
                for (int l = 0; l < 8; l++) {
                    const float *sp = src[8 * h + l] + iy * W + ix;
                    if (n == 8) {
                        r[l] = _mm256_loadu_ps(sp);
                    } else {
                        float tmp[8] = {0};
                        for (int64_t e = 0; e < n; e++) tmp[e] = sp[e];
                        r[l] = _mm256_loadu_ps(tmp);
                    }
                }
                dw_transpose8(r);
                for (int64_t j = 0; j < n; j++)
                    _mm256_storeu_ps(prow + (ix + pl + j) * 16 + 8 * h, r[j]);
            }
        }
    }
    float b16[16];
    for (int l = 0; l < 16; l++) b16[l] = (bias && l < nk) ? bias[k0 + l] : 0.0f;
    /* blocks of 8 output pixels along a row, each half of the lanes in turn (8 accumulators);
       the last block overlaps the previous one, or on rows under 8 pixels stores np of them */
    for (int64_t ho = 0; ho < Ho; ho++) {
        for (int64_t q0 = 0; q0 < Wo; q0 += 8) {
            int64_t q = q0, np = 8;
            if (Wo < 8)
                np = Wo;
            else if (q + 8 > Wo)
                q = Wo - 8;
            for (int h = 0; h < 2; h++) {
                if (8 * h >= nk) break;
                __m256 bv = _mm256_loadu_ps(b16 + 8 * h), acc[8];
                for (int p = 0; p < 8; p++) acc[p] = bv;
                for (int64_t i = 0; i < kh; i++) {
                    const float *prow = P + ((ho * sh + i * dh) * Wp + q * sw) * 16 + 8 * h;
                    for (int64_t j = 0; j < kw; j++) {
                        __m256 wv = _mm256_loadu_ps(wt + (i * kw + j) * 16 + 8 * h);
                        const float *pp = prow + j * dw * 16;
                        for (int p = 0; p < 8; p++)
                            if (p < np)
                                acc[p] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(pp + p * sw * 16),
                                                         acc[p]);
                    }
                }
                if (act == 3) {  /* silu: _epilogue_kernel.h's vectorised exp */
                    for (int p = 0; p < 8; p++) {
                        float v[8];
                        _mm256_storeu_ps(v, acc[p]);
                        for (int i = 0; i < 8; i++) v[i] = fc_silu_f32(v[i]);
                        acc[p] = _mm256_loadu_ps(v);
                    }
                } else if (act) {  /* relu / relu6, compare-and-select: NaN stays NaN */
                    const __m256 six = _mm256_set1_ps(6.0f);
                    for (int p = 0; p < 8; p++) {
                        acc[p] = _mm256_blendv_ps(acc[p], z, _mm256_cmp_ps(acc[p], z, _CMP_LT_OQ));
                        if (act == 2)
                            acc[p] = _mm256_blendv_ps(acc[p], six, _mm256_cmp_ps(acc[p], six, _CMP_GT_OQ));
                    }
                }
                dw_transpose8(acc);
                int64_t nl = nk - 8 * h < 8 ? nk - 8 * h : 8;
                for (int64_t l = 0; l < nl; l++) {
                    float *o = out + (k0 + 8 * h + l) * Ho * Wo + ho * Wo + q;
                    if (np == 8) {
                        _mm256_storeu_ps(o, acc[l]);
                    } else {
                        float tmp[8];
                        _mm256_storeu_ps(tmp, acc[l]);
                        for (int64_t e = 0; e < np; e++) o[e] = tmp[e];
                    }
                }
            }
        }
    }
}

static inline void dw16_task(const float *x, int64_t H, int64_t W, const float *w,
                             const float *bias, float *out, int64_t k0, int64_t nk, int64_t m,
                             int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t pt,
                             int64_t pl, int64_t dh, int64_t dw, int64_t Ho, int64_t Wo,
                             float *buf, int act) {
    if (dw16_avx512())
        dw16_task_avx512(x, H, W, w, bias, out, k0, nk, m, kh, kw, sh, sw, pt, pl, dh, dw, Ho,
                         Wo, buf, act);
    else
        dw16_task_avx2(x, H, W, w, bias, out, k0, nk, m, kh, kw, sh, sw, pt, pl, dh, dw, Ho, Wo,
                       buf, act);
}

#else
static inline int dw_plane_supported(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t dh,
                                     int64_t dw, int64_t Ho, int64_t Wo) {
    (void)kh; (void)kw; (void)sh; (void)sw; (void)dh; (void)dw; (void)Ho; (void)Wo;
    return 0;
}
static inline void dw_plane_f32(const float *x, int64_t H, int64_t W, int64_t pt, int64_t pl,
                                const float *wk, int64_t kh, float b, float *out, int64_t Ho,
                                int64_t Wo, int act, int64_t stride) {
    (void)x; (void)H; (void)W; (void)pt; (void)pl; (void)wk; (void)kh; (void)b; (void)out;
    (void)Ho; (void)Wo; (void)act; (void)stride;
}
static inline int dw_flat_supported(int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t H,
                                    int64_t W, int64_t Ho, int64_t Wo) {
    (void)kh; (void)kw; (void)sh; (void)sw; (void)H; (void)W; (void)Ho; (void)Wo;
    return 0;
}
static inline int64_t dw_flat_buffer_size(int64_t H, int64_t W, int64_t kh, int64_t kw,
                                          int64_t sh, int64_t Ho, int64_t Wo) {
    (void)H; (void)W; (void)kh; (void)kw; (void)sh; (void)Ho; (void)Wo;
    return 0;
}
static inline int64_t dw_flat_table_size(int64_t kh, int64_t kw, int64_t Ho, int64_t Wo) {
    (void)kh; (void)kw; (void)Ho; (void)Wo;
    return 0;
}
static void dw_flat_build_table(float *tab, int64_t H, int64_t W, int64_t kh, int64_t kw,
                                int64_t pt, int64_t pl, int64_t sh, int64_t dh, int64_t dw,
                                int64_t Ho, int64_t Wo) {
    (void)tab; (void)H; (void)W; (void)kh; (void)kw; (void)pt; (void)pl; (void)sh; (void)dh;
    (void)dw; (void)Ho; (void)Wo;
}
static void dw_flat_planes_f32(const float *x, int64_t H, int64_t W, const float *w,
                               const float *bias, float *out, int64_t k0, int64_t k1, int64_t m,
                               int64_t kh, int64_t kw, int64_t sh, int64_t pt, int64_t pl,
                               int64_t dh, int64_t dw, int64_t Ho, int64_t Wo, const float *tab,
                               float *ph, int act) {
    (void)tab; (void)ph;
    (void)x; (void)H; (void)W; (void)w; (void)bias; (void)out; (void)k0; (void)k1; (void)m;
    (void)kh; (void)kw; (void)sh; (void)pt; (void)pl; (void)dh; (void)dw; (void)Ho; (void)Wo;
    (void)act;
}
static inline int64_t dw_small16_buffer_size(int64_t H, int64_t W, int64_t kh, int64_t kw,
                                             int64_t sh, int64_t sw, int64_t dh, int64_t dw,
                                             int64_t Ho, int64_t Wo) {
    (void)H; (void)W; (void)kh; (void)kw; (void)sh; (void)sw; (void)dh; (void)dw; (void)Ho;
    (void)Wo;
    return 0;
}
static inline int dw_small16_supported(int64_t kh, int64_t kw, int64_t Wo) {
    (void)kh; (void)kw; (void)Wo;
    return 0;
}
static inline int dw_small16_wide_supported(int64_t kh, int64_t kw, int64_t sh, int64_t sw,
                                            int64_t H, int64_t W, int64_t Wo) {
    (void)kh; (void)kw; (void)sh; (void)sw; (void)H; (void)W; (void)Wo;
    return 0;
}
static inline int dw_small16_f32(const float *x, int64_t H, int64_t W, const float *w,
                                 const float *bias, float *out, int64_t nk, int64_t kh,
                                 int64_t kw, int64_t sh, int64_t sw, int64_t pt, int64_t pl,
                                 int64_t dh, int64_t dw, int64_t Ho, int64_t Wo, float *buf,
                                 int act) {
    (void)x; (void)H; (void)W; (void)w; (void)bias; (void)out; (void)nk; (void)kh; (void)kw;
    (void)sh; (void)sw; (void)pt; (void)pl; (void)dh; (void)dw; (void)Ho; (void)Wo; (void)buf;
    (void)act;
    return 0;
}
static inline int dw16_supported(void) { return 0; }
static void dw_init_perm(void) {}
static inline int64_t dw16_buffer_size(int64_t Hp, int64_t Wp, int64_t taps) {
    (void)Hp; (void)Wp; (void)taps;
    return 0;
}
static void dw16_task(const float *x, int64_t H, int64_t W, const float *w, const float *bias,
                      float *out, int64_t k0, int64_t nk, int64_t m, int64_t kh, int64_t kw,
                      int64_t sh, int64_t sw, int64_t pt, int64_t pl, int64_t dh, int64_t dw,
                      int64_t Ho, int64_t Wo, float *buf, int act) {
    (void)x; (void)H; (void)W; (void)w; (void)bias; (void)out; (void)k0; (void)nk; (void)m;
    (void)kh; (void)kw; (void)sh; (void)sw; (void)pt; (void)pl; (void)dh; (void)dw; (void)Ho;
    (void)Wo; (void)buf; (void)act;
}
#endif

#endif
