#!/usr/bin/env python
"""Particle labels of tomography draws where the tied-tops join fires, saved for a comparison of two code trees
(issue 20, helper tomotie): the analysis run to its solid mask (``tomo_probe.particle_inputs``), then
``segment.particle_labels`` with the analysis's arguments. Run once per tree (``PYTHONPATH`` on its ``src``) with
``--save``, then ``--compare`` the two files: equal labels draw by draw, and the seeds joined::

    PYTHONPATH=<main>/src python scripts/tomo_tied_tops_same_labels.py --save /tmp/main.npz
    PYTHONPATH=src python scripts/tomo_tied_tops_same_labels.py --save /tmp/new.npz --compare /tmp/main.npz

Default draws: those where ``segment.TIED_TOPS`` joined a seed on the tuning ranges (docs/data/tomosplit_tied_tops_*_on.csv).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

JOIN_DRAWS = [0, 46, 2000, 2012, 2039, 6001, 6005, 6017, 6037, 6038, 6058, 7008, 7011, 7021, 7052, 7053, 7069,
              9016, 9045, 9051, 9054, 9079]


def labels_of(seed: int) -> np.ndarray:
    """``particle_labels`` of draw ``seed``'s solid mask, as the analysis calls it."""
    import layerscope.tomo.segment as sg
    from layerscope.tomo.phantom import draw_volume, random_phantom
    from tomo_probe import particle_inputs

    solid, kw = particle_inputs(draw_volume(random_phantom(seed)))
    return sg.particle_labels(solid, **kw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="*", default=JOIN_DRAWS)
    ap.add_argument("--save", type=Path, required=True)
    ap.add_argument("--compare", type=Path, default=None)
    args = ap.parse_args()
    got = {}
    for seed in args.seeds:
        t = time.process_time()
        got[str(seed)] = labels_of(seed)
        print(f"{seed}: {int(got[str(seed)].max())} particles ({time.process_time() - t:.1f} s CPU)", flush=True)
    np.savez_compressed(args.save, **got)
    if args.compare:
        other = np.load(args.compare)
        same = [s for s in got if s in other and np.array_equal(other[s], got[s])]
        print(f"equal labels: {len(same)} of {len(got)} draws; differ: {sorted(set(got) - set(same), key=int)}")


if __name__ == "__main__":
    main()
