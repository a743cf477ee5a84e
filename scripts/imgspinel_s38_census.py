#!/usr/bin/env python
"""Census of spinel segments read uncertain or wrong (base) and what the block reading does (switch on).
python census.py OUT.csv CACHE [CACHE...]; rows: every scored spinel-truth segment not right off or on."""
import pickle, sys
from pathlib import Path
import numpy as np, pandas as pd
import layerscope.imaging.interlayers as il
from layerscope.simulate.validation import segment_truth, AMBIGUOUS_FILL
store = {}
orig = il.spinel_block_decisions
def spy(li, key, table, threshold, systematic, d):
    store.update(li=li.copy(), key=key, table=table.copy(), sys=systematic, d=d)
    return orig(li, key, table, threshold, systematic, d)
il.spinel_block_decisions = spy
rows = []
for cache in sys.argv[2:]:
    for fp in sorted(Path(cache).glob("*.pkl"), key=lambda f: int(f.stem)):
        blob = pickle.loads(fp.read_bytes()); c = blob["columns"]; truth = blob["truth"]
        if not (truth.sites["phase"] == "spinel").any():
            continue
        ts = truth.sites[truth.sites["in_image"].astype(bool)]
        txy = ts[["x_nm", "y_nm"]].to_numpy(float)
        res = {}
        for on in (False, True):
            il.SPINEL_BLOCK_POOL = on; store.clear()
            t = il.interlayer_table(c.copy())
            res[on] = segment_truth(c, t, truth)
        s0, s1 = res[False], res[True]
        ok = (s0["n_matched"] > 0) & s0["on_li_layer"].astype(bool) & (s0["truth_phase"] == "spinel") \
             & ((s0["truth_fill"] - 0.1).abs() >= AMBIGUOUS_FILL)
        if not ok.any():
            continue
        want = np.where(s0["truth_fill"] >= 0.1, "yes", "no")
        blocks = il.spinel_blocks(store["table"], store["d"]) if store else np.full(len(s0), -1)
        layo = il.layered_offset(store["table"]) if store else (np.nan, np.nan)
        p = truth.parameters
        for i in np.flatnonzero(ok.to_numpy()):
            r0, r1 = s0.iloc[i], s1.iloc[i]
            if r0["mixing"] == want[i] and r1["mixing"] == want[i]:
                continue
            near = np.argmin(np.hypot(*(txy - np.array([r0["x_nm"], r0["y_nm"]])).T))
            e = np.hypot(r0["li_fill_count_sem"], r0["fill_systematic"])
            rows.append(dict(seed=int(fp.stem), dose=p["dose_e_per_A2"], probe_nm=p["probe_fwhm_nm"], chem=p["chemistry"],
                             li_layer=r0["li_layer"], segment=r0["segment"], n_sites=r0["n_sites"], environment=r0["environment"],
                             li_fill=r0["li_fill"], li_fill_sem=r0["li_fill_sem"], count_sem=r0["li_fill_count_sem"],
                             systematic=r0["fill_systematic"], z_own=(r0["li_fill"] - 0.1) / e, mixing_sites=r0["mixing_sites"],
                             clean_level=r0["clean_level"], truth_fill=r0["truth_fill"], want=want[i], off=r0["mixing"],
                             on=r1["mixing"], on_sites=r1["mixing_sites"], block=int(blocks[i]) if i < len(blocks) else -1,
                             layered_offset=layo[0], edge_nm=ts["edge_nm"].iloc[near], wedge=ts["wedge_factor"].iloc[near], cache=Path(cache).name))
        print(fp.stem, len(rows), flush=True)
pd.DataFrame(rows).to_csv(sys.argv[1], index=False, float_format="%.5g")
