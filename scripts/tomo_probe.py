"""Shared piece of the tomography probe scripts (not a library module): the inputs of
:func:`layerscope.tomo.segment.particle_labels` with the analysis stopped there."""

from __future__ import annotations

import numpy as np


class _Stop(Exception):
    pass


def particle_inputs(data, options=None, **analyse_kw) -> tuple[np.ndarray, dict]:
    """The solid mask and keyword arguments :func:`layerscope.tomo.analysis.analyse` passes to ``particle_labels``
    for ``data`` (in memory), the analysis stopped there."""
    import layerscope.tomo.analysis as an

    got = {}

    def grab(solid, **kw):
        got.update(solid=solid, kw=kw)
        raise _Stop

    real, an.particle_labels = an.particle_labels, grab
    try:
        an.analyse(data, options or an.TomoOptions(), **analyse_kw)
    except _Stop:
        pass
    finally:
        an.particle_labels = real
    return got["solid"], got["kw"]

