"""Cython driver of fastconv's packed, register-blocked convolution kernel (_packed_kernel.h).

Twin of fastconv/_jit/packed.py (same names and signatures).  No validation, no allocation: the
caller passes contiguous arrays, the output and a workspace of `packed_workspace_size` elements.
"""

cimport numpy as cnp
from cython.parallel cimport parallel, prange, threadid
from libc.stdint cimport int64_t

cnp.import_array()

ctypedef fused floating:
    float
    double

cdef extern from "_packed_kernel.h" nogil:
    int fc_have_avx512()
    int fc_have_avx2()
    int64_t fc_workspace_size(const int64_t *g, int64_t nthreads)
    int64_t fc_flags_offset(const int64_t *g, int64_t nthreads)
    int64_t fc_num_tasks(const int64_t *g)
    int64_t fc_num_tasks_f64(const int64_t *g)
    int64_t fc_num_ablocks(const int64_t *g)
    int64_t fc_apack_size(const int64_t *g)
    int fc_klanes(const int64_t *g)
    int fc_implicit(const int64_t *g)
    int fc_phase_panels_ok(int64_t kh, int64_t kw, int64_t s2, int64_t s3)
    float fc_phase_panels(const float *src, int64_t s0, int64_t s1, int64_t C, int64_t Kg,
                          int64_t kk, const int64_t *taps, const int64_t *tstart, int64_t P,
                          int64_t mb, int64_t mbn, float *apack)
    int fc_has_pad(const int64_t *g)
    void fc_pack_a_f32(const float *w, float *apack, const int64_t *g, int64_t blk, float *flag)
    int64_t fc_task_chunk(int64_t ntasks, int64_t nthreads)
    int64_t fc_spread(int64_t t, int64_t ntasks, int64_t chunk, int64_t nthreads)
    int64_t fc_ksplit(const int64_t *g, int64_t ntasks, int64_t nthreads)
    int64_t fc_bpanel_offset(const int64_t *g, int64_t tid)
    int64_t fc_panel_offset_f32(const int64_t *g, int64_t tid)
    float *fc_align_f32(float *ws)
    double *fc_align_f64(double *ws)
    void fc_omp_barrier()
    int64_t fc_xpad_offset(const int64_t *g, int64_t nthreads)
    int64_t fc_prep_items_f32(const int64_t *g)
    void fc_prep_f32(const float *x, const float *w, float *base, float *xpad, const int64_t *g,
                     int64_t i, float *flag)
    void fc_prep_f64(const double *w, double *base, const int64_t *g, int64_t i, double *flag)
    void fc_task_f32(const float *x, const float *xp, const float *w, const float *apack,
                     const float *bias, int has_bias, const int64_t *g, float *out, float *panel,
                     int64_t task, int64_t chunk, int64_t ksplit, float *flag,
                     const float *kl_pre, const float *res, int act)
    int fc_epilogue_fuses(const int64_t *g, int has_res)
    int64_t fc_kl_prepack_size(const int64_t *g)
    void fc_kl_prepack(const float *w, const int64_t *g, float *dst, float *flag)
    void fc_task_f64(const double *x, const double *apack, const double *bias, int has_bias,
                     const int64_t *g, double *out, double *panel, int64_t task)
    void fc_fix_border_f32(const float *x, const float *w, const float *bias, int has_bias,
                           const int64_t *g, float *out)
    void fc_fix_border_f64(const double *x, const double *w, const double *bias, int has_bias,
                           const int64_t *g, double *out)


cdef inline bint _any_flag(const floating *flags, int n) noexcept nogil:
    # after the prep barrier no task sets a flag when fusing (see conv_packed)
    cdef int i
    for i in range(n):
        if flags[i] != 0:
            return True
    return False


def data_address(cnp.ndarray a):
    """The address of a's data (not a kernel: _plan.empty_aligned and scratch align their buffers
    with it; ``a.__array_interface__["data"][0]`` builds a dict and cost ~1 us a call)."""
    return <size_t>cnp.PyArray_DATA(a)


def packed_supported(dtype_char):
    """True when a fast packed path exists for this dtype on this CPU (float32 with AVX-512F, or
    with AVX2 and FMA)."""
    return dtype_char == "f" and (fc_have_avx512() == 1 or fc_have_avx2() == 1)


def packed_workspace_size(const int64_t[::1] geo, int nthreads):
    """Elements (of the compute dtype) of workspace `conv_packed` needs with `nthreads` threads.

    Pass the same `nthreads` to `conv_packed`: the layout (one panel per thread) depends on it.
    """
    return int(fc_workspace_size(&geo[0], nthreads))


def packed_prepack_size(const int64_t[::1] geo):
    """Elements of the weight panels packed_prepack writes for geo (pixel-lane and implicit
    modes: their A panels; K-lanes mode: the transposed panels its tasks would make); 0 without
    AVX-512 (the AVX2 and portable paths pack per call)."""
    cdef const int64_t *g = &geo[0]
    if not fc_have_avx512():
        return 0
    return fc_kl_prepack_size(g) if fc_klanes(g) else fc_apack_size(g)


def packed_fuses_epilogue(const int64_t[::1] geo, bint residual):
    """True when conv_packed applies conv2d's epilogue (act, and a residual when `residual`)
    task by task on geo (float32 with AVX-512: K-lanes mode, and pixel-lane mode without a
    residual); it may still decline a call (a non-finite weight over the padding) and says so
    by its return value."""
    return bool(fc_epilogue_fuses(&geo[0], residual))


def packed_klanes(const int64_t[::1] geo):
    """True when a call of geo runs the K-lanes mode (its panels have their own layout)."""
    return bool(fc_klanes(&geo[0]))


def packed_implicit(const int64_t[::1] geo):
    """True when a call of geo reads B from a zero-bordered input copy (implicit mode) rather
    than packing stripes or running K-lanes tiles (tests force each mode through this)."""
    return bool(fc_implicit(&geo[0])) and not fc_klanes(&geo[0])


def packed_prepack(const float[:, :, :, ::1] w, const int64_t[::1] geo, float[::1] apack):
    """Pack w's weight panels for geo into apack (packed_prepack_size(geo) elements), once, for
    conv_packed(..., apack=apack) to read on every call with fixed weights.  Returns True when a
    weight is inf or NaN and some output pixel has a tap in the padding (conv_packed then
    recomputes the border where a tap lies in the padding, as when it packs the weights)."""
    cdef const int64_t *g = &geo[0]
    cdef int64_t i
    cdef float flag = 0
    cdef float *fp = &flag
    with nogil:
        if fc_klanes(g):
            fc_kl_prepack(&w[0, 0, 0, 0], g, &apack[0], fp)
        else:
            for i in range(fc_num_ablocks(g)):
                fc_pack_a_f32(&w[0, 0, 0, 0], &apack[0], g, i, fp)
    return flag != 0


def packed_prepack_phases(const float[:, :, :, :] wt, const int64_t[::1] taps,
                          const int64_t[::1] tstart, float[::1] apack, int nthreads):
    """The pixel-lane weight panels of every stride phase of a groups-1 transposed convolution,
    straight from conv2d's weight seen as (C, Kg, kh, kw) (a strided view, grad._flipped), in
    one pass: phase p convolves Kg channels into C with the flattened taps (i*kw + j)
    taps[tstart[p]:tstart[p + 1]], and its panels ([ceil(C/8)][Kg*taps][8], rows past C zero,
    what packed_prepack makes of the phase's weight) start at apack[8*ceil(C/8)*Kg*tstart[p]].
    conv_packed(..., apack=...) then packs no weights: the phases' gathered weights were
    written, read back and packed again, one call each (0.6 of 3.7 ms on DCGAN's 256->128 4x4
    layer at 8x8, 2 threads).  Returns True when a weight is inf or NaN (the caller then takes
    the path that packs them, whose border recompute needs the phase weights)."""
    cdef Py_ssize_t C = wt.shape[0], Kg = wt.shape[1], kw = wt.shape[3]
    cdef Py_ssize_t P = tstart.shape[0] - 1, T = taps.shape[0], it = sizeof(float)
    cdef Py_ssize_t s0 = wt.strides[0] // it, s1 = wt.strides[1] // it
    cdef Py_ssize_t s2 = wt.strides[2] // it, s3 = wt.strides[3] // it
    cdef Py_ssize_t mbn = (C + 7) // 8, mb, k, m, c, p, t, t0, nt
    cdef const float *src = &wt[0, 0, 0, 0]
    cdef float *dst
    cdef float v, nf = 0
    cdef int64_t eoff[1024]
    if T > 1024:
        raise ValueError("packed_prepack_phases: more than 1024 taps")
    for t in range(T):
        eoff[t] = (taps[t] // kw) * s2 + (taps[t] % kw) * s3
    if fc_phase_panels_ok(wt.shape[2], kw, s2, s3):
        # AVX-512: m-block pairs, 16 channels' taps transposed in registers
        with nogil:
            for mb in prange((mbn + 1) // 2, num_threads=nthreads, schedule="static"):
                nf += fc_phase_panels(src, s0, s1, C, Kg, wt.shape[2] * kw, &taps[0],
                                      &tstart[0], P, 2 * mb, mbn, &apack[0])
        return nf != 0
    with nogil:
        for mb in prange(mbn, num_threads=nthreads, schedule="static"):
            for k in range(Kg):
                for p in range(P):
                    t0 = tstart[p]
                    nt = tstart[p + 1] - t0
                    # rows k*nt .. k*nt + nt - 1 of this m-block's panel: nt*8 floats in a run
                    dst = &apack[0] + 8 * mbn * Kg * t0 + (mb * Kg + k) * nt * 8
                    for m in range(8):
                        c = mb * 8 + m
                        if c < C:
                            for t in range(nt):
                                v = src[c * s0 + k * s1 + eoff[t0 + t]]
                                dst[t * 8 + m] = v
                                nf += v - v
                        else:
                            for t in range(nt):
                                dst[t * 8 + m] = 0
    return nf != 0


def conv_packed(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] w,
                const floating[::1] bias, bint has_bias, const int64_t[::1] geo,
                floating[:, :, :, ::1] out, floating[::1] ws, int nthreads,
                const float[::1] apack=None, bint apack_nonfinite=False, int act=0,
                const floating[::1] residual=None):
    """out = conv2d(x, w) (+ bias) through packed weight panels and per-thread im2col panels.

    apack: float32 weight panels packed_prepack made for this geo (then the call packs none);
    apack_nonfinite what packed_prepack returned.  act (0 none, 1 relu, 2 relu6, 3 silu) and
    residual (out's size, flat; never out's memory): conv2d's epilogue, out = act(out +
    residual), applied by each task to the outputs it wrote where the mode allows (float32,
    AVX-512, pixel-lane and K-lanes modes, and no border left to recompute for a non-finite
    weight).  Returns True when it applied the epilogue, else the caller runs it."""
    cdef const int64_t *g = &geo[0]
    cdef const floating *xp = &x[0, 0, 0, 0]
    cdef const floating *wp = &w[0, 0, 0, 0]
    cdef const floating *bp = NULL
    cdef floating *op = &out[0, 0, 0, 0]
    cdef floating *base
    cdef int64_t nprep, ntasks, i, t, chunk, ksplit = 1
    cdef floating *xpad = NULL
    cdef floating *flags
    cdef int tid, hb = 1 if (has_bias and bias.shape[0] > 0) else 0
    cdef int64_t prep0 = 0
    cdef const float *ap32 = NULL
    cdef const float *kl_pre = NULL
    cdef const float *rp = NULL
    cdef int fuse = 0, fused = 0
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
        nprep = fc_prep_items_f32(g)
        xpad = base + fc_xpad_offset(g, nthreads)
        ntasks = fc_num_tasks(g)
        ksplit = fc_ksplit(g, ntasks, nthreads)  # few tiles: split their output channels too
        ntasks *= ksplit
        ap32 = base
        if apack is not None and fc_klanes(g):
            kl_pre = &apack[0]  # the tasks' weight panels are packed already
        elif apack is not None:
            ap32 = &apack[0]
            prep0 = fc_num_ablocks(g)  # the weight panels are packed already
    else:
        base = fc_align_f64(&ws[0])
        nprep = fc_num_ablocks(g)
        ntasks = fc_num_tasks_f64(g)
    # one slot per thread, set when the weights hold an inf or NaN (see fc_fix_border)
    flags = base + fc_flags_offset(g, nthreads)
    for i in range(nthreads):
        flags[i] = 0
    if apack is not None and apack_nonfinite and fc_has_pad(g):
        flags[0] = 1
    chunk = fc_task_chunk(ntasks, nthreads)
    if floating is float:
        # a K-lanes task that packs its own weights may flag a non-finite one (the border is
        # then recomputed after the tasks): no fused epilogue there
        fuse = (act != 0 or residual is not None) and fc_epilogue_fuses(
            g, residual is not None) and not (
            fc_klanes(g) and kl_pre == NULL and fc_has_pad(g))
        if fuse and residual is not None:
            rp = <const float *>&residual[0]
    if nthreads == 1:
        # no OpenMP region: on tiny calls starting one costs as much as the work
        with nogil:
            for i in range(prep0, nprep):
                if floating is float:
                    fc_prep_f32(xp, wp, base, xpad, g, i, flags)
                else:
                    fc_prep_f64(wp, base, g, i, flags)
            if fuse and flags[0] != 0:
                fuse = 0  # a non-finite weight: the border is recomputed after the tasks
            if not fuse:
                act, rp = 0, NULL
            for t in range(ntasks):
                if floating is float:
                    fc_task_f32(xp, xpad, wp, ap32, bp, hb, g, op, base + fc_panel_offset_f32(g, 0),
                                t, chunk, ksplit, flags, kl_pre, rp, act)
                else:
                    fc_task_f64(xp, base, bp, hb, g, op, base + fc_bpanel_offset(g, 0), t)
    else:
        with nogil, parallel(num_threads=nthreads):
            # the weights are packed (and the input padded) once per call, published by the
            # barrier
            for i in prange(prep0, nprep, schedule="static"):
                tid = threadid()
                if floating is float:
                    fc_prep_f32(xp, wp, base, xpad, g, i, flags + tid)
                else:
                    fc_prep_f64(wp, base, g, i, flags + tid)
            fc_omp_barrier()
            # dynamic: a thread the OS preempts (the machine is shared) does not hold up the call
            # (in the fc_spread order: neighbouring stripes on one thread, not at once on two)
            for t in prange(ntasks, schedule="dynamic", chunksize=chunk):
                tid = threadid()
                if floating is float:
                    # a prep that flagged a non-finite weight: the border is recomputed after
                    # the tasks, and the epilogue then (every thread sees the same flags)
                    fused = fuse and not _any_flag(flags, nthreads)
                    fc_task_f32(xp, xpad, wp, ap32, bp, hb, g, op,
                                base + fc_panel_offset_f32(g, tid),
                                fc_spread(t, ntasks, chunk, nthreads), chunk, ksplit,
                                flags + tid, kl_pre, rp if fused else NULL, act if fused else 0)
                else:
                    fc_task_f64(xp, base, bp, hb, g, op, base + fc_bpanel_offset(g, tid),
                                fc_spread(t, ntasks, chunk, nthreads))
    for i in range(nthreads):
        if flags[i] != 0:
            with nogil:
                if floating is float:
                    fc_fix_border_f32(xp, wp, bp, hb, g, op)
                else:
                    fc_fix_border_f64(xp, wp, bp, hb, g, op)
            return False  # fused or not, the epilogue runs after the border's recompute
    return bool(fuse)
