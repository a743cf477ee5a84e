"""Reading tomography data: projection series (DXchange HDF5, TIFF stacks, MRC tilt series) and volumes.

Projections are ``(n_angles, rows, columns)``; volumes are ``(z, y, x)``. The voxel (detector pixel)
size is taken from the file where it states one (MRC header, DXchange ``pixel_size`` entries,
ImageJ TIFF with a length unit) or from ``--voxel-size-nm``; it is never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from layerscope.containers import length_to_nm
from layerscope.errors import CalibrationError, InputError

__all__ = ["Projections", "Volume", "read_tomo", "parse_angles", "as_volume"]

_HDF5 = (".h5", ".hdf5", ".hdf", ".nxs", ".cxi")
_TIFF = (".tif", ".tiff")
_MRC = (".mrc", ".st", ".ali", ".rec", ".mrcs", ".map")

@dataclass
class Projections:
    """A projection series.

    Attributes
    ----------
    data : ndarray, (n_angles, rows, columns)
        Raw counts (with ``flats``/``darks``), transmission (``transmission=True``) or line integrals
        (``line_integrals=True``).
    angles_deg : ndarray
        Rotation angle of every projection (deg).
    pixel_size_nm : float
        Detector pixel size in the object (nm); also the reconstructed voxel size.
    flats, darks : ndarray or None
        Flat (open beam) and dark fields, ``(n, rows, columns)``.
    transmission : bool
        ``data`` is already flat/dark corrected (I/I0, 0-1): ``-log`` is taken.
    line_integrals : bool
        ``data`` is proportional to the projected mass already and is reconstructed as it is: a
        HAADF-STEM (electron tomography) tilt series, or X-ray projections with ``-log`` taken.
    source : Path or None
    angles_source : str or None
        Where the angles came from: a file read beside ``source`` (IMOD ``.tlt``/``.rawtlt``,
        SerialEM ``.mdoc``; hashed in the provenance), ``--angles-file``, or the file's own header.
    """

    data: np.ndarray
    angles_deg: np.ndarray
    pixel_size_nm: float
    flats: np.ndarray | None = None
    darks: np.ndarray | None = None
    transmission: bool = False
    source: Path | None = None
    line_integrals: bool = False
    angles_source: str | None = None

    @property
    def signal(self) -> str:
        """What ``data`` holds: ``counts``, ``transmission`` or ``line integrals``."""
        return "line integrals" if self.line_integrals else "transmission" if self.transmission else "counts"


@dataclass
class Volume:
    """A reconstructed (grey) or segmented (integer labels) volume, ``(z, y, x)``, cubic voxels of ``voxel_size_nm``."""

    data: np.ndarray
    voxel_size_nm: float
    labels: bool = False
    source: Path | None = None


def parse_angles(n: int, *, angles_file: str | Path | None = None, angle_range_deg: Sequence[float] | None = None,
                 name: str = "the input") -> np.ndarray | None:
    """Angles (deg) of ``n`` projections from a text file (one per line) or a range START,STOP (STOP excluded)."""
    if angles_file is not None:
        try:
            ang = np.loadtxt(angles_file, dtype=float, ndmin=1).ravel()
        except (OSError, ValueError) as err:
            raise InputError(f"--angles-file '{angles_file}' cannot be read as numbers ({err}); give one angle "
                             "in deg per line") from None
        if ang.size != n:
            raise InputError(f"--angles-file '{angles_file}' has {ang.size} angles but {name} has {n} projections; "
                             "give one angle per projection")
        if not np.all(np.isfinite(ang)):
            raise InputError(f"--angles-file '{angles_file}' holds NaN or infinite angles; fix the file")
        return ang
    if angle_range_deg is not None:
        start, stop = (float(v) for v in angle_range_deg)
        return np.linspace(start, stop, n, endpoint=False)
    return None


def _check_array(arr: np.ndarray, path: Path, what: str) -> np.ndarray:
    if arr.ndim == 2:
        raise InputError(f"'{path}' is a single 2-D image; tomography needs a stack of projections or a 3-D volume "
                         "(give a multi-page TIFF, HDF5 or MRC file)")
    if arr.ndim != 3:
        raise InputError(f"'{path}' holds a {arr.ndim}-D array; give a 3-D {what}")
    if min(arr.shape) < 2:
        raise InputError(f"'{path}' {what} has shape {arr.shape}; it needs at least 2 entries along every axis")
    if np.issubdtype(arr.dtype, np.floating) and _count_nonfinite(arr):
        bad = _count_nonfinite(arr)
        raise InputError(f"'{path}' holds {bad} NaN or infinite values; replace them (e.g. interpolate dead pixels) "
                         "before running layerscope tomo")
    return arr


def _count_nonfinite(arr: np.ndarray, slices: int = 32) -> int:
    """NaN and infinite values, ``slices`` planes at a time (a memory-mapped volume stays on disk)."""
    return sum(int(np.count_nonzero(~np.isfinite(arr[i:i + slices]))) for i in range(0, arr.shape[0], slices))


def _hdf5_pixel_size_nm(f) -> float | None:
    """A pixel size from a DXchange file (``*pixel_size*`` datasets with a ``units`` attribute)."""
    found: list[float] = []

    def visit(name, obj):
        last = name.rsplit("/", 1)[-1].lower()
        if "pixel_size" in last and hasattr(obj, "shape") and obj.size == 1 and not found:
            unit = obj.attrs.get("units", b"")
            nm = length_to_nm(unit.decode() if isinstance(unit, bytes) else unit)
            if nm and float(np.ravel(obj[()])[0]) > 0:
                found.append(float(np.ravel(obj[()])[0]) * nm)

    f.visititems(visit)
    return found[0] if found else None


def _read_hdf5(path: Path, volume: bool, lazy: bool = False):
    """Data, extra DXchange entries and pixel size (nm or None); ``lazy``: DXchange projections stay on disk
    as the open ``h5py.Dataset`` (read a chunk of rows at a time by the reconstruction)."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise InputError(f"'{path}' is not a readable HDF5 file ({err})") from None
    keep_open = lazy and not volume and "exchange/data" in f
    try:
        return _hdf5_contents(f, path, keep_open)
    finally:
        if not keep_open:
            f.close()


def _hdf5_contents(f, path: Path, lazy: bool):
    size = _hdf5_pixel_size_nm(f)
    if "exchange/data" in f:
        data = f["exchange/data"] if lazy else np.asarray(f["exchange/data"][()])
        extra = {k: np.asarray(f[f"exchange/{k}"][()]) for k in ("data_white", "data_dark", "theta") if f"exchange/{k}" in f}
        if "theta" in extra:
            unit = f["exchange/theta"].attrs.get("units")
            unit = unit.decode() if isinstance(unit, bytes) else unit
            if unit is not None and str(unit).lower().startswith("rad"):
                extra["theta"] = np.rad2deg(extra["theta"])
            extra["theta_unit"] = unit
        return data, extra, size
    cands = []
    f.visititems(lambda n, o: cands.append(n) if hasattr(o, "ndim") and o.ndim == 3 else None)
    if not cands:
        raise InputError(f"'{path}' has no 3-D dataset (DXchange /exchange/data or a volume); give a projection "
                         "series or a reconstructed volume")
    return np.asarray(f[cands[0]][()]), {}, size


def _check_theta_unit(theta: np.ndarray, unit: object, path: Path) -> None:
    """Refuse /exchange/theta without a ``units`` attribute whose values span at most 2 pi: radians
    (a half or full turn) and degrees (a tilt of a few degrees) are both possible, and the angles
    are never guessed. With a unit, or a span no radian value reaches, the angles are used as read."""
    span = float(np.ptp(theta)) if np.size(theta) > 1 else 0.0
    if unit is None and 0.0 < span <= 2 * np.pi * 1.01:
        raise InputError(
            f"'{path}': /exchange/theta spans {float(np.min(theta)):.4g} to {float(np.max(theta)):.4g} and has no "
            f"'units' attribute: radians (a {np.rad2deg(span):.0f} deg scan) or degrees? give the angles in degrees "
            f"with --angle-range-deg START,STOP or --angles-file")


def _read_tiff(path: Path, mmap: bool = False):
    """Data and voxel size (nm, or None); ``mmap``: a read-only memory map where the file is uncompressed."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            data = _tiff_memmap(path) if mmap else None
            data = tf.asarray() if data is None else data
            size = _tiff_pixel_size_nm(tf)
    except (OSError, ValueError, tifffile.TiffFileError) as err:
        raise InputError(f"'{path}' is not a readable TIFF stack ({err})") from None
    return data, size


def _tiff_pixel_size_nm(tf) -> float | None:
    """Pixel size (nm) from an ImageJ TIFF's unit and XResolution tag; None where either is missing."""
    nm = length_to_nm((tf.imagej_metadata or {}).get("unit"))
    res = tf.pages[0].tags.get("XResolution")
    if nm and res is not None:
        num, den = res.value
        if num > 0:
            return den / num * nm
    return None


def _read_tiff_folder(folder: Path):
    """A folder of 2-D TIFF files, one slice or projection each (TomoPy's ``write_tiff_stack``, Avizo,
    Fiji), stacked in natural name order (``recon_2`` before ``recon_10``); the voxel size from the
    first file's tags. Read into memory (``--out-of-core`` keeps single stack files on disk only)."""
    import tifffile

    from layerscope.io.load import natural_key

    files = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _TIFF), key=natural_key)
    if not files:
        raise InputError(f"folder '{folder}' holds no TIFF files (.tif, .tiff); give a folder of TIFF slices or "
                         "projections, or one stack file")
    try:
        with tifffile.TiffFile(files[0]) as tf:
            first, size = tf.asarray(), _tiff_pixel_size_nm(tf)
        if first.ndim != 2:
            raise InputError(f"'{files[0]}' holds an array of shape {first.shape}, not one 2-D slice; give a folder of "
                             "2-D TIFF files, or the stack file itself")
        data = np.empty((len(files),) + first.shape, first.dtype)
        for i, p in enumerate(files):
            a = first if i == 0 else tifffile.imread(p)
            if a.shape != first.shape:
                raise InputError(f"folder '{folder}': '{files[0].name}' is {first.shape[0]} x {first.shape[1]} px but "
                                 f"'{p.name}' is {a.shape[0]} x {a.shape[1]} px; move the odd files out of the folder")
            data[i] = a
    except (OSError, ValueError, tifffile.TiffFileError) as err:
        raise InputError(f"folder '{folder}': a TIFF file cannot be read ({err}); are the files complete?") from None
    return data, size


def _tiff_memmap(path: Path):
    import tifffile

    try:
        return tifffile.memmap(path, mode="r")
    except (OSError, ValueError):  # compressed or scattered pages: read into memory
        return None


def _read_mrc(path: Path, mmap: bool = False):
    import mrcfile

    try:
        if mmap:  # the mapping stays open as long as the array is used
            m = mrcfile.mmap(path, mode="r", permissive=True)
            vx = float(m.voxel_size.x) if m.voxel_size is not None else 0.0
            return m.data, (vx * 0.1 if vx > 0 and vx != 1.0 else None)
        with mrcfile.open(path, permissive=True) as m:
            data = np.asarray(m.data)
            vx = float(m.voxel_size.x) if m.voxel_size is not None else 0.0
    except (OSError, ValueError) as err:
        raise InputError(f"'{path}' is not a readable MRC file ({err})") from None
    return data, (vx * 0.1 if vx > 0 and vx != 1.0 else None)  # Angstrom; 0 or 1 means "not set"


def read_tomo(path: str | Path, *, volume: bool = False, voxel_size_nm: float | None = None,
              angles_file: str | Path | None = None, angle_range_deg: Sequence[float] | None = None,
              flats: str | Path | None = None, darks: str | Path | None = None,
              transmission: bool = False, line_integrals: bool = False, mmap: bool = False) -> Projections | Volume:
    """Read a projection series or (``volume=True``) a reconstructed or segmented volume.

    Parameters
    ----------
    path : path
        DXchange/HDF5 (``.h5``), TIFF stack, MRC (``.mrc``, ``.st``, ``.ali``, ``.rec``), or a folder
        of 2-D TIFF files (one slice or projection each, natural name order).
    volume : bool
        The file is a volume ``(z, y, x)`` rather than projections.
    voxel_size_nm : float, optional
        Detector pixel / voxel size (nm); overrides the file, required where the file has none.
    angles_file, angle_range_deg : optional
        Projection angles (deg) where the file has none. An MRC tilt series's own angles are read from
        its FEI extended header or, beside it, from IMOD's ``.tlt``/``.rawtlt`` or SerialEM's ``.mdoc``.
    flats, darks : path, optional
        TIFF stacks of flat and dark fields for TIFF/MRC projections.
    transmission : bool
        The projections are already flat-field corrected (flat and dark fields are then not applied).
    line_integrals : bool
        The projections are line integrals already (a HAADF-STEM tilt series, or ``-log`` taken):
        reconstructed as they are, no flat/dark correction and no ``-log``.
    mmap : bool
        Keep the data on disk (for ``--out-of-core``): an uncompressed TIFF or MRC volume or projection
        series as a read-only memory map, DXchange projections as the open HDF5 dataset (the
        reconstruction reads a chunk of detector rows at a time); other files are read into memory.

    Raises
    ------
    InputError, CalibrationError
        One line naming the file, the problem and the command-line fix.
    """
    if transmission and line_integrals:  # refused before a (possibly large) file is read
        raise InputError("--transmission and --line-integrals exclude each other: give --transmission for "
                         "flat-field corrected intensities (I/I0), --line-integrals for HAADF-STEM or -log data")
    path = Path(path)
    if not path.exists():
        raise InputError(f"'{path}' does not exist; give a projection series or a volume (a file, or a folder of TIFFs)")
    suffix = path.suffix.lower()
    extra: dict = {}
    if path.is_dir():
        data, size = _read_tiff_folder(path)
    elif suffix in _HDF5:
        data, extra, size = _read_hdf5(path, volume, lazy=mmap)
    elif suffix in _TIFF:
        data, size = _read_tiff(path, mmap=mmap)
    elif suffix in _MRC:
        data, size = _read_mrc(path, mmap=mmap)
    else:
        raise InputError(f"'{path}': unknown tomography format '{suffix}'; give DXchange/HDF5 (.h5), a TIFF stack "
                         "(.tif) or MRC (.mrc, .st, .rec)")
    lazy = mmap and not isinstance(data, np.ndarray)  # an open h5py.Dataset
    data = _check_array(data if lazy or isinstance(data, np.memmap) else np.asarray(data), path,
                        "volume" if volume else "projection series")
    size = voxel_size_nm if voxel_size_nm is not None else size
    if size is None:
        raise CalibrationError(f"'{path}' states no voxel (pixel) size; give it with --voxel-size-nm "
                               "(layerscope never guesses a length scale)")
    if not (np.isfinite(size) and size > 0):
        raise CalibrationError(f"--voxel-size-nm {size}: give a positive number of nm")
    if volume:
        return Volume(np.asarray(data), float(size), labels=_is_label_volume(data), source=path)
    return _projections(path, data, extra, float(size), angles_file, angle_range_deg, flats, darks,
                        transmission, line_integrals)


def _angles(path: Path, n: int, extra: dict, angles_file, angle_range_deg) -> tuple[np.ndarray, str]:
    """The angles (deg) of ``n`` projections and where they came from (see :class:`Projections`)."""
    angles = parse_angles(n, angles_file=angles_file, angle_range_deg=angle_range_deg, name=f"'{path}'")
    if angles is not None:
        return angles, (str(angles_file) if angles_file is not None else "--angle-range-deg")
    if "theta" in extra:
        _check_theta_unit(extra["theta"], extra.get("theta_unit", "degrees"), path)
        angles = np.asarray(extra["theta"], float).ravel()
        if angles.size != n:
            raise InputError(f"'{path}' has {angles.size} angles in /exchange/theta for {n} projections; give the "
                             "right ones with --angles-file")
        return angles, "/exchange/theta"
    if path.suffix.lower() in _MRC:
        found = _mrc_angles(path, n)
        if found is not None:
            return found
    raise InputError(f"'{path}' has no projection angles; give --angles-file (one angle in deg per line) or "
                     "--angle-range-deg START,STOP, or --volume if it is a reconstructed volume")


def _mrc_angles(path: Path, n: int) -> tuple[np.ndarray, str] | None:
    """Tilt angles of an MRC tilt series: IMOD's ``.tlt``/``.rawtlt`` beside it (``.rawtlt`` first for a raw
    ``.st`` stack, ``.tlt`` first otherwise), SerialEM's ``.mdoc``, then the FEI extended header."""
    sidecars = [path.with_suffix(".tlt"), path.with_suffix(".rawtlt")]
    for p in (sidecars[::-1] if path.suffix.lower() == ".st" else sidecars):
        if p.is_file():
            return parse_angles(n, angles_file=p, name=f"'{path}'"), str(p)
    mdoc = path.with_name(path.name + ".mdoc")
    if mdoc.is_file():
        return _mdoc_angles(mdoc, n, path), str(mdoc)
    fei = _fei_tilt_angles(path, n)
    return None if fei is None else (fei, "FEI extended header")


def _mdoc_angles(mdoc: Path, n: int, path: Path) -> np.ndarray:
    """``TiltAngle`` of every ``[ZValue = k]`` section of a SerialEM ``.mdoc`` file, in k order (deg)."""
    import re

    text = mdoc.read_text(errors="replace")
    sections = re.split(r"^\s*\[ZValue\s*=\s*(\d+)\s*\]", text, flags=re.M)[1:]
    tilts = {}
    for z, body in zip(sections[::2], sections[1::2]):
        m = re.search(r"^\s*TiltAngle\s*=\s*([-+0-9.eE]+)", body, flags=re.M)
        if m:
            tilts[int(z)] = float(m.group(1))
    if sorted(tilts) != list(range(n)):
        raise InputError(f"'{mdoc}' gives TiltAngle for {len(tilts)} sections but '{path.name}' has {n} projections; "
                         "give the angles with --angles-file")
    return np.array([tilts[k] for k in range(n)])


def _fei_tilt_angles(path: Path, n: int) -> np.ndarray | None:
    """``Alpha tilt`` (deg) of each image in an FEI1/FEI2 extended header (Thermo Fisher Tomography), or None."""
    import warnings

    import mrcfile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # mrcfile warns on extended headers it cannot index: None then
            with mrcfile.open(path, header_only=True, permissive=True) as m:
                if bytes(m.header.exttyp) not in (b"FEI1", b"FEI2"):
                    return None
                ext = m.indexed_extended_header
    except (OSError, ValueError):
        return None
    if ext is None or len(ext) != n:
        return None
    angles = np.asarray(ext["Alpha tilt"], float)
    return angles if np.all(np.isfinite(angles)) and np.ptp(angles) > 0 else None


def _is_label_volume(data: np.ndarray) -> bool:
    """Integers with at most 16 values (sampled on every 8th of the z slices): a segmented volume."""
    return bool(np.issubdtype(data.dtype, np.integer) and np.unique(data[:: max(1, data.shape[0] // 8)]).size <= 16)


def as_volume(data, *, voxel_size_nm: float | None = None, name: str = "the volume") -> Volume:
    """A :class:`Volume` from a NumPy array ``(z, y, x)`` or a 3-D HyperSpy signal (its axes give the voxel size).

    ``voxel_size_nm`` (nm) is required for an array and overrides a signal's calibration; a signal's
    three axes must share one length scale (cubic voxels).

    Raises
    ------
    InputError, CalibrationError
        Not 3-D, NaN values, no or non-cubic voxel size.
    """
    if isinstance(data, Volume):
        return data
    size = voxel_size_nm
    if hasattr(data, "axes_manager"):  # a HyperSpy signal
        axes = data.axes_manager._axes
        scales = [(length_to_nm(a.units) or np.nan) * a.scale for a in axes]
        if size is None and len(axes) == 3 and np.all(np.isfinite(scales)):
            if max(scales) > 1.01 * min(scales):
                raise CalibrationError(f"{name}: the signal's voxels are {' x '.join(f'{v:.4g}' for v in scales)} nm, "
                                       "not cubic; resample it to cubic voxels or give voxel_size_nm")
            size = float(np.mean(scales))
        data = data.data
    arr = _check_array(np.asarray(data), Path(name), "volume")
    if size is None:
        raise CalibrationError(f"{name} states no voxel size; give voxel_size_nm (nm): layerscope never guesses a "
                               "length scale")
    if not (np.isfinite(size) and size > 0):
        raise CalibrationError(f"voxel_size_nm {size}: give a positive number of nm")
    return Volume(arr, float(size), labels=_is_label_volume(arr))


def _projections(path, data, extra, size, angles_file, angle_range_deg, flats, darks, transmission,
                 line_integrals=False) -> Projections:
    n = data.shape[0]
    angles, angles_source = _angles(path, n, extra, angles_file, angle_range_deg)
    fl = extra.get("data_white") if flats is None else _read_tiff(Path(flats))[0]
    dk = extra.get("data_dark") if darks is None else _read_tiff(Path(darks))[0]
    for name, arr, opt in (("flat", fl, "--flats"), ("dark", dk, "--darks")):
        if arr is None:
            continue
        arr = np.asarray(arr)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.shape[1:] != data.shape[1:]:
            raise InputError(f"'{path}': the {name} fields are {arr.shape[1]} x {arr.shape[2]} px but the projections "
                             f"{data.shape[1]} x {data.shape[2]} px; give matching {name} fields with {opt}")
        if not np.all(np.isfinite(arr)):
            raise InputError(f"'{path}': the {name} fields hold NaN values; give clean ones with {opt}")
    if fl is None and not (transmission or line_integrals):
        raise InputError(f"'{path}' has no flat (open-beam) fields; give --flats (and --darks), --transmission if the "
                         "projections are already flat-field corrected, or --line-integrals for a HAADF-STEM tilt "
                         "series (or -log data)")
    fl = None if fl is None else (fl if fl.ndim == 3 else fl[None])
    dk = None if dk is None else (dk if dk.ndim == 3 else dk[None])
    if transmission or line_integrals:  # the user says the projections are corrected: flats in the file are not applied
        fl = dk = None
    on_disk = not isinstance(data, np.ndarray) or isinstance(data, np.memmap)  # read chunk by chunk (--out-of-core)
    return Projections(data if on_disk else np.asarray(data, np.float32), angles, size, fl, dk,
                       transmission=fl is None and not line_integrals, source=path, line_integrals=line_integrals,
                       angles_source=angles_source)
