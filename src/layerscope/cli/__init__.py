"""The ``layerscope`` command line.

Each domain registers its commands on :data:`layerscope.cli.app.app` in its own module; importing
them here builds the whole CLI. :func:`main` turns a :class:`~layerscope.errors.LayerscopeError`
into one line on stderr and exit status 2 (no traceback for a user's mistake).
"""

from __future__ import annotations

import sys

from layerscope.cli.app import app
from layerscope.cli import core  # noqa: F401  (registers info, demo, version)
from layerscope.cli import simulate  # noqa: F401  (registers simulate)
from layerscope.cli import imaging  # noqa: F401  (registers columns, phases)
from layerscope.cli import eels  # noqa: F401  (registers eels)
from layerscope.cli import insitu  # noqa: F401  (registers insitu)
from layerscope.cli import atomistic  # noqa: F401  (registers atomistic vacancies|neb)
from layerscope.cli import cells  # noqa: F401  (registers cycling, xrd, kinetics)
from layerscope.errors import LayerscopeError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``layerscope`` console script."""
    try:
        app()
    except LayerscopeError as err:
        print(f"layerscope: error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("layerscope: interrupted", file=sys.stderr)
        sys.exit(130)
