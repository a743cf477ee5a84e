#!/usr/bin/env python
"""Per cracked truth particle of random draws (helper tomocvf7): the crack volume read by `measure._deficit` (base) and
by variants with the truth grey levels (truelev), the draw's true blur (trueblur, grey draws), the region grown 2
voxels more (pad+2), the truth particle as the reference shape (tpart) and both (tpart_tblur), each as crack volume /
truth crack voxels - 1; dP, dE: the levels P and E used, minus the truth, over the contrast::

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/tomo_cvf_variants.py 6014 6038
"""
import sys
import numpy as np, pandas as pd
from scipy import ndimage as ndi
import layerscope.tomo.measure as M
from layerscope.tomo.analysis import TomoOptions, analyse
from layerscope.tomo.phantom import draw_volume, random_phantom
from layerscope.tomo.scoring import _particle_scores

CTX = {}
REC = []
_orig = M._deficit

def variant(fid, feats, plabels, owner, boxes, depth, grey, levels, blur_voxels=1.0, open_=False, offset=(0,0,0), gap=frozenset(), *, P=None, E=None, truthpart=False, pad_extra=0):
    pad = 8 if open_ else 4
    sl = M._grown(boxes[0], pad, feats.shape)
    if M.GAP_JOIN_DEPTH is not None and gap:
        wide = M._grown(boxes[0], pad + 8, feats.shape)
        got = np.argwhere(M._gap_part(feats[wide] == fid, feats[wide], gap, plabels[wide] == owner, depth[wide]))
        if len(got):
            lo, hi = got.min(axis=0) + [w.start for w in wide], got.max(axis=0) + [w.start for w in wide] + 1
            sl = M._grown(tuple(slice(min(s.start, a), max(s.stop, b)) for s, a, b in zip(boxes[0], lo, hi)), pad, feats.shape)
    f = feats[sl]
    part = plabels[sl] == owner
    mm = (f == fid) | M._gap_part(f == fid, f, gap, part, depth[sl])
    interior = part & (depth[sl] >= 3) & ~ndi.binary_dilation(f > 0, iterations=M.RIM_VOXELS)
    other = ndi.binary_dilation((f > 0) & ~mm, iterations=1)
    if open_:
        hull, others = M._hull(plabels, owner, boxes[1], depth, sl)
        mm = mm | (hull & ~part & ndi.binary_dilation(mm, iterations=3))
        region = (ndi.binary_dilation(mm, iterations=4 + pad_extra) & ndi.binary_dilation(hull, iterations=3) & ~others & ~other) | mm
        part = hull
    else:
        region = (ndi.binary_dilation(mm, iterations=3 + pad_extra) & part & ~other) | mm
    if truthpart:
        tsl = tuple(slice(s.start + o, s.stop + o) for s, o in zip(sl, offset))
        tp = CTX["ph"].particles[tsl]
        ow = np.bincount(tp[plabels[sl] == owner].ravel())
        part = (tp == int(ow.argmax())) & ~M._hull(plabels, owner, boxes[1], depth, sl)[1] if open_ else (tp == int(ow.argmax()))
    p_level = float(np.median(grey[sl][interior])) if interior.sum() > 20 else levels["particle"]
    e_level = levels["epoxy"]
    if P is not None: p_level = P
    if E is not None: e_level = E
    ref = e_level + (p_level - e_level) * ndi.gaussian_filter(part.astype(np.float32), blur_voxels)
    missing = (ref[region] - grey[sl][region]) / max(p_level - e_level, 1e-12)
    coords = np.argwhere(region).astype(float) + [s.start + o for s, o in zip(sl, offset)]
    return coords, missing, p_level, e_level

def rec(fid, feats, plabels, owner, boxes, depth, grey, levels, blur_voxels=1.0, open_=False, offset=(0,0,0), gap=frozenset()):
    c, m, b = _orig(fid, feats, plabels, owner, boxes, depth, grey, levels, blur_voxels, open_, offset, gap)
    a = (fid, feats, plabels, owner, boxes, depth, grey, levels, blur_voxels, open_, offset, gap)
    d = CTX["d"]
    out = {"base": m.sum()}
    _, m0, p0, e0 = variant(*a)
    out["P_est"], out["E_est"] = p0, e0
    if not d["projected"]:
        _, mv, *_ = variant(*a, P=d["mu_particle"], E=d["mu_epoxy"]); out["truelev"] = mv.sum()
        _, mv, *_ = variant(*a[:8], max(d["blur_voxels"], 0.05), *a[9:]); out["trueblur"] = mv.sum()
    _, mv, *_ = variant(*a, pad_extra=2); out["pad+2"] = mv.sum()
    _, mv, *_ = variant(*a, truthpart=True); out["tpart"] = mv.sum()
    if not d["projected"]:
        _, mv, *_ = variant(*a[:8], max(d["blur_voxels"], 0.05), *a[9:], truthpart=True); out["tpart_tblur"] = mv.sum()
    REC.append((fid, owner, out))
    return c, m, b

def rows(seed):
    REC.clear()
    ph = random_phantom(seed); d = ph.specs["draw"]
    CTX.update(ph=ph, d=d, map={})
    M._deficit = rec
    res = analyse(draw_volume(ph), TomoOptions())
    M._deficit = _orig
    _, mapping = _particle_scores(res, ph)
    crack_fids = set(res.cracks["crack"]) if len(res.cracks) else set()
    out = []
    for t in ph.truth[ph.truth["crack_count"] > 0].itertuples():
        mine = [p for p, q in mapping.items() if q == t.particle]
        tc = int(((ph.particles == t.particle) & (ph.cracks > 0)).sum())
        acc = {}
        lev = []
        for fid, owner, o in REC:
            if owner in mine and fid in crack_fids:
                for k, v in o.items():
                    if k in ("P_est", "E_est"): continue
                    acc[k] = acc.get(k, 0) + v
                lev.append((o["P_est"], o["E_est"]))
        row = {"seed": seed, "p": t.particle, "proj": d["projected"], "blur": round(d["blur_voxels"], 2), "binder": d["binder"], "Tc": tc}
        if lev:
            c = d["mu_particle"] - d["mu_epoxy"]
            row["dP"] = round((np.mean([l[0] for l in lev]) - d["mu_particle"]) / c, 3)
            row["dE"] = round((np.mean([l[1] for l in lev]) - d["mu_epoxy"]) / c, 3)
        row.update({k: round(v / tc - 1, 3) for k, v in acc.items()})
        out.append(row)
    return out

if __name__ == "__main__":
    pd.set_option("display.width", 250)
    for s in sys.argv[1:]:
        print(pd.DataFrame(rows(int(s))).to_string(index=False), flush=True)
