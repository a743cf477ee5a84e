#!/usr/bin/env python
"""Score ``layerscope tomo`` on random phantom draws (issue 20 item 5): one CSV row per draw, a summary.

Each seed is one draw of :func:`layerscope.tomo.phantom.random_phantom` (1-6 spheres/ellipsoids, 0-3
planar cracks and 0-3 pores per particle, grey levels, binder or none, 64^3-128^3; ranges in
:class:`~layerscope.tomo.phantom.DrawRanges`), analysed as a noisy blurred grey volume or reconstructed
from noisy projections, and scored by :func:`layerscope.tomo.scoring.run_draw`. Seeds 0-49 are the
tuning range, 1000-1099 the held-out report range (docs/validation.md)::

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/validate_tomo_draws.py --seeds 1000:1100 --jobs 2 \\
        --out docs/data/tomo_draws_1000_1099.csv

``--seeds A:B`` is the half-open range A..B-1. ``--extension {default,off,mass}`` sets how the projection
draws are reconstructed (the library's default ``ReconOptions``, plain FBP, or FBP with the mass-conserving
sinogram extension); each row records it (``extension``: what was asked, ``sinogram_extension``: what ran).
``--jitter-px S`` shifts every projection of the projection draws before the noise (:func:`jitter_px`: white
jitter or, with ``--jitter-kind walk``, a random walk, S px RMS along and across the tilt axis, less the part a
moved sample would give); ``--align xcorr|auto`` reconstructs with ``ReconOptions(align=...)`` (with
``--keep-failed-alignment``, shifts that fail the acceptance test are undone whatever they read). Rows record
``shift_check_px`` (the series' shift check) and, aligned, ``shift_err_px`` (RMS error of the shifts found, px),
``shift_check_aligned_px`` (the aligned series' check), ``alignment_accepted`` and ``alignment_undone``.
Rows also score the crack counts restricted to the cracks a limited tilt range sees (``cracks_exact_visible``,
``cracks_exact_per_particle_visible``, ``cracks_missed_visible``: :data:`layerscope.tomo.scoring.VISIBLE_TARGETS`,
the rule of :mod:`layerscope.tomo.wedge`; the plain scores' values where there is no missing wedge) and to the
cracks the projections saw at every angle (``cracks_exact_in_view``, ``cracks_exact_per_particle_in_view``,
``cracks_missed_in_view``, ``n_cracks_truth_in_view``, ``n_cracks_found_in_view``:
:data:`layerscope.tomo.scoring.IN_VIEW_TARGETS`, the rule of :mod:`layerscope.tomo.fov`; the plain scores' values on
grey-volume draws). The summary (share of draws meeting each target,
median, 5th and 95th percentile of each score, the failing draws with their causes) is printed and,
with ``--summary``, written as Markdown.
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate_random_draws import parse_seeds  # noqa: E402  (one --seeds grammar for both validators)

#: Reported beside the targets (median / 5th / 95th percentile).
INFO = ["cvf_total_rel_err", "width_err_mean_voxels", "angle_err_max_deg", "cracks_missed", "cracks_missed_visible",
        "cracks_missed_in_view",
        "cracks_false", "seconds"]


def _line(row: dict) -> str:
    if row.get("error"):
        return f"seed {row['seed']}: ERROR {row['error']}"
    return (f"seed {row['seed']}: {row['size']}^3 {'proj' if row['projected'] else 'grey'} particles "
            f"{row['n_particles_found']}/{row['n_particles_truth']} cracks {row['n_cracks_found']}/{row['n_cracks_truth']} "
            f"pores->cracks {row['pores_as_cracks']} cvf {row['cvf_rel_err_max']:+.3f} width {row['width_err_max_voxels']:+.2f} "
            f"({row['seconds']:.1f} s)")


EXTENSIONS = ("default", "off", "mass")
#: ``--fbp-filter`` choices besides ``default`` (:data:`layerscope.tomo.recon.FBP_FILTERS`, written out so that
#: ``--help`` needs no import of the library)
FBP_FILTERS = ("ram-lak", "shepp-logan", "cosine", "hamming", "hann")


def recon_options(extension: str = "default"):
    """The ``ReconOptions`` of the projection draws for ``--extension``: the library's default, plain FBP
    (``off``) or FBP with the mass-conserving sinogram extension (``mass``)."""
    from layerscope.tomo.recon import ReconOptions

    if extension == "off":
        return ReconOptions(extend_sinogram=False)
    if extension == "mass":
        return ReconOptions(extend_sinogram=True, extension="mass")
    return ReconOptions()


def _effective(ro) -> str:
    """The extension that FBP runs with (``off`` or its name; ``extend_sinogram`` None means on for FBP)."""
    on = ro.extend_sinogram if ro.extend_sinogram is not None else ro.algorithm == "fbp"
    return ro.extension if on and ro.algorithm == "fbp" else "off"


def jitter_px(seed: int, angles_deg: np.ndarray, rms_px: float, kind: str = "white") -> tuple[np.ndarray, np.ndarray]:
    """Injected shifts ``(dy, dx)`` (px, one per angle) of draw ``seed``: white noise or a random walk, less the
    mean of ``dy`` and the part of ``dx`` in 1, cos, sin (a moved sample, which no alignment can tell from a
    shift), scaled to ``rms_px`` RMS on each axis."""
    from layerscope.tomo.align import unobservable_removed

    d = np.random.default_rng(seed + 7919).standard_normal((2, len(angles_deg)))
    if kind == "walk":
        d = np.cumsum(d, axis=1)
    dy, dx = unobservable_removed(d[0], d[1], angles_deg)
    return dy * rms_px / np.sqrt(np.mean(dy ** 2)), dx * rms_px / np.sqrt(np.mean(dx ** 2))


def tilt_angles_deg(n_angles: int, tilt_range_deg: float = 180.0) -> np.ndarray:
    """``n_angles`` projection angles (deg): 0-180 without its end where ``tilt_range_deg`` >= 180, else evenly
    over -range/2 ... +range/2, both ends included (an electron-tomography tilt series, e.g. 140 for +-70 deg)."""
    if tilt_range_deg >= 180.0:
        return np.linspace(0.0, 180.0, n_angles, endpoint=False)
    return np.linspace(-tilt_range_deg / 2.0, tilt_range_deg / 2.0, n_angles)


def _tilt_range(text: str) -> float:
    """``--tilt-range-deg``: a tilt span in (0, 180] deg (argparse turns the error into one line and exit 2)."""
    value = float(text)
    if not 0.0 < value <= 180.0:
        raise argparse.ArgumentTypeError(f"{text}: give the tilt span in deg, above 0 and at most 180 (e.g. 140)")
    return value


def diagonal_columns(n: int) -> int:
    """Detector columns as wide as the diagonal of an ``n`` x ``n`` slice, with ``n``'s parity (so that the slice
    stays centred on the axis): the smallest such count >= n sqrt 2."""
    m = int(np.ceil(n * np.sqrt(2.0)))
    return m + (m - n) % 2


def _wide_detector(ph, recon_options):
    """tomofov's ``--wide-detector``: the draw's own series (angles, photons, noise seed) projected through the
    volume padded with air (0) in y and x to :func:`diagonal_columns` px, so that every voxel of the n^3 volume lies in
    the cylinder seen at every angle; reconstructed with ``recon_options`` and cut back to the n^3 grid (a grey
    :class:`~layerscope.tomo.readers.Volume`: the analysis's ``seconds`` then leave out the reconstruction)."""
    from layerscope.tomo.phantom import project_phantom
    from layerscope.tomo.readers import Volume
    from layerscope.tomo.recon import reconstruct

    d, n = ph.specs["draw"], ph.volume.shape[2]
    pad = (diagonal_columns(n) - n) // 2
    wide = np.pad(ph.volume, ((0, 0), (pad, pad), (pad, pad)))
    proj = project_phantom(wide, n_angles=d["n_angles"], photons=d["photons"], seed=d["seed"] + 1, pixel_size_nm=50.0)
    rec = reconstruct(proj, recon_options)
    return Volume(np.ascontiguousarray(rec.volume[:, pad:pad + n, pad:pad + n]), rec.voxel_size_nm, labels=False)


def _prepare(ph, rms_px: float, kind: str, tilt_range_deg: float = 180.0, wide_detector_recon=None):
    """The draw's data; projections with :func:`jitter_px` shifts where ``rms_px`` > 0, over a limited tilt range
    (:func:`tilt_angles_deg`) where ``tilt_range_deg`` < 180; ``wide_detector_recon`` (ReconOptions): the projection
    draw through a detector as wide as the slices' diagonal, reconstructed with them (:func:`_wide_detector`)."""
    from layerscope.tomo.phantom import draw_volume, project_phantom

    d = ph.specs["draw"]
    if d["projected"] and wide_detector_recon is not None:
        return _wide_detector(ph, wide_detector_recon)
    if not d["projected"] or (rms_px <= 0 and tilt_range_deg >= 180.0):
        return draw_volume(ph)
    angles = tilt_angles_deg(d["n_angles"], tilt_range_deg)
    shifts = jitter_px(d["seed"], angles, rms_px, kind) if rms_px > 0 else None
    return project_phantom(ph.volume, photons=d["photons"], seed=d["seed"] + 1, pixel_size_nm=50.0,
                           angles_deg=angles, shifts_px=shifts)


def _inspect(res, seed: int, rms_px: float, kind: str) -> dict:
    """Shift check (px), and the RMS error of the shifts found against the injected ones (px, both axes)."""
    from layerscope.tomo.align import unobservable_removed

    a = (res.reconstruction.alignment or {}) if res.reconstruction is not None else {}
    row = {"shift_check_px": a.get("consistency", {}).get("rms_px", np.nan), "shift_err_px": np.nan,
           "shift_check_aligned_px": a.get("consistency_aligned", {}).get("rms_px", np.nan),
           "alignment_accepted": a.get("accepted", np.nan), "alignment_undone": a.get("aligned", np.nan)}
    if a.get("shifts") is not None:
        angles = res.reconstruction.angles_deg
        dy, dx = jitter_px(seed, angles, rms_px, kind) if rms_px > 0 else (0 * angles, 0 * angles)
        ey, ex = unobservable_removed(a["shifts"]["dy"] - dy, a["shifts"]["dx"] - dx, angles)
        row["shift_err_px"] = float(np.sqrt(np.mean(ey ** 2 + ex ** 2) / 2))
    return row


def _draw(seed: int, extension: str, jitter: float = 0.0, kind: str = "white", align: str | None = None,
          keep_failed: bool = False,
          tilt_range_deg: float = 180.0, algorithm: str = "default",
          fbp_filter: str = "default", ring_method: str = "default", iterations: int | None = None,
          wide_detector: bool = False,
          low_tops: float | None = None) -> dict:
    from dataclasses import replace

    from layerscope.tomo import recon, segment
    from layerscope.tomo.analysis import TomoOptions
    from layerscope.tomo.scoring import run_draw

    if keep_failed:
        recon.KEEP_FAILED_FRACTION = float("inf")
    if low_tops is not None:
        segment.LOW_TOPS = low_tops or None

    ro = recon_options(extension) if align is None else replace(recon_options(extension), align=align)
    ro = ro if algorithm == "default" else replace(ro, algorithm=algorithm)
    ro = ro if fbp_filter == "default" else replace(ro, fbp_filter=fbp_filter)
    ro = ro if ring_method == "default" else replace(ro, ring_method=ring_method)
    ro = ro if iterations is None else replace(ro, iterations=iterations)
    # allow_limited_angle: the library refuses a series under 170 deg; the validator measures it
    options = TomoOptions(recon=ro, allow_limited_angle=True)
    row = run_draw(seed, options=options, prepare=partial(_prepare, rms_px=jitter, kind=kind,
                                                          tilt_range_deg=tilt_range_deg,
                                                          wide_detector_recon=ro if wide_detector else None),
                   inspect=partial(_inspect, seed=seed, rms_px=jitter, kind=kind))
    return {**row, "extension": extension, "sinogram_extension": _effective(ro), "jitter_px": jitter,
            "jitter_kind": kind, "align": ro.align, "keep_failed_alignment": keep_failed,
            "tilt_range_deg": tilt_range_deg, "algorithm": ro.algorithm, "fbp_filter": ro.fbp_filter,
            "ring_method": ro.ring_method, "iterations": ro.iterations if ro.algorithm != "fbp" else None,
            "low_tops": getattr(segment, "LOW_TOPS", None),
            "wide_detector": wide_detector}


def run(seeds: range, jobs: int, out: Path | None = None, **draw) -> pd.DataFrame:
    """The rows of ``seeds``; ``draw``: the keyword arguments of :func:`_draw` (extension, jitter, kind, align,
    keep_failed, tilt_range_deg, algorithm, fbp_filter, ring_method,
    iterations, wide_detector, low_tops)."""
    rows = []
    with ProcessPoolExecutor(max_workers=jobs) if jobs > 1 else _Serial() as pool:
        for row in pool.map(partial(_draw, **draw), seeds):
            print(_line(row), flush=True)
            rows.append(row)
            if out is not None:  # rows so far, so that an interrupted run keeps its draws
                pd.DataFrame(rows).to_csv(out, index=False)
    return pd.DataFrame(rows)


class _Serial:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def map(fn, it):
        return map(fn, it)


def _stats(values: pd.Series) -> str:
    v = values.dropna().astype(float)
    if not len(v):
        return "– | – | –"
    return " | ".join(f"{np.percentile(v, q):+.3g}" for q in (50, 5, 95))


CAUSES = ["particles_split", "particles_merged", "particles_missed", "missed_not_dark", "missed_outside_envelope",
          "missed_dropped", "missed_as_pore", "missed_in_crossing", "cracks_split", "cracks_false", "pores_as_cracks"]


def _causes(r) -> str:
    got = [f"{c} {int(getattr(r, c))}" for c in CAUSES if getattr(r, c, 0) and getattr(r, c) > 0]
    return f" ({', '.join(got)})" if got else ""


def _cause_table(ok: pd.DataFrame) -> list[str]:
    lines = ["", "| cause | draws | count |", "|---|---|---|"]
    for c in CAUSES:
        v = ok[c].fillna(0)
        lines.append(f"| {c} | {int((v > 0).sum())} | {int(v.sum())} |")
    return lines


def _shares(df: pd.DataFrame) -> list[str]:
    from layerscope.tomo.scoring import TARGETS, meets

    out = []
    for name in TARGETS:
        met = [m for m in (meets(v, name) for v in df[name]) if m is not None]
        out.append(f"{np.mean(met):.2f} ({len(met)})" if met else "–")
    return out


def _breakdown(ok: pd.DataFrame) -> list[str]:
    """Shares by input kind and by size, and the crack numbers where the crack counts are exact."""
    from layerscope.tomo.scoring import TARGETS

    groups = {"grey volume": ok[~ok["projected"].astype(bool)], "from projections": ok[ok["projected"].astype(bool)],
              "64-96^3": ok[ok["size"] <= 96], "112-128^3": ok[ok["size"] > 96],
              "crack counts exact per particle": ok[ok["cracks_exact_per_particle"] == 1]}
    lines = ["", "| draws | n | " + " | ".join(TARGETS) + " |", "|---|---|" + "---|" * len(TARGETS)]
    for name, g in groups.items():
        lines.append(f"| {name} | {len(g)} | " + " | ".join(_shares(g)) + " |")
    return lines


def summary(df: pd.DataFrame) -> str:
    from layerscope.tomo.scoring import TARGETS, meets

    ok = df[df["error"].isna() | (df["error"].astype(str) == "")] if "error" in df else df
    ext = ", ".join(sorted(set(df["sinogram_extension"].astype(str)))) if "sinogram_extension" in df else "not recorded"
    lines = [f"{len(df)} draws (seeds {df['seed'].min()}-{df['seed'].max()}), {len(df) - len(ok)} refused or crashed; "
             f"projection draws reconstructed with sinogram extension: {ext}",
             "", "| score | target | draws scored | share meeting | median | 5th pct | 95th pct |",
             "|---|---|---|---|---|---|---|"]
    from layerscope.tomo.scoring import IN_VIEW_TARGETS, VISIBLE_TARGETS

    # older CSVs lack the visible and in-view ones
    shown = {**TARGETS, **{k: v for k, v in {**VISIBLE_TARGETS, **IN_VIEW_TARGETS}.items() if k in ok}}
    for name, (limit, kind) in shown.items():
        met = [meets(v, name) for v in ok[name]]
        met = [m for m in met if m is not None]
        share = f"{np.mean(met):.2f}" if met else "–"
        lines.append(f"| {name} | {'=' if kind == 'eq' else '<= '}{limit} | {len(met)} | {share} | {_stats(ok[name])} |")
    for name in (n for n in INFO if n in ok):
        lines.append(f"| {name} | – | {int(ok[name].notna().sum())} | – | {_stats(ok[name])} |")
    lines += _breakdown(ok)
    lines += _cause_table(ok)
    lines += ["", "Failing draws (seed: what failed):"]
    for r in ok.itertuples():
        bad = [n for n in TARGETS if meets(getattr(r, n), n) is False]
        if bad:
            lines.append(f"- {r.seed} ({r.size}^3 {'proj' if r.projected else 'grey'}, noise {r.noise:.2f}): "
                         f"{', '.join(bad)}; particles {r.n_particles_found}/{r.n_particles_truth}, cracks "
                         f"{r.n_cracks_found}/{r.n_cracks_truth}{_causes(r)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", required=True, help="half-open range A:B (tuning 0:50, report 1000:1100)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--out", type=Path, required=True, help="CSV file, one row per draw")
    parser.add_argument("--summary", type=Path, default=None, help="also write the summary (Markdown) here")
    parser.add_argument("--extension", choices=EXTENSIONS, default="default",
                        help="projection draws: the library's default reconstruction, plain FBP (off), or FBP with "
                             "the mass-conserving sinogram extension (mass)")
    parser.add_argument("--jitter-px", type=float, default=0.0, help="shift the projections of the projection draws "
                        "by this RMS (px, each axis) before the noise (default 0: as drawn)")
    parser.add_argument("--jitter-kind", choices=("white", "walk"), default="white", help="white jitter or a random walk")
    parser.add_argument("--align", choices=("none", "xcorr", "auto"), default=None,
                        help="ReconOptions.align (default: the library's, auto)")
    parser.add_argument("--keep-failed-alignment", action="store_true", help="undo shifts that failed the "
                        "acceptance test whatever they read (recon.KEEP_FAILED_FRACTION = inf; default 0: such a "
                        "series is reconstructed as given)")
    parser.add_argument("--tilt-range-deg", type=_tilt_range, default=180.0, help="project the projection draws over "
                        "-range/2..+range/2 deg, ends included (e.g. 140: an electron-tomography +-70 deg series; "
                        "default 180: the draws' own 0-180 deg)")
    parser.add_argument("--algorithm", choices=["default", "fbp", "sirt", "cgls"], default="default",
                        help="ReconOptions.algorithm for the projection draws (default: the library's, fbp)")
    parser.add_argument("--fbp-filter", choices=("default",) + FBP_FILTERS, default="default",
                        help="ReconOptions.fbp_filter for the projection draws (default: the library's, ram-lak)")
    parser.add_argument("--iterations", type=int, default=None,
                        help="ReconOptions.iterations of SIRT/CGLS (--algorithm; default: the library's, 50)")
    parser.add_argument("--ring-method", choices=("default", "sorting", "detect"), default="default",
                        help="ReconOptions.ring_method for the projection draws (default: the library's, sorting)")
    parser.add_argument("--low-tops", type=float, default=None, help="segment.LOW_TOPS (tomomerge2): seeds also "
                        "from distance tops of dynamic >= this share of h, kept where they meet every neighbour at a "
                        "neck (0: off; default: the module's)")
    parser.add_argument("--wide-detector", action="store_true", help="tomofov: project the projection draws "
                        "through a detector as wide as the slices' diagonal (air around the volume: the whole volume "
                        "seen at every angle), reconstruct and cut back to the volume's grid before the analysis "
                        "(its seconds then leave out the reconstruction; default: the draws' own detector, as wide "
                        "as the volume)")
    parser.add_argument("--projected-only", action="store_true", help="run only the draws reconstructed from projections")
    parser.add_argument("--from-csv", action="store_true", help="summarise --out again without running the draws")
    args = parser.parse_args(argv)
    if args.from_csv:
        df = pd.read_csv(args.out)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        seeds = parse_seeds(args.seeds)
        if args.projected_only:
            from layerscope.tomo.phantom import random_phantom

            seeds = [s for s in seeds if random_phantom(s).specs["draw"]["projected"]]
        df = run(seeds, args.jobs, args.out, extension=args.extension, jitter=args.jitter_px, kind=args.jitter_kind,
                 align=args.align, keep_failed=args.keep_failed_alignment,
                 tilt_range_deg=args.tilt_range_deg, algorithm=args.algorithm, fbp_filter=args.fbp_filter,
                 ring_method=args.ring_method, iterations=args.iterations,
                 wide_detector=args.wide_detector,
                 low_tops=args.low_tops)
        df.to_csv(args.out, index=False)
    text = summary(df)
    print(text)
    if args.summary:
        args.summary.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
