"""Crystal phases of layered-oxide cathodes, built on one close-packed oxygen framework.

Every phase here is a close-packed O lattice with cations in its octahedral (and, for spinel,
tetrahedral) holes, so one engine builds them all (and any stack of them, see
:mod:`layerscope.crystal.scenes`):

* the O layers sit at the stacking positions A, B, C of a triangular lattice of parameter ``a``
  (in-plane position index ``q`` = 0, 1, 2; position ``q`` is shifted by ``q * t`` with
  ``t = (2/3) a1 + (1/3) a2``);
* cation layer ``k`` fills the octahedral holes between O layers ``k`` (above) and ``k + 1``
  (below), which sit at the third position ``p = -(q_k + q_{k+1}) mod 3``;
* the phase sets the O stacking step ``q_{k+1} - q_k`` and which holes are filled:

  ========== ================ ===================================================================
  phase      O step per layer cations
  ========== ================ ===================================================================
  O3         +1 (ABC)         Li and TM layers alternate (R-3m); cation rows step +1/3 per layer
  O3'        -1 (CBA)         the twin of O3 (same R-3m crystal rotated 180 deg about c); -1/3
  O1         +1, -1 (ABAB)    P-3m1; cations of all layers on one position (step 0)
  rock_salt  +1 (ABC)         every octahedral site filled, Li and TM disordered (Fm-3m)
  spinel     +1 (ABC)         2x2 in-plane order: TM layer 3/4 TM (kagome), Li layer 1/4 TM plus
                              Li on 2/4 tetrahedral sites (Fd-3m, LiM2O4)
  C2/m       +1 (ABC)         sqrt3 x sqrt3 honeycomb order in the TM layer (Li2MnO3 type)
  ========== ================ ===================================================================

  (The "+1/3 per layer" is the shift of a cation row along x in the [100] view, in units of the
  column spacing ``a*sqrt(3)/2``, going down the image; see :func:`oriented`.)

* cation layers alternate TM and Li; layer 0 is a TM layer.

Geometry: each cation sits midway between its two O layers (inversion centre); the O-O gap across
a TM layer (``gap_tm``) and across a Li layer (``gap_li``) come from the refined structures below,
so the TM-O and Li-O bonds are right. For LiCoO2 (R-3m, Li 3a, Co 3b, O 6c with z = 0.2396):
``gap_tm = 2 (z - 1/6) c`` gives Co-O = 1.92 A and Li-O = 2.09 A. The layer spacing is
``(gap_tm + gap_li) / 2`` (c/6 for O3).

Lattice parameters and sources (Angstrom):

* O3 LiCoO2: a = 2.816, c = 14.05, z(O) = 0.2396 -- Akimoto, Gotoh, Oosawa, J. Solid State Chem.
  141, 298 (1998) (a = 2.8156, c = 14.0542, z = 0.23951).
* O3 LiNi0.8Mn0.1Co0.1O2: a = 2.872, c = 14.20; LiNi0.6Co0.2Mn0.2O2: a = 2.868, c = 14.22 --
  Noh, Youn, Yoon, Sun, J. Power Sources 233, 121 (2013); z(O) = 0.241, the usual refined value
  for Ni-rich NMC (0.240-0.242), which gives TM-O 1.97 A and Li-O 2.11 A.
* O3 LiNi1/3Co1/3Mn1/3O2 (NCM111, Li3NiCoMnO6): a = 2.862, c = 14.23, z(O) = 0.241 -- rounded
  values typical of published refinements (e.g. Yabuuchi & Ohzuku, J. Power Sources 119-121, 171
  (2003)); reports scatter by about 0.005 A in a and 0.02 A in c.
* Li1.2Ni0.2Mn0.6O2 and Li2MnO3 (C2/m): a = 4.93, b = 8.53, c = 5.03, beta = 109.3 deg (close to
  Strobel & Lambert-Andron, J. Solid State Chem. 75, 90 (1988), Li2MnO3: 4.937, 8.532, 5.030,
  109.46 deg). Idealised on the hexagonal metric: ``a_hex = (a/sqrt3 + b/3)/2 = 2.845``, layer
  spacing ``c sin(beta)/2 = 2.373``; the same values serve its R-3m-like layered description.
* O1: c = 4.29 per TM layer (CoO2, Amatucci, Tarascon, Klein, J. Electrochem. Soc. 143, 1114
  (1996)), i.e. layer spacing 2.145; in-plane a and gap_tm of the composition's O3 phase (the
  MO6 octahedron is kept; assumption for compositions other than LiCoO2).
* rock salt: CoO a_cubic = 4.2615 (for LiCoO2; ICDD PDF 48-1719), NiO a_cubic = 4.177 (for the
  Ni/Mn compositions; ICDD PDF 47-1049). Hexagonal setting: ``a = a_c/sqrt2``, layer spacing
  ``a_c/sqrt3``, O midway.
* spinel: LT-LiCoO2 / LiCo2O4 a_cubic = 7.99 (Gummow, Thackeray, David, Hull, Mater. Res. Bull.
  27, 327 (1992)); LiNi0.5Mn1.5O4-like a_cubic = 8.17 for NMC; LiMn2O4 a_cubic = 8.245 (ICDD PDF
  35-0782) for the Li-rich oxides. Hexagonal setting ``a = a_c/(2 sqrt2)`` per primitive O-O
  distance, layer spacing ``a_c/(2 sqrt3)``, ideal (u = 3/8) positions.

Positions are ideal (no internal relaxation beyond z(O)); in a composite every block takes the
matrix's in-plane ``a`` (coherent) and keeps its own gaps.

Public API
----------
:func:`bulk`
    The conventional hexagonal-setting cell of one phase and composition.
:func:`oriented`
    Re-cut a bulk cell into an orthogonal supercell for a zone axis (beam along +z, stacking
    along +y, image rows going down).
:func:`lattice`
    The lattice parameters used for a phase and composition.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from ase import Atoms

from layerscope.crystal import labels as _labels
from layerscope.crystal.composition import (
    Composition,
    assign_species,
    get_composition,
    li_count,
)
from layerscope.errors import InputError
from layerscope.provenance import Provenance

__all__ = [
    "PHASES",
    "ZONES",
    "Lattice",
    "lattice",
    "bulk",
    "oriented",
    "stacking_positions",
    "record_step",
]

PHASES = _labels.PHASES
#: Zone axes of the hexagonal cell that :func:`oriented` and the scenes support.
ZONES: tuple[str, ...] = ("100", "110")

_SQRT2, _SQRT3 = np.sqrt(2.0), np.sqrt(3.0)


@dataclass(frozen=True)
class Lattice:
    """Lattice parameters of one phase of one composition (lengths in Angstrom).

    Attributes
    ----------
    a_A : float
        In-plane O-O (= cation-cation) distance of the triangular lattice.
    gap_tm_A, gap_li_A : float
        O-O distance along the stacking direction across a TM layer and across a Li layer.
    source : str
        Where the numbers come from.
    """

    a_A: float
    gap_tm_A: float
    gap_li_A: float
    source: str

    @property
    def layer_spacing_A(self) -> float:
        """Mean distance between successive cation layers (c/6 for O3)."""
        return 0.5 * (self.gap_tm_A + self.gap_li_A)


# O3 reference data: (a, c, z(O), source) per composition.
_O3 = {
    "LiCoO2": (2.816, 14.05, 0.2396, "Akimoto et al., J. Solid State Chem. 141, 298 (1998)"),
    "LiNi0.8Mn0.1Co0.1O2": (2.872, 14.20, 0.241, "Noh et al., J. Power Sources 233, 121 (2013)"),
    "LiNi0.6Co0.2Mn0.2O2": (2.868, 14.22, 0.241, "Noh et al., J. Power Sources 233, 121 (2013)"),
    "LiNi1/3Co1/3Mn1/3O2": (2.862, 14.23, 0.241, "typical refined NCM111 values, e.g. Yabuuchi & Ohzuku, "
                            "J. Power Sources 119-121, 171 (2003)"),
}
_C2M_A, _C2M_B, _C2M_C, _C2M_BETA = 4.93, 8.53, 5.03, np.deg2rad(109.3)
_LIRICH_SOURCE = "C2/m a=4.93, b=8.53, c=5.03 A, beta=109.3 deg (cf. Strobel & Lambert-Andron 1988)"
for _name in ("Li1.2Ni0.2Mn0.6O2", "Li2MnO3"):
    _O3[_name] = (
        0.5 * (_C2M_A / _SQRT3 + _C2M_B / 3.0),
        3.0 * _C2M_C * np.sin(_C2M_BETA),
        0.241,
        _LIRICH_SOURCE,
    )
_ROCK_SALT = {"LiCoO2": (4.2615, "CoO, ICDD PDF 48-1719")}
_ROCK_SALT_DEFAULT = (4.177, "NiO, ICDD PDF 47-1049")
_SPINEL = {
    "LiCoO2": (7.99, "LiCo2O4 / LT-LiCoO2, Gummow et al., Mater. Res. Bull. 27, 327 (1992)"),
    "Li1.2Ni0.2Mn0.6O2": (8.245, "LiMn2O4, ICDD PDF 35-0782"),
    "Li2MnO3": (8.245, "LiMn2O4, ICDD PDF 35-0782"),
}
_SPINEL_DEFAULT = (8.17, "LiNi0.5Mn1.5O4-like spinel")
_O1_C_PER_TM_LAYER = 4.29  # CoO2, Amatucci et al. 1996


def lattice(phase: str, composition: str | Composition) -> Lattice:
    """Lattice parameters used for ``phase`` of ``composition``.

    Parameters
    ----------
    phase : str
        One of :data:`PHASES`.
    composition : str or Composition
        A composition name (see :mod:`layerscope.crystal.composition`).

    Returns
    -------
    Lattice
    """
    comp = composition if isinstance(composition, Composition) else get_composition(composition)
    _check_phase(phase, comp)
    a, c, z, src = _O3[comp.name]
    gap_tm = 2.0 * (z - 1.0 / 6.0) * c
    if phase in ("O3", "O3'", "C2/m"):
        return Lattice(a, gap_tm, c / 3.0 - gap_tm, src)
    if phase == "O1":
        return Lattice(
            a, gap_tm, _O1_C_PER_TM_LAYER - gap_tm,
            f"O1 c = 4.29 A per TM layer (CoO2, Amatucci et al. 1996); a, gap_tm from {src}",
        )
    if phase == "rock_salt":
        ac, src = _ROCK_SALT.get(comp.name, _ROCK_SALT_DEFAULT)
        d = ac / _SQRT3
        return Lattice(ac / _SQRT2, d, d, src)
    ac, src = _SPINEL.get(comp.name, _SPINEL_DEFAULT)  # spinel
    d = ac / (2.0 * _SQRT3)
    return Lattice(ac / (2.0 * _SQRT2), d, d, src)


def _check_phase(phase: str, comp: Composition) -> None:
    if phase not in PHASES:
        raise InputError(f"phase {phase!r} is not known; use one of: {', '.join(PHASES)}")
    if phase == "C2/m" and comp.honeycomb is None:
        raise InputError(
            f"phase 'C2/m' needs a honeycomb-ordered Li-rich composition, not {comp.name!r}; "
            "use 'Li1.2Ni0.2Mn0.6O2' or 'Li2MnO3'"
        )


# --------------------------------------------------------------------------------------------
# Stacking
# --------------------------------------------------------------------------------------------

#: Number of cation layers in one period of each phase (stacking and Li/TM alternation).
PERIOD_LAYERS = {"O3": 6, "O3'": 6, "O1": 2, "rock_salt": 6, "spinel": 6, "C2/m": 6}
#: In-plane superstructure (rows: cell vectors in units of the primitive a1, a2).
BASE_CELL = {
    "O3": ((1, 0), (0, 1)),
    "O3'": ((1, 0), (0, 1)),
    "O1": ((1, 0), (0, 1)),
    "rock_salt": ((1, 0), (0, 1)),
    "spinel": ((2, 0), (0, 2)),
    "C2/m": ((2, 1), (-1, 1)),
}


def o_steps(phase: str, n_layers: int, *, previous_step: int | None = None) -> list[int]:
    """O stacking steps ``q_{k+1} - q_k`` for ``n_layers`` cation layers of ``phase``.

    O1 (ABAB) alternates; its first step repeats ``previous_step`` (+1 when the block starts the
    stack), which keeps the entry interface sharp: the block's first layer is shifted from the
    layer above it and all its layers share one stacking position.

    Notes
    -----
    With octahedral cations in a close-packed O framework, cation rows can only reverse their
    stepping through a layer pair on the same position (face-sharing octahedra). Hence an O1
    block between two O3 blocks is sharp at both interfaces only for an odd number of layers;
    with an even number the first layer of the next block also sits on the O1 position. A
    single O3' layer in O3 shows two zero steps, a double one ``0, -1/3, 0``.
    """
    if phase == "O3'":
        return [-1] * n_layers
    if phase == "O1":
        first = previous_step if previous_step is not None else 1
        return [first if k % 2 == 0 else -first for k in range(n_layers)]
    return [1] * n_layers


def stacking_positions(q0: int, steps: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """O-layer positions ``q`` (length n+1) and cation positions ``p`` (length n), mod 3."""
    q = (q0 + np.concatenate([[0], np.cumsum(steps)])) % 3
    p = (-(q[:-1] + q[1:])) % 3
    return q.astype(int), p.astype(int)


# --------------------------------------------------------------------------------------------
# The engine: layer plan -> sites -> decorated atoms
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """Where the in-plane lattice and the stacking direction point in Cartesian space.

    Attributes
    ----------
    e1, e2 : ndarray (3,)
        Primitive in-plane vectors (Angstrom).
    normal : ndarray (3,)
        Unit stacking direction.
    box : ndarray (2, 2) of int
        In-plane periodic cell; rows in units of (e1, e2).
    stack_axis : int
        Index of the stacking vector among the cell vectors (2 for the hexagonal cell, 1 for an
        oriented cell, whose cell is (x, y = stacking, z = beam)).
    """

    e1: np.ndarray
    e2: np.ndarray
    normal: np.ndarray
    box: np.ndarray
    stack_axis: int

    def cell(self, length_A: float) -> np.ndarray:
        """Cell vectors (rows) for a stack of total length ``length_A``."""
        basis = np.array([self.e1, self.e2])
        inplane = self.box @ basis
        rows = [inplane[0], inplane[1]]
        rows.insert(self.stack_axis, self.normal * length_A)
        return np.array(rows)


def hexagonal_frame(a_A: float, box) -> Frame:
    """Frame of the conventional hexagonal setting: a1 along x, c along z."""
    return Frame(
        e1=a_A * np.array([1.0, 0.0, 0.0]),
        e2=a_A * np.array([-0.5, _SQRT3 / 2.0, 0.0]),
        normal=np.array([0.0, 0.0, 1.0]),
        box=np.asarray(box, dtype=int),
        stack_axis=2,
    )


def zone_frame(a_A: float, zone: str, nx: int, nz: int) -> Frame:
    """Frame of an oriented cell: x in-plane, y = stacking (down the image), z = beam.

    Zone "100": beam along a1, x along a1 + 2 a2 (``ase.build.cut(at, a=(1,2,0), b=(0,0,1),
    c=(1,0,0))``). Zone "110": beam along a1 + a2, x along -a1 + a2. Both x periods are
    ``a*sqrt(3)``, both z periods ``a``; ``nx``, ``nz`` count them.
    """
    h = a_A * _SQRT3 / 2.0
    if zone == "100":
        e1, e2 = np.array([0.0, 0.0, a_A]), np.array([h, 0.0, -a_A / 2.0])
        box = ((nx, 2 * nx), (nz, 0))
    elif zone == "110":
        e1, e2 = np.array([-h, 0.0, a_A / 2.0]), np.array([h, 0.0, a_A / 2.0])
        box = ((-nx, nx), (nz, nz))
    else:
        raise InputError(f"zone {zone!r} is not supported; use one of: {', '.join(ZONES)}")
    return Frame(e1, e2, np.array([0.0, 1.0, 0.0]), np.asarray(box, dtype=int), stack_axis=1)


def _lattice_points(box: np.ndarray) -> np.ndarray:
    """Integer points (i, j) representing the primitive lattice modulo the box lattice."""
    corners = np.array([[0, 0], box[0], box[1], box[0] + box[1]])
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    i, j = np.meshgrid(np.arange(lo[0], hi[0] + 1), np.arange(lo[1], hi[1] + 1), indexing="ij")
    ij = np.stack([i.ravel(), j.ravel()], axis=1)
    s = ij @ np.linalg.inv(box.astype(float))
    keep = np.all((s > -1e-9) & (s < 1 - 1e-9), axis=1)
    out = ij[keep]
    if len(out) != abs(round(np.linalg.det(box))):
        raise RuntimeError("lattice point enumeration failed")  # cannot happen for integer boxes
    return out


@dataclass
class LayerPlan:
    """One cation layer (its gap) of a stack; the O layer at the top of the gap comes with it."""

    phase: str
    block: int
    parity: str  # "TM" or "Li"
    q_top: int
    q_bottom: int
    p: int
    gap_A: float
    y_top_A: float


def plan_layers(blocks, comp: Composition, a_A: float) -> list[LayerPlan]:
    """Lay out the cation layers of a sequence of ``(phase, n_layers)`` blocks.

    Layer 0 is a TM layer and its top O layer sits at y = 0 on position q = 0; each block
    continues the O stacking of the one above (coherent interface).
    """
    plans: list[LayerPlan] = []
    q, y, prev_step, k = 0, 0.0, None, 0
    for b, (phase, n) in enumerate(blocks):
        lat = lattice(phase, comp)
        steps = o_steps(phase, n, previous_step=prev_step)
        qs, ps = stacking_positions(q, steps)
        for m in range(n):
            parity = "TM" if k % 2 == 0 else "Li"
            gap = lat.gap_tm_A if parity == "TM" else lat.gap_li_A
            plans.append(LayerPlan(phase, b, parity, int(qs[m]), int(qs[m + 1]), int(ps[m]), gap, y))
            y += gap
            k += 1
        q, prev_step = int(qs[-1]), steps[-1]
    return plans


def _frac(ij: np.ndarray, family: int) -> np.ndarray:
    """Fractional in-plane coordinates (units of e1, e2) of lattice points shifted to a position."""
    return ij + np.array([2.0, 1.0]) * family / 3.0


def _class2(ij: np.ndarray) -> np.ndarray:
    """2x2 superlattice class 0..3 of lattice points."""
    return (ij[:, 0] % 2) * 2 + (ij[:, 1] % 2)


def _point_class2(R: tuple[int, int]) -> int:
    """2x2 class of a point given by R = 3 * fractional coordinates."""
    f = R[1] % 3
    i, j = (R[0] - 2 * f) // 3, (R[1] - f) // 3
    return (i % 2) * 2 + (j % 2)


def _neighbour_classes(R: tuple[int, int], family: int) -> set[int]:
    """2x2 classes of the three lattice points of ``family`` nearest to hollow point R."""
    delta = (R[1] % 3 - family) % 3
    offs = ((-2, -1), (1, -1), (1, 2)) if delta == 1 else ((-1, -2), (-1, 1), (2, 1))
    return {_point_class2((R[0] + du, R[1] + dv)) for du, dv in offs}


def _R_of_class(cls: int, family: int) -> tuple[int, int]:
    i, j = cls // 2, cls % 2
    return (3 * i + 2 * family, 3 * j + family)


def build_sites(
    plans: list[LayerPlan], frame: Frame, *, periodic: bool
) -> dict[str, np.ndarray]:
    """All sites of a layer plan in ``frame``.

    ``periodic``: the stack repeats along the stacking direction (bulk cells), so the first and
    last layers are neighbours. A spinel tetrahedral site is made only where the octahedron it
    shares a face with (in the next gap up or down) is an empty kagome site of the same spinel
    block; at a block boundary or the end of a non-periodic stack it is left out (a Li there
    would sit 1.6 A from a TM).

    Returns a dict of per-site arrays: ``positions`` (N, 3) Angstrom, ``layer``, ``block``,
    ``phase``, ``site`` ("TM"/"Li"/"O") and ``group`` (occupancy group within the block:
    "O", "tm", "li", "tm_on_li" (spinel 1/4 TM of the Li layer), "honeycomb", "honeycomb_mn").
    """
    ij = _lattice_points(frame.box)
    inv_box = np.linalg.inv(frame.box.astype(float))
    basis = np.array([frame.e1, frame.e2])
    out = {k: [] for k in ("positions", "layer", "block", "phase", "site", "group")}
    spinel_next_vacancy: tuple[int, int] | None = None
    spinel_last_vacancy: tuple[int, int] | None = None
    prev_block = -1

    def add(pts: np.ndarray, family: int, y: float, k: int, pl: LayerPlan, site: str, group: str):
        frac = _frac(pts, family)
        s = (frac @ inv_box) % 1.0
        s[np.isclose(s, 1.0, atol=1e-9)] = 0.0
        xyz = (s @ frame.box) @ basis + y * frame.normal
        out["positions"].append(xyz)
        n = len(pts)
        out["layer"].append(np.full(n, k))
        out["block"].append(np.full(n, pl.block))
        out["phase"].append(np.full(n, pl.phase, dtype="<U9"))
        out["site"].append(np.full(n, site, dtype="<U2"))
        out["group"].append(np.full(n, group, dtype="<U12"))

    def same_block(k: int, other: int) -> bool:
        if 0 <= other < len(plans):
            return plans[other].block == plans[k].block
        return periodic and plans[other % len(plans)].block == plans[k].block

    for k, pl in enumerate(plans):
        if pl.block != prev_block:
            spinel_next_vacancy = spinel_last_vacancy = None
            prev_block = pl.block
        add(ij, pl.q_top, pl.y_top_A, k, pl, "O", "O")
        y_mid = pl.y_top_A + pl.gap_A / 2.0
        if pl.phase in ("O3", "O3'", "O1", "rock_salt"):
            add(ij, pl.p, y_mid, k, pl, pl.parity, "tm" if pl.parity == "TM" else "li")
        elif pl.phase == "C2/m":
            if pl.parity == "TM":
                centre = (ij[:, 0] + ij[:, 1]) % 3 == 0
                add(ij[centre], pl.p, y_mid, k, pl, "TM", "honeycomb")
                add(ij[~centre], pl.p, y_mid, k, pl, "TM", "honeycomb_mn")
            else:
                add(ij, pl.p, y_mid, k, pl, "Li", "li")
        else:
            # spinel, 2x2 order from the Fd-3m connectivity: a tetrahedral Li shares its base face
            # only with the empty (16c) kagome octahedron of the next gap, and the Li-layer TM is
            # the one octahedral site sharing a face with neither tetrahedron (spglib: Fd-3m)
            cls = _class2(ij)
            if pl.parity == "TM":
                vac = spinel_next_vacancy or _R_of_class(0, pl.p)
                spinel_last_vacancy = vac
                add(ij[cls != _point_class2(vac)], pl.p, y_mid, k, pl, "TM", "tm")
            else:
                xb = spinel_last_vacancy or _R_of_class(0, pl.q_bottom)
                m = ({0, 1, 2, 3} - _neighbour_classes(xb, pl.p)).pop()
                xa = next(
                    _R_of_class(c, pl.q_top)
                    for c in range(4)
                    if m not in _neighbour_classes(_R_of_class(c, pl.q_top), pl.p)
                )
                spinel_next_vacancy = xa
                add(ij[cls == m], pl.p, y_mid, k, pl, "Li", "tm_on_li")
                # tetrahedral Li: below the vacancy of the kagome layer above (near the top O
                # layer) and above the vacancy of the kagome layer below (near the bottom O layer)
                if same_block(k, k - 1):
                    add(ij[cls == _point_class2(xb)], pl.q_bottom, pl.y_top_A + pl.gap_A / 4.0,
                        k, pl, "Li", "li")
                if same_block(k, k + 1):
                    add(ij[cls == _point_class2(xa)], pl.q_top,
                        pl.y_top_A + 3.0 * pl.gap_A / 4.0, k, pl, "Li", "li")
    return {k: np.concatenate(v) for k, v in out.items()}


def decorate(
    sites: dict[str, np.ndarray],
    block_specs,
    comp: Composition,
    *,
    tm_order: str,
    seed: int,
) -> np.ndarray:
    """Element symbols for ``sites`` (vacancies are ``"X"``).

    ``block_specs[b]`` is ``(phase, li_fraction)`` of block ``b``. Groups are decorated in the
    order (block, group) with one seeded generator, so the result is reproducible.
    """
    rng = np.random.default_rng(seed)
    symbols = np.full(len(sites["layer"]), "O", dtype="<U2")
    for b, (phase, li_fraction) in enumerate(block_specs):
        in_block = sites["block"] == b
        if not np.any(in_block):
            continue
        grp = sites["group"]
        li_sites = np.flatnonzero(in_block & (grp == "li"))
        tm_sites = np.flatnonzero(in_block & (grp == "tm"))
        where = f"block {b} ({phase})"
        if phase == "rock_salt":
            # Li_f M_(2-f) O2: all octahedral sites filled, Li and TM disordered over both layers.
            cation = np.flatnonzero(in_block & np.isin(grp, ("li", "tm")))
            n_li = li_count(li_fraction, len(li_sites), what=f"Li-layer sites of {where}")
            symbols[cation] = exact_li_then_tm(n_li, len(cation), comp.tm, tm_order, rng, where)
            continue
        n_li = li_count(li_fraction, len(li_sites), what=f"Li sites of {where}")
        li_sym = np.full(len(li_sites), _labels.VACANCY, dtype="<U2")
        li_sym[:n_li] = "Li"
        symbols[li_sites] = li_sym[rng.permutation(len(li_sites))]
        # spinel: the 1/4 TM of the Li layer share the TM species distribution of the kagome
        tm_sites = np.concatenate([tm_sites, np.flatnonzero(in_block & (grp == "tm_on_li"))])
        symbols[tm_sites] = assign_species(
            comp.tm, len(tm_sites), order=tm_order, rng=rng, what=f"TM sites of {where}"
        )
        for g, occ in (("honeycomb", 0), ("honeycomb_mn", 1)):
            idx = np.flatnonzero(in_block & (grp == g))
            if len(idx):
                symbols[idx] = assign_species(
                    comp.honeycomb[occ], len(idx), order=tm_order, rng=rng,
                    what=f"{g} sites of {where}",
                )
    return symbols


def exact_li_then_tm(n_li, n_sites, tm_fractions, order, rng, where) -> np.ndarray:
    """n_li Li and the rest TM (by ``tm_fractions``), mixed over ``n_sites`` sites."""
    tm = assign_species(tm_fractions, n_sites - n_li, order=order, rng=rng,
                        what=f"TM of the rock salt in {where}")
    sym = np.concatenate([np.full(n_li, "Li", dtype="<U2"), tm])
    return sym[rng.permutation(n_sites)] if order == "random" else _interleave(sym, n_li)


def _interleave(sym: np.ndarray, n_li: int) -> np.ndarray:
    """Spread the first ``n_li`` entries (Li) evenly among the others (ordered decoration)."""
    n = len(sym)
    if n_li == 0:
        return sym
    li_pos = np.floor((np.arange(n_li) + 0.5) * n / n_li).astype(int)
    out = np.empty(n, dtype=sym.dtype)
    mask = np.zeros(n, dtype=bool)
    mask[li_pos] = True
    out[mask] = "Li"
    out[~mask] = sym[n_li:]
    return out


def assemble(
    sites: dict[str, np.ndarray], symbols: np.ndarray, frame: Frame, length_A: float,
    *, periodic_stack: bool,
) -> Atoms:
    """Atoms (vacancies moved into ``info["vacancies"]``) from sites and symbols."""
    pbc = [True, True, True]
    pbc[frame.stack_axis] = periodic_stack
    atoms = Atoms(symbols=list(symbols), positions=sites["positions"], cell=frame.cell(length_A),
                  pbc=pbc)
    _labels.set_labels(atoms, phase=sites["phase"], layer=sites["layer"], site=sites["site"])
    return _labels.split_vacancies(atoms)


def record_step(atoms: Atoms, step: str, parameters: dict, *, source: Atoms | None = None) -> None:
    """Append ``step`` to ``info["history"]`` and refresh ``info["provenance"]`` (in place).

    ``history`` lists every builder call that made the structure (name and parameters) so it
    can be rebuilt exactly; ``provenance`` is :class:`layerscope.provenance.Provenance` as a dict
    (parameters = the history, input = the structure the step started from, if any).
    """
    history = list(atoms.info.get("history", [])) + [{"step": step, **parameters}]
    atoms.info["history"] = history
    inputs = [] if source is None else [source]
    atoms.info["provenance"] = Provenance.create(inputs=inputs,
                                                 parameters={"history": history}).to_dict()


# --------------------------------------------------------------------------------------------
# Public builders
# --------------------------------------------------------------------------------------------


def bulk(
    phase: str = "O3",
    composition: str = "LiCoO2",
    *,
    li_fraction: float = 1.0,
    tm_order: str = "random",
    seed: int = 0,
    size: tuple[int, int, int] = (1, 1, 1),
) -> Atoms:
    """Conventional hexagonal-setting cell of one phase.

    Parameters
    ----------
    phase : str
        "O3", "O1", "O3'", "rock_salt", "spinel" or "C2/m".
    composition : str
        "LiCoO2", "LiNi0.8Mn0.1Co0.1O2" (NMC811), "LiNi0.6Co0.2Mn0.2O2" (NMC622),
        "LiNi1/3Co1/3Mn1/3O2" (NMC111), "Li1.2Ni0.2Mn0.6O2" (Li-rich) or "Li2MnO3" (aliases in
        :data:`layerscope.crystal.composition.ALIASES`).
    li_fraction : float
        Fraction of the Li sites (Li-layer octahedral sites; spinel: tetrahedral sites) that hold
        Li; the rest are vacancies chosen at random (``seed``). For ``rock_salt`` it is the ``f``
        of ``Li_f M_(2-f) O2`` (all octahedral sites filled: 1 = disordered LiMO2, 0 = NiO-like
        MO). Li on TM-layer sites (Li-rich) is not removed. Must give a whole number of Li in
        the cell.
    tm_order : {"random", "ordered"}
        Placement of the TM species (and of Li in rock salt) on their sites, see
        :func:`layerscope.crystal.composition.assign_species`.
    seed : int
        Seed of the random decoration.
    size : tuple of 3 int
        Repeats of the phase's hexagonal cell along a1, a2, c. The in-plane cell is 1x1 for
        O3/O1/O3'/rock salt, 2x2 for spinel, sqrt3 x sqrt3 for C2/m; along c it holds 6 cation
        layers (O1: 2).

    Returns
    -------
    ase.Atoms
        Positions in Angstrom, labels (see :mod:`layerscope.crystal.labels`), and ``info`` keys
        ``zone`` (None: hexagonal setting), ``a_nm``, ``layer_spacing_nm``, ``phase``,
        ``composition``, ``li_fraction``, ``tm_order``, ``seed``, ``lattice_source``,
        ``blocks``, ``in_plane_basis_A`` (primitive a1, a2), ``vacancies``.

    Raises
    ------
    InputError
        Unknown phase/composition, a Li content or TM composition the cell cannot hold.
    """
    comp = get_composition(composition)
    lat = lattice(phase, comp)
    size = tuple(int(s) for s in size)
    if len(size) != 3 or min(size) < 1:
        raise InputError(f"size={size} must be three positive integers (repeats along a1, a2, c)")
    base = np.array(BASE_CELL[phase])
    box = np.array([base[0] * size[0], base[1] * size[1]])
    n = PERIOD_LAYERS[phase] * size[2]
    frame = hexagonal_frame(lat.a_A, box)
    plans = plan_layers([(phase, n)], comp, lat.a_A)
    sites = build_sites(plans, frame, periodic=True)
    symbols = decorate(sites, [(phase, li_fraction)], comp, tm_order=tm_order, seed=seed)
    length = sum(p.gap_A for p in plans)
    atoms = assemble(sites, symbols, frame, length, periodic_stack=True)
    atoms.info.update(
        zone=None,
        a_nm=float(lat.a_A / 10.0),
        layer_spacing_nm=float(lat.layer_spacing_A / 10.0),
        phase=phase,
        composition=comp.name,
        li_fraction=float(li_fraction),
        tm_order=tm_order,
        seed=int(seed),
        lattice_source=lat.source,
        in_plane_basis_A=np.array([frame.e1, frame.e2]),
        blocks=block_table(plans, [(phase, li_fraction)], [lat]),
    )
    record_step(atoms, "bulk", dict(phase=phase, composition=comp.name, li_fraction=li_fraction,
                                    tm_order=tm_order, seed=seed, size=list(size)))
    return atoms


def block_table(plans: list[LayerPlan], specs, lats) -> list[dict]:
    """Ground-truth description of each block: phase, layers, y range (nm), Li fraction."""
    rows = []
    for b, (phase, li_fraction) in enumerate(specs):
        mine = [k for k, p in enumerate(plans) if p.block == b]
        if not mine:
            continue
        first, last = mine[0], mine[-1]
        rows.append(
            dict(
                phase=phase,
                first_layer=first,
                last_layer=last,
                n_layers=len(mine),
                y_min_nm=float(plans[first].y_top_A / 10.0),
                y_max_nm=float((plans[last].y_top_A + plans[last].gap_A) / 10.0),
                li_fraction=float(li_fraction),
                layer_spacing_nm=float(lats[b].layer_spacing_A / 10.0),
            )
        )
    return rows


def zone_vectors(zone: str) -> tuple[np.ndarray, np.ndarray]:
    """In-plane x and beam vectors of a zone, in units of the primitive a1, a2."""
    if zone == "100":
        return np.array([1, 2]), np.array([1, 0])
    if zone == "110":
        return np.array([-1, 1]), np.array([1, 1])
    raise InputError(f"zone {zone!r} is not supported; use one of: {', '.join(ZONES)}")


def smallest_periodic_multiple(vec_prim: np.ndarray, box: np.ndarray) -> int:
    """Smallest m such that m * vec (primitive units) is a lattice vector of ``box``."""
    s = vec_prim @ np.linalg.inv(box.astype(float))
    den = 1
    for x in s:
        den = np.lcm(den, Fraction(float(x)).limit_denominator(1000).denominator)
    return int(den)


def _recut(atoms: Atoms, new_cell: np.ndarray) -> Atoms:
    """The atoms of the periodic crystal ``atoms`` inside ``new_cell`` (rows, Angstrom).

    Same job as :func:`ase.build.cut`, which drops atoms for some of these cells (e.g. the
    [110] cut of the sqrt3 x sqrt3 C2/m cell, ASE 3.29); here every periodic image whose
    scaled coordinates in the new cell lie in [0, 1) (rounded to 1e-9) is kept.
    """
    corners = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)]) @ new_cell
    old = np.linalg.solve(atoms.cell.array.T, corners.T).T
    lo, hi = np.floor(old.min(axis=0)).astype(int) - 1, np.ceil(old.max(axis=0)).astype(int) + 1
    shifts = np.array(np.meshgrid(*[np.arange(a, b + 1) for a, b in zip(lo, hi)],
                                  indexing="ij")).reshape(3, -1).T
    inv = np.linalg.inv(new_cell)
    base = atoms.positions @ inv
    step = atoms.cell.array @ inv
    idx, frac = [], []
    for sh in shifts:
        sc = np.round(base + sh @ step, 9)
        keep = np.all((sc >= 0.0) & (sc < 1.0), axis=1)
        idx.append(np.flatnonzero(keep))
        frac.append(sc[keep])
    idx, frac = np.concatenate(idx), np.concatenate(frac)
    out = atoms[idx]
    out.set_cell(new_cell)
    out.set_scaled_positions(frac)
    return out


def oriented(
    atoms: Atoms,
    *,
    zone: str = "100",
    width_nm: float,
    thickness_nm: float,
) -> Atoms:
    """Re-cut a bulk cell from :func:`bulk` into an orthogonal supercell for a zone axis.

    The result has the beam along +z, the stacking direction (hexagonal c) along +y (image
    rows, going down) and the in-plane direction along x; periodic in x and z. Zone "100": x
    along a1 + 2 a2, beam along a1 (``ase.build.cut(at, a=(1,2,0), b=(0,0,1), c=(1,0,0))``);
    zone "110": x along -a1 + a2, beam along a1 + a2. In the [100] view a close-packed layer is a
    row of columns spaced a*sqrt(3)/2 and O3 steps +1/3 of that per layer down the image (O3'
    -1/3, O1 0); the [110] view of the same crystal is its mirror image (O3 steps -1/3).

    Parameters
    ----------
    atoms : ase.Atoms
        A hexagonal-setting cell from :func:`bulk` (needs ``info["in_plane_basis_A"]``).
    zone : {"100", "110"}
        Zone axis of the hexagonal cell.
    width_nm : float
        Requested extent along x; rounded to the nearest whole period (at least one).
    thickness_nm : float
        Requested extent along the beam (z); rounded likewise.

    The height (y) is the bulk cell's c; for more layers build the bulk with
    ``size=(n1, n2, n_c)``.

    Returns
    -------
    ase.Atoms
        The oriented supercell with the labels and ``info`` of ``atoms``, plus ``zone``,
        ``width_nm``, ``thickness_nm``, ``height_nm`` (the actual extents).

    Notes
    -----
    The random decoration of ``atoms`` repeats with the bulk cell; for a random alloy over the
    whole field use :func:`layerscope.crystal.scenes.stack`.
    """
    basis = atoms.info.get("in_plane_basis_A")
    if basis is None:
        raise InputError("oriented() needs a hexagonal cell from layerscope.crystal.bulk()")
    if width_nm <= 0 or thickness_nm <= 0:
        raise InputError(f"width_nm={width_nm} and thickness_nm={thickness_nm} must be > 0")
    xv, bv = zone_vectors(zone)
    inplane = atoms.cell[:2, :2]
    box = np.rint(np.linalg.solve(basis[:, :2].T, inplane.T).T).astype(int)
    mx, mz = smallest_periodic_multiple(xv, box), smallest_periodic_multiple(bv, box)
    inv_box = np.linalg.inv(box.astype(float))
    a_vec = np.append((mx * xv) @ inv_box, 0.0)
    c_vec = np.append((mz * bv) @ inv_box, 0.0)
    full = _labels.with_vacancies(atoms)
    new_cell = np.array([a_vec, [0.0, 0.0, 1.0], c_vec]) @ full.cell.array
    new = _recut(full, new_cell)
    expected = len(full) * abs(np.linalg.det(np.array([a_vec[:2], c_vec[:2]])))
    if len(new) != int(round(expected)):
        raise RuntimeError(f"re-cut lost atoms ({len(new)} of {expected:.1f}); please report")
    lengths = np.linalg.norm(new.cell, axis=1)
    new.set_cell(np.diag(lengths), scale_atoms=True)
    rx = max(1, int(round(width_nm * 10.0 / lengths[0])))
    rz = max(1, int(round(thickness_nm * 10.0 / lengths[2])))
    new = new.repeat((rx, 1, rz))
    new.pbc = [True, False, True]
    new.info = copy.deepcopy(atoms.info)
    new.info.pop("vacancies", None)
    new.info.update(
        zone=zone,
        width_nm=float(new.cell[0, 0] / 10.0),
        height_nm=float(new.cell[1, 1] / 10.0),
        thickness_nm=float(new.cell[2, 2] / 10.0),
    )
    out = _labels.split_vacancies(new)
    record_step(out, "oriented", dict(zone=zone, width_nm=width_nm, thickness_nm=thickness_nm),
                source=atoms)
    return out
