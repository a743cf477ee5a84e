"""imgspeed4 (issue 19): cProfile of one `analyse` on the benchmark's 2048² image, every thread run inline.

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src .venv/bin/python scripts/imgspeed4_profile.py WIDE.npy [TOP [STATS.prof]]

`pipeline._on_thread` runs its call at once (a finished Future), `columns.JOINT_THREADS` is 1 and the refinement's
scheduler "sync": the whole run on one thread, so cProfile (which sees only its own thread) sees all of it; CPU
timer (`time.process_time`), so other processes' load does not count. Prints cumulative and own times.
"""
from __future__ import annotations

import cProfile
import pstats
import sys
import time
from concurrent.futures import Future

from layerscope.imaging import columns as C
from layerscope.imaging import pipeline as P
from layerscope.imaging.options import PhasesOptions, image_input


def _inline(call, *, name: str = "") -> Future:
    done: Future = Future()
    try:
        done.set_result(call())
    except BaseException as exc:  # as the thread would hand it over
        done.set_exception(exc)
    return done


def main() -> None:
    P._on_thread = _inline
    C.JOINT_THREADS = 1
    inp = image_input(sys.argv[1], pixel_size_nm=0.01)
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 45
    P.analyse(inp, PhasesOptions(), scheduler="sync")  # warm: imports
    prof = cProfile.Profile(time.process_time)
    c0 = time.process_time()
    prof.enable()
    P.analyse(inp, PhasesOptions(), scheduler="sync")
    prof.disable()
    print(f"CPU under the profiler {time.process_time() - c0:.2f} s")
    if len(sys.argv) > 3:
        prof.dump_stats(sys.argv[3])
    pstats.Stats(prof).sort_stats("cumulative").print_stats(top)
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)


if __name__ == "__main__":
    main()
