"""Powder diffraction of layered oxides and the thermal kinetics of their oxygen release.

Angles in degrees 2-theta, d-spacings and lattice parameters in Angstrom, crystallite sizes in nm,
temperatures in K, activation energies in kJ/mol (and eV).
"""

from layerscope.diffraction.kinetics import (
    ActivationEnergy,
    ThermalCurve,
    kissinger,
    ozawa,
    peak_temperature,
    read_thermal_curve,
)
from layerscope.diffraction.layered import (
    DEFAULT_LAYERED_REFLECTIONS,
    LAYERED_REFERENCES,
    ROCK_SALT_REFERENCES,
    LayeredResult,
    analyse_layered,
    analyse_rock_salt,
    refine_lattice,
    track_reflection,
    williamson_hall,
)
from layerscope.diffraction.options import KineticsOptions, XRDOptions
from layerscope.diffraction.peaks import PeakFit, fit_peak, fit_peaks, pseudo_voigt, snip_background, strip_kalpha2
from layerscope.diffraction.readers import RADIATIONS, Pattern, pattern_from_arrays, read_pattern

__all__ = [
    "Pattern",
    "read_pattern",
    "pattern_from_arrays",
    "RADIATIONS",
    "snip_background",
    "strip_kalpha2",
    "pseudo_voigt",
    "fit_peak",
    "fit_peaks",
    "PeakFit",
    "analyse_layered",
    "analyse_rock_salt",
    "LayeredResult",
    "refine_lattice",
    "williamson_hall",
    "track_reflection",
    "LAYERED_REFERENCES",
    "ROCK_SALT_REFERENCES",
    "DEFAULT_LAYERED_REFLECTIONS",
    "peak_temperature",
    "kissinger",
    "ozawa",
    "ActivationEnergy",
    "ThermalCurve",
    "read_thermal_curve",
    "XRDOptions",
    "KineticsOptions",
]
