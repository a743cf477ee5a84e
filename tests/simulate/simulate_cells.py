"""Small LiCoO2 structures built directly with ASE (independent of layerscope.crystal), for the simulator tests."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.build import cut
from ase.spacegroup import crystal

#: LiCoO2 (R-3m) lattice parameters in Angstrom and the O 6c coordinate (design.md).
A_HEX = 2.816
C_HEX = 14.05
Z_O = 0.2396


def licoo2_100_cell() -> Atoms:
    """LiCoO2 viewed along [100]: x = a + 2b (a*sqrt(3)), y = c (stacking, image rows), beam along z = a.

    Labels follow the layerscope.crystal contract: ``site`` (TM/Li/O), ``phase``, ``layer``.
    """
    hexagonal = crystal(
        ["Li", "Co", "O"],
        basis=[(0, 0, 0), (0, 0, 0.5), (0, 0, Z_O)],
        spacegroup=166,
        cellpar=[A_HEX, A_HEX, C_HEX, 90, 90, 120],
    )
    view = cut(hexagonal, a=(1, 2, 0), b=(0, 0, 1), c=(1, 0, 0))
    atoms = Atoms(
        view.get_chemical_symbols(),
        scaled_positions=view.get_scaled_positions(),
        cell=np.diag(view.cell.lengths()),
        pbc=True,
    )
    symbols = np.array(atoms.get_chemical_symbols())
    atoms.arrays["site"] = np.where(symbols == "Co", "TM", symbols).astype("<U2")
    atoms.arrays["phase"] = np.full(len(atoms), "O3", dtype="<U8")
    # layer index: TM and Li planes are c/6 apart; O belongs to the nearest cation plane below it
    atoms.arrays["layer"] = np.floor(atoms.positions[:, 1] / (C_HEX / 6) + 0.25).astype(int)
    return atoms
