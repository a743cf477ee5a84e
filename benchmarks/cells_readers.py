"""Cycler readers vs the bare parsers they wrap, side by side in one process.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cells_readers.py
Prints, per real file of ../shared/data/cycling, the time of layerscope's read_cycler (parse + map
+ undo counter resets + tidy table) and of the bare parse (NewareNDA.read, pandas.read_csv,
mdb-export + pandas), and their ratio (best of 3).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from io import StringIO
from pathlib import Path

import pandas as pd

from layerscope.cells import read_cycler

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cycling"


def best(func, n=3):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    import NewareNDA

    cases = [
        ("neware/test_2.ndax", lambda p: NewareNDA.read(str(p))),
        ("neware/TestFile.nda", lambda p: NewareNDA.read(str(p))),
        ("beep/xTESLADIAG_000019_CH70.070", lambda p: pd.read_csv(p, sep="\t", skiprows=1, low_memory=False)),
        ("beep/test_loopsnewoutput_MB_CE1_short10k.csv", lambda p: pd.read_csv(p, sep=";", low_memory=False)),
        ("cellpy/neware_uio.csv", lambda p: pd.read_csv(p)),
    ]
    if shutil.which("mdb-export"):
        cases.append(("cellpy/20160805_test001_45_cc_01.res", lambda p: pd.read_csv(StringIO(subprocess.run(
            ["mdb-export", str(p), "Channel_Normal_Table"], capture_output=True, text=True, check=True).stdout))))
    print(f"{'file':48s} {'records':>8s} {'layerscope s':>13s} {'bare parse s':>13s} {'ratio':>6s}")
    for rel, bare in cases:
        path = DATA / rel
        n = len(read_cycler(path).data)
        ours = best(lambda: read_cycler(path))
        anchor = best(lambda: bare(path))
        print(f"{rel:48s} {n:8d} {ours:13.3f} {anchor:13.3f} {ours / anchor:6.2f}")


if __name__ == "__main__":
    main()
