"""A feature read as a pore is read again below the particle's surface shell (docs/validation.md "tomomouth2").

Where the envelope closing bridges a crack's mouth, the dark voxels it takes in along the particle surface join
the crack's feature as a thick rim that makes it look round (a pore). The voxels at least
:data:`~layerscope.tomo.measure.SURFACE_SHELL` deep are read again: a crack there is one crack, a round pore
stays a pore. Truth: features built voxel by voxel in a ball-shaped particle (radius 20, depth = distance to its
surface), and grey phantoms with a pore just under the surface analysed whole.
"""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.tomo import TomoOptions, analyse
from layerscope.tomo.measure import MOUTH, SURFACE_SHELL, _below_shell, _sheets
from layerscope.tomo.phantom import ParticleSpec, PoreSpec, build_phantom
from layerscope.tomo.readers import Volume
from layerscope.tomo.segment import feature_shape

SHAPE, CENTRE, RADIUS = (48, 48, 48), np.array([23.5, 23.5, 23.5]), 20.0


def _grid():
    g = np.indices(SHAPE).astype(float)
    return g, RADIUS - np.sqrt(((g - CENTRE[:, None, None, None]) ** 2).sum(axis=0))  # depth in the particle


def _read(m, depth):
    """The feature's reading as ``measure.measure_features`` makes it: sheets, or None for a pore."""
    coords = np.argwhere(m).astype(float)
    sheets = _sheets(m, coords, feature_shape(coords), TomoOptions(), depth[m])
    return coords, sheets, None if sheets is not None else _below_shell(m, coords, TomoOptions(), depth[m])


@pytest.mark.parametrize("noise_seed", [None, 0, 1, 2])
def test_a_round_pore_under_the_surface_stays_a_pore(noise_seed):
    # A ball of radius 5 whose top voxel row lies in the surface shell (centre 5.5 deep); with noise, a random
    # third of its surface voxels removed and as many outside voxels added (a ragged pore).
    g, depth = _grid()
    c = CENTRE + [0, 0, RADIUS - 5.5]
    r = np.sqrt(((g - c[:, None, None, None]) ** 2).sum(axis=0))
    m = r <= 5.0
    if noise_seed is not None:
        rng = np.random.default_rng(noise_seed)
        rim_in, rim_out = np.argwhere(m & (r > 4.0)), np.argwhere(~m & (r <= 6.0) & (depth > 0))
        for pts, value in ((rim_in, False), (rim_out, True)):
            pick = pts[rng.choice(len(pts), len(rim_in) // 3, replace=False)]
            m[tuple(pick.T)] = value
    assert 0.05 < (depth[m] < SURFACE_SHELL).mean() < 0.5  # the case read again: partly in the shell
    _, sheets, below = _read(m, depth)
    assert sheets is None and below is None


@pytest.mark.parametrize("tilt_deg, as_pore", [(0.0, False), (20.0, True), (35.0, True)])
def test_a_crack_with_a_thick_surface_rim_is_one_crack(tilt_deg, as_pore):
    # A disc crack 3 voxels thick (radius 12, centre 10 voxels from the particle's centre) reaching the surface,
    # with the shell voxels (depth < 1.5) within 8 voxels of its plane around its mouth dark too (the bridged
    # mouth). Tilted 20 or 35 deg the whole is read as a pore (``as_pore``: the case read again), upright as one
    # crack already; either way the reading is one crack, its plane (its sheet's voxels) within 5 deg; read again, the
    # rim's voxels beyond the plane's slab are the mouth (docs/validation.md "Tomography after session 20's merges").
    g, depth = _grid()
    t = np.radians(tilt_deg)
    n = np.array([np.cos(t), 0.0, np.sin(t)])
    p0 = CENTRE + [0, 10, 0]
    d = np.tensordot(n, g - p0[:, None, None, None], axes=1)  # signed distance from the plane
    inplane = ((g - p0[:, None, None, None]) ** 2).sum(axis=0) - d ** 2
    disc = (np.abs(d) <= 1.0) & (inplane <= 12.0 ** 2) & (depth >= 0)
    rim = (np.abs(d) <= 8.0) & (inplane <= 13.0 ** 2) & (depth >= 0) & (depth < 1.5)
    m = disc | rim
    coords, sheets, below = _read(m, depth)
    assert (sheets is None) == as_pore
    reading = below if as_pore else sheets
    assert reading is not None and set(np.unique(reading)) <= {0, MOUTH} and (reading == 0).any()
    # Shell voxels beyond the plane's slab (the bridged rim) are the mouth: in no sheet, all in the shell.
    assert (depth[m][reading == MOUTH] < SURFACE_SHELL).all()
    normal = feature_shape(coords[reading == 0])["normal"]  # the crack row's normal: the sheet's voxels
    assert np.degrees(np.arccos(min(1.0, abs(float(normal @ n))))) < 5.0


@pytest.mark.parametrize("noise", [0.0, 0.15])
def test_a_pore_just_under_the_surface_of_a_grey_particle_stays_a_pore(noise):
    # A round pore (radius 4) whose top is 1.5 voxels under the particle's surface, analysed as a grey volume with
    # and without Gaussian noise (sigma as a share of the particle's grey level): one pore, no crack. (Its
    # segmented voxels lie 2 or more voxels deep without noise, 6 of 220 in the shell with it: read again then.
    # 1 voxel under the surface the closing takes it into the outside, on main too: no pore.)
    ph = build_phantom((64, 64, 64), [ParticleSpec((32, 32, 32), (24, 24, 24))], [],
                       [PoreSpec(1, 4.0, (0, 0, 24 - 5.5))])
    vol = ph.volume + np.random.default_rng(0).normal(0, noise * ph.volume.max(), ph.volume.shape).astype(ph.volume.dtype)
    r = analyse(Volume(vol, 50.0, labels=False), TomoOptions())
    assert (len(r.particles), len(r.cracks), len(r.pores)) == (1, 0, 1)


def test_a_feature_read_again_below_the_shell_in_slabs(tmp_path):
    # Draw 35 of the random draws (64^3 grey): its two surface cracks, read as pores before, are read again below the
    # shell (3 cracks, truth 3); out of core, in slabs of 9 slices, the tables and labels are exactly the in-memory ones.
    import pandas as pd

    from layerscope.tomo.phantom import draw_volume, random_phantom

    vol = draw_volume(random_phantom(35))  # a grey volume (Volume)
    here = analyse(vol, TomoOptions())
    assert (len(here.cracks), len(here.pores)) == (3, 1)
    there = analyse(vol, TomoOptions(out_of_core=True, slab_slices=9), scheduler="threads", scratch_dir=tmp_path)
    for name in ("particles", "cracks", "pores"):
        pd.testing.assert_frame_equal(getattr(here, name), getattr(there, name), check_exact=True)
    assert np.array_equal(np.asarray(here.feature_labels), np.asarray(there.feature_labels))
