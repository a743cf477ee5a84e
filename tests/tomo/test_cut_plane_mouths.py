"""A cut plane (``planar_sheets(cut_planes=True)``, the default) whose voxels left lie in the particle's surface shell is a crack's bridged
mouth, not a crack crossing it (``segment.CUT_MIN_DEPTH``): its voxels count for the coverage but are in no sheet.

Truth: the three-disc scene of test_cut_planes.py (crack voxels with known planes) with a depth given per voxel,
and tuning draw 3040 (one through crack, width 2.3 voxels, whose bridged mouth tomocross's rule read as a second
sheet); docs/validation.md "tomocross2".
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from layerscope.tomo import TomoOptions, analyse, segment
from layerscope.tomo.measure import MOUTH, _surface_sheets
from layerscope.tomo.phantom import CrackSpec, ParticleSpec, PoreSpec, build_phantom, draw_volume, random_phantom
from layerscope.tomo.segment import MOUTH_SHEET, planar_sheets


def _unit(polar_deg: float, azimuth_deg: float) -> tuple[float, float, float]:
    t, p = np.radians(polar_deg), np.radians(azimuth_deg)
    return float(np.cos(t)), float(np.sin(t) * np.sin(p)), float(np.sin(t) * np.cos(p))


def _three_disc_voxels() -> tuple[np.ndarray, np.ndarray, float]:
    """Voxels of two discs of radius 20 (62 deg apart) and a small disc (radius 7) across both at 80/90 deg, the
    truth crack id of each and the planes' tolerance (90th-percentile half width + 0.5 voxel)."""
    cracks = [CrackSpec(1, (0, 0, 1), 3.0, radius_voxels=20), CrackSpec(1, _unit(62, 0), 3.0, radius_voxels=20),
              CrackSpec(1, _unit(80, 90), 2.5, radius_voxels=7)]
    ph = build_phantom((64, 64, 64), [ParticleSpec((32, 32, 32), (24, 24, 24))], cracks,
                       [PoreSpec(1, 3.5, (8, -12, -12))])
    mask = ph.cracks > 0
    half = float(np.percentile(ndi.distance_transform_edt(mask)[mask], 90))
    return np.argwhere(mask).astype(float), ph.cracks[mask], half + 0.5


def _read(coords, tol, depth):
    return planar_sheets(coords, tol=tol, max_flatness=0.45, min_sheet_voxels=1.5, depth=depth, cut_planes=True)


def test_a_cut_plane_in_the_surface_shell_is_a_mouth(monkeypatch):
    """All voxels deep (10 voxels): three sheets, as without a depth. The small disc's voxels in the shell
    (depth 1, as the bridged layer along a surface): two sheets, the same voxels as before, and the third sheet's
    voxels are the mouth (>= 70 % of the small disc's 369 voxels). With ``CUT_MIN_DEPTH`` 0 (tomocross's rule) the
    shallow plane is a third sheet."""
    coords, truth, tol = _three_disc_voxels()
    deep = _read(coords, tol, np.full(len(coords), 10.0))
    assert deep.max() + 1 == 3 and (deep >= 0).all()
    shallow = np.where(truth == 3, 1.0, 10.0)
    s = _read(coords, tol, shallow)
    assert s.max() + 1 == 2
    third = int(np.bincount(deep[truth == 3]).argmax())  # the small disc's own sheet
    assert np.array_equal(s == MOUTH_SHEET, deep == third)
    assert np.mean(s[truth == 3] == MOUTH_SHEET) >= 0.7
    monkeypatch.setattr(segment, "CUT_MIN_DEPTH", 0.0)
    assert _read(coords, tol, shallow).max() + 1 == 3


def test_the_mouth_sheet_is_the_measured_mouth():
    """The mouth index of ``planar_sheets`` is the one ``measure`` leaves out of every sheet, and the surface-shell
    merge keeps it there (a shallow sheet 2 goes to the nearest plane, the mouth voxels stay)."""
    assert MOUTH == MOUTH_SHEET
    z, y = np.mgrid[0:20, 0:20]
    a = np.stack([np.zeros(400), z.ravel(), y.ravel()], 1)  # plane x = 0 (sheet 0)
    b = np.stack([z.ravel(), np.zeros(400), y.ravel()], 1) + [0, 40, 0]  # plane y = 40 (sheet 1)
    c = np.stack([z.ravel(), y.ravel(), np.full(400, 60.0)], 1)  # plane x = 60 (sheet 2, in the shell)
    coords = np.concatenate([a, b, c, c[:10] + [0, 0, 1]])
    sheets = np.r_[np.zeros(400), np.ones(400), np.full(400, 2), np.full(10, MOUTH_SHEET)].astype(np.int64)
    depth = np.r_[np.full(800, 5.0), np.full(410, 1.0)]
    out = _surface_sheets(coords, sheets, depth)
    assert (out[-10:] == MOUTH_SHEET).all() and set(out[:1200]) == {0, 1}


def test_draw_3040_bridged_mouth_is_no_second_crack(monkeypatch):
    """Tuning draw 3040 (grey volume, one through crack 2.3 voxels wide with a bridged mouth): one crack, its mean
    width within 1 voxel of the truth; tomocross's rule (``CUT_MIN_DEPTH`` 0) reads its mouth as a second sheet."""
    ph = random_phantom(3040)
    vol = draw_volume(ph)
    r = analyse(vol, TomoOptions(cut_planes=True))
    assert len(r.cracks) == 1
    assert abs(r.cracks["width_mean_nm"].iloc[0] / r.voxel_size_nm - 2.3) < 1.0
    monkeypatch.setattr(segment, "CUT_MIN_DEPTH", 0.0)
    assert len(analyse(vol, TomoOptions(cut_planes=True)).cracks) == 2
