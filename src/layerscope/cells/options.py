"""The options of ``layerscope cycling`` as one frozen value (issue 21).

:func:`layerscope.cells.workflow.analyse_cycling` takes the cycler data and a
:class:`CyclingOptions`; :func:`~layerscope.cells.workflow.run_cycling` keeps its keyword
interface and builds the options from it. Invalid values are refused when the options are made,
in one line naming the CLI option.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from layerscope.errors import InputError

__all__ = ["CyclingOptions"]

#: Keywords of :func:`layerscope.cells.dqdv.dqdv` that ``dqdv_options`` may set.
DQDV_KEYWORDS = ("voltage_step_V", "window_V", "n_capacity_points", "capacity_window_fraction", "polyorder")


@dataclass(frozen=True)
class CyclingOptions:
    """Everything the cycling analysis needs besides the cycler data.

    Attributes
    ----------
    active_mass_mg : float or None
        ``--mass-mg``: active mass, mg (specific capacities only with it; never from the file).
    electrode : {"cathode", "anode"}
        ``--electrode``: Coulombic efficiency as discharge/charge (cathode) or charge/discharge (anode).
    reference_cycle : int or None
        ``--reference-cycle``: cycle that retention is relative to (default: the first complete one).
    pairs : bool
        ``--pairs``: number cycles as charge/discharge pairs, not by the cycler's counter.
    direction : {"charge", "discharge"}
        ``--direction``: half cycle used for dQ/dV.
    nominal_capacity_mAh : float or None
        ``--nominal-capacity-mah``: capacity that defines 1C, mAh (enables the rate table).
    dqdv_window_mV : float
        ``--dqdv-window-mv``: Savitzky-Golay window of dQ/dV, mV.
    dqdv_step_mV : float
        Voltage grid step of dQ/dV, mV (no CLI option).
    peak_windows : mapping of str -> (float, float) or None
        Named dQ/dV peak windows, V (default: Ni-rich NMC on charge, none on discharge; no CLI option).
    dqdv_options : mapping
        Further keywords of :func:`layerscope.cells.dqdv.dqdv` (``polyorder`` ...; no CLI option).
    """

    active_mass_mg: float | None = None
    electrode: str = "cathode"
    reference_cycle: int | None = None
    pairs: bool = False
    direction: str = "charge"
    nominal_capacity_mAh: float | None = None
    dqdv_window_mV: float = 15.0
    dqdv_step_mV: float = 1.0
    peak_windows: Mapping[str, tuple[float, float]] | None = None
    dqdv_options: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.electrode not in ("cathode", "anode"):
            raise InputError(f"--electrode {self.electrode!r}: choose cathode or anode.")
        if self.direction not in ("charge", "discharge"):
            raise InputError(f"--direction {self.direction!r}: choose charge or discharge.")
        for name, value in (("--mass-mg", self.active_mass_mg), ("--nominal-capacity-mah", self.nominal_capacity_mAh)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise InputError(f"{name} {value:g}: give a positive number (e.g. {name} 12.5).")
        if self.reference_cycle is not None and (int(self.reference_cycle) != self.reference_cycle
                                                 or self.reference_cycle < 0):
            raise InputError(f"--reference-cycle {self.reference_cycle}: give a cycle number (0 or more).")
        unknown = sorted(set(self.dqdv_options or {}) - set(DQDV_KEYWORDS))
        if unknown:
            raise InputError(f"dqdv_options {unknown}: not a dQ/dV setting; use {', '.join(DQDV_KEYWORDS)}.")
        object.__setattr__(self, "dqdv_options", dict(self.dqdv_options or {}))
        # a window or step given in V through dqdv_options is the one used; the mV fields record it
        for key, name in (("window_V", "dqdv_window_mV"), ("voltage_step_V", "dqdv_step_mV")):
            if key in self.dqdv_options:
                object.__setattr__(self, name, 1000.0 * float(self.dqdv_options[key]))
        if self.peak_windows is not None:
            object.__setattr__(self, "peak_windows", {k: tuple(v) for k, v in self.peak_windows.items()})
        step_V, window_V = self.dqdv["voltage_step_V"], self.dqdv["window_V"]
        if not (math.isfinite(step_V) and step_V > 0):
            raise InputError(f"dQ/dV voltage step {step_V * 1000:g} mV: give a positive step.")
        if not window_V >= 3 * step_V:
            raise InputError(f"--dqdv-window-mv {window_V * 1000:g}: the dQ/dV window must span at least 3 voltage "
                             f"steps ({3000 * step_V:g} mV); give a wider window, e.g. --dqdv-window-mv 15.")

    @property
    def dqdv(self) -> dict[str, float]:
        """The keywords given to :func:`layerscope.cells.dqdv.dqdv` (voltages in V)."""
        return {"voltage_step_V": self.dqdv_step_mV / 1000.0, "window_V": self.dqdv_window_mV / 1000.0,
                **self.dqdv_options}

    def to_dict(self) -> dict[str, Any]:
        """Every option, JSON-safe (recorded in the provenance)."""
        out = asdict(self)
        out["peak_windows"] = None if self.peak_windows is None else {k: list(v) for k, v in self.peak_windows.items()}
        return out
