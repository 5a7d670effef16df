"""Cost-model coefficients of the planner: seconds = c0*f0 + c1*f1 + c2*f2 + c3*f3 per algorithm.

Placeholder rates (GFLOP/s-level guesses) until benchmarks/scripts/calibrate.py writes this file.
"""

COSTS = {
    ("packed", "cython", "f"): {1: (6e-6, 1 / 45e9, 4e-10, 1e-9), 2: (1.2e-5, 1 / 90e9, 2e-10, 1e-9)},
    ("winograd", "cython", "f"): {1: (1e-5, 1 / 40e9, 6e-10, 1e-9), 2: (2e-5, 1 / 80e9, 3e-10, 1e-9)},
    ("depthwise", "cython", "f"): {1: (4e-6, 1 / 16e9, 5e-10, 1e-9), 2: (8e-6, 1 / 32e9, 2.5e-10, 1e-9)},
    ("depthwise", "cython", "d"): {1: (4e-6, 1 / 8e9, 1e-9, 1e-9), 2: (8e-6, 1 / 16e9, 5e-10, 1e-9)},
    ("grouped", "cython", "f"): {1: (6e-6, 1 / 30e9, 4e-10, 1e-9), 2: (1.2e-5, 1 / 60e9, 2e-10, 1e-9)},
    ("pointwise", "cython", "f"): {1: (5e-6, 1 / 40e9, 4e-10, 1e-9), 2: (8e-6, 1 / 75e9, 2e-10, 1e-9)},
    ("pointwise", "cython", "d"): {1: (5e-6, 1 / 20e9, 8e-10, 1e-9), 2: (8e-6, 1 / 38e9, 4e-10, 1e-9)},
    ("gemm", "cython", "f"): {1: (8e-6, 1 / 35e9, 1e-9, 1e-9), 2: (1.5e-5, 1 / 65e9, 5e-10, 1e-9)},
    ("gemm", "cython", "d"): {1: (8e-6, 1 / 17e9, 2e-9, 1e-9), 2: (1.5e-5, 1 / 32e9, 1e-9, 1e-9)},
    ("fft", "cython", "f"): {1: (5e-5, 1 / 1.5e9, 1e-9, 1e-9), 2: (6e-5, 1 / 3e9, 5e-10, 1e-9)},
    ("fft", "cython", "d"): {1: (5e-5, 1 / 1.2e9, 2e-9, 1e-9), 2: (6e-5, 1 / 2.4e9, 1e-9, 1e-9)},
}
