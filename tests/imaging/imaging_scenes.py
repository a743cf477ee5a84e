"""Simulated scenes with ground truth for the imaging tests (layerscope.crystal + layerscope.simulate)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

PX = 0.012  # nm per pixel
PROBE = 0.08  # nm FWHM


@lru_cache(maxsize=None)
def degraded_stack(zone: str = "100", thickness_nm: float = 8.0):
    """LiCoO2 seen along ``zone``: vacuum (0.8 nm) over rock salt (6 layers) | O3 (8, Li/TM mixing
    0.2) | O1 (6) | O3 (6) | O3' (3) | O3 (7), ``thickness_nm`` thick
    (``validation_scene("degraded")``). Returns (clean Simulation, atoms)."""
    from layerscope.crystal.scenes import validation_scene
    from layerscope.simulate import simulate_haadf

    at = validation_scene("degraded", zone=zone, thickness_nm=thickness_nm)
    sim = simulate_haadf(at, pixel_size_nm=PX, probe_fwhm_nm=PROBE, field_nm=(at.info["width_nm"], at.cell[1, 1] / 10))
    return sim, at


def noisy(sim, dose, *, seed=3, jitter_px=0.0):
    from layerscope.simulate import degrade

    img = degrade(sim.image, dose_e_per_A2=dose, seed=seed, scan_jitter_px=jitter_px)
    return np.asarray(img.data, dtype=float)


@lru_cache(maxsize=None)
def glided_stack(shift_fraction: float, width_nm: float = 6.0):
    """LiCoO2 [100], two O3 blocks of 12 layers; the upper one glided by ``shift_fraction * a``
    along x on a plane in the Li gap between layer 11 and the O layer of layer 12."""
    from layerscope.crystal.scenes import Block, glide, stack
    from layerscope.simulate import simulate_haadf

    at = stack([Block("O3", 12), Block("O3", 12)], composition="LiCoO2", zone="100", width_nm=width_nm,
               thickness_nm=5, seed=1)
    plane = at.info["blocks"][0]["y_max_nm"] - 0.05
    at = glide(at, above_y_nm=plane, shift_fraction=shift_fraction)
    return simulate_haadf(at, pixel_size_nm=PX, probe_fwhm_nm=PROBE), at


@lru_cache(maxsize=None)
def spinel_stack(zone: str = "100", thickness_nm: float = 5.0):
    """LiCoO2 seen along ``zone``: O3 (6) | spinel (8) | O3 (6), 4 nm wide (``validation_scene("spinel")``)."""
    from layerscope.crystal.scenes import validation_scene
    from layerscope.simulate import simulate_haadf

    at = validation_scene("spinel", zone=zone, thickness_nm=thickness_nm)
    return simulate_haadf(at, pixel_size_nm=PX, probe_fwhm_nm=PROBE), at


@lru_cache(maxsize=None)
def zone110_stack():
    """LiCoO2 viewed along [110] (the mirror image of [100]): O3 | O3' (3) | O3 | O1 (4, from a Li layer) | O3."""
    from layerscope.crystal.scenes import Block, stack
    from layerscope.simulate import simulate_haadf

    at = stack([Block("O3", 8), Block("O3'", 3), Block("O3", 8), Block("O1", 4, li_fraction=0.0), Block("O3", 6)],
               composition="LiCoO2", zone="110", width_nm=4, thickness_nm=5, seed=1)
    return simulate_haadf(at, pixel_size_nm=PX, probe_fwhm_nm=PROBE), at


@lru_cache(maxsize=None)
def small_o3():
    """A 3 x 3 nm O3 LiCoO2 [100] image, 5 nm thick, clean (detected fraction)."""
    from layerscope.crystal.scenes import Block, stack
    from layerscope.simulate import simulate_haadf

    at = stack([Block("O3", 13)], composition="LiCoO2", zone="100", width_nm=3, thickness_nm=5, seed=1)
    return simulate_haadf(at, pixel_size_nm=PX, probe_fwhm_nm=PROBE)


@lru_cache(maxsize=None)
def graded_o3_o1():
    """LiCoO2 [100]: O3 (12) | O1 (8) | O3 (8); with ``graded`` the first O1 TM layer is shifted by
    a sixth of a column spacing, so that the O3 -> O1 registry changes in two steps (-1/6, -1/6)
    instead of one: a continuous interface. Returns (abrupt Simulation, graded Simulation)."""
    from layerscope.crystal.scenes import Block, glide, stack
    from layerscope.simulate import project_columns, simulate_haadf

    at = stack([Block("O3", 12), Block("O1", 8, li_fraction=0.0), Block("O3", 8)], composition="LiCoO2",
               zone="100", width_nm=4, thickness_nm=5, seed=1)
    first = at.info["blocks"][1]["first_layer"]
    y = project_columns(at).query("kind != 'O'").groupby("layer")["y_nm"].mean()
    above, below = 0.5 * (y[first - 2] + y[first]), 0.5 * (y[first] + y[first + 2])
    shift = (3**0.5 / 2) / 6  # a sixth of the column spacing a*sqrt(3)/2, in units of a
    graded = glide(glide(at, above_y_nm=below, shift_fraction=shift), above_y_nm=above, shift_fraction=-shift)
    return (simulate_haadf(at, pixel_size_nm=PX, probe_fwhm_nm=PROBE),
            simulate_haadf(graded, pixel_size_nm=PX, probe_fwhm_nm=PROBE))
