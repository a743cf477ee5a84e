"""Phase labels on exact multislice (abTEM) images of the phase scenes.

The fast-model phase sweep (``imaging_validation.py --only phases``) is repeated here on images
from abTEM 1.0 (200 kV, 25 mrad, HAADF 80-200 mrad, static lattice: no frozen phonons). A whole
4 x 9 nm scene in one box is ~55 h of multislice on one core of this CPU (docs/benchmarks.md); the scene is built one x period
wide and simulated window by window along y (:func:`layerscope.simulate.simulate_multislice_stack`:
exact in x, 0.75 nm of scene around every window's rows), ~30 min on two cores. The scan is put on
the analysis grid of the fast-model sweep (0.012 nm pixels, 4 nm wide) by exact trigonometric
interpolation; then Poisson noise at each dose (0.2 px line jitter), ``map_phases`` and
``score_phases`` against the scene's projected columns, as in the fast-model sweep.

Run (from the repository root; windows are cached in ``--cache``, so a run resumes)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/abtem_phases.py --scene degraded --zone 100 \\
        --thickness-nm 5 --seeds 3 --margin-check 1 --save /tmp/abtem_degraded_100_5nm.npz \\
        --json /tmp/abtem_phases_100.json

``--save F`` writes the scan (``StackScan.save``; what ``tests/imaging/data/`` holds); ``--load F``
scores a saved scan without simulating (e.g. one made on a GPU machine with ``--device gpu
--seeds 0``). ``--frozen-phonons N`` averages N thermal configurations (``--phonon-sigma-A``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

DOSES = (5e2, 1e3, 3e3, 1e4, 1e5)
PIXEL_NM, FIELD_WIDTH_NM = 0.012, 4.0


def margin_check(scene, scan, window: int, cache: Path, n_x: int = 4) -> dict:
    """The first ``n_x`` columns of ``window`` again in a box 1024 potential pixels tall (1.2 nm
    margins instead of 0.75): the largest and RMS differences relative to the scan's peak."""
    from layerscope.simulate.stacked import _window_box
    from layerscope.simulate import simulate_multislice

    geo = scan.geometry
    path = cache / f"margin_check_window{window}.npy"
    if path.is_file():
        tall = np.load(path)
    else:
        box = _window_box(scene, geo, window, box_height_nm=1024 * geo.sampling_A / 10.0)
        p = {k: v for k, v in scan.parameters.items()}
        ms = simulate_multislice(box, scan_step_nm=geo.step_nm, sampling_A=geo.sampling_A * (1 + 1e-9),
                                 field_nm=(n_x * geo.step_nm, geo.rows_per_window * geo.step_nm), **p)
        tall = np.asarray(ms.image.data, dtype=np.float32)
        np.save(path, tall)
    rows = slice(window * geo.rows_per_window, (window + 1) * geo.rows_per_window)
    diff = np.abs(tall - scan.scan[rows, :n_x])
    peak = float(scan.scan.max())
    return {"window": window, "max_rel": float(diff.max() / peak), "rms_rel": float(np.sqrt(np.mean(diff**2)) / peak)}


def score(sim, zone: str, seeds: int, doses=DOSES) -> tuple[list[dict], dict]:
    """``map_phases`` on noisy copies of the simulation, scored per column against its truth
    (``imaging_validation.score_phase_image``, as in the fast-model sweep)."""
    from imaging_validation import score_phase_image

    rows, confusion = [], None
    for dose in doses:
        for seed in range(seeds):
            row, conf = score_phase_image(sim.image, sim.columns, zone=zone, dose=dose, seed=seed)
            rows.append(row)
            if conf is not None:
                confusion = conf if confusion is None else confusion.add(conf, fill_value=0)
            print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
    return rows, ({} if confusion is None else confusion.fillna(0).astype(int).to_dict())


def main() -> None:
    from layerscope.crystal.scenes import validation_scene
    from layerscope.provenance import structure_sha256
    from layerscope.simulate.stacked import StackScan, simulate_multislice_stack

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", choices=("degraded", "spinel"), default="degraded")
    parser.add_argument("--zone", choices=("100", "110"), default="100")
    parser.add_argument("--thickness-nm", type=float, default=5.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--scheduler", default=None,
                        help="threads, processes, synchronous or a dask.distributed address "
                             "(default: processes on the CPU, synchronous on a GPU)")
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="cpu")
    parser.add_argument("--max-batch", type=int, default=256, help="probe positions propagated at once")
    parser.add_argument("--frozen-phonons", type=int, default=0, help="configurations averaged (0: static lattice)")
    parser.add_argument("--phonon-sigma-A", type=float, default=0.07, help="rms thermal displacement (A)")
    parser.add_argument("--load", type=Path, default=None,
                        help="score a scan written by --save instead of simulating (same scene arguments)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/layerscope_abtem_stack"),
                        help="folder of the window scans (one subfolder per scene and parameters)")
    parser.add_argument("--margin-check", type=int, default=None, metavar="WINDOW",
                        help="also simulate 4 columns of WINDOW in a 1.3x taller box and compare")
    parser.add_argument("--save", type=Path, default=None, help="write the scan (StackScan.save) to this npz")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    scene = validation_scene(args.scene, zone=args.zone, thickness_nm=args.thickness_nm, width_nm=0.4)
    started = time.perf_counter()
    if args.load is not None:
        scan = StackScan.load(args.load)
        if scan.parameters.get("scene_sha256") != structure_sha256(scene):
            raise SystemExit(f"{args.load} is not a scan of this scene ({args.scene}, [{args.zone}], "
                             f"{args.thickness_nm} nm): pass the arguments it was simulated with")
    else:
        phonons = {} if args.frozen_phonons == 0 else {"frozen_phonons": args.frozen_phonons,
                                                        "phonon_sigma_A": args.phonon_sigma_A}
        scheduler = args.scheduler or ("processes" if args.device == "cpu" else "synchronous")
        scan = simulate_multislice_stack(scene, device=args.device, cache_dir=args.cache, scheduler=scheduler,
                                         max_batch=args.max_batch, **phonons)
    geo = scan.geometry
    out = {"scene": args.scene, "zone": args.zone, "thickness_nm": scene.info["thickness_nm"],
           "geometry": geo.__dict__, "simulation_wall_s": time.perf_counter() - started,
           "probe_positions": int(scan.scan.size), "parameters": scan.parameters}
    print(f"{args.scene} [{args.zone}] {scene.info['thickness_nm']:.2f} nm: {geo}; {out['simulation_wall_s']:.0f} s",
          flush=True)
    if args.margin_check is not None:
        out["margin_check"] = margin_check(scene, scan, args.margin_check, args.cache)
        print("margin check:", out["margin_check"], flush=True)
    if args.save:
        scan.save(args.save)
    sim = scan.simulation(scene, pixel_size_nm=PIXEL_NM, width_nm=FIELD_WIDTH_NM)
    out["analysis"] = {"shape": list(sim.image.data.shape), "max_harmonic": list(scan.max_harmonic()),
                       "n_truth_columns": len(sim.columns)}
    out["rows"], out["confusion"] = score(sim, args.zone, args.seeds)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
