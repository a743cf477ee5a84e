#!/usr/bin/env python
"""A whole range's rows with a switch on from a screen (helper tomoenv3, docs/validation.md "tomoenv3"): the base rows
of the draws whose envelope the switch leaves the same (every later step and score is then the base's), the screen's
rows of the others (``switched`` 1), and the share table of both::

    python scripts/tomoenv3_compose.py BASE.csv OUT.csv SCREENED_SEEDS_A:B CHANGED1.csv [CHANGED2.csv ...]

Only the seeds in A:B that some screen covered are kept (``*_screen.csv`` beside each CHANGED file lists them).
"""
import sys
from pathlib import Path

import pandas as pd


def shares(d: pd.DataFrame) -> dict:
    cvf, w = d.cvf_rel_err_max.dropna(), d.width_err_max_voxels.dropna()
    n = lambda col: f"{int((d[col] > 0).sum())} · {int(d[col].sum())}"  # noqa: E731
    return {"draws": len(d), "particle count exact": round(d.particles_exact.mean(), 2),
            "crack count exact": round(d.cracks_exact.mean(), 2),
            "crack count exact per particle": round(d.cracks_exact_per_particle.mean(), 2),
            "crack count exact in view": round(d.cracks_exact_in_view.mean(), 2),
            "no pore called a crack": round((d.pores_as_cracks == 0).mean(), 2),
            "cvf within 10 %": f"{(cvf.abs() <= 0.1).mean():.2f} ({len(cvf)})",
            "width within 1 voxel": f"{(w.abs() <= 1).mean():.2f} ({len(w)})",
            "false cracks": int(d.cracks_false.sum()), "cracks found / truth": f"{int(d.n_cracks_found.sum())} / {int(d.n_cracks_truth.sum())}",
            "missed outside envelope": n("missed_outside_envelope"), "dropped": n("missed_dropped"),
            "as pores": n("missed_as_pore"), "in crossings": n("missed_in_crossing"), "not dark": n("missed_not_dark"),
            "one crack as two sheets": n("cracks_split"), "particles merged": n("particles_merged"),
            "particles split": n("particles_split")}


def main(argv: list[str]) -> int:
    base = pd.read_csv(argv[0]).set_index("seed")
    a, b = (int(v) for v in argv[2].split(":"))
    screened, changed = set(), []
    for f in argv[3:]:
        screened |= set(pd.read_csv(Path(f).with_name(Path(f).stem + "_screen.csv")).seed)
        if Path(f).exists() and Path(f).stat().st_size:
            changed.append(pd.read_csv(f).set_index("seed"))
    seeds = sorted(s for s in screened if a <= s < b)
    new = base.loc[seeds].copy()
    new["switched"] = 0
    for c in changed:
        for s in c.index.intersection(seeds):
            new.loc[s, base.columns.intersection(c.columns)] = c.loc[s, base.columns.intersection(c.columns)]
            new.loc[s, "switched"] = 1
    new.reset_index().to_csv(argv[1], index=False)
    table = pd.DataFrame({"base": shares(base.loc[seeds]), "switch on": shares(new)})
    print(table.to_string())
    up = [s for s in seeds if new.loc[s, "cracks_exact"] > base.loc[s, "cracks_exact"]]
    down = [s for s in seeds if new.loc[s, "cracks_exact"] < base.loc[s, "cracks_exact"]]
    print("crack count exact: better", up, "worse", down)
    for col, lim in (("cvf_rel_err_max", 0.1), ("width_err_max_voxels", 1.0)):
        ok0 = base.loc[seeds, col].abs() <= lim
        ok1 = new[col].abs() <= lim
        print(col, "better", [s for s in seeds if ok1[s] and not ok0[s]], "worse", [s for s in seeds if ok0[s] and not ok1[s]])
    for col in ("particles_exact", "cracks_exact_per_particle"):
        print(col, "better", [s for s in seeds if new.loc[s, col] > base.loc[s, col]],
              "worse", [s for s in seeds if new.loc[s, col] < base.loc[s, col]])
    print("false cracks", [s for s in seeds if new.loc[s, "cracks_false"] > base.loc[s, "cracks_false"]],
          "pores as cracks", [s for s in seeds if new.loc[s, "pores_as_cracks"] > base.loc[s, "pores_as_cracks"]])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
