"""imgspeed4 (issue 19): the validator's rows with the residual pass's splat blur cut at REACH widths (measured).

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src .venv/bin/python scripts/imgspeed4_splat_reach.py REACH SEEDS CACHE ROWS.csv

``columns.SPLAT_REACH_WIDTHS`` set to REACH, then ``scripts/imgfresh_cached_draws.py run --seed-list SEEDS``.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import imgfresh_cached_draws as F  # noqa: E402
from layerscope.imaging import columns as C  # noqa: E402

if __name__ == "__main__":
    C.SPLAT_REACH_WIDTHS = float(sys.argv[1])
    F.run([int(s) for s in sys.argv[2].split(",")], Path(sys.argv[3]), Path(sys.argv[4]))
