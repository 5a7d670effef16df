"""The cost of a convolution: FLOPs, MACs, bytes moved, and the memory each algorithm needs.

Public so users can reason about a layer before running it; the planner reads the same numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ._geometry import geometry_from_shapes

__all__ = ["BackwardCost", "ConvCost", "conv2d_cost"]


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
    pass_="forward",
):
    """FLOPs, MACs and memory of `conv2d` (or of its backward pass), without running it.

    For arrays of the given shapes.

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
    pass_ : {"forward", "backward"}, default "forward"
        "backward" prices `fastconv.conv2d_backward` (the gradients with respect to x, weight
        and bias) and returns a `BackwardCost`.

    Returns
    -------
    ConvCost or BackwardCost
        For ``pass_="backward"`` a `BackwardCost` (see there).  Otherwise a ConvCost:
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

    D2L 6.4's exercises ask for the cost and memory of the forward and the backward pass; for the
    chapter's own example (X of 2 channels 3x3, K of shape (3, 2, 2, 2), float64):

    >>> f = conv2d_cost((1, 2, 3, 3), (3, 2, 2, 2), dtype="float64")
    >>> b = conv2d_cost((1, 2, 3, 3), (3, 2, 2, 2), dtype="float64", pass_="backward")
    >>> f.flops, b.flops  # the backward pass: both gradients (2x) plus the bias sums
    (192, 396)
    >>> f.input_bytes + f.weight_bytes + f.output_bytes, b.read_bytes + b.written_bytes
    (432, 792)
    >>> b.saved_bytes  # kept from the forward pass for the backward: X itself
    144
    """
    from ._plan import plan_conv2d

    if pass_ not in ("forward", "backward"):
        raise ValueError(f"pass_ must be 'forward' or 'backward', got {pass_!r}")
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
    if pass_ == "backward":
        return _backward_cost(g, backend, nthreads)
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


# -- the backward pass (fastconv.conv2d_backward): D2L 6.4's questions, answered by a function --


@dataclass(frozen=True)
class BackwardCost:
    """Costs of the backward pass of one conv2d call (`fastconv.conv2d_backward`).

    Byte counts are in the computing dtype.

    Parameters
    ----------
    flops : int
        All three gradients: 2 per multiply-add of grad_x and of grad_weight (each as many as the
        forward call) plus one addition per output element for grad_bias.
    grad_input_macs, grad_weight_macs : int
        Multiply-adds of each gradient as direct summation.
    forward_flops : int
        The forward call's, for the ratio (about 2x: the backward pass costs twice the forward).
    read_bytes : int
        Bytes of x, weight and grad_output, each read once.
    written_bytes : int
        Bytes of grad_x, grad_weight and grad_bias.
    saved_bytes : int
        Activations the forward pass must keep for this backward pass: its input x (grad_weight
        needs it; grad_x needs only the weight, a parameter kept anyway).
    workspace_bytes : int
        What fastconv's plans allocate beyond the results (the larger of the two gradients').
    im2col_bytes : int
        What materialising the whole im2col matrix would take (fastconv never does).
    grad_input_algorithm : str
        How grad_x runs: stride 1 as one convolution by a forward algorithm (e.g. "winograd",
        "packed", "depthwise"), strided layers as "gemm+col2im".
    grad_weight_method : str
        "direct" (groups 1 with the compiled kernel's AVX-512 instance: a register tile of
        output channels x input taps over runs of output pixels, no im2col matrix), "conv"
        (float32, groups 1, where the packed kernel runs: one convolution of x's channels
        with grad_output's; im2col tiles instead when grad_output holds NaN or inf), "im2col"
        (GEMM over bounded im2col tiles), "pointwise" or "depthwise".

    See Also
    --------
    conv2d_cost : Computes it with ``pass_="backward"``.

    Examples
    --------
    >>> from fastconv.cost import conv2d_cost
    >>> c = conv2d_cost((1, 3, 8, 8), (4, 3, 3, 3), pass_="backward")
    >>> c.flops == 2 * c.forward_flops + 1 * 4 * 6 * 6
    True
    """

    flops: int
    grad_input_macs: int
    grad_weight_macs: int
    forward_flops: int
    read_bytes: int
    written_bytes: int
    saved_bytes: int
    workspace_bytes: int
    im2col_bytes: int
    grad_input_algorithm: str
    grad_weight_method: str

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
        >>> conv2d_cost((1, 2, 3, 3), (3, 2, 2, 2), pass_="backward").as_dict()["flops"]
        396
        """
        return asdict(self)


def _backward_cost(g, backend, nthreads):
    """BackwardCost of geometry g, from the plans fastconv.conv2d_backward would run."""
    from ._plan import plan_conv2d_weight, plan_conv_transpose

    item = g.dtype.itemsize
    macs = g.N * g.K * g.P * g.R
    x_bytes = g.N * g.C * g.H * g.W * item
    w_bytes = g.K * g.R * item
    go_bytes = g.N * g.K * g.P * item
    tplan = plan_conv_transpose(g, g.Ho, g.Wo, backend, nthreads)
    wplan = plan_conv2d_weight(g, backend, nthreads)
    # a phase copies its grad_output window, its sub-kernel and (stride > 1) its result
    whole = (0, g.Ho, 0, g.Wo)
    phase_ws = [
        ph.plan.workspace_bytes(item)
        + (
            0
            if (ph.r0, ph.r1, ph.c0, ph.c1) == whole
            else ph.geom.N * ph.geom.C * ph.geom.H * ph.geom.W * item
        )
        + ph.geom.K * ph.geom.R * item
        + (0 if len(tplan.phases) == 1 else ph.geom.N * ph.geom.K * ph.geom.P * item)
        for ph in tplan.phases
        if ph.geom is not None
    ]
    algs = "+".join(ph.plan.algorithm for ph in tplan.phases if ph.geom is not None) or "zero"
    if tplan.method == "gemm":  # strided: one GEMM per sample chunk, then col2im
        algs = "gemm+col2im"
        phase_ws = [tplan.workspace * item]
    return BackwardCost(
        flops=4 * macs + g.N * g.K * g.P,
        grad_input_macs=macs,
        grad_weight_macs=macs,
        forward_flops=2 * macs,
        read_bytes=x_bytes + w_bytes + go_bytes,
        written_bytes=x_bytes + w_bytes + g.K * item,
        saved_bytes=x_bytes,
        workspace_bytes=max([wplan.workspace_bytes(item)] + phase_ws),
        im2col_bytes=g.N * g.groups * g.R * g.P * item,
        grad_input_algorithm=algs,
        grad_weight_method=wplan.method,
    )
