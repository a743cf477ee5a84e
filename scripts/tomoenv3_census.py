#!/usr/bin/env python
"""Census of the truth cracks missed "outside the envelope" (issue 20, helper tomoenv3, docs/validation.md "tomoenv3").

For each draw: analyse it with the library's defaults (or with ``--switch NAME=VALUE`` set on ``segment``), score it,
and for every truth crack that :func:`layerscope.tomo.scoring._missed` calls ``outside_envelope`` write one row:

- the draw: grey volume or projections, size, binder, noise / blur / photons / angles;
- the crack's truth: width (voxels), through or disc radius, opens on the particle surface, touches a volume face,
  the particle's smallest semi-axis and number of cracks, voxels, and the share of its voxels outside the cylinder the
  detector saw at every angle (``fov_outside``; 0 for a grey volume);
- what the volume shows: the share of the crack darker than the threshold, the contrast of its core
  ``(P - grey) / (P - E)`` (smoothed grey, the analysis's levels), the share of the truth particle inside the
  analysis's particle labels;
- where its dark voxels lie: share inside the envelope, median / largest depth (voxels) in the truth particle of the
  dark voxels outside it;
- what would take them in: the share of the dark voxels inside the filled envelope closed with ``close + 1`` and
  ``close + 2`` everywhere, and with the array's outside mirrored (``np.pad`` "symmetric": a face is a cut through the
  sample) at ``close``;
- ``stage``: ``fov`` (>= half of the crack outside the field of view: no data), ``particle_lost`` (under half of the
  truth particle in any particle label), ``face`` (the mirrored closing takes it in, the plain one not), ``close+1``,
  ``close+2`` (the wider closing takes it in), ``other``.

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 10 python scripts/tomoenv3_census.py --seeds 14013,14015 --out X.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate_random_draws import parse_seeds  # noqa: E402


def _closed(solid: np.ndarray, r: int, mode: str = "constant") -> np.ndarray:
    """Filled envelope: the solid closed with a ball of ``r`` (the outside padded with ``mode``) or the solid."""
    from layerscope.tomo.segment import _ball, filled_envelope

    pad = 2 * r + 1
    p = np.pad(solid, pad, mode=mode) if mode != "constant" else np.pad(solid, pad)
    c = ndi.binary_closing(p, structure=_ball(r))[pad:-pad, pad:-pad, pad:-pad]
    return filled_envelope(c | solid)


def _face(mask: np.ndarray) -> bool:
    return any(mask.take(i, axis=a).any() for a in range(3) for i in (0, -1))


def _stage(row: dict) -> str:
    if row["fov_outside"] >= 0.5:
        return "fov"
    if row["particle_in_labels"] < 0.5:
        return "particle_lost"
    if row["in_mirror"] >= 0.5 and row["in_close1"] < 0.5:
        return "face"
    if row["in_close1"] >= 0.5:
        return "close+1"
    if row["in_close2"] >= 0.5:
        return "close+2"
    return "other"


def _rows(seed: int) -> list[dict]:
    from layerscope.tomo.analysis import TomoOptions, analyse
    from layerscope.tomo.fov import truth_outside_shares
    from layerscope.tomo.phantom import draw_volume, random_phantom
    from layerscope.tomo.scoring import _majority, score_draw, sheet_matches
    from layerscope.tomo.segment import solid_mask

    ph = random_phantom(seed)
    d = ph.specs["draw"]
    res = analyse(draw_volume(ph), TomoOptions())
    score = score_draw(res, ph)
    matched = {m for m, _ in sheet_matches(res, ph) if m}
    solid, lv = solid_mask(res.volume, smooth_voxels=res.options.smooth_voxels, threshold=res.options.threshold)
    env = res.particle_labels > 0
    close = int(np.ceil(6.0 / 2)) if res.options.crack_max_width_nm is None else int(
        np.ceil(res.options.crack_max_width_nm / res.voxel_size_nm / 2))
    wider = {}
    g = ndi.gaussian_filter(np.asarray(res.volume, np.float32), res.options.smooth_voxels)
    fov = res.summary.get("field_of_view")
    shares = truth_outside_shares(ph.cracks, ph.crack_truth["crack"], fov) if len(ph.crack_truth) else []
    out = []
    for t in ph.crack_truth.itertuples():
        if t.crack in matched:
            continue
        m = ph.cracks == t.crack
        fid = _majority(ph.cracks, res.feature_labels, t.crack)
        if fid and (res.feature_labels[m] == fid).mean() >= 0.5:
            continue  # a pore or a crossing
        dark = m & ~solid
        if dark.sum() < 0.5 * m.sum() or (env[dark]).mean() >= 0.5:
            continue  # not dark, or dropped
        if not wider:
            wider = {"in_close1": _closed(solid, close + 1), "in_close2": _closed(solid, close + 2),
                     "in_mirror": _closed(solid, close, "symmetric")}
        tp = ph.particles == t.particle
        depth = ndi.distance_transform_edt(np.pad(tp, 1))[1:-1, 1:-1, 1:-1]
        spec = ph.specs["cracks"][t.crack - 1]
        core = m & ~ndi.binary_dilation(~m)
        core = core if core.sum() >= 10 else m
        outside = dark & ~env
        row = {"seed": seed, "size": d["size"], "projected": d["projected"], "binder": d["binder"],
               "noise": round(d["noise"], 3), "blur": round(d["blur_voxels"], 3), "photons": round(d["photons"]),
               "n_angles": d["n_angles"], "crack": t.crack, "particle": t.particle, "width": t.width_voxels,
               "through": bool(np.isinf(spec.radius_voxels)), "disc_radius": float(spec.radius_voxels),
               "opens": bool(t.reaches_surface), "crack_at_face": _face(m), "particle_at_face": _face(tp),
               "particle_radius": float(np.min(ph.specs["particles"][t.particle - 1].radii)),
               "n_cracks_particle": int((ph.crack_truth["particle"] == t.particle).sum()),
               "crack_voxels": int(m.sum()), "fov_outside": float(shares[t.crack - 1]) if len(shares) else 0.0,
               "dark_share": float(dark.sum() / m.sum()),
               "core_contrast": float(np.median((lv["particle"] - g[core]) / (lv["particle"] - lv["epoxy"]))),
               "particle_in_labels": float(env[tp].mean()), "in_envelope": float(env[dark].mean()),
               "outside_depth_median": float(np.median(depth[outside])) if outside.any() else 0.0,
               "outside_depth_max": float(depth[outside].max()) if outside.any() else 0.0,
               **{k: float(v[dark].mean()) for k, v in wider.items()},
               "particles_exact": score["particles_exact"], "cracks_exact": score["cracks_exact"]}
        row["stage"] = _stage(row)
        out.append(row)
        print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", required=True, help="A:B or a comma-separated list")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--switch", action="append", default=[], help="segment.NAME=VALUE (Python literal) before the run")
    args = ap.parse_args(argv)
    import ast

    from layerscope.tomo import segment

    for s in args.switch:
        k, v = s.split("=", 1)
        setattr(segment, k, ast.literal_eval(v))
    seeds = [int(s) for s in args.seeds.split(",")] if "," in args.seeds else list(parse_seeds(args.seeds))
    rows = [r for s in seeds for r in _rows(s)]
    pd.DataFrame(rows).to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
