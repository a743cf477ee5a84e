"""imgspeed4 (issue 19): the wide 2048² `phases` run's critical path -- stages by thread, and how many of the process's
threads can run at each moment (where one of 2 cores idles).

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src .venv/bin/python scripts/imgspeed4_timeline.py WIDE.npy [RUNS]

The stages of imgspeed2's timeline (``scripts/imgspeed2_timeline.py``: each call's thread, start, end) and a sampler
thread that reads every thread's state from ``/proc/self/task/*/stat`` every ~5 ms: a thread in state R runs or waits
only for a core (one waiting for the GIL or a lock sleeps, S). The number of runnable threads (the sampler left out)
does not depend on other processes' load: where it is below 2, one core of 2 idle ones has nothing of this run to do.
Printed for the last of RUNS `analyse` calls: per 0.1 s of wall, the runnable threads (mean) and the stages then
open; then the share of the run's wall with fewer than 2 runnable threads, by the innermost open stage.
"""
from __future__ import annotations

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import imgspeed2_timeline as T  # noqa: E402  (the wrapped stages and their records)
from layerscope.imaging import pipeline as P  # noqa: E402
from layerscope.imaging.options import PhasesOptions, image_input  # noqa: E402

SAMPLES: list[tuple[float, int]] = []


def _runnable(own: int) -> int:
    n = 0
    for tid in os.listdir("/proc/self/task"):
        if int(tid) == own:
            continue
        try:
            with open(f"/proc/self/task/{tid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        n += state == "R"
    return n


def _sample(stop: threading.Event) -> None:
    own = threading.get_native_id()
    while not stop.is_set():
        SAMPLES.append((time.perf_counter() - T.T0[0], _runnable(own)))
        time.sleep(0.005)


def main() -> None:
    for mod, names in ((P, T.PIPELINE), (T.C, T.COLUMNS), (T.L, ("fft_lattice", "power_spectrum")),
                       (T.A, ("check_layered_oxide",)), (T.I, ("interlayer_table",)),
                       (T.D, ("find_domains", "phase_label_image"))):
        for name in names:
            T.wrap(mod, name)
    inp = image_input(sys.argv[1], pixel_size_nm=0.01)
    for rep in range(int(sys.argv[2]) if len(sys.argv) > 2 else 2):
        T.REC.clear()
        SAMPLES.clear()
        stop = threading.Event()
        T.T0[0], c0 = time.perf_counter(), time.process_time()
        sampler = threading.Thread(target=_sample, args=(stop,), daemon=True)
        sampler.start()
        P.analyse(inp, PhasesOptions())
        wall, cpu = time.perf_counter() - T.T0[0], time.process_time() - c0
        stop.set()
        sampler.join()
        print(f"run {rep}: wall {wall:.2f} cpu {cpu:.2f} load {os.getloadavg()[0]:.1f}")
    report(wall)


def _open_stages(t: float) -> list[tuple]:
    return sorted((r for r in T.REC if r[2] <= t < r[3]), key=lambda r: r[2])


def report(wall: float) -> None:
    bins = int(wall / 0.1) + 1
    print("wall s  runnable  open stages (innermost last per thread)")
    for b in range(bins):
        s = [n for t, n in SAMPLES if b * 0.1 <= t < (b + 1) * 0.1]
        if not s:
            continue
        inner = {}
        for th, name, a, e, _ in _open_stages((b + 0.5) * 0.1):
            inner[th] = name
        print(f"{b * 0.1:5.1f}  {sum(s) / len(s):5.2f}    " + "; ".join(f"{th}:{n}" for th, n in inner.items()))
    idle: dict[str, float] = {}
    dt = [(SAMPLES[i + 1][0] - SAMPLES[i][0], SAMPLES[i]) for i in range(len(SAMPLES) - 1)]
    below = 0.0
    for d, (t, n) in dt:
        if n < 2:
            below += d * (2 - n) / 2
            open_ = _open_stages(t)
            key = open_[-1][1] if open_ else "(outside the stages)"
            idle[key] = idle.get(key, 0.0) + d * (2 - n) / 2
    print(f"core-idle share of the wall (2 cores, from the runnable count): {below / wall:.2f} ({below:.2f} s of {wall:.2f})")
    for k, v in sorted(idle.items(), key=lambda kv: -kv[1])[:15]:
        print(f"  {k:32s} {v:5.2f} s")


if __name__ == "__main__":
    main()
