"""Cost-model coefficients of the planner: seconds = c0*f0 + c1*f1 + ... per algorithm.

Written by benchmarks/scripts/calibrate.py; do not edit by hand.  The features f of each
algorithm are defined next to it in fastconv/_plan.py (call overhead, multiply-adds as its
kernel executes them, elements moved, weight elements prepared).  Last measured:
    python benchmarks/scripts/calibrate.py --points 260 --repeat 3 --budget 600 --write
    on Intel(R) Xeon(R) Processor, 2 CPUs, 2026-12-02
"""

# (algorithm, backend, dtype char): {threads: (c0, c1, ...)}
COSTS = {
    ('depthwise', 'cython', 'd'): {1: (1.516e-05, 5.756e-11, 2.848e-10, 4.38e-10, 4.906e-10), 2: (1.587e-05, 2.972e-11, 2.098e-10, 2.186e-10, 2.623e-10)},
    ('depthwise', 'cython', 'f'): {1: (1.379e-05, 3.217e-11, 2.521e-10, 5.605e-10, 2.462e-10), 2: (1.555e-05, 1.897e-11, 1.372e-10, 3.234e-10, 1.074e-10)},
    ('depthwise16', 'cython', 'f'): {1: (1.195e-05, 4.817e-11, 3.524e-10, 0), 2: (1.512e-05, 3.023e-11, 1.725e-10, 0)},
    ('fft', 'cython', 'd'): {1: (0.0001984, 2.732e-10, 4.762e-09, 6.095e-09), 2: (0.0003275, 2.563e-10, 3.713e-09, 6.023e-09)},
    ('fft', 'cython', 'f'): {1: (0.0001952, 4.392e-10, 0, 2.627e-09), 2: (0.0002673, 3.475e-10, 0, 2.875e-09)},
    ('gemm', 'cython', 'd'): {1: (2.916e-05, 5.322e-11, 5.495e-10, 2.591e-09), 2: (3.168e-05, 2.68e-11, 3.242e-10, 2.957e-09)},
    ('gemm', 'cython', 'f'): {1: (2.657e-05, 2.695e-11, 3.392e-10, 9.603e-10), 2: (2.95e-05, 1.535e-11, 1.909e-10, 1.25e-09)},
    ('grouped', 'cython', 'f'): {1: (1.648e-05, 1.759e-11, 3.104e-10, 1.978e-09), 2: (1.327e-05, 9.349e-12, 1.889e-10, 2.444e-09)},
    ('mix', 'numpy', 'd'): {1: (3.888e-07, 6.956e-11, 2.379e-10, 0)},
    ('mix', 'numpy', 'f'): {1: (1.43e-06, 4.502e-11, 1.195e-10, 0)},
    ('packed', 'cython', 'f'): {1: (8.859e-06, 1.862e-11, 1.758e-11, 4.037e-11, 3.216e-10, 7.989e-08), 2: (1.549e-05, 1.018e-11, 1.1e-11, 1.241e-10, 2.363e-10, 9.223e-08)},
    ('pointwise', 'cython', 'd'): {1: (1.974e-05, 3.783e-11, 2.916e-10, 1.793e-09), 2: (1.555e-05, 2.147e-11, 3.591e-10, 1.017e-09)},
    ('pointwise', 'cython', 'f'): {1: (1.714e-05, 2.151e-11, 1.066e-10, 3.306e-12), 2: (1.379e-05, 1.006e-11, 1.434e-10, 4.907e-11)},
    ('winograd', 'cython', 'f'): {1: (0, 2.157e-11, 9.263e-11, 4.52e-09), 2: (5.265e-06, 7.539e-12, 1.51e-10, 3.165e-09)},
}
