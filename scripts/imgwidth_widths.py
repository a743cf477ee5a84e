#!/usr/bin/env python
"""The generic finder's shared column width on random draws, one height per window against every height free
(issue 19, imgwidth): per draw the width :func:`layerscope.imaging.columns._found_width` reads with
``WIDTH_HEIGHTS_FREE`` off and on (:data:`VARIANTS`; the same found columns; ``WIDTH_JOINT_ROUNDS`` 1, a third
reading, left the library after 58667bb), the true widths (probe alone; probe and source blur in quadrature) and
the seconds each measurement took::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src nice -n 10 .venv/bin/python scripts/imgwidth_widths.py \\
        --seed-list 181,79 --out docs/data/imgwidth_widths_wide_tuning.csv
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

#: (name, ``WIDTH_HEIGHTS_FREE``) of each reading
VARIANTS = (("before", False), ("after", True))


def widths(seed: int) -> dict:
    """The two readings of the generic finder's first call of ``_found_width`` on draw ``seed``."""
    from layerscope.imaging import columns
    from layerscope.imaging.generic import ColumnsOptions, analyse
    from layerscope.simulate.draws import draw_parameters, draw_scene

    image, px, _ = draw_scene(seed)
    p = draw_parameters(seed)
    plain, seen = columns._found_width, {}
    switch = columns.WIDTH_HEIGHTS_FREE

    def both(data, fit):
        if not seen:
            for name, on in VARIANTS:
                columns.WIDTH_HEIGHTS_FREE = on
                t0 = time.perf_counter()
                seen[name] = (plain(data, fit) * px, time.perf_counter() - t0)
            seen["n"] = int(fit["fit_ok"].sum())
        columns.WIDTH_HEIGHTS_FREE = switch
        return plain(data, fit)

    columns._found_width = both
    try:
        analyse(image, ColumnsOptions(), pixel_size_nm=px)
    except Exception as err:  # a refusal: no width
        seen.setdefault("error", type(err).__name__)
    finally:
        columns._found_width = plain
        columns.WIDTH_HEIGHTS_FREE = switch
    probe = p["probe_fwhm_nm"] / 2.3548200450309493
    total = (p["probe_fwhm_nm"] ** 2 + p["source_fwhm_nm"] ** 2) ** 0.5 / 2.3548200450309493
    row = {"seed": seed, "dose_e_per_A2": p["dose_e_per_A2"], "pixel_size_nm": px, "probe_sigma_nm": probe,
           "probe_source_sigma_nm": total}
    if "before" in seen:
        for name, _ in VARIANTS:
            row[f"width_{name}_nm"], row[f"seconds_{name}"] = seen[name]
        row["columns"] = seen["n"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-list", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rows = []
    for s in (int(v) for v in args.seed_list.split(",")):
        rows.append(widths(s))
        print(rows[-1], flush=True)
    pd.DataFrame(rows).to_csv(args.out, index=False, float_format="%.6g")


if __name__ == "__main__":
    main()
