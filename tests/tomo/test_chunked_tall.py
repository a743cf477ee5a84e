"""A particle as tall as the volume in a cluster as wide as it, measured out of core in slabs (issue 20, tomomem):
its measurement must not hold a cut of the volume's height and the cluster's width, and must give the in-memory
numbers."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from layerscope.tomo import TomoOptions, Volume, analyse

SHAPE = (96, 48, 48)  # z, y, x (voxels)
SLAB = 8  # z slices per slab
MARGIN = 12  # chunked.MARGIN (= max(MARGIN, close + 3) for the default closing)


def _tall_volume() -> np.ndarray:
    """A label volume (1: particle): a cylinder of radius 5 along z through the whole volume (y, x = 24, 8) with a
    disc crack (radius 3, 2 slices thick, z 40-41) inside it, and at z = 20, 48 and 76 a row of balls of radius 6
    along x from the cylinder to the far face (centres x = 19, 30, 41; 11 apart: necks of radius 2.4, split by
    the watershed), so one cluster spans the volume in z and x while the cylinder is 11 voxels wide."""
    z, y, x = np.indices(SHAPE)
    vol = ((y - 24) ** 2 + (x - 8) ** 2 <= 25)
    for zc in (20, 48, 76):
        for xc in (19, 30, 41):
            vol |= (z - zc) ** 2 + (y - 24) ** 2 + (x - xc) ** 2 <= 36
    vol &= ~((np.abs(z - 40.5) <= 1) & ((y - 24) ** 2 + (x - 8) ** 2 <= 9))
    return vol.astype(np.uint8)


def _same(a, b) -> None:
    """Exactly equal tables and labels (no tolerance)."""
    for name in ("particles", "cracks", "pores"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name), check_exact=True)
    assert np.array_equal(np.asarray(a.particle_labels), np.asarray(b.particle_labels))
    assert np.array_equal(np.asarray(a.feature_labels), np.asarray(b.feature_labels))


def test_box_tall_particle_in_slabs_is_measured_on_its_own_box():
    """:func:`_box_tall_check` in a fresh interpreter: ``tracemalloc`` traces every thread of the process, and
    threads left by earlier tests on the same pytest worker (a scheduler's, a cluster's event loop) put their
    allocations in the task's peak (CI, session 33: 53 MiB after the tomography modules, 4.3 MiB alone)."""
    code = ("import importlib.util, pytest; spec = importlib.util.spec_from_file_location('tall', %r); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
            "mp = pytest.MonkeyPatch(); m._box_tall_check(mp); mp.undo()" % __file__)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _box_tall_check(monkeypatch) -> None:
    """Slabs of 8 slices, the cluster (96 x 48 x 48 box) split and measured by groups (``MAX_CLUSTER_VOXELS`` 20^3):
    the cylinder (taller than ``chunked.TALL_SLABS`` = 2 slabs) is measured alone on its own box with the 12-voxel
    margin (96 x 35 x 27 = 90 720 voxels; main measured it on a cut of the volume's height and the cluster's width,
    96 x 37 x 48 = 170 496), the balls by slab groups (37 x 37 x 48 = 65 712), and the peak memory traced
    (``tracemalloc``) in any measurement task stays below 6 MiB (main: 8.1 MiB in the cylinder's cut; this branch:
    4.3 MiB, docs/validation.md "tomomem"); the tables and labels equal the in-memory analysis exactly (10
    particles, 1 crack)."""
    import layerscope.tomo.chunked as chunked

    task, cuts, peaks = chunked._slab_group_task, [], []

    def spy(item, **kwargs):
        cuts.append((tuple(s.stop - s.start for s in item[0]), list(item[1])))
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        out = task(item, **kwargs)
        peaks.append((tracemalloc.get_traced_memory()[1] - base) / 2 ** 20)
        return out

    monkeypatch.setattr(chunked, "_slab_group_task", spy)
    monkeypatch.setattr(chunked, "MAX_CLUSTER_VOXELS", 20 ** 3)
    opts = dict(particle_label=1, min_particle_voxels=50, crack_max_width_nm=150.0)
    vol = Volume(_tall_volume(), 50.0, labels=True)
    here = analyse(vol, TomoOptions(**opts))
    tracemalloc.start()
    try:
        there = analyse(vol, TomoOptions(out_of_core=True, slab_slices=SLAB, **opts), scheduler="sync")
    finally:
        tracemalloc.stop()
    assert len(here.particles) == 10 and len(here.cracks) == 1, (len(here.particles), len(here.cracks))
    _same(here, there)
    assert max(peaks) < 6.0, peaks  # MiB
    box = [(s.start, s.stop) for s in ndi.find_objects((np.asarray(there.particle_labels) == 1).astype(np.uint8))[0]]
    assert box[0] == (0, 96) and box[1] == (19, 30), box  # the cylinder: as tall as the volume, 11 wide in y
    own = tuple(min(n, b + MARGIN) - max(0, a - MARGIN) for (a, b), n in zip(box, SHAPE))
    assert [size for size, pids in cuts if pids == [1]] == [own], cuts  # its own box with the margin, alone
    assert all(size[0] <= 3 * SLAB + 2 * MARGIN for size, pids in cuts if pids != [1]), cuts
    assert max(int(np.prod(size)) for size, _ in cuts) < 100_000, cuts
