#!/usr/bin/env python
"""Reconstruction quality of the projection draws against their truth (issue 20, helper tomorecon).

For each projection draw of ``--seeds`` (``specs["draw"]["projected"]``), reconstruct its projections with each
``--filters`` FBP filter (the library's default ``ReconOptions`` otherwise) and measure, in units of the draw's
particle-epoxy contrast (mu_particle - mu_epoxy):

- ``noise``: standard deviation of the reconstruction over the particles' solid voxels at least 3 voxels from any
  crack, pore or particle surface (truth masks);
- ``crack_depth``: particle level minus the mean over the crack voxels (1 = as dark as epoxy, 0 = invisible),
  the particle level taken as the median of the same solid voxels;
- ``cnr``: ``crack_depth / noise``.

The same numbers for the draw's grey twin (the same phantom through :func:`draw_volume` as a grey volume with the
draw's own ``noise`` and ``blur_voxels``) are in the rows with ``filter`` = ``grey``. One CSV row per draw and filter::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/tomorecon_probe.py --seeds 9000:9100 --out probe.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate_random_draws import parse_seeds  # noqa: E402


def _masks(ph) -> tuple[np.ndarray, np.ndarray]:
    """Solid voxels 3 voxels from any crack, pore or surface; crack voxels."""
    from scipy import ndimage as ndi

    solid = (ph.particles > 0) & (ph.cracks == 0) & (ph.pores == 0)
    return ndi.binary_erosion(solid, iterations=3), ph.cracks > 0


def quality(vol: np.ndarray, ph) -> dict:
    """``noise``, ``crack_depth`` and ``cnr`` of ``vol`` (see the module docstring)."""
    d = ph.specs["draw"]
    contrast = d["mu_particle"] - d["mu_epoxy"]
    inner, crack = _masks(ph)
    level = float(np.median(vol[inner]))
    noise = float(np.std(vol[inner])) / contrast
    depth = (level - float(vol[crack].mean())) / contrast if crack.any() else np.nan
    return {"noise": noise, "crack_depth": depth, "cnr": depth / noise if noise > 0 else np.nan,
            "level_rel": (level - d["mu_epoxy"]) / contrast}


def probe(seed: int, filters: list[str]) -> list[dict]:
    from dataclasses import replace

    from layerscope.tomo.phantom import draw_volume, random_phantom
    from layerscope.tomo.recon import ReconOptions, reconstruct

    ph = random_phantom(seed)
    d = ph.specs["draw"]
    base = {"seed": seed, "size": d["size"], "photons": d["photons"], "n_angles": d["n_angles"],
            "n_cracks": d["n_cracks"], "grey_noise": d["noise"], "grey_blur": d["blur_voxels"]}
    proj = draw_volume(ph)
    rows = []
    for f in filters:
        rec = reconstruct(proj, ReconOptions(fbp_filter=f))
        rows.append({**base, "filter": f, **quality(rec.volume, ph)})
    twin = replace(ph, specs={**ph.specs, "draw": {**d, "projected": False}})
    rows.append({**base, "filter": "grey", **quality(draw_volume(twin).data, ph)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", required=True)
    parser.add_argument("--filters", default="ram-lak,shepp-logan,cosine,hamming,hann")
    parser.add_argument("--limit", type=int, default=0, help="at most this many projection draws (0: all)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from layerscope.tomo.phantom import random_phantom

    seeds = [s for s in parse_seeds(args.seeds) if random_phantom(s).specs["draw"]["projected"]]
    seeds = seeds[:args.limit] if args.limit else seeds
    rows = []
    for s in seeds:
        rows += probe(s, args.filters.split(","))
        pd.DataFrame(rows).to_csv(args.out, index=False)
        print(pd.DataFrame(rows[-len(args.filters.split(",")) - 1:]).round(3).to_string(index=False), flush=True)
    df = pd.DataFrame(rows)
    print(df.groupby("filter")[["noise", "crack_depth", "cnr"]].median().round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
