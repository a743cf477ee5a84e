"""Benchmark (issue 20, branch rings): ring-artefact removal methods on phantoms with and without stripes.

Phantoms (truth known): ``default_phantom(64)`` (180 angles, 1e5 photons, axis 1 px off centre) and the
128^3 tiling of it of the 512^3 benchmark (2 x 2 x 2 tiles, attenuation / 2, 200 angles, 1e6 photons,
axis at the detector centre, so cracks of the central tiles pass near it). Stripes are injected into
the projections only (flats and darks stay clean, as when a detector column drifts after the flats):

* ``full``: 6 columns with gain errors of -8..+10 % (one, -8 %, at the rotation axis) at every angle;
* ``partial``: 3 columns with a -8 % gain over a third of the angles;
* ``dead``: 2 columns reading zero counts;
* ``wide``: a band of 4 columns (64^3) / 6 columns (128^3) with a -5 % gain;
* ``all``: all four at once.

Methods: ``none``; ``sorting`` (algotom's sorting-based removal, window 1/30 of the detector: the
default before branch rings); ``sorting_dead`` (dead columns interpolated first: the default after);
``filtering`` (algotom, sigma 3); ``algotom_all`` (dead + large + sorting, snr 3); ``dead_large``
(algotom's detection-based dead and large stripe removal only, snr 3, window 1/10, norm off);
``detect`` (:mod:`layerscope.tomo.rings`); ``detect_sorting`` (its detection, algotom's sorting values
in the found columns only); ``detect_2pass`` (``detect`` run again on its own output).

For each method the volume is reconstructed (centre searched on the sinogram the method corrected), analysed
(``analyse`` of the volume, default options) and compared with the truth; the residual ring
amplitude is the largest |azimuthal mean| over 1-px radius bins (radius >= 2 px) of (striped - clean reconstruction,
same method, same centre, same noise), in units of the particle/epoxy contrast, over all slices.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tomo_rings.py --size 64 --csv docs/data/rings_methods_64.csv
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage as ndi


def _methods(w: int) -> dict:
    """name -> sinogram (n_angles, w) -> sinogram; sizes as layerscope chooses them for a detector of ``w`` px."""
    from algotom.prep import removal as rm

    from layerscope.tomo.recon import sorting_window_px
    from layerscope.tomo.rings import detect_stripes, interpolate_dead_columns, remove_stripes

    sm = sorting_window_px(w)

    def detect_sorting(s):  # the found columns take the sorting-based values (measured, not adopted)
        dead, found = detect_stripes(s)
        out = interpolate_dead_columns(s)[0]
        out[:, found] = rm.remove_stripe_based_sorting(out, size=sm)[:, found]
        return out

    la = int(np.clip(w // 10, 11, 101)) // 2 * 2 + 1
    return {
        "none": lambda s: s,
        "sorting": lambda s: rm.remove_stripe_based_sorting(s, size=sm),
        "sorting_dead": lambda s: rm.remove_stripe_based_sorting(interpolate_dead_columns(s)[0], size=sm),
        "filtering": lambda s: rm.remove_stripe_based_filtering(s, sigma=3, size=sm),
        "algotom_all": lambda s: rm.remove_all_stripe(s, snr=3.0, la_size=la, sm_size=sm),
        "dead_large": lambda s: rm.remove_large_stripe(rm.remove_dead_stripe(s, 3.0, la, residual=False), 3.0, la,
                                                       norm=False),
        "detect": lambda s: remove_stripes(s)[0],
        "detect_sorting": detect_sorting,
        "detect_2pass": lambda s: remove_stripes(remove_stripes(s)[0])[0],
    }


def _phantom_64():
    from layerscope.tomo import default_phantom, project_phantom

    ph = default_phantom(64, seed=0)
    proj = project_phantom(ph.volume, n_angles=180, photons=1e5, centre_offset_px=1.0, seed=0)
    truth = (len(ph.truth), int(ph.truth["crack_count"].sum()), int(ph.truth["pore_count"].sum()))
    return proj, truth, 1e5, 0.045


def _phantom_128():
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from tomo_512 import _tile_sinograms

    from layerscope.tomo.readers import Projections

    lines, ph = _tile_sinograms(128, 200)
    rng = np.random.default_rng(1)
    photons, dark = 1e6, 100.0
    counts = rng.poisson(photons * np.exp(-lines[:, np.arange(128) % 64])) + dark
    flats = rng.poisson(np.full((10, 128, 128), photons)) + dark
    darks = rng.poisson(np.full((10, 128, 128), dark))
    proj = Projections(counts.astype(np.float32), np.linspace(0.0, 180.0, 200, endpoint=False), 50.0,
                       flats.astype(np.float32), darks.astype(np.float32))
    truth = (8 * len(ph.truth), 8 * int(ph.truth["crack_count"].sum()), 8 * int(ph.truth["pore_count"].sum()))
    return proj, truth, photons, 0.045 / 2


def inject(proj, kind: str, photons: float, seed: int = 7):
    """A copy of ``proj`` with stripes of ``kind`` in its projections (not in flats/darks)."""
    import dataclasses

    n_ang, _, w = proj.data.shape
    data = proj.data.copy()
    axis = int(round((w - 1) / 2))
    rng = np.random.default_rng(seed)
    kinds = ("full", "partial", "dead", "wide") if kind == "all" else (kind,)
    free = [c for c in range(4, w - 4) if abs(c - axis) > 1]
    cols = rng.choice(free, size=11, replace=False)
    if "full" in kinds:
        gains = [0.92, 1.08, 0.95, 1.05, 0.97, 1.10]
        for c, g in zip([axis, *cols[:5]], gains):
            data[:, :, c] *= g
    if "partial" in kinds:
        for c in cols[5:8]:
            data[n_ang // 3: 2 * n_ang // 3, :, c] *= 0.92
    if "dead" in kinds:
        data[:, :, cols[8:10]] = 0.0
    if "wide" in kinds:
        width = 4 if w <= 64 else 6
        start = int(cols[10]) - width // 2
        data[:, :, start:start + width] *= 0.95
    return dataclasses.replace(proj, data=data)


def reconstruct_with(lines, angles, centre: float, method) -> np.ndarray:
    from layerscope.tomo.recon import _astra_reconstruct

    out = []
    for z in range(lines.shape[1]):
        s = np.asarray(method(lines[:, z]), np.float32)
        shift = (s.shape[1] - 1) / 2.0 - centre
        s = ndi.shift(s, (0, shift), order=3, mode="nearest").astype(np.float32)
        out.append(_astra_reconstruct(s, np.deg2rad(angles), "fbp", 1, False))
    return np.stack(out)


def ring_amplitude(diff: np.ndarray, contrast: float) -> float:
    """Largest |mean over a 1-px annulus about the volume centre| of ``diff`` (z, y, x), / contrast."""
    n = diff.shape[1]
    yy, xx = np.mgrid[:n, :n]
    r = np.hypot(yy - (n - 1) / 2, xx - (n - 1) / 2).astype(int)
    inside = (r >= 2) & (r < n // 2)  # r < 2: a few voxels, no ring to average
    best = 0.0
    for sl in diff:
        m = ndi.mean(sl[inside], r[inside], index=np.arange(2, n // 2))
        best = max(best, float(np.max(np.abs(m))))
    return best / contrast


def counts(vol: np.ndarray) -> tuple[int, int, int]:
    from layerscope.tomo import TomoOptions, analyse
    from layerscope.tomo.readers import Volume

    res = analyse(Volume(vol, 50.0, labels=False), TomoOptions())
    return res.summary["n_particles"], res.summary["n_cracks"], res.summary["n_pores"]


def run(size: int, kinds: list[str], methods: list[str]) -> pd.DataFrame:
    from layerscope.tomo.recon import _central_sinogram, _reference_fields, find_centre_px, transmission

    proj, truth, photons, contrast = _phantom_64() if size == 64 else _phantom_128()
    meth = _methods(proj.data.shape[2])
    clean_lines = transmission(proj)[0]
    rows, clean_cache = [], {}
    for kind in kinds:
        p = proj if kind == "clean" else inject(proj, kind, photons)
        lines = transmission(p)[0]
        dark, flat = _reference_fields(p)
        central = _central_sinogram(p, dark, flat, 8)
        for name in methods:
            centre = find_centre_px(np.asarray(meth[name](central), np.float32), p.angles_deg)
            t = time.perf_counter()
            vol = reconstruct_with(lines, p.angles_deg, centre, meth[name])
            t_rec = time.perf_counter() - t
            key = (name, round(centre, 3))
            if key not in clean_cache:
                clean_cache[key] = reconstruct_with(clean_lines, p.angles_deg, centre, meth[name])
            amp = ring_amplitude(vol - clean_cache[key], contrast)
            n = counts(vol)
            rows.append({"size": size, "stripes": kind, "method": name, "centre_px": centre, "particles": n[0],
                         "cracks": n[1], "pores": n[2], "truth": "/".join(map(str, truth)),
                         "exact": n == truth, "ring_amplitude": amp, "recon_s": t_rec})
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=64, choices=(64, 128))
    ap.add_argument("--stripes", default="clean,full,partial,dead,wide,all")
    ap.add_argument("--methods", default="none,sorting,sorting_dead,filtering,algotom_all,dead_large,detect,"
                                         "detect_sorting")
    ap.add_argument("--csv", type=Path, default=None)
    args = ap.parse_args()
    df = run(args.size, args.stripes.split(","), args.methods.split(","))
    print(df.to_string(index=False))
    if args.csv:
        df.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
