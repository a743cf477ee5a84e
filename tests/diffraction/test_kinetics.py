"""Kissinger and Ozawa on first-order release peaks generated here by integrating the rate law
with a known activation energy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import solve_ivp

from layerscope.diffraction import kissinger, ozawa, peak_temperature, read_thermal_curve
from layerscope.errors import InputError

R = 8.314462618
EA_TRUE = 150e3  # J/mol
A_TRUE = 1e12  # 1/s
RATES = [2.0, 5.0, 10.0, 20.0]  # K/min


def first_order_run(beta_K_min, *, ea=EA_TRUE, a=A_TRUE, noise=0.005, seed=0):
    """d(alpha)/dt = A exp(-Ea/RT) (1 - alpha) with T = T0 + beta t; returns T (K), time (s), rate (1/s)."""
    b = beta_K_min / 60.0
    temp = np.arange(400.0, 800.0, 0.25)
    sol = solve_ivp(lambda t, al: a * np.exp(-ea / (R * t)) * (1 - al) / b, (temp[0], temp[-1]), [0.0],
                    t_eval=temp, rtol=1e-10, atol=1e-12, method="LSODA")
    rate = a * np.exp(-ea / (R * temp)) * (1 - sol.y[0])
    rate = rate + np.random.default_rng(seed).normal(0, noise * rate.max(), temp.size)
    return temp, (temp - temp[0]) / b, rate


@pytest.fixture(scope="module")
def runs():
    return {b: first_order_run(b, seed=int(b)) for b in RATES}


def test_kissinger_recovers_ea_within_2_percent(runs):
    tp = [peak_temperature(t, r)["peak_K"] for t, _, r in runs.values()]
    k = kissinger(RATES, tp)
    assert k.ea_kJ_mol == pytest.approx(EA_TRUE / 1000, rel=0.02)
    assert abs(k.ea_kJ_mol - EA_TRUE / 1000) < 5 * k.ea_err_kJ_mol + 0.5
    assert k.ln_prefactor_per_s == pytest.approx(np.log(A_TRUE), abs=0.5)
    assert k.ea_eV == pytest.approx(EA_TRUE / 1000 / 96.48533212, rel=0.02)


def test_ozawa_within_3_percent(runs):
    """Doyle's approximation is biased by ~1 % at Ea/RT ~ 33; the test allows 3 %."""
    tp = [peak_temperature(t, r)["peak_K"] for t, _, r in runs.values()]
    assert ozawa(RATES, tp).ea_kJ_mol == pytest.approx(EA_TRUE / 1000, rel=0.03)


def test_peak_temperature_matches_the_analytic_maximum():
    """First order: at the maximum, beta Ea / (R Tp^2) = A exp(-Ea / (R Tp)) (Kissinger 1957)."""
    from scipy.optimize import brentq

    t, _, r = first_order_run(10.0, noise=0.0)
    tp_exact = brentq(lambda x: (10 / 60) * EA_TRUE / (R * x * x) - A_TRUE * np.exp(-EA_TRUE / (R * x)), 450, 700)
    assert peak_temperature(t, r)["peak_K"] == pytest.approx(tp_exact, abs=0.1)


def test_bad_inputs_raise():
    with pytest.raises(InputError, match="at least 3"):
        kissinger([5.0, 10.0], [500.0, 510.0])
    t = np.linspace(300, 600, 400)
    with pytest.raises(InputError, match="no release peak"):
        peak_temperature(t, np.random.default_rng(0).normal(0, 1, t.size))


def test_heating_rate_measured_from_time(tmp_path, runs):
    t, time_s, r = runs[5.0]
    path = tmp_path / "run.csv"
    pd.DataFrame({"time_s": time_s, "temperature_C": t - 273.15, "m32": r}).to_csv(path, index=False)
    curve = read_thermal_curve(path, signal_column="m32")
    assert curve.heating_rate_K_min == pytest.approx(5.0, rel=1e-9)
    with pytest.raises(InputError, match="disagrees"):
        read_thermal_curve(path, signal_column="m32", heating_rate_K_min=10.0)
    pd.DataFrame({"temperature_C": t - 273.15, "m32": r}).to_csv(path, index=False)
    with pytest.raises(InputError, match="heating rate"):
        read_thermal_curve(path, signal_column="m32")
    with pytest.raises(InputError, match="no column 'O2'"):
        read_thermal_curve(path, signal_column="O2", heating_rate_K_min=5.0)
