#!/usr/bin/env python
"""Merged and split particles of random tomography draws and the faces between the solid's own parts
(issue 20, helper tomoparts3; docs/validation.md "tomoparts3").

For each draw: the solid mask as the in-memory analysis makes it (cached as ``CACHE/<seed>.npz`` with the truth
particle ids, so later runs are segmentation only), the particle labels of :func:`~layerscope.tomo.segment.particle_labels`
against the truth (every truth particle merged into another's label or split over several), and for every label
the parts of its solid (watershed of the solid's distance map from its h-maxima above the closing radius, the dark
voxels to the nearest part): each face between two parts with the truth under both sides, their distance tops,
the neck ratio (:func:`~layerscope.tomo.segment.face_radius` over the smaller part's equivalent-sphere radius) and
the share of its neighbour pairs with both voxels solid::

    PYTHONPATH=src python scripts/diagnose_tomo_contacts.py --cache /tmp/cache 4 9 46 47
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from layerscope.tomo import segment as sg
from layerscope.tomo.analysis import TomoOptions
from layerscope.tomo.phantom import draw_volume, random_phantom
from layerscope.tomo.readers import Volume
from layerscope.tomo.recon import reconstruct

CLOSE = 3  # the analysis' closing radius for the draws (6-voxel crack width, 50 nm voxels)


def cached(seed: int, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """Solid mask and truth particle ids of draw ``seed`` (built once, then read from ``cache``)."""
    path = cache / f"{seed}.npz"
    if not path.exists():
        opts, ph = TomoOptions(), random_phantom(seed)
        data = draw_volume(ph)
        vol = data.data if isinstance(data, Volume) else reconstruct(data, opts.recon).volume
        solid, _ = sg.solid_mask(vol, smooth_voxels=opts.smooth_voxels)
        np.savez_compressed(path, solid=solid, truth=ph.particles.astype(np.int16))
    z = np.load(path)
    return z["solid"], z["truth"]


def majority(a: np.ndarray, b: np.ndarray, i: int) -> int:
    """The non-zero id of ``b`` that covers most of ``a == i`` (0 if none)."""
    hit = b[a == i]
    c = np.bincount(hit[hit > 0])
    return int(c.argmax()) if c.size and c.max() > 0 else 0


def errors(lab: np.ndarray, truth: np.ndarray, solid: np.ndarray) -> list[str]:
    """One line per truth particle merged into another's label or split over several labels (with the neck ratio
    and dark share of each face between its labels, as :func:`~layerscope.tomo.segment.neck_roots` tests them)."""
    maj = {i: majority(lab, truth, i) for i in range(1, int(lab.max()) + 1)}
    sizes, out = np.bincount(truth.ravel()), []
    lab_faces, lab_sizes = sg.label_faces(lab, (lab > 0) & ~solid), np.bincount(lab.ravel())
    for t in range(1, int(truth.max()) + 1):
        mine = [i for i, q in maj.items() if q == t]
        if len(mine) > 1:
            fs = [f"{k}: ratio {sg.face_radius(f) / np.cbrt(3 * min(lab_sizes[list(k)]) / (4 * np.pi)):.2f} "
                  f"dark {f[10] / f[0]:.2f}" for k, f in lab_faces.items() if k[0] in mine and k[1] in mine]
            out.append(f"SPLIT truth {t} ({sizes[t]} voxels) over labels {mine}; faces {'; '.join(fs) or 'none'}")
        elif not mine and majority(truth, lab, t):
            into = majority(truth, lab, t)
            out.append(f"MERGE truth {t} ({sizes[t]} voxels) into label {into} (truth {maj[into]}, {sizes[maj[into]]} voxels)")
    return out


def solid_parts(mask: np.ndarray, solid: np.ndarray, h: float = 2.0) -> tuple[np.ndarray, np.ndarray] | None:
    """Parts of one label's solid and the solid's distance map on the label's box (None: one part)."""
    from skimage.segmentation import watershed

    inside = solid & mask
    d = sg.distance_transform_core(inside, slice(None))
    seeds = sg.joined_tops(sg.h_maxima_core(d, h) & (d > CLOSE))
    if seeds.max() < 2:
        return None
    core = watershed(-d, seeds, mask=inside)
    near = ndi.distance_transform_edt(core == 0, return_distances=False, return_indices=True)
    return np.where(mask, core[tuple(near)], 0), d


def faces(seed: int, lab: np.ndarray, solid: np.ndarray, truth: np.ndarray) -> list[str]:
    """One line per face between two solid parts of a label."""
    out = []
    for i, box in enumerate(ndi.find_objects(lab), 1):
        box = tuple(slice(max(0, b.start - 1), b.stop + 1) for b in box)
        mask = lab[box] == i
        got = solid_parts(mask, solid[box])
        if got is None:
            continue
        p, d = got
        sizes, tr = np.bincount(p.ravel()), truth[box]
        for (a, b), f in sg.label_faces(p, mask & ~solid[box]).items():
            ta, tb = majority(p, tr, a), majority(p, tr, b)
            r = sg.face_radius(f) / np.cbrt(3 * min(sizes[a], sizes[b]) / (4 * np.pi))
            out.append(f"seed {seed} label {i} parts {a},{b} {'CONTACT' if ta != tb else 'same'} truth {ta},{tb} "
                       f"voxels {sizes[a]},{sizes[b]} tops {d[p == a].max():.1f}/{d[p == b].max():.1f} "
                       f"ratio {r:.2f} solid {1 - f[10] / f[0]:.2f} pairs {int(f[0])}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seeds", type=int, nargs="+")
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--faces", action="store_true", help="also the faces between the solid parts of every label")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    for s in args.seeds:
        solid, truth = cached(s, args.cache)
        lab = sg.particle_labels(solid, close_voxels=CLOSE, split=True, h_voxels=2.0, min_voxels=200)
        for line in errors(lab, truth, solid) + (faces(s, lab, solid, truth) if args.faces else []):
            print(f"seed {s} {line}" if not line.startswith("seed") else line, flush=True)


if __name__ == "__main__":
    main()
