"""SVD separation of a 2-D real kernel into 1-D column/row pairs, and its numerical rank.

Used by fastconv.signal (rank-1 kernels run as two 1-D passes) and fastconv.separate (algebra.py).
"""

from __future__ import annotations

import numpy as np

__all__ = ["numerical_rank", "svd_separate"]


def _default_tol(shape, s, dtype):
    # numpy.linalg.matrix_rank's rule: max(M, N) * eps * largest singular value.
    if s.size == 0:
        return 0.0
    return max(shape) * np.finfo(dtype).eps * float(s[0])


def _svd(kernel2d):
    k = np.asarray(kernel2d)
    if k.ndim != 2:
        raise ValueError(f"kernel2d must be 2-D, got {k.ndim}-D")
    if k.dtype.kind == "c":
        raise TypeError("kernel2d must be real, got a complex array")
    work = np.float32 if k.dtype == np.float32 else np.float64
    k = k.astype(work, copy=False)
    if not np.isfinite(k).all():
        # LAPACK's SVD never returns on inf (and fails on NaN after printing to stdout): refuse
        raise ValueError(
            "kernel2d must be finite to be separated: it holds NaN or inf "
            f"(shape {k.shape}); a non-finite kernel has no numerical rank"
        )
    if k.size == 0:
        kh, kw = k.shape
        return k, np.zeros((kh, 0), work), np.zeros(0, work), np.zeros((0, kw), work)
    # SVD in float64 even for float32 kernels: the split is then exact to float32 rounding.
    u, s, vt = np.linalg.svd(k.astype(np.float64), full_matrices=False)
    return k, u, s, vt


def numerical_rank(kernel2d, tol=None):
    """Number of singular values of `kernel2d` above `tol`.

    Parameters
    ----------
    kernel2d : array_like, shape (kh, kw)
        Real 2-D kernel.
    tol : float, optional
        Absolute threshold; default ``max(kh, kw) * eps * s[0]``, eps of the kernel's float type.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        `kernel2d` is not 2-D or holds NaN/inf (no LAPACK call is made on non-finite data).

    Examples
    --------
    >>> import numpy as np
    >>> numerical_rank(np.outer([1.0, 2.0, 1.0], [1.0, 0.0, -1.0]))
    1
    """
    k, _, s, _ = _svd(kernel2d)
    if tol is None:
        tol = _default_tol(k.shape, s, k.dtype)
    return int(np.count_nonzero(s > tol))


def svd_separate(kernel2d, rank=None, tol=None):
    """Split a real 2-D kernel into `r` pairs: ``sum_i outer(cols[i], rows[i]) ~= kernel``.

    Parameters
    ----------
    kernel2d : array_like, shape (kh, kw)
        Real 2-D kernel.
    rank : int, optional
        Number of pairs to keep (clipped to ``min(kh, kw)``).  Default: the numerical rank (singular
        values above `tol`), at least 1 for a non-empty kernel (an all-zero kernel gives one
        zero pair).
    tol : float, optional
        Absolute singular-value threshold used when `rank` is None; default
        ``max(kh, kw) * eps * s[0]``.

    Returns
    -------
    cols : ndarray, shape (r, kh)
        Column vectors, each scaled by ``sqrt(s[i])`` (sign chosen so the largest entry of the
        column is positive).
    rows : ndarray, shape (r, kw)
        Row vectors, each scaled by ``sqrt(s[i])``.
    s : ndarray, shape (r,)
        The kept singular values.

    Raises
    ------
    ValueError
        `kernel2d` is not 2-D, holds NaN/inf, or `rank` is negative.
    TypeError
        `kernel2d` is complex.

    Notes
    -----
    Computed in float64; results in the kernel's float type (float32 kept, anything else float64).
    Truncating to a rank below the numerical rank gives the best approximation of that rank in
    the Frobenius norm (Eckart-Young).

    Examples
    --------
    >>> import numpy as np
    >>> k = np.outer([1.0, 2.0, 1.0], [1.0, 0.0, -1.0])
    >>> cols, rows, s = svd_separate(k)
    >>> cols.shape, rows.shape
    ((1, 3), (1, 3))
    >>> np.allclose(np.outer(cols[0], rows[0]), k)
    True
    """
    k, u, s, vt = _svd(kernel2d)
    work = k.dtype
    full = s.size
    if rank is None:
        if tol is None:
            tol = _default_tol(k.shape, s, work)
        r = int(np.count_nonzero(s > tol))
        if full and r == 0:
            r = 1
    else:
        r = min(int(rank), full)
        if r < 0:
            raise ValueError(f"rank must be non-negative, got {rank}")
    u = u[:, :r]
    vt = vt[:r]
    s = s[:r]
    root = np.sqrt(s)
    cols = (u * root).T
    rows = vt * root[:, None]
    # Deterministic signs: flip each pair so the largest-magnitude entry of the column is positive.
    if r:
        idx = np.argmax(np.abs(cols), axis=1)
        sign = np.where(cols[np.arange(r), idx] < 0, -1.0, 1.0)
        cols = cols * sign[:, None]
        rows = rows * sign[:, None]
    return (
        np.ascontiguousarray(cols, dtype=work),
        np.ascontiguousarray(rows, dtype=work),
        s.astype(work),
    )
