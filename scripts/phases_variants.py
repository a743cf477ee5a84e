"""`phases` on acquisition/export variants of simulated draws (docs/validation.md, "phases under acquisition and export variants").

usage: python scripts/phases_variants.py SEED [SEED ...]   (about 2 min per draw on one core)
"""
import numpy as np, sys
from scipy import ndimage as ndi
from layerscope.simulate.draws import draw_scene, draw_parameters
from layerscope.imaging import pipeline
from layerscope.imaging.options import PhasesOptions
CH = {"Li-rich": "Li1.2Ni0.2Mn0.6O2"}
def variants(im, px):
    rng = np.random.default_rng(0)
    yield "orig", im, px, "poisson"
    yield "uint8 stretch", np.clip((im - im.min()) / (im.max() - im.min()) * 255, 0, 255).astype(np.uint8), px, "gaussian"
    yield "uint8 stretch, poisson model", np.clip((im - im.min()) / (im.max() - im.min()) * 255, 0, 255).astype(np.uint8), px, "poisson"
    yield "blur 1px", ndi.gaussian_filter(im.astype(float), 1.0), px, "gaussian"
    h, w = im.shape; yy, xx = np.mgrid[0:h, 0:w]
    yield "carbon background", im + im.mean() * 0.8 * (1 + np.sin(xx / w * 3 + yy / h * 2)), px, "poisson"
    yield "x stretched 3%", ndi.zoom(im.astype(float), (1.0, 1.03), order=1), px, "gaussian"
    yield "binned 2x", im[: h // 2 * 2, : w // 2 * 2].reshape(h // 2, 2, w // 2, 2).sum(axis=(1, 3)), 2 * px, "poisson"
    yield "transposed", im.T.copy(), px, "poisson"
for seed in [int(s) for s in sys.argv[1:]]:
    im, px, truth = draw_scene(seed)
    p = draw_parameters(seed)
    for name, data, ps, nm in variants(im, px):
        try:
            r = pipeline.analyse(data, PhasesOptions(composition=CH.get(p["chemistry"], p["chemistry"]), zone=str(p["zone"]), noise_model=nm), pixel_size_nm=ps)
            s = r.summary
            print(seed, name.ljust(30), {k: round(v, 2) for k, v in s["phase_fractions"].items()}, "mix y/n/u", s["interlayers"]["mixing_yes"], s["interlayers"]["mixing_no"], s["interlayers"]["mixing_uncertain"], "flags", [f["code"] for f in s["flags"]], flush=True)
        except Exception as e:
            print(seed, name.ljust(30), "refused:", type(e).__name__, str(e)[:120], flush=True)
