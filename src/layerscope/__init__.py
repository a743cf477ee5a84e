"""layerscope: quantified, reproducible degradation measurements for layered oxide cathodes.

Lengths are in nm (precisions in pm), energies in eV, times in s. Images are indexed ``[row, col]``;
``x_nm`` runs to the right (columns), ``y_nm`` down (rows), from the top-left corner of pixel (0, 0).
See ``docs/conventions.md``.
"""

_CONTAINERS = ("Image", "ImageSeries", "LineScan", "Spectrum", "SpectrumImage")


def __getattr__(name):
    """The containers and ``__version__`` are looked up on first use, so that every command starts fast.

    ``__version__`` reads the package metadata (:mod:`importlib.metadata`: ~0.05 s of imports
    before a command could start; the provenance reads it while the analysis runs).
    """
    if name in _CONTAINERS:
        from layerscope import containers

        return getattr(containers, name)
    if name == "__version__":
        from layerscope._version import __version__

        return __version__
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
