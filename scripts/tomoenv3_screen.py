#!/usr/bin/env python
"""Screen and run tomography draws with ``segment`` constants set (helper tomoenv3, docs/validation.md "tomoenv3").

Per draw: the volume the analysis gets (a grey volume, or the reconstruction of the projections with the validator's
options), its solid mask and the filled envelope with the library's defaults and with the constants given. Where the
two envelopes are the same voxel for voxel, every later step and so every score is the defaults' (the draw is listed
as ``same``); where they differ, the validator's row is computed with the constants set (``validate_tomo_draws._draw``)
and written to ``--out`` (``--base-too`` also writes the defaults' row of such a draw to ``--base-out``)::

    PYTHONPATH=src python scripts/tomoenv3_screen.py --seeds 14000:14100 --set SLIVER_CLOSE_VOXELS=1 --out X.csv
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import validate_tomo_draws as vtd  # noqa: E402
from validate_random_draws import parse_seeds  # noqa: E402


def _envelope(solid: np.ndarray, close: int) -> np.ndarray:
    from layerscope.tomo.segment import closed_envelope, filled_envelope

    return filled_envelope(closed_envelope(solid, close))


def _changed(seed: int, values: dict) -> tuple[bool, int]:
    """Whether the constants ``values`` change draw ``seed``'s filled envelope, and by how many voxels."""
    from layerscope.tomo import segment
    from layerscope.tomo.analysis import TomoOptions, analyse
    from layerscope.tomo.phantom import draw_volume, random_phantom
    from layerscope.tomo.readers import Projections
    from layerscope.tomo.segment import solid_mask

    data = draw_volume(random_phantom(seed))
    if isinstance(data, Projections):
        opts = TomoOptions(recon=vtd.recon_options("default"), allow_limited_angle=True, reconstruct_only=True)
        data = analyse(data, opts).volume
    else:
        data = data.data
    o = TomoOptions()
    solid = solid_mask(data, smooth_voxels=o.smooth_voxels, threshold=o.threshold)[0]
    close = int(np.ceil(6.0 / 2))
    a = _envelope(solid, close)
    old = {k: getattr(segment, k) for k in values}
    for k, v in values.items():
        setattr(segment, k, v)
    try:
        b = _envelope(solid, close)
    finally:
        for k, v in old.items():
            setattr(segment, k, v)
    n = int((a ^ b).sum())
    return n > 0, n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", required=True, help="A:B or a comma-separated list")
    ap.add_argument("--set", action="append", default=[], help="segment NAME=VALUE (a Python literal)")
    ap.add_argument("--out", type=Path, required=True, help="validator rows of the draws whose envelope changed")
    ap.add_argument("--base-out", type=Path, default=None, help="with it: the defaults' rows of those draws too")
    args = ap.parse_args(argv)
    from layerscope.tomo import segment

    values = {k: ast.literal_eval(v) for k, v in (s.split("=", 1) for s in args.set)}
    seeds = [int(s) for s in args.seeds.split(",")] if "," in args.seeds else list(parse_seeds(args.seeds))
    rows, base, screen = [], [], []
    for seed in seeds:
        changed, n = _changed(seed, values)
        screen.append({"seed": seed, "envelope_voxels_changed": n})
        pd.DataFrame(screen).to_csv(args.out.with_name(args.out.stem + "_screen.csv"), index=False)
        print(f"{seed}: envelope {'changed by ' + str(n) + ' voxels' if changed else 'same'}", flush=True)
        if not changed:
            continue
        if args.base_out is not None:
            base.append(vtd._draw(seed, "default"))
            pd.DataFrame(base).to_csv(args.base_out, index=False)
        old = {k: getattr(segment, k) for k in values}
        for k, v in values.items():
            setattr(segment, k, v)
        try:
            row = vtd._draw(seed, "default")
        finally:
            for k, v in old.items():
                setattr(segment, k, v)
        rows.append({**row, **{k.lower(): v for k, v in values.items()}, "envelope_voxels_changed": n})
        print(vtd._line(row), flush=True)
        pd.DataFrame(rows).to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
