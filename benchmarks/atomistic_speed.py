"""Speed of the atomistic engine: seconds per force call (one relaxation step) and per NEB step.

For LiCoO2 supercells of 48, 96 and 192 atoms (the 50/100/200-atom classes of issue 6) and each
offline potential, times one energy+forces evaluation (the cost of one optimiser step) after a
warm-up call. Then, for the 47-atom NEB cell with 4 images, times one NEB force evaluation with
one calculator per image sharing the model (what :func:`layerscope.atomistic.migration.run_neb`
does) against ASE's ``allow_shared_calculator=True`` with one calculator for all images (the
anchor), printing the ratio.

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/atomistic_speed.py [--device cpu|cuda] [--threads N]
        [--potentials chgnet-0.3.0,7net-0] [--sizes 48,96,192] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _time_calls(atoms, calc, repeats: int) -> tuple[float, float]:
    """Best wall time and best process CPU time (s) of one energy + forces evaluation."""
    atoms = atoms.copy()
    atoms.calc = calc
    atoms.rattle(0.01, seed=0)
    atoms.get_forces()  # warm-up (graph construction, JIT, CUDA context)
    best, best_cpu = np.inf, np.inf
    for k in range(repeats):
        atoms.rattle(0.005, seed=k + 1)
        t0, c0 = time.perf_counter(), time.process_time()
        atoms.get_potential_energy()
        atoms.get_forces()
        best, best_cpu = min(best, time.perf_counter() - t0), min(best_cpu, time.process_time() - c0)
    return best, best_cpu


def _neb_step(images, neb) -> float:
    """CPU seconds of one optimiser step's worth of band evaluation: forces, then the energy."""
    t0 = time.process_time()
    neb.get_forces()
    neb.get_potential_energy()
    return time.process_time() - t0


def main() -> None:
    from ase.mep import NEB

    from layerscope.atomistic.migration import migration_endpoints
    from layerscope.atomistic.potentials import load_potential
    from layerscope.atomistic.structures import host_bulk

    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--potentials", default="chgnet-0.3.0,7net-0,7net-l3i5")
    ap.add_argument("--sizes", default="48,96,192")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    cells = {48: (2, 2, 1), 96: (2, 2, 2), 192: (4, 4, 1)}
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"device={args.device} threads={args.threads} (best of {args.repeats})")
    for name in args.potentials.split(","):
        pot = load_potential(name, device=args.device, num_threads=args.threads)
        for n in sizes:
            atoms = host_bulk("LiCoO2", size=cells[n])
            t, cpu = _time_calls(atoms, pot.calculator(), args.repeats)
            print(f"{name:>13} {n:4d} atoms: {t:7.3f} s wall, {cpu:7.3f} s CPU per force call (relaxation step)")
        ends = migration_endpoints(host_bulk("LiCoO2", size=(2, 2, 1)), cation="Co")
        images = [ends.initial.copy() for _ in range(5)] + [ends.final.copy()]
        own = NEB(images, method="improvedtangent")
        own.interpolate(mic=True)
        for img in images:
            img.calc = pot.calculator()
        _neb_step(images, own)  # warm-up
        # every step moves the images: perturb, then time one force evaluation of the band
        best_own = np.inf
        for k in range(args.repeats):
            for img in images[1:-1]:
                img.rattle(0.002, seed=k)
            best_own = min(best_own, _neb_step(images, own))
        images2 = [img.copy() for img in images]
        shared_calc = pot.calculator()
        for img in images2:
            img.calc = shared_calc
        shared = NEB(images2, method="improvedtangent", allow_shared_calculator=True)
        best_shared = np.inf
        for k in range(args.repeats):
            for img in images2[1:-1]:
                img.rattle(0.002, seed=k)
            best_shared = min(best_shared, _neb_step(images2, shared))
        print(f"{name:>13} NEB step (47 atoms, 4 images, CPU s): own calculators {best_own:.3f}, "
              f"shared calculator {best_shared:.3f}, ratio shared/own {best_shared / best_own:.2f}")


if __name__ == "__main__":
    main()
