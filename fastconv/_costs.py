"""Cost-model coefficients of the planner: seconds = c0*f0 + ... + c3*f3 per algorithm.

Written by benchmarks/scripts/calibrate.py; do not edit by hand.  The features f of each
algorithm are defined next to it in fastconv/_plan.py (call overhead, multiply-adds as its
kernel executes them, elements moved, weight elements prepared).  Last measured:
    python benchmarks/scripts/calibrate.py --points 260 --repeat 3 --budget 600 --write
    on Intel(R) Xeon(R) Processor, 2 CPUs, 2026-12-01
"""

# (algorithm, backend, dtype char): {threads: (c0, c1, c2)}
COSTS = {
    ('depthwise', 'cython', 'd'): {1: (1.101e-05, 5.301e-11, 2.418e-10, 4.483e-10, 5.3e-10), 2: (1.179e-05, 2.645e-11, 1.932e-10, 2.479e-10, 3.268e-10)},
    ('depthwise', 'cython', 'f'): {1: (1.101e-05, 2.419e-11, 2.207e-10, 4.814e-10, 2.76e-10), 2: (1.284e-05, 1.358e-11, 1.224e-10, 2.592e-10, 1.918e-10)},
    ('depthwise16', 'cython', 'f'): {1: (1.04e-05, 4.968e-11, 3.141e-10, 0), 2: (1.406e-05, 2.768e-11, 1.841e-10, 0)},
    ('fft', 'cython', 'd'): {1: (0.0001526, 1.226e-10, 8.049e-09, 1.341e-09), 2: (0.0003099, 5.622e-11, 8.61e-09, 1.071e-09)},
    ('fft', 'cython', 'f'): {1: (0.0001616, 8.101e-11, 5.368e-09, 0), 2: (0.0003367, 8.618e-11, 4.778e-09, 0)},
    ('gemm', 'cython', 'd'): {1: (1.846e-05, 4.812e-11, 5.411e-10, 1.202e-09), 2: (2.401e-05, 2.672e-11, 3.273e-10, 1.667e-09)},
    ('gemm', 'cython', 'f'): {1: (2.266e-05, 2.419e-11, 3.454e-10, 1.032e-09), 2: (2.746e-05, 1.453e-11, 1.958e-10, 1.019e-09)},
    ('grouped', 'cython', 'f'): {1: (1.723e-05, 1.67e-11, 4.97e-10, 1.524e-09), 2: (1.939e-05, 9.13e-12, 2.608e-10, 2.004e-09)},
    ('mix', 'numpy', 'd'): {1: (3.537e-07, 5.179e-11, 2.803e-10, 0)},
    ('mix', 'numpy', 'f'): {1: (1.138e-06, 4.049e-11, 1.028e-10, 0)},
    ('packed', 'cython', 'f'): {1: (7.605e-06, 1.966e-11, 1.831e-11, 3.979e-11, 3.844e-10, 9.193e-08), 2: (1.518e-05, 1.12e-11, 1.003e-11, 1.649e-10, 3.121e-10, 7.975e-08)},
    ('pointwise', 'cython', 'd'): {1: (1.542e-05, 3.35e-11, 2.646e-10, 7.816e-10), 2: (1.24e-05, 1.974e-11, 3.046e-10, 7.757e-10)},
    ('pointwise', 'cython', 'f'): {1: (1.914e-05, 1.631e-11, 1.561e-10, 1.429e-10), 2: (1.449e-05, 9.504e-12, 1.764e-10, 2.574e-10)},
    ('winograd', 'cython', 'f'): {1: (0, 1.716e-11, 1.804e-10, 4.576e-09), 2: (9.353e-06, 7.811e-12, 1.377e-10, 2.853e-09)},
}
