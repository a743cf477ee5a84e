#!/usr/bin/env python
"""What marking the cracks outside the field of view costs (issue 20, helper tomofov): draw 9043 (112^3, projections,
cracks in the corners) analysed once, then ``fov.mark_cracks`` timed alone (CPU s, mean of 5)::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src .venv/bin/python scripts/tomofov_cost.py
"""
import time
from layerscope.tomo.phantom import random_phantom, draw_volume
from layerscope.tomo.analysis import TomoOptions, analyse
from layerscope.tomo import fov as F
ph = random_phantom(9043)   # 9000-9099 projection draw with corner cracks (tomorecon census)
data = draw_volume(ph)
t = time.process_time(); res = analyse(data, TomoOptions()); ta = time.process_time() - t
view = res.summary["field_of_view"]
t = time.process_time()
for _ in range(5):
    F.mark_cracks(res.cracks.drop(columns=["outside_field_of_view", "in_field_of_view"]), res.particles,
                  res.feature_labels, res.particle_labels, view, res.voxel_size_nm)
tm = (time.process_time() - t) / 5
print(ph.volume.shape, len(res.cracks), "analyse CPU s", round(ta, 2), "mark CPU s", round(tm, 4), "share", round(tm / ta, 4))
print(res.cracks[["crack", "sheet", "outside_field_of_view", "in_field_of_view"]].to_string())
print({k: v for k, v in res.summary.items() if k.startswith("n_cracks")})
