"""Which voxels a projection series sees at every angle (issue 20; the detector's field of view; no file I/O).

The projections are parallel-beam about the volume's z axis (:func:`layerscope.tomo.recon.reconstruct`: each z slice
is one 2-D sinogram, shifted so that the rotation centre lands on the middle of the ``n`` columns, and reconstructed
on an ``n`` x ``n`` grid centred on the axis). A voxel at distance ``r`` (voxels) from the axis projects at ``r cos``
of the angle off the centre, so it falls on the detector at every angle only where ``r`` is at most the distance from
the rotation centre to the nearer detector edge (:func:`sampled_radius_px`). Outside that cylinder (the corners of the
square slices when the detector is as wide as the volume; local or region-of-interest tomography of a sample wider
than the detector) a voxel is seen over part of the angles only, and FBP reconstructs a crack there at about half its
contrast (docs/validation.md "tomorecon", "tomofov"): no filter can restore the missing data, so such cracks are
marked rather than trusted.

Everything here comes from the geometry the reconstruction used (detector columns, rotation centre, the shifts undone
by the alignment, the angles), nothing from a phantom's truth. A volume given as input carries no such geometry: it
gets no field of view and no crack is marked.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["MAX_OUTSIDE_SHARE", "MEASURED_MAX_OUTSIDE_SHARE", "field_of_view", "label_outside_voxels",
           "mark_cracks", "rule_text", "sampled_radius_px", "truth_outside_shares"]

#: A truth crack is in view (the validator's in-view counts, :func:`layerscope.tomo.scoring.truth_in_view`) when under
#: this share of its voxels lie outside the cylinder seen at every angle: "mostly inside".
MAX_OUTSIDE_SHARE = 0.5

#: A measured crack (one cracks.csv row) is ``in_field_of_view`` when under this share of its segmented voxels lie
#: outside the cylinder (``outside_field_of_view`` below it). Lower than :data:`MAX_OUTSIDE_SHARE` because the part of
#: a crack outside is reconstructed at about half its contrast and fewer of its voxels are segmented: the measured
#: share reads below the truth's (docs/validation.md "tomofov": chosen among 0.5, 0.4, 0.3, 0.25, 0.2, 0.15 as the
#: highest in-view per-particle share on the projection draws of 9000-9099, ties to the larger).
MEASURED_MAX_OUTSIDE_SHARE = 0.4


def sampled_radius_px(n_cols: int, centre_px: float, shift_px: float = 0.0) -> float:
    """Radius (px = voxels) of the cylinder about the rotation axis seen at every angle: the distance from the rotation
    centre ``centre_px`` (column index, 0-based; the columns' outer edges at -0.5 and ``n_cols`` - 0.5) to the nearer
    detector edge, less the largest shift ``shift_px`` (px, across the axis) the alignment undid (0 if negative)."""
    return max(0.0, min(centre_px + 0.5, n_cols - 0.5 - centre_px) - abs(shift_px))


def _largest_shift_px(alignment: dict | None) -> float:
    shifts = (alignment or {}).get("shifts") or {}
    dx = shifts.get("dx")
    return float(np.max(np.abs(dx))) if dx is not None and np.size(dx) else 0.0


def _outside_2d(shape_yx: tuple[int, int], fov: dict) -> np.ndarray:
    """(y, x) voxel centres farther than the field of view's radius from its axis."""
    ay, ax = fov["axis_yx_voxels"]
    yy, xx = np.ogrid[:shape_yx[0], :shape_yx[1]]
    return (yy - ay) ** 2 + (xx - ax) ** 2 > fov["radius_voxels"] ** 2


def rule_text(fov: dict) -> str:
    """One sentence naming the region a projection series saw at every angle and the rule of the in-view counts."""
    return (f"the projections see only the cylinder of radius {fov['radius_voxels']:.1f} voxels "
            f"({fov['radius_nm']:.0f} nm) about the rotation axis at every angle ({100 * fov['volume_share_outside']:.1f} % "
            f"of the volume lies outside it, seen over part of the angles only, where FBP leaves a crack at about "
            f"half its contrast): cracks with {100 * MEASURED_MAX_OUTSIDE_SHARE:.0f} % or more of their segmented "
            "voxels outside it "
            "(cracks.csv outside_field_of_view, in_field_of_view) are not reliably seen; crack_count_in_view and "
            "n_cracks_in_view count only the others")


def field_of_view(rec: Any, shape_zyx: tuple[int, int, int], voxel_size_nm: float) -> dict | None:
    """The cylinder a reconstruction ``rec`` (:class:`~layerscope.tomo.recon.Reconstruction`; None: a volume input,
    no field of view) saw at every angle: axis (y, x voxels), radius (voxels, nm), the share of the volume outside it,
    the angles' span (deg), the in-view threshold and the rule in words."""
    if rec is None:
        return None
    n = int(shape_zyx[2])
    radius = sampled_radius_px(n, float(rec.centre_px), _largest_shift_px(rec.alignment))
    span = float(np.ptp(rec.angles_deg)) if rec.angles_deg is not None and np.size(rec.angles_deg) else float("nan")
    fov = {"axis_yx_voxels": [(shape_zyx[1] - 1) / 2.0, (n - 1) / 2.0], "radius_voxels": radius,
           "radius_nm": radius * voxel_size_nm, "angles_span_deg": span,
           "max_outside_share_in_view": MEASURED_MAX_OUTSIDE_SHARE}
    fov["volume_share_outside"] = float(_outside_2d(tuple(shape_zyx[1:]), fov).mean())
    fov["rule"] = rule_text(fov)
    return fov


def label_outside_voxels(labels: np.ndarray, fov: dict, slab: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Per label value (index = label, 0 included): its voxels and those of them outside the field of view, read
    ``slab`` z slices at a time (a memory map stays on disk)."""
    out2d = _outside_2d(labels.shape[1:], fov)
    total = np.zeros(1, np.int64)
    outside = np.zeros(1, np.int64)
    for z in range(0, labels.shape[0], slab):
        block = np.asarray(labels[z:z + slab]).astype(np.int64, copy=False)
        t = np.bincount(block.ravel())
        o = np.bincount(block[:, out2d].ravel(), minlength=t.size)
        size = max(total.size, t.size)
        total = np.pad(total, (0, size - total.size)) + np.pad(t, (0, size - t.size))
        outside = np.pad(outside, (0, size - outside.size)) + np.pad(o, (0, size - o.size))
    return total, outside


def _multi_sheet_shares(feats: np.ndarray, cracks: pd.DataFrame, fid: int, fov: dict, voxel_nm: float,
                        slab: int = 32) -> np.ndarray:
    """Outside shares of the sheets (rows) of crack feature ``fid``: each voxel goes to the row whose plane (normal
    through centroid) is nearest; the labels read ``slab`` z slices at a time."""
    rows = cracks[cracks["crack"] == fid]
    coords = np.concatenate([np.argwhere(np.asarray(feats[z:z + slab]) == fid) + [z, 0, 0]
                             for z in range(0, feats.shape[0], slab)]).astype(float)
    centres = rows[["centroid_z_nm", "centroid_y_nm", "centroid_x_nm"]].to_numpy(float) / voxel_nm - 0.5
    normals = rows[["normal_z", "normal_y", "normal_x"]].to_numpy(float)
    dist = np.abs(np.einsum("vk,rk->vr", coords, normals) - np.sum(centres * normals, axis=1))
    which = np.argmin(dist, axis=1)
    ay, ax = fov["axis_yx_voxels"]
    out = (coords[:, 1] - ay) ** 2 + (coords[:, 2] - ax) ** 2 > fov["radius_voxels"] ** 2
    return np.array([out[which == k].mean() if (which == k).any() else np.nan for k in range(len(rows))])


def _crack_shares(feats, cracks: pd.DataFrame, fov: dict, voxel_nm: float) -> np.ndarray:
    """Per cracks.csv row: the share of its voxels outside the field of view (a feature cut in several sheets: its
    voxels shared out by the nearest sheet plane, :func:`_multi_sheet_shares`)."""
    total, outside = label_outside_voxels(feats, fov)
    ids = cracks["crack"].to_numpy(np.int64)
    share = np.array([outside[i] / total[i] if i < total.size and total[i] else np.nan for i in ids], float)
    many = cracks["crack"].value_counts()
    for fid in many[many > 1].index:
        if outside[int(fid)]:  # wholly inside: every sheet 0 already
            share[ids == fid] = _multi_sheet_shares(feats, cracks, int(fid), fov, voxel_nm)
    return share


def _not_marked(cracks: pd.DataFrame, parts: pd.DataFrame):
    cracks["outside_field_of_view"] = np.full(len(cracks), np.nan)
    cracks["in_field_of_view"] = np.ones(len(cracks), bool)
    if "particle" in parts:
        parts["outside_field_of_view"] = np.full(len(parts), np.nan)
        parts["crack_count_in_view"] = parts["crack_count"].to_numpy() if "crack_count" in parts else 0
    return cracks, parts, {"n_cracks_in_view": int(len(cracks))}


def mark_cracks(cracks: pd.DataFrame, parts: pd.DataFrame, feats, plabels, fov: dict | None, voxel_nm: float):
    """``cracks`` with ``outside_field_of_view`` (share of the row's voxels outside the cylinder ``fov`` saw at every
    angle, :func:`field_of_view`; NaN without one: a volume input) and ``in_field_of_view`` (that share under
    :data:`MEASURED_MAX_OUTSIDE_SHARE`; True without a field of view), ``parts`` with ``outside_field_of_view``
    (share of the particle's voxels) and ``crack_count_in_view``, and the summary's entries: ``n_cracks_in_view`` and, for
    projections, ``field_of_view`` (:func:`field_of_view`'s dict), ``n_cracks_partly_outside_view`` (any voxel
    outside) and ``n_cracks_outside_view`` (not in view). ``feats``, ``plabels``: the analysis's feature and particle
    labels (arrays or memory maps, read in slabs)."""
    cracks, parts = cracks.copy(), parts.copy()
    if fov is None or feats is None:
        return _not_marked(cracks, parts)
    share = _crack_shares(feats, cracks, fov, voxel_nm) if len(cracks) else np.zeros(0)
    cracks["outside_field_of_view"] = share
    cracks["in_field_of_view"] = ~(share >= MEASURED_MAX_OUTSIDE_SHARE)
    if "particle" in parts:
        total, outside = label_outside_voxels(plabels, fov)
        ids = parts["particle"].to_numpy(np.int64)
        parts["outside_field_of_view"] = [outside[i] / total[i] if i < total.size and total[i] else np.nan for i in ids]
        seen = cracks.loc[cracks["in_field_of_view"], "particle"] if len(cracks) else pd.Series([], dtype=float)
        parts["crack_count_in_view"] = [int((seen == p).sum()) for p in ids]
    summary = {"n_cracks_in_view": int(cracks["in_field_of_view"].sum()) if len(cracks) else 0, "field_of_view": fov,
               "n_cracks_partly_outside_view": int((share > 0).sum()),
               "n_cracks_outside_view": int((share >= MEASURED_MAX_OUTSIDE_SHARE).sum())}
    return cracks, parts, summary


def truth_outside_shares(crack_labels: np.ndarray, ids, fov: dict | None) -> np.ndarray:
    """Share of each truth crack's voxels (``crack_labels == id`` for ``ids``) outside ``fov`` (zeros without one)."""
    ids = np.asarray(ids, np.int64)
    if fov is None:
        return np.zeros(ids.size)
    total, outside = label_outside_voxels(crack_labels, fov)
    return np.array([outside[i] / total[i] if i < total.size and total[i] else 0.0 for i in ids], float)
