/* Packed, register-blocked convolution (implicit GEMM) for fastconv: the AVX-512 micro-kernel,
 * the panel packing it reads, an AVX2 twin of the pixel-lane tile for CPUs without AVX-512, and a
 * portable C twin used without either and for float64.
 *
 * One conv2d per group is the GEMM out[k, p] = sum_r W[k, r] * B[r, p] with r = (c, i, j) over
 * Cg*kh*kw and p over the Ho*Wo output pixels of one sample (B is im2col, never materialised).
 * Output is NCHW, so the micro-tile runs MR output channels x NR output pixels with the pixels in
 * the vector lanes: stores are contiguous and pixel remainders are AVX-512 masks.
 *   A: the weights of one group, packed once per call as [Kg/MR][R][MR] (zero rows past Kg).
 *   B, packed mode: per thread, an im2col panel of one stripe of NR pixels (stripes run over the
 *      whole batch) and KC rows, [KC][NR]; 1x1 stride-1 stripes read the input planes directly.
 *   B, implicit mode: a zero-bordered, stride-phase-split copy of the input made once per call,
 *      read through a table of row offsets (no packing; see fc_implicit for when it is chosen).
 * A task is (group, stripe[, output-channel part]); the caller runs tasks in an OpenMP loop,
 * each thread with its own B panel.  Nothing here allocates, validates, or needs OpenMP.
 * Measurement knobs (compile-time): FC_KC, FC_NO_DIRECT, FC_NO_IMPLICIT, FC_FORCE_IMPLICIT,
 * FC_CHUNKS_PER_THREAD, FC_KSPLIT_TASKS, FC_NO_PFW, FC_PFW_DIST.
 */
#ifndef FASTCONV_PACKED_KERNEL_H
#define FASTCONV_PACKED_KERNEL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_epilogue_kernel.h"
#include "_transpose16.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define FC_HAVE_X86 1
#define FC_TARGET __attribute__((target("avx512f,fma")))
#else
#define FC_HAVE_X86 0
#endif

#define FC_MR 8     /* output channels per micro-tile (broadcast operand) */
#define FC_NV 3     /* zmm vectors of pixels per micro-tile row */
#define FC_NR 48    /* pixels per stripe: FC_NV * 16 floats (float64 uses FC_NR / 2) */
#ifndef FC_KC
#define FC_KC 256   /* rows of B per panel: a 48 KiB panel, streamed from L1/L2 by every m-block */
#endif
#define FC_SLACK 16 /* elements of workspace slack for aligning to 64 bytes */

/* geometry vector positions: fastconv._geometry.GEO_FIELDS */
enum { FC_N, FC_C, FC_H, FC_W, FC_K, FC_KH, FC_KW, FC_SH, FC_SW, FC_PT, FC_PL, FC_DH, FC_DW,
       FC_G, FC_HO, FC_WO };

static inline int64_t fc_R(const int64_t *g) { return g[FC_C] / g[FC_G] * g[FC_KH] * g[FC_KW]; }
static inline int64_t fc_Kg(const int64_t *g) { return g[FC_K] / g[FC_G]; }
static inline int64_t fc_mblocks(const int64_t *g) { return (fc_Kg(g) + FC_MR - 1) / FC_MR; }
/* Stripes run over the N*Ho*Wo pixels of the whole batch and may cross samples, so small images
 * (14x14 = 196 = 4 * 48 + 4 pixels) do not pay a nearly empty tile per sample. */
static inline int64_t fc_stripes(const int64_t *g) {
    return (g[FC_N] * g[FC_HO] * g[FC_WO] + FC_NR - 1) / FC_NR;
}
/* A panels, one per (group, m-block) */
static inline int64_t fc_num_ablocks(const int64_t *g) { return g[FC_G] * fc_mblocks(g); }
static inline int64_t fc_apack_size(const int64_t *g) { return fc_num_ablocks(g) * FC_MR * fc_R(g); }
/* +16: packing stores whole vectors, and the last one may run 15 elements past the panel */
static inline int64_t fc_bpanel_size(void) { return FC_KC * FC_NR + 16; }
static inline int fc_have_avx512(void);
static inline int fc_have_avx2(void);

/* Implicit mode: the input is copied once, zero-bordered and split into sh x sw stride phases,
 * into xp: plane (n, c, a, b) holds padded-input pixel (y*sh + a, x*sw + b) at (y, x), Hq x Wq =
 * (Ho + (kh-1)*dh/sh) x (Wo + (kw-1)*dw/sw).  Over "virtual" output rows Wq wide, im2col row
 * r = (c, i, j) is then xp shifted by off[r] (phase (i*dh % sh, j*dw % sw), shift
 * (i*dh / sh, j*dw / sw)), so the micro-kernel reads B straight from xp with no packing, at any
 * stride.  It computes Wq - Wo junk columns per row and is chosen when that waste costs less
 * than packing (which costs most when K is small).
 * With sw == 1 a row is instead [G zeros][the W input columns]: the gap serves as the right
 * padding of one row and the left padding of the next, so Wq = G + W with G = max(pl, pr):
 * one junk column per row for a 3x3 layer instead of two. */
static inline int64_t fc_gap(const int64_t *g) {  /* sw == 1 only */
    int64_t W = g[FC_W], Wo = g[FC_WO], pl = g[FC_PL];
    int64_t pr = Wo + (g[FC_KW] - 1) * g[FC_DW] - pl - W, G = pl;
    if (pr > G) G = pr;
    if (Wo - W > G) G = Wo - W;  /* virtual rows must hold Wo columns */
    return G;
}
static inline int64_t fc_hq(const int64_t *g) {
    return g[FC_HO] + g[FC_DH] * (g[FC_KH] - 1) / g[FC_SH];
}
static inline int64_t fc_wq(const int64_t *g) {
    if (g[FC_SW] == 1) return fc_gap(g) + g[FC_W];
    return g[FC_WO] + g[FC_DW] * (g[FC_KW] - 1) / g[FC_SW];
}
static inline int64_t fc_vtiles(const int64_t *g) {  /* tiles per sample in implicit mode */
    return (g[FC_HO] * fc_wq(g) + FC_NR - 1) / FC_NR;
}
static inline int64_t fc_num_planes(const int64_t *g);
static inline int64_t fc_xpad_size(const int64_t *g) {
    /* + slack: the last tile's junk columns read up to a row and a tile past the last plane */
    return g[FC_N] * g[FC_C] * g[FC_SH] * g[FC_SW] * fc_hq(g) * fc_wq(g) + 4 * fc_wq(g) +
           2 * FC_NR + 64;
}
static inline int fc_implicit(const int64_t *g) {
#ifdef FC_NO_IMPLICIT
    return 0;
#endif
    if (!fc_have_avx512()) return 0;
    if (g[FC_KH] * g[FC_KW] == 1 && g[FC_SH] == 1 && g[FC_SW] == 1 && g[FC_PT] == 0 &&
        g[FC_PL] == 0 && g[FC_HO] == g[FC_H] && g[FC_WO] == g[FC_W])
        return 0;                                           /* 1x1 direct is better still */
    int64_t R = fc_R(g), HW = g[FC_SH] * g[FC_SW] * fc_hq(g) * fc_wq(g);
    if (R > 4608) return 0;                                 /* B rows of a tile kept in L2 */
    if ((g[FC_C] / g[FC_G]) * HW >= ((int64_t)1 << 31)) return 0;   /* int32 offsets */
    if (fc_xpad_size(g) > ((int64_t)8 << 20)) return 0;     /* 32 MiB of float32 */
    /* Fitted to single-thread runs on this machine (Zen 4): packing costs ~12% of the FMA
     * time at K = 64 per group, ~9% at 128, ~7% at 256; implicit mode costs its junk columns,
     * vtiles * NR / (Ho * Wo) - 1, plus ~2% (stride 1) or ~6% (strided: B rows come from
     * sh*sw phase planes, fewer L1 hits), plus its bordered input copy, which weighs more the
     * fewer multiply-adds each input pixel meets: 2x2 layers on 16x16 planes ran 10-19%
     * faster on stripes at K = 32-128 (the stride phases of DCGAN's 4x4 transposed
     * convolutions), 3x3 layers at K = 32 10% slower (Xeon, against the rule without this
     * term); fitted as 48 / (Kg x taps^2). */
    double pack = 0.05 + 0.6 / (double)fc_mblocks(g);
    int64_t vt = fc_vtiles(g), rem = g[FC_HO] * fc_wq(g) - (vt - 1) * FC_NR;
    double waste = (double)((vt - 1) * FC_NR + (rem + 15) / 16 * 16) /
                       (double)(g[FC_HO] * g[FC_WO]) - 1.0;
    waste += (g[FC_SH] > 1 || g[FC_SW] > 1) ? 0.06 : 0.02;
    waste += 48.0 / (double)(fc_Kg(g) * g[FC_KH] * g[FC_KW] * g[FC_KH] * g[FC_KW]);
#ifdef FC_FORCE_IMPLICIT
    return 1;
#endif
    return waste < pack;
}

/* K-lanes mode, for few output pixels (late ResNet layers at batch 1: 7x7 = 49 pixels, which
 * the pixel-lane tile covers with 64 lanes, and whose weights are used only 49 times each, so
 * packing them all up front costs as much as a fifth of the call): the micro-tile turns around,
 * 64 output channels in 4 zmm vectors x MP pixels broadcast (out^T = B^T A^T).
 *   B: im2col of all N*Ho*Wo pixels packed once per call, [G][pixel group][R][MP], pixels past
 *      N*Ho*Wo zero.
 *   A: each task (group, 64-channel block, pixel part) transposes its own KC x 64 weight block
 *      from the (K, C, kh, kw) layout into a per-thread panel right before using it (in L1/L2),
 *      so the weights are read once per call and never written back to memory.
 *   Out: a per-thread tile [pixels][64] accumulated over the KC blocks, stored transposed. */
#define FC_KL_KB 64       /* output channels per K-lanes tile: 4 zmm vectors */
#ifndef FC_KL_KC
#define FC_KL_KC 256      /* weight rows per A panel: 64 KiB */
#endif
#ifndef FC_KL_MAXNP
#define FC_KL_MAXNP 392   /* most pixels (N*Ho*Wo) the mode takes: 8 x 7 x 7 */
#endif
static inline int64_t fc_kl_mp(const int64_t *g) {
    /* pixels per tile, 4..7: the fewest padded pixels, ties to the widest (fewer A loads) */
    int64_t NP = g[FC_N] * g[FC_HO] * g[FC_WO], best = 7, bc = (NP + 6) / 7 * 7;
    for (int64_t mp = 6; mp >= 4; mp--) {
        int64_t c = (NP + mp - 1) / mp * mp;
        if (c < bc) best = mp, bc = c;
    }
    return best;
}
static inline int64_t fc_kl_groups(const int64_t *g) {  /* pixel groups */
    int64_t mp = fc_kl_mp(g);
    return (g[FC_N] * g[FC_HO] * g[FC_WO] + mp - 1) / mp;
}
static inline int64_t fc_kl_kblocks(const int64_t *g) { return (fc_Kg(g) + FC_KL_KB - 1) / FC_KL_KB; }
static inline int fc_klanes(const int64_t *g) {
#ifdef FC_NO_KLANES
    return 0;
#endif
    if (!fc_have_avx512()) return 0;
    int64_t NP = g[FC_N] * g[FC_HO] * g[FC_WO];
    /* Measured here against the pixel-lane modes (1 thread, kernel alone, 3x3 unless said):
     * 0.6-0.8x at 2-8 x 512x7x7, 0.86-0.94x at 1x64-128x14x14, even at 20x20 (400 pixels) and
     * at 48 output channels, 1.03-1.14x at 576-1089 pixels; 1x1 stride 1 (whose B the stripes
     * read in place): 0.73x at 49 pixels, 1.15x at 196. */
    if (NP > FC_KL_MAXNP || fc_Kg(g) < 64) return 0;
    if (g[FC_KH] * g[FC_KW] == 1 && g[FC_SH] == 1 && g[FC_SW] == 1 && g[FC_PT] == 0 &&
        g[FC_PL] == 0 && g[FC_HO] == g[FC_H] && g[FC_WO] == g[FC_W] && NP > 100)
        return 0;
    if (fc_R(g) * fc_kl_groups(g) * fc_kl_mp(g) * g[FC_G] > ((int64_t)4 << 20)) return 0;
    return 1;
}
/* elements per packed pixel group: R rows of MP, + 16 slack for packing's whole-vector stores */
static inline int64_t fc_kl_gstride(const int64_t *g) { return fc_R(g) * fc_kl_mp(g) + 16; }
static inline int64_t fc_kl_bsize(const int64_t *g) {  /* packed B, rounded to 16 */
    return (g[FC_G] * fc_kl_groups(g) * fc_kl_gstride(g) + 15) / 16 * 16;
}
static inline int64_t fc_kl_thread_size(const int64_t *g) {  /* A panel + out tile, per thread */
    return FC_KL_KC * FC_KL_KB + fc_kl_groups(g) * fc_kl_mp(g) * FC_KL_KB;
}
/* pixel parts per (group, channel block): enough tasks for every thread twice over, each part
 * at least 4 pixel groups (every part transposes its weight block again) */
static inline int64_t fc_kl_parts(const int64_t *g, int64_t nthreads) {
    int64_t t = g[FC_G] * fc_kl_kblocks(g), want = 2 * (nthreads < 1 ? 1 : nthreads);
    int64_t most = fc_kl_groups(g) / 4, k = (want + t - 1) / t;
    if (most < 1) most = 1;
    return k < most ? k : most;
}

static inline int64_t fc_num_tasks(const int64_t *g) {
    if (fc_klanes(g)) return g[FC_G] * fc_kl_kblocks(g);  /* times fc_kl_parts */
    if (fc_implicit(g)) return g[FC_G] * g[FC_N] * fc_vtiles(g);
    return g[FC_G] * fc_stripes(g);
}
/* consecutive tasks per scheduling chunk: up to 4 (neighbouring stripes share input rows and
 * prefetches), while leaving at least 16 chunks per thread for balance (a batch-1 layer has
 * only ~70 tiles) */
static inline int64_t fc_task_chunk(int64_t ntasks, int64_t nthreads) {
#ifndef FC_CHUNKS_PER_THREAD
#define FC_CHUNKS_PER_THREAD 16
#endif
    int64_t c = ntasks / (FC_CHUNKS_PER_THREAD * (nthreads < 1 ? 1 : nthreads));
    return c < 1 ? 1 : (c > 4 ? 4 : c);
}
/* The task a thread runs at dispatch position t.  Under dynamic scheduling the threads take
 * chunks in turn, so in dispatch order neighbouring stripes would run at the same time on
 * different cores: their output rows share a cache line at every stripe boundary (a plane of
 * Ho*Wo floats is rarely a multiple of 16), and each K block's read-modify-write of the tile
 * bounces those lines between the cores (measured: DeepLab's 1x256x33x33 layer at 217 GFLOP/s
 * on 2 threads, 155 on 1).  Position t is therefore read column by column from a table of the
 * full chunks laid out row by row, one row per thread: at the start thread r runs row r's
 * chunks in order, far from the others, and a thread that falls behind (preempted) still has its
 * chunks taken by the others.  A bijection on [0, ntasks); the last partial chunk stays last. */
static inline int64_t fc_spread(int64_t t, int64_t ntasks, int64_t chunk, int64_t nthreads) {
    int64_t nfull = ntasks / chunk, c = t / chunk;
    if (nthreads < 2 || c >= nfull) return t;
    int64_t q = nfull / nthreads, m = nfull - q * nthreads, row, col;
    if (c < q * nthreads) {
        col = c / nthreads;
        row = c - col * nthreads;
    } else {
        col = q;
        row = c - q * nthreads;
    }
    return ((row * q + (row < m ? row : m)) + col) * chunk + (t - c * chunk);
}
/* Output-channel parts per tile when there are too few tiles to keep every thread busy (late
 * ResNet layers: 7x7 images), each part at least 8 m-blocks so its B packing stays amortised. */
static inline int64_t fc_ksplit(const int64_t *g, int64_t ntasks, int64_t nthreads) {
#ifndef FC_KSPLIT_TASKS
#define FC_KSPLIT_TASKS 4
#endif
#ifndef FC_KSPLIT_DIRECT_MB
#define FC_KSPLIT_DIRECT_MB 2
#endif
    if (fc_klanes(g)) return fc_kl_parts(g, nthreads);
    /* a 1x1 stride-1 layer reads its B in place (nothing packed per part): parts of 2 m-blocks
     * (MobileNetV2's 192->64 at 14x14: 5 stripes, 8 m-blocks) */
    int direct = g[FC_KH] * g[FC_KW] == 1 && g[FC_SH] == 1 && g[FC_SW] == 1 && g[FC_PT] == 0 &&
                 g[FC_PL] == 0 && g[FC_HO] == g[FC_H] && g[FC_WO] == g[FC_W];
    int64_t want = FC_KSPLIT_TASKS * (nthreads < 1 ? 1 : nthreads);
    int64_t most = fc_mblocks(g) / (direct ? FC_KSPLIT_DIRECT_MB : 8);
    if (ntasks >= want || most < 2 || !(fc_have_avx512() || fc_have_avx2()))
        return 1;  /* portable path: no split */
    int64_t k = (want + ntasks - 1) / ntasks;
    return k < most ? k : most;
}
static inline int64_t fc_core_size(const int64_t *g, int64_t nthreads) {
    if (nthreads < 1) nthreads = 1;
    /* apack rounded up to 16 elements keeps every B panel 64-byte aligned for both dtypes */
    int64_t ap = (fc_apack_size(g) + 15) / 16 * 16, sz = ap + nthreads * fc_bpanel_size();
    if (fc_klanes(g)) {  /* float32 only: float64 runs the portable path in the same workspace */
        int64_t kl = fc_kl_bsize(g) + nthreads * fc_kl_thread_size(g);
        return kl > sz ? kl : sz;
    }
    return sz + (fc_implicit(g) ? fc_xpad_size(g) + fc_R(g) : 0);
}
/* after the core, one slot per thread: nonzero when the weights that thread packed hold an
 * inf or NaN (then the border pixels are recomputed, fc_fix_border) */
static inline int64_t fc_flags_offset(const int64_t *g, int64_t nthreads) {
    return fc_core_size(g, nthreads);
}
static inline int64_t fc_workspace_size(const int64_t *g, int64_t nthreads) {
    return FC_SLACK + fc_core_size(g, nthreads) + (nthreads < 1 ? 1 : nthreads);
}
/* some output pixel has a tap in the padding (only then can an inf weight meet a padding zero) */
static inline int fc_has_pad(const int64_t *g) {
    return g[FC_PT] > 0 || g[FC_PL] > 0 ||
           (g[FC_HO] - 1) * g[FC_SH] + (g[FC_KH] - 1) * g[FC_DH] - g[FC_PT] >= g[FC_H] ||
           (g[FC_WO] - 1) * g[FC_SW] + (g[FC_KW] - 1) * g[FC_DW] - g[FC_PL] >= g[FC_W];
}
/* the padded input of implicit mode, after the per-thread panels */
static inline int64_t fc_xpad_offset(const int64_t *g, int64_t nthreads) {
    return (fc_apack_size(g) + 15) / 16 * 16 + (nthreads < 1 ? 1 : nthreads) * fc_bpanel_size();
}
static inline int64_t fc_num_planes(const int64_t *g) {
    return fc_implicit(g) ? g[FC_N] * g[FC_C] * g[FC_SH] * g[FC_SW] : 0;
}
/* one phase plane (n, c, a, b) of xp, zeros outside the input */
static void fc_pad_plane_f32(const float *x, float *xp, const int64_t *g, int64_t plane) {
    int64_t H = g[FC_H], W = g[FC_W], Hq = fc_hq(g), Wq = fc_wq(g), sh = g[FC_SH], sw = g[FC_SW];
    int64_t nc = plane / (sh * sw), ph = plane - nc * sh * sw, a = ph / sw, b = ph - a * sw;
    const float *src = x + nc * H * W;
    float *dst = xp + plane * Hq * Wq;
    for (int64_t y = 0; y < Hq; y++) {
        int64_t iy = y * sh + a - g[FC_PT];
        float *d = dst + y * Wq;
        if (iy < 0 || iy >= H) {
            memset(d, 0, (size_t)Wq * sizeof(float));
            continue;
        }
        const float *srow = src + iy * W;
        int64_t ix = b - g[FC_PL];
        if (sw == 1) {
            int64_t G = Wq - W;
            memset(d, 0, (size_t)G * sizeof(float));
            memcpy(d + G, srow, (size_t)W * sizeof(float));
        } else {
            for (int64_t xx = 0; xx < Wq; xx++, ix += sw) d[xx] = (ix >= 0 && ix < W) ? srow[ix] : 0.0f;
        }
    }
    if (plane == fc_num_planes(g) - 1)  /* the slack the last tiles read: keep it finite */
        memset(dst + Hq * Wq, 0,
               (size_t)(fc_xpad_size(g) - (plane + 1) * Hq * Wq) * sizeof(float));
}

/* the im2col row offsets into xp, built once per call after xp (int32 in float slots) */
static inline int32_t *fc_offsets(float *xp, const int64_t *g) {
    return (int32_t *)(xp + fc_xpad_size(g));
}
static void fc_build_offsets(float *xp, const int64_t *g) {
    int64_t Hq = fc_hq(g), Wq = fc_wq(g), sh = g[FC_SH], sw = g[FC_SW], PL = sh * sw * Hq * Wq;
    int32_t *off = fc_offsets(xp, g);
    int64_t xs = sw == 1 ? fc_gap(g) - g[FC_PL] : 0;  /* gap layout: input column 0 at G */
    int64_t r = 0;
    for (int64_t cl = 0; cl < g[FC_C] / g[FC_G]; cl++)
        for (int64_t i = 0; i < g[FC_KH]; i++) {
            int64_t ti = i * g[FC_DH], a = ti % sh;
            for (int64_t j = 0; j < g[FC_KW]; j++) {
                int64_t tj = j * g[FC_DW], b = tj % sw;
                off[r++] = (int32_t)(cl * PL + (a * sw + b) * Hq * Wq + ti / sh * Wq + tj / sw +
                                     xs);
            }
        }
}

/* the thread's panel (float32: its A panel and out tile in K-lanes mode) */
static inline int64_t fc_bpanel_offset(const int64_t *g, int64_t tid);
static inline int64_t fc_panel_offset_f32(const int64_t *g, int64_t tid) {
    if (fc_klanes(g)) return fc_kl_bsize(g) + tid * fc_kl_thread_size(g);
    return fc_bpanel_offset(g, tid);
}
static inline int64_t fc_bpanel_offset(const int64_t *g, int64_t tid) {
    return (fc_apack_size(g) + 15) / 16 * 16 + tid * fc_bpanel_size();
}

static inline int fc_have_avx512(void) { return fastconv_have_avx512(); }  /* _cpu.h */

/* A pixel stripe [q0, q0 + np) of the batch's N*Ho*Wo pixels, cut into output-row segments (what
 * packing copies) and per-sample pieces (what the output stores see as contiguous). */
typedef struct {
    int64_t n;                /* segments */
    int64_t smp[FC_NR];       /* sample of the segment */
    int64_t d[FC_NR];         /* first panel column of the segment */
    int64_t len[FC_NR];       /* pixels in the segment */
    int64_t ih0[FC_NR];       /* input row of kernel row 0 (oh*sh - pt) */
    int64_t iw0[FC_NR];       /* input column of the first pixel, kernel column 0 (ow*sw - pl) */
    int64_t npc;              /* pieces */
    int64_t pd[FC_NR + 1];    /* first panel column of the piece */
    int64_t plen[FC_NR + 1];  /* pixels in the piece */
    int64_t poff[FC_NR + 1];  /* out offset of column 0 for channel 0: n*K*P + p - pd (may be < 0) */
} fc_segments;

static inline void fc_stripe_segments(const int64_t *g, int64_t q0, int64_t np, fc_segments *s) {
    int64_t Wo = g[FC_WO], P = g[FC_HO] * Wo, KP = g[FC_K] * P, q = q0, d = 0, last = -1;
    s->n = 0;
    s->npc = 0;
    while (d < np) {
        int64_t smp = q / P, p = q - smp * P, oh = p / Wo, ow = p - oh * Wo;
        int64_t len = Wo - ow < np - d ? Wo - ow : np - d;
        s->smp[s->n] = smp;
        s->d[s->n] = d;
        s->len[s->n] = len;
        s->ih0[s->n] = oh * g[FC_SH] - g[FC_PT];
        s->iw0[s->n] = ow * g[FC_SW] - g[FC_PL];
        s->n++;
        if (smp != last) {
            s->pd[s->npc] = d;
            s->plen[s->npc] = 0;
            s->poff[s->npc] = smp * KP + p - d;
            s->npc++;
            last = smp;
        }
        s->plen[s->npc - 1] += len;
        d += len;
        q += len;
    }
}

/* ---------------------------------------------------------------- portable C (float, double) */

#define FC_GENERIC(T, SFX, NRT)                                                                    \
/* flag (a per-thread workspace slot, or NULL: no check) is set when a weight is inf or NaN */    \
static void fc_pack_a_##SFX(const T *w, T *apack, const int64_t *g, int64_t blk, T *flag) {        \
    int64_t R = fc_R(g), Kg = fc_Kg(g), mb_n = fc_mblocks(g);                                       \
    int64_t grp = blk / mb_n, mb = blk - grp * mb_n;                                                \
    T *dst = apack + blk * FC_MR * R;                                                               \
    const T *src[FC_MR];                                                                            \
    int64_t mrows = Kg - mb * FC_MR < FC_MR ? Kg - mb * FC_MR : FC_MR;                              \
    for (int64_t m = 0; m < FC_MR; m++) src[m] = w + (grp * Kg + mb * FC_MR + m) * R;              \
    /* r outer: the panel is written in order, from eight sequential read streams */               \
    if (mrows == FC_MR && !flag) {                                                                  \
        for (int64_t r = 0; r < R; r++)                                                             \
            for (int m = 0; m < FC_MR; m++) dst[r * FC_MR + m] = src[m][r];                         \
    } else if (mrows == FC_MR) {                                                                    \
        /* v - v is 0 for finite v, NaN for inf and NaN; one sum per row keeps chains short */      \
        T nf[FC_MR] = {0};                                                                          \
        for (int64_t r = 0; r < R; r++)                                                             \
            for (int m = 0; m < FC_MR; m++) {                                                       \
                T v = src[m][r];                                                                    \
                dst[r * FC_MR + m] = v;                                                             \
                nf[m] += v - v;                                                                     \
            }                                                                                       \
        for (int m = 0; m < FC_MR; m++)                                                             \
            if (nf[m] != 0) *flag = 1;                                                              \
    } else {                                                                                        \
        T nf = 0;                                                                                   \
        for (int64_t r = 0; r < R; r++)                                                             \
            for (int m = 0; m < FC_MR; m++) {                                                       \
                T v = m < mrows ? src[m][r] : (T)0;                                                 \
                dst[r * FC_MR + m] = v;                                                             \
                nf += v - v;                                                                        \
            }                                                                                       \
        if (flag && nf != 0) *flag = 1;                                                             \
    }                                                                                               \
}                                                                                                   \
                                                                                                    \
/* Torch's (oneDNN's) direct summation skips the padding taps, so an inf weight over the padding  \
 * adds nothing there, where a GEMM over a zero-padded im2col adds inf * 0 = NaN.  Called only    \
 * when a flag is set: recomputes, for the output channels whose weights are not all finite, the \
 * output pixels that have a tap in the padding, by direct summation over in-image taps. */      \
static void fc_fix_border_##SFX(const T *x, const T *w, const T *bias, int has_bias,              \
                                const int64_t *g, T *out) {                                        \
    int64_t N = g[FC_N], C = g[FC_C], H = g[FC_H], W = g[FC_W], K = g[FC_K], kh = g[FC_KH];          \
    int64_t kw = g[FC_KW], sh = g[FC_SH], sw = g[FC_SW], pt = g[FC_PT], pl = g[FC_PL];              \
    int64_t dh = g[FC_DH], dw = g[FC_DW], Ho = g[FC_HO], Wo = g[FC_WO], R = fc_R(g), Kg = fc_Kg(g); \
    int64_t Cg = C / g[FC_G];                                                                       \
    for (int64_t k = 0; k < K; k++) {                                                               \
        const T *wr = w + k * R;                                                                    \
        T nf = 0;                                                                                   \
        for (int64_t r = 0; r < R; r++) nf += wr[r] - wr[r];                                        \
        if (nf == 0) continue;                                                                      \
        int64_t grp = k / Kg;                                                                       \
        T add = has_bias ? bias[k] : (T)0;                                                          \
        for (int64_t n = 0; n < N; n++)                                                             \
            for (int64_t oh = 0; oh < Ho; oh++) {                                                   \
                int64_t ih0 = oh * sh - pt, rin = ih0 >= 0 && ih0 + (kh - 1) * dh < H;             \
                for (int64_t ow = 0; ow < Wo; ow++) {                                               \
                    int64_t iw0 = ow * sw - pl;                                                     \
                    if (rin && iw0 >= 0 && iw0 + (kw - 1) * dw < W) continue;                       \
                    T acc = 0;                                                                      \
                    for (int64_t c = 0; c < Cg; c++) {                                              \
                        const T *xc = x + ((n * C + grp * Cg + c) * H) * W;                         \
                        for (int64_t i = 0; i < kh; i++) {                                          \
                            int64_t ih = ih0 + i * dh;                                              \
                            if (ih < 0 || ih >= H) continue;                                        \
                            for (int64_t j = 0; j < kw; j++) {                                      \
                                int64_t iw = iw0 + j * dw;                                          \
                                if (iw < 0 || iw >= W) continue;                                    \
                                acc += wr[(c * kh + i) * kw + j] * xc[ih * W + iw];                 \
                            }                                                                       \
                        }                                                                           \
                    }                                                                               \
                    out[((n * K + k) * Ho + oh) * Wo + ow] = acc + add;                             \
                }                                                                                   \
            }                                                                                       \
    }                                                                                               \
}                                                                                                   \
                                                                                                    \
/* im2col rows [rb, rb + kc) of one stripe into panel[kc][NRT], columns [0, np) */                  \
static void fc_pack_b_generic_##SFX(const T *x, const int64_t *g, const fc_segments *s,             \
                                    int64_t grp, int64_t rb, int64_t kc, T *panel) {               \
    int64_t C = g[FC_C], H = g[FC_H], W = g[FC_W], kh = g[FC_KH], kw = g[FC_KW];                    \
    int64_t sw = g[FC_SW], dh = g[FC_DH], dw = g[FC_DW], Cg = C / g[FC_G];                          \
    for (int64_t r = rb; r < rb + kc; r++) {                                                        \
        int64_t cl = r / (kh * kw), ij = r - cl * kh * kw, i = ij / kw, j = ij - i * kw;            \
        T *row = panel + (r - rb) * NRT;                                                            \
        for (int64_t q = 0; q < s->n; q++) {                                                        \
            const T *plane = x + (s->smp[q] * C + grp * Cg + cl) * H * W;                           \
            T *dst = row + s->d[q];                                                                 \
            int64_t len = s->len[q], ih = s->ih0[q] + i * dh, iw = s->iw0[q] + j * dw;              \
            if (ih < 0 || ih >= H) {                                                                \
                for (int64_t t = 0; t < len; t++) dst[t] = 0;                                       \
                continue;                                                                           \
            }                                                                                       \
            const T *src = plane + ih * W;                                                          \
            for (int64_t t = 0; t < len; t++, iw += sw)                                             \
                dst[t] = (iw >= 0 && iw < W) ? src[iw] : (T)0;                                      \
        }                                                                                           \
    }                                                                                               \
}                                                                                                   \
                                                                                                    \
static void fc_task_generic_##SFX(const T *x, const T *apack, const T *bias, int has_bias,          \
                                  const int64_t *g, T *out, T *panel, int64_t task) {               \
    int64_t NP = g[FC_N] * g[FC_HO] * g[FC_WO], P = g[FC_HO] * g[FC_WO];                            \
    int64_t R = fc_R(g), Kg = fc_Kg(g), mb_n = fc_mblocks(g);                                       \
    int64_t ns = (NP + NRT - 1) / NRT, grp = task / ns, st = task - grp * ns;                       \
    int64_t q0 = st * NRT, np = NP - q0 < NRT ? NP - q0 : NRT;                                      \
    fc_segments s;                                                                                  \
    fc_stripe_segments(g, q0, np, &s);                                                              \
    T acc[FC_MR][NRT];                                                                              \
    for (int64_t rb = 0; rb < R; rb += FC_KC) {                                                     \
        int64_t kc = R - rb < FC_KC ? R - rb : FC_KC;                                               \
        fc_pack_b_generic_##SFX(x, g, &s, grp, rb, kc, panel);                                      \
        for (int64_t mb = 0; mb < mb_n; mb++) {                                                     \
            const T *a = apack + (grp * mb_n + mb) * FC_MR * R + rb * FC_MR;                        \
            int64_t k0 = grp * Kg + mb * FC_MR, mrows = Kg - mb * FC_MR;                            \
            if (mrows > FC_MR) mrows = FC_MR;                                                       \
            for (int m = 0; m < FC_MR; m++)                                                         \
                for (int64_t p = 0; p < NRT; p++) acc[m][p] = 0;                                    \
            for (int64_t r = 0; r < kc; r++) {                                                      \
                const T *b = panel + r * NRT;                                                       \
                for (int m = 0; m < FC_MR; m++) {                                                   \
                    T am = a[r * FC_MR + m];                                                        \
                    for (int64_t p = 0; p < np; p++) acc[m][p] += am * b[p];                        \
                }                                                                                   \
            }                                                                                       \
            for (int64_t m = 0; m < mrows; m++) {                                                   \
                T add = (rb == 0 && has_bias) ? bias[k0 + m] : (T)0;                                \
                for (int64_t pc = 0; pc < s.npc; pc++) {                                            \
                    T *c = out + s.poff[pc] + (k0 + m) * P;                                         \
                    int64_t p1 = s.pd[pc] + s.plen[pc];                                             \
                    if (rb == 0)                                                                    \
                        for (int64_t p = s.pd[pc]; p < p1; p++) c[p] = acc[m][p] + add;             \
                    else                                                                            \
                        for (int64_t p = s.pd[pc]; p < p1; p++) c[p] += acc[m][p];                  \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
    }                                                                                               \
}

FC_GENERIC(float, f32, FC_NR)
FC_GENERIC(double, f64, (FC_NR / 2))

/* ---------------------------------------------------------------- AVX-512 float32 */
#if FC_HAVE_X86

static inline FC_TARGET __mmask16 fc_lanes(int64_t lo, int64_t hi) {
    /* mask of lanes [lo, hi) clamped to [0, 16) */
    if (lo < 0) lo = 0;
    if (hi > 16) hi = 16;
    if (hi <= lo) return 0;
    return (__mmask16)((((uint32_t)1 << hi) - 1) & ~(((uint32_t)1 << lo) - 1));
}

/* im2col rows [rb, rb + kc) of one stripe into panel[kc][FC_NR], strides 1 and 2, kernels of at
 * most FC_PACK_TAPS taps: the stripe is cut into pieces of at most 16 pixels (one vector each),
 * and for every piece and kernel tap the lanes that read the image are a load mask, zero for a
 * tap row outside it.  A panel row is then one masked load (two at stride 2) and one store a
 * piece, with no address, row or edge arithmetic: on narrow planes, whose stripes hold many
 * short row segments (six on 8x8), the general loop's per-segment work cost 30% of the call
 * (16x256x8x8 -> 128, 2x2 and 3x3: 124 GFLOP/s packed against 180 with packing skipped, one
 * thread, Xeon).  Whole-vector stores, in increasing panel order, as in fc_pack_b_avx512. */
#define FC_PACK_TAPS 64
static FC_TARGET void fc_pack_b_masked_avx512(const float *x, const int64_t *g,
                                              const fc_segments *s, int64_t grp, int64_t rb,
                                              int64_t kc, float *panel) {
    int64_t C = g[FC_C], H = g[FC_H], W = g[FC_W], kh = g[FC_KH], kw = g[FC_KW];
    int64_t sw = g[FC_SW], dh = g[FC_DH], dw = g[FC_DW], Cg = C / g[FC_G], HW = H * W;
    int64_t KK = kh * kw, np = 0;
    /* a piece: panel column, offset of its tap-(0, 0) input pixel from group channel 0 */
    int64_t pd[FC_NR], pb[FC_NR];
    __mmask16 mlo[FC_NR * FC_PACK_TAPS], mhi[FC_NR * FC_PACK_TAPS];
    for (int64_t q = 0; q < s->n; q++) {
        for (int64_t t = 0; t < s->len[q]; t += 16, np++) {
            int64_t len = s->len[q] - t < 16 ? s->len[q] - t : 16;
            int64_t ih0 = s->ih0[q], iw0 = s->iw0[q] + t * sw;
            pd[np] = s->d[q] + t;
            pb[np] = (s->smp[q] * C + grp * Cg) * HW + ih0 * W + iw0;
            for (int64_t i = 0; i < kh; i++) {
                int64_t ih = ih0 + i * dh, in = ih >= 0 && ih < H;
                for (int64_t j = 0; j < kw; j++) {
                    int64_t iw = iw0 + j * dw, m = np * KK + i * kw + j;
                    if (sw == 1) {
                        mlo[m] = in ? fc_lanes(-iw, W - iw) & fc_lanes(0, len) : 0;
                        mhi[m] = 0;
                    } else { /* 2*len inputs, the even ones kept */
                        mlo[m] = in ? fc_lanes(-iw, W - iw) & fc_lanes(0, 2 * len) : 0;
                        mhi[m] = in ? fc_lanes(-iw - 16, W - iw - 16) & fc_lanes(-16, 2 * len - 16)
                                    : 0;
                    }
                }
            }
        }
    }
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    int64_t cl = rb / KK, ij = rb - cl * KK, i = ij / kw, j = ij - i * kw;
    for (int64_t r = 0; r < kc; r++) {
        float *row = panel + r * FC_NR;
        const float *src = x + cl * HW + i * dh * W + j * dw;
        const __mmask16 *ml = mlo + ij, *mh = mhi + ij;
        if (sw == 1) {
            for (int64_t q = 0; q < np; q++)
                _mm512_storeu_ps(row + pd[q], _mm512_maskz_loadu_ps(ml[q * KK], src + pb[q]));
        } else {
            for (int64_t q = 0; q < np; q++) {
                __m512 lo = _mm512_maskz_loadu_ps(ml[q * KK], src + pb[q]);
                __m512 hi = _mm512_maskz_loadu_ps(mh[q * KK], src + pb[q] + 16);
                _mm512_storeu_ps(row + pd[q], _mm512_permutex2var_ps(lo, even, hi));
            }
        }
        ij++;
        if (++j == kw) {
            j = 0;
            if (++i == kh) {
                i = 0;
                ij = 0;
                cl++;
            }
        }
    }
}

/* im2col rows [rb, rb + kc) of one stripe into panel[kc][FC_NR] for strides 1 and 2 (others
 * scalar).  Masked stores are slow on some AVX-512 cores (Zen 4), so packing stores whole vectors:
 * a vector running past its segment writes into the next segment or row, which is packed after
 * it (segments and rows go in increasing panel order) or is a column no store reads.  Loads are
 * masked only at the image's left/right edge (masked-off lanes never fault, and read as zero). */
static FC_TARGET void fc_pack_b_avx512(const float *x, const int64_t *g, const fc_segments *s,
                                       int64_t grp, int64_t rb, int64_t kc, float *panel) {
    int64_t C = g[FC_C], H = g[FC_H], W = g[FC_W], kh = g[FC_KH], kw = g[FC_KW];
    int64_t sw = g[FC_SW], dh = g[FC_DH], dw = g[FC_DW], Cg = C / g[FC_G];
    if ((sw == 1 || sw == 2) && kh * kw <= FC_PACK_TAPS) {
        fc_pack_b_masked_avx512(x, g, s, grp, rb, kc, panel);
        return;
    }
    const __m512 zero = _mm512_setzero_ps();
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    int64_t cl = rb / (kh * kw), ij = rb - cl * kh * kw, i = ij / kw, j = ij - i * kw;
    for (int64_t r = 0; r < kc; r++) {
        float *row = panel + r * FC_NR;
        for (int64_t q = 0; q < s->n; q++) {
            const float *plane = x + (s->smp[q] * C + grp * Cg + cl) * H * W;
            float *dst = row + s->d[q];
            int64_t len = s->len[q], ih = s->ih0[q] + i * dh, iw = s->iw0[q] + j * dw;
            if (ih < 0 || ih >= H) {
                for (int64_t t = 0; t < len; t += 16) _mm512_storeu_ps(dst + t, zero);
                continue;
            }
            const float *src = plane + ih * W;
            if (sw == 1) {
                for (int64_t t = 0; t < len; t += 16) {
                    int64_t q0 = iw + t;
                    __m512 v = (q0 >= 0 && q0 + 16 <= W)
                                   ? _mm512_loadu_ps(src + q0)
                                   : _mm512_maskz_loadu_ps(fc_lanes(-q0, W - q0), src + q0);
                    _mm512_storeu_ps(dst + t, v);
                }
            } else if (sw == 2) {
                for (int64_t t = 0; t < len; t += 16) {
                    int64_t q0 = iw + 2 * t, q1 = q0 + 16;
                    __m512 lo, hi;
                    if (q0 >= 0 && q1 + 16 <= W) {
                        lo = _mm512_loadu_ps(src + q0);
                        hi = _mm512_loadu_ps(src + q1);
                    } else {
                        lo = _mm512_maskz_loadu_ps(fc_lanes(-q0, W - q0), src + q0);
                        hi = _mm512_maskz_loadu_ps(fc_lanes(-q1, W - q1), src + q1);
                    }
                    _mm512_storeu_ps(dst + t, _mm512_permutex2var_ps(lo, even, hi));
                }
            } else {
                for (int64_t t = 0; t < len; t++, iw += sw)
                    dst[t] = (iw >= 0 && iw < W) ? src[iw] : 0.0f;
            }
        }
        if (++j == kw) {
            j = 0;
            if (++i == kh) {
                i = 0;
                cl++;
            }
        }
    }
}

static inline FC_TARGET __m512 fc_act16(__m512 v, const float *res, __mmask16 m, int act);

/* The micro-kernel: acc[MR][NV] = A[kc][MR] (broadcast) x B[kc][NV*16], then stored piece by
 * piece (one piece per sample the stripe touches): out[off + m*ldc + col] = acc (+ bias) on the
 * first K block, += acc after.  NV is a constant at every call, so the accumulators live in zmm
 * registers; a piece's columns are a lane mask of each vector, its address shifted to match.
 * act (conv2d's activation, 0 none): applied in the registers before the store, only by
 * callers whose single K block is the whole reduction (implicit mode). */
static inline __attribute__((always_inline)) FC_TARGET void
fc_micro_f32(const int NV, const int IND, int64_t kc, const float *restrict a,
             const float *restrict b, int64_t ldb, const int32_t *restrict boff, float *restrict out, int64_t k0,
             int64_t ldc, int64_t mrows, const fc_segments *s, int first, const float *bias,
             int act) {
    __m512 acc[FC_MR][FC_NV];
#pragma GCC unroll 16
    for (int m = 0; m < FC_MR; m++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[m][v] = _mm512_setzero_ps();
#pragma GCC unroll 2
    for (int64_t r = 0; r < kc; r++) {
        __m512 bv[FC_NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            bv[v] = _mm512_loadu_ps((IND ? b + boff[r] : b + r * ldb) + 16 * v);
#pragma GCC unroll 16
        for (int m = 0; m < FC_MR; m++) {
            __m512 am = _mm512_set1_ps(a[r * FC_MR + m]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[m][v] = _mm512_fmadd_ps(am, bv[v], acc[m][v]);
        }
    }
    if (first && bias) {
#pragma GCC unroll 16
        for (int m = 0; m < FC_MR; m++) {
            __m512 bm = _mm512_set1_ps(m < mrows ? bias[m] : 0.0f);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[m][v] = _mm512_add_ps(acc[m][v], bm);
        }
    }
    if (s->npc == 1 && s->plen[0] == 16 * NV) {
        /* the common whole tile: plain stores (masked ones are slow on Zen 4) */
        float *c = out + s->poff[0] + k0 * ldc;
#pragma GCC unroll 16
        for (int m = 0; m < FC_MR; m++) {
            if (m < mrows) {
                float *cr = c + m * ldc;
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++) {
                    __m512 t = acc[m][v];
                    if (!first) t = _mm512_add_ps(t, _mm512_loadu_ps(cr + 16 * v));
                    if (act) t = fc_act16(t, 0, (__mmask16)0xFFFF, act);
                    _mm512_storeu_ps(cr + 16 * v, t);
                }
            }
        }
        return;
    }
    for (int64_t pc = 0; pc < s->npc; pc++) {
        int64_t d0 = s->pd[pc], d1 = d0 + s->plen[pc];
        float *c = out + s->poff[pc] + k0 * ldc;
        __mmask16 mk[FC_NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) mk[v] = fc_lanes(d0 - 16 * v, d1 - 16 * v);
#pragma GCC unroll 16
        for (int m = 0; m < FC_MR; m++) {
            if (m < mrows) {
                float *cr = c + m * ldc;
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++) {
                    /* a piece touches few of the vectors; masked stores are slow on Zen 4 */
                    if (mk[v] == 0) continue;
                    __m512 t = acc[m][v];
                    if (!first) t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(mk[v], cr + 16 * v));
                    if (act) t = fc_act16(t, 0, (__mmask16)0xFFFF, act);
                    if (mk[v] == (__mmask16)0xFFFF)
                        _mm512_storeu_ps(cr + 16 * v, t);
                    else
                        _mm512_mask_storeu_ps(cr + 16 * v, mk[v], t);
                }
            }
        }
    }
}

#define FC_MICRO_NV(NVV)                                                                           \
static __attribute__((noinline)) FC_TARGET void                                                    \
fc_micro_f32_nv##NVV(int64_t kc, const float *a, const float *b, int64_t ldb, float *out,          \
                     int64_t k0, int64_t ldc, int64_t mrows, const fc_segments *s, int first,      \
                     const float *bias) {                                                          \
    fc_micro_f32(NVV, 0, kc, a, b, ldb, 0, out, k0, ldc, mrows, s, first, bias, 0);                \
}
FC_MICRO_NV(1)
FC_MICRO_NV(2)
FC_MICRO_NV(3)

/* one instance per vector count and activation, a constant: the instance without one is the
 * micro-kernel as it was, instruction for instruction (an activation read at run time put the
 * activation's branch in every call) */
#define FC_MICRO_IND(NVV, ACT)                                                                     \
static __attribute__((noinline)) FC_TARGET void                                                    \
fc_micro_f32_ind##NVV##_##ACT(int64_t kc, const float *a, const float *b, const int32_t *boff,     \
                              float *out, int64_t k0, int64_t ldc, int64_t mrows,                  \
                              const fc_segments *s, const float *bias) {                           \
    fc_micro_f32(NVV, 1, kc, a, b, 0, boff, out, k0, ldc, mrows, s, 1, bias, ACT);                  \
}
#define FC_MICRO_IND_ACTS(NVV) \
    FC_MICRO_IND(NVV, 0) FC_MICRO_IND(NVV, 1) FC_MICRO_IND(NVV, 2) FC_MICRO_IND(NVV, 3)
FC_MICRO_IND_ACTS(1)
FC_MICRO_IND_ACTS(2)
FC_MICRO_IND_ACTS(3)
typedef void (*fc_micro_ind_fn)(int64_t, const float *, const float *, const int32_t *, float *,
                                int64_t, int64_t, int64_t, const fc_segments *, const float *);
static const fc_micro_ind_fn fc_micro_ind[3][4] = {
    {fc_micro_f32_ind1_0, fc_micro_f32_ind1_1, fc_micro_f32_ind1_2, fc_micro_f32_ind1_3},
    {fc_micro_f32_ind2_0, fc_micro_f32_ind2_1, fc_micro_f32_ind2_2, fc_micro_f32_ind2_3},
    {fc_micro_f32_ind3_0, fc_micro_f32_ind3_1, fc_micro_f32_ind3_2, fc_micro_f32_ind3_3},
};

#ifndef FC_PFW_DIST
#define FC_PFW_DIST 3 /* stripes ahead that a task prefetches its output rows (fc_prefetch_out) */
#endif
/* Prefetch into L2 the NR output pixels at c of `rows` output rows ldc apart, which a later
 * stripe writes.  A tile's stores go to MR rows a plane apart, and the next stripes' to the same
 * rows further on: with more than about 16 such rows (every layer with K > 16) the hardware
 * prefetchers follow none of them, and each store to a line not in cache waits for its read.
 * Measured (a C loop of 48-pixel stripe stores over rows of 12544 pixels, after a cache flush):
 * 32 rows (1.6 MB, the MobileNetV2 stem's output) 132-220 us, 67 for the same bytes in order,
 * 75 with this 3 stripes ahead; 96 rows (4.8 MB) 391, 166 in order, 185 with this.  PREFETCHW
 * (into L1, for writing) did less (106 and 280): 96 rows x 3 stripes of lines overflow L1. */
static inline __attribute__((always_inline)) FC_TARGET void fc_prefetch_out(const float *c,
                                                                          int64_t ldc,
                                                                          int64_t rows) {
#ifndef FC_NO_PFW
    for (int64_t m = 0; m < rows; m++) {
        const char *cr = (const char *)(c + m * ldc);
        _mm_prefetch(cr, _MM_HINT_T1);
        _mm_prefetch(cr + 64, _MM_HINT_T1);
        _mm_prefetch(cr + 128, _MM_HINT_T1);
        _mm_prefetch(cr + 4 * FC_NR - 4, _MM_HINT_T1);
    }
#else
    (void)c, (void)ldc, (void)rows;
#endif
}

/* One implicit-mode task: NR virtual pixels of one sample, all of R in one pass. */
static FC_TARGET void fc_task_implicit_f32(const float *xp, const float *apack, const float *bias,
                                           int has_bias, const int64_t *g, float *out,
                                           float *panel, int64_t task, int64_t ksplit, int act) {
    int64_t kp = task % ksplit;
    task /= ksplit;
    int64_t Ho = g[FC_HO], Wo = g[FC_WO], Hq = fc_hq(g), Wq = fc_wq(g), P = Ho * Wo;
    int64_t R = fc_R(g), Kg = fc_Kg(g), mb_n = fc_mblocks(g), nt = fc_vtiles(g);
    int64_t C = g[FC_C], Cg = C / g[FC_G];
    int64_t PL = g[FC_SH] * g[FC_SW] * Hq * Wq;  /* elements per channel */
    int64_t grp = task / (g[FC_N] * nt), rest = task - grp * g[FC_N] * nt;
    int64_t n = rest / nt, l0 = (rest - n * nt) * FC_NR;
    /* the last tile of a sample: only the vectors that reach a virtual pixel */
    int64_t vnp = Ho * Wq - l0 < FC_NR ? Ho * Wq - l0 : FC_NR;
    int nv = (int)((vnp + 15) / 16);
    const int32_t *off = fc_offsets((float *)xp, g);
    /* pieces: the real (ow < Wo) part of each virtual row the tile covers */
    fc_segments s;
    s.npc = 0;
    for (int64_t oh = l0 / Wq; oh < Ho && oh * Wq < l0 + FC_NR; oh++) {
        int64_t a0 = oh * Wq > l0 ? oh * Wq : l0;
        int64_t a1 = oh * Wq + Wo < l0 + FC_NR ? oh * Wq + Wo : l0 + FC_NR;
        if (a1 <= a0) continue;
        s.pd[s.npc] = a0 - l0;
        s.plen[s.npc] = a1 - a0;
        s.poff[s.npc] = n * g[FC_K] * P + oh * Wo + (a0 - oh * Wq) - (a0 - l0);
        s.npc++;
    }
    if (s.npc == 0) return;
    const float *b = xp + (n * C + grp * Cg) * PL + l0;
    const fc_micro_ind_fn micro = fc_micro_ind[nv - 1][act >= 0 && act <= 3 ? act : 0];
    /* the output pixel FC_PFW_DIST tiles on (virtual rows are Wq wide, output rows Wo) */
    int64_t p_pf = (l0 / Wq) * Wo + (l0 % Wq < Wo ? l0 % Wq : Wo) + FC_PFW_DIST * FC_NR * Wo / Wq;
    int pfw = p_pf + FC_NR <= P;
    for (int64_t mb = kp * mb_n / ksplit; mb < (kp + 1) * mb_n / ksplit; mb++) {
        const float *a = apack + (grp * mb_n + mb) * FC_MR * R;
        int64_t k0 = grp * Kg + mb * FC_MR, mrows = Kg - mb * FC_MR;
        if (mrows > FC_MR) mrows = FC_MR;
        const float *bb = has_bias ? bias + k0 : 0;
        if (act)
            micro(R, a, b, off, out, k0, P, mrows, &s, bb);
        else if (nv == 3)
            fc_micro_f32_ind3_0(R, a, b, off, out, k0, P, mrows, &s, bb);
        else if (nv == 2)
            fc_micro_f32_ind2_0(R, a, b, off, out, k0, P, mrows, &s, bb);
        else
            fc_micro_f32_ind1_0(R, a, b, off, out, k0, P, mrows, &s, bb);
        if (pfw) fc_prefetch_out(out + (n * g[FC_K] + k0) * P + p_pf, P, mrows);
    }
}

static inline FC_TARGET void fc_prefetch_rows(const float *b, int64_t ldb, int64_t r0,
                                              int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
        const char *pr = (const char *)(b + r * ldb);
        _mm_prefetch(pr, _MM_HINT_T1);
        _mm_prefetch(pr + 64, _MM_HINT_T1);
        _mm_prefetch(pr + 128, _MM_HINT_T1);
        _mm_prefetch(pr + 191, _MM_HINT_T1);
    }
}

/* One stripe; `chunk` consecutive tasks run on one thread (the caller's schedule chunk). */
static FC_TARGET void fc_task_avx512_f32(const float *x, const float *apack, const float *bias,
                                         int has_bias, const int64_t *g, float *out, float *panel,
                                         int64_t task, int64_t chunk, int64_t ksplit) {
    int64_t kp = task % ksplit, t0 = task;
    task /= ksplit;
    int64_t P = g[FC_HO] * g[FC_WO], NP = g[FC_N] * P, R = fc_R(g), Kg = fc_Kg(g);
    int64_t mb_n = fc_mblocks(g), ns = fc_stripes(g), C = g[FC_C], Cg = C / g[FC_G];
    int64_t grp = task / ns, st = task - grp * ns;
    int64_t q0 = st * FC_NR, np = NP - q0 < FC_NR ? NP - q0 : FC_NR;
    int nv = (int)((np + 15) / 16);
    fc_segments s;
    fc_stripe_segments(g, q0, np, &s);
    /* 1x1, stride 1, no padding, a full stripe inside one sample: the input planes are B */
    int direct = g[FC_KH] == 1 && g[FC_KW] == 1 && g[FC_SH] == 1 && g[FC_SW] == 1 &&
                 g[FC_PT] == 0 && g[FC_PL] == 0 && g[FC_HO] == g[FC_H] && g[FC_WO] == g[FC_W] &&
                 np == FC_NR && s.npc == 1;
#ifdef FC_NO_DIRECT
    direct = 0;
#endif
    int64_t n0 = q0 / P, p0 = q0 - n0 * P;
    /* the next stripe of this chunk, if it is direct too (whole and inside one sample) */
    int pf_next = direct && ksplit == 1 && (task + 1) % chunk != 0 && q0 + 2 * FC_NR <= NP &&
                  (q0 + 2 * FC_NR - 1) / P == n0;
    /* this sample's output FC_PFW_DIST stripes on, if there is a whole stripe there */
    int64_t p_pf = p0 + FC_PFW_DIST * FC_NR;
    int pfw = p_pf + FC_NR <= P;
    for (int64_t rb = 0; rb < R; rb += FC_KC) {
        int64_t kc = R - rb < FC_KC ? R - rb : FC_KC;
        const float *b;
        int64_t ldb;
        if (direct) {
            b = x + (n0 * C + grp * Cg + rb) * P + p0;
            ldb = P;
            /* kc rows a plane apart: no hardware prefetcher follows them, and demand misses one
             * after another leave the FMAs waiting.  The first stripe of a chunk prefetches its
             * own rows at once; every stripe prefetches the next one's while it computes. */
            if (t0 % chunk == 0) fc_prefetch_rows(b, ldb, 0, kc);
        } else {
            fc_pack_b_avx512(x, g, &s, grp, rb, kc, panel);
            b = panel;
            ldb = FC_NR;
        }
        int64_t mb0 = kp * mb_n / ksplit, mb1 = (kp + 1) * mb_n / ksplit;
        for (int64_t mb = mb0; mb < mb1; mb++) {
            const float *a = apack + (grp * mb_n + mb) * FC_MR * R + rb * FC_MR;
            int64_t k0 = grp * Kg + mb * FC_MR, mrows = Kg - mb * FC_MR;
            const float *bb = (has_bias && rb == 0) ? bias + k0 : 0;
            if (mrows > FC_MR) mrows = FC_MR;
            if (nv == 3)
                fc_micro_f32_nv3(kc, a, b, ldb, out, k0, P, mrows, &s, rb == 0, bb);
            else if (nv == 2)
                fc_micro_f32_nv2(kc, a, b, ldb, out, k0, P, mrows, &s, rb == 0, bb);
            else
                fc_micro_f32_nv1(kc, a, b, ldb, out, k0, P, mrows, &s, rb == 0, bb);
            if (pf_next)
                fc_prefetch_rows(b + FC_NR, ldb, kc * (mb - mb0) / (mb1 - mb0),
                                 kc * (mb - mb0 + 1) / (mb1 - mb0));
            if (pfw && rb == 0) fc_prefetch_out(out + (n0 * g[FC_K] + k0) * P + p_pf, P, mrows);
        }
    }
}

/* ------------------------------------------------ K-lanes mode (see fc_klanes), AVX-512 float32 */

/* dst[j * ldd + i] = src[i * lds + j] for a 16 x 16 block: rows i >= nr read as zero, columns
 * j < nc read (masked) and written.  Returns the sum of the rows read: not finite if one of
 * their elements is not (or, harmlessly, if the sum overflows). */
static inline FC_TARGET __m512 fc_tr16(const float *src, int64_t lds, int nr, int nc, float *dst,
                                       int64_t ldd) {
    __m512 r[16], t[16];
    __mmask16 cm = fc_lanes(0, nc);
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        r[i] = i >= nr ? _mm512_setzero_ps()
                       : (nc == 16 ? _mm512_loadu_ps(src + i * lds)
                                   : _mm512_maskz_loadu_ps(cm, src + i * lds));
    __m512 sum = _mm512_add_ps(
        _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(r[0], r[1]), _mm512_add_ps(r[2], r[3])),
                      _mm512_add_ps(_mm512_add_ps(r[4], r[5]), _mm512_add_ps(r[6], r[7]))),
        _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(r[8], r[9]), _mm512_add_ps(r[10], r[11])),
                      _mm512_add_ps(_mm512_add_ps(r[12], r[13]), _mm512_add_ps(r[14], r[15]))));
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        r[4 * i + 0] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
        r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xdd);
    }
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++)
        if (j < nc) _mm512_storeu_ps(dst + j * ldd, r[j]);
    return sum;
}

/* conv2d's epilogue on one vector: act(v + res[lanes m]), act 1 relu, 2 relu6, 3 silu;
 * compare-and-select, so NaN stays NaN as in fc_epilogue_f32 */
static inline FC_TARGET __m512 fc_act16(__m512 v, const float *res, __mmask16 m, int act) {
    const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
    if (res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, res));
    if (act == 1 || act == 2) v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, zero);
    if (act == 2) v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, six, _CMP_GT_OQ), v, six);
    if (act == 3) v = fc_silu16(v);  /* the pass's code (_epilogue_kernel.h) */
    return v;
}

/* dst[j * ldd + i] = src[i * lds + j] (+ add[j]) for i < nr, j < nc: a K-lanes out tile
 * [pixels][channels] stored into NCHW rows, columns i >= nr of dst untouched (masked stores) */
static inline FC_TARGET void fc_tr16_store(const float *src, int64_t lds, int nr, int nc,
                                           float *dst, int64_t ldd, const float *add,
                                           const float *res, int act) {
    __m512 r[16], t[16];
    __mmask16 cm = fc_lanes(0, nc), rm = fc_lanes(0, nr);
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        r[i] = i >= nr ? _mm512_setzero_ps()
                       : (nc == 16 ? _mm512_loadu_ps(src + i * lds)
                                   : _mm512_maskz_loadu_ps(cm, src + i * lds));
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        r[4 * i + 0] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
        r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
        r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
        r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xdd);
    }
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++)
        if (j < nc) {
            __m512 v = add ? _mm512_add_ps(r[j], _mm512_set1_ps(add[j])) : r[j];
            if (res || act) v = fc_act16(v, res ? res + j * ldd : 0, rm, act);
            if (nr == 16)
                _mm512_storeu_ps(dst + j * ldd, v);
            else
                _mm512_mask_storeu_ps(dst + j * ldd, rm, v);
        }
}

/* weights (grp, k0 .. k0 + 64, rows rb .. rb + kc) into ap[kc][64], zero past Kg */
static FC_TARGET void fc_kl_pack_a(const float *w, const int64_t *g, int64_t grp, int64_t k0,
                                   int64_t rb, int64_t kc, float *ap, float *flag) {
    int64_t R = fc_R(g), Kg = fc_Kg(g), kn = Kg - k0 < FC_KL_KB ? Kg - k0 : FC_KL_KB;
    const __m512 zero = _mm512_setzero_ps();
    __m512 nf = zero;
    const float *w0 = w + (grp * Kg + k0) * R + rb;
    for (int v = 0; v < FC_KL_KB / 16; v++) {
        int64_t nr = kn - 16 * v;
        for (int64_t c = 0; c < kc; c += 16) {
            int nc = kc - c < 16 ? (int)(kc - c) : 16;
            if (nr <= 0) {
                for (int j = 0; j < nc; j++) _mm512_storeu_ps(ap + (c + j) * FC_KL_KB + 16 * v, zero);
                continue;
            }
            __m512 sm = fc_tr16(w0 + 16 * v * R + c, R, nr < 16 ? (int)nr : 16, nc,
                                ap + c * FC_KL_KB + 16 * v, FC_KL_KB);
            nf = _mm512_fmadd_ps(sm, zero, nf);
        }
    }
    if (flag && _mm512_cmp_ps_mask(nf, zero, _CMP_NEQ_UQ)) *flag = 1.0f;
}

/* one pixel group of the batch's im2col, bt[grp][pg][R][MP] (item = grp * groups + pg) */
static FC_TARGET void fc_kl_pack_b(const float *x, const int64_t *g, float *bt, int64_t item) {
    int64_t npg = fc_kl_groups(g), mp = fc_kl_mp(g), grp = item / npg, pg = item - grp * npg;
    int64_t C = g[FC_C], H = g[FC_H], W = g[FC_W], kh = g[FC_KH], kw = g[FC_KW];
    int64_t dh = g[FC_DH], dw = g[FC_DW], Wo = g[FC_WO], P = g[FC_HO] * Wo, NP = g[FC_N] * P;
    int64_t Cg = C / g[FC_G];
    float *dst = bt + (grp * npg + pg) * fc_kl_gstride(g);
    int64_t xo[8], ih0[8], iw0[8];
    for (int64_t t = 0; t < mp; t++) {
        int64_t q = pg * mp + t;
        if (q >= NP) {  /* padding pixels: an input row no tap reaches */
            xo[t] = 0, ih0[t] = -(kh * dh) - 1, iw0[t] = 0;
            continue;
        }
        int64_t n = q / P, p = q - n * P, oh = p / Wo, ow = p - oh * Wo;
        xo[t] = (n * C + grp * Cg) * H * W;
        ih0[t] = oh * g[FC_SH] - g[FC_PT];
        iw0[t] = ow * g[FC_SW] - g[FC_PL];
    }
    /* the whole group in one output row at stride 1 or 2: each im2col row is a run of an input
     * row, one masked load (strided: its even lanes gathered) and a whole-vector store (its tail
     * lands in the next row, or the slack) */
    int64_t sw = g[FC_SW];
    int run = sw <= 2 && pg * mp + mp <= NP && xo[mp - 1] == xo[0] && ih0[mp - 1] == ih0[0] &&
              iw0[mp - 1] == iw0[0] + (mp - 1) * sw;
    if (run) {
        const __m512 zero = _mm512_setzero_ps();
        const __m512i even = _mm512_set_epi32(15, 15, 15, 15, 15, 15, 15, 15, 14, 12, 10, 8, 6,
                                              4, 2, 0);
        int span = (int)((mp - 1) * sw + 1);
        for (int64_t c = 0; c < Cg; c++)
            for (int64_t i = 0; i < kh; i++) {
                int64_t ih = ih0[0] + i * dh;
                if (ih < 0 || ih >= H) {
                    for (int64_t j = 0; j < kw; j++, dst += mp) _mm512_storeu_ps(dst, zero);
                    continue;
                }
                const float *src = x + xo[0] + (c * H + ih) * W;
                for (int64_t j = 0; j < kw; j++, dst += mp) {
                    int64_t iw = iw0[0] + j * dw;
                    __mmask16 m = fc_lanes(-iw, W - iw) & fc_lanes(0, span);
                    __m512 v = _mm512_maskz_loadu_ps(m, src + iw);
                    _mm512_storeu_ps(dst, sw == 1 ? v : _mm512_permutexvar_ps(even, v));
                }
            }
        return;
    }
    for (int64_t c = 0; c < Cg; c++)
        for (int64_t i = 0; i < kh; i++)
            for (int64_t j = 0; j < kw; j++, dst += mp)
                for (int64_t t = 0; t < mp; t++) {
                    int64_t ih = ih0[t] + i * dh, iw = iw0[t] + j * dw;
                    dst[t] = (ih >= 0 && ih < H && iw >= 0 && iw < W)
                                 ? x[xo[t] + (c * H + ih) * W + iw]
                                 : 0.0f;
                }
}

/* tile[MP][16 NV] (+)= B[kc][MP] (broadcast) x A[kc][16 NV]: NV x MP accumulators in zmm
 * registers; NV < 4 for a last channel block of fewer than 64 (K = 160: 64 + 64 + 32) */
static inline __attribute__((always_inline)) FC_TARGET void
fc_kl_micro(const int MP, const int NV, int64_t kc, const float *restrict a,
            const float *restrict b, float *restrict t, int first) {
    __m512 acc[7][4];
#pragma GCC unroll 8
    for (int p = 0; p < MP; p++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++)
            acc[p][v] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(t + p * FC_KL_KB + 16 * v);
#pragma GCC unroll 2
    for (int64_t r = 0; r < kc; r++) {
        __m512 av[4];
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) av[v] = _mm512_loadu_ps(a + r * FC_KL_KB + 16 * v);
#pragma GCC unroll 8
        for (int p = 0; p < MP; p++) {
            __m512 bp = _mm512_set1_ps(b[r * MP + p]);
#pragma GCC unroll 4
            for (int v = 0; v < NV; v++) acc[p][v] = _mm512_fmadd_ps(av[v], bp, acc[p][v]);
        }
    }
#pragma GCC unroll 8
    for (int p = 0; p < MP; p++)
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) _mm512_storeu_ps(t + p * FC_KL_KB + 16 * v, acc[p][v]);
}
typedef void (*fc_kl_micro_fn)(int64_t, const float *, const float *, float *, int);
#define FC_KL_MICRO(M, V)                                                                          \
static __attribute__((noinline)) FC_TARGET void fc_kl_micro##M##_##V(                              \
    int64_t kc, const float *a, const float *b, float *t, int f) {                                 \
    fc_kl_micro(M, V, kc, a, b, t, f);                                                             \
}
#define FC_KL_MICRO_V(M) FC_KL_MICRO(M, 1) FC_KL_MICRO(M, 2) FC_KL_MICRO(M, 3) FC_KL_MICRO(M, 4)
FC_KL_MICRO_V(4)
FC_KL_MICRO_V(5)
FC_KL_MICRO_V(6)
FC_KL_MICRO_V(7)
#define FC_KL_ROW(M) {fc_kl_micro##M##_1, fc_kl_micro##M##_2, fc_kl_micro##M##_3, fc_kl_micro##M##_4}
static const fc_kl_micro_fn fc_kl_micros[4][4] = {FC_KL_ROW(4), FC_KL_ROW(5), FC_KL_ROW(6),
                                                  FC_KL_ROW(7)};

/* One K-lanes task: (group, 64-channel block, pixel part), `parts` parts per block; `tws` is the
 * thread's A panel and out tile. */
/* K-lanes weight panels packed once for fixed weights (packed_prepack): panel (grp, kblock, rb)
 * at ((grp * kblocks + kblock) * R + rb) * FC_KL_KB, what fc_kl_pack_a writes per task. */
static inline int64_t fc_kl_prepack_size(const int64_t *g) {
    return g[FC_G] * fc_kl_kblocks(g) * fc_R(g) * FC_KL_KB;
}
static FC_TARGET void fc_kl_prepack(const float *w, const int64_t *g, float *dst, float *flag) {
    int64_t R = fc_R(g), kb_n = fc_kl_kblocks(g);
    for (int64_t grp = 0; grp < g[FC_G]; grp++)
        for (int64_t kb = 0; kb < kb_n; kb++)
            for (int64_t rb = 0; rb < R; rb += FC_KL_KC)
                fc_kl_pack_a(w, g, grp, kb * FC_KL_KB, rb, R - rb < FC_KL_KC ? R - rb : FC_KL_KC,
                             dst + ((grp * kb_n + kb) * R + rb) * FC_KL_KB, flag);
}

static FC_TARGET void fc_task_klanes_f32(const float *w, const float *bt, const float *bias,
                                         int has_bias, const int64_t *g, float *out, float *tws,
                                         int64_t task, int64_t parts, float *flag,
                                         const float *pre, const float *res, int act) {
    int64_t part = task % parts;
    task /= parts;
    int64_t kb_n = fc_kl_kblocks(g), grp = task / kb_n, k0 = (task - grp * kb_n) * FC_KL_KB;
    int64_t R = fc_R(g), Kg = fc_Kg(g), K = g[FC_K], P = g[FC_HO] * g[FC_WO];
    int64_t NP = g[FC_N] * P, mp = fc_kl_mp(g), npg = fc_kl_groups(g);
    int64_t kn = Kg - k0 < FC_KL_KB ? Kg - k0 : FC_KL_KB;
    int64_t pg0 = part * npg / parts, pg1 = (part + 1) * npg / parts;
    float *ap = tws, *tile = tws + FC_KL_KC * FC_KL_KB;
    const float *bg = bt + grp * npg * fc_kl_gstride(g);
    const float *wk = w + (grp * Kg + k0) * R;
    const fc_kl_micro_fn micro = fc_kl_micros[mp - 4][(kn + 15) / 16 - 1];
    for (int64_t rb = 0; rb < R; rb += FC_KL_KC) {
        int64_t kc = R - rb < FC_KL_KC ? R - rb : FC_KL_KC;
        if (pre) {  /* fixed weights: the panel is packed already */
            ap = (float *)pre + ((grp * kb_n + k0 / FC_KL_KB) * R + rb) * FC_KL_KB;
        } else {
            fc_kl_pack_a(w, g, grp, k0, rb, kc, ap, flag);
        }
        /* the next weight block: 64 rows a weight row apart, which no hardware prefetcher
         * follows; fetched into L2 a slice per pixel group while this block computes */
        int64_t nb = rb + FC_KL_KC, nkc = R - nb < FC_KL_KC ? R - nb : FC_KL_KC;
        for (int64_t pg = pg0; pg < pg1; pg++) {
            if (nkc > 0 && !pre)
                for (int64_t k = (pg - pg0) * kn / (pg1 - pg0); k < (pg - pg0 + 1) * kn / (pg1 - pg0);
                     k++)
                    for (int64_t o = 0; o < nkc; o += 16)
                        _mm_prefetch((const char *)(wk + k * R + nb + o), _MM_HINT_T1);
            const float *b = bg + pg * fc_kl_gstride(g) + rb * mp;
            float *t = tile + (pg - pg0) * mp * FC_KL_KB;
            micro(kc, ap, b, t, rb == 0);
        }
    }
    /* the tile transposed into NCHW by 16 x 16 blocks, a run of at most 16 pixels of one sample
     * by 16 channels each (a scalar loop here took a quarter of a 7x7 1x1 layer's time) */
    int64_t q0 = pg0 * mp, q1 = pg1 * mp < NP ? pg1 * mp : NP, kk0 = grp * Kg + k0;
    for (int64_t q = q0; q < q1;) {
        int64_t n = q / P, p = q - n * P, len = q1 - q;
        if (len > P - p) len = P - p;
        if (len > 16) len = 16;
        const float *src = tile + (q - q0) * FC_KL_KB;
        for (int64_t k = 0; k < kn; k += 16)
            fc_tr16_store(src + k, FC_KL_KB, (int)len, kn - k < 16 ? (int)(kn - k) : 16,
                          out + (n * K + kk0 + k) * P + p, P, has_bias ? bias + kk0 + k : NULL,
                          res ? res + (n * K + kk0 + k) * P + p : NULL, act);
        q += len;
    }
}
#endif /* FC_HAVE_X86 */

/* ---------------------------------------------------------------- AVX2 float32 (no AVX-512) */
/* CPUs with AVX2 and FMA but no AVX-512 (Zen 2/3 EPYCs, Haswell..Alder Lake): the pixel-lane
 * tile in 256-bit registers.  Only 16 ymm registers, so the 8 x 48 tile of the AVX-512 kernel
 * runs as 4 x 24 sub-tiles (12 accumulators, 3 B vectors, 1 broadcast): rows 0-3 and 4-7 of the
 * A panel over the stripe's columns 0-23 and 24-47, each sub-tile streaming its B columns
 * (kc x 24 floats, 24 KiB at KC = 256) from L1.  Same panels, same task layout as the AVX-512
 * path; implicit and K-lanes modes stay AVX-512 only (fc_implicit, fc_klanes). */
#define FC_TARGET2 __attribute__((target("avx2,fma")))
#ifndef FC_KC2
#define FC_KC2 128  /* B rows per K block: a 24-column half is then 128 x 2 cache lines, in L1 */
#endif

static inline int fc_have_avx2(void) { return fastconv_have_avx2_fma(); }  /* _cpu.h */

#if FC_HAVE_X86
/* im2col rows [rb, rb + kc) of one stripe into panel[kc][FC_NR]: strides 1 and 2 by whole
 * 8-float vectors inside the image (a vector past its segment lands in the next segment or row, packed
 * after it, as in fc_pack_b_avx512), element by element at the image's edges and other strides */
static FC_TARGET2 void fc_pack_b_avx2(const float *x, const int64_t *g, const fc_segments *s,
                                      int64_t grp, int64_t rb, int64_t kc, float *panel) {
    int64_t C = g[FC_C], H = g[FC_H], W = g[FC_W], kh = g[FC_KH], kw = g[FC_KW];
    int64_t sw = g[FC_SW], dh = g[FC_DH], dw = g[FC_DW], Cg = C / g[FC_G];
    const __m256 zero = _mm256_setzero_ps();
    int64_t cl = rb / (kh * kw), ij = rb - cl * kh * kw, i = ij / kw, j = ij - i * kw;
    for (int64_t r = 0; r < kc; r++) {
        float *row = panel + r * FC_NR;
        for (int64_t q = 0; q < s->n; q++) {
            const float *plane = x + (s->smp[q] * C + grp * Cg + cl) * H * W;
            float *dst = row + s->d[q];
            int64_t len = s->len[q], ih = s->ih0[q] + i * dh, iw = s->iw0[q] + j * dw;
            if (ih < 0 || ih >= H) {
                for (int64_t t = 0; t < len; t += 8) _mm256_storeu_ps(dst + t, zero);
                continue;
            }
            const float *src = plane + ih * W;
            if (sw == 1) {
                for (int64_t t = 0; t < len; t += 8) {
                    int64_t q0 = iw + t;
                    if (q0 >= 0 && q0 + 8 <= W) {
                        _mm256_storeu_ps(dst + t, _mm256_loadu_ps(src + q0));
                    } else {
                        float tmp[8];
                        for (int e = 0; e < 8; e++)
                            tmp[e] = (q0 + e >= 0 && q0 + e < W) ? src[q0 + e] : 0.0f;
                        _mm256_storeu_ps(dst + t, _mm256_loadu_ps(tmp));
                    }
                }
            } else if (sw == 2) {
                /* the even elements of 16 loaded floats (stride-2 layers: ResNet's downsampling
                 * 3x3, the 7x7 stem) */
                for (int64_t t = 0; t < len; t += 8) {
                    int64_t q0 = iw + 2 * t;
                    __m256 a0, a1;
                    if (q0 >= 0 && q0 + 16 <= W) {
                        a0 = _mm256_loadu_ps(src + q0);
                        a1 = _mm256_loadu_ps(src + q0 + 8);
                    } else {
                        float tmp[16];
                        for (int e = 0; e < 16; e++)
                            tmp[e] = (q0 + e >= 0 && q0 + e < W) ? src[q0 + e] : 0.0f;
                        a0 = _mm256_loadu_ps(tmp);
                        a1 = _mm256_loadu_ps(tmp + 8);
                    }
                    __m256 ev = _mm256_shuffle_ps(a0, a1, _MM_SHUFFLE(2, 0, 2, 0));
                    ev = _mm256_castpd_ps(
                        _mm256_permute4x64_pd(_mm256_castps_pd(ev), _MM_SHUFFLE(3, 1, 2, 0)));
                    _mm256_storeu_ps(dst + t, ev);
                }
            } else {
                for (int64_t t = 0; t < len; t++, iw += sw)
                    dst[t] = (iw >= 0 && iw < W) ? src[iw] : 0.0f;
            }
        }
        if (++j == kw) {
            j = 0;
            if (++i == kh) {
                i = 0;
                cl++;
            }
        }
    }
}

/* acc[4][NY] = A[kc][rows m0..m0+3 of 8] x B[kc][col0 .. col0 + 8 NY); then stored into the
 * columns [col0, col0 + 8 NY) of the tile's pieces: out[off + m*ldc + col] = acc (+ bias) on
 * the first K block, += acc after */
static inline __attribute__((always_inline)) FC_TARGET2 void
fc_micro2(const int NY, int64_t kc, const float *restrict a, const float *restrict b, int64_t ldb,
          float *restrict out, int64_t k0, int64_t ldc, int64_t mrows, const fc_segments *s,
          int first, const float *bias, int m0, int64_t col0) {
    __m256 acc[4][3];
#pragma GCC unroll 4
    for (int m = 0; m < 4; m++)
#pragma GCC unroll 3
        for (int v = 0; v < NY; v++) acc[m][v] = _mm256_setzero_ps();
    const float *ap = a + m0, *bp = b + col0;
#pragma GCC unroll 2
    for (int64_t r = 0; r < kc; r++) {
        __m256 bv[3];
#pragma GCC unroll 3
        for (int v = 0; v < NY; v++) bv[v] = _mm256_loadu_ps(bp + r * ldb + 8 * v);
#pragma GCC unroll 4
        for (int m = 0; m < 4; m++) {
            __m256 am = _mm256_broadcast_ss(ap + r * FC_MR + m);
#pragma GCC unroll 3
            for (int v = 0; v < NY; v++) acc[m][v] = _mm256_fmadd_ps(am, bv[v], acc[m][v]);
        }
    }
    if (first && bias) {
#pragma GCC unroll 4
        for (int m = 0; m < 4; m++) {
            __m256 bm = _mm256_set1_ps(m0 + m < mrows ? bias[m0 + m] : 0.0f);
#pragma GCC unroll 3
            for (int v = 0; v < NY; v++) acc[m][v] = _mm256_add_ps(acc[m][v], bm);
        }
    }
    int64_t c1 = col0 + 8 * NY;
    if (s->npc == 1 && s->pd[0] <= col0 && s->pd[0] + s->plen[0] >= c1) {
        /* the columns lie inside one piece: whole-vector stores */
        float *c = out + s->poff[0] + k0 * ldc;
#pragma GCC unroll 4
        for (int m = 0; m < 4; m++) {
            if (m0 + m < mrows) {
                float *cr = c + (m0 + m) * ldc + col0;
#pragma GCC unroll 3
                for (int v = 0; v < NY; v++) {
                    __m256 t = acc[m][v];
                    if (!first) t = _mm256_add_ps(t, _mm256_loadu_ps(cr + 8 * v));
                    _mm256_storeu_ps(cr + 8 * v, t);
                }
            }
        }
        return;
    }
    /* pieces that cover part of the columns: through a buffer, element by element (AVX2 masked
     * stores are microcoded on AMD cores) */
    float tmp[4][24];
#pragma GCC unroll 4
    for (int m = 0; m < 4; m++)
#pragma GCC unroll 3
        for (int v = 0; v < NY; v++) _mm256_storeu_ps(&tmp[m][8 * v], acc[m][v]);
    for (int64_t pc = 0; pc < s->npc; pc++) {
        int64_t d0 = s->pd[pc] > col0 ? s->pd[pc] : col0;
        int64_t d1 = s->pd[pc] + s->plen[pc] < c1 ? s->pd[pc] + s->plen[pc] : c1;
        if (d1 <= d0) continue;
        float *c = out + s->poff[pc] + k0 * ldc;
        for (int m = 0; m < 4; m++) {
            if (m0 + m >= mrows) break;
            float *cr = c + (m0 + m) * ldc;
            if (first)
                for (int64_t p = d0; p < d1; p++) cr[p] = tmp[m][p - col0];
            else
                for (int64_t p = d0; p < d1; p++) cr[p] += tmp[m][p - col0];
        }
    }
}

#define FC_MICRO2_NY(NYY)                                                                          \
static __attribute__((noinline)) FC_TARGET2 void                                                   \
fc_micro2_ny##NYY(int64_t kc, const float *a, const float *b, int64_t ldb, float *out,             \
                  int64_t k0, int64_t ldc, int64_t mrows, const fc_segments *s, int first,         \
                  const float *bias, int m0, int64_t col0) {                                       \
    fc_micro2(NYY, kc, a, b, ldb, out, k0, ldc, mrows, s, first, bias, m0, col0);                  \
}
FC_MICRO2_NY(1)
FC_MICRO2_NY(2)
FC_MICRO2_NY(3)

/* the 8 x ncols tile of one m-block (ncols <= 48, the columns that hold pixels) as 4 x 24
 * sub-tiles; rows past mrows are computed (zero weights) but not stored */
static inline FC_TARGET2 void fc_tile_avx2(int64_t kc, const float *a, const float *b,
                                           int64_t ldb, float *out, int64_t k0, int64_t ldc,
                                           int64_t mrows, const fc_segments *s, int first,
                                           const float *bias, int64_t ncols) {
    for (int64_t col0 = 0; col0 < ncols; col0 += 24) {
        int64_t ny = (ncols - col0 + 7) / 8;
        if (ny > 3) ny = 3;
        for (int m0 = 0; m0 < FC_MR && m0 < mrows; m0 += 4) {
            if (ny == 3)
                fc_micro2_ny3(kc, a, b, ldb, out, k0, ldc, mrows, s, first, bias, m0, col0);
            else if (ny == 2)
                fc_micro2_ny2(kc, a, b, ldb, out, k0, ldc, mrows, s, first, bias, m0, col0);
            else
                fc_micro2_ny1(kc, a, b, ldb, out, k0, ldc, mrows, s, first, bias, m0, col0);
        }
    }
}

static inline FC_TARGET2 void fc_prefetch_rows2(const float *b, int64_t ldb, int64_t r0,
                                               int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
        const char *pr = (const char *)(b + r * ldb);
        _mm_prefetch(pr, _MM_HINT_T1);
        _mm_prefetch(pr + 64, _MM_HINT_T1);
        _mm_prefetch(pr + 128, _MM_HINT_T1);
        _mm_prefetch(pr + 191, _MM_HINT_T1);
    }
}

/* One stripe, as fc_task_avx512_f32 (1x1 stride-1 stripes read the input planes in place) */
static FC_TARGET2 void fc_task_avx2_f32(const float *x, const float *apack, const float *bias,
                                        int has_bias, const int64_t *g, float *out, float *panel,
                                        int64_t task, int64_t ksplit) {
    int64_t kp = task % ksplit;
    task /= ksplit;
    int64_t P = g[FC_HO] * g[FC_WO], NP = g[FC_N] * P, R = fc_R(g), Kg = fc_Kg(g);
    int64_t mb_n = fc_mblocks(g), ns = fc_stripes(g), C = g[FC_C], Cg = C / g[FC_G];
    int64_t grp = task / ns, st = task - grp * ns;
    int64_t q0 = st * FC_NR, np = NP - q0 < FC_NR ? NP - q0 : FC_NR;
    fc_segments s;
    fc_stripe_segments(g, q0, np, &s);
    int direct = g[FC_KH] == 1 && g[FC_KW] == 1 && g[FC_SH] == 1 && g[FC_SW] == 1 &&
                 g[FC_PT] == 0 && g[FC_PL] == 0 && g[FC_HO] == g[FC_H] && g[FC_WO] == g[FC_W] &&
                 np == FC_NR && s.npc == 1;
#ifdef FC_NO_DIRECT
    direct = 0;
#endif
    int64_t n0 = q0 / P, p0 = q0 - n0 * P;
    for (int64_t rb = 0; rb < R; rb += FC_KC2) {
        int64_t kc = R - rb < FC_KC2 ? R - rb : FC_KC2;
        const float *b;
        int64_t ldb;
        if (direct) {
            b = x + (n0 * C + grp * Cg + rb) * P + p0;
            ldb = P;
            fc_prefetch_rows2(b, ldb, 0, kc);
        } else {
            fc_pack_b_avx2(x, g, &s, grp, rb, kc, panel);
            b = panel;
            ldb = FC_NR;
        }
        int64_t mb0 = kp * mb_n / ksplit, mb1 = (kp + 1) * mb_n / ksplit;
        /* column halves outside the m-blocks: a half's B columns (kc x 24 floats) stay in L1
         * while every m-block's A panel streams past them */
        for (int64_t col0 = 0; col0 < np; col0 += 24) {
            int64_t ny = (np - col0 + 7) / 8;
            if (ny > 3) ny = 3;
            for (int64_t mb = mb0; mb < mb1; mb++) {
                const float *a = apack + (grp * mb_n + mb) * FC_MR * R + rb * FC_MR;
                int64_t k0 = grp * Kg + mb * FC_MR, mrows = Kg - mb * FC_MR;
                const float *bb = (has_bias && rb == 0) ? bias + k0 : 0;
                if (mrows > FC_MR) mrows = FC_MR;
                for (int m0 = 0; m0 < FC_MR && m0 < mrows; m0 += 4) {
                    if (ny == 3)
                        fc_micro2_ny3(kc, a, b, ldb, out, k0, P, mrows, &s, rb == 0, bb, m0, col0);
                    else if (ny == 2)
                        fc_micro2_ny2(kc, a, b, ldb, out, k0, P, mrows, &s, rb == 0, bb, m0, col0);
                    else
                        fc_micro2_ny1(kc, a, b, ldb, out, k0, P, mrows, &s, rb == 0, bb, m0, col0);
                }
            }
        }
    }
}
#endif /* FC_HAVE_X86 */

#if FC_HAVE_X86
/* The weight panels of every stride phase of a transposed convolution (packed.pyx:
 * packed_prepack_phases), for the m-blocks mb and mb + 1 of every input channel k: the kk <= 16
 * contiguous taps of 16 output channels as 16 vectors, transposed (a vector per tap, channels in
 * the lanes), each tap's two 8-channel halves stored where its phase's panel rows are (a scalar
 * loop over taps and channels took 0.25 ms for 256x128x4x4 on two threads).  Channels past C
 * load as zero; *nf gathers v - v (NaN when a weight is not finite). */
static FC_TARGET void fc_phase_panels_avx512(const float *src, int64_t s0, int64_t s1,
                                             int64_t C, int64_t Kg, int64_t kk,
                                             const int64_t *taps, const int64_t *tstart,
                                             int64_t P, int64_t mb, int64_t mbn, float *apack,
                                             float *nf) {
    __mmask16 lm = fc_lanes(0, kk);
    __m512 bad = _mm512_setzero_ps();
    for (int64_t k = 0; k < Kg; k++) {
        __m512 r[16];
        for (int i = 0; i < 16; i++) {
            int64_t c = mb * FC_MR + i;
            r[i] = c < C ? _mm512_maskz_loadu_ps(lm, src + c * s0 + k * s1) : _mm512_setzero_ps();
            bad = _mm512_add_ps(bad, _mm512_sub_ps(r[i], r[i]));
        }
        fc_transpose16(r);
        for (int64_t p = 0; p < P; p++) {
            int64_t t0 = tstart[p], nt = tstart[p + 1] - t0;
            float *d0 = apack + FC_MR * mbn * Kg * t0 + (mb * Kg + k) * nt * FC_MR;
            float *d1 = d0 + Kg * nt * FC_MR; /* the next m-block's rows */
            for (int64_t t = 0; t < nt; t++) {
                __m512 v = r[taps[t0 + t]];
                _mm256_storeu_ps(d0 + t * FC_MR, _mm512_castps512_ps256(v));
                if (mb + 1 < mbn)
                    _mm256_storeu_ps(d1 + t * FC_MR,
                                     _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
            }
        }
    }
    *nf += _mm512_reduce_add_ps(bad);
}
#endif

/* whether fc_phase_panels runs here (AVX-512; taps contiguous, at most 16) */
static inline int fc_phase_panels_ok(int64_t kh, int64_t kw, int64_t s2, int64_t s3) {
#if FC_HAVE_X86
    return fc_have_avx512() && kh * kw <= 16 && s3 == 1 && s2 == kw;
#else
    (void)kh, (void)kw, (void)s2, (void)s3;
    return 0;
#endif
}
/* the m-block pair (mb, mb + 1) of every phase's panels (fc_phase_panels_ok must hold);
 * returns the sum of v - v over the weights read (0 when all are finite) */
static inline float fc_phase_panels(const float *src, int64_t s0, int64_t s1, int64_t C,
                                    int64_t Kg, int64_t kk, const int64_t *taps,
                                    const int64_t *tstart, int64_t P, int64_t mb, int64_t mbn,
                                    float *apack) {
    float nf = 0;
#if FC_HAVE_X86
    fc_phase_panels_avx512(src, s0, s1, C, Kg, kk, taps, tstart, P, mb, mbn, apack, &nf);
#else
    (void)src, (void)s0, (void)s1, (void)C, (void)Kg, (void)kk, (void)taps, (void)tstart;
    (void)P, (void)mb, (void)mbn, (void)apack;
#endif
    return nf;
}

/* ---------------------------------------------------------------- entry points */

/* conv2d's epilogue (out = act(out + res), _epilogue_kernel.h) fused per task: the outputs a
 * task just wrote are still in L1/L2, where the pass after the call read them back from L3 or
 * memory (MobileNetV2's 24->144 1x1 at 56x56: 41 of its 192 us).  With AVX-512: K-lanes tiles
 * in their transposing store; implicit-mode tiles in the registers before their store (the
 * whole reduction is one K block there); pixel-lane stripes after the stripe; the last two
 * without a residual (read as one 48-pixel run per channel, neighbouring stripes sharing its
 * cache lines, a residual took 2-10% longer than in the pass after: ResNet-50's 1x1 layers at
 * batch 8).  The other cases run the pass after the call. */
static inline int fc_epilogue_fuses(const int64_t *g, int has_res) {
#if FC_HAVE_X86
    if (!fc_have_avx512()) return 0;
    return fc_klanes(g) || !has_res;
#else
    (void)g, (void)has_res;
    return 0;
#endif
}
#if FC_HAVE_X86
/* channels [k0, k1) of the batch's pixels [q0, q1), by runs inside one sample */
static FC_TARGET void fc_epilogue_region_f32(const int64_t *g, int64_t k0, int64_t k1, int64_t q0,
                                             int64_t q1, float *out, const float *res, int act) {
    int64_t P = g[FC_HO] * g[FC_WO], K = g[FC_K];
    for (int64_t q = q0; q < q1;) {
        int64_t n = q / P, p = q - n * P, len = q1 - q < P - p ? q1 - q : P - p;
        for (int64_t k = k0; k < k1; k++) {
            int64_t off = (n * K + k) * P + p;
            if (act == 3) {  /* silu: the vectorised exp of _epilogue_kernel.h */
                fc_epilogue_f32(out + off, res ? res + off : 0, 0, len, act);
                continue;
            }
            /* relu / relu6 / residual on a short run (48 or 49 pixels): whole vectors and one
             * masked tail, compare-and-select so NaN stays NaN as in fc_epilogue_f32 */
            float *o = out + off;
            const float *r = res ? res + off : 0;
            for (int64_t i = 0; i < len; i += 16) {
                __mmask16 m = i + 16 <= len ? (__mmask16)0xFFFF : fc_lanes(0, len - i);
                __m512 v = fc_act16(_mm512_maskz_loadu_ps(m, o + i), r ? r + i : 0, m, act);
                if (m == (__mmask16)0xFFFF)
                    _mm512_storeu_ps(o + i, v);
                else
                    _mm512_mask_storeu_ps(o + i, m, v);
            }
        }
        q += len;
    }
}
#endif
/* the region task `task` (as fc_task_f32 numbers it, `ksplit` parts) wrote */
static inline void fc_task_epilogue_f32(const int64_t *g, int64_t task, int64_t ksplit,
                                        float *out, const float *res, int act) {
#if FC_HAVE_X86
    int64_t P = g[FC_HO] * g[FC_WO], NP = g[FC_N] * P, Kg = fc_Kg(g);
    int64_t part = task % ksplit;
    task /= ksplit;
    int64_t mb_n = fc_mblocks(g), ns = fc_stripes(g), grp = task / ns, st = task - grp * ns;
    int64_t q0 = st * FC_NR, q1 = NP - q0 < FC_NR ? NP : q0 + FC_NR;
    int64_t mb0 = part * mb_n / ksplit, mb1 = (part + 1) * mb_n / ksplit;
    int64_t k1 = mb1 * FC_MR < Kg ? mb1 * FC_MR : Kg;
    fc_epilogue_region_f32(g, grp * Kg + mb0 * FC_MR, grp * Kg + k1, q0, q1, out, res, act);
#else
    (void)g, (void)task, (void)ksplit, (void)out, (void)res, (void)act;
#endif
}

/* apack: the weight panels (K-lanes mode: the packed B); kl_pre: K-lanes weight panels packed
 * once for fixed weights, or NULL; res, act: conv2d's epilogue, applied to the task's outputs
 * (only where fc_epilogue_fuses; NULL, 0 for none) */
static inline void fc_task_f32(const float *x, const float *xp, const float *w,
                               const float *apack, const float *bias, int has_bias,
                               const int64_t *g, float *out, float *panel, int64_t task,
                               int64_t chunk, int64_t ksplit, float *flag, const float *kl_pre,
                               const float *res, int act) {
#if FC_HAVE_X86
    if (fc_klanes(g)) {  /* in its transposing store */
        fc_task_klanes_f32(w, apack, bias, has_bias, g, out, panel, task, ksplit,
                           fc_has_pad(g) ? flag : 0, kl_pre, res, act);
        return;
    }
    if (fc_implicit(g)) {
        fc_task_implicit_f32(xp, apack, bias, has_bias, g, out, panel, task, ksplit, act);
        return;
    }
    if (fc_have_avx512()) {
        fc_task_avx512_f32(x, apack, bias, has_bias, g, out, panel, task, chunk, ksplit);
        if (res || act) fc_task_epilogue_f32(g, task, ksplit, out, res, act);
        return;
    }
    if (fc_have_avx2()) {
        fc_task_avx2_f32(x, apack, bias, has_bias, g, out, panel, task, ksplit);
        return;
    }
#endif
    (void)w, (void)flag, (void)kl_pre, (void)res, (void)act;
    fc_task_generic_f32(x, apack, bias, has_bias, g, out, panel, task);
}

static inline void fc_task_f64(const double *x, const double *apack, const double *bias,
                               int has_bias, const int64_t *g, double *out, double *panel,
                               int64_t task) {
    fc_task_generic_f64(x, apack, bias, has_bias, g, out, panel, task);
}

/* The work done once per call before the tasks (published by a barrier): K-lanes mode packs
 * B, pixel group by pixel group; the other modes pack the weight panels and, in implicit mode,
 * copy the input padded and tabulate the row offsets. */
static inline int64_t fc_prep_items_f32(const int64_t *g) {
#if FC_HAVE_X86
    if (fc_klanes(g)) return g[FC_G] * fc_kl_groups(g);
#endif
    int64_t npl = fc_num_planes(g);
    return fc_num_ablocks(g) + (npl > 0 ? npl + 1 : 0);
}
static inline void fc_prep_f32(const float *x, const float *w, float *base, float *xpad,
                               const int64_t *g, int64_t i, float *flag) {
#if FC_HAVE_X86
    if (fc_klanes(g)) {
        fc_kl_pack_b(x, g, base, i);
        return;
    }
#endif
    int64_t nab = fc_num_ablocks(g), npl = fc_num_planes(g);
    if (i < nab)
        fc_pack_a_f32(w, base, g, i, fc_has_pad(g) ? flag : 0);
    else if (i < nab + npl)
        fc_pad_plane_f32(x, xpad, g, i - nab);
    else
        fc_build_offsets(xpad, g);
}
static inline void fc_prep_f64(const double *w, double *base, const int64_t *g, int64_t i,
                               double *flag) {
    fc_pack_a_f64(w, base, g, i, fc_has_pad(g) ? flag : 0);
}

/* number of tasks for the dtype: float64 stripes are FC_NR / 2 pixels */
static inline int64_t fc_num_tasks_f64(const int64_t *g) {
    int64_t NP = g[FC_N] * g[FC_HO] * g[FC_WO];
    return g[FC_G] * ((NP + FC_NR / 2 - 1) / (FC_NR / 2));
}

/* Cython's prange ends with `omp for nowait`: the packed weights need this (orphaned) barrier
 * before any task reads them. */
static inline void fc_omp_barrier(void) {
#ifdef _OPENMP
#pragma omp barrier
#endif
}

/* first 64-byte aligned element of the workspace */
static inline float *fc_align_f32(float *ws) {
    return (float *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
}
static inline double *fc_align_f64(double *ws) {
    return (double *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
}

#endif /* FASTCONV_PACKED_KERNEL_H */
