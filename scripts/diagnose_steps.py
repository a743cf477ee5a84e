#!/usr/bin/env python
"""Where the interlayer steps of the random draws are missed: one line per segment not right.

For each seed (:func:`layerscope.simulate.draws.draw_scene`, the phase pipeline with the drawn
chemistry and zone, segments matched to the truth by :func:`layerscope.simulate.validation.segment_truth`)
every scored ``interlayers`` segment whose step is ``unknown``, wrong, or that sits off a Li layer
is listed with its gap, position, sites, step source, the TM columns of the layers above and below
within one spacing of it, its own TM pairs, the steps of the segments beside it in the same gap
(``step@distance_nm``) and a reason::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/diagnose_steps.py --seeds 0:100 --out /tmp/steps_why.csv

``out_of_field`` counts the segment's sites (matched to a truth Li-layer site within 0.07 nm) whose
truth TM layer above or below has no site inside the image within :data:`layerscope.simulate.validation.IN_FIELD_NM` (a field
edge: the image does not hold their step, whatever the reason says). Reasons: ``TM layer
above/below outside the field``, ``no TM columns above/below here`` (void, crack, thin edge, a
tilted field edge), ``no TM pair, not extended`` (see :func:`layerscope.imaging.interlayers.extend_steps`),
``run on an off-layer TM column`` (:func:`~layerscope.imaging.interlayers.drop_off_layer_steps`),
``short run the stacking beside it contradicts`` (:func:`~layerscope.imaging.interlayers.drop_unsupported_runs`),
``measured wrong``, ``off the Li layer``. Tuning seeds only (0-99, docs/validation.md).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd


def _reason(s, n_up: int, n_dn: int, n_pair: int, layers: list[int], off_layer: bool) -> str:
    if not s.on_li_layer:
        return "off the Li layer"
    if s.step != "unknown":
        return "measured wrong" if s.step_source == "measured" else "extended wrong"
    if s.upper_tm_layer < layers[0] or s.lower_tm_layer > layers[-1]:
        return "TM layer " + ("above" if s.upper_tm_layer < layers[0] else "below") + " outside the field"
    if n_up == 0 or n_dn == 0:
        return "no TM columns " + ("above" if n_up == 0 else "below") + " here"
    if not n_pair:
        return "no TM pair, not extended"
    return "run on an off-layer TM column" if off_layer else "short run the stacking beside it contradicts"


def _out_of_field(xy: np.ndarray, truth) -> int:
    """How many of the Li-layer sites at ``xy`` (nm) have a truth TM layer above or below outside the image."""
    from scipy.spatial import cKDTree

    from layerscope.simulate.validation import MATCH_NM, out_of_field

    s = truth.sites
    d, i = cKDTree(s[["x_nm", "y_nm"]].to_numpy()).query(xy) if len(xy) else (np.empty(0), np.empty(0, int))
    li = s.iloc[i[d < MATCH_NM]]
    return int(out_of_field(li[li["kind"] == "Li"], truth).sum())


def diagnose(seed: int) -> pd.DataFrame:
    """The segments of draw ``seed`` whose step is not right, with the reason (module docstring)."""
    from layerscope.errors import InputError
    from layerscope.imaging.pipeline import map_phases
    from layerscope.simulate.draws import draw_scene

    image, px, truth = draw_scene(seed)
    p = truth.parameters
    try:
        pm = map_phases(image, pixel_size_nm=px, zone=p["zone"], composition=p["chemistry"])
    except InputError:
        return pd.DataFrame()
    return diagnose_table(seed, pm.columns, pm.interlayers, truth)


def diagnose_table(seed: int, c: pd.DataFrame, interlayers: pd.DataFrame, truth) -> pd.DataFrame:
    """:func:`diagnose` from a column table and its interlayer table (e.g. rebuilt from a stored table)."""
    from layerscope.imaging.interlayers import _off_layer
    from layerscope.simulate.validation import segment_truth

    p = truth.parameters
    seg = segment_truth(c, interlayers, truth)
    seg = seg[seg["n_matched"] > 0]
    tm, li = c[c["kind"] == "TM"], c[(c["kind"] == "Li") & (c["site"] == "octahedral")]
    d_t = float(np.nanmedian(c["inplane_nm"]))
    layers = sorted(tm["layer"].unique())
    mid = tm.groupby("layer")["v_nm"].median()
    off = _off_layer(tm, abs(float(np.median(np.diff(mid.to_numpy()) / np.diff(mid.index.to_numpy())))))
    rows = []
    for s in seg.itertuples():
        if s.on_li_layer and (s.step == s.truth_relation or s.truth_relation not in ("O3", "O3'", "O1")):
            continue
        near = tm["u_nm"].between(s.u_start_nm - d_t, s.u_end_nm + d_t)
        n_up = int((near & (tm["layer"] == s.upper_tm_layer)).sum())
        n_dn = int((near & (tm["layer"] == s.lower_tm_layer)).sum())
        sites = li[(li["layer"] == s.li_layer) & li["u_nm"].between(s.u_start_nm, s.u_end_nm)]
        n_pair = int((sites["pair"] >= 0).sum())
        bad = np.concatenate([off.get(int(s.upper_tm_layer), np.empty(0)), off.get(int(s.lower_tm_layer), np.empty(0))])
        off_layer = bool(np.any(np.abs(bad[:, None] - sites["u_nm"].to_numpy()[None, :]) <= 0.5 * d_t))
        same = seg[(seg["li_layer"] == s.li_layer) & (seg["segment"] != s.segment)]
        left = same[same["u_end_nm"] < s.u_start_nm].sort_values("u_end_nm").tail(1)
        right = same[same["u_start_nm"] > s.u_end_nm].sort_values("u_start_nm").head(1)
        rows.append({
            "seed": seed, "dose_e_per_A2": p["dose_e_per_A2"], "li_layer": s.li_layer, "segment": s.segment,
            "n_sites": s.n_sites, "u_start_nm": round(s.u_start_nm, 2), "u_end_nm": round(s.u_end_nm, 2),
            "step": s.step, "step_source": s.step_source, "truth": s.truth_relation, "truth_phase": s.truth_phase,
            "rim": s.rim, "tm_above": n_up, "tm_below": n_dn, "own_pairs": n_pair,
            "out_of_field": _out_of_field(sites[["x_nm", "y_nm"]].to_numpy(), truth),
            "left": f"{left['step'].iloc[0]}@{s.u_start_nm - left['u_end_nm'].iloc[0]:.2f}" if len(left) else "",
            "right": f"{right['step'].iloc[0]}@{right['u_start_nm'].iloc[0] - s.u_end_nm:.2f}" if len(right) else "",
            "reason": _reason(s, n_up, n_dn, n_pair, layers, off_layer),
        })
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0:100", help="half-open range A:B (tuning seeds 0-99)")
    ap.add_argument("--out", help="CSV of the segments listed")
    args = ap.parse_args(argv)
    a, b = (int(v) for v in args.seeds.split(":"))
    table = pd.concat([diagnose(seed) for seed in range(a, b)], ignore_index=True)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_rows", 1000):
        print(table.to_string() if len(table) else "no segment missed")
        if len(table):
            print(table.groupby("reason").agg(segments=("n_sites", "size"), sites=("n_sites", "sum"),
                                              out_of_field=("out_of_field", "sum")))
    if args.out:
        table.to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
