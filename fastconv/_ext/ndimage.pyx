"""Cython kernels for fastconv.ndimage: 1-D and N-d correlation and the uniform running mean with
scipy.ndimage's boundary extension, computed in float64 in scipy's own summation order.

Twins of fastconv/_jit/ndimage.py (same names and signatures).  No validation, no allocation: the
public layer builds the extension index maps (source index, or -1 for cval), allocates the output and
one float64 workspace row per thread.  Work items are dealt round-robin to `ws.shape[0]` chunks, each
run by one thread on its own workspace.  Lines are padded into the workspace with 32 elements of slack,
so every output block is computed 32 wide (register accumulators) and only its valid part is stored.
"""

from cython.parallel cimport prange

ctypedef fused floating:
    float
    double

ctypedef long long i64

# scipy's C loops are compiled without FMA contraction; a fused a*b+c rounds once and would differ
# from scipy in the last bit, so this file's arithmetic stays separate multiplies and adds.
cdef extern from *:
    """
    #if defined(__GNUC__) && !defined(__clang__)
    #pragma GCC optimize ("fp-contract=off")
    #elif defined(__clang__)
    #pragma clang fp contract(off)
    #endif
    """

DEF LANES = 32


cdef inline void _line32(double *acc, const double *b, const double *w, Py_ssize_t k, int sym,
                         Py_ssize_t size1) noexcept nogil:
    # acc[t] = scipy's NI_Correlate1D sum for output t, the line buffer b starting at output 0's
    # first tap: symmetric and antisymmetric kernels pair their taps, others go last tap first.
    cdef Py_ssize_t t, j
    cdef double wv
    cdef const double *c
    if sym != 0:
        c = b + size1
        wv = w[size1]
        for t in range(LANES):
            acc[t] = c[t] * wv
        for j in range(-size1, 0):
            wv = w[size1 + j]
            if sym > 0:
                for t in range(LANES):
                    acc[t] += (c[t + j] + c[t - j]) * wv
            else:
                for t in range(LANES):
                    acc[t] += (c[t + j] - c[t - j]) * wv
    else:
        wv = w[k - 1]
        for t in range(LANES):
            acc[t] = b[t + k - 1] * wv
        for j in range(k - 1):
            wv = w[j]
            for t in range(LANES):
                acc[t] += b[t + j] * wv


cdef inline void _last_item(const floating *xa, floating *oa, const i64 *idx, const double *w,
                            Py_ssize_t k, int sym, double cval, double *b, Py_ssize_t s0,
                            Py_ssize_t n) noexcept nogil:
    # one segment of one line: extend into b, then 32 outputs at a time
    cdef double acc[LANES]
    cdef Py_ssize_t p, l0, t, m
    cdef i64 src
    for p in range(n + k - 1):
        src = idx[s0 + p]
        b[p] = xa[src] if src >= 0 else cval
    l0 = 0
    while l0 < n:
        _line32(acc, b + l0, w, k, sym, k // 2)
        m = min(LANES, n - l0)
        for t in range(m):
            oa[s0 + l0 + t] = <floating>acc[t]
        l0 = l0 + LANES


def correlate1d_last(const floating[:, ::1] x, const i64[::1] idx, const double[::1] w, int sym,
                     double cval, floating[:, ::1] out, double[:, ::1] ws, Py_ssize_t seg,
                     int nthreads):
    """out[a, l] = scipy's correlate1d of line x[a] (the filtered axis last, contiguous).

    idx (L + k - 1): the source index of each extended position, -1 for cval.  ws (nchunks, seg +
    k - 1 + 32).  Items are (line, segment of `seg` outputs), so one long line runs on all threads.
    """
    cdef Py_ssize_t A = x.shape[0], L = x.shape[1], k = w.shape[0]
    cdef Py_ssize_t nch = ws.shape[0], nseg, nitems, ch, it, a, s0
    if A == 0 or L == 0:
        return
    nseg = (L + seg - 1) // seg
    nitems = A * nseg
    for ch in prange(nch, nogil=True, num_threads=nthreads, schedule="static"):
        it = ch
        while it < nitems:
            a = it // nseg
            s0 = (it - a * nseg) * seg
            _last_item(&x[a, 0], &out[a, 0], &idx[0], &w[0], k, sym, cval, &ws[ch, 0], s0,
                       min(seg, L - s0))
            it = it + nch


cdef inline void _inner_item(const floating *xa, floating *oa, Py_ssize_t C, const i64 *idx,
                             const double *w, Py_ssize_t k, int sym, double cval, double *b,
                             Py_ssize_t s0, Py_ssize_t n, Py_ssize_t c0, Py_ssize_t nc) noexcept nogil:
    # rows s0 .. s0 + n of columns c0 .. c0 + nc of one (L, C) slab
    cdef double acc[LANES]
    cdef double wv
    cdef const double *cb
    cdef Py_ssize_t p, c, l, t, j, size1 = k // 2
    cdef i64 src
    for p in range(n + k - 1):
        src = idx[s0 + p]
        if src >= 0:
            for c in range(nc):
                b[p * LANES + c] = xa[src * C + c0 + c]
        else:
            for c in range(nc):
                b[p * LANES + c] = cval
    for l in range(n):
        if sym != 0:
            cb = b + (l + size1) * LANES
            wv = w[size1]
            for t in range(LANES):
                acc[t] = cb[t] * wv
            for j in range(-size1, 0):
                wv = w[size1 + j]
                if sym > 0:
                    for t in range(LANES):
                        acc[t] += (cb[t + j * LANES] + cb[t - j * LANES]) * wv
                else:
                    for t in range(LANES):
                        acc[t] += (cb[t + j * LANES] - cb[t - j * LANES]) * wv
        else:
            cb = b + l * LANES
            wv = w[k - 1]
            for t in range(LANES):
                acc[t] = cb[t + (k - 1) * LANES] * wv
            for j in range(k - 1):
                wv = w[j]
                for t in range(LANES):
                    acc[t] += cb[t + j * LANES] * wv
        for t in range(nc):
            oa[(s0 + l) * C + c0 + t] = <floating>acc[t]


def correlate1d_inner(const floating[:, :, ::1] x, const i64[::1] idx, const double[::1] w, int sym,
                      double cval, floating[:, :, ::1] out, double[:, ::1] ws, Py_ssize_t seg,
                      int nthreads):
    """out[a, :, c] = scipy's correlate1d along axis 1 of x (A, L, C), 32 columns at a time.

    ws (nchunks, (seg + k - 1) * 32): a block of extended rows, 32 columns each, so the tap loop
    runs over contiguous columns for every output position.
    """
    cdef Py_ssize_t A = x.shape[0], L = x.shape[1], C = x.shape[2], k = w.shape[0]
    cdef Py_ssize_t nch = ws.shape[0], nseg, ncb, nitems, ch, it, a, r, s0, c0
    if A == 0 or L == 0 or C == 0:
        return
    nseg = (L + seg - 1) // seg
    ncb = (C + LANES - 1) // LANES
    nitems = A * nseg * ncb
    for ch in prange(nch, nogil=True, num_threads=nthreads, schedule="static"):
        it = ch
        while it < nitems:
            a = it // (nseg * ncb)
            r = it - a * nseg * ncb
            s0 = (r // ncb) * seg
            c0 = (r - (r // ncb) * ncb) * LANES
            _inner_item(&x[a, 0, 0], &out[a, 0, 0], C, &idx[0], &w[0], k, sym, cval, &ws[ch, 0],
                        s0, min(seg, L - s0), c0, min(LANES, C - c0))
            it = it + nch


cdef inline void _nd_item(const floating *x, floating *op, Py_ssize_t Hs, Py_ssize_t Ws,
                          const i64 *planes, Py_ssize_t T, const i64 *tap_t, const i64 *tap_p,
                          const i64 *tap_q, const double *tap_w, Py_ssize_t nnz, const i64 *idx_h,
                          const i64 *idx_w, Py_ssize_t kh, Py_ssize_t kw, double cval,
                          Py_ssize_t W, double *b, Py_ssize_t rp, Py_ssize_t wp, Py_ssize_t i0,
                          Py_ssize_t n, Py_ssize_t jb, Py_ssize_t nj) noexcept nogil:
    # output rows i0 .. i0 + n, columns jb .. jb + nj of one plane; planes: this plane's table row
    cdef double acc[LANES]
    cdef double wv
    cdef double *row
    cdef const double *xr
    cdef Py_ssize_t tt, r, q, i, j0, t, mm, m
    cdef i64 s, hr, iw
    for tt in range(T):
        s = planes[tt]
        for r in range(n + kh - 1):
            row = b + (tt * rp + r) * wp
            hr = idx_h[i0 + r]
            if s < 0 or hr < 0:
                for q in range(nj + kw - 1):
                    row[q] = cval
            else:
                for q in range(nj + kw - 1):
                    iw = idx_w[jb + q]
                    row[q] = x[(s * Hs + hr) * Ws + iw] if iw >= 0 else cval
    for i in range(n):
        j0 = 0
        while j0 < nj:
            for t in range(LANES):
                acc[t] = 0.0
            for mm in range(nnz):
                wv = tap_w[mm]
                xr = b + (tap_t[mm] * rp + i + tap_p[mm]) * wp + j0 + tap_q[mm]
                for t in range(LANES):
                    acc[t] += xr[t] * wv
            m = min(LANES, nj - j0)
            for t in range(m):
                op[(i0 + i) * W + jb + j0 + t] = <floating>acc[t]
            j0 = j0 + LANES


def correlate_nd(const floating[:, :, ::1] x, const i64[:, ::1] planes, const i64[::1] tap_t,
                 const i64[::1] tap_p, const i64[::1] tap_q, const double[::1] tap_w,
                 const i64[::1] idx_h, const i64[::1] idx_w, double cval,
                 floating[:, :, ::1] out, double[:, ::1] ws, Py_ssize_t rows, Py_ssize_t cols,
                 int nthreads):
    """scipy's N-d correlate, the array seen as (planes, H, W): the outer axes flattened.

    planes (P, T): the source plane of output plane p for outer tap combination t (-1: cval).
    The nonzero taps in C order as (t, p, q, w).  idx_h (H + kh - 1), idx_w (W + kw - 1): the
    extension maps of the last two axes.  Items are tiles of `rows` x `cols` outputs; ws (nchunks,
    T * (rows + kh - 1) * (cols + kw - 1 + 32)) holds the extended rows one tile reads.  Sums run
    from 0.0 over the taps in order, as scipy's NI_Correlate does.
    """
    cdef Py_ssize_t P = out.shape[0], H = out.shape[1], W = out.shape[2]
    cdef Py_ssize_t Hs = x.shape[1], Ws = x.shape[2]
    cdef Py_ssize_t T = planes.shape[1], nnz = tap_w.shape[0]
    cdef Py_ssize_t kh = idx_h.shape[0] - H + 1, kw = idx_w.shape[0] - W + 1
    cdef Py_ssize_t rp = rows + kh - 1, wp = cols + kw - 1 + LANES
    cdef Py_ssize_t nch = ws.shape[0], nrb, ncb, nitems, ch, it, p, r, i0, jb
    if P == 0 or H == 0 or W == 0:
        return
    nrb = (H + rows - 1) // rows
    ncb = (W + cols - 1) // cols
    nitems = P * nrb * ncb
    for ch in prange(nch, nogil=True, num_threads=nthreads, schedule="static"):
        it = ch
        while it < nitems:
            p = it // (nrb * ncb)
            r = it - p * nrb * ncb
            i0 = (r // ncb) * rows
            jb = (r - (r // ncb) * ncb) * cols
            _nd_item(&x[0, 0, 0], &out[p, 0, 0], Hs, Ws, &planes[p, 0], T, &tap_t[0], &tap_p[0],
                     &tap_q[0], &tap_w[0], nnz, &idx_h[0], &idx_w[0], kh, kw, cval, W, &ws[ch, 0],
                     rp, wp, i0, min(rows, H - i0), jb, min(cols, W - jb))
            it = it + nch


cdef inline void _uniform_lines(const floating *xa, floating *oa, Py_ssize_t L, Py_ssize_t es,
                                Py_ssize_t ls, const i64 *idx, Py_ssize_t size, double cval,
                                double *b, Py_ssize_t seg, Py_ssize_t nl) noexcept nogil:
    # nl <= 32 lines side by side, element l of line c at xa[l * es + c * ls], in segments of seg
    # outputs; b row r holds extended position s0 - 1 + r
    cdef double tmp[LANES]
    cdef double fs = <double>size
    cdef Py_ssize_t p, c, l, s0, n, r0
    cdef i64 src
    for c in range(LANES):
        tmp[c] = 0.0
    s0 = 0
    while s0 < L:
        n = min(seg, L - s0)
        r0 = 1 if s0 == 0 else 0
        for p in range(r0, n + size):
            src = idx[s0 - 1 + p]
            if src >= 0:
                for c in range(nl):
                    b[p * LANES + c] = xa[src * es + c * ls]
            else:
                for c in range(nl):
                    b[p * LANES + c] = cval
        l = 0
        if s0 == 0:
            for p in range(1, size + 1):
                for c in range(LANES):
                    tmp[c] = tmp[c] + b[p * LANES + c]
            for c in range(nl):
                oa[c * ls] = <floating>(tmp[c] / fs)
            l = 1
        while l < n:
            for c in range(LANES):
                tmp[c] = tmp[c] + (b[(l + size) * LANES + c] - b[l * LANES + c])
            for c in range(nl):
                oa[(s0 + l) * es + c * ls] = <floating>(tmp[c] / fs)
            l = l + 1
        s0 = s0 + n


def uniform1d(const floating[:, :, ::1] x, const i64[::1] idx, Py_ssize_t size, double cval,
              floating[:, :, ::1] out, double[:, ::1] ws, Py_ssize_t seg, int nthreads):
    """scipy's running-mean uniform_filter1d along axis 1 of x (A, L, C), 32 lines side by side.

    idx (L + size - 1); ws (nchunks, (seg + size) * 32).  The running sum is scipy's: the first
    window summed in order, then tmp += in - out per step, each output tmp / size, so results match
    it bit for bit, NaN/inf spreading included.  With C == 1 (the filtered axis last) the 32
    lines are 32 consecutive rows.
    """
    cdef Py_ssize_t A = x.shape[0], L = x.shape[1], C = x.shape[2]
    cdef Py_ssize_t nch = ws.shape[0], ncb, nitems, ch, it, a, c0
    if A == 0 or L == 0 or C == 0:
        return
    if C == 1:
        nitems = (A + LANES - 1) // LANES
        for ch in prange(nch, nogil=True, num_threads=nthreads, schedule="static"):
            it = ch
            while it < nitems:
                a = it * LANES
                _uniform_lines(&x[a, 0, 0], &out[a, 0, 0], L, 1, L, &idx[0], size, cval,
                               &ws[ch, 0], seg, min(LANES, A - a))
                it = it + nch
        return
    ncb = (C + LANES - 1) // LANES
    nitems = A * ncb
    for ch in prange(nch, nogil=True, num_threads=nthreads, schedule="static"):
        it = ch
        while it < nitems:
            a = it // ncb
            c0 = (it - a * ncb) * LANES
            _uniform_lines(&x[a, 0, c0], &out[a, 0, c0], L, C, 1, &idx[0], size, cval,
                           &ws[ch, 0], seg, min(LANES, C - c0))
            it = it + nch
