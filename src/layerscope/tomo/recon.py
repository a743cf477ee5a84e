"""Reconstruction of a parallel-beam projection series, slice by slice.

Flat/dark normalisation and -log, the rotation centre (Vo et al., Opt. Express 22, 19078 (2014),
through algotom's ``find_center_vo``, on the ring-corrected sinogram), ring-artefact removal (dead
detector columns interpolated, then by default algotom's sorting-based removal of every column, Vo et
al., Opt. Express 26, 28396 (2018); or only the columns found to hold a stripe,
:mod:`layerscope.tomo.rings`), then FBP, SIRT or CGLS through the ASTRA Toolbox (CUDA when a GPU
is present, CPU otherwise). Chunks of detector rows are independent tasks of
:func:`layerscope.parallel.map_tasks`: on a Dask cluster a worker holds only its chunk, and the
numbers equal the in-process run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from layerscope.errors import InputError
from layerscope.tomo.readers import Projections
from layerscope.tomo.sinogram import (LIMITED_SPAN_DEG, centre_range_px, centres_of_mass_px, fbp_pad_px,
                                      find_centre_moments_px, find_centre_px, padded)
from layerscope.tomo.stages import enter as _stage

__all__ = ["ReconOptions", "Reconstruction", "transmission", "find_centre_px", "reconstruct", "gpu_available",
           "reconstruct_slice", "remove_rings", "mass_fade_px", "mass_reference"]

ALGORITHMS = ("fbp", "sirt", "cgls")
RING_METHODS = ("detect", "sorting")
EXTENSIONS = ("mass", "half_width")
ALIGN_METHODS = ("none", "xcorr", "auto")
#: ASTRA's FBP filters offered (``FilterType``; those that need no ``FilterParameter``): the plain ramp (Ram-Lak)
#: and ramps tapered towards the Nyquist frequency, which trade in-plane resolution for noise
FBP_FILTERS = ("ram-lak", "shepp-logan", "cosine", "hamming", "hann")
#: shifts that fail the acceptance test (:func:`_estimated`) are still undone where the aligned series' check is
#: below this fraction of the check as given (they removed most of the jumps), else the series is reconstructed as
#: given; 0 (default): always as given, ``inf``: always aligned. With 0.5 a wrong lock 16 px off (draw 11, 8 px white;
#: aligned check 0.24 against 2.90 as given) would be kept (docs/validation.md "tomoaccept")
KEEP_FAILED_FRACTION = 0.0


@dataclass(frozen=True)
class ReconOptions:
    """How to reconstruct.

    Attributes
    ----------
    algorithm : str
        ``"fbp"`` (filtered back-projection, filter :attr:`fbp_filter`), ``"sirt"`` or ``"cgls"``.
    fbp_filter : str
        FBP only: ASTRA's ``FilterType``, one of :data:`FBP_FILTERS`. ``"ram-lak"`` (default): the plain ramp;
        ``"shepp-logan"``, ``"cosine"``, ``"hamming"``, ``"hann"``: the ramp tapered towards the Nyquist frequency
        (less noise in each slice, more in-plane blur; docs/validation.md "tomorecon"). The alignment's own
        reprojections stay Ram-Lak.
    iterations : int
        Iterations of SIRT/CGLS.
    centre_px : float or None
        Rotation axis position on the detector (column index, 0-based); searched when None.
    rings : bool
        Remove ring artefacts (stripes in the sinogram).
    ring_method : str
        Both interpolate dead detector columns first. ``"sorting"`` (default): algotom's sorting-based
        removal on every column (also flattens thin features that stay at one column over many angles:
        cracks near the rotation axis); ``"detect"``: subtract the offsets of the columns found to hold
        a stripe, leaving every other column as measured (:mod:`layerscope.tomo.rings`; keeps those
        cracks, leaves faint stripes below its detection threshold; docs/validation.md "rings"). In
        :func:`reconstruct` the stripes are selected from each chunk's rows together, bands of up to 6 px
        included (:func:`layerscope.tomo.rings.remove_stripes_rows`; "tomorings"); a single sinogram
        (:func:`reconstruct_slice`, the centre search) is corrected alone.
    ring_size_px : int or None
        Median window of the sorting-based removal (px), larger than the widest stripe; None: 1/30 of
        the detector width (odd, 3-31 px; 21 px on a 640 px detector).
    extend_sinogram : bool or None
        FBP only: extend each sinogram beyond the detector edges, its edge columns fading to zero, against
        truncation artefacts (a bright rim where the sample or a particle in a volume corner leaves the
        detector). None (default): on for FBP, off for SIRT/CGLS; False: plain FBP; True with SIRT/CGLS is
        refused (docs/validation.md "tomoproj", "tomoproj2", "tomomass2", "tomorings"; :attr:`extends`).
    extension : str
        How far the edges fade (with ``extend_sinogram``). ``"mass"`` (default): per angle, over the
        length that restores the line-integral sum the angle misses against the angles that see the
        whole sample (:func:`mass_reference`: those with empty edges, else the two directions that see
        the most); nothing where the edges are empty (an object inside the field), where the deficit is
        within the sums' own scatter (gains, drift) or where every angle sees the same sum (a sample wider
        than the field at every angle). ``"half_width"``: over half the detector width
        at every angle (:func:`fbp_pad_px`; adds more than is missing where the object is seen whole
        at some angles, and sinks the slice towards its edge by up to 0.1 x contrast).
    align : str
        Per-angle shifts of the projections (stage drift, jitter; :mod:`layerscope.tomo.align`). Every series
        is checked first (angle-to-angle jumps of the projections' centres of mass; flag ``projections_shifted``
        above ``align.FLAG_PX`` = 0.15 px RMS). ``"auto"`` (default): ``"xcorr"`` where the check flags the series,
        otherwise exactly ``"none"`` (an unshifted series is reconstructed bit for bit as with ``"none"``;
        docs/validation.md "tomoaccept"). ``"none"``: reconstructed as given (a shifted series is still flagged).
        ``"xcorr"``: shifts estimated once from the whole series by projection matching (each projection
        cross-correlated with the reprojection of the aligned series' FBP) and undone in every row chunk before
        the centre search, ring removal and reconstruction ("tomoalign"). The aligned series must pass the same
        check (at most ``align.FLAG_PX``: the acceptance test), from the centre-of-mass first guess or else from
        the neighbour cross-correlation (``align.FIRST_GUESSES``); where neither passes it is flagged
        ``alignment_failed`` and reconstructed as given (:data:`KEEP_FAILED_FRACTION`). The check sees jumps, not
        smooth errors: a slow drift can pass it a pixel or two off ("tomowalk").
    chunk_slices : int
        Detector rows per task.
    device : str
        ``"auto"`` (CUDA when ASTRA sees a GPU), ``"cpu"`` or ``"gpu"``.
    """

    algorithm: str = "fbp"
    iterations: int = 50
    centre_px: float | None = None
    rings: bool = True
    ring_method: str = "sorting"
    ring_size_px: int | None = None
    extend_sinogram: bool | None = None
    extension: str = "mass"
    chunk_slices: int = 8
    device: str = "auto"
    align: str = "auto"
    fbp_filter: str = "ram-lak"

    def __post_init__(self) -> None:
        if self.fbp_filter not in FBP_FILTERS:
            raise InputError(f"--fbp-filter {self.fbp_filter!r}: choose {', '.join(FBP_FILTERS)}")
        if self.align not in ALIGN_METHODS:
            raise InputError(f"--align {self.align!r}: choose none, xcorr or auto")
        if self.algorithm not in ALGORITHMS:
            raise InputError(f"--algorithm {self.algorithm!r}: choose fbp, sirt or cgls")
        if self.ring_method not in RING_METHODS:
            raise InputError(f"--ring-method {self.ring_method!r}: choose detect or sorting")
        if self.extension not in EXTENSIONS:
            raise InputError(f"--extension {self.extension!r}: choose mass or half_width")
        if self.device not in ("auto", "cpu", "gpu"):
            raise InputError(f"--device {self.device!r}: choose auto, cpu or gpu")
        if self.extend_sinogram and self.algorithm != "fbp":
            raise InputError(f"--extend-sinogram applies to FBP only, not --algorithm {self.algorithm}: use "
                             f"--algorithm fbp or leave --extend-sinogram out")
        if self.iterations < 1 or self.chunk_slices < 1:
            raise InputError("--iterations and --chunk-slices must be at least 1")

    @property
    def extends(self) -> bool:
        """Whether the sinograms are extended: FBP and ``extend_sinogram`` not False (None: on)."""
        return self.algorithm == "fbp" and self.extend_sinogram is not False


@dataclass
class Reconstruction:
    """A reconstructed volume ``(z, y, x)`` (attenuation per voxel) and how it was made."""

    volume: np.ndarray
    voxel_size_nm: float
    centre_px: float
    centre_searched: bool
    device: str
    flags: list[dict[str, str]]
    rings: dict | None = None
    signal: str = "counts"
    angles_source: str | None = None
    extension: dict | None = None
    alignment: dict | None = None
    angles_deg: np.ndarray | None = None


def gpu_available() -> bool:
    """True when the installed ASTRA Toolbox can run CUDA algorithms here."""
    try:
        import astra

        return bool(astra.use_cuda())
    except Exception:  # pragma: no cover - no astra or no driver
        return False


def _reference_fields(proj: Projections) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Mean dark field and dark-corrected mean flat field ``(rows, columns)``, float32; None, None for transmission
    and line integrals."""
    if proj.transmission or proj.line_integrals:
        return None, None
    dark = np.zeros(proj.data.shape[1:], np.float32) if proj.darks is None else proj.darks.mean(axis=0)
    flat = proj.flats.mean(axis=0) - dark
    if np.any(flat <= 0):
        raise InputError(f"'{proj.source}': flat fields are not brighter than the dark fields in "
                         f"{int(np.sum(flat <= 0))} px; give the right --flats/--darks")
    return dark, flat


def _line_integrals(raw: np.ndarray, dark: np.ndarray | None, flat: np.ndarray | None, *,
                    log: bool = True) -> tuple[np.ndarray, int, int]:
    """``-log`` of the corrected transmission of ``raw`` (n_angles, rows, columns) with the fields of its rows,
    and the counts of values <= 0 (clipped) and > 1.2; ``raw`` itself when ``log`` is False (line integrals)."""
    if not log:
        return np.asarray(raw, np.float32), 0, 0
    t = np.asarray(raw, np.float32) if dark is None else (raw - dark) / flat
    bad, over = int(np.count_nonzero(t <= 0)), int(np.count_nonzero(t > 1.2))
    return -np.log(np.clip(t, 1e-6, None)).astype(np.float32), bad, over


def _transmission_flags(bad: int, over: int, size: int) -> list[dict[str, str]]:
    flags = []
    if bad / size > 1e-3:
        flags.append({"code": "nonpositive_transmission",
                      "message": f"{100 * bad / size:.2g} % of the corrected projection values are <= 0 (clipped)"})
    if over / size > 0.01:
        flags.append({"code": "transmission_above_1",
                      "message": f"{100 * over / size:.2g} % of the transmission exceeds 1.2: flats or darks do not match"})
    return flags


def transmission(proj: Projections) -> tuple[np.ndarray, list[dict[str, str]]]:
    """Line integrals ``-log((I - D) / (F - D))`` (n_angles, rows, columns), float32, and flags.

    Non-positive corrected values (dead pixels, detector saturation) are clipped to 1e-6 and flagged.
    """
    dark, flat = _reference_fields(proj)
    lines, bad, over = _line_integrals(proj.data[()] if not isinstance(proj.data, np.ndarray) else proj.data,
                                       dark, flat, log=not proj.line_integrals)
    return lines, _transmission_flags(bad, over, lines.size)


def _rows(proj: Projections, start: int, stop: int, dark, flat,
          shifts: dict | None = None) -> tuple[np.ndarray, int, int]:
    """Line integrals of detector rows ``start:stop`` only (the projections may be on disk); with ``shifts``
    (``{"dy", "dx"}``, px) aligned (:func:`_chunk_item`, :func:`_aligned`)."""
    item = _chunk_item(proj, start, stop - start, dark, flat, shifts)
    return _aligned(item[1:], shifts, log=not proj.line_integrals)


#: rows read beyond a chunk on each side, besides the largest shift along the axis, when the projections are
#: shifted (the cubic spline's prefilter reaches 0.27^12 < 1e-6 of a value this far: chunks equal the whole)
ALIGN_MARGIN_ROWS = 12


def _chunk_item(proj: Projections, start: int, count: int, dark, flat, shifts: dict | None) -> tuple:
    """``(start, raw rows, dark rows, flat rows, rows read before start, count)`` of the chunk of ``count``
    rows at ``start``: with ``shifts``, the rows within the largest shift along the axis plus
    :data:`ALIGN_MARGIN_ROWS` on each side are read too."""
    n_rows = proj.data.shape[1]
    stop = min(n_rows, start + count)
    m = 0 if shifts is None else int(np.ceil(np.abs(shifts["dy"]).max(initial=0.0))) + ALIGN_MARGIN_ROWS
    lo, hi = max(0, start - m), min(n_rows, stop + m)
    return (start, np.asarray(proj.data[:, lo:hi], np.float32), *_field_rows(dark, flat, lo, hi), start - lo,
            stop - start)


def _aligned(item: tuple, shifts: dict | None, *, log: bool) -> tuple[np.ndarray, int, int]:
    """Line integrals of a chunk item (less its start, :func:`_chunk_item`), shifted back by ``shifts`` and cut
    to its rows, and the counts of values <= 0 and > 1.2 in them."""
    raw, dark, flat, before, count = item
    if shifts is None:
        return _line_integrals(raw, dark, flat, log=log)
    from layerscope.tomo.align import shift_block

    core = slice(before, before + count)
    bad, over = _line_integrals(raw[:, core], *_field_rows(dark, flat, before, before + count), log=log)[1:]
    block = shift_block(_line_integrals(raw, dark, flat, log=log)[0], shifts["dy"], shifts["dx"])
    return np.ascontiguousarray(block[:, core]), bad, over


def _central_sinogram(proj: Projections, dark, flat, chunk: int, shifts: dict | None = None) -> np.ndarray:
    """Mean sinogram of the central half of the detector rows, read ``chunk`` rows at a time."""
    n_rows = proj.data.shape[1]
    a, b = n_rows // 4, max(n_rows // 4 + 1, 3 * n_rows // 4)
    total = np.zeros((proj.data.shape[0], proj.data.shape[2]), np.float64)
    for s in range(a, b, chunk):
        total += _rows(proj, s, min(b, s + chunk), dark, flat, shifts)[0].sum(axis=1, dtype=np.float64)
    return (total / (b - a)).astype(np.float32)


def _searched_centre(proj: Projections, dark, flat, shifts: dict | None, options: ReconOptions) -> float:
    """The rotation-axis column (px): Vo's method on the central rows' mean sinogram (stripes removed first: a dead
    column pulls the search off); on a limited tilt range (span below ``sinogram.LIMITED_SPAN_DEG``, where Vo's
    method needs 0-180 deg) the centres of mass of every row's projections (:func:`_row_centres_of_mass`,
    :func:`layerscope.tomo.sinogram.find_centre_moments_px`)."""
    k = options.chunk_slices
    if float(np.ptp(proj.angles_deg)) < LIMITED_SPAN_DEG:
        return find_centre_moments_px(_row_centres_of_mass(proj, dark, flat, k, shifts), proj.angles_deg)
    # the mean sinogram of the central rows shares their rotation axis and has less noise
    return find_centre_px(remove_rings(_central_sinogram(proj, dark, flat, k, shifts), options)[0], proj.angles_deg)


def _row_centres_of_mass(proj: Projections, dark, flat, chunk: int, shifts: dict | None = None) -> np.ndarray:
    """Centre of mass (column, px) of every detector row's projection at every angle (n_angles, rows), read
    ``chunk`` rows at a time (:func:`layerscope.tomo.sinogram.centres_of_mass_px`)."""
    n_rows = proj.data.shape[1]
    parts = [centres_of_mass_px(_rows(proj, s, min(n_rows, s + chunk), dark, flat, shifts)[0])[0]
             for s in range(0, n_rows, chunk)]
    return np.concatenate(parts, axis=1)


def _centre_flags(centre_px: float, n_cols: int, searched: bool) -> list[dict[str, str]]:
    """Flag a searched centre within a pixel of the search range's ends: the true axis may lie beyond
    it (an offset-axis or half-acquisition scan), and a centre off by pixels smears every edge into arcs."""
    lo, hi = centre_range_px(n_cols)
    if not searched or min(centre_px - lo, hi - centre_px) > 1.0:
        return []
    return [{"code": "centre_at_search_edge", "message": (
        f"the rotation-centre search ended at {centre_px:.2f} px, at the end of its range ({lo:.1f}-{hi:.1f} px): "
        f"the axis may lie outside it (an offset-axis scan); check the slices for arcs and give --centre-px")}]


def _astra_reconstruct(sino: np.ndarray, angles_rad: np.ndarray, algorithm: str, iterations: int,
                       gpu: bool, extend: str | None = None, n_vol: int | None = None,
                       fbp_filter: str = "ram-lak") -> np.ndarray:
    """One slice (n_angles, columns) -> (n_vol, n_vol) through ASTRA (``n_vol`` default: the columns);
    ``extend`` (FBP only): None, or how far the edges fade (see :class:`ReconOptions`); ``fbp_filter``: ASTRA's
    ``FilterType`` of FBP."""
    import astra

    n = n_vol or sino.shape[1]
    if extend and algorithm == "fbp":  # a detector wider than the volume: no step at its edges for the ramp filter
        sino = _extended(sino, extend, np.rad2deg(angles_rad))[0]
    vol_geom = astra.create_vol_geom(n, n)
    proj_geom = astra.create_proj_geom("parallel", 1.0, sino.shape[1], angles_rad)
    sid = astra.data2d.create("-sino", proj_geom, sino.astype(np.float32))
    rid = astra.data2d.create("-vol", vol_geom, 0.0)
    pid = None
    name = {"fbp": "FBP", "sirt": "SIRT", "cgls": "CGLS"}[algorithm] + ("_CUDA" if gpu else "")
    cfg = astra.astra_dict(name)
    cfg["ReconstructionDataId"] = rid
    cfg["ProjectionDataId"] = sid
    if algorithm == "fbp":
        cfg["FilterType"] = fbp_filter
    if not gpu:
        pid = astra.create_projector("linear", proj_geom, vol_geom)
        cfg["ProjectorId"] = pid
    aid = astra.algorithm.create(cfg)
    try:
        astra.algorithm.run(aid, 1 if algorithm == "fbp" else int(iterations))
        return astra.data2d.get(rid).astype(np.float32)
    finally:
        astra.algorithm.delete(aid)
        astra.data2d.delete([sid, rid])
        if pid is not None:
            astra.projector.delete(pid)


#: an edge holds the sample where its mean (``edge_px`` columns) exceeds this many times its noise
EDGE_SNR = 5.0
#: a missing sum counts where it exceeds this many times the spread of the sums (1.4826 x MAD)
MASS_SNR = 3.0
#: ... and at least this fraction of the mean sum (pixelisation of a sample seen whole: 0.05 %)
MASS_FLOOR = 1e-3
#: with every angle's edges held, the reference sum is the largest seen this far (deg) from the largest
PEAK_SEPARATION_DEG = 45.0


#: an edge holds the sample only over a run of neighbouring angles at least this long (deg); see :func:`_edge_values`
EDGE_RUN_DEG = 10.0


def _edge_values(s: np.ndarray, edge_px: int, angles_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per angle: the two edges' means (``edge_px`` columns each, negatives as 0) summed, and whether either
    edge holds the sample: its mean above ``EDGE_SNR`` times its noise, the noise taken from the edge columns'
    angle-to-angle differences (1.4826 x MAD / sqrt 2, the mean of ``edge_px`` columns: / sqrt edge_px), over
    a run of angles at least ``EDGE_RUN_DEG`` long (:func:`_over_runs`)."""
    left, right = s[:, :edge_px].mean(axis=1), s[:, -edge_px:].mean(axis=1)
    d = np.diff(np.concatenate([s[:, :edge_px], s[:, -edge_px:]], axis=1), axis=0)
    noise = 1.4826 * np.median(np.abs(d)) / np.sqrt(2.0 * edge_px) if d.size else 0.0
    held = _over_runs(np.stack([left > EDGE_SNR * noise, right > EDGE_SNR * noise]), angles_deg)
    return np.clip(left, 0, None) + np.clip(right, 0, None), held[0] | held[1]


def _over_runs(held: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    """``held`` (2, n_angles: left and right edge) where it lasts over a run of neighbouring angles at least
    ``EDGE_RUN_DEG`` long, False elsewhere.

    A sample that leaves the field does so over a run of angles: the projected outline moves as a sinusoid, so
    a part at ``c`` px from the axis that sticks out for only ``a`` rad sticks out by at most ``c a^2 / 8`` px
    (10 deg: 0.2 px for c = 45 px, 1.2 px for c = 320 px), too little to miss mass. An edge above the noise at
    a few scattered angles is a drifting background (a flat field that changed during the scan), not the
    sample. Parallel beams see the left edge at ``theta + 180 deg`` as the right edge at ``theta``: the runs
    are taken on that circle, so a run that ends with the scan goes on at its other edge. A run breaks at an
    angle whose edge is empty or at a gap in the angles wider than twice their step.
    """
    a = np.asarray(angles_deg, float)
    phi = np.concatenate([a % 360.0, (a + 180.0) % 360.0])
    order = np.argsort(phi, kind="stable")
    p, h = phi[order], held.ravel()[order]
    gap = np.diff(np.r_[p, p[0] + 360.0])  # from each position to the next, around the circle
    step = float(np.median(gap[gap > 1e-9])) if (gap > 1e-9).any() else 360.0
    ends = ~h | (gap > 2.0 * step)  # a run stops after these
    if not ends.any():
        return held.copy()
    shift = int(np.flatnonzero(ends)[-1]) + 1  # start the circle just after a stop
    h_r, ends_r, p_r = np.roll(h, -shift), np.roll(ends, -shift), np.roll(p, -shift)
    ids, pos = np.r_[0, np.cumsum(ends_r)[:-1]][h_r], p_r[h_r]  # a run id per held position, ids ascending
    if ids.size == 0:
        return np.zeros_like(held)
    cut = np.flatnonzero(np.diff(ids)) + 1
    first, last = np.r_[0, cut], np.r_[cut - 1, ids.size - 1]
    span = (pos[last] - pos[first]) % 360.0 + step  # per run (deg)
    keep = np.zeros_like(h_r)
    keep[h_r] = np.repeat(span >= EDGE_RUN_DEG, last - first + 1)
    out = np.zeros(held.size, bool)
    out[order] = np.roll(keep, shift)
    return out.reshape(held.shape)


def _spread(x: np.ndarray) -> float:
    """Robust spread (1.4826 x median absolute deviation)."""
    return float(1.4826 * np.median(np.abs(x - np.median(x)))) if x.size else 0.0


def mass_reference(sino: np.ndarray, edge_px: int = 2, angles_deg: np.ndarray | None = None) -> dict:
    """The mass (line-integral sum) an angle of ``sino`` (n_angles, columns) would see with the whole sample in
    the field, each angle's missing sum, and how the reference was taken.

    Angles whose edges are empty (:func:`_edge_values`) see the whole sample and miss nothing: the reference is
    the median of their sums (3-angle median first), and a missing sum counts where it exceeds ``MASS_SNR``
    times their spread and ``MASS_FLOOR`` of the mean sum (so a gain or drift that moves some angles' sums
    without touching the edges adds nothing). Where fewer than 3 angles have empty edges (a sample that fills
    the field's edges, e.g. a square of epoxy whose corners leave the field between 0 and 90 deg), the
    reference is the largest 3-angle-median sum at least ``PEAK_SEPARATION_DEG`` from the largest one: the
    whole sample is then seen at two directions (the sides of a square) and a gain over one block of angles
    that lifts one of them is not taken for mass; the tolerance is then ``MASS_SNR`` times the sums'
    angle-to-angle noise. Where every angle's sum lies within that tolerance (a sample wider than the field
    at every angle), nothing is missing: ``reference`` "uniform" (``extension="half_width"`` for that geometry).

    ``angles_deg``: the projection angles (default: evenly spaced over 180 deg). Returns ``{"missing":
    per-angle sums missing (0 where not counted), "edges": per-angle edge sums, "reference": "empty_edges" |
    "two_directions" | "largest" (no angle that far) | "uniform", "mass": the reference sum}``.
    """
    from scipy import ndimage as ndi

    s = np.asarray(sino, np.float64)
    total = s.sum(axis=1)
    smooth = ndi.median_filter(total, size=3, mode="wrap")
    if angles_deg is None:
        angles_deg = np.arange(s.shape[0]) * 180.0 / s.shape[0]
    angles_deg = np.asarray(angles_deg, float)
    edges, held = _edge_values(s, edge_px, angles_deg)
    if (~held).sum() >= 3:
        kind, mass = "empty_edges", float(np.median(smooth[~held]))
        tol = MASS_SNR * _spread(total[~held])
    else:
        kind, mass = _two_directions(smooth, angles_deg)
        tol = MASS_SNR * _spread(np.diff(total)) / np.sqrt(2.0)
    tol = max(tol, MASS_FLOOR * abs(float(total.mean())))
    if kind != "empty_edges" and smooth.max() - smooth.min() <= tol:
        kind = "uniform"
    missing = mass - total
    count = held & (missing > tol) & (edges > 0) & (kind != "uniform")
    return {"missing": np.where(count, missing, 0.0), "edges": edges, "reference": kind, "mass": mass}


def _two_directions(smooth: np.ndarray, angles_deg: np.ndarray) -> tuple[str, float]:
    """The largest of ``smooth`` (per-angle sums) at least ``PEAK_SEPARATION_DEG`` (modulo 180 deg) from the
    angle of its largest value; the largest itself where no angle is that far."""
    dist = np.abs(angles_deg - angles_deg[int(np.argmax(smooth))]) % 180.0
    far = np.minimum(dist, 180.0 - dist) >= PEAK_SEPARATION_DEG
    return ("two_directions", float(smooth[far].max())) if far.any() else ("largest", float(smooth.max()))


def mass_fade_px(sino: np.ndarray, edge_px: int = 2, angles_deg: np.ndarray | None = None) -> np.ndarray:
    """Per angle, the length (px) over which both edges of ``sino`` (n_angles, columns) fade to zero (half a
    cosine) so that the fades add the line-integral sum the angle misses (:func:`mass_reference`).

    A cosine fade of length ``L`` from edge value ``v`` adds ``v (L - 1) / 2`` over whole pixels, so with the
    missing sum ``D`` shared between the edges in proportion to their values (the mean of ``edge_px`` columns
    each, negative values as 0) both get ``L = 2 D / (v_left + v_right) + 1``; 0 where nothing is missing.
    """
    return _fade_lengths(mass_reference(sino, edge_px, angles_deg))


def _fade_lengths(ref: dict) -> np.ndarray:
    """:func:`mass_fade_px` from a :func:`mass_reference` answer: ``2 D / (v_left + v_right) + 1`` px, 0 where
    nothing is missing."""
    d, edges = ref["missing"], ref["edges"]
    return np.where(d > 0, np.divide(2.0 * d, edges, out=np.zeros_like(d), where=edges > 0) + 1.0, 0.0)


def _extended(sino: np.ndarray, extension: str, angles_deg: np.ndarray) -> tuple[np.ndarray, dict]:
    """``sino`` extended as ``extension`` says, and what was done: ``{"reference", "angles_extended",
    "fade_px"}`` (the reference of :func:`mass_reference`, or "half_width")."""
    n = sino.shape[1]
    if extension == "half_width":
        p = fbp_pad_px(n)
        return padded(sino, p), {"reference": "half_width", "angles_extended": sino.shape[0], "fade_px": float(p)}
    ref = mass_reference(sino, 2, angles_deg)  # once per slice: the reference and the fades from one answer
    length = np.minimum(_fade_lengths(ref), n)
    info = {"reference": ref["reference"], "angles_extended": int((length > 0).sum()),
            "fade_px": float(length.max(initial=0.0))}
    return _mass_padded(sino, n, length), info


def _mass_padded(sino: np.ndarray, n_cols: int, length: np.ndarray | None = None) -> np.ndarray:
    """``sino`` extended on each side: per angle, its edge columns fading to zero (half a cosine) over
    ``length`` (default :func:`mass_fade_px`; at most ``n_cols``); by the longest fade (whole px), ``sino``
    itself when no angle misses anything (the FBP then equals the one without extension)."""
    length = np.minimum(mass_fade_px(sino) if length is None else length, n_cols)[:, None]
    p = int(np.ceil(length.max()))
    if p == 0:
        return sino
    x = np.arange(1, p + 1, dtype=np.float64)[None, :]
    fade = np.where(x < length, 0.5 * (1 + np.cos(np.pi * x / np.maximum(length, 1.0))), 0.0).astype(np.float32)
    return np.concatenate([sino[:, :1] * fade[:, ::-1], sino, sino[:, -1:] * fade], axis=1)


def remove_rings(sino: np.ndarray, options: ReconOptions) -> tuple[np.ndarray, dict]:
    """Ring removal of one sinogram (n_angles, columns) as ``options`` say, and what it found:
    ``{"stripe_columns": [...], "dead_columns": [...], "max_offset": float}``. Both methods first
    interpolate dead columns (:func:`layerscope.tomo.rings.interpolate_dead_columns`); ``"sorting"``
    then corrects every column (no stripe list), ``"detect"`` only the stripe columns it finds."""
    s = np.asarray(sino, np.float32)
    none = {"stripe_columns": [], "dead_columns": [], "max_offset": 0.0}
    if not options.rings:
        return s, none
    from layerscope.tomo.rings import interpolate_dead_columns, remove_stripes

    if options.ring_method == "sorting":
        from algotom.prep.removal import remove_stripe_based_sorting

        s, dead = interpolate_dead_columns(s)
        size = options.ring_size_px or sorting_window_px(s.shape[1])
        return remove_stripe_based_sorting(s, size=size).astype(np.float32), dict(none, dead_columns=dead.tolist())
    return remove_stripes(s)


def sorting_window_px(n_cols: int) -> int:
    """Default median window of the sorting-based ring removal: 1/30 of the detector width, odd, 3-31 px."""
    return int(np.clip(n_cols // 30, 3, 31)) // 2 * 2 + 1


def reconstruct_slice(sino: np.ndarray, angles_deg: np.ndarray, *, centre_px: float, options: ReconOptions,
                      gpu: bool = False) -> np.ndarray:
    """Reconstruct one sinogram (n_angles, columns) of line integrals: rings removed, centred, FBP/SIRT/CGLS."""
    return _slice(sino, angles_deg, centre_px=centre_px, options=options, gpu=gpu)[0]


def _slice(sino: np.ndarray, angles_deg: np.ndarray, *, centre_px: float, options: ReconOptions,
           gpu: bool, rings_found: dict | None = None) -> tuple[np.ndarray, dict]:
    """One slice; ``rings_found`` given: ``sino`` has had its rings removed already (this is what was found)."""
    from scipy import ndimage as ndi

    s, found = remove_rings(sino, options) if rings_found is None else (np.asarray(sino, np.float32), rings_found)
    shift = (s.shape[1] - 1) / 2.0 - centre_px
    if abs(shift) > 1e-3:
        s = ndi.shift(s, (0, shift), order=3, mode="nearest").astype(np.float32)
    n = s.shape[1]
    if options.extends:
        s, info = _extended(s, options.extension, np.asarray(angles_deg, float))
        found = dict(found, extension=info)
    return _astra_reconstruct(s, np.deg2rad(angles_deg), options.algorithm, options.iterations, gpu, n_vol=n,
                              fbp_filter=options.fbp_filter), found


def _chunk_task(item: tuple, *, angles_deg: np.ndarray, centre_px: float, options: ReconOptions,
                gpu: bool, log: bool = True, shifts: dict | None = None) -> tuple[int, np.ndarray, int, int, list]:
    """Normalise, align and reconstruct one chunk: ``item`` from :func:`_chunk_item` -> (first row, slices,
    values <= 0, values > 1.2, what the ring removal found per row); ``log`` False: ``raw`` are line integrals
    already; ``shifts``: the per-angle shifts to undo (px)."""
    start = item[0]
    block, bad, over = _aligned(item[1:], shifts, log=log)
    rows: list = [None] * block.shape[1]
    if options.rings and options.ring_method == "detect":  # stripes selected from all the chunk's rows
        from layerscope.tomo.rings import remove_stripes_rows

        block, rows = remove_stripes_rows(block)
    done = [_slice(block[:, r], angles_deg, centre_px=centre_px, options=options, gpu=gpu, rings_found=rows[r])
            for r in range(block.shape[1])]
    return start, np.stack([d[0] for d in done]), bad, over, [d[1] for d in done]


def _ring_summary(found: list[dict], options: ReconOptions) -> dict:
    """What the ring removal did over all slices (``found``: one dict per slice, see :func:`remove_rings`)."""
    if not options.rings:
        return {"method": "off"}
    hit = [f for f in found if f["stripe_columns"] or f["dead_columns"]]
    out = {"method": options.ring_method, "slices": len(found), "slices_with_stripes": len(hit),
           "dead_columns": int(sum(len(f["dead_columns"]) for f in found))}
    if options.ring_method == "sorting":
        return dict(out, note="every column corrected by sorting; only dead columns are detected")
    return dict(out, stripe_columns=int(sum(len(f["stripe_columns"]) for f in found)),
                max_offset=float(max((f["max_offset"] for f in found), default=0.0)))


def _ring_flags(summary: dict) -> list[dict[str, str]]:
    if summary.get("method") == "off" or not summary["slices_with_stripes"]:
        return []
    what = f"{summary['dead_columns']} dead detector column(s) (no response over the angles) interpolated"
    if "stripe_columns" in summary:
        what += (f" and {summary['stripe_columns']} stripe column(s) corrected (largest offset "
                 f"{summary['max_offset']:.3g} in -log units)")
    return [{"code": "detector_stripes", "message": f"{what} in {summary['slices_with_stripes']} of "
             f"{summary['slices']} slices"}]


def reconstruct(proj: Projections, options: ReconOptions = ReconOptions(), *, scheduler: Any = None,
                progress: bool = False, out: np.ndarray | None = None) -> Reconstruction:
    """Normalise, find the centre, remove rings and reconstruct every detector row.

    Parameters
    ----------
    proj : Projections
    options : ReconOptions
    scheduler : see :func:`layerscope.parallel.scheduler_context`
        Chunks of ``options.chunk_slices`` rows run as separate tasks.
    progress : bool
        Show a progress bar.
    out : array, optional
        Where to put the volume, ``(rows, columns, columns)`` float32, e.g. a ``numpy.memmap`` for a
        volume larger than memory: chunks are then computed in batches (two per worker) and written
        into it as they arrive, so only a batch is held in memory.

    Returns
    -------
    Reconstruction
        Volume ``(rows, columns, columns)``: slice z is detector row z.
    """
    from layerscope.parallel import default_workers, map_tasks

    gpu = options.device == "gpu" or (options.device == "auto" and gpu_available())
    if options.device == "gpu" and not gpu_available():
        raise InputError("--device gpu: the ASTRA Toolbox sees no CUDA GPU here; use --device cpu or auto")
    _stage("recon_fields")
    dark, flat = _reference_fields(proj)
    k = options.chunk_slices
    alignment = _alignment(proj, dark, flat, options)
    shifts = alignment.get("shifts")
    _stage("recon_centre")
    searched = options.centre_px is None
    centre = _searched_centre(proj, dark, flat, shifts, options) if searched else float(options.centre_px)
    n_angles, n_rows, n_cols = proj.data.shape
    given = out is not None
    if not given:
        out = np.empty((n_rows, n_cols, n_cols), np.float32)
    elif tuple(out.shape) != (n_rows, n_cols, n_cols):
        raise InputError(f"the output array has shape {tuple(out.shape)}, the volume needs {(n_rows, n_cols, n_cols)}")
    _stage("recon_slices")
    starts = list(range(0, n_rows, k))
    batch = max(1, 2 * default_workers()) if given else len(starts)
    bad = over = 0
    found: list[dict] = []
    for b in range(0, len(starts), batch):  # only a batch of raw chunks is in memory at a time
        items = [_chunk_item(proj, s, k, dark, flat, shifts) for s in starts[b:b + batch]]
        for s, part, n_bad, n_over, rows in map_tasks(_chunk_task, items, scheduler=scheduler, progress=progress,
                                                description="reconstruct", angles_deg=np.asarray(proj.angles_deg, float),
                                                centre_px=centre, options=options, gpu=gpu,
                                                log=not proj.line_integrals, shifts=shifts):
            out[s:s + part.shape[0]] = part
            bad, over = bad + n_bad, over + n_over
            found += rows
    rings = _ring_summary(found, options)
    extension = _extension_summary(found, options)
    flags = (_transmission_flags(bad, over, n_angles * n_rows * n_cols) + _angle_flags(proj.angles_deg)
             + _centre_flags(centre, n_cols, searched) + _ring_flags(rings) + _shift_flags(alignment, options))
    return Reconstruction(out, proj.pixel_size_nm, centre, searched, "gpu" if gpu else "cpu", flags, rings,
                          signal=proj.signal, angles_source=proj.angles_source, extension=extension,
                          alignment=alignment, angles_deg=np.asarray(proj.angles_deg, float))


def _series_lines(proj: Projections, dark, flat, chunk: int, bin_px: int = 1) -> np.ndarray:
    """The whole series' line integrals (n_angles, rows, columns), binned by ``bin_px``, read ``chunk`` rows
    at a time."""
    from layerscope.tomo.align import binned_projections

    n_rows = proj.data.shape[1] // bin_px * bin_px
    step = max(chunk, bin_px) // bin_px * bin_px
    return np.concatenate([binned_projections(_rows(proj, s, min(n_rows, s + step), dark, flat)[0], bin_px)
                           for s in range(0, n_rows, step)], axis=1)


def _profiles(proj: Projections, dark, flat, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Per angle, the sums of the line integrals (negatives as 0) along each detector row and column:
    (n_angles, rows), (n_angles, columns); read ``chunk`` rows at a time."""
    from layerscope.tomo.align import axis_profiles as block_profiles

    n_angles, n_rows, n_cols = proj.data.shape
    rows, cols = np.zeros((n_angles, n_rows)), np.zeros((n_angles, n_cols))
    for s in range(0, n_rows, chunk):
        along, across = block_profiles(_rows(proj, s, min(n_rows, s + chunk), dark, flat)[0])
        rows[:, s:s + along.shape[1]] = along
        cols += across
    return rows, cols


def _alignment(proj: Projections, dark, flat, options: ReconOptions) -> dict:
    """The shift check of the series (:func:`layerscope.tomo.align.consistency`) and, with ``options.align``
    (``"auto"``: only where the check exceeds :data:`~layerscope.tomo.align.FLAG_PX`), the shifts to undo:
    ``{"method", "consistency", "shifts": {"dy", "dx"} or None, ...}`` (:func:`_estimated`)."""
    from layerscope.tomo import align

    _stage("recon_align")
    check = align.consistency_of_profiles(*_profiles(proj, dark, flat, options.chunk_slices), proj.angles_deg)
    out: dict = {"method": options.align, "consistency": check, "shifts": None}
    if options.align == "none":
        return out
    if options.align == "auto" and check["rms_px"] <= align.FLAG_PX:
        return dict(out, aligned=False)
    return _estimated(proj, dark, flat, options, out)


def _estimated(proj: Projections, dark, flat, options: ReconOptions, out: dict) -> dict:
    """``out`` with the estimated shifts (:func:`layerscope.tomo.align.estimate_shifts`) and their acceptance test:
    the aligned series' check (``consistency_aligned``, px, :func:`layerscope.tomo.align.aligned_consistency`)
    must be at most :data:`~layerscope.tomo.align.FLAG_PX`. The first guesses of
    :data:`~layerscope.tomo.align.FIRST_GUESSES` are tried in turn until one passes (``first_guess``), else the
    one that reads lowest is reported (``accepted`` False) and its shifts are undone only where its check is
    below :data:`KEEP_FAILED_FRACTION` (default 0: never) of the series' as given (``aligned`` says whether they
    are undone)."""
    from layerscope.tomo import align

    n = max(1, int(np.ceil(proj.data.shape[2] / align.MATCH_MAX_COLUMNS)))
    lines = _series_lines(proj, dark, flat, options.chunk_slices, n)
    centre = None if options.centre_px is None else align.binned_px(options.centre_px, n)
    tried = []
    for first in align.FIRST_GUESSES:
        est = align.estimate_shifts(lines, proj.angles_deg, centre_px=centre, first=first)
        after = {k: n * v for k, v in align.aligned_consistency(lines, est["dy"], est["dx"], proj.angles_deg).items()}
        passed = after["rms_px"] <= align.FLAG_PX
        tried.append(((not passed, after["rms_px"]), first, est, after))
        if passed:
            break
    _, first, est, after = min(tried, key=lambda t: t[0])
    accepted = after["rms_px"] <= align.FLAG_PX
    dy, dx = est["dy"] * n, est["dx"] * n
    size = np.hypot(dy, dx)
    keep = accepted or after["rms_px"] < KEEP_FAILED_FRACTION * out["consistency"]["rms_px"]
    return dict(out, shifts={"dy": dy, "dx": dx} if keep else None, max_px=float(size.max(initial=0.0)),
                rms_px=float(np.sqrt(np.mean(size ** 2))), rounds=est["rounds"], diverged=est["diverged"],
                first_guess=first, guesses_tried=len(tried), consistency_aligned=after, accepted=bool(accepted),
                aligned=bool(keep))


def _shift_flags(alignment: dict, options: ReconOptions) -> list[dict[str, str]]:
    """``projections_shifted`` where the series' shift check exceeds :data:`layerscope.tomo.align.FLAG_PX`;
    ``alignment_failed`` where the aligned series still exceeds it (:func:`_estimated`)."""
    from layerscope.tomo.align import FLAG_PX

    c = alignment["consistency"]
    flags = [] if alignment.get("accepted", True) else [_failed_flag(alignment, options)]
    if c["rms_px"] <= FLAG_PX:
        return flags
    what = (f"the projections jump between neighbouring angles by {c['rms_px']:.2f} px RMS (largest "
            f"{c['max_px']:.1f} px; rows {c['rms_rows_px']:.2f}, columns {c['rms_columns_px']:.2f} px): stage drift "
            f"or jitter blurs edges into arcs and hides thin cracks")
    if "accepted" not in alignment:
        return [{"code": "projections_shifted", "message": what + "; give --align auto or xcorr to align them"}]
    if not alignment["aligned"]:
        return [{"code": "projections_shifted", "message": what + "; the alignment failed: reconstructed as given"}] \
            + flags
    return [{"code": "projections_shifted", "message": what + f"; aligned (--align {options.align}): shifts up to "
             f"{alignment['max_px']:.1f} px, {alignment['rms_px']:.2f} px RMS undone"}] + flags


def _failed_flag(alignment: dict, options: ReconOptions) -> dict[str, str]:
    """``alignment_failed``: the shifts found did not make the series consistent."""
    from layerscope.tomo.align import FLAG_PX

    kept = ("reconstructed with them all the same (they removed most of the jumps)" if alignment["aligned"] else
            "reconstructed as given (shifts not undone)")
    return {"code": "alignment_failed", "message": (
        f"--align {options.align}: the series aligned by the shifts found (up to {alignment['max_px']:.1f} px) still "
        f"jumps between neighbouring angles by {alignment['consistency_aligned']['rms_px']:.2f} px RMS (> {FLAG_PX}; "
        f"as given {alignment['consistency']['rms_px']:.2f} px): the estimate locked wrongly - shifts too large "
        f"for the detector (over ~1/10 of its width), too few features, or a sample that changes during the scan; "
        f"{kept}. Check the projections (a movie over the angles), align them with a fiducial-based tool, or "
        f"bin/crop them and try again")}


def _extension_summary(found: list[dict], options: ReconOptions) -> dict | None:
    """What the sinogram extension did over all slices: the method, the slices with at least one angle
    extended, the angles extended (all slices), the longest fade (px) and how many slices took each
    reference (:func:`mass_reference`); None without the extension."""
    info = [f["extension"] for f in found if "extension" in f]
    if not options.extends or not info:
        return None
    refs: dict[str, int] = {}
    for i in info:
        refs[i["reference"]] = refs.get(i["reference"], 0) + 1
    return {"method": options.extension, "slices": len(info),
            "slices_extended": sum(i["angles_extended"] > 0 for i in info),
            "angles_extended": int(sum(i["angles_extended"] for i in info)),
            "max_fade_px": max(i["fade_px"] for i in info), "references": refs}


def _field_rows(dark, flat, start: int, stop: int) -> tuple:
    return (None, None) if dark is None else (dark[start:stop], flat[start:stop])


def _angle_flags(angles_deg: np.ndarray) -> list[dict[str, str]]:
    from layerscope.tomo.wedge import rule_text, tilt_interval_deg

    span = float(np.ptp(angles_deg))
    if span < LIMITED_SPAN_DEG:
        return [{"code": "limited_angle", "message": f"projections span only {span:.0f} deg (< {LIMITED_SPAN_DEG:.0f}): "
                 "expect missing-wedge streaks and elongation (--algorithm sirt suffers less than fbp; the centre is "
                 "found from the projections' centres of mass); "
                 f"{rule_text(tilt_interval_deg(angles_deg, LIMITED_SPAN_DEG))}. Particle, crack and pore counts from "
                 "such a volume are not validated: on +-70 deg random draws no pore is called a crack any more, but "
                 "crack counts are exact in a third of the draws (0.68 over 0-180 deg) and crack volumes within 10 % "
                 "in at most a sixth (docs/validation.md, tomowedge); the visible counts are exact in 0.70 of 91 such "
                 "draws (0.73 over 0-180 deg), per particle in 0.60 (0.69) (docs/validation.md, tomowedge2)"}]
    return []
