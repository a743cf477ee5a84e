"""Reading powder patterns: the format is recognised from the file's content, not its name.

Formats: PANalytical ``.xrdml``; Bruker RAW v1-v4 and UXD
(:mod:`~layerscope.diffraction.formats_bruker`); Rigaku RAS and RASX
(:mod:`~layerscope.diffraction.formats_rigaku`); FullProf step ``.dat`` and two-column text
with header lines, a byte-order mark and comma/semicolon/tab separators
(:mod:`~layerscope.diffraction.formats_text`). A :class:`Pattern` is 2-theta (degrees) and
intensity (counts) with the wavelengths it was measured with: from the file where it states them
(XRDML, RAW, UXD, RAS, RASX), from ``--radiation``/``--wavelength-a`` otherwise; never assumed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.diffraction.formats_bruker import is_bruker_raw, looks_like_uxd, read_bruker_raw, read_uxd
from layerscope.diffraction.formats_rigaku import looks_like_ras, read_ras, read_rasx
from layerscope.diffraction.formats_text import decode_text, read_text, read_xy
from layerscope.diffraction.pattern import RADIATIONS, Pattern, make_pattern, pattern_from_arrays
from layerscope.errors import InputError

__all__ = ["Pattern", "RADIATIONS", "read_pattern", "read_xrdml", "read_xy", "read_bruker_raw", "read_uxd",
           "read_ras", "read_rasx", "pattern_from_arrays", "detect_format"]

def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find(elem: ET.Element, name: str) -> ET.Element | None:
    for e in elem.iter():
        if _local(e.tag) == name:
            return e
    return None


def read_xrdml(path: str | Path, *, scan: int = 0, radiation: str | None = None,
               wavelength_A: float | None = None) -> Pattern:
    """Read a PANalytical ``.xrdml`` scan (XML schema 1.x/2.x).

    Positions come from ``<listPositions>`` or from ``<startPosition>``/``<endPosition>`` of the
    2Theta axis (equally spaced); intensities from ``<counts>`` or ``<intensities>``, times
    ``<beamAttenuationFactors>`` when present (the factor undoes the attenuation). The wavelengths
    are the file's ``usedWavelength``.

    Parameters
    ----------
    path : str or Path
    scan : int
        Which ``<scan>`` of a multi-scan file.
    radiation, wavelength_A : optional
        Override the file's wavelengths (``--radiation`` / ``--wavelength-a``; recorded).
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
    return make_pattern(path, x, y, _xrdml_meta(root, sc), file_wavelength=_xrdml_wavelength(root),
                        radiation=radiation, wavelength_A=wavelength_A)


def _xrdml_wavelength(root: ET.Element) -> tuple[float | None, float | None, float | None] | None:
    wl = _find(root, "usedWavelength")
    if wl is None or _find(wl, "kAlpha1") is None:
        return None
    vals = [_find(wl, n) for n in ("kAlpha1", "kAlpha2", "ratioKAlpha2KAlpha1")]
    return tuple(float(v.text) if v is not None and (v.text or "").strip() else None for v in vals)


def _xrdml_meta(root: ET.Element, sc: ET.Element) -> dict[str, Any]:
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
    return meta


def detect_format(path: str | Path) -> str:
    """The pattern format of a file from its first bytes (and its name only to break ties).

    Returns
    -------
    str
        ``"bruker_raw"``, ``"rasx"``, ``"xrdml"``, ``"ras"``, ``"uxd"`` or ``"text"``.

    Raises
    ------
    InputError
        For a binary file of no format layerscope reads.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(65536)
    if is_bruker_raw(head):
        return "bruker_raw"
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except zipfile.BadZipFile:
            names = []
        if any(n.endswith(".txt") and "Profile" in n for n in names):
            return "rasx"
        raise InputError(f"{path}: a zip archive that is not a Rigaku .rasx (no Profile*.txt); give the pattern "
                         "file itself (.xrdml, .raw, .uxd, .ras, .rasx, .xy).")
    text = decode_text(head)
    if b"\0" in head[:4096]:
        raise InputError(f"{path}: binary file of no pattern format layerscope reads (first bytes {head[:8]!r}); "
                         "export the scan as .xrdml, .uxd, .ras or two-column .xy.")
    stripped = text.lstrip()
    if stripped.startswith("<") and ("xrdMeasurement" in text[:5000] or path.suffix.lower() == ".xrdml"):
        return "xrdml"
    if "_cell_length_a" in text or stripped.startswith("data_"):
        raise InputError(f"{path}: a CIF crystal structure, not a measured pattern; give the measured scan "
                         "(.xrdml, .raw, .uxd, .ras, .rasx, .xy).")
    if looks_like_ras(text):
        return "ras"
    if looks_like_uxd(text):
        return "uxd"
    return "text"


_READERS = {"bruker_raw": read_bruker_raw, "rasx": read_rasx, "xrdml": read_xrdml, "ras": read_ras,
            "uxd": read_uxd, "text": read_text}


def read_pattern(path: str | Path, *, radiation: str | None = None, wavelength_A: float | None = None) -> Pattern:
    """Read any supported pattern (see the module docstring); the format comes from the content.

    Parameters
    ----------
    path : str or Path
    radiation : str, optional
        Anode (``"Cu"``, ``"Co"``, ``"Mo"``, ...): Ka1 + Ka2 with ratio 0.5 (``--radiation``).
        Needed for text and FullProf files; for files that state their wavelength it overrides
        the file (recorded in the metadata).
    wavelength_A : float, optional
        A single wavelength, Angstrom, for monochromatic data (``--wavelength-a``).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file.")
    fmt = detect_format(path)
    pattern = _READERS[fmt](path, radiation=radiation, wavelength_A=wavelength_A)
    pattern.metadata.setdefault("format", fmt)
    return pattern
