#!/usr/bin/env python
"""Projection draws analysed as their grey twin (issue 20, helper tomorecon): the same phantom through
:func:`~layerscope.tomo.phantom.draw_volume` as a grey volume with the draw's own ``noise`` and ``blur_voxels``
(drawn for every draw, used only by the grey ones), scored like the validator's rows, so that a projection
draw's failure can be told from the phantom's own difficulty::

    .venv/bin/python scripts/tomorecon_twin.py 9003 9017 --out twin.csv
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd


def twin(ph):
    from layerscope.tomo.phantom import draw_volume

    return draw_volume(replace(ph, specs={**ph.specs, "draw": {**ph.specs["draw"], "projected": False}}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("seeds", type=int, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from layerscope.tomo.scoring import run_draw

    rows = []
    for s in args.seeds:
        rows.append({**run_draw(s, prepare=twin), "twin": True})
        r = rows[-1]
        print(s, "cracks", r.get("n_cracks_found"), "/", r.get("n_cracks_truth"), "exact", r.get("cracks_exact"),
              "pp", r.get("cracks_exact_per_particle"), "cvf", r.get("cvf_rel_err_max"), flush=True)
        pd.DataFrame(rows).to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
