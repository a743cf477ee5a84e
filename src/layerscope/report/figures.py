"""Figures for reports: PNG bytes from Matplotlib, images with nm scale bars."""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

__all__ = ["figure_to_png", "FigureBytes", "add_scalebar", "nice_length_nm", "show_image", "plt", "OKABE_ITO"]

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


class FigureBytes(bytes):
    """PNG bytes of a figure that also carry its vector rendering (``.svg``, bytes)."""

    svg: bytes = b""


def figure_to_png(fig: "matplotlib.figure.Figure", *, dpi: int = 120) -> FigureBytes:
    """Render ``fig`` to PNG bytes (with the SVG rendering attached as ``.svg``) and close it.

    The report writes both next to ``report.html`` (``figures/figure-N.png`` and ``.svg``), so a
    figure can go into a paper as a vector file.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    for ax in fig.axes:  # thousands of markers (atom columns) stay raster in the SVG: 2.6 -> 0.8 MB
        for coll in ax.collections:
            if len(getattr(coll, "get_offsets", lambda: ())()) > _MAX_VECTOR_MARKERS:
                coll.set_rasterized(True)
    vec = io.BytesIO()
    fig.savefig(vec, format="svg", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    out = FigureBytes(buf.getvalue())
    out.svg = vec.getvalue()
    return out


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
