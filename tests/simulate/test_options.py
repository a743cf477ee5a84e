"""``layerscope simulate`` through SimulateOptions: each option reaches its stage, bad values are refused
naming the CLI option, and the CLI gives what the Python entry point gives (issue 21)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from layerscope.cli import run
from layerscope.errors import InputError
from layerscope.simulate.options import SimulateOptions, run_simulation

SMALL = dict(width_nm=1.2, height_nm=1.5, thickness_nm=2.0, pixel_size_nm=0.02)


def test_options_reach_the_image():
    base, _ = run_simulation(SimulateOptions(**SMALL))
    assert base.clean is None and base.image.pixel_size_nm == pytest.approx(0.02)
    # pixel size: half the step, twice the pixels along each axis (within one pixel of rounding)
    fine, _ = run_simulation(SimulateOptions(**{**SMALL, "pixel_size_nm": 0.01}))
    assert abs(fine.image.data.shape[1] - 2 * base.image.data.shape[1]) <= 1
    # dose: Poisson counts, mean = electrons per pixel x clean mean (1e4 e/A^2 on 0.2 A pixels: 400 e/pixel)
    noisy, _ = run_simulation(SimulateOptions(**SMALL, dose_e_per_A2=1e4, seed=3))
    assert np.asarray(noisy.image.data).mean() == pytest.approx(400 * np.asarray(base.image.data).mean(), rel=0.03)
    assert noisy.clean is not None
    # background: a uniform fraction of the beam added to the clean image
    bg, _ = run_simulation(SimulateOptions(**SMALL, background=0.01))
    np.testing.assert_allclose(np.asarray(bg.image.data), np.asarray(base.image.data) + 0.01, atol=1e-6)
    # probe: a wider probe lowers the peaks
    wide, _ = run_simulation(SimulateOptions(**{**SMALL, "probe_fwhm_nm": 0.12}))
    assert np.asarray(wide.image.data).max() < 0.8 * np.asarray(base.image.data).max()
    assert base.provenance.parameters["thickness_nm"] == 2.0 and base.provenance.parameters["scene"] == "bulk"


@pytest.mark.parametrize("kwargs,option", [
    (dict(engine="bloch"), "--engine"), (dict(pixel_size_nm=0.0), "--pixel-size-nm"),
    (dict(width_nm=-1.0), "--width-nm"), (dict(dose_e_per_A2=0.0), "--dose"),
    (dict(engine="multislice-stack", scene="demo"), "--engine multislice-stack"),
    (dict(detector=(10.0, 40.0)), "--detector"),
])
def test_bad_values_are_refused_naming_the_option(kwargs, option):
    with pytest.raises(InputError) as err:
        run_simulation(SimulateOptions(**{**SMALL, **kwargs}))
    assert str(err.value).startswith(option) and "\n" not in str(err.value)


def test_cli_equals_the_python_entry_point(tmp_path):
    from layerscope.io import load

    out = tmp_path / "sim"
    assert run(["simulate", "--out", str(out), "--width-nm", "1.2", "--height-nm", "1.5", "--thickness-nm", "2",
                "--pixel-size-nm", "0.02", "--dose", "1e4", "--seed", "3", "--drift-nm-per-s", "0.1,0.0",
                "--dwell-time-s", "1e-5"]) == 0
    sim, _ = run_simulation(SimulateOptions(**SMALL, dose_e_per_A2=1e4, seed=3, drift_nm_per_s=(0.1, 0.0),
                                            dwell_time_s=1e-5))
    np.testing.assert_array_equal(np.asarray(load(out / "image.tif").data, np.float32),
                                  np.asarray(sim.image.data, np.float32))
    rec = json.loads((out / "summary.json").read_text())["provenance"]["parameters"]
    assert rec["degradation"]["scan_drift_nm_per_s"] == pytest.approx([0.1, 0.0])
    assert rec["degradation"]["scan_dwell_time_s"] == pytest.approx(1e-5)
