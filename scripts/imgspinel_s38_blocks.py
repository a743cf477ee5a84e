#!/usr/bin/env python
"""Per draw: spinel block's empty-sublattice reading vs the image's clean layered level (signed)."""
import pickle, sys
from pathlib import Path
import numpy as np
import layerscope.imaging.interlayers as il
cache = Path(sys.argv[1])
store = {}
orig = il.spinel_block_decisions
def spy(li, key, table, threshold, systematic, d):
    store.update(li=li.copy(), key=key, table=table.copy(), sys=systematic, d=d)
    return orig(li, key, table, threshold, systematic, d)
il.spinel_block_decisions = spy
il.SPINEL_BLOCK_POOL = True
for fp in sorted(cache.glob("*.pkl"), key=lambda f: int(f.stem)):
    blob = pickle.loads(fp.read_bytes()); c = blob["columns"]
    if not ("environment" in c and ((c["kind"] == "Li") & (c["environment"] == "spinel")).any()): continue
    store.clear(); il.interlayer_table(c.copy())
    if not store: continue
    li, key, t = store["li"], store["key"], store["table"]
    sel = (t.environment == "layered") & (t.mixing == "no") & t.li_fill_count_sem.gt(0)
    w = 1 / t.li_fill_count_sem[sel] ** 2
    lvl, lsem = (np.sum(w * t.li_fill[sel]) / w.sum(), 1 / np.sqrt(w.sum())) if sel.sum() >= 3 else (np.nan, np.nan)
    m, e, ref = (li[x].to_numpy(float) for x in ("mixing", "mixing_sem", "tm_reference"))
    ok = np.isfinite(m) & np.isfinite(e) & np.isfinite(ref) & (ref > 0)
    wt = np.where(ok, (ref / np.median(e[ok] * ref[ok])) ** 2, 0.0)
    blocks = il.spinel_blocks(t, store["d"])
    p = blob["truth"].parameters
    for b in np.unique(blocks[blocks >= 0]):
        rows = np.flatnonzero(blocks == b)
        q = ok & np.isin(key, rows)
        dark = li["dark_sublattice"].fillna(False).to_numpy(bool)
        r = []
        for on in (False, True):
            qq = q & (dark == on); W = wt[qq].sum()
            r.append((np.sum(wt[qq] * m[qq]) / W, np.sqrt(np.sum((wt[qq] * e[qq]) ** 2)) / W) if W > 0 else (np.nan, np.nan))
        lay = il.layered_offset(t); f, fs, n = il._block_reading(li, q, wt, lay)
        unc = int((t.mixing.to_numpy()[rows] == "uncertain").sum())
        print(f"{fp.stem:>5} dose {p['dose_e_per_A2']:8.3g} probe {p['probe_fwhm_nm']:.3f} blk {b:3d} segs {rows.size:2d} unc {unc:2d} sites {n:3d} "
              f"bright {r[0][0]:6.3f}+-{r[0][1]:.3f} dark {r[1][0]:6.3f}+-{r[1][1]:.3f} fill {f:6.3f}+-{fs:.3f} z {(f-0.1)/np.hypot(fs, store['sys']):5.1f} "
              f"clean {lvl:6.3f}+-{lsem:.3f} n {int(sel.sum())} layered {lay[0]:6.3f}+-{lay[1]:.3f}")
