#!/usr/bin/env python
"""Which geometric situation each truth crack missed at the particle surface is in (issue 20, tomoenv).

For every truth crack of a random draw (:func:`layerscope.tomo.phantom.random_phantom`) scored
``missed_outside_envelope`` or ``missed_dropped`` (:func:`layerscope.tomo.scoring._missed`), one row: the
crack's width, through or disc, whether it touches a volume face, whether the particle's cracks (or it alone)
cut its solid in pieces, the particle's smallest semi-axis, the share of its dark voxels inside the envelope, the
smallest closing radius (of 4, 5, 6, 8) that puts half of them inside, the share inside a radius-6 closing and inside
the truth particle's convex hull, and for dropped ones the reason (gap of two particles, dent, too small) with the
feature's size, depth and opening. Matching of sheets to truth cracks as in :mod:`layerscope.tomo.scoring`.

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 10 python scripts/diagnose_tomo_surface.py --seeds 0:50 --out X.csv
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate_random_draws import parse_seeds  # noqa: E402


def _rows(seed: int) -> list[dict]:
    from layerscope.tomo.analysis import TomoOptions, analyse
    from layerscope.tomo.measure import is_surface_dent, feature_ids
    from layerscope.tomo.phantom import draw_volume, random_phantom
    from layerscope.tomo.scoring import score_draw
    from layerscope.tomo.segment import closed_envelope, solid_mask

    ph = random_phantom(seed)
    res = analyse(draw_volume(ph), TomoOptions())
    sc = score_draw(res, ph)
    if not (sc["missed_outside_envelope"] or sc["missed_dropped"]):
        return []
    solid = solid_mask(res.volume, smooth_voxels=res.options.smooth_voxels)[0]
    plab = res.particle_labels
    env = plab > 0
    close = 3
    wide = {r: ndi.binary_fill_holes(closed_envelope(solid, r)) for r in (4, 5, 6, 8)}
    feats, gap = feature_ids(solid, plab, min_voxels=res.options.min_feature_voxels, close_voxels=close)
    depth = ndi.distance_transform_edt(env)
    outside = ndi.binary_dilation(~env, structure=np.ones((3, 3, 3)))
    size = ph.cracks.shape[0]
    rows = []
    specs = ph.specs["cracks"]
    matched = _matched(res, ph)
    for t in ph.crack_truth.itertuples():
        m = ph.cracks == t.crack
        fid = int(np.bincount(res.feature_labels[m]).argmax()) if m.any() else 0
        if t.crack in matched or (fid and (res.feature_labels[m] == fid).mean() >= 0.5):
            continue
        dark = m & ~solid
        if dark.sum() < 0.5 * m.sum():
            continue
        inside = float(env[dark].mean())
        idx = np.argwhere(m)
        tp = ph.particles == t.particle
        pieces = ndi.label(tp & (ph.cracks == 0))[1]
        alone = ndi.label(tp & ~m)[1]
        need = next((r for r, e in wide.items() if e[dark].mean() >= 0.5), 99) if inside < 0.5 else close
        rows.append({"seed": seed, "projected": bool(ph.specs["draw"]["projected"]), "crack": t.crack,
                     "width": t.width_voxels, "through": bool(np.isinf(specs[t.crack - 1].radius_voxels)),
                     "cause": "outside_envelope" if inside < 0.5 else "dropped",
                     "on_face": bool((idx.min() == 0) or (idx.max() == size - 1)),
                     "particle_on_face": bool(tp[0].any() or tp[-1].any() or tp[:, 0].any() or tp[:, -1].any()
                                              or tp[:, :, 0].any() or tp[:, :, -1].any()),
                     "cuts_particle": pieces > 1, "cuts_alone": alone > 1, "close_needed": need,
                     "n_cracks_particle": int((ph.crack_truth["particle"] == t.particle).sum()),
                     "particle_radius": float(np.min(ph.specs["particles"][t.particle - 1].radii)), "dark_share": float(dark.sum() / m.sum()),
                     "in_env": inside, "in_env_close6": float(wide[6][dark].mean()),
                     "in_hull": _in_hull(dark, tp),
                     "particle_found": float(env[tp].mean()),
                     **_dropped(dark & env, feats, gap, plab, depth, outside, close, is_surface_dent)})
    return rows


def _in_hull(dark: np.ndarray, tp: np.ndarray) -> float:
    """Share of ``dark`` inside the convex hull of the truth particle's voxels ``tp``."""
    from skimage.morphology import convex_hull_image

    sl = ndi.find_objects(tp.astype(np.int8))[0]
    hull = np.zeros_like(tp)
    hull[sl] = convex_hull_image(tp[sl])
    return float(hull[dark].mean())


def _matched(res, ph) -> set:
    """Truth cracks matched by a measured sheet, as :func:`layerscope.tomo.scoring._sheet_scores` matches them."""
    from layerscope.tomo.scoring import _angle_deg

    ct, out = ph.crack_truth.set_index("crack"), set()
    for c in res.cracks.itertuples():
        hit = ph.cracks[res.feature_labels == c.crack]
        ids, n = np.unique(hit[hit > 0], return_counts=True)
        ids = ids[n >= 0.1 * min(hit.size, c.segmented_voxels)]
        if ids.size:
            normal = (c.normal_z, c.normal_y, c.normal_x)
            out.add(int(min(ids, key=lambda t: _angle_deg(normal, ct.loc[t, ["normal_z", "normal_y", "normal_x"]].to_numpy(float)))))
    return out


def _dropped(d: np.ndarray, feats, gap, plab, depth, outside, close, dent) -> dict:
    if not d.any():
        return {"why": "", "feat_voxels": 0}
    f = feats[d]
    fid = int(np.bincount(f).argmax())
    if fid == 0:
        return {"why": "small", "feat_voxels": 0}
    m = feats == fid
    owners = np.sort(np.bincount(plab[m]))[::-1]
    n_open = int((outside & m).sum())
    why = ("gap" if fid in gap else "shared" if len(owners) > 1 and owners[1] > 0.2 * m.sum()
           else "dent" if dent(n_open, int(m.sum())) and depth[m].max() < close + 1.5 else "kept")
    return {"why": why, "feat_voxels": int(m.sum()), "feat_depth": float(depth[m].max()),
            "open_ratio": n_open / m.sum() ** (2 / 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0:50")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    with ProcessPoolExecutor(a.jobs) as pool:
        rows = [r for rs in pool.map(_rows, [int(v) for v in a.seeds.split(',')] if ',' in a.seeds else parse_seeds(a.seeds)) for r in rs]
    df = pd.DataFrame(rows)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    print(df.to_string())
    if a.out:
        df.to_csv(a.out, index=False)


if __name__ == "__main__":
    main()
