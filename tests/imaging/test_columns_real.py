"""`columns` on every real atomic-resolution image in ../shared/data/stem, and `phases` refusing them.

Checks are independent of layerscope (tests/imaging/imaging_real.py): the detected count against
the lattice of the image's power spectrum over the crystal's area (within 10 %), and the columns on
the maxima of the smoothed image (median within 0.05, 90 % within 0.15 nearest-neighbour
distances).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imaging_real import IMAGES, check_columns, read_image
from layerscope.errors import CalibrationError, InputError
from layerscope.imaging.generic import ColumnsOptions, analyse, image_lattice


def _px(shared_data, rel):
    px = IMAGES[rel][0]
    if px is None:
        from layerscope.imaging.pipeline import load_image

        _, px, _ = load_image(shared_data / rel, pixel_size_nm=None)
    return px


@pytest.mark.parametrize("rel", sorted(IMAGES))
def test_columns_on_real_images(shared_data, rel):
    img = read_image(shared_data / rel)
    px = _px(shared_data, rel)
    res = analyse(img, ColumnsOptions(), pixel_size_nm=px)
    numbers = check_columns(img, res.columns, px, rel)
    assert res.flags == []  # no material given: nothing to check against
    print(rel, len(res.columns), numbers)


def test_patch_without_lattice_fringes_is_refused(shared_data):
    img = read_image(shared_data / "stem/atomsegnet/12028.png")
    with pytest.raises(InputError, match="no lattice fringes"):
        analyse(img, ColumnsOptions(), pixel_size_nm=0.01)


def test_scale_is_the_images_own(shared_data):
    # The Si [110] dumbbells are 0.333 nm apart (a sqrt(3/8), a = 0.5431 nm) at the MANIFEST's
    # 5 nm / 512 px; the measured nearest-neighbour distance scales with the pixel size given.
    img = read_image(shared_data / "stem/atomsegnet/Si110_5nmX25us_03_none_none.png")
    a = image_lattice(img, pixel_size_nm=5.0 / 512)
    b = image_lattice(img, pixel_size_nm=2 * 5.0 / 512)
    assert a.nn_distance_nm == pytest.approx(0.5431 * np.sqrt(3 / 8), rel=0.12)
    assert b.nn_distance_nm == pytest.approx(2 * a.nn_distance_nm, rel=1e-6)
