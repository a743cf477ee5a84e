"""The speed-ups of issue 19 compute the same numbers as the calls they replace."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from layerscope.imaging.columns import _inverse_diagonals
from layerscope.imaging.generic import _label_medians


def test_label_medians_equal_ndimage_median():
    rng = np.random.default_rng(5)
    values = rng.gamma(1.0, size=(257, 301))
    labels = rng.integers(0, 40, size=values.shape)
    labels[labels == 7] = 8  # an empty label (SciPy returns the lowest label's smallest value there)
    labels.flat[:3] = 39  # odd and even counts both occur
    expected = np.asarray(ndimage.median(values, labels=labels, index=np.arange(labels.max() + 1)), dtype=float)
    got = _label_medians(values, labels)
    assert np.array_equal(got, expected)  # bit for bit
    # And it is the median: label 0 against numpy.
    assert got[0] == np.median(values[labels == 0])


def test_inverse_diagonals_with_a_singular_matrix_in_the_stack():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(37, 5, 5))
    mats = a @ a.transpose(0, 2, 1) + 0.1 * np.eye(5)  # symmetric positive definite
    mats[20] = 0.0
    mats[20, 0, 0] = 4.0  # singular: its pseudo-inverse has 0.25 then zeros on the diagonal
    got = _inverse_diagonals(mats)
    ok = np.arange(37) != 20
    np.testing.assert_allclose(got[ok], np.einsum("nii->ni", np.linalg.inv(mats[ok])), rtol=1e-12)
    np.testing.assert_allclose(got[20], [0.25, 0, 0, 0, 0], atol=1e-15)
