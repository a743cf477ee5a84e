"""Writing results: all or nothing, with provenance beside every output.

Outputs are written into a temporary folder next to the destination and moved into place only when
everything succeeded; on an error the temporary folder is removed, so a failed run never leaves a
half-written result behind.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from layerscope.errors import InputError
from layerscope.provenance import Provenance, _plain

__all__ = ["output_directory", "write_table", "write_json", "write_summary", "atomic_file"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def output_directory(path: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """A folder to write results into that appears at ``path`` only if the block succeeds.

    Parameters
    ----------
    path : str or Path
        The final output folder.
    overwrite : bool
        Replace an existing folder at ``path`` (after success only). When False an existing
        non-empty folder is an :class:`InputError`.

    Yields
    ------
    Path
        A temporary folder on the same file system; write everything there.
    """
    final = Path(path).resolve()
    if final.exists() and not final.is_dir():
        raise InputError(f"output path '{final}' exists and is a file; choose a folder name with --out")
    if final.exists() and any(final.iterdir()) and not overwrite:
        raise InputError(f"output folder '{final}' is not empty; choose another --out or allow overwriting")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; results are ordinary files
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        backup = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.rename(backup)
        tmp.rename(final)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        tmp.rename(final)


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """A temporary path to write one file to; it replaces ``path`` only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=final.suffix, dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(0o666 & ~_umask())  # mkstemp makes it private; results are ordinary files
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a table as CSV (``.csv``) or Parquet (``.parquet``), atomically."""
    path = Path(path)
    with atomic_file(path) as tmp:
        if path.suffix == ".csv":
            table.to_csv(tmp, index=False)
        elif path.suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            raise InputError(f"cannot write a table to '{path}': use a .csv or .parquet file name")
    return path


def _json_default(value: Any) -> Any:
    plain = _plain(value)
    if plain is value:
        raise TypeError(f"not JSON serialisable: {type(value).__name__}")
    return plain


def _finite(value: Any) -> Any:
    """Replace NaN/inf by None so that the JSON is valid everywhere."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        return _finite(value.item())
    return value


def write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as indented JSON (NaN written as null), atomically."""
    path = Path(path)
    text = json.dumps(_finite(_plain(obj)), indent=2, default=_json_default, allow_nan=False)
    with atomic_file(path) as tmp:
        tmp.write_text(text + "\n")
    return path


def write_summary(out_dir: str | Path, summary: dict[str, Any], provenance: Provenance) -> Path:
    """Write ``summary.json`` (with the provenance embedded) and ``provenance.json`` into ``out_dir``."""
    out_dir = Path(out_dir)
    write_json(provenance.to_dict(), out_dir / "provenance.json")
    return write_json({**summary, "provenance": provenance.to_dict()}, out_dir / "summary.json")
