"""EELS analysis of layered-oxide cathodes: thickness, deconvolution, background, valence, fronts.

Array functions take spectra with the energy loss on the **last** axis - one spectrum ``(E,)``,
a line scan ``(n, E)`` or a spectrum image ``(rows, cols, E)``, NumPy (eager) or Dask (lazy) -
plus a uniform ``energy_eV`` axis, and return per-pixel arrays. :func:`analyse_eels` runs the
whole chain on layerscope containers and is what ``layerscope eels`` calls.

Modules: :mod:`~layerscope.spectra.alignment` (ZLP), :mod:`~layerscope.spectra.thickness`
(t/lambda), :mod:`~layerscope.spectra.deconvolution` (Fourier ratio),
:mod:`~layerscope.spectra.background` (power law, exponential, LCPL),
:mod:`~layerscope.spectra.edges` (edge table, onsets, L3 positions, chemical shifts),
:mod:`~layerscope.spectra.valence`, :mod:`~layerscope.spectra.whiteline` (L3/L2),
:mod:`~layerscope.spectra.preedge` (O-K), :mod:`~layerscope.spectra.quantify` (elemental
ratios), :mod:`~layerscope.spectra.fronts`, :mod:`~layerscope.spectra.references`,
:mod:`~layerscope.spectra.pipeline` (:func:`analyse` with :class:`EELSOptions`),
:mod:`~layerscope.spectra.edgekinds` (how each kind of edge is measured),
:mod:`~layerscope.spectra.matching` (resolution matching of references),
:mod:`~layerscope.spectra.sanity` (zero-loss check and flags), :mod:`~layerscope.spectra.synthetic`
(simulated data).
"""

from layerscope.spectra.alignment import align_zero_loss, zero_loss_peak_fwhm, zero_loss_peak_position
from layerscope.spectra.background import fit_background, subtract_background
from layerscope.spectra.deconvolution import fourier_ratio
from layerscope.spectra.edges import (
    chemical_shift,
    default_background_window,
    edge_onset,
    get_edge,
    l3_peak_position,
    parse_edges,
)
from layerscope.spectra.fronts import locate_front, locate_front_map
from layerscope.spectra.options import EELSOptions
from layerscope.spectra.pipeline import EELSAnalysis, analyse, analyse_eels
from layerscope.spectra.preedge import oxygen_k_preedge_ratio
from layerscope.spectra.quantify import elemental_ratio, partial_cross_section
from layerscope.spectra.references import ReferenceSet, load_reference_set, write_reference_set
from layerscope.spectra.thickness import elastic_threshold, mean_free_path_nm, relative_thickness
from layerscope.spectra.valence import valence_from_indicator, valence_from_linear_combination
from layerscope.spectra.whiteline import white_line_ratio

__all__ = [
    "align_zero_loss",
    "zero_loss_peak_position",
    "zero_loss_peak_fwhm",
    "relative_thickness",
    "elastic_threshold",
    "mean_free_path_nm",
    "fourier_ratio",
    "fit_background",
    "subtract_background",
    "get_edge",
    "parse_edges",
    "default_background_window",
    "edge_onset",
    "l3_peak_position",
    "chemical_shift",
    "valence_from_indicator",
    "valence_from_linear_combination",
    "white_line_ratio",
    "oxygen_k_preedge_ratio",
    "partial_cross_section",
    "elemental_ratio",
    "locate_front",
    "locate_front_map",
    "ReferenceSet",
    "load_reference_set",
    "write_reference_set",
    "analyse_eels",
    "analyse",
    "EELSOptions",
    "EELSAnalysis",
]
