"""``layerscope simulate`` as a frozen, validated value and one entry point (issue 21).

:class:`SimulateOptions` holds every option of the command (lengths in nm, energies in keV, angles in
mrad, times in s); :func:`run_simulation` builds the scene, images it with the chosen engine and
degrades it, with no file output (:func:`layerscope.simulate.outputs.write_simulation` writes). The
CLI only parses strings into the options.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from layerscope.errors import InputError

__all__ = ["SimulateOptions", "run_simulation", "ENGINES"]

#: Imaging engines: the fast incoherent model, abTEM multislice, abTEM window by window along y.
ENGINES = ("fast", "multislice", "multislice-stack")


@dataclass(frozen=True)
class SimulateOptions:
    """Every option of ``layerscope simulate`` (see ``layerscope simulate --help`` for each)."""

    scene: str = "bulk"
    phase: str = "O3"
    composition: str = "LiCoO2"
    zone: str = "100"
    width_nm: float = 4.0
    height_nm: float = 4.0
    thickness_nm: float = 5.0
    pixel_size_nm: float = 0.01
    engine: str = "fast"
    probe_fwhm_nm: float = 0.07
    z_exponent: float = 1.7
    energy_keV: float = 200.0
    convergence_mrad: float = 25.0
    detector: str | tuple[float, float] = "HAADF"
    frozen_phonons: int = 0
    phonon_sigma_A: float | None = None
    device: str = "auto"
    dose_e_per_A2: float | None = None
    blur_nm: float = 0.0
    background: float = 0.0
    scan_jitter_px: float = 0.0
    scan_distortion_px: float = 0.0
    scan_distortion_decay_px: float | None = None
    drift_nm_per_s: tuple[float, float] = (0.0, 0.0)
    dwell_time_s: float | None = None
    line_flyback_s: float = 0.0
    seed: int = 0
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise InputError(f"--engine {self.engine!r}: choose fast, multislice or multislice-stack")
        if self.engine == "multislice-stack" and self.scene == "demo":
            raise InputError("--engine multislice-stack needs a stack periodic along x: use --scene bulk, degraded "
                             "or spinel")
        for name, value in (("--pixel-size-nm", self.pixel_size_nm), ("--width-nm", self.width_nm),
                            ("--height-nm", self.height_nm), ("--thickness-nm", self.thickness_nm)):
            if not value > 0:
                raise InputError(f"{name} {value:g}: give a positive length in nm")
        if self.dose_e_per_A2 is not None and not self.dose_e_per_A2 > 0:
            raise InputError(f"--dose {self.dose_e_per_A2:g}: give a positive dose in e/Å², or leave it out for a "
                             "clean image")
        object.__setattr__(self, "drift_nm_per_s", tuple(float(v) for v in self.drift_nm_per_s))

    @property
    def degrading(self) -> bool:
        """Whether any degradation (noise, blur, background, scan errors, drift) is asked for."""
        return bool(self.dose_e_per_A2 is not None or self.blur_nm or self.background or self.scan_jitter_px
                    or self.scan_distortion_px or any(self.drift_nm_per_s))

    def parameters(self) -> dict[str, Any]:
        """JSON-safe record of the options."""
        out = asdict(self)
        out["cache_dir"] = None if self.cache_dir is None else str(self.cache_dir)
        out["drift_nm_per_s"] = list(self.drift_nm_per_s)
        if isinstance(self.detector, tuple):
            out["detector"] = list(self.detector)
        return out


def _detector_mrad(options: SimulateOptions) -> Any:
    """The fast engine's detector as (inner, outer) mrad; refused inside the bright-field disc."""
    det = options.detector
    if not isinstance(det, tuple):
        from layerscope.simulate.multislice import detector_angles_mrad

        det = detector_angles_mrad(det, options.convergence_mrad)
    if det[0] < options.convergence_mrad:
        raise InputError(
            f"--detector {options.detector!r} collects inside the {options.convergence_mrad:g} mrad bright-field "
            f"disc; the fast incoherent model describes dark-field (ADF/HAADF) imaging only: use --engine multislice "
            f"for BF/ABF"
        )
    return det


def _image(atoms: Any, o: SimulateOptions, scheduler: Any) -> Any:
    """The clean simulation of ``atoms`` with the chosen engine."""
    from layerscope.simulate import simulate_haadf, simulate_multislice

    if o.engine == "fast":
        return simulate_haadf(atoms, pixel_size_nm=o.pixel_size_nm, probe_fwhm_nm=o.probe_fwhm_nm,
                              z_exponent=o.z_exponent, energy_keV=o.energy_keV, detector_mrad=_detector_mrad(o))
    if o.engine == "multislice-stack":
        from layerscope.simulate.stacked import simulate_multislice_stack

        scan = simulate_multislice_stack(atoms, energy_keV=o.energy_keV, convergence_mrad=o.convergence_mrad,
                                         detector=o.detector, frozen_phonons=o.frozen_phonons,
                                         phonon_sigma_A=o.phonon_sigma_A, seed=o.seed, device=o.device,
                                         cache_dir=o.cache_dir, scheduler=scheduler)
        return scan.simulation(atoms, pixel_size_nm=o.pixel_size_nm, width_nm=o.width_nm)
    return simulate_multislice(atoms, scan_step_nm=o.pixel_size_nm, energy_keV=o.energy_keV,
                               convergence_mrad=o.convergence_mrad, detector=o.detector,
                               frozen_phonons=o.frozen_phonons, phonon_sigma_A=o.phonon_sigma_A, seed=o.seed,
                               device=o.device)


def _degraded(sim: Any, o: SimulateOptions) -> Any:
    """``sim`` with the options' degradations applied (the clean image kept as ``clean``)."""
    from layerscope.simulate import apparent_columns, degrade
    from layerscope.simulate.result import Simulation

    degraded = degrade(sim.image, dose_e_per_A2=o.dose_e_per_A2, seed=o.seed, blur_nm=o.blur_nm,
                       background=o.background, scan_jitter_px=o.scan_jitter_px,
                       scan_distortion_px=o.scan_distortion_px, scan_distortion_decay_px=o.scan_distortion_decay_px,
                       drift_nm_per_s=o.drift_nm_per_s, dwell_time_s=o.dwell_time_s, line_flyback_s=o.line_flyback_s)
    columns = apparent_columns(sim.columns, degraded)
    sim.provenance.parameters["degradation"] = degraded.metadata["degradation"]
    return Simulation(degraded, columns, sim.provenance, sim.atoms, clean=sim.image)


def run_simulation(options: SimulateOptions, *, scheduler: Any = None) -> tuple[Any, Any]:
    """Build the scene, image it and degrade it; no file output.

    Parameters
    ----------
    options : SimulateOptions
        What to simulate and how.
    scheduler : None, str or distributed.Client
        ``multislice-stack`` only: where the windows run (:mod:`layerscope.parallel`).

    Returns
    -------
    (Simulation, ase.Atoms)
        The simulation (image, ground-truth columns, provenance with the scene's parameters) and the
        scene it imaged (``atoms.info["blocks"]`` names a stack's blocks).
    """
    from layerscope.simulate.scenes import build_scene

    o = options
    atoms = build_scene(o.scene, phase=o.phase, composition=o.composition, zone=o.zone,
                        width_nm=0.4 if o.engine == "multislice-stack" else o.width_nm,  # one x period
                        height_nm=o.height_nm, thickness_nm=o.thickness_nm, seed=o.seed)
    sim = _image(atoms, o, scheduler)
    if o.degrading:
        sim = _degraded(sim, o)
    sim.provenance.parameters.update({"scene": o.scene, "phase": o.phase, "composition": o.composition,
                                      "zone": o.zone, "thickness_nm": o.thickness_nm})
    return sim, atoms
