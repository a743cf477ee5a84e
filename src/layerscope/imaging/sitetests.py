"""Decisions taken at a lattice site from the counts there: uncertainties, mixing yes/no, columns at rims.

A column that the detector did not pick (too dim next to its neighbours: a column at the thin rim
of a void, a crack or a wedge-shaped surface, where the thickness falls off) still has a lattice
site, and the amplitude of a Gaussian of the shared width fitted there
(:func:`layerscope.imaging.columns.site_intensities`, linear in the data) has a standard error
that follows from the noise of the pixels in its window:

- counts (a non-negative integer image: detected electrons) are Poisson, the variance of each
  pixel is the fitted model ``A g + B`` there;
- any other image has the white-noise variance of :func:`layerscope.imaging.columns.estimate_noise`.

:func:`amplitude_errors` gives that error; :func:`mixing_decisions` turns a Li-layer site's mixing
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
from scipy.spatial import cKDTree

from layerscope.imaging import columns as _col
from layerscope.imaging.columns import is_count_image

__all__ = ["amplitude_errors", "is_count_image", "mixing_decisions", "extend_layer_ends", "RIM_SIGNIFICANCE",
           "GAP_SIGNIFICANCE"]

#: Standard errors by which a site's amplitude must exceed zero for a column to be placed there
#: (the detector's own noise margin, ``detect_columns(noise_sigmas=5)``).
RIM_SIGNIFICANCE = 5.0
#: Standard errors by which the amplitude at a TM site placed in a one-site gap of its layer must exceed
#: zero for the column to count as found (``detected``): the site is fixed by the lattice before the
#: counts are read (no search over pixels as in the detector), so an empty site passes one time in 740
#: (one-sided Gaussian tail). Random draws 32, 37, 73, 82 (1.0-2.8e3 e/A^2): the half-occupied spinel
#: TM columns the detector misses read 1.1-4.9 standard errors, empty sites at a void below 0.
GAP_SIGNIFICANCE = 3.0


def amplitude_errors(image: np.ndarray, x_nm: np.ndarray, y_nm: np.ndarray, *, pixel_size_nm: float, sigma_nm: float,
                     radius_nm: float) -> np.ndarray:
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
    poisson = is_count_image(data)
    white = 0.0 if poisson else _col.estimate_noise(data) ** 2
    dy, dx = _col._window(radius_nm / pixel_size_nm)
    for start in range(0, rows.size, 2048):
        sl = slice(start, min(rows.size, start + 2048))
        z, yy, xx, valid = _col._gather(data, np.rint(rows[sl]).astype(np.int64), np.rint(cols[sl]).astype(np.int64), dy, dx)
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
            # few counts can dip to zero or below where the counts are not zero).
            floor = 0.25 * (z * w).sum(1) / np.maximum(s_1, 1.0)
            var = np.maximum(amp[:, None] * g + bkg[:, None], floor[:, None]) * w
        else:
            var = white * w
        out[sl] = np.where(good, np.sqrt((c_a**2 * var).sum(1)), np.nan)
    return out


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



#: Distance (nm) along its layer, either side, over which a site shares its background and the levels
#: of the columns around it (:func:`shared_amplitudes`).
SHARE_NM = 1.0
#: Sites of the longest interlayer segment (``interlayer_table(max_sites=8)``): a site carries the error of its
#: shared level scaled so that the mean of that many sites carries it once (the level is common to them).
SEGMENT_SITES = 8


def _template(yy, xx, pos_px, weight, sig2):
    """Sum of unit Gaussians at ``pos_px`` (n x k x 2: row, column; weight n x k) on the window pixels."""
    h = np.zeros_like(yy)
    for j in range(pos_px.shape[1]):
        h += weight[:, j, None] * np.exp(-0.5 * ((yy - pos_px[:, j, 0, None]) ** 2 + (xx - pos_px[:, j, 1, None]) ** 2)
                                         / sig2)
    return h


def _frame(data, rows, cols, tpl, sig2, radius_px):
    """Window values, the site's Gaussian, the templates and the in-image mask of every site (n x m)."""
    dy, dx = _col._window(radius_px)
    z, yy, xx, valid = _col._gather(data, np.rint(rows).astype(np.int64), np.rint(cols).astype(np.int64), dy, dx)
    w = valid.astype(float)
    g = np.exp(-0.5 * ((yy - rows[:, None]) ** 2 + (xx - cols[:, None]) ** 2) / sig2) * w
    return z, g, [_template(yy, xx, p_, w_, sig2) * w for p_, w_ in tpl], w


def _pixel_templates(templates, px):
    out = []
    for pos, wt in templates:
        pos = np.asarray(pos, dtype=float)
        pos_px = np.stack([pos[..., 1] / px - 0.5, pos[..., 0] / px - 0.5], axis=-1)
        wt = np.where(np.isfinite(pos_px).all(-1), np.asarray(wt, dtype=float), 0.0)
        out.append((np.nan_to_num(pos_px), wt))
    return out


def site_model_fit(image: np.ndarray, xy_nm: np.ndarray, templates: list[tuple[np.ndarray, np.ndarray]], *,
                   pixel_size_nm: float, sigma_nm: float, fit_radius_nm: float) -> tuple[np.ndarray, float]:
    """Per site, ``z = A g + sum_t C_t h_t + B`` by least squares in a window of ``fit_radius_nm``.

    Returns the coefficients (n x (templates + 2): ``A``, the ``C_t``, ``B``; NaN where a template
    has no column in reach or the fit is undetermined) and the mean squared residual per pixel
    over all windows (the width that fits the columns best makes it smallest).
    """
    data = np.asarray(image, dtype=float)
    xy = np.asarray(xy_nm, dtype=float)
    px = pixel_size_nm
    rows, cols = xy[:, 1] / px - 0.5, xy[:, 0] / px - 0.5
    sig2 = (sigma_nm / px) ** 2
    z, g, hs, w = _frame(data, rows, cols, _pixel_templates(templates, px), sig2, fit_radius_nm / px)
    n, nt = len(xy), len(hs)
    basis = np.stack([g, *hs, w], axis=-1)
    ata = np.einsum("nmi,nmj->nij", basis, basis)
    atz = np.einsum("nmi,nm->ni", basis, z)
    present = np.ones((n, nt + 2), dtype=bool)
    for t in range(1, nt + 1):
        present[:, t] = ata[:, t, t] > 1e-3 * np.maximum(ata[:, 0, 0], 1e-12)
        ata[~present[:, t], t, :] = 0.0
        ata[~present[:, t], :, t] = 0.0
        ata[~present[:, t], t, t] = 1.0
        atz[~present[:, t], t] = 0.0
    ok = (w.sum(1) >= 5) & (np.abs(np.linalg.det(ata)) > 1e-12)
    ata[~ok] = np.eye(nt + 2)
    sol = np.linalg.solve(ata, atz[..., None])[..., 0]
    res = (z - np.einsum("nmi,ni->nm", basis, sol)) ** 2 * w
    mse = float(res[ok].sum() / max(w[ok].sum(), 1.0))
    sol[~ok] = np.nan
    return np.where(present, sol, np.nan), mse


def shared_amplitudes(image: np.ndarray, xy_nm: np.ndarray, templates: list[tuple[np.ndarray, np.ndarray]],
                      group: np.ndarray, along_nm: np.ndarray, *, pixel_size_nm: float, sigma_nm: float,
                      radius_nm: float, fit_radius_nm: float,
                      share_nm: float = SHARE_NM) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Column amplitude at fixed sites, with the background and the surrounding columns' levels shared along a layer.

    Stage 1 (:func:`site_model_fit`), per site in a window of ``fit_radius_nm``: ``z = A g + sum_t
    C_t h_t + B``, ``g`` the site's Gaussian, ``h_t`` the columns around it of template ``t``
    (positions n x k x 2 nm and weights n x k, 0 where none: the oxygen columns, the neighbouring
    TM columns). Stage 2: ``B`` and every ``C_t`` replaced by their mean over the sites of the same
    ``group`` (layer) within ``share_nm`` along it (``along_nm``), and ``A`` refitted alone in the
    window of ``radius_nm``. A free ``B`` per window multiplies the variance of ``A`` by ~9 where the
    column is as wide as the window (a 0.15 nm probe); a constant ``B`` without the columns around
    the site takes their tails for background and reads an empty site negative.

    Returns
    -------
    amplitude, level, amplitude_error : numpy.ndarray
        ``A``, the shared model without the site's column (at the site, g-weighted), and the standard
        error of ``A`` (Poisson for a count image, else white noise; the shared levels' error left out).
    """
    data = np.asarray(image, dtype=float)
    xy = np.asarray(xy_nm, dtype=float)
    n = len(xy)
    if n == 0:
        return np.full(0, np.nan), np.full(0, np.nan), np.full(0, np.nan)
    sol, _ = site_model_fit(data, xy, templates, pixel_size_nm=pixel_size_nm, sigma_nm=sigma_nm,
                            fit_radius_nm=fit_radius_nm)
    levels = sol[:, 1:]  # C_t ..., B
    nt = levels.shape[1] - 1
    shared = np.full_like(levels, np.nan)
    key = np.asarray(group)
    along = np.asarray(along_nm, dtype=float)
    for k in np.unique(key):
        sel = np.flatnonzero(key == k)
        near = (np.abs(along[sel, None] - along[None, sel]) <= share_nm).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            shared[sel] = (near @ np.nan_to_num(levels[sel])) / (near @ np.isfinite(levels[sel]))
    shared[:, :nt] = np.nan_to_num(shared[:, :nt])  # no such column in reach: level 0
    b_bar = shared[:, nt]

    px = pixel_size_nm
    rows, cols = xy[:, 1] / px - 0.5, xy[:, 0] / px - 0.5
    z, g, hs, w = _frame(data, rows, cols, _pixel_templates(templates, px), (sigma_nm / px) ** 2, radius_nm / px)
    # each site's own level under its Gaussian (stage 1): its scatter along the layer is the error
    # that sharing the level adds to every site's amplitude
    s_g2 = np.maximum((g * g).sum(1), 1e-12)
    own = np.nan_to_num(levels[:, nt]) * g.sum(1) / s_g2
    for t in range(nt):
        own = own + np.nan_to_num(levels[:, t]) * (hs[t] * g).sum(1) / s_g2
    own = np.where(np.isfinite(levels[:, nt]), own, np.nan)
    level_sd = np.full(n, np.nan)
    for k in np.unique(key):
        sel = np.flatnonzero(key == k)
        near = (np.abs(along[sel, None] - along[None, sel]) <= share_nm).astype(float)
        fin = np.isfinite(own[sel])
        cnt = near @ fin
        m1 = near @ np.nan_to_num(own[sel])
        m2 = near @ np.nan_to_num(own[sel]) ** 2
        with np.errstate(invalid="ignore", divide="ignore"):
            level_sd[sel] = np.sqrt(np.maximum(m2 / cnt - (m1 / cnt) ** 2, 0.0) * cnt / np.maximum(cnt - 1, 1)
                                    * np.minimum(1.0, SEGMENT_SITES / np.maximum(cnt, 1.0)))
    base = b_bar[:, None] * w
    for t in range(nt):
        base = base + shared[:, t, None] * hs[t]
    s_gg = (g * g).sum(1)
    good = (w.sum(1) >= 5) & (s_gg > 0) & np.isfinite(b_bar)
    s_gg = np.where(good, s_gg, 1.0)
    amp = ((z - base) * g).sum(1) / s_gg
    if is_count_image(data):
        floor = 0.25 * (z * w).sum(1) / np.maximum(w.sum(1), 1.0)
        var = np.maximum(amp[:, None] * g + base, floor[:, None]) * w
    else:
        var = _col.estimate_noise(data) ** 2 * w
    err = np.sqrt((g * g * var).sum(1)) / s_gg
    err = np.sqrt(err ** 2 + np.nan_to_num(level_sd, nan=np.inf) ** 2)
    level = (base * g).sum(1) / s_gg
    return np.where(good, amp, np.nan), np.where(good, level, np.nan), np.where(good, err, np.nan)
