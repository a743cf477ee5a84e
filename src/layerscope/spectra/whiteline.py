"""L3/L2 white-line intensity ratio of 3d transition metals (Pearson double step or second derivative).

After the power-law background is removed (and, ideally, plural scattering by Fourier-ratio
deconvolution), the continuum transitions under the white lines are modelled by two step
functions placed at the L3 and L2 maxima, with heights in the 2:1 ratio of the 2p3/2 and 2p1/2
occupancies and a total height equal to the mean intensity ``h`` of the continuum after the L2
line (Pearson, Ahn & Fultz 1993). Each white line is integrated above the steps from
``half_width_eV`` below its maximum to ``half_width_eV`` above it, never past the minimum between
the two lines. The L3/L2 ratio is the ratio of the two integrals.

``method="second_derivative"`` (Botton et al. 1995) integrates instead the positive part of the
negative second derivative (Savitzky-Golay, quadratic, ``smoothing_eV`` wide) in the same
windows around each maximum. The continuum step has no second derivative away from its edge, so this needs no step
model and no continuum window, and it is less sensitive to plural scattering and to the
post-edge range; its values are lower than Pearson's for broad lines and depend on the
smoothing width.

Uncertainty has two parts, both reported:

* statistical - the per-channel noise (given as a variance, or estimated from second
  differences of the spectrum) propagated through both window sums and the step height;
* method - half the spread of the ratio when the steps sit at the onsets (half height of the
  rising flank) instead of the maxima and when the windows are 1 eV narrower or wider. The
  absolute L3/L2 of the method depends on these choices; changes *between* pixels or
  spectra treated alike are far more precise than the absolute value.

References
----------
D. H. Pearson, C. C. Ahn, B. Fultz, "White lines and d-electron occupancies for the 3d and 4d
transition metals", *Phys. Rev. B* 47 (1993) 8471-8478; G. A. Botton, C. C. Appel, A. Horsewell,
W. M. Stobbs, "Quantification of the EELS near-edge structures to study Mn doping in oxides",
*J. Microsc.* 180 (1995) 211-216; T. Riedl, T. Gemming, K. Wetzig, "Extended study of the L3/L2
ratio for 3d transition metal oxides", *Ultramicroscopy* 106 (2006) 284-291; M. Varela et al., "Atomic-resolution
imaging of oxidation states in manganites", *Phys. Rev. B* 79 (2009) 085117 (Mn L3/L2 versus
valence); Z. L. Wang, J. S. Yin, Y. D. Jiang, "EELS analysis of cation valence states and oxygen
vacancies in magnetic oxides", *Micron* 31 (2000) 571-580 (Co, Mn).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from layerscope.errors import InputError
from layerscope.spectra._arrays import as_float, check_energy_axis, check_finite, map_spectra
from layerscope.spectra._windows import cumulative, noise_sigma, window_integral
from layerscope.spectra.edges import Edge, get_edge
from layerscope import linalg as robust_linalg

__all__ = ["WhiteLineRatio", "white_line_ratio"]


@dataclass(frozen=True)
class WhiteLineRatio:
    """Result of :func:`white_line_ratio` (arrays have the pixel shape).

    Attributes
    ----------
    ratio : array
        L3/L2 integrated intensity ratio.
    sigma : array
        Total one-sigma uncertainty, ``sqrt(sigma_statistical**2 + sigma_method**2)``.
    sigma_statistical, sigma_method : array
        The two parts of the uncertainty (see the module docstring).
    l3_eV, l2_eV : array
        Positions of the L3 and L2 maxima used for the steps (eV).
    l3_intensity, l2_intensity : array
        White-line integrals above the double step (counts).
    continuum : array
        Mean continuum intensity per channel after L2 (``h``).
    """

    ratio: Any
    sigma: Any
    sigma_statistical: Any
    sigma_method: Any
    l3_eV: Any
    l2_eV: Any
    l3_intensity: Any
    l2_intensity: Any
    continuum: Any


def _parabola_peak(y: np.ndarray, e: np.ndarray, lo: np.ndarray, hi: np.ndarray, k: int) -> np.ndarray:
    """Sub-channel maximum of y within per-pixel energy windows [lo, hi]."""
    n = y.shape[-1]
    scale = (e[-1] - e[0]) / (n - 1)
    ch = np.arange(n)
    ilo = np.clip(np.ceil((lo - e[0]) / scale), 0, n - 1).astype(int)
    ihi = np.clip(np.floor((hi - e[0]) / scale), 0, n - 1).astype(int)
    inside = (ch >= ilo[..., None]) & (ch <= ihi[..., None])
    i = np.argmax(np.where(inside, y, -np.inf), axis=-1)
    i = np.clip(i, k, n - 1 - k)
    u = np.arange(-k, k + 1)
    pinv = robust_linalg.pinv(np.stack([np.ones_like(u), u, u * u], axis=1).astype(float))
    seg = np.take_along_axis(y, i[..., None] + u, -1)
    c = seg @ pinv.T
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.where(c[..., 2] < 0, -c[..., 1] / (2 * c[..., 2]), 0.0)
    return e[0] + (i + np.clip(v, -k, k)) * scale


def _half_height_onset(y: np.ndarray, e: np.ndarray, peak_eV: np.ndarray, search_eV: float) -> np.ndarray:
    """Energy of the half-height crossing on the low-energy flank of the peak at ``peak_eV``."""
    n = y.shape[-1]
    scale = (e[-1] - e[0]) / (n - 1)
    ip = np.clip(np.rint((peak_eV - e[0]) / scale).astype(int), 1, n - 1)
    top = np.take_along_axis(y, ip[..., None], -1)[..., 0]
    ch = np.arange(n)
    lo = ip - int(round(search_eV / scale))
    below = (y < 0.5 * top[..., None]) & (ch < ip[..., None]) & (ch >= lo[..., None])
    j = n - 1 - np.argmax(below[..., ::-1], axis=-1)  # last channel below half before the peak
    has = below.any(axis=-1)
    j = np.where(has, np.minimum(j, ip - 1), ip - 1)
    y0 = np.take_along_axis(y, j[..., None], -1)[..., 0]
    y1 = np.take_along_axis(y, (j + 1)[..., None], -1)[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(y1 > y0, (0.5 * top - y0) / (y1 - y0), 0.0)
    return e[0] + (j + np.clip(f, 0, 1)) * scale


def _ratio_for(
    F: np.ndarray, e0: float, scale: float, s3: np.ndarray, s2: np.ndarray, p3: np.ndarray,
    p2: np.ndarray, split: np.ndarray, hw: float, h: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, tuple]:
    a3, b3 = p3 - hw, np.minimum(p3 + hw, split)
    a2, b2 = np.maximum(p2 - hw, split), p2 + hw
    raw3 = window_integral(F, e0, scale, a3, b3)
    raw2 = window_integral(F, e0, scale, a2, b2)
    # step areas (counts): height per channel * length in channels
    st3 = (2 * h / 3) * np.clip(b3 - np.maximum(a3, s3), 0, None) / scale + (h / 3) * np.clip(
        b3 - np.maximum(a3, s2), 0, None
    ) / scale
    st2 = (2 * h / 3) * np.clip(b2 - np.maximum(a2, s3), 0, None) / scale + (h / 3) * np.clip(
        b2 - np.maximum(a2, s2), 0, None
    ) / scale
    i3 = raw3 - st3
    i2 = raw2 - st2
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = i3 / i2
    return ratio, np.stack([i3, i2]), (a3, b3, a2, b2, st3, st2)


def _second_derivative_ratio(
    y: np.ndarray, var_ch: np.ndarray, e: np.ndarray, p3: np.ndarray, p2: np.ndarray,
    split: np.ndarray, half_width_eV: float, smoothing_eV: float,
) -> tuple[np.ndarray, ...]:
    from scipy.signal import savgol_coeffs

    n = y.shape[-1]
    scale = (e[-1] - e[0]) / (n - 1)
    w = max(5, int(round(smoothing_eV / scale)) | 1)
    c = savgol_coeffs(w, 2, deriv=2, use="conv")
    half = w // 2
    ypad = np.pad(y, ((0, 0), (half, half)), mode="edge")
    d2 = np.zeros_like(y)
    for k in range(w):
        d2 -= c[k] * ypad[:, w - 1 - k : w - 1 - k + n]  # negative second derivative
    ch = e[None, :]
    in3 = (ch >= (p3 - half_width_eV)[:, None]) & (ch <= np.minimum(p3 + half_width_eV, split)[:, None])
    in2 = (ch >= np.maximum(p2 - half_width_eV, split)[:, None]) & (ch <= (p2 + half_width_eV)[:, None])
    pos = np.clip(d2, 0, None)
    a3 = np.where(in3, pos, 0).sum(axis=1)
    a2 = np.where(in2, pos, 0).sum(axis=1)
    # variance of a window sum of the filtered signal for white noise: sigma^2 ||box_L * c||^2
    # (an upper bound for the clipped sum)
    sig2 = var_ch.mean(axis=-1)

    def _factor(L: np.ndarray) -> np.ndarray:
        out = np.zeros(L.shape)
        for Lv in np.unique(L):
            out[L == Lv] = (np.convolve(np.ones(max(int(Lv), 1)), c) ** 2).sum()
        return out

    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = a3 / a2
        v3 = sig2 * _factor(in3.sum(axis=1))
        v2 = sig2 * _factor(in2.sum(axis=1))
        stat = np.abs(ratio) * np.sqrt(v3 / a3**2 + v2 / a2**2)
    return ratio, stat, a3, a2


def _whiteline_block(
    block: np.ndarray,
    var_block: Any,
    *,
    e: np.ndarray,
    l3_search: tuple[float, float],
    splitting: float,
    half_width_eV: float,
    continuum_window: tuple[float, float] | None,
    continuum_after_l2_eV: tuple[float, float],
    k: int,
    method: str,
    smoothing_eV: float,
) -> np.ndarray:
    y = np.asarray(block, dtype=np.float64)
    shape = y.shape[:-1]
    y = y.reshape(-1, y.shape[-1])
    P, n = y.shape
    scale = (e[-1] - e[0]) / (n - 1)
    p3 = _parabola_peak(y, e, np.full(P, l3_search[0]), np.full(P, l3_search[1]), k)
    p2 = _parabola_peak(y, e, p3 + 0.5 * splitting, p3 + 1.5 * splitting, k)
    # the minimum between the lines (3-channel mean) splits the two windows
    sm = y.copy()
    sm[:, 1:-1] = (y[:, :-2] + y[:, 1:-1] + y[:, 2:]) / 3
    ch = np.arange(n)
    i3 = np.rint((p3 - e[0]) / scale)[:, None]
    i2 = np.rint((p2 - e[0]) / scale)[:, None]
    between = (ch > i3) & (ch < i2)
    isplit = np.argmin(np.where(between, sm, np.inf), axis=-1)
    split = e[0] + isplit * scale
    if continuum_window is None:
        c_lo = p2 + continuum_after_l2_eV[0]
        c_hi = np.minimum(p2 + continuum_after_l2_eV[1], e[-1])
    else:
        c_lo = np.full(P, continuum_window[0])
        c_hi = np.full(P, continuum_window[1])
    if var_block is None:
        sig = noise_sigma(y)
        var_ch = np.broadcast_to((sig**2)[:, None], y.shape)
    else:
        var_ch = np.broadcast_to(np.asarray(var_block, dtype=np.float64).reshape(-1, n), y.shape)
    if method == "second_derivative":
        ratio, stat, a3, a2 = _second_derivative_ratio(
            y, var_ch, e, p3, p2, split, half_width_eV, smoothing_eV
        )
        variants = [
            _second_derivative_ratio(y, var_ch, e, p3, p2, split, half_width_eV, sm)[0]
            for sm in (smoothing_eV * 0.75, smoothing_eV * 1.25)
        ]
        allr = np.stack([ratio] + variants)
        meth = 0.5 * (np.nanmax(allr, axis=0) - np.nanmin(allr, axis=0))
        nan = np.full(P, np.nan)
        out = np.stack([ratio, np.sqrt(stat**2 + meth**2), stat, meth, p3, p2, a3, a2, nan], axis=-1)
        return out.reshape(shape + (9,))
    F = cumulative(y)
    n_cont = (c_hi - c_lo) / scale
    h = window_integral(F, e[0], scale, c_lo, c_hi) / np.where(n_cont > 0, n_cont, np.nan)
    ratio, ints, (a3, b3, a2, b2, st3, st2) = _ratio_for(F, e[0], scale, p3, p2, p3, p2, split, half_width_eV, h)
    V = cumulative(var_ch)
    var_raw3 = window_integral(V, e[0], scale, a3, b3)
    var_raw2 = window_integral(V, e[0], scale, a2, b2)
    var_h = window_integral(V, e[0], scale, c_lo, c_hi) / np.where(n_cont > 0, n_cont, np.nan) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        d3 = st3 / h  # d(step area)/dh
        d2 = st2 / h
        # ratio R = I3/I2 with I_j = raw_j - h d_j; first-order propagation incl. the shared h
        dR_draw3 = 1 / ints[1]
        dR_draw2 = -ratio / ints[1]
        dR_dh = (-d3 * ints[1] + d2 * ints[0]) / ints[1] ** 2
        sigma_stat = np.sqrt(dR_draw3**2 * var_raw3 + dR_draw2**2 * var_raw2 + dR_dh**2 * var_h)
    # method uncertainty: steps at the half-height onsets, windows +-1 eV
    o3 = _half_height_onset(y, e, p3, search_eV=0.5 * splitting)
    o2 = _half_height_onset(y, e, p2, search_eV=0.5 * splitting)
    variants = [
        _ratio_for(F, e[0], scale, o3, o2, p3, p2, split, half_width_eV, h)[0],
        _ratio_for(F, e[0], scale, p3, p2, p3, p2, split, max(half_width_eV - 1.0, scale), h)[0],
        _ratio_for(F, e[0], scale, p3, p2, p3, p2, split, half_width_eV + 1.0, h)[0],
    ]
    allr = np.stack([ratio] + variants)
    sigma_method = 0.5 * (np.nanmax(allr, axis=0) - np.nanmin(allr, axis=0))
    sigma = np.sqrt(sigma_stat**2 + sigma_method**2)
    out = np.stack([ratio, sigma, sigma_stat, sigma_method, p3, p2, ints[0], ints[1], h], axis=-1)
    return out.reshape(shape + (9,))


def white_line_ratio(
    signal: Any,
    energy_eV: Any,
    *,
    edge: Edge | str,
    l3_search_eV: tuple[float, float] | None = None,
    half_width_eV: float = 4.0,
    continuum_window_eV: tuple[float, float] | None = None,
    variance: Any = None,
    fit_half_width_eV: float = 0.6,
    method: str = "pearson",
    smoothing_eV: float = 2.0,
) -> WhiteLineRatio:
    """L3/L2 white-line ratio per spectrum by the Pearson double-step method, with uncertainty.

    Parameters
    ----------
    signal : array (..., E)
        Background-subtracted (preferably deconvolved) spectra of a 3d-metal L2,3 edge,
        energy last (NumPy or Dask).
    energy_eV : array (E,)
        Uniform energy axis in eV.
    edge : Edge or str
        The L2,3 edge, e.g. ``"Mn_L"``; its tabulated L3-L2 spin-orbit splitting sets the L2
        search window (``[L3 + 0.5 d, L3 + 1.5 d]``).
    l3_search_eV : (float, float) or None
        Window holding the L3 maximum (the strongest line). None: from 15 eV below the
        tabulated L3 onset to 5 eV above the tabulated L2 onset - wide enough for a few eV
        of calibration offset; pass it for Ti-Cr, whose L2 can rival L3.
    half_width_eV : float
        Integration half-width around each white-line maximum (eV).
    continuum_window_eV : (float, float) or None
        Window for the continuum height ``h``. None: from 10 to 30 eV above the L2 maximum,
        cut at the end of the range (at least 3 eV must remain).
    variance : array (..., E) or None
        Per-channel variance of ``signal`` (e.g. counts x gain for raw data). None: estimated
        per spectrum from second differences (:func:`layerscope.spectra._windows.noise_sigma`).
    fit_half_width_eV : float
        Half-width of the parabola used to locate the maxima (eV).
    method : {"pearson", "second_derivative"}
        Pearson double-step background (default) or the second-derivative lobes of Botton
        et al. (see the module docstring). For ``"second_derivative"`` the method uncertainty
        is half the spread over smoothing widths x0.75 and x1.25, and ``continuum`` is NaN.
    smoothing_eV : float
        Savitzky-Golay window of the second derivative (eV); only for ``"second_derivative"``.

    Returns
    -------
    WhiteLineRatio
    """
    if method not in ("pearson", "second_derivative"):
        raise InputError(
            f"white-line ratio: method={method!r}; use 'pearson' or 'second_derivative'."
        )
    ed = get_edge(edge) if isinstance(edge, str) else edge
    if ed.shell != "L" or ed.second_onset_eV is None:
        raise InputError(f"white-line ratio: {ed.name} is not an L2,3 edge; use e.g. 'Mn_L', 'Co_L'.")
    signal = as_float(signal, name="signal")
    e = np.asarray(energy_eV, dtype=np.float64)
    _, scale = check_energy_axis(e, signal.shape[-1])
    check_finite(signal, name="signal")
    splitting = ed.second_onset_eV - ed.onset_eV
    if l3_search_eV is None:
        l3_search_eV = (ed.onset_eV - 15.0, ed.second_onset_eV + 5.0)
    lo, hi = max(l3_search_eV[0], e[0]), min(l3_search_eV[1], e[-1])
    if hi - lo < 3 * scale:
        raise InputError(
            f"white-line ratio ({ed.name}): the L3 search window {l3_search_eV} eV is outside the "
            f"energy range {e[0]:.1f}-{e[-1]:.1f} eV; check --edges and the energy scale (--energy-shift-ev)."
        )
    after = (10.0, 30.0)
    if continuum_window_eV is None and method == "pearson":
        # check on the tabulated positions that some continuum remains
        if e[-1] - (ed.second_onset_eV + after[0]) < 3.0:
            raise InputError(
                f"white-line ratio ({ed.name}): the spectrum ends at {e[-1]:.1f} eV, leaving less than "
                f"3 eV of continuum {after[0]:.0f} eV beyond L2; pass continuum_window_eV explicitly "
                "or acquire a longer range."
            )
    k = max(2, int(round(fit_half_width_eV / scale)))
    if variance is not None:
        variance = as_float(variance, name="variance")
        if tuple(variance.shape) != tuple(signal.shape):
            raise InputError(f"white-line ratio: variance shape {variance.shape} != signal shape {signal.shape}.")
    kw = dict(
        e=e, l3_search=(lo, hi), splitting=float(splitting), half_width_eV=float(half_width_eV),
        continuum_window=continuum_window_eV, continuum_after_l2_eV=after, k=k,
        method=method, smoothing_eV=float(smoothing_eV),
    )
    if variance is None:
        out = map_spectra(
            lambda b, **kw2: _whiteline_block(b, None, **kw2), signal, out_channels=9,
            dtype=np.float64, name="signal", **kw,
        )
    else:
        n = signal.shape[-1]
        joined = _concat_last(signal, variance)
        out = map_spectra(
            lambda b, **kw2: _whiteline_block(b[..., :n], b[..., n:], **kw2), joined,
            out_channels=9, dtype=np.float64, name="signal", **kw,
        )
    return WhiteLineRatio(*(out[..., i] for i in range(9)))


def _concat_last(a: Any, b: Any) -> Any:
    from layerscope.spectra._arrays import is_lazy

    if is_lazy(a) or is_lazy(b):
        import dask.array as da

        return da.concatenate([da.asarray(a), da.asarray(b)], axis=-1)
    return np.concatenate([a, b], axis=-1)
