"""Relative thickness t/lambda from the low loss by the log-ratio method.

``t / lambda = ln(I_t / I_0)`` with ``I_t`` the total low-loss intensity and ``I_0`` the
zero-loss (elastic) intensity, integrated up to the first minimum after the zero-loss peak
(Egerton 2011, eq. 5.11). The minimum (the *elastic threshold*) is found per pixel as the
minimum of the Savitzky-Golay-smoothed spectrum (5 channels, quadratic) between
``start_eV`` and ``start_eV + window_eV`` above the ZLP maximum, refined by a parabola; eXSpy's
``estimate_elastic_scattering_threshold`` looks for the flattest point of the smoothed
derivative in the same window, which lands in the same valley (the two t/lambda agree to
better than 1 % on the real spectra in ``docs/validation.md``). Absolute thickness needs the inelastic
mean free path: give it, or estimate it with Iakoubovskii's formula from the density (eXSpy's
``iMFP_Iakoubovskii``).

References
----------
R. F. Egerton, *Electron Energy-Loss Spectroscopy in the Electron Microscope*, 3rd ed.,
Springer (2011), section 5.1; K. Iakoubovskii, K. Mitsuishi, Y. Nakayama, K. Furuya,
"Thickness measurements with electron energy loss spectroscopy", *Microsc. Res. Tech.* 71
(2008) 626-631.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.signal import savgol_coeffs

from layerscope.errors import InputError
from layerscope.spectra._arrays import (
    as_float,
    check_energy_axis,
    check_finite,
    map_spectra,
    window_slice,
)

__all__ = [
    "elastic_threshold",
    "relative_thickness",
    "ThicknessResult",
    "mean_free_path_nm",
]


def _threshold_block(
    block: np.ndarray, *, e: np.ndarray, start_eV: float, window_eV: float, sg: np.ndarray,
) -> np.ndarray:
    data = np.asarray(block, dtype=np.float64)
    scale = (e[-1] - e[0]) / (len(e) - 1)
    flat = data.reshape(-1, data.shape[-1])
    izlp = np.argmax(flat, axis=-1)
    n_start = int(round(start_eV / scale))
    n_win = int(round(window_eV / scale))
    half = len(sg) // 2
    P = flat.shape[0]
    # gather the search window after each ZLP (+ margin for the filter)
    offs = np.arange(-half, n_win + half + 1)
    idx = izlp[:, None] + n_start + offs[None, :]
    inside = (idx >= 0) & (idx < flat.shape[1])
    sub = np.take_along_axis(flat, np.clip(idx, 0, flat.shape[1] - 1), -1)
    # Savitzky-Golay smoothing (valid part only), then the minimum of the smoothed valley
    smooth = np.zeros((P, n_win + 1))
    for k, c in enumerate(sg):
        smooth += c * sub[:, k : k + n_win + 1]
    smooth = np.where(inside[:, half : half + n_win + 1], smooth, np.inf)
    j = np.clip(np.argmin(smooth, axis=1), 1, n_win - 1)
    ym = np.take_along_axis(smooth, (j - 1)[:, None], 1)[:, 0]
    y0 = np.take_along_axis(smooth, j[:, None], 1)[:, 0]
    yp = np.take_along_axis(smooth, (j + 1)[:, None], 1)[:, 0]
    den = ym - 2 * y0 + yp
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(np.isfinite(den) & (den > 0), 0.5 * (ym - yp) / den, 0.0)
    ch = izlp + n_start + j + np.clip(frac, -0.5, 0.5)
    thr = e[0] + ch * scale
    found = np.isfinite(y0) & (ch < flat.shape[1] - 1)
    return np.where(found, thr, np.nan).reshape(data.shape[:-1])


def elastic_threshold(
    lowloss: Any,
    energy_eV: Any,
    *,
    start_eV: float = 1.0,
    window_eV: float = 10.0,
) -> Any:
    """Per-pixel energy of the first minimum after the zero-loss peak, in eV.

    Parameters
    ----------
    lowloss : array (..., E)
        Low-loss spectra with the ZLP, energy last (NumPy or Dask).
    energy_eV : array (E,)
        Uniform energy axis in eV.
    start_eV : float
        Start the search this far above the ZLP maximum (skips the ZLP flank).
    window_eV : float
        Search up to ``start_eV + window_eV`` above the ZLP maximum; keep this below the first
        plasmon maximum.

    Returns
    -------
    array (...,)
        Threshold energy in eV; NaN where the window runs past the end of the spectrum.
    """
    lowloss = as_float(lowloss, name="lowloss")
    e = np.asarray(energy_eV, dtype=np.float64)
    _, scale = check_energy_axis(e, lowloss.shape[-1], name="lowloss energy axis")
    check_finite(lowloss, name="lowloss")
    if int(round(window_eV / scale)) < 5:
        raise InputError(
            f"elastic threshold: window_eV={window_eV} is fewer than 5 channels at {scale:.3g} "
            "eV/channel; widen it."
        )
    sg = savgol_coeffs(5, 2, use="dot")
    return map_spectra(
        _threshold_block, lowloss, out_channels=None, dtype=np.float64, name="lowloss",
        e=e, start_eV=float(start_eV), window_eV=float(window_eV), sg=sg,
    )


@dataclass(frozen=True)
class ThicknessResult:
    """Result of :func:`relative_thickness` (arrays have the pixel shape).

    Attributes
    ----------
    t_over_lambda : array
        Relative thickness t/lambda (dimensionless).
    zero_loss_intensity : array
        ``I_0``, counts summed up to the threshold.
    total_intensity : array
        ``I_t``, counts summed over the whole low loss.
    threshold_eV : array
        Elastic threshold used per pixel (eV).
    """

    t_over_lambda: Any
    zero_loss_intensity: Any
    total_intensity: Any
    threshold_eV: Any


def _thickness_block(block: np.ndarray, thr: np.ndarray, *, e: np.ndarray) -> np.ndarray:
    data = np.asarray(block)
    thr = np.broadcast_to(np.asarray(thr, dtype=np.float64), data.shape[:-1])
    scale = (e[-1] - e[0]) / (len(e) - 1)
    total = data.sum(axis=-1, dtype=np.float64)
    # eXSpy's convention: channels [0, value2index(threshold)) ; value2index rounds
    with np.errstate(invalid="ignore"):
        idx = np.rint((thr - e[0]) / scale)
    bad = ~np.isfinite(idx)
    idx = np.clip(np.where(bad, 0, idx), 0, data.shape[-1]).astype(np.int64)
    nmax = int(idx.max()) if idx.size else 0
    csum = np.concatenate(
        [np.zeros(data.shape[:-1] + (1,)), np.cumsum(data[..., :nmax], axis=-1, dtype=np.float64)], axis=-1
    )
    i0 = np.take_along_axis(csum, idx[..., None], -1)[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        tl = np.log(total / i0)
    tl = np.where(bad | (i0 <= 0) | (total <= 0), np.nan, tl)
    return np.stack([tl, i0, total], axis=-1)


def relative_thickness(
    lowloss: Any,
    energy_eV: Any,
    *,
    threshold_eV: Any = None,
    start_eV: float = 1.0,
    window_eV: float = 10.0,
) -> ThicknessResult:
    """Relative thickness map t/lambda = ln(I_t / I_0) by the log-ratio method.

    Parameters
    ----------
    lowloss : array (..., E)
        Low-loss spectra including the whole ZLP, energy last, preferably ZLP-aligned
        (NumPy or Dask). The range should extend to at least ~5 plasmon energies; a truncated
        range underestimates t/lambda.
    energy_eV : array (E,)
        Uniform energy axis in eV.
    threshold_eV : float, array (...,) or None
        Elastic threshold (end of the ZLP integration) in eV: one value, one per pixel, or
        None to find the first minimum after the ZLP (:func:`elastic_threshold`).
    start_eV, window_eV : float
        Passed to :func:`elastic_threshold` when ``threshold_eV`` is None.

    Returns
    -------
    ThicknessResult

    Raises
    ------
    InputError
        When no pixel has a usable threshold, or the given threshold is outside the range.
    """
    lowloss = as_float(lowloss, name="lowloss")
    e = np.asarray(energy_eV, dtype=np.float64)
    check_energy_axis(e, lowloss.shape[-1], name="lowloss energy axis")
    check_finite(lowloss, name="lowloss")
    if not (e[0] < 0 < e[-1]):
        raise InputError(
            f"lowloss: the energy range {e[0]:.1f}-{e[-1]:.1f} eV does not contain 0 eV, so the "
            "zero-loss peak is missing or uncalibrated; align the ZLP (align_zero_loss) or pass "
            "the low loss that contains it."
        )
    if threshold_eV is None:
        threshold_eV = elastic_threshold(lowloss, e, start_eV=start_eV, window_eV=window_eV)
    elif np.ndim(threshold_eV) == 0:
        window_slice(e, (e[0], float(threshold_eV)), what="elastic threshold", min_channels=2)
    out = map_spectra(
        _thickness_block, lowloss, threshold_eV, out_channels=3, dtype=np.float64,
        name="lowloss", e=e,
    )
    return ThicknessResult(
        t_over_lambda=out[..., 0],
        zero_loss_intensity=out[..., 1],
        total_intensity=out[..., 2],
        threshold_eV=threshold_eV,
    )


def mean_free_path_nm(*, beam_energy_keV: float, density_g_cm3: float) -> float:
    """Inelastic mean free path (nm) from Iakoubovskii et al. (2008) via eXSpy's implementation.

    Valid for collection semi-angles large enough to catch most inelastic scattering
    (> ~10 mrad at 200-300 kV); it carries ~10-20 % uncertainty for oxides.
    """
    if beam_energy_keV <= 0 or density_g_cm3 <= 0:
        raise InputError(
            "mean free path: beam_energy_keV and density_g_cm3 must be positive "
            f"(got {beam_energy_keV}, {density_g_cm3})."
        )
    from exspy.utils.eels import iMFP_Iakoubovskii

    return float(iMFP_Iakoubovskii(density=density_g_cm3, electron_energy=beam_energy_keV))
