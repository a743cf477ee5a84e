"""Ring-artefact removal that corrects only the sinogram columns shown to hold a detector stripe.

A miscalibrated detector column adds the same offset to its sinogram column at every angle (or over
a long run of angles: a partial stripe); a dead or stuck one reads the same value at every angle.
The reconstruction draws either as a ring. An object feature near the rotation axis also stays near
one column, but a crack is narrow on the detector only while it is seen edge-on, a few degrees of the
scan, and every other feature moves across the columns as it turns. The test here:

1. the median of each column over each quarter of the angles (a feature narrow at fewer than half
   of a block's angles drops out of it; a stripe's offset stays);
2. the offset of each column's median from a robust local quadratic through its neighbours (a
   window of ``size_px`` columns without the column itself; columns found in a pass are left out
   of the next fit, so a stripe up to about a third of the window wide is measured whole);
3. a column is a stripe in a block when its offset exceeds ``snr`` times the robust spread
   (1.4826 x median absolute deviation) of all columns' offsets in that block, and at least ``floor``
   (line-integral units, the smallest offset worth a correction);
4. found columns are corrected by subtracting their offset in each block where they were found; a
   dead column (its values do not vary over the angles: a fifth or less of its neighbours' spread)
   is replaced by the linear interpolation of its nearest good neighbours at each angle.

A sinogram without stripes is returned unchanged, so cracks and pores near the axis stay.
Compared in docs/validation.md ("rings") with algotom's sorting-, filtering- and detection-based
methods (Vo et al., Opt. Express 26, 28396 (2018)).
"""

from __future__ import annotations

import numpy as np

__all__ = ["detect_stripes", "remove_stripes", "stripe_offsets"]

#: offset of a stripe column in units of the robust spread of all columns' offsets
SNR = 5.0
#: smallest offset (line integral) that makes a stripe: a 0.5 % gain error
FLOOR = 0.005
#: half-width (px) of the column window of the stripe test
HALF = 2
#: ridge weight of the stripe-offset fit (per offset, against the squared column offsets)
RIDGE = 1e-4


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
    """Columns whose spread over the angles (10-90 % range) is at most a fifth of the median spread of the
    six columns around them: they do not respond to the object."""
    spread = np.percentile(s, 90, axis=0) - np.percentile(s, 10, axis=0)
    ref = np.array([np.median(np.r_[spread[max(0, c - 3):c], spread[c + 1:c + 4]]) for c in range(spread.size)])
    return np.flatnonzero(spread <= 0.2 * ref)


def _interpolate_columns(s: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``s`` with columns ``cols`` replaced, at each angle, by the linear interpolation of the others."""
    if cols.size == 0:
        return s.copy()
    good = np.setdiff1d(np.arange(s.shape[1]), cols)
    out = s.copy()
    for row in range(s.shape[0]):
        out[row, cols] = np.interp(cols, good, s[row, good])
    return out


def detect_stripes(sino: np.ndarray, snr: float = SNR, floor: float = FLOOR) -> tuple[np.ndarray, np.ndarray]:
    """Dead columns and stripe columns (sorted indices) of a sinogram (n_angles, columns) of line integrals.

    A stripe column's offset (:func:`_column_offsets`, dead columns interpolated first) exceeds ``snr``
    times the robust spread (1.4826 x median absolute deviation) of all columns' offsets, and ``floor``.
    """
    s = np.asarray(sino, np.float32)
    dead = _dead_columns(s)
    e = _column_offsets(_interpolate_columns(s, dead))
    spread = 1.4826 * np.median(np.abs(e - np.median(e)))
    found = np.flatnonzero((np.abs(e) > snr * spread) & (np.abs(e) >= floor))
    found = found[(found >= HALF) & (found < s.shape[1] - HALF)]  # the outer columns have one-sided fits
    return dead, np.setdiff1d(found, dead)


def _candidates(found: np.ndarray, n: int, half: int = HALF) -> np.ndarray:
    """Found columns, the columns between two found ones at most ``2 half + 1`` apart (a wide stripe is
    found at its edges) and one column either side."""
    cols = set(found.tolist())
    for a, b in zip(found[:-1], found[1:]):
        if b - a <= 2 * half + 1:
            cols.update(range(a, b))
    cols = np.array(sorted(cols), int)
    return np.unique(np.clip(np.r_[cols - 1, cols, cols + 1], 0, n - 1))


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


def remove_stripes(sino: np.ndarray, snr: float = SNR, floor: float = FLOOR,
                   correction: str = "offset") -> tuple[np.ndarray, dict]:
    """Sinogram with its dead columns interpolated and its stripe offsets subtracted; other columns unchanged.

    Returns the float32 sinogram and ``{"stripe_columns": [...], "dead_columns": [...], "max_offset": float}``
    (columns whose offset was removed; the largest |offset|, line-integral units).
    """
    s = np.asarray(sino, np.float32)
    dead, found = detect_stripes(s, snr, floor)
    out = _interpolate_columns(s, dead)
    if found.size == 0:
        return out, {"stripe_columns": [], "dead_columns": dead.tolist(), "max_offset": 0.0}
    if correction == "sorting":
        from algotom.prep.removal import remove_stripe_based_sorting

        size = int(np.clip(s.shape[1] // 30, 3, 31)) // 2 * 2 + 1
        out[:, found] = remove_stripe_based_sorting(out, size=size)[:, found]
        return out, {"stripe_columns": found.tolist(), "dead_columns": dead.tolist(), "max_offset": 0.0}
    cand = found
    o = stripe_offsets(_column_offsets(out), cand)
    keep = np.abs(o) >= floor
    out[:, cand[keep]] -= o[keep].astype(np.float32)
    return out, {"stripe_columns": cand[keep].tolist(), "dead_columns": dead.tolist(),
                 "max_offset": float(np.abs(o[keep]).max()) if keep.any() else 0.0}
