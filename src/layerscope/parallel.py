"""The one place layerscope talks to Dask.

Per-frame, per-file and per-site work fans out through :func:`map_tasks`; lazy (Dask) collections
are evaluated through :func:`compute`. By default both run on Dask's local threaded scheduler in
this process; given the address of a running ``dask.distributed`` scheduler (``tcp://host:8786``)
they submit the same tasks there. Results come back in input order and equal the in-process run.
Dask (and tqdm) are imported on first use, so a command that fans nothing out does not pay for them.

Progress: steps that take longer than about 2 s show a labelled tqdm bar on stderr, only when
stderr is a terminal (never in logs, pipes or tests); see :func:`progress_bar`.

Scheduler addresses are checked before Dask sees them: a malformed address, an unknown host, a
refused or unreachable port, or something that is not a Dask scheduler is one line
(:class:`~layerscope.errors.InputError`) after at most a few seconds.
"""

from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from layerscope.errors import InputError

__all__ = ["map_tasks", "compute", "compute_here", "in_task", "progress", "progress_bar", "get_client", "scheduler_context",
           "default_workers", "check_scheduler_address", "session", "CONNECT_TIMEOUT_S", "PROGRESS_DELAY_S"]

T = TypeVar("T")
R = TypeVar("R")

#: seconds to wait for a scheduler to answer before giving up
CONNECT_TIMEOUT_S = 4.0
#: a progress bar appears only once its step has run this long (s)
PROGRESS_DELAY_S = 2.0

_LOCAL = ("threads", "processes", "sync", "synchronous")
_ADDRESS = re.compile(r"^(?:(?P<proto>[a-z]+)://)?(?P<host>\[[0-9a-fA-F:]+\]|[^:/\s\[\]]+):(?P<port>\d{1,5})/?$")


def default_workers() -> int:
    """Number of local worker threads: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def _bars_shown() -> bool:
    """Progress bars only on an interactive terminal (stderr), never in logs or captured output."""
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # closed or replaced stream
        return False


def progress_bar(total: int | None, description: str, *, enabled: bool = True):
    """A labelled tqdm bar on stderr: shown only on a terminal, and only after ``PROGRESS_DELAY_S``.

    Parameters
    ----------
    total : int or None
        Number of steps.
    description : str
        The label (what is being done, e.g. ``"in situ: frames"``).
    enabled : bool
        False: never shown.
    """
    if not (enabled and _bars_shown()):
        return _NoBar(total)  # no tqdm import (0.07 s of a new process) for a bar nobody sees
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="task", leave=False, delay=PROGRESS_DELAY_S,
                file=sys.stderr, dynamic_ncols=True)


class _NoBar:
    """The part of a tqdm bar that layerscope uses, doing nothing (stderr is not a terminal)."""

    def __init__(self, total: int | None) -> None:
        self.total, self.n = total, 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def close(self) -> None:
        pass

    def set_description(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> "_NoBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


def progress(iterable: Iterable[T], description: str = "", *, total: int | None = None,
             enabled: bool = True) -> Iterator[T]:
    """Wrap a long loop in a labelled progress bar (see :func:`progress_bar`)."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    bar = progress_bar(total, description, enabled=enabled)

    def _gen() -> Iterator[T]:
        try:
            for item in iterable:
                yield item
                bar.update(1)
        finally:
            bar.close()

    return _gen()


def check_scheduler_address(address: str) -> str:
    """The scheduler address, checked: well formed, host known, port open (a few seconds at most).

    Returns
    -------
    str
        The address with its protocol (``tcp://`` when none was given).

    Raises
    ------
    InputError
        One line saying what is wrong and what to give instead.
    """
    text = str(address).strip()
    if text.startswith("inproc://"):  # a cluster in this very process (LocalCluster(processes=False))
        return text
    m = _ADDRESS.match(text)
    fix = ("give --scheduler tcp://HOST:PORT of a running 'dask scheduler' (e.g. tcp://10.0.0.5:8786), "
           "threads or processes, or leave --scheduler out to run in this process")
    if m is None or not (0 < int(m["port"]) < 65536):
        raise InputError(f"--scheduler '{address}' is not a scheduler address; {fix}")
    proto = m["proto"] or "tcp"
    if proto not in ("tcp", "tls", "ws", "wss", "ucx"):
        raise InputError(f"--scheduler '{address}': unknown protocol '{proto}://'; {fix}")
    full = f"{proto}://{m['host']}:{m['port']}"
    if proto in ("tcp", "tls", "ws", "wss"):
        _probe(address, m["host"].strip("[]"), int(m["port"]), handshake=proto == "tcp")
    return full


def _probe(address: str, host: str, port: int, *, handshake: bool) -> None:
    """Open (and close) a TCP connection to the scheduler's port, with a short timeout.

    With ``handshake``, also wait for the first bytes: a Dask scheduler speaks first on plain TCP
    (its handshake), a port that answers but stays silent is something else (Dask would hang there).
    """
    import socket

    hint = ("start one with 'dask scheduler' and 'dask worker ADDRESS', check --scheduler, "
            "or leave --scheduler out to run in this process")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as err:
        raise InputError(f"no Dask scheduler answered at '{address}': unknown host '{host}' "
                         f"({getattr(err, 'strerror', None) or err}); {hint}") from None
    last: Exception | None = None
    for family, kind, proto, _, sockaddr in infos:
        try:
            with socket.socket(family, kind, proto) as s:
                s.settimeout(CONNECT_TIMEOUT_S)
                s.connect(sockaddr)
                if handshake and not _speaks(s):
                    raise InputError(
                        f"no Dask scheduler answered at '{address}': something listens there but sent no Dask "
                        f"handshake within {CONNECT_TIMEOUT_S:g} s; check the port of --scheduler (a 'dask "
                        f"scheduler' listens on 8786 by default) or leave --scheduler out")
            return
        except socket.timeout:
            last = TimeoutError(f"no answer within {CONNECT_TIMEOUT_S:g} s")
        except OSError as err:
            last = err
    why = getattr(last, "strerror", None) or str(last)
    raise InputError(f"no Dask scheduler answered at '{address}' ({why}); {hint}") from None


def _speaks(sock: Any) -> bool:
    """Whether the peer sends its first bytes within the timeout."""
    import socket

    try:
        return len(sock.recv(1)) > 0
    except (socket.timeout, OSError):
        return False


def get_client(address: str):
    """A ``dask.distributed.Client`` connected to the scheduler at ``address``.

    Raises
    ------
    InputError
        When the address is malformed or no scheduler answers there within a few seconds.
    """
    import logging

    full = check_scheduler_address(address)
    from distributed import Client

    quiet = [logging.getLogger(n) for n in ("distributed", "distributed.client", "distributed.comm", "tornado")]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.CRITICAL)
    try:
        return Client(full, timeout=f"{CONNECT_TIMEOUT_S:g}s", set_as_default=False)
    except Exception as err:  # noqa: BLE001 - whatever distributed raises, the user gets one line
        why = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(
            f"no Dask scheduler answered at '{address}' (the port is open but the Dask handshake failed: {why}); "
            f"check that --scheduler is the address of a 'dask scheduler', or leave --scheduler out"
        ) from None
    finally:
        for lg, lv in zip(quiet, levels):
            lg.setLevel(lv)


def _close(client: Any) -> None:
    try:
        client.close(timeout=CONNECT_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - closing a lost connection must not hide the result or the error
        pass


@contextmanager
def session(scheduler: Any = None) -> Iterator[Any]:
    """One connection for a whole command: an address becomes a connected client (checked now, closed at
    the end); anything else (None, "threads", "processes", "sync", a client) is passed through."""
    if isinstance(scheduler, str) and scheduler not in _LOCAL:
        client = get_client(scheduler)
        try:
            yield client
        finally:
            _close(client)
    else:
        yield scheduler


@contextmanager
def scheduler_context(scheduler: Any = None) -> Iterator[dict[str, Any]]:
    """Keyword arguments for ``dask.compute`` that select the scheduler.

    ``None`` or ``"threads"``: local threads; ``"processes"``: local worker processes (for
    tasks that hold the GIL; each task's arguments are pickled to it); ``"sync"``: one thread
    (debugging); a ``distributed.Client``: that client; a string address: a client connected to
    it for the duration of the block.
    """
    if _local_threads(scheduler):
        import dask.threaded

        # the threaded scheduler's function, not its name: Dask resolves a name by importing
        # ``distributed`` to look for a default client (0.3 s CPU, 0.7 s wall per process)
        yield {"scheduler": dask.threaded.get, "num_workers": default_workers()}
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
            _close(client)
    else:  # a distributed.Client given by the caller
        yield {"scheduler": scheduler}


def _local_threads(scheduler: Any) -> bool:
    """None, ``"threads"`` or Dask's threaded ``get``: this process's threads."""
    if scheduler is None or (isinstance(scheduler, str) and scheduler == "threads"):
        return True
    return callable(scheduler) and getattr(scheduler, "__module__", "") == "dask.threaded" \
        and getattr(scheduler, "__name__", "") == "get"


def _is_client(obj: Any) -> bool:
    """A ``distributed.Client`` (or one that behaves like it), not a name or a Dask get function."""
    return hasattr(obj, "submit") and hasattr(obj, "gather")


def _gather(client: Any, futures: list, bar: Any) -> list:
    """Results of ``futures`` in their order; the bar moves as they come in (in order)."""
    out = []
    for f in futures:
        out.append(f.result())
        bar.update(1)
    return out


def map_tasks(
    func: Callable[..., R],
    items: Sequence[T] | Iterable[T],
    *,
    scheduler: Any = None,
    progress: bool = True,
    description: str = "",
    **kwargs: Any,
) -> list[R]:
    """Apply ``func(item, **kwargs)`` to every item; results in input order.

    Local threads (the default, ``"threads"``): Dask's threaded scheduler with :func:`default_workers`
    threads; a ``dask.distributed`` client or address: its workers.

    Parameters
    ----------
    func : callable
        A top-level (picklable) function.
    items : sequence
        One task per item.
    scheduler : None, str or distributed.Client
        See :func:`scheduler_context`; ``"tcp://host:8786"`` runs on that cluster.
    progress : bool
        Allow a labelled progress bar (see :func:`progress_bar`: terminal only, after 2 s).
    description : str
        The progress bar's label.
    **kwargs
        Passed to every call of ``func``.
    """
    items = list(items)
    if not items:
        return []
    import dask

    with scheduler_context(scheduler) as opts:
        client = opts.get("scheduler")
        with progress_bar(len(items), description or getattr(func, "__name__", "tasks"), enabled=progress) as bar:
            if _is_client(client):
                return _gather(client, client.map(func, items, pure=False, **kwargs), bar)
            tasks = [dask.delayed(func, pure=False)(item, **kwargs) for item in items]
            with _BarCallback(bar, prefix=None):
                return list(dask.compute(*tasks, optimize_graph=False, **opts))


def compute(*collections: Any, scheduler: Any = None, progress: bool = False, description: str = "",
            count: str | None = None) -> tuple:
    """Evaluate Dask collections (arrays, delayed objects) on the chosen scheduler.

    Parameters
    ----------
    *collections
        Dask collections (or plain values, returned as they are).
    scheduler : None, str or distributed.Client
        See :func:`scheduler_context`.
    progress : bool
        Allow a labelled progress bar (terminal only, after 2 s).
    description : str
        The bar's label.
    count : str, optional
        Locally, the bar counts only tasks whose name starts with this (e.g. the per-chunk function's
        name); on a cluster it counts finished collections.

    Returns
    -------
    tuple
        One result per collection, in order.
    """
    if not collections:
        return ()
    with scheduler_context(scheduler) as opts:
        client = opts.get("scheduler")
        if _is_client(client):
            with progress_bar(len(collections), description, enabled=progress) as bar:
                return tuple(_gather(client, client.compute(list(collections)), bar))
        import dask

        with progress_bar(None, description, enabled=progress) as bar:
            with _BarCallback(bar, prefix=count):
                return dask.compute(*collections, **opts)


def compute_here(collection: Any) -> Any:
    """Evaluate a collection in the calling thread (inside a task: never re-enters a cluster)."""
    import dask

    return dask.compute(collection, scheduler="sync")[0]


@contextmanager
def in_task() -> Iterator[None]:
    """Inside a task: any Dask evaluation (explicit or by a library) runs in the calling thread,
    not on the cluster's client that a ``dask.distributed`` worker would otherwise use."""
    import dask

    with dask.config.set(scheduler="sync"):
        yield


class _BarCallback:
    """A Dask local-scheduler callback that advances a bar once per finished (matching) task."""

    def __init__(self, bar: Any, *, prefix: str | None) -> None:
        from dask.callbacks import Callback
        from dask.utils import key_split

        want = None if prefix is None else prefix.lstrip("_")  # key_split drops leading underscores

        def counted(key: Any) -> bool:
            return want is None or key_split(key).lstrip("_").startswith(want)

        class _CB(Callback):
            def _start_state(self, dsk, state):  # noqa: D401 - dask hook
                if bar.total is None:
                    bar.total = sum(1 for k in dsk if counted(k))

            def _posttask(self, key, result, dsk, state, worker_id):  # noqa: D401 - dask hook
                if counted(key) and (bar.total is None or bar.n < bar.total):
                    bar.update(1)

        self._cb = _CB()

    def __enter__(self) -> "_BarCallback":
        self._cb.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._cb.__exit__(*exc)
