"""Workers of the tile engine: local processes (one start method) and Dask, with bounded submission.

Local workers start from a clean ``forkserver`` (``spawn`` where unavailable), never forked from the parent:
the parent may hold an onnxruntime session with live threads, which must not be copied into a child. Each worker
watches the run's process and exits when it ends (see :func:`_worker_init`) and ignores Ctrl-C (the parent
handles it), so killing a run never leaves workers behind.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

def _worker_init(parent_pid: int) -> None:
    """Worker start-up: leave Ctrl-C to the parent, and exit when the parent process ends.

    A forkserver worker's own parent is the fork server, not the run, so the run's process is watched directly:
    a daemon thread waits on a pidfd of ``parent_pid`` (Linux >= 5.3; polling once a second elsewhere) and ends
    the worker when it exits (also after ``kill -9``), so no orphaned worker keeps computing.
    """
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent_pid,), daemon=True, name="spindledx-parent-watch").start()


def _exit_with(parent_pid: int) -> None:
    import select
    import time

    try:
        fd = os.pidfd_open(parent_pid)
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        select.select([fd], [], [])  # readable when the process has exited
    else:
        while True:
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(1.0)
    os._exit(1)


def mp_context() -> Any:
    """The one start method of local workers: forkserver, else spawn."""
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def run_local(func: Callable[..., R], items: Iterable[T], *, jobs: int,
              args: Callable[[T], tuple] = lambda item: (item,), kwargs: dict | None = None,
              on_error: Callable[[T, BaseException], R] | None = None) -> Iterator[tuple[T, R]]:
    """``func(*args(item), **kwargs)`` for every item, in this process (``jobs == 1``) or in ``jobs`` worker
    processes; yields ``(item, result)`` as they finish.

    At most ``2 * jobs`` items are in flight, so ``args`` (e.g. reading a tile) runs just ahead of the workers.
    A worker that dies (killed, out of memory) gives ``on_error(item, exc)`` when given, else the error is
    raised. On an interruption the queued items are dropped and the workers are stopped.
    """
    kwargs = kwargs or {}
    if jobs <= 1:
        for item in items:
            yield item, func(*args(item), **kwargs)
        return
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pending: dict[Any, T] = {}
    queue = iter(items)
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=mp_context(), initializer=_worker_init,
                               initargs=(os.getpid(),))

    def submit_next() -> None:
        item = next(queue, None)
        if item is not None:
            pending[pool.submit(func, *args(item), **kwargs)] = item

    try:
        for _ in range(2 * jobs):
            submit_next()
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for fut in done:
                item = pending.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool as exc:
                    if on_error is None:
                        raise
                    result = on_error(item, exc)
                yield item, result
                submit_next()
    finally:  # also on an interruption: drop queued items, stop the workers
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def run_dask(func: Callable[..., R], items: Iterable[T], *, address: str, jobs: int,
             args: Callable[[T], tuple] = lambda item: (item,), kwargs: dict | None = None,
             on_error: Callable[[T, BaseException], R] | None = None) -> Iterator[tuple[T, R]]:
    """As :func:`run_local`, on a Dask cluster: ``address == "local"`` starts a local cluster of ``jobs``
    single-threaded worker processes; otherwise ``address`` is a scheduler (``tcp://host:8786``)."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:  # pragma: no cover - dask is a dependency; a clear line if it was removed
        from spindledx.errors import BadInputError

        raise BadInputError("dask needs dask[distributed]: pip install 'spindledx[cluster]'",
                            parameters="dask") from None
    kwargs = kwargs or {}
    cluster = None
    if address == "local":
        quiet = ["spindledx.engine.quiet_worker"]  # Ctrl-C stops this process only, which closes the cluster
        cluster = LocalCluster(n_workers=max(1, jobs), threads_per_worker=1, processes=True, dashboard_address=":0",
                               preload=quiet, preload_nanny=quiet, silence_logs=logging.CRITICAL)
        client = Client(cluster)
    else:
        client = Client(address)
    futures: dict[Any, T] = {}
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        queue = iter(items)

        def submit_next(ac: Any | None) -> None:
            item = next(queue, None)
            if item is None:
                return
            fut = client.submit(func, *args(item), pure=False, **kwargs)
            futures[fut] = item
            if ac is not None:
                ac.add(fut)

        for _ in range(2 * n_workers):
            submit_next(None)
        ac = as_completed(list(futures))
        for fut in ac:
            item = futures.pop(fut)
            try:
                result = fut.result()
            except Exception as exc:  # e.g. KilledWorker
                if on_error is None:
                    raise
                result = on_error(item, exc)
            yield item, result
            submit_next(ac)
    finally:
        if futures:
            client.cancel(list(futures))
        client.close()
        if cluster is not None:
            cluster.close()
