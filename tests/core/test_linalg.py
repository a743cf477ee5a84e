"""The robust least-squares helpers: exact on the matrices that NumPy's gesdd path failed on.

On an Intel Xeon with AVX-512 (OpenBLAS 0.3.31 SkylakeX kernels, NumPy 2.4 wheel)
``np.linalg.svd`` raised "SVD did not converge" on the 488 x 459 harmonic basis of
``simulate.periodic`` (condition number 1.4). These tests run that exact shape through
``layerscope.linalg`` and check the results against the truth, to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

from layerscope import linalg
from layerscope.simulate.periodic import _harmonic_basis, trig_interpolation_matrix


def _failing_basis() -> np.ndarray:
    # 488 scan positions over one period with harmonics up to K = 229: 488 x 459, as in the failed run.
    period = 0.4877
    xs = (np.arange(488) + 0.5) * period / 488
    return _harmonic_basis(xs, period, 229)


def test_svd_of_the_failing_harmonic_basis_is_exact():
    a = _failing_basis()
    assert a.shape == (488, 459)
    u, s, vt = linalg.svd(a)
    assert s[0] / s[-1] < 1.5  # perfectly conditioned, as reported (1.4)
    np.testing.assert_allclose(u @ np.diag(s) @ vt, a, atol=1e-11)
    np.testing.assert_allclose(vt @ vt.T, np.eye(459), atol=1e-11)


def test_trig_interpolation_on_the_failing_shape_reproduces_a_band_limited_function():
    period = 0.4877
    xs = (np.arange(488) + 0.5) * period / 488
    xt = np.linspace(-0.3, 0.9, 301)
    rng = np.random.default_rng(0)
    coef = rng.normal(size=459)
    f = lambda x: _harmonic_basis(x, period, 229) @ coef  # noqa: E731
    m = trig_interpolation_matrix(xs, xt, period_nm=period, max_harmonic=229)
    np.testing.assert_allclose(m @ f(xs), f(xt), atol=1e-9 * np.abs(coef).sum())


@pytest.mark.parametrize("shape", [(7, 3), (3, 7), (40, 40)])
def test_pinv_satisfies_the_penrose_conditions(shape):
    a = np.random.default_rng(1).normal(size=shape)
    p = linalg.pinv(a)
    np.testing.assert_allclose(a @ p @ a, a, atol=1e-10)
    np.testing.assert_allclose(p @ a @ p, p, atol=1e-10)


def test_pinv_of_a_stack_and_of_a_rank_deficient_matrix():
    rng = np.random.default_rng(2)
    stack = rng.normal(size=(5, 4, 4))
    np.testing.assert_allclose(linalg.pinv(stack) @ stack, np.broadcast_to(np.eye(4), (5, 4, 4)), atol=1e-9)
    singular = np.outer([1.0, 2.0, 3.0], [1.0, -1.0])  # rank 1
    np.testing.assert_allclose(linalg.pinv(singular), np.linalg.pinv(singular), atol=1e-12)


def test_lstsq_recovers_known_coefficients_and_rank():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(200, 5))
    truth = np.array([1.0, -2.0, 0.5, 3.0, 0.0])
    x, rank = linalg.lstsq(a, a @ truth)
    assert rank == 5
    np.testing.assert_allclose(x, truth, atol=1e-12)
