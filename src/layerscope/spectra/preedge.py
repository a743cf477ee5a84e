"""O-K pre-edge (~530 eV) to main-peak intensity ratio.

In layered transition-metal oxides the O-K pre-edge peak (about 528-532 eV) comes from
transitions into O 2p states hybridised with empty TM 3d states; its intensity tracks the hole
count on the TM-O bonds, and it falls where the surface reduces (Co3+ -> Co2+, Ni3+ -> Ni2+) or
oxygen is lost. The ratio of the pre-edge integral to the integral of the main O-K peak
(O 2p - TM 4sp/La 5d, about 535-545 eV) normalises out thickness and O concentration.

Both windows are absolute energies on a calibrated axis (ZLP at 0 eV, dual EELS). The defaults
suit LiCoO2, NMC and Li-rich oxides (pre-edge maximum 529-531 eV); the measured pre-edge peak
position is returned so the calibration can be checked against it.

References
----------
F. Lin et al., "Surface reconstruction and chemical evolution of stoichiometric layered cathode
materials for lithium-ion batteries", *Nat. Commun.* 5 (2014) 3529; F. M. F. de Groot et al.,
"Oxygen 1s x-ray-absorption edges of transition-metal oxides", *Phys. Rev. B* 40 (1989) 5715.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from layerscope.errors import InputError
from layerscope.spectra._arrays import as_float, check_energy_axis, check_finite, map_spectra
from layerscope.spectra._windows import cumulative, noise_sigma, window_integral
from layerscope.spectra.edges import peak_block

__all__ = ["PreEdgeRatio", "oxygen_k_preedge_ratio", "DEFAULT_PREEDGE_WINDOW_EV", "DEFAULT_MAIN_WINDOW_EV"]

#: Default pre-edge integration window (eV) for layered Co/Ni/Mn oxides on a calibrated axis.
DEFAULT_PREEDGE_WINDOW_EV = (527.0, 532.5)
#: Default main-peak integration window (eV).
DEFAULT_MAIN_WINDOW_EV = (533.5, 548.0)


@dataclass(frozen=True)
class PreEdgeRatio:
    """Result of :func:`oxygen_k_preedge_ratio` (arrays have the pixel shape).

    Attributes
    ----------
    ratio : array
        Pre-edge integral / main-peak integral.
    sigma : array
        One-sigma statistical uncertainty of the ratio.
    preedge_intensity, main_intensity : array
        The two integrals (counts).
    preedge_peak_eV : array
        Sub-channel position of the pre-edge maximum (eV), NaN if there is none.
    """

    ratio: Any
    sigma: Any
    preedge_intensity: Any
    main_intensity: Any
    preedge_peak_eV: Any


def _preedge_block(
    block: np.ndarray, *, e: np.ndarray, pre: tuple[float, float], main: tuple[float, float],
    peak_sl: slice, k: int,
) -> np.ndarray:
    y = np.asarray(block, dtype=np.float64)
    shape = y.shape[:-1]
    y = y.reshape(-1, y.shape[-1])
    scale = (e[-1] - e[0]) / (len(e) - 1)
    F = cumulative(y)
    ip = window_integral(F, e[0], scale, np.asarray(pre[0]), np.asarray(pre[1]))
    im = window_integral(F, e[0], scale, np.asarray(main[0]), np.asarray(main[1]))
    s2 = noise_sigma(y) ** 2
    n_pre = (pre[1] - pre[0]) / scale
    n_main = (main[1] - main[0]) / scale
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = ip / im
        sig = np.abs(ratio) * np.sqrt(s2 * n_pre / ip**2 + s2 * n_main / im**2)
    peak = peak_block(y, sl=peak_sl, k=k, e_window=e[peak_sl])
    out = np.stack([ratio, sig, ip, im, peak], axis=-1)
    return out.reshape(shape + (5,))


def oxygen_k_preedge_ratio(
    signal: Any,
    energy_eV: Any,
    *,
    preedge_window_eV: tuple[float, float] = DEFAULT_PREEDGE_WINDOW_EV,
    main_window_eV: tuple[float, float] = DEFAULT_MAIN_WINDOW_EV,
    fit_half_width_eV: float = 0.5,
) -> PreEdgeRatio:
    """O-K pre-edge / main-peak intensity ratio per spectrum.

    Parameters
    ----------
    signal : array (..., E)
        Background-subtracted O-K spectra (preferably Fourier-ratio deconvolved), energy last.
    energy_eV : array (E,)
        Calibrated uniform energy axis in eV.
    preedge_window_eV, main_window_eV : (float, float)
        Integration windows (eV); they must not overlap. Window ends may fall inside a channel;
        partial channels count in proportion.
    fit_half_width_eV : float
        Half-width of the parabola locating the pre-edge maximum (eV).

    Returns
    -------
    PreEdgeRatio
    """
    signal = as_float(signal, name="signal")
    e = np.asarray(energy_eV, dtype=np.float64)
    _, scale = check_energy_axis(e, signal.shape[-1])
    check_finite(signal, name="signal")
    pre = (float(preedge_window_eV[0]), float(preedge_window_eV[1]))
    main = (float(main_window_eV[0]), float(main_window_eV[1]))
    for name, w in (("pre-edge", pre), ("main-peak", main)):
        if not w[1] > w[0]:
            raise InputError(f"O-K {name} window {w} eV must be (start, end) with end > start.")
        if w[0] < e[0] or w[1] > e[-1]:
            raise InputError(
                f"O-K {name} window {w[0]:.1f}-{w[1]:.1f} eV lies outside the energy range "
                f"{e[0]:.1f}-{e[-1]:.1f} eV; the O K edge (532 eV) must be in the core-loss range "
                "with ~20 eV after it, or pass windows that fit."
            )
    if pre[1] > main[0]:
        raise InputError(f"O-K windows overlap: pre-edge {pre} eV and main peak {main} eV.")
    k = max(1, int(round(fit_half_width_eV / scale)))
    i0 = int(np.ceil((pre[0] - e[0]) / scale))
    i1 = int(np.floor((pre[1] - e[0]) / scale)) + 1
    if i1 - i0 < 2 * k + 3:
        raise InputError(
            f"O-K pre-edge window {pre} eV is only {i1 - i0} channels; widen it to >= {2 * k + 3}."
        )
    out = map_spectra(
        _preedge_block, signal, out_channels=5, dtype=np.float64, name="signal",
        e=e, pre=pre, main=main, peak_sl=slice(i0, i1), k=k,
    )
    return PreEdgeRatio(*(out[..., i] for i in range(5)))
