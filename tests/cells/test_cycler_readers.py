"""Every cycler reader on the real files of ../shared/data/cycling, checked against capacities and
cycle counts recomputed here from the raw columns with plain pandas (a different code path), and
against coulomb counting (integrating the logged current over time)."""

from __future__ import annotations

import shutil
import subprocess
from io import StringIO

import numpy as np
import pandas as pd
import pytest

from layerscope.cells import read_cycler
from layerscope.cells.metrics import cycle_metrics
from layerscope.errors import InputError


def _ours(data) -> pd.DataFrame:
    """Per-cycle capacities of the tidy table (the readers' cumulative columns)."""
    out = data.data.groupby("cycle")[["charge_capacity_mAh", "discharge_capacity_mAh"]].max()
    out.index = out.index.astype("int64")
    return out


def _trapz_by(frame: pd.DataFrame, t: str, i: str, key: str) -> pd.Series:
    """|integral of I dt| per run of ``key``, in the unit of I times hours."""
    out = {}
    for k, g in frame.groupby(key, sort=False):
        out[k] = abs(np.trapezoid(g[i].to_numpy(float), g[t].to_numpy(float))) / 3600.0
    return pd.Series(out)


@pytest.mark.parametrize("name", ["PreDiag_000229_000229_truncated.034", "xTESLADIAG_000019_CH70.070"])
def test_maccor_against_raw_columns(shared_data, name):
    path = shared_data / "cycling" / "beep" / name
    raw = pd.read_csv(path, sep="\t", skiprows=1, low_memory=False)
    # independent: Amp-hr restarts at every (Step, State) run; sum the run maxima per cycle and state
    run = ((raw["Step"] != raw["Step"].shift()) | (raw["State"] != raw["State"].shift())).cumsum()
    per_run = raw.assign(run=run).groupby(["Cyc#", "State", "run"])["Amp-hr"].max().reset_index()
    expect = per_run.groupby(["Cyc#", "State"])["Amp-hr"].sum().unstack(fill_value=0.0) * 1000.0
    data = read_cycler(path)
    assert data.layout == "maccor-text"
    assert data.n_cycles == raw["Cyc#"].nunique()
    ours = _ours(data)
    np.testing.assert_allclose(ours["charge_capacity_mAh"], expect["C"].reindex(ours.index, fill_value=0.0),
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours["discharge_capacity_mAh"], expect["D"].reindex(ours.index, fill_value=0.0),
                               rtol=1e-9, atol=1e-9)
    # coulomb counting of every charge/discharge run longer than 10 min agrees within 1 %
    seg = raw.assign(run=run)
    long = seg.groupby("run").filter(lambda g: g["State"].iloc[0] in "CD" and np.ptp(g["Test (Sec)"]) > 600)
    q_int = _trapz_by(long, "Test (Sec)", "Amps", "run").astype(float) * 1000.0
    q_ctr = long.groupby("run")["Amp-hr"].max() * 1000.0
    assert len(q_ctr) >= 3
    np.testing.assert_allclose(q_int.loc[q_ctr.index].to_numpy(), q_ctr.to_numpy(), rtol=0.01)


def test_biologic_csv_against_net_charge_counter(shared_data):
    path = shared_data / "cycling" / "beep" / "test_loopsnewoutput_MB_CE1_short10k.csv"
    raw = pd.read_csv(path, sep=";", low_memory=False)
    # independent: the reader uses 'Q charge'/'Q discharge'; here the signed net counter (Q-Qo)
    dq = raw["(Q-Qo)/mA.h"].diff().fillna(raw["(Q-Qo)/mA.h"].iloc[0])
    expect = pd.DataFrame({"c": dq.clip(lower=0), "d": (-dq).clip(lower=0), "cyc": raw["cycle number"]}).groupby("cyc").sum()
    data = read_cycler(path)
    assert data.layout == "biologic-text"
    assert data.n_cycles == raw["cycle number"].nunique() == 3
    ours = _ours(data)
    np.testing.assert_allclose(ours["charge_capacity_mAh"], expect["c"], rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(ours["discharge_capacity_mAh"], expect["d"], rtol=1e-6, atol=1e-3)
    # time: the absolute MM/DD/YYYY stamps become seconds from the first record
    t = pd.to_datetime(raw["time/s"], format="%m/%d/%Y %H:%M:%S.%f")
    assert data.data["time_s"].iloc[-1] == pytest.approx((t.iloc[-1] - t.iloc[0]).total_seconds(), abs=1e-3)


@pytest.fixture(scope="module")
def ndax(shared_data):
    import NewareNDA

    path = shared_data / "cycling" / "neware" / "test_2.ndax"
    raw = NewareNDA.read(str(path))
    # the reader calls NewareNDA.read itself; hand it a copy of this parse instead of a second one
    original = NewareNDA.read
    NewareNDA.read = lambda p: raw.copy()
    try:
        data = read_cycler(path)
    finally:
        NewareNDA.read = original
    return path, raw, data


@pytest.mark.parametrize("name", ["TestFile.nda", "test_2.ndax"])
def test_neware_binary_against_raw_columns(shared_data, ndax, name):
    import NewareNDA

    path = shared_data / "cycling" / "neware" / name
    raw, data = (ndax[1], ndax[2]) if name == "test_2.ndax" else (NewareNDA.read(str(path)), read_cycler(path))
    # independent: the counters restart at every Step; sum the step maxima per cycle
    expect = raw.groupby(["Cycle", "Step"])[["Charge_Capacity(mAh)", "Discharge_Capacity(mAh)"]].max().groupby(
        "Cycle").sum()
    assert data.layout == "neware-nda"
    assert data.n_cycles == raw["Cycle"].nunique()
    assert data.n_cycles == {"TestFile.nda": 3, "test_2.ndax": 54}[name]  # MANIFEST
    ours = _ours(data)
    np.testing.assert_allclose(ours["charge_capacity_mAh"], expect["Charge_Capacity(mAh)"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours["discharge_capacity_mAh"], expect["Discharge_Capacity(mAh)"], rtol=1e-6, atol=1e-6)
    assert data.data["voltage_V"].min() >= {"TestFile.nda": 1.69, "test_2.ndax": 0.19}[name]
    assert data.data["voltage_V"].max() <= {"TestFile.nda": 4.21, "test_2.ndax": 3.41}[name]


def test_neware_nda_coulomb_counting(shared_data):
    """Units of time and current: integrating current_A over time_s reproduces the counters."""
    from layerscope.cells.metrics import increments

    data = read_cycler(shared_data / "cycling" / "neware" / "TestFile.nda")
    t = data.data
    ch, dis = increments(t)
    t = t.assign(inc=ch + dis)
    checked = 0
    for step, g in t.groupby("step"):
        if g["state"].iloc[0] == "rest" or np.ptp(g["time_s"]) < 3600:
            continue
        q_int = abs(np.trapezoid(g["current_A"], g["time_s"])) / 3.6
        assert q_int == pytest.approx(g["inc"].iloc[1:].sum(), rel=0.005), step
        checked += 1
    assert checked >= 3


def test_neware_csv_against_raw_columns(shared_data):
    path = shared_data / "cycling" / "cellpy" / "neware_uio.csv"
    raw = pd.read_csv(path)
    run = (raw["Step Index"] != raw["Step Index"].shift()).cumsum()
    expect = raw.assign(run=run).groupby(["Cycle Index", "run"])[["Chg. Cap.(Ah)", "DChg. Cap.(Ah)"]].max().groupby(
        "Cycle Index").sum() * 1000.0
    data = read_cycler(path)
    assert data.layout == "neware-csv"
    assert data.n_cycles == raw["Cycle Index"].nunique() == 4
    ours = _ours(data)
    np.testing.assert_allclose(ours["charge_capacity_mAh"], expect["Chg. Cap.(Ah)"], rtol=1e-9)
    np.testing.assert_allclose(ours["discharge_capacity_mAh"], expect["DChg. Cap.(Ah)"], rtol=1e-9)
    # H:MM:SS with hours above 24
    h, m, s = raw["Cumulative Time"].iloc[-1].split(":")
    assert data.data["time_s"].iloc[-1] == pytest.approx(int(h) * 3600 + int(m) * 60 + float(s))


@pytest.mark.skipif(shutil.which("mdb-export") is None, reason="mdbtools (Debian package) is not installed")
def test_arbin_res_against_mdb_export(shared_data):
    path = shared_data / "cycling" / "cellpy" / "20160805_test001_45_cc_01.res"
    text = subprocess.run(["mdb-export", str(path), "Channel_Normal_Table"], capture_output=True, text=True,
                          check=True).stdout
    raw = pd.read_csv(StringIO(text))
    # independent: Arbin's counters restart at every cycle: the cycle maximum is the cycle capacity
    expect = raw.groupby("Cycle_Index")[["Charge_Capacity", "Discharge_Capacity"]].max() * 1000.0
    data = read_cycler(path)
    assert data.layout == "arbin-res"
    assert data.n_cycles == raw["Cycle_Index"].nunique() == 18
    ours = _ours(data)
    np.testing.assert_allclose(ours["charge_capacity_mAh"], expect["Charge_Capacity"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours["discharge_capacity_mAh"], expect["Discharge_Capacity"], rtol=1e-9, atol=1e-12)
    # the vendor's mass is reported, never used
    assert data.metadata["vendor_active_mass"] == pytest.approx(0.00085283798)
    assert "specific_capacity_mAh_g" not in data.data.columns


def test_arbin_res_without_mdbtools_names_the_fix(shared_data, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(InputError, match="apt-get install mdbtools"):
        read_cycler(shared_data / "cycling" / "cellpy" / "20160805_test001_45_cc_01.res")


def test_arbin_csv_fragment_without_cycle_index(shared_data):
    path = shared_data / "cycling" / "beep" / "2017-05-09_test-TC-contact_CH33.csv"
    raw = pd.read_csv(path)
    data = read_cycler(path)
    assert data.layout == "arbin-csv"
    assert data.n_cycles == 0 and "warning" in data.metadata
    assert data.data["charge_capacity_mAh"].max() == pytest.approx(raw["Charge_Capacity"].max() * 1000.0, rel=1e-9)
    assert data.metadata["vendor_metadata"]["Schedule_File_Name"] == "20170509-6C_1C_36CV.sdu"
    with pytest.raises(InputError, match="no cycle number"):
        cycle_metrics(data)


@pytest.mark.parametrize("name, message", [
    ("cathode_clean_cc_charge_exptl_aligned.csv", "processed voltage curve with a normalised capacity"),
    ("test_loopsnewoutput_MB_CE1_short10k.mpl", "BioLogic log file .*run cycling on test_loopsnewoutput_MB_CE1_short10k.csv"),
    ("2017-05-09_test-TC-contact_CH33_Metadata.csv", "Arbin metadata sidecar .*run cycling on 2017-05-09_test-TC-contact_CH33.csv"),
])
def test_files_without_cycler_records_are_named(shared_data, name, message):
    """Files that sit next to cycler data but hold none are refused by what they are, not as 'unknown'."""
    with pytest.raises(InputError, match=message):
        read_cycler(shared_data / "cycling" / "beep" / name)


def test_unknown_layout_lists_the_columns(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("when,volts,amps\n0,3.5,0.1\n")
    with pytest.raises(InputError, match="unknown cycler layout") as err:
        read_cycler(path)
    assert "volts" in str(err.value)


def test_missing_column_is_named(tmp_path, shared_data):
    src = (shared_data / "cycling" / "beep" / "xTESLADIAG_000019_CH70.070").read_text(encoding="latin-1").splitlines()
    header = src[1].split("\t")
    drop = header.index("Amps")
    lines = [src[0]] + ["\t".join(v for k, v in enumerate(line.split("\t")) if k != drop) for line in src[1:50]]
    bad = tmp_path / "no_amps.070"
    bad.write_text("\n".join(lines), encoding="latin-1")
    with pytest.raises(InputError, match="Amps"):
        read_cycler(bad)


def test_plain_csv_and_explicit_mass(tmp_path):
    # 1 mA for 1 h charge, 1 mA for 0.9 h discharge: 1 and 0.9 mAh by the trapezoid rule, exactly
    t = np.arange(0, 3600 + 1, 10.0)
    t2 = np.arange(0, 3240 + 1, 10.0)
    frame = pd.DataFrame({
        "time_s": np.r_[t, 3610 + t2],
        "cycle": 1,
        "current_A": np.r_[np.full(t.size, 1e-3), np.full(t2.size, -1e-3)],
        "voltage_V": np.r_[3.0 + t / 3600, 4.0 - t2 / 3240],
    })
    path = tmp_path / "plain.csv"
    frame.to_csv(path, index=False)
    data = read_cycler(path, active_mass_mg=5.0)
    assert data.layout == "plain-csv"
    q = _ours(data)
    assert q["charge_capacity_mAh"].iloc[0] == pytest.approx(1.0, rel=1e-12)
    assert q["discharge_capacity_mAh"].iloc[0] == pytest.approx(0.9, rel=1e-12)
    np.testing.assert_allclose(data.data["specific_capacity_mAh_g"], data.data["capacity_mAh"] / 0.005)
    with pytest.raises(InputError, match="positive"):
        read_cycler(path, active_mass_mg=-1.0)


def test_biologic_mpr_mapping_through_galvani(tmp_path, monkeypatch):
    """galvani's record array is mapped with the same columns as the text export ((Q-Qo) path)."""
    from galvani import BioLogic

    t = np.linspace(0, 7200, 721)
    i_ma = np.where(t < 3600, 2.0, -2.0)
    q = np.r_[0.0, np.cumsum(0.5 * (i_ma[1:] + i_ma[:-1]) * np.diff(t) / 3600)]
    rec = np.rec.fromarrays([t, 3.5 + 0.1 * np.sign(i_ma), i_ma, np.zeros(t.size), q, np.where(t < 3600, 1, 2)],
                            names=["time/s", "Ewe/V", "I/mA", "cycle number", "(Q-Qo)/mA.h", "Ns"])

    class Fake:
        def __init__(self, path):
            self.data = rec
            self.startdate = None

    monkeypatch.setattr(BioLogic, "MPRfile", Fake)
    path = tmp_path / "x.mpr"
    path.write_bytes(b"")
    data = read_cycler(path)
    assert data.layout == "biologic-mpr"
    q_ = _ours(data)
    # the counter built above: 2 mA over 0-3590 s on charge (the 3590-3600 s interval straddles the
    # switch and nets zero), 2 mA over 3600-7200 s on discharge
    assert q_["charge_capacity_mAh"].iloc[0] == pytest.approx(2.0 * 3590 / 3600, rel=1e-9)
    assert q_["discharge_capacity_mAh"].iloc[0] == pytest.approx(2.0, rel=1e-9)


def test_biologic_mpt_text_export(tmp_path):
    """A minimal EC-Lab .mpt ('EC-Lab ASCII FILE' header, tab-separated, decimal commas)."""
    cols = ["mode", "ox/red", "time/s", "Ewe/V", "I/mA", "cycle number", "Q charge/mA.h", "Q discharge/mA.h", "Ns"]
    t = np.arange(0, 7200 + 1, 60.0)
    on = t <= 3600
    qc = np.where(on, t / 3600 * 1.5, 1.5)  # 1.5 mA for 1 h, then discharge at 1.5 mA
    qd = np.where(on, 0.0, (t - 3600) / 3600 * 1.5)
    qc = np.where(on, qc, 0.0)  # EC-Lab restarts both counters at the change of half cycle
    rows = [[1, 1, tt, 3.5 + 0.1 * o - 0.1 * (not o), 1.5 if o else -1.5, 0, a, b, 1 if o else 2]
            for tt, o, a, b in zip(t, on, qc, qd)]
    header = ["EC-Lab ASCII FILE", "Nb header lines : 4", "", "\t".join(cols)]
    body = ["\t".join(str(v).replace(".", ",") for v in r) for r in rows]
    path = tmp_path / "run.mpt"
    path.write_text("\n".join(header + body) + "\n", encoding="latin-1")
    data = read_cycler(path)
    assert data.layout == "biologic-text"
    q = _ours(data)
    assert q["charge_capacity_mAh"].iloc[0] == pytest.approx(1.5, rel=1e-12)
    assert q["discharge_capacity_mAh"].iloc[0] == pytest.approx(1.5, rel=1e-12)
    assert data.data["time_s"].iloc[-1] == pytest.approx(7200.0)
