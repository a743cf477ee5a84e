"""Benchmark: out-of-core analysis of a volume whose particles form one cluster that spans it (issue 20).

The volume: particles 1-3 of the 64^3 phantom's truth (``default_phantom(64).volume``, z 24:42,
y 14:51, x 13:52, cut flat by 5 voxels) mirrored along every axis and tiled to ``size^3``, so the
cut faces meet their mirror images and the particles touch across every tile face: one 26-connected
cluster spans the volume (checked below), as in a dense electrode. Thresholded directly as a grey
volume (no projection). Runs ``analyse(..., out_of_core=True)`` with the cluster held whole
(``--limit 0``: MAX_CLUSTER_VOXELS above the volume, the code path before issue 20) or in pieces
(the default limit), and reports wall time and the peak anonymous memory (``RssAnon`` every 50 ms), and what the
join of tied distance tops cost (``--tied-tops off``: ``segment.TIED_TOPS`` off, the counts before that join).

Its counts have no truth of their own: they are compared run to run (pieces = whole cluster, before = after a
change). A cut particle and its mirror image are glued over the whole cut section; with ``segment.TIED_TOPS`` (on)
such twins, whose waist lies less than h below their tied tops, are one particle, as two bodies with so shallow a
waist always were where the tops differ by a little, so chains of twins through the tiles are single particles
(96^3, ``particle_labels`` of its solid mask: 51 -> 19). That is the splitter's own rule, not an artefact: 51 was the tie splitting each glued body. Tiling
by translation glues the same way (the block is 18 slices tall, shorter than its particles: 96^3, 36 -> 21), and a
gap between the tiles would end the one spanning cluster that this benchmark is for (docs/benchmarks.md "tomotie").

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tomo_percolating.py --size 256 --limit 0
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tomo_percolating.py --size 256
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def percolating_volume(size: int) -> np.ndarray:
    """The mirrored, tiled phantom truth (float32, ``size^3``): particles touch across every tile face."""
    from layerscope.tomo import default_phantom

    v = default_phantom(64).volume[24:42, 14:51, 13:52]
    for ax in range(3):
        v = np.concatenate([v, np.flip(v, ax)], axis=ax)
    reps = [int(np.ceil(size / s)) for s in v.shape]
    return np.ascontiguousarray(np.tile(v, reps)[:size, :size, :size], dtype=np.float32)


def _time_ties(chunked, segment) -> dict:
    """Wrap the join of tied distance tops (``segment.tied_tops_lut`` in memory, ``chunked._join_tied_tops`` in slabs)
    and ``segment.tie_mask``: calls, wall and thread CPU seconds, masks labelled and their voxels (filled as it runs)."""
    import threading

    ties, lock = {"calls": 0, "wall_s": 0.0, "thread_cpu_s": 0.0, "masks": 0, "mask_voxels": 0}, threading.Lock()

    def timed(fn):
        def run(*a, **k):
            t, c = time.perf_counter(), time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                with lock:
                    ties["calls"] += 1
                    ties["wall_s"] = round(ties["wall_s"] + time.perf_counter() - t, 3)
                    ties["thread_cpu_s"] = round(ties["thread_cpu_s"] + time.thread_time() - c, 3)
        return run

    def counted(f, *a, **k):
        with lock:
            ties["masks"] += 1
            ties["mask_voxels"] += int(f.size)
        return mask(f, *a, **k)

    mask = segment.tie_mask
    segment.tied_tops_lut, chunked._join_tied_tops = timed(segment.tied_tops_lut), timed(chunked._join_tied_tops)
    segment.tie_mask = counted
    return ties


def main() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from tomo_out_of_core import _PeakAnon, _rss_anon_kib

    import layerscope.tomo.chunked as chunked
    import layerscope.tomo.segment as segment
    from layerscope.tomo import TomoOptions, Volume, analyse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--limit", type=int, default=None, help="MAX_CLUSTER_VOXELS (0: hold every cluster whole)")
    ap.add_argument("--slab-slices", type=int, default=32)
    ap.add_argument("--scheduler", default="threads")
    ap.add_argument("--tied-tops", choices=("on", "off"), default="on", help="segment.TIED_TOPS (on: the default)")
    args = ap.parse_args()
    segment.TIED_TOPS = args.tied_tops == "on"
    ties = _time_ties(chunked, segment)
    if args.limit is not None:
        chunked.MAX_CLUSTER_VOXELS = args.limit if args.limit > 0 else args.size ** 3 + 1
    with tempfile.TemporaryDirectory(prefix="tomo-perc-") as tmp:
        path = Path(tmp) / "v.npy"
        np.save(path, percolating_volume(args.size))
        vol = np.load(path, mmap_mode="r")
        spy, boxes = chunked._clusters, []

        def clusters(*a, **k):
            comp, n, b = spy(*a, **k)
            boxes.extend(int(np.prod(x[3:] - x[:3])) for x in b[1:])
            return comp, n, b

        chunked._clusters = clusters
        run, largest = chunked._run, {}

        stage_peak, stage_cpu = {}, {}

        def spied(func, items, scheduler, **kw):  # the largest array handed to a task of each kind (MiB)
            name = func.__name__
            for it in items:
                for a in it:
                    if isinstance(a, np.ndarray):
                        largest[name] = max(largest.get(name, 0), round(a.nbytes / 2**20, 1))
            watch.peak, cpu = 0, time.process_time()  # the peak anonymous memory and CPU while tasks of this kind run
            try:
                return run(func, items, scheduler, **kw)
            finally:
                stage_peak[name] = max(stage_peak.get(name, 0), round(watch.peak / 1024))
                stage_cpu[name] = round(stage_cpu.get(name, 0) + time.process_time() - cpu, 1)

        chunked._run = spied
        anon_before, watch = _rss_anon_kib(), _PeakAnon()
        watch.start()
        t = time.perf_counter()
        res = analyse(Volume(vol, 50.0, labels=False), TomoOptions(out_of_core=True, slab_slices=args.slab_slices),
                      scheduler=args.scheduler, scratch_dir=Path(tmp))
        wall = time.perf_counter() - t
        watch.stop = True
        watch.join()
        s = res.summary
        print(json.dumps({"size": args.size, "limit": chunked.MAX_CLUSTER_VOXELS, "wall_s": round(wall, 1),
                          "peak_anon_mib": max([round(watch.peak / 1024)] + list(stage_peak.values())), "anon_before_mib": round(anon_before / 1024),
                          "largest_cluster_box_fraction": max(boxes) / args.size ** 3,
                          "n_particles": s["n_particles"], "n_cracks": s["n_cracks"], "n_pores": s["n_pores"],
                          "largest_task_array_mib": largest, "stage_peak_anon_mib": stage_peak, "stage_cpu_s": stage_cpu,
                          "cpu_s": round(time.process_time(), 1), "labels_sum": int(np.asarray(res.particle_labels, np.int64).sum()),
                          "flags": [f["code"] for f in res.flags], "tied_tops": args.tied_tops, "ties": ties}))


if __name__ == "__main__":
    main()
