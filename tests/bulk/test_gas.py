"""Gas evolution: onsets and amounts on synthetic peaks of known onset and area, refusals, the Kissinger link."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from layerscope.bulk.gas import analyse_gas, read_gas
from layerscope.cli import run
from layerscope.errors import InputError

R = 8.314462618


def triangle(x, start, top, end, height):
    """Zero before ``start``, linear up to ``height`` at ``top``, linear down to zero at ``end``."""
    return height * np.clip(np.minimum((x - start) / (top - start), (end - x) / (end - top)), 0, None)


def dems_csv(path, noise=2e-13, seed=1):
    """A 10 h charge from 3.0 to 4.8 V at constant rate; O2 from 4.30 V, CO2 from 4.00 V (triangles in time)."""
    t = np.arange(0.0, 36000.0, 10.0)
    v = 3.0 + 1.8 * t / 36000.0
    rng = np.random.default_rng(seed)
    o2 = 1e-12 + triangle(v, 4.30, 4.55, 4.75, 2e-10) + rng.normal(0, noise, t.size)
    co2 = 3e-12 + triangle(v, 4.00, 4.40, 4.70, 5e-10) + rng.normal(0, noise, t.size)
    pd.DataFrame({"time_s": t, "voltage_V": v, "mz32": o2, "m/z 44": co2}).to_csv(path, index=False)
    # exact areas over time: triangle area = 0.5 * base (s) * height (A); 1 V = 20000 s here
    return {32: 0.5 * (4.75 - 4.30) * 20000.0 * 2e-10, 44: 0.5 * (4.70 - 4.00) * 20000.0 * 5e-10}


def test_onsets_and_calibrated_amounts(tmp_path):
    areas = dems_csv(tmp_path / "dems.csv")
    out = tmp_path / "gas"
    assert run(["gas", str(tmp_path / "dems.csv"), "--calibration", "32=0.02,44=0.01", "--active-mass-mg", "12.5",
                "--out", str(out)]) == 0
    t = pd.read_csv(out / "gas.csv").set_index("mz")
    assert t.loc[32, "onset_extrapolated"] == pytest.approx(4.30, abs=0.005)
    assert t.loc[44, "onset_extrapolated"] == pytest.approx(4.00, abs=0.005)
    assert 0 < t.loc[32, "onset_err"] < 0.005
    # the threshold onset lies after the true onset (it needs the signal above 5 sigma), but close
    assert 4.30 < t.loc[32, "onset_threshold"] < 4.32
    assert t.loc[32, "peak_x"] == pytest.approx(4.55, abs=0.01)
    assert t.loc[32, "charge_As"] == pytest.approx(areas[32], rel=0.01)
    assert t.loc[32, "amount_umol_g"] == pytest.approx(0.02 * areas[32] * 1e6 / 12.5e-3, rel=0.01)
    assert t.loc[44, "amount_umol_g"] == pytest.approx(0.01 * areas[44] * 1e6 / 12.5e-3, rel=0.01)
    s = json.loads((out / "summary.json").read_text())
    assert s["parameters"]["active_mass_mg"] == 12.5 and s["parameters"]["calibration_mol_s_per_A"] == {"32": 0.02,
                                                                                                       "44": 0.01}


def test_calibration_without_mass_is_refused(tmp_path, capsys):
    dems_csv(tmp_path / "dems.csv")
    code = run(["gas", str(tmp_path / "dems.csv"), "--calibration", "32=0.02", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--active-mass-mg" in err[0] and not (tmp_path / "o").exists()


def test_foreign_files_are_refused(tmp_path, shared_data):
    with pytest.raises(InputError, match="no ion-current column"):
        read_gas(shared_data / "eis/impedance_py/exampleData.csv")
    (tmp_path / "noaxis.csv").write_text("mz32,mz44\n" + "\n".join(f"{i},{i}" for i in range(40)))
    with pytest.raises(InputError, match="no time_s, voltage_V or temperature_C"):
        read_gas(tmp_path / "noaxis.csv")


def test_flat_signal_is_flagged_without_an_onset(tmp_path):
    t = np.arange(0.0, 3600.0, 5.0)
    rng = np.random.default_rng(0)
    pd.DataFrame({"time_s": t, "voltage_V": 3 + t / 3600, "mz32": 1e-12 + rng.normal(0, 1e-14, t.size)}).to_csv(
        tmp_path / "flat.csv", index=False)
    res = analyse_gas([read_gas(tmp_path / "flat.csv")])
    assert np.isnan(res.table["onset_extrapolated"].iloc[0])
    assert [f["code"] for f in res.flags] == ["no_release"]


def first_order_run(path, beta_K_min, ea_kJ=160.0, ln_a=26.0):
    """TGA-MS heating run: first-order O2 release, signal = d(alpha)/dt (integrated on a fine grid)."""
    temp = np.arange(150.0, 450.0, 0.05) + 273.15
    dt = 0.05 / (beta_K_min / 60.0)
    k = np.exp(ln_a - ea_kJ * 1e3 / (R * temp))
    alpha = 1.0 - np.exp(-np.cumsum(k) * dt)
    rate = k * (1.0 - alpha)
    time = (temp - temp[0]) / (beta_K_min / 60.0)
    pd.DataFrame({"time_s": time[::10], "temperature_C": temp[::10] - 273.15, "mz32": rate[::10]}).to_csv(path,
                                                                                                        index=False)


def test_kinetics_link_recovers_the_activation_energy(tmp_path):
    files = []
    for beta in (2.0, 5.0, 10.0, 20.0):
        p = tmp_path / f"tga_{beta:g}.csv"
        first_order_run(p, beta)
        files.append(str(p))
    out = tmp_path / "kin"
    assert run(["gas", *files, "--kinetics", "--x", "temperature", "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["kinetics"]["kissinger"]["ea_kJ_mol"] == pytest.approx(160.0, rel=0.03)
    assert (out / "kissinger.csv").is_file()
    assert "Gas evolution" in (out / "report.html").read_text()
    onsets = pd.read_csv(out / "gas.csv")["onset_extrapolated"]
    assert np.all(np.diff(onsets.to_numpy()) > 0)  # faster heating, later onset


def test_bulk_demo_section_recovers_its_truth(tmp_path):
    from layerscope.bulk.demo import demo_section

    sec = demo_section(tmp_path, seed=0)
    m = sec.metrics
    assert float(m["Ni valence, linear combination (truth 2.7)"]) == pytest.approx(2.7, abs=0.01)
    assert m["R1 surface film (mOhm, truth 30)"] == pytest.approx(30.0, rel=0.02)
    assert m["R2 charge transfer (mOhm, truth 50)"] == pytest.approx(50.0, rel=0.02)
    assert m["O2 onset (V, truth 4.30)"] == pytest.approx(4.30, abs=0.005)
    assert m["CO2 onset (V, truth 4.00)"] == pytest.approx(4.00, abs=0.005)
    assert (tmp_path / "eis" / "fits.csv").is_file() and (tmp_path / "gas" / "gas.csv").is_file()
    assert len(sec.figures) == 3


def test_refusal_of_a_json_is_one_short_line(shared_data, tmp_path, capsys):
    code = run(["gas", str(shared_data / "xas/featurexas_nmc_ni_k/nmc_exp_xas.json"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and len(err[0]) < 300 and "mz32" in err[0]
