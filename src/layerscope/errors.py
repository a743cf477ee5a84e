"""The exceptions layerscope raises for a user's mistake or a failed computation.

Every message names the input, the problem and the fix, so that the command line can print it
as one line (``layerscope: error: ...``) and exit with status 2 instead of showing a traceback.
"""

from __future__ import annotations

__all__ = ["LayerscopeError", "InputError", "CalibrationError", "ConvergenceError"]


class LayerscopeError(Exception):
    """Base class of every error layerscope raises on purpose."""


class InputError(LayerscopeError, ValueError):
    """The input (a file, an array, an option) cannot be analysed as given."""


class CalibrationError(InputError):
    """A physical calibration (pixel size, energy axis, time stamps) is missing or inconsistent."""


class ConvergenceError(LayerscopeError, RuntimeError):
    """A fit, relaxation or optimisation did not converge."""
