"""Measurement only, not adopted (docs/validation.md "tomoenv"): the draw validator with the envelope closing of
``TomoOptions(crack_max_width_nm=W * 50)`` (W voxels at the draws' 50 nm voxel; closing radius ceil(W / 2)).

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 10 python scripts/tomoenv_variant_close.py 8 --seeds 0:50 --jobs 2 --out X.csv
"""
import functools, sys, runpy
import layerscope.tomo.analysis as an
width_vox = float(sys.argv.pop(1))
an.TomoOptions = functools.partial(an.TomoOptions, crack_max_width_nm=width_vox * 50.0)
sys.argv[0] = 'scripts/validate_tomo_draws.py'
runpy.run_path('scripts/validate_tomo_draws.py', run_name='__main__')
