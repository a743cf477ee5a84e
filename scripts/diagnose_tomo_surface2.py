#!/usr/bin/env python
"""Every truth crack missed at the particle surface, with its truth and what the pipeline did (issue 20, tomosurf).

For each truth crack of a random draw scored ``missed_not_dark``, ``missed_outside_envelope`` or ``missed_dropped``
(:func:`layerscope.tomo.scoring._missed`), one row: the draw (grey / projections, noise, blur, photons, angles,
binder, size), the crack's truth (width, through or disc, whether it opens on the surface, its depth range in the
truth particle, the particle's smallest semi-axis and number of cracks), and the pipeline: the share of its voxels
darker than the threshold (and of its core, voxels >= 1 voxel from the crack's faces), its core's contrast
``(P - grey) / (P - E)`` and that contrast over the voxel noise, the share of its dark voxels inside the envelope
and in the smoothed-threshold solid's exterior component, and for dark voxels inside the envelope the feature
that holds most of them and why it was dropped (gap, shared, dent, small) with its size, depth and opening.

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 10 python scripts/diagnose_tomo_surface2.py --seeds 0:50 --out X.csv

``--seeds`` also takes a comma-separated list; ``--radius-three`` measures the envelope before tomosurf;
``--extension {default,off,mass}`` reconstructs the projection draws as ``validate_tomo_draws.py`` does. Columns
``r_field_min/max`` (the crack's voxels' distance from the rotation axis over the field's inscribed radius, > 1: the
slice corners), ``at_face`` (the crack or its particle touches a volume face: ``crack``/``particle``/``""``) and
``particle_solid`` (share of the truth particle inside the smoothed-threshold solid) say where a miss lies.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diagnose_tomo_surface import _dropped, _matched  # noqa: E402
from validate_random_draws import parse_seeds  # noqa: E402


def _draw(ph) -> dict:
    d = ph.specs["draw"]
    return {k: d[k] for k in ("seed", "size", "projected", "noise", "blur_voxels", "photons", "n_angles", "binder")}


def _truth(ph, t, specs) -> dict:
    m = ph.cracks == t.crack
    tp = ph.particles == t.particle
    depth = ndi.distance_transform_edt(tp)[m]
    return {"crack": t.crack, "particle": t.particle, "width": t.width_voxels,
            "through": bool(np.isinf(specs[t.crack - 1].radius_voxels)), "opens": bool(t.reaches_surface),
            "depth_min": float(depth.min()), "depth_max": float(depth.max()), "crack_voxels": int(m.sum()),
            "particle_radius": float(np.min(ph.specs["particles"][t.particle - 1].radii)),
            "n_cracks_particle": int((ph.crack_truth["particle"] == t.particle).sum())}


def _contrast(res, ph, m: np.ndarray, solid: np.ndarray) -> dict:
    lv = res.summary["levels"]
    g = ndi.gaussian_filter(np.asarray(res.volume, np.float32), res.options.smooth_voxels)
    core = m & ~ndi.binary_dilation(~m, iterations=1)
    core = core if core.sum() >= 10 else m
    c = float(np.median((lv["particle"] - g[core]) / (lv["particle"] - lv["epoxy"])))
    raw = float(np.median((lv["particle"] - np.asarray(res.volume)[core]) / (lv["particle"] - lv["epoxy"])))
    return {"dark_share": float((m & ~solid).sum() / m.sum()), "core_dark_share": float((core & ~solid).sum() / max(core.sum(), 1)),
            "core_contrast_smoothed": c, "core_contrast_raw": raw,
            "cnr": (lv["particle"] - lv["epoxy"]) / max(lv["voxel_noise"], 1e-12)}


def _where(ph, m: np.ndarray) -> dict:
    """Where the crack ``m`` lies in the field: radial distance over the inscribed radius, volume faces touched."""
    n = ph.cracks.shape
    z, y, x = np.nonzero(m)
    r = np.hypot(y - (n[1] - 1) / 2, x - (n[2] - 1) / 2) / (n[2] / 2)

    def face(mask):
        return any(mask.take(i, axis=a).any() for a in range(3) for i in (0, -1))

    tp = ph.particles == int(np.bincount(ph.particles[m]).argmax())
    return {"r_field_min": float(r.min()), "r_field_max": float(r.max()),
            "at_face": "crack" if face(m) else "particle" if face(tp) else ""}


def _rows(seed: int, save: Path | None, extension: str = "default") -> list[dict]:
    from layerscope.tomo.analysis import TomoOptions, analyse
    from layerscope.tomo.measure import is_surface_dent, feature_ids
    from layerscope.tomo.phantom import draw_volume, random_phantom
    from layerscope.tomo.scoring import score_draw
    from layerscope.tomo.segment import solid_mask

    from validate_tomo_draws import recon_options

    ph = random_phantom(seed)
    res = analyse(draw_volume(ph), TomoOptions(recon=recon_options(extension)))
    sc = score_draw(res, ph)
    if not (sc["missed_outside_envelope"] or sc["missed_dropped"] or sc["missed_not_dark"]):
        return []
    solid = solid_mask(res.volume, smooth_voxels=res.options.smooth_voxels)[0]
    plab = res.particle_labels
    env = plab > 0
    close = 3
    feats, gap = feature_ids(solid, plab, min_voxels=res.options.min_feature_voxels, close_voxels=close)
    depth = ndi.distance_transform_edt(env)
    outside = ndi.binary_dilation(~env, structure=np.ones((3, 3, 3)))
    exterior = ndi.label(~solid)[0]
    ext_id = np.bincount(exterior[~env]).argmax() if (~env).any() else 0
    matched, rows = _matched(res, ph), []
    for t in ph.crack_truth.itertuples():
        m = ph.cracks == t.crack
        fid = int(np.bincount(res.feature_labels[m]).argmax()) if m.any() else 0
        if t.crack in matched or (fid and (res.feature_labels[m] == fid).mean() >= 0.5):
            continue
        dark = m & ~solid
        cause = ("not_dark" if dark.sum() < 0.5 * m.sum() else
                 "outside_envelope" if env[dark].mean() < 0.5 else "dropped")
        row = {**_draw(ph), **_truth(ph, t, ph.specs["cracks"]), "cause": cause, **_contrast(res, ph, m, solid),
               "in_env": float(env[dark].mean()) if dark.any() else 0.0,
               "dark_in_exterior": float((exterior[dark] == ext_id).mean()) if dark.any() else 0.0,
               "particle_found": float(env[ph.particles == t.particle].mean()),
               "particle_solid": float(solid[ph.particles == t.particle].mean()), **_where(ph, m),
               **_dropped(dark & env, feats, gap, plab, depth, outside, close, is_surface_dent)}
        rows.append(row)
    if save is not None and rows:
        np.savez_compressed(save / f"seed{seed}.npz", volume=res.volume, plab=plab, feats=res.feature_labels,
                            solid=solid)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0:50")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--save", type=Path, help="folder for the arrays of draws with a miss")
    ap.add_argument("--extension", default="default", choices=("default", "off", "mass"))
    ap.add_argument("--radius-three", action="store_true", help="the envelope before tomosurf (no wider closing)")
    a = ap.parse_args()
    if a.radius_three:
        from layerscope.tomo import segment

        segment.WIDER_CLOSE_VOXELS = 0
    rows = []
    seeds = [int(v) for v in a.seeds.split(',')] if ',' in a.seeds else parse_seeds(a.seeds)
    for s in seeds:
        rows += _rows(int(s), a.save, a.extension)
        print(s, len(rows), flush=True)
        if a.out:
            pd.DataFrame(rows).to_csv(a.out, index=False)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 40)
    print(pd.DataFrame(rows).to_string())


if __name__ == "__main__":
    main()
