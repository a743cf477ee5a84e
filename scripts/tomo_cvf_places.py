#!/usr/bin/env python
"""Crack volume of random draws, particle by particle: where the missing crack volume lies (helper tomocvf6).

Runs each draw as ``scripts/validate_tomo_draws.py`` does, with ``measure._deficit`` wrapped to record every
feature's partial-volume region and missing fractions. Per cracked truth particle (voxels): ``Tp``/``Tc`` truth
particle / crack voxels, ``err``/``num``/``den`` as ``scripts/tomo_cvf_particles.py``; ``lost`` truth crack voxels in
no crack's region (``lost_sh`` of them within 2 of the truth surface; ``l_pore`` in a pore feature, ``l_nofeat_env``
in the envelope but in no feature: the gap at a contact or a dropped feature, ``l_noenv`` outside the envelope);
``crk_under`` truth crack voxels in a region minus their summed fractions (partial volume read low); the
fractions summed over region voxels of the truth particle's solid within 2 of its surface (``sol_sh``) and deeper
(``sol_in``), over binder (``o_bind``, ``o_bind_n`` voxels) and epoxy (``o_epx``) outside it; ``missing`` = Tc - read::

    PYTHONPATH=src OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/tomo_cvf_places.py 5022 5067
"""
import sys

import numpy as np
import pandas as pd
from scipy import ndimage as ndi
import layerscope.tomo.measure as M
from layerscope.tomo.analysis import TomoOptions, analyse
from layerscope.tomo.phantom import draw_volume, random_phantom
from layerscope.tomo.scoring import _particle_scores

REC = []
_orig = M._deficit
def rec(fid, feats, plabels, owner, boxes, depth, grey, levels, blur_voxels=1.0, open_=False, offset=(0, 0, 0), gap=frozenset()):
    c, m, b = _orig(fid, feats, plabels, owner, boxes, depth, grey, levels, blur_voxels, open_, offset, gap)
    REC.append((fid, owner, open_, c.astype(int), m))
    return c, m, b
M._deficit = rec

def rows(seed):
    REC.clear()
    ph = random_phantom(seed); d = ph.specs["draw"]
    res = analyse(draw_volume(ph), TomoOptions())
    _, mapping = _particle_scores(res, ph)
    parts = res.particles.set_index("particle")
    crack_fids = set(res.cracks["crack"]) if len(res.cracks) else set()
    tsurf = ndi.distance_transform_edt(ph.particles > 0)
    binder = (ph.particles == 0) & (ph.volume > d["mu_epoxy"] + 1e-6)
    out = []
    for t in ph.truth[ph.truth["crack_count"] > 0].itertuples():
        mine = [p for p, q in mapping.items() if q == t.particle]
        tp = ph.particles == t.particle; tc = tp & (ph.cracks > 0)
        pv = float(sum(parts.loc[p, "volume_voxels"] for p in mine))
        cv = float(sum(parts.loc[p, "volume_voxels"] * parts.loc[p, "crack_volume_fraction"] for p in mine))
        cov = np.zeros(ph.particles.shape, bool)
        acc = dict(crack_n=0, crack_s=0.0, solid_shell=0.0, solid_in=0.0, out_binder=0.0, out_binder_n=0, out_epoxy=0.0, out_other=0.0)
        for fid, owner, op, c, m in REC:
            if owner not in mine or fid not in crack_fids:
                continue
            idx = tuple(c.T)
            cov[idx] = True
            inc = tc[idx]; ins = tp[idx] & ~inc; outp = ~tp[idx]
            acc["crack_n"] += int(inc.sum()); acc["crack_s"] += float(m[inc].sum())
            sh = ins & (tsurf[idx] <= 2)
            acc["solid_shell"] += float(m[sh].sum()); acc["solid_in"] += float(m[ins & ~sh].sum())
            b = outp & binder[idx] & (ph.particles[idx] == 0)
            e = outp & ~binder[idx] & (ph.particles[idx] == 0)
            acc["out_binder"] += float(m[b].sum()); acc["out_binder_n"] += int(b.sum())
            acc["out_epoxy"] += float(m[e].sum()); acc["out_other"] += float(m[outp & (ph.particles[idx] > 0)].sum())
        lost = int((tc & ~cov).sum())
        L = tc & ~cov
        fl = res.feature_labels
        kinds = res.feature_kind
        inpore = L & np.isin(fl, [k for k, v in kinds.items() if v == "pore"])
        incrack = L & np.isin(fl, [k for k, v in kinds.items() if v == "crack"])
        nofeat = L & (fl == 0)
        env = np.isin(res.particle_labels, mine)
        dz = np.argwhere(L)
        extra = dict(l_pore=int(inpore.sum()), l_crackfeat=int(incrack.sum()), l_nofeat_env=int((nofeat & env).sum()),
                     l_noenv=int((L & ~env).sum()), l_othfeat=int((L & (fl > 0) & ~inpore & ~incrack).sum()))
        lost_shell = int((tc & ~cov & (tsurf <= 2)).sum())
        T = int(tc.sum())
        widths = ph.crack_truth.loc[ph.crack_truth["particle"] == t.particle, "width_voxels"]
        out.append({"seed": seed, "p": t.particle, "proj": d["projected"], "blur": round(d["blur_voxels"], 2),
                    "noise": round(d["noise"], 2), "binder": d["binder"], "bind_c": round((d["mu_binder"]-d["mu_epoxy"])/(d["mu_particle"]-d["mu_epoxy"]), 2),
                    "w": ",".join(f"{w:.1f}" for w in widths), "Tp": int(tp.sum()), "Tc": T,
                    "err": (cv / pv) / (T / tp.sum()) - 1 if pv else -1.0, "num": cv / T - 1, "den": pv / tp.sum() - 1,
                    "lost": lost, "lost_sh": lost_shell, "crk_under": acc["crack_n"] - acc["crack_s"],
                    "sol_sh": acc["solid_shell"], "sol_in": acc["solid_in"], "o_bind": acc["out_binder"], "o_bind_n": acc["out_binder_n"],
                    "o_epx": acc["out_epoxy"], "o_oth": acc["out_other"], "missing": T - cv, **extra})
    return out

if __name__ == "__main__":
    t = pd.DataFrame([r for s in sys.argv[1:] for r in rows(int(s))])
    pd.set_option("display.width", 250)
    print(t.round(3).to_string(index=False), flush=True)
