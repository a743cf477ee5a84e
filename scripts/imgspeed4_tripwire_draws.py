"""imgspeed4 (issue 19): which random draws reach the code imgspeed4 changed -- the validator's run with a tripwire.

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src .venv/bin/python scripts/imgspeed4_tripwire_draws.py SEEDS CACHE ROWS.csv CALLS.csv

``SEEDS`` as ``A:B`` (half-open). ``scripts/imgfresh_cached_draws.py run`` (``score_draw``: ``phases`` and the generic
finder) with ``columns._joint_windows``, ``_coarse_median``, ``_line_strips``, ``refine_jointly`` and
``residual_columns`` counted per draw (``CALLS.csv``: one row per draw). A draw that calls none of them ran exactly
the base's code, so its row is the base's; only the others need a base run to compare.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import imgfresh_cached_draws as F  # noqa: E402
from layerscope.imaging import columns as C  # noqa: E402
from layerscope.simulate import validation  # noqa: E402

NAMES = ("_joint_windows", "_coarse_median", "_line_strips", "refine_jointly", "residual_columns")


def main() -> None:
    a, b = (int(v) for v in sys.argv[1].split(":"))
    counts: dict[int, dict[str, int]] = {}
    seed = {"now": None}
    for name in NAMES:
        plain = getattr(C, name)

        def wrapped(*args, _plain=plain, _name=name, **kw):
            row = counts.setdefault(seed["now"], {})
            row[_name] = row.get(_name, 0) + 1
            return _plain(*args, **kw)

        setattr(C, name, wrapped)
    plain_draw = validation.draw_scene

    def draw(s, ranges=None):
        seed["now"] = s
        counts.setdefault(s, {})
        return plain_draw(s, ranges)

    validation.draw_scene = draw
    F.run(list(range(a, b)), Path(sys.argv[2]), Path(sys.argv[3]))
    pd.DataFrame([{"seed": s, **{n: c.get(n, 0) for n in NAMES}} for s, c in sorted(counts.items())]).to_csv(
        sys.argv[4], index=False)


if __name__ == "__main__":
    main()
