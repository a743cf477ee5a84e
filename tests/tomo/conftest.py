"""Shared phantom runs for the tomography tests (built once per session; 64^3 voxels)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

VOXEL_NM = 50.0
CENTRE_OFFSET_PX = 1.0
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="session")
def load_script():
    """``load_script(name)``: the module of ``scripts/NAME.py`` (the scripts folder put on ``sys.path`` for the
    scripts' own imports of each other)."""
    def load(name: str):
        if str(SCRIPTS) not in sys.path:
            sys.path.insert(0, str(SCRIPTS))
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    return load


@pytest.fixture(scope="session")
def phantom():
    from layerscope.tomo import default_phantom

    return default_phantom(64, seed=0)


@pytest.fixture(scope="session")
def phantom_projections(phantom):
    from layerscope.tomo import project_phantom

    return project_phantom(phantom.volume, n_angles=120, photons=1e5, centre_offset_px=CENTRE_OFFSET_PX,
                           pixel_size_nm=VOXEL_NM, seed=1)


@pytest.fixture(scope="session")
def phantom_result(phantom_projections):
    from layerscope.tomo import TomoOptions, analyse

    return analyse(phantom_projections, TomoOptions())


def _slab_envelopes_equal_whole(solid, radius: int = 3, slab: int = 4) -> bool:
    """Whether ``segment.closed_envelope`` of ``slab``-slice slabs, each with ``envelope_reach(radius)``
    slices of halo, equals the envelope of the whole array slice for slice (the out-of-core contract)."""
    import numpy as np

    from layerscope.tomo import segment

    whole = segment.closed_envelope(solid, radius)
    h = segment.envelope_reach(radius)
    for z0 in range(0, solid.shape[0], slab):
        a = max(0, z0 - h)
        part = segment.closed_envelope(solid[a:z0 + slab + h], radius)[z0 - a:z0 - a + slab]
        if not np.array_equal(part, whole[z0:z0 + slab]):
            return False
    return True


@pytest.fixture
def slab_envelopes_equal_whole():
    """:func:`_slab_envelopes_equal_whole`, for tests of the envelope's slab halo."""
    return _slab_envelopes_equal_whole
