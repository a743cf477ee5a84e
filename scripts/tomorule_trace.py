#!/usr/bin/env python
"""The measured crack sheets of tomography draws against the truth, with ``segment.LOW_TOPS`` as given (issue 20,
helper tomorule; docs/validation.md "tomorule"): per sheet its particle (label and majority truth particle), feature,
voxels, normal and the truth crack it is matched to (``scoring.sheet_matches``; 0: false), and each truth crack's
particle, voxels and the sheets matched to it::

    PYTHONPATH=src python scripts/tomorule_trace.py --low-tops 0.5 13004
"""

from __future__ import annotations

import argparse

import numpy as np

from layerscope.tomo import scoring
from layerscope.tomo import segment as sg
from layerscope.tomo.analysis import TomoOptions, analyse
from layerscope.tomo.phantom import draw_volume, random_phantom


def trace(seed: int) -> None:
    """Print the sheets and truth cracks of draw ``seed``."""
    ph = random_phantom(seed)
    res = analyse(draw_volume(ph), TomoOptions())
    lab = np.asarray(res.particle_labels)
    truth_of = {i: scoring._majority(lab, ph.particles, i) for i in range(1, int(lab.max()) + 1)}
    print(f"seed {seed} LOW_TOPS {sg.LOW_TOPS}: labels -> truth particles {truth_of}")
    matches = scoring.sheet_matches(res, ph)
    for c, (best, angle) in zip(res.cracks.itertuples(), matches):
        f = np.asarray(res.feature_labels) == c.crack
        owners = np.unique(lab[f], return_counts=True)
        print(f"  sheet feature {c.crack}.{c.sheet} particle {getattr(c, 'particle', '?')} voxels {c.segmented_voxels} "
              f"normal ({c.normal_z:+.2f},{c.normal_y:+.2f},{c.normal_x:+.2f}) feature labels {dict(zip(*owners))} "
              f"-> truth crack {best} angle {angle:.1f}")
    for t in ph.crack_truth.itertuples():
        m = ph.cracks == t.crack
        print(f"  truth crack {t.crack} particle {t.particle} voxels {int(m.sum())} normal "
              f"({t.normal_z:+.2f},{t.normal_y:+.2f},{t.normal_x:+.2f}) width {t.width_voxels:.1f} sheets "
              f"{[i for i, (b, _) in enumerate(matches) if b == t.crack]} feature ids "
              f"{dict(zip(*np.unique(np.asarray(res.feature_labels)[m], return_counts=True)))}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seeds", type=int, nargs="+")
    ap.add_argument("--low-tops", type=float, default=0.0, help="segment.LOW_TOPS (0: off)")
    a = ap.parse_args()
    sg.LOW_TOPS = a.low_tops or None
    for s in a.seeds:
        trace(s)


if __name__ == "__main__":
    main()
