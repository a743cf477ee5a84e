"""Phase domains: contiguous regions of one phase, the phase map, and the interfaces between blocks.

- :func:`find_domains` links every column to its neighbours of the same phase (within about one
  and a third lattice spacings) and takes the connected components (scipy.sparse.csgraph) as
  domains: phase, size, the cation and TM layers they span, thickness along the basal normal,
  extent, and for twins whether they are single- or multi-layer.
- :func:`phase_label_image` paints the labels into an image (nearest column within a distance;
  farther pixels are vacuum or a void).
- :func:`twin_like_domains` counts twin-like (O3') and O1 domains from the step sequence of the
  interlayer map (:func:`step_grid`): n consecutive reversed gaps along a position of the layers are
  one domain of n layers; :func:`find_domains` with ``interlayers`` puts them in the domains table.
- :func:`interfaces` walks the layer table down the stack and types every change of phase:
  *abrupt* when the stacking changes from one TM-TM relation to the next, *continuous* when
  relations off every ideal registry (a gradual shear) lie between the two blocks.

References
----------
- Connected components: D. J. Pearce, "An improved algorithm for finding the strongly connected
  components of a directed graph" (2005), as implemented in scipy.sparse.csgraph.
- O1/O3 interfaces in delithiated LiCoO2 seen atom by atom: e.g. Y. Li et al. / the seed studies of
  issue 3; a continuous interface is a gradual change of registry across several layers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from layerscope.imaging.phases import PHASE_LABELS

__all__ = ["find_domains", "phase_label_image", "interfaces", "block_runs", "twin_like_domains", "step_grid",
           "MIN_TWIN_SITES"]


def find_domains(columns: pd.DataFrame, *, inplane_spacing_nm: float, cation_spacing_nm: float,
                 interlayers: pd.DataFrame | None = None) -> pd.DataFrame:
    """Contiguous single-phase regions of the column table.

    Parameters
    ----------
    columns : pandas.DataFrame
        Needs ``x_nm, y_nm, v_nm, kind, layer, phase`` (the table of
        :func:`layerscope.imaging.pipeline.map_phases`).
    inplane_spacing_nm, cation_spacing_nm : float
        Lattice spacings (nm); neighbours are closer than 1.35 x the larger one.

    Returns
    -------
    pandas.DataFrame
        One row per domain, largest first: ``domain, phase, n_columns, n_tm_columns,
        fraction`` (of all columns), ``first_layer, last_layer, n_cation_layers, n_tm_layers,
        thickness_nm`` (extent along the basal normal plus one cation spacing),
        ``x_min_nm, x_max_nm, y_min_nm, y_max_nm``, ``n_tm_layers_labelled`` (TM layers holding
        the domain's columns), ``fragment`` (an O3'/O1 domain of fewer than
        :data:`MIN_DOMAIN_TM_COLUMNS` TM columns) and ``twin_type`` (O3' only: ``"single-layer"``,
        ``"double-layer"``, ``"multilayer"`` or ``"fragment"``). For O3' and O1 domains ``n_tm_layers`` is the number of the
        domain's TM-TM steps with that stacking (a twin-like domain of n layers = n consecutive
        reversed steps, as the seed studies count them); for the other phases the TM layers
        holding its columns. The table also gets a ``domain`` column in ``columns`` (in place).

    With ``interlayers`` (:func:`layerscope.imaging.interlayers.interlayer_table`), the O3' rows
    are the twin-like domains of the step sequence instead (:func:`twin_like_domains`: runs of
    consecutive reversed gaps along each position of the layers, whatever the per-column labels;
    ``fragment`` when the run is at full depth along fewer than :data:`MIN_TWIN_SITES` sites); their
    ``n_columns`` counts the Li-layer sites of the reversed gaps and the O3' TM columns beside them.
    In ``columns`` the O3'-labelled columns take the id of their twin-like domain (-1 outside every
    one); a site of a reversed gap labelled otherwise (O1 next to an O1 block) keeps its own domain.
    """
    pts = columns[["x_nm", "y_nm"]].to_numpy()
    phase = columns["phase"].to_numpy()
    radius = 1.35 * max(inplane_spacing_nm, cation_spacing_nm)
    pairs = cKDTree(pts).query_pairs(radius, output_type="ndarray")
    same = phase[pairs[:, 0]] == phase[pairs[:, 1]] if len(pairs) else np.zeros(0, bool)
    pairs = pairs[same]
    n = len(pts)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    n_dom, label = connected_components(graph, directed=False)
    columns["domain"] = label
    tm = (columns["kind"] == "TM").to_numpy()
    layer = columns["layer"].to_numpy()
    v = columns["v_nm"].to_numpy()
    x = columns["x_nm"].to_numpy()
    y = columns["y_nm"].to_numpy()
    size = np.bincount(label, minlength=n_dom)

    def ext(values, func, init):
        out = np.full(n_dom, init, dtype=float)
        func.at(out, label, values)
        return out

    first = ext(layer, np.minimum, np.inf)
    last = ext(layer, np.maximum, -np.inf)
    tm_pairs = np.unique(np.column_stack([label[tm], layer[tm]]), axis=0) if tm.any() else np.empty((0, 2), int)
    n_tm_layers = np.bincount(tm_pairs[:, 0], minlength=n_dom) if len(tm_pairs) else np.zeros(n_dom, int)
    dom_phase = np.empty(n_dom, dtype=object)
    dom_phase[label] = phase
    table = pd.DataFrame({
        "domain": np.arange(n_dom),
        "phase": dom_phase.astype(str),
        "n_columns": size,
        "n_tm_columns": np.bincount(label, weights=tm.astype(float), minlength=n_dom).astype(int),
        "fraction": size / max(n, 1),
        "first_layer": first.astype(int),
        "last_layer": last.astype(int),
        "n_cation_layers": (last - first + 1).astype(int),
        "n_tm_layers": n_tm_layers.astype(int),
        "thickness_nm": ext(v, np.maximum, -np.inf) - ext(v, np.minimum, np.inf) + cation_spacing_nm,
        "x_min_nm": ext(x, np.minimum, np.inf),
        "x_max_nm": ext(x, np.maximum, -np.inf),
        "y_min_nm": ext(y, np.minimum, np.inf),
        "y_max_nm": ext(y, np.maximum, -np.inf),
    })
    steps = _stacking_steps(columns, label, n_dom)
    table["n_tm_layers_labelled"] = table["n_tm_layers"]
    stacked = table["phase"].isin(list(STEP_PHASES)).to_numpy()
    table.loc[stacked, "n_tm_layers"] = steps[stacked]
    table["fragment"] = stacked & (table["n_tm_columns"].to_numpy() < MIN_DOMAIN_TM_COLUMNS)
    table["twin_type"] = np.where(table["phase"] == "O3'", pd.Series(table["n_tm_layers"]).map(_twin_type), "")
    table.loc[table["fragment"] & (table["phase"] == "O3'"), "twin_type"] = "fragment"
    if interlayers is not None and "u_nm" in columns:
        table = _rows_from_steps(table, columns, interlayers, label, inplane_spacing_nm=inplane_spacing_nm,
                                 cation_spacing_nm=cation_spacing_nm)
    return table.sort_values("n_columns", ascending=False, kind="stable").reset_index(drop=True)


def _rows_from_steps(table: pd.DataFrame, columns: pd.DataFrame, interlayers: pd.DataFrame, label: np.ndarray, *,
                     inplane_spacing_nm: float, cation_spacing_nm: float) -> pd.DataFrame:
    """Replace the O3' and O1 component rows by the runs of the step sequence; relabel ``columns["domain"]``."""
    phase = columns["phase"].to_numpy()
    domain = np.asarray(label).copy()
    parts = [table[~table["phase"].isin(list(STEP_PHASES))]]
    next_id = int(len(table))
    grid = step_grid(interlayers, inplane_spacing_nm=inplane_spacing_nm)
    for ph in STEP_PHASES:
        rows, ids = _step_rows(columns, interlayers, ph, label, inplane_spacing_nm=inplane_spacing_nm,
                               cation_spacing_nm=cation_spacing_nm, first_id=next_id, grid=grid)
        domain = np.where(phase == ph, ids, domain)
        next_id += len(rows)
        if len(rows):
            parts.append(rows.astype(table.dtypes.to_dict()))
    columns["domain"] = domain
    return pd.concat(parts, ignore_index=True)


#: An O3' or O1 domain with fewer TM columns is a ``fragment`` (a step misread at a layer's end
#: at low dose: 2-column O3' fragments at 5e2-1e3 e/A^2 on 4 nm fields), not counted as a domain.
MIN_DOMAIN_TM_COLUMNS = 3

#: Phases counted by their TM-TM steps: the relation that makes each step one of the domain's.
STEP_PHASES = {"O3'": "O3'", "O1": "O1"}


def _twin_type(n: int) -> str:
    return {0: "", 1: "single-layer", 2: "double-layer"}.get(int(n), "multilayer")


def _stacking_steps(columns: pd.DataFrame, label: np.ndarray, n_dom: int) -> np.ndarray:
    """Distinct TM-TM steps of each domain's stacking relation (0 without relations).

    A TM column of layer ``k`` in an O3' (O1) domain contributes its step down (``k -> k + 2``)
    when that relation is twin-like (O1) and its step up (``k - 2 -> k``) likewise; the domain's
    count is the number of distinct steps, i.e. of layers its stacking spans, as the seed studies
    count twin-like domains (a single-layer domain is one reversed step).
    """
    out = np.zeros(n_dom, dtype=int)
    if "relation" not in columns or "relation_up" not in columns:
        return out
    tm = (columns["kind"] == "TM").to_numpy()
    phase = columns["phase"].to_numpy()
    layer = columns["layer"].to_numpy()
    down = columns["relation"].fillna("").to_numpy().astype(str)
    up = columns["relation_up"].fillna("").to_numpy().astype(str)
    for ph, rel in STEP_PHASES.items():
        sel = tm & (phase == ph)
        ids = np.concatenate([np.column_stack([label[sel & (down == rel)], layer[sel & (down == rel)]]),
                              np.column_stack([label[sel & (up == rel)], layer[sel & (up == rel)] - 2])])
        if len(ids):
            uniq = np.unique(ids, axis=0)
            out += np.bincount(uniq[:, 0], minlength=n_dom)
    return out


def phase_label_image(
    columns: pd.DataFrame, *, shape: tuple[int, int], pixel_size_nm: float, max_distance_nm: float,
    max_side: int = 768,
) -> tuple[np.ndarray, float]:
    """Phase of the nearest column at every pixel of a (possibly coarser) grid.

    Parameters
    ----------
    columns : pandas.DataFrame
        ``x_nm, y_nm, phase``.
    shape : (int, int)
        Image shape.
    pixel_size_nm : float
        Image pixel size (nm).
    max_distance_nm : float
        Pixels farther than this from every column are 0 (vacuum, void).
    max_side : int
        The map has at most this many pixels along its longer side.

    Returns
    -------
    labels : numpy.ndarray of uint8
        0 = no material, ``1 + PHASE_LABELS.index(phase)`` otherwise.
    map_pixel_nm : float
        Pixel size of the map (nm).
    """
    step = max(1, int(np.ceil(max(shape) / max_side)), int(0.03 // pixel_size_nm))
    ny, nx = -(-shape[0] // step), -(-shape[1] // step)
    p = pixel_size_nm * step
    # Nearest column by a Euclidean distance transform from the columns' pixels (O(pixels)).
    code = columns["phase"].map({ph: i + 1 for i, ph in enumerate(PHASE_LABELS)}).fillna(0).to_numpy(np.uint8)
    r = np.clip((columns["y_nm"].to_numpy() / p).astype(int), 0, ny - 1)
    c = np.clip((columns["x_nm"].to_numpy() / p).astype(int), 0, nx - 1)
    seeds = np.zeros((ny, nx), dtype=np.uint8)
    has = np.zeros((ny, nx), dtype=bool)
    seeds[r, c] = np.maximum(code, 1)  # an unlabelled column still marks material
    has[r, c] = True
    dist, (ir, ic) = ndimage.distance_transform_edt(~has, return_indices=True)
    labels = seeds[ir, ic]
    labels[dist * p > max_distance_nm] = 0
    return labels, p


def block_runs(layers: pd.DataFrame) -> pd.DataFrame:
    """Runs of consecutive TM layers with the same majority phase, down the stack.

    Parameters
    ----------
    layers : pandas.DataFrame
        The layer table (:func:`layerscope.imaging.quantities.layer_table`): ``layer, kind,
        phase, v_nm``.

    Returns
    -------
    pandas.DataFrame
        ``phase, first_layer, last_layer, n_tm_layers, v_top_nm, v_bottom_nm``.
    """
    tm = layers[layers["kind"] == "TM"].sort_values("layer")
    runs = []
    for layer, phase, v in zip(tm["layer"].to_numpy(), tm["phase"].to_numpy(), tm["v_nm"].to_numpy()):
        if runs and runs[-1]["phase"] == phase and layer - runs[-1]["last_layer"] == 2:
            runs[-1]["last_layer"] = int(layer)
            runs[-1]["n_tm_layers"] += 1
            runs[-1]["v_bottom_nm"] = float(v)
        else:
            runs.append({"phase": phase, "first_layer": int(layer), "last_layer": int(layer),
                         "n_tm_layers": 1, "v_top_nm": float(v), "v_bottom_nm": float(v)})
    return pd.DataFrame(runs, columns=["phase", "first_layer", "last_layer", "n_tm_layers", "v_top_nm", "v_bottom_nm"])


def interfaces(layers: pd.DataFrame) -> pd.DataFrame:
    """Interfaces between successive blocks of the stack, typed abrupt or continuous.

    The TM layers are grouped into runs of one phase (:func:`block_runs`). Between two runs, the
    TM-TM relations from the last layer of the upper run to the first of the lower one, and the
    contiguous ``"off"`` relations just above them, are examined: if any is ``"off"`` (registry
    away from O3, O3' and O1 by more than the classification tolerance), the change of stacking
    is spread over those layers and the interface is *continuous*; otherwise it is *abrupt*.

    Parameters
    ----------
    layers : pandas.DataFrame
        The layer table: ``layer, kind, phase, v_nm, relation, registry``.

    Returns
    -------
    pandas.DataFrame
        ``upper_phase, lower_phase, upper_last_layer, lower_first_layer, y_interface_nm``
        (normal coordinate, midway), ``type`` (abrupt/continuous), ``transition_layers``
        (number of off-registry relations), ``registry_change`` (mean registry below minus above,
        column spacings).
    """
    runs = block_runs(layers)
    tm = layers[layers["kind"] == "TM"].set_index("layer")
    rows = []
    for i in range(len(runs) - 1):
        up, lo = runs.iloc[i], runs.iloc[i + 1]
        span = tm.loc[(tm.index >= up["last_layer"]) & (tm.index < lo["first_layer"])]
        n_off = int((span["relation"] == "off").sum())
        # Off-registry relations just above the interface belong to the transition too (their
        # layers read as the upper phase): count them walking up from the upper run's last layer.
        k = int(up["last_layer"]) - 2
        while k in tm.index and k >= int(up["first_layer"]) and tm.loc[k, "relation"] == "off":
            n_off += 1
            k -= 2
        reg_up = tm.loc[up["last_layer"], "registry"] if up["last_layer"] in tm.index else np.nan
        reg_lo = tm.loc[lo["first_layer"], "registry"] if lo["first_layer"] in tm.index else np.nan
        rows.append({
            "upper_phase": up["phase"],
            "lower_phase": lo["phase"],
            "upper_last_layer": int(up["last_layer"]),
            "lower_first_layer": int(lo["first_layer"]),
            "v_interface_nm": 0.5 * (float(up["v_bottom_nm"]) + float(lo["v_top_nm"])),
            "type": "continuous" if n_off > 0 else "abrupt",
            "transition_layers": n_off,
            "registry_change": float(reg_lo - reg_up) if np.isfinite(reg_up) and np.isfinite(reg_lo) else np.nan,
        })
    return pd.DataFrame(rows, columns=["upper_phase", "lower_phase", "upper_last_layer", "lower_first_layer",
                                       "v_interface_nm", "type", "transition_layers", "registry_change"])


#: A twin-like domain counts when each of its reversed gaps runs along at least this many Li-layer
#: sites (the draws' truth counts a run only when each of its TM layers shows 8 columns); a shorter
#: one is reported with ``fragment`` true and ``twin_type`` "fragment".
MIN_TWIN_SITES = 8

#: Steps of the interlayer map that say nothing about the stacking (no material, no reading).
_MISSING = ("unknown", "")


def step_grid(interlayers: pd.DataFrame, *, inplane_spacing_nm: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The interlayer map as a grid of steps: one row per gap (Li layer), one cell per site along u.

    Each gap's cells from its first to its last segment take the step of the segment over them;
    cells with no reading (a void, a crack, an ``unknown`` segment) take the step on both sides
    when the two agree, the only one when the gap ends there, and stay ``""`` otherwise. Pieces of a
    gap with the same step separated only by missing material thus join.

    Parameters
    ----------
    interlayers : pandas.DataFrame
        :func:`layerscope.imaging.interlayers.interlayer_table` (``li_layer, u_start_nm, u_end_nm, step``).
    inplane_spacing_nm : float
        Site spacing along the layers (nm): the cell width.

    Returns
    -------
    grid : numpy.ndarray of str, shape (n_gaps, n_cells)
        Rows are Li layers ``li_layers[0], li_layers[0] + 2, ...`` (a gap absent from the table is an
        empty row); ``""`` = no material or no reading.
    li_layers : numpy.ndarray of int
        The Li layer of each row.
    u0_nm : float
        ``u`` of the first cell's centre (nm).
    """
    known = interlayers.dropna(subset=["u_start_nm", "u_end_nm"])
    if known.empty:
        return np.zeros((0, 0), dtype="<U7"), np.zeros(0, int), 0.0
    li = known["li_layer"].to_numpy(int)
    rows = np.arange(li.min(), li.max() + 1, 2)
    u0, d = float(known["u_start_nm"].min()), float(inplane_spacing_nm)
    n_cells = int(np.floor((float(known["u_end_nm"].max()) - u0) / d + 0.5)) + 1
    grid = np.full((rows.size, n_cells), "", dtype="<U7")
    raw = np.zeros(grid.shape, dtype=bool)
    order = np.argsort(known["n_sites"].to_numpy(), kind="stable")  # longer segments painted last win
    r = ((li - rows[0]) // 2)[order]
    a = np.floor((known["u_start_nm"].to_numpy(float) - u0) / d + 0.5).astype(int)[order]
    b = np.floor((known["u_end_nm"].to_numpy(float) - u0) / d + 0.5).astype(int)[order]
    step = known["step"].fillna("").astype(str).to_numpy()[order]
    step = np.where(np.isin(step, _MISSING), "", step)
    length = np.maximum(b - a + 1, 1)
    cell = np.repeat(a - np.cumsum(length) + length, length) + np.arange(length.sum())  # a .. b of each
    flat = np.repeat(r, length) * n_cells + cell
    _, last = np.unique(flat[::-1], return_index=True)  # a cell painted twice keeps the later (longer) segment
    keep = flat.size - 1 - last
    grid.flat[flat[keep]] = np.repeat(step, length)[keep]
    raw.flat[flat[keep]] = True
    for r in range(rows.size):
        grid[r] = _fill_gap_row(grid[r], raw[r])
    return grid, rows, u0


def _fill_gap_row(row: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Fill the unread cells of one gap between its first and last read cell (see :func:`step_grid`)."""
    out = row.copy()
    read = np.nonzero(out != "")[0]
    if read.size == 0:
        return out
    out[read] = _smooth_short_runs(out[read])
    span = np.arange(read[0], read[-1] + 1)
    left = read[np.clip(np.searchsorted(read, span, side="right") - 1, 0, read.size - 1)]
    right = read[np.clip(np.searchsorted(read, span, side="left"), 0, read.size - 1)]
    agree = out[left] == out[right]
    out[span] = np.where(out[span] != "", out[span], np.where(agree, out[left], ""))
    # unread cells at the ends of the gap's material (an unknown segment there) take the nearest step
    ends = np.nonzero(covered & (out == ""))[0]
    ends = ends[(ends < read[0]) | (ends > read[-1])]
    out[ends] = np.where(ends < read[0], out[read[0]], out[read[-1]])
    return out


#: A run of one step along a gap at most this many sites long, between two cells of one other step,
#: is read as that step (a misread or a local swap of two gaps' readings at a void's edge).
SHORT_RUN_SITES = 2


def _smooth_short_runs(row: np.ndarray) -> np.ndarray:
    """Replace runs of at most :data:`SHORT_RUN_SITES` cells flanked by one other step on both sides.

    ``row`` holds the read cells of one gap in order along u (unread cells left out).
    """
    out = row.copy()
    if out.size < 3:
        return out
    new = np.ones(out.size, dtype=bool)
    new[1:] = out[1:] != out[:-1]
    starts = np.nonzero(new)[0]
    ends = np.append(starts[1:], out.size)
    for i in range(1, starts.size - 1):
        a, b = starts[i], ends[i]
        left, right = row[a - 1], row[b]
        if b - a <= SHORT_RUN_SITES and left == right:
            out[a:b] = left
    return out


def _closed(grid: np.ndarray, member: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Which grid columns ``cols`` hold the component as one block with a read step above and below it."""
    h = member.shape[0]
    sub = member[:, cols]
    top = np.argmax(sub, axis=0)
    bottom = h - 1 - np.argmax(sub[::-1], axis=0)
    whole = (bottom - top + 1) == sub.sum(axis=0)
    inside = (top > 0) & (bottom < h - 1)
    above = grid[np.clip(top - 1, 0, h - 1), cols] != ""
    below = grid[np.clip(bottom + 1, 0, h - 1), cols] != ""
    return whole & inside & above & below


def _runs_of_component(grid: np.ndarray, member: np.ndarray) -> tuple[int, int, np.ndarray]:
    """Steps ``n`` of one component of the step grid, its top row and the cells (columns) where it is n deep.

    ``n`` is the most common number of the component's cells per grid column (ties: the larger),
    i.e. how many consecutive gaps the run spans at most positions along the layers, counted where
    the run is closed (a read step above and below it: not cut by missing material) if it is
    anywhere.
    """
    depth = member.sum(axis=0)
    cols = np.nonzero(depth)[0]
    closed = cols[_closed(grid, member, cols)]
    values, counts = np.unique(depth[closed if closed.size else cols], return_counts=True)
    n = int(values[counts == counts.max()].max())
    full = cols[depth[cols] == n]
    tops = np.argmax(member[:, full], axis=0)
    t_values, t_counts = np.unique(tops, return_counts=True)
    return n, int(t_values[np.argmax(t_counts)]), full


def twin_like_domains(interlayers: pd.DataFrame, *, inplane_spacing_nm: float, step: str = "O3'",
                      min_sites: int = MIN_TWIN_SITES,
                      grid: tuple[np.ndarray, np.ndarray, float] | None = None,
                      ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, float]:
    """Domains of consecutive ``step`` gaps (twin-like domains for O3') from the interlayer map.

    Along each position of the layers, ``n`` consecutive reversed gaps are one twin-like domain of
    ``n`` layers (the seed studies' count), whatever the per-column phase labels say (a reversed
    step next to an O1 block is its own domain). The cells of :func:`step_grid` with ``step`` are
    joined across consecutive gaps and along each gap (4-neighbours); pieces split only by missing
    material (void, crack, unknown segment) are one domain, since :func:`step_grid` fills them.

    Parameters
    ----------
    interlayers : pandas.DataFrame
        :func:`layerscope.imaging.interlayers.interlayer_table`.
    inplane_spacing_nm : float
        Site spacing along the layers (nm).
    step : str
        The step whose runs make the domains (``"O3'"``; ``"O1"`` for O1 blocks).
    min_sites : int
        A domain whose full depth runs along fewer sites is a ``fragment``.
    grid : tuple, optional
        :func:`step_grid` of ``interlayers`` when already made.

    Returns
    -------
    table : pandas.DataFrame
        One row per domain, top first: ``first_gap, last_gap`` (Li layers), ``n_tm_layers`` (steps),
        ``n_sites_along`` (sites along the layers where it is ``n_tm_layers`` deep), ``u_start_nm,
        u_end_nm``, ``fragment``, ``twin_type``.
    labels, li_layers, u0_nm
        The component of every grid cell (0 = none; row ``i`` = table row ``i - 1``), the Li layer of each
        grid row and the first cell's ``u`` (nm).
    """
    cols = ["first_gap", "last_gap", "n_tm_layers", "n_sites_along", "u_start_nm", "u_end_nm", "fragment",
            "twin_type"]
    grid, li_layers, u0 = grid or step_grid(interlayers, inplane_spacing_nm=inplane_spacing_nm)
    labels, n_comp = ndimage.label(grid == step) if grid.size else (np.zeros(grid.shape, int), 0)
    rows = []
    for c, (rs, cs) in enumerate(ndimage.find_objects(labels) if n_comp else [], start=1):
        r0, r1 = max(rs.start - 1, 0), min(rs.stop + 1, grid.shape[0])  # the rows around it decide "closed"
        member = labels[r0:r1, cs] == c
        n, top, full = _runs_of_component(grid[r0:r1, cs], member)
        top, full = top + r0, full + cs.start
        along = np.nonzero(member.any(axis=0))[0] + cs.start
        rows.append({"first_gap": int(li_layers[top]), "last_gap": int(li_layers[top] + 2 * (n - 1)),
                     "n_tm_layers": n, "n_sites_along": int(full.size),
                     "u_start_nm": u0 + along[0] * inplane_spacing_nm, "u_end_nm": u0 + along[-1] * inplane_spacing_nm,
                     "fragment": bool(full.size < min_sites)})
    table = pd.DataFrame(rows, columns=cols[:-1])
    table["twin_type"] = [("fragment" if f else _twin_type(n)) if step == "O3'" else ""
                          for n, f in zip(table["n_tm_layers"], table["fragment"])]
    return table[cols], labels, li_layers, u0


def _cell_labels(columns: pd.DataFrame, labels: np.ndarray, li_layers: np.ndarray, u0_nm: float,
                 d_nm: float, layer_offset: int) -> np.ndarray:
    """Component (0 = none) of the grid cell of gap ``layer + layer_offset`` at each column's u."""
    out = np.zeros(len(columns), dtype=int)
    if labels.size == 0:
        return out
    r = (columns["layer"].to_numpy(int) + layer_offset - li_layers[0]) // 2
    j = np.floor((columns["u_nm"].to_numpy(float) - u0_nm) / d_nm + 0.5)
    ok = (r >= 0) & (r < labels.shape[0]) & np.isfinite(j) & (j >= 0) & (j < labels.shape[1])
    out[ok] = labels[r[ok], j[ok].astype(int)]
    return out


def _step_rows(columns: pd.DataFrame, interlayers: pd.DataFrame, phase: str, label: np.ndarray, *,
               inplane_spacing_nm: float, cation_spacing_nm: float, first_id: int,
               grid: tuple[np.ndarray, np.ndarray, float] | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Rows of the domains table for the runs of ``phase`` steps (:func:`twin_like_domains`), and each column's domain.

    A domain's columns are the Li-layer sites of its gaps and the ``phase``-labelled TM columns
    beside them; the returned array holds the domain id of each column (-1 elsewhere). An O3'
    domain spans the TM layers around its gaps; an O1 domain the layers and extent of the O1 column
    components (``label``) that its columns belong to (the block as labelled column by column), those
    around its gaps where it has no O1-labelled column.
    """
    table, labels, li_layers, u0 = twin_like_domains(interlayers, inplane_spacing_nm=inplane_spacing_nm, step=phase,
                                                     grid=grid)
    is_li = (columns["kind"] == "Li").to_numpy()
    comp = np.where(is_li, _cell_labels(columns, labels, li_layers, u0, inplane_spacing_nm, 0), 0)
    above = _cell_labels(columns, labels, li_layers, u0, inplane_spacing_nm, -1)
    below = _cell_labels(columns, labels, li_layers, u0, inplane_spacing_nm, 1)
    labelled = columns["phase"].to_numpy() == phase
    comp = np.where(~is_li & labelled, np.where(above > 0, above, below), comp)
    x, y, v = (columns[c].to_numpy(float) for c in ("x_nm", "y_nm", "v_nm"))
    layer = columns["layer"].to_numpy(int)
    rows, ids = [], np.full(len(columns), -1)
    for i, td in enumerate(table.itertuples(), start=1):
        sel = comp == i
        span = np.isin(label, np.unique(label[sel & labelled])) & labelled \
            if phase == "O1" and (sel & labelled).any() else None
        first, last = (int(layer[span].min()), int(layer[span].max())) if span is not None else \
            (td.first_gap - 1, td.last_gap + 1)
        geo = span if span is not None else sel

        def ext(a, f, m=geo):
            return float(f(a[m])) if m.any() else np.nan

        rows.append({
            "domain": first_id + i - 1, "phase": phase, "n_columns": int(geo.sum()),
            "n_tm_columns": int((geo & ~is_li).sum()), "fraction": float(geo.sum()) / max(len(columns), 1),
            "first_layer": first, "last_layer": last, "n_cation_layers": last - first + 1,
            "n_tm_layers": td.n_tm_layers, "thickness_nm": ext(v, np.max) - ext(v, np.min) + cation_spacing_nm,
            "x_min_nm": ext(x, np.min), "x_max_nm": ext(x, np.max), "y_min_nm": ext(y, np.min),
            "y_max_nm": ext(y, np.max), "n_tm_layers_labelled": int(np.unique(layer[geo & ~is_li]).size),
            "fragment": td.fragment, "twin_type": td.twin_type})
        ids[geo] = first_id + i - 1
    return pd.DataFrame(rows), ids
