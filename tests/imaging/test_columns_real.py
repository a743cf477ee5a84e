"""`columns` on every real atomic-resolution image in ../shared/data/stem, and `phases` refusing them.

Checks are independent of layerscope (tests/imaging/imaging_real.py): the detected count against
the lattice of the image's power spectrum over the crystal's area (within 10 %), and the columns on
the maxima of the smoothed image (median within 0.05, 90 % within 0.15 nearest-neighbour
distances).
"""

from __future__ import annotations

import numpy as np
import pytest

from imaging_real import IMAGES, check_columns, read_image
from layerscope.errors import InputError
from layerscope.imaging.generic import ColumnsOptions, analyse, image_lattice


def _px(shared_data, rel):
    px = IMAGES[rel][0]
    if px is None:
        from layerscope.imaging.pipeline import load_image

        _, px, _ = load_image(shared_data / rel, pixel_size_nm=None)
    return px


@pytest.mark.parametrize("rel", sorted(IMAGES))
def test_columns_on_real_images(shared_data, rel):
    img = read_image(shared_data / rel)
    px = _px(shared_data, rel)
    res = analyse(img, ColumnsOptions(), pixel_size_nm=px)
    numbers = check_columns(img, res.columns, px, rel)
    assert res.flags == []  # no material given: nothing to check against
    print(rel, len(res.columns), numbers)


def test_patch_without_lattice_fringes_is_refused(shared_data):
    img = read_image(shared_data / "stem/atomsegnet/12028.png")
    with pytest.raises(InputError, match="no lattice fringes"):
        analyse(img, ColumnsOptions(), pixel_size_nm=0.01)


def test_scale_is_the_images_own(shared_data):
    # The Si [110] dumbbells are 0.333 nm apart (a sqrt(3/8), a = 0.5431 nm) at the MANIFEST's
    # 5 nm / 512 px; the measured nearest-neighbour distance scales with the pixel size given.
    img = read_image(shared_data / "stem/atomsegnet/Si110_5nmX25us_03_none_none.png")
    a = image_lattice(img, pixel_size_nm=5.0 / 512)
    b = image_lattice(img, pixel_size_nm=2 * 5.0 / 512)
    assert a.nn_distance_nm == pytest.approx(0.5431 * np.sqrt(3 / 8), rel=0.12)
    assert b.nn_distance_nm == pytest.approx(2 * a.nn_distance_nm, rel=1e-6)


@pytest.mark.parametrize("rel", sorted(IMAGES))
def test_phases_refuses_every_real_image(shared_data, rel):
    # None of them is a layered oxide: refused at the MANIFEST's scale and at the two scales that
    # put the image's nearest columns on LiCoO2's in-plane spacing (0.2438 nm) or layer spacing
    # (0.468 nm), where a check of the periods alone would pass.
    from layerscope.imaging.pipeline import map_phases

    img = read_image(shared_data / rel)
    px = _px(shared_data, rel)
    nn = image_lattice(img, pixel_size_nm=px).nn_distance_nm
    for scale in (px, px * 0.2438 / nn, px * 0.4683 / nn):
        with pytest.raises(InputError, match="not a layered oxide") as info:
            map_phases(img, pixel_size_nm=scale, composition="LiCoO2", name="'x.png'")
        assert "--zone" in str(info.value) and "\n" not in str(info.value)


def test_phases_cli_refuses_a_perovskite_in_one_line(shared_data, tmp_path, capsys):
    from layerscope.cli import run

    out = tmp_path / "o"
    code = run(["phases", str(shared_data / "stem/atomsegnet/10_dso_8nm_none_none.png"), "--pixel-size-nm",
                str(8 / 1024), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("layerscope: error: '10_dso_8nm_none_none.png' is not a layered oxide")
    assert not out.exists()


@pytest.mark.parametrize("rel", ["stem/temul/example_Se_implanted_MoS2.dm3", "stem/atomsegnet/10_dso_8nm_none_none.png"])
def test_a_crop_finds_the_columns_the_whole_image_finds(shared_data, rel):
    # A field whose size is no multiple of the detector's coarse grid (614 x 615 of the 1024^2 MoS2 with its
    # ~3e6-count detector offset) once lost a band of ~100 px along its last rows and columns. Truth: the
    # columns the whole image gives inside the crop, clear of both images' borders (1.5 widths + 0.1 nm).
    from scipy.spatial import cKDTree

    img = read_image(shared_data / rel)
    px = _px(shared_data, rel)
    h, w = img.shape
    y1, x0, x1 = int(0.6 * h), int(0.2 * w), int(0.8 * w)
    full = analyse(img, ColumnsOptions(), pixel_size_nm=px).columns
    crop = analyse(np.ascontiguousarray(img[:y1, x0:x1]), ColumnsOptions(), pixel_size_nm=px).columns
    xy = full[["x_nm", "y_nm"]].to_numpy() - [x0 * px, 0.0]
    margin = 1.5 * float(full["sigma_nm"].median()) + 0.1
    inner = (xy[:, 0] > margin) & (xy[:, 0] < (x1 - x0) * px - margin) & (xy[:, 1] > margin) & (xy[:, 1] < y1 * px - margin)
    d, _ = cKDTree(crop[["x_nm", "y_nm"]].to_numpy()).query(xy[inner])
    assert inner.sum() > 100
    assert (d < 0.05).mean() >= 0.99, f"{(d >= 0.05).sum()} of {inner.sum()} columns of the whole image not found in the crop"
