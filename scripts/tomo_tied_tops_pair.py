#!/usr/bin/env python
"""Each draw analysed with ``segment.TIED_TOPS`` on and, only where it joined a seed, off too (helper tomosplit):
rows as scripts/validate_tomo_draws.py writes them (the library's default reconstruction, after
``tomo_switch_pair.py``), to OUT_off.csv and OUT_on.csv. Where the switch joins no seed the labels, and so every
number, are the same with it off: that row is written to both files (``tied_joins`` 0) instead of analysing again.
``--screen``: the analysis is first run only to the solid mask and the seeds counted with and without the join;
a draw where it joins none gets a row with its seed, ``tied_joins`` 0 and no scores (equal to main's by
construction), the others are analysed with the switch on and off::

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/tomo_tied_tops_pair.py 9000:9100 /tmp/x/pair
"""
import argparse
import sys
import time
from pathlib import Path

import pandas as pd

import layerscope.tomo.chunked as C
import layerscope.tomo.segment as S
from layerscope.tomo.analysis import TomoOptions, analyse
from layerscope.tomo.phantom import draw_volume, random_phantom
from layerscope.tomo.scoring import draw_parameters, score_draw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tomo_probe import particle_inputs  # noqa: E402

JOINS = [0]


def _counting(real):
    def lut(f, markers, h):
        out = real(f, markers, h)
        JOINS[0] += int(markers.max()) - int(out.max())
        return out
    return lut


def _counting_slabs(real):
    def join(edt, markers, n, *a, **k):
        m = real(edt, markers, n, *a, **k)
        JOINS[0] += n - m
        return m
    return join


S.tied_tops_lut = _counting(S.tied_tops_lut)
C._join_tied_tops = _counting_slabs(C._join_tied_tops)


def _row(data, d) -> dict:
    t0 = time.process_time()
    try:
        res = analyse(data, TomoOptions())
        return {**d, "seconds": time.process_time() - t0, "error": "", **score_draw(res, d["_ph"])}
    except Exception as err:  # noqa: BLE001  (a row per draw, as the validator writes)
        return {**d, "error": f"{type(err).__name__}: {err}"[:200], "seconds": time.process_time() - t0}


def screen(data) -> int:
    """Seeds the join would merge in this draw (the analysis stopped at :func:`particle_labels`; in memory)."""
    solid, kw = particle_inputs(data)
    env = S.filled_envelope(S.closed_envelope(solid, kw["close_voxels"]))
    edt = S.distance_transform_core(env, slice(None))
    markers = S.joined_tops(S.h_maxima_core(edt, kw["h_voxels"]))
    JOINS[0] = 0
    S.tied_tops_lut(edt, markers, kw["h_voxels"])
    return JOINS[0]


def draw(seed: int, screened: bool = False) -> dict:
    ph = random_phantom(seed)
    d = draw_parameters(ph)
    data = draw_volume(ph)
    if screened and not screen(data):
        return {k: {"seed": seed, "projected": d["projected"], "tied_joins": 0, "screened": True} for k in ("on", "off")}
    d["_ph"] = ph
    JOINS[0] = 0
    S.TIED_TOPS = True
    on = _row(data, d)
    joins = JOINS[0]
    S.TIED_TOPS = False
    off = _row(data, d) if joins else dict(on)
    S.TIED_TOPS = True
    for r in (on, off):
        r.pop("_ph", None)
        r["tied_joins"] = joins
    return {"on": on, "off": off}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("seeds")
    ap.add_argument("out")
    ap.add_argument("--screen", action="store_true")
    a = ap.parse_args()
    lo, hi = map(int, a.seeds.split(":"))
    rows = {"off": [], "on": []}
    for s in range(lo, hi):
        o = draw(s, a.screen)
        for k in rows:
            rows[k].append(o[k])
            pd.DataFrame(rows[k]).to_csv(f"{a.out}_{k}.csv", index=False)
        print(s, o["on"]["tied_joins"], o["off"].get("particles_exact"), o["on"].get("particles_exact"),
              round(o["on"].get("seconds", 0), 1), flush=True)
