"""Depth lowering: a 3-D convolution's (or unfold's) depth axis folded into channels, so 2-D kernels run it.

Output depth plane ``od`` reads input planes ``od*sd - pf + k*dd`` for ``k < kd``; `gather_depth`
copies them, for a slab of output planes, into ``(N, slab, C, kd, H, W)`` (channel ``c*kd + k`` of
sample ``(n, od)``), zeros where a plane falls on padding.  `scatter_depth` is its adjoint (adds the
planes back), for col2im; `tap_planes` gives the planes one depth tap reads, as a view.  Data
movement only: sizes come from a validated geometry.
"""

from __future__ import annotations


def _valid(first, sd, n_o, D):
    """[j0, j1): the output planes j of the slab whose input plane first + j*sd lies in [0, D)."""
    j0 = min(n_o, max(0, -(first // sd)))
    j1 = min(n_o, max(j0, -((first - D) // sd)))
    return j0, j1


def gather_depth(x, o0, n_o, kd, sd, dd, pf, out):
    """Fill out[:, :n_o] (shape (N, slab, C, kd, H, W)) with the input planes of output planes
    o0 .. o0 + n_o - 1 of x (N, C, D, H, W)."""
    D = x.shape[2]
    st = out[:, :n_o]
    for k in range(kd):
        first = o0 * sd - pf + k * dd
        j0, j1 = _valid(first, sd, n_o, D)
        st[:, :j0, :, k] = 0
        st[:, j1:, :, k] = 0
        if j1 > j0:
            i0 = first + j0 * sd
            st[:, j0:j1, :, k] = x[:, :, i0 : i0 + (j1 - j0 - 1) * sd + 1 : sd].transpose(
                0, 2, 1, 3, 4
            )
    return st


def scatter_depth(planes, o0, n_o, kd, sd, dd, pf, x):
    """Add planes[:, :n_o] (shape (N, slab, C, kd, H, W)) back into x (N, C, D, H, W): the adjoint
    of gather_depth (planes on padding are dropped)."""
    D = x.shape[2]
    for k in range(kd):
        first = o0 * sd - pf + k * dd
        j0, j1 = _valid(first, sd, n_o, D)
        if j1 > j0:
            i0 = first + j0 * sd
            # output planes of one slab read distinct input planes for a fixed k (sd >= 1)
            x[:, :, i0 : i0 + (j1 - j0 - 1) * sd + 1 : sd] += planes[:, j0:j1, :, k].transpose(
                0, 2, 1, 3, 4
            )


def tap_planes(xt, k, Do, sd, dd, pf):
    """(j0, j1, planes): the output planes [j0, j1) whose depth tap k reads an input plane of
    xt (N, D, C, H, W), and those input planes as one (N*(j1-j0), C, H, W) array (a view when it can
    be)."""
    N, D = xt.shape[:2]
    j0, j1 = _valid(k * dd - pf, sd, Do, D)
    i0 = j0 * sd - pf + k * dd
    src = xt[:, i0 : i0 + (j1 - j0 - 1) * sd + 1 : sd] if j1 > j0 else xt[:, :0]
    return j0, j1, src.reshape((N * (j1 - j0),) + xt.shape[2:])
