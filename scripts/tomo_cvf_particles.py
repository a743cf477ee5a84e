#!/usr/bin/env python
"""Crack volume fraction of random draws, particle by particle: is the error in the crack volume or the particle's?

For each cracked truth particle of each draw (:func:`layerscope.tomo.phantom.random_phantom`, analysed as in
``scripts/validate_tomo_draws.py``) one line: the relative error of the crack volume fraction (``err``) and its
two factors, the crack volume (``num``: measured / truth crack voxels - 1) and the particle volume (``den``:
envelope voxels of the result particles mapped to it / truth particle voxels, cracks and pores included, - 1);
the envelope's voxels outside the truth particle and the truth particle's outside the envelope (of them truth
crack voxels: the mouths the envelope misses), with the drawn blur, noise, input kind and crack widths::

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/tomo_cvf_particles.py 6 12 13 17
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd


def particle_rows(seed: int) -> list[dict]:
    from layerscope.tomo.analysis import TomoOptions, analyse
    from layerscope.tomo.phantom import draw_volume, random_phantom
    from layerscope.tomo.scoring import _particle_scores

    ph = random_phantom(seed)
    d = ph.specs["draw"]
    res = analyse(draw_volume(ph), TomoOptions())
    _, mapping = _particle_scores(res, ph)
    parts = res.particles.set_index("particle")
    rows = []
    for t in ph.truth[ph.truth["crack_count"] > 0].itertuples():
        mine = [p for p, q in mapping.items() if q == t.particle]
        env, tp = np.isin(res.particle_labels, mine), ph.particles == t.particle
        tc = tp & (ph.cracks > 0)
        pv = float(sum(parts.loc[p, "volume_voxels"] for p in mine))
        cv = float(sum(parts.loc[p, "volume_voxels"] * parts.loc[p, "crack_volume_fraction"] for p in mine))
        widths = ph.crack_truth.loc[ph.crack_truth["particle"] == t.particle, "width_voxels"]
        rows.append({"seed": seed, "particle": t.particle, "projected": d["projected"], "blur": round(d["blur_voxels"], 2),
                     "noise": round(d["noise"], 2), "binder": d["binder"], "widths": ",".join(f"{w:.1f}" for w in widths),
                     "truth_voxels": int(tp.sum()), "err": (cv / pv) / (tc.sum() / tp.sum()) - 1 if pv else -1.0,
                     "num": cv / tc.sum() - 1, "den": pv / tp.sum() - 1, "envelope_not_truth": int((env & ~tp).sum()),
                     "truth_not_envelope": int((tp & ~env).sum()), "crack_not_envelope": int((tc & ~env).sum())})
    return rows


if __name__ == "__main__":
    table = pd.DataFrame([r for s in sys.argv[1:] for r in particle_rows(int(s))])
    print(table.round(3).to_string(index=False))
