#!/usr/bin/env python
"""Trace the false reports one switch adds on a draw (issue 19, imgprec; a diagnostic that uses the truth).

``generic SEED``: ``generic.analyse`` with ``columns.GENERIC_JOINT`` off and on; per report that is matched off and
false on (or the reverse): its pass, fit, start and end centre, the truth columns (TM, Li, O) within 0.25 nm of it
before and after, and the other reports within 0.3 nm (their pass and shift).

``phases SEED``: ``map_phases`` with ``pipeline.RESIDUAL_EVIDENCE`` / ``LATTICE_EVIDENCE`` / ``FAILED_FIT_REPORT``
all off and all on (or the switches named by ``--on``); per false row of the second run that is not a false row of
the first: the row, which evidence made it (the failed fit it reports, or the maxima of the lattice pass, the
residual pass, the resolving pass or a failed / dim fit within ``CONFIRM_SHARE d_t`` of the confirmed site), the
truth columns within 0.25 nm (kind, expected intensity over the median TM column's, distance) and the rows near it::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src nice -n 10 .venv/bin/python scripts/imgprec_trace.py phases 5083
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

NEAR_TRUTH_NM = 0.25
NEAR_ROW_NM = 0.3


def _truth_near(truth: pd.DataFrame, xy: np.ndarray, ref: float) -> str:
    """Truth columns (any kind) within NEAR_TRUTH_NM of ``xy`` (nm): kind, intensity / ref, distance (pm)."""
    t = truth[truth["in_image"]] if "in_image" in truth else truth
    d = np.hypot(t["x_nm"].to_numpy() - xy[0], t["y_nm"].to_numpy() - xy[1])
    order = np.argsort(d)
    near = [i for i in order if d[i] <= NEAR_TRUTH_NM]
    return "; ".join(f"{t['kind'].iloc[i]} {t['expected_intensity'].iloc[i] / ref:.2f} at {d[i] * 1e3:.0f} pm"
                     f" ({t['phase'].iloc[i] if 'phase' in t else ''})" for i in near)


def _ref(truth: pd.DataFrame) -> float:
    cat = truth[truth["kind"] == "TM"]
    return float(np.median(cat["expected_intensity"]))


def generic(seed: int) -> None:
    from layerscope.imaging import columns as C
    from layerscope.imaging.generic import ColumnsOptions, analyse
    from layerscope.imaging.scoring import score_columns
    from layerscope.simulate.draws import draw_scene
    from layerscope.simulate.validation import MARGIN_NM

    image, px, truth = draw_scene(seed)
    ref = _ref(truth.columns)
    tables, plain = [], C.find_columns
    C.find_columns = lambda *a, **k: tables.append(plain(*a, **k)) or tables[-1]
    false, saved = [], C.GENERIC_JOINT
    try:
        for on in (False, True):
            C.GENERIC_JOINT = on
            found = analyse(image, ColumnsOptions(), pixel_size_nm=px)
            sc = score_columns(found.columns, truth.columns, extent_nm=(image.shape[1] * px, image.shape[0] * px),
                               margin_nm=MARGIN_NM, anion_columns_ok=True)
            j = cKDTree(tables[-1][["x_nm", "y_nm"]].to_numpy()).query(found.columns[["x_nm", "y_nm"]].to_numpy())[1]
            f = np.zeros(len(tables[-1]), bool)
            f[j[sc.false.index.to_numpy()]] = True
            false.append(f)
            print(f"GENERIC_JOINT {on}: recall {sc.recall:.4f} precision {sc.precision:.4f} false {len(sc.false)}")
    finally:
        C.find_columns, C.GENERIC_JOINT = plain, saved
    a, b = tables[-2], tables[-1]
    xa, xb = a[["x_nm", "y_nm"]].to_numpy(), b[["x_nm", "y_nm"]].to_numpy()
    for i in np.nonzero(false[0] != false[1])[0]:
        print(f"\n{'LOSS' if false[1][i] else 'gain'} report {i}: fit_ok {bool(a.fit_ok[i])} lattice "
              f"{bool(a.lattice_pass[i])} residual {bool(a.residual_pass[i])} neighbour {bool(a.neighbour_pass[i])} "
              f"sigma {a.sigma_nm[i]:.3f} nm amplitude {a.amplitude[i]:.1f}")
        print(f"  start ({xa[i, 0]:.3f}, {xa[i, 1]:.3f}) nm -> end ({xb[i, 0]:.3f}, {xb[i, 1]:.3f}): "
              f"shift ({(xb[i, 0] - xa[i, 0]) * 1e3:+.0f}, {(xb[i, 1] - xa[i, 1]) * 1e3:+.0f}) pm")
        print(f"  truth at start: {_truth_near(truth.columns, xa[i], ref)}")
        print(f"  truth at end:   {_truth_near(truth.columns, xb[i], ref)}")
        d = np.hypot(*(xa - xa[i]).T)
        for k in np.argsort(d)[1:]:
            if d[k] > NEAR_ROW_NM:
                break
            print(f"  report {k} at {d[k] * 1e3:.0f} pm: fit_ok {bool(a.fit_ok[k])} lattice {bool(a.lattice_pass[k])}"
                  f" residual {bool(a.residual_pass[k])} amplitude {a.amplitude[k]:.1f} shift "
                  f"({(xb[k, 0] - xa[k, 0]) * 1e3:+.0f}, {(xb[k, 1] - xa[k, 1]) * 1e3:+.0f}) pm, false off/on "
                  f"{bool(false[0][k])}/{bool(false[1][k])}; truth {_truth_near(truth.columns, xa[k], ref)[:60]}")


def _recorded(image, px, p, switches: dict) -> tuple:
    from layerscope.imaging import pipeline as pl

    rec: dict = {"residual": [], "resolved": [], "confirm": [], "unrowed": []}
    names = ("_residual_maxima", "_resolved_maxima", "_confirm_placed_sites", "_unrowed_failed_fits")
    saved = {n: getattr(pl, n) for n in names}
    saved_sw = {k: getattr(pl, k) for k in switches}

    def residual(*a, **k):
        out = saved["_residual_maxima"](*a, **k)
        rec["residual"].append(out)
        return out

    def resolved(*a, **k):
        out = saved["_resolved_maxima"](*a, **k)
        rec["resolved"].append(out)
        return out

    def confirm(maxima, tm, tm_xy, li, **k):
        before = (tm["detected"].to_numpy(bool).copy(), li["detected"].to_numpy(bool).copy())
        rec["confirm"].append((maxima.copy(), tm_xy.copy(), li.copy(), before))
        return saved["_confirm_placed_sites"](maxima, tm, tm_xy, li, **k)

    def unrowed(*a, **k):
        out = saved["_unrowed_failed_fits"](*a, **k)
        rec["unrowed"].append(out)
        return out

    try:
        for k, v in switches.items():
            setattr(pl, k, v)
        pl._residual_maxima, pl._resolved_maxima = residual, resolved
        pl._confirm_placed_sites, pl._unrowed_failed_fits = confirm, unrowed
        pm = pl.map_phases(image, pixel_size_nm=px, zone=p["zone"], composition=p["chemistry"])
    finally:
        for n, f in saved.items():
            setattr(pl, n, f)
        for k, v in saved_sw.items():
            setattr(pl, k, v)
    return pm, rec


def _evidence(rec: dict, xy: np.ndarray, d_t: float) -> str:
    """Which evidence maxima lie within 0.25 d_t of ``xy`` (nm): the confirmation's inputs, by source."""
    from layerscope.imaging import pipeline as pl

    out = []
    maxima = rec["confirm"][0][0] if rec["confirm"] else pd.DataFrame({"x_nm": [], "y_nm": []})
    n_failed = len(maxima) - sum(len(r) for r in rec["resolved"]) - sum(len(r) for r in rec["residual"])
    srcs = (["failed/dim fit"] * n_failed + ["resolving pass"] * sum(len(r) for r in rec["resolved"])
            + ["lattice/residual pass"] * sum(len(r) for r in rec["residual"]))
    for s, (x, y) in zip(srcs, maxima[["x_nm", "y_nm"]].to_numpy()):
        d = np.hypot(x - xy[0], y - xy[1])
        if d <= pl.CONFIRM_SHARE * d_t + 0.05:
            out.append(f"{s} maximum at ({x:.3f}, {y:.3f}), {d * 1e3:.0f} pm")
    return "; ".join(out) or "none"


def phases(seed: int, on: list[str]) -> None:
    from layerscope.imaging.scoring import score_columns
    from layerscope.simulate.draws import draw_scene
    from layerscope.simulate.validation import MARGIN_NM

    image, px, truth = draw_scene(seed)
    p, ref = truth.parameters, _ref(truth.columns)
    extent = (image.shape[1] * px, image.shape[0] * px)
    names = ["RESIDUAL_EVIDENCE", "LATTICE_EVIDENCE", "FAILED_FIT_REPORT"]
    runs = []
    for sw in ({k: False for k in names}, {k: k in on for k in names}):
        pm, rec = _recorded(image, px, p, sw)
        sc = score_columns(pm.columns, truth.columns, extent_nm=extent, margin_nm=MARGIN_NM)
        print(f"{sw}: recall {sc.recall:.4f} precision {sc.precision:.4f} false {len(sc.false)}")
        runs.append((pm, rec, sc))
    (pm0, _, s0), (pm1, rec, s1) = runs
    d_t = float(pm1.result.lattice.inplane_period_nm)
    old = s0.false[["x_nm", "y_nm"]].to_numpy()
    cols = pm1.columns
    for i, r in s1.false.iterrows():
        xy = np.array([r.x_nm, r.y_nm])
        if len(old) and cKDTree(old).query(xy)[0] < 1e-6:
            continue
        keys = [c for c in ("kind", "layer", "detected", "fit_ok", "indexed", "position_from_lattice", "phase")
                if c in r]
        print(f"\nNEW FALSE row {i} at ({r.x_nm:.3f}, {r.y_nm:.3f}) nm: " + ", ".join(f"{k} {r[k]}" for k in keys))
        print(f"  truth within {NEAR_TRUTH_NM} nm: {_truth_near(truth.columns, xy, ref)}")
        print(f"  evidence within CONFIRM_SHARE d_t (+0.05 nm): {_evidence(rec, xy, d_t)}")
        rep = [u for u in rec["unrowed"] if len(u) and np.min(np.hypot(u.x_nm - xy[0], u.y_nm - xy[1])) < 1e-6]
        print(f"  a FAILED_FIT_REPORT row: {bool(rep)}")
        d = np.hypot(cols.x_nm.to_numpy() - xy[0], cols.y_nm.to_numpy() - xy[1])
        for k in np.argsort(d)[1:7]:
            c = cols.iloc[k]
            print(f"  row {k} at {d[k] * 1e3:.0f} pm: kind {c.kind} layer {c.layer} detected {c.detected} fit_ok "
                  f"{c.fit_ok} false {bool(((s1.false.x_nm - c.x_nm).abs() < 1e-9).any())}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["generic", "phases"])
    ap.add_argument("seed", type=int)
    ap.add_argument("--on", default="RESIDUAL_EVIDENCE,LATTICE_EVIDENCE,FAILED_FIT_REPORT")
    a = ap.parse_args(argv)
    generic(a.seed) if a.mode == "generic" else phases(a.seed, a.on.split(","))
    return 0


if __name__ == "__main__":
    sys.exit(main())
