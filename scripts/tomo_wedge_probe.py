#!/usr/bin/env python
"""Which truth cracks a limited tilt range finds, against their normals' angle to the missing wedge (tomowedge2).

Runs the validator's projection draws (``validate_tomo_draws._prepare``: the draw's own angles over
-range/2..+range/2, its library defaults, ``allow_limited_angle``) and writes three CSVs beside ``--out``:
``*_truth.csv`` one row per truth crack (normal, width, angles to the wedge from the truth normal, found or not),
``*_sheets.csv`` one row per measured sheet (measured normal, its angles to the wedge, the truth crack and truth
particle it is scored against) and ``*_draws.csv`` the validator's scores of each draw. Not a library module::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/tomo_wedge_probe.py --seeds 0:50 --tilt-range-deg 140 \\
        --out docs/data/tomowedge2_probe_0_49_tilt140
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import validate_tomo_draws as vtd  # noqa: E402
from validate_random_draws import parse_seeds  # noqa: E402

NORMAL = ["normal_z", "normal_y", "normal_x"]


def _angles(normals: np.ndarray, interval) -> dict:
    from layerscope.tomo.wedge import edge_on_tilt_deg, inplane_wedge_angle_deg, wedge_angle_deg

    n = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    inplane = inplane_wedge_angle_deg(n, interval) if interval is not None else np.full(len(n), np.nan)
    return {"polar_deg": np.degrees(np.arccos(np.clip(np.abs(n[:, 0]), 0, 1))), "edge_on_tilt_deg": edge_on_tilt_deg(n),
            "inplane_wedge_deg": inplane, "wedge_angle_deg": wedge_angle_deg(n, interval)}


def probe(seed: int, tilt_range_deg: float) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    from layerscope.tomo.analysis import TomoOptions, analyse
    from layerscope.tomo.phantom import random_phantom
    from layerscope.tomo.scoring import _particle_scores, draw_parameters, score_draw, sheet_matches
    from layerscope.tomo.sinogram import LIMITED_SPAN_DEG
    from layerscope.tomo.wedge import tilt_interval_deg

    ph = random_phantom(seed)
    data = vtd._prepare(ph, rms_px=0.0, kind="white", tilt_range_deg=tilt_range_deg)
    interval = tilt_interval_deg(data.angles_deg, LIMITED_SPAN_DEG)
    res = analyse(data, TomoOptions(recon=vtd.recon_options("default"), allow_limited_angle=True))
    row = {**draw_parameters(ph), **score_draw(res, ph)}
    matches = sheet_matches(res, ph)
    mapping = _particle_scores(res, ph)[1]
    truth = ph.crack_truth.copy()
    if len(truth):
        truth = truth.assign(**_angles(truth[NORMAL].to_numpy(float), interval))
    found = {m for m, _ in matches if m}
    truth["found"] = [int(c) in found for c in truth["crack"]] if len(truth) else []
    truth["sheets"] = [sum(m == int(c) for m, _ in matches) for c in truth["crack"]] if len(truth) else []
    sheets = res.cracks[["crack", "sheet", "particle", *NORMAL, "segmented_voxels", "width_mean_nm"]].copy()
    if len(sheets):
        sheets = sheets.assign(**_angles(sheets[NORMAL].to_numpy(float), interval))
        sheets["truth_crack"] = [m for m, _ in matches]
        sheets["angle_err_deg"] = [a for _, a in matches]
        sheets["truth_particle"] = [mapping.get(int(p), 0) for p in sheets["particle"]]
        sheets["width_voxels"] = sheets["width_mean_nm"] / res.voxel_size_nm
    for t in (truth, sheets):
        t.insert(0, "seed", seed)
    return truth, sheets, row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", required=True)
    p.add_argument("--tilt-range-deg", type=float, default=140.0)
    p.add_argument("--out", type=Path, required=True, help="prefix of the three CSVs")
    args = p.parse_args(argv)
    from layerscope.tomo.phantom import random_phantom

    seeds = [s for s in parse_seeds(args.seeds) if random_phantom(s).specs["draw"]["projected"]]
    truths, sheets, rows = [], [], []
    for s in seeds:
        try:
            t, sh, r = probe(s, args.tilt_range_deg)
        except Exception as err:  # a refusal or crash: recorded, the run goes on
            rows.append({"seed": s, "error": f"{type(err).__name__}: {err}"[:200]})
            print(f"seed {s}: ERROR {err}", flush=True)
            continue
        truths.append(t), sheets.append(sh), rows.append(r)
        n_found = int(t["found"].sum()) if len(t) else 0
        print(f"seed {s}: cracks {r['n_cracks_found']}/{r['n_cracks_truth']} found {n_found}", flush=True)
        for name, parts in (("truth", truths), ("sheets", sheets), ("draws", [pd.DataFrame(rows)])):
            pd.concat(parts, ignore_index=True).to_csv(f"{args.out}_{name}.csv", index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
