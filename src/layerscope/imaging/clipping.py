"""Is the image clipped at its top (a saturated detector, a contrast-stretched export)?

Column positions survive clipping, intensities do not: the brightest columns lose their tops, so
the Li-layer sites read brighter relative to the TM columns and the fill and mixing read from the
counts move. On simulated layered-oxide draws the phase fractions stayed put with up to ~2 % of the
pixels clipped and moved with 4-5 % (spinel 14 -> 8 % on draw 0; docs/validation.md, "Clipped
images"). A clipped image is computed and flagged (``saturated``), not refused.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["clipped_share", "clipping_flags", "CLIPPED_SHARE"]

#: Share of the pixels at the image's maximum, in plateaus, from which the image is flagged.
CLIPPED_SHARE = 0.005
#: The maximum must hold this many times the pixels of the next lower value (a histogram spike).
SPIKE = 3
#: Images with at most this many grey levels are judged by their plateaus alone.
FEW_LEVELS = 64


def clipped_share(image: np.ndarray) -> float:
    """Share of the pixels that sit at the image's maximum in flat patches, where the maximum is a
    spike of the histogram (0 otherwise).

    A clipped column top is a flat patch of pixels at the maximum, and clipping piles the values
    above it onto the maximum: at least :data:`SPIKE` times as many pixels as at the next lower
    value (judged on images of more than :data:`FEW_LEVELS` grey levels). Noise puts the maximum on
    isolated pixels, which do not count.
    """
    data = np.asarray(image)
    top = data == data.max()
    n_top = int(np.count_nonzero(top))
    if n_top < CLIPPED_SHARE * top.size:  # cannot reach the flag (every unclipped image: 2 passes)
        return 0.0
    below = data[~top]
    spike = below.size == 0 or n_top >= SPIKE * int(np.count_nonzero(below == below.max()))
    if n_top < 2 or not (spike or _few_levels(data)):
        return 0.0
    return float((top & ~_isolated(top)).mean())


def _few_levels(data: np.ndarray) -> bool:
    """At most :data:`FEW_LEVELS` distinct values (in every 16th pixel): counts of a low dose, or a
    clipped and stretched export, where neighbouring levels are all well populated and the histogram
    spike test says nothing."""
    return np.unique(data.ravel()[::16]).size <= FEW_LEVELS


def _isolated(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with no 8-neighbour in ``mask``."""
    neighbours = ndimage.convolve(mask.astype(np.uint8), np.ones((3, 3), np.uint8), mode="constant") - mask
    return mask & (neighbours == 0)


def clipping_flags(image: np.ndarray) -> list[dict[str, str]]:
    """``saturated`` flag when at least :data:`CLIPPED_SHARE` of the pixels are clipped at the maximum
    (:func:`clipped_share`; below that share the image is not looked at further)."""
    share = clipped_share(image)
    if share < CLIPPED_SHARE:
        return []
    return [{"code": "saturated", "message": (
        f"{share:.1%} of the pixels sit at the image maximum ({float(np.max(image)):g}) in flat patches: the detector "
        f"or the export clipped the brightest columns; positions are unaffected, intensities (Li-layer fill, mixing) "
        f"are biased; acquire or export without clipping")}]
