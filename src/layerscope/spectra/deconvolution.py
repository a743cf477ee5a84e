"""Fourier-ratio deconvolution of core-loss spectra with their matching low loss.

Plural scattering convolves the single-scattering core-loss distribution with the low loss.
The Fourier-ratio method divides the Fourier transform of the (background-subtracted) core
loss by that of the low loss and multiplies by the transform of a unit Gaussian of the ZLP
width (which limits noise amplification) and by the zero-loss intensity ``I_0`` (Egerton 2011,
eq. 4.16)::

    S(E) = I_0 * IFFT[ FFT(Z) * FFT(J_k) / FFT(J_l) ]

The steps follow eXSpy's ``fourier_ratio_deconvolution`` so that both give the same numbers:
power-law extrapolation of the core loss (fit over its last 20 channels, extended by 100) and
of the low loss (last 100 channels, extended by 100), a Hanning taper of both ends (2 % of the
channels, at least 20), zero padding to at least ``N_low + N_core - 1`` channels, and
``I_0`` integrated up to the elastic threshold. The differences are speed and normalisation:
all pixels are transformed together in float32 with SciPy's multithreaded FFT in blocks, and
the Gaussian is normalised to unit *sum over channels*, so the output is in counts per channel
like the input (eXSpy normalises it to unit area in eV, which makes its output ``1 / dispersion``
times larger; ``docs/validation.md`` shows the two agree after that factor).

References
----------
R. F. Egerton, *Electron Energy-Loss Spectroscopy in the Electron Microscope*, 3rd ed.,
Springer (2011), section 4.2.2.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.fft as sfft

from layerscope.errors import CalibrationError, InputError
from layerscope.spectra._arrays import as_float, check_energy_axis, check_finite, is_lazy
from layerscope.spectra.alignment import zero_loss_peak_fwhm
from layerscope.spectra.background import power_law_two_area
from layerscope.spectra.thickness import elastic_threshold

__all__ = ["fourier_ratio", "power_law_extrapolate", "hanning_taper"]

_CORE_EXTRAP_WINDOW = 20
_LOW_EXTRAP_WINDOW = 100
_EXTRAP_SIZE = 100
_FWHM_SAMPLE = 1024


def power_law_extrapolate(
    data: np.ndarray, energy_eV: np.ndarray, *, window_channels: int, extra_channels: int, out: np.ndarray
) -> None:
    """Write ``data`` followed by a power-law continuation into ``out[..., :n + extra]``.

    The power law comes from the two-area method over the last ``window_channels`` channels
    (eXSpy's ``power_law_extrapolation``); where it cannot be fitted (non-positive tail) the
    continuation is zero, as in eXSpy.
    """
    n = data.shape[-1]
    e = energy_eV
    scale = (e[-1] - e[0]) / (n - 1)
    i1, i4 = n - window_channels, n - 1
    if (i4 + i1) % 2 != 0:
        i4 -= 1
    i3 = (i4 + i1) // 2
    s1 = data[..., i1:i3].sum(axis=-1, dtype=np.float64)
    s2 = data[..., i3:i4].sum(axis=-1, dtype=np.float64)
    a, r = power_law_two_area(s1, s2, e[i1], e[i3], e[i3], e[i4])
    a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    r = np.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0)
    x = e[0] + scale * np.arange(n, n + extra_channels)
    out[..., :n] = data
    with np.errstate(over="ignore", invalid="ignore"):
        tail = (scale * a)[..., None] * np.exp(-r[..., None] * np.log(x))
    out[..., n : n + extra_channels] = np.nan_to_num(tail, nan=0.0, posinf=0.0, neginf=0.0)


def hanning_taper(out: np.ndarray, n: int) -> None:
    """Hanning-taper both ends of ``out[..., :n]`` in place (2 % of ``n``, at least 20 channels)."""
    ch = max(20, int(round(n * 0.02)))
    w = np.hanning(2 * ch).astype(out.dtype)
    out[..., :ch] *= w[:ch]
    out[..., n - ch : n] *= w[ch:]


def _fourier_ratio_numpy(
    cl: np.ndarray,
    ll: np.ndarray,
    i0: np.ndarray,
    *,
    cl_e: np.ndarray,
    ll_e: np.ndarray,
    fwhm_eV: float,
    extrapolate: bool,
    block_size: int,
    workers: int,
) -> np.ndarray:
    dtype = np.float32 if (cl.dtype == np.float32 and ll.dtype == np.float32) else np.float64
    nav = cl.shape[:-1]
    nc, nl = cl.shape[-1], ll.shape[-1]
    ll_single = ll.ndim == 1 or ll.shape[:-1] != nav
    clf = cl.reshape(-1, nc)
    llf = ll.reshape(-1, nl)
    i0f = np.broadcast_to(np.asarray(i0, dtype=np.float64), nav).reshape(-1)
    P = clf.shape[0]
    ext = _EXTRAP_SIZE if extrapolate else 0
    ncx, nlx = nc + ext, nl + ext
    size = sfft.next_fast_len(nlx + nc - 1, real=False)  # the length eXSpy uses (same wrap-around)
    scale = (ll_e[-1] - ll_e[0]) / (nl - 1)
    x = ll_e[0] + scale * np.arange(size)
    sigma = fwhm_eV / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    z = np.exp(-0.5 * (x / sigma) ** 2)
    z /= z.sum()
    zf = sfft.rfft(z).astype(np.complex64 if dtype == np.float32 else np.complex128)
    out = np.empty((P, nc), dtype=dtype)

    def _prepare(src: np.ndarray, e: np.ndarray, window: int, n_ext: int) -> np.ndarray:
        buf = np.zeros((src.shape[0], size), dtype=dtype)
        if extrapolate:
            power_law_extrapolate(src, e, window_channels=window, extra_channels=_EXTRAP_SIZE, out=buf)
        else:
            buf[:, : src.shape[-1]] = src
        hanning_taper(buf, n_ext)
        return buf

    jl_single = None
    if ll_single:
        jl_single = sfft.rfft(_prepare(llf[:1], ll_e, _LOW_EXTRAP_WINDOW, nlx), axis=-1, workers=workers)
        ratio_single = zf / np.where(jl_single == 0, 1, jl_single)
    for a in range(0, P, block_size):
        b = min(a + block_size, P)
        jk = sfft.rfft(_prepare(clf[a:b], cl_e, _CORE_EXTRAP_WINDOW, ncx), axis=-1, workers=workers)
        if ll_single:
            jk *= ratio_single
        else:
            jl = sfft.rfft(_prepare(llf[a:b], ll_e, _LOW_EXTRAP_WINDOW, nlx), axis=-1, workers=workers)
            np.divide(zf, jl, out=jl, where=jl != 0)  # Z / J_l (0 where J_l vanishes)
            jk *= jl
        res = sfft.irfft(jk, n=size, axis=-1, workers=workers)
        out[a:b] = res[:, :nc] * i0f[a:b, None].astype(dtype)
    return out.reshape(nav + (nc,))


def fourier_ratio(
    coreloss: Any,
    coreloss_energy_eV: Any,
    lowloss: Any,
    lowloss_energy_eV: Any,
    *,
    fwhm_eV: float | None = None,
    threshold_eV: Any = None,
    zero_loss_intensity: Any = None,
    extrapolate: bool = True,
    block_size: int = 1024,
    workers: int = -1,
) -> Any:
    """Fourier-ratio deconvolution of every core-loss spectrum with its low loss.

    Parameters
    ----------
    coreloss : array (..., E_c)
        Background-subtracted core-loss spectra (counts per channel), energy last; NumPy or
        Dask.
    coreloss_energy_eV : array (E_c,)
        Core-loss energy axis (eV).
    lowloss : array (..., E_l) or (E_l,)
        The matching low loss with the ZLP at 0 eV (align it first), same pixel shape as the
        core loss (or one spectrum used for every pixel), same dispersion.
    lowloss_energy_eV : array (E_l,)
        Low-loss energy axis (eV).
    fwhm_eV : float or None
        FWHM of the Gaussian the result is convolved with (eV). None: the median ZLP FWHM of
        up to 1024 pixels of the low loss (evenly spaced for NumPy data, the first ones for
        Dask data so that nothing more than one chunk is read; eXSpy uses the first pixel's).
    threshold_eV : float, array or None
        Elastic threshold for ``I_0`` (eV); None: per pixel by
        :func:`layerscope.spectra.thickness.elastic_threshold`.
    zero_loss_intensity : array or None
        ``I_0`` per pixel if already known (e.g.
        :attr:`layerscope.spectra.thickness.ThicknessResult.zero_loss_intensity`); saves a pass
        over the low loss. Overrides ``threshold_eV``.
    extrapolate : bool
        Power-law extrapolation of both spectra before tapering (as eXSpy's defaults).
    block_size : int
        Pixels transformed at once (memory ~ 3 x block_size x FFT length x 8 bytes).
    workers : int
        Threads for :mod:`scipy.fft` (-1: all cores).

    Returns
    -------
    array (..., E_c)
        Single-scattering core loss, counts per channel, on the core-loss axis; float32 when
        both inputs are float32. Lazy when ``coreloss`` is a Dask array.

    Raises
    ------
    CalibrationError
        When the dispersions differ or the low loss has no ZLP at 0 eV.
    InputError
        When the pixel shapes differ, or data contain NaN/inf.
    """
    coreloss = as_float(coreloss, name="coreloss")
    lowloss = as_float(lowloss, name="lowloss")
    ce = np.asarray(coreloss_energy_eV, dtype=np.float64)
    le = np.asarray(lowloss_energy_eV, dtype=np.float64)
    _check_fourier_inputs(coreloss, ce, lowloss, le)
    fwhm_eV = _default_fwhm(lowloss, le) if fwhm_eV is None else fwhm_eV
    if not (np.isfinite(fwhm_eV) and fwhm_eV > 0):
        raise InputError(f"Fourier-ratio: fwhm_eV={fwhm_eV} must be a positive number of eV.")
    i0 = _zero_loss(lowloss, le, zero_loss_intensity, threshold_eV)
    kw = dict(cl_e=ce, ll_e=le, fwhm_eV=float(fwhm_eV), extrapolate=bool(extrapolate),
              block_size=int(block_size), workers=int(workers))
    if not is_lazy(coreloss) and not is_lazy(lowloss) and not is_lazy(i0):
        return _fourier_ratio_numpy(coreloss, lowloss, np.asarray(i0), **kw)
    return _fourier_ratio_lazy(coreloss, lowloss, i0, kw)


def _check_fourier_inputs(coreloss: Any, ce: np.ndarray, lowloss: Any, le: np.ndarray) -> None:
    """Raise on axes, dispersions, pixel shapes or lengths that the Fourier-ratio cannot take."""
    _, cscale = check_energy_axis(ce, coreloss.shape[-1], name="coreloss energy axis")
    _, lscale = check_energy_axis(le, lowloss.shape[-1], name="lowloss energy axis")
    check_finite(coreloss, name="coreloss")
    check_finite(lowloss, name="lowloss")
    if abs(cscale - lscale) > 1e-4 * lscale:
        raise CalibrationError(
            f"Fourier-ratio: the core loss has {cscale:.5g} eV/channel and the low loss "
            f"{lscale:.5g} eV/channel; they must share the dispersion. Rebin the finer one "
            "(e.g. HyperSpy's rebin) or acquire both with the same dispersion."
        )
    if not (le[0] < 0 < le[-1]):
        raise CalibrationError(
            f"Fourier-ratio: the low-loss axis {le[0]:.1f}-{le[-1]:.1f} eV does not contain 0 eV; "
            "align the zero-loss peak to 0 eV first (align_zero_loss)."
        )
    if lowloss.ndim != 1 and lowloss.shape[:-1] != coreloss.shape[:-1]:
        raise InputError(
            f"Fourier-ratio: low-loss pixel shape {lowloss.shape[:-1]} differs from the core "
            f"loss {coreloss.shape[:-1]}; give the low loss recorded at the same pixels (or one "
            "low-loss spectrum for all)."
        )
    if coreloss.shape[-1] < 2 * _CORE_EXTRAP_WINDOW or lowloss.shape[-1] < 2 * _LOW_EXTRAP_WINDOW:
        raise InputError(
            "Fourier-ratio: spectra too short for the extrapolation windows (core loss needs "
            f">= {2 * _CORE_EXTRAP_WINDOW}, low loss >= {2 * _LOW_EXTRAP_WINDOW} channels)."
        )


def _default_fwhm(lowloss: Any, le: np.ndarray) -> float:
    """Median ZLP FWHM (eV) of up to ``_FWHM_SAMPLE`` pixels: evenly spaced for NumPy, the first for Dask."""
    flat = lowloss.reshape((-1, lowloss.shape[-1]))
    if is_lazy(flat):  # the first pixels only: one chunk read, not a pass over the data
        sample = flat[: min(flat.shape[0], _FWHM_SAMPLE)].compute()
    else:
        sample = flat[np.unique(np.linspace(0, flat.shape[0] - 1, min(flat.shape[0], _FWHM_SAMPLE)).astype(int))]
    return float(np.nanmedian(zero_loss_peak_fwhm(sample, le)))


def _zero_loss(lowloss: Any, le: np.ndarray, zero_loss_intensity: Any, threshold_eV: Any) -> Any:
    """``I_0`` per pixel: the given one (shape checked) or integrated up to the elastic threshold."""
    if zero_loss_intensity is not None:
        if np.shape(zero_loss_intensity) not in ((), tuple(lowloss.shape[:-1])):
            raise InputError(
                f"Fourier-ratio: zero_loss_intensity has shape {np.shape(zero_loss_intensity)}, the low loss "
                f"has pixel shape {tuple(lowloss.shape[:-1])}."
            )
        return zero_loss_intensity
    if threshold_eV is None:
        threshold_eV = elastic_threshold(lowloss, le)
    from layerscope.spectra.thickness import relative_thickness

    return relative_thickness(lowloss, le, threshold_eV=threshold_eV).zero_loss_intensity


def _fourier_ratio_lazy(coreloss: Any, lowloss: Any, i0: Any, kw: dict) -> Any:
    """The Dask form: one block of pixels at a time, the energy axis whole."""
    import dask.array as da

    cl = coreloss if is_lazy(coreloss) else da.from_array(coreloss, chunks=(-1,) * coreloss.ndim)
    cl = cl.rechunk({cl.ndim - 1: -1})
    nav_chunks = cl.chunks[:-1]
    i0d = i0 if is_lazy(i0) else da.from_array(np.broadcast_to(np.asarray(i0), cl.shape[:-1]))
    i0d = da.broadcast_to(i0d, cl.shape[:-1]).rechunk(nav_chunks)[..., None]
    if lowloss.ndim == 1:
        llv = lowloss.compute() if is_lazy(lowloss) else lowloss

        def _blk(c: np.ndarray, i: np.ndarray) -> np.ndarray:
            return _fourier_ratio_numpy(c, llv, i[..., 0], **kw)

        return da.map_blocks(_blk, cl, i0d, dtype=cl.dtype, chunks=cl.chunks)
    lld = lowloss if is_lazy(lowloss) else da.from_array(lowloss)
    lld = lld.rechunk(nav_chunks + (-1,))

    def _blk2(c: np.ndarray, lb: np.ndarray, i: np.ndarray) -> np.ndarray:
        return _fourier_ratio_numpy(c, lb, i[..., 0], **kw)

    return da.map_blocks(_blk2, cl, lld, i0d, dtype=cl.dtype, chunks=cl.chunks)
