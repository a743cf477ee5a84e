"""Every real file in ../shared/data, run as a user would run it (see corpus.py for the row format)."""

from __future__ import annotations

import fnmatch
import importlib.util
import re
from pathlib import Path

import pytest

from corpus import DOC_PATTERNS, Row

HERE = Path(__file__).parent
SHARED = HERE.parents[1].parent / "shared" / "data"


def _load_rows() -> list[Row]:
    rows: list[Row] = []
    for mod_path in sorted(HERE.glob("rows_*.py")):
        spec = importlib.util.spec_from_file_location(mod_path.stem, mod_path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        rows.extend(module.ROWS)
    return rows


ROWS = _load_rows()
BY_PATH = {r.path: r for r in ROWS}


def _data_files() -> list[str]:
    files = []
    for p in sorted(SHARED.rglob("*")):
        if p.is_file() and not any(fnmatch.fnmatch(p.name, pat) for pat in DOC_PATTERNS):
            files.append(p.relative_to(SHARED).as_posix())
    return files


def test_every_real_file_has_exactly_one_row():
    assert SHARED.is_dir(), f"the shared data folder {SHARED} is missing"
    paths = [r.path for r in ROWS]
    duplicated = sorted({p for p in paths if paths.count(p) > 1})
    assert not duplicated, f"files with more than one row: {duplicated}"
    missing = [f for f in _data_files() if f not in BY_PATH]
    assert not missing, f"real files without a row in tests/realdata/rows_*.py: {missing}"
    stale = [p for p in BY_PATH if not (SHARED / p).is_file()]
    assert not stale, f"rows for files that are not in ../shared/data: {stale}"


def test_companions_point_at_a_running_row():
    for row in ROWS:
        if row.expect == "companion":
            assert row.of in BY_PATH and BY_PATH[row.of].expect != "companion", row.path
            assert row.why, f"{row.path}: say how the companion file is used"


def _fill(args, row: Row, out: Path) -> list[str]:
    f = SHARED / row.path
    return [a.replace("{file}", str(f)).replace("{dir}", str(f.parent)).replace("{out}", str(out)) for a in args]


RUNNABLE = [r for r in ROWS if r.expect != "companion"]


@pytest.mark.parametrize("row", RUNNABLE, ids=[r.path for r in RUNNABLE])
def test_real_file(row: Row, tmp_path, capsys):
    from layerscope.cli import run

    out = tmp_path / "out"
    code = run(_fill(row.args, row, out))
    captured = capsys.readouterr()
    if row.expect == "ok":
        assert code == 0, f"{row.path}: exit {code}: {captured.err.strip()}"
        assert "Traceback" not in captured.err
        if row.check is not None:
            row.check(out, captured.out)
    elif row.expect == "refused":
        assert code == 2, f"{row.path}: expected a refusal, got exit {code}: {captured.err.strip()}"
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("layerscope: error: "), captured.err
        assert re.search(row.message or ".", lines[0]), lines[0]
        assert not out.exists(), "a refused run must write nothing"
    else:
        raise AssertionError(f"{row.path}: unknown expectation {row.expect!r}")


def test_every_row_is_in_the_validation_table():
    text = (HERE.parents[1] / "docs" / "validation.md").read_text()
    missing = [r.path for r in ROWS if f"`{r.path}`" not in text]
    assert not missing, f"regenerate the table with scripts/realdata_table.py: {missing}"
