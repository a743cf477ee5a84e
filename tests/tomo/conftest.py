"""Shared phantom runs for the tomography tests (built once per session; 64^3 voxels)."""

from __future__ import annotations

import pytest

VOXEL_NM = 50.0
CENTRE_OFFSET_PX = 1.0


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
