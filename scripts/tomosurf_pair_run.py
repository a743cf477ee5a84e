"""Seeds A:B: the draw analysed with the wider closing; where it changes the filled envelope, also without it
(WIDER_CLOSE_VOXELS=0) on the same volume. python pair_run.py A B NEW.csv BASE.csv"""
import sys, time
import numpy as np
import pandas as pd
from scipy import ndimage as ndi
from layerscope.tomo import segment
from layerscope.tomo.analysis import TomoOptions, analyse
from layerscope.tomo.phantom import draw_volume, random_phantom
from layerscope.tomo.scoring import score_draw

orig = segment.closed_envelope
state = {}


def ce(solid, close_voxels):
    new = orig(solid, close_voxels)
    segment.WIDER_CLOSE_VOXELS = 0
    try:
        old = orig(solid, close_voxels)
    finally:
        segment.WIDER_CLOSE_VOXELS = 1
    state["changed"] = not np.array_equal(ndi.binary_fill_holes(new), ndi.binary_fill_holes(old))
    return new if state["changed"] else old


def scored(ph, data, d):
    t0 = time.process_time()
    try:
        res = analyse(data, TomoOptions())
    except Exception as err:
        return {**d, "error": f"{type(err).__name__}: {err}"[:200]}
    return {**d, "error": "", "seconds": time.process_time() - t0, **score_draw(res, ph)}


a, b, out_new, out_base = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
new_rows, base_rows = [], []
for s in range(a, b):
    ph = random_phantom(s)
    d = dict(ph.specs["draw"])
    data = draw_volume(ph)
    segment.closed_envelope = ce
    r = scored(ph, data, d)
    r["unchanged"] = not state.get("changed", True)
    new_rows.append(r)
    segment.closed_envelope = orig
    if not r["unchanged"]:
        segment.WIDER_CLOSE_VOXELS = 0
        base_rows.append(scored(ph, data, d))
        segment.WIDER_CLOSE_VOXELS = 1
    print(s, 'unchanged' if r["unchanged"] else f"particles {r.get('n_particles_found')}/{r.get('n_particles_truth')} cracks {r.get('n_cracks_found')}/{r.get('n_cracks_truth')} base cracks {base_rows[-1].get('n_cracks_found')} {r.get('error','')}", flush=True)
    pd.DataFrame(new_rows).to_csv(out_new, index=False)
    pd.DataFrame(base_rows).to_csv(out_base, index=False)
