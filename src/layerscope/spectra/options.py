"""The options of the EELS analysis as one frozen value (issue 21).

:func:`layerscope.spectra.pipeline.analyse` takes the data and an :class:`EELSOptions`;
:func:`~layerscope.spectra.pipeline.analyse_eels` keeps its keyword interface and builds the
options from it. Invalid choices are refused when the options are made, naming the CLI option.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from layerscope.errors import InputError
from layerscope.spectra.background import BACKGROUND_METHODS
from layerscope.spectra.preedge import DEFAULT_MAIN_WINDOW_EV, DEFAULT_PREEDGE_WINDOW_EV

__all__ = ["EELSOptions"]


@dataclass(frozen=True)
class EELSOptions:
    """Everything :func:`~layerscope.spectra.pipeline.analyse` needs besides the spectra.

    Attributes
    ----------
    edges : tuple of str
        Edge names (``("Mn_L", "O_K")``); empty: analyse a low loss (ZLP, t/lambda).
    pixel_size_nm : float or None
        Pixel size / scan step (nm) for files without spatial calibration.
    offset_eV, scale_eV : float or None
        Energy calibration (eV) for files without an energy unit.
    lazy : bool
        Load files lazily (Dask).
    align : bool
        Align the ZLP of every low-loss pixel to 0 eV.
    dual_eels : bool or None
        Low and core loss recorded together; None: decided from the files' metadata.
    deconvolve : bool
        Fourier-ratio deconvolution with the low loss.
    background_method : str
        ``power_law``, ``power_law_lsq``, ``exponential``, ``lcpl`` or ``none``.
    background_windows : mapping of str -> (float, float)
        Pre-edge fit window per edge (eV).
    on_invalid : {"raise", "nan"}
        Pixels without positive counts in a fit window.
    whiteline_method : {"pearson", "second_derivative"}
        L3/L2 method.
    preedge_window_eV, main_window_eV : (float, float)
        O-K pre-edge and main-peak windows (eV).
    ratio_width_eV : float
        Integration width for elemental ratios (eV).
    beam_energy_keV, collection_angle_mrad, convergence_angle_mrad : float or None
        Microscope settings (default: the file's metadata).
    k_factors : mapping of str -> float
        ``{"O_K/Co_L": k}``.
    energy_shift_eV : float
        Added to the core-loss energy axis (eV).
    align_edge : (str, float) or None
        Align the axis so that this edge's onset sits at this energy (eV).
    resolution_eV : float or None
        Energy resolution (FWHM, eV) of the core loss for reference matching.
    scheduler : Any
        Where lazy work runs (not an analysis parameter; not recorded).
    """

    edges: tuple[str, ...] = ()
    pixel_size_nm: float | None = None
    offset_eV: float | None = None
    scale_eV: float | None = None
    lazy: bool = False
    align: bool = True
    dual_eels: bool | None = None
    deconvolve: bool = True
    background_method: str = "power_law"
    background_windows: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    on_invalid: str = "raise"
    whiteline_method: str = "pearson"
    preedge_window_eV: tuple[float, float] = DEFAULT_PREEDGE_WINDOW_EV
    main_window_eV: tuple[float, float] = DEFAULT_MAIN_WINDOW_EV
    ratio_width_eV: float = 50.0
    beam_energy_keV: float | None = None
    collection_angle_mrad: float | None = None
    convergence_angle_mrad: float | None = None
    k_factors: Mapping[str, float] = field(default_factory=dict)
    energy_shift_eV: float = 0.0
    align_edge: tuple[str, float] | None = None
    resolution_eV: float | None = None
    scheduler: Any = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.background_method not in BACKGROUND_METHODS + ("none",):
            raise InputError(f"--background {self.background_method!r}: choose one of "
                             f"{', '.join(BACKGROUND_METHODS + ('none',))}.")
        if self.whiteline_method not in ("pearson", "second_derivative"):
            raise InputError(f"--whiteline {self.whiteline_method!r}: choose pearson or second_derivative.")
        if self.on_invalid not in ("raise", "nan"):
            raise InputError(f"on_invalid={self.on_invalid!r}: 'raise' or 'nan' (--nan-invalid).")
        if self.resolution_eV is not None and not self.resolution_eV > 0:
            raise InputError(f"--resolution-ev {self.resolution_eV}: give the resolution as a positive FWHM in eV.")
        if isinstance(self.edges, str):
            object.__setattr__(self, "edges", (self.edges,))
        object.__setattr__(self, "background_windows", dict(self.background_windows or {}))
        object.__setattr__(self, "k_factors", dict(self.k_factors or {}))
