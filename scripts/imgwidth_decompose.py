#!/usr/bin/env python
"""What makes the generic finder's shared width read narrow on one wide-probe random draw (issue 19, imgwidth).

The width with every height free (:func:`layerscope.imaging.columns.measure_width_heights_free`, the found
columns' sites and windows of ``_found_width``, a grid of 0.9-2.7 x the first pass's median width so that the
truth lies inside it) with the model's columns taken from: the found columns (and one height per window, the
base), the found columns snapped to their truth column (within 70 pm) and the missed visible truth columns
(expected intensity > 0.2 of the brightest) added, and the truth columns themselves (cations; all, oxygen too);
the windows stay at the found columns' sites::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src nice -n 10 .venv/bin/python scripts/imgwidth_decompose.py 181
"""

from __future__ import annotations

import sys

import numpy as np


def main(seed: int) -> None:
    from scipy.spatial import cKDTree

    from layerscope.imaging import columns as col
    from layerscope.imaging.generic import ColumnsOptions, analyse
    from layerscope.simulate.draws import draw_parameters, draw_scene

    image, px, truth = draw_scene(seed)
    p = draw_parameters(seed)
    plain, seen = col._found_width, {}

    def grab(data, fit):
        seen.setdefault("x", (data, fit))
        return plain(data, fit)

    col._found_width = grab
    try:
        analyse(image, ColumnsOptions(), pixel_size_nm=px)
    finally:
        col._found_width = plain
    data, fit = seen["x"]
    ok = fit["fit_ok"].to_numpy(bool) & np.isfinite(fit["row"].to_numpy(float))
    rows, cols = fit["row"].to_numpy(float)[ok], fit["col"].to_numpy(float)[ok]
    s0 = float(np.nanmedian(fit["sigma_px"].to_numpy(float)[ok]))
    sel = np.unique(np.linspace(0, rows.size - 1, min(rows.size, col.RESIDUAL_WIDTH_SITES)).astype(int))
    tc = truth.columns
    tr, tcc = tc["y_nm"].to_numpy() / px - 0.5, tc["x_nm"].to_numpy() / px - 0.5
    cation = tc["kind"].isin(["TM", "Li"]).to_numpy()
    vis = tc["expected_intensity"].to_numpy() > 0.2 * np.nanmax(tc["expected_intensity"])
    d, j = cKDTree(np.column_stack([tr, tcc])).query(np.column_stack([rows, cols]))
    near = d * px <= 0.07
    missed = cKDTree(np.column_stack([rows, cols])).query(np.column_stack([tr[vis], tcc[vis]]))[0] * px > 0.07
    snap_r, snap_c = np.where(near, tr[j], rows), np.where(near, tcc[j], cols)
    models = {
        "found, one height (base)": (col.measure_lattice_width, rows, cols),
        "found, every height free": (col.measure_width_heights_free, rows, cols),
        "found snapped to truth": (col.measure_width_heights_free, snap_r, snap_c),
        "snapped + missed visible truth": (col.measure_width_heights_free, np.r_[snap_r, tr[vis][missed]],
                                           np.r_[snap_c, tcc[vis][missed]]),
        "truth cations": (col.measure_width_heights_free, tr[cation], tcc[cation]),
        "truth, oxygen too": (col.measure_width_heights_free, tr, tcc),
    }
    total = np.hypot(p["probe_fwhm_nm"], p["source_fwhm_nm"]) / 2.3548200450309493
    print(f"draw {seed}: {p['dose_e_per_A2']:.0f} e/A^2, true sigma {total:.4f} nm (probe and source), first-pass "
          f"median {s0 * px:.4f} nm; found centres {np.median(d) * px * 1e3:.1f} pm from their column (median), "
          f"{int(missed.sum())} of {int(vis.sum())} visible columns missed")
    for name, (measure, r_, c_) in models.items():
        w = measure(data, rows[sel], cols[sel], r_, c_, radius_px=col.RESIDUAL_WIDTH_WINDOW * s0, sigma_px=1.5 * s0)
        print(f"  {name:32s} {w * px:.4f} nm")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 181)
