#!/usr/bin/env python
"""Where the ``phases`` pipeline's missed truth columns are, per random draw (issue 19, imgrecall).

For every missed visible truth column (:func:`layerscope.imaging.scoring.score_columns` of
``map_phases``' detected sites) prints its kind, phase, intensity (share of the median TM column),
distance to the image edge and to a void/crack/surface (``edge_nm``), the nearest reported site
(detected or placed) and the nearest generic-finder column, and a class::

    PYTHONPATH=src python scripts/diagnose_recall.py 2023 2029 [--csv out.csv]
"""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree


def classify(m: pd.Series) -> str:
    if m.d_site < 0.07 and not m.site_detected:
        return "placed, not confirmed" + (" (generic found)" if m.d_generic < 0.07 else "")
    if m.d_site < 0.07:
        return "site matched elsewhere"
    if m.d_generic >= 0.07:
        return "no site, generic misses too"
    if m.d_border < 1.2:
        return "no site, field edge"
    if m.edge_nm < 0.5:
        return "no site, void/crack rim"
    return "no site, interior"


def diagnose(seed: int) -> pd.DataFrame:
    from layerscope.imaging.generic import ColumnsOptions, analyse
    from layerscope.imaging.pipeline import map_phases
    from layerscope.imaging.scoring import score_columns
    from layerscope.simulate.draws import draw_scene
    from layerscope.simulate.validation import MARGIN_NM

    image, px, truth = draw_scene(seed)
    p = truth.parameters
    extent = (image.shape[1] * px, image.shape[0] * px)
    pm = map_phases(image, pixel_size_nm=px, zone=p["zone"], composition=p["chemistry"])
    gen = analyse(image, ColumnsOptions(), pixel_size_nm=px).columns
    sc = score_columns(pm.columns, truth.columns, extent_nm=extent, margin_nm=MARGIN_NM)
    miss = sc.missed.copy()
    cols = pm.columns
    tm_ref = float(np.median(truth.columns.loc[truth.columns["kind"] == "TM", "expected_intensity"]))
    xy = miss[["x_nm", "y_nm"]].to_numpy()
    d, j = cKDTree(cols[["x_nm", "y_nm"]].to_numpy()).query(xy) if len(miss) else (np.empty(0), np.empty(0, int))
    dg, _ = cKDTree(gen[["x_nm", "y_nm"]].to_numpy()).query(xy) if len(miss) else (np.empty(0), None)
    miss = miss.assign(seed=seed, rel=miss["expected_intensity"] / tm_ref, d_site=d,
                       site_detected=cols["detected"].to_numpy()[j] if len(miss) else [],
                       site_kind=cols["kind"].to_numpy()[j] if len(miss) else [],
                       site_layer=cols["layer"].to_numpy()[j] if len(miss) else [],
                       d_generic=dg,
                       d_border=np.minimum(np.minimum(xy[:, 0], extent[0] - xy[:, 0]),
                                           np.minimum(xy[:, 1], extent[1] - xy[:, 1])) if len(miss) else [])
    miss["class"] = [classify(m) for m in miss.itertuples()] if len(miss) else []
    print(f"seed {seed}: recall {sc.recall:.4f} precision {sc.precision:.4f} missed {len(miss)} false {len(sc.false)} "
          f"probe {p['probe_fwhm_nm']:.3f} dose {p['dose_e_per_A2']:.3g}")
    keep = ["kind", "phase", "rel", "d_border", "edge_nm", "d_site", "site_detected", "site_kind", "site_layer",
            "d_generic", "class"]
    keep = [k for k in keep if k in miss]
    if len(miss):
        print(miss[keep].round(3).to_string())
    if len(sc.false):
        f = sc.false
        dt, _ = cKDTree(truth.columns[["x_nm", "y_nm"]].to_numpy()).query(f[["x_nm", "y_nm"]].to_numpy())
        print("false:", f.assign(d_truth=dt)[[c for c in ("kind", "layer", "detected", "fit_ok", "d_truth") if c in f or c == "d_truth"]].round(3).to_string())
    for n in pm.columns.attrs.get("notes", []) if hasattr(pm.columns, "attrs") else []:
        print("  note:", n)
    return miss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("seeds", type=int, nargs="+")
    ap.add_argument("--csv")
    a = ap.parse_args()
    out = pd.concat([diagnose(s) for s in a.seeds], ignore_index=True)
    if len(out):
        print(out.groupby(["seed", "class"]).size().to_string())
    if a.csv:
        out.to_csv(a.csv, index=False)


if __name__ == "__main__":
    main()
