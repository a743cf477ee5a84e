"""Outputs of an in situ analysis: CSV time series, plots, an annotated movie, summary and report.

Everything is written into a folder (use :func:`layerscope.io.output.output_directory` around it for
all-or-nothing results). The annotated movie is a second, read-only pass over at most
``max_frames`` frames, drift-stabilised (whole-pixel shifts) and downsampled to at most
``max_size`` pixels, with void outlines (red), surface pores (orange), cracks (yellow) and the
front (cyan) drawn on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from layerscope.containers import ImageSeries
from layerscope.errors import InputError
from layerscope.insitu.pipeline import InsituResult
from layerscope.insitu.series import read_frame
from layerscope.io.output import writes_folder

__all__ = ["write_tables", "figures", "report_section", "write_movie", "write_outputs", "provenance_inputs"]


def write_tables(result: InsituResult, out_dir: Path) -> list[Path]:
    """``frames.csv`` (per-frame time series), ``voids.csv``, ``void_tracks.csv``, ``void_events.csv``,
    ``cracks.csv``, ``front.csv``, ``bad_frames.csv`` (those that apply)."""
    from layerscope.io.output import write_table

    o = result.options
    paths = [write_table(result.frames, out_dir / "frames.csv"),
             write_table(result.bad_frames, out_dir / "bad_frames.csv")]
    if o.voids:
        paths += [write_table(result.voids, out_dir / "voids.csv"),
                  write_table(result.tracks, out_dir / "void_tracks.csv"),
                  write_table(result.events, out_dir / "void_events.csv")]
    if o.cracks:
        paths.append(write_table(result.cracks, out_dir / "cracks.csv"))
    if o.fronts and len(result.fronts):
        paths.append(write_table(result.fronts, out_dir / "front.csv"))
    return paths


def figures(result: InsituResult) -> list[tuple[str, "Any", str]]:
    """``(name, matplotlib figure, caption)`` for every plot that applies."""
    from layerscope.report.figures import legend_outside, plt

    out = []
    f = result.frames
    o = result.options
    if o.drift:
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
        ax.plot(f["time_s"], f["drift_x_nm"], "o-", ms=3, label="x")
        ax.plot(f["time_s"], f["drift_y_nm"], "s-", ms=3, label="y")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("drift (nm)")
        legend_outside(ax)
        ax.set_title("Cumulative specimen drift")
        out.append(("drift", fig, f"Drift against the first frame ({result.summary['drift']['reference']} reference)."))
    if o.voids and "void_fraction" in f:
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
        ax.plot(f["time_s"], 100 * f["void_fraction"], "o-", ms=3, color="C3")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("void areal fraction (%)")
        ax2 = ax.twinx()
        ax2.step(f["time_s"], f["n_voids"], where="mid", color="0.4", lw=1)
        ax2.set_ylabel("voids (count)", color="0.4")
        ax.set_title("Voids and pores")
        out.append(("void_fraction", fig, "Areal fraction of the analysed area (red) and number of voids (grey)."))
        if len(result.voids):
            last = result.voids[result.voids["frame"] == result.voids["frame"].max()]
            fig, ax = plt.subplots(figsize=(5.0, 3.2))
            ax.hist(result.voids["equivalent_diameter_nm"], bins=20, color="0.7", label="all frames")
            ax.hist(last["equivalent_diameter_nm"], bins=20, color="C3", alpha=0.8, label="last frame")
            ax.set_xlabel("equivalent diameter (nm)")
            ax.set_ylabel("voids (count)")
            legend_outside(ax)
            out.append(("void_sizes", fig, "Size distribution (equivalent-circle diameter)."))
    if o.fronts and len(result.fronts):
        fr = result.fronts
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
        good = fr[fr["front_ok"]]
        ax.errorbar(good["time_s"], good["position_nm"], yerr=good["position_err_nm"], fmt="o", ms=3, label="front")
        s = result.summary.get("front", {})
        if "velocity_nm_per_s" in s:
            t = np.linspace(fr["time_s"].min(), fr["time_s"].max(), 50)
            ax.plot(t, s["intercept_nm"] + s["velocity_nm_per_s"] * t, "-", color="C1",
                    label=f"v = {s['velocity_nm_per_s']:.4g} ± {s['velocity_err_nm_per_s']:.2g} nm/s")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("front position (nm)")
        legend_outside(ax)
        ax.set_title("Layered / rock-salt front")
        out.append(("front_position", fig, "Front position along its propagation direction (specimen coordinates)."))
    return out


def report_section(result: InsituResult, *, title: str = "In situ series", first_frame: np.ndarray | None = None,
                   provenance: Any = None):
    """The report section: key numbers, plots, tables and (optionally) the first frame annotated."""
    from layerscope.report import Figure, Section, Table, figure_to_png
    from layerscope.report.figures import add_scalebar, plt

    s = result.summary
    metrics: dict[str, Any] = {**_headline_metrics(result),
                               "frames analysed": f"{s['n_frames_analysed']} of {s['n_frames']}"}
    if s.get("bad_frames"):
        metrics["unreadable frames"] = ", ".join(str(b) for b in s["bad_frames"])
    if "drift" in s:
        metrics["max drift (nm)"] = s["drift"]["max_drift_nm"]
    if "voids" in s and s["voids"]["final_fraction"] is not None:
        v = s["voids"]
        metrics["void fraction, first -> last (%)"] = f"{100 * v['initial_fraction']:.2f} -> {100 * v['final_fraction']:.2f}"
        metrics["void tracks"] = v["n_tracks"]
        for k, n in v["events"].items():
            metrics[f"events: {k}"] = n
    if "front" in s and "velocity_nm_per_s" in s["front"]:
        metrics["front direction to layer normal (deg)"] = s["front"]["angle_to_layer_normal_deg"]
    if "cracks" in s and "median_width_nm" in s["cracks"]:
        metrics["crack width, last frame (nm, median over the crack)"] = s["cracks"]["median_width_nm"]
        metrics["crack length, last frame (nm)"] = s["cracks"]["total_length_nm"]
    figs = [Figure(name.replace("_", " "), figure_to_png(fig), cap) for name, fig, cap in figures(result)]
    if first_frame is not None:
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.imshow(_annotate(first_frame, result, 0, scale=1), interpolation="nearest")
        ax.set_axis_off()
        add_scalebar(ax, result.pixel_size_nm)
        figs.insert(0, Figure("first frame", figure_to_png(fig),
                              "First frame with the voids (red), surface pores (orange), cracks (yellow) and the front (cyan)."))
    tables = [Table("per-frame time series", result.frames.round(4))]
    if len(result.tracks):
        tables.append(Table("void tracks", result.tracks.round(4)))
    if len(result.events):
        tables.append(Table("void events", result.events.round(4)))
    if len(result.cracks):
        tables.append(Table("cracks", result.cracks.round(4)))
    if len(result.bad_frames):
        tables.append(Table("unreadable frames", result.bad_frames))
    text = (
        "Drift: sub-pixel phase correlation with spectral whitening 0.5 (Guizar-Sicairos et al. 2008; "
        "periodic-plus-smooth decomposition, Moisan 2011), combined by least squares over the frame pairs. "
        "Voids and pores: dark features of the low-passed frame relative to a local background, outlined at half "
        "their depth and corrected for the blur; tracked by overlap. Front: lock-in amplitude of the layer fringe "
        "(which vanishes in rock salt) relative to the local intensity, fitted with an error-function profile; the "
        "10-90 % width is given after removing the window blur. Positions are in the first frame's coordinates."
    )
    if result.stopped_at is not None:
        text += f"\n\nThe analysis stopped at unreadable frame {result.stopped_at}; the frames before it are reported."
    headline = [k for k in metrics if k.startswith(("void growth", "front velocity", "front width"))]
    return Section(title, text=text, figures=figs, tables=tables, metrics=metrics, provenance=provenance,
                   headline=headline or None)


def _headline_metrics(result: InsituResult) -> dict[str, Any]:
    """Void growth rate (straight line through the void area against time, ± its standard error) and the
    front's velocity and width (± their fit standard errors) as report Values."""
    from layerscope.report import Value

    s, f = result.summary, result.frames
    out: dict[str, Any] = {}
    if "void_area_nm2" in f and "time_s" in f:
        ok = np.isfinite(f["void_area_nm2"].to_numpy(float)) & np.isfinite(f["time_s"].to_numpy(float))
        if ok.sum() >= 3:
            (slope, _), cov = np.polyfit(f["time_s"].to_numpy(float)[ok], f["void_area_nm2"].to_numpy(float)[ok], 1,
                                         cov=True)
            out[f"void growth rate (nm²/s, total void area; linear fit ± s.e. over {int(ok.sum())} frames)"] = Value(
                slope, np.sqrt(cov[0, 0]), "nm²/s")
    fr = s.get("front", {})
    if "velocity_nm_per_s" in fr:
        out["front velocity (nm/s, fit ± s.e.)"] = Value(fr["velocity_nm_per_s"], fr["velocity_err_nm_per_s"], "nm/s")
        out["front width, 10-90 % (nm, ± s.e.)"] = Value(fr["width_nm"], fr["width_err_nm"], "nm")
    return out


def _outline(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage as ndi

    return mask & ~ndi.binary_erosion(mask)


_COLOURS = {"void": (230, 40, 40), "surface": (255, 150, 0), "crack": (255, 230, 0), "front": (0, 220, 255)}


def _annotate(frame: np.ndarray, result: InsituResult, i: int, *, scale: int, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """An RGB uint8 picture of a (raw) frame with the analysis drawn on it, downsampled by ``scale``.

    ``shift`` (px) moves the picture (drift stabilisation); overlays follow it.
    """
    f = np.asarray(frame, np.float32)
    if scale > 1:
        h, w = (f.shape[0] // scale) * scale, (f.shape[1] // scale) * scale
        f = f[:h, :w].reshape(h // scale, scale, w // scale, scale).mean(axis=(1, 3))
    finite = np.isfinite(f)
    lo, hi = (np.percentile(f[finite], [0.5, 99.5]) if finite.any() else (0.0, 1.0))
    g = np.clip((np.nan_to_num(f, nan=lo) - lo) / max(hi - lo, 1e-12), 0, 1)
    rgb = np.repeat((g * 255).astype(np.uint8)[..., None], 3, axis=2)
    outl = result.outlines.get(i, [])
    for row0, col0, mask, kind, b in outl:
        edge = _outline(mask)
        rr, cc = np.nonzero(edge)
        rr = ((row0 + rr) * b) // scale
        cc = ((col0 + cc) * b) // scale
        ok = (rr >= 0) & (rr < rgb.shape[0]) & (cc >= 0) & (cc < rgb.shape[1])
        rgb[rr[ok], cc[ok]] = _COLOURS.get(kind, _COLOURS["void"])
    fr = result.fronts
    if len(fr) and "front" in result.summary:
        row = fr[fr["frame"] == i]
        if len(row) and bool(row["front_ok"].iloc[0]):
            a = np.deg2rad(result.summary["front"]["direction_deg"])
            p = result.pixel_size_nm
            drift = result.frames.loc[result.frames["frame"] == i, ["drift_x_nm", "drift_y_nm"]].to_numpy()[0]
            d_raw = float(row["position_nm"].iloc[0]) + drift[0] * np.cos(a) + drift[1] * np.sin(a)
            n_pts = 4 * max(rgb.shape)
            tline = np.linspace(-max(rgb.shape) * scale * p, max(rgb.shape) * scale * p, n_pts)
            xs = d_raw * np.cos(a) - tline * np.sin(a)
            ys = d_raw * np.sin(a) + tline * np.cos(a)
            cc = np.floor(xs / p / scale).astype(int)
            rr = np.floor(ys / p / scale).astype(int)
            ok = (rr >= 0) & (rr < rgb.shape[0]) & (cc >= 0) & (cc < rgb.shape[1])
            rgb[rr[ok], cc[ok]] = _COLOURS["front"]
    if shift != (0, 0):
        rgb = _shift_rgb(rgb, (shift[0] // scale, shift[1] // scale))
    return rgb


def _shift_rgb(rgb: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    out = np.zeros_like(rgb)
    dy, dx = shift
    h, w = rgb.shape[:2]
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = rgb[ys, xs]
    return out


def write_movie(series: ImageSeries, result: InsituResult, path: Path, *, fps: float = 10.0, max_frames: int = 300,
                max_size: int = 512, scheduler: Any = None) -> Path:
    """The annotated, drift-stabilised movie as MP4 (H.264 via imageio-ffmpeg) or GIF.

    Frames are read chunk by chunk; at most ``max_frames`` are shown (every k-th frame).
    """
    from layerscope.parallel import compute, progress_bar, scheduler_context

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise InputError(f"cannot write a movie to '{path}': use an .mp4 or .gif name")
    n = len(result.frames)
    stride = max(1, int(np.ceil(n / max_frames)))
    idx = list(range(0, n, stride))
    h, w = result.shape
    scale = max(1, int(np.ceil(max(h, w) / max_size)))
    drift = result.frames[["drift_y_px", "drift_x_px"]].to_numpy()
    chunk = 16
    pictures: list[np.ndarray] = []
    writer = None
    if suffix == ".mp4":
        import imageio_ffmpeg

        hh, ww = h // scale, w // scale
        hh, ww = hh - hh % 2, ww - ww % 2
        writer = imageio_ffmpeg.write_frames(str(path), (ww, hh), pix_fmt_in="rgb24", fps=fps, quality=7,
                                             macro_block_size=2, ffmpeg_log_level="error")
        writer.send(None)
    try:
        with scheduler_context(scheduler) as opts, progress_bar(len(idx), f"in situ: {path.name}") as bar:
            where = opts["scheduler"] if not isinstance(opts["scheduler"], str) else scheduler
            for start in range(0, len(idx), chunk):
                sel = idx[start : start + chunk]
                (block,) = compute(series.data[sel], scheduler=where)
                bar.update(len(sel))
                for k, i in enumerate(sel):
                    d = drift[i]
                    sh = (0, 0) if not np.all(np.isfinite(d)) else (-int(round(d[0])), -int(round(d[1])))
                    rgb = _annotate(block[k], result, i, scale=scale, shift=sh)
                    if writer is not None:
                        writer.send(np.ascontiguousarray(rgb[:hh, :ww]).tobytes())
                    else:
                        pictures.append(rgb)
    finally:
        if writer is not None:
            writer.close()
    if suffix == ".gif":
        import imageio.v3 as iio

        iio.imwrite(path, np.stack(pictures), duration=1000.0 / fps, loop=0)
    return path


def provenance_inputs(series: ImageSeries) -> list[Any]:
    """What to hash for provenance: the file, every frame of a folder, or the array."""
    reader = series.metadata.get("_reader")
    if reader is not None and hasattr(reader, "files"):
        return list(reader.files)
    if series.source is not None and Path(series.source).is_file():
        return [series.source]
    from layerscope.parallel import compute_here

    data = series.data
    return [np.asarray(compute_here(data) if hasattr(data, "dask") else data)]


@writes_folder()
def write_outputs(series: ImageSeries, result: InsituResult, out_dir: Path, *, movie: str | None = "mp4",
                  report: bool = True, parameters: dict | None = None, scheduler: Any = None) -> dict[str, Path]:
    """Write tables, plots, the movie, ``summary.json``/``provenance.json`` and ``report.html`` into ``out_dir``."""
    from layerscope.io.output import write_summary
    from layerscope.provenance import Provenance
    from layerscope.report import figure_to_png, render_report

    out_dir = Path(out_dir)
    written: dict[str, Path] = {}
    for p in write_tables(result, out_dir):
        written[p.stem] = p
    for name, fig, _ in figures(result):
        p = out_dir / f"{name}.png"
        p.write_bytes(figure_to_png(fig))
        written[name] = p
    if movie:
        written["movie"] = write_movie(series, result, out_dir / f"annotated.{movie}", scheduler=scheduler)
    prov = Provenance.create(inputs=provenance_inputs(series),
                             parameters={**(parameters or {}), **{"options": result.options.to_dict()}})
    written["summary"] = write_summary(out_dir, result.summary, prov)
    if report:
        first = None
        good = result.frames.index[result.frames["status"] == "ok"]
        if len(good):
            first = read_frame(series, int(result.frames.loc[good[0], "frame"]))
        section = report_section(result, first_frame=first, provenance=prov)
        written["report"] = render_report([section], out_dir / "report.html", title="layerscope in situ report",
                                          provenance=prov)
    return written
