"""The neural enhancer on held-out simulated images (simulator truth) and its contracts.

Held-out images: ``layerscope.crystal.scenes.stack`` scenes with seeds the training never drew,
simulated by ``layerscope.simulate.simulate_haadf`` and degraded by ``layerscope.simulate.degrade``.
The truth is the simulator's noise-free image and its column table.
"""

from __future__ import annotations

import hashlib
from importlib import resources

import numpy as np
import pytest
from scipy.spatial import cKDTree

from layerscope.errors import CalibrationError, InputError
from layerscope.imaging.columns import find_columns
from layerscope.imaging.enhance import (
    MAX_WEIGHTS_BYTES,
    EnhancerWeightsError,
    enhance,
    load_enhancer,
    probability_peaks,
    weights_card,
)
from layerscope.provenance import array_sha256

PX = 0.01  # nm per pixel
FIELD = 2.4  # nm
PROBE_FWHM = 0.08  # nm
SIGMA = PROBE_FWHM / 2.3548


@pytest.fixture(scope="module")
def scene():
    """NMC811, a rock-salt surface layer on O3 with 5 % Li/TM mixing, [100], 6 nm thick."""
    from layerscope.crystal import lattice
    from layerscope.crystal.scenes import Block, stack
    from layerscope.simulate import simulate_haadf

    atoms = stack([Block("rock_salt", 4, li_fraction=0.0), Block("O3", 14, mixing=0.05)],
                  composition="NMC811", zone="100", width_nm=FIELD + 0.5, thickness_nm=6.0, seed=4242)
    atoms.translate((0.0, 2.0, 0.0))  # 0.2 nm of vacuum above the surface
    sim = simulate_haadf(atoms, pixel_size_nm=PX, probe_fwhm_nm=PROBE_FWHM, field_nm=(FIELD, FIELD))
    d_t = lattice("O3", "NMC811").a_A / 10 * np.sqrt(3) / 2
    return sim, 0.9 * d_t


@pytest.fixture(scope="module")
def runs(scene):
    """One noisy image per dose (seed 77) and its enhancement, shared by several tests."""
    sim, _ = scene
    out = {}
    for dose in (5e2, 1e3):
        noisy, electrons = _noisy(sim, dose, seed=77)
        out[dose] = (noisy, electrons, enhance(noisy, pixel_size_nm=PX, device="cpu"))
    return out


def _noisy(sim, dose, seed):
    from layerscope.simulate import degrade

    img = degrade(sim.image, dose_e_per_A2=dose, seed=seed)
    return np.asarray(img.data, float), img.metadata["electrons_per_pixel"]


def _truth(sim, border=0.15):
    t = sim.columns
    x, y, f = t.x_nm.to_numpy(), t.y_nm.to_numpy(), t.tm_fraction.to_numpy()
    inner = (x > border) & (x < FIELD - border) & (y > border) & (y < FIELD - border)
    return x, y, f, inner


def _score(fx, fy, sim, *, match=0.06, border=0.15):
    """Recall of TM-bearing columns (tm_fraction >= 0.5), false detections, RMS error (pm)."""
    x, y, f, inner = _truth(sim, border)
    keep = (fx > border) & (fx < FIELD - border) & (fy > border) & (fy < FIELD - border)
    fx, fy = fx[keep], fy[keep]
    d, j = cKDTree(np.column_stack([x, y])).query(np.column_stack([fx, fy]))
    hit = (d < match) & (f[j] >= 0.5)
    false = (d >= match) | (f[j] == 0)
    # one detection per truth column
    uniq = np.unique(j[hit])
    target = inner & (f >= 0.5)
    recall = np.isin(np.flatnonzero(target), uniq).mean()
    rms = np.sqrt(np.mean(d[hit] ** 2)) * 1e3
    return recall, int(false.sum() + (hit.sum() - uniq.size)), rms


# --------------------------------------------------------------------------------------------
# the shipped weights
# --------------------------------------------------------------------------------------------
def test_shipped_weights_fit_budget_and_card_records_them():
    ref = resources.files("layerscope.imaging") / "weights" / "enhancer.pt"
    data = ref.read_bytes()
    assert len(data) <= MAX_WEIGHTS_BYTES  # the 20 MB
    card = weights_card()
    assert card["weights_sha256"] == hashlib.sha256(data).hexdigest()
    assert card["weights_bytes"] == len(data)
    for key in ("steps", "loss", "date_utc", "git_commit", "data", "command", "validation"):
        assert key in card
    assert card["steps"] > 0 and card["finished"] is True
    enhancer = load_enhancer()
    assert enhancer.config.to_dict() == card["config"]
    assert enhancer.sha256 == card["weights_sha256"]


# --------------------------------------------------------------------------------------------
# what it does, against the simulator's truth
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dose", [5e2, 1e3])
def test_denoised_is_closer_to_noise_free_image(scene, runs, dose):
    sim, _ = scene
    noisy, electrons, res = runs[dose]
    clean = np.asarray(sim.image.data) * electrons  # expected counts
    assert res.denoised.shape == noisy.shape and res.denoised.dtype == np.float32
    err_noisy = np.sqrt(np.mean((noisy - clean) ** 2))
    err_den = np.sqrt(np.mean((res.denoised - clean) ** 2))
    # Poisson noise of a few counts per pixel: the network must remove at least 2/3 of the error
    assert err_den < err_noisy / 3.0
    # and keep the intensity scale: the mean within 3 Poisson standard errors (of the total
    # counts, ~3 % here) plus 2 % of the truth's
    sem = np.sqrt(clean.sum()) / clean.size
    assert abs(res.denoised.mean() - clean.mean()) < 3 * sem + 0.02 * clean.mean()


@pytest.mark.parametrize("dose, min_recall", [(5e2, 0.95), (1e3, 0.98)])
def test_column_probability_marks_tm_columns(scene, runs, dose, min_recall):
    """Peaks of the map alone find the TM-bearing columns about as well as the classical finder
    (recall 0.97-0.99 at 5e2 and 1.0 at 1e3 e/A^2 on this scene), and leave O columns out."""
    sim, dmin = scene
    _, _, res = runs[dose]
    prob = res.column_probability
    assert prob.min() >= 0.0 and prob.max() <= 1.0
    rows, cols = probability_peaks(prob, pixel_size_nm=PX, min_separation_nm=dmin)
    recall, false, rms = _score((cols + 0.5) * PX, (rows + 0.5) * PX, sim)
    assert recall >= min_recall
    assert false <= 2
    assert rms < 20.0  # pm, peaks of the map alone (no fit)
    # pure O columns (kinematic contrast ~25 % of a TM column at Z^1.7) are not marked
    x, y, f, inner = _truth(sim)
    oxygen = inner & (sim.columns.kind.to_numpy() == "O")
    r = np.clip(np.rint(y[oxygen] / PX - 0.5).astype(int), 0, prob.shape[0] - 1)
    c = np.clip(np.rint(x[oxygen] / PX - 0.5).astype(int), 0, prob.shape[1] - 1)
    assert np.median(prob[r, c]) < 0.1


def test_low_dose_enhanced_positions_beat_classical(scene):
    """The issue's acceptance: at <= 1e3 e/A^2 the enhancer must improve recall or position error.

    Measured here at 5e2 e/A^2 (paired: the same four noisy images through both paths), where
    ``find_columns`` on the denoised image has ~11 % lower RMS error than on the raw image at the
    same recall (docs/validation.md). At 1e3 e/A^2 the two agree within 1 % (no gain; not tested).
    """
    sim, dmin = scene
    kw = dict(pixel_size_nm=PX, min_separation_nm=dmin, column_sigma_nm=SIGMA)
    classical, enhanced = [], []
    for seed in (91, 92, 93, 94):
        noisy, _ = _noisy(sim, 5e2, seed=seed)
        tab = find_columns(noisy, **kw)
        classical.append(_score(tab.x_nm.to_numpy(), tab.y_nm.to_numpy(), sim))
        tab = find_columns(enhance(noisy, pixel_size_nm=PX, device="cpu").denoised, **kw)
        enhanced.append(_score(tab.x_nm.to_numpy(), tab.y_nm.to_numpy(), sim))
    rec_c, false_c, rms_c = np.mean(classical, axis=0)
    rec_e, false_e, rms_e = np.mean(enhanced, axis=0)
    assert rms_e < 0.95 * rms_c  # at least 5 % lower RMS error
    assert rec_e >= rec_c - 0.02  # recall kept within one column in 60
    assert false_e <= false_c + 0.5


@pytest.fixture(scope="module")
def displaced_scene():
    """The scene of ``scene`` with every column moved off the lattice by 10 pm rms per axis."""
    from layerscope.crystal.scenes import Block, displace_columns, stack
    from layerscope.simulate import simulate_haadf

    atoms = stack([Block("rock_salt", 4, li_fraction=0.0), Block("O3", 14, mixing=0.05)],
                  composition="NMC811", zone="100", width_nm=FIELD + 0.5, thickness_nm=6.0, seed=4242)
    atoms.translate((0.0, 2.0, 0.0))
    atoms = displace_columns(atoms, rms_pm=10.0, seed=5)
    return simulate_haadf(atoms, pixel_size_nm=PX, probe_fwhm_nm=PROBE_FWHM, field_nm=(FIELD, FIELD))


@pytest.mark.parametrize("dose, max_ratio", [(1e3, 1.05), (1e4, 1.25)])
def test_enhanced_positions_follow_displaced_columns(scene, displaced_scene, dose, max_ratio):
    """A network that learnt an ideal-lattice prior pulls displaced columns back onto the lattice.

    Columns moved by 10 pm rms per axis, two noisy images through both paths. (1) The position
    error against the displaced truth stays within ``max_ratio`` of the classical path's. (2) The
    measured displacements (found - ideal position) regressed on the true ones: the enhanced
    path's slope is at least 0.9 of the classical path's (a lattice prior shrinks it). Measured
    (docs/validation.md): shipped weights RMS ratio ~0.95 (1e3) and ~1.14 (1e4), slope ratio 0.97 and
    1.01; longer-trained weights that were not shipped: slope ratio 0.74 at 1e3 (with displaced
    training columns) and 0.31 (perfect crystals only), caught.
    """
    ideal, dmin = scene
    kw = dict(pixel_size_nm=PX, min_separation_nm=dmin, column_sigma_nm=SIGMA)
    x, y, f, inner = _truth(displaced_scene)
    true_xy = np.column_stack([x, y])[inner & (f >= 0.5)]
    d, j = cKDTree(ideal.columns[["x_nm", "y_nm"]].to_numpy()).query(true_xy)
    true_xy, ideal_xy = true_xy[d < 0.05], ideal.columns[["x_nm", "y_nm"]].to_numpy()[j[d < 0.05]]
    rms, moved, found_moved = ({"classical": [], "enhanced": []} for _ in range(3))
    for seed in (81, 82):
        noisy, _ = _noisy(displaced_scene, dose, seed=seed)
        denoised = enhance(noisy, pixel_size_nm=PX, device="cpu").denoised
        for path, image in (("classical", noisy), ("enhanced", denoised)):
            tab = find_columns(image, **kw)
            rms[path].append(_score(tab.x_nm.to_numpy(), tab.y_nm.to_numpy(), displaced_scene)[2])
            found = tab[["x_nm", "y_nm"]].to_numpy()
            dd, jj = cKDTree(found).query(true_xy)
            hit = dd < 0.06
            moved[path].append((true_xy[hit] - ideal_xy[hit]).ravel())
            found_moved[path].append((found[jj[hit]] - ideal_xy[hit]).ravel())
    slope = {}
    for path in rms:
        true_moved, measured = np.concatenate(moved[path]), np.concatenate(found_moved[path])
        slope[path] = np.sum(true_moved * measured) / np.sum(true_moved**2)
    assert np.mean(rms["enhanced"]) <= max_ratio * np.mean(rms["classical"]), rms
    assert slope["enhanced"] >= 0.9 * slope["classical"], slope


def test_any_pixel_size_same_columns(scene):
    """Coarser sampling (0.025 nm) is resampled to the model grid: same columns, same places."""
    from layerscope.simulate import degrade, simulate_haadf

    sim, dmin = scene
    coarse = simulate_haadf(sim.atoms, pixel_size_nm=0.025, probe_fwhm_nm=PROBE_FWHM, field_nm=(FIELD, FIELD))
    noisy = np.asarray(degrade(coarse.image, dose_e_per_A2=1e3, seed=5).data, float)
    res = enhance(noisy, pixel_size_nm=0.025, device="cpu")
    assert res.column_probability.shape == noisy.shape
    rows, cols = probability_peaks(res.column_probability, pixel_size_nm=0.025, min_separation_nm=dmin)
    recall, false, rms = _score((cols + 0.5) * 0.025, (rows + 0.5) * 0.025, coarse)
    assert recall >= 0.97 and false <= 2 and rms < 25.0


# --------------------------------------------------------------------------------------------
# exact properties
# --------------------------------------------------------------------------------------------
def test_affine_equivariance_of_denoised(scene):
    """The input is normalised by its mean and std: enhance(a x + b) = a enhance(x) + b."""
    sim, _ = scene
    noisy, _ = _noisy(sim, 2e3, seed=3)
    noisy = noisy[:120, :120]
    r1 = enhance(noisy, pixel_size_nm=PX, device="cpu")
    r2 = enhance(7.0 * noisy + 100.0, pixel_size_nm=PX, device="cpu")
    np.testing.assert_allclose(r2.denoised, 7.0 * r1.denoised + 100.0, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(r2.column_probability, r1.column_probability, atol=1e-5)


def test_tiles_agree_with_one_pass(scene):
    """Overlap-tiling with a 48-pixel halo reproduces the one-pass result (same pooling grid)."""
    sim, _ = scene
    noisy = _noisy(sim, 1e3, seed=4)[0][:128, :128]
    whole = enhance(noisy, pixel_size_nm=PX, device="cpu", tile_px=512)  # 64 model px: one tile
    tiled = enhance(noisy, pixel_size_nm=PX, device="cpu", tile_px=128, halo_px=48)  # 32-px cores: 4 tiles
    np.testing.assert_allclose(tiled.denoised, whole.denoised, rtol=0, atol=1e-4 * np.ptp(whole.denoised))
    np.testing.assert_allclose(tiled.column_probability, whole.column_probability, rtol=0, atol=1e-4)


def test_result_records_provenance(runs):
    noisy, _, res = runs[1e3]
    prov = res.provenance.to_dict()
    assert prov["inputs"][0]["sha256"] == array_sha256(noisy)
    assert prov["parameters"]["weights_sha256"] == weights_card()["weights_sha256"]
    assert prov["parameters"]["pixel_size_nm"] == PX and res.device == "cpu"


def test_peaks_of_drawn_gaussians_are_exact():
    """probability_peaks on a map of Gaussians at known sub-pixel positions (analytic truth)."""
    yy, xx = np.mgrid[0:80, 0:80] + 0.5
    truth = np.array([[20.3, 30.7], [50.5, 22.2], [60.9, 61.4]])  # (row, col) pixel centres + offset
    prob = np.zeros((80, 80))
    for r, c in truth:
        prob = np.maximum(prob, np.exp(-((yy - 0.5 - r) ** 2 + (xx - 0.5 - c) ** 2) / (2 * 1.2**2)))
    rows, cols = probability_peaks(prob, pixel_size_nm=0.02, min_separation_nm=0.2)
    order = np.argsort(rows)
    # the log-parabola through three samples of a Gaussian is exact
    np.testing.assert_allclose(np.column_stack([rows[order], cols[order]]), truth, atol=1e-6)


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------
def test_missing_or_damaged_weights_are_clear_errors(tmp_path):
    with pytest.raises(EnhancerWeightsError, match="does not exist"):
        load_enhancer(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00not a torch file" * 10)
    with pytest.raises(EnhancerWeightsError, match="cannot be read"):
        load_enhancer(bad)
    import torch

    wrong = tmp_path / "wrong.pt"
    payload = torch.load(resources.files("layerscope.imaging") / "weights" / "enhancer.pt", weights_only=True)
    payload["config"] = dict(payload["config"], base_channels=payload["config"]["base_channels"] * 2)
    torch.save(payload, wrong)
    with pytest.raises(EnhancerWeightsError, match="do not fit"):
        load_enhancer(wrong)
    torch.save({"state_dict": payload["state_dict"]}, wrong)
    with pytest.raises(EnhancerWeightsError, match="config"):
        load_enhancer(wrong)


def test_bad_inputs_are_refused():
    img = np.random.default_rng(0).poisson(3.0, (64, 64)).astype(float)
    with pytest.raises(InputError, match="2-D"):
        enhance(np.zeros((2, 64, 64)), pixel_size_nm=PX)
    with pytest.raises(InputError, match="colour"):
        enhance(np.zeros((64, 64, 3)), pixel_size_nm=PX)
    with pytest.raises(InputError, match="NaN"):
        enhance(np.where(img > 5, np.nan, img), pixel_size_nm=PX)
    with pytest.raises(InputError, match="constant"):
        enhance(np.full((64, 64), 4.0), pixel_size_nm=PX)
    with pytest.raises(CalibrationError, match="outside the range"):
        enhance(img, pixel_size_nm=0.1)
    with pytest.raises(CalibrationError, match="positive"):
        enhance(img, pixel_size_nm=-0.01)
    with pytest.raises(InputError, match="device"):
        enhance(img, pixel_size_nm=PX, device="tpu")
    with pytest.raises(InputError, match="at least"):
        enhance(img[:8, :8], pixel_size_nm=PX)
