#!/usr/bin/env python
"""Random draws scored with the rows grouped on a straight normal coordinate (``pipeline.BENT_ROWS`` off) and on
the one corrected by the rows' offset field (on) (issue 19, imgbent).

Each seed is scored by :func:`layerscope.simulate.validation.score_draw` with the switch on, while a probe records
whether the offset field is used and changes any column's row against the straight grouping. Only where it does is
the draw scored again with the switch off; elsewhere the two groupings are equal column for column, so the "off" row
is the "on" row (written with ``bent_changed`` False, ``variant`` "on"). Rows: ``variant`` on / off,
``bent_changed``, ``bent_span_spacings`` (the offset field's span, cation spacings)::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src nice -n 10 .venv/bin/python scripts/imgbent_bent_rows_draws.py \\
        --seeds 4000:4200 --out /tmp/imgbent/r4000.csv
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def _probe(state: dict) -> None:
    """``lattice.group_rows`` as the pipeline calls it, recording whether an offset changes the rows."""
    from layerscope.imaging import lattice, pipeline

    plain = lattice.group_rows

    def probe(x, y, **kw):
        rows = plain(x, y, **kw)
        if kw.get("offset_nm") is not None:
            straight = plain(x, y, **{**kw, "offset_nm": None})
            state["changed"] = state["changed"] or not np.array_equal(rows, straight)
            state["span"] = float(np.ptp(kw["offset_nm"])) / kw["row_spacing_nm"]
        return rows

    pipeline._lat.group_rows = probe


def score(seed: int, state: dict) -> list[dict]:
    """The "on" row of ``seed`` and, where the offset field changed a row, the "off" row."""
    from layerscope.imaging import pipeline
    from layerscope.simulate.validation import score_draw

    state.update(changed=False, span=0.0)
    pipeline.BENT_ROWS, pipeline.BENT_MIN_SPAN = True, state["min_span"]
    on = score_draw(seed)
    out = [{"seed": seed, **on, "variant": "on", "bent_changed": state["changed"], "bent_span_spacings": state["span"]}]
    if state["changed"]:
        pipeline.BENT_ROWS = False
        off = score_draw(seed)
        out.append({"seed": seed, **off, "variant": "off", "bent_changed": True, "bent_span_spacings": state["span"]})
        pipeline.BENT_ROWS = True
    return out


#: metric -> target (the validator's, ``scripts/validate_random_draws.py``; spinel's fill as the fill's)
TARGETS = {"generic_recall": 0.99, "generic_precision": 0.99, "phases_recall": 0.99, "phases_precision": 0.99,
           "step_accuracy_layered": 1.0, "fill_accuracy": 0.98, "fill_accuracy_rim": 0.98,
           "fill_accuracy_spinel": 0.98, "twin_exact": 1.0}


def variant_rows(df: pd.DataFrame, floor: float | None) -> pd.DataFrame:
    """One row per seed: with the switch off (``floor`` None), or on with ``BENT_MIN_SPAN`` = ``floor`` (a draw
    whose field spans less keeps its "off" row)."""
    out = []
    for _, g in df.groupby("seed", sort=True):
        on, off = g[g["variant"] == "on"].iloc[0], g[g["variant"] == "off"]
        use_on = floor is not None and on["bent_span_spacings"] >= floor
        out.append(on if (use_on or off.empty) else off.iloc[0])
    return pd.DataFrame(out).reset_index(drop=True)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Share of draws meeting each target (a refusal misses), at >= 1e3 e/A^2 and below, and wrong yes / no."""
    res = {}
    for name, part in (("ge1e3", df[df["dose_e_per_A2"] >= 1e3]), ("lt1e3", df[df["dose_e_per_A2"] < 1e3])):
        for metric, target in TARGETS.items():
            v = part[metric].astype(float)
            met = (v >= target - 1e-12).astype(float)
            met[v.isna()] = np.nan
            refused = part["phases_refused"].astype(bool) if not metric.startswith("generic") \
                else part["generic_refused"].astype(bool)
            met[refused] = 0.0
            res[(name, metric)] = f"{100 * met.mean():.1f} ({int(met.notna().sum())})"
        res[(name, "wrong_yes")] = int(part["fill_wrong_yes"].fillna(0).sum())
        res[(name, "wrong_no")] = int(part["fill_wrong_no"].fillna(0).sum())
    return pd.Series(res)


def _seeds(spec: list[str]) -> list[int]:
    out = []
    for s in spec:
        a, b = s.split(":") if ":" in s else (s, int(s) + 1)
        out.extend(range(int(a), int(b)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", nargs="+", help="A:B ranges or single seeds")
    ap.add_argument("--out", help="CSV of the rows (with --seeds)")
    ap.add_argument("--summary", nargs="+", help="CSVs of earlier runs: the shares meeting each target, off and "
                    "on with the floors of --floors, and the draws whose targets move")
    ap.add_argument("--floors", nargs="+", type=float, default=[0.5, 0.0])
    ap.add_argument("--min-span", type=float, default=0.0,
                    help="pipeline.BENT_MIN_SPAN for the run (default 0: the field is used, and its span recorded, "
                         "on every draw; a draw whose span is below a larger floor keeps its 'off' row)")
    args = ap.parse_args()
    if args.summary:
        df = pd.concat([pd.read_csv(p) for p in args.summary], ignore_index=True)
        off = variant_rows(df, None)
        table = {"off": summary(off)}
        for floor in args.floors:
            on = variant_rows(df, floor)
            table[f"on, floor {floor:g}"] = summary(on)
            cols = list(TARGETS) + ["fill_wrong_yes", "fill_wrong_no", "fill_mae", "phase_accuracy"]
            moved = [s for s, a, b in zip(off["seed"], off[cols].to_numpy(), on[cols].to_numpy())
                     if not np.allclose(a.astype(float), b.astype(float), equal_nan=True)]
            print(f"floor {floor:g}: {len(moved)} draws move:")
            print(pd.concat([off[off["seed"].isin(moved)].assign(v="off"), on[on["seed"].isin(moved)].assign(v="on")])
                  .sort_values(["seed", "v"])[["seed", "v", "dose_e_per_A2", "bent_span_spacings"] + cols]
                  .to_string(index=False))
        print(pd.DataFrame(table).to_string())
        return
    state: dict = {"min_span": args.min_span}
    _probe(state)
    rows, t0 = [], time.perf_counter()
    for i, seed in enumerate(_seeds(args.seeds)):
        rows.extend(score(seed, state))
        print(f"[{i + 1} {time.perf_counter() - t0:.0f} s] seed {seed} changed {state['changed']} "
              f"span {state['span']:.2f}", flush=True)
        pd.DataFrame(rows).to_csv(args.out, index=False, float_format="%.6g")


if __name__ == "__main__":
    main()
