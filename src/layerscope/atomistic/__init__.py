"""Atomistic modelling of layered-oxide degradation with offline universal potentials.

* :mod:`.potentials` — CHGNet 0.3.0 and SevenNet (7net-0, 7net-l3i5) as ASE calculators, one per
  structure sharing one model; :func:`~.potentials.relax`.
* :mod:`.structures` — bulk hosts (from :mod:`layerscope.crystal`), Ewald-ordered delithiation and
  NMC decoration, the Σ3 twin and repaired Σ7/Σ13 [0001] tilt boundaries, planar gliding.
* :mod:`.chemical_potential` — μO from the Li2O formation enthalpy, the O2 entropy term.
* :mod:`.options` — :class:`~.options.VacancyOptions` and :class:`~.options.NEBOptions`, the frozen,
  validated options of ``layerscope atomistic vacancies`` and ``layerscope atomistic neb``.
* :mod:`.vacancies` — O-vacancy formation free energies per site (bulk and boundaries).
* :mod:`.migration` — CI-NEB oct -> tet -> oct cation migration barriers against gliding.
* :mod:`.to_image` — a relaxed boundary model imaged edge-on with the foundation HAADF simulator.

Lengths in Å and energies in eV inside this package (ASE's units); images are in nm.
"""

from layerscope.atomistic.chemical_potential import OxygenReference, oxygen_chemical_potential
from layerscope.atomistic.options import NEBOptions, VacancyOptions
from layerscope.atomistic.potentials import POTENTIALS, Potential, RelaxResult, load_potential, relax
from layerscope.atomistic.structures import (
    apply_gliding,
    boundary_distance,
    delithiate,
    host_bulk,
    tilt_boundary,
    twin_boundary,
)

__all__ = [
    "VacancyOptions",
    "NEBOptions",
    "POTENTIALS",
    "Potential",
    "RelaxResult",
    "load_potential",
    "relax",
    "OxygenReference",
    "oxygen_chemical_potential",
    "host_bulk",
    "delithiate",
    "twin_boundary",
    "tilt_boundary",
    "apply_gliding",
    "boundary_distance",
]
