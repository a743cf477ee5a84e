"""Electrochemical impedance: equivalent-circuit fits, Kramers-Kronig check and distribution of relaxation times.

* Equivalent circuits are impedance.py's (``R0-p(R1,CPE1)-p(R2,CPE2)-W`` by default; any circuit
  string impedance.py accepts through ``--circuit``). Starting values come from the spectrum (series
  resistance from the high-frequency end, the arc resistances from the real-axis span, time
  constants spread over the measured decades, in both orders); impedance.py's circuit function is
  fitted by least squares (``scipy.optimize.least_squares`` on the logarithms of the positive
  parameters, with an evaluation budget) from each guess and the lowest residual is kept: the same
  minimum as impedance.py's own ``curve_fit`` where that converges. Parameter uncertainties are the
  standard errors from the fit's covariance (as ``curve_fit``, transformed from the logarithms).
* Relative residual: ``sqrt(sum |Z - Z_fit|^2 / sum |Z|^2)``; a fit above ``max_residual`` is flagged.
* Kramers-Kronig: impedance.py's ``linKK`` (Schönleber et al., Electrochim. Acta 131 (2014) 20);
  residuals in % of |Z|, flagged above ``kk_limit_pct``.
* DRT (``--drt``): ``Z = R_inf + sum_k g_k / (1 + j w tau_k)`` on a log grid of tau, solved as a
  Tikhonov-regularised non-negative least squares (real and imaginary parts together).

Frequencies in Hz, impedances and resistances in Ohm, capacitances in F, time constants in s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from scipy.optimize import nnls

from layerscope.bulk._common import flag
from layerscope.bulk.eis_readers import Impedance
from layerscope.errors import ConvergenceError, InputError

if TYPE_CHECKING:
    from layerscope.bulk.eis_outputs import EISResult

__all__ = ["EISOptions", "CircuitFit", "initial_guess", "fit_circuit", "kk_check", "drt", "analyse_eis",
           "high_frequency_intercept_Ohm"]

DEFAULT_CIRCUIT = "R0-p(R1,CPE1)-p(R2,CPE2)-W1"


@dataclass(frozen=True)
class EISOptions:
    """Settings of the impedance analysis.

    Attributes
    ----------
    circuit : str
        impedance.py circuit string.
    initial_guess : tuple of float or None
        Starting values (all parameters, in impedance.py's order); derived from the data when None.
    drop_inductive : bool
        Drop points with Im Z > 0 (inductive cable/lead artefacts) before fitting, unless the circuit has an L.
    weight_by_modulus : bool
        Weight the fit by 1/|Z| (impedance.py's option) instead of unweighted.
    drt : bool
        Also compute the distribution of relaxation times.
    drt_lambda : float
        Tikhonov regularisation of the DRT (relative to the normalised data).
    max_residual : float
        Relative residual above which the fit is flagged.
    kk_limit_pct : float
        Largest Kramers-Kronig residual (% of |Z|) accepted without a flag.
    """

    circuit: str = DEFAULT_CIRCUIT
    initial_guess: tuple[float, ...] | None = None
    drop_inductive: bool = True
    weight_by_modulus: bool = False
    drt: bool = False
    drt_lambda: float = 1e-3
    max_residual: float = 0.05
    kk_limit_pct: float = 2.0


@dataclass
class CircuitFit:
    """An equivalent-circuit fit: parameter names, values, standard errors and units."""

    circuit: str
    names: list[str]
    units: list[str]
    values: np.ndarray
    errors: np.ndarray
    relative_residual: float
    z_fit_Ohm: np.ndarray
    converged: bool = True
    degenerate: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for n, v, e in zip(self.names, self.values, self.errors):
            out[n] = float(v)
            out[f"{n}_err"] = float(e)
        return out


def high_frequency_intercept_Ohm(spec: Impedance) -> float:
    """Re Z where the spectrum crosses the real axis nearest the high-frequency end (Ohm).

    Without a crossing, Re Z at the highest frequency.
    """
    z = spec.z_Ohm  # sorted by falling frequency
    s = np.sign(z.imag)
    cross = np.flatnonzero((s[:-1] > 0) & (s[1:] <= 0))
    if cross.size:
        k = int(cross[0])
        t = z.imag[k] / (z.imag[k] - z.imag[k + 1])
        return float(z.real[k] + t * (z.real[k + 1] - z.real[k]))
    return float(z.real[0])


def _element_names(circuit: str) -> list[str]:
    names = circuit.replace("p(", "(").replace("(", "").replace(")", "")
    return [n for n in re.split(r"[-,\s]+", names) if n]


def initial_guess(circuit: str, f_Hz: np.ndarray, z_Ohm: np.ndarray, spread: float = 1.0) -> list[float]:
    """Starting values for ``circuit`` from the spectrum (see the module notes).

    ``spread`` scales the decades over which the time constants are placed (1: the measured range).
    """
    r_inf = max(float(np.min(z_Ohm.real)), 1e-9 * float(np.max(np.abs(z_Ohm))))
    span = max(float(np.max(z_Ohm.real)) - r_inf, float(np.max(-z_Ohm.imag)), 1e-3 * float(np.max(np.abs(z_Ohm))))
    names = _element_names(circuit)
    n_arcs = max(sum(1 for n in names[1:] if re.match(r"(R|Wo|Ws|G|K|Zarc)\d*$", n)), 1)
    lo, hi = np.log10(f_Hz.min()), np.log10(f_Hz.max())
    mid = 0.5 * (lo + hi)
    fr = 10 ** (mid + spread * (np.linspace(hi, lo, n_arcs + 2)[1:-1] - mid))
    guess: list[float] = []
    arc = 0
    for k, name in enumerate(names):
        kind = re.match(r"[A-Za-z]+", name).group(0)
        f_arc = fr[min(arc, n_arcs - 1)]
        r_arc = span / n_arcs
        if kind == "R":
            if k == 0:
                guess.append(r_inf)
            else:
                guess.append(r_arc)
        elif kind in ("C", "CPE"):
            guess.extend([1.0 / (2 * np.pi * f_arc * r_arc)] + ([0.85] if kind == "CPE" else []))
            arc += 1
        elif kind == "W":
            i_low = int(np.argmin(f_Hz))  # half of the low-frequency |Z| from the Warburg, |Z_W| = A sqrt(2 / w)
            guess.append(0.5 * abs(z_Ohm[i_low]) * np.sqrt(np.pi * f_Hz[i_low]))
        elif kind in ("Wo", "Ws", "G", "K"):
            guess.extend([r_arc, 1.0 / (2 * np.pi * f_Hz.min() * 3)])
        elif kind in ("Zarc", "Gs"):
            guess.extend([r_arc, 1.0 / (2 * np.pi * f_arc), 0.9])
            arc += 1
        elif kind == "L":
            guess.append(max(float(np.max(z_Ohm.imag)), 1e-9) / (2 * np.pi * f_Hz.max()))
        elif kind == "La":
            guess.extend([1e-7, 0.9])
        else:
            raise InputError(f"--circuit {circuit}: no automatic starting values for element {name}; give "
                             "--initial-guess with all parameters.")
    return guess


def _fit_once(circuit: str, guess: Sequence[float], f: np.ndarray, z: np.ndarray, weighted: bool,
              max_nfev: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, bool]:
    """One bounded least-squares fit of impedance.py's circuit function (what its ``CustomCircuit.fit`` does
    through ``curve_fit``), with an evaluation budget; returns values, standard errors, Z_fit, residual, converged."""
    from impedance.models.circuits.fitting import set_default_bounds, wrapCircuit
    from scipy.optimize import least_squares

    from layerscope.linalg import pinv

    model = wrapCircuit(circuit, {})
    lo, hi = (np.asarray(b, float) for b in set_default_bounds(circuit))
    if np.any(lo != 0):
        raise InputError(f"--circuit {circuit}: has parameters that may be negative; give --initial-guess and a "
                         "circuit of positive elements.")
    # positive parameters fitted as logarithms: steps are relative, so Ohm-sized and F-sized values
    # move alike and none is pushed onto the zero bound; the covariance is transformed back exactly
    u0 = np.log(np.clip(np.asarray(guess, float), 1e-300, np.where(np.isfinite(hi), hi * (1 - 1e-6), np.inf)))
    # no parameter may overflow to inf: impedance.py evaluates the circuit from a string, where 'inf' is a NameError
    u_hi = np.where(np.isfinite(hi), np.log(np.where(np.isfinite(hi), hi, 1.0)), np.log(np.finfo(float).max) - 1.0)
    data = np.concatenate([z.real, z.imag])
    sigma = np.concatenate([np.abs(z), np.abs(z)]) if weighted else np.ones(data.size)
    res = least_squares(lambda u: (model(f, *np.exp(u)) - data) / sigma, u0, bounds=(-np.inf, u_hi), method="trf",
                        max_nfev=max_nfev, xtol=1e-10, ftol=1e-12)
    values = np.exp(res.x)
    dof = max(data.size - res.x.size, 1)
    cov_u = pinv(res.jac.T @ res.jac) * (2.0 * res.cost / dof)
    errs = values * np.sqrt(np.clip(np.diag(cov_u), 0.0, None))
    zf = model(f, *values)
    zf = zf[:f.size] + 1j * zf[f.size:]
    rel = float(np.sqrt(np.sum(np.abs(z - zf) ** 2) / np.sum(np.abs(z) ** 2)))
    return values, errs, zf, rel, bool(res.status > 0)


def _best_of(circuit: str, starts: Sequence[Sequence[float]], f_Hz: np.ndarray, z_Ohm: np.ndarray, weighted: bool,
             budget: int) -> tuple[tuple | None, np.ndarray | None]:
    """The lowest-residual fit over ``starts`` (ties keep the earlier start) and the start it came from."""
    best, start = None, None
    for guess in starts:
        try:
            out = _fit_once(circuit, guess, f_Hz, z_Ohm, weighted, budget)
        except (RuntimeError, ValueError, np.linalg.LinAlgError):
            continue
        if best is None or out[3] < best[3] * (1 - 1e-6):
            best, start = out, np.asarray(guess, float)
    return best, start


def fit_circuit(f_Hz: np.ndarray, z_Ohm: np.ndarray, options: EISOptions = EISOptions()) -> CircuitFit:
    """Fit ``options.circuit`` to the spectrum; several starts unless ``initial_guess`` is given."""
    from impedance.models.circuits import CustomCircuit

    try:
        if options.circuit.count("(") != options.circuit.count(")"):
            raise ValueError("unbalanced parentheses")
        from impedance.models.circuits.fitting import calculateCircuitLength

        n_params = calculateCircuitLength(options.circuit)
        names, units = CustomCircuit(circuit=options.circuit, initial_guess=[1.0] * n_params).get_param_names()
    except Exception as exc:
        raise InputError(f"--circuit {options.circuit!r}: not a valid impedance.py circuit ({exc}); e.g. "
                         f"--circuit {DEFAULT_CIRCUIT}.") from exc
    if options.initial_guess is not None:
        if len(options.initial_guess) != len(names):
            raise InputError(f"--initial-guess has {len(options.initial_guess)} values but {options.circuit} has "
                             f"{len(names)} parameters ({', '.join(names)}).")
        starts = [list(options.initial_guess)]
    else:
        starts = [initial_guess(options.circuit, f_Hz, z_Ohm, s) for s in (1.0, 0.5, -0.5, -1.0)]
    budget = 150 * (len(names) + 1)
    best, start = _best_of(options.circuit, starts, f_Hz, z_Ohm, options.weight_by_modulus, budget)
    if (best is None or best[3] > options.max_residual) and options.initial_guess is None \
            and not options.weight_by_modulus:
        # a poor unweighted fit is often trapped by the few large low-frequency points: start again from
        # the 1/|Z|-weighted solutions, then polish unweighted; kept only if the residual is lower
        weighted = []
        for guess in starts[::3]:
            try:
                weighted.append(_fit_once(options.circuit, guess, f_Hz, z_Ohm, True, budget)[0])
            except (RuntimeError, ValueError, np.linalg.LinAlgError):
                continue
        polished, pstart = _best_of(options.circuit, weighted, f_Hz, z_Ohm, False, budget)
        if polished is not None and (best is None or polished[3] < best[3]):
            best, start = polished, pstart
    if best is None:
        raise ConvergenceError(f"the fit of {options.circuit} failed from every start; give --initial-guess "
                               "or a simpler --circuit.")
    values, errs, zf, rel, converged = best
    ratio = values / np.maximum(start, 1e-300)
    degenerate = [n for n, r in zip(names, ratio) if not 1e-8 < r < 1e8]
    return CircuitFit(options.circuit, list(names), list(units), values, errs, rel, zf, converged, degenerate)


def _eval_kk(elements: np.ndarray, ts: np.ndarray, f_Hz: np.ndarray) -> np.ndarray:
    """The linKK model: R_ohm + sum R_k / (1 + j w tau_k) + j w L (+ 1 / (j w C) with the capacitor)."""
    w = 2 * np.pi * f_Hz
    m = ts.size
    z = elements[0] + np.sum(elements[1:m + 1][None, :] / (1 + 1j * w[:, None] * ts[None, :]), axis=1)
    z = z + 1j * w * elements[-1]
    if elements.size == m + 3:
        z = z + 1.0 / (1j * w * (1.0 / elements[-2]))
    return z


def kk_check(f_Hz: np.ndarray, z_Ohm: np.ndarray, c: float = 0.85, max_M: int = 50) -> dict[str, Any]:
    """Kramers-Kronig test by impedance.py's lin-KK fit (Schönleber's mu criterion for the number of RC elements).

    The fitted model is evaluated here (impedance.py 1.7's own evaluation fails under NumPy 2).
    Residuals are in % of |Z|.
    """
    from impedance.validation import fit_linKK, get_tc_distribution

    m, mu = 0, 1.0
    max_m = max(3, min(max_M, f_Hz.size // 2))
    while mu > c and m < max_m:
        m += 1
        ts = get_tc_distribution(f_Hz, m)
        elements, mu = fit_linKK(f_Hz, ts, m, z_Ohm, "complex", True)
    z_fit = _eval_kk(np.asarray(elements, float), np.asarray(ts, float), f_Hz)
    res = (z_Ohm - z_fit) / np.abs(z_Ohm)
    return {"kk_M": int(m), "kk_mu": float(mu), "kk_max_residual_real_pct": float(100 * np.max(np.abs(res.real))),
            "kk_max_residual_imag_pct": float(100 * np.max(np.abs(res.imag))), "z_kk_Ohm": z_fit}


def drt(f_Hz: np.ndarray, z_Ohm: np.ndarray, *, lam: float = 1e-3, n_tau: int = 90) -> dict[str, Any]:
    """Distribution of relaxation times by Tikhonov-regularised NNLS.

    Returns
    -------
    dict
        ``tau_s`` (log grid, 1.5 decades beyond the data each side), ``gamma_Ohm`` (resistance per grid
        point), ``r_inf_Ohm``, ``peaks`` (list of ``tau_s``, ``resistance_Ohm`` per peak, the
        resistance summed between the minima around it).
    """
    w = 2 * np.pi * f_Hz
    tau = np.logspace(np.log10(1 / w.max()) - 1.5, np.log10(1 / w.min()) + 1.5, n_tau)
    wt = w[:, None] * tau[None, :]
    kern = 1.0 / (1.0 + 1j * wt)
    a = np.vstack([np.column_stack([np.ones(w.size), kern.real]), np.column_stack([np.zeros(w.size), kern.imag])])
    scale = float(np.max(np.abs(z_Ohm)))
    b = np.concatenate([z_Ohm.real, z_Ohm.imag]) / scale
    reg = np.sqrt(lam) * np.hstack([np.zeros((n_tau, 1)), np.eye(n_tau)])
    x, _ = nnls(np.vstack([a, reg]), np.concatenate([b, np.zeros(n_tau)]), maxiter=50 * n_tau)
    g = x[1:] * scale
    peaks = []
    for k in range(1, n_tau - 1):
        if g[k] > g[k - 1] and g[k] >= g[k + 1] and g[k] > 0.02 * g.max():
            lo = k
            while lo > 0 and g[lo - 1] < g[lo]:
                lo -= 1
            hi = k
            while hi < n_tau - 1 and g[hi + 1] < g[hi]:
                hi += 1
            seg = slice(lo, hi + 1)
            peaks.append({"tau_s": float(np.exp(np.sum(g[seg] * np.log(tau[seg])) / np.sum(g[seg]))),
                          "resistance_Ohm": float(np.sum(g[seg]))})
    return {"tau_s": tau, "gamma_Ohm": g, "r_inf_Ohm": float(x[0] * scale), "peaks": peaks}


@dataclass
class SpectrumAnalysis:
    """Fit, Kramers-Kronig check and (optionally) DRT of one spectrum."""

    spectrum: Impedance
    label: float
    fit: CircuitFit
    fitted_mask: np.ndarray
    kk: dict[str, Any]
    hf_intercept_Ohm: float
    drt: dict[str, Any] | None = None
    flags: list[dict[str, Any]] = field(default_factory=list)


def _analyse_one(spec: Impedance, label: float, options: EISOptions) -> SpectrumAnalysis:
    f, z = spec.frequency_Hz, spec.z_Ohm
    keep = np.ones(f.size, bool)
    has_l = any(re.match(r"La?\d*$", n) for n in _element_names(options.circuit))
    if options.drop_inductive and not has_l:
        keep = z.imag < 0
    flags = []
    if keep.sum() < 5:
        raise InputError(f"{spec.source}: fewer than 5 capacitive points (Im Z < 0); is the sign of Z'' inverted? "
                         "Give the data with Im Z negative, or fit all points with --keep-inductive.")
    if (~keep).any():
        flags.append(flag("inductive_points_dropped", f"{int((~keep).sum())} points with Im Z > 0 not fitted "
                          "(use --keep-inductive and an L in --circuit to fit them)", spectrum=spec.name))
    fit = fit_circuit(f[keep], z[keep], options)
    if fit.relative_residual > options.max_residual:
        flags.append(flag("poor_fit", f"relative residual {fit.relative_residual:.3f} > {options.max_residual}: "
                          f"{options.circuit} does not describe this spectrum", spectrum=spec.name))
    if not fit.converged:
        flags.append(flag("fit_not_converged", "the best fit stopped at its evaluation budget; the parameters are the "
                          "best found, not a converged minimum", spectrum=spec.name))
    if fit.degenerate:
        flags.append(flag("degenerate_parameters", f"{', '.join(fit.degenerate)} ran off to zero or infinity (over "
                          "8 decades from the start): the circuit does not describe this spectrum; choose another "
                          "--circuit or give --initial-guess", spectrum=spec.name))
    loose = [n for n, v, e in zip(fit.names, fit.values, fit.errors) if not np.isfinite(e) or e > abs(v)]
    if loose:
        flags.append(flag("poorly_determined", f"{', '.join(loose)}: standard error larger than the value; the data "
                          "do not constrain them (a simpler --circuit?)", spectrum=spec.name))
    kk = kk_check(f[keep], z[keep])
    worst = max(kk["kk_max_residual_real_pct"], kk["kk_max_residual_imag_pct"])
    if worst > options.kk_limit_pct:
        flags.append(flag("kramers_kronig", f"linKK residuals up to {worst:.1f} % "
                          f"of |Z| (> {options.kk_limit_pct} %): drift or non-linearity", spectrum=spec.name))
    d = drt(f[keep], z[keep], lam=options.drt_lambda) if options.drt else None
    return SpectrumAnalysis(spec, label, fit, keep, kk, high_frequency_intercept_Ohm(spec), d, flags)


def analyse_eis(spectra: Sequence[Impedance], options: EISOptions = EISOptions(),
                labels: Sequence[float] | None = None, label_name: str = "cycle") -> EISResult:
    """Fit every spectrum (a series over cycles when several); no file I/O."""
    from layerscope.bulk.eis_outputs import EISResult

    if not spectra:
        raise InputError("no impedance spectra; give at least one file.")
    if labels is not None and len(labels) != len(spectra):
        raise InputError(f"--cycles has {len(labels)} values for {len(spectra)} files; give one per file.")
    labs = list(labels) if labels is not None else list(range(1, len(spectra) + 1))
    items = [_analyse_one(s, float(lab), options) for s, lab in zip(spectra, labs)]
    return EISResult(items, options, label_name)

