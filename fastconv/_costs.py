"""Cost-model coefficients of the planner: seconds = c0*f0 + c1*f1 + ... per algorithm.

Written by benchmarks/scripts/calibrate.py; do not edit by hand.  The features f of each
algorithm are defined next to it in fastconv/_plan.py (call overhead, multiply-adds as its
kernel executes them, elements moved, weight elements prepared).  Measured by:
    python benchmarks/scripts/calibrate.py --points 260 --repeat 3 --budget 600 --write
    on Intel(R) Xeon(R) Processor (x86-64-v4, table v4-intel), 2 CPUs, 2026-12-01
    python benchmarks/scripts/calibrate.py --backend numba --points 140 --repeat 2 --budget 360 --write
    on Intel(R) Xeon(R) Processor (x86-64-v4, table v4-intel), 2 CPUs, 2026-12-02
    python benchmarks/scripts/calibrate.py --points 300 --repeat 3 --budget 720 --write
    on AMD EPYC (x86-64-v3, table v3-amd), 2 CPUs, 2026-12-02
    python benchmarks/scripts/calibrate.py --points 300 --refit --write
    on AMD EPYC (x86-64-v3, table v3-amd), 2 CPUs, 2026-12-02
    python benchmarks/scripts/calibrate.py --points 300 --refit --write
    on AMD EPYC (x86-64-v3, table v3-amd), 2 CPUs, 2026-12-02
    python benchmarks/scripts/calibrate.py --points 300 --refit --write
    on AMD EPYC (x86-64-v3, table v3-amd), 2 CPUs, 2026-12-02
    python benchmarks/scripts/calibrate.py --points 300 --refit --write
    on AMD EPYC (x86-64-v3, table v3-amd), 2 CPUs, 2026-12-02
    python benchmarks/scripts/calibrate.py --points 300 --refit --write
    on AMD EPYC (x86-64-v3, table v3-amd), 2 CPUs, 2026-12-02
    python benchmarks/scripts/calibrate.py --points 300 --refit --write
    on AMD EPYC (x86-64-v3, table v3-amd), 2 CPUs, 2026-12-02
    python benchmarks/scripts/calibrate.py --points 300 --refit --write
    on AMD EPYC (x86-64-v3, table v3-amd), 2 CPUs, 2026-12-02
    python benchmarks/scripts/calibrate.py --points 300 --refit --write
    on AMD EPYC (x86-64-v3, table v3-amd), 2 CPUs, 2026-12-02
"""

# (algorithm, backend, dtype char, table: ISA level-CPU vendor): {threads: (c0, c1, ...)}
COSTS = {
    ('depthwise', 'cython', 'd', 'v3-amd'): {1: (7.9e-06, 1.047e-10, 2.78e-10, 3.92e-10, 7.286e-10), 2: (9.566e-06, 7.001e-11, 1.695e-10, 2.478e-10, 4.349e-10)},
    ('depthwise', 'cython', 'd', 'v4-intel'): {1: (1.516e-05, 5.756e-11, 2.848e-10, 4.38e-10, 4.906e-10), 2: (1.587e-05, 2.972e-11, 2.098e-10, 2.186e-10, 2.623e-10)},
    ('depthwise', 'cython', 'f', 'v3-amd'): {1: (9.632e-06, 2.775e-11, 4.37e-10, 3.679e-10, 3.558e-10), 2: (1.126e-05, 2.444e-11, 2.561e-10, 2.071e-10, 1.9e-10)},
    ('depthwise', 'cython', 'f', 'v4-intel'): {1: (1.379e-05, 3.217e-11, 2.521e-10, 5.605e-10, 2.462e-10), 2: (1.555e-05, 1.897e-11, 1.372e-10, 3.234e-10, 1.074e-10)},
    ('depthwise', 'numba', 'd', 'v4-intel'): {1: (0, 1.157e-09, 7.074e-10, 7.751e-10, 2.298e-09), 2: (1.403e-05, 6.05e-10, 5.168e-10, 4.638e-10, 1.235e-09)},
    ('depthwise', 'numba', 'f', 'v4-intel'): {1: (2.868e-05, 9.018e-10, 7.349e-10, 1.181e-09, 7.961e-10), 2: (3.197e-05, 7.317e-10, 5.464e-10, 6.591e-10, 2.616e-10)},
    ('depthwise16', 'cython', 'f', 'v4-intel'): {1: (1.195e-05, 4.817e-11, 3.524e-10, 0), 2: (1.512e-05, 3.023e-11, 1.725e-10, 0)},
    ('fft', 'cython', 'd', 'v3-amd'): {1: (0.0002101, 5.546e-10, 0, 2.695e-09), 2: (0.0003701, 3.455e-10, 2.25e-09, 3.757e-09)},
    ('fft', 'cython', 'd', 'v4-intel'): {1: (0.0001984, 2.732e-10, 4.762e-09, 6.095e-09), 2: (0.0003275, 2.563e-10, 3.713e-09, 6.023e-09)},
    ('fft', 'cython', 'f', 'v3-amd'): {1: (0.000171, 4.328e-10, 0, 1.975e-09), 2: (0.0002974, 3.877e-10, 0, 2.817e-09)},
    ('fft', 'cython', 'f', 'v4-intel'): {1: (0.0001952, 4.392e-10, 0, 2.627e-09), 2: (0.0002673, 3.475e-10, 0, 2.875e-09)},
    ('fft', 'numba', 'd', 'v4-intel'): {1: (0.0001688, 2.368e-10, 4.543e-09, 4.902e-09), 2: (0.000223, 4.733e-11, 7.659e-09, 2.712e-09)},
    ('fft', 'numba', 'f', 'v4-intel'): {1: (0.0001375, 4.269e-10, 0, 4.42e-09), 2: (0.0001905, 3.495e-10, 0, 4.475e-09)},
    ('gemm', 'cython', 'd', 'v3-amd'): {1: (2.129e-05, 6.54e-11, 7.102e-10, 1.757e-09, 4.219e-08, 1.078e-08), 2: (2.996e-05, 3.624e-11, 4.167e-10, 2.549e-09, 1.847e-07, 5.732e-09)},
    ('gemm', 'cython', 'd', 'v4-intel'): {1: (2.916e-05, 5.322e-11, 5.495e-10, 2.591e-09), 2: (3.168e-05, 2.68e-11, 3.242e-10, 2.957e-09)},
    ('gemm', 'cython', 'f', 'v3-amd'): {1: (2.061e-05, 2.47e-11, 5.459e-10, 4.702e-10, 1.883e-08, 1.339e-08), 2: (2.344e-05, 1.302e-11, 3.514e-10, 9.044e-10, 1.784e-07, 6.6e-09)},
    ('gemm', 'cython', 'f', 'v4-intel'): {1: (2.657e-05, 2.695e-11, 3.392e-10, 9.603e-10), 2: (2.95e-05, 1.535e-11, 1.909e-10, 1.25e-09)},
    ('gemm', 'numba', 'd', 'v4-intel'): {1: (3.148e-05, 5.35e-11, 1.758e-09, 1.576e-09), 2: (3.587e-05, 2.925e-11, 9.771e-10, 2.53e-09)},
    ('gemm', 'numba', 'f', 'v4-intel'): {1: (2.998e-05, 2.34e-11, 1.435e-09, 8.915e-10), 2: (3.499e-05, 1.443e-11, 8.604e-10, 1.107e-09)},
    ('grouped', 'cython', 'f', 'v4-intel'): {1: (1.648e-05, 1.759e-11, 3.104e-10, 1.978e-09), 2: (1.327e-05, 9.349e-12, 1.889e-10, 2.444e-09)},
    ('mix', 'numpy', 'd', 'v3-amd'): {1: (2.076e-06, 2.396e-10, 1.202e-10, 0)},
    ('mix', 'numpy', 'd', 'v4-intel'): {1: (7.216e-07, 3.756e-11, 2.45e-10, 0)},
    ('mix', 'numpy', 'f', 'v3-amd'): {1: (1.404e-06, 1.017e-10, 3.405e-11, 0)},
    ('mix', 'numpy', 'f', 'v4-intel'): {1: (1.151e-06, 5.451e-11, 7.881e-11, 0)},
    ('packed', 'cython', 'f', 'v3-amd'): {1: (5.23e-06, 2.643e-11, 3.647e-11, 1.379e-10, 3.499e-10, 6.564e-08, 3.39e-10, 5.3e-10, 4.018e-09), 2: (9.165e-06, 1.414e-11, 1.946e-11, 1.023e-10, 4.849e-10, 5.688e-08, 2.334e-10, 3.04e-10, 2.978e-09)},
    ('packed', 'cython', 'f', 'v4-intel'): {1: (8.859e-06, 1.862e-11, 1.758e-11, 4.037e-11, 3.216e-10, 7.989e-08), 2: (1.549e-05, 1.018e-11, 1.1e-11, 1.241e-10, 2.363e-10, 9.223e-08)},
    ('packed', 'numba', 'd', 'v4-intel'): {1: (1.123e-05, 9.961e-11, 0, 5.595e-09, 0, 4.712e-06), 2: (1.863e-05, 7.295e-11, 0, 2.145e-09, 0, 2.672e-06)},
    ('packed', 'numba', 'f', 'v4-intel'): {1: (9.221e-06, 1.075e-10, 9.781e-11, 2.237e-09, 1.481e-10, 4.656e-06), 2: (1.492e-05, 6.123e-11, 6.939e-11, 1.179e-09, 1.462e-09, 2.963e-06)},
    ('pointwise', 'cython', 'd', 'v3-amd'): {1: (2.212e-05, 5.708e-11, 6.192e-10, 7.745e-10), 2: (1.936e-05, 2.997e-11, 5.347e-10, 4.435e-10)},
    ('pointwise', 'cython', 'd', 'v4-intel'): {1: (1.974e-05, 3.783e-11, 2.916e-10, 1.793e-09), 2: (1.555e-05, 2.147e-11, 3.591e-10, 1.017e-09)},
    ('pointwise', 'cython', 'f', 'v3-amd'): {1: (2.264e-05, 2.315e-11, 2.961e-10, 9.61e-11), 2: (1.777e-05, 1.22e-11, 3.157e-10, 2.432e-10)},
    ('pointwise', 'cython', 'f', 'v4-intel'): {1: (1.714e-05, 2.151e-11, 1.066e-10, 3.306e-12), 2: (1.379e-05, 1.006e-11, 1.434e-10, 4.907e-11)},
    ('pointwise', 'numba', 'd', 'v4-intel'): {1: (1.846e-06, 4.122e-11, 4.494e-10, 1.182e-09), 2: (0, 1.925e-11, 4.765e-10, 7.738e-10)},
    ('pointwise', 'numba', 'f', 'v4-intel'): {1: (1.659e-05, 1.844e-11, 1.859e-10, 4.785e-11), 2: (1.136e-05, 9.181e-12, 2.139e-10, 2.403e-10)},
    ('winograd', 'cython', 'f', 'v3-amd'): {1: (0, 2.966e-11, 3.064e-10, 2.847e-09), 2: (6.304e-06, 1.443e-11, 2.053e-10, 1.713e-09)},
    ('winograd', 'cython', 'f', 'v4-intel'): {1: (0, 2.157e-11, 9.263e-11, 4.52e-09), 2: (5.265e-06, 7.539e-12, 1.51e-10, 3.165e-09)},
    ('winograd', 'numba', 'd', 'v4-intel'): {1: (1.182e-05, 6.291e-11, 1.728e-09, 2.288e-09), 2: (2.941e-05, 3.15e-11, 9.001e-10, 3.174e-09)},
    ('winograd', 'numba', 'f', 'v4-intel'): {1: (2.79e-05, 3.855e-11, 1.386e-09, 1.522e-09), 2: (2.287e-05, 2.001e-11, 9.11e-10, 1.703e-09)},
}
