"""Wiring of ``layerscope atomistic vacancies|neb`` (issue 21): every option reaches the analysis.

The potential loader is replaced by an additive potential (E = sum of per-element constants, zero
forces and stress): every relaxation is exact at step 0, so the runs take seconds and the numbers
are analytic: ΔG = -ΔHf(Li2O) - TΔS(T) for every O site, every NEB barrier is 0 eV.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import layerscope.cli.atomistic as cli_atomistic
from layerscope.atomistic.chemical_potential import DH_F_LI2O_EV, oxygen_entropy_term_eV
from layerscope.atomistic.options import NEBOptions, VacancyOptions
from layerscope.cli import run
from layerscope.errors import InputError

ENERGIES = {"Li": -1.9, "Co": -6.0, "Ni": -5.5, "Mn": -8.1, "O": -7.3}


@pytest.fixture
def loads(monkeypatch, element_energies, calculator_source):
    """Replace the potential loader; returns the list of (potential, device, threads) it was asked for."""
    calls = []

    def fake_load(potential, device, threads):
        calls.append((potential, device, threads))
        return calculator_source(potential, lambda: element_energies(ENERGIES))

    monkeypatch.setattr(cli_atomistic, "_load", fake_load)
    return calls


def _vacancies(tmp_path, *args):
    out = tmp_path / "vac"
    assert run(["atomistic", "vacancies", "--out", str(out), *args]) == 0
    return json.loads((out / "summary.json").read_text()), pd.read_csv(out / "sites.csv"), out


def _neb(tmp_path, *args):
    out = tmp_path / "neb"
    assert run(["atomistic", "neb", "--out", str(out), "--gliding", "0", *args]) == 0
    return json.loads((out / "summary.json").read_text()), pd.read_csv(out / "barriers.csv"), out


def test_vacancy_defaults_give_the_analytic_dG(tmp_path, loads):
    s, sites, _ = _vacancies(tmp_path)
    # LiCoO2 2x2x1 (48 atoms): all O sites are equivalent; ΔG exact to 1e-6 eV
    np.testing.assert_allclose(sites["dG_eV"], -DH_F_LI2O_EV - oxygen_entropy_term_eV(300.0), atol=1e-6)
    assert s["host_atoms"] == 48 and s["n_sites_represented"] == 24
    assert loads == [("chgnet-0.3.0", "auto", 1)]
    assert s["parameters"]["loaded_as"] == {"potential": "chgnet-0.3.0", "device": "auto", "threads": 1}
    assert s["provenance"]["parameters"]["temperature_K"] == 300.0  # one record: summary and provenance agree


@pytest.mark.parametrize("args, check", [
    (["--temperature-k", "600"],
     lambda s, t: np.allclose(t["dG_eV"], -DH_F_LI2O_EV - oxygen_entropy_term_eV(600.0), atol=1e-6)),
    (["--size", "1,1,2"], lambda s, t: s["host_atoms"] == 24),
    (["--bulk-size", "1,1,2", "--size", "1,1,1"], lambda s, t: s["host_atoms"] == 24),
    (["--li-fraction", "0.5"], lambda s, t: s["host_formula"] == "Co12Li6O24"),
    (["--composition", "NCM111"], lambda s, t: s["host_formula"] == "Co4Li12Mn4Ni4O24"),
    (["--potential", "7net-0", "--device", "cpu", "--threads", "2"],
     lambda s, t: s["parameters"]["loaded_as"] == {"potential": "7net-0", "device": "cpu", "threads": 2}),
    (["--fmax", "0.1", "--max-steps", "7"],
     lambda s, t: (s["parameters"]["fmax_eV_per_A"], s["parameters"]["max_steps"]) == (0.1, 7)),
    (["--seed", "3"], lambda s, t: s["parameters"]["seed"] == 3),
    (["--sigma", "13", "--expand-times", "2", "--repeat", "1,1", "--max-distance-a", "2.5"],
     lambda s, t: [s["parameters"][k] for k in ("sigma", "expand_times", "repeat", "max_distance_A")]
     == [13, 2, [1, 1], 2.5]),
    (["--all-sites"], lambda s, t: s["parameters"]["use_symmetry"] is False),
])
def test_each_vacancy_option_changes_the_result_or_the_record(tmp_path, loads, args, check):
    s, sites, _ = _vacancies(tmp_path, *args)
    assert check(s, sites), s


def test_twin_boundary_distance_and_haadf_options(tmp_path, loads):
    s, sites, out = _vacancies(tmp_path, "--structure", "twin", "--repeat", "2,1", "--max-distance-a", "2.0",
                               "--haadf-thickness-nm", "2", "--haadf-pixel-nm", "0.025", "--haadf-probe-nm", "0.1")
    assert s["structure"] == "twin"
    assert sites["distance_to_boundary_A"].max() <= 2.0 + 1e-9
    assert s["boundary_energy_J_per_m2"] == pytest.approx(0.0, abs=1e-9)  # additive potential: no boundary energy
    assert s["parameters"]["haadf_image"] == {"pixel_size_nm": 0.025, "probe_fwhm_nm": 0.1, "thickness_nm": 2.0}
    assert (out / "host_haadf.hspy").is_file()
    wide, wide_sites, _ = _vacancies(tmp_path / "wide", "--structure", "twin", "--repeat", "2,1",
                                     "--max-distance-a", "4.0")
    assert wide["n_sites_represented"] > s["n_sites_represented"]  # a wider band takes in more O sites


def test_neb_defaults_and_options(tmp_path, loads):
    s, t, out = _neb(tmp_path)
    # additive potential: every image has the same energy, the barrier is 0 eV exactly
    assert t["barrier_eV"].abs().max() < 1e-9 and len(t) == 1
    assert s["parameters"]["n_atoms"] == 47 and s["parameters"]["relax_radius_A"] == 6.0
    profiles = pd.read_csv(out / "profiles.csv")
    assert len(profiles) == 4 + 2
    s2, t2, out2 = _neb(tmp_path / "b", "--gliding", "0,0.02", "--direction", "100,120", "--n-images", "2",
                        "--relax-radius-a", "0", "--size", "2,2,2", "--fmax", "0.1", "--max-steps", "9",
                        "--seed", "1", "--potential", "7net-l3i5", "--device", "cpu", "--threads", "3")
    assert sorted(zip(t2["direction"], t2["gliding"])) == [("[100]", 0.0), ("[100]", 0.02), ("[120]", 0.0),
                                                          ("[120]", 0.02)]
    assert len(pd.read_csv(out2 / "profiles.csv")) == 4 * (2 + 2)
    p = s2["parameters"]
    assert p["n_atoms"] == 95 and p["relax_radius_A"] is None
    assert (p["fmax_eV_per_A"], p["max_steps"], p["seed"]) == (0.1, 9, 1)
    assert p["loaded_as"] == {"potential": "7net-l3i5", "device": "cpu", "threads": 3}
    assert s2["provenance"]["parameters"]["directions"] == ["[100]", "[120]"]


def test_neb_cation_and_composition_reach_the_analysis(tmp_path, loads, capsys):
    s, t, _ = _neb(tmp_path, "--composition", "NCM111", "--cation", "Ni")
    assert s["composition"] == "NCM111" and s["parameters"]["cation"] == "Ni"
    # LiCoO2 holds no Ni: the cation option reaches the end-point search, which refuses it
    assert run(["atomistic", "neb", "--out", str(tmp_path / "x"), "--gliding", "0", "--cation", "Ni"]) == 2
    assert "holds no Ni" in capsys.readouterr().err


@pytest.mark.parametrize("command, args, option", [
    ("vacancies", ["--structure", "grain"], "--structure"),
    ("vacancies", ["--composition", "LiFePO4"], "--composition"),
    ("vacancies", ["--li-fraction", "0"], "--li-fraction"),
    ("vacancies", ["--li-fraction", "1.5"], "--li-fraction"),
    ("vacancies", ["--potential", "mace-mp-0"], "--potential"),
    ("vacancies", ["--device", "tpu"], "--device"),
    ("vacancies", ["--threads", "0"], "--threads"),
    ("vacancies", ["--temperature-k", "-5"], "--temperature-k"),
    ("vacancies", ["--max-distance-a", "0"], "--max-distance-a"),
    ("vacancies", ["--size", "2,2"], "--size"),
    ("vacancies", ["--bulk-size", "1,0,1"], "--bulk-size"),
    ("vacancies", ["--repeat", "2,x"], "--repeat"),
    ("vacancies", ["--expand-times", "0"], "--expand-times"),
    ("vacancies", ["--sigma", "5"], "--sigma"),
    ("vacancies", ["--fmax", "0"], "--fmax"),
    ("vacancies", ["--max-steps", "0"], "--max-steps"),
    ("vacancies", ["--seed", "-1"], "--seed"),
    ("vacancies", ["--haadf-thickness-nm", "2"], "--haadf-thickness-nm"),  # bulk has no boundary to image
    ("vacancies", ["--structure", "twin", "--haadf-thickness-nm", "-1"], "--haadf-thickness-nm"),
    ("vacancies", ["--haadf-pixel-nm", "0"], "--haadf-pixel-nm"),
    ("vacancies", ["--haadf-probe-nm", "nan"], "--haadf-probe-nm"),
    ("neb", ["--cation", "Fe"], "--cation"),
    ("neb", ["--gliding", "0,inf"], "--gliding"),
    ("neb", ["--direction", "100,110"], "--direction"),
    ("neb", ["--composition", "LiFePO4"], "--composition"),
    ("neb", ["--n-images", "0"], "--n-images"),
    ("neb", ["--relax-radius-a", "-1"], "--relax-radius-a"),
    ("neb", ["--size", "2,2,0"], "--size"),
    ("neb", ["--fmax", "-0.1"], "--fmax"),
    ("neb", ["--max-steps", "0"], "--max-steps"),
    ("neb", ["--threads", "0"], "--threads"),
    ("neb", ["--potential", "mace-mp-0"], "--potential"),
])
def test_bad_values_are_refused_naming_the_option(tmp_path, loads, capsys, command, args, option):
    out = tmp_path / "out"
    assert run(["atomistic", command, "--out", str(out), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("layerscope: error: ") and option in err[0], err
    assert loads == [] and not out.exists()  # refused before any potential is loaded or file written


def test_options_are_frozen_and_normalised():
    o = NEBOptions(directions=("100", "[120]"), gliding=[0, 0.01])
    assert o.directions == ("[100]", "[120]") and o.gliding == (0.0, 0.01)
    with pytest.raises(Exception):
        o.cation = "Ni"  # frozen
    v = VacancyOptions(size=[1, 1, 2], structure="tilt", haadf_thickness_nm=3.0)
    assert v.size == (1, 1, 2) and v.image == {"pixel_size_nm": 0.02, "probe_fwhm_nm": 0.08, "thickness_nm": 3.0}
    assert VacancyOptions().image is None and VacancyOptions().to_dict()["size"] == [2, 2, 1]
    with pytest.raises(InputError, match="--li-fraction"):
        VacancyOptions(li_fraction=-0.1)


def test_keyword_wrappers_build_the_same_options(element_energies, calculator_source):
    from layerscope.atomistic.migration import run_gliding_study

    src = calculator_source("additive", lambda: element_energies(ENERGIES))
    study = run_gliding_study(composition="LiCoO2", potential=src, gliding=[0.0], directions=["120"], n_images=1,
                              progress=False)
    assert study.options == NEBOptions(gliding=(0.0,), directions=("[120]",), n_images=1, potential=None)
    assert study.table["barrier_eV"].abs().max() < 1e-9
    assert study.provenance.to_dict()["parameters"]["loaded_as"] is None  # no loader was involved


def test_the_record_names_only_the_potential_that_was_used(element_energies, calculator_source):
    from layerscope.atomistic.migration import analyse_gliding

    src = calculator_source("additive", lambda: element_energies(ENERGIES))
    # the options ask for CHGNet but another potential is given: refused before any relaxation
    with pytest.raises(InputError, match="--potential 'chgnet-0.3.0' was asked for"):
        analyse_gliding(src, NEBOptions(gliding=(0.0,), n_images=1), progress=False)
    study = analyse_gliding(src, None, progress=False)  # defaults, with the potential given
    assert study.parameters["loaded_as"] is None and study.parameters["n_images"] == 4
