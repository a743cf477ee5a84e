"""Real-data rows of the bulk-spectroscopy domain (XAS, EIS); see corpus.py for the format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from corpus import Row

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
EIS = "eis/impedance_py"
XAS = "xas/featurexas_nmc_ni_k/nmc_exp_xas.json"


def _check_xas(out: Path, stdout: str) -> None:
    t = pd.read_csv(out / "edges.csv")
    assert len(t) == 16, len(t)
    for comp, g in t.groupby("composition"):
        charged = g.loc[g["voltage"] >= 4.3, "edge_energy_eV"]
        low = g.loc[~(g["voltage"] >= 4.3), "edge_energy_eV"]  # pristine (no voltage) and discharged to 3.0 V
        gap = charged.min() - low.max()
        assert 1.0 < gap < 4.0, f"{comp}: charged edges {gap:.2f} eV above pristine/discharged"
    doc = json.loads((SHARED / XAS).read_text())
    diffs = []
    for _, row in t.iterrows():
        y = np.asarray(doc["intensity"][str(row["spectrum"])], float)
        e = 8330.0 + 0.4 * np.arange(y.size)
        diffs.append(row["e0_derivative_eV"] - e[np.argmax(np.gradient(y, e))])  # plain numpy derivative maximum
    assert np.max(np.abs(diffs)) <= 0.8 and np.median(np.abs(diffs)) <= 0.3, diffs
    assert "no_post_edge" in stdout  # XANES cut 20 eV above the edge: flagged, normalised to the white line


def _raw_biologic(path: Path):
    raw = pd.read_csv(path, sep="\t", skiprows=60, encoding="latin-1")
    return raw["freq/Hz"].to_numpy(), raw["Re(Z)/Ohm"].to_numpy() - 1j * raw["-Im(Z)/Ohm"].to_numpy()


def _raw_after(path: Path, marker: str, skip: int, sep: str | None, cols: tuple[int, int, int]):
    lines = path.read_bytes().decode("latin-1").splitlines()
    start = next(i for i, line in enumerate(lines) if marker in line) + 1 + skip
    rows = []
    for line in lines[start:]:
        parts = [p for p in (line.split(sep) if sep else line.split()) if p.strip()]
        try:
            rows.append([float(parts[c]) for c in cols])
        except (ValueError, IndexError):
            break
    a = np.array(rows)
    return a[:, 0], a[:, 1] + 1j * a[:, 2]


RAW = {
    "exampleDataBioLogic.mpt": _raw_biologic,
    "exampleDataGamry.DTA": lambda p: _raw_after(p, "ZCURVE", 2, "\t", (2, 3, 4)),
    "exampleDataZPlot.z": lambda p: _raw_after(p, "End Comments", 0, None, (0, 4, 5)),
    "exampleDataAutolab.txt": lambda p: _raw_after(p, "Freq", 0, ",", (0, 4, 5)),
    "exampleDataCHInstruments.txt": lambda p: _raw_after(p, "Freq/Hz", 1, ",", (0, 1, 2)),
}


def _check_instrument(name: str):
    def check(out: Path, stdout: str) -> None:
        f, z = RAW[name](SHARED / EIS / name)
        s = json.loads((out / "summary.json").read_text())["spectra"][0]
        assert s["n_points"] == f.size, (s["n_points"], f.size)
        assert s["f_max_Hz"] == np.max(f) and s["f_min_Hz"] == np.min(f)
        order = np.argsort(-f)
        zs = z[order]
        # the high-frequency intercept lies between the raw points around the first sign change of Z''
        # (or is Re Z at the highest frequency when Z'' never changes sign)
        k = np.flatnonzero((zs.imag[:-1] > 0) & (zs.imag[1:] <= 0))
        lo, hi = (sorted(zs.real[k[0]:k[0] + 2]) if k.size else (zs.real[0], zs.real[0]))
        assert lo - 1e-9 <= s["hf_intercept_Ohm"] <= hi + 1e-9, (s["hf_intercept_Ohm"], lo, hi)
        # the residual in summary.json is the one of the written fit against the raw points
        sp = pd.read_csv(out / "spectra.csv")
        fitted = sp[sp["fitted"]]
        raw = pd.Series(zs, index=f[order]).loc[fitted["frequency_Hz"]].to_numpy()
        zf = fitted["z_fit_real_Ohm"].to_numpy() + 1j * fitted["z_fit_imag_Ohm"].to_numpy()
        rel = np.sqrt(np.sum(np.abs(raw - zf) ** 2) / np.sum(np.abs(raw) ** 2))
        assert abs(rel - s["relative_residual"]) <= 1e-6 * max(rel, 1e-12) + 1e-12
    return check


def _check_example(out: Path, stdout: str) -> None:
    from impedance import preprocessing
    from impedance.models.circuits import CustomCircuit

    f, z = preprocessing.ignoreBelowX(*preprocessing.readCSV(str(SHARED / EIS / "exampleData.csv")))
    ref = CustomCircuit(initial_guess=[.01, .01, 100, .01, .05, 100, 1], circuit="R0-p(R1,C1)-p(R2-Wo1,C2)").fit(f, z)
    s = json.loads((out / "summary.json").read_text())["spectra"][0]
    for name, value, err in zip(["R0", "R1", "C1", "R2", "Wo1_0", "Wo1_1", "C2"], ref.parameters_, ref.conf_):
        assert abs(s[name] - value) < max(0.01 * value, 0.5 * err), (name, s[name], value, err)


ROWS = [
    Row(path=XAS, args=["xas", "{file}", "--energy-grid", "8330:0.4", "--out", "{out}"], check=_check_xas,
        why="16 Ni K XANES of NMC622/721: every charged (4.3, 4.8 V) edge lies 1-4 eV above every pristine and "
            "3.0 V edge; E0 within 0.8 eV (median 0.3) of a plain numpy derivative maximum; short XANES flagged"),
    Row(path=f"{EIS}/exampleData.csv", args=["eis", "{file}", "--circuit", "R0-p(R1,C1)-p(R2-Wo1,C2)",
                                            "--initial-guess", "0.01,0.01,100,0.01,0.05,100,1", "--out", "{out}"],
        check=_check_example,
        why="impedance.py's documentation example from its documented starting values: all 7 parameters within 1 % "
            "(or half a standard error) of impedance.py's own fit, run in the check"),
] + [
    Row(path=f"{EIS}/{name}", args=["eis", "{file}", "--out", "{out}"], check=_check_instrument(name),
        why=f"{name.split('exampleData')[1]} export: point count, frequency range and high-frequency intercept "
            "against the raw columns parsed independently (pandas/split); residual recomputed from spectra.csv")
    for name in RAW
]
