"""FFT correlation: the one 'valid' multi-channel correlation by FFT, shared by conv2d and signal.

Channels are summed in the frequency domain (one small complex matmul per frequency), so a layer
costs one forward transform per input plane and one inverse per output plane, whatever the kernel size.
"""

from __future__ import annotations

import numpy as np

__all__ = ["correlate_valid_fft", "fft_len", "spectra_bytes"]


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
