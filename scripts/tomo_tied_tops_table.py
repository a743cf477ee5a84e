#!/usr/bin/env python
"""Before/after table of ``segment.TIED_TOPS`` from ``tomo_tied_tops_pair.py`` rows (helper tomosplit).

Arguments: a main CSV of the range (the validator's rows: the draws the switch leaves alone, equal by construction)
and one or more OUT prefixes of the pair script (``OUT_off.csv`` / ``OUT_on.csv``, full or ``--screen`` rows).
Prints per target the share off -> on over the draws in the pair rows (main's row where a draw was screened
unchanged) and the draws that got better or worse; ``--save PREFIX`` writes the merged on/off rows of the
draws the switch changed to PREFIX_off.csv / PREFIX_on.csv::

    python scripts/tomo_tied_tops_table.py docs/data/tomo_draws_9000_9099_session29_main.csv /tmp/p9000 /tmp/s9042
"""
import argparse

import pandas as pd

from layerscope.tomo.scoring import TARGETS, meets


def load(prefixes: list[str], side: str) -> pd.DataFrame:
    return pd.concat([pd.read_csv(f"{p}_{side}.csv") for p in prefixes]).drop_duplicates("seed").set_index("seed")


def table(main: pd.DataFrame, off: pd.DataFrame, on: pd.DataFrame) -> list[str]:
    seeds = sorted(off.index)
    changed = [s for s in seeds if off.loc[s, "tied_joins"] > 0]
    lines = [f"draws {len(seeds)} ({seeds[0]}-{seeds[-1]}), the switch joins seeds in {len(changed)}: {changed}"]
    for t in TARGETS:
        def val(df, s):  # a screened draw (no scores: the switch joined nothing) takes main's row
            return main.loc[s, t] if df.loc[s].get("screened") == True else df.loc[s, t]  # noqa: E712
        b = [meets(val(off, s), t) for s in seeds]
        a = [meets(val(on, s), t) for s in seeds]
        nb, na = [x for x in b if x is not None], [x for x in a if x is not None]
        better = [s for s, x, y in zip(seeds, b, a) if x is False and y is True]
        worse = [s for s, x, y in zip(seeds, b, a) if x is True and y is False]
        lines.append(f"{t}: {sum(nb)}/{len(nb)} = {sum(nb) / len(nb):.2f} -> {sum(na)}/{len(na)} = {sum(na) / len(na):.2f}"
                     f"  better {better} worse {worse}")
    return lines


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("main")
    ap.add_argument("pairs", nargs="+")
    ap.add_argument("--save")
    a = ap.parse_args()
    main = pd.read_csv(a.main).set_index("seed")
    off, on = load(a.pairs, "off"), load(a.pairs, "on")
    print("\n".join(table(main, off, on)))
    if a.save:
        for name, df in (("off", off), ("on", on)):
            df[df["tied_joins"] > 0].to_csv(f"{a.save}_{name}.csv")
