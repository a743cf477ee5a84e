"""Universal machine-learned interatomic potentials as ASE calculators, offline.

Only potentials whose weights ship inside their Python wheels are offered, so that nothing is
downloaded at run time:

* ``"chgnet-0.3.0"`` — CHGNet 0.3.0 (Deng et al., *Nat. Mach. Intell.* 5, 1031 (2023)), trained on
  MPtrj; its energies are Materials-Project-2020-*corrected* (GGA/GGA+U mixing and fitted anion
  corrections), and it predicts magnetic moments (a valence proxy for the transition metals).
* ``"7net-0"`` and ``"7net-l3i5"`` — SevenNet-0 (11 Jul 2024) and SevenNet-l3i5 (Park et al.,
  *J. Chem. Theory Comput.* 20, 4857 (2024)), trained on MPtrj *raw* PBE(+U) energies.

Because the two families are referenced differently, never mix their energies and always take the
oxygen chemical potential from a reference computed with the same potential
(:mod:`layerscope.atomistic.chemical_potential`).

A :class:`Potential` holds one loaded model; :meth:`Potential.calculator` hands out a fresh ASE
calculator per structure that *shares* the model (one calculator per NEB image: a calculator shared
between images recomputes every image twice). Lengths are in Å and energies in eV, as in ASE.

Threads: PyTorch starts as many intra-op threads as cores; several such processes or Dask threads on
a small machine oversubscribe the cores and run 10-20x slower. :func:`configure_threads` sets
``torch.set_num_threads`` and ``OMP_NUM_THREADS`` explicitly; :func:`load_potential` calls it.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from layerscope.errors import ConvergenceError, InputError

__all__ = [
    "POTENTIALS",
    "Potential",
    "RelaxResult",
    "configure_threads",
    "default_device",
    "load_potential",
    "relax",
]

#: Names accepted by :func:`load_potential` and the wheel that ships each model's weights.
POTENTIALS: dict[str, str] = {
    "chgnet-0.3.0": "chgnet",
    "7net-0": "sevenn",
    "7net-l3i5": "sevenn",
}

#: Energy reference of each potential: ``"MP2020"`` (fitted corrections) or ``"PBE"`` (raw).
ENERGY_REFERENCE: dict[str, str] = {"chgnet-0.3.0": "MP2020", "7net-0": "PBE", "7net-l3i5": "PBE"}


def configure_threads(num_threads: int) -> int:
    """Set PyTorch's intra-op threads and ``OMP_NUM_THREADS`` for this process.

    Parameters
    ----------
    num_threads : int
        Threads per model evaluation (>= 1). Use 1 when several evaluations run side by side
        (Dask threads, NEB images) on a few cores.

    Returns
    -------
    int
        The number of threads PyTorch now uses.
    """
    import torch

    if int(num_threads) != num_threads or num_threads < 1:
        raise InputError(f"num_threads={num_threads!r} is not a positive integer; give 1 or more")
    os.environ["OMP_NUM_THREADS"] = str(int(num_threads))
    torch.set_num_threads(int(num_threads))
    return torch.get_num_threads()


def default_device() -> str:
    """``"cuda"`` when PyTorch sees a GPU, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class Potential:
    """A loaded machine-learned potential; hands out ASE calculators that share its model.

    Attributes
    ----------
    name : str
        One of :data:`POTENTIALS`.
    model : torch.nn.Module
        The loaded model (CHGNet or SevenNet ``AtomGraphSequential``), on ``device``.
    device : str
        ``"cpu"`` or ``"cuda"``.
    energy_reference : str
        ``"MP2020"`` (CHGNet) or ``"PBE"`` (SevenNet).
    version : str
        The package version that supplied the weights.
    """

    name: str
    model: Any = field(repr=False)
    device: str
    energy_reference: str
    version: str

    def calculator(self) -> Calculator:
        """A new ASE calculator that evaluates this potential's (shared) model."""
        if self.name.startswith("chgnet"):
            from chgnet.model.dynamics import CHGNetCalculator

            class QuietCHGNetCalculator(CHGNetCalculator):
                """CHGNet's calculator without its "tensor with requires_grad=True to a scalar" UserWarning
                (raised inside ``CHGNet.predict_graph`` at every evaluation; the values are unaffected)."""

                def calculate(self, *args, **kwargs):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)
                        return super().calculate(*args, **kwargs)

            with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its device
                return QuietCHGNetCalculator(model=self.model, use_device=self.device,
                                             on_isolated_atoms="error")
        from sevenn.calculator import SevenNetCalculator

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no tensor-product accelerator" notice
            return SevenNetCalculator(self.model, file_type="model_instance", device=self.device)

    @property
    def has_magmoms(self) -> bool:
        """Whether the calculator returns per-atom magnetic moments (CHGNet does)."""
        return self.name.startswith("chgnet")

    def describe(self) -> dict[str, Any]:
        """Name, version, device and energy reference (for provenance)."""
        return {"potential": self.name, "package_version": self.version, "device": self.device,
                "energy_reference": self.energy_reference}


def load_potential(
    name: Literal["chgnet-0.3.0", "7net-0", "7net-l3i5"],
    *,
    device: str = "auto",
    num_threads: int | None = 1,
) -> Potential:
    """Load a universal potential whose weights ship in its wheel (no download).

    Parameters
    ----------
    name : {"chgnet-0.3.0", "7net-0", "7net-l3i5"}
        The potential (see the module docstring for references).
    device : str
        ``"auto"`` (GPU when present), ``"cpu"`` or ``"cuda"``.
    num_threads : int or None
        Passed to :func:`configure_threads` (default 1: safe when evaluations run side by side);
        ``None`` leaves the thread settings alone.

    Returns
    -------
    Potential

    Raises
    ------
    InputError
        For an unknown name or an unavailable device.
    """
    if name not in POTENTIALS:
        raise InputError(
            f"unknown potential '{name}'; choose one of {sorted(POTENTIALS)} (their weights ship "
            f"in the chgnet/sevenn wheels; MACE, MatGL, Orb and MatterSim download weights and are not offered)"
        )
    import torch

    if device == "auto":
        device = default_device()
    if device not in ("cpu", "cuda"):
        raise InputError(f"device '{device}' is not supported; use 'auto', 'cpu' or 'cuda'")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' was requested but PyTorch sees no GPU; use device='cpu'")
    if num_threads is not None:
        configure_threads(num_threads)
    from importlib.metadata import version

    if name.startswith("chgnet"):
        from chgnet.model import CHGNet

        with contextlib.redirect_stdout(io.StringIO()):
            model = CHGNet.load(model_name=name.split("-", 1)[1], use_device=device, verbose=False)
        pkg = "chgnet"
    else:
        from sevenn import util

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            checkpoint = util.load_checkpoint(name)
            model = checkpoint.build_model()
        model.set_is_batch_data(False)
        model.eval()
        model.to(device)
        pkg = "sevenn"
    return Potential(name=name, model=model, device=device, energy_reference=ENERGY_REFERENCE[name],
                     version=version(pkg))


@dataclass
class RelaxResult:
    """The outcome of :func:`relax`.

    Attributes
    ----------
    atoms : ase.Atoms
        The last structure (relaxed if ``converged``), without a calculator attached.
    energy_eV : float
        Its potential energy.
    converged : bool
        Whether the largest force (and stress, with a cell relaxation) fell below the threshold.
    steps : int
        Optimiser steps taken.
    max_force_eV_per_A : float
        The largest atomic force at the last step.
    magmoms : numpy.ndarray or None
        Per-atom magnetic moments (μB) when the potential predicts them (CHGNet), else None.
    """

    atoms: Atoms
    energy_eV: float
    converged: bool
    steps: int
    max_force_eV_per_A: float
    magmoms: np.ndarray | None = None


def relax(
    atoms: Atoms,
    potential: Potential,
    *,
    fmax_eV_per_A: float = 0.05,
    max_steps: int = 200,
    relax_cell: bool = False,
    fixed_indices: np.ndarray | list[int] | None = None,
    require_convergence: bool = False,
    optimizer: Literal["FIRE", "BFGS"] = "FIRE",
) -> RelaxResult:
    """Relax atomic positions (and optionally the cell) with an ASE optimiser.

    Parameters
    ----------
    atoms : ase.Atoms
        Start structure (not modified).
    potential : Potential
    fmax_eV_per_A : float
        Convergence threshold on the largest force (eV/Å); with ``relax_cell`` the stress enters
        through ASE's ``FrechetCellFilter`` (Tadmor & Miller style deformation gradient).
    max_steps : int
        Optimiser steps at most.
    relax_cell : bool
        Relax the cell shape and volume too (for bulk references), else the cell is fixed.
    fixed_indices : array of int, optional
        Atoms held fixed (``ase.constraints.FixAtoms``).
    require_convergence : bool
        Raise :class:`ConvergenceError` instead of returning ``converged=False``.
    optimizer : {"FIRE", "BFGS"}
        FIRE is robust far from the minimum; BFGS needs fewer steps close to it (a vacancy in a
        relaxed host).

    Returns
    -------
    RelaxResult

    References
    ----------
    Bitzek et al., "Structural relaxation made simple", *Phys. Rev. Lett.* 97, 170201 (2006) (FIRE).
    """
    from ase.constraints import FixAtoms
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS, FIRE

    optimizers = {"FIRE": FIRE, "BFGS": BFGS}
    if optimizer not in optimizers:
        raise InputError(f"optimizer={optimizer!r} is not known; use 'FIRE' or 'BFGS'")

    if fmax_eV_per_A <= 0 or max_steps < 0:
        raise InputError(f"fmax_eV_per_A={fmax_eV_per_A} and max_steps={max_steps} must be positive")
    work = atoms.copy()
    work.calc = potential.calculator()
    if fixed_indices is not None and len(fixed_indices):
        work.set_constraint(FixAtoms(indices=np.asarray(fixed_indices, dtype=int)))
    target = FrechetCellFilter(work) if relax_cell else work
    opt = optimizers[optimizer](target, logfile=None)
    converged = bool(opt.run(fmax=fmax_eV_per_A, steps=max_steps))
    forces = work.get_forces()
    energy = float(work.get_potential_energy())
    magmoms = None
    if getattr(potential, "has_magmoms", False) and "magmoms" in work.calc.results:
        magmoms = np.asarray(work.calc.results["magmoms"], dtype=float).copy()
    max_force = float(np.linalg.norm(forces, axis=1).max()) if len(work) else 0.0
    result_atoms = work.copy()
    result_atoms.calc = None
    result_atoms.set_constraint()
    if require_convergence and not converged:
        raise ConvergenceError(
            f"relaxation of {atoms.get_chemical_formula()} with {potential.name} did not reach "
            f"fmax={fmax_eV_per_A} eV/Å in {max_steps} steps (largest force {max_force:.3f} eV/Å); "
            f"raise max_steps or loosen fmax_eV_per_A"
        )
    return RelaxResult(atoms=result_atoms, energy_eV=energy, converged=converged, steps=int(opt.nsteps),
                       max_force_eV_per_A=max_force, magmoms=magmoms)
