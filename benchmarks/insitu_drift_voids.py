"""Benchmark: drift correction + void segmentation of a 1000-frame, 1024 x 1024 movie, side by side
with pystackreg (translation) and scikit-image's phase_cross_correlation (upsample 20).

The movie is simulated once (layerscope.insitu.synthetic: a speckled foil at 0.25 nm/px, 40 voids
of 3-8 nm (45 % of the thickness) that nucleate and grow, a 0.3 px/frame random-walk drift,
Poisson noise at 100 counts/px) and kept as a zarr store (uint16, one chunk per frame) in --cache;
the timings read it from there, lazily.
layerscope runs the whole movie (drift against the first frame + voids + tracking, Dask threads,
bounded memory); the anchors register a subset of frames against the first (their speed per
frame does not depend on the number of frames). Drift errors are against the simulated truth.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/insitu_drift_voids.py            # 1000 x 1024^2
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/insitu_drift_voids.py --frames 200 --subset 20
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import numpy as np


def _voids(n: int, field_nm: float, frames: int, dt: float, seed: int):
    from layerscope.insitu.synthetic import VoidSpec

    rng = np.random.default_rng(seed)
    duration = frames * dt
    return [VoidSpec(float(x), float(y), float(r), nucleation_s=float(t), growth_nm_per_s=float(g), depth=0.45)
            for x, y, r, t, g in zip(rng.uniform(0.08, 0.92, n) * field_nm, rng.uniform(0.08, 0.92, n) * field_nm,
                                     rng.uniform(1.5, 4.0, n), rng.uniform(0, 0.7 * duration, n),
                                     rng.uniform(0.0, 1.5 / duration, n))]


def _render_chunk(item, *, renderer, store):
    import zarr

    arr = zarr.open(store, mode="r+")
    start, stop = item
    for i in range(start, stop):
        arr[i] = np.clip(np.round(renderer.frame(i)), 0, 65535).astype(np.uint16)
    return stop - start


def make_movie(cache: Path, *, frames: int, size: int, pixel_size_nm: float, fps: float, seed: int = 7):
    """The cached zarr movie and its true drift (px)."""
    import zarr

    from layerscope.insitu.synthetic import SeriesRenderer, random_walk_drift
    from layerscope.parallel import map_tasks

    cache.mkdir(parents=True, exist_ok=True)
    store = cache / f"movie_v2_{frames}x{size}.zarr"
    truth_path = cache / f"drift_v2_{frames}x{size}.npy"
    dy, dx = random_walk_drift(frames, step_px=0.3, seed=seed)
    if store.exists() and truth_path.exists():
        return store, np.load(truth_path)
    field = size * pixel_size_nm
    renderer = SeriesRenderer(shape=(size, size), pixel_size_nm=pixel_size_nm, n_frames=frames,
                              frame_interval_s=1.0 / fps, lattice=None, drift_px=(dy, dx), front=None,
                              voids=_voids(40, field, frames, 1.0 / fps, seed), cracks=[], electrolyte=None,
                              counts_per_pixel=100.0, thickness_variation=0.03, texture_amplitude=0.08, texture_nm=0.4,
                              seed=seed)
    zarr.open(str(store), mode="w", shape=(frames, size, size), chunks=(1, size, size), dtype="uint16")
    t0 = time.perf_counter()
    chunks = [(a, min(frames, a + 25)) for a in range(0, frames, 25)]
    map_tasks(_render_chunk, chunks, renderer=renderer, store=str(store), description="simulating the movie")
    np.save(truth_path, np.column_stack([dy, dx]))
    print(f"simulated {frames} frames of {size}x{size} in {time.perf_counter() - t0:.0f} s -> {store}")
    return store, np.column_stack([dy, dx])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--subset", type=int, default=30, help="frames registered by the anchor tools")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/layerscope_insitu_bench"))
    args = ap.parse_args()

    import dask.array as da
    from pystackreg import StackReg
    from skimage.registration import phase_cross_correlation

    from layerscope.insitu import InsituOptions, VoidParams, analyse_series, open_series
    from layerscope.parallel import default_workers

    p, fps = 0.25, 10.0
    store, truth = make_movie(args.cache, frames=args.frames, size=args.size, pixel_size_nm=p, fps=fps)
    movie = da.from_zarr(str(store))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nmachine: {default_workers()} cores for Dask threads, load average {os.getloadavg()[0]:.1f}; "
          f"movie {movie.shape} {movie.dtype} ({movie.nbytes / 2**30:.1f} GiB on disk, zarr)")
    rows = []

    # layerscope: the whole movie, drift + voids (+ tracking), then drift alone
    # voids of 3-8 nm at 0.25 nm/px: smooth over 1 nm (the foil's speckle), background over 15 nm
    vp = VoidParams(smooth_nm=1.0, background_nm=15.0)
    for label, opts in (("layerscope drift + voids", InsituOptions(reference="first", void_params=vp, cracks=False)),
                        ("layerscope drift only", InsituOptions(reference="first", voids=False, cracks=False))):
        series = open_series(movie, pixel_size_nm=p, fps=fps, chunk_frames=16)
        t0 = time.perf_counter()
        res = analyse_series(series, options=opts)
        dt = time.perf_counter() - t0
        err = np.hypot(res.frames["drift_y_px"] - truth[:, 0], res.frames["drift_x_px"] - truth[:, 1])
        rows.append((label, args.frames, dt, float(np.sqrt(np.mean(err**2))), float(err.max())))
        if "voids" in label:
            v = res.summary["voids"]
            print(f"{label}: {v['max_count']} voids at most, {v['n_tracks']} tracks, events {v['events']}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # anchors on a subset of frames against the first (read from the same store)
    idx = np.linspace(1, args.frames - 1, args.subset).astype(int)
    ref = np.asarray(movie[0], np.float64)
    sub = {int(i): np.asarray(movie[int(i)], np.float64) for i in idx}
    t0 = time.perf_counter()
    sk = {i: phase_cross_correlation(ref, f, upsample_factor=20)[0] for i, f in sub.items()}
    dt = time.perf_counter() - t0
    err = np.array([np.hypot(-s[0] - truth[i, 0], -s[1] - truth[i, 1]) for i, s in sk.items()])
    rows.append(("scikit-image phase_cross_correlation (upsample 20)", args.subset, dt,
                 float(np.sqrt(np.mean(err**2))), float(err.max())))
    sr = StackReg(StackReg.TRANSLATION)
    t0 = time.perf_counter()
    mats = {i: sr.register(ref, f) for i, f in sub.items()}
    dt = time.perf_counter() - t0
    # pystackreg's matrix maps reference coordinates to moving ones: +drift (checked by the error)
    err = np.array([np.hypot(m[1, 2] - truth[i, 0], m[0, 2] - truth[i, 1]) for i, m in mats.items()])
    err_neg = np.array([np.hypot(-m[1, 2] - truth[i, 0], -m[0, 2] - truth[i, 1]) for i, m in mats.items()])
    if err_neg.mean() < err.mean():
        err = err_neg
    rows.append(("pystackreg TRANSLATION", args.subset, dt, float(np.sqrt(np.mean(err**2))), float(err.max())))

    base = next(r for r in rows if r[0].startswith("pystackreg"))
    base_fps = base[1] / base[2]
    print(f"\n{'method':52s} {'frames':>6s} {'time (s)':>9s} {'frames/s':>9s} {'x pystackreg':>12s} "
          f"{'drift rms (px)':>14s} {'max (px)':>9s}")
    for name, n, dt, rms, mx in rows:
        print(f"{name:52s} {n:6d} {dt:9.1f} {n / dt:9.1f} {n / dt / base_fps:12.1f} {rms:14.3f} {mx:9.3f}")
    print(f"\npeak resident memory: {rss:.0f} MiB (before the runs {rss0:.0f} MiB; the movie is "
          f"{movie.nbytes / 2**20:.0f} MiB)")


if __name__ == "__main__":
    main()
