"""The interlayer map: every gap between two adjacent TM layers, segment by segment along the layer.

A gap (the Li layer between TM layers ``k`` and ``k + 2``) carries two observables of the seed
studies: the stacking step across it (O3, O3' = reversed, O1, or a glide: a registry off all
three) and the filling of its Li layer (the mixing index of its sites: TM in the Li layer).
:func:`interlayer_table` cuts each gap into runs of one step along the layer, and runs longer
than ``max_sites`` into equal segments, and reports for each segment the step, the mean registry
with its standard error, the Li-layer fill with its standard error and a mixing decision
("yes" / "no" / "uncertain": the fill more than two standard errors above / below
``mixing_threshold``, otherwise uncertain). Written as ``interlayers.csv`` by ``layerscope phases``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from layerscope.imaging.lattice import wrap_half

__all__ = ["interlayer_table", "MIXING_THRESHOLD"]

#: Mixing index above which a Li layer holds TM: the Li columns and the O tails give 0.02-0.06
#: (docs/validation.md), a 10 % exchange about 0.1 more.
MIXING_THRESHOLD = 0.1

_COLUMNS = ["li_layer", "upper_tm_layer", "lower_tm_layer", "segment", "n_sites", "u_start_nm", "u_end_nm",
            "x_nm", "y_nm", "step", "registry", "registry_sem", "environment", "li_fill", "li_fill_sem",
            "mixing", "n_sites_mixed", "n_sites_uncertain"]


def _segments(relation: np.ndarray, max_sites: int) -> np.ndarray:
    """Segment id of each site of one layer (sorted along u): runs of one relation, cut to ``max_sites``."""
    new = np.ones(relation.size, dtype=bool)
    new[1:] = relation[1:] != relation[:-1]
    run = np.cumsum(new) - 1
    seg = np.empty(relation.size, dtype=int)
    next_id = 0
    for r in range(run.max() + 1 if run.size else 0):
        idx = np.nonzero(run == r)[0]
        parts = max(1, int(np.ceil(idx.size / max_sites)))
        seg[idx] = next_id + (np.arange(idx.size) * parts) // idx.size
        next_id += parts
    return seg


def _segment_row(g: pd.DataFrame, layer: int, seg: int, threshold: float) -> dict:
    reg = g["registry"].to_numpy(dtype=float)
    reg = reg[np.isfinite(reg)]
    z = np.exp(2j * np.pi * reg)
    mean_reg = float(wrap_half(np.angle(z.mean()) / (2 * np.pi))) if reg.size else np.nan
    reg_sem = float(np.std(wrap_half(reg - mean_reg)) / np.sqrt(reg.size - 1)) if reg.size > 1 else np.nan
    m = g["mixing"].to_numpy(dtype=float)
    m = m[np.isfinite(m)]
    fill = float(m.mean()) if m.size else np.nan
    sem = float(m.std(ddof=1) / np.sqrt(m.size)) if m.size > 1 else np.nan
    if not np.isfinite(sem):
        decision = "uncertain"
    else:
        decision = "yes" if fill - 2 * sem > threshold else ("no" if fill + 2 * sem < threshold else "uncertain")
    rel = str(g["relation"].iloc[0])
    env = g["environment"].astype(str).replace("", "layered").mode()
    return {
        "li_layer": layer, "upper_tm_layer": layer - 1, "lower_tm_layer": layer + 1, "segment": seg,
        "n_sites": int(len(g)), "u_start_nm": float(g["u_nm"].min()), "u_end_nm": float(g["u_nm"].max()),
        "x_nm": float(g["x_nm"].mean()), "y_nm": float(g["y_nm"].mean()),
        "step": {"off": "glide", "": "unknown"}.get(rel, rel), "registry": mean_reg, "registry_sem": reg_sem,
        "environment": str(env.iloc[0]) if len(env) else "", "li_fill": fill, "li_fill_sem": sem, "mixing": decision,
        "n_sites_mixed": int(np.sum(g["mixed"] == "yes")) if "mixed" in g else 0,
        "n_sites_uncertain": int(np.sum(g["mixed"] == "uncertain")) if "mixed" in g else 0,
    }


def interlayer_table(columns: pd.DataFrame, *, max_sites: int = 8,
                     mixing_threshold: float = MIXING_THRESHOLD) -> pd.DataFrame:
    """Step and Li-layer fill of every TM-TM gap, in segments along the layer.

    Parameters
    ----------
    columns : pandas.DataFrame
        The labelled column table of :func:`layerscope.imaging.pipeline.map_phases` (Li-layer
        sites with ``layer, u_nm, x_nm, y_nm, relation, registry, mixing, environment, site``).
    max_sites : int
        Longest segment (sites along the layer; 8 sites are about 2 nm).
    mixing_threshold : float
        Mixing index that separates a Li layer holding TM from a clean one.

    Returns
    -------
    pandas.DataFrame
        One row per segment: ``li_layer, upper_tm_layer, lower_tm_layer, segment, n_sites,
        u_start_nm, u_end_nm, x_nm, y_nm`` (segment centre), ``step`` (O3, O3', O1, glide,
        unknown), ``registry`` and ``registry_sem`` (TM-TM registry, column spacings),
        ``environment`` (majority: layered, rock_salt, spinel), ``li_fill`` and ``li_fill_sem``
        (mean mixing index and its standard error), ``mixing`` (yes / no / uncertain),
        ``n_sites_mixed`` and ``n_sites_uncertain`` (sites whose own ``mixed`` decision, from the
        counts at the site, is "yes" / "uncertain"; see the column table's ``mixing_sem``).
    """
    li = columns[(columns["kind"] == "Li") & (columns.get("site", "octahedral") == "octahedral")]
    rows = []
    for layer, g in li.groupby("layer", sort=True):
        g = g.sort_values("u_nm", kind="stable")
        rel = g["relation"].fillna("").astype(str).to_numpy()
        seg = _segments(rel, max_sites)
        for s, part in g.groupby(seg, sort=True):
            rows.append(_segment_row(part, int(layer), int(s), mixing_threshold))
    return pd.DataFrame(rows, columns=_COLUMNS)
