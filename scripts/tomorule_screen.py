#!/usr/bin/env python
"""Particle errors of ``segment.particle_labels`` on cached solid masks with ``LOW_TOPS`` off, at 0.5 with the tied
group one seed (``waist``: tomomerge4/5's rule, ``LOW_TOPS_TIED`` False) and with tied tops read as untied ones
(``rule``: ``LOW_TOPS_TIED`` True) (issue 20, helper tomorule; docs/validation.md "tomorule").

One CSV row per draw and setting: the truth and label counts, merges, splits, labels equal bit for bit to ``off``'s
and to ``waist``'s, ``untied`` (tied seeds that lie apart at ``LOW_TOPS * h``: the rule's new low-top seeds; where it
is 0 the ``rule`` labels are ``waist``'s by construction) and the CPU seconds. ``--lazy``: where ``untied`` is 0, the
second of ``waist`` and ``rule`` is not run (its row copies the first's, ``computed`` 0; alone, ``rule`` is a row
with ``computed`` 0 and no counts)::

    PYTHONPATH=src python scripts/tomorule_screen.py --cache /tmp/cache --out rows.csv --settings off,waist,rule 14000
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diagnose_tomo_contacts import CLOSE, cached, errors  # noqa: E402

from layerscope.tomo import segment as sg  # noqa: E402

SETTINGS = {"off": (None, False), "waist": (0.5, False), "rule": (0.5, True)}
H = 2.0


def untied(solid: np.ndarray) -> int:
    """Tied seeds of ``particle_labels``' split that lie apart at ``0.5 * h`` (new low-top seeds of the rule)."""
    env = sg.filled_envelope(sg.closed_envelope(solid, CLOSE))
    edt = sg.distance_transform_core(env, slice(None))
    markers = sg.joined_tops(sg.h_maxima_core(edt, H))
    lut, m = sg.untied_at_low_tops(sg.tied_tops_lut(edt, markers, H), sg.tied_tops_lut(edt, markers, 0.5 * H))
    return int(lut.max()) - m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seeds", type=int, nargs="+")
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--settings", default="off,waist,rule", help="comma-separated names of SETTINGS")
    ap.add_argument("--lazy", action="store_true", help="run 'rule' only where a tie is read apart")
    a = ap.parse_args()
    a.cache.mkdir(parents=True, exist_ok=True)
    new = not a.out.exists()
    with a.out.open("a", newline="") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(["seed", "setting", "untied", "computed", "truth", "labels", "merges", "splits", "same_as_off",
                        "same_as_waist", "seconds", "errors"])
        for s in a.seeds:
            solid, truth = cached(s, a.cache)
            n_untied, done, rows = untied(solid), {}, {}
            for name in a.settings.split(","):
                twin = {"rule": "waist", "waist": "rule"}.get(name)
                if a.lazy and n_untied == 0 and name in ("waist", "rule") and (
                        twin in rows or twin not in a.settings.split(",")):
                    w.writerow([s, name, 0, 0] + (rows[twin][4:] if twin in rows else [""] * 8))
                    continue
                sg.LOW_TOPS, sg.LOW_TOPS_TIED = SETTINGS[name]
                t0 = time.process_time()
                lab = done[name] = sg.particle_labels(solid, close_voxels=CLOSE)
                sec = time.process_time() - t0
                e = errors(lab, truth, solid)
                same = ["" if k not in done or k == name else int(np.array_equal(lab, done[k])) for k in ("off", "waist")]
                rows[name] = [s, name, n_untied, 1, int(truth.max()), int(lab.max()), sum("MERGE" in x for x in e),
                              sum("SPLIT" in x for x in e)] + same + [f"{sec:.2f}", " || ".join(e)]
                w.writerow(rows[name])
                fh.flush()
                print(s, name, n_untied, int(lab.max()), sum("MERGE" in x for x in e), sum("SPLIT" in x for x in e),
                      f"{sec:.1f}s", flush=True)


if __name__ == "__main__":
    main()
