"""``layerscope tomo``: file formats, options reaching the result, and one-line refusals of bad input."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest
import tifffile

from layerscope.cli import run


def _refused(capsys, args, pattern, out):
    code = run(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("layerscope: error:"), err
    assert pattern in err[0], err
    assert not out.exists()


@pytest.fixture(scope="module")
def phantom_tiff(tmp_path_factory, phantom):
    from layerscope.tomo.outputs import write_volume

    path = tmp_path_factory.mktemp("vol") / "phantom.tif"
    return write_volume(phantom.volume, 50.0, path)


def test_volume_tiff_round_trip_reads_voxel_size_and_counts(tmp_path, phantom_tiff, capsys):
    out = tmp_path / "out"
    assert run(["tomo", str(phantom_tiff), "--volume", "--out", str(out)]) == 0
    line = capsys.readouterr().out
    assert "4 particles, 4 cracks" in line
    s = json.loads((out / "summary.json").read_text())
    assert s["voxel_size_nm"] == pytest.approx(50.0)
    parts = pd.read_csv(out / "particles.csv")
    assert {"volume_voxels", "crack_count", "crack_volume_fraction", "sphericity"} <= set(parts.columns)
    assert parts["crack_count"].tolist() == [1, 1, 1, 1]
    for name in ("cracks.csv", "pores.csv", "slices.png", "rendering_3d.png", "report.html", "provenance.json"):
        assert (out / name).is_file(), name


def test_max_flatness_option_changes_the_classification(tmp_path, phantom_tiff, capsys):
    out = tmp_path / "out"
    assert run(["tomo", str(phantom_tiff), "--volume", "--out", str(out), "--max-flatness", "0.01"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["n_cracks"] == 0 and s["n_pores"] >= 4  # no feature is that flat: the 4 cracks become pores
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["parameters"]["options"]["max_flatness"] == 0.01


def test_tiff_projections_with_angle_range_and_centre(tmp_path, phantom, capsys):
    from layerscope.tomo import project_phantom
    from layerscope.tomo.recon import transmission

    proj = project_phantom(phantom.volume[28:36], n_angles=90, photons=1e6, seed=5)
    path = tmp_path / "proj.tif"
    tifffile.imwrite(path, np.exp(-transmission(proj)[0]).astype(np.float32))
    outs = []
    for centre in ("31.5", "30.0"):
        out = tmp_path / f"out{centre}"
        assert run(["tomo", str(path), "--transmission", "--angle-range-deg", "0,180", "--voxel-size-nm", "50",
                    "--reconstruct-only", "--centre-px", centre, "--out", str(out)]) == 0
        s = json.loads((out / "summary.json").read_text())
        assert s["reconstruction"]["centre_px"] == float(centre)
        outs.append(tifffile.imread(out / "volume.tif"))
    truth = phantom.volume[28:36]
    err_right = np.sqrt(np.mean((outs[0] - truth) ** 2))
    err_wrong = np.sqrt(np.mean((outs[1] - truth) ** 2))
    assert outs[0].shape == (8, 64, 64)
    assert err_right < 0.006 and err_wrong > 1.3 * err_right, (err_right, err_wrong)


def test_mrc_volume_voxel_size_from_header(tmp_path, phantom, capsys):
    import mrcfile

    path = tmp_path / "vol.mrc"
    with mrcfile.new(path) as m:
        m.set_data(phantom.volume.astype(np.float32))
        m.voxel_size = 500.0  # Angstrom
    out = tmp_path / "out"
    assert run(["tomo", str(path), "--volume", "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["voxel_size_nm"] == pytest.approx(50.0) and s["n_particles"] == 4


def test_refuses_a_2d_image(tmp_path, capsys):
    path = tmp_path / "one.tif"
    tifffile.imwrite(path, np.ones((32, 32), np.float32))
    _refused(capsys, ["tomo", str(path), "--volume", "--voxel-size-nm", "10", "--out", str(tmp_path / "o")],
             "single 2-D image", tmp_path / "o")


def test_refuses_nans(tmp_path, capsys):
    vol = np.ones((16, 16, 16), np.float32)
    vol[3, 4, 5] = np.nan
    path = tmp_path / "nan.tif"
    tifffile.imwrite(path, vol)
    _refused(capsys, ["tomo", str(path), "--volume", "--voxel-size-nm", "10", "--out", str(tmp_path / "o")],
             "NaN", tmp_path / "o")


def test_refuses_missing_angles(tmp_path, capsys):
    path = tmp_path / "proj.tif"
    tifffile.imwrite(path, np.ones((20, 4, 32), np.float32))
    _refused(capsys, ["tomo", str(path), "--transmission", "--voxel-size-nm", "10", "--out", str(tmp_path / "o")],
             "give --angles-file", tmp_path / "o")


def test_refuses_wrong_number_of_angles(tmp_path, capsys):
    path = tmp_path / "proj.tif"
    tifffile.imwrite(path, np.ones((20, 4, 32), np.float32))
    angles = tmp_path / "angles.txt"
    angles.write_text("\n".join(str(a) for a in range(19)))
    _refused(capsys, ["tomo", str(path), "--transmission", "--voxel-size-nm", "10", "--angles-file", str(angles),
                      "--out", str(tmp_path / "o")], "has 19 angles", tmp_path / "o")


def test_refuses_mismatched_flats(tmp_path, capsys):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f["exchange/data"] = np.ones((20, 4, 32), np.float32)
        f["exchange/data_white"] = np.ones((5, 4, 30), np.float32)
        f["exchange/data_dark"] = np.zeros((5, 4, 32), np.float32)
        f["exchange/theta"] = np.linspace(0, 180, 20, endpoint=False)
    _refused(capsys, ["tomo", str(path), "--voxel-size-nm", "10", "--out", str(tmp_path / "o")],
             "flat fields are 4 x 30 px", tmp_path / "o")


def test_refuses_unknown_voxel_size(shared_data, tmp_path, capsys):
    _refused(capsys, ["tomo", str(shared_data / "tomo" / "tomopy_tooth" / "tooth.h5"), "--out", str(tmp_path / "o")],
             "give it with --voxel-size-nm", tmp_path / "o")


def test_refuses_label_volume_without_particle_label(tmp_path, capsys):
    path = tmp_path / "labels.tif"
    tifffile.imwrite(path, (np.arange(16 ** 3).reshape(16, 16, 16) % 3).astype(np.uint8))
    _refused(capsys, ["tomo", str(path), "--volume", "--voxel-size-nm", "10", "--out", str(tmp_path / "o")],
             "--particle-label", tmp_path / "o")


def test_mrc_tilt_series_with_tlt_file_and_hdf5_volume(tmp_path, phantom, capsys):
    """An MRC tilt series takes its angles from the IMOD .tlt next to it; an HDF5 volume is read with --volume."""
    import mrcfile

    from layerscope.tomo import project_phantom
    from layerscope.tomo.recon import transmission

    proj = project_phantom(phantom.volume[28:36], n_angles=90, photons=1e6, seed=6)
    path = tmp_path / "tilt.st"
    with mrcfile.new(path) as m:
        m.set_data(np.exp(-transmission(proj)[0]).astype(np.float32))
        m.voxel_size = 500.0
    (tmp_path / "tilt.tlt").write_text("\n".join(f"{a:.4f}" for a in proj.angles_deg))
    out = tmp_path / "out"
    assert run(["tomo", str(path), "--transmission", "--reconstruct-only", "--centre-px", "31.5",
                "--out", str(out)]) == 0
    vol = tifffile.imread(out / "volume.tif")
    assert np.sqrt(np.mean((vol - phantom.volume[28:36]) ** 2)) < 0.006
    h5 = tmp_path / "vol.h5"
    with h5py.File(h5, "w") as f:
        f["volume"] = phantom.volume
    out2 = tmp_path / "out2"
    assert run(["tomo", str(h5), "--volume", "--voxel-size-nm", "50", "--out", str(out2)]) == 0
    assert json.loads((out2 / "summary.json").read_text())["n_cracks"] == 4


def test_refuses_pure_noise(tmp_path, capsys):
    """White noise has no particles: the grey levels of its classes differ by 0.49 x the voxel noise."""
    path = tmp_path / "noise.tif"
    tifffile.imwrite(path, np.random.default_rng(0).normal(1, 0.1, (48, 48, 48)).astype(np.float32))
    _refused(capsys, ["tomo", str(path), "--volume", "--voxel-size-nm", "10", "--out", str(tmp_path / "o")],
             "shows no particles in epoxy", tmp_path / "o")


def _slab_projections(tmp_path, phantom, *, photons: float):
    """Four slices of the phantom projected over 0-180 deg (90 angles, ``photons`` per ray) as a transmission TIFF."""
    from layerscope.tomo import project_phantom
    from layerscope.tomo.recon import transmission

    proj = project_phantom(phantom.volume[30:34], n_angles=90, photons=photons, seed=7)
    path = tmp_path / "proj.tif"
    tifffile.imwrite(path, np.exp(-transmission(proj)[0]).astype(np.float32))
    return path


def test_algorithm_option_reaches_astra(tmp_path, phantom, capsys):
    path = _slab_projections(tmp_path, phantom, photons=1e6)
    vols = {}
    for alg in ("fbp", "cgls"):
        out = tmp_path / alg
        assert run(["tomo", str(path), "--transmission", "--angle-range-deg", "0,180", "--voxel-size-nm", "50",
                    "--reconstruct-only", "--centre-px", "31.5", "--algorithm", alg, "--iterations", "12",
                    "--no-rings", "--out", str(out)]) == 0
        s = json.loads((out / "summary.json").read_text())
        assert s["reconstruction"]["algorithm"] == alg and s["reconstruction"]["rings_removed"] is False
        vols[alg] = tifffile.imread(out / "volume.tif")
    truth = phantom.volume[30:34]
    errs = {k: float(np.sqrt(np.mean((v - truth) ** 2))) for k, v in vols.items()}
    assert np.abs(vols["fbp"] - vols["cgls"]).max() > 1e-3  # a different reconstruction ...
    assert max(errs.values()) < 0.006, errs  # ... of the same object


def test_refuses_analysis_of_a_few_slices_before_reconstructing(shared_data, tmp_path, capsys):
    _refused(capsys, ["tomo", str(shared_data / "tomo" / "tomopy_tooth" / "tooth.h5"), "--voxel-size-nm", "1000",
                      "--out", str(tmp_path / "o")], "give --reconstruct-only", tmp_path / "o")


def test_out_of_core_option_gives_the_same_tables_and_is_recorded(tmp_path, phantom_tiff, phantom, capsys):
    """``--out-of-core --slab-slices 9`` on a volume and on projections: the same tables as the in-memory
    run, the options recorded, no scratch file left in --out."""
    outs = {}
    for name, extra in (("memory", []), ("ooc", ["--out-of-core", "--slab-slices", "9"])):
        out = tmp_path / name
        assert run(["tomo", str(phantom_tiff), "--volume", "--out", str(out)] + extra) == 0
        outs[name] = out
    assert "4 particles, 4 cracks, 3 pores" in capsys.readouterr().out
    for table in ("particles.csv", "cracks.csv", "pores.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(outs["memory"] / table), pd.read_csv(outs["ooc"] / table))
    opts = json.loads((outs["ooc"] / "provenance.json").read_text())["parameters"]["options"]
    assert opts["out_of_core"] is True and opts["slab_slices"] == 9
    assert not [p for p in outs["ooc"].iterdir() if p.suffix == ".npy" or p.name.startswith("layerscope-tomo-")]
    from layerscope.tomo import project_phantom
    from layerscope.tomo.recon import transmission

    proj = project_phantom(phantom.volume, n_angles=90, photons=1e5, seed=5)
    path = tmp_path / "proj.tif"
    tifffile.imwrite(path, np.exp(-transmission(proj)[0]).astype(np.float32))
    for name, extra in (("pm", []), ("pooc", ["--out-of-core", "--slab-slices", "11"])):
        assert run(["tomo", str(path), "--transmission", "--angle-range-deg", "0,180", "--voxel-size-nm", "50",
                    "--centre-px", "31.5", "--out", str(tmp_path / name)] + extra) == 0
    for table in ("particles.csv", "cracks.csv", "pores.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "pm" / table), pd.read_csv(tmp_path / "pooc" / table))
    assert len(pd.read_csv(tmp_path / "pooc" / "particles.csv")) == 4
    assert sorted(p.name for p in (tmp_path / "pooc").iterdir()) == sorted(p.name for p in (tmp_path / "pm").iterdir())


@pytest.mark.parametrize("units, refused", [(None, True), ("radians", False), ("degrees", False)])
def test_theta_in_radians_without_units_is_not_guessed(tmp_path, capsys, units, refused):
    # 0..pi over 20 projections: radians (a half turn) or a 3-degree tilt; without a unit it is refused.
    path = tmp_path / "theta.h5"
    with h5py.File(path, "w") as f:
        f["exchange/data"] = np.ones((20, 4, 32), np.float32)
        f["exchange/theta"] = np.linspace(0, np.pi, 20, endpoint=False)
        if units:
            f["exchange/theta"].attrs["units"] = units
    args = ["tomo", str(path), "--transmission", "--voxel-size-nm", "10", "--reconstruct-only", "--centre-px", "15.5"]
    if refused:
        _refused(capsys, args + ["--out", str(tmp_path / "o")], "no 'units' attribute", tmp_path / "o")
        # The fix the message names works: the angles given in degrees on the command line.
        assert run(args + ["--angle-range-deg", "0,180", "--out", str(tmp_path / "fixed")]) == 0
        return
    from layerscope.tomo.readers import read_tomo

    proj = read_tomo(path, voxel_size_nm=10, transmission=True)
    # radians: converted (0..171 deg); degrees: used as read (a 3-degree tilt, flagged limited_angle later).
    expected = 180.0 * 19 / 20 if units == "radians" else np.pi * 19 / 20
    assert np.ptp(proj.angles_deg) == pytest.approx(expected, rel=1e-9)


def test_folder_of_tiff_slices_reads_like_the_stack(tmp_path, phantom, capsys):
    """A reconstructed volume as one 2-D TIFF per slice (TomoPy's write_tiff_stack, Avizo, Fiji): stacked in
    natural name order (slice_2 before slice_10), voxel size from the first file, counts as from the stack."""
    import hashlib

    from layerscope.tomo.outputs import write_volume
    from layerscope.tomo.readers import read_tomo

    folder = tmp_path / "slices"
    folder.mkdir()
    order = np.random.default_rng(0).permutation(phantom.volume.shape[0])
    for z in order:  # written out of order: the reader must sort by the number in the name, not by time
        write_volume(phantom.volume[z:z + 1], 50.0, folder / f"slice_{z}.tif")
    vol = read_tomo(folder, volume=True)
    assert vol.voxel_size_nm == pytest.approx(50.0)
    np.testing.assert_array_equal(vol.data, phantom.volume)  # slice z of the folder is slice z of the volume
    out = tmp_path / "out"
    assert run(["tomo", str(folder), "--volume", "--out", str(out)]) == 0
    assert "4 particles, 4 cracks" in capsys.readouterr().out
    rec = json.loads((out / "provenance.json").read_text())["inputs"][0]
    files = sorted(folder.iterdir())
    expected = hashlib.sha256("".join(f"{p.name}\0{hashlib.sha256(p.read_bytes()).hexdigest()}\n"
                                      for p in files).encode()).hexdigest()
    assert (rec["kind"], rec["sha256"]) == ("folder", expected)


def test_folder_of_tiffs_of_different_sizes_or_none_is_refused(tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    tifffile.imwrite(folder / "a_1.tif", np.ones((8, 8), np.float32))
    tifffile.imwrite(folder / "a_2.tif", np.ones((8, 9), np.float32))
    _refused(capsys, ["tomo", str(folder), "--volume", "--voxel-size-nm", "10", "--out", str(tmp_path / "o")],
             "'a_2.tif' is 8 x 9 px", tmp_path / "o")
    empty = tmp_path / "empty"
    empty.mkdir()
    _refused(capsys, ["tomo", str(empty), "--volume", "--voxel-size-nm", "10", "--out", str(tmp_path / "o")],
             "holds no TIFF files", tmp_path / "o")


def test_fbp_filter_option_reaches_astra(tmp_path, phantom, capsys):
    """``--fbp-filter hann`` reaches ASTRA's FBP (tomorecon): recorded in summary.json, and the slices differ from
    Ram-Lak's by the taper: the Hann slices are smoother (the RMS of the difference of neighbouring voxels inside
    the particles, measured 0.69 x Ram-Lak's at 1e4 photons; bound 0.8 x) and both stay near the truth (RMS error,
    measured 0.0040 Ram-Lak and 0.0056 Hann, the blur; bound 20 % of the particle-epoxy contrast, 0.009); an
    unknown filter is refused (exit 2)."""
    path = _slab_projections(tmp_path, phantom, photons=1e4)
    vols = {}
    for name in ("ram-lak", "hann"):
        out = tmp_path / name
        assert run(["tomo", str(path), "--transmission", "--angle-range-deg", "0,180", "--voxel-size-nm", "50",
                    "--reconstruct-only", "--centre-px", "31.5", "--fbp-filter", name, "--no-rings",
                    "--out", str(out)]) == 0
        s = json.loads((out / "summary.json").read_text())
        assert s["reconstruction"]["fbp_filter"] == name
        vols[name] = tifffile.imread(out / "volume.tif")
    inside = np.asarray(phantom.particles[30:34] > 0)[:, :, 1:] & np.asarray(phantom.particles[30:34] > 0)[:, :, :-1]
    rough = {k: float(np.sqrt(np.mean(np.diff(v, axis=2)[inside] ** 2))) for k, v in vols.items()}
    assert rough["hann"] < 0.8 * rough["ram-lak"], rough
    truth = phantom.volume[30:34]
    contrast = 0.05 - 0.005
    errs = {k: float(np.sqrt(np.mean((v - truth) ** 2))) for k, v in vols.items()}
    assert max(errs.values()) < 0.2 * contrast, errs
    assert run(["tomo", str(path), "--transmission", "--angle-range-deg", "0,180", "--voxel-size-nm", "50",
                "--reconstruct-only", "--fbp-filter", "gauss", "--out", str(tmp_path / "bad")]) == 2
    assert "--fbp-filter 'gauss'" in capsys.readouterr().err
