"""Cython kernels: the same functions as fastconv._jit, compiled with OpenMP where available."""
