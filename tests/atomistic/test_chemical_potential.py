"""μO from the Li2O formation enthalpy and the O2 entropy term."""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.atomistic.chemical_potential import (
    DH_F_LI2O_EV,
    mu_o_from_li2o,
    o2_entropy_J_per_mol_K,
    oxygen_chemical_potential,
    oxygen_entropy_term_eV,
)
from layerscope.errors import InputError


@pytest.mark.parametrize("temperature_K, janaf", [(298.15, 205.147), (300.0, 205.329), (500.0, 220.693),
                                                  (1000.0, 243.578)])
def test_o2_entropy_matches_nist_janaf(temperature_K, janaf):
    # NIST-JANAF tabulated S°(O2) (J/mol/K); the Shomate fit reproduces it to < 0.05 J/mol/K
    assert o2_entropy_J_per_mol_K(temperature_K) == pytest.approx(janaf, abs=0.05)


def test_entropy_term_at_300K():
    # T S°/2 per O atom: 300 K * 205.329 J/mol/K / 2 / 96485.33 J/mol/eV = 0.31922 eV
    assert oxygen_entropy_term_eV(300.0) == pytest.approx(300 * 205.329 / 2 / 96485.33, abs=2e-4)
    with pytest.raises(InputError, match="Shomate range"):
        o2_entropy_J_per_mol_K(50.0)


def test_formation_enthalpy_constant():
    # -597.94 kJ/mol (NIST-JANAF) = -6.197 eV per Li2O
    assert DH_F_LI2O_EV == pytest.approx(-6.197, abs=1e-3)


def test_mu_o_bookkeeping_with_analytic_energies(element_energies, calculator_source):
    # E = n_Li * e_Li + n_O * e_O exactly -> E(Li2O) - 2E(Li) = e_O, so μO = e_O - ΔHf
    e_li, e_o = -1.9, -7.3
    src = calculator_source("analytic", lambda: element_energies({"Li": e_li, "O": e_o}))
    ref = oxygen_chemical_potential(src, dH_f_li2o_eV=-6.197)
    assert ref.mu_O_eV == pytest.approx(e_o + 6.197, abs=1e-9)
    assert ref.energy_Li_eV_per_atom == pytest.approx(e_li, abs=1e-9)
    assert ref.energy_Li2O_eV_per_fu == pytest.approx(2 * e_li + e_o, abs=1e-9)
    # no stress: the cubic cells keep their experimental lattice parameters
    assert ref.a_Li_A == pytest.approx(3.44, abs=1e-6)
    assert ref.a_Li2O_A == pytest.approx(4.61, abs=1e-6)
    assert mu_o_from_li2o(-14.0, -2.0, dH_f_li2o_eV=-6.0) == pytest.approx(-4.0)


def test_chgnet_and_sevennet_mu_o_differ_by_the_mp2020_oxide_correction(chgnet, sevennet):
    # CHGNet learned MP2020-corrected energies, SevenNet raw PBE: in μO = E(Li2O) - 2E(Li) - ΔHf the
    # only difference is the fitted oxide correction, -0.687 eV/O (Wang et al., Sci. Rep. 11, 15496 (2021)).
    mu_c = oxygen_chemical_potential(chgnet).mu_O_eV
    mu_s = oxygen_chemical_potential(sevennet).mu_O_eV
    assert mu_c - mu_s == pytest.approx(-0.687, abs=0.1)
    # and the PBE-referenced μO sits ~0.7 eV above half the PBE O2 energy (-4.93 eV), the known O2 overbinding
    assert mu_s == pytest.approx(-4.93 + 0.70, abs=0.2)
    assert np.isfinite(mu_c)
