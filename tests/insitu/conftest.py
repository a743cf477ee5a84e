"""Synthetic in situ series with known truth, made once per test session (small: 2 busy cores)."""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.insitu.pipeline import InsituOptions, analyse_series
from layerscope.insitu.synthetic import CrackSpec, FrontSpec, LayeredLattice, VoidSpec, synthetic_series

#: the series every accuracy test reads: 256 x 256 px of 0.04 nm, 12 frames 1 s apart, random-walk
#: drift, LiCoO2 [100] with layers at 5 deg, a front moving along the layers (right) at 0.25 nm/s,
#: voids that grow, one that nucleates late, two that merge, and a 2 nm wide, 7 nm long crack.
DEGRADING = dict(
    shape=(256, 256), pixel_size_nm=0.04, n_frames=12, frame_interval_s=1.0,
    lattice=LayeredLattice(layer_angle_deg=5.0),
    front=FrontSpec(position_nm=2.6, velocity_nm_per_s=0.25, direction_deg=5.0, width_nm=2.5),
    voids=[
        VoidSpec(1.6, 4.3, 0.6, growth_nm_per_s=0.02),
        VoidSpec(4.0, 3.3, 0.5, nucleation_s=4.0, growth_nm_per_s=0.03),
        VoidSpec(6.4, 5.0, 0.5, growth_nm_per_s=0.04),
        VoidSpec(7.9, 5.0, 0.5, growth_nm_per_s=0.04),  # gap 0.5 nm at t = 0, touching at t = 6.25 s
    ],
    cracks=[CrackSpec(4.6, 7.2, 7.0, 2.0, 6.0)],
    counts_per_pixel=200.0,
    seed=11,
)


@pytest.fixture(scope="session")
def degrading():
    """(series, truth) of :data:`DEGRADING`."""
    return synthetic_series(**DEGRADING)


@pytest.fixture(scope="session")
def degrading_result(degrading):
    """The pipeline's result on :data:`DEGRADING` (drift, voids, cracks and the front)."""
    series, _ = degrading
    return analyse_series(series, options=InsituOptions(fronts=True))


@pytest.fixture(scope="session")
def lattice_only():
    """10 frames of 192 x 192 px: lattice, noise and a random-walk drift only."""
    return synthetic_series(shape=(192, 192), n_frames=10, lattice=LayeredLattice(layer_angle_deg=-7.0),
                            counts_per_pixel=200.0, seed=5)


def frame_rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)))
