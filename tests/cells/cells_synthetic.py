"""Synthetic cycling records with known truth, written as plain CSV (shared by the cells tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import erf


def q_of_v(v, peaks, *, background_mAh_per_V=20.0, v0=3.4):
    """Capacity (mAh) of a charge whose dQ/dV is a flat background plus Gaussian peaks (centre V, sigma V, area mAh)."""
    v = np.asarray(v, float)
    q = background_mAh_per_V * (v - v0)
    for c, s, a in peaks:
        q = q + a * 0.5 * (1.0 + erf((v - c) / (np.sqrt(2.0) * s)))
    return q


def cc_cycle_frame(*, cycle, t0, charge_mAh, discharge_mAh, current_A, v_lo=3.0, v_hi=4.2, dt=10.0, hysteresis=0.0):
    """One constant-current cycle with a linear V(Q): returns the rows and the end time."""
    n_c = int(round(charge_mAh / 1000 * 3600 / current_A / dt))
    n_d = int(round(discharge_mAh / 1000 * 3600 / current_A / dt))
    tc = t0 + dt * np.arange(n_c + 1)
    qc = np.linspace(0, charge_mAh, n_c + 1)
    td = tc[-1] + dt + dt * np.arange(n_d + 1)
    qd = np.linspace(0, discharge_mAh, n_d + 1)
    rows = pd.DataFrame({
        "time_s": np.r_[tc, td],
        "cycle": cycle,
        "current_A": np.r_[np.full(tc.size, current_A), np.full(td.size, -current_A)],
        "voltage_V": np.r_[v_lo + (v_hi - v_lo) * qc / charge_mAh + hysteresis / 2,
                           v_hi - (v_hi - v_lo) * qd / discharge_mAh - hysteresis / 2],
        "charge_capacity_mAh": np.r_[qc, np.full(td.size, charge_mAh)],
        "discharge_capacity_mAh": np.r_[np.zeros(tc.size), qd],
    })
    return rows, td[-1] + dt
