#!/usr/bin/env python
"""Screen the independent generator's seeds 1-24 for tied-top joins (helper tomosplit): the analysis stopped at the solid
mask, the seeds counted with and without ``segment.TIED_TOPS``; no join: every number equals main's::

    PYTHONPATH=src python scripts/tomo_tied_tops_independent_screen.py
"""
import sys
sys.path.insert(0, "scripts")
import numpy as np
import layerscope.tomo.analysis as an
import layerscope.tomo.segment as S
import validate_tomo_independent as V
import tomo_tied_tops_pair as P

for seed in range(1, 25):
    vol = V.draw(seed)[0]
    got = {}
    def grab(solid, **kw):
        got.update(solid=solid, kw=kw); raise P._Stop
    real, an.particle_labels = an.particle_labels, grab
    try:
        an.analyse(vol, an.TomoOptions(), voxel_size_nm=V.VOXEL_NM)
    except P._Stop:
        pass
    finally:
        an.particle_labels = real
    env = S.filled_envelope(S.closed_envelope(got["solid"], got["kw"]["close_voxels"]))
    edt = S.distance_transform_core(env, slice(None))
    markers = S.joined_tops(S.h_maxima_core(edt, got["kw"]["h_voxels"]))
    lut = S.tied_tops_lut(edt, markers, got["kw"]["h_voxels"])
    print(seed, "seeds", int(markers.max()), "joins", int(markers.max()) - int(lut.max()), flush=True)
