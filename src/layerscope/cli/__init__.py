"""The ``layerscope`` command line.

Each domain registers its commands on :data:`layerscope.cli.app.app` in its own module; importing
them here builds the whole CLI. :func:`run` turns a :class:`~layerscope.errors.LayerscopeError`
into one line on stderr and exit status 2 (no traceback for a user's mistake), Ctrl-C or SIGTERM
into one line and status 130/143, and keeps third-party warnings off the terminal unless
``--verbose`` is given.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import warnings
from typing import Sequence

import typer

from layerscope.cli.app import app, one_command_process
from layerscope.cli import core  # noqa: F401  (registers info, demo, version)
from layerscope.cli import simulate  # noqa: F401  (registers simulate)
from layerscope.cli import imaging  # noqa: F401  (registers columns, phases)
from layerscope.cli import eels  # noqa: F401  (registers eels)
from layerscope.cli import insitu  # noqa: F401  (registers insitu)
from layerscope.cli import atomistic  # noqa: F401  (registers atomistic vacancies|neb)
from layerscope.cli import cells  # noqa: F401  (registers cycling, xrd, kinetics)
from layerscope.cli import tomo  # noqa: F401  (registers tomo)
from layerscope.cli import bulk  # noqa: F401  (registers xas, eis, gas)
from layerscope import _runstate
from layerscope.errors import LayerscopeError

__all__ = ["app", "main", "run"]


def _parser_exceptions() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """Exit, Abort and usage-error classes of Typer (which vendors click from 0.29 on) and of click."""
    import click

    exit_, abort, usage = [click.exceptions.Exit], [click.exceptions.Abort], [click.ClickException]
    try:
        from typer._click import exceptions as vendored  # typer >= 0.29

        usage.append(vendored.ClickException)
    except ImportError:  # pragma: no cover - older typer uses click itself
        pass
    exit_ += [typer.Exit]
    abort += [typer.Abort]
    return tuple(exit_), tuple(abort), tuple(usage)


_EXIT, _ABORT, _USAGE = _parser_exceptions()


_Terminated = _runstate.Terminated


def _on_sigterm(signum, frame) -> None:  # pragma: no cover - exercised in a subprocess test
    _runstate.INTERRUPTS.append(signum)
    raise _Terminated()


def _on_sigint(signum, frame) -> None:  # pragma: no cover - exercised in a subprocess test
    _runstate.INTERRUPTS.append(signum)  # kept even when the KeyboardInterrupt below is swallowed
    raise KeyboardInterrupt()


def _quiet_lost_interrupts(unraisable) -> None:  # pragma: no cover - exercised in a subprocess test
    """``sys.unraisablehook``: an interrupt raised inside a weakref callback or ``__del__`` is lost, not printed.

    The signal handlers above record the signal in :data:`layerscope._runstate.INTERRUPTS` before they
    raise, and the output is refused on that record; Python would otherwise print "Exception ignored
    in ..." with a traceback on the user's terminal. Every other unraisable exception is printed as usual.
    """
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and _runstate.INTERRUPTS:
        return
    sys.__unraisablehook__(unraisable)


def _interrupted_line() -> str:
    from layerscope._runstate import TARGETS

    targets = list(TARGETS)
    where = f"; nothing written to {targets[-1]}" if targets else ""
    return f"layerscope: interrupted{where}"


#: Loggers of the readers and libraries layerscope calls; their messages reach the terminal only with --verbose.
_THIRD_PARTY_LOGGERS = ("rsciio", "hyperspy", "exspy", "distributed", "chgnet", "sevenn", "abtem", "numexpr",
                        "matplotlib", "PIL", "h5py", "tifffile", "imageio")


def _quiet_loggers(verbose: bool) -> None:
    import logging

    for name in _THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.ERROR)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``) and return the exit status.

    Third-party warnings are silenced unless ``--verbose`` is among the arguments (it is removed
    before the commands see it).
    """
    from layerscope import _runstate

    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "--verbose" in args
    args = [a for a in args if a != "--verbose"]
    _runstate.reset(shlex.join(["layerscope", *args]))
    _quiet_loggers(verbose)
    with warnings.catch_warnings():
        if not verbose:
            warnings.simplefilter("ignore")
        try:
            _invoke(args)
        except LayerscopeError as err:
            print(f"layerscope: error: {err}", file=sys.stderr)
            return 2
        except _Terminated:
            print(_interrupted_line(), file=sys.stderr)
            return 143
        except (KeyboardInterrupt, *_ABORT):
            print(_interrupted_line(), file=sys.stderr)
            return 130
        except _EXIT as exc:  # --help, --version
            return exc.exit_code
        except _USAGE as exc:  # usage errors: the parser's own message, status 2
            exc.show()
            return exc.exit_code
    return 0


def _invoke(args: list[str]) -> None:
    """Parse and run one command; exceptions propagate unchanged (Typer would turn Ctrl-C into a status)."""
    command = typer.main.get_command(app)
    with command.make_context("layerscope", args) as ctx:
        command.invoke(ctx)


def main() -> None:
    """Entry point of the ``layerscope`` console script."""
    if "--verbose" not in sys.argv:
        warnings.simplefilter("ignore")  # also for warnings raised while the commands are imported
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, _on_sigint)
    sys.unraisablehook = _quiet_lost_interrupts
    one_command_process(True)
    try:
        status = run()
    finally:
        one_command_process(False)  # main() called in a test process: later in-process runs are not
    if status in (130, 143):
        # interrupted: the output folder is already cleaned up. Leave now, without waiting for worker
        # threads still busy with queued tasks (a second Ctrl-C during that wait would kill the process
        # with a signal instead of the status).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
