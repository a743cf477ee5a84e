#!/usr/bin/env python
"""Census of the columns missed and the detections false on wide-probe draws (issue 19, imgwide5; a diagnostic).

Per draw: the generic finder (``generic.analyse``) and ``map_phases`` are run and scored as the validator scores them
(:func:`layerscope.imaging.scoring.score_columns`); per missed truth column and per false detection one row with its
kind, the column's expected intensity over the median TM column's, its thickness (``wedge_factor``), its distance to a
void / crack / vacuum edge and to the field's edge, its nearest truth cation neighbour, the nearest reported column,
the stage of the generic finder that has it (a maximum of the matched-filtered or the resolving image within
``MATCH_NM``, kept by the detection, the fit's end point) and its matched-filter SNR: the amplitude of a Gaussian of the
probe's width at the truth position, every other visible truth cation column within reach in the model with a free height and
a constant, over its standard error from the image's pixel noise. Uses the truth (positions, widths): a diagnostic,
not a method::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src nice -n 10 .venv/bin/python scripts/imgwide5_census.py \\
        --seed-list 5138,4084 --out /tmp/census.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial import cKDTree

FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))


def _truth_snr(data, px, xy_nm, all_nm, sigma_nm, pixel_noise):
    """Per point of ``xy_nm``: (amplitude, standard error) of a Gaussian of ``sigma_nm`` at that point, every point of
    ``all_nm`` within 3 widths of its disc in the model with a free height, plus a constant (least squares)."""
    tree = cKDTree(all_nm)
    r_nm = 2.0 * sigma_nm
    out = np.full((len(xy_nm), 2), np.nan)
    for i, (x, y) in enumerate(xy_nm):
        c0, r0 = int(x / px), int(y / px)
        rr = int(np.ceil(r_nm / px))
        ys, xs = np.mgrid[max(r0 - rr, 0):min(r0 + rr + 1, data.shape[0]), max(c0 - rr, 0):min(c0 + rr + 1, data.shape[1])]
        yn, xn = (ys + 0.5) * px, (xs + 0.5) * px
        disc = (yn - y) ** 2 + (xn - x) ** 2 <= r_nm**2
        yn, xn, z = yn[disc], xn[disc], data[ys[disc], xs[disc]]
        near = tree.query_ball_point([x, y], r_nm + 3 * sigma_nm)
        near = [j for j in near if np.hypot(*(all_nm[j] - [x, y])) > 1e-6]
        cols = [np.exp(-0.5 * ((xn - x) ** 2 + (yn - y) ** 2) / sigma_nm**2)]
        cols += [np.exp(-0.5 * ((xn - all_nm[j, 0]) ** 2 + (yn - all_nm[j, 1]) ** 2) / sigma_nm**2) for j in near]
        cols.append(np.ones_like(z))
        a = np.column_stack(cols)
        coef, *_ = np.linalg.lstsq(a, z, rcond=None)
        cov = np.linalg.pinv(a.T @ a)
        out[i] = coef[0], pixel_noise * np.sqrt(max(cov[0, 0], 0.0))
    # the plain matched filter's SNR of that amplitude: A sqrt(sum g^2) / noise = A sqrt(pi) s / noise
    return np.column_stack([out, out[:, 0] * np.sqrt(np.pi) * sigma_nm / px / pixel_noise])


def _generic_stages(data, px):
    """The generic finder's stages on ``data``: (maxima of the matched filter, of the resolving filter, kept detections,
    final columns), each (n, 2) x, y in nm."""
    from layerscope.imaging import columns as _col
    from layerscope.imaging.generic import ColumnsOptions, analyse, image_lattice

    opt = ColumnsOptions()
    lat = image_lattice(data, pixel_size_nm=px)
    nn = lat.nn_distance_nm
    sigma0 = float(np.clip(lat.column_sigma_nm, 0.08 * nn, 0.3 * nn))
    resolve = _col.resolving_sigma(sigma0, nn)
    sep_px = 0.85 * nn / px
    md = max(1, int(np.floor(0.45 * sep_px)))
    nm = lambda r, c: np.column_stack([(c + 0.5) * px, (r + 0.5) * px])  # noqa: E731
    f = ndimage.gaussian_filter(data, sigma0 / px, mode="nearest")
    mf = nm(*np.nonzero(_col.local_maxima(f, 2 * md + 1)))
    if resolve is not None:
        s = ndimage.gaussian_filter(data, max(resolve / px, 0.5), mode="nearest")
        mr = nm(*np.nonzero(_col.local_maxima(s, 2 * md + 1)))
    else:
        mr = np.empty((0, 2))
    det = _col.detect_columns(data, pixel_size_nm=px, min_separation_nm=0.85 * nn, column_sigma_nm=sigma0,
                              relative_threshold=opt.relative_threshold, noise_sigmas=opt.noise_sigmas,
                              resolve_sigma_nm=resolve, neighbour_nm=nn)
    found = analyse(data, opt, pixel_size_nm=px)
    return mf, mr, nm(det.rows, det.cols), found.columns, dict(sigma0_nm=sigma0, resolve_nm=resolve, nn_nm=nn)


def _near(points, xy):
    if len(points) == 0:
        return np.full(len(xy), np.inf)
    return cKDTree(points).query(xy)[0]


def census(seed: int) -> tuple[pd.DataFrame, dict]:
    from layerscope.imaging import columns as _col
    from layerscope.imaging.pipeline import map_phases
    from layerscope.imaging.scoring import score_columns
    from layerscope.simulate.draws import draw_scene
    from layerscope.simulate.validation import MARGIN_NM

    image, px, truth = draw_scene(seed)
    data = np.asarray(image, float)
    p = truth.parameters
    extent = (data.shape[1] * px, data.shape[0] * px)
    sigma_nm = np.hypot(p["probe_fwhm_nm"], p["source_fwhm_nm"]) / FWHM
    pixel_noise = _col.image_pixel_noise(data)[0]
    mf, mr, det, gen, info = _generic_stages(data, px)
    pm = map_phases(data, pixel_size_nm=px, zone=p["zone"], composition=p["chemistry"])
    tc = truth.columns
    cat = tc[tc["kind"].isin(["TM", "Li"])]
    cat = cat[cat["in_image"]] if "in_image" in cat else cat
    ref = float(np.median(cat.loc[cat["kind"] == "TM", "expected_intensity"]))
    vis = cat[cat["expected_intensity"] >= 0.4 * ref]
    all_nm = vis[["x_nm", "y_nm"]].to_numpy()  # the visible cation columns (the rest: background)
    rows = []
    for finder, found, ok in (("generic", gen, True), ("phases", pm.columns, False)):
        sc = score_columns(found, tc, extent_nm=extent, margin_nm=MARGIN_NM, anion_columns_ok=ok)
        rep = (found[found["detected"]] if "detected" in found else found)[["x_nm", "y_nm"]].to_numpy()
        for what, tab in (("missed", sc.missed), ("false", sc.false)):
            if len(tab) == 0:
                continue
            xy = tab[["x_nm", "y_nm"]].to_numpy()
            d_vis, i_vis = cKDTree(vis[["x_nm", "y_nm"]].to_numpy()).query(xy, k=2)
            own = d_vis[:, 0] < 1e-6
            nn_vis = np.where(own, d_vis[:, 1], d_vis[:, 0])
            d_rep = cKDTree(rep).query(xy, k=2)[0]
            r = pd.DataFrame({"seed": seed, "finder": finder, "what": what, "x_nm": xy[:, 0], "y_nm": xy[:, 1],
                              "field_edge_nm": np.minimum.reduce([xy[:, 0], xy[:, 1], extent[0] - xy[:, 0],
                                                                  extent[1] - xy[:, 1]]),
                              "nn_truth_nm": nn_vis,
                              "nearest_reported_nm": np.where(what == "false", d_rep[:, 1], d_rep[:, 0]),
                              "max_matched_nm": _near(mf, xy), "max_resolving_nm": _near(mr, xy),
                              "detected_nm": _near(det, xy)})
            if what == "missed":
                r["kind"] = tab["kind"].to_numpy()
                r["phase"] = tab["phase"].to_numpy() if "phase" in tab else ""
                r["rel_intensity"] = tab["expected_intensity"].to_numpy() / ref
                r["wedge_factor"] = tab["wedge_factor"].to_numpy()
                r["edge_nm"] = tab["edge_nm"].to_numpy()
                a = _truth_snr(data, px, xy, all_nm, sigma_nm, pixel_noise)
            else:
                d_t, i_t = cKDTree(tc[["x_nm", "y_nm"]].to_numpy()).query(xy)
                r["kind"] = np.where(d_t < 0.07, "near_" + tc["kind"].to_numpy()[i_t], "none")
                r["phase"] = ""
                r["rel_intensity"] = np.nan
                r["wedge_factor"] = tc["wedge_factor"].to_numpy()[i_t] if "wedge_factor" in tc else np.nan
                r["edge_nm"] = tc["edge_nm"].to_numpy()[i_t] if "edge_nm" in tc else np.nan
                a = _truth_snr(data, px, xy, all_nm, sigma_nm, pixel_noise)
            r["amp_fit"], r["amp_se"], r["snr_mf"] = a[:, 0], a[:, 1], a[:, 2]
            rows.append(r)
    # reference: the matched visible TM columns' SNR (a sample of 200)
    tm = vis[vis["kind"] == "TM"].sample(min(200, int((vis["kind"] == "TM").sum())), random_state=0)
    a = _truth_snr(data, px, tm[["x_nm", "y_nm"]].to_numpy(), all_nm, sigma_nm, pixel_noise)
    summ = dict(seed=seed, dose=p["dose_e_per_A2"], probe=p["probe_fwhm_nm"], sigma_nm=sigma_nm,
                tm_amp_median=float(np.median(a[:, 0])), tm_snr_median=float(np.median(a[:, 0] / a[:, 1])),
                tm_snr_p05=float(np.percentile(a[:, 0] / a[:, 1], 5)),
                tm_snr_mf_median=float(np.median(a[:, 2])), tm_snr_mf_p05=float(np.percentile(a[:, 2], 5)), pixel_noise=pixel_noise, **info)
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    if len(out):
        out["snr"] = out["amp_fit"] / out["amp_se"]
        out["amp_over_tm"] = out["amp_fit"] / summ["tm_amp_median"]
        out["sigma_nm"] = sigma_nm
    return out, summ


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed-list", required=True)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    frames, summ = [], []
    for s in [int(x) for x in a.seed_list.split(",")]:
        f, m = census(s)
        frames.append(f)
        summ.append(m)
        print(m, len(f), flush=True)
        pd.concat(frames, ignore_index=True).to_csv(a.out, index=False, float_format="%.6g")
        pd.DataFrame(summ).to_csv(a.out.with_name(a.out.stem + "_draws.csv"), index=False, float_format="%.6g")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
