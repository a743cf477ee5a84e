#!/usr/bin/env python
"""Each draw analysed twice on one grey volume / reconstruction (helper tomocvf7): measure.FIT_BLUR off and on; rows as
scripts/validate_tomo_draws.py writes them (default reconstruction), to OUT_off.csv and OUT_fit.csv::

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/tomo_fitblur_pair.py 5000:5100 /tmp/x/pair
"""
import sys, time
import numpy as np, pandas as pd
import layerscope.tomo.measure as M
from layerscope.tomo.analysis import TomoOptions, analyse
from layerscope.tomo.phantom import draw_volume, random_phantom
from layerscope.tomo.scoring import score_draw

def draw(seed):
    ph = random_phantom(seed)
    d = dict(ph.specs["draw"])
    d["n_ellipsoids"] = sum(len(set(p.radii)) > 1 for p in ph.specs["particles"])
    d["n_through_cracks"] = sum(np.isinf(c.radius_voxels) for c in ph.specs["cracks"])
    d["n_cracks_surface"] = int(ph.crack_truth["reaches_surface"].sum()) if len(ph.crack_truth) else 0
    d["crack_width_min_voxels"] = float(ph.crack_truth["width_voxels"].min()) if len(ph.crack_truth) else float("nan")
    data = draw_volume(ph)
    out = {}
    for name, fit in (("off", False), ("fit", True)):
        M.FIT_BLUR = fit
        t0 = time.process_time()
        try:
            res = analyse(data, TomoOptions())
            out[name] = {**d, "seconds": time.process_time() - t0, "error": "", **score_draw(res, ph)}
        except Exception as err:
            out[name] = {**d, "error": f"{type(err).__name__}: {err}"[:200], "seconds": time.process_time() - t0}
    return out

if __name__ == "__main__":
    a, b = map(int, sys.argv[1].split(":"))
    rows = {"off": [], "fit": []}
    for s in range(a, b):
        o = draw(s)
        for k in rows:
            rows[k].append(o[k]); pd.DataFrame(rows[k]).to_csv(f"{sys.argv[2]}_{k}.csv", index=False)
        print(s, round(o["off"].get("cvf_rel_err_max", np.nan), 3), round(o["fit"].get("cvf_rel_err_max", np.nan), 3),
              round(o["off"]["seconds"], 1), round(o["fit"]["seconds"], 1), flush=True)
