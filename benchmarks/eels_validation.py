"""EELS accuracy numbers for docs/validation.md, against eXSpy and known truths, in one run.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/eels_validation.py

Prints: t/lambda and Fourier ratio against eXSpy on the real files in ../shared/data/eels;
chemical shift, L3 position and valence errors on simulated edges with known shifts; L3/L2 of the
three La0.7Sr0.3MnO3 EELS Data Base spectra; O:Ti of SrTiO3 against eXSpy's own model fit.
The tests in tests/spectra enforce the tolerances; this script shows the numbers behind them.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eels"


def _hs(path: Path, **kw):
    import hyperspy.api as hs

    s = hs.load(str(path), **kw)
    s.change_dtype("float64")
    return s


def thickness_and_fourier_ratio() -> None:
    from layerscope.spectra.deconvolution import fourier_ratio
    from layerscope.spectra.thickness import relative_thickness

    print("t/lambda (log-ratio, automatic threshold) against eXSpy estimate_thickness:")
    for name in ("exspy/lowloss_spectrum.msa", "pyeelsmodel_SrTiO3/ll.msa", "exspy/Cr_L_ll.hspy"):
        s = _hs(DATA / name, signal_type="EELS")
        theirs = float(s.estimate_thickness(threshold=s.estimate_elastic_scattering_threshold()).data.ravel()[0])
        ours = float(relative_thickness(s.data, s.axes_manager[-1].axis).t_over_lambda)
        print(f"  {name:32s} layerscope {ours:.4f}  eXSpy {theirs:.4f}  difference {100 * (ours / theirs - 1):+.2f} %")
    cl = _hs(DATA / "exspy/coreloss_spectrum.msa", signal_type="EELS")
    ll = _hs(DATA / "exspy/lowloss_spectrum.msa", signal_type="EELS")
    clb = cl.remove_background(signal_range=(480.0, 520.0), fast=True, zero_fill=True, show_progressbar=False)
    theirs = clb.fourier_ratio_deconvolution(ll).data * ll.axes_manager[-1].scale
    ours = fourier_ratio(clb.data, cl.axes_manager[-1].axis, ll.data, ll.axes_manager[-1].axis)
    print(f"Fourier ratio on eXSpy's Mn-oxide core/low loss: relative norm difference "
          f"{np.linalg.norm(ours - theirs) / np.linalg.norm(theirs):.2e} (eXSpy x dispersion)")


def shifts_and_valence() -> None:
    from layerscope.spectra import synthetic as syn
    from layerscope.spectra.edges import chemical_shift, l3_peak_position
    from layerscope.spectra.valence import valence_from_indicator, valence_from_linear_combination

    e = syn.energy_axis(750.0, 840.0, 0.2)

    def co(shift: float = 0.0):
        return syn.white_line_edge(e, l3_eV=778.6 + shift, splitting_eV=15.2, l3_area=8000.0, l2_area=1800.0,
                                   fwhm_eV=1.9, continuum=120.0, step_width_eV=0.3)

    rng = np.random.default_rng(11)
    shifts = rng.uniform(-1.2, 1.2, 200)
    noisy = rng.poisson(np.stack([co(s) for s in shifts]) + 400.0) - 400.0
    cs = chemical_shift(noisy, e, co(), e, window_eV=(770.0, 806.0))
    l3 = l3_peak_position(noisy, e, window_eV=(772.0, 786.0)) - float(l3_peak_position(co(), e, window_eV=(772.0, 786.0)))
    print(f"chemical shift, 200 noisy Co L edges, 0.2 eV channels: max |error| {np.abs(cs.shift_eV - shifts).max():.3f} eV, "
          f"rms {np.sqrt(np.mean((cs.shift_eV - shifts) ** 2)):.3f} eV, median reported sigma {np.median(cs.sigma_eV):.3f} eV")
    print(f"L3 peak position differences (parabola): rms error {np.sqrt(np.mean((l3 - shifts) ** 2)):.3f} eV, "
          f"max {np.abs(l3 - shifts).max():.3f} eV")
    v = 2.0 + (shifts + 1.2) / 2.4  # valence 2..3 for a 2.4 eV reference separation
    noisy_v = rng.poisson(np.stack([co((x - 2.0) * 2.4 - 1.2) for x in v]) + 400.0) - 400.0
    ref2, ref3 = co(-1.2), co(1.2)
    csv = chemical_shift(noisy_v, e, ref2, e, window_eV=(768.0, 808.0))
    r3 = float(chemical_shift(ref3, e, ref2, e, window_eV=(768.0, 808.0)).shift_eV)
    vi = valence_from_indicator(csv.shift_eV, [0.0, r3], [2.0, 3.0], extrapolate=True)
    print(f"valence by interpolation of the shift: max |error| {np.abs(vi.valence - v).max():.3f}")
    f3 = rng.uniform(0, 1, 200)
    r3b = syn.white_line_edge(e, l3_eV=779.9, splitting_eV=15.2, l3_area=6500.0, l2_area=2500.0, fwhm_eV=1.6,
                              continuum=120.0, step_width_eV=0.3)
    mix = rng.poisson(np.outer(1 - f3, co()) + np.outer(f3, r3b) + 400.0) - 400.0
    lc = valence_from_linear_combination(mix, e, np.stack([co(), r3b]), [2.0, 3.0], window_eV=(770.0, 830.0))
    print(f"valence by linear combination of references: max |error| {np.abs(lc.valence - 2 - f3).max():.3f}, "
          f"median sigma {np.median(lc.sigma):.3f}")


def lsmo() -> None:
    from layerscope.io import load
    from layerscope.spectra.edges import chemical_shift
    from layerscope.spectra.whiteline import white_line_ratio

    d = DATA / "eelsdb_via_nomad"
    stem = "la0-7sr0-3mno3srtio3-001-heterostructure"
    spectra = {}
    for key, suffix, off, sc in (("stoichiometric (Mn ~3.3+)", "", 628.4, 0.2),
                                 ("oxygen-deficient interface", "-oxygen-vacancie", 628.4, 0.2),
                                 ("brownmillerite (Mn ~2.3+)", "-brown-millerite-oxygen-vacancie", 644.7, 0.1)):
        s = load(d / f"{stem}{suffix}.msa", offset_eV=off, scale_eV=sc)
        spectra[key] = (np.asarray(s.energy_eV), np.asarray(s.data, dtype=float))
    print("La0.7Sr0.3MnO3 (EELS Data Base, Nord et al. 2015), Mn L3/L2:")
    for key, (e, y) in spectra.items():
        p = white_line_ratio(y, e, edge="Mn_L")
        sd = white_line_ratio(y, e, edge="Mn_L", method="second_derivative")
        print(f"  {key:28s} Pearson {float(p.ratio):.2f} +- {float(p.sigma):.2f}   second derivative "
              f"{float(sd.ratio):.2f} +- {float(sd.sigma):.2f}   L3 max {float(p.l3_eV):.2f} eV")
    (e0, y0), (e1, y1) = list(spectra.values())[:2]
    cs = chemical_shift(y1, e1, y0, e0, window_eV=(640.0, 665.0))
    print(f"  shift of the interface spectrum against the film (same microscope): {float(cs.shift_eV):+.2f} "
          f"+- {float(cs.sigma_eV):.2f} eV")


def srtio3_ratio() -> None:
    from layerscope.spectra.background import subtract_background
    from layerscope.spectra.quantify import elemental_ratio

    s = _hs(DATA / "pytemlib/EELS_STO.dm3")
    e, y = s.axes_manager[-1].axis, s.data
    ti, _ = subtract_background(y, e, window_eV=(405.0, 451.0))
    o, _ = subtract_background(y, e, window_eV=(477.0, 526.7))
    for w in (30.0, 50.0):
        r = elemental_ratio(o, e, "O_K", ti, e, "Ti_L", width_eV=w, beam_energy_keV=200.0,
                            collection_angle_mrad=33.0, convergence_angle_mrad=30.0)
        print(f"SrTiO3 (pyTEMlib EELS_STO.dm3) O:Ti, hydrogenic, {w:.0f} eV windows: {float(r.ratio):.2f} (truth 3)")
    s.add_elements(("Ti", "O"))
    m = s.create_model(GOS="hydrogenic", auto_background=True)
    m.enable_fine_structure()
    m.fit()
    print(f"  eXSpy EELSModel fit (hydrogenic GOS, fine structure on): O:Ti "
          f"{m['O_K'].intensity.value / m['Ti_L3'].intensity.value:.2f}")


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    thickness_and_fourier_ratio()
    shifts_and_valence()
    lsmo()
    srtio3_ratio()


if __name__ == "__main__":
    main()
