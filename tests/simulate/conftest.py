"""Fixtures of the simulator tests."""

from __future__ import annotations

import pytest
from ase import Atoms

from simulate_cells import licoo2_100_cell


@pytest.fixture
def licoo2_cell() -> Atoms:
    return licoo2_100_cell()
