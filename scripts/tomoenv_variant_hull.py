"""Measurement only, not adopted (docs/validation.md "tomoenv"): the draw validator with each particle's label
grown by the dark voxels deeper than DEPTH voxels inside its convex hull (voxels claimed by two hulls are left out),
in memory only. With ``all`` the grown labels are the particles everywhere (table, scoring); else only for the features.

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 10 python scripts/tomoenv_variant_hull.py 1.5 all --seeds 0:50 --jobs 2 --out X.csv
"""
import sys, runpy
import numpy as np
from scipy import ndimage as ndi
import layerscope.tomo.analysis as an
from layerscope.tomo.segment import particle_labels, solid_mask
from layerscope.tomo.measure import measure_features, particle_table

DEPTH = float(sys.argv.pop(1))
ALL = sys.argv.pop(1) == 'all'

def hull_labels(plab, solid, depth):
    from skimage.morphology import convex_hull_image
    out = plab.copy()
    claim = np.zeros(plab.shape, np.int32)
    for pid, sl in enumerate(ndi.find_objects(plab), 1):
        if sl is None:
            continue
        sl = tuple(slice(max(0, s.start - 1), min(n, s.stop + 1)) for s, n in zip(sl, plab.shape))
        hull = convex_hull_image(plab[sl] == pid)
        if depth > 0:
            hull = ndi.distance_transform_edt(np.pad(hull, 1))[1:-1, 1:-1, 1:-1] > depth
        add = hull & (plab[sl] == 0) & ~solid[sl]
        c = claim[sl]
        c[add & (c == 0)] = pid
        c[add & (c > 0) & (c != pid)] = -1
    out[(claim > 0)] = claim[claim > 0]
    return out

def measure(vol, options, close, flags, scheduler, scratch_dir):
    solid, levels = solid_mask(vol.data, smooth_voxels=0.0 if vol.labels else options.smooth_voxels,
                               threshold=options.threshold, particle_label=options.particle_label)
    an._check_contrast(levels, vol, flags)
    plab = particle_labels(solid, close_voxels=close, split=options.split, h_voxels=options.split_h_voxels,
                           min_voxels=options.min_particle_voxels)
    grey = None if vol.labels else np.asarray(vol.data, np.float32)
    wide = hull_labels(plab, solid, DEPTH)
    cracks, pores, feats, kinds = measure_features(solid, wide, options, vol.voxel_size_nm, close, grey, levels)
    if ALL:
        plab = wide
    return particle_table(plab, cracks, pores, vol.voxel_size_nm), cracks, pores, plab, feats, kinds, levels

an._measure_in_memory = measure
sys.argv[0] = 'scripts/validate_tomo_draws.py'
runpy.run_path('scripts/validate_tomo_draws.py', run_name='__main__')
