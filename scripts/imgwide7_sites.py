#!/usr/bin/env python
"""Every placed Li-layer site's joint height over its standard error against the truth (issue 19, imgwide7; a
diagnostic that uses the truth).

Per draw ``map_phases`` runs as the validator runs it; at the point where it reports its lattice sites
(``pipeline._report_lattice_sites``) the Li-layer sites (lattice positions), the TM lattice positions, the site
width and window are taken, and each Li-layer site's height is fitted with its neighbours' heights free
(:func:`layerscope.imaging.sitetests.joint_site_heights`: every TM and Li-layer lattice position a source, a
constant, the measured width) in windows of 2 and 2.5 widths. Each site is matched to the nearest truth cation
column (within ``MATCH_NM``): its expected intensity over the median TM column's (``rel``), whether it is visible
(>= 0.4, the scorer's) and whether ``phases``' final table misses it (the scorer's recall). One row per site::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src nice -n 10 .venv/bin/python scripts/imgwide7_sites.py \\
        --seed-list 5138,4084 --out /tmp/sites.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

MATCH_NM = 0.07
RADII = (2.0, 3.0, 4.0)  # the joint fit's disc, in column widths
TM_SITES = False  # --tm: the placed TM sites, not the Li-layer ones


def _captured():
    """``pipeline._report_lattice_sites`` and ``_confirm_placed_sites`` wrapped: their inputs kept (copies)."""
    from layerscope.imaging import pipeline

    state: dict = {}
    report, confirm = pipeline._report_lattice_sites, pipeline._confirm_placed_sites

    def confirm_w(maxima, tm, tm_xy, li, **kw):
        state["li_detected_before"] = li["detected"].to_numpy(dtype=bool).copy()
        return confirm(maxima, tm, tm_xy, li, **kw)

    def report_w(data, tm, li, tm_xy, site_xy, geo, field, window, notes):
        state.update(data=data, tm=tm.copy(), li=li.copy(), tm_xy=tm_xy.copy(), site_xy=site_xy.copy(),
                     field=field, window=window)
        return report(data, tm, li, tm_xy, site_xy, geo, field, window, notes)

    pipeline._report_lattice_sites, pipeline._confirm_placed_sites = report_w, confirm_w
    return state


def sites(seed: int, state: dict) -> tuple[pd.DataFrame, dict]:
    from layerscope.imaging import columns as _col
    from layerscope.imaging import sitetests as _st
    from layerscope.imaging.pipeline import map_phases
    from layerscope.imaging.scoring import score_columns
    from layerscope.simulate.draws import draw_scene
    from layerscope.simulate.validation import MARGIN_NM

    image, px, truth = draw_scene(seed)
    data = np.asarray(image, float)
    p = truth.parameters
    extent = (data.shape[1] * px, data.shape[0] * px)
    state.clear()
    pm = map_phases(data, pixel_size_nm=px, zone=p["zone"], composition=p["chemistry"])
    li, tm_xy, site_xy = state["li"], state["tm_xy"], state["site_xy"]
    if TM_SITES:  # the placed TM sites instead (--tm): the same fit and truth match
        li = state["tm"].assign(mixing=np.nan, mixing_sem=np.nan, intensity_sem=np.nan)
        site_xy, state["li_detected_before"] = tm_xy, li["detected"].to_numpy(dtype=bool)
    radius_nm, site_radius, width = state["window"]
    counts = _col.is_count_image(data)
    src = np.vstack([tm_xy, site_xy])
    out = pd.DataFrame({"seed": seed, "x_nm": site_xy[:, 0], "y_nm": site_xy[:, 1], "layer": li["layer"].to_numpy(),
                        "detected_first": state["li_detected_before"], "detected": li["detected"].to_numpy(bool),
                        "intensity": li["intensity"].to_numpy(), "intensity_sem": li["intensity_sem"].to_numpy(),
                        "mixing": li["mixing"].to_numpy(), "mixing_sem": li["mixing_sem"].to_numpy(),
                        "site_in_void": li.get("site_in_void", pd.Series(False, index=li.index)).to_numpy()})
    for k in RADII:
        h, e = _st.joint_site_heights(data, site_xy, src, pixel_size_nm=px, sigma_nm=width, radius_nm=k * width,
                                      counts=counts)
        out[f"h{k:g}"], out[f"se{k:g}"] = h, e
    tref = _st.joint_site_heights(data, tm_xy, src, pixel_size_nm=px, sigma_nm=width, radius_nm=2.0 * width,
                                  counts=counts)[0]
    tc = truth.columns
    cat = tc[tc["kind"].isin(["TM", "Li"])]
    ref = float(np.median(cat.loc[cat["kind"] == "TM", "expected_intensity"]))
    d, j = cKDTree(cat[["x_nm", "y_nm"]].to_numpy()).query(site_xy)
    out["truth_nm"] = d
    out["truth_kind"] = np.where(d <= MATCH_NM, cat["kind"].to_numpy()[j], "none")
    out["rel"] = np.where(d <= MATCH_NM, cat["expected_intensity"].to_numpy()[j] / ref, np.nan)
    out["phase"] = np.where(d <= MATCH_NM, cat["phase"].to_numpy()[j] if "phase" in cat else "", "")
    sc = score_columns(pm.columns, tc, extent_nm=extent, margin_nm=MARGIN_NM)
    missed = sc.missed[["x_nm", "y_nm"]].to_numpy()
    dm = cKDTree(missed).query(site_xy)[0] if len(missed) else np.full(len(site_xy), np.inf)
    out["truth_missed"] = dm < 1e-6 + d  # the site's nearest truth column is a miss of phases' table
    out["truth_missed"] &= d <= MATCH_NM
    edge = np.minimum.reduce([site_xy[:, 0], site_xy[:, 1], extent[0] - site_xy[:, 0], extent[1] - site_xy[:, 1]])
    out["field_edge_nm"] = edge
    out["interior"] = edge > MARGIN_NM
    summ = dict(seed=seed, dose=p["dose_e_per_A2"], probe=p["probe_fwhm_nm"], width_nm=width,
                wide=bool(site_radius > radius_nm), recall=sc.recall, precision=sc.precision,
                n_missed=len(missed), tm_joint_median=float(np.nanmedian(tref)), n_sites=len(out))
    out["tm_joint_median"] = summ["tm_joint_median"]
    return out, summ


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed-list", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--tm", action="store_true", help="the TM lattice positions instead of the Li-layer sites")
    a = ap.parse_args(argv)
    global TM_SITES
    TM_SITES = a.tm
    state = _captured()
    rows, summ = [], []
    for s in (int(v) for v in a.seed_list.split(",")):
        try:
            r, m = sites(s, state)
        except Exception as exc:  # a draw phases refuses (too few counts): no sites
            print(f"seed {s}: {type(exc).__name__}", flush=True)
            continue
        rows.append(r)
        summ.append(m)
        print(m, flush=True)
        pd.concat(rows).to_csv(a.out, index=False, float_format="%.6g")
        pd.DataFrame(summ).to_csv(a.out.with_name(a.out.stem + "_draws.csv"), index=False, float_format="%.6g")
    return 0


if __name__ == "__main__":
    sys.exit(main())
