"""Benchmark: ``layerscope.tomo.reconstruct`` on the GPU (ASTRA CUDA) against the CPU path, same projections.

The object is the tiled cracked-particle phantom of ``tomo_512.py`` (``default_phantom(64)`` tiled to
``--size``^3, attenuation divided by the tiling so a ray through the volume loses what it loses through one
tile), projected over 0-180 deg by ASTRA's GPU projector (its CPU strip projector without a GPU) and given
as transmission (no noise: the point is GPU against CPU on identical input). Timed, each in process after
one warm-up slice:

* the whole volume on the GPU: FBP with the centre given and no ring removal (the plain chain), and the
  full chain (centre search, ring removal, FBP);
* ``--cpu-rows`` central detector rows on the CPU (Dask threads, every core), scaled to the whole volume;
* SIRT (``--iterations``) on ``--cpu-rows`` rows on both.

Printed: seconds, the GPU/CPU ratio, and the agreement of the two reconstructions (rms of the difference
relative to the rms of the CPU volume) and of each with the phantom (relative rms error)::

    python3 benchmarks/tomo_gpu.py --size 512 --angles 800 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def _phantom_projections(size: int, n_angles: int, projector: str):
    """Transmission projections (n_angles, size, size) of the tiled phantom, and its truth volume."""
    from tomo_512 import TILE, _tile_sinograms

    from layerscope.tomo.readers import Projections

    lines, ph = _tile_sinograms(size, n_angles, projector)
    rows = np.arange(size) % TILE
    data = np.exp(-lines[:, rows])
    truth = np.tile(ph.volume.astype(np.float32) / (size // TILE), (size // TILE,) * 3)
    angles = np.linspace(0.0, 180.0, n_angles, endpoint=False)
    return Projections(data, angles, 50.0, transmission=True), truth


def _timed(func):
    t = time.perf_counter()
    out = func()
    return time.perf_counter() - t, out


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """rms(a - b) / rms(b)."""
    return float(np.sqrt(np.mean((a - b) ** 2)) / np.sqrt(np.mean(b ** 2)))


def _rows(proj, n: int):
    """The ``n`` central detector rows (through the particles of a tile, not its empty top)."""
    from layerscope.tomo.readers import Projections

    a = (proj.data.shape[1] - n) // 2
    return Projections(proj.data[:, a:a + n], proj.angles_deg, proj.pixel_size_nm, transmission=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=512, help="edge of the volume (a multiple of 64)")
    ap.add_argument("--angles", type=int, default=800, help="projections over 0-180 deg")
    ap.add_argument("--cpu-rows", type=int, default=32, help="detector rows reconstructed on the CPU")
    ap.add_argument("--iterations", type=int, default=50, help="SIRT iterations")
    ap.add_argument("--json", default=None, help="write the numbers here")
    args = ap.parse_args()
    from layerscope.tomo import ReconOptions, reconstruct
    from layerscope.tomo.recon import gpu_available

    res: dict = {"size": args.size, "angles": args.angles, "cpus": os.cpu_count(), "gpu": gpu_available()}
    t, (proj, truth) = _timed(lambda: _phantom_projections(args.size, args.angles, "cuda" if res["gpu"] else "strip"))
    print(f"{args.size}^3 phantom, {args.angles} projections made in {t:.0f} s; ASTRA CUDA: {res['gpu']}", flush=True)
    centre = (args.size - 1) / 2
    plain = dict(centre_px=centre, rings=False)
    k = args.cpu_rows
    reconstruct(_rows(proj, 1), ReconOptions(device="cpu", **plain))  # warm-ups
    runs = {"cpu_fbp_rows": ("cpu", dict(plain), k), "cpu_sirt_rows": ("cpu", dict(plain, algorithm="sirt"), k)}
    if res["gpu"]:
        reconstruct(_rows(proj, 1), ReconOptions(device="gpu", **plain))
        runs = {"gpu_fbp": ("gpu", dict(plain), args.size), "gpu_fbp_full_chain": ("gpu", {}, args.size),
                "gpu_sirt_rows": ("gpu", dict(plain, algorithm="sirt"), k), **runs}
    vols = {}
    for name, (device, opts, n) in runs.items():
        if "algorithm" in opts:
            opts["iterations"] = args.iterations
        sec, rec = _timed(lambda: reconstruct(_rows(proj, n), ReconOptions(device=device, **opts)))
        a, b = (args.size - n) // 2, (args.size - k) // 2
        vols[name] = rec.volume[b - a:b - a + k]
        err = _rel(rec.volume, truth[a:a + n])
        res[name] = {"s": sec, "rows": n, "s_whole_volume": sec * args.size / n, "rel_rms_error": err,
                     "centre_px": rec.centre_px, "device": rec.device}
        print(f"{name:20s} {n:4d} rows {sec:8.2f} s (whole volume {sec * args.size / n:8.1f} s) on {rec.device}, "
              f"rel. rms error {err:.3f}, centre {rec.centre_px:.2f}", flush=True)
    for gpu_run, cpu_run in (("gpu_fbp", "cpu_fbp_rows"), ("gpu_sirt_rows", "cpu_sirt_rows")):
        if gpu_run in vols:
            d = _rel(vols[gpu_run], vols[cpu_run])
            ratio = res[cpu_run]["s_whole_volume"] / res[gpu_run]["s_whole_volume"]
            res[f"{gpu_run}_vs_cpu"] = {"rel_rms_difference": d, "speed_ratio": ratio}
            print(f"{gpu_run} vs {cpu_run}: rel. rms difference {d:.4f}, GPU {ratio:.1f}x faster", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
