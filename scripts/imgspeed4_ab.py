"""imgspeed4 (issue 19): the two rearranged calls on the wide 2048² benchmark image, before / after, interleaved.

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src .venv/bin/python scripts/imgspeed4_ab.py CALLS.pkl [ROUNDS]

``CALLS.pkl`` from ``scripts/imgspeed4_capture.py``. Per round, in alternating order: ``refine_jointly`` (``phases``'
joint fit) with ``JOINT_PART_ROWS`` 512 (before) and 128 (now), and ``residual_columns`` (the wide evidence's residual
pass) with the level's median and smoothing whole (SciPy, before) and in strips (now), 2 threads. Wall and process
CPU of each call, and that the outputs are equal bit for bit. Wall is only meaningful on idle cores.
"""
from __future__ import annotations

import pickle
import sys
import time

import numpy as np
from scipy import ndimage

from layerscope.imaging import columns as C

NOW_LEVEL = C._coarse_median


def _whole_level(values, factor, half):
    h, w = (values.shape[0] // factor) * factor, (values.shape[1] // factor) * factor
    blocks = values[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
    size = 2 * half + 1
    return ndimage.uniform_filter(ndimage.median_filter(blocks, size=size, mode="nearest"), size=size, mode="nearest")


def _timed(call):
    w, c = time.perf_counter(), time.process_time()
    out = call()
    return out, time.perf_counter() - w, time.process_time() - c


def main() -> None:
    calls = pickle.load(open(sys.argv[1], "rb"))
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    (ja, jk), (ra, rk) = calls["refine_jointly"], calls["residual_columns"]
    variants = {"before": (512, _whole_level), "now": (128, NOW_LEVEL)}
    res: dict = {}
    outs: dict = {}
    for i in range(rounds):
        for name in (("before", "now") if i % 2 == 0 else ("now", "before")):
            C.JOINT_PART_ROWS, C._coarse_median = variants[name]
            for what, call in (("refine_jointly", lambda: C.refine_jointly(*ja, **jk)),
                               ("residual_columns", lambda: C.residual_columns(*ra, **rk))):
                out, w, c = _timed(call)
                res.setdefault((what, name), []).append((w, c))
                outs.setdefault(what, {})[name] = out
        for what, o in outs.items():
            a, b = o["before"], o["now"]
            same = (a.equals(b) if hasattr(a, "equals") else
                    all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b)))
            assert same, what
    for (what, name), v in res.items():
        v = np.array(v)
        print(f"{what:17s} {name:6s} wall median {np.median(v[:, 0]):.2f} CPU median {np.median(v[:, 1]):.2f} "
              f"(min {v[:, 1].min():.2f}); outputs equal")


if __name__ == "__main__":
    main()
