"""Small-cell DFT cross-check of the universal potentials: GPAW PBE+U against CHGNet and SevenNet.

Issue 6 rests on CHGNet 0.3.0 and SevenNet 7net-0 energies (O-vacancy formation, Co migration
against planar gliding). This script computes, for a few configurations small enough for a plane-wave
PBE+U calculation on one CPU core, the same energy *differences* with GPAW and with both potentials
(:mod:`layerscope.atomistic.potentials`), at identical geometries:

a. LiCoO2, O3, 4-atom rhombohedral cell, uniform shear of the layers along a (the cell-tilt part of
   planar gliding, :func:`layerscope.atomistic.structures.apply_gliding` tilts c by ``f * a`` per
   hexagonal c = 14 Å): E(f) - E(0) for f = 0, 0.01, 0.02, 0.03, 0.05 and the clamped-ion shear
   modulus C44, γ = f a / c, both from the slope of the shear stress σxz(γ) = C44 γ and from
   E/V = ½ C44 γ². In DFT at a fixed plane-wave cutoff only the stress is usable: the energy jumps by
   meV when one plane wave enters or leaves the basis as the cell shears, more than the sub-meV signal,
   while the shear stress carries no basis (Pulay) term, which is isotropic.
b. CoO2 O3 vs O1 stacking (3-atom cells) at one geometry: a = 2.816 Å, the LiCoO2 CoO2 slab
   (Co-O 1.92 Å), interlayer spacing 4.29 Å (O1 CoO2, Amatucci et al. 1996) for both, so that only
   the stacking differs.
c. Delithiation LiCoO2 -> CoO2 + Li(bcc): the average voltage V = [E(CoO2) + E(Li) - E(LiCoO2)] / e,
   for O3 and O1 CoO2 (geometries of b, LiCoO2 and Li at their experimental structures).
d. The Li2O route that fixes μO in :mod:`layerscope.atomistic.chemical_potential`. E(Li2O) - 2 E(Li)
   (PBE, no U; experimental geometries) is printed, but it is *not* comparable between codes: each
   code counts total energies from its own atomic references (GPAW: isolated spin-paired PAW atoms;
   MPtrj: VASP PAW), so it carries an O-reference offset that cancels only when μO is used. The
   reference-free test of the same Li-O energetics is the balanced conversion reaction
   Li + LiCoO2 -> Li2O + CoO (rock-salt CoO, ferromagnetic high-spin Co2+, U on Co), whose energy
   is the same Li2O-vs-oxide balance that a vacancy energy with μO from Li2O contains. CoO is taken
   antiferromagnetic (AFM-II, 4-atom cell, symmetry off: insulating, high spin); the ferromagnetic
   2-atom cubic cell is also printed but stays in a metallic, orbitally unpolarised d7 state in GPAW,
   a metastable DFT+U solution ~1.1 eV per CoO higher, and is no reference.

DFT: GPAW plane waves, PBE, Hubbard U = 3.91 eV on Co 3d (Dudarev's rotationally invariant form,
GPAW setup string ``":d,3.91"``, as in the seed study's VASP set-up), spin-polarised with a
ferromagnetic start (1 μB per Co) for the Co cells, Fermi-Dirac 0.05 eV (energies extrapolated to
zero width), Γ-centred Monkhorst-Pack meshes. Settings ``cheap``, ``production`` and ``dense-k``
(:data:`SETTINGS`) differ in cutoff and k-point density; the spread of every reported difference
across them is the convergence check. Geometries are not relaxed (the same structures enter all three methods); the
potentials' own relaxations are printed separately to show what relaxation would change.

CHGNet energies are MP2020-corrected: the corrections cancel in a, b, c (same composition, same O
count) but not in d, where CHGNet includes the fitted oxide correction (-0.687 eV per O, Wang et al.,
*Sci. Rep.* 11, 15496 (2021)); SevenNet reproduces raw MPtrj PBE(+U, U_Co = 3.32 eV) energies.

GPAW is optional and not a layerscope dependency: without it the script stops with a message; with
``--ml-only`` it prints the potentials' columns alone.

References
----------
Enkovaara et al., *J. Phys.: Condens. Matter* 22, 253202 (2010); Mortensen et al., *J. Chem. Phys.*
160, 092503 (2024) (GPAW). Dudarev et al., *Phys. Rev. B* 57, 1505 (1998) (+U). Akimoto, Gotoh,
Oosawa, *J. Solid State Chem.* 141, 298 (1998) (LiCoO2 structure). Amatucci, Tarascon, Klein,
*J. Electrochem. Soc.* 143, 1114 (1996) (O1 CoO2). Aydinol, Kohan, Ceder, Cho, Joannopoulos,
*Phys. Rev. B* 56, 1354 (1997) and Zhou et al., *Phys. Rev. B* 70, 235121 (2004) (computed voltages).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/atomistic_dft_crosscheck.py \
        [--parts d,c,b,a] [--settings cheap,production,dense-k] [--shear-fractions 0.02,0.05]
        [--cache dft.json] [--cached-only] [--json out.json] [--ml-only] [--no-ml-relax]

``--cache`` keeps every finished GPAW result (energy, and the stress of the sheared cells; keyed by
configuration and setting) so that an interrupted run resumes where it stopped and the table can be
rebuilt from it (``--cached-only``). The exact commands behind docs/validation.md are in
docs/benchmarks.md (section Atomistic).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from layerscope.errors import InputError

#: Hubbard U on Co 3d (eV), the seed study's PBE+U value (VASP, Dudarev).
U_CO_EV = 3.91
#: Interlayer (Co-Co layer) spacing used for both CoO2 stackings, Å (O1 CoO2, Amatucci et al. 1996).
COO2_LAYER_SPACING_A = 4.29
#: Gliding ratios of part a (shift per hexagonal c, fraction of a).
SHEAR_FRACTIONS = (0.0, 0.01, 0.02, 0.03, 0.05)
#: Plane-wave cutoff (eV), k-point density (points per Å⁻¹, ASE's convention: N = ceil(2π|b|·density))
#: for the unstrained cells and for the sheared series (which loses most symmetry), per setting.
SETTINGS: dict[str, dict[str, float]] = {
    "cheap": {"ecut_eV": 400.0, "kdensity": 1.5, "kdensity_shear": 1.0},
    "production": {"ecut_eV": 500.0, "kdensity": 2.5, "kdensity_shear": 1.5},
    "dense-k": {"ecut_eV": 500.0, "kdensity": 3.5, "kdensity_shear": 1.5},
}
#: Metals need denser sampling than the insulators: Li's density is this factor times the setting's.
METAL_KDENSITY_FACTOR = 2.5
EV_PER_A3_TO_GPA = 160.21766208
POTENTIAL_NAMES = ("chgnet-0.3.0", "7net-0")


# --------------------------------------------------------------------------------------------
# Structures (all from the repository's builders)
# --------------------------------------------------------------------------------------------
def primitive_cell(atoms: Atoms) -> Atoms:
    """The primitive cell of ``atoms`` in the same Cartesian frame (pymatgen ``get_primitive_structure``).

    Labels and ``info`` of the builders are dropped: only species, positions and cell are kept.
    """
    from pymatgen.core import Lattice, Structure

    s = Structure(Lattice(atoms.cell.array), atoms.get_chemical_symbols(), atoms.get_scaled_positions())
    p = s.get_primitive_structure()
    return Atoms([str(sp) for sp in p.species], scaled_positions=p.frac_coords, cell=p.lattice.matrix,
                 pbc=True)


def with_layer_spacing(atoms: Atoms, spacing_A: float) -> Atoms:
    """Move the rigid MO2 slabs of a Li-free layered cell (c along +z) to a new interlayer spacing.

    Each atom follows the transition-metal layer nearest to it along z (minimum image), so the
    slabs keep their internal geometry (M-O bonds) and only the van der Waals gap changes.

    Parameters
    ----------
    atoms : ase.Atoms
        A layered cell from :func:`layerscope.crystal.bulk` with ``li_fraction=0`` (c along +z).
    spacing_A : float
        New distance between neighbouring TM layers, Å.
    """
    cell = atoms.cell.array
    if abs(cell[2, 0]) > 1e-6 or abs(cell[2, 1]) > 1e-6 or spacing_A <= 0:
        raise InputError("with_layer_spacing needs c along +z and a positive spacing_A; build the cell "
                         "with layerscope.crystal.bulk")
    symbols = np.array(atoms.get_chemical_symbols())
    tm = np.isin(symbols, ("Co", "Ni", "Mn"))
    if np.any(symbols == "Li") or not np.any(tm):
        raise InputError("with_layer_spacing takes a Li-free MO2 cell (li_fraction=0)")
    c = cell[2, 2]
    z = atoms.positions[:, 2]
    z_tm = np.sort(np.unique(np.round(z[tm], 6)))
    n_layers = len(z_tm)
    d = (z[:, None] - z_tm[None, :] + c / 2) % c - c / 2  # signed minimum-image distance to each layer
    layer = np.argmin(np.abs(d), axis=1)
    out = atoms.copy()
    out.positions[:, 2] = layer * spacing_A + d[np.arange(len(z)), layer]
    new_cell = cell.copy()
    new_cell[2, 2] = n_layers * spacing_A
    out.set_cell(new_cell, scale_atoms=False)
    out.wrap()
    return out


def sheared(atoms: Atoms, *, fraction: float, a_A: float, c_A: float, direction: np.ndarray) -> Atoms:
    """Uniformly shear ``atoms``: x_d += γ z with γ = ``fraction`` · a / c (all atoms follow the cell).

    This is the homogeneous (cell-tilt) part of planar gliding as built by
    :func:`~layerscope.atomistic.structures.apply_gliding`, which tilts the hexagonal c vector by
    ``fraction * a`` along ``direction``.
    """
    d = np.asarray(direction, dtype=float)
    d = d / np.linalg.norm(d)
    gamma = fraction * a_A / c_A
    deformation = np.eye(3) + gamma * np.outer(d, [0.0, 0.0, 1.0])
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ deformation.T, scale_atoms=True)
    out.info["shear_gamma"] = gamma
    return out


def afm_ii_primitive(atoms: Atoms, *, moment_muB: float) -> tuple[Atoms, np.ndarray]:
    """The primitive cell of a rock-salt cell (hexagonal setting, c along [111]) with type-II
    antiferromagnetic order: TM moments alternate in sign from one (111) cation layer to the next.

    Returns the 4-atom cell and its initial moments (μB), TM layers told apart by z (c along +z).
    """
    from pymatgen.core import Lattice, Structure

    symbols = np.array(atoms.get_chemical_symbols())
    tm = np.isin(symbols, ("Co", "Ni", "Mn"))
    z = np.round(atoms.positions[:, 2], 4)
    layers = np.sort(np.unique(z[tm]))
    sign = np.array([1.0 if np.searchsorted(layers, zz) % 2 == 0 else -1.0 for zz in z])
    moments = np.where(tm, sign * moment_muB, 0.0)
    st = Structure(Lattice(atoms.cell.array), list(symbols), atoms.get_scaled_positions(),
                   site_properties={"magmom": moments.tolist()})
    p = st.get_primitive_structure(use_site_props=True)
    prim = Atoms([str(sp) for sp in p.species], scaled_positions=p.frac_coords, cell=p.lattice.matrix, pbc=True)
    return prim, np.array(p.site_properties["magmom"], dtype=float)


def configurations() -> dict[str, dict[str, Any]]:
    """Every configuration of parts a-d: name -> {"atoms", "part", "hubbard", "spin", "metal", "shear", ...}."""
    from layerscope.atomistic.chemical_potential import lithium_metal, lithium_oxide
    from layerscope.atomistic.structures import host_bulk, layered_lattice_parameters
    from layerscope.crystal import bulk

    host = host_bulk("LiCoO2")
    a, c = layered_lattice_parameters(host)
    a_dir = host.cell.array[0]
    lco = primitive_cell(host)
    confs: dict[str, dict[str, Any]] = {}
    for f in SHEAR_FRACTIONS:
        atoms = sheared(lco, fraction=f, a_A=a, c_A=c, direction=a_dir) if f else lco.copy()
        confs[f"LiCoO2 shear f={f:.2f}"] = dict(atoms=atoms, part="a", hubbard=True, spin=True, metal=False,
                                                shear=True, fraction=f, gamma=f * a / c, uniform_mesh=True,
                                                reference_cell=lco.cell.array.copy())
    o3 = primitive_cell(with_layer_spacing(bulk("O3", "LiCoO2", li_fraction=0.0, tm_order="ordered"),
                                           COO2_LAYER_SPACING_A))
    o1 = primitive_cell(bulk("O1", "LiCoO2", li_fraction=0.0, tm_order="ordered"))
    # uniform_mesh: N x N x N for the rhombohedral cells (symmetric in any basis), per-axis for O1
    confs["CoO2 O3"] = dict(atoms=o3, part="b", hubbard=True, spin=True, metal=True, shear=False,
                            uniform_mesh=True)
    confs["CoO2 O1"] = dict(atoms=o1, part="b", hubbard=True, spin=True, metal=True, shear=False,
                            uniform_mesh=False)
    confs["Li bcc"] = dict(atoms=lithium_metal(), part="d", hubbard=False, spin=False, metal=True, shear=False,
                           uniform_mesh=True)
    confs["Li2O"] = dict(atoms=lithium_oxide(), part="d", hubbard=False, spin=False, metal=False, shear=False,
                         uniform_mesh=True)
    coo = primitive_cell(bulk("rock_salt", "LiCoO2", li_fraction=0.0, tm_order="ordered"))
    confs["CoO rock salt"] = dict(atoms=coo, part="d", hubbard=True, spin=True, metal=True, shear=False,
                                  uniform_mesh=True, magmom_Co=3.0)
    # AFM-II with the symmetry switched off, so that the Co2+ d7 minority t2g level can order and the
    # gap open (the ferromagnetic cubic cell above stays metallic, a metastable DFT+U solution)
    coo_afm, moments = afm_ii_primitive(bulk("rock_salt", "LiCoO2", li_fraction=0.0, tm_order="ordered"),
                                        moment_muB=3.0)
    confs["CoO rock salt AFM-II"] = dict(atoms=coo_afm, part="d", hubbard=True, spin=True, metal=True,
                                         shear=False, uniform_mesh=True, magmoms=moments, symmetry_off=True,
                                         kdensity_factor=0.7)  # without symmetry: a coarser mesh, 2 eV gap
    return confs


#: Which configurations each part needs.
PART_CONFIGS = {
    "a": [f"LiCoO2 shear f={f:.2f}" for f in SHEAR_FRACTIONS],
    "b": ["CoO2 O3", "CoO2 O1"],
    "c": ["LiCoO2 shear f=0.00", "CoO2 O3", "CoO2 O1", "Li bcc"],
    "d": ["Li2O", "Li bcc", "LiCoO2 shear f=0.00", "CoO rock salt", "CoO rock salt AFM-II"],
}


# --------------------------------------------------------------------------------------------
# GPAW
# --------------------------------------------------------------------------------------------
def kpoint_mesh(atoms: Atoms, density: float, *, uniform: bool) -> tuple[int, int, int]:
    """Γ-centred mesh with N_i = ceil(2π |b_i| · density); ``uniform`` takes N = max N_i on every axis.

    A uniform Γ-centred N×N×N mesh is the same set of k-points in any primitive basis, so it keeps the
    full point-group symmetry of rhombohedral cells given in a non-symmetric (Niggli-like) basis.
    """
    from ase.calculators.calculator import kptdensity2monkhorstpack

    n = kptdensity2monkhorstpack(atoms, kptdensity=density, even=False)
    if uniform:
        return (int(max(n)),) * 3
    return tuple(int(k) for k in n)


def gpaw_energy(name: str, conf: dict[str, Any], setting: str, *, workdir: Path) -> dict[str, Any]:
    """One GPAW PW single point of ``conf``; returns energy (eV), magnetic moment, mesh, seconds."""
    from gpaw import GPAW, PW, FermiDirac

    s = SETTINGS[setting]
    atoms = conf["atoms"].copy()
    density = s["kdensity_shear"] if conf["shear"] else s["kdensity"]
    if conf["metal"] and not conf["hubbard"]:
        density *= METAL_KDENSITY_FACTOR
    density *= conf.get("kdensity_factor", 1.0)
    mesh = kpoint_mesh(atoms, density, uniform=conf["uniform_mesh"])
    if conf["spin"] and "magmoms" in conf:
        atoms.set_initial_magnetic_moments(conf["magmoms"])
    elif conf["spin"]:
        m_co = conf.get("magmom_Co", 1.0)
        atoms.set_initial_magnetic_moments([m_co if el == "Co" else 0.0 for el in atoms.get_chemical_symbols()])
    extra: dict[str, Any] = {"symmetry": "off"} if conf.get("symmetry_off") else {}
    if conf["shear"]:
        # One real-space (density/FFT) grid for the whole series: GPAW would otherwise pick a
        # symmetrised 24^3 grid for the unstrained cell and 14x14x24 for the sheared ones. (The
        # meV noise that remains in E(γ) is the plane-wave basis itself, see the module docstring.)
        from ase.units import Bohr
        from gpaw.utilities.gpts import get_number_of_grid_points

        n_grid = int(max(get_number_of_grid_points(conf["reference_cell"] / Bohr, mode=PW(s["ecut_eV"]))))
        extra["gpts"] = (n_grid,) * 3
    workdir.mkdir(parents=True, exist_ok=True)
    tag = name.replace(" ", "_").replace("=", "")
    calc = GPAW(mode=PW(s["ecut_eV"]), xc="PBE", kpts={"size": mesh, "gamma": True}, **extra,
                setups={"Co": f":d,{U_CO_EV}"} if conf["hubbard"] else {},
                occupations=FermiDirac(0.05), spinpol=bool(conf["spin"]),
                convergence={"energy": 1e-6}, txt=str(workdir / f"{tag}.{setting}.txt"))
    atoms.calc = calc
    t0 = time.perf_counter()
    energy = float(atoms.get_potential_energy())
    # the analytic stress: its shear component carries no basis-set (Pulay) term, unlike E(γ) at fixed cutoff
    stress = [float(x) for x in atoms.get_stress(voigt=True)] if conf["shear"] and conf["fraction"] else None
    seconds = time.perf_counter() - t0
    magmom = float(atoms.get_magnetic_moment()) if conf["spin"] else 0.0
    return {"energy_eV": energy, "stress_voigt_eV_per_A3": stress, "magmom_muB": magmom, "kpts": list(mesh),
            "ecut_eV": s["ecut_eV"], "gpts": list(extra["gpts"]) if "gpts" in extra else None,
            "seconds": round(seconds, 1), "natoms": len(atoms)}


# --------------------------------------------------------------------------------------------
# Potentials
# --------------------------------------------------------------------------------------------
def ml_energies(confs: dict[str, dict[str, Any]], names: list[str]) -> dict[str, dict[str, float]]:
    """Single-point energies (eV) with each potential: potential -> name -> E; the sheared cells also
    give ``name + " sxz"``, the xz stress (eV/Å³)."""
    from layerscope.atomistic.potentials import load_potential

    out: dict[str, dict[str, float]] = {}
    for pot_name in POTENTIAL_NAMES:
        pot = load_potential(pot_name, device="cpu", num_threads=1)
        out[pot_name] = {}
        for n in names:
            atoms = confs[n]["atoms"].copy()
            atoms.calc = pot.calculator()
            out[pot_name][n] = float(atoms.get_potential_energy())
            if confs[n]["shear"]:
                out[pot_name][n + " sxz"] = float(atoms.get_stress(voigt=True)[4])
    return out


def ml_relaxed(confs: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """What relaxation would change, per potential (BFGS, 0.01 eV/Å).

    Positions only at the fixed cells (the CoO2 slab thins around Co4+): the O3 - O1 difference and
    the voltages; then positions and cell: the CoO2 interlayer spacing each potential predicts.
    """
    from layerscope.atomistic.potentials import load_potential, relax

    out: dict[str, dict[str, float]] = {}
    for pot_name in POTENTIAL_NAMES:
        pot = load_potential(pot_name, device="cpu", num_threads=1)
        e = {}
        for n in ("LiCoO2 shear f=0.00", "CoO2 O3", "CoO2 O1", "Li bcc"):
            e[n] = relax(confs[n]["atoms"], pot, fmax_eV_per_A=0.01, max_steps=400, optimizer="BFGS").energy_eV
        row = {
            "O3 - O1 (positions relaxed), meV/CoO2": 1e3 * (e["CoO2 O3"] - e["CoO2 O1"]),
            "V to O3 (positions relaxed), V": e["CoO2 O3"] + e["Li bcc"] - e["LiCoO2 shear f=0.00"],
            "V to O1 (positions relaxed), V": e["CoO2 O1"] + e["Li bcc"] - e["LiCoO2 shear f=0.00"],
        }
        for st in ("O3", "O1"):
            r = relax(confs[f"CoO2 {st}"]["atoms"], pot, fmax_eV_per_A=0.01, max_steps=400, relax_cell=True,
                      optimizer="BFGS")
            # one CoO2 layer per primitive cell: the spacing is the cell height normal to the layers
            row[f"CoO2 {st} layer spacing (cell relaxed), A"] = float(r.atoms.get_volume() / r.atoms.cell.area(2))
        out[pot_name] = row
    return out


# --------------------------------------------------------------------------------------------
# Derived quantities
# --------------------------------------------------------------------------------------------
def shear_modulus_GPa(gammas: np.ndarray, energies_eV: np.ndarray, volume_A3: float) -> float:
    """Clamped-ion C44 (GPa) from a least-squares fit E = E0 + ½ C44 V γ² (Nye, *Physical Properties
    of Crystals*, 1957: E/V = ½ C55 ε5², C55 = C44 in trigonal crystals)."""
    design = np.column_stack([np.ones_like(gammas), 0.5 * volume_A3 * gammas**2])
    (_, c44), *_ = np.linalg.lstsq(design, energies_eV, rcond=None)
    return float(c44 * EV_PER_A3_TO_GPA)


def derived(e: dict[str, float], confs: dict[str, dict[str, Any]], parts: list[str]) -> dict[str, float]:
    """The reported quantities from one method's energies ``e`` (missing inputs give NaN)."""
    g = lambda n: e.get(n, math.nan)  # noqa: E731
    out: dict[str, float] = {}
    if "a" in parts:
        e0 = g("LiCoO2 shear f=0.00")
        for f in SHEAR_FRACTIONS[1:]:
            out[f"a: E(f={f:.2f}) - E(0), meV/LiCoO2"] = 1e3 * (g(f"LiCoO2 shear f={f:.2f}") - e0)
        sheared_names = [n for n in PART_CONFIGS["a"][1:] if n + " sxz" in e]
        if sheared_names:
            gam = np.array([confs[n]["gamma"] for n in sheared_names])
            sxz = np.array([e[n + " sxz"] for n in sheared_names])
            # σ5 = C44 ε5 with ε5 = γ: the slope of σxz(γ) over the sheared cells (a straight line with an
            # intercept, so that a constant numerical offset of σxz does not enter; through the origin
            # when only one sheared cell was computed)
            if len(gam) >= 2:
                slope, offset = np.polyfit(gam, sxz, 1)
                out["a: σxz(γ) offset, GPa"] = float(offset * EV_PER_A3_TO_GPA)
            else:
                slope = float(sxz[0] / gam[0])
            out["a: C44 clamped-ion from stress, GPa"] = float(abs(slope) * EV_PER_A3_TO_GPA)
        names = [n for n in PART_CONFIGS["a"] if n in e]
        if len(names) >= 3:
            gam = np.array([confs[n]["gamma"] for n in names])
            out["a: C44 clamped-ion from E(γ), GPa"] = shear_modulus_GPa(
                gam, np.array([e[n] for n in names]), confs["LiCoO2 shear f=0.00"]["atoms"].get_volume())
    if "b" in parts:
        out["b: E(O3) - E(O1), meV/CoO2"] = 1e3 * (g("CoO2 O3") - g("CoO2 O1"))
    if "c" in parts:
        for st in ("O3", "O1"):
            out[f"c: voltage LiCoO2 -> CoO2 ({st}) + Li, V"] = (g(f"CoO2 {st}") + g("Li bcc")
                                                                - g("LiCoO2 shear f=0.00"))
    if "d" in parts:
        out["d: E(Li2O) - 2 E(Li), eV/Li2O (reference-dep.)"] = g("Li2O") - 2 * g("Li bcc")
        out["d: Li + LiCoO2 -> Li2O + CoO (FM, metallic), eV"] = (g("Li2O") + g("CoO rock salt") - g("Li bcc")
                                                             - g("LiCoO2 shear f=0.00"))
        out["d: Li + LiCoO2 -> Li2O + CoO (AFM-II), eV"] = (g("Li2O") + g("CoO rock salt AFM-II") / 2
                                                          - g("Li bcc") - g("LiCoO2 shear f=0.00"))
    return out


def print_table(rows: list[dict[str, Any]], settings: list[str]) -> None:
    """Quantity, GPAW (one column per setting), CHGNet, SevenNet and their differences to GPAW
    (the most converged setting run for that row: dense-k, else production, else cheap)."""
    cols = [f"gpaw_{s}" for s in settings] + ["chgnet-0.3.0", "7net-0", "chgnet_minus_gpaw", "sevennet_minus_gpaw"]
    names = [f"GPAW {s}" for s in settings] + ["CHGNet", "7net-0", "CHG-GPAW", "7net-GPAW"]
    print(f"{'quantity':50s} " + " ".join(f"{n:>11s}" for n in names))
    print("-" * (51 + 12 * len(names)))
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            cells.append(f"{'-':>11s}" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:11.4f}")
        print(f"{r['quantity']:50s} " + " ".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", default="d,c,b,a", help="comma-separated subset of a,b,c,d (run in this order)")
    ap.add_argument("--settings", default="cheap,production", help="GPAW settings to run: cheap,production")
    ap.add_argument("--cache", type=Path, default=None, help="JSON file of finished GPAW energies (resumable)")
    ap.add_argument("--workdir", type=Path, default=Path("gpaw-crosscheck"), help="GPAW text logs")
    ap.add_argument("--json", type=Path, default=None, help="write the table (and raw energies) here")
    ap.add_argument("--ml-only", action="store_true", help="skip GPAW; print the potentials' columns only")
    ap.add_argument("--no-ml-relax", action="store_true", help="skip the potentials' relaxed comparison")
    ap.add_argument("--cached-only", action="store_true",
                    help="run no GPAW calculation: tabulate what --cache holds for the requested parts/settings")
    ap.add_argument("--shear-fractions", default=",".join(str(f) for f in SHEAR_FRACTIONS),
                    help="gliding ratios of part a computed with GPAW (the potentials always take all)")
    args = ap.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    if set(parts) - set(PART_CONFIGS) or set(settings) - set(SETTINGS):
        sys.exit(f"--parts takes a subset of a,b,c,d and --settings of {','.join(SETTINGS)}; got "
                 f"{args.parts!r} / {args.settings!r}")
    if not args.ml_only:
        try:
            import gpaw  # noqa: F401
        except ImportError:
            sys.exit("gpaw is not importable: this cross-check needs GPAW (not a layerscope dependency). "
                     "Install it into this environment (apt-get install libxc-dev libopenblas-dev; "
                     "CC=g++ pip install gpaw; the PAW setups come with the gpaw-data wheel), or run with "
                     "--ml-only for the potentials' columns alone.")
    gpaw_fractions = {float(f) for f in args.shear_fractions.split(",") if f.strip()}
    confs = configurations()
    names = list(dict.fromkeys(n for p in parts for n in PART_CONFIGS[p]))
    cache: dict[str, Any] = {}
    if args.cache is not None and args.cache.exists():
        cache = json.loads(args.cache.read_text())
    dft: dict[str, dict[str, float]] = {s: {} for s in settings}
    if not args.ml_only:
        for setting in settings:  # the cheap setting first: its numbers arrive early
            for n in names:
                key = f"{n} | {setting}"
                strained = confs[n]["shear"] and confs[n]["fraction"] > 0
                done = key in cache and (not strained or cache[key].get("stress_voigt_eV_per_A3"))
                if not done and (args.cached_only or (strained and confs[n]["fraction"] not in gpaw_fractions)):
                    continue
                if not done:
                    cache[key] = gpaw_energy(n, confs[n], setting, workdir=args.workdir)
                    if args.cache is not None:
                        args.cache.write_text(json.dumps(cache, indent=1))
                    r = cache[key]
                    print(f"[gpaw {setting}] {n}: {r['energy_eV']:.6f} eV, m = {r['magmom_muB']:.3f} μB, "
                          f"k {r['kpts']}, {r['seconds']:.0f} s", flush=True)
                dft[setting][n] = cache[key]["energy_eV"]
                if cache[key].get("stress_voigt_eV_per_A3"):
                    dft[setting][n + " sxz"] = cache[key]["stress_voigt_eV_per_A3"][4]
    ml = ml_energies(confs, names)
    q = {m: derived(ml[m], confs, parts) for m in POTENTIAL_NAMES}
    q_dft = {s: derived(dft[s], confs, parts) for s in settings if dft[s]}
    rows = []
    for quantity in q["chgnet-0.3.0"]:
        row: dict[str, Any] = {"quantity": quantity, **{m: q[m][quantity] for m in POTENTIAL_NAMES}}
        for s, vals in q_dft.items():
            row[f"gpaw_{s}"] = vals.get(quantity, math.nan)
        # against the most converged GPAW value available for this row
        ref = next((row[f"gpaw_{s}"] for s in ("dense-k", "production", "cheap")
                    if not math.isnan(row.get(f"gpaw_{s}", math.nan))), None)
        if ref is not None:
            row["chgnet_minus_gpaw"] = row["chgnet-0.3.0"] - ref
            row["sevennet_minus_gpaw"] = row["7net-0"] - ref
        rows.append(row)
    print(f"\nGPAW PW PBE(+U_Co = {U_CO_EV} eV), settings: {json.dumps(SETTINGS)}")
    print_table(rows, [s for s in settings if dft[s]])
    if "a" in parts and any(dft.values()):
        print("Note: GPAW's E(f) - E(0) and its C44 from E(γ) are dominated by plane-wave basis jumps at a fixed\n"
              "cutoff (meV against a sub-meV signal); compare C44 from the shear stress.")
    relaxed = {}
    if not args.no_ml_relax and ({"b", "c"} & set(parts)):
        relaxed = ml_relaxed(confs)
        print("\nWhat relaxation changes with the potentials (no DFT counterpart):")
        for m, vals in relaxed.items():
            print(f"  {m}: " + ", ".join(f"{k} = {v:.3f}" for k, v in vals.items()))
    if args.json is not None:
        args.json.write_text(json.dumps({"settings": SETTINGS, "U_Co_eV": U_CO_EV, "rows": rows,
                                         "gpaw_raw": {k: v for k, v in cache.items()},
                                         "ml_raw": ml, "ml_relaxed": relaxed}, indent=1))


if __name__ == "__main__":
    main()
