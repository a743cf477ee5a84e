"""A small crack crossing larger ones, cut in pieces by their planes' slabs, is its own plane (``cut_planes``).

Truth: phantoms built with known crack planes (``build_phantom``): the crack voxels themselves through
``planar_sheets``, and clean grey volumes through ``analyse``. Without the cut planes (``cut_planes=False``, CLI
``--no-cut-planes``) the small crack in each scene is missed; docs/validation.md "tomocross: cracks missed in
crossings"; on by default since "tomocut".
"""

from __future__ import annotations

import inspect
import json

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


def _sheets_of_truth(cracks: list[CrackSpec], *, cut: bool) -> int:
    """Number of sheets ``planar_sheets`` reads in the crack voxels of a phantom (0: not crossing sheets)."""
    ph = build_phantom((64, 64, 64), [PARTICLE], cracks, [PORE])
    mask = ph.cracks > 0
    half = float(np.percentile(ndi.distance_transform_edt(mask)[mask], 90))
    s = planar_sheets(np.argwhere(mask).astype(float), tol=half + 0.5, max_flatness=0.45, min_sheet_voxels=1.5,
                      cut_planes=cut)
    return 0 if s is None else int(s.max()) + 1


@pytest.mark.parametrize("polar_deg, radius", [(45, 5), (60, 5), (75, 6)])
def test_a_small_disc_across_a_larger_crack_is_a_second_plane(polar_deg, radius):
    """A disc of radius 12 (3 voxels wide) and a small disc (radius 5-6, 2.5 wide, ~200-280 voxels) through its
    centre at 45-75 deg: two crossing sheets. Main reads no crossing (the small disc's pieces left beside the large
    plane's slab are under 3 % of the feature or tilted by its local normals)."""
    cracks = [CrackSpec(1, (0, 0, 1), 3.0, radius_voxels=12), CrackSpec(1, _unit(polar_deg, 30), 2.5, radius_voxels=radius)]
    assert _sheets_of_truth(cracks, cut=True) == 2
    assert _sheets_of_truth(cracks, cut=False) == 0


def _three(polar_deg: float, azimuth_deg: float) -> list[CrackSpec]:
    """Two discs of radius 20 (3 voxels wide) 62 deg apart and a small disc (radius 7, 2.5 wide, 370-390 voxels:
    4 % of the joint feature) through their common centre at ``polar_deg``/``azimuth_deg``."""
    return [CrackSpec(1, (0, 0, 1), 3.0, radius_voxels=20), CrackSpec(1, _unit(62, 0), 3.0, radius_voxels=20),
            CrackSpec(1, _unit(polar_deg, azimuth_deg), 2.5, radius_voxels=7)]


@pytest.mark.parametrize("polar_deg, azimuth_deg", [(80, 90), (70, 120), (90, 90)])
def test_a_small_disc_across_two_larger_cracks_is_a_third_plane(polar_deg, azimuth_deg):
    assert _sheets_of_truth(_three(polar_deg, azimuth_deg), cut=True) == 3
    assert _sheets_of_truth(_three(polar_deg, azimuth_deg), cut=False) == 2


@pytest.mark.parametrize("polar_deg, azimuth_deg", [(80, 90), (70, 120)])
def test_three_crossing_cracks_through_the_analysis(assert_cracks_recovered, polar_deg, azimuth_deg):
    """The grey volume of the three-disc scene with the default options: three cracks, each truth normal within
    5 deg of a crack's, the pore a pore, the crack volume fraction within 2 % of the truth; without the cut planes
    (``cut_planes=False``) two cracks."""
    ph = build_phantom((64, 64, 64), [PARTICLE], _three(polar_deg, azimuth_deg), [PORE])
    vol = Volume(ph.volume, 50.0, labels=False)
    r = analyse(vol, TomoOptions())
    assert_cracks_recovered(ph, r, 3, 0.02)
    assert len(analyse(vol, TomoOptions(cut_planes=False)).cracks) == 2


def test_cut_planes_are_on_by_default():
    """The default options, ``planar_sheets``' default and the CLI's agree: cut planes on (docs/validation.md
    "tomocut"); the module no longer holds a switch read at run time."""
    assert TomoOptions().cut_planes is True
    assert inspect.signature(planar_sheets).parameters["cut_planes"].default is True
    assert not hasattr(segment, "CUT_PLANES")


@pytest.mark.parametrize("radius", [3, 5, 8])
def test_round_pores_give_no_cut_plane(radius):
    """A ball (radius 3-8) and a ball beside a disc: no plane through pieces left (a ball fills its hull; the disc
    and ball read as no crossing sheets, as on main)."""
    z, y, x = np.mgrid[-20:21, -20:21, -20:21]
    ball = z ** 2 + y ** 2 + x ** 2 <= radius ** 2
    disc = (np.abs(z) <= 1) & (y ** 2 + x ** 2 <= 225)
    for mask in (ball, ball | disc):
        half = float(np.percentile(ndi.distance_transform_edt(mask)[mask], 90))
        assert planar_sheets(np.argwhere(mask).astype(float), tol=half + 0.5, max_flatness=0.45,
                             min_sheet_voxels=1.5, cut_planes=True) is None


@pytest.mark.parametrize("extra", [[], ["--out-of-core", "--slab-slices", "16"]])
def test_no_cut_planes_option_reaches_the_search(tmp_path, extra, capsys):
    """``layerscope tomo`` on the three-disc scene (80/90 deg), in memory and out of core: three cracks by default,
    two with ``--no-cut-planes`` (the small disc missed, as without the cut planes); summary.json and the
    provenance's options record the setting."""
    from layerscope.cli import run
    from layerscope.tomo.outputs import write_volume

    ph = build_phantom((64, 64, 64), [PARTICLE], _three(80, 90), [PORE])
    path = write_volume(ph.volume, 50.0, tmp_path / "three.tif")
    for flag, n_cracks in (([], 3), (["--no-cut-planes"], 2)):
        out = tmp_path / f"out{len(flag)}"
        assert run(["tomo", str(path), "--volume", "--out", str(out)] + flag + extra) == 0
        s = json.loads((out / "summary.json").read_text())
        assert s["n_cracks"] == n_cracks and s["cut_planes"] is (not flag)
        prov = json.loads((out / "provenance.json").read_text())
        assert prov["parameters"]["options"]["cut_planes"] is (not flag)
