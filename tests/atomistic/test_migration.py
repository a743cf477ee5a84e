"""CI-NEB machinery and the oct -> tet -> oct migration geometry."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import add_adsorbate, fcc100
from ase.calculators.emt import EMT
from ase.constraints import FixAtoms, FixCartesian
from ase.geometry import get_distances
from ase.optimize import BFGS

from layerscope.atomistic.migration import migration_endpoints, run_neb
from layerscope.atomistic.potentials import relax
from layerscope.atomistic.structures import host_bulk
from layerscope.errors import InputError


@pytest.fixture(scope="module")
def au_on_al(calculator_source):
    """Au adatom hopping between hollow sites of Al(100) (EMT): end points and the fixed slab atoms."""
    src = calculator_source("EMT", EMT)
    slab = fcc100("Al", size=(2, 2, 3), vacuum=6.0)
    add_adsorbate(slab, "Au", 1.7, "hollow")
    fixed = [a.index for a in slab if a.tag > 1]
    initial = relax(slab, src, fmax_eV_per_A=0.005, fixed_indices=fixed, optimizer="BFGS")
    hop = slab.copy()
    hop.positions[-1, 0] += slab.cell[0, 0] / 2
    final = relax(hop, src, fmax_eV_per_A=0.005, fixed_indices=fixed, optimizer="BFGS")
    return src, initial, final, fixed, slab.cell[0, 0] / 2


def test_ci_neb_barrier_equals_the_symmetric_saddle(au_on_al):
    src, initial, final, fixed, hop = au_on_al
    # independent truth: by symmetry the saddle is the bridge site; relax the adatom there with x fixed
    bridge = initial.atoms.copy()
    bridge.positions[-1, 0] += hop / 2
    bridge.set_constraint([FixAtoms(fixed), FixCartesian(len(bridge) - 1, mask=(True, False, False))])
    bridge.calc = EMT()
    BFGS(bridge, logfile=None).run(fmax=0.002)
    saddle = bridge.get_potential_energy() - initial.energy_eV
    res = run_neb(initial.atoms, final.atoms, src, n_images=3, fixed_indices=fixed, fmax_eV_per_A=0.02)
    assert res.converged
    assert res.barrier_eV == pytest.approx(saddle, abs=0.01)
    assert res.reaction_energy_eV == pytest.approx(0.0, abs=1e-3)
    assert int(np.argmax(res.energies_eV)) == 2  # the climbing image is the middle one of 3
    # a band started through a given point (piecewise + IDPP) reaches the same saddle
    via = run_neb(initial.atoms, final.atoms, src, n_images=3, fixed_indices=fixed, fmax_eV_per_A=0.02,
                  via=(len(initial.atoms) - 1, initial.atoms.positions[-1] + [hop / 2, 0.0, 0.3]))
    assert via.barrier_eV == pytest.approx(saddle, abs=0.01)


def test_unconverged_neb_is_returned_and_flagged(au_on_al):
    src, initial, final, fixed, _ = au_on_al
    res = run_neb(initial.atoms, final.atoms, src, n_images=3, fixed_indices=fixed, max_steps=2)
    assert not res.converged and res.steps == 2
    assert len(res.images) == 5 and np.isfinite(res.energies_eV).all()
    with pytest.raises(InputError, match="same atoms"):
        run_neb(initial.atoms, final.atoms[:-1], src)


def test_endpoints_of_the_co_jump_in_licoo2():
    host = host_bulk("LiCoO2", size=(2, 2, 1))
    ends = migration_endpoints(host, cation="Co")
    m = ends.moving_index
    assert len(ends.initial) == 47 and ends.initial.get_chemical_formula() == "Co12Li11O24"
    # the final state puts the Co on the emptied Li octahedral site (six O at the Li-O bond length 2.09 Å)
    sym = np.array(ends.final.get_chemical_symbols())
    _, d = get_distances(ends.final.positions[m], ends.final.positions[sym == "O"], cell=ends.final.cell, pbc=True)
    np.testing.assert_allclose(np.sort(d[0])[:6], 2.092, atol=0.01)
    # the tetrahedral site sits on the Co column (same x, y), above it, in the Li slab
    tet = ends.tetrahedral_site
    co = ends.initial.positions[m]
    np.testing.assert_allclose(tet[:2], co[:2], atol=1e-6)
    assert co[2] < tet[2] < ends.removed_li_position[2]
    # it shares a face (three O at equal distance) with the Co octahedron
    _, d = get_distances(tet, ends.initial.positions[sym == "O"], cell=ends.initial.cell, pbc=True)
    near = np.sort(d[0])[:4]
    np.testing.assert_allclose(near[:3], near[0], atol=1e-6)
    with pytest.raises(InputError, match="not a transition metal"):
        migration_endpoints(host, cation="Fe")
