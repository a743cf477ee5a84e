#!/usr/bin/env python
"""The generic finder with ``columns.GENERIC_JOINT`` off and on, per draw (issue 19, imgwide6; a diagnostic).

Per seed the draw is rendered once and ``generic.analyse`` run twice (the switch off, then on), each scored as the
validator scores it (:func:`layerscope.imaging.scoring.score_columns`, ``anion_columns_ok``). One row per draw: the
dose, the probe, whether the wide path ran (``resolving_sigma`` not None: the lattice pass, the residual pass and the
joint fit run only there), recall / precision / RMS off and on, the missed columns with a report 0.07-0.12 nm
away (imgwide5's census class "mislocalised") and the reports that changed status (a false detection matched, or
a match made false). With ``--detail`` each such report is printed with its shift and the
truth column it lies at before and after (uses the truth: a diagnostic, not a method)::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src nice -n 10 .venv/bin/python scripts/imgwide6_generic_joint.py \\
        --seeds 7000:7100 --out /tmp/joint_7000.csv
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree


def _generic(image, px, truth, on: bool, tables: list):
    """``generic.analyse`` with the switch ``on``: its score and, per row of ``find_columns``' table, False /
    True (a false detection inside the margin)."""
    from layerscope.imaging import columns as C
    from layerscope.imaging.generic import ColumnsOptions, analyse
    from layerscope.imaging.scoring import score_columns
    from layerscope.simulate.validation import MARGIN_NM

    C.GENERIC_JOINT = on
    t0 = time.perf_counter()
    found = analyse(image, ColumnsOptions(), pixel_size_nm=px)
    seconds = time.perf_counter() - t0
    sc = score_columns(found.columns, truth.columns, extent_nm=(image.shape[1] * px, image.shape[0] * px),
                       margin_nm=MARGIN_NM, anion_columns_ok=True)
    table = tables[-1]
    _, j = cKDTree(table[["x_nm", "y_nm"]].to_numpy()).query(found.columns[["x_nm", "y_nm"]].to_numpy())
    false = np.zeros(len(table), bool)
    false[j[sc.false.index.to_numpy()]] = True
    return sc, seconds, table, false


def _changes(truth, a: pd.DataFrame, b: pd.DataFrame, fa: np.ndarray, fb: np.ndarray, detail: bool) -> tuple[int, int]:
    """Reports false off and matched on (gains), and the reverse (losses); printed with ``detail``."""
    if len(a) != len(b):
        return -1, -1
    cat = truth.columns
    tree = cKDTree(cat[["x_nm", "y_nm"]].to_numpy())
    ref = float(np.median(cat.loc[cat["kind"] == "TM", "expected_intensity"]))
    for i in np.nonzero(fa != fb)[0] if detail else []:
        (d0, j0), (d1, j1) = tree.query([a.x_nm[i], a.y_nm[i]]), tree.query([b.x_nm[i], b.y_nm[i]])
        shift = np.hypot(b.x_nm[i] - a.x_nm[i], b.y_nm[i] - a.y_nm[i])
        print(f"  {'loss' if fb[i] else 'gain'} row {i}: shift {shift * 1e3:.0f} pm, nearest truth before "
              f"{cat.kind.iloc[j0]} {cat.expected_intensity.iloc[j0] / ref:.2f} at {d0 * 1e3:.0f} pm, after "
              f"{cat.kind.iloc[j1]} {cat.expected_intensity.iloc[j1] / ref:.2f} at {d1 * 1e3:.0f} pm; lattice pass "
              f"{bool(a.lattice_pass[i])}, residual pass {bool(a.residual_pass[i])}", flush=True)
    return int((fa & ~fb).sum()), int((~fa & fb).sum())


def one(seed: int, detail: bool, skip_narrow: bool = False) -> dict:
    from layerscope.errors import InputError
    from layerscope.imaging import columns as C
    from layerscope.imaging.generic import image_lattice
    from layerscope.simulate.draws import draw_scene

    image, px, truth = draw_scene(seed)
    lat = image_lattice(image, pixel_size_nm=px)
    sigma0 = float(np.clip(lat.column_sigma_nm, 0.08 * lat.nn_distance_nm, 0.3 * lat.nn_distance_nm))
    row = dict(seed=seed, dose_e_per_A2=truth.parameters["dose_e_per_A2"],
               probe_fwhm_nm=truth.parameters.get("probe_fwhm_nm", np.nan),
               wide_path=C.resolving_sigma(sigma0, lat.nn_distance_nm) is not None)
    if skip_narrow and not row["wide_path"]:  # the switch acts only on the wide path: equal by construction
        return row
    tables: list = []
    plain = C.find_columns
    C.find_columns = lambda *a, **k: tables.append(plain(*a, **k)) or tables[-1]
    try:
        sa, ta, a, fa = _generic(image, px, truth, False, tables)
        sb, tb, b, fb = _generic(image, px, truth, True, tables)
    except InputError as err:  # a refusal is the same either way (the switch acts after the detection)
        row["refused"] = str(err)[:120]
        return row
    finally:
        C.find_columns = plain
    gains, losses = _changes(truth, a, b, fa, fb, detail)
    for name, sc, table in (("off", sa, a), ("on", sb, b)):  # imgwide5's census classes of the misses
        near = cKDTree(table[["x_nm", "y_nm"]].to_numpy()).query(sc.missed[["x_nm", "y_nm"]].to_numpy())[0]
        row[f"missed_mislocalised_{name}"] = int(((near >= 0.07) & (near <= 0.12)).sum())
    row.update(recall_off=sa.recall, recall_on=sb.recall, precision_off=sa.precision, precision_on=sb.precision,
               rms_pm_off=sa.rms_pm, rms_pm_on=sb.rms_pm, false_off=len(sa.false), false_on=len(sb.false),
               missed_off=len(sa.missed), missed_on=len(sb.missed), gains=gains, losses=losses,
               moved_reports=int(np.sum(np.hypot(b.x_nm - a.x_nm, b.y_nm - a.y_nm) > 1e-9)) if len(a) == len(b) else -1,
               seconds_off=ta, seconds_on=tb)
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default=None, help="half-open ranges A:B, comma-separated")
    p.add_argument("--seed-list", default=None, help="seeds, comma-separated")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--detail", action="store_true")
    p.add_argument("--skip-narrow", action="store_true", help="no analysis of a draw off the wide path")
    a = p.parse_args(argv)
    seeds = ([int(v) for v in a.seed_list.split(",")] if a.seed_list else
             [s for r in a.seeds.split(",") for s in range(*(int(v) for v in r.split(":")))])
    rows = []
    for seed in seeds:
        rows.append(one(seed, a.detail, a.skip_narrow))
        r = rows[-1]
        pd.DataFrame(rows).to_csv(a.out, index=False, float_format="%.6g")
        if "recall_on" not in r:
            print(f"[{len(rows)}/{len(seeds)}] {seed} wide {r['wide_path']} {r.get('refused', '')}", flush=True)
            continue
        print(f"[{len(rows)}/{len(seeds)}] {seed} wide {r['wide_path']} recall {r['recall_off']:.4f} -> "
              f"{r['recall_on']:.4f} precision {r['precision_off']:.4f} -> {r['precision_on']:.4f} rms "
              f"{r['rms_pm_off']:.2f} -> {r['rms_pm_on']:.2f} pm", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
