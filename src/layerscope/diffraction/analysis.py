"""Stages of the XRD and kinetics analyses (issue 21): read once, fit, peak temperatures, provenance.

:func:`layerscope.diffraction.workflow.analyse_xrd` and
:func:`~layerscope.diffraction.workflow.analyse_kinetics` run them on data already read; nothing
here writes a file or draws a figure. :func:`read_patterns` and :func:`read_thermal_curves` are
where the files are read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from layerscope.diffraction.kinetics import ThermalCurve, peak_temperature, read_thermal_curve
from layerscope.diffraction.layered import LayeredResult, NotLayeredError, analyse_layered, analyse_rock_salt
from layerscope.diffraction.options import KineticsOptions, XRDOptions
from layerscope.diffraction.readers import Pattern, read_pattern
from layerscope.errors import InputError
from layerscope.provenance import Provenance

__all__ = ["read_patterns", "read_thermal_curves", "layered_results", "rock_salt_result", "peak_table",
           "sources_provenance"]


def read_patterns(paths: Sequence[str | Path], options: XRDOptions) -> list[Pattern]:
    """Read every pattern with the wavelength of ``options`` (``--radiation`` / ``--wavelength-a``)."""
    return [read_pattern(p, radiation=options.radiation, wavelength_A=options.wavelength_A) for p in paths]


def read_thermal_curves(paths: Sequence[str | Path], options: KineticsOptions) -> list[ThermalCurve]:
    """Read one heating run per file: the ``--signal`` column, the heating rate from time_s or ``--heating-rates``."""
    rates = options.heating_rates_K_min
    if rates is not None and len(rates) != len(paths):
        raise InputError(f"--heating-rates has {len(rates)} values for {len(paths)} files; give one per file.")
    if not options.signal:
        raise InputError("--signal is empty; name the O2 release column of the files, e.g. --signal mz32.")
    return [read_thermal_curve(p, signal_column=options.signal, heating_rate_K_min=None if rates is None else rates[k])
            for k, p in enumerate(paths)]


def layered_results(patterns: list[Pattern], options: XRDOptions) -> list[LayeredResult]:
    """Layered-oxide fit of every pattern (fanned out with :func:`layerscope.parallel.map_tasks`).

    Returns
    -------
    list of LayeredResult
        Empty when a single pattern shows no layered oxide and ``--rock-salt`` asks for a rock salt alone.
    """
    from layerscope.parallel import map_tasks

    reference, inst = options.reference, options.instrument_fwhm_deg

    def one(p: Pattern) -> LayeredResult:
        try:
            return analyse_layered(p, reference=reference, instrument_fwhm_deg=inst)
        except NotLayeredError:
            if len(patterns) == 1:
                raise
            raise NotLayeredError(f"{p.source or 'pattern'}: no layered-oxide (003)/(104) in this file of the series; "
                                  "every file of a series must show the layered oxide: leave it out (or run it "
                                  "alone with --rock-salt NiO).") from None

    if len(patterns) > 1:
        return map_tasks(one, patterns, scheduler=options.scheduler, progress=False, description="XRD patterns")
    try:
        return [one(patterns[0])]
    except NotLayeredError:
        if not options.rock_salt:
            raise
        return []  # a rock-salt phase alone, as asked with --rock-salt


def rock_salt_result(patterns: list[Pattern], results: list[LayeredResult], options: XRDOptions
                     ) -> dict[str, Any] | None:
    """The ``--rock-salt`` phase in the first pattern (None when not asked); refuses when nothing is found."""
    rs = analyse_rock_salt(patterns[0], phase=options.rock_salt) if options.rock_salt else None
    if not results and not rs["identified"]:
        raise NotLayeredError(f"{patterns[0].source or 'pattern'}: neither a layered oxide nor {options.rock_salt} "
                              "rock salt (its (200) and one more reflection) found; check the file and --rock-salt.")
    return rs


def peak_table(curves: Sequence[ThermalCurve], options: KineticsOptions) -> pd.DataFrame:
    """Temperature of maximum release of every run (rows in the order of ``curves``)."""
    rows = []
    for c in curves:
        pk = peak_temperature(c.temperature_K, c.signal, window_K=options.window_K)
        rows.append({"source": str(c.source) if c.source else "", "heating_rate_K_min": c.heating_rate_K_min,
                     "heating_rate_from": c.heating_rate_from, **pk})
    return pd.DataFrame(rows)


def sources_provenance(items: Sequence[Any], parameters: dict[str, Any]) -> Provenance:
    """One provenance record: the sha256 of every item's source file (of its arrays when in memory)."""
    inputs: list[Any] = []
    for it in items:
        src = getattr(it, "source", None)
        if src is not None and Path(src).is_file():
            inputs.append(Path(src))
        else:
            names = ("two_theta_deg", "intensity", "temperature_K", "signal")
            inputs.append(np.concatenate([np.asarray(getattr(it, n), float).ravel() for n in names if hasattr(it, n)]))
    return Provenance.create(inputs, parameters=parameters)
