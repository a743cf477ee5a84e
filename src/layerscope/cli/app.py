"""The root Typer application; domain modules add their commands to it."""

from __future__ import annotations

import gc
from contextlib import contextmanager

import typer

app = typer.Typer(
    name="layerscope",
    help=(
        "Quantified degradation of layered oxide cathodes, from the raw file to a report.\n\n"
        "Lengths are in nm, energies in eV, times in s; x runs to the right, y down. "
        "Every command writes its outputs with provenance into --out, all or nothing."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)



def _print_version(value: bool) -> None:
    if value:
        from layerscope._version import __version__

        typer.echo(f"layerscope {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print the layerscope version and exit."),
    verbose: bool = typer.Option(False, "--verbose", help="Show third-party warnings and log messages (hidden by "
                                                          "default); accepted anywhere on the command line."),
) -> None:
    """Quantified degradation of layered oxide cathodes."""


SchedulerOption = typer.Option(
    None,
    "--scheduler",
    help="threads (default: local threads in this process), processes (local worker processes) or the address "
    "of a dask.distributed scheduler (tcp://host:8786).",
)

OutOption = typer.Option(
    ...,
    "--out",
    help="Output folder; written all or nothing (nothing is left behind when the analysis fails).",
)

def parse_floats(text: str | None, *, name: str, example: str = "1,2,3") -> list[float] | None:
    """Comma-separated numbers of option ``name`` (None when not given); one-line error naming the option."""
    from layerscope.errors import InputError

    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise InputError(f"{name} {text!r}: give comma-separated numbers, e.g. {name} {example}") from exc
    if not values:
        raise InputError(f"{name} is empty; give comma-separated numbers, e.g. {name} {example}")
    return values


OverwriteOption = typer.Option(
    False,
    "--overwrite",
    help="Replace a previous layerscope result in --out (only the files that run wrote; nothing else is touched).",
)


def claim_output(out, overwrite: bool, *inputs):
    """Check --out against the output contract before any work is done; returns the target to write.

    ``inputs`` are the command's input files (None entries and lists are accepted).
    """
    from layerscope.io.output import OutputTarget

    flat = []
    for item in inputs:
        if isinstance(item, (list, tuple)):
            flat.extend(i for i in item if i is not None)
        elif item is not None:
            flat.append(item)
    return OutputTarget(out, overwrite=overwrite, inputs=flat)


PixelSizeOption = typer.Option(
    None,
    "--pixel-size-nm",
    help="Pixel size (scan step) in nm: required where the input carries none (plain images, folders of "
    "frames, movies, arrays); overrides the file's calibration otherwise.",
)



_ONE_COMMAND_PROCESS = False


def one_command_process(flag: bool = True) -> None:
    """Set by :func:`layerscope.cli.main` while it runs its command: the process runs one command and
    exits (``layerscope ...`` or ``python -m layerscope``), so the objects its imports create live until
    the end (:func:`command_imports`)."""
    global _ONE_COMMAND_PROCESS
    _ONE_COMMAND_PROCESS = flag


@contextmanager
def command_imports():
    """Import a command's science modules without the cyclic garbage collector, then freeze what they made.

    In a process that runs one command (:func:`one_command_process`), importing NumPy, pandas, SciPy
    and layerscope's modules creates ~150,000 tracked objects that live until exit and almost no garbage, yet
    triggers ~270 collections, two of them full ones (~0.1 s of CPU). Collecting is switched off during
    the imports and the objects are then moved out of every later collection (:func:`gc.freeze`), the
    interpreter's shutdown included (~0.2 s of CPU less; docs/benchmarks.md, "speed4"); the collector
    runs as before for everything the command allocates afterwards. Elsewhere (``run`` in a
    test or a notebook) it does nothing; a test that calls ``main()`` in its own process freezes what
    is alive at that moment (kept, not collected, until the test process ends).
    """
    if not _ONE_COMMAND_PROCESS or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
