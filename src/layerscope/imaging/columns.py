"""Atom-column finding: detection at the lattice's scale, then vectorised sub-pixel refinement.

Detection follows the usual matched-filter recipe for HAADF-STEM images (smooth with a Gaussian of
the column's width, subtract the local background, keep local maxima that stand out of the noise and
out of their neighbourhood); refinement fits an isotropic 2-D Gaussian plus a constant background to
every column **at once** by batched Levenberg-Marquardt in NumPy.  Each column is fitted only on
the pixels of its own Voronoi cell (the pixels closer to it than to any other detected column), so a
neighbour's tail does not pull the fit, which is what Atomap achieves by fitting neighbours together.

References
----------
- D. M. Bates and D. G. Watts, *Nonlinear Regression Analysis and Its Applications*, Wiley (1988),
  ch. 2 (Gauss-Newton) and K. Levenberg (1944) / D. Marquardt (1963) for the damping.
- M. Nord et al., "Atomap: a new software tool for the automated analysis of atomic resolution
  images using two-dimensional Gaussian fitting", Adv. Struct. Chem. Imaging 3, 9 (2017).
- S. Van Aert et al., "Quantitative atomic resolution mapping using high-angle annular dark field
  scanning transmission electron microscopy", Ultramicroscopy 109, 1236 (2009), for the use of
  the fitted column volume as the column intensity.

Speed switches: :data:`JOINT_THREADS` (threads over the row parts of :func:`refine_jointly` and of the joint
heights, and over the strips of the residual pass's blurs and level; 1: one after another) and
:data:`JOINT_PART_ROWS` (rows per part; 128 since imgspeed4, session 39: cache-sized, on one thread too);
imgspeed4's :data:`LEVEL_STRIPS` (on: the residual pass's level in strips on those threads);
imgspeed2's :data:`JOINT_SHARED` (on: the joint fit's heights hand their Gaussians to the same round's centre
steps); the numbers do not depend on them. imgspeed3's answer-changing cuts, each measured
(docs/validation.md "imgspeed3"): :data:`JOINT_REACH_WIDTHS` (the joint fit's sources within that many widths) and
:data:`RESIDUAL_REACH_WIDTHS` (the residual pass's heights' sources within that many widths), both on, and
:data:`JOINT_STEPS` (the joint fit's Gauss-Newton steps a round).

Coordinates: ``x_nm = (col + 0.5) * pixel_size_nm``, ``y_nm = (row + 0.5) * pixel_size_nm`` for
the centre of pixel ``(row, col)`` (see ``docs/conventions.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import ndimage

from layerscope.errors import InputError
from layerscope import linalg as robust_linalg

__all__ = [
    "DetectionResult",
    "detect_columns",
    "refine_columns",
    "refine_jointly",
    "site_intensities",
    "find_columns",
    "estimate_noise",
    "SPARSE_COUNT_SHARE",
    "is_count_image",
    "resolving_sigma",
    "resolving_maxima",
    "FirstPass",
    "fit_detected",
    "lattice_columns",
    "residual_columns",
    "as_float_image",
    "disc_offsets",
    "gather_windows",
    "image_pixel_noise",
]

#: Columns are fitted in blocks of this many at once (bounds the memory of the batched Jacobian).
_BLOCK = 2048


@dataclass(frozen=True)
class DetectionResult:
    """Integer peak positions and the quantities they were selected on.

    Attributes
    ----------
    rows, cols : numpy.ndarray of int
        Pixel indices of the detected maxima.
    contrast : numpy.ndarray of float
        Matched-filtered peak height above the local background (image units).
    noise : float
        Standard deviation of the noise in the matched-filtered image (image units).
    reference_contrast : numpy.ndarray of float
        The local reference contrast (brightest columns nearby) each peak was compared with.
    resolved : numpy.ndarray of bool or None
        True for a peak added by the resolving pass (``resolve_sigma_nm``); None without that pass.
    neighbour : numpy.ndarray of bool or None
        True for a dim peak kept by the lattice-neighbour test (``neighbour_nm``); None without it.
    first_pass : FirstPass or None
        The first pass's maps, for :func:`resolving_maxima` (None where no maximum passed the noise test).
    """

    rows: np.ndarray
    cols: np.ndarray
    contrast: np.ndarray
    noise: float
    reference_contrast: np.ndarray
    resolved: np.ndarray | None = None
    neighbour: np.ndarray | None = None
    first_pass: FirstPass | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class FirstPass:
    """The maps of :func:`detect_columns`' first pass, for a resolving pass on the same image later
    (:func:`resolving_maxima`) without filtering the image and reading its noise and maxima again.

    Attributes
    ----------
    data, filtered : numpy.ndarray
        The detection image (float64) and its matched-filtered image (image units).
    bg, reference : numpy.ndarray
        Local background and local reference contrast on the coarse grid of ``f`` pixels (image units).
    kept : numpy.ndarray of int, shape (n, 2)
        Rows and columns (pixels) of the maxima kept by the noise and relative tests, **before** the
        lattice-neighbour test (``neighbour_nm``): the set a resolving pass without it measures distances to.
    pixel_size_nm, column_sigma_nm, sep_px : float
        The call's pixel size and matched-filter width (nm), and ``min_separation_nm`` in pixels.
    f, min_distance : int
        Coarse grid step and half-width of the local-maximum window (pixels).
    threshold, relative_threshold, floor : float
        The noise margin (image units), the relative test's share and the reference's floor (image units).
    """

    data: np.ndarray
    filtered: np.ndarray
    bg: np.ndarray
    reference: np.ndarray
    kept: np.ndarray
    pixel_size_nm: float
    column_sigma_nm: float
    sep_px: float
    f: int
    min_distance: int
    threshold: float
    relative_threshold: float
    floor: float


def as_float_image(image: np.ndarray, what: str = "image") -> np.ndarray:
    """``image`` as a 2-D float64 array; a colour, non-2-D, non-numeric or non-finite one is refused
    (:class:`InputError`, one line naming ``what`` and the fix)."""
    data = np.asarray(image)
    if data.ndim == 3 and data.shape[-1] in (3, 4):
        raise InputError(
            f"{what} is a colour (RGB/RGBA) image of shape {data.shape}; HAADF analysis needs the raw "
            f"single-channel detector signal: export the original greyscale data (TIFF/dm4/emd/ser)"
        )
    if data.ndim != 2:
        raise InputError(f"{what} must be a 2-D array, got shape {data.shape}; select one frame/channel")
    if data.dtype.kind not in "biuf":
        raise InputError(f"{what} has data type {data.dtype}; give real numbers (counts or intensities)")
    out = data.astype(np.float64, copy=False)
    # A finite sum has no NaN or inf in it (one pass, 3x faster); an overflowing one is checked pixel by pixel.
    if not np.isfinite(out.sum()) and not np.all(np.isfinite(out)):
        raise InputError(f"{what} contains NaN or infinite values; mask or interpolate them first")
    return out


#: On sparse counts (:func:`estimate_noise` gives their Poisson spread) :func:`detect_columns` asks for
#: this share of ``noise_sigmas`` (2 of 5 standard deviations): a column at the thinned rim of a
#: hand-made 1e3 e/A^2 scene (0.03 counts a pixel) stands only 2-2.5 spreads out of the filtered noise
#: (0.5 loses some: tests/imaging/test_fill_gaps.py), noise maxima in the sparse vacuum of random
#: draws 1.5-3.3 (docs/validation.md, 2026-12-04); those alone in vacuum need the full margin
#: (:func:`_beside_significant`, imgrecall5).
SPARSE_COUNT_SHARE = 0.4

#: :func:`detect_columns`: the local reference is the brightest columns within this many separations.
REFERENCE_SEPARATIONS = 2.2
#: :func:`_beside_significant`: on sparse counts a maximum below the full noise margin needs a column above
#: it within this many separations (twice the reference's reach): the columns of a rim thinned to zero over
#: 1-1.5 nm lie up to ~1 nm from one (tests/imaging/test_fill_gaps.py, mixed O3 at a surface, 1e3 e/A^2: rim
#: fill 1.0 at 4.4, 0.97 at 3.3, 0.82 at 2.2); noise maxima in vacuum lay 0.6-1.6 nm from every column.
ANCHOR_SEPARATIONS = 4.4

#: Pixels per block of :func:`is_count_image` (2 MiB of float64: the block's temporaries stay in cache).
_COUNT_BLOCK = 1 << 18


def is_count_image(image: np.ndarray) -> bool:
    """True for a non-negative integer-valued image (detected electrons): Poisson noise.

    Its finite pixels must be >= 0, not all 0, and whole numbers (NaN and inf are ignored). Read
    block by block in the image's own float or integer type (no float64 copy of the image: 4x
    faster on a 2048² image; a float32 value is a whole number exactly when its float64 is).
    """
    data = np.asarray(image)
    if data.dtype.kind in "iu":
        return bool(data.size and data.min() >= 0 and data.max() > 0)
    if data.dtype.kind != "f":
        data = np.asarray(data, dtype=float)
    flat = data.reshape(-1)
    lo, hi = np.inf, -np.inf
    for start in range(0, flat.size, _COUNT_BLOCK):
        block = flat[start:start + _COUNT_BLOCK]
        finite = np.isfinite(block)
        if not finite.all():
            block = block[finite]
        if block.size == 0:
            continue
        lo, hi = min(lo, block.min()), max(hi, block.max())
        if lo < 0 or not np.array_equal(block, np.rint(block)):
            return False
    return bool(hi > 0)


def estimate_noise(image: np.ndarray) -> float:
    """Standard deviation of the pixel noise, from the differences of neighbouring pixels.

    Uses the robust (MAD) spread of the difference between horizontally adjacent pixels in the
    image with its smooth part removed, divided by sqrt(2); independent of a smooth signal.

    Parameters
    ----------
    image : numpy.ndarray
        2-D image.

    Returns
    -------
    float
        Noise standard deviation in image units (0 for a noise-free image).

    Notes
    -----
    On sparse counts (:func:`is_count_image`, below ~0.4 counts a pixel, or an image mostly of
    empty vacuum) more than half the second differences are equal and their MAD is 0: the noise is
    then the Poisson spread of the counts themselves, ``sqrt(mean count)`` (the root-mean-square
    of ``sqrt(lambda)`` over the pixels, with no part of the signal's curvature in it). Above it the
    MAD of whole numbers is quantised and reads low (0.7x the Poisson spread at 3 counts a pixel,
    0.55x at 4.7; docs/validation.md), the reading the detection thresholds were tuned with.

    References
    ----------
    J. Immerkaer, "Fast noise variance estimation", Comput. Vis. Image Underst. 64, 300 (1996)
    (same idea, with a different difference operator).
    """
    return image_pixel_noise(as_float_image(image))[0]


def image_pixel_noise(data: np.ndarray) -> tuple[float, bool]:
    """:func:`estimate_noise` of a float image, and whether it is the Poisson spread of sparse counts."""
    step = max(1, data.shape[0] // 512)  # a subset of rows is plenty for a robust spread
    sub = data[::step]
    # Second differences cancel a locally linear signal; white noise of variance v gives 6 v.
    d2 = sub[:, 2:] - 2.0 * sub[:, 1:-1] + sub[:, :-2]
    mad = np.median(np.abs(d2 - np.median(d2)))
    if mad == 0 and is_count_image(data):
        return float(np.sqrt(data.mean())), True
    return float(1.4826 * mad / np.sqrt(6.0)), False


#: :func:`local_maxima` compares at most this many window pixels per image pixel; more candidates
#: (plateaus: a noise-free vacuum, a saturated or flat region) go to SciPy's maximum filter.
_MAX_WINDOW_READS = 2.0


def local_maxima(values: np.ndarray, size: int) -> np.ndarray:
    """``scipy.ndimage.maximum_filter(values, size=size) == values``, the same mask, 2-3x faster.

    The pixels not below their four nearest neighbours (the few thousand column peaks of a
    smoothed image) are the only candidates; each is compared with its whole ``size`` x ``size``
    window, clipped at the image edge (a maximum over the ``"nearest"``, ``"reflect"`` or
    ``"mirror"`` extension of SciPy is the maximum over the clipped window). Finite values only.
    """
    a = np.asarray(values)
    if a.ndim != 2 or size < 3 or size % 2 == 0 or min(a.shape) < 2:
        return ndimage.maximum_filter(a, size=size) == a
    h = size // 2
    n, w = a.shape
    rising = a[:, 1:] >= a[:, :-1]  # not below the left neighbour
    cand = np.ones(a.shape, dtype=bool)
    cand[:, 1:] = rising
    cand[:, :-1] &= a[:, :-1] >= a[:, 1:]
    rows, cols = np.nonzero(cand)
    v = a[rows, cols]
    up = (v >= a[np.maximum(rows - 1, 0), cols]) & (v >= a[np.minimum(rows + 1, n - 1), cols])
    rows, cols, v = rows[up], cols[up], v[up]
    if rows.size * size * size > _MAX_WINDOW_READS * a.size:
        return ndimage.maximum_filter(a, size=size) == a
    window_cols = np.clip(cols[:, None] + np.arange(-h, h + 1), 0, w - 1)
    keep = np.ones(rows.size, dtype=bool)
    for dr in range(-h, h + 1):
        keep &= (a[np.clip(rows + dr, 0, n - 1)[:, None], window_cols] <= v[:, None]).all(axis=1)
    out = np.zeros(a.shape, dtype=bool)
    out[rows[keep], cols[keep]] = True
    return out


def _block_min(values: np.ndarray, factor: int) -> np.ndarray:
    """Minimum of each factor x factor block, a partial last block's minimum taken over its own pixels:
    ``skimage.measure.block_reduce(values, (factor, factor), np.min, cval=values.max())``, 4x faster
    (strided minima). skimage's default padding with 0 made the last blocks' minima 0 (an image with a
    detector offset lost the columns of its last rows and columns, docs/validation.md). The partial
    blocks are not padded (a copy of the image): offset ``k`` of the last block exists or not, and the
    image maximum as padding never lowered a minimum."""
    cols = values[:, 0::factor].copy()
    for k in range(1, factor):
        part = values[:, k::factor]
        np.minimum(cols[:, :part.shape[1]], part, out=cols[:, :part.shape[1]])
    out = cols[0::factor].copy()
    for k in range(1, factor):
        part = cols[k::factor]
        np.minimum(out[:part.shape[0]], part, out=out[:part.shape[0]])
    return out


def detect_columns(
    image: np.ndarray,
    *,
    pixel_size_nm: float,
    min_separation_nm: float,
    column_sigma_nm: float,
    relative_threshold: float = 0.3,
    noise_sigmas: float = 5.0,
    vacuum_floor: float = 0.25,
    resolve_sigma_nm: float | None = None,
    neighbour_nm: float | None = None,
) -> DetectionResult:
    """Detect atom columns as significant local maxima of the matched-filtered image.

    Parameters
    ----------
    image : numpy.ndarray
        2-D image (counts or any linear intensity).
    pixel_size_nm : float
        Pixel size in nm.
    min_separation_nm : float
        The smallest distance between two columns to be resolved, in nm (the in-plane column
        spacing or the cation-row spacing, whichever is smaller, from the lattice).
    column_sigma_nm : float
        Gaussian width (standard deviation) of a column image, in nm; sets the matched filter.
    relative_threshold : float
        A peak is kept when its contrast is at least this fraction of the local reference contrast
        (the brightest columns within about two separations). 0.3 keeps TM columns at any local
        thickness and drops O columns (5-8 % of a TM column in HAADF).
    noise_sigmas : float
        A peak must also exceed this many standard deviations of the filtered noise
        (:data:`SPARSE_COUNT_SHARE` times as many on sparse counts, see :func:`estimate_noise`, for a
        peak within :data:`ANCHOR_SEPARATIONS` of one above the full margin: :func:`_beside_significant`).
    vacuum_floor : float
        The local reference is at least this fraction of the image's 90th-percentile peak contrast,
        so that noise in vacuum far from any column is not taken for columns.
    resolve_sigma_nm : float, optional
        A second, resolving pass (:func:`_resolving_pass`): the local maxima of the image smoothed
        by this narrower Gaussian (nm) that lie at least half ``min_separation_nm`` from every
        column of the first pass are added where the matched-filtered image there passes the same
        two tests (noise and relative contrast). For wide columns (a defocused probe) whose
        matched-filtered images merge into ridges along dense rows: see
        :func:`resolving_sigma`.
    neighbour_nm : float, optional
        The lattice's nearest-neighbour distance (nm). With it, a peak below ``relative_threshold``
        is kept where it is a dim column on the lattice (:func:`_neighbour_pass`): at least
        :data:`NEIGHBOUR_SHARE` of the relative threshold, :data:`NEIGHBOUR_SIGMAS` times the noise
        margin, and one neighbour distance (:data:`NEIGHBOUR_BAND`) from the nearest kept column.

    Returns
    -------
    DetectionResult
        Integer positions and the selection quantities.
    """
    data = as_float_image(image)
    if pixel_size_nm <= 0 or min_separation_nm <= 0 or column_sigma_nm <= 0:
        raise InputError(
            f"pixel_size_nm ({pixel_size_nm}), min_separation_nm ({min_separation_nm}) and column_sigma_nm "
            f"({column_sigma_nm}) must all be positive"
        )
    sep_px = min_separation_nm / pixel_size_nm
    sig_px = column_sigma_nm / pixel_size_nm
    if sep_px < 3.0:
        raise InputError(
            f"columns {min_separation_nm:.3f} nm apart are only {sep_px:.1f} pixels apart at "
            f"{pixel_size_nm} nm/pixel; atomic columns cannot be located: use an image with a pixel size "
            f"below {min_separation_nm / 3:.4f} nm"
        )
    filtered = ndimage.gaussian_filter(data, sig_px, mode="nearest")
    # Noise of a Gaussian-filtered white-noise image: sigma / (2 sqrt(pi) s).
    pixel_noise, sparse_counts = image_pixel_noise(data)
    noise = pixel_noise / (2.0 * np.sqrt(np.pi) * max(sig_px, 0.5))
    # Sparse counts: their Poisson spread, with a smaller margin (SPARSE_COUNT_SHARE) beside columns.
    full_margin = noise_sigmas * noise
    noise_sigmas = noise_sigmas * (SPARSE_COUNT_SHARE if sparse_counts else 1.0)
    min_distance = max(1, int(np.floor(0.45 * sep_px)))
    rows, cols = np.nonzero(local_maxima(filtered, 2 * min_distance + 1))
    # Smooth maps (local background, local reference) are computed on a grid coarser by about a
    # quarter separation and read at the maxima: they vary on the scale of several columns.
    f = max(1, int(sep_px // 4))
    coarse = _block_min(filtered, f)
    half = max(1, int(round(sep_px / f)))
    bg = ndimage.uniform_filter(ndimage.minimum_filter(coarse, size=2 * half + 1, mode="nearest"),
                                size=2 * half + 1, mode="nearest")
    rc = np.minimum(rows // f, bg.shape[0] - 1)
    cc = np.minimum(cols // f, bg.shape[1] - 1)
    peak_contrast = filtered[rows, cols] - bg[rc, cc]
    sig = peak_contrast > noise_sigmas * noise
    rows, cols, rc, cc, peak_contrast = rows[sig], cols[sig], rc[sig], cc[sig], peak_contrast[sig]
    if rows.size == 0:
        empty = np.empty(0)
        return DetectionResult(rows.astype(int), cols.astype(int), empty, noise, empty)
    # Local reference: the brightest columns within ~2.2 separations, smoothed.
    peak_map = np.zeros(bg.shape)
    np.maximum.at(peak_map, (rc, cc), peak_contrast)
    ref_half = max(1, int(round(REFERENCE_SEPARATIONS * sep_px / f)))
    reference = ndimage.uniform_filter(
        ndimage.maximum_filter(peak_map, size=2 * ref_half + 1, mode="constant"), size=2 * ref_half + 1,
        mode="nearest",
    )
    # A floor from the whole image keeps noise maxima in vacuum (whose neighbourhood holds only
    # noise) out, while a thin region's columns at a tenth of the thickest still pass.
    floor = vacuum_floor * np.percentile(peak_contrast, 90)
    ref = np.maximum(reference[rc, cc], floor)
    keep = peak_contrast >= relative_threshold * ref
    if sparse_counts:
        keep = _beside_significant(rows, cols, peak_contrast, keep, margin=full_margin,
                                   radius_px=ANCHOR_SEPARATIONS * sep_px)
    first = FirstPass(data, filtered, bg, reference, np.column_stack([rows[keep], cols[keep]]),
                      pixel_size_nm=pixel_size_nm, column_sigma_nm=column_sigma_nm, sep_px=sep_px, f=f,
                      min_distance=min_distance, threshold=noise_sigmas * noise, relative_threshold=relative_threshold,
                      floor=floor)
    neighbour = None
    if neighbour_nm is not None and neighbour_nm > 0 and keep.any():
        neighbour = _neighbour_pass(rows, cols, peak_contrast, ref, keep, neighbour_px=neighbour_nm / pixel_size_nm,
                                    threshold=NEIGHBOUR_SIGMAS * noise_sigmas * noise,
                                    relative_threshold=NEIGHBOUR_SHARE * relative_threshold)
        keep = keep | neighbour
    resolved = None if resolve_sigma_nm is None else np.zeros(rows.size, dtype=bool)
    if resolve_sigma_nm is not None and resolve_sigma_nm < column_sigma_nm and keep.any():
        extra = _resolving_pass(data, filtered, bg, reference, np.column_stack([rows[keep], cols[keep]]),
                                sigma_px=resolve_sigma_nm / pixel_size_nm, f=f, min_distance=min_distance,
                                far_px=0.5 * sep_px, threshold=noise_sigmas * noise,
                                relative_threshold=relative_threshold, floor=floor,
                                neighbour_px=None if neighbour is None else neighbour_nm / pixel_size_nm)
        rows, cols = np.concatenate([rows, extra[0]]), np.concatenate([cols, extra[1]])
        peak_contrast, ref = np.concatenate([peak_contrast, extra[2]]), np.concatenate([ref, extra[3]])
        keep = np.concatenate([keep, np.ones(extra[0].size, dtype=bool)])
        resolved = np.concatenate([resolved, np.ones(extra[0].size, dtype=bool)])
        neighbour = None if neighbour is None else np.concatenate([neighbour, np.zeros(extra[0].size, dtype=bool)])
    # Plateaus (flat maxima in a noise-free image) give several equal maxima; keep one per plateau.
    rows, cols, peak_contrast, ref = rows[keep], cols[keep], peak_contrast[keep], ref[keep]
    if rows.size:
        one = _unique_within(rows, cols, peak_contrast, min_distance)
        rows, cols, peak_contrast, ref = rows[one], cols[one], peak_contrast[one], ref[one]
        resolved = None if resolved is None else resolved[keep][one]
        neighbour = None if neighbour is None else neighbour[keep][one]
    return DetectionResult(rows, cols, peak_contrast, noise, ref, resolved, neighbour, first)


def resolving_maxima(first: FirstPass | None, resolve_sigma_nm: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns (pixels) of the maxima a resolving pass of width ``resolve_sigma_nm`` adds to a first pass.

    ``first``: :attr:`DetectionResult.first_pass` of a :func:`detect_columns` call. The maxima, in
    their order, of ``detect_columns(...).resolved`` for the same image and arguments with
    ``resolve_sigma_nm`` and without ``neighbour_nm``, whatever ``neighbour_nm`` the first call had:
    the distance test counts the columns kept before the lattice-neighbour test (:attr:`FirstPass.kept`),
    and a dim maximum between them is not added (:func:`_resolving_pass` without ``neighbour_px``). The
    first pass's filtering, noise, maxima and maps are not made again (~0.5 s CPU at 2048², issue 19).
    """
    none = (np.empty(0, int), np.empty(0, int))
    if first is None or not resolve_sigma_nm < first.column_sigma_nm or first.kept.size == 0:
        return none
    rows, cols, _, _ = _resolving_pass(first.data, first.filtered, first.bg, first.reference, first.kept,
                                       sigma_px=resolve_sigma_nm / first.pixel_size_nm, f=first.f,
                                       min_distance=first.min_distance, far_px=0.5 * first.sep_px,
                                       threshold=first.threshold, relative_threshold=first.relative_threshold,
                                       floor=first.floor)
    return rows, cols


def _beside_significant(rows, cols, contrast, keep, *, margin, radius_px) -> np.ndarray:
    """Sparse counts: the peaks of ``keep`` that pass the full noise ``margin`` or lie within ``radius_px`` of one.

    The margin lowered to :data:`SPARSE_COUNT_SHARE` is for columns beside the crystal (a thinned rim,
    2-2.5 spreads out of the noise); a maximum below the full margin with no column above it within
    :data:`ANCHOR_SEPARATIONS` stands alone in vacuum or a void, where the many noise maxima of the
    Poisson counts reach 2-4 spreads (random draws 47, 87, 94: docs/validation.md, imgrecall5).
    Only peaks above the full margin vouch (no chains into the noise); with none, ``keep`` is returned.
    """
    from scipy.spatial import cKDTree

    strong = keep & (contrast > margin)
    weak = keep & ~strong
    if not weak.any() or not strong.any():  # nothing to anchor the lowered margin to: as before
        return keep
    dist, _ = cKDTree(np.column_stack([rows[strong], cols[strong]]).astype(float)).query(
        np.column_stack([rows[weak], cols[weak]]).astype(float))
    out = strong.copy()
    out[np.flatnonzero(weak)[dist <= radius_px]] = True
    return out


#: :func:`_neighbour_pass`: a dim peak must reach this share of ``relative_threshold`` (0.2 of the local
#: reference at the default 0.3). Random draws 0-99 (docs/validation.md, recall4): the maxima of visible
#: half-occupied columns (spinel Li-layer TM, 0.4-0.5 of a TM column) read 0.21-0.30 of the reference;
#: below 0.2 the maxima one neighbour distance from a column are mostly O columns and noise.
NEIGHBOUR_SHARE = 2.0 / 3.0
#: Callers apply the lattice-neighbour test only at a relative threshold up to this (the default): a user
#: who raises the threshold selects columns by brightness (only the A sites of a perovskite, the bright rows
#: of tests/imaging/test_wiring_imaging.py) and wants no dimmer column back.
NEIGHBOUR_MAX_THRESHOLD = 0.3
#: :func:`_neighbour_pass`: a dim peak must stand this many times the noise margin out of the noise.
NEIGHBOUR_SIGMAS = 1.5
#: :func:`_neighbour_pass`: distance (in neighbour distances) from a dim peak to the nearest kept column.
#: Dim maxima on visible or mixed columns lay 0.8-1.2 from it; O columns 0.5-0.8 (beside a cation
#: column), noise in vacuum and voids beyond 1.2.
NEIGHBOUR_BAND = (0.8, 1.2)


def _neighbour_pass(rows, cols, contrast, ref, keep, *, neighbour_px, threshold, relative_threshold) -> np.ndarray:
    """Peaks that fail the relative test but are dim columns of the lattice: a boolean mask over the peaks.

    A peak not in ``keep`` counts when its contrast exceeds ``threshold`` (image units) and
    ``relative_threshold`` of its local reference ``ref``, and the nearest kept peak lies within
    :data:`NEIGHBOUR_BAND` x ``neighbour_px`` (pixels): a column where the lattice puts one, one
    neighbour distance from a bright column, not a shoulder of one (an O column, a probe tail) nor a
    noise maximum in vacuum. Only first-pass columns vouch for a dim one (no chains into the noise).
    """
    from scipy.spatial import cKDTree

    cand = ~keep & (contrast > threshold) & (contrast >= relative_threshold * ref)
    out = np.zeros(keep.size, dtype=bool)
    if not cand.any():
        return out
    kept = np.column_stack([rows[keep], cols[keep]]).astype(float)
    dist, _ = cKDTree(kept).query(np.column_stack([rows[cand], cols[cand]]).astype(float))
    lo, hi = NEIGHBOUR_BAND
    out[np.flatnonzero(cand)[(dist >= lo * neighbour_px) & (dist <= hi * neighbour_px)]] = True
    return out


#: :func:`resolving_sigma`: the matched-filtered column image (width ``sqrt(2) s`` for a column of
#: width ``s``) merges neighbours into a ridge when it is wider than this share of their distance.
RESOLVE_SHARE = 0.25
#: :func:`resolving_sigma`: the resolving filter is at least this share of the column width.
RESOLVE_MIN = 0.5


def resolving_sigma(column_sigma_nm: float, nn_distance_nm: float, filter_sigma_nm: float | None = None) -> float | None:
    """Width (nm) of the resolving pass of :func:`detect_columns` for columns this wide and this close; None if not needed.

    A Gaussian filter of width ``f`` (``filter_sigma_nm``, by default the column's width ``s``: the
    matched filter) widens a Gaussian column image to ``sqrt(s^2 + f^2)`` (``sqrt(2) s`` for the
    matched filter). Where that exceeds :data:`RESOLVE_SHARE` of the nearest-neighbour distance, the
    columns of a dense row merge into a ridge whose maxima noise moves or erases (random draws
    34, 56, 75, 79: 0.15 nm probes, ``s`` = 0.053-0.060 nm, 0.24 nm apart; 3-17 % of the visible
    columns with no maximum within 0.07 nm); the resolving filter keeps the combined width
    ``sqrt(s^2 + f^2)`` at that share (at least :data:`RESOLVE_MIN` ``s``). Narrow probes
    (``sqrt(2) s`` at 0.14-0.18 of the distance) need none.
    """
    if not (np.isfinite(column_sigma_nm) and np.isfinite(nn_distance_nm)) or column_sigma_nm <= 0:
        return None
    target = RESOLVE_SHARE * nn_distance_nm
    f = column_sigma_nm if filter_sigma_nm is None else filter_sigma_nm
    if np.hypot(column_sigma_nm, f) <= target:
        return None
    return float(max(RESOLVE_MIN * column_sigma_nm, np.sqrt(max(target**2 - column_sigma_nm**2, 0.0))))


def _resolving_pass(data, filtered, bg, reference, kept, *, sigma_px, f, min_distance, far_px, threshold,
                    relative_threshold, floor, neighbour_px=None):
    """Maxima of the image smoothed by ``sigma_px`` (< the matched filter) that the first pass lacks.

    A maximum at least ``far_px`` from every kept first-pass maximum (``kept``: rows, cols) is
    added when the matched-filtered image ``filtered`` at its pixel stands above the local
    background ``bg`` by the first pass's noise ``threshold`` and by ``relative_threshold`` of its
    local ``reference`` (at least ``floor``): the evidence is the first pass's own, only the
    position comes from the sharper image. With ``neighbour_px`` (the lattice's nearest-neighbour
    distance, pixels) a maximum at :data:`NEIGHBOUR_SHARE` of the relative test is added too where
    its two nearest kept columns both lie one neighbour distance (:data:`NEIGHBOUR_BAND`) away: a dim
    column between bright ones, whose matched-filtered contrast the merged ridge of a wide probe
    lowers (random draws 34, 75: docs/validation.md, imgrecall5). Returns rows, cols, contrast, reference.
    """
    from scipy.spatial import cKDTree

    sharp = ndimage.gaussian_filter(data, max(sigma_px, 0.5), mode="nearest")
    rows, cols = np.nonzero(local_maxima(sharp, 2 * min_distance + 1))
    empty = (np.empty(0, int), np.empty(0, int), np.empty(0), np.empty(0))
    if rows.size == 0:
        return empty
    dist, _ = cKDTree(kept.astype(float)).query(np.column_stack([rows, cols]).astype(float))
    far = dist >= far_px
    rows, cols = rows[far], cols[far]
    rc, cc = np.minimum(rows // f, bg.shape[0] - 1), np.minimum(cols // f, bg.shape[1] - 1)
    contrast = filtered[rows, cols] - bg[rc, cc]
    ref = np.maximum(reference[rc, cc], floor)
    ok = (contrast > threshold) & (contrast >= relative_threshold * ref)
    if neighbour_px is not None:
        dim = ~ok & (contrast > threshold) & (contrast >= NEIGHBOUR_SHARE * relative_threshold * ref)
        ok |= dim & _between_kept(rows, cols, kept, neighbour_px)
    if not ok.any():
        return empty
    # two sharp maxima closer than half a separation are one column: the stronger stays
    rows, cols, contrast, ref = rows[ok], cols[ok], contrast[ok], ref[ok]
    one = _unique_within(rows, cols, contrast, far_px)
    return rows[one].astype(int), cols[one].astype(int), contrast[one], ref[one]


def _between_kept(rows, cols, kept, neighbour_px) -> np.ndarray:
    """True where the two nearest ``kept`` columns (rows, cols) both lie :data:`NEIGHBOUR_BAND` x ``neighbour_px`` away."""
    from scipy.spatial import cKDTree

    if rows.size == 0 or len(kept) < 2:
        return np.zeros(rows.size, dtype=bool)
    dist, _ = cKDTree(kept.astype(float)).query(np.column_stack([rows, cols]).astype(float), k=2)
    lo, hi = NEIGHBOUR_BAND
    return np.all((dist >= lo * neighbour_px) & (dist <= hi * neighbour_px), axis=1)


def _unique_within(rows, cols, values, distance) -> np.ndarray:
    """Indices of the maxima kept when of those closer than ``distance`` pixels only the strongest stays
    (plateaus of equal values), strongest first."""
    from scipy.spatial import cKDTree

    order = np.argsort(-values, kind="stable")
    tree = cKDTree(np.column_stack([rows[order], cols[order]]).astype(float))
    pairs = tree.query_pairs(distance, output_type="ndarray")
    if pairs.size == 0:
        return order
    drop = np.zeros(rows.size, dtype=bool)
    # pairs are (i, j) with i < j: i is the stronger (earlier in the sorted order) one.
    pairs = pairs[np.argsort(pairs[:, 0], kind="stable")]
    for i, j in pairs:  # only plateau duplicates: a handful of pairs
        if not drop[i]:
            drop[j] = True
    return order[~drop]


#: :func:`_lattice_vectors`: a neighbour vector (up to :data:`LATTICE_REACH` neighbour distances) is one of the
#: image's own when at least this share of the columns have it, within :data:`LATTICE_TOLERANCE`.
LATTICE_VECTOR_SHARE = 0.02
#: :func:`_lattice_vectors`: the longest neighbour vector read, in neighbour distances.
LATTICE_REACH = 1.3
#: :func:`_lattice_sites`: vectors and predictions agree within this many neighbour distances.
LATTICE_TOLERANCE = 0.15
#: :func:`_lattice_sites`: a predicted site needs this many detected columns that predict it.
LATTICE_VOTES = 2


def _lattice_vectors(xy: np.ndarray, neighbour_px: float) -> np.ndarray:
    """The image's own neighbour vectors (k, 2) in pixels: the modes of the vectors from every column to its
    neighbours within :data:`LATTICE_REACH` x ``neighbour_px`` held by :data:`LATTICE_VECTOR_SHARE` of the columns.

    A 2-D histogram of the vectors in bins of half :data:`LATTICE_TOLERANCE`; each bin that is a local maximum
    of the 3 x 3-summed counts gives the mean of the vectors within the tolerance of its centre. The translation
    vectors and the basis vectors of the columns the image shows (e.g. a TM column to the Li-layer column
    beside it, where some are seen), measured, not assumed.
    """
    from scipy.spatial import cKDTree

    if len(xy) < 8:
        return np.empty((0, 2))
    dist, idx = cKDTree(xy).query(xy, k=7)
    near = (dist[:, 1:] > 0) & (dist[:, 1:] <= LATTICE_REACH * neighbour_px)
    vec = (xy[np.minimum(idx[:, 1:], len(xy) - 1)] - xy[:, None, :])[near]
    tol = LATTICE_TOLERANCE * neighbour_px
    edges = np.arange(-LATTICE_REACH * neighbour_px - tol, LATTICE_REACH * neighbour_px + tol, 0.5 * tol)
    counts, _, _ = np.histogram2d(vec[:, 0], vec[:, 1], bins=[edges, edges])
    summed = ndimage.uniform_filter(counts, size=3, mode="constant") * 9.0
    peaks = np.argwhere((ndimage.maximum_filter(summed, size=3, mode="constant") == summed)
                        & (summed >= LATTICE_VECTOR_SHARE * len(xy)))
    centre = 0.5 * (edges[:-1] + edges[1:])
    out = []
    for i, j in peaks:
        member = np.hypot(vec[:, 0] - centre[i], vec[:, 1] - centre[j]) <= tol
        v = vec[member].mean(axis=0)
        if not any(np.hypot(*(v - w)) <= tol for w in out):
            out.append(v)
    return np.array(out).reshape(-1, 2)


def _lattice_sites(xy: np.ndarray, vectors: np.ndarray, *, far_px: float, tol_px: float,
                   every: np.ndarray | None = None) -> np.ndarray:
    """Predicted sites (m, 2), pixels: column ``xy`` + vector at least ``far_px`` from every column (``every``,
    default ``xy``), where :data:`LATTICE_VOTES` columns predict the same place within ``tol_px`` (the mean of
    their predictions)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    if len(vectors) == 0 or len(xy) == 0:
        return np.empty((0, 2))
    pred = (xy[:, None, :] + vectors[None]).reshape(-1, 2)
    src = np.repeat(np.arange(len(xy)), len(vectors))
    gap = cKDTree(xy if every is None else every).query(pred)[0] >= far_px
    pred, src = pred[gap], src[gap]
    if len(pred) < LATTICE_VOTES:
        return np.empty((0, 2))
    pairs = cKDTree(pred).query_pairs(tol_px, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(pred), len(pred)))
    _, label = connected_components(graph, directed=False)
    n = label.max() + 1
    votes = np.bincount(np.unique(np.column_stack([label, src]), axis=0)[:, 0], minlength=n)
    size = np.bincount(label, minlength=n)
    mean = np.column_stack([np.bincount(label, pred[:, k], minlength=n) for k in (0, 1)]) / size[:, None]
    return mean[votes >= LATTICE_VOTES]


def _lattice_fits(data, xy, amplitude, *, sigma_px, radius_px, neighbour_px, far_px, pixel_noise, every=None,
                  min_share=0.0, n_iter=8):
    """Fits at the predicted sites of the fitted columns ``xy`` (pixels; fitted ``amplitude``) at least ``far_px``
    from every detected column (``every``, pixels; default ``xy``): the parameters (m, 5) = (A, row, col, width,
    B), the standard error of A (image units), the brightest of the six nearest columns' amplitudes and the
    predicted sites (m, 2). See :func:`_lattice_pass`."""
    from scipy.spatial import cKDTree

    vectors = _lattice_vectors(xy, neighbour_px)
    sites = _lattice_sites(xy, vectors, far_px=far_px, tol_px=LATTICE_TOLERANCE * neighbour_px, every=every)
    inside = np.all((sites >= radius_px) & (sites <= np.array(data.shape) - 1 - radius_px), axis=1)
    sites = sites[inside]
    if len(sites) == 0:
        return np.empty((0, 5)), np.empty(0), np.empty(0), sites
    dy, dx = disc_offsets(radius_px)
    z, yy, xx, valid = gather_windows(data, np.rint(sites[:, 0]).astype(np.int64), np.rint(sites[:, 1]).astype(np.int64),
                               dy, dx)
    _, nb = cKDTree(xy).query(sites, k=min(6, len(xy)))
    nb = nb.reshape(len(sites), -1)
    amp_nb = amplitude[nb]
    r2 = (yy[:, None, :] - xy[nb][:, :, 0:1]) ** 2 + (xx[:, None, :] - xy[nb][:, :, 1:2]) ** 2
    others = np.einsum("nk,nkm->nm", amp_nb, np.exp(-0.5 * r2 / sigma_px**2))
    zo = z - others
    if min_share > 0:  # the iterative fit only where the site's fixed-position amplitude could pass
        w = valid.astype(float)
        g0 = np.exp(-0.5 * ((yy - sites[:, 0:1]) ** 2 + (xx - sites[:, 1:2]) ** 2) / sigma_px**2) * w
        a0 = _amp_bkg(g0, zo, w.sum(axis=1), (zo * w).sum(axis=1))[0]
        near = a0 >= 0.5 * min_share * amp_nb.max(axis=1)
        sites, z, yy, xx, valid, others, zo, amp_nb = (v[near] for v in (sites, z, yy, xx, valid, others, zo, amp_nb))
        if len(sites) == 0:
            return np.empty((0, 5)), np.empty(0), np.empty(0), sites
    p0 = np.column_stack([np.ptp(zo, axis=1), sites, np.full(len(sites), sigma_px), zo.min(axis=1)])
    p, _, _ = _lm_block(z, yy, xx, valid.astype(float), p0, n_iter=n_iter, sig_bounds=(sigma_px, sigma_px),
                        fit_sigma=False, others=others, information=False)
    g = np.exp(-0.5 * ((yy - p[:, 1:2]) ** 2 + (xx - p[:, 2:3]) ** 2) / sigma_px**2) * valid
    info = (g * g).sum(axis=1) - g.sum(axis=1) ** 2 / np.maximum(valid.sum(axis=1), 1)
    return p, pixel_noise / np.sqrt(np.maximum(info, 1e-12)), amp_nb.max(axis=1), sites


#: :func:`_lattice_pass`: a predicted column's fitted amplitude must exceed this many of its standard errors
#: (free constant background). Wide-probe draws of 0-99, 2000-2199, 3000-3199 (docs/validation.md, imgwide2):
#: every candidate 0.07 nm or more from every cation column read below 2 once the tests on position held.
LATTICE_SIGMAS = 2.0
#: :func:`_lattice_pass`: the fitted centre lies within this many neighbour distances of the prediction ...
LATTICE_MOVE = 0.3
#: ... and at least this many from every detected column (a shoulder of a detected column, an O column beside
#: it, lies nearer: 0.4-0.7 on those draws).
LATTICE_GAP = 0.75


def _lattice_pass(data, rows, cols, amplitude, *, sigma_px, radius_px, neighbour_px, far_px, min_amplitude,
                  pixel_noise, share) -> np.ndarray:
    """Columns of the image's own lattice with no maximum: their fits (m, 5), (A, row, col, width, B) in image
    units and pixels (fractional).

    The fitted columns (``rows, cols``, fitted ``amplitude``; NaN where a fit failed: those only bound the
    predictions) predict sites one of their own neighbour vectors away (:func:`_lattice_vectors`, :func:`_lattice_sites`). At each, a column of
    the width ``sigma_px`` plus a constant is fitted (least squares, position free) on the disc of
    ``radius_px`` with the six nearest fitted columns' Gaussians of that width held in the model (their tails,
    which merge a dim column into a bright one's ridge under a wide probe). A site is kept only where the image
    shows a column: amplitude above ``min_amplitude`` (image units) and :data:`LATTICE_SIGMAS` standard errors
    (from the pixel noise ``pixel_noise``), at least ``share`` of the brightest of those neighbours, its fitted
    centre within :data:`LATTICE_MOVE` neighbour distances of the prediction and :data:`LATTICE_GAP` from every
    detected column. Of kept columns closer than ``far_px`` the brightest stays.
    """
    from scipy.spatial import cKDTree

    ok = np.isfinite(amplitude)
    xy = np.column_stack([rows[ok], cols[ok]])
    every = np.column_stack([rows, cols])
    p, se, ref, sites = _lattice_fits(data, xy, amplitude[ok], sigma_px=sigma_px, radius_px=radius_px,
                                      neighbour_px=neighbour_px, far_px=far_px, pixel_noise=pixel_noise, every=every,
                                      min_share=share)
    if len(p) == 0:
        return p
    moved = np.hypot(p[:, 1] - sites[:, 0], p[:, 2] - sites[:, 1])
    gap = cKDTree(every).query(p[:, 1:3])[0]
    keep = ((p[:, 0] > np.maximum(min_amplitude, LATTICE_SIGMAS * se)) & (p[:, 0] >= share * ref)
            & (moved <= LATTICE_MOVE * neighbour_px) & (gap >= LATTICE_GAP * neighbour_px))
    p = p[keep]
    return p[_unique_within(p[:, 1], p[:, 2], p[:, 0], far_px)]


#: :func:`lattice_columns`: the lattice pass fits a predicted column on a disc of this many column widths
#: (98 % of the column's integral of g^2; :data:`layerscope.imaging.pipeline.SITE_WINDOW_WIDTHS`).
LATTICE_WINDOW_WIDTHS = 2.0


def lattice_columns(data, fit: pd.DataFrame, *, pixel_size_nm, column_sigma_nm, neighbour_nm, min_separation_nm,
                    noise_sigmas, relative_threshold, noise: tuple[float, bool] | None = None) -> pd.DataFrame:
    """:func:`_lattice_pass` on the fitted columns of :func:`refine_columns` (``fit``): the columns found, as rows
    of such a frame (their own fits; ``position_error_px`` NaN) and their matched-filter ``contrast`` (image units).

    The column width is measured on the image (:func:`measure_column_width`, in a disc of
    :data:`LATTICE_WINDOW_WIDTHS` detection widths), the fit window is that many measured widths, and the
    amplitude must pass the first pass's noise margin: ``noise_sigmas`` (x :data:`SPARSE_COUNT_SHARE` on
    sparse counts, as beside a significant column) times the matched filter's noise, in amplitude units
    ``pixel_noise / (sqrt(pi) s)`` for the detection width ``s`` (the matched-filtered peak of a column of
    amplitude A is A/2, its noise ``pixel_noise / (2 sqrt(pi) s)``). ``noise``: :func:`image_pixel_noise` of ``data``
    when the caller has it already.
    """
    ok = fit["fit_ok"].to_numpy()
    if ok.sum() < 8:
        return fit.iloc[:0].assign(contrast=np.empty(0))
    rows, cols = fit["row"].to_numpy(), fit["col"].to_numpy()
    sig_px = column_sigma_nm / pixel_size_nm
    width = measure_column_width(data, rows[ok], cols[ok], radius_px=LATTICE_WINDOW_WIDTHS * sig_px,
                                 sigma_px=float(np.nanmedian(fit["sigma_px"].to_numpy()[ok])))
    pixel_noise, sparse = image_pixel_noise(data) if noise is None else noise
    margin = noise_sigmas * (SPARSE_COUNT_SHARE if sparse else 1.0) * pixel_noise / (np.sqrt(np.pi) * sig_px)
    p = _lattice_pass(data, rows, cols, np.where(ok, fit["amplitude"].to_numpy(), np.nan), sigma_px=width,
                      radius_px=LATTICE_WINDOW_WIDTHS * width, neighbour_px=neighbour_nm / pixel_size_nm,
                      far_px=0.5 * min_separation_nm / pixel_size_nm, min_amplitude=margin,
                      pixel_noise=pixel_noise, share=relative_threshold)
    return pd.DataFrame({"row": p[:, 1], "col": p[:, 2], "amplitude": p[:, 0], "sigma_px": p[:, 3],
                         "background": p[:, 4], "position_error_px": np.nan,
                         "volume": 2.0 * np.pi * p[:, 0] * p[:, 3] ** 2, "fit_ok": True,
                         "contrast": p[:, 0] * width**2 / (width**2 + sig_px**2)})


#: The residual pass (:func:`residual_columns`, in :func:`fit_detected` where the lattice pass runs: a wide
#: probe): the found columns' Gaussians, of the width measured with every found column in the model and heights
#: solved jointly, are taken off the image, and the maxima of the rest, matched-filtered at that width, that
#: pass the first pass's own tests (``noise_sigmas`` x the measured noise; ``relative_threshold`` of the
#: brightest of the six nearest columns) at least :data:`LATTICE_GAP` neighbour distances from every found
#: column are added. Dim columns (spinel and mixed Li-layer columns at 0.4-0.6 of a TM column) that merge into
#: their bright neighbours' tails have no maximum at any filter width (docs/validation.md "imgwide5").
#: False: no residual pass (before).
RESIDUAL_PASS = True
#: :func:`residual_columns`: a maximum one neighbour distance (:data:`NEIGHBOUR_BAND`) from a found column passes
#: at :data:`NEIGHBOUR_SHARE` of the relative test with :data:`NEIGHBOUR_SIGMAS` times the noise margin, as the
#: first pass's lattice-neighbour test (:func:`_neighbour_pass`).
RESIDUAL_DIM = True
#: :func:`residual_columns`: the width is measured in windows of this many detection widths
#: (:func:`measure_lattice_width`, at most :data:`RESIDUAL_WIDTH_SITES` columns spread over the field) ...
RESIDUAL_WIDTH_WINDOW = 3.5
RESIDUAL_WIDTH_SITES = 600
#: ... and the heights in discs of this many measured widths (:func:`_joint_heights`).
RESIDUAL_HEIGHT_WIDTHS = 2.5
#: :func:`_residual_image` (imgspeed3): the heights' sources within this many widths of each disc's square (the
#: ``reach`` of :func:`_joint_heights`), not :data:`GAUSSIAN_REACH` (8); a source 4 widths past the square adds
#: exp(-8) ~ 3e-4 of its height at the square's edge. On with :data:`JOINT_REACH_WIDTHS` (measured with it). None:
#: :data:`GAUSSIAN_REACH` (before).
RESIDUAL_REACH_WIDTHS: float | None = 4.0


#: :func:`_residual_image` (imgspeed4, measured): the fitted columns' splat blurred by a Gaussian cut at this many
#: widths, not :data:`GAUSSIAN_REACH` (8; a column's tail 4 widths out is exp(-8) ~ 3e-4 of its height). None: 8
#: (before, on). Measured at 4 on the 38 wide tuning draws and 7078 (docs/validation.md "imgspeed4 ... session 39").
SPLAT_REACH_WIDTHS: float | None = None


def _residual_image(data: np.ndarray, rows: np.ndarray, cols: np.ndarray, *, sigma_px: float) -> tuple:
    """The image less the Gaussians (width ``sigma_px``) of the columns at ``rows, cols`` (fractional pixels),
    their heights solved jointly (:func:`_joint_heights`), and those heights."""
    pos = np.column_stack([rows, cols]).astype(float)
    dy, dx = disc_offsets(RESIDUAL_HEIGHT_WIDTHS * sigma_px)
    amp, _ = _joint_heights(data, pos, np.zeros((0, 2)), np.zeros(0), dy, dx, sigma_px, reach=RESIDUAL_REACH_WIDTHS)
    amp = np.clip(np.nan_to_num(amp), 0.0, None)
    # each column's integral split bilinearly over its four pixels, then blurred by the Gaussian
    splat = np.zeros(data.shape)
    r0, c0 = np.floor(pos[:, 0]).astype(np.int64), np.floor(pos[:, 1]).astype(np.int64)
    fr, fc = pos[:, 0] - r0, pos[:, 1] - c0
    mass = amp * 2.0 * np.pi * sigma_px**2
    for dr, dc, wgt in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        rr, cc = r0 + dr, c0 + dc
        ok = (rr >= 0) & (rr < data.shape[0]) & (cc >= 0) & (cc < data.shape[1])
        np.add.at(splat, (rr[ok], cc[ok]), (mass * wgt)[ok])
    reach = GAUSSIAN_REACH if SPLAT_REACH_WIDTHS is None else SPLAT_REACH_WIDTHS
    return data - _gaussian_strips(splat, sigma_px, mode="constant", truncate=reach), amp


def _gaussian_strips(image: np.ndarray, sigma_px: float, *, mode: str, truncate: float = 4.0) -> np.ndarray:
    """:func:`scipy.ndimage.gaussian_filter` of a 2-D float64 ``image`` (the same numbers, bit for bit): each 1-D
    pass (rows' axis, then columns') run in strips across it on :data:`JOINT_THREADS` threads -- a pass along one
    axis reads only its own lines, and SciPy releases the GIL (imgspeed)."""
    return _line_strips(image, lambda a, ax: ndimage.gaussian_filter1d(a, sigma_px, axis=ax, mode=mode,
                                                                       truncate=truncate))


def _line_strips(image: np.ndarray, one_d) -> np.ndarray:
    """A separable filter of a 2-D ``image`` (float64): ``one_d(array, axis)`` along the rows' axis, then the
    columns', each pass in strips across the lines on :data:`JOINT_THREADS` threads (the same numbers)."""
    out = np.asarray(image, dtype=float)
    for axis in (0, 1):
        cuts = np.linspace(0, out.shape[1 - axis], max(1, JOINT_THREADS) + 1).astype(int)
        strips = [(slice(None), slice(a, b)) if axis == 0 else (slice(a, b), slice(None)) for a, b in zip(cuts, cuts[1:])]
        done = _threaded(lambda sl, src=out, ax=axis: one_d(src[sl], ax), strips)
        out = np.concatenate(done, axis=1 - axis)
    return out


#: :func:`_coarse_median` (imgspeed4): the residual pass's level (median, then smoothing) in strips on
#: :data:`JOINT_THREADS` threads -- the same numbers; on the wide evidence's critical path it ran alone on one core
#: (docs/validation.md "imgspeed4 ... session 39"). Its wall gain needs a free core: under load 6-10 it measured
#: neither faster nor slower; the idle re-time decides. False: SciPy's filters on the whole block image (before).
LEVEL_STRIPS = True


def _coarse_median(values: np.ndarray, factor: int, half: int) -> np.ndarray:
    """A smooth level of ``values``: block means ``factor`` pixels square, their median over
    ``2 half + 1`` blocks, smoothed as much (read at ``[row // factor, col // factor]``). The median in row strips
    (each with ``half`` rows of its neighbours' beside it) and the smoothing in strips (:func:`_line_strips`), on
    :data:`JOINT_THREADS` threads: :func:`scipy.ndimage.median_filter` and ``uniform_filter`` bit for bit (imgspeed4;
    the residual pass's level ran alone on one core at the end of ``phases``' wide evidence)."""
    h, w = (values.shape[0] // factor) * factor, (values.shape[1] // factor) * factor
    blocks = values[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
    size = 2 * half + 1
    if not LEVEL_STRIPS:
        return ndimage.uniform_filter(ndimage.median_filter(blocks, size=size, mode="nearest"), size=size,
                                      mode="nearest")
    cuts = np.linspace(0, blocks.shape[0], max(1, JOINT_THREADS) + 1).astype(int)

    def median(cut: tuple[int, int]) -> np.ndarray:  # rows a..b, read with `half` rows either side (all a row needs)
        a, b = cut
        lo, hi = max(0, a - half), min(blocks.shape[0], b + half)
        return ndimage.median_filter(blocks[lo:hi], size=size, mode="nearest")[a - lo:b - lo]

    med = np.concatenate(_threaded(median, list(zip(cuts, cuts[1:]))), axis=0)
    return _line_strips(med, lambda a, ax: ndimage.uniform_filter1d(a, size, axis=ax, mode="nearest"))


#: :func:`_found_width`: the shared width measured with every found column's height free
#: (:func:`measure_width_heights_free`: the heights solved jointly at each trial width, each window its own
#: background). False: every column in a site's window at the site's one height (:func:`measure_lattice_width`,
#: before), which reads the width narrow where a dim column sits beside bright ones (a synthetic lattice of heights
#: 1 and 0.4: 0.063 nm for 0.068). On since imgwidth: on the 38 wide-probe tuning draws the width's error
#: -9.1 -> -8.0 pm (mean), generic recall / precision up on 9 draws each, down on 1; no share falls on them, on 0-199
#: or on 7000-7099 (docs/validation.md "imgwidth").
WIDTH_HEIGHTS_FREE = True


def _found_width(data: np.ndarray, fit: pd.DataFrame, heights_free: bool | None = None) -> float:
    """The column width (pixels) with every found column of ``fit`` (:func:`refine_columns` rows, ``fit_ok``) in the
    model (windows of :data:`RESIDUAL_WIDTH_WINDOW` fitted widths, at most :data:`RESIDUAL_WIDTH_SITES` columns
    spread over the field): each column's height free (:func:`measure_width_heights_free`) where ``heights_free``
    (None: :data:`WIDTH_HEIGHTS_FREE`), else one height per window (:func:`measure_lattice_width`)."""
    ok = fit["fit_ok"].to_numpy(dtype=bool) & np.isfinite(fit["row"].to_numpy(dtype=float))
    rows, cols = fit["row"].to_numpy(dtype=float)[ok], fit["col"].to_numpy(dtype=float)[ok]
    s0 = float(np.nanmedian(fit["sigma_px"].to_numpy(dtype=float)[ok]))
    sel = np.unique(np.linspace(0, rows.size - 1, min(rows.size, RESIDUAL_WIDTH_SITES)).astype(int))
    free = WIDTH_HEIGHTS_FREE if heights_free is None else heights_free
    measure = measure_width_heights_free if free else measure_lattice_width
    width = measure(data, rows[sel], cols[sel], rows, cols, radius_px=RESIDUAL_WIDTH_WINDOW * s0, sigma_px=s0)
    return width


def residual_columns(data, fit: pd.DataFrame, *, pixel_size_nm, column_sigma_nm, neighbour_nm, min_separation_nm,
                     noise_sigmas, relative_threshold, width: float | None = None,
                     noise: tuple[float, bool] | None = None, heights_free: bool | None = None) -> pd.DataFrame:
    """:data:`RESIDUAL_PASS`: columns the found ones (``fit``, :func:`refine_columns` rows) hide, as rows of such
    a frame and their matched-filter ``contrast`` (image units) on the residual image.

    The width is measured with every found column in the model (:func:`_found_width`, ``heights_free`` as there); the found
    columns are taken off (:func:`_residual_image`); the rest is filtered by a Gaussian of that width and its
    local level (:func:`_coarse_median` over about two separations) subtracted. A maximum (at least half a
    separation from a stronger one) is kept where its contrast exceeds ``noise_sigmas`` times the filtered
    noise (the measured pixel noise over ``2 sqrt(pi) s``), its height (twice the contrast) is at least
    ``relative_threshold`` of the brightest of its six nearest found columns' heights, and it lies at least
    :data:`LATTICE_GAP` neighbour distances from every found column (an O column or a probe's tail beside a
    column lies nearer). Centred by a parabola through the filtered maximum and its neighbours. ``width``: that
    width when measured already (pixels); ``noise``: :func:`image_pixel_noise` of ``data`` when the caller has it.
    """
    from scipy.spatial import cKDTree

    ok = fit["fit_ok"].to_numpy(dtype=bool) & np.isfinite(fit["row"].to_numpy(dtype=float))
    empty = fit.iloc[:0].assign(contrast=np.empty(0))
    if ok.sum() < 10:
        return empty
    rows, cols = fit["row"].to_numpy(dtype=float)[ok], fit["col"].to_numpy(dtype=float)[ok]
    width = _found_width(data, fit, heights_free) if width is None else width
    residual, amp = _residual_image(data, rows, cols, sigma_px=width)
    sep_px = min_separation_nm / pixel_size_nm
    f = max(1, int(sep_px // 4))
    level = _coarse_median(residual, f, max(1, int(round(sep_px / f))))
    filtered = _gaussian_strips(residual, width, mode="nearest")
    mr, mc = np.nonzero(local_maxima(filtered, 2 * max(1, int(np.floor(0.45 * sep_px))) + 1))
    contrast = filtered[mr, mc] - level[np.minimum(mr // f, level.shape[0] - 1), np.minimum(mc // f, level.shape[1] - 1)]
    every = fit[["row", "col"]].to_numpy(dtype=float)
    gap = cKDTree(every[np.all(np.isfinite(every), axis=1)]).query(np.column_stack([mr, mc]))[0]
    _, nb = cKDTree(np.column_stack([rows, cols])).query(np.column_stack([mr, mc]), k=min(6, rows.size))
    noise = (image_pixel_noise(data) if noise is None else noise)[0] / (2.0 * np.sqrt(np.pi) * width)
    share = 2.0 * contrast / np.maximum(amp[nb].max(axis=1), 1e-300)
    keep = (contrast > noise_sigmas * noise) & (share >= relative_threshold)
    if RESIDUAL_DIM:  # the first pass's lattice-neighbour test (:func:`_neighbour_pass`) on the residual
        lo, hi = NEIGHBOUR_BAND
        band = (gap >= lo * neighbour_nm / pixel_size_nm) & (gap <= hi * neighbour_nm / pixel_size_nm)
        keep |= (band & (contrast > NEIGHBOUR_SIGMAS * noise_sigmas * noise)
                 & (share >= NEIGHBOUR_SHARE * relative_threshold))
    keep &= gap >= LATTICE_GAP * neighbour_nm / pixel_size_nm
    mr, mc, contrast = mr[keep], mc[keep], contrast[keep]
    one = _unique_within(mr, mc, contrast, 0.5 * sep_px)
    mr, mc, contrast = mr[one], mc[one], contrast[one]
    r_sub, c_sub = _parabola_peak(filtered, mr, mc)
    return pd.DataFrame({"row": r_sub, "col": c_sub, "amplitude": 2.0 * contrast, "sigma_px": width,
                         "background": np.nan, "position_error_px": np.nan,
                         "volume": 2.0 * np.pi * 2.0 * contrast * width**2, "fit_ok": True, "contrast": contrast})


#: The generic finder's wide path (where the lattice pass runs, :func:`fit_detected`): every found column's centre
#: refitted jointly with its neighbours (:func:`refine_jointly`, the width measured with the found columns in the
#: model, :func:`_found_width`), as ``phases`` does (``pipeline.JOINT_POSITIONS``). Under a ~0.15 nm probe a dim
#: column's own fit is pulled 0.07-0.12 nm by a bright neighbour's tail (docs/validation.md "imgwide5"). On since
#: imgwide6: on the 34 wide-probe tuning draws at >= 1e3 e/A^2 the generic recall share 55.9 -> 58.8 %, precision
#: 85.3 -> 91.2 %, RMS lower on all 38; no share falls on them, on 0-199 or on 7000-7099 (docs/validation.md
#: "imgwide6"). False: each column at its own fit (before).
GENERIC_JOINT = True
#: :func:`_joint_rows`: each column's window in the joint fit, in measured widths (``pipeline.JOINT_WINDOW_WIDTHS``).
GENERIC_JOINT_WIDTHS = 2.5
#: :func:`_joint_rows`: the columns whose centres the joint fit holds (in the model, heights solved): those placed
#: with their neighbours in the model already -- "lattice" (the lattice pass's fits), "lattice+residual" (and the
#: residual pass's maxima on the image less the found columns), or "" (none held).
GENERIC_JOINT_HOLD = "lattice"


#: :func:`_joint_rows`: a refined centre that ends nearer than this share of the detection's minimum separation to
#: another report, and nearer than its nearest report was at the start, keeps its start (two reports drawn onto one
#: column).
GENERIC_JOINT_APART = 0.5


def _joint_rows(data: np.ndarray, fit: pd.DataFrame, *, width: float, placed: np.ndarray,
                min_separation_px: float) -> pd.DataFrame:
    """``fit`` (:func:`refine_columns` rows) with the centres of its fitted columns refitted jointly
    (:data:`GENERIC_JOINT`; ``width`` the shared column width, pixels). Every reported column is in the model; a
    failed fit (``fit_ok`` False: an elongated blob at its centroid, often a bright column) and the ``placed`` rows
    (mask: placed with their neighbours in the model already, :data:`GENERIC_JOINT_HOLD`) keep their reports, and so
    do a column the fit moves off the field (the generic finder would drop it) and one it draws onto another report
    (:func:`_kept_apart`)."""
    at = np.all(np.isfinite(fit[["row", "col"]].to_numpy(dtype=float)), 1)
    ok = fit["fit_ok"].to_numpy(dtype=bool)[at] & ~placed[at]
    if ok.sum() < 10:
        return fit
    start = fit.loc[at, ["row", "col"]].to_numpy(dtype=float)
    rows, cols, _, _ = refine_jointly(data, start[:, 0], start[:, 1], sigma_px=width,
                                      radius_px=GENERIC_JOINT_WIDTHS * width, held=~ok)
    end = np.column_stack([rows, cols])
    outside = np.any((end < -0.5) | (end >= np.array(data.shape) - 0.5), axis=1)  # off the field: not reported
    end[outside] = start[outside]
    end = _kept_apart(start, end, GENERIC_JOINT_APART * min_separation_px)
    out = fit.copy()
    idx = out.index[at][ok]
    out.loc[idx, "row"], out.loc[idx, "col"] = end[ok, 0], end[ok, 1]
    return out


def _kept_apart(start: np.ndarray, end: np.ndarray, apart_px: float) -> np.ndarray:
    """``end`` (n x 2 centres, pixels) where each moved centre that ends nearer than ``apart_px`` to another report,
    and nearer than its nearest report was at ``start``, is put back at its start (repeated until none is)."""
    from scipy.spatial import cKDTree

    end = end.copy()
    d0 = cKDTree(start).query(start, k=2)[0][:, 1]
    for _ in range(10):
        d1 = cKDTree(end).query(end, k=2)[0][:, 1]
        back = (d1 < apart_px) & (d1 < d0) & np.any(end != start, axis=1)
        if not back.any():
            break
        end[back] = start[back]
    return end


def _parabola_peak(values: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel maxima of ``values`` at the integer maxima ``rows, cols``: a parabola along each axis through
    the maximum and its two neighbours (the pixel itself at the border), shifted by at most half a pixel."""
    out = []
    for axis, (at, other) in enumerate(((rows, cols), (cols, rows))):
        n = values.shape[axis]
        lo, hi = np.clip(at - 1, 0, n - 1), np.clip(at + 1, 0, n - 1)
        get = (lambda a: values[a, other]) if axis == 0 else (lambda a: values[other, a])
        y0, ym, yp = get(at), get(lo), get(hi)
        den = ym - 2.0 * y0 + yp
        shift = np.where(den < 0, 0.5 * (ym - yp) / np.where(den < 0, den, -1.0), 0.0)
        out.append(at + np.clip(shift, -0.5, 0.5))
    return out[0], out[1]


def disc_offsets(radius_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Row and column offsets (pixels) of the disc of radius ``radius_px`` around a pixel."""
    r = int(np.ceil(radius_px))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    inside = dy**2 + dx**2 <= radius_px**2
    return dy[inside].astype(np.int64), dx[inside].astype(np.int64)


def gather_windows(data, r0, c0, dy, dx):
    """Stacked windows: values, pixel coordinates and the mask of in-image pixels, shape (n, m)."""
    rr = r0[:, None] + dy[None, :]
    cc = c0[:, None] + dx[None, :]
    valid = (rr >= 0) & (rr < data.shape[0]) & (cc >= 0) & (cc < data.shape[1])
    rrc, ccc = np.clip(rr, 0, data.shape[0] - 1), np.clip(cc, 0, data.shape[1] - 1)
    # a C-ordered image read by flat index: the values of data[rrc, ccc], a third faster (imgwspeed)
    z = data.reshape(-1).take(rrc * data.shape[1] + ccc) if data.flags.c_contiguous else data[rrc, ccc]
    return z, rr.astype(float), cc.astype(float), valid


@dataclass(frozen=True)
class _LMFrame:
    """The fixed float32 arrays of one batched fit (``_lm_block``): coordinates relative to ``ref``."""

    ry: np.ndarray  # (n, m) pixel rows minus each start row
    rx: np.ndarray  # (n, m) pixel columns minus each start column
    z: np.ndarray  # (n, m) window values
    mask: np.ndarray  # (n, m) 0/1 weights
    others: np.ndarray  # (n, m) fixed model of the neighbouring columns
    ref: np.ndarray  # (n, 2) start positions (float64)
    poisson: bool
    fit_sigma: bool


def _lm_prepare(z, yy, xx, mask, p, *, others, poisson, fit_sigma) -> tuple[_LMFrame, np.ndarray]:
    """The fit's frame and the start parameters relative to it (positions 0), float64."""
    f32 = np.float32
    ref = p[:, 1:3].copy()
    zf = z.astype(f32)
    frame = _LMFrame(ry=(yy - ref[:, 0:1]).astype(f32), rx=(xx - ref[:, 1:2]).astype(f32), z=zf,
                     mask=mask.astype(f32), others=np.zeros_like(zf) if others is None else others.astype(f32),
                     ref=ref, poisson=poisson, fit_sigma=fit_sigma)
    q = p.astype(float).copy()
    q[:, 1:3] = 0.0
    return frame, q


def _lm_evaluate(frame: _LMFrame, q: np.ndarray) -> tuple:
    """Cost per column and the arrays the normal equations need: (cost, resid, w, g, dy, dx, r2, inv_s2).

    Cost: the Poisson deviance (up to a constant; model floored at 5 % of the peak height) or the
    residual sum of squares.
    """
    f32 = np.float32
    qa = q.astype(f32)
    dy = frame.ry - qa[:, 1:2]
    dx = frame.rx - qa[:, 2:3]
    r2 = dy * dy
    r2 += dx * dx
    inv_s2 = 1.0 / (qa[:, 3:4] * qa[:, 3:4])
    g = np.multiply(r2, -0.5)  # in place from here on: the same float32 operations, fewer arrays
    g *= inv_s2
    np.exp(g, out=g)
    f = g * qa[:, 0:1]
    f += qa[:, 4:5]
    f += frame.others
    mf, zf = frame.mask, frame.z
    if frame.poisson:
        floor = np.maximum(0.05 * np.abs(qa[:, 0:1]), np.float32(1e-6))
        fpos = np.maximum(f, floor)
        w = mf / fpos
        dev = np.log(fpos)
        dev *= zf
        np.subtract(fpos, dev, out=dev)
        cost = np.einsum("nm,nm->n", mf, dev, dtype=float)
    else:
        w = mf
        res = (zf - f) * mf
        cost = np.einsum("nm,nm->n", res, res, dtype=float)
    return cost, (zf - f), w, g, dy, dx, r2, inv_s2


def _lm_normal_equations(frame: _LMFrame, q, resid, w, g, dy, dx, r2, inv_s2, *,
                         scratch: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """J^T W J (n, 5, 5) and J^T W r (n, 5, 1): the float32 Jacobian summed in float64 batched products.

    Float64 sums make the fit the same on every CPU: float32 BLAS products (``sgemm``) sum in an order
    that depends on the processor's kernel (AVX2 or AVX-512), ~1e-7 apart, enough to make a dim column's
    fit converge on one machine and fail on another; in float64 the two agree to ~1e-13 nm (+15 % CPU
    of the column finder on a 2048^2 image; docs/validation.md, "Same numbers on every CPU").
    ``scratch``: two float64 (n, 5, m) arrays that receive J and W J (:func:`_lm_scratch`; reused by
    every iteration of a fit instead of ~80 MB of new memory per call on a 2048-column block).
    """
    f32 = np.float32
    qa = q.astype(f32)
    ag = qa[:, 0:1] * g
    jac, jw = _lm_scratch(*g.shape) if scratch is None else scratch  # parameter-major (n, 5, m)
    jac[:, 0] = g  # each row computed in float32, stored exactly in float64
    jac[:, 1] = ag * dy * inv_s2
    jac[:, 2] = ag * dx * inv_s2
    jac[:, 3] = ag * r2 * inv_s2 / qa[:, 3:4] if frame.fit_sigma else 0.0
    jac[:, 4] = 1.0
    np.multiply(jac, w[:, None, :], out=jw)
    jtj = np.matmul(jw, jac.transpose(0, 2, 1))
    jtr = np.matmul(jw, resid[..., None].astype(float))
    return jtj, jtr


def _lm_scratch(n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """The float64 (n, 5, m) Jacobian and weighted-Jacobian arrays of :func:`_lm_normal_equations`."""
    return np.empty((n, 5, m)), np.empty((n, 5, m))


def _lm_determine_step(jtj: np.ndarray, jtr: np.ndarray, lam: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Damped Gauss-Newton step of every column (n, 5); held parameters do not move.

    Singular systems (rare) are solved one by one, a column whose system stays singular does not move.
    """
    eye = np.eye(5)[None]
    diag = np.einsum("nii->ni", jtj)
    a_mat = jtj + (lam[:, None] * (diag + 1e-12))[:, :, None] * eye + (1.0 - free)[None, :, None] * eye
    try:
        step = np.linalg.solve(a_mat, jtr)[..., 0]
    except np.linalg.LinAlgError:
        step = np.zeros(jtr.shape[:2])
        for i in range(jtr.shape[0]):  # rare: singular systems; fall back one by one
            try:
                step[i] = np.linalg.solve(a_mat[i], jtr[i, :, 0])
            except np.linalg.LinAlgError:
                step[i] = 0.0
    return step * free[None, :]


def _lm_block(z, yy, xx, mask, p, *, n_iter, sig_bounds, fit_sigma=True, poisson=False, others=None,
              information=True):
    """Batched Levenberg-Marquardt for A*exp(-r^2/2s^2)+B; p = (A, y0, x0, s, B), shape (n, 5).

    ``z, yy, xx, mask`` are (n, m) stacks of window values, pixel coordinates and 0/1 weights.
    Pixel arrays are float32 with coordinates relative to each start position (the parameters, the
    5x5 solves and the sums of the normal equations are float64); the normal equations are formed
    with batched matrix products (BLAS) and solved together. Stages: :func:`_lm_prepare` (frame), :func:`_lm_evaluate` (cost),
    :func:`_lm_normal_equations` and :func:`_lm_determine_step` (the damped step), accepted per
    column where the cost falls (damping / 0.3, else x 10).

    With ``poisson`` the steps are Fisher scoring for Poisson data (iteratively reweighted least
    squares with weights 1/model, floored at 5 % of the column's peak height) and steps are
    accepted on the Poisson deviance: the maximum-likelihood estimate for shot-noise-limited
    counts (McCullagh & Nelder, *Generalized Linear Models*, 2nd ed. (1989), sec. 2.5).
    With ``fit_sigma=False`` the width stays at its start value. ``others`` (n, m) is the fixed
    model of the neighbouring columns added to each window's model (a block-Jacobi step of a joint
    fit of all columns).

    Returns the parameters, the Pearson chi-square (or residual sum of squares) and the Fisher
    information J^T W J at the solution (None unless ``information``).
    """
    frame, q = _lm_prepare(z, yy, xx, mask, p, others=others, poisson=poisson, fit_sigma=fit_sigma)
    lam = np.full(q.shape[0], 1e-3)
    free = np.ones(5)
    if not fit_sigma:
        free[3] = 0.0
    state = _lm_evaluate(frame, q)
    cost = state[0]
    scratch = _lm_scratch(*frame.z.shape)
    for _ in range(n_iter):
        jtj, jtr = _lm_normal_equations(frame, q, *state[1:], scratch=scratch)
        trial = q + _lm_determine_step(jtj, jtr, lam, free)
        trial[:, 3] = np.clip(trial[:, 3], *sig_bounds)
        state_t = _lm_evaluate(frame, trial)
        better = state_t[0] < cost
        q[better] = trial[better]
        cost = np.where(better, state_t[0], cost)
        for old, new in zip(state[1:], state_t[1:]):  # the accepted columns' arrays, in place
            if old is not new:
                np.copyto(old, new, where=better[:, None])
        state = (cost,) + state[1:]
        lam = np.clip(np.where(better, lam * 0.3, lam * 10.0), 1e-7, 1e7)
    resid, w = state[1], state[2]
    chi2 = np.einsum("nm,nm->n", resid * resid, w, dtype=float)
    ref = frame.ref
    q[:, 1:3] += ref
    if not information:
        return q, chi2, None
    jtj, _ = _lm_normal_equations(frame, q - np.pad(ref, ((0, 0), (1, 2))), *state[1:], scratch=scratch)
    if not fit_sigma:
        jtj[:, 3, :] = 0.0
        jtj[:, :, 3] = 0.0
        jtj[:, 3, 3] = 1.0
    return q, chi2, jtj


def _neighbours(rows, cols, n_neighbours=6):
    """Indices (n, k) and positions (n, k, 2) of the ``n_neighbours`` nearest other columns."""
    from scipy.spatial import cKDTree

    pts = np.column_stack([rows, cols])
    k = min(n_neighbours + 1, pts.shape[0])
    if k < 2:
        return np.zeros((pts.shape[0], 0), dtype=int), np.full((pts.shape[0], 1, 2), 1e9)
    _, idx = cKDTree(pts).query(pts, k=k)
    return idx[:, 1:], pts[idx[:, 1:]]


def _own_cell(rows, cols, nb, yy, xx):
    """Mask of the window pixels closer to their own column than to any neighbour in ``nb``.

    The exact (sub-pixel) Voronoi cell of each column restricted to its window; shape (n, m).
    """
    d_own = (yy - rows[:, None]) ** 2 + (xx - cols[:, None]) ** 2
    d_nb = (yy[:, None, :] - nb[:, :, 0:1]) ** 2 + (xx[:, None, :] - nb[:, :, 1:2]) ** 2
    return d_own <= d_nb.min(axis=1)


@dataclass
class _Block:
    """The fit windows of a block of columns, fixed for all passes (centred on the start pixels)."""

    rows: np.ndarray  # start positions (n,)
    cols: np.ndarray
    flat: np.ndarray  # flat pixel index of every window pixel (n, m), clipped into the image
    z: np.ndarray  # image values (n, m)
    yy: np.ndarray  # pixel coordinates (n, m)
    xx: np.ndarray
    mask: np.ndarray  # in image and in the own Voronoi cell (n, m), float 0/1
    neighbours: np.ndarray  # indices (into all columns) of the nearest other columns (n, k)


def _make_block(data, rows, cols, nb, nb_idx, dy, dx) -> _Block:
    r0 = np.clip(np.rint(rows).astype(np.int64), 0, data.shape[0] - 1)
    c0 = np.clip(np.rint(cols).astype(np.int64), 0, data.shape[1] - 1)
    z, yy, xx, valid = gather_windows(data, r0, c0, dy, dx)
    if nb is not None:
        valid &= _own_cell(rows, cols, nb, yy, xx)
    flat = np.clip(yy, 0, data.shape[0] - 1).astype(np.int64) * data.shape[1] + np.clip(
        xx, 0, data.shape[1] - 1
    ).astype(np.int64)
    return _Block(rows, cols, flat, z, yy, xx, valid.astype(float), nb_idx)


def _inverse_diagonals(mats: np.ndarray) -> np.ndarray:
    """Diagonals (n, k) of the inverses of a stack of matrices (n, k, k).

    One batched :func:`numpy.linalg.inv`; where the stack holds a singular matrix (a failed fit in
    the block) the stack is halved until the parts invert, and each singular matrix alone takes
    the pseudo-inverse (:func:`layerscope.linalg.pinv`): a few dozen batched calls instead of one
    SVD per matrix of the block.
    """
    try:
        return np.einsum("nii->ni", np.linalg.inv(mats))
    except np.linalg.LinAlgError:
        if mats.shape[0] == 1:  # the singular one
            return np.einsum("nii->ni", robust_linalg.pinv(mats))
        half = mats.shape[0] // 2
        return np.concatenate([_inverse_diagonals(mats[:half]), _inverse_diagonals(mats[half:])])


def _fit_block(
    block: _Block, *, p_start, p_all, radius_px, sigma_px, n_iter, sig_bounds, fit_sigma, poisson, information
) -> dict:
    """Fit one block from the detected maxima or the previous pass (``p_start``).

    With ``p_all`` (every column's parameters from the previous pass; amplitude 0 where that fit
    failed), the Gaussians of each column's nearest neighbours are evaluated on its window and
    held fixed in its model.
    """
    z, yy, xx, w = block.z, block.yy, block.xx, block.mask
    others = None
    if p_all is not None and block.neighbours.shape[1]:
        q = p_all[block.neighbours].astype(np.float32)  # (n, k, 5)
        # r2 = (yy - y0)^2 + (xx - x0)^2 in float64, then A exp(-r2 / 2 s^2) in float32: in place (n, k, m)
        r2 = np.subtract(yy[:, None, :], q[:, :, 1:2])
        np.square(r2, out=r2)
        dx2 = np.subtract(xx[:, None, :], q[:, :, 2:3])
        np.square(dx2, out=dx2)
        r2 += dx2
        tails = r2.astype(np.float32)
        tails *= -0.5 / q[:, :, 3:4] ** 2
        np.exp(tails, out=tails)
        tails *= q[:, :, 0:1]
        others = np.einsum("nkm->nm", tails)
    zo = z if others is None else z - others
    valid = w > 0
    npix = w.sum(axis=1)
    zmin = np.where(valid, zo, np.inf).min(axis=1)
    zmin = np.where(np.isfinite(zmin), zmin, 0.0)
    zmax = np.where(valid, zo, -np.inf).max(axis=1)
    zmax = np.where(np.isfinite(zmax), zmax, 0.0)
    zp = np.clip(zo - zmin[:, None], 0.0, None) * w
    tot = zp.sum(axis=1)
    tot_safe = np.where(tot > 0, tot, 1.0)
    cy = np.where(tot > 0, (zp * yy).sum(axis=1) / tot_safe, block.rows)
    cx = np.where(tot > 0, (zp * xx).sum(axis=1) / tot_safe, block.cols)
    p0 = np.column_stack([zmax - zmin, block.rows, block.cols, np.full(cy.size, sigma_px), zmin])
    if p_start is not None:
        good = np.all(np.isfinite(p_start), axis=1)
        p0 = np.where(good[:, None], p_start, p0)
    p, chi2, jtj = _lm_block(z, yy, xx, w, p0, n_iter=n_iter, sig_bounds=sig_bounds, fit_sigma=fit_sigma,
                             poisson=poisson, others=others, information=information)
    moved = np.hypot(p[:, 1] - block.rows, p[:, 2] - block.cols)
    ok = (npix >= 7) & (p[:, 0] > 0) & (moved <= 0.6 * radius_px) & (p[:, 3] < radius_px)
    if fit_sigma:
        ok &= p[:, 3] > sig_bounds[0] * 1.01
    perr = np.full(p.shape[0], np.nan)
    if jtj is not None:
        dof = np.maximum(npix - (5 if fit_sigma else 4), 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            cov_diag = _inverse_diagonals(jtj)
            # Pearson chi-square per degree of freedom scales the information to the data's gain.
            perr = np.sqrt(0.5 * (cov_diag[:, 1] + cov_diag[:, 2]) * chi2 / dof)
    return {
        "p": p,
        "ok": ok,
        "perr": perr,
        "row": np.where(ok, p[:, 1], cy),
        "col": np.where(ok, p[:, 2], cx),
        "fallback_amplitude": zmax - zmin,
        "fallback_background": zmin,
    }


def refine_columns(
    image: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    *,
    radius_px: float,
    sigma_px: float,
    n_iter: int = 4,
    voronoi: bool = True,
    neighbour_passes: int = 2,
    noise_model: str = "poisson",
    shared_width: bool = True,
    scheduler=None,
) -> pd.DataFrame:
    """Refine column positions by fitting a 2-D Gaussian plus background to all columns at once.

    Model per column: ``A * exp(-((x-x0)^2 + (y-y0)^2) / (2 s^2)) + B`` on the pixels of a disc of
    ``radius_px`` around the start position that belong to the column's own Voronoi cell.  All
    columns are solved together by batched Levenberg-Marquardt (``numpy.linalg.solve`` on a stack
    of 5x5 normal equations); no per-column Python loop.  Blocks of columns run on Dask's local
    threads (:func:`layerscope.parallel.map_tasks`).

    Pass 1 fits every column alone by least squares.  Each of the ``neighbour_passes`` that
    follow refits every column with the fitted Gaussians of its six nearest neighbours held fixed
    in its model (a block-Jacobi step of a joint fit of all columns, the role of Atomap's
    neighbour-aware refinement), with the chosen noise model.

    Parameters
    ----------
    image : numpy.ndarray
        2-D image.
    rows, cols : numpy.ndarray
        Start positions in pixel indices (may be fractional).
    radius_px : float
        Fit window radius in pixels (about 0.45 x the nearest-neighbour distance).
    sigma_px : float
        Starting Gaussian width in pixels.
    n_iter : int
        Levenberg-Marquardt iterations of pass 1 (later passes: ``max(3, n_iter - 1)``); from a
        detected maximum the position moves by less than 0.01 pm after 5.
    voronoi : bool
        Restrict each fit to its Voronoi cell (recommended).
    neighbour_passes : int
        Passes with the neighbours' fitted tails in the model.
    noise_model : {"poisson", "gaussian"}
        Noise model of those passes: ``"poisson"`` (shot-noise-limited HAADF counts; maximum
        likelihood by Fisher scoring) or ``"gaussian"`` (unweighted least squares).
    shared_width : bool
        In the last pass all columns share one width, the median of the previous (free) fits (one
        probe, one material: it removes the width-position noise coupling at low dose).
    scheduler : None, str or distributed.Client
        Where blocks run (see :func:`layerscope.parallel.map_tasks`); None: local threads.

    Returns
    -------
    pandas.DataFrame
        ``row, col`` (refined, pixel indices, fractional), ``amplitude``, ``sigma_px``,
        ``background``, ``volume`` (2 pi A s^2, image units x pixel^2), ``position_error_px``
        (1-sigma per axis from the Fisher information scaled by the Pearson chi-square),
        ``fit_ok`` (bool: converged inside the window with a physical width; otherwise row/col
        hold the intensity-weighted centroid).

    References
    ----------
    Levenberg (1944); Marquardt, J. Soc. Ind. Appl. Math. 11, 431 (1963); Nord et al. (2017).
    """
    from layerscope.parallel import map_tasks

    data = as_float_image(image)
    if noise_model not in ("poisson", "gaussian"):
        raise InputError(f"noise_model={noise_model!r}: use 'poisson' (counts) or 'gaussian'")
    rows = np.asarray(rows, dtype=float)
    cols = np.asarray(cols, dtype=float)
    n = rows.size
    if n == 0:
        names = ("row", "col", "amplitude", "sigma_px", "background", "position_error_px", "volume")
        frame = pd.DataFrame({k: np.empty(0) for k in names})
        frame["fit_ok"] = np.zeros(0, dtype=bool)
        return frame
    sig_bounds = (0.25 * sigma_px, 3.0 * radius_px)
    nb_idx, nb = _neighbours(rows, cols)
    dy, dx = disc_offsets(radius_px)
    slices = [slice(s0, min(n, s0 + _BLOCK)) for s0 in range(0, n, _BLOCK)]
    # The blocks' windows are cut on local threads (where the image is), whatever the scheduler of the fits.
    blocks = map_tasks(_make_block_item, [(rows[sl], cols[sl], nb[sl] if voronoi else None, nb_idx[sl]) for sl in slices],
                       scheduler=None, progress=False, data=data, dy=dy, dx=dx)

    def run(p_start, p_all, width, *, fit_sigma, poisson, iters, information):
        parts = map_tasks(
            _fit_block_item,
            [(blk, None if p_start is None else p_start[sl]) for blk, sl in zip(blocks, slices)],
            scheduler=scheduler, progress=True, description=f"columns: fitting {len(blocks)} blocks",
            p_all=p_all, radius_px=radius_px, sigma_px=width,
            n_iter=iters, sig_bounds=sig_bounds, fit_sigma=fit_sigma, poisson=poisson, information=information,
        )
        return {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}

    fit = run(None, None, sigma_px, fit_sigma=True, poisson=False, iters=n_iter,
              information=neighbour_passes == 0)
    for k in range(neighbour_passes):
        # All passes but the last fit each width (unbiased once the neighbours' tails are
        # removed); the last one shares the median width when ``shared_width``.
        last = k == neighbour_passes - 1
        share = shared_width and last
        ok = fit["ok"]
        width = float(np.nanmedian(fit["p"][ok, 3])) if ok.any() else sigma_px
        start = fit["p"].copy()
        if share:
            start[:, 3] = width
        p_all = np.where(ok[:, None], start, np.array([0.0, 0.0, 0.0, 1.0, 0.0]))
        fit = run(start, p_all, width, fit_sigma=not share, poisson=noise_model == "poisson",
                  iters=max(3, n_iter - 1), information=last)
    p, ok = fit["p"], fit["ok"]
    frame = pd.DataFrame(
        {
            "row": fit["row"],
            "col": fit["col"],
            "amplitude": np.where(ok, p[:, 0], fit["fallback_amplitude"]),
            "sigma_px": np.where(ok, p[:, 3], np.nan),
            "background": np.where(ok, p[:, 4], fit["fallback_background"]),
            "position_error_px": np.where(ok, fit["perr"], np.nan),
        }
    )
    frame["volume"] = 2.0 * np.pi * frame["amplitude"] * frame["sigma_px"] ** 2
    frame["fit_ok"] = ok
    return frame


def _make_block_item(item, *, data, dy, dx) -> _Block:
    """Adapter for :func:`layerscope.parallel.map_tasks`: ``item`` is ``(rows, cols, nb, nb_idx)`` of one block."""
    rows, cols, nb, nb_idx = item
    return _make_block(data, rows, cols, nb, nb_idx, dy, dx)


def _fit_block_item(item, **kwargs) -> dict:
    """Adapter for :func:`layerscope.parallel.map_tasks`: ``item`` is ``(block, p_start)``."""
    block, p_start = item
    return _fit_block(block, p_start=p_start, **kwargs)


def site_intensities(
    image: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    *,
    sigma_px: float,
    radius_px: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Peak height of a column of known position and width at every site (linear least squares).

    For each site the model ``A * g(x - x0, y - y0; s) + B`` with fixed position and width is linear
    in ``(A, B)``; the 2x2 normal equations of all sites are solved in closed form at once. Used
    for the column intensity of detected columns and of lattice sites where no column need be
    visible (Li-layer sites), so that both carry the same estimator.

    Parameters
    ----------
    image : numpy.ndarray
        2-D image.
    rows, cols : numpy.ndarray
        Site positions in fractional pixel indices.
    sigma_px : float
        Column width (Gaussian standard deviation) in pixels, common to all sites.
    radius_px : float
        Window radius in pixels.

    Returns
    -------
    amplitude, background : numpy.ndarray
        ``A`` and ``B`` per site, in image units; NaN where the window holds fewer than 5 pixels.
    """
    data = as_float_image(image)
    rows = np.asarray(rows, dtype=float)
    cols = np.asarray(cols, dtype=float)
    amp = np.full(rows.size, np.nan)
    bkg = np.full(rows.size, np.nan)
    dy, dx = disc_offsets(radius_px)
    r0 = np.rint(rows).astype(np.int64)
    c0 = np.rint(cols).astype(np.int64)
    for start in range(0, rows.size, _BLOCK):
        sl = slice(start, min(rows.size, start + _BLOCK))
        z, yy, xx, valid = gather_windows(data, r0[sl], c0[sl], dy, dx)
        w = valid.astype(float)
        g = np.exp(-0.5 * ((yy - rows[sl, None]) ** 2 + (xx - cols[sl, None]) ** 2) / sigma_px**2) * w
        a, b, good, _ = _amp_bkg(g, z, w.sum(1), (z * w).sum(1))
        amp[sl], bkg[sl] = np.where(good, a, np.nan), np.where(good, b, np.nan)
    return amp, bkg


def _amp_bkg(g: np.ndarray, z: np.ndarray, s_1: np.ndarray, s_z: np.ndarray):
    """Least-squares ``A``, ``B`` of ``z = A g + B`` per site (rows; ``g`` zero outside the window), given the
    window's pixel count ``s_1`` and sum ``s_z``; also whether the fit is determined and ``sum g z``."""
    s_gg, s_g, s_gz = (g * g).sum(1), g.sum(1), (g * z).sum(1)
    det = s_gg * s_1 - s_g * s_g
    good = (s_1 >= 5) & (det > 1e-12)
    det = np.where(good, det, 1.0)
    return (s_gz * s_1 - s_g * s_z) / det, (s_gg * s_z - s_g * s_gz) / det, good, s_gz


def _site_residuals(data: np.ndarray, rows: np.ndarray, cols: np.ndarray, dy: np.ndarray, dx: np.ndarray,
                    sigmas_px: np.ndarray) -> np.ndarray:
    """Sum over all sites of the least-squares residual of ``A g + B`` (fixed position) for each width."""
    out = np.zeros(sigmas_px.size)
    r0, c0 = np.rint(rows).astype(np.int64), np.rint(cols).astype(np.int64)
    for start in range(0, rows.size, _BLOCK):
        sl = slice(start, min(rows.size, start + _BLOCK))
        z, yy, xx, valid = gather_windows(data, r0[sl], c0[sl], dy, dx)
        w = valid.astype(float)
        r2 = (yy - rows[sl, None]) ** 2 + (xx - cols[sl, None]) ** 2
        s_1, s_z, s_zz = w.sum(1), (z * w).sum(1), (z * z * w).sum(1)

        def one(sig: float) -> float:
            a, b, good, s_gz = _amp_bkg(np.exp(-0.5 * r2 / sig**2) * w, z, s_1, s_z)
            return np.sum(np.where(good, s_zz - a * s_gz - b * s_z, 0.0))

        for k, sig in enumerate(sigmas_px):
            out[k] += one(sig)
    return out


def measure_column_width(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, *, radius_px: float,
                         sigma_px: float) -> float:
    """Column width (Gaussian standard deviation, pixels) shared by all sites, from the image.

    The width that minimises the summed residual of ``A_i g(s) + B_i`` over every site's window
    (amplitude and background free per site, positions fixed): a profile least squares over a
    grid of widths from 0.4 to 4 x ``sigma_px`` (the fits' median width), refined by a parabola.
    Hundreds of columns share one width, so it is determined where one column's fit is not: a
    defocused probe whose column (0.065 nm) is wider than half the fit window, where each fit
    trades width for background and reads about 0.025 nm (random draw 79).

    Returns
    -------
    float
        The width in pixels (``sigma_px`` where fewer than 10 sites or no interior minimum).
    """
    data = as_float_image(image)
    rows, cols = np.asarray(rows, dtype=float), np.asarray(cols, dtype=float)
    if rows.size < 10 or not np.isfinite(sigma_px) or sigma_px <= 0:
        return float(sigma_px)
    dy, dx = disc_offsets(radius_px)
    grid = sigma_px * np.geomspace(0.4, 4.0, 41)
    res = _site_residuals(data, rows, cols, dy, dx, grid)
    k = int(np.argmin(res))
    if k == 0 or k == grid.size - 1:
        return float(grid[k])
    # parabola through the three points around the minimum, in log width
    x = np.log(grid[k - 1:k + 2])
    c = np.polyfit(x, res[k - 1:k + 2], 2)
    return float(np.exp(-c[1] / (2 * c[0]))) if c[0] > 0 else float(grid[k])


def measure_lattice_width(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, lattice_rows: np.ndarray,
                          lattice_cols: np.ndarray, *, radius_px: float, sigma_px: float) -> float:
    """Column width (Gaussian standard deviation, pixels) with the neighbouring columns in the model.

    As :func:`measure_column_width`, but each site's window is fitted by ``A_i T(s) + B_i`` with ``T(s)``
    the sum of unit Gaussians of width ``s`` at every lattice position (``lattice_rows``,
    ``lattice_cols``; pixels), not by the site's Gaussian alone. Where the window must be wide enough to
    hold a wide column (a ~0.15 nm probe), it reaches the neighbours' tails; a single Gaussian plus a
    free constant then reads the column narrower than it is (random draws 79, 5138: 0.054 / 0.052 nm
    for a probe-and-source width of 0.070 / 0.071 nm; with the neighbours in the model 0.067 / 0.067,
    docs/validation.md "imgwide3"). The widths are a grid of 0.6-1.8 x ``sigma_px`` (every 4th tried,
    then the grid around the least), refined by a parabola. Columns not in the lattice (oxygen) are not
    modelled.

    Returns
    -------
    float
        The width in pixels (``sigma_px`` where fewer than 10 sites).
    """
    data = as_float_image(image)
    rows, cols = np.asarray(rows, dtype=float), np.asarray(cols, dtype=float)
    if rows.size < 10 or not np.isfinite(sigma_px) or sigma_px <= 0:
        return float(sigma_px)
    dy, dx, r0, c0, z, w = _site_windows(data, rows, cols, radius_px)
    s_1, s_z, s_zz = w.sum(1), (z * w).sum(1), (z * z * w).sum(1)
    grid = sigma_px * np.geomspace(0.6, 1.8, 25)
    template = _LatticeTemplate.build(r0, c0, lattice_rows, lattice_cols, dy, dx, float(grid[-1]))
    res = np.full(grid.size, np.nan)

    def residual(k: int) -> float:
        if np.isnan(res[k]):
            a, b, good, s_tz = _amp_bkg(template.at(float(grid[k])) * w, z, s_1, s_z)
            res[k] = np.sum(np.where(good, s_zz - a * s_tz - b * s_z, 0.0))
        return res[k]

    return _valley_minimum(grid, residual)


def _site_windows(data: np.ndarray, rows: np.ndarray, cols: np.ndarray, radius_px: float) -> tuple:
    """The discs of radius ``radius_px`` (pixels) around the sites' nearest pixels: offsets ``dy, dx``, the pixels
    ``r0, c0``, the values ``z`` (sites x offsets) and the in-image weights ``w`` (1 inside the image, 0 beyond)."""
    dy, dx = disc_offsets(radius_px)
    r0, c0 = np.rint(rows).astype(np.int64), np.rint(cols).astype(np.int64)
    z, _, _, valid = gather_windows(data, r0, c0, dy, dx)
    return dy, dx, r0, c0, z, valid.astype(float)


def _valley_minimum(grid: np.ndarray, residual) -> float:
    """The width of ``grid`` (pixels) where ``residual(k)`` (cached by the caller) is least: every 4th width, then
    the grid around the least (the residual is one smooth valley), refined by a parabola in log width."""
    coarse = list(range(0, grid.size, 4))
    k = min(coarse, key=residual)
    while True:
        side = [j for j in (k - 1, k + 1) if 0 <= j < grid.size]
        best = min(side, key=residual)
        if residual(best) >= residual(k):
            break
        k = best
    if k == 0 or k == grid.size - 1:
        return float(grid[k])
    x = np.log(grid[k - 1:k + 2])
    c = np.polyfit(x, [residual(j) for j in (k - 1, k, k + 1)], 2)
    return float(np.exp(-c[1] / (2 * c[0]))) if c[0] > 0 else float(grid[k])


#: :func:`measure_width_heights_free` (imgwspeed): each trial width ``s``'s heights solved from the sources within
#: this many ``s`` of each height window (:func:`_joint_heights`' ``reach``), and the sites' residual read with the
#: columns within as many ``s`` of each site's window (one list per trial width, where it was one list within
#: :data:`GAUSSIAN_REACH` largest trial widths). A source 5 widths past a window adds exp(-12.5) ~ 4e-6 of its height
#: at the window's edge. None: :data:`GAUSSIAN_REACH` for the heights and the one list (before). 5 (measured,
#: docs/validation.md "imgwspeed"): the width moves by at most 1.4e-7 (relative) on the 38 wide tuning draws, their
#: rows equal in every value; the measurement 20-35 % less CPU (4: at most 6.9e-6, generic RMS moves in the 6th digit
#: on 8 of the 38).
WIDTH_HEIGHTS_REACH: float | None = 5.0


def measure_width_heights_free(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, every_rows: np.ndarray,
                               every_cols: np.ndarray, *, radius_px: float, sigma_px: float) -> float:
    """Column width (Gaussian standard deviation, pixels) with every column's height free.

    As :func:`measure_lattice_width` (the same grid of 0.6-1.8 x ``sigma_px`` and search), but at each trial width
    ``s`` every column at ``every_rows, every_cols`` (pixels) has its own height: the heights of all of them are
    solved at once with every neighbour in the model (:func:`_joint_heights`, a disc of
    :data:`RESIDUAL_HEIGHT_WIDTHS` ``s`` around each), and the residual is that of the sites' windows (``rows,
    cols``; discs of ``radius_px``) less the Gaussian sum of those heights, each window less its own mean (a free
    background). One height per window (:func:`measure_lattice_width`) makes a dim column's window read the bright
    neighbours' tails at the dim height: the width reads narrow where heights differ.

    Returns
    -------
    float
        The width in pixels (``sigma_px`` where fewer than 10 sites).
    """
    data = as_float_image(image)
    rows, cols = np.asarray(rows, dtype=float), np.asarray(cols, dtype=float)
    if rows.size < 10 or not np.isfinite(sigma_px) or sigma_px <= 0:
        return float(sigma_px)
    every = np.column_stack([np.asarray(every_rows, float), np.asarray(every_cols, float)])
    dy, dx, r0, c0, z, w = _site_windows(data, rows, cols, radius_px)
    grid = sigma_px * np.geomspace(0.6, 1.8, 25)
    r = int(max(np.abs(dy).max(), np.abs(dx).max()))
    sites = np.column_stack([r0, c0]).astype(float)
    reach = WIDTH_HEIGHTS_REACH

    def site_template(s: float) -> tuple:
        """The sites' template with the columns within reach at trial width ``s`` (every width's where ``reach`` is
        None), and its padded neighbour lists."""
        near, used = _padded_near(sites, every, r + (GAUSSIAN_REACH * grid[-1] if reach is None else reach * s) + 1)
        return _LatticeTemplate(k=np.arange(-r, r + 1), iy=dy + r, ix=dx + r, r0=r0, c0=c0, src=every[near],
                                used=used), near, used

    shared = site_template(float(grid[-1])) if reach is None else None
    res = np.full(grid.size, np.nan)

    def residual(k: int) -> float:
        if np.isnan(res[k]):
            s = float(grid[k])
            hy, hx = disc_offsets(RESIDUAL_HEIGHT_WIDTHS * s)
            amp, _ = _joint_heights(data, every, np.zeros((0, 2)), np.zeros(0), hy, hx, s, reach=reach)
            template, near, used = shared or site_template(s)
            rest = (z - template.at(s, np.nan_to_num(amp)[near] * used)) * w
            res[k] = float(np.sum((rest * rest).sum(1) - rest.sum(1) ** 2 / np.maximum(w.sum(1), 1.0)))
        return res[k]

    return _valley_minimum(grid, residual)


#: A plain Gaussian sum (:class:`_LatticeTemplate`, :func:`refine_jointly`) takes every source within this many
#: widths of a window's square: one farther adds less than exp(-32) ~ 1e-14 of its height there, below double
#: precision -- the sum is not cut at any renderer's truncation (docs/validation.md "imgwide4").
GAUSSIAN_REACH = 8.0


def _padded_near(centres: np.ndarray, sources: np.ndarray, reach_px: float,
                 workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the ``sources`` (k x 2, pixels) within ``reach_px`` (square) of each of ``centres``, padded:
    (n, m) indices and the (n, m) mask of real entries; ``workers``: threads of the tree's query (the same lists)."""
    from scipy.spatial import cKDTree

    if not len(sources) or not len(centres):
        return np.zeros((len(centres), 1), np.int64), np.zeros((len(centres), 1), bool)
    near = cKDTree(sources).query_ball_point(centres, reach_px, p=np.inf, workers=workers)
    counts = np.fromiter((len(v) for v in near), int, len(near))
    idx = np.zeros((len(near), max(1, counts.max(initial=0))), np.int64)
    used = np.arange(idx.shape[1])[None, :] < counts[:, None]
    if counts.sum():
        idx[used] = np.concatenate([np.asarray(v, np.int64) for v in near])
    return idx, used


#: Most elements (float64) of one block's (rows x neighbours x window side) arrays in the joint fit and the lattice
#: template: 2^23, 64 MiB each. A block's rows are cut to it, so that a field whose columns are many pixels wide (a
#: fine pixel size: large windows, many neighbours within reach) does not hold its whole neighbourhood at once.
_JOINT_BUDGET = 1 << 23


def _budget_blocks(n: int, neighbours: int, side: int) -> list[slice]:
    """Slices of ``n`` rows whose (rows x max(neighbours, side) x side) arrays hold at most :data:`_JOINT_BUDGET`
    elements (and at most ``_BLOCK`` rows)."""
    step = int(max(1, min(_BLOCK, _JOINT_BUDGET // max(1, max(neighbours, side) * side))))
    return [slice(b, min(n, b + step)) for b in range(0, n, step)]


def _most_near(centres: np.ndarray, sources: np.ndarray, reach_px: float, workers: int = 1) -> int:
    """The most ``sources`` within ``reach_px`` (square) of any of ``centres`` (pixels); ``workers``: threads of
    the tree's query."""
    from scipy.spatial import cKDTree

    if not len(sources) or not len(centres):
        return 1
    return int(cKDTree(sources).query_ball_point(centres, reach_px, p=np.inf, return_length=True,
                                                 workers=workers).max())


def _gaussian_squares(r0: np.ndarray, c0: np.ndarray, k: np.ndarray, src: np.ndarray, weight: np.ndarray,
                      sigma: float, profiles: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(n, 2r + 1, 2r + 1): on each site's square of offsets ``k`` around ``(r0, c0)``, the plain sum of the
    Gaussians of width ``sigma`` (pixels) at ``src`` (n, m, 2: row, column) times ``weight`` (n, m; zero for
    padding) -- the outer products of their 1-D profiles, summed by a batched matrix product. ``profiles``: those
    unit 1-D profiles (rows', columns'; n, m, 2r + 1) when the caller has them (:func:`_source_profiles`)."""
    prof_r, prof_c = _source_profiles(r0, c0, k, src, sigma) if profiles is None else profiles
    prof_r = prof_r * weight[:, :, None]
    return np.matmul(prof_r.transpose(0, 2, 1), prof_c)


def _source_profiles(r0: np.ndarray, c0: np.ndarray, k: np.ndarray, src: np.ndarray,
                     sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """The unit 1-D profiles (n, m, 2r + 1) along the rows and the columns of each site's square of offsets ``k``
    around ``(r0, c0)`` of the Gaussians of width ``sigma`` (pixels) at ``src`` (n, m, 2: row, column)."""
    prof_r = np.exp(-0.5 * ((r0[:, None, None] + k - src[:, :, 0, None]) / sigma) ** 2)
    prof_c = np.exp(-0.5 * ((c0[:, None, None] + k - src[:, :, 1, None]) / sigma) ** 2)
    return prof_r, prof_c


@dataclass(frozen=True)
class _LatticeTemplate:
    """Unit Gaussians at lattice positions, read in the sites' windows without rendering the image.

    A plain Gaussian sum, every lattice position within :data:`GAUSSIAN_REACH` widths of a window's square
    (nothing of the simulator's rendering is copied): the outer products of the 1-D profiles of those
    Gaussians, summed per site by a batched matrix product -- a cost set by the sites, not by the image's size
    (a 2048^2 field holds ~7000 columns).
    """

    k: np.ndarray       # (2r + 1,) offsets of the window's square
    iy: np.ndarray      # (p,) each window pixel's row in the square
    ix: np.ndarray      # (p,) and column
    r0: np.ndarray      # (n,) each site's centre pixel row
    c0: np.ndarray      # (n,) and column
    src: np.ndarray     # (n, m, 2): the lattice positions (row, column) that reach each site, padded
    used: np.ndarray    # (n, m) real entries of the padding

    @staticmethod
    def build(r0, c0, lattice_rows, lattice_cols, dy, dx, sigma_max) -> _LatticeTemplate:
        r = int(max(np.abs(dy).max(), np.abs(dx).max()))
        lat = np.column_stack([np.asarray(lattice_rows, float), np.asarray(lattice_cols, float)])
        idx, used = _padded_near(np.column_stack([r0, c0]).astype(float), lat, r + GAUSSIAN_REACH * sigma_max + 1)
        src = lat[idx] if len(lat) else np.zeros(idx.shape + (2,))
        return _LatticeTemplate(k=np.arange(-r, r + 1), iy=dy + r, ix=dx + r, r0=np.asarray(r0), c0=np.asarray(c0),
                                src=src, used=used)

    def at(self, sigma: float, weight: np.ndarray | None = None) -> np.ndarray:
        """(n, p): the template of width ``sigma`` (pixels) at every window pixel of every site; each Gaussian times
        ``weight`` (n, m, zero for padding) where given, else unit heights."""
        weight = self.used.astype(float) if weight is None else weight
        out = np.empty((len(self.r0), self.iy.size))
        for sl in _budget_blocks(len(self.r0), self.src.shape[1], self.k.size):
            square = _gaussian_squares(self.r0[sl], self.c0[sl], self.k, self.src[sl], weight[sl], sigma)
            out[sl] = square[:, self.iy, self.ix]
        return out


#: :func:`refine_jointly`: rounds of the joint fit, and the most a centre moves in one Gauss-Newton step and in
#: all (column widths).
JOINT_ROUNDS = 4
JOINT_STEP_WIDTHS = 0.5
JOINT_MAX_SHIFT_WIDTHS = 2.0


#: :func:`refine_jointly` and :func:`_joint_heights` (imgspeed): the rows of each block (:func:`_budget_blocks`) are
#: read in parts of at most :data:`JOINT_PART_ROWS` rows on this many threads (NumPy releases the GIL: two cores' wall
#: time on the serial tail of ``phases`` under a wide probe). Every row keeps its block's neighbour padding and is
#: computed by the same operations, so the numbers are those of the blocks one after another (tests/imaging/
#: test_joint_threads.py); also the strips of the residual pass's two blurs (:func:`_gaussian_strips`). 1: the parts
#: one after another on the caller's thread (before imgspeed4: the blocks whole).
JOINT_THREADS = 2
#: Rows per part (above). imgspeed4: 128, so that each part's (rows x window pixels) arrays (~0.8 MB at the wide
#: 2048² benchmark's 800-pixel windows) stay in a core's cache through the ~20 elementwise passes of a step: the joint
#: fit's CPU on that image 1.58 -> 1.19 and 1.51 -> 1.37 s (medians of 4, 2 threads, two runs at load 8-10), the
#: same numbers (docs/validation.md "imgspeed4 ... session 39"). 512 before (imgspeed).
JOINT_PART_ROWS = 128
#: :func:`refine_jointly` (imgspeed2): within a round the heights' window readings (:func:`_window_readings`) hand
#: what they computed to the centres' steps (:func:`_joint_block`) of the same windows -- the sources' 1-D profiles
#: and each column's Gaussian at the round's centres, the same expressions of the same numbers -- so those are not
#: computed twice: the same numbers bit for bit. False: each step computes its own (before).
JOINT_SHARED = True
#: :func:`refine_jointly` (imgspeed3): each window's sources (the heights' and the centres' model) are those within
#: this many column widths of the window's square, not :data:`GAUSSIAN_REACH` (8). A source 4 widths past the square
#: adds exp(-8) ~ 3e-4 of its height at the square's edge and less inside the disc; the window's own column is
#: several times that height. Measured (docs/validation.md "imgspeed3"): the rows of the 38 wide-probe tuning draws
#: and of 7000-7099 move by at most 1e-4 pm (RMS) and 3.5e-6 (fill MAE), no target; with the other two reaches about
#: -0.5 s CPU of ~5 s in the wide 2048² column finder. None: :data:`GAUSSIAN_REACH` (before).
JOINT_REACH_WIDTHS: float | None = 4.0
#: :func:`refine_jointly` (imgspeed3): Gauss-Newton steps of each column's centre per round (:func:`_joint_block`). 2:
#: before; 1 measured (docs/validation.md "imgspeed3").
JOINT_STEPS = 2


@dataclass(frozen=True)
class _JointWindows:
    """The windows of some rows of the joint fit: each row's centre pixel ``r0, c0``, the sources within reach
    (``idx``, ``used``: padded to the block's most, the row itself left out) and the gathered window
    (:func:`gather_windows`: values ``z``, pixel coordinates ``yy, xx``, in-image mask ``valid``); ``sl`` the rows."""

    sl: slice
    r0: np.ndarray
    c0: np.ndarray
    idx: np.ndarray
    used: np.ndarray
    z: np.ndarray | None = None
    yy: np.ndarray | None = None
    xx: np.ndarray | None = None
    valid: np.ndarray | None = None
    shared: dict | None = None  # JOINT_SHARED: the round's heights leave their Gaussians here for its centres' steps

    def part(self, sub: slice) -> _JointWindows:
        """The rows ``sub`` (relative to ``sl``), same padding; not gathered."""
        fields = (self.r0, self.c0, self.idx, self.used)
        return _JointWindows(slice(self.sl.start + sub.start, self.sl.start + sub.stop), *(a[sub] for a in fields))

    def gathered(self, data: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> _JointWindows:
        """With the windows of offsets ``dy, dx`` read from ``data`` (:func:`gather_windows`, row by row: the values of the
        whole block's gather)."""
        return replace(self, **dict(zip(("z", "yy", "xx", "valid"), gather_windows(data, self.r0, self.c0, dy, dx))))


def _joint_windows(data, pos, src, dy, dx, sigma, *, reach: float | None = None) -> list[_JointWindows]:
    """The windows of every row of ``pos`` (n x 2 pixels), in the blocks :func:`_budget_blocks` makes (each padded
    to its own most sources within reach of ``src``: ``reach`` widths of the window's square, :data:`GAUSSIAN_REACH`
    where None), cut into parts of :data:`JOINT_PART_ROWS` rows, each part's windows gathered on
    :data:`JOINT_THREADS` threads."""
    reach = GAUSSIAN_REACH if reach is None else reach
    r = int(max(np.abs(dy).max(), np.abs(dx).max()))
    side = 2 * r + 1
    parts, workers = [], max(1, JOINT_THREADS)
    for sl in _budget_blocks(len(pos), _most_near(pos, src, side // 2 + reach * sigma + 2, workers), side):
        p = pos[sl]
        r0, c0 = np.rint(p[:, 0]).astype(np.int64), np.rint(p[:, 1]).astype(np.int64)
        idx, used = _padded_near(np.column_stack([r0, c0]).astype(float), src, r + reach * sigma + 1, workers)
        used = used & (idx != np.arange(sl.start, sl.stop)[:, None])  # every source but the column itself
        block = _JointWindows(sl, r0, c0, idx, used)
        step = max(1, JOINT_PART_ROWS)  # on one thread too: cache-sized parts (imgspeed4)
        parts += [block.part(slice(b, min(len(p), b + step))) for b in range(0, len(p), step)]
    return _threaded(lambda part: part.gathered(data, dy, dx), parts)


def _threaded(func, items: list) -> list:
    """``[func(item) for item in items]``, on :data:`JOINT_THREADS` threads where more than one item."""
    if JOINT_THREADS <= 1 or len(items) < 2:
        return [func(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(JOINT_THREADS, len(items)), thread_name_prefix="layerscope-joint") as pool:
        return list(pool.map(func, items))


def refine_jointly(image: np.ndarray, rows: np.ndarray, cols: np.ndarray, *, sigma_px: float, radius_px: float,
                   fixed: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                   rounds: int | None = None,
                   held: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Column centres fitted jointly with their neighbours (one shared width), from the image alone.

    A column's own Gaussian fit is pulled towards its neighbours where their tails reach its window (a
    probe as wide as a fifth of the spacing). Each round here: (1) at the centres of the round, every
    column's height and local background, ``A_i g(r - c_i; s) + B_i`` in a disc of ``radius_px`` around it
    with every other column's Gaussian in the model, by one sparse linear solve for all heights at once
    (:func:`_joint_heights`); (2) every centre refined by two Gauss-Newton steps on its window less the plain
    Gaussian sum of the other columns and of the ``fixed`` sources (rows, columns, heights: columns not
    refined, e.g. lattice sites without a detected column), a step at most :data:`JOINT_STEP_WIDTHS` widths;
    ``rounds`` of them (:data:`JOINT_ROUNDS` by default). ``held`` (mask): columns whose heights are solved
    with the others' but whose centres stay at their start (placed already with their neighbours in the model).
    The width ``sigma_px`` is shared and measured from the image by the caller. A centre that moves more
    than :data:`JOINT_MAX_SHIFT_WIDTHS` widths from its start in all keeps its start. Both steps of a round read
    the same windows (:func:`_joint_windows`, gathered once), their row parts on :data:`JOINT_THREADS` threads.

    Returns
    -------
    rows, cols, amplitude, background : numpy.ndarray
        Refined centres (fractional pixels), heights and backgrounds (image units) of the last round; the
        start where the fit failed or ran off.
    """
    data = as_float_image(image)
    start = np.column_stack([np.asarray(rows, float), np.asarray(cols, float)])
    fix_pos = np.zeros((0, 2)) if fixed is None else np.column_stack([fixed[0], fixed[1]]).astype(float)
    fix_amp = np.zeros(0) if fixed is None else np.clip(np.nan_to_num(np.asarray(fixed[2], float)), 0, None)
    pos, amp, bkg = start.copy(), np.zeros(len(start)), np.zeros(len(start))
    dy, dx = disc_offsets(radius_px)
    for _ in range(JOINT_ROUNDS if rounds is None else max(0, rounds)):
        src = np.vstack([pos, fix_pos])
        windows = _joint_windows(data, pos, src, dy, dx, sigma_px, reach=JOINT_REACH_WIDTHS)
        if JOINT_SHARED:
            windows = [replace(win, shared={}) for win in windows]
        amp, bkg = _joint_heights(data, pos, fix_pos, fix_amp, dy, dx, sigma_px, windows=windows)
        weight = np.concatenate([np.clip(amp, 0, None), fix_amp])
        new = [np.empty_like(pos), np.empty_like(amp), np.empty_like(bkg)]
        done = _threaded(lambda win: _joint_block(win, pos, amp, bkg, src, weight, dy, dx, sigma_px), windows)
        for win, out in zip(windows, done):
            new[0][win.sl], new[1][win.sl], new[2][win.sl] = out
        pos = new[0]
        if held is not None:
            pos[held] = start[held]
    away = ~np.all(np.isfinite(pos), 1) | (np.hypot(*(pos - start).T) > JOINT_MAX_SHIFT_WIDTHS * sigma_px)
    pos[away] = start[away]
    return pos[:, 0], pos[:, 1], amp, bkg


def _joint_heights(data, pos, fix_pos, fix_amp, dy, dx, sigma, *, windows: list[_JointWindows] | None = None,
                   reach: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Heights ``A`` and backgrounds ``B`` of the columns at ``pos`` (n x 2 pixels) with every other column in the
    model: per window ``(A_i, B_i) = P_i (z_i - sum_j A_j t_ij - fixed)``, ``P_i`` the 2 x p least squares of
    ``[g_i, 1]`` and ``t_ij`` column j's Gaussian on window i; the heights' equations ``A + C A = a`` (sparse,
    the neighbours within reach) solved at once (:func:`scipy.sparse.linalg.spsolve`). ``windows``: those of
    :func:`_joint_windows` for ``pos`` and its sources when the caller has them; ``reach``: theirs (widths)."""
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    n = len(pos)
    src = np.vstack([pos, fix_pos])
    if windows is None:
        windows = _joint_windows(data, pos, src, dy, dx, sigma, reach=reach)
    a, b = np.zeros(n), np.zeros(n)
    ii, jj, ca, cb = [], [], [], []
    every_amp = np.concatenate([np.zeros(n), fix_amp])
    for win, (a_w, b_w, c_a, c_b) in zip(windows, _threaded(lambda w: _window_readings(w, pos, src, dy, dx, sigma),
                                                            windows)):
        sl, idx, used = win.sl, win.idx, win.used
        fixed_j = used & (idx >= n)
        known = every_amp[idx] * fixed_j
        a[sl], b[sl] = a_w - (c_a * known).sum(1), b_w - (c_b * known).sum(1)
        free = used & (idx < n)
        ii.append(np.nonzero(free)[0] + sl.start), jj.append(idx[free]), ca.append(c_a[free]), cb.append(c_b[free])
    ii, jj, ca, cb = (np.concatenate(v) if v else np.zeros(0) for v in (ii, jj, ca, cb))
    ii, jj = ii.astype(np.int64), jj.astype(np.int64)
    system = sparse.identity(n, format="csr") + sparse.csr_matrix((ca, (ii, jj)), shape=(n, n))
    amp = np.asarray(spsolve(system.tocsc(), np.nan_to_num(a)), float) if n else np.zeros(0)
    amp = np.where(np.isfinite(amp), amp, np.nan_to_num(a))
    bkg = b - sparse.csr_matrix((cb, (ii, jj)), shape=(n, n)) @ amp
    return amp, bkg


def _window_readings(win: _JointWindows, pos, src, dy, dx, sigma):
    """For the rows ``win.sl`` of ``pos`` (their windows ``win``): the single-Gaussian least squares ``a, b`` of each
    window (disc of offsets ``dy, dx`` around the nearest pixel) and what each source within reach (``win.idx``,
    ``win.used``) adds to them per unit height (``c_a``, ``c_b``)."""
    r = int(max(np.abs(dy).max(), np.abs(dx).max()))
    k = np.arange(-r, r + 1)
    p = pos[win.sl]
    r0, c0, idx, used, z, yy, xx = win.r0, win.c0, win.idx, win.used, win.z, win.yy, win.xx
    w = win.valid.astype(float)
    g = np.exp(-0.5 * ((yy - p[:, 0, None]) ** 2 + (xx - p[:, 1, None]) ** 2) / sigma**2) * w
    s_1, s_g, s_gg = w.sum(1), g.sum(1), (g * g).sum(1)
    det = s_gg * s_1 - s_g * s_g
    ok = (s_1 >= 5) & (det > 1e-12)
    det = np.where(ok, det, 1.0)
    s_z, s_gz = (z * w).sum(1), (g * z).sum(1)
    a, b = (s_gz * s_1 - s_g * s_z) / det, (s_gg * s_z - s_g * s_gz) / det
    # per source: the sums of its Gaussian and of its product with g_i over the window, from its 1-D profiles
    sq_w, sq_g = np.zeros((len(p), k.size, k.size)), np.zeros((len(p), k.size, k.size))
    sq_w[:, dy + r, dx + r], sq_g[:, dy + r, dx + r] = w, g
    prof_r, prof_c = _source_profiles(r0, c0, k, src[idx], sigma)
    if win.shared is not None:  # JOINT_SHARED: for the round's centre steps on these windows
        win.shared.update(g=g, profiles=(prof_r, prof_c))
    s_t = (np.matmul(prof_r, sq_w) * prof_c).sum(-1)
    s_gt = (np.matmul(prof_r, sq_g) * prof_c).sum(-1)
    c_a = np.where(ok[:, None] & used, (s_gt * s_1[:, None] - s_g[:, None] * s_t) / det[:, None], 0.0)
    c_b = np.where(ok[:, None] & used, (s_gg[:, None] * s_t - s_g[:, None] * s_gt) / det[:, None], 0.0)
    return np.where(ok, a, np.nan), np.where(ok, b, np.nan), c_a, c_b


def _joint_normal_equations(q, target, yy, xx, w, sigma, g=None):
    """(n, 4, 4) and (n, 4): ``J^T J + 1e-9 I`` and ``J^T r`` of ``A g + B`` (``q``: A, B, row, column) on the windows
    (``target``, pixel coordinates ``yy, xx``, mask ``w``), from the sums of the Jacobian's columns' products
    (``g``, ``w``, ``A g dy / s^2``, ``A g dx / s^2``) without stacking the Jacobian. ``g``: the masked Gaussian at
    ``q``'s centres when the caller has it (:data:`JOINT_SHARED`)."""
    ry, rx = yy - q[:, 2, None], xx - q[:, 3, None]
    if g is None:
        g = np.exp(-0.5 * (ry**2 + rx**2) / sigma**2) * w
    resid = target - q[:, 0, None] * g - q[:, 1, None] * w
    a = q[:, 0] / sigma**2
    gy, gx = g * ry, g * rx
    cols = (g, w, gy, gx)
    scale = (np.ones_like(a), np.ones_like(a), a, a)
    jtj = np.empty((len(q), 4, 4))
    for i in range(4):
        for j in range(i, 4):
            v = _times_mask(cols, i, j, w).sum(1)
            jtj[:, i, j] = jtj[:, j, i] = v * scale[i] * scale[j]
    jtr = np.stack([(resid if i == 1 else c * resid).sum(1) * f for i, (c, f) in enumerate(zip(cols, scale))], axis=1)
    return jtj + 1e-9 * np.eye(4), jtr


def _times_mask(cols, i: int, j: int, w: np.ndarray) -> np.ndarray:
    """``cols[i] * cols[j]`` where ``cols[1]`` is the 0/1 mask ``w`` and the others are zero outside it: a product
    with the mask is the other factor itself (bit for bit, the sign of a zero included), so it is not formed
    (imgspeed); ``w`` itself for the mask's square."""
    if i == 1 and j == 1:
        return w
    if 1 in (i, j):
        return cols[j if i == 1 else i]
    return cols[i] * cols[j]


def _joint_block(win: _JointWindows, pos, amp, bkg, src, weight, dy, dx, sigma):
    """Centres of the columns ``win.sl`` (their windows ``win``) after two Gauss-Newton steps of ``A g + B`` on their
    windows less every other source's Gaussian (``src``, ``weight``); heights and backgrounds with them."""
    r = int(max(np.abs(dy).max(), np.abs(dx).max()))
    k = np.arange(-r, r + 1)
    sl, p = win.sl, pos[win.sl]
    idx, used = win.idx, win.used  # every source but the column itself
    shared = dict(win.shared or {})  # JOINT_SHARED: the heights' readings of these windows, this round
    if win.shared:
        win.shared.clear()
    others = _gaussian_squares(win.r0, win.c0, k, src[idx], weight[idx] * used, sigma,
                               profiles=shared.get("profiles"))[:, dy + r, dx + r]
    z, yy, xx, w = win.z, win.yy, win.xx, win.valid.astype(float)
    target = (z - others) * w
    q = np.column_stack([np.nan_to_num(amp[sl]), np.nan_to_num(bkg[sl]), p])  # (n, 4): A, B, row, column
    for step_no in range(JOINT_STEPS):
        jtj, jtr = _joint_normal_equations(q, target, yy, xx, w, sigma, g=shared.get("g") if step_no == 0 else None)
        ok = (w.sum(1) >= 5) & (q[:, 0] > 0) & np.all(np.isfinite(jtr), 1)
        step = np.zeros_like(q)
        step[ok] = np.linalg.solve(jtj[ok], jtr[ok][:, :, None])[:, :, 0]
        move = np.hypot(step[:, 2], step[:, 3])
        limit = JOINT_STEP_WIDTHS * sigma
        step[:, 2:] *= np.where(move > limit, limit / np.maximum(move, 1e-12), 1.0)[:, None]
        q = q + np.where(np.isfinite(step), step, 0.0)
    return q[:, 2:], q[:, 0], q[:, 1]


#: A fitted column whose centre lies closer to the image edge than this many fitted widths (Gaussian
#: standard deviations) is cut by the border (:func:`border_columns`). Random draws 81 and 15: the
#: maxima at 0.01-0.036 nm from the edge (0.4-1.4 widths) include columns whose true centre lies
#: outside the field (0.16-0.25 nm from the nearest column in it); of those 1.5 widths to 0.2 nm
#: inside, all but one lay within 0.04 nm of a true column (docs/validation.md, recall2).
BORDER_WIDTHS = 1.5


def border_columns(x_nm: np.ndarray, y_nm: np.ndarray, sigma_nm: np.ndarray, *, shape: tuple[int, int],
                   pixel_size_nm: float, widths: float = BORDER_WIDTHS) -> np.ndarray:
    """Columns cut by the image border: fitted centre less than ``widths`` x the width from an edge, or outside.

    Such a fit sees one flank of its column only: a column centred just outside the field leaves a
    maximum on the edge pixels that the fit places inside, 0.15-0.25 nm from any column in the field.
    The width is the median of the fitted widths ``sigma_nm`` (nm; NaN where a fit failed), one probe
    for the whole image. Returns a boolean mask (True: at the border).
    """
    x, y = np.asarray(x_nm, dtype=float), np.asarray(y_nm, dtype=float)
    if x.size == 0:
        return np.zeros(0, dtype=bool)
    s = np.asarray(sigma_nm, dtype=float)
    width = float(np.nanmedian(s)) if np.isfinite(s).any() else 0.0
    h_nm, w_nm = shape[0] * pixel_size_nm, shape[1] * pixel_size_nm
    edge = np.minimum.reduce([x, y, w_nm - x, h_nm - y])
    return edge < widths * width


def find_columns(
    image: np.ndarray,
    *,
    pixel_size_nm: float,
    min_separation_nm: float,
    column_sigma_nm: float,
    relative_threshold: float = 0.3,
    noise_sigmas: float = 5.0,
    n_iter: int = 4,
    noise_model: str = "poisson",
    scheduler=None,
    detection_image: np.ndarray | None = None,
    resolve_sigma_nm: float | None = None,
    neighbour_nm: float | None = None,
    fit_neighbours: bool = True,
    lattice_nm: float | None = None,
) -> pd.DataFrame:
    """Find every visible atom column with sub-pixel precision.

    Detection (:func:`detect_columns`) followed by batched Gaussian refinement
    (:func:`refine_columns`) in a window of 0.45 x ``min_separation_nm``.

    Parameters
    ----------
    image : numpy.ndarray
        2-D image.
    pixel_size_nm : float
        Pixel size in nm.
    min_separation_nm : float
        Smallest column separation to resolve, in nm (from the lattice).
    column_sigma_nm : float
        Starting column width (Gaussian standard deviation), in nm.
    relative_threshold, noise_sigmas : float
        Detection thresholds, see :func:`detect_columns`.
    n_iter : int
        Refinement iterations.
    noise_model : {"poisson", "gaussian"}
        Noise model of the refinement.
    scheduler : None, str or distributed.Client
        Where the refinement's blocks run.
    detection_image : numpy.ndarray, optional
        Image to detect the columns on (e.g. a denoised one); the refinement always fits
        ``image`` itself, so positions and intensities come from the measured counts.
    resolve_sigma_nm : float, optional
        Width of the resolving detection pass (:func:`detect_columns`, :func:`resolving_sigma`).
    neighbour_nm : float, optional
        Nearest-neighbour distance of the lattice: dim columns one neighbour distance from a kept
        column are kept too (:func:`detect_columns`).
    fit_neighbours : bool
        Fit those dim columns with the others (their cells then bound the neighbours' fits); False
        reports them at their detection pixel, ``fit_ok`` False, and fits the others as without them.
    lattice_nm : float, optional
        Nearest-neighbour distance of the lattice (nm) for the lattice pass (:func:`lattice_columns`):
        columns with no maximum at all, one of the image's own neighbour vectors from two detected
        columns, kept where a fit there shows a significant column (reported with that fit; the other
        columns keep theirs).

    Returns
    -------
    pandas.DataFrame
        One row per column: ``x_nm, y_nm`` (corner-origin convention), ``amplitude`` and
        ``background`` (image units), ``sigma_nm``, ``volume`` (image units x nm^2),
        ``position_error_pm`` (1-sigma per axis from the fit), ``fit_ok``, ``contrast``
        (detection contrast), ``snr`` (contrast / filtered noise), ``at_border`` (cut by the image
        border, :func:`border_columns`), ``neighbour_pass`` (kept as a dim column of the lattice,
        ``neighbour_nm``), ``lattice_pass`` (found by the lattice pass, ``lattice_nm``), ``residual_pass``
        (found on the image less the found columns, :data:`RESIDUAL_PASS`, where the lattice pass runs). Where the
        lattice pass runs and :data:`GENERIC_JOINT` is on, ``x_nm, y_nm`` are the centres refitted jointly with the
        neighbours (:func:`_joint_rows`); the other values are the columns' own fits.
    """
    data = as_float_image(image)
    det = detect_columns(
        data if detection_image is None else as_float_image(detection_image, "detection_image"),
        pixel_size_nm=pixel_size_nm,
        min_separation_nm=min_separation_nm,
        column_sigma_nm=column_sigma_nm,
        relative_threshold=relative_threshold,
        noise_sigmas=noise_sigmas,
        resolve_sigma_nm=resolve_sigma_nm,
        neighbour_nm=neighbour_nm,
    )
    return fit_detected(data, det, pixel_size_nm=pixel_size_nm, min_separation_nm=min_separation_nm,
                        column_sigma_nm=column_sigma_nm, n_iter=n_iter, noise_model=noise_model, scheduler=scheduler,
                        fit_neighbours=fit_neighbours, lattice_nm=lattice_nm, noise_sigmas=noise_sigmas,
                        relative_threshold=relative_threshold)


def fit_detected(image: np.ndarray, det: DetectionResult, *, pixel_size_nm: float, min_separation_nm: float,
                 column_sigma_nm: float, n_iter: int = 4, noise_model: str = "poisson", scheduler=None,
                 fit_neighbours: bool = True, lattice_nm: float | None = None, noise_sigmas: float = 5.0,
                 relative_threshold: float = 0.3) -> pd.DataFrame:
    """The refinement and table of :func:`find_columns` for maxima detected already (``det``, :func:`detect_columns`).

    For a caller that keeps the detection (its :attr:`DetectionResult.first_pass` for
    :func:`resolving_maxima`); arguments and the returned table as in :func:`find_columns`, whose
    second half this is (``noise_sigmas`` and ``relative_threshold`` are the lattice pass's tests).
    """
    data = as_float_image(image)
    radius_px = 0.45 * min_separation_nm / pixel_size_nm
    dim = np.zeros(det.rows.size, dtype=bool) if det.neighbour is None or fit_neighbours else det.neighbour
    fit = refine_columns(
        data, det.rows[~dim], det.cols[~dim], radius_px=radius_px, sigma_px=column_sigma_nm / pixel_size_nm,
        n_iter=n_iter, noise_model=noise_model, scheduler=scheduler,
    )
    if dim.any():  # not fitted: the detection pixel, fit_ok False, no fitted values
        fit = _with_unfitted(fit, dim, det.rows[dim], det.cols[dim])
    contrast, lattice = det.contrast, np.zeros(det.rows.size, dtype=bool)
    if lattice_nm is not None and lattice_nm > 0 and not dim.any():
        extra = lattice_columns(data, fit, pixel_size_nm=pixel_size_nm, column_sigma_nm=column_sigma_nm,
                                 neighbour_nm=lattice_nm, min_separation_nm=min_separation_nm,
                                 noise_sigmas=noise_sigmas, relative_threshold=relative_threshold)
        if len(extra):  # their own fits (the others' are those without them)
            fit = pd.concat([fit, extra[fit.columns]], ignore_index=True)
            contrast = np.concatenate([contrast, extra["contrast"].to_numpy()])
            lattice = np.concatenate([lattice, np.ones(len(extra), dtype=bool)])
    residual = np.zeros(len(fit), dtype=bool)
    wide = lattice_nm is not None and lattice_nm > 0 and not dim.any() and int(fit["fit_ok"].sum()) >= 10
    width = _found_width(data, fit) if wide and (RESIDUAL_PASS or GENERIC_JOINT) else None
    if wide and RESIDUAL_PASS:
        extra = residual_columns(data, fit, pixel_size_nm=pixel_size_nm, column_sigma_nm=column_sigma_nm,
                                  neighbour_nm=lattice_nm, min_separation_nm=min_separation_nm,
                                  noise_sigmas=noise_sigmas, relative_threshold=relative_threshold, width=width)
        if len(extra):
            fit = pd.concat([fit, extra[fit.columns]], ignore_index=True)
            contrast = np.concatenate([contrast, extra["contrast"].to_numpy()])
            lattice = np.concatenate([lattice, np.zeros(len(extra), dtype=bool)])
            residual = np.concatenate([residual, np.ones(len(extra), dtype=bool)])
    if wide and GENERIC_JOINT:
        hold = {"": np.zeros(len(fit), bool), "lattice": lattice, "lattice+residual": lattice | residual}
        fit = _joint_rows(data, fit, width=width, placed=hold[GENERIC_JOINT_HOLD],
                          min_separation_px=min_separation_nm / pixel_size_nm)
    table = pd.DataFrame(
        {
            "x_nm": (fit["col"].to_numpy() + 0.5) * pixel_size_nm,
            "y_nm": (fit["row"].to_numpy() + 0.5) * pixel_size_nm,
            "amplitude": fit["amplitude"].to_numpy(),
            "background": fit["background"].to_numpy(),
            "sigma_nm": fit["sigma_px"].to_numpy() * pixel_size_nm,
            "volume": fit["volume"].to_numpy() * pixel_size_nm**2,
            "position_error_pm": fit["position_error_px"].to_numpy() * pixel_size_nm * 1e3,
            "fit_ok": fit["fit_ok"].to_numpy(),
            "contrast": contrast,
            "snr": contrast / det.noise if det.noise > 0 else np.full(contrast.size, np.inf),
        }
    )
    table["at_border"] = border_columns(table["x_nm"].to_numpy(), table["y_nm"].to_numpy(),
                                        np.where(table["fit_ok"], table["sigma_nm"], np.nan),
                                        shape=data.shape, pixel_size_nm=pixel_size_nm)
    neighbour = np.zeros(det.rows.size, dtype=bool) if det.neighbour is None else det.neighbour
    table["neighbour_pass"] = np.concatenate([neighbour, np.zeros(len(table) - neighbour.size, dtype=bool)])
    table["lattice_pass"] = lattice
    table["residual_pass"] = residual
    if width is not None:  # the width measured with every found column in the model (detection_limit reads it)
        table.attrs["column_sigma_nm"] = float(width) * pixel_size_nm
    return table


def _with_unfitted(fit: pd.DataFrame, unfitted: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> pd.DataFrame:
    """:func:`refine_columns`'s frame of the fitted maxima spread over all maxima, the ``unfitted`` ones (mask) at
    their pixel (``rows, cols``) with NaN fitted values and ``fit_ok`` False."""
    full = pd.DataFrame({k: np.full(unfitted.size, np.nan) for k in fit.columns if k != "fit_ok"})
    full["fit_ok"] = np.zeros(unfitted.size, dtype=bool)
    for k in fit.columns:
        full.loc[~unfitted, k] = fit[k].to_numpy()
    full.loc[unfitted, "row"], full.loc[unfitted, "col"] = rows.astype(float), cols.astype(float)
    return full
