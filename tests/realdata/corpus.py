"""The real-data corpus: one row per real file in ``../shared/data``.

Each domain keeps its rows in ``tests/realdata/rows_<domain>.py`` as a list ``ROWS`` of
:class:`Row`. ``test_corpus.py`` collects them, fails when a file in ``../shared/data`` has no
row (so new real data is covered the day it arrives), and runs every row as a user would run the
command line: ``layerscope <args>`` in-process through :func:`layerscope.cli.run`, with ``{file}``
replaced by the file's absolute path, ``{dir}`` by its folder and ``{out}`` by a fresh output folder.

A row expects one of:

* ``"ok"``: exit status 0, then ``check(out_dir, stdout)`` asserts plausibility of the key numbers,
  preferably against an independent computation (a plain SciPy fit, pandas, scikit-image).
* ``"refused"``: exit status 2 with exactly one line on stderr, ``layerscope: error: ...``,
  matching the regular expression ``message``, no traceback, and nothing written to ``{out}``.
* ``"companion"``: the file is read together with another file's row (``of``), e.g. a low loss
  next to its core loss, a metadata file, a reference structure; ``why`` says how it is used.

Documentation files (LICENSE*, README*, MANIFEST.md, licence notes) need no row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

#: File names that are documentation, not data.
DOC_PATTERNS = ("LICENSE*", "License*", "README*", "MANIFEST.md")


@dataclass(frozen=True)
class Row:
    """One real file and what a user running layerscope on it must see.

    Parameters
    ----------
    path : str
        The file, relative to ``../shared/data`` (posix separators).
    args : sequence of str
        The command line after ``layerscope`` (``{file}``, ``{dir}``, ``{out}`` are filled in);
        empty for a companion.
    expect : str
        ``"ok"``, ``"refused"`` or ``"companion"``.
    check : callable, optional
        ``check(out_dir: Path, stdout: str) -> None`` for ``"ok"`` rows; asserts with tolerances.
    message : str, optional
        Regular expression the refusal line must match (``"refused"`` rows).
    of : str, optional
        The row (path) that reads this companion file.
    why : str
        What is checked and why (shown in docs/validation.md's "Real data" table).
    slow : bool
        Marks a row that takes more than ~20 s (still run in CI).
    """

    path: str
    args: Sequence[str] = ()
    expect: str = "ok"
    check: Optional[Callable[[Path, str], None]] = None
    message: Optional[str] = None
    of: Optional[str] = None
    why: str = ""
    slow: bool = False
    extra: dict = field(default_factory=dict)
