"""Phase labels on exact multislice (abTEM) images of the validation scenes.

``data/abtem_*.npz`` are scans that ``benchmarks/abtem_phases.py`` simulates (abTEM 1.0.11, 200 kV,
25 mrad, HAADF 80-200 mrad, static lattice; the scene one period wide, window by window along y):
the degraded LiCoO2 scene 5.07 nm thick on the CPU (~20 min on two cores), the same scene 30 nm
thick and the spinel scene 5 nm thick on a GPU (35 s and 12 s on an H100). Each test rebuilds the
scene, checks that the file is its scan, puts the scan on the 0.012 nm grid of the fast-model
tests, adds Poisson noise and scores every cation column against the builder's truth.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from layerscope.crystal.scenes import validation_scene
from layerscope.imaging.pipeline import map_phases
from layerscope.imaging.scoring import score_phases
from layerscope.provenance import structure_sha256
from layerscope.simulate import degrade
from layerscope.simulate.stacked import StackScan, stack_geometry

DATA = Path(__file__).parent / "data"
PX = 0.012


@lru_cache(maxsize=None)
def abtem_image(scene_name: str, thickness_nm: float):
    """(the scan on the 0.012 nm grid with its truth columns, the full-width scene) of
    ``data/abtem_{scene_name}_100_{thickness}nm.npz``."""
    scene = validation_scene(scene_name, zone="100", thickness_nm=thickness_nm, width_nm=0.4)
    scan = StackScan.load(DATA / f"abtem_{scene_name}_100_{thickness_nm:g}nm.npz")
    assert scan.geometry == stack_geometry(scene)
    assert scan.parameters["scene_sha256"] == structure_sha256(scene)  # the file is this scene's scan
    assert scan.parameters["convergence_mrad"] == 25.0 and scan.parameters["detector"] == "HAADF"
    sim = scan.simulation(scene, pixel_size_nm=PX, width_nm=4.0)
    return sim, validation_scene(scene_name, zone="100", thickness_nm=thickness_nm)


@pytest.fixture(scope="module")
def abtem_scene():
    return abtem_image("degraded", 5.0)


def _labels(sim, dose: float, seed: int):
    img = np.asarray(degrade(sim.image, dose_e_per_A2=dose, seed=seed, scan_jitter_px=0.2).data, float)
    pm = map_phases(img, pixel_size_nm=PX, zone="100", composition="LiCoO2")
    return pm, score_phases(pm.columns, sim.columns, extent_nm=(img.shape[1] * PX, img.shape[0] * PX))


def test_abtem_image_is_a_haadf_image_of_the_scene(abtem_scene):
    sim, _ = abtem_scene
    img = sim.image.data
    assert img.shape == (765, 333)
    vacuum = img[: int(0.5 / PX)]  # the top 0.5 nm: vacuum above the rock-salt surface
    assert vacuum.max() < 0.02 * img.max()
    # TM columns far brighter than Li columns in the O3 below the mixed region (channelling)
    cols = sim.columns[(sim.columns["y_nm"] > 5.0) & (sim.columns["phase"] == "O3")]
    r, c = (np.clip(np.round(cols[k].to_numpy() / PX - 0.5).astype(int), 0, n - 1)
            for k, n in (("y_nm", img.shape[0]), ("x_nm", img.shape[1])))
    value = img[r, c]
    assert np.median(value[cols["kind"] == "TM"]) > 5 * np.median(value[cols["kind"] == "Li"])


@pytest.mark.parametrize("thickness_nm, dose, seed", [(5.0, 1e4, 0), (5.0, 1e3, 1), (5.0, 5e2, 2), (30.0, 1e3, 0)])
def test_phase_labels_on_the_abtem_image(thickness_nm, dose, seed):
    """The issue's targets on the abTEM image: >= 97 % of the columns overall, >= 95 % per phase;
    O1 block +/- 1 layer; rock-salt layer +/- 0.3 nm. Measured: docs/validation.md."""
    sim, full = abtem_image("degraded", thickness_nm)
    pm, ps = _labels(sim, dose, seed)
    assert ps.accuracy >= 0.97, ps.per_phase
    assert min(ps.per_phase.values()) >= 0.95, ps.per_phase
    blocks = {b["phase"]: b for b in full.info["blocks"]}
    o1 = pm.domains[pm.domains["phase"] == "O1"].iloc[0]
    assert abs(o1["n_cation_layers"] - blocks["O1"]["n_layers"]) <= 1
    rs = blocks["rock_salt"]
    surface = pm.summary["quantities"]["surface_layer"]
    assert surface["thickness_nm"] == pytest.approx(rs["y_max_nm"] - rs["y_min_nm"], abs=0.3)


@pytest.mark.parametrize("dose, seed", [(1e3, 0), (5e2, 1)])
def test_spinel_block_on_the_abtem_image(dose, seed):
    """The spinel-like block between two O3 blocks on exact multislice: >= 97 % overall and >= 95 %
    for each of O3 and spinel (measured 100 % at every dose, docs/validation.md)."""
    sim, _ = abtem_image("spinel", 5.0)
    _, ps = _labels(sim, dose, seed)
    assert set(ps.per_phase) == {"O3", "spinel"}
    assert ps.accuracy >= 0.97, ps.per_phase
    assert min(ps.per_phase.values()) >= 0.95, ps.per_phase
