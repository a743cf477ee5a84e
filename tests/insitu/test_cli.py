"""``layerscope insitu`` end to end: outputs on disk, numbers against truth, errors as one line and exit 2."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import pytest

import layerscope.cli.insitu  # noqa: F401  (registers the command even before the lead wires it)
from layerscope.cli import main
from layerscope.insitu.synthetic import CrackSpec, VoidSpec, synthetic_series, void_truth


def _run(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["layerscope", "insitu", *map(str, args)])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    import tifffile

    series, truth = synthetic_series(shape=(160, 160), n_frames=6, counts_per_pixel=300.0, seed=51,
                                     voids=[VoidSpec(2.0, 2.0, 0.5, growth_nm_per_s=0.06), VoidSpec(4.4, 4.0, 0.7)],
                                     cracks=[CrackSpec(3.2, 5.2, 4.2, 1.0, 10.0)])
    d = tmp_path_factory.mktemp("frames")
    for i, f in enumerate(np.asarray(series.data)):
        tifffile.imwrite(d / f"f{i:03d}.tif", f.astype(np.uint16))
    return d, truth


def test_insitu_command_writes_everything(monkeypatch, capsys, tmp_path, folder):
    d, truth = folder
    out = tmp_path / "out"
    code, stdout, stderr = _run(monkeypatch, capsys, d, "--out", out, "--pixel-size-nm", 0.04, "--fps", 2.0,
                                "--movie", "gif", "--aligned", "zarr")
    assert code == 0, stderr
    for name in ("frames.csv", "voids.csv", "void_tracks.csv", "void_events.csv", "cracks.csv", "bad_frames.csv",
                 "drift.png", "void_fraction.png", "summary.json", "provenance.json", "report.html", "annotated.gif",
                 "aligned.zarr"):
        assert (out / name).exists(), name
    frames = pd.read_csv(out / "frames.csv")
    np.testing.assert_allclose(frames["time_s"], np.arange(6) / 2.0)
    vt = void_truth(truth)
    np.testing.assert_array_equal(frames["n_voids"], vt["n_voids"])
    err = np.hypot(frames["drift_y_px"] - truth.drift_y_px, frames["drift_x_px"] - truth.drift_x_px)
    assert err.max() <= 0.1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_frames_analysed"] == 6
    assert len(summary["provenance"]["inputs"]) == 6  # every frame file hashed
    assert summary["cracks"]["median_width_nm"] == pytest.approx(1.0, abs=0.2)


def test_insitu_command_errors_are_one_line(monkeypatch, capsys, tmp_path, folder):
    d, _ = folder
    code, _, err = _run(monkeypatch, capsys, d, "--out", tmp_path / "o1", "--pixel-size-nm", 0.04)
    assert code == 2 and "--fps" in err and err.count("\n") == 1
    code, _, err = _run(monkeypatch, capsys, d, "--out", tmp_path / "o2", "--fps", 1)
    assert code == 2 and "--pixel-size-nm" in err
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()  # nothing half-written


def test_stop_on_a_corrupt_frame_keeps_the_frames_before(monkeypatch, capsys, tmp_path, folder):
    import shutil

    d, _ = folder
    bad = tmp_path / "bad"
    shutil.copytree(d, bad)
    (bad / "f004.tif").write_bytes(b"II*\x00 broken")
    out = tmp_path / "out"
    code, _, err = _run(monkeypatch, capsys, bad, "--out", out, "--pixel-size-nm", 0.04, "--fps", 1, "--movie", "none",
                        "--on-bad-frame", "stop")
    assert code == 2 and "frame 4" in err and "f004.tif" in err
    frames = pd.read_csv(out / "frames.csv")
    assert list(frames["frame"]) == [0, 1, 2, 3]


def _cli(capsys, *args):
    from layerscope.cli import run

    code = run([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_thickness_map_times_mean_free_path(capsys, tmp_path):
    """--thickness-map (t/lambda) x --mfp-nm is the foil thickness: a void missing 35 % of a
    0.6 x 50 nm = 30 nm foil is 10.5 nm deep; the map is refused without --mfp-nm or with --thickness-nm."""
    import tifffile

    series, _ = synthetic_series(shape=(192, 192), n_frames=2, voids=[VoidSpec(3.8, 3.8, 1.2, depth=0.35)],
                                 counts_per_pixel=200.0, seed=17)
    d = tmp_path / "frames"
    d.mkdir()
    for i, f in enumerate(np.asarray(series.data)):
        tifffile.imwrite(d / f"f{i}.tif", f.astype(np.float32))
    tmap = tmp_path / "t_lambda.tif"
    tifffile.imwrite(tmap, np.full((192, 192), 0.6, np.float32))
    base = [d, "--pixel-size-nm", 0.04, "--fps", 1, "--movie", "none", "--no-drift", "--thickness-map", tmap]
    code, stdout, err = _cli(capsys, "insitu", *base, "--mfp-nm", 50, "--out", tmp_path / "a")
    assert code == 0, err
    v = pd.read_csv(tmp_path / "a" / "voids.csv").iloc[0]
    assert v["missing_thickness_nm"] == pytest.approx(0.35 * 30.0, rel=0.05)
    code, _, err = _cli(capsys, "insitu", *base, "--mfp-nm", 100, "--out", tmp_path / "b")
    v2 = pd.read_csv(tmp_path / "b" / "voids.csv").iloc[0]
    assert v2["missing_thickness_nm"] == pytest.approx(2 * v["missing_thickness_nm"], rel=1e-6)
    prov = json.loads((tmp_path / "b" / "provenance.json").read_text())
    assert prov["parameters"]["options"]["mfp_nm"] == 100.0
    code, _, err = _cli(capsys, "insitu", *base, "--out", tmp_path / "c")
    assert code == 2 and "--mfp-nm" in err and err.count("\n") == 1
    code, _, err = _cli(capsys, "insitu", *base, "--mfp-nm", 50, "--thickness-nm", 30, "--out", tmp_path / "c")
    assert code == 2 and "either --thickness-nm or --thickness-map" in err
    assert not (tmp_path / "c").exists()


def test_hints_name_command_line_options(capsys, tmp_path, folder):
    d, _ = folder
    common = [d, "--pixel-size-nm", 0.04, "--fps", 1, "--movie", "none", "--out", tmp_path / "o"]
    for extra, wanted in ((["--reference", "middle"], "--reference 'middle'"), (["--window", 0], "--window 0"),
                          (["--chunk-frames", 0], "--chunk-frames 0"), (["--roi-nm", "0,0,0.1,0.1"], "--roi-nm 0,0,0.1,0.1"),
                          (["--edge-level", 1.5], "--edge-level 1.5"), (["--smooth-nm", 0], "--smooth-nm")):
        code, _, err = _cli(capsys, "insitu", *common, *extra)
        assert code == 2 and wanted in err and "=" not in err.split("error:")[1], err
