"""Ionisation edges: the edge table, edge onsets, L3 peak positions and chemical shifts.

Edge energies come from eXSpy's local element database (no download). Positions are measured
to sub-channel precision:

* :func:`l3_peak_position` - least-squares parabola through the channels around the maximum of
  the first white line (iterated once so that a noisy arg-max does not bias it);
* :func:`edge_onset` - the energy at which the rising edge first reaches ``fraction`` of the
  first peak (linear interpolation between channels; ``fraction=0.5`` is the "half edge height"
  convention of X-ray absorption spectroscopy);
* :func:`chemical_shift` - the shift that best maps a reference spectrum onto each spectrum
  (least squares over shift, scale and offset, Gauss-Newton on a cubic-spline reference),
  which uses the whole edge shape and is the least noise-sensitive of the three.

References
----------
R. F. Egerton, *Electron Energy-Loss Spectroscopy in the Electron Microscope*, 3rd ed.,
Springer (2011), sections 3.6 and 5.6 (chemical shifts); H. Tan, J. Verbeeck, A. Abakumov,
G. Van Tendeloo, "Oxidation state and chemical shift investigation in transition metal oxides
by EELS", *Ultramicroscopy* 116 (2012) 24-33.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.interpolate import CubicSpline

from layerscope.errors import InputError
from layerscope.spectra._arrays import as_float, check_energy_axis, check_finite, map_spectra, window_slice
from layerscope import linalg as robust_linalg

__all__ = [
    "Edge",
    "get_edge",
    "parse_edges",
    "default_background_window",
    "l3_peak_position",
    "edge_onset",
    "chemical_shift",
    "ChemicalShift",
]

#: Transition metals whose L2,3 edges show white lines (L3/L2 and valence analysis apply).
_WHITE_LINE_L = {"Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu"}
#: Shell name -> (first subshell, second subshell or None) in eXSpy's database.
_SUBSHELLS = {"K": ("K", None), "L": ("L3", "L2"), "M": ("M5", "M4")}


@dataclass(frozen=True)
class Edge:
    """An ionisation edge.

    Attributes
    ----------
    element : str
        Chemical symbol, e.g. ``"Co"``.
    shell : str
        ``"K"``, ``"L"`` (L2,3) or ``"M"`` (M4,5).
    onset_eV : float
        Tabulated onset of the first sub-edge (K, L3 or M5) in eV.
    second_onset_eV : float or None
        Tabulated onset of the second sub-edge (L2 or M4) in eV.
    """

    element: str
    shell: str
    onset_eV: float
    second_onset_eV: float | None = None

    @property
    def name(self) -> str:
        """``"Co_L"``-style name."""
        return f"{self.element}_{self.shell}"

    @property
    def has_white_lines(self) -> bool:
        """True for transition-metal L2,3 edges (two white lines, L3/L2 ratio defined)."""
        return self.shell == "L" and self.element in _WHITE_LINE_L

    @property
    def last_feature_eV(self) -> float:
        """Energy of the last sharp feature of this edge (L2/M4 onset, or the onset)."""
        return self.second_onset_eV if self.second_onset_eV is not None else self.onset_eV


@lru_cache(maxsize=None)
def _binding_energies(element: str) -> dict[str, float]:
    import warnings

    with warnings.catch_warnings():  # importing eXSpy imports HyperSpy, whose deprecation notices are not ours
        warnings.simplefilter("ignore")
        from exspy._misc.elements import elements_db  # local database shipped with eXSpy

    if element not in elements_db:
        raise InputError(
            f"edge: unknown element {element!r}; use a chemical symbol with its first letter "
            "capitalised, e.g. 'Co_L' or 'O_K'."
        )
    be = elements_db[element]["Atomic_properties"]["Binding_energies"].as_dictionary()
    return {k: float(v["onset_energy (eV)"]) for k, v in be.items()}


def get_edge(name: str) -> Edge:
    """Look up an edge by name: ``"Co_L"``, ``"Co_L2,3"``, ``"Co_L3"``, ``"O_K"``, ``"La_M4,5"``.

    Raises
    ------
    InputError
        For a malformed name, an unknown element or a shell the element does not have.
    """
    m = re.fullmatch(r"\s*([A-Z][a-z]?)[_ ]([KLM])(\d(,\d)?)?\s*", str(name))
    if m is None:
        raise InputError(
            f"edge {name!r}: expected ELEMENT_SHELL such as 'Co_L', 'Mn_L', 'Ni_L' or 'O_K'."
        )
    element, shell = m.group(1), m.group(2)
    energies = _binding_energies(element)
    first, second = _SUBSHELLS[shell]
    if first not in energies:
        have = sorted({k[0] for k in energies})
        raise InputError(
            f"edge {name!r}: {element} has no tabulated {first} edge; available shells: {have}."
        )
    return Edge(element, shell, energies[first], energies.get(second) if second else None)


def parse_edges(edges: str | list[str] | tuple[str, ...]) -> list[Edge]:
    """Parse ``"Co_L,O_K"`` (or a list of names) into :class:`Edge` objects, in energy order."""
    names = [s for s in (edges.split(",") if isinstance(edges, str) else edges) if str(s).strip()]
    # "Co_L2,3" contains a comma: re-join a bare digit with the name before it.
    merged: list[str] = []
    for s in names:
        if re.fullmatch(r"\s*\d\s*", str(s)) and merged:
            merged[-1] = f"{merged[-1]},{s.strip()}"
        else:
            merged.append(str(s).strip())
    if not merged:
        raise InputError("edges: no edge given; pass e.g. --edges Co_L,O_K.")
    out = sorted((get_edge(s) for s in merged), key=lambda e: e.onset_eV)
    seen = set()
    for e in out:
        if e.name in seen:
            raise InputError(f"edges: {e.name} is listed twice.")
        seen.add(e.name)
    return out


def check_edge_in_range(edge: Edge, energy_eV: np.ndarray, *, margin_eV: float = 10.0) -> None:
    """Raise :class:`InputError` when ``edge`` (plus ``margin_eV`` after it) is not in the range."""
    e0, e1 = float(energy_eV[0]), float(energy_eV[-1])
    if not (e0 < edge.onset_eV and edge.last_feature_eV + margin_eV <= e1):
        raise InputError(
            f"edge {edge.name} (onset {edge.onset_eV:.0f} eV) is outside the core-loss energy "
            f"range {e0:.1f}-{e1:.1f} eV (it needs the range to start before the onset and to "
            f"reach {edge.last_feature_eV + margin_eV:.0f} eV); remove it from --edges or "
            "acquire a range that covers it."
        )


def default_background_window(
    edge: Edge,
    energy_eV: np.ndarray,
    *,
    other_edges: tuple[Edge, ...] | list[Edge] = (),
    min_width_eV: float = 10.0,
) -> tuple[float, float]:
    """Default pre-edge window for the background fit of ``edge``, in eV.

    The window ends ``max(5 eV, 1 % of the onset)`` before the tabulated onset (room for
    chemical shifts and pre-peaks) and is ``clip(10 % of the onset, 20, 60)`` eV wide
    (Egerton 2011, section 4.4.2: the fit window should be as wide as the spectrum allows
    without containing another edge). It is shortened so that it starts after the range start
    and at least 15 eV after the last sharp feature of any edge in ``other_edges`` below it.

    Raises
    ------
    InputError
        When the edge is outside the range or less than ``min_width_eV`` of clean pre-edge
        remains; the message says to pass an explicit window.
    """
    check_edge_in_range(edge, energy_eV)
    end = edge.onset_eV - max(5.0, 0.01 * edge.onset_eV)
    start = end - float(np.clip(0.10 * edge.onset_eV, 20.0, 60.0))
    start = max(start, float(energy_eV[0]))
    for other in other_edges:
        if other.onset_eV < edge.onset_eV and other.name != edge.name:
            start = max(start, other.last_feature_eV + 15.0)
    if end - start < min_width_eV:
        raise InputError(
            f"edge {edge.name}: only {max(end - start, 0):.1f} eV of pre-edge background "
            f"(need {min_width_eV:.0f} eV) between {start:.1f} and {end:.1f} eV; give an explicit "
            "background window (--window %s=START,END in eV) or --background none for a spectrum "
            "whose background is already removed." % edge.name
        )
    return (start, end)


# --------------------------------------------------------------------------- peak position
def _parabola_pinv(k: int) -> np.ndarray:
    u = np.arange(-k, k + 1, dtype=np.float64)
    design = np.stack([np.ones_like(u), u, u * u], axis=1)
    return robust_linalg.pinv(design)  # (3, 2k+1)


def _gather(sub: np.ndarray, centre: np.ndarray, k: int) -> np.ndarray:
    offs = np.arange(-k, k + 1)
    idx = centre[..., None] + offs
    return np.take_along_axis(sub, idx, axis=-1)


def peak_block(block: np.ndarray, *, sl: slice, k: int, e_window: np.ndarray) -> np.ndarray:
    sub = np.asarray(block[..., sl], dtype=np.float64)
    n = sub.shape[-1]
    pinv = _parabola_pinv(k)
    centre = np.clip(np.argmax(sub, axis=-1), k, n - 1 - k)
    vertex = np.zeros(centre.shape)
    ok = np.ones(centre.shape, dtype=bool)
    for _ in range(2):
        coef = _gather(sub, centre, k) @ pinv.T
        c1, c2 = coef[..., 1], coef[..., 2]
        ok = c2 < 0
        with np.errstate(divide="ignore", invalid="ignore"):
            vertex = np.where(ok, -c1 / (2 * c2), 0.0)
        vertex = np.clip(vertex, -k, k)
        new_centre = np.clip(centre + np.rint(vertex).astype(int), k, n - 1 - k)
        vertex = vertex - (new_centre - centre)
        centre = new_centre
    scale = (e_window[-1] - e_window[0]) / (len(e_window) - 1)
    pos = e_window[centre] + vertex * scale
    return np.where(ok, pos, np.nan)


def l3_peak_position(
    signal: Any,
    energy_eV: Any,
    *,
    window_eV: tuple[float, float],
    fit_half_width_eV: float = 0.6,
) -> Any:
    """Energy of the maximum of the first white line (L3) or of any peak, per spectrum, in eV.

    A least-squares parabola is fitted to the ``2k + 1`` channels centred on the maximum
    inside ``window_eV`` (``k = max(2, round(fit_half_width_eV / dispersion))``); its vertex is
    the position. The fit is re-centred once on the vertex, so a noise spike next to the true
    maximum does not bias the result by a whole channel.

    Parameters
    ----------
    signal : array (..., E)
        Background-subtracted spectra, energy on the last axis (NumPy or Dask).
    energy_eV : array (E,)
        Uniform energy axis in eV.
    window_eV : (float, float)
        Search window that contains the L3 peak and not the L2 peak.
    fit_half_width_eV : float
        Half-width of the parabola fit in eV. Keep it below the half width at half maximum of
        the peak (about 0.6-1 eV for 3d-metal L3 lines at 1 eV resolution).

    Returns
    -------
    array (...,)
        Peak position in eV; NaN where the window holds no maximum (flat or monotonic data).
    """
    signal = as_float(signal, name="signal")
    e = np.asarray(energy_eV, dtype=np.float64)
    _, scale = check_energy_axis(e, signal.shape[-1])
    check_finite(signal, name="signal")
    sl = window_slice(e, window_eV, what="L3 peak window", min_channels=5)
    k = max(2, int(round(fit_half_width_eV / scale)))
    if sl.stop - sl.start < 2 * k + 3:
        raise InputError(
            f"L3 peak window {window_eV} eV holds {sl.stop - sl.start} channels, fewer than the "
            f"{2 * k + 3} needed for a {fit_half_width_eV} eV parabola fit; widen the window."
        )
    return map_spectra(
        peak_block, signal, out_channels=None, dtype=np.float64, name="signal",
        sl=sl, k=k, e_window=e[sl],
    )


def _onset_block(block: np.ndarray, *, sl: slice, fraction: float, e_window: np.ndarray) -> np.ndarray:
    sub = np.asarray(block[..., sl], dtype=np.float64)
    # three-channel running mean so that one noisy channel does not set the maximum
    sm = sub.copy()
    sm[..., 1:-1] = (sub[..., :-2] + sub[..., 1:-1] + sub[..., 2:]) / 3.0
    peak = sm.max(axis=-1)
    level = fraction * peak
    above = sm >= level[..., None]
    i = np.argmax(above, axis=-1)
    i = np.clip(i, 1, sub.shape[-1] - 1)
    y0 = np.take_along_axis(sm, (i - 1)[..., None], -1)[..., 0]
    y1 = np.take_along_axis(sm, i[..., None], -1)[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(y1 > y0, (level - y0) / (y1 - y0), 0.0)
    frac = np.clip(frac, 0.0, 1.0)
    scale = (e_window[-1] - e_window[0]) / (len(e_window) - 1)
    pos = e_window[i - 1] + frac * scale
    return np.where(peak > 0, pos, np.nan)


def edge_onset(
    signal: Any,
    energy_eV: Any,
    *,
    window_eV: tuple[float, float],
    fraction: float = 0.5,
) -> Any:
    """Energy at which the rising edge first reaches ``fraction`` of its maximum, in eV.

    Inside ``window_eV`` (which must start on the flat pre-edge, after background removal, and
    contain the first peak), the spectra are smoothed with a 3-channel running mean, the
    maximum ``M`` is found, and the first crossing of ``fraction * M`` is located by linear
    interpolation between the two channels around it.

    Parameters
    ----------
    signal : array (..., E)
        Background-subtracted spectra (NumPy or Dask), energy last.
    energy_eV : array (E,)
        Uniform energy axis in eV.
    window_eV : (float, float)
        From a few eV below the onset to just past the first peak.
    fraction : float
        Fraction of the first-peak height that defines the onset, in (0, 1).

    Returns
    -------
    array (...,)
        Onset energy in eV (NaN where the window holds no positive signal).
    """
    if not 0.0 < fraction < 1.0:
        raise InputError(f"edge onset: fraction={fraction} must lie strictly between 0 and 1.")
    signal = as_float(signal, name="signal")
    e = np.asarray(energy_eV, dtype=np.float64)
    check_energy_axis(e, signal.shape[-1])
    check_finite(signal, name="signal")
    sl = window_slice(e, window_eV, what="edge onset window", min_channels=5)
    return map_spectra(
        _onset_block, signal, out_channels=None, dtype=np.float64, name="signal",
        sl=sl, fraction=float(fraction), e_window=e[sl],
    )


# --------------------------------------------------------------------------- chemical shift
@dataclass(frozen=True)
class ChemicalShift:
    """Result of :func:`chemical_shift` (arrays have the pixel shape of the input).

    Attributes
    ----------
    shift_eV : array
        Energy shift of each spectrum relative to the reference, eV (positive: to higher
        energy loss, i.e. typically a higher oxidation state for 3d metals).
    sigma_eV : array
        One-standard-deviation statistical uncertainty of the shift (from the fit residual).
    scale : array
        Intensity scale of the reference that fits each spectrum.
    """

    shift_eV: Any
    sigma_eV: Any
    scale: Any


def _shift_block(
    block: np.ndarray,
    *,
    sl: slice,
    e_window: np.ndarray,
    ref_e: np.ndarray,
    ref_y: np.ndarray,
    max_shift_eV: float,
    iterations: int,
) -> np.ndarray:
    y = np.asarray(block[..., sl], dtype=np.float64)
    shape = y.shape[:-1]
    y = y.reshape(-1, y.shape[-1])
    spline = CubicSpline(ref_e, ref_y, extrapolate=True)
    dspline = spline.derivative()
    ew = e_window
    scale = (ew[-1] - ew[0]) / (len(ew) - 1)
    # integer-lag start: cross-correlation over lags within +-max_shift
    nlag = int(np.ceil(max_shift_eV / scale))
    lags = np.arange(-nlag, nlag + 1) * scale
    ref_on = spline(ew[None, :] - lags[:, None])  # (L, W)
    ref_on = ref_on - ref_on.mean(axis=1, keepdims=True)
    ref_on /= np.linalg.norm(ref_on, axis=1, keepdims=True) + 1e-300
    yc = y - y.mean(axis=1, keepdims=True)
    corr = yc @ ref_on.T  # (P, L)
    delta = lags[np.argmax(corr, axis=1)]
    P, W = y.shape
    ones = np.ones(W)
    a = np.ones(P)
    b = np.zeros(P)
    sigma = np.full(P, np.nan)
    for it in range(iterations):
        x = ew[None, :] - delta[:, None]
        r0 = spline(x)
        d0 = dspline(x)
        # linear least squares for a, b at fixed delta, then Gauss-Newton step on delta
        J = np.stack([r0, np.broadcast_to(ones, r0.shape), -a[:, None] * d0], axis=-1)  # (P, W, 3)
        resid = y - (a[:, None] * r0 + b[:, None])
        JTJ = np.einsum("pwi,pwj->pij", J, J)
        JTr = np.einsum("pwi,pw->pi", J, resid)
        try:
            step = np.linalg.solve(JTJ, JTr[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = np.stack([robust_linalg.lstsq(m, v)[0] for m, v in zip(JTJ, JTr)])
        a = a + step[:, 0]
        b = b + step[:, 1]
        delta = np.clip(delta + step[:, 2], -max_shift_eV, max_shift_eV)
        if it == iterations - 1:
            x = ew[None, :] - delta[:, None]
            r0 = spline(x)
            d0 = dspline(x)
            J = np.stack([r0, np.broadcast_to(ones, r0.shape), -a[:, None] * d0], axis=-1)
            resid = y - (a[:, None] * r0 + b[:, None])
            s2 = (resid**2).sum(axis=1) / max(W - 3, 1)
            JTJ = np.einsum("pwi,pwj->pij", J, J)
            with np.errstate(invalid="ignore"):
                cov_dd = robust_linalg.pinv(JTJ)[:, 2, 2]
                sigma = np.sqrt(np.maximum(s2 * cov_dd, 0.0))
    out = np.stack([delta, sigma, a], axis=-1)
    return out.reshape(shape + (3,))


def chemical_shift(
    signal: Any,
    energy_eV: Any,
    reference: Any,
    reference_energy_eV: Any,
    *,
    window_eV: tuple[float, float],
    max_shift_eV: float = 5.0,
    iterations: int = 6,
) -> ChemicalShift:
    """Energy shift of every spectrum relative to a reference spectrum, to sub-channel precision.

    Each spectrum ``y(E)`` in ``window_eV`` is modelled as ``a * R(E - delta) + b`` where ``R``
    is a cubic spline through the reference. ``delta`` starts at the best whole-channel
    cross-correlation lag and is refined by Gauss-Newton steps on ``(a, b, delta)``; its
    uncertainty is ``sqrt(s^2 [J^T J]^-1_dd)`` with ``s^2`` the residual variance.

    Parameters
    ----------
    signal : array (..., E)
        Background-subtracted spectra, energy on the last axis (NumPy or Dask).
    energy_eV : array (E,)
        Uniform energy axis of ``signal`` in eV.
    reference : array (E_ref,)
        Background-subtracted reference spectrum (any uniform axis covering the window
        shifted by up to ``max_shift_eV``).
    reference_energy_eV : array (E_ref,)
        Energy axis of the reference in eV.
    window_eV : (float, float)
        Fit window: the edge (onset and white lines) with a little pre-edge.
    max_shift_eV : float
        Largest shift searched, eV.
    iterations : int
        Gauss-Newton iterations (the fit converges in 3-4 for shifts of a few channels).

    Returns
    -------
    ChemicalShift
    """
    signal = as_float(signal, name="signal")
    e = np.asarray(energy_eV, dtype=np.float64)
    check_energy_axis(e, signal.shape[-1])
    check_finite(signal, name="signal")
    ref = np.asarray(reference, dtype=np.float64)
    if ref.ndim != 1:
        raise InputError(f"chemical shift: the reference must be one spectrum, got shape {ref.shape}.")
    ref_e = np.asarray(reference_energy_eV, dtype=np.float64)
    check_energy_axis(ref_e, ref.size, name="reference_energy_eV")
    check_finite(ref, name="reference")
    sl = window_slice(e, window_eV, what="chemical-shift window", min_channels=8)
    lo, hi = e[sl][0] - max_shift_eV, e[sl][-1] + max_shift_eV
    if ref_e[0] > lo + 1e-9 or ref_e[-1] < hi - 1e-9:
        raise InputError(
            f"chemical shift: the reference covers {ref_e[0]:.1f}-{ref_e[-1]:.1f} eV but the window "
            f"{window_eV} eV with shifts up to {max_shift_eV} eV needs {lo:.1f}-{hi:.1f} eV; narrow "
            "the edge window or use a reference with a wider range."
        )
    out = map_spectra(
        _shift_block, signal, out_channels=3, dtype=np.float64, name="signal",
        sl=sl, e_window=e[sl], ref_e=ref_e, ref_y=ref, max_shift_eV=float(max_shift_eV),
        iterations=int(iterations),
    )
    return ChemicalShift(shift_eV=out[..., 0], sigma_eV=out[..., 1], scale=out[..., 2])
