"""Speed and exactness of the fast incoherent HAADF model against an FFT convolution of a delta map.

The anchor is what such images are usually made with: put each column's weight on its nearest
pixel and convolve with the probe by FFT (scipy.signal.fftconvolve). It is fast but places every
peak on the pixel grid (up to half a pixel off); layerscope evaluates analytic Gaussians on local
windows, so its peaks sit exactly on the truth. Both run here on the same columns, one process.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/simulate_fast.py

Prints, per image size: columns, layerscope time, anchor time, their ratio, and the largest
peak-position error of each (pm), measured by a log-parabola fit on isolated-enough TM peaks.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "simulate"))
from conftest import licoo2_100_cell  # noqa: E402  (LiCoO2 [100] cell built with ASE)

from layerscope.simulate import project_columns, render_gaussians, simulate_haadf  # noqa: E402
from layerscope.simulate.incoherent import FWHM_PER_SIGMA  # noqa: E402

FWHM_NM = 0.07


def anchor_fft(x_nm, y_nm, w, shape, p, sigma_nm):
    delta = np.zeros(shape)
    r = np.clip(np.floor(y_nm / p).astype(int), 0, shape[0] - 1)
    c = np.clip(np.floor(x_nm / p).astype(int), 0, shape[1] - 1)
    np.add.at(delta, (r, c), w)
    h = int(np.ceil(5 * sigma_nm / p))
    k = (np.arange(-h, h + 1)) * p
    g = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / (2 * sigma_nm**2))
    return fftconvolve(delta, g, mode="same")


def peak_error_pm(img, x_nm, y_nm, p, n=200):
    """Largest distance (pm) between the truth and a log-parabola fit of the peak, for n TM columns."""
    errs = []
    for x0, y0 in zip(x_nm[:n], y_nm[:n]):
        r, c = int(y0 / p), int(x0 / p)
        if r < 3 or c < 3 or r > img.shape[0] - 4 or c > img.shape[1] - 4:
            continue
        win = img[r - 2 : r + 3, c - 2 : c + 3]
        rr, cc = np.mgrid[r - 2 : r + 3, c - 2 : c + 3]
        rm, cm = np.unravel_index(np.argmax(win), win.shape)
        rr, cc = rr + rm - 2, cc + cm - 2
        z = np.log(np.maximum(img[rr, cc], 1e-300)).ravel()
        x, y = (cc.ravel() + 0.5) * p, (rr.ravel() + 0.5) * p
        a = np.c_[x * x, y * y, x * y, x, y, np.ones_like(x)]
        k = np.linalg.lstsq(a, z, rcond=None)[0]
        xm, ym = np.linalg.solve([[2 * k[0], k[2]], [k[2], 2 * k[1]]], [-k[3], -k[4]])
        errs.append(np.hypot(xm - x0, ym - y0))
    return 1e3 * max(errs)


def main() -> None:
    cell = licoo2_100_cell().repeat((1, 1, 18))  # 5.1 nm thick
    sigma = FWHM_NM / FWHM_PER_SIGMA
    print(f"{'image':>11} {'columns':>8} {'layerscope s':>13} {'fft-delta s':>12} {'ratio':>6} "
          f"{'err ls pm':>10} {'err fft pm':>11}")
    for n_px, p in ((1024, 0.01), (4096, 0.013)):
        field = (n_px * p, n_px * p)
        t0 = time.perf_counter()
        sim = simulate_haadf(cell, pixel_size_nm=p, probe_fwhm_nm=FWHM_NM, field_nm=field)
        t_ls = time.perf_counter() - t0
        cols = sim.columns
        w = cols.expected_intensity.to_numpy()
        t0 = time.perf_counter()
        ref = anchor_fft(cols.x_nm.to_numpy(), cols.y_nm.to_numpy(), w, sim.image.shape, p, sigma)
        t_fft = time.perf_counter() - t0
        tm = cols[cols.kind == "TM"]
        # the same columns rendered alone (no neighbours' tails) for the position check
        iso_ls = render_gaussians(tm.x_nm, tm.y_nm, 1.0, shape=sim.image.shape, pixel_size_nm=p, sigma_nm=sigma)
        iso_fft = anchor_fft(tm.x_nm.to_numpy(), tm.y_nm.to_numpy(), np.ones(len(tm)), sim.image.shape, p, sigma)
        e_ls = peak_error_pm(iso_ls, tm.x_nm.to_numpy(), tm.y_nm.to_numpy(), p)
        e_fft = peak_error_pm(iso_fft, tm.x_nm.to_numpy(), tm.y_nm.to_numpy(), p)
        print(f"{n_px:>5}x{n_px:<5} {len(cols):>8} {t_ls:>13.2f} {t_fft:>12.2f} {t_ls / t_fft:>6.2f} "
              f"{e_ls:>10.3f} {e_fft:>11.2f}")
    # projection of a real structure (atoms -> truth table), not just tiling a cell
    from layerscope.crystal.scenes import Block, stack

    atoms = stack([Block("O3", 42)], composition="NMC811", zone="100", width_nm=10.0, thickness_nm=3.0, seed=0)
    t0 = time.perf_counter()
    table = project_columns(atoms)
    t_proj = time.perf_counter() - t0
    print(f"project_columns: {len(atoms)} atoms -> {len(table)} columns in {t_proj:.2f} s")


if __name__ == "__main__":
    main()
