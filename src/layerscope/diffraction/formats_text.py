"""Text patterns: two-column ``.xy/.xye/.csv/.txt/.dat`` and FullProf's step-scan ``.dat``.

Neither states a wavelength, so ``--radiation`` or ``--wavelength-a`` is needed.

* Two-column text: a UTF-8 byte-order mark, any number of header lines (column names, comments
  starting with ``#``, ``;``, ``!``, ``'``, ``%`` or ``*``), and columns separated by spaces, tabs,
  commas or semicolons; with semicolons (or tabs) a decimal comma (``19,05;1234``) is understood.
  The first two numeric columns are 2-theta (deg) and intensity; a third (esd) is ignored.
* FullProf step format (the ``INS = 0`` free format of the FullProf manual): an optional title
  line, a line ``2theta_start step 2theta_end``, then the intensities in free format, several
  per line; accepted only when the number of values is exactly ``(end - start) / step + 1``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from layerscope.diffraction.pattern import Pattern, make_pattern
from layerscope.errors import InputError
from layerscope.io.textcols import NUMBER as _NUMBER, decode_text, split_numbers

__all__ = ["read_text", "read_xy", "read_fullprof_dat", "split_numbers", "decode_text"]

_COMMENT = "#;!'%*"


def read_xy(path: str | Path, *, radiation: str | None = None, wavelength_A: float | None = None,
            text: str | None = None) -> Pattern:
    """Read a two-column text pattern (see the module docstring).

    Raises
    ------
    InputError
        Fewer than 10 numeric rows, one column only, or a non-numeric line inside the data.
    CalibrationError
        Without ``--radiation``/``--wavelength-a``.
    """
    path = Path(path)
    text = decode_text(path.read_bytes()) if text is None else text
    rows: list[list[float]] = []
    header: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip().lstrip("\ufeff")
        if not s or s[0] in _COMMENT:
            continue
        vals = split_numbers(s)
        if vals is None:
            if rows:
                raise InputError(f"{path}: line {lineno} {s[:40]!r} is not numbers although the data started "
                                 "above it; remove it or mark it as a comment with #.")
            header.append(s)
            continue
        if len(vals) < 2:
            raise InputError(f"{path}: line {lineno} {s[:40]!r} has one column; give a file with 2-theta and "
                             "intensity columns.")
        rows.append(vals[:2])
    if len(rows) < 10:
        raise InputError(f"{path}: only {len(rows)} rows of 2-theta and intensity; not a powder pattern "
                         "(xrd reads .xrdml, .raw, .uxd, .ras, .rasx, FullProf .dat and two-column text).")
    arr = np.asarray(rows)
    meta: dict[str, Any] = {"intensity_unit": "counts", "format": "xy"}
    if header:
        meta["header_lines"] = len(header)
    return make_pattern(path, arr[:, 0], arr[:, 1], meta, file_wavelength=None, radiation=radiation,
                        wavelength_A=wavelength_A)


def _fullprof_layout(text: str) -> tuple[float, float, float, list[float]] | None:
    """(start, step, end, intensities) when the text is FullProf's step format, else None."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and ln.strip()[0] not in "!#"]
    for k in range(min(2, len(lines))):  # the scan line is the first or (after a title) the second
        head = lines[k].split()
        try:
            start, step, end = (float(v) for v in head[:3])
        except ValueError:
            continue
        if not (step > 0 and end > start) or len(head) > 3 and _NUMBER.match(head[3]):
            return None
        try:
            vals = [float(v) for ln in lines[k + 1:] for v in ln.split()]
        except ValueError:
            return None
        n = round((end - start) / step) + 1
        return (start, step, end, vals) if len(vals) == n and n >= 10 else None
    return None


def read_fullprof_dat(path: str | Path, *, radiation: str | None = None, wavelength_A: float | None = None,
                      text: str | None = None) -> Pattern:
    """Read FullProf's step-scan ``.dat`` (``start step end`` then the intensities)."""
    path = Path(path)
    text = decode_text(path.read_bytes()) if text is None else text
    layout = _fullprof_layout(text)
    if layout is None:
        raise InputError(f"{path}: not FullProf's step format (a 'start step end' line followed by "
                         "(end - start) / step + 1 intensities).")
    start, step, _, vals = layout
    x = start + step * np.arange(len(vals))
    return make_pattern(path, x, np.asarray(vals, float), {"intensity_unit": "counts", "format": "fullprof_dat"},
                        file_wavelength=None, radiation=radiation, wavelength_A=wavelength_A)


def read_text(path: str | Path, *, radiation: str | None = None, wavelength_A: float | None = None,
              text: str | None = None) -> Pattern:
    """FullProf's step format when the text matches it exactly, else two-column text."""
    path = Path(path)
    text = decode_text(path.read_bytes()) if text is None else text
    if _fullprof_layout(text) is not None:
        return read_fullprof_dat(path, radiation=radiation, wavelength_A=wavelength_A, text=text)
    return read_xy(path, radiation=radiation, wavelength_A=wavelength_A, text=text)
