"""Plausibility before headline numbers (truncated last cycle, partial first cycle, efficiencies above 1)
and cycling on normalised voltage curves, on synthetic data with known truth, through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.io

from layerscope.cells import cycle_metrics, read_cycler
from layerscope.cells.curves import CurveOptions, analyse_curve, read_normalised_curve
from layerscope.cli import run

from cells_synthetic import cc_cycle_frame, q_of_v

DISCHARGE = [0.90, 0.99, 0.98, 0.97, 0.96]


def _cycles(plan, *, current_A=1e-3):
    frames, t = [], 0.0
    for k, (qc, qd) in enumerate(plan, start=1):
        f, t = cc_cycle_frame(cycle=k, t0=t, charge_mAh=qc, discharge_mAh=qd, current_A=current_A, hysteresis=0.1)
        frames.append(f)
    return frames, t


def _write(frames, path):
    pd.concat(frames).to_csv(path, index=False)
    return path


def test_truncated_last_cycle_is_left_out_and_named(tmp_path, capsys):
    """Cycle 6 stops after 10 % of its discharge (at 4.08 V): retention and mean CE come from cycles 1-5."""
    frames, t = _cycles([(1.0, q) for q in DISCHARGE])
    last, _ = cc_cycle_frame(cycle=6, t0=t, charge_mAh=1.0, discharge_mAh=0.95, current_A=1e-3, hysteresis=0.1)
    n_charge = int((last["current_A"] > 0).sum())
    n_keep = n_charge + int(0.1 * (len(last) - n_charge))
    path = _write(frames + [last.iloc[:n_keep]], tmp_path / "truncated.csv")
    m = cycle_metrics(read_cycler(path))
    assert list(m["excluded"]) == [""] * 5 + ["truncated_last_cycle"]
    assert m.loc[5, "coulombic_efficiency"] < 0.15  # computed and kept in cycles.csv, not in the headline
    out = tmp_path / "out"
    assert run(["cycling", str(path), "--out", str(out)]) == 0
    line = capsys.readouterr().out
    assert "truncated_last_cycle" in line and "cycle 6" in line
    s = json.loads((out / "summary.json").read_text())
    assert s["last_cycle"] == 5 and s["n_headline_cycles"] == 5
    assert s["last_retention"] == pytest.approx(0.96 / 0.90, rel=1e-9)
    assert s["mean_coulombic_efficiency_after_first"] == pytest.approx(np.mean(DISCHARGE[1:]), rel=1e-9)
    assert [f["code"] for f in s["flags"]] == ["truncated_last_cycle"]


def test_last_step_that_ends_early_at_another_rate(tmp_path):
    """At 2x the current no earlier cycle compares by capacity; the discharge stopping at 3.68 V (cut-off 3.0 V,
    window 1.2 V) is what marks it."""
    frames, t = _cycles([(1.0, q) for q in DISCHARGE])
    last, _ = cc_cycle_frame(cycle=6, t0=t, charge_mAh=1.0, discharge_mAh=0.95, current_A=2e-3, hysteresis=0.1)
    n_charge = int((last["current_A"] > 0).sum())
    last = last.iloc[: n_charge + int(0.4 * (len(last) - n_charge))]
    m = cycle_metrics(read_cycler(_write(frames + [last], tmp_path / "early.csv")))
    assert m.iloc[-1]["excluded"] == "truncated_last_cycle" and "stopped at 3.6" in m.iloc[-1]["flag"]
    assert m.iloc[:-1]["headline"].all()


def test_faster_last_cycle_is_not_called_truncated(tmp_path):
    """A last cycle at 5x the current with 40 % of the capacity that reaches the cut-off is a rate step, not a truncation."""
    frames, t = _cycles([(1.0, q) for q in DISCHARGE])
    fast, _ = cc_cycle_frame(cycle=6, t0=t, charge_mAh=0.4, discharge_mAh=0.39, current_A=5e-3, dt=2.0, hysteresis=0.1)
    m = cycle_metrics(read_cycler(_write(frames + [fast], tmp_path / "rate.csv")))
    assert m["headline"].all()


def test_first_cycle_that_began_partly_charged(tmp_path, capsys):
    """The file starts 40 % into the first charge (at 3.48 V): CE 1.5 is computed, flagged, left out; reference = cycle 2."""
    frames, _ = _cycles([(1.0, q) for q in DISCHARGE])
    first = frames[0]
    charge = first["current_A"] > 0
    cut = int(0.4 * charge.sum())
    first = first.iloc[cut:].copy()
    first.loc[first["current_A"] > 0, "charge_capacity_mAh"] -= first["charge_capacity_mAh"].iloc[0]
    first.loc[first["current_A"] < 0, "charge_capacity_mAh"] = first.loc[first["current_A"] > 0, "charge_capacity_mAh"].max()
    path = _write([first] + frames[1:], tmp_path / "partial.csv")
    out = tmp_path / "out"
    assert run(["cycling", str(path), "--out", str(out)]) == 0
    assert "partial_first_cycle" in capsys.readouterr().out
    s = json.loads((out / "summary.json").read_text())
    assert s["reference_cycle"] == 2 and s["first_cycle"] == 2
    assert s["last_retention"] == pytest.approx(0.96 / 0.99, rel=1e-9)
    cycles = pd.read_csv(out / "cycles.csv")
    assert cycles.loc[0, "coulombic_efficiency"] == pytest.approx(0.90 / 0.6, rel=0.02)
    assert "coulombic_efficiency_above_1" not in [f["code"] for f in s["flags"]]


def test_wrong_electrode_is_flagged_and_energy_efficiency_stays_a_round_trip(tmp_path, capsys):
    """A 3.0-4.2 V cathode read with --electrode anode: CE = 1/qd > 1 in every cycle, flagged with the fix."""
    frames, _ = _cycles([(1.0, q) for q in DISCHARGE])
    path = _write(frames, tmp_path / "cathode.csv")
    out = tmp_path / "out"
    assert run(["cycling", str(path), "--out", str(out), "--electrode", "anode"]) == 0
    assert "coulombic_efficiency_above_1" in capsys.readouterr().out
    s = json.loads((out / "summary.json").read_text())
    flag = next(f for f in s["flags"] if f["code"] == "coulombic_efficiency_above_1")
    assert "give --electrode cathode" in flag["message"]
    assert s["electrode"] == "anode" and s["provenance"]["parameters"]["electrode"] == "anode"
    # energy out / energy in of the cell, whatever the convention: qd (3.6 - 0.05) / (1.0 (3.6 + 0.05))
    cycles = pd.read_csv(out / "cycles.csv")
    np.testing.assert_allclose(cycles["energy_efficiency"], np.array(DISCHARGE) * 3.55 / 3.65, rtol=1e-9)
    assert s["mean_energy_efficiency"] < 1


def _normalised_mat(path, peaks, *, v_lo=3.4, v_hi=4.3, n=6000, reverse=False):
    v = np.linspace(v_lo, v_hi, n)
    q = q_of_v(v, peaks, background_mAh_per_V=2.0, v0=v_lo)
    q = (q - q[0]) / (q[-1] - q[0])
    if reverse:
        v, q = v[::-1], q[::-1]
    scipy.io.savemat(path, {"curve": {"normalizedCapacity": q, "voltage": v}})
    return path


def test_normalised_curve_peaks_and_area(tmp_path):
    """Gaussian dQ/dV peaks at 3.70 and 4.18 V (sigma 15 and 10 mV) on a flat background: positions within 2 mV,
    and the area under |dQ/dV| is the whole normalised capacity (1 within 1 %), whichever way the arrays run."""
    for reverse in (False, True):
        path = _normalised_mat(tmp_path / f"X_Cathode_Delithiation_{int(reverse)}.mat",
                               [(3.70, 0.015, 1.0), (4.18, 0.010, 0.6)], reverse=reverse)
        curve = read_normalised_curve(path)
        assert curve.label == "delithiation"
        res = analyse_curve(curve, CurveOptions())
        top = res.peaks.nlargest(2, "prominence").sort_values("position_V")
        np.testing.assert_allclose(top["position_V"], [3.70, 4.18], atol=0.002)
        d = res.dqdv
        assert np.trapezoid(np.abs(d.dqdv), d.voltage_V) == pytest.approx(1.0, rel=0.01)
        assert res.named_peaks["H2-H3"]["position_V"] == pytest.approx(4.18, abs=0.002)


def test_normalised_curve_cli_wiring_and_refusal(tmp_path, capsys):
    path = _normalised_mat(tmp_path / "Y_Cathode_Lithiation.mat", [(3.70, 0.015, 1.0)])
    for window in ("15", "30"):
        out = tmp_path / f"out{window}"
        assert run(["cycling", str(path), "--out", str(out), "--dqdv-window-mv", window]) == 0
        s = json.loads((out / "summary.json").read_text())
        assert s["provenance"]["parameters"]["window_V"] == pytest.approx(float(window) / 1000)
        assert s["main_peak_V"] == pytest.approx(3.70, abs=0.003)
        assert s["label"] == "lithiation" and s["flags"][0]["code"] == "capacity_normalised"
    assert "capacity_normalised" in capsys.readouterr().out
    bad = tmp_path / "refused"
    assert run(["cycling", str(path), "--out", str(bad), "--nominal-capacity-mah", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "normalised to 0-1" in err[0] and "--nominal-capacity-mah" in err[0]
    assert not bad.exists()


@pytest.mark.parametrize("args, option", [
    (["--reference-cycle", "9"], "--reference-cycle 9"),
    (["--dqdv-window-mv", "2"], "--dqdv-window-mv 2"),
    (["--nominal-capacity-mah", "0"], "--nominal-capacity-mah 0"),
    (["--mass-mg", "-1"], "--mass-mg"),
])
def test_hints_name_cli_options(tmp_path, capsys, args, option):
    """A user mistake is one line that names the CLI option to change, never a Python argument."""
    frames, _ = _cycles([(1.0, q) for q in DISCHARGE])
    path = _write(frames, tmp_path / "cell.csv")
    out = tmp_path / "out"
    assert run(["cycling", str(path), "--out", str(out)] + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and option in err[0], err
    assert "_mAh" not in err[0] and "active_mass" not in err[0] and "window_V" not in err[0]
    assert not out.exists()
