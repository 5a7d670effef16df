"""fastconv: framework-free CPU convolution for NumPy users.

conv2d with PyTorch's semantics, im2col/col2im, dynamic convolution, exact kernel algebra and
scipy.signal-compatible 2-D filters, compiled with Numba and Cython.
"""

from . import cost, ndimage, signal  # noqa: F401  (signal, ndimage: scipy-compatible namespaces)
from ._threads import get_num_threads, set_num_threads, threads
from .algebra import (
    Conv2d,
    add,
    avgpool_conv,
    compose,
    compose_kernels,
    fuse_bn,
    identity_conv,
    separate,
)
from .conv import algorithms, conv2d, tune
from .convnd import conv1d, conv3d
from .dynamic import DynamicConv2d, dynamic_conv2d
from .grad import (  # training: conv2d's gradients and the transposed convolution
    conv2d_backward,
    conv2d_input,
    conv2d_weight,
    conv_transpose2d,
    dynamic_conv2d_backward,
)
from .im2col import col2im, im2col

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "DynamicConv2d",
    "dynamic_conv2d",
    "Conv2d",
    "add",
    "algorithms",
    "avgpool_conv",
    "compose",
    "compose_kernels",
    "fuse_bn",
    "identity_conv",
    "separate",
    "col2im",
    "conv1d",
    "conv2d",
    "conv3d",
    "cost",
    "get_num_threads",
    "im2col",
    "set_num_threads",
    "ndimage",
    "signal",
    "threads",
    "tune",
    "conv2d_backward",
    "conv2d_input",
    "conv2d_weight",
    "conv_transpose2d",
    "dynamic_conv2d_backward",
]
