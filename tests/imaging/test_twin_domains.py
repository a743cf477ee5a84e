"""Twin-like domains counted as the seed studies count them: n layers = n consecutive reversed TM-TM steps.

Scenes O3 (8) | O3' (k cation layers) | O3 (8) of :mod:`layerscope.crystal.scenes`; the truth is
read from the scene's projected TM columns (lateral registry of each TM layer to the next,
classified by the nearest of the three stackings), independently of the phase pipeline.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from imaging_scenes import PX, PROBE, noisy
from layerscope.imaging.pipeline import map_phases


@lru_cache(maxsize=None)
def _scene(k: int):
    from layerscope.crystal.scenes import Block, stack
    from layerscope.simulate import project_columns, simulate_haadf

    at = stack([Block("O3", 8), Block("O3'", k), Block("O3", 8)], composition="LiCoO2", zone="100",
               width_nm=3, thickness_nm=3, seed=1)
    return simulate_haadf(at, pixel_size_nm=PX, probe_fwhm_nm=PROBE), project_columns(at), at


def _reversed_runs(truth, a_nm: float) -> list[int]:
    """Lengths of the runs of consecutive reversed TM-TM steps in the scene ([100]: O3 registry -1/3)."""
    d_t = a_nm * np.sqrt(3) / 2
    tm = truth[truth["kind"] == "TM"]
    layers = sorted(tm["layer"].unique())
    x0 = [np.sort(tm.loc[tm["layer"] == k, "x_nm"].to_numpy())[0] for k in layers]
    reg = [((x0[i + 1] - x0[i]) / d_t + 0.5) % 1.0 - 0.5 for i in range(len(layers) - 1)]
    rev = np.abs(np.array(reg) - 1.0 / 3.0) < 0.1
    runs, n = [], 0
    for r in rev:
        if r:
            n += 1
        elif n:
            runs.append(n)
            n = 0
    return runs + ([n] if n else [])


@pytest.mark.parametrize("k", [2, 1, 3])
def test_twin_domain_counts_reversed_steps(k):
    sim, truth, at = _scene(k)
    (n_true,) = _reversed_runs(truth, at.info["a_nm"])  # k=2: 1 step, k=1: 2, k=3: 3
    pm = map_phases(noisy(sim, 1e4, seed=4), pixel_size_nm=PX, zone="100", composition="LiCoO2")
    twins = pm.domains[pm.domains["phase"] == "O3'"]
    assert len(twins) >= 1
    big = twins.iloc[0]
    assert big["n_tm_layers"] == n_true
    assert big["twin_type"] == {1: "single-layer", 2: "double-layer", 3: "multilayer"}[n_true]
    # The domain spans the whole field along the layers (one domain, not fragments).
    assert big["x_max_nm"] - big["x_min_nm"] > 0.8 * at.info["width_nm"]
    # Per-column labels: the TM columns the scene built as the twin block are O3' (nearest found TM column).
    from scipy.spatial import cKDTree

    want = sim.columns[(sim.columns["kind"] == "TM") & (sim.columns["phase"] == "O3'")]
    want = want[(want["x_nm"] > 0.2) & (want["x_nm"] < at.info["width_nm"] - 0.2)]
    tm = pm.columns[pm.columns["kind"] == "TM"]
    dist, idx = cKDTree(tm[["x_nm", "y_nm"]].to_numpy()).query(want[["x_nm", "y_nm"]].to_numpy())
    assert np.all(dist < 0.05)
    assert (tm["phase"].to_numpy()[idx] == "O3'").mean() >= 0.95


@pytest.mark.parametrize("k", [2, 3])
def test_low_dose_counts_one_domain_of_the_right_type(k):
    # 1e3 e/A^2, 4 nm wide, 5 nm thick: the domain count in summary.json is the truth (one twin-like
    # domain of n reversed steps); 2-column misreads at a layer's end are fragments, not domains.
    from layerscope.crystal.scenes import Block, stack
    from layerscope.simulate import project_columns, simulate_haadf

    at = stack([Block("O3", 8), Block("O3'", k), Block("O3", 8)], composition="LiCoO2", zone="100",
               width_nm=4, thickness_nm=5, seed=1)
    (n_true,) = _reversed_runs(project_columns(at), at.info["a_nm"])
    sim = simulate_haadf(at, pixel_size_nm=PX, probe_fwhm_nm=PROBE)
    pm = map_phases(noisy(sim, 1e3, seed=2), pixel_size_nm=PX, zone="100", composition="LiCoO2")
    kind = {1: "single-layer", 2: "double-layer", 3: "multilayer"}[n_true]
    assert pm.summary["twin_like_domains"] == {t: int(t == kind) for t in ("single-layer", "double-layer", "multilayer")}
    big = pm.domains[pm.domains["twin_type"] == kind].iloc[0]
    assert big["n_tm_layers"] == n_true


def _o1_steps(truth, a_nm: float) -> int:
    """Number of O1-like (zero-registry) TM-TM steps in the scene."""
    d_t = a_nm * np.sqrt(3) / 2
    tm = truth[truth["kind"] == "TM"]
    layers = sorted(tm["layer"].unique())
    x0 = [np.sort(tm.loc[tm["layer"] == k, "x_nm"].to_numpy())[0] for k in layers]
    reg = np.array([((x0[i + 1] - x0[i]) / d_t + 0.5) % 1.0 - 0.5 for i in range(len(layers) - 1)])
    return int(np.sum(np.abs(reg) < 0.1))


@pytest.mark.parametrize("k", [2, 4, 6])
def test_o1_domain_counts_its_steps(k):
    # O3 (8) | O1 (k cation layers, delithiated) | O3 (8): k/2 O1 steps between TM layers.
    from layerscope.crystal.scenes import Block, stack
    from layerscope.simulate import project_columns, simulate_haadf

    at = stack([Block("O3", 8), Block("O1", k, li_fraction=0.0), Block("O3", 8)], composition="LiCoO2",
               zone="100", width_nm=3, thickness_nm=3, seed=1)
    n_true = _o1_steps(project_columns(at), at.info["a_nm"])
    assert n_true == k // 2
    sim = simulate_haadf(at, pixel_size_nm=PX, probe_fwhm_nm=PROBE)
    pm = map_phases(noisy(sim, 1e4, seed=1), pixel_size_nm=PX, zone="100", composition="LiCoO2")
    o1 = pm.domains[pm.domains["phase"] == "O1"]
    assert len(o1) == 1 and int(o1.iloc[0]["n_tm_layers"]) == n_true
    assert o1.iloc[0]["n_cation_layers"] == k
