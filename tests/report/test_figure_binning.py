"""Large images are shown binned (``imshow_binned``), and the SVG reuses the PNG's extent (``figure_to_png``)."""

import io
import re

import numpy as np
import pytest
from PIL import Image

from layerscope.report.figures import SAVE_DPI, figure_to_png, hide_axes, imshow_binned, plt


def test_a_large_image_is_shown_as_block_means_in_full_image_coordinates():
    rng = np.random.default_rng(1)
    image = rng.poisson(5.0, size=(1501, 1600)).astype(np.float32)  # 1600 // (2 in * 120 dpi) = 6
    fig, ax = plt.subplots(figsize=(2, 2))
    art = imshow_binned(ax, image, panel_inches=2.0, cmap="gray")
    shown = art.get_array()
    assert shown.shape == (251, 267)  # ceil(1501 / 6), ceil(1600 / 6)
    assert shown[10, 20] == pytest.approx(image[60:66, 120:126].mean(), rel=1e-6)
    # the last row of blocks is padded by repeating the image's last row
    last = np.vstack([image[1500:1501, :6]] * 6)
    assert shown[-1, 0] == pytest.approx(last.mean(), rel=1e-6)
    assert art.get_extent() == [-0.5, 1601.5, 1505.5, -0.5]
    assert ax.get_xlim() == (-0.5, 1599.5) and ax.get_ylim() == (1500.5, -0.5)
    plt.close(fig)


def test_labels_are_sampled_and_small_images_kept():
    labels = np.arange(900 * 900, dtype=np.int64).reshape(900, 900) % 7
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(4, 2))
    shown = imshow_binned(a1, labels, panel_inches=2.0, labels=True).get_array()
    assert np.array_equal(shown, labels[::3, ::3])  # 900 // 240 = 3
    small = np.ones((100, 80))
    assert imshow_binned(a2, small, panel_inches=2.0).get_array().shape == (100, 80)
    assert a2.get_xlim() == (-0.5, 79.5)
    plt.close(fig)


def _two_panels():
    fig, axes = plt.subplots(1, 2, figsize=(6, 3))
    for ax in axes:
        imshow_binned(ax, np.random.default_rng(2).random((50, 60)), panel_inches=3.0)
        hide_axes(ax)
        ax.set_title("a title")
    axes[1].legend(handles=[plt.Line2D([], [], marker="o", label="a long legend entry outside")], loc="upper left",
                   bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    return fig


def _svg_size_pt(svg: bytes) -> tuple[float, float]:
    return tuple(float(v) for v in re.search(rb'width="([\d.]+)pt" height="([\d.]+)pt"', svg).groups())


def test_the_svg_has_the_extent_of_the_png():
    out = figure_to_png(_two_panels())
    width_px, height_px = Image.open(io.BytesIO(bytes(out))).size
    w_pt, h_pt = _svg_size_pt(out.svg)
    # the same box in both (with the legend beyond the figure's edge); the two renderers' text metrics differ by < 2 px
    assert w_pt * SAVE_DPI / 72 == pytest.approx(width_px, abs=2)
    assert h_pt * SAVE_DPI / 72 == pytest.approx(height_px, abs=2)
    # and the box savefig finds by itself for the SVG (a second layout draw, with the SVG renderer's text
    # metrics: wider by 1.9 pt for this legend)
    fig = _two_panels()
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", dpi=SAVE_DPI, bbox_inches="tight")
    plt.close(fig)
    tight_w, tight_h = _svg_size_pt(buf.getvalue())
    assert w_pt == pytest.approx(tight_w, abs=3) and h_pt == pytest.approx(tight_h, abs=3)
