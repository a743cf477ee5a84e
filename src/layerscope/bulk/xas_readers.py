"""Readers of X-ray absorption spectra: column text, XDI, Athena-style exports and FeatureXAS JSON.

Every reader returns :class:`XASSpectrum` objects with the energy in eV and the absorption
``mu`` (transmission ``ln(I0/It)``, fluorescence ``If/I0`` or an already computed ``mu``/``norm``
column). Column names are matched case-insensitively; a file without a recognisable energy column
is refused with one line, never guessed from the column order (except a plain two-column file whose
first column is a rising energy axis in eV).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.bulk._common import short_list
from layerscope.errors import InputError
from layerscope.io.textcols import decode_text, split_numbers

__all__ = ["XASSpectrum", "read_xas"]

_ENERGY_NAMES = ("energy", "energy_ev", "e", "energy(ev)", "ev", "en", "e_ev")
_MU_NAMES = ("mu", "xmu", "norm", "flat", "mutrans", "mu_trans", "mufluor", "mu_fluor", "absorption", "mu_ev",
             "intensity", "normtrans", "normfluor")
_I0_NAMES = ("i0", "i_0")
_IT_NAMES = ("it", "itrans", "i1", "i_t")
_IF_NAMES = ("if", "ifluor", "ifl", "i_f", "fluor")


@dataclass
class XASSpectrum:
    """One absorption spectrum.

    Attributes
    ----------
    energy_eV, mu : ndarray
        Incident energy (eV, increasing) and absorption (arbitrary units).
    name : str
        Label used in tables and for ``--reference``.
    composition : str
        Sample composition when the file says (e.g. ``NMC622``), else ``""``.
    voltage_V : float
        Cell voltage when the file says, else NaN (pristine samples have no voltage).
    source : Path or None
    mu_from : str
        How ``mu`` was obtained (column name or ``ln(I0/It)``).
    """

    energy_eV: np.ndarray
    mu: np.ndarray
    name: str
    composition: str = ""
    voltage_V: float = float("nan")
    source: Path | None = None
    mu_from: str = "mu"


def _check_axis(path: Path, energy: np.ndarray, mu: np.ndarray, name: str) -> XASSpectrum:
    ok = np.isfinite(energy) & np.isfinite(mu)
    energy, mu = energy[ok], mu[ok]
    if energy.size < 20:
        raise InputError(f"{path}: {energy.size} finite points in {name!r}; an absorption spectrum needs at least 20.")
    order = np.argsort(energy, kind="stable")
    energy, mu = energy[order], mu[order]
    if np.any(np.diff(energy) <= 0):
        raise InputError(f"{path}: repeated energies in {name!r}; merge the repeated scans before the analysis.")
    if energy[0] < 50.0 or energy[-1] > 2.0e5:
        raise InputError(f"{path}: energies {energy[0]:.4g}-{energy[-1]:.4g} are not X-ray energies in eV "
                         "(keV data: convert to eV; a file of another technique: use its command).")
    return XASSpectrum(energy, mu, name, source=path)


def _pick(names: list[str], choices: tuple[str, ...]) -> int | None:
    low = [re.sub(r"\s+", "", n.lower()) for n in names]
    for c in choices:
        if c in low:
            return low.index(c)
    return None


def _mu_from_columns(path: Path, names: list[str], data: np.ndarray) -> tuple[np.ndarray, str]:
    k = _pick(names, _MU_NAMES)
    if k is not None:
        return data[:, k], names[k]
    i0, it, fl = _pick(names, _I0_NAMES), _pick(names, _IT_NAMES), _pick(names, _IF_NAMES)
    with np.errstate(divide="ignore", invalid="ignore"):
        if i0 is not None and it is not None:
            return np.log(data[:, i0] / data[:, it]), "ln(I0/It)"
        if i0 is not None and fl is not None:
            return data[:, fl] / data[:, i0], "If/I0"
    raise InputError(f"{path}: no absorption column (found {short_list(names)}); name one mu, xmu or norm, or give "
                     "I0 with It "
                     "(transmission) or If (fluorescence).")


def _read_table(path: Path) -> tuple[list[str], np.ndarray, dict[str, str]]:
    """Column names (from the header), the numeric block and XDI-style ``# key: value`` fields.

    Text is decoded and data lines are split by :mod:`layerscope.io.textcols` (UTF-8 with or without
    a byte-order mark, else Latin-1; ``;``, tab, ``,`` or white space; a decimal comma after ``;`` or
    tab), as the EELS and XRD text readers do.
    """
    lines = decode_text(path.read_bytes()).splitlines()
    header: list[str] = []
    fields: dict[str, str] = {}
    rows: list[list[float]] = []
    last_comment = ""
    for line in lines:
        s = line.strip()
        if not s:
            continue
        if s[0] in "#;!%":
            body = s.lstrip("#;!% ").strip()
            m = re.match(r"([\w.]+)\s*[:=]\s*(.*)", body)
            if m:
                fields[m.group(1).lower()] = m.group(2).strip()
            elif body and not set(body) <= set("-/=*_ "):
                last_comment = body
            continue
        nums = split_numbers(s)
        if nums is not None:
            rows.append(nums)
        else:
            if not rows:  # a header line: split it like the data (names may hold spaces, e.g. "Energy (eV)")
                sep = "," if "," in s else ("\t" if "\t" in s else (";" if ";" in s else None))
                header = [p.strip() for p in (s.split(sep) if sep else s.split()) if p.strip()]
            continue
    if not rows:
        raise InputError(f"{path}: no numeric data rows; give a text file with an energy column and mu.")
    width = min(len(r) for r in rows)
    data = np.array([r[:width] for r in rows], float)
    if not header:
        cols = {int(k.split(".")[1]): v.split()[0] for k, v in fields.items() if re.fullmatch(r"column\.\d+", k)}
        if cols:
            header = [cols.get(i + 1, f"col{i + 1}") for i in range(width)]
        elif last_comment and len(last_comment.split()) == width:
            header = last_comment.split()
    return header[:width], data, fields


def _read_text(path: Path) -> list[XASSpectrum]:
    names, data, fields = _read_table(path)
    if not names:
        if data.shape[1] != 2:
            raise InputError(f"{path}: {data.shape[1]} unnamed columns; add a header naming the energy column "
                             "(energy) and the absorption (mu), or use a two-column energy/mu file.")
        spec = _check_axis(path, data[:, 0], data[:, 1], path.stem)
        spec.mu_from = "column 2"
        return [spec]
    e = _pick(names, _ENERGY_NAMES)
    if e is None:
        raise InputError(f"{path}: no energy column (found {short_list(names)}); name it energy or energy_eV (in eV).")
    mu, origin = _mu_from_columns(path, names, data)
    spec = _check_axis(path, data[:, e], mu, path.stem)
    spec.mu_from = origin
    spec.composition = fields.get("sample.name", fields.get("sample.formula", ""))
    return [spec]


def _voltage(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _read_json(path: Path, energy_grid_eV: tuple[float, float] | None) -> list[XASSpectrum]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not readable JSON ({exc}).") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("intensity"), dict):
        raise InputError(f"{path}: a JSON without an 'intensity' table of spectra; export the spectra as column "
                         "text (energy, mu) instead.")
    out = []
    for key, values in doc["intensity"].items():
        mu = np.asarray(values, float)
        if "energy" in doc:
            energy = np.asarray(doc["energy"][key] if isinstance(doc["energy"], dict) else doc["energy"], float)
        elif energy_grid_eV is not None:
            energy = energy_grid_eV[0] + energy_grid_eV[1] * np.arange(mu.size)
        else:
            raise InputError(f"{path}: the spectra carry no energies; give --energy-grid START:STEP in eV "
                             "(from the dataset's description, e.g. --energy-grid 8330:0.4).")
        spec = _check_axis(path, energy, mu, f"{key}")
        spec.composition = str(doc.get("composition", {}).get(key, ""))
        spec.voltage_V = _voltage(doc.get("voltage", {}).get(key))
        spec.mu_from = "intensity"
        out.append(spec)
    return out


def read_xas(path: str | Path, *, energy_grid_eV: tuple[float, float] | None = None) -> list[XASSpectrum]:
    """Read the absorption spectra in ``path``.

    Parameters
    ----------
    path : str or Path
        Column text (``.txt``, ``.dat``, ``.csv``, ``.xmu``, ``.nor``), XDI (``.xdi``) or a JSON table of
        spectra (FeatureXAS layout: ``intensity``, ``composition``, ``voltage`` keyed by spectrum).
    energy_grid_eV : (start_eV, step_eV), optional
        The energy grid of JSON spectra that store none.

    Returns
    -------
    list of XASSpectrum
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file.")
    if path.suffix.lower() in (".h5", ".hdf5", ".nxs", ".prj", ".mpt", ".dta", ".z", ".mpr", ".xrdml"):
        raise InputError(f"{path}: {path.suffix} is not a supported absorption-spectrum format; export column text "
                         "(energy, mu) or XDI.")
    if path.suffix.lower() == ".json":
        return _read_json(path, energy_grid_eV)
    return _read_text(path)
