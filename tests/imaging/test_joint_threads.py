"""Issue 19 speed with a wide probe (imgspeed, session 36): the joint fit's new arrangement computes exactly the
numbers of the code it replaced.

* ``columns.refine_jointly`` gathers each round's windows once (``_joint_windows``) for the heights
  (``_joint_heights``) and the centres (``_joint_block``), and reads them in row parts of ``JOINT_PART_ROWS`` on
  ``JOINT_THREADS`` threads, each row keeping its block's neighbour padding: bit for bit the centres, heights and
  backgrounds of session 35's code (copied below as ``_old_*``: each block's neighbours and windows found and
  gathered again by both steps, the blocks one after another);
* ``columns._joint_normal_equations`` skips the products with the 0/1 window mask (``_times_mask``): the same
  arrays bit for bit;
* ``lattice_columns`` / ``residual_columns`` given the pixel noise (``noise``) return what they return reading it;
* ``_gaussian_strips`` (the residual pass's blurs in strips on threads) equals ``scipy.ndimage.gaussian_filter``.

The scene is exact: plain Gaussians of one width on a constant background, Poisson counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerscope.imaging import columns as col

SIGMA_PX = 4.0   # the columns' width (pixels): a wide probe at 0.0125 nm pixels
STEP = 11.5      # pixels between columns along a row
N = 160          # pixels a side


def _scene(seed: int = 3):
    """Rows of Gaussian columns (heights 0.2-1) ``STEP`` apart, rows 19 pixels apart and shifted by a third of a
    step each; Poisson counts at 400 per unit height. Returns the image and the columns' rows and columns."""
    rng = np.random.default_rng(seed)
    pts = [(r, 6 + (i % 3) * STEP / 3 + c, rng.uniform(0.2, 1.0))
           for i, r in enumerate(np.arange(6.0, N - 6, 19.0)) for c in np.arange(0, N - 12, STEP)]
    yy, xx = np.mgrid[0:N, 0:N].astype(float)
    img = 0.05 + sum(h * np.exp(-0.5 * ((yy - r) ** 2 + (xx - c) ** 2) / SIGMA_PX**2) for r, c, h in pts)
    rows, cols = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
    return rng.poisson(img * 400).astype(float), rows, cols


# --- session 35's joint fit (src/layerscope/imaging/columns.py at ad0b969), the reference -------------------------

def _old_refine_jointly(image, rows, cols, *, sigma_px, radius_px, fixed=None, rounds=None, held=None):
    data = col.as_float_image(image)
    start = np.column_stack([np.asarray(rows, float), np.asarray(cols, float)])
    fix_pos = np.zeros((0, 2)) if fixed is None else np.column_stack([fixed[0], fixed[1]]).astype(float)
    fix_amp = np.zeros(0) if fixed is None else np.clip(np.nan_to_num(np.asarray(fixed[2], float)), 0, None)
    pos, amp, bkg = start.copy(), np.zeros(len(start)), np.zeros(len(start))
    dy, dx = col.disc_offsets(radius_px)
    side = 2 * int(max(np.abs(dy).max(), np.abs(dx).max())) + 1
    reach = side // 2 + col.GAUSSIAN_REACH * sigma_px + 1
    for _ in range(col.JOINT_ROUNDS if rounds is None else max(0, rounds)):
        amp, bkg = _old_joint_heights(data, pos, fix_pos, fix_amp, dy, dx, sigma_px)
        src, weight = np.vstack([pos, fix_pos]), np.concatenate([np.clip(amp, 0, None), fix_amp])
        new = [np.empty_like(pos), np.empty_like(amp), np.empty_like(bkg)]
        for sl in col._budget_blocks(len(pos), col._most_near(pos, src, reach + 1), side):
            new[0][sl], new[1][sl], new[2][sl] = _old_joint_block(data, pos, amp, bkg, sl, src, weight, dy, dx,
                                                                  sigma_px)
        pos = new[0]
        if held is not None:
            pos[held] = start[held]
    away = ~np.all(np.isfinite(pos), 1) | (np.hypot(*(pos - start).T) > col.JOINT_MAX_SHIFT_WIDTHS * sigma_px)
    pos[away] = start[away]
    return pos[:, 0], pos[:, 1], amp, bkg


def _old_joint_heights(data, pos, fix_pos, fix_amp, dy, dx, sigma):
    from scipy import sparse
    from scipy.sparse.linalg import spsolve

    n = len(pos)
    src = np.vstack([pos, fix_pos])
    a, b = np.zeros(n), np.zeros(n)
    ii, jj, ca, cb = [], [], [], []
    side = 2 * int(max(np.abs(dy).max(), np.abs(dx).max())) + 1
    for sl in col._budget_blocks(n, col._most_near(pos, src, side // 2 + col.GAUSSIAN_REACH * sigma + 2), side):
        begin = sl.start
        a[sl], b[sl], idx, used, c_a, c_b = _old_window_readings(data, pos, sl, src, dy, dx, sigma)
        fixed_j = used & (idx >= n)
        known = np.concatenate([np.zeros(n), fix_amp])[idx] * fixed_j
        a[sl], b[sl] = a[sl] - (c_a * known).sum(1), b[sl] - (c_b * known).sum(1)
        free = used & (idx < n)
        ii.append(np.nonzero(free)[0] + begin), jj.append(idx[free]), ca.append(c_a[free]), cb.append(c_b[free])
    ii, jj, ca, cb = (np.concatenate(v) for v in (ii, jj, ca, cb))
    system = sparse.identity(n, format="csr") + sparse.csr_matrix((ca, (ii, jj)), shape=(n, n))
    amp = np.asarray(spsolve(system.tocsc(), np.nan_to_num(a)), float) if n else np.zeros(0)
    amp = np.where(np.isfinite(amp), amp, np.nan_to_num(a))
    bkg = b - sparse.csr_matrix((cb, (ii, jj)), shape=(n, n)) @ amp
    return amp, bkg


def _old_window_readings(data, pos, sl, src, dy, dx, sigma):
    r = int(max(np.abs(dy).max(), np.abs(dx).max()))
    k = np.arange(-r, r + 1)
    p = pos[sl]
    r0, c0 = np.rint(p[:, 0]).astype(np.int64), np.rint(p[:, 1]).astype(np.int64)
    idx, used = col._padded_near(np.column_stack([r0, c0]).astype(float), src, r + col.GAUSSIAN_REACH * sigma + 1)
    used = used & (idx != np.arange(sl.start, sl.stop)[:, None])
    z, yy, xx, valid = col.gather_windows(data, r0, c0, dy, dx)
    w = valid.astype(float)
    g = np.exp(-0.5 * ((yy - p[:, 0, None]) ** 2 + (xx - p[:, 1, None]) ** 2) / sigma**2) * w
    s_1, s_g, s_gg = w.sum(1), g.sum(1), (g * g).sum(1)
    det = s_gg * s_1 - s_g * s_g
    ok = (s_1 >= 5) & (det > 1e-12)
    det = np.where(ok, det, 1.0)
    s_z, s_gz = (z * w).sum(1), (g * z).sum(1)
    a, b = (s_gz * s_1 - s_g * s_z) / det, (s_gg * s_z - s_g * s_gz) / det
    sq_w, sq_g = np.zeros((len(p), k.size, k.size)), np.zeros((len(p), k.size, k.size))
    sq_w[:, dy + r, dx + r], sq_g[:, dy + r, dx + r] = w, g
    prof_r = np.exp(-0.5 * ((r0[:, None, None] + k - src[idx][:, :, 0, None]) / sigma) ** 2)
    prof_c = np.exp(-0.5 * ((c0[:, None, None] + k - src[idx][:, :, 1, None]) / sigma) ** 2)
    s_t = (np.matmul(prof_r, sq_w) * prof_c).sum(-1)
    s_gt = (np.matmul(prof_r, sq_g) * prof_c).sum(-1)
    c_a = np.where(ok[:, None] & used, (s_gt * s_1[:, None] - s_g[:, None] * s_t) / det[:, None], 0.0)
    c_b = np.where(ok[:, None] & used, (s_gg[:, None] * s_t - s_g[:, None] * s_gt) / det[:, None], 0.0)
    return np.where(ok, a, np.nan), np.where(ok, b, np.nan), idx, used, c_a, c_b


def _old_normal_equations(q, target, yy, xx, w, sigma):
    ry, rx = yy - q[:, 2, None], xx - q[:, 3, None]
    g = np.exp(-0.5 * (ry**2 + rx**2) / sigma**2) * w
    resid = target - q[:, 0, None] * g - q[:, 1, None] * w
    a = q[:, 0] / sigma**2
    gy, gx = g * ry, g * rx
    cols = (g, w, gy, gx)
    scale = (np.ones_like(a), np.ones_like(a), a, a)
    jtj = np.empty((len(q), 4, 4))
    for i in range(4):
        for j in range(i, 4):
            v = (cols[i] * cols[j]).sum(1) if (i, j) != (1, 1) else w.sum(1)
            jtj[:, i, j] = jtj[:, j, i] = v * scale[i] * scale[j]
    jtr = np.stack([(c * resid).sum(1) * f for c, f in zip(cols, scale)], axis=1)
    return jtj + 1e-9 * np.eye(4), jtr


def _old_joint_block(data, pos, amp, bkg, sl, src, weight, dy, dx, sigma):
    r = int(max(np.abs(dy).max(), np.abs(dx).max()))
    k = np.arange(-r, r + 1)
    p = pos[sl]
    r0, c0 = np.rint(p[:, 0]).astype(np.int64), np.rint(p[:, 1]).astype(np.int64)
    idx, used = col._padded_near(np.column_stack([r0, c0]).astype(float), src, r + col.GAUSSIAN_REACH * sigma + 1)
    used = used & (idx != np.arange(sl.start, sl.stop)[:, None])
    others = col._gaussian_squares(r0, c0, k, src[idx], weight[idx] * used, sigma)[:, dy + r, dx + r]
    z, yy, xx, valid = col.gather_windows(data, r0, c0, dy, dx)
    w = valid.astype(float)
    target = (z - others) * w
    q = np.column_stack([np.nan_to_num(amp[sl]), np.nan_to_num(bkg[sl]), p])
    for _ in range(2):
        jtj, jtr = _old_normal_equations(q, target, yy, xx, w, sigma)
        ok = (w.sum(1) >= 5) & (q[:, 0] > 0) & np.all(np.isfinite(jtr), 1)
        step = np.zeros_like(q)
        step[ok] = np.linalg.solve(jtj[ok], jtr[ok][:, :, None])[:, :, 0]
        move = np.hypot(step[:, 2], step[:, 3])
        limit = col.JOINT_STEP_WIDTHS * sigma
        step[:, 2:] *= np.where(move > limit, limit / np.maximum(move, 1e-12), 1.0)[:, None]
        q = q + np.where(np.isfinite(step), step, 0.0)
    return q[:, 2:], q[:, 0], q[:, 1]


# --- the tests -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scene():
    return _scene()


def _start(rows, cols, seed=5):
    """Start centres 0-1.5 pixels off the truth; every fifth column held out as a fixed source at its truth."""
    rng = np.random.default_rng(seed)
    free = np.arange(rows.size) % 5 != 0
    r, c = rows + rng.uniform(-1.5, 1.5, rows.size), cols + rng.uniform(-1.5, 1.5, cols.size)
    heights = 400.0 * np.array(_truth_heights())
    return r[free], c[free], (rows[~free], cols[~free], heights[~free])


@pytest.mark.parametrize("threads, part_rows, budget", [(2, 512, None), (2, 7, None), (3, 5, 1 << 14), (1, 512, 1 << 14)])
def test_refine_jointly_equals_session35_code_bit_for_bit(scene, monkeypatch, threads, part_rows, budget):
    img, rows, cols = scene
    r, c, fixed = _start(rows, cols)
    held = np.arange(r.size) % 7 == 0
    monkeypatch.setattr(col, "JOINT_THREADS", threads)
    monkeypatch.setattr(col, "JOINT_PART_ROWS", part_rows)
    monkeypatch.setattr(col, "JOINT_REACH_WIDTHS", None)  # session 35's reach (GAUSSIAN_REACH; imgspeed3 cuts it)
    if budget is not None:  # several blocks of rows, each with its own neighbour padding
        monkeypatch.setattr(col, "_JOINT_BUDGET", budget)
        dy, dx = col.disc_offsets(2.5 * SIGMA_PX)
        side = 2 * int(np.abs(dy).max()) + 1
        src = np.vstack([np.column_stack([r, c]), np.column_stack(fixed[:2])])
        assert len(col._budget_blocks(r.size, col._most_near(np.column_stack([r, c]), src, 40.0), side)) >= 3
    kw = dict(sigma_px=SIGMA_PX, radius_px=2.5 * SIGMA_PX, fixed=fixed, held=held)
    new = col.refine_jointly(img, r, c, **kw)
    old = _old_refine_jointly(img, r, c, **kw)
    for a, b in zip(new, old):
        assert np.array_equal(a, b, equal_nan=True)  # exact: every bit
    # and the fit did its work: the free centres' median distance to their truth 1.17 px at the start, 0.11 after
    free = np.arange(rows.size) % 5 != 0
    err = np.hypot(new[0] - rows[free], new[1] - cols[free])[~held]
    err0 = np.hypot(r - rows[free], c - cols[free])[~held]
    assert np.median(err0) > 1.0 and np.median(err) < 0.2


def test_residual_image_heights_equal_session35_code(scene, monkeypatch):
    """``_joint_heights`` without windows (the residual pass's call) on threads equals the old blocks."""
    img, rows, cols = scene
    monkeypatch.setattr(col, "JOINT_PART_ROWS", 9)
    pos = np.column_stack([rows, cols])
    dy, dx = col.disc_offsets(2.5 * SIGMA_PX)
    new = col._joint_heights(img, pos, np.zeros((0, 2)), np.zeros(0), dy, dx, SIGMA_PX)
    old = _old_joint_heights(img, pos, np.zeros((0, 2)), np.zeros(0), dy, dx, SIGMA_PX)
    for a, b in zip(new, old):
        assert np.array_equal(a, b, equal_nan=True)
    # the heights are the truth's (0.2-1 x 400 counts): within 4 % RMS of each column's own height
    truth = np.array([h for h in _truth_heights()]) * 400
    assert np.sqrt(np.mean((new[0] / truth - 1) ** 2)) < 0.04


def _truth_heights(seed: int = 3):
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.2, 1.0) for _ in np.arange(6.0, N - 6, 19.0) for _ in np.arange(0, N - 12, STEP)]


def test_normal_equations_equal_the_products_with_the_mask():
    """Windows with pixels outside the image (mask 0) and negative offsets (signed zeros)."""
    rng = np.random.default_rng(0)
    n, p = 50, 81
    yy, xx = rng.uniform(-10, 10, (n, p)), rng.uniform(-10, 10, (n, p))
    w = (rng.uniform(size=(n, p)) > 0.2).astype(float)
    target = rng.normal(100, 10, (n, p)) * w
    q = np.column_stack([rng.uniform(50, 100, n), rng.uniform(0, 10, n), rng.uniform(-1, 1, (n, 2))])
    for a, b in zip(col._joint_normal_equations(q, target, yy, xx, w, 3.0),
                    _old_normal_equations(q, target, yy, xx, w, 3.0)):
        assert np.array_equal(a, b)


def test_passes_given_the_noise_equal_those_reading_it(scene):
    img, rows, cols = scene
    fit = pd.DataFrame({"row": rows + 0.2, "col": cols - 0.1, "sigma_px": SIGMA_PX * 0.8,
                        "amplitude": 400.0 * np.array(_truth_heights()), "fit_ok": True})
    fit = fit[np.arange(len(fit)) % 6 != 3].reset_index(drop=True)  # hidden columns for the passes to find
    tests = dict(pixel_size_nm=0.0125, column_sigma_nm=SIGMA_PX * 0.0125, neighbour_nm=STEP * 0.0125,
                 min_separation_nm=0.85 * STEP * 0.0125, noise_sigmas=5.0, relative_threshold=0.3)
    noise = col.image_pixel_noise(img)
    for func in (col.lattice_columns, col.residual_columns):
        plain, given = func(img, fit, **tests), func(img, fit, **tests, noise=noise)
        pd.testing.assert_frame_equal(plain, given, check_exact=True)
    assert len(col.residual_columns(img, fit, **tests)) >= 1


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_gaussian_strips_equal_scipy_gaussian_filter(monkeypatch, threads):
    """The residual pass's two blurs (a sparse splat, truncated at 8 widths, zero outside; the residual, edge
    continued) in strips on threads equal :func:`scipy.ndimage.gaussian_filter` bit for bit."""
    from scipy import ndimage

    monkeypatch.setattr(col, "JOINT_THREADS", threads)
    rng = np.random.default_rng(2)
    splat = np.where(rng.random((203, 157)) > 0.98, rng.uniform(0, 5e3, (203, 157)), 0.0)
    noisy = rng.normal(100.0, 10.0, (203, 157))
    for image, mode, truncate in ((splat, "constant", col.GAUSSIAN_REACH), (noisy, "nearest", 4.0)):
        want = ndimage.gaussian_filter(image, SIGMA_PX, mode=mode, truncate=truncate)
        assert np.array_equal(col._gaussian_strips(image, SIGMA_PX, mode=mode, truncate=truncate), want)
