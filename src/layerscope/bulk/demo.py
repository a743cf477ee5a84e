"""Demo: bulk spectroscopy of a charged NMC811 cathode simulated with known truth.

* XAS: Ni K edges of Ni2+ and Ni3+ references 2 eV apart and a sample that is 30 % Ni2+ / 70 %
  Ni3+ (valence 2.7).
* EIS: R0-p(R1,C1)-p(R2,C2) with R0 = 20 mOhm, R1 = 30 mOhm (surface film) and R2 = 50 mOhm (charge
  transfer), 0.1 % noise.
* DEMS: O2 released from 4.30 V and CO2 from 4.00 V on a 3.0-4.8 V charge; 12 mg of active material.

Register it in :data:`layerscope.demo.DEMO_STEPS` as ``("bulk", "layerscope.bulk.demo")``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.special import erf

from layerscope.bulk.eis import EISOptions, analyse_eis
from layerscope.bulk.eis_readers import Impedance
from layerscope.bulk.gas import GasOptions, GasRun, analyse_gas
from layerscope.bulk.xas import XASOptions, analyse_xas
from layerscope.bulk.xas_readers import XASSpectrum
from layerscope.provenance import Provenance

__all__ = ["simulate_bulk", "demo_section"]

TRUTH = {"valence": 2.7, "R1_Ohm": 0.030, "R2_Ohm": 0.050, "o2_onset_V": 4.30, "co2_onset_V": 4.00}


def _edge(e: np.ndarray, e0: float) -> np.ndarray:
    return 0.2 + 0.8 * 0.5 * (1 + erf((e - e0) / 2.1)) + 0.4 * np.exp(-0.5 * ((e - e0 - 4.0) / 2.0) ** 2)


def simulate_bulk(seed: int = 0) -> tuple[list[XASSpectrum], Impedance, GasRun]:
    """The three synthetic measurements described in the module docstring."""
    rng = np.random.default_rng(seed)
    e = np.arange(8200.0, 8700.0, 0.25)
    ni2, ni3 = _edge(e, 8340.0), _edge(e, 8342.0)
    mus = (("Ni2+ reference", ni2), ("Ni3+ reference", ni3), ("charged NMC811", 0.3 * ni2 + 0.7 * ni3))
    spectra = [XASSpectrum(e, mu + rng.normal(0, 3e-4, e.size), name) for name, mu in mus]
    f = np.logspace(5, -1, 61)
    jw = 2j * np.pi * f
    z = 0.020 + 0.030 / (1 + jw * 0.030 * 1e-4) + 0.050 / (1 + jw * 0.050 * 2.0)
    z = z + np.abs(z) * 1e-3 * (rng.normal(size=f.size) + 1j * rng.normal(size=f.size))
    t = np.arange(0.0, 36000.0, 10.0)
    v = 3.0 + 1.8 * t / t[-1]
    tri = lambda a, b, c, h: h * np.clip(np.minimum((v - a) / (b - a), (c - v) / (c - b)), 0, None)  # noqa: E731
    channels = {32: 1e-12 + tri(4.30, 4.55, 4.75, 2e-10) + rng.normal(0, 2e-13, t.size),
                44: 3e-12 + tri(4.00, 4.40, 4.70, 5e-10) + rng.normal(0, 2e-13, t.size)}
    return spectra, Impedance(f, z, "NMC811 half cell"), GasRun({"time_s": t, "voltage_V": v}, channels, None, "DEMS")


def demo_section(workdir: Path, *, seed: int = 0):
    """Run XAS, EIS and gas evolution on the simulated cathode; write their outputs into ``workdir``."""
    from layerscope.report import Section, Value

    spectra, imp, dems = simulate_bulk(seed)
    xas = analyse_xas(spectra, XASOptions(references=(("Ni2+ reference", 2.0), ("Ni3+ reference", 3.0))))
    eis = analyse_eis([imp], EISOptions(circuit="R0-p(R1,C1)-p(R2,C2)"))
    gas = analyse_gas([dems], GasOptions(calibration=((32, 0.02), (44, 0.01)), active_mass_mg=12.0))
    for name, res in (("xas", xas), ("eis", eis), ("gas", gas)):
        res.write(workdir / name, Provenance.create([], parameters={"seed": seed, **res.parameters}))
    val = xas.table.set_index("spectrum").loc["charged NMC811"]
    fit = eis.items[0].fit.as_dict()
    g = gas.table.set_index("mz")
    metrics = {"Ni valence, linear combination (truth 2.7)": Value(val["valence_lcf"], val["valence_lcf_err"]),
               "R1 surface film (mOhm, truth 30)": Value(1000 * fit["R1"], 1000 * fit["R1_err"], "mOhm"),
               "R2 charge transfer (mOhm, truth 50)": Value(1000 * fit["R2"], 1000 * fit["R2_err"], "mOhm"),
               "O2 onset (V, truth 4.30)": Value(g.loc[32, "onset_extrapolated"], g.loc[32, "onset_err"], "V"),
               "CO2 onset (V, truth 4.00)": Value(g.loc[44, "onset_extrapolated"], g.loc[44, "onset_err"], "V"),
               "O2 released (µmol/g, one run)": Value(g.loc[32, "amount_umol_g"], None, "µmol/g")}
    text = ("Bulk spectroscopy of a simulated charged NMC811 cathode with known truth: Ni K-edge valence from "
            "references, impedance fit of a film and a charge-transfer arc, and DEMS gas evolution on charge.")
    return Section("Bulk spectroscopy (XAS, EIS, DEMS)", text=text,
                   figures=xas.figures()[:1] + eis.figures()[:1] + gas.figures()[:1], metrics=metrics,
                   headline=["Ni valence, linear combination (truth 2.7)", "R2 charge transfer (mOhm, truth 50)",
                             "O2 onset (V, truth 4.30)"])
