"""Issue 19 speed, the serial Python after the column finder (imgspeed4): every replaced function computes
exactly the numbers of the form it replaced (kept here as ``_old_*``).

* ``interlayers.split_fill_changes``: the first candidate cut of every segment of the table searched at once
  (``interlayers._best_cuts``: ``_best_cut``'s arithmetic on a zero-padded runs x sites array), the rare cut
  segments' parts one by one as before;
* ``interlayers._count_decisions``: decisions as +1 / -1 / 0 until the end, and a layer without an uncertain
  segment skips its runs (``_pool_runs``), whose decisions only replace uncertain ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerscope.imaging import interlayers as il


def _old_split_fill_changes(li: pd.DataFrame, threshold: float = il.MIXING_THRESHOLD) -> np.ndarray:
    """``split_fill_changes`` before imgspeed4: one ``_split_run`` per segment, layer by layer."""
    seg = li["segment"].to_numpy(dtype=int).copy()
    m_all, e_all = li["mixing"].to_numpy(dtype=float), li["mixing_sem"].to_numpy(dtype=float)
    for _, idx in li.groupby("layer", sort=True).indices.items():
        new = np.zeros(idx.size, dtype=int)
        new[0] = 1
        new[1:] = seg[idx][1:] != seg[idx][:-1]
        for start in np.flatnonzero(new):
            run = np.arange(start, start + np.argmax(np.r_[new[start + 1:], 1]) + 1)
            m, e = m_all[idx[run]], e_all[idx[run]]
            if run.size >= 2 * il.SPLIT_MIN_SITES and np.isfinite(m).all() and np.isfinite(e).all() and (e > 0).all():
                for c in il._split_run(m, e, threshold):
                    new[run[c]] = 1
        seg[idx] = np.cumsum(new) - 1
    return seg


def _old_count_decisions(out, threshold, weights=None, pool=None, systematic=il.MIXING_SYSTEMATIC):
    """``_count_decisions`` before imgspeed4: string decisions, every layer's runs pooled."""
    f, e = out["li_fill"].to_numpy(dtype=float), out["li_fill_count_sem"].to_numpy(dtype=float)
    pool_f, pool_e = (f, e) if pool is None else pool
    n = out["n_sites"].to_numpy()
    own = il._decide(pd.Series(f), pd.Series(np.hypot(e, systematic)), threshold)
    decision, sites = own.copy(), n.astype(float)
    for idx in out.groupby("li_layer", sort=False).indices.values():
        idx = idx[np.argsort(out["u_start_nm"].to_numpy()[idx], kind="stable")]
        pf, pe, pn = il._pool_runs(pool_f[idx], pool_e[idx], n[idx],
                                   None if weights is None else tuple(w[idx] for w in weights), systematic)
        pooled = il._decide(pd.Series(pf), pd.Series(np.hypot(pe, systematic)), threshold)
        use = (own[idx] == "uncertain") & (pooled != "uncertain")
        decision[idx[use]], sites[idx[use]] = pooled[use], pn[use]
    return decision, sites.astype(int)


def _sites(seed: int, n_layers: int = 12) -> pd.DataFrame:
    """Li-layer sites of ``n_layers`` layers in segments of ~10 sites: clean, mixed and changing stretches
    (fills 0, 0.5 or a step between them inside a segment), counting errors 0.02-0.15, a few NaN and 0 errors."""
    rng = np.random.default_rng(seed)
    rows = []
    for layer in rng.permutation(n_layers):  # layers not in order: the function groups them
        n = int(rng.integers(5, 60))
        seg = np.cumsum(rng.random(n) < 0.1)
        level = np.where(np.arange(n) < rng.integers(0, n + 1), 0.0, rng.choice([0.0, 0.5]))
        sem = rng.uniform(0.02, 0.15, n)
        mix = level + rng.normal(0, 1, n) * sem
        mix[rng.random(n) < 0.02] = np.nan
        sem[rng.random(n) < 0.02] = 0.0
        rows.append(pd.DataFrame({"layer": layer, "segment": seg, "mixing": mix, "mixing_sem": sem}))
    return pd.concat(rows, ignore_index=True)


@pytest.mark.parametrize("seed", range(6))
def test_split_fill_changes_equals_the_old_form_exactly(seed):
    li = _sites(seed)
    old, new = _old_split_fill_changes(li), il.split_fill_changes(li)
    assert np.array_equal(new, old)


def test_split_fill_changes_cuts_where_the_old_form_cuts():
    """Some of the random segments are cut (the recursion is exercised), and the same ones."""
    cuts_old = cuts_new = 0
    for seed in range(6):
        li = _sites(seed)
        base = li.groupby("layer")["segment"].nunique().sum()
        cuts_old += li.assign(s=_old_split_fill_changes(li)).groupby("layer")["s"].nunique().sum() - base
        cuts_new += li.assign(s=il.split_fill_changes(li)).groupby("layer")["s"].nunique().sum() - base
    assert cuts_new == cuts_old >= 5


def _segments(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(100 + seed)
    n = 200
    return pd.DataFrame({"li_layer": rng.integers(0, 15, n), "u_start_nm": rng.uniform(0, 20, n),
                         "li_fill": rng.normal(0.05, 0.06, n), "li_fill_count_sem": rng.uniform(0.005, 0.06, n),
                         "n_sites": rng.integers(1, 9, n)})


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("with_weights", [False, True])
def test_count_decisions_equals_the_old_form_exactly(seed, with_weights):
    out = _segments(seed)
    rng = np.random.default_rng(seed)
    weights = tuple(rng.uniform(0, 3, len(out)) for _ in range(3)) if with_weights else None
    pool = (out["li_fill"].to_numpy() + rng.normal(0, 0.01, len(out)), out["li_fill_count_sem"].to_numpy())
    for systematic in (il.MIXING_SYSTEMATIC, 0.008):
        old_d, old_n = _old_count_decisions(out, il.MIXING_THRESHOLD, weights, pool, systematic)
        new_d, new_n = il._count_decisions(out, il.MIXING_THRESHOLD, weights, pool, systematic)
        assert np.array_equal(new_d, old_d) and new_d.dtype == old_d.dtype
        assert np.array_equal(new_n, old_n)
        # the pooled runs decided some uncertain segments (the skipped layers are not all)
        own = il._decide(out["li_fill"], np.hypot(out["li_fill_count_sem"], systematic), il.MIXING_THRESHOLD)
        assert ((own == "uncertain") & (new_d != "uncertain")).any()


def _old_majority(values: pd.Series, key: np.ndarray) -> pd.Series:
    """``_majority`` before imgspeed4: the table of value counts, sorted."""
    counts = pd.DataFrame({"k": key, "v": values.to_numpy()}).value_counts().rename("n").reset_index()
    counts = counts.sort_values(["k", "n", "v"], ascending=[True, False, True], kind="stable")
    return counts.drop_duplicates("k").set_index("k")["v"]


@pytest.mark.parametrize("seed", range(4))
def test_majority_equals_the_old_form_exactly(seed):
    """Random environments in segments of 1-6 sites (many ties between two or three values)."""
    rng = np.random.default_rng(seed)
    key = np.repeat(np.arange(150), rng.integers(1, 7, 150))
    values = pd.Series(rng.choice(["layered", "spinel", "rock_salt"], key.size, p=[0.5, 0.3, 0.2]))
    old, new = _old_majority(values, key), il._majority(values, key)
    pd.testing.assert_series_equal(new, old, check_exact=True)
    assert (old == "spinel").sum() > 10 and (old == "rock_salt").sum() > 10  # every value wins somewhere (19-34)
    top = pd.DataFrame({"k": key, "v": values}).value_counts().groupby(level="k").apply(
        lambda c: len(c) > 1 and c.iloc[0] == c.iloc[1])
    assert top.sum() > 20  # and ties are broken (the first value in sort order)
