"""Filter an image larger than you want in memory: .npy file in, .npy file out, with fastconv.dask.

Run: python examples/out_of_core.py --size 16384   (a 1 GiB float32 image; default 4096)
     [--writer to_npy | da.store | to_zarr] [--check]
"""

import argparse
import os
import tempfile
import threading
import time

import dask
import dask.array as da
import numpy as np

import fastconv.dask


def _status():
    """Memory fields of /proc/self/status (Linux) in MiB."""
    vals = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("RssAnon:", "RssFile:", "RssShmem:", "VmHWM:")):
                key, kb = line.split()[:2]
                vals[key[:-1]] = int(kb) / 1024
    return vals


def _rss_anon_file():
    """(RssAnon, RssFile + RssShmem) of this process in MiB."""
    v = _status()
    return v.get("RssAnon", 0.0), v.get("RssFile", 0.0) + v.get("RssShmem", 0.0)


def reset_peak_rss():
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS, so that the peak reported is
    this computation's.  getrusage's ru_maxrss cannot be reset, and it even carries over the
    peak of the process that forked this one, so it is not used."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Samples anonymous and file-backed resident memory every few ms; the kernel keeps only the
    peak of their sum (VmHWM / ru_maxrss), and mapped file pages count in that sum."""

    def __init__(self, interval=0.005):
        self.interval, self.anon, self.file = interval, 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            a, f = _rss_anon_file()
            self.anon, self.file = max(self.anon, a), max(self.file, f)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def make_image(path, size, band=512):
    """A size x size float32 test image written in row bands with plain writes (no mapping, so
    the file's pages never count in this process's RSS)."""
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(size, size))
    offset = mm.offset
    del mm
    rng = np.random.default_rng(1234)
    with open(path, "r+b") as f:
        f.seek(offset)
        for r in range(0, size, band):
            rng.standard_normal((min(band, size - r), size), dtype=np.float32).tofile(f)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument(
        "--size", type=int, default=4096, help="image side (16384: a 1 GiB float32 image)"
    )
    p.add_argument("--chunk", type=int, default=1024, help="dask chunk side")
    p.add_argument("--workers", type=int, default=2, help="threads of dask's threaded scheduler")
    p.add_argument("--dir", default=None, help="where the .npy files go (default: a temp dir)")
    p.add_argument(
        "--writer",
        default="to_npy",
        choices=["to_npy", "da.store", "to_zarr"],
        help="how the result is written (each output block reads its own haloed region, so all "
        "three hold a few blocks per worker; to_zarr needs zarr)",
    )
    p.add_argument("--check", action="store_true", help="compare patches with scipy.signal")
    args = p.parse_args(argv)

    work = args.dir or tempfile.mkdtemp(prefix="fastconv-ooc-")
    os.makedirs(work, exist_ok=True)
    src, dst = os.path.join(work, "image.npy"), os.path.join(work, "filtered.npy")
    if not os.path.exists(src) or np.load(src, mmap_mode="r").shape != (args.size,) * 2:
        make_image(src, args.size)
    kernel = np.ones((15, 15), dtype=np.float32) / 225  # a 15x15 box blur

    reset = reset_peak_rss()
    base_anon, base_file = _rss_anon_file()
    t0 = time.perf_counter()
    with PeakMemory() as peak:
        # --- the README example -------------------------------------------------------------
        image = fastconv.dask.from_npy(src, chunks=args.chunk)  # lazy: reads blocks on demand
        smooth = fastconv.dask.correlate2d(image, kernel, mode="same", boundary="symm")
        if args.writer == "to_npy":
            fastconv.dask.to_npy(smooth, dst, scheduler="threads", num_workers=args.workers)
        elif args.writer == "da.store":  # the standard dask idiom, into a memory-mapped .npy
            out = np.lib.format.open_memmap(dst, "w+", smooth.dtype, smooth.shape)
            da.store(smooth, out, lock=False, scheduler="threads", num_workers=args.workers)
            del out
        else:
            with dask.config.set(scheduler="threads", num_workers=args.workers):
                smooth.to_zarr(dst[:-4] + ".zarr", overwrite=True)
        # -------------------------------------------------------------------------------------
    dt = time.perf_counter() - t0
    hwm = _status().get("VmHWM", float("nan"))
    gib = args.size * args.size * 4 / 2**30
    print(
        f"image {args.size}x{args.size} float32 ({gib:.2f} GiB) chunks {args.chunk}, "
        f"written by {args.writer}: {dt:.1f} s"
    )
    print(
        f"peak RSS {hwm:.0f} MiB (VmHWM{', reset before filtering' if reset else ''}); "
        f"peak anonymous {peak.anon:.0f} MiB (before: {base_anon:.0f}); "
        f"peak file-backed resident {peak.file:.0f} MiB (before: {base_file:.0f})"
    )
    if args.check:
        import scipy.signal

        img = np.load(src, mmap_mode="r")
        if args.writer == "to_zarr":
            import zarr

            out = zarr.open_array(dst[:-4] + ".zarr", mode="r")
        else:
            out = np.load(dst, mmap_mode="r")
        for r, c in [(0, 0), (args.chunk - 20, args.chunk - 20), (args.size - 40, args.size - 40)]:
            r0, c0 = max(r - 7, 0), max(c - 7, 0)
            patch = np.array(img[r0 : r + 47, c0 : c + 47])
            ref = scipy.signal.correlate2d(patch, kernel, "same", "symm")
            # compare only where the patch holds the whole window (or the image edge)
            rr = slice(r - r0 if r0 else 0, (r - r0) + 40)
            cc = slice(c - c0 if c0 else 0, (c - c0) + 40)
            got = np.asarray(out[r0 : r + 47, c0 : c + 47])[rr, cc]
            np.testing.assert_allclose(got, ref[rr, cc], rtol=0, atol=1e-4 * np.abs(ref).max())
        print("check against scipy.signal: ok")
    return dict(seconds=dt, peak_rss_mib=hwm, peak_anon_mib=peak.anon, peak_file_mib=peak.file)


if __name__ == "__main__":
    main()
