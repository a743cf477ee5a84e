"""Benchmark (issue 20): the cost of ``--ring-method detect`` on a crowded detector, beside algotom's sorting.

``rings.remove_stripes_rows`` selects single stripe columns by forward selection and then searches bands
(``_merge_bands``: every band start near a chosen stripe, every subset of the stripes it would replace), so
its cost grows with the number of stripes in a chunk's rows. This measures that growth on a synthetic chunk
(``--rows`` detector rows x ``--cols`` columns x ``--angles`` angles of line integrals: three discs' line
integrals, Gaussian noise 0.01, stripes of +-0.02..0.1 at a density of 0.5-10 % of the columns, scattered or
in clusters of four within 9 columns) and times, in the same run, the anchor: algotom's
``remove_stripe_based_sorting`` (the default ``--ring-method sorting``, window 1/30 of the detector) on each
row of the chunk. Printed per density: stripes injected, columns ``detect`` corrected (in the first row) and
how many of them were injected, seconds per chunk for both, and the ratio.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tomo_rings_crowded.py --csv docs/data/rings_crowded.csv
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from layerscope.tomo import rings
from layerscope.tomo.recon import sorting_window_px


def chunk(n_angles: int, rows: int, n: int, density: float, clustered: bool, seed: int = 0):
    """Line integrals (n_angles, rows, n) of three discs with noise, stripes added; the stripe columns."""
    rng = np.random.default_rng(seed)
    th = np.linspace(0, np.pi, n_angles, endpoint=False)
    x = np.arange(n) - n / 2
    s = np.zeros((n_angles, n))
    for cx, cy, r in [(0.05, 0.0, 0.2), (-0.15, 0.08, 0.12), (0.1, -0.1, 0.06)]:
        d = x[None, :] - n * (cx * np.cos(th)[:, None] + cy * np.sin(th)[:, None])
        s += 0.04 * np.sqrt(np.clip((r * n) ** 2 - d ** 2, 0, None))
    b = np.repeat(s[:, None, :], rows, axis=1) + rng.normal(0, 0.01, (n_angles, rows, n))
    k = max(1, int(density * n))
    if clustered:
        centres = rng.choice(np.arange(10, n - 10), max(1, k // 4), replace=False)
        cols = np.unique(np.concatenate([c + rng.choice(np.arange(-4, 5), 4, replace=False) for c in centres]))
    else:
        cols = rng.choice(np.arange(3, n - 3), k, replace=False)
    b[:, :, cols] += rng.choice([-1, 1], cols.size) * rng.uniform(0.02, 0.1, cols.size)
    return b.astype(np.float32), np.sort(cols)


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=8, help="detector rows in the chunk (the reconstruction chunk's)")
    p.add_argument("--cols", type=int, default=1024, help="detector columns")
    p.add_argument("--angles", type=int, default=360)
    p.add_argument("--densities", default="0.005,0.02,0.05,0.1", help="stripe columns per detector column")
    p.add_argument("--csv", default=None)
    a = p.parse_args(argv)
    from algotom.prep.removal import remove_stripe_based_sorting

    size = sorting_window_px(a.cols)
    out = []
    for clustered in (False, True):
        for dens in [float(v) for v in a.densities.split(",")]:
            b, cols = chunk(a.angles, a.rows, a.cols, dens, clustered)
            (_, found), t_detect = _timed(lambda: rings.remove_stripes_rows(b))
            _, t_sort = _timed(lambda: [remove_stripe_based_sorting(b[:, r], size=size) for r in range(a.rows)])
            got = set(found[0]["stripe_columns"])
            row = {"clustered": clustered, "density": dens, "stripes": cols.size, "corrected": len(got),
                   "corrected_injected": len(got & set(cols.tolist())), "detect_s": round(t_detect, 2),
                   "sorting_s": round(t_sort, 2), "ratio": round(t_detect / t_sort, 1)}
            out.append(row)
            print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    if a.csv:
        pd.DataFrame(out).to_csv(a.csv, index=False)


if __name__ == "__main__":
    main()
