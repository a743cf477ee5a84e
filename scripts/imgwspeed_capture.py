#!/usr/bin/env python
"""The arguments of the generic finder's first ``measure_width_heights_free`` call on random draws, pickled for
scripts/imgwspeed_widths.py (issue 19, imgwspeed)::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src nice -n 10 .venv/bin/python scripts/imgwspeed_capture.py 181,5083 DIR
"""
import pickle, sys
from layerscope.imaging import columns
from layerscope.imaging.generic import ColumnsOptions, analyse
from layerscope.simulate.draws import draw_scene
class Got(Exception): pass
plain = columns.measure_width_heights_free
for seed in sys.argv[1].split(","):
    calls = []
    def cap(*a, **k):
        columns.WIDTH_HEIGHTS_REACH = None  # the full reading's width kept with the arguments
        calls.append((a, k, plain(*a, **k))); raise Got
    columns.measure_width_heights_free = cap
    if seed == "bench":  # benchmarks/imaging_speed.py's 2048^2 O3 image under a 0.15 nm probe
        sys.path.insert(0, "benchmarks")
        from imaging_speed import PX as px, make_image
        img = make_image(probe_fwhm_nm=0.15)
    else:
        img, px, _ = draw_scene(int(seed))
    try:
        analyse(img, ColumnsOptions(), pixel_size_nm=px)
    except Got:
        pass
    except Exception as e:
        print(seed, "error", e)
    if calls:
        pickle.dump(calls, open(f"{sys.argv[2]}/args_{seed}.pkl", "wb"))
        print(seed, calls[0][2], len(calls[0][0][1]), len(calls[0][0][3]), flush=True)
    else:
        print(seed, "no call", flush=True)
