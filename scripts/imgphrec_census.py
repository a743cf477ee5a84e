#!/usr/bin/env python
"""Census of the truth columns ``phases`` misses, traced through its stages (issue 19, imgphrec; a diagnostic).

Per draw ``map_phases`` is run with its stages recorded (the detector's maxima, the fits, the rows ``_index_columns``
keeps and ``_one_per_site`` drops, the TM and Li-layer tables before and after the wide-probe position patch
``_report_lattice_sites``) and scored as the validator scores it (:func:`layerscope.imaging.scoring.score_columns`,
its match distance ``MATCH_NM`` 0.07 nm, 0.15 nm margin); the generic finder (``generic.analyse``) is run as well.
Per missed visible truth column one row: kind, phase, expected intensity over the median TM column's, distance to a
void / crack / surface (``edge_nm``) and to the field's edge, the nearest point of each stage, and ``stage``: the
first stage with nothing within ``MATCH_NM`` of it (or what the nearest final row is). Uses the truth: a diagnostic,
not a method::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src nice -n 10 .venv/bin/python scripts/imgphrec_census.py \\
        --seed-list 5138,4084 --out /tmp/census.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

MATCH_NM = 0.07  # score_columns' tolerance
NEAR_NM = 0.12  # "a report near it" (imgwide5's census)


def _xy(df: pd.DataFrame | None) -> np.ndarray:
    if df is None or len(df) == 0:
        return np.empty((0, 2))
    return df[["x_nm", "y_nm"]].to_numpy(dtype=float)


def _near(points: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(points) == 0:
        return np.full(len(xy), np.inf), np.zeros(len(xy), dtype=int)
    return cKDTree(points).query(xy)


def _recorded_map_phases(data, px, zone, chemistry):
    """``map_phases`` with its stages recorded (module functions wrapped for the call, then restored)."""
    from layerscope.imaging import columns as _col
    from layerscope.imaging import pipeline as pl

    rec: dict = {}
    saved = {n: getattr(pl, n) for n in ("_detect_and_fit", "_index_columns", "_one_per_site", "_report_lattice_sites")}
    det_saved = _col.detect_columns

    def detect(*a, **k):
        det = det_saved(*a, **k)
        rec.setdefault("maxima", np.column_stack([(det.cols + 0.5) * px, (det.rows + 0.5) * px]))
        return det

    def detect_and_fit(*a, **k):
        found, sigma, failed, fp = saved["_detect_and_fit"](*a, **k)
        rec["fits"], rec["failed"] = found.copy(), failed.copy()
        return found, sigma, failed, fp

    def one_per_site(cols, is_tm, **k):
        keep = saved["_one_per_site"](cols, is_tm, **k)
        rec["one_dropped"] = cols[~keep].copy()
        return keep

    def index_columns(*a, **k):
        geo = saved["_index_columns"](*a, **k)
        rec["indexed"], rec["corner"], rec["tm0"] = geo.cols.copy(), geo.corner.copy(), geo.tm.copy()
        return geo

    def report(data_, tm, li, tm_xy, site_xy, *a, **k):
        rec["tm_before"], rec["li_before"] = tm.copy(), li.copy()
        rec["tm_xy"], rec["site_xy"] = tm_xy.copy(), site_xy.copy()
        saved["_report_lattice_sites"](data_, tm, li, tm_xy, site_xy, *a, **k)
        rec["tm_after"], rec["li_after"] = tm.copy(), li.copy()

    try:
        _col.detect_columns = detect
        pl._detect_and_fit, pl._index_columns = detect_and_fit, index_columns
        pl._one_per_site, pl._report_lattice_sites = one_per_site, report
        pm = pl.map_phases(data, pixel_size_nm=px, zone=zone, composition=chemistry)
    finally:
        _col.detect_columns = det_saved
        for n, f in saved.items():
            setattr(pl, n, f)
    return pm, rec


def _stage(r: dict) -> str:
    """The first stage of ``phases`` with nothing within MATCH_NM of the truth column (row ``r`` of distances)."""
    if r["d_final_det"] <= MATCH_NM:
        return "matched_elsewhere"  # a detected row is near but the one-to-one match gave it to another column
    if r["d_maximum"] > MATCH_NM:
        return "no_maximum_generic_has" if r["d_generic"] <= MATCH_NM else "no_maximum"
    if r["d_fit"] > MATCH_NM:
        return "failed_or_dim_fit" if r["d_failed"] <= MATCH_NM else "fit_pulled_off"
    if r["d_indexed"] > MATCH_NM and r["d_corner"] > MATCH_NM:
        return "dropped_one_per_site" if r["d_one_dropped"] <= MATCH_NM else "dropped_off_lattice"
    if r["d_indexed"] > MATCH_NM:
        return "corner_row_not_reported"
    if r["d_before"] > MATCH_NM:
        return "li_merge_or_outside"
    if r["d_after"] > MATCH_NM:
        return "moved_onto_lattice" if r["after_from_lattice"] else "moved_joint_fit"
    return "later_stage"


def census(seed: int) -> tuple[pd.DataFrame, dict]:
    from layerscope.imaging.generic import ColumnsOptions, analyse
    from layerscope.imaging.scoring import score_columns
    from layerscope.simulate.draws import draw_scene
    from layerscope.simulate.validation import MARGIN_NM

    image, px, truth = draw_scene(seed)
    data = np.asarray(image, float)
    p = truth.parameters
    extent = (data.shape[1] * px, data.shape[0] * px)
    gen = analyse(data, ColumnsOptions(), pixel_size_nm=px).columns
    try:
        pm, rec = _recorded_map_phases(data, px, p["zone"], p["chemistry"])
    except Exception as err:  # noqa: BLE001 - a refused draw has no phases rows (as in the validator)
        return pd.DataFrame(), dict(seed=seed, dose=p["dose_e_per_A2"], refused=f"{type(err).__name__}")
    cols = pm.columns
    sc = score_columns(cols, truth.columns, extent_nm=extent, margin_nm=MARGIN_NM)
    tc = truth.columns
    cat = tc[tc["kind"].isin(["TM", "Li"])]
    ref = float(np.median(cat.loc[cat["kind"] == "TM", "expected_intensity"]))
    summ = dict(seed=seed, dose=p["dose_e_per_A2"], probe=p["probe_fwhm_nm"], recall=sc.recall,
                precision=sc.precision, n_missed=len(sc.missed), n_false=len(sc.false))
    if len(sc.missed) == 0:
        return pd.DataFrame(), summ
    xy = _xy(sc.missed)
    det = cols[cols["detected"].astype(bool)]
    fit_ok = rec["fits"]
    before = pd.concat([rec["tm_before"], rec["li_before"]], ignore_index=True)
    after = pd.concat([rec["tm_after"], rec["li_after"]], ignore_index=True)
    b_det, a_det = before[before["detected"].astype(bool)], after[after["detected"].astype(bool)]
    d = {"d_final_det": _near(_xy(det), xy)[0], "d_maximum": _near(rec["maxima"], xy)[0],
         "d_generic": _near(_xy(gen), xy)[0], "d_fit": _near(_xy(fit_ok), xy)[0],
         "d_failed": _near(_xy(rec["failed"]), xy)[0], "d_indexed": _near(_xy(rec["indexed"]), xy)[0],
         "d_corner": _near(_xy(rec["corner"]), xy)[0], "d_one_dropped": _near(_xy(rec.get("one_dropped")), xy)[0],
         "d_before": _near(_xy(b_det), xy)[0]}
    d["d_after"], ia = _near(_xy(a_det), xy)
    d["after_from_lattice"] = (a_det["position_from_lattice"].fillna(False).to_numpy(dtype=bool)[ia]
                               if len(a_det) and "position_from_lattice" in a_det else np.zeros(len(xy), bool))
    # the nearest final row of any kind (placed sites included) and what it is
    d_any, i_any = _near(_xy(cols), xy)
    out = pd.DataFrame({"seed": seed, "dose": p["dose_e_per_A2"], "probe_nm": p["probe_fwhm_nm"],
                        "x_nm": xy[:, 0], "y_nm": xy[:, 1], "kind": sc.missed["kind"].to_numpy(),
                        "phase": sc.missed["phase"].to_numpy() if "phase" in sc.missed else "",
                        "rel_intensity": sc.missed["expected_intensity"].to_numpy() / ref,
                        "edge_nm": sc.missed["edge_nm"].to_numpy() if "edge_nm" in sc.missed else np.nan,
                        "field_edge_nm": np.minimum.reduce([xy[:, 0], xy[:, 1], extent[0] - xy[:, 0],
                                                            extent[1] - xy[:, 1]]), **d,
                        "d_any_row": d_any})
    near = cols.iloc[i_any]
    for c in ("kind", "detected", "fit_ok", "indexed", "position_from_lattice", "layer"):
        out[f"row_{c}"] = near[c].to_numpy() if c in near else np.nan
    out["stage"] = [_stage(r) for r in out.to_dict("records")]
    return out, summ


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed-list", required=True)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    frames, summ = [], []
    for s in [int(x) for x in a.seed_list.split(",")]:
        f, m = census(s)
        frames.append(f)
        summ.append(m)
        print(m, f["stage"].value_counts().to_dict() if len(f) else {}, flush=True)
        pd.concat(frames, ignore_index=True).to_csv(a.out, index=False, float_format="%.6g")
        pd.DataFrame(summ).to_csv(a.out.with_name(a.out.stem + "_draws.csv"), index=False, float_format="%.6g")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
