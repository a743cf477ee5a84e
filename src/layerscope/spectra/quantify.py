"""Elemental ratios (e.g. O:Co) from integrated edge intensities and partial cross sections.

For two edges A and B integrated over windows of width ``Delta`` from their onsets, after
background subtraction, the atomic ratio is (Egerton 2011, eq. 4.65)::

    N_A / N_B = [I_A(beta, Delta) / sigma_A(beta, Delta)] / [I_B(beta, Delta) / sigma_B(beta, Delta)]

Partial cross sections are computed locally with eXSpy's hydrogenic generalised oscillator
strengths (Egerton's SIGMAK3/SIGMAL3; K and L shells), integrated over the scattering vector up
to the effective collection angle (Egerton's correction for the convergence angle, eXSpy's
``effective_angle``). Nothing is downloaded. Hydrogenic L cross sections omit the white lines,
so integrate L edges over >= 50 eV and expect ~10-20 % absolute accuracy (Egerton 2011,
section 4.5); a user k-factor measured on a standard (``N_A/N_B = k_AB I_A / I_B``) removes that
error and replaces the cross sections.

References
----------
R. F. Egerton, *Electron Energy-Loss Spectroscopy in the Electron Microscope*, 3rd ed.,
Springer (2011), sections 3.6, 4.5 and 5.6; Appendix B (SIGMAK3, SIGMAL3).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from layerscope.errors import InputError
from layerscope.spectra._arrays import as_float, check_energy_axis, check_finite, map_spectra
from layerscope.spectra._windows import cumulative, noise_sigma, window_integral
from layerscope.spectra.edges import Edge, get_edge

__all__ = ["partial_cross_section", "edge_intensity", "elemental_ratio", "ElementalRatio"]


@lru_cache(maxsize=64)
def _cross_section_cached(
    name: str, onset_eV: float, beam_energy_keV: float, collection_angle_mrad: float,
    convergence_angle_mrad: float, width_eV: float,
) -> float:
    from exspy.components import EELSCLEdge
    from exspy.utils.eels import effective_angle

    ed = get_edge(name)
    sub = {"K": "K", "L": "L3"}.get(ed.shell)
    if sub is None:
        raise InputError(
            f"cross section: hydrogenic cross sections exist only for K and L edges, not "
            f"{ed.name}; give a k-factor for this edge pair instead."
        )
    # eXSpy logs the GOS choice at INFO level; keep the user's log quiet
    logging.getLogger("exspy").setLevel(max(logging.getLogger("exspy").level, logging.WARNING))
    comp = EELSCLEdge(f"{ed.element}_{sub}", GOS="hydrogenic")
    beta_eff_mrad = effective_angle(beam_energy_keV, onset_eV, convergence_angle_mrad, collection_angle_mrad)
    spline = comp.GOS.integrateq(onset_eV, beta_eff_mrad * 1e-3, beam_energy_keV)
    return float(spline.integrate(onset_eV, onset_eV + width_eV))


def partial_cross_section(
    edge: Edge | str,
    *,
    beam_energy_keV: float,
    collection_angle_mrad: float,
    width_eV: float,
    convergence_angle_mrad: float = 0.0,
    onset_eV: float | None = None,
) -> float:
    """Hydrogenic partial cross section sigma(beta, Delta) in barn (1e-28 m^2) per atom.

    Parameters
    ----------
    edge : Edge or str
        A K or L edge, e.g. ``"O_K"``, ``"Co_L"`` (all L subshells together).
    beam_energy_keV : float
        Incident electron energy (keV).
    collection_angle_mrad : float
        Spectrometer collection semi-angle beta (mrad).
    width_eV : float
        Integration width Delta from the onset (eV).
    convergence_angle_mrad : float
        Probe convergence semi-angle alpha (mrad); 0 for parallel illumination. It enters via
        Egerton's effective collection angle.
    onset_eV : float or None
        Onset used for the integration; the tabulated onset when None.
    """
    ed = get_edge(edge) if isinstance(edge, str) else edge
    for nm, v in (("beam_energy_keV", beam_energy_keV), ("collection_angle_mrad", collection_angle_mrad),
                  ("width_eV", width_eV)):
        if not (np.isfinite(v) and v > 0):
            raise InputError(
                f"cross section: {nm}={v} must be a positive number; read it from the microscope "
                "settings (metadata beam_energy_keV / collection_angle_mrad) or pass it explicitly."
            )
    if convergence_angle_mrad < 0:
        raise InputError(f"cross section: convergence_angle_mrad={convergence_angle_mrad} must be >= 0.")
    on = ed.onset_eV if onset_eV is None else float(onset_eV)
    return _cross_section_cached(
        ed.name, on, float(beam_energy_keV), float(collection_angle_mrad),
        float(convergence_angle_mrad), float(width_eV),
    )


def _intensity_block(block: np.ndarray, *, e: np.ndarray, lo: float, hi: float) -> np.ndarray:
    y = np.asarray(block, dtype=np.float64)
    shape = y.shape[:-1]
    y = y.reshape(-1, y.shape[-1])
    scale = (e[-1] - e[0]) / (len(e) - 1)
    F = cumulative(y)
    i = window_integral(F, e[0], scale, np.asarray(lo), np.asarray(hi))
    var = noise_sigma(y) ** 2 * (hi - lo) / scale
    return np.stack([i, np.sqrt(var)], axis=-1).reshape(shape + (2,))


def edge_intensity(
    signal: Any, energy_eV: Any, *, start_eV: float, width_eV: float
) -> tuple[Any, Any]:
    """Integrated edge intensity (counts) over ``[start_eV, start_eV + width_eV]`` and its sigma.

    ``signal`` is background-subtracted, energy last (NumPy or Dask); the uncertainty is the
    per-channel noise (from second differences) times the square root of the channel count.
    """
    signal = as_float(signal, name="signal")
    e = np.asarray(energy_eV, dtype=np.float64)
    check_energy_axis(e, signal.shape[-1])
    check_finite(signal, name="signal")
    lo, hi = float(start_eV), float(start_eV) + float(width_eV)
    if width_eV <= 0 or lo < e[0] or hi > e[-1]:
        raise InputError(
            f"edge intensity: window {lo:.1f}-{hi:.1f} eV is not inside the energy range "
            f"{e[0]:.1f}-{e[-1]:.1f} eV; shorten width_eV or acquire a longer range."
        )
    out = map_spectra(_intensity_block, signal, out_channels=2, dtype=np.float64, name="signal",
                      e=e, lo=lo, hi=hi)
    return out[..., 0], out[..., 1]


@dataclass(frozen=True)
class ElementalRatio:
    """Result of :func:`elemental_ratio` (arrays have the pixel shape).

    Attributes
    ----------
    ratio : array
        Atomic ratio N_A / N_B.
    sigma : array
        Statistical one-sigma uncertainty (counting noise only; the cross-section error,
        ~10-20 % for hydrogenic L edges, is systematic and not included).
    sensitivity : float
        The factor ``sigma_B / sigma_A`` (or the k-factor) that multiplies ``I_A / I_B``.
    method : str
        ``"hydrogenic"`` or ``"k-factor"``.
    """

    ratio: Any
    sigma: Any
    sensitivity: float
    method: str


def elemental_ratio(
    signal_a: Any,
    energy_a_eV: Any,
    edge_a: Edge | str,
    signal_b: Any,
    energy_b_eV: Any,
    edge_b: Edge | str,
    *,
    width_eV: float,
    beam_energy_keV: float | None = None,
    collection_angle_mrad: float | None = None,
    convergence_angle_mrad: float = 0.0,
    k_factor: float | None = None,
    onset_a_eV: float | None = None,
    onset_b_eV: float | None = None,
) -> ElementalRatio:
    """Atomic ratio N_A/N_B from two background-subtracted edges.

    Parameters
    ----------
    signal_a, signal_b : array (..., E)
        Background-subtracted spectra of edge A and edge B (same pixel shape), energy last.
        They may be the same array (one spectrum holding both edges).
    energy_a_eV, energy_b_eV : array
        Their energy axes (eV).
    edge_a, edge_b : Edge or str
        The edges, e.g. ``"O_K"`` and ``"Co_L"``.
    width_eV : float
        Integration width Delta from each onset (eV); the same for both edges.
    beam_energy_keV, collection_angle_mrad, convergence_angle_mrad : float
        Microscope settings for the hydrogenic cross sections (required unless ``k_factor``).
    k_factor : float or None
        ``N_A/N_B = k_factor * I_A/I_B``, measured on a standard; replaces the cross sections.
    onset_a_eV, onset_b_eV : float or None
        Start of each integration window; the tabulated onsets when None.

    Returns
    -------
    ElementalRatio
    """
    ea = get_edge(edge_a) if isinstance(edge_a, str) else edge_a
    eb = get_edge(edge_b) if isinstance(edge_b, str) else edge_b
    oa = ea.onset_eV if onset_a_eV is None else float(onset_a_eV)
    ob = eb.onset_eV if onset_b_eV is None else float(onset_b_eV)
    ia, sa = edge_intensity(signal_a, energy_a_eV, start_eV=oa, width_eV=width_eV)
    ib, sb = edge_intensity(signal_b, energy_b_eV, start_eV=ob, width_eV=width_eV)
    if k_factor is not None:
        if not (np.isfinite(k_factor) and k_factor > 0):
            raise InputError(f"elemental ratio: k_factor={k_factor} must be a positive number.")
        sens, method = float(k_factor), "k-factor"
    else:
        if beam_energy_keV is None or collection_angle_mrad is None:
            raise InputError(
                "elemental ratio: the hydrogenic cross sections need beam_energy_keV and "
                "collection_angle_mrad (and convergence_angle_mrad for a focused probe); pass "
                "them (CLI: --beam-energy-kev, --collection-angle-mrad) or give a k-factor."
            )
        kw = dict(beam_energy_keV=beam_energy_keV, collection_angle_mrad=collection_angle_mrad,
                  convergence_angle_mrad=convergence_angle_mrad, width_eV=width_eV)
        sig_a = partial_cross_section(ea, onset_eV=oa, **kw)
        sig_b = partial_cross_section(eb, onset_eV=ob, **kw)
        sens, method = sig_b / sig_a, "hydrogenic"
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = sens * ia / ib
        sigma = np.abs(ratio) * np.sqrt((sa / ia) ** 2 + (sb / ib) ** 2)
    return ElementalRatio(ratio=ratio, sigma=sigma, sensitivity=sens, method=method)
