"""Numba twin of fastconv/_ext/winograd.pyx: Winograd F(2x2, 3x3) convolution for 3x3 stride-1 layers.

Weights transformed once per call into the workspace, then tasks over (weight set, group, block
of output tiles): per-thread input transform, sixteen small matmuls with the tiles in the vector
lanes, output transform straight into `out`.
"""

import numba
from numba import prange

from ._options import kernel, parallel_kernel

__all__ = ["conv_winograd", "winograd_supported", "winograd_workspace_size"]

# geometry vector positions (fastconv._geometry.GEO_FIELDS)
_N, _C, _H, _W, _K, _KH, _KW, _SH, _SW, _PT, _PL, _DH, _DW, _G, _HO, _WO = range(16)

KB = 4  # output channels per register block of the matmul (Kg is padded to a multiple)
CB = 4  # input channels per register block of the matmul (Cg is padded to a multiple)
TB_MAX = 256  # tiles per task at most; more amortise the loop overhead, fewer keep V[a] in L1/L2
TB_MIN = 16
V_BUDGET = 32768  # elements of one transformed-input position V[a] (C4 x TB) we aim to keep cached
# Added to the distance between the 16 positions of U, V and M: a power-of-two distance (C4 * TB is
# often 8192) puts the 16 streams a transform reads or writes in one L1 set, which thrashes it.
SKEW = 16


def _round_up(a, b):
    return (a + b - 1) // b * b


def _tiles_per_task(N, G, C4, Ho, Wo, nw, nthreads):
    """Tiles per task, which is also the per-thread scratch stride.

    A task's tiles run through one span: all N * T tiles of a group when the weights are shared
    (small images then still fill a block), the T tiles of one sample when each has its own. As many
    tiles as the cache budget allows, but at least one task per thread and, where blocks allow, a
    task count that is a multiple of the thread count (prange splits iterations evenly).
    Compiled too (plain arithmetic only), so the kernel and `winograd_workspace_size` agree.
    """
    span = N * (((Ho + 1) // 2) * ((Wo + 1) // 2)) // nw
    spans = nw * G
    nth = max(1, nthreads)
    cap = min(TB_MAX, max(TB_MIN, V_BUDGET // C4))
    nblk = max((span + cap - 1) // cap, (nth + spans - 1) // spans)
    while (nblk * spans) % nth != 0 and (nblk + 1) * TB_MIN <= span:
        nblk += 1
    return max(8, ((span + nblk - 1) // nblk + 7) // 8 * 8)


_tiles_per_task_jit = kernel(_tiles_per_task)


def winograd_supported(dtype_char):
    """True when the Winograd kernel is a fast path for this dtype (float32 and float64 here).

    Examples
    --------
    >>> from fastconv._jit.winograd import winograd_supported
    >>> winograd_supported("f"), winograd_supported("e")
    (True, False)
    """
    return dtype_char in ("f", "d")


def _sizes(geo, nw, nthreads):
    N, C, K, G = int(geo[_N]), int(geo[_C]), int(geo[_K]), int(geo[_G])
    Ho, Wo = int(geo[_HO]), int(geo[_WO])
    K4 = _round_up(K // G, KB)
    C4 = _round_up(C // G, CB)
    tb = _tiles_per_task(N, G, C4, Ho, Wo, nw, nthreads)
    return K4, C4, tb


def winograd_prepack_size(geo):
    """Elements of transformed weights this backend keeps for fixed weights: 0, its
    `conv_winograd` transforms them on every call (the Cython twin keeps them; see
    fastconv._plan.keep_packed).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._jit.winograd import winograd_prepack_size
    >>> winograd_prepack_size(np.zeros(16, np.int64))
    0
    """
    return 0


def winograd_prepack(w, geo, u, nthreads):
    """Never called: winograd_prepack_size is 0 here (twin of the Cython function)."""
    raise NotImplementedError("the Numba Winograd kernel transforms its weights on every call")


def winograd_workspace_size(geo, nw, nthreads):
    """Elements of workspace `conv_winograd` needs: transformed weights plus per-thread scratch.

    `nw` is the number of weight sets (1 for shared weights, N for per-sample weights).

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._jit.winograd import winograd_workspace_size
    >>> geo = np.array([1, 3, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 8, 8], dtype=np.int64)
    >>> winograd_workspace_size(geo, 1, 2) > 0
    True
    """
    nw = max(1, int(nw))
    K4, C4, tb = _sizes(geo, nw, nthreads)
    G = int(geo[_G])
    per_thread = 16 * (C4 * tb + SKEW) + 16 * (K4 * tb + SKEW)
    return nw * G * 16 * (K4 * C4 + SKEW) + max(1, int(nthreads)) * per_thread


@kernel
def _transform_weights(w, ws, row, G, Kg, Cg, K4, C4):
    """U = G g G^T for one padded output-channel row (weight set, group, k) and every input channel;
    zeros past Kg and Cg so the register-blocked matmul needs no remainder loops."""
    kk = row % K4
    grp = (row // K4) % G
    wi = row // (K4 * G)
    step = K4 * C4 + SKEW  # between the 16 positions
    base = (wi * G + grp) * 16 * step + kk * C4
    z = ws.dtype.type(0)
    h = ws.dtype.type(0.5)
    for c in range(C4):
        if kk < Kg and c < Cg:
            k = grp * Kg + kk
            r = c * 9
            g00 = w[wi, k, r]
            g01 = w[wi, k, r + 1]
            g02 = w[wi, k, r + 2]
            g10 = w[wi, k, r + 3]
            g11 = w[wi, k, r + 4]
            g12 = w[wi, k, r + 5]
            g20 = w[wi, k, r + 6]
            g21 = w[wi, k, r + 7]
            g22 = w[wi, k, r + 8]
            # G g: four rows of three
            a0, a1, a2 = g00, g01, g02
            b0 = h * (g00 + g10 + g20)
            b1 = h * (g01 + g11 + g21)
            b2 = h * (g02 + g12 + g22)
            c0 = h * (g00 - g10 + g20)
            c1 = h * (g01 - g11 + g21)
            c2 = h * (g02 - g12 + g22)
            d0, d1, d2 = g20, g21, g22
            # (G g) G^T, row by row
            ws[base + c] = a0
            ws[base + step + c] = h * (a0 + a1 + a2)
            ws[base + 2 * step + c] = h * (a0 - a1 + a2)
            ws[base + 3 * step + c] = a2
            ws[base + 4 * step + c] = b0
            ws[base + 5 * step + c] = h * (b0 + b1 + b2)
            ws[base + 6 * step + c] = h * (b0 - b1 + b2)
            ws[base + 7 * step + c] = b2
            ws[base + 8 * step + c] = c0
            ws[base + 9 * step + c] = h * (c0 + c1 + c2)
            ws[base + 10 * step + c] = h * (c0 - c1 + c2)
            ws[base + 11 * step + c] = c2
            ws[base + 12 * step + c] = d0
            ws[base + 13 * step + c] = h * (d0 + d1 + d2)
            ws[base + 14 * step + c] = h * (d0 - d1 + d2)
            ws[base + 15 * step + c] = d2
        else:
            for a in range(16):
                ws[base + a * step + c] = z


@kernel
def _store_v(
    ws, dst, step, d00, d01, d02, d03, d10, d11, d12, d13, d20, d21, d22, d23, d30, d31, d32, d33
):
    """V = B^T d B for one 4x4 patch, the 16 positions `step` apart."""
    # B^T d: rows d0 - d2, d1 + d2, d2 - d1, d1 - d3
    t00, t01, t02, t03 = d00 - d20, d01 - d21, d02 - d22, d03 - d23
    t10, t11, t12, t13 = d10 + d20, d11 + d21, d12 + d22, d13 + d23
    t20, t21, t22, t23 = d20 - d10, d21 - d11, d22 - d12, d23 - d13
    t30, t31, t32, t33 = d10 - d30, d11 - d31, d12 - d32, d13 - d33
    # (B^T d) B: the same combination along each row
    ws[dst] = t00 - t02
    ws[dst + step] = t01 + t02
    ws[dst + 2 * step] = t02 - t01
    ws[dst + 3 * step] = t01 - t03
    ws[dst + 4 * step] = t10 - t12
    ws[dst + 5 * step] = t11 + t12
    ws[dst + 6 * step] = t12 - t11
    ws[dst + 7 * step] = t11 - t13
    ws[dst + 8 * step] = t20 - t22
    ws[dst + 9 * step] = t21 + t22
    ws[dst + 10 * step] = t22 - t21
    ws[dst + 11 * step] = t21 - t23
    ws[dst + 12 * step] = t30 - t32
    ws[dst + 13 * step] = t31 + t32
    ws[dst + 14 * step] = t32 - t31
    ws[dst + 15 * step] = t31 - t33


@kernel
def _px(plane, ih, iw, H, W):
    if ih >= 0 and ih < H and iw >= 0 and iw < W:
        return plane[ih, iw]
    return plane.dtype.type(0)


@kernel
def _transform_input(x, ws, vb, step, g0, nt, T, tw, c0, Cg, C4, TB, H, W, pt, pl):
    """V[a][c][t] at ws[vb + a * step + c * TB + t] for the tiles [g0, g0 + nt) of one group, tiles
    numbered through (sample, tile row, tile column); zero rows for the padding channels, which meet
    zero weights but must not be NaN."""
    th = T // tw
    for c in range(Cg):
        n = g0 // T
        ty = (g0 - n * T) // tw
        tx = g0 - n * T - ty * tw
        dst = vb + c * TB
        for t in range(nt):
            plane = x[n, c0 + c]
            ih = 2 * ty - pt
            iw = 2 * tx - pl
            if ih >= 0 and ih + 3 < H and iw >= 0 and iw + 3 < W:
                r0 = plane[ih]
                r1 = plane[ih + 1]
                r2 = plane[ih + 2]
                r3 = plane[ih + 3]
                _store_v(
                    ws,
                    dst + t,
                    step,
                    r0[iw],
                    r0[iw + 1],
                    r0[iw + 2],
                    r0[iw + 3],
                    r1[iw],
                    r1[iw + 1],
                    r1[iw + 2],
                    r1[iw + 3],
                    r2[iw],
                    r2[iw + 1],
                    r2[iw + 2],
                    r2[iw + 3],
                    r3[iw],
                    r3[iw + 1],
                    r3[iw + 2],
                    r3[iw + 3],
                )
            else:
                _store_v(
                    ws,
                    dst + t,
                    step,
                    _px(plane, ih, iw, H, W),
                    _px(plane, ih, iw + 1, H, W),
                    _px(plane, ih, iw + 2, H, W),
                    _px(plane, ih, iw + 3, H, W),
                    _px(plane, ih + 1, iw, H, W),
                    _px(plane, ih + 1, iw + 1, H, W),
                    _px(plane, ih + 1, iw + 2, H, W),
                    _px(plane, ih + 1, iw + 3, H, W),
                    _px(plane, ih + 2, iw, H, W),
                    _px(plane, ih + 2, iw + 1, H, W),
                    _px(plane, ih + 2, iw + 2, H, W),
                    _px(plane, ih + 2, iw + 3, H, W),
                    _px(plane, ih + 3, iw, H, W),
                    _px(plane, ih + 3, iw + 1, H, W),
                    _px(plane, ih + 3, iw + 2, H, W),
                    _px(plane, ih + 3, iw + 3, H, W),
                )
            tx += 1
            if tx == tw:
                tx = 0
                ty += 1
                if ty == th:
                    ty = 0
                    n += 1
    z = ws.dtype.type(0)
    for c in range(Cg, C4):
        for a in range(16):
            row = vb + a * step + c * TB
            for t in range(nt):
                ws[row + t] = z


@kernel
def _multiply(ws, ub, vb, mb, K4, C4, TB, nt):
    """M[k][t] = sum_c U[k][c] V[c][t] for one of the 16 positions: 4 output x 4 input channels per
    pass, the tiles innermost so LLVM vectorises along them. Four accumulator rows is as many as
    keeps LLVM's runtime alias checks (all rows live in `ws`) under its limit; more stop it
    vectorising."""
    z = ws.dtype.type(0)
    for k in range(0, K4, KB):
        m0 = ws[mb + k * TB : mb + k * TB + nt]
        m1 = ws[mb + (k + 1) * TB : mb + (k + 1) * TB + nt]
        m2 = ws[mb + (k + 2) * TB : mb + (k + 2) * TB + nt]
        m3 = ws[mb + (k + 3) * TB : mb + (k + 3) * TB + nt]
        for t in range(nt):
            m0[t] = z
            m1[t] = z
            m2[t] = z
            m3[t] = z
        for c in range(0, C4, CB):
            u = ub + k * C4 + c
            u00, u01, u02, u03 = ws[u], ws[u + 1], ws[u + 2], ws[u + 3]
            u = u + C4
            u10, u11, u12, u13 = ws[u], ws[u + 1], ws[u + 2], ws[u + 3]
            u = u + C4
            u20, u21, u22, u23 = ws[u], ws[u + 1], ws[u + 2], ws[u + 3]
            u = u + C4
            u30, u31, u32, u33 = ws[u], ws[u + 1], ws[u + 2], ws[u + 3]
            v0 = ws[vb + c * TB : vb + c * TB + nt]
            v1 = ws[vb + (c + 1) * TB : vb + (c + 1) * TB + nt]
            v2 = ws[vb + (c + 2) * TB : vb + (c + 2) * TB + nt]
            v3 = ws[vb + (c + 3) * TB : vb + (c + 3) * TB + nt]
            for t in range(nt):
                x0 = v0[t]
                x1 = v1[t]
                x2 = v2[t]
                x3 = v3[t]
                m0[t] += u00 * x0 + u01 * x1 + u02 * x2 + u03 * x3
                m1[t] += u10 * x0 + u11 * x1 + u12 * x2 + u13 * x3
                m2[t] += u20 * x0 + u21 * x1 + u22 * x2 + u23 * x3
                m3[t] += u30 * x0 + u31 * x1 + u32 * x2 + u33 * x3


@kernel
def _transform_output(ws, mb, step, out, g0, nt, T, tw, k0, Kg, TB, Ho, Wo, bias, hb):
    """Y = A^T M A for each tile (M[a][k][t] at ws[mb + a * step + k * TB + t]), written to
    out[n, k0 + k] (+ bias); the second row or column of a tile that sticks out past an odd Ho or Wo
    is dropped.  Returns 1 when some value written is NaN or +-inf (v - v, gathered as it is
    written, is 0 for finite v and NaN otherwise), else 0."""
    th = T // tw
    per_sample_bias = bias.shape[0] > 1
    z = out.dtype.type(0)
    chk = z
    for k in range(Kg):
        src = mb + k * TB
        n = g0 // T
        ty = (g0 - n * T) // tw
        tx = g0 - n * T - ty * tw
        for t in range(nt):
            plane = out[n, k0 + k]
            bv = bias[n if per_sample_bias else 0, k0 + k] if hb else z
            s = src + t
            m00, m01, m02, m03 = ws[s], ws[s + step], ws[s + 2 * step], ws[s + 3 * step]
            s += 4 * step
            m10, m11, m12, m13 = ws[s], ws[s + step], ws[s + 2 * step], ws[s + 3 * step]
            s += 4 * step
            m20, m21, m22, m23 = ws[s], ws[s + step], ws[s + 2 * step], ws[s + 3 * step]
            s += 4 * step
            m30, m31, m32, m33 = ws[s], ws[s + step], ws[s + 2 * step], ws[s + 3 * step]
            # A^T M: rows m0 + m1 + m2 and m1 - m2 - m3
            p0 = m00 + m10 + m20
            p1 = m01 + m11 + m21
            p2 = m02 + m12 + m22
            p3 = m03 + m13 + m23
            q0 = m10 - m20 - m30
            q1 = m11 - m21 - m31
            q2 = m12 - m22 - m32
            q3 = m13 - m23 - m33
            oh = 2 * ty
            ow = 2 * tx
            v = p0 + p1 + p2 + bv
            plane[oh, ow] = v
            chk += v - v
            if ow + 1 < Wo:
                v = p1 - p2 - p3 + bv
                plane[oh, ow + 1] = v
                chk += v - v
            if oh + 1 < Ho:
                v = q0 + q1 + q2 + bv
                plane[oh + 1, ow] = v
                chk += v - v
                if ow + 1 < Wo:
                    v = q1 - q2 - q3 + bv
                    plane[oh + 1, ow + 1] = v
                    chk += v - v
            tx += 1
            if tx == tw:
                tx = 0
                ty += 1
                if ty == th:
                    ty = 0
                    n += 1
    return 0 if chk == 0 else 1


@parallel_kernel
def conv_winograd(x, w, bias, has_bias, geo, out, ws, nthreads):
    """out = conv2d(x, w) (+ bias) for 3x3, stride-1, undilated layers by Winograd F(2x2, 3x3).

    x (N, C, H, W); w (Nw, K, C/groups * 9) with Nw 1 (shared) or N (sample n uses w[n]); bias
    (Nb, K) with Nb 1 or N, ignored unless `has_bias`; out (N, K, Ho, Wo), fully overwritten; all
    C-contiguous. geo the int64 vector of fastconv._geometry.GEO_FIELDS (kh = kw = 3, unit stride
    and dilation, any groups and padding); ws of `winograd_workspace_size(geo, Nw, nthreads)`
    elements, whose contents do not matter.  Returns True when some output it wrote is NaN or
    +-inf (found as the outputs are written): the transforms put NaN where direct summation puts
    inf, so a caller that wants direct summation's placement recomputes those calls.

    Examples
    --------
    >>> import numpy as np
    >>> from fastconv._geometry import conv_geometry
    >>> from fastconv._jit.winograd import conv_winograd, winograd_workspace_size
    >>> x = np.ones((1, 2, 4, 4), np.float32); w = np.ones((3, 2, 3, 3), np.float32)
    >>> x4, w4, _, g = conv_geometry(x, w, None, 1, 1, 1, 1)
    >>> geo = g.as_array(); out = np.empty((1, 3, 4, 4), np.float32)
    >>> ws = np.empty(winograd_workspace_size(geo, 1, 1), np.float32)
    >>> conv_winograd(x4, w4.reshape(1, 3, 18), np.zeros((1, 1), np.float32), False, geo, out, ws, 1)
    False
    >>> float(out[0, 0, 1, 1]), float(out[0, 0, 0, 0])
    (18.0, 8.0)
    """
    N, C, H, W, K = geo[_N], geo[_C], geo[_H], geo[_W], geo[_K]
    pt, pl, G, Ho, Wo = geo[_PT], geo[_PL], geo[_G], geo[_HO], geo[_WO]
    Cg = C // G
    Kg = K // G
    K4 = (Kg + KB - 1) // KB * KB
    C4 = (Cg + CB - 1) // CB * CB
    Nw = w.shape[0]
    TB = _tiles_per_task_jit(N, G, C4, Ho, Wo, Nw, nthreads)
    tw = (Wo + 1) // 2
    T = ((Ho + 1) // 2) * tw
    span = N * T // Nw  # tiles sharing one weight set: all samples' or one sample's
    nb = (span + TB - 1) // TB
    ustep = K4 * C4 + SKEW
    vstep = C4 * TB + SKEW
    mstep = K4 * TB + SKEW
    ulen = Nw * G * 16 * ustep
    # not validation but memory safety, as in the C kernel: the layout depends on Nw and nthreads
    if ws.shape[0] < ulen + max(1, nthreads) * 16 * (vstep + mstep):
        raise ValueError("ws is smaller than winograd_workspace_size(geo, w.shape[0], nthreads)")
    hb = has_bias and bias.shape[1] > 0
    for row in prange(Nw * G * K4):
        _transform_weights(w, ws, row, G, Kg, Cg, K4, C4)
    nonfinite = 0
    for task in prange(Nw * G * nb):
        vb = ulen + numba.get_thread_id() * 16 * (vstep + mstep)
        mb = vb + 16 * vstep
        s = task // (G * nb)  # weight set
        rest = task - s * G * nb
        grp = rest // nb
        j = (rest - grp * nb) * TB
        nt = min(TB, span - j)
        g0 = s * span + j
        _transform_input(x, ws, vb, vstep, g0, nt, T, tw, grp * Cg, Cg, C4, TB, H, W, pt, pl)
        ub = (s * G + grp) * 16 * ustep
        for a in range(16):
            _multiply(ws, ub + a * ustep, vb + a * vstep, mb + a * mstep, K4, C4, TB, nt)
        nonfinite += _transform_output(
            ws, mb, mstep, out, g0, nt, T, tw, grp * Kg, Kg, TB, Ho, Wo, bias, hb
        )
    return nonfinite > 0


def winograd_classes_workspace_size(geos, nthreads):
    """Elements of workspace `conv_winograd_classes` needs (twin of the Cython function): here
    the largest of conv_winograd's for the geometries, which run one after another."""
    return max(winograd_workspace_size(geos[i], 1, nthreads) for i in range(geos.shape[0]))


def conv_winograd_classes(xbuf, w, bias, has_bias, geos, offs, ybuf, ws, nthreads, upre):
    """Several Winograd convolutions with the same shared weights (twin of the Cython function):
    convolution i (geometry geos[i]) reads its input at xbuf[offs[i, 0]:] and writes its output
    at ybuf[offs[i, 1]:].  Here they run one after another on `nthreads` threads each (the
    Cython driver runs each on thread offs[i, 2]); `upre` is unused (this backend keeps no
    transform).  Returns True when some output is NaN or +-inf."""
    bad = False
    for i in range(geos.shape[0]):
        g = geos[i]
        N, C, H, W, K, Ho, Wo = (int(g[j]) for j in (_N, _C, _H, _W, _K, _HO, _WO))
        xo, yo = int(offs[i, 0]), int(offs[i, 1])
        x = xbuf[xo : xo + N * C * H * W].reshape(N, C, H, W)
        out = ybuf[yo : yo + N * K * Ho * Wo].reshape(N, K, Ho, Wo)
        bad |= bool(conv_winograd(x, w, bias, has_bias, g, out, ws, nthreads))
    return bad
