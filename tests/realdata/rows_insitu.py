"""Real-data rows of the in situ domain: the gold growth movie (13 TIFF frames, 1917 x 1851 px).

The row of frame 0000 runs the whole folder the way a user would: drift only (``--no-voids
--no-cracks``: the dark features of a growth movie are gold particles, not voids or cracks, and
the void/crack labels are made for cathodes), no movie. Its drift is checked against
scikit-image's ``phase_cross_correlation`` on the raw pixels (an independent implementation);
frames 0001-0012 are read with it.
"""

from __future__ import annotations

import json
from pathlib import Path

from corpus import Row

FOLDER = "insitu/gold_growth_movie"
STEM = "gold_growth_video_holder_test_070921_"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"

#: the largest allowed difference (px, per axis) between layerscope's drift and scikit-image's
#: phase correlation (normalization="phase"): both are sub-pixel (1/20 px), but layerscope tapers
#: the frame edges and whitens the spectrum only half way; on this movie the plain phase correlation
#: of the untapered frames differs by up to 0.50 px (frame 4), rms 0.26 px over the 12 frames
DRIFT_TOL_PX = 0.5
#: ... and against scikit-image's plain cross-correlation (normalization=None), which follows
#: layerscope within 0.15 px per axis on every frame of this movie (rms 0.10 px)
DRIFT_TOL_CC_PX = 0.3


def _skimage_drift(k: int, normalization: str | None = "phase") -> tuple[float, float]:
    """Drift (rows, cols; px) of frame ``k`` against frame 0 by scikit-image on the raw pixels."""
    import tifffile
    from skimage.registration import phase_cross_correlation

    ref = tifffile.imread(SHARED / FOLDER / f"{STEM}0000.tif").astype(float)
    mov = tifffile.imread(SHARED / FOLDER / f"{STEM}{k:04d}.tif").astype(float)
    shift, _, _ = phase_cross_correlation(ref, mov, upsample_factor=20, normalization=normalization)
    # scikit-image returns the shift that registers ``mov`` onto ``ref``: minus the drift
    return float(-shift[0]), float(-shift[1])


def _check_gold_movie(out: Path, stdout: str) -> None:
    import numpy as np
    import pandas as pd

    assert "13 of 13 frames analysed" in stdout, stdout
    frames = pd.read_csv(out / "frames.csv")
    assert list(frames["frame"]) == list(range(13)) and (frames["status"] == "ok").all()
    np.testing.assert_allclose(frames["time_s"], np.arange(13.0))  # --fps 1
    # one step (phase and cross-correlation), and the whole movie (about 4 px of drift)
    for k, norm, tol in ((1, "phase", DRIFT_TOL_PX), (12, None, DRIFT_TOL_CC_PX)):
        dy, dx = _skimage_drift(k, norm)
        row = frames.loc[frames["frame"] == k].iloc[0]
        assert abs(row["drift_y_px"] - dy) <= tol, (k, norm, row["drift_y_px"], dy)
        assert abs(row["drift_x_px"] - dx) <= tol, (k, norm, row["drift_x_px"], dx)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frame_shape"] == [1917, 1851]
    assert summary["drift"]["reference"] == "first"  # no lattice: every frame against the first
    # the drift in nm is the drift in px times the given pixel size
    np.testing.assert_allclose(frames["drift_x_nm"], frames["drift_x_px"] * 0.163, rtol=1e-9)
    assert "voids" not in summary and "cracks" not in summary
    assert summary["flags"] == [], summary["flags"]  # drift only: nothing labelled that the movie cannot support


ROWS = [
    Row(path=f"{FOLDER}/{STEM}0000.tif",
        args=["insitu", "{dir}", "--pixel-size-nm", "0.163", "--fps", "1", "--out", "{out}",
              "--no-voids", "--no-cracks", "--movie", "none"],
        expect="ok", check=_check_gold_movie,
        why=f"whole 13-frame movie (odd, non-square 1917 x 1851 px frames), drift only: frame 1 against frame 0 "
            f"agrees with scikit-image phase_cross_correlation on the raw pixels within {DRIFT_TOL_PX} px per axis, "
            f"frame 12 (4 px of drift) with its cross-correlation (normalization=None) within {DRIFT_TOL_CC_PX} px; "
            f"no flags"),
] + [
    Row(path=f"{FOLDER}/{STEM}{k:04d}.tif", expect="companion", of=f"{FOLDER}/{STEM}0000.tif",
        why=f"frame {k} of the movie folder, analysed with frame 0000's row")
    for k in range(1, 13)
]
