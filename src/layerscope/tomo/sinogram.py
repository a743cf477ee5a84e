"""Sinogram helpers shared by :mod:`layerscope.tomo.recon` and :mod:`layerscope.tomo.align` (which must not
import the reconstruction): the rotation-centre search and the smooth extension of a sinogram before FBP."""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["CENTRE_RANGE", "LIMITED_SPAN_DEG", "MOMENT_ROWS_SHARE", "centre_range_px", "centres_of_mass_px",
           "fbp_pad_px", "find_centre_px", "find_centre_moments_px", "padded", "series_centre_px"]


def find_centre_px(sinogram: np.ndarray, angles_deg: np.ndarray) -> float:
    """Rotation-axis column (0-based, sub-pixel) of one sinogram (n_angles, columns), Vo's Fourier method.

    Uses the projections within the first 180 deg (the method needs a 0-180 deg sinogram) and searches
    within :data:`CENTRE_RANGE` of the width of the detector centre; give ``--centre-px`` beyond it.
    """
    from algotom.prep.calculation import find_center_vo

    rel = np.asarray(angles_deg, float) - float(np.min(angles_deg))
    keep = rel < 180.0 - 1e-6
    idx = np.flatnonzero(keep)
    sino = np.asarray(sinogram, np.float32)[idx[np.argsort(rel[idx])]]
    lo, hi = centre_range_px(sino.shape[1])
    with warnings.catch_warnings():  # "Global minimum is out of the searching range": flagged by _centre_flags
        warnings.simplefilter("ignore", UserWarning)
        return float(find_center_vo(sino, start=lo, stop=hi, step=0.25, ncore=1))


#: A series whose angles span less than this (deg) is a limited tilt range (an electron-tomography +-60-70 deg
#: series, the missing wedge): Vo's method needs 0-180 deg and is off by 3-29 px on +-70 deg draws, so
#: :func:`find_centre_moments_px` finds the centre there (docs/validation.md "tomowedge"); also the
#: ``limited_angle`` flag's bound.
LIMITED_SPAN_DEG = 170.0
#: :func:`find_centre_moments_px` takes the median centre of this share of the detector rows: those whose centres
#: of mass follow the sinusoid most closely (the rows least cut by the detector edges).
MOMENT_ROWS_SHARE = 0.25


def centres_of_mass_px(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre of mass (column, px) and sum of each projection row of ``lines`` (n_angles, rows, columns) of line
    integrals: two arrays (n_angles, rows); NaN where a row sums to nothing."""
    x = np.arange(lines.shape[2], dtype=np.float64)
    mass = lines.sum(axis=2, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        com = (lines * x).sum(axis=2, dtype=np.float64) / mass
    return np.where(np.abs(mass) > 1e-9, com, np.nan), mass


def find_centre_moments_px(com_px: np.ndarray, angles_deg: np.ndarray) -> float:
    """Rotation-axis column (px) from the centres of mass ``com_px`` (n_angles, rows) of each detector row's
    projections (:func:`centres_of_mass_px`), for any span of angles (a limited tilt range).

    In a parallel beam the centre of mass of a row's projection at angle a is ``c + u cos a + v sin a`` (the
    projection of the slice's centre of mass; Helgason-Ludwig's first moment), ``c`` the axis column: each row is
    fitted by least squares, and the median ``c`` of the :data:`MOMENT_ROWS_SHARE` of rows with the smallest RMS
    residual is returned. Rows whose mass leaves the detector at some angles (a particle in a corner of the field)
    do not follow the sinusoid and are left out; a sample wider than the field at every angle has no such rows.
    """
    t = np.deg2rad(np.asarray(angles_deg, float))
    a = np.stack([np.ones_like(t), np.cos(t), np.sin(t)], axis=1)
    com = np.asarray(com_px, float)
    ok = np.all(np.isfinite(com), axis=0)
    if not ok.any():
        from layerscope.errors import InputError

        raise InputError("no detector row holds signal at every angle, so the rotation centre of this limited tilt "
                         "range cannot be found from the projections; give it with --centre-px")
    coef = np.linalg.lstsq(a, com[:, ok], rcond=None)[0]
    resid = np.sqrt(np.mean((a @ coef - com[:, ok]) ** 2, axis=0))
    best = resid <= np.percentile(resid, 100.0 * MOMENT_ROWS_SHARE)
    return float(np.median(coef[0][best]))


def series_centre_px(lines: np.ndarray, angles_deg: np.ndarray) -> float:
    """Rotation-axis column (px) of a series of line integrals ``lines`` (n_angles, rows, columns) held in memory
    (projection matching, :mod:`layerscope.tomo.align`): Vo's method (:func:`find_centre_px`) on the rows' mean
    sinogram where the angles span at least :data:`LIMITED_SPAN_DEG`, the rows' centres of mass
    (:func:`find_centre_moments_px`) on a limited tilt range, where Vo's method is off by pixels."""
    angles = np.asarray(angles_deg, float)
    if float(np.ptp(angles)) < LIMITED_SPAN_DEG:
        return find_centre_moments_px(centres_of_mass_px(lines)[0], angles)
    return find_centre_px(lines.mean(axis=1), angles)


def centre_range_px(n_cols: int) -> tuple[float, float]:
    """The columns (px, 0-based) between which :func:`find_centre_px` searches a detector ``n_cols`` wide:
    its centre +/- :data:`CENTRE_RANGE` of its width (read at call time, so that setting it here moves both
    the search and the reconstruction's ``centre_at_search_edge`` flag)."""
    return n_cols / 2 - n_cols * CENTRE_RANGE, n_cols / 2 + n_cols * CENTRE_RANGE


#: The centre search covers the detector centre +/- this share of the detector width. Algotom's default,
#: 1/16, returned a wrong centre without a warning for an axis 10-14 px off the centre of a 64-px detector
#: (33.25 for 41.5 and 45.5); 1/4 found every offset up to 14 px within 0.25 px (docs/validation.md).
CENTRE_RANGE = 1.0 / 4.0


def fbp_pad_px(n_cols: int) -> int:
    """Columns added on each side of a sinogram before FBP: half the detector width, the edge columns fading
    to zero over them. Where the sample is wider than the field of view (or a particle in a corner of the
    volume leaves the detector at some angles) the line integrals stop abruptly at the detector edge, and
    the ramp filter turns that step into a bright rim and streaks over the slice (truncation artefacts);
    the smooth extension moves the step outside the reconstructed square and softens it
    (docs/validation.md "tomoproj")."""
    return n_cols // 2


def padded(sino: np.ndarray, p: int) -> np.ndarray:
    """``sino`` (n_angles, columns) extended by ``p`` columns on each side: its edge columns fading to zero
    over them (half a cosine)."""
    fade = (0.5 * (1 + np.cos(np.pi * np.arange(1, p + 1) / (p + 1)))).astype(np.float32)
    return np.concatenate([sino[:, :1] * fade[::-1], sino, sino[:, -1:] * fade], axis=1)
