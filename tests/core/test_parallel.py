"""Dask fan-out: local threads and a real dask.distributed LocalCluster give the same results."""

import numpy as np
import pytest

from layerscope.errors import InputError
from layerscope.parallel import map_tasks


def _frame_statistic(seed: int, *, size: int = 64) -> tuple[int, float]:
    """A deterministic per-item computation (module level so that workers can unpickle it)."""
    rng = np.random.default_rng(seed)
    image = rng.poisson(5.0, size=(size, size)).astype(float)
    return seed, float(np.fft.rfft2(image).real.sum())


def test_local_threads_equal_in_process_and_keep_order():
    items = list(range(7))
    expected = [_frame_statistic(i, size=32) for i in items]
    assert map_tasks(_frame_statistic, items, size=32, progress=True) == expected
    assert map_tasks(_frame_statistic, items, size=32, scheduler="sync", progress=False) == expected
    assert map_tasks(_frame_statistic, [], size=32) == []


def _pid(item: int) -> tuple[int, int]:
    import os
    import time

    time.sleep(0.3)
    return item, os.getpid()


def test_local_processes_use_every_worker_and_keep_order(monkeypatch):
    import layerscope.parallel as par

    monkeypatch.setattr(par, "default_workers", lambda: 2)
    items = list(range(7))
    expected = [_frame_statistic(i, size=32) for i in items]
    assert map_tasks(_frame_statistic, items, size=32, scheduler="processes", progress=False) == expected
    # four tasks on two processes: both work (Dask's default batches six tasks to one process)
    got = map_tasks(_pid, range(4), scheduler="processes", progress=False)
    assert [i for i, _ in got] == [0, 1, 2, 3]
    assert len({pid for _, pid in got}) == 2


def test_distributed_local_cluster_equals_in_process():
    from distributed import LocalCluster

    items = list(range(6))
    expected = [_frame_statistic(i) for i in items]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        assert map_tasks(_frame_statistic, items, scheduler=cluster.scheduler_address) == expected


def test_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(InputError, match="no Dask scheduler answered"):
        map_tasks(_frame_statistic, [1], scheduler="tcp://127.0.0.1:9")
