"""imgspeed2 (issue 19): which stage of `phases` runs on which thread, and when (wall s from the start of analyse).

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src .venv/bin/python scripts/imgspeed2_timeline.py WIDE.npy [RUNS]

Wraps the stages named below (module attributes: calls across modules go through them) and prints, for the last of
RUNS analyse calls on the 2048² image (0.01 nm pixels), each call's thread, start, end, wall and its own thread's CPU
(work a stage hands to a pool is not in that CPU). The wall time of a run is its critical path on 2 cores.
"""
from __future__ import annotations

import functools
import sys
import threading
import time

from layerscope.imaging import applicability as A
from layerscope.imaging import columns as C
from layerscope.imaging import domains as D
from layerscope.imaging import interlayers as I
from layerscope.imaging import lattice as L
from layerscope.imaging import pipeline as P
from layerscope.imaging.options import PhasesOptions, image_input

PIPELINE = ("_detect_and_fit", "_index_columns", "_lattice_width", "_wide_probe_window", "_residual_maxima",
            "_resolved_maxima", "_stacking", "_place_li_sites", "_site_intensities", "_lattice_leaks",
            "_detect_gap_columns", "_measure_li_sites", "_mark_void_sites", "_confirm_placed_sites",
            "_report_lattice_sites", "_joint_positions", "_neighbour_width", "_widths", "find_atom_columns",
            "_add_spinel_tetrahedral_sites", "_phase_labels", "_unindexed_rows", "_summary")
COLUMNS = ("detect_columns", "fit_detected", "lattice_columns", "residual_columns", "refine_jointly", "_found_width",
           "_joint_heights", "_joint_windows", "_gaussian_strips", "local_maxima", "image_pixel_noise",
           "_residual_image", "_coarse_median")
REC: list[tuple] = []
T0 = [0.0]


def wrap(mod, name: str) -> None:
    """``mod.name`` replaced by a wrapper that records (thread, name, start, end, own-thread CPU)."""
    f = getattr(mod, name)

    @functools.wraps(f)
    def g(*a, **k):
        t, c = time.perf_counter(), time.thread_time()
        try:
            return f(*a, **k)
        finally:
            REC.append((threading.current_thread().name, name, t - T0[0], time.perf_counter() - T0[0],
                        time.thread_time() - c))

    setattr(mod, name, g)


def main() -> None:
    for mod, names in ((P, PIPELINE), (C, COLUMNS), (L, ("fft_lattice", "power_spectrum")),
                       (A, ("check_layered_oxide",)), (I, ("interlayer_table",)),
                       (D, ("find_domains", "phase_label_image"))):
        for name in names:
            wrap(mod, name)
    inp = image_input(sys.argv[1], pixel_size_nm=0.01)
    for rep in range(int(sys.argv[2]) if len(sys.argv) > 2 else 2):
        REC.clear()
        T0[0], c0 = time.perf_counter(), time.process_time()
        P.analyse(inp, PhasesOptions())
        print(f"run {rep}: wall {time.perf_counter() - T0[0]:.2f} cpu {time.process_time() - c0:.2f}")
    for th, n, a, b, c in sorted(REC, key=lambda r: r[2]):
        print(f"{th:22s} {n:30s} {a:6.2f} {b:6.2f}  wall {b - a:5.2f} cpu {c:5.2f}")


if __name__ == "__main__":
    main()
