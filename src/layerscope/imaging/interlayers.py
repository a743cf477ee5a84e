"""The interlayer map: every gap between two adjacent TM layers, segment by segment along the layer.

A gap (the Li layer between TM layers ``k`` and ``k + 2``) carries two observables of the seed
studies: the stacking step across it (O3, O3' = reversed, O1, or a glide: a registry off all
three) and the filling of its Li layer (the mixing index of its sites: TM in the Li layer).
:func:`interlayer_table` cuts each gap into runs of one step along the layer, and runs longer
than ``max_sites`` into equal segments, and reports for each segment the step, the mean registry
with its standard error, the Li-layer fill with its standard error and a mixing decision
("yes" / "no" / "uncertain": the fill more than two standard errors above / below
``mixing_threshold``, otherwise uncertain). Written as ``interlayers.csv`` by ``layerscope phases``.

The mixing decision's error (with the sites' ``mixing_sem``, the Poisson error of each site's
index from its counts) is the counting error of the segment's mean plus
:data:`MIXING_SYSTEMATIC` (the spread of a clean Li layer's index that counting does not
explain), not the scatter of the sites: the scatter of a mixed segment is mostly the real
column-to-column spread of its TM atoms (5-7 times the counting error at 1e4 e/A^2), which
does not make its mean uncertain. A segment left uncertain takes the decision of the run of
adjacent segments of its Li layer whose fills agree (reduced chi-square <= :data:`POOL_CHI2`),
from their pooled counts (``mixing_sites`` says how many sites decided). Without ``mixing_sem``
the decision uses the scatter of the sites (``li_fill_sem``), as before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from layerscope.imaging.lattice import wrap_half

__all__ = ["interlayer_table", "MIXING_THRESHOLD", "MIXING_SYSTEMATIC", "POOL_CHI2"]

#: Mixing index above which a Li layer holds TM: the Li columns and the O tails give 0.02-0.06
#: (docs/validation.md), a 10 % exchange about 0.1 more.
MIXING_THRESHOLD = 0.1
#: Spread of a clean Li layer's mixing index beyond its counting error (O and probe tails,
#: thickness, channelling: clean layers read 0.02-0.06), added in quadrature to the counting error
#: of every segment's (or pooled run's) mean before the decision. Random draws 0-99: clean
#: segments read 0.016 +- 0.013 above their truth at >= 1e4 e/A^2; 0.01 let one segment of truth
#: fill 0.048 (index 0.122 +- 0.003) be called "yes".
MIXING_SYSTEMATIC = 0.02
#: Adjacent segments of one Li layer pool their counts for the mixing decision while the reduced
#: chi-square of their fills (counting errors and half of :data:`MIXING_SYSTEMATIC`) stays below this.
POOL_CHI2 = 3.0

_COLUMNS = ["li_layer", "upper_tm_layer", "lower_tm_layer", "segment", "n_sites", "u_start_nm", "u_end_nm",
            "x_nm", "y_nm", "step", "registry", "registry_sem", "environment", "li_fill", "li_fill_sem",
            "mixing", "n_sites_mixed", "n_sites_uncertain", "li_fill_count_sem", "mixing_sites"]


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


def _count_sem(mixing: pd.Series, mixing_sem: pd.Series, key: np.ndarray) -> pd.Series:
    """Per segment: counting error of the mean index, ``sqrt(sum sem_i^2) / n`` over the sites with both."""
    m, e = mixing.to_numpy(dtype=float), mixing_sem.to_numpy(dtype=float)
    ok = np.isfinite(m) & np.isfinite(e)
    var = pd.Series(np.where(ok, e * e, np.nan)).groupby(key)
    return np.sqrt(var.sum(min_count=1)) / var.count().where(lambda n: n > 0)


def _pool_runs(fill: np.ndarray, sem: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled fill, counting error and sites of the run each segment of one layer (in order) belongs to.

    Runs grow from the left while the fills agree: the reduced chi-square of the run's fills
    about their inverse-variance mean (errors: counting error and half of :data:`MIXING_SYSTEMATIC`)
    is at most :data:`POOL_CHI2`. A segment without a fill or an error is a run of its own.
    """
    out_f, out_e, out_n = fill.copy(), sem.copy(), n.astype(float).copy()
    ok = np.isfinite(fill) & np.isfinite(sem) & (sem > 0)
    i = 0
    while i < fill.size:
        j = i + 1
        while ok[i] and j < fill.size and ok[j]:
            w = 1.0 / (sem[i:j + 1] ** 2 + (MIXING_SYSTEMATIC / 2) ** 2)
            mean = np.sum(w * fill[i:j + 1]) / w.sum()
            if np.sum(w * (fill[i:j + 1] - mean) ** 2) / (j - i) > POOL_CHI2:
                break
            j += 1
        if j - i > 1:
            w = 1.0 / sem[i:j] ** 2
            out_f[i:j], out_e[i:j], out_n[i:j] = np.sum(w * fill[i:j]) / w.sum(), 1.0 / np.sqrt(w.sum()), n[i:j].sum()
        i = j
    return out_f, out_e, out_n


def _count_decisions(out: pd.DataFrame, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Mixing decision of every segment from its counts, else from its layer's pooled run; sites used.

    Error of a mean: ``sqrt(counting error^2 + MIXING_SYSTEMATIC^2)``. A segment's own decision
    stands where it is not uncertain; an uncertain one takes its run's (:func:`_pool_runs`).
    """
    f, e = out["li_fill"].to_numpy(dtype=float), out["li_fill_count_sem"].to_numpy(dtype=float)
    n = out["n_sites"].to_numpy()
    own = _decide(pd.Series(f), pd.Series(np.hypot(e, MIXING_SYSTEMATIC)), threshold)
    decision, sites = own.copy(), n.astype(float)
    for idx in out.groupby("li_layer", sort=False).indices.values():
        idx = idx[np.argsort(out["u_start_nm"].to_numpy()[idx], kind="stable")]
        pf, pe, pn = _pool_runs(f[idx], e[idx], n[idx])
        pooled = _decide(pd.Series(pf), pd.Series(np.hypot(pe, MIXING_SYSTEMATIC)), threshold)
        use = (own[idx] == "uncertain") & (pooled != "uncertain")
        decision[idx[use]], sites[idx[use]] = pooled[use], pn[use]
    return decision, sites.astype(int)


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
    if "mixing_sem" in li:
        out["li_fill_count_sem"] = _count_sem(li["mixing"], li["mixing_sem"], key).reindex(first.index).to_numpy()
        out["mixing"], out["mixing_sites"] = _count_decisions(out, threshold)
    else:  # no counting errors: the scatter of the sites decides, segment by segment
        out["li_fill_count_sem"] = np.nan
        out["mixing"] = _decide(out["li_fill"], out["li_fill_sem"], threshold)
        out["mixing_sites"] = out["n_sites"]
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
        (mean mixing index and the standard error from the scatter of its sites), ``mixing``
        (yes / no / uncertain; see the module docstring),
        ``n_sites_mixed`` and ``n_sites_uncertain`` (sites whose own ``mixed`` decision, from the
        counts at the site, is "yes" / "uncertain"; see the column table's ``mixing_sem``),
        ``li_fill_count_sem`` (counting error of ``li_fill`` from the sites' ``mixing_sem``) and
        ``mixing_sites`` (sites whose counts took the decision: more than ``n_sites`` where the
        segment's run of its Li layer decided).
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
