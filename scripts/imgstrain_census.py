#!/usr/bin/env python
"""Census of the reported TM-layer spacing, in-plane spacing and strain against the draw's truth (issue 19, imgstrain).

Per cached draw (``scripts/imgfresh_cached_draws.py run`` with its cache: the ``phases`` column table after
``map_phases`` and the truth) and per phase block type present (O3, O3', O1, rock salt, spinel, C2/m), the reported
median spacings: ``tm_spacing_nm`` of the TM columns of that label (``rep_spacing_nm``, the summary's
``tm_layer_spacing_nm`` before ``quantities.SPACING_BY_STACKING``), the summary's now
(:func:`layerscope.imaging.quantities.stacking_spacings`, ``rep_stack_spacing_nm``) and ``inplane_nm``
(``summary["inplane_spacing_nm"]``) against the truth's *apparent* values (nm, pm, %): the truth's TM sites at their positions
in the degraded image (scan drift, flyback and jitter included), projected on the truth's fitted layer normal
(:func:`imgperiod_census.plane_fit`); each TM site's spacing is the normal distance to the TM site of the next TM
layer nearest along the layer (within 0.6 column spacings), counted for the phase of the truth's Li-layer site between
them (the gap's phase; C2/m counts as O3, the pipeline's label for it); the in-plane spacing is the distance to the next TM site of the layer
(0.5-1.5 column spacings, as :func:`layerscope.imaging.quantities.add_spacings`), counted for the site's phase.
``matched_err_pm``: the median over the reported TM columns whose column and partner match truth sites of the
reported minus the truth pair's spacing, by the truth gap's phase (the per-column accuracy, labels aside).

Per draw also: the strain of O1 against the reference (the O3 median, or the material's when under 20 O3 columns)
against the truth's O1 / O3 ratio, and in O3 the per-column spread (robust SD, 1.4826 MAD) of ``strain_normal``
against (a) the truth's own per-site spread (the apparent lattice's jitter and flyback), (b) the spread expected
from counting noise, ``sqrt(2) * sigma_pos / spacing`` with ``sigma_pos`` the columns' median ``position_error_pm``
(1 sigma per axis from the fit), combined with (a), and (c) the measured per-column error: each reported O3 TM
column and its partner matched to the nearest truth TM sites (within 0.07 nm), the reported spacing minus the
truth pair's::

    PYTHONPATH=$PWD/src .venv/bin/python scripts/imgstrain_census.py run --cache DIR --out-blocks CSV --out-draws CSV
    PYTHONPATH=$PWD/src .venv/bin/python scripts/imgstrain_census.py summary --blocks CSV [CSV ...] --draws CSV [...]
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parent))

from imgperiod_census import plane_fit  # noqa: E402

from layerscope.imaging.quantities import stacking_spacings  # noqa: E402

#: Probe FWHM (nm) from which a draw counts as wide-probe.
WIDE_PROBE_NM = 0.13
#: A reported column belongs to the nearest truth TM site within this distance (nm; the validator's MATCH_NM).
MATCH_NM = 0.07
#: Truth phases the pipeline reports under another label (for the label-based rows).
TRUTH_AS = {"C2/m": "O3"}


def robust_sd(a: np.ndarray) -> float:
    a = np.asarray(a, float)
    a = a[np.isfinite(a)]
    return float(1.4826 * np.median(np.abs(a - np.median(a)))) if a.size >= 5 else float("nan")


def truth_pairs(tm: pd.DataFrame, li: pd.DataFrame, normal: np.ndarray, d_t: float) -> pd.DataFrame:
    """Per truth TM site: ``u, v`` (nm, along the layer and the normal), ``spacing_nm`` (normal distance to the
    nearest-along-the-layer TM site of the next TM layer towards +v), ``gap_phase`` (the phase of the Li-layer site
    between them nearest along the layer: the phase whose spacing it is) and ``inplane_nm`` (to the next site along
    +u in its layer, 0.5-1.5 ``d_t``)."""
    t_dir = np.array([normal[1], -normal[0]])
    li_u = pd.DataFrame({"layer": li["layer"].to_numpy(), "u": li[["x_nm", "y_nm"]].to_numpy() @ t_dir,
                         "phase": li["phase"].to_numpy()})
    li_groups = {k: g for k, g in li_u.groupby("layer")}
    xy = tm[["x_nm", "y_nm"]].to_numpy()
    out = pd.DataFrame({"phase": tm["phase"].to_numpy(), "layer": tm["layer"].to_numpy(),
                        "u": xy @ np.array([normal[1], -normal[0]]), "v": xy @ normal,
                        "x_nm": xy[:, 0], "y_nm": xy[:, 1]})
    means = out.groupby("layer")["v"].mean()
    step = 2 if np.corrcoef(means.index, means.to_numpy())[0, 1] > 0 else -2
    out["spacing_nm"] = np.nan
    out["partner"] = -1
    out["gap_phase"] = ""
    out["inplane_nm"] = np.nan
    groups = {k: g for k, g in out.groupby("layer")}
    for k, g in groups.items():
        order = g.sort_values("u")
        du = np.diff(order["u"].to_numpy())
        good = (du > 0.5 * d_t) & (du < 1.5 * d_t)
        out.loc[order.index[:-1][good], "inplane_nm"] = du[good]
        nxt = groups.get(k + step)
        if nxt is None:
            continue
        un = nxt["u"].to_numpy()
        j = np.abs(g["u"].to_numpy()[:, None] - un[None, :]).argmin(axis=1)
        ok = np.abs(g["u"].to_numpy() - un[j]) < 0.6 * d_t
        out.loc[g.index[ok], "spacing_nm"] = nxt["v"].to_numpy()[j[ok]] - g["v"].to_numpy()[ok]
        out.loc[g.index[ok], "partner"] = nxt.index[j[ok]]
        gap = li_groups.get(k + step // 2)
        if gap is not None:
            jg = np.abs(g["u"].to_numpy()[:, None] - gap["u"].to_numpy()[None, :]).argmin(axis=1)
            out.loc[g.index[ok], "gap_phase"] = gap["phase"].to_numpy()[jg[ok]]
    return out


def reported_reference(tm: pd.DataFrame) -> tuple[float, float, str]:
    """The strain reference as :func:`layerscope.imaging.quantities.quantities` takes it (nm) and its source."""
    o3 = tm[tm["phase"] == "O3"]
    if o3["tm_spacing_nm"].notna().sum() >= 20 and o3["inplane_nm"].notna().sum() >= 20:
        return float(o3["tm_spacing_nm"].median()), float(o3["inplane_nm"].median()), "image"
    s = tm["tm_spacing_nm"] / (1 + tm["strain_normal"])
    t = tm["inplane_nm"] / (1 + tm["strain_inplane"])
    return float(s.median()), float(t.median()), "material"


def matched_pairs(tm: pd.DataFrame, cols: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """The reported TM columns with a spacing whose column and partner match (within :data:`MATCH_NM`) a truth TM
    site and its partner: ``phase`` (reported), ``truth_phase``, ``rep_nm`` and ``truth_nm`` (the pair's spacing)."""
    tree = cKDTree(truth[["x_nm", "y_nm"]].to_numpy())
    li = cols[(cols["kind"] == "Li") & (cols["above"] >= 0) & (cols["below"] >= 0)]
    partner = pd.Series(li["below"].to_numpy().astype(int), index=li["above"].to_numpy().astype(int))
    partner = partner[~partner.index.duplicated(keep="last")]
    sel = tm[tm["tm_spacing_nm"].notna() & tm.index.isin(partner.index)]
    if sel.empty:
        return pd.DataFrame(columns=["phase", "truth_phase", "rep_nm", "truth_nm"])
    da, ia = tree.query(sel[["x_nm", "y_nm"]].to_numpy())
    db, ib = tree.query(cols.loc[partner[sel.index].to_numpy(), ["x_nm", "y_nm"]].to_numpy())
    tv = truth["v"].to_numpy()
    ok = (da < MATCH_NM) & (db < MATCH_NM) & (truth["partner"].to_numpy()[ia] == truth.index[ib])
    return pd.DataFrame({"phase": sel["phase"].to_numpy()[ok], "truth_phase": truth["gap_phase"].to_numpy()[ia[ok]],
                         "rep_nm": sel["tm_spacing_nm"].to_numpy()[ok], "truth_nm": tv[ib[ok]] - tv[ia[ok]]})


def census(path: Path) -> tuple[list[dict], dict]:
    blob = pickle.loads(path.read_bytes())
    truth, cols = blob["truth"], blob["columns"]
    p = truth.parameters
    s = truth.sites[truth.sites["in_image"].astype(bool)]
    n, _, _ = plane_fit(s["x_nm"].to_numpy(), s["y_nm"].to_numpy(), s["layer"].to_numpy(float))
    if n @ np.asarray(blob["normal"]) < 0:
        n = -n
    tp = truth_pairs(s[s["kind"] == "TM"].reset_index(drop=True), s[s["kind"] == "Li"], n, blob["inplane_nm"])
    base = {"seed": int(path.stem), "dose_e_per_A2": p["dose_e_per_A2"], "probe_fwhm_nm": p["probe_fwhm_nm"],
            "wide": bool(p["probe_fwhm_nm"] >= WIDE_PROBE_NM), "zone": p["zone"], "chemistry": p["chemistry"],
            "drift_fraction": p["drift_fraction"], "jitter_pm": 1e3 * p["jitter_px"] * p["pixel_size_nm"]}
    tm = cols[cols["kind"] == "TM"]
    pairs = matched_pairs(tm, cols, tp)
    by_stacking = stacking_spacings(cols)
    # The spacing's truth phase is its gap's, the in-plane's its site's; the pipeline has no C2/m label (its O3
    # holds the C2/m blocks).
    gap, site = tp["gap_phase"].replace(TRUTH_AS), tp["phase"].replace(TRUTH_AS)
    blocks = []
    for ph in sorted((set(site) | set(tm["phase"]) | set(tp["phase"])) - {""}):
        r, t, ti, m = tm[tm["phase"] == ph], tp[gap == ph], tp[site == ph], pairs[pairs["truth_phase"] == ph]
        row = dict(base, phase=ph, n_rep=int(r["tm_spacing_nm"].notna().sum()), n_truth=int(t["spacing_nm"].notna().sum()),
                   n_rep_inplane=int(r["inplane_nm"].notna().sum()), n_truth_inplane=int(ti["inplane_nm"].notna().sum()),
                   rep_spacing_nm=r["tm_spacing_nm"].median(), truth_spacing_nm=t["spacing_nm"].median(),
                   rep_spacing_det_nm=r.loc[r["detected"].astype(bool), "tm_spacing_nm"].median(),
                   rep_stack_spacing_nm=by_stacking.get(ph, np.nan),
                   rep_inplane_nm=r["inplane_nm"].median(), truth_inplane_nm=ti["inplane_nm"].median(),
                   n_matched=len(m), matched_label_share=float(np.mean(m["phase"] == ph)) if len(m) else np.nan,
                   matched_err_pm=1e3 * float(np.median(m["rep_nm"] - m["truth_nm"])) if len(m) else np.nan,
                   matched_err_rsd_pm=1e3 * robust_sd(m["rep_nm"] - m["truth_nm"]))
        for q in ("spacing", "stack_spacing", "inplane"):
            row[f"{q}_err_pm"] = 1e3 * (row[f"rep_{q}_nm"] - row[f"truth_{q.replace('stack_', '')}_nm"])
            row[f"{q}_err_pct"] = 100 * (row[f"rep_{q}_nm"] / row[f"truth_{q.replace('stack_', '')}_nm"] - 1)
        blocks.append(row)
    ref_n, ref_t, source = reported_reference(tm)
    t3 = tp.loc[gap == "O3", "spacing_nm"]
    draw = dict(base, reference=source, ref_spacing_nm=ref_n, truth_o3_spacing_nm=t3.median())
    o1 = tm.loc[tm["phase"] == "O1", "strain_normal"].dropna()
    t1 = tp.loc[tp["gap_phase"] == "O1", "spacing_nm"].dropna()
    if len(o1) and len(t1) and len(t3.dropna()):
        draw.update(n_o1_rep=len(o1), n_o1_truth=len(t1), o1_strain_pct=100 * o1.median(),
                    truth_o1_strain_pct=100 * (t1.median() / t3.median() - 1))
        draw["o1_strain_err_pts"] = draw["o1_strain_pct"] - draw["truth_o1_strain_pct"]
    if "O1" in by_stacking and len(t1) and len(t3.dropna()):
        draw["o1_stack_strain_pct"] = 100 * (by_stacking["O1"] / ref_n - 1)
        draw["truth_o1_strain_pct"] = 100 * (t1.median() / t3.median() - 1)
        draw["o1_stack_strain_err_pts"] = draw["o1_stack_strain_pct"] - draw["truth_o1_strain_pct"]
    o3 = tm[(tm["phase"] == "O3")]
    if o3["strain_normal"].notna().sum() >= 10 and t3.notna().sum() >= 10:
        sig = np.nanmedian(o3["position_error_pm"].to_numpy(float)) * 1e-3
        truth_sd = robust_sd(t3.to_numpy())
        m3 = pairs[(pairs["phase"] == "O3") & (pairs["truth_phase"].replace(TRUTH_AS) == "O3")]
        err = (m3["rep_nm"] - m3["truth_nm"]).to_numpy()
        draw.update(n_o3=int(o3["strain_normal"].notna().sum()), o3_strain_rsd_pct=100 * robust_sd(o3["strain_normal"]),
                    truth_o3_strain_rsd_pct=100 * truth_sd / t3.median(),
                    position_error_pm=1e3 * sig,
                    expected_o3_strain_rsd_pct=100 * np.hypot(truth_sd, np.sqrt(2) * sig) / t3.median(),
                    n_matched=int(err.size), matched_err_rsd_pm=1e3 * robust_sd(err),
                    matched_err_median_pm=1e3 * float(np.median(err)) if err.size else np.nan)
    return blocks, draw


def stats(a: pd.Series) -> str:
    a = a.dropna().abs()
    if a.empty:
        return "-"
    return f"{a.median():.2f} / {a.quantile(0.9):.2f} / {a.max():.2f} ({len(a)})"


def summary(blocks: pd.DataFrame, draws: pd.DataFrame) -> str:
    """Markdown tables: |error| median / 90th pct / max (n) by dose, probe and block type."""
    out = []
    blocks = blocks.assign(dose=np.where(blocks["dose_e_per_A2"] >= 1e3, ">=1e3", "<1e3"),
                           probe=np.where(blocks["wide"], "wide", "narrow"))
    blocks = blocks[(blocks["n_rep"] >= 3) & (blocks["n_truth"] >= 3)]
    out.append("| phase | dose | probe | spacing by column label (before) % | by stacking (now) pm | by stacking % | signed median % "
               "| matched columns' median error pm | in-plane pm | in-plane % |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for (ph, dose, probe), g in blocks.groupby(["phase", "dose", "probe"]):
        out.append(f"| {ph} | {dose} | {probe} | {stats(g['spacing_err_pct'])} | {stats(g['stack_spacing_err_pm'])} | "
                   f"{stats(g['stack_spacing_err_pct'])} | {g['stack_spacing_err_pct'].median():+.2f} | "
                   f"{stats(g['matched_err_pm'])} | {stats(g['inplane_err_pm'])} | {stats(g['inplane_err_pct'])} |")
    d = draws.assign(dose=np.where(draws["dose_e_per_A2"] >= 1e3, ">=1e3", "<1e3"),
                     probe=np.where(draws["wide"], "wide", "narrow"))
    out.append("\n| dose | probe | O1 strain err by column label (pts) | by stacking (pts) | O3 strain RSD % reported | truth's | expected | matched err RSD pm | position_error pm |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for (dose, probe), g in d.groupby(["dose", "probe"]):
        o1 = g["o1_strain_err_pts"] if "o1_strain_err_pts" in g else pd.Series(dtype=float)
        o1g = g["o1_stack_strain_err_pts"] if "o1_stack_strain_err_pts" in g else pd.Series(dtype=float)
        out.append(f"| {dose} | {probe} | {stats(o1)} | {stats(o1g)} | {g['o3_strain_rsd_pct'].median():.2f} | "
                   f"{g['truth_o3_strain_rsd_pct'].median():.2f} | {g['expected_o3_strain_rsd_pct'].median():.2f} | "
                   f"{g['matched_err_rsd_pm'].median():.1f} | {g['position_error_pm'].median():.1f} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["run", "summary"])
    ap.add_argument("--cache", type=Path)
    ap.add_argument("--out-blocks", type=Path)
    ap.add_argument("--out-draws", type=Path)
    ap.add_argument("--blocks", type=Path, nargs="*")
    ap.add_argument("--draws", type=Path, nargs="*")
    a = ap.parse_args(argv)
    if a.what == "run":
        blocks, draws = [], []
        for f in sorted(a.cache.glob("*.pkl"), key=lambda f: int(f.stem)):
            b, d = census(f)
            blocks += b
            draws.append(d)
        pd.DataFrame(blocks).to_csv(a.out_blocks, index=False, float_format="%.6g")
        pd.DataFrame(draws).to_csv(a.out_draws, index=False, float_format="%.6g")
    else:
        b = pd.concat([pd.read_csv(f) for f in a.blocks]).drop_duplicates(["seed", "phase"])
        d = pd.concat([pd.read_csv(f) for f in a.draws]).drop_duplicates(["seed"])
        print(summary(b, d))
    return 0


if __name__ == "__main__":
    sys.exit(main())
