#!/usr/bin/env python
"""Tables of ``scripts/tomo_wedge_probe.py``'s CSVs (tomowedge2; not a library module): the share of truth cracks
found by 10-degree bins of their normal's angle to the missing wedge (3-D,
:func:`layerscope.tomo.wedge.wedge_angle_deg`, and in-plane), and the crack-count scores restricted to the cracks at least M deg outside the wedge, for a few M
(the truth by its normal, the measured sheets by theirs, as ``scoring.VISIBLE_TARGETS``)::

    .venv/bin/python scripts/tomo_wedge_table.py docs/data/tomowedge2_probe_0_49_tilt140 ... \
        [--full=docs/data/tomowedge2_probe_0_49_tilt180]

``--full=PREFIX``: the probe's CSVs of the same draws over their own 0-180 deg, whose found column is set beside.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

BINS = np.arange(-40.0, 100.0, 10.0)
FINE = np.arange(-20.0, 25.0, 5.0)


def _load(prefixes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    got = [[pd.read_csv(f"{p}_{k}.csv") for p in prefixes] for k in ("truth", "sheets", "draws")]
    return tuple(pd.concat(g, ignore_index=True) for g in got)


def found_by_bin(truth: pd.DataFrame, column: str, bins=BINS) -> str:
    """Markdown rows: bin, truth cracks, found, share, median width (voxels); with ``found_180`` (the same cracks
    in the draws' own 0-180 deg series), its share too."""
    full = "found_180" in truth
    lines = [f"| {column} (deg) | cracks | found | share | median width (vox) |"
             + (" found at 0-180 deg |" if full else ""),
             "|---|---|---|---|---|" + ("---|" if full else "")]
    cut = pd.cut(truth[column], bins, right=False)
    for b, g in truth.groupby(cut, observed=True):
        lines.append(f"| {b.left:+.0f} to {b.right:+.0f} | {len(g)} | {int(g['found'].sum())} | "
                     f"{g['found'].mean():.2f} | {g['width_voxels'].median():.2f} |"
                     + (f" {g['found_180'].mean():.2f} ({int(g['found_180'].notna().sum())}) |" if full else ""))
    return "\n".join(lines)


def restricted(truth: pd.DataFrame, sheets: pd.DataFrame, draws: pd.DataFrame, margin: float) -> dict:
    """Shares of draws with the visible crack count exact (total, per truth particle) at ``margin`` deg."""
    ok = draws[draws["error"].isna() | (draws["error"].astype(str) == "")] if "error" in draws else draws
    exact, per = [], []
    for seed in ok["seed"]:
        t = truth[truth["seed"] == seed]
        s = sheets[sheets["seed"] == seed]
        tv, sv = t[t["wedge_angle_deg"] >= margin], s[s["wedge_angle_deg"] >= margin]
        exact.append(len(tv) == len(sv))
        n_parts = int(ok.loc[ok["seed"] == seed, "n_particles_truth"].iloc[0])
        per.append(all((tv["particle"] == p).sum() == (sv["truth_particle"] == p).sum() for p in range(1, n_parts + 1)))
    return {"cracks_exact_visible": float(np.mean(exact)), "cracks_exact_per_particle_visible": float(np.mean(per)),
            "draws": len(exact), "truth_visible": int((truth["wedge_angle_deg"] >= margin).sum()),
            "truth_visible_found": int(((truth["wedge_angle_deg"] >= margin) & truth["found"]).sum())}


def changed_draws(truth, sheets, draws, margin: float) -> str:
    """The draws whose crack count is exact only when restricted (better) or only unrestricted (worse)."""
    better, worse = [], []
    for r in draws.itertuples():
        t, s = truth[truth["seed"] == r.seed], sheets[sheets["seed"] == r.seed]
        vis = int((t["wedge_angle_deg"] >= margin).sum() == (s["wedge_angle_deg"] >= margin).sum())
        (better if vis > r.cracks_exact else worse if vis < r.cracks_exact else []).append(str(r.seed))
    return f"margin {margin:g}: count exact only restricted: {', '.join(better)}; only plain: {', '.join(worse)}"


def main(argv: list[str]) -> int:
    full = [a[len("--full="):] for a in argv if a.startswith("--full=")]
    argv = [a for a in argv if not a.startswith("--full=")]
    truth, sheets, draws = _load(argv)
    if full:  # the same truth cracks in the draws' own 0-180 deg series: found there or not
        f = pd.concat([pd.read_csv(f"{p}_truth.csv") for p in full], ignore_index=True)
        truth = truth.merge(f[["seed", "crack", "found"]].rename(columns={"found": "found_180"}), on=["seed", "crack"],
                            how="left")
    print(f"{len(draws)} draws, {len(truth)} truth cracks, {int(truth['found'].sum())} found, {len(sheets)} sheets\n")
    for column in ("wedge_angle_deg", "inplane_wedge_deg"):
        print(found_by_bin(truth, column) + "\n")
    print(found_by_bin(truth, "wedge_angle_deg", FINE) + "\n")
    print("| rule | visible truth cracks | of them found | cracks exact | cracks exact per particle |")
    print("|---|---|---|---|---|")
    ok = draws[draws["error"].isna() | (draws["error"].astype(str) == "")] if "error" in draws else draws
    print(f"| plain counts | {len(truth)} | {int(truth['found'].sum())} | {ok['cracks_exact'].mean():.2f} | "
          f"{ok['cracks_exact_per_particle'].mean():.2f} |")
    for m in (-90.0, 0.0, 5.0, 10.0, 15.0, 20.0, 30.0):
        r = restricted(truth, sheets, draws, m)
        print(f"| wedge angle >= {m:g} | {r['truth_visible']} | {r['truth_visible_found']} | "
              f"{r['cracks_exact_visible']:.2f} | {r['cracks_exact_per_particle_visible']:.2f} |")
    for m in (0.0, 10.0):
        print(changed_draws(truth, sheets, ok, m))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
