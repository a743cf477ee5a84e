"""Edge kinds: how each kind of ionisation edge is measured (issue 21).

A small strategy object per kind replaces the branches on edge names in the pipeline:

* :class:`EdgeKind` - any edge: onset and first-peak position in windows placed on the measured
  edge and cut to the measured range;
* :class:`WhiteLineEdge` - 3d-metal L2,3 white lines: L3 located on the data, L3/L2 (not for the
  crystal-field split Sc-Cr lines), energy-scale flag on the L3 maximum;
* :class:`OxygenKEdge` - O K: the pre-edge / main-peak ratio, and room below 532 eV for the
  pre-peak of layered oxides in the energy-scale flag.

Every kind writes ``"<edge>.<quantity>"`` arrays (the public map names) and says in ``notes``
what it could not measure and why. :func:`edge_kind` picks the kind of an :class:`Edge`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from layerscope.errors import InputError
from layerscope.spectra.edges import Edge, edge_onset, l3_peak_position
from layerscope.spectra.preedge import oxygen_k_preedge_ratio
from layerscope.spectra.whiteline import white_line_ratio

__all__ = ["EdgeKind", "WhiteLineEdge", "OxygenKEdge", "edge_kind", "edge_windows", "measured_windows"]

#: Early 3d metals whose L3/L2 needs hand-set windows (crystal-field split, overlapping lines).
_CRYSTAL_FIELD_SPLIT = {"Sc", "Ti", "V", "Cr"}


def edge_windows(edge: Edge) -> dict[str, tuple[float, float]]:
    """Default analysis windows of an edge (eV), from its tabulated onsets.

    ``first_peak``: onset and first-peak search (L3, or the O-K pre-edge);
    ``edge``: the whole edge for chemical shifts and linear combinations.
    """
    on = edge.onset_eV
    if edge.second_onset_eV is not None:
        split = edge.second_onset_eV - on
        return {"first_peak": (on - 8.0, on + 0.75 * split), "edge": (on - 8.0, edge.second_onset_eV + 12.0)}
    return {"first_peak": (on - 8.0, on + 4.0), "edge": (on - 8.0, on + 25.0)}


def _clip(window: tuple[float, float], e: np.ndarray) -> tuple[float, float] | None:
    lo, hi = max(window[0], float(e[0])), min(window[1], float(e[-1]))
    return (lo, hi) if hi - lo >= 6 * float(e[1] - e[0]) else None


def _measured_windows(ed: Edge, e: np.ndarray, mean: np.ndarray) -> dict[str, Any]:
    """Analysis windows of an edge, placed on the measured first peak and cut to the measured range."""
    wins = edge_windows(ed)
    out: dict[str, Any] = {"edge": _clip(wins["edge"], e), "first_peak": _clip(wins["first_peak"], e), "l3": None}
    if ed.has_white_lines and ed.second_onset_eV is not None:
        split = ed.second_onset_eV - ed.onset_eV
        # Sc-Cr: crystal-field split lines, the L2 e_g line can be the strongest - search L3 below L2
        top = ed.onset_eV + 0.75 * split if ed.element in _CRYSTAL_FIELD_SPLIT else ed.second_onset_eV + 5.0
        wide = _clip((ed.onset_eV - 15.0, top), e)
        if wide is not None:
            m = (e >= wide[0]) & (e <= wide[1]) & np.isfinite(mean)
            l3 = float(e[m][np.argmax(mean[m])])
            out["l3"] = l3
            out["first_peak"] = _clip((l3 - 8.0, l3 + 0.5 * split), e)
            out["edge"] = _clip((l3 - 10.0, l3 + split + 12.0), e)
    return out


def _positions(sig: Any, e: np.ndarray, ed: Edge, wins: dict[str, Any], arrays: dict[str, Any],
               notes: list[str]) -> None:
    name = ed.name
    if wins["first_peak"] is None:
        notes.append(f"{name}: onset and first peak not measured (the first-peak window is outside the range)")
        return
    for key, fn in ((f"{name}.onset_eV", edge_onset), (f"{name}.peak_eV", l3_peak_position)):
        try:
            arrays[key] = fn(sig, e, window_eV=wins["first_peak"])
        except InputError as err:
            notes.append(f"{name}: {key.split('.')[1]} not measured ({err})")


def _white_lines(sig: Any, e: np.ndarray, ed: Edge, wins: dict[str, Any], method: str, arrays: dict[str, Any],
                 notes: list[str]) -> None:
    name = ed.name
    if ed.element in _CRYSTAL_FIELD_SPLIT:
        notes.append(f"{name}: no L3/L2 - in early 3d metals (Sc-Cr) the L3 and L2 lines are split by the crystal "
                     "field and overlap")
        return
    search = (wins["l3"] - 3.0, wins["l3"] + 3.0) if wins.get("l3") is not None else None
    split = ed.second_onset_eV - ed.onset_eV
    if wins.get("l3") is not None and float(e[-1]) < wins["l3"] + split + 13.0:
        notes.append(f"{name}: L3/L2 not measured - the range ends at {float(e[-1]):.1f} eV, before the continuum "
                     f"10 eV beyond L2 (~{wins['l3'] + split + 13:.0f} eV)")
        return
    try:
        cont = None
        if wins.get("l3") is not None:
            cont = (wins["l3"] + split + 10.0, min(wins["l3"] + split + 30.0, float(e[-1])))
        wl = white_line_ratio(sig, e, edge=ed, method=method, l3_search_eV=search, continuum_window_eV=cont)
    except InputError as err:
        notes.append(f"{name}: L3/L2 not measured ({err})")
        return
    arrays[f"{name}.l3_l2"] = wl.ratio
    arrays[f"{name}.l3_l2_sigma"] = wl.sigma


def _preedge(sig: Any, e: np.ndarray, opts: Any, arrays: dict[str, Any], notes: list[str]) -> None:
    pre, main = opts.preedge_window_eV, opts.main_window_eV
    if pre[0] < float(e[0]) or main[1] > float(e[-1]):
        notes.append(f"O_K: pre-edge ratio not measured - its windows {pre[0]:g}-{pre[1]:g} and {main[0]:g}-{main[1]:g} eV "
                     f"are not inside the range {float(e[0]):.1f}-{float(e[-1]):.1f} eV (give --preedge-window/--main-window)")
        return
    pr = oxygen_k_preedge_ratio(sig, e, preedge_window_eV=pre, main_window_eV=main)
    arrays["O_K.preedge_ratio"] = pr.ratio
    arrays["O_K.preedge_ratio_sigma"] = pr.sigma
    arrays["O_K.preedge_peak_eV"] = pr.preedge_peak_eV


class EdgeKind:
    """Any edge: onset and first-peak position; subclasses add what their kind has."""

    #: energy-scale flag: room (eV) below the tabulated onset (None: the symmetric tolerance)
    below_tolerance_eV: float | None = None
    #: energy-scale flag on the L3 maximum and the extra room for crystal-field split lines
    white_lines: bool = False
    crystal_field_split: bool = False

    def windows(self, ed: Edge, e: np.ndarray, mean: np.ndarray) -> dict[str, Any]:
        """Analysis windows placed on the measured mean spectrum and cut to the range."""
        return _measured_windows(ed, e, mean)

    def measure(self, sig: Any, e: np.ndarray, ed: Edge, wins: dict[str, Any], opts: Any,
                arrays: dict[str, Any], notes: list[str], quantifiable: bool) -> None:
        """Add this edge's arrays; ``quantifiable`` is False when no background could be removed."""
        _positions(sig, e, ed, wins, arrays, notes)


class WhiteLineEdge(EdgeKind):
    """3d-metal L2,3 white lines (Sc-Cu)."""

    white_lines = True

    def __init__(self, crystal_field_split: bool = False) -> None:
        self.crystal_field_split = crystal_field_split

    def measure(self, sig: Any, e: np.ndarray, ed: Edge, wins: dict[str, Any], opts: Any,
                arrays: dict[str, Any], notes: list[str], quantifiable: bool) -> None:
        super().measure(sig, e, ed, wins, opts, arrays, notes, quantifiable)
        if quantifiable:
            _white_lines(sig, e, ed, wins, opts.whiteline_method, arrays, notes)


class OxygenKEdge(EdgeKind):
    """O K: pre-edge ratio; its pre-peak lies up to ~4 eV below the tabulated 532 eV."""

    below_tolerance_eV = 4.5

    def measure(self, sig: Any, e: np.ndarray, ed: Edge, wins: dict[str, Any], opts: Any,
                arrays: dict[str, Any], notes: list[str], quantifiable: bool) -> None:
        super().measure(sig, e, ed, wins, opts, arrays, notes, quantifiable)
        if quantifiable:
            _preedge(sig, e, opts, arrays, notes)


def edge_kind(ed: Edge) -> EdgeKind:
    """The :class:`EdgeKind` that measures ``ed``."""
    if ed.has_white_lines:
        return WhiteLineEdge(crystal_field_split=ed.element in _CRYSTAL_FIELD_SPLIT)
    if ed.name == "O_K":
        return OxygenKEdge()
    return EdgeKind()


def measured_windows(ed: Edge, e: np.ndarray, mean: np.ndarray) -> dict[str, Any]:
    """Public name of the measured-window placement (see :meth:`EdgeKind.windows`)."""
    return _measured_windows(ed, e, mean)
