"""Writing results: all or nothing, and never a file that layerscope did not write.

The contract (``docs/conventions.md``, "Outputs"), one mechanism for every command and API writer:

1. layerscope deletes or replaces only files that it wrote itself. Every result folder lists what
   it wrote in ``provenance.json`` (key ``"outputs"``: tool, version, command, files).
2. An output folder that does not exist is created; an empty one is used; one that holds a previous
   layerscope result is refused unless ``overwrite`` is given, and then only the files that the
   previous run listed are replaced (everything else stays). A folder holding anything else, the
   current folder, a home or system folder, or a folder that contains an input file is refused:
   no flag deletes foreign files.
3. Results are written into a temporary sibling folder (``.NAME.partial-*``, marked as
   layerscope's own) and moved into place only when the whole run succeeded; a failed or
   interrupted run leaves the target as it was. A stale temporary folder of a killed run is removed
   by the next run only when its marker proves it layerscope's and its process is gone.
4. Unwritable targets (permission, read-only file system, full disk, name too long) raise
   :class:`OutputError`: one line naming the folder and the reason.
"""

from __future__ import annotations

import contextvars
import errno
import functools
import inspect
import json
import math
import os
import shutil
import signal
import socket
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from layerscope import _runstate
from layerscope.errors import InputError
from layerscope.provenance import Provenance, json_plain

if TYPE_CHECKING:  # numpy and pandas are imported where they are used (fast command-line start)
    import pandas as pd

__all__ = ["OutputError", "OutputTarget", "output_directory", "writes_folder", "write_table", "write_json", "write_summary",
           "atomic_file", "check_replaceable"]

#: Name of the marker file inside a temporary folder that proves it layerscope's own.
PARTIAL_MARKER = ".layerscope-partial.json"
#: Folders never used as an output folder themselves (their sub-folders are fine).
_SYSTEM_FOLDERS = ("/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/media", "/mnt", "/opt",
                   "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/Users",
                   "/Applications", "/Library", "/System", "/Volumes", "/private")
#: errno values that mean "this place cannot take the output" rather than a bug.
_WRITE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG,
                 errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOENT, errno.EXDEV, errno.EMLINK, errno.EFBIG}

_ACTIVE: contextvars.ContextVar[tuple[Path, ...]] = contextvars.ContextVar("layerscope_output_tmp", default=())
_TARGETS = _runstate.TARGETS
_COMMAND = _runstate.COMMAND


class OutputError(InputError):
    """The output folder cannot be written (permission, read-only, disk full, name too long)."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _reason(err: OSError) -> str:
    return err.strerror or str(err)


def _write_error(where: Path, err: OSError) -> OutputError:
    return OutputError(f"cannot write to {where}: {_reason(err)}; choose another --out")


def _inside_active(path: Path) -> bool:
    return any(path == t or t in path.parents for t in _ACTIVE.get())


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The ``outputs`` manifest of a previous layerscope result in ``folder`` (None if there is none)."""
    try:
        data = json.loads((folder / "provenance.json").read_text())
    except (OSError, ValueError):
        return None
    outputs = data.get("outputs") if isinstance(data, dict) else None
    if isinstance(outputs, dict) and outputs.get("tool") == "layerscope" and isinstance(outputs.get("files"), list):
        return outputs
    return None


def _is_forbidden(final: Path) -> str | None:
    if final == Path.cwd().resolve():
        return "is the current folder"
    if final == Path.home().resolve():
        return "is your home folder"
    if str(final) in _SYSTEM_FOLDERS:
        return "is a system folder"
    return None


class OutputTarget:
    """An output folder claimed under the contract above; checked at once, written by :meth:`open`.

    Parameters
    ----------
    path : str or Path
        The output folder (``--out``).
    overwrite : bool
        Replace a previous layerscope result there (only the files it listed).
    inputs : iterable of path-like
        The run's input files: an output folder that contains one of them is refused.

    Raises
    ------
    InputError
        The folder is refused (see the module docstring); the message names the fix.
    """

    def __init__(self, path: str | Path, *, overwrite: bool = False, inputs: Iterable[Any] = ()) -> None:
        self.final = Path(path).expanduser().resolve()
        self.overwrite = bool(overwrite)
        self.inputs = [Path(p).expanduser().resolve() for p in inputs if isinstance(p, (str, os.PathLike))]
        self.previous: dict[str, Any] | None = None
        self.check()
        _TARGETS.append(self.final)

    # ------------------------------------------------------------------ checks
    def check(self) -> None:
        """Refuse a folder that the contract does not allow (before any work is done)."""
        try:
            self._check()
        except OSError as err:  # a name too long, a folder that cannot be listed
            raise _write_error(self.final, err) from None

    def _check(self) -> None:
        final = self.final
        fix = "choose a new folder with --out"
        why = _is_forbidden(final)
        if why:
            raise InputError(f"output folder '{final}' {why}; layerscope writes only into its own folder: {fix}")
        for inp in self.inputs:
            if inp == final or final in inp.parents:
                raise InputError(f"output folder '{final}' contains the input '{inp}'; {fix}")
        if final.exists() and not final.is_dir():
            raise InputError(f"output path '{final}' exists and is a file; {fix}")
        if not final.is_dir():
            return
        if not any(final.iterdir()):
            return
        self.previous = read_manifest(final)
        if self.previous is None:
            raise InputError(f"output folder '{final}' already holds files that layerscope did not write; {fix} "
                             "(layerscope never deletes files it did not write)")
        if not self.overwrite:
            raise InputError(f"output folder '{final}' holds a previous layerscope result; give --overwrite to "
                             "replace it (only the files it wrote), or choose a new folder with --out")

    # ------------------------------------------------------------------ writing
    @contextmanager
    def open(self) -> Iterator[Path]:
        """A temporary folder to write into; its files reach the target only if the block succeeds."""
        self.check()
        parent = self.final.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            _remove_stale_partials(parent, self.final.name)
            tmp = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.partial-", dir=parent))
        except OSError as err:
            raise _write_error(self.final, err) from None
        token = _ACTIVE.set(_ACTIVE.get() + (tmp,))
        try:
            try:
                _mark_partial(tmp)
                yield tmp
                _runstate.raise_if_interrupted()  # a Ctrl-C whose KeyboardInterrupt the interpreter swallowed
                (tmp / PARTIAL_MARKER).unlink()
                _point_at_final(tmp, self.final)
                self._write_manifest(tmp)
                with _signals_blocked():
                    self._commit(tmp)
            except OSError as err:
                if err.errno in _WRITE_ERRNOS:
                    raise _write_error(self.final, err) from None
                raise
        finally:
            _ACTIVE.reset(token)
            shutil.rmtree(tmp, ignore_errors=True)

    def _write_manifest(self, tmp: Path) -> None:
        from layerscope._version import __version__

        files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        if "provenance.json" not in files:
            files.append("provenance.json")
        prov_path = tmp / "provenance.json"
        try:
            data = json.loads(prov_path.read_text()) if prov_path.exists() else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {"provenance": data}
        data["outputs"] = {"tool": "layerscope", "version": __version__, "command": _COMMAND[0],
                           "folder": str(self.final), "files": sorted(files)}
        prov_path.write_text(json.dumps(data, indent=2, default=str) + "\n")

    def _commit(self, tmp: Path) -> None:
        final = self.final
        if not final.exists():
            tmp.chmod(0o777 & ~_umask())
            os.rename(tmp, final)  # atomic; the finally clause then finds no temporary folder
            return
        old = set(self.previous["files"]) if self.previous else set()
        if self.previous is None and any(final.iterdir()):
            raise InputError(f"output folder '{final}' received files from elsewhere during the run; "
                             "nothing was written: choose a new folder with --out")
        new = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        for rel in new:
            target = final / rel
            for anc in list(reversed(target.relative_to(final).parents))[1:]:
                if (final / anc).exists() and not (final / anc).is_dir():
                    raise InputError(f"'{final / anc}' is not layerscope's; nothing was written: choose a new --out")
            if (target.exists() or target.is_symlink()) and rel not in old:
                raise InputError(f"writing '{rel}' would replace '{target}', which layerscope did not write; "
                                 "nothing was written: choose a new folder with --out")
        for rel in new:
            (final / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / rel, final / rel)
        for rel in sorted(old - set(new)):
            stale = final / rel
            if stale.is_file() or stale.is_symlink():
                stale.unlink()
            _prune_empty_dirs(stale.parent, final)


#: Text outputs that may name their own folder (provenance of an input written in the same run).
_TEXT_SUFFIXES = (".json", ".html", ".md", ".txt")


def _point_at_final(tmp: Path, final: Path) -> None:
    """Replace the temporary folder's path by the final one in the text outputs (never a deleted path)."""
    old, new = str(tmp), str(final)
    for path in tmp.rglob("*"):
        if path.is_file() and path.suffix in _TEXT_SUFFIXES and path.stat().st_size < 64 << 20:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
            if old in text:
                path.write_text(text.replace(old, new), encoding="utf-8", errors="surrogateescape")


def _prune_empty_dirs(folder: Path, stop: Path) -> None:
    while folder != stop and stop in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _mark_partial(tmp: Path) -> None:
    marker = {"tool": "layerscope", "pid": os.getpid(), "host": socket.gethostname()}
    (tmp / PARTIAL_MARKER).write_text(json.dumps(marker))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; results are ordinary files


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_partials(parent: Path, name: str) -> None:
    """Remove ``.NAME.partial-*`` folders of killed layerscope runs (marker present, process gone)."""
    for cand in parent.glob(f".{name}.partial-*"):
        try:
            marker = json.loads((cand / PARTIAL_MARKER).read_text())
        except (OSError, ValueError):
            continue  # not provably ours: leave it
        if (isinstance(marker, dict) and marker.get("tool") == "layerscope" and marker.get("host") == socket.gethostname()
                and isinstance(marker.get("pid"), int) and not _pid_alive(marker["pid"])):
            shutil.rmtree(cand, ignore_errors=True)


@contextmanager
def _signals_blocked() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while the finished files are moved into place (main thread only)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    sigs = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def output_directory(path: str | Path, *, overwrite: bool = False, inputs: Iterable[Any] = ()) -> Iterator[Path]:
    """A folder to write results into whose files reach ``path`` only if the block succeeds.

    Inside another ``output_directory`` block (a result's ``write`` called by a command) the folder
    is used directly: the outer block already holds the contract.

    Parameters
    ----------
    path : str or Path
        The final output folder.
    overwrite : bool
        Replace a previous layerscope result at ``path`` (only the files it listed).
    inputs : iterable of path-like
        Input files; a ``path`` that contains one is refused.

    Yields
    ------
    Path
        The folder to write everything into.
    """
    p = Path(path).expanduser().resolve()
    if _inside_active(p):
        p.mkdir(parents=True, exist_ok=True)
        yield p
        return
    with OutputTarget(p, overwrite=overwrite, inputs=inputs).open() as tmp:
        yield tmp


def _retarget(value: Any, tmp: Path, final: Path) -> Any:
    if isinstance(value, Path) and (value == tmp or tmp in value.parents):
        return final / value.relative_to(tmp)
    if isinstance(value, dict):
        return {k: _retarget(v, tmp, final) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_retarget(v, tmp, final) for v in value)
    return value


def writes_folder(parameter: str = "out_dir") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate an API writer so that its folder argument follows the output contract.

    The wrapped function gains a keyword ``overwrite=False``; it writes into a temporary folder that
    reaches ``parameter``'s folder only when it returns (paths it returns are mapped there).
    Called from inside a command (an active :func:`output_directory`), it writes directly.
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args: Any, overwrite: bool = False, **kwargs: Any) -> Any:
            bound = sig.bind(*args, **kwargs)
            final = Path(bound.arguments[parameter]).expanduser().resolve()
            with output_directory(final, overwrite=overwrite) as tmp:
                bound.arguments[parameter] = tmp
                result = func(*bound.args, **bound.kwargs)
            return _retarget(result, tmp, final)

        return wrapper

    return decorate


def check_replaceable(path: str | Path, *, overwrite: bool = False) -> None:
    """Refuse to replace an existing ``path`` outside a command's output folder unless ``overwrite``."""
    final = Path(path)
    if not _inside_active(final.expanduser().resolve()) and final.exists() and not overwrite:
        raise InputError(f"'{final}' exists; layerscope does not replace files it may not have written: "
                         "choose another file name (or pass overwrite=True)")


@contextmanager
def atomic_file(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """A temporary path to write one file to; it becomes ``path`` only if the block succeeds.

    Outside an :func:`output_directory` block an existing ``path`` is replaced only with
    ``overwrite=True`` (the caller vouches that it is not somebody else's file).
    """
    final = Path(path)
    check_replaceable(final, overwrite=overwrite)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=final.suffix, dir=final.parent)
    except OSError as err:
        raise _write_error(final.parent, err) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(0o666 & ~_umask())  # mkstemp makes it private; results are ordinary files
        os.replace(tmp, final)
    except OSError as err:
        if err.errno in _WRITE_ERRNOS:
            raise _write_error(final.parent, err) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)


def write_table(table: pd.DataFrame, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a table as CSV (``.csv``) or Parquet (``.parquet``), atomically (see :func:`atomic_file`)."""
    path = Path(path)
    if path.suffix not in (".csv", ".parquet"):
        raise InputError(f"cannot write a table to '{path}': use a .csv or .parquet file name")
    with atomic_file(path, overwrite=overwrite) as tmp:
        if path.suffix == ".csv":
            table.to_csv(tmp, index=False)
        else:
            table.to_parquet(tmp, index=False)
    return path


def _json_default(value: Any) -> Any:
    plain = json_plain(value)
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
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return _finite(value.item())
    return value


def write_json(obj: Any, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``obj`` as indented JSON (NaN written as null), atomically (see :func:`atomic_file`)."""
    path = Path(path)
    text = json.dumps(_finite(json_plain(obj)), indent=2, default=_json_default, allow_nan=False)
    with atomic_file(path, overwrite=overwrite) as tmp:
        tmp.write_text(text + "\n")
    return path


def write_summary(out_dir: str | Path, summary: dict[str, Any], provenance: Provenance) -> Path:
    """Write ``summary.json`` (with the provenance embedded) and ``provenance.json`` into ``out_dir``.

    Outside a command, ``out_dir`` follows the output contract (:func:`output_directory`).
    """
    with output_directory(out_dir) as tmp:
        write_json(provenance.to_dict(), tmp / "provenance.json")
        path = write_json({**summary, "provenance": provenance.to_dict()}, tmp / "summary.json")
    return Path(out_dir) / path.name
