"""Scoring ``layerscope.imaging`` on the random draws of :mod:`layerscope.simulate.draws` (issue 19, item 6).

:func:`score_draw` runs, on one drawn image, the generic column finder
(:func:`layerscope.imaging.generic.analyse`, no material model) and the phase pipeline
(:func:`layerscope.imaging.pipeline.map_phases` with the drawn chemistry and zone), and returns
one flat row: the drawn parameters and

- ``generic_recall, generic_precision, generic_rms_pm`` and ``phases_recall, phases_precision,
  phases_rms_pm``: :func:`layerscope.imaging.scoring.score_columns` of the columns found against
  the truth columns (apparent positions, 0.15 nm margin, visibility judged at the build thickness);
- ``step_accuracy``: share of the Li-layer sites of ``interlayers.csv`` segments whose ``step``
  equals the TM-TM relation of their gap in the scene (the registry read from the truth; gaps
  whose registry is more than 0.08 column spacings off O3, O3' and O1 are not scored), weighted
  by the segment's sites; a segment that sits on a TM layer or between layers counts as wrong;
  ``step_accuracy_layered`` the same over the Li layers of layered blocks (O3, O3', O1, C2/m);
  ``step_unknown`` the share reported ``unknown``, ``step_wrong`` the share given a wrong step;
  an ``unknown`` at a Li-layer site whose TM layer above or below is outside the image
  (:func:`out_of_field`) is left out of these four (the image does not hold that step; a step
  given there is scored), and ``step_out_of_field`` is the share of the sites so left out;
- ``fill_accuracy`` (and ``fill_accuracy_rim``: segments with a site within 0.5 nm of a void,
  crack or vacuum edge): over the Li layers of layered blocks (truth phase O3, O3', O1, C2/m),
  share of the sites whose segment's mixing decision is right (``yes`` where the truth fill, TM
  atoms per Li-layer site along the column, is at least the pipeline's ``MIXING_THRESHOLD`` of
  0.1, ``no`` below; segments whose truth fill is within 0.05 of 0.1 are not scored: there the
  sampling of a 3 nm column decides); ``uncertain`` counts as wrong and is reported as ``fill_uncertain``;
  ``fill_mae`` is the mean absolute error of ``li_fill``; ``fill_accuracy_all`` counts the
  spinel and rock-salt Li layers too, ``fill_accuracy_spinel`` those of spinel blocks alone (a
  spinel segment's truth is its TM per octahedral position, 0.25 in a full spinel Li layer, not per
  site of its filled columns: :func:`segment_truth`);
- ``twin_exact``: ``summary["twin_like_domains"]`` equals the truth's runs of reversed steps
  (NaN when a run is cut by the field edge); ``twins_found`` / ``twins_truth`` as
  ``single/double/multilayer`` counts;
- ``o3_spacing_err_pct`` / ``o1_spacing_err_pct``: the summary's TM-layer spacing of O3 / O1
  (``quantities.tm_layer_spacing_nm``) against the truth's apparent one (:func:`apparent_spacings`), per cent;
  NaN where either is missing (issue 19, imgstrain);
- ``phases_refused`` / ``generic_refused`` with the message, ``seconds``.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from layerscope.simulate.draws import RIM_NM, DrawRanges, DrawTruth, draw_scene

__all__ = ["score_draw", "flat_parameters", "segment_truth", "out_of_field", "apparent_spacings", "MARGIN_NM", "MATCH_NM",
           "IN_FIELD_NM"]

#: Columns closer than this to the image edge are not scored (as in benchmarks/imaging_validation.py).
MARGIN_NM = 0.15
#: Li layers whose fill is the mixing target (spinel and rock salt are scored apart: ``fill_accuracy_all``).
LAYERED = ("O3", "O3'", "O1", "C2/m")
#: Segments whose truth fill lies within this of the mixing threshold (0.1) are not scored for the fill.
AMBIGUOUS_FILL = 0.05
#: A reported site belongs to the truth site nearest to it within this distance (nm).
MATCH_NM = 0.07
#: A truth Li-layer site whose nearest truth TM site (inside the image, at least :data:`MARGIN_NM` from its
#: edges) of the layer above or below is farther than this (nm) has that TM layer outside the image: the image
#: does not hold its step.
IN_FIELD_NM = 0.45


def flat_parameters(p: dict) -> dict:
    """The drawn parameters as CSV-friendly scalars (the stack as ``phase(n)`` joined by ``|``)."""
    skip = ("blocks", "features", "voids", "cracks")
    out = {k: v for k, v in p.items() if k not in skip}
    first, last = p["features"]

    def name(b: dict) -> str:
        extra = f",mix={b['mixing']:g}" if b.get("mixing") else ""
        return f"{b['phase']}({b['n_layers']}{extra})"

    out["stack"] = "|".join(name(b) for b in p["blocks"][first:last + 1])
    out["features"] = "+".join(sorted({("mixed" if b.get("mixing") else b["phase"])
                                       for b in p["blocks"][first:last + 1:2]}))
    out["n_voids"] = len(p["voids"])
    out["void_radius_max_nm"] = max((v["radius_nm"] for v in p["voids"]), default=0.0)
    out["n_cracks"] = len(p["cracks"])
    return out


def _columns(found: pd.DataFrame, truth: DrawTruth, extent: tuple[float, float], prefix: str) -> dict:
    from layerscope.imaging.scoring import score_columns

    sc = score_columns(found, truth.columns, extent_nm=extent, margin_nm=MARGIN_NM,
                       anion_columns_ok=prefix == "generic")  # the generic finder reports O columns it sees
    return {f"{prefix}_recall": sc.recall, f"{prefix}_precision": sc.precision, f"{prefix}_rms_pm": sc.rms_pm,
            f"{prefix}_n_truth": sc.n_truth_visible}


def _inside_margin(sites: pd.DataFrame, parameters: dict) -> pd.DataFrame:
    """``sites`` at least :data:`MARGIN_NM` inside the square field of ``field_px`` pixels of ``pixel_size_nm``."""
    if "field_px" not in parameters or "pixel_size_nm" not in parameters:
        return sites
    field = float(parameters["field_px"]) * float(parameters["pixel_size_nm"])
    x, y = sites["x_nm"].to_numpy(), sites["y_nm"].to_numpy()
    return sites[np.minimum.reduce([x, y, field - x, field - y]) >= MARGIN_NM]


def out_of_field(li_sites: pd.DataFrame, truth: DrawTruth) -> np.ndarray:
    """Per truth Li-layer site: True where its TM layer above or below is outside the image.

    ``li_sites`` are rows of ``truth.sites`` (``x_nm, y_nm, layer``); a TM layer counts as outside
    where none of its truth sites inside the image lies within :data:`IN_FIELD_NM` of the site. A TM
    site closer than :data:`MARGIN_NM` to the image's edge (its column cut by the edge, not scored for
    recall either) does not count as inside where the truth's ``parameters`` give the field
    (``field_px``, ``pixel_size_nm``).
    """
    from scipy.spatial import cKDTree

    tm = _inside_margin(truth.sites[truth.sites["kind"] == "TM"], getattr(truth, "parameters", None) or {})
    trees = {int(k): cKDTree(g[["x_nm", "y_nm"]].to_numpy()) for k, g in tm.groupby("layer")}
    xy = li_sites[["x_nm", "y_nm"]].to_numpy()
    layer = li_sites["layer"].to_numpy().astype(int)
    out = np.zeros(len(li_sites), bool)
    for k in np.unique(layer):
        at = layer == k
        for side in (k - 1, k + 1):
            tree = trees.get(int(side))
            if tree is None:
                out[at] = True
                continue
            out[at] |= tree.query(xy[at])[0] > IN_FIELD_NM
    return out


def _octahedral_share(phase: str, n_sites: int, n_matched: int) -> float:
    """Octahedral positions per TM of a truth site's ``fill``: 1, except in a spinel Li layer.

    The 2x2-ordered spinel Li layer holds TM on one octahedral site in four: in projection every
    other column along the layer (the filled sublattice), and in that column every other position
    along the beam. The truth table holds only the filled columns (the empty ones are no sites, so no
    reported site matches them) and their ``fill`` is TM per site of the column, i.e. per two
    octahedral positions. A spinel segment's truth is its TM per octahedral position, as the pipeline
    reads it (:func:`layerscope.imaging.interlayers.interlayer_table`): the mean of its two sublattices'
    means (a quarter of the filled columns' ``fill``) where it holds sites besides the matched ones,
    the plain mean (a half) where every site is matched (one sublattice only).
    """
    if phase != "spinel":
        return 1.0
    return 0.25 if n_sites > n_matched else 0.5


def segment_truth(columns: pd.DataFrame, interlayers: pd.DataFrame, truth: DrawTruth) -> pd.DataFrame:
    """The truth of every ``interlayers`` segment: its sites matched to the scene's sites.

    Returns ``interlayers`` with ``n_matched`` (sites within :data:`MATCH_NM` of a truth site),
    ``on_li_layer`` (most matched sites are Li-layer sites), ``truth_layer``, ``truth_relation``,
    ``truth_phase`` (majority phase of the matched Li-layer sites),
    ``truth_fill`` (mean TM atoms per site of the matched Li-layer sites; in a spinel segment per
    octahedral position, :func:`_octahedral_share`), ``rim`` (a matched
    site within :data:`~layerscope.simulate.draws.RIM_NM` of a void, crack or vacuum edge) and
    ``out_of_field`` (share of the matched Li-layer sites whose step the image does not hold:
    :func:`out_of_field`).
    """
    from scipy.spatial import cKDTree

    li = columns[(columns["kind"] == "Li") & (columns["site"] == "octahedral")]
    tree = cKDTree(truth.sites[["x_nm", "y_nm"]].to_numpy())
    relation = truth.gaps.set_index("li_layer")["relation"]
    rows = []
    for seg in interlayers.itertuples():
        sites = li[(li["layer"] == seg.li_layer) & li["u_nm"].between(seg.u_start_nm, seg.u_end_nm)]
        d, idx = tree.query(sites[["x_nm", "y_nm"]].to_numpy()) if len(sites) else (np.empty(0), np.empty(0, int))
        hit = truth.sites.iloc[idx[d < MATCH_NM]]
        on_li = hit[hit["kind"] == "Li"]
        row = {"n_matched": len(hit), "on_li_layer": len(hit) > 0 and len(on_li) > len(hit) / 2}
        if row["on_li_layer"]:
            layer = int(on_li["layer"].mode().iloc[0])
            phase = str(on_li["phase"].mode().iloc[0])
            row.update(truth_layer=layer, truth_relation=relation.get(layer, "off"), truth_phase=phase,
                       truth_fill=float(on_li["fill"].mean()) * _octahedral_share(phase, len(sites), len(hit)),
                       rim=bool((on_li["edge_nm"] < RIM_NM).any()),
                       out_of_field=float(out_of_field(on_li, truth).mean()))
        rows.append(row)
    extra = pd.DataFrame(rows, index=interlayers.index,
                         columns=["n_matched", "on_li_layer", "truth_layer", "truth_relation", "truth_phase",
                                  "truth_fill", "rim", "out_of_field"])
    return pd.concat([interlayers, extra], axis=1)


def apparent_spacings(sites: pd.DataFrame, inplane_nm: float) -> dict[str, float]:
    """The truth's TM-layer spacing per phase (nm), as the degraded image shows it (drift and flyback included).

    The sites inside the image (``x_nm, y_nm``: apparent positions) fitted as ``w . (x, y) + b = layer`` give the
    normal ``w / |w|``; each TM site's spacing is the normal distance to the TM site of layer + 2 nearest along the
    layer (within 0.6 ``inplane_nm``), counted for the phase of the Li-layer site of layer + 1 nearest along the layer
    (the gap's phase; C2/m counts as O3, the pipeline's label for it); the median per phase.
    """
    s = sites[sites["in_image"].astype(bool)]
    xy = s[["x_nm", "y_nm"]].to_numpy(dtype=float)
    w = np.linalg.lstsq(np.column_stack([xy, np.ones(len(s))]), s["layer"].to_numpy(float), rcond=None)[0][:2]
    n = w / np.hypot(*w)
    frame = pd.DataFrame({"layer": s["layer"].to_numpy(), "kind": s["kind"].to_numpy(), "v": xy @ n,
                          "u": xy @ np.array([n[1], -n[0]]), "phase": s["phase"].replace({"C2/m": "O3"}).to_numpy()})
    groups = {(k, kind): g for (k, kind), g in frame.groupby(["layer", "kind"])}
    found: list[pd.DataFrame] = []
    for (k, kind), g in groups.items():
        nxt, gap = groups.get((k + 2, "TM")), groups.get((k + 1, "Li"))
        if kind != "TM" or nxt is None or gap is None:
            continue
        u = g["u"].to_numpy()
        j = np.abs(u[:, None] - nxt["u"].to_numpy()[None, :]).argmin(axis=1)
        jg = np.abs(u[:, None] - gap["u"].to_numpy()[None, :]).argmin(axis=1)
        ok = np.abs(u - nxt["u"].to_numpy()[j]) < 0.6 * inplane_nm
        found.append(pd.DataFrame({"phase": gap["phase"].to_numpy()[jg[ok]],
                                   "d": nxt["v"].to_numpy()[j[ok]] - g["v"].to_numpy()[ok]}))
    if not found:
        return {}
    return {str(ph): float(d.median()) for ph, d in pd.concat(found).groupby("phase")["d"]}


def _spacing_scores(summary: dict, truth: DrawTruth) -> dict:
    from layerscope.imaging.materials import material_spacings

    p = truth.parameters
    want = apparent_spacings(truth.sites, material_spacings(p["chemistry"], p["zone"]).inplane_spacing_nm)
    got = summary.get("quantities", {}).get("tm_layer_spacing_nm", {})
    return {f"{ph.lower()}_spacing_err_pct": 100 * (got[ph] / want[ph] - 1) if ph in got and ph in want else float("nan")
            for ph in ("O3", "O1")}


def _weighted(ok: pd.Series, weights: pd.Series) -> float:
    return float(np.average(ok, weights=weights)) if len(ok) and weights.sum() > 0 else float("nan")


def _interlayer_scores(seg: pd.DataFrame) -> dict:
    from layerscope.imaging.interlayers import MIXING_THRESHOLD

    seg = seg[seg["n_matched"] > 0]  # sites placed in a void or in vacuum have no truth
    on = seg["on_li_layer"].astype(bool)
    steps = seg[~on | seg["truth_relation"].isin(["O3", "O3'", "O1"])]
    step_ok = (steps["step"] == steps["truth_relation"]) & steps["on_li_layer"].astype(bool)
    lay_steps = ~steps["on_li_layer"].astype(bool) | steps["truth_phase"].isin(LAYERED)
    # an ``unknown`` at a site whose TM layer above or below is outside the image is not scored (the
    # image does not hold that step); a step given there is scored like any other
    unknown = steps["step"] == "unknown"
    outside = steps["out_of_field"].fillna(0.0).astype(float)
    w_steps = steps["n_sites"] * np.where(unknown, 1.0 - outside, 1.0)
    every = seg[on]
    # a truth fill within AMBIGUOUS_FILL of the threshold has no right yes/no (a 3 nm column's sampling)
    every = every[np.abs(every["truth_fill"] - MIXING_THRESHOLD) >= AMBIGUOUS_FILL]
    ok_every = every["mixing"].to_numpy() == np.where(every["truth_fill"] >= MIXING_THRESHOLD, "yes", "no")
    layered = every["truth_phase"].isin(LAYERED).to_numpy()
    fills, fill_ok = every[layered], ok_every[layered]
    want = np.where(fills["truth_fill"] >= MIXING_THRESHOLD, "yes", "no")
    rim = fills["rim"].astype(bool).to_numpy()
    w = fills["n_sites"]
    return {"segments": int(len(seg)), "segments_off_layer": int((~on).sum()),
            "segments_fill_ambiguous": int(on.sum() - len(every)),
            "step_accuracy": _weighted(step_ok, w_steps),
            "step_accuracy_layered": _weighted(step_ok[lay_steps], w_steps[lay_steps]),
            "step_unknown": _weighted(unknown, w_steps),
            "step_wrong": _weighted(~step_ok & ~unknown, w_steps),
            # share of the sites left out of the step scores above: unknown, and outside the field
            "step_out_of_field": _weighted(unknown * outside, steps["n_sites"]),
            "fill_accuracy": _weighted(fill_ok, w), "fill_accuracy_rim": _weighted(fill_ok[rim], w[rim]),
            "fill_accuracy_all": _weighted(ok_every, every["n_sites"]),
            "fill_accuracy_spinel": _weighted(ok_every[(every["truth_phase"] == "spinel").to_numpy()],
                                              every.loc[every["truth_phase"] == "spinel", "n_sites"]),
            "rim_segments": int(rim.sum()), "fill_uncertain": _weighted(fills["mixing"] == "uncertain", w),
            "fill_mae": float(np.nanmean(np.abs(fills["li_fill"] - fills["truth_fill"]))) if len(fills) else np.nan,
            "fill_wrong_yes": int(((fills["mixing"] == "yes") & (want == "no")).sum()),
            "fill_wrong_no": int(((fills["mixing"] == "no") & (want == "yes")).sum())}


def _score_phases(image: np.ndarray, px: float, truth: DrawTruth, extent: tuple[float, float]) -> dict:
    from layerscope.errors import InputError
    from layerscope.imaging.pipeline import map_phases
    from layerscope.imaging.scoring import score_phases

    p = truth.parameters
    try:
        pm = map_phases(image, pixel_size_nm=px, zone=p["zone"], composition=p["chemistry"])
    except InputError as err:
        return {"phases_refused": True, "phases_error": f"{type(err).__name__}: {str(err)[:160]}"}
    row = {"phases_refused": False, "phases_error": ""}
    row.update(_columns(pm.columns, truth, extent, "phases"))
    row["phase_accuracy"] = score_phases(pm.columns, truth.columns, extent_nm=extent).accuracy
    row.update(_interlayer_scores(segment_truth(pm.columns, pm.interlayers, truth)))
    found = pm.summary["twin_like_domains"]
    kinds = ("single-layer", "double-layer", "multilayer")
    row["twins_found"] = "/".join(str(found.get(k, 0)) for k in kinds)  # single/double/multilayer
    row["twins_truth"] = "/".join(str(truth.twin_runs[k]) for k in kinds)
    row["twin_exact"] = float("nan") if truth.twin_ambiguous else float(found == truth.twin_runs)
    row.update(_spacing_scores(pm.summary, truth))
    return row


def score_draw(seed: int, ranges: DrawRanges | None = None) -> dict:
    """Draw ``seed``, run the generic column finder and the phase pipeline on it, score both.

    Returns
    -------
    dict
        :func:`flat_parameters` of the draw and the scores of the module docstring. A refusal
        (``InputError`` or ``CalibrationError``) is a result: ``*_refused`` is True and
        ``*_error`` holds its first 160 characters.
    """
    from layerscope.errors import InputError
    from layerscope.imaging.generic import ColumnsOptions, analyse

    t0 = time.perf_counter()
    image, px, truth = draw_scene(seed, ranges)
    extent = (image.shape[1] * px, image.shape[0] * px)
    row = flat_parameters(truth.parameters)
    row.update(truth_columns=len(truth.columns), twin_ambiguous=truth.twin_ambiguous)
    try:
        found = analyse(image, ColumnsOptions(), pixel_size_nm=px)
        row.update(generic_refused=False, generic_error="", **_columns(found.columns, truth, extent, "generic"))
    except InputError as err:
        row.update(generic_refused=True, generic_error=f"{type(err).__name__}: {str(err)[:160]}")
    row.update(_score_phases(image, px, truth, extent))
    row["seconds"] = time.perf_counter() - t0
    return row
