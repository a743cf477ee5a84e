"""``columns.is_count_image`` (read block by block, in the image's own type; also ``sitetests.is_count_image``) against its definition."""

import numpy as np
import pytest

from layerscope.imaging import columns
from layerscope.imaging.columns import is_count_image


def _definition(image) -> bool:
    """The rule as written before the block-wise reading: finite pixels >= 0, not all 0, whole numbers."""
    data = np.asarray(image, dtype=float)
    finite = data[np.isfinite(data)]
    return bool(finite.size and finite.min() >= 0 and finite.max() > 0 and np.all(finite == np.rint(finite)))


def _images():
    rng = np.random.default_rng(0)
    counts = rng.poisson(3.0, size=(300, 310)).astype(float)
    with_nan = counts.copy()
    with_nan[5, 7] = np.nan
    with_nan[9, 1] = np.inf
    late_fraction = counts.copy()
    late_fraction[-1, -1] = 2.5  # in the last block only
    late_negative = counts.copy()
    late_negative[-1, 0] = -1.0
    return {
        "counts": (counts, True),
        "counts float32": (counts.astype(np.float32), True),
        "counts uint16": (counts.astype(np.uint16), True),
        "counts with NaN and inf": (with_nan, True),
        "a fraction in the last block": (late_fraction, False),
        "a negative pixel in the last block": (late_negative, False),
        "shifted by 0.5": (counts + 0.5, False),
        "all zero": (np.zeros((4, 4)), False),
        "all NaN": (np.full((3, 3), np.nan), False),
        "empty": (np.zeros((0, 5)), False),
        "signed integers with a negative": (np.array([[1, -2], [3, 4]]), False),
        "booleans": (np.array([[True, False]]), True),
    }


@pytest.mark.parametrize("name", list(_images()))
def test_count_image_matches_its_definition(name, monkeypatch):
    monkeypatch.setattr(columns, "_COUNT_BLOCK", 1000)  # several blocks even for these small images
    image, expected = _images()[name]
    assert is_count_image(image) is expected
    assert _definition(image) is expected
