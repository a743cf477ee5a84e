#!/usr/bin/env python
"""Each draw's detection limit against the recall of its dim visible columns (issue 19, imgflag; a diagnostic).

Per draw the validator's row (:func:`layerscope.simulate.validation.score_draw`, unchanged), and beside it what
``layerscope columns`` (``generic.analyse``) and ``layerscope phases`` (``map_phases``) report as the image's detection
limit (summary.json ``detection_limit``: the fraction, the width, spacing, noise and height it came from) and whether
they flag ``dim_columns_below_limit``, and, from the truth, the recall of the *dim visible* columns: the scorer's
visible cation columns (expected intensity >= 0.4 of the median TM column's, at least the validator's margin inside
the field) below ``DIM_BELOW`` (0.75) of it -- the half-occupied spinel and mixed Li-layer columns -- matched within the
scorer's 0.07 nm. Uses the truth: a diagnostic, not a method::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src nice -n 10 .venv/bin/python scripts/imgflag_limit_table.py \\
        --seed-list 5138,112 --out /tmp/imgflag_limits.csv
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

DIM_BELOW = 0.75


def _dim_recall(found: pd.DataFrame, truth, extent) -> tuple[int, float]:
    """(number, recall) of the dim visible interior truth columns (module docstring)."""
    from layerscope.imaging import scoring
    from layerscope.simulate.validation import MARGIN_NM

    sc = scoring.score_columns(found, truth.columns, extent_nm=extent, margin_nm=MARGIN_NM)
    cat = truth.columns[truth.columns["kind"].isin(["TM", "Li"])]
    cat = cat[cat["in_image"]] if "in_image" in cat else cat
    ref = float(np.median(cat.loc[cat["kind"] == "TM", "expected_intensity"]))
    rel = cat["expected_intensity"].to_numpy() / ref
    dim = (rel >= 0.4) & (rel < DIM_BELOW) & scoring._interior(cat, extent, MARGIN_NM)
    miss = sc.missed
    n_miss = int(np.sum(miss["expected_intensity"].to_numpy() / ref < DIM_BELOW)) if len(miss) else 0
    n = int(dim.sum())
    return n, (1.0 - n_miss / n) if n else float("nan")


def _capture(state: dict) -> None:
    """``generic.analyse`` and ``pipeline.map_phases`` wrapped: each result's limit, flag and dim recall kept."""
    from layerscope.imaging import generic, pipeline

    plain_g, plain_p = generic.analyse, pipeline.map_phases

    def g(image, *a, **kw):
        res = plain_g(image, *a, **kw)
        state["generic"] = (res.summary().get("detection_limit"), [f["code"] for f in res.flags], res.columns)
        return res

    def p(image, **kw):
        pm = plain_p(image, **kw)
        state["phases"] = (pm.summary.get("detection_limit"), [f["code"] for f in pm.summary["flags"]], pm.columns)
        return pm

    generic.analyse, pipeline.map_phases = g, p


def run(seeds: list[int], out: str) -> None:
    from layerscope.simulate import validation

    state: dict = {}
    _capture(state)
    plain_draw = validation.draw_scene

    def draw(seed, ranges=None):
        image, px, truth = plain_draw(seed, ranges)
        state.update(truth=truth, extent=(image.shape[1] * px, image.shape[0] * px))
        return image, px, truth

    validation.draw_scene = draw
    rows, t0 = [], time.perf_counter()
    for seed in seeds:
        for k in ("generic", "phases"):
            state.pop(k, None)
        row = validation.score_draw(seed)
        p = state["truth"].parameters
        row["sigma_true_nm"] = float(np.hypot(p["probe_fwhm_nm"], p["source_fwhm_nm"]) / (2 * np.sqrt(2 * np.log(2))))
        for k in ("generic", "phases"):
            if k not in state:
                continue
            limit, codes, cols = state[k]
            for name, v in (limit or {}).items():
                row[f"{k}_limit_{name}"] = v
            row[f"{k}_flag"] = "dim_columns_below_limit" in codes
            row[f"{k}_dim_n"], row[f"{k}_dim_recall"] = _dim_recall(cols, state["truth"], state["extent"])
        rows.append(row)
        print(f"[{len(rows)}/{len(seeds)} {time.perf_counter() - t0:.0f} s] {seed} dose {row['dose_e_per_A2']:.3g} "
              f"limit {row.get('generic_limit_fraction_of_median_column')} / "
              f"{row.get('phases_limit_fraction_of_median_column')} recall {row.get('generic_recall', np.nan):.3f} / "
              f"{row.get('phases_recall', np.nan):.3f}", flush=True)
        pd.DataFrame(rows).to_csv(out, index=False, float_format="%.6g")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed-list", help="comma-separated seeds")
    ap.add_argument("--seeds", help="a:b, the seeds a to b-1")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    seeds = [int(s) for s in a.seed_list.split(",")] if a.seed_list else list(range(*map(int, a.seeds.split(":"))))
    run(seeds, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
