#!/usr/bin/env python
"""Li-layer fill next to voids, cracks and thinning surfaces, and the per-column mixing call.

Scenes (fast incoherent model, LiCoO2 [100], 5 nm thick, 0.012 nm pixels, 0.08 nm probe, Poisson
noise): O3 (6) | X (6-8) | O3 (6) with X = rock salt (6 layers, no Li: NiO-like), spinel (8) or O3
with 30 % Li/TM exchange (8), 5 nm wide. The lamella is then thinned (atoms removed along the
beam) by one of three profiles, so that the thickness falls off to zero over 1-1.5 nm:

- ``void``: a hole through the lamella, 0.4 nm radius, its wall sloping to full thickness 1 nm
  further out (material removed symmetrically about the mid-plane);
- ``crack``: a wedge crack from the top edge down to 60 % of the height, 0.6 nm open at the top,
  closing at its tip, each face sloping to full thickness over 1 nm;
- ``surface``: the lamella's edge: vacuum left of x = 0.8 nm, thickness rising to 5 nm over 1.5 nm.

Score: every truth Li-layer column (kind Li: octahedral and spinel tetrahedral) more than 0.3 nm
inside the field and with at least 0.5 nm of material left (two atoms) is matched to the nearest
reported Li-layer site within 0.07 nm; its fill class (rock salt, spinel, layered) must be the
truth's (a column with no site counts as wrong). "rim": within 1 nm of where the thickness reaches
zero; "interior": the rest. One line per image. Run::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/imaging_rims.py --seeds 1,2,3 --json /tmp/rims.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

PX = 0.012
T0_NM = 5.0


def profile(kind: str, x: np.ndarray, y: np.ndarray, w: float, h: float) -> np.ndarray:
    """Thickness (nm) of the thinned lamella at (x, y) nm; ``w, h`` the field."""
    if kind == "void":
        return np.clip(T0_NM * (np.hypot(x - w / 2, y - h / 2) - 0.4) / 1.0, 0, T0_NM)
    if kind == "crack":
        half = 0.3 * np.clip(1 - y / (0.6 * h), 0, 1)
        return np.where(y < 0.6 * h, np.clip(T0_NM * (np.abs(x - w / 2) - half) / 1.0, 0, T0_NM), T0_NM)
    if kind == "surface":
        return np.clip(T0_NM * (x - 0.8) / 1.5, 0, T0_NM)
    return np.full_like(np.asarray(x, dtype=float), T0_NM)


def rim_distance(kind: str, x: np.ndarray, y: np.ndarray, w: float, h: float) -> np.ndarray:
    """Distance (nm) from the edge of the zero-thickness region."""
    if kind == "void":
        return np.hypot(x - w / 2, y - h / 2) - 0.4
    if kind == "crack":
        half = 0.3 * np.clip(1 - y / (0.6 * h), 0, 1)
        return np.where(y < 0.6 * h, np.abs(x - w / 2) - half, np.hypot(x - w / 2, y - 0.6 * h))
    if kind == "surface":
        return x - 0.8
    return np.full_like(np.asarray(x, dtype=float), np.inf)


def thinned_scene(block: str, kind: str, *, width_nm: float = 5.0):
    """The O3 | block | O3 scene (LiCoO2 [100]) thinned by ``kind`` (see the module docstring)."""
    from layerscope.crystal import labels
    from layerscope.crystal.scenes import Block, stack

    mid = {"rock_salt": Block("rock_salt", 6, li_fraction=0.0), "spinel": Block("spinel", 8),
           "mixed": Block("O3", 8, mixing=0.3)}[block]
    at = stack([Block("O3", 6), mid, Block("O3", 6)], composition="LiCoO2", zone="100", width_nm=width_nm,
               thickness_nm=T0_NM, seed=1)
    if kind == "none":
        return at
    full = labels.with_vacancies(at)
    p = full.positions / 10.0
    t = profile(kind, p[:, 0], p[:, 1], at.cell[0, 0] / 10.0, at.cell[1, 1] / 10.0)
    z0 = p[:, 2].min()
    if kind == "void":
        zc = 0.5 * (p[:, 2].max() + z0)
        keep = np.abs(p[:, 2] - zc) > 0.5 * (T0_NM - t) + 1e-6
    else:
        keep = (p[:, 2] - z0) < t - 1e-6
    out = labels.split_vacancies(full[keep])
    out.info = dict(at.info)
    return out


def _fill_class(phase: np.ndarray) -> np.ndarray:
    phase = np.asarray(phase, dtype=object)
    return np.where(np.isin(phase, ["rock_salt", "spinel", "missing"]), phase, "layered")


def score_fill(columns, truth, kind: str, extent_nm: tuple[float, float], *, margin_nm: float = 0.3,
               min_thickness_nm: float = 0.5) -> dict:
    """Fill-class accuracy of the Li-layer columns, rim and interior, per truth class: {key: (acc, n)}."""
    from layerscope.imaging.scoring import _one_to_one

    w, h = extent_nm
    cat = truth[truth["kind"] == "Li"]
    x, y = cat["x_nm"].to_numpy(), cat["y_nm"].to_numpy()
    keep = (x > margin_nm) & (x < w - margin_nm) & (y > margin_nm) & (y < h - margin_nm)
    keep &= profile(kind, x, y, w, h) >= min_thickness_nm
    cat = cat[keep]
    li = columns[columns["kind"] == "Li"]
    ia, ib, _ = _one_to_one(cat[["x_nm", "y_nm"]].to_numpy(), li[["x_nm", "y_nm"]].to_numpy(), 0.07)
    rep = np.full(len(cat), "missing", dtype=object)
    rep[ia] = li["phase"].to_numpy()[ib]
    want = _fill_class(cat["phase"].to_numpy())
    ok = _fill_class(rep) == want
    rim = rim_distance(kind, cat["x_nm"].to_numpy(), cat["y_nm"].to_numpy(), w, h) < 1.0
    out = {}
    for name, sel in (("rim", rim), ("interior", ~rim)):
        for cls in ("rock_salt", "spinel", "layered"):
            s = sel & (want == cls)
            if s.sum():
                out[f"{name}_{cls}"] = (float(ok[s].mean()), int(s.sum()))
    out["missing"] = int(np.sum(rep == "missing"))
    return out


def main() -> None:
    from layerscope.imaging.pipeline import map_phases
    from layerscope.imaging.scoring import score_columns
    from layerscope.simulate import degrade, simulate_haadf

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", default="rock_salt,spinel,mixed")
    parser.add_argument("--kinds", default="void,crack,surface")
    parser.add_argument("--doses", default="1e3,1e4")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    rows = []
    for block in args.blocks.split(","):
        for kind in args.kinds.split(","):
            sim = simulate_haadf(thinned_scene(block, kind), pixel_size_nm=PX, probe_fwhm_nm=0.08)
            h, w = sim.image.data.shape
            extent = (w * PX, h * PX)
            for dose in (float(d) for d in args.doses.split(",")):
                for seed in (int(s) for s in args.seeds.split(",")):
                    t = time.perf_counter()
                    img = np.asarray(degrade(sim.image, dose_e_per_A2=dose, seed=seed).data, float)
                    row = {"block": block, "kind": kind, "dose": dose, "seed": seed}
                    try:
                        pm = map_phases(img, pixel_size_nm=PX, zone="100", composition="LiCoO2")
                    except Exception as err:  # noqa: BLE001 - a refusal is a result
                        row["error"] = str(err)[:120]
                    else:
                        sc = score_columns(pm.columns, sim.columns, extent_nm=extent, margin_nm=0.15)
                        row.update(recall=sc.recall, precision=sc.precision,
                                   **score_fill(pm.columns, sim.columns, kind, extent))
                    row["seconds"] = round(time.perf_counter() - t, 1)
                    rows.append(row)
                    print(row, flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
