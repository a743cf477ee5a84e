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
from layerscope.spectra.background import BACKGROUND_METHODS, subtract_background
from layerscope.spectra.deconvolution import fourier_ratio
from layerscope.spectra.edges import (
    Edge,
    chemical_shift,
    check_edge_in_range,
    default_background_window,
    edge_onset,
    l3_peak_position,
    parse_edges,
)
from layerscope.spectra.fronts import locate_front, locate_front_map
from layerscope.spectra.preedge import (
    DEFAULT_MAIN_WINDOW_EV,
    DEFAULT_PREEDGE_WINDOW_EV,
    oxygen_k_preedge_ratio,
)
from layerscope.spectra.quantify import elemental_ratio
from layerscope.spectra.references import ReferenceSet, load_reference_set
from layerscope.spectra.thickness import relative_thickness
from layerscope.spectra.valence import valence_from_indicator, valence_from_linear_combination
from layerscope.spectra.whiteline import white_line_ratio
from layerscope.io.output import writes_folder

__all__ = ["EELSAnalysis", "analyse_eels", "edge_windows"]

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
        import dask

        from layerscope.parallel import scheduler_context

        with scheduler_context(scheduler) as opts:
            values = dask.compute(*lazy.values(), **opts)
        out.update({k: np.asarray(v) for k, v in zip(lazy, values)})
    return {k: out[k] for k in arrays}


def _mean_spectrum(sig: Any) -> Any:
    return sig.reshape((-1, sig.shape[-1])).mean(axis=0) if sig.ndim > 1 else sig


def analyse_eels(
    coreloss: Any,
    *,
    edges: str | list[str],
    lowloss: Any = None,
    references: str | Path | ReferenceSet | None = None,
    pixel_size_nm: float | None = None,
    offset_eV: float | None = None,
    scale_eV: float | None = None,
    lazy: bool = False,
    align: bool = True,
    dual_eels: bool = True,
    deconvolve: bool = True,
    background_method: str = "power_law",
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
    scheduler: Any = None,
) -> EELSAnalysis:
    """Run the EELS analysis of a core loss (and its low loss) for the given edges.

    Parameters
    ----------
    coreloss : path, container, HyperSpy signal
        Core-loss spectrum, line scan or spectrum image (energy in eV).
    edges : str or list of str
        Edges to analyse, e.g. ``"Co_L,O_K"``.
    lowloss : path, container or None
        Matching low loss with the ZLP (same pixels): enables ZLP alignment, t/lambda and
        Fourier-ratio deconvolution.
    references : folder, ReferenceSet or None
        Reference spectra of known valence (see :mod:`layerscope.spectra.references`); valence
        maps are made for edges that have >= 2 references.
    pixel_size_nm : float or None
        Pixel size / scan step (nm) when the file has no spatial calibration.
    offset_eV, scale_eV : float or None
        Energy of the first channel and dispersion (eV) of the core loss, for files whose
        energy axis has no unit or no calibration.
    lazy : bool
        Load files lazily (Dask); the analysis stays lazy until the maps are computed.
    align : bool
        Align the ZLP of every low-loss pixel to 0 eV.
    dual_eels : bool
        The low and core loss were recorded simultaneously (dual EELS): apply the ZLP shifts to
        the core loss too, which removes energy drift from chemical-shift maps. Set False for
        separately recorded low loss.
    deconvolve : bool
        Fourier-ratio deconvolve each background-subtracted edge with the low loss.
    background_method : str
        One of :data:`layerscope.spectra.background.BACKGROUND_METHODS`.
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
        Microscope settings for hydrogenic cross sections; taken from the file's metadata when
        None there. Without them (and without k-factors) no elemental ratio is computed and
        the summary says so.
    k_factors : dict or None
        ``{"O_K/Co_L": k}`` so that ``N_O/N_Co = k I_O/I_Co``; replaces cross sections.
    scheduler : None, str or distributed.Client
        Where lazy work runs (:func:`layerscope.parallel.scheduler_context`).

    Returns
    -------
    EELSAnalysis
    """
    if background_method not in BACKGROUND_METHODS:
        raise InputError(f"background method {background_method!r}: choose one of {BACKGROUND_METHODS}.")
    cl = _container(coreloss, "core loss", pixel_size_nm, lazy, offset_eV, scale_eV)
    kind = cl.kind
    nav = tuple(cl.data.shape[:-1])
    psize = None
    if kind == "spectrum_image":
        psize = cl.pixel_size_nm
    elif kind == "line_scan":
        psize = float(cl.axis("position").scale)
    data = cl.data
    if not is_lazy(data):
        data = np.asarray(data, dtype=np.float32 if np.asarray(data).dtype == np.float32 else np.float64)
    e = np.asarray(cl.energy_eV, dtype=np.float64)
    md = dict(cl.metadata)
    edge_list = parse_edges(edges)
    for ed in edge_list:
        check_edge_in_range(ed, e)
    params: dict[str, Any] = {
        "edges": [x.name for x in edge_list], "align": align, "dual_eels": dual_eels, "deconvolve": deconvolve,
        "background_method": background_method, "on_invalid": on_invalid, "whiteline_method": whiteline_method,
        "preedge_window_eV": list(preedge_window_eV), "main_window_eV": list(main_window_eV),
        "ratio_width_eV": ratio_width_eV,
    }
    inputs: list[Any] = [cl]
    notes: list[str] = []
    arrays: dict[str, Any] = {}
    ll = lle = None
    if lowloss is not None:
        llc = _container(lowloss, "low loss", pixel_size_nm, lazy)
        inputs.append(llc)
        ll = llc.data if is_lazy(llc.data) else np.asarray(llc.data, dtype=np.float64)
        lle = np.asarray(llc.energy_eV, dtype=np.float64)
        if tuple(ll.shape[:-1]) != nav and ll.ndim != 1:
            raise InputError(
                f"low loss: pixel shape {tuple(ll.shape[:-1])} differs from the core loss {nav}; give the "
                "low loss recorded at the same pixels (or a single low-loss spectrum)."
            )
        if align:
            if dual_eels and ll.ndim == data.ndim:
                al = align_zero_loss(ll, lle, coreloss=data, coreloss_energy_eV=e)
                data, e = al.coreloss, al.coreloss_energy_eV
            else:
                al = align_zero_loss(ll, lle)
            ll, lle = al.lowloss, al.energy_eV
            arrays["zlp_position_eV"] = al.zlp_position_eV
        th = relative_thickness(ll, lle)
        arrays["t_over_lambda"] = th.t_over_lambda
        i0 = th.zero_loss_intensity
    elif deconvolve:
        notes.append("no low loss given: no ZLP alignment, no t/lambda map, no Fourier-ratio deconvolution")
    params["background_windows"] = {}
    refs: ReferenceSet | None = None
    if references is not None:
        refs = references if isinstance(references, ReferenceSet) else load_reference_set(references)
        inputs.extend(refs.files)
    ref_info: list[dict[str, Any]] = []
    processed: dict[str, Any] = {}
    for ed in edge_list:
        name = ed.name
        window = (background_windows or {}).get(name) or default_background_window(ed, e, other_edges=edge_list)
        params["background_windows"][name] = [float(window[0]), float(window[1])]
        sig, _ = subtract_background(data, e, window_eV=window, method=background_method, on_invalid=on_invalid)
        if ll is not None and deconvolve:
            sig = fourier_ratio(sig, e, ll, lle, zero_loss_intensity=i0)
        processed[name] = sig
        wins = edge_windows(ed)
        arrays[f"{name}.onset_eV"] = edge_onset(sig, e, window_eV=wins["first_peak"])
        arrays[f"{name}.peak_eV"] = l3_peak_position(sig, e, window_eV=wins["first_peak"])
        arrays[f"{name}.mean_spectrum"] = _mean_spectrum(sig)
        if ed.has_white_lines and ed.element not in _CRYSTAL_FIELD_SPLIT:
            wl = white_line_ratio(sig, e, edge=ed, method=whiteline_method)
            arrays[f"{name}.l3_l2"] = wl.ratio
            arrays[f"{name}.l3_l2_sigma"] = wl.sigma
        elif ed.has_white_lines:
            notes.append(
                f"{name}: no L3/L2 map - in early 3d metals (Sc-Cr) the L3 and L2 lines are split by the "
                "crystal field and overlap; call white_line_ratio with explicit l3_search_eV/half_width_eV "
                "windows if needed"
            )
        if ed.name == "O_K":
            pr = oxygen_k_preedge_ratio(sig, e, preedge_window_eV=preedge_window_eV, main_window_eV=main_window_eV)
            arrays["O_K.preedge_ratio"] = pr.ratio
            arrays["O_K.preedge_ratio_sigma"] = pr.sigma
            arrays["O_K.preedge_peak_eV"] = pr.preedge_peak_eV
    # first compute what the reference-dependent steps need (the mean spectra)
    means = _compute({k: v for k, v in arrays.items() if k.endswith(".mean_spectrum")}, scheduler)
    for ed in edge_list:
        name = ed.name
        sig = processed[name]
        wins = edge_windows(ed)
        mean = means[f"{name}.mean_spectrum"]
        shift_ref, shift_ref_e = mean, e
        entries = refs.for_edge(ed) if refs is not None else []
        if refs is not None and len(entries) < 2:
            notes.append(f"{name}: {len(entries)} reference(s) in the reference set; valence maps need >= 2")
        try:
            cs = chemical_shift(sig, e, shift_ref, shift_ref_e, window_eV=wins["edge"], max_shift_eV=3.0)
            arrays[f"{name}.shift_eV"] = cs.shift_eV
            arrays[f"{name}.shift_sigma_eV"] = cs.sigma_eV
        except InputError as err:
            notes.append(f"{name}: no chemical-shift map ({err})")
            entries = []
        if len(entries) >= 2:
            # indicator: shift of each reference relative to the same mean spectrum
            ref_shifts = []
            for r in entries:
                rs = chemical_shift(r.signal, r.energy_eV, shift_ref, shift_ref_e, window_eV=wins["edge"],
                                    max_shift_eV=3.0)
                ref_shifts.append(float(rs.shift_eV))
                ref_info.append({**r.describe(), "shift_vs_mean_eV": float(rs.shift_eV)})
            vi = valence_from_indicator(
                cs.shift_eV if not is_lazy(cs.shift_eV) else cs.shift_eV.compute(),
                ref_shifts, [r.valence for r in entries],
                indicator_sigma=cs.sigma_eV if not is_lazy(cs.sigma_eV) else cs.sigma_eV.compute(),
            )
            arrays[f"{name}.valence_interp"] = vi.valence
            arrays[f"{name}.valence_interp_sigma"] = vi.sigma
            lo = max(wins["edge"][0], max(float(r.energy_eV[0]) for r in entries))
            hi = min(wins["edge"][1], min(float(r.energy_eV[-1]) for r in entries))
            lc = valence_from_linear_combination(
                sig, e, [np.interp(e, r.energy_eV, r.signal) for r in entries], [r.valence for r in entries],
                window_eV=(lo, hi),
            )
            arrays[f"{name}.valence_lc"] = lc.valence
            arrays[f"{name}.valence_lc_sigma"] = lc.sigma
            params[f"{name}.valence_window_eV"] = [lo, hi]
    # elemental ratios O:X with hydrogenic cross sections (or k-factors)
    beam = beam_energy_keV if beam_energy_keV is not None else md.get("beam_energy_keV")
    beta = collection_angle_mrad if collection_angle_mrad is not None else md.get("collection_angle_mrad")
    alpha = convergence_angle_mrad if convergence_angle_mrad is not None else md.get("convergence_angle_mrad", None)
    params.update({"beam_energy_keV": beam, "collection_angle_mrad": beta, "convergence_angle_mrad": alpha})
    names = [x.name for x in edge_list]
    if "O_K" in names:
        for ed in edge_list:
            if ed.name == "O_K":
                continue
            key = f"O_K/{ed.name}"
            kf = (k_factors or {}).get(key)
            if kf is None and (beam is None or beta is None):
                notes.append(
                    f"{key}: not computed - beam energy and collection angle unknown (pass "
                    "--beam-energy-kev/--collection-angle-mrad) and no k-factor given"
                )
                continue
            if kf is None and ed.shell not in ("K", "L"):
                notes.append(f"{key}: not computed - no hydrogenic cross section for {ed.name}; give a k-factor")
                continue
            try:
                er = elemental_ratio(
                    processed["O_K"], e, "O_K", processed[ed.name], e, ed, width_eV=ratio_width_eV,
                    beam_energy_keV=beam, collection_angle_mrad=beta,
                    convergence_angle_mrad=float(alpha or 0.0), k_factor=kf,
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
    params["align"] = bool(align and ll is not None)
    params["dual_eels"] = bool(dual_eels and params["align"])
    params["deconvolve"] = bool(deconvolve and ll is not None)
    computed = _compute(arrays, scheduler)
    edge_spectra = {ed.name: (e, computed.pop(f"{ed.name}.mean_spectrum")) for ed in edge_list}
    maps = {k: np.asarray(v, dtype=np.float64).reshape(nav) for k, v in computed.items()}
    fronts = _fronts(maps, kind, psize)
    summary = _summary(maps, fronts, kind, nav, psize, notes, ref_info)
    return EELSAnalysis(
        kind=kind, pixel_shape=nav, pixel_size_nm=psize, maps=maps, edge_spectra=edge_spectra,
        fronts=fronts, summary=summary, parameters=params, references=ref_info, inputs=inputs,
    )


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
