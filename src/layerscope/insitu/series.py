"""Reading in situ series lazily: multi-frame files, folders of frames and movies.

Every source becomes an :class:`~layerscope.containers.ImageSeries` whose data is a Dask array
chunked along time (``chunk_frames`` frames per chunk, whole frames), so a movie is decoded chunk by
chunk and never held in memory as a whole.

* Multi-frame dm3/dm4/emd/ser/tif/hspy/zspy: :func:`layerscope.io.load` (RosettaSciIO, lazy).
* Folders of frames (tif, png, jpg, bmp, npy, dm3/dm4): sorted in natural order
  (``frame_2`` before ``frame_10``); every frame's size is checked from its header before any
  analysis.
* Movies (MP4, AVI, MOV, MKV, WebM; screen recordings of a microscope display included): decoded by
  ffmpeg (imageio-ffmpeg) to 8-bit grey (luma), each chunk seeking to its first frame.

Time stamps come from the file (series axis in s, the movie's frame rate) or from ``fps``/``times_s``
given by the caller; without either, :meth:`ImageSeries.require_times` raises a
:class:`~layerscope.errors.CalibrationError` that names ``--fps``.

A frame that cannot be decoded (corrupt file, truncated movie) comes out as NaN; the pipeline
reports it (with the reason from :func:`diagnose_frame`) and goes on, or stops, as asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from layerscope.containers import ImageSeries
from layerscope.errors import CalibrationError, InputError
from layerscope.io.load import natural_key

__all__ = ["open_series", "MOVIE_SUFFIXES", "FRAME_SUFFIXES", "diagnose_frame", "FolderReader", "MovieReader",
           "FileReader", "read_frame"]

MOVIE_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
FRAME_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".npy", ".dm3", ".dm4")


def _to_grey(a: np.ndarray) -> np.ndarray:
    """Grey levels of a frame: RGB(A) becomes Rec. 709 luma."""
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        rgb = a[..., :3].astype(np.float32)
        return rgb @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    return a.astype(np.float32, copy=False)


@dataclass(frozen=True)
class FolderReader:
    """Reads frames of a folder by index (picklable: paths only)."""

    files: tuple[str, ...]
    shape: tuple[int, int]

    def read(self, i: int) -> np.ndarray:
        """Frame ``i`` as float32; raises on any decoding problem."""
        path = Path(self.files[i])
        suffix = path.suffix.lower()
        if suffix in (".tif", ".tiff"):
            import tifffile

            a = tifffile.imread(path)
        elif suffix == ".npy":
            a = np.load(path, allow_pickle=False)
        elif suffix in (".dm3", ".dm4"):
            from layerscope.io import load

            a = np.asarray(load(path, pixel_size_nm=1.0).data)
        else:
            import imageio.v3 as iio

            a = iio.imread(path)
        a = _to_grey(a)
        if a.shape != self.shape:
            raise InputError(f"'{path}' has shape {a.shape}, the series {self.shape}")
        if not np.all(np.isfinite(a)):
            raise InputError(f"'{path}' contains NaN or infinite values")
        return a

    def read_block(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, *self.shape), np.float32)
        for k, i in enumerate(range(start, stop)):
            try:
                out[k] = self.read(i)
            except Exception:  # reported by diagnose_frame; the frame becomes NaN
                out[k] = np.nan
        return out

    def describe(self, i: int) -> str:
        return self.files[i]


@dataclass(frozen=True)
class MovieReader:
    """Decodes frames of a movie by index with ffmpeg (picklable: path and geometry only)."""

    path: str
    shape: tuple[int, int]
    n_frames: int
    fps: float

    def read_block(self, start: int, stop: int) -> np.ndarray:
        import imageio_ffmpeg

        h, w = self.shape
        out = np.full((stop - start, h, w), np.nan, np.float32)
        t = max(0.0, (start - 0.25) / self.fps) if start > 0 else 0.0
        params = ["-ss", f"{t:.6f}"] if start > 0 else None
        gen = imageio_ffmpeg.read_frames(self.path, pix_fmt="gray", bits_per_pixel=8, input_params=params)
        try:
            next(gen)  # metadata
            for k in range(stop - start):
                try:
                    buf = next(gen)
                except StopIteration:
                    break
                if len(buf) != h * w:
                    break
                out[k] = np.frombuffer(buf, np.uint8).reshape(h, w)
        except (RuntimeError, OSError):
            pass
        finally:
            gen.close()
        return out

    def read(self, i: int) -> np.ndarray:
        frame = self.read_block(i, i + 1)[0]
        if not np.all(np.isfinite(frame)):
            raise InputError(f"'{self.path}': frame {i} could not be decoded (the movie is truncated or corrupt there)")
        return frame

    def describe(self, i: int) -> str:
        return f"{self.path} frame {i}"


@dataclass(frozen=True)
class FileReader:
    """Reads frames of a multi-frame file (stack) by index, opening the file inside each task.

    Only the (absolute) path travels to the task, never an open file handle, so the series can run
    on local processes and on a ``dask.distributed`` cluster that sees the same file system.
    """

    path: str
    index: int | None
    shape: tuple[int, int]
    n_frames: int

    def read_block(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start..stop-1`` as float32 (NaN where the file cannot be read)."""
        try:
            return self._read(start, stop)
        except Exception:  # reported by diagnose_frame; the frames become NaN
            return np.full((stop - start, *self.shape), np.nan, np.float32)

    def _read(self, start: int, stop: int) -> np.ndarray:
        from layerscope.io import load
        from layerscope.parallel import compute_here, in_task

        with in_task():
            data = load(Path(self.path), pixel_size_nm=1.0, lazy=True, index=self.index).data
            block = data[start:stop]
            if hasattr(block, "dask"):
                block = compute_here(block)
        block = _to_grey(np.asarray(block)) if np.ndim(block) == 4 else np.asarray(block, np.float32)
        if block.shape != (stop - start, *self.shape):
            raise InputError(f"'{self.path}' frames {start}-{stop - 1} have shape {block.shape[1:]}, "
                             f"the series {self.shape}")
        return block

    def read(self, i: int) -> np.ndarray:
        frame = self._read(i, i + 1)[0]
        if not np.all(np.isfinite(frame)):
            raise InputError(f"'{self.path}': frame {i} contains NaN or infinite values")
        return frame

    def describe(self, i: int) -> str:
        return f"{self.path} frame {i}"


def _lazy_stack(reader: Any, n: int, shape: tuple[int, int], chunk_frames: int):
    import dask
    import dask.array as da

    blocks = []
    for start in range(0, n, chunk_frames):
        stop = min(n, start + chunk_frames)
        d = dask.delayed(reader.read_block, pure=True)(start, stop)
        blocks.append(da.from_delayed(d, shape=(stop - start, *shape), dtype=np.float32))
    return da.concatenate(blocks, axis=0)


def _frame_shape(path: Path) -> tuple[int, int]:
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tf:
                shape = tuple(tf.pages[0].shape)
        elif suffix == ".npy":
            shape = tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)
        elif suffix in (".dm3", ".dm4"):
            from layerscope.io import load

            shape = tuple(load(path, pixel_size_nm=1.0, lazy=True).data.shape)
        else:
            import imageio.v3 as iio

            shape = tuple(iio.improps(path).shape)
    except Exception as err:  # unreadable header: the frame is corrupt
        raise _Corrupt(str(err)) from err
    if len(shape) == 3 and shape[-1] in (3, 4):
        shape = shape[:2]
    if len(shape) != 2:
        raise InputError(f"'{path}' holds an array of shape {shape}, not a single 2-D frame")
    return int(shape[0]), int(shape[1])


class _Corrupt(Exception):
    pass


def _open_folder(folder: Path, *, pattern: str | None, chunk_frames: int) -> tuple[Any, FolderReader, list[str]]:
    files = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES
                    and (pattern is None or p.match(pattern))), key=natural_key)
    if not files:
        raise InputError(
            f"folder '{folder}' holds no frames ({', '.join(FRAME_SUFFIXES)}"
            + (f" matching '{pattern}'" if pattern else "") + "); point to the folder of frames or a movie/stack file"
        )
    suffixes = {p.suffix.lower() for p in files}
    if len(suffixes) > 1:
        raise InputError(f"folder '{folder}' mixes frame formats {sorted(suffixes)}; keep one format per series "
                         f"or select one with a pattern (e.g. '*.tif')")
    shapes: dict[Path, tuple[int, int]] = {}
    corrupt: list[str] = []
    for p in files:
        try:
            shapes[p] = _frame_shape(p)
        except _Corrupt:
            corrupt.append(str(p))
    if not shapes:
        raise InputError(f"none of the {len(files)} frames in '{folder}' can be read; are they complete?")
    first = next(iter(shapes))
    for p, s in shapes.items():
        if s != shapes[first]:
            raise InputError(
                f"frames of different sizes in '{folder}': '{first.name}' is {shapes[first][0]} x {shapes[first][1]} "
                f"but '{p.name}' is {s[0]} x {s[1]} pixels; crop or resample the frames to one size, or move the "
                f"odd ones out of the folder"
            )
    reader = FolderReader(tuple(str(p) for p in files), shapes[first])
    return _lazy_stack(reader, len(files), shapes[first], chunk_frames), reader, corrupt


def _open_movie(path: Path, *, chunk_frames: int) -> tuple[Any, MovieReader, float]:
    import imageio_ffmpeg

    try:
        gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="gray", bits_per_pixel=8)
        meta = next(gen)
        gen.close()
        n, _secs = imageio_ffmpeg.count_frames_and_secs(str(path))
    except (RuntimeError, OSError, StopIteration) as err:
        raise InputError(f"'{path}' could not be opened as a movie by ffmpeg: {err}") from err
    w, h = meta["size"]
    fps = float(meta.get("fps") or 0.0)
    if n < 1:
        raise InputError(f"movie '{path}' holds no frames")
    reader = MovieReader(str(path), (int(h), int(w)), int(n), fps)
    return _lazy_stack(reader, int(n), (int(h), int(w)), chunk_frames), reader, fps


def open_series(
    source: Any,
    *,
    pixel_size_nm: float | None = None,
    fps: float | None = None,
    times_s: Sequence[float] | None = None,
    chunk_frames: int = 16,
    pattern: str | None = None,
    index: int | None = None,
) -> ImageSeries:
    """Open an in situ series lazily.

    Parameters
    ----------
    source : str, Path, ImageSeries or array
        A multi-frame file (dm3/dm4/emd/ser/tif/hspy/zspy), a folder of frames, a movie
        (mp4/avi/mov/mkv/webm), an :class:`ImageSeries`, or a NumPy/Dask ``(t, y, x)`` array.
    pixel_size_nm : float, optional
        Pixel size (nm); required for folders of plain images, movies and arrays, and overrides a
        file's calibration.
    fps : float, optional
        Frame rate (frames per s); overrides a movie's rate and a file's time axis.
    times_s : sequence of float, optional
        One time stamp per frame (s); overrides ``fps``.
    chunk_frames : int
        Frames per Dask chunk.
    pattern : str, optional
        Glob pattern selecting the frames of a folder (e.g. ``"*.tif"``).
    index : int, optional
        Which signal of a multi-signal file (see :func:`layerscope.io.load`).

    Returns
    -------
    ImageSeries
        Lazy (Dask) data, float32 for folders and movies, chunked along time. The metadata holds
        ``frame_source`` (a description) and, for folders with unreadable files, ``corrupt_files``.

    Raises
    ------
    InputError
        Missing path, no frames, frames of different sizes, a single 2-D image, an unreadable movie.
    CalibrationError
        No pixel size where the source has none.
    """
    import dask.array as da

    if chunk_frames < 1:
        raise InputError(f"--chunk-frames {chunk_frames}: give at least 1 frame per task")
    if isinstance(source, ImageSeries):
        series = source
    elif isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if not path.exists():
            raise InputError(f"'{path}' does not exist; check the path (relative to {Path.cwd()})")
        # absolute: tasks may run in another working directory (worker processes, a cluster)
        path = path.resolve()
        if path.is_dir():
            data, reader, corrupt = _open_folder(path, pattern=pattern, chunk_frames=chunk_frames)
            _need_pixel_size(pixel_size_nm, path)
            md = {"title": path.name, "frame_source": "folder", "n_files": len(reader.files)}
            if corrupt:
                md["corrupt_files"] = corrupt
            series = ImageSeries.from_array(data, pixel_size_nm=pixel_size_nm, times_s=times_s, fps=fps,
                                            metadata=md, source=path)
            series.metadata["_reader"] = reader
            return _check_frames(series)
        if path.suffix.lower() in MOVIE_SUFFIXES:
            data, reader, movie_fps = _open_movie(path, chunk_frames=chunk_frames)
            _need_pixel_size(pixel_size_nm, path)
            rate = fps if fps is not None else (movie_fps if movie_fps > 0 else None)
            md = {"title": path.stem, "frame_source": "movie", "movie_fps": movie_fps}
            series = ImageSeries.from_array(data, pixel_size_nm=pixel_size_nm, times_s=times_s, fps=rate,
                                            metadata=md, source=path)
            series.metadata["_reader"] = reader
            return _check_frames(series)
        from layerscope.io import load

        loaded = load(path, pixel_size_nm=pixel_size_nm, fps=fps, lazy=True, index=index)
        if not isinstance(loaded, ImageSeries):
            raise InputError(
                f"'{path}' is a single {loaded.kind.replace('_', ' ')} of shape {loaded.shape}, not a series; "
                f"an in situ analysis needs at least 2 frames (a stack file, a folder of frames or a movie)"
            )
        series = _file_series(loaded, path, index=index, chunk_frames=chunk_frames)
    else:
        data = source if type(source).__module__.startswith("dask") else np.asarray(source)
        if data.ndim != 3:
            raise InputError(f"an array of shape {tuple(data.shape)} is not a series; give (frames, rows, cols)")
        _need_pixel_size(pixel_size_nm, None)
        series = ImageSeries.from_array(data, pixel_size_nm=pixel_size_nm, times_s=times_s, fps=fps,
                                        metadata={"title": "array", "frame_source": "array"})
    if times_s is not None or fps is not None:
        import dataclasses

        t = np.asarray(times_s, float) if times_s is not None else np.arange(series.shape[0]) / float(fps)
        series = dataclasses.replace(series, times_s=t)
    data = series.data
    if not type(data).__module__.startswith("dask"):
        data = da.from_array(data, chunks=(chunk_frames, -1, -1))
    elif data.chunks[0][0] != chunk_frames or len(data.chunks[1]) > 1 or len(data.chunks[2]) > 1:
        data = data.rechunk((chunk_frames, -1, -1))
    import dataclasses

    return _check_frames(dataclasses.replace(series, data=data))


def _file_series(loaded: ImageSeries, path: Path, *, index: int | None, chunk_frames: int) -> ImageSeries:
    """The loaded stack's calibration, with its frames read lazily by a :class:`FileReader`."""
    import dataclasses

    shape = tuple(int(v) for v in loaded.data.shape)
    if len(shape) != 3:
        raise InputError(f"'{path}' holds an array of shape {shape}; an in situ series is (frames, rows, cols)")
    reader = FileReader(str(path), index, (shape[1], shape[2]), shape[0])
    series = dataclasses.replace(loaded, data=_lazy_stack(reader, shape[0], reader.shape, chunk_frames))
    series.metadata.setdefault("frame_source", "file")
    series.metadata["_reader"] = reader
    return series


def _need_pixel_size(pixel_size_nm: float | None, path: Path | None) -> None:
    if pixel_size_nm is None:
        what = f"'{path}'" if path else "an array"
        raise CalibrationError(
            f"{what} carries no pixel size; give --pixel-size-nm (the pixel size in nm)"
        )


def _check_frames(series: ImageSeries) -> ImageSeries:
    if series.shape[0] < 2:
        raise InputError(
            f"{series.title}: a single frame; an in situ analysis needs at least 2 frames (for one image use "
            f"the imaging commands)"
        )
    return series


def read_frame(series: ImageSeries, i: int) -> np.ndarray:
    """Frame ``i`` as float32 (NaN where it cannot be read), reading that frame only.

    Folders, movies and stack files go through their reader (one file or frame, not the whole
    chunk of ``chunk_frames`` frames that indexing the Dask array would decode).
    """
    reader = series.metadata.get("_reader")
    if reader is not None:
        try:
            return np.asarray(reader.read(i), np.float32)
        except Exception:  # the frame is reported by diagnose_frame where it matters
            return np.full(series.shape[1:], np.nan, np.float32)
    from layerscope.parallel import compute_here

    frame = series.data[i]
    return np.asarray(compute_here(frame) if hasattr(frame, "dask") else frame, np.float32)


def diagnose_frame(series: ImageSeries, i: int) -> str:
    """Why frame ``i`` could not be read (the reader's error), or ``"ok"``."""
    reader = series.metadata.get("_reader")
    if reader is None:
        try:
            frame = np.asarray(series.data[i])
        except Exception as err:  # the lazy reader failed
            return f"frame {i}: {err}"
        return "ok" if np.all(np.isfinite(frame)) else f"frame {i} contains NaN or infinite values"
    try:
        reader.read(i)
    except Exception as err:
        return f"{reader.describe(i)}: {err}"
    return "ok"
