"""Offline universal potentials: loading, shared models, relaxation, LiCoO2 lattice parameters."""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.atomistic.potentials import load_potential, relax
from layerscope.atomistic.structures import host_bulk, layered_lattice_parameters
from layerscope.errors import ConvergenceError, InputError

EXP_A, EXP_C = 2.816, 14.05  # LiCoO2, Akimoto et al. (1998)


def test_unknown_potential_and_device():
    with pytest.raises(InputError, match="unknown potential"):
        load_potential("mace-mp-0")
    with pytest.raises(InputError, match="device"):
        load_potential("7net-0", device="tpu")


def test_calculators_share_one_model(chgnet):
    atoms = host_bulk("LiCoO2")
    c1, c2 = chgnet.calculator(), chgnet.calculator()
    assert c1 is not c2 and c1.model is c2.model is chgnet.model
    a1, a2 = atoms.copy(), atoms.copy()
    a1.calc, a2.calc = c1, c2
    assert a1.get_potential_energy() == pytest.approx(a2.get_potential_energy(), abs=1e-6)
    import torch

    assert torch.get_num_threads() == 1


def test_licoo2_lattice_chgnet_within_1p5_percent(licoo2_chgnet):
    a, c = layered_lattice_parameters(licoo2_chgnet.atoms)
    assert a == pytest.approx(EXP_A, rel=0.015)
    assert c == pytest.approx(EXP_C, rel=0.015)
    # Co3+ is low spin in LiCoO2 (0 μB; Co4+ would carry 1 μB): CHGNet keeps Co below 0.5 μB
    co = np.array(licoo2_chgnet.atoms.get_chemical_symbols()) == "Co"
    assert np.abs(licoo2_chgnet.magmoms[co]).max() < 0.5


def test_licoo2_lattice_sevennet_within_1p5_percent(sevennet):
    res = relax(host_bulk("LiCoO2"), sevennet, relax_cell=True, fmax_eV_per_A=0.02, max_steps=200,
                optimizer="BFGS", require_convergence=True)
    a, c = layered_lattice_parameters(res.atoms)
    assert a == pytest.approx(EXP_A, rel=0.015)
    assert c == pytest.approx(EXP_C, rel=0.015)


def test_unconverged_relaxation_is_flagged_or_raised(chgnet):
    atoms = host_bulk("LiCoO2")
    atoms.rattle(0.1, seed=1)
    res = relax(atoms, chgnet, max_steps=1, fmax_eV_per_A=1e-4)
    assert not res.converged and res.steps == 1 and np.isfinite(res.energy_eV)
    with pytest.raises(ConvergenceError, match="did not reach"):
        relax(atoms, chgnet, max_steps=1, fmax_eV_per_A=1e-4, require_convergence=True)
