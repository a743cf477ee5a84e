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


def test_msa_without_energy_unit_needs_explicit_confirmation(shared_data, tmp_path):
    src = shared_data / "eels/eelsdb_via_nomad/la0-7sr0-3mno3srtio3-001-heterostructure.msa"
    f = tmp_path / src.name  # the file alone, without its EELS Data Base record
    f.write_bytes(src.read_bytes())
    with pytest.raises(CalibrationError, match=r"--offset-ev 628\.4 --scale-ev 0\.2"):
        ls.load(f)
    s = ls.load(f, offset_eV=628.4, scale_eV=0.2)
    assert s.energy_eV[-1] == pytest.approx(628.4 + 0.2 * (s.shape[0] - 1))


def test_eelsdb_record_confirms_ev_and_gives_microscope_settings(shared_data, tmp_path):
    src = shared_data / "eels/eelsdb_via_nomad/la0-7sr0-3mno3srtio3-001-heterostructure.msa"
    s = ls.load(src)  # la0-7...metadata.json next to it: 628.4 eV, 0.2 eV/pixel, 300 kV, 1.0 eV resolution
    assert s.energy_eV[0] == pytest.approx(628.4) and s.dispersion_eV == pytest.approx(0.2)
    assert s.metadata["beam_energy_keV"] == 300.0 and s.metadata["energy_resolution_eV"] == 1.0
    assert s.metadata["collection_angle_mrad"] == pytest.approx(33.1)
    # a record that disagrees with the file's offset does not confirm eV
    f = tmp_path / src.name
    f.write_bytes(src.read_bytes())
    rec = src.with_name(src.stem + ".metadata.json").read_text().replace('"628.4 eV"', '"600 eV"')
    (tmp_path / (src.stem + ".metadata.json")).write_text(rec)
    with pytest.raises(CalibrationError, match="--offset-ev"):
        ls.load(f)


def test_info_reads_msa_files_lazily_requested(shared_data):
    from layerscope.cli import run

    for rel in ("eels/exspy/coreloss_spectrum.msa", "eels/pyeelsmodel_SrTiO3/hl.msa"):
        assert run(["info", str(shared_data / rel)]) == 0


@pytest.mark.parametrize("sep,dec", [(",", "."), (";", ","), ("\t", "."), ("  ", ".")])
def test_text_spectra_with_bom_header_separators_and_uneven_steps(tmp_path, sep, dec):
    e = np.array([637.0, 637.1, 637.3, 637.6, 638.0, 638.5, 639.1, 639.8])  # uneven: 0.1 ... 0.7 eV
    y = 10.0 * e - 6000.0  # linear, so resampling is exact
    lines = ["Energy (eV)" + sep + "Intensity (a.u.)"]
    lines += [f"{a:.2f}{sep}{b:.3f}".replace(".", dec) if dec == "," else f"{a:.2f}{sep}{b:.3f}" for a, b in zip(e, y)]
    f = tmp_path / "ref.csv"
    f.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode())
    s = ls.load(f)
    assert "resampled" in s.metadata
    assert s.energy_eV[0] == pytest.approx(637.0)
    assert np.allclose(np.asarray(s.data), 10.0 * np.asarray(s.energy_eV) - 6000.0, atol=1e-6)


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


@pytest.mark.parametrize("unit, per_nm", [("nm", 1.0), ("\\u00C5", 10.0), ("A", 10.0), ("micron", 1e-3),
                                           ("\\u00B5m", 1e-3), ("um", 1e-3)])
def test_imagej_tif_calibration_in_any_length_unit(tmp_path, unit, per_nm):
    # Fiji writes `unit=` in the description (µ and Å escaped) and pixels per unit in XResolution;
    # RosettaSciIO keeps the unit only for "micron", so nm and Å files were refused as uncalibrated.
    import tifffile

    px_nm = 0.0127
    path = tmp_path / "fiji.tif"
    data = np.random.default_rng(2).integers(0, 4000, size=(24, 40)).astype("uint16")
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / (px_nm * per_nm),) * 2, metadata={"unit": unit})
    assert ls.load(path).pixel_size_nm == pytest.approx(px_nm, rel=1e-4)  # XResolution is a rational


def test_imagej_tif_in_pixels_is_still_uncalibrated(tmp_path):
    import tifffile

    path = tmp_path / "px.tif"
    tifffile.imwrite(path, np.ones((8, 8), "uint16"), imagej=True, resolution=(1.0, 1.0), metadata={"unit": "pixel"})
    with pytest.raises(CalibrationError, match="pixel_size_nm"):
        ls.load(path)


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
    unsorted = tmp_path / "unsorted.txt"  # uneven steps are resampled (issue 18); unsorted ones are refused
    unsorted.write_text("1 5\n2 6\n1.5 7\n5 8\n")
    with pytest.raises(CalibrationError, match="increase"):
        ls.load(unsorted)
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
