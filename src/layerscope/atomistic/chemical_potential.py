"""The oxygen chemical potential from the Li2O formation enthalpy, and the O2 gas entropy term.

Universal potentials describe the O2 molecule poorly (and CHGNet's energies carry fitted MP2020
anion corrections), so μO is not taken from an O2 molecule. Following the seed study, it is fixed by
the experimental formation enthalpy of Li2O and the potential's own energies of Li metal and Li2O::

    ΔH_f(Li2O) = E(Li2O) - 2 E(Li) - μO   =>   μO = E(Li2O) - 2 E(Li) - ΔH_f(Li2O)

with ΔH_f(Li2O) = -597.9 kJ/mol = -6.197 eV per formula unit (NIST-JANAF, Chase 1998). Errors of
the potential that are common to Li-O bonds in Li2O and in the oxide then cancel in vacancy
formation energies. The vacancy free energy subtracts T·ΔS with ΔS = S°(O2)/2 per released O atom,
S°(O2) from the NIST Shomate equation.

References
----------
M. W. Chase, *NIST-JANAF Thermochemical Tables*, 4th ed., J. Phys. Chem. Ref. Data Monograph 9 (1998).
NIST Chemistry WebBook, SRD 69, "Oxygen" gas-phase thermochemistry (Shomate coefficients).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.build import bulk

from layerscope.atomistic.potentials import Potential, relax
from layerscope.errors import InputError

__all__ = [
    "DH_F_LI2O_EV",
    "OxygenReference",
    "o2_entropy_J_per_mol_K",
    "oxygen_entropy_term_eV",
    "oxygen_chemical_potential",
    "mu_o_from_li2o",
    "lithium_metal",
    "lithium_oxide",
]

#: Experimental standard formation enthalpy of Li2O, eV per formula unit (-597.94 kJ/mol, NIST-JANAF).
_EV_PER_J_PER_MOL = 1.0 / 96485.33212
DH_F_LI2O_EV = -597.94e3 * _EV_PER_J_PER_MOL  # = -6.197 eV

# NIST WebBook Shomate coefficients for O2(g): (T_min, T_max, A, B, C, D, E, G) with t = T/1000 K.
_SHOMATE_O2 = (
    (100.0, 700.0, 31.32234, -20.23531, 57.86644, -36.50624, -0.007374, 246.7945),
    (700.0, 2000.0, 30.03235, 8.772972, -3.988133, 0.788313, -0.741599, 236.1663),
    (2000.0, 6000.0, 20.91111, 10.72071, -2.020498, 0.146449, 9.245722, 237.6185),
)


def o2_entropy_J_per_mol_K(temperature_K: float) -> float:
    """Standard molar entropy S°(O2, gas, 1 bar) from the NIST Shomate equation.

    S° = A ln t + B t + C t²/2 + D t³/3 - E/(2 t²) + G, t = T / 1000 K.

    Parameters
    ----------
    temperature_K : float
        Temperature, 100-6000 K.

    Returns
    -------
    float
        S° in J mol⁻¹ K⁻¹ (205.15 at 298.15 K).
    """
    temperature_K = float(temperature_K)
    for t_min, t_max, a, b, c, d, e, g in _SHOMATE_O2:
        if t_min <= temperature_K <= t_max:
            t = temperature_K / 1000.0
            return a * np.log(t) + b * t + c * t**2 / 2 + d * t**3 / 3 - e / (2 * t**2) + g
    raise InputError(f"temperature_K={temperature_K} is outside the Shomate range 100-6000 K of O2; give a "
                     f"temperature in that range")


def oxygen_entropy_term_eV(temperature_K: float) -> float:
    """T·ΔS per O atom released as ½ O2 gas: T · S°(O2)/2, in eV.

    Parameters
    ----------
    temperature_K : float

    Returns
    -------
    float
        0.319 eV at 300 K.
    """
    return float(temperature_K) * o2_entropy_J_per_mol_K(temperature_K) / 2.0 * _EV_PER_J_PER_MOL


def lithium_metal(*, a_A: float = 3.44) -> Atoms:
    """Body-centred cubic Li (1-atom primitive cell), experimental a = 3.44 Å (78 K)."""
    return bulk("Li", "bcc", a=a_A)


def lithium_oxide(*, a_A: float = 4.61) -> Atoms:
    """Antifluorite Li2O (Fm-3m, 3-atom primitive cell), experimental a = 4.61 Å."""
    return bulk("OLi2", "fluorite", a=a_A)


@dataclass(frozen=True)
class OxygenReference:
    """The oxygen chemical potential computed with one potential.

    Attributes
    ----------
    potential : str
    mu_O_eV : float
        μO = E(Li2O) - 2 E(Li) - ΔH_f(Li2O), eV per O atom.
    energy_Li_eV_per_atom, energy_Li2O_eV_per_fu : float
        Relaxed energies of the references with the same potential.
    dH_f_Li2O_eV : float
        The formation enthalpy used (eV per formula unit).
    a_Li_A, a_Li2O_A : float
        Relaxed cubic lattice parameters (Å): a check that the potential treats the references sanely.
    converged : bool
        Both reference relaxations converged.
    """

    potential: str
    mu_O_eV: float
    energy_Li_eV_per_atom: float
    energy_Li2O_eV_per_fu: float
    dH_f_Li2O_eV: float
    a_Li_A: float
    a_Li2O_A: float
    converged: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dictionary."""
        return asdict(self)


def mu_o_from_li2o(energy_li2o_eV_per_fu: float, energy_li_eV_per_atom: float, *,
                   dH_f_li2o_eV: float = DH_F_LI2O_EV) -> float:
    """μO = E(Li2O) - 2 E(Li) - ΔH_f(Li2O) (all in eV)."""
    return float(energy_li2o_eV_per_fu - 2.0 * energy_li_eV_per_atom - dH_f_li2o_eV)


def oxygen_chemical_potential(
    potential: Potential,
    *,
    dH_f_li2o_eV: float = DH_F_LI2O_EV,
    fmax_eV_per_A: float = 0.01,
    max_steps: int = 200,
) -> OxygenReference:
    """Relax Li metal and Li2O with ``potential`` and return μO from the Li2O formation enthalpy.

    Parameters
    ----------
    potential : Potential
    dH_f_li2o_eV : float
        Formation enthalpy of Li2O, eV per formula unit (default: experiment, -6.197 eV).
    fmax_eV_per_A : float
        Force/stress threshold of the cell relaxations.
    max_steps : int

    Returns
    -------
    OxygenReference
        Raises :class:`~layerscope.errors.ConvergenceError` when a reference does not relax.
    """
    li = relax(lithium_metal(), potential, fmax_eV_per_A=fmax_eV_per_A, max_steps=max_steps,
               relax_cell=True, require_convergence=True, optimizer="BFGS")
    li2o = relax(lithium_oxide(), potential, fmax_eV_per_A=fmax_eV_per_A, max_steps=max_steps,
                 relax_cell=True, require_convergence=True, optimizer="BFGS")
    e_li = li.energy_eV / len(li.atoms)
    e_li2o = li2o.energy_eV / (len(li2o.atoms) / 3)
    # cubic lattice parameter from the primitive-cell volume (bcc: a³/2, fcc: a³/4)
    a_li = float((2 * li.atoms.get_volume() / len(li.atoms)) ** (1 / 3))
    a_li2o = float((4 * li2o.atoms.get_volume() / (len(li2o.atoms) / 3)) ** (1 / 3))
    return OxygenReference(
        potential=potential.name,
        mu_O_eV=mu_o_from_li2o(e_li2o, e_li, dH_f_li2o_eV=dH_f_li2o_eV),
        energy_Li_eV_per_atom=float(e_li),
        energy_Li2O_eV_per_fu=float(e_li2o),
        dH_f_Li2O_eV=float(dH_f_li2o_eV),
        a_Li_A=a_li,
        a_Li2O_A=a_li2o,
        converged=li.converged and li2o.converged,
    )
