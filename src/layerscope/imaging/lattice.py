"""The lattice of a layered-oxide image: basal-plane orientation from the FFT, layers, registry.

A layered oxide seen along [100] (or [110]) of the hexagonal cell shows close-packed cation layers
as rows of columns.  The basal-plane normal ``n`` is the direction of the strongest low-order
reflection of the layer stacking (the (003) fringe, period c/3, about 0.47 nm); the in-plane
direction ``t`` runs along the rows, where the columns repeat every ``d_t`` (a*sqrt(3)/2 along
[100], a/2 along [110]).  This module

1. finds ``n``, the layer period and ``d_t`` from the power spectrum (:func:`fft_lattice`; ``n`` and the
   layer period from the layer fringe's orders 1-4 fitted together, :func:`harmonic_fringe`) and checks
   them against the material (a :class:`~layerscope.errors.CalibrationError` when the pixel size
   makes them more than 20 % off);
2. groups columns into rows along ``t`` by linking each column to its neighbour one ``d_t`` away
   (:func:`group_rows`), which follows bent or glided layers without a global grid;
3. measures the lateral registry of each row relative to the next one (:func:`row_registry`): the
   shift along ``t`` in units of ``d_t``, wrapped to [-1/2, 1/2).  In the [100] view O3 steps
   +1/3 from one TM layer to the next, O3' -1/3, O1 0;
4. reads the cation-layer spacing again from the numbered columns (:func:`layer_spacing_from_columns`; the
   pipeline's ``PERIOD_FROM_COLUMNS``), the direction being refined from the rows already
   (:func:`refine_directions`).

Conventions: positions in nm from the image corner (x right, y down); ``n`` points down the image
(positive y component); ``t = (n_y, -n_x)`` so that ``(t, n)`` is the ``(x, y)`` frame rotated.

References
----------
- D. B. Williams and C. B. Carter, *Transmission Electron Microscopy*, 2nd ed., Springer (2009),
  ch. 28 (lattice fringes and their FFT).
- J. Cabana et al. / H. Gabrisch, J. Wang, A. Manthiram / D. Li et al. for the O3 / O1 / O3'
  stacking seen in [100] HAADF images (see ``docs/validation.md``); stacking notation after
  C. Delmas, C. Fouassier, P. Hagenmuller, Physica B+C 99, 81 (1980).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import fft as sfft
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from layerscope.errors import CalibrationError, InputError

__all__ = [
    "LatticeEstimate",
    "LayerIndex",
    "PowerSpectrum",
    "fft_lattice",
    "power_spectrum",
    "group_rows",
    "index_layers",
    "layer_spacing_from_columns",
    "chord_lengths",
    "tm_pairs",
    "smooth_registry",
    "running_mean_along_layers",
    "lattice_positions",
    "refine_directions",
    "row_registry",
    "wrap_half",
]


#: Fewest columns on its line of a short row beyond the outermost full rows (a corner of a rotated
#: field) that is numbered as a layer (:func:`_extend_anchors`). Random draws 0-99 at >= 1e3 e/A^2,
#: share meeting column recall 0.99 / step = 1: 32 % / 90 % before any was numbered; 90 % / 89 %
#: with 4; 74 % / 89 % with 6; 92 % / 78 % with 1 (every row, and no Li layer dropped again: the
#: gaps of one or two Li-layer sites beside 1-3 column rows have no step in the image).
CORNER_MIN_COLUMNS = 4

#: The layer fringe's vector from its harmonics (:func:`harmonic_fringe`): the first-order spot's position alone
#: sets the layers' direction to about a bin of the spectrum, which on a small field is degrees (random draw 4135,
#: a 5.9 nm field: the c/3 spot 12 bins out lies 5.7 deg off the layers and 4 % long; its second order, 25 bins
#: out, lies 0.4 deg off). None: the first-order spot alone.
LAYER_HARMONICS: int | None = 4
#: Search radius (spectrum bins) of the second order about twice the first-order spot; each next order is sought
#: at this radius scaled by its order over the highest order used so far.
HARMONIC_RADIUS_BINS = 2.0


def wrap_half(value: np.ndarray | float) -> np.ndarray:
    """Wrap a fraction to the interval [-1/2, 1/2)."""
    return (np.asarray(value, dtype=float) + 0.5) % 1.0 - 0.5


def circular_mean(fraction: np.ndarray) -> float:
    """Mean of fractions defined modulo 1 (registries, offsets in column spacings), in [-1/2, 1/2); NaN
    when none is finite."""
    f = np.asarray(fraction, dtype=float)
    f = f[np.isfinite(f)]
    if f.size == 0:
        return float("nan")
    return float(wrap_half(np.angle(np.mean(np.exp(2j * np.pi * f))) / (2 * np.pi)))


@dataclass(frozen=True)
class LatticeEstimate:
    """Orientation and periods of a layered lattice found in an image.

    Attributes
    ----------
    normal : numpy.ndarray
        Unit vector ``(x, y)`` of the basal-plane normal (stacking direction), pointing down.
    inplane : numpy.ndarray
        Unit vector ``(x, y)`` along the layers, ``(n_y, -n_x)``.
    layer_period_nm : float
        Period of the strongest stacking fringe along ``normal``, in nm (TM-TM layer spacing
        c/3 for layered phases; the cation-row spacing c/6 when only rock salt is present).
    inplane_period_nm : float
        Column spacing along the rows, in nm.
    angle_deg : float
        Angle of ``normal`` from the image +y axis, counter-clockwise in the (x right, y down)
        frame, degrees.
    layer_contrast, inplane_contrast : float
        Power of the spots used over the median power at the same spatial frequency.
    rows_are_cation_rows : bool
        True when the stacking fringe found is the cation-row period (no layered order seen).
    """

    normal: np.ndarray
    inplane: np.ndarray
    layer_period_nm: float
    inplane_period_nm: float
    angle_deg: float
    layer_contrast: float
    inplane_contrast: float
    rows_are_cation_rows: bool = False


@dataclass(frozen=True)
class PowerSpectrum:
    """The power spectrum of an image's central square (at most 1024², mean removed, Hann window).

    ``power`` fftshifted, ``k`` its frequency axis (cycles/nm, both directions), ``smooth`` and
    ``peaks`` from :func:`smoothed_peaks`. Read-only arrays: one spectrum serves the layered-oxide
    check (:func:`layerscope.imaging.generic.image_lattice`) and :func:`fft_lattice` of one run.
    """

    power: np.ndarray
    k: np.ndarray
    smooth: np.ndarray
    peaks: np.ndarray


def power_spectrum(image: np.ndarray, *, pixel_size_nm: float) -> PowerSpectrum:
    """The :class:`PowerSpectrum` of a 2-D image (pixel size in nm)."""
    data = np.asarray(image, dtype=float)
    ny, nx = data.shape
    size = min(ny, nx, 1024)
    r0, c0 = (ny - size) // 2, (nx - size) // 2
    crop = data[r0 : r0 + size, c0 : c0 + size]
    crop = crop - crop.mean()
    win = np.hanning(size)
    spec = sfft.fftshift(sfft.fft2(crop * win[:, None] * win[None, :], workers=-1))
    power = spec.real**2 + spec.imag**2
    k = sfft.fftshift(sfft.fftfreq(size, d=pixel_size_nm))
    smooth, peaks = smoothed_peaks(power)
    for a in (power, k, smooth, peaks):
        a.setflags(write=False)
    return PowerSpectrum(power, k, smooth, peaks)


def smoothed_peaks(power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The power spectrum smoothed over 3 x 3 bins and the mask of its local maxima over 7 x 7 bins."""
    smooth = ndimage.uniform_filter(power, size=3)
    return smooth, _window_max(smooth, 7) == smooth


def _window_max(values: np.ndarray, size: int) -> np.ndarray:
    """``scipy.ndimage.maximum_filter(values, size=size)`` of a 2-D array for an odd ``size`` (any of SciPy's
    modes but ``"constant"``: the maximum over the window clipped at the edges), 2x faster for small windows:
    along each axis the maxima over 2, 4, ... samples by doubling, then two of them cover the window."""
    if values.ndim != 2 or size % 2 == 0 or size < 3:
        return ndimage.maximum_filter(values, size=size)
    out = values
    for axis in (0, 1):
        n = out.shape[axis]
        m = np.pad(out, [(size // 2, size // 2) if a == axis else (0, 0) for a in (0, 1)], constant_values=-np.inf)
        m = np.moveaxis(m, axis, 0)
        width = 1
        while 2 * width <= size:
            m = np.maximum(m[:-width], m[width:])
            width *= 2
        out = np.moveaxis(np.maximum(m[:n], m[size - width:size - width + n]), 0, axis)
    return out


def spectrum_spots(power: np.ndarray, kx: np.ndarray, ky: np.ndarray, *, g_min: float, g_max: float,
           smoothed: tuple[np.ndarray, np.ndarray] | None = None):
    """Local maxima of the (shifted) power spectrum with their significance over the annulus median.

    ``smoothed``: :func:`smoothed_peaks` of ``power`` when the caller has it already.
    """
    smooth, peaks = smoothed_peaks(power) if smoothed is None else smoothed
    gmag = np.hypot(kx[None, :], ky[:, None])
    band = (gmag >= g_min) & (gmag <= g_max)
    is_max = peaks & band
    iy, ix = np.nonzero(is_max)
    if iy.size == 0:
        return np.empty((0, 2)), np.empty(0), np.empty(0)
    # Median power in thin annuli (radial profile), interpolated at each spot's |g|.
    dk = abs(kx[1] - kx[0])
    ring = np.floor(gmag / dk).astype(np.int64)
    sel = band | (gmag < g_max * 1.2)
    uniq, med = _annulus_medians(ring[sel], smooth[sel])
    prof = np.full(ring.max() + 1, np.nan)
    prof[uniq] = med
    prof = pd.Series(prof).rolling(5, center=True, min_periods=1).median().to_numpy()
    floor = prof[ring[iy, ix]]
    contrast = smooth[iy, ix] / np.where(floor > 0, floor, np.finfo(float).tiny)
    # Sub-bin position: parabolic interpolation of log power around the maximum.
    ny, nx = power.shape
    iyc = np.clip(iy, 1, ny - 2)
    ixc = np.clip(ix, 1, nx - 2)

    def lp(r, c):  # log power at the spots' bins only
        return np.log(np.maximum(power[r, c], np.finfo(float).tiny))

    def vertex(m, c, p):
        den = m - 2 * c + p
        return np.where(np.abs(den) > 1e-12, 0.5 * (m - p) / den, 0.0).clip(-0.5, 0.5)

    oy = vertex(lp(iyc - 1, ixc), lp(iyc, ixc), lp(iyc + 1, ixc))
    ox = vertex(lp(iyc, ixc - 1), lp(iyc, ixc), lp(iyc, ixc + 1))
    g = np.column_stack([kx[ixc] + ox * dk, ky[iyc] + oy * abs(ky[1] - ky[0])])
    return g, smooth[iy, ix], contrast


def harmonic_fringe(g: np.ndarray, i: int, *, bin_nm: float, max_order: int = 4,
                    radius_bins: float = HARMONIC_RADIUS_BINS, allowed: np.ndarray | None = None) -> np.ndarray:
    """The fringe vector of spot ``i`` (cycles/nm) fitted to its harmonics among the spots ``g``.

    Order ``n`` is the spot nearest ``n * G`` within ``radius_bins * bin_nm * n / m`` (``m``: the highest order used
    so far, ``G`` the fit so far) among the ``allowed`` spots (all by default); ``G`` is the least-squares vector
    through the origin, ``sum(n s_n) / sum(n^2)``. A spot's position error is about the same in every order, so
    order ``n`` fixes the direction and the period ``n`` times better than the first. ``bin_nm``: the spectrum's
    bin (cycles/nm). Without harmonics: ``g[i]``.
    """
    gi = np.asarray(g[i], dtype=float)
    num, den, top = gi.copy(), 1.0, 1
    far = np.zeros(len(g), bool) if allowed is None else ~np.asarray(allowed, bool)
    for n in range(2, max_order + 1):
        d = np.where(far, np.inf, np.hypot(*(g - n * (num / den)).T))
        j = int(np.argmin(d))
        if d[j] > radius_bins * bin_nm * n / top:
            continue
        num, den, top = num + n * g[j], den + n * n, n
    return num / den


def _annulus_medians(ring: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rings present (sorted) and the median of ``values`` in each (non-negative integer rings).

    The values grouped by a stable sort of the rings as 16-bit keys (NumPy's radix sort, the order
    of the int64 sort, 2.5x faster on a 1024² spectrum) and the ring starts read from the sorted rings
    (what ``np.unique(..., return_index=True)`` returns, without sorting them again).
    """
    order = np.argsort(ring.astype(np.int16) if ring.size and ring.max() < 2**15 else ring, kind="stable")
    rsorted, vsorted = ring[order], values[order]
    starts = np.concatenate([[0], np.flatnonzero(rsorted[1:] != rsorted[:-1]) + 1]) if ring.size else np.zeros(0, int)
    return rsorted[starts], np.array([np.median(v) for v in np.split(vsorted, starts[1:])])


def _fringe_coverage(image: np.ndarray, gs: np.ndarray, pixel_size_nm: float, sigma_nm: float = 0.6) -> np.ndarray:
    """Median local amplitude of each lattice fringe ``gs`` (n x 2, cycles/nm) over the field.

    The image is demodulated at ``g`` and low-passed with a Gaussian of ``sigma_nm`` (a filter of
    the spectrum around ``g``); the median of the amplitude over the field, less a border of
    ``sigma_nm``, is high for a fringe that runs through the whole image and low for one confined
    to a part of it. ``g`` and ``-g`` give the same value for a real image.
    """
    ny, nx = image.shape
    fy = sfft.fftfreq(ny, d=pixel_size_nm)[:, None]
    fx = sfft.fftfreq(nx, d=pixel_size_nm)[None, :]
    sigma_k = 1.0 / (2.0 * np.pi * sigma_nm)
    spectrum = sfft.fft2(image, workers=-1)
    b = max(1, int(round(sigma_nm / pixel_size_nm)))
    out = np.empty(len(gs))
    for i, g in enumerate(gs):
        mask = np.exp(-0.5 * ((fx - g[0]) ** 2 + (fy - g[1]) ** 2) / sigma_k**2)
        amplitude = np.abs(sfft.ifft2(spectrum * mask, workers=-1))
        inner = amplitude[b : ny - b, b : nx - b]
        out[i] = np.median(inner if inner.size else amplitude)
    return out


def fft_lattice(
    image: np.ndarray,
    *,
    pixel_size_nm: float,
    layer_spacing_nm: float,
    inplane_spacing_nm: float,
    tolerance: float = 0.2,
    min_contrast: float = 25.0,
    material: str = "the material",
    spectrum: PowerSpectrum | None = None,
) -> LatticeEstimate:
    """Find the basal-plane orientation and the lattice periods from the image's power spectrum.

    Parameters
    ----------
    image : numpy.ndarray
        2-D image.
    pixel_size_nm : float
        Pixel size in nm.
    layer_spacing_nm : float
        Expected TM-TM layer spacing (c/3 of the hexagonal cell) of the material, nm.
    inplane_spacing_nm : float
        Expected column spacing along the layers for the zone axis, nm.
    tolerance : float
        Accepted relative deviation of the measured periods from the expected ones (0.2 = 20 %).
    min_contrast : float
        A spot must be this many times the median power at its spatial frequency.
    material : str
        Name used in messages.
    spectrum : PowerSpectrum, optional
        :func:`power_spectrum` of ``image`` when the caller has it already.

    Returns
    -------
    LatticeEstimate

    Raises
    ------
    InputError
        No lattice fringes at all (no atomic resolution, vacuum, too small an image).
    CalibrationError
        Fringes exist but not at the material's periods within ``tolerance``.
    """
    data = np.asarray(image, dtype=float)
    ny, nx = data.shape
    size = min(ny, nx, 1024)
    r0 = (ny - size) // 2
    c0 = (nx - size) // 2
    crop = data[r0 : r0 + size, c0 : c0 + size]
    crop = crop - crop.mean()
    spectrum = power_spectrum(data, pixel_size_nm=pixel_size_nm) if spectrum is None else spectrum
    power, k = spectrum.power, spectrum.k
    nyquist = 0.5 / pixel_size_nm
    g_min = 1.0 / (2.5 * layer_spacing_nm)
    g_max = min(nyquist * 0.9, 2.0 / ((1 - tolerance) * min(inplane_spacing_nm, layer_spacing_nm / 2)))
    g, pw, contrast = spectrum_spots(power, k, k, g_min=g_min, g_max=g_max, smoothed=(spectrum.smooth, spectrum.peaks))
    strong = contrast >= min_contrast
    if not np.any(strong):
        raise InputError(
            f"the image shows no lattice fringes (no spot in its power spectrum is {min_contrast:g}x above "
            f"the noise between {1 / g_max:.3f} and {1 / g_min:.3f} nm): it has no atomic resolution, is "
            f"vacuum, or is too small; give an atomic-resolution HAADF/ADF image of {material}"
        )
    # Spots at half the threshold may still be a rival direction of the layer fringe (below).
    keep = contrast >= 0.5 * min_contrast
    g, pw, contrast, strong = g[keep], pw[keep], contrast[keep], strong[keep]
    gm = np.hypot(g[:, 0], g[:, 1])

    def pick(target_nm: float, allowed: np.ndarray) -> int | None:
        lo, hi = 1.0 / (target_nm * (1 + tolerance)), 1.0 / (target_nm * (1 - tolerance))
        band = (gm >= lo) & (gm <= hi)
        cand = np.nonzero(band & allowed)[0]
        if cand.size == 0:
            return None
        best = int(cand[np.argmax(pw[cand])])
        # Other fringe directions of comparable power (a cubic-close-packed block -- spinel, rock
        # salt -- shows its inclined {111} planes at 70.5 deg with the basal spacing), down to half
        # the contrast threshold: the basal fringe is the one present across the whole field, not
        # only in that block.
        near = np.nonzero(band)[0]
        upper = (g[near, 1] > 0) | ((g[near, 1] == 0) & (g[near, 0] > 0))  # one of each +/- g pair
        rivals = near[upper & (pw[near] >= 0.3 * pw[best])
                      & (np.abs(g[near] @ g[best]) < 0.9 * gm[near] * gm[best])]
        if rivals.size == 0:
            return best
        options = np.concatenate([[best], rivals])
        return int(options[int(np.argmax(_fringe_coverage(crop, g[options], pixel_size_nm)))])

    # The layer fringe, in order of preference: the TM-layer fringe (c/3) above the threshold;
    # with only rock salt (all cation rows alike) the cation-row fringe (c/6) is the lowest-order
    # one -- a lower-order fringe elsewhere means the calibration is off instead; last, the c/3
    # fringe down to half the threshold (a thin specimen at low dose, or Li layers lit by exchange,
    # where it is faint and an inclined fringe near c/6 is the stronger one). A candidate is taken
    # only when columns along it have the material's spacing.
    first_found = None
    for target, cation_rows, allowed in ((layer_spacing_nm, False, strong),
                                         (layer_spacing_nm / 2, True, strong),
                                         (layer_spacing_nm, False, np.ones_like(strong))):
        i_layer = pick(target, allowed)
        if i_layer is None or (cation_rows and gm[strong].min() < 0.8 * gm[i_layer]):
            continue
        estimate = _along_layers(_with_harmonics(g, i_layer, abs(k[1] - k[0]), strong), pw, contrast, strong, i_layer,
                                 inplane_spacing_nm, tolerance, cation_rows, expected_ratio=target / inplane_spacing_nm)
        if estimate is not None:
            return estimate
        first_found = i_layer if first_found is None else first_found
    if first_found is None:
        _raise_calibration(gm[strong], pw[strong], layer_spacing_nm, pixel_size_nm, tolerance, material)
    _raise_no_inplane(g, pw, contrast, strong, first_found, inplane_spacing_nm, tolerance, min_contrast, material)


def _with_harmonics(g: np.ndarray, i: int, bin_nm: float, strong: np.ndarray) -> np.ndarray:
    """``g`` with spot ``i`` replaced by its :func:`harmonic_fringe` fit on the ``strong`` spots (a copy; ``g``
    itself where :data:`LAYER_HARMONICS` is None)."""
    if LAYER_HARMONICS is None:
        return g
    out = np.array(g, dtype=float)
    out[i] = harmonic_fringe(g, i, bin_nm=bin_nm, max_order=LAYER_HARMONICS, allowed=strong)
    return out


def _axes(g_layer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit layer normal (pointing down the image, y > 0) and in-plane direction for the fringe ``g_layer``."""
    normal = g_layer / np.hypot(*g_layer)
    if normal[1] < 0 or (abs(normal[1]) < 1e-9 and normal[0] < 0):
        normal = -normal
    return normal, np.array([normal[1], -normal[0]])


def _along_layers(g, pw, contrast, strong, i_layer, inplane_spacing_nm, tolerance, cation_rows, *,
                  expected_ratio: float, ratio_tolerance: float = 0.15) -> LatticeEstimate | None:
    """The lattice estimate for layer fringe ``i_layer``, or None when no strong spot has the
    material's column spacing along those layers (any component along the normal), or when the
    layer period over the column spacing is more than ``ratio_tolerance`` off ``expected_ratio``.
    A wrong pixel size scales both periods alike; an inclined fringe taken for the layers does not
    (at 5 nm and 5e2 e/A^2 a 0.199 nm fringe 55 deg off the layers showed a 0.282 nm spacing along
    it, each within 20 % of LiCoO2's, ratio 27 % off). 15 % keeps a fully delithiated O1 lattice
    (c/3 8.4 % shorter than O3's, same column spacing) and strained layers."""
    gn = g[i_layer]
    normal, inplane = _axes(gn)
    gt = np.abs(g @ inplane)
    lo, hi = 1.0 / (inplane_spacing_nm * (1 + tolerance)), 1.0 / (inplane_spacing_nm * (1 - tolerance))
    cand = np.nonzero((gt >= lo) & (gt <= hi) & strong)[0]
    if cand.size == 0:
        return None
    w = pw[cand]
    d_t = float(1.0 / np.sum(gt[cand] * w / w.sum()))
    if abs((1.0 / np.hypot(*gn)) / d_t / expected_ratio - 1.0) > ratio_tolerance:
        return None
    angle = float(np.degrees(np.arctan2(-normal[0], normal[1])))
    return LatticeEstimate(
        normal=normal,
        inplane=inplane,
        layer_period_nm=float(1.0 / np.hypot(*gn)),
        inplane_period_nm=d_t,
        angle_deg=angle,
        layer_contrast=float(contrast[i_layer]),
        inplane_contrast=float(np.max(contrast[cand])),
        rows_are_cation_rows=cation_rows,
    )


def _raise_no_inplane(g, pw, contrast, strong, i_layer, inplane_spacing_nm, tolerance, min_contrast, material):
    """The layer fringe ``i_layer`` is found but no strong column spot along it: say which.

    Column spots at the material's spacing below the threshold (at 5e2 e/A^2 with heavily mixed
    Li layers the c/3 fringe stood 390x above the noise, the column spots 18x) mean too few counts,
    not a wrong scale: mapped anyway, 20 % of the columns were missed and 5 % of the steps wrong.
    """
    gm = np.hypot(g[:, 0], g[:, 1])
    period = 1 / gm[i_layer]
    weak = _along_layers(g, pw, contrast, np.ones_like(strong), i_layer, inplane_spacing_nm, tolerance, False,
                         expected_ratio=period / inplane_spacing_nm)
    if weak is not None and not np.any(strong & (np.abs(g @ weak.inplane) > 0.2 / inplane_spacing_nm)
                                       & (np.abs(g @ weak.normal) < 0.2 / inplane_spacing_nm)):
        raise CalibrationError(
            f"the layers are found (period {period:.3f} nm) and columns along them at {material}'s spacing "
            f"({weak.inplane_period_nm:.4f} nm), but those column spots stand only {weak.inplane_contrast:.0f}x above "
            f"the noise ({min_contrast:g}x needed): too few counts to map the columns; record a higher dose (if "
            f"the scale is wrong instead, check --pixel-size-nm, --zone and --composition)"
        )
    _, inplane = _axes(g[i_layer])
    gt = np.abs(g @ inplane)
    found = ", ".join(f"{1 / v:.3f}" for v in np.sort(gt[strong & (gt > 0.2 / inplane_spacing_nm)])[:6])
    raise CalibrationError(
        f"the layers are found (period {period:.3f} nm) but no column spacing along them "
        f"matches {material} in this zone axis ({inplane_spacing_nm:.4f} nm +/- {tolerance:.0%}, in the "
        f"material's ratio to the layer period; in-plane periods seen: {found or 'none'} nm): check --zone, "
        f"--composition and --pixel-size-nm"
    )


def _raise_calibration(gm, pw, layer_nm, pixel_size_nm, tolerance, material):
    # The lowest-order strong spot is the stacking fringe in a layered oxide: suggest the scale.
    low = np.nonzero(gm <= np.min(gm) * 1.05)[0]
    j = int(low[np.argmax(pw[low])])
    period = 1.0 / gm[j]
    factor = layer_nm / period
    raise CalibrationError(
        f"the strongest low-order fringe has a period of {period:.3f} nm, but the layer spacing of "
        f"{material} is {layer_nm:.3f} nm (more than {tolerance:.0%} off): the pixel size "
        f"{pixel_size_nm:g} nm is probably wrong (about {pixel_size_nm * factor:.4g} nm would match); "
        f"pass the right --pixel-size-nm or check the material"
    )


def group_rows(
    x_nm: np.ndarray,
    y_nm: np.ndarray,
    *,
    inplane: np.ndarray,
    normal: np.ndarray,
    inplane_spacing_nm: float,
    row_spacing_nm: float,
    link_tolerance: float = 0.3,
    min_chain: int = 3,
    offset_nm: np.ndarray | None = None,
) -> np.ndarray:
    """Group columns into rows (close-packed layers) and number the rows along the normal.

    Each column is linked to the nearest column about one in-plane spacing away along ``t``
    (within ``link_tolerance`` of the spacing, and not more than a quarter row spacing off the
    line); the connected chains are rows.  Chains that lie on the same line along ``n`` (closer
    than half a row spacing in their mean normal coordinate) are merged: a row broken by a void
    keeps one index.  Chains shorter than ``min_chain`` join the nearest such row within half a
    row spacing and never merge two rows; isolated columns farther from every row (one column
    between two layers, e.g. a TM ion in the Li layer) form rows of their own.

    Parameters
    ----------
    x_nm, y_nm : numpy.ndarray
        Column positions, nm.
    inplane, normal : numpy.ndarray
        Unit vectors along and across the layers.
    inplane_spacing_nm : float
        Column spacing along a row, nm.
    row_spacing_nm : float
        Spacing between neighbouring cation rows (c/6 of the hexagonal cell), nm.
    link_tolerance : float
        Relative tolerance of the link length.
    min_chain : int
        Fewest columns of a chain that defines a row line.
    offset_nm : numpy.ndarray, optional
        Per column, nm: subtracted from the normal coordinate before the linking and the grouping
        (the rows' bend and tilt, :func:`row_offset_field`), so that rows bent by the scan, or
        along a direction off ``normal``, are grouped on a coordinate in which they are straight.

    Returns
    -------
    numpy.ndarray of int
        Row index per column, 0 for the row with the smallest normal coordinate (top of the image
        for an unrotated lattice), increasing along ``normal``.

    References
    ----------
    Connected components: scipy.sparse.csgraph (Pearce's algorithm).
    """
    pts = np.column_stack([x_nm, y_nm]).astype(float)
    n = pts.shape[0]
    if n == 0:
        return np.empty(0, dtype=int)
    v = pts @ normal
    if offset_nm is not None:
        v = v - np.asarray(offset_nm, dtype=float)
    i_idx, j_idx = _row_links(pts, v, inplane=inplane, inplane_spacing_nm=inplane_spacing_nm,
                              row_spacing_nm=row_spacing_nm, link_tolerance=link_tolerance)
    graph = coo_matrix((np.ones(i_idx.size), (i_idx, j_idx)), shape=(n, n))
    n_chain, chain = connected_components(graph, directed=False)
    counts = np.bincount(chain, minlength=n_chain)
    v_mean = np.bincount(chain, weights=v, minlength=n_chain) / counts
    return _rows_of_chains(v_mean, counts, 0.5 * row_spacing_nm, min_chain)[chain]


def _row_links(pts: np.ndarray, v: np.ndarray, *, inplane: np.ndarray, inplane_spacing_nm: float,
               row_spacing_nm: float, link_tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Links ``(i, j)`` from each column to the nearest column about one in-plane spacing on along ``inplane``
    (within ``link_tolerance`` of the spacing, and less than a quarter row spacing off in ``v``, nm)."""
    tree = cKDTree(pts)
    target = pts + inplane_spacing_nm * inplane[None, :]
    dist, j = tree.query(target, k=1, distance_upper_bound=link_tolerance * inplane_spacing_nm)
    ok = np.isfinite(dist)
    i_idx = np.nonzero(ok)[0]
    j_idx = j[ok]
    ok2 = np.abs(v[j_idx] - v[i_idx]) < 0.25 * row_spacing_nm
    return i_idx[ok2], j_idx[ok2]


def _offset_basis(u: np.ndarray, v: np.ndarray, degree: int) -> np.ndarray:
    """Terms of a smooth offset field that the in-row links measure: powers of the along-row coordinate ``a``
    times powers of the across-row coordinate ``b`` (both centred, scaled to about [-1, 1]), every term with
    ``a`` in it (a term in ``b`` alone moves whole rows, which no in-row link sees)."""
    scale = max(float(np.ptp(u)), float(np.ptp(v)), 1e-9) / 2.0
    a = (u - u.mean()) / scale
    b = (v - v.mean()) / scale
    terms = [a ** i * b ** k for total in range(1, degree + 1) for i in range(1, total + 1) for k in [total - i]]
    return np.column_stack(terms)


def row_offset_field(
    x_nm: np.ndarray,
    y_nm: np.ndarray,
    *,
    inplane: np.ndarray,
    normal: np.ndarray,
    inplane_spacing_nm: float,
    row_spacing_nm: float,
    link_tolerance: float = 0.3,
    degree: int = 2,
) -> np.ndarray:
    """Smooth offset (nm) of the rows' normal coordinate at every column: how far the row through it lies off
    a straight line along ``inplane``, fitted from the columns themselves.

    Each link between neighbouring columns of one row (:func:`group_rows`' links) measures the change of the
    offset field between its two ends; the field, a polynomial of total degree ``degree`` in the along-row and
    across-row coordinates (terms without the along-row coordinate left out, :func:`_offset_basis`), is the
    least-squares fit of those changes, fitted again without the links more than 3 robust SDs off (a link
    across a stacking fault or a noise maximum). Degree 1 is a straight direction off ``normal`` (the power
    spectrum's layer normal, quantised by the spectrum's pixels); degree 2 adds rows bent by a scan drift that
    changes along the row, and a bend that changes across the rows. Zero where fewer links than three per term.

    Returns
    -------
    numpy.ndarray
        Offset per column, nm (subtract it from ``x, y @ normal``; :func:`group_rows`' ``offset_nm``).

    References
    ----------
    Linear least squares: numpy.linalg.lstsq; links: scipy.spatial.cKDTree.
    """
    pts = np.column_stack([x_nm, y_nm]).astype(float)
    if pts.shape[0] == 0:
        return np.zeros(0)
    u, v = pts @ inplane, pts @ normal
    i, j = _row_links(pts, v, inplane=inplane, inplane_spacing_nm=inplane_spacing_nm,
                      row_spacing_nm=row_spacing_nm, link_tolerance=link_tolerance)
    basis = _offset_basis(u, v, degree)
    if i.size < 3 * basis.shape[1]:
        return np.zeros(pts.shape[0])
    design, change = basis[j] - basis[i], v[j] - v[i]
    keep = np.ones(i.size, dtype=bool)
    for _ in range(2):
        coef = np.linalg.lstsq(design[keep], change[keep], rcond=None)[0]
        resid = change - design @ coef
        mad = 1.4826 * np.median(np.abs(resid[keep] - np.median(resid[keep])))
        keep = np.abs(resid) <= 3.0 * mad + 1e-6
        if keep.sum() < 3 * basis.shape[1]:
            break
    return basis @ coef


def _merge_on_line(v: np.ndarray, gap: float) -> np.ndarray:
    """Single-linkage groups of the values ``v`` (neighbours after sorting closer than ``gap``)."""
    order = np.argsort(v, kind="stable")
    label = np.empty(v.size, dtype=int)
    label[order] = np.cumsum(np.concatenate([[True], np.diff(v[order]) > gap])) - 1
    return label


def _rows_of_chains(v_mean: np.ndarray, counts: np.ndarray, gap: float, min_chain: int) -> np.ndarray:
    """Row index of every chain, numbered along the normal.

    Chains of at least ``min_chain`` columns are the rows' backbones: those on one line (mean
    normal coordinates closer than ``gap``) form one row, so a row broken by a void keeps one
    index. Each shorter chain (a lone maximum between layers, a mixing site) joins the nearest
    backbone row within ``gap``; the rest group among themselves. Short chains never merge two
    backbone rows: single linkage over every chain let a few noise maxima between a bright Li
    layer and its TM layer chain the two into one row.
    """
    major = counts >= min_chain
    if not major.any():
        major = np.ones_like(major)
    row = np.full(v_mean.size, -1, dtype=int)
    row[major] = _merge_on_line(v_mean[major], gap)
    centre = (np.bincount(row[major], weights=(v_mean * counts)[major])
              / np.bincount(row[major], weights=counts[major]))
    minor = np.nonzero(~major)[0]
    if minor.size:
        nearest = np.argmin(np.abs(v_mean[minor, None] - centre[None, :]), axis=1)
        near = np.abs(v_mean[minor] - centre[nearest]) < gap
        row[minor[near]] = nearest[near]
        rest = minor[~near]
        if rest.size:
            extra = _merge_on_line(v_mean[rest], gap)
            row[rest] = centre.size + extra
            extra_centre = np.bincount(extra, weights=v_mean[rest]) / np.bincount(extra)
            centre = np.concatenate([centre, extra_centre])
    rank = np.empty(centre.size, dtype=int)
    rank[np.argsort(centre, kind="stable")] = np.arange(centre.size)
    return rank[row]


def refine_directions(
    x_nm: np.ndarray, y_nm: np.ndarray, rows: np.ndarray, *, normal: np.ndarray, min_columns: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """Refine the layer direction from the columns of each row (pooled total-least-squares line fit).

    Parameters
    ----------
    x_nm, y_nm : numpy.ndarray
        Column positions, nm.
    rows : numpy.ndarray
        Row index per column (:func:`group_rows`).
    normal : numpy.ndarray
        Starting normal (fixes the sign).
    min_columns : int
        Rows with fewer columns are ignored.

    Returns
    -------
    inplane, normal : numpy.ndarray
        Refined unit vectors.
    """
    pts = np.column_stack([x_nm, y_nm]).astype(float)
    counts = np.bincount(rows)
    good = counts[rows] >= min_columns
    if good.sum() < 2 * min_columns:
        return np.array([normal[1], -normal[0]]), np.asarray(normal, dtype=float)
    r = rows[good]
    p = pts[good]
    cnt = np.bincount(r).astype(float)
    cnt[cnt == 0] = 1
    mean = np.column_stack([np.bincount(r, p[:, 0]), np.bincount(r, p[:, 1])]) / cnt[:, None]
    d = p - mean[r]
    scatter = d.T @ d
    evals, evecs = np.linalg.eigh(scatter)
    t = evecs[:, np.argmax(evals)]
    nrm = np.array([-t[1], t[0]])
    if nrm @ normal < 0:
        nrm = -nrm
    t = np.array([nrm[1], -nrm[0]])
    return t, nrm


def row_registry(
    x_nm: np.ndarray,
    y_nm: np.ndarray,
    rows: np.ndarray,
    *,
    inplane: np.ndarray,
    inplane_spacing_nm: float,
    pairs: np.ndarray,
    max_normal_distance_nm: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Lateral registry of every column relative to the row below it (the next along ``n``).

    For each column in row ``a`` of a pair ``(a, b)``, the nearest column of row ``b`` (in the
    full 2-D distance, so that a local bend or glide is followed) gives the shift along ``t``;
    the registry is that shift divided by the in-plane spacing, wrapped to [-1/2, 1/2).

    Parameters
    ----------
    x_nm, y_nm : numpy.ndarray
        Column positions, nm.
    rows : numpy.ndarray
        Row index per column.
    inplane : numpy.ndarray
        Unit vector along the rows.
    inplane_spacing_nm : float
        Column spacing along a row, nm (the local value measured from the image is best).
    pairs : numpy.ndarray
        ``(m, 2)`` row pairs ``(a, b)``: registry of row ``b`` relative to row ``a``, reported on
        the columns of ``a``.
    max_normal_distance_nm : float
        A partner further away than this is not accepted (a gap, vacuum or void in between).

    Returns
    -------
    registry : numpy.ndarray
        Shift of the partner in row ``b`` relative to each column of row ``a``, in units of the
        in-plane spacing, in [-1/2, 1/2); NaN for columns of rows without a pair or a partner.
    partner : numpy.ndarray of int
        Index of the partner column (-1 when none).
    """
    pts = np.column_stack([x_nm, y_nm]).astype(float)
    registry = np.full(pts.shape[0], np.nan)
    partner = np.full(pts.shape[0], -1, dtype=int)
    for a, b in np.asarray(pairs, dtype=int).reshape(-1, 2):
        ia = np.nonzero(rows == a)[0]
        ib = np.nonzero(rows == b)[0]
        if ia.size == 0 or ib.size == 0:
            continue
        tree = cKDTree(pts[ib])
        dist, j = tree.query(pts[ia], k=1, distance_upper_bound=max_normal_distance_nm)
        ok = np.isfinite(dist)
        shift = (pts[ib[j[ok]]] - pts[ia[ok]]) @ inplane
        registry[ia[ok]] = wrap_half(shift / inplane_spacing_nm)
        partner[ia[ok]] = ib[j[ok]]
    return registry, partner


@dataclass(frozen=True)
class LayerIndex:
    """Cation-layer numbering of the rows found in an image.

    Attributes
    ----------
    layer_of_row : numpy.ndarray of int
        Cation-layer index of each row (0 for the first row along the normal); rows of one layer
        share the index, an undetected layer (an empty Li layer) leaves a gap of one; -1 for a
        sparse row that sits on no lattice layer (noise, or outside the crystal) and for a corner
        row's Li layer beyond the outermost TM layer (:func:`_drop_outer_li_rows`).
    tm_parity : int
        Layers with ``layer % 2 == tm_parity`` are TM layers, the others Li layers.
    parity_from_contrast : bool
        True when the parity was read from the image (bright rows with empty layers beside them);
        False when nothing in the image tells TM from Li layers (only rock salt), and the first
        row was taken as a TM layer by convention.
    row_density : numpy.ndarray
        Columns per lattice site along each row (1 for a full row).
    """

    layer_of_row: np.ndarray
    tm_parity: int
    parity_from_contrast: bool
    row_density: np.ndarray


def index_layers(
    u_nm: np.ndarray,
    v_nm: np.ndarray,
    rows: np.ndarray,
    *,
    inplane_spacing_nm: float,
    cation_spacing_nm: float,
    chord_nm: np.ndarray | None = None,
) -> LayerIndex:
    """Number the cation layers along the normal and tell TM layers from Li layers.

    Consecutive rows are ``round(dv / cation_spacing)`` layers apart (1 between neighbouring
    cation layers, 2 across an invisible Li layer of a layered phase; rock salt's 0.24 nm, O3's
    0.237 nm and O1's 0.215 nm all round to 1).  TM layers are the full rows whose neighbouring
    layers are empty or sparse (Li layers of O3/O1/O3' hold no visible column; a Li layer with
    Li/TM mixing a few, a spinel Li layer every second site); the parity of those rows, weighted
    by their size, decides which layers are TM layers. When no full row (0.7 of the widest) has
    sparse layers on both sides, rows at least 0.3 as dense vote instead (a crystal filling only
    part of a rotated field).

    Parameters
    ----------
    u_nm, v_nm : numpy.ndarray
        Column coordinates along and across the layers, nm.
    rows : numpy.ndarray of int
        Row index per column, increasing along the normal (:func:`group_rows`).
    inplane_spacing_nm : float
        Column spacing along a row, nm.
    cation_spacing_nm : float
        Expected distance between neighbouring cation layers (c/6 of the matrix), nm.
    chord_nm : numpy.ndarray, optional
        Length (nm) of each row's line inside the image (:func:`chord_lengths`). With it, rows
        beyond the outermost anchors (the short rows in the corners of a rotated field, at most
        a third as long as the widest) are numbered too where they hold at least
        :data:`CORNER_MIN_COLUMNS` columns, are dense along their own chord and continue the layer
        spacing (:func:`_extend_anchors`); without it they are -1.

    Returns
    -------
    LayerIndex
    """
    n_rows = int(rows.max()) + 1 if rows.size else 0
    counts = np.bincount(rows, minlength=n_rows).astype(float)
    v_mean = np.bincount(rows, weights=v_nm, minlength=n_rows) / np.maximum(counts, 1)
    u_min = np.full(n_rows, np.inf)
    u_max = np.full(n_rows, -np.inf)
    np.minimum.at(u_min, rows, u_nm)
    np.maximum.at(u_max, rows, u_nm)
    # Density against the whole field width (the widest row), so that a sparse row of a few
    # mixing sites is not mistaken for a short full row.
    width_sites = (np.max(u_max) - np.min(u_min)) / inplane_spacing_nm + 1.0 if n_rows else 1.0
    density = counts / width_sites
    chord_density = on_line = None
    if chord_nm is not None:
        on_line = _on_line_counts(v_nm, rows, n_rows, tolerance_nm=0.25 * cation_spacing_nm)
        chord_density = on_line / np.maximum(np.asarray(chord_nm, dtype=float) / inplane_spacing_nm + 1.0, 1.0)
    layer_of_row = _number_rows(v_mean, density, cation_spacing_nm, chord_density=chord_density, counts=on_line)
    kept = layer_of_row >= 0
    # Votes: full rows (density >= 0.7) whose neighbouring layers, both inside the range of
    # layers seen, are missing or at most 0.6 as dense.
    dens_of_layer = np.zeros(layer_of_row.max() + 1 if kept.any() else 1)
    np.maximum.at(dens_of_layer, layer_of_row[kept], density[kept])
    votes = _parity_votes(layer_of_row, kept, density, counts, dens_of_layer, full=0.7)
    if votes.sum() == 0:
        # No full row between sparse layers: a crystal that fills only part of the field (a
        # rotated wedge edge: its layered rows 0.38-0.68 of the widest, heavily mixed rows full)
        # votes with its substantial rows (>= 0.3, the anchors) between sparse layers.
        votes = _parity_votes(layer_of_row, kept, density, counts, dens_of_layer, full=0.3)
    if votes.sum() > 0:
        parity = int(np.argmax(votes))
        from_contrast = True
    else:
        parity = 0
        from_contrast = False
    if chord_nm is not None and from_contrast:
        before = _number_rows(v_mean, density, cation_spacing_nm) >= 0
        layer_of_row, parity = _drop_outer_li_rows(layer_of_row, before, parity)
    return LayerIndex(layer_of_row, parity, from_contrast, density)


def _on_line_counts(v_nm: np.ndarray, rows: np.ndarray, n_rows: int, *, tolerance_nm: float) -> np.ndarray:
    """Columns of each row within ``tolerance_nm`` of the row's median normal coordinate.

    A maximum that joined a short row from between the layers (a column of the Li layer beside
    it, an edge artefact) lies 0.08-0.1 nm off its line and does not count towards the row's
    claim to be a lattice row (:func:`_extend_anchors`).
    """
    order = np.argsort(rows, kind="stable")
    bounds = np.searchsorted(rows[order], np.arange(n_rows + 1))
    out = np.zeros(n_rows)
    for r in range(n_rows):
        v = v_nm[order[bounds[r]:bounds[r + 1]]]
        if v.size:
            out[r] = np.count_nonzero(np.abs(v - np.median(v)) <= tolerance_nm)
    return out


def _drop_outer_li_rows(layer_of_row: np.ndarray, numbered_before: np.ndarray, parity: int) -> tuple[np.ndarray, int]:
    """Rows numbered by the corner extension alone that lie beyond the outermost TM layer: -1 again.

    A Li layer with no TM layer beyond it in the field is no gap between two TM layers: its sites
    have no TM pair and their stacking step is not in the image (``interlayers.csv`` would report
    it ``unknown``). Rows that the widest-row density numbered already (``numbered_before``) are
    kept as they were. Returns the numbering (first row 0 again) and the TM-layer parity.
    """
    on = layer_of_row >= 0
    tm = on & (layer_of_row % 2 == parity)
    if not tm.any():
        return layer_of_row, parity
    lo, hi = layer_of_row[tm].min(), layer_of_row[tm].max()
    out = layer_of_row.copy()
    out[on & ~numbered_before & ((out < lo) | (out > hi))] = -1
    shift = int(out[out >= 0].min())
    out[out >= 0] -= shift
    return out, (parity - shift) % 2


def _parity_votes(layer_of_row: np.ndarray, kept: np.ndarray, density: np.ndarray, counts: np.ndarray,
                  dens_of_layer: np.ndarray, *, full: float) -> np.ndarray:
    """Column-weighted votes for the TM-layer parity: rows at least ``full`` dense whose
    neighbouring layers, both inside the range of layers seen, are missing or at most 0.6 as dense."""
    votes = np.zeros(2)
    last = dens_of_layer.size - 1
    for r in np.nonzero(kept)[0]:
        k = layer_of_row[r]
        if density[r] < full or k == 0 or k == last:
            continue
        if dens_of_layer[k - 1] <= 0.6 * density[r] and dens_of_layer[k + 1] <= 0.6 * density[r]:
            votes[k % 2] += counts[r]
    return votes


def _number_rows(v_mean: np.ndarray, density: np.ndarray, cation_spacing_nm: float,
                 anchor_density: float = 0.3, tolerance: float = 0.3,
                 chord_density: np.ndarray | None = None, counts: np.ndarray | None = None) -> np.ndarray:
    """Cation-layer index of each row; sparse rows are placed between the substantial ones.

    Rows with at least ``anchor_density`` of their sites filled are numbered by the rounded
    number of cation spacings between neighbours. A sparser row (a few mixing sites, or a false
    detection) gets a layer only if it lies between two anchors on a lattice layer, within
    ``tolerance`` of a (locally measured) spacing; otherwise -1. With ``chord_density`` (columns
    per site of the row's line inside the image) and ``counts`` (columns per row) the anchors are
    first extended outwards (:func:`_extend_anchors`) by rows of at least
    :data:`CORNER_MIN_COLUMNS` columns.
    """
    n = v_mean.size
    out = np.full(n, -1, dtype=int)
    anchor = np.nonzero(density >= anchor_density)[0]
    if anchor.size == 0:
        anchor = np.arange(n)
    va = v_mean[anchor]
    steps = np.maximum(1, np.rint(np.diff(va) / cation_spacing_nm)).astype(int)
    la = np.concatenate([[0], np.cumsum(steps)]).astype(int)
    if chord_density is not None:
        dense = (chord_density >= anchor_density) & (counts >= CORNER_MIN_COLUMNS)
        anchor, la = _extend_anchors(v_mean, dense, anchor, la, tolerance=tolerance)
        la = la - la.min()
        va = v_mean[anchor]
    out[anchor] = la
    for r in np.setdiff1d(np.arange(n), anchor):
        j = np.searchsorted(va, v_mean[r])
        if j == 0 or j == va.size:
            continue  # outside the crystal seen by the anchors
        n_gap = la[j] - la[j - 1]
        local = (va[j] - va[j - 1]) / n_gap
        pos = (v_mean[r] - va[j - 1]) / local
        k = int(np.rint(pos))
        if abs(pos - k) <= tolerance and 0 <= k <= n_gap:
            out[r] = la[j - 1] + k
    return out


def _extend_anchors(v_mean: np.ndarray, dense: np.ndarray, anchor: np.ndarray, la: np.ndarray, *,
                    tolerance: float, span: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Anchors extended beyond both ends, one row at a time, by rows dense along their own chord.

    In a field rotated against the layers the rows in its corners are short: a full row there
    holds fewer than ``anchor_density`` of the widest row's sites and was dropped with the noise
    (2-8 % of the visible columns of a rotated 6 nm field). The nearest row beyond an end
    becomes an anchor when ``dense`` (its columns on its line, at least :data:`CORNER_MIN_COLUMNS`
    (:func:`_on_line_counts`), fill at least ``anchor_density`` of the sites of its line inside
    the image: a row in vacuum beyond a surface does not) and it lies within
    ``tolerance`` of a whole number (1 or 2) of the spacing measured over the last ``span``
    anchor layers at that end; sparse rows are passed over (numbered afterwards like every sparse
    row between anchors), and the extension stops at the first dense row off the lattice.

    Returns the anchors (row indices, sorted along the normal) and their layer numbers (which
    may start below 0).
    """
    anchor, la = list(anchor), list(la)
    for side in (-1, 1):
        beyond = [r for r in np.argsort(side * v_mean, kind="stable")
                  if side * (v_mean[r] - v_mean[anchor[-1 if side > 0 else 0]]) > 0]
        for r in beyond:
            end = -1 if side > 0 else 0
            ref = anchor[-span:] if side > 0 else anchor[:span]
            lref = la[-span:] if side > 0 else la[:span]
            if lref[-1] == lref[0]:
                break
            local = (v_mean[ref[-1]] - v_mean[ref[0]]) / (lref[-1] - lref[0])
            pos = (v_mean[r] - v_mean[anchor[end]]) / local
            k = int(np.rint(pos))
            if not dense[r]:
                continue  # a sparse row (a Li layer's few columns): numbered later if it lies between anchors
            if abs(pos - k) > tolerance or not 1 <= abs(k) <= 2:
                break
            if side > 0:
                anchor.append(r)
                la.append(la[-1] + k)
            else:
                anchor.insert(0, r)
                la.insert(0, la[0] + k)
    return np.asarray(anchor, dtype=int), np.asarray(la, dtype=int)


def layer_spacing_from_columns(v_nm: np.ndarray, layer: np.ndarray, *, spacing_nm: float, max_change: float = 0.10,
                               min_layers: int = 4, clip: float = 0.25) -> float | None:
    """The cation-layer spacing (nm) read from columns whose layers are numbered: the slope of their normal
    coordinate ``v_nm`` against their cation-layer number ``layer``.

    Least squares of ``v = v0 + layer * spacing``, fitted again without the columns more than ``clip`` spacings
    off the line (a column fitted between two layers). The layer numbers are integers already (the rows' own
    rounding, :func:`index_layers`), so the fit moves the spacing, never a row. None (keep ``spacing_nm``, the
    power spectrum's) where fewer than ``min_layers`` distinct layers hold columns, or where the slope lies more
    than ``max_change`` (relative) off ``spacing_nm``: a numbering that doubled or halved the layers, not a
    spectrum's error (at most 5.2 % on the 38 wide tuning draws and 7000-7099, draw 7024; docs/validation.md
    "imgperiod").

    References
    ----------
    Linear least squares: numpy.polyfit.
    """
    v = np.asarray(v_nm, dtype=float)
    k = np.asarray(layer, dtype=float)
    ok = np.isfinite(v) & (k >= 0)
    v, k = v[ok], k[ok]
    if np.unique(k).size < min_layers:
        return None
    keep = np.ones(v.size, dtype=bool)
    for _ in range(2):
        slope, v0 = np.polyfit(k[keep], v[keep], 1)
        keep = np.abs(v - v0 - slope * k) <= clip * spacing_nm
        if np.unique(k[keep]).size < min_layers:
            return None
    slope = float(np.polyfit(k[keep], v[keep], 1)[0])
    return slope if abs(slope / spacing_nm - 1.0) <= max_change else None

#: :func:`corner_rows`: fewest columns on a row's line for it to be reported beyond the analysed layers.
CORNER_REPORT_MIN_COLUMNS = 2


def corner_rows(v_nm: np.ndarray, rows: np.ndarray, layer_of_row: np.ndarray, *,
                chord_nm: np.ndarray, inplane_spacing_nm: float, cation_spacing_nm: float,
                tolerance: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Rows beyond the outermost numbered layers that continue the lattice, and their columns on the line.

    :func:`index_layers` numbers a corner row only when it holds :data:`CORNER_MIN_COLUMNS`
    columns, and drops a Li layer beyond the outermost TM layer (no TM-TM gap is in the image):
    their columns are real but have no stacking to read. Here they are found for the column table
    alone: outwards from each end of the numbered rows, a row with at least
    :data:`CORNER_REPORT_MIN_COLUMNS` columns on its line that fill at least 0.3 of its chord's
    sites (a row in vacuum beyond a surface does not) is taken where it lies within ``tolerance``
    of one or two layer spacings beyond the last one taken, the spacing measured over the last 4
    numbered layers (:func:`_extend_anchors`); the first such row off the lattice ends the search.

    Returns
    -------
    layer : numpy.ndarray of int
        Per row: the layer number the lattice continues to (below 0 or above the last layer), or
        a sentinel below ``-10**6`` for rows not taken (numbered rows included).
    on_line : numpy.ndarray of bool
        Per column: within a quarter cation spacing of its row's median normal coordinate.
    """
    none = -(10 ** 9)
    n_rows = layer_of_row.size
    out = np.full(n_rows, none, dtype=int)
    on_line = np.zeros(rows.size, dtype=bool)
    numbered = np.nonzero(layer_of_row >= 0)[0]
    if numbered.size < 2:
        return out, on_line
    counts = _on_line_counts(v_nm, rows, n_rows, tolerance_nm=0.25 * cation_spacing_nm)
    v_mean = np.bincount(rows, weights=v_nm, minlength=n_rows) / np.maximum(np.bincount(rows, minlength=n_rows), 1)
    dense = (counts >= CORNER_REPORT_MIN_COLUMNS) & (
        counts / np.maximum(np.asarray(chord_nm, dtype=float) / inplane_spacing_nm + 1.0, 1.0) >= 0.3)
    order = numbered[np.argsort(v_mean[numbered], kind="stable")]
    _, first = np.unique(layer_of_row[order], return_index=True)  # one row per layer, in layer order
    order = order[np.sort(first)]
    anchor, la = _extend_anchors(v_mean, dense, order, layer_of_row[order], tolerance=tolerance)
    new = ~np.isin(anchor, numbered)
    out[anchor[new]] = la[new]
    for r in anchor[new]:
        at = rows == r
        on_line[at] = np.abs(v_nm[at] - np.median(v_nm[at])) <= 0.25 * cation_spacing_nm
    return out, on_line


def chord_lengths(v_nm: np.ndarray, *, inplane: np.ndarray, normal: np.ndarray,
                  extent_nm: tuple[float, float]) -> np.ndarray:
    """Length (nm) inside the image of the line along ``inplane`` at normal coordinate ``v_nm``.

    The image spans ``0 <= x <= width``, ``0 <= y <= height`` (``extent_nm = (width, height)``,
    nm); a point of the line is ``v n + s t``. 0 where the line misses the image.
    """
    v = np.asarray(v_nm, dtype=float)
    lo = np.full(v.shape, -np.inf)
    hi = np.full(v.shape, np.inf)
    for axis, size in enumerate(extent_nm):
        t, c = float(inplane[axis]), v * float(normal[axis])
        if abs(t) < 1e-12:
            outside = (c < 0) | (c > size)
            lo[outside], hi[outside] = 0.0, 0.0
            continue
        a, b = (0.0 - c) / t, (size - c) / t
        lo, hi = np.maximum(lo, np.minimum(a, b)), np.minimum(hi, np.maximum(a, b))
    return np.maximum(hi - lo, 0.0)


def tm_pairs(
    u_nm: np.ndarray,
    v_nm: np.ndarray,
    layer: np.ndarray,
    *,
    tm_parity: int,
    inplane_spacing_nm: float,
    max_distance_nm: float,
) -> pd.DataFrame:
    """Pair every TM column with its partner in the next TM layer, and their registry.

    For every TM column ``c`` of layer ``k``, the partner ``d`` is the nearest column of TM layer
    ``k + 2`` (2-D distance, so a bent or glided layer is followed); the registry is
    ``r = wrap((u_d - u_c) / d_t)`` in [-1/2, 1/2). Each pair stands for one Li-layer site of
    layer ``k + 1`` (the octahedral site between them), so the pairs of one layer give the full
    row of Li-layer sites.

    Parameters
    ----------
    u_nm, v_nm : numpy.ndarray
        TM column coordinates along and across the layers, nm.
    layer : numpy.ndarray of int
        Cation-layer index of each TM column.
    tm_parity : int
        Parity of the TM layers.
    inplane_spacing_nm : float
        Column spacing along the rows, nm.
    max_distance_nm : float
        Largest accepted distance to the partner (no pair across a void or vacuum); the partner
        must also lie within 0.75 column spacings along the layers.

    Returns
    -------
    pandas.DataFrame
        ``above``, ``below`` (column indices), ``layer`` (the Li layer ``k + 1``), ``registry``.
    """
    pts = np.column_stack([u_nm, v_nm]).astype(float)
    layer = np.asarray(layer)
    n = pts.shape[0]
    if n < 2:
        return pd.DataFrame({"above": np.empty(0, int), "below": np.empty(0, int), "layer": np.empty(0, int),
                             "registry": np.empty(0)})
    # One query for all columns: the partner is the nearest of the ~12 nearest columns that sits
    # in layer k + 2 (two in the own row, three or four in each neighbouring TM layer, and the
    # Li-layer columns of rock salt or mixing in between).
    k_nn = min(16, n)
    dist, idx = cKDTree(pts).query(pts, k=k_nn, distance_upper_bound=max_distance_nm)
    valid = np.isfinite(dist)
    idx_c = np.where(valid, idx, 0)
    target = (layer[idx_c] == layer[:, None] + 2) & valid
    target &= np.abs(pts[idx_c, 0] - pts[:, None, 0]) <= 0.75 * inplane_spacing_nm
    has = target.any(axis=1) & ((layer % 2) == tm_parity)
    first = np.argmax(target, axis=1)  # neighbours come sorted by distance
    a = np.nonzero(has)[0]
    b = idx[a, first[a]]
    out = [pd.DataFrame({
        "above": a,
        "below": b,
        "layer": layer[a] + 1,
        "registry": wrap_half((pts[b, 0] - pts[a, 0]) / inplane_spacing_nm),
    })]
    if not out:
        return pd.DataFrame({"above": np.empty(0, int), "below": np.empty(0, int), "layer": np.empty(0, int),
                             "registry": np.empty(0)})
    return pd.concat(out, ignore_index=True)


def running_mean_along_layers(u_nm: np.ndarray, layer: np.ndarray, values: np.ndarray, *, half_window: int,
                              max_gap_nm: float, circular: bool = False) -> np.ndarray:
    """Running mean of ``values`` over the ``2 half_window + 1`` neighbours of each point along its layer.

    Points are sorted by ``u`` within each layer; points more than ``max_gap_nm`` apart along the
    layer (across a void) are not averaged together, and a window cut by the end of a run holds
    fewer points. ``circular`` averages values of period 1 as unit vectors (result in [-1/2, 1/2)).

    Parameters
    ----------
    u_nm : numpy.ndarray
        Coordinate along the layers, nm.
    layer : numpy.ndarray of int
        Layer of each point.
    values : numpy.ndarray
        The values to average.
    half_window : int
        Points on either side.
    max_gap_nm : float
        Largest gap along the layer inside one averaging run.
    circular : bool
        Values are phases of period 1.

    Returns
    -------
    numpy.ndarray
        The running mean, in input order.
    """
    u = np.asarray(u_nm, dtype=float)
    vals = np.asarray(values, dtype=float)
    lay = np.asarray(layer)
    z = np.exp(2j * np.pi * vals) if circular else vals.astype(complex)
    order = np.lexsort((u, lay))
    # Runs of points on one layer without a gap; windowed sums inside each run.
    new_run = np.ones(order.size, dtype=bool)
    new_run[1:] = (np.diff(lay[order]) != 0) | (np.diff(u[order]) > max_gap_nm)
    run = np.cumsum(new_run) - 1
    zs = z[order]
    acc = np.zeros(order.size, dtype=complex)
    count = np.zeros(order.size)
    for shift in range(-int(half_window), int(half_window) + 1):
        idx = np.arange(order.size) + shift
        ok = (idx >= 0) & (idx < order.size)
        same = np.zeros(order.size, dtype=bool)
        same[ok] = run[idx[ok]] == run[ok]
        acc[same] += zs[idx[same]]
        count[same] += 1.0
    out = np.empty(order.size)
    out[order] = wrap_half(np.angle(acc) / (2 * np.pi)) if circular else acc.real / count
    return out


def smooth_registry(u_nm: np.ndarray, layer: np.ndarray, registry: np.ndarray, *, half_window: int = 2,
                    max_gap_nm: float) -> np.ndarray:
    """Circular running mean of the registry along each layer (pairs sorted by ``u``).

    Stacking relations are coherent along a layer over many columns; averaging ``2 half_window + 1``
    neighbouring pairs lowers the registry noise by about ``sqrt(2 half_window + 1)`` before it is
    classified, and moves a lateral domain boundary by at most ``half_window`` columns. Pairs more
    than ``max_gap_nm`` apart along the layer (across a void) are not averaged together.

    Parameters
    ----------
    u_nm : numpy.ndarray
        Coordinate along the layers of each pair (of its upper column), nm.
    layer : numpy.ndarray of int
        Layer of each pair.
    registry : numpy.ndarray
        Registry of each pair (column spacings, [-1/2, 1/2)).
    half_window : int
        Pairs on either side.
    max_gap_nm : float
        Largest gap along the layer inside one averaging run.

    Returns
    -------
    numpy.ndarray
        The smoothed registry, in [-1/2, 1/2), in input order.
    """
    return running_mean_along_layers(u_nm, layer, registry, half_window=half_window, max_gap_nm=max_gap_nm,
                                     circular=True)


def lattice_positions(u_nm: np.ndarray, v_nm: np.ndarray, layer: np.ndarray, *, inplane_spacing_nm: float,
                      half_window: int = 3, max_gap_nm: float) -> tuple[np.ndarray, np.ndarray]:
    """Column positions smoothed onto the local lattice of their layer.

    Each column moves to the running mean, over ``2 half_window + 1`` columns of its layer, of the
    row's lateral phase (``u`` modulo the column spacing) and of ``v``: the lattice site it sits
    on, with the position noise of one column divided by about ``sqrt(2 half_window + 1)``. Used
    to measure intensities where the lattice puts the columns (a fixed-position estimator at a
    noisy detected maximum is biased upwards at low dose, one at a noisy site downwards).

    Parameters
    ----------
    u_nm, v_nm : numpy.ndarray
        Column coordinates along and across the layers, nm.
    layer : numpy.ndarray of int
        Layer of each column.
    inplane_spacing_nm : float
        Column spacing along the layers, nm.
    half_window : int
        Columns on either side.
    max_gap_nm : float
        Largest gap along the layer inside one averaging run.

    Returns
    -------
    u_nm, v_nm : numpy.ndarray
        Smoothed coordinates, in input order.
    """
    u = np.asarray(u_nm, dtype=float)
    phase = u / inplane_spacing_nm
    kw = dict(half_window=half_window, max_gap_nm=max_gap_nm)
    mean_phase = running_mean_along_layers(u, layer, phase, circular=True, **kw)
    u_s = u + inplane_spacing_nm * wrap_half(mean_phase - phase)
    v_s = running_mean_along_layers(u, layer, v_nm, **kw)
    return u_s, v_s
