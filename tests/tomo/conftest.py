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


@pytest.fixture(scope="session")
def assert_cracks_recovered():
    """``check(ph, r, n_cracks, cvf_rel_tol)``: the analysis ``r`` of phantom ``ph`` holds ``n_cracks`` cracks and one
    pore, every truth crack's normal within 5 deg of a found crack's, and the crack volume fraction within
    ``cvf_rel_tol`` (relative) of the truth's."""
    import numpy as np

    def angle_deg(u, v) -> float:
        cos = abs(float(np.dot(u, v)) / np.linalg.norm(u) / np.linalg.norm(v))
        return float(np.degrees(np.arccos(min(1.0, cos))))

    def check(ph, r, n_cracks: int, cvf_rel_tol: float) -> None:
        assert len(r.cracks) == n_cracks and len(r.pores) == 1
        normals = r.cracks[["normal_z", "normal_y", "normal_x"]].to_numpy()
        for n in ph.crack_truth[["normal_z", "normal_y", "normal_x"]].to_numpy():
            assert min(angle_deg(n, m) for m in normals) < 5.0
        truth_cvf = float((ph.cracks > 0).sum()) / float(ph.truth["volume_voxels"].sum())
        assert abs(r.summary["crack_volume_fraction"] / truth_cvf - 1) < cvf_rel_tol

    return check
