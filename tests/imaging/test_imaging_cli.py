"""Bad input gets a clear error (never labels); the two commands write their files."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest
from scipy import ndimage

from imaging_scenes import PX, noisy, small_o3
from layerscope.errors import CalibrationError, InputError
from layerscope.imaging.pipeline import map_phases


@pytest.fixture(scope="module")
def o3_image():
    return noisy(small_o3(), 1e4, seed=1)


def test_vacuum_only_image_is_refused():
    vacuum = np.random.default_rng(0).poisson(0.3, (300, 300)).astype(float)
    with pytest.raises(InputError, match="no lattice fringes"):
        map_phases(vacuum, pixel_size_nm=PX, composition="LiCoO2")


def test_image_without_atomic_resolution_is_refused(o3_image):
    blurred = ndimage.gaussian_filter(o3_image, 0.2 / PX)  # 0.2 nm blur: no column is resolved
    with pytest.raises(InputError):
        map_phases(blurred, pixel_size_nm=PX, composition="LiCoO2")


def test_wrong_pixel_size_is_a_calibration_error(o3_image):
    with pytest.raises(CalibrationError, match="pixel size"):
        map_phases(o3_image, pixel_size_nm=PX * 1.3, composition="LiCoO2")
    with pytest.raises(CalibrationError):
        map_phases(o3_image, pixel_size_nm=PX / 1.3, composition="LiCoO2")


def test_too_small_image_is_refused(o3_image):
    with pytest.raises(InputError, match="smaller than a few unit cells"):
        map_phases(o3_image[:80, :80], pixel_size_nm=PX, composition="LiCoO2")


@pytest.mark.parametrize("command", ["columns", "phases"])
@pytest.mark.parametrize("what, image, message", [
    ("line profile", np.ones((1, 512)) + np.arange(512) % 7, "512 x 1 pixels: too small"),
    ("thumbnail", np.random.default_rng(0).random((12, 40)), "40 x 12 pixels: too small"),
    ("blank frame", np.zeros((256, 256), np.uint16), "constant \\(every pixel 0\\)"),
    ("pure noise", np.random.default_rng(1).poisson(50, (256, 256)).astype(np.uint16), "no lattice fringes"),
])
def test_images_without_columns_are_refused_naming_the_file(command, what, image, message, tmp_path, capsys):
    # Found by feeding odd files to every command: a 1 x 512 TIFF crashed `columns` with an IndexError,
    # a blank one was called an inverted ABF image by `phases` ("skewness +nan").
    import tifffile

    from layerscope.cli import run

    path = tmp_path / f"{what.replace(' ', '_')}.tif"
    tifffile.imwrite(path, image)
    out = tmp_path / "out"
    assert run([command, str(path), "--pixel-size-nm", "0.02", "--out", str(out), "--no-figures"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"layerscope: error: '{path.name}'"), err
    assert re.search(message, err), err
    assert not out.exists()


def test_colour_picture_is_refused(tmp_path, o3_image):
    import imageio.v3 as iio

    grey = (255 * o3_image / o3_image.max()).astype(np.uint8)
    rgb = np.stack([grey, grey // 2, grey // 3], axis=-1)
    path = tmp_path / "colour.png"
    iio.imwrite(path, rgb)
    with pytest.raises(InputError, match="colour"):
        map_phases(path, pixel_size_nm=PX, composition="LiCoO2")
    with pytest.raises(InputError, match="colour"):
        map_phases(rgb, pixel_size_nm=PX, composition="LiCoO2")


def test_enhance_without_the_enhancer_is_a_clear_error(monkeypatch, o3_image):
    monkeypatch.setitem(sys.modules, "layerscope.imaging.enhance", None)  # import fails
    with pytest.raises(InputError, match="enhancer"):
        map_phases(o3_image, pixel_size_nm=PX, composition="LiCoO2", enhance=True)


def test_phases_command_writes_everything(tmp_path, o3_image, monkeypatch, capsys):
    from layerscope.cli import main

    src = tmp_path / "o3.npy"
    np.save(src, o3_image)
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["layerscope", "phases", str(src), "--pixel-size-nm", str(PX),
                                      "--composition", "LiCoO2", "--out", str(out)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code in (0, None)
    for name in ("columns.csv", "sites.csv", "domains.csv", "interlayers.csv", "layers.csv", "interfaces.csv", "glides.csv", "phase_map.tif",
                 "summary.json", "provenance.json", "overlay.png", "report.html"):
        assert (out / name).is_file(), name
    header = (out / "columns.csv").read_text().splitlines()[0].split(",")
    assert header[:7] == ["x_nm", "y_nm", "intensity", "kind", "layer", "phase", "mixing"]
    summary = json.loads((out / "summary.json").read_text())
    # Columns found and sites placed are reported apart (the Li layers of O3 are invisible).
    import pandas as pd

    found, placed = pd.read_csv(out / "columns.csv"), pd.read_csv(out / "sites.csv")
    assert found["detected"].all() and not placed["detected"].any()
    assert len(found) == summary["columns"]["detected"] and len(found) + len(placed) == summary["columns"]["total"]
    assert set(placed["kind"]) == {"Li"}
    assert summary["provenance"]["inputs"][0]["sha256"]
    assert summary["phase_fractions"]["O3"] > 0.99  # a pure O3 crystal
    c = summary["columns"]
    html = (out / "report.html").read_text()
    assert f"{c['detected']} / {c['tm_placed']} / {c['li_sites']}" in html
    # Detected columns cut by the edge are counted alike in columns.csv, summary.json and the report;
    # each lies within 1.5 fitted widths of an edge (a scene of 6 x 6 nm has some), no placed site is one.
    edge_cols = found[found["at_border"]]
    h_nm, w_nm = (n * PX for n in o3_image.shape)
    gap = np.minimum.reduce([edge_cols["x_nm"], edge_cols["y_nm"], w_nm - edge_cols["x_nm"], h_nm - edge_cols["y_nm"]])
    assert c["at_border"] == len(edge_cols) > 0 and not placed["at_border"].any()
    assert (gap < 1.5 * found["sigma_nm"].median() + 1e-9).all()
    assert f"<b>{c['at_border']}</b><span>detected columns cut by the image edge" in html
    assert f"{c['at_border']} cut by the image edge" in capsys.readouterr().out
    # The analysis notes of summary.json are in the report too (autoescaped like every metric).
    from markupsafe import escape

    assert "analysis notes" in html
    assert all(str(escape(note)) in html for note in summary["notes"]) if summary["notes"] else "none" in html


def test_bad_input_exits_with_status_2(tmp_path, monkeypatch, capsys):
    from layerscope.cli import main

    src = tmp_path / "vacuum.npy"
    np.save(src, np.random.default_rng(1).poisson(0.3, (300, 300)).astype(float))
    monkeypatch.setattr(sys, "argv", ["layerscope", "columns", str(src), "--pixel-size-nm", str(PX),
                                      "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert "no lattice fringes" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_columns_command_finds_the_simulated_columns(tmp_path, o3_image, monkeypatch):
    import pandas as pd

    from layerscope.cli import main
    from layerscope.imaging.scoring import score_columns

    src = tmp_path / "o3.npy"
    np.save(src, o3_image)
    monkeypatch.setattr(sys, "argv", ["layerscope", "columns", str(src), "--pixel-size-nm", str(PX), "--no-figures",
                                      "--out", str(tmp_path / "c")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code in (0, None)
    table = pd.read_csv(tmp_path / "c" / "columns.csv")
    score = score_columns(table, small_o3().columns, extent_nm=(o3_image.shape[1] * PX, o3_image.shape[0] * PX))
    assert score.recall == 1.0 and score.precision == 1.0
    assert score.rms_pm < 4.0


def test_calibrated_tiff_and_hyperspy_inputs(tmp_path, o3_image):
    # The pixel size comes from the file (RosettaSciIO TIFF) or the signal's axes.
    from layerscope.containers import Image

    signal = Image.from_array(o3_image.astype(np.float32), pixel_size_nm=PX).to_hyperspy()
    path = tmp_path / "o3.tif"
    signal.save(path)
    from_file = map_phases(path, composition="LiCoO2")
    from_signal = map_phases(signal, composition="LiCoO2")
    assert from_file.result.pixel_size_nm == pytest.approx(PX, rel=1e-6)
    assert from_signal.result.pixel_size_nm == pytest.approx(PX, rel=1e-6)
    np.testing.assert_allclose(from_file.columns["x_nm"], from_signal.columns["x_nm"], atol=1e-9)
    assert from_file.summary["phase_fractions"]["O3"] > 0.99


@pytest.mark.parametrize("zone", ["100", "110"])
def test_mirror_view_is_labelled_o3_not_twin(o3_image, zone):
    # A pristine O3 crystal seen from the other side (the image mirrored left-right, or the other
    # zone's convention) must not come out as all twin: the majority stacking is O3.
    image = o3_image[:, ::-1] if zone == "100" else o3_image
    res = map_phases(image, pixel_size_nm=PX, composition="LiCoO2", zone=zone)
    tm = res.columns[res.columns["kind"] == "TM"]
    assert (tm["phase"] == "O3").mean() >= 0.95
    assert any("mirror view" in note for note in res.summary["notes"])


def test_columns_cli_flags_a_calibration_that_disagrees_with_the_material(tmp_path, o3_image, capsys):
    # Generic columns at any scale; with --composition a pixel size 2x too large is flagged (and
    # the columns are the same ones: the detection scale comes from the image).
    import pandas as pd

    from layerscope.cli import run

    src = tmp_path / "o3.npy"
    np.save(src, o3_image)
    base = ["columns", str(src), "--no-figures", "--out"]
    assert run(base + [str(tmp_path / "a"), "--pixel-size-nm", str(PX)]) == 0
    assert run(base + [str(tmp_path / "b"), "--pixel-size-nm", str(2 * PX), "--composition", "LiCoO2"]) == 0
    assert run(base + [str(tmp_path / "c"), "--pixel-size-nm", str(PX), "--composition", "LiCoO2"]) == 0
    out = capsys.readouterr().out
    assert "FLAG calibration" in out
    a, b = (json.loads((tmp_path / k / "summary.json").read_text()) for k in "ab")
    c = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert a["flags"] == [] and c["flags"] == []
    assert [f["code"] for f in b["flags"]] == ["calibration"] and "--pixel-size-nm" in b["flags"][0]["message"]
    assert b["provenance"]["parameters"]["composition"] == "LiCoO2" and a["provenance"]["parameters"]["composition"] is None
    ta, tb = pd.read_csv(tmp_path / "a" / "columns.csv"), pd.read_csv(tmp_path / "b" / "columns.csv")
    assert len(ta) == len(tb)
    np.testing.assert_allclose(tb["x_nm"], 2 * ta["x_nm"], rtol=1e-6)
    # Only columns in the image: no placed Li-layer sites (every row a fitted maximum).
    assert "detected" not in ta and "kind" not in ta


def test_columns_cli_min_separation_changes_the_result(tmp_path, o3_image):
    from layerscope.cli import run

    src = tmp_path / "o3.npy"
    np.save(src, o3_image)
    assert run(["columns", str(src), "--no-figures", "--pixel-size-nm", str(PX), "--nn-distance-nm", "0.8",
                "--out", str(tmp_path / "w")]) == 0
    summary = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert summary["provenance"]["parameters"]["nn_distance_nm"] == 0.8
    # 0.8 nm merges the columns 0.244 nm apart along the layers (maxima within ~0.3 nm): fewer than half remain.
    import pandas as pd

    n_wide = len(pd.read_csv(tmp_path / "w" / "columns.csv"))
    assert run(["columns", str(src), "--no-figures", "--pixel-size-nm", str(PX), "--out", str(tmp_path / "n")]) == 0
    n = len(pd.read_csv(tmp_path / "n" / "columns.csv"))
    assert n_wide < 0.6 * n
