#!/usr/bin/env python
"""Why particles are split or merged on random tomography draws (issue 20, tomoparts): one line per error.

For every pair of watershed labels that share a face and lie on one truth particle (a split) or every truth
particle that covers no label of its own (a merge), prints the distance-map tops of both sides, the pass
(highest distance on their shared face), the face area, the share of the face on truth crack voxels, whether the
truth particle touches the volume border and whether it is an ellipsoid::

    PYTHONPATH=src python scripts/diagnose_tomo_parts.py 0 8 16
"""

from __future__ import annotations

import sys

import numpy as np
from scipy import ndimage as ndi

from layerscope.tomo.analysis import TomoOptions, analyse
from layerscope.tomo.phantom import draw_volume, random_phantom
from layerscope.tomo.segment import closed_envelope, distance_transform_core, solid_mask


def _face(lab, a, b):
    """Voxels of label ``a`` with a 6-neighbour in label ``b``."""
    nb = ndi.binary_dilation(lab == b) & (lab == a)
    return nb


def _truth_info(ph, tid):
    m = ph.particles == tid
    border = any(m.take(0, axis=ax).any() or m.take(-1, axis=ax).any() for ax in range(3))
    spec = ph.specs["particles"][tid - 1]
    return border, len(set(spec.radii)) > 1, spec.radii


def diagnose(seed: int) -> list[str]:
    ph = random_phantom(seed)
    res = analyse(draw_volume(ph), TomoOptions())
    lab = res.particle_labels
    solid = solid_mask(res.volume, smooth_voxels=res.options.smooth_voxels)[0]
    close = int(np.ceil(6.0 / 2))
    env = ndi.binary_fill_holes(closed_envelope(solid, close))
    edt = distance_transform_core(env, slice(None))
    crack = ndi.binary_dilation(ph.cracks > 0)
    maj = {}
    for r in range(1, lab.max() + 1):
        hit = ph.particles[lab == r]
        maj[r] = int(np.bincount(hit).argmax()) if hit.size else 0
    out = []
    for a in range(1, lab.max() + 1):
        for b in range(a + 1, lab.max() + 1):
            f = _face(lab, a, b) | _face(lab, b, a)
            if not f.any():
                continue
            ta, tb = maj[a], maj[b]
            kind = "SPLIT" if ta == tb else "pair"
            border, ell, radii = _truth_info(ph, ta) if ta else (None, None, None)
            top_a, top_b, pas = edt[lab == a].max(), edt[lab == b].max(), edt[f].max()
            na, nb = int((lab == a).sum()), int((lab == b).sum())
            out.append(f"seed {seed} {kind} sizes {na},{nb} labels {a},{b} truth {ta},{tb} tops {top_a:.1f}/{top_b:.1f} pass {pas:.1f} "
                       f"ratio {pas / min(top_a, top_b):.2f} face {f.sum() // 2} "
                       f"face_on_crack {crack[f].mean():.2f} face_dark {(~solid[f]).mean():.2f} border {border} "
                       f"ellipsoid {ell} radii {tuple(round(x, 1) for x in radii) if radii else None}")
    for tid in range(1, len(ph.truth) + 1):
        if tid in maj.values():
            continue
        m = ph.particles == tid
        hit = lab[m]
        r = int(np.bincount(hit).argmax())
        others = [t for t, q in [(maj[r], r)]]
        other = others[0]
        tm, to = (ph.particles == tid) & env, (ph.particles == other) & env
        f = (ndi.binary_dilation(tm) & to) | (ndi.binary_dilation(to) & tm)
        pas = edt[f].max() if f.any() else 0.0
        out.append(f"seed {seed} MERGE truth {tid} into label {r} (truth {other}) tops {edt[tm].max():.1f}/"
                   f"{edt[to].max():.1f} pass {pas:.1f} ratio {pas / max(1e-9, min(edt[tm].max(), edt[to].max())):.2f} "
                   f"face {f.sum() // 2} border {_truth_info(ph, tid)[0]} proj {ph.specs['draw']['projected']}")
    return out


if __name__ == "__main__":
    for s in sys.argv[1:]:
        for line in diagnose(int(s)):
            print(line, flush=True)
