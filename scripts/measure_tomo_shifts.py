#!/usr/bin/env python
"""Shift estimation alone on the projection draws (no reconstruction of the volume, no analysis): per draw the
shift check before aligning, the error of the shifts found (px RMS per axis, unobservable part removed), the
check of the aligned series (:func:`layerscope.tomo.align.aligned_consistency`) and its reprojection residual
(:func:`layerscope.tomo.align.reprojection_residual`), for each first guess::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/measure_tomo_shifts.py --seeds 0:50 --jitter-px 8 \\
        --jitter-kind white --first com,neighbours --out shifts.csv

The shifts are injected as in ``validate_tomo_draws.py`` (same ``jitter_px``, same seeds).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate_random_draws import parse_seeds  # noqa: E402
from validate_tomo_draws import _prepare, jitter_px  # noqa: E402


def measure(seed: int, rms_px: float, kind: str, firsts: list[str]) -> list[dict]:
    from layerscope.tomo import align, recon
    from layerscope.tomo.phantom import random_phantom

    ph = random_phantom(seed)
    d = ph.specs["draw"]
    if not d["projected"]:
        return []
    proj = _prepare(ph, rms_px, kind)
    dark, flat = recon._reference_fields(proj)
    rows, cols = recon._profiles(proj, dark, flat, 8)
    angles = np.asarray(proj.angles_deg, float)
    before = align.consistency_of_profiles(rows, cols, angles)["rms_px"]
    ty, tx = jitter_px(seed, angles, rms_px, kind) if rms_px > 0 else (0 * angles, 0 * angles)
    n = max(1, int(np.ceil(proj.data.shape[2] / align.MATCH_MAX_COLUMNS)))
    lines = recon._series_lines(proj, dark, flat, 8, n)
    truth = n * align.aligned_consistency(lines, ty / n, tx / n, angles)["rms_px"]
    out = []
    for first in firsts:
        t0 = time.process_time()
        est = align.estimate_shifts(lines, angles, first=first)
        dy, dx = est["dy"] * n, est["dx"] * n
        ey, ex = align.unobservable_removed(dy - ty, dx - tx, angles)
        after = n * align.aligned_consistency(lines, est["dy"], est["dx"], angles)["rms_px"]
        residual = align.reprojection_residual(lines, est["dy"], est["dx"], angles)
        out.append({"seed": seed, "size": d["size"], "n_angles": d["n_angles"], "jitter_px": rms_px,
                    "jitter_kind": kind, "first": first, "check_before_px": before, "check_truth_px": truth,
                    "check_after_px": after, "reprojection_residual": residual, "shift_err_px": float(np.sqrt(np.mean(ey ** 2 + ex ** 2) / 2)),
                    "rounds": est["rounds"], "diverged": est["diverged"], "seconds": time.process_time() - t0})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", required=True, help="half-open range A:B or a comma-separated list")
    p.add_argument("--jitter-px", type=float, nargs="+", default=[2.0])
    p.add_argument("--jitter-kind", choices=("white", "walk"), default="white")
    p.add_argument("--first", default="com,neighbours")
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    rows = []
    for rms in a.jitter_px:
        for seed in (parse_seeds(a.seeds) if ":" in a.seeds else [int(v) for v in a.seeds.split(",")]):
            got = measure(seed, rms, a.jitter_kind, a.first.split(","))
            for r in got:
                print(" ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()), flush=True)
            rows += got
            pd.DataFrame(rows).to_csv(a.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
