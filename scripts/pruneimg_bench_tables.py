#!/usr/bin/env python
"""``phases``' column table and summary on the speed benchmark's 2048² images, pickled, to show that two trees give
the same answer (issue 19, pruneimg): ``write`` runs :func:`layerscope.imaging.pipeline.analyse` on the narrow
(0.08 nm) and wide (0.15 nm) probe images of ``benchmarks/imaging_speed.py`` (simulated once into ``--images``) and
pickles its column, interlayer and layer tables, phase map, notes and summary (less its timings; and the summary with
``quantities.SPACING_BY_STACKING`` off); ``compare A B`` says whether two such pickles are equal bit for bit (NaN
equal to NaN)::

    PYTHONPATH=/tmp/base/src .venv/bin/python scripts/pruneimg_bench_tables.py write --images /tmp/img --out base.pkl
    PYTHONPATH=$PWD/src .venv/bin/python scripts/pruneimg_bench_tables.py write --images /tmp/img --out new.pkl
    .venv/bin/python scripts/pruneimg_bench_tables.py compare base.pkl new.pkl
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd

PROBES_NM = {"narrow": 0.08, "wide": 0.15}


def _untimed(summary: dict) -> dict:
    """``summary`` without its ``timings_s`` (seconds differ run to run)."""
    return {k: v for k, v in summary.items() if k != "timings_s"}


def write(images: Path, out: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from imaging_speed import PX, make_image

    from layerscope.imaging import quantities
    from layerscope.imaging.options import PhasesOptions, image_input
    from layerscope.imaging.pipeline import analyse

    images.mkdir(parents=True, exist_ok=True)
    blob = {}
    for name, probe in PROBES_NM.items():
        path = images / f"o3_2048_{name}.npy"
        if not path.exists():
            np.save(path, make_image(probe_fwhm_nm=probe))
        pm = analyse(image_input(path, pixel_size_nm=PX), PhasesOptions())
        blob[name] = {"columns": pm.columns, "interlayers": pm.interlayers, "layers": pm.layers,
                      "phase_map": pm.phase_map, "notes": list(pm.result.notes), "summary": _untimed(pm.summary)}
        quantities.SPACING_BY_STACKING = False
        blob[name]["summary_by_label"] = _untimed(analyse(image_input(path, pixel_size_nm=PX), PhasesOptions()).summary)
        quantities.SPACING_BY_STACKING = True
        print(name, len(pm.columns), "rows", flush=True)
    out.write_bytes(pickle.dumps(blob))


def _same(a, b) -> bool:
    if isinstance(a, pd.DataFrame):
        return list(a.columns) == list(b.columns) and a.shape == b.shape and all(
            _same(a[c].to_numpy(), b[c].to_numpy()) for c in a.columns)
    if isinstance(a, np.ndarray):
        if a.dtype.kind == "f":
            return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
        if a.dtype.kind == "O":  # strings, booleans and NaN mixed: NaN where the other has NaN
            return b.dtype.kind == "O" and a.shape == b.shape and pd.Series(a.ravel()).equals(pd.Series(b.ravel()))
        return a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and np.isnan(a):
        return isinstance(b, float) and np.isnan(b)
    return a == b


def compare(a: Path, b: Path) -> bool:
    x, y = pickle.loads(a.read_bytes()), pickle.loads(b.read_bytes())
    ok = True
    for name in PROBES_NM:
        for part in ("columns", "interlayers", "layers", "phase_map", "notes", "summary", "summary_by_label"):
            same = _same(x[name][part], y[name][part])
            ok &= same
            print(f"{name} {part}: {'equal' if same else 'DIFFERENT'}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["write", "compare"])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--images", type=Path, default=Path("/tmp/pruneimg_bench"))
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    if a.what == "write":
        write(a.images, a.out)
        return 0
    return 0 if compare(*a.files) else 1


if __name__ == "__main__":
    raise SystemExit(main())
