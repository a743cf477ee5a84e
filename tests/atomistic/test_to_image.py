"""A boundary model imaged edge-on with the foundation simulator."""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.atomistic.structures import host_bulk, tilt_boundary, twin_boundary
from layerscope.atomistic.to_image import boundary_view, simulate_boundary_image
from layerscope.errors import InputError


def test_twin_view_is_orthogonal_and_edge_on():
    twin = twin_boundary(host_bulk("LiCoO2"), expand_times=1)
    oriented, view = boundary_view(twin)
    cell = oriented.cell.array
    np.testing.assert_allclose(cell - np.diag(np.diag(cell)), 0.0, atol=1e-8)
    assert view["strain"] < 1e-6
    # the boundary normal is the image y axis: the cell height is the twin period (two 14.05 Å grains)
    assert cell[1, 1] == pytest.approx(28.1, abs=0.01)
    # atom density is conserved
    assert len(oriented) / oriented.get_volume() == pytest.approx(len(twin) / twin.get_volume(), rel=1e-9)
    with pytest.raises(InputError, match="not in the boundary plane"):
        boundary_view(twin, beam=np.array(twin.info["boundary"]["c_axis"]))


def test_twin_image_shows_tm_rows_at_the_layer_spacing():
    twin = twin_boundary(host_bulk("LiCoO2"), expand_times=1)
    sim, _ = simulate_boundary_image(twin, pixel_size_nm=0.02, probe_fwhm_nm=0.08, thickness_nm=3.0)
    cols = sim.columns
    tm_rows = np.unique(np.round(cols.loc[cols["tm_fraction"] > 0.99, "y_nm"].to_numpy(), 3))
    # edge-on, the Co layers are horizontal rows c/3 = 0.4683 nm apart, across the twin plane too
    np.testing.assert_allclose(np.diff(tm_rows), 1.405 / 3, atol=0.005)
    assert len(tm_rows) == 6


def test_tilt_image_field_and_bad_thickness():
    gb = tilt_boundary(host_bulk("LiCoO2"), sigma=7, expand_times=2)
    sim, atoms = simulate_boundary_image(gb, pixel_size_nm=0.02, probe_fwhm_nm=0.08, thickness_nm=3.0)
    # viewed along c the beam runs along the layer stacking: every column mixes Li, Co and O, and the
    # simulated field is the oriented cell (nm)
    assert sim.image.pixel_size_nm == pytest.approx(0.02)
    assert atoms.cell.lengths()[2] >= 30.0
    assert sim.image.data.shape == (round(atoms.cell[1, 1] / 0.2), round(atoms.cell[0, 0] / 0.2))
    assert sim.image.data.max() > 0
    with pytest.raises(InputError, match="thickness"):
        simulate_boundary_image(gb, pixel_size_nm=0.02, probe_fwhm_nm=0.08, thickness_nm=0)
