"""Writing a tomography result: tables, orthogonal slices with overlays, a 3-D rendering, the volume,
``summary.json``, provenance and the report section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from layerscope.tomo.stages import enter as _stage

__all__ = ["write_result", "figures", "report_section", "write_volume"]

_CRACK, _PORE = (230, 30, 30), (40, 120, 255)


def _grey(img: np.ndarray, lo: float, hi: float) -> np.ndarray:
    g = np.clip((np.asarray(img, np.float32) - lo) / max(hi - lo, 1e-12), 0, 1)
    return np.repeat((g * 255).astype(np.uint8)[..., None], 3, axis=2)


def _overlay(result, axis: int, index: int, lo: float, hi: float) -> np.ndarray:
    """An RGB slice (``axis`` 0: z, 1: y, 2: x) with particle outlines (yellow), cracks (red) and pores (blue)."""
    from scipy import ndimage as ndi

    take = lambda a: np.take(a, index, axis=axis)  # noqa: E731
    rgb = _grey(take(result.volume), lo, hi)
    if result.particle_labels is None:
        return rgb
    lab = take(result.particle_labels)
    edge = (lab > 0) & (ndi.grey_erosion(lab, size=3) != ndi.grey_dilation(lab, size=3))
    rgb[edge] = (255, 210, 0)
    feats = take(result.feature_labels)
    for fid, kind in result.feature_kind.items():
        rgb[feats == fid] = _CRACK if kind == "crack" else _PORE
    return rgb


def _slice_figure(result):
    from layerscope.report.figures import add_scalebar, plt

    vol = result.volume
    lo, hi = np.percentile(vol[:: max(1, vol.shape[0] // 16)], [0.5, 99.5]) if not result.is_labels else (vol.min(), vol.max())
    centre = [n // 2 for n in vol.shape]
    if result.particle_labels is not None and len(result.cracks):
        big = result.cracks.sort_values("volume_voxels").iloc[-1]
        centre = [int(big[f"centroid_{a}_nm"] // result.voxel_size_nm) for a in "zyx"]
    views = (0, 1, 2) if vol.shape[0] >= 8 else (0,)  # a few slices: the xz and yz cuts say nothing
    fig, axes = plt.subplots(1, len(views), figsize=(4 * len(views), 4.2), squeeze=False)
    for ax, axis in zip(axes[0], views):
        name = ("xy (z = {})", "xz (y = {})", "yz (x = {})")[axis]
        ax.imshow(_overlay(result, axis, centre[axis], lo, hi), interpolation="nearest")
        ax.set_title(name.format(centre[axis]))
        ax.set_axis_off()
        add_scalebar(ax, result.voxel_size_nm)
    return fig


def _render_figure(result):
    """A 3-D rendering: particle surfaces (translucent) and cracks (red), marching cubes, downsampled to <= 96^3."""
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection
    from skimage.measure import marching_cubes

    from layerscope.report.figures import plt

    step = max(1, int(np.ceil(max(result.volume.shape) / 96)))
    fig = plt.figure(figsize=(6, 6))
    ax = fig.add_subplot(projection="3d")
    vs = result.voxel_size_nm / 1000.0
    sub = (slice(None, None, step),) * 3  # subsample the labels first: no full-size mask (512^3 out of core)
    crack_ids = [k for k, v in result.feature_kind.items() if v == "crack"]
    for mask, colour, alpha in (((np.asarray(result.particle_labels[sub]) > 0), (0.85, 0.75, 0.3), 0.12),
                                (np.isin(np.asarray(result.feature_labels[sub]), crack_ids), (0.9, 0.1, 0.1), 0.9)):
        m = np.pad(mask, 1).astype(np.float32)
        if m.max() < 1 or m.sum() < 4:
            continue
        verts, faces, _, _ = marching_cubes(m, 0.5)
        verts = (verts - 1) * step * vs
        ax.add_collection3d(Poly3DCollection(verts[faces][:, :, ::-1], facecolor=colour, alpha=alpha, linewidth=0))
    shape = np.asarray(result.volume.shape) * vs
    ax.set_xlim(0, shape[2])
    ax.set_ylim(0, shape[1])
    ax.set_zlim(0, shape[0])
    ax.set_xlabel("x (um)")
    ax.set_ylabel("y (um)")
    ax.set_zlabel("z (um)")
    ax.set_title("particles (yellow) and cracks (red)")
    return fig


def figures(result) -> list[tuple[str, Any, str]]:
    """``(name, matplotlib figure, caption)`` of every figure that applies."""
    _stage("figure_slices")
    out = [("slices", _slice_figure(result), "Orthogonal slices through the largest crack (or the centre): particle "
            "outlines yellow, cracks red, pores blue.")]
    _stage("figure_rendering")
    if result.particle_labels is not None and result.particle_labels.max() > 0:
        out.append(("rendering_3d", _render_figure(result), "Particles (translucent) and cracks (red) in 3-D."))
    return out


def report_section(result, *, provenance: Any = None, pngs: dict[str, bytes] | None = None):
    """The tomography section of a layerscope report."""
    from layerscope.report import Figure, Section, Table, figure_to_png

    s = result.summary
    metrics: dict[str, Any] = {"volume (z x y x x voxels)": " x ".join(map(str, s["shape_zyx"])),
                               "voxel size (nm)": s["voxel_size_nm"]}
    for key in ("n_particles", "n_cracks", "n_pores", "cracked_particle_fraction", "porosity"):
        if key in s:
            metrics[key.replace("_", " ")] = s[key]
    if "missing_wedge" in s:  # a limited tilt range: the cracks whose orientations it sees (tomo.wedge)
        metrics["n cracks visible (outside the missing wedge)"] = s["n_cracks_visible"]
    if s.get("n_cracks_partly_outside_view"):  # projections: cracks the detector did not see at every angle (tomo.fov)
        metrics["cracks partly outside the region seen at every angle"] = (
            f"{s['n_cracks_partly_outside_view']} of {s['n_cracks']} ({s['n_cracks_outside_view']} mostly outside, "
            f"not counted in view; in view: {s['n_cracks_in_view']}); the projections saw only the cylinder of radius "
            f"{s['field_of_view']['radius_voxels']:.1f} voxels about the rotation axis at every angle")
    metrics.update(_spread_metrics(result))
    if "reconstruction" in s:
        r = s["reconstruction"]
        rings = (r.get("rings") or {}).get("method", "off" if not r.get("rings_removed", True) else "sorting")
        algorithm = r["algorithm"].upper() + (f" ({r['fbp_filter']} filter)" if r.get("fbp_filter") else "")
        metrics["reconstruction"] = (f"{algorithm} on {r['device']}, centre {r['centre_px']:.2f} px, "
                                     f"ring removal: {rings}"
                                     + (f", sinogram extended (truncation, {r.get('sinogram_extension') or 'half_width'})"
                                        if r.get("sinogram_extended") else ""))
        metrics["projections"] = (f"{r.get('projections', 'counts')}"
                                  + (f", angles from {r['angles_from']}" if r.get("angles_from") else ""))
        metrics.update(_alignment_metrics(r.get("alignment")))
    pngs = pngs or {name: figure_to_png(fig) for name, fig, _ in figures(result)}
    caps = {"slices": "Orthogonal slices: particle outlines yellow, cracks red, pores blue.",
            "rendering_3d": "Particles (translucent) and cracks (red) in 3-D."}
    figs = [Figure(name.replace("_", " "), png, caps.get(name, "")) for name, png in pngs.items()]
    tables = [Table(t, df.round(4)) for t, df in (("particles", result.particles), ("cracks", result.cracks),
                                                   ("pores", result.pores)) if len(df)]
    text = ("Reconstruction: flat/dark normalisation and -log (counts; -log only for transmission; neither for "
            "line integrals such as a HAADF-STEM tilt series), ring removal (dead detector columns interpolated, then "
            "algotom's sorting-based removal, or only the stripe columns detected), rotation centre by Vo's method, "
            "FBP/SIRT/CGLS through the ASTRA Toolbox. Analysis: particles are the "
            "solid above halfway between the particle and epoxy grey levels, closed to bridge cracks and split "
            "by a watershed on the distance transform (two parts that meet along a crack with no neck between them, "
            "a face wider than 1.12 times the smaller part's equivalent-sphere radius, stay one particle); dark features inside a particle are cracks when "
            "sheet-like (principal extents), one crack per plane where sheets of different planes cross or branch "
            "(the 'sheet' column of the cracks table), and pores otherwise; a round pore joined to cracks is parted from "
            "them by an opening with a ball wider than the cracks. Crack volumes count the missing attenuation around "
            "each crack (partial-volume aware); widths integrate it across the crack along the local normal where the "
            "crack covers the measuring disc (not at its rims, tips or crossings).")
    if result.flags:
        text += "\n\nFlags: " + "; ".join(f"{f['code']}: {f['message']}" for f in result.flags)
    headline = [k for k in metrics if k.startswith(("crack volume fraction", "crack width"))][:3]
    return Section("Tomography", text=text, figures=figs, tables=tables, metrics=metrics, provenance=provenance,
                   headline=headline or None)


def _spread_metrics(result) -> dict[str, Any]:
    """Crack volume fraction, particle size and crack width as report Values: whole-volume numbers (one
    measurement) and means ± standard deviations over the particles or cracks."""
    from layerscope.report import Value

    s, parts, cracks = result.summary, result.particles, result.cracks
    out: dict[str, Any] = {}
    if "crack_volume_fraction" in s:
        out["crack volume fraction (%, all particles together)"] = Value(100 * s["crack_volume_fraction"], None, "%")
    if len(parts) >= 2 and "crack_volume_fraction" in parts:
        f = 100 * parts["crack_volume_fraction"].to_numpy(float)
        out[f"crack volume fraction per particle (%, mean ± s.d. over {len(f)} particles)"] = Value(
            f.mean(), f.std(ddof=1), "%")
    if len(parts) >= 2 and "equivalent_diameter_nm" in parts:
        d = parts["equivalent_diameter_nm"].to_numpy(float)
        out[f"particle equivalent diameter (nm, mean ± s.d. over {len(d)} particles)"] = Value(
            d.mean(), d.std(ddof=1), "nm")
    if "crack_width_mean_nm" in s and len(cracks):
        w, v = cracks["width_mean_nm"].to_numpy(float), cracks["volume_voxels"].to_numpy(float)
        sd = float(np.sqrt(np.average((w - s["crack_width_mean_nm"]) ** 2, weights=v))) if len(w) >= 2 else None
        out[f"crack width (nm, volume-weighted mean ± s.d. over {len(w)} cracks)"] = Value(
            s["crack_width_mean_nm"], sd, "nm")
    return out


def _alignment_metrics(a: dict | None) -> dict[str, str]:
    """The report line of the shift check and the alignment (:func:`layerscope.tomo.recon._alignment`)."""
    if not a:
        return {}
    c = a["consistency"]
    line = f"angle-to-angle jumps {c['rms_px']:.2f} px RMS"
    if "accepted" not in a:
        line += "; not aligned (below the flag level)" if a.get("method") == "auto" else ""
    elif a["accepted"]:
        line += (f"; aligned ({a['method']}): shifts up to {a['max_px']:.1f} px, {a['rms_px']:.2f} px RMS undone, "
                 f"{a['consistency_aligned']['rms_px']:.2f} px RMS after")
    else:
        line += (f"; alignment FAILED ({a['method']}): {a['consistency_aligned']['rms_px']:.2f} px RMS after, "
                 + ("undone all the same (most jumps removed)" if a["aligned"] else "reconstructed as given"))
    return {"projection shifts": line}


def shifts_table(result):
    """Per-angle shifts undone (px; along the tilt axis = detector rows, across it = columns) or None."""
    import pandas as pd

    rec = result.reconstruction
    shifts = None if rec is None or rec.alignment is None else rec.alignment.get("shifts")
    if shifts is None:
        return None
    angles = rec.angles_deg if rec.angles_deg is not None else np.full(len(shifts["dy"]), np.nan)
    return pd.DataFrame({"projection": np.arange(len(shifts["dy"])), "angle_deg": angles,
                         "shift_rows_px": shifts["dy"], "shift_columns_px": shifts["dx"]})


def write_volume(volume: np.ndarray, voxel_size_nm: float, path: Path) -> Path:
    """The volume as an ImageJ TIFF stack (float32) with the voxel size in nm (read back by ``read_tomo``)."""
    import tifffile

    tifffile.imwrite(path, np.asarray(volume, np.float32), imagej=True,
                     resolution=(1.0 / voxel_size_nm, 1.0 / voxel_size_nm),
                     metadata={"spacing": voxel_size_nm, "unit": "nm", "axes": "ZYX"})
    return path


def write_result(result, out_dir: Path, provenance: Any = None, *, save_volume: bool = False,
                 report: bool = True) -> dict[str, Path]:
    """Write everything into ``out_dir`` (already claimed by :class:`~layerscope.io.output.OutputTarget`)."""
    from layerscope.io.output import write_summary, write_table
    from layerscope.provenance import Provenance
    from layerscope.report import figure_to_png, render_report

    out_dir = Path(out_dir)
    written: dict[str, Path] = {}
    _stage("write_tables")
    if result.particle_labels is not None:
        for name, df in (("particles", result.particles), ("cracks", result.cracks), ("pores", result.pores)):
            written[name] = write_table(df, out_dir / f"{name}.csv")
    shifts = shifts_table(result)
    if shifts is not None:
        written["shifts"] = write_table(shifts, out_dir / "shifts.csv")
    pngs = {}
    for name, fig, _ in figures(result):
        pngs[name] = figure_to_png(fig)
        (out_dir / f"{name}.png").write_bytes(pngs[name])
        written[name] = out_dir / f"{name}.png"
    _stage("write_volume_summary_report")
    if save_volume:
        written["volume"] = write_volume(result.volume, result.voxel_size_nm, out_dir / "volume.tif")
    if provenance is None:
        src = result.source if result.source is not None and Path(result.source).is_file() else result.volume
        provenance = Provenance.create(inputs=[src], parameters={"options": result.options.to_dict()})
    written["summary"] = write_summary(out_dir, result.summary, provenance)
    if report:
        section = report_section(result, provenance=provenance, pngs=pngs)
        written["report"] = render_report([section], out_dir / "report.html", title="layerscope tomography report",
                                          provenance=provenance)
    return written
