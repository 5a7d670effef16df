"""fastconv.dask here: threaded-scheduler scaling (1 vs 2 workers) and out-of-core memory.

Run: PYTHONPATH=. python benchmarks/scripts/dask_speed.py [--size 8192] [--ooc-size 16384]
     [--mem-sizes 8192 16384 32768] [--repeat 0 to skip the timings]
The writer-memory table needs zarr for its to_zarr rows (fastconv's dask/test extras).
"""

import argparse
import json
import os
import subprocess
import sys
import time

import dask
import dask.array as da
import numpy as np

import fastconv
import fastconv.dask as fdask
import fastconv.signal as fsignal

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


class _Store:
    def __init__(self, arr, out):
        self.arr, self.out = arr, out

    def compute(self, **kw):
        da.store(self.arr, self.out, lock=False, **kw)


def scaling(size, ksize, chunks, repeat):
    """Seconds for the same graph on 1 and 2 threaded-scheduler workers, interleaved so that
    machine noise hits both alike; eager fastconv.signal on 1 and 2 threads beside them."""
    rng = np.random.default_rng(1234)
    img = rng.standard_normal((size, size), dtype=np.float32)
    k = rng.standard_normal((ksize, ksize)).astype(np.float32)
    cases = [
        (
            f"correlate2d {size}^2 k{ksize} chunks {c}",
            fdask.correlate2d(da.from_array(img, chunks=c), k, boundary="symm"),
        )
        for c in chunks
    ]

    xb = da.from_array(
        rng.standard_normal((8, 32, 512, 512), dtype=np.float32), chunks=(1, 32, 256, 256)
    )
    w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    yb = fdask.conv2d(xb, w, padding=1)

    rows = {}
    cases.append(("conv2d 8x32x512x512 3x3->32, chunks (1,32,256,256)", yb))
    # compute() ends by assembling one NumPy array in the calling thread, a serial step; storing
    # into a preallocated array (as out-of-core code does) writes each block from its own task.
    out = np.zeros_like(img)
    cases += [
        (f"{name} -> da.store", _Store(arr, out))
        for name, arr in cases
        if name.startswith("correlate2d")
    ]
    for name, arr in cases:
        arr.compute(scheduler="threads", num_workers=2)  # JIT warm-up, page-in
        best = {1: (np.inf, 0.0), 2: (np.inf, 0.0)}
        for _ in range(repeat):
            for n in (1, 2):
                c0, t0 = os.times(), time.perf_counter()
                arr.compute(scheduler="threads", num_workers=n)
                t, c1 = time.perf_counter() - t0, os.times()
                cpu = (c1.user - c0.user) + (c1.system - c0.system)
                # CPU seconds per wall second: above 1 means the threads overlapped
                if t < best[n][0]:
                    best[n] = (t, cpu / t)
        rows[name] = best

    fsignal.correlate2d(img[:512, :512], k, "same", "symm")
    with fastconv.threads(1):
        e1 = best_of(lambda: fsignal.correlate2d(img, k, "same", "symm"), repeat)
    with fastconv.threads(2):
        e2 = best_of(lambda: fsignal.correlate2d(img, k, "same", "symm"), repeat)
    return rows, (e1, e2)


def out_of_core(size, chunk):
    """The README example in a fresh process (its own peak memory, nothing else's)."""
    code = (
        "import json, sys; sys.path.insert(0, 'examples');"
        "import out_of_core as m;"
        f"r = m.main(['--size', '{size}', '--chunk', '{chunk}',"
        f" '--dir', '/tmp/fastconv-ooc-{size}']);"
        "print('RESULT', json.dumps(r))"
    )
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if r.returncode:
        raise RuntimeError(r.stderr)
    print(r.stdout.strip())
    return json.loads(r.stdout.split("RESULT", 1)[1])


class Synthetic:
    """A lazily computed float32 image (an array-like, as a zarr or np.memmap is): each read
    computes its values from their positions, so a 32768^2 source needs neither RAM nor disk."""

    def __init__(self, n):
        self.shape, self.dtype, self.ndim = (n, n), np.dtype(np.float32), 2

    def __getitem__(self, key):
        r = np.arange(self.shape[0])[key[0]].astype(np.int64)
        c = np.arange(self.shape[1])[key[1]].astype(np.int64)
        return (((r[:, None] * 7919 + c[None, :] * 104729) % 65521) / 65521.0).astype(np.float32)


def _measure_writer(size, writer, kind, chunk, ksize, work):
    """Run in a fresh process: peak anonymous memory of writing correlate2d(x, k, "same")."""
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    from out_of_core import PeakMemory, _status

    k = np.ones((ksize, ksize), np.float32) / ksize**2
    if kind == "array-like":
        x = da.from_array(
            Synthetic(size), chunks=chunk, asarray=False, fancy=False, meta=np.empty((0, 0), "f4")
        )
    else:  # a computed source: blocks exist only once computed
        x = da.random.default_rng(1234).standard_normal(
            (size, size), chunks=chunk, dtype=np.float32
        )
    y = fdask.correlate2d(x, k, mode="same")
    y[:chunk, :chunk].compute()  # JIT warm-up outside the measurement
    path = os.path.join(work, f"out-{size}-{writer}")
    base = _status()["RssAnon"]
    t0 = time.perf_counter()
    with PeakMemory() as peak:
        if writer == "da.store":
            out = np.lib.format.open_memmap(path + ".npy", "w+", np.float32, (size, size))
            da.store(y, out, lock=False, scheduler="threads", num_workers=2)
            del out
        elif writer == "to_zarr":
            with dask.config.set(scheduler="threads", num_workers=2):
                y.to_zarr(path + ".zarr", overwrite=True)
        else:
            fdask.to_npy(y, path + ".npy", scheduler="threads", num_workers=2)
    return dict(anon=peak.anon, base=base, seconds=time.perf_counter() - t0)


def writer_memory(sizes, writers, kinds, chunk, ksize):
    """Peak anonymous memory per (source, writer, size), each in a fresh process; the outputs
    go to files under /tmp that are removed after each run."""
    import shutil
    import tempfile

    rows = {}
    for kind in kinds:
        for writer in writers:
            for size in sizes:
                work = tempfile.mkdtemp(prefix="fastconv-dask-mem-", dir="/tmp")
                code = (
                    "import json, sys; sys.path.insert(0, 'benchmarks/scripts');"
                    "import dask_speed as m;"
                    f"r = m._measure_writer({size}, {writer!r}, {kind!r}, {chunk}, {ksize},"
                    f" {work!r}); print('RESULT', json.dumps(r))"
                )
                env = dict(
                    os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")
                )
                try:
                    r = subprocess.run(
                        [sys.executable, "-c", code],
                        cwd=ROOT,
                        env=env,
                        capture_output=True,
                        text=True,
                    )
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                if r.returncode:
                    raise RuntimeError(r.stderr)
                res = json.loads(r.stdout.split("RESULT", 1)[1])
                rows[kind, writer, size] = res
                print(
                    f"  {kind} source, {writer}, {size}^2: peak anonymous {res['anon']:.0f} MiB "
                    f"(before: {res['base']:.0f}), {res['seconds']:.1f} s",
                    flush=True,
                )
    return rows


def print_memory_table(rows, sizes, writers, kinds, chunk, ksize):
    print(
        f"\npeak anonymous memory (MiB), correlate2d mode='same' k{ksize}, float32, chunks "
        f"{chunk}^2, threaded scheduler 2 workers, each in a fresh process:"
    )
    head = f"{'source':<11} {'writer':<9}" + "".join(f"{f'{n}^2':>9}" for n in sizes)
    print(head + "   growth  (limit: 512 MiB, growth < 10%)")
    for kind in kinds:
        for writer in writers:
            vals = [rows[kind, writer, n]["anon"] for n in sizes]
            growth = vals[-1] / vals[0] - 1
            ok = max(vals) < 512 and growth < 0.10
            print(
                f"{kind:<11} {writer:<9}"
                + "".join(f"{v:>9.0f}" for v in vals)
                + f"   {growth:+6.1%}  {'ok' if ok else 'OVER'}"
            )


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--size", type=int, default=8192)
    p.add_argument("--kernel", type=int, default=15)
    p.add_argument("--chunk", type=int, default=1024, help="chunk side of the out-of-core run")
    p.add_argument("--scale-chunks", type=int, nargs="+", default=[1024, 2048])
    p.add_argument("--repeat", type=int, default=5, help="0 skips the scaling runs")
    p.add_argument("--ooc-size", type=int, default=16384, help="0 skips the out-of-core run")
    p.add_argument(
        "--mem-sizes",
        type=int,
        nargs="*",
        default=[8192, 16384, 32768],
        help="image sides of the writer-memory table (none: skip it)",
    )
    p.add_argument(
        "--mem-sources",
        nargs="*",
        default=["array-like", "computed"],
        choices=["array-like", "computed"],
    )
    args = p.parse_args()
    print(f"dask {dask.__version__}, {len(os.sched_getaffinity(0))} CPUs")
    rows, (e1, e2) = (
        scaling(args.size, args.kernel, args.scale_chunks, args.repeat)
        if args.repeat
        else ({}, (0, 0))
    )
    for name, best in rows.items():
        (t1, u1), (t2, u2) = best[1], best[2]
        print(
            f"{name}: 1 worker {t1:.3f} s (cpu/wall {u1:.2f}), 2 workers {t2:.3f} s "
            f"(cpu/wall {u2:.2f}), speed-up {t1 / t2:.2f}x"
        )
    if args.repeat:
        print(f"eager fastconv.signal.correlate2d: 1 thread {e1:.3f} s, 2 threads {e2:.3f} s")
    if args.mem_sizes:
        writers = ["da.store", "to_zarr", "to_npy"]
        print("writer memory:")
        rows = writer_memory(args.mem_sizes, writers, args.mem_sources, args.chunk, args.kernel)
        print_memory_table(rows, args.mem_sizes, writers, args.mem_sources, args.chunk, args.kernel)
    if args.ooc_size:
        r = out_of_core(args.ooc_size, args.chunk)
        ok = "under" if r["peak_rss_mib"] < 512 else "OVER"
        print(
            f"out-of-core {args.ooc_size}^2: peak RSS {r['peak_rss_mib']:.0f} MiB ({ok} 512), "
            f"peak anonymous {r['peak_anon_mib']:.0f} MiB, peak file-backed resident "
            f"{r['peak_file_mib']:.0f} MiB, {r['seconds']:.1f} s"
        )


if __name__ == "__main__":
    main()
