"""Degrading a clean simulated image into a realistic acquisition: blur, background, scan, dose.

The clean image (from :func:`~layerscope.simulate.simulate_haadf` or
:func:`~layerscope.simulate.simulate_multislice`) holds, per pixel, the **fraction of the incident
beam that reaches the detector**. :func:`degrade` applies, in the order they happen physically:

1. ``blur_nm``: Gaussian blur of the given FWHM (source size, vibration, defocus spread);
2. ``background``: a uniform detected fraction added everywhere (amorphous surface layers,
   carbon support, detector offset expressed as a fraction of the beam);
3. the scan: the probe visits pixel ``(row, col)`` at time ``t = row * (n_cols * dwell +
   flyback) + col * dwell`` at the *sample* position

       x = col - A exp(-col / tau) + j_row - v_x t / p,     y = row - v_y t / p     (pixels),

   i.e. a flyback distortion of amplitude ``A = scan_distortion_px`` decaying over ``tau =
   scan_distortion_decay_px`` at the start of every line, a random horizontal offset ``j_row``
   per line (rms ``scan_jitter_px``, line "tearing") and a uniform sample drift ``v`` (nm/s);
   the clean image is resampled there with cubic splines;
4. ``dose_e_per_A2``: every pixel receives ``N = dose * (10 * pixel_size_nm)^2`` electrons, and the
   detector counts ``Poisson(N * fraction)`` of them.

So the degraded image is in **detected electrons per pixel**: its mean divided by ``N`` (stored as
``metadata["electrons_per_pixel"]``) is the mean detected fraction, and vacuum gives zero counts
plus the background. As a guide, a TM column 10 nm thick scatters ~5-20 % of a 200 kV probe onto
a HAADF detector; atomic-resolution images are recorded at 10^4 to 10^6 e/A^2.

References
----------
- L. Jones and P. D. Nellist, "Identifying and correcting scan noise and drift in the scanning
  transmission electron microscope", Microsc. Microanal. 19, 1050 (2013): line jitter, flyback
  distortion and drift as a displacement of each scan position.
- A. De Backer et al., Ultramicroscopy 151, 46 (2015), for Poisson counting at a given dose.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

from layerscope.containers import Image
from layerscope.errors import InputError
from layerscope.simulate.incoherent import FWHM_PER_SIGMA

__all__ = ["ScanModel", "degrade", "apparent_columns"]


@dataclass(frozen=True)
class ScanModel:
    """Where the probe really was when each pixel was recorded (see the module docstring).

    Attributes
    ----------
    jitter_px : float
        RMS of a random horizontal offset per scan line, in pixels.
    distortion_px : float
        Amplitude of the flyback distortion at the start of each line, in pixels (the probe lags
        behind its nominal position by this much at ``col = 0``).
    distortion_decay_px : float or None
        Decay length of the flyback distortion along the line, in pixels.
    drift_nm_per_s : (float, float)
        Sample drift velocity ``(v_x, v_y)`` in nm/s.
    dwell_time_s : float or None
        Dwell time per pixel in s (needed for drift).
    line_flyback_s : float
        Dead time between lines in s (adds to the drift between lines).
    """

    jitter_px: float = 0.0
    distortion_px: float = 0.0
    distortion_decay_px: float | None = None
    drift_nm_per_s: tuple[float, float] = (0.0, 0.0)
    dwell_time_s: float | None = None
    line_flyback_s: float = 0.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.jitter_px) and self.jitter_px >= 0):
            raise InputError(f"scan_jitter_px={self.jitter_px!r} must be a non-negative rms in pixels")
        if not np.isfinite(self.distortion_px):
            raise InputError(f"scan_distortion_px={self.distortion_px!r} must be a finite amplitude in pixels")
        if self.distortion_px != 0 and not (self.distortion_decay_px and self.distortion_decay_px > 0):
            raise InputError(
                f"scan_distortion_px={self.distortion_px} needs scan_distortion_decay_px (pixels over which the "
                f"flyback distortion decays along a line, e.g. 20)"
            )
        if len(self.drift_nm_per_s) != 2 or not np.all(np.isfinite(self.drift_nm_per_s)):
            raise InputError(f"drift_nm_per_s={self.drift_nm_per_s!r} must be (v_x, v_y) in nm/s")
        if any(self.drift_nm_per_s) and not (self.dwell_time_s and self.dwell_time_s > 0):
            raise InputError(
                f"drift_nm_per_s={tuple(self.drift_nm_per_s)} needs dwell_time_s (the time per pixel in s, "
                f"e.g. 1e-5) to know how far the sample moves during the scan"
            )
        if not (np.isfinite(self.line_flyback_s) and self.line_flyback_s >= 0):
            raise InputError(f"line_flyback_s={self.line_flyback_s!r} must be a non-negative time in s")

    @property
    def is_identity(self) -> bool:
        return self.jitter_px == 0 and self.distortion_px == 0 and not any(self.drift_nm_per_s)

    def _times(self, rows: np.ndarray, cols: np.ndarray, n_cols: int) -> np.ndarray:
        dwell = self.dwell_time_s or 0.0
        return rows * (n_cols * dwell + self.line_flyback_s) + cols * dwell

    def _flyback(self, cols: np.ndarray) -> np.ndarray:
        if self.distortion_px == 0:
            return np.zeros_like(cols, dtype=float)
        # the scan line starts at column 0: positions left of it get the distortion of its start
        # (unclipped, the inversion in apparent_pixels overflows for columns far left of the image)
        cols = np.maximum(np.asarray(cols, dtype=float), 0.0)
        return self.distortion_px * np.exp(-cols / self.distortion_decay_px)

    def sample_coordinates(
        self, shape: tuple[int, int], pixel_size_nm: float, *, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sample position (continuous pixel indices ``row, col``) seen at every pixel of the scan."""
        ny, nx = shape
        rows, cols = np.meshgrid(np.arange(ny, dtype=float), np.arange(nx, dtype=float), indexing="ij")
        jitter = np.random.default_rng(seed).normal(0.0, self.jitter_px, ny) if self.jitter_px else np.zeros(ny)
        t = self._times(rows, cols, nx)
        vx, vy = (v / pixel_size_nm for v in self.drift_nm_per_s)
        x = cols - self._flyback(cols) + jitter[:, None] - vx * t
        y = rows - vy * t
        return y, x

    def apparent_pixels(
        self, row: np.ndarray, col: np.ndarray, *, n_cols: int, pixel_size_nm: float, iterations: int = 100
    ) -> tuple[np.ndarray, np.ndarray]:
        """Where sample points at pixel coordinates ``(row, col)`` appear in the scanned image.

        Inverts :meth:`sample_coordinates` for the smooth part of the model (drift and flyback;
        the zero-mean random line jitter is left out) by fixed-point iteration.
        """
        vx, vy = (v / pixel_size_nm for v in self.drift_nm_per_s)
        r = np.asarray(row, dtype=float).copy()
        c = np.asarray(col, dtype=float).copy()
        for _ in range(iterations):
            t = self._times(r, c, n_cols)
            r_new = row + vy * t
            c_new = col + self._flyback(c) + vx * t
            done = np.max(np.abs(r_new - r), initial=0) < 1e-9 and np.max(np.abs(c_new - c), initial=0) < 1e-9
            r, c = r_new, c_new
            if done:
                break
        return r, c


def degrade(
    image: Image,
    *,
    dose_e_per_A2: float | None,
    seed: int,
    blur_nm: float = 0.0,
    background: float = 0.0,
    scan_jitter_px: float = 0.0,
    scan_distortion_px: float = 0.0,
    scan_distortion_decay_px: float | None = None,
    drift_nm_per_s: tuple[float, float] = (0.0, 0.0),
    dwell_time_s: float | None = None,
    line_flyback_s: float = 0.0,
) -> Image:
    """A realistic acquisition of a clean simulated image: blur, background, scan errors, shot noise.

    Parameters
    ----------
    image : layerscope.containers.Image
        Clean image whose pixels are the fraction of the incident beam on the detector (what the
        simulators return), between 0 and 1.
    dose_e_per_A2 : float or None
        Electron dose in e/A^2. Each pixel gets ``dose * (10 * pixel_size_nm)^2`` electrons and
        the output is Poisson-distributed detected electrons per pixel. ``None``: no shot noise,
        the output keeps the input's units.
    seed : int
        Seed of the random generator (line jitter and Poisson noise); same seed, same image.
    blur_nm : float
        FWHM of an extra Gaussian blur in nm (0: none).
    background : float
        Uniform detected fraction added to every pixel (0: none).
    scan_jitter_px : float
        RMS random horizontal offset of each scan line, in pixels.
    scan_distortion_px, scan_distortion_decay_px : float
        Flyback distortion amplitude and decay length along each line, in pixels.
    drift_nm_per_s : (float, float)
        Sample drift ``(v_x, v_y)`` in nm/s during the scan; needs ``dwell_time_s``.
    dwell_time_s : float, optional
        Time per pixel in s.
    line_flyback_s : float
        Dead time between scan lines in s.

    Returns
    -------
    layerscope.containers.Image
        Same calibration; ``metadata["degradation"]`` records every parameter and the seed (so
        :func:`apparent_columns` can place the truth in the degraded frame),
        ``metadata["electrons_per_pixel"]`` the electrons per pixel, and ``signal_units`` the units.

    Raises
    ------
    InputError
        For negative or non-finite parameters, or an input that is not a detected fraction (values
        outside [0, 1] when a dose is given).

    References
    ----------
    L. Jones and P. D. Nellist, Microsc. Microanal. 19, 1050 (2013).
    """
    if not isinstance(image, Image):
        raise InputError(
            f"degrade needs a layerscope.containers.Image, got {type(image).__name__}; wrap an array with "
            f"Image.from_array(data, pixel_size_nm=...)"
        )
    p = image.pixel_size_nm
    data = np.asarray(image.compute().data, dtype=float)
    for name, value in (("blur_nm", blur_nm), ("background", background)):
        if not (np.isfinite(value) and value >= 0):
            raise InputError(f"{name}={value!r} must be a non-negative number")
    scan = ScanModel(
        jitter_px=float(scan_jitter_px),
        distortion_px=float(scan_distortion_px),
        distortion_decay_px=None if scan_distortion_decay_px is None else float(scan_distortion_decay_px),
        drift_nm_per_s=tuple(float(v) for v in drift_nm_per_s),
        dwell_time_s=None if dwell_time_s is None else float(dwell_time_s),
        line_flyback_s=float(line_flyback_s),
    )
    if blur_nm > 0:
        data = ndimage.gaussian_filter(data, blur_nm / FWHM_PER_SIGMA / p, mode="reflect", truncate=5.0)
    data = data + background
    if not scan.is_identity:
        y, x = scan.sample_coordinates(data.shape, p, seed=seed)
        data = ndimage.map_coordinates(data, [y, x], order=3, mode="reflect", prefilter=True)
        data = np.clip(data, 0.0, None)  # cubic splines undershoot next to sharp peaks
    metadata = dict(image.metadata)
    record = {
        "dose_e_per_A2": dose_e_per_A2,
        "seed": int(seed),
        "blur_nm": float(blur_nm),
        "background": float(background),
        **{f"scan_{k}": v for k, v in asdict(scan).items()},
    }
    if dose_e_per_A2 is not None:
        if not (np.isfinite(dose_e_per_A2) and dose_e_per_A2 > 0):
            raise InputError(f"dose_e_per_A2={dose_e_per_A2!r} must be a positive dose in e/A^2 (e.g. 1e5)")
        lo, hi = float(data.min()), float(data.max())
        if lo < 0 or hi > 1:
            raise InputError(
                f"the image (after background) spans {lo:.3g}..{hi:.3g}, but a dose needs pixel values that "
                f"are the detected fraction of the beam (0..1), as the simulators return; rescale the image "
                f"or pass dose_e_per_A2=None"
            )
        electrons = float(dose_e_per_A2) * (10.0 * p) ** 2
        # the jitter above used `seed`; the shot noise uses an independent stream of the same seed
        rng = np.random.default_rng([int(seed), 1])
        data = rng.poisson(electrons * data).astype(np.float32)
        metadata["electrons_per_pixel"] = electrons
        metadata["signal_units"] = "detected electrons per pixel"
    metadata["degradation"] = record
    metadata["title"] = f"{metadata.get('title', 'image')} (degraded)"
    return Image.from_array(data, pixel_size_nm=p, metadata=metadata, source=image.source)


def apparent_columns(columns: pd.DataFrame, degraded: Image) -> pd.DataFrame:
    """The ground-truth columns placed where they appear in a degraded image.

    Applies the smooth part of the scan model recorded by :func:`degrade` (drift and flyback
    distortion; the zero-mean random line jitter cannot be assigned to a column and is left out)
    to ``x_nm, y_nm``. The original positions are kept as ``x_true_nm, y_true_nm``; ``in_image``
    says whether the column still falls inside the image.

    Parameters
    ----------
    columns : pandas.DataFrame
        Ground truth with ``x_nm, y_nm`` (e.g. ``Simulation.columns``).
    degraded : layerscope.containers.Image
        The output of :func:`degrade`.
    """
    record = degraded.metadata.get("degradation")
    if record is None:
        raise InputError("the image has no metadata['degradation'] record; pass the output of simulate.degrade")
    scan = ScanModel(
        jitter_px=0.0,
        distortion_px=record["scan_distortion_px"],
        distortion_decay_px=record["scan_distortion_decay_px"],
        drift_nm_per_s=tuple(record["scan_drift_nm_per_s"]),
        dwell_time_s=record["scan_dwell_time_s"],
        line_flyback_s=record["scan_line_flyback_s"],
    )
    p = degraded.pixel_size_nm
    ny, nx = degraded.shape
    row = columns["y_nm"].to_numpy() / p - 0.5
    col = columns["x_nm"].to_numpy() / p - 0.5
    r, c = scan.apparent_pixels(row, col, n_cols=nx, pixel_size_nm=p)
    out = columns.copy()
    out["x_true_nm"] = out["x_nm"]
    out["y_true_nm"] = out["y_nm"]
    out["x_nm"] = (c + 0.5) * p
    out["y_nm"] = (r + 0.5) * p
    out["in_image"] = (c >= -0.5) & (c < nx - 0.5) & (r >= -0.5) & (r < ny - 0.5)
    return out
