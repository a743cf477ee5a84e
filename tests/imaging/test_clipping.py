"""A clipped (saturated) image is computed and flagged, never refused; unclipped images, real or simulated, are not flagged.

Truth: the clipped share is known from the clipping applied (pixels set to a percentile of the image).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from imaging_real import IMAGES, read_image
from imaging_scenes import PX, noisy, small_o3
from layerscope.cli import run
from layerscope.imaging.clipping import CLIPPED_SHARE, clipped_share


def _clip(img: np.ndarray, percentile: float) -> np.ndarray:
    return np.minimum(img, np.percentile(img, percentile))


@pytest.mark.parametrize("rel", sorted(IMAGES))
def test_real_images_are_not_clipped(shared_data, rel):
    assert clipped_share(read_image(shared_data / rel)) == 0.0  # at most 0.011 % of their pixels at the maximum


@pytest.mark.parametrize("percentile", [98.0, 99.0])
def test_share_of_clipped_pixels_is_measured(percentile):
    img = noisy(small_o3(), 1e4, seed=1) * 1000.0  # counts of many levels
    img = img + np.random.default_rng(0).normal(0.0, 30.0, img.shape)
    assert clipped_share(img) == 0.0
    clipped = _clip(img, percentile)
    truth = np.mean(clipped == clipped.max())
    # Every clipped pixel is counted but the isolated ones (noise lifting single pixels of a column's flank over
    # the clip level): 0.89 (98th percentile) and 0.83 (99th) of the truth measured here; asserted between 0.75 and 1.
    assert 0.75 * truth <= clipped_share(clipped) <= truth
    assert truth > CLIPPED_SHARE


def test_low_dose_counts_are_not_clipped():
    rng = np.random.default_rng(0)
    assert clipped_share(rng.poisson(1.0, (1024, 1024))) == 0.0
    assert clipped_share(rng.poisson(0.1, (512, 512))) < CLIPPED_SHARE


def test_phases_and_columns_flag_a_clipped_image(tmp_path, capsys):
    img = _clip(noisy(small_o3(), 1e4, seed=1), 98.5)
    np.save(tmp_path / "clipped.npy", img)
    np.save(tmp_path / "plain.npy", noisy(small_o3(), 1e4, seed=1))
    for name in ("clipped", "plain"):
        for command in ("phases", "columns"):
            out = tmp_path / f"{command}_{name}"
            assert run([command, str(tmp_path / f"{name}.npy"), "--pixel-size-nm", str(PX), "--no-figures",
                        "--out", str(out)]) == 0
            line = capsys.readouterr().out
            codes = [f["code"] for f in json.loads((out / "summary.json").read_text())["flags"]]
            assert ("saturated" in codes) == (name == "clipped"), (command, name, codes)
            assert ("FLAG saturated" in line) == (name == "clipped")
