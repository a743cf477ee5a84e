#!/usr/bin/env python
"""Screen the independent generator's seeds 1-24 for tied-top joins (helper tomosplit): the analysis stopped at the solid
mask, the seeds counted with and without ``segment.TIED_TOPS``; no join: every number equals main's::

    PYTHONPATH=src python scripts/tomo_tied_tops_independent_screen.py
"""
import sys
sys.path.insert(0, "scripts")
import layerscope.tomo.segment as S
import validate_tomo_independent as V
from tomo_probe import particle_inputs

for seed in range(1, 25):
    solid, kw = particle_inputs(V.draw(seed)[0], voxel_size_nm=V.VOXEL_NM)
    env = S.filled_envelope(S.closed_envelope(solid, kw["close_voxels"]))
    edt = S.distance_transform_core(env, slice(None))
    markers = S.joined_tops(S.h_maxima_core(edt, kw["h_voxels"]))
    lut = S.tied_tops_lut(edt, markers, kw["h_voxels"])
    print(seed, "seeds", int(markers.max()), "joins", int(markers.max()) - int(lut.max()), flush=True)
