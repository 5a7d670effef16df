"""Cost-model coefficients of the planner: seconds = c0*f0 + c1*f1 + ... per algorithm.

Written by benchmarks/scripts/calibrate.py; do not edit by hand.  The features f of each
algorithm are defined next to it in fastconv/_plan.py (call overhead, multiply-adds as its
kernel executes them, elements moved, weight elements prepared).  Measured by:
    python benchmarks/scripts/calibrate.py --backend numba --points 140 --repeat 2 --budget 360 --write
    on Intel(R) Xeon(R) Processor (x86-64-v4, table v4-intel), 2 CPUs, 2026-12-02
    python benchmarks/scripts/calibrate.py --points 300 --repeat 3 --budget 720 --write
    on AMD EPYC (x86-64-v3, table v3-amd), 2 CPUs, 2026-12-02
    python benchmarks/scripts/calibrate.py --points 300 --refit --write
    on AMD EPYC (x86-64-v3, table v3-amd), 2 CPUs, 2026-12-02
    python benchmarks/scripts/calibrate.py --points 260 --repeat 3 --budget 600 --dtype float32 --write
    on Intel(R) Xeon(R) Processor (x86-64-v4, table v4-intel), 2 CPUs, 2026-12-03
    python benchmarks/scripts/calibrate.py --refit --write --dtype float32 --points 260
    on Intel(R) Xeon(R) Processor (x86-64-v4, table v4-intel), 2 CPUs, 2026-12-03
    python benchmarks/scripts/calibrate.py --points 300 --repeat 5 --budget 900 --write
    on AMD EPYC (x86-64-v4, table v4-amd), 2 CPUs, 2026-12-07
    python benchmarks/scripts/calibrate.py --refit --write --points 300
    on AMD EPYC (x86-64-v4, table v4-amd), 2 CPUs, 2026-12-07
    python benchmarks/scripts/calibrate.py --dtype float32 --points 300 --repeat 5 --budget 900 --write
    on AMD EPYC (x86-64-v4, table v4-amd), 2 CPUs, 2026-12-07: only its float32 depthwise and
    depthwise16 rows kept (the depthwise flat path's new term); its other float32 rows, fitted
    on noisier 2-thread times, gave a confirmed worst case of 2.41x against 1.42x with these
"""

# (algorithm, backend, dtype char, table: ISA level-CPU vendor): {threads: (c0, c1, ...)}
COSTS = {
    ("depthwise", "cython", "d", "v3-amd"): {
        1: (7.9e-06, 1.047e-10, 2.78e-10, 3.92e-10, 7.286e-10),
        2: (9.566e-06, 7.001e-11, 1.695e-10, 2.478e-10, 4.349e-10),
    },
    ("depthwise", "cython", "d", "v4-amd"): {
        1: (4.753e-06, 8.5e-11, 1.687e-10, 2.636e-10, 1.861e-10, 0, 2.05e-07),
        2: (5.306e-06, 4.987e-11, 1.066e-10, 1.627e-10, 1.065e-10, 0, 1.054e-07),
    },
    ("depthwise", "cython", "d", "v4-intel"): {
        1: (1.516e-05, 5.756e-11, 2.848e-10, 4.38e-10, 4.906e-10),
        2: (1.587e-05, 2.972e-11, 2.098e-10, 2.186e-10, 2.623e-10),
    },
    ("depthwise", "cython", "f", "v3-amd"): {
        1: (9.632e-06, 2.775e-11, 4.37e-10, 3.679e-10, 3.558e-10),
        2: (1.126e-05, 2.444e-11, 2.561e-10, 2.071e-10, 1.9e-10),
    },
    ("depthwise", "cython", "f", "v4-amd"): {
        1: (6.377e-06, 2.693e-11, 1.739e-10, 1.572e-10, 9.632e-11, 2.187e-10, 1.727e-07, 4.525e-11),
        2: (7.329e-06, 1.512e-11, 8.988e-11, 7.779e-11, 4.996e-11, 1.02e-10, 1.058e-07, 2.23e-11),
    },
    ("depthwise", "cython", "f", "v4-intel"): {
        1: (5.793e-06, 1.479e-11, 1.261e-10, 2.1e-10, 1.089e-10, 2.304e-10),
        2: (8.178e-06, 9.995e-12, 6.69e-11, 1.073e-10, 5.433e-11, 1.135e-10),
    },
    ("depthwise", "numba", "d", "v4-intel"): {
        1: (0, 1.157e-09, 7.074e-10, 7.751e-10, 2.298e-09),
        2: (1.403e-05, 6.05e-10, 5.168e-10, 4.638e-10, 1.235e-09),
    },
    ("depthwise", "numba", "f", "v4-intel"): {
        1: (2.868e-05, 9.018e-10, 7.349e-10, 1.181e-09, 7.961e-10),
        2: (3.197e-05, 7.317e-10, 5.464e-10, 6.591e-10, 2.616e-10),
    },
    ("depthwise16", "cython", "f", "v4-amd"): {
        1: (7.308e-06, 4.613e-11, 7.504e-11, 0, 9.544e-11, 2.727e-11),
        2: (9.539e-06, 2.515e-11, 3.322e-11, 0, 4.831e-11, 1.46e-11),
    },
    ("depthwise16", "cython", "f", "v4-intel"): {
        1: (4.426e-06, 2.789e-11, 1.147e-10, 0, 1.186e-10),
        2: (9.413e-06, 1.396e-11, 5.755e-11, 0, 5.947e-11),
    },
    ("fft", "cython", "d", "v3-amd"): {
        1: (0.0002101, 5.546e-10, 0, 2.695e-09),
        2: (0.0003701, 3.455e-10, 2.25e-09, 3.757e-09),
    },
    ("fft", "cython", "d", "v4-amd"): {
        1: (8.238e-05, 2.79e-10, 2.122e-09, 7.367e-10),
        2: (0.0001704, 1.48e-10, 3.736e-09, 0),
    },
    ("fft", "cython", "d", "v4-intel"): {
        1: (0.0001984, 2.732e-10, 4.762e-09, 6.095e-09),
        2: (0.0003275, 2.563e-10, 3.713e-09, 6.023e-09),
    },
    ("fft", "cython", "f", "v3-amd"): {
        1: (0.000171, 4.328e-10, 0, 1.975e-09),
        2: (0.0002974, 3.877e-10, 0, 2.817e-09),
    },
    ("fft", "cython", "f", "v4-amd"): {
        1: (8.023e-05, 3.18e-10, 0, 9.057e-10),
        2: (0.0001538, 2.336e-10, 0, 1.219e-09),
    },
    ("fft", "cython", "f", "v4-intel"): {
        1: (7.542e-05, 2.211e-10, 0, 1.162e-09),
        2: (0.0002715, 1.663e-10, 0, 2.284e-09),
    },
    ("fft", "numba", "d", "v4-intel"): {
        1: (0.0001688, 2.368e-10, 4.543e-09, 4.902e-09),
        2: (0.000223, 4.733e-11, 7.659e-09, 2.712e-09),
    },
    ("fft", "numba", "f", "v4-intel"): {
        1: (0.0001375, 4.269e-10, 0, 4.42e-09),
        2: (0.0001905, 3.495e-10, 0, 4.475e-09),
    },
    ("gemm", "cython", "d", "v3-amd"): {
        1: (2.129e-05, 6.54e-11, 7.102e-10, 1.757e-09, 4.219e-08, 1.078e-08),
        2: (2.996e-05, 3.624e-11, 4.167e-10, 2.549e-09, 1.847e-07, 5.732e-09),
    },
    ("gemm", "cython", "d", "v4-amd"): {
        1: (7.094e-06, 4.462e-11, 1.615e-10, 6.526e-10, 1.456e-08, 5.942e-09, 3.268e-10),
        2: (7.089e-06, 2.357e-11, 1.104e-10, 1.189e-09, 6.391e-08, 2.971e-09, 1.453e-10),
    },
    ("gemm", "cython", "d", "v4-intel"): {
        1: (2.916e-05, 5.322e-11, 5.495e-10, 2.591e-09),
        2: (3.168e-05, 2.68e-11, 3.242e-10, 2.957e-09),
    },
    ("gemm", "cython", "f", "v3-amd"): {
        1: (2.061e-05, 2.47e-11, 5.459e-10, 4.702e-10, 1.883e-08, 1.339e-08),
        2: (2.344e-05, 1.302e-11, 3.514e-10, 9.044e-10, 1.784e-07, 6.6e-09),
    },
    ("gemm", "cython", "f", "v4-amd"): {
        1: (7.867e-06, 2.354e-11, 7.278e-11, 2.418e-10, 4.068e-08, 6.983e-09, 3.267e-10),
        2: (8.507e-06, 1.25e-11, 4.728e-11, 5.882e-10, 7.138e-08, 3.356e-09, 1.603e-10),
    },
    ("gemm", "cython", "f", "v4-intel"): {
        1: (5.975e-06, 1.542e-11, 8.025e-11, 2.02e-10, 2.626e-08, 7.063e-09),
        2: (9.617e-06, 8.288e-12, 6.152e-11, 5.942e-10, 1.566e-07, 2.834e-09),
    },
    ("gemm", "numba", "d", "v4-intel"): {
        1: (3.148e-05, 5.35e-11, 1.758e-09, 1.576e-09),
        2: (3.587e-05, 2.925e-11, 9.771e-10, 2.53e-09),
    },
    ("gemm", "numba", "f", "v4-intel"): {
        1: (2.998e-05, 2.34e-11, 1.435e-09, 8.915e-10),
        2: (3.499e-05, 1.443e-11, 8.604e-10, 1.107e-09),
    },
    ("grouped", "cython", "f", "v4-amd"): {
        1: (6.116e-06, 1.453e-11, 2.999e-10, 5.658e-10, 2.227e-11),
        2: (9.509e-06, 7.358e-12, 2.028e-10, 2.739e-10, 2.019e-11),
    },
    ("grouped", "cython", "f", "v4-intel"): {
        1: (5.732e-06, 1.054e-11, 2.034e-10, 1.272e-09),
        2: (1.059e-05, 5.436e-12, 1.321e-10, 1.025e-09),
    },
    ("mix", "numpy", "d", "v3-amd"): {1: (2.076e-06, 2.396e-10, 1.202e-10, 0)},
    ("mix", "numpy", "d", "v4-amd"): {1: (6.196e-07, 6.283e-11, 7.513e-11, 0)},
    ("mix", "numpy", "d", "v4-intel"): {1: (7.216e-07, 3.756e-11, 2.45e-10, 0)},
    ("mix", "numpy", "f", "v3-amd"): {1: (1.404e-06, 1.017e-10, 3.405e-11, 0)},
    ("mix", "numpy", "f", "v4-amd"): {1: (7.865e-07, 2.899e-11, 4.313e-11, 0)},
    ("mix", "numpy", "f", "v4-intel"): {1: (4.352e-07, 1.77e-11, 5.832e-11, 0)},
    ("packed", "cython", "f", "v3-amd"): {
        1: (
            5.23e-06,
            2.643e-11,
            3.647e-11,
            1.379e-10,
            3.499e-10,
            6.564e-08,
            3.39e-10,
            5.3e-10,
            4.018e-09,
        ),
        2: (
            9.165e-06,
            1.414e-11,
            1.946e-11,
            1.023e-10,
            4.849e-10,
            5.688e-08,
            2.334e-10,
            3.04e-10,
            2.978e-09,
        ),
    },
    ("packed", "cython", "f", "v4-amd"): {
        1: (
            4.986e-06,
            1.662e-11,
            2.059e-11,
            4.472e-11,
            0,
            2.673e-08,
            4.929e-11,
            2.276e-10,
            3.082e-10,
        ),
        2: (
            9.76e-06,
            8.788e-12,
            1.266e-11,
            1.717e-11,
            4.469e-12,
            1.74e-08,
            1.977e-11,
            8.837e-11,
            5.578e-10,
        ),
    },
    ("packed", "cython", "f", "v4-intel"): {
        1: (
            3.635e-06,
            8.894e-12,
            1.162e-11,
            1.037e-10,
            2.447e-11,
            0,
            4.285e-11,
            1.517e-10,
            2.516e-10,
        ),
        2: (
            9.824e-06,
            4.649e-12,
            5.827e-12,
            5.997e-11,
            5.985e-11,
            1.955e-08,
            1.956e-11,
            7.992e-11,
            3.231e-10,
        ),
    },
    ("packed", "numba", "d", "v4-intel"): {
        1: (1.123e-05, 9.961e-11, 0, 5.595e-09, 0, 4.712e-06),
        2: (1.863e-05, 7.295e-11, 0, 2.145e-09, 0, 2.672e-06),
    },
    ("packed", "numba", "f", "v4-intel"): {
        1: (9.221e-06, 1.075e-10, 9.781e-11, 2.237e-09, 1.481e-10, 4.656e-06),
        2: (1.492e-05, 6.123e-11, 6.939e-11, 1.179e-09, 1.462e-09, 2.963e-06),
    },
    ("pointwise", "cython", "d", "v3-amd"): {
        1: (2.212e-05, 5.708e-11, 6.192e-10, 7.745e-10),
        2: (1.936e-05, 2.997e-11, 5.347e-10, 4.435e-10),
    },
    ("pointwise", "cython", "d", "v4-amd"): {
        1: (5.418e-06, 4.019e-11, 1.128e-10, 3.129e-10),
        2: (5.361e-06, 4.013e-11, 1.115e-10, 3.109e-10),
    },
    ("pointwise", "cython", "d", "v4-intel"): {
        1: (1.974e-05, 3.783e-11, 2.916e-10, 1.793e-09),
        2: (1.555e-05, 2.147e-11, 3.591e-10, 1.017e-09),
    },
    ("pointwise", "cython", "f", "v3-amd"): {
        1: (2.264e-05, 2.315e-11, 2.961e-10, 9.61e-11),
        2: (1.777e-05, 1.22e-11, 3.157e-10, 2.432e-10),
    },
    ("pointwise", "cython", "f", "v4-amd"): {
        1: (7.156e-06, 2.12e-11, 4.059e-11, 2.626e-11),
        2: (7.313e-06, 2.1e-11, 4.408e-11, 3.58e-11),
    },
    ("pointwise", "cython", "f", "v4-intel"): {
        1: (2.906e-06, 1.081e-11, 1.118e-10, 1.501e-10),
        2: (2.641e-06, 1.1e-11, 1.076e-10, 1.41e-10),
    },
    ("pointwise", "numba", "d", "v4-intel"): {
        1: (1.846e-06, 4.122e-11, 4.494e-10, 1.182e-09),
        2: (0, 1.925e-11, 4.765e-10, 7.738e-10),
    },
    ("pointwise", "numba", "f", "v4-intel"): {
        1: (1.659e-05, 1.844e-11, 1.859e-10, 4.785e-11),
        2: (1.136e-05, 9.181e-12, 2.139e-10, 2.403e-10),
    },
    ("winograd", "cython", "f", "v3-amd"): {
        1: (0, 2.966e-11, 3.064e-10, 2.847e-09),
        2: (6.304e-06, 1.443e-11, 2.053e-10, 1.713e-09),
    },
    ("winograd", "cython", "f", "v4-amd"): {
        1: (4.277e-06, 1.678e-11, 1.798e-10, 8.143e-10),
        2: (7.349e-06, 8.383e-12, 1.038e-10, 5.662e-10),
    },
    ("winograd", "cython", "f", "v4-intel"): {
        1: (4.468e-06, 1.051e-11, 1.085e-10, 5.305e-10),
        2: (1.206e-05, 5.711e-12, 6.14e-11, 3.315e-10),
    },
    ("winograd", "numba", "d", "v4-intel"): {
        1: (1.182e-05, 6.291e-11, 1.728e-09, 2.288e-09),
        2: (2.941e-05, 3.15e-11, 9.001e-10, 3.174e-09),
    },
    ("winograd", "numba", "f", "v4-intel"): {
        1: (2.79e-05, 3.855e-11, 1.386e-09, 1.522e-09),
        2: (2.287e-05, 2.001e-11, 9.11e-10, 1.703e-09),
    },
}
