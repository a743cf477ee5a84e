"""Tests written to kill the surviving mutants of ``layerscope.cells.workflow`` (issue 21, docs/mutation.md).

``run_cycling`` and ``CyclingResult.summary`` called directly (no figures) on synthetic constant-current
cycles with analytic truth: V linear 3.0-4.2 V in charge and discharge plus a 0.1 V hysteresis, so the
mean charge voltage is 3.65 V and the mean discharge voltage 3.55 V (tolerances stated per assert).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from layerscope.cells import read_cycler
from layerscope.cells.workflow import run_cycling
from layerscope.errors import InputError

from cells_synthetic import cc_cycle_frame, q_of_v

DISCHARGE = [0.90, 0.99, 0.98, 0.97, 0.96]


def _cell(tmp_path, plan, *, name="cell.csv", cycle_numbers=None, current_A=1e-3):
    frames, t = [], 0.0
    for k, qd in enumerate(plan, start=1):
        f, t = cc_cycle_frame(cycle=k if cycle_numbers is None else cycle_numbers[k - 1], t0=t, charge_mAh=1.0,
                              discharge_mAh=qd, current_A=current_A, hysteresis=0.1)
        frames.append(f)
    table = pd.concat(frames)
    table.to_csv(tmp_path / name, index=False)
    return tmp_path / name, table


def test_summary_headline_numbers_against_the_analytic_cell(tmp_path):
    path, rows = _cell(tmp_path, DISCHARGE)
    s = run_cycling(path, active_mass_mg=10.0).summary()
    exact = {k: s[k] for k in ("layout", "n_records", "n_cycles", "n_complete_cycles", "n_headline_cycles",
                               "excluded_cycles", "reference_cycle", "electrode", "active_mass_mg", "flags",
                               "first_cycle", "last_cycle")}
    assert exact == {"layout": "plain-csv", "n_records": len(rows), "n_cycles": 5, "n_complete_cycles": 5,
                     "n_headline_cycles": 5, "excluded_cycles": {}, "reference_cycle": 1, "electrode": "cathode",
                     "active_mass_mg": 10.0, "flags": [], "first_cycle": 1, "last_cycle": 5}
    assert s["notes"] == ["None of the named dQ/dV peaks was found in any cycle (is this a Ni-rich cathode vs "
                          "Li? give peak windows for other chemistries or full cells)."]
    rel = 1e-9
    assert s["first_cycle_coulombic_efficiency"] == pytest.approx(0.90, rel=rel)
    assert s["first_discharge_capacity_mAh"] == pytest.approx(0.90, rel=rel)
    assert s["first_charge_capacity_mAh"] == pytest.approx(1.0, rel=rel)
    assert s["first_specific_discharge_capacity_mAh_g"] == pytest.approx(90.0, rel=rel)   # 0.90 mAh / 10 mg
    assert s["last_retention"] == pytest.approx(0.96 / 0.90, rel=rel)
    assert s["last_mean_discharge_voltage_V"] == pytest.approx(3.55, abs=1e-9)
    assert s["last_hysteresis_V"] == pytest.approx(0.10, abs=1e-9)
    assert s["mean_coulombic_efficiency_after_first"] == pytest.approx(np.mean(DISCHARGE[1:]), rel=rel)
    assert s["mean_energy_efficiency"] == pytest.approx(np.mean(DISCHARGE) * 3.55 / 3.65, rel=1e-6)


def test_a_single_cycle_has_no_mean_efficiency_after_the_first(tmp_path):
    path, _ = _cell(tmp_path, [0.9])
    s = run_cycling(path).summary()
    assert s["reference_cycle"] == 1 and s["n_cycles"] == 1
    assert s["mean_coulombic_efficiency_after_first"] is None
    assert s["first_cycle_coulombic_efficiency"] == pytest.approx(0.9, rel=1e-9)


def test_an_excluded_last_cycle_is_named_in_the_summary(tmp_path):
    path, rows = _cell(tmp_path, DISCHARGE + [0.95])
    n_last = int((rows["cycle"] == 6).sum())
    n_charge = int(((rows["cycle"] == 6) & (rows["current_A"] > 0)).sum())
    cut = rows.iloc[:len(rows) - n_last + n_charge + int(0.1 * (n_last - n_charge))]
    cut.to_csv(path, index=False)
    s = run_cycling(path).summary()
    assert s["excluded_cycles"] == {"6": "truncated_last_cycle"}
    assert s["n_cycles"] == 6 and s["n_headline_cycles"] == 5 and s["last_cycle"] == 5


def test_dqdv_peaks_and_rate_capability_in_the_summary(tmp_path):
    path, _ = _cell(tmp_path, DISCHARGE)
    r = run_cycling(path, nominal_capacity_mAh=1.0)
    peaks = pd.DataFrame({"cycle": [1, 2, 3, 1, 2, 3], "peak": ["A"] * 3 + ["B"] * 3,
                          "position_V": [4.20, 4.19, np.nan, 3.70, 3.71, 3.72],
                          "found": [True, True, False, True, True, True],
                          "relative_height": [1.0, 0.8, np.nan, 1.0, 0.9, 0.7]})
    s = dataclasses.replace(r, peaks=peaks).summary()
    assert s["dqdv_peaks"] == {
        "A": {"first_position_V": 4.20, "last_position_V": 4.19, "last_relative_height": 0.8,
              "cycles_found": 2, "cycles_missing": 1},
        "B": {"first_position_V": 3.70, "last_position_V": 3.72, "last_relative_height": 0.7,
              "cycles_found": 3, "cycles_missing": 0}}
    # one rate (1 mA = 1 C of a 1 mAh cell): the mean of the five discharges, at 3.55 V
    (rate,) = s["rate_capability"]
    assert rate["c_rate"] == pytest.approx(1.0, rel=1e-9) and rate["n_cycles"] == 5
    assert rate["capacity_mAh"] == pytest.approx(np.mean(DISCHARGE), rel=1e-9)
    assert rate["mean_voltage_V"] == pytest.approx(3.55, abs=1e-9)


def test_cycler_data_given_directly_takes_the_active_mass(tmp_path):
    path, _ = _cell(tmp_path, DISCHARGE)
    s = run_cycling(read_cycler(path), active_mass_mg=4.0).summary()
    assert s["active_mass_mg"] == 4.0
    assert s["first_specific_discharge_capacity_mAh_g"] == pytest.approx(0.90 / 4.0e-3, rel=1e-9)


def test_records_without_a_cycle_number_need_pairs(tmp_path):
    path, rows = _cell(tmp_path, DISCHARGE[:3])
    rows = rows.assign(cycle=np.nan)
    rows.to_csv(path, index=False)
    with pytest.raises(InputError) as e:
        run_cycling(path)
    assert str(e.value).endswith("per-cycle analysis needs them. Use --pairs to number charge/discharge pairs "
                                 "instead.")
    r = run_cycling(path, pairs=True)
    assert r.parameters["pairs"] is True and len(r.cycles) == 3     # three charge/discharge pairs
    # counters restarting every cycle with no cycle number: the capacities are the counters' steps
    # (a NaN label once made every record a restart: 146-177 mAh for 0.90-0.99)
    np.testing.assert_allclose(r.cycles["discharge_capacity_mAh"], DISCHARGE[:3], rtol=1e-9)
    np.testing.assert_allclose(r.cycles["charge_capacity_mAh"], 1.0, rtol=1e-9)


def test_a_counter_with_two_charges_per_cycle_is_renumbered_as_pairs(tmp_path):
    path, _ = _cell(tmp_path, DISCHARGE[:4], cycle_numbers=[1, 1, 2, 2])
    r = run_cycling(path)
    assert r.notes[0] == ("The cycler's cycle counter groups several charges or discharges into one cycle; cycles "
                          "were renumbered as charge/discharge pairs (the cycler's number is kept as cycler_cycle).")
    assert r.parameters["pairs"] is True and len(r.cycles) == 4
    assert r.cycles["discharge_capacity_mAh"].tolist() == pytest.approx(DISCHARGE[:4], rel=1e-9)


def test_a_file_without_a_discharge_is_refused_with_what_it_holds(tmp_path):
    path, rows = _cell(tmp_path, [0.9])
    charge = rows[rows["current_A"] > 0].assign(discharge_capacity_mAh=0.25)
    charge.to_csv(path, index=False)
    with pytest.raises(InputError) as e:
        run_cycling(path)
    n, t_end = len(charge), charge["time_s"].iloc[-1]
    assert str(e.value) == (f"{path}: the file holds no discharge ({n} records over {t_end:.0f} s, 3.05-4.25 V, "
                            "1.25 mAh passed): there is no cycle to analyse; cycling needs a charge and a discharge.")


def _peaked_cell(path, n_cycles=3):
    """Charge: 20 mAh/V background 3.4-4.2 V plus a Gaussian dQ/dV peak at 3.90 V (sigma 20 mV, 3 mAh),
    i.e. a peak height of 3 / (0.02 sqrt(2 pi)) + 20 = 79.8 mAh/V; discharge: linear V(Q), no peak."""
    v_c = np.linspace(3.4, 4.2, 1601)
    q_c = q_of_v(v_c, [(3.90, 0.02, 3.0)])
    q_c = q_c - q_c[0]
    rows, t = [], 0.0
    for k in range(1, n_cycles + 1):
        q_d = np.linspace(0, q_c[-1], 1601)
        v_d = 4.2 - 0.8 * q_d / q_c[-1]
        t_c = t + 10.0 * np.arange(v_c.size)
        t_d = t_c[-1] + 10.0 + 10.0 * np.arange(v_d.size)
        rows.append(pd.DataFrame({"time_s": np.r_[t_c, t_d], "cycle": k,
                                  "current_A": np.r_[np.full(v_c.size, 1e-3), np.full(v_d.size, -1e-3)],
                                  "voltage_V": np.r_[v_c, v_d],
                                  "charge_capacity_mAh": np.r_[q_c, np.full(v_d.size, q_c[-1])],
                                  "discharge_capacity_mAh": np.r_[np.zeros(v_c.size), q_d]}))
        t = t_d[-1] + 10.0
    pd.concat(rows).to_csv(path, index=False)
    return path


WINDOW = {"P": (3.85, 3.95)}


def test_the_dqdv_direction_reaches_the_curves_and_the_peak_tracking(tmp_path):
    path = _peaked_cell(tmp_path / "peaked.csv")
    charge = run_cycling(path, peak_windows=WINDOW)
    assert charge.peaks["found"].all()
    np.testing.assert_allclose(charge.peaks["position_V"], 3.90, atol=0.005)
    np.testing.assert_allclose(charge.peaks["height"], 3 / (0.02 * np.sqrt(2 * np.pi)) + 20, rtol=0.02)
    assert charge.curves[1].direction == "charge" and np.nanmin(charge.curves[1].dqdv) > 0
    discharge = run_cycling(path, peak_windows=WINDOW, direction="discharge")
    assert not discharge.peaks["found"].any()                       # the discharge has no peak
    assert discharge.curves[1].direction == "discharge" and np.nanmax(discharge.curves[1].dqdv) < 0
    assert discharge.parameters["direction"] == "discharge" and discharge.parameters["peak_windows"] == WINDOW
    # without windows a discharge is tracked with the discharge windows, not the Ni-rich charge ones
    default = run_cycling(path, direction="discharge")
    assert sorted(set(default.peaks["peak"])) == ["H2-M", "H3-H2", "M-H1"]


def test_dqdv_options_and_specific_capacity_reach_the_peak_table(tmp_path):
    path = _peaked_cell(tmp_path / "peaked.csv")
    wide = run_cycling(path, peak_windows=WINDOW, dqdv_options={"window_V": 0.06})
    for k, curve in wide.curves.items():
        inside = (curve.voltage_V >= 3.85) & (curve.voltage_V <= 3.95)
        height = wide.peaks.set_index("cycle").loc[k, "height"]
        assert height == pytest.approx(np.nanmax(curve.dqdv[inside]), rel=0.01)   # same smoothing in both
    narrow = run_cycling(path, peak_windows=WINDOW)
    assert wide.peaks["height"].max() < 0.9 * narrow.peaks["height"].min()
    assert wide.parameters["dqdv"] == {"voltage_step_V": 0.001, "window_V": 0.06}
    per_gram = run_cycling(path, peak_windows=WINDOW, active_mass_mg=10.0)       # 10 mg: x100 per gram
    np.testing.assert_allclose(per_gram.peaks["height"], 100 * narrow.peaks["height"], rtol=1e-9)
    np.testing.assert_allclose(np.nanmax(per_gram.curves[1].dqdv), 100 * np.nanmax(narrow.curves[1].dqdv),
                               rtol=1e-9)


def test_the_dqdv_window_must_span_three_voltage_steps(tmp_path):
    path, _ = _cell(tmp_path, DISCHARGE[:2])
    run_cycling(path, dqdv_options={"voltage_step_V": 0.004, "window_V": 0.014})     # 3.5 steps: accepted
    with pytest.raises(InputError) as e:
        run_cycling(path, dqdv_options={"voltage_step_V": 0.01, "window_V": 0.02})
    assert str(e.value) == ("--dqdv-window-mv 20: the dQ/dV window must span at least 3 voltage steps (30 mV); "
                            "give a wider window, e.g. --dqdv-window-mv 15.")


def test_pairs_for_an_anode_start_each_cycle_at_a_discharge(tmp_path):
    path, _ = _cell(tmp_path, DISCHARGE[:3])
    anode = run_cycling(path, pairs=True, electrode="anode")
    assert anode.cycles["cycle"].tolist() == [0, 1, 2, 3]                 # the first charge stands alone
    np.testing.assert_allclose(anode.cycles["discharge_capacity_mAh"], [0.0] + DISCHARGE[:3], rtol=1e-9)


def test_recorded_parameters(tmp_path):
    path, _ = _cell(tmp_path, DISCHARGE)
    r = run_cycling(path, active_mass_mg=5.0, reference_cycle=2, nominal_capacity_mAh=1.0)
    assert r.parameters == {"active_mass_mg": 5.0, "electrode": "cathode", "reference_cycle": 2, "pairs": False,
                            "peak_windows": r.parameters["peak_windows"], "direction": "charge",
                            "nominal_capacity_mAh": 1.0, "dqdv": {"voltage_step_V": 0.001, "window_V": 0.015}}
    assert sorted(r.parameters["peak_windows"]) == ["H1-M", "H2-H3", "M-H2"]
    assert r.summary()["last_retention"] == pytest.approx(0.96 / 0.99, rel=1e-9)     # against cycle 2


def test_a_cathode_cycled_in_the_anode_range_is_flagged_at_its_charge_cut_off(tmp_path):
    frames, t = [], 0.0
    for k, qd in enumerate(DISCHARGE[:3], start=1):
        f, t = cc_cycle_frame(cycle=k, t0=t, charge_mAh=1.0, discharge_mAh=qd, current_A=1e-3, v_lo=0.05,
                              v_hi=1.0, hysteresis=0.1)
        frames.append(f)
    pd.concat(frames).to_csv(tmp_path / "graphite.csv", index=False)
    flags = run_cycling(tmp_path / "graphite.csv").flags
    (flag,) = [f for f in flags if f["code"] == "anode_voltage_range"]
    assert flag["message"].startswith("charges end at 1.05 V: ")            # 1.0 V + half the 0.1 V hysteresis


def test_counter_increments_treat_missing_labels_as_one_run():
    from layerscope.cells.readers import counter_increments

    counter = np.array([0.0, 0.5, 1.0, 0.25, 0.75])              # a reset after the third record
    steps = [0.0, 0.5, 0.5, 0.25, 0.5]
    np.testing.assert_allclose(counter_increments(counter, reset_groups=np.full(5, np.nan)), steps, atol=1e-15)
    labelled = counter_increments(counter, reset_groups=np.array([1, 1, 2, 2, 2], dtype=float))
    np.testing.assert_allclose(labelled, [0.0, 0.5, 1.0, 0.25, 0.5], atol=1e-15)   # a label change restarts
