"""From an atomic-resolution HAADF image to columns, layers, phases, domains and quantities.

:func:`find_atom_columns` runs the shared front end (lattice by FFT, column finding, rows and
cation layers, Li-layer sites, intensities); :func:`analyse` (options in
:class:`~layerscope.imaging.options.PhasesOptions`; :func:`map_phases` is the same with the options
as keywords) adds the phase labels, the mixing index, domains, spacing/strain maps, gliding and
the surface-layer thickness, with the provenance built once. Both take
an array (with ``pixel_size_nm``), a :class:`~layerscope.containers.Image`, a HyperSpy signal or
a file path, and return plain tables with the provenance of the run.

Column table (``columns``): one row per atom column or Li-layer site,

=================  ==========================================================================
``x_nm, y_nm``     position from the image corner (x right, y down), nm
``intensity``      peak height above the local background of a Gaussian of the shared column
                   width at the site's lattice position (image units; the same estimator for
                   every site; see below)
``kind``           ``"TM"`` (site of a TM layer) or ``"Li"`` (site of a Li layer)
``layer``          cation-layer index, 0 for the first layer along the basal normal
``phase``          ``O3``, ``O3'``, ``O1``, ``rock_salt``, ``spinel``
``mixing``         Li-layer sites: intensity over the mean of the 4 nearest TM columns
``detected``       True for a column found in the image, False for a site placed from the
                   lattice (an invisible Li column, or a TM column missing between two
                   detected neighbours of its layer); a TM column placed in such a gap whose
                   amplitude at its site is 3 standard errors above zero counts as found
                   (lattice position, ``fit_ok`` False); so does a placed site that a
                   detector maximum confirms (a failed fit; under a wide probe also the
                   resolving pass and, with :data:`RESIDUAL_EVIDENCE` and
                   :data:`LATTICE_EVIDENCE`, the generic finder's lattice and residual
                   passes run on the fitted columns (the residual pass's width with one
                   height per window), where the site's
                   amplitude is above zero, :data:`CONFIRM_POSITIVE`; :func:`_confirm_placed_sites`);
                   under a wide probe a placed Li-layer site whose height with its neighbours'
                   free is :data:`JOINT_SITE_SIGMAS` standard errors above zero, its mixing
                   index above zero (:data:`JOINT_SITE_TEST`, :data:`JOINT_SITE_WINDOW_WIDTHS`;
                   :func:`_joint_site_columns`)
``site``           ``"octahedral"`` (every TM and Li-layer site) or ``"tetrahedral"`` (the
                   tetrahedral Li columns of a spinel block, placed from the lattice)
``indexed``        False for a detected column on a row beyond the analysed layers (a corner
                   row of 2-3 columns, a Li layer beyond the outermost TM layer: no TM-TM gap of
                   the image); such a row has ``layer`` -1, ``phase`` "", ``kind`` from the
                   layer parity the lattice continues with, and is in no stacking, fill, phase
                   map or quantity (:func:`layerscope.imaging.lattice.corner_rows`); with
                   :data:`FAILED_FIT_REPORT` also a detected maximum whose fit failed,
                   half a spacing from every site, on a layer (within
                   :data:`FAILED_FIT_LAYER_SHARE` of a cation spacing; ``kind`` that layer's)
=================  ==========================================================================

plus ``u_nm, v_nm`` (along/across the layers), ``registry`` (TM-TM, column spacings),
``relation`` (stacking relation below a TM column / around a Li site), ``environment``,
``position_error_pm``, ``fit_ok``, ``at_border`` (a detected column within 1.5 fitted widths of the
image edge, fitted on one flank; :func:`layerscope.imaging.columns.border_columns`); for Li-layer sites ``pair`` (the TM pair it was placed
from, -1 for a detected column without one or a site filled into a one-site gap), ``context``
(the pair its relations come from), ``step`` (stacking step from the TM layer above,
column spacings), ``tm_reference`` (the mean intensity of the 4 nearest TM columns with an intensity that
``mixing`` is relative to), ``intensity_sem`` and ``mixing_sem`` (standard errors of the
site's intensity and of the index, from the counts; :mod:`layerscope.imaging.sitetests`) and ``mixed``
("yes" / "no" / "uncertain": TM in this Li column, the index two standard errors above / below
:data:`layerscope.imaging.interlayers.MIXING_THRESHOLD`), ``dark_sublattice`` (True for a Li-layer
site on the dimmer of the two alternating sublattices of its window: in a spinel block, the empty
octahedral sites) and ``site_in_void`` (True for a Li-layer site placed in a void or a crack: at most one of
its octahedron's four TM lattice positions reads a column, :data:`VOID_SUPPORT`; it reads ~0 like an empty
site but holds no material; the interlayer fill leaves it out where
:data:`layerscope.imaging.interlayers.SKIP_VOID_SITES` is set; no site is marked where the image's TM columns do
not read clearly above that level, :data:`VOID_SPREAD_Z`; False for every other row) and ``site_at_gap`` (True for a
Li-layer site not in a void whose octahedron's two TM positions of one side read no column: a gap two layer
spacings wide, a basal crack that took a TM layer or a void's rim, :func:`_site_at_gap`; such a site may hold
material; left out of the fill only where :data:`layerscope.imaging.interlayers.SKIP_GAP_SITES` is set).

Where intensities are measured: ``x_nm, y_nm`` is the fitted position of a detected column, but
every intensity is measured at the site's *lattice* position -- for a TM column the running mean,
over 7 columns of its layer, of the row's lateral phase and normal coordinate
(:func:`layerscope.imaging.lattice.lattice_positions`), for a Li-layer site the position placed
from those of its TM pair. A fixed-position estimator at a detected maximum is biased upwards at
low dose (the detector picked the maximum for being bright: a 20 %-mixed Li layer read 0.44-0.6
instead of 0.26 at 5e2 e/A^2, 5 nm) and one at a noisy position downwards; the lattice position is
5-10 pm from the truth there, against 16-17 pm for a detected Li-layer column. A TM column whose
lattice position lies outside the image (a column at the edge, fitted on one flank) has no
``intensity`` (NaN): its window holds only the far tail of the column.

The layer period: the power spectrum's (:func:`layerscope.imaging.lattice.fft_lattice`) sets the detection's
separation, the rows and the layer numbers; with :data:`PERIOD_FROM_COLUMNS` (on) the numbered TM columns set the
cation-layer spacing used after that and reported (``tm_layer_period_nm``).

:data:`LEAK_REACH_WIDTHS` (imgspeed3, measured): the wide probe's lattice leaks (:func:`_unit_readings`) sum the
columns within that many widths of each window, not ``columns.GAUSSIAN_REACH``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from layerscope.errors import InputError
from layerscope.imaging import columns as _col
from layerscope.imaging.materials import MaterialSpacings, enhanced_image as _enhanced, material_spacings  # noqa: F401
from layerscope.imaging import lattice as _lat
from layerscope.imaging import phases as _ph
from layerscope.imaging.options import ImageInput, PhasesOptions, image_input

__all__ = ["ColumnResult", "PhaseMap", "PhasesOptions", "analyse", "find_atom_columns", "map_phases", "load_image",
           "material_spacings"]

#: How per-column phase labels are assigned at block edges (docs/conventions.md, summary.json).
LABEL_CONVENTION = (
    "TM-TM steps are read between consecutive TM layers; a twin-like (O3') domain of n layers is n consecutive "
    "reversed steps (domains.csv n_tm_layers), counted along the layers from the steps of interlayers.csv (a "
    "reversed step next to an O1 block is one; pieces split by a void or crack are one). Per column: a TM "
    "column is O3' when both its steps are reversed or it lies right below a single reversed step, O1 when its "
    "step below is O1-like, rock salt/spinel when the Li layer below it is; a Li-layer site takes the label of "
    "the step it lies in by the same rules (its own environment first). Boundaries are defined to within one "
    "cation layer."
)

#: Smallest field accepted: this many TM layers across and columns along the layers.
MIN_TM_LAYERS = 4
MIN_COLUMNS_ALONG = 8


def load_image(image: Any, *, pixel_size_nm: float | None) -> tuple[np.ndarray, float, Any]:
    """The 2-D data (float64), the pixel size (nm) and the input's provenance handle.

    Accepts a path (TIFF, dm3/dm4, emd, ser, npy, hspy ...), a HyperSpy signal, a
    :class:`~layerscope.containers.Image` or a NumPy array (then ``pixel_size_nm`` is required);
    see :func:`layerscope.imaging.options.image_input`.

    Raises
    ------
    InputError
        A colour image, a stack or spectrum instead of an image.
    CalibrationError
        No pixel size.
    """
    inp = image_input(image, pixel_size_nm=pixel_size_nm)
    return inp.data, inp.pixel_size_nm, inp.handle


@dataclass
class ColumnResult:
    """Columns, layers and lattice of one image (the output of :func:`find_atom_columns`)."""

    columns: pd.DataFrame
    lattice: _lat.LatticeEstimate
    layers: _lat.LayerIndex
    pairs: pd.DataFrame
    pixel_size_nm: float
    shape: tuple[int, int]
    column_sigma_nm: float
    spacings: MaterialSpacings
    zone: str
    timings_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    site_window_nm: float = float("nan")  # radius of the window of the site-intensity fit
    #: detected columns on rows beyond the numbered layers (:func:`_corner_columns`): in no layer or stacking
    unindexed: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: the void-site gate (:func:`support_spread_z`, spreads) and the Li-layer sites the rule marks before it
    #: (:func:`void_gate_flags`)
    void_gate: tuple[float, int] = (float("nan"), 0)
    #: O3 and O3' TM-layer pairs read with the zone as given (:func:`handedness_flags`)
    handedness: tuple[int, int] = (0, 0)


@dataclass
class PhaseMap:
    """Everything :func:`map_phases` measured on one image."""

    columns: pd.DataFrame
    domains: pd.DataFrame
    layers: pd.DataFrame
    interfaces: pd.DataFrame
    glides: pd.DataFrame
    phase_map: np.ndarray
    phase_map_pixel_nm: float
    summary: dict[str, Any]
    result: ColumnResult
    provenance: Any
    interlayers: pd.DataFrame = field(default_factory=pd.DataFrame)


def _as_float64(data: np.ndarray) -> np.ndarray:
    """A real image as float64, as every step reads it (the same numbers): one copy instead of one per step."""
    data = np.asarray(data)
    return data.astype(np.float64, copy=False) if data.dtype.kind in "biuf" else data


def _check_size(shape, pixel_size_nm, sp: MaterialSpacings) -> None:
    h_nm, w_nm = shape[0] * pixel_size_nm, shape[1] * pixel_size_nm
    need_h = MIN_TM_LAYERS * sp.tm_spacing_nm
    need_w = MIN_COLUMNS_ALONG * sp.inplane_spacing_nm
    if min(h_nm, w_nm) < min(need_h, need_w) or max(h_nm, w_nm) < max(need_h, need_w):
        raise InputError(
            f"the image is {w_nm:.2f} x {h_nm:.2f} nm ({shape[1]} x {shape[0]} pixels of {pixel_size_nm:g} nm): "
            f"smaller than a few unit cells of {sp.composition}; phase mapping needs at least "
            f"{MIN_TM_LAYERS} TM layers ({need_h:.1f} nm) across and {MIN_COLUMNS_ALONG} columns "
            f"({need_w:.1f} nm) along the layers"
        )


def find_atom_columns(
    image: Any,
    *,
    pixel_size_nm: float | None = None,
    zone: str = "100",
    composition: str = "LiCoO2",
    enhance: bool = False,
    noise_model: str = "poisson",
    scheduler: Any = None,
    spectrum: _lat.PowerSpectrum | None = None,
) -> ColumnResult:
    """Find every atom column, number the cation layers and place the Li-layer sites.

    Steps: lattice orientation and periods by FFT (:func:`layerscope.imaging.lattice.fft_lattice`,
    which also checks the calibration against ``composition``); detection and batched Gaussian
    refinement of the visible columns (:func:`layerscope.imaging.columns.find_columns`); rows
    linked along the layers, numbered as cation layers, TM vs Li layers from the contrast
    (:func:`layerscope.imaging.lattice.index_layers`); a TM column placed in every one-site gap of a
    TM layer (a column too dim to detect); one Li-layer site per TM-TM pair, placed by the stacking
    (:mod:`layerscope.imaging.phases`) from the TM columns' lattice positions, reported at the
    detected column when one is there, and one in every remaining one-site gap of a Li layer; the
    intensity of every site by a fixed-width Gaussian fit at its lattice position.

    Parameters
    ----------
    image : array, Image, HyperSpy signal or path
        The HAADF/ADF image.
    pixel_size_nm : float, optional
        Pixel size in nm; required for arrays, overrides a file's calibration.
    zone : {"100", "110"}
        Zone axis of the hexagonal cell (sets the sign of the O3 stacking, see
        :func:`layerscope.imaging.phases.o3_step_for_zone`).
    composition : str
        The cathode (``"LiCoO2"``, ``"NMC811"``, ``"NMC622"``, ``"Li1.2Ni0.2Mn0.6O2"`` ...): its
        lattice parameters set the detection scale and the calibration check (20 %).
    enhance : bool
        Detect the columns (and the lattice) on the neural enhancer's denoised image
        (:mod:`layerscope.imaging.enhance`); positions, widths and intensities are still fitted to
        the raw counts.
    noise_model : {"poisson", "gaussian"}
        Noise model of the refinement (counts: Poisson).
    scheduler : None, str or distributed.Client
        Where the refinement blocks run (:func:`layerscope.parallel.map_tasks`).
    spectrum : layerscope.imaging.lattice.PowerSpectrum, optional
        :func:`layerscope.imaging.lattice.power_spectrum` of ``image`` when the caller has it
        already (:func:`analyse` shares one with the layered-oxide check); not used with ``enhance``.

    Returns
    -------
    ColumnResult
    """
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    data, px, _ = load_image(image, pixel_size_nm=pixel_size_nm)
    sp = material_spacings(composition, zone)
    _check_size(data.shape, px, sp)
    data = _as_float64(data)
    counts = _col.is_count_image(data)  # Poisson errors of the site amplitudes (sitetests.amplitude_errors)
    notes: list[str] = []
    detection = _enhanced(data, px) if enhance else None
    if enhance:
        notes.append("columns detected on the neural enhancer's denoised image, then fitted on the raw counts")
    times["load"] = time.perf_counter() - t0

    t = time.perf_counter()
    lat = _lat.fft_lattice(
        data if detection is None else detection, pixel_size_nm=px, layer_spacing_nm=sp.tm_spacing_nm, inplane_spacing_nm=sp.inplane_spacing_nm,
        material=sp.composition, spectrum=None if detection is not None else spectrum,
    )
    d_t = lat.inplane_period_nm
    # Cation-row spacing measured by the FFT (absorbs a calibration error within the tolerance).
    cation = lat.layer_period_nm if lat.rows_are_cation_rows else lat.layer_period_nm / 2.0
    times["lattice"] = time.perf_counter() - t

    t = time.perf_counter()
    min_sep = 0.85 * min(d_t, 0.9 * cation)
    found, sigma_nm, failed, first_pass = _detect_and_fit(data, px, sp, min_sep=min_sep, sigma0_nm=0.14 * d_t,
                                                          neighbour_nm=d_t, noise_model=noise_model,
                                                          scheduler=scheduler, detection=detection, notes=notes)
    times["columns"] = time.perf_counter() - t

    t = time.perf_counter()
    geo = _index_columns(found, lat, d_t=d_t, cation=cation, notes=notes,
                         rim=dict(data=data, px=px, sigma_nm=sigma_nm, radius_nm=0.45 * min_sep, counts=counts))
    cation = _column_spacing(geo, cation, notes=notes)  # PERIOD_FROM_COLUMNS: the numbered columns' spacing from here
    radius_nm = 0.45 * min_sep
    tm_u, tm_v = _tm_lattice_positions(geo.tm, d_t=d_t)
    tm_xy = np.outer(tm_u, geo.tvec) + np.outer(tm_v, geo.nvec)
    detected = geo.tm["detected"].to_numpy(dtype=bool)
    # the widths (NumPy) on a thread of their own while the stackings and Li-layer sites are made (Python); the
    # resolving pass (wide probes) on another, started once the width is known, beside the site measurements: 2 cores'
    # wall time, the same numbers (tests/imaging/test_speed_wide.py)
    width_notes, resolved_notes = [], []  # type: list[str], list[str]
    widths = _on_thread(lambda: _widths(data, px, tm_xy[detected], (first_pass, found), sigma_nm=sigma_nm,
                                        radius_nm=radius_nm, min_sep=min_sep, sigma0_nm=0.14 * d_t, notes=width_notes,
                                        resolved_notes=resolved_notes), name="layerscope-widths")
    stack = _stacking(geo.tm, geo.index, d_t=d_t, cation=cation, zone=zone, notes=notes)
    li, site_xy = _place_li_sites(geo, stack, d_t=d_t, cation=cation, shape=data.shape, px=px, tm_u=tm_u, tm_v=tm_v)
    tm = geo.tm.assign(registry=stack.reg_down, relation=stack.rel_down, relation_up=stack.rel_up)
    times["layers"] = time.perf_counter() - t

    t = time.perf_counter()
    sigma_nm, (site_sigma, site_radius), resolved = widths.result()
    notes.extend(width_notes)  # after the stackings' notes, as when the widths were measured after them
    leaks = None
    if site_radius > radius_nm:  # a window wider than the columns' spacing allows: unmix the neighbours' tails
        # on a thread of their own beside the site measurements (NumPy releases the GIL); read where the mixing needs it
        leaks = _on_thread(lambda: _lattice_leaks(data.shape, px, sigma_nm=site_sigma, radius_nm=site_radius,
                                                  tm_xy=tm_xy, tm_found=detected, li_xy=site_xy), name="layerscope-leaks")
    amp, bkg = _site_intensities(data, px, pd.DataFrame({"x_nm": tm_xy[:, 0], "y_nm": tm_xy[:, 1]}),
                                 sigma_nm=site_sigma, radius_nm=site_radius)
    # A lattice position outside the image has no intensity to measure (as a Li-layer site there: dropped):
    # the fit sees only the far tail and extrapolates (random draw 4023: 842 where its layer reads 20).
    outside = ~_inside(tm_xy, data.shape, px)
    tm["intensity"], tm["local_background"] = np.where(outside, np.nan, amp), np.where(outside, np.nan, bkg)
    _detect_gap_columns(data, px, tm, tm_xy, sigma_nm=site_sigma, radius_nm=site_radius, notes=notes, counts=counts)
    _measure_li_sites(data, px, li, tm, sigma_nm=site_sigma, radius_nm=site_radius, at_nm=site_xy, counts=counts,
                      leaks=leaks)
    void_gate = _mark_void_sites(data, px, li, tm, tm_u, tm_v, d_t=d_t, geo=geo, sigma_nm=site_sigma,
                                 radius_nm=site_radius, notes=notes)
    evidence = pd.concat([failed, resolved.result()], ignore_index=True)
    notes.extend(resolved_notes)  # after the site measurements' notes, as when it ran after them
    _confirm_placed_sites(evidence, tm, tm_xy, li, d_t=d_t, notes=notes)
    _report_lattice_sites(data, tm, li, tm_xy, site_xy, geo, (data.shape, px), (radius_nm, site_radius, site_sigma), notes)
    _joint_site_columns(data, px, (tm, li), tm_xy, site_xy, d_t=d_t, width_nm=site_sigma, wide=site_radius > radius_nm,
                        counts=counts, notes=notes)
    tm["mixing"] = np.nan
    times["intensities"] = time.perf_counter() - t
    unindexed = _unindexed_rows(failed, tm, li, geo, wide=site_radius > radius_nm, d_t=d_t, cation=cation, notes=notes)

    table = pd.concat([tm.drop(columns=["amplitude", "background", "contrast", "snr", "volume", "in_gap"],
                               errors="ignore"),
                       li], ignore_index=True, sort=False)
    for flag in ("detected", "fit_ok", "at_border", "site_in_void", "site_at_gap", "position_from_lattice"):
        table[flag] = table[flag].fillna(False).astype(bool) if flag in table else False
    times["total"] = time.perf_counter() - t0
    return ColumnResult(
        columns=table, lattice=_reported_lattice(lat, geo.tvec, geo.nvec, d_t=d_t, cation=cation),
        layers=geo.index, pairs=stack.pairs, pixel_size_nm=px, shape=data.shape, column_sigma_nm=site_sigma,
        spacings=sp, zone=stack.zone, timings_s=times, notes=notes, site_window_nm=site_radius, unindexed=unindexed,
        void_gate=void_gate, handedness=stack.handedness,
    )


def _reported_lattice(lat: _lat.LatticeEstimate, tvec: np.ndarray, nvec: np.ndarray, *, d_t: float,
                      cation: float) -> _lat.LatticeEstimate:
    """The lattice :func:`find_atom_columns` reports: the spectrum's ``lat`` with the directions refined from the rows
    (``tvec, nvec``), the in-plane spacing ``d_t`` (nm) and the layer period of the cation spacing ``cation`` (nm)
    used (the numbered columns' with :data:`PERIOD_FROM_COLUMNS`)."""
    return _lat.LatticeEstimate(
        normal=nvec, inplane=tvec, layer_period_nm=cation if lat.rows_are_cation_rows else 2.0 * cation,
        inplane_period_nm=d_t, angle_deg=float(np.degrees(np.arctan2(-nvec[0], nvec[1]))),
        layer_contrast=lat.layer_contrast, inplane_contrast=lat.inplane_contrast,
        rows_are_cation_rows=lat.rows_are_cation_rows)


def _detect_and_fit(data: np.ndarray, px: float, sp: MaterialSpacings, *, min_sep: float, sigma0_nm: float,
                    neighbour_nm: float, noise_model: str, scheduler: Any, detection: np.ndarray | None,
                    notes: list[str]) -> tuple[pd.DataFrame, float, pd.DataFrame, _col.FirstPass | None]:
    """Stage 2 of :func:`find_atom_columns`: the visible columns whose fit succeeded, their median width (nm),
    the detected maxima whose fit failed or that only the detector's lattice-neighbour test kept (dim
    columns one ``neighbour_nm`` from a kept column, :func:`layerscope.imaging.columns.detect_columns`):
    ``x_nm, y_nm`` (a failed fit's window centroid); evidence for :func:`_confirm_placed_sites` only, never in
    the rows and stackings; and the detection's first-pass maps (:func:`_resolved_maxima` reads them).

    Raises
    ------
    InputError
        Fewer than ``MIN_TM_LAYERS * MIN_COLUMNS_ALONG`` columns.
    """
    det = _col.detect_columns(data if detection is None else detection, pixel_size_nm=px, min_separation_nm=min_sep,
                              column_sigma_nm=sigma0_nm, neighbour_nm=neighbour_nm)
    found = _col.fit_detected(data, det, pixel_size_nm=px, min_separation_nm=min_sep, column_sigma_nm=sigma0_nm,
                              noise_model=noise_model, scheduler=scheduler, fit_neighbours=False)
    dim = found["neighbour_pass"].to_numpy(dtype=bool)
    n_failed = int((~found["fit_ok"] & ~dim).sum())
    failed = found.loc[~found["fit_ok"] | dim, ["x_nm", "y_nm"]].reset_index(drop=True)
    lone = _lone_failed_fits(found, dim, data.shape, px, neighbour_nm=neighbour_nm, min_sep=min_sep)
    failed = failed.assign(lone=lone[~found["fit_ok"].to_numpy(dtype=bool) | dim])  # for FAILED_FIT_REPORT
    found = found[found["fit_ok"] & ~dim].reset_index(drop=True)
    if len(found) < MIN_TM_LAYERS * MIN_COLUMNS_ALONG:
        raise InputError(
            f"only {len(found)} atom columns were found: the image does not resolve the lattice of "
            f"{sp.composition} well enough (check focus, dose and --pixel-size-nm)"
        )
    if n_failed:
        notes.append(f"{n_failed} detected maxima were dropped because their Gaussian fit failed")
    return found, float(np.nanmedian(found["sigma_nm"])), failed, det.first_pass


#: A detected maximum whose Gaussian fit failed (under a wide probe: a column wider than half the fit window) and that
#: lies at least half a column spacing from every fitted column and a separation inside the image (a lone failed
#: fit, :func:`_lone_failed_fits`; where its neighbours' fits, pulled by its tail, lie 1.7 spacings apart, or two
#: failed side by side, no site is placed there: 23 full TM columns of ``phases``' 164 misses on the wide tuning
#: draws), reported with the detected columns beyond the analysed layers (``indexed`` False, ``layer`` -1, in no
#: row, stacking, fill or phase) where no site or column of the table lies within half a column spacing (a placed
#: site there is confirmed by the maximum already) and a layer's rows lie within half a cation spacing across the
#: layers. The rows, stackings and fills stay those without them (in the rows they moved draw 56's rims and 4114's
#: twins; docs/validation.md "imgphrec"): on the 38 wide tuning draws ``phases`` recall rises on 10 (2085 0.962 -> 0.985 with
#: :data:`RESIDUAL_EVIDENCE`), every fill, step and twin value equal (docs/validation.md "imgphrec"). Wide probes only
#: (the widened site window, as :data:`LATTICE_POSITIONS`): on the narrow draws of 7000-7099 it found no column and
#: added one false row (7009).
FAILED_FIT_REPORT = True
#: :data:`FAILED_FIT_REPORT`: a lone failed fit is reported only where its centroid lies within this share of a cation
#: spacing of a layer's rows (across the layers), i.e. at least twice as near its layer as the next one; nearer the
#: middle between two layers it is the merged tails of a column of each (random draw 5083: a centroid 0.46 spacings
#: from a TM layer, 0.12 nm from a reported TM and a reported Li-layer column, a false row). On the 38 wide tuning
#: draws the 25 other reports lie within 0.24 spacings of their layer, all on a truth column (docs/validation.md
#: "imgprec"). 0.5 (before, imgphrec): any failed fit between two layers is on one of them.
FAILED_FIT_LAYER_SHARE = 1.0 / 3.0


def _unindexed_rows(failed: pd.DataFrame, tm: pd.DataFrame, li: pd.DataFrame, geo: Any, *, wide: bool, d_t: float,
                    cation: float, notes: list[str]) -> pd.DataFrame:
    """The detected columns reported beyond the analysed layers: ``geo.corner`` (:func:`_corner_columns`) and, with
    :data:`FAILED_FIT_REPORT` and a wide probe (``wide``: the widened site window), the lone failed fits of ``failed``
    that no TM (``tm``) or Li-layer (``li``) site or corner row holds (:func:`_unrowed_failed_fits`)."""
    if not (FAILED_FIT_REPORT and wide):
        return geo.corner
    keys = ["x_nm", "y_nm", "kind", "layer"]
    rows = pd.concat([tm[keys], li[keys], geo.corner.reindex(columns=keys)], ignore_index=True)
    extra = _unrowed_failed_fits(failed, rows, geo, d_t=d_t, cation=cation, notes=notes)
    return pd.concat([geo.corner, extra], ignore_index=True) if len(extra) else geo.corner


def _unrowed_failed_fits(failed: pd.DataFrame, table: pd.DataFrame, geo: Any, *, d_t: float, cation: float,
                         notes: list[str]) -> pd.DataFrame:
    """:data:`FAILED_FIT_REPORT`: the lone failed fits of ``failed`` (:func:`_detect_and_fit`'s evidence, ``lone``)
    at least ``d_t / 2`` (nm) from every row of ``table`` (TM, Li-layer and corner rows, placed sites included), as
    rows of :func:`_corner_columns`' table; ``kind`` that of the layer (TM or Li) whose rows within 3 ``d_t`` along
    the layers lie nearest across them; one with no such layer within :data:`FAILED_FIT_LAYER_SHARE` of a cation
    spacing ``cation`` (nm) lies on no lattice layer and is left out, as :func:`_index_columns` drops such maxima
    from the rows."""
    lone = failed[failed["lone"].to_numpy(dtype=bool)] if "lone" in failed else failed.iloc[:0]
    xy = table[["x_nm", "y_nm"]].to_numpy(dtype=float)
    if len(lone) == 0 or len(xy) == 0:
        return table.iloc[:0]
    p = lone[["x_nm", "y_nm"]].to_numpy(dtype=float)
    p = p[cKDTree(xy).query(p)[0] >= 0.5 * d_t]
    ru, rv, layer = xy @ geo.tvec, xy @ geo.nvec, table["layer"].to_numpy()
    kinds = []
    for u, v in zip(p @ geo.tvec, p @ geo.nvec):
        near = (np.abs(ru - u) <= 3.0 * d_t) & (layer >= 0)
        lv = {k: float(np.median(rv[near & (layer == k)])) for k in np.unique(layer[near])}
        k = min(lv, key=lambda k: abs(lv[k] - v)) if lv else None
        ok = k is not None and abs(lv[k] - v) < FAILED_FIT_LAYER_SHARE * cation
        kinds.append(str(table["kind"].to_numpy()[near & (layer == k)][0]) if ok else "")
    on_layer = np.array([k != "" for k in kinds], dtype=bool)  # on no layer: dropped, as in the rows
    p, kinds = p[on_layer], [k for k in kinds if k]
    if len(p):
        notes.append(f"{len(p)} detected maxima whose Gaussian fit failed, half a column spacing or more from every "
                     f"column and site, are reported with layer -1 (indexed = False)")
    return pd.DataFrame({"x_nm": p[:, 0], "y_nm": p[:, 1], "u_nm": p @ geo.tvec, "v_nm": p @ geo.nvec, "layer": -1,
                         "kind": kinds, "detected": True, "fit_ok": False})


def _lone_failed_fits(found: pd.DataFrame, dim: np.ndarray, shape: tuple[int, int], px: float, *, neighbour_nm: float,
                      min_sep: float) -> np.ndarray:
    """Rows of ``found`` (:func:`layerscope.imaging.columns.fit_detected`'s table) that :data:`FAILED_FIT_REPORT` may
    report: failed fits (not the dim maxima ``dim``) at least ``neighbour_nm / 2`` from every fitted column and
    ``min_sep`` (nm) inside the image ``shape`` (pixels of ``px`` nm)."""
    ok = found["fit_ok"].to_numpy(dtype=bool) & ~dim
    cand = ~found["fit_ok"].to_numpy(dtype=bool) & ~dim
    if not cand.any() or not ok.any():
        return np.zeros(len(found), dtype=bool)
    xy = found[["x_nm", "y_nm"]].to_numpy(dtype=float)
    far = cKDTree(xy[ok]).query(xy)[0] >= 0.5 * neighbour_nm
    h_nm, w_nm = shape[0] * px, shape[1] * px
    inside = (np.minimum.reduce([xy[:, 0], xy[:, 1], w_nm - xy[:, 0], h_nm - xy[:, 1]]) >= min_sep)
    return cand & far & inside


def _widths(data: np.ndarray, px: float, xy_nm: np.ndarray, detection: tuple[_col.FirstPass | None, pd.DataFrame], *,
            sigma_nm: float, radius_nm: float, min_sep: float, sigma0_nm: float, notes: list[str],
            resolved_notes: list[str]) -> tuple[float, tuple[float, float], Any]:
    """The widths of :func:`find_atom_columns` before the site measurements, from the TM columns' lattice positions
    ``xy_nm`` of the detected columns: the column width there (:func:`_lattice_width`), the site window
    (:func:`_wide_probe_window`) and, started on its own thread as soon as the width is known, the resolving
    pass (:func:`_resolved_maxima`: a :class:`concurrent.futures.Future`) and, with :data:`RESIDUAL_EVIDENCE`, the
    residual pass on the fitted columns (``detection``: the first pass's maps and the fits of
    :func:`_detect_and_fit`). Notes in that order to ``notes`` (the two passes' to ``resolved_notes``)."""
    first_pass, found = detection
    width = _lattice_width(data, px, xy_nm, sigma_nm=sigma_nm, radius_nm=radius_nm, notes=notes)

    def evidence() -> pd.DataFrame:
        resolve = _col.resolving_sigma(width, min_sep / 0.85, sigma0_nm)
        residual_notes: list[str] = []
        # the resolving pass on a thread of its own beside the lattice and residual passes (they share nothing)
        resolved = _on_thread(lambda: _resolved_maxima(first_pass, px, min_sep=min_sep, sigma0_nm=sigma0_nm,
                                                       width_nm=width, notes=resolved_notes), name="layerscope-resolve")
        if not RESIDUAL_EVIDENCE or resolve is None or resolve >= sigma0_nm:  # where the resolving pass runs
            return resolved.result()
        residual = _residual_maxima(data, px, found, min_sep=min_sep, sigma_nm=width, notes=residual_notes)
        out = pd.concat([resolved.result(), residual], ignore_index=True)
        resolved_notes.extend(residual_notes)  # after the resolving pass's, as when they ran one after the other
        return out

    resolved = _on_thread(evidence)
    return width, _wide_probe_window(data, px, xy_nm, sigma_nm=width, radius_nm=radius_nm, notes=notes), resolved


#: Wide probes (where the resolving pass runs, :func:`_resolved_maxima`): the generic finder's residual pass
#: (:func:`layerscope.imaging.columns.residual_columns`, docs/validation.md "imgwide5") is run on the columns
#: ``phases`` fitted, and its maxima confirm placed sites as the resolving pass's do (:func:`_confirm_placed_sites`;
#: positions stay the lattice positions): a half-occupied spinel or mixed Li-layer column one spacing from full ones
#: has no maximum of its own under a ~0.15 nm probe, but the generic finder's wide passes find it, and ``phases``
#: reported only a placed site there (of 164 ``phases`` misses on the 34 wide tuning draws at >= 1e3 e/A^2, 109 had
#: a placed site within 0.07 nm, 46 of them a generic detection; docs/validation.md "imgphrec"). On the 38 wide
#: draws ``phases`` recall rises on 11 and falls on none. False: the resolving pass's maxima only (before).
RESIDUAL_EVIDENCE = True
#: With :data:`RESIDUAL_EVIDENCE`: the generic finder's lattice pass (:func:`layerscope.imaging.columns.lattice_columns`)
#: first, its columns evidence as well and in the residual pass's model, as the generic finder's wide path runs them.
LATTICE_EVIDENCE = True
#: With :data:`RESIDUAL_EVIDENCE`: the lattice and residual passes' maxima (``site_tested``) confirm a placed site only
#: where the site's own measured amplitude (``intensity``) is above zero: a column adds intensity at its site, and one
#: that reads at or below its local background is empty whatever maximum lies near (as :func:`_detect_gap_columns`
#: leaves such a site placed). On the 38 wide tuning draws the passes alone confirmed 89 sites: the 25 on visible
#: columns read 0.11-4.1 standard errors, 63 lie on empty Li-layer columns (10 below zero) and one, 0.10 nm from an
#: empty Li column on random draw 5083 (526 e/A^2), was a false row (-0.66 standard errors; docs/validation.md
#: "imgprec"). False: any such maximum confirms (before, imgphrec).
CONFIRM_POSITIVE = True


def _residual_maxima(data: np.ndarray, px: float, found: pd.DataFrame, *, min_sep: float, sigma_nm: float,
                     notes: list[str]) -> pd.DataFrame:
    """Columns (``x_nm, y_nm``) the generic finder's wide passes find beside ``found`` (the fitted columns of
    :func:`_detect_and_fit`: ``x_nm, y_nm, sigma_nm, amplitude, fit_ok``): its lattice pass (:data:`LATTICE_EVIDENCE`)
    and its residual pass (:data:`RESIDUAL_EVIDENCE`), with the generic finder's tests (5 noise sigmas, 0.3 of the
    brightest neighbour), the neighbour distance ``min_sep / 0.85`` (the in-plane spacing, nm) and the measured
    column width ``sigma_nm`` (:func:`_lattice_width`; the generic finder's detection width is the image's column
    width, not ``phases``' 0.14 d_t: with that, 1.5 x its noise margin, most of these columns were not found)."""
    fit = pd.DataFrame({"row": found["y_nm"].to_numpy(dtype=float) / px - 0.5,
                        "col": found["x_nm"].to_numpy(dtype=float) / px - 0.5,
                        "sigma_px": found["sigma_nm"].to_numpy(dtype=float) / px,
                        "amplitude": found["amplitude"].to_numpy(dtype=float),
                        "fit_ok": found["fit_ok"].to_numpy(dtype=bool)})
    tests = dict(pixel_size_nm=px, column_sigma_nm=sigma_nm, neighbour_nm=min_sep / 0.85, min_separation_nm=min_sep,
                 noise_sigmas=5.0, relative_threshold=0.3, noise=_col.image_pixel_noise(data))  # the noise read once
    extra = []
    if LATTICE_EVIDENCE:
        lattice = _col.lattice_columns(data, fit, **tests)
        fit = pd.concat([fit, lattice[fit.columns]], ignore_index=True)
        extra.append(lattice)
    # one height per window: heights free lost recall on wide draws (docs/validation.md "imgwidth"; pruneimg)
    extra.append(_col.residual_columns(data, fit, heights_free=False, **tests))
    extra = pd.concat(extra, ignore_index=True)
    if len(extra):
        notes.append(f"{len(extra)} maxima of the image less the fitted columns (a wide probe) passed the detector's "
                     f"tests")
    return pd.DataFrame({"x_nm": (extra["col"].to_numpy(dtype=float) + 0.5) * px,
                         "y_nm": (extra["row"].to_numpy(dtype=float) + 0.5) * px,
                         "site_tested": CONFIRM_POSITIVE})


def _resolved_maxima(first_pass: _col.FirstPass | None, px: float, *, min_sep: float, sigma0_nm: float,
                     width_nm: float, notes: list[str]) -> pd.DataFrame:
    """Maxima (``x_nm, y_nm``) only the resolving detection pass finds, for columns as wide as ``width_nm``.

    Where the detection filter (``sigma0_nm``) widens columns of the measured width into ridges along
    their rows (:func:`layerscope.imaging.columns.resolving_sigma`; a defocused probe), the
    maxima of a sharper image that pass the detector's own noise and contrast tests and lie half a
    separation from every column the first pass kept before its lattice-neighbour test; empty otherwise.
    ``first_pass``: the maps of :func:`_detect_and_fit`'s detection
    (:func:`layerscope.imaging.columns.resolving_maxima`: the maxima of a second ``detect_columns`` call
    with the resolving width and no ``neighbour_nm``, without its first pass). They confirm placed sites only
    (:func:`_confirm_placed_sites`): rows, stackings and positions stay those of the first pass.
    """
    resolve = _col.resolving_sigma(width_nm, min_sep / 0.85, sigma0_nm)
    empty = pd.DataFrame({"x_nm": [], "y_nm": []})
    if resolve is None or resolve >= sigma0_nm:
        return empty
    rows, cols = _col.resolving_maxima(first_pass, resolve)
    if rows.size == 0:
        return empty
    notes.append(f"columns {width_nm:.3f} nm wide merge along their rows at the detection filter: {rows.size} "
                 f"maxima of the image smoothed by {resolve:.3f} nm passed the detector's tests there")
    return pd.DataFrame({"x_nm": (cols + 0.5) * px, "y_nm": (rows + 0.5) * px})


#: :func:`_confirm_placed_sites`: a maximum within this share of the in-plane spacing of a placed site
#: (0.06 nm) is that site's column. At 0.35 (the share of :func:`_merge_li_sites`) two of 25 maxima
#: that confirmed sites on random draws 34 and 79, 0.30-0.34 d_t from their sites, were noise 0.11 nm
#: from any column (draw 79's precision 0.991 -> 0.989); the sites within 0.25 all lay within 0.05 nm of one.
CONFIRM_SHARE = 0.25


def _confirm_placed_sites(maxima: pd.DataFrame, tm: pd.DataFrame, tm_xy: np.ndarray, li: pd.DataFrame, *,
                          d_t: float, notes: list[str]) -> None:
    """Mark, in place, a placed site (TM or Li layer, ``detected`` False) as found where the detector found it.

    A maximum that passed the detector's noise and relative-contrast tests but whose Gaussian fit
    failed is left out of the rows and stackings (its position is a centroid), yet it is evidence
    of a column: a column wider than half the fit window (a defocused probe) fails the fit, not the
    detection (random draws 34, 75, 79: 16-31 failed fits, 4-13 of them on visible columns the
    lattice placed, recall 0.95-0.96); so is a maximum only the resolving pass finds
    (:func:`_resolved_maxima`), and a dim one (0.2-0.3 of the local reference) that the detector's
    lattice-neighbour test kept (:func:`_detect_and_fit`; half-occupied spinel columns, random draws 37,
    45, 93, 97: 5-13 per draw). Each of these ``maxima`` (``x_nm, y_nm``) confirms the site nearest to it among all
    TM and Li-layer sites when that site is placed and lies within :data:`CONFIRM_SHARE` ``d_t``;
    one nearest to a detected column confirms nothing. Positions stay the lattice positions,
    ``fit_ok`` stays False.
    """
    if len(maxima) == 0:
        return
    li_xy = li[["x_nm", "y_nm"]].to_numpy(dtype=float).reshape(-1, 2)
    xy = np.vstack([tm_xy.reshape(-1, 2), li_xy])
    placed = ~np.concatenate([tm["detected"].to_numpy(dtype=bool), li["detected"].to_numpy(dtype=bool)])
    if not placed.any():
        return
    dist, j = cKDTree(xy).query(maxima[["x_nm", "y_nm"]].to_numpy(dtype=float))
    tested = (maxima["site_tested"].fillna(False).to_numpy(dtype=bool) if "site_tested" in maxima
              else np.zeros(len(maxima), dtype=bool))  # CONFIRM_POSITIVE
    hit = np.unique(j[(dist <= CONFIRM_SHARE * d_t) & placed[j] & (~tested | _site_shows(tm, li)[j])])
    if hit.size == 0:
        return
    n_tm = len(tm)
    tm_hit, li_hit = hit[hit < n_tm], hit[hit >= n_tm] - n_tm
    tm.loc[tm.index[tm_hit], "detected"] = True
    li.loc[li.index[li_hit], "detected"] = True
    notes.append(f"{hit.size} placed sites ({tm_hit.size} TM, {li_hit.size} Li layer) hold a detector maximum (its Gaussian fit "
                 f"failed, only the resolving pass found it, or a dim one one spacing from a column) and are reported as found (lattice position, fit_ok False)")


#: Wide probes (where the site window was widened): a placed Li-layer site (``detected`` False after every other
#: piece of evidence) is reported as found where its height, fitted with every TM and Li-layer lattice position's
#: height free and a constant in a disc of :data:`JOINT_SITE_WINDOW_WIDTHS` column widths
#: (:func:`layerscope.imaging.sitetests.joint_site_heights`), is at least :data:`JOINT_SITE_SIGMAS` standard errors
#: (from the counts) and its mixing index above zero. A half-occupied spinel or mixed Li-layer column one spacing
#: from full TM columns has no maximum of its own under a ~0.15 nm probe; its counts still show it. Calibrated on
#: the empty sites (Li-only columns) of the 38 wide-probe tuning draws (docs/validation.md "imgwide7"): none of
#: 5432 interior empty sites at >= 1e3 e/A^2 (nor of 2127 sites with no cation column within 0.07 nm) reaches 4,
#: the largest 3.90; 16 of the 56 visible columns ``phases`` missed there do. False: not tested (before).
JOINT_SITE_TEST = True
#: :data:`JOINT_SITE_TEST`: the least height, in standard errors, of a found site.
JOINT_SITE_SIGMAS = 4.0
#: :data:`JOINT_SITE_TEST`: the joint fit's disc radius, in column widths (the neighbours' peaks inside it; at the
#: site window's 2 widths their heights are read from their tails alone and the visible sites read a median 0.8
#: standard errors, at 4 widths 3.1).
JOINT_SITE_WINDOW_WIDTHS = 4.0


def _joint_site_columns(data: np.ndarray, px: float, tables: tuple[pd.DataFrame, pd.DataFrame], tm_xy: np.ndarray,
                        site_xy: np.ndarray, *, d_t: float, width_nm: float, wide: bool, counts: bool,
                        notes: list[str]) -> None:
    """Mark, in place, the placed Li-layer sites of ``li`` (``tables``: ``tm, li``; lattice positions ``site_xy``,
    nm) whose joint height is significant as found (:data:`JOINT_SITE_TEST`; ``wide``: the site window was widened).
    A site within half a spacing ``d_t`` of a detected row (TM or Li layer) is that row's column, reported already
    (random draw 4084: a placed site 5 pm from a detected Li-layer column). Position and fit are unchanged (lattice
    position, ``fit_ok`` False); rows, stackings and fills do not read ``detected``."""
    from layerscope.imaging import sitetests as _st

    tm, li = tables
    if not (JOINT_SITE_TEST and wide) or len(li) == 0:
        return
    det = pd.concat([t.loc[t["detected"].to_numpy(dtype=bool), ["x_nm", "y_nm"]] for t in (tm, li)])
    det = det.to_numpy(dtype=float)
    near = cKDTree(det).query(site_xy)[0] if len(det) else np.full(len(li), np.inf)
    with np.errstate(invalid="ignore"):
        cand = np.flatnonzero(~li["detected"].to_numpy(dtype=bool) & (li["mixing"].to_numpy(dtype=float) > 0)
                              & (near > 0.5 * d_t))
    if cand.size == 0:
        return
    h, e = _st.joint_site_heights(data, site_xy[cand], np.vstack([tm_xy, site_xy]), pixel_size_nm=px,
                                  sigma_nm=width_nm, radius_nm=JOINT_SITE_WINDOW_WIDTHS * width_nm, counts=counts)
    with np.errstate(invalid="ignore"):
        seen = np.isfinite(e) & (e > 0) & (h >= JOINT_SITE_SIGMAS * e)
    if seen.any():
        li.loc[li.index[cand[seen]], "detected"] = True
        notes.append(f"{int(seen.sum())} placed Li-layer sites show a column in their counts (height >= "
                     f"{JOINT_SITE_SIGMAS:g} standard errors with the neighbours' heights free) and are reported as "
                     f"found")


def _site_shows(tm: pd.DataFrame, li: pd.DataFrame) -> np.ndarray:
    """Per site of ``tm`` then ``li`` (as :func:`_confirm_placed_sites` stacks them): its measured amplitude
    (``intensity``) is above zero (:data:`CONFIRM_POSITIVE`); False where not measured."""
    def amp(t: pd.DataFrame) -> np.ndarray:
        return t["intensity"].to_numpy(dtype=float) if "intensity" in t else np.full(len(t), np.nan)

    with np.errstate(invalid="ignore"):
        return np.concatenate([amp(tm), amp(li)]) > 0


@dataclass
class _Indexed:
    """Columns on the lattice (stage 3 of :func:`find_atom_columns`): every column with its layer, the TM columns."""

    cols: pd.DataFrame  # detected columns on a layer, with u_nm, v_nm, layer, kind, detected
    is_tm: np.ndarray  # per row of ``cols``
    tm: pd.DataFrame  # TM columns, one-site gaps filled (detected False)
    index: _lat.LayerIndex
    tvec: np.ndarray  # refined direction along the layers
    nvec: np.ndarray  # refined basal normal
    corner: pd.DataFrame  # detected columns beyond the numbered layers (:func:`_corner_columns`)


#: Whether :func:`_index_columns` groups the rows a second time along the directions refined from the first
#: grouping (:func:`_regrouped_rows`). The power spectrum's layer normal can be 1-2 degrees off (tuning draw 120:
#: 1.4 degrees, 0.15 nm of normal coordinate over a 6 nm row); where a row's columns form short chains (a heavily
#: mixed block, low dose) their mean normal coordinates then run in a staircase along the row, and the single
#: linkage of :func:`layerscope.imaging.lattice.group_rows` (chains closer than half a row spacing) joined three
#: cation layers, Li-TM-Li, into one "TM" row (docs/validation.md "img120"). On by default since the widest-row
#: guard (:data:`REGROUP_NARROWER`): of 549 tuning draws it changes two (120: 5 wrong "no" -> 0, steps 0.68 -> 1.0;
#: 3009: no target moves); without the guard 4135 (rows bent by the scan) got a new wrong "no" and ``phases`` recall
#: 0.976 -> 0.930; the report range 1000-1199 is identical in every column (docs/validation.md, session 30).
REGROUP_ROWS = True
#: Smallest angle (degrees) between the refined layer normal and the power spectrum's for which the rows are grouped
#: again: below it a row 7 nm long (the widest field) drifts less than 0.12 nm in normal coordinate, half a row
#: spacing (the linkage gap of ``group_rows``), so no staircase can join two rows. On the tuning draws the rows
#: changed at 0.1-0.4 degrees by single noise maxima only (a 558 e/A^2 draw lost fill by it) and at 1.4 and 4.2
#: degrees where rows had been joined (docs/validation.md "img120").
REGROUP_MIN_DEG = 1.0
#: The second grouping is kept only where it narrows the widest row: its widest row's spread (the 90th percentile of
#: the columns' distance from their row's mean normal coordinate; :func:`_widest_row`) below this
#: share of the first grouping's. Where one straight direction cannot follow the rows (rows bent by the scan, draw
#: 4135: 1.19 -> 1.32 cation spacings) the first grouping stays; a staircase of joined rows narrows ~17x (draw 120:
#: 1.06 -> 0.06, 3009: 0.55 -> 0.03)
REGROUP_NARROWER = 0.5


#: Rows grouped on a normal coordinate from which a smooth offset field fitted to the in-row links is taken away
#: (:func:`layerscope.imaging.lattice.row_offset_field`): rows bent by the scan, or straight along a direction off
#: the power spectrum's layer normal (draw 4135: 5.7 degrees, 2.9 cation spacings over the field; the straight
#: grouping joined up to four cation layers per row), are grouped as the rows they are (docs/validation.md "imgbent").
#: The spectrum's direction is quantised by its pixels (a 5.9 nm field: one pixel at the layer spot is 4.5 degrees).
#: On by default: of the 997 tuning draws of 0-199, 2000-2199, 3000-3199, 4000-4199 and 5000-5199 it regroups seven:
#: 2023, 2029 and 4135 (heavily mixed O3 blocks; steps 0.41 / 0.45 / 0.64 -> 1.0, ``phases`` recall to 1.0), 120 and
#: 3009 (as ``REGROUP_ROWS`` did: scores equal), 3070 and 5190 (no target met or missed differently); no target share
#: lower, no new wrong yes/no.
BENT_ROWS = True
#: Total degree of the offset field's polynomial (1: a tilt only; 2: a bend along and across the rows).
BENT_DEGREE = 2
#: The offset field is used only where its span over the columns reaches this many cation spacings (below it the
#: rows are grouped as before, column for column). Over the tuning draws the span's median is 0.07 and its 95th
#: percentile 0.25-0.34 (noise); with no floor the field moved single noise columns in 20 draws of 4000-4199, and a
#: 510 e/A^2 draw's ``phases`` precision fell below its target (docs/validation.md "imgbent").
BENT_MIN_SPAN = 0.5


def _row_offset(x: np.ndarray, y: np.ndarray, lat: Any, *, d_t: float, cation: float,
                notes: list[str]) -> np.ndarray | None:
    """The rows' offset field (nm per column, :data:`BENT_ROWS`), or None where it is off or spans less than
    :data:`BENT_MIN_SPAN` cation spacings."""
    if not BENT_ROWS:
        return None
    offset = _lat.row_offset_field(x, y, inplane=lat.inplane, normal=lat.normal, inplane_spacing_nm=d_t,
                                   row_spacing_nm=cation, degree=BENT_DEGREE)
    span = float(np.ptp(offset)) if offset.size else 0.0
    if span < BENT_MIN_SPAN * cation:
        return None
    notes.append(f"rows grouped along their own line: the rows run up to {span:.2f} nm off a straight line along "
                 f"the power spectrum's layer direction (tilted or bent), fitted from the columns")
    return offset


def _widest_row(x: np.ndarray, y: np.ndarray, rows: np.ndarray, nvec: np.ndarray) -> float:
    """The spread of the widest row (nm): over the rows of 3 columns or more, the largest 90th percentile of the
    columns' distance from their row's mean coordinate along ``nvec``."""
    v = np.column_stack([x, y]) @ nvec
    n = np.bincount(rows)
    dev = np.abs(v - (np.bincount(rows, weights=v) / np.maximum(n, 1))[rows])
    return max((float(np.percentile(dev[rows == r], 90)) for r in np.flatnonzero(n >= 3)), default=0.0)


def _regrouped_rows(x: np.ndarray, y: np.ndarray, rows: np.ndarray, tvec: np.ndarray, nvec: np.ndarray, *,
                    first_normal: np.ndarray, d_t: float, cation: float,
                    notes: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows grouped again along the refined directions ``tvec, nvec`` (see :data:`REGROUP_ROWS`), the directions
    refined again from them. Where ``nvec`` lies within :data:`REGROUP_MIN_DEG` of ``first_normal`` (the direction
    the rows were grouped along), the rows come out the same (every column in the same numbered row), or the second
    grouping does not narrow the widest row (:data:`REGROUP_NARROWER`), the first grouping and its directions are
    returned unchanged."""
    first = np.asarray(first_normal, dtype=float)
    if np.degrees(np.arccos(min(1.0, abs(float(nvec @ first))))) < REGROUP_MIN_DEG:
        return rows, tvec, nvec
    again = _lat.group_rows(x, y, inplane=tvec, normal=nvec, inplane_spacing_nm=d_t, row_spacing_nm=cation)
    if np.array_equal(again, rows):
        return rows, tvec, nvec
    t2, n2 = _lat.refine_directions(x, y, again, normal=nvec)
    if _widest_row(x, y, again, n2) >= REGROUP_NARROWER * _widest_row(x, y, rows, nvec):
        return rows, tvec, nvec
    off = np.degrees(np.arccos(min(1.0, abs(float(n2 @ first)))))
    notes.append(f"rows grouped again along the layer direction refined from the columns ({rows.max() + 1} -> "
                 f"{again.max() + 1} rows; the power spectrum's layer normal was {off:.1f} deg off)")
    return again, t2, n2


def _index_columns(found: pd.DataFrame, lat: Any, *, d_t: float, cation: float, notes: list[str],
                   rim: dict[str, Any]) -> _Indexed:
    """Rows linked along the layers, numbered as cation layers (TM or Li), off-lattice maxima dropped, TM gaps filled.

    ``rim`` holds the image and the fit's scale (``data, px, sigma_nm, radius_nm``; ``counts``: a count image)
    with which TM columns past a layer's run end are tested (:func:`_fill_tm_gaps`); the image's extent also
    gives each row's chord (its line's length inside the field), so that the short rows in the corners of a
    rotated field are numbered (:func:`layerscope.imaging.lattice.index_layers`).
    """
    x = found["x_nm"].to_numpy()
    y = found["y_nm"].to_numpy()
    offset = _row_offset(x, y, lat, d_t=d_t, cation=cation, notes=notes)
    rows = _lat.group_rows(x, y, inplane=lat.inplane, normal=lat.normal, inplane_spacing_nm=d_t,
                           row_spacing_nm=cation, offset_nm=offset)
    tvec, nvec = _lat.refine_directions(x, y, rows, normal=lat.normal)
    if REGROUP_ROWS:
        rows, tvec, nvec = _regrouped_rows(x, y, rows, tvec, nvec, first_normal=lat.normal, d_t=d_t, cation=cation,
                                           notes=notes)
    u = np.column_stack([x, y]) @ tvec
    v = np.column_stack([x, y]) @ nvec
    v_row = np.bincount(rows, weights=v) / np.maximum(np.bincount(rows), 1)
    shape = rim["data"].shape
    chord = _lat.chord_lengths(v_row, inplane=tvec, normal=nvec,
                               extent_nm=(shape[1] * rim["px"], shape[0] * rim["px"]))
    index = _lat.index_layers(u, v, rows, inplane_spacing_nm=d_t, cation_spacing_nm=cation, chord_nm=chord)
    if not index.parity_from_contrast:
        notes.append("no empty Li layer in the image: TM and Li layers of the rock salt were assigned "
                     "by convention (first layer = TM)")
    layer = index.layer_of_row[rows]
    off_lattice = layer < 0
    corner = _corner_columns(found.assign(u_nm=u, v_nm=v), rows, index, chord=chord, d_t=d_t, cation=cation, notes=notes)
    if off_lattice.any():
        notes.append(f"{int(off_lattice.sum())} detected maxima lie on no lattice layer (noise, or outside the "
                     f"crystal) and were dropped")
        found, u, v, layer = found[~off_lattice].reset_index(drop=True), u[~off_lattice], v[~off_lattice], layer[~off_lattice]
    is_tm = (layer % 2) == index.tm_parity
    cols = found.assign(u_nm=u, v_nm=v, layer=layer, kind=np.where(is_tm, "TM", "Li"), detected=True)
    if ONE_ROW_PER_SITE:
        keep = _one_per_site(cols, is_tm, d_t=d_t, cation=cation, notes=notes)
        cols, is_tm = cols[keep].reset_index(drop=True), is_tm[keep]
    tm = _fill_tm_gaps(cols[is_tm].reset_index(drop=True), d_t=d_t, inplane=tvec, normal=nvec, **rim)
    if (~tm["detected"]).any():
        notes.append(f"{int((~tm['detected']).sum())} TM columns missing in a one-site gap or at most 4 sites "
                     f"past a run's end (a rim) of their layer were placed on the lattice (detected = False)")
    return _Indexed(cols, is_tm, tm, index, tvec, nvec, corner)


#: The cation-layer spacing used after the layers are numbered (TM pairs, Li-layer sites, the reported
#: ``tm_layer_period_nm``) is read from the detected TM columns' normal coordinates against their layer numbers
#: (:func:`layerscope.imaging.lattice.layer_spacing_from_columns`) instead of the power spectrum's layer spot. On the
#: 38 wide tuning draws the spectrum's period (harmonic fit) lies -0.9 to +3.0 % off the truth's apparent period (SD
#: 0.75 %; the weak second order, off by up to 1.3 bins, weighs 4:1 in the fit), the columns' -0.3 to +0.2 % (SD
#: 0.14 %); detection, rows and layer numbers are made before it and do not change. On by default: on the 38 wide
#: tuning draws, 0-199 and 7000-7099 every validator row is equal off and on, the reported period's largest error
#: 3.0 / 4.6 / 5.0 % -> 0.27 / 0.49 / 0.34 % (docs/validation.md "imgperiod"). False: the spectrum's period throughout.
PERIOD_FROM_COLUMNS = True


def _column_spacing(geo: Any, cation: float, *, notes: list[str]) -> float:
    """The cation-layer spacing (nm) from the detected TM columns of ``geo`` where :data:`PERIOD_FROM_COLUMNS` is
    set and the fit is accepted (:func:`layerscope.imaging.lattice.layer_spacing_from_columns`), else ``cation``."""
    if not PERIOD_FROM_COLUMNS:
        return cation
    tm = geo.tm[geo.tm["detected"].to_numpy(dtype=bool)]
    fitted = _lat.layer_spacing_from_columns(tm["v_nm"].to_numpy(), tm["layer"].to_numpy(), spacing_nm=cation)
    if fitted is None:
        return cation
    notes.append(f"cation-layer spacing read from the numbered TM columns: {fitted:.4f} nm (the power spectrum's "
                 f"{cation:.4f} nm, {100 * (fitted / cation - 1):+.1f} %)")
    return fitted


#: One row per TM column: two detected columns of one TM layer whose lattice positions (the layer's running phase,
#: :func:`layerscope.imaging.lattice.lattice_positions`) lie within :data:`SAME_SITE_SHARE` of the in-plane
#: spacing of each other are one column detected twice (under a ~0.15 nm probe one column's fit split in two, 0.05-0.15
#: nm either side of it); the one whose fit lies nearest its site is kept, the other dropped before the gaps, pairs
#: and Li-layer sites are made. Before (False), both were reported, at the same site when :data:`LATTICE_POSITIONS`
#: moved them there (docs/validation.md "imgdup").
ONE_ROW_PER_SITE = True
#: Largest distance along the layer normal between two fits of one column (share of the cation-layer spacing): where
#: a row holds columns of two cation layers (a grouping off the rows' direction: draws 4135, 120 and 2029 with the row
#: patches off) their lattice positions share sites but the fits lie 0.87-1.0 spacings apart, and without this guard
#: the rule dropped real columns (4135's phases recall 0.976 -> 0.836; CI, session 34); the second fits of one column
#: on draws 7033, 4114 and 2085 lie 0.02-0.66 spacings apart (docs/validation.md "imgdup's guard").
ONE_COLUMN_NORMAL_SHARE = 0.75
#: Largest distance between two TM columns' lattice positions (share of the in-plane spacing) at which they are one
#: site: the lattice positions of one site's two fits lie within 0.02 nm (0.08 d_t), neighbouring sites d_t apart.
SAME_SITE_SHARE = 0.25


def _one_per_site(cols: pd.DataFrame, is_tm: np.ndarray, *, d_t: float, cation: float, notes: list[str]) -> np.ndarray:
    """Rows of ``cols`` to keep (:data:`ONE_ROW_PER_SITE`): of two TM columns (``is_tm``) of one layer whose lattice
    positions lie within :data:`SAME_SITE_SHARE` ``d_t`` (nm) of each other and whose own fits lie within
    :data:`ONE_COLUMN_NORMAL_SHARE` of the cation-layer spacing ``cation`` (nm) of each other along the layer normal
    (two cation layers grouped into one row are a spacing apart: both kept), the one whose fit lies farther from
    its lattice position is dropped; every Li-layer column is kept."""
    keep = np.ones(len(cols), dtype=bool)
    idx = np.nonzero(is_tm)[0]
    if idx.size < 2:
        return keep
    u, v, layer = (cols[c].to_numpy()[idx] for c in ("u_nm", "v_nm", "layer"))
    u_s, v_s = _lat.lattice_positions(u, v, layer, inplane_spacing_nm=d_t, max_gap_nm=1.5 * d_t)
    # each layer shifted by 10 d_t per layer number: columns of two layers never fall within the share of d_t
    site = np.column_stack([u_s, v_s + 10.0 * d_t * layer])
    off = np.hypot(u - u_s, v - v_s)
    for a, b in sorted(cKDTree(site).query_pairs(SAME_SITE_SHARE * d_t), key=lambda ab: min(off[ab[0]], off[ab[1]])):
        if keep[idx[a]] and keep[idx[b]] and abs(v[a] - v[b]) < ONE_COLUMN_NORMAL_SHARE * cation:
            keep[idx[a] if off[a] > off[b] else idx[b]] = False
    if not keep.all():
        notes.append(f"{int((~keep).sum())} TM columns were a second detection of a column at the same lattice site "
                     f"(within {SAME_SITE_SHARE:g} column spacings) and were dropped: the fit nearest the site kept")
    return keep


def _corner_columns(found: pd.DataFrame, rows: np.ndarray, index: _lat.LayerIndex, *,
                    chord: np.ndarray, d_t: float, cation: float, notes: list[str]) -> pd.DataFrame:
    """Detected columns of the rows beyond the numbered layers that continue the lattice (:func:`layerscope.imaging.lattice.corner_rows`).

    They hold no TM-TM gap of the image (a corner row too short to index, a Li layer beyond the outermost TM
    layer): reported in the column table (``indexed`` False, ``layer`` -1, ``kind`` from the parity the
    lattice continues with) and in no layer, stacking, fill or phase. A column fitted within 1.5 widths of the
    image edge (``at_border``: perhaps the tail of a column outside the field) is left out.
    """
    layer, on_line = _lat.corner_rows(found["v_nm"].to_numpy(), rows, index.layer_of_row, chord_nm=chord, inplane_spacing_nm=d_t,
                                      cation_spacing_nm=cation)
    k = layer[rows]
    take = (k > -(10 ** 6)) & on_line & ~found.get("at_border", pd.Series(False, index=found.index)).to_numpy(dtype=bool)
    take &= _reached(found[["x_nm", "y_nm"]].to_numpy(dtype=float), index.layer_of_row[rows] >= 0, take,
                     reach_nm=float(np.hypot(2.3 * cation, 0.5 * d_t)))
    out = found[take].assign(layer=-1, kind=np.where(k[take] % 2 == index.tm_parity, "TM", "Li"), detected=True,
                             indexed=False)
    if take.any():
        notes.append(f"{int(take.sum())} detected columns on {np.unique(rows[take]).size} rows beyond the outermost "
                     f"analysed layers (corner rows too short to index, Li layers beyond the last TM layer) are "
                     f"reported with layer -1 and no stacking, fill or phase (indexed = False)")
    return out


@dataclass
class _Stacking:
    """TM-TM pairs and their stacking relations (stage 4 of :func:`find_atom_columns`)."""

    pairs: pd.DataFrame  # with registry_smoothed, relation, relation_above, relation_below
    relation: np.ndarray  # per pair
    reg_down: np.ndarray  # per TM column: registry of the pair below it
    rel_down: np.ndarray  # per TM column: relation of the pair below it (its layer's where none)
    rel_up: np.ndarray  # per TM column: relation of the pair that ends on it
    zone: str  # the zone analysed (the mirror one when the majority stacking is reversed)
    o3_step: float
    #: O3 and O3' TM-layer pairs read with the zone as given (before any mirror swap): :func:`handedness_flags`
    handedness: tuple[int, int] = (0, 0)


#: The share of reversed (O3') TM-layer pairs among the O3 and O3' ones from which the image is taken as the mirror
#: view (a 2:1 majority). Which way the beam points cannot be read from one image; the majority stacking is taken as
#: the matrix only where it clearly is one. Draw 4133 (docs/validation.md "Draw 4133", "Mirror view"): 112 reversed
#: against ~100 forward pairs swapped O3 and O3' everywhere; over 1097 tuning draws the reversed share in the zone
#: given reads at most 0.49, every pure mirror view (tests) ~1.
MIRROR_SHARE = 2.0 / 3.0


def _mirror_share(n_o3: int, n_twin: int) -> float:
    """The share of reversed (O3') pairs among the O3 and O3' ones (NaN without either)."""
    return n_twin / (n_o3 + n_twin) if n_o3 + n_twin else float("nan")


def _stacking(tm: pd.DataFrame, index: _lat.LayerIndex, *, d_t: float, cation: float, zone: str,
              notes: list[str]) -> _Stacking:
    """TM-TM pairs, registry averaged along the layers, relations (the mirror zone when most are reversed)."""
    o3_step = _ph.o3_step_for_zone(zone)
    pairs = _lat.tm_pairs(tm["u_nm"].to_numpy(), tm["v_nm"].to_numpy(), tm["layer"].to_numpy(),
                          tm_parity=index.tm_parity, inplane_spacing_nm=d_t,
                          max_distance_nm=1.5 * 2.0 * cation)
    # The registry averaged over 5, 9 and 17 neighbouring pairs of each layer (noise / sqrt(5) for
    # the first), classified by _classify_registry.
    windows = [_lat.smooth_registry(tm["u_nm"].to_numpy()[pairs["above"].to_numpy()], pairs["layer"].to_numpy(),
                                    pairs["registry"].to_numpy(), half_window=h, max_gap_nm=1.5 * d_t)
               for h in (2, 4, 8)]
    smoothed, rel = _classify_registry(windows, pairs["layer"].to_numpy(), o3_step=o3_step)
    pairs["registry_smoothed"] = smoothed
    n_o3, n_twin = int(np.sum(rel == "O3")), int(np.sum(rel == "O3'"))
    if _mirror_share(n_o3, n_twin) >= MIRROR_SHARE:
        # The beam points the other way from the zone's convention (a real image does not say which):
        # the view is the mirror one, so the majority stacking is O3 and the reversed one the twin.
        mirror = {"100": "110", "110": "100"}[zone]
        notes.append(f"the majority stacking ({n_twin} of {len(rel)} TM-layer pairs, against {n_o3} forward) steps "
                     f"opposite to the [{zone}] convention: the image is the mirror view, analysed as [{mirror}] so "
                     f"that the matrix is O3 and the reversed stacking O3' (twin)")
        zone, o3_step = mirror, _ph.o3_step_for_zone(mirror)
        smoothed, rel = _classify_registry(windows, pairs["layer"].to_numpy(), o3_step=o3_step)
        pairs["registry_smoothed"] = smoothed
    # Relation below each TM column and above it (the pair that ends on it).
    rel_down = np.full(len(tm), "", dtype="<U4")
    rel_down[pairs["above"].to_numpy()] = rel
    reg_down = np.full(len(tm), np.nan)
    reg_down[pairs["above"].to_numpy()] = pairs["registry"].to_numpy()
    rel_up = np.full(len(tm), "", dtype="<U4")
    rel_up[pairs["below"].to_numpy()] = rel
    rel_up, rel_down = _fill_from_layers(tm["layer"].to_numpy(), rel_up, rel_down)
    pairs = pairs.assign(relation=rel, relation_above=rel_up[pairs["above"].to_numpy()],
                         relation_below=rel_down[pairs["below"].to_numpy()])
    return _Stacking(pairs, rel, reg_down, rel_down, rel_up, zone, o3_step, handedness=(n_o3, n_twin))


def _tm_lattice_positions(tm: pd.DataFrame, *, d_t: float) -> tuple[np.ndarray, np.ndarray]:
    """The TM columns' lattice positions ``u, v`` (nm; smoothed along the layer): the Li-layer sites are placed
    from them and every site's intensity is measured there (:func:`_place_li_sites`, ``_measure_li_sites``)."""
    return _lat.lattice_positions(tm["u_nm"].to_numpy(), tm["v_nm"].to_numpy(), tm["layer"].to_numpy(),
                                  inplane_spacing_nm=d_t, max_gap_nm=1.5 * d_t)


def _place_li_sites(geo: _Indexed, stack: _Stacking, *, d_t: float, cation: float, shape: tuple[int, int],
                    px: float, tm_u: np.ndarray, tm_v: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Stage 5 of :func:`find_atom_columns`: one Li-layer site per TM pair (and per one-site gap).

    A pair with a TM column fitted outside the image (its registry extrapolated) places its site from
    the layer's nearest other site (:func:`_replace_from_neighbours`). ``tm_u, tm_v``: the TM columns'
    lattice positions (:func:`_tm_lattice_positions` of ``geo.tm``).

    Returns the Li-layer table (relations from its pair or context) and the lattice positions
    (n x 2, x and y in nm) its intensities are measured at.
    """
    tm, pairs, rel = geo.tm, stack.pairs, stack.relation
    tvec, nvec = geo.tvec, geo.nvec
    step = _ph.li_site_steps(pairs["registry"].to_numpy(), rel, pairs["relation_above"].to_numpy(),
                             pairs["relation_below"].to_numpy(), o3_step=stack.o3_step)
    a_idx = pairs["above"].to_numpy()
    b_idx = pairs["below"].to_numpy()
    site_u = tm_u[a_idx] + step * d_t
    site_v = 0.5 * (tm_v[a_idx] + tm_v[b_idx])
    sites = pd.DataFrame({"u_nm": site_u, "v_nm": site_v, "layer": pairs["layer"].to_numpy(), "pair": np.arange(len(pairs)),
                          "context": np.arange(len(pairs)), "step": step})
    # A TM column fitted outside the image (a maximum on the edge whose fit saw one flank) does not place
    # a site: its position, and the pair's registry and step, are extrapolated (random draw 0: a registry
    # of -0.02 put three spinel sites 0.08-0.17 nm off theirs, read as a clean layer). The site is put on
    # the lattice of its layer's nearest other site instead (``_replace_from_neighbours``).
    tm_in = _inside(tm[["x_nm", "y_nm"]].to_numpy(dtype=float), shape, px)
    sites = _replace_from_neighbours(sites, ~(tm_in[a_idx] & tm_in[b_idx]), d_t=d_t)
    sites = _fill_site_gaps(sites, d_t=d_t, tm_u=tm_u, tm_layer=tm["layer"].to_numpy())
    li_found = geo.cols[~geo.is_tm].reset_index(drop=True)
    li = _merge_li_sites(sites, li_found, d_t=d_t, cation=cation)

    # Positions of the predicted sites in the image frame; a site predicted from a TM column at the
    # border can fall outside the image, where it has no intensity to measure: dropped.
    xy = np.outer(li["u_nm"], tvec) + np.outer(li["v_nm"], nvec)
    li["x_nm"] = xy[:, 0]
    li["y_nm"] = xy[:, 1]
    li = li[_inside(xy, shape, px)].reset_index(drop=True)
    li["kind"] = "Li"
    site_xy = np.outer(li.pop("u_site_nm"), tvec) + np.outer(li.pop("v_site_nm"), nvec)
    # Relation context of every Li site: from its pair, or for a site filled into a gap from the pair of
    # its neighbour (``context``); detected sites without a pair: none. ``above``/``below`` (the TM
    # columns the site was placed from) only from its own pair.
    li["context"] = li["context"].fillna(-1).astype(int)
    has_pair = li["pair"].to_numpy() >= 0
    has_ctx = li["context"].to_numpy() >= 0
    for name in ("registry", "relation", "relation_above", "relation_below", "above", "below"):
        own = name in ("above", "below")
        ok = has_pair if own else has_ctx
        pi = np.where(ok, li["pair" if own else "context"].to_numpy(), 0)
        values = pairs[name].to_numpy()[pi] if len(pairs) else np.zeros(len(li))
        if values.dtype.kind in "UO":
            li[name] = np.where(ok, values, "")
        elif own:
            li[name] = np.where(ok, values, -1)
        else:
            li[name] = np.where(ok, values, np.nan)
    return li, site_xy


def _replace_from_neighbours(sites: pd.DataFrame, bad: np.ndarray, *, d_t: float, max_sites: int = 2) -> pd.DataFrame:
    """Sites ``bad`` (placed from a TM column fitted outside the image) moved onto the lattice of their layer's
    nearest other site: ``k`` column spacings from it along the layer (``k`` the nearest whole number, at most
    ``max_sites``), with its ``v``, relations (``context``) and stacking ``step``, and ``pair`` -1; a site
    farther out, or one that lands on a site already there, is dropped."""
    if not bad.any():
        return sites
    u, lay = sites["u_nm"].to_numpy(), sites["layer"].to_numpy()
    keep = ~bad
    moved = []
    for i in np.flatnonzero(bad):
        good = np.flatnonzero(keep & (lay == lay[i]))
        if good.size == 0:
            continue
        j = good[np.argmin(np.abs(u[good] - u[i]))]
        k = int(np.rint((u[i] - u[j]) / d_t))
        if k == 0 or abs(k) > max_sites:
            continue
        moved.append({"u_nm": u[j] + k * d_t, "v_nm": sites["v_nm"].iat[j], "layer": lay[i], "pair": -1,
                      "context": sites["context"].iat[j], "step": sites["step"].iat[j]})
    out = sites[keep]
    if moved:
        add = pd.DataFrame(moved)
        add = add[~_beside_site(add, out, d_t=d_t, within=0.5)]
        add = add.loc[~add[["layer"]].assign(i=np.rint(add["u_nm"] / d_t)).duplicated()]
        out = pd.concat([out, add], ignore_index=True)
    return out.reset_index(drop=True)


def _classify_registry(windows: list[np.ndarray], layer: np.ndarray, *, o3_step: float) -> tuple[np.ndarray, np.ndarray]:
    """Stacking relation of every TM-layer pair from its registry averaged along the layer.

    ``windows`` holds the registry of every pair averaged over ever wider windows of its layer
    (:func:`layerscope.imaging.lattice.smooth_registry`; 5, 9 and 17 pairs in the pipeline). The
    first is classified (:func:`layerscope.imaging.phases.classify_relations`); a pair that is
    then ``"off"`` (far from all three stackings) is classified again from the wider windows in
    turn, keeping the first that is not off: at a few electrons per column (5 nm, 5e2 e/A^2) two
    or three badly placed columns, often at the end of a layer where the window is one-sided,
    throw five pairs off; a real glide or disordered gap stays off over every window. A pair off
    over every window takes the nearest of the three stackings over the widest window when that
    is the relation most pairs of its layer hold (a layer biased by a few pm towards the next
    stacking at its end); in a layer mostly off (a glide) it stays off.

    Returns
    -------
    smoothed, relation : numpy.ndarray
        The averaged registry each relation was classified from, and the relation.
    """
    smoothed = windows[0].copy()
    rel = _ph.classify_relations(smoothed, o3_step=o3_step)
    for sm in windows[1:]:
        r = _ph.classify_relations(sm, o3_step=o3_step)
        redo = (rel == "off") & (r != "off")
        smoothed[redo], rel[redo] = sm[redo], r[redo]
    widest = windows[-1]
    nearest = _ph.classify_relations(widest, o3_step=o3_step, tolerance=0.5)
    for k in np.unique(layer[rel == "off"]):
        names, counts = np.unique(rel[(layer == k) & (rel != "")], return_counts=True)
        major = names[np.argmax(counts)]
        take = (layer == k) & (rel == "off") & (nearest == major)
        smoothed[take], rel[take] = widest[take], major
    return smoothed, rel


#: Most TM columns the shared width of the intensities is measured on (spread over the field).
WIDTH_SITES = 600
#: Least radius of the site-intensity window in column widths (Gaussian standard deviations): where the
#: columns' spacing allows less (a probe of ~0.15 nm), the window grows to it (:func:`_wide_probe_window`);
#: at 2 widths it holds 98 % of a column's template (the integral of g^2), at 1.2 widths 76 %.
SITE_WINDOW_WIDTHS = 2.0


def _lattice_width(data: np.ndarray, px: float, xy_nm: np.ndarray, *, sigma_nm: float, radius_nm: float,
                   notes: list[str]) -> float:
    """Column width (nm) for the intensities: measured at the lattice positions of the detected TM columns.

    The fits' median width is biased low where the column is wider than half the fit window (a
    defocused probe): each fit centred on a noise maximum reads a narrow peak (random draw 79:
    0.025 nm for a 0.064 nm column). At the lattice positions (noise averaged along the layer) the
    shared width (:func:`layerscope.imaging.columns.measure_column_width`) is not locked to the noise.
    """
    if len(xy_nm) < 10:
        return sigma_nm
    # one width for all: WIDTH_SITES columns spread over the field determine it (CPU ~0.07 s)
    xy_nm = xy_nm[np.unique(np.linspace(0, len(xy_nm) - 1, min(len(xy_nm), WIDTH_SITES)).astype(int))]
    width = _col.measure_column_width(data, xy_nm[:, 1] / px - 0.5, xy_nm[:, 0] / px - 0.5, radius_px=radius_nm / px,
                                      sigma_px=sigma_nm / px) * px
    if width > 1.25 * sigma_nm:
        notes.append(f"the columns are {width:.3f} nm wide at their lattice positions, wider than their fits read "
                     f"({sigma_nm:.3f} nm; a defocused probe): the intensities use {width:.3f} nm")
    return width


def _site_intensities(data: np.ndarray, px: float, sites: pd.DataFrame, *, sigma_nm: float,
                      radius_nm: float) -> tuple[np.ndarray, np.ndarray]:
    """Peak height and local background of a Gaussian of the shared width at every site's position.

    One estimator for every site, detected or placed (:func:`layerscope.imaging.columns.site_intensities`).
    """
    x, y = sites["x_nm"].to_numpy(), sites["y_nm"].to_numpy()
    return _col.site_intensities(data, y / px - 0.5, x / px - 0.5, sigma_px=sigma_nm / px, radius_px=radius_nm / px)


def _wide_probe_window(data: np.ndarray, px: float, xy_nm: np.ndarray, *, sigma_nm: float, radius_nm: float,
                       notes: list[str]) -> tuple[float, float]:
    """Column width and window radius (nm) of the site intensities: the window holds the column.

    The window radius set by the columns' spacing (``radius_nm``) is kept where it is at least
    :data:`SITE_WINDOW_WIDTHS` column widths (every probe that resolves the lattice well). A wider
    probe's column fills such a window (random draws with a 0.15 nm probe: 1.2-1.6 widths): with a
    free background the amplitude's variance grows ~9-fold (docs/validation.md "widefill") and the
    width measured in it reads low. There the window grows to ``SITE_WINDOW_WIDTHS`` widths, the width
    is measured again in it (:func:`_lattice_width`) and the window set from that width.
    """
    if SITE_WINDOW_WIDTHS * sigma_nm <= radius_nm:
        return sigma_nm, radius_nm
    width = _lattice_width(data, px, xy_nm, sigma_nm=sigma_nm, radius_nm=SITE_WINDOW_WIDTHS * sigma_nm, notes=[])
    if NEIGHBOUR_WIDTH:
        width = _neighbour_width(data, px, xy_nm, sigma_nm=width)
    window = max(radius_nm, SITE_WINDOW_WIDTHS * width)
    notes.append(f"wide columns ({width:.3f} nm): the site intensities use a window of {window:.3f} nm "
                 f"({SITE_WINDOW_WIDTHS:g} widths, not {radius_nm:.3f} nm) and unmix their neighbours' tails")
    return width, window


#: Wide probes (:func:`_wide_probe_window`): the column width of the site intensities is measured with the
#: neighbouring TM columns in the model (:func:`layerscope.imaging.columns.measure_lattice_width`, in a window of
#: :data:`NEIGHBOUR_WIDTH_WINDOW` widths; a plain Gaussian sum), not by one Gaussian and a free constant per window,
#: which reads a wide column 10-27 % narrower than it is (docs/validation.md "imgwide3"). On since imgwide4: with
#: ``interlayers.POOL_MEASURED_SPREAD`` it raises the fill share of the 34 wide-probe tuning draws at >= 1e3 e/A^2
#: 70.6 -> 73.5 %, rims and spinel 90.9 -> 95.5 % and lowers every draw's fill_mae, no target share falling on the
#: wide draws or on 7000-7099 (docs/validation.md "imgwide4"). False: the single-Gaussian width (before).
NEIGHBOUR_WIDTH = True
NEIGHBOUR_WIDTH_WINDOW = 3.5


def _neighbour_width(data: np.ndarray, px: float, xy_nm: np.ndarray, *, sigma_nm: float) -> float:
    """Column width (nm) at the TM lattice positions ``xy_nm`` with the other TM columns' tails in the model.

    :data:`WIDTH_SITES` positions spread over the field are fitted (as :func:`_lattice_width`), each window
    ``NEIGHBOUR_WIDTH_WINDOW`` x ``sigma_nm`` wide holding every position's Gaussian
    (:func:`layerscope.imaging.columns.measure_lattice_width`); ``sigma_nm`` where fewer than 10 positions.
    """
    if len(xy_nm) < 10:
        return sigma_nm
    sites = xy_nm[np.unique(np.linspace(0, len(xy_nm) - 1, min(len(xy_nm), WIDTH_SITES)).astype(int))]
    return _col.measure_lattice_width(data, sites[:, 1] / px - 0.5, sites[:, 0] / px - 0.5, xy_nm[:, 1] / px - 0.5,
                                      xy_nm[:, 0] / px - 0.5, radius_px=NEIGHBOUR_WIDTH_WINDOW * sigma_nm / px,
                                      sigma_px=sigma_nm / px) * px


#: Wide probes (where :func:`_wide_probe_window` widened the window): a detected column whose fitted position
#: lies more than :data:`LATTICE_POSITION_WIDTHS` column widths from its lattice site (the TM lattice smoothed
#: along its layer, :func:`_tm_lattice_positions`; a Li-layer site's placed position) is reported at the lattice
#: site (``position_from_lattice``). Under a ~0.15 nm probe a column's fit is pulled 0.07-0.12 nm by its
#: neighbours' tails: 78 of the 131 `phases` recall misses of 16 wide-probe tuning draws (docs/validation.md
#: "imgwide3"). False: every column at its fit (main before).
LATTICE_POSITIONS = True
LATTICE_POSITION_WIDTHS = 0.75


def _report_lattice_sites(data: np.ndarray, tm: pd.DataFrame, li: pd.DataFrame, tm_xy: np.ndarray,
                          site_xy: np.ndarray, geo: Any, field: tuple[tuple[int, int], float],
                          window: tuple[float, float, float], notes: list[str]) -> None:
    """Where the site window was widened (``window``: the spacing's radius, the site radius and width, nm): with
    :data:`JOINT_POSITIONS` on, the detected columns' centres fitted jointly with their neighbours
    (:func:`_joint_positions`); then, with :data:`LATTICE_POSITIONS` on, the TM columns and Li-layer sites still
    far from their lattice sites moved onto them where those lie in the image (``field``: its shape and pixel
    size, nm) (:func:`_onto_lattice`)."""
    (shape, px), (radius_nm, site_radius, width_nm) = field, window
    if site_radius > radius_nm and JOINT_POSITIONS:
        _joint_positions(data, px, tm, li, tm_xy, geo, width_nm=width_nm, notes=notes)
    if site_radius > radius_nm and LATTICE_POSITIONS:
        _onto_lattice(tm, tm_xy, geo, width_nm=width_nm, inside=_inside(tm_xy, shape, px), notes=notes)
        _onto_lattice(li, site_xy, geo, width_nm=width_nm, inside=_inside(site_xy, shape, px), notes=notes)


#: Wide probes (where :func:`_wide_probe_window` widened the window): the detected columns' centres (TM and
#: Li-layer) are refitted jointly with their neighbours (:func:`layerscope.imaging.columns.refine_jointly`: each
#: column's Gaussian of the shared width measured with the neighbours in the model, its neighbours' Gaussians in the
#: model, all heights solved at once, a few rounds), the lattice sites without a detected column held at their site
#: with their measured intensity; :data:`LATTICE_POSITIONS` then moves the fits still far from their sites. On the
#: 38 wide-probe tuning draws the matched RMS falls 15.6 -> 9.8 pm and the patch moves 377 columns, not 1117, no
#: recall or precision target moving; the joint fit alone does not replace the patch (11 more columns 0.07-0.12 nm
#: off, one draw below its targets; docs/validation.md "imgwide4"). False: each column at its own fit (before).
JOINT_POSITIONS = True
#: Radius of each column's window in the joint fit, in column widths.
JOINT_WINDOW_WIDTHS = 2.5


def _joint_positions(data: np.ndarray, px: float, tm: pd.DataFrame, li: pd.DataFrame, tm_xy: np.ndarray, geo: Any, *,
                     width_nm: float, notes: list[str]) -> None:
    """The detected TM and Li-layer columns of ``tm`` and ``li`` refitted jointly (:data:`JOINT_POSITIONS`), in place:
    ``x_nm, y_nm, u_nm, v_nm``; the TM sites without a detected column (at ``tm_xy``) and the Li-layer sites without
    one are in the model at their sites with their intensities, not refitted."""
    parts = []
    for cols, site in ((tm, tm_xy), (li, li[["x_nm", "y_nm"]].to_numpy(dtype=float))):
        det = cols["detected"].fillna(False).to_numpy(dtype=bool) & np.isfinite(cols["x_nm"].to_numpy(dtype=float))
        height = cols["intensity"].to_numpy(dtype=float) if "intensity" in cols else np.zeros(len(cols))
        parts.append((cols, det, site[~det], height[~det]))
    xy = np.vstack([c.loc[d, ["x_nm", "y_nm"]].to_numpy(dtype=float) for c, d, _, _ in parts])
    fixed_xy = np.vstack([f for _, _, f, _ in parts])
    fixed_h = np.concatenate([h for _, _, _, h in parts])
    if len(xy) < 10:
        return
    if not NEIGHBOUR_WIDTH:  # the site width (one Gaussian and a constant per window) reads a wide column narrow
        width_nm = _neighbour_width(data, px, tm_xy[parts[0][1]], sigma_nm=width_nm)
    rows, cols_px, _, _ = _col.refine_jointly(
        data, xy[:, 1] / px - 0.5, xy[:, 0] / px - 0.5, sigma_px=width_nm / px,
        radius_px=JOINT_WINDOW_WIDTHS * width_nm / px,
        fixed=(fixed_xy[:, 1] / px - 0.5, fixed_xy[:, 0] / px - 0.5, fixed_h))
    new = np.column_stack([(cols_px + 0.5) * px, (rows + 0.5) * px])
    moved, at = np.hypot(*(new - xy).T), 0
    for cols, det, _, _ in parts:
        part = new[at:at + int(det.sum())]
        at += int(det.sum())
        cols.loc[det, "x_nm"], cols.loc[det, "y_nm"] = part[:, 0], part[:, 1]
        cols.loc[det, "u_nm"], cols.loc[det, "v_nm"] = part @ geo.tvec, part @ geo.nvec
    notes.append(f"{len(xy)} detected column centres fitted jointly with their neighbours (a wide probe; width "
                 f"{width_nm:.3f} nm): moved by {np.median(moved) * 1e3:.0f} pm (median), {np.max(moved) * 1e3:.0f} pm "
                 f"at most")


def _onto_lattice(cols: pd.DataFrame, lattice_xy: np.ndarray, geo: Any, *, width_nm: float, inside: np.ndarray,
                  notes: list[str]) -> None:
    """Move the rows of ``cols`` whose ``x_nm, y_nm`` lie farther than :data:`LATTICE_POSITION_WIDTHS` x
    ``width_nm`` from ``lattice_xy`` (their lattice sites, n x 2 nm) onto them, ``u_nm, v_nm`` with them; in
    place, flagged in ``position_from_lattice``. A site outside the image (``inside`` False: extrapolated at the
    field's edge) moves nothing: its column keeps its fit."""
    xy = cols[["x_nm", "y_nm"]].to_numpy(dtype=float)
    off = (np.hypot(*(xy - lattice_xy).T) > LATTICE_POSITION_WIDTHS * width_nm) & inside
    cols["position_from_lattice"] = off
    if not off.any():
        return
    cols.loc[off, "x_nm"], cols.loc[off, "y_nm"] = lattice_xy[off, 0], lattice_xy[off, 1]
    cols.loc[off, "u_nm"], cols.loc[off, "v_nm"] = lattice_xy[off] @ geo.tvec, lattice_xy[off] @ geo.nvec
    kind = str(cols["kind"].iloc[0]) if len(cols) else ""
    notes.append(f"{int(off.sum())} {kind} column fits lay more than {LATTICE_POSITION_WIDTHS:g} column widths from "
                 f"their lattice sites (a wide probe): reported at the lattice sites")


def _lattice_leaks(shape: tuple[int, int], px: float, *, sigma_nm: float, radius_nm: float, tm_xy: np.ndarray,
                   tm_found: np.ndarray, li_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the site estimator reads from the lattice's own columns under a probe of width ``sigma_nm``.

    The site estimator (:func:`_site_intensities`, same width and window) run on noiseless images of
    unit-height Gaussians: at every TM lattice site, read at the TM sites (``tm_self``: a column's own
    amplitude plus what its TM neighbours lend it); at the found TM columns (``tm_xy[tm_found]``), read
    at the Li-layer sites (``li_from_tm``: the TM tails a clean site reads); at every Li-layer site, read
    there (``li_self``: a site's amplitude with Li-layer neighbours of its own fill). The estimator is
    linear in the image, so the measured amplitudes unmix with them (:func:`_measure_li_sites`) -- the
    least squares of the column heights with the measured probe, for a lattice of one TM height and
    locally one fill. Oxygen columns are not modelled (their positions are not measured). Each reading
    is computed in the sites' own windows from the columns that reach them (:func:`_unit_readings`), not
    on rendered images (imgspeed: the same numbers, 1/4-1/7 of the CPU at 2048²).
    """
    read = dict(shape=shape, px=px, sigma_nm=sigma_nm, radius_nm=radius_nm)
    return (_unit_readings(tm_xy, tm_xy, **read), _unit_readings(li_xy, tm_xy[tm_found], **read),
            _unit_readings(li_xy, li_xy, **read))


#: :func:`_unit_readings` (imgspeed3): the columns within this many widths of each window's square are summed, not
#: ``columns.GAUSSIAN_REACH`` (8); a unit Gaussian 4 widths past the square reads exp(-8) ~ 3e-4 at its edge. None:
#: ``columns.GAUSSIAN_REACH`` (before). On with ``columns.JOINT_REACH_WIDTHS`` (measured with it, docs/validation.md
#: "imgspeed3").
LEAK_REACH_WIDTHS: float | None = 4.0


def _unit_readings(at_nm: np.ndarray, src_nm: np.ndarray, *, shape: tuple[int, int], px: float, sigma_nm: float,
                   radius_nm: float) -> np.ndarray:
    """The site amplitude (:func:`_site_intensities`) at ``at_nm`` (n x 2, x and y in nm) on the image
    ``render_gaussians(src_nm, weights 1)`` of ``shape`` -- without rendering it.

    The estimator is linear: its amplitude ``(S1 Sgz - Sg Sz) / det`` is a weighted sum of the window's
    pixels. The image in a window is the sum of the outer products of the 1-D profiles of the Gaussians
    that reach it: a plain Gaussian, not cut at any renderer's width (the model is the probe's, not our
    simulator's, whose renderer cuts at ``TRUNCATE_SIGMA`` = 5 widths: issue 19, imgfill2), summed over the columns
    within ``columns.GAUSSIAN_REACH`` (8) widths of the window (beyond, a unit Gaussian is below 1e-14: nothing in
    double precision; the joint fit's neighbour model, imgwide4, sums the same); per site, that local sum on the
    window's square. Equal to the reading of a render with no cut to rounding
    (tests/imaging/test_wide_probe_window.py); NaN where the estimator gives NaN (fewer than 5 pixels of the
    window in the image).
    """
    s, rad = sigma_nm / px, radius_nm / px
    reach = _col.GAUSSIAN_REACH if LEAK_REACH_WIDTHS is None else LEAK_REACH_WIDTHS
    r, h = int(np.ceil(rad)), int(np.ceil(reach * sigma_nm / px))
    k = np.arange(-r, r + 1)
    disc = k[:, None] ** 2 + k[None, :] ** 2 <= rad**2
    at, src = np.asarray(at_nm, float) / px - 0.5, np.asarray(src_nm, float) / px - 0.5  # (col, row) pixels
    at0, src0 = np.rint(at).astype(np.int64), np.rint(src).astype(np.int64)
    near = cKDTree(src0).query_ball_point(at0, r + h, p=np.inf) if len(src) else [[] for _ in at]
    if not len(src):  # no column: every slot is padding (reads 0)
        src, src0 = np.zeros((1, 2)), np.zeros((1, 2), np.int64)
    out = np.full(len(at), np.nan)
    block = max(1, (1 << 20) // k.size**2)  # sites per block: arrays of ~1e6 window pixels
    for start in range(0, len(at), block):
        sl = slice(start, start + block)
        nb, used = _padded(near[sl])
        pix = at0[sl, None, :] + k[None, :, None]  # (n, 2r+1, 2): the window square's columns and rows
        inside = (pix >= 0) & (pix < np.array(shape[::-1]))
        prof = np.exp(-0.5 * ((pix - at[sl, None, :]) / s) ** 2) * inside  # the template's profiles
        w = disc[None] & inside[:, :, None, 1] & inside[:, None, :, 0]  # (n, row, col): the window
        g = prof[:, :, None, 1] * prof[:, None, :, 0] * w
        s1, sg, sgg = w.sum((1, 2)), g.sum((1, 2)), (g * g).sum((1, 2))
        det = sgg * s1 - sg * sg
        good = (s1 >= 5) & (det > 1e-12)
        # the unit Gaussians' profiles on the window, uncut; padded slots zero
        gs = np.exp(-0.5 * ((pix[:, None] - src[nb][:, :, None]) / s) ** 2) * used[:, :, None, None]  # (n, m, 2r+1, 2)
        local = np.matmul(gs[..., 1].transpose(0, 2, 1), gs[..., 0])  # (n, row, col): the rendered window
        amp = (s1 * (g * local).sum((1, 2)) - sg * (w * local).sum((1, 2))) / np.where(good, det, 1.0)
        out[sl] = np.where(good, amp, np.nan)
    return out


def _padded(lists: list) -> tuple[np.ndarray, np.ndarray]:
    """Ragged index lists as a zero-padded (n, longest) array and the mask of its real entries."""
    counts = np.fromiter((len(v) for v in lists), int, len(lists))
    idx = np.zeros((len(lists), max(1, counts.max(initial=0))), np.int64)
    used = np.arange(idx.shape[1])[None, :] < counts[:, None]
    if counts.sum():
        idx[used] = np.concatenate([np.asarray(v, np.int64) for v in lists])
    return idx, used


def _measure_li_sites(data: np.ndarray, px: float, li: pd.DataFrame, tm: pd.DataFrame, *, sigma_nm: float,
                      radius_nm: float, at_nm: np.ndarray | None = None, counts: bool | None = None,
                      leaks: tuple[np.ndarray, np.ndarray, np.ndarray] | Any = None) -> None:
    """Add ``intensity``, ``local_background`` and ``mixing`` to Li-layer sites, in place.

    Mixing index: the site's intensity over the mean intensity of the 4 nearest TM columns with an
    intensity (NaN when fewer than 4 exist; a TM column whose lattice position lies outside the image
    has none); ``mixing_sem`` its standard error from the counts
    (:func:`layerscope.imaging.sitetests.amplitude_errors` of the site and of the 4 TM columns) and
    ``mixed`` the per-column decision: "yes" / "no" when the index is more than two standard
    errors above / below :data:`layerscope.imaging.interlayers.MIXING_THRESHOLD`, else
    "uncertain"; ``intensity_sem`` the error of the site's intensity. ``at_nm`` (n x 2, x and y
    in nm) measures at the lattice sites placed from the TM pairs rather than at ``x_nm, y_nm``:
    where a noise maximum was detected near a dim site, the intensity at the maximum is biased
    upwards (the detector picked it for being bright), the one at the lattice site is not. ``counts``:
    whether ``data`` is a count image (None: tested). ``leaks`` (:func:`_lattice_leaks`, where the window
    reaches the neighbours: wide probes): each TM amplitude is divided by its ``tm_self`` and the index is
    ``(amp / ref - li_from_tm) / li_self``, its error divided by ``li_self``; None: the plain ratio; a
    :class:`concurrent.futures.Future` of them (:func:`_on_thread`) is waited for after the counting errors.
    """
    from layerscope.imaging import sitetests as _st
    from layerscope.imaging.interlayers import MIXING_THRESHOLD

    at = li if at_nm is None else pd.DataFrame({"x_nm": at_nm[:, 0], "y_nm": at_nm[:, 1]})
    amp, bkg = _site_intensities(data, px, at, sigma_nm=sigma_nm, radius_nm=radius_nm)
    li["intensity"], li["local_background"] = amp, bkg
    tm_amp = tm["intensity"].to_numpy(dtype=float)
    measured = np.flatnonzero(np.isfinite(tm_amp))  # a TM column without an intensity is no reference
    if measured.size >= 4 and len(li):
        _, near = cKDTree(np.column_stack([tm["x_nm"].to_numpy()[measured], tm["y_nm"].to_numpy()[measured]])).query(
            np.column_stack([li["x_nm"], li["y_nm"]]), k=4)
        nn = measured[near]
        err = _st.amplitude_errors(data, at["x_nm"].to_numpy(), at["y_nm"].to_numpy(), pixel_size_nm=px,
                                   sigma_nm=sigma_nm, radius_nm=radius_nm, counts=counts)
        tm_err = _st.amplitude_errors(data, tm["x_nm"].to_numpy(), tm["y_nm"].to_numpy(), pixel_size_nm=px,
                                      sigma_nm=sigma_nm, radius_nm=radius_nm, counts=counts)
        leaks = leaks.result() if hasattr(leaks, "result") else leaks
        tm_self, li_from_tm, li_self = (np.ones(len(tm)), np.zeros(len(li)), np.ones(len(li))) if leaks is None else leaks
        ref = np.nanmean(tm_amp[nn] / tm_self[nn], axis=1)
        li["tm_reference"] = ref
        li["intensity_sem"] = err
        ref_err = np.sqrt(np.nansum((tm_err[nn] / tm_self[nn]) ** 2, axis=1)) / 4.0
        with np.errstate(invalid="ignore", divide="ignore"):
            # index = (amp - ref * li_from_tm) / (ref * li_self): the TM neighbours' tails off, the Li-layer
            # neighbours' share back; ref's error enters through amp / ref (exactly the old form without leaks)
            raw = np.where(ref > 0, amp / ref, np.nan)
            li["mixing"] = (raw - li_from_tm) / li_self
            li["mixing_sem"] = np.where(ref > 0, np.hypot(err, raw * ref_err) / ref, np.nan) / li_self
    else:
        if hasattr(leaks, "result"):
            leaks.result()  # unused here; its errors are still raised, as in the one-thread run
        li["tm_reference"] = np.nan
        li["intensity_sem"] = np.nan
        li["mixing"] = np.nan
        li["mixing_sem"] = np.nan
    li["mixed"] = _st.mixing_decisions(li["mixing"].to_numpy(), li["mixing_sem"].to_numpy(), threshold=MIXING_THRESHOLD)


#: A Li-layer site lies in a void (``site_in_void``) where at least :data:`VOID_EMPTY` of the four TM lattice
#: positions of its octahedron -- the two nearest in the TM layer above and the two in the one below -- read
#: less than ``VOID_SUPPORT`` of the site's ``tm_reference`` (the level of its 4 nearest measured TM columns:
#: local, so a thickness wedge cancels). Labelled on 128 random draws with voids at >= 1e3 e/A^2
#: (docs/validation.md "imgspinel7"): 231 of 981 Li-layer sites inside a void marked, 14 of 38682 outside
#: (7 within 0.15 nm of the rim, 6 at the field's edge); at 0.3, 232 and 17, and sites with 0.5-1.7 nm of
#: material at a lamella thinned to zero over 1-1.5 nm (tests/imaging/test_void_sites.py) marked too.
VOID_SUPPORT = 0.2
VOID_EMPTY = 3


def _octahedron_support(data: np.ndarray, px: float, li: pd.DataFrame, tm: pd.DataFrame, tm_u: np.ndarray,
                        tm_v: np.ndarray, *, d_t: float, tvec: np.ndarray, nvec: np.ndarray, sigma_nm: float,
                        radius_nm: float, reuse: bool = True) -> np.ndarray:
    """What the TM layers above and below each Li-layer site hold where its octahedron's TM columns would be.

    In each adjacent TM layer the two lattice positions nearest to the site along ``u`` (the layer's nearest
    column's lattice position ``tm_u, tm_v`` plus whole column spacings ``d_t``, nm) are read with the site
    estimator (width ``sigma_nm``, window ``radius_nm``). The position that is the nearest column's own lattice
    position takes that row's ``intensity`` (the same estimator at the same position: the same number); the
    other is read from the image (the next column's lattice position is a running mean of its own, not the
    nearest one's plus ``d_t``: reading it there would change the numbers, docs/validation.md "imgvoid8");
    ``reuse`` False reads every position from the image (the same numbers: tests/imaging/test_void_sites.py).
    Returns n x 4 amplitudes over the site's ``tm_reference`` (columns: above = ``layer - 1`` then below, each
    the two positions): ~1 in the crystal at any thickness, ~0 where a void or a crack cut the column; NaN
    where the layer has no TM column or the position lies outside the image (nothing to read: a field edge is
    not a void).
    """
    out = np.full((len(li), 4), np.nan)
    if len(li) == 0 or len(tm) == 0 or "tm_reference" not in li:
        return out
    t_layer = tm["layer"].to_numpy()
    site_u, site_layer = li["u_nm"].to_numpy(dtype=float), li["layer"].to_numpy()
    pos, slot, row = [], [], []
    for side, d in enumerate((-1, 1)):
        for k in np.unique(site_layer):
            here = np.flatnonzero(site_layer == k)
            on = np.flatnonzero(t_layer == k + d)
            if on.size == 0:
                continue
            near = on[np.argmin(np.abs(tm_u[on][None, :] - site_u[here][:, None]), axis=1)]
            m = np.floor((site_u[here] - tm_u[near]) / d_t)
            for extra in (0, 1):
                u = tm_u[near] + (m + extra) * d_t
                pos.append(np.column_stack([u, tm_v[near]]))
                slot.append(here * 4 + 2 * side + extra)
                row.append(np.where(m + extra == 0, near, -1))  # the nearest column's own position: u is tm_u
    if not pos:
        return out
    uv, slot, row = np.concatenate(pos), np.concatenate(slot), np.concatenate(row)
    xy = np.outer(uv[:, 0], tvec) + np.outer(uv[:, 1], nvec)
    amp = np.full(len(uv), np.nan)
    known = (row >= 0) & reuse  # measured already (tm["intensity"], at tm_u, tm_v: the same estimator, width and window)
    amp[known] = tm["intensity"].to_numpy(dtype=float)[row[known]]
    read = ~known & _inside(xy, data.shape, px)
    amp[read], _ = _col.site_intensities(data, xy[read, 1] / px - 0.5, xy[read, 0] / px - 0.5,
                                         sigma_px=sigma_nm / px, radius_px=radius_nm / px)
    ref = li["tm_reference"].to_numpy(dtype=float)[slot // 4]
    with np.errstate(invalid="ignore", divide="ignore"):
        out.reshape(-1)[slot] = np.where(_inside(xy, data.shape, px) & (ref > 0), amp / ref, np.nan)
    return out


#: The void marks need a real TM column to read clearly above :data:`VOID_SUPPORT`: they are kept only where the
#: image's octahedron positions (nearly all of them columns: median ~1) lie at least this many robust spreads
#: (1.4826 median absolute deviations) above it (:func:`support_spread_z`). Measured on 380 random draws with a void
#: or a crack (docs/validation.md "imgvoid8"): 1.12 on draw 56 (0.157 nm probe fitted as 0.039 nm: 5 of its 10
#: marks real sites, up to 2.6 nm from a void), 1.33 and 1.34 on two narrow draws at 5e2 e/A^2 (2136: 3 right
#: marks lost), 1.84-24.5 on every other (the other 7 wide probes 1.89-5.6).
VOID_SPREAD_Z = 1.5


def support_spread_z(support: np.ndarray) -> float:
    """How far (robust spreads) the median octahedron position of an image reads above :data:`VOID_SUPPORT`:
    ``(median - VOID_SUPPORT) / (1.4826 MAD)`` over every finite value of :func:`_octahedron_support`; NaN with
    fewer than 20 values, inf where they do not scatter."""
    v = support[np.isfinite(support)]
    if v.size < 20:
        return float("nan")
    med = float(np.median(v))
    spread = 1.4826 * float(np.median(np.abs(v - med)))
    return (med - VOID_SUPPORT) / spread if spread > 0 else float("inf")


def _mark_void_sites(data: np.ndarray, px: float, li: pd.DataFrame, tm: pd.DataFrame, tm_u: np.ndarray,
                     tm_v: np.ndarray, *, d_t: float, geo: Any, sigma_nm: float, radius_nm: float,
                     notes: list[str]) -> tuple[float, int]:
    """Set ``li["site_in_void"]`` (:func:`_site_in_void`) and return the gate's reading for the flags
    (:func:`support_spread_z`, the number of candidate sites before the gate)."""
    support = _octahedron_support(data, px, li, tm, tm_u, tm_v, d_t=d_t, tvec=geo.tvec, nvec=geo.nvec,
                                  sigma_nm=sigma_nm, radius_nm=radius_nm)
    z = support_spread_z(support)
    li["site_in_void"] = _site_in_void(support, notes=notes, z=z)
    li["site_at_gap"] = _site_at_gap(support, z=z)
    return z, int(_void_candidates(support).sum())


def _void_candidates(support: np.ndarray) -> np.ndarray:
    """Li-layer sites with at most one of their octahedron's four TM columns (:func:`_octahedron_support`;
    an unknown position counts as a column): :data:`VOID_EMPTY`, :data:`VOID_SUPPORT`; before the gate."""
    with np.errstate(invalid="ignore"):
        return (support < VOID_SUPPORT).sum(axis=1) >= VOID_EMPTY


def _site_in_void(support: np.ndarray, notes: list[str] | None = None, z: float | None = None) -> np.ndarray:
    """Li-layer sites with at most one of their octahedron's four TM columns (:func:`_void_candidates`).
    None where the image's positions do not read a column clearly above :data:`VOID_SUPPORT`
    (:data:`VOID_SPREAD_Z`; a note says so). ``z``: :func:`support_spread_z` of ``support`` where the caller
    has it (computed here when None)."""
    marked = _void_candidates(support)
    z = support_spread_z(support) if z is None else z
    if marked.any() and not z >= VOID_SPREAD_Z:
        if notes is not None:
            notes.append(f"no Li-layer site marked as in a void: the TM columns read only {z:.2f} spreads above "
                         f"{VOID_SUPPORT:g} of their reference (< {VOID_SPREAD_Z:g}; {int(marked.sum())} sites "
                         f"would be), too noisy to tell a void from a column")
        return np.zeros(len(support), dtype=bool)
    return marked


def _site_at_gap(support: np.ndarray, z: float | None = None) -> np.ndarray:
    """Li-layer sites not in a void whose octahedron lost both TM positions of one side (:func:`_octahedron_support`:
    the two above, or the two below, read less than :data:`VOID_SUPPORT`; an unknown position counts as a column).

    There the gap between the TM layers is two layer spacings wide: a basal crack that took a TM layer and the Li
    layer beside it (its TM columns on the far side stay, so :func:`_site_in_void` does not see it: random draws
    3051, 3084), or a void's rim (4003). Such a site reads ~0 like an empty one whether it holds material or not; a
    real one (the Li layer on the gap's far side, a rim site) is marked too. None where the image's positions do not
    read a column clearly above that level (:data:`VOID_SPREAD_Z`, as :func:`_site_in_void`; ``z`` as there).
    """
    with np.errstate(invalid="ignore"):
        empty = support < VOID_SUPPORT
    side = empty[:, :2].all(axis=1) | empty[:, 2:].all(axis=1)
    if not (support_spread_z(support) if z is None else z) >= VOID_SPREAD_Z:
        return np.zeros(len(support), dtype=bool)
    return side & ~_void_candidates(support)


#: Below this many spreads (:func:`support_spread_z`) the void marks pass the gate with little margin and
#: ``phases`` flags them (``void_marks_marginal``). Measured (docs/validation.md "imgvoid8"): the lowest z of
#: the 380 void/crack draws with a mark are 1.84 (draw 70, 5.6e2 e/A^2), 1.89 (2048, wide probe), 1.98; every
#: draw with a mark at >= 1e3 e/A^2 and a narrow probe reads above 2.
VOID_FLAG_Z = 2.0


def void_gate_flags(z: float, n_candidates: int) -> list[dict[str, str]]:
    """``phases`` flags of the void-site gate: ``void_marks_off`` where :func:`_site_in_void` would mark
    ``n_candidates`` Li-layer sites but the image's TM columns read only ``z`` spreads above
    :data:`VOID_SUPPORT` (< :data:`VOID_SPREAD_Z`: none marked), ``void_marks_marginal`` where they pass the gate
    with ``z`` below :data:`VOID_FLAG_Z`. None without a candidate (nothing the gate decides)."""
    from layerscope.imaging import interlayers as _il

    if n_candidates == 0 or z >= VOID_FLAG_Z:
        return []
    level = f"{z:.2f} robust spreads" if np.isfinite(z) else "too few octahedron positions to tell"
    if not z >= VOID_SPREAD_Z:
        return [{"code": "void_marks_off", "message": (
            f"{n_candidates} Li-layer sites read like sites in a void or a crack, but the TM columns read only "
            f"{level} above the void level (gate {VOID_SPREAD_Z:g}): none marked (site_in_void), they stay in "
            f"the Li-layer fill; check the fill next to voids and cracks")}]
    fill = "left out of the Li-layer fill" if _il.SKIP_VOID_SITES else "kept in the Li-layer fill"
    return [{"code": "void_marks_marginal", "message": (
        f"{n_candidates} Li-layer sites marked as in a void (site_in_void, {fill}) with the TM columns only "
        f"{level} above the void level (gate {VOID_SPREAD_Z:g}, flagged below {VOID_FLAG_Z:g}): a real site "
        f"may be among them; check the marks")}]


def handedness_flags(n_o3: int, n_twin: int, zone: str) -> list[dict[str, str]]:
    """``phases`` flag ``handedness_undecided`` where neither the O3 nor the O3' TM-layer pairs (read with the zone
    as given) hold a 2:1 majority (:data:`MIRROR_SHARE`): which stacking is the matrix and which the twin-like one
    cannot be read from the image, so the labels follow the zone's convention as given, which the user may know."""
    share = _mirror_share(n_o3, n_twin)
    if not 1.0 - MIRROR_SHARE < share < MIRROR_SHARE:
        return []
    mirror = {"100": "110", "110": "100"}.get(zone, "the mirror zone")
    return [{"code": "handedness_undecided", "message": (
        f"O3 and O3' stackings nearly equal ({n_o3} forward, {n_twin} reversed TM-layer pairs with the [{zone}] "
        f"convention; a 2:1 majority decides): which one is the matrix cannot be read from the image, the labels "
        f"follow --zone {zone} as given; where the beam points the other way, rerun with --zone {mirror} "
        f"(O3 and O3' swap)")}]


def _fill_from_layers(layer: np.ndarray, rel_up: np.ndarray, rel_down: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns without a partner (next to a void, at a ragged edge) take their layer's relation.

    The relation below TM layer k is the majority over its columns; a column of layer k without
    a partner below takes it, one without a partner above takes that of layer k - 2. Layers with
    no pair at all (the first and last TM layer of the image) stay empty.
    """
    down_major: dict[int, str] = {}
    for k in np.unique(layer):
        vals = rel_down[(layer == k) & (rel_down != "")]
        if vals.size:
            names, counts = np.unique(vals, return_counts=True)
            down_major[int(k)] = str(names[np.argmax(counts)])
    up = rel_up.copy()
    down = rel_down.copy()
    for k, rel in down_major.items():
        down[(layer == k) & (down == "")] = rel
        up[(layer == k + 2) & (up == "")] = rel
    return up, down


def _inside(xy_nm: np.ndarray, shape: tuple[int, int], pixel_size_nm: float) -> np.ndarray:
    """Which positions ``(x_nm, y_nm)`` lie inside an image of ``shape`` pixels."""
    h_nm, w_nm = shape[0] * pixel_size_nm, shape[1] * pixel_size_nm
    return (xy_nm[:, 0] >= 0) & (xy_nm[:, 0] < w_nm) & (xy_nm[:, 1] >= 0) & (xy_nm[:, 1] < h_nm)


def _one_site_gaps(u: np.ndarray, layer: np.ndarray, *, d_t: float, tolerance: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Where one site is missing between two neighbours of a layer.

    Returns the indices (into the inputs) of the left and right neighbours of every gap: two
    consecutive points of a layer ``2 d_t`` apart along ``u``, within ``tolerance`` column
    spacings. Wider gaps (voids, cracks, the crystal's edge) are not gaps of one site.
    """
    order = np.lexsort((u, layer))
    du = np.diff(u[order]) / d_t
    gap = np.nonzero((np.diff(layer[order]) == 0) & (np.abs(du - 2.0) <= tolerance))[0]
    return order[gap], order[gap + 1]


def _fill_tm_gaps(tm: pd.DataFrame, *, d_t: float, inplane: np.ndarray, normal: np.ndarray,
                  data: np.ndarray | None = None, px: float = float("nan"), sigma_nm: float = float("nan"),
                  radius_nm: float = float("nan"), counts: bool | None = None) -> pd.DataFrame:
    """TM columns added where one column is missing between two detected neighbours of a TM layer,
    and (with ``data``) beyond the ends of a layer where the counts show a column.

    At a few detected electrons per column (5 nm, 5e2 e/A^2) a few percent of the TM columns do
    not rise above the detection threshold; the lattice site is still there. It is placed at the
    midpoint of its neighbours (``detected`` False, no fit) and then takes part like any TM column:
    its pairs, the Li-layer site below it, its label and its intensity at the lattice position.
    Next to a void, a crack or a thinning surface the last columns of a layer are too dim for the
    detector's threshold relative to their neighbours; up to 4 sites beyond each end of a layer
    are placed, one at a time, while the amplitude at the site is
    :data:`layerscope.imaging.sitetests.RIM_SIGNIFICANCE` standard errors above zero
    (:func:`layerscope.imaging.sitetests.extend_layer_ends`), so that the Li-layer sites next to
    the rim are placed and measured too. ``counts``: whether ``data`` is a count image (None: tested).
    """
    if len(tm) < 2:
        return tm
    u, v = tm["u_nm"].to_numpy(), tm["v_nm"].to_numpy()
    left, right = _one_site_gaps(u, tm["layer"].to_numpy(), d_t=d_t)
    add = pd.DataFrame({"u_nm": 0.5 * (u[left] + u[right]), "v_nm": 0.5 * (v[left] + v[right]),
                        "layer": tm["layer"].to_numpy()[left], "in_gap": True})
    if data is not None and np.isfinite(sigma_nm):
        add = pd.concat([add, _rim_columns(u, v, tm["layer"].to_numpy(), data, d_t=d_t, inplane=inplane, normal=normal,
                                           px=px, sigma_nm=sigma_nm, radius_nm=radius_nm, counts=counts)],
                        ignore_index=True)
    if len(add) == 0:
        return tm
    add = add.assign(kind="TM", detected=False, fit_ok=False, in_gap=add["in_gap"].fillna(False).astype(bool))
    add["layer"] = add["layer"].astype(tm["layer"].dtype)
    xy = np.outer(add["u_nm"], inplane) + np.outer(add["v_nm"], normal)
    add["x_nm"], add["y_nm"] = xy[:, 0], xy[:, 1]
    return pd.concat([tm, add], ignore_index=True)


def _detect_gap_columns(data: np.ndarray, px: float, tm: pd.DataFrame, tm_xy: np.ndarray, *, sigma_nm: float,
                        radius_nm: float, notes: list[str], counts: bool | None = None) -> None:
    """Mark, in place, a TM column placed in a one-site gap as found (``detected`` True) where its counts
    show it: the amplitude at its lattice position (``intensity``, already measured) at least
    :data:`layerscope.imaging.sitetests.GAP_SIGNIFICANCE` standard errors above zero
    (:func:`layerscope.imaging.sitetests.amplitude_errors`). A half-occupied spinel column at
    1-3e3 e/A^2 is below the detector's relative threshold next to full columns but 2-5 standard
    errors above zero at its site; an empty site (a vacancy, a void) stays placed. Position and
    fit are unchanged (lattice position, ``fit_ok`` False); the layer table then counts it as found.
    """
    from layerscope.imaging import sitetests as _st

    if "in_gap" not in tm:
        return
    gap = np.flatnonzero(tm["in_gap"].fillna(False).to_numpy(dtype=bool) & ~tm["detected"].to_numpy(dtype=bool))
    if gap.size == 0:
        return
    err = _st.amplitude_errors(data, tm_xy[gap, 0], tm_xy[gap, 1], pixel_size_nm=px, sigma_nm=sigma_nm,
                               radius_nm=radius_nm, counts=counts)
    amp = tm["intensity"].to_numpy(dtype=float)[gap]
    with np.errstate(invalid="ignore"):
        seen = np.isfinite(err) & (err > 0) & (amp >= _st.GAP_SIGNIFICANCE * err)
    if seen.any():
        tm.loc[tm.index[gap[seen]], "detected"] = True
        notes.append(f"{int(seen.sum())} TM columns placed in one-site gaps show a column in their counts "
                     f"(amplitude >= {_st.GAP_SIGNIFICANCE:g} standard errors) and are reported as found")


def _rim_columns(u: np.ndarray, v: np.ndarray, layer: np.ndarray, data: np.ndarray, *, d_t: float, inplane: np.ndarray,
                 normal: np.ndarray, px: float, sigma_nm: float, radius_nm: float,
                 counts: bool | None = None) -> pd.DataFrame:
    """Sites beyond the ends of the TM layers whose amplitude is significant (see :func:`_fill_tm_gaps`)."""
    from layerscope.imaging import sitetests as _st

    def test(cu: np.ndarray, cv: np.ndarray) -> np.ndarray:
        xy = np.outer(cu, inplane) + np.outer(cv, normal)
        inside = _inside(xy, data.shape, px)
        amp, _ = _col.site_intensities(data, xy[:, 1] / px - 0.5, xy[:, 0] / px - 0.5, sigma_px=sigma_nm / px,
                                       radius_px=radius_nm / px)
        err = _st.amplitude_errors(data, xy[:, 0], xy[:, 1], pixel_size_nm=px, sigma_nm=sigma_nm, radius_nm=radius_nm,
                                   counts=counts)
        with np.errstate(invalid="ignore", divide="ignore"):
            return inside & (amp > _st.RIM_SIGNIFICANCE * err)

    return _st.extend_layer_ends(u, v, layer, d_t=d_t, test=test)


def _fill_site_gaps(sites: pd.DataFrame, *, d_t: float, tolerance: float = 0.25, tm_u: np.ndarray | None = None,
                    tm_layer: np.ndarray | None = None) -> pd.DataFrame:
    """Li-layer sites added where one site is missing between two neighbours of a layer, and at
    the ends of a layer next to TM columns.

    A site is placed from the TM column above it; where that column is missing (even after
    :func:`_fill_tm_gaps`, e.g. at the end of a TM layer) its Li-layer site would be missing.
    Where two consecutive sites of a layer lie ``2 d_t`` apart (within ``tolerance`` column
    spacings) the site between them is added at the midpoint, with ``pair`` -1 and the
    ``context`` (relations) and stacking ``step`` of the left neighbour. With the TM columns
    (``tm_u`` along the layers, ``tm_layer``), each end of a Li layer is extended by up to two
    sites while a TM column of the layer above or below lies within ``2/3 d_t`` of the new site
    (the Li site's octahedron shares edges with it: there is material there): at a void, a crack
    or a thin surface the TM column a site is placed from is the first to fade.
    """
    if len(sites) < 2:
        return sites
    u, v = sites["u_nm"].to_numpy(), sites["v_nm"].to_numpy()
    left, right = _one_site_gaps(u, sites["layer"].to_numpy(), d_t=d_t, tolerance=tolerance)
    add = pd.DataFrame({
        "u_nm": 0.5 * (u[left] + u[right]), "v_nm": 0.5 * (v[left] + v[right]), "layer": sites["layer"].to_numpy()[left],
        "pair": -1, "context": sites["context"].to_numpy()[left], "step": sites["step"].to_numpy()[left],
    })
    if tm_u is not None and tm_layer is not None:
        add = pd.concat([add, _site_ends(sites, d_t=d_t, tm_u=np.asarray(tm_u), tm_layer=np.asarray(tm_layer))],
                        ignore_index=True)
    return pd.concat([sites, add], ignore_index=True) if len(add) else sites


def _site_ends(sites: pd.DataFrame, *, d_t: float, tm_u: np.ndarray, tm_layer: np.ndarray,
               max_sites: int = 2) -> pd.DataFrame:
    """Li-layer sites beyond the ends of each Li layer next to a TM column (see :func:`_fill_site_gaps`)."""
    from layerscope.imaging import sitetests as _st

    lay = sites["layer"].to_numpy()
    tm_of = {int(k): np.sort(tm_u[tm_layer == k]) for k in np.unique(tm_layer)}

    def test(cu: np.ndarray, cv: np.ndarray, which: np.ndarray) -> np.ndarray:
        ok = np.zeros(cu.size, dtype=bool)
        for i, (x, k) in enumerate(zip(cu, which)):
            near = [tm_of.get(int(k) + d, np.empty(0)) for d in (-1, 1)]
            ok[i] = any(n.size and np.min(np.abs(n - x)) <= 2.0 / 3.0 * d_t for n in near)
        return ok

    ends = _st.extend_layer_ends(sites["u_nm"].to_numpy(), sites["v_nm"].to_numpy(), lay, d_t=d_t, test=test,
                                 max_sites=max_sites, pass_layer=True)
    if len(ends) == 0:
        return pd.DataFrame(columns=["u_nm", "v_nm", "layer", "pair", "context", "step"])
    # Relations and step from the nearest site of the same layer.
    src = np.array([np.nonzero(lay == k)[0][np.argmin(np.abs(sites["u_nm"].to_numpy()[lay == k] - x))]
                    for x, k in zip(ends["u_nm"], ends["layer"])])
    return ends.assign(pair=-1, context=sites["context"].to_numpy()[src], step=sites["step"].to_numpy()[src])


def _beside_site(points: pd.DataFrame, sites: pd.DataFrame, *, d_t: float, within: float = 0.45) -> np.ndarray:
    """True for each point closer than ``within`` column spacings (along ``u``) to a site of its layer."""
    near = np.zeros(len(points), dtype=bool)
    for k in np.unique(points["layer"].to_numpy()):
        here = points["layer"].to_numpy() == k
        su = sites.loc[sites["layer"].to_numpy() == k, "u_nm"].to_numpy()
        if su.size:
            gap, _ = cKDTree(su[:, None]).query(points.loc[here, "u_nm"].to_numpy()[:, None])
            near[here] = gap < within * d_t
    return near


def _merge_li_sites(sites: pd.DataFrame, found: pd.DataFrame, *, d_t: float, cation: float) -> pd.DataFrame:
    """Predicted Li-layer sites, replaced by the detected column where one is within 0.35 d_t."""
    out = sites.copy()
    out["u_site_nm"], out["v_site_nm"] = out["u_nm"], out["v_nm"]
    out["detected"] = False
    out["fit_ok"] = False
    out["position_error_pm"] = np.nan
    out["sigma_nm"] = np.nan
    if len(found) == 0:
        return out
    f_uv = np.column_stack([found["u_nm"], found["v_nm"]])
    if len(out):
        dist, j = cKDTree(f_uv).query(np.column_stack([out["u_nm"], out["v_nm"]]), k=1,
                                      distance_upper_bound=0.35 * d_t)
        hit = np.isfinite(dist)
        # One detected column per site: the nearest site wins.
        order = np.argsort(np.where(hit, dist, np.inf), kind="stable")
        taken = np.zeros(len(found), dtype=bool)
        use = np.zeros(len(out), dtype=bool)
        for i in order[: int(hit.sum())]:  # vectorising this tie-break is not worth it: few hits
            if not taken[j[i]]:
                taken[j[i]] = True
                use[i] = True
        src = found.iloc[j[use]]
        out.loc[use, "u_nm"] = src["u_nm"].to_numpy()
        out.loc[use, "v_nm"] = src["v_nm"].to_numpy()
        out.loc[use, "detected"] = True
        out.loc[use, "fit_ok"] = src["fit_ok"].to_numpy()
        out.loc[use, "position_error_pm"] = src["position_error_pm"].to_numpy()
        out.loc[use, "sigma_nm"] = src["sigma_nm"].to_numpy()
        extra = found[~taken]
        # A detected maximum that no site took but that lies within half a column spacing of a
        # site of its layer (along the layer) is not another column: a noise maximum beside it.
        if len(extra):
            extra = extra[~_beside_site(extra, out, d_t=d_t)]
    else:
        extra = found
    if len(extra):
        add = pd.DataFrame({
            "u_nm": extra["u_nm"].to_numpy(), "v_nm": extra["v_nm"].to_numpy(), "layer": extra["layer"].to_numpy(),
            "u_site_nm": extra["u_nm"].to_numpy(), "v_site_nm": extra["v_nm"].to_numpy(), "pair": -1, "detected": True, "fit_ok": extra["fit_ok"].to_numpy(),
            "position_error_pm": extra["position_error_pm"].to_numpy(), "sigma_nm": extra["sigma_nm"].to_numpy(),
        })
        out = pd.concat([out, add], ignore_index=True)
    return out


def map_phases(
    image: Any,
    *,
    pixel_size_nm: float | None = None,
    zone: str = "100",
    composition: str = "LiCoO2",
    enhance: bool = False,
    noise_model: str = "poisson",
    scheduler: Any = None,
    name: str | None = None,
) -> PhaseMap:
    """Phase map of a layered-oxide HAADF image: labels, mixing, domains and quantities.

    A thin wrapper of :func:`analyse` with the options as keywords (see :class:`PhasesOptions`);
    ``name`` names the input in messages (default: the file name, or "the image").

    Returns
    -------
    PhaseMap
    """
    options = PhasesOptions(zone=zone, composition=composition, enhance=enhance, noise_model=noise_model)
    return analyse(image, options, pixel_size_nm=pixel_size_nm, scheduler=scheduler, name=name)


def analyse(image: Any, options: PhasesOptions, *, pixel_size_nm: float | None = None, scheduler: Any = None,
            name: str | None = None) -> PhaseMap:
    """Phase map of a layered-oxide HAADF image: labels, mixing, domains and quantities (no file is written).

    Parameters
    ----------
    image : path, Image, HyperSpy Signal2D, numpy.ndarray or ImageInput
        The HAADF/ADF image, read once (:func:`layerscope.imaging.options.image_input`; an
        :class:`~layerscope.imaging.options.ImageInput` is used as it is). The provenance records
        the file's SHA-256 (or the array's).
    options : PhasesOptions
        Zone, composition, enhancer, noise model (see :func:`find_atom_columns`).
    pixel_size_nm : float, optional
        Pixel size in nm; required for arrays, overrides a file's or signal's calibration.
    scheduler : None, str or distributed.Client
        Where the refinement blocks run (:func:`layerscope.parallel.map_tasks`).
    name : str, optional
        The input in messages (default: the file name, or "the image"). Before any label, the
        image must be a layered oxide in ``zone`` at ``composition``'s scale
        (:mod:`layerscope.imaging.applicability`).

    Returns
    -------
    PhaseMap
        ``columns`` (see the module docstring), ``domains``, ``layers``, ``interfaces``,
        ``phase_map`` (uint8 image: 0 no material, 1 + index in
        :data:`layerscope.imaging.phases.PHASE_LABELS`), ``summary`` and ``provenance``.
    """
    from layerscope.imaging import detection_limit as _dl
    from layerscope.imaging import domains as _dom
    from layerscope.imaging import quantities as _q
    from layerscope.imaging.clipping import clipping_flags
    from layerscope.provenance import Provenance

    from layerscope.imaging import applicability as _app

    t0 = time.perf_counter()
    inp = image if isinstance(image, ImageInput) else image_input(image, pixel_size_nm=pixel_size_nm)
    data, px, handle, name = inp.data, inp.pixel_size_nm, inp.handle, name or inp.name
    zone, composition, enhance, noise_model = options.zone, options.composition, options.enhance, options.noise_model
    _check_size(data.shape, px, material_spacings(composition, zone))
    data = _as_float64(data)
    # One power spectrum for the check and the column finder's lattice (a real 2-D image; the check refuses others).
    spectrum = _lat.power_spectrum(data, pixel_size_nm=px) if data.ndim == 2 and data.dtype.kind in "biuf" else None
    # The check, then the provenance (the input's SHA-256), on this thread while the columns are found.
    (check, provenance), res = _checked_columns(
        lambda: (_app.check_layered_oxide(data, pixel_size_nm=px, composition=composition, zone=zone, name=name,
                                          spectrum=spectrum),
                 Provenance.create(inputs=[handle],
                                   parameters=dict(pixel_size_nm=px, **options.parameters(), command="phases"))),
        lambda: find_atom_columns(data, pixel_size_nm=px, zone=zone, composition=composition, enhance=enhance,
                                  noise_model=noise_model, scheduler=scheduler, spectrum=spectrum))
    _app.require_layer_contrast(res.lattice.rows_are_cation_rows, res.layers.parity_from_contrast,
                                composition=composition, name=name)
    res.notes.append(f"layered-oxide check: bright columns (band-passed skewness {check.polarity_skewness:+.2f}), "
                     f"{check.row_fraction:.0%} of the columns in layered rows"
                     f"{_app.degraded_note(check)}, column spacing {check.deviation:+.1%} off {composition}'s")
    cols = res.columns
    d_t = res.lattice.inplane_period_nm
    is_li = (cols["kind"] == "Li").to_numpy()
    env = _ph.li_environment(cols.loc[is_li, "u_nm"].to_numpy(), cols.loc[is_li, "layer"].to_numpy(),
                             cols.loc[is_li, "mixing"].to_numpy(), inplane_spacing_nm=d_t,
                             tm_pattern=_tm_pattern(cols, is_li),
                             reference=cols.loc[is_li, "tm_reference"].to_numpy())
    environment = np.full(len(cols), "", dtype="<U9")
    environment[is_li] = env["environment"].to_numpy()
    widened = env["rock_salt_window"].to_numpy()
    base = 2 * _ph.LOCAL_HALF_WINDOW + 1
    if np.any(widened > base):
        res.notes.append(f"low counts: for {int(np.sum(widened > base))} Li-layer sites the rock-salt decision pooled "
                         f"up to {int(widened.max())} sites ({widened.max() * d_t:.1f} nm) along the layer, where the "
                         f"{base}-site mean was within 2 standard errors of the threshold")
    cols["local_mixing"] = np.nan
    cols.loc[is_li, "local_mixing"] = env["local_mixing"].to_numpy()
    phase, env_below = _phase_labels(cols, env, is_li, res.pairs)
    cols["phase"] = phase
    n_tm = int((~is_li).sum())  # TM columns come first in the table, in the order the pairs index
    environment[:n_tm] = env_below
    cols["environment"] = environment
    cols["site"] = "octahedral"
    dark = np.zeros(len(cols), dtype=bool)
    dark[is_li] = env["dark_sublattice"].to_numpy()
    cols["dark_sublattice"] = dark  # the interlayer table balances a spinel segment's two sublattices
    cols = _add_spinel_tetrahedral_sites(cols, data, res, dark=dark)

    _q.add_spacings(cols, inplane_spacing_nm=d_t)
    cation = res.spacings.cation_spacing_nm
    pmap, pmap_px = _dom.phase_label_image(cols, shape=res.shape, pixel_size_nm=px, max_distance_nm=1.2 * cation)
    from layerscope.imaging.interlayers import interlayer_table

    inter = interlayer_table(cols)
    domains = _dom.find_domains(cols, inplane_spacing_nm=d_t, cation_spacing_nm=cation, interlayers=inter)
    layers = _q.layer_table(cols, res)
    interfaces = _dom.interfaces(layers)
    quantities, glides = _q.quantities(cols, layers, res, phase_map=pmap, map_pixel_nm=pmap_px)
    cols = _with_unindexed(cols, res.unindexed)
    order = ["x_nm", "y_nm", "intensity", "kind", "layer", "phase", "mixing"]
    cols = cols[order + [c for c in cols.columns if c not in order]]
    summary = _summary(cols, domains, layers, interfaces, quantities, res, time.perf_counter() - t0)
    limit = _dl.phases_detection_limit(data, cols, column_sigma_nm=res.column_sigma_nm, pixel_size_nm=px)
    summary["flags"] = (clipping_flags(data) + void_gate_flags(*res.void_gate)
                        + handedness_flags(*res.handedness, zone=res.zone)
                        + _dl.detection_limit_flags(limit, command="phases"))
    if limit is not None:
        summary["detection_limit"] = limit.to_dict()
    summary["interlayers"] = {"segments": int(len(inter)), **{f"mixing_{k}": int(np.sum(inter["mixing"] == k))
                                                               for k in ("yes", "no", "uncertain")},
                              **{f"step_sites_{k}": int(inter.loc[inter["step_source"] == k, "n_sites"].sum())
                                 for k in ("measured", "extended", "none")}}
    return PhaseMap(columns=cols, domains=domains, layers=layers, interfaces=interfaces, glides=glides, phase_map=pmap,
                    phase_map_pixel_nm=pmap_px, summary=summary, result=res, provenance=provenance, interlayers=inter)


def _reached(xy: np.ndarray, known: np.ndarray, candidate: np.ndarray, *, reach_nm: float) -> np.ndarray:
    """Candidates joined to a ``known`` point by steps of at most ``reach_nm`` through other candidates.

    A corner row continues the crystal one or two layers beyond its last row; a line of maxima that
    continues the layer spacing but lies laterally away from every column (noise along the edge of a void
    or of the field: random draw 2170, five maxima 1.15-1.2 nm from every truth column) is not reached.
    """
    reached = np.zeros(len(xy), dtype=bool)
    frontier = known.copy()
    while frontier.any() and (candidate & ~reached).any():
        left = np.nonzero(candidate & ~reached)[0]
        d, _ = cKDTree(xy[frontier]).query(xy[left], distance_upper_bound=reach_nm)
        new = left[np.isfinite(d)]
        reached[new] = True
        frontier = np.zeros(len(xy), dtype=bool)
        frontier[new] = True
    return reached


def _with_unindexed(cols: pd.DataFrame, extra: pd.DataFrame) -> pd.DataFrame:
    """The column table with the detected columns beyond the analysed layers appended (``indexed`` False)."""
    cols = cols.assign(indexed=True)
    if len(extra) == 0:
        return cols
    keep = [c for c in extra.columns if c in cols.columns]
    add = extra[keep].assign(phase="", site="octahedral", indexed=False)
    return pd.concat([cols, add], ignore_index=True, sort=False)


def _checked_columns(check: Any, columns: Any) -> tuple[Any, ColumnResult]:
    """The layered-oxide check (this thread) and the column finder (a second one) at once: 2 cores' wall time.

    ``check`` and ``columns`` are the two calls without arguments; they read the same image and
    share nothing else, so every number is the one of calling them one after the other. The check
    decides first: its refusal is raised as soon as it is made (the column finder's work is then
    discarded; its thread is a daemon and never holds the process), the finder's result or error
    otherwise.
    """
    found = _on_thread(columns, name="layerscope-columns")
    return check(), found.result()


def _on_thread(call: Any, *, name: str = "layerscope-beside") -> Any:
    """``call()`` (no arguments) started on a new daemon thread: a :class:`concurrent.futures.Future` whose
    ``result()`` waits for its value or raises its exception in the caller's thread. For work that shares
    only read-only arrays with the caller's (NumPy and SciPy release the GIL: two cores' wall time)."""
    import threading
    from concurrent.futures import Future

    found: Future = Future()

    def work() -> None:
        found.set_running_or_notify_cancel()
        try:
            found.set_result(call())
        except BaseException as exc:  # handed to the caller's thread by found.result()
            found.set_exception(exc)

    threading.Thread(target=work, name=name, daemon=True).start()
    return found


def _phase_labels(cols: pd.DataFrame, env: pd.DataFrame, is_li: np.ndarray,
                  pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Phase label of every column and the Li-layer environment of the gap below each TM column.

    Li-layer sites: :func:`layerscope.imaging.phases.label_li_sites`; TM columns:
    :func:`layerscope.imaging.phases.label_tm_columns` with the environment of the Li site whose
    pair starts at the column (the one whose pair ends at it where there is none); both with the
    relation two steps up (single reversed steps, see :data:`LABEL_CONVENTION`).
    """
    rel_up2, li_up2 = _relations_two_up(cols, pairs, is_li)
    li_labels = _ph.label_li_sites(cols.loc[is_li, "relation"].to_numpy(), cols.loc[is_li, "relation_above"].to_numpy(),
                                   cols.loc[is_li, "relation_below"].to_numpy(), env["environment"].to_numpy(),
                                   relation_above2=li_up2)
    # Environment of the gap below each TM column: the Li site whose pair starts at it.
    tm_idx = np.nonzero(~is_li)[0]
    env_below = np.full(tm_idx.size, "", dtype="<U9")  # TM rows are 0..n_tm-1
    li_above_col = cols.loc[is_li, "above"].to_numpy()
    li_env = env["environment"].to_numpy()
    ok = li_above_col >= 0
    env_below[li_above_col[ok].astype(int)] = li_env[ok]
    li_below_col = cols.loc[is_li, "below"].to_numpy()
    ok2 = (li_below_col >= 0)
    fallback = np.full(tm_idx.size, "", dtype="<U9")
    fallback[li_below_col[ok2].astype(int)] = li_env[ok2]
    env_below = np.where(env_below == "", fallback, env_below)
    tm_labels = _ph.label_tm_columns(cols.loc[~is_li, "relation_up"].to_numpy(), cols.loc[~is_li, "relation"].to_numpy(),
                                     env_below, relation_up2=rel_up2)
    phase = np.full(len(cols), "", dtype="<U9")
    phase[~is_li] = tm_labels
    phase[is_li] = li_labels
    return phase, env_below


def _relations_two_up(cols: pd.DataFrame, pairs: pd.DataFrame, is_li: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The relation one TM layer above each TM column's upper relation, and the same for each Li site.

    For TM column ``c`` it is the upper relation of the TM column that ``c`` pairs up with; for a
    Li-layer site that of the upper TM column of its (context) pair. ``""`` where there is none.
    """
    n_tm = int((~is_li).sum())  # TM rows first, in the order the pairs index
    rel_up = cols["relation_up"].to_numpy()[:n_tm].astype(str)
    partner = np.full(n_tm, -1)
    partner[pairs["below"].to_numpy()] = pairs["above"].to_numpy()
    up2 = np.where(partner >= 0, rel_up[np.maximum(partner, 0)], "")
    ctx = cols.loc[is_li, "context"].fillna(-1).to_numpy().astype(int)
    above = np.where(ctx >= 0, pairs["above"].to_numpy()[np.maximum(ctx, 0)] if len(pairs) else -1, -1)
    li_up2 = np.where(above >= 0, up2[np.maximum(above, 0)] if n_tm else "", "")
    return up2, li_up2


def _tm_pattern(cols: pd.DataFrame, is_li: np.ndarray) -> np.ndarray:
    """Per Li-layer site: intensity of the TM column above over its layer's mean, minus that below.

    The input of :func:`layerscope.imaging.phases.li_environment` that carries a spinel's kagome
    order (NaN for sites not placed from a TM pair).
    """
    tm = ~is_li
    intensity = cols["intensity"].to_numpy(dtype=float)
    layer = cols["layer"].to_numpy()
    rel = np.full(len(cols), np.nan)
    layer_mean = pd.Series(intensity[tm]).groupby(layer[tm]).mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        rel[tm] = intensity[tm] / layer_mean.reindex(layer[tm]).to_numpy()
    above = cols.loc[is_li, "above"].to_numpy()
    below = cols.loc[is_li, "below"].to_numpy()
    ok = (above >= 0) & (below >= 0)
    out = np.full(ok.size, np.nan)
    out[ok] = rel[above[ok].astype(int)] - rel[below[ok].astype(int)]
    return out


def _add_spinel_tetrahedral_sites(cols: pd.DataFrame, data: np.ndarray, res: ColumnResult, *,
                                  dark: np.ndarray) -> pd.DataFrame:
    """The table with the tetrahedral columns of every spinel Li layer appended.

    Each empty octahedral site (``dark``: the dim sublattice of its window) of a Li-layer site
    labelled spinel, placed from a TM pair, gets the tetrahedral columns of
    :func:`layerscope.imaging.phases.spinel_tetrahedral_sites`: the upper one always (the TM layer
    above takes this gap's label), the lower one where the TM column below is labelled spinel
    too; those falling outside the image are dropped. They are placed (``detected`` False,
    invisible pure-Li columns), labelled spinel, kind
    ``"Li"``, ``site`` ``"tetrahedral"``, inherit the layer, relations and environment of their
    octahedral site, and are measured like every Li-layer site (intensity and mixing index, so
    that a TM in a tetrahedral site shows).
    """
    ctx = cols["context"].fillna(-1).to_numpy().astype(int) if "context" in cols else np.full(len(cols), -1)
    src = np.nonzero(dark & (cols["phase"].to_numpy() == "spinel") & (ctx >= 0))[0]
    if src.size == 0:
        return cols
    tm = cols.iloc[: int((cols["kind"] == "TM").sum())]  # TM rows first: the pairs index them
    a = res.pairs["above"].to_numpy()[ctx[src]]
    b = res.pairs["below"].to_numpy()[ctx[src]]
    tm_v = tm["v_nm"].to_numpy()
    d_t = res.lattice.inplane_period_nm
    tet = _ph.spinel_tetrahedral_sites(cols["u_nm"].to_numpy()[src], cols["v_nm"].to_numpy()[src],
                                       cols["step"].to_numpy()[src] * d_t, tm_v[b] - tm_v[a],
                                       lower=tm["phase"].to_numpy()[b] == "spinel")
    new = cols.iloc[src[tet["source"].to_numpy()]].reset_index(drop=True)
    new["u_nm"], new["v_nm"] = tet["u_nm"].to_numpy(), tet["v_nm"].to_numpy()
    xy = np.outer(new["u_nm"], res.lattice.inplane) + np.outer(new["v_nm"], res.lattice.normal)
    new["x_nm"], new["y_nm"] = xy[:, 0], xy[:, 1]
    new = new[_inside(xy, res.shape, res.pixel_size_nm)].reset_index(drop=True)
    new["site"] = "tetrahedral"
    new["detected"] = False
    new["fit_ok"] = False
    for name in ("position_error_pm", "sigma_nm"):
        if name in new:
            new[name] = np.nan
    _measure_li_sites(data, res.pixel_size_nm, new, tm, sigma_nm=res.column_sigma_nm, radius_nm=res.site_window_nm)
    return pd.concat([cols, new], ignore_index=True)


def _summary(cols, domains, layers, interfaces, quantities, res: ColumnResult, elapsed: float) -> dict:
    # phases are counted over the analysed columns (``indexed``), not those beyond the analysed layers
    labelled = cols[cols["indexed"].to_numpy(dtype=bool)] if "indexed" in cols else cols
    counts = labelled.groupby(["phase", "kind"]).size().unstack(fill_value=0)
    fractions = (labelled["phase"].value_counts() / max(len(labelled), 1)).round(4).to_dict()
    return {
        "image": {"shape": list(res.shape), "pixel_size_nm": res.pixel_size_nm},
        "lattice": {
            "basal_normal_angle_deg": round(res.lattice.angle_deg, 3),
            "inplane_spacing_nm": round(res.lattice.inplane_period_nm, 5),
            "tm_layer_period_nm": round(res.lattice.layer_period_nm, 5),
            "tm_layers_identified_from_contrast": res.layers.parity_from_contrast,
            "column_sigma_nm": round(res.column_sigma_nm, 5),
            "zone": res.zone,
            "composition": res.spacings.composition,
        },
        "columns": {
            "total": int(len(cols)),
            "detected": int(cols["detected"].sum()),
            "tm": int((cols["kind"] == "TM").sum()),
            "tm_placed": int(((cols["kind"] == "TM") & ~cols["detected"]).sum()),
            "at_border": int(cols["at_border"].sum()) if "at_border" in cols else 0,
            # wide probes: columns reported at their lattice sites, the fit pulled off by the neighbours (LATTICE_POSITIONS)
            "position_from_lattice": int(cols["position_from_lattice"].sum()) if "position_from_lattice" in cols else 0,
            "unindexed": int(len(cols) - len(labelled)),
            "li_sites": int((cols["kind"] == "Li").sum()),
            # Li-layer sites placed in a void (``site_in_void``): no data; out of the fill only with SKIP_VOID_SITES
            "li_sites_in_void": int(cols["site_in_void"].fillna(False).astype(bool).sum()) if "site_in_void" in cols else 0,
            # Li-layer sites at a gap two layer spacings wide (``site_at_gap``); out of the fill only with SKIP_GAP_SITES
            "li_sites_at_gap": int(cols["site_at_gap"].fillna(False).astype(bool).sum()) if "site_at_gap" in cols else 0,
            "per_phase_and_kind": {ph: {k: int(v) for k, v in row.items()} for ph, row in counts.iterrows()},
        },
        "phase_fractions": fractions,
        "mean_mixing_layered": _nanmean(cols.loc[(cols["kind"] == "Li") & cols["phase"].isin(["O3", "O3'", "O1"]), "mixing"]),
        "domains": int(len(domains)),
        "twin_like_domains": {kind: int(np.sum(domains["twin_type"] == kind))
                              for kind in ("single-layer", "double-layer", "multilayer")},
        "label_convention": LABEL_CONVENTION,
        "interfaces": interfaces.to_dict(orient="records"),
        "quantities": quantities,
        "notes": list(res.notes),
        "timings_s": {k: round(v, 3) for k, v in {**res.timings_s, "map_phases": elapsed}.items()},
    }


def _nanmean(series) -> float | None:
    arr = np.asarray(series, dtype=float)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else None
