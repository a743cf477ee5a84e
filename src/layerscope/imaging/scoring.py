"""Scoring a column/phase map against simulated ground truth (``layerscope.simulate``).

Used by the tests, ``docs/validation.md`` and the benchmarks; nothing here is needed to analyse
a real image.

Definitions
-----------
- Truth columns are the cation columns of the truth table (``kind`` TM or Li; O columns are not
  reported by ``phases``; the generic finder reports those the image shows, see
  ``anion_columns_ok``). A truth column is *visible* when its expected intensity is at least
  ``visible_fraction`` of the median TM-column intensity (a TM column, a rock-salt or spinel
  Li-layer column, a heavily mixed Li column); only visible columns count for recall.
- Detected columns and truth cation columns are matched one to one (Hungarian assignment on
  pairs closer than ``tolerance_nm``); precision is the share of detected columns matched,
  recall the share of visible truth columns matched, both counted on columns farther than
  ``margin_nm`` from the image edge. With ``anion_columns_ok`` (the generic finder, which reports
  every column the image shows) a detection left unmatched that is matched one to one to a truth O
  column is not false either: at high dose the O columns of some zones read ~0.2 of a TM column
  and are in the image (docs/validation.md, fresh range 7000-7099, draw 7078).
- Position error: 2-D RMS distance (pm) of matched visible pairs.
- Phase: every interior truth cation column (visible or not) is matched to the nearest reported
  site (detected column or placed Li site); the confusion matrix counts truth phase x reported
  phase (``"missing"`` when no site is within the tolerance).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

__all__ = ["ColumnScore", "score_columns", "score_phases", "PhaseScore"]


@dataclass
class ColumnScore:
    """Detection and localisation against truth."""

    recall: float
    precision: float
    rms_pm: float
    median_pm: float
    n_truth_visible: int
    n_detected: int
    n_matched: int
    missed: pd.DataFrame = field(repr=False)
    false: pd.DataFrame = field(repr=False)


@dataclass
class PhaseScore:
    """Per-column phase accuracy against truth."""

    accuracy: float
    per_phase: dict[str, float]
    confusion: pd.DataFrame
    n_truth: int
    n_missing: int
    mixing_fit: dict[str, float]


def _interior(df: pd.DataFrame, extent_nm: tuple[float, float], margin_nm: float) -> np.ndarray:
    w, h = extent_nm
    x, y = df["x_nm"].to_numpy(), df["y_nm"].to_numpy()
    return (x >= margin_nm) & (x <= w - margin_nm) & (y >= margin_nm) & (y <= h - margin_nm)


def _one_to_one(a: np.ndarray, b: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal one-to-one matching of points a to b within ``tol`` (Hungarian on sparse candidates)."""
    if len(a) == 0 or len(b) == 0:
        return np.empty(0, int), np.empty(0, int), np.empty(0)
    tree = cKDTree(b)
    pairs = tree.query_ball_point(a, tol)
    ia = np.repeat(np.arange(len(a)), [len(p) for p in pairs])
    ib = np.concatenate([np.asarray(p, dtype=int) for p in pairs]) if len(ia) else np.empty(0, int)
    if ia.size == 0:
        return np.empty(0, int), np.empty(0, int), np.empty(0)
    d = np.hypot(*(a[ia] - b[ib]).T)
    # Components are tiny (each point has at most a couple of candidates): solve on the dense
    # matrix restricted to the candidates' rows/columns.
    ua, ra = np.unique(ia, return_inverse=True)
    ub, rb = np.unique(ib, return_inverse=True)
    cost = np.full((ua.size, ub.size), 1e6)
    cost[ra, rb] = d
    r, c = linear_sum_assignment(cost)
    ok = cost[r, c] < 1e6
    return ua[r[ok]], ub[c[ok]], cost[r, c][ok]


def score_columns(
    found: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    extent_nm: tuple[float, float],
    tolerance_nm: float = 0.07,
    margin_nm: float = 0.1,
    visible_fraction: float = 0.4,
    anion_columns_ok: bool = False,
) -> ColumnScore:
    """Recall, precision and position error of detected columns against truth.

    Parameters
    ----------
    found : pandas.DataFrame
        ``x_nm, y_nm`` and optionally ``detected`` (only detected rows are scored).
    truth : pandas.DataFrame
        Truth table with ``x_nm, y_nm, kind, expected_intensity``.
    extent_nm : (float, float)
        Image width and height (nm).
    tolerance_nm, margin_nm, visible_fraction : float
        See the module docstring.
    anion_columns_ok : bool
        Detections on truth O columns count as matched for precision (the generic finder; see the module
        docstring). Recall and the position error are over cation columns either way.
    """
    det = found[found["detected"]] if "detected" in found else found
    cat = truth[truth["kind"].isin(["TM", "Li"])]
    if "in_image" in cat:
        cat = cat[cat["in_image"]]
    ref = float(np.median(cat.loc[cat["kind"] == "TM", "expected_intensity"]))
    visible = cat["expected_intensity"].to_numpy() >= visible_fraction * ref
    det_in = _interior(det, extent_nm, margin_nm)
    cat_in = _interior(cat, extent_nm, margin_nm)
    a = det[["x_nm", "y_nm"]].to_numpy()
    b = cat[["x_nm", "y_nm"]].to_numpy()
    # Match everything, then count inside the margins (a column just inside the margin may match
    # a truth column just outside it, and vice versa).
    ia, ib, d = _one_to_one(a, b, tolerance_nm)
    matched_det = np.zeros(len(a), bool)
    matched_det[ia] = True
    if anion_columns_ok:
        matched_det |= _on_anion_columns(a, truth, ~matched_det, tolerance_nm)
    precision = (matched_det & det_in).sum() / max(det_in.sum(), 1)
    vis_in = visible & cat_in
    matched_truth = np.zeros(len(cat), bool)
    matched_truth[ib] = True
    recall = (matched_truth & vis_in).sum() / max(vis_in.sum(), 1)
    keep = visible[ib] & cat_in[ib]
    dv = d[keep]
    false = det[det_in & ~matched_det]
    missed = cat[vis_in & ~matched_truth]
    return ColumnScore(
        recall=float(recall), precision=float(precision),
        rms_pm=float(np.sqrt(np.mean(dv**2)) * 1e3) if dv.size else float("nan"),
        median_pm=float(np.median(dv) * 1e3) if dv.size else float("nan"),
        n_truth_visible=int(vis_in.sum()), n_detected=int(det_in.sum()), n_matched=int((matched_det & det_in).sum()),
        missed=missed, false=false,
    )


def _on_anion_columns(a: np.ndarray, truth: pd.DataFrame, free: np.ndarray, tolerance_nm: float) -> np.ndarray:
    """Per detection of ``a`` (nm): True where it is one of ``free`` and matched one to one to a truth O column in
    the image within ``tolerance_nm``."""
    anions = truth[truth["kind"] == "O"]
    if "in_image" in anions:
        anions = anions[anions["in_image"]]
    out = np.zeros(len(a), bool)
    idx = np.flatnonzero(free)
    if idx.size and len(anions):
        ia = _one_to_one(a[idx], anions[["x_nm", "y_nm"]].to_numpy(), tolerance_nm)[0]
        out[idx[ia]] = True
    return out


def score_phases(
    columns: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    extent_nm: tuple[float, float],
    tolerance_nm: float = 0.07,
    margin_nm: float = 0.3,
) -> PhaseScore:
    """Per-column phase accuracy and the mixing index against truth.

    Parameters
    ----------
    columns : pandas.DataFrame
        The labelled table of :func:`layerscope.imaging.pipeline.map_phases` (``x_nm, y_nm, kind,
        phase, mixing``).
    truth : pandas.DataFrame
        Truth with ``x_nm, y_nm, kind, phase, tm_fraction``.
    extent_nm : (float, float)
        Image width and height (nm).

    Returns
    -------
    PhaseScore
        ``accuracy`` over all interior truth cation columns (missing ones count as wrong),
        ``per_phase`` (recall of each truth phase), the confusion matrix (truth rows x reported
        columns), and ``mixing_fit``: slope, intercept and RMS of the reported mixing of Li-layer
        sites against the truth TM fraction of the column.
    """
    cat = truth[truth["kind"].isin(["TM", "Li"])]
    if "in_image" in cat:
        cat = cat[cat["in_image"]]
    cat = cat[_interior(cat, extent_nm, margin_nm)]
    ia, ib, _ = _one_to_one(cat[["x_nm", "y_nm"]].to_numpy(), columns[["x_nm", "y_nm"]].to_numpy(), tolerance_nm)
    reported = np.full(len(cat), "missing", dtype=object)
    reported[ia] = columns["phase"].to_numpy()[ib]
    truth_phase = cat["phase"].to_numpy()
    confusion = pd.crosstab(pd.Series(truth_phase, name="truth"), pd.Series(reported, name="reported"))
    correct = reported == truth_phase
    per_phase = {ph: float(correct[truth_phase == ph].mean()) for ph in np.unique(truth_phase)}
    # Mixing: Li-layer truth columns matched to Li sites.
    li_t = cat["kind"].to_numpy()[ia] == "Li"
    mix = columns["mixing"].to_numpy(dtype=float)[ib][li_t]
    tmf = cat["tm_fraction"].to_numpy(dtype=float)[ia][li_t]
    ok = np.isfinite(mix)
    fit = {"n": int(ok.sum())}
    if ok.sum() >= 3 and np.ptp(tmf[ok]) > 0:
        slope, intercept = np.polyfit(tmf[ok], mix[ok], 1)
        fit.update(slope=float(slope), intercept=float(intercept),
                   rms=float(np.sqrt(np.mean((mix[ok] - (slope * tmf[ok] + intercept)) ** 2))),
                   rms_vs_truth=float(np.sqrt(np.mean((mix[ok] - tmf[ok]) ** 2))))
    return PhaseScore(accuracy=float(correct.mean()), per_phase=per_phase, confusion=confusion, n_truth=int(len(cat)),
                      n_missing=int((reported == "missing").sum()), mixing_fit=fit)
