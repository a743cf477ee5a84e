"""Exact multislice of a layered scene that is too large for one box: periodic in x, windows in y.

A stack of phases seen edge-on (:func:`layerscope.crystal.scenes.stack`) is periodic along the
layers (x) and not across them (y). Its multislice image is built from two facts:

- **x**: built one period wide, the scene's image is periodic and band-limited, so one period
  scanned at or below the HAADF Nyquist step ``lambda / (4 alpha)`` determines it exactly on any
  grid (:mod:`layerscope.simulate.periodic`). The box repeats the period until it is at least
  ``box_width_min_nm`` wide, so the probe's periodic copies stay apart (0.6 % of the peak at
  0.975 nm for LiCoO2, 200 kV, 25 mrad; 3 % at 0.49 nm).
- **y**: the probe only sees the crystal within ~1 nm of itself, so the scan is cut into windows of
  ``rows_per_window`` rows and each window is simulated in its own box: its rows plus at least
  ``margin_nm`` of the scene above and below, wrapped periodically. Vacuum is added above and
  below the scene so that the whole scan is periodic in y too, and the same trigonometric
  interpolation resamples it.

Box sizes are rounded up to FFT-friendly pixel counts (2^a 3^b): 256 x 768 potential pixels cost
0.22 s per probe position on one CPU core where 257 x 768 cost 0.50 s (abTEM 1.0.11, FFTW).

Coordinates: ``x`` to the right and ``y`` down, in nm, from the scene's origin; scan sample
``[i, j]`` is at ``x = (j + 0.5) step``, ``y = y_start + (i + 0.5) step``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from layerscope.containers import Image
from layerscope.errors import InputError
from layerscope.provenance import Provenance, structure_sha256
from layerscope.simulate.columns import project_columns
from layerscope.simulate.incoherent import check_positive, electron_wavelength_A
from layerscope.simulate.multislice import detector_angles_mrad, potential_sampling_A
from layerscope.simulate.periodic import stem_max_harmonic, trig_interpolation_matrix
from layerscope.simulate.result import Simulation

__all__ = ["StackScan", "stack_geometry", "simulate_multislice_stack"]


def _fft_size(n: float) -> int:
    """Smallest 2^a 3^b at or above ``n``."""
    sizes = sorted(2**a * 3**b for a in range(15) for b in range(8))
    return next(s for s in sizes if s >= n)


@dataclass(frozen=True)
class StackGeometry:
    """Scan and box layout of a windowed stack simulation (lengths in nm, potential pixels in A)."""

    period_x_nm: float
    step_nm: float
    n_x: int
    y_start_nm: float
    n_rows: int
    rows_per_window: int
    box_reps: int
    box_height_nm: float
    sampling_A: float
    gpts: tuple[int, int]

    @property
    def n_windows(self) -> int:
        return self.n_rows // self.rows_per_window

    @property
    def margin_nm(self) -> float:
        """Scene above and below each window's rows inside its box."""
        return 0.5 * (self.box_height_nm - self.rows_per_window * self.step_nm)


def stack_geometry(
    atoms,
    *,
    scan_step_nm: float = 0.0235,
    rows_per_window: int = 61,
    margin_nm: float = 0.75,
    box_width_min_nm: float = 0.95,
    vacuum_nm: float = 0.6,
    energy_keV: float = 200.0,
    convergence_mrad: float = 25.0,
    detector: str | tuple[float, float] = "HAADF",
) -> StackGeometry:
    """Layout of :func:`simulate_multislice_stack` for ``atoms`` (see its parameters)."""
    if atoms.cell[0, 0] <= 0 or atoms.cell[1, 1] <= 0 or atoms.cell[2, 2] <= 0:
        raise InputError("the scene needs an orthogonal cell with positive x, y and z extents (Angstrom)")
    period = atoms.cell[0, 0] / 10.0
    nyquist = electron_wavelength_A(energy_keV) / 10.0 / (4.0 * convergence_mrad * 1e-3)
    n_x = int(np.ceil(period / check_positive("scan_step_nm", scan_step_nm, "nm, e.g. 0.0235") - 1e-9))
    step = period / n_x
    if step > nyquist:
        raise InputError(f"scan_step_nm={scan_step_nm} is coarser than the Nyquist step {nyquist:.4f} nm of a "
                         f"{convergence_mrad:g} mrad probe at {energy_keV:g} keV; the scan would not determine the image")
    rows = int(rows_per_window)
    if rows < 1:
        raise InputError(f"rows_per_window={rows_per_window} must be a positive integer")
    vac = check_positive("vacuum_nm", vacuum_nm, "nm of vacuum above and below the scene, e.g. 0.6")
    n_windows = int(np.ceil((atoms.cell[1, 1] / 10.0 + 2 * vac) / (rows * step)))
    box_reps = max(1, int(np.ceil(box_width_min_nm / period - 1e-9)))
    inner, outer = detector_angles_mrad(detector, convergence_mrad)
    per_period = _fft_size(10.0 * period / potential_sampling_A(energy_keV, max(outer, convergence_mrad)))
    pixel_A = 10.0 * period / per_period
    gpts_y = _fft_size((rows * step + 2 * check_positive("margin_nm", margin_nm, "nm, e.g. 0.75")) * 10.0 / pixel_A)
    return StackGeometry(period_x_nm=period, step_nm=step, n_x=n_x, y_start_nm=-vac, n_rows=n_windows * rows,
                         rows_per_window=rows, box_reps=box_reps, box_height_nm=gpts_y * pixel_A / 10.0,
                         sampling_A=pixel_A, gpts=(per_period * box_reps, gpts_y))


def _window_box(atoms, geo: StackGeometry, window: int, box_height_nm: float | None = None):
    """Atoms of one window's box: the window's first row at the box origin, the scene above the
    window wrapped to the top of the box, the scene below filling the rest; x repeated."""
    height = 10.0 * (geo.box_height_nm if box_height_nm is None else box_height_nm)
    y0 = 10.0 * (geo.y_start_nm + window * geo.rows_per_window * geo.step_nm)
    rows_A = 10.0 * geo.rows_per_window * geo.step_nm
    margin = 0.5 * (height - rows_A)
    y = atoms.positions[:, 1] - y0
    box = atoms[(y >= -margin) & (y < rows_A + margin)]
    box.positions[:, 1] = np.mod(box.positions[:, 1] - y0, height)
    box.cell[1, 1] = height
    box = box.repeat((geo.box_reps, 1, 1))
    box.pbc = True
    return box


def _simulate_window(window: int, *, atoms, geo: StackGeometry, cache_dir: Path | None,
                     multislice: dict[str, Any]) -> np.ndarray:
    """Scan of one window, ``(rows_per_window, n_x)``; read from / written to ``cache_dir``."""
    path = None if cache_dir is None else cache_dir / f"window{window:03d}.npy"
    if path is not None and path.is_file():
        return np.load(path)
    from layerscope.simulate.multislice import simulate_multislice

    box = _window_box(atoms, geo, window)
    # a hair over the pixel: abTEM takes gpts = ceil(extent / sampling)
    ms = simulate_multislice(box, scan_step_nm=geo.step_nm, sampling_A=geo.sampling_A * (1 + 1e-9),
                             field_nm=(geo.n_x * geo.step_nm, geo.rows_per_window * geo.step_nm), **multislice)
    data = np.asarray(ms.image.data, dtype=np.float32)
    if path is not None:
        tmp = path.with_name(path.stem + ".partial.npy")
        np.save(tmp, data)
        tmp.replace(path)  # never a half-written window
    return data


@dataclass
class StackScan:
    """The scan of a stack: samples, their geometry and the simulation parameters.

    Attributes
    ----------
    scan : numpy.ndarray, shape (n_rows, n_x)
        Fraction of the incident beam on the detector; sample ``[i, j]`` at
        ``x = (j + 0.5) step_nm``, ``y = y_start_nm + (i + 0.5) step_nm``.
    geometry : StackGeometry
        Period, step, windows and boxes.
    parameters : dict
        Beam, detector, slices and what :func:`~layerscope.simulate.simulate_multislice` was given.
    """

    scan: np.ndarray
    geometry: StackGeometry
    parameters: dict = field(default_factory=dict)

    def max_harmonic(self) -> tuple[int, int]:
        """Highest harmonics ``(Kx, Ky)`` of the x period and of the scan's y extent."""
        g, p = self.geometry, self.parameters
        beam = {"energy_keV": p["energy_keV"], "convergence_mrad": p["convergence_mrad"]}
        kx = stem_max_harmonic(g.period_x_nm, box_nm=g.period_x_nm * g.box_reps, **beam)
        ky = stem_max_harmonic(g.n_rows * g.step_nm, box_nm=g.box_height_nm, **beam)
        return kx, ky

    def resample(self, *, pixel_size_nm: float, shape: tuple[int, int]) -> np.ndarray:
        """The image on a pixel grid from the scene's origin: pixel ``[r, c]`` at
        ``((c + 0.5) pixel, (r + 0.5) pixel)`` in nm (x tiles the period; y must lie in the scan)."""
        g = self.geometry
        px = check_positive("pixel_size_nm", pixel_size_nm, "nm, e.g. 0.012")
        rows, cols = (int(v) for v in shape)
        if rows * px > g.y_start_nm + g.n_rows * g.step_nm + 1e-9:
            raise InputError(f"{rows} rows of {px} nm run past the scan, which ends at "
                             f"{g.y_start_nm + g.n_rows * g.step_nm:.3f} nm")
        kx, ky = self.max_harmonic()
        my = trig_interpolation_matrix(g.y_start_nm + (np.arange(g.n_rows) + 0.5) * g.step_nm,
                                       (np.arange(rows) + 0.5) * px, period_nm=g.n_rows * g.step_nm, max_harmonic=ky)
        mx = trig_interpolation_matrix((np.arange(g.n_x) + 0.5) * g.step_nm, (np.arange(cols) + 0.5) * px,
                                       period_nm=g.period_x_nm, max_harmonic=kx)
        return my @ np.asarray(self.scan, dtype=float) @ mx.T

    def simulation(self, atoms, *, pixel_size_nm: float, width_nm: float, height_nm: float | None = None) -> Simulation:
        """A :class:`Simulation` of the scene ``width_nm`` wide (the period tiled) and ``height_nm``
        tall (default the scene's cell), with the projected columns of ``atoms`` tiled as truth.
        Pixel values below zero (interpolation ripple in vacuum, ~1e-5 of the peak) are set to 0."""
        expected = self.parameters.get("scene_sha256")
        if expected is not None and expected != structure_sha256(atoms):
            raise InputError("these atoms are not the structure this scan was simulated from (its scene_sha256 "
                             "differs); pass the same scene, built with the same parameters and seed")
        height = atoms.cell[1, 1] / 10.0 if height_nm is None else float(height_nm)
        shape = (int(round(height / pixel_size_nm)), int(round(width_nm / pixel_size_nm)))
        data = np.clip(self.resample(pixel_size_nm=pixel_size_nm, shape=shape), 0.0, None).astype(np.float32)
        params = {**self.parameters, "engine": "abtem-multislice-stack", "geometry": self.geometry.__dict__,
                  "pixel_size_nm": pixel_size_nm}
        detector = self.parameters.get("detector", "HAADF")
        name = detector.upper() if isinstance(detector, str) else "ADF"  # explicit angles, as simulate_multislice
        metadata = {"title": f"{name} multislice simulation of {atoms.info.get('composition', atoms.get_chemical_formula())} "
                             f"(windowed stack)", "simulated": True, "signal_type": name,
                    "signal_units": "fraction of the incident beam on the detector", "simulation": params}
        image = Image.from_array(data, pixel_size_nm=pixel_size_nm, metadata=metadata)
        period = self.geometry.period_x_nm
        cols = project_columns(atoms, field_nm=(period, height))
        tiles = [cols.assign(x_nm=cols["x_nm"] + i * period) for i in range(int(np.ceil(shape[1] * pixel_size_nm / period)))]
        truth = pd.concat(tiles, ignore_index=True)
        truth = truth[truth["x_nm"] < shape[1] * pixel_size_nm].reset_index(drop=True)
        return Simulation(image, truth, Provenance.create(inputs=[atoms], parameters=params), atoms)

    def save(self, path: str | Path) -> None:
        """Write the scan, its geometry and parameters to an ``.npz`` (compressed)."""
        np.savez_compressed(path, scan=np.asarray(self.scan, dtype=np.float32),
                            geometry=json.dumps(self.geometry.__dict__), parameters=json.dumps(self.parameters))

    @classmethod
    def load(cls, path: str | Path) -> "StackScan":
        """Read a scan written by :meth:`save`."""
        try:
            with np.load(path, allow_pickle=False) as f:
                geo = json.loads(str(f["geometry"]))
                geo["gpts"] = tuple(geo["gpts"])
                return cls(np.asarray(f["scan"]), StackGeometry(**geo), json.loads(str(f["parameters"])))
        except (OSError, KeyError, ValueError, TypeError) as err:
            raise InputError(f"{path}: not a stack scan written by StackScan.save ({err})") from err


def _cache_key(atoms, geo: StackGeometry, multislice: dict) -> str:
    h = hashlib.sha256(structure_sha256(atoms).encode())
    h.update(json.dumps([geo.__dict__, multislice], sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def simulate_multislice_stack(
    atoms,
    *,
    scan_step_nm: float = 0.0235,
    rows_per_window: int = 61,
    margin_nm: float = 0.75,
    box_width_min_nm: float = 0.95,
    vacuum_nm: float = 0.6,
    energy_keV: float = 200.0,
    convergence_mrad: float = 25.0,
    detector: str | tuple[float, float] = "HAADF",
    slice_thickness_A: float = 1.408,
    device: str = "auto",
    cache_dir: str | Path | None = None,
    scheduler: Any = None,
    progress: bool = True,
    **multislice: Any,
) -> StackScan:
    """Exact multislice scan of a stack periodic along x, simulated window by window along y.

    Parameters
    ----------
    atoms : ase.Atoms
        The scene, one x period wide (its cell's x extent is the period; e.g.
        ``stack(..., width_nm=0.4)``), beam along z, layers stacked along y inside the cell.
    scan_step_nm : float
        Largest scan step in nm; the step used divides the x period. Must be at or below the
        Nyquist step ``lambda / (4 alpha)`` (0.0251 nm at 200 kV, 25 mrad).
    rows_per_window : int
        Scan rows per window box.
    margin_nm : float
        Least scene above and below a window's rows inside its box (nm); 0.75 nm is within
        1e-3 of the peak of a 1.2 nm margin on a rock-salt/O3 LiCoO2 stack (docs/validation.md).
    box_width_min_nm : float
        The box repeats the period until it is at least this wide (nm).
    vacuum_nm : float
        Vacuum scanned above and below the scene (nm), so that the scan is periodic in y.
    energy_keV, convergence_mrad, detector, slice_thickness_A, device
        As in :func:`~layerscope.simulate.simulate_multislice`.
    cache_dir : str or Path, optional
        Folder that keeps each window's scan (``.npy``) under a hash of the scene and the
        parameters, so an interrupted run resumes where it stopped.
    scheduler : None, str or distributed.Client
        Where windows run (:func:`layerscope.parallel.map_tasks`): local threads by default, or a
        ``dask.distributed`` scheduler address.
    progress : bool
        Progress bar over the windows.
    **multislice
        Further keywords of :func:`~layerscope.simulate.simulate_multislice` (``frozen_phonons``,
        ``phonon_sigma_A``, ``seed``).

    Returns
    -------
    StackScan
        The scan; :meth:`StackScan.simulation` puts it on a pixel grid with its truth columns.
    """
    from layerscope.parallel import map_tasks

    geo = stack_geometry(atoms, scan_step_nm=scan_step_nm, rows_per_window=rows_per_window, margin_nm=margin_nm,
                         box_width_min_nm=box_width_min_nm, vacuum_nm=vacuum_nm, energy_keV=energy_keV,
                         convergence_mrad=convergence_mrad, detector=detector)
    ms = {"energy_keV": energy_keV, "convergence_mrad": convergence_mrad, "detector": detector,
          "slice_thickness_A": slice_thickness_A, "device": device, **multislice}
    folder = None
    if cache_dir is not None:
        folder = Path(cache_dir) / _cache_key(atoms, geo, ms)
        folder.mkdir(parents=True, exist_ok=True)
    parts = map_tasks(_simulate_window, range(geo.n_windows), scheduler=scheduler, progress=progress,
                      description="multislice windows", atoms=atoms, geo=geo, cache_dir=folder, multislice=ms)
    params = {**ms, "scene_sha256": structure_sha256(atoms)}
    if not isinstance(detector, str):
        params["detector"] = list(detector_angles_mrad(detector, convergence_mrad))
    return StackScan(np.concatenate(parts, axis=0), geo, params)
