"""fastconv: framework-free CPU convolution for NumPy users.

conv2d with PyTorch's semantics, im2col/col2im, dynamic convolution, exact kernel algebra and
scipy.signal-compatible 2-D filters, compiled with Numba and Cython.
"""

from ._threads import get_num_threads, set_num_threads, threads

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "get_num_threads",
    "set_num_threads",
    "threads",
]
