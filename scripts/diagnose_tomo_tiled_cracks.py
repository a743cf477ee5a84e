#!/usr/bin/env python
"""Crack by crack: what the envelope's wider closing changes on the tiled scale-check phantom (issue 20, tomocvf5).

Reconstructs the projections written by ``benchmarks/tomo_512.py --write-only`` (or its ``--keep``) as the CLI does
(centre searched, rings removed; ``--extend-sinogram`` optional), analyses the volume in memory with
``segment.WIDER_CLOSE_VOXELS`` 0 and 1 and prints, per particle of the 64^3 tile (truth: ``default_phantom(64)``
tiled), the particle and crack volumes read against the truth, then every crack whose volume moves by more than
20 voxels with its place and its distance from the rotation axis (the field of view's radius is half the
detector). Per-crack rows go to ``--out`` (CSV)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tomo_512.py --size 256 --angles 400 --write-only --scratch /tmp
    OMP_NUM_THREADS=1 .venv/bin/python scripts/diagnose_tomo_tiled_cracks.py /tmp/tomo512-.../proj.h5 --out x.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from layerscope.tomo import ReconOptions, TomoOptions, analyse, default_phantom, read_tomo, segment

TILE = 64


def _truth_particle(plab: np.ndarray, lab: np.ndarray) -> pd.Series:
    """The tile particle (1-4) holding most of each measured particle's voxels (measured particle -> tile id)."""
    m = (plab > 0) & (lab > 0)
    key = plab[m].astype(np.int64) * 8 + lab[m]
    u, n = np.unique(key, return_counts=True)
    best = pd.DataFrame({"particle": u // 8, "tile_particle": u % 8, "n": n}).sort_values("n").groupby("particle").tail(1)
    return best.set_index("particle")["tile_particle"]


def _read(vol: np.ndarray, lab: np.ndarray, wider: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    segment.WIDER_CLOSE_VOXELS = wider
    res = analyse(vol, TomoOptions(), voxel_size_nm=50.0)
    tp = _truth_particle(res.particle_labels, lab)
    parts = res.particles.join(tp, on="particle")
    cracks = res.cracks.join(tp, on="particle")
    return parts, cracks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("projections", type=Path, help="DXchange file, or a reconstructed volume saved as .npy")
    ap.add_argument("--extend-sinogram", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.projections.suffix == ".npy":
        vol = np.load(args.projections)
    else:
        vol = np.asarray(analyse(read_tomo(args.projections), TomoOptions(
            reconstruct_only=True, recon=ReconOptions(extend_sinogram=args.extend_sinogram))).volume, np.float32)
    ph = default_phantom(TILE, seed=0)
    reps = vol.shape[0] // TILE
    lab = np.tile(ph.particles, (reps,) * 3)
    truth = ph.truth.set_index("particle").join(ph.crack_truth.groupby("particle")["volume_voxels"].sum().rename("crack_truth"))
    read = {w: _read(vol, lab, w) for w in (0, 1)}
    for w, (parts, cracks) in read.items():
        g = parts.groupby("tile_particle").agg(n=("particle", "size"), volume=("volume_voxels", "mean"))
        g = g.join(cracks.groupby("tile_particle").agg(cracks=("crack", "size"), crack_volume=("volume_voxels", "sum"),
                                                       mouth=("mouth_voxels", "sum")))
        g["crack_volume"] /= g["n"]
        g["mouth"] /= g["n"]
        g = g.join(truth[["volume_voxels", "crack_truth"]].rename(columns={"volume_voxels": "volume_truth"}))
        cvf = cracks["volume_voxels"].sum() / parts["volume_voxels"].sum()
        print(f"WIDER_CLOSE_VOXELS {w}: {len(parts)} particles, {len(cracks)} cracks, crack volume fraction {cvf:.5f} "
              f"(truth {ph.crack_truth['volume_voxels'].sum() / ph.truth['volume_voxels'].sum():.5f}); per tile particle "
              "(means per particle):")
        print(g.to_string(float_format=lambda x: f"{x:.1f}"))
    (_, c0), (_, c1) = read[0], read[1]
    xyz = [f"centroid_{a}_nm" for a in "zyx"]
    dist, j = cKDTree(c1[xyz].to_numpy() / 50.0).query(c0[xyz].to_numpy() / 50.0)
    rows = c0[["particle", "tile_particle", "volume_voxels", "mouth_voxels", "segmented_voxels", "width_mean_nm"]
              + xyz].copy()
    for col in ("volume_voxels", "mouth_voxels", "segmented_voxels", "width_mean_nm"):
        rows[col + "_wider"] = c1[col].to_numpy()[j]
    rows["match_voxels"] = dist
    centre = (vol.shape[1] - 1) / 2
    rows["axis_distance_voxels"] = np.hypot(rows["centroid_y_nm"] / 50 - centre, rows["centroid_x_nm"] / 50 - centre)
    rows["crack_truth"] = rows["tile_particle"].map(truth["crack_truth"])
    moved = rows[(rows["volume_voxels_wider"] - rows["volume_voxels"]).abs() > 20]
    print(f"cracks whose volume moves by > 20 voxels ({len(moved)}; total change "
          f"{(rows['volume_voxels_wider'] - rows['volume_voxels']).sum():.0f} voxels; field of view radius {vol.shape[1] / 2:.0f}):")
    print(moved.to_string(float_format=lambda x: f"{x:.1f}"))
    if args.out:
        rows.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
