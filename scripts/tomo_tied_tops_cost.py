#!/usr/bin/env python
"""What the join of tied distance tops (``segment.TIED_TOPS``) costs on a large volume (issue 20, helper tomotie).

The volume's envelope, distance map and h-maxima seeds are built as ``particle_labels`` builds them (closing 3,
h = 2), then the join runs alone, with each tied value labelled over the whole volume
(``segment.TIED_TOPS_CROP = False``, session 30's code) and in boxes (True): seconds, peak traced memory
(``tracemalloc``: NumPy's arrays), the masks labelled and their voxels; the look-up tables must be equal. With
``--slabs`` the out-of-core path (``chunked._join_tied_tops`` on memory maps, the whole volume as one cluster) too,
both ways, and its seeds compared with the in-memory join's. Main's code before the crop is timed by running this
script with ``PYTHONPATH`` on main's ``src`` (``--save``), and the results compared (``--compare``).

Volumes: ``tiled``, the truth solid of ``default_phantom(64)`` (particles less cracks and pores) tiled to ``size^3``
as benchmarks/tomo_512.py tiles it (every particle has ``(size / 64)^3`` exact twins); ``percolating``,
benchmarks/tomo_percolating.py's mirrored tiles thresholded (``solid_mask``)::

    PYTHONPATH=src OMP_NUM_THREADS=1 python scripts/tomo_tied_tops_cost.py --volume tiled --size 256 --slabs
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

import layerscope.tomo.chunked as C
import layerscope.tomo.segment as S


def solid_of(kind: str, size: int) -> np.ndarray:
    """The solid mask of the ``tiled`` or ``percolating`` volume (bool, ``size^3``)."""
    if kind == "tiled":
        from layerscope.tomo import default_phantom

        ph = default_phantom(64, seed=0)
        one = (ph.particles > 0) & (ph.cracks == 0) & (ph.pores == 0)
        return np.tile(one, (size // 64,) * 3)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from tomo_percolating import percolating_volume

    return S.solid_mask(percolating_volume(size))[0]


def counted_masks() -> tuple[dict, object]:
    """Count the masks that ``segment.tie_mask`` builds (calls and voxels) from here on; the counts, the original."""
    stats, mask = {"masks": 0, "mask_voxels": 0}, S.tie_mask

    def tie_mask(f, v, h):
        stats["masks"] += 1
        stats["mask_voxels"] += int(f.size)
        return mask(f, v, h)

    S.tie_mask = tie_mask
    return stats, mask


def timed(func, *args) -> tuple[object, dict]:
    """``func(*args)``, its wall and CPU seconds, the peak traced memory (MiB) and the tie masks it labelled."""
    stats, mask = counted_masks()
    tracemalloc.start()
    t, c = time.perf_counter(), time.process_time()
    out = func(*args)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
    tracemalloc.stop()
    S.tie_mask = mask
    return out, {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "peak_traced_mib": round(peak, 1), **stats}


def slab_join(edt: np.ndarray, markers: np.ndarray, n: int, h: float, k: int) -> tuple[np.ndarray, dict]:
    """``chunked._join_tied_tops`` on memory maps of ``edt`` and ``markers`` (slabs of ``k``): the new seeds and cost."""
    with tempfile.TemporaryDirectory(prefix="tomotie-") as tmp:
        e = np.lib.format.open_memmap(Path(tmp) / "edt.npy", "w+", edt.dtype, edt.shape)
        m = np.lib.format.open_memmap(Path(tmp) / "markers.npy", "w+", markers.dtype, markers.shape)
        e[:], m[:] = edt, markers
        n_new, cost = timed(C._join_tied_tops, e, m, n, h, Path(tmp), k, 1)
        return np.array(m), {**cost, "seeds_after": n_new}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--volume", choices=("tiled", "percolating"), default="tiled")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--close", type=int, default=3)
    ap.add_argument("--h", type=float, default=2.0)
    ap.add_argument("--slabs", action="store_true", help="also the out-of-core slab path")
    ap.add_argument("--slab-slices", type=int, default=32)
    ap.add_argument("--save", type=Path, default=None, help="write the look-up table and the slab seeds here (.npz)")
    ap.add_argument("--compare", type=Path, default=None, help="an earlier --save (e.g. of main's code, run with "
                    "PYTHONPATH on its src): report whether the results are equal")
    args = ap.parse_args()
    t = time.perf_counter()
    solid = solid_of(args.volume, args.size)
    env = S.filled_envelope(S.closed_envelope(solid, args.close))
    edt = S.distance_transform_core(env, slice(None))
    markers = S.joined_tops(S.h_maxima_core(edt, args.h))
    n = int(markers.max())
    top = S.ndi.maximum(edt, markers, np.arange(1, n + 1))
    values, counts = np.unique(top, return_counts=True)
    out = {"volume": args.volume, "size": args.size, "seeds": n, "tied_values": int((counts > 1).sum()),
           "tied_seeds": int(counts[counts > 1].sum()), "setup_s": round(time.perf_counter() - t, 1)}
    luts = {}
    for crop in (False, True):
        S.TIED_TOPS_CROP = crop
        luts[crop], out[f"in_memory_crop_{crop}"] = timed(S.tied_tops_lut, edt, markers, args.h)
    out["in_memory_equal"] = bool(np.array_equal(luts[False], luts[True]))
    out["seeds_after"] = int(luts[True].max())
    if args.slabs:
        seeds = {}
        for crop in (False, True):
            S.TIED_TOPS_CROP = crop
            seeds[crop], out[f"slabs_crop_{crop}"] = slab_join(edt, markers, n, args.h, args.slab_slices)
        out["slabs_equal"] = bool(np.array_equal(seeds[False], seeds[True]))
        out["slabs_equal_in_memory"] = bool(np.array_equal(seeds[True], luts[True][markers]))
    mine = {"lut": luts[True], **({"slab_seeds": seeds[True]} if args.slabs else {})}
    if args.save:
        np.savez_compressed(args.save, **mine)
    if args.compare:
        other = np.load(args.compare)
        out["equal_to_compared"] = {key: bool(np.array_equal(other[key], a)) for key, a in mine.items() if key in other}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
