"""Calibrated containers: an image, an image series, a spectrum, a line scan, a spectrum image.

Each container holds a NumPy or Dask array, one :class:`Axis` per array dimension (scale, offset,
units), free-form metadata (beam energy, angles, dwell time ...) and the file it came from.
Containers validate themselves on construction: a wrong dimensionality, a zero or non-finite scale,
NaNs in eager data, or an axis that does not match the data is an :class:`~layerscope.errors.InputError`
that names the input and the fix.

Coordinate convention (used everywhere in layerscope)
-----------------------------------------------------
Arrays are indexed ``[row, col]``. Positions in physical units are ``x_nm`` (to the right, along
columns) and ``y_nm`` (down, along rows), measured from the top-left corner of pixel (0, 0); the
centre of pixel ``(row, col)`` sits at ``x_nm = (col + 0.5) * pixel_size_nm`` and
``y_nm = (row + 0.5) * pixel_size_nm``. Lengths are in nm, energies in eV, times in s.
The axis ``offset`` keeps HyperSpy's meaning (the coordinate of the first pixel's centre) so that a
file's calibration round-trips; image analysis positions are always relative to the image corner.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from layerscope.errors import CalibrationError, InputError

__all__ = [
    "length_to_nm",
    "Axis",
    "Signal",
    "Image",
    "ImageSeries",
    "Spectrum",
    "LineScan",
    "SpectrumImage",
    "from_hyperspy",
    "pixel_centers_nm",
]


@dataclass(frozen=True)
class Axis:
    """One calibrated array axis.

    Parameters
    ----------
    name : str
        ``"y"``, ``"x"``, ``"time"``, ``"position"`` or ``"energy"``.
    size : int
        Number of samples along the axis.
    scale : float
        Step between samples, in ``units`` (nm for lengths, eV for energy, s for time).
    offset : float
        Coordinate of the first sample, in ``units`` (HyperSpy convention).
    units : str
        Pint-compatible unit string: ``"nm"``, ``"eV"`` or ``"s"``.
    """

    name: str
    size: int
    scale: float
    offset: float = 0.0
    units: str = ""

    @property
    def coordinates(self) -> np.ndarray:
        """Coordinates of every sample, ``offset + i * scale``, in ``units``."""
        return self.offset + self.scale * np.arange(self.size, dtype=float)


def pixel_centers_nm(n: int, pixel_size_nm: float) -> np.ndarray:
    """Positions of pixel centres from the image corner, ``(i + 0.5) * pixel_size_nm``, in nm."""
    return (np.arange(n, dtype=float) + 0.5) * pixel_size_nm


def _is_lazy(data: Any) -> bool:
    return type(data).__module__.startswith("dask")


def _describe(source: Path | None, title: str | None) -> str:
    if source is not None:
        return f"'{source}'"
    if title:
        return f"'{title}'"
    return "the input array"


@dataclass
class Signal:
    """Base class: data, axes, metadata and source shared by every container.

    Subclasses fix the axis names (``AXES``) and the kind (``KIND``). Use the subclasses.
    """

    AXES: ClassVar[tuple[str, ...]] = ()
    KIND: ClassVar[str] = "signal"

    data: Any
    axes: tuple[Axis, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None

    def __post_init__(self) -> None:
        self.axes = tuple(self.axes)
        self.source = Path(self.source) if self.source is not None else None
        what = _describe(self.source, self.metadata.get("title"))
        if not hasattr(self.data, "ndim"):
            self.data = np.asarray(self.data)
        if self.data.ndim != len(self.AXES):
            raise InputError(
                f"{what} has {self.data.ndim} dimension(s) {tuple(self.data.shape)}, but a "
                f"{self.KIND.replace('_', ' ')} needs {len(self.AXES)} ({', '.join(self.AXES)}); "
                f"select the right frame/signal or load it as another kind"
            )
        if len(self.axes) != self.data.ndim:
            raise InputError(f"{what}: {len(self.axes)} axes given for {self.data.ndim}-D data")
        for axis, n, expected in zip(self.axes, self.data.shape, self.AXES):
            if axis.size != n:
                raise InputError(f"{what}: axis '{axis.name}' has size {axis.size} but data has {n}")
            if axis.name != expected:
                raise InputError(f"{what}: axis '{axis.name}' found where '{expected}' was expected")
            if not np.isfinite(axis.scale) or axis.scale == 0:
                raise CalibrationError(
                    f"{what}: axis '{axis.name}' has scale {axis.scale!r}; give a calibrated file or pass "
                    f"the calibration explicitly"
                )
        if np.issubdtype(self.data.dtype, np.complexfloating) or self.data.dtype.kind not in "biuf":
            raise InputError(f"{what}: data of type {self.data.dtype} is not real numbers")
        if not _is_lazy(self.data) and self.data.dtype.kind == "f":
            n_bad = int(np.count_nonzero(~np.isfinite(self.data)))
            if n_bad:
                raise InputError(
                    f"{what} contains {n_bad} NaN/infinite value(s) of {self.data.size}; mask or "
                    f"interpolate them (e.g. numpy.nan_to_num with a physically sensible value) before analysis"
                )

    # -- shared helpers ---------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """The container kind: ``image``, ``image_series``, ``spectrum``, ``line_scan``, ``spectrum_image``."""
        return self.KIND

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def is_lazy(self) -> bool:
        """True when the data is a Dask array (computed chunk by chunk)."""
        return _is_lazy(self.data)

    @property
    def title(self) -> str:
        return str(self.metadata.get("title") or (self.source.name if self.source else self.KIND))

    def axis(self, name: str) -> Axis:
        """The axis called ``name``."""
        for ax in self.axes:
            if ax.name == name:
                return ax
        raise KeyError(name)

    def compute(self) -> "Signal":
        """Return an eager copy (NumPy data); a no-op for eager containers."""
        if not self.is_lazy:
            return self
        return dataclasses.replace(self, data=np.asarray(self.data.compute()))

    def with_data(self, data: Any, **metadata: Any) -> "Signal":
        """A container of the same kind and calibration holding ``data`` (same shape)."""
        return dataclasses.replace(self, data=data, metadata={**self.metadata, **metadata})

    def describe(self) -> dict[str, Any]:
        """A summary: kind, shape, dtype, calibration per axis and key metadata (for ``layerscope info``)."""
        return {
            "source": str(self.source) if self.source else None,
            "kind": self.KIND,
            "shape": list(self.shape),
            "dtype": str(self.data.dtype),
            "lazy": self.is_lazy,
            "axes": [dataclasses.asdict(a) for a in self.axes],
            "metadata": {k: v for k, v in self.metadata.items() if _is_plain(v)},
        }

    def to_hyperspy(self):
        """This container as a HyperSpy signal with the same calibration and metadata."""
        import hyperspy.api as hs

        n_sig = 1 if self.AXES[-1] == "energy" else 2
        axes = []
        for i, ax in enumerate(self.axes):
            axes.append(
                {
                    "name": ax.name,
                    "size": ax.size,
                    "scale": ax.scale,
                    "offset": ax.offset,
                    "units": ax.units,
                    "navigate": i < len(self.axes) - n_sig,
                }
            )
        data = self.data
        if n_sig == 1:
            cls = hs.signals.Signal1D
            if self.metadata.get("signal_type") == "EELS":
                try:
                    import exspy

                    cls = exspy.signals.EELSSpectrum
                except ImportError:  # pragma: no cover - exspy is a dependency
                    pass
        else:
            cls = hs.signals.Signal2D
        sig = cls(data, axes=axes)
        if self.is_lazy:
            sig = sig.as_lazy()
        sig.metadata.General.title = self.title
        md = self.metadata
        if md.get("beam_energy_keV") is not None:
            sig.metadata.set_item("Acquisition_instrument.TEM.beam_energy", float(md["beam_energy_keV"]))
        if md.get("convergence_angle_mrad") is not None:
            sig.metadata.set_item(
                "Acquisition_instrument.TEM.convergence_angle", float(md["convergence_angle_mrad"])
            )
        if md.get("collection_angle_mrad") is not None:
            sig.metadata.set_item(
                "Acquisition_instrument.TEM.Detector.EELS.collection_angle", float(md["collection_angle_mrad"])
            )
        return sig


def _is_plain(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool, type(None), list, tuple))


def _length_axis(name: str, size: int, pixel_size_nm: float) -> Axis:
    return Axis(name, size, float(pixel_size_nm), 0.5 * float(pixel_size_nm), "nm")


def _check_pixel_size(pixel_size_nm: float | None, what: str = "the array") -> float:
    if pixel_size_nm is None:
        raise CalibrationError(
            f"{what} has no spatial calibration; pass pixel_size_nm= (nm per pixel, e.g. 0.01 for 10 pm "
            f"pixels; on the command line --pixel-size-nm)"
        )
    p = float(pixel_size_nm)
    if not np.isfinite(p) or p <= 0:
        raise CalibrationError(f"pixel_size_nm={pixel_size_nm!r} for {what} must be a positive number of nm")
    return p


class _SpatialMixin:
    """Square pixels on the last two axes (y, x)."""

    axes: tuple[Axis, ...]
    source: Path | None
    metadata: dict

    def _check_square(self) -> None:
        ay, ax = self.axis("y"), self.axis("x")  # type: ignore[attr-defined]
        for a in (ay, ax):
            if a.units != "nm":
                raise CalibrationError(
                    f"{_describe(self.source, self.metadata.get('title'))}: axis '{a.name}' is in "
                    f"'{a.units or 'no unit'}', not nm; pass pixel_size_nm= to calibrate it"
                )
        if not np.isclose(abs(ay.scale), abs(ax.scale), rtol=1e-3):
            raise CalibrationError(
                f"{_describe(self.source, self.metadata.get('title'))}: pixels are not square "
                f"(x {ax.scale:g} nm, y {ay.scale:g} nm); resample the image or correct the calibration"
            )

    @property
    def pixel_size_nm(self) -> float:
        """Pixel size in nm (pixels are square)."""
        return float(abs(self.axis("x").scale))  # type: ignore[attr-defined]


@dataclass
class Image(_SpatialMixin, Signal):
    """A calibrated 2-D image, axes ``(y, x)`` in nm."""

    AXES: ClassVar[tuple[str, ...]] = ("y", "x")
    KIND: ClassVar[str] = "image"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_square()

    @classmethod
    def from_array(
        cls, data: Any, *, pixel_size_nm: float | None, metadata: dict | None = None, source: Path | None = None
    ) -> "Image":
        """Wrap a 2-D array with square pixels of ``pixel_size_nm`` (nm)."""
        data = data if _is_lazy(data) else np.asarray(data)
        p = _check_pixel_size(pixel_size_nm, str(source) if source else "the array")
        if data.ndim != 2:
            raise InputError(
                f"{_describe(source, None)} has shape {tuple(data.shape)}; an image must be 2-D (rows, cols). "
                f"For a colour image convert to grey; for a stack pick a frame or load it as a series"
            )
        axes = (_length_axis("y", data.shape[0], p), _length_axis("x", data.shape[1], p))
        return cls(data, axes, dict(metadata or {}), source)

    @property
    def extent_nm(self) -> tuple[float, float]:
        """Field of view ``(width, height)`` in nm."""
        return self.shape[1] * self.pixel_size_nm, self.shape[0] * self.pixel_size_nm


@dataclass
class ImageSeries(_SpatialMixin, Signal):
    """A calibrated series of frames, axes ``(time, y, x)``: time in s, lengths in nm."""

    AXES: ClassVar[tuple[str, ...]] = ("time", "y", "x")
    KIND: ClassVar[str] = "image_series"

    times_s: np.ndarray | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_square()
        if self.times_s is None:
            t = self.axis("time")
            if t.units == "s":
                self.times_s = t.coordinates
        if self.times_s is not None:
            self.times_s = np.asarray(self.times_s, dtype=float)
            if self.times_s.shape != (self.shape[0],):
                raise CalibrationError(
                    f"{_describe(self.source, self.metadata.get('title'))}: {self.times_s.size} time stamps "
                    f"for {self.shape[0]} frames; give one time stamp per frame or a frame rate (--fps)"
                )
            if np.any(np.diff(self.times_s) <= 0) or not np.all(np.isfinite(self.times_s)):
                raise CalibrationError(
                    f"{_describe(self.source, self.metadata.get('title'))}: time stamps must increase "
                    f"strictly; check the file's metadata or give --fps"
                )

    @classmethod
    def from_array(
        cls,
        data: Any,
        *,
        pixel_size_nm: float | None,
        times_s: Any = None,
        fps: float | None = None,
        metadata: dict | None = None,
        source: Path | None = None,
    ) -> "ImageSeries":
        """Wrap a ``(time, y, x)`` array; give ``times_s`` (one per frame, s) or ``fps`` (frames per s)."""
        data = data if _is_lazy(data) else np.asarray(data)
        p = _check_pixel_size(pixel_size_nm, str(source) if source else "the array")
        if data.ndim != 3:
            raise InputError(
                f"{_describe(source, None)} has shape {tuple(data.shape)}; a series must be 3-D (frames, rows, cols)"
            )
        n = data.shape[0]
        if times_s is None and fps is not None:
            if not fps > 0:
                raise CalibrationError(f"fps={fps!r} must be positive (frames per second)")
            times_s = np.arange(n) / float(fps)
        if times_s is not None:
            times_s = np.asarray(times_s, dtype=float)
            step = float(np.median(np.diff(times_s))) if n > 1 else 1.0
            t_axis = Axis("time", n, step if step != 0 else 1.0, float(times_s[0]) if n else 0.0, "s")
        else:
            t_axis = Axis("time", n, 1.0, 0.0, "")
        axes = (t_axis, _length_axis("y", data.shape[1], p), _length_axis("x", data.shape[2], p))
        return cls(data, axes, dict(metadata or {}), source, times_s)

    def require_times(self) -> np.ndarray:
        """Frame time stamps in s; a :class:`CalibrationError` naming the fix when there are none."""
        if self.times_s is None:
            raise CalibrationError(
                f"{_describe(self.source, self.metadata.get('title'))} has no frame time stamps; "
                f"give the frame rate with --fps (fps= in the API)"
            )
        return self.times_s

    def frame(self, i: int) -> Image:
        """Frame ``i`` as an :class:`Image`."""
        return Image(self.data[i], self.axes[1:], dict(self.metadata), self.source)


def _energy_axis(n: int, offset_eV: float, scale_eV: float) -> Axis:
    if not np.isfinite(scale_eV) or scale_eV <= 0:
        raise CalibrationError(f"energy dispersion scale_eV={scale_eV!r} must be a positive number of eV per channel")
    return Axis("energy", n, float(scale_eV), float(offset_eV), "eV")


class _EnergyMixin:
    """The last axis is energy loss in eV."""

    axes: tuple[Axis, ...]
    source: Path | None
    metadata: dict

    def _check_energy(self) -> None:
        e = self.axis("energy")  # type: ignore[attr-defined]
        if e.units != "eV":
            raise CalibrationError(
                f"{_describe(self.source, self.metadata.get('title'))}: the energy axis is in "
                f"'{e.units or 'no unit'}', not eV; pass offset_eV= and scale_eV= to calibrate it"
            )
        if e.scale <= 0:
            raise CalibrationError(
                f"{_describe(self.source, self.metadata.get('title'))}: the energy axis decreases "
                f"(scale {e.scale} eV); reverse the channels so that energy increases"
            )

    @property
    def energy_eV(self) -> np.ndarray:
        """Energy of every channel in eV."""
        return self.axis("energy").coordinates  # type: ignore[attr-defined]

    @property
    def dispersion_eV(self) -> float:
        """Energy step per channel in eV."""
        return float(self.axis("energy").scale)  # type: ignore[attr-defined]


@dataclass
class Spectrum(_EnergyMixin, Signal):
    """A single spectrum, axis ``(energy,)`` in eV."""

    AXES: ClassVar[tuple[str, ...]] = ("energy",)
    KIND: ClassVar[str] = "spectrum"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_energy()

    @classmethod
    def from_array(
        cls,
        counts: Any,
        *,
        offset_eV: float,
        scale_eV: float,
        metadata: dict | None = None,
        source: Path | None = None,
    ) -> "Spectrum":
        """Wrap 1-D counts; channel ``i`` is at ``offset_eV + i * scale_eV`` (eV)."""
        counts = counts if _is_lazy(counts) else np.asarray(counts)
        if counts.ndim != 1:
            raise InputError(f"{_describe(source, None)} has shape {tuple(counts.shape)}; a spectrum must be 1-D")
        return cls(counts, (_energy_axis(counts.shape[0], offset_eV, scale_eV),), dict(metadata or {}), source)


@dataclass
class LineScan(_EnergyMixin, Signal):
    """Spectra along a line, axes ``(position, energy)``: position in nm, energy in eV."""

    AXES: ClassVar[tuple[str, ...]] = ("position", "energy")
    KIND: ClassVar[str] = "line_scan"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_energy()
        if self.axis("position").units != "nm":
            raise CalibrationError(
                f"{_describe(self.source, self.metadata.get('title'))}: the scan position axis is in "
                f"'{self.axis('position').units or 'no unit'}', not nm; pass step_nm= to calibrate it"
            )

    @classmethod
    def from_array(
        cls,
        counts: Any,
        *,
        step_nm: float | None,
        offset_eV: float,
        scale_eV: float,
        metadata: dict | None = None,
        source: Path | None = None,
    ) -> "LineScan":
        """Wrap ``(position, energy)`` counts with a scan step of ``step_nm`` (nm)."""
        counts = counts if _is_lazy(counts) else np.asarray(counts)
        p = _check_pixel_size(step_nm, str(source) if source else "the line scan")
        if counts.ndim != 2:
            raise InputError(f"{_describe(source, None)} has shape {tuple(counts.shape)}; a line scan must be 2-D")
        axes = (
            Axis("position", counts.shape[0], p, 0.5 * p, "nm"),
            _energy_axis(counts.shape[1], offset_eV, scale_eV),
        )
        return cls(counts, axes, dict(metadata or {}), source)

    @property
    def positions_nm(self) -> np.ndarray:
        """Scan positions (pixel centres) in nm from the start of the line."""
        return self.axis("position").coordinates


@dataclass
class SpectrumImage(_SpatialMixin, _EnergyMixin, Signal):
    """A spectrum image, axes ``(y, x, energy)``: lengths in nm, energy in eV."""

    AXES: ClassVar[tuple[str, ...]] = ("y", "x", "energy")
    KIND: ClassVar[str] = "spectrum_image"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._check_square()
        self._check_energy()

    @classmethod
    def from_array(
        cls,
        counts: Any,
        *,
        pixel_size_nm: float | None,
        offset_eV: float,
        scale_eV: float,
        metadata: dict | None = None,
        source: Path | None = None,
    ) -> "SpectrumImage":
        """Wrap ``(y, x, energy)`` counts."""
        counts = counts if _is_lazy(counts) else np.asarray(counts)
        p = _check_pixel_size(pixel_size_nm, str(source) if source else "the spectrum image")
        if counts.ndim != 3:
            raise InputError(
                f"{_describe(source, None)} has shape {tuple(counts.shape)}; a spectrum image must be 3-D (y, x, energy)"
            )
        axes = (
            _length_axis("y", counts.shape[0], p),
            _length_axis("x", counts.shape[1], p),
            _energy_axis(counts.shape[2], offset_eV, scale_eV),
        )
        return cls(counts, axes, dict(metadata or {}), source)


# -- HyperSpy interoperability ----------------------------------------------------------------------

#: Length units (lower case) in the spellings of HyperSpy, ImageJ/Fiji (``micron``, escaped ``\\u00b5m``,
#: ``\\u00c5``) and DXchange, in nm.
_LENGTH_TO_NM = {"nm": 1.0, "nanometer": 1.0, "nanometers": 1.0, "µm": 1e3, "um": 1e3, "micron": 1e3,
                 "microns": 1e3, "micrometer": 1e3, "micrometers": 1e3, "å": 0.1, "a": 0.1, "angstrom": 0.1,
                 "pm": 1e-3, "m": 1e9, "meter": 1e9, "mm": 1e6, "millimeter": 1e6}
_ENERGY_TO_EV = {"eV": 1.0, "keV": 1e3, "meV": 1e-3}
_TIME_TO_S = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6, "min": 60.0}


def length_to_nm(units: Any) -> float | None:
    """nm per unit of a length unit in any common spelling (``nm``, ``Å``, ``micron``, ``\\u00b5m`` ...),
    None for anything else (``pixel``, no unit)."""
    u = str(units or "").strip().lower().replace("\\u00b5", "µ").replace("\\u00c5", "å").replace("μ", "µ")
    return _LENGTH_TO_NM.get(u)


def _convert(units: str) -> tuple[str, float] | None:
    u = (units or "").strip()
    if (nm := length_to_nm(u)) is not None:
        return "nm", nm
    if u in _ENERGY_TO_EV:
        return "eV", _ENERGY_TO_EV[u]
    if u in _TIME_TO_S:
        return "s", _TIME_TO_S[u]
    return None


def normalise_axis(name: str, size: int, scale: float, offset: float, units: str) -> Axis:
    """An :class:`Axis` in layerscope units (nm, eV, s); unknown units are kept as they are."""
    conv = _convert(units)
    if conv is None:
        return Axis(name, int(size), float(scale), float(offset), "" if units in (None, "<undefined>") else str(units))
    unit, factor = conv
    return Axis(name, int(size), float(scale) * factor, float(offset) * factor, unit)


def _kind_for(n_nav: int, n_sig: int) -> type[Signal]:
    if n_sig == 1 and n_nav == 0:
        return Spectrum
    if n_sig == 1 and n_nav == 1:
        return LineScan
    if n_sig == 1 and n_nav == 2:
        return SpectrumImage
    if n_sig == 2 and n_nav == 0:
        return Image
    if n_sig == 2 and n_nav == 1:
        return ImageSeries
    raise InputError(
        f"a signal with {n_nav} navigation and {n_sig} signal dimension(s) is not supported; "
        f"layerscope reads images, image series, spectra, line scans and spectrum images"
    )


def _frames_as_navigation(axes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A 3-D stack whose axes are all signal axes (as NCEM/Berkeley EMD files come out of
    RosettaSciIO) is a series when its first axis is time (a time unit, or named time/frame) and the
    other two are lengths: mark the first as navigation. Anything else is left as it is."""
    if len(axes) != 3 or any(a.get("navigate", False) for a in axes):
        return axes
    def unit_of(a: dict[str, Any]) -> str:
        conv = _convert(a.get("units") or "")
        return conv[0] if conv else ""

    first = axes[0]
    timelike = unit_of(first) == "s" or str(first.get("name", "")).lower() in ("time", "frame", "t")
    spatial = all(unit_of(a) == "nm" for a in axes[1:])
    if timelike and spatial:
        return [dict(first, navigate=True), *axes[1:]]
    return axes


def build_container(
    data: Any,
    axes: list[dict[str, Any]],
    *,
    metadata: dict[str, Any],
    source: Path | None,
    pixel_size_nm: float | None = None,
    fps: float | None = None,
) -> Signal:
    """Make the right container from ``data`` and RosettaSciIO/HyperSpy-style axis dictionaries.

    Axis dictionaries have ``size, scale, offset, units, navigate`` (and optionally ``name``), in array
    order. ``pixel_size_nm`` overrides (or supplies) the spatial calibration; ``fps`` supplies frame
    times of a series. Missing spatial calibration raises :class:`CalibrationError`.
    """
    axes = _frames_as_navigation(axes)
    nav = [a for a in axes if a.get("navigate", False)]
    sig = [a for a in axes if not a.get("navigate", False)]
    cls = _kind_for(len(nav), len(sig))
    what = f"'{source}'" if source else "the input"
    names = cls.AXES
    out_axes = []
    for name, a in zip(names, axes):
        ax = normalise_axis(name, a["size"], a.get("scale", 1.0), a.get("offset", 0.0), a.get("units", ""))
        if name in ("x", "y", "position"):
            if pixel_size_nm is not None:
                p = _check_pixel_size(pixel_size_nm, what)
                ax = Axis(name, ax.size, p, 0.5 * p, "nm")
            elif ax.units != "nm":
                raise CalibrationError(
                    f"{what} has no spatial calibration (axis '{name}': scale {a.get('scale', 1.0)!r}, "
                    f"units '{a.get('units') or 'none'}'); pass pixel_size_nm= "
                    f"(--pixel-size-nm on the command line) with the pixel size in nm"
                )
            elif ax.scale <= 0:
                raise CalibrationError(f"{what}: axis '{name}' has a non-positive pixel size {ax.scale} nm")
        if name == "energy" and ax.units != "eV":
            raise CalibrationError(
                f"{what}: the spectral axis is in '{a.get('units') or 'no unit'}', not an energy; "
                f"calibrate it in eV (offset_eV=, scale_eV=)"
            )
        out_axes.append(ax)
    if cls is ImageSeries:
        t = out_axes[0]
        times = None
        if fps is not None:
            times = np.arange(t.size) / float(fps)
        elif t.units == "s" and t.scale > 0:
            times = t.coordinates
        return ImageSeries(data, tuple(out_axes), metadata, source, times)
    return cls(data, tuple(out_axes), metadata, source)


def metadata_from_hyperspy(md: Any) -> dict[str, Any]:
    """The microscope parameters layerscope uses, read from a HyperSpy metadata tree (or dict)."""
    get = (lambda k: md.get_item(k)) if hasattr(md, "get_item") else (lambda k: _dict_get(md, k))
    out: dict[str, Any] = {}
    pairs = {
        "title": "General.title",
        "signal_type": "Signal.signal_type",
        "beam_energy_keV": "Acquisition_instrument.TEM.beam_energy",
        "convergence_angle_mrad": "Acquisition_instrument.TEM.convergence_angle",
        "collection_angle_mrad": "Acquisition_instrument.TEM.Detector.EELS.collection_angle",
        "dwell_time_s": "Acquisition_instrument.TEM.dwell_time",
        "exposure_s": "Acquisition_instrument.TEM.Detector.EELS.exposure",
        "magnification": "Acquisition_instrument.TEM.magnification",
        "detector": "Acquisition_instrument.TEM.Detector.name",
        "date": "General.date",
        "time": "General.time",
    }
    for key, path in pairs.items():
        value = get(path)
        if value not in (None, ""):
            out[key] = value
    return out


def _dict_get(d: Any, dotted: str) -> Any:
    cur = d
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def from_hyperspy(signal: Any, *, pixel_size_nm: float | None = None, fps: float | None = None) -> Signal:
    """The layerscope container for a HyperSpy signal (lazy signals stay lazy)."""
    axes = _axes_in_array_order(signal)
    data = signal.data
    md = metadata_from_hyperspy(signal.metadata)
    return build_container(data, axes, metadata=md, source=None, pixel_size_nm=pixel_size_nm, fps=fps)


def _axes_in_array_order(signal: Any) -> list[dict[str, Any]]:
    am = signal.axes_manager
    ordered = sorted(am._axes, key=lambda a: a.index_in_array)
    out = []
    for ax in ordered:
        units = ax.units if isinstance(ax.units, str) else ""
        out.append(
            {
                "size": ax.size,
                "scale": getattr(ax, "scale", 1.0),
                "offset": getattr(ax, "offset", 0.0),
                "units": "" if units == "<undefined>" else units,
                "navigate": ax.navigate,
            }
        )
    return out
