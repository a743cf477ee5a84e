"""The fast incoherent HAADF model against dense analytic sums, exact peak positions and physics."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from layerscope.containers import Image
from layerscope.errors import InputError
from layerscope.simulate import kinematic_cross_section_A2, simulate_haadf

FWHM_PER_SIGMA = 2 * np.sqrt(2 * np.log(2))


def dense_gaussians(shape, p, x, y, amplitude, sigma):
    """Sum of Gaussians evaluated on every pixel centre (no windows), in nm."""
    yc = (np.arange(shape[0]) + 0.5) * p
    xc = (np.arange(shape[1]) + 0.5) * p
    out = np.zeros(shape)
    for x0, y0, a in zip(x, y, amplitude):
        out += a * np.exp(-((yc[:, None] - y0) ** 2 + (xc[None, :] - x0) ** 2) / (2 * sigma**2))
    return out


def log_parabola_peak(image, p):
    """Sub-pixel maximum of a sampled Gaussian: its logarithm is a quadratic, fitted on the 5x5 around the max."""
    r, c = np.unravel_index(np.argmax(image), image.shape)
    rr, cc = np.mgrid[r - 2 : r + 3, c - 2 : c + 3]
    z = np.log(image[rr, cc]).ravel()
    x, y = (cc.ravel() + 0.5) * p, (rr.ravel() + 0.5) * p
    a = np.c_[x * x, y * y, x * y, x, y, np.ones_like(x)]
    k = np.linalg.lstsq(a, z, rcond=None)[0]
    m = np.array([[2 * k[0], k[2]], [k[2], 2 * k[1]]])
    return np.linalg.solve(m, [-k[3], -k[4]])


def test_image_equals_dense_sum_over_the_truth_table(licoo2_cell):
    p, fwhm = 0.012, 0.09
    sim = simulate_haadf(licoo2_cell, pixel_size_nm=p, probe_fwhm_nm=fwhm, field_nm=(1.2, 1.0))
    img = sim.image.data
    assert isinstance(sim.image, Image) and sim.image.pixel_size_nm == pytest.approx(p)
    assert img.shape == (round(1.0 / p), round(1.2 / p))
    # truth: every column of the periodic structure near the field, drawn densely with the calibrated weights
    w, h = licoo2_cell.cell[0, 0] / 10, licoo2_cell.cell[1, 1] / 10
    xy = licoo2_cell.positions[:, :2] / 10
    z = licoo2_cell.numbers.astype(float)
    xs, ys, zs = [], [], []
    for i in range(-1, 4):
        for j in range(-1, 3):
            xs.append(xy[:, 0] + i * w)
            ys.append(xy[:, 1] + j * h)
            zs.append(z)
    sigma = fwhm / FWHM_PER_SIGMA
    sigma0 = sim.columns.attrs["cross_section_A2_per_Zn"]
    amp = sigma0 * np.concatenate(zs) ** 1.7 / (2 * np.pi * (10 * sigma) ** 2)
    truth = dense_gaussians(img.shape, p, np.concatenate(xs), np.concatenate(ys), amp, sigma)
    np.testing.assert_allclose(img, truth, rtol=0, atol=1e-5 * truth.max())
    # the table lists exactly the columns whose centres fall inside the image
    inside = (np.concatenate(xs) >= 0) & (np.concatenate(xs) < 1.2) & (np.concatenate(ys) >= 0) & (np.concatenate(ys) < 1.0)
    assert len(sim.columns) == inside.sum()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_isolated_peaks_sit_on_the_truth_to_sub_pm(seed):
    rng = np.random.default_rng(seed)
    # four single Co atoms at random sub-pixel positions, far apart, in a finite (non-periodic) box
    base = np.array([[5.0, 5.0], [15.0, 5.0], [5.0, 15.0], [15.0, 15.0]])
    pos = base + rng.uniform(-1.0, 1.0, base.shape)
    atoms = Atoms("Co4", positions=np.c_[pos, np.zeros(4)], cell=[20.0, 20.0, 5.0], pbc=False)
    p = 0.013
    sim = simulate_haadf(atoms, pixel_size_nm=p, probe_fwhm_nm=0.08)
    assert len(sim.columns) == 4
    for _, col in sim.columns.iterrows():
        r, c = int(col.y_nm / p), int(col.x_nm / p)
        window = np.zeros_like(sim.image.data)
        window[r - 12 : r + 13, c - 12 : c + 13] = sim.image.data[r - 12 : r + 13, c - 12 : c + 13]
        x, y = log_parabola_peak(window, p)
        assert abs(x - col.x_nm) < 1e-4 and abs(y - col.y_nm) < 1e-4  # < 0.1 pm
        # and the table equals the atom positions (sub-pm)
        assert np.hypot(*(pos / 10 - [col.x_nm, col.y_nm]).T).min() < 1e-6


def test_tm_columns_are_brighter_than_li_and_o(licoo2_cell):
    sim = simulate_haadf(licoo2_cell.repeat((1, 1, 10)), pixel_size_nm=0.01, probe_fwhm_nm=0.08)
    img, p, cols = sim.image.data, sim.pixel_size_nm, sim.columns
    value = img[(cols.y_nm / p).astype(int).clip(0, img.shape[0] - 1), (cols.x_nm / p).astype(int).clip(0, img.shape[1] - 1)]
    tm, li, o = (value[cols.kind.to_numpy() == k] for k in ("TM", "Li", "O"))
    assert tm.min() > 5 * o.max()
    assert tm.min() > 10 * li.max()
    # Li columns: only the tails of their neighbours plus Z=3 (design.md: 1-2 % of a TM column)
    assert li.max() / tm.min() < 0.08


def test_mean_level_is_the_kinematic_detected_fraction(licoo2_cell):
    # periodic cell sampled on a commensurate grid: the image mean is sum(sigma_kin) / cell area.
    # The cell is stretched along y to exactly 3 widths so that 40 x 120 pixels tile it (the mean of a
    # periodic pattern sampled on a commensurate grid is its cell average to machine precision).
    atoms = licoo2_cell.repeat((1, 1, 2))
    w = atoms.cell[0, 0]
    atoms.set_cell(np.diag([w, 3 * w, atoms.cell[2, 2]]), scale_atoms=True)
    sim = simulate_haadf(atoms, pixel_size_nm=w / 10 / 40, probe_fwhm_nm=0.08)
    assert sim.image.shape == (120, 40)
    sym, n = np.unique(atoms.get_chemical_symbols(), return_counts=True)
    total = sum(k * kinematic_cross_section_A2(s, energy_keV=200, detector_mrad=(80, 200)) for s, k in zip(sym, n))
    assert sim.image.data.mean() == pytest.approx(total / (3 * w * w), rel=1e-6)
    assert sim.image.metadata["signal_units"] == "fraction of the incident beam on the detector"


def test_kinematic_cross_section_against_kirkland_parametrisation():
    # independent: Kirkland (2010) scattering factors from abTEM, integrated on a plain trapezoid grid
    from abtem.parametrizations import KirklandParametrization

    lam = 12.398419843 / np.sqrt(200 * (200 + 2 * 510.99895))  # A: hc (keV A) / relativistic momentum at 200 kV
    gamma = 1 + 200 / 510.99895
    k = np.linspace(0.080 / lam, 0.200 / lam, 4001)
    for symbol in ("O", "Co", "Ni"):
        f = KirklandParametrization().scattering_factor(symbol)(k**2)
        ref = np.trapezoid((gamma * f) ** 2 * 2 * np.pi * lam**2 * k, k)
        assert kinematic_cross_section_A2(symbol, energy_keV=200, detector_mrad=(80, 200)) == pytest.approx(ref, rel=0.05)
    # heavier atoms scatter more: Ni > Co > O > Li
    s = [kinematic_cross_section_A2(e, energy_keV=200, detector_mrad=(80, 200)) for e in ("Ni", "Co", "O", "Li")]
    assert s == sorted(s, reverse=True)


def test_bad_parameters_raise(licoo2_cell):
    with pytest.raises(InputError, match="pixel_size_nm"):
        simulate_haadf(licoo2_cell, pixel_size_nm=-1, probe_fwhm_nm=0.08)
    with pytest.raises(InputError, match="probe_fwhm_nm"):
        simulate_haadf(licoo2_cell, pixel_size_nm=0.01, probe_fwhm_nm=0)
    with pytest.raises(InputError, match="detector_mrad"):
        simulate_haadf(licoo2_cell, pixel_size_nm=0.01, probe_fwhm_nm=0.08, detector_mrad=(200, 80))
    with pytest.raises(InputError, match="less than one pixel"):
        simulate_haadf(licoo2_cell, pixel_size_nm=10, probe_fwhm_nm=0.08)
