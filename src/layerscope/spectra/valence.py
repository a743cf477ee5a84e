"""Valence (oxidation state) maps of Co, Mn, Ni from reference spectra of known valence.

Two methods:

* :func:`valence_from_indicator` - **linear interpolation**: a scalar indicator measured per
  pixel (L3 peak energy, chemical shift, onset, L3/L2 ratio) is mapped to valence by the
  piecewise-linear curve through the references' ``(indicator, valence)`` points (Tan et al.
  2012 use the L3 energy and the L3/L2 ratio this way).
* :func:`valence_from_linear_combination` - **least-squares linear combination**: every spectrum
  is fitted as a non-negative combination of the reference spectra (each normalised to unit
  integral in the fit window, i.e. per atom when the window covers the whole edge); the valence
  is the fraction-weighted mean of the references' valences. The non-negative least squares is
  solved exactly and vectorised over all pixels by enumerating the active sets (small numbers of
  references), with a per-pixel uncertainty propagated from the residual.

References
----------
H. Tan, J. Verbeeck, A. Abakumov, G. Van Tendeloo, *Ultramicroscopy* 116 (2012) 24-33;
C. L. Lawson, R. J. Hanson, *Solving Least Squares Problems*, SIAM (1995), ch. 23 (NNLS).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from layerscope import linalg as robust_linalg
from layerscope.errors import InputError
from layerscope.spectra._arrays import (
    as_float,
    check_energy_axis,
    check_finite,
    map_spectra,
    window_slice,
)

__all__ = [
    "valence_from_indicator",
    "valence_from_linear_combination",
    "LinearCombination",
    "ValenceInterpolation",
]


@dataclass(frozen=True)
class ValenceInterpolation:
    """Result of :func:`valence_from_indicator`.

    Attributes
    ----------
    valence : array
        Valence per pixel (NaN outside the references' range unless ``extrapolate``).
    sigma : array
        Uncertainty propagated from ``indicator_sigma`` through the local slope (NaN when no
        indicator uncertainty was given).
    in_range : array of bool
        True where the indicator lies between the extreme references.
    """

    valence: Any
    sigma: Any
    in_range: Any


def valence_from_indicator(
    indicator: Any,
    reference_indicator: Any,
    reference_valence: Any,
    *,
    indicator_sigma: Any = None,
    extrapolate: bool = False,
) -> ValenceInterpolation:
    """Valence by linear interpolation of an indicator between references of known valence.

    Parameters
    ----------
    indicator : array
        Per-pixel indicator (e.g. L3 peak energy in eV, chemical shift in eV, L3/L2 ratio).
    reference_indicator : sequence of float
        The same indicator measured on each reference spectrum (at least 2, distinct).
    reference_valence : sequence of float
        Known valence of each reference.
    indicator_sigma : array or None
        Uncertainty of ``indicator`` (same units); propagated through the local slope.
    extrapolate : bool
        Extend the end segments linearly beyond the references instead of returning NaN.

    Returns
    -------
    ValenceInterpolation
    """
    x = np.asarray(reference_indicator, dtype=np.float64).ravel()
    v = np.asarray(reference_valence, dtype=np.float64).ravel()
    if x.size != v.size or x.size < 2:
        raise InputError(
            f"valence interpolation: need >= 2 references with one indicator and one valence "
            f"each; got {x.size} indicators and {v.size} valences."
        )
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(v))):
        raise InputError("valence interpolation: reference indicators/valences contain NaN.")
    order = np.argsort(x)
    x, v = x[order], v[order]
    if np.any(np.diff(x) <= 0):
        raise InputError(
            "valence interpolation: two references have the same indicator value; the mapping "
            "to valence is undefined - remove one or use the linear-combination method."
        )
    ind = np.asarray(indicator, dtype=np.float64)
    seg = np.clip(np.searchsorted(x, ind) - 1, 0, x.size - 2)
    slope = (v[seg + 1] - v[seg]) / (x[seg + 1] - x[seg])
    val = v[seg] + slope * (ind - x[seg])
    in_range = (ind >= x[0]) & (ind <= x[-1])
    if not extrapolate:
        val = np.where(in_range, val, np.nan)
    sig = (
        np.abs(slope) * np.asarray(indicator_sigma, dtype=np.float64)
        if indicator_sigma is not None
        else np.full(np.shape(ind), np.nan)
    )
    return ValenceInterpolation(valence=val, sigma=sig, in_range=in_range)


@dataclass(frozen=True)
class LinearCombination:
    """Result of :func:`valence_from_linear_combination` (arrays have the pixel shape).

    Attributes
    ----------
    valence : array
        Fraction-weighted mean valence.
    sigma : array
        One-sigma statistical uncertainty of the valence (residual-based).
    fractions : array (..., n_ref)
        Non-negative fractions of each reference (sum 1).
    weights : array (..., n_ref)
        Non-negative weights (intensity scale of each normalised reference).
    residual_rms : array
        Root-mean-square residual of the fit per pixel.
    """

    valence: Any
    sigma: Any
    fractions: Any
    weights: Any
    residual_rms: Any


def _nnls_block(
    block: np.ndarray, *, sl: slice, basis: np.ndarray, valences: np.ndarray, subsets: list
) -> np.ndarray:
    y = np.asarray(block[..., sl], dtype=np.float64)
    shape = y.shape[:-1]
    y = y.reshape(-1, y.shape[-1])
    P, W = y.shape
    R = basis.shape[1]
    best_w = np.zeros((P, R))
    best_cost = np.full(P, np.inf)
    yy = (y**2).sum(axis=1)
    for sub in subsets:
        A = basis[:, sub]  # (W, k)
        pinv = robust_linalg.pinv(A)
        w = y @ pinv.T  # (P, k)
        feasible = np.all(w >= 0, axis=1)
        fit = w @ A.T
        cost = yy - 2 * (fit * y).sum(axis=1) + (fit**2).sum(axis=1)
        better = feasible & (cost < best_cost - 1e-12 * np.maximum(yy, 1e-300))
        if np.any(better):
            full = np.zeros((int(better.sum()), R))
            full[:, sub] = w[better]
            best_w[better] = full
            best_cost[better] = cost[better]
    best_cost = np.where(np.isfinite(best_cost), best_cost, yy)
    total = best_w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = best_w / total[:, None]
        val = frac @ valences
        # uncertainty: covariance of the unconstrained weights s^2 (A^T A)^-1, propagated
        s2 = np.maximum(best_cost, 0) / max(W - R, 1)
        cov = robust_linalg.pinv(basis.T @ basis)  # (R, R)
        # d val / d w_i = (v_i - val) / total
        g = (valences[None, :] - val[:, None]) / total[:, None]
        var = s2 * np.einsum("pi,ij,pj->p", g, cov, g)
        sig = np.sqrt(np.maximum(var, 0))
        rms = np.sqrt(np.maximum(best_cost, 0) / W)
    val = np.where(total > 0, val, np.nan)
    out = np.concatenate([val[:, None], sig[:, None], rms[:, None], frac, best_w], axis=1)
    return out.reshape(shape + (3 + 2 * R,))


def valence_from_linear_combination(
    signal: Any,
    energy_eV: Any,
    references: Any,
    reference_valence: Any,
    *,
    window_eV: tuple[float, float],
    reference_energy_eV: Any = None,
) -> LinearCombination:
    """Valence from a non-negative least-squares combination of reference spectra.

    Parameters
    ----------
    signal : array (..., E)
        Background-subtracted spectra, energy last (NumPy or Dask).
    energy_eV : array (E,)
        Uniform energy axis of ``signal`` (eV).
    references : array (n_ref, E_ref)
        Background-subtracted reference spectra (>= 2), on ``reference_energy_eV`` (or on
        ``energy_eV`` when that is None). They are interpolated onto ``energy_eV`` and
        normalised to unit sum over ``window_eV``.
    reference_valence : sequence of float
        Valence of each reference.
    window_eV : (float, float)
        Fit window (the edge, including enough post-edge to normalise per atom).
    reference_energy_eV : array (E_ref,) or None
        Energy axis of the references (eV).

    Returns
    -------
    LinearCombination
    """
    signal = as_float(signal, name="signal")
    e = np.asarray(energy_eV, dtype=np.float64)
    check_energy_axis(e, signal.shape[-1])
    check_finite(signal, name="signal")
    refs = np.atleast_2d(np.asarray(references, dtype=np.float64))
    vals = np.asarray(reference_valence, dtype=np.float64).ravel()
    if refs.shape[0] < 2 or refs.shape[0] != vals.size:
        raise InputError(
            f"linear combination: need >= 2 reference spectra with one valence each; got "
            f"{refs.shape[0]} spectra and {vals.size} valences."
        )
    if refs.shape[0] > 8:
        raise InputError("linear combination: at most 8 references are supported; merge similar ones.")
    re = e if reference_energy_eV is None else np.asarray(reference_energy_eV, dtype=np.float64)
    check_energy_axis(re, refs.shape[1], name="reference_energy_eV")
    check_finite(refs, name="references")
    sl = window_slice(e, window_eV, what="linear-combination window", min_channels=len(vals) + 2)
    ew = e[sl]
    if re[0] > ew[0] + 1e-9 or re[-1] < ew[-1] - 1e-9:
        raise InputError(
            f"linear combination: the references cover {re[0]:.1f}-{re[-1]:.1f} eV but the window "
            f"is {ew[0]:.1f}-{ew[-1]:.1f} eV; narrow the window or use references with a wider range."
        )
    basis = np.stack([np.interp(ew, re, r) for r in refs], axis=1)  # (W, R)
    norms = basis.sum(axis=0)
    if np.any(norms <= 0):
        raise InputError(
            "linear combination: a reference has zero or negative total intensity in the window; "
            "subtract its background correctly or choose the window over its edge."
        )
    basis = basis / norms
    if np.linalg.matrix_rank(basis) < basis.shape[1]:
        raise InputError(
            "linear combination: the references are linearly dependent in the window (two are "
            "identical up to a scale); remove one."
        )
    R = basis.shape[1]
    subsets = [list(c) for k in range(1, R + 1) for c in itertools.combinations(range(R), k)]
    out = map_spectra(
        _nnls_block, signal, out_channels=3 + 2 * R, dtype=np.float64, name="signal",
        sl=sl, basis=basis, valences=vals, subsets=subsets,
    )
    return LinearCombination(
        valence=out[..., 0],
        sigma=out[..., 1],
        residual_rms=out[..., 2],
        fractions=out[..., 3 : 3 + R],
        weights=out[..., 3 + R :],
    )
