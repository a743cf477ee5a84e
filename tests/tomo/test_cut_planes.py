"""A small crack crossing larger ones, cut in pieces by their planes' slabs, is its own plane (``segment.CUT_PLANES``).

Truth: phantoms built with known crack planes (``build_phantom``): the crack voxels themselves through
``planar_sheets``, and clean grey volumes through ``analyse``. Main (``CUT_PLANES`` off) misses the small crack in
each scene; docs/validation.md "tomocross: cracks missed in crossings" (the switch is off by default).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from layerscope.tomo import TomoOptions, analyse, segment
from layerscope.tomo.phantom import CrackSpec, ParticleSpec, PoreSpec, build_phantom
from layerscope.tomo.readers import Volume
from layerscope.tomo.segment import planar_sheets

PARTICLE = ParticleSpec((32, 32, 32), (24, 24, 24))
PORE = PoreSpec(1, 3.5, (8, -12, -12))


def _unit(polar_deg: float, azimuth_deg: float) -> tuple[float, float, float]:
    """Unit normal (z, y, x) at ``polar_deg`` from z and ``azimuth_deg`` about it (from x toward y)."""
    t, p = np.radians(polar_deg), np.radians(azimuth_deg)
    return float(np.cos(t)), float(np.sin(t) * np.sin(p)), float(np.sin(t) * np.cos(p))


def _angle_deg(u, v) -> float:
    return float(np.degrees(np.arccos(min(1.0, abs(float(np.dot(u, v)) / np.linalg.norm(u) / np.linalg.norm(v))))))


def _sheets_of_truth(cracks: list[CrackSpec], *, cut: bool, monkeypatch) -> int:
    """Number of sheets ``planar_sheets`` reads in the crack voxels of a phantom (0: not crossing sheets)."""
    ph = build_phantom((64, 64, 64), [PARTICLE], cracks, [PORE])
    mask = ph.cracks > 0
    half = float(np.percentile(ndi.distance_transform_edt(mask)[mask], 90))
    monkeypatch.setattr(segment, "CUT_PLANES", cut)
    s = planar_sheets(np.argwhere(mask).astype(float), tol=half + 0.5, max_flatness=0.45, min_sheet_voxels=1.5)
    return 0 if s is None else int(s.max()) + 1


@pytest.mark.parametrize("polar_deg, radius", [(45, 5), (60, 5), (75, 6)])
def test_a_small_disc_across_a_larger_crack_is_a_second_plane(polar_deg, radius, monkeypatch):
    """A disc of radius 12 (3 voxels wide) and a small disc (radius 5-6, 2.5 wide, ~200-280 voxels) through its
    centre at 45-75 deg: two crossing sheets. Main reads no crossing (the small disc's pieces left beside the large
    plane's slab are under 3 % of the feature or tilted by its local normals)."""
    cracks = [CrackSpec(1, (0, 0, 1), 3.0, radius_voxels=12), CrackSpec(1, _unit(polar_deg, 30), 2.5, radius_voxels=radius)]
    assert _sheets_of_truth(cracks, cut=True, monkeypatch=monkeypatch) == 2
    assert _sheets_of_truth(cracks, cut=False, monkeypatch=monkeypatch) == 0


def _three(polar_deg: float, azimuth_deg: float) -> list[CrackSpec]:
    """Two discs of radius 20 (3 voxels wide) 62 deg apart and a small disc (radius 7, 2.5 wide, 370-390 voxels:
    4 % of the joint feature) through their common centre at ``polar_deg``/``azimuth_deg``."""
    return [CrackSpec(1, (0, 0, 1), 3.0, radius_voxels=20), CrackSpec(1, _unit(62, 0), 3.0, radius_voxels=20),
            CrackSpec(1, _unit(polar_deg, azimuth_deg), 2.5, radius_voxels=7)]


@pytest.mark.parametrize("polar_deg, azimuth_deg", [(80, 90), (70, 120), (90, 90)])
def test_a_small_disc_across_two_larger_cracks_is_a_third_plane(polar_deg, azimuth_deg, monkeypatch):
    assert _sheets_of_truth(_three(polar_deg, azimuth_deg), cut=True, monkeypatch=monkeypatch) == 3
    assert _sheets_of_truth(_three(polar_deg, azimuth_deg), cut=False, monkeypatch=monkeypatch) == 2


@pytest.mark.parametrize("polar_deg, azimuth_deg", [(80, 90), (70, 120)])
def test_three_crossing_cracks_through_the_analysis(polar_deg, azimuth_deg, monkeypatch):
    """The grey volume of the three-disc scene: three cracks, each truth normal within 5 deg of a crack's, the
    pore a pore, the crack volume fraction within 2 % of the truth; main (``CUT_PLANES`` off) finds two cracks."""
    ph = build_phantom((64, 64, 64), [PARTICLE], _three(polar_deg, azimuth_deg), [PORE])
    vol = Volume(ph.volume, 50.0, labels=False)
    monkeypatch.setattr(segment, "CUT_PLANES", True)
    r = analyse(vol, TomoOptions())
    assert len(r.cracks) == 3 and len(r.pores) == 1
    normals = r.cracks[["normal_z", "normal_y", "normal_x"]].to_numpy()
    for n in ph.crack_truth[["normal_z", "normal_y", "normal_x"]].to_numpy():
        assert min(_angle_deg(n, m) for m in normals) < 5.0
    truth_cvf = float((ph.cracks > 0).sum()) / float(ph.truth["volume_voxels"].sum())
    assert abs(r.summary["crack_volume_fraction"] / truth_cvf - 1) < 0.02
    monkeypatch.setattr(segment, "CUT_PLANES", False)
    assert len(analyse(vol, TomoOptions()).cracks) == 2


def test_cut_planes_are_off_by_default():
    assert segment.CUT_PLANES is False


@pytest.mark.parametrize("radius", [3, 5, 8])
def test_round_pores_give_no_cut_plane(radius, monkeypatch):
    """A ball (radius 3-8) and a ball beside a disc: no plane through pieces left (a ball fills its hull; the disc
    and ball read as no crossing sheets, as on main)."""
    z, y, x = np.mgrid[-20:21, -20:21, -20:21]
    ball = z ** 2 + y ** 2 + x ** 2 <= radius ** 2
    disc = (np.abs(z) <= 1) & (y ** 2 + x ** 2 <= 225)
    monkeypatch.setattr(segment, "CUT_PLANES", True)
    for mask in (ball, ball | disc):
        half = float(np.percentile(ndi.distance_transform_edt(mask)[mask], 90))
        assert planar_sheets(np.argwhere(mask).astype(float), tol=half + 0.5, max_flatness=0.45,
                             min_sheet_voxels=1.5) is None
