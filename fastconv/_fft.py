"""FFT correlation: the one 'valid' multi-channel correlation by FFT, shared by conv2d and signal.

Channels are summed in the frequency domain (one small complex matmul per frequency), so a layer
costs one forward transform per input plane and one inverse per output plane, whatever the kernel size.
"""

from __future__ import annotations

import numpy as np

__all__ = ["conv2d_fft", "correlate_valid_fft", "fft_chunk", "fft_len", "spectra_bytes"]


def fft_len(n):
    """The next length >= n that scipy.fft transforms fast (real input)."""
    from scipy import fft as sp_fft

    return sp_fft.next_fast_len(int(n), real=True)


def spectra_bytes(N, C, K, Hp, Wp, dtype):
    """Bytes of the spectra correlate_valid_fft holds at once for N samples (input, kernel, output)."""
    F = fft_len(Hp) * (fft_len(Wp) // 2 + 1)
    item = 2 * np.dtype(dtype).itemsize
    return (N * C + K * C + N * K) * F * item


def correlate_valid_fft(xp, w, nthreads, wf=None):
    """'valid' correlation of a padded stack by FFT.

    Parameters
    ----------
    xp : ndarray (N, C, Hp, Wp)
        Input, already padded.
    w : ndarray (K, C, kh, kw)
        Kernels (cross-correlation: no flip).
    nthreads : int
        scipy.fft workers.
    wf : ndarray, optional
        The kernel spectra from a previous call with the same shapes (reused across batch chunks).

    Returns
    -------
    y : ndarray (N, K, Hp-kh+1, Wp-kw+1), in xp's dtype
    wf : the kernel spectra, for reuse

    Notes
    -----
    A circular correlation of length >= Hp only wraps into positions past Hp - kh, which 'valid'
    drops, so padding each axis to the next fast length >= Hp (not Hp + kh - 1) is exact.
    """
    from scipy import fft as sp_fft

    N, C, Hp, Wp = xp.shape
    K, _, kh, kw = w.shape
    s = (fft_len(Hp), fft_len(Wp))
    if wf is None:
        # correlation = convolution with the flipped kernel, aligned so output i reads x[i : i+kh]
        wf = sp_fft.rfft2(
            np.ascontiguousarray(w[..., ::-1, ::-1]), s, axes=(-2, -1), workers=nthreads
        )
    X = sp_fft.rfft2(xp, s, axes=(-2, -1), workers=nthreads)
    if C == 1 and K == 1:
        X *= wf
        Y = X
    else:
        F = X.shape[-2] * X.shape[-1]
        Xf = np.ascontiguousarray(X.reshape(N, C, F).transpose(2, 0, 1))  # (F, N, C)
        Wf = np.ascontiguousarray(wf.reshape(K, C, F).transpose(2, 1, 0))  # (F, C, K)
        Y = np.matmul(Xf, Wf).transpose(1, 2, 0).reshape(N, K, *X.shape[-2:])
    y = sp_fft.irfft2(Y, s, axes=(-2, -1), workers=nthreads)
    return y[:, :, kh - 1 : Hp, kw - 1 : Wp], wf


def fft_chunk(g, workspace_bytes):
    """Samples per conv2d FFT chunk within the workspace bound (0: not even one fits)."""
    Hp, Wp = g.H + g.pt + g.pb, g.W + g.pl + g.pr
    one = spectra_bytes(1, g.Cg, g.Kg, Hp, Wp, g.dtype)
    kernel = spectra_bytes(0, g.Cg, g.Kg, Hp, Wp, g.dtype)
    per_sample = one - kernel
    # x padded copy, output block and irfft buffer are about 3 more planes per channel
    per_sample += (g.Cg + 2 * g.Kg) * Hp * Wp * g.dtype.itemsize
    room = workspace_bytes - kernel
    return int(min(max(g.N, 1), room // per_sample)) if room > per_sample else 0


def conv2d_fft(x4, w2, b, g, res4, nthreads, chunk):
    """conv2d of geometry g by FFT, `chunk` samples at a time so the spectra stay within the
    workspace bound; w2 is (K, Cg*kh*kw), b (K,) or None."""
    w = w2.reshape(g.K, g.Cg, g.kh, g.kw)
    if g.dh > 1 or g.dw > 1:  # dilation: the kernel with zeros between its taps
        wd = np.zeros((g.K, g.Cg, g.dh * (g.kh - 1) + 1, g.dw * (g.kw - 1) + 1), g.dtype)
        wd[:, :, :: g.dh, :: g.dw] = w
        w = wd
    pad = ((0, 0), (0, 0), (g.pt, g.pb), (g.pl, g.pr))
    for grp in range(g.groups):
        cs, ks = slice(grp * g.Cg, (grp + 1) * g.Cg), slice(grp * g.Kg, (grp + 1) * g.Kg)
        wf = None
        for n0 in range(0, g.N, chunk):
            xp = np.pad(x4[n0 : n0 + chunk, cs], pad)
            y, wf = correlate_valid_fft(xp, w[ks], nthreads, wf)
            res4[n0 : n0 + chunk, ks] = y[:, :, :: g.sh, :: g.sw]
    if b is not None:
        res4 += b.reshape(1, g.K, 1, 1)
