"""EELS chain: layerscope against eXSpy, side by side in one process, on the same spectrum image.

Chain (both sides, same data): relative thickness t/lambda of the low loss (log-ratio, automatic
elastic threshold), power-law background removal of the core loss (two-area, fast), Fourier-ratio
deconvolution of the background-subtracted core loss with the low loss. layerscope then adds a
Co valence map (non-negative linear combination of two reference spectra) that eXSpy does not have.

The spectrum image is simulated (:mod:`layerscope.spectra.synthetic`): Co L2,3 of a Co2+/Co3+
mixture on a power-law background, plural scattering from a Poisson low loss, Poisson noise;
float32, energy last.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/eels_chain.py                 # 128 x 128 x 2048, side by side
    OMP_NUM_THREADS=1 python benchmarks/eels_chain.py --size 64       # quicker
    OMP_NUM_THREADS=1 python benchmarks/eels_chain.py --lazy 512      # lazy 512 x 512 x 2048, layerscope only

The lazy run builds the data block by block inside Dask (nothing is held in memory as a whole),
computes the t/lambda and valence maps, and reports the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import threading
import time
import warnings

import numpy as np

DISPERSION = 0.25
N_E = 2048
CL_OFFSET = 650.0
LL_OFFSET = -20.0
WINDOW = (720.0, 772.0)  # power-law fit window before Co L3 (779 eV)
LC_WINDOW = (772.0, 812.0)


def _axes():
    from layerscope.spectra import synthetic as syn

    ce = CL_OFFSET + DISPERSION * np.arange(N_E)
    le = LL_OFFSET + DISPERSION * np.arange(N_E)
    return syn, ce, le


def _variants(n_var: int = 32):
    """Noise-free core and low loss for ``n_var`` (t/lambda, Co3+ fraction) pairs."""
    syn, ce, le = _axes()
    tl = np.linspace(0.3, 0.9, n_var)
    f3 = np.linspace(0.0, 1.0, n_var)
    ll = syn.low_loss(le, t_over_lambda=tl, total_counts=2e6)
    # simulate from 450 eV so that plural scattering of the background below 700 eV is included
    e_full = 450.0 + DISPERSION * np.arange(N_E + 800)
    keep = slice(800, 800 + N_E)
    edge = np.outer(1 - f3, syn.cobalt_l_edge(e_full, 2.0, total=30000.0, continuum=400.0)) + np.outer(
        f3, syn.cobalt_l_edge(e_full, 3.0, total=30000.0, continuum=400.0))
    bg = 4000.0 * (e_full / ce[0]) ** -3.0
    cl = syn.plural_scattering(edge + bg, ll, le)[:, keep]
    return ll.astype(np.float32), cl.astype(np.float32), tl


def _bank(ll_var, cl_var, n_bank: int = 4096, seed: int = 0):
    """Poisson-noisy copies of the variants (the same variant index for low and core loss)."""
    rng = np.random.default_rng(seed)
    var = rng.integers(0, ll_var.shape[0], size=n_bank)
    return rng.poisson(ll_var[var]).astype(np.float32), rng.poisson(cl_var[var]).astype(np.float32), var


def _block(shape: tuple[int, int], seed: int, bank):
    """A block of pixels drawn from the noisy bank: (low loss, core loss, variant index)."""
    ll_bank, cl_bank, var = bank
    pick = np.random.default_rng(seed).integers(0, ll_bank.shape[0], size=shape)
    return ll_bank[pick], cl_bank[pick], var[pick]


def _references():
    syn, ce, _ = _axes()
    refs = np.stack([syn.cobalt_l_edge(ce, v, total=30000.0, continuum=400.0) for v in (2.0, 3.0)])
    g = syn.gaussian(ce, ce[N_E // 2], 1.0, 1.0)
    g = np.roll(g / g.sum(), -(N_E // 2))
    return np.real(np.fft.ifft(np.fft.fft(refs, axis=-1) * np.fft.fft(g), axis=-1))


def layerscope_chain(cl, ll, refs):
    from layerscope.spectra.background import subtract_background
    from layerscope.spectra.deconvolution import fourier_ratio
    from layerscope.spectra.thickness import relative_thickness
    from layerscope.spectra.valence import valence_from_linear_combination

    _, ce, le = _axes()
    th = relative_thickness(ll, le)
    sig, _ = subtract_background(cl, ce, window_eV=WINDOW)
    dec = fourier_ratio(sig, ce, ll, le, zero_loss_intensity=th.zero_loss_intensity)
    val = valence_from_linear_combination(dec, ce, refs, [2.0, 3.0], window_eV=LC_WINDOW)
    return th.t_over_lambda, dec, val.valence


def exspy_chain(cl, ll):
    import exspy

    _, ce, le = _axes()
    s_ll = exspy.signals.EELSSpectrum(ll)
    s_cl = exspy.signals.EELSSpectrum(cl)
    for s, off in ((s_ll, LL_OFFSET), (s_cl, CL_OFFSET)):
        ax = s.axes_manager.signal_axes[0]
        ax.offset, ax.scale, ax.units = off, DISPERSION, "eV"
        ax.is_binned = True
    thr = s_ll.estimate_elastic_scattering_threshold()
    tl = s_ll.estimate_thickness(threshold=thr)
    clb = s_cl.remove_background(signal_range=WINDOW, fast=True, zero_fill=True, show_progressbar=False)
    dec = clb.fourier_ratio_deconvolution(s_ll, threshold=thr)
    return tl.data, dec.data


def side_by_side(size: int, repeats: int) -> None:
    ll_var, cl_var, tl_var = _variants()
    ll, cl, idx = _block((size, size), 0, _bank(ll_var, cl_var))
    refs = _references()
    print(f"spectrum image {size} x {size} x {N_E} float32 ({ll.nbytes / 1e6:.0f} MB per data set), "
          f"{os.cpu_count()} CPU cores visible, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    layerscope_chain(cl[:4, :4], ll[:4, :4], refs)  # warm imports and FFT plans
    exspy_chain(cl[:4, :4], ll[:4, :4])
    t_ls, t_ex = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        tl_ls, dec_ls, val = layerscope_chain(cl, ll, refs)
        t_ls.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        tl_ex, dec_ex = exspy_chain(cl, ll)
        t_ex.append(time.perf_counter() - t0)
    tl_ex = np.asarray(tl_ex).reshape(tl_ls.shape)
    truth = tl_var[idx]
    err_ls = np.nanpercentile(np.abs(tl_ls - truth), [50, 99])
    err_ex = np.nanpercentile(np.abs(tl_ex - truth), [50, 99])
    dec_ex = np.asarray(dec_ex) * DISPERSION  # eXSpy's Gaussian has unit area in eV (see deconvolution.py)
    rel_dec = np.linalg.norm(dec_ls - dec_ex) / np.linalg.norm(dec_ex)
    best_ls, best_ex = min(t_ls), min(t_ex)
    print(f"layerscope (t/lambda + power law + Fourier ratio + valence): {best_ls:.2f} s (runs: "
          f"{', '.join(f'{t:.2f}' for t in t_ls)})")
    print(f"eXSpy      (t/lambda + power law + Fourier ratio):           {best_ex:.2f} s (runs: "
          f"{', '.join(f'{t:.2f}' for t in t_ex)})")
    print(f"ratio eXSpy / layerscope: {best_ex / best_ls:.1f}x")
    print(f"t/lambda |error| vs the simulated truth, median / 99th percentile: layerscope "
          f"{err_ls[0]:.4f} / {err_ls[1]:.4f}, eXSpy {err_ex[0]:.4f} / {err_ex[1]:.4f}")
    print(f"Fourier ratio: relative norm difference layerscope vs eXSpy {rel_dec:.4f} (each with its own "
          f"elastic thresholds; with eXSpy's thresholds the two agree to 1e-4, see docs/validation.md)")
    print(f"valence map range {np.nanmin(val):.2f}-{np.nanmax(val):.2f} (truth 2.00-3.00)")


def _peak_rss_monitor():
    import psutil

    proc = psutil.Process()
    peak = [proc.memory_info().rss]
    stop = threading.Event()

    def run():
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.05)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return peak, stop


def lazy_run(size: int, rows_per_chunk: int) -> None:
    import dask
    import dask.array as da

    ll_var, cl_var, _ = _variants()
    bank = _bank(ll_var, cl_var)
    refs = _references()
    nblocks = size // rows_per_chunk

    def make(i: int, which: int):
        return _block((rows_per_chunk, size), 1000 + i, bank)[which]

    def lazy(which: int):
        blocks = [da.from_delayed(dask.delayed(make)(i, which), shape=(rows_per_chunk, size, N_E), dtype=np.float32)
                  for i in range(nblocks)]
        return da.concatenate(blocks, axis=0)

    ll, cl = lazy(0), lazy(1)
    print(f"lazy spectrum image {size} x {size} x {N_E} float32: {ll.nbytes / 1e9:.1f} GB per data set, "
          f"chunks of {rows_per_chunk} rows ({rows_per_chunk * size * N_E * 4 / 1e6:.0f} MB)")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    peak, stop = _peak_rss_monitor()
    t0 = time.perf_counter()
    tl, dec, val = layerscope_chain(cl, ll, refs)
    tl_map, val_map = dask.compute(tl, val, scheduler="threads", num_workers=2)
    dt = time.perf_counter() - t0
    stop.set()
    print(f"layerscope lazy chain (t/lambda + power law + Fourier ratio + valence maps): {dt:.1f} s, "
          f"{size * size / dt:.0f} spectra/s")
    print(f"peak resident memory {peak[0] / 1e9:.2f} GB (process before the run: {rss0 / 1e3:.2f} GB); "
          f"maps: t/lambda {np.nanmedian(tl_map):.3f} median, valence {np.nanmin(val_map):.2f}-{np.nanmax(val_map):.2f}")


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=128, help="side of the square spectrum image (side by side)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--lazy", type=int, default=0, help="side of a lazy spectrum image (layerscope only)")
    p.add_argument("--rows-per-chunk", type=int, default=16)
    a = p.parse_args()
    if a.lazy:
        lazy_run(a.lazy, a.rows_per_chunk)
    else:
        side_by_side(a.size, a.repeats)


if __name__ == "__main__":
    main()
