"""imgspeed4 (issue 19): `analyse`'s outputs on an image, pickled (``dump``), and two such files compared (``compare``).

    PYTHONPATH=SRC .venv/bin/python scripts/imgspeed4_outputs.py dump IMAGE.npy OUT.pkl
    .venv/bin/python scripts/imgspeed4_outputs.py compare A.pkl B.pkl

The columns, interlayers, domains, layers, interfaces, glides, unindexed rows, notes, phase map, summary (but its
timings) and the column width and site window; compared with every float bit for bit (NaN equal to NaN).
"""
from __future__ import annotations

import pickle
import sys

import numpy as np
import pandas as pd


def dump(image: str, out: str) -> None:
    from layerscope.imaging.options import PhasesOptions, image_input
    from layerscope.imaging.pipeline import analyse

    pm = analyse(image_input(image, pixel_size_nm=0.01), PhasesOptions())
    summary = {k: v for k, v in pm.summary.items() if k != "timings_s"}
    blob = dict(columns=pm.columns, interlayers=pm.interlayers, domains=pm.domains, layers=pm.layers,
                interfaces=pm.interfaces, glides=pm.glides, unindexed=pm.result.unindexed, notes=pm.result.notes,
                phase_map=pm.phase_map, summary=summary, width=pm.result.column_sigma_nm,
                window=pm.result.site_window_nm)
    with open(out, "wb") as fh:
        pickle.dump(blob, fh)


def _equal(a, b) -> bool:
    if isinstance(a, pd.DataFrame):
        if list(a.columns) != list(b.columns) or a.shape != b.shape:
            return False
        return all(_equal(a[c].to_numpy(), b[c].to_numpy()) for c in a.columns)
    if isinstance(a, np.ndarray):
        if a.dtype.kind == "f":
            return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
        if a.dtype == object:
            return a.shape == b.shape and all(_equal(x, y) or (x != x and y != y) for x, y in zip(a, b))
        return np.array_equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return a == b


def compare(a: str, b: str) -> None:
    x, y = (pickle.load(open(p, "rb")) for p in (a, b))
    bad = [k for k in x if not _equal(x[k], y[k])]
    print(f"{len(x['columns'])} column rows; differing: {bad or 'none'}")


if __name__ == "__main__":
    {"dump": lambda: dump(*sys.argv[2:4]), "compare": lambda: compare(*sys.argv[2:4])}[sys.argv[1]]()
