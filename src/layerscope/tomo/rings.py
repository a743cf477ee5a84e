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
"""

from __future__ import annotations

import numpy as np

__all__ = ["detect_stripes", "interpolate_dead_columns", "remove_stripes", "stripe_offsets"]

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
