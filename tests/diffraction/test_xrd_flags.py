"""Plausibility flags and refusals of ``xrd``: synthetic patterns with a known I003/I104 and a known
shoulder, the real textured LiCoO2 mixture, the real NiO + Bi2O3 pattern without a layered phase,
and the CLI wiring (flags on the line, --radiation recorded and used)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from diffraction_synthetic import layered_pattern
from layerscope.cli import run
from layerscope.diffraction import analyse_layered, pattern_from_arrays
from layerscope.diffraction.layered import I003_I104_TEXTURE_LIMIT, POOR_FIT_REDUCED_CHI2


def _codes(res):
    return {f["code"] for f in res.flags}


@pytest.mark.parametrize("i003,flagged", [(1.3, False), (2.5, False), (5.0, True)])
def test_preferred_orientation_flag_follows_the_true_ratio(i003, flagged):
    inten = {(0, 0, 3): i003, (1, 0, 1): 0.3, (0, 0, 6): 0.1, (0, 1, 2): 0.12, (1, 0, 4): 1.0,
             (0, 1, 5): 0.12, (1, 0, 7): 0.1, (0, 1, 8): 0.1, (1, 1, 0): 0.12, (1, 1, 3): 0.1}
    x, y, truth = layered_pattern(intensities=inten, seed=3)
    res = analyse_layered(pattern_from_arrays(x, y, radiation="Cu"), displacement=False)
    assert res.i003_i104 == pytest.approx(i003, rel=0.05)
    assert ("preferred_orientation" in _codes(res)) is flagged
    # clean pseudo-Voigt doublets on Poisson noise fit to a reduced chi-square near 1: no poor_fit
    assert "poor_fit" not in _codes(res)
    assert res.reflections["reduced_chi2"].max() < 2.0


def test_poor_fit_flag_on_a_shoulder():
    """A second phase 0.15 deg above (003) with 40 % of its area: the single doublet misses it."""
    x, y, truth = layered_pattern(noise=False, seed=0)
    t = truth[(0, 0, 3)]
    sig = t["fwhm"] / 2.3548
    for c, r in ((t["two_theta"] + 0.15, 1.0), (t["two_theta"] + 0.15 + 0.048, 0.5)):
        y = y + 0.4 * t["area"] * r * np.exp(-0.5 * ((x - c) / sig) ** 2) / (sig * np.sqrt(2 * np.pi))
    y = np.random.default_rng(5).poisson(y).astype(float)
    res = analyse_layered(pattern_from_arrays(x, y, radiation="Cu"), displacement=False)
    chi = res.reflections.set_index("reflection")["reduced_chi2"]
    assert chi["(003)"] > POOR_FIT_REDUCED_CHI2
    msg = next(f["message"] for f in res.flags if f["code"] == "poor_fit")
    assert "(003)" in msg and "(104)" not in msg  # only the reflection with the shoulder is named


def test_textured_real_mixture_is_flagged_on_the_cli_line(shared_data, tmp_path, capsys):
    path = shared_data / "xrd" / "Nb2O5_CuO_LiCoO2.12-min.xrdml"
    out = tmp_path / "o"
    assert run(["xrd", str(path), "--out", str(out)]) == 0
    line = capsys.readouterr().out
    s = json.loads((out / "summary.json").read_text())
    ratio = s["patterns"][0]["I003_I104"]
    assert ratio > I003_I104_TEXTURE_LIMIT  # 22.5: far above a random LiCoO2 powder (~1.5)
    codes = {f["code"] for f in s["flags"]}
    assert codes == {"preferred_orientation", "poor_fit"}
    chi = pd.read_csv(out / "reflections.csv").set_index("reflection")["reduced_chi2"]
    assert chi["(003)"] > 100  # the reported fit the flag is about
    assert "flags: poor_fit, preferred_orientation" in line


def test_no_layered_phase_is_refused_unless_rock_salt_is_asked(shared_data, tmp_path, capsys):
    path = shared_data / "xrd" / "NiO_0p6007-Bi2O3_0p4008--8min.xrdml"
    out = tmp_path / "o"
    assert run(["xrd", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a layered oxide" in err[0] and "--rock-salt NiO" in err[0]
    assert not out.exists()
    assert run(["xrd", str(path), "--out", str(out), "--rock-salt", "NiO"]) == 0
    line = capsys.readouterr().out
    s = json.loads((out / "summary.json").read_text())
    assert s["layered_phase"] is False and s["patterns"][0].get("I003_I104") is None
    assert [f["code"] for f in s["flags"]] == ["no_layered_phase"]
    assert s["rock_salt"]["identified"] and s["rock_salt"]["a_A"] == pytest.approx(4.1769, rel=3e-3)  # ICDD 47-1049
    assert "no layered phase, NiO identified" in line
    assert run(["xrd", str(path), "--out", str(tmp_path / "o2"), "--rock-salt", "FeO"]) == 2
    assert "--rock-salt 'FeO' unknown" in capsys.readouterr().err
    # in a series every file must be layered, also with --rock-salt
    raw = shared_data / "xrd" / "licoo2_bruker" / "LiCoO2.RAW"
    assert run(["xrd", str(raw), str(path), "--out", str(tmp_path / "o3"), "--rock-salt", "NiO"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and path.name in err[0] and "every file of a series" in err[0]


def test_radiation_options_are_used_and_recorded(shared_data, tmp_path, capsys):
    folder = shared_data / "xrd" / "licoo2_bruker"
    # a wrong anode moves the expected (003) window: the RAW's Cu pattern is then refused as not layered
    assert run(["xrd", str(folder / "LiCoO2.RAW"), "--out", str(tmp_path / "co"), "--radiation", "Co"]) == 2
    assert "2-theta 21.3-22.7 deg at this wavelength" in capsys.readouterr().err
    runs = {}
    for tag, extra in (("cu", ["--radiation", "Cu"]), ("mono", ["--wavelength-a", "1.5405929"])):
        out = tmp_path / tag
        assert run(["xrd", str(folder / "LiCoO2.dat"), "--out", str(out), *extra]) == 0
        runs[tag] = json.loads((out / "summary.json").read_text())
        runs[tag]["refl"] = pd.read_csv(out / "reflections.csv").set_index("reflection")
    capsys.readouterr()
    cu, mono = runs["cu"], runs["mono"]
    assert cu["provenance"]["parameters"]["radiation"] == "Cu"
    assert mono["provenance"]["parameters"]["wavelength_A"] == 1.5405929
    assert cu["patterns"][0]["kalpha2_A"] == pytest.approx(1.5444274) and mono["patterns"][0]["kalpha2_A"] is None
    # one pseudo-Voigt instead of the K-alpha doublet sits between K-alpha1 and K-alpha2: the doublet
    # separation at 19 deg is 2 tan(theta) dlambda/lambda = 0.048 deg, the area-weighted centre 1/3 of it up
    shift = mono["refl"].loc["(003)", "center_deg"] - cu["refl"].loc["(003)", "center_deg"]
    assert shift == pytest.approx(0.016, abs=0.008)
