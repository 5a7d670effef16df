"""Cython driver of fastconv's Winograd F(2x2, 3x3) convolution kernel (_winograd_kernel.h).

Twin of fastconv/_jit/winograd.py (same names and signatures).  No validation, no allocation: the
caller passes contiguous arrays, the output and a workspace of `winograd_workspace_size` elements.
"""

from cython.parallel cimport parallel, prange, threadid
from libc.stdint cimport int64_t

ctypedef fused floating:
    float
    double

cdef extern from "_winograd_kernel.h" nogil:
    int fc_have_avx512()
    int fc_have_avx2()
    void fc_omp_barrier()
    float *fc_align_f32(float *ws)
    double *fc_align_f64(double *ws)
    int64_t wg_workspace_size(const int64_t *g, int64_t nw, int64_t nthreads)
    int64_t wg_u_size(const int64_t *g, int64_t nw)
    int64_t wg_thread_offset(const int64_t *g, int64_t nw, int64_t tid)
    int64_t wg_thread_size(const int64_t *g)
    int64_t wg_num_ublocks(const int64_t *g, int64_t nw)
    int64_t wg_ksplit(const int64_t *g, int64_t nw, int64_t nthreads)
    int64_t wg_num_tasks(const int64_t *g, int64_t nw, int64_t ksplit)
    void wg_transform_weights_f32(const float *w, float *u, const int64_t *g, int64_t nw,
                                  int64_t item)
    void wg_transform_weights_f64(const double *w, double *u, const int64_t *g, int64_t nw,
                                  int64_t item)
    int wg_task_f32(const float *x, const float *u, const float *bias, int64_t nb, int has_bias,
                     const int64_t *g, int64_t nw, float *out, float *scratch, int64_t task,
                     int64_t ksplit)
    int wg_task_f64(const double *x, const double *u, const double *bias, int64_t nb,
                     int has_bias, const int64_t *g, int64_t nw, double *out, double *scratch,
                     int64_t task, int64_t ksplit)


def winograd_supported(dtype_char):
    """True when the Winograd kernel is a fast path for this dtype here (float32 with AVX-512F,
    or with AVX2 and FMA)."""
    return dtype_char == "f" and (fc_have_avx512() == 1 or fc_have_avx2() == 1)


def winograd_workspace_size(const int64_t[::1] geo, int nw, int nthreads):
    """Elements (of the compute dtype) of workspace `conv_winograd` needs for `nw` weight sets
    (1: shared, N: per sample) and `nthreads` threads (pass the same count to `conv_winograd`)."""
    return int(wg_workspace_size(&geo[0], max(nw, 1), max(nthreads, 1)))


def winograd_prepack_size(const int64_t[::1] geo):
    """Elements of transformed weights (U) `winograd_prepack` writes for shared weights: the
    Winograd transform of fixed weights, kept across calls (fastconv._plan.keep_packed)."""
    return int(wg_u_size(&geo[0], 1))


def winograd_prepack(const floating[:, :, ::1] w, const int64_t[::1] geo, floating[::1] u,
                     int nthreads):
    """u = the transformed weights of shared weights w (1, K, C/groups*9), the layout
    conv_winograd's `upre` takes (winograd_prepack_size elements)."""
    cdef const int64_t *g = &geo[0]
    cdef int64_t i, nu = wg_num_ublocks(g, 1)
    if u.shape[0] < wg_u_size(g, 1) or w.shape[0] != 1 or w.shape[1] != g[4]:
        raise ValueError("winograd_prepack: array shapes do not match geo")
    with nogil:
        for i in prange(nu, schedule="static", num_threads=max(nthreads, 1)):
            if floating is float:
                wg_transform_weights_f32(&w[0, 0, 0], &u[0], g, 1, i)
            else:
                wg_transform_weights_f64(&w[0, 0, 0], &u[0], g, 1, i)


def conv_winograd(const floating[:, :, :, ::1] x, const floating[:, :, ::1] w,
                  const floating[:, ::1] bias, bint has_bias, const int64_t[::1] geo,
                  floating[:, :, :, ::1] out, floating[::1] ws, int nthreads,
                  const floating[::1] upre=None):
    """out = conv2d(x, w) (+ bias) for 3x3 stride-1 undilated kernels, by Winograd F(2x2, 3x3).

    w is (Nw, K, C/groups*9) with Nw 1 (shared) or N (sample n uses w[n]); bias (Nb, K) likewise.
    Returns True when some output it wrote is NaN or +-inf, found while the outputs are still in
    registers (no second pass): the transforms put NaN where direct summation puts inf, so a
    caller that wants direct summation's placement recomputes exactly those calls.
    `upre`: w's transform from winograd_prepack (shared weights only), used instead of
    transforming w again (the Numba twin has no such argument: its prepack size is 0).
    """
    cdef const int64_t *g = &geo[0]
    cdef int64_t nw = w.shape[0], nb = bias.shape[0], nu, ntasks, ksplit, i, t
    cdef int64_t nonfinite = 0
    cdef int tid, hb = 1 if (has_bias and bias.shape[1] > 0) else 0
    cdef floating *base
    cdef const floating *u
    if nthreads < 1:
        nthreads = 1
    # not validation (the public layer did that) but memory safety: shapes the kernel indexes by
    if (x.shape[0] != g[0] or x.shape[1] != g[1] or x.shape[2] != g[2] or x.shape[3] != g[3]
            or out.shape[0] != g[0] or out.shape[1] != g[4] or out.shape[2] != g[14]
            or out.shape[3] != g[15] or w.shape[1] != g[4] or w.shape[2] != g[1] // g[13] * 9
            or (nw != 1 and nw != g[0]) or (hb and (bias.shape[1] < g[4]
                                                   or (nb != 1 and nb != g[0])))):
        raise ValueError("conv_winograd: array shapes do not match geo")
    # the layout depends on nw and nthreads
    if ws.shape[0] < wg_workspace_size(g, nw, nthreads):
        raise ValueError(
            f"ws has {ws.shape[0]} elements, conv_winograd needs "
            f"winograd_workspace_size(geo, {nw}, {nthreads}) = {wg_workspace_size(g, nw, nthreads)}"
        )
    if floating is float:
        base = fc_align_f32(&ws[0])
    else:
        base = fc_align_f64(&ws[0])
    u = base
    if upre is not None:
        if nw != 1 or upre.shape[0] < wg_u_size(g, 1):
            raise ValueError("conv_winograd: upre does not match geo")
        u = &upre[0]
    nu = 0 if upre is not None else wg_num_ublocks(g, nw)
    ksplit = wg_ksplit(g, nw, nthreads)
    ntasks = wg_num_tasks(g, nw, ksplit)
    with nogil, parallel(num_threads=nthreads):
        for i in prange(nu, schedule="static"):
            if floating is float:
                wg_transform_weights_f32(&w[0, 0, 0], base, g, nw, i)
            else:
                wg_transform_weights_f64(&w[0, 0, 0], base, g, nw, i)
        fc_omp_barrier()
        # dynamic: a thread the OS preempts (the machine is shared) does not hold up the call
        for t in prange(ntasks, schedule="dynamic", chunksize=1):
            tid = threadid()
            if floating is float:
                nonfinite += wg_task_f32(&x[0, 0, 0, 0], u, &bias[0, 0], nb, hb, g, nw,
                                         &out[0, 0, 0, 0], base + wg_thread_offset(g, nw, tid),
                                         t, ksplit)
            else:
                nonfinite += wg_task_f64(&x[0, 0, 0, 0], u, &bias[0, 0], nb, hb, g, nw,
                                         &out[0, 0, 0, 0], base + wg_thread_offset(g, nw, tid),
                                         t, ksplit)
    return nonfinite > 0


def winograd_classes_workspace_size(const int64_t[:, ::1] geos, int nthreads):
    """Elements of workspace `conv_winograd_classes` needs for the geometries `geos` (one row
    each) on `nthreads` threads: one thread's scratch, the largest geometry's, per thread."""
    cdef Py_ssize_t i
    cdef int64_t most = 0
    for i in range(geos.shape[0]):
        most = max(most, wg_thread_size(&geos[i, 0]))
    return int(max(nthreads, 1) * (most + 16))


def conv_winograd_classes(const floating[::1] xbuf, const floating[:, :, ::1] w,
                          const floating[:, ::1] bias, bint has_bias,
                          const int64_t[:, ::1] geos, const int64_t[:, ::1] offs,
                          floating[::1] ybuf, floating[::1] ws, int nthreads,
                          const floating[::1] upre):
    """Several Winograd convolutions with the same shared weights side by side, each on one
    thread: convolution i (geometry geos[i]) reads its C-contiguous input at xbuf[offs[i, 0]:],
    writes its output at ybuf[offs[i, 1]:] and runs on thread offs[i, 2] of `nthreads`, all of
    its tasks in turn (a dilated layer's phase classes, fastconv._plan._winograd_class_threads:
    one call on few tile blocks gains 1.5-1.65x from a second thread, two calls a thread nearly
    2x).  `upre` is w's transform (winograd_prepack); ws has winograd_classes_workspace_size
    elements.  Returns True when some output is NaN or +-inf."""
    cdef Py_ssize_t ncls = geos.shape[0], i
    cdef const int64_t *g
    cdef int64_t t, ntasks, stride = 0, K = 0
    cdef int tid, hb = 1 if (has_bias and bias.shape[1] > 0) else 0
    cdef floating *base
    nthreads = max(nthreads, 1)
    flags = bytearray(nthreads)
    cdef unsigned char[::1] flag = flags
    # not validation (the public layer did that) but memory safety: what the tasks index
    for i in range(ncls):
        g = &geos[i, 0]
        stride = max(stride, wg_thread_size(g) + 16)
        if (geos.shape[1] < 16 or offs.shape[1] < 3 or offs.shape[0] != ncls
                or offs[i, 0] < 0 or offs[i, 1] < 0
                or offs[i, 0] + g[0] * g[1] * g[2] * g[3] > xbuf.shape[0]
                or offs[i, 1] + g[0] * g[4] * g[14] * g[15] > ybuf.shape[0]
                or offs[i, 2] < 0 or offs[i, 2] >= nthreads
                or w.shape[0] != 1 or w.shape[1] != g[4] or w.shape[2] != g[1] // g[13] * 9
                or (hb and (bias.shape[0] != 1 or bias.shape[1] < g[4]))
                or upre.shape[0] < wg_u_size(g, 1)):
            raise ValueError("conv_winograd_classes: array shapes do not match geos")
    if ws.shape[0] < nthreads * stride:
        raise ValueError("conv_winograd_classes: ws is smaller than winograd_classes_workspace_size")
    with nogil, parallel(num_threads=nthreads):
        tid = threadid()
        if floating is float:
            base = fc_align_f32(&ws[0] + tid * stride)
        else:
            base = fc_align_f64(&ws[0] + tid * stride)
        for i in range(ncls):
            if offs[i, 2] == tid:
                g = &geos[i, 0]
                ntasks = wg_num_tasks(g, 1, 1)
                for t in range(ntasks):
                    if floating is float:
                        if wg_task_f32(&xbuf[0] + offs[i, 0], &upre[0], &bias[0, 0], 1, hb, g, 1,
                                       &ybuf[0] + offs[i, 1], base, t, 1):
                            flag[tid] = 1
                    else:
                        if wg_task_f64(&xbuf[0] + offs[i, 0], &upre[0], &bias[0, 0], 1, hb, g, 1,
                                       &ybuf[0] + offs[i, 1], base, t, 1):
                            flag[tid] = 1
    return any(flags)
