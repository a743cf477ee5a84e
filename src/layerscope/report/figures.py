"""Figures for reports: PNG bytes from Matplotlib, images with nm scale bars."""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

__all__ = ["figure_to_png", "FigureBytes", "add_scalebar", "nice_length_nm", "show_image", "plt", "OKABE_ITO",
           "legend_outside", "layout_problems", "MIN_FONT_PT", "axis_label", "imshow_binned", "hide_axes", "SAVE_DPI"]

#: The smallest font size (points, at the saved size) a figure may use: readable in print.
MIN_FONT_PT = 7.0

#: Okabe & Ito's colour-blind-safe palette (Color Universal Design), the default line colours.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")

plt.rcParams.update({
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
    "font.size": 10,
    "axes.labelsize": 10,
    "axes.titlesize": 11,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.frameon": False,
    "svg.fonttype": "none",  # text stays text in the SVG (editable, searchable)
})


#: Marker collections larger than this are embedded as pixels in the SVG (size and time).
_MAX_VECTOR_MARKERS = 2000

#: Dots per inch of the saved figures (:func:`figure_to_png`'s default).
SAVE_DPI = 120


class FigureBytes(bytes):
    """PNG bytes of a figure that also carry its vector rendering (``.svg``, bytes)."""

    svg: bytes = b""


def figure_to_png(fig: "matplotlib.figure.Figure", *, dpi: int = SAVE_DPI) -> FigureBytes:
    """Render ``fig`` to PNG bytes (with the SVG rendering attached as ``.svg``) and close it.

    The report writes both next to ``report.html`` (``figures/figure-N.png`` and ``.svg``), so a
    figure can go into a paper as a vector file. Both are cropped to the figure's tight bounding
    box, found once (in the PNG's layout pass) and reused for the SVG, which is then drawn once.
    """
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    buf = io.BytesIO()
    # zlib level 3 instead of Pillow's 6: half the encoding time, 1 % larger (a 1424 x 624 overlay)
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", pil_kwargs={"compress_level": 3})
    for ax in fig.axes:  # thousands of markers (atom columns) stay raster in the SVG: 2.6 -> 0.8 MB
        for coll in ax.collections:
            if len(getattr(coll, "get_offsets", lambda: ())()) > _MAX_VECTOR_MARKERS:
                coll.set_rasterized(True)
    vec = io.BytesIO()
    engine = fig.get_layout_engine()
    if engine is None or isinstance(engine, PlaceHolderLayoutEngine):
        # No layout left to run (``tight_layout()`` leaves a placeholder): savefig's layout draw would
        # only find the extent again, so it gets the extent of the PNG's draw and draws once.
        bbox = _tight_bbox(fig, dpi)
        fig.set_layout_engine(None)
        try:
            fig.savefig(vec, format="svg", dpi=dpi, bbox_inches=bbox)
        finally:
            if engine is not None:
                fig.set_layout_engine(engine)
    else:
        fig.savefig(vec, format="svg", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    out = FigureBytes(buf.getvalue())
    out.svg = vec.getvalue()
    return out


def _tight_bbox(fig: "matplotlib.figure.Figure", dpi: float):
    """What ``savefig(bbox_inches="tight", dpi=dpi)`` crops to (inches), from the figure as last drawn.

    Called right after a ``savefig`` at the same ``dpi``, whose draw laid the figure out, so
    another format can be saved without drawing the figure a second time to find its extent.
    """
    if not hasattr(fig.canvas, "get_renderer"):  # a canvas without a renderer of its own: let savefig find it
        return "tight"
    original = fig.dpi
    fig.set_dpi(dpi)
    try:
        box = fig.get_tightbbox(fig.canvas.get_renderer())
    finally:
        fig.set_dpi(original)
    pad = matplotlib.rcParams["savefig.pad_inches"]
    return box.padded(pad)


def hide_axes(ax: "matplotlib.axes.Axes") -> None:
    """Turn the axes off (no frame, ticks or labels) and its two axis objects too.

    The hidden axis objects are then also skipped when the title is placed and the layout is
    found (Matplotlib lays out the ticks of an axes that is merely off: ~0.1 s per figure).
    """
    ax.set_axis_off()
    ax.xaxis.set_visible(False)
    ax.yaxis.set_visible(False)


def imshow_binned(ax: "matplotlib.axes.Axes", image: np.ndarray, *, panel_inches: float, labels: bool = False,
                  dpi: float = SAVE_DPI, **imshow_kwargs):
    """``ax.imshow(image)`` in image-pixel coordinates, from a copy binned to about the screen's resolution.

    A panel ``panel_inches`` wide shows at most ``panel_inches * dpi`` figure pixels, so an image
    with more pixels than that is binned first by the largest integer factor that keeps at least
    one image pixel per figure pixel: block means (``labels=False``; the edge is padded by
    repeating the last row / column) or every factor-th pixel (``labels=True``: label images,
    what nearest-neighbour sampling would show). Drawing it then resamples a few hundred thousand
    pixels instead of millions (a 2048² image: 0.15 s per draw less). The axes are fixed to the
    limits of the full image (``-0.5 .. n - 0.5``, whatever is drawn later), so markers and scale
    bars in image pixels stay in place. Returns the ``AxesImage``.
    """
    image = np.asarray(image)
    h, w = image.shape[:2]
    factor = max(1, int(max(h, w) // max(panel_inches * dpi, 1.0))) if image.ndim == 2 else 1  # RGB(A): as it is
    hp, wp = -(-h // factor) * factor, -(-w // factor) * factor
    if factor == 1:
        shown = image
    elif labels:
        shown = image[::factor, ::factor]
    else:
        padded = image if (hp, wp) == (h, w) else np.pad(image, ((0, hp - h), (0, wp - w)), mode="edge")
        shown = np.zeros((hp // factor, wp // factor), dtype=np.float32)
        for i in range(factor):  # sums of strided views: ~10x faster than a mean over a reshaped copy
            for j in range(factor):
                shown += padded[i::factor, j::factor]
        shown /= factor * factor
    art = ax.imshow(shown, extent=(-0.5, wp - 0.5, hp - 0.5, -0.5), **imshow_kwargs)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    return art


def nice_length_nm(target_nm: float) -> float:
    """The largest 1-2-5 × 10^k length (nm) not above ``target_nm``."""
    if not target_nm > 0:
        raise ValueError("target length must be positive")
    exponent = math.floor(math.log10(target_nm))
    for m in (5, 2, 1):
        if m * 10**exponent <= target_nm:
            return m * 10.0**exponent
    return 10.0**exponent  # pragma: no cover


def add_scalebar(ax: "matplotlib.axes.Axes", pixel_size_nm: float, *, fraction: float = 0.2,
                 color: str = "white", location: str = "lower right") -> float:
    """Draw a scale bar of a round length (nm) on an image axes drawn in pixel coordinates.

    Returns the bar length in nm.
    """
    x0, x1 = sorted(ax.get_xlim())
    y_lo, y_hi = sorted(ax.get_ylim())
    width_px = x1 - x0
    length_nm = nice_length_nm(fraction * width_px * pixel_size_nm)
    length_px = length_nm / pixel_size_nm
    pad = 0.04 * width_px
    height = 0.012 * (y_hi - y_lo)
    x = x1 - pad - length_px if location.endswith("right") else x0 + pad
    y = y_hi - pad - height if location.startswith("lower") else y_lo + pad
    ax.add_patch(Rectangle((x, y), length_px, height, color=color, lw=0))
    label = f"{length_nm:g} nm" if length_nm >= 1 else f"{length_nm * 10:g} Å"
    ax.text(x + length_px / 2, y - 0.01 * (y_hi - y_lo), label, color=color, ha="center", va="bottom",
            fontsize=10, fontweight="bold")
    return length_nm


def show_image(image: np.ndarray, pixel_size_nm: float, *, title: str = "", cmap: str = "gray",
               ax: "matplotlib.axes.Axes | None" = None, **imshow_kwargs):
    """Show an image with a scale bar and no pixel ticks; returns ``(fig, ax)``."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(5, 5 * image.shape[0] / max(image.shape[1], 1)))
    else:
        fig = ax.figure
    ax.imshow(image, cmap=cmap, interpolation="nearest", **imshow_kwargs)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    add_scalebar(ax, pixel_size_nm)
    return fig, ax


def legend_outside(ax: "matplotlib.axes.Axes", handles=None, *, where: str = "right", fontsize: float = 8,
                   **kwargs) -> "matplotlib.legend.Legend":
    """Put the legend of ``ax`` outside its data area: to the right of the axes or below its x label.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    handles : list, optional
        Legend handles (default: the labelled artists of ``ax``).
    where : {"right", "below"}
        "right" for a single panel (the saved figure grows to hold it, ``bbox_inches="tight"``);
        "below" for a panel with another panel to its right.
    fontsize : float
        Points; never below :data:`MIN_FONT_PT`.
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.legend` (``ncol``, ``markerscale`` ...).

    Returns
    -------
    matplotlib.legend.Legend
    """
    from matplotlib.transforms import ScaledTranslation

    kwargs.setdefault("borderaxespad", 0.0)
    kwargs["fontsize"] = max(float(fontsize), MIN_FONT_PT)
    if handles is not None:
        kwargs["handles"] = handles
    if where == "right":
        return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), **kwargs)
    if where != "below":
        raise ValueError(f"where must be 'right' or 'below', not {where!r}")
    fig = ax.figure
    tight = ax.get_tightbbox(fig.canvas.get_renderer())  # the axes with its tick labels and x label (pixels)
    drop_in = (ax.get_window_extent().y0 - tight.y0) / fig.dpi + 0.05
    transform = ax.transAxes + ScaledTranslation(0.0, -drop_in, fig.dpi_scale_trans)
    kwargs.setdefault("ncol", 3)
    return ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=transform, **kwargs)


def _overlap_px(a, b) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(w, 0.0) * max(h, 0.0)


def _labels_over_other_axes(axes: list) -> list[str]:
    """An axes' title, axis labels or tick labels drawn over another axes' data area."""
    out = []
    renderer = axes[0].figure.canvas.get_renderer() if axes else None
    for i, ax in enumerate(axes):
        texts = [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.get_xticklabels(), *ax.get_yticklabels()]
        for t in texts:
            if not (t.get_visible() and t.get_text().strip()):
                continue
            box = t.get_window_extent(renderer)
            for j, other in enumerate(axes):
                if j != i and other.axison and _overlap_px(box, other.get_window_extent()) > 4.0:
                    out.append(f"axes {i} {ax.get_title()!r}: {t.get_text()[:30]!r} is drawn over axes {j} "
                               f"{other.get_title()!r}")
                    break
    return out


def _axis_problems(ax, name: str) -> list[str]:
    """Axis labels: every axis with tick labels has a label with a unit in (…) or […]."""
    out = []
    for axis, which in ((ax.xaxis, "x"), (ax.yaxis, "y")):
        if not axis.get_visible() or not any(t.get_visible() and t.get_text() for t in axis.get_ticklabels()):
            continue
        label = axis.get_label().get_text()
        if not label:
            out.append(f"{name}: {which} axis has tick labels but no label")
        elif not (("(" in label and ")" in label) or ("[" in label and "]" in label)
                  or label.endswith((" number", " index"))):  # an ordinal (cycle number) has no unit
            out.append(f"{name}: {which} label {label!r} has no unit in (…) or […]")
    return out


def layout_problems(fig: "matplotlib.figure.Figure") -> list[str]:
    """What keeps ``fig`` from print quality, one line each (empty: none).

    Checks, at the size the figure is saved: a legend overlapping the data area of any axes
    (legends belong outside the data, :func:`legend_outside`), an axis with tick labels but no label
    with a unit in parentheses or brackets ("(nm)", "[eV]", "(count)", "(a.u.)"; an ordinal such as
    "cycle number" needs none), a title, axis label or tick label drawn over another axes' data
    area, and any visible text smaller than :data:`MIN_FONT_PT` points.
    """
    fig.canvas.draw()
    problems = []
    axes = [ax for ax in fig.axes if ax.get_visible()]
    for i, ax in enumerate(axes):
        name = f"axes {i} {ax.get_title()!r}"
        if ax.axison:
            problems += _axis_problems(ax, name)
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            box = legend.get_window_extent()
            for j, other in enumerate(axes):
                if _overlap_px(box, other.get_window_extent()) > 1.0:
                    problems.append(f"{name}: legend overlaps the data area of axes {j} {other.get_title()!r}")
    problems += _labels_over_other_axes(axes)
    for text in fig.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text")):
        if text.get_visible() and text.get_text().strip() and text.get_fontsize() < MIN_FONT_PT - 1e-6:
            problems.append(f"text {text.get_text()[:30]!r} is {text.get_fontsize():g} pt (< {MIN_FONT_PT:g} pt)")
    return problems


#: Unit suffixes of column names (``time_s``) and how an axis label writes them.
_UNIT_SUFFIXES = {"s": "s", "min": "min", "h": "h", "V": "V", "C": "°C", "K": "K", "eV": "eV", "nm": "nm",
                  "pm": "pm", "A": "Å", "deg": "deg", "mAh": "mAh", "Ohm": "Ohm", "pct": "%", "percent": "%"}


def axis_label(name: str) -> str:
    """An axis label from a column name with a unit suffix: "time_s" -> "time (s)", "cycle" -> "cycle number".

    A name without a known unit suffix is returned with spaces for underscores.
    """
    head, _, unit = name.rpartition("_")
    if head and unit in _UNIT_SUFFIXES:
        return f"{head.replace('_', ' ')} ({_UNIT_SUFFIXES[unit]})"
    if name in ("cycle", "pattern", "spectrum", "frame"):
        return f"{name} number"
    return name.replace("_", " ")
