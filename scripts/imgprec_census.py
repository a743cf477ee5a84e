#!/usr/bin/env python
"""What the imgphrec evidence adds on each draw, with the truth (issue 19, imgprec; a diagnostic).

Per draw ``map_phases`` runs with its defaults and records (1) every placed site that only the generic finder's
lattice / residual passes (``pipeline.RESIDUAL_EVIDENCE``) confirm: its measured amplitude over its standard error
(:func:`layerscope.imaging.sitetests.amplitude_errors`, as :func:`pipeline._detect_gap_columns` tests) and whether a
visible truth cation column lies within 0.07 nm (``true``); (2) every failed fit ``FAILED_FIT_REPORT`` reports: its
distance across the layers to the nearest layer's rows over the cation spacing and ``true`` likewise::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src nice -n 10 .venv/bin/python scripts/imgprec_census.py \\
        --seed-list 5083,2085 --out /tmp/census.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree


def census(seed: int) -> pd.DataFrame:
    from layerscope.imaging import pipeline as pl
    from layerscope.imaging import sitetests as st
    from layerscope.simulate.draws import draw_scene

    image, px, truth = draw_scene(seed)
    p, t = truth.parameters, truth.columns
    cat = t[t["kind"].isin(["TM", "Li"])]
    ref = float(np.median(cat.loc[cat["kind"] == "TM", "expected_intensity"]))
    vis = cat[cat["expected_intensity"] >= 0.4 * ref][["x_nm", "y_nm"]].to_numpy()
    any_cat = cat[["x_nm", "y_nm"]].to_numpy()
    rec: dict = {"residual": []}
    saved = {n: getattr(pl, n) for n in ("_residual_maxima", "_confirm_placed_sites", "_measure_li_sites",
                                         "_unindexed_rows")}

    def residual(*a, **k):
        rec["residual"].append(saved["_residual_maxima"](*a, **k))
        return rec["residual"][-1]

    def measure(data, px_, li, tm, **k):
        rec["site"] = (k["sigma_nm"], k["radius_nm"], k.get("counts"))
        return saved["_measure_li_sites"](data, px_, li, tm, **k)

    def confirm(maxima, tm, tm_xy, li, **k):
        sites = np.vstack([tm_xy.reshape(-1, 2), li[["x_nm", "y_nm"]].to_numpy(dtype=float).reshape(-1, 2)])
        amp = np.concatenate([tm["intensity"].to_numpy(dtype=float), li["intensity"].to_numpy(dtype=float)])
        kind = np.concatenate([np.full(len(tm), "TM"), np.full(len(li), "Li")])
        placed = ~np.concatenate([tm["detected"].to_numpy(dtype=bool), li["detected"].to_numpy(dtype=bool)])
        n_res = sum(len(r) for r in rec["residual"])
        tree = cKDTree(sites)
        d, j = tree.query(maxima[["x_nm", "y_nm"]].to_numpy(dtype=float))
        hit = (d <= pl.CONFIRM_SHARE * k["d_t"]) & placed[j]
        src = np.zeros(len(maxima), bool)
        src[len(maxima) - n_res:] = True
        only = np.setdiff1d(np.unique(j[hit & src]), np.unique(j[hit & ~src]))
        rec["confirm"] = (sites[only], amp[only], kind[only])
        return saved["_confirm_placed_sites"](maxima, tm, tm_xy, li, **k)

    def unindexed(failed, tm, li, geo, **k):
        out = saved["_unindexed_rows"](failed, tm, li, geo, **k)
        extra = out.iloc[len(geo.corner):]
        rows = pd.concat([tm, li], ignore_index=True)
        xy = rows[["x_nm", "y_nm"]].to_numpy(dtype=float)
        ru, rv, lay = xy @ geo.tvec, xy @ geo.nvec, rows["layer"].to_numpy()
        off = []
        for x, y in extra[["x_nm", "y_nm"]].to_numpy(dtype=float):
            u, v = np.array([x, y]) @ geo.tvec, np.array([x, y]) @ geo.nvec
            near = (np.abs(ru - u) <= 3.0 * k["d_t"]) & (lay >= 0)
            lv = [np.median(rv[near & (lay == L)]) for L in np.unique(lay[near])]
            off.append(min(abs(np.array(lv) - v)) / k["cation"])
        rec["report"] = (extra[["x_nm", "y_nm"]].to_numpy(dtype=float), np.array(off), extra["kind"].to_numpy())
        return out

    from layerscope.errors import InputError

    try:
        pl._residual_maxima, pl._confirm_placed_sites = residual, confirm
        pl._measure_li_sites, pl._unindexed_rows = measure, unindexed
        pl.map_phases(image, pixel_size_nm=px, zone=p["zone"], composition=p["chemistry"])
    except InputError:  # a refused draw (as in the validator)
        return pd.DataFrame()
    finally:
        for n, f in saved.items():
            setattr(pl, n, f)
    out = []
    sig, rad, counts = rec["site"]
    if "confirm" in rec and len(rec["confirm"][0]):
        xy, amp, kind = rec["confirm"]
        err = st.amplitude_errors(image, xy[:, 0], xy[:, 1], pixel_size_nm=px, sigma_nm=sig, radius_nm=rad,
                                  counts=counts)
        out.append(pd.DataFrame({"source": "residual_evidence", "x_nm": xy[:, 0], "y_nm": xy[:, 1], "kind": kind,
                                 "amplitude_se": amp / err, "layer_offset": np.nan}))
    if "report" in rec and len(rec["report"][0]):
        xy, off, kind = rec["report"]
        out.append(pd.DataFrame({"source": "failed_fit_report", "x_nm": xy[:, 0], "y_nm": xy[:, 1], "kind": kind,
                                 "amplitude_se": np.nan, "layer_offset": off}))
    if not out:
        return pd.DataFrame()
    out = pd.concat(out, ignore_index=True)
    xy = out[["x_nm", "y_nm"]].to_numpy()
    out["d_visible_nm"] = cKDTree(vis).query(xy)[0]
    out["d_cation_nm"] = cKDTree(any_cat).query(xy)[0]
    out["true"] = out["d_cation_nm"] <= 0.07
    ext = image.shape[1] * px, image.shape[0] * px
    out["interior"] = (np.minimum.reduce([xy[:, 0], xy[:, 1], ext[0] - xy[:, 0], ext[1] - xy[:, 1]]) >= 0.15)
    return out.assign(seed=seed, dose=p["dose_e_per_A2"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed-list", required=True)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    frames = []
    for s in [int(x) for x in a.seed_list.split(",")]:
        frames.append(census(s))
        f = frames[-1]
        print(s, len(f), int(f["true"].sum()) if len(f) else 0, flush=True)
        pd.concat(frames, ignore_index=True).to_csv(a.out, index=False, float_format="%.6g")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
