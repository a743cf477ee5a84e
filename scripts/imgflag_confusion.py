#!/usr/bin/env python
"""Confusion tables of the ``dim_columns_below_limit`` flag against the recall target (issue 19, imgflag).

Reads rows of ``scripts/imgflag_limit_table.py``; per finder (``generic``: ``layerscope columns``; ``phases``) and per
flag level, over the draws at or above ``--min-dose`` (1e3 e/A^2): how many draws the flag would fire on that meet
recall >= 0.99 (needless flags) and that do not (right flags), and how many below the level fail it (missed)::

    .venv/bin/python scripts/imgflag_confusion.py docs/data/imgflag_limits_wide38.csv --levels 0.3,0.4,0.5,0.6
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

TARGET = 0.99


def confusion(rows: pd.DataFrame, finder: str, level: float, *, target_col: str) -> dict:
    lim = rows[f"{finder}_limit_fraction_of_median_column"].to_numpy(dtype=float)
    rec = rows[target_col].to_numpy(dtype=float)
    ok = np.isfinite(lim) & np.isfinite(rec)
    flag, meet = lim[ok] > level, rec[ok] >= TARGET - 1e-9
    seeds = rows["seed"].to_numpy()[ok]
    return {"finder": finder, "target": target_col, "level": level, "draws": int(ok.sum()),
            "flag_fails": int(np.sum(flag & ~meet)), "flag_meets": int(np.sum(flag & meet)),
            "quiet_fails": int(np.sum(~flag & ~meet)), "quiet_meets": int(np.sum(~flag & meet)),
            "flag_meets_seeds": " ".join(map(str, seeds[flag & meet])),
            "quiet_fails_seeds": " ".join(map(str, seeds[~flag & ~meet]))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("rows", nargs="+")
    ap.add_argument("--levels", default="0.3,0.35,0.4,0.45,0.5,0.55,0.6,0.7")
    ap.add_argument("--min-dose", type=float, default=1e3)
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    rows = pd.concat([pd.read_csv(p) for p in a.rows], ignore_index=True).drop_duplicates("seed")
    rows = rows[rows["dose_e_per_A2"] >= a.min_dose]
    out = pd.DataFrame([confusion(rows, f, float(lv), target_col=f"{f}{t}") for f in ("generic", "phases")
                        for t in ("_recall", "_dim_recall") for lv in a.levels.split(",")])
    print(out.drop(columns=["flag_meets_seeds", "quiet_fails_seeds"]).to_string(index=False))
    if a.out:
        out.to_csv(a.out, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
