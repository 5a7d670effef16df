"""Dynamic convolution (DynamicConv, CondConv): per-sample kernels mixed from a bank of experts.

Owns `dynamic_conv2d`, its validation, and the `DynamicConv2d` NumPy layer; the planner chooses how it runs.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

import numpy as np

from . import _threads
from ._geometry import as_float_array, check_out, conv_geometry, result_float_dtype
from ._plan import WORKSPACE_BYTES, DynamicPlan, _nonfinite, plan_conv2d, plan_dynamic
from .conv import run_conv

__all__ = ["DynamicConv2d", "DynamicPlan", "dynamic_conv2d", "dynamic_plan"]


def _check_temperature(temperature):
    if isinstance(temperature, bool) or not isinstance(temperature, (numbers.Real, np.floating)):
        raise TypeError(f"temperature must be a real number, got {temperature!r}")
    t = float(temperature)
    if not math.isfinite(t) or t <= 0:
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    return t


def _validate(x, weight_bank, attention, bias_bank, stride, padding, dilation, groups):
    """Validate a dynamic_conv2d call; returns (x4, bank, attention2, bias_bank, geom, E).

    Bank-specific checks come first so their errors name weight_bank / attention / bias_bank;
    everything else (stride, padding, dilation, groups, spatial sizes) is _geometry's.
    """
    x = as_float_array(x, "x")
    bank = as_float_array(weight_bank, "weight_bank")
    att = as_float_array(attention, "attention")
    arrays = [x, bank, att]
    if bias_bank is not None:
        bias_bank = as_float_array(bias_bank, "bias_bank")
        arrays.append(bias_bank)
    dtype = result_float_dtype(*arrays)
    if bank.ndim != 5:
        raise ValueError(
            f"weight_bank must be 5-D (E, K, C/groups, kh, kw), got shape {bank.shape}"
        )
    E, K, Cg = bank.shape[:3]
    if E < 1:
        raise ValueError(f"weight_bank must hold at least one expert, got shape {bank.shape}")
    if x.ndim not in (3, 4):
        raise ValueError(f"x must be 3-D (C, H, W) or 4-D (N, C, H, W), got shape {x.shape}")
    if (
        isinstance(groups, (numbers.Integral, np.integer))
        and not isinstance(groups, bool)
        and groups > 0
    ):
        C = x.shape[-3]
        if K % groups:
            raise ValueError(
                f"groups={groups} must divide the output channels K={K} (weight_bank.shape[1])"
            )
        if Cg * groups != C:
            raise ValueError(
                f"weight_bank expects {Cg * groups} input channels (weight_bank.shape[2]={Cg} x "
                f"groups={groups}), but x has C={C}"
            )
    if bias_bank is not None and bias_bank.shape != (E, K):
        raise ValueError(f"bias_bank must have shape (E, K) = {(E, K)}, got {bias_bank.shape}")
    N = x.shape[0] if x.ndim == 4 else 1
    if x.ndim == 4 and att.shape != (N, E):
        raise ValueError(f"attention must have shape (N, E) = {(N, E)}, got {att.shape}")
    if x.ndim == 3 and att.shape not in ((E,), (1, E)):
        raise ValueError(
            f"attention must have shape (E,) = {(E,)} for an unbatched x, got {att.shape}"
        )
    x4, bank, bias_bank, g = conv_geometry(
        x, bank, bias_bank, stride, padding, dilation, groups, weight_ndim=5
    )
    if g.dtype != dtype:  # only attention can raise the dtype beyond conv_geometry's choice
        x4, bank = x4.astype(dtype), bank.astype(dtype)
        bias_bank = None if bias_bank is None else bias_bank.astype(dtype)
        g = dataclasses.replace(g, dtype=dtype)
    att = np.ascontiguousarray(att.reshape(N, E), dtype=dtype)
    return x4, bank, att, bias_bank, g, E


def dynamic_plan(
    g, E, backend="auto", method="auto", nthreads=None, workspace_bytes=WORKSPACE_BYTES
):
    """Pick how a dynamic convolution runs, as `dynamic_conv2d` does.

    Parameters
    ----------
    g : ConvGeometry
        Geometry of the convolution of the whole batch with one kernel (K output channels), as
        fastconv's argument validation builds it for `dynamic_conv2d`.
    E : int
        Number of experts.
    backend : {"auto", "numba", "cython"}
        Which compiled kernels the plan is for.
    method : {"auto", "mix", "experts"}
        Force a method; "auto" takes the cheaper by the planner's cost model.
    nthreads : int, optional
        Thread budget; default `fastconv.get_num_threads`.
    workspace_bytes : int
        Bound on the memory for per-sample kernels (mix) or expert outputs (experts).

    Returns
    -------
    DynamicPlan
        The method, both cost estimates (seconds) and the batch chunk.

    See Also
    --------
    dynamic_conv2d : Runs the plan; its ``method=`` forces one.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.ones((2, 4, 8, 8), dtype=np.float32)
    >>> bank = np.ones((3, 4, 4, 3, 3), dtype=np.float32)
    >>> att = np.full((2, 3), 1 / 3, dtype=np.float32)
    >>> fastconv.dynamic_conv2d(x, bank, att, padding=1, method="experts").shape
    (2, 4, 8, 8)
    """
    return plan_dynamic(g, E, backend, method, nthreads, workspace_bytes)


def dynamic_conv2d(
    x,
    weight_bank,
    attention,
    bias_bank=None,
    stride=1,
    padding=0,
    dilation=1,
    groups=1,
    *,
    out=None,
    backend="auto",
    method="auto",
):
    """Dynamic convolution: each sample is convolved with its own mixture of expert kernels.

    Sample ``n`` is convolved with ``sum_e attention[n, e] * weight_bank[e]`` and gets the bias
    ``sum_e attention[n, e] * bias_bank[e]`` (DynamicConv, Chen et al. 2020; CondConv, Yang et
    al. 2019).  Argument semantics otherwise follow `fastconv.conv2d`.

    Parameters
    ----------
    x : array_like, shape (N, C, H, W) or (C, H, W)
        Input batch (or one unbatched image).
    weight_bank : array_like, shape (E, K, C/groups, kh, kw)
        The E expert kernels.
    attention : array_like, shape (N, E), or (E,) for an unbatched x
        Mixing coefficients per sample (softmax or sigmoid outputs; any real values work).
    bias_bank : array_like, shape (E, K), optional
        Expert biases, mixed with the same coefficients.
    stride : int or (int, int), default 1
        As for `fastconv.conv2d`.
    padding : int, (int, int) or {"valid", "same"}, default 0
        As for `fastconv.conv2d`.
    dilation : int or (int, int), default 1
        As for `fastconv.conv2d`.
    groups : int, default 1
        As for `fastconv.conv2d`; every expert has the same grouping.
    out : ndarray, optional
        Where to write the result; must have the output shape and dtype.  Left untouched if the
        call fails validation.
    backend : {"auto", "numba", "cython"}
        Which compiled kernels to use; both give the same results.
    method : {"auto", "mix", "experts"}
        "mix" mixes the kernels first and runs one kernel per sample; "experts" runs the E expert
        kernels as one convolution with E*K output channels and mixes the outputs.  Both give the
        same result; "auto" picks the cheaper by the cost model (see Notes).

    Returns
    -------
    ndarray, shape (N, K, Ho, Wo) or (K, Ho, Wo)
        As `fastconv.conv2d`; float32 if every input (attention included) is float32 or narrower,
        float64 otherwise.

    Raises
    ------
    ValueError, TypeError
        On an attention of the wrong shape, a bank that does not match x and groups, a bias_bank
        of the wrong shape, bad stride/padding/dilation/groups or dtypes, naming the argument,
        before any computation.

    See Also
    --------
    DynamicConv2d : The layer that computes the attention from the input.
    fastconv.conv2d : One kernel for the whole batch.

    Notes
    -----
    How it runs (the planner's choice, from the measured cost of each way; ``method=`` forces
    one, `fastconv.dynamic.dynamic_plan` reports it): mixing first
    costs one memory-bound ``(N, E) @ (E, K*R)`` product (R = C/groups*kh*kw), then the
    convolution with per-sample kernels, either as one batched call of an algorithm that takes
    per-sample weights (Winograd, depthwise, im2col+GEMM) or as one call per sample of the
    shared-weight packed kernel, whichever the cost model puts lower; running the experts costs
    one shared-weight convolution with E*K outputs, plus writing and re-reading ``E*N*K*P``
    expert outputs.  Mixing first wins unless the output is tiny (P of the order of one pixel)
    and the batch large.  Either way the batch is processed in chunks, so the per-sample kernels
    or the expert outputs stay within 64 MiB.

    NaN or infinite attention values propagate into the output like any other weight.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> x = np.ones((2, 1, 3, 3), dtype=np.float32)
    >>> bank = np.stack([np.ones((1, 1, 1, 1)), 2 * np.ones((1, 1, 1, 1))]).astype(np.float32)
    >>> att = np.array([[1.0, 0.0], [0.5, 0.5]], dtype=np.float32)
    >>> fastconv.dynamic_conv2d(x, bank, att)[:, 0, 0, 0]
    array([1. , 1.5], dtype=float32)
    """
    x4, bank, att, bias_bank, g, E = _validate(
        x, weight_bank, attention, bias_bank, stride, padding, dilation, groups
    )
    out = check_out(out, g.out_shape, g.dtype)
    plan = dynamic_plan(g, E, backend, method)
    direct = out is not None and out.flags.c_contiguous and not np.may_share_memory(out, x4)
    res = out if direct else np.empty(g.out_shape, dtype=g.dtype)
    res4 = res.reshape(g.N, g.K, g.Ho, g.Wo)
    run = _run_mix if plan.method == "mix" else _run_experts
    for n0 in range(0, g.N, plan.chunk):
        n1 = min(g.N, n0 + plan.chunk)
        gc = dataclasses.replace(g, N=n1 - n0, batched=True)
        run(plan, backend, x4[n0:n1], bank, att[n0:n1], bias_bank, gc, E, res4[n0:n1])
        if plan.method == "experts" and method == "auto" and _nonfinite(res4[n0:n1]):
            # summing the experts' outputs turns opposite infinities into NaN where the mixed
            # kernel gives an inf: recompute the chunk the way direct summation does
            mix = dynamic_plan(gc, E, backend, "mix")
            _run_mix(mix, backend, x4[n0:n1], bank, att[n0:n1], bias_bank, gc, E, res4[n0:n1])
    if out is not None and not direct:
        out[...] = res
        return out
    return res


def _matmul(a, b, out=None):
    # The mixing products are small and memory-bound, and run right before (or after) an OpenMP
    # kernel: threaded OpenBLAS leaves its threads spinning into that kernel.  Measured here
    # (b8 c64 56x56 E4, 2 threads, loaded machine): 158 ms with BLAS on 2 threads, 65 on 1.
    with _threads.blas_single(), np.errstate(invalid="ignore", over="ignore"):
        return np.matmul(a, b, out=out)


def _run_mix(plan, backend, x4, bank, att, bias_bank, g, E, res4):
    """Mix the kernels per sample (one small GEMM), then convolve each sample with its own."""
    N, K = g.N, g.K
    w3 = _matmul(att, bank.reshape(E, -1)).reshape(N, K, g.R)
    b2 = None if bias_bank is None else _matmul(att, bias_bank)
    if plan.per_sample_calls:
        # The packed micro-kernel takes one weight per call: one call per sample, each parallel
        # over its own pixels.  (The planner could absorb this loop; see the lead's notes.)
        g1 = dataclasses.replace(g, N=1)
        p1 = plan_conv2d(g1, backend)
        for n in range(N):
            bn = None if b2 is None else b2[n : n + 1]
            run_conv(p1, x4[n : n + 1], w3[n : n + 1], bn, g1, res4[n : n + 1])
        return
    p = plan_conv2d(g, backend, per_sample=True)
    run_conv(p, x4, w3, b2, g, res4)


def _run_experts(plan, backend, x4, bank, att, bias_bank, g, E, res4):
    """Run the bank as one convolution with E*K outputs, then mix the E outputs per sample."""
    G, Kg = g.groups, g.Kg
    # Stack the experts group-major, (group, expert, channel-in-group), so each group's E*Kg output
    # channels stay contiguous and `groups` still divides the stacked output channels.
    stacked = bank.reshape(E, G, Kg, g.R).transpose(1, 0, 2, 3).reshape(1, G * E * Kg, g.R)
    stacked = np.ascontiguousarray(stacked)
    gE = dataclasses.replace(g, K=E * g.K)
    y = run_conv(plan_conv2d(gE, backend), x4, stacked, None, gE)
    # out[n, grp, k, p] = sum_e att[n, e] * y[n, grp, e, k, p]: a (1 x E) @ (E x Kg*P) per (n, grp)
    y = y.reshape(g.N, G, E, Kg * g.P)
    _matmul(att[:, None, None, :], y, out=res4.reshape(g.N, G, 1, Kg * g.P))
    if bias_bank is not None:
        with np.errstate(invalid="ignore", over="ignore"):
            res4 += _matmul(att, bias_bank)[:, :, None, None]


class DynamicConv2d:
    """A dynamic convolution layer on NumPy arrays: attention from the input, then `dynamic_conv2d`.

    The attention follows DynamicConv (global average pool, FC, ReLU, FC, softmax of the logits
    divided by `temperature`) or CondConv (global average pool, FC, sigmoid); ``hidden=0`` drops
    the hidden layer (CondConv's single FC).  Parameters are plain arrays, settable from a trained
    model's exported weights.

    Parameters
    ----------
    in_channels, out_channels : int
        Input channels C and output channels K.
    kernel_size : int or (int, int)
        Kernel height and width.
    stride : int or (int, int), default 1
        As for `fastconv.conv2d`.
    padding : int, (int, int) or {"valid", "same"}, default 0
        As for `fastconv.conv2d`.
    dilation : int or (int, int), default 1
        As for `fastconv.conv2d`.
    groups : int, default 1
        As for `fastconv.conv2d`.
    num_experts : int, default 4
        Number of expert kernels E.
    bias : bool, default True
        Whether the layer has a bias bank (E, K).
    routing : {"softmax", "sigmoid"}, default "softmax"
        DynamicConv's softmax over experts (sums to 1) or CondConv's independent sigmoids.
    hidden : int, optional
        Width of the hidden FC layer; default ``max(4, in_channels // 4)`` for softmax routing
        (DynamicConv's reduction 4) and 0 (one FC) for sigmoid routing.
    temperature : float, default 1.0
        Softmax temperature (DynamicConv anneals it from 30 to 1 in training; 1 at inference).
        The sigmoid routing divides its logits by it too.
    dtype : {numpy.float32, numpy.float64}, default float32
        The parameters' dtype.
    seed : int or numpy.random.Generator, optional
        For the initial (Kaiming-uniform, like torch) parameters.

    Attributes
    ----------
    weight_bank : ndarray, shape (E, K, C/groups, kh, kw)
    bias_bank : ndarray, shape (E, K), or None
    fc1_weight : ndarray, shape (hidden, C), or None when hidden == 0
    fc1_bias : ndarray, shape (hidden,), or None when hidden == 0
    fc2_weight : ndarray, shape (E, hidden or C)
    fc2_bias : ndarray, shape (E,)
        Assigning any of these validates the shape and converts to the layer's dtype.

    See Also
    --------
    dynamic_conv2d : The convolution the layer runs.

    Examples
    --------
    >>> import numpy as np, fastconv
    >>> layer = fastconv.DynamicConv2d(8, 16, 3, padding=1, num_experts=4, seed=0)
    >>> x = np.random.default_rng(0).standard_normal((2, 8, 10, 10)).astype(np.float32)
    >>> layer(x).shape
    (2, 16, 10, 10)
    >>> np.allclose(layer.attention(x).sum(axis=1), 1)
    True
    """

    _PARAMS = ("weight_bank", "bias_bank", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias")

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        *,
        num_experts=4,
        bias=True,
        routing="softmax",
        hidden=None,
        temperature=1.0,
        dtype=np.float32,
        seed=None,
    ):
        for name, v in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("num_experts", num_experts),
            ("groups", groups),
        ):
            if not isinstance(v, (numbers.Integral, np.integer)) or isinstance(v, bool):
                raise TypeError(f"{name} must be an int, got {v!r}")
            if v < 1:
                raise ValueError(f"{name} must be positive, got {v!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"groups={groups} must divide in_channels={in_channels} and "
                f"out_channels={out_channels}"
            )
        if routing not in ("softmax", "sigmoid"):
            raise ValueError(f"routing must be 'softmax' or 'sigmoid', got {routing!r}")
        if hidden is None:
            hidden = max(4, in_channels // 4) if routing == "softmax" else 0
        if not isinstance(hidden, (numbers.Integral, np.integer)) or isinstance(hidden, bool):
            raise TypeError(f"hidden must be an int, got {hidden!r}")
        if hidden < 0:
            raise ValueError(f"hidden must be non-negative, got {hidden}")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        from ._geometry import pair

        kh, kw = pair(kernel_size, "kernel_size", minimum=1)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = (kh, kw)
        self.stride, self.padding, self.dilation, self.groups = (
            stride,
            padding,
            dilation,
            int(groups),
        )
        self.num_experts, self.routing, self.hidden = int(num_experts), routing, int(hidden)
        self.dtype = dtype
        self.temperature = temperature
        rng = np.random.default_rng(seed)
        E, K, C = self.num_experts, self.out_channels, self.in_channels
        fan_in = C // groups * kh * kw
        bound = 1.0 / math.sqrt(fan_in)
        # torch's default init (kaiming_uniform with a=sqrt(5)) reduces to U(-1/sqrt(fan_in), ...)
        self.weight_bank = rng.uniform(-bound, bound, (E, K, C // groups, kh, kw))
        self.bias_bank = rng.uniform(-bound, bound, (E, K)) if bias else None
        fc_in = C
        if hidden:
            b1 = 1.0 / math.sqrt(C)
            self.fc1_weight = rng.uniform(-b1, b1, (hidden, C))
            self.fc1_bias = rng.uniform(-b1, b1, hidden)
            fc_in = hidden
        else:
            self.fc1_weight = self.fc1_bias = None
        b2 = 1.0 / math.sqrt(fc_in)
        self.fc2_weight = rng.uniform(-b2, b2, (E, fc_in))
        self.fc2_bias = rng.uniform(-b2, b2, E)

    # -- parameters -------------------------------------------------------------------------------

    def _shapes(self):
        E, K, C, g = self.num_experts, self.out_channels, self.in_channels, self.groups
        fc_in = self.hidden or C
        return {
            "weight_bank": (E, K, C // g) + self.kernel_size,
            "bias_bank": (E, K),
            "fc1_weight": (self.hidden, C),
            "fc1_bias": (self.hidden,),
            "fc2_weight": (E, fc_in),
            "fc2_bias": (E,),
        }

    def __setattr__(self, name, value):
        if name in self._PARAMS:
            value = self._check_param(name, value)
        elif name == "temperature":
            value = _check_temperature(value)
        object.__setattr__(self, name, value)

    def _check_param(self, name, value):
        optional = name == "bias_bank" or (name.startswith("fc1") and self.hidden == 0)
        if value is None:
            if optional:
                return None
            raise ValueError(f"{name} is required for this layer (got None)")
        if name.startswith("fc1") and self.hidden == 0:
            raise ValueError(f"{name} must be None: this layer has no hidden layer (hidden=0)")
        arr = as_float_array(value, name)
        want = self._shapes()[name]
        if arr.shape != want:
            raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
        return np.array(arr, dtype=self.dtype, order="C")  # a copy: the layer owns its parameters

    def parameters(self):
        """The layer's parameters as a dict of arrays (the names `set_parameters` accepts).

        Returns
        -------
        dict of str to ndarray or None
            The arrays weight_bank, bias_bank, fc1_weight, fc1_bias, fc2_weight and fc2_bias
            themselves (not copies).

        See Also
        --------
        set_parameters : The inverse.

        Examples
        --------
        >>> import fastconv
        >>> layer = fastconv.DynamicConv2d(4, 4, 3, num_experts=2, seed=0)
        >>> layer.parameters()["weight_bank"].shape
        (2, 4, 4, 3, 3)
        """
        return {name: getattr(self, name) for name in self._PARAMS}

    def set_parameters(self, **arrays):
        """Set several parameters at once (all validated before any is assigned).

        Parameters
        ----------
        **arrays
            Any of weight_bank, bias_bank, fc1_weight, fc1_bias, fc2_weight, fc2_bias.

        Returns
        -------
        DynamicConv2d
            The layer itself, for chaining.

        Raises
        ------
        TypeError
            An unknown parameter name.
        ValueError
            An array of the wrong shape (nothing is assigned then).

        See Also
        --------
        parameters : The current arrays.

        Examples
        --------
        >>> import numpy as np, fastconv
        >>> layer = fastconv.DynamicConv2d(4, 4, 3, num_experts=2, seed=0)
        >>> _ = layer.set_parameters(fc2_bias=np.zeros(2))
        >>> layer.fc2_bias
        array([0., 0.], dtype=float32)
        """
        unknown = set(arrays) - set(self._PARAMS)
        if unknown:
            raise TypeError(
                f"unknown parameter(s) {sorted(unknown)}; expected some of {self._PARAMS}"
            )
        checked = {k: self._check_param(k, v) for k, v in arrays.items()}
        for k, v in checked.items():
            object.__setattr__(self, k, v)
        return self

    # -- forward ----------------------------------------------------------------------------------

    def attention(self, x):
        """Per-sample mixing coefficients over the experts.

        Parameters
        ----------
        x : array_like, shape (N, C, H, W) or (C, H, W)
            The input the layer will convolve.

        Returns
        -------
        ndarray, shape (N, E) or (E,)
            Softmax routing: each row sums to 1.  Sigmoid routing: each entry in (0, 1).

        Raises
        ------
        ValueError
            `x` not 3-D or 4-D with ``in_channels`` channels.

        See Also
        --------
        dynamic_conv2d : Takes these coefficients as its `attention`.

        Examples
        --------
        >>> import numpy as np, fastconv
        >>> layer = fastconv.DynamicConv2d(4, 4, 3, num_experts=3, seed=0)
        >>> layer.attention(np.ones((2, 4, 5, 5))).shape
        (2, 3)
        """
        x = as_float_array(x, "x")
        if x.ndim not in (3, 4) or x.shape[-3] != self.in_channels:
            raise ValueError(
                f"x must have shape (N, {self.in_channels}, H, W) or ({self.in_channels}, H, W), "
                f"got {x.shape}"
            )
        x4 = x if x.ndim == 4 else x[None]
        dtype = result_float_dtype(x4, np.empty(0, self.dtype))
        pooled = x4.mean(axis=(2, 3), dtype=dtype)
        h = pooled
        if self.hidden:
            h = np.maximum(h @ self.fc1_weight.T.astype(dtype) + self.fc1_bias, 0)
        z = (h @ self.fc2_weight.T.astype(dtype) + self.fc2_bias) / dtype.type(self.temperature)
        if self.routing == "softmax":
            z = np.exp(z - z.max(axis=1, keepdims=True))
            a = z / z.sum(axis=1, keepdims=True)
        else:
            # exp of a non-positive number only: no overflow warning for large |z|
            e = np.exp(-np.abs(z))
            a = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
        a = a.astype(dtype, copy=False)
        return a if x.ndim == 4 else a[0]

    def __call__(self, x, *, backend="auto"):
        """Apply the layer: `dynamic_conv2d` with this layer's bank and the attention of `x`.

        Parameters
        ----------
        x : array_like, shape (N, C, H, W) or (C, H, W)
        backend : {"auto", "numba", "cython"}

        Returns
        -------
        ndarray, shape (N, K, Ho, Wo) or (K, Ho, Wo)
        """
        return dynamic_conv2d(
            x,
            self.weight_bank,
            self.attention(x),
            self.bias_bank,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            backend=backend,
        )

    def __repr__(self):
        return (
            f"DynamicConv2d({self.in_channels}, {self.out_channels}, {self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"groups={self.groups}, num_experts={self.num_experts}, routing={self.routing!r}, "
            f"hidden={self.hidden}, temperature={self.temperature}, dtype={self.dtype})"
        )
