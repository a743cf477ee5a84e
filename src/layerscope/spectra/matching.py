"""Bringing reference spectra measured elsewhere onto the unknown's footing: energy and resolution.

References recorded on another microscope differ from the unknown in three ways that bias a
valence: the energy scale (calibration offsets of a few eV), the energy resolution (ZLP width,
0.1-1.5 eV) and the sampling. :func:`match_resolution` convolves the *sharper* of the two with
a Gaussian so that both have the broader resolution (widths add in quadrature:
``sigma_kernel = sqrt(R_broad^2 - R_sharp^2) / 2.3548``); energy offsets are given
(``--energy-shift-ev`` for the unknown, ``energy_shift_eV`` per reference in references.csv).
:func:`valence_methods` then measures the valence three ways - L3-position interpolation,
L3/L2 interpolation and a non-negative linear combination - each with its uncertainty, and
recommends one (the L3 position, which survives resolution differences best, Tan et al. 2012).

References
----------
H. Tan, J. Verbeeck, A. Abakumov, G. Van Tendeloo, *Ultramicroscopy* 116 (2012) 24-33.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter1d

from layerscope.errors import InputError
from layerscope.spectra._arrays import as_float, map_spectra

__all__ = ["broaden", "kernel_sigma_eV", "match_resolution", "ResolutionMatch", "FWHM_PER_SIGMA"]

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def kernel_sigma_eV(from_fwhm_eV: float, to_fwhm_eV: float) -> float:
    """Gaussian sigma (eV) that broadens a resolution ``from_fwhm_eV`` to ``to_fwhm_eV`` (0 if not broader)."""
    if to_fwhm_eV <= from_fwhm_eV:
        return 0.0
    return float(np.sqrt(to_fwhm_eV**2 - from_fwhm_eV**2) / FWHM_PER_SIGMA)


def _broaden_block(block: np.ndarray, *, sigma_ch: float) -> np.ndarray:
    return gaussian_filter1d(np.asarray(block, dtype=np.float64), sigma_ch, axis=-1, mode="nearest")


def broaden(signal: Any, energy_eV: np.ndarray, sigma_eV: float) -> Any:
    """Convolve every spectrum (energy last; NumPy or Dask) with a Gaussian of ``sigma_eV``."""
    if sigma_eV <= 0:
        return signal
    e = np.asarray(energy_eV, dtype=np.float64)
    scale = (e[-1] - e[0]) / (len(e) - 1)
    signal = as_float(signal, name="signal")
    return map_spectra(_broaden_block, signal, out_channels=signal.shape[-1], dtype=np.float64, name="signal",
                       sigma_ch=float(sigma_eV / scale))


@dataclass(frozen=True)
class ResolutionMatch:
    """What :func:`match_resolution` did.

    Attributes
    ----------
    target_fwhm_eV : float
        The common resolution after matching (eV).
    unknown_sigma_eV : float
        Gaussian sigma applied to the unknown (0 if it was the broader one).
    reference_sigma_eV : tuple of float
        Gaussian sigma applied to each reference.
    note : str
        One line for the summary.
    same_resolution : bool
        All resolutions agree within 10 % (no broadening was needed to speak of).
    """

    target_fwhm_eV: float
    unknown_sigma_eV: float
    reference_sigma_eV: tuple[float, ...]
    note: str
    same_resolution: bool = False


def match_resolution(unknown_fwhm_eV: float, reference_fwhm_eV: list[float]) -> ResolutionMatch:
    """Common resolution of an unknown and its references: the broadest of all of them.

    Parameters
    ----------
    unknown_fwhm_eV : float
        Energy resolution (ZLP FWHM) of the unknown, eV.
    reference_fwhm_eV : list of float
        Resolution of each reference, eV.
    """
    values = [unknown_fwhm_eV, *reference_fwhm_eV]
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise InputError("resolution matching: every resolution must be a positive number of eV; give "
                         "--resolution-ev and a resolution_eV column in references.csv")
    target = float(max(values))
    su = kernel_sigma_eV(unknown_fwhm_eV, target)
    sr = tuple(kernel_sigma_eV(r, target) for r in reference_fwhm_eV)
    note = (f"resolution matched to {target:.2f} eV FWHM: unknown {unknown_fwhm_eV:.2f} eV"
            f"{' (broadened)' if su > 0 else ''}, references "
            + ", ".join(f"{r:.2f}{'*' if s > 0 else ''}" for r, s in zip(reference_fwhm_eV, sr))
            + " eV" + (" (* broadened)" if any(s > 0 for s in sr) else ""))
    return ResolutionMatch(target, su, sr, note, target <= 1.1 * min(values))
