"""Quantities from a phase-mapped image: spacings, strain, planar gliding, surface-layer thickness.

- **Layer spacing** (per TM column): distance along the basal normal to its partner in the next
  TM layer (c/3 for O3, ~0.43 nm for O1 CoO2); **in-plane spacing**: distance to the next column
  along the row. Both are per column (a map) and summarised per phase.
- **Per-phase layer spacing** (``summary["tm_layer_spacing_nm"]``): the median of the TM-TM spacings counted
  for the label of their upper TM column; with :data:`SPACING_BY_STACKING` (on) a spacing across an O1-stacked gap
  (the Li-layer site's ``relation``) counts for O1 and an O1-labelled one across an O3 / O3' gap for that phase:
  the labels of a thin O1 block's TM layers take in neighbouring O3 gaps (O1 reported up to +10 % before, on the
  0-199 and 7000-7099 draws; issue 19, imgstrain).
- **Strain** against pristine O3: ``eps_nn = spacing / spacing_O3 - 1`` and
  ``eps_tt = inplane / inplane_O3 - 1``, with the O3 reference taken as the median over the
  O3-labelled region of the image (robust to a small calibration error) when it holds at least
  20 TM columns, else from the material's lattice parameters (stated in the output).
- **Planar gliding** between two blocks of layers: the step, across a TM-TM relation, of the rows'
  lateral phase after removing the ideal stacking and a uniform shear (scan drift), averaged over
  the blocks on either side (:func:`gliding`), times the column spacing, over ``a``. Only the
  component along the layers in the image plane is visible; a glide of half a column spacing or
  more is aliased into another stacking.
- **Surface reconstruction layer** (rock salt / spinel) thickness from a vacuum edge (a surface,
  void or crack, found as the region farther than 0.6 TM-layer spacings from any column): per
  strip along the edge, the extent of the reconstruction columns along the distance to the edge
  plus one cation spacing; the median over strips.

References
----------
- M. J. Hÿtch, E. Snoeck, R. Kilaas, Ultramicroscopy 74, 131 (1998) (strain from lattice images;
  here measured column by column instead of by geometric phase).
- H. Gabrisch, R. Yazami, B. Fultz, Electrochem. Solid-State Lett. 5, A111 (2002); planar gliding
  in Ni-rich cathodes: P. Yan et al., Nat. Commun. 9, 2437 (2018).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from layerscope.imaging.lattice import circular_mean, wrap_half
from layerscope import linalg as robust_linalg

__all__ = ["layer_table", "add_spacings", "stacking_spacings", "gliding", "quantities", "surface_layer_thickness",
           "circular_mean", "SPACING_BY_STACKING"]

#: The per-phase TM-layer spacing of the summary with a spacing across an O1-stacked gap counted for O1 and an
#: O1-labelled one across an O3 / O3' gap for that (:func:`stacking_spacings`); False: every spacing for the label
#: of its upper TM column (before session 37).
SPACING_BY_STACKING = True


def add_spacings(columns: pd.DataFrame, *, inplane_spacing_nm: float) -> None:
    """Add ``tm_spacing_nm`` (TM columns: to the partner below along the normal) and
    ``inplane_nm`` (to the next detected column of the same layer along the row) in place."""
    n = len(columns)
    tm_sp = np.full(n, np.nan)
    li = columns[columns["kind"] == "Li"]
    above = li["above"].to_numpy()
    below = li["below"].to_numpy()
    ok = (above >= 0) & (below >= 0)
    v = columns["v_nm"].to_numpy()
    tm_sp[above[ok].astype(int)] = v[below[ok].astype(int)] - v[above[ok].astype(int)]
    columns["tm_spacing_nm"] = tm_sp
    inpl = np.full(n, np.nan)
    det = columns["detected"].to_numpy()
    u = columns["u_nm"].to_numpy()
    lay = columns["layer"].to_numpy()
    idx = np.nonzero(det)[0]
    order = idx[np.lexsort((u[idx], lay[idx]))]
    du = np.diff(u[order])
    same = np.diff(lay[order]) == 0
    good = same & (du > 0.5 * inplane_spacing_nm) & (du < 1.5 * inplane_spacing_nm)
    inpl[order[:-1][good]] = du[good]
    columns["inplane_nm"] = inpl


def stacking_spacings(columns: pd.DataFrame) -> dict[str, float]:
    """Median ``tm_spacing_nm`` (nm) of the TM columns per label, except that a layered column (O3, O3', O1) whose
    gap (the Li-layer site that set its spacing in :func:`add_spacings`) is O1-stacked (its ``relation``) counts for
    O1, and an O1-labelled one whose gap is O3 or O3' for that phase."""
    li = columns[columns["kind"] == "Li"]
    above, below = li["above"].to_numpy(), li["below"].to_numpy()
    ok = (above >= 0) & (below >= 0)
    gap = np.full(len(columns), "", dtype=object)
    gap[above[ok].astype(int)] = li["relation"].to_numpy().astype(str)[ok]  # the same last write as add_spacings
    tm = (columns["kind"] == "TM").to_numpy() & columns["tm_spacing_nm"].notna().to_numpy()
    label, rel = columns["phase"].to_numpy().astype(str)[tm], gap[tm].astype(str)
    key = np.where(np.isin(label, ["O3", "O3'", "O1"]) & (rel == "O1"), "O1", label)
    key = np.where((label == "O1") & np.isin(rel, ["O3", "O3'"]), rel, key)
    frame = pd.DataFrame({"phase": key, "d": columns["tm_spacing_nm"].to_numpy(float)[tm]})
    return {str(ph): round(float(g.median()), 5) for ph, g in frame.groupby("phase")["d"] if ph}


def _majority(keys: np.ndarray, labels: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """Most frequent label per key (0..n_keys-1) and its share, vectorised."""
    cats, inv = np.unique(labels, return_inverse=True)
    counts = np.zeros((n_keys, cats.size))
    np.add.at(counts, (keys, inv), 1.0)
    best = counts.argmax(axis=1)
    total = counts.sum(axis=1)
    share = np.where(total > 0, counts[np.arange(n_keys), best] / np.maximum(total, 1), np.nan)
    return cats[best], share


def layer_table(columns: pd.DataFrame, result: Any) -> pd.DataFrame:
    """One row per cation layer: phase, position, spacing, registry, gliding, mixing.

    Parameters
    ----------
    columns : pandas.DataFrame
        The labelled column table (needs ``layer, kind, phase, v_nm, y_nm, registry, relation,
        mixing, detected, tm_spacing_nm``).
    result : layerscope.imaging.pipeline.ColumnResult
        For the lattice (``inplane_period_nm``), material (``a_nm``) and zone.

    Returns
    -------
    pandas.DataFrame
        ``layer, kind, phase`` (majority), ``phase_fraction`` (its share), ``n_columns,
        n_detected, v_nm, y_nm`` (means), ``tm_spacing_nm`` (TM: median to the next TM layer),
        ``registry`` (TM: circular mean to the next TM layer, column spacings),
        ``registry_sem`` (its standard error), ``relation`` (majority), ``glide_over_a`` (TM:
        glide of this layer relative to the next TM layer along +t, from this relation alone:
        ``-(registry - ideal) * d_t / a``), ``mixing`` (Li: mean), ``row_phase`` (u / d_t
        modulo 1 of the row's detected columns, circular mean) and ``row_phase_sem``.
    """
    from layerscope.imaging.phases import o3_step_for_zone

    d_t = result.lattice.inplane_period_nm
    a = result.spacings.a_nm
    s = o3_step_for_zone(result.zone)
    layer_vals, key = np.unique(columns["layer"].to_numpy(), return_inverse=True)
    n = layer_vals.size
    cnt = np.bincount(key, minlength=n).astype(float)
    kind, _ = _majority(key, columns["kind"].to_numpy().astype(str), n)
    phase, share = _majority(key, columns["phase"].to_numpy().astype(str), n)
    v = np.bincount(key, columns["v_nm"].to_numpy(), minlength=n) / cnt
    y = np.bincount(key, columns["y_nm"].to_numpy(), minlength=n) / cnt
    det = np.bincount(key, columns["detected"].to_numpy().astype(float), minlength=n)
    # Registry: circular mean and its standard error, TM columns with a partner.
    reg = columns["registry"].to_numpy(dtype=float)
    is_tm = columns["kind"].to_numpy() == "TM"
    ok = is_tm & np.isfinite(reg)
    z = np.exp(2j * np.pi * np.where(ok, reg, 0.0))
    zr = np.bincount(key[ok], z.real[ok], minlength=n)
    zi = np.bincount(key[ok], z.imag[ok], minlength=n)
    nr = np.bincount(key[ok], minlength=n).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_reg = np.where(nr > 0, wrap_half(np.angle(zr + 1j * zi) / (2 * np.pi)), np.nan)
        dev = wrap_half(np.where(ok, reg, 0.0) - mean_reg[key])
        var = np.bincount(key[ok], dev[ok] ** 2, minlength=n) / np.maximum(nr, 1)
        sem = np.where(nr > 1, np.sqrt(var / np.maximum(nr - 1, 1)), np.nan)
    rel_lab = columns["relation"].to_numpy().astype(str)
    has_rel = ok & (rel_lab != "")
    relation = np.full(n, "", dtype="<U4")
    if has_rel.any():
        maj, _ = _majority(key[has_rel], rel_lab[has_rel], n)
        present = np.bincount(key[has_rel], minlength=n) > 0
        relation[present] = maj[present]
    ideal = {"O3": wrap_half(2 * s), "O3'": wrap_half(-2 * s), "O1": 0.0}
    ideal_reg = np.array([ideal.get(r, ideal.get(p, wrap_half(2 * s))) for r, p in zip(relation, phase)])
    # Glide of the layer above relative to the one below along +t: a shift of the upper layer by
    # +g lowers the registry (u_below - u_above) by g.
    glide = -wrap_half(mean_reg - ideal_reg) * d_t / a
    # Lateral phase of each row, u / d_t modulo 1 (circular mean over its detected columns).
    det_mask = columns["detected"].to_numpy().astype(bool)
    zu = np.exp(2j * np.pi * columns["u_nm"].to_numpy() / d_t)
    pr = np.bincount(key[det_mask], zu.real[det_mask], minlength=n)
    pi_ = np.bincount(key[det_mask], zu.imag[det_mask], minlength=n)
    nd = np.bincount(key[det_mask], minlength=n).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        row_phase = np.where(nd > 0, wrap_half(np.angle(pr + 1j * pi_) / (2 * np.pi)), np.nan)
        dphi = wrap_half(columns["u_nm"].to_numpy() / d_t - row_phase[key])
        pvar = np.bincount(key[det_mask], dphi[det_mask] ** 2, minlength=n) / np.maximum(nd, 1)
        row_phase_sem = np.where(nd > 1, np.sqrt(pvar / np.maximum(nd - 1, 1)), np.nan)
    # Spacing (median per layer) and mixing (mean per Li layer).
    spc = columns["tm_spacing_nm"].to_numpy(dtype=float)
    tm_spacing = np.full(n, np.nan)
    good = np.isfinite(spc)
    if good.any():
        frame = pd.DataFrame({"k": key[good], "s": spc[good]}).groupby("k")["s"].median()
        tm_spacing[frame.index.to_numpy()] = frame.to_numpy()
    mix = columns["mixing"].to_numpy(dtype=float)
    gm = np.isfinite(mix)
    nm = np.bincount(key[gm], minlength=n).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        mixing = np.where(nm > 0, np.bincount(key[gm], mix[gm], minlength=n) / nm, np.nan)
    return pd.DataFrame({
        "layer": layer_vals.astype(int), "kind": kind, "phase": phase, "phase_fraction": share,
        "n_columns": cnt.astype(int), "n_detected": det.astype(int), "v_nm": v, "y_nm": y,
        "tm_spacing_nm": tm_spacing, "registry": mean_reg, "registry_sem": sem, "relation": relation,
        "glide_over_a": np.where(kind == "TM", glide, np.nan), "mixing": mixing,
        "row_phase": row_phase, "row_phase_sem": row_phase_sem,
    })


def gliding(layers: pd.DataFrame, *, inplane_spacing_nm: float, a_nm: float, zone: str,
            significance: float = 4.0, min_glide_over_a: float = 0.005) -> pd.DataFrame:
    """Planar gliding at every TM-TM relation, corrected for a uniform shear, averaged over blocks.

    Each TM row has a lateral phase ``phi_k`` (:func:`layer_table`). Removing the ideal registry
    of every relation down the stack (O3, O3' or O1 by its classification; an ``"off"`` relation
    counts as O3) leaves ``psi_k``, constant through an unglided crystal. A scan drift or a
    uniform shear adds a slope ``b`` in ``psi`` against the normal coordinate ``v``. A relation
    is a glide plane when its own step (two rows, after removing the median slope) is
    significant; then ``psi_k = c + b v_k + sum_p g_p [k below p]`` is fitted to all rows by
    weighted least squares (weights from the rows' standard errors), so that the shear is
    measured inside the blocks and every glide ``g_p`` from all the rows of the blocks around it.
    Times ``d_t / a`` (sign: the upper block relative to the lower one along +t). Other relations
    report their own step.

    Parameters
    ----------
    layers : pandas.DataFrame
        The layer table.
    inplane_spacing_nm, a_nm : float
        Column spacing along the rows and the in-plane lattice parameter, nm.
    zone : str
        Zone axis (sign of the O3 stacking).
    significance, min_glide_over_a : float
        A relation is reported as a glide plane when its step exceeds both ``significance``
        standard errors and ``min_glide_over_a``.

    Returns
    -------
    pandas.DataFrame
        Per TM relation: ``from_layer, to_layer, relation, glide_over_a`` (block estimate),
        ``uncertainty_over_a``, ``local_glide_over_a`` (this relation only, shear-corrected),
        ``significant``; ``attrs["shear_per_nm"]`` holds ``b`` (column spacings per nm).
    """
    from layerscope.imaging.phases import o3_step_for_zone

    s = o3_step_for_zone(zone)
    ideal = {"O3": wrap_half(2 * s), "O3'": wrap_half(-2 * s), "O1": 0.0}
    tm = layers[(layers["kind"] == "TM") & layers["row_phase"].notna()].sort_values("layer").reset_index(drop=True)
    cols = ["from_layer", "to_layer", "relation", "glide_over_a", "uncertainty_over_a", "local_glide_over_a",
            "significant"]
    if len(tm) < 2:
        out = pd.DataFrame(columns=cols)
        out.attrs["shear_per_nm"] = float("nan")
        return out
    phi = tm["row_phase"].to_numpy()
    sem = tm["row_phase_sem"].fillna(0.05).to_numpy()
    v = tm["v_nm"].to_numpy()
    rel = tm["relation"].to_numpy().astype(str)
    consecutive = np.diff(tm["layer"].to_numpy()) == 2
    ideal_step = np.array([ideal.get(r, wrap_half(2 * s)) for r in rel[:-1]])
    res = wrap_half(np.diff(phi) - ideal_step)  # registry residual of each relation
    dv = np.diff(v)
    slope = float(np.median(res[consecutive] / dv[consecutive])) if consecutive.any() else 0.0
    local = res - slope * dv
    # Local estimate at each relation and its standard error (two rows).
    local_unc = np.sqrt(sem[:-1] ** 2 + sem[1:] ** 2)
    # Glide planes: relations whose local step is significant; each plane's glide is then the
    # step between the full blocks on either side (up to the neighbouring planes), which
    # averages the row phases of all their layers.
    cand = consecutive & (np.abs(local) * inplane_spacing_nm / a_nm > min_glide_over_a) & (
        np.abs(local) > significance * local_unc)
    planes = np.nonzero(cand)[0]
    # Joint weighted least squares over all TM rows: psi_k = c + b v_k + sum_p g_p [k > p]; the
    # shear b is then measured inside the blocks only, not through the glide steps.
    raw = np.concatenate([[0.0], np.cumsum(res)])
    design = np.column_stack([np.ones(len(tm)), v] + [(np.arange(len(tm)) > j).astype(float) for j in planes])
    wts = 1.0 / np.maximum(sem, 1e-4) ** 2
    aw = design * np.sqrt(wts)[:, None]
    bw = raw * np.sqrt(wts)
    coef, _ = robust_linalg.lstsq(aw, bw)
    dof = max(len(tm) - design.shape[1], 1)
    chi2 = float(np.sum((bw - aw @ coef) ** 2)) / dof
    cov = robust_linalg.pinv(aw.T @ aw) * max(chi2, 1.0)
    slope = float(coef[1])
    local = res - slope * dv
    block_step = np.full(len(tm) - 1, np.nan)
    block_unc = np.full(len(tm) - 1, np.nan)
    for i, j in enumerate(planes):
        block_step[j] = coef[2 + i]
        block_unc[j] = np.sqrt(cov[2 + i, 2 + i])
    k_over_a = inplane_spacing_nm / a_nm
    rows = []
    for j in range(len(tm) - 1):
        if not consecutive[j]:
            continue
        is_plane = bool(cand[j])
        rows.append({
            "from_layer": int(tm["layer"].iloc[j]), "to_layer": int(tm["layer"].iloc[j + 1]), "relation": rel[j],
            "glide_over_a": float(-(block_step[j] if is_plane else local[j]) * k_over_a),
            "uncertainty_over_a": float((block_unc[j] if is_plane else local_unc[j]) * k_over_a),
            "local_glide_over_a": float(-local[j] * k_over_a),
            "significant": is_plane,
        })
    out = pd.DataFrame(rows, columns=cols)
    out.attrs["shear_per_nm"] = slope
    return out


def surface_layer_thickness(
    columns: pd.DataFrame,
    phase_map: np.ndarray,
    map_pixel_nm: float,
    *,
    cation_spacing_nm: float,
    phases: tuple[str, ...] = ("rock_salt", "spinel"),
    strip_nm: float = 0.5,
    reach_nm: float | None = None,
) -> dict[str, Any]:
    """Thickness of a reconstruction layer measured from the nearest vacuum edge.

    Vacuum is where the phase map is 0 (no column within reach: outside the specimen, a void or a
    crack), counted only in connected regions larger than a few cation spacings across. Every
    reconstruction column gets its distance to the vacuum and the position of its nearest vacuum
    pixel along the edge; in strips of ``strip_nm`` along the edge, the thickness is the spread
    of those distances plus one cation spacing (the layer extends half a spacing beyond its
    outer and inner column rows). The median over strips is reported.

    Returns
    -------
    dict
        ``thickness_nm`` (median; None when there is no vacuum-bounded reconstruction layer),
        ``thickness_min_nm``, ``thickness_max_nm``, ``n_strips``, ``edge`` (``"vacuum"`` or
        ``"none"``), and ``image_edge_lower_bound_nm``: the same measure taken from the image
        border when the reconstruction layer runs into it instead (a lower bound).
    """
    result: dict[str, Any] = {"thickness_nm": None, "thickness_min_nm": None, "thickness_max_nm": None,
                              "n_strips": 0, "edge": "none", "image_edge_lower_bound_nm": None}
    rec = columns["phase"].isin(phases).to_numpy()
    if not rec.any():
        return result
    vac = (phase_map == 0).astype(np.uint8)
    # Keep vacuum regions wider than ~2 cation spacings (not the gaps between columns): a grey
    # opening with a square (separable min/max filters).
    size = 2 * max(1, int(round(cation_spacing_nm / map_pixel_nm))) + 1
    vac = ndimage.maximum_filter(ndimage.minimum_filter(vac, size=size), size=size).astype(bool)
    pts = columns.loc[rec, ["x_nm", "y_nm"]].to_numpy()
    if reach_nm is None:
        # The outermost row of columns lies within the phase map's reach (1.2 cation spacings)
        # plus the opening's rounding of the vacuum edge from the vacuum.
        reach_nm = 2.0 * cation_spacing_nm + 2 * map_pixel_nm

    def measure(edge_mask: np.ndarray):
        dist, (ir, ic) = ndimage.distance_transform_edt(~edge_mask, return_indices=True)
        rr = np.clip((pts[:, 1] / map_pixel_nm).astype(int), 0, edge_mask.shape[0] - 1)
        cc = np.clip((pts[:, 0] / map_pixel_nm).astype(int), 0, edge_mask.shape[1] - 1)
        d = dist[rr, cc] * map_pixel_nm
        ex, ey = ic[rr, cc] * map_pixel_nm, ir[rr, cc] * map_pixel_nm
        near = d <= reach_nm
        if not near.any():
            return None
        # Only the reconstruction columns whose strip touches the edge count; strips along the
        # edge by the edge point's coordinate along the dominant edge direction.
        along = ex if np.ptp(ex) >= np.ptp(ey) else ey
        strip = np.floor(along / strip_nm).astype(int)
        values = []
        for s in np.unique(strip):
            sel = strip == s
            if not near[sel].any():
                continue
            values.append(float(d[sel].max() - d[sel][near[sel]].min() + cation_spacing_nm))
        return values or None

    if vac.any():
        values = measure(vac)
        if values:
            result.update(thickness_nm=float(np.median(values)), thickness_min_nm=float(np.min(values)),
                          thickness_max_nm=float(np.max(values)), n_strips=len(values), edge="vacuum")
            return result
    border = np.zeros_like(vac)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    values = measure(border)
    if values:
        result["image_edge_lower_bound_nm"] = float(np.median(values))
    return result


def quantities(columns: pd.DataFrame, layers: pd.DataFrame, result: Any, *, phase_map: np.ndarray,
               map_pixel_nm: float) -> tuple[dict[str, Any], pd.DataFrame]:
    """Summary quantities: spacings per phase, strain reference, gliding, surface layer.

    Adds ``strain_normal`` and ``strain_inplane`` to ``columns`` (in place).

    Returns
    -------
    summary : dict
        ``tm_layer_spacing_nm`` and ``inplane_spacing_nm`` (median per phase), ``strain_reference``
        (source and values), ``gliding`` (significant glide planes, the largest step, the uniform
        shear removed), ``surface_layer`` (:func:`surface_layer_thickness`).
    glides : pandas.DataFrame
        The per-relation table of :func:`gliding`.
    """
    sp = result.spacings
    tm = columns["kind"] == "TM"
    per_phase = stacking_spacings(columns) if SPACING_BY_STACKING else {}
    inpl = {}
    for ph, sub in columns[tm].groupby("phase"):
        if not SPACING_BY_STACKING and sub["tm_spacing_nm"].notna().any():  # the label's own spacings (before)
            per_phase[ph] = round(float(sub["tm_spacing_nm"].median()), 5)
        w = sub["inplane_nm"].dropna()
        if len(w):
            inpl[ph] = round(float(w.median()), 5)
    o3 = columns[tm & (columns["phase"] == "O3")]
    if o3["tm_spacing_nm"].notna().sum() >= 20 and o3["inplane_nm"].notna().sum() >= 20:
        ref_n = float(o3["tm_spacing_nm"].median())
        ref_t = float(o3["inplane_nm"].median())
        source = "median of the O3 region of this image"
    else:
        ref_n, ref_t = sp.tm_spacing_nm, sp.inplane_spacing_nm
        source = f"O3 {sp.composition} lattice parameters (layerscope.crystal)"
    columns["strain_normal"] = columns["tm_spacing_nm"] / ref_n - 1.0
    columns["strain_inplane"] = columns["inplane_nm"] / ref_t - 1.0
    gl = gliding(layers, inplane_spacing_nm=result.lattice.inplane_period_nm, a_nm=sp.a_nm, zone=result.zone)
    planes = gl[gl["significant"]]
    glides = [
        {"from_layer": int(r.from_layer), "to_layer": int(r.to_layer), "relation": r.relation,
         "glide_over_a": round(float(r.glide_over_a), 5), "uncertainty_over_a": round(float(r.uncertainty_over_a), 5)}
        for r in planes.itertuples()
    ]
    largest = None
    if len(gl):
        # The largest step of any relation, significant or not (with its uncertainty).
        r = gl.iloc[int(np.argmax(np.abs(gl["glide_over_a"].to_numpy())))]
        largest = {"from_layer": int(r.from_layer), "to_layer": int(r.to_layer), "relation": r.relation,
                   "glide_over_a": round(float(r.glide_over_a), 5),
                   "uncertainty_over_a": round(float(r.uncertainty_over_a), 5)}
    surface = surface_layer_thickness(columns, phase_map, map_pixel_nm, cation_spacing_nm=sp.cation_spacing_nm)
    return {
        "tm_layer_spacing_nm": per_phase,
        "inplane_spacing_nm": inpl,
        "strain_reference": {"source": source, "tm_layer_spacing_nm": round(ref_n, 5),
                             "inplane_spacing_nm": round(ref_t, 5)},
        "strain_rms": {
            "normal": _rms(columns.loc[tm, "strain_normal"]),
            "inplane": _rms(columns.loc[tm, "strain_inplane"]),
        },
        "gliding": {"glide_planes": glides, "largest_step": largest,
                    "uniform_shear_removed_per_nm": round(float(gl.attrs.get("shear_per_nm", float("nan"))), 6)},
        "surface_layer": surface,
    }, gl


def _rms(series) -> float | None:
    a = np.asarray(series, dtype=float)
    a = a[np.isfinite(a)]
    return round(float(np.sqrt(np.mean(a**2))), 6) if a.size else None
