#!/usr/bin/env python
"""Distance tops and saddles of the 8 merges of 12000-12099 (issue 20, helper tomomerge2; docs/validation.md
"tomomerge2"): for each merged truth particle and the one it merged into, the top of each and the saddle between
them (bisection) in the distance maps of the truth mask, the truth mask closed (radius 3), the envelope and the
envelope closed with radius 4; solid masks cached by ``diagnose_tomo_contacts.py --cache /tmp/tm2/cache``::

    PYTHONPATH=src python scripts/tomomerge2_saddles.py
"""
import numpy as np
from scipy import ndimage as ndi
from layerscope.tomo import segment as sg
C26=np.ones((3,3,3))
def saddle(e, a, b):
    ia = np.unravel_index(np.argmax(np.where(a, e, -1)), e.shape); ib = np.unravel_index(np.argmax(np.where(b, e, -1)), e.shape)
    lo, hi = 0.0, min(e[ia], e[ib])
    for _ in range(14):
        v=(lo+hi)/2; l=ndi.label(e>=v, C26)[0]
        if l[ia]==l[ib] and l[ia]>0: lo=v
        else: hi=v
    return e[ia], e[ib], lo
for s,t,o in [(12014,2,4),(12038,3,1),(12042,6,1),(12057,1,2),(12064,3,1),(12069,5,1),(12077,3,1),(12086,3,5)]:
    z=np.load(f"/tmp/tm2/cache/{s}.npz"); solid, tr = z["solid"], z["truth"]
    env = sg.filled_envelope(sg.closed_envelope(solid, 3)); ee = sg.distance_transform_core(env, slice(None))
    tu = ndi.binary_fill_holes(tr>0); et = sg.distance_transform_core(tu, slice(None))
    tc = sg.filled_envelope(sg.closed_envelope(tr>0, 3)); ec = sg.distance_transform_core(tc, slice(None))
    ew = sg.filled_envelope(sg.closed_envelope(solid, 4)); ew2 = sg.distance_transform_core(ew, slice(None))
    r=[saddle(x, tr==t, tr==o) for x in (et, ec, ee, ew2)]
    print(s, " | ".join(f"{n}: top {a:.1f}/{b:.1f} saddle {c:.1f} dyn {a-c:.1f}" for n,(a,b,c) in zip(["truth","truth+close","env","env close4"], r)), flush=True)
