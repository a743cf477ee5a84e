"""Measurement only, not adopted (docs/validation.md "tomoenv"): scripts/validate_tomo_independent.py with the envelope
closing of ``TomoOptions(crack_max_width_nm=W * VOXEL_NM)`` (closing radius ceil(W / 2)).

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 10 python scripts/tomoenv_variant_close_independent.py 8 --seeds 1:25 --out X.csv
"""
import functools, sys, runpy
import layerscope.tomo as lt
sys.path.insert(0, 'scripts')
W = float(sys.argv.pop(1))
src = open('scripts/validate_tomo_independent.py').read()
ns = {'__name__': 'indep', '__file__': 'scripts/validate_tomo_independent.py'}
exec(compile(src, 'scripts/validate_tomo_independent.py', 'exec'), ns)
lt.TomoOptions = functools.partial(lt.TomoOptions, crack_max_width_nm=W * ns['VOXEL_NM'])
sys.exit(ns['main'](sys.argv[1:]))
