"""Cython kernels for fastconv.signal: direct and separable 'valid' 2-D correlation of image stacks.

Twins of fastconv/_jit/signal.py (same names and signatures).  No validation, no allocation: the
public layer pads, allocates outputs and workspaces and passes contiguous arrays.
"""

from cython.parallel cimport prange

ctypedef fused floating:
    float
    double

# Bytes of one output column block: the block and its kh input segments stay in L1 across passes.
DEF COL_BLOCK_BYTES = 4096


cdef inline void _axpy_taps(floating *o, const floating *xr, const floating *taps, Py_ssize_t kt,
                            Py_ssize_t n, bint first) noexcept nogil:
    # o[j] (+)= sum_q taps[q] * xr[j + q]; four taps per pass so each store carries four FMAs
    cdef Py_ssize_t j, q = 0
    cdef floating w0, w1, w2, w3
    cdef const floating *x0
    if first:
        w0 = taps[0]
        if kt >= 2:
            w1 = taps[1]
            for j in range(n):
                o[j] = w0 * xr[j] + w1 * xr[j + 1]
            q = 2
        else:
            for j in range(n):
                o[j] = w0 * xr[j]
            q = 1
    while q + 4 <= kt:
        w0 = taps[q]
        w1 = taps[q + 1]
        w2 = taps[q + 2]
        w3 = taps[q + 3]
        x0 = xr + q
        for j in range(n):
            o[j] += w0 * x0[j] + w1 * x0[j + 1] + w2 * x0[j + 2] + w3 * x0[j + 3]
        q += 4
    if kt - q == 3:
        w0 = taps[q]
        w1 = taps[q + 1]
        w2 = taps[q + 2]
        x0 = xr + q
        for j in range(n):
            o[j] += w0 * x0[j] + w1 * x0[j + 1] + w2 * x0[j + 2]
    elif kt - q == 2:
        w0 = taps[q]
        w1 = taps[q + 1]
        x0 = xr + q
        for j in range(n):
            o[j] += w0 * x0[j] + w1 * x0[j + 1]
    elif kt - q == 1:
        w0 = taps[q]
        x0 = xr + q
        for j in range(n):
            o[j] += w0 * x0[j]


cdef inline void _col_taps(floating *o, const floating *tmp, Py_ssize_t ld, const floating *col,
                           Py_ssize_t kh, Py_ssize_t n) noexcept nogil:
    # o[j] = sum_p col[p] * tmp[p * ld + j]; four rows per pass over o
    cdef Py_ssize_t j, p
    cdef floating w0, w1, w2, w3
    cdef const floating *t0
    cdef const floating *t1
    cdef const floating *t2
    cdef const floating *t3
    w0 = col[0]
    for j in range(n):
        o[j] = w0 * tmp[j]
    p = 1
    while p + 4 <= kh:
        w0 = col[p]
        w1 = col[p + 1]
        w2 = col[p + 2]
        w3 = col[p + 3]
        t0 = tmp + p * ld
        t1 = t0 + ld
        t2 = t1 + ld
        t3 = t2 + ld
        for j in range(n):
            o[j] += w0 * t0[j] + w1 * t1[j] + w2 * t2[j] + w3 * t3[j]
        p += 4
    while p < kh:
        w0 = col[p]
        t0 = tmp + p * ld
        for j in range(n):
            o[j] += w0 * t0[j]
        p += 1


cdef inline void _row_block(floating *o, const floating *x, Py_ssize_t ldx, const floating *w,
                            Py_ssize_t kh, Py_ssize_t kw) noexcept nogil:
    # 32 outputs stay in registers across all kh*kw taps (2 zmm in float32, 4 in float64): each tap
    # costs one broadcast and unaligned loads, and the output is stored once.
    cdef floating acc[32]
    cdef Py_ssize_t p, q, t
    cdef floating wv
    cdef const floating *xr
    for t in range(32):
        acc[t] = 0
    for p in range(kh):
        for q in range(kw):
            wv = w[p * kw + q]
            xr = x + p * ldx + q
            for t in range(32):
                acc[t] += wv * xr[t]
    for t in range(32):
        o[t] = acc[t]


def correlate_valid(const floating[:, :, ::1] x, const floating[:, ::1] w,
                    floating[:, :, ::1] out, Py_ssize_t r0, Py_ssize_t c0, int nthreads):
    """out[b, r0 + i, c0 + j] = sum_{p,q} w[p, q] * x[b, i + p, j + q] over the 'valid' range."""
    cdef Py_ssize_t B = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t kh = w.shape[0], kw = w.shape[1]
    cdef Py_ssize_t oh = H - kh + 1, ow = W - kw + 1
    cdef Py_ssize_t cb = COL_BLOCK_BYTES // sizeof(floating)
    cdef Py_ssize_t t, b, i, j0, n, p, nfull
    if oh <= 0 or ow <= 0 or B == 0:
        return
    for t in prange(B * oh, nogil=True, num_threads=nthreads, schedule="static"):
        b = t // oh
        i = t - b * oh
        if kh * kw <= 64:
            # small kernels: output-stationary blocks of 32, the row tail by tap passes
            nfull = (ow // 32) * 32
            j0 = 0
            while j0 < nfull:
                _row_block(&out[b, r0 + i, c0 + j0], &x[b, i, j0], W, &w[0, 0], kh, kw)
                j0 = j0 + 32
            if nfull < ow:
                for p in range(kh):
                    _axpy_taps(&out[b, r0 + i, c0 + nfull], &x[b, i + p, nfull], &w[p, 0], kw,
                               ow - nfull, p == 0)
        else:
            j0 = 0
            while j0 < ow:
                n = min(cb, ow - j0)
                for p in range(kh):
                    _axpy_taps(&out[b, r0 + i, c0 + j0], &x[b, i + p, j0], &w[p, 0], kw, n, p == 0)
                j0 = j0 + cb


def correlate_separable(const floating[:, :, ::1] x, const floating[::1] col,
                        const floating[::1] row, floating[:, :, ::1] out,
                        floating[:, :, ::1] work, Py_ssize_t r0, Py_ssize_t c0, int nthreads):
    """The 'valid' correlation with outer(col, row) as two 1-D passes (see the Numba twin)."""
    cdef Py_ssize_t B = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t kh = col.shape[0], kw = row.shape[0]
    cdef Py_ssize_t oh = H - kh + 1, ow = W - kw + 1
    cdef Py_ssize_t nchunks = work.shape[0], rb = work.shape[1] - kh + 1, ld = work.shape[2]
    cdef Py_ssize_t nrb, nblocks, ch, blk, b, i0, n, rr, ii
    if oh <= 0 or ow <= 0 or B == 0:
        return
    nrb = (oh + rb - 1) // rb
    nblocks = B * nrb
    for ch in prange(nchunks, nogil=True, num_threads=nthreads, schedule="static"):
        blk = ch
        while blk < nblocks:
            b = blk // nrb
            i0 = (blk - b * nrb) * rb
            n = min(rb, oh - i0)
            for rr in range(n + kh - 1):
                _axpy_taps(&work[ch, rr, 0], &x[b, i0 + rr, 0], &row[0], kw, ow, True)
            for ii in range(n):
                _col_taps(&out[b, r0 + i0 + ii, c0], &work[ch, ii, 0], ld, &col[0], kh, ow)
            blk = blk + nchunks
