"""The interlayer map: every gap between two adjacent TM layers, segment by segment along the layer.

A gap (the Li layer between TM layers ``k`` and ``k + 2``) carries two observables of the seed
studies: the stacking step across it (O3, O3' = reversed, O1, or a glide: a registry off all
three) and the filling of its Li layer (the mixing index of its sites: TM in the Li layer).
:func:`interlayer_table` cuts each gap into runs of one step along the layer, and runs longer
than ``max_sites`` into equal segments, and reports for each segment the step, the mean registry
with its standard error, the Li-layer fill with its standard error and a mixing decision
("yes" / "no" / "uncertain": the fill more than two standard errors above / below
``mixing_threshold``, otherwise uncertain). Written as ``interlayers.csv`` by ``layerscope phases``.

The mixing decision's error (with the sites' ``mixing_sem``, the Poisson error of each site's
index from its counts) is the counting error of the segment's mean plus
:data:`MIXING_SYSTEMATIC` (the spread of a clean Li layer's index that counting does not
explain), not the scatter of the sites: the scatter of a mixed segment is mostly the real
column-to-column spread of its TM atoms (5-7 times the counting error at 1e4 e/A^2), which
does not make its mean uncertain. A segment left uncertain takes the decision of the run of
adjacent segments of its Li layer whose fills agree (reduced chi-square <= :data:`POOL_CHI2`),
from their pooled counts (``mixing_sites`` says how many sites decided). A segment whose counts say "no" while one of
its sites reads clearly filled is "uncertain" instead (:data:`NO_WITH_FILLED_SITE`). Without ``mixing_sem``
the decision uses the scatter of the sites (``li_fill_sem``), as before. Before deciding, a segment
is cut where its counts show two stretches of the layer on either side of the threshold
(:func:`split_fill_changes`: TM-exchanged rim sites beside empty sites in a basal crack, the
filled end of a spinel block beside a void, a clean stretch of a sparsely mixed layer). A spinel
segment's fill (and its errors) is the mean of its filled and empty sublattices' means
(:func:`_spinel_balance`, with the column table's ``dark_sublattice``; less the index's offset where the
empty sublattice of the layer's spinel reads significantly below zero: :func:`_empty_offsets`), not the plain mean, which
depends on how many filled sites the segment's cut holds; a spinel segment of one sublattice only
keeps its plain mean but enters its layer's pooled run balanced by the adjacent segment's other
sublattice (:func:`_spinel_pool_fill`). Where the image's own clean layered segments (those decided
"no" in a first pass) read significantly above zero, their mean (:func:`clean_level`: the Li columns'
own scattering and the O tails, 0.01-0.03 on random draws) is taken off the index of every layered
site and the segments are decided again, cut as before (``clean_level``, ``clean_level_sem``). The
segments of O1 steps measure a level of their own where at least three of them are clean (:func:`_o1_group`:
the Li layers of a delithiated block are empty and read below the Li-holding ones). In that second pass the
error added to the counting error is the clean segments' own spread about their level
(:func:`clean_spread`, 0.01-0.02) instead of :data:`MIXING_SYSTEMATIC`; where the clean segments read at zero (no
level taken), their spread about zero is the error as well (:data:`ZERO_LEVEL_SPREAD`). With :data:`SPINEL_BLOCK_POOL`
(on; docs/validation.md, "imgspinel: ... session 38") a spinel segment still uncertain takes the decision of its
spinel block read as one where its fill agrees with the block's (:func:`spinel_block_decisions`; the block's offset:
:data:`SPINEL_BLOCK_LAYERED_OFFSET`).

``step_source`` says where a segment's step comes from: ``measured`` (the registry of the TM pairs
of its sites; a site filled into a one-site gap or at a layer end takes its neighbour's pair, as
``context`` in the column table), ``extended`` (:func:`extend_steps`: a Li-layer site without any
TM pair, e.g. a detected column over a void or at the end of a layer, takes the step of the
measured run of the same gap beside it when nothing interrupts them and the site sits where that
stacking puts it on the lattice of the TM layers; the column table keeps its relation empty) or
``none`` (step ``unknown``: the image does not say, e.g. a Li layer whose TM layer above lies
outside the field). A short measured run resting on a TM column that lies off its layer (a maximum
between the layers, e.g. at a spinel edge by the field edge) is ``unknown`` too
(:func:`drop_off_layer_steps`), as is a short measured run that the stacking of its gap beside it
contradicts (:func:`drop_unsupported_runs`: a one- or two-pair island of another stacking, a short
glide, a short run at a step change whose own pairs do not read its registry or cannot tell it from
another stacking, a glide whose own pairs do not lie off every stacking by three standard errors of the
image's registry noise); both are then extended like pair-less sites where the TM lattices allow. Extended and measured sites never share
a segment, nor do the sites of a dropped glide and their neighbours (its segment's fill stays as it was).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from layerscope.imaging.lattice import circular_mean as _circular_mean, wrap_half

__all__ = ["interlayer_table", "extend_steps", "drop_off_layer_steps", "drop_unsupported_runs", "MIXING_THRESHOLD",
           "MIXING_SYSTEMATIC", "POOL_CHI2", "ZERO_LEVEL_SPREAD", "clean_level", "clean_spread", "CLEAN_SPREAD_FLOOR", "CLEAN_LEVEL_SIGNIFICANCE", "split_fill_changes", "SPLIT_MIN_SITES", "REGISTRY_SIGNIFICANCE"]

#: Mixing index above which a Li layer holds TM: the Li columns and the O tails give 0.02-0.06
#: (docs/validation.md), a 10 % exchange about 0.1 more.
MIXING_THRESHOLD = 0.1
#: Spread of a clean Li layer's mixing index beyond its counting error (O and probe tails,
#: thickness, channelling: clean layers read 0.02-0.06), added in quadrature to the counting error
#: of every segment's (or pooled run's) mean before the decision. Random draws 0-99: clean
#: segments read 0.016 +- 0.013 above their truth at >= 1e4 e/A^2; 0.01 let one segment of truth
#: fill 0.048 (index 0.122 +- 0.003) be called "yes".
MIXING_SYSTEMATIC = 0.02
#: Counting errors by which the mean of the empty sublattice of a Li layer's spinel segments must lie below zero to be taken
#: as an offset of the index that its filled sublattice shares (:func:`_empty_offsets`).
EMPTY_OFFSET_SIGNIFICANCE = 2.0
#: Errors by which the mean index of an image's clean ("no") layered segments must lie above zero to be
#: taken off the index of its layered sites (:func:`clean_level`).
CLEAN_LEVEL_SIGNIFICANCE = 2.0
#: Fewest clean layered segments the level of :func:`clean_level` is measured on.
CLEAN_LEVEL_SEGMENTS = 3
#: Smallest spread beyond counting (:func:`clean_spread`) that replaces :data:`MIXING_SYSTEMATIC` where the image's
#: clean level is taken: the spread measured over the clean segments of the narrow-probe random draws 0-99 and
#: 2000-2199 at >= 1e3 e/A^2 once their level is off (0.008-0.009; docs/validation.md "imgnarrow"); one image's
#: own estimate from a few segments is not trusted below it.
CLEAN_SPREAD_FLOOR = 0.01
#: Adjacent segments of one Li layer pool their counts for the mixing decision while the reduced
#: chi-square of their fills (counting errors and half of :data:`MIXING_SYSTEMATIC`) stays below this.
#: 3 (p = 0.08 for a pair) left a clean segment reading 2-3 counting errors high beside clean neighbours
#: uncertain at ~1e3 e/A^2 (random draws 2177, 4160, 4092); 4.5 (p = 0.034) pools them. Measured on the
#: narrow-probe spinel and fill-miss draws of the tuning ranges (docs/validation.md "imgspinel8"): no
#: decision made wrong; 6 gave one wrong "yes" (4112, a rim segment of truth 0.04 beside mixed ones).
POOL_CHI2 = 4.5
#: Where an image's clean Li layers read at or below zero (their level is not taken off, :func:`clean_level`: wide
#: probes read -0.1 to -0.25), the pool test of :func:`_pool_runs` allows the spread its clean segments show beyond
#: their counting errors (:func:`clean_scatter`) where that exceeds half of :data:`MIXING_SYSTEMATIC`, not half of
#: :data:`MIXING_SYSTEMATIC` alone; the decisions' error is unchanged. With the wide path's neighbour width
#: (``pipeline.NEIGHBOUR_WIDTH``) the counting errors shrink by ~25 % but the clean segments' spread does not, so the
#: runs of clean segments broke and a 7-site clean segment reading 0.015 +- 0.040 was decided alone, "uncertain"
#: (random draw 2048: fill 1.0 -> 0.975; docs/validation.md "imgwide4"). Without the neighbour width it changed no
#: score of any draw of 7000-7099 or of the 38 wide-probe tuning draws. False: half of MIXING_SYSTEMATIC everywhere.
POOL_MEASURED_SPREAD = True
#: Whether an image whose clean layered segments read at zero (:func:`clean_level` takes no level: not
#: significantly above zero) decides its segments with the spread those clean segments show about zero beyond their
#: counting errors (:func:`clean_spread` with level 0: between :data:`CLEAN_SPREAD_FLOOR` and
#: :data:`MIXING_SYSTEMATIC`) instead of :data:`MIXING_SYSTEMATIC`, as an image whose level is taken does (the runs'
#: pool test unchanged). :data:`MIXING_SYSTEMATIC` is the spread of clean layers about zero where it is not measured;
#: here it is measured. At 1-2e3 e/A^2 the clean layers of random draws 3037, 7094, 5026 and 4079 read 0 +- counting
#: (z-scores' spread 0.9-1.2), yet their clean runs of 10-27 sites (0.04-0.06 +- 0.015-0.02) stayed "uncertain" by the
#: fixed 0.02 alone (docs/validation.md "imgfill2"). Clean layers reading below zero (wide probes) get a spread of
#: at least 0.02: unchanged.
ZERO_LEVEL_SPREAD = True
#: Most spread :data:`POOL_MEASURED_SPREAD` allows: half the mixing threshold, so that a run never pools a segment a
#: threshold away.
POOL_SPREAD_MAX = 0.05
#: Fewest sites on each side of a cut that :func:`split_fill_changes` makes inside a segment.
SPLIT_MIN_SITES = 2

#: Steps extended to a Li-layer site without a TM pair of its own (see :func:`extend_steps`).
STEP_RELATIONS = ("O3", "O3'", "O1")
#: Largest distance (column spacings) from an unknown run to the measured site whose step it takes.
EXTEND_REACH = 2.5
#: Largest difference (column spacings) between the site's offset from a TM layer and the measured run's.
EXTEND_TOLERANCE = 0.15
#: Most sites an unknown run at the end of a gap (a measured run on one side only) takes the step for.
EXTEND_END_SITES = 2
#: True: a longer unknown run at the end of a gap gives its :data:`EXTEND_END_SITES` sites nearest the measured
#: run the step (the rest stay unknown); False: the whole run stays unknown
EXTEND_END_PARTIAL = True
#: A TM column farther than this (layer spacings) from the line of its layer's neighbours is off its layer.
OFF_LAYER = 0.25
#: Most TM pairs of its own a run of one stacking may hold and still be dropped as an island between two
#: runs of one other stacking (see :func:`drop_unsupported_runs`).
UNSUPPORTED_PAIRS = 2
#: Most TM pairs of its own a glide ("off") run beside a stacking run of its gap, or a run at a step change
#: whose own registry does not read its stacking, may hold and still be dropped.
UNSUPPORTED_GLIDE_PAIRS = 3
#: Standard errors by which the mean registry of a run's own TM pairs must lie off every stacking's registry
#: for a glide to stand, and off every other stacking's for a short run at a step change (see
#: :func:`drop_unsupported_runs`, rules (c) and (d)): every short run of an image (void rims, layer ends) is
#: such a test, so two would let about one in twenty through on noise alone. Random draws 56 and 79 (0.15 nm
#: probe, per-pair scatter 0.14-0.15 spacings): their wrong rim glides of 3-4 pairs lie 1.2-2.4 errors off
#: their nearest stacking, their wrong one-pair runs at a change 1.0-1.8 errors from the right stacking.
REGISTRY_SIGNIFICANCE = 3.0
#: Whether a TM pair with a column cut by the image edge (``at_border``: fitted on one flank, its position pulled
#: inwards) counts as none of its site's own for :func:`drop_unsupported_runs`: a glide or short run read from such
#: pairs alone has nothing of its own to stand on. Random draw 5020: a one-pair "glide" at the field edge (registry
#: -0.44, the O3 runs beside it 0.31-0.36) rests on a column 0.035 nm from the edge.
BORDER_PAIRS_UNSUPPORTED = True
#: Fewest TM pairs in stacking runs the image's per-pair registry scatter is measured from.
NOISE_MIN_PAIRS = 10
#: Whether :func:`interlayer_table` leaves the Li-layer sites in a void (the column table's ``site_in_void``: at
#: most one of the four TM positions of the site's octahedron reads a column, ``pipeline._site_in_void``) out of
#: the segments' fill, after the cuts: such a site reads ~0 like an empty one but holds no material to measure.
#: It mends the spinel misses 4191, 4118, 3035 (narrow probes; docs/validation.md "imgspinel7"). Where an image's
#: TM columns do not read clearly above the void level (``pipeline.VOID_SPREAD_Z``: draw 56's 0.157 nm probe
#: fitted as 0.039 nm, 5 real sites marked) no site is marked, so none is left out (docs/validation.md
#: "imgvoid8"); left out before the cuts it moved draw 2135's cuts into a wrong "no".
SKIP_VOID_SITES = True
#: Whether :func:`interlayer_table` also leaves out the Li-layer sites at a gap two layer spacings wide (the column
#: table's ``site_at_gap``: both TM positions of one side of the site's octahedron read no column,
#: ``pipeline._site_at_gap``; a basal crack that took a TM layer and the Li layer beside it, a void's rim), after
#: the cuts, where they read as no material (:data:`GAP_READS_EMPTY`). A site in the crack reads ~0 and dilutes its
#: mixed or spinel segment (random draws 3051, 4003, 4195); measured on 263 random draws (docs/validation.md
#: "imgspinel9"): fill 93.5 -> 94.2 %, rims 94.4 -> 96.3 % at >= 1e3 e/A^2, no share down.
SKIP_GAP_SITES = True

#: With :data:`SKIP_GAP_SITES`: leave a segment's gap sites out only where together they read significantly below its
#: other sites of the same sublattice (by :data:`GAP_EMPTY_SIGNIFICANCE` combined counting errors): a crack or void
#: reads as an empty column, a real site beyond the gap reads like its neighbours. False leaves every gap site out:
#: real rim sites then leave small segments uncertain (random draws 2114, 3173 fall below 0.98).
GAP_READS_EMPTY = True
GAP_EMPTY_SIGNIFICANCE = 2.0
#: Which Li-layer sites whose count window holds no count at all (``intensity`` and ``local_background`` both exactly
#: 0: in a Poisson image with a background, vacuum -- no material, not even the neighbours' tails) leave the fill
#: outright, after the cuts, like void sites: "off" none; "gap" (with :data:`SKIP_GAP_SITES`) those with ``site_at_gap``
#: (a void's rim, a crack),
#: without the comparison of :func:`_gap_sites_out` (four empty gap sites against one noisy real site read 1.3 errors
#: apart and stayed: a wrong "no"); "any" every such site (at low dose a real empty Li column in thin material may
#: catch no count too). Measured on the 98 tuning draws with an empty window (docs/validation.md "imgvacuum").
EMPTY_WINDOW_SITES_OUT = "gap"
#: Whether a segment that reads "no" by its own counts but holds a site whose own index lies more than
#: :data:`FILLED_SITE_SIGNIFICANCE` errors (its counting error and the systematic error of the decision) above the
#: threshold is left "uncertain" (its layer's pooled run may then decide it): a clean Li layer holds no TM, so such a
#: segment is not one clean stretch but a filled one out-voted by sites that read as no material -- a basal crack
#: through a mixed Li layer alone (both TM layers stay, so neither ``site_in_void`` nor ``site_at_gap`` marks its
#: sites) leaves 7 empty sites beside one filled site that :func:`split_fill_changes` cannot cut off
#: (:data:`SPLIT_MIN_SITES`): random draw 4179's wrong "no" (docs/validation.md "imgcrack").
NO_WITH_FILLED_SITE = True
FILLED_SITE_SIGNIFICANCE = 3.5
#: Whether a spinel segment left "uncertain" by its own counts and its layer's pooled run takes the decision of its
#: spinel block (:func:`spinel_block_decisions`): the spinel segments of the image joined along a Li layer and across
#: adjacent Li layers whose stretches overlap, read as one -- the site-weighted mean of its filled and of its empty
#: sublattice (weights as :func:`_site_weights`), their mean less the block's empty-sublattice offset (as
#: :func:`_empty_offsets`, over the block), decided as a segment is (counting error and the image's systematic). One
#: block is one reading, as the pooled runs are for a layered Li layer: under a wide probe at a few 1e3 e/A^2 a thin
#: surface spinel block's segments read 0.25 +- 0.2 each (random draw 56: every segment "uncertain"). A segment
#: whose fill disagrees with its block's keeps its own decision (:func:`_agrees`). Measured on the 38 wide-probe
#: tuning draws and the full ranges 0-199 and 7000-7099 (docs/validation.md, "imgspinel: ... session 38"): spinel
#: 97.9 -> 99.0 % at >= 1e3 e/A^2 on 0-199 (draw 191), 7017 mended below 1e3, no share down, no new wrong answer;
#: draw 56 itself stays uncertain (its block reads 0.213 +- 0.054, 1.96 errors above the threshold).
SPINEL_BLOCK_POOL = True
#: With :data:`SPINEL_BLOCK_POOL`: whether a block's reading may take off the image's layered level
#: (:func:`layered_offset`: all layered segments, where they read significantly below zero, as under wide probes)
#: when that is closer to zero than its own empty sublattice's offset (or that is not significant). On the 38
#: wide-probe tuning draws the empty sublattice of every spinel block of >= 8 sites (56 aside) reads 1.5-2.8 times
#: further below zero than the clean layered segments (-0.077 to -0.191 against -0.035 to -0.096; all layered
#: segments -0.009 to -0.086), so the layered level takes off less than the spinel's own offset.
SPINEL_BLOCK_LAYERED_OFFSET = True


def _empty_window_sites(li: pd.DataFrame) -> np.ndarray:
    """Sites left out by :data:`EMPTY_WINDOW_SITES_OUT`: their count window held no count (amplitude and background 0)."""
    if EMPTY_WINDOW_SITES_OUT == "off" or "intensity" not in li or "local_background" not in li:
        return np.zeros(len(li), dtype=bool)
    empty = (li["intensity"].to_numpy(dtype=float) == 0.0) & (li["local_background"].to_numpy(dtype=float) == 0.0)
    if EMPTY_WINDOW_SITES_OUT == "gap":  # a refinement of the gap sites' treatment: only with SKIP_GAP_SITES
        gap = SKIP_GAP_SITES and "site_at_gap" in li
        empty &= li["site_at_gap"].fillna(False).to_numpy(dtype=bool) if gap else False
    return empty


def _gap_sites_out(li: pd.DataFrame, skipped: np.ndarray) -> np.ndarray:
    """Gap sites (``site_at_gap``) that read as no material: per segment and sublattice (``dark_sublattice`` in a
    spinel segment), the mean ``mixing`` of its gap sites lies more than :data:`GAP_EMPTY_SIGNIFICANCE` combined
    errors (from ``mixing_sem``) below that of its other sites (not ``skipped``); nothing to compare, kept."""
    out = np.zeros(len(li), dtype=bool)
    if "mixing" not in li or "mixing_sem" not in li:
        return out
    m, e = li["mixing"].to_numpy(dtype=float), li["mixing_sem"].to_numpy(dtype=float)
    read = np.isfinite(m) & np.isfinite(e) & ~skipped
    gap = li["site_at_gap"].fillna(False).to_numpy(dtype=bool) & read
    if not gap.any():
        return out
    dark = li["dark_sublattice"].fillna(False).to_numpy(dtype=bool) if "dark_sublattice" in li else np.zeros(len(li), bool)
    lattice = np.where(li["environment"].to_numpy() == "spinel", dark, False)
    groups = pd.MultiIndex.from_arrays([li["layer"], li["segment"], lattice]).factorize()[0]
    for g in np.unique(groups[gap]):
        here, rest = gap & (groups == g), read & ~gap & (groups == g)
        if not rest.any():
            continue
        diff = m[rest].mean() - m[here].mean()
        err = np.hypot(np.sqrt(np.sum(e[rest] ** 2)) / rest.sum(), np.sqrt(np.sum(e[here] ** 2)) / here.sum())
        out[here] = diff > GAP_EMPTY_SIGNIFICANCE * err
    return out


_COLUMNS = ["li_layer", "upper_tm_layer", "lower_tm_layer", "segment", "n_sites", "u_start_nm", "u_end_nm",
            "x_nm", "y_nm", "step", "step_source", "registry", "registry_sem", "environment", "li_fill", "li_fill_sem",
            "mixing", "n_sites_mixed", "n_sites_uncertain", "li_fill_count_sem", "mixing_sites"]


def _segments(relation: np.ndarray, max_sites: int) -> np.ndarray:
    """Segment id of each site of one layer (sorted along u): runs of one relation, cut to ``max_sites``."""
    new = np.ones(relation.size, dtype=bool)
    new[1:] = relation[1:] != relation[:-1]
    run = np.cumsum(new) - 1
    seg = np.empty(relation.size, dtype=int)
    next_id = 0
    for r in range(run.max() + 1 if run.size else 0):
        idx = np.nonzero(run == r)[0]
        parts = max(1, int(np.ceil(idx.size / max_sites)))
        seg[idx] = next_id + (np.arange(idx.size) * parts) // idx.size
        next_id += parts
    return seg


def _circular_registry(reg: pd.Series, key: np.ndarray) -> tuple[pd.Series, pd.Series]:
    """Per segment: circular mean registry (column spacings, in [-0.5, 0.5)) and its standard error."""
    ok = np.isfinite(reg.to_numpy(dtype=float))
    r = reg.to_numpy(dtype=float)[ok]
    k = key[ok]
    z = pd.DataFrame({"c": np.cos(2 * np.pi * r), "s": np.sin(2 * np.pi * r)}).groupby(k).mean()
    mean = pd.Series(wrap_half(np.arctan2(z["s"], z["c"]) / (2 * np.pi)), index=z.index)
    dev = pd.Series(wrap_half(r - mean.reindex(k).to_numpy()))
    n = dev.groupby(k).size()
    sem = (dev.groupby(k).std(ddof=0) / np.sqrt(n - 1)).where(n > 1)
    return mean, sem


def _fill(mixing: pd.Series, key: np.ndarray) -> tuple[pd.Series, pd.Series]:
    """Per segment: mean mixing index of the sites with one and its standard error (NaN below two)."""
    m = pd.Series(mixing.to_numpy(dtype=float)).where(lambda v: np.isfinite(v))
    g = m.groupby(key)
    n = g.count()
    return g.mean(), (g.std(ddof=1) / np.sqrt(n)).where(n > 1)


def _count_sem(mixing: pd.Series, mixing_sem: pd.Series, key: np.ndarray) -> pd.Series:
    """Per segment: counting error of the mean index, ``sqrt(sum sem_i^2) / n`` over the sites with both."""
    m, e = mixing.to_numpy(dtype=float), mixing_sem.to_numpy(dtype=float)
    ok = np.isfinite(m) & np.isfinite(e)
    var = pd.Series(np.where(ok, e * e, np.nan)).groupby(key)
    return np.sqrt(var.sum(min_count=1)) / var.count().where(lambda n: n > 0)


def _spinel_balance(li: pd.DataFrame, key: np.ndarray, environment: pd.Series, fill: pd.Series,
                    fill_sem: pd.Series, count_sem: pd.Series | None) -> None:
    """Replace, in place, the fill of every spinel segment by the mean of its two sublattices' means.

    A spinel Li layer alternates filled and empty octahedral sites (``dark_sublattice`` of the
    column table: the empty ones), so the plain mean of a segment of odd length, or one cut
    across a gap, depends on how many of each it holds (3 filled of 7 sites: 0.43 of the filled
    index; 4 of 7: 0.57). The mean of the two sublattices' means is the layer's fill per
    octahedral site whatever the segment's cut (less the offset of the index in its Li layer where
    the layer's empty sublattice reads significantly below zero: :func:`_empty_offsets`; the errors stay
    as they are, exact where the layer is one segment and where it is long, as the offset then shares the
    segment's own empty sites or is known far better); its errors (``fill_sem`` from the scatter within
    each sublattice, ``count_sem`` from the sites' counting errors) are half the quadrature sum
    of the two sublattices'. Segments whose majority environment is not spinel, or that hold
    sites of one sublattice only, keep the plain mean. ``fill``, ``fill_sem``, ``count_sem`` are
    indexed by segment key.
    """
    if "dark_sublattice" not in li:
        return
    spinel = environment[environment == "spinel"].index
    if spinel.empty:
        return
    (mb, sb, cb), (md, sd, cd) = _sublattice_means(li, key)
    both = spinel.intersection(mb.index).intersection(md.index)
    offset = _empty_offsets(li, key, both).reindex(_segment_layers(li, key, both)).fillna(0.0).to_numpy()
    fill.loc[both] = (mb[both] + md[both]) / 2 - offset
    fill_sem.loc[both] = np.sqrt(sb[both] + sd[both]) / 2
    if count_sem is not None:
        count_sem.loc[both] = np.sqrt(cb[both] + cd[both]) / 2


def _empty_offsets(li: pd.DataFrame, key: np.ndarray, spinel: pd.Index) -> pd.Series:
    """Per Li layer: the offset of the index read from the empty sublattice of its segments ``spinel`` (keys),
    0 where there is none.

    No site holds fewer than no TM atoms: where the empty (dark) sublattice of a Li layer's spinel
    segments, all together, reads below zero by more than :data:`EMPTY_OFFSET_SIGNIFICANCE` counting
    errors, its mean is an offset of the index in that layer (under a wide probe, the bright neighbours'
    tails taken as background) that the filled sites share; elsewhere the offset is 0. Random draw 2031
    (0.149 nm probe): the empty sublattices of its two spinel Li layers read -0.10 and -0.11 (+- 0.03)
    beside filled segments at 0.46-0.79 (-0.004 and 0.645 over the ~390 spinel segments of the narrow-probe
    draws 2000-2122 at >= 1e3 e/A^2). Taken over the layer, not the segment (a single misplaced site at a layer
    end reading -0.15, random draw 0, is not an offset), and over the segments that show the spinel's
    order (the dark sublattice's mean at most half the bright one's and below it): the sites of a segment
    whose sublattices are swapped or mislabelled (draw 2031: the filled sites of a layer end, alternately
    labelled, read 0.80-0.92 as "dark") say nothing about the index's zero.
    """
    (mb, _, _), (md, _, _) = _sublattice_means(li, key)
    both = spinel.intersection(mb.index).intersection(md.index)
    ordered = both[((mb[both] > md[both]) & (md[both] <= 0.5 * mb[both])).to_numpy()]
    m = li["mixing"].to_numpy(dtype=float)
    e = li["mixing_sem"].to_numpy(dtype=float) if "mixing_sem" in li else np.full(m.size, np.nan)
    dark = li["dark_sublattice"].fillna(False).to_numpy(dtype=bool) & np.isin(key, ordered) & np.isfinite(m)
    layer = li["layer"].to_numpy()
    d = pd.DataFrame({"m": m[dark], "v": e[dark] ** 2}).groupby(layer[dark])
    n = d["m"].count()
    mean, var = d["m"].mean(), d["v"].sum(min_count=1) / n ** 2
    shift = mean + EMPTY_OFFSET_SIGNIFICANCE * np.sqrt(var) < 0
    return mean.where(shift, 0.0)


def _segment_layers(li: pd.DataFrame, key: np.ndarray, keys: pd.Index) -> np.ndarray:
    """The Li layer of each segment of ``keys``."""
    return pd.Series(li["layer"].to_numpy()).groupby(key).first().reindex(keys).to_numpy()


def _sublattice_means(li: pd.DataFrame, key: np.ndarray) -> list[tuple[pd.Series, pd.Series, pd.Series]]:
    """Per segment key and per sublattice (bright, then ``dark_sublattice``): the mean index of the sites
    with one, the variance of that mean from their scatter and from their counting errors."""
    m = pd.Series(li["mixing"].to_numpy(dtype=float))
    e = pd.Series(li["mixing_sem"].to_numpy(dtype=float)) if "mixing_sem" in li else pd.Series(np.nan, index=m.index)
    ok = np.isfinite(m.to_numpy())
    dark = li["dark_sublattice"].fillna(False).to_numpy(dtype=bool)
    parts = []
    for on in (False, True):
        sel = ok & (dark == on)
        g = m[sel].groupby(key[sel])
        n = g.count()
        var_e = (e[sel] ** 2).groupby(key[sel]).sum(min_count=1)
        parts.append((g.mean(), g.var(ddof=1) / n, var_e / n ** 2))
    return parts


def _spinel_pool_fill(li: pd.DataFrame, key: np.ndarray, environment: pd.Series, fill: pd.Series,
                      count_sem: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Fill and counting error with which each segment enters its Li layer's pooled runs (:func:`_pool_runs`).

    A spinel segment holding sites of one sublattice only (the filled sites left by a void, a cut of
    one or two sites) reports its plain mean, which is not comparable with its neighbours' balanced
    means (:func:`_spinel_balance`): 3 filled sites read 0.65 beside a balanced 0.26 (random draw 82),
    and the run's chi-square broke there. It enters the run with its sublattice's mean balanced by the
    other sublattice's mean of the adjacent spinel segment(s) of its layer that hold it (both sides:
    their mean), less the layer's offset (:func:`_empty_offsets`), the counting errors alike; every other
    segment as it is. Its own decision still
    rests on its own sites.
    """
    pool_f, pool_e = fill.copy(), count_sem.copy()
    if "dark_sublattice" not in li or not (environment == "spinel").any():
        return pool_f, pool_e
    (mb, _, cb), (md, _, cd) = _sublattice_means(li, key)
    layer = pd.Series(li["layer"].to_numpy()).groupby(key).first().reindex(fill.index)
    spinel_both = environment.index[(environment == "spinel").to_numpy()].intersection(mb.index).intersection(md.index)
    offsets = _empty_offsets(li, key, spinel_both)
    spinel = environment.reindex(fill.index) == "spinel"
    for k in fill.index[spinel.to_numpy()]:
        has_b, has_d = k in mb.index, k in md.index
        if has_b == has_d:
            continue
        own_m, own_c, other_m, other_c = (mb, cb, md, cd) if has_b else (md, cd, mb, cb)
        near = [j for j in (k - 1, k + 1) if j in other_m.index and layer.get(j) == layer[k] and spinel.get(j, False)]
        if not near:
            continue
        pool_f[k] = (own_m[k] + float(np.mean([other_m[j] for j in near]))) / 2 - offsets.get(layer[k], 0.0)
        pool_e[k] = np.sqrt(own_c[k] + float(np.mean([other_c[j] for j in near])) / len(near)) / 2
    return pool_f, pool_e


def _pool_runs(fill: np.ndarray, sem: np.ndarray, n: np.ndarray,
               weights: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
               systematic: float = MIXING_SYSTEMATIC) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled fill, counting error and sites of the run each segment of one layer (in order) belongs to.

    Runs grow from the left while the fills agree: the reduced chi-square of the run's fills
    about their inverse-variance mean (errors: counting error and half of :data:`MIXING_SYSTEMATIC`)
    is at most :data:`POOL_CHI2`. A segment without a fill or an error is a run of its own.
    ``weights`` (per segment: the sums over its sites of ``w``, ``w * index`` and ``(w * sem)^2``,
    :func:`_site_weights`) pool a run's sites themselves, so that the run's fill does not depend on
    where its segments were cut; without them the segments' means are pooled by their errors.
    """
    out_f, out_e, out_n = fill.copy(), sem.copy(), n.astype(float).copy()
    ok = np.isfinite(fill) & np.isfinite(sem) & (sem > 0)
    if weights is None:
        inv = np.where(ok, 1.0 / np.where(ok, sem, 1.0) ** 2, 0.0)
        weights = (inv, np.where(ok, inv * fill, 0.0), inv)
    sw, swm, sw2e2 = weights
    i = 0
    while i < fill.size:
        j = i + 1
        while ok[i] and j < fill.size and ok[j]:
            w = 1.0 / (sem[i:j + 1] ** 2 + (systematic / 2) ** 2)
            mean = np.sum(w * fill[i:j + 1]) / w.sum()
            if np.sum(w * (fill[i:j + 1] - mean) ** 2) / (j - i) > POOL_CHI2:
                break
            j += 1
        total = sw[i:j].sum()
        if j - i > 1 and total > 0:
            out_f[i:j], out_e[i:j], out_n[i:j] = swm[i:j].sum() / total, np.sqrt(sw2e2[i:j].sum()) / total, n[i:j].sum()
        i = j
    return out_f, out_e, out_n


def _site_weights(li: pd.DataFrame, key: np.ndarray, environment: pd.Series, fill: pd.Series,
                  count_sem: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series] | None:
    """Per segment, the sums over its sites of ``w``, ``w * mixing`` and ``(w * mixing_sem)^2`` that pool a
    run of segments site by site (:func:`_pool_runs`); None without ``tm_reference``. The sites are those
    :func:`_count_sem` counts (finite index and error; an empty site of sparse counts reads 0 +- 0).

    A site's weight is ``(tm_reference / s)^2``, ``s`` the median counting error of the sites'
    intensities (``mixing_sem * tm_reference``) over the table: the inverse variance its index
    would have with a typical intensity error. It follows the reference (thin ends of a wedge, a
    field corner: an index of 0.2 +- 1.9 beside 0.1 +- 0.2, random draw 56) but not the site's own
    counts, whose Poisson error grows with them (on sparse counts, weighting by it would favour the
    sites that happened to catch fewer electrons and bias a mixed layer low). The pooled fill then
    no longer depends on where its segments were cut: the plain means of segments carry the error of
    their noisiest site, so a false column in a void that moved a cut moved draw 56's pooled clean
    layer across its decision. A spinel segment (or one without such sites) enters with its
    balanced mean (:func:`_spinel_balance`; one of one sublattice: :func:`_spinel_pool_fill`, passed as
    ``fill`` and ``count_sem``) and weight ``1 / count_sem^2``.
    """
    if "tm_reference" not in li:
        return None
    m = li["mixing"].to_numpy(dtype=float)
    e = li["mixing_sem"].to_numpy(dtype=float)
    ref = li["tm_reference"].to_numpy(dtype=float)
    ok = np.isfinite(m) & np.isfinite(e) & np.isfinite(ref) & (ref > 0)  # as _count_sem: a 0 +- 0 site counts
    s = float(np.median(e[ok] * ref[ok])) if ok.any() else 0.0
    if not s > 0:
        return None
    w = pd.Series((ref[ok] / s) ** 2)
    k = key[ok]
    sums = [w.groupby(k).sum(), (w * m[ok]).groupby(k).sum(), ((w * e[ok]) ** 2).groupby(k).sum()]
    sw, swm, sw2e2 = (v.reindex(fill.index) for v in sums)
    cs = count_sem.reindex(fill.index)
    seg_w = 1.0 / cs.where(cs > 0) ** 2
    own = (environment.reindex(fill.index) == "spinel") | ~(sw > 0)
    return (sw.where(~own, seg_w).fillna(0.0), swm.where(~own, seg_w * fill).fillna(0.0),
            sw2e2.where(~own, seg_w).fillna(0.0))


def _part_decisions(mean: np.ndarray, sem: np.ndarray, threshold: float) -> np.ndarray:
    """+1 / -1 / 0 (yes / no / uncertain) of means with counting errors ``sem`` plus :data:`MIXING_SYSTEMATIC`.

    :func:`_decide`'s tests as numbers (no strings: it runs for every candidate cut of every segment).
    """
    return _decision_codes(mean, np.hypot(sem, MIXING_SYSTEMATIC), threshold)


def _best_cut(m: np.ndarray, e: np.ndarray, threshold: float) -> int:
    """Where a run of sites (in order along the layer) splits into two parts whose fills decide opposite
    ways ("yes" and "no"), each of at least :data:`SPLIT_MIN_SITES` sites: the cut with the largest
    difference of the two means in counting errors; 0 where there is none."""
    k = np.arange(SPLIT_MIN_SITES, m.size - SPLIT_MIN_SITES + 1)
    if k.size == 0:
        return 0
    s, v = np.cumsum(m), np.cumsum(e * e)
    n_r = m.size - k
    mean_l, mean_r = s[k - 1] / k, (s[-1] - s[k - 1]) / n_r
    var_l, var_r = v[k - 1] / k ** 2, (v[-1] - v[k - 1]) / n_r ** 2
    left, right = _part_decisions(mean_l, np.sqrt(var_l), threshold), _part_decisions(mean_r, np.sqrt(var_r), threshold)
    opposite = left * right < 0
    if not opposite.any():
        return 0
    z = np.abs(mean_l - mean_r) / np.sqrt(var_l + var_r)
    return int(k[opposite][np.argmax(z[opposite])])


def _split_run(m: np.ndarray, e: np.ndarray, threshold: float) -> list[int]:
    """Cut positions (indices into the run) of :func:`split_fill_changes`, found recursively."""
    k = _best_cut(m, e, threshold)
    if k == 0:
        return []
    return _split_run(m[:k], e[:k], threshold) + [k] + [k + c for c in _split_run(m[k:], e[k:], threshold)]


def split_fill_changes(li: pd.DataFrame, threshold: float = MIXING_THRESHOLD) -> np.ndarray:
    """Segment ids of ``li`` with every segment cut where its Li-layer fill changes across the threshold.

    A segment of fixed length can hold two stretches of a Li layer that differ: TM-exchanged sites
    at a void rim beside empty sites placed in a basal crack, a clean stretch in a sparsely mixed
    layer, the filled rim of a spinel block beside a void. Its mean then belongs to neither and is
    left "uncertain". A segment is cut where its two parts (each at least :data:`SPLIT_MIN_SITES`
    sites) each decide by their own counts (error of the mean: counting error and
    :data:`MIXING_SYSTEMATIC`, as :func:`_count_decisions`), one "yes" and one "no" (the cut with
    the largest difference of the means in counting errors); the parts are cut again the same way.
    Nothing is cut where counts do not decide both parts, so noise alone does not cut a segment,
    nor a segment with a site without a counting error (``mixing_sem`` 0 or NaN: a site on the
    field's edge reads 0 +- 0, which would decide any part holding it).

    Parameters
    ----------
    li : pandas.DataFrame
        Li-layer sites sorted by ``layer`` then ``u_nm`` with ``segment``, ``mixing`` and
        ``mixing_sem`` (index and its counting error, dimensionless).
    threshold : float
        Mixing index that separates a Li layer holding TM from a clean one.

    Returns
    -------
    numpy.ndarray of int
        New segment id of every site, numbered along each layer from 0.
    """
    seg = li["segment"].to_numpy(dtype=int).copy()
    if seg.size == 0:
        return seg
    layers = list(li.groupby("layer", sort=True).indices.values())
    order = np.concatenate(layers)  # layer by layer, each layer's rows in table order
    m_all, e_all = li["mixing"].to_numpy(dtype=float)[order], li["mixing_sem"].to_numpy(dtype=float)[order]
    first = np.zeros(order.size, dtype=bool)  # the first site of each layer
    first[np.cumsum([0] + [v.size for v in layers[:-1]])] = True
    new = (first | np.r_[True, seg[order][1:] != seg[order][:-1]]).astype(int)  # 1 where a new segment starts
    start = np.flatnonzero(new)
    size = np.diff(np.r_[start, order.size])
    good = np.isfinite(m_all) & np.isfinite(e_all) & (e_all > 0)
    ok = (size >= 2 * SPLIT_MIN_SITES) & (np.add.reduceat(good.astype(int), start) == size)
    for a, n, k in zip(start[ok], size[ok], _best_cuts(m_all, e_all, start[ok], size[ok], threshold)):
        if k:  # rare: the run is cut; its parts are searched one by one, as by _split_run
            m, e = m_all[a:a + n], e_all[a:a + n]
            for c in _split_run(m[:k], e[:k], threshold) + [k] + [k + c for c in _split_run(m[k:], e[k:], threshold)]:
                new[a + c] = 1
    count = np.cumsum(new)
    out = np.empty_like(seg)
    out[order] = count - count[np.maximum.accumulate(np.where(first, np.arange(order.size), 0))]
    return out


def _best_cuts(m: np.ndarray, e: np.ndarray, start: np.ndarray, size: np.ndarray, threshold: float) -> np.ndarray:
    """:func:`_best_cut` of every run ``m[a:a + n], e[a:a + n]`` (``a, n`` in ``start, size``) at once: the same
    arithmetic on a zero-padded (runs x longest) array (the cumulative sums of a row run along it from its first
    site, as the run's own), the same cut (0: none)."""
    if start.size == 0:
        return np.zeros(0, dtype=int)
    width = int(size.max())
    cell = start[:, None] + np.arange(width)[None, :]
    inside = np.arange(width)[None, :] < size[:, None]
    cell = np.where(inside, cell, 0)
    s, v = np.cumsum(np.where(inside, m[cell], 0.0), axis=1), np.cumsum(np.where(inside, e[cell] * e[cell], 0.0), axis=1)
    rows = np.arange(start.size)[:, None]
    k = np.arange(SPLIT_MIN_SITES, width - SPLIT_MIN_SITES + 1)[None, :]
    valid = k <= size[:, None] - SPLIT_MIN_SITES
    n_r = np.where(valid, size[:, None] - k, 1)
    s_k, v_k = s[rows, k - 1], v[rows, k - 1]
    s_n, v_n = s[rows, size[:, None] - 1], v[rows, size[:, None] - 1]
    mean_l, mean_r = s_k / k, (s_n - s_k) / n_r
    var_l, var_r = v_k / k ** 2, (v_n - v_k) / n_r ** 2
    left = _part_decisions(mean_l, np.sqrt(var_l), threshold)
    right = _part_decisions(mean_r, np.sqrt(var_r), threshold)
    opposite = (left * right < 0) & valid
    z = np.where(opposite, np.abs(mean_l - mean_r) / np.sqrt(np.where(valid, var_l + var_r, 1.0)), -np.inf)
    best = k[0][np.argmax(z, axis=1)]
    return np.where(opposite.any(axis=1), best, 0)


def _count_decisions(out: pd.DataFrame, threshold: float, weights: tuple[np.ndarray, ...] | None = None,
                     pool: tuple[np.ndarray, np.ndarray] | None = None, systematic: float = MIXING_SYSTEMATIC,
                     pool_spread: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mixing decision of every segment from its counts, else from its layer's pooled run; sites used.

    Error of a mean: ``sqrt(counting error^2 + systematic^2)`` (:data:`MIXING_SYSTEMATIC`, or the image's
    :func:`clean_spread`). A segment's own decision
    stands where it is not uncertain; an uncertain one takes its run's (:func:`_pool_runs`, with
    ``weights`` per row of ``out``: :func:`_site_weights`, and ``pool``, the fill and counting error
    each segment enters its run with: :func:`_spinel_pool_fill`; default its own). ``pool_spread``: the spread
    beyond counting the runs' pool test allows (:data:`POOL_MEASURED_SPREAD`; default half of ``systematic``).
    """
    f, e = out["li_fill"].to_numpy(dtype=float), out["li_fill_count_sem"].to_numpy(dtype=float)
    pool_f, pool_e = (f, e) if pool is None else pool
    n = out["n_sites"].to_numpy()
    own = _decision_codes(f, np.hypot(e, systematic), threshold)
    filled = np.zeros(own.size, dtype=bool)  # "no" out-voting a clearly filled site: not one clean stretch, no "no"
    if NO_WITH_FILLED_SITE and "filled_site_z" in out:
        filled = (own == -1) & (out["filled_site_z"].to_numpy(dtype=float) > FILLED_SITE_SIGNIFICANCE)
        own[filled] = 0
    decision, sites = own.copy(), n.astype(float)
    u_start = out["u_start_nm"].to_numpy()
    for idx in out.groupby("li_layer", sort=False).indices.values():
        if np.all(own[idx] != 0):  # nothing uncertain: the layer's runs would change nothing
            continue
        idx = idx[np.argsort(u_start[idx], kind="stable")]
        pf, pe, pn = _pool_runs(pool_f[idx], pool_e[idx], n[idx],
                                None if weights is None else tuple(w[idx] for w in weights),
                                systematic if pool_spread is None else 2 * pool_spread)
        pooled = _decision_codes(pf, np.hypot(pe, systematic), threshold)
        use = (own[idx] == 0) & (pooled != 0) & ~(filled[idx] & (pooled == -1))
        decision[idx[use]], sites[idx[use]] = pooled[use], pn[use]
    return np.array(["uncertain", "yes", "no"])[decision], sites.astype(int)


def _decision_codes(fill: np.ndarray | pd.Series, sem: np.ndarray | pd.Series, threshold: float) -> np.ndarray:
    """+1 / -1 / 0: the fill two standard errors above / below ``threshold``, else (or without a finite error) 0."""
    f, e = np.asarray(fill, dtype=float), np.asarray(sem, dtype=float)
    d = np.where(f - 2 * e > threshold, 1, np.where(f + 2 * e < threshold, -1, 0))
    return np.where(np.isfinite(e), d, 0)


def _decide(fill: np.ndarray | pd.Series, sem: np.ndarray | pd.Series, threshold: float) -> np.ndarray:
    """yes / no / uncertain: the fill two standard errors above / below ``threshold``, else uncertain."""
    return np.array(["uncertain", "yes", "no"])[_decision_codes(fill, sem, threshold)]


def _majority(values: pd.Series, key: np.ndarray) -> pd.Series:
    """Most common value per segment (ties: the first in sort order, as ``Series.mode``).

    Counted as integer codes (``np.unique`` of the values, then of ``key * n_values + code``): the
    first of each key after sorting by key, count (descending) and value, as the table of value
    counts sorted so did (tests/imaging/test_speed_serial.py).
    """
    uniq, code = np.unique(values.to_numpy(), return_inverse=True)
    pair, count = np.unique(np.asarray(key, dtype=np.int64) * uniq.size + code, return_counts=True)
    k, c = pair // uniq.size, pair % uniq.size
    order = np.lexsort((c, -count, k))
    first = order[np.r_[True, k[order][1:] != k[order][:-1]]]
    return pd.Series(uniq[c[first]], index=pd.Index(k[first], name="k"), name="v", dtype=values.dtype)


def _tm_offsets(u_nm: np.ndarray, tm_u_nm: np.ndarray, d_t: float) -> np.ndarray:
    """Offset (column spacings) of each ``u_nm`` from the lattice of one TM layer, read from all of its
    columns within 3 column spacings (NaN where there is none)."""
    out = np.full(len(u_nm), np.nan)
    for i, x in enumerate(u_nm):
        near = tm_u_nm[np.abs(tm_u_nm - x) <= 3.0 * d_t]
        out[i] = _circular_mean((x - near) / d_t) if near.size else np.nan
    return out


def _neighbours(run: np.ndarray, lay: dict, d_t: float) -> list[np.ndarray]:
    """The measured runs beside an unknown ``run`` (indices into one layer sorted along u): for each side
    whose next site holds a step, lies within ``EXTEND_REACH`` spacings and has the run's environment,
    the consecutive sites of that step (no gap over 1.5 spacings), nearest first."""
    u, rel, env = lay["u"], lay["rel"], lay["env"]
    out = []
    for end, step in ((run[0], -1), (run[-1], 1)):
        j = end + step
        if not (0 <= j < u.size) or rel[j] not in STEP_RELATIONS or abs(u[j] - u[end]) > EXTEND_REACH * d_t:
            continue
        if np.any(env[run] != env[j]):
            continue
        ref = [j]
        while 0 <= ref[-1] + step < u.size and rel[ref[-1] + step] == rel[j] \
                and abs(u[ref[-1] + step] - u[ref[-1]]) <= 1.5 * d_t:
            ref.append(ref[-1] + step)
        out.append(np.array(ref))
    return out


def _trusted(ref: np.ndarray, lay: dict) -> bool:
    """A measured run a step may be extended from: two TM pairs of its own or more, and its mean
    registry within ``EXTEND_TOLERANCE`` spacings of the mean registry of its step over the image."""
    want = lay["typical"].get(str(lay["rel"][ref[0]]), np.nan)
    mine = _circular_mean(lay["reg"][ref])
    return int(lay["own"][ref].sum()) >= 2 and bool(abs(wrap_half(mine - want)) <= EXTEND_TOLERANCE)


def _end_sites(run: np.ndarray, sides: list[np.ndarray]) -> np.ndarray | None:
    """The sites of ``run`` a gap's end may extend to: all of them beside two measured runs or up to
    :data:`EXTEND_END_SITES`; else the :data:`EXTEND_END_SITES` nearest the one measured run
    (:data:`EXTEND_END_PARTIAL`) or None."""
    if len(sides) > 1 or run.size <= EXTEND_END_SITES:
        return run
    if not EXTEND_END_PARTIAL:
        return None
    return run[:EXTEND_END_SITES] if sides[0][0] < run[0] else run[-EXTEND_END_SITES:]


def _run_step(run: np.ndarray, lay: dict, tm_u: list[np.ndarray], d_t: float) -> tuple[str, np.ndarray]:
    """The step an unknown run of one gap takes from the measured sites beside it, or "", and the sites of
    the run that take it (see :func:`extend_steps`)."""
    sides = _neighbours(run, lay, d_t)
    rel, u = lay["rel"], lay["u"]
    if not sides or len({rel[r[0]] for r in sides}) > 1:
        return "", run
    run = _end_sites(run, sides)
    sides = [ref for ref in sides if _trusted(ref, lay)]  # an untrusted run may only agree
    if run is None or not sides:
        return "", run
    checked = np.zeros(run.size, dtype=bool)
    for layer_u in tm_u:  # the TM layer above, then the one below
        if layer_u.size == 0:
            continue
        mine = _tm_offsets(u[run], layer_u, d_t)
        for ref in sides:
            want = _circular_mean(_tm_offsets(u[ref[:3]], layer_u, d_t))
            ok = np.isfinite(mine) & np.isfinite(want)
            if np.any(np.abs(wrap_half(mine[ok] - want)) > EXTEND_TOLERANCE):
                return "", run  # the site is not where the measured stacking puts it: a registry change
            checked |= ok
    return (str(rel[sides[0][0]]) if checked.all() else ""), run


def _by_layer(tm: pd.DataFrame, name: str) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per TM layer, ``u_nm`` (sorted) and ``name`` of its columns, in that order."""
    layer = tm["layer"].to_numpy()
    u, w = tm["u_nm"].to_numpy(dtype=float), tm[name].to_numpy(dtype=float)
    order = np.lexsort((u, layer))
    keys, start = np.unique(layer[order], return_index=True)
    return {int(k): (u[order][i:j], w[order][i:j]) for k, i, j in zip(keys, start, np.r_[start[1:], layer.size])}


def _off_layer(tm: pd.DataFrame, cation_nm: float) -> dict[int, np.ndarray]:
    """Per TM layer, ``u_nm`` of its columns lying more than ``OFF_LAYER`` layer spacings off the line
    of their 6 nearest neighbours of the layer (along ``v``): no column of that layer."""
    out = {}
    for k, (u, v) in _by_layer(tm, "v_nm").items():
        if u.size < 7:
            continue
        i = np.arange(u.size)
        win = np.clip(i - 3, 0, u.size - 7)[:, None] + np.arange(7)[None, :]
        others = win[win != i[:, None]].reshape(u.size, 6)
        out[k] = u[np.abs(v - np.median(v[others], axis=1)) > OFF_LAYER * cation_nm]
    return out


def drop_off_layer_steps(li: pd.DataFrame, tm: pd.DataFrame, rel: np.ndarray, source: np.ndarray, *,
                         inplane_spacing_nm: float) -> None:
    """Unknown, in place, the step of a short measured run (at most two TM pairs of its own) that rests
    on a TM column lying off its layer (see :func:`_off_layer`): a maximum between the layers (e.g. at
    a spinel edge by the field edge), whose registry to the next layer is no stacking.

    Parameters
    ----------
    li : pandas.DataFrame
        Li-layer sites sorted by ``layer`` then ``u_nm`` (``pair``: the site's own TM pair, -1 for none).
    tm : pandas.DataFrame
        TM columns with ``layer``, ``u_nm`` and ``v_nm``.
    rel, source : numpy.ndarray of str
        Relation and step source of every site of ``li``; set to "" and "none" where dropped.
    inplane_spacing_nm : float
        Column spacing along the layers, nm (a TM column within half of it of a run's site is under it).
    """
    if "v_nm" not in tm or tm["layer"].nunique() < 2:
        return
    mid = tm.groupby("layer")["v_nm"].median()
    cation = float(np.median(np.diff(mid.to_numpy()) / np.diff(mid.index.to_numpy())))
    off = _off_layer(tm, abs(cation))
    if not any(a.size for a in off.values()):
        return
    own = li["pair"].to_numpy(dtype=float) >= 0 if "pair" in li else np.ones(len(li), dtype=bool)
    u_all = li["u_nm"].to_numpy(dtype=float)
    for k, idx in li.groupby("layer", sort=True).indices.items():
        bad = np.concatenate([off.get(int(k) - 1, np.empty(0)), off.get(int(k) + 1, np.empty(0))])
        if bad.size == 0:
            continue
        r = rel[idx]
        for run in _runs(r):
            u = u_all[idx[run]]
            near = np.any(np.abs(bad[:, None] - u[None, :]) <= 0.5 * inplane_spacing_nm)
            if r[run[0]] in STEP_RELATIONS and own[idx[run]].sum() <= 2 and near:
                rel[idx[run]], source[idx[run]] = "", "none"


def _runs(rel: np.ndarray) -> list[np.ndarray]:
    """Runs of one relation along one layer (indices, in order)."""
    new = np.r_[True, rel[1:] != rel[:-1]] if rel.size else np.zeros(0, dtype=bool)
    return np.split(np.arange(rel.size), np.flatnonzero(new)[1:]) if rel.size else []


def _supported(run: np.ndarray, lay: dict) -> bool:
    """The mean registry of a run's own TM pairs lies within ``EXTEND_TOLERANCE`` of its step's over the image."""
    mine = _circular_mean(lay["reg"][run][lay["own"][run]])
    want = lay["typical"].get(str(lay["rel"][run[0]]), np.nan)
    return bool(abs(wrap_half(mine - want)) <= EXTEND_TOLERANCE)


def _at_change(i: int, runs: list[np.ndarray], lay: dict, reach: float) -> bool:
    """Run ``i`` of a layer has a measured neighbour run of another step (or a glide) within ``reach`` nm."""
    u = lay["u"]
    for j, a, b in ((i - 1, runs[i][0], -1), (i + 1, runs[i][-1], 0)):
        if 0 <= j < len(runs) and lay["rel"][runs[j][0]] in STEP_RELATIONS + ("off",) \
                and abs(u[runs[j][b]] - u[a]) <= reach:
            return True
    return False


def _pair_at_border(li: pd.DataFrame, columns: pd.DataFrame) -> np.ndarray:
    """Per Li-layer site: its own TM pair (``above``/``below``, rows of ``columns``) holds a column cut by the
    image edge (``at_border``); all False where ``columns`` cannot be looked up by row (no ``at_border``, or a
    row index that is not unique)."""
    out = np.zeros(len(li), dtype=bool)
    if "at_border" not in columns or not columns.index.is_unique:
        return out
    border = columns["at_border"].fillna(False).astype(bool)
    for side in ("above", "below"):
        if side in li:
            at = li[side].fillna(-1).to_numpy().astype(int)
            out |= border.reindex(at, fill_value=False).to_numpy(dtype=bool) & (at >= 0)
    return out


def drop_unsupported_runs(li: pd.DataFrame, rel: np.ndarray, source: np.ndarray, typical: dict, *,
                          inplane_spacing_nm: float) -> None:
    """Unknown, in place, the step of a short measured run that the stacking of its gap beside it contradicts.

    A gap's stacking changes along the layer only at a lateral boundary (a partial dislocation), which
    a run of one or two TM pairs cannot show: (a) such a run of a stacking (O3, O3', O1) between two
    trusted runs (:func:`_trusted`) of one other stacking within ``EXTEND_REACH`` column spacings on
    both sides is a misread registry (bad columns at a void rim, a wide probe), as is (b) a glide
    ("off") run of at most ``UNSUPPORTED_GLIDE_PAIRS`` pairs beside a trusted stacking run on either
    side (a glide shifts a whole block: it runs along the gap), and so is (c) a stacking run of at most
    ``UNSUPPORTED_GLIDE_PAIRS`` pairs beside a run of another step (or a glide) whose own pairs' mean
    registry lies more than ``EXTEND_TOLERANCE`` off its step's mean over the image (its label came
    from the smoothing window of the neighbours, not from its pairs) or within ``REGISTRY_SIGNIFICANCE``
    standard errors (below) of another stacking's (its pairs cannot tell the two apart: one pair under a
    0.15 nm probe never can); and (d) a glide run of any length whose own pairs do not put it off every
    stacking: the circular mean of their registries lies within
    ``REGISTRY_SIGNIFICANCE`` standard errors of a stacking's mean registry over the image (the error: the
    larger of the image's per-pair registry scatter, :func:`_registry_noise`, and the run's own, over the
    square root of its pairs; a run without pairs of its own is unsupported). Where the window of the
    smoothed registry is cut short (a void rim, a layer end) a few noisy pairs read "off" by chance: under
    a 0.15 nm probe the per-pair scatter is 0.14 spacings and 3-4 rim pairs lie 0.1-0.2 off a stacking.
    Glides are judged first, and a glide so dropped is no step change for the runs beside it (rule (c)).
    All become ``unknown``; :func:`extend_steps` then gives them the step beside them only where their
    sites sit where that stacking puts them on the TM lattices.

    Parameters
    ----------
    li : pandas.DataFrame
        Li-layer sites sorted by ``layer`` then ``u_nm`` (``pair``: own TM pair, -1 for none; ``registry``).
    rel, source : numpy.ndarray of str
        Relation and step source of every site of ``li``; set to "" and "none" where dropped.
    typical : dict
        Mean registry (column spacings) of each stacking over the image's own pairs.
    inplane_spacing_nm : float
        Column spacing along the layers, nm.
    """
    own = li["pair"].to_numpy(dtype=float) >= 0 if "pair" in li else np.ones(len(li), dtype=bool)
    if BORDER_PAIRS_UNSUPPORTED and "pair_at_border" in li:
        own = own & ~li["pair_at_border"].to_numpy(dtype=bool)
    reg = li["registry"].to_numpy(dtype=float) if "registry" in li else np.full(len(li), np.nan)
    u_all = li["u_nm"].to_numpy(dtype=float)
    reach = EXTEND_REACH * inplane_spacing_nm
    noise, stackings = _registry_noise(reg, rel, own, typical), _stacking_registries(typical)
    for _, idx in li.groupby("layer", sort=True).indices.items():
        lay = {"rel": rel[idx].copy(), "own": own[idx], "reg": reg[idx], "typical": typical, "u": u_all[idx],
               "noise": noise, "stackings": stackings}
        runs = _runs(lay["rel"])
        glide = [lay["rel"][run[0]] == "off" for run in runs]
        for i in sorted(range(len(runs)), key=lambda j: not glide[j]):  # glides first
            run = runs[i]
            if source[idx[run[0]]] == "measured" and _unsupported(i, runs, lay, reach):
                rel[idx[run]], source[idx[run]] = "", "none"
                if glide[i]:  # a glide dropped is no step change for the runs beside it
                    lay["rel"][run] = ""


def _trusted_sides(i: int, runs: list[np.ndarray], lay: dict, reach: float) -> list[str]:
    """Steps of the trusted stacking runs (:func:`_trusted`) next to run ``i`` of a layer within ``reach`` nm."""
    out = []
    for j, end in ((i - 1, runs[i][0]), (i + 1, runs[i][-1])):
        if 0 <= j < len(runs):
            ref = runs[j][::-1] if j < i else runs[j]  # nearest first
            if lay["rel"][ref[0]] in STEP_RELATIONS and abs(lay["u"][ref[0]] - lay["u"][end]) <= reach \
                    and _trusted(ref, lay):
                out.append(str(lay["rel"][ref[0]]))
    return out


def _registry_noise(reg: np.ndarray, rel: np.ndarray, own: np.ndarray, typical: dict) -> float:
    """Per-pair registry scatter of the image (column spacings): 1.4826 x the median absolute deviation of
    the own TM pairs of the stacking runs from their stacking's mean registry; NaN below
    :data:`NOISE_MIN_PAIRS` pairs."""
    dev = [wrap_half(reg[(rel == r) & own] - typical[r]) for r in STEP_RELATIONS if np.isfinite(typical.get(r, np.nan))]
    dev = np.concatenate(dev) if dev else np.empty(0)
    dev = dev[np.isfinite(dev)]
    return float(1.4826 * np.median(np.abs(dev))) if dev.size >= NOISE_MIN_PAIRS else float("nan")


def _stacking_registries(typical: dict) -> dict:
    """Registry (column spacings) of each stacking: its mean over the image, else its ideal (O1 0, O3 and
    O3' the mirror of each other); stackings with neither are left out."""
    o3, twin, o1 = (typical.get(r, np.nan) for r in STEP_RELATIONS)
    out = {"O3": o3 if np.isfinite(o3) else -twin, "O3'": twin if np.isfinite(twin) else -o3,
           "O1": o1 if np.isfinite(o1) else 0.0}
    return {r: float(v) for r, v in out.items() if np.isfinite(v)}


def _distinct(run: np.ndarray, lay: dict, registries: list[float]) -> bool:
    """The mean registry of a run's own TM pairs lies more than ``REGISTRY_SIGNIFICANCE`` standard errors
    from each of ``registries`` (column spacings); the error is the larger of the image's per-pair scatter
    (``lay["noise"]``, :func:`_registry_noise`) and the run's own, over the square root of its pairs.
    False for a run without pairs of its own."""
    regs = lay["reg"][run][lay["own"][run]]
    regs = regs[np.isfinite(regs)]
    if regs.size == 0:
        return False
    mean = _circular_mean(regs)
    scatter = float(np.std(wrap_half(regs - mean), ddof=1)) if regs.size > 1 else 0.0
    noise = lay["noise"] if np.isfinite(lay["noise"]) else 0.0
    se = max(noise, scatter) / np.sqrt(regs.size)
    dist = np.abs(wrap_half(mean - np.asarray(registries, dtype=float)))
    return bool(np.all(dist > REGISTRY_SIGNIFICANCE * se))


def _unsupported(i: int, runs: list[np.ndarray], lay: dict, reach: float) -> bool:
    """Run ``i`` of a layer is one :func:`drop_unsupported_runs` makes unknown (rules (a)-(d) there)."""
    run = runs[i]
    r, pairs = lay["rel"][run[0]], int(lay["own"][run].sum())
    if r not in STEP_RELATIONS + ("off",):
        return False
    sides = _trusted_sides(i, runs, lay, reach)
    stackings = lay["stackings"]
    if r == "off":
        short = pairs <= UNSUPPORTED_GLIDE_PAIRS and len(sides) > 0
        return short or not _distinct(run, lay, list(stackings.values()))
    island = pairs <= UNSUPPORTED_PAIRS and len(sides) == 2 and sides[0] == sides[1] != r
    others = [v for k, v in stackings.items() if k != r]
    return island or (pairs <= UNSUPPORTED_GLIDE_PAIRS and _at_change(i, runs, lay, reach)
                      and not (_supported(run, lay) and _distinct(run, lay, others)))


def extend_steps(li: pd.DataFrame, tm: pd.DataFrame, *, inplane_spacing_nm: float) -> tuple[np.ndarray, np.ndarray]:
    """Steps of the Li-layer sites without a TM pair, extended from the measured sites of the same gap.

    A site whose relation is empty (no TM pair of its own nor of a neighbouring site, e.g. a detected
    Li-layer column over a void or at the end of a layer) takes the step of the measured run of its
    gap beside it when nothing interrupts them: the measured site lies within ``EXTEND_REACH``
    column spacings, has the same environment, a measured run on the other side (if any, within
    reach) has the same step, and the site sits where that stacking puts it: its offset from the
    lattice of the TM layer above and of the one below (each read from all the layer's columns
    within 3 spacings, not from one partner) equals the measured run's within
    ``EXTEND_TOLERANCE`` spacings, on every TM layer that has columns there (at least one). A run
    with a measured run on one side only (the end of a gap) is extended by at most
    ``EXTEND_END_SITES`` sites, those nearest the measured run (``EXTEND_END_PARTIAL``). A measured run
    that a neighbour could be trusted from has two TM pairs of its own or more and a mean registry
    within ``EXTEND_TOLERANCE`` of its step's over the image; short runs on a TM column off its layer (:func:`drop_off_layer_steps`) and short runs the
    stacking beside them contradicts (:func:`drop_unsupported_runs`) are made unknown first.

    Parameters
    ----------
    li : pandas.DataFrame
        Li-layer sites sorted by ``layer`` then ``u_nm``, with ``relation`` ("" where unknown) and
        ``environment``.
    tm : pandas.DataFrame
        TM columns with ``layer`` and ``u_nm``.
    inplane_spacing_nm : float
        Column spacing along the layers, nm.

    Returns
    -------
    relation, source : numpy.ndarray of str
        The relation of every site (extended where it was empty and the image determines it) and
        where it comes from: "measured" (the site's TM pair or, for a site filled into a one-site
        gap or at a layer end, its neighbour's), "extended" (this function) or "none".
    """
    rel = li["relation"].to_numpy().astype("<U4")
    source = np.where(rel == "", "none", "measured").astype("<U8")
    drop_off_layer_steps(li, tm, rel, source, inplane_spacing_nm=inplane_spacing_nm)
    env = li["environment"].fillna("").astype(str).replace("", "layered").to_numpy()
    own = li["pair"].to_numpy(dtype=float) >= 0 if "pair" in li else np.ones(len(li), dtype=bool)
    reg = li["registry"].to_numpy(dtype=float) if "registry" in li else np.full(len(li), np.nan)
    typical = {r: _circular_mean(reg[(rel == r) & own]) for r in STEP_RELATIONS}
    drop_unsupported_runs(li, rel, source, typical, inplane_spacing_nm=inplane_spacing_nm)
    tm_of = {k: u for k, (u, _) in _by_layer(tm, "u_nm").items()}
    for k, idx in li.groupby("layer", sort=True).indices.items():
        unknown = rel[idx] == ""
        if not unknown.any():
            continue
        lay = {"u": li["u_nm"].to_numpy(dtype=float)[idx], "rel": rel[idx].copy(), "env": env[idx], "own": own[idx],
               "reg": reg[idx], "typical": typical}
        start = np.flatnonzero(unknown & ~np.r_[False, unknown[:-1]])
        stop = np.flatnonzero(unknown & ~np.r_[unknown[1:], False])
        tm_u = [tm_of.get(int(k) - 1, np.empty(0)), tm_of.get(int(k) + 1, np.empty(0))]
        for a, b in zip(start, stop):
            run = np.arange(a, b + 1)
            step, sites = _run_step(run, lay, tm_u, inplane_spacing_nm)
            if step:
                rel[idx[sites]], source[idx[sites]] = step, "extended"
    return rel, source


def _inplane_spacing(columns: pd.DataFrame, tm: pd.DataFrame) -> float:
    """Column spacing along the layers (nm): the table's ``inplane_nm`` or the TM columns' median spacing."""
    if "inplane_nm" in columns and np.isfinite(columns["inplane_nm"].to_numpy(dtype=float)).any():
        return float(np.nanmedian(columns["inplane_nm"].to_numpy(dtype=float)))
    gaps = np.concatenate([np.diff(np.sort(g.to_numpy(dtype=float))) for _, g in tm.groupby("layer")["u_nm"]] or [np.empty(0)])
    return float(np.median(gaps)) if gaps.size else float("nan")


def _filled_site_z(li: pd.DataFrame, key: np.ndarray, threshold: float, systematic: float) -> pd.Series:
    """Per segment, the largest ``(mixing - threshold) / hypot(mixing_sem, systematic)`` of its sites with a
    finite index and a counting error > 0 (NaN where none): how clearly its most filled site holds TM."""
    m, e = li["mixing"].to_numpy(dtype=float), li["mixing_sem"].to_numpy(dtype=float)
    ok = np.isfinite(m) & np.isfinite(e) & (e > 0)
    z = np.where(ok, (m - threshold) / np.hypot(np.where(ok, e, 1.0), systematic), np.nan)
    return pd.Series(z).groupby(key).max()


def _segment_rows(li: pd.DataFrame, key: np.ndarray, threshold: float, systematic: float = MIXING_SYSTEMATIC,
                  pool_spread: float | None = None) -> pd.DataFrame:
    """One row per segment ``key`` (sites sorted by layer, then along u) of the interlayer table."""
    g = li.groupby(key, sort=True)
    first = g[["layer", "segment", "relation", "step_source"]].first()
    reg, reg_sem = _circular_registry(li["registry"], key)
    fill, fill_sem = _fill(li["mixing"], key)
    environment = _majority(li["environment"].astype(str).replace("", "layered"), key).reindex(first.index)
    count_sem = (_count_sem(li["mixing"], li["mixing_sem"], key).reindex(first.index)
                 if "mixing_sem" in li else None)
    _spinel_balance(li, key, environment, fill, fill_sem, count_sem)
    mixed = li["mixed"].astype(str) if "mixed" in li else pd.Series("", index=li.index)
    layer = first["layer"].astype(int).to_numpy()
    out = pd.DataFrame({
        "li_layer": layer, "upper_tm_layer": layer - 1, "lower_tm_layer": layer + 1,
        "segment": first["segment"].astype(int).to_numpy(), "n_sites": g.size().to_numpy(),
        "u_start_nm": g["u_nm"].min().to_numpy(), "u_end_nm": g["u_nm"].max().to_numpy(),
        "x_nm": g["x_nm"].mean().to_numpy(), "y_nm": g["y_nm"].mean().to_numpy(),
        "step": first["relation"].map(lambda r: {"off": "glide", "": "unknown"}.get(r, r)).to_numpy(),
        "step_source": first["step_source"].to_numpy(),
        "registry": reg.reindex(first.index).to_numpy(), "registry_sem": reg_sem.reindex(first.index).to_numpy(),
        "environment": environment.to_numpy(),
        "li_fill": fill.reindex(first.index).to_numpy(), "li_fill_sem": fill_sem.reindex(first.index).to_numpy(),
        "n_sites_mixed": (mixed == "yes").groupby(key).sum().reindex(first.index).to_numpy().astype(int),
        "n_sites_uncertain": (mixed == "uncertain").groupby(key).sum().reindex(first.index).to_numpy().astype(int),
    })
    if "mixing_sem" in li:
        out["li_fill_count_sem"] = count_sem.to_numpy()
        out["filled_site_z"] = _filled_site_z(li, key, threshold, systematic).reindex(first.index).to_numpy()
        pool_f, pool_e = _spinel_pool_fill(li, key, environment, fill, count_sem)
        weights = _site_weights(li, key, environment, pool_f, pool_e)
        if weights is not None:
            weights = tuple(v.reindex(first.index).fillna(0.0).to_numpy() for v in weights)
        pool = (pool_f.reindex(first.index).to_numpy(dtype=float), pool_e.reindex(first.index).to_numpy(dtype=float))
        out["mixing"], out["mixing_sites"] = _count_decisions(out, threshold, weights, pool, systematic, pool_spread)
    else:  # no counting errors: the scatter of the sites decides, segment by segment
        out["li_fill_count_sem"] = np.nan
        out["mixing"] = _decide(out["li_fill"], out["li_fill_sem"], threshold)
        out["mixing_sites"] = out["n_sites"]
    return out[_COLUMNS]


def interlayer_table(columns: pd.DataFrame, *, max_sites: int = 8,
                     mixing_threshold: float = MIXING_THRESHOLD) -> pd.DataFrame:
    """Step and Li-layer fill of every TM-TM gap, in segments along the layer.

    Parameters
    ----------
    columns : pandas.DataFrame
        The labelled column table of :func:`layerscope.imaging.pipeline.map_phases` (Li-layer
        sites with ``layer, u_nm, x_nm, y_nm, relation, registry, mixing, environment, site``; copies of one
        site count as often as they are listed; sites with ``site_in_void`` are left out where
        :data:`SKIP_VOID_SITES` is, those with ``site_at_gap`` where :data:`SKIP_GAP_SITES` is).
    max_sites : int
        Longest segment (sites along the layer; 8 sites are about 2 nm).
    mixing_threshold : float
        Mixing index that separates a Li layer holding TM from a clean one.

    Returns
    -------
    pandas.DataFrame
        One row per segment: ``li_layer, upper_tm_layer, lower_tm_layer, segment, n_sites,
        u_start_nm, u_end_nm, x_nm, y_nm`` (segment centre), ``step`` (O3, O3', O1, glide,
        unknown), ``step_source`` (measured, extended, none: see the module notes),
        ``registry`` and ``registry_sem`` (TM-TM registry, column spacings; NaN for extended),
        ``environment`` (majority: layered, rock_salt, spinel), ``li_fill`` and ``li_fill_sem``
        (mean mixing index and the standard error from the scatter of its sites; for a spinel
        segment with ``dark_sublattice`` in ``columns``, the mean of its two sublattices' means), ``mixing``
        (yes / no / uncertain; see the module docstring),
        ``n_sites_mixed`` and ``n_sites_uncertain`` (sites whose own ``mixed`` decision, from the
        counts at the site, is "yes" / "uncertain"; see the column table's ``mixing_sem``),
        ``li_fill_count_sem`` (counting error of ``li_fill`` from the sites' ``mixing_sem``) and
        ``mixing_sites`` (sites whose counts took the decision: more than ``n_sites`` where the
        segment's run of its Li layer decided), ``clean_level`` and ``clean_level_sem`` (the image's
        clean level taken off, :func:`clean_level`), ``fill_systematic`` (the error beyond counting in
        the decision: ``li_fill`` +- 2 hypot(``li_fill_count_sem``, ``fill_systematic``) against
        ``mixing_threshold``; :data:`MIXING_SYSTEMATIC`, or :func:`clean_spread` where a level was taken;
        NaN where the sites' scatter decided).
    """
    li = columns[(columns["kind"] == "Li") & (columns.get("site", "octahedral") == "octahedral")]
    if li.empty:
        return pd.DataFrame(columns=_COLUMNS + ["clean_level", "clean_level_sem", "fill_systematic"])
    li = li.assign(relation=li["relation"].fillna("").astype(str)).sort_values(["layer", "u_nm"], kind="stable")
    li = li.reset_index(drop=True)
    if "environment" not in li:
        li["environment"] = ""
    li["pair_at_border"] = _pair_at_border(li, columns)
    tm = columns[columns["kind"] == "TM"]
    d_t = _inplane_spacing(columns, tm) if len(tm) else float("nan")
    # A glide's sites stay one segment when the glide is dropped (unknown or extended): dropping a step does
    # not regroup the sites whose fill the segment reports.
    was_glide = np.where(li["relation"].to_numpy() == "off", "|off", "")
    if np.isfinite(d_t):
        li["relation"], li["step_source"] = extend_steps(li, tm, inplane_spacing_nm=d_t)
    else:
        li["step_source"] = np.where(li["relation"] == "", "none", "measured")
    segment = np.zeros(len(li), dtype=int)  # filled layer by layer, assigned once (not one .loc per layer)
    runs = (li["relation"] + "|" + li["step_source"]).to_numpy() + was_glide
    for _, idx in li.groupby("layer", sort=True).indices.items():
        segment[idx] = _segments(runs[idx], max_sites)
    li["segment"] = segment
    if "mixing_sem" in li and "mixing" in li:
        li["segment"] = split_fill_changes(li, mixing_threshold)
    out_of_fill = np.zeros(len(li), dtype=bool)
    if SKIP_VOID_SITES and "site_in_void" in li:
        out_of_fill |= li["site_in_void"].fillna(False).to_numpy(dtype=bool)
    out_of_fill |= _empty_window_sites(li)
    if SKIP_GAP_SITES and "site_at_gap" in li:
        out_of_fill |= _gap_sites_out(li, out_of_fill) if GAP_READS_EMPTY else li["site_at_gap"].fillna(False).to_numpy(dtype=bool)
    if out_of_fill.any():
        # left out after the cuts: the segments are cut where they were (a void site's reading moved cuts elsewhere:
        # random draw 2135's two rim sites became a segment of their own, a wrong "no")
        li = li[~out_of_fill].reset_index(drop=True)
        if li.empty:
            return pd.DataFrame(columns=_COLUMNS + ["clean_level", "clean_level_sem", "fill_systematic"])
    key = pd.MultiIndex.from_arrays([li["layer"], li["segment"]]).factorize(sort=True)[0]
    out = _segment_rows(li, key, mixing_threshold)
    site_o1, seg_o1 = _o1_group(li, out)
    levels = [clean_level(out[seg_o1 == g]) for g in (False, True)]  # O3-like, O1 (empty Li layers): each its own
    out, spread = _second_pass(li, key, out, mixing_threshold, site_o1, seg_o1, levels)
    if SPINEL_BLOCK_POOL and "tm_reference" in li and "dark_sublattice" in li:
        out["mixing"], out["mixing_sites"] = spinel_block_decisions(li, key, out, mixing_threshold, spread, d_t)
    layered = (out["environment"] == "layered").to_numpy()
    level, level_sem = (np.where(seg_o1, levels[1][i], levels[0][i]) for i in (0, 1))
    counted = out["li_fill_count_sem"].notna().to_numpy()  # decided from counts (else from the sites' scatter)
    return out.assign(clean_level=np.where(layered, level, 0.0), clean_level_sem=np.where(layered, level_sem, 0.0),
                      fill_systematic=np.where(counted, spread, np.nan))


def _second_pass(li: pd.DataFrame, key: np.ndarray, out: pd.DataFrame, threshold: float, site_o1: np.ndarray,
                 seg_o1: np.ndarray, levels: list) -> tuple[pd.DataFrame, float]:
    """The segments decided again with what the first pass ``out`` measured; the table and the error beyond counting.

    Where the clean layers read above zero, their level is taken off the layered sites' index (same cuts) and the
    error is their spread about it (:func:`clean_spread`). Where they read at zero (no level taken) and
    :data:`ZERO_LEVEL_SPREAD` is set, the error is their spread about zero (:func:`clean_spread` with level 0, at most
    :data:`MIXING_SYSTEMATIC`: clean layers below zero keep it), the runs' pool test as before. Else the pool test
    may take the image's clean scatter (:data:`POOL_MEASURED_SPREAD`).
    """
    spread, clean = MIXING_SYSTEMATIC, out[~seg_o1]
    if max(levels)[0] > 0.0:  # clean layers read above zero: their level is taken off the layered sites' index, same cuts
        shift = np.where(site_o1, levels[1][0], levels[0][0])
        li["mixing"] = li["mixing"] - np.where(_layered_sites(li), shift, 0.0)
        spread = clean_spread(clean, levels[0][0]) if levels[0][0] > 0.0 else MIXING_SYSTEMATIC
        return _segment_rows(li, key, threshold, spread), spread
    scatter = clean_scatter(clean) if POOL_MEASURED_SPREAD else 0.0
    pool = scatter if scatter > MIXING_SYSTEMATIC / 2 else None
    zero_spread = clean_spread(clean, 0.0) if ZERO_LEVEL_SPREAD else MIXING_SYSTEMATIC
    if zero_spread < MIXING_SYSTEMATIC:
        spread = zero_spread
        return _segment_rows(li, key, threshold, spread, pool_spread=max(scatter, MIXING_SYSTEMATIC / 2)), spread
    if pool is not None:
        return _segment_rows(li, key, threshold, spread, pool_spread=pool), spread
    return out, spread


def _o1_group(li: pd.DataFrame, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Sites and segments of O1 steps, where the image holds enough clean O1 segments to measure their own level.

    The Li layers of a delithiated O1 block hold no Li and read below the O3 layers (random draw 2033:
    -0.012 to -0.019 against +0.02-0.05); pooled with them by counting errors (an empty column has the
    smaller one), they pull the level of the O3 layers to zero. Where fewer than :data:`CLEAN_LEVEL_SEGMENTS`
    clean layered segments have an O1 step (an O1 step at the edge of a block whose layer holds Li: draw
    2135), there is no level of their own to measure and they stay with the others.
    """
    site, seg = li["relation"].to_numpy() == "O1", (table["step"] == "O1").to_numpy()
    clean = seg & (table["environment"] == "layered").to_numpy() & (table["mixing"] == "no").to_numpy()
    if clean.sum() < CLEAN_LEVEL_SEGMENTS:
        return np.zeros_like(site), np.zeros_like(seg)
    return site, seg


def _layered_sites(li: pd.DataFrame) -> np.ndarray:
    """Li-layer sites of a layered environment (not spinel, not rock salt)."""
    return li["environment"].astype(str).replace("", "layered").to_numpy() == "layered"


def clean_level(table: pd.DataFrame) -> tuple[float, float]:
    """The index the image's own clean Li layers read, and its error; ``(0, 0)`` where it is not significant.

    A clean Li layer's index is not zero: its Li columns scatter (Z = 3 beside Z = 25-28) and the O
    columns' tails reach its sites, by an amount that depends on the detector (the Z exponent), the
    chemistry and the probe, so it is measured in each image: the inverse-counting-variance mean of the
    layered segments of ``table`` (a first :func:`interlayer_table` pass) decided "no", taken where it
    lies :data:`CLEAN_LEVEL_SIGNIFICANCE` errors above zero over at least :data:`CLEAN_LEVEL_SEGMENTS`
    segments. A "no" needs the fill two errors below the threshold, so the level is at most
    ``threshold - 2 MIXING_SYSTEMATIC`` (0.06) and, at low counts, biased low by that cut (it takes
    off less, never more). A level below zero is not taken: no site scatters less than an empty one,
    and under wide probes, where clean layers read -0.1 to -0.25, the same offset does not hold for the
    mixed layers (random draws 2048 and 2085 lose right decisions with it; docs/validation.md "imgfill").
    """
    if "li_fill_count_sem" not in table:
        return 0.0, 0.0
    sel = (table["environment"] == "layered").to_numpy() & (table["mixing"] == "no").to_numpy()
    level, sem = _segments_mean(table, sel)
    if not sem:
        return 0.0, 0.0
    return (level, sem) if level > CLEAN_LEVEL_SIGNIFICANCE * sem else (0.0, 0.0)


def _segments_mean(table: pd.DataFrame, sel: np.ndarray) -> tuple[float, float]:
    """The inverse counting-variance mean of the selected segments' ``li_fill`` and its error; ``(0, 0)`` where fewer
    than :data:`CLEAN_LEVEL_SEGMENTS` of them read (a finite fill with a positive counting error)."""
    f, e = table["li_fill"].to_numpy(dtype=float)[sel], table["li_fill_count_sem"].to_numpy(dtype=float)[sel]
    ok = np.isfinite(f) & np.isfinite(e) & (e > 0)
    if ok.sum() < CLEAN_LEVEL_SEGMENTS:
        return 0.0, 0.0
    w = 1.0 / e[ok] ** 2
    return float(np.sum(w * f[ok]) / w.sum()), float(1.0 / np.sqrt(w.sum()))


def clean_scatter(table: pd.DataFrame) -> float:
    """Spread of the clean segments of ``table`` (layered, decided "no": the first pass) about their own mean beyond
    their counting errors, ``sqrt(mean((f - mean)^2 - e^2))``, at most :data:`POOL_SPREAD_MAX`; 0 where fewer than
    :data:`CLEAN_LEVEL_SEGMENTS` segments measure it (:data:`POOL_MEASURED_SPREAD`)."""
    sel = (table["environment"] == "layered").to_numpy() & (table["mixing"] == "no").to_numpy()
    f, e = table["li_fill"].to_numpy(dtype=float)[sel], table["li_fill_count_sem"].to_numpy(dtype=float)[sel]
    ok = np.isfinite(f) & np.isfinite(e) & (e > 0)
    if ok.sum() < CLEAN_LEVEL_SEGMENTS:
        return 0.0
    w = 1.0 / e[ok] ** 2
    mean = float(np.sum(w * f[ok]) / w.sum())
    excess = float(np.mean((f[ok] - mean) ** 2 - e[ok] ** 2))
    return float(min(np.sqrt(max(excess, 0.0)), POOL_SPREAD_MAX))


def clean_spread(table: pd.DataFrame, level: float) -> float:
    """Spread of the image's clean segments about their level beyond counting, in [CLEAN_SPREAD_FLOOR, MIXING_SYSTEMATIC].

    :data:`MIXING_SYSTEMATIC` (0.02) was the spread of clean layers about zero before their level was
    measured (0.016 +- 0.013 above their truth); with the level taken off, the clean segments of the
    narrow-probe random draws scatter 0.008-0.009 beyond their counting errors (z-scores of their readings
    against the truth with 0.02: standard deviation 0.53; docs/validation.md "imgnarrow"). Measured here
    on the layered segments of ``table`` (the first pass) decided "no": ``sqrt(mean((f - level)^2 - e^2))``
    (``e`` the counting error), at least :data:`CLEAN_SPREAD_FLOOR`, at most :data:`MIXING_SYSTEMATIC`
    (also where fewer than :data:`CLEAN_LEVEL_SEGMENTS` segments measure it).
    """
    sel = (table["environment"] == "layered").to_numpy() & (table["mixing"] == "no").to_numpy()
    f, e = table["li_fill"].to_numpy(dtype=float)[sel], table["li_fill_count_sem"].to_numpy(dtype=float)[sel]
    ok = np.isfinite(f) & np.isfinite(e)
    if ok.sum() < CLEAN_LEVEL_SEGMENTS:
        return MIXING_SYSTEMATIC
    excess = float(np.mean((f[ok] - level) ** 2 - e[ok] ** 2))
    return float(np.clip(np.sqrt(max(excess, 0.0)), CLEAN_SPREAD_FLOOR, MIXING_SYSTEMATIC))


def spinel_blocks(table: pd.DataFrame, inplane_spacing_nm: float) -> np.ndarray:
    """Block id (0, 1, ...: connected components) of each row of the interlayer ``table`` (-1 where not spinel).

    Spinel segments join where they follow each other along one Li layer (no other segment of the table's rows,
    in layer then segment order, between them), or lie in Li layers two apart (adjacent, across one TM layer) with
    stretches (``u_start_nm`` .. ``u_end_nm``, widened by one column
    spacing ``inplane_spacing_nm``) that overlap.
    """
    sp = np.flatnonzero((table["environment"] == "spinel").to_numpy())
    out = np.full(len(table), -1)
    if sp.size == 0:
        return out
    lay = table["li_layer"].to_numpy()[sp]
    reach = float(np.nan_to_num(inplane_spacing_nm, nan=0.0))  # no TM columns to measure it: stretches as they are
    a = table["u_start_nm"].to_numpy(float)[sp] - reach
    b = table["u_end_nm"].to_numpy(float)[sp] + reach
    along = (lay[:, None] == lay[None, :]) & (np.abs(sp[:, None] - sp[None, :]) == 1)  # next rows of one layer
    across = (np.abs(lay[:, None] - lay[None, :]) == 2) & (a[:, None] <= b[None, :]) & (a[None, :] <= b[:, None])
    out[sp] = connected_components(csr_matrix(along | across), directed=False)[1]
    return out


def layered_offset(table: pd.DataFrame) -> tuple[float, float]:
    """The index the layered segments of ``table`` read, all of them (inverse counting variance mean), and its error,
    where it lies :data:`EMPTY_OFFSET_SIGNIFICANCE` errors below zero; ``(0, 0)`` elsewhere.

    Not selected on the decisions (the "no" segments of :func:`clean_level` are cut two errors below the threshold,
    which biases them low): a mixed layer raises the mean, so it can only take off less than the clean layers' offset.
    """
    sel = (table["environment"] == "layered").to_numpy()
    level, sem = _segments_mean(table, sel)
    if not sem:
        return 0.0, 0.0
    return (level, sem) if level + EMPTY_OFFSET_SIGNIFICANCE * sem < 0 else (0.0, 0.0)


def _block_reading(li: pd.DataFrame, sel: np.ndarray, w: np.ndarray,
                   layered: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float, int]:
    """Balanced fill of the sites ``sel`` (site weights ``w``): the mean of the two sublattices' weighted means
    less the index's offset; its counting error; the sites. NaN without both sublattices.

    The offset is the closest to zero of those measured: the empty sublattice's mean where it reads below zero by
    :data:`EMPTY_OFFSET_SIGNIFICANCE` errors and at most half the filled one's, and (with
    :data:`SPINEL_BLOCK_LAYERED_OFFSET`) ``layered``, the image's layered level (:func:`layered_offset`, its
    error then added); none: 0.
    """
    m, e = li["mixing"].to_numpy(dtype=float), li["mixing_sem"].to_numpy(dtype=float)
    dark = li["dark_sublattice"].fillna(False).to_numpy(dtype=bool)
    means = []
    for on in (False, True):
        q = sel & (dark == on)
        total = w[q].sum()
        if not total > 0:
            return float("nan"), float("nan"), int(sel.sum())
        means.append((np.sum(w[q] * m[q]) / total, np.sqrt(np.sum((w[q] * e[q]) ** 2)) / total))
    (mb, eb), (md, ed) = means
    offsets = [(0.0, 0.0)]
    if md + EMPTY_OFFSET_SIGNIFICANCE * ed < 0 and md <= 0.5 * mb:
        offsets.append((md, 0.0))
    if SPINEL_BLOCK_LAYERED_OFFSET and layered[0] < 0:
        offsets.append(layered)
    negative = [o for o in offsets if o[0] < 0]
    offset, offset_sem = max(negative) if negative else (0.0, 0.0)
    return (mb + md) / 2 - offset, float(np.hypot(np.hypot(eb, ed) / 2, offset_sem)), int(sel.sum())


def _agrees(rows: pd.DataFrame, fill: float, fill_sem: float, systematic: float) -> np.ndarray:
    """Which segments ``rows`` read as their block does: ``(li_fill - fill)^2`` at most :data:`POOL_CHI2` times
    ``li_fill_count_sem^2 + fill_sem^2 + (systematic / 2)^2``, the pooled runs' test (:func:`_pool_runs`) for a pair.
    A segment that reads apart from its block (the diluted end of a spinel layer: random draw 7026, 0.068 +- 0.026
    in a block at 0.28) is no part of its reading and keeps its own decision."""
    f, e = rows["li_fill"].to_numpy(dtype=float), rows["li_fill_count_sem"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        return (f - fill) ** 2 <= POOL_CHI2 * (e * e + fill_sem ** 2 + (systematic / 2) ** 2)


def spinel_block_decisions(li: pd.DataFrame, key: np.ndarray, table: pd.DataFrame, threshold: float,
                           systematic: float, inplane_spacing_nm: float) -> tuple[np.ndarray, np.ndarray]:
    """``mixing`` and ``mixing_sites`` of ``table`` with its uncertain spinel segments decided by their block
    (:data:`SPINEL_BLOCK_POOL`, :func:`spinel_blocks`, :func:`_block_reading`; error ``hypot(counting, systematic)``).
    ``key``: the row of ``table`` of each site of ``li`` (with ``tm_reference``, ``dark_sublattice``);
    ``inplane_spacing_nm``: the column spacing along the layers. A segment whose fill disagrees with its block's
    (:func:`_agrees`) keeps its own decision."""
    mixing, sites = table["mixing"].to_numpy().copy(), table["mixing_sites"].to_numpy().copy()
    m, e, ref = (li[c].to_numpy(dtype=float) for c in ("mixing", "mixing_sem", "tm_reference"))
    ok = np.isfinite(m) & np.isfinite(e) & np.isfinite(ref) & (ref > 0)
    if not ok.any():
        return mixing, sites
    w = np.where(ok, (ref / np.median(e[ok] * ref[ok])) ** 2, 0.0)
    block = spinel_blocks(table, inplane_spacing_nm)
    layered = layered_offset(table)
    for b in np.unique(block[block >= 0]):
        rows = np.flatnonzero((block == b) & (mixing == "uncertain"))
        if rows.size == 0:
            continue
        f, f_sem, n = _block_reading(li, ok & np.isin(key, np.flatnonzero(block == b)), w, layered)
        code = _decision_codes(np.array([f]), np.array([np.hypot(f_sem, systematic)]), threshold)[0]
        rows = rows[_agrees(table.iloc[rows], f, f_sem, systematic)]
        if code != 0:
            mixing[rows], sites[rows] = ("uncertain", "yes", "no")[code], n
    return mixing, sites
