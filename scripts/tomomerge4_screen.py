#!/usr/bin/env python
"""Particle errors of ``segment.particle_labels`` on cached solid masks (issue 20, helper tomomerge4;
docs/validation.md "tomomerge4"): ``LOW_TOPS`` off, at 0.5 without the waist guard (tomomerge3's rule,
``LOW_TOPS_WAIST`` None) and with it (0.5 voxel); one CSV row per draw and setting (``same_as_off``,
``same_as_nowaist``: labels equal bit for bit to the first setting's, to ``nowaist``'s), and the seconds::

    PYTHONPATH=src python scripts/tomomerge4_screen.py --cache /tmp/cache --out rows.csv 9036 9063
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diagnose_tomo_contacts import CLOSE, cached, errors  # noqa: E402

from layerscope.tomo import segment as sg  # noqa: E402

SETTINGS = {"off": (None, None), "nowaist": (0.5, None), "waist": (0.5, 0.5)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seeds", type=int, nargs="+")
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--settings", default="off,nowaist,waist", help="comma-separated names of SETTINGS")
    a = ap.parse_args()
    a.cache.mkdir(parents=True, exist_ok=True)
    new = not a.out.exists()
    with a.out.open("a", newline="") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(["seed", "setting", "truth", "labels", "merges", "splits", "same_as_off", "same_as_nowaist",
                        "seconds", "errors"])
        for s in a.seeds:
            solid, truth = cached(s, a.cache)
            first = nowaist = None
            for name in a.settings.split(","):
                sg.LOW_TOPS, sg.LOW_TOPS_WAIST = SETTINGS[name]
                t0 = time.process_time()
                lab = sg.particle_labels(solid, close_voxels=CLOSE)
                sec = time.process_time() - t0
                first = lab if first is None else first
                nowaist = lab if name == "nowaist" else nowaist
                e = errors(lab, truth, solid)
                w.writerow([s, name, int(truth.max()), int(lab.max()), sum("MERGE" in x for x in e),
                            sum("SPLIT" in x for x in e), int(np.array_equal(lab, first)),
                            "" if nowaist is None else int(np.array_equal(lab, nowaist)), f"{sec:.2f}",
                            " || ".join(e)])
                fh.flush()
                print(s, name, int(lab.max()), sum("MERGE" in x for x in e), sum("SPLIT" in x for x in e),
                      f"{sec:.1f}s", flush=True)


if __name__ == "__main__":
    main()
