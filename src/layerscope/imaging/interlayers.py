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


def _circular_registry(reg: pd.Series, key: np.ndarray) -> tuple[pd.Series, pd.Series]:
    """Per segment: circular mean registry (column spacings, in [-0.5, 0.5)) and its standard error."""
    ok = np.isfinite(reg.to_numpy(dtype=float))
    r = reg.to_numpy(dtype=float)[ok]
    k = key[ok]
    z = pd.DataFrame({"c": np.cos(2 * np.pi * r), "s": np.sin(2 * np.pi * r)}).groupby(k).mean()
    mean = pd.Series(wrap_half(np.arctan2(z["s"], z["c"]) / (2 * np.pi)), index=z.index)
    dev = pd.Series(wrap_half(r - mean.reindex(k).to_numpy()))
    n = dev.groupby(k).size()
    sem = (dev.groupby(k).std(ddof=0) / np.sqrt(n - 1)).where(n > 1)
    return mean, sem


def _fill(mixing: pd.Series, key: np.ndarray) -> tuple[pd.Series, pd.Series]:
    """Per segment: mean mixing index of the sites with one and its standard error (NaN below two)."""
    m = pd.Series(mixing.to_numpy(dtype=float)).where(lambda v: np.isfinite(v))
    g = m.groupby(key)
    n = g.count()
    return g.mean(), (g.std(ddof=1) / np.sqrt(n)).where(n > 1)


def _decide(fill: pd.Series, sem: pd.Series, threshold: float) -> np.ndarray:
    """yes / no / uncertain: the fill two standard errors above / below ``threshold``, else uncertain."""
    f, e = fill.to_numpy(dtype=float), sem.to_numpy(dtype=float)
    out = np.where(f - 2 * e > threshold, "yes", np.where(f + 2 * e < threshold, "no", "uncertain"))
    return np.where(np.isfinite(e), out, "uncertain")


def _majority(values: pd.Series, key: np.ndarray) -> pd.Series:
    """Most common value per segment (ties: the first in sort order, as ``Series.mode``)."""
    counts = pd.DataFrame({"k": key, "v": values.to_numpy()}).value_counts().rename("n").reset_index()
    counts = counts.sort_values(["k", "n", "v"], ascending=[True, False, True], kind="stable")
    return counts.drop_duplicates("k").set_index("k")["v"]


def _segment_rows(li: pd.DataFrame, key: np.ndarray, threshold: float) -> pd.DataFrame:
    """One row per segment ``key`` (sites sorted by layer, then along u) of the interlayer table."""
    g = li.groupby(key, sort=True)
    first = g[["layer", "segment", "relation"]].first()
    reg, reg_sem = _circular_registry(li["registry"], key)
    fill, fill_sem = _fill(li["mixing"], key)
    mixed = li["mixed"].astype(str) if "mixed" in li else pd.Series("", index=li.index)
    layer = first["layer"].astype(int).to_numpy()
    out = pd.DataFrame({
        "li_layer": layer, "upper_tm_layer": layer - 1, "lower_tm_layer": layer + 1,
        "segment": first["segment"].astype(int).to_numpy(), "n_sites": g.size().to_numpy(),
        "u_start_nm": g["u_nm"].min().to_numpy(), "u_end_nm": g["u_nm"].max().to_numpy(),
        "x_nm": g["x_nm"].mean().to_numpy(), "y_nm": g["y_nm"].mean().to_numpy(),
        "step": first["relation"].map(lambda r: {"off": "glide", "": "unknown"}.get(r, r)).to_numpy(),
        "registry": reg.reindex(first.index).to_numpy(), "registry_sem": reg_sem.reindex(first.index).to_numpy(),
        "environment": _majority(li["environment"].astype(str).replace("", "layered"), key).reindex(first.index)
        .to_numpy(),
        "li_fill": fill.reindex(first.index).to_numpy(), "li_fill_sem": fill_sem.reindex(first.index).to_numpy(),
        "n_sites_mixed": (mixed == "yes").groupby(key).sum().reindex(first.index).to_numpy().astype(int),
        "n_sites_uncertain": (mixed == "uncertain").groupby(key).sum().reindex(first.index).to_numpy().astype(int),
    })
    out["mixing"] = _decide(out["li_fill"], out["li_fill_sem"], threshold)
    return out[_COLUMNS]


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
    if li.empty:
        return pd.DataFrame(columns=_COLUMNS)
    li = li.assign(relation=li["relation"].fillna("").astype(str)).sort_values(["layer", "u_nm"], kind="stable")
    li = li.reset_index(drop=True)
    li["segment"] = np.zeros(len(li), dtype=int)
    for _, idx in li.groupby("layer", sort=True).indices.items():
        li.loc[idx, "segment"] = _segments(li["relation"].to_numpy()[idx], max_sites)
    key = pd.MultiIndex.from_arrays([li["layer"], li["segment"]]).factorize(sort=True)[0]
    return _segment_rows(li, key, mixing_threshold)
