"""Impedance spectra from instrument files, read through impedance.py's readers where they serve.

Formats: BioLogic EC-Lab ``.mpt``, Gamry ``.DTA``, ZPlot ``.z``, Autolab and CH Instruments ``.txt``
exports, Parstat, VersaStudio and PowerSuite (``--instrument``), a headerless three-column CSV
(frequency in Hz, Z' and Z'' in Ohm; impedance.py's layout) and a CSV with named columns
(``frequency_Hz``/``freq``, ``z_real_Ohm``/``Re(Z)``, ``z_imag_Ohm``/``Im(Z)``; a ``-Im(Z)`` column is negated).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from layerscope.bulk._common import short_list
from layerscope.errors import InputError

__all__ = ["Impedance", "read_impedance", "INSTRUMENTS"]

INSTRUMENTS = ("gamry", "autolab", "parstat", "zplot", "versastudio", "powersuite", "biologic", "chinstruments", "csv")
_BY_SUFFIX = {".mpt": "biologic", ".dta": "gamry", ".z": "zplot", ".csv": "csv"}


@dataclass
class Impedance:
    """One impedance spectrum: frequency (Hz) and complex impedance (Ohm), sorted by falling frequency."""

    frequency_Hz: np.ndarray
    z_Ohm: np.ndarray
    name: str
    source: Path | None = None
    instrument: str = ""


def _detect(path: Path) -> str:
    by_suffix = _BY_SUFFIX.get(path.suffix.lower())
    if by_suffix:
        return by_suffix
    head = path.read_bytes()[:4000].decode("utf-8", errors="replace")
    if "A.C. Impedance" in head or re.search(r"^Freq/Hz", head, re.M) or "Instrument Model:  CHI" in head:
        return "chinstruments"
    if re.search(r"Freq.*,", head) or "Z60W" in head or "Autolab" in head:
        return "autolab"
    if "ZPLOT" in head.upper():
        return "zplot"
    raise InputError(f"{path}: not a recognised impedance export; give --instrument with one of "
                     f"{', '.join(INSTRUMENTS)}.")


def _column(names: list[str], patterns: tuple[str, ...]) -> str | None:
    for n in names:
        key = re.sub(r"\s", "", n.lower())
        if any(re.search(p, key) for p in patterns):
            return n
    return None


def _named_csv(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    import pandas as pd

    try:
        raw = pd.read_csv(path, comment="#")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError):
        return None
    names = [str(c) for c in raw.columns]
    if all(re.fullmatch(r"\s*[-+.\deE]+\s*", n) for n in names):
        return None  # headerless: the first row is data
    f = _column(names, (r"^freq", r"^frequency", r"^f(_hz|/hz|\(hz\))?$"))
    re_ = _column(names, (r"re\(z\)", r"z_?real", r"^z'(?!')", r"^zre"))
    im = _column(names, (r"im\(z\)", r"z_?imag", r"^-?z(''|\")", r"^-?zim"))
    if f is None or re_ is None or im is None:
        raise InputError(f"{path}: no frequency and impedance columns (found {short_list(names)}); name them "
                         "frequency_Hz, z_real_Ohm and z_imag_Ohm.")
    imag = raw[im].to_numpy(float)
    if im.strip().startswith("-"):
        imag = -imag
    return raw[f].to_numpy(float), raw[re_].to_numpy(float) + 1j * imag


def _check(path: Path, f: np.ndarray, z: np.ndarray, instrument: str) -> Impedance:
    f, z = np.asarray(f, float).ravel(), np.asarray(z, complex).ravel()
    ok = np.isfinite(f) & np.isfinite(z.real) & np.isfinite(z.imag)
    f, z = f[ok], z[ok]
    if f.size < 5:
        raise InputError(f"{path}: {f.size} impedance points; an impedance spectrum needs at least 5 (wrong "
                         "--instrument, or a file of another technique?).")
    if np.any(f <= 0) or np.unique(f).size < 0.8 * f.size or f.max() / f.min() < 10.0:
        raise InputError(f"{path}: the first column does not look like a frequency sweep (positive, distinct, at "
                         "least a decade); is this an impedance file? Give --instrument if the format is known.")
    order = np.argsort(-f, kind="stable")
    return Impedance(f[order], z[order], path.stem, path, instrument)


def read_impedance(path: str | Path, *, instrument: str | None = None) -> Impedance:
    """Read one impedance spectrum.

    Parameters
    ----------
    path : str or Path
    instrument : str, optional
        One of :data:`INSTRUMENTS`; detected from the extension and the header otherwise.

    Returns
    -------
    Impedance
    """
    import impedance.preprocessing as pp

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file.")
    kind = (instrument or _detect(path)).lower()
    if kind not in INSTRUMENTS:
        raise InputError(f"--instrument {instrument!r}: choose one of {', '.join(INSTRUMENTS)}.")
    if kind == "csv":
        named = _named_csv(path)
        if named is not None:
            return _check(path, *named, "csv (named columns)")
    try:
        f, z = pp.readCSV(str(path)) if kind == "csv" else pp.readFile(str(path), instrument=kind)
    except Exception as exc:  # the readers raise IndexError, ValueError, UnboundLocalError... on foreign files
        raise InputError(f"{path}: not readable as a {kind} impedance file ({type(exc).__name__}); give the right "
                         f"--instrument ({', '.join(INSTRUMENTS)}).") from exc
    return _check(path, f, z, kind)
