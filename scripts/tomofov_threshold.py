#!/usr/bin/env python
"""The measured crack's share outside the field of view against its truth crack's, and the in-view crack counts at
candidate thresholds on the measured share (issue 20, helper tomofov). Per projection draw: the validator's analysis
(library defaults, as ``validate_tomo_draws.py`` runs it); the truth cracks in view at ``fov.MAX_OUTSIDE_SHARE``
(0.5, the brief's "mostly inside"); the measured sheets in view where their share is under each candidate::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src .venv/bin/python scripts/tomofov_threshold.py --seeds 9005,9006 \\
        --out rows.csv --sheets sheets.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

CANDIDATES = (0.5, 0.4, 0.3, 0.25, 0.2, 0.15)


def probe(seed: int) -> tuple[list[dict], list[dict]]:
    """Per candidate: the in-view counts' scores; per measured sheet: its share and its truth crack's share."""
    from validate_tomo_draws import recon_options

    from layerscope.tomo.analysis import TomoOptions, analyse
    from layerscope.tomo.fov import MAX_OUTSIDE_SHARE, truth_outside_shares
    from layerscope.tomo.phantom import draw_volume, random_phantom
    from layerscope.tomo.scoring import _particle_scores, sheet_matches

    ph = random_phantom(seed)
    res = analyse(draw_volume(ph), TomoOptions(recon=recon_options("default"), allow_limited_angle=True))
    fov = res.summary.get("field_of_view")
    ct = ph.crack_truth
    tshare = truth_outside_shares(ph.cracks, ct["crack"], fov) if len(ct) else np.zeros(0)
    seen = tshare < MAX_OUTSIDE_SHARE
    _, mapping = _particle_scores(res, ph)
    matches = sheet_matches(res, ph)
    share = res.cracks["outside_field_of_view"].to_numpy(float) if len(res.cracks) else np.zeros(0)
    tsh = dict(zip(ct["crack"].astype(int), tshare)) if len(ct) else {}
    sheets = [{"seed": seed, "crack": int(c.crack), "sheet": int(c.sheet), "outside_share": s, "truth_crack": m,
               "truth_outside_share": tsh.get(m, np.nan)} for c, s, (m, _) in zip(res.cracks.itertuples(), share, matches)]
    truth_per = {int(t): int(((ct["particle"] == t) & seen).sum()) if len(ct) else 0 for t in ph.truth["particle"]}
    rows = []
    for cand in CANDIDATES:
        found = share < cand
        per_part = {int(p): int(((res.cracks["particle"] == p).to_numpy() & found).sum()) for p in mapping}
        per = all(sum(per_part[p] for p, q in mapping.items() if q == t) == n for t, n in truth_per.items())
        rows.append({"seed": seed, "size": ph.volume.shape[0], "threshold": cand, "n_cracks_truth": len(ct),
                     "n_cracks_found": len(res.cracks), "n_cracks_truth_in_view": int(seen.sum()),
                     "n_cracks_found_in_view": int(found.sum()), "cracks_exact": int(len(ct) == len(res.cracks)),
                     "cracks_exact_in_view": int(seen.sum() == found.sum()), "cracks_exact_per_particle_in_view": int(per)})
    return rows, sheets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", required=True, help="comma-separated draws (projection draws)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sheets", type=Path, required=True)
    args = parser.parse_args(argv)
    rows, sheets = [], []
    for s in (int(v) for v in args.seeds.split(",")):
        r, sh = probe(s)
        rows += r
        sheets += sh
        pd.DataFrame(rows).to_csv(args.out, index=False)
        pd.DataFrame(sheets).to_csv(args.sheets, index=False)
        print(s, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
