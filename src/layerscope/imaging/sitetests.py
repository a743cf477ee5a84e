"""Decisions taken at a lattice site from the counts there: uncertainties, mixing yes/no, columns at rims.

A column that the detector did not pick (too dim next to its neighbours: a column at the thin rim
of a void, a crack or a wedge-shaped surface, where the thickness falls off) still has a lattice
site, and the amplitude of a Gaussian of the shared width fitted there
(:func:`layerscope.imaging.columns.site_intensities`, linear in the data) has a standard error
that follows from the noise of the pixels in its window:

- counts (a non-negative integer image: detected electrons) are Poisson, the variance of each
  pixel is the fitted model ``A g + B`` there;
- any other image has the white-noise variance of :func:`layerscope.imaging.columns.estimate_noise`.

:func:`amplitude_errors` gives that error; :func:`joint_site_heights` the height of a Gaussian at a site with its
neighbours' heights free in the model and its error (the sources within :data:`JOINT_SITE_REACH` widths of the disc); :func:`mixing_decisions` turns a Li-layer site's mixing
index and its error into "yes" / "no" / "uncertain" (two standard errors from the threshold; the
segments of ``interlayers.csv`` use the same rule on their mean, with these errors pooled and a
systematic 0.02 added: :mod:`layerscope.imaging.interlayers`); :func:`extend_layer_ends` places the TM columns a layer lacks
beyond its last detected column, one site at a time, while the site's amplitude is significant
(a likelihood-ratio test of "a column of the fitted amplitude" against "no column", Gaussian
approximation of the Poisson likelihood, ``z = A / sigma_A``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from layerscope.imaging import columns as _col
from layerscope.imaging.columns import is_count_image

__all__ = ["amplitude_errors", "is_count_image", "joint_site_heights", "mixing_decisions", "extend_layer_ends",
           "RIM_SIGNIFICANCE", "GAP_SIGNIFICANCE", "ZERO_COUNT_FLOOR", "JOINT_SITE_REACH"]

#: Standard errors by which a site's amplitude must exceed zero for a column to be placed there
#: (the detector's own noise margin, ``detect_columns(noise_sigmas=5)``).
RIM_SIGNIFICANCE = 5.0
#: Standard errors by which the amplitude at a TM site placed in a one-site gap of its layer must exceed
#: zero for the column to count as found (``detected``): the site is fixed by the lattice before the
#: counts are read (no search over pixels as in the detector), so an empty site passes one time in 740
#: (one-sided Gaussian tail). Random draws 32, 37, 73, 82 (1.0-2.8e3 e/A^2): the half-occupied spinel
#: TM columns the detector misses read 1.1-4.9 standard errors, empty sites at a void below 0.
GAP_SIGNIFICANCE = 3.0
#: Whether :func:`amplitude_errors` (count images) takes a window that holds no count at all as holding one, for
#: its variance floor: the Poisson mean of an empty window is not known to be zero (one count is the usual
#: one-sigma bound), and an error of exactly zero let such a site decide any mean it entered (a Li-layer site in
#: a crack at 1.3e3 e/A^2 kept ``interlayers.split_fill_changes`` from cutting its segment: random draw 5103,
#: docs/validation.md "imgfresh"). Windows with a count are unchanged.
ZERO_COUNT_FLOOR = True


def amplitude_errors(image: np.ndarray, x_nm: np.ndarray, y_nm: np.ndarray, *, pixel_size_nm: float, sigma_nm: float,
                     radius_nm: float, counts: bool | None = None) -> np.ndarray:
    """Standard error of the site amplitude of :func:`layerscope.imaging.columns.site_intensities`.

    The amplitude is a linear combination ``sum c_i z_i`` of the window's pixels, so its variance is
    ``sum c_i^2 var(z_i)``: Poisson (``var`` = the fitted ``A g_i + B``, at least a quarter of the
    window's mean count) for a count image, else the image's white-noise variance.

    Parameters
    ----------
    image : numpy.ndarray
        The 2-D image the amplitudes were measured on.
    x_nm, y_nm : numpy.ndarray
        Site positions (nm from the image corner, x right, y down).
    pixel_size_nm, sigma_nm, radius_nm : float
        Pixel size, shared column width (Gaussian standard deviation) and window radius, nm.
    counts : bool, optional
        :func:`is_count_image` of ``image`` when the caller knows it already (a pass over the image
        saved per call); None: tested here.

    Returns
    -------
    numpy.ndarray
        Standard error per site, in image units (NaN where the window holds fewer than 5 pixels).
    """
    data = np.asarray(image, dtype=float)
    rows = np.asarray(y_nm, dtype=float) / pixel_size_nm - 0.5
    cols = np.asarray(x_nm, dtype=float) / pixel_size_nm - 0.5
    sig_px = sigma_nm / pixel_size_nm
    out = np.full(rows.size, np.nan)
    if rows.size == 0:
        return out
    poisson = is_count_image(data) if counts is None else bool(counts)
    white = 0.0 if poisson else _col.estimate_noise(data) ** 2
    dy, dx = _col.disc_offsets(radius_nm / pixel_size_nm)
    for start in range(0, rows.size, 2048):
        sl = slice(start, min(rows.size, start + 2048))
        z, yy, xx, valid = _col.gather_windows(data, np.rint(rows[sl]).astype(np.int64), np.rint(cols[sl]).astype(np.int64), dy, dx)
        w = valid.astype(float)
        g = np.exp(-0.5 * ((yy - rows[sl, None]) ** 2 + (xx - cols[sl, None]) ** 2) / sig_px**2) * w
        s_gg, s_g, s_1 = (g * g).sum(1), g.sum(1), w.sum(1)
        det = s_gg * s_1 - s_g * s_g
        good = (s_1 >= 5) & (det > 1e-12)
        det = np.where(good, det, 1.0)
        c_a = (g * s_1[:, None] - s_g[:, None] * w) / det[:, None]
        if poisson:
            amp = (c_a * z).sum(1)
            bkg = ((s_gg[:, None] * w - s_g[:, None] * g) / det[:, None] * z).sum(1)
            # The fitted model, floored at a quarter of the window's mean count (a model fitted to a
            # few counts can dip to zero or below where the counts are not zero). A window without a
            # single count (a crack, a void, vacuum at low dose) has a mean below about one count, not
            # zero (:data:`ZERO_COUNT_FLOOR`): without it such a site read 0 +- 0, an error-free zero.
            total = (z * w).sum(1)
            if ZERO_COUNT_FLOOR:
                total = np.maximum(total, 1.0)
            floor = 0.25 * total / np.maximum(s_1, 1.0)
            var = np.maximum(amp[:, None] * g + bkg[:, None], floor[:, None]) * w
        else:
            var = white * w
        out[sl] = np.where(good, np.sqrt((c_a**2 * var).sum(1)), np.nan)
    return out


#: :func:`joint_site_heights`: the sources within this many column widths of a site's window are in its model.
JOINT_SITE_REACH = 3.0


def joint_site_heights(image: np.ndarray, xy_nm: np.ndarray, sources_nm: np.ndarray, *, pixel_size_nm: float,
                       sigma_nm: float, radius_nm: float, counts: bool | None = None,
                       block: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Height and its standard error of a Gaussian at each site with its neighbours' heights free.

    Per site of ``xy_nm`` (n x 2, x and y in nm): the least squares of ``A g_0 + sum_j A_j g_j + B`` on the
    disc of ``radius_nm`` around it, ``g_0`` the site's Gaussian (width ``sigma_nm``), ``g_j`` those of the
    ``sources_nm`` (m x 2: the lattice's other columns, whatever they hold) within :data:`JOINT_SITE_REACH` widths
    of the disc (a source within a quarter width of the site is the site itself: left out), ``B`` a constant. ``A``
    is linear in the pixels, ``A = sum c_i z_i``; its error ``sqrt(sum c_i^2 var_i)`` with the variance of
    :func:`amplitude_errors` (count images: the fitted model, at least a quarter of the window's mean count;
    else the white-noise variance). The site's height net of its neighbours' tails, which the plain
    site amplitude (one Gaussian and a constant) counts as its own under a wide probe.

    ``block``: sites solved together (a memory setting; the heights do not depend on it). 32 keeps the batch's
    design array near 20 MB on a 0.15 nm probe at 0.01 nm pixels; 256 (imgwide7) read ~160 MB per batch and ran
    0.37-0.83 s inside ``analyse`` on the benchmark's wide 2048² image against 0.21-0.27 s (the same rows on the 38
    wide draws; docs/benchmarks.md, session 39).

    Returns
    -------
    height, error : numpy.ndarray
        Per site, image units; NaN where the window holds fewer than 5 pixels or the fit is not determined.
    """
    from scipy.spatial import cKDTree

    data = np.asarray(image, dtype=float)
    xy = np.asarray(xy_nm, dtype=float).reshape(-1, 2) / pixel_size_nm - 0.5  # (col, row) pixels
    src = np.asarray(sources_nm, dtype=float).reshape(-1, 2) / pixel_size_nm - 0.5
    height, error = np.full(len(xy), np.nan), np.full(len(xy), np.nan)
    if len(xy) == 0:
        return height, error
    poisson = is_count_image(data) if counts is None else bool(counts)
    white = 0.0 if poisson else _col.estimate_noise(data) ** 2
    s = sigma_nm / pixel_size_nm
    dy, dx = _col.disc_offsets(radius_nm / pixel_size_nm)
    half = int(max(np.abs(dy).max(), np.abs(dx).max()))
    k = np.arange(-half, half + 1)
    # the disc's square, row-major: the Gaussians are outer products of 1-D profiles there, the disc a 0/1 weight
    sq_dy, sq_dx = (v.ravel() for v in np.meshgrid(k, k, indexing="ij"))
    disc = sq_dy**2 + sq_dx**2 <= (radius_nm / pixel_size_nm) ** 2
    near = (cKDTree(src).query_ball_point(xy, radius_nm / pixel_size_nm + JOINT_SITE_REACH * s) if len(src)
            else [[] for _ in xy])
    for start in range(0, len(xy), block):
        sl = slice(start, min(len(xy), start + block))
        p = xy[sl]
        r0, c0 = np.rint(p[:, 1]).astype(np.int64), np.rint(p[:, 0]).astype(np.int64)
        z, _, _, valid = _col.gather_windows(data, r0, c0, sq_dy, sq_dx)
        w = (valid & disc).astype(float)
        nb = [[j for j in near[i] if np.hypot(*(src[j] - xy[i])) > 0.25 * s] for i in range(sl.start, sl.stop)]
        m = max(1, max(len(v) for v in nb))
        cen = np.zeros((len(p), m + 1, 2))
        used = np.zeros((len(p), m + 1), bool)
        cen[:, 0], used[:, 0] = p, True
        for i, v in enumerate(nb):
            cen[i, 1:1 + len(v)], used[i, 1:1 + len(v)] = src[v], True
        # each Gaussian from its 1-D profiles on the window's square (an exp per row and column, not per pixel)
        prof_y = np.exp(-0.5 * ((r0[:, None, None] + k - cen[:, :, 1, None]) / s) ** 2)
        prof_x = np.exp(-0.5 * ((c0[:, None, None] + k - cen[:, :, 0, None]) / s) ** 2)
        g = (prof_y[:, :, :, None] * prof_x[:, :, None, :]).reshape(len(p), m + 1, -1)
        g *= w[:, None, :] * used[:, :, None]
        design = np.concatenate([g, w[:, None, :]], axis=1)  # (n, m + 2, pixels): the Gaussians, the constant
        normal = np.matmul(design, design.transpose(0, 2, 1))
        pad = np.concatenate([~used, np.zeros((len(p), 1), bool)], axis=1)
        normal[pad] = 0.0
        normal += pad[:, :, None] * np.eye(m + 2)  # an unused slot's height is 0
        good = (w.sum(1) >= 5) & (np.linalg.cond(normal) < 1e12)
        normal[~good] = np.eye(m + 2)
        inverse = np.linalg.inv(normal)
        coef = np.matmul(inverse, np.matmul(design, (z * w)[:, :, None]))[:, :, 0]
        c_a = np.matmul(inverse[:, :1], design)[:, 0]  # the site's row of (A^T A)^-1 A^T
        if poisson:
            model = np.matmul(coef[:, None, :], design)[:, 0]
            total = np.maximum((z * w).sum(1), 1.0 if ZERO_COUNT_FLOOR else 0.0)
            floor = 0.25 * total / np.maximum(w.sum(1), 1.0)
            var = np.maximum(model, floor[:, None]) * w
        else:
            var = white * w
        height[sl] = np.where(good, coef[:, 0], np.nan)
        error[sl] = np.where(good, np.sqrt((c_a**2 * var).sum(1)), np.nan)
    return height, error


def mixing_decisions(mixing: np.ndarray, mixing_sem: np.ndarray, *, threshold: float) -> np.ndarray:
    """"yes" / "no" / "uncertain" per site: the index more than two standard errors above / below ``threshold``."""
    m = np.asarray(mixing, dtype=float)
    s = np.asarray(mixing_sem, dtype=float)
    out = np.full(m.size, "uncertain", dtype=object)
    ok = np.isfinite(m) & np.isfinite(s)
    out[ok & (m - 2 * s > threshold)] = "yes"
    out[ok & (m + 2 * s < threshold)] = "no"
    return out


def extend_layer_ends(u: np.ndarray, v: np.ndarray, layer: np.ndarray, *, d_t: float, test, max_sites: int = 4,
                      pass_layer: bool = False, min_gap_sites: int = 3) -> pd.DataFrame:
    """Lattice sites beyond each end of every layer that hold a column by ``test``.

    From the last (first) column of a layer, or of a run of it before a gap of ``min_gap_sites``
    missing sites or more, sites are stepped outwards by ``d_t`` along ``u`` (at
    the ``v`` of the end column plus the layer's slope) and kept one at a time while ``test``
    accepts them, at most ``max_sites`` per end (about 1 nm): at a void, a crack or a thinning
    surface the thickness falls off towards the rim and the last columns before it are too dim
    for the detector's threshold relative to their neighbours, but not for a test at their site.

    Parameters
    ----------
    u, v : numpy.ndarray
        Column coordinates along / across the layers, nm.
    layer : numpy.ndarray of int
        Layer of each column.
    d_t : float
        Column spacing along the layers, nm.
    test : callable
        ``test(u, v) -> bool array``: whether a column is at each candidate site (with
        ``pass_layer``, ``test(u, v, layer)``).
    max_sites : int
        Most sites added per layer end.
    min_gap_sites : int
        A gap inside a layer is a rim (its two sides are ends) from this many missing sites on.

    Returns
    -------
    pandas.DataFrame
        ``u_nm, v_nm, layer`` of the sites added.
    """
    ends = []
    taken: dict[int, np.ndarray] = {}
    for k in np.unique(layer):
        sel = np.nonzero(layer == k)[0]
        if sel.size < 3:
            continue
        order = sel[np.argsort(u[sel])]
        taken[int(k)] = u[order]
        # Runs of the layer, cut where at least ``min_gap_sites`` sites are missing (a void or a
        # crack inside the field; fewer are dim columns of an ordered phase, such as the
        # half-empty columns of a spinel's kagome layers, whose sites stay as they are): each
        # run has two ends.
        cut = np.nonzero(np.diff(u[order]) > (min_gap_sites + 0.5) * d_t)[0]
        for i in np.concatenate([[0], cut + 1]):
            ends.append((u[order[i]], v[order[i]], -1.0, k))
        for i in np.concatenate([cut, [order.size - 1]]):
            ends.append((u[order[i]], v[order[i]], 1.0, k))
    if not ends:
        return pd.DataFrame({"u_nm": [], "v_nm": [], "layer": []})
    e = np.array([x[:3] for x in ends], dtype=float)
    lay = np.array([x[3] for x in ends])
    slopes = _layer_slopes(u, v, layer, lay)
    alive = np.ones(len(e), dtype=bool)
    added = []
    for step in range(1, max_sites + 1):
        cu = e[:, 0] + e[:, 2] * step * d_t
        cv = e[:, 1] + slopes * e[:, 2] * step * d_t
        ok = np.zeros(len(e), dtype=bool)
        if alive.any():
            args = (cu[alive], cv[alive], lay[alive]) if pass_layer else (cu[alive], cv[alive])
            ok[alive] = np.asarray(test(*args), dtype=bool)
        # Never onto (or next to) a column the layer already has, e.g. across a narrow gap.
        free = np.array([np.min(np.abs(taken[int(k)] - x)) > 0.6 * d_t for x, k in zip(cu, lay)])
        alive &= ok & free
        if not alive.any():
            break
        added.append(pd.DataFrame({"u_nm": cu[alive], "v_nm": cv[alive], "layer": lay[alive]}))
    return pd.concat(added, ignore_index=True) if added else pd.DataFrame({"u_nm": [], "v_nm": [], "layer": []})


def _layer_slopes(u: np.ndarray, v: np.ndarray, layer: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Slope dv/du of each layer in ``which`` (least squares over its columns; 0 when undefined)."""
    out = np.zeros(which.size)
    for i, k in enumerate(which):
        sel = layer == k
        if sel.sum() >= 2 and np.ptp(u[sel]) > 0:
            out[i] = np.polyfit(u[sel], v[sel], 1)[0]
    return out
