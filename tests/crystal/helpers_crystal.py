"""Measurements on built structures, written independently of the builders.

They read the structure back the way an analysis of an image or a diffraction pattern would:
from atom positions only.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms


def row_phase(x_A: np.ndarray, spacing_A: float) -> float:
    """Circular mean of ``x mod spacing`` in units of ``spacing`` (0..1): where a row of columns sits."""
    z = np.exp(2j * np.pi * np.asarray(x_A) / spacing_A)
    return float(np.angle(z.mean()) / (2 * np.pi)) % 1.0


def layer_steps(atoms: Atoms, layers: list[int], *, elements: set[str] | None = None) -> np.ndarray:
    """Shift of each cation layer's columns relative to the layer above, in column spacings (0..1).

    Uses the cation atoms of each layer (only ``elements`` if given, e.g. the octahedral TM of a
    spinel), in the oriented view (x = in-plane, y = stacking).
    """
    spacing = atoms.info["a_nm"] * 10.0 * np.sqrt(3.0) / 2.0
    site, layer = atoms.arrays["site"], atoms.arrays["layer"]
    phases = []
    for k in layers:
        m = (layer == k) & (site != "O")
        if elements is not None:
            m &= np.isin(atoms.get_chemical_symbols(), list(elements))
        phases.append(row_phase(atoms.positions[m, 0], spacing))
    return np.diff(phases) % 1.0


def circular_distance(a: np.ndarray, b: float) -> np.ndarray:
    """Distance on the unit circle between fractions ``a`` and ``b``."""
    d = (np.asarray(a) - b) % 1.0
    return np.minimum(d, 1.0 - d)


def bond_lengths(atoms: Atoms, centre: str, neighbour: str = "O", cutoff: float = 2.4):
    """All ``centre``-``neighbour`` distances below ``cutoff`` (Angstrom), with periodic images."""
    from ase.neighborlist import neighbor_list

    i, j, d = neighbor_list("ijd", atoms, cutoff)
    s = np.array(atoms.get_chemical_symbols())
    return d[(s[i] == centre) & (s[j] == neighbour)]
