"""The plain-NumPy phantom of scripts/validate_tomo_independent.py (no layerscope code in its making) keeps its
stated ranges, and one fixed draw is measured to issue 20's targets (docs/validation.md, session 17)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def independent(load_script):
    return load_script("validate_tomo_independent")


def test_draws_keep_their_ranges(independent):
    vol, lab, cracks = independent.draw(3)
    assert vol.shape == (160,) * 3 and lab.max() == 4
    assert {c["width"] for c in cracks} <= {2.0, 3.0, 4.0}
    for c in cracks:  # a sheet w voxels thick through a sphere of radius >= 22: at least a disc of r = 11
        assert c["voxels"] >= c["width"] * np.pi * 11 ** 2 * 0.8


def test_one_draw_meets_the_targets(independent):
    rows = independent.score(1)  # 4 particles, two with one crack (widths 3 and 4 voxels)
    assert rows[0]["n_particles_found"] == 4
    for r in rows:
        assert r["cracks_found"] == r["cracks_truth"]
        if r["cracks_truth"]:
            assert r["cvf_found"] == pytest.approx(r["cvf_truth"], rel=0.10)
            assert abs(r["width_found_voxels"] - r["width_truth_voxels"]) <= 1.0
