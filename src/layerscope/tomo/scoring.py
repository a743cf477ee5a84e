"""Scores of a tomography analysis against the truth of a phantom (issue 20 item 5; no file I/O).

:func:`score_draw` compares a :class:`~layerscope.tomo.analysis.TomoResult` with the
:class:`~layerscope.tomo.phantom.Phantom` it was measured on: particle count, crack count (total and
per particle; crossing cracks count one per plane), truth pores inside a feature called a crack, crack
volume fraction per cracked particle (relative error), mean width (voxels) and normal (deg) of each
measured crack sheet against the truth crack it covers. :func:`run_draw` builds, analyses and scores
one random draw (:func:`~layerscope.tomo.phantom.random_phantom`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from layerscope.tomo.phantom import DrawRanges, Phantom, draw_volume, random_phantom

__all__ = ["TARGETS", "VISIBLE_TARGETS", "IN_VIEW_TARGETS", "truth_visible", "truth_in_view", "score_draw", "run_draw", "draw_parameters", "meets",
           "sheet_matches"]

#: score -> (limit, kind): "eq" exactly the limit, "le" at most the limit (issue 20's targets).
TARGETS = {"particles_exact": (1, "eq"), "cracks_exact": (1, "eq"), "cracks_exact_per_particle": (1, "eq"),
           "pores_as_cracks": (0, "eq"), "cvf_rel_err_max": (0.10, "le"), "width_err_max_voxels": (1.0, "le")}


#: The crack-count targets restricted to the cracks a limited tilt range can see (tomowedge2): truth cracks whose
#: normals lie outside the missing wedge by :data:`~layerscope.tomo.wedge.WEDGE_MARGIN_DEG` or more against the
#: measured sheets not ``in_missing_wedge`` (the same rule on the measured normal). Equal to the plain counts'
#: scores where there is no wedge (a volume, a 0-180 deg series).
VISIBLE_TARGETS = {"cracks_exact_visible": (1, "eq"), "cracks_exact_per_particle_visible": (1, "eq")}


#: The crack-count targets restricted to the cracks the projections saw at every angle (tomofov): truth cracks with
#: under :data:`~layerscope.tomo.fov.MAX_OUTSIDE_SHARE` of their voxels outside the field of view the analysis
#: reported (summary.json ``field_of_view``) against the measured sheets ``in_field_of_view``. Equal to the plain
#: counts' scores for a volume input (no field of view).
IN_VIEW_TARGETS = {"cracks_exact_in_view": (1, "eq"), "cracks_exact_per_particle_in_view": (1, "eq")}


def meets(value: float, target: str) -> bool | None:
    """Whether ``value`` meets ``TARGETS[target]``, ``VISIBLE_TARGETS[target]`` or ``IN_VIEW_TARGETS[target]`` (None
    when the draw has nothing to score, NaN)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    limit, kind = {**TARGETS, **VISIBLE_TARGETS, **IN_VIEW_TARGETS}[target]
    return bool(value == limit) if kind == "eq" else bool(abs(value) <= limit)


def _majority(labels: np.ndarray, truth: np.ndarray, ident: int) -> int:
    """The non-zero truth id that covers most of ``labels == ident`` (0 if none)."""
    hit = truth[labels == ident]
    counts = np.bincount(hit[hit > 0])
    return int(counts.argmax()) if counts.size and counts.max() > 0 else 0


def _angle_deg(u, v) -> float:
    c = abs(float(np.dot(u, v))) / (np.linalg.norm(u) * np.linalg.norm(v))
    return float(np.degrees(np.arccos(min(1.0, c))))


def _particle_scores(res, ph: Phantom) -> tuple[dict, dict[int, int]]:
    mapping = {int(r.particle): _majority(res.particle_labels, ph.particles, int(r.particle))
               for r in res.particles.itertuples()}
    n_truth = len(ph.truth)
    one_to_one = sorted(mapping.values()) == list(range(1, n_truth + 1))
    hits = np.bincount(list(mapping.values()), minlength=n_truth + 1)[1:] if mapping else np.zeros(n_truth, int)
    merged = 0
    for tid in range(1, n_truth + 1):  # a truth particle that covers no result particle: merged into one, or missed
        if hits[tid - 1] == 0:
            merged += int(_majority(ph.particles, res.particle_labels, tid) > 0)
    return {"n_particles_truth": n_truth, "n_particles_found": len(res.particles),
            "particles_exact": int(len(res.particles) == n_truth and one_to_one),
            "particles_split": int((hits > 1).sum()), "particles_merged": merged,
            "particles_missed": int((hits == 0).sum()) - merged}, mapping


def _per_particle(res, ph: Phantom, mapping: dict[int, int]) -> dict:
    truth = ph.truth.set_index("particle")
    parts = res.particles.set_index("particle") if len(res.particles) else None
    counts, errs = [], []
    for tid, t in truth.iterrows():
        mine = [p for p, q in mapping.items() if q == tid]
        n = int(sum(parts.loc[p, "crack_count"] for p in mine)) if mine else 0
        counts.append(n == int(t["crack_count"]))
        if t["crack_count"] > 0:
            vol = sum(parts.loc[p, "volume_voxels"] for p in mine) if mine else 0
            cv = sum(parts.loc[p, "volume_voxels"] * parts.loc[p, "crack_volume_fraction"] for p in mine) if mine else 0
            errs.append((cv / vol if vol else 0.0) / t["crack_volume_fraction"] - 1.0)
    worst = float(errs[int(np.argmax(np.abs(errs)))]) if errs else float("nan")
    return {"cracks_exact_per_particle": int(all(counts)), "cvf_rel_err_max": worst}


def truth_visible(ph: Phantom, angles_deg) -> np.ndarray:
    """Per truth crack (``ph.crack_truth``'s rows): whether a series at ``angles_deg`` (deg; None: a volume) sees it,
    by :func:`layerscope.tomo.wedge.mark_cracks`' rule on the truth normal (all True without a missing wedge)."""
    from layerscope.tomo.sinogram import LIMITED_SPAN_DEG
    from layerscope.tomo.wedge import WEDGE_MARGIN_DEG, tilt_interval_deg, wedge_angle_deg

    interval = None if angles_deg is None else tilt_interval_deg(angles_deg, LIMITED_SPAN_DEG)
    if interval is None or not len(ph.crack_truth):
        return np.ones(len(ph.crack_truth), bool)
    normals = ph.crack_truth[["normal_z", "normal_y", "normal_x"]].to_numpy(float)
    return wedge_angle_deg(normals, interval) >= WEDGE_MARGIN_DEG


def _visible_scores(res, ph: Phantom, mapping: dict[int, int], matches: list[tuple[int, float]]) -> dict:
    """The crack counts restricted to the cracks the tilt range sees (:data:`VISIBLE_TARGETS`): truth cracks by
    :func:`truth_visible`, measured sheets not ``in_missing_wedge``; ``cracks_missed_visible``: visible truth cracks
    that no sheet is scored against."""
    ct = ph.crack_truth
    seen = truth_visible(ph, res.reconstruction.angles_deg if res.reconstruction is not None else None)
    found = ~res.cracks["in_missing_wedge"].astype(bool).to_numpy() if len(res.cracks) else np.zeros(0, bool)
    matched = {m for m, _ in matches if m}
    truth_per = {int(t): int(((ct["particle"] == t) & seen).sum()) if len(ct) else 0 for t in ph.truth["particle"]}
    parts = res.particles.set_index("particle") if len(res.particles) else None
    per = all(sum(int(parts.loc[p, "crack_count_visible"]) for p, q in mapping.items() if q == t) == n
              for t, n in truth_per.items())
    return {"n_cracks_truth_visible": int(seen.sum()), "n_cracks_found_visible": int(found.sum()),
            "cracks_exact_visible": int(seen.sum() == found.sum()), "cracks_exact_per_particle_visible": int(per),
            "cracks_missed_visible": int(sum(int(c) not in matched for c in ct.loc[seen, "crack"])) if len(ct) else 0}


def truth_in_view(ph: Phantom, fov: dict | None) -> np.ndarray:
    """Per truth crack (``ph.crack_truth``'s rows): whether under :data:`~layerscope.tomo.fov.MAX_OUTSIDE_SHARE` of
    its voxels lie outside the field of view ``fov`` (the analysis's summary.json ``field_of_view``; None: all True)."""
    from layerscope.tomo.fov import MAX_OUTSIDE_SHARE, truth_outside_shares

    if not len(ph.crack_truth):
        return np.ones(0, bool)
    return truth_outside_shares(ph.cracks, ph.crack_truth["crack"], fov) < MAX_OUTSIDE_SHARE


def _in_view_scores(res, ph: Phantom, mapping: dict[int, int], matches: list[tuple[int, float]]) -> dict:
    """The crack counts restricted to the cracks the projections saw at every angle (:data:`IN_VIEW_TARGETS`): truth
    cracks by :func:`truth_in_view`, measured sheets ``in_field_of_view``; ``cracks_missed_in_view``: truth cracks in
    view that no sheet is scored against."""
    ct = ph.crack_truth
    seen = truth_in_view(ph, res.summary.get("field_of_view"))
    found = res.cracks["in_field_of_view"].astype(bool).to_numpy() if len(res.cracks) else np.zeros(0, bool)
    matched = {m for m, _ in matches if m}
    truth_per = {int(t): int(((ct["particle"] == t) & seen).sum()) if len(ct) else 0 for t in ph.truth["particle"]}
    parts = res.particles.set_index("particle") if len(res.particles) else None
    per = all(sum(int(parts.loc[p, "crack_count_in_view"]) for p, q in mapping.items() if q == t) == n
              for t, n in truth_per.items())
    return {"n_cracks_truth_in_view": int(seen.sum()), "n_cracks_found_in_view": int(found.sum()),
            "cracks_exact_in_view": int(seen.sum() == found.sum()), "cracks_exact_per_particle_in_view": int(per),
            "cracks_missed_in_view": int(sum(int(c) not in matched for c in ct.loc[seen, "crack"])) if len(ct) else 0}


def _pores_as_cracks(res, ph: Phantom) -> dict:
    kinds = res.feature_kind
    as_crack = found = 0
    for k in range(1, int(ph.pores.max()) + 1):
        fid = _majority(ph.pores, res.feature_labels, k)
        as_crack += int(kinds.get(fid) == "crack")
        found += int(kinds.get(fid) == "pore")
    return {"n_pores_truth": int(ph.pores.max()), "n_pores_found": len(res.pores), "pores_found_as_pores": found,
            "pores_as_cracks": as_crack}


def sheet_matches(res, ph: Phantom) -> list[tuple[int, float]]:
    """Per measured sheet (``res.cracks``' rows in order): the truth crack it overlaps with the nearest normal (0: none,
    a false crack) and the angle between the two normals (deg; NaN for a false crack). A truth crack overlaps a sheet
    when it holds >= 10 % of the sheet's feature, or of the sheet's own voxel count (a small crack that is one sheet of
    a crossing feature holds under 10 % of the whole feature; it was compared with another crack)."""
    ct = ph.crack_truth.set_index("crack") if len(ph.crack_truth) else None
    out = []
    for c in res.cracks.itertuples():
        hit = ph.cracks[res.feature_labels == c.crack]
        ids, n = np.unique(hit[hit > 0], return_counts=True)
        ids = ids[n >= 0.1 * min(hit.size, c.segmented_voxels)]
        if not ids.size:
            out.append((0, float("nan")))
            continue
        normal = (c.normal_z, c.normal_y, c.normal_x)
        angle = {int(t): _angle_deg(normal, ct.loc[t, ["normal_z", "normal_y", "normal_x"]].to_numpy(float))
                 for t in ids}
        best = min(angle, key=angle.get)
        out.append((best, angle[best]))
    return out


def _sheet_scores(res, ph: Phantom, matches: list[tuple[int, float]]) -> dict:
    """Each measured sheet against the truth crack it overlaps with the nearest normal (``matches``:
    :func:`sheet_matches`)."""
    ct = ph.crack_truth.set_index("crack") if len(ph.crack_truth) else None
    widths, angles, matched, false = [], [], set(), 0
    for c, (best, angle) in zip(res.cracks.itertuples(), matches):
        if best == 0:
            false += 1
            continue
        matched.add(best)
        angles.append(angle)
        widths.append(c.width_mean_nm / res.voxel_size_nm - ct.loc[best, "width_voxels"])
    worst = float(widths[int(np.argmax(np.abs(widths)))]) if widths else float("nan")
    return {"n_cracks_truth": len(ph.crack_truth), "n_cracks_found": len(res.cracks), **_missed(res, ph, matched),
            "cracks_split": len(widths) - len(matched),
            "cracks_exact": int(len(res.cracks) == len(ph.crack_truth)), "cracks_missed": len(ph.crack_truth) - len(matched),
            "cracks_false": false, "width_err_max_voxels": worst,
            "width_err_mean_voxels": float(np.mean(widths)) if widths else float("nan"),
            "angle_err_max_deg": float(max(angles)) if angles else float("nan")}


def _missed(res, ph: Phantom, matched: set) -> dict:
    """Why truth cracks matched by no sheet were missed. Under half of their voxels in one dark feature:
    under half of them below the solid threshold (``not_dark``), or outside the particle envelopes
    (``outside_envelope``), or dark inside an envelope but in no feature kept (``dropped``: a feature
    shared by two particles or a surface dent is dropped). Otherwise their feature was called a pore
    (``as_pore``) or is a crack whose sheets all went to another truth crack (``in_crossing``)."""
    from layerscope.tomo.segment import solid_mask

    out = {"missed_not_dark": 0, "missed_outside_envelope": 0, "missed_dropped": 0, "missed_as_pore": 0,
           "missed_in_crossing": 0}
    solid = None
    for tid in range(1, len(ph.crack_truth) + 1):
        if tid in matched:
            continue
        m = ph.cracks == tid
        fid = _majority(ph.cracks, res.feature_labels, tid)
        if not m.any() or fid == 0 or (res.feature_labels[m] == fid).mean() < 0.5:
            if solid is None:
                solid = solid_mask(res.volume, smooth_voxels=0.0 if res.is_labels else res.options.smooth_voxels,
                                   threshold=res.options.threshold, particle_label=res.options.particle_label)[0]
            dark = m & ~solid
            key = ("not_dark" if dark.sum() < 0.5 * m.sum() else
                   "outside_envelope" if (res.particle_labels[dark] > 0).mean() < 0.5 else "dropped")
            out["missed_" + key] += 1
        else:
            out["missed_as_pore" if res.feature_kind.get(fid) == "pore" else "missed_in_crossing"] += 1
    return out


def score_draw(res, ph: Phantom) -> dict[str, Any]:
    """Scores of ``res`` (an analysis of ``ph`` on the phantom's voxel grid) against the truth of ``ph``."""
    p, mapping = _particle_scores(res, ph)
    matches = sheet_matches(res, ph)
    out = {**p, **_sheet_scores(res, ph, matches), **_pores_as_cracks(res, ph), **_per_particle(res, ph, mapping),
           **_visible_scores(res, ph, mapping, matches), **_in_view_scores(res, ph, mapping, matches)}
    tv = float(ph.truth["volume_voxels"].sum())
    want = float((ph.cracks > 0).sum()) / tv
    got = res.summary.get("crack_volume_fraction", 0.0)
    out["cvf_total_rel_err"] = got / want - 1.0 if want > 0 else float("nan")
    return out


def draw_parameters(ph: Phantom) -> dict[str, Any]:
    """The drawn parameters of a random phantom as a validator row begins: ``ph.specs["draw"]`` and the counts of
    ellipsoidal particles, through cracks and cracks reaching the surface, and the narrowest crack (voxels)."""
    d = dict(ph.specs["draw"])
    d["n_ellipsoids"] = sum(len(set(p.radii)) > 1 for p in ph.specs["particles"])
    d["n_through_cracks"] = sum(np.isinf(c.radius_voxels) for c in ph.specs["cracks"])
    d["n_cracks_surface"] = int(ph.crack_truth["reaches_surface"].sum()) if len(ph.crack_truth) else 0
    d["crack_width_min_voxels"] = float(ph.crack_truth["width_voxels"].min()) if len(ph.crack_truth) else float("nan")
    return d


def run_draw(seed: int, ranges: DrawRanges = DrawRanges(), size: int | None = None, options=None, *,
             prepare=None, inspect=None) -> dict[str, Any]:
    """Build draw ``seed``, analyse it (grey volume, or reconstructed from its projections) and score it.

    ``options`` (a :class:`~layerscope.tomo.analysis.TomoOptions`; the defaults when None) is what the
    analysis runs with, e.g. another reconstruction (``TomoOptions(recon=ReconOptions(...))``).
    ``prepare(phantom)`` (default :func:`~layerscope.tomo.phantom.draw_volume`) makes what the analysis gets, e.g.
    projections with shifts injected; ``inspect(result)`` returns columns added to the row.

    Returns the drawn parameters, the scores, ``error`` (an exception's text, scores then missing) and
    ``seconds`` (CPU time of the analysis).
    """
    from layerscope.tomo.analysis import TomoOptions, analyse

    ph = random_phantom(seed, ranges, size=size)
    d = draw_parameters(ph)
    data = (prepare or draw_volume)(ph)
    t0 = time.process_time()
    try:
        res = analyse(data, options if options is not None else TomoOptions())
    except Exception as err:  # a refusal or crash is a failed draw, recorded with its reason
        return {**d, "error": f"{type(err).__name__}: {err}"[:200], "seconds": time.process_time() - t0}
    d["seconds"] = time.process_time() - t0
    d["error"] = ""
    return {**d, **score_draw(res, ph), **(inspect(res) if inspect is not None else {})}
