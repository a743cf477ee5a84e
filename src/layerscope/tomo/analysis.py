"""``analyse``: from projections or a volume to per-particle and per-crack tables (no file I/O)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from layerscope.errors import InputError
from layerscope.io.output import writes_folder
from layerscope.tomo.readers import Projections, Volume, as_volume
from layerscope.tomo.recon import ReconOptions, Reconstruction, reconstruct
from layerscope.tomo.measure import measure_features, particle_rows, particle_table
from layerscope.tomo.segment import particle_labels, solid_mask
from layerscope.tomo.sinogram import LIMITED_SPAN_DEG
from layerscope.tomo.stages import enter as _stage
from layerscope.tomo.wedge import mark_cracks
from layerscope.tomo import fov as _fov

__all__ = ["TomoOptions", "TomoResult", "analyse", "check_tilt_span"]

MIN_SLICES = 8


@dataclass(frozen=True)
class TomoOptions:
    """What to reconstruct and measure.

    Attributes
    ----------
    recon : ReconOptions
        Reconstruction of projections (ignored for a volume).
    reconstruct_only : bool
        Stop after the reconstruction (no particle analysis).
    smooth_voxels : float
        Gaussian sigma (voxels) before thresholding a grey volume.
    threshold : float or None
        Grey level between solid and epoxy; halfway between the two levels when None.
    particle_label, pore_label : int or None
        For a segmented (label) volume: the active-material label (required) and the pore label.
    crack_max_width_nm : float or None
        Widest crack to bridge when closing particle envelopes (nm); 6 voxels when None.
    split : bool
        Split touching particles (watershed on the distance transform; parts that meet along a crack
        without a neck stay one particle: :func:`layerscope.tomo.segment.merge_without_neck`).
    split_h_voxels : float
        Depth (voxels) of a distance-transform maximum that seeds its own particle.
    min_particle_voxels, min_feature_voxels : int
        Smallest particle and smallest crack or pore kept (voxels).
    max_flatness : float
        A dark feature is a crack when its smallest principal extent is below this fraction of the
        middle one (a sheet) and its middle extent is at least ``min_sheet_voxels``; otherwise a pore.
    min_sheet_voxels : float
        Smallest rms in-plane extent (voxels) of a crack.
    cut_planes : bool
        In a dark feature read as crossing cracks, look for planes through the voxels the found planes leave
        (a small crack crossing larger ones, cut in pieces by their slabs; a plane along the surface shell is the
        crack's bridged mouth, no crack): :func:`layerscope.tomo.segment.planar_sheets`. On by default: draws with
        crack counts exact .70 -> .71, .76 -> .80, .76 -> .78, .74 -> .78 on four tuning ranges, .82 on 0-49, no
        target share lower (docs/validation.md "tomocut"); False (CLI ``--no-cut-planes``) is the search without them.
    out_of_core : bool
        Measure with bounded memory: slabs of ``slab_slices`` z slices, then one cluster of touching
        particles at a time, with scratch memory maps (:mod:`layerscope.tomo.chunked`); the numbers
        equal the in-memory analysis.
    slab_slices : int
        z slices per slab of the out-of-core analysis.
    allow_limited_angle : bool
        Analyse projections spanning less than ``sinogram.LIMITED_SPAN_DEG`` (170 deg: an electron-tomography
        +-60-70 deg series, the missing wedge) anyway, flagged ``limited_angle``. False (default): such a series is
        refused before any work unless ``reconstruct_only`` (:func:`check_tilt_span`): on the +-70 / +-60 deg
        projection draws of 0-49 the crack counts, crack volumes and widths are far from the 0-180 deg ones even
        with the centre found right (docs/validation.md "tomowedge"). CLI ``--allow-limited-angle``. Such an
        analysis marks the cracks whose normals lie in the missing wedge (cracks.csv ``in_missing_wedge``) and
        counts the others (``crack_count_visible``, ``n_cracks_visible``; docs/validation.md "tomowedge2").
    bin_voxels : int
        Bin by this factor before the work: detector pixels of projections (mean over n x n, before
        reconstruction) or voxels of a volume (mean over n^3; every n-th voxel of a label volume).
        The voxel size grows by the same factor.
    """

    recon: ReconOptions = ReconOptions()
    reconstruct_only: bool = False
    smooth_voxels: float = 1.0
    threshold: float | None = None
    particle_label: int | None = None
    pore_label: int | None = None
    crack_max_width_nm: float | None = None
    split: bool = True
    split_h_voxels: float = 2.0
    min_particle_voxels: int = 200
    min_feature_voxels: int = 20
    max_flatness: float = 0.45
    min_sheet_voxels: float = 1.5
    cut_planes: bool = True
    bin_voxels: int = 1
    out_of_core: bool = False
    slab_slices: int = 32
    allow_limited_angle: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dictionary (recorded in provenance)."""
        return dataclasses.asdict(self)


@dataclass
class TomoResult:
    """Tables, labels and summary of one tomography analysis.

    Attributes
    ----------
    volume : ndarray (z, y, x)
        The reconstructed (or given) volume.
    voxel_size_nm : float
    particles, cracks, pores : DataFrame
        One row per particle / crack / pore (empty with ``reconstruct_only``). A crack is one planar
        sheet: intersecting cracks (one connected dark feature, ``crack`` = its feature id) give one
        row per plane, numbered by ``sheet`` (1 for a crack alone). A round pore joined to cracks (one
        dark feature) gives the cracks' rows and one pore row with the same feature id.
        Each crack row holds ``wedge_angle_deg`` and ``in_missing_wedge`` and each particle row
        ``crack_count_visible`` (:func:`layerscope.tomo.wedge.mark_cracks`: on a limited tilt range, the cracks
        whose normals lie in the missing wedge or near it, which such a series does not reliably show; NaN, False
        and ``crack_count`` otherwise); and ``outside_field_of_view`` / ``in_field_of_view`` with each particle row's
        ``outside_field_of_view`` and ``crack_count_in_view`` (:func:`layerscope.tomo.fov.mark_cracks`: for
        projections, the share of the crack's voxels outside the cylinder the detector saw at every angle, and whether
        it is under ``fov.MEASURED_MAX_OUTSIDE_SHARE``, 0.4; NaN, True and ``crack_count`` for a volume input, which
        carries no such geometry).
    particle_labels, feature_labels : ndarray or None
        Particle ids and dark-feature ids per voxel; ``feature_kind[i]`` is ``"crack"`` or ``"pore"``
        (``"crack"`` for a feature of cracks with a pore joined to them).
    summary : dict
    flags : list of dict
        ``{"code", "message"}`` for numbers that were computed but are suspicious.
    """

    volume: np.ndarray
    voxel_size_nm: float
    particles: pd.DataFrame
    cracks: pd.DataFrame
    pores: pd.DataFrame
    particle_labels: np.ndarray | None
    feature_labels: np.ndarray | None
    feature_kind: dict[int, str]
    summary: dict[str, Any]
    flags: list[dict[str, str]]
    options: TomoOptions
    source: Path | None = None
    reconstruction: Reconstruction | None = None
    is_labels: bool = False

    @writes_folder()
    def write(self, out_dir: Path, provenance: Any = None, *, save_volume: bool = False, report: bool = True) -> dict:
        """Write particles.csv, cracks.csv, pores.csv, PNG figures, summary.json, provenance.json and report.html."""
        from layerscope.tomo.outputs import write_result

        return write_result(self, out_dir, provenance, save_volume=save_volume, report=report)


def label_counts(data: np.ndarray, slices: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a label volume and their voxel counts, ``slices`` z slices at a time (a memory map stays on disk)."""
    total: dict = {}
    for z in range(0, data.shape[0], slices):
        vals, counts = np.unique(np.asarray(data[z:z + slices]), return_counts=True)
        for v, c in zip(vals.tolist(), counts.tolist()):
            total[v] = total.get(v, 0) + c
    keys = sorted(total)
    return np.asarray(keys, dtype=np.asarray(data[:1, :1, :1]).dtype), np.asarray([total[k] for k in keys], np.int64)


def _thin(source, shape) -> str:
    name = f"'{source}'" if source else "the volume"
    return (f"{name} gives only {'x'.join(map(str, shape))} voxels: particles and cracks need a 3-D volume of at least "
            f"{MIN_SLICES} voxels along every axis; give --reconstruct-only to reconstruct it without the analysis")


def check_tilt_span(data: Any, options: TomoOptions) -> None:
    """Refuse the particle/crack analysis of projections spanning less than ``sinogram.LIMITED_SPAN_DEG`` (a missing
    wedge) unless ``options.reconstruct_only`` or ``options.allow_limited_angle``: one line naming both (InputError,
    CLI exit 2, nothing written)."""
    if not isinstance(data, Projections) or options.reconstruct_only or options.allow_limited_angle:
        return
    span = float(np.ptp(data.angles_deg))
    if span < LIMITED_SPAN_DEG:
        name = f"'{data.source}'" if data.source else "the projections"
        raise InputError(f"{name}: projections span {span:.0f} deg (< {LIMITED_SPAN_DEG:.0f}): crack and pore "
                         "counts are not valid on a missing wedge; pass --reconstruct-only to write the volume, or "
                         "--allow-limited-angle to analyse anyway (flagged)")


def _check_volume(vol: Volume, options: TomoOptions) -> None:
    name = f"'{vol.source}'" if vol.source else "the volume"
    if min(vol.data.shape) < MIN_SLICES:
        raise InputError(_thin(vol.source, vol.data.shape))
    values = label_counts(vol.data)[0] if vol.labels else None
    if vol.labels and options.particle_label is None:
        raise InputError(f"{name} is a segmented label volume (labels {', '.join(map(str, values[:8]))}); "
                         "say which label is the active material with --particle-label (and the pores with --pore-label)")
    if not vol.labels and options.particle_label is not None:
        raise InputError(f"{name} is a grey-level volume, not labels: leave out --particle-label")
    if vol.labels and options.particle_label not in values:
        raise InputError(f"{name} has no voxel with label {options.particle_label}; give --particle-label with one of "
                         f"{', '.join(map(str, values[:16]))}")


def _check_contrast(levels: dict, vol: Volume, flags: list) -> None:
    """Refuse a grey volume without particle/epoxy contrast (noise, a blank); flag a weak one."""
    cnr = levels.get("contrast_to_noise")
    if cnr is None:
        return
    name = f"'{vol.source}'" if vol.source else "the volume"
    if cnr < 1.0:  # white noise smoothed and split in three classes gives 0.49
        raise InputError(f"{name} shows no particles in epoxy: the bright and dark grey levels differ by only "
                         f"{cnr:.2f} times the voxel noise; give --threshold if particles are there, or --bin 2 "
                         "to average the noise down")
    if cnr < 2.0:
        flags.append({"code": "low_contrast", "message": f"particle/epoxy contrast is {cnr:.2f} times the voxel "
                      "noise: boundaries and thin cracks are uncertain"})


def _summary(result_parts: dict, vol: Volume, options: TomoOptions, levels: dict) -> dict[str, Any]:
    parts, cracks, pores = result_parts["particles"], result_parts["cracks"], result_parts["pores"]
    s: dict[str, Any] = {"shape_zyx": list(vol.data.shape), "voxel_size_nm": vol.voxel_size_nm,
                         "input_kind": "labels" if vol.labels else "grey", "levels": levels,
                         "n_particles": int(len(parts)), "n_cracks": int(len(cracks)), "n_pores": int(len(pores)),
                         "cut_planes": bool(options.cut_planes)}
    if len(parts):
        tot = float(parts["volume_voxels"].sum())
        s.update({"particle_volume_fraction": tot / vol.data.size,
                  "crack_volume_fraction": float(cracks["volume_voxels"].sum()) / tot if len(cracks) else 0.0,
                  "cracked_particle_fraction": float((parts["crack_count"] > 0).mean()),
                  "median_equivalent_diameter_nm": float(parts["equivalent_diameter_nm"].median()),
                  "particles_touching_border": int(parts["touches_border"].sum())})
    if len(cracks):
        s["crack_width_mean_nm"] = float(np.average(cracks["width_mean_nm"], weights=cracks["volume_voxels"]))
        s["crack_width_max_nm"] = float(cracks["width_max_nm"].max())
    if vol.labels:
        vals, counts = label_counts(vol.data)
        s["label_fractions"] = {str(int(v)): float(c) / vol.data.size for v, c in zip(vals, counts)}
        if options.pore_label is not None:
            s["porosity"] = s["label_fractions"].get(str(int(options.pore_label)), 0.0)
    return s


def _flags(parts: pd.DataFrame, cracks: pd.DataFrame, vol: Volume, close_voxels: int) -> list[dict[str, str]]:
    flags = []
    if len(parts) == 0:
        flags.append({"code": "no_particles", "message": "no particle found: check --threshold or --particle-label"})
    elif parts["touches_border"].mean() > 0.5:
        flags.append({"code": "particles_cut_by_border", "message": f"{int(parts['touches_border'].sum())} of "
                      f"{len(parts)} particles touch the volume border: their sizes are lower bounds"})
    if len(cracks) and (cracks["width_mean_nm"] / vol.voxel_size_nm < 1.5).any():
        n = int((cracks["width_mean_nm"] / vol.voxel_size_nm < 1.5).sum())
        flags.append({"code": "cracks_near_resolution", "message": f"{n} crack(s) narrower than 1.5 voxels: width and "
                      "volume are at the resolution limit"})
    if len(cracks) and (cracks["width_max_nm"] / vol.voxel_size_nm >= 2 * close_voxels).any():
        flags.append({"code": "cracks_wider_than_closing", "message": "a crack is as wide as the envelope closing: "
                      "wider cracks may split particles; raise --crack-max-width-nm"})
    return flags


def _fov_flags(in_view: dict) -> list[dict[str, str]]:
    """``outside_field_of_view``: cracks lying partly outside the cylinder the projections saw at every angle."""
    n = in_view.get("n_cracks_partly_outside_view", 0)
    if not n:
        return []
    fov = in_view["field_of_view"]
    return [{"code": "outside_field_of_view", "message": f"{n} crack(s) lie partly outside the region the projections "
             f"saw at every angle ({in_view['n_cracks_outside_view']} of them mostly, not counted in view): "
             + fov["rule"]}]


def analyse(data: Any, options: TomoOptions = TomoOptions(), *, scheduler: Any = None,
            progress: bool = False, out: np.ndarray | None = None, scratch_dir: Path | None = None,
            voxel_size_nm: float | None = None) -> TomoResult:
    """Reconstruct (projections) and measure particles, cracks and pores.

    Parameters
    ----------
    data : Projections, Volume, numpy.ndarray or HyperSpy signal
        From :func:`layerscope.tomo.read_tomo` or built in memory; an array or a 3-D signal is a
        volume ``(z, y, x)`` (:func:`layerscope.tomo.readers.as_volume`).
    options : TomoOptions
    scheduler : see :func:`layerscope.parallel.scheduler_context`
        Slice chunks of the reconstruction run as Dask tasks.
    progress : bool
        Progress bar for the reconstruction.
    out : array, optional
        Where to reconstruct (e.g. a ``numpy.memmap`` for a volume larger than memory), see
        :func:`~layerscope.tomo.recon.reconstruct`.
    scratch_dir : path, optional
        Folder for the scratch memory maps of ``options.out_of_core`` (the system's temporary folder if None).

    voxel_size_nm : float, optional
        Voxel size (nm) of an array (required) or a signal (overrides its axes).

    Returns
    -------
    TomoResult
    """
    rec = None
    flags: list[dict[str, str]] = []
    if not isinstance(data, Projections):
        data = as_volume(data, voxel_size_nm=voxel_size_nm)
    if options.bin_voxels < 1:
        raise InputError(f"--bin {options.bin_voxels}: give a whole number >= 1")
    if options.bin_voxels > 1:
        data = _binned(data, options.bin_voxels)
    if options.out_of_core:  # slab-sized arrays freed go back to the system (also those of the reconstruction)
        from layerscope.tomo.chunked import return_freed_arrays

        return_freed_arrays()
    check_tilt_span(data, options)
    if isinstance(data, Projections):
        n_rows, n_cols = data.data.shape[1], data.data.shape[2]
        if not options.reconstruct_only and n_rows < MIN_SLICES:  # refuse before the work
            raise InputError(_thin(data.source, (n_rows, n_cols, n_cols)))
        rec = reconstruct(data, options.recon, scheduler=scheduler, progress=progress, out=out)
        flags += rec.flags
        vol = Volume(rec.volume, rec.voxel_size_nm, labels=False, source=data.source)
    else:
        vol = data
    empty = pd.DataFrame()
    if options.reconstruct_only:
        if rec is None:
            raise InputError("--reconstruct-only needs projections, not a --volume")
        summary = {"shape_zyx": list(vol.data.shape), "voxel_size_nm": vol.voxel_size_nm, "input_kind": "projections"}
        return _finish(vol, empty, empty, empty, None, None, {}, summary, flags, options, rec)
    _check_volume(vol, options)
    voxel = vol.voxel_size_nm
    close = int(np.ceil((options.crack_max_width_nm / voxel if options.crack_max_width_nm is not None else 6.0) / 2))
    measure = _measure_chunked if options.out_of_core else _measure_in_memory
    parts, cracks, pores, plab, feats, kinds, levels = measure(vol, options, close, flags, scheduler, scratch_dir)
    _stage("summary")
    cracks, parts, wedge = mark_cracks(cracks, parts, rec.angles_deg if rec is not None else None, LIMITED_SPAN_DEG)
    view = _fov.field_of_view(rec, vol.data.shape, vol.voxel_size_nm)
    cracks, parts, in_view = _fov.mark_cracks(cracks, parts, feats, plab, view, vol.voxel_size_nm)
    summary = {**_summary({"particles": parts, "cracks": cracks, "pores": pores}, vol, options, levels), **wedge,
               **in_view}
    flags += _flags(parts, cracks, vol, close) + _fov_flags(in_view)
    if rec is not None:
        summary["reconstruction"] = _recon_summary(rec, options.recon)
    return _finish(vol, parts, cracks, pores, plab, feats, kinds, summary, flags, options, rec)


def _measure_in_memory(vol: Volume, options: TomoOptions, close: int, flags: list, scheduler: Any, scratch_dir: Any):
    """Segment and measure the whole volume in memory."""
    solid, levels = solid_mask(vol.data, smooth_voxels=0.0 if vol.labels else options.smooth_voxels,
                               threshold=options.threshold, particle_label=options.particle_label)
    _check_contrast(levels, vol, flags)
    plab = particle_labels(solid, close_voxels=close, split=options.split, h_voxels=options.split_h_voxels,
                           min_voxels=options.min_particle_voxels)
    grey = None if vol.labels else np.asarray(vol.data, np.float32)
    cracks, pores, feats, kinds = measure_features(solid, plab, options, vol.voxel_size_nm, close, grey, levels)
    parts = particle_table(plab, cracks, pores, vol.voxel_size_nm)
    return parts, cracks, pores, plab, feats, kinds, levels


def _measure_chunked(vol: Volume, options: TomoOptions, close: int, flags: list, scheduler: Any, scratch_dir: Any):
    """Segment in slabs and measure one particle cluster at a time (:mod:`layerscope.tomo.chunked`)."""
    from layerscope.tomo.chunked import analyse_volume_chunked

    if options.slab_slices < 1:
        raise InputError(f"--slab-slices {options.slab_slices}: give a whole number >= 1")
    r = analyse_volume_chunked(vol, options, close=close, scheduler=scheduler, scratch_dir=scratch_dir,
                               slab_slices=options.slab_slices)
    _check_contrast(r["levels"], vol, flags)
    if r["unproven_seed_slabs"]:
        flags.append({"code": "seeds_unproven", "message": f"{r['unproven_seed_slabs']} slab(s) of a particle "
                      "cluster too big to hold were split with watershed seeds not proven equal to the whole "
                      "cluster's (failed the check, or not checked after one failed where no slab could grow; "
                      "equal on every volume tested; docs/validation.md): check the split of touching "
                      "particles in the overlays, or run without --out-of-core where the volume fits in memory"})
    if r["watershed_overlap_mismatch_voxels"]:
        flags.append({"code": "watershed_slabs_disagree", "message": f"{r['watershed_overlap_mismatch_voxels']} "
                      "voxel(s) of a particle cluster too big to hold are labelled differently by two neighbouring "
                      "watershed slabs where their halos overlap: particle boundaries there are not the whole "
                      "cluster's; run without --out-of-core where the volume fits in memory"})
    _stage("particle_rows")
    parts = particle_rows(r["particle_geometry"], r["cracks"], r["pores"], vol.voxel_size_nm)
    return parts, r["cracks"], r["pores"], r["particle_labels"], r["feature_labels"], r["kinds"], r["levels"]


def _bin_axes(a: np.ndarray, n: int, axes: tuple[int, ...]) -> np.ndarray:
    sl = tuple(slice(0, (a.shape[i] // n) * n) if i in axes else slice(None) for i in range(a.ndim))
    a = a[sl]
    shape = []
    for i, size in enumerate(a.shape):
        shape += [size // n, n] if i in axes else [size]
    b = a.reshape(shape)
    axes_n = [1 + i + k for k, i in enumerate(sorted(axes))]
    return b.mean(axis=tuple(axes_n), dtype=np.float64).astype(np.float32)


def _binned(data: Projections | Volume, n: int) -> Projections | Volume:
    """Detector binning of projections (rows and columns) or voxel binning of a volume."""
    if isinstance(data, Projections):
        fl = None if data.flats is None else _bin_axes(data.flats, n, (1, 2))
        dk = None if data.darks is None else _bin_axes(data.darks, n, (1, 2))
        return dataclasses.replace(data, data=_bin_axes(data.data, n, (1, 2)), flats=fl, darks=dk,
                                   pixel_size_nm=data.pixel_size_nm * n)
    if data.labels:
        return dataclasses.replace(data, data=data.data[::n, ::n, ::n].copy(), voxel_size_nm=data.voxel_size_nm * n)
    return dataclasses.replace(data, data=_bin_axes(data.data, n, (0, 1, 2)), voxel_size_nm=data.voxel_size_nm * n)


def _recon_summary(rec: Reconstruction, ro: ReconOptions) -> dict[str, Any]:
    return {"algorithm": ro.algorithm, "iterations": ro.iterations if ro.algorithm != "fbp" else None,
            "fbp_filter": ro.fbp_filter if ro.algorithm == "fbp" else None,
            "centre_px": rec.centre_px, "centre_searched": rec.centre_searched, "rings_removed": ro.rings,
            "sinogram_extended": ro.extends, "sinogram_extension": ro.extension if ro.extends else None,
            "sinogram_extension_done": rec.extension,
            "alignment": _alignment_summary(rec.alignment),
            "rings": rec.rings, "device": rec.device, "projections": rec.signal, "angles_from": rec.angles_source,
            "units": "attenuation per voxel" if rec.signal != "line integrals" else "projected signal per voxel"}


def _alignment_summary(alignment: dict | None) -> dict | None:
    """The shift check and the shifts undone (max, RMS px; the per-angle table goes to shifts.csv)."""
    if alignment is None:
        return None
    return {k: v for k, v in alignment.items() if k != "shifts"}


def _finish(vol, parts, cracks, pores, plab, feats, kinds, summary, flags, options, rec) -> TomoResult:
    if rec is not None and "reconstruction" not in summary:
        summary["reconstruction"] = _recon_summary(rec, options.recon)
    summary["flags"] = flags
    return TomoResult(vol.data, vol.voxel_size_nm, parts, cracks, pores, plab, feats, kinds, summary, flags,
                      options, vol.source, rec, vol.labels)
