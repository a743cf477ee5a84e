#!/usr/bin/env python
"""Per-crack contrast of projection draws under reconstruction variants (issue 20, helper tomorecon).

For each seed (a projection draw), reconstruct with each variant (``ram-lak``: the library's default; ``hann``: the
Hann-tapered FBP filter; ``detect``: ``ring_method="detect"``; ``norings``: ``rings=False``; ``cgls15``, ``sirt100``:
CGLS with 15, SIRT with 100 iterations) and, per truth crack,
write its ``depth``: the median of the particle's solid voxels 3 voxels from any crack, pore or surface minus the
mean over the crack's voxels, in units of the particle-epoxy contrast (1: as dark as epoxy), with the crack's width,
its voxel count, and ``axis_px``: the smallest distance of its voxels from the rotation axis (the detector centre,
px). The grey twin (``draw_volume`` of the same phantom as a grey volume with the draw's own noise and blur) is the
variant ``grey``::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/tomorecon_cracks.py 9017 7092 --out cracks.csv
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

VARIANTS = {"ram-lak": {}, "hann": {"fbp_filter": "hann"}, "detect": {"ring_method": "detect"},
            "norings": {"rings": False}, "cgls15": {"algorithm": "cgls", "iterations": 15},
            "sirt100": {"algorithm": "sirt", "iterations": 100}}


#: volume-side denoises of the Ram-Lak volume (``post-<name>``): a Gaussian of 0.7 voxel, and scikit-image's TV
#: (Chambolle) with its weight the volume's own noise (``estimate_sigma``, a wavelet MAD estimate)
POST = ("gauss0.7", "tv")


def post_filtered(vol: np.ndarray, name: str) -> np.ndarray:
    from scipy import ndimage as ndi
    from skimage.restoration import denoise_tv_chambolle, estimate_sigma

    if name == "gauss0.7":
        return ndi.gaussian_filter(vol, 0.7)
    return denoise_tv_chambolle(vol, weight=float(estimate_sigma(vol)))


def crack_rows(vol: np.ndarray, ph) -> list[dict]:
    from scipy import ndimage as ndi

    d = ph.specs["draw"]
    contrast = d["mu_particle"] - d["mu_epoxy"]
    solid = ndi.binary_erosion((ph.particles > 0) & (ph.cracks == 0) & (ph.pores == 0), iterations=3)
    level = float(np.median(vol[solid]))
    n = vol.shape[1]
    _, yy, xx = np.indices(vol.shape)
    r = np.hypot(yy - (n - 1) / 2, xx - (n - 1) / 2)
    rows = []
    for c in ph.crack_truth.itertuples():
        m = ph.cracks == c.crack
        if not m.any():
            continue
        rows.append({"crack": c.crack, "particle": c.particle, "width_voxels": c.width_voxels,
                     "voxels": int(m.sum()), "axis_px": float(r[m].min()),
                     "depth": (level - float(vol[m].mean())) / contrast,
                     "noise": float(np.std(vol[solid])) / contrast})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("seeds", type=int, nargs="+")
    parser.add_argument("--variants", default="ram-lak,hann,detect,norings")
    parser.add_argument("--post", action="store_true", help="also the volume-side denoises of :data:`POST`")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from layerscope.tomo.phantom import draw_volume, random_phantom
    from layerscope.tomo.recon import ReconOptions, reconstruct

    rows = []
    for seed in args.seeds:
        ph = random_phantom(seed)
        d = ph.specs["draw"]
        proj = draw_volume(ph)
        for v in args.variants.split(","):
            vol = reconstruct(proj, ReconOptions(**VARIANTS[v])).volume
            rows += [{"seed": seed, "variant": v, "photons": d["photons"], "n_angles": d["n_angles"], **r}
                     for r in crack_rows(vol, ph)]
            if v == "ram-lak" and args.post:
                for name in POST:
                    rows += [{"seed": seed, "variant": "post-" + name, "photons": d["photons"],
                              "n_angles": d["n_angles"], **r} for r in crack_rows(post_filtered(vol, name), ph)]
        twin = replace(ph, specs={**ph.specs, "draw": {**d, "projected": False}})
        rows += [{"seed": seed, "variant": "grey", "photons": d["photons"], "n_angles": d["n_angles"], **r}
                 for r in crack_rows(draw_volume(twin).data, ph)]
        df = pd.DataFrame(rows)
        df.to_csv(args.out, index=False)
        print(df[df.seed == seed].pivot_table(index=["crack", "width_voxels", "axis_px"], columns="variant",
                                              values="depth").round(3).to_string(), flush=True)
        print(df[df.seed == seed].groupby("variant")["noise"].first().round(4).to_string(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
