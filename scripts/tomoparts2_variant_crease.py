"""Measurement only, off by default (docs/validation.md "tomoparts2"): the draw validator with the crease split of
touching particles on (``segment.CREASE_SPLIT = C``; in memory, the draws' path).

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 10 python scripts/tomoparts2_variant_crease.py 0.25 --seeds 0:50 --jobs 2 --out X.csv
"""
import runpy
import sys

import layerscope.tomo.segment as sg

sg.CREASE_SPLIT = float(sys.argv.pop(1))
sys.argv[0] = 'scripts/validate_tomo_draws.py'
runpy.run_path('scripts/validate_tomo_draws.py', run_name='__main__')
