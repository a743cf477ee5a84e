#!/usr/bin/env python
"""Per captured call of ``columns.measure_width_heights_free`` (scripts/imgwspeed_capture.py): the width and its CPU
(``time.process_time``, median of ROUNDS) with each ``WIDTH_HEIGHTS_REACH`` of :data:`V`, interleaved in one process,
and the relative change from the full reading (issue 19, imgwspeed)::

    OMP_NUM_THREADS=1 PYTHONPATH=$PWD/src nice -n 10 .venv/bin/python scripts/imgwspeed_widths.py 181,5083 3 DIR \
        > docs/data/imgwspeed_widths_wide_tuning.csv
"""
import pickle, sys, time
import numpy as np
from layerscope.imaging import columns as C
V = {"full": None, "reach5": 5.0, "reach4": 4.0, "reach3": 3.0}
names = sys.argv[1].split(","); rounds = int(sys.argv[2]); where = sys.argv[3]
print("seed,columns,sites," + ",".join(f"width_{v}_px,cpu_{v}_s" for v in V) + "," + ",".join(f"rel_{v}" for v in V if v != "full"))
for name in names:
    a, k, out = pickle.load(open(f"{where}/args_{name}.pkl", "rb"))[0]
    W, T = {}, {v: [] for v in V}
    for _ in range(rounds):
        for v, reach in V.items():
            C.WIDTH_HEIGHTS_REACH = reach
            t = time.process_time(); W[v] = C.measure_width_heights_free(*a, **k); T[v].append(time.process_time() - t)
    assert W["full"] == out, (W["full"], out)  # the capture's own full reading
    print(f"{name},{len(a[3])},{len(a[1])}," + ",".join(f"{W[v]!r},{np.median(T[v]):.4f}" for v in V) + ","
          + ",".join(f"{(W[v] - W['full']) / W['full']:.3g}" for v in V if v != "full"), flush=True)
