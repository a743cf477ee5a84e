#!/usr/bin/env python
"""Census of the layer period and direction the phase pipeline uses against the draw's truth (issue 19, imgperiod).

Per cached draw (``scripts/imgfresh_cached_draws.py run`` with its cache): the truth's apparent lattice (the TM and
Li-layer sites' positions in the degraded image fitted as ``w . (x, y) + b = cation layer``: normal ``w / |w|``,
cation spacing ``1 / |w|``, a drift's shear included; the in-plane spacing: the median of neighbouring TM sites' spacing
along their layer), the power spectrum's readings (first-order spot alone and
the harmonic fit, :func:`layerscope.imaging.lattice.fft_lattice`), the normal the pipeline finally used (refined
from the rows) and the same fit over the indexed, detected TM columns of the cached table::

    PYTHONPATH=$PWD/src .venv/bin/python scripts/imgperiod_census.py --cache DIR --out CSV
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def plane_fit(x: np.ndarray, y: np.ndarray, layer: np.ndarray, clip: float = 0.25) -> tuple[np.ndarray, float, float]:
    """``w`` (cycles per cation layer per nm) of ``w . (x, y) + b = layer``, fitted again without points more than
    ``clip`` layers off; returns the unit normal (y >= 0), the cation spacing (nm) and the residuals' RMS (layers)."""
    a = np.column_stack([x, y, np.ones_like(x)])
    keep = np.ones(x.size, bool)
    for _ in range(3):
        coef = np.linalg.lstsq(a[keep], layer[keep], rcond=None)[0]
        res = a @ coef - layer
        keep = np.abs(res) <= clip
    w = coef[:2]
    n = w / np.hypot(*w)
    sign = 1.0 if (n[1] > 0 or (n[1] == 0 and n[0] > 0)) else -1.0
    return sign * n, float(1.0 / np.hypot(*w)), float(np.sqrt(np.mean(res[keep] ** 2)))


def inplane_spacing(x: np.ndarray, y: np.ndarray, layer: np.ndarray, normal: np.ndarray, guess_nm: float) -> float:
    """Median spacing (nm) of neighbouring columns along their layer (``inplane = (n_y, -n_x)``), over the
    neighbours 0.7-1.3 ``guess_nm`` apart."""
    u = np.column_stack([x, y]) @ np.array([normal[1], -normal[0]])
    d = [np.diff(np.sort(u[layer == k])) for k in np.unique(layer)]
    d = np.concatenate(d) if d else np.zeros(0)
    d = d[(d > 0.7 * guess_nm) & (d < 1.3 * guess_nm)]
    return float(np.median(d)) if d.size else float("nan")


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Signed angle (deg) from unit vector ``b`` to ``a``."""
    return float(np.degrees(np.arctan2(b[0] * a[1] - b[1] * a[0], a @ b)))


def spectrum_readings(seed: int) -> dict:
    """The power spectrum's layer normal and period with the harmonic fit and with the first-order spot alone."""
    from layerscope.imaging import lattice
    from layerscope.imaging.materials import material_spacings
    from layerscope.simulate.draws import draw_scene

    image, px, truth = draw_scene(seed)
    p = truth.parameters
    sp = material_spacings(p["chemistry"], p["zone"])
    out = {}
    keep = lattice.LAYER_HARMONICS
    for name, h in (("harm", 4), ("first", None)):
        lattice.LAYER_HARMONICS = h
        try:
            lat = lattice.fft_lattice(image.astype(float), pixel_size_nm=px, layer_spacing_nm=sp.tm_spacing_nm,
                                      inplane_spacing_nm=sp.inplane_spacing_nm, material=sp.composition)
            out[name] = (lat.normal, lat.layer_period_nm / (1 if lat.rows_are_cation_rows else 2), lat.inplane_period_nm)
        except Exception:  # noqa: BLE001 - a refusal: no reading
            out[name] = None
    lattice.LAYER_HARMONICS = keep
    out["field_px"], out["px"] = image.shape[0], px
    return out


def census(path: Path, spectrum: bool) -> dict:
    blob = pickle.loads(path.read_bytes())
    truth, cols = blob["truth"], blob["columns"]
    s = truth.sites
    tn, tc, trms = plane_fit(s["x_nm"].to_numpy(), s["y_nm"].to_numpy(), s["layer"].to_numpy(float))
    p = truth.parameters
    row = {"seed": int(path.stem), "dose_e_per_A2": p["dose_e_per_A2"], "probe_fwhm_nm": p["probe_fwhm_nm"],
           "zone": p["zone"], "chemistry": p["chemistry"], "truth_cation_nm": tc, "truth_fit_rms_layers": trms}
    tms = s[s["kind"] == "TM"]
    td = inplane_spacing(tms["x_nm"].to_numpy(), tms["y_nm"].to_numpy(), tms["layer"].to_numpy(), tn, blob["inplane_nm"])
    row["truth_inplane_nm"] = td
    row["used_inplane_err_pct"] = 100 * (blob["inplane_nm"] / td - 1)
    used_n, used_c = np.asarray(blob["normal"]), blob["layer_nm"] / 2.0
    row["used_period_err_pct"] = 100 * (used_c / tc - 1)
    row["used_normal_err_deg"] = angle_deg(used_n, tn)
    tm = cols[(cols["kind"] == "TM") & cols["detected"].astype(bool) & (cols["layer"] >= 0)]
    if len(tm) >= 10:
        cn, cc, crms = plane_fit(tm["x_nm"].to_numpy(), tm["y_nm"].to_numpy(), tm["layer"].to_numpy(float))
        row.update(cols_period_err_pct=100 * (cc / tc - 1), cols_normal_err_deg=angle_deg(cn, tn), cols_fit_rms_layers=crms,
                   n_layers=int(tm["layer"].max() - tm["layer"].min() + 1),
                   cols_inplane_err_pct=100 * (inplane_spacing(tm["x_nm"].to_numpy(), tm["y_nm"].to_numpy(),
                                                               tm["layer"].to_numpy(), tn, blob["inplane_nm"]) / td - 1))
    if spectrum:
        sp = spectrum_readings(int(path.stem))
        for name in ("harm", "first"):
            if sp[name] is not None:
                n, c, dt = sp[name]
                row[f"{name}_period_err_pct"] = 100 * (c / tc - 1)
                row[f"{name}_normal_err_deg"] = angle_deg(n, tn)
                row[f"{name}_inplane_nm"] = dt
        row["field_nm"] = sp["field_px"] * sp["px"]
    return row


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--no-spectrum", action="store_true", help="skip re-drawing the image for the spectrum readings")
    a = ap.parse_args(argv)
    rows = [census(f, not a.no_spectrum) for f in sorted(a.cache.glob("*.pkl"), key=lambda f: int(f.stem))]
    pd.DataFrame(rows).to_csv(a.out, index=False, float_format="%.5g")
    return 0


if __name__ == "__main__":
    sys.exit(main())
