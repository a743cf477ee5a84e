"""The dimmest column an image can show beside bright ones: a per-image detection limit and its flag.

Under a wide probe a dim column (a half-occupied spinel column, a mixed Li-layer column at ~0.5 of a TM
column) one nearest-neighbour distance from bright ones has no maximum of its own: it sits in its
neighbours' tails, and only a fit with the neighbours in the model can tell its height from theirs
(docs/validation.md "imgwide5", "imgflag"). :func:`detection_limit` computes, from the image's own
numbers and no material model, the smallest height (as a fraction of the median column's) that such a
column would show at :data:`LIMIT_SIGMAS` standard errors in that fit; :func:`detection_limit_flags`
flags the image where the limit exceeds :data:`FLAG_FRACTION`.

The fit is imgwide5's joint fit (its census's "joint SNR") in the lattice pass's window
(:data:`layerscope.imaging.columns.LATTICE_WINDOW_WIDTHS`; the lattice pass holds the neighbours' heights,
this fit frees them): a disc of :data:`WINDOW_WIDTHS` column widths around a column at the image's pixel
size, a Gaussian of the measured width at its centre and at each detected column whose Gaussian reaches
the disc (centre within 3 widths of it), every height free, plus a constant. Least squares with white
noise of the measured pixel standard deviation ``s``: the standard error of the centre height is
``s sqrt([(A^T A)^-1]_00)``, a property of the geometry alone (no draw is simulated; the image's values
enter only through ``s``). It is read at up to :data:`SITES` detected columns, each with its own detected
neighbours (the image's own spacings and arrangement, no material model), and the median taken: a dim
column at a site of the same lattice has about the same neighbours and standard error (on 16 wide-probe
draws the missed dim columns' median standard error, read with the truth's positions, was 1.09 times the
TM columns', quartiles 1.05-1.13: docs/validation.md "imgwide5"'s census rows). The limit is
:data:`LIMIT_SIGMAS` such errors over the median of the heights the same fits read on the image.

Constants: :data:`LIMIT_SIGMAS` (3 standard errors), :data:`WINDOW_WIDTHS` (2 widths, the lattice
pass's window), :data:`SITES` (100), :data:`FLAG_FRACTION` (the level flagged, chosen from the confusion table of
docs/validation.md "imgflag"), :data:`DETECTION_LIMIT` (False: no limit computed, no flag; the
outputs as before).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DetectionLimit", "detection_limit", "detection_limit_flags", "image_detection_limit",
           "phases_detection_limit", "heights_free_width", "report_value", "REPORT_LABEL", "DETECTION_LIMIT",
           "LIMIT_SIGMAS", "WINDOW_WIDTHS", "SITES", "FLAG_FRACTION"]

#: Compute the limit and the flag (summary.json ``detection_limit``, flag ``dim_columns_below_limit``).
DETECTION_LIMIT = True
#: A column is detectable at this many standard errors of its fitted height.
LIMIT_SIGMAS = 3.0
#: The fit's disc around the dim column, in column widths (Gaussian standard deviations); the lattice
#: pass's window (:data:`layerscope.imaging.columns.LATTICE_WINDOW_WIDTHS`).
WINDOW_WIDTHS = 2.0
#: The limit (fraction of the median column's height) above which the image is flagged.
FLAG_FRACTION = 0.5
#: The standard error is the median over at most this many columns spread over the field.
SITES = 100
#: Neighbours whose Gaussian centre lies within this many widths of the disc's edge are in the model.
_REACH_WIDTHS = 3.0


@dataclass(frozen=True)
class DetectionLimit:
    """The limit and the numbers it came from (units in the names)."""

    fraction: float  #: smallest detectable height over the median column's (NaN where not computable)
    column_sigma_nm: float
    nn_distance_nm: float
    pixel_noise: float  #: standard deviation of a pixel, image units
    median_height: float  #: median height (above the fit's constant) the limit's fits read, image units
    pixel_size_nm: float

    def to_dict(self) -> dict[str, Any]:
        """The summary.json entry ``detection_limit``."""
        def r(v: float, n: int) -> float | None:
            return round(float(v), n) if np.isfinite(v) else None

        return {"fraction_of_median_column": r(self.fraction, 4), "sigmas": LIMIT_SIGMAS,
                "column_sigma_nm": r(self.column_sigma_nm, 5), "nn_distance_nm": r(self.nn_distance_nm, 5),
                "pixel_noise": r(self.pixel_noise, 6), "median_column_height": r(self.median_height, 6),
                "flag_above": FLAG_FRACTION}


def height_errors(xy_px: np.ndarray, sigma_px: float, *, data: np.ndarray | None = None,
                  sites: int | None = None) -> tuple[float, float]:
    """The median over up to ``sites`` (:data:`SITES`) of the columns ``xy_px`` (n, 2: x, y in pixels, pixel centres
    at i + 0.5), spread over the list, of the standard error (pixel-noise units) of the column's height in the fit of
    the module docstring with the other columns as its neighbours, ``sqrt([(A^T A)^-1]_00)`` (inf where no disc
    determines it), and with ``data`` the median of the heights that fit reads there (NaN without ``data``; the
    columns whose disc lies inside the image)."""
    from scipy.spatial import cKDTree

    xy = np.asarray(xy_px, dtype=float).reshape(-1, 2)
    if len(xy) == 0 or not (np.isfinite(sigma_px) and sigma_px > 0):
        return float("inf"), float("nan")
    r = WINDOW_WIDTHS * sigma_px
    n = int(np.ceil(r)) + 1
    grid = np.mgrid[-n:n + 1, -n:n + 1].reshape(2, -1).T[:, ::-1]  # (x, y) pixel offsets
    if data is not None:  # only columns whose disc lies inside the image
        inside = (xy >= n + 1).all(axis=1) & (xy[:, 0] < data.shape[1] - n - 1) & (xy[:, 1] < data.shape[0] - n - 1)
        pool = np.nonzero(inside)[0] if inside.any() else np.arange(len(xy))
    else:
        pool = np.arange(len(xy))
    tree = cKDTree(xy)
    pick = pool[np.unique(np.linspace(0, len(pool) - 1, min(len(pool), sites or SITES)).astype(int))]
    out = np.array([_one_fit(xy, tree, i, grid, sigma_px, r, data) for i in pick])
    return float(np.median(out[:, 0])), float(np.nanmedian(out[:, 1])) if np.isfinite(out[:, 1]).any() else float("nan")


def _one_fit(xy, tree, i, grid, sigma_px, r, data) -> tuple[float, float]:
    """Column ``i``'s height standard error and (with ``data``) its height: a disc of radius ``r`` (pixels) about its
    pixel, the columns whose centres lie within ``r`` + :data:`_REACH_WIDTHS` widths of it free, a constant."""
    pix = grid + np.floor(xy[i]).astype(int)  # integer pixel indices (x, y); centres at + 0.5
    pix = pix[np.hypot(*(pix + 0.5 - xy[i]).T) <= r]
    near = tree.query_ball_point(xy[i], r + _REACH_WIDTHS * sigma_px)
    order = [i] + [j for j in near if j != i]
    d2 = ((pix[:, None, :] + 0.5 - xy[order][None, :, :]) ** 2).sum(axis=2)
    a = np.column_stack([np.exp(-0.5 * d2 / sigma_px**2), np.ones(len(pix))])
    if len(pix) < a.shape[1]:
        return float("inf"), float("nan")
    rhs = np.zeros((a.shape[1], 2))
    rhs[0, 0] = 1.0
    if data is not None:
        ok = (pix[:, 0] >= 0) & (pix[:, 1] >= 0) & (pix[:, 0] < data.shape[1]) & (pix[:, 1] < data.shape[0])
        rhs[:, 1] = a[ok].T @ data[pix[ok, 1], pix[ok, 0]] if ok.all() else np.nan
    try:  # [(A^T A)^-1]_00 and the heights by one solve
        sol = np.linalg.solve(a.T @ a, rhs)
    except np.linalg.LinAlgError:
        return float("inf"), float("nan")
    var = float(sol[0, 0])
    return (float(np.sqrt(var)) if var > 0 else float("inf")), (float(sol[0, 1]) if data is not None else float("nan"))


def detection_limit(xy_nm: np.ndarray, *, column_sigma_nm: float, pixel_noise: float, pixel_size_nm: float,
                    median_height: float | None = None, data: np.ndarray | None = None) -> DetectionLimit:
    """The detection limit of an image (module docstring) from its detected columns' centres ``xy_nm`` (n, 2; nm,
    the corner-origin convention): :data:`LIMIT_SIGMAS` times the median standard error of a column's height with its
    neighbours free, over the median column height -- ``median_height`` where given, else the median of the heights
    the same fit reads on ``data``."""
    from scipy.spatial import cKDTree

    xy = np.asarray(xy_nm, dtype=float).reshape(-1, 2)
    xy = xy[np.isfinite(xy).all(axis=1)]
    nn = float(np.median(cKDTree(xy).query(xy, k=2)[0][:, 1])) if len(xy) >= 2 else float("nan")
    se, height = height_errors(xy / pixel_size_nm, column_sigma_nm / pixel_size_nm, data=data)
    height = height if median_height is None else float(median_height)
    ok = np.isfinite(se) and np.isfinite(pixel_noise) and height > 0
    fraction = LIMIT_SIGMAS * se * pixel_noise / height if ok else float("nan")
    return DetectionLimit(float(fraction), float(column_sigma_nm), nn, float(pixel_noise), float(height),
                          float(pixel_size_nm))


def detection_limit_flags(limit: DetectionLimit | None, *, command: str) -> list[dict[str, str]]:
    """Flag ``dim_columns_below_limit`` where the limit exceeds :data:`FLAG_FRACTION` (none without a limit)."""
    if limit is None or not limit.fraction > FLAG_FRACTION:
        return []
    more = ("layerscope phases places the Li-layer and spinel sites from the lattice and measures their fill, "
            "but a site it reports as empty may hold such a column" if command == "phases" else
            "layerscope phases (a layered oxide) places the sites from the lattice instead")
    return [{"code": "dim_columns_below_limit", "message": (
        f"a column dimmer than {limit.fraction:.2f} of the median column's height one nearest-neighbour distance "
        f"({limit.nn_distance_nm:.3f} nm) from bright ones stands less than {LIMIT_SIGMAS:g} standard errors out of "
        f"this image's noise (column width sigma {limit.column_sigma_nm:.3f} nm, pixel noise "
        f"{limit.pixel_noise:.3g} over a median column height {limit.median_height:.3g}; flagged above "
        f"{FLAG_FRACTION:g}): half-occupied and mixed columns beside full ones may be missing from the columns "
        f"found; {more}. Check with a narrower probe or a higher dose")}]


def image_detection_limit(data: np.ndarray, xy_nm: np.ndarray, *, column_sigma_nm: float,
                          pixel_size_nm: float) -> DetectionLimit | None:
    """:func:`detection_limit` of an image ``data`` from its detected columns (centres ``xy_nm``) and the measured
    width: the pixel noise measured as the column finder measures it
    (:func:`layerscope.imaging.columns.image_pixel_noise`), the heights read by the limit's own fit. None where
    :data:`DETECTION_LIMIT` is off."""
    if not DETECTION_LIMIT:
        return None
    from layerscope.imaging.columns import image_pixel_noise

    return detection_limit(xy_nm, column_sigma_nm=column_sigma_nm, pixel_noise=image_pixel_noise(data)[0],
                           pixel_size_nm=pixel_size_nm, data=data)


def heights_free_width(data: np.ndarray, sites_nm: np.ndarray, every_nm: np.ndarray, *, sigma_nm: float,
                       pixel_size_nm: float) -> float:
    """The column width (nm) measured with every column's height free
    (:func:`layerscope.imaging.columns.measure_width_heights_free`, windows of
    :data:`~layerscope.imaging.columns.RESIDUAL_WIDTH_WINDOW` widths, as the generic finder's wide path measures it)
    at up to :data:`SITES` of ``sites_nm`` spread over the list, every column of ``every_nm`` in the model, from the
    guess ``sigma_nm``; NaN without a site or a guess."""
    from layerscope.imaging import columns as _col

    sites = np.asarray(sites_nm, dtype=float).reshape(-1, 2)
    if len(sites) == 0 or not (np.isfinite(sigma_nm) and sigma_nm > 0):
        return float("nan")
    pick = sites[np.unique(np.linspace(0, len(sites) - 1, min(len(sites), SITES)).astype(int))]
    rc, every = pick[:, ::-1] / pixel_size_nm - 0.5, np.asarray(every_nm, dtype=float)[:, ::-1] / pixel_size_nm - 0.5
    s0 = sigma_nm / pixel_size_nm
    return pixel_size_nm * _col.measure_width_heights_free(data, rc[:, 0], rc[:, 1], every[:, 0], every[:, 1],
                                                           radius_px=_col.RESIDUAL_WIDTH_WINDOW * s0, sigma_px=s0)


#: The report's line for the limit (both commands).
REPORT_LABEL = ("detection limit: smallest column height beside bright ones at 3 standard errors "
                "(fraction of the median column's; flagged above the stated level)")


def report_value(entry: dict[str, Any] | None) -> str:
    """The report's value for the summary.json entry ``detection_limit`` (None: not computed)."""
    if not entry:
        return "not computed"
    f = entry.get("fraction_of_median_column")
    head = "not computable" if f is None else f"{f:.2f}"
    return (f"{head} (column width sigma {entry.get('column_sigma_nm')} nm, nearest-neighbour distance "
            f"{entry.get('nn_distance_nm')} nm, pixel noise {entry.get('pixel_noise')}, median column height "
            f"{entry.get('median_column_height')}; flagged above {entry.get('flag_above')})")


def phases_detection_limit(data: np.ndarray, columns, *, column_sigma_nm: float,
                           pixel_size_nm: float) -> DetectionLimit | None:
    """:func:`image_detection_limit` of ``layerscope phases``: its detected columns (``detected``; the TM and
    Li-layer columns found in the image, placed sites left out) and the width it measured."""
    det = columns["detected"].to_numpy(dtype=bool)
    return image_detection_limit(data, columns.loc[det, ["x_nm", "y_nm"]].to_numpy(dtype=float),
                                 column_sigma_nm=column_sigma_nm, pixel_size_nm=pixel_size_nm)
