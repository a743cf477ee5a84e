"""Simulated EELS with known truth: white-line edges, O-K, plural-scattering low loss, line scans.

Used by the demo and the tests. The spectra are simple parametric models, not ab-initio near-edge
structure: Gaussian white lines on a double arctan step (2:1), a power-law background, a
Poisson (multiple-scattering) low loss built from a Lorentzian plasmon, and Poisson counting
noise. Every generator returns the ground truth it was built from.

References
----------
R. F. Egerton, *Electron Energy-Loss Spectroscopy in the Electron Microscope*, 3rd ed.,
Springer (2011), eq. 3.117 (Poisson statistics of plural scattering) and section 4.4.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import erf

__all__ = [
    "energy_axis",
    "gaussian",
    "white_line_edge",
    "oxygen_k_edge",
    "power_law",
    "low_loss",
    "plural_scattering",
    "ReductionLineScan",
    "reduction_line_scan",
    "COBALT_MODEL",
]


def energy_axis(start_eV: float, stop_eV: float, dispersion_eV: float) -> np.ndarray:
    """Uniform energy axis from ``start_eV`` with ``dispersion_eV`` steps, below ``stop_eV``."""
    n = int(np.floor((stop_eV - start_eV) / dispersion_eV + 1e-9))
    return start_eV + dispersion_eV * np.arange(n)


def gaussian(e: np.ndarray, centre_eV: float, fwhm_eV: float, area: float) -> np.ndarray:
    """Gaussian with integral ``area`` (in counts x eV); sampled per channel (counts per eV)."""
    s = fwhm_eV / (2 * np.sqrt(2 * np.log(2)))
    return area / (s * np.sqrt(2 * np.pi)) * np.exp(-0.5 * ((e - centre_eV) / s) ** 2)


def _step(e: np.ndarray, at_eV: float, width_eV: float) -> np.ndarray:
    if width_eV <= 0:
        return (e >= at_eV).astype(float)
    return 0.5 + np.arctan((e - at_eV) / width_eV) / np.pi


def white_line_edge(
    e: np.ndarray,
    *,
    l3_eV: float,
    splitting_eV: float,
    l3_area: float,
    l2_area: float,
    fwhm_eV: float,
    continuum: float,
    step_width_eV: float = 0.0,
    satellites: tuple[tuple[float, float, float], ...] = (),
) -> np.ndarray:
    """Background-free L2,3 edge: Gaussian L3/L2 lines on a 2:1 double step, counts per channel.

    Parameters
    ----------
    e : array
        Energy axis (eV).
    l3_eV, splitting_eV : float
        L3 line position and L2 - L3 distance (eV).
    l3_area, l2_area : float
        Line integrals above the step (counts summed over channels).
    fwhm_eV : float
        Line width (eV).
    continuum : float
        Height of the continuum after L2 (counts per channel); the steps at the L3 and L2
        maxima have heights 2/3 and 1/3 of it (the Pearson model).
    step_width_eV : float
        Arctan broadening of the steps (0: sharp).
    satellites : tuple of (offset_eV, fwhm_eV, area)
        Extra Gaussians relative to L3 (multiplet shoulders), counts.
    """
    scale = (e[-1] - e[0]) / (len(e) - 1)
    y = gaussian(e, l3_eV, fwhm_eV, l3_area) * scale + gaussian(e, l3_eV + splitting_eV, fwhm_eV, l2_area) * scale
    for off, fw, area in satellites:
        y = y + gaussian(e, l3_eV + off, fw, area) * scale
    y = y + continuum * (2 / 3 * _step(e, l3_eV, step_width_eV) + 1 / 3 * _step(e, l3_eV + splitting_eV, step_width_eV))
    return y


def oxygen_k_edge(
    e: np.ndarray,
    *,
    preedge_eV: float,
    preedge_area: float,
    main_eV: float,
    main_area: float,
    continuum: float,
    preedge_fwhm_eV: float = 1.5,
    main_fwhm_eV: float = 6.0,
    onset_eV: float = 532.0,
    continuum_exponent: float = 0.0,
) -> np.ndarray:
    """Background-free O-K edge: pre-edge and main Gaussians on an arctan step (counts/channel).

    The continuum after the step decays as ``(E / onset)^-continuum_exponent`` (0: flat).
    """
    scale = (e[-1] - e[0]) / (len(e) - 1)
    decay = np.clip(np.asarray(e, dtype=np.float64) / onset_eV, 1.0, None) ** (-continuum_exponent)
    return (
        gaussian(e, preedge_eV, preedge_fwhm_eV, preedge_area) * scale
        + gaussian(e, main_eV, main_fwhm_eV, main_area) * scale
        + continuum * _step(e, onset_eV + 2.0, 1.5) * decay
    )


def power_law(e: np.ndarray, *, amplitude: float, exponent: float) -> np.ndarray:
    """``amplitude * E^-exponent`` (counts per channel)."""
    return amplitude * np.asarray(e, dtype=np.float64) ** (-exponent)


def low_loss(
    e: np.ndarray,
    *,
    t_over_lambda: Any,
    total_counts: float,
    zlp_fwhm_eV: float = 1.0,
    plasmon_eV: float = 22.0,
    plasmon_fwhm_eV: float = 8.0,
) -> np.ndarray:
    """Low loss with exact Poisson plural scattering: ``I_t IFFT[Z exp(t/lambda (S - 1))]``.

    ``S`` is the Fourier transform of a unit-sum single-scattering distribution (a Lorentzian
    plasmon times a smooth onset), ``Z`` that of a unit-sum Gaussian ZLP at 0 eV; ``e`` must
    contain 0 eV. ``t_over_lambda`` may be an array (one spectrum per value). The range should
    reach several plasmon energies; the part that falls off the end is lost, as in a measurement.
    """
    e = np.asarray(e, dtype=np.float64)
    tl = np.asarray(t_over_lambda, dtype=np.float64)
    scale = (e[-1] - e[0]) / (len(e) - 1)
    n = len(e)
    size = 4 * n
    x = e[0] + scale * np.arange(size)
    # circular grid centred so that index of 0 eV is the origin
    i0 = int(round(-e[0] / scale))
    xe = (np.arange(size) - 0) * scale  # energy loss relative to the ZLP, >= 0
    ssd = (1 - np.exp(-((xe / 3.0) ** 2))) * (plasmon_fwhm_eV / 2) ** 2 / ((xe - plasmon_eV) ** 2 + (plasmon_fwhm_eV / 2) ** 2)
    ssd /= ssd.sum()
    sig = zlp_fwhm_eV / (2 * np.sqrt(2 * np.log(2)))
    xz = np.where(np.arange(size) < size // 2, np.arange(size), np.arange(size) - size) * scale
    z = np.exp(-0.5 * (xz / sig) ** 2)
    z /= z.sum()
    S = np.fft.rfft(ssd)
    Z = np.fft.rfft(z)
    spec = np.fft.irfft(Z * np.exp(tl[..., None] * (S - 1.0)), n=size)  # origin at index 0
    spec = np.roll(spec, i0, axis=-1)[..., :n]
    del x
    return total_counts * np.clip(spec, 0, None)


def plural_scattering(single: np.ndarray, lowloss: np.ndarray, lowloss_e: np.ndarray) -> np.ndarray:
    """Convolve single-scattering core-loss spectra with the unit-sum low loss (ZLP at 0 eV).

    Exact linear convolution on the core-loss channels (what plural scattering does to an edge).
    """
    ll = np.asarray(lowloss, dtype=np.float64)
    ll = ll / ll.sum(axis=-1, keepdims=True)
    scale = (lowloss_e[-1] - lowloss_e[0]) / (len(lowloss_e) - 1)
    i0 = int(round(-lowloss_e[0] / scale))
    kernel = ll[..., i0:]  # energy losses >= 0 (the ZLP's negative half is folded in below)
    neg = ll[..., :i0]
    n = single.shape[-1]
    size = int(2 ** np.ceil(np.log2(n + kernel.shape[-1] + neg.shape[-1])))
    k = np.zeros(ll.shape[:-1] + (size,))
    k[..., : kernel.shape[-1]] = kernel
    if neg.shape[-1]:
        k[..., size - neg.shape[-1] :] = neg
    out = np.fft.irfft(np.fft.rfft(single, n=size) * np.fft.rfft(k), n=size)[..., :n]
    return out


@dataclass(frozen=True)
class _CobaltModel:
    """Illustrative Co L2,3 line shapes for Co2+ (rock salt CoO-like) and Co3+ (LiCoO2-like).

    Positions follow the ~1.3 eV chemical shift between CoO and LiCoO2 reported in the EELS
    literature; widths and L3/L2 ratios are typical values, not fitted to a measurement.
    """

    l3_eV: dict = field(default_factory=lambda: {2.0: 778.6, 3.0: 779.9})
    splitting_eV: float = 15.2
    l3_l2: dict = field(default_factory=lambda: {2.0: 4.6, 3.0: 2.6})
    fwhm_eV: dict = field(default_factory=lambda: {2.0: 1.9, 3.0: 1.6})
    preedge_ratio: dict = field(default_factory=lambda: {2.0: 0.04, 3.0: 0.30})


COBALT_MODEL = _CobaltModel()


def cobalt_l_edge(e: np.ndarray, valence: float, *, total: float = 30000.0, continuum: float = 400.0) -> np.ndarray:
    """Co L2,3 of a pure Co2+ or Co3+ compound (``valence`` 2 or 3), counts per channel."""
    m = COBALT_MODEL
    r = m.l3_l2[valence]
    return white_line_edge(
        e, l3_eV=m.l3_eV[valence], splitting_eV=m.splitting_eV, l3_area=total * r / (1 + r),
        l2_area=total / (1 + r), fwhm_eV=m.fwhm_eV[valence], continuum=continuum, step_width_eV=0.3,
    )


def oxygen_k_for_valence(e: np.ndarray, valence: float, *, main_area: float = 20000.0, continuum: float = 300.0) -> np.ndarray:
    """O-K of a Co2+ or Co3+ oxide with the model pre-edge / main ratio, counts per channel."""
    return oxygen_k_edge(
        e, preedge_eV=530.2, preedge_area=COBALT_MODEL.preedge_ratio[valence] * main_area, main_eV=540.0,
        main_area=main_area, continuum=continuum, continuum_exponent=3.0,
    )


@dataclass(frozen=True)
class ReductionLineScan:
    """A simulated line scan across a Co3+ -> Co2+ reduction front, with its truth.

    Attributes
    ----------
    positions_nm : array (n,)
    energy_eV : array (E,)
        Core-loss axis (eV).
    coreloss : array (n, E)
        Counts (Poisson noise) with power-law background and plural scattering.
    lowloss_energy_eV : array (E_l,)
    lowloss : array (n, E_l)
    valence : array (n,)
        True Co valence per position.
    front_position_nm, front_width_nm : float
        Truth of the front (centre and 10-90 % width).
    t_over_lambda : array (n,)
        True relative thickness.
    references : dict
        ``{valence: background-free Co L spectrum}`` on ``energy_eV`` (noise-free).
    """

    positions_nm: np.ndarray
    energy_eV: np.ndarray
    coreloss: np.ndarray
    lowloss_energy_eV: np.ndarray
    lowloss: np.ndarray
    valence: np.ndarray
    front_position_nm: float
    front_width_nm: float
    t_over_lambda: np.ndarray
    references: dict


def reduction_line_scan(
    *,
    n_points: int = 40,
    step_nm: float = 0.5,
    front_position_nm: float = 9.0,
    front_width_nm: float = 3.0,
    dispersion_eV: float = 0.25,
    dose: float = 1.0,
    seed: int = 0,
) -> ReductionLineScan:
    """A line scan from a Co2+ rock-salt surface (x = 0) into Co3+ LiCoO2, with known truth.

    Co valence follows an error-function step from 2 to 3 centred at ``front_position_nm`` with
    10-90 % width ``front_width_nm``. Each spectrum is the valence-weighted mixture of the Co2+
    and Co3+ model edges (O-K pre-edge likewise), on a power-law background, convolved with the
    pixel's low loss (t/lambda rising from 0.3 to 0.6 along the scan) and Poisson-sampled;
    ``dose`` scales all counts.
    """
    rng = np.random.default_rng(seed)
    x = (np.arange(n_points) + 0.5) * step_nm
    sigma = front_width_nm / (2 * np.sqrt(2) * 0.9061938024368232)  # erfinv(0.8)
    f3 = 0.5 * (1 + erf((x - front_position_nm) / (np.sqrt(2) * sigma)))
    valence = 2.0 + f3
    # simulate from 250 eV so that plural scattering of the background below the recorded range
    # (which feeds the first recorded channels) is included, then keep 450 eV and up
    e_full = energy_axis(250.0, 250.0 + 2400 * dispersion_eV, dispersion_eV)
    keep = (e_full >= 450.0 - 1e-9) & (e_full < 450.0 + 1600 * dispersion_eV - 1e-9)
    e = e_full[keep]
    le = energy_axis(-20.0, -20.0 + 1024 * dispersion_eV, dispersion_eV)
    tl = 0.3 + 0.3 * x / x[-1]
    ll = low_loss(le, t_over_lambda=tl, total_counts=2e6 * dose)
    co = {v: cobalt_l_edge(e_full, v) for v in (2.0, 3.0)}
    ok = {v: oxygen_k_for_valence(e_full, v) for v in (2.0, 3.0)}
    single = (1 - f3)[:, None] * (co[2.0] + ok[2.0])[None, :] + f3[:, None] * (co[3.0] + ok[3.0])[None, :]
    # O K and Co L ride on the background of everything below them
    bg = power_law(e_full, amplitude=3000.0 * 450.0**3, exponent=3.0)
    spectra = plural_scattering(single + bg[None, :], ll, le)[:, keep] * dose
    co = {v: c[keep] for v, c in co.items()}
    coreloss = rng.poisson(np.clip(spectra, 0, None)).astype(np.float64)
    lowloss = rng.poisson(ll).astype(np.float64)
    return ReductionLineScan(
        positions_nm=x, energy_eV=e, coreloss=coreloss, lowloss_energy_eV=le, lowloss=lowloss,
        valence=valence, front_position_nm=front_position_nm, front_width_nm=front_width_nm,
        t_over_lambda=tl, references={v: co[v] for v in (2.0, 3.0)},
    )
