"""asv benchmarks for fastconv: one bench_<module>.py per public module, peers side by side.

Shared setup (data, peers, layer suite, GFLOP/s, JIT warm-up) lives in _common.py.
"""
