"""Shared fixtures of the atomistic tests: potentials load once per session (one thread each)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes


@pytest.fixture(scope="session")
def chgnet():
    from layerscope.atomistic.potentials import load_potential

    return load_potential("chgnet-0.3.0", device="cpu", num_threads=1)


@pytest.fixture(scope="session")
def sevennet():
    from layerscope.atomistic.potentials import load_potential

    return load_potential("7net-0", device="cpu", num_threads=1)


@pytest.fixture(scope="session")
def licoo2_chgnet(chgnet):
    """LiCoO2 (12-atom hexagonal cell) relaxed with CHGNet, cell included."""
    from layerscope.atomistic.potentials import relax
    from layerscope.atomistic.structures import host_bulk

    return relax(host_bulk("LiCoO2"), chgnet, relax_cell=True, fmax_eV_per_A=0.02, max_steps=200,
                 optimizer="BFGS", require_convergence=True)


class ElementEnergies(Calculator):
    """E = sum of fixed per-element energies; zero forces and stress (an analytic test potential)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, energies: dict[str, float]):
        super().__init__()
        self.energies = energies

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        e = sum(self.energies[s] for s in self.atoms.get_chemical_symbols())
        self.results = {"energy": e, "free_energy": e, "forces": np.zeros((len(self.atoms), 3)),
                        "stress": np.zeros(6)}


class CalculatorSource:
    """Stands in for a Potential: hands out a fresh calculator per structure."""

    has_magmoms = False

    def __init__(self, name: str, factory):
        self.name = name
        self._factory = factory

    def calculator(self):
        return self._factory()

    def describe(self):
        return {"potential": self.name}


@pytest.fixture(scope="session")
def element_energies():
    """The :class:`ElementEnergies` calculator class."""
    return ElementEnergies


@pytest.fixture(scope="session")
def calculator_source():
    """The :class:`CalculatorSource` class."""
    return CalculatorSource
