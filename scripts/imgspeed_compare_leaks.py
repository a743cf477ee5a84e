"""One random draw through map_phases twice: with ``pipeline._lattice_leaks`` as it is (each site's window read from
the unit Gaussians that reach it, imgspeed) and with the leaks read on full rendered images (imgwide's form, defined
here); prints one JSON line: the largest differences of interlayers.csv's numbers and of the sites' mixing index,
whether every non-numeric interlayer column (decisions, labels) is equal, and the CPU of each leaks call.

    PYTHONPATH=src OMP_NUM_THREADS=1 python scripts/imgspeed_compare_leaks.py SEED

docs/data/imgspeed_wide_draws_local_vs_rendered_leaks.csv: the wide-probe draws of 0-99 and 2000-2199 (docs/validation.md,
imgspeed).
"""
import sys, time, json, numpy as np, pandas as pd
from layerscope.imaging import pipeline as pl
from layerscope.imaging.pipeline import map_phases
from layerscope.simulate.draws import draw_scene
from layerscope.simulate.incoherent import render_gaussians
from layerscope.simulate.validation import _interlayer_scores, segment_truth

def rendered(shape, px, *, sigma_nm, radius_nm, tm_xy, tm_found, li_xy):
    def read(at, where):
        img = render_gaussians(where[:, 0], where[:, 1], np.ones(len(where)), shape=shape, pixel_size_nm=px, sigma_nm=sigma_nm)
        return pl._site_intensities(img, px, pd.DataFrame({"x_nm": at[:, 0], "y_nm": at[:, 1]}), sigma_nm=sigma_nm, radius_nm=radius_nm)[0]
    return read(tm_xy, tm_xy), read(li_xy, tm_xy[tm_found]), read(li_xy, li_xy)

seed = int(sys.argv[1])
image, px, truth = draw_scene(seed)
p = truth.parameters
local = pl._lattice_leaks
out, calls = {}, []
for name, fn in (("local", local), ("rendered", rendered)):
    def timed(*a, fn=fn, **k):
        c = time.process_time(); r = fn(*a, **k); calls.append((name, time.process_time() - c)); return r
    pl._lattice_leaks = timed
    pm = map_phases(image, pixel_size_nm=px, zone=p["zone"], composition=p["chemistry"])
    out[name] = (pm.interlayers, pm.columns, _interlayer_scores(segment_truth(pm.columns, pm.interlayers, truth)))
a, b = out["local"], out["rendered"]
ia, ib = a[0], b[0]
num = [c for c in ia.columns if ia[c].dtype.kind == "f"]
dec = [c for c in ia.columns if ia[c].dtype.kind not in "f"]
same_shape = ia.shape == ib.shape
res = dict(seed=seed, probe=round(p.get("probe_fwhm_nm", np.nan), 3), leaks_cpu=calls, segments=len(ia), same_shape=same_shape,
           fill_maxdiff=float(np.nanmax(np.abs(ia["li_fill"] - ib["li_fill"]))) if same_shape and len(ia) else None,
           num_maxdiff=float(np.nanmax(np.abs(ia[num].to_numpy(float) - ib[num].to_numpy(float)))) if same_shape and len(ia) else None,
           decisions_equal=bool(same_shape and ia[dec].astype(str).equals(ib[dec].astype(str))),
           mixing_maxdiff=float(np.nanmax(np.abs(a[1]["mixing"].to_numpy(float) - b[1]["mixing"].to_numpy(float)))) if len(a[1]) == len(b[1]) else None,
           scores_equal=a[2] == b[2], fill_accuracy=(a[2].get("fill_accuracy"), b[2].get("fill_accuracy")))
print(json.dumps(res, default=str))
