"""Is this image a layered oxide seen along [100]/[110], at the material's scale? (``layerscope phases``)

``phases`` labels columns O3, O3', O1, rock salt or spinel; on any other crystal those labels
would be confident nonsense (a perovskite came out 99 % spinel). Before labelling, the image must
show what makes a layered oxide in these zones, each checked on the image itself:

0. **Bright columns** (:mod:`layerscope.imaging.polarity`): HAADF/ADF contrast, the columns brighter
   than their background. An ABF/BF image (dark columns) or one whose polarity is unclear is
   refused: its maxima lie between the columns, and an inverted O3 draw came out 44 % rock salt.
1. **Layered rows** (scale-free): the visible columns of a layered oxide are its cation layers,
   rows of columns ``d_t`` apart with the next TM layer about ``2 d_t`` away across a dark Li
   layer, so most columns have at most three neighbours within 1.3 nearest-neighbour distances
   (two in their row; a mixed Li-layer column). A perovskite, rock salt, fcc metal, MoS2 or Si
   dumbbell lattice gives every column four to six. Fewer than :data:`MIN_ROW_FRACTION` of the
   columns in layered rows: refused, unless check 1b accepts the image.

   *Check 1b*, **degraded layered oxide**: heavy cation mixing (a third of the Li-layer sites filled with TM,
   nearly rock-salt contrast) and spinel blocks grown topotactically from the layered oxide keep
   its cation frame but give their columns four to six neighbours (17-29 % of the columns in
   layered rows on such draws). Accepted when (a) the power spectrum shows the material's layered
   lattice (:func:`~layerscope.imaging.lattice.fft_lattice`: the c/3 TM/Li-layer fringe at least
   :data:`MIN_LAYER_CONTRAST` times the noise and the column spacing along it, in the material's
   ratio), (b) the nearest-column distance agrees with that spacing within
   :data:`CALIBRATION_TOLERANCE`, and (c) at least :data:`MIN_RUN_FRACTION` of the columns sit in
   layered rows next to another layered-row column (runs of rows: an O3 block). The real
   non-layered images pass (a) and (b) at some scales (a perovskite's superstructure spot at
   twice its column spacing), never (c): 0-2 % of their columns are in runs.
2. **Calibration**: the column spacing along the layers within :data:`CALIBRATION_TOLERANCE` of
   the material's ``d_t`` in the zone (the same for O3, O1 and O3', 2-3 % between cathodes):
   otherwise a :class:`~layerscope.errors.CalibrationError` that says which pixel size would
   match. The spacing is the nearest-neighbour distance; when that is off (or check 1b ran) and
   the power spectrum shows the material's layered lattice, the spectrum's period along the layers
   (the nearest columns can be a spinel or C2/m pair: 0.1955 nm on a Li-rich draw whose pixel size
   was right).
3. **Basal fringe and TM/Li layer contrast** (after the layers are numbered,
   :func:`require_layer_contrast`): the TM-layer fringe (c/3) is found and the TM layers are told
   from the Li layers by their contrast (bright rows with empty layers beside them).

Simulated layered images (O3, O3', O1, rock-salt and spinel blocks, 5e2-1e4 e/A^2) have 55-100 %
of their columns in layered rows, degraded ones (heavy mixing, spinel) down to 17 %; every real
image of ../shared/data/stem 0-4 % (0-2 % in runs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from layerscope.errors import CalibrationError, InputError

__all__ = ["LayeredCheck", "check_layered_oxide", "require_layer_contrast", "degraded_note", "MIN_ROW_FRACTION",
           "MIN_RUN_FRACTION", "MIN_LAYER_CONTRAST", "CALIBRATION_TOLERANCE"]

#: Smallest fraction of columns with at most 3 neighbours within 1.3 nn for a layered oxide.
MIN_ROW_FRACTION = 0.3
#: Largest relative deviation of the column spacing from the material's.
CALIBRATION_TOLERANCE = 0.10
#: Check 1b: smallest fraction of columns in runs of layered rows (a column in a layered row with
#: another such column within 1.3 nn) of a degraded layered oxide.
MIN_RUN_FRACTION = 0.10
#: Check 1b: smallest power of the c/3 (TM/Li layer) fringe over the noise at its frequency.
MIN_LAYER_CONTRAST = 25.0
#: What check 0 tells the user when the columns are not clearly bright.
POLARITY_FIX = ("phases reads HAADF/ADF Z-contrast (bright TM columns, dark Li layers), and an inverted ABF/BF image "
                "does not have it: give a HAADF/ADF image, or run 'layerscope columns --contrast dark' for the "
                "column positions")


@dataclass(frozen=True)
class LayeredCheck:
    """What :func:`check_layered_oxide` measured.

    Attributes
    ----------
    row_fraction : float
        Fraction of interior columns with at most 3 neighbours within 1.3 ``nn_distance_nm``.
    median_neighbours : float
        Median number of such neighbours.
    nn_distance_nm : float
        Nearest-neighbour column distance of the image (nm).
    expected_nm : float
        The material's column spacing along the layers in the zone (nm).
    run_fraction : float
        Fraction of interior columns in layered rows with another layered-row column within 1.3 nn.
    spacing_nm : float or None
        The column spacing along the layers compared with ``expected_nm`` (nm): the power
        spectrum's when the material's lattice was searched there, else ``nn_distance_nm`` (None).
    degraded : bool
        Accepted by check 1b (few layered rows, the material's lattice), not by check 1.
    polarity_skewness : float
        Check 0: :func:`layerscope.imaging.polarity.contrast_skewness` (> 0: bright columns).
    """

    row_fraction: float
    median_neighbours: float
    nn_distance_nm: float
    expected_nm: float
    run_fraction: float = float("nan")
    spacing_nm: float | None = None
    degraded: bool = False
    polarity_skewness: float = float("nan")

    @property
    def deviation(self) -> float:
        """Relative deviation of the image's column spacing along the layers from the material's."""
        return (self.nn_distance_nm if self.spacing_nm is None else self.spacing_nm) / self.expected_nm - 1.0


def _row_statistics(data: np.ndarray, pixel_size_nm: float, nn_nm: float,
                    sigma_nm: float) -> tuple[float, float, float]:
    """Fraction of interior columns in layered rows, their median neighbour count, and the
    fraction in layered rows with another layered-row column within 1.3 nn (runs of rows)."""
    from layerscope.imaging.columns import detect_columns

    det = detect_columns(data, pixel_size_nm=pixel_size_nm, min_separation_nm=0.85 * nn_nm,
                         column_sigma_nm=float(np.clip(sigma_nm, 0.08 * nn_nm, 0.3 * nn_nm)))
    xy = np.column_stack([(det.cols + 0.5) * pixel_size_nm, (det.rows + 0.5) * pixel_size_nm])
    h, w = data.shape[0] * pixel_size_nm, data.shape[1] * pixel_size_nm
    inner = (xy[:, 0] > 1.5 * nn_nm) & (xy[:, 0] < w - 1.5 * nn_nm) & (xy[:, 1] > 1.5 * nn_nm) & (xy[:, 1] < h - 1.5 * nn_nm)
    if inner.sum() < 8:
        return float("nan"), float("nan"), float("nan")
    near = cKDTree(xy).query_ball_point(xy[inner], 1.3 * nn_nm)
    counts = np.array([len(v) - 1 for v in near])
    layered = np.zeros(len(xy), dtype=bool)  # columns near the edge (neighbours cut off) never count
    layered[np.nonzero(inner)[0]] = counts <= 3
    in_runs = np.array([layered[v].sum() - 1 >= 1 for v in near]) & (counts <= 3)
    return float(np.mean(counts <= 3)), float(np.median(counts)), float(np.mean(in_runs))


def _material_lattice(data: np.ndarray, pixel_size_nm: float, sp: Any, spectrum: Any = None) -> Any:
    """The material's layered lattice in the power spectrum (c/3 fringe and the column spacing
    along it, in the material's ratio, each within 20 %), or None."""
    from layerscope.imaging.lattice import fft_lattice

    try:
        return fft_lattice(data, pixel_size_nm=pixel_size_nm, layer_spacing_nm=sp.tm_spacing_nm,
                           inplane_spacing_nm=sp.inplane_spacing_nm, material=sp.composition, spectrum=spectrum)
    except InputError:  # CalibrationError included
        return None


def _is_degraded_layered(frac_runs: float, nn_nm: float, fl: Any) -> bool:
    """Few layered rows, but runs of them and the material's layered cation lattice (see the
    module docstring, check 1b)."""
    return (fl is not None and not fl.rows_are_cation_rows and fl.layer_contrast >= MIN_LAYER_CONTRAST
            and frac_runs >= MIN_RUN_FRACTION and abs(nn_nm / fl.inplane_period_nm - 1.0) <= CALIBRATION_TOLERANCE)


def check_layered_oxide(data: np.ndarray, *, pixel_size_nm: float, composition: str, zone: str,
                        name: str = "the image", spectrum: Any = None) -> LayeredCheck:
    """Refuse an image that is not a layered oxide in ``zone`` at ``composition``'s scale.

    Parameters
    ----------
    data : numpy.ndarray
        2-D image.
    pixel_size_nm : float
        Pixel size (nm).
    composition, zone : str
        The cathode and zone axis the user named.
    name : str
        The input's name, for messages.
    spectrum : layerscope.imaging.lattice.PowerSpectrum, optional
        :func:`layerscope.imaging.lattice.power_spectrum` of ``data`` when the caller has it already.

    Returns
    -------
    LayeredCheck

    Raises
    ------
    InputError
        Not clearly bright columns (check 0), or not a layered oxide in this zone (check 1).
    CalibrationError
        The column spacing is more than :data:`CALIBRATION_TOLERANCE` off the material's (check 2).
    """
    from layerscope.imaging.generic import image_lattice
    from layerscope.imaging.materials import material_spacings
    from layerscope.imaging.polarity import check_polarity

    sp = material_spacings(composition, zone)
    # no lattice at all (noise, vacuum) is said before the contrast of its columns
    lat = image_lattice(data, pixel_size_nm=pixel_size_nm, spectrum=spectrum, name=name)
    skew, _ = check_polarity(data, scale_px=sp.inplane_spacing_nm / pixel_size_nm, name=name, dark_columns=False,
                             refuse_uncertain=True, fix=POLARITY_FIX)
    nn = lat.nn_distance_nm
    frac, med, runs = _row_statistics(data, pixel_size_nm, nn, lat.column_sigma_nm)
    rows_ok = frac >= MIN_ROW_FRACTION
    fl = None
    if not rows_ok or abs(nn / sp.inplane_spacing_nm - 1.0) > CALIBRATION_TOLERANCE:
        fl = _material_lattice(data, pixel_size_nm, sp, spectrum)
    if not rows_ok and not _is_degraded_layered(runs, nn, fl):
        raise InputError(
            f"{name} is not a layered oxide seen along [100]/[110]: {frac:.0%} of its columns sit in layered rows "
            f"(median {med:.0f} neighbours within 1.3x the nearest distance, a cubic, hexagonal or close-packed "
            f"lattice; a layered oxide has 2 in-row neighbours and dark Li layers"
            f"{'' if fl is None else f'; {runs:.0%} in runs of layered rows, {MIN_RUN_FRACTION:.0%} for a degraded one'}"
            f"); phases maps layered oxides only: run 'layerscope columns' for other crystals, or check --zone"
        )
    # Along the layers the FFT period is the column spacing; the nearest-column distance can be a
    # spinel or C2/m column pair (0.1955 nm against Li-rich's 0.2464 nm, the pixel size right).
    spacing = nn if fl is None or fl.rows_are_cation_rows else fl.inplane_period_nm
    check = LayeredCheck(frac, med, nn, sp.inplane_spacing_nm, run_fraction=runs, spacing_nm=spacing,
                         degraded=not rows_ok, polarity_skewness=skew)
    if abs(check.deviation) > CALIBRATION_TOLERANCE:
        raise CalibrationError(
            f"{name}: columns along the layers are {spacing:.4f} nm apart, {check.deviation:+.0%} off "
            f"{sp.composition}'s {sp.inplane_spacing_nm:.4f} nm along [{zone}]: the pixel size {pixel_size_nm:g} nm "
            f"is probably wrong (about {pixel_size_nm * sp.inplane_spacing_nm / spacing:.5g} nm would "
            f"match); check --pixel-size-nm, --composition and --zone"
        )
    return check


def require_layer_contrast(rows_are_cation_rows: bool, parity_from_contrast: bool, *, composition: str,
                           name: str = "the image") -> None:
    """Refuse a lattice without the basal c/3 fringe or without TM/Li layer contrast (check 3).

    Raises
    ------
    InputError
        Every cation row alike (no Li layer darker than the TM layers beside it).
    """
    if rows_are_cation_rows or not parity_from_contrast:
        what = "no basal (003) fringe at c/3" if rows_are_cation_rows else "no dark Li layers between bright TM layers"
        raise InputError(
            f"{name} shows {what}: every cation row looks alike, so TM and Li layers (and the phases) cannot be "
            f"told apart; phases maps layered oxides with visible TM/Li layer contrast: check --composition and "
            f"--zone, or run 'layerscope columns'"
        )


def degraded_note(check: LayeredCheck) -> str:
    """The clause the phase map's notes add when check 1b accepted the image ('' otherwise)."""
    if not check.degraded:
        return ""
    return (f" (degraded: {check.run_fraction:.0%} in runs of layered rows and the material's layered lattice in "
            f"the power spectrum; heavy cation mixing or spinel/rock-salt blocks)")
