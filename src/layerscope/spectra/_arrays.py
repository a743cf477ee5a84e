"""Shared array plumbing for the EELS modules: energy-axis checks, windows, NumPy/Dask dispatch.

Every analysis function in :mod:`layerscope.spectra` takes ``data`` with the energy loss on the
**last** axis (a single spectrum ``(E,)``, a line scan ``(n, E)`` or a spectrum image
``(rows, cols, E)``) and a 1-D ``energy_eV`` axis. ``data`` may be a NumPy or a Dask array; the
helpers here make one code path serve both: the maths is written for NumPy blocks whose energy
axis is complete, and Dask blocks are mapped with the energy axis in one chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from layerscope.errors import CalibrationError, InputError

try:  # Dask is a core dependency, but keep the import local to one place.
    import dask.array as da
except ImportError:  # pragma: no cover - dask is in the project dependencies
    da = None

__all__ = [
    "is_lazy",
    "as_float",
    "check_energy_axis",
    "check_finite",
    "window_slice",
    "map_spectra",
    "pixel_shape",
]

#: Relative tolerance on the spacing of a "uniform" energy axis.
_UNIFORM_RTOL = 1e-3


def is_lazy(data: Any) -> bool:
    """Return True when ``data`` is a Dask array."""
    return da is not None and isinstance(data, da.Array)


def as_float(data: Any, *, name: str = "data") -> Any:
    """Return ``data`` as a floating-point NumPy or Dask array (float32 stays float32).

    Integer counts become float64 (float32 would lose counts above 2**24).
    """
    if is_lazy(data):
        arr = data
    else:
        arr = np.asarray(data)
    if arr.ndim == 0:
        raise InputError(
            f"{name}: got a scalar; pass an array whose last axis is the energy-loss axis "
            "(shape (E,), (n, E) or (rows, cols, E))."
        )
    if not np.issubdtype(arr.dtype, np.floating):
        if np.iscomplexobj(arr) or not np.issubdtype(arr.dtype, np.number):
            raise InputError(f"{name}: dtype {arr.dtype} is not real numbers; pass real counts.")
        arr = arr.astype(np.float64)
    return arr


def check_energy_axis(energy_eV: Any, n_channels: int, *, name: str = "energy_eV") -> tuple[float, float]:
    """Validate a 1-D, uniform, increasing energy axis and return ``(offset_eV, scale_eV)``.

    Parameters
    ----------
    energy_eV : array_like
        Energy of each channel in eV.
    n_channels : int
        Length of the spectra's last axis; the axis must have exactly this many values.
    name : str
        Name used in error messages.

    Raises
    ------
    CalibrationError
        When the axis is missing, has the wrong length, is not finite, not increasing or not
        uniform. The message says how to fix it.
    """
    if energy_eV is None or np.ndim(energy_eV) == 0:
        raise CalibrationError(
            f"{name}: the spectrum has no energy axis. Load it with layerscope.io.load (which "
            "reads the calibration from the file) or pass energy_eV = offset_eV + scale_eV * "
            "arange(n_channels) explicitly."
        )
    e = np.asarray(energy_eV, dtype=np.float64)
    if e.ndim != 1:
        raise CalibrationError(f"{name}: expected a 1-D energy axis, got shape {e.shape}.")
    if e.size != n_channels:
        raise CalibrationError(
            f"{name}: the energy axis has {e.size} values but the spectra have {n_channels} "
            "channels on their last axis; the energy must be the last axis of the data (move it "
            "there with numpy.moveaxis) and the axis must match the data."
        )
    if n_channels < 2:
        raise CalibrationError(f"{name}: need at least 2 channels, got {n_channels}.")
    if not np.all(np.isfinite(e)):
        raise CalibrationError(f"{name}: the energy axis contains NaN or inf; recalibrate it.")
    d = np.diff(e)
    scale = float((e[-1] - e[0]) / (e.size - 1))
    if scale <= 0 or np.any(d <= 0):
        raise CalibrationError(
            f"{name}: the energy axis must increase channel by channel (dispersion > 0 eV); "
            "flip the spectra with data[..., ::-1] if they are stored high-to-low."
        )
    if np.max(np.abs(d - scale)) > _UNIFORM_RTOL * scale:
        raise CalibrationError(
            f"{name}: the energy axis is not uniform (spacing varies by "
            f"{np.max(np.abs(d - scale)):.3g} eV around {scale:.4g} eV); resample the spectra onto "
            "a uniform axis (numpy.interp) before the analysis."
        )
    return float(e[0]), scale


def check_finite(data: Any, *, name: str = "data") -> None:
    """Raise :class:`InputError` when an eager array contains NaN or inf.

    Dask arrays are checked block by block when they are computed (see :func:`map_spectra`).
    """
    if is_lazy(data):
        return
    arr = np.asarray(data)
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))
        first = tuple(int(i) for i in bad[0])
        raise InputError(
            f"{name}: {len(bad)} value(s) are NaN or inf (first at index {first}); remove dead "
            "channels/pixels (interpolate them or crop them away) before the EELS analysis."
        )


def _check_block_finite(block: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(block)):
        raise InputError(
            f"{name}: some values are NaN or inf; remove dead channels/pixels (interpolate them "
            "or crop them away) before the EELS analysis."
        )


def window_slice(
    energy_eV: np.ndarray,
    window_eV: tuple[float, float],
    *,
    what: str,
    min_channels: int = 2,
) -> slice:
    """Channel slice covering ``window_eV = (start, end)`` (both inclusive, nearest channels).

    Raises
    ------
    InputError
        When the window is reversed, lies outside the energy range or holds too few channels.
    """
    lo, hi = (float(window_eV[0]), float(window_eV[1]))
    if not hi > lo:
        raise InputError(f"{what}: window {window_eV} eV must be (start, end) with end > start.")
    e0, e1 = float(energy_eV[0]), float(energy_eV[-1])
    scale = (e1 - e0) / (len(energy_eV) - 1)
    tol = 0.5 * scale
    if lo < e0 - tol or hi > e1 + tol:
        raise InputError(
            f"{what}: window {lo:.2f}-{hi:.2f} eV lies outside the spectrum's energy range "
            f"{e0:.2f}-{e1:.2f} eV; choose a window inside the range or acquire a wider range."
        )
    i0 = int(np.clip(np.ceil((lo - e0) / scale - 1e-6), 0, len(energy_eV) - 1))
    i1 = int(np.clip(np.floor((hi - e0) / scale + 1e-6), 0, len(energy_eV) - 1)) + 1
    if i1 - i0 < min_channels:
        raise InputError(
            f"{what}: window {lo:.2f}-{hi:.2f} eV holds {i1 - i0} channel(s) at {scale:.3g} eV per "
            f"channel; widen it to at least {min_channels} channels."
        )
    return slice(i0, i1)


def pixel_shape(data: Any) -> tuple[int, ...]:
    """Shape of the navigation (pixel) axes: everything but the last (energy) axis."""
    return tuple(data.shape[:-1])


def map_spectra(
    func: Callable[..., np.ndarray],
    data: Any,
    *pixel_args: Any,
    out_channels: int | None,
    dtype: Any,
    name: str = "data",
    **kwargs: Any,
) -> Any:
    """Apply a NumPy function over all spectra of ``data``, eagerly or lazily.

    ``func(block, *pixel_blocks, **kwargs)`` receives a NumPy block ``(..., E)`` with the whole
    energy axis and the matching blocks of ``pixel_args`` (arrays with the pixel shape of
    ``data``, or broadcastable scalars), and returns ``(...,)`` when ``out_channels`` is None or
    ``(..., out_channels)`` otherwise.

    For a NumPy ``data`` this is a plain call. For a Dask ``data`` the energy axis is put in one
    chunk and ``func`` runs per block with :func:`dask.array.map_blocks` (nothing is computed).
    """
    if not is_lazy(data):
        return func(data, *[np.asarray(a) if a is not None else None for a in pixel_args], **kwargs)
    ndim = data.ndim
    data = data.rechunk({ndim - 1: -1})
    nav_chunks = data.chunks[:-1]
    lifted = []
    for a in pixel_args:
        if a is None or np.ndim(a) == 0:
            lifted.append(a)
            continue
        arr = a if is_lazy(a) else da.from_array(np.asarray(a), chunks=nav_chunks)
        if tuple(arr.shape) != tuple(data.shape[:-1]):
            raise InputError(
                f"{name}: a per-pixel array has shape {arr.shape} but the data has pixel shape "
                f"{data.shape[:-1]}."
            )
        lifted.append(arr.rechunk(nav_chunks)[..., None])

    def _block(block: np.ndarray, *blocks: Any) -> np.ndarray:
        _check_block_finite(block, name)
        args = [b[..., 0] if isinstance(b, np.ndarray) and b.ndim == ndim else b for b in blocks]
        return func(block, *args, **kwargs)

    if out_channels is None:
        return da.map_blocks(_block, data, *lifted, drop_axis=ndim - 1, dtype=dtype)
    chunks = nav_chunks + ((out_channels,),)
    return da.map_blocks(_block, data, *lifted, chunks=chunks, dtype=dtype)
