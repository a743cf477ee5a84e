#!/usr/bin/env python
"""Each pair of adjacent watershed labels of a tomography draw (no neck join): truth particles under them, neck ratio,
dark share, each label's distance top and the saddle between them; seeds as main made them, without the tie join
(helper tomosplit, docs/validation.md "tomosplit: tied tops")::

    PYTHONPATH=src python scripts/diagnose_tomo_tops.py 9016 9045
"""
import sys
sys.path.insert(0, "scripts")
import numpy as np
import layerscope.tomo.segment as sg
from layerscope.tomo.phantom import draw_volume, random_phantom
from tomo_probe import particle_inputs

def solid_of(ph):
    return particle_inputs(draw_volume(ph))

def trace(seed):
    ph = random_phantom(seed)
    solid, kw = solid_of(ph)
    env = sg.filled_envelope(sg.closed_envelope(solid, kw["close_voxels"]))
    edt = sg.distance_transform_core(env, slice(None))
    markers = sg.joined_tops(sg.h_maxima_core(edt, kw["h_voxels"]))
    from skimage.segmentation import watershed
    lab = watershed(-edt, markers, mask=env)
    sizes = np.bincount(lab.ravel())
    truth = {i: int(np.bincount(ph.particles[lab == i]).argmax()) for i in range(1, lab.max() + 1)}
    dark = env & ~solid
    print(f"== {seed} shape={solid.shape} spec={ph.specs['draw'].get('noise')} proj={ph.specs['draw']['projected']} kw={kw}")
    for i, p in enumerate(ph.specs["particles"], 1):
        print(f"  truth {i}: c={p.centre} r={p.radii} vox={(ph.particles==i).sum()} cracks={[ (c.normal, c.width_voxels, c.radius_voxels) for c in ph.specs['cracks'] if c.particle==i]}")
    for (a, b), m in sg.label_faces(lab, dark).items():
        ratio = sg.face_radius(m) / np.cbrt(3 * min(sizes[a], sizes[b]) / (4 * np.pi))
        pa, pb = edt[lab == a].max(), edt[lab == b].max()
        # saddle: max over face pairs of min edt
        sad = 0.0
        for ax in range(3):
            lo = tuple(slice(0, -1) if k == ax else slice(None) for k in range(3))
            hi = tuple(slice(1, None) if k == ax else slice(None) for k in range(3))
            A, B = lab[lo], lab[hi]
            sel = ((A == a) & (B == b)) | ((A == b) & (B == a))
            if sel.any():
                sad = max(sad, np.minimum(edt[lo], edt[hi])[sel].max())
        cen = m[1:4] / m[0]
        print(f"  face {a}-{b} truth {truth[a]}-{truth[b]} {'ONE' if truth[a]==truth[b] else 'two'} ratio={ratio:.3f} dark={m[10]/m[0]:.2f} n={m[0]:.0f} sizes={sizes[a]},{sizes[b]} peaks={pa:.2f},{pb:.2f} saddle={sad:.2f} dyn={min(pa,pb)-sad:.2f} centre={np.round(cen,1)}")

for s in map(int, sys.argv[1:]):
    trace(s)
