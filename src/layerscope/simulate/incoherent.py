"""The fast incoherent HAADF model: projected columns as probe-sized peaks of weight ~ Z^n.

In the incoherent imaging approximation the annular-dark-field signal with the probe at ``r`` is
the object's scattering power convolved with the probe intensity::

    I(r) = sum_j sigma_j |P(r - r_j)|^2,

where ``sigma_j`` is the cross-section for scattering onto the detector of the atoms of column
``j`` and ``|P|^2`` is normalised to unit area. Here ``|P|^2`` is a Gaussian of the given FWHM
(the effective probe: diffraction limit, source size and channelling broadening together) and
``sigma_j = sigma_0 * sum(Z**n)`` over the column's atoms (Nellist & Pennycook 2000; n ~ 1.7).

Absolute scale. ``sigma_0`` is chosen so that the structure's total ``sum_j sigma_j`` equals the
sum of its atoms' *kinematic* (single-scattering, first Born) cross-sections for the detector,
computed from the Lobato & Van Dyck (2014) electron scattering factors with the relativistic
mass correction. So a pixel value is the *fraction of the incident beam that reaches the
detector*, the image mean is the thin-specimen HAADF fraction of the structure, and
:func:`layerscope.simulate.noise.degrade` can turn it into detected electrons at a dose. Thick
crystals channel: exact multislice (``simulate_multislice``) differs from the kinematic level by
tens of percent (measured in ``docs/validation.md``).

Exactness. Every peak is an analytic Gaussian evaluated at the pixel centres
``((col + 0.5) * pixel_size_nm, (row + 0.5) * pixel_size_nm)`` on a window of +-5 sigma around
its column, vectorised over all columns (``numpy.bincount`` accumulation, no per-column Python
loop), so each peak is centred exactly (to floating point) on the ``x_nm, y_nm`` of the truth table.

References
----------
- P. D. Nellist and S. J. Pennycook, Adv. Imaging Electron Phys. 113, 147 (2000).
- I. Lobato and D. Van Dyck, "An accurate parameterization for scattering factors, electron
  densities and electrostatic potentials for neutral atoms that obey all physical constraints",
  Acta Cryst. A70, 636 (2014).
- E. J. Kirkland, *Advanced Computing in Electron Microscopy*, 3rd ed., Springer (2020), ch. 5
  (relativistic wavelength, incoherent ADF imaging).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from layerscope.containers import Image
from layerscope.errors import InputError
from layerscope.provenance import Provenance
from layerscope.simulate.columns import COLUMN_FIELDS, projected_columns_with_margin
from layerscope.simulate.result import Simulation

__all__ = [
    "simulate_haadf",
    "render_gaussians",
    "kinematic_cross_section_A2",
    "electron_wavelength_A",
    "FWHM_PER_SIGMA",
    "TRUNCATE_SIGMA",
]

#: FWHM of a Gaussian in units of its standard deviation, 2 sqrt(2 ln 2).
FWHM_PER_SIGMA: float = 2.0 * np.sqrt(2.0 * np.log(2.0))
#: Half-width of the window each peak is evaluated on, in standard deviations (tail < 4e-6 of the peak).
TRUNCATE_SIGMA: float = 5.0

_ELECTRON_REST_ENERGY_EV = 510998.95
_HC_EV_A = 12398.419843  # h c in eV Angstrom


def electron_wavelength_A(energy_keV: float) -> float:
    """Relativistic electron wavelength in Angstrom for a beam energy in keV (Kirkland 2020, eq. 2.5)."""
    e = float(energy_keV) * 1e3
    return _HC_EV_A / np.sqrt(e * (e + 2.0 * _ELECTRON_REST_ENERGY_EV))


@lru_cache(maxsize=1)
def _lobato_parameters() -> dict[str, np.ndarray]:
    """Lobato & Van Dyck (2014) parameters as shipped with abTEM, read without importing abTEM (slow)."""
    import importlib.util
    import json
    from pathlib import Path

    from layerscope._extras import require

    require("sim", "simulating an image (abTEM ships the Lobato scattering factors)", ("abtem",))
    spec = importlib.util.find_spec("abtem")
    path = Path(spec.origin).parent / "parametrizations" / "data" / "lobato.json"
    return {k: np.asarray(v, dtype=float) for k, v in json.loads(path.read_text()).items()}


def lobato_scattering_factor_A(symbol: str, k_per_A: np.ndarray) -> np.ndarray:
    """Electron scattering factor ``f_e(k)`` in Angstrom (Lobato & Van Dyck 2014, eq. 16), k = 2 sin(theta)/lambda."""
    table = _lobato_parameters()
    if symbol not in table:
        raise InputError(f"no electron scattering factor for element {symbol!r}; check the structure's symbols")
    a, b = table[symbol]
    k2 = np.asarray(k_per_A, dtype=float)[..., None] ** 2
    return np.sum(a * (2.0 + b * k2) / (1.0 + b * k2) ** 2, axis=-1)


@lru_cache(maxsize=256)
def _kinematic_cross_section(symbol: str, energy_keV: float, inner_mrad: float, outer_mrad: float) -> float:
    lam = electron_wavelength_A(energy_keV)
    gamma = 1.0 + energy_keV * 1e3 / _ELECTRON_REST_ENERGY_EV
    # dsigma/dOmega = |gamma f(k)|^2 with dOmega = 2 pi theta dtheta and theta = lambda k:
    # Gauss-Legendre on 200 nodes (the integrand is smooth; converged to < 1e-10)
    nodes, weights = np.polynomial.legendre.leggauss(200)
    k1, k2 = inner_mrad * 1e-3 / lam, outer_mrad * 1e-3 / lam
    k = 0.5 * (k2 - k1) * nodes + 0.5 * (k2 + k1)
    integrand = (gamma * lobato_scattering_factor_A(symbol, k)) ** 2 * 2.0 * np.pi * lam**2 * k
    return float(0.5 * (k2 - k1) * np.sum(weights * integrand))


def kinematic_cross_section_A2(symbol: str, *, energy_keV: float, detector_mrad: tuple[float, float]) -> float:
    """Single-atom elastic cross-section (A^2) for scattering onto an annular detector.

    ``sigma = integral over the detector of |gamma f_e(theta)|^2 dOmega`` with the Lobato & Van Dyck
    (2014) scattering factors ``f_e`` (first Born approximation, isolated neutral atom, no thermal
    diffuse scattering, small-angle ``theta = lambda k``) and the relativistic factor ``gamma``.

    Parameters
    ----------
    symbol : str
        Chemical symbol.
    energy_keV : float
        Beam energy in keV.
    detector_mrad : (float, float)
        Inner and outer detector semi-angles in mrad.

    Returns
    -------
    float
        Cross-section in A^2 (Co at 200 keV, 80-200 mrad: ~1.7e-3 A^2).
    """
    inner, outer = _check_detector(detector_mrad)
    if not (np.isfinite(energy_keV) and energy_keV > 0):
        raise InputError(f"energy_keV={energy_keV!r} must be a positive beam energy in keV (e.g. 200)")
    return _kinematic_cross_section(str(symbol), float(energy_keV), inner, outer)


def _check_detector(detector_mrad) -> tuple[float, float]:
    try:
        inner, outer = (float(v) for v in detector_mrad)
    except (TypeError, ValueError):
        raise InputError(
            f"detector_mrad={detector_mrad!r} must be (inner, outer) semi-angles in mrad, e.g. (80, 200)"
        ) from None
    if not (0 <= inner < outer and np.isfinite(outer)):
        raise InputError(f"detector_mrad={detector_mrad!r}: need 0 <= inner < outer (mrad)")
    return inner, outer


def render_gaussians(
    x_nm: np.ndarray,
    y_nm: np.ndarray,
    weights: np.ndarray,
    *,
    shape: tuple[int, int],
    pixel_size_nm: float,
    sigma_nm: float,
    truncate: float = TRUNCATE_SIGMA,
    max_block_elements: int = 1 << 22,
) -> np.ndarray:
    """Sum of isotropic Gaussians ``w exp(-r^2 / 2 sigma^2)`` (peak value ``w``) sampled at pixel centres.

    Each Gaussian is evaluated analytically on a ``(2h + 1)^2`` window (``h = ceil(truncate *
    sigma / pixel)``) around its nearest pixel, as the outer product of two 1-D profiles, for all
    peaks of a block at once, and accumulated with :func:`numpy.bincount`. Peaks are centred
    exactly on ``(x_nm, y_nm)``; parts of windows outside the image are dropped.

    Parameters
    ----------
    x_nm, y_nm : array_like
        Peak centres in nm from the image's top-left corner (x to the right, y down).
    weights : array_like
        Peak heights.
    shape : (int, int)
        Image shape ``(rows, cols)``.
    pixel_size_nm : float
        Pixel size in nm.
    sigma_nm : float
        Gaussian standard deviation in nm.
    truncate : float
        Window half-width in standard deviations.
    max_block_elements : int
        Peaks are processed in blocks of at most this many window pixels (memory bound).

    Returns
    -------
    numpy.ndarray
        ``float64`` image of the given shape.
    """
    x = np.asarray(x_nm, dtype=float).ravel()
    y = np.asarray(y_nm, dtype=float).ravel()
    if x.shape != y.shape:
        raise InputError(f"x_nm and y_nm have different lengths ({x.size}, {y.size})")
    w = np.broadcast_to(np.asarray(weights, dtype=float), x.shape).ravel()
    ny, nx = (int(v) for v in shape)
    if ny < 1 or nx < 1:
        raise InputError(f"image shape {shape} must be at least 1 x 1 pixels")
    if not (pixel_size_nm > 0 and sigma_nm > 0):
        raise InputError(f"pixel_size_nm={pixel_size_nm!r} and sigma_nm={sigma_nm!r} must be positive (nm)")
    h = int(np.ceil(truncate * sigma_nm / pixel_size_nm))
    k = np.arange(-h, h + 1)
    size = k.size
    out = np.zeros(ny * nx, dtype=float)
    # continuous pixel coordinates: pixel centre (col + 0.5) * p  <=>  u = x / p - 0.5
    u = x / pixel_size_nm - 0.5
    v = y / pixel_size_nm - 0.5
    inside = (u > -h - 1) & (u < nx + h) & (v > -h - 1) & (v < ny + h) & (w != 0)
    # sorted by row, each block of peaks touches only a band of rows: accumulate into that band
    order = np.argsort(v[inside], kind="stable")
    u, v, w = u[inside][order], v[inside][order], w[inside][order]
    step = max(1, int(max_block_elements // (size * size)))
    scale = pixel_size_nm / sigma_nm
    for start in range(0, u.size, step):  # blocks of many peaks each (memory bound), not one per peak
        ub, vb, wb = u[start : start + step], v[start : start + step], w[start : start + step]
        c0 = np.rint(ub).astype(np.int64)
        r0 = np.rint(vb).astype(np.int64)
        cols = c0[:, None] + k[None, :]
        rows = r0[:, None] + k[None, :]
        gx = np.exp(-0.5 * ((cols - ub[:, None]) * scale) ** 2) * ((cols >= 0) & (cols < nx))
        gy = np.exp(-0.5 * ((rows - vb[:, None]) * scale) ** 2) * ((rows >= 0) & (rows < ny))
        gy *= wb[:, None]
        values = gy[:, :, None] * gx[:, None, :]
        r_lo = max(0, int(r0.min()) - h)
        r_hi = min(ny - 1, int(r0.max()) + h)
        band = (np.clip(rows, r_lo, r_hi) - r_lo)[:, :, None] * nx + np.clip(cols, 0, nx - 1)[:, None, :]
        n_band = (r_hi - r_lo + 1) * nx
        out[r_lo * nx : r_lo * nx + n_band] += np.bincount(band.ravel(), weights=values.ravel(), minlength=n_band)
    return out.reshape(ny, nx)


def check_positive(name: str, value: float, example: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}={value!r} must be a number ({example})") from None
    if not (np.isfinite(v) and v > 0):
        raise InputError(f"{name}={value!r} must be positive and finite ({example})")
    return v


def image_shape_for_field(field_nm: tuple[float, float], pixel_size_nm: float) -> tuple[int, int]:
    """Image shape ``(rows, cols)`` that covers ``field_nm = (width, height)`` with square pixels."""
    nx = int(round(field_nm[0] / pixel_size_nm))
    ny = int(round(field_nm[1] / pixel_size_nm))
    if nx < 1 or ny < 1:
        raise InputError(
            f"a field of {field_nm[0]:.4g} x {field_nm[1]:.4g} nm at pixel_size_nm={pixel_size_nm} is less "
            f"than one pixel; use smaller pixels or a larger field"
        )
    return ny, nx


def simulate_haadf(
    atoms,
    *,
    pixel_size_nm: float,
    probe_fwhm_nm: float,
    z_exponent: float = 1.7,
    energy_keV: float = 200.0,
    detector_mrad: tuple[float, float] = (80.0, 200.0),
    field_nm: tuple[float, float] | None = None,
    tolerance_nm: float = 0.02,
) -> Simulation:
    """Fast incoherent HAADF image of a structure, with its projected columns as ground truth.

    Parameters
    ----------
    atoms : ase.Atoms
        Structure in Angstrom, beam along +z, labelled by :mod:`layerscope.crystal` (``phase``,
        ``layer``, ``site`` arrays); periodic in-plane axes are tiled to fill the field.
    pixel_size_nm : float
        Pixel size (scan step) in nm.
    probe_fwhm_nm : float
        FWHM (nm) of the effective Gaussian probe intensity. An aberration-corrected 200 kV,
        25 mrad probe has a diffraction-limited FWHM of ~0.05 nm; 0.07-0.10 nm reproduces the
        column width of exact multislice at a few nm thickness (``docs/validation.md``).
    z_exponent : float
        ``n`` in the column weight ``sum(Z**n)``; 1.7 is the classic HAADF value.
    energy_keV : float
        Beam energy in keV; with ``detector_mrad`` it sets only the absolute scale (the
        kinematic cross-sections, see the module docstring). Default 200 keV.
    detector_mrad : (float, float)
        Detector inner and outer semi-angles in mrad. Default (80, 200), a HAADF detector.
    field_nm : (float, float), optional
        Field of view ``(width, height)`` in nm; default the in-plane cell lengths. The image has
        ``round(width / pixel_size_nm)`` columns and ``round(height / pixel_size_nm)`` rows and
        covers exactly that many pixels.
    tolerance_nm : float
        In-plane distance (nm) within which atoms form one column (see ``project_columns``).

    Returns
    -------
    Simulation
        ``.image``: calibrated :class:`~layerscope.containers.Image` (float64) whose pixel values are
        the fraction of the incident beam reaching the detector; ``.columns``: the ground-truth
        table of the columns inside the image (positions exactly those of the peaks).

    Raises
    ------
    InputError
        For non-positive lengths, a bad detector, or a structure that cannot be projected.

    Notes
    -----
    Cost: one window of ``(2 * ceil(5 sigma / pixel) + 1)^2`` pixels per column; a 4096^2 image
    with ~10^5 columns takes a few seconds on one core (``docs/benchmarks.md``).

    References
    ----------
    P. D. Nellist and S. J. Pennycook, Adv. Imaging Electron Phys. 113, 147 (2000).
    """
    p = check_positive("pixel_size_nm", pixel_size_nm, "nm per pixel, e.g. 0.01")
    fwhm = check_positive("probe_fwhm_nm", probe_fwhm_nm, "nm, e.g. 0.08 for an aberration-corrected probe")
    n = check_positive("z_exponent", z_exponent, "about 1.7 for HAADF")
    inner, outer = _check_detector(detector_mrad)
    energy = check_positive("energy_keV", energy_keV, "beam energy in keV, e.g. 200")
    sigma = fwhm / FWHM_PER_SIGMA
    if field_nm is None:
        from layerscope.simulate.columns import field_of_view_nm

        field_nm = field_of_view_nm(atoms)
    shape = image_shape_for_field(field_nm, p)
    image_field = (shape[1] * p, shape[0] * p)
    margin = TRUNCATE_SIGMA * sigma + 2 * p
    table = projected_columns_with_margin(
        atoms, field_nm=image_field, margin_nm=margin, tolerance_nm=tolerance_nm, z_exponent=n
    )
    # sigma_0: the structure's total Z^n weight carries its total kinematic cross-section
    real = np.asarray(atoms.numbers) > 0  # ASE dummy atoms "X" (empty sites) scatter nothing
    symbols, counts = np.unique(np.asarray(atoms.get_chemical_symbols())[real], return_counts=True)
    from ase.data import atomic_numbers

    sigma_total = sum(
        c * kinematic_cross_section_A2(s, energy_keV=energy, detector_mrad=(inner, outer))
        for s, c in zip(symbols, counts)
    )
    zn_total = sum(c * atomic_numbers[s] ** n for s, c in zip(symbols, counts))
    sigma0 = sigma_total / zn_total  # A^2 per unit Z^n
    sigma_A = 10.0 * sigma
    peak = sigma0 * table["expected_intensity"].to_numpy() / (2.0 * np.pi * sigma_A**2)
    data = render_gaussians(
        table["x_nm"].to_numpy(), table["y_nm"].to_numpy(), peak, shape=shape, pixel_size_nm=p, sigma_nm=sigma
    )
    parameters = {
        "engine": "incoherent",
        "pixel_size_nm": p,
        "probe_fwhm_nm": fwhm,
        "z_exponent": n,
        "energy_keV": energy,
        "detector_mrad": [inner, outer],
        "field_nm": list(image_field),
        "tolerance_nm": tolerance_nm,
        "cross_section_A2_per_Zn": sigma0,
    }
    metadata = {
        "title": f"incoherent HAADF simulation of {atoms.info.get('composition') or atoms.get_chemical_formula()}",
        "simulated": True,
        "signal_type": "HAADF",
        "signal_units": "fraction of the incident beam on the detector",
        "beam_energy_keV": energy,
        "detector_inner_mrad": inner,
        "detector_outer_mrad": outer,
        "simulation": parameters,
    }
    image = Image.from_array(data, pixel_size_nm=p, metadata=metadata)
    columns = table[table["in_field"]].sort_values(["y_nm", "x_nm"], kind="stable").reset_index(drop=True)
    columns = columns[list(COLUMN_FIELDS)]
    columns.attrs.update({**table.attrs, "field_nm": list(image_field), "cross_section_A2_per_Zn": sigma0})
    return Simulation(image, columns, Provenance.create(inputs=[atoms], parameters=parameters), atoms)
