"""Image simulation with ground truth: projected columns, fast incoherent HAADF, abTEM multislice, degradations.

- :func:`project_columns`: the projected atom columns of a structure (the truth table).
- :func:`simulate_haadf`: fast incoherent HAADF image (Gaussian probe, column weight ~ sum Z^n).
- :func:`simulate_multislice`: exact multislice through abTEM (HAADF/ADF/BF, frozen phonons, GPU).
- :func:`degrade`: blur, background, scan jitter/distortion/drift and Poisson noise at a dose.
- :func:`resample_periodic_image`: a scan of one crystal cell (at or below the Nyquist step) evaluated
  exactly on any pixel grid, so a multislice image of a perfect crystal costs one cell of probe positions.
- :func:`simulate_multislice_stack`: exact multislice of a stack of phases (periodic along x), window by
  window along y, resumable; :class:`StackScan` puts it on any pixel grid with its truth columns.
- :mod:`layerscope.simulate.draws` / :mod:`layerscope.simulate.validation`: validation images drawn at
  random from wide ranges with their truth (``draw_scene(seed)``), and their scoring against
  ``layerscope.imaging`` (``score_draw(seed)``; ``scripts/validate_random_draws.py``).
- :mod:`layerscope.simulate.options`: ``layerscope simulate`` as a frozen
  :class:`~layerscope.simulate.options.SimulateOptions` and
  :func:`~layerscope.simulate.options.run_simulation` (scene, engine, degradations; no file output).

Both simulators return a :class:`Simulation` (``.image``, ``.columns``, ``.provenance``) whose image
pixels are the fraction of the incident beam reaching the detector.
"""

from layerscope.simulate.columns import COLUMN_FIELDS, field_of_view_nm, project_columns
from layerscope.simulate.incoherent import kinematic_cross_section_A2, render_gaussians, simulate_haadf
from layerscope.simulate.noise import ScanModel, apparent_columns, degrade
from layerscope.simulate.periodic import resample_periodic_image
from layerscope.simulate.result import Simulation
from layerscope.simulate.stacked import StackScan, simulate_multislice_stack

__all__ = [
    "COLUMN_FIELDS",
    "Simulation",
    "ScanModel",
    "StackScan",
    "apparent_columns",
    "degrade",
    "field_of_view_nm",
    "kinematic_cross_section_A2",
    "project_columns",
    "render_gaussians",
    "resample_periodic_image",
    "simulate_haadf",
    "simulate_multislice",
    "simulate_multislice_stack",
]


def __getattr__(name):
    # abTEM is slow to import (numba, ipywidgets); load the multislice backend only when asked
    if name == "simulate_multislice":
        from layerscope.simulate.multislice import simulate_multislice

        return simulate_multislice
    raise AttributeError(f"module 'layerscope.simulate' has no attribute {name!r}")
