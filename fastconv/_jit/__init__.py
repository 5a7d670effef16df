"""Numba kernels: the same functions as fastconv._ext, compiled with Numba (parallel, cached)."""
