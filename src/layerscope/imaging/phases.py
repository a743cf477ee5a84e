"""Phase labels per atom column: O3, O3' (twin), O1, rock salt, spinel-like; Li/TM mixing.

Two observables decide the phase of a column in a [100]/[110] HAADF image of a layered oxide:

1. **Stacking** -- the lateral registry ``r`` of a TM layer relative to the next TM layer (in
   units of the in-plane column spacing ``d_t``, wrapped to [-1/2, 1/2)). Two cation layers lie
   between them, each stepping by ``s`` in {+1/3, 0, -1/3}; ``r = wrap(2 s)``: O3 (steps
   ``s_O3`` = +1/3 in the [100] view of :mod:`layerscope.crystal`, -1/3 in its [110] view) gives
   ``r = -s_O3``, the O3' twin ``r = +s_O3``, O1 ``r = 0``.  A relation between TM layers is
   classified by the nearest of these three values (within ``tolerance``); anything further
   off is ``"off"`` (a glide or a disordered gap).
2. **Li-layer occupancy** -- the mixing index ``m`` of every Li-layer site (its column intensity
   over the mean of the neighbouring TM columns; ~0 for a Li column, ~1 for a column as full of
   TM as the TM layer). Along a Li layer, a high local mean (``>= rock_salt_min``) is rock salt
   (all octahedral sites filled); a significant contrast between the two sublattices of every
   second site (the 2 x d_t order of the spinel's 1/4 TM in the Li layer seen along [100]) is
   spinel-like; anything else is a layered phase (with isolated or uniform mixing).

The spinel also holds Li in tetrahedral sites, between the octahedral layers, which HAADF does
not show: :func:`spinel_tetrahedral_sites` places them from the empty octahedral sites of a
spinel Li layer (its dark sublattice), the stacking step and the TM-layer spacing, following the
geometry of :mod:`layerscope.crystal`.

Labelling rules (they decide which layer a boundary belongs to, see ``docs/validation.md``):

- a TM column takes the Li-layer environment of the gap *below* it (along the normal) when that
  is rock salt or spinel; otherwise O1 when its relation to the TM layer below is O1-like (or
  twin-like right after an O1 relation), O3' when its relations to both neighbouring TM layers
  are twin-like or when it is the TM layer right below a single reversed step, else O3;
- a Li-layer site takes its own environment when rock salt or spinel; otherwise O1 when the
  relation between its two TM layers is O1-like (or twin-like right before an O1 relation), O3'
  when that relation and both neighbouring relations are twin-like or when it lies right below
  the TM layer of a single reversed step, else O3.

These per-column rules reproduce the cation layers that :mod:`layerscope.crystal.scenes` builds
as a twin block (its two mirror planes, each a zero step, bound the block). Twin-like *domains*
are counted as the seed studies count them, by their reversed TM-TM steps: a twin-like domain of
``n`` layers is ``n`` consecutive reversed steps (single-layer: one, double-layer: two,
multilayer: three or more), see :func:`layerscope.imaging.domains.find_domains`. A block of
``k`` cation layers has ``k`` reversed steps for odd ``k`` and ``k - 2`` for even ``k`` (the two
edges of an even block read as matrix stacking); a single reversed step is one TM layer with the
Li layer below it.

Why "twin-like" appears at other boundaries: an O3 -> O3' reversal of the O stacking contains
one gap with a zero step (the mirror plane), and so does the entry into or exit from an O1 block
that begins or ends in a Li layer; a TM-TM relation holding one zero and one O3 step has the
registry of the twin. Requiring both relations of a TM layer to be twin-like gives an m-layer
twin its m TM layers; a twin-like relation next to an O1 relation is the O1 block's edge. Which
layer a boundary belongs to follows :mod:`layerscope.crystal.scenes` (a block owns its first and
last cation layer); from the TM columns alone a boundary is defined to within one cation layer.

References
----------
- C. Delmas, C. Fouassier, P. Hagenmuller, Physica B+C 99, 81 (1980): O3/O1/P2 notation.
- A. Van der Ven, M. K. Aydinol, G. Ceder, J. Electrochem. Soc. 145, 2149 (1998): O3 -> O1 (H1-3)
  by gliding of CoO2 slabs.
- S.-K. Jung et al., Adv. Energy Mater. 4, 1300787 (2014); F. Lin et al., Nat. Commun. 5, 3529
  (2014): rock-salt and spinel-like surface reconstruction seen in HAADF (Li-layer columns lit).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from layerscope.errors import InputError
from layerscope.imaging.lattice import circular_mean, wrap_half

__all__ = [
    "PHASE_LABELS",
    "o3_step_for_zone",
    "classify_relations",
    "li_environment",
    "label_tm_columns",
    "label_li_sites",
    "li_site_steps",
    "spinel_tetrahedral_sites",
    "site_index",
]

#: Sites on either side in the window of a Li layer's local mean (rock-salt decision).
LOCAL_HALF_WINDOW = 4

#: Phase labels, in the order of the integer phase map (0 = no column / vacuum).
PHASE_LABELS: tuple[str, ...] = ("O3", "O3'", "O1", "rock_salt", "spinel")


def o3_step_for_zone(zone: str) -> float:
    """Stacking step of O3 per cation layer, down the image, in units of the column spacing.

    +1/3 in the [100] view and -1/3 in the [110] view (the mirror image), the convention of
    :func:`layerscope.crystal.oriented` (x along a1 + 2 a2 for [100], -a1 + a2 for [110]).

    Raises
    ------
    InputError
        For another zone axis.
    """
    if zone == "100":
        return 1.0 / 3.0
    if zone == "110":
        return -1.0 / 3.0
    raise InputError(f"zone {zone!r} is not supported for phase mapping; use '100' or '110'")


def classify_relations(registry: np.ndarray, *, o3_step: float, tolerance: float = 0.1) -> np.ndarray:
    """Stacking relation between two TM layers from their registry.

    Parameters
    ----------
    registry : numpy.ndarray
        TM-TM registry in units of the column spacing, in [-1/2, 1/2) (NaN: no partner).
    o3_step : float
        O3 step per cation layer in this view (:func:`o3_step_for_zone`).
    tolerance : float
        Largest distance (column spacings) from an ideal registry; 0.1 is 24 pm for LiCoO2.

    Returns
    -------
    numpy.ndarray of str
        ``"O3"``, ``"O3'"``, ``"O1"``, ``"off"`` (too far from all three) or ``""`` (no partner).
    """
    r = np.asarray(registry, dtype=float)
    ideal = {"O3": wrap_half(2 * o3_step), "O3'": wrap_half(-2 * o3_step), "O1": 0.0}
    names = np.array(list(ideal))
    dist = np.abs(wrap_half(r[:, None] - np.array(list(ideal.values()))[None, :]))
    best = np.argmin(np.where(np.isnan(dist), np.inf, dist), axis=1)
    out = names[best].astype("<U4")
    out[np.nanmin(np.where(np.isnan(dist), np.inf, dist), axis=1) > tolerance] = "off"
    out[np.isnan(r)] = ""
    return out


def li_environment(
    u_nm: np.ndarray,
    layer: np.ndarray,
    mixing: np.ndarray,
    *,
    inplane_spacing_nm: float,
    half_window: int = LOCAL_HALF_WINDOW,
    spinel_half_window: int = 6,
    rock_salt_min: float = 0.6,
    spinel_min_contrast: float = 0.3,
    significance: float = 4.0,
    weak_significance: float = 2.5,
    between_significance: float = 2.0,
    tm_pattern: np.ndarray | None = None,
    tm_pattern_weight: float = 0.35,
    reference: np.ndarray | None = None,
    confidence: float = 2.0,
    max_half_window: int = 16,
) -> pd.DataFrame:
    """Local occupancy pattern of every Li-layer site: layered, rock salt or spinel-like.

    Along each Li layer (sites sorted by ``u``), the ``2 half_window + 1`` sites around a site
    give the local mean mixing ``M`` and the means of its two sublattices (even and odd sites,
    parity from :func:`site_index`), ``m_bright >= m_dark``.

    - spinel-like: ``m_bright - m_dark >= spinel_min_contrast``, with the dark sublattice at most
      half as bright as the other, and the difference ``significance`` standard errors above the
      noise (the 2 x d_t order of the spinel's TM in the Li layer seen along [100]); or
      ``weak_significance`` when a spinel site of the Li layer above or below is within a window
      (hysteresis across layers, repeated so a block grows from its strongest windows); or, for a
      layer with spinel sites within a window both above and below it, ``between_significance``
      with the dark sublattice at most half the bright one and no minimum contrast;
    - rock salt: ``M >= rock_salt_min`` (every octahedral site as full as the TM layer) and not
      spinel (a spinel Li layer's filled sites can read 1-1.4 next to the kagome TM columns'
      half-empty ones, putting ``M`` over the threshold; rock salt fills both sublattices);
    - layered otherwise.

    Where the ``2 spinel_half_window + 1``-site window is not ``significance`` standard errors,
    the sublattice test is repeated over windows doubled up to ``2 max_half_window + 1`` sites and
    the site takes the most significant one with the spinel shape (the rock-salt mean widens
    likewise); a widened window never seeds a block.

    The scatter of one site's mixing is estimated per Li layer from the differences between
    second neighbours (which cancels the spinel alternation and keeps noise and disorder):
    ``sigma_m = std(m_i - m_{i+2}) / sqrt(2)``. The sublattice contrast is measured over a
    window of ``2 spinel_half_window + 1`` sites (spinel order is long-ranged; a few random
    mixed columns can alternate by chance over a short window).

    The spinel's order also shows in the TM layers on either side (kagome layers, 3/4 filled):
    seen along [100] or [110] the half-empty TM columns lie above the empty octahedral sites of the
    Li layer (sharing a face with their tetrahedra) and, in the TM layer below, under the filled
    ones. ``tm_pattern`` (the relative intensity of the TM column above a site minus that of the
    TM column below it) then alternates in phase with the mixing. Random Li/TM exchange has no
    such coherent pattern in the TM layers.

    When it is given, the significance and the sublattice assignment are measured on
    ``mixing + tm_pattern_weight * tm_pattern``. The weight follows from the two signals'
    contrast over their per-site variance (spinel, 10 nm, 1e3 e/A^2: mixing 0.69 over 0.030,
    pattern 0.95 over 0.20, optimum 0.21); recall is flat between 0.2 and 0.35 and 0.35 also
    rejected a chance alternation in a 20 %-exchanged O3 region that 0.2 let through
    (``docs/validation.md``). The contrast and the dark/bright conditions still hold on the
    mixing alone.

    Parameters
    ----------
    u_nm : numpy.ndarray
        Site coordinate along the layers, nm.
    layer : numpy.ndarray of int
        Li-layer index of each site.
    mixing : numpy.ndarray
        Mixing index of each site (NaN where it could not be measured).
    inplane_spacing_nm : float
        Column spacing along the rows, nm.
    half_window : int
        Sites on either side in the window of the local mean.
    spinel_half_window : int
        Sites on either side in the window of the sublattice contrast.
    rock_salt_min : float
        ``M`` at or above this is rock salt.
    spinel_min_contrast : float
        Smallest sublattice contrast for spinel.
    significance, weak_significance, between_significance : float
        Noise margins of the spinel contrast, in standard errors: alone, next to a spinel layer,
        between two spinel layers.
    tm_pattern : numpy.ndarray, optional
        Per site, ``I_above / <I>_layer - I_below / <I>_layer`` of the TM columns it was placed
        from (NaN where unknown: counted as 0).
    tm_pattern_weight : float
        Weight of ``tm_pattern`` in the tested signal.
    reference : numpy.ndarray, optional
        The TM intensity each site's mixing index is relative to. When given, ``M`` is the ratio
        of the window's summed site intensities to its summed references (the mean of the
        mixing weighted by the reference) rather than the mean of the ratios: at a few detected
        electrons per column (5 nm, 5e2 e/A^2) single references are noisy and the mean of the
        ratios is pulled up by the dimmest ones. The sublattice test then takes each site's
        intensity over the mean reference of its window, for the same reason.
    confidence : float
        The rock-salt window widens where its mean is within this many standard errors of
        ``rock_salt_min``.
    max_half_window : int
        Largest half window of the widened rock-salt and spinel tests.

    Returns
    -------
    pandas.DataFrame
        ``local_mixing`` (M), ``alternation`` (``(m_bright - m_dark) / 2``), ``environment``
        (``"layered"``, ``"rock_salt"``, ``"spinel"``) and ``dark_sublattice`` (True when the site
        belongs to the dimmer of the two sublattices of its window: in a spinel, the empty
        octahedral sites) and ``rock_salt_window`` (the sites the rock-salt decision was taken
        over: ``2 half_window + 1`` unless widened) per site, in input order.
    """
    u = np.asarray(u_nm, dtype=float)
    m = np.asarray(mixing, dtype=float)
    lay = np.asarray(layer)
    is_rs = np.zeros(u.size, dtype=bool)
    window = np.full(u.size, 2 * int(half_window) + 1)
    strong = np.zeros(u.size, dtype=bool)
    weak = np.zeros(u.size, dtype=bool)
    between = np.zeros(u.size, dtype=bool)
    mean = np.full(u.size, np.nan)
    alt = np.full(u.size, np.nan)
    on_dark = np.zeros(u.size, dtype=bool)
    idx = np.arange(u.size)
    ws = int(spinel_half_window)

    # The signal whose sublattice contrast is tested: the mixing, plus the TM layers' pattern.
    # With a reference, the mixing of each site is taken over the mean reference of its window
    # rather than its own (``_over_local_reference``): the spinel test must not see the noise of
    # single references.
    ref = None if reference is None else np.asarray(reference, dtype=float)
    x = m if ref is None else _over_local_reference(u, lay, m, ref, inplane_spacing_nm=inplane_spacing_nm,
                                                      half_window=ws)
    sig = x if tm_pattern is None else x + tm_pattern_weight * np.nan_to_num(np.asarray(tm_pattern, dtype=float), nan=0.0)
    index = _cached_site_index()  # each layer's sites are indexed up to four times on the same positions
    global_sigma = _site_noise(u, lay, sig, inplane_spacing_nm=inplane_spacing_nm, index=index)
    for k in np.unique(lay):
        sel = idx[lay == k]
        order = sel[np.argsort(u[sel], kind="stable")]
        vals = m[order]
        even = index(u[order], inplane_spacing_nm) % 2 == 0
        good = np.isfinite(vals)
        if reference is not None:
            good &= np.isfinite(ref[order]) & (ref[order] > 0)
        v0 = np.where(good, vals, 0.0)
        x0 = np.where(good, x[order], 0.0)
        w0 = np.where(good, ref[order], 0.0) if reference is not None else good.astype(float)
        s0 = np.where(good, sig[order], 0.0)
        n_all = _window_sum(good.astype(float), int(half_window))
        sigma = (_site_noise(u[order], np.zeros(order.size), np.where(good, sig[order], np.nan),
                             inplane_spacing_nm=inplane_spacing_nm, index=index)
                 if order.size >= 12 else global_sigma)
        t, strong_here = _sublattice_test(x0, s0, even, good, sigma, half_window=ws,
                                          max_half_window=int(max_half_window), min_contrast=spinel_min_contrast,
                                          significance=significance)
        contrast, z, bright_even, shape, ordered = t["contrast"], t["z"], t["bright_even"], t["shape"], t["ordered"]
        with np.errstate(invalid="ignore"):
            m_all = _window_sum(v0 * w0, int(half_window)) / _window_sum(w0, int(half_window))
        sigma_m = (_site_noise(u[order], np.zeros(order.size), np.where(good, vals, np.nan),
                               inplane_spacing_nm=inplane_spacing_nm, index=index) if order.size >= 12 else np.inf)
        rs, rs_window = _rock_salt_along_layer(v0, w0, good, m_all, n_all, sigma_m,
                                               threshold=rock_salt_min, half_window=int(half_window),
                                               max_half_window=int(max_half_window), confidence=confidence)
        # Windows cut by the end of a layer (image edge, void) are short and noisy: such a site
        # takes the decision of the nearest site with a full window, when the layer has one.
        full = (t["n"] >= 2 * ws + 1) & (n_all >= 2 * int(half_window) + 1)
        if full.any() and not full.all():
            pos = np.arange(order.size)
            nearest = np.nonzero(full)[0][np.argmin(np.abs(pos[:, None] - np.nonzero(full)[0][None, :]), axis=1)]
            rs, shape, z, bright_even, ordered = rs[nearest], shape[nearest], z[nearest], bright_even[nearest], ordered[nearest]
            rs_window, strong_here = rs_window[nearest], strong_here[nearest]
        is_rs[order] = rs
        window[order] = rs_window
        strong[order] = strong_here
        weak[order] = shape & (z >= weak_significance)
        between[order] = ordered & (z >= between_significance)
        on_dark[order] = even != bright_even
        mean[order] = m_all
        alt[order] = contrast / 2.0
    reach = (2 * ws + 1) * inplane_spacing_nm / 2
    spinel = _grow_from_strong(u, lay, strong, weak, reach_nm=reach)
    spinel = _grow_from_strong(u, lay, spinel, between, reach_nm=reach, both_sides=True)
    # A spinel's Li layer, filled on one sublattice and empty on the other, can have a window mean
    # over the rock-salt threshold (its filled sites read 1-1.4 next to the half-empty kagome TM
    # columns); rock salt fills both sublattices alike, so the sublattice order decides.
    env = np.where(spinel, "spinel", np.where(is_rs, "rock_salt", "layered")).astype("<U9")
    return pd.DataFrame({"local_mixing": mean, "alternation": alt, "environment": env, "dark_sublattice": on_dark,
                         "rock_salt_window": window})


def _window_sum(a: np.ndarray, half_window: int) -> np.ndarray:
    """Sum of ``a`` over the ``2 half_window + 1`` entries centred on each entry (cut at the ends)."""
    w = int(half_window)
    return np.convolve(a, np.ones(2 * w + 1), mode="full")[w : w + a.size]


def _rock_salt_along_layer(v0, w0, good, m_all, n_all, sigma_m, *, threshold: float, half_window: int,
                           max_half_window: int, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Rock-salt decision of every site of one layer (sorted along it) from its window mean, and
    the number of sites it was taken over.

    Where the mean ``m_all`` of the ``2 half_window + 1`` sites lies within ``confidence``
    standard errors (``sigma_m / sqrt(n)``) of ``threshold``, the window is doubled (up to
    ``max_half_window``) until the decision is clear: at a few electrons per column the 9-site
    mean of a rock-salt layer (1.0) scatters by ~0.25 and dips under 0.6 over part of the layer;
    at 1e4 e/A^2 no site of the validation scenes is unsure and nothing changes.
    """
    rs = m_all >= threshold
    w = half_window
    window = np.full(rs.size, 2 * w + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        unsure = np.abs(m_all - threshold) < confidence * sigma_m / np.sqrt(n_all)
    while unsure.any() and w < max_half_window:
        w = min(2 * w, max_half_window)
        with np.errstate(invalid="ignore", divide="ignore"):
            m_w = _window_sum(v0 * w0, w) / _window_sum(w0, w)
            n_w = _window_sum(good.astype(float), w)
        rs = np.where(unsure, m_w >= threshold, rs)
        window[unsure] = 2 * w + 1
        with np.errstate(invalid="ignore", divide="ignore"):  # n_w = 0: no good site in the window
            unsure &= np.abs(m_w - threshold) < confidence * sigma_m / np.sqrt(n_w)
    return rs, window


def _grow_from_strong(u: np.ndarray, layer: np.ndarray, strong: np.ndarray, weak: np.ndarray, *,
                      reach_nm: float, both_sides: bool = False) -> np.ndarray:
    """Hysteresis across layers: weak sites next to a strong one in the adjacent layer join it.

    A site is kept when ``strong``, or when ``weak`` and a kept site of the layer above or below
    (the neighbouring value of ``layer`` among those present, at most 2 apart: the next Li layer)
    lies within ``reach_nm`` along the layers; repeated until nothing changes, so a block grows
    layer by layer from its strongest windows (as in Canny's edge hysteresis). With
    ``both_sides``, a weak site needs kept sites within reach in both the layer above and the
    layer below (it lies inside a block, not at its edge).
    """
    keep = strong.copy()
    layers = np.unique(layer)
    changed = keep.any()
    while changed:
        changed = False
        for i, k in enumerate(layers):
            cand = (layer == k) & weak & ~keep
            if not cand.any():
                continue
            near = [layers[j] for j in (i - 1, i + 1) if 0 <= j < layers.size and abs(int(layers[j]) - int(k)) <= 2]
            if not near or (both_sides and len(near) < 2):
                continue
            ok = np.array([_within(u[cand], u[(layer == n) & keep], reach_nm) for n in near])
            hit = ok.all(axis=0) if both_sides else ok.any(axis=0)
            if hit.any():
                keep[np.nonzero(cand)[0][hit]] = True
                changed = True
    return keep


def _within(points: np.ndarray, held: np.ndarray, reach_nm: float) -> np.ndarray:
    """Whether each of ``points`` (1-D) has one of ``held`` within ``reach_nm``."""
    if held.size == 0:
        return np.zeros(points.size, dtype=bool)
    dist, _ = cKDTree(held[:, None]).query(points[:, None])
    return dist <= reach_nm


def _sublattice_order(x0: np.ndarray, s0: np.ndarray, even: np.ndarray, good: np.ndarray, sigma: float,
                      half_window: int, *, min_contrast: float) -> dict[str, np.ndarray]:
    """Sublattice test of one layer (sites sorted along it) over windows of ``2 half_window + 1``.

    Returns, per site: ``contrast`` of ``x0`` between the brighter and the dimmer sublattice,
    ``z`` the difference of ``s0`` between them in standard errors (``sigma`` per site),
    ``bright_even`` (the even sites are the brighter), ``ordered`` (the dimmer at most half the
    brighter), ``shape`` (ordered, and the contrast at least ``min_contrast``) and ``n`` (sites).
    """
    n_e = _window_sum((good & even).astype(float), half_window)
    n_o = _window_sum((good & ~even).astype(float), half_window)
    with np.errstate(invalid="ignore", divide="ignore"):
        m_e = _window_sum(x0 * even, half_window) / n_e
        m_o = _window_sum(x0 * ~even, half_window) / n_o
        s_e = _window_sum(s0 * even, half_window) / n_e
        s_o = _window_sum(s0 * ~even, half_window) / n_o
        z = np.abs(s_e - s_o) / (sigma * np.sqrt(1.0 / n_e + 1.0 / n_o))
    bright_even = s_e >= s_o
    bright = np.where(bright_even, m_e, m_o)
    dark = np.where(bright_even, m_o, m_e)
    contrast = bright - dark
    ordered = (contrast > 0) & (dark <= 0.5 * bright)
    return {"contrast": contrast, "z": z, "bright_even": bright_even, "ordered": ordered,
            "shape": ordered & (contrast >= min_contrast), "n": n_e + n_o}


def _sublattice_test(x0: np.ndarray, s0: np.ndarray, even: np.ndarray, good: np.ndarray, sigma: float, *,
                     half_window: int, max_half_window: int, min_contrast: float,
                     significance: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """:func:`_sublattice_order` on windows that widen where the narrow one is not significant.

    At a few electrons per column the ``2 half_window + 1``-site test is often unsure; there the
    window doubles (as for rock salt, up to ``2 max_half_window + 1`` sites) and a site takes the
    wider test when it has the spinel shape and is more significant: spinel order is long-ranged
    along a layer, a chance alternation is not. Returns the test per site and where the narrow
    window alone is ``significance`` standard errors (a block's seed: never a widened window).
    """
    t = _sublattice_order(x0, s0, even, good, sigma, half_window, min_contrast=min_contrast)
    seed = t["shape"] & (t["z"] >= significance)
    unsure = ~seed
    w = half_window
    while unsure.any() and w < max_half_window:
        w = min(2 * w, max_half_window)
        wide = _sublattice_order(x0, s0, even, good, sigma, w, min_contrast=min_contrast)
        take = unsure & wide["shape"] & ((wide["z"] > t["z"]) | ~t["shape"])
        t = {key: (val if key == "n" else np.where(take, wide[key], val)) for key, val in t.items()}
    return t, seed


def _over_local_reference(u: np.ndarray, layer: np.ndarray, mixing: np.ndarray, reference: np.ndarray, *,
                          inplane_spacing_nm: float, half_window: int) -> np.ndarray:
    """Each site's intensity (``mixing * reference``) over the mean reference of its window.

    The mean is taken along the site's layer over the ``2 half_window + 1`` sites around it (sites
    without a finite, positive reference left out). A single reference (the mean of 4 TM columns)
    at a few detected electrons per column scatters by 30-50 %, and a dim one turns a site's
    ratio into an outlier (spinel, 5 nm, 5e2 e/A^2: single sites at 2-5 where the truth is 0.5-1);
    the window mean scatters by ~10 % and still follows thickness changes over a few nm.
    Returns NaN where the mixing or the window's reference is unknown.
    """
    u = np.asarray(u, dtype=float)
    out = np.full(u.size, np.nan)
    w = int(half_window)
    for k in np.unique(layer):
        sel = np.nonzero(layer == k)[0]
        order = sel[np.argsort(u[sel], kind="stable")]
        r = reference[order]
        ok = np.isfinite(r) & (r > 0)
        total = _window_sum(np.where(ok, r, 0.0), w)
        count = _window_sum(ok.astype(float), w)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[order] = np.where(ok & (count > 0), mixing[order] * r / (total / count), np.nan)
    return out


def site_index(u_sorted: np.ndarray, inplane_spacing_nm: float) -> np.ndarray:
    """Lattice index of each site of one layer (sorted along it), from the layer's own spacing.

    Where ``round(u / inplane_spacing_nm)`` would drift by more than a quarter site over the layer
    (its own spacing, the median of its steps within 30 % of ``inplane_spacing_nm``, that far off),
    that spacing is refined with the origin by a least-squares line of ``u`` on the rounded indices; the index
    is ``round((u - origin) / spacing)``. It does not drift when the image-wide spacing is a few
    percent off (a void or a crack in the field put the Fourier estimate 4.4 % off, and
    ``round(u / d_t)`` flipped the two sublattices of a spinel Li layer halfway along it), a gap of
    missing sites keeps its count, and, unlike counting the steps one by one, a misplaced or extra
    site does not shift the index of every site after it. Where the image-wide spacing holds, the
    index is ``round((u - origin) / inplane_spacing_nm)`` about the layer's own offset
    (:func:`_layer_origin`): ``u`` counts from the image's origin, and sites half-way between two of its
    multiples would flip between neighbouring indices with a few pm of noise.
    """
    u = np.asarray(u_sorted, dtype=float)
    if u.size < 2:
        return np.zeros(u.size, dtype=np.int64)
    d = np.diff(u)
    near = d[(d > 0.7 * inplane_spacing_nm) & (d < 1.3 * inplane_spacing_nm)]
    spacing = float(np.median(near)) if near.size else float(inplane_spacing_nm)
    if abs(spacing / inplane_spacing_nm - 1.0) * np.ptp(u) / inplane_spacing_nm <= 0.25:
        # The image-wide spacing holds over the whole layer (drift under a quarter site): the
        # lattice index from the layer's own origin (a site off by half a spacing does not move the others).
        origin = _layer_origin(u, inplane_spacing_nm)
        return np.rint((u - origin) / inplane_spacing_nm).astype(np.int64)
    idx = np.rint((u - u[0]) / spacing)
    if np.ptp(idx) > 0:
        spacing, origin = np.polyfit(idx, u, 1)
        return np.rint((u - origin) / spacing).astype(np.int64)
    return idx.astype(np.int64)


def _cached_site_index() -> Any:
    """:func:`site_index` remembering its answers by the positions' bytes (one :func:`li_environment` call:
    a layer's sites are indexed for the sublattices and for each second-neighbour noise; read-only arrays)."""
    answers: dict[tuple[bytes, float], np.ndarray] = {}

    def index(u_sorted: np.ndarray, inplane_spacing_nm: float) -> np.ndarray:
        key = (np.asarray(u_sorted, dtype=float).tobytes(), float(inplane_spacing_nm))
        if key not in answers:
            answers[key] = site_index(u_sorted, inplane_spacing_nm)
        return answers[key]

    return index


def _layer_origin(u: np.ndarray, spacing_nm: float) -> float:
    """The layer's sites' offset (nm) from the multiples of ``spacing_nm``: their circular mean phase.

    ``u`` is measured from an origin of the image, not of the layer, so a layer's sites can sit
    anywhere between two multiples of the spacing. Rounding ``u / spacing`` is unstable where they
    sit half-way: random draw 4075 (NMC622, 1.7e3 e/A^2) read its spinel Li layer at 21.49, 22.51,
    23.49 ... spacings, so ``rint`` gave indices 21, 23, 23, 25 and every site of 2 nm the same
    sublattice; rounding about the layer's own offset puts each site half a spacing from the cut.
    """
    return circular_mean(np.asarray(u, dtype=float) / spacing_nm) * spacing_nm


def _site_noise(u: np.ndarray, layer: np.ndarray, m: np.ndarray, *, inplane_spacing_nm: float,
                index: Any = None) -> float:
    """Scatter of one site's mixing from second-neighbour differences along each layer.

    Second neighbours are sites two lattice steps apart (:func:`site_index` differing by 2), so
    a site missing from a layer (an undetected column, a void) does not pair a site with one of
    the other sublattice (``index``: :func:`site_index` or :func:`_cached_site_index`'s). The plain standard deviation (not a robust one) on purpose: it holds
    the shot noise and the column-to-column disorder of random mixing, both of which a spinel's
    sublattice order must stand out of.
    """
    diffs = []
    for k in np.unique(layer):
        sel = np.nonzero((layer == k) & np.isfinite(m))[0]
        if sel.size <= 2:
            continue
        order = np.argsort(u[sel], kind="stable")
        pos, vals = (index or site_index)(u[sel][order], inplane_spacing_nm), m[sel][order]
        j = np.searchsorted(pos, pos + 2)
        ok = j < pos.size
        ok[ok] = pos[j[ok]] == pos[ok] + 2
        diffs.append(vals[j[ok]] - vals[ok])
    if not diffs:
        return 0.0
    d = np.concatenate(diffs)
    return float(np.std(d) / np.sqrt(2.0)) if d.size else 0.0


def label_tm_columns(
    relation_up: np.ndarray, relation_down: np.ndarray, environment_below: np.ndarray,
    relation_up2: np.ndarray | None = None,
) -> np.ndarray:
    """Phase of each TM column from its stacking relations and the Li layer below it.

    Parameters
    ----------
    relation_up, relation_down : numpy.ndarray of str
        Relation to the TM layer above / below (:func:`classify_relations`; ``""`` when none).
    environment_below : numpy.ndarray of str
        Environment of the Li-layer site below the column (the one above where there is none
        below; ``""`` when neither exists).
    relation_up2 : numpy.ndarray of str, optional
        The relation one TM layer further up (above the TM column above). With it, the TM column
        below a single reversed step (a twin-like relation between two matrix relations: a
        single-layer twin-like domain) is O3' too.

    Returns
    -------
    numpy.ndarray of str
        One of :data:`PHASE_LABELS` per column.
    """
    up = np.asarray(relation_up)
    down = np.asarray(relation_down)
    env = np.asarray(environment_below)
    out = np.full(up.size, "O3", dtype="<U9")
    twin_up = (up == "O3'") | ((up == "") & (down == "O3'"))
    twin_down = (down == "O3'") | ((down == "") & (up == "O3'"))
    out[twin_up & twin_down] = "O3'"
    if relation_up2 is not None:
        out[_single_twin_step(up, down, np.asarray(relation_up2))] = "O3'"
    # O1 below; or the last TM layer of an O1 block whose exit gap holds one zero step (the
    # relation then reads twin-like, (0, +s)), see the module notes.
    o1 = (down == "O1") | ((down == "") & (up == "O1")) | ((up == "O1") & (down == "O3'"))
    out[o1] = "O1"
    special = np.isin(env, ("rock_salt", "spinel"))
    out[special] = env[special]
    return out


def _single_twin_step(up: np.ndarray, down: np.ndarray, up2: np.ndarray) -> np.ndarray:
    """A twin-like step ``up`` with no twin-like or O1 step above (``up2``) or below (``down``) it.

    Twin-like relations next to O1 are an O1 block's edge, not a twin (module notes).
    """
    return (up == "O3'") & ~np.isin(down, ("O3'", "O1", "")) & ~np.isin(up2, ("O3'", "O1"))


def label_li_sites(
    relation: np.ndarray,
    relation_above: np.ndarray,
    relation_below: np.ndarray,
    environment: np.ndarray,
    relation_above2: np.ndarray | None = None,
) -> np.ndarray:
    """Phase of each Li-layer site from the stacking around it and its own environment.

    Parameters
    ----------
    relation : numpy.ndarray of str
        Relation between the TM layers above and below the site.
    relation_above, relation_below : numpy.ndarray of str
        The next relations up (of the TM column above) and down (of the TM column below);
        ``""`` when the image ends.
    environment : numpy.ndarray of str
        The site's own environment (:func:`li_environment`).
    relation_above2 : numpy.ndarray of str, optional
        The relation two steps up. With it, the Li-layer site below the TM layer of a single
        reversed step (see :func:`label_tm_columns`) is O3' too.

    Returns
    -------
    numpy.ndarray of str
        One of :data:`PHASE_LABELS` per site.
    """
    rel = np.asarray(relation)
    above = np.asarray(relation_above)
    below = np.asarray(relation_below)
    env = np.asarray(environment)
    out = np.full(rel.size, "O3", dtype="<U9")
    twin = (rel == "O3'") & np.isin(above, ("O3'", "")) & np.isin(below, ("O3'", ""))
    out[twin] = "O3'"
    if relation_above2 is not None:
        out[_single_twin_step(above, rel, np.asarray(relation_above2))] = "O3'"
    # O1, or the first Li layer of an O1 block entered through a gap (+s, 0).
    out[(rel == "O1") | ((rel == "O3'") & (below == "O1"))] = "O1"
    special = np.isin(env, ("rock_salt", "spinel"))
    out[special] = env[special]
    return out


def li_site_steps(
    registry: np.ndarray, relation: np.ndarray, relation_above: np.ndarray, relation_below: np.ndarray,
    *, o3_step: float,
) -> np.ndarray:
    """Stacking step from the TM column above to the Li-layer site, in column spacings.

    A pure relation has two equal steps (O3: ``s_O3``, O3': ``-s_O3``, O1: 0). A twin-like
    relation next to matrix stacking holds the zero step of the twin's mirror plane: on the
    side of the matrix above it is ``(s_O3, 0)``, on the side of the matrix below ``(0, s_O3)``.
    An ``"off"`` relation (glide) takes half of its registry's double, ``wrap(2 r)``.

    Returns
    -------
    numpy.ndarray
        Step per site (column spacings).
    """
    r = np.asarray(registry, dtype=float)
    rel = np.asarray(relation)
    above = np.asarray(relation_above)
    below = np.asarray(relation_below)
    step = wrap_half(2.0 * r)
    step[rel == "O3"] = o3_step
    step[rel == "O1"] = 0.0
    twin = rel == "O3'"
    step[twin] = -o3_step
    # A twin-like relation next to another stacking holds one zero step: next to O1 the zero
    # step lies on the O1 side, next to the O3 matrix on the twin side.
    o1_below = twin & (below == "O1")
    o1_above = twin & (above == "O1") & ~o1_below
    matrix_above = twin & ~np.isin(above, ("O3'", "")) & ~o1_below & ~o1_above
    matrix_below = twin & ~np.isin(below, ("O3'", "")) & ~o1_below & ~o1_above & ~matrix_above
    step[o1_below | matrix_above] = o3_step
    step[o1_above | matrix_below] = 0.0
    return step


def spinel_tetrahedral_sites(
    u_nm: np.ndarray,
    v_nm: np.ndarray,
    step_nm: np.ndarray,
    tm_layer_distance_nm: np.ndarray,
    *,
    lower: np.ndarray,
) -> pd.DataFrame:
    """Projected tetrahedral cation columns of a spinel Li layer, from its empty octahedral sites.

    Geometry of :func:`layerscope.crystal.phases.build_sites` (Fd-3m, LiM2O4 on one close-packed
    O lattice): in a Li layer (the gap between O layers at stacking positions ``q_top`` above and
    ``q_bottom`` below, octahedral sites at the third position ``p``) the 8a tetrahedral Li sit
    above an O of the lower layer, a quarter of the gap below the upper O layer (in-plane position
    ``q_bottom``), and below an O of the upper layer, a quarter of the gap above the lower O layer
    (``q_top``). Each shares its base face with the empty kagome octahedron of the TM layer it
    faces, so in the [100] and [110] views it lies in line with a (half-empty) column of that TM
    layer. In projection this puts, for every *empty* octahedral site of the Li layer (the dark
    sublattice of the 2 x d_t order), one tetrahedral column one stacking step before the site
    (``u - step``: under the TM column above it) and one a step after it (``u + step``: over a
    column of the TM layer below), a quarter of the cation-layer spacing above and below the site.
    With the ideal (u = 3/8) oxygen lattice every O-O gap is equal, so a quarter of the
    cation-layer spacing is one eighth of the distance between the two TM layers.

    Parameters
    ----------
    u_nm, v_nm : numpy.ndarray
        Position of each empty octahedral site along / across the layers, nm.
    step_nm : numpy.ndarray
        Stacking step from the TM layer above to the site along ``u`` (``s d_t``, see
        :func:`li_site_steps`), nm.
    tm_layer_distance_nm : numpy.ndarray
        Distance along the normal between the TM layers above and below each site, nm.
    lower : numpy.ndarray of bool
        Whether the TM layer below belongs to the spinel (then the lower tetrahedron exists;
        at the block's lower edge its octahedron would be a filled TM site of the layered phase
        and :mod:`layerscope.crystal` leaves it out).

    Returns
    -------
    pandas.DataFrame
        ``source`` (index of the octahedral site), ``u_nm``, ``v_nm`` and ``position``
        (``"upper"`` or ``"lower"``); upper sites first.

    References
    ----------
    - R. J. Hill, J. R. Craig, G. V. Gibbs, Phys. Chem. Minerals 4, 317 (1979): the spinel
      structure (8a tetrahedral, 16c/16d octahedral sites along [111]).
    - R. J. Gummow, M. M. Thackeray, W. I. F. David, S. Hull, Mater. Res. Bull. 27, 327 (1992):
      LT-LiCoO2 / LiCo2O4 spinel.
    """
    u = np.asarray(u_nm, dtype=float)
    v = np.asarray(v_nm, dtype=float)
    step = np.asarray(step_nm, dtype=float)
    quarter = np.asarray(tm_layer_distance_nm, dtype=float) / 8.0
    low = np.nonzero(np.asarray(lower, dtype=bool))[0]
    return pd.DataFrame({
        "source": np.concatenate([np.arange(u.size), low]),
        "u_nm": np.concatenate([u - step, u[low] + step[low]]),
        "v_nm": np.concatenate([v - quarter, v[low] + quarter[low]]),
        "position": np.array(["upper"] * u.size + ["lower"] * low.size, dtype="<U5"),
    })
