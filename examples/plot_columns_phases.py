"""
Atom columns and phases on a simulated image
=============================================

A LiCoO2 [100] stack with an O3 matrix, an O1 block and a rock-salt surface layer is simulated
with the fast HAADF model (known truth), then mapped with
:func:`layerscope.imaging.pipeline.map_phases`: the same call as ``layerscope phases``.
"""

import numpy as np

from layerscope.crystal.scenes import Block, stack
from layerscope.imaging.pipeline import map_phases
from layerscope.imaging.report import overlay_figure
from layerscope.simulate import degrade, simulate_haadf

atoms = stack([Block("rock_salt", 3, li_fraction=0.0), Block("O3", 9), Block("O1", 4, li_fraction=0.0),
               Block("O3", 9)], composition="LiCoO2", zone="100", width_nm=4.0, thickness_nm=5.0, seed=1)
sim = simulate_haadf(atoms, pixel_size_nm=0.012, probe_fwhm_nm=0.08)
image = np.asarray(degrade(sim.image, dose_e_per_A2=1e4, seed=2).data, dtype=float)

pm = map_phases(image, pixel_size_nm=0.012, zone="100", composition="LiCoO2")
print(pm.summary["phase_fractions"])
print(pm.domains[["phase", "n_tm_layers"]])

# %%
# The overlay marks every column with its phase label (x to the right, y down, scale bar in nm).
fig = overlay_figure(image, pm.columns, 0.012, phase_map=pm.phase_map, map_pixel_nm=pm.phase_map_pixel_nm)
