#!/usr/bin/env python
"""The tomography draw validator on a list of seeds (issue 20, helper tomomerge2; docs/validation.md "tomomerge2"):
``scripts/validate_tomo_draws.py``'s rows for the named draws, with ``segment.LOW_TOPS`` as given (0: off)::

    PYTHONPATH=src python scripts/tomomerge2_named.py --low-tops 0.5 --out rows.csv 12014 12038
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validate_tomo_draws import run  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("seeds", type=int, nargs="+")
    ap.add_argument("--low-tops", type=float, default=None, help="segment.LOW_TOPS (0: off; default: the module's)")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    run(a.seeds, 1, a.out, extension="default", low_tops=a.low_tops)


if __name__ == "__main__":
    main()
