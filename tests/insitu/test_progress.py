"""Progress bars: labelled, on a terminal only, and only for steps longer than PROGRESS_DELAY_S."""

from __future__ import annotations

import time

import pytest

from layerscope import parallel
from layerscope.insitu.pipeline import InsituOptions, analyse_series
from layerscope.insitu.synthetic import synthetic_series


def _nap(item: int) -> int:
    time.sleep(0.05)
    return item * 2


@pytest.fixture
def terminal(monkeypatch):
    """Pretend stderr is a terminal."""
    monkeypatch.setattr(parallel, "_bars_shown", lambda: True)


def test_no_bar_when_stderr_is_not_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(parallel, "PROGRESS_DELAY_S", 0.0)
    assert parallel.map_tasks(_nap, range(3), description="demo step", scheduler="sync") == [0, 2, 4]
    assert capsys.readouterr().err == ""


def test_labelled_bar_on_a_terminal(capsys, monkeypatch, terminal):
    monkeypatch.setattr(parallel, "PROGRESS_DELAY_S", 0.0)
    assert parallel.map_tasks(_nap, range(3), description="demo step", scheduler="sync") == [0, 2, 4]
    err = capsys.readouterr().err
    assert "demo step" in err and "/3 " in err


def test_short_steps_show_no_bar_even_on_a_terminal(capsys, terminal):
    assert parallel.PROGRESS_DELAY_S == pytest.approx(2.0)
    assert parallel.map_tasks(_nap, range(3), description="demo step", scheduler="sync") == [0, 2, 4]
    assert capsys.readouterr().err == ""


def test_insitu_bar_counts_chunks(capsys, monkeypatch, terminal):
    """The in situ bar counts the per-chunk tasks (3 chunks of 2 frames), not Dask's internal tasks."""
    bars = []
    make = parallel.progress_bar

    def recording(*args, **kwargs):
        bars.append(make(*args, **kwargs))
        return bars[-1]

    monkeypatch.setattr(parallel, "progress_bar", recording)
    monkeypatch.setattr(parallel, "PROGRESS_DELAY_S", 0.0)
    series, _ = synthetic_series(shape=(96, 96), n_frames=6, counts_per_pixel=300.0, seed=2)
    analyse_series(series, options=InsituOptions(chunk_frames=2, voids=False, cracks=False), progress=True)
    (bar,) = [b for b in bars if b.desc.startswith("in situ")]
    assert bar.desc == "in situ: 6 frames in 3 chunks"
    assert bar.total == 3 and bar.n == 3
    assert "in situ: 6 frames in 3 chunks" in capsys.readouterr().err
