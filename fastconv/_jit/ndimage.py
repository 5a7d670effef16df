"""Numba kernels for fastconv.ndimage: 1-D and N-d correlation and the uniform running mean with
scipy.ndimage's boundary extension, computed in float64 in scipy's own summation order.

Twins of fastconv/_ext/ndimage.pyx (same names and signatures; see there for the layouts).  These
compile without fastmath: reassociation or contraction into fused multiply-adds would change the last
bit, and the point of the module is scipy's result bit for bit.
"""

import numpy as np
from numba import njit, prange

from ._options import _OPTIONS, ParallelKernel

_EXACT = {k: v for k, v in _OPTIONS.items() if k != "fastmath"}
LANES = 32


class _ExactKernel(ParallelKernel):
    """A ParallelKernel compiled without fastmath (its serial twin too)."""

    options = _EXACT


_helper = njit(**_EXACT)


@_helper
def _src(lo, hi, L, pos):
    nlo = lo.shape[0]
    if pos < nlo:
        return lo[pos]
    if pos >= nlo + L:
        return hi[pos - nlo - L]
    return pos - nlo


@_helper
def _extend_row(b, xr, L, lo, hi, p0, n, cval):
    """b[q] = extended position p0 + q of line xr, q < n (a straight copy in the middle)."""
    nlo = lo.shape[0]
    q0 = min(max(nlo - p0, 0), n)
    q1 = max(q0, min(nlo + L - p0, n))
    for q in range(q0):
        s = _src(lo, hi, L, p0 + q)
        b[q] = xr[s] if s >= 0 else cval
    for q in range(q0, q1):
        b[q] = xr[p0 + q - nlo]
    for q in range(q1, n):
        s = _src(lo, hi, L, p0 + q)
        b[q] = xr[s] if s >= 0 else cval


@_helper
def _taps32(acc, b, base, off, w, n):
    """acc[t] = 0.0 + sum_m b[base + off[m] + t] * w[m], m in order, for t < 32.

    Eight scalar accumulators per pass over the taps, each tap's window a slice read at constant
    indices: Numba then has no negative-index check per load and no aliasing of acc with b to
    disprove, and LLVM packs the eight chains into one vector (10x faster than acc[t] += ...).
    """
    for t0 in range(0, LANES, 8):
        a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
        for m in range(n):
            q = base + off[m] + t0
            r = b[q : q + 8]
            wv = w[m]
            a0 += r[0] * wv
            a1 += r[1] * wv
            a2 += r[2] * wv
            a3 += r[3] * wv
            a4 += r[4] * wv
            a5 += r[5] * wv
            a6 += r[6] * wv
            a7 += r[7] * wv
        acc[t0] = a0
        acc[t0 + 1] = a1
        acc[t0 + 2] = a2
        acc[t0 + 3] = a3
        acc[t0 + 4] = a4
        acc[t0 + 5] = a5
        acc[t0 + 6] = a6
        acc[t0 + 7] = a7


@_helper
def _line32(acc, b, base, stride, w, sym):
    """acc[t] = scipy's NI_Correlate1D sum for output t; tap j of output t at b[base + j*stride + t].

    Each tap's 32 inputs are a slice indexed by the loop variable (see _taps32: no negative-index
    check per load, so the t loops vectorise)."""
    k = w.shape[0]
    if sym != 0:
        size1 = k // 2
        c = base + size1 * stride
        r = b[c : c + LANES]
        wv = w[size1]
        for t in range(LANES):
            acc[t] = r[t] * wv
        for j in range(-size1, 0):
            wv = w[size1 + j]
            rp = b[c + j * stride : c + j * stride + LANES]
            rq = b[c - j * stride : c - j * stride + LANES]
            if sym > 0:
                for t in range(LANES):
                    acc[t] += (rp[t] + rq[t]) * wv
            else:
                for t in range(LANES):
                    acc[t] += (rp[t] - rq[t]) * wv
    else:
        wv = w[k - 1]
        p = base + (k - 1) * stride
        r = b[p : p + LANES]
        for t in range(LANES):
            acc[t] = r[t] * wv
        for j in range(k - 1):
            wv = w[j]
            p = base + j * stride
            r = b[p : p + LANES]
            for t in range(LANES):
                acc[t] += r[t] * wv


@_ExactKernel
def correlate1d_last(x, lo, hi, w, sym, cval, out, ws, seg, nthreads):
    """out[a, l] = scipy's correlate1d of line x[a] (the filtered axis last, contiguous)."""
    A, L = x.shape
    k = w.shape[0]
    nch = ws.shape[0]
    if A == 0 or L == 0:
        return
    nseg = (L + seg - 1) // seg
    nitems = A * nseg
    for ch in prange(nch):
        b = ws[ch]
        acc = np.empty(LANES)
        for it in range(ch, nitems, nch):
            a = it // nseg
            s0 = (it - a * nseg) * seg
            n = min(seg, L - s0)
            _extend_row(b, x[a], L, lo, hi, s0, n + k - 1, cval)
            for l0 in range(0, n, LANES):
                _line32(acc, b, l0, 1, w, sym)
                for t in range(min(LANES, n - l0)):
                    out[a, s0 + l0 + t] = acc[t]


@_ExactKernel
def correlate1d_inner(x, lo, hi, w, sym, cval, out, ws, seg, nthreads):
    """out[a, :, c] = scipy's correlate1d along axis 1 of x (A, L, C), a block of columns at a time
    (cbw = ws.shape[1] // (seg + k - 1) columns, a multiple of 32: see the Cython twin)."""
    A, L, C = x.shape
    k = w.shape[0]
    nch = ws.shape[0]
    cbw = (ws.shape[1] // (seg + k - 1)) // LANES * LANES
    if A == 0 or L == 0 or C == 0:
        return
    nseg = (L + seg - 1) // seg
    ncb = (C + cbw - 1) // cbw
    nitems = A * nseg * ncb
    for ch in prange(nch):
        b = ws[ch]
        acc = np.empty(LANES)
        for it in range(ch, nitems, nch):
            a = it // (nseg * ncb)
            r = it - a * nseg * ncb
            s0 = (r // ncb) * seg
            c0 = (r - (r // ncb) * ncb) * cbw
            n = min(seg, L - s0)
            nc = min(cbw, C - c0)
            for p in range(n + k - 1):
                s = _src(lo, hi, L, s0 + p)
                if s >= 0:
                    for c in range(nc):
                        b[p * cbw + c] = x[a, s, c0 + c]
                else:
                    for c in range(nc):
                        b[p * cbw + c] = cval
            for li in range(n):
                for j0 in range(0, nc, LANES):
                    _line32(acc, b, li * cbw + j0, cbw, w, sym)
                    for t in range(min(LANES, nc - j0)):
                        out[a, s0 + li, c0 + j0 + t] = acc[t]


@_ExactKernel
def correlate_nd(
    x, planes, tap_off, tap_w, lo_h, hi_h, lo_w, hi_w, cval, out, ws, rows, cols, nthreads
):
    """scipy's N-d correlate, the array seen as (planes, H, W) (see the Cython twin)."""
    P, H, W = out.shape
    T = planes.shape[1]
    nnz = tap_w.shape[0]
    kh = lo_h.shape[0] + hi_h.shape[0] + 1
    kw = lo_w.shape[0] + hi_w.shape[0] + 1
    rp = rows + kh - 1
    wp = cols + kw - 1 + LANES
    nch = ws.shape[0]
    if P == 0 or H == 0 or W == 0:
        return
    nrb = (H + rows - 1) // rows
    ncb = (W + cols - 1) // cols
    nitems = P * nrb * ncb
    for ch in prange(nch):
        b = ws[ch]
        acc = np.empty(LANES)
        for it in range(ch, nitems, nch):
            p = it // (nrb * ncb)
            r = it - p * nrb * ncb
            i0 = (r // ncb) * rows
            jb = (r - (r // ncb) * ncb) * cols
            n = min(rows, H - i0)
            nj = min(cols, W - jb)
            for tt in range(T):
                s = planes[p, tt]
                for rr in range(n + kh - 1):
                    o = (tt * rp + rr) * wp
                    hr = _src(lo_h, hi_h, H, i0 + rr)
                    if s < 0 or hr < 0:
                        for q in range(nj + kw - 1):
                            b[o + q] = cval
                    else:
                        _extend_row(b[o:], x[s, hr], W, lo_w, hi_w, jb, nj + kw - 1, cval)
            for i in range(n):
                for j0 in range(0, nj, LANES):
                    _taps32(acc, b, i * wp + j0, tap_off, tap_w, nnz)
                    for t in range(min(LANES, nj - j0)):
                        out[p, i0 + i, jb + j0 + t] = acc[t]


@_helper
def _uniform_line(xr, orow, L, lo, hi, size, cval, b):
    _extend_row(b, xr, L, lo, hi, 0, L + size - 1, cval)
    tmp = 0.0
    for p in range(size):
        tmp += b[p]
    fs = float(size)
    orow[0] = tmp / fs
    for li in range(1, L):
        tmp += b[li + size - 1] - b[li - 1]
        orow[li] = tmp / fs


@_helper
def _uniform_cols(x2, o2, lo, hi, size, cval, b, seg):
    """scipy's running mean down the columns of x2 (L, nl <= 32), in segments of seg rows."""
    L, nl = x2.shape
    fs = float(size)
    tmp = np.zeros(LANES)
    s0 = 0
    while s0 < L:
        n = min(seg, L - s0)
        r0 = 1 if s0 == 0 else 0
        for p in range(r0, n + size):
            s = _src(lo, hi, L, s0 - 1 + p)
            if s >= 0:
                for c in range(nl):
                    b[p * LANES + c] = x2[s, c]
            else:
                for c in range(nl):
                    b[p * LANES + c] = cval
        l0 = 0
        if s0 == 0:
            for p in range(1, size + 1):
                for c in range(nl):
                    tmp[c] += b[p * LANES + c]
            for c in range(nl):
                o2[0, c] = tmp[c] / fs
            l0 = 1
        for li in range(l0, n):
            for c in range(nl):
                tmp[c] += b[(li + size) * LANES + c] - b[li * LANES + c]
            for c in range(nl):
                o2[s0 + li, c] = tmp[c] / fs
        s0 += n


@_ExactKernel
def uniform1d(x, lo, hi, size, cval, out, ws, seg, nthreads):
    """scipy's running-mean uniform_filter1d along axis 1 of x (A, L, C) (see the Cython twin)."""
    A, L, C = x.shape
    nch = ws.shape[0]
    if A == 0 or L == 0 or C == 0:
        return
    if C == 1 and ws.shape[1] >= L + size - 1:
        for ch in prange(nch):
            for a in range(ch, A, nch):
                _uniform_line(x[a, :, 0], out[a, :, 0], L, lo, hi, size, cval, ws[ch])
        return
    if C == 1:
        nitems = (A + LANES - 1) // LANES
        for ch in prange(nch):
            for it in range(ch, nitems, nch):
                a = it * LANES
                e = min(a + LANES, A)
                _uniform_cols(x[a:e, :, 0].T, out[a:e, :, 0].T, lo, hi, size, cval, ws[ch], seg)
        return
    ncb = (C + LANES - 1) // LANES
    nitems = A * ncb
    for ch in prange(nch):
        for it in range(ch, nitems, nch):
            a = it // ncb
            c0 = (it - a * ncb) * LANES
            e = min(c0 + LANES, C)
            _uniform_cols(x[a, :, c0:e], out[a, :, c0:e], lo, hi, size, cval, ws[ch], seg)


__all__ = ["correlate1d_inner", "correlate1d_last", "correlate_nd", "uniform1d"]
