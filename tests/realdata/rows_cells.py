"""Real cycling files (../shared/data/cycling): ``layerscope cycling`` as a user runs it.

Every "ok" row recomputes its key numbers here from the raw vendor columns with plain pandas (or
NewareNDA / mdb-export / scipy.io read directly), a different code path from layerscope's readers
and counter-reset logic, and checks the plausibility flags against that independent truth.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd

from corpus import Row

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cycling"


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def _codes(s: dict) -> list[str]:
    return [f["code"] for f in s["flags"]]


def _close(a, b, rtol, what):
    assert np.isclose(a, b, rtol=rtol), f"{what}: layerscope {a!r} vs independent {b!r} (rtol {rtol})"


# --------------------------------------------------------------------------------------- Maccor


def _maccor_runs(name: str) -> pd.DataFrame:
    """Capacity (mAh) of every run of one (Cyc#, Step, State): Maccor's Amp-hr restarts every step."""
    raw = pd.read_csv(DATA / "beep" / name, sep="\t", skiprows=1, low_memory=False, encoding="latin-1")
    raw.columns = [c.strip() for c in raw.columns]
    key = (raw[["Cyc#", "Step", "State"]] != raw[["Cyc#", "Step", "State"]].shift()).any(axis=1).cumsum()
    runs = raw.groupby(key).agg(cyc=("Cyc#", "first"), state=("State", "first"), q=("Amp-hr", "max"))
    runs["q"] *= 1000.0
    return runs[runs["state"].isin(["C", "D"])].reset_index(drop=True)


def check_prediag(out: Path, stdout: str) -> None:
    """Cycle 0 charges from 3.62 V (partly charged): CE = D/C > 1 recomputed from Amp-hr, flagged, left out."""
    runs = _maccor_runs("PreDiag_000229_000229_truncated.034")
    c0 = runs[runs["cyc"] == 0]
    ce0 = c0.loc[c0["state"] == "D", "q"].sum() / c0.loc[c0["state"] == "C", "q"].sum()
    cycles = pd.read_csv(out / "cycles.csv")
    _close(cycles.loc[0, "coulombic_efficiency"], ce0, 1e-9, "cycle 0 CE")
    assert ce0 > 1.2
    s = _summary(out)
    assert s["n_cycles"] == 2 and s["n_headline_cycles"] == 0 and "last_retention" not in s
    assert _codes(s) == ["partial_first_cycle", "incomplete_cycles", "no_headline_cycle"], s["flags"]
    assert "partial_first_cycle" in stdout


def check_xtesladiag(out: Path, stdout: str) -> None:
    """30 charge/discharge loops under Maccor cycle 1, then a slow discharge (cycle 2) that must not join loop 30."""
    runs = _maccor_runs("xTESLADIAG_000019_CH70.070")
    loop = runs[runs["cyc"] == 1]
    d = loop.loc[loop["state"] == "D", "q"].to_numpy()
    c = loop.loc[loop["state"] == "C", "q"].to_numpy()
    assert d.size == c.size == 30
    s = _summary(out)
    assert s["n_headline_cycles"] == 30 and s["last_cycle"] == 30
    _close(s["last_retention"], d[-1] / d[0], 1e-9, "retention loop 30 vs 1")
    _close(s["mean_coulombic_efficiency_after_first"], np.mean(d[1:] / c[1:]), 1e-9, "mean CE loops 2-30")
    cycles = pd.read_csv(out / "cycles.csv")
    slow = runs.loc[runs["cyc"] == 2, "q"].sum()
    _close(cycles.iloc[-1]["discharge_capacity_mAh"], slow, 1e-9, "slow diagnostic discharge")
    assert "incomplete_cycles" in _codes(s) and "coulombic_efficiency_above_1" in _codes(s)


# --------------------------------------------------------------------------------------- BioLogic


def check_biologic(out: Path, stdout: str) -> None:
    """Half cycles = runs of one current sign; capacity = span of the signed (Q-Qo) counter in the run."""
    raw = pd.read_csv(DATA / "beep" / "test_loopsnewoutput_MB_CE1_short10k.csv", sep=";", low_memory=False)
    i = raw["I/mA"].to_numpy(float)
    active = raw[i != 0].copy()
    sign = np.sign(active["I/mA"])
    active["run"] = (sign != sign.shift()).cumsum()
    q = active.groupby("run").agg(sign=("I/mA", lambda x: np.sign(x.iloc[0])), q=("(Q-Qo)/mA.h", np.ptp))
    q = q[q["q"] > 1.0]  # drop the few-record sign flips of a CV end
    assert list(q["sign"]) == [1, -1, 1, -1, 1], q
    s = _summary(out)
    ce1 = q["q"].iloc[3] / q["q"].iloc[2]
    _close(s["first_cycle_coulombic_efficiency"], ce1, 1e-3, "CE of cycle 1")
    assert s["first_cycle"] == 1 and s["n_headline_cycles"] == 1
    assert q["q"].iloc[1] / q["q"].iloc[0] > 1.5  # cycle 0 began charged: its CE would read 1.59
    assert _codes(s) == ["partial_first_cycle", "incomplete_cycles"], s["flags"]


# --------------------------------------------------------------------------------------- Neware


def _nda_cycles(name: str) -> pd.DataFrame:
    import NewareNDA

    raw = NewareNDA.read(str(DATA / "neware" / name))
    per_step = raw.groupby(["Cycle", "Step"])[["Charge_Capacity(mAh)", "Discharge_Capacity(mAh)"]].max()
    return per_step.groupby("Cycle").sum().set_axis(["charge", "discharge"], axis=1)


def check_test2(out: Path, stdout: str) -> None:
    """Cycle 54 stops after 8 % of its discharge (the reported CE 7.9 %, retention 3.6 %): left out and named."""
    raw = _nda_cycles("test_2.ndax")
    assert len(raw) == 54
    assert raw.loc[54, "discharge"] < 0.5 * raw.loc[53, "discharge"]
    s = _summary(out)
    assert s["n_cycles"] == 54 and s["last_cycle"] == 53 and s["n_headline_cycles"] == 53
    _close(s["last_retention"], raw.loc[53, "discharge"] / raw.loc[1, "discharge"], 1e-5, "retention 53 vs 1")
    ok = raw.loc[2:53]
    _close(s["mean_coulombic_efficiency_after_first"], (ok["discharge"] / ok["charge"]).mean(), 1e-5, "mean CE 2-53")
    assert _codes(s)[0] == "truncated_last_cycle" and "cycle 54" in s["flags"][0]["message"]
    assert "truncated_last_cycle" in stdout


def check_testfile(out: Path, stdout: str) -> None:
    """Cycle 1 is a discharge only, cycle 3 a charge only: the headline is cycle 2."""
    raw = _nda_cycles("TestFile.nda")
    s = _summary(out)
    assert s["n_cycles"] == 3 and s["n_headline_cycles"] == 1 and s["first_cycle"] == 2
    _close(s["first_cycle_coulombic_efficiency"], raw.loc[2, "discharge"] / raw.loc[2, "charge"], 1e-6, "CE cycle 2")
    _close(s["first_discharge_capacity_mAh"], raw.loc[2, "discharge"], 1e-6, "discharge cycle 2")
    assert _codes(s) == ["incomplete_cycles"] and "1, 3" in s["flags"][0]["message"]


def check_neware_uio(out: Path, stdout: str) -> None:
    """Si anode, --electrode anode: cycle k = lithiation then delithiation; the last delithiation stops early."""
    raw = pd.read_csv(DATA / "cellpy" / "neware_uio.csv")
    run = (raw["Step Index"] != raw["Step Index"].shift()).cumsum()
    steps = raw.groupby(run).agg(kind=("Step Type", "first"), c=("Chg. Cap.(Ah)", "max"), d=("DChg. Cap.(Ah)", "max"))
    steps = steps[steps["kind"] != "Rest"]
    # a lithiation is several CC discharge steps at falling current: sum consecutive steps of one kind
    half = (steps["kind"] != steps["kind"].shift()).cumsum()
    halves = steps.groupby(half).agg(kind=("kind", "first"), c=("c", "sum"), d=("d", "sum"))
    lith = halves.loc[halves["kind"] == "CC DChg", "d"].to_numpy() * 1000
    delith = halves.loc[halves["kind"] == "CC Chg", "c"].to_numpy() * 1000
    assert lith.size == delith.size == 5 and delith[4] < 0.5 * delith[3]
    s = _summary(out)
    assert s["electrode"] == "anode" and s["last_cycle"] == 4
    _close(s["last_retention"], delith[3] / delith[0], 1e-6, "retention 4 vs 1")
    _close(s["first_cycle_coulombic_efficiency"], delith[0] / lith[0], 1e-6, "first CE")
    assert _codes(s) == ["truncated_last_cycle"] and "cycle 5" in s["flags"][0]["message"]


# --------------------------------------------------------------------------------------- Arbin .res


def check_arbin_res(out: Path, stdout: str) -> None:
    """Si anode: energy efficiency vs Arbin's own energy counters (it read 3.75 before); CE > 1 is flagged."""
    exe = shutil.which("mdb-export")
    assert exe, "mdb-export (Debian mdbtools) is needed for the .res check"
    text = subprocess.run([exe, str(DATA / "cellpy" / "20160805_test001_45_cc_01.res"), "Channel_Normal_Table"],
                          capture_output=True, text=True, check=True).stdout
    raw = pd.read_csv(StringIO(text))
    per = raw.groupby("Cycle_Index")[["Charge_Capacity", "Discharge_Capacity", "Charge_Energy",
                                      "Discharge_Energy"]].max().loc[1:17]
    cycles = pd.read_csv(out / "cycles.csv").set_index("cycle").loc[1:17]
    np.testing.assert_allclose(cycles["charge_capacity_mAh"], per["Charge_Capacity"] * 1000, rtol=1e-6)
    np.testing.assert_allclose(cycles["energy_efficiency"], per["Discharge_Energy"] / per["Charge_Energy"], rtol=0.01)
    s = _summary(out)
    _close(s["mean_energy_efficiency"], (per["Discharge_Energy"] / per["Charge_Energy"]).mean(), 0.01, "mean EE")
    assert s["mean_energy_efficiency"] < 0.5
    flag = next(f for f in s["flags"] if f["code"] == "coulombic_efficiency_above_1")
    assert (per["Charge_Capacity"] / per["Discharge_Capacity"]).median() > 1.02
    assert "current calibration" in flag["message"]


# --------------------------------------------------------------------------------------- normalised curves


def _independent_main_peak_V(q: np.ndarray, v: np.ndarray) -> float:
    """Highest |dQ/dV|: q interpolated on a 1 mV grid, 15 mV moving average, numpy gradient."""
    o = np.argsort(v, kind="stable")
    v, idx = np.unique(v[o], return_index=True)
    q = q[o][idx]
    grid = np.arange(v[0], v[-1], 0.001)
    qg = np.convolve(np.interp(grid, v, q), np.ones(15) / 15, mode="same")
    d = np.abs(np.gradient(qg, grid))[15:-15]
    return float(grid[15:-15][np.argmax(d)])


def _curve_check(load):
    def check(out: Path, stdout: str) -> None:
        q, v = load()
        s = _summary(out)
        highest = max(s["dqdv_peaks"], key=lambda p: abs(p["height"]))
        assert abs(highest["position_V"] - _independent_main_peak_V(q, v)) < 0.005, highest
        assert np.isclose(s["voltage_min_V"], v.min()) and np.isclose(s["voltage_max_V"], v.max())
        d = pd.read_csv(out / "dqdv.csv")
        area = np.trapezoid(np.abs(d["dqdv_per_V"]), d["voltage_V"])
        assert abs(area - (q.max() - q.min())) < 0.02, area
        assert s["flags"][0]["code"] == "capacity_normalised" and "capacity_normalised" in stdout
    return check


def _mat(rel: str):
    def load():
        import scipy.io

        m = scipy.io.loadmat(DATA / rel, squeeze_me=True, struct_as_record=False)
        st = next(v for k, v in m.items() if not k.startswith("__"))
        return np.asarray(st.normalizedCapacity, float), np.asarray(st.voltage, float)
    return load


def _aligned(rel: str):
    def load():
        d = pd.read_csv(DATA / rel)
        return d["SOC_aligned"].to_numpy(float) / 100.0, d["Voltage_aligned"].to_numpy(float)
    return load


_CURVE_WHY = ("processed pseudo-OCV curve, capacity normalised 0-1: voltage curve and dQ/dV only; highest dQ/dV "
              "peak within 5 mV of a numpy derivative of the raw arrays, area under |dQ/dV| = 1 within 0.02, "
              "capacity_normalised flag")

_TUM = ["tum_halfcell/NCA/MoliM35A_PE_Cathode_Delithiation_0C02.mat",
        "tum_halfcell/NCA/MoliM35A_PE_Cathode_Lithiation_0C02.mat",
        "tum_halfcell/NCA/P45B_Cathode_Delithiation_0C03.mat",
        "tum_halfcell/NMC/LGM36_PE_coin_Cathode_Delithiation_0C02.mat",
        "tum_halfcell/NMC/LGM36_PE_coin_Cathode_Lithiation_0C02.mat"]
_ALIGNED = ["beep/cathode_clean_cc_charge_exptl_aligned.csv", "beep/anode_secondMeasure_clean_cc_charge_exptl_aligned.csv"]

_RUN = ["cycling", "{file}", "--out", "{out}"]

ROWS = [
    Row(path="cycling/beep/PreDiag_000229_000229_truncated.034", args=_RUN, check=check_prediag,
        why="Maccor text: cycle 0 charges from 3.62 V (CE 1.24 from Amp-hr), cycle 1 has one discharge record: "
            "both flagged, no headline"),
    Row(path="cycling/beep/xTESLADIAG_000019_CH70.070", args=_RUN, check=check_xtesladiag,
        why="Maccor text: 30 loops under one cycle number paired; retention and mean CE vs Amp-hr runs (1e-9); "
            "slow diagnostic discharge kept apart"),
    Row(path="cycling/beep/test_loopsnewoutput_MB_CE1_short10k.csv", args=_RUN, check=check_biologic,
        why="BioLogic ';' CSV: CE of cycle 1 vs the signed (Q-Qo) counter (1e-3); partly charged cycle 0 and "
            "truncated cycle 2 flagged"),
    Row(path="cycling/beep/test_loopsnewoutput_MB_CE1_short10k.mpl", expect="companion",
        of="cycling/beep/test_loopsnewoutput_MB_CE1_short10k.csv",
        why="BioLogic log of the CSV's run (no data records); run alone it is refused naming the CSV"),
    Row(path="cycling/beep/2017-05-09_test-TC-contact_CH33.csv", args=_RUN, expect="refused",
        message=r"CH33\.csv: the file holds no discharge .* no cycle to analyse",
        why="Arbin CSV fragment: one 17-min charge, no Cycle_Index: refused by name"),
    Row(path="cycling/beep/2017-05-09_test-TC-contact_CH33_Metadata.csv", expect="companion",
        of="cycling/beep/2017-05-09_test-TC-contact_CH33.csv",
        why="Arbin metadata sidecar read with the CSV (vendor_metadata); run alone it is refused naming the CSV"),
    Row(path="cycling/neware/test_2.ndax", args=_RUN, check=check_test2,
        why="Neware .ndax, 54 cycles: truncated cycle 54 (CE 7.9 %) left out; retention and mean CE vs NewareNDA "
            "step maxima (1e-5)"),
    Row(path="cycling/neware/TestFile.nda", args=_RUN, check=check_testfile,
        why="Neware .nda: half cycles 1 and 3 flagged; CE of cycle 2 vs NewareNDA (1e-6)"),
    Row(path="cycling/cellpy/neware_uio.csv", args=_RUN + ["--electrode", "anode"], check=check_neware_uio,
        why="Neware CSV, Si anode: retention and first CE vs step maxima (1e-6); truncated last delithiation flagged"),
    Row(path="cycling/cellpy/20160805_test001_45_cc_01.res", args=_RUN + ["--electrode", "anode"], check=check_arbin_res,
        why="Arbin .res (mdbtools), Si anode: energy efficiency vs Arbin's energy counters (1 %, was 3.75); "
            "capacities (1e-6); CE > 1 in most cycles flagged"),
]
ROWS += [Row(path=f"cycling/{p}", args=_RUN, check=_curve_check(_mat(p)), why=_CURVE_WHY) for p in _TUM]
ROWS += [Row(path=f"cycling/{p}", args=_RUN, check=_curve_check(_aligned(p)), why=_CURVE_WHY) for p in _ALIGNED]
