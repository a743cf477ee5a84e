"""The in situ pipeline: one pass over the frames, chunk by chunk, then the time series.

Each chunk of frames (a Dask task) is read once and every frame is Fourier transformed once; from
that spectrum come the shift(s) against the reference frame(s), the low-passed frame for the dark
features (voids, pores, cracks) and the layer-fringe amplitude for the reaction front, all in the
frame's own (drifting) coordinates. The drift is solved afterwards from all pairwise shifts
(:func:`~layerscope.insitu.registration.solve_drift`) and the per-frame results are moved into the
specimen coordinates of the first frame. Tracking, velocities and summaries follow on the small
per-frame tables.

The fan-out goes through :func:`layerscope.parallel.compute`: local threads by default
(memory stays at a few chunks), or a ``dask.distributed`` cluster given by its address or client;
the numbers are the same.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from layerscope.containers import ImageSeries
from layerscope.errors import ConvergenceError, InputError
from layerscope.insitu import cracks as _cracks
from layerscope.insitu import fronts as _fronts
from layerscope.insitu import registration as _reg
from layerscope.insitu import tracking as _tracking
from layerscope.insitu import voids as _voids
from layerscope.insitu.series import diagnose_frame, open_series, read_frame

__all__ = ["InsituOptions", "InsituResult", "analyse_series"]


@dataclass(frozen=True)
class InsituOptions:
    """What to analyse and how.

    Attributes
    ----------
    drift : bool
        Measure and correct drift (otherwise the frames are taken as aligned).
    reference : str
        ``"first"``: every frame against the first; ``"previous"``: against the one before;
        ``"rolling"``: against the ``window`` frames before it, combined by least squares;
        ``"hybrid"``: rolling plus every frame against the first. With ``"rolling"`` and
        ``"hybrid"``, the links to the previous good frame form a chain, and every longer link
        (rolling window, first frame) that disagrees with the chain by more than ``alias_px`` is
        dropped before the least-squares solution: on lattice images a shift by one lattice
        translation correlates about as well as the true one; the chain of small frame-to-frame
        steps tells them apart (it needs steps below half the shortest lattice translation), and
        the first-frame links stop it from wandering. ``"auto"``: hybrid when the first frame
        shows a lattice, else first.
    window : int
        Frames in the rolling reference.
    upsample : int
        Sub-pixel resolution of the shift, 1/upsample px (then refined by a parabola).
    alias_px : float
        Hybrid reference: the largest disagreement (px) between a first-frame link and the chain.
    registration_smooth_px : float
        Gaussian weight on the cross-power spectrum (its real-space width, px).
    registration_whitening : float
        Spectral whitening exponent (1 phase correlation, 0 cross-correlation; 0.5 works for
        both lattice images and textures, see :func:`~layerscope.insitu.registration.correlate_spectra`).
    roi_nm : (x0, y0, x1, y1), optional
        Register on this rectangle only (nm, frame coordinates).
    coarse_nm : float, optional
        Find the shift first from features larger than this (nm), then refine near it. Useful on
        lattice images with static non-periodic features (an interface, a particle edge) in the
        region of interest; features that change between frames (growing voids, a moving front)
        make it unreliable, which is why ``"hybrid"`` is the default for lattice images.
    voids : bool
        Segment dark features (voids, pores) and track them.
    void_params : VoidParams
    contact_frames : int
        Void tracking: a merge undone within this many frames is a contact, not a coalescence
        (see :func:`~layerscope.insitu.tracking.track_features`); 0 reports every merge and split.
    cracks : bool
        Measure elongated dark features as cracks.
    crack_min_elongation : float
    fronts : bool
        Track the layered/rock-salt reaction front.
    front_direction_deg : float, optional
        Propagation direction (deg, 0 right, 90 down); estimated from the fringe-power gradient
        when not given.
    layer_spacing_nm : float, optional
        Layer period (nm) of the fringe that vanishes in rock salt (0.47 nm for (003)); searched
        in 0.38-0.60 nm when not given.
    front_window_nm : float
        Sigma (nm) of the demodulation window (the resolution of the order map).
    interface : str, tuple or None
        ``"detect"``: find the amorphous electrolyte (no lattice fringe, touching the frame edge)
        in every frame; a tuple ``(x0, y0, x1, y1)``: a straight interface through these two points
        (nm, specimen coordinates) for the distances, with the electrolyte on the left of the
        direction from the first to the second point (as seen on screen); None: none.
    surface_distance_nm : float
        Voids whose outline comes this close to the interface are surface pores; the rest bulk voids.
    thickness_nm : ndarray or float, optional
        Foil thickness (nm): a number, or a map of the first frame's field (same shape as a frame).
        Voids then get a missing thickness (nm) and volume.
    thickness_t_lambda : ndarray, optional
        Instead of ``thickness_nm``: a relative-thickness map t/lambda of the first frame's field
        (e.g. from EELS log-ratio), turned into nm with ``mfp_nm``.
    mfp_nm : float, optional
        Inelastic mean free path lambda (nm) for ``thickness_t_lambda``.
    chunk_frames : int
        Frames per task.
    on_bad_frame : str
        ``"skip"``: report unreadable frames and go on; ``"stop"``: stop at the first one, keep
        every frame before it.
    """

    drift: bool = True
    reference: str = "auto"
    window: int = 3
    alias_px: float = 1.0
    upsample: int = 20
    registration_smooth_px: float = 1.0
    registration_whitening: float = 0.5
    roi_nm: tuple[float, float, float, float] | None = None
    coarse_nm: float | None = None
    voids: bool = True
    void_params: _voids.VoidParams = field(default_factory=_voids.VoidParams)
    contact_frames: int = 3
    cracks: bool = True
    crack_min_elongation: float = 3.0
    fronts: bool = False
    front_direction_deg: float | None = None
    layer_spacing_nm: float | None = None
    front_window_nm: float = 0.4
    interface: Any = None
    surface_distance_nm: float = 1.0
    thickness_nm: Any = None
    thickness_t_lambda: Any = None
    mfp_nm: float | None = None
    chunk_frames: int = 16
    on_bad_frame: str = "skip"

    def __post_init__(self) -> None:
        if self.reference not in ("auto", "first", "previous", "rolling", "hybrid"):
            raise InputError(f"--reference {self.reference!r}: choose auto, first, previous, rolling or hybrid")
        if self.window < 1:
            raise InputError(f"--window {self.window}: give at least 1 frame")
        if self.contact_frames < 0:
            raise InputError(f"--contact-frames {self.contact_frames}: give 0 or more frames")
        if self.upsample < 1:
            raise InputError(f"--upsample {self.upsample}: give 1 or more (the drift is resolved to 1/UPSAMPLE px)")
        if self.on_bad_frame not in ("skip", "stop"):
            raise InputError(f"--on-bad-frame {self.on_bad_frame!r}: choose skip or stop")
        if not (self.front_window_nm > 0):
            raise InputError(f"--front-window-nm {self.front_window_nm}: give a positive window sigma in nm")
        self._check_thickness()
        if self.interface is not None and self.interface != "detect":
            if len(tuple(self.interface)) != 4:
                raise InputError("--interface: give 'detect' or four numbers x0,y0,x1,y1 in nm")

    def _check_thickness(self) -> None:
        if self.thickness_t_lambda is None:
            if self.mfp_nm is not None:
                raise InputError("--mfp-nm is used with --thickness-map (t/lambda); give --thickness-map too, "
                                 "or --thickness-nm alone")
            return
        if self.thickness_nm is not None:
            raise InputError("give either --thickness-nm or --thickness-map with --mfp-nm, not both")
        if self.mfp_nm is None:
            raise InputError("--thickness-map is t/lambda: give the inelastic mean free path with --mfp-nm")
        if not (np.isfinite(self.mfp_nm) and self.mfp_nm > 0):
            raise InputError(f"--mfp-nm {self.mfp_nm!r}: give a positive mean free path in nm")
        if np.ndim(self.thickness_t_lambda) != 2:
            raise InputError(f"--thickness-map holds an array of shape {np.shape(self.thickness_t_lambda)}; "
                             f"give a single 2-D t/lambda map of the first frame's field")

    def thickness_field_nm(self) -> Any:
        """The foil thickness (nm): ``thickness_nm``, or ``thickness_t_lambda * mfp_nm``, or None."""
        if self.thickness_t_lambda is not None:
            return np.asarray(self.thickness_t_lambda, float) * float(self.mfp_nm)
        return self.thickness_nm

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for name in ("thickness_nm", "thickness_t_lambda"):
            v = getattr(self, name)
            if v is not None and np.ndim(v) > 0:
                d[name] = f"<map {np.shape(v)}>"
        return d


@dataclass
class InsituResult:
    """Everything the pipeline measured.

    Attributes
    ----------
    frames : DataFrame
        One row per frame: ``frame, time_s, status`` (``ok`` or why not), drift (px and nm,
        quality), void statistics and the front.
    voids : DataFrame
        One row per void per frame (specimen coordinates), with ``track_id``, ``kind``
        (``surface`` or ``bulk``) and distances.
    tracks, events : DataFrame
        Void tracks and their events (see :mod:`layerscope.insitu.tracking`).
    cracks : DataFrame
        One row per crack per frame.
    fronts : DataFrame
        Per-frame front position, width and fit quality (specimen coordinates).
    bad_frames : DataFrame
        ``frame, reason``.
    summary : dict
        Key numbers with uncertainties.
    options : InsituOptions
    pixel_size_nm : float
    shape : (int, int)
    stopped_at : int or None
        The frame where the analysis stopped (``on_bad_frame="stop"``).
    profiles : dict
        Frame -> :class:`~layerscope.insitu.fronts.FrontProfile` (raw frame coordinates).
    outlines : dict
        Frame -> list of ``(row0, col0, mask, kind, bin)`` of the features in raw frame coordinates
        on the segmentation grid (``kind``: void, surface, crack), for drawing.
    """

    frames: pd.DataFrame
    voids: pd.DataFrame
    tracks: pd.DataFrame
    events: pd.DataFrame
    cracks: pd.DataFrame
    fronts: pd.DataFrame
    bad_frames: pd.DataFrame
    summary: dict
    options: InsituOptions
    pixel_size_nm: float
    shape: tuple[int, int]
    stopped_at: int | None = None
    profiles: dict = field(default_factory=dict)
    outlines: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# per-task work


@dataclass
class _Context:
    """Everything a task needs (picklable, small)."""

    shape: tuple[int, int]
    pixel_size_nm: float
    options: InsituOptions
    reference: str
    roi_px: tuple[int, int, int, int] | None
    coarse_px: float | None
    search_radius_px: float | None
    layer_peak: _fronts.LatticePeak | None
    interface_peaks: tuple[_fronts.LatticePeak, ...]
    front_direction_deg: float | None
    n_prev: int
    lattice: bool = False


@dataclass
class FrameRecord:
    """What one task measured on one frame (small, picklable; returned by the chunk tasks).

    Attributes
    ----------
    frame : int
    ok : bool
        False when the frame could not be read (or has another shape).
    pairs : list of tuple
        ``(i, j, dy_px, dx_px, quality, kind)`` shifts of frame ``i`` against frame ``j``
        (``kind``: ``"chain"`` or ``"check"``).
    features : list
        Dark features (:class:`~layerscope.insitu.voids.DarkFeature`), raw frame coordinates.
    stats : dict
        Segmentation statistics (analysed area, noise, threshold, electrolyte fraction).
    front : FrontProfile or None
        The fringe-power profile along the front direction (raw frame coordinates).
    """

    frame: int
    ok: bool = True
    pairs: list = field(default_factory=list)
    features: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    front: _fronts.FrontProfile | None = None


class _TaskState:
    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.grid = _reg.FourierGrid(ctx.shape)
        if ctx.roi_px is not None:
            r0, r1, c0, c1 = ctx.roi_px
            self.roi_grid = _reg.FourierGrid((r1 - r0, c1 - c0))
        else:
            self.roi_grid = self.grid
        self.seg = _voids.SegmentationGrid(ctx.shape, ctx.pixel_size_nm, ctx.options.void_params) \
            if (ctx.options.voids or ctx.options.cracks or ctx.options.interface == "detect") else None

    def reg_spectrum(self, frame: np.ndarray) -> np.ndarray:
        if self.ctx.roi_px is None:
            return _reg.registration_spectrum(frame, self.grid)
        r0, r1, c0, c1 = self.ctx.roi_px
        return _reg.registration_spectrum(frame[r0:r1, c0:c1], self.roi_grid)

    def shift(self, mov: np.ndarray, ref: np.ndarray) -> _reg.ShiftEstimate:
        o = self.ctx.options
        return _reg.correlate_spectra(mov, ref, self.roi_grid, upsample=o.upsample, smooth_px=o.registration_smooth_px,
                                      whitening=o.registration_whitening, coarse_px=self.ctx.coarse_px, search_radius_px=self.ctx.search_radius_px)


def _electrolyte_mask(fs: _reg.FrameSpectrum, st: _TaskState) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Electrolyte on the segmentation grid, and the distance (nm) of every sample to it.

    The electrolyte (amorphous LiPON, or vacuum) is where the summed power of all the lattice
    fringes of the first frame, relative to the local mean intensity squared, falls below half
    of its median *and* the local mean intensity is darker than half way between the fringe-less
    and the crystalline regions (and at least 20 % darker than the crystal: light elements in
    HAADF), in a region of at least 2 % of the field that touches the frame edge. Rock salt keeps its
    intensity (and some fringes), voids and cracks keep their fringes relative to their intensity:
    neither is taken for electrolyte.
    """
    from scipy import ndimage as ndi

    ctx = st.ctx
    if not ctx.interface_peaks or st.seg is None:
        return None, None
    sigma_px = ctx.options.front_window_nm / ctx.pixel_size_nm
    power = None
    for pk in ctx.interface_peaks:
        z, step = _fronts.demodulate(fs.periodic, st.grid, pk, sigma_px=sigma_px)
        power = np.abs(z) ** 2 if power is None else power + np.abs(z) ** 2
    mean, _ = _fronts.demodulate(fs, st.grid, _ZERO_PEAK, sigma_px=sigma_px)
    level = np.abs(mean)
    power = power / np.maximum(level, 1e-3 * float(np.median(level)) + 1e-30) ** 2
    weak = power < 0.5 * np.median(power)
    if not weak.any() or weak.all():
        return None, None
    # the interface at half way between the electrolyte's and the cathode's mean intensity
    threshold = 0.5 * (np.median(level[weak]) + np.median(level[~weak]))
    amorph = weak & (level < threshold) & (level < 0.8 * np.median(level[~weak]))
    lab, n = ndi.label(amorph)
    if n == 0:
        return None, None
    border = np.unique(np.r_[lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    sizes = np.bincount(lab.ravel(), minlength=n + 1)
    keep = [k for k in border if k > 0 and sizes[k] >= 0.02 * lab.size]
    if not keep:
        return None, None
    coarse = np.isin(lab, keep)
    # onto the segmentation grid (nearest coarse sample)
    seg = st.seg
    rows = np.clip(np.round(np.arange(seg.small_shape[0]) * seg.bin / step[0]).astype(int), 0, coarse.shape[0] - 1)
    cols = np.clip(np.round(np.arange(seg.small_shape[1]) * seg.bin / step[1]).astype(int), 0, coarse.shape[1] - 1)
    electrolyte = coarse[np.ix_(rows, cols)]
    dist = ndi.distance_transform_edt(~electrolyte) * seg.step_nm
    return electrolyte, dist


def _front_exclusion(shape: tuple[int, int], step: tuple[float, float], st: _TaskState, feats: list,
                     electrolyte: np.ndarray | None) -> np.ndarray:
    """Coarse-grid samples the front profile leaves out: the given features (grown by three window
    sigmas) and the electrolyte (two): they lower the fringe without any cation mixing."""
    from scipy import ndimage as ndi

    ctx = st.ctx
    seg = st.seg
    if seg is None or (not feats and electrolyte is None):
        return np.zeros(shape, bool)
    sigma_px = ctx.options.front_window_nm / ctx.pixel_size_nm
    full = np.zeros(seg.small_shape, np.float32)
    for f in feats:
        full[f.row0 : f.row0 + f.mask.shape[0], f.col0 : f.col0 + f.mask.shape[1]] += f.mask
    grow = int(np.ceil(3 * sigma_px / seg.bin))
    out = ndi.uniform_filter(full, size=2 * grow + 1, mode="constant") > 1e-4 if feats else np.zeros(seg.small_shape, bool)
    if electrolyte is not None:
        grow_e = int(np.ceil(2 * sigma_px / seg.bin))
        out |= ndi.uniform_filter(electrolyte.astype(np.float32), size=2 * grow_e + 1, mode="nearest") > 1e-4
    rr = np.clip(np.round(np.arange(shape[0]) * step[0] / seg.bin).astype(int), 0, out.shape[0] - 1)
    cc = np.clip(np.round(np.arange(shape[1]) * step[1] / seg.bin).astype(int), 0, out.shape[1] - 1)
    return out[np.ix_(rr, cc)]


def _front_map(fs: _reg.FrameSpectrum, st: _TaskState, feats: list, electrolyte: np.ndarray | None):
    """Relative fringe power on the coarse grid, its step and the samples to leave out.

    The fringe amplitude is divided by the local mean intensity (the same window at zero
    frequency): both scale with the local thickness, so voids and thickness changes drop out and
    what remains follows the cation order. Only features darker than 60 % (through-going cracks,
    holes) are left out, where the ratio is mostly noise.
    """
    ctx = st.ctx
    sigma_px = ctx.options.front_window_nm / ctx.pixel_size_nm
    z, step = _fronts.demodulate(fs.periodic, st.grid, ctx.layer_peak, sigma_px=sigma_px)
    mean, _ = _fronts.demodulate(fs, st.grid, _ZERO_PEAK, sigma_px=sigma_px)
    level = np.abs(mean)
    floor = 1e-3 * float(np.median(level)) + 1e-30
    power = (np.abs(z) ** 2 / np.maximum(level, floor) ** 2).astype(np.float32)
    deep = [f for f in feats if f.depth > 0.6]
    return power, step, _front_exclusion(power.shape, step, st, deep, electrolyte)


#: demodulation at zero frequency: the local mean intensity with the same window
_ZERO_PEAK = _fronts.LatticePeak(0.0, 0.0, float("inf"), 0.0, 0.0)


def _front_in_frame(fs: _reg.FrameSpectrum, st: _TaskState, feats: list,
                    electrolyte: np.ndarray | None) -> _fronts.FrontProfile:
    ctx = st.ctx
    sigma_px = ctx.options.front_window_nm / ctx.pixel_size_nm
    power, step, exclude = _front_map(fs, st, feats, electrolyte)
    prof = _fronts.front_profile(power, step, pixel_size_nm=ctx.pixel_size_nm, direction_deg=ctx.front_direction_deg,
                                 exclude=exclude, margin_px=3.0 * sigma_px, window_sigma_px=sigma_px)
    return prof


def _measure_crack(f, st: _TaskState) -> dict:
    o = st.ctx.options
    contrast = f.extra.get("contrast")
    mask = f.mask
    if contrast is not None:
        a0, b0 = f.extra["contrast_origin"]
        mask = np.zeros(contrast.shape, bool)
        mask[f.row0 - a0 : f.row0 - a0 + f.mask.shape[0], f.col0 - b0 : f.col0 - b0 + f.mask.shape[1]] = f.mask
    return _cracks.measure_crack(mask, st.seg.step_nm, smooth_nm=o.void_params.smooth_nm,
                                 edge_level=o.void_params.edge_level, contrast=contrast)


def _frame_features(frame: np.ndarray, st: _TaskState):
    """Spectrum, electrolyte mask/distance and dark features of one frame."""
    o = st.ctx.options
    fs = _reg.periodic_spectrum(frame, st.grid)
    electrolyte = dist = None
    if o.interface == "detect":
        electrolyte, dist = _electrolyte_mask(fs, st)
    feats, stats = [], {}
    if st.seg is not None and (o.voids or o.cracks):
        cathode = None
        if electrolyte is not None:
            # leave out a band of 3 smoothing sigmas along the interface: the low-pass mixes the dark
            # electrolyte into it, which would look like voids
            from scipy import ndimage as ndi

            band = max(1, int(np.ceil(3 * o.void_params.smooth_nm / st.seg.step_nm)))
            cathode = ~ndi.binary_dilation(electrolyte, iterations=band)
        feats, stats = _voids.segment_frame(fs, st.seg, cathode=cathode, interface_distance=dist)
        stats["electrolyte_fraction"] = float(electrolyte.mean()) if electrolyte is not None else 0.0
    return fs, electrolyte, feats, stats


def _analyse_block(block: np.ndarray, prev: np.ndarray | None, ref: np.ndarray | None, *, start: int,
                   ctx: _Context) -> list[FrameRecord]:
    """All per-frame measurements of one chunk (runs in a Dask task)."""
    st = _TaskState(ctx)
    o = ctx.options
    history: deque = deque(maxlen=max(1, ctx.n_prev))
    if prev is not None and ctx.n_prev > 0:
        p0 = start - prev.shape[0]
        for k in range(max(0, prev.shape[0] - ctx.n_prev), prev.shape[0]):
            f = np.asarray(prev[k], np.float32)
            if np.all(np.isfinite(f)):
                history.append((p0 + k, st.reg_spectrum(f)))
    ref_spec = None
    if o.drift and ctx.reference in ("first", "hybrid") and ref is not None:
        rf = np.asarray(ref, np.float32)
        ref_spec = st.reg_spectrum(rf)
    out: list[FrameRecord] = []
    for k in range(block.shape[0]):
        i = start + k
        frame = np.asarray(block[k], np.float32)
        rec = FrameRecord(frame=i)
        if frame.shape != ctx.shape or not np.all(np.isfinite(frame)):
            rec.ok = False
            out.append(rec)
            continue
        fs, electrolyte, feats, stats = _frame_features(frame, st)
        if o.drift:
            spec = st.reg_spectrum(frame)
            if ctx.reference in ("first", "hybrid") and i > 0 and ref_spec is not None:
                e = st.shift(spec, ref_spec)
                rec.pairs.append((i, 0, e.dy, e.dx, e.quality, "check" if ctx.reference == "hybrid" else "chain"))
            if ctx.reference != "first":
                for k2, (j, hs) in enumerate(history):
                    e = st.shift(spec, hs)
                    # the link to the last good frame builds the chain; longer links are checked against it
                    kind = "chain" if k2 == len(history) - 1 else "check"
                    rec.pairs.append((i, j, e.dy, e.dx, e.quality, kind))
                history.append((i, spec))
        if o.cracks:
            for f in feats:
                if _cracks.is_crack(f.major_nm, f.minor_nm, min_elongation=o.crack_min_elongation):
                    m = _measure_crack(f, st)
                    if _cracks.is_band(m, min_elongation=o.crack_min_elongation):
                        f.extra["crack"] = m
            for f in feats:
                f.extra.pop("contrast", None)
        rec.features = feats
        rec.stats = stats
        if o.fronts and ctx.layer_peak is not None:
            rec.front = _front_in_frame(fs, st, feats, electrolyte)
        out.append(rec)
    return out


# ---------------------------------------------------------------------------------------------
# the driver


def _prepare(series: ImageSeries, o: InsituOptions) -> _Context:
    """Read the first (and for fronts a few more) frames to set the lattice-dependent options."""
    p = float(series.pixel_size_nm)
    shape = (int(series.shape[1]), int(series.shape[2]))
    grid = _reg.FourierGrid(shape)
    first = _first_good_frame(series)
    per0 = _reg.periodic_spectrum(first, grid).periodic
    roi_px = None
    if o.roi_nm is not None:
        x0, y0, x1, y1 = o.roi_nm
        c0, c1 = int(np.floor(min(x0, x1) / p)), int(np.ceil(max(x0, x1) / p))
        r0, r1 = int(np.floor(min(y0, y1) / p)), int(np.ceil(max(y0, y1) / p))
        c0, r0 = max(c0, 0), max(r0, 0)
        c1, r1 = min(c1, shape[1]), min(r1, shape[0])
        if r1 - r0 < 16 or c1 - c0 < 16:
            raise InputError(f"--roi-nm {','.join(f'{v:g}' for v in o.roi_nm)} covers {r1 - r0} x {c1 - c0} pixels of the frame; it needs at least "
                             f"16 x 16 pixels inside the {shape[1] * p:.3g} x {shape[0] * p:.3g} nm field")
        roi_px = (r0, r1, c0, c1)
    thick = o.thickness_field_nm()
    if thick is not None and np.ndim(thick) == 2 and tuple(np.shape(thick)) != shape:
        raise InputError(f"{series.title}: the thickness map is {np.shape(thick)[0]} x {np.shape(thick)[1]} pixels, "
                         f"the frames {shape[0]} x {shape[1]}; give --thickness-map of the first frame's field")
    peaks = _bragg_peaks(per0, grid, p)
    reference = o.reference
    if reference == "auto":
        reference = "hybrid" if peaks else "first"
    coarse_px = search = None
    if o.coarse_nm is not None:
        coarse_px = float(o.coarse_nm) / p
        search = max(1.0, coarse_px / 8.0)
    layer_peak = None
    interface_peaks: tuple = ()
    direction = o.front_direction_deg
    if o.fronts:
        layer_peak = _fronts.find_layer_peak(per0, grid, pixel_size_nm=p, layer_spacing_nm=o.layer_spacing_nm)
    if o.interface == "detect":
        if not peaks:
            raise InputError(f"{series.title}: --interface detect needs a lattice image (the electrolyte is found as the "
                             "region without lattice fringes); give --interface x0,y0,x1,y1 (two points, nm) instead")
        interface_peaks = tuple(peaks)
    ctx = _Context(shape, p, o, reference, roi_px, coarse_px, search, layer_peak, interface_peaks, direction,
                   n_prev=(1 if reference == "previous" else o.window if reference in ("rolling", "hybrid") else 0))
    ctx.lattice = bool(peaks)
    if o.fronts and direction is None:
        ctx.front_direction_deg = _estimate_direction(series, ctx, grid)
    return ctx


def _bragg_peaks(per: np.ndarray, grid: _reg.FourierGrid, p: float, *, n_max: int = 6) -> list[_fronts.LatticePeak]:
    """Strong lattice peaks (power > 50x the median at their radius) with spacings above 2.5 px."""
    power = np.abs(per) ** 2
    k = np.sqrt(grid.k2())
    ok = (k > 0) & (k <= 0.4) & (k * min(grid.shape) >= 6)
    if not ok.any():
        return []
    kb = np.round(k * min(grid.shape)).astype(int)
    med = _ring_medians(power, kb, np.unique(kb[ok]))
    rel = np.where(ok, power / np.maximum(med[kb], 1e-30), 0.0)
    from scipy import ndimage as ndi

    local_max = (rel == ndi.maximum_filter(rel, size=5)) & (rel > 50.0)
    idx = np.argsort(rel[local_max])[::-1][:n_max]
    ys, xs = np.nonzero(local_max)
    peaks = []
    for t in idx:
        iy, ix = ys[t], xs[t]
        gy, gx = float(grid.fy[iy]), float(grid.fx[ix])
        g = np.hypot(gy, gx)
        peaks.append(_fronts.LatticePeak(gy, gx, p / g, float(np.rad2deg(np.arctan2(gy, gx)) % 180), float(rel[iy, ix])))
    return peaks


def _ring_medians(power: np.ndarray, ring: np.ndarray, rings: np.ndarray) -> np.ndarray:
    """Median of ``power`` over each ring index in ``rings`` (one sort, not one pass per ring)."""
    flat, lab = power.ravel(), ring.ravel()
    order = np.argsort(lab, kind="stable")
    sorted_lab = lab[order]
    med = np.zeros(int(lab.max()) + 2)
    lo = np.searchsorted(sorted_lab, rings, side="left")
    hi = np.searchsorted(sorted_lab, rings, side="right")
    for r, a, b in zip(rings, lo, hi):
        med[r] = np.median(flat[order[a:b]])
    return med


def _first_good_frame(series: ImageSeries) -> np.ndarray:
    for i in range(min(series.shape[0], 8)):
        f = read_frame(series, i)
        if np.all(np.isfinite(f)):
            return f
    raise InputError(f"{series.title}: none of the first frames can be read; check the file")


def _estimate_direction(series: ImageSeries, ctx: _Context, grid: _reg.FourierGrid) -> float:
    """Front direction from a few frames: the mean fringe-power gradient, refined to the sharpest profile."""
    n = series.shape[0]
    st = _TaskState(ctx)
    maps, excludes = [], []
    sigma_px = ctx.options.front_window_nm / ctx.pixel_size_nm
    step = None
    for i in sorted({0, n // 4, n // 2, (3 * n) // 4, n - 1}):
        f = read_frame(series, i)
        if not np.all(np.isfinite(f)):
            continue
        fs, electrolyte, feats, _ = _frame_features(f, st)
        power, step, exclude = _front_map(fs, st, feats, electrolyte)
        maps.append(power)
        excludes.append(exclude)
    if not maps:
        raise InputError(f"{series.title}: no readable frame to estimate the front direction from; give --front-direction-deg")
    first = _fronts.estimate_direction([np.where(e, np.nan, m) for m, e in zip(maps, excludes)], step,
                                       margin_px=3 * sigma_px)
    angles, weights = [], []
    for m, e in zip(maps, excludes):
        try:
            ang, err = _fronts.fit_direction(m, step, pixel_size_nm=ctx.pixel_size_nm, initial_deg=first,
                                             margin_px=3 * sigma_px, window_sigma_px=sigma_px, exclude=e)
        except ConvergenceError:
            continue
        if np.isfinite(err) and err > 0:
            angles.append(ang)
            weights.append(1.0 / err**2)
    if not angles:
        return first
    # weighted circular mean
    a = np.deg2rad(angles)
    w = np.asarray(weights)
    return float(np.rad2deg(np.arctan2((w * np.sin(a)).sum(), (w * np.cos(a)).sum())) % 360.0)


def analyse_series(
    series: Any,
    *,
    options: InsituOptions = InsituOptions(),
    scheduler: Any = None,
    pixel_size_nm: float | None = None,
    fps: float | None = None,
    progress: bool = False,
) -> InsituResult:
    """Run the in situ analysis on a series.

    Parameters
    ----------
    series : ImageSeries, path or array
        Anything :func:`~layerscope.insitu.series.open_series` accepts.
    options : InsituOptions
    scheduler : None, "threads", "sync", address or distributed.Client
        Where the chunks run (see :func:`layerscope.parallel.scheduler_context`).
    pixel_size_nm, fps : float, optional
        Calibration for sources without it.
    progress : bool
        Show a progress bar (local schedulers).

    Returns
    -------
    InsituResult

    Raises
    ------
    InputError
        Fewer than 2 frames, no readable frame, options that do not fit the data.
    CalibrationError
        No time stamps (give ``fps``) or no pixel size.
    """
    import dask

    from layerscope import parallel

    series = open_series(series, pixel_size_nm=pixel_size_nm, fps=fps, chunk_frames=options.chunk_frames)
    times = series.require_times()
    o = options
    ctx = _prepare(series, o)
    data = series.data
    blocks = data.to_delayed().ravel()
    starts = np.r_[0, np.cumsum(data.chunks[0])[:-1]].astype(int)
    ref = None
    if o.drift and ctx.reference in ("first", "hybrid"):
        ref = dask.delayed(_first_good_frame_array)(data[: min(8, data.shape[0])])
    tasks = []
    for b, blk in enumerate(blocks):
        prev = blocks[b - 1] if (b > 0 and ctx.n_prev > 0) else None
        tasks.append(dask.delayed(_analyse_block, pure=True)(blk, prev, ref, start=int(starts[b]), ctx=ctx))
    parts = parallel.compute(*tasks, scheduler=scheduler, progress=progress, count="_analyse_block",
                             description=f"in situ: {series.shape[0]} frames in {len(tasks)} chunks")
    records = [r for part in parts for r in part]
    return _assemble(series, records, ctx, times)


def _first_good_frame_array(head: np.ndarray) -> np.ndarray:
    for f in head:
        if np.all(np.isfinite(f)):
            return np.asarray(f, np.float32)
    raise InputError("none of the first frames can be read; check the file")


def _assemble(series: ImageSeries, records: list[FrameRecord], ctx: _Context, times: np.ndarray) -> InsituResult:
    o = ctx.options
    p = ctx.pixel_size_nm
    bad = [r.frame for r in records if not r.ok]
    bad_rows = [{"frame": i, "time_s": float(times[i]), "reason": _why_bad(series, i)} for i in bad]
    stopped_at = None
    if bad and o.on_bad_frame == "stop":
        stopped_at = bad[0]
        records = [r for r in records if r.frame < stopped_at]
        bad_rows = bad_rows[:1]
    n_used = len(records)
    # ---- drift
    pairs = pd.DataFrame([pr for r in records for pr in r.pairs], columns=["i", "j", "dy", "dx", "quality", "kind"])
    good_frames = [r.frame for r in records if r.ok]
    if not good_frames:
        raise InputError(f"{series.title}: no frame could be read")
    anchor = good_frames[0]
    drift, pairs, n_aliases = _series_drift(series, pairs, good_frames, n_used, ctx)
    quality = pairs.groupby("i")["quality"].max() if len(pairs) else pd.Series(dtype=float)
    frames = pd.DataFrame({"frame": np.arange(n_used), "time_s": times[:n_used]})
    status = np.array(["ok"] * n_used, dtype=object)
    for row in bad_rows:
        if row["frame"] < n_used:
            status[row["frame"]] = "unreadable: " + row["reason"]
    frames["status"] = status
    frames["drift_x_px"] = drift["drift_x_px"].to_numpy()
    frames["drift_y_px"] = drift["drift_y_px"].to_numpy()
    frames["drift_x_nm"] = frames["drift_x_px"] * p
    frames["drift_y_nm"] = frames["drift_y_px"] * p
    frames["registration_quality"] = frames["frame"].map(quality).astype(float)
    frames.loc[frames["frame"] == anchor, "registration_quality"] = 1.0
    frames["drift_residual_px"] = drift["residual_px"].to_numpy()
    for i in frames.index[frames["status"].eq("ok") & frames["drift_x_px"].isna()]:
        frames.loc[i, "status"] = "not registered: no usable link to the reference frame"
    dxp = dict(zip(frames["frame"], frames["drift_x_px"]))
    dyp = dict(zip(frames["frame"], frames["drift_y_px"]))
    usable = [r for r in records if r.ok and np.isfinite(dxp.get(r.frame, np.nan))]
    # ---- voids and cracks
    void_rows, crack_rows, tracked, outlines = _feature_rows(usable, ctx, times, dxp, dyp)
    voids = tracks = events = pd.DataFrame()
    if o.voids:
        frames, voids, tracks, events = _void_tables(frames, void_rows, tracked, usable, times, o)
    crack_table = pd.DataFrame(crack_rows, columns=["frame", "time_s", "x_nm", "y_nm", "length_nm", "width_nm",
                                                    "width_outline_nm", "width_p10_nm", "width_p90_nm", "orientation_deg",
                                                    "depth", "truncated", "interface_distance_nm"])
    if o.cracks:
        cnt = crack_table.groupby("frame").size() if len(crack_table) else pd.Series(dtype=int)
        frames["n_cracks"] = [int(cnt.get(i, 0)) for i in frames["frame"]]
    # ---- fronts
    fronts = pd.DataFrame()
    profiles = {}
    if o.fronts and ctx.layer_peak is not None:
        fronts, profiles = _fit_fronts(usable, ctx, dxp, dyp, times)
        frames = frames.merge(fronts[["frame", "position_nm", "position_err_nm", "width_nm", "front_ok"]], on="frame",
                              how="left")
    summary = _summary(series, frames, voids, tracks, events, crack_table, fronts, ctx, bad_rows, stopped_at)
    if o.drift:
        summary["drift"]["links_rejected_as_lattice_aliases"] = n_aliases
    summary["flags"] = _flags(frames, ctx)
    return InsituResult(frames=frames, voids=voids, tracks=tracks, events=events, cracks=crack_table, fronts=fronts,
                        bad_frames=pd.DataFrame(bad_rows, columns=["frame", "time_s", "reason"]), summary=summary,
                        options=o, pixel_size_nm=p, shape=ctx.shape, stopped_at=stopped_at, profiles=profiles,
                        outlines=outlines)


def _why_bad(series: ImageSeries, i: int) -> str:
    """Why a task could not read frame ``i``; a frame this process reads fine failed on a cluster worker."""
    reason = diagnose_frame(series, i)
    if reason != "ok":
        return reason
    return (f"frame {i} could not be read where the task ran, but reads here: do the Dask workers see "
            f"'{series.source}' at the same path?")


def _series_drift(series: ImageSeries, pairs: pd.DataFrame, good_frames: list[int], n_used: int,
                  ctx: _Context) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Drift of every frame from the measured pairs: the chain of short links, then the longer
    links that agree with it; also the kept pairs and the number of links dropped as lattice aliases."""
    o = ctx.options
    anchor = good_frames[0]
    n_aliases = 0
    if o.drift:
        if ctx.reference in ("first", "hybrid") and anchor != 0:
            raise InputError(f"{series.title}: the first frame cannot be read; give --reference previous or --reference rolling")
        chain = _repair_links(series, pairs[pairs["kind"] == "chain"], good_frames, ctx)
        drift = _reg.solve_drift(chain, n_used, anchor=anchor)
        checks = pairs[pairs["kind"] == "check"]
        if len(checks):
            # a longer link (rolling window, first frame) that disagrees with the chain of small
            # steps by more than alias_px landed on a lattice-translated peak: drop it
            dy_c, dx_c = drift["drift_y_px"].to_numpy(), drift["drift_x_px"].to_numpy()
            ii, jj = checks["i"].to_numpy(int), checks["j"].to_numpy(int)
            miss = np.hypot(checks["dy"].to_numpy() - (dy_c[ii] - dy_c[jj]), checks["dx"].to_numpy() - (dx_c[ii] - dx_c[jj]))
            agree = miss <= o.alias_px
            n_aliases = int((~agree).sum())
            pairs = pd.concat([chain, checks[agree]], ignore_index=True)
            drift = _reg.solve_drift(pairs, n_used, anchor=anchor)
        else:
            pairs = chain
    else:
        drift = pd.DataFrame({"frame": np.arange(n_used), "drift_y_px": 0.0, "drift_x_px": 0.0, "residual_px": np.nan})
    return drift, pairs, n_aliases


def _feature_rows(usable: list[FrameRecord], ctx: _Context, times: np.ndarray, dxp: dict, dyp: dict):
    """Void and crack rows in specimen coordinates, features to track and outlines to draw."""
    o = ctx.options
    p = ctx.pixel_size_nm
    void_rows, crack_rows, tracked, outlines = [], [], {}, {}
    seg_step = seg_bin = None
    if o.voids or o.cracks:
        seg = _voids.SegmentationGrid(ctx.shape, p, o.void_params)
        seg_step, seg_bin = seg.step_nm, seg.bin
    line = None
    if o.interface is not None and o.interface != "detect":
        line = tuple(float(v) for v in o.interface)
    thick = o.thickness_field_nm()
    for r in usable:
        i = r.frame
        ddx, ddy = dxp[i] * p, dyp[i] * p
        tf = []
        outl = outlines.setdefault(i, [])
        for k, f in enumerate(r.features):
            x_s, y_s = f.x_nm - ddx, f.y_nm - ddy
            dist = f.interface_distance_nm
            if line is not None:
                dist = _distance_to_line(line, x_s, y_s) - f.equivalent_diameter_nm / 2.0
            row = {"frame": i, "time_s": float(times[i]), "x_nm": x_s, "y_nm": y_s, "area_nm2": f.area_nm2,
                   "area_outline_nm2": f.area_outline_nm2, "equivalent_diameter_nm": f.equivalent_diameter_nm,
                   "depth": f.depth, "mean_contrast": f.mean_contrast, "major_nm": f.major_nm, "minor_nm": f.minor_nm,
                   "orientation_deg": f.orientation_deg, "truncated": f.truncated, "interface_distance_nm": dist}
            kind = "crack" if "crack" in f.extra else (
                "surface" if np.isfinite(dist) and dist <= o.surface_distance_nm else "void")
            outl.append((f.row0, f.col0, f.mask, kind, seg_bin))
            if "crack" in f.extra:
                crack_rows.append({**{k2: row[k2] for k2 in ("frame", "time_s", "x_nm", "y_nm", "depth", "orientation_deg",
                                                           "truncated", "interface_distance_nm")}, **f.extra["crack"]})
                continue
            if not o.voids:
                continue
            if thick is not None:
                t_here = _thickness_at(thick, x_s, y_s, p)
                # flat-bottomed void: the relative darkness of its floor is the missing fraction
                row["missing_thickness_nm"] = f.depth * t_here
                row["volume_nm3"] = f.depth * t_here * f.area_nm2
            row["index"] = k
            void_rows.append(row)
            tf.append(_tracking.TrackedFeature(
                frame=i, index=k, row0=int(f.row0 - round(dyp[i] / seg_bin)), col0=int(f.col0 - round(dxp[i] / seg_bin)),
                mask=f.mask, area_nm2=f.area_nm2, x_nm=x_s, y_nm=y_s, truncated=f.truncated))
        tracked[i] = tf
    return void_rows, crack_rows, tracked, outlines


def _void_tables(frames: pd.DataFrame, void_rows: list[dict], tracked: dict, usable: list[FrameRecord],
                times: np.ndarray, o: InsituOptions):
    """Voids tracked over time, their events, and the per-frame void columns of ``frames``."""
    voids = pd.DataFrame(void_rows)
    cols = ["frame", "time_s", "x_nm", "y_nm", "area_nm2", "area_outline_nm2", "equivalent_diameter_nm", "depth",
            "mean_contrast", "major_nm", "minor_nm", "orientation_deg", "truncated", "interface_distance_nm", "index"]
    if voids.empty:
        voids = pd.DataFrame(columns=cols)
    assign, events = _tracking.track_features(tracked, times, contact_frames=o.contact_frames)
    voids = voids.merge(assign, on=["frame", "index"], how="left").drop(columns=["index"])
    voids["kind"] = np.where(voids["interface_distance_nm"] <= o.surface_distance_nm, "surface", "bulk")
    voids.loc[voids["interface_distance_nm"].isna(), "kind"] = "bulk"
    tracks = _tracking.track_summary(voids) if len(voids) else _tracking.track_summary(
        pd.DataFrame(columns=["track_id", "frame", "time_s", "x_nm", "y_nm", "area_nm2"]))
    stats = {r.frame: r.stats for r in usable}
    frames["analysed_area_nm2"] = frames["frame"].map(lambda i: stats.get(i, {}).get("analysed_area_nm2", np.nan))
    frames["void_noise"] = frames["frame"].map(lambda i: stats.get(i, {}).get("noise", np.nan))
    frames["void_threshold"] = frames["frame"].map(lambda i: stats.get(i, {}).get("threshold", np.nan))
    frames["electrolyte_fraction"] = frames["frame"].map(lambda i: stats.get(i, {}).get("electrolyte_fraction", np.nan))
    g = voids.groupby("frame") if len(voids) else None
    ok_frames = set(stats)
    frames["n_voids"] = [int(len(g.get_group(i))) if g is not None and i in g.groups else (0 if i in ok_frames else np.nan)
                         for i in frames["frame"]]
    area = voids.groupby("frame")["area_nm2"].sum() if len(voids) else pd.Series(dtype=float)
    frames["void_area_nm2"] = [float(area.get(i, 0.0)) if i in ok_frames else np.nan for i in frames["frame"]]
    frames["void_fraction"] = frames["void_area_nm2"] / frames["analysed_area_nm2"]
    frames["n_surface_pores"] = [int((voids[voids["frame"] == i]["kind"] == "surface").sum()) if i in ok_frames else np.nan
                                 for i in frames["frame"]]
    med = voids.groupby("frame")["equivalent_diameter_nm"].median() if len(voids) else pd.Series(dtype=float)
    frames["median_void_diameter_nm"] = frames["frame"].map(med).astype(float)
    return frames, voids, tracks, events


#: the largest drift residual (px) before the drift is flagged as inconsistent
RESIDUAL_FLAG_PX = 0.5


def _flags(frames: pd.DataFrame, ctx: _Context) -> list[dict]:
    """Numbers that were computed but deserve a second look: ``{"code", "message"}`` each."""
    o = ctx.options
    flags = []
    if (o.voids or o.cracks) and not ctx.lattice:
        flags.append({"code": "no_lattice", "message": (
            "no lattice fringes in the first frame: the void/crack segmentation is made for lattice images of a "
            "cathode; here the dark features may be particles, contamination or thickness changes; check "
            "the annotated movie, or use --no-voids --no-cracks")})
    if o.drift and "drift_residual_px" in frames and frames["drift_residual_px"].notna().any():
        worst = float(np.nanmax(frames["drift_residual_px"]))
        if worst > RESIDUAL_FLAG_PX:
            flags.append({"code": "drift_inconsistent", "message": (
                f"the frame-pair shifts disagree with the fitted drift by up to {worst:.2g} px; check drift.png "
                f"(try --reference first, --roi-nm on a static region, or --reference hybrid on lattice images)")})
    lost = frames["status"].str.startswith("not registered")
    if lost.any():
        flags.append({"code": "unregistered_frames", "message": (
            f"{int(lost.sum())} frame(s) could not be linked to the reference and were left out")})
    return flags


def _repair_links(series: ImageSeries, pairs: pd.DataFrame, good: list[int], ctx: _Context) -> pd.DataFrame:
    """Bridge gaps left by unreadable frames: correlate each stranded frame with the last good one."""
    from scipy import sparse
    from scipy.sparse import csgraph

    n = max(good) + 1
    while True:
        if len(pairs):
            adj = sparse.coo_matrix((np.ones(len(pairs)), (pairs["i"].astype(int), pairs["j"].astype(int))), shape=(n, n))
        else:
            adj = sparse.coo_matrix((n, n))
        _, comp = csgraph.connected_components(adj, directed=False)
        anchor_comp = comp[good[0]]
        stranded = [i for i in good if comp[i] != anchor_comp]
        if not stranded:
            return pairs
        i = stranded[0]
        j = max(g for g in good if g < i and comp[g] == anchor_comp)
        st = _TaskState(ctx)
        fi = read_frame(series, i)
        fj = read_frame(series, j)
        si = st.reg_spectrum(fi)
        sj = st.reg_spectrum(fj)
        e = st.shift(si, sj)
        pairs = pd.concat([pairs, pd.DataFrame([{"i": i, "j": j, "dy": e.dy, "dx": e.dx, "quality": e.quality,
                                                  "kind": "chain"}])], ignore_index=True)


def _distance_to_line(line: tuple[float, float, float, float], x: float, y: float) -> float:
    x0, y0, x1, y1 = line
    dx, dy = x1 - x0, y1 - y0
    norm = np.hypot(dx, dy)
    return float(abs(dy * (x - x0) - dx * (y - y0)) / norm)


def _thickness_at(thick: Any, x: float, y: float, p: float) -> float:
    if np.isscalar(thick):
        return float(thick)
    t = np.asarray(thick, float)
    r = int(np.clip(np.floor(y / p), 0, t.shape[0] - 1))
    c = int(np.clip(np.floor(x / p), 0, t.shape[1] - 1))
    return float(t[r, c])


def _fit_fronts(usable: list[FrameRecord], ctx: _Context, dxp: dict, dyp: dict, times: np.ndarray):
    p = ctx.pixel_size_nm
    a = np.deg2rad(ctx.front_direction_deg)
    fits = {}
    profiles = {}
    for r in usable:
        prof = r.front
        if prof is None or len(prof.d_nm) < 6:
            continue
        profiles[r.frame] = prof
        try:
            fits[r.frame] = _fronts.fit_front(prof)
        except ConvergenceError:
            continue
    # plateaus shared by the series: medians over frames whose fit saw both sides
    good = [f for f in fits.values() if f.ok]
    levels = None
    if good:
        levels = (float(np.median([f.level_layered for f in good])), float(np.median([f.level_rocksalt for f in good])))
    rows = []
    for i, prof in profiles.items():
        fit = fits.get(i)
        if levels is not None:
            try:
                fit = _fronts.fit_front(prof, levels=levels)
            except ConvergenceError:
                fit = None
        shift = dxp[i] * p * np.cos(a) + dyp[i] * p * np.sin(a)
        if fit is None:
            rows.append({"frame": i, "time_s": float(times[i]), "position_nm": np.nan, "position_err_nm": np.nan,
                         "width_nm": np.nan, "width_err_nm": np.nan, "sigma_nm": np.nan, "front_ok": False})
            continue
        rows.append({"frame": i, "time_s": float(times[i]), "position_nm": fit.position_nm - shift,
                     "position_err_nm": fit.position_err_nm, "width_nm": fit.width_nm, "width_err_nm": fit.width_err_nm,
                     "sigma_nm": fit.sigma_nm, "front_ok": fit.ok})
    cols = ["frame", "time_s", "position_nm", "position_err_nm", "width_nm", "width_err_nm", "sigma_nm", "front_ok"]
    return pd.DataFrame(rows, columns=cols), profiles


def _summary(series, frames, voids, tracks, events, cracks, fronts, ctx: _Context, bad_rows, stopped_at) -> dict:
    o = ctx.options
    s: dict[str, Any] = {
        "source": str(series.source) if series.source else series.title,
        "n_frames": int(series.shape[0]),
        "n_frames_analysed": int((frames["status"] == "ok").sum()),
        "frame_shape": list(ctx.shape),
        "pixel_size_nm": ctx.pixel_size_nm,
        "duration_s": float(frames["time_s"].iloc[-1] - frames["time_s"].iloc[0]) if len(frames) > 1 else 0.0,
        "bad_frames": [int(b["frame"]) for b in bad_rows],
        "on_bad_frame": o.on_bad_frame,
        "stopped_at_frame": stopped_at,
        "status": "complete" if stopped_at is None else f"stopped at frame {stopped_at}",
    }
    if o.drift:
        s["drift"] = {
            "reference": ctx.reference,
            "max_drift_nm": float(np.nanmax(np.hypot(frames["drift_x_nm"], frames["drift_y_nm"]))),
            "final_drift_x_nm": float(frames["drift_x_nm"].iloc[-1]),
            "final_drift_y_nm": float(frames["drift_y_nm"].iloc[-1]),
            "min_quality": float(np.nanmin(frames["registration_quality"])),
            "coarse_search_px": ctx.coarse_px,
        }
    if o.voids and "void_fraction" in frames:
        vf = frames["void_fraction"]
        s["voids"] = {
            "initial_fraction": float(vf.dropna().iloc[0]) if vf.notna().any() else None,
            "final_fraction": float(vf.dropna().iloc[-1]) if vf.notna().any() else None,
            "max_count": int(np.nanmax(frames["n_voids"])) if frames["n_voids"].notna().any() else 0,
            "n_tracks": int(len(tracks)),
            "events": {str(k): int(v) for k, v in events["event"].value_counts().items()} if len(events) else {},
            "final_surface_pores": int(frames["n_surface_pores"].dropna().iloc[-1]) if frames["n_surface_pores"].notna().any() else 0,
            "surface_distance_nm": o.surface_distance_nm,
        }
        if len(vf.dropna()) >= 2:
            t = frames.loc[vf.notna(), "time_s"].to_numpy()
            from scipy import stats as _st

            lr = _st.linregress(t, vf.dropna().to_numpy())
            s["voids"]["fraction_rate_per_s"] = float(lr.slope)
            s["voids"]["fraction_rate_err_per_s"] = float(lr.stderr)
    if o.cracks:
        s["cracks"] = {"n_in_last_frame": int(frames["n_cracks"].iloc[-1]) if "n_cracks" in frames else 0}
        if len(cracks):
            last = cracks[cracks["frame"] == cracks["frame"].max()]
            s["cracks"].update({"median_width_nm": float(last["width_nm"].median()),
                                "total_length_nm": float(last["length_nm"].sum())})
    if o.fronts and ctx.layer_peak is not None:
        f = {"direction_deg": ctx.front_direction_deg, "layer_spacing_nm": ctx.layer_peak.spacing_nm,
             "layer_normal_deg": ctx.layer_peak.normal_deg,
             "angle_to_layer_normal_deg": _fronts.angle_to_layers_deg(ctx.front_direction_deg, ctx.layer_peak.normal_deg),
             "window_sigma_nm": o.front_window_nm}
        if len(fronts):
            f.update(_fronts.summarise_fronts(fronts))
        s["front"] = f
    return s
