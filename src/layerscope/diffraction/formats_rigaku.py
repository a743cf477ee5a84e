"""Rigaku SmartLab/MiniFlex patterns: ``.ras`` text and ``.rasx`` (a zip of XML and text).

* RAS: ``*RAS_HEADER_START`` ... ``*RAS_HEADER_END`` with ``*KEY "value"`` lines (wavelengths in
  ``*HW_XG_WAVE_LENGTH_ALPHA1/ALPHA2``, anode in ``*HW_XG_TARGET_NAME``, scan axis in
  ``*MEAS_SCAN_AXIS_X``, intensity unit in ``*MEAS_SCAN_UNIT_Y``, speed in ``*MEAS_SCAN_SPEED``
  deg/min), then ``*RAS_INT_START`` and rows ``2-theta intensity attenuation-factor`` up to
  ``*RAS_INT_END``. Headers are often Shift-JIS; only ASCII keys and numbers are read.
* RASX: ``Data0/Profile0.txt`` (UTF-8 with BOM; tab-separated 2-theta, intensity, attenuation
  factor) and ``Data0/MesurementConditions0.xml`` (Rigaku's spelling) with ``WavelengthKalpha1``,
  ``WavelengthKalpha2``, ``TargetName``, and ``ScanInformation`` (``AxisName``, ``Step``, ``Speed``,
  ``IntensityUnit``).

The intensity is multiplied by the attenuation factor (Rigaku stores the attenuated counts and
the factor that undoes it). Counts per second become counts with the time per step
(step / speed) when the file gives the speed. A scan whose axis is not 2-theta/theta is refused.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.diffraction.pattern import Pattern, make_pattern
from layerscope.errors import InputError

__all__ = ["read_ras", "read_rasx", "looks_like_ras"]

_RAS_KEY = re.compile(r'^\*([A-Z0-9_\-]+)\s+"(.*)"\s*$')


def looks_like_ras(text: str) -> bool:
    """True for Rigaku RAS text (``*RAS_DATA_START`` or ``*RAS_HEADER_START`` near the top)."""
    return "*RAS_HEADER_START" in text[:4000] or "*RAS_DATA_START" in text[:200]


def _axis_ok(axis: str | None) -> bool:
    if not axis:
        return True
    a = axis.lower().replace(" ", "").replace("-", "")
    return "2theta" in a or "twotheta" in a


def _rows(lines: list[str], where: str) -> np.ndarray:
    rows = []
    for s in lines:
        s = s.strip()
        if not s:
            continue
        try:
            rows.append([float(v) for v in s.replace(",", " ").split()[:3]])
        except ValueError:
            raise InputError(f"{where}: data row {s[:40]!r} is not numbers; the file is damaged.") from None
    if len(rows) < 10:
        raise InputError(f"{where}: only {len(rows)} data rows; not a powder pattern.")
    if min(len(r) for r in rows) < 2:
        raise InputError(f"{where}: data rows need 2-theta and intensity.")
    width = min(len(r) for r in rows)
    return np.asarray([r[:width] for r in rows], float)


def _to_counts(y: np.ndarray, unit: str, step_deg: float | None, speed_deg_min: float | None,
               meta: dict[str, Any]) -> np.ndarray:
    unit = (unit or "counts").strip().lower()
    if unit != "cps":
        meta["intensity_unit"] = "counts"
        return y
    if step_deg and speed_deg_min and step_deg > 0 and speed_deg_min > 0:
        t = 60.0 * step_deg / speed_deg_min
        meta.update(intensity_unit="counts", counting_time_s=t)
        meta.setdefault("reader_notes", []).append(f"cps times {t:.4g} s per step (step / speed) gives counts")
        return y * t
    meta["intensity_unit"] = "cps"
    return y


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_ras(path: str | Path, *, radiation: str | None = None, wavelength_A: float | None = None) -> Pattern:
    """Read the first scan of a Rigaku ``.ras`` file (see the module docstring for the layout)."""
    path = Path(path)
    where = str(path)
    text = path.read_bytes().decode("latin-1")
    keys: dict[str, str] = {}
    data: list[str] = []
    state = "header"
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("*RAS_INT_START"):
            state = "data"
            continue
        if s.startswith("*RAS_INT_END"):
            break  # the first scan only
        if state == "data":
            data.append(s)
            continue
        m = _RAS_KEY.match(s)
        if m:
            keys.setdefault(m.group(1), m.group(2).strip())
    if not data:
        raise InputError(f"{where}: RAS file without *RAS_INT_START data; nothing to analyse.")
    if not _axis_ok(keys.get("MEAS_SCAN_AXIS_X")):
        raise InputError(f"{where}: the scan axis is {keys['MEAS_SCAN_AXIS_X']!r}, not 2-theta/theta; xrd "
                         "analyses powder patterns only.")
    arr = _rows(data, where)
    y = arr[:, 1] * (arr[:, 2] if arr.shape[1] > 2 else 1.0)
    meta: dict[str, Any] = {"format": "ras", "n_scans": text.count("*RAS_INT_START")}
    y = _to_counts(y, keys.get("MEAS_SCAN_UNIT_Y", "counts"), _float(keys.get("MEAS_SCAN_STEP")),
                   _float(keys.get("MEAS_SCAN_SPEED")), meta)
    for src, dst in (("HW_XG_TARGET_NAME", "anode"), ("FILE_SAMPLE", "sample_id")):
        if keys.get(src):
            meta[dst] = keys[src]
    k1 = _float(keys.get("HW_XG_WAVE_LENGTH_ALPHA1"))
    wl = (k1, _float(keys.get("HW_XG_WAVE_LENGTH_ALPHA2")), None) if k1 else None
    return make_pattern(path, arr[:, 0], y, meta, file_wavelength=wl, radiation=radiation, wavelength_A=wavelength_A)


def _xml_values(xml_bytes: bytes, where: str) -> dict[str, str]:
    """Leaf tag -> text of the first occurrence in the measurement-conditions XML."""
    try:
        root = ET.fromstring(xml_bytes)
    except ET.ParseError as exc:
        raise InputError(f"{where}: the measurement conditions XML is not readable ({exc}).") from exc
    out: dict[str, str] = {}
    for e in root.iter():
        tag = e.tag.rsplit("}", 1)[-1]
        if len(e) == 0 and e.text and e.text.strip() and tag not in out:
            out[tag] = e.text.strip()
    return out


def read_rasx(path: str | Path, *, radiation: str | None = None, wavelength_A: float | None = None) -> Pattern:
    """Read the first profile of a Rigaku ``.rasx`` archive (see the module docstring for the layout)."""
    path = Path(path)
    where = str(path)
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            profiles = sorted(n for n in names if re.search(r"(^|/)Profile\d+\.txt$", n))
            if not profiles:
                raise InputError(f"{where}: RASX archive without a Profile*.txt; it holds no 1-D scan "
                                 "(an image-only measurement?).")
            prof = profiles[0]
            cond_name = re.sub(r"Profile(\d+)\.txt$", r"MesurementConditions\1.xml", prof)
            text = z.read(prof).decode("utf-8-sig", errors="replace")
            cond = _xml_values(z.read(cond_name), where) if cond_name in names else {}
    except zipfile.BadZipFile as exc:
        raise InputError(f"{where}: not a readable RASX (zip) archive ({exc}).") from exc
    if not _axis_ok(cond.get("AxisName")):
        raise InputError(f"{where}: the scan axis is {cond['AxisName']!r}, not 2-theta/theta; xrd analyses "
                         "powder patterns only.")
    arr = _rows(text.splitlines(), where)
    y = arr[:, 1] * (arr[:, 2] if arr.shape[1] > 2 else 1.0)
    meta: dict[str, Any] = {"format": "rasx", "n_scans": len(profiles)}
    speed = _float(cond.get("Speed")) if "min" in cond.get("SpeedUnit", "deg/min") else None
    y = _to_counts(y, cond.get("IntensityUnit", "counts"), _float(cond.get("Step")), speed, meta)
    for src, dst in (("TargetName", "anode"), ("SampleName", "sample_id")):
        if cond.get(src):
            meta[dst] = cond[src]
    k1 = _float(cond.get("WavelengthKalpha1"))
    wl = (k1, _float(cond.get("WavelengthKalpha2")), None) if k1 else None
    return make_pattern(path, arr[:, 0], y, meta, file_wavelength=wl, radiation=radiation, wavelength_A=wavelength_A)
