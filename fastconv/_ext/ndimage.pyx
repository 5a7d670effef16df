"""Cython kernels for fastconv.ndimage: 1-D and N-d correlation and the uniform running mean with
scipy.ndimage's boundary extension, computed in float64 in scipy's own summation order.

Twins of fastconv/_jit/ndimage.py (same names and signatures).  No validation, no allocation: the
public layer builds the extension edge maps (source index, or -1 for cval, of the positions before
and after a line), allocates the output and one float64 workspace row per thread.  Work items are
taken dynamically by at most `ws.shape[0]` threads, each on its own workspace row (so a thread the
OS preempts on a shared machine delays one item, not half the call).  Lines are padded into the
workspace with 32 elements of slack, so every output block is computed 32 wide (register
accumulators) and only its valid part is stored.
"""

from cython.parallel cimport prange, threadid

ctypedef fused floating:
    float
    double

ctypedef long long i64

# scipy's C loops are compiled without FMA contraction; a fused a*b+c rounds once and would differ
# from scipy in the last bit, so this file's arithmetic stays separate multiplies and adds.
cdef extern from *:
    """
    #if defined(__clang__)
    #pragma clang fp contract(off)
    #elif defined(__GNUC__)
    #pragma GCC optimize ("fp-contract=off")
    #endif
    """

cdef extern from "_ndimage_kernel.h" nogil:
    void fc_taps32(double *acc, const double *base, const i64 *off, const double *w, i64 n)
    void fc_line32(double *acc, const double *base, i64 stride, const double *w, i64 k)
    void fc_line32_sym(double *acc, const double *c, i64 stride, const double *w, i64 size1,
                       int sign)

DEF LANES = 32


cdef inline i64 _src(const i64 *lo, Py_ssize_t nlo, const i64 *hi, Py_ssize_t L,
                     Py_ssize_t pos) noexcept nogil:
    # the source index of extended position pos (-1: cval); nlo = len(lo) positions come first
    if pos < nlo:
        return lo[pos]
    if pos >= nlo + L:
        return hi[pos - nlo - L]
    return pos - nlo


cdef inline void _extend_row(double *b, const floating *xr, Py_ssize_t L, const i64 *lo,
                             Py_ssize_t nlo, const i64 *hi, Py_ssize_t p0, Py_ssize_t n,
                             double cval) noexcept nogil:
    # b[q] = extended position p0 + q of the line xr (q < n): the middle is a straight converting
    # copy (vectorised), only the ends go through the maps
    cdef Py_ssize_t q, q0, q1
    cdef i64 src
    q0 = min(max(nlo - p0, 0), n)
    q1 = max(q0, min(nlo + L - p0, n))
    for q in range(q0):
        src = _src(lo, nlo, hi, L, p0 + q)
        b[q] = xr[src] if src >= 0 else cval
    for q in range(q0, q1):
        b[q] = xr[p0 + q - nlo]
    for q in range(q1, n):
        src = _src(lo, nlo, hi, L, p0 + q)
        b[q] = xr[src] if src >= 0 else cval


cdef inline void _line32(floating *o, Py_ssize_t m, const double *b, const double *w,
                         Py_ssize_t k, int sym, Py_ssize_t size1) noexcept nogil:
    # o[t] (t < m <= 32) = scipy's NI_Correlate1D sum for output t, the line buffer b starting at
    # output 0's first tap: symmetric and antisymmetric kernels pair their taps, others go last
    # tap first
    cdef double acc[LANES]
    cdef Py_ssize_t t
    if sym != 0:
        fc_line32_sym(acc, b + size1, 1, w, size1, sym)
    else:
        fc_line32(acc, b, 1, w, k)
    for t in range(m):
        o[t] = <floating>acc[t]


cdef inline void _last_item(const floating *xa, floating *oa, Py_ssize_t L, const i64 *lo,
                            Py_ssize_t nlo, const i64 *hi, const double *w, Py_ssize_t k, int sym,
                            double cval, double *b, Py_ssize_t s0, Py_ssize_t n) noexcept nogil:
    # one segment of one line: extend into b, then 32 outputs at a time
    cdef Py_ssize_t l0
    _extend_row(b, xa, L, lo, nlo, hi, s0, n + k - 1, cval)
    l0 = 0
    while l0 < n:
        _line32(oa + s0 + l0, min(LANES, n - l0), b + l0, w, k, sym, k // 2)
        l0 = l0 + LANES


def correlate1d_last(const floating[:, ::1] x, const i64[::1] lo, const i64[::1] hi,
                     const double[::1] w, int sym,
                     double cval, floating[:, ::1] out, double[:, ::1] ws, Py_ssize_t seg,
                     int nthreads):
    """out[a, l] = scipy's correlate1d of line x[a] (the filtered axis last, contiguous).

    lo, hi: the source indices (-1: cval) of the extended positions before and after the line
    (extension_edges; len(lo) + len(hi) == k - 1).  ws (nchunks, seg + k - 1 + 32).  Items are (line, segment of `seg` outputs), so one long line runs on all threads.
    """
    cdef Py_ssize_t A = x.shape[0], L = x.shape[1], k = w.shape[0]
    cdef Py_ssize_t nch = ws.shape[0], nseg, nitems, ch, it, a, s0
    if A == 0 or L == 0:
        return
    nseg = (L + seg - 1) // seg
    nitems = A * nseg
    for it in prange(nitems, nogil=True, num_threads=min(nthreads, nch), schedule="dynamic"):
        ch = threadid()
        a = it // nseg
        s0 = (it - a * nseg) * seg
        _last_item(&x[a, 0], &out[a, 0], L, &lo[0], lo.shape[0], &hi[0], &w[0], k, sym, cval,
                   &ws[ch, 0], s0, min(seg, L - s0))


cdef inline void _inner_item(const floating *xa, floating *oa, Py_ssize_t L, Py_ssize_t C,
                             const i64 *lo, Py_ssize_t nlo, const i64 *hi, const double *w,
                             Py_ssize_t k, int sym, double cval, double *b, Py_ssize_t cbw,
                             Py_ssize_t s0, Py_ssize_t n, Py_ssize_t c0, Py_ssize_t nc) noexcept nogil:
    # rows s0 .. s0 + n of columns c0 .. c0 + nc (nc <= cbw, cbw a multiple of 32) of one (L, C)
    # slab; b holds the extended rows, cbw doubles each
    cdef double acc[LANES]
    cdef Py_ssize_t p, c, l, t, j0, m, size1 = k // 2
    cdef i64 src
    for p in range(n + k - 1):
        src = _src(lo, nlo, hi, L, s0 + p)
        if src >= 0:
            for c in range(nc):
                b[p * cbw + c] = xa[src * C + c0 + c]
        else:
            for c in range(nc):
                b[p * cbw + c] = cval
    for l in range(n):
        j0 = 0
        while j0 < nc:
            if sym != 0:
                fc_line32_sym(acc, b + (l + size1) * cbw + j0, cbw, w, size1, sym)
            else:
                fc_line32(acc, b + l * cbw + j0, cbw, w, k)
            m = min(LANES, nc - j0)
            for t in range(m):
                oa[(s0 + l) * C + c0 + j0 + t] = <floating>acc[t]
            j0 = j0 + LANES


def correlate1d_inner(const floating[:, :, ::1] x, const i64[::1] lo, const i64[::1] hi,
                      const double[::1] w, int sym, double cval, floating[:, :, ::1] out,
                      double[:, ::1] ws, Py_ssize_t seg, int nthreads):
    """out[a, :, c] = scipy's correlate1d along axis 1 of x (A, L, C), a block of columns at a time.

    ws (nchunks, (seg + k - 1) * cbw): a block of extended rows, cbw = ws.shape[1] // (seg + k -
    1) columns each (a multiple of 32), so rows are read in runs of cbw and the tap loop runs over
    contiguous columns for every output position.
    """
    cdef Py_ssize_t A = x.shape[0], L = x.shape[1], C = x.shape[2], k = w.shape[0]
    cdef Py_ssize_t nch = ws.shape[0], nseg, ncb, nitems, ch, it, a, r, s0, c0
    cdef Py_ssize_t cbw = (ws.shape[1] // (seg + k - 1)) // LANES * LANES
    if A == 0 or L == 0 or C == 0:
        return
    nseg = (L + seg - 1) // seg
    ncb = (C + cbw - 1) // cbw
    nitems = A * nseg * ncb
    for it in prange(nitems, nogil=True, num_threads=min(nthreads, nch), schedule="dynamic"):
        ch = threadid()
        a = it // (nseg * ncb)
        r = it - a * nseg * ncb
        s0 = (r // ncb) * seg
        c0 = (r - (r // ncb) * ncb) * cbw
        _inner_item(&x[a, 0, 0], &out[a, 0, 0], L, C, &lo[0], lo.shape[0], &hi[0], &w[0], k,
                    sym, cval, &ws[ch, 0], cbw, s0, min(seg, L - s0), c0, min(cbw, C - c0))


cdef inline void _nd_item(const floating *x, floating *op, Py_ssize_t Hs, Py_ssize_t Ws,
                          const i64 *planes, Py_ssize_t T, const i64 *tap_off,
                          const double *tap_w, Py_ssize_t nnz, const i64 *lo_h, Py_ssize_t nlo_h,
                          const i64 *hi_h, const i64 *lo_w, Py_ssize_t nlo_w, const i64 *hi_w,
                          Py_ssize_t kh, Py_ssize_t kw, double cval, double *b, Py_ssize_t rp,
                          Py_ssize_t wp, Py_ssize_t i0, Py_ssize_t n, Py_ssize_t jb,
                          Py_ssize_t nj) noexcept nogil:
    # output rows i0 .. i0 + n, columns jb .. jb + nj of one plane; planes: this plane's table row
    cdef double acc[LANES]
    cdef double *row
    cdef Py_ssize_t tt, r, q, i, j0, t, m
    cdef i64 s, hr
    for tt in range(T):
        s = planes[tt]
        for r in range(n + kh - 1):
            row = b + (tt * rp + r) * wp
            hr = _src(lo_h, nlo_h, hi_h, Hs, i0 + r)
            if s < 0 or hr < 0:
                for q in range(nj + kw - 1):
                    row[q] = cval
            else:
                _extend_row(row, x + (s * Hs + hr) * Ws, Ws, lo_w, nlo_w, hi_w, jb, nj + kw - 1,
                            cval)
    for i in range(n):
        j0 = 0
        while j0 < nj:
            fc_taps32(acc, b + i * wp + j0, tap_off, tap_w, nnz)
            m = min(LANES, nj - j0)
            for t in range(m):
                op[(i0 + i) * Ws + jb + j0 + t] = <floating>acc[t]
            j0 = j0 + LANES


def correlate_nd(const floating[:, :, ::1] x, const i64[:, ::1] planes, const i64[::1] tap_off,
                 const double[::1] tap_w, const i64[::1] lo_h, const i64[::1] hi_h,
                 const i64[::1] lo_w, const i64[::1] hi_w, double cval,
                 floating[:, :, ::1] out, double[:, ::1] ws, Py_ssize_t rows, Py_ssize_t cols,
                 int nthreads):
    """scipy's N-d correlate, the array seen as (planes, H, W): the outer axes flattened.

    planes (P, T): the source plane of output plane p for outer tap combination t (-1: cval).
    tap_off, tap_w: the nonzero taps in C order, as offsets (t * (rows + kh - 1) + p) * (cols +
    kw - 1 + 32) + q into a tile's workspace, and weights.  lo_h, hi_h, lo_w, hi_w: the extension
    edges of the last two axes (kh = len(lo_h) + len(hi_h) + 1).  Items are tiles of `rows` x
    `cols` outputs; ws (nchunks, T * (rows + kh - 1) * (cols + kw - 1 + 32)) holds the extended
    rows one tile reads.  Sums run from 0.0 over the taps in order, as scipy's NI_Correlate does.
    """
    cdef Py_ssize_t P = out.shape[0], H = out.shape[1], W = out.shape[2]
    cdef Py_ssize_t T = planes.shape[1], nnz = tap_w.shape[0]
    cdef Py_ssize_t kh = lo_h.shape[0] + hi_h.shape[0] + 1, kw = lo_w.shape[0] + hi_w.shape[0] + 1
    cdef Py_ssize_t rp = rows + kh - 1, wp = cols + kw - 1 + LANES
    cdef Py_ssize_t nch = ws.shape[0], nrb, ncb, nitems, ch, it, p, r, i0, jb
    if P == 0 or H == 0 or W == 0:
        return
    nrb = (H + rows - 1) // rows
    ncb = (W + cols - 1) // cols
    nitems = P * nrb * ncb
    for it in prange(nitems, nogil=True, num_threads=min(nthreads, nch), schedule="dynamic"):
        ch = threadid()
        p = it // (nrb * ncb)
        r = it - p * nrb * ncb
        i0 = (r // ncb) * rows
        jb = (r - (r // ncb) * ncb) * cols
        _nd_item(&x[0, 0, 0], &out[p, 0, 0], H, W, &planes[p, 0], T, &tap_off[0], &tap_w[0],
                 nnz, &lo_h[0], lo_h.shape[0], &hi_h[0], &lo_w[0], lo_w.shape[0], &hi_w[0],
                 kh, kw, cval, &ws[ch, 0], rp, wp, i0, min(rows, H - i0), jb,
                 min(cols, W - jb))


cdef inline void _uniform_lines(const floating *xa, floating *oa, Py_ssize_t L, Py_ssize_t es,
                                Py_ssize_t ls, const i64 *lo, Py_ssize_t nlo, const i64 *hi,
                                Py_ssize_t size, double cval, double *b, Py_ssize_t bw,
                                Py_ssize_t seg, Py_ssize_t nl) noexcept nogil:
    # nl <= bw lines side by side (bw <= 256, a multiple of 32), element l of line c at
    # xa[l * es + c * ls], in segments of seg outputs; b row r (bw doubles) holds extended
    # position s0 - 1 + r
    cdef double tmp[256]
    cdef double fs = <double>size
    cdef Py_ssize_t p, c, l, s0, n, r0
    cdef i64 src
    for c in range(bw):
        tmp[c] = 0.0
    s0 = 0
    while s0 < L:
        n = min(seg, L - s0)
        r0 = 1 if s0 == 0 else 0
        for p in range(r0, n + size):
            src = _src(lo, nlo, hi, L, s0 - 1 + p)
            if src >= 0:
                for c in range(nl):
                    b[p * bw + c] = xa[src * es + c * ls]
            else:
                for c in range(nl):
                    b[p * bw + c] = cval
        l = 0
        if s0 == 0:
            for p in range(1, size + 1):
                for c in range(bw):
                    tmp[c] = tmp[c] + b[p * bw + c]
            for c in range(nl):
                oa[c * ls] = <floating>(tmp[c] / fs)
            l = 1
        while l < n:
            for c in range(bw):
                tmp[c] = tmp[c] + (b[(l + size) * bw + c] - b[l * bw + c])
            for c in range(nl):
                oa[(s0 + l) * es + c * ls] = <floating>(tmp[c] / fs)
            l = l + 1
        s0 = s0 + n


cdef inline void _uniform_line(const floating *xa, floating *oa, Py_ssize_t L, const i64 *lo,
                               Py_ssize_t nlo, const i64 *hi, Py_ssize_t size, double cval,
                               double *b) noexcept nogil:
    # one contiguous line, its extension in b (L + size - 1): scipy's loop without its buffers
    cdef double tmp = 0.0
    cdef double fs = <double>size
    cdef Py_ssize_t p, l
    _extend_row(b, xa, L, lo, nlo, hi, 0, L + size - 1, cval)
    for p in range(size):
        tmp = tmp + b[p]
    oa[0] = <floating>(tmp / fs)
    for l in range(1, L):
        tmp = tmp + (b[l + size - 1] - b[l - 1])
        oa[l] = <floating>(tmp / fs)


def uniform1d(const floating[:, :, ::1] x, const i64[::1] lo, const i64[::1] hi, Py_ssize_t size,
              double cval,
              floating[:, :, ::1] out, double[:, ::1] ws, Py_ssize_t seg, int nthreads):
    """scipy's running-mean uniform_filter1d along axis 1 of x (A, L, C), lines side by side.

    lo, hi: the extension edges (len(lo) + len(hi) == size - 1); ws (nchunks, (seg + size) * bw)
    with bw (a multiple of 32, at most 256) the lines run together.  The running sum is scipy's: the first
    window summed in order, then tmp += in - out per step, each output tmp / size, so results match
    it bit for bit, NaN/inf spreading included.  With C == 1 (the filtered axis last) a line
    runs alone when the workspace holds its whole extension, else 32 consecutive rows together.
    """
    cdef Py_ssize_t A = x.shape[0], L = x.shape[1], C = x.shape[2]
    cdef Py_ssize_t nch = ws.shape[0], ncb, nitems, ch, it, a, c0
    cdef Py_ssize_t bw = min(256, (ws.shape[1] // (seg + size)) // LANES * LANES)
    if A == 0 or L == 0 or C == 0:
        return
    if C == 1 and ws.shape[1] >= L + size - 1:
        # short lines along the last axis: one line per item, scalar, contiguous
        for a in prange(A, nogil=True, num_threads=min(nthreads, nch), schedule="dynamic"):
            ch = threadid()
            _uniform_line(&x[a, 0, 0], &out[a, 0, 0], L, &lo[0], lo.shape[0], &hi[0], size,
                          cval, &ws[ch, 0])
        return
    if C == 1:
        nitems = (A + LANES - 1) // LANES
        for it in prange(nitems, nogil=True, num_threads=min(nthreads, nch), schedule="dynamic"):
            ch = threadid()
            a = it * LANES
            _uniform_lines(&x[a, 0, 0], &out[a, 0, 0], L, 1, L, &lo[0], lo.shape[0],
                           &hi[0], size, cval, &ws[ch, 0], LANES, seg, min(LANES, A - a))
        return
    ncb = (C + bw - 1) // bw
    nitems = A * ncb
    for it in prange(nitems, nogil=True, num_threads=min(nthreads, nch), schedule="dynamic"):
        ch = threadid()
        a = it // ncb
        c0 = (it - a * ncb) * bw
        _uniform_lines(&x[a, 0, c0], &out[a, 0, c0], L, C, 1, &lo[0], lo.shape[0], &hi[0],
                       size, cval, &ws[ch, 0], bw, seg, min(bw, C - c0))
