"""Optional dependencies ("extras"): one line telling the user what to install when one is missing.

``pip install layerscope`` installs the core (NumPy, SciPy, scikit-image, pandas, RosettaSciIO, Dask,
Typer, Jinja2, Matplotlib, tifffile, ASE); a command that needs more names its extra, e.g.
``layerscope atomistic needs the 'atomistic' extra: pip install 'layerscope[atomistic]'``.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Iterable

from layerscope.errors import InputError

__all__ = ["EXTRAS", "MissingExtraError", "missing_modules", "require"]

#: The importable modules behind each extra of pyproject.toml.
EXTRAS: dict[str, tuple[str, ...]] = {
    "eels": ("hyperspy", "exspy"),
    "sim": ("abtem",),
    "enhance": ("torch",),
    "atomistic": ("pymatgen", "torch", "chgnet", "sevenn"),
    "cells": ("galvani", "NewareNDA"),
    "insitu": ("imageio", "imageio_ffmpeg", "zarr"),
    "distributed": ("distributed",),
    "tomo": ("astra", "algotom", "mrcfile"),
    "spectroscopy": ("impedance",),
}


class MissingExtraError(InputError):
    """A command needs an optional dependency that is not installed."""


def _importable(name: str) -> bool:
    if name in sys.modules:
        return sys.modules[name] is not None  # None: the import was blocked
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def missing_modules(modules: Iterable[str]) -> list[str]:
    """The modules of ``modules`` that cannot be imported (without importing them)."""
    return [m for m in modules if not _importable(m)]


def require(extra: str, what: str, modules: Iterable[str] | None = None) -> None:
    """Raise :class:`MissingExtraError` when ``what`` (a command, an option) lacks its extra.

    Parameters
    ----------
    extra : str
        Name of the extra in pyproject.toml.
    what : str
        What needs it, as the user typed it (``"layerscope atomistic"``, ``"--enhance"``).
    modules : iterable of str, optional
        The modules to check (default: all of the extra's).
    """
    missing = missing_modules(EXTRAS[extra] if modules is None else modules)
    if missing:
        raise MissingExtraError(f"{what} needs the '{extra}' extra ({', '.join(missing)} not installed): "
                                f"pip install 'layerscope[{extra}]'")
