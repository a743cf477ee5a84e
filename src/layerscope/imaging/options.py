"""Options and input of the two imaging analyses: ``layerscope columns`` and ``layerscope phases``.

Options are frozen dataclasses, checked when made: a value the analysis cannot use raises
:class:`~layerscope.errors.InputError` in one line that names the command-line option to change.
:func:`layerscope.imaging.generic.analyse` takes :class:`ColumnsOptions`,
:func:`layerscope.imaging.pipeline.analyse` takes :class:`PhasesOptions`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from layerscope.errors import InputError

__all__ = ["ColumnsOptions", "PhasesOptions", "ImageInput", "image_input", "ZONES", "NOISE_MODELS"]

#: Zone axes of the hexagonal cell that the stacking conventions cover.
ZONES = ("100", "110")
#: Noise models of the Gaussian refinement.
NOISE_MODELS = ("poisson", "gaussian")


def _check_zone(zone: str) -> None:
    if zone not in ZONES:
        raise InputError(f"--zone {zone!r} is not supported: give --zone 100 or --zone 110 (zone axis of the "
                         f"hexagonal cell)")


def _check_noise_model(noise_model: str) -> None:
    if noise_model not in NOISE_MODELS:
        raise InputError(f"--noise-model {noise_model!r} is not known: give --noise-model poisson (counts) or "
                         f"--noise-model gaussian (images that are not counts, e.g. PNG)")


def _check_composition(composition: str, zone: str) -> None:
    from layerscope.imaging.materials import material_spacings

    try:
        material_spacings(composition, zone)
    except InputError as err:
        raise InputError(f"--composition {composition!r} is not a known cathode; "
                         f"{str(err).split(';', 1)[-1].strip()}") from None


def _check_positive(value: float | None, option: str, what: str) -> None:
    if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise InputError(f"{option} {value!r}: give {what} as a positive number")


@dataclass(frozen=True)
class ColumnsOptions:
    """Options of :func:`layerscope.imaging.generic.analyse` (``layerscope columns``).

    Attributes
    ----------
    composition : str or None
        A material whose lattice the calibration is checked against (a cathode of
        :mod:`layerscope.crystal`); None: no check, no material model at all.
    zone : str
        Zone axis of the material's hexagonal cell (``"100"`` or ``"110"``), with ``composition``.
    relative_threshold : float
        A maximum is a column when its contrast is at least this fraction of the brightest columns
        nearby (:func:`layerscope.imaging.columns.detect_columns`); in (0, 1]. A dimmer one (down to
        2/3 of it) counts too when it lies one nearest-neighbour distance from a column and stands 1.5
        times the noise margin out of the noise (the detector's lattice-neighbour test), unless the
        threshold is raised above the default 0.3 (a selection by brightness).
    noise_sigmas : float
        ... and this many standard deviations of the filtered noise (> 0).
    noise_model : {"poisson", "gaussian"} or None
        Noise model of the refinement (``"gaussian"`` for images that are not counts, e.g. PNG);
        None: ``"poisson"`` for bright columns, ``"gaussian"`` for dark ones (an inverted image is
        not counts).
    enhance : bool
        Detect on the neural enhancer's denoised image (fitted on the raw data).
    contrast : {"bright", "dark"}
        The columns are brighter than their background (HAADF/ADF) or darker (ABF/BF: the image is
        inverted before detection and fitting, ``intensity`` is then the depth of the column's dip).
        An image whose columns look the other way round is refused
        (:func:`layerscope.imaging.polarity.check_polarity`).
    nn_distance_nm : float or None
        Override of the nearest-neighbour distance measured by
        :func:`layerscope.imaging.generic.image_lattice` (nm): the detection scale (maxima closer
        than about 0.4 of it merge, windows scale with it).

    Raises
    ------
    InputError
        A value out of range, an unknown zone, noise model or composition (naming the CLI option).
    """

    composition: str | None = None
    zone: str = "100"
    relative_threshold: float = 0.3
    noise_sigmas: float = 5.0
    noise_model: str | None = None
    enhance: bool = False
    nn_distance_nm: float | None = None
    contrast: str = "bright"

    def __post_init__(self) -> None:
        _check_zone(self.zone)
        if self.contrast not in ("bright", "dark"):
            raise InputError(f"--contrast {self.contrast!r} is not known: give --contrast bright (HAADF/ADF: bright "
                             f"columns) or --contrast dark (ABF/BF: dark columns)")
        if self.noise_model is None:
            object.__setattr__(self, "noise_model", "gaussian" if self.contrast == "dark" else "poisson")
        _check_noise_model(self.noise_model)
        if self.contrast == "dark" and self.noise_model == "poisson":
            raise InputError("--contrast dark with --noise-model poisson: an inverted image is not counts; give "
                             "--noise-model gaussian (the default with --contrast dark)")
        if self.composition is not None:
            _check_composition(self.composition, self.zone)
        if not (isinstance(self.relative_threshold, (int, float)) and 0 < self.relative_threshold <= 1):
            raise InputError(f"--relative-threshold {self.relative_threshold!r}: give a fraction of the brightest "
                             f"columns nearby in (0, 1], e.g. --relative-threshold 0.3")
        _check_positive(self.noise_sigmas, "--noise-sigmas", "the detection threshold in noise standard deviations")
        _check_positive(self.nn_distance_nm, "--nn-distance-nm", "the nearest column distance in nm")

    def parameters(self) -> dict[str, Any]:
        """The options as recorded in provenance.json (``parameters``)."""
        return {"composition": self.composition, "zone": self.zone, "relative_threshold": self.relative_threshold,
                "noise_sigmas": self.noise_sigmas, "noise_model": self.noise_model, "enhance": self.enhance,
                "nn_distance_nm": self.nn_distance_nm, "contrast": self.contrast}


@dataclass(frozen=True)
class PhasesOptions:
    """Options of :func:`layerscope.imaging.pipeline.analyse` (``layerscope phases``).

    Attributes
    ----------
    zone : {"100", "110"}
        Zone axis of the hexagonal cell (sets the sign of the O3 stacking,
        :func:`layerscope.imaging.phases.o3_step_for_zone`).
    composition : str
        The cathode (``"LiCoO2"``, ``"NMC811"``, ``"NMC622"``, ``"Li1.2Ni0.2Mn0.6O2"`` ...): its
        lattice parameters set the detection scale and the calibration check (20 %).
    enhance : bool
        Detect the columns (and the lattice) on the neural enhancer's denoised image; positions,
        widths and intensities are still fitted to the raw counts.
    noise_model : {"poisson", "gaussian"}
        Noise model of the refinement (counts: Poisson).

    Raises
    ------
    InputError
        An unknown zone, composition or noise model (naming the CLI option).
    """

    zone: str = "100"
    composition: str = "LiCoO2"
    enhance: bool = False
    noise_model: str = "poisson"

    def __post_init__(self) -> None:
        _check_zone(self.zone)
        _check_noise_model(self.noise_model)
        _check_composition(self.composition, self.zone)

    def parameters(self) -> dict[str, Any]:
        """The options as recorded in provenance.json (``parameters``)."""
        return {"zone": self.zone, "composition": self.composition, "enhance": self.enhance,
                "noise_model": self.noise_model}


@dataclass(frozen=True)
class ImageInput:
    """One image as the analyses take it (:func:`image_input`).

    Attributes
    ----------
    data : numpy.ndarray
        The 2-D data, float64.
    pixel_size_nm : float
        Pixel size, nm.
    handle : Any
        What the provenance records: the file (hashed with SHA-256) or the in-memory data.
    name : str
        The input in messages: ``'file.tif'`` or ``the image``.
    """

    data: np.ndarray
    pixel_size_nm: float
    handle: Any
    name: str


def image_input(image: Any, *, pixel_size_nm: float | None = None) -> ImageInput:
    """Read ``image`` once: a path, a :class:`~layerscope.containers.Image`, a HyperSpy Signal2D or an array.

    ``pixel_size_nm`` (nm) is required for an array and overrides the calibration of a file, a
    container or a signal's axes.

    Raises
    ------
    InputError
        A colour image, a stack or spectrum instead of an image; an image smaller than
        :data:`MIN_IMAGE_PX` on a side, or a constant one.
    CalibrationError
        No pixel size.
    """
    from layerscope.containers import Image
    from layerscope.io import as_container
    from layerscope.io.load import require_image

    data0 = image if not hasattr(image, "ndim") else np.asarray(image)
    if isinstance(data0, np.ndarray) and data0.ndim == 3 and data0.shape[-1] in (3, 4):
        raise InputError(
            f"the input is a colour (RGB/RGBA) image of shape {data0.shape}; HAADF analysis needs the raw "
            f"single-channel detector signal: export the original greyscale data (TIFF/dm4/emd/ser)"
        )
    container = require_image(as_container(image, pixel_size_nm=pixel_size_nm))
    if isinstance(image, Image) and pixel_size_nm is not None and pixel_size_nm != container.pixel_size_nm:
        container = Image.from_array(container.data, pixel_size_nm=pixel_size_nm, metadata=container.metadata,
                                     source=container.source)
    data = np.asarray(container.compute().data, dtype=float)
    handle = container.source if container.source is not None else data
    if isinstance(image, (str, Path)):
        name = f"'{Path(image).name}'"
    else:
        name = f"'{Path(container.source).name}'" if container.source is not None else "the image"
    _require_an_image(data, name)
    return ImageInput(data, float(container.pixel_size_nm), handle, name)


#: Fewest pixels on each side of an image the column finders take: a few columns of a few pixels each.
MIN_IMAGE_PX = 16


def _require_an_image(data: np.ndarray, name: str) -> None:
    """Refuse a line profile, a thumbnail-sized crop or a blank (constant) frame in one line."""
    if data.ndim == 2 and min(data.shape) < MIN_IMAGE_PX:
        raise InputError(f"{name} is {data.shape[1]} x {data.shape[0]} pixels: too small for atom columns (at least "
                         f"{MIN_IMAGE_PX} pixels on each side, a few unit cells); give the whole image, not a line "
                         f"profile or a crop")
    if data.size and np.isfinite(data.flat[0]) and np.all(data == data.flat[0]):
        raise InputError(f"{name} is constant (every pixel {data.flat[0]:g}): a blank frame or a failed export; "
                         f"check the file (the detector signal, or the export's channel)")
