"""X-ray absorption near-edge analysis: normalisation, edge energies, white line and valence.

* Normalisation (as in Athena/Larch ``pre_edge``): E0 is the maximum of the derivative of a lightly
  smoothed ``mu`` (refined by a parabola through the three points around it); a straight line fitted
  over ``pre_edge_eV`` (relative to E0) is subtracted, and the result divided by the edge step, the
  value at E0 of a polynomial fitted over ``post_edge_eV``. When the spectrum ends too soon after the
  edge for a post-edge fit (XANES cut at the white line), the step is taken as the white-line
  height instead and the spectrum is FLAGGED (``no_post_edge``): edge energies stay comparable
  between such spectra, absolute heights do not.
* Edge energy: where the normalised spectrum first crosses half the step (linear interpolation),
  and E0 (derivative maximum). White line: the maximum of the normalised spectrum within 30 eV above
  E0 (parabola through the top three points) and its height.
* Valence from references of known valence (``--reference NAME=VALENCE``): by edge shift (a straight
  line through the reference edge energies against valence) and by a non-negative linear combination
  of the normalised reference spectra (``scipy.optimize.nnls``) whose weights give the mean valence.

Energies in eV. Uncertainties: the half-step energy from the noise of ``mu`` (residual of a
Savitzky-Golay smooth) divided by the slope at the crossing; E0 from 48 noisy copies (the same noise
level added, fixed seed); the linear-combination valence from the covariance of the least-squares
weights scaled by the residual variance. These are statistical only: they do not include the energy
calibration of the beamline (typically 0.1-0.3 eV between beam times).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
from scipy.optimize import nnls
from scipy.signal import savgol_filter

from layerscope.bulk._common import flag
from layerscope.bulk.xas_readers import XASSpectrum
from layerscope.errors import InputError

if TYPE_CHECKING:
    from layerscope.bulk.xas_outputs import XASResult

__all__ = ["XASOptions", "EdgeResult", "normalise", "edge_features", "valence_by_shift", "valence_by_lcf",
           "analyse_xas"]


@dataclass(frozen=True)
class XASOptions:
    """Settings of the XANES analysis.

    Attributes
    ----------
    pre_edge_eV : (float, float)
        Pre-edge fit range relative to E0, eV (default -150 to -30; shortened to what the data has, flagged).
    post_edge_eV : (float, float)
        Post-edge fit range relative to E0, eV (default +50 to +400, cut at the end of the data).
    post_edge_order : int
        Polynomial order of the post-edge fit (Athena's default 2).
    references : tuple of (str, float)
        Spectrum names (or file names) of references with their known valence.
    lcf_window_eV : (float, float)
        Energy window of the linear combination fit relative to the mean E0, eV.
    min_post_edge_eV : float
        Shortest post-edge range accepted for a step normalisation, eV.
    """

    pre_edge_eV: tuple[float, float] = (-150.0, -30.0)
    post_edge_eV: tuple[float, float] = (50.0, 400.0)
    post_edge_order: int = 2
    references: tuple[tuple[str, float], ...] = ()
    lcf_window_eV: tuple[float, float] = (-20.0, 40.0)
    min_post_edge_eV: float = 30.0


@dataclass
class EdgeResult:
    """Normalisation and edge features of one spectrum (energies in eV)."""

    spectrum: XASSpectrum
    norm: np.ndarray
    derivative: np.ndarray
    e0_eV: float
    edge_energy_eV: float
    edge_energy_err_eV: float
    e0_err_eV: float
    white_line_eV: float
    white_line_height: float
    edge_step: float
    normalisation: str
    flags: list[dict[str, Any]] = field(default_factory=list)


def _smooth(mu: np.ndarray) -> np.ndarray:
    return savgol_filter(mu, 7, 3, mode="interp") if mu.size >= 15 else mu


def _noise(mu: np.ndarray) -> float:
    return float(np.std(mu - _smooth(mu)) * np.sqrt(7.0 / 4.0))


def _vertex(x: np.ndarray, y: np.ndarray, i: int) -> float:
    """Position of a parabola's vertex through points i-1, i, i+1 (x itself at the ends)."""
    if i <= 0 or i >= x.size - 1:
        return float(x[i])
    c = np.polyfit(x[i - 1:i + 2] - x[i], y[i - 1:i + 2], 2)
    return float(x[i] - c[1] / (2 * c[0])) if c[0] < 0 else float(x[i])


def find_e0(energy_eV: np.ndarray, mu: np.ndarray) -> tuple[float, np.ndarray]:
    """E0 (eV) at the maximum of d(mu)/dE of the smoothed spectrum, and that derivative."""
    d = np.gradient(_smooth(mu), energy_eV)
    i = int(np.argmax(d))
    return _vertex(energy_eV, d, i), d


def _e0_error(energy_eV: np.ndarray, mu: np.ndarray, n: int = 48) -> float:
    """Standard deviation of E0 (eV) over ``n`` copies of ``mu`` with its own noise level added (fixed seed)."""
    rng = np.random.default_rng(0)
    sigma = _noise(mu)
    if sigma <= 0:
        return 0.0
    return float(np.std([find_e0(energy_eV, mu + rng.normal(0.0, sigma, mu.size))[0] for _ in range(n)]))


def _fit_range(e: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (e >= lo) & (e <= hi)


def normalise(spec: XASSpectrum, options: XASOptions = XASOptions()) -> tuple[np.ndarray, dict[str, Any]]:
    """Normalised absorption (pre-edge 0, step 1) and the normalisation record.

    Returns
    -------
    norm : ndarray
    info : dict
        ``e0_eV``, ``edge_step``, ``normalisation`` (``"step"`` or ``"white-line"``), ``flags``, ``derivative``.
    """
    e, mu = spec.energy_eV, spec.mu
    e0, deriv = find_e0(e, mu)
    if not np.ptp(mu) > 5.0 * _noise(mu):  # nothing rises above the noise: no edge to place E0 on
        raise InputError(f"{spec.source}: spectrum {spec.name!r} has no absorption edge (range {np.ptp(mu):.3g} "
                         f"against noise {_noise(mu):.3g}); is this an X-ray absorption spectrum?")
    flags = []
    pre = _fit_range(e, e0 + options.pre_edge_eV[0], e0 + options.pre_edge_eV[1])
    if pre.sum() < 5:
        pre = e <= e0 - 8.0
        flags.append(flag("short_pre_edge", f"only {e0 - e[0]:.0f} eV below E0: pre-edge line fitted from the start "
                          "to E0-8 eV", spectrum=spec.name))
        if pre.sum() < 3:
            raise InputError(f"{spec.source}: spectrum {spec.name!r} starts {e0 - e[0]:.1f} eV below the edge; "
                             "at least 10 eV of pre-edge is needed (is this an absorption edge?).")
    pre_line = np.polyfit(e[pre], mu[pre], 1 if pre.sum() >= 5 else 0)
    sub = mu - np.polyval(pre_line, e)
    post = _fit_range(e, e0 + options.post_edge_eV[0], e0 + options.post_edge_eV[1])
    if e[-1] - e0 >= options.post_edge_eV[0] + options.min_post_edge_eV and post.sum() >= 5:
        order = min(options.post_edge_order, int(post.sum()) - 2)
        step = float(np.polyval(np.polyfit(e[post], sub[post], order), e0))
        how = "step"
    else:
        step = float(np.max(sub[e >= e0])) if np.any(e >= e0) else float("nan")
        how = "white-line"
        flags.append(flag("no_post_edge", f"the spectrum ends {e[-1] - e0:.0f} eV above E0 (a step normalisation "
                          f"needs {options.post_edge_eV[0] + options.min_post_edge_eV:.0f} eV): normalised to the "
                          "white-line height; edge energies are comparable only between spectra normalised alike",
                          spectrum=spec.name))
    if not step > 0 or step < 5.0 * _noise(mu):
        raise InputError(f"{spec.source}: spectrum {spec.name!r} has no absorption edge (step {step:.3g} against "
                         f"noise {_noise(mu):.3g}); is this an X-ray absorption spectrum?")
    return sub / step, {"e0_eV": e0, "edge_step": step, "normalisation": how, "flags": flags,
                        "derivative": deriv / step}


def edge_features(spec: XASSpectrum, options: XASOptions = XASOptions()) -> EdgeResult:
    """Normalise ``spec`` and measure E0, the half-step edge energy and the white line (eV)."""
    norm, info = normalise(spec, options)
    e, e0 = spec.energy_eV, info["e0_eV"]
    sigma = _noise(spec.mu) / info["edge_step"]
    slope_e0 = float(np.interp(e0, e, info["derivative"]))
    e0_err = _e0_error(e, spec.mu)
    wl_zone = (e >= e0) & (e <= e0 + 30.0)
    iw = int(np.flatnonzero(wl_zone)[np.argmax(norm[wl_zone])])
    wl_e = _vertex(e, norm, iw)
    wl_h = float(np.interp(wl_e, e, _smooth(norm)))
    rising = np.flatnonzero((norm[:-1] < 0.5) & (norm[1:] >= 0.5) & (e[1:] <= wl_e + 1e-9))
    flags = list(info["flags"])
    if rising.size == 0:
        raise InputError(f"{spec.source}: spectrum {spec.name!r} never crosses half its edge step before the white "
                         "line; check the energy range (--pre-edge-ev, --post-edge-ev).")
    k = int(rising[-1])
    half = float(e[k] + (0.5 - norm[k]) * (e[k + 1] - e[k]) / (norm[k + 1] - norm[k]))
    slope_half = (norm[k + 1] - norm[k]) / (e[k + 1] - e[k])
    half_err = float(sigma / max(slope_half, 1e-12))
    if slope_e0 <= 0:
        flags.append(flag("flat_edge", "the derivative at E0 is not positive", spectrum=spec.name))
    return EdgeResult(spec, norm, info["derivative"], e0, half, half_err, e0_err, wl_e, wl_h,
                      info["edge_step"], info["normalisation"], flags)


def valence_by_shift(edge_eV: float, edge_err_eV: float, ref_edges_eV: Sequence[float],
                     ref_valences: Sequence[float], ref_errs_eV: Sequence[float]) -> tuple[float, float]:
    """Valence from a straight line of reference edge energy (eV) against valence.

    The uncertainty combines the sample's edge uncertainty and the line's (from the reference
    edge uncertainties, or from the residuals with three or more references), to first order.
    """
    v = np.asarray(ref_valences, float)
    e = np.asarray(ref_edges_eV, float)
    if np.unique(v).size < 2:
        raise InputError("valence by edge shift needs references of at least two different valences; give "
                         "--reference NAME=VALENCE for each.")
    w = 1.0 / np.maximum(np.asarray(ref_errs_eV, float), 1e-3) ** 2
    coef, cov = np.polyfit(v, e, 1, w=np.sqrt(w), cov="unscaled")
    if v.size >= 3:
        _, cov_s = np.polyfit(v, e, 1, w=np.sqrt(w), cov=True)
        cov = np.maximum(cov, cov_s) if np.all(np.isfinite(cov_s)) else cov
    a, b = coef
    if abs(a) < 1e-6:
        raise InputError("the reference edges do not move with valence; check the references (--reference).")
    val = (edge_eV - b) / a
    grad = np.array([-(edge_eV - b) / a**2, -1.0 / a])
    var = (edge_err_eV / a) ** 2 + float(grad @ cov @ grad)
    return float(val), float(np.sqrt(var))


def valence_by_lcf(norm: np.ndarray, refs: np.ndarray, ref_valences: Sequence[float]) -> dict[str, Any]:
    """Non-negative linear combination of reference spectra and the mean valence.

    Parameters
    ----------
    norm : ndarray, shape (n,)
        The normalised spectrum on the fit grid.
    refs : ndarray, shape (n, k)
        The normalised references on the same grid.
    ref_valences : sequence of float

    Returns
    -------
    dict
        ``weights``, ``fractions`` (weights / their sum), ``weight_sum``, ``valence``, ``valence_err``,
        ``r_factor`` (sum of squared residuals / sum of squared data).
    """
    v = np.asarray(ref_valences, float)
    w, _ = nnls(refs, norm)
    resid = norm - refs @ w
    dof = max(norm.size - int(np.count_nonzero(w)), 1)
    s2 = float(resid @ resid / dof)
    active = w > 0
    cov = np.zeros((v.size, v.size))
    if active.any():
        a = refs[:, active]
        cov[np.ix_(active, active)] = s2 * np.linalg.pinv(a.T @ a)
    total = float(w.sum())
    if total <= 0:
        return {"weights": w.tolist(), "fractions": [np.nan] * v.size, "weight_sum": 0.0, "valence": np.nan,
                "valence_err": np.nan, "r_factor": 1.0}
    val = float(w @ v / total)
    grad = (v - val) / total
    err = float(np.sqrt(max(grad @ cov @ grad, 0.0)))
    return {"weights": w.tolist(), "fractions": (w / total).tolist(), "weight_sum": total, "valence": val,
            "valence_err": err, "r_factor": float(resid @ resid / (norm @ norm))}


def _find_reference(edges: Sequence[EdgeResult], name: str) -> int:
    for k, r in enumerate(edges):
        src = r.spectrum.source
        if r.spectrum.name == name or (src is not None and (src.name == name or str(src) == name)):
            return k
    known = ", ".join(r.spectrum.name for r in edges[:8])
    raise InputError(f"--reference {name}: no such spectrum (spectra: {known}); name a spectrum or input file.")


def _valences(edges: list[EdgeResult], options: XASOptions) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-spectrum valence by edge shift and by linear combination (empty without references)."""
    if not options.references:
        return [{} for _ in edges], []
    idx = [_find_reference(edges, n) for n, _ in options.references]
    vals = [v for _, v in options.references]
    flags = []
    lo_e = max(r.spectrum.energy_eV[0] for r in edges)
    hi_e = min(r.spectrum.energy_eV[-1] for r in edges)
    e0 = float(np.mean([r.e0_eV for r in edges]))
    grid = edges[idx[0]].spectrum.energy_eV
    grid = grid[(grid >= max(lo_e, e0 + options.lcf_window_eV[0])) & (grid <= min(hi_e, e0 + options.lcf_window_eV[1]))]
    if grid.size < 10:
        raise InputError("the spectra overlap in fewer than 10 points inside the fit window; give spectra on a common "
                         "energy range.")
    refs = np.column_stack([np.interp(grid, edges[i].spectrum.energy_eV, edges[i].norm) for i in idx])
    out = []
    for r in edges:
        res: dict[str, Any] = {}
        if np.unique(vals).size >= 2:
            res["valence_shift"], res["valence_shift_err"] = valence_by_shift(
                r.edge_energy_eV, r.edge_energy_err_eV, [edges[i].edge_energy_eV for i in idx], vals,
                [edges[i].edge_energy_err_eV for i in idx])
            if not min(vals) - 0.05 <= res["valence_shift"] <= max(vals) + 0.05:
                flags.append(flag("extrapolated_valence", f"edge-shift valence {res['valence_shift']:.2f} lies outside "
                                  f"the references' {min(vals):g}-{max(vals):g}", spectrum=r.spectrum.name))
        lcf = valence_by_lcf(np.interp(grid, r.spectrum.energy_eV, r.norm), refs, vals)
        res.update(valence_lcf=lcf["valence"], valence_lcf_err=lcf["valence_err"], lcf_r_factor=lcf["r_factor"],
                   lcf_weight_sum=lcf["weight_sum"])
        if abs(lcf["weight_sum"] - 1.0) > 0.1:
            flags.append(flag("lcf_weight_sum", f"linear-combination weights sum to {lcf['weight_sum']:.2f} (not 1): "
                              "the references may not span the sample", spectrum=r.spectrum.name))
        out.append(res)
    return out, flags


def analyse_xas(spectra: Sequence[XASSpectrum], options: XASOptions = XASOptions()) -> XASResult:
    """Edges, white lines and (with references) valences of ``spectra``; no file I/O."""
    from layerscope.bulk.xas_outputs import XASResult

    if not spectra:
        raise InputError("no spectra to analyse; give at least one absorption file.")
    edges = [edge_features(s, options) for s in spectra]
    valences, vflags = _valences(edges, options)
    flags = [f for r in edges for f in r.flags] + vflags
    return XASResult(edges, valences, options, flags)


def parse_references(items: Sequence[str] | None) -> tuple[tuple[str, float], ...]:
    """``NAME=VALENCE`` strings (the ``--reference`` option) to pairs."""
    out = []
    for item in items or ():
        name, sep, value = item.rpartition("=")
        try:
            out.append((name.strip(), float(value)))
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise InputError(f"--reference {item!r}: give NAME=VALENCE, e.g. --reference NiO.dat=2.")
    return tuple(out)


def references_mapping(pairs: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    """A ``{name: valence}`` mapping as :attr:`XASOptions.references`."""
    return tuple((str(k), float(v)) for k, v in pairs.items())
