"""Corpus rows of the tomography domain (``layerscope tomo``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from corpus import Row

TOOTH = "tomo/tomopy_tooth/tooth.h5"
NREL = "tomo/nrel_nmc_ct/nmc-1-cal_generatedCBD_bridge.tif"


def _check_tooth(out: Path, stdout: str) -> None:
    """The centre against 0/180 deg registration of the raw file; the outline against a plain iradon."""
    import h5py
    import tifffile
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu
    from skimage.registration import phase_cross_correlation
    from skimage.transform import iradon

    s = json.loads((out / "summary.json").read_text())
    with h5py.File(Path(s["provenance"]["inputs"][0]["name"]), "r") as f:
        data, flat, dark = (f[f"exchange/{k}"][()].astype(float) for k in ("data", "data_white", "data_dark"))
        theta = f["exchange/theta"][()]
    lines = -np.log(np.clip((data - dark.mean(0)) / (flat.mean(0) - dark.mean(0)), 1e-6, None))
    p0, p180 = lines[0].mean(0), lines[np.argmin(abs(theta - 180))].mean(0)[::-1]
    shift = phase_cross_correlation(p0[None], p180[None], upsample_factor=20)[0][1]
    centre = (lines.shape[2] - 1) / 2 + shift / 2
    assert abs(s["reconstruction"]["centre_px"] - centre) < 2.0, (s["reconstruction"], centre)
    vol = tifffile.imread(out / "volume.tif")
    assert vol.shape == (2, 640, 640)
    ref = iradon(ndi.shift(lines[:, 1], (0, 319.5 - centre), order=3).T, theta=theta, filter_name="ramp")
    areas = []
    for img in (vol[1], ref):
        sm = ndi.gaussian_filter(img, 2)
        m = ndi.binary_fill_holes(ndi.binary_opening(sm > threshold_otsu(sm), iterations=2))
        lab, _ = ndi.label(m)
        areas.append(int(np.bincount(lab.ravel())[1:].max()))
    assert areas[0] > 5000 and abs(areas[0] / areas[1] - 1) < 0.05, areas
    assert "reconstructed 2 x 640 x 640" in stdout
    _check_tooth_extension(s, vol)


def _check_tooth_extension(s: dict, vol: np.ndarray) -> None:
    """The sample lies inside the field: the mass extension extends no angle (its air edge drifts above the
    noise at scattered angles only) and the volume equals plain FBP's within 1e-6 x its maximum."""
    from layerscope.tomo import ReconOptions, read_tomo, reconstruct

    done = s["reconstruction"]["sinogram_extension_done"]
    assert done["references"] == {"empty_edges": 2} and done["angles_extended"] == 0, done
    tooth = read_tomo(Path(s["provenance"]["inputs"][0]["name"]), voxel_size_nm=1000.0)
    plain = reconstruct(tooth, ReconOptions(extend_sinogram=False, centre_px=s["reconstruction"]["centre_px"]))
    assert np.abs(vol - plain.volume).max() <= 1e-6 * np.abs(plain.volume).max()


def _check_nrel(out: Path, stdout: str) -> None:
    """Porosity and phase fractions against NumPy on the binned labels; counts are plausible."""
    import tifffile

    s = json.loads((out / "summary.json").read_text())
    v = tifffile.imread(Path(s["provenance"]["inputs"][0]["name"]))[::2, ::2, ::2]
    assert abs(s["porosity"] - float(np.mean(v == 0))) < 1e-12
    assert abs(s["label_fractions"]["1"] - float(np.mean(v == 1))) < 1e-12
    assert abs(s["porosity"] - 0.401) < 0.005  # full resolution: 9,108,821 of 22,740,851 voxels
    assert s["voxel_size_nm"] == 800.0  # nominal 400 nm, binned by 2
    assert 30 < s["n_particles"] < 400, s["n_particles"]  # secondary particles cut by a 100 um box
    assert s["n_cracks"] == 0  # segmented labels of whole particles: no internal sheet-like holes
    assert f"{s['n_particles']} particles" in stdout


ROWS = [
    Row(path=TOOTH, args=["tomo", "{file}", "--out", "{out}", "--voxel-size-nm", "1000", "--reconstruct-only",
                          "--extend-sinogram"],
        check=_check_tooth,
        why="real DXchange projections (181 x 2 x 640, darks, flats, angles; no pixel size in the file, 1000 nm "
            "is nominal): FBP centre within 2 px of 0/180 deg registration, outline area within 5 % of a plain "
            "scikit-image iradon; with the mass truncation correction (the sample is inside the field) no angle "
            "extended, the volume equal to plain FBP's"),
    Row(path=NREL, args=["tomo", "{file}", "--volume", "--out", "{out}", "--voxel-size-nm", "400",
                         "--particle-label", "1", "--pore-label", "0", "--bin", "2"],
        check=_check_nrel, slow=True,
        why="real segmented NMC electrode (labels 0 pore, 1 NMC, 2 carbon-binder; voxel size not in the file, "
            "400 nm is nominal since the NREL README is not here): porosity and NMC fraction equal NumPy's on the "
            "binned labels; particle count plausible, no cracks"),
]
