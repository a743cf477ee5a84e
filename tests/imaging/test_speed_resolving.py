"""The wide-probe path's resolving maxima from the first detection pass's maps equal those of a second
detection (issue 19, helper imgspeed2: ``pipeline._resolved_maxima`` no longer runs the first pass twice)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerscope.imaging import columns as col

PX, A, S = 0.012, 0.24, 0.06  # nm per pixel, column spacing along the rows (nm), column width (nm): a wide probe


def _wide_rows(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of wide columns (a fifth at 0.3 of the others' height) and, between the rows, dim Li-layer
    columns (half at 0.3, half at 0.05): a 400^2 Poisson image, 30 counts a column, and the true positions (nm)."""
    n = 400
    rng = np.random.default_rng(seed)
    yy, xx = (np.mgrid[:n, :n] + 0.5) * PX
    lam = np.full((n, n), 0.3)
    xy = []
    for y in np.arange(0.12, n * PX, 0.47):
        for x in np.arange(0.1, n * PX - 0.1, A):
            xy.append((x, y, 0.3 if rng.random() < 0.2 else 1.0))
        for x in np.arange(0.22, n * PX - 0.1, A):
            xy.append((x, y + 0.235, 0.3 if rng.random() < 0.5 else 0.05))
    for x, y, amp in xy:
        lam += amp * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * S * S))
    return rng.poisson(lam * 30).astype(float), np.array(xy)[:, :2]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_resolving_maxima_of_the_first_pass_equal_a_second_detection(seed):
    image, truth = _wide_rows(seed)
    r = col.resolving_sigma(S, A)
    args = dict(pixel_size_nm=PX, min_separation_nm=0.85 * A, column_sigma_nm=S)
    first = col.detect_columns(image, **args, neighbour_nm=A)  # find_columns' detection in the pipeline
    assert first.neighbour.sum() >= 4  # dim columns kept by the lattice-neighbour test: not in the kept set below
    second = col.detect_columns(image, **args, resolve_sigma_nm=r)  # what _resolved_maxima ran before
    rows, cols = col.resolving_maxima(first.first_pass, r)
    assert rows.size >= 10
    # the same maxima in the same order, bit for bit
    assert np.array_equal(rows, second.rows[second.resolved]) and np.array_equal(cols, second.cols[second.resolved])
    # and they are columns: each within 0.03 nm (2.5 pixels) of a true one (0.015-0.021 nm seen)
    xy = np.column_stack([(cols + 0.5) * PX, (rows + 0.5) * PX])
    assert np.max(np.min(np.linalg.norm(xy[:, None, :] - truth[None, :, :], axis=2), axis=1)) < 0.03


def test_resolving_maxima_without_a_narrower_filter_or_a_first_pass():
    image, _ = _wide_rows(0)
    first = col.detect_columns(image, pixel_size_nm=PX, min_separation_nm=0.85 * A, column_sigma_nm=S).first_pass
    assert first is not None and first.kept.shape[1] == 2
    for rows, cols in (col.resolving_maxima(first, S), col.resolving_maxima(None, 0.5 * S)):
        assert rows.size == 0 and cols.size == 0
    # an image with no maximum above the noise has no first pass
    assert col.detect_columns(np.full((64, 64), 5.0), pixel_size_nm=PX, min_separation_nm=0.85 * A,
                              column_sigma_nm=S).first_pass is None


def _done(call, **_):
    """``pipeline._on_thread`` run on the calling thread: the value (or exception) at once."""
    from concurrent.futures import Future

    out: Future = Future()
    try:
        out.set_result(call())
    except BaseException as exc:
        out.set_exception(exc)
    return out


def test_resolving_pass_beside_the_site_measurements_equals_the_sequential_run(monkeypatch):
    """Random draw 75 (NMC622 [100], 0.156 nm probe): the resolving pass on its own thread gives the table and
    notes of the run on one thread, bit for bit, and it is a wide-probe run that adds resolved maxima."""
    from layerscope.imaging import pipeline as pl
    from layerscope.simulate.draws import draw_scene

    image, px, truth = draw_scene(75)
    p = truth.parameters
    args = dict(pixel_size_nm=px, zone=p["zone"], composition=p["chemistry"])
    fast = pl.find_atom_columns(image, **args)
    monkeypatch.setattr(pl, "_on_thread", _done)
    slow = pl.find_atom_columns(image, **args)
    pd.testing.assert_frame_equal(fast.columns, slow.columns, check_exact=True)
    assert fast.notes == slow.notes
    assert any("maxima of the image smoothed by" in n for n in fast.notes)  # the resolving pass added maxima
    assert len(fast.columns) > 500  # a real scene (707 sites)
