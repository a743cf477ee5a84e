"""Columns on an image with a detector offset whose size is not a multiple of the detector's coarse grid.

Real HAADF images carry a large constant offset (the MoS2 dm3 of ../shared/data/stem: ~3e6 counts under
columns of ~1.3e5). The detector's smooth background map is built on blocks of about a quarter
separation; skimage's ``block_reduce`` pads a partial last block with 0, which sank the background of
the last rows and columns to zero, inflated their contrast and made the relative threshold drop the
true columns around them (a 614 x 615 crop of the MoS2 image lost a band ~100 px wide: 101 of ~250
columns found there). Truth is analytic (``imaging_synthetic.draw_columns``).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from imaging_synthetic import draw_columns
from layerscope.imaging.columns import BORDER_WIDTHS, find_columns

PX = 0.0125  # nm per pixel
SIGMA = 0.035  # nm
SPACING = 0.29  # nm, hexagonal lattice (MoS2-like Mo sublattice)


@pytest.mark.parametrize("shape", [(307, 301), (320, 320)])
def test_every_column_is_found_under_a_detector_offset(shape):
    ny, nx = shape
    a1, a2 = np.array([SPACING, 0.0]), np.array([SPACING / 2, SPACING * np.sqrt(3) / 2])
    ij = np.stack(np.meshgrid(np.arange(-30, 30), np.arange(-30, 30)), -1).reshape(-1, 2)
    xy = ij[:, :1] * a1 + ij[:, 1:] * a2 + [0.05, 0.07]
    w_nm, h_nm = nx * PX, ny * PX
    xy = xy[(xy[:, 0] > -0.2) & (xy[:, 0] < w_nm + 0.2) & (xy[:, 1] > -0.2) & (xy[:, 1] < h_nm + 0.2)]
    image = draw_columns(shape, xy[:, 0], xy[:, 1], 1.3e5, pixel_size_nm=PX, sigma_nm=SIGMA, background=3.0e6)
    image = np.random.default_rng(3).poisson(image).astype(float)
    tab = find_columns(image, pixel_size_nm=PX, min_separation_nm=0.85 * SPACING, column_sigma_nm=SIGMA)
    edge = np.minimum.reduce([xy[:, 0], xy[:, 1], w_nm - xy[:, 0], h_nm - xy[:, 1]])
    want = xy[edge >= BORDER_WIDTHS * SIGMA + 0.01]  # clear of the border band
    d, _ = cKDTree(tab[["x_nm", "y_nm"]].to_numpy()).query(want)
    # Recall 1.0 within 20 pm, everywhere: in particular in the last 100 rows and columns.
    assert (d < 0.02).mean() == 1.0, f"{(d >= 0.02).sum()} of {len(want)} columns missed"
    # Precision: every column found lies on a true one within 20 pm.
    d2, _ = cKDTree(xy).query(tab[["x_nm", "y_nm"]].to_numpy())
    assert (d2 < 0.02).all()
