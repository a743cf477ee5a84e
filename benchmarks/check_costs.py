"""CPU cost of the checks added in session 15: the contrast-polarity and clipping checks of a 2048^2 image
(layerscope columns/phases) and the crossing-plane search of a crack feature (layerscope tomo).

usage: OMP_NUM_THREADS=1 python benchmarks/check_costs.py   (docs/benchmarks.md, "Cost of the new checks")
"""
import time, numpy as np
from scipy import ndimage as ndi
from layerscope.tomo.phantom import build_phantom, ParticleSpec, CrackSpec
from layerscope.tomo.segment import planar_sheets
from layerscope.imaging.polarity import contrast_skewness
from layerscope.imaging.clipping import clipped_share
ph = build_phantom((64, 64, 64), [ParticleSpec((32, 32, 32), (24, 24, 24))],
                   [CrackSpec(1, (0, 0, 1), 2.5, radius_voxels=14), CrackSpec(1, (0, 1, 0), 2.5, radius_voxels=14)], [])
m = ph.cracks > 0; P = np.argwhere(m).astype(float)
half = float(np.percentile(ndi.distance_transform_edt(m)[m], 90))
for n, pts in (("X 90 (3433 voxels)", P), ("X 90 x8 scaled (27k voxels)", np.repeat(P * 2, 8, axis=0) + np.random.default_rng(0).random((8 * len(P), 3)))):
    t = time.process_time()
    for _ in range(3): planar_sheets(pts, tol=half + 0.5, max_flatness=0.45, min_sheet_voxels=1.5)
    print(n, f"{(time.process_time() - t) / 3:.3f} s CPU")
img = np.random.default_rng(0).poisson(5, (2048, 2048)).astype(float)
for f, name in ((lambda: contrast_skewness(img, scale_px=28), "contrast_skewness 2048^2"), (lambda: clipped_share(img), "clipped_share 2048^2")):
    t = time.process_time(); [f() for _ in range(5)]; print(name, f"{(time.process_time() - t) / 5:.3f} s CPU")
