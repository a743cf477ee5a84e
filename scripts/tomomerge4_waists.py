#!/usr/bin/env python
"""Each face of a low-top label on the watershed labels before any join (issue 20, helper tomomerge4;
docs/validation.md "tomomerge4"): neck ratio (smaller label's radius), dark share, whether both labels are one truth
particle, and the waist reading of ``segment.waists`` (the face's section radius against the widest section's on
each side of the two labels' union; voxels)::

    PYTHONPATH=src python scripts/tomomerge4_waists.py --cache /tmp/cache 9063 9036
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from skimage.segmentation import watershed

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diagnose_tomo_contacts import CLOSE, cached  # noqa: E402

from layerscope.tomo import segment as sg  # noqa: E402


def low_labels(solid: np.ndarray, h: float = 2.0) -> tuple[np.ndarray, int, np.ndarray]:
    """The watershed labels of ``split_envelope`` with ``LOW_TOPS`` 0.5 before the joins, ``high`` and the dark voxels."""
    sg.LOW_TOPS = 0.5
    env = sg.filled_envelope(sg.closed_envelope(solid, CLOSE))
    edt = sg.distance_transform_core(env, slice(None))
    markers = sg.joined_tops(sg.h_maxima_core(edt, h))
    markers = sg.tied_tops_lut(edt, markers, h)[markers]
    markers, high = sg.with_low_tops(edt, markers, h)
    return watershed(-edt, markers, mask=env), high, env & ~solid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seeds", type=int, nargs="+")
    ap.add_argument("--cache", type=Path, required=True)
    a = ap.parse_args()
    for s in a.seeds:
        solid, truth = cached(s, a.cache)
        lab, high, dark = low_labels(solid)
        faces, sizes = sg.label_faces(lab, dark), np.bincount(lab.ravel())
        planes = sg.waist_planes(faces, high)
        counts = sg.section_counts(lab, planes, lab.shape)
        for k, m in faces.items():
            if k[1] <= high:
                continue
            t = [int(np.bincount(truth[lab == i]).argmax()) for i in k]
            ratio = sg.face_radius(m) / np.cbrt(3 * sizes[list(k)].min() / (4 * np.pi))
            line = f"{s} {k[1]} ({sizes[k[1]]}, t{t[1]}) - {k[0]} ({sizes[k[0]]}, t{t[0]}) same={t[0] == t[1]} " \
                   f"ratio {ratio:.2f} dark {m[10] / m[0]:.2f}"
            if k in planes:
                r = np.sqrt(counts[k] / np.pi)
                mid = r.size // 2
                line += f" r0 {r[mid]:.1f} sides {r[:mid].max():.1f} {r[mid + 1:].max():.1f} " \
                        f"margin {min(r[:mid].max(), r[mid + 1:].max()) - r[mid]:.2f}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
