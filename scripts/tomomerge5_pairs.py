#!/usr/bin/env python
"""The tied-tops joins and the low-top labels kept apart, against the truth (issue 20, helper tomomerge5;
docs/validation.md "tomomerge5"), on cached solid masks (``scripts/diagnose_tomo_contacts.cached``).

Two kinds of row per draw, one per pair of seeds:

* ``tied``: two seeds that ``segment.tied_tops_lut`` joins (``TIED_TOPS``), read as ``segment.LOW_TOPS`` reads a
  low-top label's face: the watershed of the untied seeds, the face between the two seeds' labels, its neck ratio
  (disc radius over the smaller label's equivalent-sphere radius), dark share, waist margin (the smaller of the two
  sides' widest section's equivalent-disc radius less the face's, voxels) and the dip (the tied top value less the
  pass between the two labels: the highest ``min`` of the distance map over a neighbour pair across the face).
  ``rule_split``: 1 where a LOW_TOPS-consistent tied rule would keep the two apart (dip at least ``LOW_TOPS * h``,
  ratio below ``LOW_TOPS_NECK``, a waist by ``LOW_TOPS_WAIST``, dark share below ``CRACK_FACE[1]``).
* ``low``: each low-top label that ``LOW_TOPS = 0.5`` with the guard keeps apart (not joined), against the label it
  meets widest: the same columns, the dip its top's value less the highest pass to any neighbour.

``same_truth``: 1 where both labels' majority truth particle is one (keeping them apart is a split), 0 where two
(joining them is a merge)::

    PYTHONPATH=src python scripts/tomomerge5_pairs.py --cache /tmp/cache --out rows.csv 9000 9001
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import watershed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diagnose_tomo_contacts import CLOSE, cached, majority  # noqa: E402

from layerscope.tomo import segment as sg  # noqa: E402

H = 2.0
COLS = ["seed", "kind", "a", "b", "truth_a", "truth_b", "same_truth", "top", "dip", "ratio", "dark", "margin",
        "rule_split"]


def margin(lab: np.ndarray, faces: dict, k: tuple[int, int]) -> float:
    """Waist margin (voxels) of face ``k``: the smaller side's widest section radius less the face's (NaN: no plane)."""
    planes = sg.waist_planes({k: faces[k]}, 0) if sg.LOW_TOPS_WAIST is not None else {}
    if not planes:
        return float("nan")
    r = np.sqrt(sg.section_counts(lab, planes, lab.shape)[k] / np.pi)
    mid = r.size // 2
    return float(min(r[:mid].max(), r[mid + 1:].max()) - r[mid])


def passes(lab: np.ndarray, edt: np.ndarray) -> dict[tuple[int, int], float]:
    """For each pair of 6-neighbouring labels: the highest ``min(edt)`` over a neighbour pair across them."""
    n, keys, vals = int(lab.max()) + 1, [], []
    for ax in range(3):
        lo = tuple(slice(0, -1) if a == ax else slice(None) for a in range(3))
        hi = tuple(slice(1, None) if a == ax else slice(None) for a in range(3))
        a, b = lab[lo], lab[hi]
        at = np.nonzero((a > 0) & (b > 0) & (a != b))
        keys.append(np.minimum(a[at], b[at]).astype(np.int64) * n + np.maximum(a[at], b[at]))
        vals.append(np.minimum(edt[lo][at], edt[hi][at]))
    keys, vals = np.concatenate(keys), np.concatenate(vals)
    uniq, inv = np.unique(keys, return_inverse=True)
    best = ndi.maximum(vals, inv, np.arange(uniq.size)) if uniq.size else []
    return {(int(k // n), int(k % n)): float(v) for k, v in zip(uniq, best)}


def pair_row(seed, kind, k, lab, faces, sizes, truth, top, pas):
    """One CSV row for face ``k`` of ``lab``."""
    m = faces[k]
    ratio = sg.face_radius(m) / float(np.cbrt(3 * min(sizes[k[0]], sizes[k[1]]) / (4 * np.pi)))
    dark, mg = m[10] / m[0], margin(lab, faces, k)
    dip = top - pas[k]
    ta, tb = majority(lab, truth, k[0]), majority(lab, truth, k[1])
    split = (dip >= sg.LOW_TOPS * H and ratio < sg.LOW_TOPS_NECK and (np.isnan(mg) or mg >= sg.LOW_TOPS_WAIST)
             and dark < sg.CRACK_FACE[1])
    return [seed, kind, k[0], k[1], ta, tb, int(ta == tb), f"{top:.3f}", f"{dip:.3f}", f"{ratio:.3f}",
            f"{dark:.3f}", f"{mg:.2f}", int(split)]


def tied_rows(seed, edt, env, dark, truth):
    """Rows of the seed pairs the tied-tops join joins (faces of the untied watershed between seeds of one group)."""
    markers = sg.joined_tops(sg.h_maxima_core(edt, H))
    lut = sg.tied_tops_lut(edt, markers, H)
    if lut.max() == markers.max():
        return []
    lab = watershed(-edt, markers, mask=env)
    faces, sizes = sg.label_faces(lab, dark), np.bincount(lab.ravel())
    pos = np.nonzero(markers)
    top = {int(i): float(v) for i, v in zip(np.unique(markers[pos]),
                                            ndi.maximum(edt[pos], markers[pos], np.unique(markers[pos])))}
    pas = passes(lab, edt)
    return [pair_row(seed, "tied", k, lab, faces, sizes, truth, top[k[0]], pas)
            for k in faces if lut[k[0]] == lut[k[1]]]


def low_rows(seed, edt, env, dark, truth):
    """Rows of the low-top labels that LOW_TOPS with the guard keeps apart, each against its widest face."""
    markers = sg.joined_tops(sg.h_maxima_core(edt, H))
    markers = sg.tied_tops_lut(edt, markers, H)[markers]
    markers, high = sg.with_low_tops(edt, markers, H)
    if markers.max() == high:
        return []
    lab = watershed(-edt, markers, mask=env)
    root = sg.join_low_tops(lab, high, dark)
    faces, sizes = sg.label_faces(lab, dark), np.bincount(lab.ravel())
    pos = np.nonzero(markers)
    ids = np.unique(markers[pos])
    top = dict(zip(ids.tolist(), ndi.maximum(edt[pos], markers[pos], ids)))
    pas = passes(lab, edt)
    out = []
    for i in range(high + 1, int(lab.max()) + 1):
        if (root[1:high + 1] == root[i]).any() or (root[high + 1:i] == root[i]).any() or not any(i in k for k in faces):
            continue  # joined to a high label, not the first of its group, or alone
        mine = [k for k in faces if i in k]
        k = max(mine, key=lambda q: sg.face_radius(faces[q]))
        row = pair_row(seed, "low", k, lab, faces, sizes, truth, float(top[i]), pas)
        row[8] = f"{float(top[i]) - max(pas[q] for q in mine):.3f}"
        out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seeds", type=int, nargs="+")
    ap.add_argument("--cache", type=Path, nargs="+", required=True, help="cache folders, the first holding a draw")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    sg.LOW_TOPS = 0.5
    new = not a.out.exists()
    with a.out.open("a", newline="") as fh:
        w = csv.writer(fh)
        if new:
            w.writerow(COLS)
        for s in a.seeds:
            cache = next((c for c in a.cache if (c / f"{s}.npz").exists()), a.cache[0])
            solid, truth = cached(s, cache)
            env = sg.filled_envelope(sg.closed_envelope(solid, CLOSE))
            edt = sg.distance_transform_core(env, slice(None))
            rows = tied_rows(s, edt, env, env & ~solid, truth) + low_rows(s, edt, env, env & ~solid, truth)
            w.writerows(rows)
            fh.flush()
            print(s, len(rows), flush=True)


if __name__ == "__main__":
    main()
