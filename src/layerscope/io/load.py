"""Reading microscope files into calibrated containers.

Binary and vendor formats go through RosettaSciIO (the reader library behind HyperSpy); plain
two- or one-column text spectra are read here. The calibration comes from the file; where the file
has none, the caller must give it (``pixel_size_nm=``, ``offset_eV=``/``scale_eV=``, ``fps=``) —
layerscope never guesses a pixel size.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.containers import (
    Image,
    ImageSeries,
    Signal,
    Spectrum,
    build_container,
    from_hyperspy,
    metadata_from_hyperspy,
)
from layerscope.errors import CalibrationError, InputError

__all__ = ["load", "as_container", "natural_key", "SUPPORTED_FORMATS"]

#: file extension -> RosettaSciIO plugin module (explicit: several plugins claim .h5/.xml/.csv)
_RSCIIO = {
    "dm3": "rsciio.digitalmicrograph",
    "dm4": "rsciio.digitalmicrograph",
    "emd": "rsciio.emd",
    "ser": "rsciio.tia",
    "emi": "rsciio.tia",
    "tif": "rsciio.tiff",
    "tiff": "rsciio.tiff",
    "mrc": "rsciio.mrc",
    "msa": "rsciio.msa",
    "ems": "rsciio.msa",
    "emsa": "rsciio.msa",
    "hspy": "rsciio.hspy",
    "hdf5": "rsciio.hspy",
    "zspy": "rsciio.zspy",
    "png": "rsciio.image",
    "jpg": "rsciio.image",
    "jpeg": "rsciio.image",
    "bmp": "rsciio.image",
}
_TEXT = {"txt", "csv", "dat", "tsv", "xy"}
SUPPORTED_FORMATS = tuple(sorted(set(_RSCIIO) | _TEXT | {"npy"}))


def load(
    path: str | Path,
    *,
    pixel_size_nm: float | None = None,
    offset_eV: float | None = None,
    scale_eV: float | None = None,
    fps: float | None = None,
    lazy: bool = False,
    index: int | None = None,
) -> Signal:
    """Load a microscope file into a calibrated container.

    Parameters
    ----------
    path : str or Path
        A dm3/dm4, emd (Velox), ser/emi, tif, mrc, msa, hspy/zspy, npy or a plain two-column
        (energy, counts) text file.
    pixel_size_nm : float, optional
        Pixel size in nm. Overrides the file's spatial calibration; required when the file has none.
    offset_eV, scale_eV : float, optional
        Energy of the first channel and dispersion (eV) for spectra without an energy axis
        (one-column text, ``.npy``).
    fps : float, optional
        Frame rate (frames per s) for series without time stamps.
    lazy : bool
        Keep the data on disk as a Dask array where the reader supports it.
    index : int, optional
        Which signal to take when a file holds several (e.g. an EMD with HAADF and EDS).

    Returns
    -------
    Image, ImageSeries, Spectrum, LineScan or SpectrumImage

    Raises
    ------
    InputError
        Missing file, unknown format, unreadable content, NaNs, or several signals without ``index``.
    CalibrationError
        No usable spatial/energy calibration and none given.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"'{path}' does not exist; check the path (relative to {Path.cwd()})")
    if path.is_dir():
        raise InputError(f"'{path}' is a folder; give a file (for a folder of frames use 'layerscope insitu')")
    ext = path.suffix.lower().lstrip(".")
    if ext in _TEXT:
        return _load_text(path, offset_eV=offset_eV, scale_eV=scale_eV)
    if ext == "npy":
        return _load_npy(path, pixel_size_nm=pixel_size_nm, offset_eV=offset_eV, scale_eV=scale_eV)
    if ext not in _RSCIIO:
        raise InputError(
            f"'{path}': the format '.{ext}' is not supported; layerscope reads "
            f"{', '.join('.' + e for e in SUPPORTED_FORMATS)}"
        )
    try:
        return _load_rsciio(
            path, _RSCIIO[ext], pixel_size_nm=pixel_size_nm, offset_eV=offset_eV, scale_eV=scale_eV,
            fps=fps, lazy=lazy, index=index,
        )
    except InputError as err:
        if ext in ("msa", "ems", "emsa") and _looks_like_text_columns(path):
            return _load_text(path, offset_eV=offset_eV, scale_eV=scale_eV)
        raise err


def _load_rsciio(
    path: Path,
    module: str,
    *,
    pixel_size_nm: float | None,
    offset_eV: float | None,
    scale_eV: float | None,
    fps: float | None,
    lazy: bool,
    index: int | None,
) -> Signal:
    if module == "rsciio.image":
        _refuse_colour(path)
    reader = _import_reader(module)
    lazy = lazy and module not in _NOT_LAZY
    kwargs: dict[str, Any] = {"lazy": lazy} if "lazy" in reader.file_reader.__code__.co_varnames else {}
    try:
        items = reader.file_reader(str(path), **kwargs)
    except Exception as err:  # the readers raise anything from struct errors to KeyErrors
        raise InputError(f"'{path}' could not be read as {module.split('.')[-1]}: {err}; is the file complete?") from err
    items = [d for d in items if lazy or np.asarray(d["data"]).size > 0]
    if not items:
        raise InputError(f"'{path}' contains no data")
    if index is None and len(items) > 1:
        images = [i for i, d in enumerate(items) if len(d["axes"]) >= 2]
        summary = "; ".join(f"{i}: {_item_title(d)} {tuple(d['data'].shape)}" for i, d in enumerate(items))
        raise InputError(f"'{path}' holds {len(items)} signals ({summary}); choose one with index= (--index)"
                         + (f", e.g. {images[0]}" if images else ""))
    index = 0 if index is None else index
    if not 0 <= index < len(items):
        raise InputError(f"'{path}' holds {len(items)} signal(s); index={index} is out of range")
    item = items[index]
    data = item["data"]
    if _is_rgb(data):
        raise InputError(
            f"'{path}' is a colour (RGB) image; layerscope needs the detector's grey-level data — export the "
            f"raw signal (dm4/emd/tif) or convert to grey first"
        )
    axes = [dict(a) for a in item["axes"]]
    if module == "rsciio.tiff":
        _imagej_length_unit(path, axes)
    md = metadata_from_hyperspy(item.get("metadata", {}))
    md.setdefault("title", path.stem)
    md["original_format"] = module.split(".")[-1]
    companion = _eelsdb_metadata(path)
    if companion:
        md.update({k: v for k, v in companion.items() if k not in md or k.startswith("eelsdb")})
    _calibrate_energy(path, axes, offset_eV=offset_eV, scale_eV=scale_eV, companion=companion)
    return build_container(data, axes, metadata=md, source=path, pixel_size_nm=pixel_size_nm, fps=fps)


def _calibrate_energy(
    path: Path, axes: list[dict], *, offset_eV: float | None, scale_eV: float | None, companion: dict | None = None,
) -> None:
    """Apply explicit energy calibration to the spectral axis; refuse a spectral axis without a unit.

    An axis without a unit is accepted as eV when the EELS Data Base record next to the file
    (``<stem>.metadata.json``) states the same first energy and step in eV.
    """
    last = axes[-1]
    if last.get("navigate", False) or len([a for a in axes if not a.get("navigate", False)]) != 1:
        return
    if offset_eV is not None and scale_eV is not None:
        last.update(offset=float(offset_eV), scale=float(scale_eV), units="eV")
        return
    if last.get("units") in (None, "", "<undefined>"):
        off, sc = float(last.get("offset", 0.0)), float(last.get("scale", 1.0))
        c = companion or {}
        if c.get("eelsdb_min_energy_eV") is not None and c.get("eelsdb_step_eV") is not None:
            if abs(c["eelsdb_min_energy_eV"] - off) <= max(sc, 1e-6) and abs(c["eelsdb_step_eV"] - sc) <= 1e-3 * sc:
                last["units"] = "eV"
                return
        raise CalibrationError(
            f"'{path}': the spectral axis (offset {off:g}, {sc:g} per channel) has no unit; if these are eV, "
            f"give --offset-ev {off:g} --scale-ev {sc:g} to confirm"
        )


#: RosettaSciIO readers that cannot read lazily (they read the whole text file).
_NOT_LAZY = {"rsciio.msa"}


def _import_reader(module: str) -> Any:
    """Import a RosettaSciIO plugin without letting its import reset the log level chosen by the caller.

    ``import rsciio`` sets its logger to WARNING; the CLI has already set ERROR (quiet) or
    NOTSET (``--verbose``), and that choice is kept.
    """
    log = logging.getLogger("rsciio")
    before = log.level
    reader = importlib.import_module(module)
    if before != logging.NOTSET:
        log.setLevel(before)
    return reader


def _number_with_unit(text: Any, unit: str) -> float | None:
    s = str(text or "").strip()
    if not s.lower().endswith(unit.lower()):
        return None
    try:
        return float(s[: -len(unit)].strip().split("/")[0].strip())
    except ValueError:
        return None


def _eelsdb_metadata(path: Path) -> dict[str, Any]:
    """Microscope settings from an EELS Data Base record ``<stem>.metadata.json`` next to the file.

    Returns layerscope metadata keys (``beam_energy_keV``, ``convergence_angle_mrad``,
    ``collection_angle_mrad``, ``energy_resolution_eV``) and the record's energy range
    (``eelsdb_min_energy_eV``, ``eelsdb_step_eV``) and type; empty when there is no record.
    """
    rec = path.with_name(path.stem + ".metadata.json")
    if not rec.is_file():
        return {}
    try:
        d = json.loads(rec.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(d, dict):
        return {}
    out: dict[str, Any] = {"eelsdb_record": rec.name, "eelsdb_type": str(d.get("type", ""))}
    for key, field, unit in (("beam_energy_keV", "beamenergy", "kV"), ("convergence_angle_mrad", "convergence", "mrad"),
                             ("collection_angle_mrad", "collection", "mrad"), ("energy_resolution_eV", "resolution", "eV"),
                             ("eelsdb_min_energy_eV", "min_energy", "eV"), ("eelsdb_step_eV", "stepSize", "eV/pixel")):
        v = _number_with_unit(d.get(field), unit)
        if v is not None:
            out[key] = v
    if d.get("formula"):
        out["formula"] = str(d["formula"])
    return out


def _item_title(d: dict) -> str:
    return str(d.get("metadata", {}).get("General", {}).get("title", "untitled"))


def _refuse_colour(path: Path) -> None:
    """RosettaSciIO turns colour pictures into grey silently; a colour picture is no detector signal."""
    import imageio.v3 as iio

    pixels = iio.imread(path)
    if pixels.ndim == 3 and pixels.shape[-1] in (3, 4):
        rgb = pixels[..., :3]
        if np.any(rgb[..., 0] != rgb[..., 1]) or np.any(rgb[..., 1] != rgb[..., 2]):
            raise InputError(
                f"'{path}' is a colour (RGB) picture, not a detector signal; export the raw grey-level data "
                f"(dm4/emd/tif) from the microscope software, or convert it to grey yourself if you are sure"
            )


def _is_rgb(data: Any) -> bool:
    dtype = getattr(data, "dtype", None)
    return bool(dtype is not None and dtype.names and set(dtype.names) >= {"R", "G", "B"})


def _looks_like_text_columns(path: Path) -> bool:
    with open(path, errors="replace") as fh:
        first = fh.readline()
    return not first.startswith("#")


def _numeric_rows(path: Path) -> tuple[np.ndarray, list[str]]:
    """The numeric block of a text spectrum and the header lines above it.

    Reads UTF-8 with or without a byte-order mark; header lines (column names, instrument
    notes, comments) are any lines that are not all numbers; separators: comma, semicolon, tab
    or whitespace (a semicolon or tab file may use ',' as the decimal mark).
    """
    from layerscope.io.textcols import decode_text, split_numbers

    lines = [ln.strip().lstrip("\ufeff") for ln in decode_text(path.read_bytes()).splitlines()]
    header: list[str] = []
    rows: list[list[float]] = []
    for ln in filter(None, lines):
        if ln.startswith(("#", "%", "//")):
            header.append(ln)
            continue
        nums = split_numbers(ln)
        if not nums:
            if rows:  # text after the data: a footer ("#ENDOFDATA", notes)
                break
            header.append(ln)
            continue
        rows.append(nums)
    if not rows:
        raise InputError(f"'{path}' has no numeric rows; give a text file with columns energy (eV), counts")
    width = len(rows[0])
    if any(len(r) != width for r in rows):
        raise InputError(f"'{path}': the rows have different numbers of columns; give two columns (energy in eV, "
                         "counts) in every row")
    return np.asarray(rows, dtype=float), header


def _uniform_axis(path: Path, energy: np.ndarray, counts: np.ndarray) -> tuple[float, float, np.ndarray, str | None]:
    """``(offset_eV, scale_eV, counts, note)``: the counts on a uniform axis (resampled if needed)."""
    if energy.size > 1 and np.all(np.diff(energy) < 0):
        energy, counts = energy[::-1], counts[::-1]
    step = np.diff(energy)
    if step.size == 0 or np.any(step <= 0):
        raise CalibrationError(f"'{path}': the energy column must increase (or decrease) strictly from row to row; "
                               "sort the rows by energy and remove repeated energies")
    scale = float(np.median(step))
    if np.max(np.abs(step - scale)) <= 0.05 * scale:
        return float(energy[0]), float(np.mean(step)), counts, None
    n = int(np.floor((energy[-1] - energy[0]) / scale + 1e-9)) + 1
    uniform = energy[0] + scale * np.arange(n)
    note = (f"energy steps vary from {step.min():.4g} to {step.max():.4g} eV: resampled by linear interpolation "
            f"onto a uniform {scale:.4g} eV axis ({energy.size} -> {n} channels)")
    return float(energy[0]), scale, np.interp(uniform, energy, counts), note


def _load_text(path: Path, *, offset_eV: float | None, scale_eV: float | None) -> Spectrum:
    """A spectrum from a text file: two columns (energy in eV, counts) or one column (counts).

    Header lines, a UTF-8 byte-order mark, and comma/semicolon/tab/whitespace separators are
    accepted; an uneven energy axis is resampled onto a uniform one (``metadata["resampled"]``
    says so).
    """
    table, header = _numeric_rows(path)
    md: dict[str, Any] = {"title": path.stem, "original_format": "text"}
    if header:
        md["text_header"] = " | ".join(header)[:200]
    md.update(_eelsdb_metadata(path))
    if table.shape[1] == 1:
        if offset_eV is None or scale_eV is None:
            raise CalibrationError(
                f"'{path}' has one column (counts) and no energy axis; give --offset-ev (eV of the first "
                "channel) and --scale-ev (eV per channel)"
            )
        return Spectrum.from_array(table[:, 0], offset_eV=offset_eV, scale_eV=scale_eV, metadata=md, source=path)
    if table.shape[1] != 2:
        raise InputError(f"'{path}' has {table.shape[1]} columns; save two columns (energy in eV, counts)")
    offset, scale, counts, note = _uniform_axis(path, table[:, 0], table[:, 1])
    if note:
        md["resampled"] = note
    return Spectrum.from_array(counts, offset_eV=offset, scale_eV=scale, metadata=md, source=path)


def _load_npy(
    path: Path, *, pixel_size_nm: float | None, offset_eV: float | None, scale_eV: float | None
) -> Signal:
    data = np.load(path, allow_pickle=False)
    return as_container(data, pixel_size_nm=pixel_size_nm, offset_eV=offset_eV, scale_eV=scale_eV, source=path)


def as_container(
    obj: Any,
    *,
    pixel_size_nm: float | None = None,
    offset_eV: float | None = None,
    scale_eV: float | None = None,
    fps: float | None = None,
    source: Path | None = None,
    kind: str = "image",
) -> Signal:
    """Accept a path, a layerscope container, a HyperSpy signal or a NumPy array.

    A NumPy array needs its calibration: ``pixel_size_nm`` for images (2-D) and series (3-D, with
    ``fps``), ``offset_eV`` and ``scale_eV`` for 1-D spectra. ``kind`` says how to read a 3-D array
    (``"image"`` → a series of frames, ``"spectrum"`` → a spectrum image).
    """
    from layerscope.containers import ImageSeries, SpectrumImage

    if isinstance(obj, Signal):
        return obj
    if isinstance(obj, (str, Path)):
        return load(obj, pixel_size_nm=pixel_size_nm, offset_eV=offset_eV, scale_eV=scale_eV, fps=fps)
    if hasattr(obj, "axes_manager"):
        return from_hyperspy(obj, pixel_size_nm=pixel_size_nm, fps=fps)
    data = obj if type(obj).__module__.startswith("dask") else np.asarray(obj)
    if data.ndim == 1:
        if offset_eV is None or scale_eV is None:
            raise CalibrationError("a 1-D array is read as a spectrum: pass offset_eV= and scale_eV= (eV)")
        return Spectrum.from_array(data, offset_eV=offset_eV, scale_eV=scale_eV, source=source)
    if data.ndim == 2:
        return Image.from_array(data, pixel_size_nm=pixel_size_nm, source=source)
    if data.ndim == 3 and kind == "spectrum":
        if offset_eV is None or scale_eV is None:
            raise CalibrationError("a spectrum image needs offset_eV= and scale_eV= (eV)")
        return SpectrumImage.from_array(
            data, pixel_size_nm=pixel_size_nm, offset_eV=offset_eV, scale_eV=scale_eV, source=source
        )
    if data.ndim == 3:
        return ImageSeries.from_array(data, pixel_size_nm=pixel_size_nm, fps=fps, source=source)
    raise InputError(f"an array of shape {tuple(data.shape)} is not an image, series or spectrum")


def require_image(signal: Signal) -> Image:
    """``signal`` if it is an :class:`Image`; otherwise an :class:`InputError` that says what it is."""
    if isinstance(signal, Image):
        return signal
    where = f"'{signal.source}'" if signal.source else "the input"
    fix = ("for a series of frames use 'layerscope insitu', or save the one frame you want as its own file"
           if isinstance(signal, ImageSeries) else "use the command made for it (e.g. 'layerscope eels')")
    raise InputError(f"{where} is a {signal.kind.replace('_', ' ')} of shape {signal.shape}, not a single 2-D image; {fix}")


def _imagej_length_unit(path: Path, axes: list[dict]) -> None:
    """Give the spatial axes of an ImageJ TIFF the length unit its description states.

    RosettaSciIO reads ImageJ's scale (XResolution) but its unit only when it is "micron", so a Fiji
    file calibrated in nm or Å came without a unit and was refused as uncalibrated. Axes that have a
    unit already, or a file whose unit is missing or not a length (``pixel``), are left as they are.
    """
    import tifffile

    from layerscope.containers import length_to_nm

    try:
        with tifffile.TiffFile(path) as tf:
            nm = length_to_nm((tf.imagej_metadata or {}).get("unit"))
    except (OSError, ValueError, tifffile.TiffFileError):
        return
    for a in axes:
        if nm and not a.get("units") and a.get("name") in ("x", "y", "width", "height"):
            a.update(units="nm", scale=a["scale"] * nm, offset=a.get("offset", 0.0) * nm)


def natural_key(path: Path) -> list:
    """Sort key of a file name with its digit runs as numbers: ``frame_2`` before ``frame_10``."""
    return [int(tok) if tok.isdigit() else tok.lower() for tok in re.split(r"(\d+)", Path(path).name)]
