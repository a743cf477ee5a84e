#!/usr/bin/env python
"""Particle errors of ``segment.particle_labels`` on cached solid masks (issue 20, helper tomomerge3;
docs/validation.md "tomomerge3"): ``LOW_TOPS`` off, at 0.5 with the neck read against the low label's own radius
(tomomerge2) and against the smaller label's (``LOW_TOPS_SMALLER``); one CSV row per draw and setting (``same_as_off``,
``same_as_own``: labels equal bit for bit to the first setting's, to ``own``'s)::

    PYTHONPATH=src python scripts/tomomerge3_screen.py --cache /tmp/cache --out rows.csv 9036 9063
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diagnose_tomo_contacts import CLOSE, cached, errors  # noqa: E402

from layerscope.tomo import segment as sg  # noqa: E402

SETTINGS = {"off": (None, True), "own": (0.5, False), "smaller": (0.5, True)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seeds", type=int, nargs="+")
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--settings", default="off,own,smaller", help="comma-separated names of SETTINGS")
    a = ap.parse_args()
    a.cache.mkdir(parents=True, exist_ok=True)
    new = not a.out.exists()
    with a.out.open("a", newline="") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(["seed", "setting", "truth", "labels", "merges", "splits", "same_as_off", "same_as_own", "errors"])
        for s in a.seeds:
            solid, truth = cached(s, a.cache)
            off = own = None
            for name in a.settings.split(","):
                low, smaller = SETTINGS[name]
                sg.LOW_TOPS, sg.LOW_TOPS_SMALLER = low, smaller
                lab = sg.particle_labels(solid, close_voxels=CLOSE)
                off = lab if off is None else off
                own = lab if name == "own" else own
                e = errors(lab, truth, solid)
                w.writerow([s, name, int(truth.max()), int(lab.max()), sum("MERGE" in x for x in e),
                            sum("SPLIT" in x for x in e), int(np.array_equal(lab, off)),
                            "" if own is None else int(np.array_equal(lab, own)), " || ".join(e)])
                fh.flush()
                print(s, name, int(lab.max()), sum("MERGE" in x for x in e), sum("SPLIT" in x for x in e), flush=True)


if __name__ == "__main__":
    main()
