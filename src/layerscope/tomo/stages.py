"""The stage a tomography run is in, for benchmarks that sample memory per stage.

:func:`enter` sets :data:`current` and logs a DEBUG record ``"stage NAME"`` on the logger
``layerscope.tomo.stage`` (off unless a handler asks for it). ``benchmarks/tomo_512.py`` writes each
record to a file and samples the run's ``/proc`` memory per stage; an in-process sampler may read
:data:`current`. Nothing else depends on it.
"""

from __future__ import annotations

import logging

__all__ = ["enter", "current"]

#: the stage set last (``"start"`` before any)
current = "start"
_log = logging.getLogger("layerscope.tomo.stage")


def enter(name: str) -> None:
    """Mark the start of stage ``name`` (a short word, no spaces)."""
    global current
    current = name
    _log.debug("stage %s", name)
