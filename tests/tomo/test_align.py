"""Shifted projection series (stage drift, jitter): the shift check and flag, ``--align xcorr``, chunks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from layerscope.cli import run
from layerscope.tomo import align
from layerscope.tomo.recon import ReconOptions, reconstruct, transmission

N_ANGLES = 90
JITTER_PX = 2.0


def _jitter(n: int, rms_px: float, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """White jitter, ``rms_px`` RMS on each axis, less what a moved sample would give."""
    angles = np.linspace(0.0, 180.0, n, endpoint=False)
    dy, dx = align.unobservable_removed(*np.random.default_rng(seed).standard_normal((2, n)), angles)
    return dy * rms_px / dy.std(), dx * rms_px / dx.std()


@pytest.fixture(scope="module")
def injected():
    return _jitter(N_ANGLES, JITTER_PX)


@pytest.fixture(scope="module")
def shifted(phantom, injected):
    from layerscope.tomo import project_phantom

    return project_phantom(phantom.volume, n_angles=N_ANGLES, photons=1e5, seed=1, shifts_px=injected)


@pytest.fixture(scope="module")
def aligned(shifted):
    return reconstruct(shifted, ReconOptions(align="xcorr"))


def test_recovered_shifts_within_a_third_of_a_pixel(aligned, injected):
    got = aligned.alignment["shifts"]
    angles = np.linspace(0.0, 180.0, N_ANGLES, endpoint=False)
    ey, ex = align.unobservable_removed(got["dy"] - injected[0], got["dx"] - injected[1], angles)
    err = np.sqrt(np.mean(ey ** 2 + ex ** 2) / 2)
    assert err < 0.35, err  # 2 px RMS injected on each axis
    assert aligned.alignment["rms_px"] == pytest.approx(np.sqrt(np.mean(got["dy"] ** 2 + got["dx"] ** 2)))


def test_alignment_brings_the_slices_back(phantom, shifted, aligned):
    plain = reconstruct(shifted, ReconOptions())
    err = [float(np.sqrt(np.mean((r.volume[8:-8] - phantom.volume[8:-8]) ** 2))) for r in (plain, aligned)]
    assert err[1] < 0.7 * err[0], err


def test_flag_fires_on_the_shifted_series_only(phantom_projections, shifted, aligned):
    lines = transmission(shifted)[0]
    assert align.consistency(lines, shifted.angles_deg)["rms_px"] > 2 * align.FLAG_PX
    assert align.consistency(transmission(phantom_projections)[0], phantom_projections.angles_deg)["rms_px"] \
        < align.FLAG_PX / 5
    codes = [f["code"] for f in aligned.flags]
    assert "projections_shifted" in codes
    msg = next(f["message"] for f in aligned.flags if f["code"] == "projections_shifted")
    assert "aligned (--align xcorr)" in msg


def test_no_flag_on_the_real_tooth(shared_data):
    from layerscope.tomo import read_tomo

    tooth = read_tomo(shared_data / "tomo" / "tomopy_tooth" / "tooth.h5", voxel_size_nm=1000.0)
    check = align.consistency(transmission(tooth)[0], tooth.angles_deg)
    assert check["rms_px"] < align.FLAG_PX / 2, check  # 0.035 px measured


def test_truncated_field_does_not_flag(phantom):
    """A sample wider than the detector (the outer 12 columns of the volume cut off at every angle)."""
    from layerscope.tomo import project_phantom

    wide = np.pad(phantom.volume[24:40], ((0, 0), (12, 12), (12, 12)), constant_values=0.02)
    proj = project_phantom(wide, n_angles=N_ANGLES, photons=1e5, seed=2)
    cut = type(proj)(proj.data[:, :, 12:-12], proj.angles_deg, proj.pixel_size_nm, proj.flats[:, :, 12:-12],
                     proj.darks[:, :, 12:-12])
    assert align.consistency(transmission(cut)[0], cut.angles_deg)["rms_px"] < align.FLAG_PX / 2


def test_chunks_and_memory_map_equal_the_whole_with_alignment(shifted, aligned, tmp_path):
    disk = np.lib.format.open_memmap(tmp_path / "v.npy", mode="w+", dtype=np.float32,
                                     shape=aligned.volume.shape)
    other = reconstruct(shifted, ReconOptions(align="xcorr", chunk_slices=5), out=disk)
    assert other.centre_px == aligned.centre_px
    np.testing.assert_allclose(other.alignment["shifts"]["dx"], aligned.alignment["shifts"]["dx"])
    np.testing.assert_allclose(np.asarray(disk), aligned.volume, atol=1e-5)


def test_cli_align_reaches_the_reconstruction(tmp_path, phantom, capsys):
    from layerscope.tomo import project_phantom

    dy, dx = _jitter(N_ANGLES, JITTER_PX)
    proj = project_phantom(phantom.volume[20:44], n_angles=N_ANGLES, photons=1e6, seed=5, shifts_px=(dy, dx))
    path = tmp_path / "proj.tif"
    tifffile.imwrite(path, np.exp(-transmission(proj)[0]).astype(np.float32))
    out = tmp_path / "out"
    assert run(["tomo", str(path), "--transmission", "--angle-range-deg", "0,180", "--voxel-size-nm", "50",
                "--reconstruct-only", "--align", "xcorr", "--out", str(out)]) == 0
    assert "FLAG projections_shifted" in capsys.readouterr().out
    s = json.loads((out / "summary.json").read_text())
    a = s["reconstruction"]["alignment"]
    assert a["method"] == "xcorr" and a["rms_px"] > 1.0 and "shifts" not in a
    import pandas as pd

    table = pd.read_csv(out / "shifts.csv")
    assert len(table) == N_ANGLES and {"angle_deg", "shift_rows_px", "shift_columns_px"} <= set(table.columns)
    assert np.corrcoef(table["shift_columns_px"], dx)[0, 1] > 0.9
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["parameters"]["options"]["recon"]["align"] == "xcorr"


def test_bad_align_value_is_one_line(tmp_path, capsys):
    path = tmp_path / "p.tif"
    tifffile.imwrite(path, np.full((4, 16, 16), 0.5, np.float32))
    out = tmp_path / "o"
    code = run(["tomo", str(path), "--transmission", "--voxel-size-nm", "50", "--align", "bogus", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--align 'bogus'" in err[0], err
    assert not out.exists()
