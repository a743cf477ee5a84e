#!/usr/bin/env python
"""Truth cracks of a tomography draw with under half of their dark voxels in a particle envelope (missed "outside the
envelope"): width, disc, share inside, depth of the voxels outside (helper tomosplit, docs/validation.md "tomosplit:
tied tops")::

    PYTHONPATH=src python scripts/diagnose_tomo_outside.py 9047 9053
"""
import sys
import numpy as np
from scipy import ndimage as ndi
from layerscope.tomo.analysis import TomoOptions, analyse
from layerscope.tomo.phantom import draw_volume, random_phantom
from layerscope.tomo.scoring import score_draw, _majority
from layerscope.tomo.segment import solid_mask
for seed in map(int, sys.argv[1:]):
    ph = random_phantom(seed)
    res = analyse(draw_volume(ph), TomoOptions())
    solid = solid_mask(res.volume, smooth_voxels=res.options.smooth_voxels, threshold=res.options.threshold)[0]
    env = res.particle_labels > 0
    shape = np.array(ph.cracks.shape)
    # distance (voxels) into the truth particle union from outside
    depth = ndi.distance_transform_edt(ph.particles > 0)
    for tid in range(1, len(ph.crack_truth) + 1):
        m = ph.cracks == tid
        dark = m & ~solid
        if not dark.any(): continue
        inside = (res.particle_labels[dark] > 0).mean()
        if inside >= 0.5: continue
        spec = ph.specs["cracks"][tid - 1]
        p = ph.specs["particles"][spec.particle - 1]
        coords = np.argwhere(m)
        face = bool(((coords == 0) | (coords == shape - 1)).any())
        out = dark & ~env
        pe = ph.particles == spec.particle
        edge = any(np.take(pe, i, axis=ax).any() for ax in range(3) for i in (0, -1))
        print(f"{seed} crack {tid} particle {spec.particle} r={p.radii} w={spec.width_voxels} disc={spec.radius_voxels} "
              f"vox={m.sum()} dark={dark.sum()} inside_env={inside:.2f} outside_depth_med={np.median(depth[out]) if out.any() else -1:.1f} "
              f"max_depth_crack={depth[m].max():.1f} crack_on_volume_face={face} particle_on_face={edge} "
              f"particle_found={int(res.particle_labels[pe].max() > 0)} envelope_share_of_particle={(env & pe).sum() / pe.sum():.2f}", flush=True)
