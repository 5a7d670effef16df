"""Cython driver of fastconv's packed, register-blocked convolution kernel (_packed_kernel.h).

Twin of fastconv/_jit/packed.py (same names and signatures).  No validation, no allocation: the
caller passes contiguous arrays, the output and a workspace of `packed_workspace_size` elements.
"""

from cython.parallel cimport parallel, prange, threadid
from libc.stdint cimport int64_t

ctypedef fused floating:
    float
    double

cdef extern from "_packed_kernel.h" nogil:
    int fc_have_avx512()
    int64_t fc_workspace_size(const int64_t *g, int64_t nthreads)
    int64_t fc_num_ablocks(const int64_t *g)
    int64_t fc_num_tasks(const int64_t *g)
    int64_t fc_num_tasks_f64(const int64_t *g)
    int64_t fc_task_chunk(int64_t ntasks, int64_t nthreads)
    int64_t fc_ksplit(const int64_t *g, int64_t ntasks, int64_t nthreads)
    int64_t fc_bpanel_offset(const int64_t *g, int64_t tid)
    float *fc_align_f32(float *ws)
    double *fc_align_f64(double *ws)
    void fc_omp_barrier()
    void fc_pack_a_f32(const float *w, float *apack, const int64_t *g, int64_t blk)
    void fc_pack_a_f64(const double *w, double *apack, const int64_t *g, int64_t blk)
    int64_t fc_xpad_offset(const int64_t *g, int64_t nthreads)
    int64_t fc_num_planes(const int64_t *g)
    void fc_pad_plane_f32(const float *x, float *xp, const int64_t *g, int64_t plane)
    void fc_build_offsets(float *xp, const int64_t *g)
    void fc_task_f32(const float *x, const float *xp, const float *apack, const float *bias,
                     int has_bias, const int64_t *g, float *out, float *panel, int64_t task,
                     int64_t chunk, int64_t ksplit)
    void fc_task_f64(const double *x, const double *apack, const double *bias, int has_bias,
                     const int64_t *g, double *out, double *panel, int64_t task)


def packed_supported(dtype_char):
    """True when the fast packed path exists for this dtype on this CPU (float32 with AVX-512F)."""
    return dtype_char == "f" and fc_have_avx512() == 1


def packed_workspace_size(const int64_t[::1] geo, int nthreads):
    """Elements (of the compute dtype) of workspace `conv_packed` needs with `nthreads` threads.

    Pass the same `nthreads` to `conv_packed`: the layout (one panel per thread) depends on it.
    """
    return int(fc_workspace_size(&geo[0], nthreads))


def conv_packed(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                const floating[::1] bias, bint has_bias, const int64_t[::1] geo,
                floating[:, :, :, ::1] out, floating[::1] ws, int nthreads):
    """out = conv2d(x, w) (+ bias) through packed weight panels and per-thread im2col panels."""
    cdef const int64_t *g = &geo[0]
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef const floating *wp = &w[0, 0, 0, 0]
    cdef const floating *bp = NULL
    cdef floating *op = &out[0, 0, 0, 0]
    cdef floating *base
    cdef int64_t nab = fc_num_ablocks(g), npl = 0, ntasks, i, t, chunk, ksplit = 1
    cdef floating *xpad = NULL
    cdef int tid, hb = 1 if (has_bias and bias.shape[0] > 0) else 0
    if nthreads < 1:
        nthreads = 1
    # not validation but memory safety: the layout depends on nthreads, so a workspace sized for
    # fewer threads (or by the Numba twin, which needs less) would be overrun
    if ws.shape[0] < fc_workspace_size(g, nthreads):
        raise ValueError(
            f"ws has {ws.shape[0]} elements, conv_packed needs "
            f"packed_workspace_size(geo, {nthreads}) = {fc_workspace_size(g, nthreads)}"
        )
    if hb:
        bp = &bias[0]
    if floating is float:
        base = fc_align_f32(&ws[0])
        npl = fc_num_planes(g)  # > 0 in implicit mode: the input is copied padded first
        if npl > 0:
            npl += 1  # and the row offsets into it are tabulated
        xpad = base + fc_xpad_offset(g, nthreads)
        ntasks = fc_num_tasks(g)
        ksplit = fc_ksplit(g, ntasks, nthreads)  # few tiles: split their output channels too
        ntasks *= ksplit
    else:
        base = fc_align_f64(&ws[0])
        ntasks = fc_num_tasks_f64(g)
    chunk = fc_task_chunk(ntasks, nthreads)
    with nogil, parallel(num_threads=nthreads):
        # the weights are packed (and the input padded) once per call, published by the barrier
        for i in prange(nab + npl, schedule="static"):
            if floating is float:
                if i < nab:
                    fc_pack_a_f32(wp, base, g, i)
                elif i < nab + npl - 1:
                    fc_pad_plane_f32(xp, xpad, g, i - nab)
                else:
                    fc_build_offsets(xpad, g)
            else:
                fc_pack_a_f64(wp, base, g, i)
        fc_omp_barrier()
        # dynamic: a thread the OS preempts (the machine is shared) does not hold up the call
        for t in prange(ntasks, schedule="dynamic", chunksize=chunk):
            tid = threadid()
            if floating is float:
                fc_task_f32(xp, xpad, base, bp, hb, g, op, base + fc_bpanel_offset(g, tid), t,
                            chunk, ksplit)
            else:
                fc_task_f64(xp, base, bp, hb, g, op, base + fc_bpanel_offset(g, tid), t)
