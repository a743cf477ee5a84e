"""Reference spectra of known valence: the folder format users bring, its reader and writer.

layerscope ships no reference spectra. A reference set is a folder::

    my_references/
        references.csv        (or references.json / references.yaml)
        CoO_CoL.msa           spectra in any format layerscope.io.load reads
        LiCoO2_CoL.txt        (msa, dm3/dm4, hspy, two-column "energy_eV counts" text, ...)

``references.csv`` has one row per spectrum and these columns (JSON/YAML: a list of objects
with the same keys):

==========================  ========  =========================================================
column                      required  meaning
==========================  ========  =========================================================
``file``                    yes       spectrum file, relative to the folder
``edge``                    yes       edge it shows, e.g. ``Co_L``, ``Mn_L``, ``O_K``
``valence``                 yes       formal oxidation state of the element (e.g. ``2``, ``3``)
``background_subtracted``   yes       ``true`` if the pre-edge background is already removed
``source``                  yes       provenance: who measured it, where, citation/DOI or URL
``compound``                no        e.g. ``CoO``
``licence``                 no        licence of the data (kept in reports)
``energy_shift_eV``         no        added to the file's energy axis (calibration offset)
``background_window_eV``    no        ``"start end"`` for the background fit of raw spectra
``resolution_eV``           no        energy resolution (ZLP FWHM, eV) of the instrument that
                                      measured it; enables resolution matching to the unknown
==========================  ========  =========================================================

Raw references get the default power-law background of their edge
(:func:`layerscope.spectra.edges.default_background_window`) unless a window is given.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.errors import InputError
from layerscope.spectra.edges import Edge, default_background_window, get_edge
from layerscope.io.output import writes_folder

__all__ = [
    "ReferenceSpectrum",
    "ReferenceSet",
    "load_reference_set",
    "write_reference_set",
    "INDEX_NAMES",
    "REQUIRED_COLUMNS",
]

INDEX_NAMES = ("references.csv", "references.json", "references.yaml", "references.yml")
REQUIRED_COLUMNS = ("file", "edge", "valence", "background_subtracted", "source")


@dataclass(frozen=True)
class ReferenceSpectrum:
    """One background-subtracted reference spectrum of known valence.

    Attributes
    ----------
    name : str
        File stem (or given name).
    edge : Edge
        The edge shown.
    valence : float
        Formal oxidation state.
    energy_eV : numpy.ndarray
        Energy axis (eV), after ``energy_shift_eV``.
    signal : numpy.ndarray
        Background-subtracted intensity.
    source : str
        Provenance (who, where, citation).
    compound, licence : str
        Optional descriptors.
    path : Path or None
        The file it was read from.
    """

    name: str
    edge: Edge
    valence: float
    energy_eV: np.ndarray
    signal: np.ndarray
    source: str
    compound: str = ""
    licence: str = ""
    path: Path | None = None
    resolution_eV: float | None = None

    def describe(self) -> dict[str, Any]:
        """Plain dictionary for summaries and reports (no arrays)."""
        return {
            "name": self.name,
            "edge": self.edge.name,
            "valence": self.valence,
            "compound": self.compound,
            "source": self.source,
            "licence": self.licence,
            "file": str(self.path) if self.path else None,
            "energy_range_eV": [float(self.energy_eV[0]), float(self.energy_eV[-1])],
            "resolution_eV": self.resolution_eV,
        }


@dataclass(frozen=True)
class ReferenceSet:
    """A set of reference spectra, looked up by edge."""

    entries: tuple[ReferenceSpectrum, ...]
    folder: Path | None = None
    files: tuple[Path, ...] = field(default_factory=tuple)

    def for_edge(self, edge: Edge | str) -> list[ReferenceSpectrum]:
        """References of ``edge`` (e.g. ``"Co_L"``), sorted by valence."""
        name = (get_edge(edge) if isinstance(edge, str) else edge).name
        return sorted((r for r in self.entries if r.edge.name == name), key=lambda r: r.valence)

    def edges(self) -> list[str]:
        """Names of the edges covered."""
        return sorted({r.edge.name for r in self.entries})


def _truthy(value: Any, *, where: str) -> bool:
    if isinstance(value, bool):
        return value
    s = str(value).strip().lower()
    if s in ("true", "yes", "1", "y"):
        return True
    if s in ("false", "no", "0", "n"):
        return False
    raise InputError(f"{where}: background_subtracted={value!r}; write true or false.")


def _optional_float(value: Any, *, where: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}={value!r} is not a number of eV.") from None
    if not v > 0:
        raise InputError(f"{where}={value!r} must be a positive number of eV.")
    return v


def _read_index(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as fh:  # Excel writes a byte-order mark
            sample = fh.read(4096)
            fh.seek(0)
            delimiter = ";" if sample.count(";") > sample.count(",") else ","
            rows = [{(k or "").strip(): v for k, v in r.items()} for r in csv.DictReader(fh, delimiter=delimiter)]
    elif path.suffix == ".json":
        rows = json.loads(path.read_text(encoding="utf-8"))
    else:
        import yaml

        rows = yaml.safe_load(path.read_text(encoding="utf-8"))
    if isinstance(rows, dict) and "references" in rows:
        rows = rows["references"]
    if not isinstance(rows, list) or not rows:
        raise InputError(f"'{path}': expected a list of references (one row/object per spectrum).")
    return rows


def load_reference_set(folder: str | Path) -> ReferenceSet:
    """Read a reference folder (see the module docstring for the format).

    Raises
    ------
    InputError
        Missing folder/index/file, missing required columns, bad valence, an edge the spectrum
        does not cover.
    """
    from layerscope.io import load
    from layerscope.spectra.background import subtract_background

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"references: '{folder}' is not a folder; give the folder that holds references.csv.")
    index = next((folder / n for n in INDEX_NAMES if (folder / n).is_file()), None)
    if index is None:
        raise InputError(
            f"references: '{folder}' has no {' / '.join(INDEX_NAMES)}; add an index with the columns "
            f"{', '.join(REQUIRED_COLUMNS)} (see layerscope.spectra.references)."
        )
    entries = []
    files = [index]
    for i, row in enumerate(_read_index(index), start=1):
        where = f"'{index}' row {i}"
        missing = [c for c in REQUIRED_COLUMNS if c not in row or str(row[c]).strip() == ""]
        if missing:
            raise InputError(f"{where}: missing {', '.join(missing)}; every reference needs {REQUIRED_COLUMNS}.")
        path = folder / str(row["file"]).strip()
        if not path.is_file():
            raise InputError(f"{where}: file '{path}' does not exist.")
        try:
            valence = float(row["valence"])
        except (TypeError, ValueError):
            raise InputError(f"{where}: valence={row['valence']!r} is not a number.") from None
        edge = get_edge(str(row["edge"]))
        spec = load(path)
        if spec.data.ndim != 1:
            raise InputError(f"{where}: '{path}' holds {spec.data.ndim - 1}-D data; a reference must be one spectrum.")
        e = np.asarray(spec.energy_eV, dtype=np.float64) + float(row.get("energy_shift_eV") or 0.0)
        y = np.asarray(spec.data, dtype=np.float64)
        if not _truthy(row["background_subtracted"], where=where):
            win = row.get("background_window_eV")
            if win not in (None, ""):
                parts = [float(v) for v in str(win).replace(",", " ").split()]
                if len(parts) != 2:
                    raise InputError(f"{where}: background_window_eV={win!r}; write 'start end' in eV.")
                window = (parts[0], parts[1])
            else:
                window = default_background_window(edge, e)
            y, _ = subtract_background(y, e, window_eV=window)
        entries.append(
            ReferenceSpectrum(
                name=str(row.get("name") or path.stem),
                edge=edge,
                valence=valence,
                energy_eV=e,
                signal=np.asarray(y, dtype=np.float64),
                source=str(row["source"]),
                compound=str(row.get("compound") or ""),
                licence=str(row.get("licence") or ""),
                path=path,
                resolution_eV=_optional_float(row.get("resolution_eV"), where=f"{where}: resolution_eV"),
            )
        )
        files.append(path)
    return ReferenceSet(tuple(entries), folder, tuple(files))


@writes_folder("folder")
def write_reference_set(folder: str | Path, references: list[dict[str, Any]]) -> Path:
    """Write a reference folder: spectra as two-column text plus ``references.csv``.

    Each item of ``references`` has ``name``, ``energy_eV``, ``signal`` (arrays), ``edge``,
    ``valence``, ``background_subtracted``, ``source`` and optionally ``compound``/``licence``.
    Returns the index path. Used by the demo and the tests to build simulated sets (their
    ``source`` must say they are simulated).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for ref in references:
        missing = [k for k in ("name", "energy_eV", "signal", "edge", "valence", "background_subtracted", "source")
                   if k not in ref]
        if missing:
            raise InputError(f"write_reference_set: reference is missing {missing}.")
        fname = f"{ref['name']}.txt"
        np.savetxt(folder / fname, np.column_stack([ref["energy_eV"], ref["signal"]]),
                   header="energy_eV counts", fmt="%.6f")
        rows.append({
            "file": fname, "edge": ref["edge"], "valence": ref["valence"],
            "background_subtracted": str(bool(ref["background_subtracted"])).lower(),
            "source": ref["source"], "compound": ref.get("compound", ""), "licence": ref.get("licence", ""),
            "resolution_eV": ref.get("resolution_eV", ""),
        })
    index = folder / "references.csv"
    with open(index, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return index
