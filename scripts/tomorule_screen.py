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


def untied(solid: np.ndarray, low: bool = False) -> int | tuple[int, int]:
    """Tied seeds of ``particle_labels``' split that lie apart at ``0.5 * h`` (new low-top seeds of the rule); with
    ``low`` also the low-top seeds ``with_low_tops`` adds (where both are 0 every setting gives ``off``'s labels)."""
    env = sg.filled_envelope(sg.closed_envelope(solid, CLOSE))
    edt = sg.distance_transform_core(env, slice(None))
    markers = sg.joined_tops(sg.h_maxima_core(edt, H))
    lut, m = sg.untied_at_low_tops(sg.tied_tops_lut(edt, markers, H), sg.tied_tops_lut(edt, markers, 0.5 * H))
    if not low:
        return int(lut.max()) - m
    sg.LOW_TOPS = 0.5
    more, n = sg.with_low_tops(edt, lut[markers], H)
    return int(more.max()) - n, int(lut.max()) - m


def counted(solid: np.ndarray) -> tuple[np.ndarray, int]:
    """``particle_labels`` of ``solid`` and the tied seeds its ``untied_at_low_tops`` read apart (as :func:`untied`)."""
    seen, plain = [0], sg.untied_at_low_tops

    def spy(lut, low_lut):
        out, m = plain(lut, low_lut)
        seen[0] += int(out.max()) - m
        return out, m

    sg.untied_at_low_tops = spy
    try:
        return sg.particle_labels(solid, close_voxels=CLOSE), seen[0]
    finally:
        sg.untied_at_low_tops = plain


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seeds", type=int, nargs="+")
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--settings", default="off,waist,rule", help="comma-separated names of SETTINGS")
    ap.add_argument("--lazy", action="store_true", help="run 'rule' only where a tie is read apart")
    ap.add_argument("--changed", action="store_true", help="run nothing (a row 'none') where no low top is added and "
                    "no tie read apart: every setting gives off's labels there")
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
            names = a.settings.split(",")
            if a.changed:
                n_low, n_tied = untied(solid, low=True)
                if n_low == 0 and n_tied == 0:
                    w.writerow([s, "none", 0, 0] + [""] * 8)
                    print(s, "no low top, no tie apart", flush=True)
                    continue
            check = a.lazy and (names[0] != "rule" or "waist" not in names)  # else counted on the rule's run
            n_untied, done, rows = (untied(solid) if check else None), {}, {}
            for name in names:
                twin = {"rule": "waist", "waist": "rule"}.get(name)
                if a.lazy and n_untied == 0 and name in ("waist", "rule") and (twin in rows or twin not in names):
                    rows[name] = [s, name, 0, 0] + (rows[twin][4:8] if twin in rows else [""] * 4)
                    done[name] = done.get(twin)
                    continue
                sg.LOW_TOPS, sg.LOW_TOPS_TIED = SETTINGS[name]
                t0 = time.process_time()
                lab, seen = counted(solid) if name == "rule" else (sg.particle_labels(solid, close_voxels=CLOSE), None)
                sec = time.process_time() - t0
                n_untied, done[name] = (seen if n_untied is None else n_untied), lab
                e = errors(lab, truth, solid)
                rows[name] = [s, name, n_untied, 1, int(truth.max()), int(lab.max()), sum("MERGE" in x for x in e),
                              sum("SPLIT" in x for x in e), f"{sec:.2f}", " || ".join(e)]
                print(s, name, n_untied, *rows[name][5:9], flush=True)
            for name, row in rows.items():
                same = ["" if done.get(k) is None or done.get(name) is None or k == name
                        else int(np.array_equal(done[name], done[k])) for k in ("off", "waist")]
                if len(row) > 8:
                    row = row[:8] + same + row[8:]
                else:
                    row = row + same + ["", ""]
                row[2] = n_untied
                w.writerow(row)
            fh.flush()

if __name__ == "__main__":
    main()
