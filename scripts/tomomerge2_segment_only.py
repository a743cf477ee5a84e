#!/usr/bin/env python
"""Particle errors of ``segment.particle_labels`` on cached solid masks with ``segment.LOW_TOPS`` off and on (issue 20,
helper tomomerge2; docs/validation.md "tomomerge2"): merged / split truth particles per draw, segmentation only::

    PYTHONPATH=src python scripts/tomomerge2_segment_only.py --cache /tmp/cache --low 0.5 12014 12038
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diagnose_tomo_contacts import CLOSE, cached, errors  # noqa: E402

from layerscope.tomo import segment as sg  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seeds", type=int, nargs="+")
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--low", type=float, default=0.5)
    a = ap.parse_args()
    a.cache.mkdir(parents=True, exist_ok=True)
    for s in a.seeds:
        solid, truth = cached(s, a.cache)
        row = [f"seed {s} truth {int(truth.max())}"]
        for low in (None, a.low):
            sg.LOW_TOPS = low
            lab = sg.particle_labels(solid, close_voxels=CLOSE)
            e = errors(lab, truth, solid)
            row.append(f"low {low}: labels {int(lab.max())} merges {sum('MERGE' in x for x in e)} "
                       f"splits {sum('SPLIT' in x for x in e)}")
        print(" | ".join(row), flush=True)


if __name__ == "__main__":
    main()
