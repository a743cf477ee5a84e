"""XAS: normalisation, edge energies and valences against synthetic spectra of known truth, and the real NMC set."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from scipy.special import erf

from layerscope.bulk.xas import XASOptions, analyse_xas, edge_features
from layerscope.bulk.xas_readers import XASSpectrum, read_xas
from layerscope.cli import run
from layerscope.errors import InputError

REAL = "xas/featurexas_nmc_ni_k/nmc_exp_xas.json"


def model(e, e0=8340.0, width=1.5, step=0.8, wl=0.5, pre=(0.3, -2e-5)):
    """Pre-edge line + error-function step of height ``step`` + a Gaussian white line 4 eV above e0."""
    line = pre[0] + pre[1] * (e - 8000.0)
    edge = step * 0.5 * (1.0 + erf((e - e0) / (width * np.sqrt(2.0))))
    white = wl * step * np.exp(-0.5 * ((e - e0 - 4.0) / 2.0) ** 2)
    return line + edge + white


def spectrum(e0=8340.0, noise=0.0, seed=0, name="s"):
    e = np.arange(8140.0, 8800.0, 0.25)
    mu = model(e, e0=e0) + np.random.default_rng(seed).normal(0.0, noise, e.size)
    return XASSpectrum(e, mu, name)


def test_normalisation_and_edges_match_the_model():
    spec = spectrum(noise=1e-4)
    res = edge_features(spec)
    # independent truth from the noiseless model: derivative maximum on a fine grid, half-step root
    fine = np.arange(8320.0, 8360.0, 0.001)
    truth_e0 = fine[np.argmax(np.gradient(model(fine), fine))]
    half = brentq(lambda x: (model(x) - (0.3 - 2e-5 * (x - 8000.0))) / 0.8 - 0.5, 8330.0, 8342.0)
    assert res.normalisation == "step"
    assert res.edge_step == pytest.approx(0.8, rel=0.005)
    assert res.e0_eV == pytest.approx(truth_e0, abs=0.05)
    assert res.edge_energy_eV == pytest.approx(half, abs=0.15)
    assert res.white_line_eV == pytest.approx(fine[np.argmax(model(fine))], abs=0.1)
    assert 0 < res.edge_energy_err_eV < 0.05 and 0 < res.e0_err_eV < 0.1
    assert not res.flags


def test_edge_shift_follows_a_known_shift():
    a, b = edge_features(spectrum(8340.0, name="a")), edge_features(spectrum(8342.5, name="b"))
    assert b.edge_energy_eV - a.edge_energy_eV == pytest.approx(2.5, abs=0.02)
    assert b.e0_eV - a.e0_eV == pytest.approx(2.5, abs=0.05)


def test_valence_by_linear_combination_and_by_shift():
    ni2, ni3 = spectrum(8340.0, 5e-4, 1, "ni2"), spectrum(8342.0, 5e-4, 2, "ni3")
    mix = XASSpectrum(ni2.energy_eV, 0.3 * ni2.mu + 0.7 * ni3.mu
                      + np.random.default_rng(3).normal(0, 5e-4, ni2.mu.size), "mix")
    mid = spectrum(8341.0, 5e-4, 4, "mid")
    opts = XASOptions(references=(("ni2", 2.0), ("ni3", 3.0)))
    res = analyse_xas([ni2, ni3, mix, mid], opts)
    t = res.table.set_index("spectrum")
    assert t.loc["mix", "valence_lcf"] == pytest.approx(2.7, abs=0.01)
    assert 0 < t.loc["mix", "valence_lcf_err"] < 0.01
    assert t.loc["mid", "valence_shift"] == pytest.approx(2.5, abs=0.03)
    assert t.loc["ni3", "valence_lcf"] == pytest.approx(3.0, abs=0.01)
    # the section's headline quotes the samples' lowest and highest valence, never a reference's 2.0 / 3.0
    m = res.section().metrics
    low = next(v for k, v in m.items() if k.startswith("lowest valence"))
    high = next(v for k, v in m.items() if k.startswith("highest valence"))
    assert float(high) == pytest.approx(2.7, abs=0.01) and "(mix;" in next(k for k in m if k.startswith("highest"))
    assert 2.3 < float(low) < 2.7 and low.uncertainty is not None and 0 < low.uncertainty < 0.05


def test_short_xanes_is_flagged_not_refused():
    e = np.arange(8330.0, 8370.0, 0.4)
    res = edge_features(XASSpectrum(e, model(e, e0=8347.0) / model(e, e0=8347.0).max(), "short"))
    codes = {f["code"] for f in res.flags}
    assert codes == {"no_post_edge", "short_pre_edge"}
    assert res.normalisation == "white-line"
    assert res.e0_eV == pytest.approx(e[np.argmax(np.gradient(model(e, e0=8347.0), e))], abs=0.4)


def test_readers_xdi_transmission_and_athena_header(tmp_path):
    e = np.arange(8200.0, 8600.0, 0.5)
    mu = model(e)
    i0 = np.full(e.size, 1e5)
    it = i0 * np.exp(-mu)
    lines = ["# XDI/1.0", "# Column.1: energy eV", "# Column.2: i0", "# Column.3: itrans", "# Sample.name: NiO",
             "#----", "# energy i0 itrans"] + [f"{a:.3f} {b:.6g} {c:.8g}" for a, b, c in zip(e, i0, it)]
    (tmp_path / "nio.xdi").write_text("\n".join(lines))
    spec = read_xas(tmp_path / "nio.xdi")[0]
    assert spec.mu_from == "ln(I0/It)" and spec.composition == "NiO"
    assert np.max(np.abs(spec.mu - mu)) < 1e-6
    athena = ["# Athena export", "# ------", "#  energy  norm  der"] + [f"{a} {b} 0" for a, b in zip(e, mu)]
    (tmp_path / "x.nor").write_text("\n".join(athena))
    assert np.allclose(read_xas(tmp_path / "x.nor")[0].mu, mu)
    pd.DataFrame({"Energy (eV)": e, "mu": mu}).to_csv(tmp_path / "spaces.csv", index=False)
    assert np.allclose(read_xas(tmp_path / "spaces.csv")[0].energy_eV, e)


def test_reader_takes_spreadsheet_exports_through_textcols(tmp_path):
    """Decimal comma with ';' (and tab), a byte-order mark, a Latin-1 header: the values of the file exactly."""
    e = np.arange(8200.0, 8600.0, 0.5)
    mu = model(e)
    rows = [f"{a:.1f};{b:.9f}".replace(".", ",") for a, b in zip(e, mu)]
    (tmp_path / "semi.csv").write_bytes(("\ufeffEnergy (eV);mu\n" + "\n".join(rows)).encode("utf-8"))
    spec = read_xas(tmp_path / "semi.csv")[0]
    # before io.textcols, '8200,0;0,3...' split on every comma into 4 numbers (energy 8200 then 0)
    assert spec.energy_eV.size == e.size and np.max(np.abs(spec.energy_eV - e)) == 0.0
    assert np.max(np.abs(spec.mu - mu)) < 1e-9
    tabs = [f"{a:.1f}\t{b:.9f}".replace(".", ",") for a, b in zip(e, mu)]
    text = "# Probe: NiO bei 25 °C\nenergy\tmu\n" + "\n".join(tabs)
    (tmp_path / "tab.txt").write_bytes(text.encode("latin-1"))
    assert np.max(np.abs(read_xas(tmp_path / "tab.txt")[0].mu - mu)) < 1e-9


def test_refusals(tmp_path, shared_data, capsys):
    (tmp_path / "noenergy.csv").write_text("time,mu\n" + "\n".join(f"{i},{i}" for i in range(50)))
    with pytest.raises(InputError, match="no energy column.*energy_eV"):
        read_xas(tmp_path / "noenergy.csv")
    # an impedance file: three unnamed columns, frequencies not X-ray energies
    code = run(["xas", str(shared_data / "eis/impedance_py/exampleData.csv"), "--out", str(tmp_path / "o1")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unnamed columns" in err[0]
    code = run(["xas", str(shared_data / REAL), "--out", str(tmp_path / "o2")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--energy-grid" in err[0] and not (tmp_path / "o2").exists()
    flat = pd.DataFrame({"energy": np.arange(8300, 8400, 0.5), "mu": np.ones(200)})
    flat.to_csv(tmp_path / "flat.csv", index=False)
    with pytest.raises(InputError, match="no absorption edge"):
        edge_features(read_xas(tmp_path / "flat.csv")[0])


def test_real_nmc_set_charged_edges_above_pristine_and_discharged(tmp_path, shared_data):
    out = tmp_path / "xas"
    code = run(["xas", str(shared_data / REAL), "--energy-grid", "8330:0.4", "--out", str(out),
                "--reference", "0=2.67", "--reference", "2=3.6"])
    assert code == 0
    t = pd.read_csv(out / "edges.csv")
    assert len(t) == 16 and set(t["composition"]) == {"NMC622", "NMC721"}
    for comp, g in t.groupby("composition"):
        charged = g[g["voltage"] >= 4.3]["edge_energy_eV"]
        low = g[~(g["voltage"] >= 4.3)]["edge_energy_eV"]  # pristine (no voltage) and 3.0 V
        # the Ni K edge moves up on charge (Ni2+/3+ -> Ni3+/4+): at least 1.5 eV between every pair
        assert charged.min() - low.max() > 1.5, comp
    # E0 against an independent derivative maximum computed with numpy (no smoothing, on the 0.4 eV grid):
    # within two grid steps each, 0.3 eV in the median
    doc = json.loads((shared_data / REAL).read_text())
    diffs = []
    for k, row in t.iterrows():
        y = np.asarray(doc["intensity"][str(row["spectrum"])])
        e = 8330.0 + 0.4 * np.arange(y.size)
        diffs.append(row["e0_derivative_eV"] - e[np.argmax(np.gradient(y, e))])
    assert np.max(np.abs(diffs)) <= 0.8 and np.median(np.abs(diffs)) <= 0.3
    summary = json.loads((out / "summary.json").read_text())
    assert {f["code"] for f in summary["flags"]} >= {"no_post_edge"}
    # --reference is wired: valences appear and the references are recorded
    assert summary["parameters"]["references"] == [["0", 2.67], ["2", 3.6]]
    assert t.loc[t["spectrum"] == 0, "valence_lcf"].item() == pytest.approx(2.67, abs=0.01)
    assert (out / "report.html").read_text().count("X-ray absorption edges") >= 1
