"""``analyse``: from projections or a volume to per-particle and per-crack tables (no file I/O)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from layerscope.errors import InputError
from layerscope.io.output import writes_folder
from layerscope.tomo.readers import Projections, Volume
from layerscope.tomo.recon import ReconOptions, Reconstruction, reconstruct
from layerscope.tomo.segment import dark_features, feature_shape, particle_labels, solid_mask

__all__ = ["TomoOptions", "TomoResult", "analyse"]

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
        Split touching particles (watershed on the distance transform).
    split_h_voxels : float
        Depth (voxels) of a distance-transform maximum that seeds its own particle.
    min_particle_voxels, min_feature_voxels : int
        Smallest particle and smallest crack or pore kept (voxels).
    max_flatness : float
        A dark feature is a crack when its smallest principal extent is below this fraction of the
        middle one (a sheet) and its middle extent is at least ``min_sheet_voxels``; otherwise a pore.
    min_sheet_voxels : float
        Smallest rms in-plane extent (voxels) of a crack.
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
    bin_voxels: int = 1

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
        One row per particle / crack / pore (empty with ``reconstruct_only``).
    particle_labels, feature_labels : ndarray or None
        Particle ids and dark-feature ids per voxel; ``feature_kind[i]`` is ``"crack"`` or ``"pore"``.
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


def _area_nm2(mask: np.ndarray, voxel_nm: float) -> float:
    """Surface area of a binary mask (marching cubes on the lightly smoothed mask), nm^2."""
    from skimage.measure import marching_cubes, mesh_surface_area

    m = ndi.gaussian_filter(np.pad(mask, 2).astype(np.float32), 0.7)
    if m.max() <= 0.5:
        return 0.0
    verts, faces, _, _ = marching_cubes(m, 0.5)
    return float(mesh_surface_area(verts, faces)) * voxel_nm ** 2


def _deficit(fid: int, feats: np.ndarray, particle: np.ndarray, depth: np.ndarray, grey: np.ndarray,
             levels: dict, blur_voxels: float = 1.0, open_: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Partial-volume content of a dark feature: coordinates ``(n, 3)`` and missing fraction per voxel.

    Around the feature (dilated by 3 voxels, inside its particle, away from other features) the
    missing attenuation ``(R - v) / (P - E)`` is summed, where ``R = E + (P - E) G(particle)`` is the
    particle without the feature, blurred like the reconstruction (Gaussian, ``blur_voxels``), ``P``
    the median of the particle's solid interior and ``E`` the epoxy level. Blur and FBP preserve
    this sum, so thin cracks are not lost to the threshold. For a feature open to the surface
    (``open_``) the particle envelope misses the feature's mouth (the blurred edges of the mouth fall
    below the threshold, a notch no closing fills): the reference particle is then its convex hull,
    the mouth (hull but not envelope, within 3 voxels of the feature) joins the feature, and the sum
    runs over the feature dilated by 4 voxels inside the hull grown by 3, so that the blur of the
    mouth beyond the surface counts too.
    """
    pad = 8 if open_ else 4
    sl = tuple(slice(max(0, s.start - pad), s.stop + pad) for s in ndi.find_objects((feats == fid).astype(np.int8))[0])
    f = feats[sl]
    mm = f == fid
    part = particle[sl]
    interior = part & (depth[sl] >= 3) & (f == 0)
    other = ndi.binary_dilation((f > 0) & ~mm, iterations=1)
    if open_:
        hull, others = _hull(particle, depth, sl)
        mm = mm | (hull & ~part & ndi.binary_dilation(mm, iterations=3))
        region = (ndi.binary_dilation(mm, iterations=4) & ndi.binary_dilation(hull, iterations=3) & ~others & ~other) | mm
        part = hull
    else:
        region = (ndi.binary_dilation(mm, iterations=3) & part & ~other) | mm
    p_level = float(np.median(grey[sl][interior])) if interior.sum() > 20 else levels["particle"]
    e_level = levels["epoxy"]
    ref = e_level + (p_level - e_level) * ndi.gaussian_filter(part.astype(np.float32), blur_voxels)
    missing = np.clip((ref[region] - grey[sl][region]) / max(p_level - e_level, 1e-12), None, 1.0)
    coords = np.argwhere(region).astype(float) + [s.start for s in sl]
    return coords, missing


def _hull(particle: np.ndarray, depth: np.ndarray, sl: tuple) -> tuple[np.ndarray, np.ndarray]:
    """The particle's convex hull within ``sl`` (not in other particles) and the other particles grown by 2 voxels.

    ``depth`` is the distance transform of all particle envelopes (> 0 inside any particle).
    """
    from skimage.morphology import convex_hull_image

    psl = ndi.find_objects(particle.astype(np.int8))[0]
    hull = np.zeros(particle.shape, bool)
    hull[psl] = convex_hull_image(particle[psl])
    others = (depth[sl] > 0) & ~particle[sl]
    return hull[sl] & ~others, ndi.binary_dilation(others, iterations=2)


def _crack_widths(coords: np.ndarray, missing: np.ndarray, basis: np.ndarray, centre: np.ndarray) -> tuple[float, float]:
    """Mean and 95th-percentile local width (voxels) along the crack normal from the missing fraction.

    Each in-plane cell (1 voxel^2, in the crack's principal axes) sums the missing fraction of its
    column; cells with less than 0.5 voxel of crack are the blurred rim and not counted.
    """
    uv = np.round((coords - centre) @ basis[:, :2]).astype(np.int64)
    cells, inv = np.unique(uv, axis=0, return_inverse=True)
    col = np.bincount(inv.ravel(), weights=missing, minlength=len(cells))
    col = col[col >= 0.5]
    if col.size == 0:
        return float("nan"), float("nan")
    return float(col.sum() / col.size), float(np.percentile(col, 90))


def _dent(n_open: int, n_voxels: int) -> bool:
    """A shallow feature open to the outside is a surface dent when its opening is wide.

    A dent (a notch bridged by the envelope closing) touches the outside over its whole top:
    ``n_open`` voxels next to the outside above 2 ``n_voxels**(2/3)`` (3.3-5.4 on the phantoms'
    dents, 1.9 for a hemispherical pit). A round pore 0-3 voxels under the surface opens through a
    blurred wall of a few voxels only (0.8-1.2) and is kept.
    """
    return n_open > 2.0 * n_voxels ** (2.0 / 3.0)


def _features(seg_solid, plabels, options: TomoOptions, voxel_nm: float, close_voxels: int, grey=None, levels=None):
    """Classify dark features: crack rows, pore rows, labels and kinds."""
    feats = dark_features(seg_solid, plabels, min_voxels=options.min_feature_voxels)
    envelope = plabels > 0
    depth = ndi.distance_transform_edt(envelope)
    outside = ndi.binary_dilation(~envelope, structure=np.ones((3, 3, 3)))
    cracks, pores, kinds = [], [], {}
    for fid, sl in enumerate(ndi.find_objects(feats), 1):
        if sl is None:
            continue
        m = feats[sl] == fid
        owners = np.sort(np.bincount(plabels[sl][m]))[::-1]
        owner = int(np.bincount(plabels[sl][m]).argmax())
        n_open = int((outside[sl] & m).sum())
        open_ = n_open > 0
        shared = len(owners) > 1 and owners[1] > 0.2 * m.sum()
        if shared or (_dent(n_open, int(m.sum())) and depth[sl][m].max() < close_voxels + 1.5):
            feats[sl][m] = 0  # the gap between particles, or a shallow dent bridged by the closing
            continue
        coords = np.argwhere(m).astype(float) + [s.start for s in sl]
        sh = feature_shape(coords)
        if grey is not None:
            rc, miss = _deficit(fid, feats, plabels == owner, depth, grey, levels, open_=open_)
            n_vox = float(miss.sum())
        else:
            rc, miss, n_vox = coords, np.ones(len(coords)), float(m.sum())
        is_crack = sh["flatness"] < options.max_flatness and sh["extents"][1] >= options.min_sheet_voxels
        kinds[fid] = "crack" if is_crack else "pore"
        row = {"id": fid, "particle": owner, "volume_voxels": n_vox, "volume_nm3": n_vox * voxel_nm ** 3,
               "segmented_voxels": int(m.sum()),
               "surface_area_nm2": _area_nm2(m, voxel_nm), "centroid_z_nm": coords[:, 0].mean() * voxel_nm,
               "centroid_y_nm": coords[:, 1].mean() * voxel_nm, "centroid_x_nm": coords[:, 2].mean() * voxel_nm,
               "reaches_surface": open_, "flatness": sh["flatness"]}
        if is_crack:
            n = sh["normal"]
            w_mean, w_max = _crack_widths(rc, miss, sh["basis"], coords.mean(axis=0))
            row.update({"width_mean_nm": w_mean * voxel_nm, "width_max_nm": w_max * voxel_nm,
                        "extent_nm": 2 * np.sqrt(3) * sh["extents"][0] * voxel_nm,
                        "normal_z": n[0], "normal_y": n[1], "normal_x": n[2],
                        "normal_polar_deg": float(np.degrees(np.arccos(min(1.0, abs(n[0]))))),
                        "normal_azimuth_deg": float(np.degrees(np.arctan2(n[1], n[2])))})
            cracks.append(row)
        else:
            row["equivalent_diameter_nm"] = (6 * n_vox / np.pi) ** (1 / 3) * voxel_nm
            pores.append(row)
    crack_cols = ["crack", "particle", "volume_voxels", "segmented_voxels", "volume_nm3", "surface_area_nm2", "width_mean_nm",
                  "width_max_nm", "extent_nm", "normal_z", "normal_y", "normal_x", "normal_polar_deg",
                  "normal_azimuth_deg", "reaches_surface", "flatness", "centroid_z_nm", "centroid_y_nm", "centroid_x_nm"]
    pore_cols = ["pore", "particle", "volume_voxels", "segmented_voxels", "volume_nm3", "equivalent_diameter_nm", "surface_area_nm2",
                 "reaches_surface", "flatness", "centroid_z_nm", "centroid_y_nm", "centroid_x_nm"]
    ct = pd.DataFrame(cracks).rename(columns={"id": "crack"}).reindex(columns=crack_cols)
    pt = pd.DataFrame(pores).rename(columns={"id": "pore"}).reindex(columns=pore_cols)
    return ct, pt, feats, kinds


def _particle_table(plabels, cracks, pores, voxel_nm: float) -> pd.DataFrame:
    rows = []
    shape = np.asarray(plabels.shape)
    for pid, sl in enumerate(ndi.find_objects(plabels), 1):
        if sl is None:
            continue
        m = plabels[sl] == pid
        v = int(m.sum())
        area = _area_nm2(m, voxel_nm)
        c = cracks[cracks["particle"] == pid]
        p = pores[pores["particle"] == pid]
        border = any(s.start == 0 or s.stop == n for s, n in zip(sl, shape))
        rows.append({
            "particle": pid, "volume_voxels": v, "volume_nm3": v * voxel_nm ** 3,
            "equivalent_diameter_nm": (6 * v / np.pi) ** (1 / 3) * voxel_nm,
            "sphericity": float(np.pi ** (1 / 3) * (6 * v * voxel_nm ** 3) ** (2 / 3) / area) if area > 0 else np.nan,
            "crack_count": len(c), "crack_volume_fraction": float(c["volume_voxels"].sum()) / v,
            "crack_surface_area_nm2": float(c["surface_area_nm2"].sum()),
            "crack_width_mean_nm": float(np.average(c["width_mean_nm"], weights=c["volume_voxels"])) if len(c) else np.nan,
            "crack_width_max_nm": float(c["width_max_nm"].max()) if len(c) else np.nan,
            "crack_normal_polar_deg": float(c.loc[c["volume_voxels"].idxmax(), "normal_polar_deg"]) if len(c) else np.nan,
            "crack_reaches_surface": bool(c["reaches_surface"].any()) if len(c) else False,
            "pore_count": len(p), "pore_volume_fraction": float(p["volume_voxels"].sum()) / v,
            "touches_border": bool(border),
        })
    return pd.DataFrame(rows)


def _thin(source, shape) -> str:
    name = f"'{source}'" if source else "the volume"
    return (f"{name} gives only {'x'.join(map(str, shape))} voxels: particles and cracks need a 3-D volume of at least "
            f"{MIN_SLICES} voxels along every axis; give --reconstruct-only to reconstruct it without the analysis")


def _check_volume(vol: Volume, options: TomoOptions) -> None:
    name = f"'{vol.source}'" if vol.source else "the volume"
    if min(vol.data.shape) < MIN_SLICES:
        raise InputError(_thin(vol.source, vol.data.shape))
    if vol.labels and options.particle_label is None:
        raise InputError(f"{name} is a segmented label volume (labels {', '.join(map(str, np.unique(vol.data)[:8]))}); "
                         "say which label is the active material with --particle-label (and the pores with --pore-label)")
    if not vol.labels and options.particle_label is not None:
        raise InputError(f"{name} is a grey-level volume, not labels: leave out --particle-label")
    if vol.labels and options.particle_label not in np.unique(vol.data):
        raise InputError(f"{name} has no voxel with label {options.particle_label}; give --particle-label with one of "
                         f"{', '.join(map(str, np.unique(vol.data)[:16]))}")


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
                         "n_particles": int(len(parts)), "n_cracks": int(len(cracks)), "n_pores": int(len(pores))}
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
        vals, counts = np.unique(vol.data, return_counts=True)
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


def analyse(data: Projections | Volume, options: TomoOptions = TomoOptions(), *, scheduler: Any = None,
            progress: bool = False, out: np.ndarray | None = None) -> TomoResult:
    """Reconstruct (projections) and measure particles, cracks and pores.

    Parameters
    ----------
    data : Projections or Volume
        From :func:`layerscope.tomo.read_tomo` or built in memory.
    options : TomoOptions
    scheduler : see :func:`layerscope.parallel.scheduler_context`
        Slice chunks of the reconstruction run as Dask tasks.
    progress : bool
        Progress bar for the reconstruction.
    out : array, optional
        Where to reconstruct (e.g. a ``numpy.memmap`` for a volume larger than memory), see
        :func:`~layerscope.tomo.recon.reconstruct`.

    Returns
    -------
    TomoResult
    """
    rec = None
    flags: list[dict[str, str]] = []
    if options.bin_voxels < 1:
        raise InputError(f"--bin {options.bin_voxels}: give a whole number >= 1")
    if options.bin_voxels > 1:
        data = _binned(data, options.bin_voxels)
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
    solid, levels = solid_mask(vol.data, smooth_voxels=0.0 if vol.labels else options.smooth_voxels,
                               threshold=options.threshold, particle_label=options.particle_label)
    _check_contrast(levels, vol, flags)
    plab = particle_labels(solid, close_voxels=close, split=options.split, h_voxels=options.split_h_voxels,
                           min_voxels=options.min_particle_voxels)
    grey = None if vol.labels else np.asarray(vol.data, np.float32)
    cracks, pores, feats, kinds = _features(solid, plab, options, voxel, close, grey, levels)
    parts = _particle_table(plab, cracks, pores, voxel)
    summary = _summary({"particles": parts, "cracks": cracks, "pores": pores}, vol, options, levels)
    flags += _flags(parts, cracks, vol, close)
    if rec is not None:
        summary["reconstruction"] = _recon_summary(rec, options.recon)
    return _finish(vol, parts, cracks, pores, plab, feats, kinds, summary, flags, options, rec)


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
            "centre_px": rec.centre_px, "centre_searched": rec.centre_searched, "rings_removed": ro.rings,
            "device": rec.device, "units": "attenuation per voxel"}


def _finish(vol, parts, cracks, pores, plab, feats, kinds, summary, flags, options, rec) -> TomoResult:
    if rec is not None and "reconstruction" not in summary:
        summary["reconstruction"] = _recon_summary(rec, options.recon)
    summary["flags"] = flags
    return TomoResult(vol.data, vol.voxel_size_nm, parts, cracks, pores, plab, feats, kinds, summary, flags,
                      options, vol.source, rec, vol.labels)
