"""Pattern readers: the real Bruker RAW v1 / UXD / FullProf files of ../shared/data/xrd/licoo2_bruker,
and files built after the published layouts for the formats without a real file (RAW v2-v4, RAS,
RASX, text with BOM/header lines/separators)."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from layerscope.diffraction.readers import detect_format, read_pattern
from layerscope.errors import CalibrationError, InputError
from raw_builders import raw_v1, raw_v2, raw_v3, raw_v4

BRUKER = ("xrd", "licoo2_bruker")


def _uxd_counts_plain(path):
    """Independent parse of the UXD: every number after the _COUNTS line, and _START/_STEPSIZE."""
    lines = path.read_text(encoding="latin-1").splitlines()
    keys = dict(ln.split("=", 1) for ln in lines if ln.startswith("_") and "=" in ln)
    k = lines.index("_COUNTS")
    y = np.array([float(v) for ln in lines[k + 1:] for v in ln.split()])
    return float(keys["_START"]), float(keys["_STEPSIZE"]), y


def test_real_bruker_raw_v1_equals_its_uxd_export(shared_data):
    folder = shared_data.joinpath(*BRUKER)
    raw = read_pattern(folder / "LiCoO2.RAW")
    uxd = read_pattern(folder / "LiCoO2.UXD")
    start, step, y = _uxd_counts_plain(folder / "LiCoO2.UXD")
    assert raw.metadata["format"] == "bruker_raw_v1" and uxd.metadata["format"] == "uxd"
    assert raw.intensity.size == y.size == 4001
    np.testing.assert_array_equal(raw.intensity, y)  # counts stored as float32: exact
    np.testing.assert_array_equal(uxd.intensity, y)
    np.testing.assert_allclose(raw.two_theta_deg, start + step * np.arange(y.size), atol=1e-9)
    np.testing.assert_allclose(uxd.two_theta_deg, raw.two_theta_deg, atol=1e-9)
    # wavelengths from the files: RAW v1 has Ka1/Ka2 but no ratio (0.5 convention, said), UXD has all
    assert (raw.wavelength_A, raw.kalpha2_A, raw.kalpha2_ratio) == (1.5406, 1.54443, 0.5)
    assert (uxd.wavelength_A, uxd.kalpha2_A, uxd.kalpha2_ratio) == (1.5406, 1.54443, 0.514)
    assert raw.metadata["wavelength_from"] == "file" and "0.5 used by convention" in raw.metadata["reader_notes"][0]
    assert raw.metadata["counting_time_s"] == uxd.metadata["counting_time_s"] == 12.5


def test_real_fullprof_dat_needs_radiation_and_holds_the_same_counts(shared_data):
    folder = shared_data.joinpath(*BRUKER)
    with pytest.raises(CalibrationError, match="give --radiation Cu"):
        read_pattern(folder / "LiCoO2.dat")
    dat = read_pattern(folder / "LiCoO2.dat", radiation="Cu")
    first = (folder / "LiCoO2.dat").read_text().split("\n", 1)[0].split()
    assert dat.metadata["format"] == "fullprof_dat"
    _, _, y = _uxd_counts_plain(folder / "LiCoO2.UXD")
    np.testing.assert_array_equal(dat.intensity, y)
    # the FullProf file starts at its own stated 16.000 deg (the RAW/UXD say 15.985)
    assert dat.two_theta_deg[0] == float(first[0]) and dat.two_theta_deg[-1] == pytest.approx(float(first[2]))


def test_bruker_raw_v1_multi_range_reads_the_first(tmp_path):
    y1, y2 = np.arange(50.0) + 100, np.arange(30.0) + 7
    path = tmp_path / "two.raw"
    path.write_bytes(raw_v1([(10.0, 0.02, y1), (40.0, 0.05, y2)]))
    p = read_pattern(path)
    np.testing.assert_array_equal(p.intensity, y1)
    np.testing.assert_allclose(p.two_theta_deg, 10.0 + 0.02 * np.arange(50), atol=1e-6)
    assert p.metadata["n_ranges"] == 2 and "2 ranges" in p.metadata["reader_notes"][0]


@pytest.mark.parametrize("version", [2, 3, 4])
def test_bruker_raw_v2_v3_v4_after_the_published_layout(tmp_path, version):
    rng = np.random.default_rng(version)
    y = rng.poisson(500, 200).astype(float)
    start, step = 12.5, 0.025
    if version == 2:
        data, ka = raw_v2(start, step, y), (1.78897, 1.79285, 0.5)
    elif version == 3:
        data, ka = raw_v3(start, step, y, ka=(1.5405929, 1.5444274, 0.497)), (1.5405929, 1.5444274, 0.497)
    else:
        data, ka = raw_v4(start, step, y, ka=(0.7093171, 0.713607, 0.52), anode="Mo"), (0.7093171, 0.713607, 0.52)
    path = tmp_path / f"v{version}.raw"
    path.write_bytes(data)
    p = read_pattern(path)
    assert p.metadata["format"] == f"bruker_raw_v{version}"
    np.testing.assert_array_equal(p.intensity, y)
    np.testing.assert_allclose(p.two_theta_deg, start + step * np.arange(y.size), atol=1e-6)
    np.testing.assert_allclose([p.wavelength_A, p.kalpha2_A, p.kalpha2_ratio], ka, rtol=1e-6)
    # a cut file is one line naming the problem, not a struct error
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(InputError, match="cut short"):
        read_pattern(path)


def test_bruker_raw_v4_refuses_a_rocking_curve(tmp_path):
    path = tmp_path / "rc.raw"
    path.write_bytes(raw_v4(10.0, 0.01, np.ones(100) * 50, scan="Rocking Curve"))
    with pytest.raises(InputError, match="'Rocking Curve' scan, not a coupled"):
        read_pattern(path)


def _ras_text(unit="cps", axis="TwoThetaTheta", n=60):
    head = ['*RAS_DATA_START', '*RAS_HEADER_START', '*FILE_SAMPLE "NMC811"', '*HW_XG_TARGET_NAME "Cu"',
            '*HW_XG_WAVE_LENGTH_ALPHA1 "1.540593"', '*HW_XG_WAVE_LENGTH_ALPHA2 "1.544414"',
            f'*MEAS_SCAN_AXIS_X "{axis}"', '*MEAS_SCAN_SPEED "2.0000"', '*MEAS_SCAN_STEP "0.0200"',
            f'*MEAS_SCAN_UNIT_Y "{unit}"', '*RAS_HEADER_END', '*RAS_INT_START']
    rows = [f"{10 + 0.02 * i:.4f} {100.0 + i:.4f} {1.0 if i < 30 else 10.0:.4f}" for i in range(n)]
    return "\r\n".join(head + rows + ["*RAS_INT_END", "*RAS_DATA_END", ""])


def test_rigaku_ras_counts_attenuation_and_wavelength(tmp_path):
    path = tmp_path / "m.ras"
    path.write_bytes(_ras_text().encode("latin-1"))
    p = read_pattern(path)
    i = np.arange(60)
    att = np.where(i < 30, 1.0, 10.0)
    t = 60 * 0.02 / 2.0  # s per step = step / speed (deg/min)
    np.testing.assert_allclose(p.intensity, (100.0 + i) * att * t)
    np.testing.assert_allclose(p.two_theta_deg, 10 + 0.02 * i)
    assert (p.wavelength_A, p.kalpha2_A, p.kalpha2_ratio) == (1.540593, 1.544414, 0.5)
    assert p.metadata["format"] == "ras" and p.metadata["intensity_unit"] == "counts"
    assert p.metadata["counting_time_s"] == pytest.approx(0.6)
    path.write_bytes(_ras_text(axis="Omega").encode("latin-1"))
    with pytest.raises(InputError, match="not 2-theta/theta"):
        read_pattern(path)


def test_rigaku_rasx_zip(tmp_path):
    path = tmp_path / "m.rasx"
    rows = "\n".join(f"{20 + 0.01 * i:.4f}\t{50 + i}\t1" for i in range(40))
    cond = ('<?xml version="1.0" encoding="utf-8"?><MeasurementConditions><HWConfigurations><XrayGenerator>'
            '<TargetName>Co</TargetName><WavelengthKalpha1>1.788996</WavelengthKalpha1>'
            '<WavelengthKalpha2>1.792835</WavelengthKalpha2></XrayGenerator></HWConfigurations>'
            '<ScanInformation><AxisName>TwoThetaTheta</AxisName><Step>0.01</Step><Speed>1</Speed>'
            '<SpeedUnit>deg/min</SpeedUnit><IntensityUnit>counts</IntensityUnit></ScanInformation>'
            '</MeasurementConditions>')
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("Data0/Profile0.txt", "\ufeff" + rows)
        z.writestr("Data0/MesurementConditions0.xml", cond)
    p = read_pattern(path)
    assert p.metadata["format"] == "rasx" and p.metadata["anode"] == "Co"
    np.testing.assert_allclose(p.intensity, 50 + np.arange(40))
    assert (p.wavelength_A, p.kalpha2_A) == (1.788996, 1.792835)


@pytest.mark.parametrize("name,text", [
    ("bom.csv", "\ufeffColumn2,Column3\n" + "".join(f"{10 + 0.1 * i:.2f},{100 + i}\n" for i in range(30))),
    ("semi.csv", "# exported\nangle;counts\n" + "".join(f"{10 + 0.1 * i:.2f};{100 + i}\n".replace(".", ",")
                                                        for i in range(30))),
    ("tab.txt", "Sample: NMC\nDate: today\n2theta\tI\n" + "".join(f"{10 + 0.1 * i:.2f}\t{100 + i}\n"
                                                                    for i in range(30))),
    ("spaces.xy", "'comment\n" + "".join(f"  {10 + 0.1 * i:.2f}   {100 + i}  {10.0:.1f}\n" for i in range(30))),
])
def test_two_column_text_variants(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    p = read_pattern(path, radiation="Cu")
    np.testing.assert_allclose(p.two_theta_deg, 10 + 0.1 * np.arange(30), atol=1e-9)
    np.testing.assert_allclose(p.intensity, 100 + np.arange(30))
    assert p.metadata["wavelength_from"] == "--radiation"


def test_a_first_column_that_is_not_two_theta_is_refused(tmp_path):
    path = tmp_path / "q.xy"  # q in 1/nm up to 250: not an angle in degrees
    path.write_text("".join(f"{10 + 8 * i:.1f} {100 + i}\n" for i in range(30)))
    with pytest.raises(InputError, match="not 2-theta in degrees"):
        read_pattern(path, radiation="Cu")


def test_fullprof_step_format_with_a_title(tmp_path):
    y = np.arange(1.0, 25.0)
    path = tmp_path / "fp.dat"
    path.write_text("LiNiO2 scan\n 10.000 0.050 11.150\n" + "\n".join(
        " ".join(f"{v:.0f}" for v in y[i:i + 8]) for i in range(0, 24, 8)) + "\n")
    p = read_pattern(path, wavelength_A=0.7093)
    assert p.metadata["format"] == "fullprof_dat" and p.kalpha2_A is None
    np.testing.assert_allclose(p.two_theta_deg, 10 + 0.05 * np.arange(24))
    np.testing.assert_array_equal(p.intensity, y)


def test_override_and_refusals(tmp_path, shared_data):
    raw = shared_data.joinpath(*BRUKER, "LiCoO2.RAW")
    p = read_pattern(raw, radiation="Co")
    assert p.wavelength_A == pytest.approx(1.788996) and p.metadata["wavelength_overridden"]["file"][0] == 1.5406
    with pytest.raises(InputError, match="a CIF crystal structure"):
        read_pattern(shared_data.joinpath(*BRUKER, "1550397.cif"))
    junk = tmp_path / "x.bin"
    junk.write_bytes(b"\x00\x01\x02BINARY" * 100)
    with pytest.raises(InputError, match="binary file of no pattern format"):
        read_pattern(junk)
    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w") as zz:
        zz.writestr("readme.md", "hi")
    with pytest.raises(InputError, match="not a Rigaku .rasx"):
        read_pattern(z)
    assert detect_format(raw) == "bruker_raw"
    with pytest.raises(InputError, match="--radiation 'Xx' unknown"):
        read_pattern(raw, radiation="Xx")


def test_uxd_two_column_cps(tmp_path):
    body = "".join(f"{30 + 0.02 * i:.3f} {5.0 + i:.2f}\n" for i in range(40))
    path = tmp_path / "p.uxd"
    path.write_text("; test\n_FILEVERSION=1\n_WL1=1.5406\n_WL2=1.54439\n_WLRATIO=0.5\n; range 1\n"
                    "_DRIVE='COUPLED'\n_STEPTIME=2.0\n_STEPSIZE=0.02\n_START=30.0\n_2THETACPS\n" + body)
    p = read_pattern(path)
    np.testing.assert_allclose(p.intensity, (5.0 + np.arange(40)) * 2.0)
    np.testing.assert_allclose(p.two_theta_deg, 30 + 0.02 * np.arange(40))


def test_cli_on_a_bom_csv_export_gives_the_raw_numbers(shared_data, tmp_path, capsys):
    """The user report: a UTF-8 BOM 'Column2,Column3' CSV export was refused; now it gives the RAW's numbers."""
    import json

    from layerscope.cli import run

    raw = shared_data.joinpath(*BRUKER, "LiCoO2.RAW")
    p = read_pattern(raw)
    csv = tmp_path / "LiCoO2.csv"
    csv.write_bytes(("\ufeffColumn2,Column3\r\n" + "".join(f"{x:.3f},{y:.0f}\r\n" for x, y in
                                                           zip(p.two_theta_deg, p.intensity))).encode("utf-8"))
    outs = {}
    for name, args in (("raw", [str(raw)]), ("csv", [str(csv), "--radiation", "Cu"])):
        assert run(["xrd", *args, "--out", str(tmp_path / name)]) == 0
        outs[name] = json.loads((tmp_path / name / "summary.json").read_text())["patterns"][0]
    capsys.readouterr()
    assert outs["csv"]["format"] == "xy" and outs["csv"]["wavelength_from"] == "--radiation"
    # same counts and angles; Ka1 1.5405929 (--radiation Cu) vs the file's 1.5406: c differs by 5e-6 relative
    assert outs["csv"]["lattice"]["c_A"] == pytest.approx(outs["raw"]["lattice"]["c_A"], rel=5e-5)
    assert outs["csv"]["I003_I104"] == pytest.approx(outs["raw"]["I003_I104"], rel=1e-3)
