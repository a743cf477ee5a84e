"""Headline numbers as report Values: rounding, float behaviour, and the uncertainties the section
builders compute (known inputs, known answers)."""

from __future__ import annotations

import json
import pickle
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from layerscope.report import Value, format_with_uncertainty


@pytest.mark.parametrize("value,unc,unit,text", [
    (1.9312, 0.2134, "nm", "1.93 ± 0.21 nm"),
    (0.20179, 0.00071, "nm/s", "0.20179 ± 0.00071 nm/s"),
    (159.92, 1.6, "kJ/mol", "159.9 ± 1.6 kJ/mol"),
    (1234.5, 12.0, "", "1234 ± 12"),
    (14.72, None, "%", "14.72 %"),  # one measurement: 4 significant digits, no ±
    (2.7, 0.0, "", "2.7"),  # a zero uncertainty is no uncertainty
    (None, 0.1, "nm", "—"),  # not measured
])
def test_value_text(value, unc, unit, text):
    assert str(Value(value, unc, unit)) == text


def test_value_is_its_float():
    v = Value(30.07, 0.12, "mOhm")
    assert v == pytest.approx(30.0, rel=0.01) and float(v) == 30.07 and v.value == 30.07
    assert json.loads(json.dumps({"r": v})) == {"r": 30.07}
    back = pickle.loads(pickle.dumps(v))
    assert (float(back), back.uncertainty, back.unit) == (30.07, 0.12, "mOhm")
    assert format_with_uncertainty(float(v), v.uncertainty) == "30.07 ± 0.12"


def test_vacancy_section_quotes_the_spread_over_converged_sites():
    from layerscope.atomistic.vacancies import VacancyStudy

    table = pd.DataFrame({"distance_to_boundary_A": [0.5, 2.0, 4.0], "dG_eV": [2.1, 2.6, 3.0],
                          "converged": [True, True, False], "error": ["", "", "not converged"]})
    summary = {"n_sites": 3, "n_sites_represented": 6, "host_formula": "LiCoO2", "potential": "model", "mu_O_eV": -4.8,
               "t_dS_eV": 0.1, "n_unconverged": 1, "dG_min_eV": 2.1, "dG_max_eV": 3.0, "bulk_a_A": 2.82,
               "bulk_c_A": 14.1, "boundary_energy_J_per_m2": 0.17}
    study = SimpleNamespace(scan=SimpleNamespace(table=table, parameters={"potential": {"potential": "model"}}),
                            structure="twin", composition="LiCoO2", li_fraction=0.5, summary=lambda: summary)
    study.figure = lambda: VacancyStudy.figure(study)
    m = VacancyStudy.section(study).metrics
    spread = m["ΔG (eV, mean ± s.d. over 2 converged sites)"]  # the unconverged 3.0 eV left out
    assert spread == pytest.approx(2.35) and spread.uncertainty == pytest.approx(np.std([2.1, 2.6], ddof=1))
    assert str(spread) == "2.35 ± 0.35 eV"
    assert m["ΔG min (eV, one site)"].uncertainty is None and m["ΔG min (eV, one site)"].unit == "eV"


def test_migration_section_leads_with_the_lowest_converged_barrier():
    from layerscope.atomistic.migration import GlidingStudy

    bands = pd.DataFrame({"direction": ["[100]"] * 3, "gliding": [0.0, 0.02, 0.04], "barrier_eV": [2.3, 1.4, 0.9],
                          "converged": [True, True, False]})
    path = np.linspace(0, 3, 6)
    study = SimpleNamespace(table=bands, potential="model", composition="LiCoO2", parameters={},
                            results=[SimpleNamespace(path_A=path, energies_eV=b * np.sin(np.pi * path / 3))
                                     for b in (2.3, 1.4, 0.9)])
    study.figure = lambda: GlidingStudy.figure(study)
    section = GlidingStudy.section(study)
    key, first = next(iter(section.headline_metrics().items()))
    assert key.startswith("lowest converged barrier") and "2 % gliding" in key  # 0.9 eV did not converge
    assert first == 1.4 and first.unit == "eV" and first.uncertainty is None


def test_cycling_fade_rate_is_a_line_through_the_retention():
    from layerscope.cells.workflow import CyclingResult

    cycles = pd.DataFrame({"cycle": np.arange(1, 11), "retention": 1 - 0.01 * np.arange(10) + 0.001 * (-1) ** np.arange(10),
                           "coulombic_efficiency": np.r_[0.9, np.full(9, 0.995)], "headline": True})
    s = {"first_cycle_coulombic_efficiency": 0.9, "last_cycle": 10, "reference_cycle": 1, "last_retention": 0.91,
         "last_mean_discharge_voltage_V": 3.8, "last_hysteresis_V": 0.1}
    m = CyclingResult._headline_metrics(SimpleNamespace(cycles=cycles), s)
    fade = m["capacity fade (% of cycle 1 per cycle; linear fit ± s.e. over 10 cycles)"]
    slope, cov = np.polyfit(cycles["cycle"], 100 * cycles["retention"], 1, cov=True)
    assert fade == pytest.approx(1.0, abs=0.02) and fade.uncertainty == pytest.approx(np.sqrt(cov[0, 0]))
    ce = m["Coulombic efficiency after the first cycle (%, mean ± s.d. over 9 cycles)"]
    assert ce == pytest.approx(99.5) and ce.uncertainty is None  # all equal: no spread, shown without ±
