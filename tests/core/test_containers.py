"""Containers: calibration, coordinate convention, validation and HyperSpy round trips."""

import numpy as np
import pytest

from layerscope.containers import Image, ImageSeries, LineScan, Spectrum, SpectrumImage, from_hyperspy, pixel_centers_nm
from layerscope.errors import CalibrationError, InputError


def test_pixel_centre_convention_with_a_known_shift():
    # a single bright pixel at (row 3, col 7) in 0.02 nm pixels: its centre is at x = 7.5 px, y = 3.5 px
    img = np.zeros((10, 12))
    img[3, 7] = 1.0
    image = Image.from_array(img, pixel_size_nm=0.02)
    x = pixel_centers_nm(image.shape[1], image.pixel_size_nm)
    y = pixel_centers_nm(image.shape[0], image.pixel_size_nm)
    row, col = np.unravel_index(np.argmax(image.data), image.shape)
    np.testing.assert_allclose([x[col], y[row]], [7.5 * 0.02, 3.5 * 0.02], atol=1e-12)
    assert image.extent_nm == pytest.approx((12 * 0.02, 10 * 0.02))


@pytest.mark.parametrize("bad", [None, 0.0, -1.0, float("nan")])
def test_image_needs_a_positive_pixel_size(bad):
    with pytest.raises(CalibrationError, match="pixel_size_nm"):
        Image.from_array(np.ones((4, 4)), pixel_size_nm=bad)


def test_image_rejects_3d_and_nan_with_the_fix():
    with pytest.raises(InputError, match="2-D"):
        Image.from_array(np.ones((3, 4, 4)), pixel_size_nm=0.01)
    data = np.ones((4, 4))
    data[1, 2] = np.nan
    with pytest.raises(InputError, match="1 NaN"):
        Image.from_array(data, pixel_size_nm=0.01)


def test_series_times_from_fps_and_errors():
    s = ImageSeries.from_array(np.zeros((5, 8, 8)), pixel_size_nm=0.1, fps=4.0)
    np.testing.assert_allclose(s.times_s, [0, 0.25, 0.5, 0.75, 1.0])
    assert s.frame(2).pixel_size_nm == pytest.approx(0.1)
    s2 = ImageSeries.from_array(np.zeros((3, 8, 8)), pixel_size_nm=0.1)
    with pytest.raises(CalibrationError, match="--fps"):
        s2.require_times()
    with pytest.raises(CalibrationError, match="time stamps"):
        ImageSeries.from_array(np.zeros((3, 8, 8)), pixel_size_nm=0.1, times_s=[0, 1])


def test_spectrum_energy_axis():
    s = Spectrum.from_array(np.arange(10.0), offset_eV=500.0, scale_eV=0.25)
    np.testing.assert_allclose(s.energy_eV[[0, -1]], [500.0, 502.25])
    assert s.dispersion_eV == 0.25
    with pytest.raises(CalibrationError, match="positive"):
        Spectrum.from_array(np.arange(10.0), offset_eV=500.0, scale_eV=0.0)


def test_line_scan_and_spectrum_image_shapes():
    ls = LineScan.from_array(np.ones((6, 20)), step_nm=0.5, offset_eV=700, scale_eV=0.1)
    np.testing.assert_allclose(ls.positions_nm, 0.25 + 0.5 * np.arange(6))
    si = SpectrumImage.from_array(np.ones((3, 4, 20)), pixel_size_nm=1.0, offset_eV=700, scale_eV=0.1)
    assert si.pixel_size_nm == 1.0 and si.energy_eV.size == 20
    with pytest.raises(InputError, match="3-D"):
        SpectrumImage.from_array(np.ones((4, 20)), pixel_size_nm=1.0, offset_eV=0, scale_eV=1)


@pytest.mark.parametrize("lazy", [False, True])
def test_hyperspy_round_trip_keeps_calibration(lazy):
    si = SpectrumImage.from_array(
        np.random.default_rng(0).random((3, 4, 50)).astype("float32"),
        pixel_size_nm=0.7, offset_eV=640.0, scale_eV=0.2,
        metadata={"signal_type": "EELS", "beam_energy_keV": 300.0, "collection_angle_mrad": 13.6},
    )
    hs_sig = si.to_hyperspy()
    if lazy:
        hs_sig = hs_sig.as_lazy()
    assert hs_sig.axes_manager.signal_axes[0].scale == pytest.approx(0.2)
    back = from_hyperspy(hs_sig)
    assert back.is_lazy == lazy
    assert isinstance(back, SpectrumImage)
    assert back.pixel_size_nm == pytest.approx(0.7)
    np.testing.assert_allclose(back.energy_eV, si.energy_eV)
    np.testing.assert_array_equal(np.asarray(back.compute().data), si.data)
    assert back.metadata["beam_energy_keV"] == pytest.approx(300.0)
    assert back.metadata["collection_angle_mrad"] == pytest.approx(13.6)


def test_hyperspy_signal_in_angstrom_is_converted_to_nm():
    import hyperspy.api as hs

    sig = hs.signals.Signal2D(np.ones((6, 5)))
    for ax in sig.axes_manager.signal_axes:
        ax.scale, ax.units = 0.15, "Å"
    image = from_hyperspy(sig)
    assert isinstance(image, Image)
    assert image.pixel_size_nm == pytest.approx(0.015)


def test_hyperspy_image_without_calibration_is_an_error_naming_the_fix():
    import hyperspy.api as hs

    with pytest.raises(CalibrationError, match="pixel_size_nm"):
        from_hyperspy(hs.signals.Signal2D(np.ones((6, 5))))
    image = from_hyperspy(hs.signals.Signal2D(np.ones((6, 5))), pixel_size_nm=0.05)
    assert image.pixel_size_nm == 0.05
