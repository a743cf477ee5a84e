"""Composite scenes for image simulation: stacked phase blocks and the defects of degraded cathodes.

A scene is an oriented orthogonal cell (beam along +z, stacking along +y = down the image, x in
plane; periodic in x and z) built from a stack of :class:`Block` s, each with its own phase, on one
coherent close-packed O framework (see :mod:`layerscope.crystal.phases`): every block takes the
matrix's in-plane ``a`` (that of the composition's O3 phase) and keeps its own layer gaps, and each
block continues the O stacking of the block above. Then defects can be added, each a function that
returns a new Atoms and records its ground truth in ``atoms.info``:

:func:`stack`
    The block stack. ``info["blocks"]``: phase, first/last layer, y range (nm), Li fraction, Li/TM
    mixing of each block.
:func:`add_mixing`
    Li/TM mixing (antisite exchange of a TM with a Li-layer site) at a chosen fraction in a region.
:func:`lateral_domain`
    A rock-salt domain over an x (and y) range, coherent with the matrix.
:func:`glide`
    Rigid shift of the slab above a plane (planar gliding), by a fraction of ``a``.
:func:`void`
    Remove all material inside a cylinder along the beam (or a sphere).
:func:`tilt_boundary`
    Two grains rotated about the beam axis, joined at a plane x = const, overlaps removed.
:func:`validation_scene`
    The named LiCoO2 scenes that ``docs/validation.md`` measures the phase labels on.

Typical use::

    from layerscope.crystal.scenes import Block, stack, glide
    atoms = stack([Block("rock_salt", 4, li_fraction=0.0), Block("O3", 12),
                   Block("O1", 4, li_fraction=0.0), Block("O3", 12)],
                  composition="NMC811", zone="100", width_nm=4.0, thickness_nm=3.0, seed=1)
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

from layerscope.crystal import labels as _labels
from layerscope.crystal import phases as _ph
from layerscope.crystal.composition import Composition, get_composition, li_count
from layerscope.errors import InputError

__all__ = [
    "Block",
    "block_for_thickness",
    "stack",
    "add_mixing",
    "lateral_domain",
    "glide",
    "displace_columns",
    "void",
    "tilt_boundary",
    "validation_scene",
    "LAYERED_PHASES",
]

#: Phases whose Li layer is a distinct layer of octahedral sites (where Li/TM mixing is defined).
LAYERED_PHASES: tuple[str, ...] = ("O3", "O3'", "O1", "C2/m")


@dataclass(frozen=True)
class Block:
    """A block of ``n_layers`` cation layers of one phase in a stack.

    Attributes
    ----------
    phase : str
        One of :data:`layerscope.crystal.labels.PHASES`.
    n_layers : int
        Number of cation layers (Li and TM layers both count; layers alternate TM/Li through the
        whole stack, layer 0 being TM).
    li_fraction : float
        Li content of the block, as in :func:`layerscope.crystal.phases.bulk` (for rock salt the
        ``f`` of ``Li_f M_(2-f) O2``; 0 gives a NiO-like surface layer). An O1 block is normally
        delithiated (0, CoO2-like); with Li its Li and TM octahedra share faces.
    mixing : float
        Fraction of the block's Li-layer sites that hold a TM after Li/TM exchange (layered phases
        only), see :func:`add_mixing`.
    """

    phase: str
    n_layers: int
    li_fraction: float = 1.0
    mixing: float = 0.0


def block_for_thickness(
    phase: str, thickness_nm: float, *, composition: str, li_fraction: float = 1.0,
    mixing: float = 0.0,
) -> Block:
    """A :class:`Block` whose thickness is the nearest whole number of layers to ``thickness_nm``.

    E.g. a rock-salt surface layer of 1 nm: ``block_for_thickness("rock_salt", 1.0,
    composition="NMC811", li_fraction=0.0)``.
    """
    spacing_nm = _ph.lattice(phase, composition).layer_spacing_A / 10.0
    if thickness_nm <= 0:
        raise InputError(f"thickness_nm={thickness_nm} must be > 0")
    return Block(phase, max(1, int(round(thickness_nm / spacing_nm))), li_fraction, mixing)


def _commensurate_multiples(phases: Sequence[str], zone: str) -> tuple[int, int]:
    """Multiples of the x and beam periods that every superstructure in ``phases`` needs."""
    xv, bv = _ph.zone_vectors(zone)
    mx = mz = 1
    for ph in set(phases):
        base = np.array(_ph.BASE_CELL[ph])
        mx = int(np.lcm(mx, _ph.smallest_periodic_multiple(xv, base)))
        mz = int(np.lcm(mz, _ph.smallest_periodic_multiple(bv, base)))
    return mx, mz


def stack(
    blocks: Sequence[Block],
    *,
    composition: str = "LiNi0.8Mn0.1Co0.1O2",
    zone: str = "100",
    width_nm: float,
    thickness_nm: float,
    tm_order: str = "random",
    seed: int = 0,
) -> Atoms:
    """Build an oriented scene from a stack of blocks, top (y = 0) to bottom.

    Parameters
    ----------
    blocks : sequence of Block
        The blocks, from the top of the image down. The first O layer sits at y = 0.
    composition : str
        Cathode composition (all blocks share it); see :mod:`layerscope.crystal.composition`.
    zone : {"100", "110"}
        Zone axis of the hexagonal cell (beam along +z).
    width_nm, thickness_nm : float
        Extent along x and along the beam; rounded to whole periods (``a*sqrt(3)`` and ``a``,
        times 2 with a spinel block and, for the beam, 3 with a C2/m block).
    tm_order : {"random", "ordered"}
        Placement of TM species on TM sites.
    seed : int
        Seed of every random choice (decoration, delithiation, mixing).

    Returns
    -------
    ase.Atoms
        Positions in Angstrom with labels; ``info``: ``zone``, ``a_nm`` (matrix in-plane a),
        ``layer_spacing_nm`` (matrix O3 spacing), ``composition``, ``seed``, ``tm_order``,
        ``width_nm``, ``height_nm``, ``thickness_nm``, ``blocks`` (list of dicts: ``phase``,
        ``first_layer``, ``last_layer``, ``n_layers``, ``y_min_nm``, ``y_max_nm``,
        ``li_fraction``, ``mixing``, ``layer_spacing_nm``) and ``vacancies``.
        The cell is not periodic along y: the stack begins with an O layer at y = 0 and ends
        with the last cation layer (its lower O layer would be the top O layer of the next
        period).
    """
    if not blocks:
        raise InputError("blocks is empty; give at least one Block(phase, n_layers)")
    comp = get_composition(composition)
    for b in blocks:
        if not isinstance(b, Block):
            raise InputError(f"blocks must be Block instances, got {type(b).__name__}")
        if int(b.n_layers) != b.n_layers or b.n_layers < 1:
            raise InputError(f"{b}: n_layers must be a positive integer")
        _ph.lattice(b.phase, comp)  # validates phase and phase/composition pair
        if not 0.0 <= b.mixing <= 1.0:
            raise InputError(f"{b}: mixing must lie in [0, 1]")
        if b.mixing > 0 and b.phase not in LAYERED_PHASES:
            raise InputError(f"{b}: Li/TM mixing is defined for {LAYERED_PHASES} only")
    if width_nm <= 0 or thickness_nm <= 0:
        raise InputError(f"width_nm={width_nm} and thickness_nm={thickness_nm} must be > 0")
    a = _ph.lattice("O3", comp).a_A
    mx, mz = _commensurate_multiples([b.phase for b in blocks], zone)
    nx = mx * max(1, int(round(width_nm * 10.0 / (a * np.sqrt(3.0) * mx))))
    nz = mz * max(1, int(round(thickness_nm * 10.0 / (a * mz))))
    frame = _ph.zone_frame(a, zone, nx, nz)
    plans = _ph.plan_layers([(b.phase, int(b.n_layers)) for b in blocks], comp, a)
    sites = _ph.build_sites(plans, frame, periodic=False)
    specs = [(b.phase, b.li_fraction) for b in blocks]
    rng = np.random.default_rng(seed)
    symbols = _ph.decorate(sites, specs, comp, tm_order=tm_order, seed=int(rng.integers(2**31)))
    for i, b in enumerate(blocks):
        if b.mixing > 0:
            _mix(symbols, sites["site"], sites["phase"], sites["block"] == i, b.mixing, comp, rng)
    length = sum(p.gap_A for p in plans)
    atoms = _ph.assemble(sites, symbols, frame, length, periodic_stack=False)
    lats = [_ph.lattice(b.phase, comp) for b in blocks]
    table = _ph.block_table(plans, specs, lats)
    for row, b in zip(table, blocks):
        row["mixing"] = float(b.mixing)
    atoms.info.update(
        zone=zone,
        a_nm=float(a / 10.0),
        layer_spacing_nm=float(_ph.lattice("O3", comp).layer_spacing_A / 10.0),
        composition=comp.name,
        seed=int(seed),
        tm_order=tm_order,
        width_nm=float(atoms.cell[0, 0] / 10.0),
        height_nm=float(atoms.cell[1, 1] / 10.0),
        thickness_nm=float(atoms.cell[2, 2] / 10.0),
        blocks=table,
        in_plane_basis_A=np.array([frame.e1, frame.e2]),
    )
    _ph.record_step(atoms, "stack", dict(
        blocks=[dict(phase=b.phase, n_layers=int(b.n_layers), li_fraction=b.li_fraction,
                     mixing=b.mixing) for b in blocks],
        composition=comp.name, zone=zone, width_nm=width_nm, thickness_nm=thickness_nm,
        tm_order=tm_order, seed=seed))
    return atoms


def _mix(
    symbols: np.ndarray,
    site: np.ndarray,
    phase: np.ndarray,
    region: np.ndarray,
    fraction: float,
    comp: Composition,
    rng: np.random.Generator,
) -> tuple[int, int]:
    """Exchange TM atoms with Li-layer sites inside ``region`` (in place); return (n, n_sites).

    ``round(fraction * n_li_sites)`` Li-layer sites (occupied or empty, layered phases only) are
    chosen at random, and as many TM-layer atoms (Ni when the composition has Ni: Ni2+ and Li+
    have similar radii, the usual mixing species; otherwise any TM) move there. A TM site whose
    partner held Li receives that Li (antisite pair); one whose partner was empty is left empty
    (TM migration into a vacant Li site).
    """
    li_sites = np.flatnonzero(region & (site == "Li") & np.isin(phase, LAYERED_PHASES))
    n = int(round(fraction * len(li_sites)))
    if n == 0:
        return 0, len(li_sites)
    movers = ["Ni"] if "Ni" in comp.tm else comp.tm_elements
    tm_atoms = np.flatnonzero(
        region & (site == "TM") & np.isin(phase, LAYERED_PHASES) & np.isin(symbols, movers)
    )
    if n > len(tm_atoms):
        raise InputError(
            f"mixing={fraction} needs {n} {'/'.join(movers)} atoms but the region has "
            f"{len(tm_atoms)}; lower the fraction or enlarge the region"
        )
    to = rng.choice(li_sites, size=n, replace=False)
    frm = rng.choice(tm_atoms, size=n, replace=False)
    old = symbols[to].copy()
    symbols[to] = symbols[frm]
    symbols[frm] = np.where(old == "Li", "Li", _labels.VACANCY)
    return n, len(li_sites)


def _region_mask(pos_A: np.ndarray, x_range_nm, y_range_nm) -> np.ndarray:
    mask = np.ones(len(pos_A), dtype=bool)
    for axis, rng_ in ((0, x_range_nm), (1, y_range_nm)):
        if rng_ is not None:
            lo, hi = rng_
            if not lo < hi:
                raise InputError(f"range {rng_} must be (min_nm, max_nm) with min < max")
            mask &= (pos_A[:, axis] >= lo * 10.0) & (pos_A[:, axis] < hi * 10.0)
    return mask


def _scene_composition(atoms: Atoms) -> Composition:
    name = atoms.info.get("composition")
    if name is None:
        raise InputError("atoms has no info['composition']; build it with layerscope.crystal")
    return get_composition(name)


def add_mixing(
    atoms: Atoms,
    fraction: float,
    *,
    seed: int,
    x_range_nm: tuple[float, float] | None = None,
    y_range_nm: tuple[float, float] | None = None,
) -> Atoms:
    """Li/TM mixing: a fraction of the Li-layer sites in a region take a TM atom.

    Parameters
    ----------
    atoms : ase.Atoms
        A scene or oriented cell from :mod:`layerscope.crystal`.
    fraction : float
        Fraction of Li-layer sites (of layered phases, inside the region) that hold a TM after
        the exchange: the "Ni in Li site" fraction of Rietveld refinements (e.g. Dahn et al.,
        Solid State Ionics 44, 87 (1990)). Rounded to a whole number of sites; the realised
        value is recorded.
    seed : int
        Seed of the random choice of sites.
    x_range_nm, y_range_nm : (float, float), optional
        Region (positions in nm, half-open); the whole cell when omitted.

    Returns
    -------
    ase.Atoms
        A new Atoms; symbols change, labels do not (a Ni on a Li-layer site keeps
        ``site == "Li"``). ``info["mixing"]`` gains ``{fraction_requested, fraction_realised,
        n_exchanged, x_range_nm, y_range_nm}``.
    """
    if not 0.0 <= fraction <= 1.0:
        raise InputError(f"fraction={fraction} must lie in [0, 1]")
    comp = _scene_composition(atoms)
    full = _labels.with_vacancies(atoms)
    symbols = np.array(full.get_chemical_symbols(), dtype="<U2")
    region = _region_mask(full.positions, x_range_nm, y_range_nm)
    n, n_sites = _mix(symbols, full.arrays["site"], full.arrays["phase"], region, fraction, comp,
                      np.random.default_rng(seed))
    full.set_chemical_symbols(list(symbols))
    out = _labels.split_vacancies(full)
    out.info.setdefault("mixing", [])
    out.info["mixing"] = list(out.info["mixing"]) + [
        dict(fraction_requested=float(fraction),
             fraction_realised=n / n_sites if n_sites else 0.0,
             n_exchanged=n, x_range_nm=x_range_nm, y_range_nm=y_range_nm)
    ]
    _ph.record_step(out, "add_mixing", dict(fraction=fraction, seed=seed, x_range_nm=x_range_nm,
                                            y_range_nm=y_range_nm), source=atoms)
    return out


def lateral_domain(
    atoms: Atoms,
    *,
    phase: str = "rock_salt",
    x_range_nm: tuple[float, float],
    y_range_nm: tuple[float, float] | None = None,
    li_fraction: float,
    seed: int,
    tm_order: str = "random",
) -> Atoms:
    """Turn a region of a scene into a coherent rock-salt domain.

    Every octahedral cation site in the region (TM-layer and Li-layer sites, filled or empty)
    becomes occupied by ``Li_f M_(2-f)`` disordered over both layers, as in
    :func:`layerscope.crystal.phases.bulk` for ``rock_salt``; atoms keep the matrix positions
    (coherent, unrelaxed) and all atoms in the region get ``phase == "rock_salt"``.

    Parameters
    ----------
    atoms : ase.Atoms
        A scene from :func:`stack` (or an oriented cell).
    phase : {"rock_salt"}
        Only rock salt is supported as a lateral domain (a spinel domain needs tetrahedral
        sites that the layered matrix does not have).
    x_range_nm : (float, float)
        Extent of the domain along x (nm, half-open).
    y_range_nm : (float, float), optional
        Extent along y; the whole height when omitted.
    li_fraction : float
        ``f`` of ``Li_f M_(2-f) O2`` (0 = NiO-like); ``f * n_Li_sites`` must be whole.
    seed : int
        Seed of the decoration.
    tm_order : {"random", "ordered"}
        Placement of the species.

    Returns
    -------
    ase.Atoms
        New atoms; ``info["domains"]`` gains ``{phase, x_range_nm, y_range_nm, li_fraction,
        n_sites}``.
    """
    if phase != "rock_salt":
        raise InputError(f"lateral_domain supports phase='rock_salt' only, not {phase!r}")
    comp = _scene_composition(atoms)
    full = _labels.with_vacancies(atoms)
    region = _region_mask(full.positions, x_range_nm, y_range_nm)
    site = full.arrays["site"]
    cation = np.flatnonzero(region & (site != "O"))
    n_li_sites = int(np.count_nonzero(region & (site == "Li")))
    if len(cation) == 0:
        raise InputError(f"the region x={x_range_nm} nm, y={y_range_nm} nm holds no sites")
    n_li = li_count(li_fraction, n_li_sites, what="Li-layer sites of the domain")
    symbols = np.array(full.get_chemical_symbols(), dtype="<U2")
    rng = np.random.default_rng(seed)
    symbols[cation] = _ph.exact_li_then_tm(n_li, len(cation), comp.tm, tm_order, rng,
                                            "the lateral domain")
    full.set_chemical_symbols(list(symbols))
    full.arrays["phase"][region] = "rock_salt"
    out = _labels.split_vacancies(full)
    out.info["domains"] = list(out.info.get("domains", [])) + [
        dict(phase=phase, x_range_nm=tuple(x_range_nm),
             y_range_nm=None if y_range_nm is None else tuple(y_range_nm),
             li_fraction=float(li_fraction), n_sites=int(len(cation)))
    ]
    _ph.record_step(out, "lateral_domain", dict(phase=phase, x_range_nm=x_range_nm,
                                                y_range_nm=y_range_nm, li_fraction=li_fraction,
                                                seed=seed, tm_order=tm_order), source=atoms)
    return out


def glide(
    atoms: Atoms,
    *,
    above_y_nm: float,
    shift_fraction: float,
    beam_fraction: float = 0.0,
) -> Atoms:
    """Planar gliding: shift the slab above a plane rigidly within the layer plane.

    Every atom (and empty site) with ``y < above_y_nm`` (the upper part of the image) moves by
    ``shift_fraction * a`` along x and ``beam_fraction * a`` along the beam, wrapped into the
    periodic cell. The partial glide that turns O3 into O1 stacking locally is the vector
    ``a/sqrt(3)`` along <1-10>; in the [100] view it is ``shift_fraction = sqrt(3)/6`` (one
    third of a column spacing) with ``beam_fraction = 0.5``.

    Parameters
    ----------
    atoms : ase.Atoms
        An oriented cell or scene (``info["a_nm"]`` gives ``a``).
    above_y_nm : float
        The glide plane (y in nm); put it inside a Li-layer gap to glide between slabs.
    shift_fraction, beam_fraction : float
        Shift along x and along z in units of the in-plane lattice parameter ``a``.

    Returns
    -------
    ase.Atoms
        New atoms; labels unchanged; ``info["glides"]`` gains ``{above_y_nm, shift_fraction,
        beam_fraction, shift_x_nm}``.
    """
    a_nm = atoms.info.get("a_nm")
    if a_nm is None or atoms.info.get("zone") is None:
        raise InputError("glide() needs an oriented cell or scene from layerscope.crystal")
    full = _labels.with_vacancies(atoms)
    upper = full.positions[:, 1] < above_y_nm * 10.0
    shift = np.array([shift_fraction * a_nm * 10.0, 0.0, beam_fraction * a_nm * 10.0])
    pos = full.positions.copy()
    pos[upper] += shift
    lx, lz = full.cell[0, 0], full.cell[2, 2]
    pos[:, 0] %= lx
    pos[:, 2] %= lz
    full.positions = pos
    out = _labels.split_vacancies(full)
    out.info["glides"] = list(out.info.get("glides", [])) + [
        dict(above_y_nm=float(above_y_nm), shift_fraction=float(shift_fraction),
             beam_fraction=float(beam_fraction), shift_x_nm=float(shift[0] / 10.0))
    ]
    _ph.record_step(out, "glide", dict(above_y_nm=above_y_nm, shift_fraction=shift_fraction,
                                       beam_fraction=beam_fraction), source=atoms)
    return out


def displace_columns(atoms: Atoms, *, rms_pm: float, seed: int = 0) -> Atoms:
    """Static disorder: move every atom column by its own random in-plane vector.

    Atoms (and empty sites) that share ``x`` and ``y`` to 1 pm form a column; each column moves
    rigidly by a vector drawn from a normal distribution with ``rms_pm`` per axis (x and y; the
    beam direction z is untouched). A crystal whose columns are not on an ideal lattice: the
    ground truth for checking that a method follows the data rather than a lattice it expects.

    Parameters
    ----------
    atoms : ase.Atoms
        An oriented cell or scene.
    rms_pm : float
        Root-mean-square displacement per axis in pm (>= 0).
    seed : int
        Seed of the displacements.

    Returns
    -------
    ase.Atoms
        New atoms, labels unchanged; ``info["column_displacements"]`` records ``rms_pm`` and ``seed``.
    """
    if not np.isfinite(rms_pm) or rms_pm < 0:
        raise InputError(f"rms_pm={rms_pm!r} must be a finite displacement >= 0 in pm, e.g. 10")
    full = _labels.with_vacancies(atoms)
    xy = np.round(full.positions[:, :2] * 100.0).astype(np.int64)  # positions in A: 0.01 A = 1 pm
    _, column = np.unique(xy, axis=0, return_inverse=True)
    shift = np.random.default_rng(seed).normal(0.0, rms_pm / 100.0, size=(int(column.max()) + 1, 2))
    pos = full.positions.copy()
    pos[:, :2] += shift[column.ravel()]
    full.positions = pos
    out = _labels.split_vacancies(full)
    out.info["column_displacements"] = {"rms_pm": float(rms_pm), "seed": int(seed)}
    _ph.record_step(out, "displace_columns", dict(rms_pm=rms_pm, seed=seed), source=atoms)
    return out


def void(
    atoms: Atoms,
    *,
    center_nm: Sequence[float],
    radius_nm: float,
) -> Atoms:
    """Remove all material inside a void.

    Parameters
    ----------
    atoms : ase.Atoms
        An oriented cell or scene.
    center_nm : (x, y) or (x, y, z)
        Centre in nm. Two values: a cylinder along the beam through the whole thickness (what a
        void through a thin lamella looks like in projection); three values: a sphere.
    radius_nm : float
        Radius in nm. Distances along x (and z) use the minimum image of the periodic cell.

    Returns
    -------
    ase.Atoms
        New atoms without the atoms (and empty sites) inside; ``info["voids"]`` gains
        ``{center_nm, radius_nm, n_removed}``.
    """
    c = np.asarray(center_nm, dtype=float) * 10.0
    if c.shape not in ((2,), (3,)) or radius_nm <= 0:
        raise InputError("center_nm must be (x, y) or (x, y, z) in nm and radius_nm > 0")
    full = _labels.with_vacancies(atoms)
    d = full.positions[:, : len(c)] - c
    for axis in (0, 2):
        if axis < len(c) and full.pbc[axis]:
            length = full.cell[axis, axis]
            d[:, axis] -= length * np.round(d[:, axis] / length)
    inside = np.einsum("ij,ij->i", d, d) < (radius_nm * 10.0) ** 2
    n_removed = int(np.count_nonzero(inside & (np.array(full.get_chemical_symbols()) != "X")))
    out = _labels.split_vacancies(full[~inside])
    out.info = copy.deepcopy(out.info)
    out.info["voids"] = list(atoms.info.get("voids", [])) + [
        dict(center_nm=tuple(float(v) for v in center_nm), radius_nm=float(radius_nm),
             n_removed=n_removed)
    ]
    _ph.record_step(out, "void", dict(center_nm=list(center_nm), radius_nm=radius_nm),
                    source=atoms)
    return out


def tilt_boundary(
    atoms: Atoms,
    *,
    angle_deg: float,
    x_boundary_nm: float,
    min_distance_A: float = 1.6,
) -> Atoms:
    """Two grains rotated about the beam axis, joined at the plane ``x = x_boundary_nm``.

    Grain 0 is ``atoms`` for ``x < x_boundary_nm``; grain 1 fills ``x >= x_boundary_nm`` with the
    same crystal rotated by ``angle_deg`` about the beam (z) axis around the centre of its
    region (tiled periodically before rotation). Because the cell stays periodic along x, a
    second boundary forms at x = 0. Atoms of grain 1 closer than ``min_distance_A`` to a grain-0
    atom are removed (shortest bond in these oxides: tetrahedral Li-O 1.77 A in spinel).

    Parameters
    ----------
    atoms : ase.Atoms
        An oriented cell (preferably periodic along y, e.g. from
        :func:`layerscope.crystal.phases.oriented`; a scene is tiled along y as if periodic).
    angle_deg : float
        Rotation of grain 1 about +z (counter-clockwise in the x-y plane of the image frame).
    x_boundary_nm : float
        Position of the boundary plane along x, inside the cell.
    min_distance_A : float
        Overlap criterion in Angstrom.

    Returns
    -------
    ase.Atoms
        New atoms with an extra per-atom array ``grain`` (0 or 1); labels keep the values of
        the source atoms (``layer`` of grain 1 counts the rotated layers); ``info
        ["tilt_boundary"] = {angle_deg, x_boundary_nm, n_removed}``. Empty sites are dropped.
    """
    if atoms.info.get("zone") is None:
        raise InputError("tilt_boundary() needs an oriented cell or scene from layerscope.crystal")
    lx, ly = atoms.cell[0, 0], atoms.cell[1, 1]
    xb = x_boundary_nm * 10.0
    if not 0 < xb < lx:
        raise InputError(f"x_boundary_nm={x_boundary_nm} must lie inside the cell (0, {lx/10:.3f})")
    src = atoms.copy()
    src.info = {}
    grain0 = src[src.positions[:, 0] < xb]
    # tile enough copies to cover the rotated region, rotate about its centre, clip
    half_diag = 0.5 * np.hypot(lx - xb, ly)
    nrep_x = int(np.ceil(2 * half_diag / lx)) + 1
    nrep_y = int(np.ceil(2 * half_diag / ly)) + 1
    big = src.repeat((nrep_x, nrep_y, 1))
    centre_big = np.array([nrep_x * lx / 2.0, nrep_y * ly / 2.0, 0.0])
    theta = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(theta), -np.sin(theta), 0.0], [np.sin(theta), np.cos(theta), 0.0],
                    [0.0, 0.0, 1.0]])
    centre_region = np.array([(xb + lx) / 2.0, ly / 2.0, 0.0])
    pos = (big.positions - centre_big) @ rot.T + centre_region
    keep = (pos[:, 0] >= xb) & (pos[:, 0] < lx) & (pos[:, 1] >= 0) & (pos[:, 1] < ly)
    grain1 = big[keep]
    grain1.positions = pos[keep]
    grain1.cell = src.cell
    out = grain0.copy()
    out.new_array("grain", np.zeros(len(out), dtype=int))
    grain1.new_array("grain", np.ones(len(grain1), dtype=int))
    out.extend(grain1)
    out.pbc = [True, False, True]
    # remove grain-1 atoms that overlap grain 0 (across both boundaries, periodic in x)
    i, j = neighbor_list("ij", out, min_distance_A)
    g = out.arrays["grain"]
    clash = np.unique(np.concatenate([i[(g[i] == 1) & (g[j] == 0)], j[(g[j] == 1) & (g[i] == 0)]]))
    mask = np.ones(len(out), dtype=bool)
    mask[clash] = False
    out = out[mask]
    # residual clashes involving grain 1 (e.g. a scene that is not periodic along y, tiled):
    # drop the grain-1 member of each remaining close pair
    i, j = neighbor_list("ij", out, min_distance_A)
    g = out.arrays["grain"]
    pair = (i < j) & ((g[i] == 1) | (g[j] == 1))
    rest = np.unique(np.where(g[i[pair]] == 1, i[pair], j[pair]))
    if len(rest):
        mask = np.ones(len(out), dtype=bool)
        mask[rest] = False
        out = out[mask]
    out.info = copy.deepcopy({k: v for k, v in atoms.info.items() if k != "vacancies"})
    out.info["vacancies"] = {"positions": np.zeros((0, 3)), "phase": np.array([], dtype="<U9"),
                             "layer": np.array([], dtype=int), "site": np.array([], dtype="<U2")}
    out.info["tilt_boundary"] = dict(angle_deg=float(angle_deg), x_boundary_nm=float(x_boundary_nm),
                                     n_removed=int(len(clash) + len(rest)))
    _ph.record_step(out, "tilt_boundary", dict(angle_deg=angle_deg, x_boundary_nm=x_boundary_nm,
                                               min_distance_A=min_distance_A), source=atoms)
    return out


def validation_scene(name: str, *, zone: str = "100", thickness_nm: float = 5.0, width_nm: float = 4.0) -> Atoms:
    """A named LiCoO2 scene of the phase-label validation (``docs/validation.md``).

    Parameters
    ----------
    name : {"degraded", "spinel"}
        ``"degraded"``: 0.8 nm of vacuum (in the cell) over rock salt (6 cation layers, no Li
        layer left), O3 with 20 % Li/TM exchange (8), O1 CoO2 (6), O3 (6), an O3' twin (3) and O3
        (7); 9.2 nm tall. ``"spinel"``: O3 (6) | spinel-like (8) | O3 (6); 4.7 nm tall.
    zone : {"100", "110"}
        Zone axis.
    thickness_nm, width_nm : float
        Extent along the beam and along x (rounded to whole periods; ``width_nm`` < 0.5 gives one
        period, what :func:`layerscope.simulate.simulate_multislice_stack` takes).

    Returns
    -------
    ase.Atoms
        The scene (see :func:`stack`); ``info["vacuum_top_nm"]`` is the vacuum above the stack
        (``info["blocks"]`` keeps the y ranges of the stack, before that shift).
    """
    if name == "degraded":
        atoms = stack([Block("rock_salt", 6, li_fraction=0.0), Block("O3", 8), Block("O1", 6, li_fraction=0.0),
                       Block("O3", 6), Block("O3'", 3), Block("O3", 7)],
                      composition="LiCoO2", zone=zone, width_nm=width_nm, thickness_nm=thickness_nm, seed=1)
        atoms = add_mixing(atoms, 0.2, seed=2, y_range_nm=(1.5, 3.3))
        vacuum_nm = 0.8  # the rock-salt surface faces vacuum
    elif name == "spinel":
        atoms = stack([Block("O3", 6), Block("spinel", 8), Block("O3", 6)], composition="LiCoO2", zone=zone,
                      width_nm=width_nm, thickness_nm=thickness_nm, seed=1)
        vacuum_nm = 0.0
    else:
        raise InputError(f"validation scene {name!r} is not one of 'degraded', 'spinel'")
    atoms.positions[:, 1] += 10.0 * vacuum_nm
    atoms.cell[1, 1] += 10.0 * vacuum_nm
    atoms.info["vacuum_top_nm"] = vacuum_nm
    return atoms
