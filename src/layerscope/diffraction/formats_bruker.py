"""Bruker (Siemens) DIFFRAC powder patterns: binary RAW versions 1-4 and the UXD text export.

Layouts (byte offsets, little-endian) follow the DIFFRAC-AT / DIFFRAC plus file descriptions
("DIFFRAC plus XCH V.5.0, User's manual, Appendix A" for version 3) as documented by xylib's
``bruker_raw.cpp`` (Wojdyr, LGPL; read for the layout, no code taken):

* v1 (``"RAW "``): per range, at offset ``o`` (4 for the first): steps u32 ``o``, s/step f32
  ``o+4``, step f32 ``o+8``, start 2-theta f32 ``o+20``, sample name 32 chars ``o+36``, Ka1 f32
  ``o+68``, Ka2 f32 ``o+72``, "another range follows" u32 ``o+148``, counts f32 from ``o+152``.
* v2 (``"RAW2"``): ranges u16 at 4, anode 2 chars at 188, Ka1/Ka2/ratio f32 at 190/194/198, first
  range at 256: header length u16, steps u16 +2, s/step f32 +8, step f32 +12, start f32 +16,
  counts f32 after the header.
* v3 (``"RAW1.01"``): 712-byte file header (ranges u32 at 12, sample 60 chars at 326, anode 4
  chars at 608, Ka1/Ka2/ratio f64 at 624/632/648), 304-byte range headers (steps u32 +4, start
  2-theta f64 +16, step f64 +176, s/step f32 +192, supplementary header length u32 +256).
* v4 (``"RAW4.00"``): 61-byte header, typed segments (type u32, length u32; type 30 holds
  Ka-average/Ka1/Ka2/Kb/ratio f64 at +72..+104 and the anode at +116) until a range (type 0 or
  160): scan type 24 chars +32, start f64 +72, step f64 +80, steps u32 +88, s/step f32 +92, datum
  size u32 +136, extra header length u32 +140, counts from +160 + extra.

Only the first range of a multi-range file is read (the metadata says how many there are); a
range that is not a coupled 2-theta/theta scan is refused.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.diffraction.pattern import Pattern, make_pattern
from layerscope.errors import InputError

__all__ = ["is_bruker_raw", "read_bruker_raw", "read_uxd", "looks_like_uxd"]

_COUPLED = ("coupled", "2theta", "twotheta", "2-theta")


def is_bruker_raw(head: bytes) -> bool:
    """True for the magic of a Bruker RAW file (any version)."""
    return head[:4] in (b"RAW ", b"RAW2") or head[:7] in (b"RAW1.01", b"RAW4.00")


class _Buf:
    """Bounds-checked little-endian reads that name the file when it is cut short."""

    def __init__(self, data: bytes, where: str) -> None:
        self.data, self.where = data, where

    def _need(self, off: int, n: int) -> None:
        if off < 0 or off + n > len(self.data):
            raise InputError(f"{self.where}: Bruker RAW file cut short (needs byte {off + n}, has {len(self.data)}); "
                             "export the scan again from DIFFRAC or give the UXD/XY export.")

    def u16(self, off: int) -> int:
        self._need(off, 2)
        return struct.unpack_from("<H", self.data, off)[0]

    def u32(self, off: int) -> int:
        self._need(off, 4)
        return struct.unpack_from("<I", self.data, off)[0]

    def f32(self, off: int) -> float:
        """A float32 header value to its 7 significant digits (0.03 stays 0.03, not 0.029999999)."""
        self._need(off, 4)
        return float(f"{struct.unpack_from('<f', self.data, off)[0]:.7g}")

    def f64(self, off: int) -> float:
        self._need(off, 8)
        return float(struct.unpack_from("<d", self.data, off)[0])

    def text(self, off: int, n: int) -> str:
        self._need(off, n)
        return self.data[off:off + n].split(b"\0")[0].decode("latin-1").strip()

    def floats(self, off: int, n: int) -> np.ndarray:
        self._need(off, 4 * n)
        return np.frombuffer(self.data, dtype="<f4", count=n, offset=off).astype(float)


def _axis(where: str, start: float, step: float, n: int) -> np.ndarray:
    if not (np.isfinite(start) and np.isfinite(step) and step > 0 and 10 <= n <= 10_000_000):
        raise InputError(f"{where}: Bruker RAW range with start {start}, step {step}, {n} steps is not a "
                         "2-theta scan layerscope can read; give the UXD or XY export.")
    return start + step * np.arange(n)


def _v1(b: _Buf) -> tuple[dict, list[tuple[np.ndarray, np.ndarray, dict]]]:
    ranges, off = [], 4
    while True:
        if ranges and b.data[off:off + 4] == b"RAW ":  # early files repeat the magic before each range
            off += 4
        n = b.u32(off)
        meta = {"counting_time_s": b.f32(off + 4), "sample_id": b.text(off + 36, 32)}
        x = _axis(b.where, b.f32(off + 20), b.f32(off + 8), n)
        ranges.append((x, b.floats(off + 152, n), meta))
        following = b.u32(off + 148)
        off += 152 + 4 * n
        if not following or off >= len(b.data):
            break
    head = {"format_version": 1, "wavelength": (b.f32(72), b.f32(76), None)}
    return head, ranges


def _v2(b: _Buf) -> tuple[dict, list[tuple[np.ndarray, np.ndarray, dict]]]:
    head = {"format_version": 2, "anode": b.text(188, 2),
            "wavelength": (b.f32(190), b.f32(194), b.f32(198))}
    ranges, off = [], 256
    for _ in range(b.u16(4)):
        hlen, n = b.u16(off), b.u16(off + 2)
        if hlen <= 48:
            raise InputError(f"{b.where}: Bruker RAW v2 range header of {hlen} bytes; the file is damaged.")
        x = _axis(b.where, b.f32(off + 16), b.f32(off + 12), n)
        ranges.append((x, b.floats(off + hlen, n), {"counting_time_s": b.f32(off + 8)}))
        off += hlen + 4 * n
    return head, ranges


def _v3(b: _Buf) -> tuple[dict, list[tuple[np.ndarray, np.ndarray, dict]]]:
    head = {"format_version": 3, "anode": b.text(608, 4), "sample_id": b.text(326, 60),
            "wavelength": (b.f64(624), b.f64(632), b.f64(648))}
    ranges, off = [], 712
    for _ in range(b.u32(12)):
        hlen, n = b.u32(off), b.u32(off + 4)
        if hlen != 304:
            raise InputError(f"{b.where}: Bruker RAW v3 range header of {hlen} bytes (304 expected); damaged file.")
        x = _axis(b.where, b.f64(off + 16), b.f64(off + 176), n)
        data_at = off + hlen + b.u32(off + 256)
        ranges.append((x, b.floats(data_at, n), {"counting_time_s": b.f32(off + 192)}))
        off = data_at + 4 * n
    return head, ranges


def _v4(b: _Buf) -> tuple[dict, list[tuple[np.ndarray, np.ndarray, dict]]]:
    head: dict[str, Any] = {"format_version": 4, "wavelength": None}
    off = 61
    while True:
        kind = b.u32(off)
        if kind in (0, 160):
            break
        length = b.u32(off + 4)
        if length < 8:
            raise InputError(f"{b.where}: Bruker RAW v4 segment of {length} bytes; the file is damaged.")
        if kind == 30:
            head["wavelength"] = (b.f64(off + 80), b.f64(off + 88), b.f64(off + 104))
            head["anode"] = b.text(off + 116, 4)
        off += length
    ranges = []
    while off + 4 <= len(b.data) and b.u32(off) in (0, 160):
        scan = b.text(off + 32, 24)
        n, datum, extra = b.u32(off + 88), b.u32(off + 136), b.u32(off + 140)
        data_at = off + 160 + extra
        if datum != 4:
            raise InputError(f"{b.where}: Bruker RAW v4 range with {datum}-byte values (4 expected); give the "
                             "UXD or XY export.")
        meta = {"scan_type": scan, "counting_time_s": b.f32(off + 92)}
        x = _axis(b.where, b.f64(off + 72), b.f64(off + 80), n)
        ranges.append((x, b.floats(data_at, n), meta))
        off = data_at + 4 * n
    return head, ranges


def read_bruker_raw(path: str | Path, *, radiation: str | None = None, wavelength_A: float | None = None) -> Pattern:
    """Read the first range of a Bruker RAW file (versions 1, 2, 3 "RAW1.01", 4 "RAW4.00").

    Parameters
    ----------
    path : str or Path
    radiation, wavelength_A : optional
        Override the file's wavelengths (``--radiation`` / ``--wavelength-a``).

    Returns
    -------
    Pattern
        Counts per step; wavelengths from the file (v1 states no K-alpha2 ratio: 0.5 is used and
        said in ``metadata["reader_notes"]``).
    """
    path = Path(path)
    data = path.read_bytes()
    b = _Buf(data, str(path))
    if data[:7] == b"RAW4.00":
        head, ranges = _v4(b)
    elif data[:7] == b"RAW1.01":
        head, ranges = _v3(b)
    elif data[:4] == b"RAW2":
        head, ranges = _v2(b)
    elif data[:4] == b"RAW ":
        head, ranges = _v1(b)
    else:
        raise InputError(f"{path}: not a Bruker RAW file (magic {data[:7]!r}); give a .raw from DIFFRAC, or its "
                         "UXD/XY export.")
    if not ranges:
        raise InputError(f"{path}: the Bruker RAW file holds no measured range.")
    x, y, rmeta = ranges[0]
    scan = str(rmeta.get("scan_type", "coupled")).lower().replace(" ", "")
    if not any(k in scan for k in _COUPLED):
        raise InputError(f"{path}: range 1 is a {rmeta['scan_type']!r} scan, not a coupled 2-theta/theta powder "
                         "scan; xrd analyses powder patterns only.")
    meta: dict[str, Any] = {"format": f"bruker_raw_v{head['format_version']}", "intensity_unit": "counts",
                            "n_ranges": len(ranges), **{k: v for k, v in rmeta.items() if v not in ("", None)}}
    for key in ("anode", "sample_id"):
        if head.get(key):
            meta[key] = head[key]
    if len(ranges) > 1:
        meta["reader_notes"] = [f"the file holds {len(ranges)} ranges; range 1 analysed"]
    return make_pattern(path, x, y, meta, file_wavelength=head["wavelength"], radiation=radiation,
                        wavelength_A=wavelength_A)


_UXD_KEY = re.compile(r"^_([A-Za-z0-9_]+)\s*=\s*(.*)$")


def looks_like_uxd(text: str) -> bool:
    """True when the text has UXD ``_KEY=value`` lines and a ``_COUNTS``/``_CPS``-type data keyword."""
    head = text[:20000]
    return bool(re.search(r"^_(2THETA)?(COUNTS|CPS)\s*$", head, re.M)) and bool(re.search(r"^_\w+=", head, re.M))


def _uxd_value(raw: str) -> str:
    return raw.strip().strip("'\"").strip()


def _uxd_ranges(text: str, where: str) -> tuple[dict, list[dict]]:
    """File-level keys and the ranges of a UXD file (each with its keys, keyword and numbers)."""
    head: dict[str, str] = {}
    ranges: list[dict] = []
    cur: dict | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith(";"):
            continue
        m = _UXD_KEY.match(s)
        if m:
            key, val = m.group(1).upper(), _uxd_value(m.group(2))
            if cur is not None and cur["values"]:
                ranges.append(cur)
                cur = None
            if cur is None and key in ("DRIVE", "STEPTIME", "STEPSIZE", "START", "2THETA", "STEPMODE"):
                cur = {"keys": {}, "keyword": None, "values": []}
            (cur["keys"] if cur is not None else head)[key] = val
            continue
        if s.startswith("_"):
            if cur is None:
                cur = {"keys": {}, "keyword": None, "values": []}
            cur["keyword"] = s[1:].upper()
            continue
        try:
            nums = [float(v) for v in s.replace(",", " ").split()]
        except ValueError:
            raise InputError(f"{where}: line {lineno} {s[:40]!r} is neither a UXD key nor numbers; the UXD file "
                             "is damaged.") from None
        if cur is None or cur["keyword"] is None:
            raise InputError(f"{where}: numbers on line {lineno} before any _COUNTS/_2THETACOUNTS keyword; "
                             "not a UXD file layerscope can read.")
        cur["values"].append(nums)
    if cur is not None and cur["values"]:
        ranges.append(cur)
    return head, ranges


def _uxd_float(keys: dict, name: str, where: str) -> float:
    try:
        return float(keys[name])
    except (KeyError, ValueError):
        raise InputError(f"{where}: UXD range without a numeric _{name}; the step axis cannot be built.") from None


def read_uxd(path: str | Path, *, radiation: str | None = None, wavelength_A: float | None = None) -> Pattern:
    """Read the first range of a Bruker UXD text file (``_KEY=value`` header, ``;`` comments).

    Data follow ``_COUNTS``/``_CPS`` (intensities only, many per line: 2-theta from ``_START`` and
    ``_STEPSIZE``) or ``_2THETACOUNTS``/``_2THETACPS`` (2-theta, intensity pairs). Counts per second
    are turned into counts with ``_STEPTIME`` when the file gives it. Wavelengths from ``_WL1``,
    ``_WL2``, ``_WLRATIO``.
    """
    path = Path(path)
    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    where = str(path)
    head, ranges = _uxd_ranges(text, where)
    if not ranges:
        raise InputError(f"{where}: UXD file without a data range (_COUNTS ...); nothing to analyse.")
    r = ranges[0]
    keys = {**head, **r["keys"]}
    drive = keys.get("DRIVE", "COUPLED").upper()
    if drive not in ("COUPLED", "2THETA", "TWOTHETA", "UNLOCKED", "DETECTOR"):
        raise InputError(f"{where}: range 1 drives {drive!r}, not a coupled 2-theta/theta powder scan; xrd "
                         "analyses powder patterns only.")
    kw = r["keyword"]
    if kw.startswith("2THETA"):
        arr = np.asarray([v[:2] for v in r["values"] if len(v) >= 2], float)
        x, y = arr[:, 0], arr[:, 1]
    else:
        y = np.asarray([v for row in r["values"] for v in row], float)
        start = _uxd_float(keys, "START" if "START" in keys else "2THETA", where)
        x = start + _uxd_float(keys, "STEPSIZE", where) * np.arange(y.size)
    meta: dict[str, Any] = {"format": "uxd", "intensity_unit": "counts", "n_ranges": len(ranges)}
    step_time = keys.get("STEPTIME")
    if step_time:
        meta["counting_time_s"] = float(step_time)
    if kw.endswith("CPS"):
        if step_time:
            y = y * float(step_time)
            meta["reader_notes"] = ["counts per second times _STEPTIME gives counts"]
        else:
            meta["intensity_unit"] = "cps"
    for src, dst in (("ANODE", "anode"), ("SAMPLE", "sample_id")):
        if keys.get(src):
            meta[dst] = keys[src]
    if len(ranges) > 1:
        meta.setdefault("reader_notes", []).append(f"the file holds {len(ranges)} ranges; range 1 analysed")

    def num(k: str) -> float | None:
        try:
            return float(keys[k])
        except (KeyError, ValueError):
            return None

    wl = (num("WL1"), num("WL2"), num("WLRATIO")) if num("WL1") else None
    return make_pattern(path, x, y, meta, file_wavelength=wl, radiation=radiation, wavelength_A=wavelength_A)
