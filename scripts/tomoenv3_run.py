#!/usr/bin/env python
"""The tomography validator with ``segment`` constants set first (helper tomoenv3, docs/validation.md "tomoenv3")::

    PYTHONPATH=src python scripts/tomoenv3_run.py WIDER_CLOSE_VOXELS=2 -- --seeds 14000:14100 --jobs 1 --out X.csv

Each ``NAME=VALUE`` before ``--`` is a Python literal set on :mod:`layerscope.tomo.segment` in this process (run with
``--jobs 1``: worker processes would not see it); the rest goes to ``validate_tomo_draws.py``.
"""
import ast
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate_tomo_draws import main  # noqa: E402

from layerscope.tomo import segment  # noqa: E402

if __name__ == "__main__":
    cut = sys.argv.index("--")
    for item in sys.argv[1:cut]:
        name, value = item.split("=", 1)
        if not hasattr(segment, name):
            raise SystemExit(f"segment has no {name}")
        setattr(segment, name, ast.literal_eval(value))
    raise SystemExit(main(sys.argv[cut + 1:]))
