"""imgspeed4 (issue 19): do the wide path's NumPy / SciPy calls release the GIL? A load-independent check.

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src .venv/bin/python scripts/imgspeed4_gil.py WIDE.npy

Each call runs on the main thread while a second thread spins in pure Python (it needs the GIL for every bytecode).
Printed per call: its own thread CPU, and the spinner's thread CPU over the same interval as a share of it. A call
that releases the GIL leaves the spinner running beside it (share near 1 or more); a C call that holds it starves the
spinner (share near 0: the control `sorted`); pure Python hands the GIL over every 5 ms (share ~1, but never both at
once). Thread CPU, not wall: other processes' load shrinks both alike.
"""
from __future__ import annotations

import sys
import threading
import time

import numpy as np
from scipy import ndimage


def spin_share(call, reps: int = 3) -> tuple[float, float]:
    """Median over ``reps`` of (the call's thread CPU s, the spinner's thread CPU over it / the call's)."""
    out = []
    for _ in range(reps):
        stop, box = threading.Event(), {}

        def spinner() -> None:
            c0, n = time.thread_time(), 0
            while not stop.is_set():
                n += 1
            box["cpu"] = time.thread_time() - c0

        th = threading.Thread(target=spinner)
        th.start()
        time.sleep(0.05)
        c0 = time.thread_time()
        s0 = time.perf_counter()
        call()
        own, wall = time.thread_time() - c0, time.perf_counter() - s0
        stop.set()
        th.join()
        out.append((own, (box["cpu"]) / max(own, 1e-9), wall))
    a = np.median(np.array(out), axis=0)
    return float(a[0]), float(a[1])


def main() -> None:
    from layerscope.imaging import columns as C

    data = np.load(sys.argv[1]).astype(float)
    sub = np.ascontiguousarray(data[:1024])
    blocks = data[:2048:4, :2048:4].copy()
    rng = np.random.default_rng(0)
    a, b = rng.random((512, 800)), rng.random((512, 800))
    big = rng.random(2_000_000).tolist()
    calls = {
        "gaussian_filter1d (axis 0, 103 taps, 1024x2048)": lambda: ndimage.gaussian_filter1d(sub, 6.4, axis=0,
                                                                                               truncate=8.0),
        "gaussian_filter1d (axis 1, 53 taps)": lambda: ndimage.gaussian_filter1d(sub, 6.4, axis=1, truncate=4.0),
        "median_filter 9x9 on 512x512 (coarse median)": lambda: ndimage.median_filter(blocks, size=9, mode="nearest"),
        "local_maxima (columns.local_maxima)": lambda: C.local_maxima(sub, 17),
        "elementwise products + row sums (512x800)": lambda: [(a * b).sum(1) for _ in range(200)],
        "np.exp (512x800)": lambda: [np.exp(-a) for _ in range(40)],
        "take (flat gather, 2e6)": lambda: [data.reshape(-1).take(rng.integers(0, data.size, 2_000_000))
                                            for _ in range(3)],
        "cKDTree.query_ball_point (6000 pts)": lambda: __import__("scipy.spatial").spatial.cKDTree(
            rng.random((6000, 2)) * 2048).query_ball_point(rng.random((6000, 2)) * 2048, 45.0, p=np.inf),
        "pure Python loop (control: switches every 5 ms)": lambda: sum(i * i for i in range(3_000_000)),
        "sorted() of 2e6 floats (control: C holding the GIL)": lambda: sorted(big),
    }
    for name, call in calls.items():
        own, share = spin_share(call)
        print(f"{name:50s} own CPU {own:6.3f} s  spinner beside it {share:5.2f} x")


if __name__ == "__main__":
    main()
