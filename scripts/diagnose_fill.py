#!/usr/bin/env python
"""The Li-layer fill of every interlayer segment of random draws against its truth (issue 19, imgnarrow).

``map_phases``' column table of each draw is cached (``--cache``, pickles), so that
:func:`layerscope.imaging.interlayers.interlayer_table` can be re-run on it quickly; every scored
segment (layered truth phase, truth fill not within 0.05 of the threshold, as
:mod:`layerscope.simulate.validation` scores them) is printed or written with its truth fill,
reading, errors, length, rim and the z-score ``(li_fill - truth_fill) / hypot(count_sem,
MIXING_SYSTEMATIC)``::

    PYTHONPATH=src python scripts/diagnose_fill.py 2005 2033 --cache /tmp/fillcache [--all] [--csv out.csv]
    PYTHONPATH=src python scripts/diagnose_fill.py --seeds 0:100 --jobs 2 --cache /tmp/fillcache --csv seg.csv
"""
from __future__ import annotations

import argparse
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd


def cached(seed: int, cache: Path) -> tuple[pd.DataFrame, object]:
    """``map_phases``' indexed column table and the draw's truth, computed once per seed."""
    path = cache / f"{seed}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    from layerscope.errors import InputError
    from layerscope.imaging.pipeline import map_phases
    from layerscope.simulate.draws import draw_scene

    image, px, truth = draw_scene(seed)
    p = truth.parameters
    try:
        cols = map_phases(image, pixel_size_nm=px, zone=p["zone"], composition=p["chemistry"]).columns
        cols = cols[cols["indexed"].astype(bool)].drop(columns="indexed")
    except InputError:
        cols = None
    path.write_bytes(pickle.dumps((cols, truth)))
    return cols, truth


def segments(seed: int, cache: Path) -> pd.DataFrame:
    """Every segment of draw ``seed`` with its truth (``segment_truth``), scored or not (``scored``)."""
    from layerscope.imaging.interlayers import MIXING_SYSTEMATIC, MIXING_THRESHOLD, interlayer_table
    from layerscope.simulate.validation import AMBIGUOUS_FILL, LAYERED, segment_truth

    cols, truth = cached(seed, cache)
    if cols is None:
        return pd.DataFrame()
    seg = segment_truth(cols, interlayer_table(cols), truth)
    seg = seg[seg["n_matched"] > 0]
    p = truth.parameters
    on = seg["on_li_layer"].astype(bool)
    scored = on & seg["truth_phase"].isin(LAYERED) & (np.abs(seg["truth_fill"] - MIXING_THRESHOLD) >= AMBIGUOUS_FILL)
    err = np.hypot(seg["li_fill_count_sem"].astype(float), MIXING_SYSTEMATIC)
    return seg.assign(seed=seed, dose=p["dose_e_per_A2"], probe=p["probe_fwhm_nm"], chemistry=p["chemistry"],
                      scored=scored, z=(seg["li_fill"] - seg["truth_fill"]) / err,
                      z_count=(seg["li_fill"] - seg["truth_fill"]) / seg["li_fill_count_sem"].astype(float))


def _seeds(args: argparse.Namespace) -> list[int]:
    seeds = list(args.seed)
    if args.seeds:
        a, b = (int(v) for v in args.seeds.split(":"))
        seeds += list(range(a, b))
    return seeds


SHOW = ["seed", "li_layer", "segment", "n_sites", "rim", "truth_fill", "li_fill", "li_fill_count_sem", "li_fill_sem",
        "mixing", "mixing_sites", "clean_level", "z", "environment"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("seed", nargs="*", type=int)
    ap.add_argument("--seeds", help="half-open range A:B")
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--all", action="store_true", help="print every scored segment, not only the missed ones")
    ap.add_argument("--csv", type=Path)
    args = ap.parse_args(argv)
    args.cache.mkdir(parents=True, exist_ok=True)
    seeds = _seeds(args)
    with ProcessPoolExecutor(args.jobs) as ex:
        parts = list(ex.map(segments, seeds, [args.cache] * len(seeds)))
    seg = pd.concat([p for p in parts if len(p)], ignore_index=True)
    if args.csv:
        seg.to_csv(args.csv, index=False)
    sc = seg[seg["scored"]]
    want = np.where(sc["truth_fill"] >= 0.1, "yes", "no")
    shown = sc if args.all else sc[sc["mixing"] != want]
    with pd.option_context("display.width", 250, "display.max_rows", 500):
        print(shown[SHOW].round(4).to_string(index=False))
    z = sc["z"].to_numpy(dtype=float)
    z = z[np.isfinite(z)]
    print(f"{len(z)} scored segments: z mean {z.mean():.2f} sd {z.std():.2f}; "
          f"|z|>2 {np.mean(np.abs(z) > 2):.3f}, |z|>3 {np.mean(np.abs(z) > 3):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
