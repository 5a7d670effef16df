/* conv2d's weight gradient, direct: dW[k, q] = sum over samples and output pixels p of
   go[n, k, p] * x[n, c, tap(p, i, j)], q = (c, i, j), with no im2col matrix.

   Per task (a range of samples x a range of output rows) two small copies into the thread's
   workspace: grad_output pixel-major, gT[p][k] (K rounded up to the vector lanes, zeros beyond
   K), and the input rows the task reads, zero-padded, xp[n][c][r][col].  A register tile of MR
   vectors of output channels x NR columns q then runs over the task's pixels: per pixel MR vector
   loads of gT, NR scalar broadcasts of x (any stride or dilation is an address step), MR*NR FMAs;
   the tile is added into the thread's own dW part (q-major) once per task.  The multiplies run
   over the padding zeros as im2col's GEMM does, so a NaN or inf in grad_output lands where
   torch's autograd puts it.

   Vector code through GCC's vector extensions: an AVX-512 instance (target attribute, chosen at
   run time by the CPU check, never -march) and a baseline instance of the same source.
*/
#ifndef FASTCONV_WGRAD_KERNEL_H
#define FASTCONV_WGRAD_KERNEL_H

#include <stdint.h>
#include <string.h>
#include <stdlib.h>

#include "_cpu.h"
#include "_transpose16.h"

#if defined(__GNUC__) && defined(__x86_64__)
#define WG_HAVE_AVX512_TARGET 1
#define WG_T512 __attribute__((target("avx512f")))
static inline int wg_avx512(void) { return fastconv_have_avx512(); }
#else
#define WG_HAVE_AVX512_TARGET 0
#define WG_T512
static inline int wg_avx512(void) { return 0; }
#endif
#define WG_TBASE

/* geometry vector positions (fastconv._geometry.GEO_FIELDS) */
enum { WG_N, WG_C, WG_H, WG_W, WG_K, WG_KH, WG_KW, WG_SH, WG_SW, WG_PT, WG_PL, WG_DH, WG_DW,
       WG_G, WG_HO, WG_WO };

/* Vector lanes of one 64-byte vector, and K rounded up to them (gT's row length, dW part's). */
static inline int64_t wg_lanes(int itemsize) { return 64 / itemsize; }
static inline int64_t wg_kpad(int64_t K, int itemsize) {
    int64_t L = wg_lanes(itemsize);
    return (K + L - 1) / L * L;
}
/* The input rows (zero-padded) a task of `rows` output rows reads, and the columns of `cols`. */
static inline int64_t wg_span(const int64_t *g, int64_t rows) {
    return (rows - 1) * g[WG_SH] + (g[WG_KH] - 1) * g[WG_DH] + 1;
}
static inline int64_t wg_wspan(const int64_t *g, int64_t cols) {
    return (cols - 1) * g[WG_SW] + (g[WG_KW] - 1) * g[WG_DW] + 1;
}
/* Workspace elements one thread needs for tasks of ns samples x rows x cols output pixels. */
static inline int64_t wg_workspace(const int64_t *g, int64_t ns, int64_t rows, int64_t cols,
                                   int itemsize) {
    return ns * rows * cols * wg_kpad(g[WG_K], itemsize) +
           ns * g[WG_C] * wg_span(g, rows) * wg_wspan(g, cols);
}

/* One register tile: acc[m][t] += gT[p][kb + m*L ..] * xp[off[t] + pixel p's base], over the
   task's pixels; then dwt[q0 + t][kb + m*L ..] += acc[m][t] for t < nq. */
#define WG_TILE(SFX, T, L, TGT, MR, NR)                                                          \
    static TGT void wg_tile_##SFX##_##MR(const T *gt, int64_t ldg, const T *xp,                \
                                          const int64_t *off, int64_t ns, int64_t rows,          \
                                          int64_t Wo, int64_t sw, int64_t rstride,               \
                                          int64_t sstride, T *dwt, int64_t ldd, int nq,          \
                                          int first) {                                           \
        typedef T V __attribute__((vector_size(sizeof(T) * L)));                                 \
        typedef T VU __attribute__((vector_size(sizeof(T) * L), aligned(sizeof(T))));            \
        V acc[MR][NR];                                                                           \
        _Pragma("GCC unroll 4") for (int m = 0; m < MR; m++)                                     \
            _Pragma("GCC unroll 24") for (int t = 0; t < NR; t++) acc[m][t] = (V){0};            \
        int64_t o[NR];                                                                           \
        _Pragma("GCC unroll 24") for (int t = 0; t < NR; t++) o[t] = off[t];                     \
        /* the dW part's lines this tile adds into at its end: fetched while it computes (a   \
           part beyond L2 otherwise costs a third of the time in misses) */                     \
        if (!first)                                                                              \
            for (int t = 0; t < nq; t++)                                                         \
                _Pragma("GCC unroll 4") for (int m = 0; m < MR; m++)                             \
                    __builtin_prefetch(dwt + t * ldd + m * L, 1, 3);                             \
        const T *g = gt;                                                                         \
        for (int64_t n = 0; n < ns; n++) {                                                       \
            for (int64_t r = 0; r < rows; r++) {                                                 \
                const T *xw = xp + n * sstride + r * rstride;                                    \
                for (int64_t wo = 0; wo < Wo; wo++, g += ldg, xw += sw) {                        \
                    V a[MR];                                                                     \
                    _Pragma("GCC unroll 4") for (int m = 0; m < MR; m++) a[m] =                  \
                        *(const VU *)(g + m * L);                                                \
                    _Pragma("GCC unroll 24") for (int t = 0; t < NR; t++) {                      \
                        const T b = xw[o[t]];                                                    \
                        _Pragma("GCC unroll 4") for (int m = 0; m < MR; m++) acc[m][t] +=        \
                            a[m] * b;                                                            \
                    }                                                                            \
                }                                                                                \
            }                                                                                    \
        }                                                                                        \
        for (int t = 0; t < nq; t++) {                                                           \
            _Pragma("GCC unroll 4") for (int m = 0; m < MR; m++) {                               \
                VU *d = (VU *)(dwt + t * ldd + m * L);                                           \
                *d = first ? acc[m][t] : *d + acc[m][t];                                         \
            }                                                                                    \
        }                                                                                        \
    }

/* Register tiles: 24 accumulators (MR vectors x NR columns), NR broadcasts and MR loads a pixel. */
#define WG_NR(MR) ((MR) == 4 ? 6 : (MR) == 3 ? 8 : (MR) == 2 ? 12 : 16)

#define WG_DEFINE(SFX, T, L, TGT, GTFILL)                                                        \
    WG_TILE(SFX, T, L, TGT, 4, 6)                                                                \
    WG_TILE(SFX, T, L, TGT, 3, 8)                                                                \
    WG_TILE(SFX, T, L, TGT, 2, 12)                                                               \
    WG_TILE(SFX, T, L, TGT, 1, 16)                                                               \
    /* one task: samples n0 .. n0+ns-1 x output rows h0 .. h0+rows-1 x output columns          \
       w0 .. w0+cols-1 (rows < Ho only with ns 1, cols < Wo only with rows 1), output-channel     \
       vectors kv0 .. kv1-1 (kv0 a multiple of 4, kv1 at most Kp / L), added into dwt            \
       (Q x Kp, q-major; stored instead when `first`); ws holds wg_workspace(g, ns, rows, cols).  grad_output goes into gT     \
       in blocks of 4 vectors of channels, gT[block][p][4 * L], so a tile's strip of it is one   \
       contiguous run that stays in L1 while the tile's columns go by. */                       \
    static TGT void wg_task_##SFX(const T *x, const T *go, const int64_t *g, int64_t n0,       \
                                   int64_t ns, int64_t h0, int64_t rows, int64_t w0,           \
                                   int64_t cols, int64_t kv0, int64_t kv1, T *ws, T *dwt,      \
                                   int first) {                                                 \
        const int64_t C = g[WG_C], H = g[WG_H], W = g[WG_W], K = g[WG_K];                     \
        const int64_t kh = g[WG_KH], kw = g[WG_KW], sh = g[WG_SH], sw = g[WG_SW];               \
        const int64_t pt = g[WG_PT], pl = g[WG_PL], dh = g[WG_DH], dwd = g[WG_DW];              \
        const int64_t Ho = g[WG_HO], Wo = g[WG_WO];                                             \
        const int64_t Kp = wg_kpad(K, sizeof(T)), Q = C * kh * kw;                              \
        const int64_t span = wg_span(g, rows), wsp = wg_wspan(g, cols);                         \
        const int64_t P = ns * rows * cols, plane = span * wsp;                                 \
        T *gt = ws, *xp = ws + P * Kp;                                                          \
        (void)Ho;                                                                               \
        /* grad_output, pixel-major in blocks of 4 vectors of channels from vector kv0 */        \
        if (!GTFILL(go, g, n0, ns, h0, rows, w0, cols, kv0, kv1, gt, P))                        \
            for (int64_t k = kv0 * (L); k < kv1 * (L); k++) {                                   \
                const int64_t blk = (k / (L) - kv0) / 4;                                        \
                const int64_t bw = (kv1 - kv0 - 4 * blk < 4 ? kv1 - kv0 - 4 * blk : 4) * (L);   \
                T *dst = gt + blk * 4 * (L) * P + (k - kv0 * (L) - blk * 4 * (L));              \
                if (k >= K) {                                                                   \
                    for (int64_t p = 0; p < P; p++) dst[p * bw] = 0;                            \
                    continue;                                                                   \
                }                                                                               \
                int64_t p = 0;                                                                  \
                for (int64_t n = 0; n < ns; n++)                                                \
                    for (int64_t r = 0; r < rows; r++) {                                        \
                        const T *src = go + (((n0 + n) * K + k) * Ho + h0 + r) * Wo + w0;      \
                        for (int64_t c = 0; c < cols; c++, p++) dst[p * bw] = src[c];           \
                    }                                                                           \
            }                                                                                   \
        const int64_t lo = h0 * sh - pt, c0 = pl - w0 * sw; /* xp column of input column 0 */  \
        for (int64_t n = 0; n < ns; n++) { /* the input rows and columns read, zero-padded */    \
            for (int64_t c = 0; c < C; c++) {                                                   \
                const T *src = x + ((n0 + n) * C + c) * H * W;                                  \
                T *dst = xp + (n * C + c) * plane;                                              \
                for (int64_t r = 0; r < span; r++) {                                            \
                    T *d = dst + r * wsp;                                                       \
                    const int64_t hi = lo + r;                                                  \
                    int64_t a = c0 > 0 ? c0 : 0, b = W + c0; /* xp columns inside the image */ \
                    if (a > wsp) a = wsp;                                                       \
                    if (b > wsp) b = wsp;                                                       \
                    if (hi < 0 || hi >= H || b <= a) {                                          \
                        memset(d, 0, wsp * sizeof(T));                                          \
                        continue;                                                               \
                    }                                                                           \
                    if (a > 0) memset(d, 0, a * sizeof(T));                                     \
                    memcpy(d + a, src + hi * W + (a - c0), (b - a) * sizeof(T));                \
                    if (wsp > b) memset(d + b, 0, (wsp - b) * sizeof(T));                       \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
        int64_t off[16];                                                                        \
        for (int64_t kb = kv0; kb < kv1; kb += 4) {                                             \
            const int mr = kv1 - kb >= 4 ? 4 : (int)(kv1 - kb);                                 \
            const int nr = WG_NR(mr);                                                           \
            const T *gk = gt + (kb - kv0) * (L) * P;                                            \
            for (int64_t q0 = 0; q0 < Q; q0 += nr) {                                            \
                const int nq = Q - q0 < nr ? (int)(Q - q0) : nr;                                \
                for (int t = 0; t < nr; t++) {                                                  \
                    int64_t q = q0 + (t < nq ? t : 0), c = q / (kh * kw), tap = q % (kh * kw);  \
                    off[t] = c * plane + (tap / kw) * dh * wsp + (tap % kw) * dwd;              \
                }                                                                               \
                T *d = dwt + q0 * Kp + kb * (L);                                                \
                if (mr == 4)                                                                    \
                    wg_tile_##SFX##_4(gk, 4 * (L), xp, off, ns, rows, cols, sw, sh * wsp,       \
                                      C * plane, d, Kp, nq, first);                                    \
                else if (mr == 3)                                                               \
                    wg_tile_##SFX##_3(gk, 3 * (L), xp, off, ns, rows, cols, sw, sh * wsp,       \
                                      C * plane, d, Kp, nq, first);                                    \
                else if (mr == 2)                                                               \
                    wg_tile_##SFX##_2(gk, 2 * (L), xp, off, ns, rows, cols, sw, sh * wsp,       \
                                      C * plane, d, Kp, nq, first);                                    \
                else                                                                            \
                    wg_tile_##SFX##_1(gk, (L), xp, off, ns, rows, cols, sw, sh * wsp,           \
                                      C * plane, d, Kp, nq, first);                                    \
            }                                                                                   \
        }                                                                                       \
    }

/* gT fills (WG_DEFINE's GTFILL): return 0 to leave it to the instance's scalar loop. */
#define WG_NOFILL(go, g, n0, ns, h0, rows, w0, cols, kv0, kv1, gt, P) 0

#if WG_HAVE_AVX512_TARGET
#include <immintrin.h>
/* float32 gT by 16x16 in-register transposes: 16 channels x 16 pixels of a row at a time
   (masked loads past the row's end and zero vectors past K), stored as 16 pixel vectors.  The
   scalar loop's strided stores took 12-30% of the kernel's time. */
static WG_T512 int wg_gtfill_f32(const float *go, const int64_t *g, int64_t n0, int64_t ns,
                                 int64_t h0, int64_t rows, int64_t w0, int64_t cols, int64_t kv0,
                                 int64_t kv1, float *gt, int64_t P) {
    const int64_t K = g[WG_K], Ho = g[WG_HO], Wo = g[WG_WO];
    for (int64_t v = kv0; v < kv1; v++) {
        const int64_t blk = (v - kv0) / 4;
        const int64_t bw = (kv1 - kv0 - 4 * blk < 4 ? kv1 - kv0 - 4 * blk : 4) * 16;
        float *dst = gt + blk * 64 * P + (v - kv0 - 4 * blk) * 16;
        int64_t p = 0;
        for (int64_t n = 0; n < ns; n++)
            for (int64_t r = 0; r < rows; r++) {
                const float *src = go + (((n0 + n) * K + v * 16) * Ho + h0 + r) * Wo + w0;
                for (int64_t c0 = 0; c0 < cols; c0 += 16, p += 16) {
                    const int64_t nc = cols - c0 < 16 ? cols - c0 : 16;
                    const __mmask16 m = (__mmask16)((1u << nc) - 1);
                    __m512 t[16];
                    for (int i = 0; i < 16; i++)
                        t[i] = v * 16 + i < K ? _mm512_maskz_loadu_ps(m, src + i * Ho * Wo + c0)
                                              : _mm512_setzero_ps();
                    fc_transpose16(t);
                    for (int64_t j = 0; j < nc; j++) _mm512_storeu_ps(dst + (p + j) * bw, t[j]);
                    if (nc < 16) p -= 16 - nc;
                }
            }
    }
    return 1;
}
#endif

#if WG_HAVE_AVX512_TARGET
WG_DEFINE(f512, float, 16, WG_T512, wg_gtfill_f32)
WG_DEFINE(d512, double, 8, WG_T512, WG_NOFILL)
#endif
WG_DEFINE(fbase, float, 16, WG_TBASE, WG_NOFILL)
WG_DEFINE(dbase, double, 8, WG_TBASE, WG_NOFILL)

/* One task on the best instance this CPU runs. */
#if WG_HAVE_AVX512_TARGET
#define WG_DISPATCH(NAME, T, FAST, BASE)                                                         \
    static inline void NAME(const T *x, const T *go, const int64_t *g, int64_t n0, int64_t ns,   \
                            int64_t h0, int64_t rows, int64_t w0, int64_t cols, int64_t kv0,     \
                            int64_t kv1, T *ws, T *dwt, int first) {                              \
        if (wg_avx512())                                                                          \
            FAST(x, go, g, n0, ns, h0, rows, w0, cols, kv0, kv1, ws, dwt, first);                 \
        else                                                                                      \
            BASE(x, go, g, n0, ns, h0, rows, w0, cols, kv0, kv1, ws, dwt, first);                 \
    }
#else
#define WG_DISPATCH(NAME, T, FAST, BASE)                                                         \
    static inline void NAME(const T *x, const T *go, const int64_t *g, int64_t n0, int64_t ns,   \
                            int64_t h0, int64_t rows, int64_t w0, int64_t cols, int64_t kv0,     \
                            int64_t kv1, T *ws, T *dwt, int first) {                              \
        BASE(x, go, g, n0, ns, h0, rows, w0, cols, kv0, kv1, ws, dwt, first);                     \
    }
#endif
WG_DISPATCH(wg_task_f32, float, wg_task_f512, wg_task_fbase)
WG_DISPATCH(wg_task_f64, double, wg_task_d512, wg_task_dbase)

/* The depthwise weight gradient of one output channel k, float32, column stride 1 (any row
   stride, dilation, padding), read in place: per tap row i (its in-image output rows only) and
   group of up to 8 taps j, vector accumulators over 16 output pixels of a row sum
   go[n, k, ho, wo] * x[n, c, ho*sh + i*dh - pt, wo + j*dw - pl] under a mask of the pixels whose
   tap is inside the image (masked-out lanes are never read), so padding taps are skipped as
   the scalar kernel and torch's depthwise kernel skip them; the lanes go into dwk[i*kw + j]. */
#if WG_HAVE_AVX512_TARGET
#include <immintrin.h>
static inline __mmask16 wgdw_mask(int64_t lo, int64_t hi) { /* lanes lo <= l < hi of 16 */
    if (lo < 0) lo = 0;
    if (hi > 16) hi = 16;
    if (hi <= lo) return 0;
    return (__mmask16)((((uint32_t)1 << hi) - 1) & ~(((uint32_t)1 << lo) - 1));
}
/* kh x kw taps known at compile time (3x3, 5x5): one pass over grad_output's rows, each
   vector of it multiplied into every tap row's accumulators (kh*kw of them in registers); the
   per-tap column masks come from a table per row block (all-ones inside the row). */
#define WGDW_FIXED(KH, KW)                                                                        \
    static WG_T512 void wgdw_f32_##KH##x##KW(const float *x, const float *go, const int64_t *g,  \
                                             int64_t k, float *dwk) {                             \
        const int64_t C = g[WG_C], H = g[WG_H], W = g[WG_W], K = g[WG_K], N = g[WG_N];          \
        const int64_t sh = g[WG_SH], pt = g[WG_PT], pl = g[WG_PL], dh = g[WG_DH];              \
        const int64_t dwd = g[WG_DW], Ho = g[WG_HO], Wo = g[WG_WO];                             \
        const int64_t c = k / (K / C), nb = (Wo + 15) / 16;                                     \
        __mmask16 mt[KW][64];                                                                   \
        for (int u = 0; u < KW; u++) {                                                          \
            const int64_t ow = u * dwd - pl;                                                    \
            for (int64_t b = 0; b < nb && b < 64; b++)                                          \
                mt[u][b] = wgdw_mask(0, Wo - 16 * b) & wgdw_mask(-ow - 16 * b, W - ow - 16 * b); \
        }                                                                                       \
        __m512 acc[KH][KW];                                                                     \
        _Pragma("GCC unroll 8") for (int i = 0; i < KH; i++)                                    \
            _Pragma("GCC unroll 8") for (int u = 0; u < KW; u++) acc[i][u] = _mm512_setzero_ps(); \
        for (int64_t n = 0; n < N; n++) {                                                       \
            const float *gk = go + (n * K + k) * Ho * Wo;                                       \
            const float *xk = x + (n * C + c) * H * W;                                          \
            for (int64_t ho = 0; ho < Ho; ho++) {                                               \
                const float *gr = gk + ho * Wo;                                                 \
                const float *xr[KH];                                                            \
                int ok[KH];                                                                     \
                _Pragma("GCC unroll 8") for (int i = 0; i < KH; i++) {                          \
                    const int64_t hi = ho * sh + i * dh - pt;                                   \
                    ok[i] = hi >= 0 && hi < H;                                                  \
                    xr[i] = xk + (ok[i] ? hi : 0) * W - pl;                                     \
                }                                                                               \
                for (int64_t b = 0, wo = 0; wo < Wo; b++, wo += 16) {                           \
                    const __mmask16 m = wgdw_mask(0, Wo - wo);                                  \
                    const __m512 gv = _mm512_maskz_loadu_ps(m, gr + wo);                        \
                    _Pragma("GCC unroll 8") for (int u = 0; u < KW; u++) {                      \
                        const __mmask16 mj = b < 64 ? mt[u][b]                                  \
                                                    : m & wgdw_mask(pl - u * dwd - wo,          \
                                                                    W + pl - u * dwd - wo);     \
                        _Pragma("GCC unroll 8") for (int i = 0; i < KH; i++) {                  \
                            if (!ok[i]) continue;                                               \
                            acc[i][u] = _mm512_mask3_fmadd_ps(                                  \
                                gv, _mm512_maskz_loadu_ps(mj, xr[i] + wo + u * dwd), acc[i][u], \
                                mj);                                                            \
                        }                                                                       \
                    }                                                                           \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
        _Pragma("GCC unroll 8") for (int i = 0; i < KH; i++)                                    \
            _Pragma("GCC unroll 8") for (int u = 0; u < KW; u++)                                \
                dwk[i * KW + u] = _mm512_reduce_add_ps(acc[i][u]);                              \
    }
WGDW_FIXED(3, 3)
WGDW_FIXED(5, 5)

static WG_T512 void wgdw_f32_any(const float *x, const float *go, const int64_t *g, int64_t k,
                                    float *dwk) {
    const int64_t C = g[WG_C], H = g[WG_H], W = g[WG_W], K = g[WG_K], N = g[WG_N];
    const int64_t kh = g[WG_KH], kw = g[WG_KW], sh = g[WG_SH];
    const int64_t pt = g[WG_PT], pl = g[WG_PL], dh = g[WG_DH], dwd = g[WG_DW];
    const int64_t Ho = g[WG_HO], Wo = g[WG_WO];
    const int64_t c = k / (K / C);
    for (int64_t i = 0; i < kh; i++) {
        const int64_t oh = i * dh - pt; /* input row = ho*sh + oh */
        const int64_t h0 = oh >= 0 ? 0 : (-oh + sh - 1) / sh;
        const int64_t h1 = H - 1 - oh >= 0 ? ((H - 1 - oh) / sh + 1 < Ho ? (H - 1 - oh) / sh + 1 : Ho) : 0;
        for (int64_t j0 = 0; j0 < kw; j0 += 8) {
            const int nj = kw - j0 < 8 ? (int)(kw - j0) : 8;
            __m512 acc[8];
            for (int u = 0; u < 8; u++) acc[u] = _mm512_setzero_ps();
            for (int64_t n = 0; n < N; n++) {
                const float *gk = go + (n * K + k) * Ho * Wo;
                const float *xk = x + (n * C + c) * H * W;
                for (int64_t ho = h0; ho < h1; ho++) {
                    const float *gr = gk + ho * Wo;
                    const float *xr = xk + (ho * sh + oh) * W;
                    for (int64_t wo = 0; wo < Wo; wo += 16) {
                        const __mmask16 m = wgdw_mask(0, Wo - wo);
                        const __m512 gv = _mm512_maskz_loadu_ps(m, gr + wo);
                        for (int u = 0; u < 8; u++) {
                            if (u >= nj) break;
                            const int64_t ow = (j0 + u) * dwd - pl; /* input col = wo + ow */
                            const __mmask16 mj = m & wgdw_mask(-ow - wo, W - ow - wo);
                            acc[u] = _mm512_mask3_fmadd_ps(
                                gv, _mm512_maskz_loadu_ps(mj, xr + wo + ow), acc[u], mj);
                        }
                    }
                }
            }
            for (int u = 0; u < nj; u++) dwk[i * kw + j0 + u] = _mm512_reduce_add_ps(acc[u]);
        }
    }
}
#endif


static WG_T512 void wgdw_f32_avx512(const float *x, const float *go, const int64_t *g, int64_t k,
                                    float *dwk) {
    if (g[WG_KH] == 3 && g[WG_KW] == 3)
        wgdw_f32_3x3(x, go, g, k, dwk);
    else if (g[WG_KH] == 5 && g[WG_KW] == 5)
        wgdw_f32_5x5(x, go, g, k, dwk);
    else
        wgdw_f32_any(x, go, g, k, dwk);
}
#endif
