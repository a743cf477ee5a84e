"""Sinogram helpers shared by :mod:`layerscope.tomo.recon` and :mod:`layerscope.tomo.align` (which must not
import the reconstruction): the rotation-centre search and the smooth extension of a sinogram before FBP."""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["CENTRE_RANGE", "centre_range_px", "fbp_pad_px", "find_centre_px", "padded"]


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
