"""Synthetic Cu K-alpha powder patterns of a layered oxide with known lattice, intensities and broadening."""

from __future__ import annotations

import numpy as np

CU_KA1, CU_KA2 = 1.5405929, 1.5444274


def layered_pattern(*, a=2.8720, c=14.200, intensities=None, size_nm=40.0, strain=1.5e-3, k=0.9,
                    background=200.0, scale=2.0e4, step=0.01, lo=15.0, hi=80.0, eta=0.5, seed=0, noise=True,
                    ka2_ratio=0.5):
    """2-theta (deg) and Poisson counts of an R-3m pattern; peaks are K-alpha1/K-alpha2 pseudo-Voigt doublets.

    FWHM (rad) = K lambda / (D cos theta) + 4 eps tan theta (Williamson-Hall, exactly).
    ``intensities`` maps (h, k, l) to the integrated K-alpha1 intensity relative to ``scale``.
    """
    if intensities is None:
        intensities = {(0, 0, 3): 1.30, (1, 0, 1): 0.30, (0, 0, 6): 0.10, (0, 1, 2): 0.12, (1, 0, 4): 1.00,
                       (0, 1, 5): 0.12, (1, 0, 7): 0.10, (0, 1, 8): 0.10, (1, 1, 0): 0.12, (1, 1, 3): 0.10}
    x = np.arange(lo, hi, step)
    y = np.full(x.size, background, float) + 30.0 * np.exp(-(x - lo) / 20.0)
    truth = {}
    for hkl, rel in intensities.items():
        h, kk, l = hkl
        d = 1.0 / np.sqrt(4 * (h * h + h * kk + kk * kk) / (3 * a * a) + l * l / (c * c))
        for lam, r in ((CU_KA1, 1.0), (CU_KA2, ka2_ratio)):
            tt = 2 * np.degrees(np.arcsin(lam / (2 * d)))
            th = np.radians(tt / 2)
            fwhm = np.degrees(k * lam / (size_nm * 10 * np.cos(th)) + 4 * strain * np.tan(th))
            area = scale * rel * r
            hw = fwhm / 2
            lor = hw / (np.pi * ((x - tt) ** 2 + hw * hw))
            sig = fwhm / (2 * np.sqrt(2 * np.log(2)))
            gau = np.exp(-0.5 * ((x - tt) / sig) ** 2) / (sig * np.sqrt(2 * np.pi))
            y += area * (eta * lor + (1 - eta) * gau)
            if lam == CU_KA1:
                truth[hkl] = {"two_theta": tt, "fwhm": fwhm, "area": area}
    if noise:
        y = np.random.default_rng(seed).poisson(y).astype(float)
    return x, y, truth
