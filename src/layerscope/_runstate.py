"""State of the running command: the command line and the output folders it claimed.

Kept apart from :mod:`layerscope.io.output` so that the command line can reset it without importing
the readers (fast start); :mod:`layerscope.io.output` reads and writes it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["TARGETS", "COMMAND", "reset"]

#: Output folders claimed by this process, in order (the last is named on Ctrl-C).
TARGETS: list[Path] = []
#: The command line that reproduces this run (``[str]`` or ``[None]`` outside the command line).
COMMAND: list[str | None] = [None]


def reset(command: str | None = None) -> None:
    """Start of a command: forget claimed folders and record the command line."""
    TARGETS.clear()
    COMMAND[0] = command
