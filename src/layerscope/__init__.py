"""layerscope: quantified, reproducible degradation measurements for layered oxide cathodes.

Lengths are in nm (precisions in pm), energies in eV, times in s. Images are indexed ``[row, col]``;
``x_nm`` runs to the right (columns), ``y_nm`` down (rows), from the top-left corner of pixel (0, 0).
See ``docs/conventions.md``.
"""

from layerscope._version import __version__

_CONTAINERS = ("Image", "ImageSeries", "LineScan", "Spectrum", "SpectrumImage")


def __getattr__(name):
    """The containers are imported on first use, so that ``layerscope --help`` starts fast."""
    if name in _CONTAINERS:
        from layerscope import containers

        return getattr(containers, name)
    raise AttributeError(f"module 'layerscope' has no attribute {name!r}")


from layerscope.errors import CalibrationError, ConvergenceError, InputError, LayerscopeError  # noqa: E402

__all__ = [
    "__version__",
    "load",
    "Image",
    "ImageSeries",
    "Spectrum",
    "LineScan",
    "SpectrumImage",
    "LayerscopeError",
    "InputError",
    "CalibrationError",
    "ConvergenceError",
]


def load(path, **kwargs):
    """Load a file into a calibrated container; see :func:`layerscope.io.load`."""
    from layerscope.io import load as _load

    return _load(path, **kwargs)
