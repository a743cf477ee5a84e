#!/usr/bin/env python
"""The layer normal and period of :func:`layerscope.imaging.lattice.fft_lattice` against each random draw's truth,
from the first-order spot alone (``LAYER_HARMONICS`` None) and from the fringe's harmonics (4), issue 19, session 32.

The true normal is the TM columns' layer coordinate (``scene_y_nm``) regressed on their apparent positions (drift
and jitter included); the true period is the material's c/3. Rows: ``ang_None`` / ``ang_4`` (deg off the truth),
``per_None`` / ``per_4`` (relative period error)::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src .venv/bin/python scripts/layer_direction_screen.py --seeds 4000:4200 \\
        --out /tmp/dir_4000.csv
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd


def true_normal(truth) -> np.ndarray:
    """Unit normal of the draw's TM layers at their apparent positions."""
    tm = truth.columns[truth.columns.kind == "TM"]
    coef, *_ = np.linalg.lstsq(np.column_stack([tm.x_nm, tm.y_nm, np.ones(len(tm))]), tm.scene_y_nm, rcond=None)
    return coef[:2] / np.hypot(*coef[:2])


def screen(seed: int) -> dict:
    from layerscope.imaging import lattice
    from layerscope.imaging.materials import material_spacings
    from layerscope.simulate.draws import draw_scene

    img, px, truth = draw_scene(seed)
    p = truth.parameters
    n_true, sp = true_normal(truth), material_spacings(p["chemistry"], p["zone"])
    ps = lattice.power_spectrum(img, pixel_size_nm=px)
    row = dict(seed=seed, field_nm=img.shape[0] * px, dose=p["dose_e_per_A2"], probe=p["probe_fwhm_nm"],
               chem=p["chemistry"])
    for mode in (None, 4):
        lattice.LAYER_HARMONICS = mode
        try:
            lat = lattice.fft_lattice(img, pixel_size_nm=px, layer_spacing_nm=sp.tm_spacing_nm,
                                      inplane_spacing_nm=sp.inplane_spacing_nm, spectrum=ps)
        except Exception as err:  # a refusal is a row
            row[f"err_{mode}"] = type(err).__name__
            continue
        row[f"ang_{mode}"] = float(np.degrees(np.arccos(min(1.0, abs(float(lat.normal @ n_true))))))
        row[f"per_{mode}"] = lat.layer_period_nm * (2 if lat.rows_are_cation_rows else 1) / sp.tm_spacing_nm - 1
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", required=True, help="A:B")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    a, b = map(int, args.seeds.split(":"))
    rows = []
    for seed in range(a, b):
        rows.append(screen(seed))
        print(rows[-1], flush=True)
    pd.DataFrame(rows).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
