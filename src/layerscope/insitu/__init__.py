"""In situ series: drift correction, reaction fronts, voids and pores, cracks, at movie scale.

:func:`open_series` reads stacks, folders of frames and movies lazily; :func:`analyse_series` runs
drift correction, dark-feature (void, pore, crack) segmentation and tracking and front tracking in
one chunked pass; :mod:`layerscope.insitu.synthetic` makes series with known truth.
"""

from layerscope.insitu.pipeline import InsituOptions, InsituResult, analyse_series
from layerscope.insitu.series import open_series
from layerscope.insitu.voids import VoidParams

__all__ = ["open_series", "analyse_series", "InsituOptions", "InsituResult", "VoidParams"]
