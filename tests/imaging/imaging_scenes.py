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


RIM_THICKNESS_NM = 5.0


def rim_profile(kind: str, x, y, w: float, h: float):
    """Thickness (nm) of a 5 nm lamella thinned towards a rim, and the distance (nm) from the rim
    (where the thickness reaches zero): ``void`` (a hole of 0.4 nm radius at the field's centre, its
    wall sloping to full thickness over 1 nm), ``crack`` (a wedge from the top edge to 60 % of the
    height, 0.6 nm open at the top, faces sloping over 1 nm) or ``surface`` (vacuum left of
    x = 0.8 nm, thickness rising over 1.5 nm); as in ``benchmarks/imaging_rims.py``."""
    t0 = RIM_THICKNESS_NM
    if kind == "void":
        d = np.hypot(x - w / 2, y - h / 2) - 0.4
        return np.clip(t0 * d / 1.0, 0, t0), d
    if kind == "crack":
        half = 0.3 * np.clip(1 - y / (0.6 * h), 0, 1)
        d = np.where(y < 0.6 * h, np.abs(x - w / 2) - half, np.hypot(x - w / 2, y - 0.6 * h))
        return np.where(y < 0.6 * h, np.clip(t0 * d / 1.0, 0, t0), t0), d
    d = x - 0.8
    return np.clip(t0 * d / 1.5, 0, t0), d


@lru_cache(maxsize=None)
def thinned_stack(block: str, kind: str):
    """LiCoO2 [100], O3 (6) | ``block`` | O3 (6), 5 nm wide and 5 nm thick, thinned by
    :func:`rim_profile` ``kind``; ``block`` is ``rock_salt`` (6 layers, no Li), ``spinel`` (8) or
    ``mixed`` (O3 with 30 % Li/TM exchange, 8). Returns (clean Simulation, atoms)."""
    from layerscope.crystal import labels
    from layerscope.crystal.scenes import Block, stack
    from layerscope.simulate import simulate_haadf

    mid = {"rock_salt": Block("rock_salt", 6, li_fraction=0.0), "spinel": Block("spinel", 8),
           "mixed": Block("O3", 8, mixing=0.3)}[block]
    at = stack([Block("O3", 6), mid, Block("O3", 6)], composition="LiCoO2", zone="100", width_nm=5.0,
               thickness_nm=RIM_THICKNESS_NM, seed=1)
    full = labels.with_vacancies(at)
    p = full.positions / 10.0
    t, _ = rim_profile(kind, p[:, 0], p[:, 1], at.cell[0, 0] / 10.0, at.cell[1, 1] / 10.0)
    z0 = p[:, 2].min()
    if kind == "void":  # removed symmetrically about the mid-plane
        keep = np.abs(p[:, 2] - 0.5 * (p[:, 2].max() + z0)) > 0.5 * (RIM_THICKNESS_NM - t) + 1e-6
    else:
        keep = (p[:, 2] - z0) < t - 1e-6
    thinned = labels.split_vacancies(full[keep])
    thinned.info = dict(at.info)
    return simulate_haadf(thinned, pixel_size_nm=PX, probe_fwhm_nm=PROBE), thinned


def li_layer_sites(layer: int, mixing: np.ndarray, sem: np.ndarray):
    """Li-layer site rows for ``interlayer_table``: O3 sites 0.25 nm apart along ``layer``, their mixing index
    and its counting error (``mixing_sem``), all "uncertain" before the decision."""
    import pandas as pd

    n = mixing.size
    u = np.arange(n) * 0.25
    return pd.DataFrame({"kind": "Li", "site": "octahedral", "layer": layer, "u_nm": u, "x_nm": u,
                         "y_nm": float(layer), "relation": "O3", "registry": -1 / 3, "mixing": mixing,
                         "mixing_sem": sem, "environment": "", "mixed": "uncertain"})


def phases_of_draw(seed: int):
    """Random validation draw ``seed`` read by ``map_phases`` and scored against its truth columns.
    Returns (PhaseMap, truth cation columns (TM and Li), column score, field extent (nm))."""
    from layerscope.imaging.pipeline import map_phases
    from layerscope.imaging.scoring import score_columns
    from layerscope.simulate.draws import draw_scene
    from layerscope.simulate.validation import MARGIN_NM

    image, px, truth = draw_scene(seed)
    extent = (image.shape[1] * px, image.shape[0] * px)
    p = truth.parameters
    pm = map_phases(image, pixel_size_nm=px, zone=p["zone"], composition=p["chemistry"])
    sc = score_columns(pm.columns, truth.columns, extent_nm=extent, margin_nm=MARGIN_NM)
    return pm, truth.columns[truth.columns["kind"].isin(["TM", "Li"])], sc, extent


def scored_off_and_on(monkeypatch, module, switch: str, seed: int) -> tuple[dict, dict]:
    """The validator's scores of random draw ``seed`` (``layerscope.simulate.validation.score_draw``) with the boolean
    ``module.switch`` set False, then True (through pytest's ``monkeypatch``, undone after the test)."""
    from layerscope.simulate.validation import score_draw

    rows = []
    for on in (False, True):
        monkeypatch.setattr(module, switch, on)
        rows.append(score_draw(seed))
    return rows[0], rows[1]
