#!/usr/bin/env python
"""Target shares of two validator CSVs and the draws whose scored columns differ (issue 20, helper tomomerge2)::

    python scripts/tomomerge2_compare.py OFF.csv ON.csv
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

COLS = ["particles_exact", "particles_split", "particles_merged", "n_particles_found", "n_cracks_found",
        "cracks_exact", "cracks_exact_per_particle", "pores_as_cracks", "cvf_rel_err_max", "width_err_max_voxels",
        "missed_dropped", "missed_outside_envelope", "cracks_missed", "cracks_false", "cracks_split"]


def shares(df: pd.DataFrame) -> dict:
    ok = df[df["error"].isna()] if "error" in df else df
    cvf, w = ok["cvf_rel_err_max"].dropna(), ok["width_err_max_voxels"].dropna()
    return {"n": len(ok), "particles exact": ok["particles_exact"].mean(), "cracks exact": ok["cracks_exact"].mean(),
            "per particle": ok["cracks_exact_per_particle"].mean(), "no pore as crack": (ok["pores_as_cracks"] == 0).mean(),
            "cvf 10%": f"{(cvf.abs() <= 0.10).mean():.2f} ({len(cvf)})",
            "width 1 vox": f"{(w.abs() <= 1.0).mean():.2f} ({len(w)})",
            "draws split": int((ok["particles_split"] > 0).sum()), "draws merged": int((ok["particles_merged"] > 0).sum())}


def main(a: str, b: str) -> None:
    off, on = pd.read_csv(a).set_index("seed"), pd.read_csv(b).set_index("seed")
    seeds = off.index.intersection(on.index)
    off, on = off.loc[seeds], on.loc[seeds]
    for name, df in (("off", off), ("on", on)):
        print(name, {k: (round(v, 2) if isinstance(v, float) else v) for k, v in shares(df.reset_index()).items()})
    for s in seeds:
        x, y = off.loc[s, COLS], on.loc[s, COLS]
        diff = [f"{c} {x[c]} -> {y[c]}" for c in COLS
                if not (x[c] == y[c] or (pd.isna(x[c]) and pd.isna(y[c])) or
                        (isinstance(x[c], float) and isinstance(y[c], float) and np.isclose(x[c], y[c], atol=1e-9)))]
        if diff:
            print(s, "; ".join(diff))


if __name__ == "__main__":
    main(*sys.argv[1:3])
