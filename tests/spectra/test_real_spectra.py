"""EELS on the spectra users actually have (issue 18): published background-removed edges, text
layouts, references from another instrument, separately recorded low losses, sanity flags."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

import layerscope as ls
from layerscope.cli import run
from layerscope.spectra.matching import FWHM_PER_SIGMA, broaden, kernel_sigma_eV, match_resolution
from layerscope.spectra.references import write_reference_set

EELSDB = Path("eels/eelsdb_via_nomad")
LSMO = "la0-7sr0-3mno3srtio3-001-heterostructure"


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def _median(summary: dict, key: str) -> float:
    return summary["maps"][key]["median"]


# ----------------------------------------------------------------------------- resolution matching
def test_broadening_to_a_resolution_is_exact_for_a_gaussian():
    e = np.arange(600.0, 700.0, 0.05)
    y = np.exp(-0.5 * ((e - 650.0) / (0.6 / FWHM_PER_SIGMA)) ** 2)  # 0.6 eV FWHM
    yb = broaden(y, e, kernel_sigma_eV(0.6, 1.8))
    half = e[yb >= 0.5 * yb.max()]
    assert half[-1] - half[0] == pytest.approx(1.8, abs=0.06)  # within one channel
    rm = match_resolution(1.8, [0.6, 2.2])
    assert rm.target_fwhm_eV == 2.2 and rm.reference_sigma_eV[1] == 0.0
    assert rm.unknown_sigma_eV == pytest.approx(np.sqrt(2.2**2 - 1.8**2) / FWHM_PER_SIGMA)


# ----------------------------------------------------------------------------- blind valence
@pytest.fixture(scope="module")
def blind(shared_data, tmp_path_factory):
    """References: two EELS Data Base Mn L2,3 spectra as published (LSMO Mn 3.3+, 1.0 eV resolution;
    brownmillerite Mn 2.3+, 0.7 eV). Unknowns: the same spectra as another instrument would give them -
    broadened to 1.8 eV, shifted by +2.5 eV, resampled to 0.3 eV, 3x counts, 1 % noise."""
    root = tmp_path_factory.mktemp("blind")
    specs = {k: ls.load(shared_data / EELSDB / f"{LSMO}{suf}.msa")
             for k, suf in (("lsmo", ""), ("bm", "-brown-millerite-oxygen-vacancie"))}
    res = {"lsmo": 1.0, "bm": 0.7}
    val = {"lsmo": 3.3, "bm": 2.3}
    write_reference_set(root / "refs", [
        dict(name=k, energy_eV=np.asarray(s.energy_eV), signal=np.asarray(s.data), edge="Mn_L", valence=val[k],
             background_subtracted=True, source="EELS Data Base, Nord et al. 2015", resolution_eV=res[k])
        for k, s in specs.items()])
    rng = np.random.default_rng(0)
    for k, s in specs.items():
        e, y = np.asarray(s.energy_eV), np.asarray(s.data, dtype=float)
        yb = gaussian_filter1d(y, kernel_sigma_eV(res[k], 1.8) / (e[1] - e[0]), mode="nearest")
        enew = np.arange(e[0] + 0.1, e[-1] - 0.1, 0.3)
        yn = 3 * np.interp(enew, e, yb)
        yn += rng.normal(0, 0.01 * yn.max(), yn.size)
        np.savetxt(root / f"{k}.txt", np.column_stack([enew + 2.5, yn]), header="energy_eV counts", comments="")
    return root, val


@pytest.mark.parametrize("name", ["lsmo", "bm"])
def test_valence_from_references_of_another_instrument_within_0_3(blind, name, tmp_path):
    root, val = blind
    out = tmp_path / "out"
    code = run(["eels", str(root / f"{name}.txt"), "--edges", "Mn_L", "--references", str(root / "refs"),
                "--energy-shift-ev", "-2.5", "--resolution-ev", "1.8", "--background", "none", "--out", str(out)])
    assert code == 0
    v = _summary(out)["valence"]["Mn_L"]
    assert v["recommended"] == "valence_l3"
    assert v["value"] == pytest.approx(val[name], abs=0.3)
    assert v["methods"]["valence_lc"]["median"] == pytest.approx(val[name], abs=0.3)
    assert v["methods"]["valence_l3"]["sigma"] < 0.3
    assert "valence_l3l2" in v["methods"]  # shown side by side (its error is larger: docs/validation.md)


def test_energy_shift_option_changes_the_valence_and_disagreement_is_flagged(blind, tmp_path):
    root, val = blind
    out = tmp_path / "noshift"
    assert run(["eels", str(root / "bm.txt"), "--edges", "Mn_L", "--references", str(root / "refs"),
                "--resolution-ev", "1.8", "--out", str(out)]) == 0
    s = _summary(out)
    assert abs(s["valence"]["Mn_L"]["value"] - val["bm"]) > 0.3  # 2.5 eV off: the L3 method is wrong ...
    assert any(f["code"] == "Mn_L.valence_methods_disagree" for f in s["flags"])  # ... and says so
    assert s["provenance"]["parameters"]["energy_shift_eV"] == 0.0


# ----------------------------------------------------------------------------- published spectra as they come
def test_published_csv_with_bom_uneven_steps_and_no_pre_edge(shared_data, tmp_path):
    s = ls.load(shared_data / EELSDB / f"{LSMO}.msa")
    e, y = np.asarray(s.energy_eV), np.asarray(s.data, dtype=float)
    ref = tmp_path / "ref"
    assert run(["eels", str(shared_data / EELSDB / f"{LSMO}.msa"), "--edges", "Mn_L", "--out", str(ref)]) == 0
    l3_true = _median(_summary(ref), "Mn_L.peak_eV")
    ratio_true = _median(_summary(ref), "Mn_L.l3_l2")
    # a published reference: normalised, starting 3 eV below the onset, steps 0.2/0.4 eV, BOM + header
    keep = e >= 643.4
    idx = np.nonzero(keep)[0]
    idx = np.concatenate([idx[:60], idx[60::2]])
    f = tmp_path / "mn_ref.csv"
    rows = "\n".join(f"{a:.2f},{b / y.max():.6f}" for a, b in zip(e[idx], y[idx]))
    f.write_bytes(b"\xef\xbb\xbf" + f"Energy loss (eV),Normalised intensity\n{rows}\n".encode())
    out = tmp_path / "out"
    assert run(["eels", str(f), "--edges", "Mn_L", "--background", "none", "--out", str(out)]) == 0
    summ = _summary(out)
    assert _median(summ, "Mn_L.peak_eV") == pytest.approx(l3_true, abs=0.1)
    assert _median(summ, "Mn_L.l3_l2") == pytest.approx(ratio_true, rel=0.1)
    assert any("resampled" in n for n in summ["notes"])
    assert any(fl["code"] == "Mn_L.l3_off" and "--energy-shift-ev" in fl["message"] for fl in summ["flags"])


def test_background_none_equals_auto_detection_on_a_background_removed_spectrum(shared_data, tmp_path):
    f = shared_data / EELSDB / f"{LSMO}.msa"
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(["eels", str(f), "--edges", "Mn_L", "--out", str(a)]) == 0
    assert run(["eels", str(f), "--edges", "Mn_L", "--background", "none", "--out", str(b)]) == 0
    assert _median(_summary(a), "Mn_L.l3_l2") == pytest.approx(_median(_summary(b), "Mn_L.l3_l2"), rel=1e-9)
    assert _summary(b)["provenance"]["parameters"]["background_method"] == "none"
    assert any("already removed" in n for n in _summary(a)["notes"])


def test_cr_l_example_runs_without_window(shared_data, tmp_path):
    d = shared_data / "eels/exspy"
    out = tmp_path / "cr"
    assert run(["eels", str(d / "Cr_L_cl.hspy"), "--edges", "Cr_L", "--lowloss", str(d / "Cr_L_ll.hspy"),
                "--out", str(out)]) == 0
    s = _summary(out)
    # the example's pre-edge holds ~50 counts against a 1670-count L3 line: its background is removed
    assert any("already removed" in n for n in s["notes"])
    assert _median(s, "Cr_L.onset_eV") == pytest.approx(575.0, abs=3.0)
    # forcing a fit in the 8.8 eV of pre-edge the range offers also runs (no --window needed before 575 eV)
    assert run(["eels", str(d / "Cr_L_cl.hspy"), "--edges", "Cr_L", "--window", "Cr_L=560.5,569",
                "--out", str(tmp_path / "w")]) == 0


# ----------------------------------------------------------------------------- dual vs separate, ZLP sanity
def test_separately_recorded_low_loss_does_not_shift_the_core_loss(shared_data, tmp_path):
    d = shared_data / "eels/pyeelsmodel_SrTiO3"
    args = ["eels", str(d / "hl.msa"), "--edges", "Ti_L,O_K", "--lowloss", str(d / "ll.msa")]
    assert run(args + ["--out", str(tmp_path / "sep")]) == 0
    assert run(args + ["--dual-eels", "--out", str(tmp_path / "dual")]) == 0
    sep, dual = _summary(tmp_path / "sep"), _summary(tmp_path / "dual")
    assert _median(sep, "O_K.onset_eV") == pytest.approx(532.0, abs=1.5)  # O K of SrTiO3 ~532 eV
    assert sep["provenance"]["parameters"]["dual_eels"] is False
    assert _median(dual, "O_K.onset_eV") > 534.5  # the +4.2 eV of issue 18, now only on request
    # --dual-eels recalibrates the core-loss axis by minus the ZLP position of the low loss (-4.3 eV)
    import pandas as pd

    e_sep = pd.read_csv(tmp_path / "sep" / "edge_spectra.csv")["energy_eV"].min()
    e_dual = pd.read_csv(tmp_path / "dual" / "edge_spectra.csv")["energy_eV"].min()
    assert e_dual - e_sep == pytest.approx(-_median(dual, "zlp_position_eV"), abs=1e-6)
    assert _median(dual, "zlp_position_eV") == pytest.approx(-4.3, abs=0.2)


def test_low_loss_without_zero_loss_peak_is_refused(shared_data, tmp_path, capsys):
    cl = shared_data / "eels/exspy/coreloss_spectrum.msa"
    ll = shared_data / "eels/exspy/lowloss_spectrum.msa"
    s = ls.load(ll)
    e, y = np.asarray(s.energy_eV), np.asarray(s.data, dtype=float)
    plasmon_only = tmp_path / "plasmon_only.txt"  # the ZLP cut away: the 20-30 eV plasmon is the maximum
    keep = e > 8.0
    np.savetxt(plasmon_only, np.column_stack([e[keep], y[keep]]))
    out = tmp_path / "out"
    assert run(["eels", str(cl), "--edges", "Mn_L", "--lowloss", str(plasmon_only), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "plasmon_only.txt" in err[0] and "zero-loss" in err[0]
    assert not out.exists()
    pvd = shared_data / EELSDB / "pvd0062.msa"  # zero-loss peak removed by its author
    assert run(["eels", str(cl), "--edges", "Mn_L", "--lowloss", str(pvd), "--out", str(out)]) == 2
    assert "pvd0062.msa" in capsys.readouterr().err


# ----------------------------------------------------------------------------- sanity flags
def test_overlapping_edges_and_out_of_range_ratios_are_flagged(shared_data, tmp_path, capsys):
    f = shared_data / EELSDB / "la2nio4-structure-of-k2nif4.msa"
    out = tmp_path / "ni"
    assert run(["eels", str(f), "--edges", "O_K,Ni_L", "--out", str(out)]) == 0
    codes = {fl["code"] for fl in _summary(out)["flags"]}
    assert {"Ni_L.overlap", "Ni_L.l3_l2.out_of_range"} <= codes  # La M4,5 under the Ni L background
    assert "FLAG Ni_L.overlap" in capsys.readouterr().out
    d = shared_data / "eels/pyeelsmodel_SrTiO3"
    out2 = tmp_path / "sto"
    assert run(["eels", str(d / "hl.msa"), "--edges", "Ti_L,O_K", "--out", str(out2)]) == 0
    codes = {fl["code"] for fl in _summary(out2)["flags"]}
    assert {"O_K.overlap", "O_K.background_fit"} <= codes  # Ti L2,3 tail in the O K background window


def test_edge_entirely_outside_the_range_is_refused_with_the_option(shared_data, tmp_path, capsys):
    f = shared_data / EELSDB / f"{LSMO}.msa"
    assert run(["eels", str(f), "--edges", "O_K", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "O_K" in err and "--edges" in err and "_eV" not in err.replace("energy", "")


def test_align_edge_puts_a_shifted_spectrum_back_on_its_energy_scale(shared_data, tmp_path):
    s = ls.load(shared_data / "eels/pyeelsmodel_SrTiO3/hl.msa")
    e, y = np.asarray(s.energy_eV), np.asarray(s.data, dtype=float)
    shifted = tmp_path / "hl_shifted.txt"  # the same spectrum on a scale 3.7 eV too high
    np.savetxt(shifted, np.column_stack([e + 3.7, y]))
    a, b = tmp_path / "a", tmp_path / "b"
    assert run(["eels", str(shared_data / "eels/pyeelsmodel_SrTiO3/hl.msa"), "--edges", "Ti_L,O_K",
                "--out", str(a)]) == 0
    onset = _median(_summary(a), "O_K.onset_eV")
    assert run(["eels", str(shifted), "--edges", "Ti_L,O_K", "--align-edge", f"O_K={onset}", "--out", str(b)]) == 0
    sb = _summary(b)
    assert sb["provenance"]["parameters"]["energy_shift_eV"] == pytest.approx(-3.7, abs=0.05)
    assert _median(sb, "Ti_L.peak_eV") == pytest.approx(_median(_summary(a), "Ti_L.peak_eV"), abs=0.05)


def test_options_value_and_keyword_interface_agree(shared_data):
    from layerscope.errors import InputError
    from layerscope.spectra import EELSOptions, analyse, analyse_eels

    f = shared_data / EELSDB / f"{LSMO}.msa"
    a = analyse(ls.load(f), EELSOptions(edges=("Mn_L",), background_method="none"))
    b = analyse_eels(f, edges="Mn_L", background_subtracted=True)
    assert a.maps["Mn_L.l3_l2"] == pytest.approx(b.maps["Mn_L.l3_l2"], rel=1e-12)
    assert a.parameters["background_method"] == "none"
    with pytest.raises(InputError, match="--background 'spline'"):
        EELSOptions(edges=("Mn_L",), background_method="spline")


def test_core_loss_without_edges_is_refused_and_a_low_loss_alone_gives_t_over_lambda(shared_data, tmp_path, capsys):
    d = shared_data / "eels/exspy"
    assert run(["eels", str(d / "coreloss_spectrum.msa"), "--out", str(tmp_path / "a")]) == 2
    assert "give --edges" in capsys.readouterr().err
    out = tmp_path / "b"
    assert run(["eels", str(d / "lowloss_spectrum.msa"), "--out", str(out)]) == 0
    s = _summary(out)
    sp = ls.load(d / "lowloss_spectrum.msa")
    e, y = np.asarray(sp.energy_eV), np.asarray(sp.data, dtype=float)
    i = int(np.argmax(y))  # independent NumPy: log-ratio with I0 up to the first minimum 1-11 eV after the ZLP
    sm = np.convolve(y, np.ones(5) / 5, mode="same")
    j = i + 5 + int(np.argmin(sm[i + 5: i + 55]))
    assert _median(s, "t_over_lambda") == pytest.approx(np.log(y.sum() / y[:j].sum()), rel=0.01)
    above = e[y >= 0.5 * y[i]]
    assert s["zero_loss"]["zlp_fwhm_eV"] == pytest.approx(above[-1] - above[0], abs=0.4)  # within 2 channels


def test_background_none_on_a_raw_spectrum_is_flagged(shared_data, tmp_path):
    out = tmp_path / "raw"
    assert run(["eels", str(shared_data / "eels/exspy/coreloss_spectrum.msa"), "--edges", "Mn_L",
                "--background", "none", "--out", str(out)]) == 0
    assert "Mn_L.background_not_removed" in {f["code"] for f in _summary(out)["flags"]}
    # a background-removed spectrum with --background none raises no such flag
    out2 = tmp_path / "removed"
    assert run(["eels", str(shared_data / EELSDB / f"{LSMO}.msa"), "--edges", "Mn_L", "--background", "none",
                "--out", str(out2)]) == 0
    assert "Mn_L.background_not_removed" not in {f["code"] for f in _summary(out2)["flags"]}


def test_published_csv_references_in_an_excel_written_index(shared_data, tmp_path):
    """References as users get them: BOM + header + uneven steps, listed in a ';' index saved by Excel."""
    from layerscope.spectra.references import load_reference_set

    folder = tmp_path / "refs"
    folder.mkdir()
    for name, suf in (("lsmo", ""), ("bm", "-brown-millerite-oxygen-vacancie")):
        s = ls.load(shared_data / EELSDB / f"{LSMO}{suf}.msa")
        e, y = np.asarray(s.energy_eV), np.asarray(s.data, dtype=float)
        idx = np.concatenate([np.arange(0, 60), np.arange(60, e.size, 2)])
        rows = "\n".join(f"{a:.2f},{b / y.max():.6f}" for a, b in zip(e[idx], y[idx]))
        (folder / f"{name}.csv").write_bytes(b"\xef\xbb\xbf" + f"Energy (eV),Intensity\n{rows}\n".encode())
    (folder / "references.csv").write_bytes(
        b"\xef\xbb\xbffile;edge;valence;background_subtracted;source;resolution_eV\r\n"
        b"lsmo.csv;Mn_L;3.3;yes;EELS DB;1.0\r\nbm.csv;Mn_L;2.3;yes;EELS DB;0.7\r\n")
    rs = load_reference_set(folder).for_edge("Mn_L")
    assert [r.valence for r in rs] == [2.3, 3.3] and [r.resolution_eV for r in rs] == [0.7, 1.0]
    # the LSMO file itself as the unknown comes out at the LSMO reference's valence
    out = tmp_path / "out"
    assert run(["eels", str(shared_data / EELSDB / f"{LSMO}.msa"), "--edges", "Mn_L", "--references", str(folder),
                "--out", str(out)]) == 0
    assert _summary(out)["valence"]["Mn_L"]["value"] == pytest.approx(3.3, abs=0.1)


def test_poor_background_names_a_possible_hidden_edge_when_the_chemistry_is_unknown(shared_data, tmp_path):
    src = shared_data / EELSDB / "la2nio4-structure-of-k2nif4.msa"
    f = tmp_path / "unknown_specimen.txt"  # the spectrum without its record: La is not known to be present
    f.write_bytes(src.read_bytes())
    out = tmp_path / "out"
    assert run(["eels", str(f), "--edges", "Ni_L", "--out", str(out)]) == 0
    flags = {fl["code"]: fl["message"] for fl in _summary(out)["flags"]}
    assert "Ni_L.overlap" not in flags  # nothing says La is there ...
    assert "La M (832 eV)" in flags["Ni_L.background_fit"]  # ... but the poor fit names the suspect
