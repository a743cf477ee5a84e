#!/usr/bin/env python
"""layerscope's column finder and phase map against Atomap, side by side on the same image.

The image: a simulated LiCoO2 [100] lamella (rock-salt surface layer, O3, an O1 block, O3, an O3'
twin, O3; fast incoherent HAADF model of :mod:`layerscope.simulate`, 3 nm thick), 2048 x 2048
pixels of 0.02 nm (41 nm field, ~15,000 TM columns), Poisson noise at ``--dose`` e/A^2, written
to a float32 TIFF.

* **layerscope**: file -> ``columns.csv`` + ``phase_map.tif``, the path of ``layerscope phases
  --no-figures``: load, lattice by FFT, detection, batched Poisson-ML Gaussian refinement with
  neighbours, layers, Li-layer sites, phase labels, domains, quantities, writing.
* **Atomap** (0.4.x), its documented pipeline up to 2-D Gaussian refinement:
  ``get_atom_positions`` (separation = 0.55 x the cation-row spacing in pixels, the value that
  gives Atomap its best recall here),
  ``Sublattice``, ``find_nearest_neighbors``, ``refine_atom_positions_using_center_of_mass``,
  ``refine_atom_positions_using_2d_gaussian``.

Both position sets are scored against the truth's visible cation columns (TM columns, and the
lit Li-layer columns of the rock salt; one-to-one matching within 0.07 nm, columns 0.1 nm inside
the field, :func:`layerscope.imaging.scoring.score_columns`): recall, precision and the 2-D RMS
error in pm. Printed: the
wall and CPU times, the speed ratio, both errors. ``--crop N`` runs both on the central N x N
pixels (quick check); the default is the whole image.

Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/imaging_atomap.py --json /tmp/imaging_atomap.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

PX = 0.02  # nm per pixel
SIZE = 2048


def make_image(dose: float, seed: int, size: int):
    """Simulated, degraded image (float32) and its truth table."""
    from layerscope.crystal.scenes import Block, stack
    from layerscope.simulate import degrade, simulate_haadf

    field = size * PX
    blocks = [Block("rock_salt", 10, li_fraction=0.0), Block("O3", 60), Block("O1", 12, li_fraction=0.0),
              Block("O3", 40), Block("O3'", 3), Block("O3", 60)]
    at = stack(blocks, composition="LiCoO2", zone="100", width_nm=field + 0.3, thickness_nm=3, seed=seed)
    sim = simulate_haadf(at, pixel_size_nm=PX, probe_fwhm_nm=0.08, field_nm=(field, field))
    img = degrade(sim.image, dose_e_per_A2=dose, seed=seed)
    return np.asarray(img.data, dtype=np.float32), sim.columns


def run_layerscope(path: Path, out: Path) -> tuple[pd.DataFrame, float, float]:
    import tifffile

    from layerscope.imaging.pipeline import map_phases
    from layerscope.imaging.report import write_columns

    w0, c0 = time.perf_counter(), time.process_time()
    data = tifffile.imread(path).astype(float)
    pm = map_phases(data, pixel_size_nm=PX, zone="100", composition="LiCoO2")
    write_columns(pm.columns, out / "columns.csv")
    tifffile.imwrite(out / "phase_map.tif", pm.phase_map)
    return pm.columns, time.perf_counter() - w0, time.process_time() - c0


def run_atomap(data: np.ndarray, separation_px: int) -> tuple[pd.DataFrame, float, float]:
    import atomap.api as am
    import hyperspy.api as hs

    w0, c0 = time.perf_counter(), time.process_time()
    signal = hs.signals.Signal2D(data.astype(float))
    positions = am.get_atom_positions(signal, separation=separation_px)
    sub = am.Sublattice(positions, image=signal.data)
    sub.find_nearest_neighbors()
    sub.refine_atom_positions_using_center_of_mass(show_progressbar=False)
    sub.refine_atom_positions_using_2d_gaussian(show_progressbar=False)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    # Atomap positions are pixel indices (pixel centres at integers): x_nm = (x + 0.5) * px.
    table = pd.DataFrame({"x_nm": (np.asarray(sub.x_position) + 0.5) * PX,
                          "y_nm": (np.asarray(sub.y_position) + 0.5) * PX})
    return table, wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dose", type=float, default=1e4, help="e/A^2")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--crop", type=int, default=None, help="run on the central N x N pixels only")
    parser.add_argument("--skip-atomap", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import tifffile

    from layerscope.imaging.scoring import score_columns

    size = args.crop or SIZE
    t = time.perf_counter()
    data, truth = make_image(args.dose, args.seed, size)
    print(f"image {data.shape[1]} x {data.shape[0]} px of {PX} nm, {args.dose:g} e/A^2; simulated in "
          f"{time.perf_counter() - t:.1f} s; truth TM columns: {int((truth['kind'] == 'TM').sum())}")
    extent = (data.shape[1] * PX, data.shape[0] * PX)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path = tmp / "image.tif"
        tifffile.imwrite(path, data)
        cols, wall, cpu = run_layerscope(path, tmp)
    # Columns within 0.15 nm of the edge are not scored (Atomap's peak finder skips a border as
    # wide as its separation).
    s_ours = score_columns(cols, truth, extent_nm=extent, margin_nm=0.15)  # detected columns of every kind
    result = {
        "image": {"shape": list(data.shape), "pixel_size_nm": PX, "dose_e_per_A2": args.dose,
                  "truth_tm_columns": int((truth["kind"] == "TM").sum()), "truth_visible_columns": s_ours.n_truth_visible},
        "threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu_count": len(os.sched_getaffinity(0)),
        "load_average": os.getloadavg(),
        "layerscope": {"wall_s": wall, "cpu_s": cpu, "columns_detected": int(cols["detected"].sum()),
                       "sites_total": int(len(cols)), "recall": s_ours.recall, "precision": s_ours.precision,
                       "rms_pm": s_ours.rms_pm},
    }
    print(f"layerscope: file -> columns.csv + phase map in {wall:.2f} s wall ({cpu:.2f} s CPU); "
          f"recall {s_ours.recall:.4f}, precision {s_ours.precision:.4f}, RMS {s_ours.rms_pm:.2f} pm")
    if not args.skip_atomap:
        # Separation: 0.55 x the cation-row spacing c/6 in pixels; the best recall of Atomap's
        # peak finder on this image (0.9 x the spacing misses 15 % of the columns).
        sep = int(round(0.55 * 0.2342 / PX))
        table, a_wall, a_cpu = run_atomap(data, sep)
        s_atomap = score_columns(table, truth, extent_nm=extent, margin_nm=0.15)
        result["atomap"] = {"wall_s": a_wall, "cpu_s": a_cpu, "columns": int(len(table)), "separation_px": sep,
                            "recall": s_atomap.recall, "precision": s_atomap.precision, "rms_pm": s_atomap.rms_pm}
        result["speed_ratio_wall"] = a_wall / wall
        result["speed_ratio_cpu"] = a_cpu / cpu
        print(f"atomap: {a_wall:.1f} s wall ({a_cpu:.1f} s CPU) for {len(table)} columns; recall {s_atomap.recall:.4f}, "
              f"precision {s_atomap.precision:.4f}, RMS {s_atomap.rms_pm:.2f} pm")
        print(f"speed ratio (atomap / layerscope): {a_wall / wall:.1f}x wall, {a_cpu / cpu:.1f}x CPU; "
              f"position error layerscope {s_ours.rms_pm:.2f} pm vs atomap {s_atomap.rms_pm:.2f} pm")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=float))


if __name__ == "__main__":
    main()
