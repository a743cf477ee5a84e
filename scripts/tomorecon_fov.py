#!/usr/bin/env python
"""Where the cracks of the projection draws lie against the detector's field of view (issue 20, helper tomorecon).

A projection draw's detector is as wide as its ``n``^3 volume, so only the cylinder of radius ``n / 2`` about the
rotation axis (the detector centre) is seen at every angle; the volume's corners outside it are seen over part of
the 180 deg only. Per truth crack: ``outside_share`` (its voxels at more than ``n / 2`` px from the axis) and
``axis_px_min``. One CSV row per crack; ``--rows`` merges each draw's validator row (``cracks_missed`` ...)::

    .venv/bin/python scripts/tomorecon_fov.py --seeds 9000:9100 --out fov.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate_random_draws import parse_seeds  # noqa: E402


def crack_fov(ph) -> list[dict]:
    """Per truth crack of ``ph``: share of its voxels outside the field-of-view cylinder, nearest distance (px)."""
    n = ph.volume.shape[1]
    _, yy, xx = np.indices(ph.volume.shape, sparse=True)
    r = np.hypot(yy - (n - 1) / 2, xx - (n - 1) / 2)
    r = np.broadcast_to(r, ph.volume.shape)
    rows = []
    for c in ph.crack_truth.itertuples():
        m = ph.cracks == c.crack
        if m.any():
            rows.append({"crack": c.crack, "width_voxels": c.width_voxels, "voxels": int(m.sum()),
                         "outside_share": float((r[m] > n / 2).mean()), "axis_px_min": float(r[m].min())})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from layerscope.tomo.phantom import random_phantom

    rows = []
    for s in parse_seeds(args.seeds):
        ph = random_phantom(s)
        if ph.specs["draw"]["projected"]:
            rows += [{"seed": s, "size": ph.volume.shape[0], **r} for r in crack_fov(ph)]
    pd.DataFrame(rows).to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
