"""Measurement only, not adopted (docs/validation.md "tomomouth"): tomomouth's read-below-the-shell applied to pores only (a feature read as a pore is read again
on its voxels >= 2 voxels deep; taken when that is a crack). Patches measure._sheets at run time (no library code); the options and the draws are the validator's::

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 10 python scripts/tomomouth_variant_pore.py --seeds 0:50 --jobs 1 --out X.csv
"""
import sys, runpy
import numpy as np
import layerscope.tomo.measure as me
from layerscope.tomo.segment import feature_shape
orig = me._sheets
def below(m, coords, options, depth, shell=me.SURFACE_SHELL, share=0.5):
    core = depth >= shell
    if core.all() or core.sum() < max(30, share * len(coords)):
        return None
    cm = me._part_mask(m, core)
    inner = orig(cm, coords[core], feature_shape(coords[core]), options, depth[core], joined=False)
    if inner is None:
        return None
    out = np.empty(len(coords), np.int64)
    out[core] = inner
    out[~core] = me._nearest_plane(coords[~core], coords[core], inner, range(int(inner.max()) + 1))
    return out
def patched(m, coords, sh, options, depth=None, *, joined=True):
    r = orig(m, coords, sh, options, depth, joined=joined)
    if r is None and joined and depth is not None:
        return below(m, coords, options, depth)
    return r
me._sheets = patched
sys.argv[0] = 'scripts/validate_tomo_draws.py'
runpy.run_path('scripts/validate_tomo_draws.py', run_name='__main__')
