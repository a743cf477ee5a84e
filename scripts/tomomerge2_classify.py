#!/usr/bin/env python
"""Class of each merged truth particle of random tomography draws (issue 20, helper tomomerge2; docs/validation.md
"tomomerge2"), on the solid masks cached by ``diagnose_tomo_contacts.py --cache``.

For every truth particle that covers no label of its own: its size and equivalent radius, whether it touches a
volume face, the share of its voxels outside the filled envelope and the share of those on truth cracks (class B:
a face-cut particle whose crack channel stays outside), the distance tops inside it of the truth mask, the solid
and the envelope, the pass (highest envelope distance on its contact with the particle it merged into), the
h-maxima seeds of the envelope inside it, the centre distance over the sum of mean radii, and the truth crack
voxels on the contact::

    PYTHONPATH=src python scripts/tomomerge2_classify.py --cache /tmp/cache 12014 12038
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from layerscope.tomo import segment as sg
from layerscope.tomo.phantom import random_phantom

CLOSE = 3  # the analysis' closing radius for the draws
H = 2.0


def top(edt: np.ndarray, m: np.ndarray) -> float:
    return float(edt[m].max()) if m.any() else 0.0


def classify(seed: int, cache: Path) -> list[str]:
    z = np.load(cache / f"{seed}.npz")
    solid, truth = z["solid"], z["truth"]
    ph = random_phantom(seed)
    crack = ph.cracks > 0
    lab = sg.particle_labels(solid, close_voxels=CLOSE, h_voxels=H)
    env = sg.filled_envelope(sg.closed_envelope(solid, CLOSE))
    e_env = sg.distance_transform_core(env, slice(None))
    e_sol = sg.distance_transform_core(solid, slice(None))
    seeds = sg.joined_tops(sg.h_maxima_core(e_env, H))
    out = []
    owners = {i: np.bincount(truth[lab == i]).argmax() for i in range(1, lab.max() + 1)}
    for t in range(1, int(truth.max()) + 1):
        if t in owners.values():
            continue
        m = truth == t
        into = int(np.bincount(lab[m]).argmax())
        o = int(owners.get(into, 0))
        mo = truth == o
        e_t = sg.distance_transform_core(m, slice(None))
        contact = (ndi.binary_dilation(m) & mo) | (ndi.binary_dilation(mo) & m)
        border = any(m.take(i, axis=a).any() for a in range(3) for i in (0, -1))
        outside = m & ~env
        st, so = ph.specs["particles"][t - 1], ph.specs["particles"][o - 1]
        dist = np.linalg.norm(np.subtract(st.centre, so.centre)) / (np.mean(st.radii) + np.mean(so.radii))
        near = ndi.binary_dilation(contact, iterations=2)
        pas = top(e_env, contact & env)
        out.append(
            f"seed {seed} proj {ph.specs['draw']['projected']} blur {ph.specs['draw']['blur_voxels']:.2f} "
            f"MERGE truth {t} ({m.sum()} vox, r_eq {np.cbrt(3 * m.sum() / 4 / np.pi):.1f}, radii "
            f"{tuple(round(float(r), 1) for r in st.radii)}) into truth {o} ({mo.sum()} vox) border {border} "
            f"outside_env {outside.sum() / m.sum():.3f} (crack {crack[outside].mean() if outside.any() else 0:.2f}) "
            f"tops truth {top(e_t, m):.1f} solid {top(e_sol, m):.1f} env {top(e_env, m):.1f} | other env "
            f"{top(e_env, mo):.1f} pass {pas:.1f} top-pass {top(e_env, m) - pas:.1f} seeds_in {len(np.unique(seeds[m & (seeds > 0)]))} "
            f"centres/sum_r {dist:.2f} contact {contact.sum()} crack_near_contact {(crack & near).sum()} "
            f"crack_in_t {(crack & m).sum()} solid_share_contact {solid[contact].mean():.2f}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seeds", type=int, nargs="+")
    ap.add_argument("--cache", type=Path, required=True)
    a = ap.parse_args()
    for s in a.seeds:
        for line in classify(s, a.cache):
            print(line, flush=True)


if __name__ == "__main__":
    main()
