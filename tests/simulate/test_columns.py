"""Ground-truth column tables against the analytic projection of LiCoO2 [100] (R-3m Wyckoff positions)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ase import Atoms

from simulate_cells import A_HEX, C_HEX, Z_O
from layerscope.errors import InputError
from layerscope.simulate import COLUMN_FIELDS, project_columns

PM = 1e-3  # nm


def analytic_licoo2_100_columns() -> pd.DataFrame:
    """Projected columns of LiCoO2 along [100] from the R-3m Wyckoff positions, in nm.

    Hexagonal fractional (u, v, w) maps to the [100] view as x = (v / 2 mod 1) a sqrt(3) and y = w c;
    the view cell holds v and v + 1, i.e. two columns per Wyckoff position and centring vector.
    """
    centring = [(0, 0, 0), (2 / 3, 1 / 3, 1 / 3), (1 / 3, 2 / 3, 2 / 3)]
    basis = [("Li", 0.0), ("Co", 0.5), ("O", Z_O), ("O", -Z_O)]
    rows = []
    for symbol, w0 in basis:
        for _, tv, tw in centring:
            w = (w0 + tw) % 1.0
            for extra in (0.0, 1.0):
                x = ((tv + extra) / 2 % 1.0) * A_HEX * np.sqrt(3)
                rows.append((x / 10, w * C_HEX / 10, symbol))
    return pd.DataFrame(rows, columns=["x_nm", "y_nm", "symbol"])


def match(table: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    """Distance (nm) from each truth column to the nearest table column."""
    d = np.hypot(table.x_nm.to_numpy()[None, :] - truth.x_nm.to_numpy()[:, None],
                 table.y_nm.to_numpy()[None, :] - truth.y_nm.to_numpy()[:, None])
    return d.min(axis=1), d.argmin(axis=1)


def test_positions_equal_the_analytic_projection_to_1_pm(licoo2_cell):
    table = project_columns(licoo2_cell.repeat((1, 1, 3)))
    truth = analytic_licoo2_100_columns()
    assert list(table.columns) == list(COLUMN_FIELDS)
    assert len(table) == len(truth) == 24
    dist, nearest = match(table, truth)
    assert dist.max() < 1 * PM
    assert len(set(nearest)) == 24  # one-to-one
    # kinds and compositions follow the species of the Wyckoff site; 3 atoms per column along the beam
    kinds = table.kind.to_numpy()[nearest]
    np.testing.assert_array_equal(kinds, truth.symbol.map({"Li": "Li", "Co": "TM", "O": "O"}).to_numpy())
    np.testing.assert_array_equal(table.composition.to_numpy()[nearest], (truth.symbol + "3").to_numpy())
    assert (table.n_atoms == 3).all()


def test_positions_equal_the_builders_atoms_to_1_pm(licoo2_cell):
    table = project_columns(licoo2_cell)
    xy = licoo2_cell.positions[:, :2] / 10
    d = np.hypot(table.x_nm.to_numpy()[None, :] - xy[:, 0, None], table.y_nm.to_numpy()[None, :] - xy[:, 1, None])
    assert d.min(axis=1).max() < 1 * PM


def test_expected_intensity_is_sum_of_z_to_the_n(licoo2_cell):
    atoms = licoo2_cell.repeat((1, 1, 4))
    table = project_columns(atoms, z_exponent=1.7)
    by_kind = table.groupby("kind").expected_intensity.agg(["min", "max"])
    for kind, z in (("Li", 3), ("TM", 27), ("O", 8)):
        np.testing.assert_allclose(by_kind.loc[kind].to_numpy(), 4 * z**1.7, rtol=1e-12)
    table2 = project_columns(atoms, z_exponent=2.0)
    np.testing.assert_allclose(table2.expected_intensity.max(), 4 * 27**2.0, rtol=1e-12)


def test_mixing_truth_counts_tm_atoms_on_li_columns(licoo2_cell):
    atoms = licoo2_cell.repeat((1, 1, 4))
    li = np.flatnonzero(atoms.symbols == "Li")
    # put Ni on 1 of the 4 Li sites of the first Li column: the site label stays "Li"
    x0, y0 = atoms.positions[li[0], :2]
    same = li[np.hypot(*(atoms.positions[li, :2] - [x0, y0]).T) < 1e-6]
    assert same.size == 4
    atoms.numbers[same[0]] = 28
    table = project_columns(atoms)
    row = table.loc[np.hypot(table.x_nm - x0 / 10, table.y_nm - y0 / 10).idxmin()]
    assert row.kind == "Li"
    assert row.composition == "Li3Ni1"
    assert row.tm_fraction == pytest.approx(0.25, abs=1e-12)
    np.testing.assert_allclose(row.expected_intensity, 3 * 3**1.7 + 28**1.7, rtol=1e-12)
    assert (table.drop(index=row.name).query("kind == 'Li'").tm_fraction == 0).all()
    assert (table.query("kind == 'TM'").tm_fraction == 1).all()


def test_periodic_tiling_fills_the_field(licoo2_cell):
    w, h = licoo2_cell.cell[0, 0] / 10, licoo2_cell.cell[1, 1] / 10
    table = project_columns(licoo2_cell, field_nm=(2 * w, 3 * h))
    unit = project_columns(licoo2_cell)
    assert len(table) == 6 * len(unit)
    shifted = pd.concat([unit.assign(x_nm=unit.x_nm + i * w, y_nm=unit.y_nm + j * h)
                         for i in range(2) for j in range(3)])
    dist, _ = match(table, shifted)
    assert dist.max() < 1 * PM


def test_displaced_atoms_average_within_tolerance_and_wrap_at_the_cell_edge():
    # two atoms 5 pm either side of the periodic edge x = 0 form one column centred on the edge
    atoms = Atoms("Ni2", positions=[[0.05, 3.0, 0.0], [-0.05, 3.0, 2.0]], cell=[6.0, 6.0, 4.0], pbc=True)
    table = project_columns(atoms, tolerance_nm=0.02)
    assert len(table) == 1
    assert min(table.x_nm[0], 0.6 - table.x_nm[0]) < 1e-6
    assert table.y_nm[0] == pytest.approx(0.3, abs=1e-9)
    assert table.attrs["labels_inferred"] == ["site", "phase", "layer"]
    assert table.kind[0] == "TM" and table.phase[0] == "unlabelled"
    # 30 pm apart with a 20 pm tolerance: two columns
    atoms.positions[1, 0] = 0.3
    assert len(project_columns(atoms, tolerance_nm=0.02)) == 2


def test_bad_inputs_raise_input_error(licoo2_cell):
    with pytest.raises(InputError, match="tolerance_nm"):
        project_columns(licoo2_cell, tolerance_nm=0)
    oblique = Atoms("Co", positions=[[0, 0, 0]], cell=[[3, 0, 0], [1.5, 2.6, 0], [0, 0, 3]], pbc=False)
    with pytest.raises(InputError, match="field_nm"):
        project_columns(oblique)
    with pytest.raises(InputError, match="ase.Atoms"):
        project_columns(np.zeros((3, 3)))
    bad = licoo2_cell.copy()
    bad.arrays["site"] = np.full(len(bad), "X")
    with pytest.raises(InputError, match="site kinds"):
        project_columns(bad)
