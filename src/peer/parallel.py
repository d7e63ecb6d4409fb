"""Independent runs of an experiment on every core, or on a Dask cluster.

:func:`map_runs` is ``[fn(t) for t in tasks]`` with the same results in the
same order, whatever executes it: each task carries its own seed, so no run
depends on which worker ran it or when.  ``workers=1`` runs in this process
(the tests, and machines where fork is unwelcome); more uses a process pool;
``dask="tcp://HOST:PORT"`` sends the tasks to a Dask distributed scheduler
(``pip install 'peer[dask]'``), and ``dask="local"`` starts a LocalCluster.

While it runs, a rich progress bar with an ETA goes to stderr when stderr is
a terminal, and nothing otherwise (logs and CI stay clean).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from peer.errors import PeerError

T = TypeVar("T")
R = TypeVar("R")


class ParallelError(PeerError):
    """The executor could not be set up (no Dask installed, scheduler unreachable)."""


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def map_runs(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    *,
    workers: int | None = None,
    dask: str | None = None,
    label: str = "runs",
    on_done: Callable[[int, int], None] | None = None,
) -> list[R]:
    """``[fn(t) for t in tasks]``, in order; ``fn`` and the tasks must pickle unless workers == 1."""
    total = len(tasks)
    workers = default_workers() if workers is None else workers
    with _progress(label, total) as advance:
        def done(count: int) -> None:
            advance(count)
            if on_done is not None:
                on_done(count, total)

        if dask is not None:
            return _map_dask(fn, tasks, dask, done)
        if workers <= 1 or total <= 1:
            results = []
            for index, task in enumerate(tasks):
                results.append(fn(task))
                done(index + 1)
            return results
        with ProcessPoolExecutor(min(workers, total)) as pool:
            results = []
            # chunksize 1: runs differ a lot in cost, and the bar should move.
            for index, result in enumerate(pool.map(fn, tasks, chunksize=1)):
                results.append(result)
                done(index + 1)
            return results


def _map_dask(fn: Callable[[T], R], tasks: Sequence[T], address: str, done: Callable[[int], None]) -> list[R]:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ParallelError("--dask needs Dask: pip install 'peer[dask]'") from None
    cluster = None
    try:
        if address == "local":
            cluster = LocalCluster(n_workers=default_workers(), threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
        else:
            client = Client(address, timeout=5)
    except (OSError, TimeoutError) as exc:
        raise ParallelError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        futures = client.map(fn, list(tasks), pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        for count, future in enumerate(as_completed(futures), start=1):
            results[index[future.key]] = future.result()
            done(count)
        return results
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    if not sys.stderr.isatty() or total <= 1:
        yield lambda _count: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda count: progress.update(task, completed=count)
