/* fastconv.ndimage's tap loops: 32 outputs in four 8-double vector accumulators.
 *
 * GCC/clang generic vectors (AVX-512 on the v4 build, AVX2 pairs on v3, SSE2 on the baseline),
 * so the compiler cannot pick the wrong loop to vectorise (left to itself, GCC vectorised the tap
 * loop of the N-d kernel with gathers).  Sums run in scipy's order and without contraction into
 * fused multiply-adds, so every output is bit for bit scipy.ndimage's.
 */
#ifndef FASTCONV_NDIMAGE_KERNEL_H
#define FASTCONV_NDIMAGE_KERNEL_H

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

typedef double fc_v8d __attribute__((vector_size(64)));
typedef double fc_v8du __attribute__((vector_size(64), aligned(8)));

static inline fc_v8d fc_ld(const double *p) { return *(const fc_v8du *)p; }
static inline void fc_st(double *p, fc_v8d v) { *(fc_v8du *)p = v; }

/* acc[t] = 0.0 + sum_m base[off[m] + t] * w[m], m in order (scipy's NI_Correlate). */
static inline void fc_taps32(double *acc, const double *base, const long long *off,
                             const double *w, long long n)
{
    fc_v8d a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (long long m = 0; m < n; m++) {
        const double *p = base + off[m];
        const double wv = w[m];
        a0 += fc_ld(p) * wv;
        a1 += fc_ld(p + 8) * wv;
        a2 += fc_ld(p + 16) * wv;
        a3 += fc_ld(p + 24) * wv;
    }
    fc_st(acc, a0);
    fc_st(acc + 8, a1);
    fc_st(acc + 16, a2);
    fc_st(acc + 24, a3);
}

/* scipy's NI_Correlate1D for a kernel that is not (anti)symmetric: the last tap first, then taps
 * 0 .. k-2; tap j of output t at base[j * stride + t]. */
static inline void fc_line32(double *acc, const double *base, long long stride, const double *w,
                             long long k)
{
    const double *p = base + (k - 1) * stride;
    double wv = w[k - 1];
    fc_v8d a0 = fc_ld(p) * wv, a1 = fc_ld(p + 8) * wv, a2 = fc_ld(p + 16) * wv,
           a3 = fc_ld(p + 24) * wv;
    for (long long j = 0; j < k - 1; j++) {
        p = base + j * stride;
        wv = w[j];
        a0 += fc_ld(p) * wv;
        a1 += fc_ld(p + 8) * wv;
        a2 += fc_ld(p + 16) * wv;
        a3 += fc_ld(p + 24) * wv;
    }
    fc_st(acc, a0);
    fc_st(acc + 8, a1);
    fc_st(acc + 16, a2);
    fc_st(acc + 24, a3);
}

/* The symmetric (sign 1) and antisymmetric (sign -1) case: the centre tap, then pairs
 * (c[j] +- c[-j]) * w[size1 + j] for j = -size1 .. -1; c = the centre tap of output 0. */
static inline void fc_line32_sym(double *acc, const double *c, long long stride, const double *w,
                                 long long size1, int sign)
{
    double wv = w[size1];
    fc_v8d a0 = fc_ld(c) * wv, a1 = fc_ld(c + 8) * wv, a2 = fc_ld(c + 16) * wv,
           a3 = fc_ld(c + 24) * wv;
    for (long long j = -size1; j < 0; j++) {
        const double *p = c + j * stride, *q = c - j * stride;
        wv = w[size1 + j];
        if (sign > 0) {
            a0 += (fc_ld(p) + fc_ld(q)) * wv;
            a1 += (fc_ld(p + 8) + fc_ld(q + 8)) * wv;
            a2 += (fc_ld(p + 16) + fc_ld(q + 16)) * wv;
            a3 += (fc_ld(p + 24) + fc_ld(q + 24)) * wv;
        } else {
            a0 += (fc_ld(p) - fc_ld(q)) * wv;
            a1 += (fc_ld(p + 8) - fc_ld(q + 8)) * wv;
            a2 += (fc_ld(p + 16) - fc_ld(q + 16)) * wv;
            a3 += (fc_ld(p + 24) - fc_ld(q + 24)) * wv;
        }
    }
    fc_st(acc, a0);
    fc_st(acc + 8, a1);
    fc_st(acc + 16, a2);
    fc_st(acc + 24, a3);
}

#endif
