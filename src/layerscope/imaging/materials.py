"""The expected lattice spacings of a cathode composition, and the enhancer's denoised image.

Kept below :mod:`layerscope.imaging.pipeline`, :mod:`.generic` and :mod:`.applicability` so that
those import each other in one direction only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from layerscope.errors import InputError
from layerscope.imaging import phases as _ph

__all__ = ["MaterialSpacings", "material_spacings", "enhanced_image"]


@dataclass(frozen=True)
class MaterialSpacings:
    """Expected lattice spacings of a composition's O3 phase in the image (nm)."""

    composition: str
    a_nm: float
    cation_spacing_nm: float  # c/6
    inplane_spacing_nm: float  # a sqrt(3) / 2 in both supported zones

    @property
    def tm_spacing_nm(self) -> float:
        return 2.0 * self.cation_spacing_nm


def material_spacings(composition: str, zone: str) -> MaterialSpacings:
    """Spacings of ``composition`` seen along ``zone`` (lattice parameters of :mod:`layerscope.crystal`).

    Both supported zones ([100] and [110] of :func:`layerscope.crystal.oriented`) show the
    close-packed rows with columns ``a sqrt(3)/2`` apart.
    """
    from layerscope.crystal import lattice

    _ph.o3_step_for_zone(zone)  # validates the zone
    lat = lattice("O3", composition)
    a = lat.a_A / 10.0
    return MaterialSpacings(composition, a, lat.layer_spacing_A / 10.0, a * np.sqrt(3.0) / 2.0)


def enhanced_image(data: np.ndarray, pixel_size_nm: float) -> np.ndarray:
    """The neural enhancer's denoised image (float64); a clear error when the enhancer is unavailable."""
    try:
        from layerscope.imaging.enhance import enhance
    except ImportError as err:
        raise InputError(
            "--enhance needs the neural enhancer (layerscope.imaging.enhance), which is not available in "
            f"this installation ({err}); run without --enhance"
        ) from err
    result = enhance(data, pixel_size_nm=pixel_size_nm)
    denoised = result.denoised if hasattr(result, "denoised") else result[0]
    return np.asarray(denoised, dtype=float)
