"""Benchmark: ``layerscope.tomo.reconstruct`` side by side with plain ASTRA FBP and scikit-image ``iradon``
on the same projections; time per volume and error against the phantom truth.

Projections: the cracked-particle phantom (``default_phantom``, ``--size`` px, 180 projections over
180 deg, 1e5 photons, rotation axis 1 px off the detector centre). layerscope does everything a
user gets (flat/dark normalisation, -log, centre search, ring removal, FBP through ASTRA, Dask
chunks); plain ASTRA FBP and iradon get the normalised sinograms and the true centre. The real
tooth (181 x 2 x 640) is timed too (no truth: agreement with iradon is printed instead).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tomo_reconstruction.py            # 64^3 phantom + tooth
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tomo_reconstruction.py --size 128
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi


def _plain_astra(lines: np.ndarray, angles_deg: np.ndarray, centre: float, gpu: bool) -> np.ndarray:
    from layerscope.tomo.recon import _astra_reconstruct

    shift = (lines.shape[2] - 1) / 2 - centre
    out = []
    for z in range(lines.shape[1]):
        s = ndi.shift(lines[:, z], (0, shift), order=3, mode="nearest") if shift else lines[:, z]
        out.append(_astra_reconstruct(s, np.deg2rad(angles_deg), "fbp", 1, gpu))
    return np.stack(out)


def _iradon(lines: np.ndarray, angles_deg: np.ndarray, centre: float) -> np.ndarray:
    from skimage.transform import iradon

    shift = (lines.shape[2] - 1) / 2 - centre
    out = []
    for z in range(lines.shape[1]):
        s = ndi.shift(lines[:, z], (0, shift), order=3, mode="nearest") if shift else lines[:, z]
        out.append(iradon(s.T, theta=angles_deg, filter_name="ramp", circle=True))
    return np.stack(out)


def _timed(func, *args, repeat: int = 2):
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = func(*args)
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--tooth", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/data/tomo/tomopy_tooth/tooth.h5")
    args = ap.parse_args()
    from layerscope.tomo import ReconOptions, default_phantom, project_phantom, read_tomo, reconstruct
    from layerscope.tomo.recon import gpu_available, transmission

    gpu = gpu_available()
    ph = default_phantom(args.size)
    proj = project_phantom(ph.volume, n_angles=180, photons=1e5, centre_offset_px=1.0, seed=0)
    centre = (args.size - 1) / 2 + 1.0
    lines, _ = transmission(proj)
    truth = ph.volume
    scale = float(np.sqrt(np.mean(truth ** 2)))
    rows = []
    t_ls, rec = _timed(lambda: reconstruct(proj, ReconOptions(device="auto")))
    rows.append(("layerscope (centre search, rings, FBP)", t_ls, rec.volume, f"centre {rec.centre_px:.2f} (true {centre:.2f})"))
    t_a, vol_a = _timed(_plain_astra, lines, proj.angles_deg, centre, gpu)
    rows.append(("plain ASTRA FBP (true centre)", t_a, vol_a, ""))
    t_i, vol_i = _timed(_iradon, lines, proj.angles_deg, centre, repeat=1)
    rows.append(("scikit-image iradon (true centre)", t_i, vol_i, ""))
    print(f"phantom {args.size}^3, 180 projections, device {'gpu' if gpu else 'cpu'}")
    print(f"{'method':42s} {'time s':>8s} {'ratio':>7s} {'rel. rms error':>15s}")
    for name, t, vol, note in rows:
        err = float(np.sqrt(np.mean((vol - truth) ** 2))) / scale
        print(f"{name:42s} {t:8.2f} {t / t_a:7.2f} {err:15.3f}  {note}")
    if args.tooth.is_file():
        tooth = read_tomo(args.tooth, voxel_size_nm=1000.0)
        t_lt, rt = _timed(lambda: reconstruct(tooth, ReconOptions()), repeat=1)
        tl, _ = transmission(tooth)
        t_at, va = _timed(_plain_astra, tl, tooth.angles_deg, rt.centre_px, gpu, repeat=1)
        t_it, vi = _timed(_iradon, tl, tooth.angles_deg, rt.centre_px, repeat=1)
        d = float(np.sqrt(np.mean((va - vi) ** 2)) / np.sqrt(np.mean(vi ** 2)))
        print(f"tooth 181 x 2 x 640: layerscope {t_lt:.2f} s (incl. centre search {rt.centre_px:.2f} px), "
              f"plain ASTRA {t_at:.2f} s, iradon {t_it:.2f} s; ASTRA vs iradon rel. rms difference {d:.3f}")


if __name__ == "__main__":
    main()
