"""imgspeed4 (issue 19): two caches of ``scripts/imgfresh_cached_draws.py run`` compared draw by draw, every value.

    .venv/bin/python scripts/imgspeed4_cache_compare.py CACHE_A CACHE_B

Per draw cached in both: the column table (every column; floats bit for bit, NaN equal to NaN), the spacings, the
layer normal and period, the twin count and the run's notes. Prints the draws compared and any that differ.
"""
from __future__ import annotations

import pickle
import sys
from pathlib import Path

from imgspeed4_outputs import _equal


def main() -> None:
    a, b = Path(sys.argv[1]), Path(sys.argv[2])
    seeds = sorted({p.stem for p in a.glob("*.pkl")} & {p.stem for p in b.glob("*.pkl")}, key=int)
    bad = {}
    for s in seeds:
        x, y = (pickle.load(open(d / f"{s}.pkl", "rb")) for d in (a, b))
        keys = [k for k in x if k != "truth" and not _equal(x[k], y[k])]
        if keys:
            bad[s] = keys
    cols = len(pickle.load(open(a / f"{seeds[0]}.pkl", "rb"))["columns"].columns) if seeds else 0
    print(f"{len(seeds)} draws compared ({cols} table columns); differing: {bad or 'none'}")


if __name__ == "__main__":
    main()
