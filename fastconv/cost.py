"""The cost of a convolution: FLOPs, MACs, bytes moved, and the memory each algorithm needs.

Public so users can reason about a layer before running it; the planner reads the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ._geometry import geometry_from_shapes

__all__ = ["ConvCost", "conv2d_cost"]


@dataclass(frozen=True)
class ConvCost:
    """Costs of one conv2d call (all byte counts in the computing dtype).

    Parameters
    ----------
    flops : int
        Floating-point operations of direct convolution, 2 per multiply-add.
    macs : int
        Multiply-adds.
    input_bytes, weight_bytes, output_bytes : int
        Sizes of x, weight and the output.
    im2col_bytes : int
        What materialising the whole im2col matrix would take (fastconv never does).
    workspace_bytes : int
        What fastconv's plan allocates beyond the output.
    algorithm : str
        The registry entry the planner picks for the call.
    out_shape : tuple of int
        Shape of conv2d's result.

    See Also
    --------
    conv2d_cost : Computes it.

    Examples
    --------
    >>> from fastconv.cost import conv2d_cost
    >>> c = conv2d_cost((1, 3, 8, 8), (4, 3, 3, 3))
    >>> c.out_shape, c.macs
    ((1, 4, 6, 6), 3888)
    """

    flops: int
    macs: int
    input_bytes: int
    weight_bytes: int
    output_bytes: int
    im2col_bytes: int
    workspace_bytes: int
    algorithm: str
    out_shape: tuple

    @property
    def arithmetic_intensity(self):
        """Floating-point operations per byte of input, weight and output."""
        return self.flops / max(1, self.input_bytes + self.weight_bytes + self.output_bytes)

    def as_dict(self):
        """The fields as a dict (for JSON or a DataFrame row).

        Returns
        -------
        dict of str to object
            Field name to value, in declaration order.

        See Also
        --------
        dataclasses.asdict : What it calls.

        Examples
        --------
        >>> from fastconv.cost import conv2d_cost
        >>> conv2d_cost((1, 3, 8, 8), (4, 3, 3, 3)).as_dict()["flops"]
        7776
        """
        return asdict(self)


def conv2d_cost(
    x_shape,
    weight_shape,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    dtype=np.float32,
    *,
    backend="auto",
    nthreads=None,
):
    """FLOPs, MACs and memory of `conv2d` on arrays of the given shapes, without running it.

    Parameters
    ----------
    x_shape : tuple of int
        (N, C, H, W) or (C, H, W).
    weight_shape : tuple of int
        (K, C/groups, kh, kw).
    stride : int or (int, int), default 1
        As for `fastconv.conv2d`.
    padding : int, (int, int) or {"valid", "same"}, default 0
        As for `fastconv.conv2d`.
    dilation : int or (int, int), default 1
        As for `fastconv.conv2d`.
    groups : int, default 1
        As for `fastconv.conv2d`.
    dtype : dtype, default float32
        The computing dtype (sets the byte counts).
    backend : {"auto", "numba", "cython"}
        Backend whose plan sets `workspace_bytes`.
    nthreads : int, optional
        Thread count of the plan (defaults to `fastconv.get_num_threads()`).

    Returns
    -------
    ConvCost
        ``flops`` (2 per multiply-add), ``macs``, ``input_bytes``, ``weight_bytes``,
        ``output_bytes``, ``im2col_bytes`` (what materialising the whole im2col matrix would
        take), ``workspace_bytes`` (what fastconv's plan actually allocates), ``algorithm`` and
        ``out_shape``.

    Raises
    ------
    TypeError, ValueError
        Shapes that are not tuples of ints (naming `x_shape` or `weight_shape`), and every
        argument `conv2d` would refuse for arrays of these shapes, including outputs larger than
        the machine's memory (the same size limit conv2d applies).

    See Also
    --------
    fastconv.algorithms : Every entry that could run the call.
    fastconv.conv2d : Runs it.

    Examples
    --------
    >>> from fastconv.cost import conv2d_cost
    >>> c = conv2d_cost((32, 64, 56, 56), (64, 64, 3, 3), padding=1)
    >>> c.flops, c.im2col_bytes
    (7398752256, 231211008)
    >>> c.workspace_bytes <= 64 * 2**20
    True
    """
    from ._plan import plan_conv2d

    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    g = geometry_from_shapes(
        x_shape,
        weight_shape,
        stride,
        padding,
        dilation,
        groups,
        dtype,
        names=("x_shape", "weight_shape"),
    )
    item = dtype.itemsize
    plan = plan_conv2d(g, backend, nthreads)
    macs = g.N * g.K * g.P * g.R
    return ConvCost(
        flops=2 * macs,
        macs=macs,
        input_bytes=g.N * g.C * g.H * g.W * item,
        weight_bytes=g.K * g.Cg * g.kh * g.kw * item,
        output_bytes=g.N * g.K * g.P * item,
        im2col_bytes=g.N * g.groups * g.R * g.P * item,
        workspace_bytes=plan.workspace_bytes(item),
        algorithm=plan.algorithm,
        out_shape=g.out_shape,
    )
