"""State of the running command: the command line and the output folders it claimed.

Kept apart from :mod:`layerscope.io.output` so that the command line can reset it without importing
the readers (fast start); :mod:`layerscope.io.output` reads and writes it.
"""

from __future__ import annotations

import signal
from pathlib import Path

__all__ = ["TARGETS", "COMMAND", "INTERRUPTS", "Terminated", "reset", "raise_if_interrupted"]

#: Output folders claimed by this process, in order (the last is named on Ctrl-C).
TARGETS: list[Path] = []
#: The command line that reproduces this run (``[str]`` or ``[None]`` outside the command line).
COMMAND: list[str | None] = [None]
#: SIGINT/SIGTERM received during the command, recorded by the command line's signal handlers. The
#: exception a handler raises is lost when it lands in a weakref callback or ``__del__`` ("Exception
#: ignored in ..."): the command then runs on, and this record stops it before its output is committed.
INTERRUPTS: list[int] = []


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every ``finally`` (the output folder's clean-up) runs."""


def reset(command: str | None = None) -> None:
    """Start of a command: forget claimed folders and signals, record the command line."""
    TARGETS.clear()
    INTERRUPTS.clear()
    COMMAND[0] = command


def raise_if_interrupted() -> None:
    """Raise the interrupt of a signal received earlier whose exception was swallowed (see :data:`INTERRUPTS`)."""
    if INTERRUPTS:
        raise Terminated() if INTERRUPTS[-1] == signal.SIGTERM else KeyboardInterrupt()
