#!/usr/bin/env python
"""Which truth cracks a projection draw misses, and where they lie against the field of view (issue 20, helper
tomorecon): each draw analysed as the validator does (default ``TomoOptions``), the truth cracks matched by no
measured sheet (:func:`layerscope.tomo.scoring.sheet_matches`) listed with their ``outside_share`` and
``axis_px_min`` (:func:`tomorecon_fov.crack_fov`). One CSV row per truth crack (``missed`` True/False)::

    .venv/bin/python scripts/tomorecon_missed.py 9017 9051 --out missed.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tomorecon_fov import crack_fov  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("seeds", type=int, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from layerscope.tomo.analysis import TomoOptions, analyse
    from layerscope.tomo.phantom import draw_volume, random_phantom
    from layerscope.tomo.scoring import sheet_matches

    rows = []
    for s in args.seeds:
        ph = random_phantom(s)
        res = analyse(draw_volume(ph), TomoOptions())
        matched = {int(c) for c, _ in sheet_matches(res, ph)}
        rows += [{"seed": s, "size": ph.volume.shape[0], **r, "missed": r["crack"] not in matched} for r in crack_fov(ph)]
        df = pd.DataFrame(rows)
        df.to_csv(args.out, index=False)
        print(df[(df.seed == s) & df.missed].round(2).to_string(index=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
