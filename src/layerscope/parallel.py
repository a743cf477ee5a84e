"""The one place layerscope talks to Dask.

Per-frame, per-file and per-site work fans out through :func:`map_tasks`. By default it runs on
Dask's local threaded scheduler in this process; given the address of a running
``dask.distributed`` scheduler (``tcp://host:8786``) it submits the same tasks there. Results come
back in input order and equal the in-process run. Progress bars (tqdm) show on long runs.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

import dask
from tqdm.auto import tqdm

from layerscope.errors import InputError

__all__ = ["map_tasks", "progress", "get_client", "scheduler_context", "default_workers"]

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """Number of local worker threads: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def progress(iterable: Iterable[T], description: str = "", *, total: int | None = None,
             enabled: bool = True) -> Iterator[T]:
    """Wrap a long loop in a tqdm progress bar (written to stderr; off when ``enabled`` is False)."""
    return iter(tqdm(iterable, desc=description, total=total, disable=not enabled, leave=False))


def get_client(address: str):
    """A ``dask.distributed.Client`` connected to the scheduler at ``address``.

    Raises
    ------
    InputError
        When no scheduler answers at ``address``.
    """
    from distributed import Client

    try:
        return Client(address, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise InputError(
            f"no Dask scheduler answered at '{address}' ({err}); start one with 'dask scheduler' "
            f"and 'dask worker ADDRESS', or leave --scheduler out to run in this process"
        ) from err


@contextmanager
def scheduler_context(scheduler: Any = None) -> Iterator[dict[str, Any]]:
    """Keyword arguments for ``dask.compute`` that select the scheduler.

    ``None`` or ``"threads"``: local threads; ``"processes"``: local worker processes (for
    tasks that hold the GIL; each task's arguments are pickled to it); ``"sync"``: one thread
    (debugging); a
    ``distributed.Client``: that client; a string address: a client connected to it for the
    duration of the block.
    """
    if scheduler is None or scheduler == "threads":
        yield {"scheduler": "threads", "num_workers": default_workers()}
    elif scheduler == "processes":
        # chunksize 1: Dask batches 6 tasks per process by default, so a short list runs on one
        yield {"scheduler": "processes", "num_workers": default_workers(), "chunksize": 1}
    elif scheduler in ("sync", "synchronous"):
        yield {"scheduler": "sync"}
    elif isinstance(scheduler, str):
        client = get_client(scheduler)
        try:
            yield {"scheduler": client}
        finally:
            client.close()
    else:  # a distributed.Client given by the caller
        yield {"scheduler": scheduler}


def map_tasks(
    func: Callable[..., R],
    items: Sequence[T] | Iterable[T],
    *,
    scheduler: Any = None,
    progress: bool = True,
    description: str = "",
    **kwargs: Any,
) -> list[R]:
    """Apply ``func(item, **kwargs)`` to every item through Dask; results in input order.

    Parameters
    ----------
    func : callable
        A top-level (picklable) function.
    items : sequence
        One task per item.
    scheduler : None, str or distributed.Client
        See :func:`scheduler_context`; ``"tcp://host:8786"`` runs on that cluster.
    progress : bool
        Show a progress bar (tqdm locally, ``distributed``'s progress on a cluster).
    description : str
        The progress bar's label.
    **kwargs
        Passed to every call of ``func``.
    """
    items = list(items)
    if not items:
        return []
    with scheduler_context(scheduler) as opts:
        client = opts.get("scheduler")
        if client is not None and not isinstance(client, str):
            futures = client.map(func, items, pure=False, **kwargs)
            if progress:  # results are awaited in order; the bar moves as each one is in
                return [f.result() for f in tqdm(futures, desc=description, leave=False)]
            return client.gather(futures)
        tasks = [dask.delayed(func, pure=False)(item, **kwargs) for item in items]
        if progress and len(items) > 1:

            with _TqdmCallback(len(items), description):
                return list(dask.compute(*tasks, optimize_graph=False, **opts))
        return list(dask.compute(*tasks, **opts))


class _TqdmCallback:
    """A Dask local-scheduler callback that advances a tqdm bar once per finished task."""

    def __init__(self, total: int, description: str) -> None:
        from dask.callbacks import Callback

        bar = tqdm(total=total, desc=description, leave=False)
        self._bar = bar

        class _CB(Callback):
            def _posttask(self, key, result, dsk, state, worker_id):  # noqa: D401 - dask hook
                if bar.n < total:
                    bar.update(1)

        self._cb = _CB()

    def __enter__(self) -> "_TqdmCallback":
        self._cb.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._cb.__exit__(*exc)
        self._bar.close()
