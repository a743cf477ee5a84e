"""Are the atom columns bright on a dark background (HAADF/ADF) or dark on a bright one (ABF/BF)?

The column finder looks for intensity maxima and ``phases`` reads HAADF's Z-contrast (bright TM
layers, dark Li layers). An annular bright-field or bright-field image shows the columns dark; run
as it is, the maxima fall between the columns and ``phases`` labels the wrong contrast with
confidence (an inverted simulated O3 draw came out 44 % rock salt). Both commands therefore look
at the image first:

:func:`contrast_skewness` band-passes the image at the column scale (a difference of Gaussians:
noise above and thickness/background variations below the column spacing removed) and takes the
skewness of its values. Bright columns are narrow peaks above a wide floor: a long tail of high
values, skewness > 0. Dark columns give the mirror image, skewness < 0; an image whose columns are
neither (phase-contrast HRTEM near a contrast reversal, noise alone) gives about 0.

Measured (``docs/validation.md``, "Contrast polarity"): every real HAADF/ADF image of
``../shared/data/stem`` +0.5 to +1.6, the same images inverted -0.5 to -1.6; 100 simulated
layered-oxide draws (5e2-1e5 e/A^2, probes 18-30 mrad) +0.7 and above.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from layerscope.errors import InputError

__all__ = ["contrast_skewness", "check_polarity", "DARK_BELOW", "UNCERTAIN_BELOW"]

#: Skewness below which the columns are dark on a bright background (refused unless asked for).
DARK_BELOW = -0.2
#: Skewness below which (and above :data:`DARK_BELOW`) the polarity is flagged as uncertain.
UNCERTAIN_BELOW = 0.2


def contrast_skewness(image: np.ndarray, *, scale_px: float, max_side: int = 768) -> float:
    """Skewness of ``image`` band-passed at the column scale (> 0: bright columns, < 0: dark).

    Parameters
    ----------
    image : numpy.ndarray
        2-D image.
    scale_px : float
        Nearest column distance in pixels. The band pass keeps the columns and drops what is slower
        than about one column distance: a 0.7-pixel Gaussian (the pixel noise, not the column
        peaks: a wider one rounds the peaks and halves the statistic) minus a background of two
        box filters ``sqrt(6)`` distances long (a Gaussian of sigma about one distance, at a cost
        that does not grow with it).
    max_side : int
        The central ``max_side`` x ``max_side`` pixels at most are used (a 2048^2 image: 0.06 s of
        CPU instead of 0.6 s on a loaded machine; the statistic is a mean over half a million pixels either way).

    Returns
    -------
    float
        The sample skewness (third standardised moment); NaN for a flat image.
    """
    image = np.asarray(image)
    h0, w0 = (max(0, (n - max_side) // 2) for n in image.shape)
    data = image[h0:h0 + max_side, w0:w0 + max_side].astype(np.float32)
    box = max(3, 2 * int(round(np.sqrt(6.0) * scale_px / 2)) + 1)
    background = ndimage.uniform_filter(ndimage.uniform_filter(data, box, mode="reflect"), box, mode="reflect")
    band = ndimage.gaussian_filter(data, 0.7, mode="reflect") - background
    # scipy.stats.skew(band, axis=None) is the same number; scipy.stats is kept out of a phases process (its
    # import costs ~0.1 s; tests/imaging/test_speed_threads.py checks what that process imports).
    band = (band - band.mean()).astype(np.float64)
    sd = band.std()
    return float(np.mean(band**3) / sd**3) if sd > 0 else float("nan")


def check_polarity(image: np.ndarray, *, scale_px: float, name: str, dark_columns: bool,
                   fix: str, refuse_uncertain: bool = False) -> tuple[float, list[dict[str, str]]]:
    """Refuse an image whose columns have the other polarity; flag one whose polarity is unclear.

    Parameters
    ----------
    image : numpy.ndarray
        2-D image as read (not inverted).
    scale_px : float
        Nearest column distance, pixels.
    name : str
        The input's name, for the message.
    dark_columns : bool
        The user said the columns are dark (``--contrast dark``); the image is judged inverted.
    fix : str
        What the user should do when the image is refused (names the CLI option).
    refuse_uncertain : bool
        Refuse an unclear polarity too (``phases``, which reads HAADF's Z-contrast) instead of
        flagging it.

    Returns
    -------
    skewness : float
        :func:`contrast_skewness` of the image as the detector sees it (inverted for dark columns).
    flags : list of dict
        ``contrast_polarity`` when the skewness lies between :data:`DARK_BELOW` and
        :data:`UNCERTAIN_BELOW`.

    Raises
    ------
    InputError
        Skewness below :data:`DARK_BELOW`: the columns look the other way round (below
        :data:`UNCERTAIN_BELOW` with ``refuse_uncertain``).
    """
    skew = contrast_skewness(image, scale_px=scale_px) * (-1.0 if dark_columns else 1.0)
    seen, other = ("dark", "bright") if dark_columns else ("bright", "dark")
    if np.isfinite(skew) and skew < DARK_BELOW:
        raise InputError(
            f"{name}: the atom columns look {other} on a {seen} background ({'HAADF/ADF' if dark_columns else 'ABF/BF'} "
            f"or an inverted image? band-passed skewness {skew:+.2f}, {seen} columns give > {UNCERTAIN_BELOW:+.1f}): {fix}")
    if np.isfinite(skew) and skew >= UNCERTAIN_BELOW:
        return skew, []
    unclear = (f"the atom columns are barely {seen}er than their background (band-passed skewness {skew:+.2f}; "
               f"{seen}-column images give > {UNCERTAIN_BELOW:+.1f})")
    if refuse_uncertain:
        raise InputError(f"{name}: {unclear}: {fix}")
    return skew, [{"code": "contrast_polarity", "message": (
        f"{unclear}: columns may sit between the atoms; check the image is {'ABF/BF' if dark_columns else 'HAADF/ADF'}")}]
