"""Per-cycle metrics on synthetic cycles with analytic values, and flags on real incomplete cycles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerscope.cells import cycle_metrics, pair_cycles, rate_capability, read_cycler
from layerscope.cells.rate import c_rates
from layerscope.errors import InputError

from cells_synthetic import cc_cycle_frame


@pytest.fixture()
def fading_cell(tmp_path):
    """5 cycles: charge 1.0 mAh; discharge 0.90, 0.99, 0.98, 0.97, 0.96 mAh; V linear 3.0-4.2 V plus hysteresis."""
    frames, t = [], 0.0
    discharge = [0.90, 0.99, 0.98, 0.97, 0.96]
    for k, qd in enumerate(discharge, start=1):
        f, t = cc_cycle_frame(cycle=k, t0=t, charge_mAh=1.0, discharge_mAh=qd, current_A=1e-3, hysteresis=0.1)
        frames.append(f)
    path = tmp_path / "fading.csv"
    pd.concat(frames).to_csv(path, index=False)
    return path, discharge


def test_cycle_metrics_analytic(fading_cell):
    path, discharge = fading_cell
    m = cycle_metrics(read_cycler(path, active_mass_mg=10.0))
    assert list(m["cycle"]) == [1, 2, 3, 4, 5]
    np.testing.assert_allclose(m["charge_capacity_mAh"], 1.0, rtol=1e-12)
    np.testing.assert_allclose(m["discharge_capacity_mAh"], discharge, rtol=1e-12)
    np.testing.assert_allclose(m["coulombic_efficiency"], discharge, rtol=1e-12)
    np.testing.assert_allclose(m["retention"], np.array(discharge) / discharge[0], rtol=1e-12)
    # linear V(Q): mean voltage is the mid voltage, exactly (trapezoid energy)
    np.testing.assert_allclose(m["mean_charge_voltage_V"], 3.6 + 0.05, rtol=1e-12)
    np.testing.assert_allclose(m["mean_discharge_voltage_V"], 3.6 - 0.05, rtol=1e-12)
    np.testing.assert_allclose(m["hysteresis_V"], 0.1, rtol=1e-9)
    np.testing.assert_allclose(m["charge_energy_mWh"], 3.65, rtol=1e-12)
    np.testing.assert_allclose(m["specific_discharge_capacity_mAh_g"], np.array(discharge) / 0.010, rtol=1e-12)
    assert m["complete"].all() and (m["flag"] == "").all()


def test_reference_cycle_and_anode_convention(fading_cell):
    path, discharge = fading_cell
    data = read_cycler(path)
    m = cycle_metrics(data, reference_cycle=2)
    np.testing.assert_allclose(m["retention"], np.array(discharge) / discharge[1], rtol=1e-12)
    a = cycle_metrics(data, electrode="anode")
    np.testing.assert_allclose(a["coulombic_efficiency"], 1.0 / np.array(discharge), rtol=1e-12)
    with pytest.raises(InputError, match="--reference-cycle 9"):
        cycle_metrics(data, reference_cycle=9)


def test_cycle_without_discharge_is_flagged(shared_data):
    """The truncated Maccor file ends one record into the discharge of cycle 1."""
    m = cycle_metrics(read_cycler(shared_data / "cycling" / "beep" / "PreDiag_000229_000229_truncated.034"))
    last = m.iloc[-1]
    assert not last["complete"] and "no discharge" in last["flag"]
    assert np.isnan(last["coulombic_efficiency"]) and np.isnan(last["retention"])
    assert m.iloc[0]["complete"]


def test_pairs_split_a_maccor_loop(shared_data):
    """xTESLADIAG puts 30 charge/discharge loops into cycle counter 1: pairs must find them all."""
    path = shared_data / "cycling" / "beep" / "xTESLADIAG_000019_CH70.070"
    raw = pd.read_csv(path, sep="\t", skiprows=1, low_memory=False)
    runs = raw[(raw["State"] != raw["State"].shift())]
    n_charge_runs = int((runs["State"] == "C").sum())
    data = read_cycler(path)
    flagged = cycle_metrics(data)
    assert "segments in one cycle" in flagged.loc[flagged["cycle"] == 1, "flag"].iloc[0]
    m = cycle_metrics(pair_cycles(data))
    assert int(m["complete"].sum()) == n_charge_runs == 30
    # each pair's charge equals the Amp-hr maximum of its own charge run
    q_run = raw[raw["State"] == "C"].groupby((raw["State"] != raw["State"].shift()).cumsum())["Amp-hr"].max()
    np.testing.assert_allclose(m.loc[m["complete"], "charge_capacity_mAh"], q_run.to_numpy() * 1000, rtol=1e-9)


def test_rate_capability_table(tmp_path):
    frames, t = [], 0.0
    plan = [(1e-3, 1.00), (1e-3, 1.00), (2e-3, 0.95), (2e-3, 0.95), (5e-3, 0.80)]
    for k, (i, q) in enumerate(plan, start=1):
        f, t = cc_cycle_frame(cycle=k, t0=t, charge_mAh=1.0, discharge_mAh=q, current_A=i, dt=5.0)
        frames.append(f)
    path = tmp_path / "rate.csv"
    pd.concat(frames).to_csv(path, index=False)
    data = read_cycler(path)
    rates = c_rates(data, nominal_capacity_mAh=1.0)
    np.testing.assert_allclose(rates["discharge_c_rate"], [1, 1, 2, 2, 5], rtol=1e-9)
    table = rate_capability(data, nominal_capacity_mAh=1.0)
    np.testing.assert_allclose(table["c_rate"], [1, 2, 5], rtol=1e-9)
    np.testing.assert_allclose(table["capacity_mAh"], [1.0, 0.95, 0.80], rtol=1e-9)
    np.testing.assert_allclose(table["capacity_vs_slowest"], [1.0, 0.95, 0.80], rtol=1e-9)
    assert list(table["n_cycles"]) == [2, 2, 1]
    with pytest.raises(InputError, match="nominal capacity"):
        rate_capability(data, nominal_capacity_mAh=0.0)
