"""The :class:`Pattern` every reader returns, and where its wavelengths come from.

A pattern's wavelengths come from the file when the file states them (Bruker RAW and UXD,
PANalytical XRDML, Rigaku RAS/RASX), or from the user (``--radiation Cu`` or ``--wavelength-a``)
when it does not (two-column text, FullProf ``.dat``): no wavelength is ever assumed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.errors import CalibrationError, InputError

__all__ = ["Pattern", "RADIATIONS", "resolve_radiation", "file_wavelengths", "make_pattern", "pattern_from_arrays"]

#: K-alpha1, K-alpha2 wavelengths (Angstrom) and I(Ka2)/I(Ka1) of common anodes
#: (Hoelzer et al., Phys. Rev. A 56 (1997) 4554; ratio 0.5 by convention).
RADIATIONS: dict[str, tuple[float, float, float]] = {
    "Cu": (1.5405929, 1.5444274, 0.5),
    "Co": (1.788996, 1.792835, 0.5),
    "Mo": (0.70931715, 0.713607, 0.5),
    "Fe": (1.936042, 1.939980, 0.5),
    "Cr": (2.289760, 2.293663, 0.5),
    "Ag": (0.5594075, 0.563798, 0.5),
}

#: The one-line fix for a file without a wavelength (named as the CLI options).
WAVELENGTH_FIX = "give --radiation Cu (K-alpha1 + K-alpha2 of the anode) or --wavelength-a 0.7093 (monochromatic)"


@dataclass
class Pattern:
    """A 1-D powder pattern.

    Attributes
    ----------
    two_theta_deg : ndarray
        Scattering angle 2-theta, degrees, increasing.
    intensity : ndarray
        Counts (or counts/s, see ``metadata["intensity_unit"]``).
    wavelength_A : float
        K-alpha1 (or the single) wavelength, Angstrom.
    kalpha2_A : float or None
        K-alpha2 wavelength, Angstrom (None for monochromatic data: synchrotron, Ka1-only optics).
    kalpha2_ratio : float
        I(Ka2)/I(Ka1) (0 when there is no Ka2).
    source : Path or None
    metadata : dict
        ``format``, ``intensity_unit``, ``wavelength_from`` ("file", "--radiation", ...) and
        whatever the file states (anode, counting time, sample name ...).
    """

    two_theta_deg: np.ndarray
    intensity: np.ndarray
    wavelength_A: float
    kalpha2_A: float | None = None
    kalpha2_ratio: float = 0.0
    source: Path | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        x = np.asarray(self.two_theta_deg, dtype=float)
        y = np.asarray(self.intensity, dtype=float)
        where = self.source or "pattern"
        if x.ndim != 1 or x.shape != y.shape or x.size < 10:
            raise InputError(f"{where}: 2-theta and intensity must be 1-D of one length >= 10 "
                             f"(got {x.shape}, {y.shape}); not a powder pattern.")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise InputError(f"{where}: the pattern holds non-finite values (NaN/inf); check the file.")
        if x.min() < 0.0 or x.max() > 180.0:
            raise InputError(f"{where}: angles {x.min():.4g}-{x.max():.4g} are not 2-theta in degrees (0-180); the "
                             "first column must be 2-theta in degrees (convert d or q first).")
        if not (self.wavelength_A and self.wavelength_A > 0):
            raise CalibrationError(f"{where}: wavelength {self.wavelength_A!r} A is not positive; {WAVELENGTH_FIX}.")
        order = np.argsort(x, kind="stable")
        self.two_theta_deg, self.intensity = x[order], y[order]

    @property
    def step_deg(self) -> float:
        """Median 2-theta step, degrees."""
        return float(np.median(np.diff(self.two_theta_deg)))


def resolve_radiation(radiation: str | None, wavelength_A: float | None, *,
                      where: str) -> tuple[float, float | None, float]:
    """(Ka1, Ka2 or None, I(Ka2)/I(Ka1)) from ``--radiation`` or ``--wavelength-a``.

    Raises
    ------
    CalibrationError
        When neither is given (the file does not state its wavelength).
    """
    if radiation is not None and wavelength_A is not None:
        raise InputError(f"{where}: give --radiation or --wavelength-a, not both.")
    if radiation is not None:
        key = radiation.strip().capitalize()
        if key not in RADIATIONS:
            raise InputError(f"{where}: --radiation {radiation!r} unknown; give one of {', '.join(sorted(RADIATIONS))} "
                             "or --wavelength-a for a single wavelength.")
        return RADIATIONS[key]
    if wavelength_A is not None:
        if not wavelength_A > 0:
            raise InputError(f"{where}: --wavelength-a {wavelength_A} is not a positive wavelength in Angstrom.")
        return float(wavelength_A), None, 0.0
    raise CalibrationError(f"{where}: the file does not state its wavelength; {WAVELENGTH_FIX}.")


def file_wavelengths(where: str, ka1_A: float | None, ka2_A: float | None,
                     ratio: float | None) -> tuple[float, float | None, float, str]:
    """Validate the wavelengths a file states: (Ka1, Ka2 or None, ratio, note).

    A Ka2 that is missing, zero or equal to Ka1 means monochromatic data. A Ka2 without a stated
    intensity ratio gets the conventional 0.5 (as ``--radiation`` does), said in ``note``.

    Raises
    ------
    CalibrationError
        When the file's K-alpha1 is missing or outside 0.1-3 A (no laboratory or synchrotron
        powder diffractometer works outside it).
    """
    if ka1_A is None or not np.isfinite(ka1_A) or not 0.1 <= ka1_A <= 3.0:
        raise CalibrationError(f"{where}: the file's wavelength {ka1_A!r} A is missing or implausible; "
                               f"{WAVELENGTH_FIX}.")
    note = ""
    if ka2_A is None or not np.isfinite(ka2_A) or ka2_A <= 0 or abs(ka2_A - ka1_A) < 1e-6:
        return float(ka1_A), None, 0.0, note
    if not 0.9 * ka1_A < ka2_A < 1.1 * ka1_A:
        raise CalibrationError(f"{where}: the file's K-alpha2 {ka2_A} A does not belong to K-alpha1 {ka1_A} A; "
                               f"{WAVELENGTH_FIX}.")
    if ratio is None or not np.isfinite(ratio) or not 0 < ratio <= 1:
        note = "the file gives no K-alpha2/K-alpha1 intensity ratio: 0.5 used by convention"
        ratio = 0.5
    return float(ka1_A), float(ka2_A), float(ratio), note


def make_pattern(path: Path, two_theta_deg: np.ndarray, intensity: np.ndarray, metadata: dict[str, Any], *,
                 file_wavelength: tuple[float | None, float | None, float | None] | None,
                 radiation: str | None = None, wavelength_A: float | None = None) -> Pattern:
    """A :class:`Pattern` with the file's wavelengths, or the user's when given (then recorded as an override).

    Parameters
    ----------
    path : Path
    two_theta_deg, intensity : ndarray
    metadata : dict
    file_wavelength : (Ka1, Ka2, ratio) or None
        What the file states (None: the format carries no wavelength).
    radiation, wavelength_A : optional
        ``--radiation`` / ``--wavelength-a``; they win over the file.
    """
    meta = dict(metadata)
    where = str(path)
    if radiation is not None or wavelength_A is not None:
        l1, l2, ratio = resolve_radiation(radiation, wavelength_A, where=where)
        meta["wavelength_from"] = "--radiation" if radiation is not None else "--wavelength-a"
        if file_wavelength is not None and file_wavelength[0]:
            meta["wavelength_overridden"] = {"file": list(file_wavelength)}
    elif file_wavelength is not None:
        l1, l2, ratio, note = file_wavelengths(where, *file_wavelength)
        meta["wavelength_from"] = "file"
        if note:
            meta.setdefault("reader_notes", []).append(note)
    else:
        raise CalibrationError(f"{where}: the file does not state its wavelength; {WAVELENGTH_FIX}.")
    return Pattern(np.asarray(two_theta_deg, float), np.asarray(intensity, float), l1, l2, ratio, Path(path), meta)


def pattern_from_arrays(two_theta_deg: np.ndarray, intensity: np.ndarray, *, radiation: str | None = None,
                        wavelength_A: float | None = None, metadata: dict | None = None) -> Pattern:
    """A :class:`Pattern` from arrays with an explicit radiation or wavelength."""
    l1, l2, ratio = resolve_radiation(radiation, wavelength_A, where="pattern")
    return Pattern(np.asarray(two_theta_deg, float), np.asarray(intensity, float), l1, l2, ratio, None,
                   dict(metadata or {}))
