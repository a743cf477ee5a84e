"""abTEM multislice backend: one small real run, checked against the fast model and physics.

LiCoO2 [100], 2 unit cells (5.6 A) thick, 200 kV, 25 mrad, HAADF 80-200 mrad, 0.05 nm scan step
(10 x 28 probe positions): about 15 s on two busy cores.
"""

from __future__ import annotations

import numpy as np
import pytest

from simulate_cells import licoo2_100_cell
from layerscope.errors import InputError
from layerscope.simulate import kinematic_cross_section_A2, simulate_haadf, simulate_multislice
from layerscope.simulate.multislice import detector_angles_mrad, potential_sampling_A

STEP = 0.05


@pytest.fixture(scope="module")
def thin_cell():
    return licoo2_100_cell().repeat((1, 1, 2))


@pytest.fixture(scope="module")
def abtem_sim(thin_cell):
    return simulate_multislice(thin_cell, scan_step_nm=STEP, energy_keV=200, convergence_mrad=25,
                               detector="HAADF", device="cpu")


def normalised(a):
    a = np.asarray(a, dtype=float)
    return (a - a.mean()) / a.std()


def test_abtem_and_fast_model_correlate(abtem_sim, thin_cell):
    img = abtem_sim.image
    assert img.shape == (28, 10) and img.pixel_size_nm == pytest.approx(STEP)
    assert img.metadata["simulation"]["detector_mrad"] == [80.0, 200.0]
    field = tuple(img.metadata["simulation"]["field_nm"])
    fast = simulate_haadf(thin_cell, pixel_size_nm=STEP, probe_fwhm_nm=0.05, z_exponent=1.7, field_nm=field)
    assert fast.image.shape == img.shape
    r = float(np.mean(normalised(img.data) * normalised(fast.image.data)))
    assert r > 0.9  # issue requirement; measured 0.995 (docs/validation.md)
    # same ground truth table from both engines
    np.testing.assert_allclose(abtem_sim.columns[["x_nm", "y_nm"]], fast.columns[["x_nm", "y_nm"]], atol=1e-9)


def test_abtem_tm_columns_brighter_than_li(abtem_sim):
    img, cols = abtem_sim.image.data, abtem_sim.columns
    rows = np.clip(np.floor(cols.y_nm / STEP).astype(int), 0, img.shape[0] - 1)
    colx = np.clip(np.floor(cols.x_nm / STEP).astype(int), 0, img.shape[1] - 1)
    # the brightest pixel of the 2x2 around each column (the scan grid does not hit columns exactly)
    value = np.array([img[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2].max() for r, c in zip(rows, colx)])
    tm = value[cols.kind.to_numpy() == "TM"]
    li = value[cols.kind.to_numpy() == "Li"]
    assert tm.min() > 3 * li.max()


def test_abtem_mean_level_near_kinematic(abtem_sim, thin_cell):
    # a 5.6 A thin crystal scatters close to the sum of its atoms' kinematic cross-sections per area
    sym, n = np.unique(thin_cell.get_chemical_symbols(), return_counts=True)
    total = sum(k * kinematic_cross_section_A2(s, energy_keV=200, detector_mrad=(80, 200)) for s, k in zip(sym, n))
    kinematic = total / (thin_cell.cell[0, 0] * thin_cell.cell[1, 1])
    assert abtem_sim.image.data.mean() == pytest.approx(kinematic, rel=0.15)  # measured -8 %


def test_prism_without_interpolation_equals_exact_multislice(abtem_sim, thin_cell):
    # PRISM (Ophus 2017) with interpolation 1 is mathematically the same scan: an independent code path
    prism = simulate_multislice(thin_cell, scan_step_nm=STEP, mode="prism", prism_interpolation=1, device="cpu")
    a, b = abtem_sim.image.data, prism.image.data
    assert np.abs(a - b).max() < 1e-4 * a.max()  # measured 1e-6 (float32)
    assert prism.image.metadata["simulation"]["engine"] == "abtem-prism"


def test_probe_batches_do_not_change_the_image(abtem_sim, thin_cell):
    # 16 probe positions in batches of 3 (the last one short) against the default batch (all 280
    # positions of the fixture in two batches): the same pixels, to float32 rounding.
    part = simulate_multislice(thin_cell, scan_step_nm=STEP, field_nm=(4 * STEP, 4 * STEP), max_batch=3, device="cpu")
    a = abtem_sim.image.data[:4, :4]
    assert part.image.shape == (4, 4)
    assert np.abs(part.image.data - a).max() < 1e-5 * a.max()


def test_detector_presets_and_sampling():
    assert detector_angles_mrad("HAADF", 25) == (80.0, 200.0)
    assert detector_angles_mrad("bf", 30) == (0.0, 15.0)
    assert detector_angles_mrad((60, 180), 25) == (60.0, 180.0)
    with pytest.raises(InputError, match="not one of"):
        detector_angles_mrad("DF4", 25)
    # 200 mrad at 200 kV (lambda = 0.02508 A) needs s <= lambda / (3 * 0.2) = 0.0418 A (abTEM 2/3 anti-aliasing)
    assert potential_sampling_A(200, 200) == pytest.approx(0.95 * 0.025079 / 0.6, rel=1e-4)


def test_multislice_input_errors(thin_cell):
    with pytest.raises(InputError, match="phonon_sigma_A"):
        simulate_multislice(thin_cell, scan_step_nm=STEP, frozen_phonons=4)
    with pytest.raises(InputError, match="mode"):
        simulate_multislice(thin_cell, scan_step_nm=STEP, mode="bloch")
    with pytest.raises(InputError, match="max_batch"):
        simulate_multislice(thin_cell, scan_step_nm=STEP, max_batch=0)
    with pytest.raises(InputError, match="scan_step_nm"):
        simulate_multislice(thin_cell, scan_step_nm=0)
