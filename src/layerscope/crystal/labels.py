"""Per-atom labels carried by every structure the crystal builders return.

Every :class:`ase.Atoms` from :mod:`layerscope.crystal` carries three per-atom arrays, the ground
truth that image simulation and the phase-mapping accuracy tests compare against:

``atoms.arrays["phase"]`` (str)
    ``"O3"``, ``"O1"``, ``"O3'"``, ``"rock_salt"``, ``"spinel"`` or ``"C2/m"``: the phase of the
    block (or lateral domain) the atom belongs to.
``atoms.arrays["layer"]`` (int)
    Index of the close-packed cation layer along the stacking direction, 0 at the top of the
    image (smallest y in an oriented cell, smallest z in a hexagonal bulk cell). Li layers and TM
    layers both count. **Rule for O**: an O atom carries the index of the cation layer directly
    *below* it (next larger y), i.e. the O layer at the top of the gap that holds cation layer
    ``k`` has index ``k``. Tetrahedral cations (spinel) carry the index of the gap they sit in.
``atoms.arrays["site"]`` (str)
    The kind of *site*: ``"TM"`` (a site of a transition-metal layer), ``"Li"`` (a site of a Li
    layer, octahedral or tetrahedral) or ``"O"``. It is the site, not the element: a Ni on a
    Li-layer site has ``site == "Li"`` and symbol ``"Ni"`` (Li/TM mixing), a Li in the TM layer of
    a Li-rich oxide has ``site == "TM"`` and symbol ``"Li"``.

Empty sites that belong to the model (a Li site emptied by delithiation, a site a void removed)
are not atoms; they are kept in ``atoms.info["vacancies"]`` (a dict of arrays ``positions``
(N, 3) in Angstrom, ``phase``, ``layer``, ``site``) so that later steps (Li/TM mixing into empty
Li sites, a rock-salt domain) can fill them. :func:`with_vacancies` and :func:`split_vacancies`
convert between that form and one Atoms object in which vacancies are dummy atoms ``"X"``.
"""

from __future__ import annotations

import copy

import numpy as np
from ase import Atoms

from layerscope.errors import InputError

__all__ = [
    "PHASES",
    "SITES",
    "LABEL_ARRAYS",
    "VACANCY",
    "set_labels",
    "check_labels",
    "with_vacancies",
    "split_vacancies",
    "label_counts",
]

#: Phase labels, in the order used for integer phase maps (index = class id).
PHASES: tuple[str, ...] = ("O3", "O1", "O3'", "rock_salt", "spinel", "C2/m")
#: Site kinds.
SITES: tuple[str, ...] = ("TM", "Li", "O")
#: Names of the per-atom label arrays.
LABEL_ARRAYS: tuple[str, ...] = ("phase", "layer", "site")
#: Chemical symbol used for an empty site inside the builders (ASE's dummy atom, Z = 0).
VACANCY = "X"

_TM_ELEMENTS = frozenset({"Co", "Ni", "Mn"})


def set_labels(atoms: Atoms, *, phase, layer, site) -> None:
    """Attach the three label arrays to ``atoms`` in place (str arrays are stored as ``<U9``)."""
    n = len(atoms)
    for name, value, dtype in (("phase", phase, "<U9"), ("layer", layer, int), ("site", site, "<U2")):
        arr = np.broadcast_to(np.asarray(value, dtype=dtype), (n,)).copy()
        if name in atoms.arrays:
            del atoms.arrays[name]
        atoms.new_array(name, arr)


def check_labels(atoms: Atoms) -> None:
    """Check that ``atoms`` carries consistent labels.

    Consistency: every label array exists, phases and sites are known values, O atoms sit on
    ``"O"`` sites and only there, a TM element (Co/Ni/Mn) never sits on an ``"O"`` site.

    Raises
    ------
    InputError
        Naming the first inconsistency found.
    """
    for name in LABEL_ARRAYS:
        if name not in atoms.arrays:
            raise InputError(
                f"atoms has no '{name}' label array; build it with layerscope.crystal"
            )
    phase, site = atoms.arrays["phase"], atoms.arrays["site"]
    bad = set(np.unique(phase)) - set(PHASES)
    if bad:
        raise InputError(f"unknown phase labels {sorted(bad)}; accepted: {PHASES}")
    bad = set(np.unique(site)) - set(SITES)
    if bad:
        raise InputError(f"unknown site labels {sorted(bad)}; accepted: {SITES}")
    symbols = np.array(atoms.get_chemical_symbols())
    is_o = symbols == "O"
    if np.any(is_o != (site == "O")):
        raise InputError("O atoms and 'O' sites do not coincide; the labels are corrupt")


def with_vacancies(atoms: Atoms) -> Atoms:
    """A copy of ``atoms`` in which the vacancies of ``info["vacancies"]`` are ``"X"`` atoms."""
    out = atoms.copy()
    out.info = copy.deepcopy(atoms.info)
    vac = out.info.pop("vacancies", None)
    if vac is None or len(vac["positions"]) == 0:
        return out
    extra = Atoms(
        symbols=[VACANCY] * len(vac["positions"]),
        positions=vac["positions"],
        cell=out.cell,
        pbc=out.pbc,
    )
    set_labels(extra, phase=vac["phase"], layer=vac["layer"], site=vac["site"])
    for name in out.arrays:
        if name not in extra.arrays and name not in ("numbers", "positions"):
            extra.new_array(name, np.zeros((len(extra),) + out.arrays[name].shape[1:],
                                           dtype=out.arrays[name].dtype))
    out.extend(extra)
    return out


def split_vacancies(atoms: Atoms) -> Atoms:
    """Move ``"X"`` atoms of ``atoms`` into ``info["vacancies"]``; return the real atoms."""
    symbols = np.array(atoms.get_chemical_symbols())
    is_vac = symbols == VACANCY
    real = atoms[~is_vac]
    real.info = copy.deepcopy(atoms.info)
    real.info["vacancies"] = {
        "positions": atoms.positions[is_vac].copy(),
        "phase": atoms.arrays["phase"][is_vac].copy(),
        "layer": atoms.arrays["layer"][is_vac].copy(),
        "site": atoms.arrays["site"][is_vac].copy(),
    }
    return real


def label_counts(atoms: Atoms):
    """Number of atoms per (phase, site, element): a :class:`pandas.DataFrame` for reports."""
    import pandas as pd

    df = pd.DataFrame(
        {
            "phase": atoms.arrays["phase"],
            "site": atoms.arrays["site"],
            "element": atoms.get_chemical_symbols(),
        }
    )
    return df.groupby(["phase", "site", "element"]).size().rename("count").reset_index()
