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
    plain = reconstruct(shifted, ReconOptions(align="none"))
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


def _shifted_tiff(tmp_path, phantom):
    """The phantom's middle slab projected with white jitter (:data:`JITTER_PX`), as a transmission TIFF stack:
    its path and the shifts (px) given."""
    from layerscope.tomo import project_phantom

    dy, dx = _jitter(N_ANGLES, JITTER_PX)
    proj = project_phantom(phantom.volume[20:44], n_angles=N_ANGLES, photons=1e6, seed=5, shifts_px=(dy, dx))
    path = tmp_path / "proj.tif"
    tifffile.imwrite(path, np.exp(-transmission(proj)[0]).astype(np.float32))
    return path, dy, dx


def test_cli_align_reaches_the_reconstruction(tmp_path, phantom, capsys):
    (path, _, dx), out = _shifted_tiff(tmp_path, phantom), tmp_path / "out"
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
    assert code == 2 and len(err) == 1 and "--align 'bogus'" in err[0] and "auto" in err[0], err
    assert not out.exists()


# --- tomoaccept: the acceptance test of an alignment, the coarse first guess, align="auto" -----------------------

DRIFT_PX = 6.0  # a random walk of 6 px RMS per axis on the 64 px detector of the fixture phantom


def _walk(n: int, rms_px: float, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    angles = np.linspace(0.0, 180.0, n, endpoint=False)
    dy, dx = align.unobservable_removed(*np.cumsum(np.random.default_rng(seed).standard_normal((2, n)), axis=1), angles)
    return dy * rms_px / dy.std(), dx * rms_px / dx.std()


def _error_px(found: dict, injected: tuple[np.ndarray, np.ndarray], angles: np.ndarray) -> float:
    ey, ex = align.unobservable_removed(found["dy"] - injected[0], found["dx"] - injected[1], angles)
    return float(np.sqrt(np.mean(ey ** 2 + ex ** 2) / 2))


@pytest.fixture(scope="module")
def drifted(phantom):
    from layerscope.tomo import project_phantom

    shifts = _walk(N_ANGLES, DRIFT_PX)
    return project_phantom(phantom.volume, n_angles=N_ANGLES, photons=1e5, seed=1, shifts_px=shifts), shifts


def test_aligned_check_reads_the_true_shifts_low_and_wrong_ones_high(shifted, injected):
    lines, angles = transmission(shifted)[0], shifted.angles_deg
    assert align.aligned_consistency(lines, *injected, angles)["rms_px"] < align.FLAG_PX / 10  # 0.01 measured
    wrong = _jitter(N_ANGLES, JITTER_PX, seed=11)  # shifts of the same size, other angles
    assert align.aligned_consistency(lines, *wrong, angles)["rms_px"] > 3 * align.FLAG_PX


def test_large_drift_aligns_with_the_neighbour_guess_only(drifted):
    """6 px random walk: from the centres of mass the matching locks 4.1 px off (the aligned series still jumps
    0.30 px RMS); from the neighbour cross-correlation it finds the shifts within 0.34 px (bound 0.5). The
    reprojection residual ranks them alike (0.32 against 0.075 measured)."""
    proj, injected = drifted
    lines, angles = transmission(proj)[0], proj.angles_deg
    err, after, residual = {}, {}, {}
    for first in ("com", "neighbours"):
        est = align.estimate_shifts(lines, angles, first=first)
        err[first] = _error_px(est, injected, angles)
        after[first] = align.aligned_consistency(lines, est["dy"], est["dx"], angles)["rms_px"]
        residual[first] = align.reprojection_residual(lines, est["dy"], est["dx"], angles)
    assert err["com"] > 2.0 and after["com"] > align.FLAG_PX, (err, after)
    assert err["neighbours"] < 0.5 and after["neighbours"] < align.FLAG_PX / 5, (err, after)
    assert residual["neighbours"] < 0.5 * residual["com"], residual


def test_wrong_lock_is_flagged_and_reconstructed_as_given(drifted, monkeypatch):
    """With the centre-of-mass guess alone the 6 px drift locks wrongly (4.1 px off; the aligned series reads
    0.30 px, as given 0.75): flagged ``alignment_failed``; with ``KEEP_FAILED_FRACTION`` at its default (0) the
    series is reconstructed as given (the volume equals ``align="none"``'s), with 0.5 (0.30 / 0.75 = 0.40 is
    below it) the shifts are undone all the same; summary fields say which."""
    from layerscope.tomo import recon

    assert recon.KEEP_FAILED_FRACTION == 0.0
    proj = drifted[0]
    monkeypatch.setattr(align, "FIRST_GUESSES", ("com",))
    got = reconstruct(proj, ReconOptions(align="xcorr"))
    a = got.alignment
    assert a["accepted"] is False and a["aligned"] is False and a["shifts"] is None
    assert a["consistency_aligned"]["rms_px"] > align.FLAG_PX
    codes = [f["code"] for f in got.flags]
    assert "alignment_failed" in codes and "projections_shifted" in codes
    msg = next(f["message"] for f in got.flags if f["code"] == "alignment_failed")
    assert "reconstructed as given" in msg and "--align xcorr" in msg
    plain = reconstruct(proj, ReconOptions(align="none"))
    np.testing.assert_array_equal(got.volume, plain.volume)
    monkeypatch.setattr(recon, "KEEP_FAILED_FRACTION", 0.5)
    kept = reconstruct(proj, ReconOptions(align="xcorr"))
    assert kept.alignment["aligned"] is True and kept.alignment["shifts"] is not None
    assert "alignment_failed" in [f["code"] for f in kept.flags]
    assert "all the same" in next(f["message"] for f in kept.flags if f["code"] == "alignment_failed")


def test_large_drift_is_aligned_by_default_guesses(drifted):
    proj, injected = drifted
    got = reconstruct(proj, ReconOptions(align="auto"))
    a = got.alignment
    assert a["accepted"] and a["aligned"] and a["first_guess"] == "neighbours" and a["guesses_tried"] == 2
    assert _error_px(a["shifts"], injected, proj.angles_deg) < 0.5
    assert "alignment_failed" not in [f["code"] for f in got.flags]


def test_auto_leaves_an_unshifted_series_as_none_does(phantom_projections):
    none = reconstruct(phantom_projections, ReconOptions(align="none"))
    auto = reconstruct(phantom_projections, ReconOptions(align="auto"))
    np.testing.assert_array_equal(auto.volume, none.volume)  # bit-identical
    assert auto.centre_px == none.centre_px and auto.flags == none.flags
    assert auto.alignment["aligned"] is False and auto.alignment["shifts"] is None
    assert auto.alignment["consistency"] == none.alignment["consistency"]


def test_auto_aligns_a_flagged_series_as_xcorr_does(shifted, aligned):
    auto = reconstruct(shifted, ReconOptions(align="auto"))
    assert auto.alignment["accepted"] and auto.alignment["first_guess"] == "com"
    np.testing.assert_array_equal(auto.alignment["shifts"]["dx"], aligned.alignment["shifts"]["dx"])
    np.testing.assert_array_equal(auto.volume, aligned.volume)


def test_cli_default_align_is_auto_and_reaches_the_reconstruction(tmp_path, phantom, capsys):
    """No --align: the shifted series is flagged and aligned (method auto), the report line says it."""
    (path, _, dx), out = _shifted_tiff(tmp_path, phantom), tmp_path / "out"
    assert run(["tomo", str(path), "--transmission", "--angle-range-deg", "0,180", "--voxel-size-nm", "50",
                "--reconstruct-only", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "FLAG projections_shifted" in printed and "alignment_failed" not in printed
    a = json.loads((out / "summary.json").read_text())["reconstruction"]["alignment"]
    assert a["method"] == "auto" and a["accepted"] and a["aligned"] and a["consistency_aligned"]["rms_px"] < 0.05
    assert json.loads((out / "provenance.json").read_text())["parameters"]["options"]["recon"]["align"] == "auto"
    assert np.corrcoef(pd_read(out / "shifts.csv")["shift_columns_px"], dx)[0, 1] > 0.9


def pd_read(path):
    import pandas as pd

    return pd.read_csv(path)
