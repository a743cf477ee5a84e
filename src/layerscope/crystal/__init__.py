"""Crystal builders for layered-oxide cathodes: bulk phases, oriented supercells, composite scenes.

Every builder returns an :class:`ase.Atoms` (positions in Angstrom) with per-atom labels
``arrays["phase"]``, ``arrays["layer"]``, ``arrays["site"]`` (rules in :mod:`.labels`) and
``info`` describing the cell (``zone``, ``a_nm``, ``layer_spacing_nm``, ``blocks``, ...).

* :func:`bulk` -- hexagonal-setting cell of O3, O1, O3', rock salt, spinel or C2/m for LiCoO2,
  NMC811, NMC622, Li1.2Ni0.2Mn0.6O2 or Li2MnO3, at any Li content (:mod:`.phases`).
* :func:`oriented` -- re-cut for the [100] or [110] zone axis: beam along +z, stacking along +y
  (image rows, down), x in plane; O3 rows step +1/3 of a column spacing per layer in [100].
* :func:`stack` with :class:`Block` -- composite scenes (O1 blocks, twin layers, rock-salt surface
  layers, Li/TM mixing), and the defects :func:`add_mixing`, :func:`lateral_domain`,
  :func:`glide`, :func:`displace_columns`, :func:`void`, :func:`tilt_boundary` (:mod:`.scenes`).
"""

from layerscope.crystal.composition import COMPOSITIONS, get_composition
from layerscope.crystal.labels import LABEL_ARRAYS, PHASES, SITES, check_labels, label_counts
from layerscope.crystal.phases import ZONES, Lattice, bulk, lattice, oriented
from layerscope.crystal.scenes import (
    Block,
    add_mixing,
    block_for_thickness,
    displace_columns,
    glide,
    lateral_domain,
    stack,
    tilt_boundary,
    void,
)

__all__ = [
    "COMPOSITIONS",
    "get_composition",
    "LABEL_ARRAYS",
    "PHASES",
    "SITES",
    "ZONES",
    "check_labels",
    "label_counts",
    "Lattice",
    "lattice",
    "bulk",
    "oriented",
    "Block",
    "block_for_thickness",
    "stack",
    "add_mixing",
    "lateral_domain",
    "displace_columns",
    "glide",
    "void",
    "tilt_boundary",
]
