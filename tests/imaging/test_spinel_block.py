"""A spinel block read as one (issue 19, helper imgspinel, session 38): ``interlayers.SPINEL_BLOCK_POOL``.

Under a wide probe at a few 1e3 e/A^2 the segments of a thin surface spinel block read 0.25 +- 0.2 each and
their layers' pooled runs +- 0.1: every one "uncertain" (random draw 56). With the switch, an uncertain spinel
segment takes the decision of its block (the spinel segments joined along and across adjacent Li layers): the
mean of the site-weighted means of its filled and its empty sublattice, decided as a segment is.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imaging_scenes import li_layer_sites
from layerscope.imaging import interlayers
from layerscope.imaging.interlayers import MIXING_SYSTEMATIC, MIXING_THRESHOLD, interlayer_table

SEM = 0.4  # counting error of every site's index (a thin region at a few 1e3 e/A^2)


def _block(filled: float, environment: str = "spinel") -> pd.DataFrame:
    # Four adjacent Li layers (1, 3, 5, 7) of 24 sites each over the same stretch, alternating a sublattice reading
    # ``filled`` and an empty one reading 0 (``dark_sublattice``); every site's index error SEM, its TM reference 1
    # (equal site weights). Three segments of 8 sites per layer.
    parts = []
    for layer in (1, 3, 5, 7):
        t = li_layer_sites(layer, np.tile([filled, 0.0], 12), np.full(24, SEM))
        t["environment"] = environment
        t["dark_sublattice"] = np.tile([False, True], 12)
        t["tm_reference"] = 1.0
        parts.append(t)
    return pd.concat(parts, ignore_index=True)


def _decisions(table: pd.DataFrame, on: bool, monkeypatch) -> pd.DataFrame:
    monkeypatch.setattr(interlayers, "SPINEL_BLOCK_POOL", on)
    return interlayer_table(table)


def test_spinel_block_reads_yes_where_its_segments_are_uncertain(monkeypatch):
    assert MIXING_THRESHOLD == 0.1 and MIXING_SYSTEMATIC == 0.02
    # By hand. A segment: 4 + 4 sites, fill (0.5 + 0) / 2 = 0.25, error sqrt(2 x 0.4^2 / 4) / 2 = 0.1414;
    # 0.25 - 2 hypot(0.1414, 0.02) = -0.036 < 0.1: uncertain. A layer's pooled run (24 sites): error 0.0816,
    # 0.25 - 0.168 = 0.082 < 0.1: uncertain. The block (96 sites, 48 per sublattice): error
    # sqrt(2 x 0.4^2 / 48) / 2 = 0.0408, 0.25 - 2 hypot(0.0408, 0.02) = 0.159 > 0.1: "yes".
    off = _decisions(_block(0.5), False, monkeypatch)
    assert len(off) == 12 and (off["mixing"] == "uncertain").all()
    on = _decisions(_block(0.5), True, monkeypatch)
    assert (on["mixing"] == "yes").all()
    assert (on["mixing_sites"] == 96).all()
    assert on["li_fill"].to_numpy() == pytest.approx(np.full(12, 0.25), abs=1e-9)  # the segments' own fills stay


def test_clean_block_with_the_same_noise_reads_no(monkeypatch):
    # The same block with both sublattices empty (a clean layer called spinel): each segment 0 +- 0.141, each layer
    # 0 +- 0.082, uncertain; the block 0 +- 0.0408: 0 + 2 hypot(0.0408, 0.02) = 0.091 < 0.1, "no" -- never "yes".
    off = _decisions(_block(0.0), False, monkeypatch)
    assert (off["mixing"] == "uncertain").all()
    on = _decisions(_block(0.0), True, monkeypatch)
    assert (on["mixing"] == "no").all()


def test_clean_layered_block_is_untouched(monkeypatch):
    # A clean layered block with the same noise is no spinel: its decisions are those without the switch.
    table = _block(0.0, environment="layered")
    off = _decisions(table, False, monkeypatch)
    on = _decisions(table, True, monkeypatch)
    assert (on["mixing"] != "yes").all()
    pd.testing.assert_frame_equal(off, on)


def test_layered_offset_is_taken_only_when_closer_to_zero(monkeypatch):
    # The block's empty sublattice at -0.3 +- 0.0577 (48 sites of error 0.4) lies below zero by more than two
    # errors: an offset; a layered level of -0.1 +- 0.01 is closer to zero and is taken instead (the smaller
    # correction): fill (0.5 - 0.3) / 2 + 0.1 = 0.2, error hypot(0.0408, 0.01).
    table = _block(0.5)
    table.loc[table["dark_sublattice"], "mixing"] = -0.3
    sel = np.ones(len(table), dtype=bool)
    f, e, n = interlayers._block_reading(table, sel, np.ones(len(table)), (-0.1, 0.01))
    assert (f, e, n) == pytest.approx((0.2, np.hypot(np.sqrt(2 * SEM ** 2 / 48) / 2, 0.01), 96), abs=1e-9)
    monkeypatch.setattr(interlayers, "SPINEL_BLOCK_LAYERED_OFFSET", False)
    f, e, _ = interlayers._block_reading(table, sel, np.ones(len(table)), (-0.1, 0.01))
    assert (f, e) == pytest.approx((0.4, np.sqrt(2 * SEM ** 2 / 48) / 2), abs=1e-9)


def test_segment_reading_apart_from_its_block_keeps_its_own_decision(monkeypatch):
    # The last segment of layer 7 (its sites 16-23) reads 0.1 on its filled sublattice with errors 0.05 (a diluted
    # block end, random draw 7026): its own fill 0.05 +- 0.0177, 0.05 + 2 hypot(0.0177, 0.02) = 0.103 > 0.1,
    # uncertain. The block reads ~0.23 +- 0.04: the segment lies ~4 errors from it, so it is no part of the block's
    # "yes" and stays uncertain; the other eleven take the block's "yes".
    table = _block(0.5)
    end = (table["layer"] == 7) & (table["u_nm"] >= 16 * 0.25)
    table.loc[end, "mixing_sem"] = 0.05
    table.loc[end & ~table["dark_sublattice"], "mixing"] = 0.1
    on = _decisions(table, True, monkeypatch)
    last = (on["li_layer"] == 7) & (on["segment"] == on.loc[on["li_layer"] == 7, "segment"].max())
    assert on.loc[last, "li_fill"].iloc[0] == pytest.approx(0.05, abs=1e-9)
    assert on.loc[last, "mixing"].iloc[0] == "uncertain"
    assert (on.loc[~last, "mixing"] == "yes").all()


def test_draw_191_spinel_segment_decided_by_its_block(monkeypatch):
    # NMC, 0.056 nm probe, 2.0e3 e/A^2 (tuning range 0-199): one spinel segment (7 sites, truth 0.25) read
    # 0.190 +- 0.048 (counting) and stayed uncertain, its layer's run too: spinel fill 0.911. Its block (79 sites)
    # reads "yes" and the segment agrees with it: 1.0, nothing else of the draw's interlayer scores moves.
    from imaging_scenes import scored_off_and_on

    off, on = scored_off_and_on(monkeypatch, interlayers, "SPINEL_BLOCK_POOL", 191)
    assert off["fill_accuracy_spinel"] == pytest.approx(0.9114, abs=1e-3)
    assert on["fill_accuracy_spinel"] == 1.0
    for k in ("fill_accuracy", "fill_accuracy_rim", "fill_wrong_yes", "fill_wrong_no", "step_accuracy_layered"):
        assert on[k] == pytest.approx(off[k], nan_ok=True)
