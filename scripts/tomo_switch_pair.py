#!/usr/bin/env python
"""Each draw analysed twice on one grey volume / reconstruction (helper tomobinder; after tomocvf7's
``tomo_fitblur_pair.py``, which it replaces: ``--switch FIT_BLUR``): a boolean switch of :mod:`layerscope.tomo.measure` off and on (``--switch``, default
``COAT_VOLUME``); rows as scripts/validate_tomo_draws.py writes them (default reconstruction), to OUT_off.csv and
OUT_on.csv; ``--order ROWS.csv`` runs the grey draws of an earlier run's rows first (the projected ones need a
reconstruction)::

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/tomo_switch_pair.py 5000:5100 /tmp/x/pair
"""
import argparse
import time

import numpy as np
import pandas as pd

import layerscope.tomo.measure as M
from layerscope.tomo.analysis import TomoOptions, analyse
from layerscope.tomo.phantom import draw_volume, random_phantom
from layerscope.tomo.scoring import draw_parameters, score_draw


def draw(seed: int, switch: str) -> dict:
    ph = random_phantom(seed)
    d = draw_parameters(ph)
    data = draw_volume(ph)
    out = {}
    for name, on in (("off", False), ("on", True)):
        setattr(M, switch, on)
        t0 = time.process_time()
        try:
            res = analyse(data, TomoOptions())
            out[name] = {**d, "seconds": time.process_time() - t0, "error": "", **score_draw(res, ph)}
        except Exception as err:  # noqa: BLE001  (a row per draw, as the validator writes)
            out[name] = {**d, "error": f"{type(err).__name__}: {err}"[:200], "seconds": time.process_time() - t0}
    setattr(M, switch, False)
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("seeds")
    ap.add_argument("out")
    ap.add_argument("--switch", default="COAT_VOLUME")
    ap.add_argument("--order", help="a CSV of rows with seed and projected: its grey draws first (cheap), then the rest")
    a = ap.parse_args()
    lo, hi = map(int, a.seeds.split(":"))
    seeds = list(range(lo, hi))
    if a.order:
        proj = pd.read_csv(a.order).set_index("seed")["projected"].to_dict()
        seeds.sort(key=lambda s: (bool(proj.get(s, True)), s))
    rows = {"off": [], "on": []}
    for s in seeds:
        o = draw(s, a.switch)
        for k in rows:
            rows[k].append(o[k])
            pd.DataFrame(rows[k]).to_csv(f"{a.out}_{k}.csv", index=False)
        print(s, round(o["off"].get("cvf_rel_err_max", np.nan), 3), round(o["on"].get("cvf_rel_err_max", np.nan), 3),
              round(o["off"]["seconds"], 1), round(o["on"]["seconds"], 1), flush=True)
