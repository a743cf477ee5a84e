"""Every option of ``layerscope cycling`` reaches the analysis (issue 21): each one changes a number with a
known truth or the recorded parameters, bad values are refused naming the option, and the provenance
holds the sha256 of the cycler file."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from cells_synthetic import cc_cycle_frame
from layerscope.cells.dqdv import NI_RICH_NMC_CHARGE_PEAKS, NI_RICH_NMC_DISCHARGE_PEAKS
from layerscope.cells.analysis import read_cycling
from layerscope.cells.options import CyclingOptions
from layerscope.cells.workflow import analyse_cycling, run_cycling
from layerscope.cli import run
from layerscope.errors import InputError

#: charge 1.0 mAh every cycle at 1 mA (1C for 1 mAh), V linear 3.0-4.2 V, hysteresis 0.1 V
DISCHARGE_MAH = [0.90, 0.99, 0.98, 0.97, 0.96]


@pytest.fixture(scope="module")
def cell(tmp_path_factory):
    """The fading cell as a plain CSV, and the same records with a counter that steps at each discharge."""
    frames, t = [], 0.0
    for k, qd in enumerate(DISCHARGE_MAH, start=1):
        f, t = cc_cycle_frame(cycle=k, t0=t, charge_mAh=1.0, discharge_mAh=qd, current_A=1e-3, hysteresis=0.1)
        frames.append(f)
    d = tmp_path_factory.mktemp("wiring_cells")
    table = pd.concat(frames)
    table.to_csv(d / "fade.csv", index=False)
    table.loc[table["current_A"] < 0, "cycle"] += 1
    table.to_csv(d / "shifted.csv", index=False)
    return d / "fade.csv", d / "shifted.csv"


def _cycling(path, out, *extra):
    assert run(["cycling", str(path), "--out", str(out), *extra]) == 0
    return json.loads((out / "summary.json").read_text()), pd.read_csv(out / "cycles.csv")


def test_every_cycling_option_changes_the_result_or_the_record(cell, tmp_path):
    fade, shifted = cell
    base, _ = _cycling(fade, tmp_path / "base")
    prm = base["provenance"]["parameters"]
    assert base["first_cycle_coulombic_efficiency"] == pytest.approx(0.90, abs=1e-9)
    assert base["last_retention"] == pytest.approx(0.96 / 0.90, abs=1e-9)
    assert "first_specific_discharge_capacity_mAh_g" not in base and "rate_capability" not in base
    assert prm["direction"] == "charge" and prm["dqdv"]["window_V"] == pytest.approx(0.015, abs=1e-15)

    s, _ = _cycling(fade, tmp_path / "mass", "--mass-mg", "10")  # 0.90 mAh / 0.010 g
    assert s["first_specific_discharge_capacity_mAh_g"] == pytest.approx(90.0, abs=1e-6)
    s, _ = _cycling(fade, tmp_path / "anode", "--electrode", "anode")  # CE = charge / discharge
    assert s["first_cycle_coulombic_efficiency"] == pytest.approx(1.0 / 0.90, abs=1e-9)
    assert s["provenance"]["parameters"]["electrode"] == "anode"
    s, _ = _cycling(fade, tmp_path / "ref", "--reference-cycle", "2")
    assert s["last_retention"] == pytest.approx(0.96 / 0.99, abs=1e-9) and s["reference_cycle"] == 2
    s, _ = _cycling(fade, tmp_path / "rate", "--nominal-capacity-mah", "1.0")  # 1 mA on 1 mAh = 1C
    assert [r["c_rate"] for r in s["rate_capability"]] == pytest.approx([1.0], abs=1e-6)
    s, _ = _cycling(fade, tmp_path / "dis", "--direction", "discharge")
    assert s["provenance"]["parameters"]["direction"] == "discharge"
    # the record names the windows used: the discharge defaults, not the charge ones (nor none)
    assert s["provenance"]["parameters"]["peak_windows"] == {k: list(v) for k, v in NI_RICH_NMC_DISCHARGE_PEAKS.items()}
    assert prm["peak_windows"] == {k: list(v) for k, v in NI_RICH_NMC_CHARGE_PEAKS.items()}
    s, _ = _cycling(fade, tmp_path / "win", "--dqdv-window-mv", "25")
    assert s["provenance"]["parameters"]["dqdv"]["window_V"] == pytest.approx(0.025, abs=1e-15)

    # a counter that steps at each discharge: 6 cycler cycles (first and last incomplete); --pairs: the 5 true ones
    s, c = _cycling(shifted, tmp_path / "counter")
    assert s["n_cycles"] == 6 and s["n_complete_cycles"] == 4
    s, c = _cycling(shifted, tmp_path / "pairs", "--pairs")
    assert s["n_cycles"] == 5 and s["provenance"]["parameters"]["pairs"] is True
    np.testing.assert_allclose(c["discharge_capacity_mAh"], DISCHARGE_MAH, atol=1e-9)


def test_dqdv_direction_and_window_reach_the_curves(cell):
    """Linear V(Q): dQ/dV = 1.0 mAh / 1.2 V on charge, -0.90 / 1.2 on discharge (cycle 1)."""
    fade, _ = cell
    for opts, truth in ((CyclingOptions(), 1.0 / 1.2), (CyclingOptions(direction="discharge"), -0.90 / 1.2),
                        (CyclingOptions(dqdv_window_mV=50), 1.0 / 1.2)):
        res = analyse_cycling(read_cycling(fade, opts), opts)
        assert np.median(res.curves[1].dqdv) == pytest.approx(truth, rel=1e-6)
        assert res.parameters["dqdv"]["window_V"] == pytest.approx(opts.dqdv_window_mV / 1000, abs=1e-15)


@pytest.mark.parametrize("args, option", [
    (["--electrode", "both"], "--electrode"),
    (["--direction", "up"], "--direction"),
    (["--mass-mg", "-3"], "--mass-mg"),
    (["--nominal-capacity-mah", "0"], "--nominal-capacity-mah"),
    (["--reference-cycle", "-1"], "--reference-cycle"),
    (["--dqdv-window-mv", "2"], "--dqdv-window-mv"),
])
def test_bad_cycling_options_are_refused_naming_the_option(cell, tmp_path, capsys, args, option):
    fade, _ = cell
    assert run(["cycling", str(fade), "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("layerscope: error: ") and option in err[0]


def test_provenance_hashes_the_cycler_file_once(cell, tmp_path):
    fade, _ = cell
    s, _ = _cycling(fade, tmp_path / "p", "--mass-mg", "10")
    inputs = s["provenance"]["inputs"]
    assert [i["sha256"] for i in inputs] == [hashlib.sha256(fade.read_bytes()).hexdigest()]
    assert inputs[0]["kind"] == "file" and s["provenance"]["parameters"]["active_mass_mg"] == 10.0
    res = run_cycling(fade, active_mass_mg=10.0)  # the keyword API: same numbers, same record
    assert res.provenance.inputs == inputs
    assert float(res.cycles["specific_discharge_capacity_mAh_g"].iloc[0]) == pytest.approx(90.0, abs=1e-6)


def test_options_are_frozen_and_validated_in_python():
    o = CyclingOptions(dqdv_options={"window_V": 0.02})
    assert o.dqdv_window_mV == pytest.approx(20.0) and o.dqdv["window_V"] == 0.02
    with pytest.raises(Exception):
        o.electrode = "anode"  # frozen
    with pytest.raises(InputError, match="dqdv_options"):
        CyclingOptions(dqdv_options={"window": 0.02})
