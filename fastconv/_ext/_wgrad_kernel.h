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

#if defined(__GNUC__) && defined(__x86_64__)
#define WG_HAVE_AVX512_TARGET 1
#define WG_T512 __attribute__((target("avx512f")))
static inline int wg_avx512(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && !getenv("FASTCONV_NO_AVX512") ? 1 : 0;
    }
    return cached;
}
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

#define WG_DEFINE(SFX, T, L, TGT)                                                                \
    WG_TILE(SFX, T, L, TGT, 4, 6)                                                                \
    WG_TILE(SFX, T, L, TGT, 3, 8)                                                                \
    WG_TILE(SFX, T, L, TGT, 2, 12)                                                               \
    WG_TILE(SFX, T, L, TGT, 1, 16)                                                               \
    /* one task: samples n0 .. n0+ns-1 x output rows h0 .. h0+rows-1 x output columns          \
       w0 .. w0+cols-1 (rows < Ho only with ns 1, cols < Wo only with rows 1), added into dwt     \
       (Q x Kp, q-major; stored instead when `first`); ws holds wg_workspace(g, ns, rows, cols).  grad_output goes into gT     \
       in blocks of 4 vectors of channels, gT[block][p][4 * L], so a tile's strip of it is one   \
       contiguous run that stays in L1 while the tile's columns go by. */                       \
    static TGT void wg_task_##SFX(const T *x, const T *go, const int64_t *g, int64_t n0,       \
                                   int64_t ns, int64_t h0, int64_t rows, int64_t w0,           \
                                   int64_t cols, T *ws, T *dwt, int first) {                    \
        const int64_t C = g[WG_C], H = g[WG_H], W = g[WG_W], K = g[WG_K];                     \
        const int64_t kh = g[WG_KH], kw = g[WG_KW], sh = g[WG_SH], sw = g[WG_SW];               \
        const int64_t pt = g[WG_PT], pl = g[WG_PL], dh = g[WG_DH], dwd = g[WG_DW];              \
        const int64_t Ho = g[WG_HO], Wo = g[WG_WO];                                             \
        const int64_t Kp = wg_kpad(K, sizeof(T)), Q = C * kh * kw, nvec = Kp / (L);             \
        const int64_t span = wg_span(g, rows), wsp = wg_wspan(g, cols);                         \
        const int64_t P = ns * rows * cols, plane = span * wsp;                                 \
        T *gt = ws, *xp = ws + P * Kp;                                                          \
        (void)Ho;                                                                               \
        for (int64_t k = 0; k < Kp; k++) { /* grad_output, pixel-major in channel blocks */     \
            const int64_t v = k / (L), blk = v / 4, bw = (nvec - 4 * blk < 4 ? nvec - 4 * blk : 4) * (L); \
            T *dst = gt + blk * 4 * (L) * P + (k - blk * 4 * (L));                              \
            if (k >= K) {                                                                       \
                for (int64_t p = 0; p < P; p++) dst[p * bw] = 0;                                \
                continue;                                                                       \
            }                                                                                   \
            int64_t p = 0;                                                                      \
            for (int64_t n = 0; n < ns; n++)                                                    \
                for (int64_t r = 0; r < rows; r++) {                                            \
                    const T *src = go + (((n0 + n) * K + k) * Ho + h0 + r) * Wo + w0;          \
                    for (int64_t c = 0; c < cols; c++, p++) dst[p * bw] = src[c];               \
                }                                                                               \
        }                                                                                       \
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
        for (int64_t kb = 0; kb < nvec; kb += 4) {                                              \
            const int mr = nvec - kb >= 4 ? 4 : (int)(nvec - kb);                               \
            const int nr = WG_NR(mr);                                                           \
            const T *gk = gt + kb * (L) * P;                                                    \
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

#if WG_HAVE_AVX512_TARGET
WG_DEFINE(f512, float, 16, WG_T512)
WG_DEFINE(d512, double, 8, WG_T512)
#endif
WG_DEFINE(fbase, float, 16, WG_TBASE)
WG_DEFINE(dbase, double, 8, WG_TBASE)

/* One task on the best instance this CPU runs. */
static inline void wg_task_f32(const float *x, const float *go, const int64_t *g, int64_t n0,
                               int64_t ns, int64_t h0, int64_t rows, int64_t w0, int64_t cols,
                               float *ws, float *dwt, int first) {
#if WG_HAVE_AVX512_TARGET
    if (wg_avx512()) {
        wg_task_f512(x, go, g, n0, ns, h0, rows, w0, cols, ws, dwt, first);
        return;
    }
#endif
    wg_task_fbase(x, go, g, n0, ns, h0, rows, w0, cols, ws, dwt, first);
}
static inline void wg_task_f64(const double *x, const double *go, const int64_t *g, int64_t n0,
                               int64_t ns, int64_t h0, int64_t rows, int64_t w0, int64_t cols,
                               double *ws, double *dwt, int first) {
#if WG_HAVE_AVX512_TARGET
    if (wg_avx512()) {
        wg_task_d512(x, go, g, n0, ns, h0, rows, w0, cols, ws, dwt, first);
        return;
    }
#endif
    wg_task_dbase(x, go, g, n0, ns, h0, rows, w0, cols, ws, dwt, first);
}

#endif
