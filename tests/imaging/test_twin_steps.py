"""Twin-like domains counted from the step sequence of the interlayer map (issue 19).

A twin-like domain (TD) of n layers is n consecutive reversed (O3') TM-TM steps along a position
of the layers (the seed studies' count; the truth of the random draws, ``_twin_runs`` in
:mod:`layerscope.simulate.draws`). The unit tests build interlayer tables by hand, where the
truth is the table itself; the draw tests compare ``summary["twin_like_domains"]`` with the
draws' truth on four fast tuning draws that the per-column count got wrong (seeds 0, 4, 56)
or that hold a TD cut laterally by a crack (58).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from layerscope.imaging.domains import MIN_TWIN_SITES, twin_like_domains

D_NM = 0.25  # site spacing along the layers
KINDS = ("single-layer", "double-layer", "multilayer")


def _table(gaps: dict[int, list[tuple[float, float, str]]]) -> pd.DataFrame:
    """Interlayer table from ``{li_layer: [(u_start_nm, u_end_nm, step), ...]}`` (sites every D_NM)."""
    rows = [{"li_layer": li, "u_start_nm": a, "u_end_nm": b, "step": step, "n_sites": int(round((b - a) / D_NM)) + 1}
            for li, segs in gaps.items() for a, b, step in segs]
    return pd.DataFrame(rows)


def _uniform(steps: dict[int, str], length_nm: float = 5.0) -> dict[int, list[tuple[float, float, str]]]:
    return {li: [(0.0, length_nm, s)] for li, s in steps.items()}


def _counts(table: pd.DataFrame) -> dict[str, int]:
    return {k: int((table["twin_type"] == k).sum()) for k in KINDS}


def _twins(gaps) -> pd.DataFrame:
    return twin_like_domains(_table(gaps), inplane_spacing_nm=D_NM)[0]


def test_reversed_gaps_beside_an_o1_block_are_their_own_domains():
    # O3 | O3' | O1 | O3' | O3 down the gaps: the stack builder's O1 block; two single-layer TDs, one O1 step
    gaps = _uniform({1: "O3", 3: "O3'", 5: "O1", 7: "O3'", 9: "O3"})
    twins = _twins(gaps)
    assert _counts(twins) == {"single-layer": 2, "double-layer": 0, "multilayer": 0}
    assert sorted(twins["first_gap"]) == [3, 7] and list(twins["n_tm_layers"]) == [1, 1]
    o1 = twin_like_domains(_table(gaps), inplane_spacing_nm=D_NM, step="O1")[0]
    assert len(o1) == 1 and int(o1.iloc[0]["n_tm_layers"]) == 1 and o1.iloc[0]["twin_type"] == ""


def test_a_three_layer_domain_is_one_multilayer_domain():
    gaps = _uniform({1: "O3", 3: "O3'", 5: "O3'", 7: "O3'", 9: "O3"})
    (td,) = _twins(gaps).itertuples()
    assert (td.n_tm_layers, td.first_gap, td.last_gap, td.twin_type) == (3, 3, 7, "multilayer")
    assert td.n_sites_along == 21  # 5 nm / 0.25 nm + 1


def test_a_domain_split_by_a_void_or_an_unknown_segment_is_one_domain():
    # a double-layer TD; a void (no sites) cuts gaps 3-7 between u = 2 and 3 nm, and gap 5 reads
    # "unknown" over 3-3.5 nm: one domain of two layers, not two
    void = {li: [(0.0, 1.75, s), (3.25, 6.0, s)] for li, s in {1: "O3", 3: "O3'", 5: "O3'", 7: "O3"}.items()}
    void[5] = [(0.0, 1.75, "O3'"), (3.25, 3.5, "unknown"), (3.75, 6.0, "O3'")]
    twins = _twins(void)
    assert _counts(twins) == {"single-layer": 0, "double-layer": 1, "multilayer": 0}
    assert twins.iloc[0]["u_start_nm"] == pytest.approx(0.0) and twins.iloc[0]["u_end_nm"] == pytest.approx(6.0)


def test_a_crack_ending_one_gap_keeps_the_domain_double():
    # seed 58's pattern: gap 5 of a double-layer TD (and the O3 gap below) end at u = 2.5 nm (a
    # basal crack); beyond it (18 sites, more than the 11 where it is two deep) the run is open (no
    # reading below gap 3), so it does not decide n
    gaps = {1: [(0.0, 7.0, "O3")], 3: [(0.0, 7.0, "O3'")], 5: [(0.0, 2.5, "O3'")], 7: [(0.0, 2.5, "O3")]}
    twins = _twins(gaps)
    assert _counts(twins) == {"single-layer": 0, "double-layer": 1, "multilayer": 0}


def test_a_short_misread_inside_a_gap_does_not_split_the_domain():
    # seed 56's pattern: 2 sites of a single-layer TD read O3 at a void's edge, 2 sites of the O3
    # gap below read O3' there: still one single-layer TD
    gaps = {1: [(0.0, 6.0, "O3")],
            3: [(0.0, 2.75, "O3'"), (3.0, 3.25, "O3"), (3.5, 6.0, "O3'")],
            5: [(0.0, 2.75, "O3"), (3.0, 3.25, "O3'"), (3.5, 6.0, "O3")], 7: [(0.0, 6.0, "O3")]}
    assert _counts(_twins(gaps)) == {"single-layer": 1, "double-layer": 0, "multilayer": 0}


def test_domains_separated_by_read_o3_material_are_two_and_short_ones_are_fragments():
    # gap 3: O3' over 0-2 nm and 4-6 nm with O3 read in between: two single-layer TDs. Gap 7: an O3'
    # stretch of MIN_TWIN_SITES - 1 sites is a fragment, one of MIN_TWIN_SITES sites a domain.
    short = (MIN_TWIN_SITES - 2) * D_NM
    gaps = {1: [(0.0, 6.0, "O3")], 3: [(0.0, 2.0, "O3'"), (2.25, 3.75, "O3"), (4.0, 6.0, "O3'")],
            5: [(0.0, 6.0, "O3")], 7: [(0.0, 2.0, "O3"), (2.25, 2.25 + short, "O3'"), (2.5 + short, 6.0, "O3")],
            9: [(0.0, 6.0, "O3")]}
    twins = _twins(gaps)
    assert _counts(twins) == {"single-layer": 2, "double-layer": 0, "multilayer": 0}
    frag = twins[twins["fragment"]]
    assert len(frag) == 1 and frag.iloc[0]["n_sites_along"] == MIN_TWIN_SITES - 1
    assert frag.iloc[0]["twin_type"] == "fragment"
    gaps[7] = [(0.0, 2.0, "O3"), (2.25, 2.25 + short + D_NM, "O3'"), (2.75 + short, 6.0, "O3")]
    assert _counts(_twins(gaps))["single-layer"] == 3


@pytest.mark.parametrize("seed", [0, 4, 56, 58])
def test_draw_twin_counts_equal_the_truth(seed):
    # tuning draws: 0 (O1 block flanked by reversed steps, truth 2/0/0; the per-column count said
    # 0/0/0), 4 (3/0/0; was 1/0/0), 56 (a void splits a single-layer TD; was 2/0/0 for 1/0/0),
    # 58 (a crack ends one gap of a double-layer TD, 1/1/0)
    from layerscope.imaging.pipeline import map_phases
    from layerscope.simulate.draws import draw_scene

    image, px, truth = draw_scene(seed)
    assert not truth.twin_ambiguous
    p = truth.parameters
    pm = map_phases(image, pixel_size_nm=px, zone=p["zone"], composition=p["chemistry"])
    assert pm.summary["twin_like_domains"] == truth.twin_runs
    counted = pm.domains[(pm.domains["phase"] == "O3'") & ~pm.domains["fragment"]]
    assert sorted(counted["n_tm_layers"].clip(upper=3)) == sorted(
        np.repeat([1, 2, 3], [truth.twin_runs[k] for k in KINDS]).tolist())
