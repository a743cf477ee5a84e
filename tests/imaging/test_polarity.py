"""Bright or dark columns (HAADF/ADF vs ABF/BF): `columns --contrast`, and `phases` refusing dark columns.

Truth: every real image of ../shared/data/stem is HAADF/ADF (MANIFEST.md), so bright columns; the
same image inverted has dark columns at the same places. A simulated O3 draw inverted was labelled
44 % rock salt by `phases` before this check.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from imaging_real import IMAGES, read_image
from imaging_scenes import PX, noisy, small_o3
from layerscope.cli import run
from layerscope.errors import InputError
from layerscope.imaging import generic, pipeline
from layerscope.imaging.options import ColumnsOptions, PhasesOptions
from layerscope.imaging.polarity import UNCERTAIN_BELOW, contrast_skewness

SI = "stem/atomsegnet/Si110_5nmX25us_03_none_none.png"


@pytest.mark.parametrize("rel", sorted(IMAGES) + ["stem/atomsegnet/12028.png"])
def test_real_haadf_images_have_bright_columns_and_inverted_ones_dark(shared_data, rel):
    img = read_image(shared_data / rel)
    # Nearest column distance ~18-49 px on these images; the statistic hardly depends on it (x0.5-x2).
    skew = contrast_skewness(img, scale_px=25.0)
    # Measured +0.67 (Au grain boundary) to +1.7 (nanoparticle in vacuum): a margin of 2.5x the threshold.
    assert skew > 2.5 * UNCERTAIN_BELOW
    assert contrast_skewness(img.max() - img, scale_px=25.0) == pytest.approx(-skew, abs=1e-6)


def test_symmetric_contrast_is_flagged_not_labelled(tmp_path):
    # cos + cos lattice: maxima and minima alike (skewness ~0); columns are found but flagged.
    y, x = np.mgrid[0:400, 0:400] * 0.01
    img = 10 + np.cos(2 * np.pi * x / 0.3) + np.cos(2 * np.pi * y / 0.3)
    img = img + np.random.default_rng(0).normal(0, 0.05, img.shape)
    assert abs(contrast_skewness(img, scale_px=30.0)) < 0.05
    res = generic.analyse(img, ColumnsOptions(noise_model="gaussian"), pixel_size_nm=0.01)
    assert [f["code"] for f in res.flags] == ["contrast_polarity"]
    with pytest.raises(InputError, match="barely brighter"):
        pipeline.analyse(img, PhasesOptions(noise_model="gaussian"), pixel_size_nm=0.01)


@pytest.fixture(scope="module")
def si_files(shared_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("polarity")
    img = read_image(shared_data / SI)
    np.save(d / "si.npy", img)
    np.save(d / "si_dark.npy", img.max() - img)
    return d


def test_columns_refuses_dark_columns_and_finds_them_with_contrast_dark(si_files, capsys):
    px = str(IMAGES[SI][0])
    code = run(["columns", str(si_files / "si_dark.npy"), "--pixel-size-nm", px, "--no-figures",
                "--out", str(si_files / "refused")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not (si_files / "refused").exists()
    assert len(err) == 1 and "si_dark.npy" in err[0] and "look dark" in err[0] and "--contrast dark" in err[0]

    bright = generic.analyse(np.load(si_files / "si.npy"), ColumnsOptions(noise_model="gaussian"),
                             pixel_size_nm=float(px)).columns
    dark = generic.analyse(np.load(si_files / "si_dark.npy"), ColumnsOptions(contrast="dark"),
                           pixel_size_nm=float(px)).columns
    # Same image, inverted: the same columns (the fit sees the same pixels, mirrored in intensity).
    assert len(dark) == len(bright)
    d, _ = cKDTree(bright[["x_nm", "y_nm"]].to_numpy()).query(dark[["x_nm", "y_nm"]].to_numpy())
    assert np.max(d) < 1e-3  # nm


def test_contrast_dark_reaches_the_options_and_refuses_bright_columns(si_files):
    import json

    px = str(IMAGES[SI][0])
    out = si_files / "dark"
    assert run(["columns", str(si_files / "si_dark.npy"), "--pixel-size-nm", px, "--no-figures",
                "--contrast", "dark", "--out", str(out)]) == 0
    p = json.loads((out / "provenance.json").read_text())["parameters"]
    assert (p["contrast"], p["noise_model"]) == ("dark", "gaussian")
    assert any("dark columns" in n for n in json.loads((out / "summary.json").read_text())["notes"])
    assert run(["columns", str(si_files / "si.npy"), "--pixel-size-nm", px, "--no-figures",
                "--contrast", "dark", "--out", str(si_files / "wrong")]) == 2
    assert not (si_files / "wrong").exists()


@pytest.mark.parametrize("make, text", [
    (lambda: ColumnsOptions(contrast="abf"), "--contrast"),
    (lambda: ColumnsOptions(contrast="dark", noise_model="poisson"), "--contrast dark with --noise-model poisson"),
])
def test_contrast_option_errors_name_the_option(make, text):
    with pytest.raises(InputError) as info:
        make()
    assert str(info.value).startswith(text)


def test_phases_refuses_an_inverted_layered_oxide():
    img = noisy(small_o3(), 1e4, seed=1)
    pipeline.analyse(img, PhasesOptions(), pixel_size_nm=PX)  # the HAADF image is mapped
    with pytest.raises(InputError, match="look dark.*HAADF/ADF Z-contrast"):
        pipeline.analyse(img.max() - img, PhasesOptions(noise_model="gaussian"), pixel_size_nm=PX)
