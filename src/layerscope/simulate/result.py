"""The result of a simulation: a calibrated image and the ground truth of what is in it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from layerscope.containers import Image
from layerscope.provenance import Provenance

__all__ = ["Simulation"]


@dataclass
class Simulation:
    """A simulated STEM image with its ground truth.

    Attributes
    ----------
    image : layerscope.containers.Image
        The calibrated image (nm pixels). ``image.metadata`` has ``simulated=True``, the engine
        and every parameter, and ``signal_units`` (what a pixel value means).
    columns : pandas.DataFrame
        The projected atom columns in the image frame (see
        :func:`layerscope.simulate.columns.project_columns`): ``x_nm, y_nm, phase, layer, kind,
        n_atoms, composition, tm_fraction, expected_intensity``.
    provenance : layerscope.provenance.Provenance
        Structure hash, parameters and software versions.
    atoms : ase.Atoms, optional
        The structure that was imaged (Angstrom, beam along +z).
    clean : layerscope.containers.Image, optional
        The noise-free image when ``image`` is a degraded acquisition of it (see
        :func:`layerscope.simulate.degrade`); ``columns`` then gives the positions as they
        appear in ``image`` (drift and scan distortion applied) with the undistorted ones in
        ``x_true_nm``, ``y_true_nm``.
    """

    image: Image
    columns: pd.DataFrame
    provenance: Provenance
    atoms: Any = None
    clean: Image | None = None

    @property
    def pixel_size_nm(self) -> float:
        """Pixel size of the image in nm."""
        return self.image.pixel_size_nm
