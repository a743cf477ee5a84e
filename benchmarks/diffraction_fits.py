"""Pseudo-Voigt doublet fits vs a bare scipy fit of the same window, side by side in one process.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/diffraction_fits.py
Prints the time of layerscope's fit_peak on the LiCoO2 (003) window (K-alpha1/K-alpha2
pseudo-Voigt doublet, Poisson weights, uncertainties, significance checks) and of a bare
scipy.optimize.curve_fit of a Lorentzian doublet on the same window, their ratio and the two
centres; then the time of the whole layered-oxide analysis of the pattern (best of 5).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from scipy.optimize import curve_fit

from layerscope.diffraction import analyse_layered, fit_peak, read_pattern

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "xrd"


def best(func, n=5):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - t0)
    return min(times), out


def bare_fit(p):
    x, y = p.two_theta_deg, p.intensity
    sel = (x > 18.41) & (x < 19.61)
    x, y = x[sel], y[sel]
    l1, l2 = p.wavelength_A, p.kalpha2_A

    def model(xx, c, amp, w, b0, b1):
        c2 = 2 * np.degrees(np.arcsin(np.sin(np.radians(c / 2)) * l2 / l1))
        lor = lambda cc: amp * (w / 2) ** 2 / ((xx - cc) ** 2 + (w / 2) ** 2)  # noqa: E731
        return lor(c) + 0.5 * lor(c2) + b0 + b1 * (xx - 19)

    popt, _ = curve_fit(model, x, y, p0=[19.0, y.max(), 0.1, y.min(), 0.0], sigma=np.sqrt(np.maximum(y, 1)))
    return popt[0]


def main() -> None:
    p = read_pattern(DATA / "Nb2O5_CuO_LiCoO2.12-min.xrdml")
    t_ours, f = best(lambda: fit_peak(p, 19.01))
    t_bare, c_bare = best(lambda: bare_fit(p))
    print(f"(003) fit: layerscope {t_ours * 1e3:.1f} ms, bare scipy {t_bare * 1e3:.1f} ms, ratio {t_ours / t_bare:.2f}; "
          f"centres {f.center_deg:.4f} vs {c_bare:.4f} deg")
    t_all, res = best(lambda: analyse_layered(p))
    print(f"whole layered-oxide analysis ({len(res.reflections)} reflections, lattice, W-H): {t_all:.3f} s")


if __name__ == "__main__":
    main()
