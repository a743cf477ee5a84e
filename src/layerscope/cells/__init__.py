"""Battery cycling: cycler files to one tidy table, per-cycle metrics, dQ/dV, GITT and rate capability.

Cathode conventions: positive current = charge = delithiation of the working electrode. Specific
quantities need the active mass given explicitly; the mass stored by vendor software is never used.
"""

from layerscope.cells.dqdv import (
    NI_RICH_NMC_CHARGE_PEAKS,
    NI_RICH_NMC_DISCHARGE_PEAKS,
    DQDVCurve,
    dqdv,
    dqdv_by_cycle,
    find_dqdv_peaks,
    track_peaks,
)
from layerscope.cells.gitt import find_pulses, gitt_diffusion
from layerscope.cells.metrics import cycle_metrics, half_cycle_metrics, pair_cycles
from layerscope.cells.options import CyclingOptions
from layerscope.cells.rate import c_rates, rate_capability
from layerscope.cells.readers import CyclerData, detect_layout, read_cycler

__all__ = [
    "CyclerData",
    "read_cycler",
    "detect_layout",
    "cycle_metrics",
    "half_cycle_metrics",
    "pair_cycles",
    "dqdv",
    "DQDVCurve",
    "find_dqdv_peaks",
    "dqdv_by_cycle",
    "track_peaks",
    "NI_RICH_NMC_CHARGE_PEAKS",
    "NI_RICH_NMC_DISCHARGE_PEAKS",
    "gitt_diffusion",
    "find_pulses",
    "rate_capability",
    "c_rates",
    "CyclingOptions",
]
