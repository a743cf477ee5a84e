"""Ring-artefact removal that corrects only the sinogram columns found to hold a detector stripe.

A miscalibrated detector column adds the same offset to its sinogram column (of line integrals) at
every angle, or over a run of angles (a partial stripe); a dead or stuck one reads the same value at
every angle. The reconstruction draws either as a ring. A feature near the rotation axis also stays
near one column, but a crack is narrow on the detector only while it is seen edge-on, a few degrees
of the scan. The steps:

1. dead columns: spread over the angles (10-90 % range) at most a fifth of their neighbours', median
   off theirs by more than that spread; each is replaced, angle by angle, by the linear interpolation
   of its good neighbours;
2. column offsets: each column's values sorted over the angles (its distribution) against the
   prediction from its neighbours' sorted values (least-squares quadratic through the 4 columns
   within 2 px, the column itself left out), median over the ranks: a stripe shifts every rank, a
   feature seen edge-on at a few angles only the tail;
3. stripe columns: offset above ``snr`` times the robust spread (1.4826 x MAD) of all columns' offsets
   and above ``floor``; their offsets are refitted jointly (a stripe spills -2/3 of itself into each
   neighbour's prediction) and subtracted. Every other column is left as measured.

Measured in docs/validation.md ("rings"), with where it fails: columns at sharp edges of an object
centred on the axis (its sinogram does not change with the angle) are taken for stripes; faint
stripes (the real tooth's, 1-2 % in -log units, 3-4 x the spread) stay; stripes wider than 2 px are
only partly corrected.

Several detector rows at once (:func:`remove_stripes_rows`, a reconstruction chunk's rows): a stripe
is the same in every row, the object's structure is not. The column offsets' median over the rows
(the object's structure against the neighbour prediction averages down; its row-to-row scatter is
each column's noise) selects the stripes: single columns by forward selection, then bands — a run of
up to ``BAND_MAX_PX`` columns with one offset (a band's inside is almost invisible to the ±2-column
prediction, its edges read like single stripes beside it) — where they explain the offsets better
than the single columns they replace; each row's offsets are then fitted on the selected stripes
(docs/validation.md "tomorings").
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations

import numpy as np

__all__ = ["detect_stripes", "interpolate_dead_columns", "remove_stripes", "remove_stripes_rows",
           "stripe_offsets"]

#: offset of a stripe column in units of the robust spread of all columns' offsets
SNR = 5.0
#: smallest offset (line integral) that makes a stripe: a 0.5 % gain error
FLOOR = 0.005
#: half-width (px) of the column window of the stripe test
HALF = 2
#: ridge weight of the stripe-offset fit (per offset, against the squared column offsets)
RIDGE = 1e-4
#: widest band (px) fitted as one offset by :func:`remove_stripes_rows`
BAND_MAX_PX = 6
#: fewest detector rows that :func:`remove_stripes_rows` pools (fewer: :func:`remove_stripes` per row)
POOL_MIN_ROWS = 3


def _leave_one_out_kernel(half: int) -> np.ndarray:
    """Weights over columns -half..half (0 at the centre) of the least-squares quadratic through the
    other columns, evaluated at the centre: the column predicted from its neighbours."""
    x = np.arange(-half, half + 1, dtype=np.float64)
    keep = x != 0
    k = np.zeros(x.size)
    k[keep] = np.linalg.pinv(np.stack([x ** 0, x, x ** 2], axis=1)[keep])[0]
    return k


def _column_offsets(s: np.ndarray, half: int = HALF) -> np.ndarray:
    """Per column: the median over ranks of (its values sorted over the angles - their prediction from
    the neighbouring columns' sorted values). A stripe shifts every rank; a feature seen edge-on at a few
    angles moves only the tail of the column's distribution."""
    from scipy import ndimage as ndi

    srt = np.sort(s, axis=0)
    pred = ndi.correlate1d(srt, _leave_one_out_kernel(half).astype(np.float32), axis=1, mode="reflect")
    return np.median(srt - pred, axis=0)


def _dead_columns(s: np.ndarray) -> np.ndarray:
    """Columns that do not respond to the object: their spread over the angles (10-90 % range) is at most
    a fifth of the median spread ``ref`` of the six columns around them, and their median lies more than
    ``ref`` from the mean of their two neighbours' medians (a zero-count column reads -log(1e-6) = 13.8)."""
    p10, med, p90 = np.percentile(s, [10, 50, 90], axis=0)
    spread = p90 - p10
    n = spread.size
    padded = np.pad(spread, 3, mode="reflect")
    around = np.lib.stride_tricks.sliding_window_view(padded, 7)[:, [0, 1, 2, 4, 5, 6]]
    ref = np.median(around, axis=1)
    beside = 0.5 * (med[np.r_[1, np.arange(n - 1)]] + med[np.r_[np.arange(1, n), n - 2]])
    return np.flatnonzero((spread <= 0.2 * ref) & (np.abs(med - beside) > ref))


def _interpolate_columns(s: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``s`` with columns ``cols`` replaced, at each angle, by the linear interpolation of the others."""
    if cols.size == 0:
        return s.copy()
    good = np.setdiff1d(np.arange(s.shape[1]), cols)
    out = s.copy()
    for row in range(s.shape[0]):
        out[row, cols] = np.interp(cols, good, s[row, good])
    return out


def interpolate_dead_columns(sino: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sinogram (float32 copy) with its dead columns (:func:`_dead_columns`) interpolated, and their indices."""
    s = np.asarray(sino, np.float32)
    dead = _dead_columns(s)
    return _interpolate_columns(s, dead), dead


def _stripes(clean: np.ndarray, snr: float, floor: float) -> tuple[np.ndarray, np.ndarray]:
    """Stripe columns of a sinogram whose dead columns are interpolated, and every column's offset."""
    e = _column_offsets(clean)
    spread = 1.4826 * np.median(np.abs(e - np.median(e)))
    found = np.flatnonzero((np.abs(e) > snr * spread) & (np.abs(e) >= floor))
    return found[(found >= HALF) & (found < clean.shape[1] - HALF)], e  # the outer columns have one-sided fits


def detect_stripes(sino: np.ndarray, snr: float = SNR, floor: float = FLOOR) -> tuple[np.ndarray, np.ndarray]:
    """Dead columns and stripe columns (sorted indices) of a sinogram (n_angles, columns) of line integrals.

    A stripe column's offset (:func:`_column_offsets`, dead columns interpolated first) exceeds ``snr``
    times the robust spread (1.4826 x median absolute deviation) of all columns' offsets, and ``floor``.
    """
    clean, dead = interpolate_dead_columns(sino)
    return dead, np.setdiff1d(_stripes(clean, snr, floor)[0], dead)


def stripe_offsets(e: np.ndarray, cand: np.ndarray, half: int = HALF) -> np.ndarray:
    """The stripe offsets ``o`` (zero outside ``cand``) whose column offsets ``(I - K) o`` (``K``: the
    neighbour prediction) best match the measured ``e``, least squares over the columns they reach.

    Undoes the spill of a stripe into its neighbours' predictions (a neighbour reads -2/3 of it)."""
    n = e.size
    k = _leave_one_out_kernel(half)
    rows = np.unique(np.clip((cand[:, None] + np.arange(-half, half + 1)[None, :]).ravel(), 0, n - 1))
    a = np.zeros((rows.size, cand.size))
    for j, c in enumerate(cand):
        for d, kd in zip(range(-half, half + 1), k):  # column c enters row c - d with weight k[d]
            r = c - d
            if 0 <= r < n:
                a[np.searchsorted(rows, r), j] -= kd
        a[np.searchsorted(rows, c), j] += 1.0
    # a small ridge pulls towards zero what the neighbours cannot tell (``I - K`` maps quadratics to 0)
    ridge = np.sqrt(RIDGE) * np.eye(cand.size)
    o, *_ = np.linalg.lstsq(np.vstack([a, ridge]), np.r_[e[rows], np.zeros(cand.size)], rcond=None)
    return o


def remove_stripes(sino: np.ndarray, snr: float = SNR, floor: float = FLOOR) -> tuple[np.ndarray, dict]:
    """Sinogram with its dead columns interpolated and its stripe offsets subtracted; other columns unchanged.

    Returns the float32 sinogram and ``{"stripe_columns": [...], "dead_columns": [...], "max_offset": float}``
    (columns whose offset was removed; the largest |offset|, line-integral units).
    """
    out, dead = interpolate_dead_columns(sino)
    found, e = _stripes(out, snr, floor)
    found = np.setdiff1d(found, dead)
    if found.size == 0:
        return out, {"stripe_columns": [], "dead_columns": dead.tolist(), "max_offset": 0.0}
    o = stripe_offsets(e, found)
    keep = np.abs(o) >= floor
    out[:, found[keep]] -= o[keep].astype(np.float32)
    return out, {"stripe_columns": found[keep].tolist(), "dead_columns": dead.tolist(),
                 "max_offset": float(np.abs(o[keep]).max()) if keep.any() else 0.0}


def _signatures(n: int, atoms: list[tuple[int, int]], rows: np.ndarray) -> np.ndarray:
    """Column offsets (:func:`_column_offsets`) at ``rows`` of a unit offset on each atom (first column,
    width px): ``(I - K)`` applied to the atom's indicator, nonzero on its columns and ``HALF`` beside.
    Atoms lie in ``HALF..n-HALF``, so the prediction never reaches past the detector edge."""
    out = np.zeros((rows.size, len(atoms)))
    for j, (a, w) in enumerate(atoms):
        pat = _pattern(w)
        idx = rows - (a - HALF)
        inside = (idx >= 0) & (idx < pat.size)
        out[inside, j] = pat[idx[inside]]
    return out


@lru_cache(maxsize=None)
def _pattern(width: int) -> np.ndarray:
    """``(I - K)`` of ``width`` ones, over the columns ``-HALF .. width + HALF - 1`` of the run."""
    ones = np.r_[np.zeros(HALF), np.ones(width), np.zeros(HALF)]
    return ones - np.correlate(np.r_[np.zeros(HALF), ones, np.zeros(HALF)], _leave_one_out_kernel(HALF), "valid")


def _fit_atoms(e: np.ndarray, w: np.ndarray, atoms: list[tuple[int, int]]) -> tuple[float, np.ndarray]:
    """Weighted least-squares offsets of ``atoms`` against the column offsets ``e`` (weights ``w``), with
    :data:`RIDGE`; returns (the weighted squared residual over all columns, the offsets)."""
    total = float(np.sum((w * e) ** 2))
    if not atoms:
        return total, np.zeros(0)
    n = e.size
    rows = np.unique(np.concatenate([np.arange(a - HALF, a + wd + HALF) for a, wd in atoms]).clip(0, n - 1))
    a = _signatures(n, atoms, rows) * w[rows, None]
    y = w[rows] * e[rows]
    o, *_ = np.linalg.lstsq(np.vstack([a, np.sqrt(RIDGE) * np.eye(len(atoms))]), np.r_[y, np.zeros(len(atoms))],
                            rcond=None)
    r = y - a @ o
    return total - float(y @ y) + float(r @ r), o


def _forward_columns(e, w, ok, penalty) -> list[tuple[int, int]]:
    """Single stripe columns by forward selection on the weighted column offsets: each round the column
    whose offset lowers the weighted squared residual most is added if it lowers it by more than
    ``penalty``; then chosen columns that lower it by less are dropped (ordinary least squares: the
    drop of column ``c`` is (r . a_c)^2 / |a_c - Q Q^T a_c|^2 for the residual r, the weighted signature
    a_c and Q spanning the chosen ones')."""
    n = e.size
    pat = _pattern(1)
    y = w * e
    chosen: list[int] = []
    cand = np.flatnonzero(ok)
    a_c = np.stack([w[cand + d] * pat[d + HALF] for d in range(-HALF, HALF + 1)])  # (2 HALF + 1, candidates)
    for _ in range(n):
        if chosen:
            a = _signatures(n, [(c, 1) for c in chosen], np.arange(n)) * w[:, None]
            q, rr = np.linalg.qr(a)
            o = np.linalg.solve(rr, q.T @ y)
            r = y - a @ o
            qta = sum(q[cand + d].T * a_c[d + HALF] for d in range(-HALF, HALF + 1))  # (chosen, candidates)
            left = np.sum(a_c ** 2, axis=0) - np.sum(qta ** 2, axis=0)
        else:
            r, left = y, np.sum(a_c ** 2, axis=0)
        ra = sum(r[cand + d] * a_c[d + HALF] for d in range(-HALF, HALF + 1))
        gain = np.where(np.isin(cand, chosen) | (left < 1e-9 * np.sum(a_c ** 2, axis=0)), 0.0,
                        ra ** 2 / np.maximum(left, 1e-300))
        j = int(np.argmax(gain))
        if gain[j] <= penalty:
            return [(c, 1) for c in sorted(chosen)]
        chosen.append(int(cand[j]))
        while len(chosen) > 1:  # drop a column whose removal raises the residual by less than the penalty
            a = _signatures(n, [(c, 1) for c in chosen], np.arange(n)) * w[:, None]
            inv = np.linalg.inv(a.T @ a)
            o = inv @ (a.T @ y)
            cost = o ** 2 / np.diag(inv)
            i = int(np.argmin(cost))
            if cost[i] >= penalty:
                break
            chosen.pop(i)
    return [(c, 1) for c in sorted(chosen)]


def _components(atoms: list[tuple[int, int]]) -> list[tuple[tuple[int, int], ...]]:
    """The atoms (sorted) in groups whose reaches (``HALF`` beside each) overlap: groups fit apart."""
    groups: list[list[tuple[int, int]]] = []
    for a, w in sorted(atoms):
        if groups and a - HALF < groups[-1][-1][0] + groups[-1][-1][1] + HALF:
            groups[-1].append((a, w))
        else:
            groups.append([(a, w)])
    return [tuple(g) for g in groups]


def _merge_bands(e, w, ok, atoms, penalty) -> list[tuple[int, int]]:
    """Bands (2..``BAND_MAX_PX`` columns, one offset) that replace chosen atoms within their reach, best
    first, where the penalised weighted squared residual drops by more than one atom's penalty; a band
    keeps one column of gap to the atoms it leaves. Groups of atoms that fit apart (:func:`_components`)
    are fitted once each; a trial refits only the groups its band reaches."""
    gains: dict = {}

    def gain(group):
        if group not in gains:
            sse, o = _fit_atoms(e, w, list(group))
            gains[group] = (float(np.sum((w * e) ** 2)) - sse, o)
        return gains[group]

    while True:
        groups = _components(atoms)
        best = None
        starts = {(a, wd) for x0, x1 in atoms for wd in range(2, BAND_MAX_PX + 1)
                  for a in range(x0 - 2 * HALF - wd + 1, x0 + x1 + 2 * HALF) if 0 <= a and a + wd <= e.size}
        for a0, w0 in sorted(starts):
            if not ok[a0:a0 + w0].all():
                continue
            touched = [g for g in groups if g[0][0] - HALF < a0 + w0 + HALF and g[-1][0] + g[-1][1] + HALF > a0 - HALF]
            local = [x for g in touched for x in g]
            near = [x for x in local if x[0] + x[1] - 1 >= a0 - HALF - 1 and x[0] <= a0 + w0 + HALF]
            before = sum(gain(g)[0] for g in touched) - penalty * len(local)
            for m in range(len(near) + 1):
                for drop in combinations(near, m):
                    rest = [x for x in local if x not in drop]
                    if any(x[0] + x[1] >= a0 and x[0] <= a0 + w0 for x in rest):
                        continue
                    new = _components(rest + [(a0, w0)])
                    after = sum(gain(g)[0] for g in new) - penalty * (len(rest) + 1)
                    band = next(g for g in new if (a0, w0) in g)
                    if after - before > penalty and (best is None or after - before > best[0]) \
                            and abs(gain(band)[1][band.index((a0, w0))]) >= FLOOR:
                        best = (after - before, sorted([x for x in atoms if x not in drop] + [(a0, w0)]))
        if best is None:
            return atoms
        atoms = best[1]


def _pooled_atoms(E: np.ndarray, ok: np.ndarray, snr: float) -> list[tuple[int, int]]:
    """Stripes (first column, width px) from the column offsets ``E`` (rows, columns) of several rows:
    their median, weighted by the inverse of its noise (1.25 x 1.4826 x the rows' MAD / sqrt(rows),
    at least the median column's), selected with a penalty of ``snr``^2 per stripe."""
    e = np.median(E, axis=0)
    noise = 1.25 * 1.4826 * np.median(np.abs(E - e), axis=0) / np.sqrt(E.shape[0])
    w = 1.0 / np.maximum(noise, max(float(np.median(noise)), 1e-12))
    penalty = snr ** 2
    atoms = _forward_columns(e, w, ok, penalty)
    if not atoms:
        return atoms
    atoms = _merge_bands(e, w, ok, atoms, penalty)
    o = _fit_atoms(e, w, atoms)[1]
    return [x for x, v in zip(atoms, o) if abs(v) >= FLOOR]


def remove_stripes_rows(block: np.ndarray, snr: float = SNR) -> tuple[np.ndarray, list[dict]]:
    """Ring removal of several detector rows at once: ``block`` (n_angles, rows, columns) of line integrals.

    Dead columns are interpolated per row; the stripes (single columns and bands) are selected from all
    rows' column offsets (:func:`_pooled_atoms`) and each row's offsets fitted on them and subtracted
    where at least :data:`FLOOR`. Fewer than :data:`POOL_MIN_ROWS` rows: :func:`remove_stripes` per row.
    Returns the float32 block and per row the dict of :func:`remove_stripes`.
    """
    b = np.asarray(block, np.float32)
    if b.shape[1] < POOL_MIN_ROWS:
        done = [remove_stripes(b[:, r], snr) for r in range(b.shape[1])]
        return np.stack([d[0] for d in done], axis=1), [d[1] for d in done]
    clean = [interpolate_dead_columns(b[:, r]) for r in range(b.shape[1])]
    E = np.array([_column_offsets(c) for c, _ in clean])
    n = b.shape[2]
    ok = np.zeros(n, bool)
    ok[HALF:n - HALF] = True
    ok[np.concatenate([d for _, d in clean]).astype(int)] = False
    atoms = _pooled_atoms(E, ok, snr)
    out, found = np.empty_like(b), []
    for r, ((s, dead), e) in enumerate(zip(clean, E)):
        o = _fit_atoms(e, np.ones(n), atoms)[1] if atoms else np.zeros(0)
        cols, offs = [], []
        for (a, wd), v in zip(atoms, o):
            if abs(v) >= FLOOR:
                s[:, a:a + wd] -= np.float32(v)
                cols += range(a, a + wd)
                offs.append(abs(float(v)))
        out[:, r] = s
        found.append({"stripe_columns": cols, "dead_columns": dead.tolist(), "max_offset": max(offs, default=0.0)})
    return out, found
