"""Columns of the rows beyond the analysed layers reported by ``map_phases`` (issue 19, helper imgrecall).

A rotated field's corner rows of 2-3 columns, and a Li layer holding TM beyond the outermost TM
layer, hold no TM-TM gap of the image: :func:`layerscope.imaging.lattice.index_layers` leaves them
unnumbered (their stacking is not in the image). Their columns are real all the same, and were
missing from the column table (random draws 2019, 2023, 2027, 2029, 2144: 3-7 columns each,
``phases`` recall 0.93-0.99). Truth: the drawn lattice (analytic) and a random draw's truth columns.
"""

from __future__ import annotations

import numpy as np

from imaging_synthetic import cut_after_corner_row, layer_frame as _frame, layered_lattice, surface_with_vacuum_noise
from layerscope.imaging.lattice import chord_lengths, corner_rows, group_rows, index_layers

D_T = 0.2438  # LiCoO2 column spacing along the layers, nm
C3 = 0.4683  # LiCoO2 TM-layer period c/3, nm


def _layers(x, y, t, n):
    """Per column: the layer of index_layers and the one corner_rows continues the lattice with."""
    rows = group_rows(x, y, inplane=t, normal=n, inplane_spacing_nm=D_T, row_spacing_nm=C3 / 2)
    v = np.column_stack([x, y]) @ n
    v_row = np.bincount(rows, weights=v) / np.bincount(rows)
    chord = chord_lengths(v_row, inplane=t, normal=n, extent_nm=(6.0, 6.0))
    index = index_layers(np.column_stack([x, y]) @ t, v, rows, inplane_spacing_nm=D_T, cation_spacing_nm=C3 / 2,
                         chord_nm=chord)
    extra, on_line = corner_rows(v, rows, index.layer_of_row, chord_nm=chord, inplane_spacing_nm=D_T,
                                 cation_spacing_nm=C3 / 2)
    taken = (extra[rows] > -(10 ** 6)) & on_line
    return index.layer_of_row[rows], np.where(taken, extra[rows], -(10 ** 9)), index


def test_corner_rows_of_two_or_three_columns_continue_the_layer_numbers():
    # a LiCoO2 lattice rotated 40 or 141 degrees: index_layers leaves the 1-3 column corner rows out
    # (1.3 % of the columns); corner_rows takes every row of >= 2 columns there, two cation layers per
    # TM layer as in the truth, and leaves only single columns
    for angle in (40.0, 141.0):
        t, n = _frame(angle)
        x, y, k = layered_lattice(width_nm=6.0, height_nm=6.0, angle_deg=angle, shift_per_layer=1 / 3)
        layer, extra, _ = _layers(x, y, t, n)
        per_row = np.bincount(k - k.min())[k - k.min()]
        both = np.where(layer >= 0, layer, extra)
        on = both > -(10 ** 6)
        assert np.all(on[per_row >= 2])
        assert np.all(~on[per_row == 1])
        offset = both[on] - 2 * (k[on] - k.min())
        assert np.all(offset == offset[0])
        assert np.sum(extra > -(10 ** 6)) > 0 and np.all(layer[extra > -(10 ** 6)] < 0)


def test_maxima_in_vacuum_beyond_a_surface_are_not_taken():
    # as test_phases_recall: a surface across a rotated field, 10 noise maxima in the vacuum (20 seeds
    # each): rows through vacuum are sparse along their chords, none of the noise is taken
    for t, n, x, y, noise in surface_with_vacuum_noise():
        _, extra, _ = _layers(np.r_[x, noise[:, 0]], np.r_[y, noise[:, 1]], t, n)
        assert np.all(extra[x.size:] < -(10 ** 6))


def test_a_li_layer_beyond_the_outermost_tm_layer_is_taken_as_the_next_layer():
    # the set-up of test_phases_recall's outer Li layer: index_layers leaves it -1 (no gap between two TM
    # layers), corner_rows continues the lattice to it: the layer after the last TM layer, of Li parity
    t, n, x, y, k, last = cut_after_corner_row(40.0)
    v_last = np.mean(np.column_stack([x, y])[k == last] @ n)
    u = np.arange(-40, 40) * 2 * D_T + D_T / 3
    p = (v_last + C3 / 2) * n[None, :] + u[:, None] * t[None, :]
    outer = p[(p[:, 0] > 0.05) & (p[:, 0] < 5.95) & (p[:, 1] > 0.05) & (p[:, 1] < 5.95)]
    layer, extra, index = _layers(np.r_[x, outer[:, 0]], np.r_[y, outer[:, 1]], t, n)
    assert np.all(layer[x.size:] < 0)
    top = layer[: x.size][k == last][0]
    assert np.all(extra[x.size:] == top + 1) and (top + 1) % 2 != index.tm_parity


def test_random_draw_2027_reports_its_corner_columns():
    from scipy.spatial import cKDTree

    from imaging_scenes import phases_of_draw

    # tuning seed 2027: NMC622 [100] rotated 211 degrees, 2.2e4 e/A^2; 7 visible columns in 3-column corner
    # rows (spinel TM and Li layers, an O1 TM row) missed: recall 0.974 before, 1.000 after; precision 1.000
    pm, cat, sc, _ = phases_of_draw(2027)
    assert sc.recall >= 0.99 and sc.precision >= 0.99
    extra = pm.columns[~pm.columns["indexed"]]
    assert len(extra) >= 7 and extra["detected"].all() and (extra["layer"] == -1).all() and (extra["phase"] == "").all()
    d, _ = cKDTree(cat[["x_nm", "y_nm"]].to_numpy()).query(extra[["x_nm", "y_nm"]].to_numpy())
    assert np.all(d < 0.07)  # each on a cation column of the truth
    # they are in no layer's analysis: no interlayer segment or layer row holds layer -1
    assert (pm.interlayers["li_layer"] >= 0).all() and (pm.layers["layer"] >= 0).all()


def test_corner_columns_must_be_reached_from_the_analysed_columns():
    from layerscope.imaging.pipeline import _reached

    # analysed columns on a row at y = 0 (0.25 nm apart); candidates: a corner row 0.47 nm beyond it
    # (two layers), one more 0.47 nm beyond that, and a line of maxima 1.2 nm beyond the last (noise along
    # a void's edge): the two rows are reached step by step within 2.3 x 0.235 nm, the far line is not
    known_xy = np.column_stack([np.arange(10) * 0.25, np.zeros(10)])
    row1 = np.column_stack([np.arange(3) * 0.25 + 0.08, np.full(3, 0.47)])
    row2 = np.column_stack([np.arange(2) * 0.25 + 0.16, np.full(2, 0.94)])
    far = np.column_stack([np.arange(4) * 0.25, np.full(4, 2.14)])
    xy = np.vstack([known_xy, row1, row2, far])
    known = np.r_[np.ones(10, bool), np.zeros(9, bool)]
    got = _reached(xy, known, ~known, reach_nm=float(np.hypot(2.3 * 0.235, 0.5 * 0.25)))
    assert np.all(got[10:15]) and not got[15:].any() and not got[:10].any()


def test_unindexed_columns_reach_summary_cli_line_and_report(tmp_path, capsys):
    """Wiring: `layerscope phases` on random draw 2027 (its 3-column corner rows) counts the columns beyond the
    analysed layers alike in columns.csv (indexed = false), summary.json, the CLI line and report.html."""
    import json

    import pandas as pd

    from layerscope.cli import run
    from layerscope.simulate.draws import draw_scene

    image, px, truth = draw_scene(2027)
    src = tmp_path / "draw.npy"
    np.save(src, image)
    out = tmp_path / "out"
    p = truth.parameters
    assert run(["phases", str(src), "--pixel-size-nm", str(px), "--zone", p["zone"], "--composition",
                p["chemistry"], "--out", str(out)]) == 0
    n = int((~pd.read_csv(out / "columns.csv")["indexed"]).sum())
    assert n >= 7 and json.loads((out / "summary.json").read_text())["columns"]["unindexed"] == n
    assert f"{n} beyond the analysed layers (indexed = false)" in capsys.readouterr().out
    assert f"<b>{n}</b><span>detected columns beyond the analysed layers" in (out / "report.html").read_text()
