#!/usr/bin/env python
"""Accuracy of ``layerscope.imaging`` against simulated truth, over dose, thickness and zone axis.

Two sweeps on images of the fast incoherent model (``layerscope.simulate``, 200 kV HAADF,
0.08 nm probe, column weight Z^1.7, Poisson noise at the dose, 0.2 px RMS line jitter):

1. **Columns** (the issue's reference case): O3 LiCoO2 [100], 10 nm thick, 0.01 nm pixels, a
   4 x 4 nm field. Recall, precision and the 2-D RMS position error of layerscope at each dose,
   next to Atomap's documented pipeline on the same image at 1e3 and 1e4 e/A^2
   (``get_atom_positions`` with separation 0.55 x the cation-row spacing, center-of-mass then
   2-D Gaussian refinement) and the Cramer-Rao bound of a TM column (Poisson, known shape;
   computed from the noise-free image).
2. **Phases**: a LiCoO2 stack with 0.8 nm of vacuum over rock salt (6 layers), O3 with 20 % Li/TM
   mixing, O1 (6), O3, an O3' twin (3), O3; thickness 5, 10 and 30 nm; zones [100] and [110].
   Per-column phase accuracy and its confusion matrix, per phase, O1 block thickness (layers),
   rock-salt thickness from the vacuum, the mixing index against the TM fraction.

3. **abTEM** (``--abtem``): exact multislice (abTEM through ``layerscope.simulate.simulate_multislice``,
   200 kV, 25 mrad, HAADF 80-200 mrad, static lattice) of one projected O3 LiCoO2 [100] cell,
   three c periods tall (4.2 nm), 5 nm thick, scanned at 0.0406 nm (12 steps per cell width;
   abTEM costs ~0.4 s per probe position on this CPU, so finer steps or larger fields are out of
   reach here); the periodic cell image is tiled eight times along x (3.9 nm), then Poisson
   noise at each dose; columns scored as in sweep 1, with Atomap beside at 1e3 and 1e4 e/A^2.
   The image is cached (``--abtem-cache``).

Run (about 10 minutes on 2 busy cores, plus ~5 minutes of abTEM the first time)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/imaging_validation.py --json /tmp/imaging_validation.json
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

DOSES = (5e2, 1e3, 3e3, 1e4, 1e5)
JITTER_PX = 0.2
#: Atomap runs on the issue's two reference doses only (no jitter, first seed): its peak finder
#: and per-column fits take minutes per image at 5e2 e/A^2 on two busy cores.
ATOMAP_DOSES = (1e3, 1e4)
#: Columns closer than this to the image edge are not scored (Atomap's peak finder excludes a
#: border as wide as its separation, 0.13 nm here).
MARGIN_NM = 0.15


def crlb_pm(clean: np.ndarray, columns: pd.DataFrame, px: float, dose: float, sigma_nm: float) -> float:
    """2-D Cramer-Rao bound (pm) of a TM column position under Poisson noise (shape known)."""
    ne = dose * (10 * px) ** 2
    tm = columns[columns["kind"] == "TM"]
    h, w = clean.shape
    c = tm.iloc[int(np.argmin((tm["x_nm"] - w * px / 2) ** 2 + (tm["y_nm"] - h * px / 2) ** 2))]
    yc = (np.arange(h) + 0.5) * px
    xc = (np.arange(w) + 0.5) * px
    r = slice(max(0, int(c.y_nm / px) - 15), int(c.y_nm / px) + 16)
    q = slice(max(0, int(c.x_nm / px) - 15), int(c.x_nm / px) + 16)
    peak = clean[int(c.y_nm / px), int(c.x_nm / px)]
    g = np.exp(-0.5 * ((yc[r, None] - c.y_nm) ** 2 + (xc[None, q] - c.x_nm) ** 2) / sigma_nm**2)
    lam = ne * clean[r, q]
    dl = ne * peak * g * (xc[None, q] - c.x_nm) / sigma_nm**2
    info = np.sum(dl**2 / np.maximum(lam, 1e-12))
    return float(np.sqrt(2.0 / info) * 1e3)


def atomap_positions(data: np.ndarray, px: float) -> pd.DataFrame:
    import atomap.api as am
    import hyperspy.api as hs

    signal = hs.signals.Signal2D(data.astype(float))
    pos = am.get_atom_positions(signal, separation=int(round(0.55 * 0.2342 / px)))
    sub = am.Sublattice(pos, image=signal.data)
    sub.find_nearest_neighbors()
    sub.refine_atom_positions_using_center_of_mass(show_progressbar=False)
    sub.refine_atom_positions_using_2d_gaussian(show_progressbar=False)
    return pd.DataFrame({"x_nm": (np.asarray(sub.x_position) + 0.5) * px, "y_nm": (np.asarray(sub.y_position) + 0.5) * px})


def column_sweep(seeds: int, with_atomap: bool) -> list[dict]:
    from layerscope.crystal.scenes import Block, stack
    from layerscope.imaging.pipeline import map_phases
    from layerscope.imaging.scoring import score_columns
    from layerscope.simulate import degrade, simulate_haadf

    px = 0.01
    at = stack([Block("O3", 17)], composition="LiCoO2", zone="100", width_nm=4, thickness_nm=10, seed=1)
    sim = simulate_haadf(at, pixel_size_nm=px, probe_fwhm_nm=0.08)
    clean = np.asarray(sim.image.data, dtype=float)
    extent = (clean.shape[1] * px, clean.shape[0] * px)
    rows = []
    for dose in DOSES:
        for jitter in (0.0, JITTER_PX):
            for seed in range(seeds):
                img = np.asarray(degrade(sim.image, dose_e_per_A2=dose, seed=seed, scan_jitter_px=jitter).data, float)
                t = time.perf_counter()
                pm = map_phases(img, pixel_size_nm=px, zone="100", composition="LiCoO2")
                dt = time.perf_counter() - t
                sc = score_columns(pm.columns, sim.columns, extent_nm=extent, margin_nm=MARGIN_NM)
                row = {"dose": dose, "jitter_px": jitter, "seed": seed, "recall": sc.recall, "precision": sc.precision,
                       "rms_pm": sc.rms_pm, "time_s": dt, "crlb_pm": crlb_pm(clean, sim.columns, px, dose, 0.08 / 2.3548)}
                if with_atomap and dose in ATOMAP_DOSES and jitter == 0.0 and seed == 0:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        t = time.perf_counter()
                        am = atomap_positions(img, px)
                        row["atomap_time_s"] = time.perf_counter() - t
                    sa = score_columns(am, sim.columns, extent_nm=extent, margin_nm=MARGIN_NM)
                    row.update(atomap_recall=sa.recall, atomap_precision=sa.precision, atomap_rms_pm=sa.rms_pm)
                rows.append(row)
                print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    return rows


def phase_sweep(seeds: int) -> tuple[list[dict], dict]:
    from layerscope.crystal.scenes import Block, add_mixing, stack
    from layerscope.imaging.pipeline import map_phases
    from layerscope.imaging.scoring import score_phases
    from layerscope.simulate import degrade, simulate_haadf

    px = 0.012
    rows, confusions = [], {}
    for zone in ("100", "110"):
        for thickness in (5.0, 10.0, 30.0):
            at = stack([Block("rock_salt", 6, li_fraction=0.0), Block("O3", 8), Block("O1", 6, li_fraction=0.0),
                        Block("O3", 6), Block("O3'", 3), Block("O3", 7)],
                       composition="LiCoO2", zone=zone, width_nm=4, thickness_nm=thickness, seed=1)
            at = add_mixing(at, 0.2, seed=2, y_range_nm=(1.5, 3.3))
            at.positions[:, 1] += 8.0
            sim = simulate_haadf(at, pixel_size_nm=px, probe_fwhm_nm=0.08,
                                 field_nm=(at.info["width_nm"], at.info["height_nm"] + 0.8))
            blocks = {b["phase"]: b for b in at.info["blocks"]}
            for dose in DOSES:
                for seed in range(seeds):
                    img = np.asarray(degrade(sim.image, dose_e_per_A2=dose, seed=seed, scan_jitter_px=JITTER_PX).data,
                                     float)
                    extent = (img.shape[1] * px, img.shape[0] * px)
                    try:
                        pm = map_phases(img, pixel_size_nm=px, zone=zone, composition="LiCoO2")
                    except Exception as err:  # noqa: BLE001 - a failure is a result of the sweep
                        rows.append({"zone": zone, "thickness_nm": thickness, "dose": dose, "seed": seed,
                                     "error": str(err)})
                        print(rows[-1], flush=True)
                        continue
                    ps = score_phases(pm.columns, sim.columns, extent_nm=extent)
                    o1 = pm.domains[pm.domains["phase"] == "O1"]
                    surf = pm.summary["quantities"]["surface_layer"]
                    row = {"zone": zone, "thickness_nm": thickness, "dose": dose, "seed": seed,
                           "accuracy": ps.accuracy, **{f"acc_{k}": v for k, v in ps.per_phase.items()},
                           "missing": ps.n_missing, "n_truth": ps.n_truth,
                           "o1_layers": int(o1.iloc[0]["n_cation_layers"]) if len(o1) else 0,
                           "o1_truth": blocks["O1"]["n_layers"],
                           "rs_nm": surf["thickness_nm"],
                           "rs_truth_nm": blocks["rock_salt"]["y_max_nm"] - blocks["rock_salt"]["y_min_nm"],
                           "mixing_slope": ps.mixing_fit.get("slope"), "mixing_intercept": ps.mixing_fit.get("intercept"),
                           "mixing_rms": ps.mixing_fit.get("rms_vs_truth")}
                    rows.append(row)
                    key = f"{zone}/{thickness:g}nm/{dose:g}"
                    conf = ps.confusion
                    confusions[key] = confusions[key].add(conf, fill_value=0) if key in confusions else conf
                    print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    return rows, {k: v.fillna(0).astype(int).to_dict() for k, v in confusions.items()}


def abtem_sweep(cache: Path, with_atomap: bool) -> list[dict]:
    from layerscope.containers import Image
    from layerscope.crystal import bulk, oriented
    from layerscope.imaging.pipeline import map_phases
    from layerscope.imaging.scoring import score_columns
    from layerscope.simulate import degrade

    if cache.is_file():
        saved = np.load(cache, allow_pickle=False)
        cell_img = saved["image"]
        cols = pd.DataFrame({k: saved[k] for k in ("x_nm", "y_nm", "expected_intensity")})
        cols["kind"] = saved["kind"].astype(str)
        cell = tuple(saved["cell_nm"])
        step = float(saved["step_nm"])
    else:
        from layerscope.simulate import simulate_multislice

        at = oriented(bulk("O3", "LiCoO2"), zone="100", width_nm=0.4, thickness_nm=5.0)
        at = at.repeat((1, 3, 1))  # three c periods tall: no tiling along y
        at.pbc = True
        # Twelve scan steps per cell width, so that the cell image tiles seamlessly along x.
        step = at.cell[0, 0] / 10.0 / 12
        t = time.perf_counter()
        ms = simulate_multislice(at, scan_step_nm=step, energy_keV=200, convergence_mrad=25, detector="HAADF",
                                 slice_thickness_A=1.41, device="cpu",
                                 field_nm=(at.cell[0, 0] / 10.0, at.cell[1, 1] / 10.0))
        print(f"abTEM: {ms.image.shape} in {time.perf_counter() - t:.0f} s", flush=True)
        cell_img = np.asarray(ms.image.data, dtype=float)
        cols = ms.columns[["x_nm", "y_nm", "expected_intensity", "kind"]].copy()
        cell = (cell_img.shape[1] * step, cell_img.shape[0] * step)
        np.savez(cache, image=cell_img, x_nm=cols["x_nm"].to_numpy(), y_nm=cols["y_nm"].to_numpy(),
                 expected_intensity=cols["expected_intensity"].to_numpy(), kind=cols["kind"].to_numpy().astype("U2"),
                 cell_nm=np.array(cell), step_nm=step)
    reps = (int(np.ceil(3.9 / cell[0])), 1)
    big = np.tile(cell_img, (reps[1], reps[0]))
    tiles = [cols.assign(x_nm=cols["x_nm"] + i * cell[0], y_nm=cols["y_nm"] + j * cell[1])
             for i in range(reps[0]) for j in range(reps[1])]
    truth = pd.concat(tiles, ignore_index=True)
    truth = truth[(truth["x_nm"] < big.shape[1] * step) & (truth["y_nm"] < big.shape[0] * step)]
    extent = (big.shape[1] * step, big.shape[0] * step)
    clean = Image.from_array(np.clip(big, 0, 1), pixel_size_nm=step)
    rows = []
    for dose in (1e3, 1e4, 1e5):
        img = np.asarray(degrade(clean, dose_e_per_A2=dose, seed=0).data, float)
        pm = map_phases(img, pixel_size_nm=step, zone="100", composition="LiCoO2")
        sc = score_columns(pm.columns, truth, extent_nm=extent, margin_nm=MARGIN_NM)
        row = {"dose": dose, "recall": sc.recall, "precision": sc.precision, "rms_pm": sc.rms_pm,
               "o3_fraction": pm.summary["phase_fractions"].get("O3", 0.0)}
        if with_atomap and dose in ATOMAP_DOSES:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                am = atomap_positions(img, step)
            sa = score_columns(am, truth, extent_nm=extent, margin_nm=MARGIN_NM)
            row.update(atomap_recall=sa.recall, atomap_precision=sa.precision, atomap_rms_pm=sa.rms_pm)
        rows.append(row)
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--no-atomap", action="store_true")
    parser.add_argument("--only", choices=("columns", "phases", "abtem"), default=None)
    parser.add_argument("--abtem", action="store_true", help="also the abTEM sweep")
    parser.add_argument("--abtem-cache", type=Path, default=Path("/tmp/layerscope_abtem_o3_5nm.npz"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    out: dict = {}
    if args.only in (None, "columns"):
        rows = column_sweep(args.seeds, not args.no_atomap)
        df = pd.DataFrame(rows)
        summary = df.groupby(["dose", "jitter_px"]).mean(numeric_only=True).drop(columns="seed").round(4)
        print(summary.to_string())
        out["columns"] = rows
    if args.only in (None, "phases"):
        rows, conf = phase_sweep(args.seeds)
        df = pd.DataFrame(rows)
        print(df.groupby(["zone", "thickness_nm", "dose"]).mean(numeric_only=True).drop(columns="seed").round(4)
              .to_string())
        out["phases"] = rows
        out["confusion"] = conf
    if args.abtem or args.only == "abtem":
        out["abtem"] = abtem_sweep(args.abtem_cache, not args.no_atomap)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()
