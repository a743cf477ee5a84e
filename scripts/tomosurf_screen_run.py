"""run_draw on seeds A:B, skipping (row 'unchanged') draws whose filled envelope the wider closing leaves as it was.
python screen_run.py A B OUT.csv"""
import sys
import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from layerscope.tomo import segment
from layerscope.tomo.scoring import run_draw

orig = segment.closed_envelope


class Unchanged(Exception):
    pass


def ce(solid, close_voxels):
    new = orig(solid, close_voxels)
    segment.WIDER_CLOSE_VOXELS = 0
    try:
        old = orig(solid, close_voxels)
    finally:
        segment.WIDER_CLOSE_VOXELS = 1
    if np.array_equal(ndi.binary_fill_holes(new), ndi.binary_fill_holes(old)):
        raise Unchanged("unchanged")
    return new


segment.closed_envelope = ce
a, b, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rows = []
for s in range(a, b):
    r = run_draw(s)
    r["unchanged"] = "Unchanged" in str(r.get("error", ""))
    rows.append(r)
    print(s, 'unchanged' if r["unchanged"] else f"particles {r.get('n_particles_found')}/{r.get('n_particles_truth')} cracks {r.get('n_cracks_found')}/{r.get('n_cracks_truth')} {r.get('error','')}", flush=True)
    pd.DataFrame(rows).to_csv(out, index=False)
