"""Every option of ``layerscope xrd`` and ``layerscope kinetics`` reaches the analysis (issue 21): each one
changes a number with a known truth or the recorded parameters, bad values are refused naming the
option, and the provenance holds the sha256 of every input file."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from diffraction_synthetic import CU_KA1, CU_KA2, layered_pattern
from layerscope.cli import run
from layerscope.diffraction import williamson_hall
from layerscope.diffraction.options import KineticsOptions, XRDOptions
from layerscope.errors import InputError
from test_kinetics import first_order_run

NIO_A = 4.1769  # Angstrom, the rock salt added to the second pattern


def _with_nio(x, y):
    """NiO (111), (200), (220) as Cu K-alpha doublets of Gaussians (FWHM 0.08 deg) added to ``y``."""
    for hkl, area in (((1, 1, 1), 3000.0), ((2, 0, 0), 6000.0), ((2, 2, 0), 3000.0)):
        d = NIO_A / np.sqrt(sum(i * i for i in hkl))
        for lam, r in ((CU_KA1, 1.0), (CU_KA2, 0.5)):
            tt = 2 * np.degrees(np.arcsin(lam / (2 * d)))
            s = 0.08 / 2.3548
            y = y + area * r * np.exp(-0.5 * ((x - tt) / s) ** 2) / (s * np.sqrt(2 * np.pi))
    return y


@pytest.fixture(scope="module")
def patterns(tmp_path_factory):
    """Text patterns (no wavelength in the file): c = 14.20 Å (truth known), c = 14.25 Å with NiO."""
    d = tmp_path_factory.mktemp("wiring_xrd")
    x, y, truth = layered_pattern(c=14.20, seed=1)
    np.savetxt(d / "c1420.xy", np.c_[x, y], header="2theta counts")
    x2, y2, _ = layered_pattern(c=14.25, noise=False)
    y2 = np.random.default_rng(2).poisson(_with_nio(x2, y2)).astype(float)
    np.savetxt(d / "c1425_nio.xy", np.c_[x2, y2], header="2theta counts")
    return d / "c1420.xy", d / "c1425_nio.xy", truth


def _xrd(out, *args):
    assert run(["xrd", *map(str, args), "--out", str(out)]) == 0
    return json.loads((out / "summary.json").read_text())


def test_every_xrd_option_changes_the_result_or_the_record(patterns, tmp_path):
    p1, p2, truth = patterns
    s = _xrd(tmp_path / "cu", p1, "--radiation", "Cu")
    first = s["patterns"][0]
    assert first["lattice"]["c_A"] == pytest.approx(14.20, rel=2e-4)
    assert first["I003_I104"] == pytest.approx(truth[(0, 0, 3)]["area"] / truth[(1, 0, 4)]["area"], rel=0.03)
    assert first["kalpha2_A"] == pytest.approx(CU_KA2) and s["provenance"]["parameters"]["radiation"] == "Cu"
    wh = first["williamson_hall"]
    assert wh["size_nm"] == pytest.approx(40.0, rel=0.05) and not wh["instrument_corrected"]

    mono = _xrd(tmp_path / "mono", p1, "--wavelength-a", str(CU_KA1))
    assert mono["patterns"][0]["kalpha2_A"] is None and mono["provenance"]["parameters"]["wavelength_A"] == CU_KA1
    ref = _xrd(tmp_path / "ref", p1, "--radiation", "Cu", "--reference", "NMC811")  # the true start lattice
    assert ref["provenance"]["parameters"]["reference"] == "NMC811"
    assert ref["patterns"][0]["lattice"]["c_A"] == pytest.approx(14.20, rel=2e-4)
    # LiCoO2's a (2.8156 Å, 2 % short) predicts (104) and (110) where this pattern has none: flagged, no a
    wrong = _xrd(tmp_path / "wrong", p1, "--radiation", "Cu", "--reference", "LiCoO2")
    assert {"(104) not found", "(110) not found"} <= {f["message"] for f in wrong["flags"]}
    assert "a_A" not in wrong["patterns"][0]["lattice"] and "a_A" in first["lattice"]

    # an instrumental 0.05 deg removed in quadrature: the size of Williamson-Hall on the true widths
    inst = _xrd(tmp_path / "inst", p1, "--radiation", "Cu", "--instrument-fwhm-deg", "0.05")
    tt = np.array([t["two_theta"] for t in truth.values()])
    fw = np.array([t["fwhm"] for t in truth.values()])
    expect = williamson_hall(tt, fw, wavelength_A=CU_KA1, instrument_fwhm_deg=0.05)["size_nm"]  # 41.2 nm
    wh = inst["patterns"][0]["williamson_hall"]
    assert wh["instrument_corrected"] and wh["size_nm"] == pytest.approx(expect, rel=0.05)
    assert inst["provenance"]["parameters"]["instrument_fwhm_deg"] == 0.05

    rs = _xrd(tmp_path / "nio", p2, "--radiation", "Cu", "--rock-salt", "NiO")
    assert rs["rock_salt"]["identified"] and rs["rock_salt"]["a_A"] == pytest.approx(NIO_A, rel=2e-4)
    assert "rock_salt" not in s


def test_series_labels_and_scheduler(patterns, tmp_path, capsys):
    p1, p2, _ = patterns
    args = [p1, p2, "--radiation", "Cu", "--labels", "0,60", "--label-name", "time_s"]
    s = _xrd(tmp_path / "series", *args)
    series = pd.read_csv(tmp_path / "series" / "series.csv")
    assert list(series["time_s"]) == [0.0, 60.0]
    np.testing.assert_allclose(series["c_A"], [14.20, 14.25], rtol=2e-4)
    assert s["provenance"]["parameters"]["labels"] == [0.0, 60.0]
    # the scheduler runs the fan-out (not an analysis parameter): threads give the same numbers ...
    _xrd(tmp_path / "threads", *args, "--scheduler", "threads")
    again = pd.read_csv(tmp_path / "threads" / "series.csv")
    np.testing.assert_allclose(again["c_A"], series["c_A"], rtol=0, atol=0)
    # ... and an address where no scheduler answers is refused naming the option
    assert run(["xrd", *map(str, args), "--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path / "no")]) == 2
    assert "--scheduler" in capsys.readouterr().err


@pytest.mark.parametrize("args, option", [
    (["--radiation", "Xx"], "--radiation"),
    (["--radiation", "Cu", "--wavelength-a", "1.54"], "--wavelength-a"),
    (["--wavelength-a", "-1"], "--wavelength-a"),
    (["--radiation", "Cu", "--instrument-fwhm-deg", "-0.05"], "--instrument-fwhm-deg"),
    (["--radiation", "Cu", "--reference", "LiFePO4"], "--reference"),
    (["--radiation", "Cu", "--rock-salt", "FeO"], "--rock-salt"),
    (["--radiation", "Cu", "--labels", "0,1"], "--labels"),
    (["--radiation", "Cu", "--label-name", " "], "--label-name"),
])
def test_bad_xrd_options_are_refused_naming_the_option(patterns, tmp_path, capsys, args, option):
    assert run(["xrd", str(patterns[0]), "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("layerscope: error: ") and option in err[0]
    assert not (tmp_path / "o").exists()


def test_xrd_provenance_hashes_every_pattern_file(patterns, tmp_path):
    p1, p2, _ = patterns
    s = _xrd(tmp_path / "p", p1, p2, "--radiation", "Cu")
    assert [i["sha256"] for i in s["provenance"]["inputs"]] == [hashlib.sha256(p.read_bytes()).hexdigest()
                                                                for p in (p1, p2)]


RATES = (2.0, 5.0, 10.0, 20.0)  # K/min


@pytest.fixture(scope="module")
def heating_runs(tmp_path_factory):
    """One CSV per rate: m32 released with Ea = 150 kJ/mol, m18 with Ea = 100 kJ/mol; with and without time_s."""
    d = tmp_path_factory.mktemp("wiring_kinetics")
    timed, untimed, peak_K = [], [], []
    for b in RATES:
        temp, time_s, m32 = first_order_run(b, seed=int(b))
        _, _, m18 = first_order_run(b, ea=100e3, a=1e8, seed=100 + int(b))
        _, _, exact = first_order_run(b, noise=0.0)
        peak_K.append(float(temp[np.argmax(exact)]))
        frame = pd.DataFrame({"time_s": time_s, "temperature_C": temp - 273.15, "m32": m32, "m18": m18})
        frame.to_csv(d / f"timed_{b:g}.csv", index=False)
        frame.drop(columns=["time_s"]).to_csv(d / f"untimed_{b:g}.csv", index=False)
        timed.append(d / f"timed_{b:g}.csv")
        untimed.append(d / f"untimed_{b:g}.csv")
    return timed, untimed, peak_K


def _kinetics(out, files, *args):
    assert run(["kinetics", *map(str, files), "--out", str(out), *args]) == 0
    return json.loads((out / "summary.json").read_text()), pd.read_csv(out / "peaks.csv")


def test_every_kinetics_option_changes_the_result_or_the_record(heating_runs, tmp_path):
    timed, untimed, peak_K = heating_runs
    s, peaks = _kinetics(tmp_path / "m32", timed, "--signal", "m32")
    assert s["kissinger"]["ea_kJ_mol"] == pytest.approx(150.0, rel=0.03)
    np.testing.assert_allclose(peaks["peak_K"], peak_K, atol=1.0)  # the noiseless curves' maxima (0.25 K grid)
    assert s["provenance"]["parameters"] == {"signal": "m32", "heating_rates": None, "window_K": 10.0}
    s18, _ = _kinetics(tmp_path / "m18", timed, "--signal", "m18")
    assert s18["kissinger"]["ea_kJ_mol"] == pytest.approx(100.0, rel=0.03)
    wide, wpeaks = _kinetics(tmp_path / "wide", timed, "--signal", "m32", "--window-k", "20")
    assert wide["provenance"]["parameters"]["window_K"] == 20.0
    np.testing.assert_allclose(wpeaks["peak_K"], peak_K, atol=1.0)
    assert not np.array_equal(wpeaks["peak_K"].to_numpy(), peaks["peak_K"].to_numpy())
    given, gpeaks = _kinetics(tmp_path / "given", untimed, "--signal", "m32", "--heating-rates", "2,5,10,20")
    assert list(gpeaks["heating_rate_K_min"]) == list(RATES) and set(gpeaks["heating_rate_from"]) == {"given"}
    assert given["kissinger"]["ea_kJ_mol"] == pytest.approx(150.0, rel=0.03)
    assert given["provenance"]["parameters"]["heating_rates"] == list(RATES)
    assert [i["sha256"] for i in given["provenance"]["inputs"]] == [hashlib.sha256(p.read_bytes()).hexdigest()
                                                                    for p in untimed]


@pytest.mark.parametrize("args, option", [
    (["--signal", "m44"], "--signal"),
    (["--signal", "m32", "--window-k", "0"], "--window-k"),
    (["--signal", "m32", "--heating-rates", "2,5,10"], "--heating-rates"),
    (["--signal", "m32", "--heating-rates", "2,5,-10,20"], "--heating-rates"),
    (["--signal", "m32", "--heating-rates", "4,10,20,40"], "heating rate"),  # disagrees with time_s
])
def test_bad_kinetics_options_are_refused_naming_the_option(heating_runs, tmp_path, capsys, args, option):
    assert run(["kinetics", *map(str, heating_runs[0]), "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("layerscope: error: ") and option in err[0]


def test_options_are_frozen_values():
    o = XRDOptions(radiation="Cu", labels=[0, 60])
    assert o.labels == (0.0, 60.0) and o.to_dict()["labels"] == [0.0, 60.0]
    with pytest.raises(Exception):
        o.radiation = "Co"  # frozen
    assert XRDOptions(scheduler="threads") == XRDOptions()  # the scheduler is not an analysis parameter
    with pytest.raises(InputError, match="--window-k"):
        KineticsOptions(signal="m32", window_K=-1.0)
