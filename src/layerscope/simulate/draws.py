"""Validation images drawn at random from wide ranges, each with its ground truth (issue 19, item 6).

:func:`draw_scene` turns a seed into a HAADF image of the fast incoherent model and its truth,
built only from the public builders of :mod:`layerscope.crystal.scenes` (block stacks, Li/TM
mixing, voids) and :mod:`layerscope.simulate` (projected columns, Gaussian rendering,
:func:`~layerscope.simulate.degrade`, :func:`~layerscope.simulate.apparent_columns`), plus four
small helpers defined here: :func:`probe_fwhm_nm` (probe size from convergence angle and
defocus), :func:`wedge_factor` (a thickness wedge), :func:`background_texture` (an amorphous
layer's smooth background) and :func:`crack` (a through-thickness crack).

What is drawn (ranges in :class:`DrawRanges`): chemistry (LiCoO2, NMC811, NMC622, Li-rich), zone
([100], [110]), a block stack (two to four features from an O3' twin of 1-3 layers, a
delithiated O1 block, a spinel-like block, an O3 block with 20-40 % Li/TM exchange (12-15 % in the
Li-rich oxide, whose Ni limits it) and, for the
Li-rich oxide, a C2/m block, in random order between O3 spacers; sometimes a rock-salt surface
layer facing vacuum), the Z exponent of the column weight, a wedge of thickness across the field,
the probe (convergence angle, defocus, source size), voids and cracks, rotation of the whole
scene, background level and texture, line jitter, flyback distortion and drift, and the dose.

Approximations (said in ``docs/validation.md``): the structure is built 3 nm thick and every
column's weight is scaled by the wedge thickness over 3 nm (the fast model is linear in the atoms
of a column; the per-column mixing is that of a 3 nm column, noisier than a thick one); the probe
is a Gaussian of the defocused probe's FWHM (its tails are not modelled).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from layerscope.errors import InputError

__all__ = [
    "DrawRanges",
    "DrawTruth",
    "background_texture",
    "crack",
    "draw_parameters",
    "draw_scene",
    "probe_fwhm_nm",
    "wedge_factor",
    "O3_TM_STEP",
]

#: Registry of a TM layer to the next TM layer in O3 stacking, in column spacings along x (the
#: convention of :func:`layerscope.crystal.oriented`: +1/3 per cation layer in [100], -1/3 in
#: [110], so two cation layers give -1/3 and +1/3 wrapped). O3' is the opposite, O1 zero.
O3_TM_STEP: dict[str, float] = {"100": -1.0 / 3.0, "110": 1.0 / 3.0}
#: Thickness (nm) the structures are built with; the wedge scales the column weights from it.
BUILD_THICKNESS_NM = 3.0
#: Columns within this distance (nm) of a void, crack or vacuum edge are on a rim.
RIM_NM = 0.5


@dataclass(frozen=True)
class DrawRanges:
    """The ranges the parameters of a draw come from (uniform unless said; lengths in nm).

    Attributes
    ----------
    chemistries, zones : tuple of str
        Drawn with equal probability.
    z_exponent : (float, float)
        Exponent ``n`` of the column weight ``sum Z^n``.
    thickness_nm : (float, float)
        Both ends of the wedge lie in this range.
    convergence_mrad, defocus_nm, source_fwhm_nm : (float, float)
        Probe semi-angle, defocus and the source size (FWHM of an extra Gaussian blur).
    dose_e_per_A2 : (float, float)
        Log-uniform.
    jitter_px, flyback_px : (float, float)
        RMS line jitter and flyback distortion amplitude (decay length 10-40 px).
    drift_fraction : (float, float)
        Sample drift over the whole frame, as a fraction of the field width.
    background_fraction : (float, float)
        Mean background (uniform plus texture) as a fraction of the clean image's mean.
    texture_correlation_nm : (float, float)
        Correlation length of the background texture.
    pixel_size_nm, field_nm : (float, float)
        Pixel size and width of the square field.
    """

    chemistries: tuple[str, ...] = ("LiCoO2", "NMC811", "NMC622", "Li-rich")
    zones: tuple[str, ...] = ("100", "110")
    z_exponent: tuple[float, float] = (1.6, 2.0)
    thickness_nm: tuple[float, float] = (4.0, 30.0)
    convergence_mrad: tuple[float, float] = (18.0, 30.0)
    defocus_nm: tuple[float, float] = (-5.0, 5.0)
    source_fwhm_nm: tuple[float, float] = (0.03, 0.07)
    dose_e_per_A2: tuple[float, float] = (5e2, 1e5)
    jitter_px: tuple[float, float] = (0.0, 0.5)
    flyback_px: tuple[float, float] = (0.0, 1.5)
    drift_fraction: tuple[float, float] = (0.0, 0.02)
    background_fraction: tuple[float, float] = (0.0, 0.3)
    texture_correlation_nm: tuple[float, float] = (0.4, 3.0)
    pixel_size_nm: tuple[float, float] = (0.010, 0.015)
    field_nm: tuple[float, float] = (5.5, 7.0)

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name in ("chemistries", "zones"):
                if not value:
                    raise InputError(f"DrawRanges.{name} is empty; give at least one")
            elif not (len(value) == 2 and np.all(np.isfinite(value)) and value[0] <= value[1]):
                raise InputError(f"DrawRanges.{name}={value!r} must be (low, high) with low <= high")


def probe_fwhm_nm(convergence_mrad: float, defocus_nm: float = 0.0, *, energy_keV: float = 200.0) -> float:
    """FWHM (nm) of the intensity of an aberration-free probe with a round aperture, at a defocus.

    ``psi(r) = int_0^{k_max} J0(2 pi k r) exp(-i pi lambda df k^2) 2 pi k dk`` with ``k_max =
    alpha / lambda`` (Kirkland 2020, ch. 5; spherical aberration taken as corrected); the FWHM is
    read off ``|psi(r)|^2`` by linear interpolation. In focus it is the Airy disc's
    ``0.5145 lambda / alpha`` (0.052 nm at 200 kV and 25 mrad).

    Parameters
    ----------
    convergence_mrad : float
        Probe semi-angle in mrad (> 0).
    defocus_nm : float
        Defocus in nm (the sign does not matter without spherical aberration).
    energy_keV : float
        Beam energy in keV.
    """
    from scipy.special import j0

    from layerscope.simulate.incoherent import electron_wavelength_A

    if not (np.isfinite(convergence_mrad) and convergence_mrad > 0 and np.isfinite(defocus_nm)):
        raise InputError(f"convergence_mrad={convergence_mrad!r} must be > 0 and defocus_nm finite")
    lam_nm = electron_wavelength_A(energy_keV) / 10.0
    k_max = convergence_mrad * 1e-3 / lam_nm
    nodes, weights = np.polynomial.legendre.leggauss(400)
    k = 0.5 * k_max * (nodes + 1.0)
    w = 0.5 * k_max * weights * 2.0 * np.pi * k * np.exp(-1j * np.pi * lam_nm * defocus_nm * k**2)
    r = np.linspace(0.0, 4.0 / k_max, 801)  # the half maximum lies within 2 / k_max up to 5 nm defocus
    intensity = np.abs(j0(2.0 * np.pi * np.outer(r, k)) @ w) ** 2
    half = 0.5 * intensity.max()
    i = int(np.argmax(intensity))
    below = i + int(np.argmax(intensity[i:] < half))
    r_half = np.interp(half, intensity[below - 1:below + 1][::-1], r[below - 1:below + 1][::-1])
    return float(2.0 * r_half)


def wedge_factor(x_nm: np.ndarray, y_nm: np.ndarray, *, field_nm: float, thickness_nm: tuple[float, float],
                 angle_deg: float, build_thickness_nm: float = BUILD_THICKNESS_NM) -> np.ndarray:
    """Thickness at ``(x, y)`` of a wedge across a square field, over the build thickness.

    The thickness grows linearly from ``thickness_nm[0]`` to ``thickness_nm[1]`` along the
    direction ``angle_deg`` (from +x towards +y) and reaches both values at the field's corners
    farthest along it (``t = t0 + (t1 - t0) (0.5 + d / (sqrt(2) F))``, ``d`` the distance from the
    field centre along the direction, clipped to the two values).
    """
    u = np.array([np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))])
    d = (np.asarray(x_nm, float) - field_nm / 2) * u[0] + (np.asarray(y_nm, float) - field_nm / 2) * u[1]
    s = np.clip(0.5 + d / (np.sqrt(2.0) * field_nm), 0.0, 1.0)
    return (thickness_nm[0] + (thickness_nm[1] - thickness_nm[0]) * s) / build_thickness_nm


def background_texture(shape: tuple[int, int], pixel_size_nm: float, *, mean: float, correlation_nm: float,
                       seed: int) -> np.ndarray:
    """A smooth, non-negative random background of a given mean (an amorphous surface layer).

    White noise smoothed by a Gaussian of standard deviation ``correlation_nm`` (so the
    correlation between two pixels ``d`` apart is ``exp(-d^2 / (4 correlation_nm^2))``),
    scaled to unit variance, and mapped to ``mean * (1 + 0.5 z)`` clipped at zero: a relative
    RMS of 0.5.
    """
    from scipy import ndimage

    if not (mean >= 0 and correlation_nm > 0 and pixel_size_nm > 0):
        raise InputError(f"mean={mean!r} must be >= 0 and correlation_nm={correlation_nm!r} > 0")
    noise = np.random.default_rng([int(seed), 7]).normal(size=shape)
    # periodic Gaussian smoothing in Fourier space (a direct filter of a 300-pixel sigma costs seconds)
    z = np.fft.ifft2(ndimage.fourier_gaussian(np.fft.fft2(noise), correlation_nm / pixel_size_nm)).real
    z = (z - z.mean()) / max(float(z.std()), 1e-12)
    return np.clip(mean * (1.0 + 0.5 * z), 0.0, None)


def crack(atoms, *, start_nm: tuple[float, float], end_nm: tuple[float, float], width_nm: float):
    """Remove every atom (and empty site) within ``width_nm / 2`` of a segment, through the thickness.

    A crack seen edge-on through a lamella: the in-plane distance to the segment from
    ``start_nm`` to ``end_nm`` (x, y in nm; x uses the minimum image of a periodic cell).
    Returns new atoms; ``info["cracks"]`` gains ``{start_nm, end_nm, width_nm, n_removed}``.
    """
    import copy

    from layerscope.crystal import labels as _labels

    if not width_nm > 0:
        raise InputError(f"width_nm={width_nm!r} must be > 0")
    full = _labels.with_vacancies(atoms)
    a, b = np.asarray(start_nm, float) * 10.0, np.asarray(end_nm, float) * 10.0
    p = full.positions[:, :2] - a
    ab = b - a
    if full.pbc[0]:
        p[:, 0] -= full.cell[0, 0] * np.round((p[:, 0] - ab[0] / 2) / full.cell[0, 0])
    t = np.clip(p @ ab / max(float(ab @ ab), 1e-12), 0.0, 1.0)
    inside = np.hypot(*(p - t[:, None] * ab).T) < width_nm * 5.0
    n_removed = int(np.count_nonzero(inside & (np.array(full.get_chemical_symbols()) != "X")))
    out = _labels.split_vacancies(full[~inside])
    out.info = copy.deepcopy(out.info)
    out.info["cracks"] = list(atoms.info.get("cracks", [])) + [
        dict(start_nm=tuple(map(float, start_nm)), end_nm=tuple(map(float, end_nm)), width_nm=float(width_nm),
             n_removed=n_removed)]
    return out


#: Feature blocks a stack can hold (C2/m only for the Li-rich oxide).
FEATURES: tuple[str, ...] = ("twin", "O1", "spinel", "mixed", "C2/m")


def _feature_block(kind: str, rng: np.random.Generator, chemistry: str) -> dict:
    if kind == "twin":
        return dict(phase="O3'", n_layers=int(rng.integers(1, 4)))
    if kind == "O1":
        return dict(phase="O1", n_layers=2 * int(rng.integers(1, 4)), li_fraction=0.0)
    if kind == "spinel":
        return dict(phase="spinel", n_layers=8)
    if kind == "mixed":
        # Li/TM exchange moves Ni: the Li-rich oxide has 0.2 Ni per TM-layer site: 0.15 of the Li-layer sites at most
        high = (0.12, 0.15) if chemistry == "Li-rich" else (0.2, 0.4)
        return dict(phase="O3", n_layers=int(rng.integers(6, 11)), mixing=round(float(rng.uniform(*high)), 3))
    return dict(phase="C2/m", n_layers=int(rng.integers(6, 11)))


def _draw_blocks(rng: np.random.Generator, chemistry: str, field_nm: float) -> tuple[list[dict], bool, tuple[int, int]]:
    """The stack, top to bottom: O3 padding (or a rock-salt surface), features between O3 spacers, padding."""
    kinds = [k for k in FEATURES if k != "C2/m" or chemistry == "Li-rich"]
    chosen = list(rng.permutation(kinds)[: int(rng.integers(2, 5))])
    surface = bool(rng.random() < 0.35)
    pad = int(np.ceil((field_nm / np.sqrt(2.0) + 0.8) / 0.23))
    if surface:
        blocks = [dict(phase="rock_salt", n_layers=int(rng.integers(3, 7)), li_fraction=0.0),
                  dict(phase="O3", n_layers=int(rng.integers(3, 6)))]
    else:
        blocks = [dict(phase="O3", n_layers=pad)]
    first = len(blocks)
    for i, kind in enumerate(chosen):
        if i:
            blocks.append(dict(phase="O3", n_layers=int(rng.integers(4, 9))))
        blocks.append(_feature_block(str(kind), rng, chemistry))
    last = len(blocks) - 1
    blocks.append(dict(phase="O3", n_layers=pad))
    return blocks, surface, (first, last)


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1])) if bounds[1] > bounds[0] else float(bounds[0])


def _draw_holes(rng: np.random.Generator, field_nm: float) -> tuple[list[dict], list[dict]]:
    """Voids (centre and radius) and cracks (centre, length, width, direction) in image coordinates (nm)."""
    voids = [dict(x_nm=_uniform(rng, (0.2 * field_nm, 0.8 * field_nm)), y_nm=_uniform(rng, (0.2 * field_nm, 0.8 * field_nm)),
                  radius_nm=_uniform(rng, (0.35, 0.9))) for _ in range(int(rng.choice(3, p=[0.5, 0.35, 0.15])))]
    cracks = []
    if rng.random() < 0.3:
        cracks.append(dict(x_nm=_uniform(rng, (0.25 * field_nm, 0.75 * field_nm)),
                           y_nm=_uniform(rng, (0.25 * field_nm, 0.75 * field_nm)),
                           length_nm=_uniform(rng, (1.5, 3.5)), width_nm=_uniform(rng, (0.2, 0.45)),
                           basal=bool(rng.random() < 0.6), angle_deg=_uniform(rng, (0.0, 180.0))))
    return voids, cracks


def draw_parameters(seed: int, ranges: DrawRanges | None = None) -> dict:
    """The parameters of draw ``seed`` (a dict; ``blocks``, ``voids`` and ``cracks`` are lists of dicts).

    Every value comes from one ``numpy.random.default_rng(seed)`` in a fixed order, so a seed
    always gives the same draw (for the same :class:`DrawRanges`).
    """
    r = ranges or DrawRanges()
    rng = np.random.default_rng(int(seed))
    p: dict = {"seed": int(seed), "chemistry": str(rng.choice(list(r.chemistries))), "zone": str(rng.choice(list(r.zones)))}
    p["pixel_size_nm"] = round(_uniform(rng, r.pixel_size_nm), 5)
    p["field_px"] = int(round(_uniform(rng, r.field_nm) / p["pixel_size_nm"]))
    field = p["field_px"] * p["pixel_size_nm"]
    p["blocks"], p["surface"], p["features"] = _draw_blocks(rng, p["chemistry"], field)
    t = sorted(_uniform(rng, r.thickness_nm) for _ in range(2))
    p.update(thickness_min_nm=t[0], thickness_max_nm=t[1], wedge_angle_deg=_uniform(rng, (0.0, 360.0)),
             z_exponent=_uniform(rng, r.z_exponent), convergence_mrad=_uniform(rng, r.convergence_mrad),
             defocus_nm=_uniform(rng, r.defocus_nm), source_fwhm_nm=_uniform(rng, r.source_fwhm_nm),
             rotation_deg=_uniform(rng, (0.0, 360.0)),
             dose_e_per_A2=float(10 ** _uniform(rng, tuple(np.log10(r.dose_e_per_A2)))),
             jitter_px=_uniform(rng, r.jitter_px), flyback_px=_uniform(rng, r.flyback_px),
             flyback_decay_px=_uniform(rng, (10.0, 40.0)), drift_fraction=_uniform(rng, r.drift_fraction),
             drift_angle_deg=_uniform(rng, (0.0, 360.0)), dwell_time_s=_uniform(rng, (2e-6, 1e-5)),
             background_fraction=_uniform(rng, r.background_fraction), texture_share=_uniform(rng, (0.0, 1.0)),
             texture_correlation_nm=_uniform(rng, r.texture_correlation_nm),
             surface_depth_nm=_uniform(rng, (0.3 * field, 0.45 * field)), structure_seed=int(rng.integers(2**31)))
    p["voids"], p["cracks"] = _draw_holes(rng, field)
    p["probe_fwhm_nm"] = probe_fwhm_nm(p["convergence_mrad"], p["defocus_nm"])
    return p


@dataclass
class DrawTruth:
    """Ground truth of one draw.

    Attributes
    ----------
    columns : pandas.DataFrame
        Projected columns inside the image (``COLUMN_FIELDS`` of :mod:`layerscope.simulate`) at the
        position where they appear in the degraded image (``x_nm, y_nm``; drift and flyback
        applied, see :func:`~layerscope.simulate.apparent_columns`), with ``x_true_nm, y_true_nm``
        (before the scan), ``scene_x_nm, scene_y_nm`` (the unrotated stack's frame),
        ``wedge_factor`` (thickness over the build thickness; ``expected_intensity`` is that of
        the 3 nm build, so visibility is judged against TM columns of the same thickness) and
        ``edge_nm`` (distance to the nearest void, crack or vacuum edge; inf when none).
    sites : pandas.DataFrame
        Every cation site inside the image, filled or empty (an empty Li site of O1 is a site):
        ``x_nm, y_nm`` (apparent), ``x_true_nm, y_true_nm``, ``scene_x_nm, scene_y_nm``, ``phase,
        layer, kind`` (TM or Li layer), ``n_atoms`` (sites along the beam), ``fill`` (TM atoms per
        site: the truth of a Li layer's fill), ``wedge_factor``, ``edge_nm``.
    gaps : pandas.DataFrame
        One row per gap between TM layers ``k`` and ``k + 2`` of the stack: ``li_layer`` (k + 1),
        ``scene_y_nm``, ``registry`` (column spacings), ``relation`` (O3, O3', O1 or off),
        ``phase`` (majority truth phase of the Li layer's columns).
    twin_runs : dict
        Twin-like domains as runs of consecutive reversed (O3') TM-TM steps visible in the field:
        ``{"single-layer": n1, "double-layer": n2, "multilayer": n3}``.
    twin_ambiguous : bool
        A run of reversed steps is cut by the field edge (fewer than 8 TM columns of one of its
        layers inside): its count is not a fair target.
    parameters : dict
        Everything :func:`draw_parameters` drew.
    """

    columns: pd.DataFrame
    sites: pd.DataFrame
    gaps: pd.DataFrame
    twin_runs: dict[str, int]
    twin_ambiguous: bool
    parameters: dict = field(default_factory=dict)


def _build_atoms(p: dict):
    """The rotated scene's atoms in the stack frame, voids and cracks cut; returns (atoms, centre_nm)."""
    from layerscope.crystal.scenes import Block, stack, void

    field_nm = p["field_px"] * p["pixel_size_nm"]
    width = field_nm * np.sqrt(2.0) + 1.0
    atoms = stack([Block(**b) for b in p["blocks"]], composition=p["chemistry"], zone=p["zone"], width_nm=width,
                  thickness_nm=BUILD_THICKNESS_NM, seed=p["structure_seed"])
    info = atoms.info["blocks"]
    first, last = p["features"]
    y_c = 0.5 * (info[first]["y_min_nm"] + info[last]["y_max_nm"])
    if p["surface"]:
        y_c = min(y_c, p["surface_depth_nm"])
    centre = np.array([atoms.info["width_nm"] / 2.0, y_c])
    for v in p["voids"]:
        atoms = void(atoms, center_nm=tuple(_to_scene(np.array([v["x_nm"], v["y_nm"]]), p, centre)),
                     radius_nm=v["radius_nm"])
    for c in p["cracks"]:
        mid = _to_scene(np.array([c["x_nm"], c["y_nm"]]), p, centre)
        ang = 0.0 if c["basal"] else np.radians(c["angle_deg"])
        half = 0.5 * c["length_nm"] * np.array([np.cos(ang), np.sin(ang)])
        atoms = crack(atoms, start_nm=tuple(mid - half), end_nm=tuple(mid + half), width_nm=c["width_nm"])
    return atoms, centre


def _rotation(p: dict) -> np.ndarray:
    a = np.radians(p["rotation_deg"])
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def _to_scene(xy_image: np.ndarray, p: dict, centre: np.ndarray) -> np.ndarray:
    """Image coordinates (nm, ... x 2) to the stack frame: ``R(-theta) (q - F/2) + centre``."""
    half = 0.5 * p["field_px"] * p["pixel_size_nm"]
    return (np.asarray(xy_image, float) - half) @ _rotation(p) + centre


def _edge_distance(scene_xy: np.ndarray, atoms, p: dict) -> np.ndarray:
    """Distance (nm) of stack-frame points to the nearest void rim, crack face or the vacuum above the stack."""
    x, y = scene_xy[:, 0], scene_xy[:, 1]
    d = np.full(len(x), np.inf)
    if p["surface"]:
        d = np.minimum(d, np.abs(y))
    for v in atoms.info.get("voids", []):
        d = np.minimum(d, np.abs(np.hypot(x - v["center_nm"][0], y - v["center_nm"][1]) - v["radius_nm"]))
    for c in atoms.info.get("cracks", []):
        a, b = np.asarray(c["start_nm"]), np.asarray(c["end_nm"])
        q = scene_xy - a
        t = np.clip(q @ (b - a) / float((b - a) @ (b - a)), 0.0, 1.0)
        d = np.minimum(d, np.abs(np.hypot(*(q - t[:, None] * (b - a)).T) - c["width_nm"] / 2.0))
    return d


def _to_image(scene_xy: np.ndarray, p: dict, centre: np.ndarray) -> np.ndarray:
    """Stack frame to image coordinates (nm): ``R(theta) (s - centre) + F/2``."""
    half = 0.5 * p["field_px"] * p["pixel_size_nm"]
    return (np.asarray(scene_xy, float) - centre) @ _rotation(p).T + half


def _placed(table: pd.DataFrame, p: dict, centre: np.ndarray, atoms, margin_nm: float) -> pd.DataFrame:
    """Rows of a stack-frame table moved into the image, kept within ``margin_nm`` of the field."""
    field_nm = p["field_px"] * p["pixel_size_nm"]
    scene = table[["x_nm", "y_nm"]].to_numpy()
    xy = _to_image(scene, p, centre)
    keep = np.all((xy > -margin_nm) & (xy < field_nm + margin_nm), axis=1)
    out = table[keep].copy()
    out["scene_x_nm"], out["scene_y_nm"] = scene[keep, 0], scene[keep, 1]
    out["x_nm"], out["y_nm"] = xy[keep, 0], xy[keep, 1]
    out["wedge_factor"] = wedge_factor(out["x_nm"], out["y_nm"], field_nm=field_nm, angle_deg=p["wedge_angle_deg"],
                                       thickness_nm=(p["thickness_min_nm"], p["thickness_max_nm"]))
    out["edge_nm"] = _edge_distance(scene[keep], atoms, p)
    return out.reset_index(drop=True)


def _site_table(atoms) -> pd.DataFrame:
    """Every cation site of the stack (filled or empty) with its TM count per site (``fill``), stack frame."""
    from layerscope.crystal import labels as _labels
    from layerscope.simulate import project_columns

    full = _labels.with_vacancies(atoms)
    symbols = np.array(full.get_chemical_symbols())
    symbols[symbols == _labels.VACANCY] = "He"  # an empty site counts as a site with no TM
    full.set_chemical_symbols(list(symbols))
    sites = project_columns(full)
    sites = sites[sites["kind"].isin(["TM", "Li"])].rename(columns={"tm_fraction": "fill"})
    return sites[["x_nm", "y_nm", "phase", "layer", "kind", "n_atoms", "fill"]]


def _render(p: dict, atoms, centre: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """Clean image (detected fraction) of the rotated, wedged scene and its truth columns (image frame)."""
    from layerscope.simulate.incoherent import FWHM_PER_SIGMA, TRUNCATE_SIGMA, render_gaussians, simulate_haadf

    px, n = p["pixel_size_nm"], p["field_px"]
    sigma = p["probe_fwhm_nm"] / FWHM_PER_SIGMA
    # the stack's columns and the model's absolute scale; the coarse pixel only sets the throwaway image
    sim = simulate_haadf(atoms, pixel_size_nm=0.05, probe_fwhm_nm=p["probe_fwhm_nm"], z_exponent=p["z_exponent"],
                         field_nm=(atoms.info["width_nm"], atoms.cell[1, 1] / 10.0))
    sigma0 = sim.columns.attrs["cross_section_A2_per_Zn"]
    cols = _placed(sim.columns, p, centre, atoms, TRUNCATE_SIGMA * sigma + 2 * px)
    peak = sigma0 * cols["expected_intensity"] * cols["wedge_factor"] / (2.0 * np.pi * (10.0 * sigma) ** 2)
    clean = render_gaussians(cols["x_nm"].to_numpy(), cols["y_nm"].to_numpy(), peak.to_numpy(), shape=(n, n),
                             pixel_size_nm=px, sigma_nm=sigma)
    inside = np.all((cols[["x_nm", "y_nm"]].to_numpy() >= 0) & (cols[["x_nm", "y_nm"]].to_numpy() < n * px), axis=1)
    return clean, cols[inside].reset_index(drop=True)


def _degraded(clean: np.ndarray, p: dict):
    """The acquisition: background texture and level, source blur, scan errors, Poisson noise."""
    from layerscope.containers import Image
    from layerscope.simulate import degrade

    px, n = p["pixel_size_nm"], p["field_px"]
    level = p["background_fraction"] * float(clean.mean())
    texture = background_texture(clean.shape, px, mean=level * p["texture_share"],
                                 correlation_nm=p["texture_correlation_nm"], seed=p["seed"])
    speed = p["drift_fraction"] * n * px / (n * n * p["dwell_time_s"])
    ang = np.radians(p["drift_angle_deg"])
    return degrade(Image.from_array(clean + texture, pixel_size_nm=px), dose_e_per_A2=p["dose_e_per_A2"],
                   seed=p["seed"], blur_nm=p["source_fwhm_nm"], background=level * (1.0 - p["texture_share"]),
                   scan_jitter_px=p["jitter_px"], scan_distortion_px=p["flyback_px"],
                   scan_distortion_decay_px=p["flyback_decay_px"],
                   drift_nm_per_s=(speed * np.cos(ang), speed * np.sin(ang)), dwell_time_s=p["dwell_time_s"])


def _gaps(sites: pd.DataFrame, zone: str) -> pd.DataFrame:
    """Registry and relation of every TM-layer-to-TM-layer gap of the stack (stack frame)."""
    tm = sites[sites["kind"] == "TM"]
    spacing = [np.median(np.diff(np.unique(g["x_nm"].round(4)))) for _, g in tm.groupby("layer") if len(g) > 3]
    d_t = float(np.median(spacing))
    phase = {k: np.angle(np.mean(np.exp(2j * np.pi * g["x_nm"].to_numpy() / d_t))) / (2 * np.pi)
             for k, g in tm.groupby("layer")}
    ideal = {"O3": O3_TM_STEP[zone], "O3'": -O3_TM_STEP[zone], "O1": 0.0}
    rows = []
    for k in sorted(phase):
        if k + 2 not in phase:
            continue
        reg = (phase[k + 2] - phase[k] + 0.5) % 1.0 - 0.5
        dist = {name: abs((reg - v + 0.5) % 1.0 - 0.5) for name, v in ideal.items()}
        best = min(dist, key=dist.get)
        li = sites[sites["layer"] == k + 1]
        rows.append({"li_layer": k + 1, "scene_y_nm": float(li["y_nm"].mean()) if len(li) else np.nan,
                     "registry": float(reg), "relation": best if dist[best] < 0.08 else "off",
                     "phase": str(li["phase"].mode().iloc[0]) if len(li) else ""})
    return pd.DataFrame(rows)


_TWIN_TYPES = ("single-layer", "double-layer", "multilayer")


def _twin_runs(gaps: pd.DataFrame, sites: pd.DataFrame, field_nm: float, min_columns: int = 8,
               margin_nm: float = 0.3) -> tuple[dict[str, int], bool]:
    """Runs of consecutive reversed TM-TM steps that cross the field, by type, and whether one is cut."""
    tm = sites[(sites["kind"] == "TM") & sites["x_true_nm"].between(margin_nm, field_nm - margin_nm)
               & sites["y_true_nm"].between(margin_nm, field_nm - margin_nm)]
    seen = tm.groupby("layer").size()
    runs, ambiguous, current = [], False, []
    rev = gaps.sort_values("li_layer")
    for li, rel in zip(rev["li_layer"], rev["relation"]):
        if rel == "O3'" and (not current or li == current[-1] + 2):
            current.append(int(li))
            continue
        if current:
            runs.append(current)
        current = [int(li)] if rel == "O3'" else []
    runs += [current] if current else []
    counts = dict.fromkeys(_TWIN_TYPES, 0)
    for run in runs:
        layers = range(run[0] - 1, run[-1] + 2, 2)
        visible = [int(seen.get(k, 0)) for k in layers]
        if min(visible) >= min_columns:
            counts[_TWIN_TYPES[min(len(run), 3) - 1]] += 1
        elif max(visible) > 0:
            ambiguous = True
    return counts, ambiguous


def draw_scene(seed: int, ranges: DrawRanges | None = None) -> tuple[np.ndarray, float, DrawTruth]:
    """A random validation image and its truth.

    Parameters
    ----------
    seed : int
        The draw; the same seed gives the same image (bit for bit) and truth.
    ranges : DrawRanges, optional
        Where the parameters come from (default :class:`DrawRanges`).

    Returns
    -------
    image : numpy.ndarray
        Detected electrons per pixel (float32), square.
    pixel_size_nm : float
    truth : DrawTruth
    """
    from layerscope.simulate import apparent_columns

    p = draw_parameters(seed, ranges)
    atoms, centre = _build_atoms(p)
    clean, cols = _render(p, atoms, centre)
    degraded = _degraded(clean, p)
    field_nm = p["field_px"] * p["pixel_size_nm"]
    columns = apparent_columns(cols, degraded)
    stack_sites = _site_table(atoms)
    sites = _placed(stack_sites, p, centre, atoms, 0.0)
    sites = apparent_columns(sites[(sites["x_nm"] < field_nm) & (sites["y_nm"] < field_nm)], degraded)
    gaps = _gaps(stack_sites, p["zone"])
    twins, ambiguous = _twin_runs(gaps, sites, field_nm)
    truth = DrawTruth(columns=columns[columns["in_image"]].reset_index(drop=True),
                      sites=sites[sites["in_image"]].reset_index(drop=True), gaps=gaps, twin_runs=twins,
                      twin_ambiguous=ambiguous, parameters=p)
    return np.asarray(degraded.data, dtype=np.float32), float(p["pixel_size_nm"]), truth
