"""
Voids in an in situ movie with drift
====================================

A synthetic movie (known drift and growing voids) is analysed with
:func:`layerscope.insitu.analyse_series`, the same call as ``layerscope insitu``: drift is
measured against the truth and the voids are tracked over time.
"""

import matplotlib.pyplot as plt
import numpy as np

from layerscope.insitu import InsituOptions, analyse_series
from layerscope.insitu.synthetic import VoidSpec, synthetic_series

series, truth = synthetic_series(shape=(160, 160), n_frames=8, counts_per_pixel=300.0, seed=5,
                                 voids=[VoidSpec(2.0, 2.0, 0.5, growth_nm_per_s=0.06), VoidSpec(4.4, 4.0, 0.7)])
result = analyse_series(series, options=InsituOptions(voids=True))
frames = result.frames
err = np.hypot(frames["drift_x_px"] - truth.drift_x_px, frames["drift_y_px"] - truth.drift_y_px)
print(f"largest drift error: {err.max():.3f} px")

# %%
# Measured drift against the truth (px).
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(frames["time_s"], frames["drift_x_px"], "o", label="x measured")
ax.plot(frames["time_s"], truth.drift_x_px, "-", label="x truth")
ax.plot(frames["time_s"], frames["drift_y_px"], "s", label="y measured")
ax.plot(frames["time_s"], truth.drift_y_px, "--", label="y truth")
ax.set_xlabel("time (s)")
ax.set_ylabel("drift (px)")
ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
