"""Cathode compositions and the assignment of chemical species to crystal sites.

A layered oxide ``Li[M]O2`` has two kinds of cation site: the transition-metal (TM) layer, whose
occupancy is the composition's ``M`` (for the Li-rich oxide ``Li[Li0.2Ni0.2Mn0.6]O2`` that layer
also holds Li), and the Li layer, which holds Li at a chosen ``li_fraction`` (delithiation leaves
vacancies). This module names the accepted compositions and turns fractional occupancies into
whole atoms on a finite set of sites:

* counts are rounded by the largest-remainder (Hamilton) method, so they add up to the number of
  sites exactly and each differs from ``fraction * n_sites`` by less than one atom;
* ``order="random"`` places them by a seeded random permutation (a random alloy),
  ``order="ordered"`` places them deterministically and evenly spread along the site order (each
  minority species on every ``1/fraction``-th site, a Bresenham-type low-discrepancy sequence; it is
  a reproducible, uniform decoration, not a known experimental superstructure);
* the Li content must be representable exactly: :func:`li_count` raises
  :class:`~layerscope.errors.InputError` with the nearest achievable fractions otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from layerscope.errors import InputError

__all__ = [
    "Composition",
    "COMPOSITIONS",
    "ALIASES",
    "TM_TOLERANCE",
    "get_composition",
    "species_counts",
    "assign_species",
    "li_count",
]

#: Largest accepted difference between the realised and requested fraction of any species on a
#: group of TM sites (absolute, per site). Finite cells can only hold whole atoms; a larger error
#: means the cell is too small for the composition and the builder asks for a larger one.
TM_TOLERANCE = 0.02


@dataclass(frozen=True)
class Composition:
    """A layered-oxide composition ``Li[tm]O2``.

    Parameters
    ----------
    name : str
        Canonical formula, e.g. ``"LiNi0.8Mn0.1Co0.1O2"``.
    tm : dict of str to float
        Occupancy of a transition-metal-layer site by element (fractions summing to 1); may
        contain ``"Li"`` for Li-rich compositions.
    honeycomb : tuple of two dicts, optional
        For the C2/m (Li2MnO3-type) ordering: the occupancy of the honeycomb-centre sites
        (Wyckoff 2b, one TM-layer site in three) and of the honeycomb sites (4g, two in three).
        Their mean equals ``tm``. ``None`` when the composition has no honeycomb ordering.
    """

    name: str
    tm: Mapping[str, float]
    honeycomb: tuple[Mapping[str, float], Mapping[str, float]] | None = field(default=None)

    @property
    def tm_elements(self) -> list[str]:
        """Elements on TM-layer sites other than Li (the ones that can mix into the Li layer)."""
        return [el for el in self.tm if el != "Li"]


def _c(name: str, tm: dict[str, float], honeycomb=None) -> Composition:
    return Composition(name=name, tm=dict(tm), honeycomb=honeycomb)


#: The compositions the builders accept, by canonical formula.
COMPOSITIONS: dict[str, Composition] = {
    c.name: c
    for c in (
        _c("LiCoO2", {"Co": 1.0}),
        _c("LiNi0.8Mn0.1Co0.1O2", {"Ni": 0.8, "Mn": 0.1, "Co": 0.1}),
        _c("LiNi0.6Co0.2Mn0.2O2", {"Ni": 0.6, "Co": 0.2, "Mn": 0.2}),
        # NCM111, written Li3NiCoMnO6 per three formula units in DFT studies
        _c("LiNi1/3Co1/3Mn1/3O2", {"Ni": 1 / 3, "Co": 1 / 3, "Mn": 1 / 3}),
        # Li[Li0.2Ni0.2Mn0.6]O2. In the C2/m honeycomb model the 2b site (1/3 of the TM layer)
        # takes the 0.2 Li and 0.133 of Ni, the 4g sites take the 0.6 Mn and the remaining
        # 0.067 Ni: 2b = Li0.6Ni0.4, 4g = Mn0.9Ni0.1 (mean Li0.2Ni0.2Mn0.6).
        _c(
            "Li1.2Ni0.2Mn0.6O2",
            {"Li": 0.2, "Ni": 0.2, "Mn": 0.6},
            honeycomb=({"Li": 0.6, "Ni": 0.4}, {"Mn": 0.9, "Ni": 0.1}),
        ),
        # Li2MnO3 = Li[Li1/3Mn2/3]O2, the ordered end member of the Li-rich family.
        _c("Li2MnO3", {"Li": 1 / 3, "Mn": 2 / 3}, honeycomb=({"Li": 1.0}, {"Mn": 1.0})),
    )
}

#: Short names accepted in place of the canonical formula.
ALIASES: dict[str, str] = {
    "LCO": "LiCoO2",
    "NMC811": "LiNi0.8Mn0.1Co0.1O2",
    "NCM811": "LiNi0.8Mn0.1Co0.1O2",
    "LiNi0.8Co0.1Mn0.1O2": "LiNi0.8Mn0.1Co0.1O2",
    "NMC622": "LiNi0.6Co0.2Mn0.2O2",
    "NCM622": "LiNi0.6Co0.2Mn0.2O2",
    "LiNi0.6Mn0.2Co0.2O2": "LiNi0.6Co0.2Mn0.2O2",
    "NMC111": "LiNi1/3Co1/3Mn1/3O2",
    "NCM111": "LiNi1/3Co1/3Mn1/3O2",
    "NMC333": "LiNi1/3Co1/3Mn1/3O2",
    "Li3NiCoMnO6": "LiNi1/3Co1/3Mn1/3O2",
    "LiNi1/3Mn1/3Co1/3O2": "LiNi1/3Co1/3Mn1/3O2",
    "Li-rich": "Li1.2Ni0.2Mn0.6O2",
    "LLO": "Li1.2Ni0.2Mn0.6O2",
    "Li[Li0.2Ni0.2Mn0.6]O2": "Li1.2Ni0.2Mn0.6O2",
}


def get_composition(name: str) -> Composition:
    """Return the :class:`Composition` for a formula or alias.

    Raises
    ------
    InputError
        If the name is not known; the message lists the accepted names.
    """
    key = ALIASES.get(name, name)
    if key not in COMPOSITIONS:
        accepted = ", ".join(list(COMPOSITIONS) + list(ALIASES))
        raise InputError(f"composition {name!r} is not known; use one of: {accepted}")
    return COMPOSITIONS[key]


def species_counts(fractions: Mapping[str, float], n_sites: int) -> dict[str, int]:
    """Whole-atom counts for ``fractions`` on ``n_sites`` sites (largest-remainder rounding).

    Parameters
    ----------
    fractions : mapping of str to float
        Site fractions by element; they must sum to 1 (a vacancy is written ``"X"``).
    n_sites : int
        Number of sites.

    Returns
    -------
    dict of str to int
        Counts summing to ``n_sites``; each is ``floor(f * n)`` or ``ceil(f * n)``.

    Notes
    -----
    Hamilton's largest-remainder apportionment (e.g. Balinski & Young, *Fair Representation*,
    2nd ed., Brookings 2001). Ties break by the order of ``fractions``, so it is deterministic.
    """
    names = list(fractions)
    f = np.array([fractions[k] for k in names], dtype=float)
    if np.any(f < 0) or not np.isclose(f.sum(), 1.0, atol=1e-9):
        raise InputError(
            f"site fractions {dict(fractions)} must be non-negative and sum to 1; fix the occupancy"
        )
    exact = f * n_sites
    counts = np.floor(exact + 1e-9).astype(int)
    remainder = exact - counts
    short = n_sites - counts.sum()
    order = np.argsort(-remainder, kind="stable")
    counts[order[:short]] += 1
    return {k: int(c) for k, c in zip(names, counts)}


def assign_species(
    fractions: Mapping[str, float],
    n_sites: int,
    *,
    order: str,
    rng: np.random.Generator,
    tolerance: float | None = TM_TOLERANCE,
    what: str = "TM sites",
) -> np.ndarray:
    """Element symbols for ``n_sites`` sites with the requested fractions.

    Parameters
    ----------
    fractions : mapping of str to float
        Site fractions by element (sum 1).
    n_sites : int
        Number of sites, in the order the caller will use them.
    order : {"random", "ordered"}
        ``"random"``: a seeded random permutation; ``"ordered"``: evenly spread along the site
        order (low-discrepancy sequence, deterministic).
    rng : numpy.random.Generator
        Random generator (used only for ``"random"``).
    tolerance : float or None
        Largest accepted abs(realised - requested) fraction of any species; ``None`` skips the check.
    what : str
        Name of the site group for the error message.

    Returns
    -------
    numpy.ndarray of str
        ``n_sites`` symbols.

    Raises
    ------
    InputError
        If ``order`` is unknown, or if the group is too small to hold the composition within
        ``tolerance``.
    """
    if order not in ("random", "ordered"):
        raise InputError(f"tm_order={order!r} is not known; use 'random' or 'ordered'")
    if n_sites == 0:
        return np.array([], dtype="<U2")
    counts = species_counts(fractions, n_sites)
    if tolerance is not None:
        worst = max(abs(counts[k] / n_sites - fractions[k]) for k in counts)
        if worst > tolerance:
            need = _denominator(fractions)
            raise InputError(
                f"{what}: {n_sites} sites cannot hold {dict(fractions)} within {tolerance} per "
                f"species (worst error {worst:.3f}); use a larger cell (a multiple of {need} "
                f"sites is exact)"
            )
    names = list(counts)
    if order == "random":
        symbols = np.concatenate([np.full(counts[k], k, dtype="<U2") for k in names])
        return symbols[rng.permutation(n_sites)]
    # Evenly spread: species k (of K) wants the positions (m + (k + 1/2)/K) n / c_k, m < c_k;
    # sorting all wanted positions gives each site one species, each evenly spaced, and the
    # staggered phases keep minority species of equal fraction apart (exact counts).
    K = len(names)
    wanted = np.concatenate([(np.arange(counts[k]) + (i + 0.5) / K) * n_sites / counts[k]
                             for i, k in enumerate(names)])
    owner = np.concatenate([np.full(counts[k], i) for i, k in enumerate(names)])
    order_ = np.lexsort((owner, wanted))
    return np.array(names, dtype="<U2")[owner[order_]]


def _denominator(fractions: Mapping[str, float], max_den: int = 1000) -> int:
    """Smallest number of sites on which every fraction is a whole number of atoms."""
    from fractions import Fraction
    from math import lcm

    den = 1
    for f in fractions.values():
        den = lcm(den, Fraction(f).limit_denominator(max_den).denominator)
    return den


def li_count(li_fraction: float, n_sites: int, *, what: str = "Li-layer sites") -> int:
    """Number of Li atoms for ``li_fraction`` of ``n_sites`` Li sites, which must be whole.

    Raises
    ------
    InputError
        If ``li_fraction`` is outside [0, 1] or ``li_fraction * n_sites`` is not an integer; the
        message states the nearest achievable fractions in this cell.
    """
    if not (0.0 <= li_fraction <= 1.0) or not np.isfinite(li_fraction):
        raise InputError(f"li_fraction={li_fraction} must lie in [0, 1]")
    exact = li_fraction * n_sites
    n = int(round(exact))
    if abs(exact - n) > 1e-6:
        lo, hi = np.floor(exact) / n_sites, np.ceil(exact) / n_sites
        raise InputError(
            f"li_fraction={li_fraction} is not achievable on the {n_sites} {what} of this cell "
            f"({exact:.3f} Li atoms); the nearest achievable fractions are {lo:.6g} and "
            f"{hi:.6g} (or change the cell size)"
        )
    return n

