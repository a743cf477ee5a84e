"""The options of ``layerscope atomistic vacancies`` and ``layerscope atomistic neb`` as frozen values (issue 21).

:func:`layerscope.atomistic.vacancies.analyse_vacancies` and
:func:`layerscope.atomistic.migration.analyse_gliding` take a loaded potential and a
:class:`VacancyOptions` / :class:`NEBOptions`; :func:`~layerscope.atomistic.vacancies.run_vacancy_study`
and :func:`~layerscope.atomistic.migration.run_gliding_study` keep their keyword interfaces and build
the options from them. Invalid values are refused when the options are made, in one line naming
the CLI option, before any potential is loaded or any structure relaxed.

Lengths in Å (``_A``), energies in eV, images in nm.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from layerscope.errors import InputError

__all__ = ["VacancyOptions", "NEBOptions", "POTENTIAL_NAMES", "DEVICES", "loaded_as"]

#: Potentials the CLI can load (their weights ship in the wheels; :data:`layerscope.atomistic.potentials.POTENTIALS`).
POTENTIAL_NAMES = ("chgnet-0.3.0", "7net-0", "7net-l3i5")
#: Values of ``--device``.
DEVICES = ("auto", "cpu", "cuda")


def _positive(option: str, value: float, example: str) -> None:
    try:
        ok = not isinstance(value, bool) and math.isfinite(float(value)) and float(value) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(f"{option} {value!r}: give a positive number (e.g. {option} {example}).")


def _count(option: str, value: int, example: str, *, least: int = 1) -> int:
    try:
        ok = not isinstance(value, bool) and int(value) == value and value >= least
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise InputError(f"{option} {value!r}: give an integer of at least {least} (e.g. {option} {example}).")
    return int(value)


def _repeats(option: str, value: Sequence[int], n: int) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in value)
        whole = all(int(v) == v for v in value)
    except (TypeError, ValueError):
        vals, whole = (), False
    if len(vals) != n or not whole or min(vals) < 1:
        raise InputError(f"{option} {value!r}: give {n} comma-separated positive integers, e.g. "
                         f"{option} {','.join(['2'] * n)}")
    return vals


def _composition(name: str) -> None:
    from layerscope.crystal import get_composition

    try:
        get_composition(name)
    except InputError as exc:
        raise InputError(f"--composition {name!r} is not known; give a layerscope.crystal name such as LiCoO2, "
                         f"NCM111, NCM622 or NCM811 ({exc})") from None


def _loading(potential: str | None, device: str, threads: int) -> None:
    """Checks of --potential, --device and --threads (shared by both options)."""
    if potential is not None and potential not in POTENTIAL_NAMES:
        raise InputError(f"--potential {potential!r}: unknown potential; choose one of {', '.join(POTENTIAL_NAMES)} "
                         f"(their weights ship in the chgnet/sevenn wheels; nothing downloads).")
    if device not in DEVICES:
        raise InputError(f"--device {device!r}: choose auto, cpu or cuda.")
    _count("--threads", threads, "1")


def loaded_as(options: VacancyOptions | NEBOptions, potential: Any) -> dict[str, Any] | None:
    """How the CLI loaded the potential (recorded); None when a loaded potential was passed directly.

    Raises
    ------
    InputError
        When ``options.potential`` names another potential than the one given.
    """
    if options.potential is None:
        return None
    name = getattr(potential, "name", None)
    if name != options.potential:
        raise InputError(f"--potential {options.potential!r} was asked for but the potential given is {name!r}; "
                         f"load it with load_potential({options.potential!r}) or set potential=None.")
    return {"potential": options.potential, "device": options.device, "threads": options.threads}


@dataclass(frozen=True)
class VacancyOptions:
    """Everything the O-vacancy protocol needs besides the loaded potential.

    Attributes
    ----------
    structure : {"bulk", "twin", "tilt"}
        ``--structure``: bulk host, Σ3 twin or Σ7/Σ13 [0001] tilt boundary.
    composition : str
        ``--composition``: a :mod:`layerscope.crystal` name (LiCoO2, NCM111, NCM622, NCM811).
    li_fraction : float
        ``--li-fraction``: fraction of Li-layer sites kept (0 < x <= 1; Ewald-ordered).
    potential : str or None
        ``--potential``: which potential the CLI loads; None when a loaded one is given directly.
    device : {"auto", "cpu", "cuda"}
        ``--device``: where the CLI loads the potential.
    threads : int
        ``--threads``: PyTorch threads per task.
    temperature_K : float
        ``--temperature-k``: temperature of the O2 entropy term, K.
    max_distance_A : float
        ``--max-distance-a``: boundaries: O sites within this distance of a boundary plane, Å.
    size : tuple of 3 int
        ``--size``: bulk host: repeats of the relaxed hexagonal cell.
    bulk_size : tuple of 3 int
        ``--bulk-size``: repeats of the crystal cell for the relaxed bulk.
    expand_times : int
        ``--expand-times``: boundaries: grain thickness (generator repeats).
    repeat : tuple of 2 int
        ``--repeat``: boundaries: in-plane repeats.
    sigma : {7, 13}
        ``--sigma``: tilt boundary Σ.
    fmax_eV_per_A : float
        ``--fmax``: force convergence, eV/Å.
    max_steps : int
        ``--max-steps``: optimiser steps per relaxation.
    optimizer : {"BFGS", "FIRE"}
        Optimiser of the host and site relaxations (no CLI option).
    use_symmetry : bool
        One site per symmetry class at boundaries (``--all-sites`` turns it off).
    seed : int
        ``--seed``: seed of the Ewald ordering searches (0 or more).
    haadf_thickness_nm : float or None
        ``--haadf-thickness-nm``: boundaries: also image the relaxed model edge-on at this thickness, nm.
    haadf_pixel_nm, haadf_probe_nm : float
        ``--haadf-pixel-nm``, ``--haadf-probe-nm``: pixel size and probe FWHM of that image, nm.
    """

    structure: str = "bulk"
    composition: str = "LiCoO2"
    li_fraction: float = 1.0
    potential: str | None = "chgnet-0.3.0"
    device: str = "auto"
    threads: int = 1
    temperature_K: float = 300.0
    max_distance_A: float = 3.0
    size: tuple[int, int, int] = (2, 2, 1)
    bulk_size: tuple[int, int, int] = (1, 1, 1)
    expand_times: int = 1
    repeat: tuple[int, int] = (2, 2)
    sigma: int = 7
    fmax_eV_per_A: float = 0.05
    max_steps: int = 300
    optimizer: str = "BFGS"
    use_symmetry: bool = True
    seed: int = 0
    haadf_thickness_nm: float | None = None
    haadf_pixel_nm: float = 0.02
    haadf_probe_nm: float = 0.08

    def __post_init__(self) -> None:
        if self.structure not in ("bulk", "twin", "tilt"):
            raise InputError(f"--structure {self.structure!r} is not known; choose bulk, twin or tilt.")
        _composition(self.composition)
        if not (isinstance(self.li_fraction, (int, float)) and 0 < self.li_fraction <= 1):
            raise InputError(f"--li-fraction {self.li_fraction!r}: give a fraction in (0, 1], e.g. --li-fraction 0.5.")
        _loading(self.potential, self.device, self.threads)
        _positive("--temperature-k", self.temperature_K, "300")
        _positive("--max-distance-a", self.max_distance_A, "3")
        for name, option, n in (("size", "--size", 3), ("bulk_size", "--bulk-size", 3), ("repeat", "--repeat", 2)):
            object.__setattr__(self, name, _repeats(option, getattr(self, name), n))
        _count("--expand-times", self.expand_times, "1")
        if self.sigma not in (7, 13):
            raise InputError(f"--sigma {self.sigma!r}: tilt boundaries are offered for Σ7 and Σ13; give 7 or 13.")
        _positive("--fmax", self.fmax_eV_per_A, "0.05")
        _count("--max-steps", self.max_steps, "300")
        if self.optimizer not in ("BFGS", "FIRE"):
            raise InputError(f"optimizer {self.optimizer!r}: choose BFGS or FIRE.")
        _count("--seed", self.seed, "0", least=0)
        for option, value in (("--haadf-pixel-nm", self.haadf_pixel_nm), ("--haadf-probe-nm", self.haadf_probe_nm)):
            _positive(option, value, "0.02")
        if self.haadf_thickness_nm is not None:
            _positive("--haadf-thickness-nm", self.haadf_thickness_nm, "2")
            if self.structure == "bulk":
                raise InputError("--haadf-thickness-nm images a boundary model; use it with --structure twin or tilt.")

    @property
    def image(self) -> dict[str, float] | None:
        """Keywords of :func:`layerscope.atomistic.to_image.simulate_boundary_image` (None: no image)."""
        if self.haadf_thickness_nm is None:
            return None
        return {"pixel_size_nm": self.haadf_pixel_nm, "probe_fwhm_nm": self.haadf_probe_nm,
                "thickness_nm": self.haadf_thickness_nm}

    def to_dict(self) -> dict[str, Any]:
        """Every option, JSON-safe."""
        out = asdict(self)
        for name in ("size", "bulk_size", "repeat"):
            out[name] = list(out[name])
        return out


@dataclass(frozen=True)
class NEBOptions:
    """Everything the migration-barrier-vs-gliding protocol needs besides the loaded potential.

    Attributes
    ----------
    cation : {"Co", "Ni", "Mn"}
        ``--cation``: migrating TM cation.
    gliding : tuple of float
        ``--gliding``: gliding ratios (fractions of a; each finite, below 1 in magnitude).
    directions : tuple of str
        ``--direction``: ``"[100]"`` and/or ``"[120]"`` (``"100"`` is read as ``"[100]"``).
    composition : str
        ``--composition``: LiCoO2 (seed study) or an NMC composition.
    potential : str or None
        ``--potential``: which potential the CLI loads; None when a loaded one is given directly.
    device : {"auto", "cpu", "cuda"}
        ``--device``.
    threads : int
        ``--threads``: PyTorch threads per task.
    size, bulk_size : tuple of 3 int
        ``--size``, ``--bulk-size``: supercell of the relaxed bulk, repeats of the crystal cell.
    n_images : int
        ``--n-images``: intermediate NEB images.
    relax_radius_A : float or None
        ``--relax-radius-a``: only atoms within this distance of the cation relax, Å (None: all;
        the CLI reads 0 as None).
    fmax_eV_per_A : float
        ``--fmax``: NEB force convergence, eV/Å.
    max_steps : int
        ``--max-steps``: NEB optimiser steps.
    seed : int
        ``--seed``: seed of the NMC TM ordering (0 or more).
    """

    cation: str = "Co"
    gliding: tuple[float, ...] = (0.0, 0.01, 0.02, 0.03, 0.05)
    directions: tuple[str, ...] = ("[100]",)
    composition: str = "LiCoO2"
    potential: str | None = "chgnet-0.3.0"
    device: str = "auto"
    threads: int = 1
    size: tuple[int, int, int] = (2, 2, 1)
    bulk_size: tuple[int, int, int] = (1, 1, 1)
    n_images: int = 4
    relax_radius_A: float | None = 6.0
    fmax_eV_per_A: float = 0.05
    max_steps: int = 300
    seed: int = 0

    def __post_init__(self) -> None:
        if self.cation not in ("Co", "Ni", "Mn"):
            raise InputError(f"--cation {self.cation!r}: choose Co, Ni or Mn.")
        glide = tuple(float(g) for g in (self.gliding or ()))
        if not glide or not all(math.isfinite(g) and abs(g) < 1 for g in glide):
            raise InputError(f"--gliding {self.gliding!r}: give comma-separated fractions of a, e.g. --gliding 0,0.01,0.02")
        object.__setattr__(self, "gliding", glide)
        dirs = tuple(f"[{str(d).strip().strip('[]')}]" for d in (self.directions or ()))
        if not dirs or any(d not in ("[100]", "[120]") for d in dirs):
            raise InputError(f"--direction {self.directions!r}: use 100 and/or 120, e.g. --direction 100,120")
        object.__setattr__(self, "directions", dirs)
        _composition(self.composition)
        _loading(self.potential, self.device, self.threads)
        for name, option in (("size", "--size"), ("bulk_size", "--bulk-size")):
            object.__setattr__(self, name, _repeats(option, getattr(self, name), 3))
        _count("--n-images", self.n_images, "4")
        if self.relax_radius_A is not None and not (math.isfinite(self.relax_radius_A) and self.relax_radius_A >= 0):
            raise InputError(f"--relax-radius-a {self.relax_radius_A!r}: give a distance in Å, or 0 to relax all atoms")
        _positive("--fmax", self.fmax_eV_per_A, "0.05")
        _count("--max-steps", self.max_steps, "300")
        _count("--seed", self.seed, "0", least=0)

    def to_dict(self) -> dict[str, Any]:
        """Every option, JSON-safe."""
        out = asdict(self)
        for name in ("gliding", "directions", "size", "bulk_size"):
            out[name] = list(out[name])
        return out
