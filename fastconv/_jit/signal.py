"""Numba kernels for fastconv.signal: direct and separable 'valid' 2-D correlation of image stacks.

Twins of fastconv/_ext/signal.pyx (same names and signatures).  No validation, no allocation: the
public layer pads, allocates outputs and workspaces and passes contiguous arrays.
"""

from numba import prange

from ._options import kernel, parallel_kernel

_COL_BLOCK = 512


@kernel
def _axpy_taps(o, xr, taps, n, first):
    """o[j] (+)= sum_q taps[q] * xr[j + q] for j < n, q < len(taps).

    Taps go four at a time so each pass over `o` does four FMAs per load/store of `o`: one tap per
    pass would be bound by the stores, not by the arithmetic.  `o`, `xr` are 1-D contiguous views,
    so the j loops vectorise.
    """
    kt = taps.shape[0]
    q = 0
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
        x0 = xr[q:]
        for j in range(n):
            o[j] += w0 * x0[j] + w1 * x0[j + 1] + w2 * x0[j + 2] + w3 * x0[j + 3]
        q += 4
    rem = kt - q
    if rem > 0:
        x0 = xr[q:]
        w0 = taps[q]
        if rem == 3:
            w1 = taps[q + 1]
            w2 = taps[q + 2]
            for j in range(n):
                o[j] += w0 * x0[j] + w1 * x0[j + 1] + w2 * x0[j + 2]
        elif rem == 2:
            w1 = taps[q + 1]
            for j in range(n):
                o[j] += w0 * x0[j] + w1 * x0[j + 1]
        else:
            for j in range(n):
                o[j] += w0 * x0[j]


@parallel_kernel
def correlate_valid(x, w, out, r0, c0, nthreads):
    """out[b, r0 + i, c0 + j] = sum_{p,q} w[p, q] * x[b, i + p, j + q] over the 'valid' range.

    x (B, H, W) and w (kh, kw) C-contiguous; out (B, OH, OW) C-contiguous, large enough for the
    (H - kh + 1, W - kw + 1) block at (r0, c0).  Parallel over (image, output row).
    """
    B, H, W = x.shape
    kh = w.shape[0]
    oh = H - kh + 1
    ow = W - w.shape[1] + 1
    if oh <= 0 or ow <= 0:
        return
    # Column blocks keep the output segment and the kh input segments in L1 across the passes.
    cb = _COL_BLOCK
    for t in prange(B * oh):
        b = t // oh
        i = t - b * oh
        for j0 in range(0, ow, cb):
            n = min(cb, ow - j0)
            o = out[b, r0 + i, c0 + j0 : c0 + j0 + n]
            for p in range(kh):
                _axpy_taps(o, x[b, i + p, j0:], w[p], n, p == 0)


@parallel_kernel
def correlate_separable(x, col, row, out, work, r0, c0, nthreads):
    """The 'valid' correlation with the rank-1 kernel outer(col, row), as two 1-D passes.

    work (nchunks, rb + kh - 1, W - kw + 1) C-contiguous: chunk c holds the row pass of the input
    rows one block of rb output rows needs; blocks are dealt round-robin to the chunks, so each
    chunk (run by one thread) owns its workspace.
    """
    B, H, W = x.shape
    kh = col.shape[0]
    oh = H - kh + 1
    ow = W - row.shape[0] + 1
    if oh <= 0 or ow <= 0:
        return
    nchunks = work.shape[0]
    rb = work.shape[1] - kh + 1
    nrb = (oh + rb - 1) // rb
    nblocks = B * nrb
    for ch in prange(nchunks):
        tmp = work[ch]
        for blk in range(ch, nblocks, nchunks):
            b = blk // nrb
            i0 = (blk - b * nrb) * rb
            n = min(rb, oh - i0)
            for rr in range(n + kh - 1):
                _axpy_taps(tmp[rr], x[b, i0 + rr], row, ow, True)
            for ii in range(n):
                _col_taps(out[b, r0 + i0 + ii, c0 : c0 + ow], tmp, ii, col, ow)


@kernel
def _col_taps(o, tmp, ii, col, n):
    """o[j] = sum_p col[p] * tmp[ii + p, j]: the column pass, four rows per pass over `o`."""
    kh = col.shape[0]
    w0 = col[0]
    t0 = tmp[ii]
    for j in range(n):
        o[j] = w0 * t0[j]
    p = 1
    while p + 4 <= kh:
        w0 = col[p]
        w1 = col[p + 1]
        w2 = col[p + 2]
        w3 = col[p + 3]
        t0 = tmp[ii + p]
        t1 = tmp[ii + p + 1]
        t2 = tmp[ii + p + 2]
        t3 = tmp[ii + p + 3]
        for j in range(n):
            o[j] += w0 * t0[j] + w1 * t1[j] + w2 * t2[j] + w3 * t3[j]
        p += 4
    while p < kh:
        w0 = col[p]
        t0 = tmp[ii + p]
        for j in range(n):
            o[j] += w0 * t0[j]
        p += 1
