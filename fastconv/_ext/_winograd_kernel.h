/* Winograd F(2x2, 3x3) convolution for fastconv: 3x3, stride 1, dilation 1, any padding and groups,
 * shared or per-sample weights.  AVX-512 float32 transforms around the packed kernel's micro-kernel,
 * their AVX2 twins around its AVX2 sub-tiles (CPUs without AVX-512), and a portable C twin (float,
 * double) with the same workspace layout.
 *
 * Lavin & Gray (2016): a 2x2 output tile is Y = A^T [(G g G^T) . (B^T d B)] A with d the 4x4 input
 * patch, so the 36 multiplications of four outputs become 16, each a GEMM over input channels:
 *     M[a][k][t] = sum_c U[a][k][c] V[a][c][t],   a < 16 transform points, t output tiles.
 *   U: the weights, transformed once per call, laid out like the packed kernel's A panels:
 *      [nw][group][a][Kg/MR][Cg][MR] (zero rows past Kg).
 *   V: per thread, the transformed input of one block of TN tiles, [a][Cg][TN] (+ slack per a).
 *   M: per thread, [a][KB][TN] for KB output channels at a time, turned into outputs right away.
 * A task is (sequence, group, tile block, output-channel part).  With shared weights the tiles of
 * the whole batch form one sequence, so small images do not leave blocks half empty; with
 * per-sample weights each sample is its own sequence (its own U).
 * Rounding: the transforms add and subtract (B, A) and halve (G) values, so results differ from
 * direct summation by a few float32 ulps of the largest terms, well inside fastconv's 1e-4 table.
 * Nothing here allocates, validates, or needs OpenMP.
 * Measurement knobs (compile-time): WG_SKIP_IN, WG_SKIP_OUT leave out the input or output
 * transform (wrong results; for timing the GEMM part alone).
 */
#ifndef FASTCONV_WINOGRAD_KERNEL_H
#define FASTCONV_WINOGRAD_KERNEL_H

#include "_packed_kernel.h"

#define WG_KB 64  /* output channels per M block: 16 x 64 x 48 floats = 192 KiB, in L2 */

/* tiles per block: 48 (three zmm per micro-tile row); 32 past 256 channels, where V would not fit
 * in L2 (1 MiB on Zen 4) beside M.  Measured: 192-256 channels ran 5-13% faster at 48 than 32. */
static inline int64_t wg_nv(const int64_t *g) { return g[FC_C] / g[FC_G] <= 256 ? 3 : 2; }
static inline int64_t wg_tn(const int64_t *g) { return 16 * wg_nv(g); }
static inline int64_t wg_th(const int64_t *g) { return (g[FC_HO] + 1) / 2; }
static inline int64_t wg_tw(const int64_t *g) { return (g[FC_WO] + 1) / 2; }
static inline int64_t wg_seqs(const int64_t *g, int64_t nw) { return nw > 1 ? g[FC_N] : 1; }
static inline int64_t wg_seq_tiles(const int64_t *g, int64_t nw) {
    return (nw > 1 ? 1 : g[FC_N]) * wg_th(g) * wg_tw(g);
}
static inline int64_t wg_blocks(const int64_t *g, int64_t nw) {
    return (wg_seq_tiles(g, nw) + wg_tn(g) - 1) / wg_tn(g);
}
/* U's plane stride: a plane's m-blocks, plus a cache line so the 16 planes the weight transform
 * writes at once do not sit 4 KiB multiples apart, in one L1 set */
static inline int64_t wg_ublock(const int64_t *g) {
    return fc_mblocks(g) * FC_MR * (g[FC_C] / g[FC_G]) + 16;
}
static inline int64_t wg_u_size(const int64_t *g, int64_t nw) {
    return (nw * g[FC_G] * 16 * wg_ublock(g) + 15) / 16 * 16;
}
/* V rows are tn apart (no slack: L2 room is what limits the block), so the one store that would
 * spill past a block's last column is masked */
static inline int64_t wg_vrow(const int64_t *g) { return wg_tn(g); }
/* Plane strides are a cache line more than a multiple of the rows: the 16 planes the transforms
 * touch at once would otherwise sit 4 KiB multiples apart, in one L1 set (8 ways). */
static inline int64_t wg_vplane(const int64_t *g) { return (g[FC_C] / g[FC_G]) * wg_vrow(g) + 16; }
static inline int64_t wg_mplane(const int64_t *g) { return WG_KB * wg_tn(g) + 16; }
static inline int64_t wg_thread_size(const int64_t *g) {
    return 16 * wg_vplane(g) + 16 * wg_mplane(g);
}
static inline int64_t wg_workspace_size(const int64_t *g, int64_t nw, int64_t nthreads) {
    return FC_SLACK + wg_u_size(g, nw) + (nthreads < 1 ? 1 : nthreads) * wg_thread_size(g);
}
static inline int64_t wg_thread_offset(const int64_t *g, int64_t nw, int64_t tid) {
    return wg_u_size(g, nw) + tid * wg_thread_size(g);
}
/* weight-transform work items: one per (sample weights, group, m-block) */
static inline int64_t wg_num_ublocks(const int64_t *g, int64_t nw) {
    return nw * g[FC_G] * fc_mblocks(g);
}
/* Output-channel parts per tile block when blocks are too few to keep the threads busy (a batch of
 * 14x14 images is 4 blocks): each part redoes the cheap input transform for at least 8 m-blocks. */
static inline int64_t wg_ksplit(const int64_t *g, int64_t nw, int64_t nthreads) {
    int64_t tasks = wg_seqs(g, nw) * g[FC_G] * wg_blocks(g, nw);
    int64_t want = 4 * (nthreads < 1 ? 1 : nthreads), most = fc_mblocks(g) / 8;
    if (tasks >= want || most < 2) return 1;
    int64_t k = (want + tasks - 1) / tasks;
    return k < most ? k : most;
}
static inline int64_t wg_num_tasks(const int64_t *g, int64_t nw, int64_t ksplit) {
    return wg_seqs(g, nw) * g[FC_G] * wg_blocks(g, nw) * ksplit;
}

/* A block's tiles cut into runs along one tile row: sample, tile row, first tile column, length,
 * first block column. */
typedef struct {
    int64_t n;
    int64_t smp[FC_NR], ty[FC_NR], tx[FC_NR], len[FC_NR], d[FC_NR];
} wg_runs;

static inline void wg_block_runs(const int64_t *g, int64_t seq, int64_t nw, int64_t blk,
                                 wg_runs *r) {
    int64_t th = wg_th(g), tw = wg_tw(g), tn = wg_tn(g), total = wg_seq_tiles(g, nw);
    int64_t t = blk * tn, end = t + tn < total ? t + tn : total, d = 0;
    r->n = 0;
    while (t < end) {
        int64_t s = t / (th * tw), rest = t - s * th * tw, ty = rest / tw, tx = rest - ty * tw;
        int64_t len = tw - tx < end - t ? tw - tx : end - t;
        r->smp[r->n] = nw > 1 ? seq : s;
        r->ty[r->n] = ty;
        r->tx[r->n] = tx;
        r->len[r->n] = len;
        r->d[r->n] = d;
        r->n++;
        t += len;
        d += len;
    }
}

/* ---------------------------------------------------------------- portable C (float, double) */

#define WG_GENERIC(T, SFX)                                                                         \
/* U for one (weights, group, m-block): g (3x3) -> G g G^T (4x4) per output channel and input   \
 * channel.  Input channel by input channel, the m-block's 8 outputs go to each of the 16 planes   \
 * as one run of 8: planes lie ub elements (256 KiB at 256 x 256) apart, and the channel-inner   \
 * order stored one float a line per plane eight times over (3.3 ms for 256 x 256 x 3 x 3,         \
 * more than the whole convolution of a 4 x 14 x 14 batch). */                                    \
static void wg_transform_weights_##SFX(const T *w, T *u, const int64_t *g, int64_t nw,            \
                                       int64_t item) {                                             \
    int64_t Cg = g[FC_C] / g[FC_G], Kg = fc_Kg(g), mb_n = fc_mblocks(g), G = g[FC_G];             \
    int64_t mb = item % mb_n, grp = (item / mb_n) % G, s = item / (mb_n * G);                      \
    int64_t ub = wg_ublock(g);                                                                     \
    T *base = u + (s * G + grp) * 16 * ub + mb * FC_MR * Cg;                                       \
    for (int64_t c = 0; c < Cg; c++) {                                                             \
        T out[16][FC_MR], gg[9][FC_MR], t[12][FC_MR];                                              \
        /* the m-block's 8 output channels side by side: every step below is one loop over them */ \
        for (int64_t m = 0; m < FC_MR; m++) {                                                      \
            int64_t k = mb * FC_MR + m;                                                            \
            const T *src = w + ((s * g[FC_K] + grp * Kg + (k < Kg ? k : 0)) * Cg + c) * 9;         \
            for (int i = 0; i < 9; i++) gg[i][m] = k < Kg ? src[i] : (T)0;                         \
        }                                                                                          \
        for (int j = 0; j < 3; j++)                                                                \
            for (int64_t m = 0; m < FC_MR; m++) {                                                  \
                T g0 = gg[j][m], g1 = gg[3 + j][m], g2 = gg[6 + j][m];                             \
                t[j][m] = g0;                                                                      \
                t[3 + j][m] = (T)0.5 * (g0 + g1 + g2);                                             \
                t[6 + j][m] = (T)0.5 * (g0 - g1 + g2);                                             \
                t[9 + j][m] = g2;                                                                  \
            }                                                                                      \
        for (int i = 0; i < 4; i++)                                                                \
            for (int64_t m = 0; m < FC_MR; m++) {                                                  \
                T t0 = t[3 * i][m], t1 = t[3 * i + 1][m], t2 = t[3 * i + 2][m];                    \
                out[i * 4 + 0][m] = t0;                                                            \
                out[i * 4 + 1][m] = (T)0.5 * (t0 + t1 + t2);                                       \
                out[i * 4 + 2][m] = (T)0.5 * (t0 - t1 + t2);                                       \
                out[i * 4 + 3][m] = t2;                                                            \
            }                                                                                      \
        for (int a = 0; a < 16; a++)                                                               \
            memcpy(base + a * ub + c * FC_MR, out[a], FC_MR * sizeof(T));                          \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
static int wg_task_generic_##SFX(const T *x, const T *u, const T *bias, int64_t nb,               \
                                 int has_bias, const int64_t *g, int64_t nw, T *out, T *scratch,  \
                                 int64_t task, int64_t ksplit) {                                   \
    int64_t C = g[FC_C], H = g[FC_H], W = g[FC_W], G = g[FC_G], Cg = C / G, Kg = fc_Kg(g);        \
    int64_t Ho = g[FC_HO], Wo = g[FC_WO], tn = wg_tn(g), mb_n = fc_mblocks(g);                     \
    int64_t nblk = wg_blocks(g, nw), ub = wg_ublock(g), vp = wg_vplane(g);                         \
    int64_t kp = task % ksplit, rest = task / ksplit;                                              \
    int64_t blk = rest % nblk, grp = (rest / nblk) % G, seq = rest / (nblk * G);                   \
    T *V = scratch, *M = scratch + 16 * vp;                                                        \
    wg_runs r;                                                                                     \
    wg_block_runs(g, seq, nw, blk, &r);                                                            \
    if (r.n == 0) return 0;                                                                        \
    T chk = 0; /* v - v: 0 for finite outputs, NaN once one is NaN or inf */                        \
    for (int64_t c = 0; c < Cg; c++)                                                               \
        for (int64_t q = 0; q < r.n; q++) {                                                        \
            const T *plane = x + (r.smp[q] * C + grp * Cg + c) * H * W;                            \
            for (int64_t t = 0; t < r.len[q]; t++) {                                               \
                int64_t iy0 = 2 * r.ty[q] - g[FC_PT], ix0 = 2 * (r.tx[q] + t) - g[FC_PL];         \
                T d[4][4], b[4][4];                                                                \
                for (int i = 0; i < 4; i++)                                                        \
                    for (int j = 0; j < 4; j++) {                                                  \
                        int64_t iy = iy0 + i, ix = ix0 + j;                                        \
                        d[i][j] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? plane[iy * W + ix]   \
                                                                           : (T)0;               \
                    }                                                                              \
                for (int i = 0; i < 4; i++) {                                                      \
                    b[i][0] = d[i][0] - d[i][2];                                                   \
                    b[i][1] = d[i][1] + d[i][2];                                                   \
                    b[i][2] = d[i][2] - d[i][1];                                                   \
                    b[i][3] = d[i][1] - d[i][3];                                                   \
                }                                                                                  \
                for (int j = 0; j < 4; j++) {                                                      \
                    T *col = V + c * wg_vrow(g) + r.d[q] + t;                                      \
                    col[(0 * 4 + j) * vp] = b[0][j] - b[2][j];                                     \
                    col[(1 * 4 + j) * vp] = b[1][j] + b[2][j];                                     \
                    col[(2 * 4 + j) * vp] = b[2][j] - b[1][j];                                     \
                    col[(3 * 4 + j) * vp] = b[1][j] - b[3][j];                                     \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    int64_t ntile = r.d[r.n - 1] + r.len[r.n - 1];                                                 \
    int64_t mb0 = kp * mb_n / ksplit, mb1 = (kp + 1) * mb_n / ksplit;                              \
    for (int64_t kb = mb0; kb < mb1; kb += WG_KB / FC_MR) {                                        \
        int64_t kbe = kb + WG_KB / FC_MR < mb1 ? kb + WG_KB / FC_MR : mb1;                         \
        for (int a = 0; a < 16; a++) {                                                             \
            const T *ua = u + ((seq * (nw > 1) * G + grp) * 16 + a) * ub;                          \
            for (int64_t mb = kb; mb < kbe; mb++)                                                  \
                for (int m = 0; m < FC_MR; m++) {                                                  \
                    T *mrow = M + (a * WG_KB + (mb - kb) * FC_MR + m) * tn;                        \
                    for (int64_t t = 0; t < ntile; t++) mrow[t] = 0;                               \
                    for (int64_t c = 0; c < Cg; c++) {                                             \
                        T uv = ua[mb * FC_MR * Cg + c * FC_MR + m];                                \
                        const T *vrow = V + a * vp + c * wg_vrow(g);                                       \
                        for (int64_t t = 0; t < ntile; t++) mrow[t] += uv * vrow[t];               \
                    }                                                                              \
                }                                                                                  \
        }                                                                                          \
        for (int64_t kl = 0; kl < (kbe - kb) * FC_MR; kl++) {                                      \
            int64_t k = kb * FC_MR + kl;                                                           \
            if (k >= Kg) break;                                                                    \
            int64_t kk = grp * Kg + k;                                                             \
            for (int64_t q = 0; q < r.n; q++) {                                                    \
                int64_t smp = r.smp[q];                                                            \
                T add = has_bias ? bias[(nb > 1 ? smp : 0) * g[FC_K] + kk] : (T)0;                 \
                T *op = out + (smp * g[FC_K] + kk) * Ho * Wo;                                      \
                for (int64_t t = 0; t < r.len[q]; t++) {                                           \
                    T m[4][4], s[4][2];                                                            \
                    for (int a = 0; a < 16; a++)                                                   \
                        m[a / 4][a % 4] = M[(a * WG_KB + kl) * tn + r.d[q] + t];                   \
                    for (int i = 0; i < 4; i++) {                                                  \
                        s[i][0] = m[i][0] + m[i][1] + m[i][2];                                     \
                        s[i][1] = m[i][1] - m[i][2] - m[i][3];                                     \
                    }                                                                              \
                    int64_t oy = 2 * r.ty[q], ox = 2 * (r.tx[q] + t);                              \
                    for (int j = 0; j < 2; j++) {                                                  \
                        T y0 = s[0][j] + s[1][j] + s[2][j], y1 = s[1][j] - s[2][j] - s[3][j];     \
                        if (ox + j >= Wo) continue;                                                \
                        T v0 = y0 + add, v1 = y1 + add;                                            \
                        op[oy * Wo + ox + j] = v0;                                                 \
                        chk += v0 - v0;                                                            \
                        if (oy + 1 < Ho) {                                                         \
                            op[(oy + 1) * Wo + ox + j] = v1;                                       \
                            chk += v1 - v1;                                                        \
                        }                                                                          \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    return chk != chk;                                                                             \
}

WG_GENERIC(float, f32)
WG_GENERIC(double, f64)

/* ---------------------------------------------------------------- AVX-512 float32 */
#if FC_HAVE_X86

/* input row iy, from input column ix0: the four columns of 16 tiles (ix0 + 2t + {0,1,2,3}),
 * zeros outside the image; masks m[4] of the four loads, or m == NULL inside the image */
static inline FC_TARGET void wg_load_row(const float *plane, int64_t H, int64_t W, int64_t iy,
                                         int64_t ix0, const __mmask16 *m, __m512 *c) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    if (iy < 0 || iy >= H) {
        c[0] = c[1] = c[2] = c[3] = _mm512_setzero_ps();
        return;
    }
    const float *src = plane + iy * W + ix0;
    __m512 a0, a1, b0, b1;
    if (!m) {
        a0 = _mm512_loadu_ps(src);
        a1 = _mm512_loadu_ps(src + 16);
        b0 = _mm512_loadu_ps(src + 2);
        b1 = _mm512_loadu_ps(src + 18);
    } else {
        a0 = _mm512_maskz_loadu_ps(m[0], src);
        a1 = _mm512_maskz_loadu_ps(m[1], src + 16);
        b0 = _mm512_maskz_loadu_ps(m[2], src + 2);
        b1 = _mm512_maskz_loadu_ps(m[3], src + 18);
    }
    c[0] = _mm512_permutex2var_ps(a0, even, a1);
    c[1] = _mm512_permutex2var_ps(a0, odd, a1);
    c[2] = _mm512_permutex2var_ps(b0, even, b1);
    c[3] = _mm512_permutex2var_ps(b0, odd, b1);
}

/* V[a][c][col .. col+16) for 16 tiles of one tile row and `nc` channels.  Whole-vector stores:
 * lanes past the run land in later runs' columns, written after this one; `room` columns are
 * left in the block row, and a store that would run past them is masked (slow on Zen 4, so only
 * there). */
static FC_TARGET void wg_input_16(const float *x, int64_t nc, int64_t H, int64_t W, int64_t iy0,
                                  int64_t ix0, float *v, int64_t ldv, int64_t vp, int64_t room) {
    const __mmask16 sm = fc_lanes(0, room);
    __mmask16 mk[4];
    const __mmask16 *m = 0;
    if (ix0 < 0 || ix0 + 34 > W) {
        for (int i = 0; i < 4; i++) {
            int64_t q = ix0 + (i & 1) * 16 + (i >> 1) * 2;
            mk[i] = fc_lanes(-q, W - q);
        }
        m = mk;
    }
    for (int64_t c = 0; c < nc; c++) {
        const float *plane = x + c * H * W;
        float *vc = v + c * ldv;
        /* channels lie a plane apart, a stride no hardware prefetcher follows: fetch the rows of
         * the channel after next while this one is transformed */
        if (c + 2 < nc)
            for (int i = 0; i < 4; i++) {
                int64_t iy = iy0 + i, q = ix0 < 0 ? 0 : ix0;
                if (iy < 0 || iy >= H) continue;
                const char *p = (const char *)(plane + 2 * H * W + iy * W + q);
                _mm_prefetch(p, _MM_HINT_T0);
                _mm_prefetch(p + 64, _MM_HINT_T0);
                _mm_prefetch(p + 135, _MM_HINT_T0);
            }
        __m512 d[4][4], b[4][4];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) wg_load_row(plane, H, W, iy0 + i, ix0, m, d[i]);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            b[i][0] = _mm512_sub_ps(d[i][0], d[i][2]);
            b[i][1] = _mm512_add_ps(d[i][1], d[i][2]);
            b[i][2] = _mm512_sub_ps(d[i][2], d[i][1]);
            b[i][3] = _mm512_sub_ps(d[i][1], d[i][3]);
        }
        __m512 o[16];
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            o[0 * 4 + j] = _mm512_sub_ps(b[0][j], b[2][j]);
            o[1 * 4 + j] = _mm512_add_ps(b[1][j], b[2][j]);
            o[2 * 4 + j] = _mm512_sub_ps(b[2][j], b[1][j]);
            o[3 * 4 + j] = _mm512_sub_ps(b[1][j], b[3][j]);
        }
        if (sm == (__mmask16)0xFFFF) {
#pragma GCC unroll 16
            for (int a = 0; a < 16; a++) _mm512_storeu_ps(vc + a * vp, o[a]);
        } else {
#pragma GCC unroll 16
            for (int a = 0; a < 16; a++) _mm512_mask_storeu_ps(vc + a * vp, sm, o[a]);
        }
    }
}

/* outputs of 16 tiles (nt valid) of channel row kl of M: rows oy, oy+1 from column ox; *chk
 * gathers v - v of every value stored (0 while all are finite, NaN after a NaN or inf), so the
 * caller learns for the cost of a subtract and an add per vector whether to recompute */
static inline FC_TARGET void wg_output_16(const float *m, int64_t mp, float *op, int64_t Ho,
                                          int64_t Wo, int64_t oy, int64_t ox, int64_t nt,
                                          __m512 bias, __m512 *chk) {
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    __m512 s[4][2];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        __m512 m0 = _mm512_loadu_ps(m + (i * 4 + 0) * mp), m1 = _mm512_loadu_ps(m + (i * 4 + 1) * mp);
        __m512 m2 = _mm512_loadu_ps(m + (i * 4 + 2) * mp), m3 = _mm512_loadu_ps(m + (i * 4 + 3) * mp);
        s[i][0] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
        s[i][1] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
    }
    int64_t nf = 2 * nt < Wo - ox ? 2 * nt : Wo - ox;  /* output columns of these tiles */
    for (int r = 0; r < 2; r++) {
        if (oy + r >= Ho) break;
        __m512 y0, y1;
        if (r == 0) {
            y0 = _mm512_add_ps(_mm512_add_ps(s[0][0], s[1][0]), s[2][0]);
            y1 = _mm512_add_ps(_mm512_add_ps(s[0][1], s[1][1]), s[2][1]);
        } else {
            y0 = _mm512_sub_ps(_mm512_sub_ps(s[1][0], s[2][0]), s[3][0]);
            y1 = _mm512_sub_ps(_mm512_sub_ps(s[1][1], s[2][1]), s[3][1]);
        }
        y0 = _mm512_add_ps(y0, bias);
        y1 = _mm512_add_ps(y1, bias);
        __m512 e0 = _mm512_permutex2var_ps(y0, lo, y1), e1 = _mm512_permutex2var_ps(y0, hi, y1);
        float *dst = op + (oy + r) * Wo + ox;
        /* masked stores only at a row's end (they are slow on Zen 4) */
        if (nf >= 16) {
            _mm512_storeu_ps(dst, e0);
            *chk = _mm512_add_ps(*chk, _mm512_sub_ps(e0, e0));
        } else {
            _mm512_mask_storeu_ps(dst, fc_lanes(0, nf), e0);
            *chk = _mm512_mask_add_ps(*chk, fc_lanes(0, nf), *chk, _mm512_sub_ps(e0, e0));
        }
        if (nf >= 32) {
            _mm512_storeu_ps(dst + 16, e1);
            *chk = _mm512_add_ps(*chk, _mm512_sub_ps(e1, e1));
        } else if (nf > 16) {
            _mm512_mask_storeu_ps(dst + 16, fc_lanes(0, nf - 16), e1);
            *chk = _mm512_mask_add_ps(*chk, fc_lanes(0, nf - 16), *chk, _mm512_sub_ps(e1, e1));
        }
    }
}

/* returns 1 when some output it stored is NaN or +-inf */
static FC_TARGET int wg_task_avx512_f32(const float *x, const float *u, const float *bias,
                                        int64_t nb, int has_bias, const int64_t *g, int64_t nw,
                                        float *out, float *scratch, int64_t task, int64_t ksplit) {
    int64_t C = g[FC_C], H = g[FC_H], W = g[FC_W], G = g[FC_G], Cg = C / G, Kg = fc_Kg(g);
    int64_t Ho = g[FC_HO], Wo = g[FC_WO], tn = wg_tn(g), nv = wg_nv(g), mb_n = fc_mblocks(g);
    int64_t nblk = wg_blocks(g, nw), ub = wg_ublock(g), vp = wg_vplane(g), mp = wg_mplane(g);
    int64_t kp = task % ksplit, rest = task / ksplit;
    int64_t blk = rest % nblk, grp = (rest / nblk) % G, seq = rest / (nblk * G);
    float *V = scratch, *M = scratch + 16 * vp;
    wg_runs r;
    wg_block_runs(g, seq, nw, blk, &r);
    if (r.n == 0) return 0;
    __m512 chk = _mm512_setzero_ps();
    int64_t ntile = r.d[r.n - 1] + r.len[r.n - 1], ldv = wg_vrow(g);
    if (ntile < tn)  /* a short last block: junk columns finite (never denormal garbage) */
        for (int a = 0; a < 16; a++)
            for (int64_t c = 0; c < Cg; c++)
                memset(V + a * vp + c * ldv + ntile, 0, (size_t)(tn - ntile) * sizeof(float));
    /* 16 tiles at a time, all channels: their edge masks are worked out once */
#ifndef WG_SKIP_IN
    for (int64_t q = 0; q < r.n; q++) {
        const float *xs = x + (r.smp[q] * C + grp * Cg) * H * W;
        for (int64_t t = 0; t < r.len[q]; t += 16)
            wg_input_16(xs, Cg, H, W, 2 * r.ty[q] - g[FC_PT], 2 * (r.tx[q] + t) - g[FC_PL],
                        V + r.d[q] + t, ldv, vp, tn - r.d[q] - t);
    }
#endif
    /* a short last block multiplies only the vectors that hold tiles (a batch of 14x14 images is
     * 4 blocks of 48 tiles and one of 4) */
    int64_t nvb = (ntile + 15) / 16 < nv ? (ntile + 15) / 16 : nv;
    fc_segments s;  /* the micro-kernel's store: one whole piece, M rows tn apart */
    s.npc = 1;
    s.pd[0] = 0;
    s.plen[0] = 16 * nvb;
    s.poff[0] = 0;
    const float *ubase = u + ((nw > 1 ? seq : 0) * G + grp) * 16 * ub;
    int64_t mb0 = kp * mb_n / ksplit, mb1 = (kp + 1) * mb_n / ksplit;
    for (int64_t kb = mb0; kb < mb1; kb += WG_KB / FC_MR) {
        int64_t kbe = kb + WG_KB / FC_MR < mb1 ? kb + WG_KB / FC_MR : mb1;
        for (int a = 0; a < 16; a++)
            for (int64_t mb = kb; mb < kbe; mb++) {
                const float *ua = ubase + a * ub + mb * FC_MR * Cg;
                float *ma = M + a * mp;
                int64_t k0 = (mb - kb) * FC_MR;
                if (nvb == 3)
                    fc_micro_f32_nv3(Cg, ua, V + a * vp, ldv, ma, k0, tn, FC_MR, &s, 1, 0);
                else if (nvb == 2)
                    fc_micro_f32_nv2(Cg, ua, V + a * vp, ldv, ma, k0, tn, FC_MR, &s, 1, 0);
                else
                    fc_micro_f32_nv1(Cg, ua, V + a * vp, ldv, ma, k0, tn, FC_MR, &s, 1, 0);
            }
#ifdef WG_SKIP_OUT
        continue;
#endif
        for (int64_t kl = 0; kl < (kbe - kb) * FC_MR; kl++) {
            int64_t k = kb * FC_MR + kl;
            if (k >= Kg) break;
            int64_t kk = grp * Kg + k;
            for (int64_t q = 0; q < r.n; q++) {
                int64_t smp = r.smp[q];
                __m512 bv = _mm512_set1_ps(has_bias ? bias[(nb > 1 ? smp : 0) * g[FC_K] + kk] : 0.0f);
                float *op = out + (smp * g[FC_K] + kk) * Ho * Wo;
                for (int64_t t = 0; t < r.len[q]; t += 16) {
                    int64_t nt = r.len[q] - t < 16 ? r.len[q] - t : 16;
                    wg_output_16(M + kl * tn + r.d[q] + t, mp, op, Ho, Wo, 2 * r.ty[q],
                                 2 * (r.tx[q] + t), nt, bv, &chk);
                }
            }
        }
    }
    return _mm512_cmp_ps_mask(chk, chk, _CMP_UNORD_Q) != 0;
}
#endif /* FC_HAVE_X86 */

/* ---------------------------------------------------------------- AVX2 float32 (no AVX-512) */
#if FC_HAVE_X86

/* the even / odd elements of the 16 floats (a, b), in order */
static inline FC_TARGET2 __m256 wg_even2(__m256 a, __m256 b) {
    __m256 t = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}
static inline FC_TARGET2 __m256 wg_odd2(__m256 a, __m256 b) {
    __m256 t = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* input row iy from column ix0: the four columns ix0 + 2t + {0,1,2,3} of 8 tiles, zeros outside
 * the image (`inside`: columns ix0 .. ix0 + 18 all in it) */
static inline FC_TARGET2 void wg_load_row2(const float *plane, int64_t H, int64_t W, int64_t iy,
                                           int64_t ix0, int inside, __m256 c[4]) {
    if (iy < 0 || iy >= H) {
        c[0] = c[1] = c[2] = c[3] = _mm256_setzero_ps();
        return;
    }
    const float *src = plane + iy * W + ix0;
    __m256 a0, a1, b0, b1;
    if (inside) {
        a0 = _mm256_loadu_ps(src);
        a1 = _mm256_loadu_ps(src + 8);
        b0 = _mm256_loadu_ps(src + 2);
        b1 = _mm256_loadu_ps(src + 10);
    } else {
        float tmp[24];
        for (int e = 0; e < 24; e++)
            tmp[e] = (e < 18 && ix0 + e >= 0 && ix0 + e < W) ? src[e] : 0.0f;
        a0 = _mm256_loadu_ps(tmp);
        a1 = _mm256_loadu_ps(tmp + 8);
        b0 = _mm256_loadu_ps(tmp + 2);
        b1 = _mm256_loadu_ps(tmp + 10);
    }
    c[0] = wg_even2(a0, a1);
    c[1] = wg_odd2(a0, a1);
    c[2] = wg_even2(b0, b1);
    c[3] = wg_odd2(b0, b1);
}

/* V columns of 8 tiles (block column `col`, at most `room` columns left in the block), all Cg
 * channels: B^T d B of each 4x4 patch, one vector per transform point */
static FC_TARGET2 void wg_input_8(const float *x, int64_t nc, int64_t H, int64_t W, int64_t iy0,
                                  int64_t ix0, float *v, int64_t ldv, int64_t vp, int64_t room) {
    int inside = ix0 >= 0 && ix0 + 18 <= W;
    for (int64_t c = 0; c < nc; c++) {
        const float *plane = x + c * H * W;
        __m256 d[4][4], b[4][4], o[16];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) wg_load_row2(plane, H, W, iy0 + i, ix0, inside, d[i]);
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) {
            b[i][0] = _mm256_sub_ps(d[i][0], d[i][2]);
            b[i][1] = _mm256_add_ps(d[i][1], d[i][2]);
            b[i][2] = _mm256_sub_ps(d[i][2], d[i][1]);
            b[i][3] = _mm256_sub_ps(d[i][1], d[i][3]);
        }
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            o[0 * 4 + j] = _mm256_sub_ps(b[0][j], b[2][j]);
            o[1 * 4 + j] = _mm256_add_ps(b[1][j], b[2][j]);
            o[2 * 4 + j] = _mm256_sub_ps(b[2][j], b[1][j]);
            o[3 * 4 + j] = _mm256_sub_ps(b[1][j], b[3][j]);
        }
        float *vc = v + c * ldv;
        if (room >= 8) {
#pragma GCC unroll 16
            for (int a = 0; a < 16; a++) _mm256_storeu_ps(vc + a * vp, o[a]);
        } else {
            /* the block's last columns: only `room` of them (the rest is the next plane row) */
            float tmp[8];
            for (int a = 0; a < 16; a++) {
                _mm256_storeu_ps(tmp, o[a]);
                for (int64_t e = 0; e < room; e++) vc[a * vp + e] = tmp[e];
            }
        }
    }
}

/* outputs of 8 tiles of one output channel: A^T M A, + bias, into rows oy, oy + 1 from column ox
 * (nt tiles hold outputs); *chk (vector) and *chks (scalar) turn NaN once an output is not finite */
static inline FC_TARGET2 void wg_output_8(const float *m, int64_t mp, float *op, int64_t Ho,
                                          int64_t Wo, int64_t oy, int64_t ox, int64_t nt,
                                          __m256 bias, __m256 *chk, float *chks) {
    __m256 s[4][2];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        __m256 m0 = _mm256_loadu_ps(m + (i * 4 + 0) * mp), m1 = _mm256_loadu_ps(m + (i * 4 + 1) * mp);
        __m256 m2 = _mm256_loadu_ps(m + (i * 4 + 2) * mp), m3 = _mm256_loadu_ps(m + (i * 4 + 3) * mp);
        s[i][0] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
        s[i][1] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
    }
    int64_t nf = Wo - ox < 2 * nt ? Wo - ox : 2 * nt;
    for (int r = 0; r < 2; r++) {
        if (oy + r >= Ho) break;
        __m256 y0, y1;
        if (r == 0) {
            y0 = _mm256_add_ps(_mm256_add_ps(s[0][0], s[1][0]), s[2][0]);
            y1 = _mm256_add_ps(_mm256_add_ps(s[0][1], s[1][1]), s[2][1]);
        } else {
            y0 = _mm256_sub_ps(_mm256_sub_ps(s[1][0], s[2][0]), s[3][0]);
            y1 = _mm256_sub_ps(_mm256_sub_ps(s[1][1], s[2][1]), s[3][1]);
        }
        y0 = _mm256_add_ps(y0, bias);
        y1 = _mm256_add_ps(y1, bias);
        __m256 lo = _mm256_unpacklo_ps(y0, y1), hi = _mm256_unpackhi_ps(y0, y1);
        __m256 e0 = _mm256_permute2f128_ps(lo, hi, 0x20), e1 = _mm256_permute2f128_ps(lo, hi, 0x31);
        float *dst = op + (oy + r) * Wo + ox;
        if (nf >= 16) {
            _mm256_storeu_ps(dst, e0);
            _mm256_storeu_ps(dst + 8, e1);
            *chk = _mm256_add_ps(*chk, _mm256_add_ps(_mm256_sub_ps(e0, e0), _mm256_sub_ps(e1, e1)));
        } else {
            float tmp[16];
            _mm256_storeu_ps(tmp, e0);
            _mm256_storeu_ps(tmp + 8, e1);
            for (int64_t e = 0; e < nf; e++) {
                dst[e] = tmp[e];
                *chks += tmp[e] - tmp[e];
            }
        }
    }
}

/* One task, as wg_task_avx512_f32: transforms 8 tiles at a time, the 16 GEMMs through the
 * packed kernel's AVX2 sub-tiles */
static FC_TARGET2 int wg_task_avx2_f32(const float *x, const float *u, const float *bias,
                                       int64_t nb, int has_bias, const int64_t *g, int64_t nw,
                                       float *out, float *scratch, int64_t task, int64_t ksplit) {
    int64_t C = g[FC_C], H = g[FC_H], W = g[FC_W], G = g[FC_G], Cg = C / G, Kg = fc_Kg(g);
    int64_t Ho = g[FC_HO], Wo = g[FC_WO], tn = wg_tn(g), mb_n = fc_mblocks(g);
    int64_t nblk = wg_blocks(g, nw), ub = wg_ublock(g), vp = wg_vplane(g), mp = wg_mplane(g);
    int64_t kp = task % ksplit, rest = task / ksplit;
    int64_t blk = rest % nblk, grp = (rest / nblk) % G, seq = rest / (nblk * G);
    float *V = scratch, *M = scratch + 16 * vp;
    wg_runs r;
    wg_block_runs(g, seq, nw, blk, &r);
    if (r.n == 0) return 0;
    __m256 chk = _mm256_setzero_ps();
    float chks = 0.0f;
    int64_t ntile = r.d[r.n - 1] + r.len[r.n - 1], ldv = wg_vrow(g);
    if (ntile < tn)  /* a short last block: junk columns finite (never denormal garbage) */
        for (int a = 0; a < 16; a++)
            for (int64_t c = 0; c < Cg; c++)
                memset(V + a * vp + c * ldv + ntile, 0, (size_t)(tn - ntile) * sizeof(float));
#ifndef WG_SKIP_IN
    for (int64_t q = 0; q < r.n; q++) {
        const float *xs = x + (r.smp[q] * C + grp * Cg) * H * W;
        for (int64_t t = 0; t < r.len[q]; t += 8)
            wg_input_8(xs, Cg, H, W, 2 * r.ty[q] - g[FC_PT], 2 * (r.tx[q] + t) - g[FC_PL],
                       V + r.d[q] + t, ldv, vp, tn - r.d[q] - t);
    }
#endif
    int64_t ncols = (ntile + 7) / 8 * 8;
    fc_segments s;  /* the micro-kernel's store: one whole piece, M rows tn apart */
    s.npc = 1;
    s.pd[0] = 0;
    s.plen[0] = ncols;
    s.poff[0] = 0;
    const float *ubase = u + ((nw > 1 ? seq : 0) * G + grp) * 16 * ub;
    int64_t mb0 = kp * mb_n / ksplit, mb1 = (kp + 1) * mb_n / ksplit;
    for (int64_t kb = mb0; kb < mb1; kb += WG_KB / FC_MR) {
        int64_t kbe = kb + WG_KB / FC_MR < mb1 ? kb + WG_KB / FC_MR : mb1;
        for (int a = 0; a < 16; a++)
            for (int64_t col0 = 0; col0 < ncols; col0 += 24) {
                int64_t ny = (ncols - col0) / 8 < 3 ? (ncols - col0) / 8 : 3;
                /* input channels in blocks of FC_KC2: a block's V columns stay in L1 */
                for (int64_t cb = 0; cb < Cg; cb += FC_KC2) {
                    int64_t kcb = Cg - cb < FC_KC2 ? Cg - cb : FC_KC2;
                    const float *vb = V + a * vp + cb * ldv;
                    for (int64_t mb = kb; mb < kbe; mb++) {
                        const float *ua = ubase + a * ub + mb * FC_MR * Cg + cb * FC_MR;
                        float *ma = M + a * mp;
                        int64_t k0 = (mb - kb) * FC_MR;
                        int first = cb == 0;
                        for (int m0 = 0; m0 < FC_MR; m0 += 4) {
                            if (ny == 3)
                                fc_micro2_ny3(kcb, ua, vb, ldv, ma, k0, tn, FC_MR, &s, first, 0,
                                              m0, col0);
                            else if (ny == 2)
                                fc_micro2_ny2(kcb, ua, vb, ldv, ma, k0, tn, FC_MR, &s, first, 0,
                                              m0, col0);
                            else
                                fc_micro2_ny1(kcb, ua, vb, ldv, ma, k0, tn, FC_MR, &s, first, 0,
                                              m0, col0);
                        }
                    }
                }
            }
#ifdef WG_SKIP_OUT
        continue;
#endif
        for (int64_t kl = 0; kl < (kbe - kb) * FC_MR; kl++) {
            int64_t k = kb * FC_MR + kl;
            if (k >= Kg) break;
            int64_t kk = grp * Kg + k;
            for (int64_t q = 0; q < r.n; q++) {
                int64_t smp = r.smp[q];
                __m256 bv = _mm256_set1_ps(has_bias ? bias[(nb > 1 ? smp : 0) * g[FC_K] + kk] : 0.0f);
                float *op = out + (smp * g[FC_K] + kk) * Ho * Wo;
                for (int64_t t = 0; t < r.len[q]; t += 8) {
                    int64_t nt = r.len[q] - t < 8 ? r.len[q] - t : 8;
                    wg_output_8(M + kl * tn + r.d[q] + t, mp, op, Ho, Wo, 2 * r.ty[q],
                                2 * (r.tx[q] + t), nt, bv, &chk, &chks);
                }
            }
        }
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, chk);
    for (int e = 0; e < 8; e++) chks += lanes[e];
    return chks != chks;
}
#endif /* FC_HAVE_X86 */

/* One task; returns 1 when some output it wrote is NaN or +-inf (the transforms turn one inf
 * into NaN and inf where direct summation gives inf, so the caller recomputes those calls). */
static inline int wg_task_f32(const float *x, const float *u, const float *bias, int64_t nb,
                              int has_bias, const int64_t *g, int64_t nw, float *out,
                              float *scratch, int64_t task, int64_t ksplit) {
#if FC_HAVE_X86
    if (fc_have_avx512())
        return wg_task_avx512_f32(x, u, bias, nb, has_bias, g, nw, out, scratch, task, ksplit);
    if (fc_have_avx2())
        return wg_task_avx2_f32(x, u, bias, nb, has_bias, g, nw, out, scratch, task, ksplit);
#endif
    return wg_task_generic_f32(x, u, bias, nb, has_bias, g, nw, out, scratch, task, ksplit);
}

static inline int wg_task_f64(const double *x, const double *u, const double *bias, int64_t nb,
                              int has_bias, const int64_t *g, int64_t nw, double *out,
                              double *scratch, int64_t task, int64_t ksplit) {
    return wg_task_generic_f64(x, u, bias, nb, has_bias, g, nw, out, scratch, task, ksplit);
}

#endif /* FASTCONV_WINOGRAD_KERNEL_H */
