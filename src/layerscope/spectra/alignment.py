"""Zero-loss peak (ZLP) position and energy-drift alignment of low-loss (and dual-EELS core-loss) data.

The ZLP centre of every spectrum is found to sub-channel precision by a three-point Gaussian
(log-parabola) interpolation around the maximum, which is exact for a Gaussian peak. Spectra are
then shifted by linear interpolation so that every ZLP sits at the same energy, and the axis is
recalibrated so that this energy is 0 eV. The same shifts can be applied to a core-loss data set
recorded simultaneously (dual EELS), which removes the energy drift that would otherwise show up
as a fake chemical shift.

This is the same procedure as eXSpy's ``align_zero_loss_peak(calibrate=True, crop=True)``
(maximum, shift, re-calibrate) written as one vectorised pass.

References
----------
R. F. Egerton, *Electron Energy-Loss Spectroscopy in the Electron Microscope*, 3rd ed.,
Springer (2011), section 4.1; R. A. Caruana, R. B. Searle, T. Heller, S. I. Shupack, "Fast
algorithm for the resolution of spectra", *Anal. Chem.* 58 (1986) 1162 (Gaussian three-point
peak interpolation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from layerscope.errors import CalibrationError, InputError
from layerscope.spectra._arrays import (
    as_float,
    check_energy_axis,
    check_finite,
    is_lazy,
    map_spectra,
    window_slice,
)

__all__ = [
    "zero_loss_peak_position",
    "zero_loss_peak_fwhm",
    "shift_spectra",
    "align_zero_loss",
    "ZeroLossAlignment",
]


def _zlp_block(block: np.ndarray, *, sl: slice, e_window: np.ndarray) -> np.ndarray:
    sub = np.asarray(block[..., sl], dtype=np.float64)
    n = sub.shape[-1]
    i = np.clip(np.argmax(sub, axis=-1), 1, n - 2)
    ym = np.take_along_axis(sub, (i - 1)[..., None], -1)[..., 0]
    y0 = np.take_along_axis(sub, i[..., None], -1)[..., 0]
    yp = np.take_along_axis(sub, (i + 1)[..., None], -1)[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        positive = (ym > 0) & (y0 > 0) & (yp > 0)
        lm, l0, lp = (np.log(np.where(positive, v, 1.0)) for v in (ym, y0, yp))
        den_g = lm - 2 * l0 + lp
        den_p = ym - 2 * y0 + yp
        # Gaussian interpolation where all three are positive, parabola otherwise
        frac = np.where(
            positive & (den_g < 0),
            0.5 * (lm - lp) / np.where(den_g < 0, den_g, -1.0),
            np.where(den_p < 0, 0.5 * (ym - yp) / np.where(den_p < 0, den_p, -1.0), 0.0),
        )
    frac = np.clip(frac, -0.5, 0.5)
    scale = (e_window[-1] - e_window[0]) / (len(e_window) - 1)
    return e_window[i] + frac * scale


def zero_loss_peak_position(
    lowloss: Any,
    energy_eV: Any,
    *,
    search_window_eV: tuple[float, float] | None = None,
) -> Any:
    """Sub-channel position of the zero-loss peak maximum of every spectrum, in eV.

    Parameters
    ----------
    lowloss : array (..., E)
        Low-loss spectra containing the ZLP, energy last (NumPy or Dask).
    energy_eV : array (E,)
        Uniform energy axis in eV.
    search_window_eV : (float, float) or None
        Search the maximum only here (useful when a core-loss feature or a saturated detector
        region is brighter than the ZLP); the whole range when None.

    Returns
    -------
    array (...,)
        ZLP position in eV (Gaussian three-point interpolation around the maximum channel).
    """
    lowloss = as_float(lowloss, name="lowloss")
    e = np.asarray(energy_eV, dtype=np.float64)
    check_energy_axis(e, lowloss.shape[-1], name="lowloss energy axis")
    check_finite(lowloss, name="lowloss")
    if search_window_eV is None:
        sl = slice(0, e.size)
    else:
        sl = window_slice(e, search_window_eV, what="ZLP search window", min_channels=3)
    return map_spectra(
        _zlp_block, lowloss, out_channels=None, dtype=np.float64, name="lowloss",
        sl=sl, e_window=e[sl],
    )


def _shift_block(block: np.ndarray, shift: np.ndarray, *, chunk: int = 4096) -> np.ndarray:
    """out[..., j] = block[..., j + shift] by linear interpolation (shift in channels)."""
    shape = block.shape
    n = shape[-1]
    flat = block.reshape(-1, n)
    s = np.broadcast_to(np.asarray(shift, dtype=np.float64), shape[:-1]).reshape(-1)
    out = np.empty(flat.shape, dtype=block.dtype)
    base = np.arange(n)
    for a in range(0, flat.shape[0], chunk):
        b = min(a + chunk, flat.shape[0])
        si = np.floor(s[a:b]).astype(np.int64)
        f = (s[a:b] - si).astype(block.dtype)[:, None]
        idx = base[None, :] + si[:, None]
        valid = (idx >= 0) & (idx + 1 <= n - 1) | ((idx == n - 1) & (f[:, :] == 0))
        i0 = np.clip(idx, 0, n - 1)
        i1 = np.clip(idx + 1, 0, n - 1)
        rows = flat[a:b]
        v = (1 - f) * np.take_along_axis(rows, i0, -1) + f * np.take_along_axis(rows, i1, -1)
        out[a:b] = np.where(valid, v, np.nan)
    return out.reshape(shape)


def shift_spectra(data: Any, shift_channels: Any) -> Any:
    """Shift every spectrum by a (fractional) number of channels: ``out[j] = data[j + shift]``.

    Linear interpolation between channels (HyperSpy's ``shift1D`` default); channels that
    would come from outside the spectrum are NaN. ``shift_channels`` has the pixel shape of
    ``data`` (or is a scalar). NumPy or Dask.
    """
    data = as_float(data)
    return map_spectra(_shift_block, data, shift_channels, out_channels=data.shape[-1], dtype=data.dtype)


@dataclass(frozen=True)
class ZeroLossAlignment:
    """Result of :func:`align_zero_loss`.

    Attributes
    ----------
    lowloss : array (..., E')
        Aligned low loss, ZLP at 0 eV, cropped to the channels valid in every pixel.
    energy_eV : array (E',)
        Its energy axis (eV).
    zlp_position_eV : array (...,)
        Measured ZLP position of every pixel before alignment, on the input axis (eV).
    coreloss, coreloss_energy_eV : array or None
        The core loss shifted by the same amounts and recalibrated (dual EELS), cropped alike.
    """

    lowloss: Any
    energy_eV: np.ndarray
    zlp_position_eV: Any
    coreloss: Any = None
    coreloss_energy_eV: np.ndarray | None = None


def align_zero_loss(
    lowloss: Any,
    energy_eV: Any,
    *,
    coreloss: Any = None,
    coreloss_energy_eV: Any = None,
    search_window_eV: tuple[float, float] | None = None,
) -> ZeroLossAlignment:
    """Align every ZLP to 0 eV; optionally apply the same shifts to a dual-EELS core loss.

    Parameters
    ----------
    lowloss : array (..., E)
        Low-loss spectra with the ZLP (NumPy or Dask; for Dask the per-pixel ZLP positions are
        computed, the shifted data stay lazy).
    energy_eV : array (E,)
        Uniform low-loss energy axis in eV.
    coreloss : array (..., E_c) or None
        Core-loss spectra recorded simultaneously with ``lowloss`` (same pixel shape and the
        same dispersion).
    coreloss_energy_eV : array (E_c,) or None
        Core-loss energy axis in eV, on the same calibration as ``energy_eV``.
    search_window_eV : (float, float) or None
        Passed to :func:`zero_loss_peak_position`.

    Returns
    -------
    ZeroLossAlignment
    """
    lowloss = as_float(lowloss, name="lowloss")
    e = np.asarray(energy_eV, dtype=np.float64)
    offset, scale = check_energy_axis(e, lowloss.shape[-1], name="lowloss energy axis")
    pos = zero_loss_peak_position(lowloss, e, search_window_eV=search_window_eV)
    if is_lazy(pos):
        pos = pos.compute()
    pos = np.asarray(pos, dtype=np.float64)
    target = float(np.mean(pos))
    shift = (pos - target) / scale  # channels; out[j] = in[j + shift]
    shift = np.where(np.abs(shift) < 1e-9, 0.0, shift)  # rounding noise: the crops below ignore it too
    lo_crop = int(np.ceil(max(0.0, -float(np.min(shift))) - 1e-9))
    hi_crop = int(np.ceil(max(0.0, float(np.max(shift))) - 1e-9))
    n = lowloss.shape[-1]
    if lo_crop + hi_crop >= n - 2:
        raise InputError(
            f"lowloss: the ZLP moves by {float(np.ptp(pos)):.1f} eV across the pixels, more than the "
            "spectrum length; check that every pixel of --lowloss holds a zero-loss peak."
        )
    aligned = shift_spectra(lowloss, shift)[..., lo_crop : n - hi_crop]
    new_e = e[lo_crop : n - hi_crop] - target
    cl = cle = None
    if coreloss is not None:
        coreloss = as_float(coreloss, name="coreloss")
        if coreloss.shape[:-1] != lowloss.shape[:-1]:
            raise InputError(
                f"coreloss: pixel shape {coreloss.shape[:-1]} differs from the low loss "
                f"{lowloss.shape[:-1]}; dual-EELS alignment needs both recorded at the same pixels."
            )
        ce = np.asarray(coreloss_energy_eV, dtype=np.float64) if coreloss_energy_eV is not None else None
        _, cscale = check_energy_axis(ce, coreloss.shape[-1], name="coreloss energy axis")
        if abs(cscale - scale) > 1e-4 * scale:
            raise CalibrationError(
                f"coreloss: dispersion {cscale:.5g} eV/channel differs from the low loss "
                f"{scale:.5g} eV/channel; dual-EELS alignment needs the same dispersion (rebin one "
                "of them)."
            )
        nc = coreloss.shape[-1]
        cl = shift_spectra(coreloss, shift)[..., lo_crop : nc - hi_crop]
        cle = ce[lo_crop : nc - hi_crop] - target
    return ZeroLossAlignment(aligned, new_e, pos, cl, cle)


def _fwhm_block(block: np.ndarray, *, scale: float, half_window: int) -> np.ndarray:
    data = np.asarray(block)
    shape = data.shape[:-1]
    flat = data.reshape(-1, data.shape[-1])
    n_full = flat.shape[-1]
    imax = np.argmax(flat, axis=-1)
    # only a window around each maximum is needed: gather it (cheap for long spectra)
    offs = np.arange(-half_window, half_window + 1)
    idx = imax[:, None] + offs[None, :]
    inside = (idx >= 0) & (idx < n_full)
    y = np.where(inside, np.take_along_axis(flat, np.clip(idx, 0, n_full - 1), -1), 0.0).astype(np.float64)
    n = y.shape[-1]
    i = np.full(y.shape[0], half_window)
    peak = y[:, half_window]
    half = 0.5 * peak
    ch = np.arange(n)
    below = y < half[:, None]
    right_mask = below & (ch > i[:, None])
    left_mask = below & (ch < i[:, None])
    has_r = right_mask.any(-1)
    has_l = left_mask.any(-1)
    r = np.argmax(right_mask, axis=-1)
    l = n - 1 - np.argmax(left_mask[:, ::-1], axis=-1)

    def _cross(j_out: np.ndarray, j_in: np.ndarray) -> np.ndarray:
        yo = np.take_along_axis(y, j_out[:, None], -1)[:, 0]
        yi = np.take_along_axis(y, j_in[:, None], -1)[:, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(yi != yo, (half - yo) / (yi - yo), 0.0)
        return j_out + np.clip(f, 0, 1) * (j_in - j_out)

    right = _cross(r, np.maximum(r - 1, 0))
    left = _cross(l, np.minimum(l + 1, n - 1))
    out = np.where(has_r & has_l & (peak > 0), (right - left) * scale, np.nan)
    return out.reshape(shape)


def zero_loss_peak_fwhm(lowloss: Any, energy_eV: Any, *, max_fwhm_eV: float = 20.0) -> Any:
    """Full width at half maximum of the highest peak (the ZLP) of every spectrum, in eV.

    Half-maximum crossings on both sides of the maximum are found by linear interpolation
    between channels (the definition of eXSpy's ``estimate_peak_width``), searching up to
    ``max_fwhm_eV`` from the maximum on each side (NaN when a crossing is not found there).
    """
    lowloss = as_float(lowloss, name="lowloss")
    e = np.asarray(energy_eV, dtype=np.float64)
    _, scale = check_energy_axis(e, lowloss.shape[-1], name="lowloss energy axis")
    check_finite(lowloss, name="lowloss")
    half_window = max(3, int(np.ceil(max_fwhm_eV / scale)))
    return map_spectra(_fwhm_block, lowloss, out_channels=None, dtype=np.float64, name="lowloss", scale=scale,
                       half_window=half_window)
