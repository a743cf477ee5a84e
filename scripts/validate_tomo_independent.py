#!/usr/bin/env python
"""Score ``layerscope tomo`` on phantoms made without layerscope: plain NumPy spheres, planar cracks, pores.

A guard against fitting the analysis to our own phantom builder (:mod:`layerscope.tomo.phantom`): this
generator shares no code with it and draws its own way. Each seed: a 160^3 volume (50 nm voxels) with four
non-overlapping spheres of radius 22-38 voxels (they may touch), 0-2 planar cracks per sphere (width 2, 3 or 4
voxels, the voxels within half a width of a plane through the sphere, offset up to 0.3 r; half of them discs
of radius 0.5-0.8 r, normals at least 35 deg apart), 0-2 round pores (radius 2.5-5 voxels, at least 4 voxels
inside the sphere, not on a crack), solid 1, cracks, pores and outside 0, a Gaussian blur of 0.6 voxel and
Gaussian noise of 0.08. Truth particles are matched to result particles by their centroids.

    OMP_NUM_THREADS=1 python scripts/validate_tomo_independent.py --seeds 1:25 --out X.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate_random_draws import parse_seeds  # noqa: E402  (one --seeds grammar for every validator)

N, VOXEL_NM = 160, 50.0


def _spheres(rng: np.random.Generator) -> list[tuple[np.ndarray, float]]:
    out: list[tuple[np.ndarray, float]] = []
    while len(out) < 4:
        r = rng.uniform(22, 38)
        c = rng.uniform(0.9 * r, N - 0.9 * r, 3)
        if all(np.linalg.norm(c - c2) >= 0.95 * (r + r2) for c2, r2 in out):
            out.append((c, r))
    return out


def _normal(rng: np.random.Generator, taken: list[np.ndarray]) -> np.ndarray:
    for _ in range(50):
        n = rng.normal(size=3)
        n /= np.linalg.norm(n)
        if all(abs(n @ m) < np.cos(np.radians(35)) for m in taken):
            break
    return n


def draw(seed: int) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Grey volume, truth particle labels and truth cracks ``{particle, width, voxels}`` of one seed."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.mgrid[:N, :N, :N]).astype(np.float32)
    lab, dark, cracks = np.zeros((N,) * 3, np.int16), np.zeros((N,) * 3, bool), []
    for i, (c, r) in enumerate(_spheres(rng), 1):
        rel = grid - c[:, None, None, None].astype(np.float32)
        sphere = ((rel ** 2).sum(0) <= r * r) & (lab == 0)
        lab[sphere] = i
        normals: list[np.ndarray] = []
        for _ in range(rng.integers(0, 3)):
            n = _normal(rng, normals)
            normals.append(n)
            width, off = rng.choice([2.0, 3.0, 4.0]), rng.uniform(-0.3, 0.3) * r
            dist = np.tensordot(n, rel, axes=1) - off
            sheet = (np.abs(dist) <= width / 2) & sphere
            if rng.random() < 0.5:  # a disc: the in-plane distance from the sphere's axis
                inplane = rel - n[:, None, None, None] * (dist + off)
                sheet &= np.sqrt((inplane ** 2).sum(0)) <= rng.uniform(0.5, 0.8) * r
            dark |= sheet
            cracks.append({"particle": i, "width": float(width), "voxels": int(sheet.sum())})
        for _ in range(rng.integers(0, 3)):
            pr = rng.uniform(2.5, 5)
            u = rng.normal(size=3)
            pc = c + u / np.linalg.norm(u) * rng.uniform(0, r - pr - 4)
            dark |= (((grid - pc[:, None, None, None]) ** 2).sum(0) <= pr * pr) & sphere & ~dark
    vol = ((lab > 0) & ~dark).astype(np.float32)
    vol = ndi.gaussian_filter(vol, 0.6) + rng.normal(0, 0.08, vol.shape).astype(np.float32)
    return vol, lab, cracks


def score(seed: int) -> list[dict]:
    """One row per truth particle: crack counts, crack volume fraction and mean width, truth and found."""
    from layerscope.tomo import TomoOptions, analyse

    vol, lab, cracks = draw(seed)
    res = analyse(vol, TomoOptions(), voxel_size_nm=VOXEL_NM)
    found = res.particles
    centres = found[[f"centroid_{a}_nm" for a in "zyx"]].to_numpy(float) / VOXEL_NM - 0.5
    rows = []
    for i in range(1, int(lab.max()) + 1):
        mine = [c for c in cracks if c["particle"] == i]
        at = np.argwhere(lab == i).mean(axis=0)
        j = int(np.argmin(((centres - at) ** 2).sum(axis=1)))
        got = found.iloc[j]
        cvf = sum(c["voxels"] for c in mine) / float((lab == i).sum())
        rows.append({"seed": seed, "particle": i, "n_particles_truth": int(lab.max()),
                     "n_particles_found": len(found), "cracks_truth": len(mine), "cracks_found": int(got["crack_count"]),
                     "cvf_truth": cvf, "cvf_found": float(got["crack_volume_fraction"]),
                     "width_truth_voxels": float(np.mean([c["width"] for c in mine])) if mine else np.nan,
                     "width_found_voxels": float(got["crack_width_mean_nm"]) / VOXEL_NM})
    return rows


def summary(df: pd.DataFrame) -> str:
    per_seed = df.groupby("seed")
    exact = per_seed.apply(lambda g: bool((g.cracks_truth == g.cracks_found).all()), include_groups=False)
    parts = per_seed.apply(lambda g: g.n_particles_found.iloc[0] == g.n_particles_truth.iloc[0], include_groups=False)
    cracked = df[df.cvf_truth > 0]
    rel = cracked.cvf_found / cracked.cvf_truth - 1
    werr = cracked.width_found_voxels - cracked.width_truth_voxels
    return "\n".join([
        f"{len(exact)} phantoms, {len(df)} particles ({len(cracked)} cracked)",
        f"particle count exact: {parts.mean():.2f} of phantoms",
        f"crack counts exact per particle: {exact.mean():.2f} of phantoms, "
        f"{(df.cracks_truth == df.cracks_found).mean():.2f} of particles",
        f"crack volume fraction within 10 %: {(rel.abs() <= 0.1).mean():.2f} of cracked particles "
        f"(median {rel.median():+.3f})",
        f"mean width within 1 voxel: {(werr.abs() <= 1).mean():.2f} of cracked particles (median {werr.median():+.2f})"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", required=True, help="half-open range A:B")
    parser.add_argument("--out", type=Path, required=True, help="CSV file, one row per truth particle")
    args = parser.parse_args(argv)
    rows = []
    for seed in parse_seeds(args.seeds):
        rows += score(seed)
        print(f"seed {seed}: " + ", ".join(f"{r['cracks_found']}/{r['cracks_truth']}" for r in rows[-4:]), flush=True)
    df = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False, float_format="%.6g")
    print(summary(df))
    return 0


if __name__ == "__main__":
    sys.exit(main())
