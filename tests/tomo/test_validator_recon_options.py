"""The tomography validator's reconstruction switches (tomorecon): ``--fbp-filter``, ``--ring-method`` and
``--iterations`` reach the ``ReconOptions`` the projection draws are analysed with, and each row records them."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def validator(load_script):
    return load_script("validate_tomo_draws")


def _options(validator, monkeypatch, **draw):
    """The TomoOptions ``_draw`` hands to ``run_draw`` (the draw itself is not run) and the row's added columns."""
    import layerscope.tomo.scoring as scoring

    seen = {}

    def fake(seed, options=None, **kw):
        seen["options"] = options
        return {"seed": seed}

    monkeypatch.setattr(scoring, "run_draw", fake)
    row = validator._draw(11, "default", **draw)
    return seen["options"].recon, row


def test_fbp_filter_ring_method_and_iterations_reach_the_reconstruction(validator, monkeypatch):
    ro, row = _options(validator, monkeypatch)
    assert (ro.fbp_filter, ro.ring_method, ro.algorithm) == ("ram-lak", "sorting", "fbp")  # the library's defaults
    assert row["fbp_filter"] == "ram-lak" and row["iterations"] is None
    ro, row = _options(validator, monkeypatch, fbp_filter="hann", ring_method="detect")
    assert (ro.fbp_filter, ro.ring_method) == ("hann", "detect")
    assert (row["fbp_filter"], row["ring_method"]) == ("hann", "detect")
    ro, row = _options(validator, monkeypatch, algorithm="cgls", iterations=15)
    assert (ro.algorithm, ro.iterations, row["iterations"]) == ("cgls", 15, 15)


def test_unknown_fbp_filter_is_refused_before_any_draw(validator, tmp_path):
    with pytest.raises(SystemExit) as err:
        validator.main(["--seeds", "11:12", "--out", str(tmp_path / "x.csv"), "--fbp-filter", "gauss"])
    assert err.value.code == 2 and not (tmp_path / "x.csv").exists()
