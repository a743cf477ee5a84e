#!/usr/bin/env python
"""Does the neural enhancer help column finding at low dose?  Accuracy and speed, side by side.

Held-out images come from the full simulator path (``layerscope.crystal.scenes.stack`` ->
``layerscope.simulate.simulate_haadf`` -> ``layerscope.simulate.degrade``) with seeds the training
never used (training draws from ``numpy.random.default_rng(0)``; these scenes use seeds >= 9000
and are not stacks the training pool can contain bit for bit). For each image and dose the
imaging engineer's column finder (``layerscope.imaging.columns``) runs

* ``classical``: :func:`find_columns` on the raw image (the anchor);
* ``denoised``: :func:`find_columns` on ``enhance(...).denoised``;
* ``seeds+raw``: columns seeded at the peaks of ``enhance(...).column_probability``
  (:func:`probability_peaks`), then refined by :func:`refine_columns` on the **raw** image;
* ``seeds+denoised``: the same seeds refined on the denoised image.

Truth: columns with ``tm_fraction >= 0.5`` more than 0.15 nm inside the field. A detection within
``match_nm`` of a truth column is a hit (one-to-one, nearest first); a detection near any
TM-bearing column (``tm_fraction > 0``) is not a false positive; others are. Reported: recall,
precision, 2-D RMS position error of the hits (pm), and the enhancer's CPU time.

Run::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/enhance_columns.py --repeats 3 --json /tmp/enhance.json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from layerscope.imaging.columns import find_columns, refine_columns
from layerscope.imaging.enhance import enhance, probability_peaks

#: Held-out scenes: (name, blocks, composition, zone, thickness_nm, top of the field in nm or None
#: for a field centred in the stack). The rock-salt scene keeps its surface layer in the field.
SCENES = (
    ("NMC811 O3 [100]", [("O3", 24, 1.0, 0.0)], "LiNi0.8Mn0.1Co0.1O2", "100", 8.0, None),
    ("LiCoO2 O3 [110]", [("O3", 24, 1.0, 0.0)], "LiCoO2", "110", 8.0, None),
    ("NMC811 rock-salt/O3 [100]", [("rock_salt", 6, 0.0, 0.0), ("O3", 18, 1.0, 0.05)], "LiNi0.8Mn0.1Co0.1O2",
     "100", 6.0, 0.05),
    ("Li-rich C2/m [100]", [("C2/m", 24, 1.0, 0.0)], "Li1.2Ni0.2Mn0.6O2", "100", 8.0, None),
)
METHODS = ("classical", "denoised", "seeds+raw", "seeds+denoised")


@dataclass
class HeldOut:
    name: str
    clean: object  # layerscope.containers.Image
    truth: pd.DataFrame
    min_separation_nm: float
    column_sigma_nm: float


def held_out_scene(index: int, *, pixel_size_nm: float = 0.01, field_nm: float = 3.0,
                   probe_fwhm_nm: float = 0.08, seed: int = 9000, displacement_pm: float = 0.0) -> HeldOut:
    """Simulate one held-out clean image with its truth table; ``displacement_pm`` > 0 moves every
    column off the lattice (:func:`layerscope.crystal.scenes.displace_columns`), so that a network
    that draws an ideal lattice instead of the data is caught."""
    from layerscope.crystal import lattice
    from layerscope.crystal.scenes import Block, displace_columns, stack
    from layerscope.simulate import simulate_haadf
    from layerscope.simulate.incoherent import FWHM_PER_SIGMA

    name, blocks, comp, zone, thickness, top_nm = SCENES[index]
    atoms = stack([Block(*b) for b in blocks], composition=comp, zone=zone, width_nm=field_nm + 1.0,
                  thickness_nm=thickness, seed=seed + index)
    height = atoms.info["height_nm"]
    y0 = (height - field_nm) / 2 if top_nm is None else top_nm
    atoms.translate((0.0, -10 * y0, 0.0))
    if displacement_pm > 0:
        atoms = displace_columns(atoms, rms_pm=displacement_pm, seed=seed + 500 + index)
    sim = simulate_haadf(atoms, pixel_size_nm=pixel_size_nm, probe_fwhm_nm=probe_fwhm_nm, field_nm=(field_nm, field_nm))
    # both zones of layerscope.crystal ([100] and [110] of the 120-degree hexagonal cell) show
    # close-packed rows with columns a*sqrt(3)/2 apart (layerscope.crystal.phases.oriented)
    d_t = lattice("O3", comp).a_A / 10.0 * np.sqrt(3) / 2
    return HeldOut(name, sim.image, sim.columns, 0.9 * d_t, probe_fwhm_nm / FWHM_PER_SIGMA)


def score(found_x, found_y, truth: pd.DataFrame, *, field_nm: tuple[float, float], match_nm: float,
          border_nm: float = 0.15) -> dict:
    """Recall, precision and RMS error (pm) of detections against the truth table."""
    tx, ty = truth["x_nm"].to_numpy(), truth["y_nm"].to_numpy()
    tm = truth["tm_fraction"].to_numpy()
    inner = (tx > border_nm) & (tx < field_nm[0] - border_nm) & (ty > border_nm) & (ty < field_nm[1] - border_nm)
    target = inner & (tm >= 0.5)
    fx, fy = np.asarray(found_x, float), np.asarray(found_y, float)
    f_inner = (fx > border_nm) & (fx < field_nm[0] - border_nm) & (fy > border_nm) & (fy < field_nm[1] - border_nm)
    fx, fy = fx[f_inner], fy[f_inner]
    if fx.size == 0:
        return {"recall": 0.0, "precision": float("nan"), "rms_pm": float("nan"), "n_truth": int(target.sum()),
                "n_found": 0}
    # one-to-one matching, nearest pairs first
    tree = cKDTree(np.column_stack([tx, ty]))
    pairs = tree.query_ball_point(np.column_stack([fx, fy]), match_nm)
    cand = [(np.hypot(fx[i] - tx[j], fy[i] - ty[j]), i, j) for i, js in enumerate(pairs) for j in js]
    cand.sort()
    used_f, used_t, dist = set(), set(), {}
    for d, i, j in cand:
        if i in used_f or j in used_t:
            continue
        used_f.add(i)
        used_t.add(j)
        dist[j] = (d, i)
    hits = [j for j in dist if target[j]]
    d_hits = np.array([dist[j][0] for j in hits])
    # a detection is false if it matched nothing TM-bearing
    false = sum(1 for i in range(fx.size) if i not in used_f) + sum(1 for j, (d, i) in dist.items() if tm[j] == 0)
    return {
        "recall": len(hits) / max(1, int(target.sum())),
        "precision": 1.0 - false / fx.size,
        "rms_pm": float(np.sqrt(np.mean(d_hits**2)) * 1e3) if d_hits.size else float("nan"),
        "n_truth": int(target.sum()),
        "n_found": int(fx.size),
    }


def run_methods(noisy: np.ndarray, scene: HeldOut, *, device: str = "cpu", threshold: float = 0.5,
                weights=None) -> tuple[dict, float]:
    """Column positions (x_nm, y_nm) from every method, and the enhancer's wall time (s)."""
    p = scene.clean.pixel_size_nm
    kw = dict(pixel_size_nm=p, min_separation_nm=scene.min_separation_nm, column_sigma_nm=scene.column_sigma_nm)
    out = {}
    tab = find_columns(noisy, **kw)
    out["classical"] = (tab.x_nm.to_numpy(), tab.y_nm.to_numpy())
    t0 = time.perf_counter()
    res = enhance(noisy, pixel_size_nm=p, device=device, weights=weights)
    t_enh = time.perf_counter() - t0
    tab = find_columns(res.denoised, **kw)
    out["denoised"] = (tab.x_nm.to_numpy(), tab.y_nm.to_numpy())
    rows, cols = probability_peaks(res.column_probability, pixel_size_nm=p, min_separation_nm=scene.min_separation_nm,
                                   threshold=threshold)
    radius = 0.45 * scene.min_separation_nm / p
    for name, img in (("seeds+raw", noisy), ("seeds+denoised", res.denoised)):
        fit = refine_columns(img, rows, cols, radius_px=radius, sigma_px=scene.column_sigma_nm / p)
        out[name] = ((fit["col"].to_numpy() + 0.5) * p, (fit["row"].to_numpy() + 0.5) * p)
    return out, t_enh


def accuracy(doses=(5e2, 1e3, 1e4), repeats: int = 3, *, scenes=range(len(SCENES)), field_nm: float = 3.0,
             match_nm: float = 0.06, device: str = "cpu", threshold: float = 0.5, weights=None,
             displacement_pm: float = 0.0) -> pd.DataFrame:
    """One row per (scene, dose, repeat, method)."""
    from layerscope.simulate import degrade

    rows = []
    for s in scenes:
        scene = held_out_scene(s, field_nm=field_nm, displacement_pm=displacement_pm)
        for dose in doses:
            for r in range(repeats):
                noisy = np.asarray(degrade(scene.clean, dose_e_per_A2=dose, seed=9100 + 97 * s + r).data, float)
                found, t_enh = run_methods(noisy, scene, device=device, threshold=threshold, weights=weights)
                for method, (x, y) in found.items():
                    sc = score(x, y, scene.truth, field_nm=(field_nm, field_nm), match_nm=match_nm)
                    rows.append({"scene": scene.name, "dose_e_per_A2": dose, "repeat": r, "method": method,
                                 **sc, "enhance_s": t_enh})
    return pd.DataFrame(rows)


def timing(sizes=(512, 1024, 2048), *, pixel_size_nm: float = 0.01, device: str = "cpu", repeats: int = 2,
           weights=None) -> pd.DataFrame:
    """Wall time of enhance() and of the classical find_columns on images of n x n pixels."""
    rng = np.random.default_rng(1)
    rows = []
    for n in sizes:
        img = rng.poisson(5.0, (n, n)).astype(float)
        enhance(img[:128, :128], pixel_size_nm=pixel_size_nm, device=device, weights=weights)  # load, warm up
        best = np.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            enhance(img, pixel_size_nm=pixel_size_nm, device=device, weights=weights)
            best = min(best, time.perf_counter() - t0)
        rows.append({"n_px": n, "pixel_size_nm": pixel_size_nm, "device": device, "enhance_s": best,
                     "megapixel_per_s": n * n / best / 1e6})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--doses", type=float, nargs="+", default=[5e2, 1e3, 1e4])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threshold", type=float, default=0.5, help="column-probability threshold of the seeds")
    ap.add_argument("--timing-sizes", type=int, nargs="*", default=[512, 1024, 2048])
    ap.add_argument("--json", default=None, help="write the tables here")
    ap.add_argument("--weights", default=None, help="another weights file (default: the shipped one)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--displacement-pm", type=float, default=0.0,
                    help="move every column off the lattice by this rms per axis (pm)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    acc = accuracy(tuple(args.doses), args.repeats, device=args.device, threshold=args.threshold,
                   weights=args.weights, displacement_pm=args.displacement_pm)
    summary = (acc.groupby(["dose_e_per_A2", "method"], sort=False)[["recall", "precision", "rms_pm"]].mean()
               .unstack("method").round(3))
    pd.set_option("display.width", 200)
    print("Mean over scenes and repeats:")
    print(summary.to_string())
    per_scene = acc.groupby(["scene", "dose_e_per_A2", "method"], sort=False)[["recall", "precision", "rms_pm"]].mean()
    print(per_scene.round(3).to_string())
    tim = (timing(tuple(args.timing_sizes), device=args.device, weights=args.weights) if args.timing_sizes
           else pd.DataFrame())
    if not tim.empty:
        print(tim.round(3).to_string(index=False))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"accuracy": acc.to_dict(orient="records"), "timing": tim.to_dict(orient="records")}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
