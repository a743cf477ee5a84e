"""Synthetic test images: Gaussian atom columns drawn at known positions (independent of the code under test)."""

from __future__ import annotations

import numpy as np


def draw_columns(shape, x_nm, y_nm, amplitude, *, pixel_size_nm, sigma_nm, background=0.0):
    """Sum of isotropic Gaussians evaluated at pixel centres ``(i + 0.5) * pixel_size_nm``.

    Evaluated exactly on the full grid in row blocks (no windowing), so the truth is the analytic one.
    """
    ny, nx = shape
    yc = (np.arange(ny) + 0.5) * pixel_size_nm
    xc = (np.arange(nx) + 0.5) * pixel_size_nm
    image = np.full(shape, float(background))
    amplitude = np.broadcast_to(np.asarray(amplitude, dtype=float), np.shape(x_nm))
    cut = 6 * sigma_nm
    for x0, y0, a in zip(np.asarray(x_nm), np.asarray(y_nm), amplitude):
        r = slice(max(0, int((y0 - cut) / pixel_size_nm)), min(ny, int((y0 + cut) / pixel_size_nm) + 2))
        c = slice(max(0, int((x0 - cut) / pixel_size_nm)), min(nx, int((x0 + cut) / pixel_size_nm) + 2))
        gy = np.exp(-0.5 * ((yc[r] - y0) / sigma_nm) ** 2)
        gx = np.exp(-0.5 * ((xc[c] - x0) / sigma_nm) ** 2)
        image[r, c] += a * gy[:, None] * gx[None, :]
    return image


def layered_lattice(
    *,
    width_nm,
    height_nm,
    inplane_nm=0.2438,
    layer_nm=0.4683,
    shift_per_layer=1.0 / 3.0,
    angle_deg=0.0,
    origin_nm=(0.1, 0.15),
    margin_nm=0.0,
):
    """TM column positions of a layered lattice: rows along t, stacked along n, each row shifted.

    Returns x_nm, y_nm, layer index (TM layer counter) for columns inside the field of view.
    The basal normal n is +y rotated by ``angle_deg`` (counter-clockwise in the x-right/y-down frame).
    """
    th = np.deg2rad(angle_deg)
    t = np.array([np.cos(th), np.sin(th)])
    n = np.array([-np.sin(th), np.cos(th)])
    diag = np.hypot(width_nm, height_nm)
    nl = int(diag / layer_nm) + 3
    nc = int(diag / inplane_nm) + 3
    k, j = np.meshgrid(np.arange(-nl, nl + 1), np.arange(-nc, nc + 1), indexing="ij")
    u = (j + shift_per_layer * k) * inplane_nm
    v = k * layer_nm
    pos = np.asarray(origin_nm)[None, :] + np.outer(u.ravel(), t) + np.outer(v.ravel(), n)
    inside = (
        (pos[:, 0] >= margin_nm) & (pos[:, 0] < width_nm - margin_nm)
        & (pos[:, 1] >= margin_nm) & (pos[:, 1] < height_nm - margin_nm)
    )
    return pos[inside, 0], pos[inside, 1], k.ravel()[inside]


def layer_frame(angle_deg):
    """Unit vectors along the layers (t) and across them (n) of a field rotated ``angle_deg``."""
    th = np.deg2rad(angle_deg)
    return np.array([np.cos(th), np.sin(th)]), np.array([-np.sin(th), np.cos(th)])


def surface_with_vacuum_noise(angles_deg=(30.0, 75.0), n_seeds=20):
    """A crystal (``layered_lattice``, 6 x 6 nm) ending in a surface across a field rotated by each angle,
    with 10 uniform noise maxima in the vacuum more than 0.4 nm beyond it, for ``n_seeds`` seeds.
    Yields (t, n, x, y, noise_xy) in nm."""
    for angle in angles_deg:
        t, n = layer_frame(angle)
        x, y, k = layered_lattice(width_nm=6.0, height_nm=6.0, angle_deg=angle, shift_per_layer=1 / 3)
        keep = k > np.quantile(k, 0.4)
        x, y = x[keep], y[keep]
        cut = np.min(np.column_stack([x, y]) @ n)
        for seed in range(n_seeds):
            p = np.random.default_rng(seed).uniform(0.0, 6.0, size=(400, 2))
            yield t, n, x, y, p[p @ n < cut - 0.4][:10]


def cut_after_corner_row(angle_deg=40.0):
    """The rows of ``layered_lattice`` (6 x 6 nm, rotated ``angle_deg``) cut after the last corner row of
    12-16 columns. Returns (t, n, x, y, k, last): frame, positions (nm), row numbers and the last row."""
    t, n = layer_frame(angle_deg)
    x, y, k = layered_lattice(width_nm=6.0, height_nm=6.0, angle_deg=angle_deg, shift_per_layer=1 / 3)
    per_k = np.bincount(k - k.min())
    last = k.min() + int(np.nonzero((per_k >= 12) & (per_k <= 16))[0].max())
    keep = k <= last
    return t, n, x[keep], y[keep], k[keep], last
