"""Series input: folders of frames, movies, stacks; bad input (sizes, single frame, times, corrupt frames)."""

from __future__ import annotations

import numpy as np
import pytest

from layerscope.errors import CalibrationError, InputError
from layerscope.insitu.pipeline import InsituOptions, analyse_series
from layerscope.insitu.series import open_series
from layerscope.insitu.synthetic import VoidSpec, synthetic_series


@pytest.fixture(scope="module")
def small_series():
    voids = [VoidSpec(2.5, 2.5, 0.6), VoidSpec(5.0, 4.5, 0.7)]
    return synthetic_series(shape=(160, 160), n_frames=6, voids=voids, counts_per_pixel=200.0, seed=31)


def _write_folder(folder, frames, *, names=None, fmt="tif"):
    import tifffile

    folder.mkdir()
    names = names or [f"frame_{i}.{fmt}" for i in range(len(frames))]
    for name, f in zip(names, frames):
        if fmt == "tif":
            tifffile.imwrite(folder / name, np.asarray(f, np.uint16))
        elif fmt == "npy":
            np.save(folder / name, np.asarray(f, np.float32))
    return folder


def test_folder_is_lazy_and_in_natural_order(tmp_path, small_series):
    series, _ = small_series
    frames = np.asarray(series.data)
    folder = _write_folder(tmp_path / "f", frames)  # frame_0 ... frame_5 (frame_10 would come after frame_9)
    s = open_series(folder, pixel_size_nm=0.04, fps=2.0, chunk_frames=4)
    assert s.is_lazy and s.data.chunks[0] == (4, 2)
    np.testing.assert_array_equal(np.asarray(s.data), frames.astype(np.uint16).astype(np.float32))
    np.testing.assert_allclose(s.times_s, np.arange(6) / 2.0)
    # natural order: 2 before 10
    names = [f"img{k}.npy" for k in (10, 2, 1)]
    folder2 = _write_folder(tmp_path / "g", [np.full((16, 16), k, np.float32) for k in (10, 2, 1)], names=names, fmt="npy")
    s2 = open_series(folder2, pixel_size_nm=0.1, fps=1.0)
    np.testing.assert_array_equal(np.asarray(s2.data)[:, 0, 0], [1, 2, 10])


def test_frames_of_different_sizes_are_refused(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    np.save(folder / "a0.npy", np.zeros((32, 32), np.float32))
    np.save(folder / "a1.npy", np.zeros((32, 40), np.float32))
    with pytest.raises(InputError, match="different sizes.*a0.npy.*a1.npy"):
        open_series(folder, pixel_size_nm=0.1, fps=1.0)


def test_single_frame_and_missing_calibration(tmp_path, small_series):
    series, _ = small_series
    one = np.asarray(series.data[:1])
    with pytest.raises(InputError, match="at least 2 frames"):
        open_series(one, pixel_size_nm=0.04, fps=1.0)
    with pytest.raises(CalibrationError, match="--pixel-size-nm"):
        open_series(np.asarray(series.data), fps=1.0)
    no_times = open_series(np.asarray(series.data), pixel_size_nm=0.04)
    with pytest.raises(CalibrationError, match="--fps"):
        analyse_series(no_times)


@pytest.mark.parametrize("policy", ["skip", "stop"])
def test_corrupt_frame_in_the_middle(tmp_path, small_series, policy):
    series, truth = small_series
    folder = _write_folder(tmp_path / "c", np.asarray(series.data))
    (folder / "frame_3.tif").write_bytes(b"II*\x00 not really a tiff")  # truncated / corrupt
    res = analyse_series(open_series(folder, pixel_size_nm=0.04, fps=1.0, chunk_frames=2),
                         options=InsituOptions(on_bad_frame=policy))
    assert list(res.bad_frames["frame"]) == [3]
    assert "frame_3.tif" in res.bad_frames["reason"].iloc[0]
    if policy == "skip":  # reported, and the analysis goes on past it, drift bridged over the gap
        assert len(res.frames) == 6 and res.stopped_at is None
        assert res.frames.loc[3, "status"].startswith("unreadable")
        ok = res.frames["status"] == "ok"
        err = np.hypot(res.frames["drift_y_px"] - truth.drift_y_px, res.frames["drift_x_px"] - truth.drift_x_px)[ok]
        assert err.max() <= 0.1
        assert list(res.frames.loc[ok, "n_voids"]) == [2] * 5
    else:  # stops there and keeps the three frames before it
        assert res.stopped_at == 3 and len(res.frames) == 3
        assert list(res.frames["n_voids"]) == [2, 2, 2]
        assert res.summary["status"] == "stopped at frame 3"


@pytest.mark.parametrize("suffix, codec", [(".mp4", "libx264"), (".avi", "mjpeg")])
def test_movie_frames_order_and_rate(tmp_path, suffix, codec):
    import imageio_ffmpeg

    path = tmp_path / f"rec{suffix}"
    writer = imageio_ffmpeg.write_frames(str(path), (96, 64), pix_fmt_in="rgb24", fps=7.5, codec=codec, quality=9,
                                         macro_block_size=16, output_params=["-g", "5"], ffmpeg_log_level="error")
    writer.send(None)
    for i in range(20):  # an RGB screen recording: a bright bar marks the frame number
        f = np.full((64, 96, 3), 40, np.uint8)
        f[:, 4 * i : 4 * i + 4] = (250, 250, 250)
        writer.send(f.tobytes())
    writer.close()
    s = open_series(path, pixel_size_nm=0.2, chunk_frames=6)
    assert s.shape == (20, 64, 96) and s.is_lazy
    np.testing.assert_allclose(s.times_s, np.arange(20) / 7.5, atol=1e-9)
    data = np.asarray(s.data)
    bars = [int(np.argmax(frame[32])) // 4 for frame in data]
    assert bars == list(range(20))  # every chunk seeks to its own first frame
    s2 = open_series(path, pixel_size_nm=0.2, fps=30.0)  # --fps overrides the movie's rate
    assert s2.times_s[1] == pytest.approx(1 / 30.0)


def test_multi_frame_tif_through_the_loader(tmp_path, small_series):
    import tifffile

    series, _ = small_series
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.asarray(series.data, np.uint16))
    s = open_series(path, pixel_size_nm=0.04, fps=1.0, chunk_frames=4)
    assert s.shape == series.shape and s.is_lazy
    np.testing.assert_array_equal(np.asarray(s.data[2]), np.asarray(series.data[2], np.uint16))


def _hyperspy_stack(series, *, time_scale_s: float, time_units: str = "s"):
    import hyperspy.api as hs

    s = hs.signals.Signal2D(np.asarray(series.data, np.float32))
    t = s.axes_manager.navigation_axes[0]
    t.name, t.scale, t.units = "time", time_scale_s, time_units
    for ax in s.axes_manager.signal_axes:
        ax.scale, ax.units = series.pixel_size_nm * 10, "Å"  # written in Å: read back in nm
    return s


@pytest.mark.parametrize("suffix", [".hspy", ".emd"])
def test_multi_frame_hspy_and_emd_stacks_carry_their_times_and_pixel_size(tmp_path, small_series, suffix):
    """HyperSpy and NCEM/Berkeley EMD stacks: read lazily, times and pixel size from the file (no --fps)."""
    series, _ = small_series
    path = tmp_path / f"stack{suffix}"
    _hyperspy_stack(series, time_scale_s=250.0, time_units="ms").save(path)
    s = open_series(path, chunk_frames=4)
    assert s.shape == series.shape and s.is_lazy
    assert s.pixel_size_nm == pytest.approx(series.pixel_size_nm, rel=1e-9)
    np.testing.assert_allclose(s.times_s, 0.25 * np.arange(series.shape[0]), atol=1e-12)
    np.testing.assert_array_equal(np.asarray(s.data[3]), np.asarray(series.data[3], np.float32))


def test_a_three_axis_stack_without_a_time_axis_is_refused_not_guessed(tmp_path, small_series):
    """An EMD cube whose first axis is not time (e.g. a focal series in nm) is not read as a movie."""
    series, _ = small_series
    path = tmp_path / "cube.emd"
    s = _hyperspy_stack(series, time_scale_s=2.0, time_units="nm")
    s.axes_manager.navigation_axes[0].name = "defocus"
    s.save(path)
    with pytest.raises(InputError, match="not supported"):
        open_series(path)
