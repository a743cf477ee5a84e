#!/usr/bin/env python
"""Random draws scored with the rows grouped once (``pipeline.REGROUP_ROWS`` off) and again (on) (issue 19, img120).

Each seed is scored by :func:`layerscope.simulate.validation.score_draw` with the switch off, while a probe runs
:func:`layerscope.imaging.pipeline._regrouped_rows` on the same columns and records whether a second grouping along
the refined directions changes any column's row. Only where it does is the draw scored again with the switch on;
elsewhere the switch returns the first grouping and its directions unchanged, so the "on" row is the "off" row by
construction (written with ``regroup_changed`` False). Rows: ``variant`` off / on, ``regroup_changed``::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src nice -n 10 .venv/bin/python scripts/img120_regroup_draws.py \\
        --seeds 0:200 --out /tmp/img120/r0.csv
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _probe(state: dict):
    """``pipeline._regrouped_rows`` replaced by a probe that records a change and returns the first grouping."""
    from layerscope.imaging import pipeline

    plain = pipeline._regrouped_rows

    def probe(x, y, rows, tvec, nvec, **kw):
        again, _, _ = plain(x, y, rows, tvec, nvec, **{**kw, "notes": []})
        state["changed"] = state["changed"] or not np.array_equal(again, rows)
        return rows, tvec, nvec

    return plain, probe


def _caching(cache: Path | None, state: dict):
    """``map_phases`` and ``draw_scene`` wrapped so that each scored draw writes ``CACHE/VARIANT/SEED.pkl``: the
    indexed column table, the spacings and the truth (the format of ``scripts/imgfresh_cached_draws.py``, which
    re-scores them with ``rescore``)."""
    import pickle

    from layerscope.imaging import pipeline
    from layerscope.simulate import validation

    plain_map, plain_draw = pipeline.map_phases, validation.draw_scene

    def draw(seed, ranges=None):
        image, px, truth = plain_draw(seed, ranges)
        state["truth"], state["seed"] = truth, seed
        return image, px, truth

    def mapped(image, **kw):
        pm = plain_map(image, **kw)
        if cache is not None:
            res = pm.result
            blob = {"columns": pm.columns[pm.columns["indexed"].astype(bool)].reset_index(drop=True),
                    "inplane_nm": float(res.lattice.inplane_period_nm),
                    "cation_nm": float(res.spacings.cation_spacing_nm), "twins": pm.summary["twin_like_domains"],
                    "truth": state["truth"]}
            folder = cache / state["variant"]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{state['seed']}.pkl").write_bytes(pickle.dumps(blob))
        return pm

    pipeline.map_phases, validation.draw_scene = mapped, draw


def score_pair(seed: int, state: dict) -> list[dict]:
    """The "off" row of ``seed`` and, where the second grouping changes a row, the "on" row."""
    from layerscope.imaging import pipeline
    from layerscope.simulate.validation import score_draw

    state.update(changed=False, variant="off")
    plain, probe = _probe(state)
    pipeline.REGROUP_ROWS, pipeline._regrouped_rows = True, probe
    try:
        off = score_draw(seed)
    finally:
        pipeline._regrouped_rows = plain
    off.update(variant="off", regroup_changed=state["changed"])
    if not state["changed"]:
        return [off, {**off, "variant": "on"}]
    state["variant"] = "on"
    on = score_draw(seed)
    on.update(variant="on", regroup_changed=True)
    return [off, on]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", default=None, help="half-open ranges A:B, comma-separated, interleaved")
    p.add_argument("--seed-list", default=None, help="seeds, comma-separated (instead of --seeds)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cache", type=Path, default=None,
                   help="write each scored draw's column table to CACHE/off|on/SEED.pkl (imgfresh's format)")
    a = p.parse_args(argv)
    state: dict = {}
    _caching(a.cache, state)
    if a.seed_list:
        seeds = [int(v) for v in a.seed_list.split(",")]
    else:
        ranges = [range(*(int(v) for v in r.split(":"))) for r in a.seeds.split(",")]
        seeds = [s for group in itertools.zip_longest(*ranges) for s in group if s is not None]
    rows, t0 = [], time.perf_counter()
    for seed in seeds:
        pair = score_pair(seed, state)
        rows += pair
        on = pair[1]
        print(f"[{len(rows) // 2}/{len(seeds)} {time.perf_counter() - t0:.0f} s] seed {seed} changed "
              f"{on['regroup_changed']} fill {pair[0].get('fill_accuracy', np.nan):.3f} -> "
              f"{on.get('fill_accuracy', np.nan):.3f}", flush=True)
        pd.DataFrame(rows).to_csv(a.out, index=False, float_format="%.6g")
    return 0


if __name__ == "__main__":
    sys.exit(main())
