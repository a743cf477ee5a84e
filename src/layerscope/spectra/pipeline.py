"""The EELS chain on containers: align, thickness, background, deconvolution, edge analyses, fronts.

:func:`analyse_eels` takes a core loss (``Spectrum``, ``LineScan`` or ``SpectrumImage``, eager or
lazy) and optionally its low loss, runs every step of :mod:`layerscope.spectra` and returns an
:class:`EELSAnalysis` with per-pixel maps, a per-pixel table, profiles/fronts, a summary and the
provenance. ``layerscope eels`` is a thin wrapper around it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from layerscope.errors import ConvergenceError, InputError, LayerscopeError
from layerscope.spectra._arrays import is_lazy
from layerscope.spectra.alignment import align_zero_loss
from layerscope.spectra.background import subtract_background
from layerscope.spectra.deconvolution import fourier_ratio
from layerscope.spectra.edges import Edge, chemical_shift, edge_onset, parse_edges
from layerscope.spectra.edgekinds import (
    _measured_windows,
    _positions,
    _white_lines,
    edge_kind,
    edge_windows,
)
from layerscope.spectra.fronts import locate_front, locate_front_map
from layerscope.spectra.matching import ResolutionMatch, broaden, match_resolution
from layerscope.spectra.options import EELSOptions
from layerscope.spectra.preedge import (
    DEFAULT_MAIN_WINDOW_EV,
    DEFAULT_PREEDGE_WINDOW_EV,
)
from layerscope.spectra.quantify import elemental_ratio
from layerscope.spectra.references import ReferenceSet, load_reference_set
from layerscope.spectra.sanity import (
    background_flags,
    check_zero_loss,
    edge_position_flags,
    flag,
    overlap_flags,
    range_flags,
)
from layerscope.spectra.thickness import relative_thickness
from layerscope.spectra.valence import valence_from_indicator, valence_from_linear_combination
from layerscope.io.output import writes_folder

__all__ = ["EELSAnalysis", "EELSOptions", "analyse", "analyse_eels", "edge_windows"]


@dataclass
class EELSAnalysis:
    """Everything :func:`analyse_eels` measured.

    Attributes
    ----------
    kind : str
        ``"spectrum"``, ``"line_scan"`` or ``"spectrum_image"``.
    pixel_shape : tuple
        Shape of the maps.
    pixel_size_nm : float or None
        Pixel size (line-scan step) in nm; None for a single spectrum.
    maps : dict of str -> numpy.ndarray
        Per-pixel results, named ``"<edge>.<quantity>"`` (``"t_over_lambda"`` for thickness).
    edge_spectra : dict of str -> (energy_eV, mean spectrum)
        Mean processed spectrum of each edge (after background removal and deconvolution).
    fronts : dict of str -> dict
        Front of each profile/map quantity, or ``{"error": why}``.
    summary : dict
        Key numbers and notes (what was skipped and why).
    parameters : dict
        The options the analysis ran with.
    references : list of dict
        The references used (with provenance).
    """

    kind: str
    pixel_shape: tuple[int, ...]
    pixel_size_nm: float | None
    maps: dict[str, np.ndarray]
    edge_spectra: dict[str, tuple[np.ndarray, np.ndarray]]
    fronts: dict[str, dict[str, Any]]
    summary: dict[str, Any]
    parameters: dict[str, Any]
    references: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[Any] = field(default_factory=list)
    _figure_cache: Any = field(default=None, repr=False, compare=False)

    def table(self) -> pd.DataFrame:
        """One row per pixel with its coordinates (nm) and every map value."""
        n = int(np.prod(self.pixel_shape)) if self.pixel_shape else 1
        cols: dict[str, Any] = {}
        if self.kind == "spectrum_image":
            rows, colsi = np.indices(self.pixel_shape)
            cols["row"] = rows.ravel()
            cols["col"] = colsi.ravel()
            cols["x_nm"] = (colsi.ravel() + 0.5) * self.pixel_size_nm
            cols["y_nm"] = (rows.ravel() + 0.5) * self.pixel_size_nm
        elif self.kind == "line_scan":
            cols["index"] = np.arange(n)
            cols["position_nm"] = (np.arange(n) + 0.5) * self.pixel_size_nm
        else:
            cols["index"] = np.arange(1)
        for k, v in self.maps.items():
            cols[k] = np.asarray(v, dtype=np.float64).reshape(n)
        return pd.DataFrame(cols)

    def provenance(self) -> Any:
        """A :class:`layerscope.provenance.Provenance` of the inputs and parameters."""
        from layerscope.provenance import Provenance

        return Provenance.create(inputs=self.inputs, parameters=self.parameters)

    def section(self, *, title: str = "EELS") -> Any:
        """The report section: maps/profiles, edge spectra, fronts and key numbers."""
        from layerscope.spectra.figures import eels_section

        return eels_section(self, title=title)

    @writes_folder()
    def write(self, out_dir: str | Path, provenance: Any) -> None:
        """Write ``pixels.csv``, ``maps/*.npy``, PNG maps/profiles, ``edges.csv`` and ``summary.json``."""
        from layerscope.io.output import write_summary, write_table
        from layerscope.spectra.figures import write_figures

        out = Path(out_dir)
        write_table(self.table(), out / "pixels.csv")
        (out / "maps").mkdir(exist_ok=True)
        for k, v in self.maps.items():
            np.save(out / "maps" / f"{k}.npy", np.asarray(v))
        rows = []
        for name, (e, y) in self.edge_spectra.items():
            rows.append(pd.DataFrame({"edge": name, "energy_eV": e, "mean_signal": y}))
        if rows:
            write_table(pd.concat(rows, ignore_index=True), out / "edge_spectra.csv")
        write_figures(self, out)
        write_summary(out, self.summary, provenance)


def _container(
    obj: Any, what: str, pixel_size_nm: float | None, lazy: bool,
    offset_eV: float | None = None, scale_eV: float | None = None,
) -> Any:
    from layerscope.containers import LineScan, Spectrum, SpectrumImage
    from layerscope.io import as_container, load

    if isinstance(obj, (str, Path)):
        c = load(obj, pixel_size_nm=pixel_size_nm, lazy=lazy, offset_eV=offset_eV, scale_eV=scale_eV)
    else:
        c = as_container(obj, pixel_size_nm=pixel_size_nm)
    if not isinstance(c, (Spectrum, LineScan, SpectrumImage)):
        raise InputError(
            f"{what}: got a {getattr(c, 'kind', type(c).__name__)}, not a spectrum, line scan or spectrum "
            "image; give an EELS file (msa, dm3/dm4, hspy, two-column text)."
        )
    return c


def _compute(arrays: dict[str, Any], scheduler: Any) -> dict[str, np.ndarray]:
    lazy = {k: v for k, v in arrays.items() if is_lazy(v)}
    out = {k: np.asarray(v) for k, v in arrays.items() if not is_lazy(v)}
    if lazy:
        from layerscope.parallel import compute

        values = compute(*lazy.values(), scheduler=scheduler)
        out.update({k: np.asarray(v) for k, v in zip(lazy, values)})
    return {k: out[k] for k in arrays}


def _mean_spectrum(sig: Any) -> Any:
    if sig.ndim <= 1:
        return sig
    flat = sig.reshape((-1, sig.shape[-1]))
    if is_lazy(flat):
        import dask.array as da

        return da.nanmean(flat, axis=0)
    return np.nanmean(flat, axis=0)


def _is_lowloss_range(e: np.ndarray) -> bool:
    return float(e[0]) < 0.0 < float(e[-1]) or float(e[0]) < 1.0


def _looks_background_subtracted(mean: np.ndarray) -> bool:
    """True when the first channels sit at ~0 relative to the spectrum (a published, background-removed edge)."""
    y = np.asarray(mean, dtype=np.float64)
    y = y[np.isfinite(y)]
    if y.size < 20:
        return False
    top = float(np.percentile(np.abs(y), 99))
    head = y[: max(5, y.size // 20)]
    return top > 0 and abs(float(np.median(head))) < 0.05 * top


def _edge_coverage(ed: Edge, e: np.ndarray, notes: list[str]) -> None:
    """Refuse an edge the range does not reach at all; note what part of it is not measured."""
    e0, e1 = float(e[0]), float(e[-1])
    if e1 < ed.onset_eV + 3.0 or e0 > ed.last_feature_eV + 15.0:
        raise InputError(
            f"edge {ed.name} (onset {ed.onset_eV:.0f} eV) is outside the core-loss energy range {e0:.1f}-{e1:.1f} eV; "
            "remove it from --edges, or give --energy-shift-ev if the energy scale is off"
        )
    if e0 > ed.onset_eV - 5.0:
        notes.append(f"{ed.name}: the range starts at {e0:.1f} eV, less than 5 eV below the tabulated onset "
                     f"({ed.onset_eV:.1f} eV): little or no pre-edge measured")
    if e1 < ed.last_feature_eV + 10.0:
        notes.append(f"{ed.name}: the range ends at {e1:.1f} eV, before the end of the edge "
                     f"({ed.last_feature_eV + 10:.0f} eV): continuum-based numbers not measured")


def _background_window(ed: Edge, e: np.ndarray, edge_list: list[Edge], notes: list[str],
                       flags: list[dict]) -> tuple[float, float] | None:
    """Default pre-edge fit window, shortened to what the range offers (None: less than 2 eV)."""
    end = ed.onset_eV - max(5.0, 0.01 * ed.onset_eV)
    start = max(end - float(np.clip(0.10 * ed.onset_eV, 20.0, 60.0)), float(e[0]))
    for other in edge_list:
        if other.onset_eV < ed.onset_eV and other.name != ed.name:
            start = max(start, other.last_feature_eV + 15.0)
    scale = float(e[1] - e[0])
    if end - start < max(2.0, 4 * scale):
        return None
    if end - start < 5.0:
        flags.append(flag(f"{ed.name}.short_background", f"{ed.name}: only {end - start:.1f} eV of pre-edge background "
                          f"({start:.1f}-{end:.1f} eV) is measured, the extrapolated background is uncertain; give "
                          f"--window {ed.name}=START,END or --background none for background-removed spectra"))
    elif end - start < 10.0:
        notes.append(f"{ed.name}: short background window {start:.1f}-{end:.1f} eV ({end - start:.1f} eV)")
    return (start, end)


def _remove_background(
    data: Any, e: np.ndarray, ed: Edge, edge_list: list[Edge], opts: EELSOptions, params: dict[str, Any],
    notes: list[str], flags: list[dict], mean_raw: np.ndarray,
) -> tuple[Any, tuple[float, float] | None, bool]:
    """``(signal, window or None, quantifiable)``: the background-free edge and whether intensities mean anything."""
    name = ed.name
    if opts.background_method == "none":
        notes.append(f"{name}: background already removed (--background none): no background fit")
        if not _looks_background_subtracted(mean_raw):
            flags.append(flag(f"{name}.background_not_removed", f"{name}: --background none, but the spectrum does "
                              "not start near zero - its background looks present, so intensities, ratios and "
                              "valences include it; drop --background none to fit it"))
        return data, None, True
    window = (opts.background_windows or {}).get(name)
    if window is None:
        if _looks_background_subtracted(mean_raw):
            notes.append(f"{name}: the spectrum starts at ~0 counts, i.e. its background is already removed: no "
                         "background fit (say --background none to make this explicit)")
            return data, None, True
        window = _background_window(ed, e, edge_list, notes, flags)
    if window is None:
        notes.append(f"{name}: no pre-edge background in the range, so the background cannot be removed: L3/L2, "
                     "pre-edge and elemental ratios not measured (give --window or --background none)")
        return data, None, False
    params["background_windows"][name] = [float(window[0]), float(window[1])]
    sig, _ = subtract_background(data, e, window_eV=window, method=opts.background_method,
                                 on_invalid=opts.on_invalid)
    return sig, window, True


def _recorded_together(cl_md: dict[str, Any], ll_md: dict[str, Any]) -> bool:
    """The files' metadata say the low and core loss were recorded together (dual EELS)."""
    if cl_md.get("dual_eels") or ll_md.get("dual_eels"):
        return True
    keys = ("date", "time")
    return all(cl_md.get(k) not in (None, "") for k in keys) and all(cl_md.get(k) == ll_md.get(k) for k in keys)


def _lowloss_step(
    lowloss: Any, cl: Any, data: Any, e: np.ndarray, opts: EELSOptions, arrays: dict[str, Any],
    params: dict[str, Any], notes: list[str], inputs: list[Any],
) -> tuple[Any, np.ndarray, Any, np.ndarray, Any, dict[str, float]]:
    """ZLP check, dual/separate alignment and t/lambda; returns (data, e, ll, lle, I0, zlp info)."""
    llc = _container(lowloss, "low loss", opts.pixel_size_nm, opts.lazy)
    inputs.append(llc)
    nav = tuple(data.shape[:-1])
    ll = llc.data if is_lazy(llc.data) else np.asarray(llc.data, dtype=np.float64)
    lle = np.asarray(llc.energy_eV, dtype=np.float64)
    if tuple(ll.shape[:-1]) != nav and ll.ndim != 1:
        raise InputError(
            f"low loss: pixel shape {tuple(ll.shape[:-1])} differs from the core loss {nav}; give the "
            "low loss recorded at the same pixels (or a single low-loss spectrum)."
        )
    mean_ll = _compute({"m": _mean_spectrum(ll)}, opts.scheduler)["m"]
    zlp = check_zero_loss(mean_ll, lle, source=getattr(llc, "source", None) or "low loss")
    dual = opts.dual_eels
    if dual is None:
        dual = _recorded_together(dict(cl.metadata), dict(llc.metadata))
        notes.append("low and core loss " + ("recorded together according to the files' metadata: dual-EELS "
                     "energy correction applied" if dual else "recorded separately (no shared acquisition time in the "
                     "metadata): the core-loss energy axis is kept (--dual-eels to correct it with the ZLP)"))
    if opts.align:
        if dual and ll.ndim == data.ndim:
            al = align_zero_loss(ll, lle, coreloss=data, coreloss_energy_eV=e)
            data, e = al.coreloss, al.coreloss_energy_eV
        else:
            al = align_zero_loss(ll, lle)
        ll, lle = al.lowloss, al.energy_eV
        arrays["zlp_position_eV"] = al.zlp_position_eV
    params["dual_eels"] = bool(dual and opts.align)
    th = relative_thickness(ll, lle)
    arrays["t_over_lambda"] = th.t_over_lambda
    return data, e, ll, lle, th.zero_loss_intensity, zlp


def _indicators(sig: Any, e: np.ndarray, ed: Edge, method: str) -> dict[str, Any]:
    """L3 (or first-peak) position and, for white lines, L3/L2 of spectra ``sig``; missing ones left out."""
    mean = _compute({"m": _mean_spectrum(sig)}, None)["m"]
    wins = _measured_windows(ed, e, np.asarray(mean, dtype=np.float64))
    out: dict[str, Any] = {}
    scratch: dict[str, Any] = {}
    _positions(sig, e, ed, wins, scratch, [])
    if f"{ed.name}.peak_eV" in scratch:
        out["l3_eV"] = scratch[f"{ed.name}.peak_eV"]
    if ed.has_white_lines:
        _white_lines(sig, e, ed, wins, method, scratch, [])
        if f"{ed.name}.l3_l2" in scratch:
            out["l3_l2"] = scratch[f"{ed.name}.l3_l2"]
            out["l3_l2_sigma"] = scratch[f"{ed.name}.l3_l2_sigma"]
    return out


def _resolutions(entries: list[Any], opts: EELSOptions, zlp: dict[str, float], md: dict[str, Any],
                 notes: list[str], name: str) -> ResolutionMatch | None:
    unknown = opts.resolution_eV or zlp.get("zlp_fwhm_eV") or md.get("energy_resolution_eV")
    refs = [getattr(r, "resolution_eV", None) for r in entries]
    if unknown is None or any(r is None for r in refs):
        notes.append(f"{name}: resolution of the unknown and the references not matched ("
                     + ("give --resolution-ev or a low loss" if unknown is None else
                        "add a resolution_eV column to references.csv") + ")")
        return None
    rm = match_resolution(float(unknown), [float(r) for r in refs])
    notes.append(f"{name}: {rm.note}")
    return rm


def _valence_step(
    ed: Edge, sig: Any, e: np.ndarray, entries: list[Any], opts: EELSOptions, zlp: dict[str, float],
    md: dict[str, Any], arrays: dict[str, Any], params: dict[str, Any], notes: list[str],
) -> None:
    """Valence three ways (L3 position, L3/L2, linear combination) after energy and resolution matching."""
    name = ed.name
    rm = _resolutions(entries, opts, zlp, md, notes, name)
    usig = broaden(sig, e, rm.unknown_sigma_eV) if rm else sig
    rsig = [broaden(r.signal, r.energy_eV, s) if rm else r.signal for r, s in
            zip(entries, rm.reference_sigma_eV if rm else [0.0] * len(entries))]
    vals = [r.valence for r in entries]
    unk = _indicators(usig, e, ed, opts.whiteline_method)
    refi = [_indicators(np.asarray(y), r.energy_eV, ed, opts.whiteline_method) for y, r in zip(rsig, entries)]
    scale = float(e[1] - e[0])
    for key, sig_key, label in (("l3_eV", None, "l3"), ("l3_l2", "l3_l2_sigma", "l3l2")):
        if key not in unk or any(key not in ri for ri in refi):
            continue
        ref_x = [float(np.asarray(ri[key])) for ri in refi]
        isig = unk[sig_key] if sig_key else np.full(np.shape(unk[key]), float(np.hypot(scale / np.sqrt(12), 0.05)))
        try:
            vi = valence_from_indicator(_np(unk[key]), ref_x, vals, indicator_sigma=_np(isig), extrapolate=True)
        except InputError as err:
            notes.append(f"{name}: no {label} valence ({err})")
            continue
        if not np.all(vi.in_range):
            notes.append(f"{name}: valence_{label} extrapolated beyond the references ({key} of the references "
                         f"{min(ref_x):.3g}-{max(ref_x):.3g}) in {int(np.size(vi.in_range) - np.sum(vi.in_range))} "
                         "pixel(s)")
            arrays[f"{name}.valence_{label}_extrapolated"] = ~np.asarray(vi.in_range)
        arrays[f"{name}.valence_{label}"] = vi.valence
        arrays[f"{name}.valence_{label}_sigma"] = vi.sigma
        params[f"{name}.reference_{key}"] = ref_x
    win = _measured_windows(ed, e, np.asarray(_compute({"m": _mean_spectrum(usig)}, None)["m"]))["edge"]
    if win is None:
        return
    lo = max(win[0], max(float(r.energy_eV[0]) for r in entries))
    hi = min(win[1], min(float(r.energy_eV[-1]) for r in entries))
    try:
        lc = valence_from_linear_combination(usig, e, [np.interp(e, r.energy_eV, y) for r, y in zip(entries, rsig)],
                                             vals, window_eV=(lo, hi))
    except InputError as err:
        notes.append(f"{name}: no linear-combination valence ({err})")
        return
    arrays[f"{name}.valence_lc"] = lc.valence
    arrays[f"{name}.valence_lc_sigma"] = lc.sigma
    params[f"{name}.valence_window_eV"] = [lo, hi]
    params[f"{name}.same_resolution"] = bool(rm is not None and rm.same_resolution)


def _np(x: Any) -> np.ndarray:
    return np.asarray(x.compute() if is_lazy(x) else x, dtype=np.float64)


#: Valence methods in order of preference (the L3 position survives resolution differences best).
_VALENCE_ORDER = ("valence_l3", "valence_interp", "valence_l3l2", "valence_lc")


def _valence_summary(maps: dict[str, np.ndarray], edge_names: list[str], flags: list[dict],
                     params: dict[str, Any]) -> dict[str, Any]:
    """Side-by-side valences per edge (median and median sigma per method) with the recommended one.

    Recommended: the linear combination when the unknown and every reference share the energy
    resolution (within 10 %: same instrument, the most precise method), else the L3 position
    (the least sensitive to resolution differences across instruments).
    """
    out: dict[str, Any] = {}
    for name in edge_names:
        methods = {}
        for m in _VALENCE_ORDER:
            v = maps.get(f"{name}.{m}")
            if v is None:
                continue
            fin = v[np.isfinite(v)]
            s = maps.get(f"{name}.{m}_sigma")
            sf = s[np.isfinite(s)] if s is not None else np.array([])
            methods[m] = {"median": float(np.median(fin)) if fin.size else None,
                          "sigma": float(np.median(sf)) if sf.size else None}
        if not methods:
            continue
        same = bool(params.get(f"{name}.same_resolution"))
        order = ("valence_lc",) + _VALENCE_ORDER if same else _VALENCE_ORDER
        rec = next((m for m in order if m in methods and methods[m]["median"] is not None), None)
        why = ("unknown and references share the energy resolution: the linear combination uses the whole edge "
               "and is the most precise" if same else
               "L3-position interpolation is the least sensitive to resolution and background differences between "
               "instruments (Tan et al. 2012)")
        out[name] = {"methods": methods, "recommended": rec, "value": methods[rec]["median"] if rec else None,
                     "why": why + "; the others are shown for comparison"}
        meds = [d["median"] for d in methods.values() if d["median"] is not None]
        if len(meds) >= 2 and max(meds) - min(meds) > 0.5:
            flags.append(flag(f"{name}.valence_methods_disagree", f"{name}: the valence methods disagree by "
                              f"{max(meds) - min(meds):.2f} ({', '.join(f'{k} {v:.2f}' for k, v in zip(methods, meds))}); "
                              "check the energy alignment (--energy-shift-ev) and the references' resolution"))
    return out


def _ratios_step(edge_list: list[Edge], processed: dict[str, Any], quantifiable: dict[str, bool], e: np.ndarray,
                 md: dict[str, Any], opts: EELSOptions, arrays: dict[str, Any], params: dict[str, Any],
                 notes: list[str]) -> None:
    """Elemental ratios O:X with hydrogenic cross sections (or k-factors)."""
    beam = opts.beam_energy_keV if opts.beam_energy_keV is not None else md.get("beam_energy_keV")
    beta = opts.collection_angle_mrad if opts.collection_angle_mrad is not None else md.get("collection_angle_mrad")
    alpha = opts.convergence_angle_mrad if opts.convergence_angle_mrad is not None else md.get("convergence_angle_mrad")
    params.update({"beam_energy_keV": beam, "collection_angle_mrad": beta, "convergence_angle_mrad": alpha})
    if "O_K" not in processed:
        return
    for ed in edge_list:
        if ed.name == "O_K":
            continue
        key = f"O_K/{ed.name}"
        kf = (opts.k_factors or {}).get(key)
        if not (quantifiable["O_K"] and quantifiable[ed.name]):
            notes.append(f"{key}: not computed - no background removed from one of the edges")
            continue
        if kf is None and (beam is None or beta is None):
            notes.append(f"{key}: not computed - beam energy and collection angle unknown (give "
                         "--beam-energy-kev/--collection-angle-mrad) and no --k-factor given")
            continue
        if kf is None and ed.shell not in ("K", "L"):
            notes.append(f"{key}: not computed - no hydrogenic cross section for {ed.name}; give --k-factor")
            continue
        try:
            er = elemental_ratio(
                processed["O_K"], e, "O_K", processed[ed.name], e, ed, width_eV=opts.ratio_width_eV,
                beam_energy_keV=beam, collection_angle_mrad=beta, convergence_angle_mrad=float(alpha or 0.0), k_factor=kf,
            )
        except InputError as err:
            notes.append(f"{key}: not computed ({err})")
            continue
        arrays[f"O_per_{ed.element}"] = er.ratio
        arrays[f"O_per_{ed.element}_sigma"] = er.sigma
        params[f"{key}.sensitivity"] = er.sensitivity
        params[f"{key}.method"] = er.method
        if alpha is None and kf is None:
            notes.append(f"{key}: convergence angle unknown, treated as parallel illumination (alpha = 0)")


def _present_edges(edge_list: list[Edge], md: dict[str, Any]) -> set[str]:
    """Edge names known in the specimen: the analysed ones and every shell of the elements in its formula."""
    import re

    present = {ed.name for ed in edge_list}
    for el in re.findall(r"[A-Z][a-z]?", str(md.get("formula", ""))):
        present.update(f"{el}_{s}" for s in ("K", "L", "M"))
    return present


def _edge_table(names: set[str]) -> dict[str, tuple[float, float]]:
    from layerscope.spectra.edges import get_edge

    table = {}
    for n in names:
        try:
            ed = get_edge(n)
        except InputError:
            continue
        table[n] = (ed.onset_eV, ed.last_feature_eV)
    return table


def _edge_flags(edge_list: list[Edge], maps: dict[str, np.ndarray], raw_means: dict[str, np.ndarray],
                spectra: dict[str, tuple[np.ndarray, np.ndarray]], windows: dict[str, Any], md: dict[str, Any],
                extra_present: set[str]) -> tuple[list[dict], dict[str, Any]]:
    """Sanity flags of every edge from its mean spectrum and the medians of its maps."""
    flags: list[dict] = []
    info: dict[str, Any] = {}
    present = _present_edges(edge_list, md) | extra_present
    from layerscope.spectra.sanity import OVERLAPS

    table = _edge_table(present | {o for v in OVERLAPS.values() for o in v})
    for ed in edge_list:
        name = ed.name
        med = {k: _median(maps.get(f"{name}.{k}")) for k in ("onset_eV", "peak_eV")}
        k = edge_kind(ed)
        flags += edge_position_flags(name, ed.onset_eV, med["onset_eV"], med["peak_eV"], k.white_lines,
                                     crystal_field_split=k.crystal_field_split, below_tolerance_eV=k.below_tolerance_eV)
        wins = {"integration": (ed.onset_eV - 5.0, ed.last_feature_eV + 15.0)}
        if windows.get(name):
            wins = {"background": tuple(windows[name]), **wins}
        flags += overlap_flags(name, wins, present - {name}, table)
        e, sub = spectra[name]
        onset = med["onset_eV"] if med["onset_eV"] is not None else ed.onset_eV
        f, inf = background_flags(name, raw_means[name], sub, e, windows.get(name), onset)
        flags += [_with_suspects(x, name, windows.get(name), present, table) for x in f]
        info[name] = inf
    return flags, info


def _with_suspects(fl: dict, name: str, window: Any, present: set[str],
                   table: dict[str, tuple[float, float]]) -> dict:
    """Name the edges of the overlap table that could spoil this background fit, when not known present."""
    from layerscope.spectra.sanity import OVERLAPS

    if window is None or not fl["code"].endswith((".background_fit", ".negative_signal")):
        return fl
    suspects = [o for o in OVERLAPS.get(name, ()) if o in table and o not in present
                and window[0] - 50.0 <= table[o][1] and table[o][0] <= window[1]]
    if not suspects:
        return fl
    names = ", ".join(f"{o} ({table[o][0]:.0f} eV)" for o in suspects)
    return flag(fl["code"], f"{fl['message']}; if the specimen holds {names.replace('_', ' ')}, that edge lies in or "
                f"just before the window")


def _median(v: Any) -> float | None:
    if v is None:
        return None
    fin = np.asarray(v, dtype=np.float64)[np.isfinite(v)]
    return float(np.median(fin)) if fin.size else None


def analyse_eels(
    coreloss: Any,
    *,
    edges: str | list[str] | None = None,
    lowloss: Any = None,
    references: str | Path | ReferenceSet | None = None,
    pixel_size_nm: float | None = None,
    offset_eV: float | None = None,
    scale_eV: float | None = None,
    lazy: bool = False,
    align: bool = True,
    dual_eels: bool | None = None,
    deconvolve: bool = True,
    background_method: str = "power_law",
    background_subtracted: bool = False,
    background_windows: dict[str, tuple[float, float]] | None = None,
    on_invalid: str = "raise",
    whiteline_method: str = "pearson",
    preedge_window_eV: tuple[float, float] = DEFAULT_PREEDGE_WINDOW_EV,
    main_window_eV: tuple[float, float] = DEFAULT_MAIN_WINDOW_EV,
    ratio_width_eV: float = 50.0,
    beam_energy_keV: float | None = None,
    collection_angle_mrad: float | None = None,
    convergence_angle_mrad: float | None = None,
    k_factors: dict[str, float] | None = None,
    energy_shift_eV: float = 0.0,
    align_edge: tuple[str, float] | None = None,
    resolution_eV: float | None = None,
    scheduler: Any = None,
) -> EELSAnalysis:
    """Run the EELS analysis of a core loss (and its low loss) for the given edges.

    Windows adapt to the measured range: what cannot be measured is listed in the summary's
    notes instead of stopping the run; suspicious numbers are computed and flagged
    (``summary["flags"]``, see :mod:`layerscope.spectra.sanity`).

    Parameters
    ----------
    coreloss : path, container, HyperSpy signal
        Core-loss spectrum, line scan or spectrum image (energy in eV). With ``edges=None`` a
        low loss (range containing 0 eV): only the zero-loss peak and t/lambda are measured.
    edges : str, list of str or None
        Edges to analyse, e.g. ``"Co_L,O_K"``.
    lowloss : path, container or None
        Low loss with the zero-loss peak (refused without one): ZLP alignment, t/lambda,
        Fourier-ratio deconvolution and the energy resolution (ZLP FWHM).
    references : folder, ReferenceSet or None
        Reference spectra of known valence (see :mod:`layerscope.spectra.references`); for edges
        with >= 2 references the valence is measured by L3-position and L3/L2 interpolation and
        by linear combination, after resolution matching, with a recommended value.
    pixel_size_nm : float or None
        Pixel size / scan step (nm) when the file has no spatial calibration.
    offset_eV, scale_eV : float or None
        Energy of the first channel and dispersion (eV) for files without an energy unit.
    lazy : bool
        Load files lazily (Dask).
    align : bool
        Align the ZLP of every low-loss pixel to 0 eV.
    dual_eels : bool or None
        Low and core loss recorded together: apply the ZLP shifts to the core loss too. None
        (default): only when the files' metadata share the acquisition date and time.
    deconvolve : bool
        Fourier-ratio deconvolve each background-subtracted edge with the low loss.
    background_method : str
        One of :data:`layerscope.spectra.background.BACKGROUND_METHODS`, or ``"none"``.
    background_subtracted : bool
        The spectra come with the background removed (same as ``background_method="none"``).
    background_windows : dict or None
        Pre-edge fit window per edge name (eV); default windows otherwise.
    on_invalid : {"raise", "nan"}
        Pixels with no positive counts in a fit window: error, or NaN in the maps.
    whiteline_method : {"pearson", "second_derivative"}
        L3/L2 method (:func:`layerscope.spectra.whiteline.white_line_ratio`).
    preedge_window_eV, main_window_eV : (float, float)
        O-K pre-edge and main-peak windows (eV).
    ratio_width_eV : float
        Integration width of each edge for elemental ratios (eV).
    beam_energy_keV, collection_angle_mrad, convergence_angle_mrad : float or None
        Microscope settings for hydrogenic cross sections (default: the file's metadata).
    k_factors : dict or None
        ``{"O_K/Co_L": k}`` so that ``N_O/N_Co = k I_O/I_Co``; replaces cross sections.
    energy_shift_eV : float
        Added to the core-loss energy axis (calibration offset), eV.
    align_edge : (str, float) or None
        ``("O_K", 532.0)``: shift the energy axis so that the measured onset of this edge (one of
        ``edges``) lies at the given energy (eV) - alignment on a reference edge in the same
        spectrum, e.g. before comparing with references from another instrument.
    resolution_eV : float or None
        Energy resolution (FWHM, eV) of the core loss, for matching references; default: the
        low loss's ZLP FWHM, else the file's metadata.
    scheduler : None, str or distributed.Client
        Where lazy work runs (:func:`layerscope.parallel.scheduler_context`).

    Returns
    -------
    EELSAnalysis
    """
    options = EELSOptions(
        edges=tuple(_edge_names(edges)), pixel_size_nm=pixel_size_nm, offset_eV=offset_eV, scale_eV=scale_eV,
        lazy=lazy, align=align, dual_eels=dual_eels, deconvolve=deconvolve,
        background_method="none" if background_subtracted else background_method,
        background_windows=background_windows or {}, on_invalid=on_invalid, whiteline_method=whiteline_method,
        preedge_window_eV=tuple(preedge_window_eV), main_window_eV=tuple(main_window_eV),
        ratio_width_eV=ratio_width_eV, beam_energy_keV=beam_energy_keV, collection_angle_mrad=collection_angle_mrad,
        convergence_angle_mrad=convergence_angle_mrad, k_factors=k_factors or {}, energy_shift_eV=float(energy_shift_eV),
        align_edge=align_edge, resolution_eV=resolution_eV, scheduler=scheduler,
    )
    return analyse(coreloss, options, lowloss=lowloss, references=references)


def _edge_names(edges: str | list[str] | None) -> list[str]:
    return [x.name for x in parse_edges(edges)] if edges else []


def analyse(coreloss: Any, options: EELSOptions, *, lowloss: Any = None,
            references: str | Path | ReferenceSet | None = None) -> EELSAnalysis:
    """The EELS analysis of a core loss (or, with no edges in ``options``, a low loss).

    Parameters
    ----------
    coreloss : container, HyperSpy signal or path
        Core-loss spectrum, line scan or spectrum image (energy in eV).
    options : EELSOptions
        What to measure and how (see :class:`layerscope.spectra.options.EELSOptions`).
    lowloss : container, path or None
        Low loss with the zero-loss peak.
    references : ReferenceSet, folder or None
        Reference spectra of known valence.

    Returns
    -------
    EELSAnalysis
    """
    cl = _container(coreloss, "core loss", options.pixel_size_nm, options.lazy, options.offset_eV, options.scale_eV)
    if not options.edges:
        return _analyse_lowloss_only(cl, options)
    return _analyse_edges(cl, parse_edges(list(options.edges)), lowloss, references, options)


def _analyse_lowloss_only(cl: Any, opts: EELSOptions) -> EELSAnalysis:
    """ZLP position and width and t/lambda of a low loss given without edges."""
    e = np.asarray(cl.energy_eV, dtype=np.float64)
    if not _is_lowloss_range(e):
        raise InputError(f"'{Path(str(cl.source or 'core loss')).name}': no --edges given and the range "
                         f"{e[0]:.1f}-{e[-1]:.1f} eV holds no zero-loss peak; give --edges, e.g. --edges Mn_L,O_K")
    nav = tuple(cl.data.shape[:-1])
    data = cl.data if is_lazy(cl.data) else np.asarray(cl.data, dtype=np.float64)
    mean = _compute({"m": _mean_spectrum(data)}, opts.scheduler)["m"]
    zlp = check_zero_loss(mean, e, source=cl.source or "low loss")
    arrays: dict[str, Any] = {}
    ll, lle = data, e
    if opts.align:
        al = align_zero_loss(data, e)
        ll, lle = al.lowloss, al.energy_eV
        arrays["zlp_position_eV"] = al.zlp_position_eV
    th = relative_thickness(ll, lle)
    arrays["t_over_lambda"] = th.t_over_lambda
    arrays["elastic_threshold_eV"] = th.threshold_eV
    computed = _compute(arrays, opts.scheduler)
    maps = {k: np.broadcast_to(np.asarray(v, dtype=np.float64), nav).reshape(nav) for k, v in computed.items()}
    kind, psize = _kind_and_size(cl)
    notes = [f"low loss only: zero-loss peak at {zlp['zlp_position_eV']:.2f} eV, FWHM {zlp['zlp_fwhm_eV']:.2f} eV"]
    flags = range_flags({k: _median(v) for k, v in maps.items()})
    summary = _summary(maps, {}, kind, nav, psize, notes, [])
    summary.update({"flags": flags, "zero_loss": zlp})
    params = {"edges": [], "align": bool(opts.align), "mode": "lowloss"}
    return EELSAnalysis(kind=kind, pixel_shape=nav, pixel_size_nm=psize, maps=maps, edge_spectra={},
                        fronts={}, summary=summary, parameters=params, inputs=[cl])


def _kind_and_size(cl: Any) -> tuple[str, float | None]:
    if cl.kind == "spectrum_image":
        return cl.kind, cl.pixel_size_nm
    if cl.kind == "line_scan":
        return cl.kind, float(cl.axis("position").scale)
    return cl.kind, None


def _analyse_edges(cl: Any, edge_list: list[Edge], lowloss: Any, references: Any,
                   opts: EELSOptions) -> EELSAnalysis:
    kind, psize = _kind_and_size(cl)
    nav = tuple(cl.data.shape[:-1])
    data = cl.data
    deconvolve, shift = opts.deconvolve, float(opts.energy_shift_eV)
    if not is_lazy(data):
        data = np.asarray(data, dtype=np.float32 if np.asarray(data).dtype == np.float32 else np.float64)
    e = np.asarray(cl.energy_eV, dtype=np.float64) + shift
    md = dict(cl.metadata)
    notes: list[str] = []
    flags: list[dict] = []
    if md.get("resampled"):
        notes.append(f"core loss: {md['resampled']}")
    for ed in edge_list:
        _edge_coverage(ed, e, notes)
    params: dict[str, Any] = {
        "edges": [x.name for x in edge_list], "align": opts.align, "dual_eels": False, "deconvolve": deconvolve,
        "background_method": opts.background_method, "on_invalid": opts.on_invalid,
        "whiteline_method": opts.whiteline_method, "preedge_window_eV": list(opts.preedge_window_eV),
        "main_window_eV": list(opts.main_window_eV), "ratio_width_eV": opts.ratio_width_eV,
        "energy_shift_eV": shift, "resolution_eV": opts.resolution_eV, "background_windows": {},
    }
    inputs: list[Any] = [cl]
    arrays: dict[str, Any] = {}
    ll = lle = i0 = None
    zlp: dict[str, float] = {}
    if lowloss is not None:
        data, e, ll, lle, i0, zlp = _lowloss_step(lowloss, cl, data, e, opts, arrays, params, notes, inputs)
    elif deconvolve:
        notes.append("no low loss given: no ZLP alignment, no t/lambda map, no Fourier-ratio deconvolution")
    refs: ReferenceSet | None = None
    if references is not None:
        refs = references if isinstance(references, ReferenceSet) else load_reference_set(references)
        inputs.extend(refs.files)
    mean_raw = np.asarray(_compute({"m": _mean_spectrum(data)}, opts.scheduler)["m"], dtype=np.float64)
    if opts.align_edge:
        e = _align_on_edge(mean_raw, e, edge_list, opts, params, notes)
    processed: dict[str, Any] = {}
    quantifiable: dict[str, bool] = {}
    for ed in edge_list:
        sig, window, ok = _remove_background(data, e, ed, edge_list, opts, params, notes, flags, mean_raw)
        if ll is not None and deconvolve and ok:
            sig = fourier_ratio(sig, e, ll, lle, zero_loss_intensity=i0)
        processed[ed.name], quantifiable[ed.name] = sig, ok
        arrays[f"{ed.name}.mean_spectrum"] = _mean_spectrum(sig)
    means = _compute({k: v for k, v in arrays.items() if k.endswith(".mean_spectrum")}, opts.scheduler)
    for ed in edge_list:
        sig, mean = processed[ed.name], np.asarray(means[f"{ed.name}.mean_spectrum"], dtype=np.float64)
        kind_ = edge_kind(ed)
        kind_.measure(sig, e, ed, kind_.windows(ed, e, mean), opts, arrays, notes, quantifiable[ed.name])
    ref_info = _references_step(edge_list, processed, means, e, refs, opts, zlp, md, arrays, params, notes)
    _ratios_step(edge_list, processed, quantifiable, e, md, opts, arrays, params, notes)
    params["align"] = bool(opts.align and ll is not None)
    params["deconvolve"] = bool(deconvolve and ll is not None)
    computed = _compute(arrays, opts.scheduler)
    edge_spectra = {ed.name: (e, computed.pop(f"{ed.name}.mean_spectrum")) for ed in edge_list}
    maps = {k: np.asarray(v, dtype=np.float64).reshape(nav) for k, v in computed.items()}
    fronts = _fronts(maps, kind, psize)
    raw_means = {ed.name: mean_raw for ed in edge_list}
    f2, bg_info = _edge_flags(edge_list, maps, raw_means, edge_spectra, params["background_windows"], md, set())
    flags += f2 + range_flags({k: _median(v) for k, v in maps.items() if not k.endswith("sigma")})
    summary = _summary(maps, fronts, kind, nav, psize, notes, ref_info)
    summary.update({"flags": flags, "valence": _valence_summary(maps, [x.name for x in edge_list], flags, params),
                    "background": bg_info, "zero_loss": zlp or None})
    return EELSAnalysis(
        kind=kind, pixel_shape=nav, pixel_size_nm=psize, maps=maps, edge_spectra=edge_spectra,
        fronts=fronts, summary=summary, parameters=params, references=ref_info, inputs=inputs,
    )


def _align_on_edge(mean_raw: np.ndarray, e: np.ndarray, edge_list: list[Edge], opts: EELSOptions,
                   params: dict[str, Any], notes: list[str]) -> np.ndarray:
    """Shift the energy axis so that the measured onset of the alignment edge sits at its given energy."""
    name, target = opts.align_edge
    ed = next((x for x in edge_list if x.name == name), None)
    if ed is None:
        raise InputError(f"--align-edge {name}: the edge is not among --edges ({', '.join(x.name for x in edge_list)}); "
                         f"add it to --edges")
    shift = 0.0
    for _ in range(4):  # the fit windows sit at tabulated energies: re-measure on the shifted axis until stable
        es = e + shift
        sig, _, ok = _remove_background(mean_raw, es, ed, edge_list, opts, {"background_windows": {}}, [], [], mean_raw)
        wins = _measured_windows(ed, es, np.asarray(sig, dtype=np.float64))
        onset = float(edge_onset(sig, es, window_eV=wins["first_peak"])) if ok and wins["first_peak"] else float("nan")
        if not np.isfinite(onset):
            raise InputError(f"--align-edge {name}: the onset of {name} could not be measured in this spectrum; give "
                             "--energy-shift-ev instead")
        step = float(target) - onset
        shift += step
        if abs(step) < 0.01:
            break
    onset = float(target) - shift
    params["energy_shift_eV"] = params["energy_shift_eV"] + shift
    notes.append(f"energy axis shifted by {shift:+.2f} eV so that the {name} onset ({onset:.2f} eV measured) lies at "
                 f"{float(target):.2f} eV (--align-edge)")
    return e + shift


def _references_step(edge_list: list[Edge], processed: dict[str, Any], means: dict[str, Any], e: np.ndarray,
                     refs: ReferenceSet | None, opts: EELSOptions, zlp: dict[str, float], md: dict[str, Any],
                     arrays: dict[str, Any], params: dict[str, Any], notes: list[str]) -> list[dict[str, Any]]:
    """Chemical shift against the mean spectrum, and valences from the references."""
    ref_info: list[dict[str, Any]] = []
    for ed in edge_list:
        name, sig = ed.name, processed[ed.name]
        mean = np.asarray(means[f"{name}.mean_spectrum"], dtype=np.float64)
        win = _measured_windows(ed, e, mean)["edge"]
        entries = refs.for_edge(ed) if refs is not None else []
        if refs is not None and len(entries) < 2:
            notes.append(f"{name}: {len(entries)} reference(s) in the reference set; valence maps need >= 2")
        if win is None:
            notes.append(f"{name}: no chemical-shift map (the edge window is outside the range)")
            continue
        try:
            win = (win[0] + 3.0, win[1] - 3.0)
            cs = chemical_shift(sig, e, mean, e, window_eV=win, max_shift_eV=3.0)
        except InputError as err:
            notes.append(f"{name}: no chemical-shift map ({err})")
            continue
        arrays[f"{name}.shift_eV"] = cs.shift_eV
        arrays[f"{name}.shift_sigma_eV"] = cs.sigma_eV
        if len(entries) < 2:
            continue
        ref_shifts = []
        try:
            for r in entries:
                rs = chemical_shift(r.signal, r.energy_eV, mean, e, window_eV=win, max_shift_eV=3.0)
                ref_shifts.append(float(rs.shift_eV))
                ref_info.append({**r.describe(), "shift_vs_mean_eV": float(rs.shift_eV)})
            vi = valence_from_indicator(_np(cs.shift_eV), ref_shifts, [r.valence for r in entries],
                                        indicator_sigma=_np(cs.sigma_eV))
            arrays[f"{name}.valence_interp"] = vi.valence
            arrays[f"{name}.valence_interp_sigma"] = vi.sigma
        except InputError as err:
            notes.append(f"{name}: no chemical-shift valence ({err})")
        _valence_step(ed, sig, e, entries, opts, zlp, md, arrays, params, notes)
    return ref_info


_FRONT_QUANTITIES = ("valence_interp", "valence_lc", "shift_eV", "l3_l2", "preedge_ratio", "O_per_")


def _front_keys(maps: dict[str, np.ndarray]) -> list[str]:
    keys = []
    for k in maps:
        if k.endswith("_sigma") or k.endswith("_sigma_eV"):
            continue
        if any(q in k for q in _FRONT_QUANTITIES) and not k.startswith("O_K.shift"):
            keys.append(k)
    return keys


def _sigma_key(maps: dict[str, np.ndarray], key: str) -> np.ndarray | None:
    for cand in (f"{key}_sigma", key.replace("_eV", "_sigma_eV")):
        if cand in maps and cand != key:
            return maps[cand]
    return None


def _fronts(maps: dict[str, np.ndarray], kind: str, psize: float | None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if kind == "spectrum" or psize is None:
        return out
    for key in _front_keys(maps):
        v = maps[key]
        s = _sigma_key(maps, key)
        try:
            if kind == "line_scan":
                f = locate_front(v, (np.arange(v.size) + 0.5) * psize, sigma=s)
            else:
                f = locate_front_map(v, pixel_size_nm=psize, sigma=s)
            out[key] = f.to_dict()
        except (ConvergenceError, InputError) as err:
            out[key] = {"error": str(err)}
        except LayerscopeError as err:  # pragma: no cover - any other analysis failure
            out[key] = {"error": str(err)}
    return out


def _summary(
    maps: dict[str, np.ndarray], fronts: dict, kind: str, nav: tuple, psize: float | None,
    notes: list[str], refs: list[dict],
) -> dict[str, Any]:
    stats = {}
    for k, v in maps.items():
        fin = np.asarray(v)[np.isfinite(v)]
        stats[k] = {
            "median": float(np.median(fin)) if fin.size else None,
            "p05": float(np.percentile(fin, 5)) if fin.size else None,
            "p95": float(np.percentile(fin, 95)) if fin.size else None,
            "n_finite": int(fin.size),
        }
    return {
        "kind": kind,
        "pixel_shape": list(nav),
        "pixel_size_nm": psize,
        "maps": stats,
        "fronts": fronts,
        "references": refs,
        "notes": notes,
    }
