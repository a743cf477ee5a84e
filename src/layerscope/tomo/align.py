"""Per-angle shifts of a parallel-beam projection series (stage drift, jitter): detect, estimate, apply.

Convention of :mod:`layerscope.tomo.recon`: projections ``(n_angles, rows, columns)``, the rotation axis
along the detector rows' direction (detector row z gives slice z), so a shift ``dy`` (px, rows) is along
the axis and ``dx`` (px, columns) across it. A shifted projection ``P(z - dy, x - dx)`` is undone by
shifting it by ``(-dy, -dx)``.

* :func:`consistency` (no reconstruction): the centre of mass of each projection along each axis, minus a
  local quadratic fit over the neighbouring angles (Savitzky-Golay, :data:`SMOOTH_ANGLES` angles). Without
  shifts both move smoothly with the angle - across the axis as ``a cos(theta) + b sin(theta) + c`` while the
  sample stays in the field, and still smoothly where it leaves the field (mass leaving the detector edge
  changes continuously with the angle), so truncated fields do not read as shifts. White jitter of ``s`` px RMS
  per axis reads about ``0.4-0.55 s``; a random walk, about its angle-to-angle step. :data:`FLAG_PX` is the flag
  level (docs/validation.md "tomoalign").
* :func:`estimate_shifts` (``ReconOptions.align="xcorr"``): projection matching - reconstruct the aligned
  series (FBP), forward project it, cross-correlate every projection with its reprojection (scikit-image's
  ``phase_cross_correlation``, sub-pixel, on the gradient magnitude under a Tukey window so that the detector
  edges, where a sample wider than the field is cut alike at every angle, do not hold the shift at zero), add
  the found shifts, repeat: first on the series binned by 2, then at full size; a growing update stops it.
  Smooth (low-frequency) errors of the shifts shrink slowly (the reconstruction of a drifting series takes up
  most of the drift, so each round finds about a tenth of what is left; docs/validation.md "tomowalk").
  What no alignment can tell from a moving sample is removed each round: the mean ``dy`` (the sample higher or lower) and the part of ``dx``
  in ``1, cos(theta), sin(theta)`` (the sample elsewhere in the slice; its constant is the rotation centre,
  found by the centre search afterwards).
* :func:`shift_block`: apply the shifts to line integrals (cubic splines, edges continued).
"""

from __future__ import annotations

import numpy as np

__all__ = ["consistency", "consistency_of_profiles", "aligned_consistency", "binned_px", "estimate_shifts",
           "initial_shifts", "neighbour_shifts", "reprojection_residual", "shift_block", "unobservable_removed",
           "FIRST_GUESSES", "FLAG_PX", "SMOOTH_ANGLES"]

#: angles of the local quadratic fit of :func:`consistency` (odd)
SMOOTH_ANGLES = 7
#: ``projections_shifted`` is flagged where the RMS residual of :func:`consistency` exceeds this (px)
FLAG_PX = 0.15
#: projection matching: rounds at most, and the RMS update (px) below which it stops
MATCH_ROUNDS = 6
MATCH_TOL_PX = 0.05
#: ... and the update (px) below which the rounds on the series binned by 2 give way to the full size
COARSE_TOL_PX = 0.5
#: the rounds on the series binned by 2 run only where it keeps at least this many columns
MATCH_MIN_PX = 48
#: an update this many times larger than the previous one stops the estimate (the shifts before it are kept)
DIVERGE_FACTOR = 1.5
#: the series is binned for the estimate until its columns are at most this many (px)
MATCH_MAX_COLUMNS = 256
#: first guesses of :func:`estimate_shifts` tried in turn by the reconstruction until the aligned series passes
#: the acceptance test (:func:`aligned_consistency` at most :data:`FLAG_PX`): ``"com"`` (:func:`initial_shifts`),
#: ``"neighbours"`` (:func:`neighbour_shifts`, for large shifts)
FIRST_GUESSES = ("com", "neighbours")


def axis_profiles(lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per angle, the sums of ``lines`` (n_angles, rows, columns) along each row and each column, negative
    values (noise on empty beam) as 0."""
    m = np.clip(np.asarray(lines, np.float64), 0.0, None)
    return m.sum(axis=2), m.sum(axis=1)


def _centres_of_mass(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per angle, the centre of mass (px) along the rows and along the columns from the profiles ``rows``
    (n_angles, rows) and ``cols`` (n_angles, columns) of :func:`axis_profiles`."""
    total = np.maximum(rows.sum(axis=1), 1e-12)
    return rows @ np.arange(rows.shape[1]) / total, cols @ np.arange(cols.shape[1]) / total


def _highpass(values: np.ndarray) -> np.ndarray:
    """``values`` (one per angle, in angle order) minus their local quadratic fit over :data:`SMOOTH_ANGLES`."""
    from scipy.signal import savgol_filter

    if values.size < SMOOTH_ANGLES:
        return np.zeros_like(values)
    return values - savgol_filter(values, SMOOTH_ANGLES, 2, mode="interp")


def consistency(lines: np.ndarray, angles_deg: np.ndarray) -> dict:
    """:func:`consistency_of_profiles` of the line integrals ``lines`` (n_angles, rows, columns)."""
    return consistency_of_profiles(*axis_profiles(lines), angles_deg)


def consistency_of_profiles(rows: np.ndarray, cols: np.ndarray, angles_deg: np.ndarray) -> dict:
    """How far the projections jump between neighbouring angles (px), from their centres of mass alone.

    ``rows``, ``cols``: per angle the sums of the line integrals along each detector row and column (negative
    values as 0; :func:`axis_profiles`), so that the series is read once, chunk by chunk. Returns ``{"rms_px",
    "max_px", "rms_rows_px", "rms_columns_px"}``: the RMS and largest residual over both axes and the RMS along each (px). For white
    jitter of RMS ``s`` per axis the RMS reads about ``0.8 s``; for a random walk, about its step size.
    """
    return _jumps(*_centres_of_mass(rows, cols), angles_deg)


def _jumps(cz: np.ndarray, cx: np.ndarray, angles_deg: np.ndarray) -> dict:
    """The residuals of the centres of mass ``cz``, ``cx`` (px, one per angle) about their local fit over the
    angles: :func:`consistency_of_profiles`'s numbers."""
    order = np.argsort(np.asarray(angles_deg, float))
    rz, rx = _highpass(cz[order]), _highpass(cx[order])
    both = np.concatenate([rz, rx])
    return {"rms_px": float(np.sqrt(np.mean(both ** 2))), "max_px": float(np.abs(both).max(initial=0.0)),
            "rms_rows_px": float(np.sqrt(np.mean(rz ** 2))), "rms_columns_px": float(np.sqrt(np.mean(rx ** 2)))}


def aligned_consistency(lines: np.ndarray, dy: np.ndarray, dx: np.ndarray, angles_deg: np.ndarray) -> dict:
    """:func:`consistency` of the line integrals ``lines`` (n_angles, rows, columns) aligned by ``(dy, dx)`` (px).

    The projections are shifted back (:func:`shift_block`), then cut to the rows and columns that every angle
    still sees (the largest shift on each axis, rounded up, off each end), so that no value continued beyond
    the detector edge counts. A wrong estimate leaves the series jumping between neighbouring angles: the
    acceptance test of an alignment.
    """
    return consistency(shift_block(lines, dy, dx)[(slice(None), *_seen(lines.shape[1:], dy, dx))], angles_deg)


def _seen(shape: tuple[int, int], dy: np.ndarray, dx: np.ndarray) -> tuple[slice, slice]:
    """The rows and columns of a detector of ``shape`` that every projection shifted back by ``(dy, dx)`` (px)
    still sees: the largest shift on each axis, rounded up, off each end (none off where fewer than 3 would
    remain)."""
    out = []
    for n, d in zip(shape, (dy, dx)):
        m = int(np.ceil(np.abs(np.asarray(d, float)).max(initial=0.0)))
        out.append(slice(m, n - m) if n > 2 * m + 2 else slice(0, n))
    return tuple(out)


def shift_block(block: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """``block`` (n_angles, rows, columns) with projection ``a`` shifted by ``(-dy[a], -dx[a])`` px (undoing
    the measured shifts): cubic splines, edge values continued."""
    from scipy import ndimage as ndi

    out = np.empty_like(block, dtype=np.float32)
    for a in range(block.shape[0]):
        if dy[a] == 0 and dx[a] == 0:
            out[a] = block[a]
        else:
            out[a] = ndi.shift(block[a], (-dy[a], -dx[a]), order=3, mode="nearest")
    return out


def unobservable_removed(dy: np.ndarray, dx: np.ndarray, angles_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``dy`` less its mean and ``dx`` less its least-squares part in ``1, cos(theta), sin(theta)``: a
    translation of the sample, which the projections cannot tell from a shift of the detector."""
    t = np.deg2rad(np.asarray(angles_deg, float))
    basis = np.stack([np.ones_like(t), np.cos(t), np.sin(t)], axis=1)
    coef = np.linalg.lstsq(basis, dx, rcond=None)[0]
    return dy - dy.mean(), dx - basis @ coef


def binned_px(position_px: float, n: int) -> float:
    """A detector position (px, 0-based) on the detector binned by ``n``."""
    return (position_px - (n - 1) / 2.0) / n


def binned_projections(lines: np.ndarray, n: int) -> np.ndarray:
    """Mean over n x n detector pixels of every projection."""
    if n == 1:
        return lines
    a, r, c = lines.shape
    return lines[:, : r // n * n, : c // n * n].reshape(a, r // n, n, c // n, n).mean(axis=(2, 4), dtype=np.float32)


def _reprojected(lines: np.ndarray, angles_deg: np.ndarray, centre_px: float) -> np.ndarray:
    """FBP of every row of ``lines`` about ``centre_px`` (plain, Ram-Lak), forward projected again
    (ASTRA, CPU): the series a consistent sample would give, on the same detector."""
    import astra

    from layerscope.tomo.sinogram import fbp_pad_px, padded

    n_angles, n_rows, n = lines.shape
    off = (n - 1) / 2.0 - centre_px
    centred = shift_block(lines, np.zeros(n_angles), np.full(n_angles, -off))
    rad = np.deg2rad(angles_deg)
    p = fbp_pad_px(n)
    vol_geom = astra.create_vol_geom(n, n)
    pad_geom = astra.create_proj_geom("parallel", 1.0, n + 2 * p, rad)
    geom = astra.create_proj_geom("parallel", 1.0, n, rad)
    fp = astra.create_projector("linear", geom, vol_geom)
    bp = astra.create_projector("linear", pad_geom, vol_geom)
    out = np.empty_like(centred)
    try:
        for r in range(n_rows):
            sid = astra.data2d.create("-sino", pad_geom, padded(centred[:, r], p))
            rid = astra.data2d.create("-vol", vol_geom, 0.0)
            cfg = astra.astra_dict("FBP")
            cfg.update(ReconstructionDataId=rid, ProjectionDataId=sid, ProjectorId=bp)
            aid = astra.algorithm.create(cfg)
            astra.algorithm.run(aid)
            slice_ = np.clip(astra.data2d.get(rid), 0.0, None)  # negative attenuation: noise and streaks
            astra.algorithm.delete(aid)
            astra.data2d.delete([sid, rid])
            fid, sino = astra.create_sino(slice_, fp)
            astra.data2d.delete(fid)
            out[:, r] = sino
    finally:
        astra.projector.delete(fp)
        astra.projector.delete(bp)
    return shift_block(out, np.zeros(n_angles), np.full(n_angles, off))


def reprojection_residual(lines: np.ndarray, dy: np.ndarray, dx: np.ndarray, angles_deg: np.ndarray,
                          centre_px: float | None = None) -> float:
    """How far the series aligned by ``(dy, dx)`` (px) is from the projections of its own reconstruction: RMS of
    aligned minus reprojected (:func:`_reprojected`, FBP about ``centre_px`` or the searched centre) over the
    RMS of the aligned, on the rows and columns every angle still sees. Unlike :func:`aligned_consistency` it
    sees smooth errors too (a sample that no rigid rotation explains); it has no absolute scale (noise and
    the reconstruction's own errors add to it), so it ranks estimates of one series."""
    from layerscope.tomo.sinogram import series_centre_px

    aligned = shift_block(lines, dy, dx)
    centre = series_centre_px(aligned, angles_deg) if centre_px is None else centre_px
    model = _reprojected(aligned, np.asarray(angles_deg, float), centre)
    core = (slice(None), *_seen(lines.shape[1:], dy, dx))
    return float(np.sqrt(np.mean((aligned[core] - model[core]) ** 2) / max(np.mean(aligned[core] ** 2), 1e-30)))


def _window(shape: tuple[int, int], taper: float = 0.5) -> np.ndarray:
    """A 2-D Tukey window (``taper`` / 2 of each side tapered; a quarter by default): the detector edges, where a
    sample wider than the field is cut at the same place in every projection, do not hold the correlation at zero
    shift."""
    from scipy.signal.windows import tukey

    return np.outer(tukey(shape[0], taper), tukey(shape[1], taper)).astype(np.float32)


def _edges(image: np.ndarray) -> np.ndarray:
    """Gradient magnitude of ``image`` after a 1-px Gaussian (the features that locate a projection)."""
    from scipy import ndimage as ndi

    return ndi.gaussian_gradient_magnitude(np.asarray(image, np.float32), 1.0)


def _match_round(lines: np.ndarray, angles_deg: np.ndarray, dy: np.ndarray, dx: np.ndarray,
                 centre_px: float) -> tuple[np.ndarray, np.ndarray]:
    """One round of projection matching: the shifts (px) of each aligned projection against its reprojection."""
    from skimage.registration import phase_cross_correlation

    aligned = shift_block(lines, dy, dx)
    model = _reprojected(aligned, angles_deg, centre_px)
    window = _window(lines.shape[1:])
    ry, rx = np.zeros(len(dy)), np.zeros(len(dx))
    for a in range(lines.shape[0]):
        shift = phase_cross_correlation(_edges(model[a]) * window, _edges(aligned[a]) * window, upsample_factor=20,
                                        normalization=None)[0]
        ry[a], rx[a] = -shift[0], -shift[1]
    return ry, rx


def initial_shifts(lines: np.ndarray, angles_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A first guess (px) from the centres of mass: their angle-to-angle jumps (:func:`_highpass`); the slow
    part may be the sample leaving the field (or, along the axis, a sample longer than the detector, whose
    centre of mass does not follow a shift)."""
    order = np.argsort(np.asarray(angles_deg, float))
    cz, cx = _centres_of_mass(*axis_profiles(lines))
    dy, dx = np.empty_like(cz), np.empty_like(cx)
    dy[order], dx[order] = _highpass(cz[order]), _highpass(cx[order])
    return unobservable_removed(dy, dx, angles_deg)


def neighbour_shifts(lines: np.ndarray, angles_deg: np.ndarray, *, upsample: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """A coarse first guess (px) for large shifts: each projection cross-correlated with its neighbour in angle
    (IMOD-style tilt-series cross-correlation: neighbours differ little, so a jump of a tenth of the detector
    is found where the reprojection of a badly shifted series is too blurred to lock on), the steps summed
    along the angles, less the unobservable part. Phase correlation of the gradient magnitude under a Tukey
    window (an eighth of each side tapered), zero-padded by half of each side against wrap-around. The sum
    drifts with the features' own motion between angles and a wrong step moves every later angle; projection
    matching (:func:`estimate_shifts`) takes the remainder."""
    from skimage.registration import phase_cross_correlation

    order = np.argsort(np.asarray(angles_deg, float))
    r, c = lines.shape[1:]
    window = _window((r, c), taper=0.25)

    def prepared(a: int) -> np.ndarray:
        return np.pad(_edges(lines[a]) * window, ((r // 2, r // 2), (c // 2, c // 2)))

    steps = np.zeros((len(order), 2))
    before = prepared(order[0])
    for i in range(1, len(order)):
        here = prepared(order[i])
        steps[i] = -phase_cross_correlation(before, here, upsample_factor=upsample)[0]
        before = here
    total = np.cumsum(steps, axis=0)
    dy, dx = np.empty(len(order)), np.empty(len(order))
    dy[order], dx[order] = total[:, 0], total[:, 1]
    return unobservable_removed(dy, dx, angles_deg)


def estimate_shifts(lines: np.ndarray, angles_deg: np.ndarray, *, centre_px: float | None = None,
                    rounds: int = MATCH_ROUNDS, first: str = "com") -> dict:
    """Per-angle shifts (px, full detector pixels) of the line integrals ``lines`` (n_angles, rows, columns):
    :func:`initial_shifts` (or ``first``), then projection matching on the series binned by 2 and at full size
    (binned to at most :data:`MATCH_MAX_COLUMNS` columns; :func:`_levels`), at most ``rounds`` rounds at full
    size.

    ``centre_px``: the rotation axis (searched on the aligned series each round when None). ``first``: the first
    guess, ``"com"`` (:func:`initial_shifts`) or ``"neighbours"`` (:func:`neighbour_shifts`). Returns ``{"dy",
    "dx"}`` (arrays, px; the unobservable parts removed, :func:`unobservable_removed`), ``"rounds"`` (rounds
    counted against ``rounds``), ``"last_update_px"`` (RMS of the last update applied, px) and ``"diverged"`` (an
    update of at least :data:`COARSE_TOL_PX` grew :data:`DIVERGE_FACTOR` times over the one before: stopped there,
    the shifts before it kept; a smaller growing update, noise, stops it too).
    """
    angles = np.asarray(angles_deg, float)
    base = int(np.ceil(lines.shape[2] / MATCH_MAX_COLUMNS))
    if first not in ("com", "neighbours"):
        raise ValueError(f"first guess {first!r}: choose com or neighbours")
    shifts = initial_shifts(lines, angles) if first == "com" else neighbour_shifts(lines, angles)
    state = {"rounds": 0, "last_update_px": np.inf, "diverged": False, "stop": False, "cap": rounds}
    for n, tol, most, min_px in _levels(base, rounds):
        small = binned_projections(np.asarray(lines, np.float32), n)
        if n > base and small.shape[2] < min_px:
            continue
        shifts = _match_level(small, angles, shifts, n, centre_px, tol, most, state)
    dy, dx = shifts
    return {"dy": dy, "dx": dx, "rounds": state["rounds"], "last_update_px": state["last_update_px"],
            "diverged": state["diverged"]}


def _levels(base: int, rounds: int) -> tuple:
    """The levels of projection matching: ``(binning, tolerance px, most rounds, least columns)``. At most
    ``rounds // 2`` rounds binned by 2 (until an update below :data:`COARSE_TOL_PX`, where at least
    :data:`MATCH_MIN_PX` columns remain) then full size, ``rounds`` in all."""
    return (2 * base, COARSE_TOL_PX, rounds // 2, MATCH_MIN_PX), (base, MATCH_TOL_PX, rounds, 0)


def _match_level(small: np.ndarray, angles: np.ndarray, shifts: tuple, n: int, centre_px: float | None, tol: float,
                 most: int, state: dict) -> tuple[np.ndarray, np.ndarray]:
    """Rounds of projection matching on ``small`` (the series binned by ``n``), from ``shifts`` (px, full size);
    ``state`` counts the rounds and keeps the last update, the stop and the divergence (:func:`estimate_shifts`).
    A stop on a growing update ends the estimate."""
    from layerscope.tomo.sinogram import series_centre_px

    dy, dx = shifts
    update = np.inf  # a level's first update is not compared with the coarser level's last
    for _ in range(most):
        if state["stop"] or state["rounds"] >= state["cap"]:
            break
        state["rounds"] += 1
        centre = binned_px(centre_px, n) if centre_px is not None else series_centre_px(
            shift_block(small, dy / n, dx / n), angles)
        ry, rx = _match_round(small, angles, dy / n, dx / n, centre)
        step = float(n * np.sqrt(np.mean(ry ** 2 + rx ** 2)))
        if step > DIVERGE_FACTOR * update:  # growing updates: keep the last shifts
            state["stop"] = True
            state["diverged"] = state["diverged"] or step >= COARSE_TOL_PX  # below it: noise, not a wrong lock
            break
        dy, dx = unobservable_removed(dy + n * ry, dx + n * rx, angles)
        update = state["last_update_px"] = step
        if update < tol:
            break
    return dy, dx
