"""Physically faithful STEM images of small fields: exact multislice through abTEM.

A convergent probe is propagated through the structure's projected potential slice by slice
(the multislice method), optionally averaged over frozen-phonon configurations (thermal diffuse
scattering, which dominates HAADF), and the intensity reaching an annular detector is recorded
at every scan position. This is the reference the fast incoherent model is validated against.

Facts that shape the defaults (measured, see ``docs/validation.md`` and the project design notes):

- plain multislice (``mode="multislice"``) is exact for the periodic box and is the default;
  PRISM (``mode="prism"``) with interpolation > 1 puts false intensity into the Li rows of
  layered oxides (up to half a TM column), so never use it for mixing or rock-salt labels;
- abTEM's ``SMatrixArray.scan()`` crashes in 1.0.11, so PRISM goes through ``SMatrix.scan()``;
- on a CPU one probe position costs ~0.03-0.5 s (box size and thickness); on a GPU (CuPy,
  ``device="gpu"``) about 100 times less. Keep CPU fields to a few nm and a few hundred
  positions; simulate a small periodic box and tile it for larger fields.

Image frame: the probe for pixel ``(row, col)`` sits at ``x = (col + 0.5) * step``, ``y = (row +
0.5) * step`` in the structure's frame (Angstrom / 10), so the ground-truth columns of
:func:`~layerscope.simulate.columns.project_columns` overlay the image directly. Pixel values are
the fraction of the (unit-normalised) probe intensity that reaches the detector.

References
----------
- J. M. Cowley and A. F. Moodie, Acta Cryst. 10, 609 (1957): the multislice method.
- E. J. Kirkland, *Advanced Computing in Electron Microscopy*, 3rd ed., Springer (2020), ch. 6-7.
- J. Madsen and T. Susi, "The abTEM code: transmission electron microscopy from first
  principles", Open Research Europe 1, 24 (2021).
- C. Ophus, "A fast image simulation algorithm for scanning transmission electron microscopy",
  Adv. Struct. Chem. Imaging 3, 13 (2017): PRISM.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from layerscope.containers import Image
from layerscope.errors import InputError
from layerscope.provenance import Provenance
from layerscope.simulate.columns import field_of_view_nm, project_columns
from layerscope.simulate.incoherent import check_positive, electron_wavelength_A
from layerscope.simulate.result import Simulation

__all__ = ["simulate_multislice", "detector_angles_mrad", "DETECTOR_PRESETS", "potential_sampling_A"]

#: Named detectors: (inner, outer) semi-angles in mrad; ``None`` entries are fractions of the
#: convergence semi-angle (BF: 0 to half of it, ABF: half of it to all of it).
DETECTOR_PRESETS: dict[str, tuple[Any, Any]] = {
    "HAADF": (80.0, 200.0),
    "ADF": (40.0, 80.0),
    "BF": (0.0, "0.5*convergence"),
    "ABF": ("0.5*convergence", "1.0*convergence"),
}


def detector_angles_mrad(detector: str | tuple[float, float], convergence_mrad: float) -> tuple[float, float]:
    """Detector (inner, outer) semi-angles in mrad from a preset name or an explicit pair.

    Presets (:data:`DETECTOR_PRESETS`): HAADF 80-200 mrad, ADF 40-80 mrad, BF 0 to half the
    convergence semi-angle, ABF half to all of it.
    """
    if isinstance(detector, str):
        key = detector.upper()
        if key not in DETECTOR_PRESETS:
            raise InputError(
                f"detector={detector!r} is not one of {sorted(DETECTOR_PRESETS)}; or give (inner, outer) in mrad"
            )
        angles = []
        for v in DETECTOR_PRESETS[key]:
            if isinstance(v, str):
                angles.append(float(v.split("*")[0]) * convergence_mrad)
            else:
                angles.append(float(v))
        inner, outer = angles
    else:
        try:
            inner, outer = (float(v) for v in detector)
        except (TypeError, ValueError):
            raise InputError(f"detector={detector!r} must be a preset name or (inner, outer) in mrad") from None
    if not (0 <= inner < outer and np.isfinite(outer)):
        raise InputError(f"detector angles ({inner}, {outer}) mrad: need 0 <= inner < outer")
    return inner, outer


def potential_sampling_A(energy_keV: float, max_angle_mrad: float) -> float:
    """Largest real-space sampling (A) whose anti-aliased reciprocal space reaches ``max_angle_mrad``.

    abTEM keeps 2/3 of the Nyquist frequency ``1 / (2 s)``, so angles up to ``lambda / (3 s)`` are
    represented; 5 % margin is added.
    """
    return 0.95 * electron_wavelength_A(energy_keV) / (3.0 * max_angle_mrad * 1e-3)


def _resolve_device(device: str) -> str:
    if device not in ("auto", "cpu", "gpu"):
        raise InputError(f"device={device!r} must be 'auto', 'cpu' or 'gpu'")
    if device == "cpu":
        return "cpu"
    try:
        import cupy

        has_gpu = cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # no CuPy, no driver or no device
        has_gpu = False
    if device == "gpu" and not has_gpu:
        raise InputError("device='gpu' but CuPy with a CUDA device is not available; use device='cpu' or 'auto'")
    return "gpu" if has_gpu else "cpu"


def _check_run_options(atoms, *, mode: str, max_batch: int, frozen_phonons: int, phonon_sigma_A) -> None:
    """Refuse options of :func:`simulate_multislice` that cannot run (one line each, the fix named)."""
    if mode not in ("multislice", "prism"):
        raise InputError(f"mode={mode!r} must be 'multislice' (exact) or 'prism'")
    if int(max_batch) != max_batch or max_batch < 1:
        raise InputError(f"max_batch={max_batch!r} must be a positive integer (probe positions per batch, e.g. 256)")
    if int(frozen_phonons) != frozen_phonons or frozen_phonons < 0:
        raise InputError(f"frozen_phonons={frozen_phonons!r} must be a non-negative integer")
    if frozen_phonons > 0 and phonon_sigma_A is None:
        raise InputError(
            "frozen_phonons > 0 needs phonon_sigma_A, the rms thermal displacement in A (one value or "
            "{element: value}; about 0.05-0.1 A for layered oxides at room temperature)"
        )
    if len(atoms) == 0 or atoms.cell[2, 2] <= 0:
        raise InputError("the structure needs atoms and a cell with a positive z extent (the thickness)")


def _abtem_scan(atoms, *, step_A: float, nx: int, ny: int, sampling_A: float, slice_A: float, energy_keV: float,
                convergence_mrad: float, detector_mrad: tuple[float, float], mode: str, frozen_phonons: int,
                phonon_sigma_A, seed: int, prism_interpolation: int, max_batch: int):
    """The abTEM scan (inside the caller's ``abtem.config``): the (x, y) detector array and the potential."""
    import abtem

    model = atoms[atoms.numbers > 0]
    if frozen_phonons > 0:
        model = abtem.FrozenPhonons(model, num_configs=int(frozen_phonons), sigmas=phonon_sigma_A, seed=seed)
    potential = abtem.Potential(model, sampling=sampling_A, slice_thickness=slice_A, projection="infinite",
                                parametrization="lobato")
    # probe for pixel (row, col) at ((col + 0.5) step, (row + 0.5) step): matches the image convention
    scan = abtem.GridScan(start=(0.5 * step_A, 0.5 * step_A), end=(0.5 * step_A + nx * step_A, 0.5 * step_A + ny * step_A),
                          gpts=(nx, ny), endpoint=False)
    det = abtem.AnnularDetector(inner=detector_mrad[0], outer=detector_mrad[1])
    if mode == "multislice":
        probe = abtem.Probe(energy=energy_keV * 1e3, semiangle_cutoff=convergence_mrad)
        measurement = probe.scan(potential, scan=scan, detectors=det, max_batch=int(max_batch), lazy=True)
    else:
        smatrix = abtem.SMatrix(potential=potential, energy=energy_keV * 1e3, semiangle_cutoff=convergence_mrad,
                                interpolation=int(prism_interpolation))
        measurement = smatrix.scan(scan=scan, detectors=det)
    if hasattr(measurement, "compute"):
        measurement = measurement.compute(progress_bar=False)
    array = measurement.array
    if hasattr(array, "get"):  # pragma: no cover - a CuPy array (GPU): copy to the host first
        array = array.get()
    return array, potential


def simulate_multislice(
    atoms,
    *,
    scan_step_nm: float,
    energy_keV: float = 200.0,
    convergence_mrad: float = 25.0,
    detector: str | tuple[float, float] = "HAADF",
    mode: str = "multislice",
    frozen_phonons: int = 0,
    phonon_sigma_A: float | dict[str, float] | None = None,
    seed: int = 0,
    slice_thickness_A: float = 2.0,
    sampling_A: float | None = None,
    field_nm: tuple[float, float] | None = None,
    prism_interpolation: int = 1,
    device: str = "auto",
    tolerance_nm: float = 0.02,
    max_batch: int = 256,
) -> Simulation:
    """STEM image of a structure by exact multislice (abTEM), with its projected columns as truth.

    Parameters
    ----------
    atoms : ase.Atoms
        Structure in Angstrom, beam along +z (the sample thickness is its z extent); labelled by
        :mod:`layerscope.crystal`. abTEM treats the box as periodic in x and y: give a periodic
        cell or pad a finite model with vacuum.
    scan_step_nm : float
        Scan step (= pixel size) in nm.
    energy_keV : float
        Beam energy in keV (default 200).
    convergence_mrad : float
        Probe convergence semi-angle in mrad (default 25), aberration-free.
    detector : str or (float, float)
        ``"HAADF"`` (80-200 mrad), ``"ADF"`` (40-80), ``"BF"``, ``"ABF"`` or explicit
        ``(inner, outer)`` semi-angles in mrad (see :data:`DETECTOR_PRESETS`).
    mode : {"multislice", "prism"}
        Exact multislice (default) or PRISM with ``prism_interpolation`` (fast, but biased in
        Li rows when the interpolation is > 1: see the module docstring).
    frozen_phonons : int
        Number of frozen-phonon configurations averaged (0: static lattice, no thermal diffuse
        scattering).
    phonon_sigma_A : float or dict, optional
        RMS thermal displacement per axis in A (one value or per element); required when
        ``frozen_phonons > 0`` (typically 0.05-0.1 A at room temperature).
    seed : int
        Seed of the frozen-phonon displacements.
    slice_thickness_A : float
        Multislice slice thickness in A (default 2 A; converged for HAADF of oxides).
    sampling_A : float, optional
        Potential sampling in A; default the coarsest that represents the detector's outer angle
        and the probe (:func:`potential_sampling_A`).
    field_nm : (float, float), optional
        Scanned field ``(width, height)`` in nm from the structure's origin; default the in-plane
        cell. The image has ``round(width / step)`` x ``round(height / step)`` pixels.
    prism_interpolation : int
        PRISM interpolation factor (``mode="prism"`` only).
    device : {"auto", "cpu", "gpu"}
        Where abTEM computes; "auto" uses a CUDA GPU through CuPy when one is present.
    tolerance_nm : float
        Column linking tolerance of the truth table (see ``project_columns``).
    max_batch : int
        Probe positions propagated at once (multislice mode; the scan is evaluated lazily, batch
        by batch). It bounds the memory and does not change the image (test). Computed eagerly,
        abTEM held every probe's wave at once: 6,720 probes of a 0.5 x 1.4 nm cell peaked at
        11.8 GB (194 s), batches of 16 at 0.44 GB (85 s); a 2,562-probe window of the spinel
        validation scene was killed for memory on a 24 GB machine with two workers.

    Returns
    -------
    Simulation
        ``.image`` in fraction of the incident beam on the detector (float32, abTEM's precision),
        with ``metadata["simulation"]`` holding every parameter, the device and the time per
        probe position; ``.columns`` the ground truth of the scanned field.

    Raises
    ------
    InputError
        For bad parameters, a missing ``phonon_sigma_A``, or ``device="gpu"`` without a GPU.
    """
    step = check_positive("scan_step_nm", scan_step_nm, "nm per pixel, e.g. 0.02")
    energy = check_positive("energy_keV", energy_keV, "beam energy in keV, e.g. 200")
    conv = check_positive("convergence_mrad", convergence_mrad, "probe semi-angle in mrad, e.g. 25")
    dz = check_positive("slice_thickness_A", slice_thickness_A, "A, e.g. 2")
    inner, outer = detector_angles_mrad(detector, conv)
    _check_run_options(atoms, mode=mode, max_batch=max_batch, frozen_phonons=frozen_phonons,
                       phonon_sigma_A=phonon_sigma_A)
    dev = _resolve_device(device)
    sampling = sampling_A if sampling_A is not None else potential_sampling_A(energy, max(outer, conv))
    check_positive("sampling_A", sampling, "A, e.g. 0.04")
    if field_nm is None:
        field_nm = field_of_view_nm(atoms)
    nx, ny = int(round(field_nm[0] / step)), int(round(field_nm[1] / step))
    if nx < 1 or ny < 1:
        raise InputError(f"the field {field_nm} nm is smaller than one scan step of {step} nm")

    import abtem

    thickness = float(atoms.cell[2, 2])
    n_slices = max(1, int(np.ceil(thickness / dz - 1e-9)))
    started = time.perf_counter()
    with abtem.config.set({"device": dev, "dask.lazy": False}):
        array, potential = _abtem_scan(
            atoms, step_A=10.0 * step, nx=nx, ny=ny, sampling_A=sampling, slice_A=thickness / n_slices,
            energy_keV=energy, convergence_mrad=conv, detector_mrad=(inner, outer), mode=mode,
            frozen_phonons=frozen_phonons, phonon_sigma_A=phonon_sigma_A, seed=seed,
            prism_interpolation=prism_interpolation, max_batch=max_batch)
    elapsed = time.perf_counter() - started
    data = np.ascontiguousarray(np.asarray(array, dtype=np.float32).reshape(nx, ny).T)  # abTEM is (x, y)
    field = (nx * step, ny * step)
    parameters = {
        "engine": "abtem-" + mode,
        "abtem_version": abtem.__version__,
        "scan_step_nm": step,
        "energy_keV": energy,
        "convergence_mrad": conv,
        "detector_mrad": [inner, outer],
        "frozen_phonons": int(frozen_phonons),
        "phonon_sigma_A": phonon_sigma_A,
        "seed": seed,
        "slice_thickness_A": thickness / n_slices,
        "n_slices": n_slices,
        "thickness_nm": thickness / 10.0,
        "sampling_A": sampling,
        "potential_gpts": list(potential.gpts),
        "field_nm": list(field),
        "prism_interpolation": int(prism_interpolation) if mode == "prism" else None,
        "device": dev,
        "wall_time_s": elapsed,
        "time_per_position_s": elapsed / (nx * ny * max(1, int(frozen_phonons))),
    }
    detector_name = detector.upper() if isinstance(detector, str) else "ADF"
    metadata = {
        "title": f"{detector_name} multislice simulation of {atoms.info.get('composition') or atoms.get_chemical_formula()}",
        "simulated": True,
        "signal_type": detector_name,
        "signal_units": "fraction of the incident beam on the detector",
        "beam_energy_keV": energy,
        "convergence_angle_mrad": conv,
        "detector_inner_mrad": inner,
        "detector_outer_mrad": outer,
        "simulation": parameters,
    }
    image = Image.from_array(data, pixel_size_nm=step, metadata=metadata)
    columns = project_columns(atoms, tolerance_nm=tolerance_nm, field_nm=field)
    return Simulation(image, columns, Provenance.create(inputs=[atoms], parameters=parameters), atoms)
