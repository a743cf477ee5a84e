"""The options of ``layerscope xrd`` and ``layerscope kinetics`` as frozen values (issue 21).

:func:`layerscope.diffraction.workflow.analyse_xrd` and
:func:`~layerscope.diffraction.workflow.analyse_kinetics` take the data already read and these
options; ``run_xrd`` and ``run_kinetics`` keep their keyword interfaces and build them. Invalid
values are refused when the options are made, in one line naming the CLI option.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from layerscope.diffraction.layered import LAYERED_REFERENCES, ROCK_SALT_REFERENCES
from layerscope.diffraction.pattern import RADIATIONS
from layerscope.errors import InputError

__all__ = ["XRDOptions", "KineticsOptions"]


def _positive(name: str, value: float | None, example: str) -> None:
    """Refuse ``value`` (of CLI option ``name``) unless it is None or a finite positive number."""
    if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise InputError(f"{name} {value}: give a positive number, e.g. {name} {example}.")


def _floats(values: Sequence[float] | None) -> tuple[float, ...] | None:
    """``values`` as a tuple of floats (None stays None)."""
    return None if values is None else tuple(float(v) for v in values)


@dataclass(frozen=True)
class XRDOptions:
    """Everything the layered-oxide XRD analysis needs besides the patterns.

    Attributes
    ----------
    radiation : str or None
        ``--radiation``: anode (Cu, Co, Mo ...) for files without a wavelength; overrides a file's own.
    wavelength_A : float or None
        ``--wavelength-a``: a single wavelength (Å) for monochromatic text data.
    reference : str, (a_A, c_A) or None
        ``--reference``: starting lattice (LiCoO2, NMC811 ...); None: found from (003) and (104).
    instrument_fwhm_deg : float or None
        ``--instrument-fwhm-deg``: instrumental FWHM (deg 2θ) removed before Williamson-Hall.
    rock_salt : str or None
        ``--rock-salt``: also identify this rock-salt phase (NiO, CoO, MnO) in the first pattern.
    labels : tuple of float or None
        ``--labels``: series coordinate per pattern (default 0, 1, 2 ...).
    label_name : str
        ``--label-name``: name and unit of the labels (time_s, temperature_C, voltage_V).
    scheduler : Any
        ``--scheduler``: where a series is fanned out (not an analysis parameter; not recorded).
    """

    radiation: str | None = None
    wavelength_A: float | None = None
    reference: str | tuple[float, float] | None = None
    instrument_fwhm_deg: float | None = None
    rock_salt: str | None = None
    labels: tuple[float, ...] | None = None
    label_name: str = "index"
    scheduler: Any = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.radiation is not None and self.wavelength_A is not None:
            raise InputError(f"--radiation {self.radiation} and --wavelength-a {self.wavelength_A}: give one of "
                             "them, not both.")
        if self.radiation is not None and self.radiation.strip().capitalize() not in RADIATIONS:
            raise InputError(f"--radiation {self.radiation!r} unknown; give one of {', '.join(sorted(RADIATIONS))} "
                             "or --wavelength-a for a single wavelength.")
        _positive("--wavelength-a", self.wavelength_A, "1.5406")
        _positive("--instrument-fwhm-deg", self.instrument_fwhm_deg, "0.05")
        if isinstance(self.reference, str) and self.reference not in LAYERED_REFERENCES:
            raise InputError(f"--reference {self.reference!r} unknown; give one of "
                             f"{', '.join(sorted(LAYERED_REFERENCES))}.")
        if self.reference is not None and not isinstance(self.reference, str):
            a, c = self.reference
            _positive("reference a_A", a, "2.82")
            _positive("reference c_A", c, "14.05")
            object.__setattr__(self, "reference", (float(a), float(c)))
        if self.rock_salt is not None and self.rock_salt not in ROCK_SALT_REFERENCES:
            raise InputError(f"--rock-salt {self.rock_salt!r} unknown; give one of "
                             f"{', '.join(sorted(ROCK_SALT_REFERENCES))}.")
        if not str(self.label_name).strip():
            raise InputError("--label-name is empty; name the series coordinate with its unit, e.g. --label-name time_s.")
        object.__setattr__(self, "labels", _floats(self.labels))

    def to_dict(self) -> dict[str, Any]:
        """The analysis parameters (everything but the scheduler), JSON-safe."""
        return {"radiation": self.radiation, "wavelength_A": self.wavelength_A,
                "reference": list(self.reference) if isinstance(self.reference, tuple) else self.reference,
                "instrument_fwhm_deg": self.instrument_fwhm_deg, "rock_salt": self.rock_salt,
                "labels": None if self.labels is None else list(self.labels), "label_name": self.label_name}


@dataclass(frozen=True)
class KineticsOptions:
    """Everything the oxygen-release kinetics needs besides the heating runs.

    Attributes
    ----------
    signal : str
        ``--signal``: name of the O2 release column (e.g. an m/z 32 ion current); needed to read the files.
    heating_rates_K_min : tuple of float or None
        ``--heating-rates``: K/min, one per file, for files without ``time_s``.
    window_K : float
        ``--window-k``: smoothing window of the release curve, K.
    """

    signal: str = ""
    heating_rates_K_min: tuple[float, ...] | None = None
    window_K: float = 10.0

    def __post_init__(self) -> None:
        _positive("--window-k", self.window_K, "10")
        rates = _floats(self.heating_rates_K_min)
        for r in rates or ():
            _positive("--heating-rates value", r, "2,5,10,20")
        object.__setattr__(self, "heating_rates_K_min", rates)

    def to_dict(self) -> dict[str, Any]:
        """The analysis parameters, JSON-safe (the keys the provenance has always used)."""
        return {"signal": self.signal,
                "heating_rates": None if self.heating_rates_K_min is None else list(self.heating_rates_K_min),
                "window_K": self.window_K}
