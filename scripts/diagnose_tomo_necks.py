#!/usr/bin/env python
"""Neck ratios of the watershed faces on random tomography draws (issue 20, tomoparts; docs/validation.md "tomoparts").

For each draw the analysis is stopped after the solid mask; the particles are labelled without the neck join
(``segment.NECK_RATIO = 0``) and every face between two labels is printed with its neck ratio (face disc radius
/ equivalent-sphere radius of the smaller label, :func:`layerscope.tomo.segment.neck_roots`), whether the two
labels lie mostly on one truth particle, the share of the face along dark voxels (``one``: a split) or on two (``two``: a contact), and whether that truth
particle touches the volume border::

    PYTHONPATH=src python scripts/diagnose_tomo_necks.py 0 50 > necks.txt   # seeds 0..49
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import layerscope.tomo.segment as sg
from layerscope.tomo.phantom import draw_volume, random_phantom

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tomo_probe import particle_inputs  # noqa: E402


def necks(seed: int) -> list[str]:
    ph = random_phantom(seed)
    solid, kw = particle_inputs(draw_volume(ph))
    keep, sg.NECK_RATIO = sg.NECK_RATIO, 0
    lab = sg.particle_labels(solid, **kw)
    sg.NECK_RATIO = keep
    sizes = np.bincount(lab.ravel())
    truth = {i: int(np.bincount(ph.particles[lab == i]).argmax()) for i in range(1, lab.max() + 1)}
    out = []
    env = lab > 0
    for (a, b), m in sg.label_faces(lab, env & ~solid).items():
        t = truth[a]
        border = any(np.take(ph.particles == t, i, axis=ax).any() for ax in range(3) for i in (0, -1))
        ratio = sg.face_radius(m) / np.cbrt(3 * min(sizes[a], sizes[b]) / (4 * np.pi))
        out.append(f"{seed} {'one' if truth[a] == truth[b] else 'two'} {ratio:.3f} dark={m[10] / m[0]:.2f} border={border} "
                   f"sizes={sizes[a]},{sizes[b]} proj={ph.specs['draw']['projected']}")
    return out


if __name__ == "__main__":
    lo, hi = int(sys.argv[1]), int(sys.argv[2])
    for s in range(lo, hi):
        for line in necks(s):
            print(line, flush=True)
