"""imgspeed4 (issue 19): the arguments of the wide path's expensive calls on the benchmark's 2048² image, pickled.

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src .venv/bin/python scripts/imgspeed4_capture.py WIDE.npy OUT.pkl

One `analyse`; the first call of `columns.refine_jointly` (``phases``' joint fit) and of `columns.residual_columns`
and `columns.lattice_columns` (the wide evidence) are recorded with their arguments, for timing them alone.
"""
from __future__ import annotations

import pickle
import sys

from layerscope.imaging import columns as C
from layerscope.imaging import pipeline as P
from layerscope.imaging.options import PhasesOptions, image_input

CALLS = ("refine_jointly", "residual_columns", "lattice_columns")


def main() -> None:
    seen: dict = {}
    for name in CALLS:
        plain = getattr(C, name)

        def wrapped(*a, _plain=plain, _name=name, **k):
            seen.setdefault(_name, (a, k))
            return _plain(*a, **k)

        setattr(C, name, wrapped)
    P.analyse(image_input(sys.argv[1], pixel_size_nm=0.01), PhasesOptions())
    with open(sys.argv[2], "wb") as fh:
        pickle.dump(seen, fh)
    print({k: len(v[0]) for k, v in seen.items()})


if __name__ == "__main__":
    main()
