#!/usr/bin/env python
"""The random-draw validator's rows, with each draw's column table cached for re-scoring (issue 19, imgfresh).

``run`` gives the rows of ``scripts/validate_random_draws.py`` (``score_draw`` unchanged) and writes, per draw,
``CACHE/SEED.pkl``: the column table of ``map_phases`` (the indexed columns, as :func:`interlayer_table` read
them), the in-plane and cation spacings, the layer normal and period used (imgperiod), the truth of the draw and the result's notes (which stages fired). ``rescore`` re-runs ``interlayer_table``,
the twin-like domains and the validator's interlayer scores on a cached draw with the code imported now (a change
of the interlayer table alone: the columns, ``phases`` recall / precision and phase accuracy stay those cached)::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src nice -n 10 .venv/bin/python scripts/imgfresh_cached_draws.py run \\
        --seeds 5000:5200 --cache /tmp/imgfresh_cache --out docs/data/random_draws_5000_5199_imgfresh_main.csv
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _caching(cache: Path):
    """``map_phases`` wrapped so that each call writes its column table and spacings for the current seed."""
    from layerscope.imaging import pipeline

    plain = pipeline.map_phases
    state = {"seed": None, "truth": None}

    def wrapped(image, **kw):
        pm = plain(image, **kw)
        res = pm.result
        blob = {"columns": pm.columns[pm.columns["indexed"].astype(bool)].reset_index(drop=True),
                "inplane_nm": float(res.lattice.inplane_period_nm), "cation_nm": float(res.spacings.cation_spacing_nm),
                "twins": pm.summary["twin_like_domains"], "truth": state["truth"], "notes": list(res.notes),
                "normal": np.asarray(res.lattice.normal, dtype=float), "layer_nm": float(res.lattice.layer_period_nm)}
        with open(cache / f"{state['seed']}.pkl", "wb") as fh:
            pickle.dump(blob, fh)
        return pm

    pipeline.map_phases = wrapped
    return state


def run(seeds: list[int], cache: Path, out: Path) -> None:
    import time

    from layerscope.simulate import validation

    cache.mkdir(parents=True, exist_ok=True)
    state = _caching(cache)
    plain_draw = validation.draw_scene

    def draw(seed, ranges=None):
        image, px, truth = plain_draw(seed, ranges)
        state["seed"], state["truth"] = seed, truth
        return image, px, truth

    validation.draw_scene = draw
    rows, t0 = [], time.perf_counter()
    for seed in seeds:
        row = validation.score_draw(seed)
        rows.append(row)
        print(f"[{len(rows)}/{len(seeds)} {time.perf_counter() - t0:.0f} s] seed {seed} {row['dose_e_per_A2']:.3g} "
              f"fill {row.get('fill_accuracy', np.nan):.3f} rim {row.get('fill_accuracy_rim', np.nan):.3f} "
              f"spinel {row.get('fill_accuracy_spinel', np.nan):.3f}", flush=True)
        pd.DataFrame(rows).to_csv(out, index=False, float_format="%.6g")


def rescore(path: Path) -> dict:
    """The interlayer scores and twin counts of one cached draw with the interlayer code imported now."""
    from layerscope.imaging.domains import find_domains
    from layerscope.imaging.interlayers import interlayer_table
    from layerscope.simulate.validation import _interlayer_scores, segment_truth

    blob = pickle.loads(path.read_bytes())
    cols, truth = blob["columns"].copy(), blob["truth"]
    inter = interlayer_table(cols)
    row = _interlayer_scores(segment_truth(cols, inter, truth))
    dom = find_domains(cols.copy(), inplane_spacing_nm=blob["inplane_nm"], cation_spacing_nm=blob["cation_nm"],
                       interlayers=inter)
    kinds = ("single-layer", "double-layer", "multilayer")
    found = {k: int(np.sum(dom["twin_type"] == k)) for k in kinds} if "twin_type" in dom else {k: 0 for k in kinds}
    row["twins_found"] = "/".join(str(found[k]) for k in kinds)
    row["twin_exact"] = float("nan") if truth.twin_ambiguous else float(found == {k: truth.twin_runs[k] for k in kinds})
    row["seed"] = int(path.stem)
    return row


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["run", "rescore"])
    p.add_argument("--seeds", default=None, help="half-open ranges A:B, comma-separated, interleaved (run)")
    p.add_argument("--cache", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed-list", default=None, help="seeds, comma-separated (run; instead of --seeds)")
    p.add_argument("--zero-floor", choices=["on", "off"], default=None,
                   help="sitetests.ZERO_COUNT_FLOOR for this run (default: the library's)")
    p.add_argument("--empty-window", choices=["off", "gap", "any"], default=None,
                   help="interlayers.EMPTY_WINDOW_SITES_OUT for this run / rescore (default: the library's)")
    p.add_argument("--filled-site", choices=["on", "off"], default=None,
                   help="interlayers.NO_WITH_FILLED_SITE for this run / rescore (default: the library's; imgcrack)")
    p.add_argument("--zero-level-spread", choices=["on", "off"], default=None,
                   help="interlayers.ZERO_LEVEL_SPREAD for this run / rescore (default: the library's; imgfill2)")
    p.add_argument("--generic-joint", choices=["on", "off"], default=None,
                   help="columns.GENERIC_JOINT for this run (default: the library's; imgwide6)")
    p.add_argument("--period-from-columns", choices=["on", "off"], default=None,
                   help="pipeline.PERIOD_FROM_COLUMNS for this run (default: the library's; imgperiod)")
    p.add_argument("--joint-site", choices=["on", "off"], default=None,
                   help="pipeline.JOINT_SITE_TEST for this run (default: the library's; imgwide7)")
    a = p.parse_args(argv)
    if a.joint_site is not None:
        from layerscope.imaging import pipeline

        pipeline.JOINT_SITE_TEST = a.joint_site == "on"
    if a.period_from_columns is not None:
        from layerscope.imaging import pipeline

        pipeline.PERIOD_FROM_COLUMNS = a.period_from_columns == "on"
    if a.generic_joint is not None:
        from layerscope.imaging import columns

        columns.GENERIC_JOINT = a.generic_joint == "on"
    if a.zero_level_spread is not None:
        from layerscope.imaging import interlayers

        interlayers.ZERO_LEVEL_SPREAD = a.zero_level_spread == "on"
    if a.filled_site is not None:
        from layerscope.imaging import interlayers

        interlayers.NO_WITH_FILLED_SITE = a.filled_site == "on"
    if a.empty_window is not None:
        from layerscope.imaging import interlayers

        interlayers.EMPTY_WINDOW_SITES_OUT = a.empty_window
    if a.zero_floor is not None:
        from layerscope.imaging import sitetests

        sitetests.ZERO_COUNT_FLOOR = a.zero_floor == "on"
    if a.what == "run":
        if a.seed_list:
            seeds = [int(v) for v in a.seed_list.split(",")]
        else:
            ranges = [range(*(int(v) for v in r.split(":"))) for r in a.seeds.split(",")]
            seeds = [s for group in itertools.zip_longest(*ranges) for s in group if s is not None]
        run(seeds, a.cache, a.out)
    else:
        rows = [rescore(f) for f in sorted(a.cache.glob("*.pkl"), key=lambda f: int(f.stem))]
        pd.DataFrame(rows).to_csv(a.out, index=False, float_format="%.6g")
    return 0


if __name__ == "__main__":
    sys.exit(main())
