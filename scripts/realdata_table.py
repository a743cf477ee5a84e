"""Print the "Real data" table of docs/validation.md from the corpus rows (tests/realdata/rows_*.py).

Usage: python scripts/realdata_table.py > /tmp/table.md, then paste it under "## Real data" in
docs/validation.md (tests/realdata/test_corpus.py checks that every row's file is named there).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROWS_DIR = HERE.parent / "tests" / "realdata"
for _folder in ("realdata", "imaging", "crystal", "diffraction", "cells", "simulate"):  # pytest's pythonpath
    sys.path.insert(0, str(HERE.parent / "tests" / _folder))


def _rows():
    rows = []
    for path in sorted(ROWS_DIR.glob("rows_*.py")):
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        rows.extend(module.ROWS)
    return sorted(rows, key=lambda r: r.path)


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def main() -> None:
    print("| file | command (after `layerscope`) | outcome | what is checked |")
    print("|---|---|---|---|")
    for r in _rows():
        if r.expect == "companion":
            command, outcome = f"read with `{r.of}`", "companion"
        else:
            args = " ".join(a.replace("{file}", Path(r.path).name).replace("{dir}", str(Path(r.path).parent) + "/")
                            .replace("{out}", "OUT") for a in r.args)
            command = f"`{args}`"
            outcome = "refused" if r.expect == "refused" else "runs"
        print(f"| `{r.path}` | {_cell(command)} | {outcome} | {_cell(r.why)} |")


if __name__ == "__main__":
    main()
