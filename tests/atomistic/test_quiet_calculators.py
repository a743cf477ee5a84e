"""The universal potentials' ASE calculators evaluate without third-party warnings reaching the user (API use;
the CLI also silences them): CHGNet's "tensor with requires_grad=True to a scalar" UserWarning came at every
evaluation."""

import warnings

import numpy as np
from ase.build import bulk


def _energy_and_warnings(potential):
    atoms = bulk("Cu", "fcc", a=3.6)
    atoms.calc = potential.calculator()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        energy = atoms.get_potential_energy()
        stress = atoms.get_stress()
    return energy, stress, caught


def test_chgnet_calculator_raises_no_warning(chgnet):
    energy, stress, caught = _energy_and_warnings(chgnet)
    # fcc Cu near its lattice constant: a bound crystal, about -4.1 eV per atom in CHGNet's MP-compatible energies
    assert -5.0 < energy < -3.0
    assert np.all(np.isfinite(stress))
    assert [str(w.message) for w in caught] == []


def test_sevennet_calculator_raises_no_warning(sevennet):
    energy, _, caught = _energy_and_warnings(sevennet)
    assert -5.0 < energy < -3.0
    assert [str(w.message) for w in caught] == []
