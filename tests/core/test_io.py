"""Loaders on real files from ../shared/data and on files written here, with their calibrations."""

import numpy as np
import pytest

import layerscope as ls
from layerscope.containers import Image, ImageSeries, Spectrum
from layerscope.errors import CalibrationError, InputError


# (relative path, kind, channels, offset eV, dispersion eV) as stated in shared/data/MANIFEST.md
REAL_SPECTRA = [
    ("eels/exspy/coreloss_spectrum.msa", 2048, 360.0, 0.2),
    ("eels/exspy/lowloss_spectrum.msa", 2048, -40.0, 0.2),
    ("eels/exspy/Cr_L_cl.hspy", 400, 560.0, 0.1),
    ("eels/pyeelsmodel_SrTiO3/hl.msa", 1024, 357.5, 0.3),
    ("eels/pytemlib/EELS_STO.dm3", 2048, 350.0, 0.25),
    ("eels/eelsdb_via_nomad/la2nio4-structure-of-k2nif4.msa", 2043, 424.0, 0.25),  # two-column text
    ("eels/eelsdb_via_nomad/porous-cobalt-coating-with-he-filled-nanopores-2.msa", 2031, -9.15, 0.05),  # commas
]


@pytest.mark.parametrize("rel,channels,offset,scale", REAL_SPECTRA, ids=[r[0].split("/")[-1] for r in REAL_SPECTRA])
def test_real_spectra_load_with_file_calibration(shared_data, rel, channels, offset, scale):
    s = ls.load(shared_data / rel)
    assert isinstance(s, Spectrum)
    assert s.shape == (channels,)
    assert s.energy_eV[0] == pytest.approx(offset, abs=1e-3)
    assert s.dispersion_eV == pytest.approx(scale, rel=1e-3)
    assert s.source == shared_data / rel


def test_hspy_metadata_is_read(shared_data):
    s = ls.load(shared_data / "eels/exspy/Cr_L_ll.hspy")
    assert s.metadata["beam_energy_keV"] == pytest.approx(200.0)
    assert s.metadata["convergence_angle_mrad"] == pytest.approx(21.0)
    assert s.metadata["collection_angle_mrad"] == pytest.approx(50.0)
    # the zero-loss peak of a low-loss spectrum sits at 0 eV within a channel or two
    assert abs(s.energy_eV[np.argmax(s.data)]) < 0.5


def test_msa_without_energy_unit_needs_explicit_confirmation(shared_data):
    f = shared_data / "eels/eelsdb_via_nomad/la0-7sr0-3mno3srtio3-001-heterostructure.msa"
    with pytest.raises(CalibrationError, match=r"offset_eV=628\.4, scale_eV=0\.2"):
        ls.load(f)
    s = ls.load(f, offset_eV=628.4, scale_eV=0.2)
    assert s.energy_eV[-1] == pytest.approx(628.4 + 0.2 * (s.shape[0] - 1))


def test_tif_round_trip_with_and_without_calibration(tmp_path):
    import tifffile

    data = np.random.default_rng(1).integers(0, 4000, size=(32, 48)).astype("uint16")
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, data)
    with pytest.raises(CalibrationError, match="pixel_size_nm"):
        ls.load(plain)
    image = ls.load(plain, pixel_size_nm=0.012)
    assert isinstance(image, Image) and image.pixel_size_nm == pytest.approx(0.012)
    np.testing.assert_array_equal(image.data, data)
    # a calibrated file written through HyperSpy keeps its nm scale
    calibrated = tmp_path / "cal.tif"
    Image.from_array(data, pixel_size_nm=0.012).to_hyperspy().save(calibrated)
    assert ls.load(calibrated).pixel_size_nm == pytest.approx(0.012, rel=1e-4)


def test_hspy_series_and_lazy_load(tmp_path):
    data = np.random.default_rng(2).random((4, 16, 16)).astype("float32")
    series = ImageSeries.from_array(data, pixel_size_nm=0.2, fps=10.0)
    path = tmp_path / "series.hspy"
    series.to_hyperspy().save(path)
    back = ls.load(path, lazy=True)
    assert isinstance(back, ImageSeries) and back.is_lazy
    np.testing.assert_allclose(back.times_s, [0, 0.1, 0.2, 0.3])
    np.testing.assert_array_equal(back.compute().data, data)


def test_bad_inputs_give_clear_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        ls.load(tmp_path / "missing.dm4")
    odd = tmp_path / "image.xyz"
    odd.write_text("1 2 3")
    with pytest.raises(InputError, match=r"format '\.xyz' is not supported"):
        ls.load(odd)
    broken = tmp_path / "broken.dm3"
    broken.write_bytes(b"\x00\x01not a dm3 file")
    with pytest.raises(InputError, match="could not be read"):
        ls.load(broken)
    uneven = tmp_path / "uneven.txt"
    uneven.write_text("1 5\n2 6\n4 7\n5 8\n")
    with pytest.raises(CalibrationError, match="uniform"):
        ls.load(uneven)
    nan = tmp_path / "nan.txt"
    nan.write_text("1 5\n2 nan\n3 7\n")
    with pytest.raises(InputError, match="NaN"):
        ls.load(nan)


def test_colour_png_is_rejected(tmp_path):
    import imageio.v3 as iio

    rgb = np.zeros((16, 16, 3), dtype="uint8")
    rgb[..., 0] = 255
    path = tmp_path / "colour.png"
    iio.imwrite(path, rgb)
    with pytest.raises(InputError, match="colour"):
        ls.load(path, pixel_size_nm=0.01)


def test_as_container_accepts_arrays_signals_and_paths(shared_data):
    from layerscope.io import as_container

    assert isinstance(as_container(np.ones((8, 8)), pixel_size_nm=0.01), Image)
    with pytest.raises(CalibrationError):
        as_container(np.ones((8, 8)))
    spec = as_container(np.ones(10), offset_eV=0, scale_eV=1)
    assert isinstance(spec, Spectrum)
    assert as_container(spec) is spec
    assert isinstance(as_container(spec.to_hyperspy()), Spectrum)
    assert isinstance(as_container(shared_data / "eels/exspy/Cr_L_cl.hspy"), Spectrum)


def test_signal_index_out_of_range_is_refused(shared_data):
    with pytest.raises(InputError, match=r"holds 1 signal\(s\); index=3 is out of range"):
        ls.load(shared_data / "eels/exspy/Cr_L_cl.hspy", index=3)
    assert ls.load(shared_data / "eels/exspy/Cr_L_cl.hspy", index=0).shape == (400,)
