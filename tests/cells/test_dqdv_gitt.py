"""dQ/dV peak positions on synthetic curves with known peaks, peak tracking over cycles, and the
Weppner-Huggins diffusion coefficient on an analytic diffusion solution."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cells_synthetic import q_of_v
from layerscope.cells import dqdv, find_dqdv_peaks, gitt_diffusion, read_cycler, track_peaks
from layerscope.errors import InputError

PEAKS = [(3.70, 0.030, 60.0), (4.00, 0.020, 40.0), (4.20, 0.015, 30.0)]  # centre V, sigma V, area mAh


def _sampled(peaks, *, n=3000, noise_V=0.0005, seed=0):
    """Charge curve sampled at random capacities, with Gaussian voltage noise."""
    vf = np.linspace(3.4, 4.3, 200001)
    qf = q_of_v(vf, peaks)
    rng = np.random.default_rng(seed)
    q = np.sort(rng.uniform(qf[0], qf[-1], n)) - qf[0]
    v = np.interp(q + qf[0], qf, vf) + rng.normal(0.0, noise_V, n)
    return q, v


@pytest.mark.parametrize("noise_V", [0.0, 0.0005])
def test_dqdv_peak_positions_within_5_mV(noise_V):
    q, v = _sampled(PEAKS, noise_V=noise_V)
    found = find_dqdv_peaks(dqdv(q, v))
    assert len(found) == 3
    np.testing.assert_allclose(found["position_V"], [p[0] for p in PEAKS], atol=0.005)
    # height of a Gaussian peak on the 20 mAh/V background: area / (sigma sqrt(2 pi)) + 20, within 5 %
    expect = [a / (s * np.sqrt(2 * np.pi)) + 20.0 for _, s, a in PEAKS]
    np.testing.assert_allclose(found["height"], expect, rtol=0.05)


def test_dqdv_discharge_is_negative_and_symmetric():
    q, v = _sampled(PEAKS, noise_V=0.0005, seed=3)
    qd = q[-1] - q[::-1]  # the same curve run backwards: a discharge
    curve = dqdv(qd, v[::-1])
    assert curve.direction == "discharge" and np.nanmin(curve.dqdv) < 0
    np.testing.assert_allclose(find_dqdv_peaks(curve)["position_V"], [p[0] for p in PEAKS], atol=0.005)


def test_track_peaks_follows_a_fading_shifting_h2_h3(tmp_path):
    """Cycle k: H2-H3 at 4.20 - 0.005 k V with area 30 (1 - 0.2 k); in cycle 4 it is gone."""
    rows, t = [], 0.0
    truth = {}
    for k in range(5):
        area = 30.0 * (1 - 0.25 * k)
        pk = [(3.70, 0.03, 60.0), (4.00, 0.02, 40.0)] + ([(4.20 - 0.005 * k, 0.015, area)] if area > 0 else [])
        truth[k] = pk
        q, v = _sampled(pk, n=1500, noise_V=0.0003, seed=k)
        tt = t + np.linspace(0, 36000, q.size)
        i = q[-1] / 1000 / 10.0  # A: the half cycle lasts 10 h
        rows.append(pd.DataFrame({"time_s": tt, "cycle": k, "current_A": i, "voltage_V": v,
                                  "charge_capacity_mAh": q, "discharge_capacity_mAh": 0.0}))
        t = tt[-1] + 10.0
    path = tmp_path / "track.csv"
    pd.concat(rows).to_csv(path, index=False)
    table = track_peaks(read_cycler(path))
    h23 = table[table["peak"] == "H2-H3"].set_index("cycle")
    for k in range(4):
        assert h23.loc[k, "found"]
        assert h23.loc[k, "position_V"] == pytest.approx(4.20 - 0.005 * k, abs=0.005)
    assert not h23.loc[4, "found"] and np.isnan(h23.loc[4, "position_V"])
    # relative height follows the area fading (peak on a 20 mAh/V + flank background: within 10 %)
    peak_h = lambda a: a / (0.015 * np.sqrt(2 * np.pi)) + 20.0  # noqa: E731
    np.testing.assert_allclose(h23.loc[[1, 2, 3], "relative_height"],
                               [peak_h(30 * (1 - 0.25 * k)) / peak_h(30) for k in (1, 2, 3)], rtol=0.10)
    mh2 = table[table["peak"] == "M-H2"]
    np.testing.assert_allclose(mh2["position_V"], 4.00, atol=0.005)


def _slab_surface(t, *, flux, length, d, n_terms=400):
    """Surface concentration rise of a plane sheet (thickness L, closed back) under constant flux
    (Crank, The Mathematics of Diffusion, 2nd ed., eq. 4.54 at the surface)."""
    t = np.asarray(t, float)
    n = np.arange(1, n_terms + 1)[:, None]
    series = np.sum(np.exp(-(n**2) * np.pi**2 * d * t[None, :] / length**2) / n**2, axis=0)
    return flux * t / length + flux * length / d * (1.0 / 3.0 - 2.0 / np.pi**2 * series)


def test_gitt_weppner_huggins_recovers_d():
    d_true, length_cm = 1e-10, 5e-4  # cm^2/s, 5 um diffusion length: L^2/D = 2500 s
    tau, rest, flux, slope, r_ohm, current = 60.0, 20000.0, 1.0, 2.0, 0.05, 1e-3
    t_list, e_list, i_list = [], [], []
    e0, t0 = 3.7, 0.0
    tp = np.arange(0.0, tau, 1.0)
    tr = np.r_[np.arange(tau, tau + 600, 5.0), np.arange(tau + 600, tau + rest, 100.0)]
    for pulse in range(3):
        cs_p = _slab_surface(tp, flux=flux, length=length_cm, d=d_true)
        cs_r = _slab_surface(tr, flux=flux, length=length_cm, d=d_true) - _slab_surface(tr - tau, flux=flux,
                                                                                      length=length_cm, d=d_true)
        t_list += [t0 - 5.0, *(t0 + tp), *(t0 + tr)]
        e_list += [e0, *(e0 + slope * cs_p + r_ohm * current * 1e3), *(e0 + slope * cs_r)]
        i_list += [0.0, *np.full(tp.size, current), *np.zeros(tr.size)]
        e0 = e0 + slope * flux * tau / length_cm  # the relaxed voltage after the pulse
        t0 = t0 + tau + rest + 10.0
    res = gitt_diffusion(np.array(t_list), np.array(e_list), np.array(i_list), diffusion_length_nm=length_cm * 1e7)
    assert len(res) == 3
    np.testing.assert_allclose(res["D_cm2_s"], d_true, rtol=0.03)
    np.testing.assert_allclose(res["delta_Es_V"], slope * flux * tau / length_cm, rtol=1e-3)
    assert (res["validity"] < 0.1).all() and (res["sqrt_fit_r2"] > 0.99).all()
    np.testing.assert_allclose(res["ir_drop_V"], r_ohm * current * 1e3, atol=2e-3)


def test_gitt_requires_geometry():
    t = np.arange(100.0)
    with pytest.raises(InputError, match="geometry is missing"):
        gitt_diffusion(t, np.ones(100), np.r_[np.zeros(10), np.ones(10), np.zeros(80)])
