"""Benchmark: particle and crack analysis of a large volume in memory and out of core (bounded memory).

The volume: the reconstructed 64^3 cracked-particle phantom (``default_phantom``, 120 projections,
1e5 photons, FBP through ``layerscope.tomo.analyse``) tiled ``(size/64)^3`` times into a ``.npy``
file read as a memory map, so every tile holds 4 particles, 4 cracks and 3 pores and the truth of
the big volume is the 64^3 result times the number of tiles. Reports wall time, the peak resident
memory of the process (``ru_maxrss``, which counts pages of memory-mapped files that were read or
written) and the peak of its anonymous memory (``RssAnon`` sampled every 50 ms: what cannot be
paged out to the scratch files).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tomo_out_of_core.py --size 256 --mode memory
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tomo_out_of_core.py --size 512 --mode out-of-core
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def _rss_anon_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return 0


class _PeakAnon(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self.stop = 0, False

    def run(self) -> None:
        while not self.stop:
            self.peak = max(self.peak, _rss_anon_kib())
            time.sleep(0.05)


def _tile_volume(size: int, folder: Path):
    """The 64^3 reconstruction, its in-memory result, and the tiled volume as a read-only memory map."""
    from layerscope.tomo import TomoOptions, analyse, default_phantom, project_phantom

    proj = project_phantom(default_phantom(64).volume, n_angles=120, photons=1e5, pixel_size_nm=50.0, seed=1)
    small = analyse(proj, TomoOptions())
    n = size // 64
    path = folder / f"tiled-{size}.npy"
    big = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(size, size, size))
    for k in range(n):
        big[64 * k:64 * (k + 1)] = np.tile(np.asarray(small.volume, np.float32), (1, n, n))
    big.flush()
    del big
    return small, np.load(path, mmap_mode="r"), n ** 3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=256, help="edge of the volume (a multiple of 64)")
    ap.add_argument("--mode", choices=["memory", "out-of-core"], default="out-of-core")
    ap.add_argument("--scheduler", default="threads")
    ap.add_argument("--scratch", type=Path, default=None, help="folder for the input and scratch files")
    args = ap.parse_args()
    from layerscope.tomo import TomoOptions, Volume, analyse

    with tempfile.TemporaryDirectory(dir=args.scratch, prefix="tomo-bench-") as tmp:
        small, vol, tiles = _tile_volume(args.size, Path(tmp))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        anon_before = _rss_anon_kib()
        watch = _PeakAnon()
        watch.start()
        t = time.perf_counter()
        res = analyse(Volume(vol, 50.0, labels=False), TomoOptions(out_of_core=args.mode == "out-of-core"),
                      scheduler=args.scheduler, scratch_dir=Path(tmp))
        wall = time.perf_counter() - t
        watch.stop = True
        watch.join()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        s, s0 = res.summary, small.summary
        print(f"{args.size}^3 float32 ({vol.nbytes / 2**20:.0f} MiB), {args.mode}, scheduler {args.scheduler}")
        print(f"wall {wall:.1f} s; peak RSS {peak / 1024:.0f} MiB (before the analysis {before / 1024:.0f} MiB); "
              f"peak anonymous memory {watch.peak / 1024:.0f} MiB (before {anon_before / 1024:.0f} MiB)")
        for key in ("n_particles", "n_cracks", "n_pores"):
            print(f"{key}: {s[key]} (truth {tiles} x {s0[key]} = {tiles * s0[key]})")
        print(f"crack volume fraction {s['crack_volume_fraction']:.5f} (64^3: {s0['crack_volume_fraction']:.5f})")


if __name__ == "__main__":
    main()
