"""Powder diffraction patterns: PANalytical ``.xrdml``, ``.xy`` and two-column text.

A :class:`Pattern` is 2-theta (degrees) and intensity (counts, or counts per second when the file
gives intensities per time) with the wavelengths it was measured with. ``.xrdml`` files state the
anode's K-alpha1/K-alpha2 wavelengths and their intensity ratio; text files do not, so the
radiation must be given explicitly (``radiation="Cu"`` or ``wavelength_A=...``) - no wavelength is
ever assumed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.errors import CalibrationError, InputError

__all__ = ["Pattern", "RADIATIONS", "read_pattern", "read_xrdml", "read_xy", "pattern_from_arrays"]

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
        if x.ndim != 1 or x.shape != y.shape or x.size < 10:
            raise InputError(f"pattern {self.source or ''}: 2-theta and intensity must be 1-D of one length >= 10 "
                             f"(got {x.shape}, {y.shape}).")
        if not (self.wavelength_A and self.wavelength_A > 0):
            raise CalibrationError(f"pattern {self.source or ''}: wavelength {self.wavelength_A!r} A is not positive.")
        order = np.argsort(x, kind="stable")
        self.two_theta_deg, self.intensity = x[order], y[order]

    @property
    def step_deg(self) -> float:
        """Median 2-theta step, degrees."""
        return float(np.median(np.diff(self.two_theta_deg)))


def _radiation(radiation: str | None, wavelength_A: float | None, *, where: str) -> tuple[float, float | None, float]:
    if radiation is not None and wavelength_A is not None:
        raise InputError(f"{where}: give radiation or wavelength_A, not both.")
    if radiation is not None:
        key = radiation.strip().capitalize()
        if key not in RADIATIONS:
            raise InputError(f"{where}: radiation {radiation!r} unknown; choose one of {sorted(RADIATIONS)} or pass "
                             "wavelength_A.")
        return RADIATIONS[key]
    if wavelength_A is not None:
        return float(wavelength_A), None, 0.0
    raise CalibrationError(
        f"{where}: the file does not state its wavelength; pass radiation='Cu' (K-alpha1 + K-alpha2) or "
        "wavelength_A=... (monochromatic)."
    )


def pattern_from_arrays(two_theta_deg: np.ndarray, intensity: np.ndarray, *, radiation: str | None = None,
                        wavelength_A: float | None = None, metadata: dict | None = None) -> Pattern:
    """A :class:`Pattern` from arrays with an explicit radiation or wavelength."""
    l1, l2, ratio = _radiation(radiation, wavelength_A, where="pattern")
    return Pattern(np.asarray(two_theta_deg, float), np.asarray(intensity, float), l1, l2, ratio, None,
                   dict(metadata or {}))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(elem: ET.Element, name: str) -> ET.Element | None:
    for e in elem.iter():
        if _local(e.tag) == name:
            return e
    return None


def read_xrdml(path: str | Path, *, scan: int = 0) -> Pattern:
    """Read a PANalytical ``.xrdml`` scan (XML schema 1.x/2.x).

    Positions come from ``<listPositions>`` or from ``<startPosition>``/``<endPosition>`` of the
    2Theta axis (equally spaced); intensities from ``<counts>`` or ``<intensities>``, divided by
    ``<beamAttenuationFactors>`` when present. The wavelengths are the file's ``usedWavelength``.

    Parameters
    ----------
    path : str or Path
    scan : int
        Which ``<scan>`` of a multi-scan file.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise InputError(f"{path}: not a readable XML file ({exc}).") from exc
    scans = [e for e in root.iter() if _local(e.tag) == "scan"]
    if not scans:
        raise InputError(f"{path}: no <scan> element; not an xrdml measurement.")
    if not 0 <= scan < len(scans):
        raise InputError(f"{path}: scan {scan} asked, the file has {len(scans)}.")
    sc = scans[scan]
    pos = None
    for p in sc.iter():
        if _local(p.tag) == "positions" and p.get("axis") == "2Theta":
            pos = p
    if pos is None:
        raise InputError(f"{path}: scan without a 2Theta <positions> axis; only 2-theta scans are supported.")
    counts_el = _find(sc, "counts")
    if counts_el is None:
        counts_el = _find(sc, "intensities")
    if counts_el is None or not (counts_el.text or "").strip():
        raise InputError(f"{path}: scan without <counts> or <intensities>.")
    y = np.array(counts_el.text.split(), dtype=float)
    atten = _find(sc, "beamAttenuationFactors")
    if atten is not None and (atten.text or "").strip():
        a = np.array(atten.text.split(), dtype=float)
        if a.size == y.size:
            y = y * a
    lst = _find(pos, "listPositions")
    if lst is not None and (lst.text or "").strip():
        x = np.array(lst.text.split(), dtype=float)
    else:
        start, end = _find(pos, "startPosition"), _find(pos, "endPosition")
        if start is None or end is None:
            raise InputError(f"{path}: 2Theta axis without listPositions or start/endPosition.")
        x = np.linspace(float(start.text), float(end.text), y.size)
    if x.size != y.size:
        raise InputError(f"{path}: {x.size} positions but {y.size} intensities.")
    wl = _find(root, "usedWavelength")
    if wl is None:
        raise CalibrationError(f"{path}: no <usedWavelength>; cannot convert 2-theta to d-spacing.")
    k1, k2, ratio = _find(wl, "kAlpha1"), _find(wl, "kAlpha2"), _find(wl, "ratioKAlpha2KAlpha1")
    if k1 is None:
        raise CalibrationError(f"{path}: <usedWavelength> without <kAlpha1>.")
    meta: dict[str, Any] = {"intensity_unit": "counts", "format": "xrdml"}
    ct = _find(sc, "commonCountingTime")
    if ct is not None:
        meta["counting_time_s"] = float(ct.text)
    anode = _find(root, "anodeMaterial")
    if anode is not None:
        meta["anode"] = anode.text
    sample = _find(root, "id")
    if sample is not None and sample.text:
        meta["sample_id"] = sample.text
    radius = _find(root, "radius")
    if radius is not None and radius.get("unit") == "mm":
        meta["goniometer_radius_mm"] = float(radius.text)
    stamp = _find(sc, "startTimeStamp")
    if stamp is not None:
        meta["start_time"] = stamp.text
    return Pattern(x, y, float(k1.text), float(k2.text) if k2 is not None else None,
                   float(ratio.text) if ratio is not None else 0.0, path, meta)


def read_xy(path: str | Path, *, radiation: str | None = None, wavelength_A: float | None = None) -> Pattern:
    """Read a two-column text pattern (``.xy``, ``.xye``, ``.txt``, ``.csv``): 2-theta (deg), intensity.

    Lines starting with ``#``, ``;``, ``!`` or ``'`` and any non-numeric header lines are skipped;
    columns may be separated by spaces, tabs or commas; a third column (esd) is ignored. The
    radiation must be given (the file does not carry it).
    """
    path = Path(path)
    rows = []
    with open(path, encoding="latin-1", errors="replace") as fh:
        for line in fh:
            s = line.strip()
            if not s or s[0] in "#;!'":
                continue
            parts = s.replace(",", " ").split()
            try:
                vals = [float(p) for p in parts[:2]]
            except ValueError:
                if rows:
                    raise InputError(f"{path}: non-numeric line {s[:60]!r} after the data started.") from None
                continue
            if len(vals) < 2:
                raise InputError(f"{path}: line {s[:60]!r} has one column; need 2-theta and intensity.")
            rows.append(vals)
    if len(rows) < 10:
        raise InputError(f"{path}: only {len(rows)} numeric rows; not a powder pattern.")
    arr = np.asarray(rows)
    l1, l2, ratio = _radiation(radiation, wavelength_A, where=str(path))
    return Pattern(arr[:, 0], arr[:, 1], l1, l2, ratio, path, {"intensity_unit": "counts", "format": "xy"})


def read_pattern(path: str | Path, *, radiation: str | None = None, wavelength_A: float | None = None) -> Pattern:
    """Read any supported pattern: ``.xrdml`` (wavelength from the file) or two-column text.

    Parameters
    ----------
    path : str or Path
    radiation : str, optional
        Anode (``"Cu"``, ``"Co"``, ``"Mo"``, ...) for text files: Ka1 + Ka2 with ratio 0.5.
    wavelength_A : float, optional
        A single wavelength for monochromatic text data. For ``.xrdml`` files neither is needed;
        giving one overrides the file (recorded in the metadata).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file.")
    if path.suffix.lower() == ".xrdml":
        pat = read_xrdml(path)
        if radiation is not None or wavelength_A is not None:
            l1, l2, ratio = _radiation(radiation, wavelength_A, where=str(path))
            pat.metadata["wavelength_overridden"] = {"file": [pat.wavelength_A, pat.kalpha2_A, pat.kalpha2_ratio]}
            pat.wavelength_A, pat.kalpha2_A, pat.kalpha2_ratio = l1, l2, ratio
        return pat
    return read_xy(path, radiation=radiation, wavelength_A=wavelength_A)
