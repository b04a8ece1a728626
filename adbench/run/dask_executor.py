"""`adbench run --executor dask`: every cell is one task on a Dask distributed cluster.

`--workers N` starts a local cluster of N worker processes, each running one cell at a time;
`--scheduler tcp://HOST:PORT` uses a cluster that is already running. A cell computes at the torch thread
count of the process that runs `adbench run`, not at the worker's own (1 where Dask's nanny set
OMP_NUM_THREADS=1), so that its numbers are the sequential run's exactly (adbench.run.cell.run_cell): N local
workers run N times that many threads, and `OMP_NUM_THREADS=k adbench run` picks k.
Workers need adbench and the methods installed, and must see the dataset, the data cache and the run
folder at the same paths as the machine that runs `adbench run` (a shared filesystem): each cell writes
its own folder, and only this process writes the results table and the manifest, as each cell finishes.
With `--scheduler`, each worker resolves `--device` itself (`--device cuda` works from a login node
without a GPU); the device each cell ran on is in its manifest entry.

A worker that dies mid-cell (killed, out of memory, node lost) does not fail the run: the scheduler
gives its task to another worker (Dask's `distributed.scheduler.allowed-failures` retries, 3 by
default), and the retried cell starts again from a clean folder. Cells that finished stay recorded.

SLURM users get workers from dask-jobqueue and pass the scheduler's address, e.g.

    from dask_jobqueue import SLURMCluster
    cluster = SLURMCluster(cores=8, memory="32GB", processes=1, walltime="04:00:00")
    cluster.scale(jobs=10)
    print(cluster.scheduler_address)   # adbench run ... --executor dask --scheduler <this>
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import socket
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import Progress

from adbench.errors import AdbenchError
from adbench.registry import load_method
from adbench.run.cell import CellOutcome, CellTask, run_cell
from adbench.run.config import RunConfig

if TYPE_CHECKING:
    from distributed import Client, Future

_CONNECT_TIMEOUT = "20s"


def _run_cell_on_worker(task: CellTask, *_after: CellOutcome) -> CellOutcome:
    """Run `task`; `_after` holds the outcomes of the cells it waits for (Dask starts it once they exist)."""
    try:
        with Progress(disable=True) as progress:  # a worker has no terminal to draw on
            return run_cell(task, progress)
    except AdbenchError as error:
        # "not available on this machine" must say which machine.
        raise AdbenchError(f"on Dask worker {socket.gethostname()}: {error}") from None


def require_dask() -> None:
    """Checked before the run folder exists, so that a missing extra leaves nothing behind."""
    if importlib.util.find_spec("distributed") is None:
        raise AdbenchError(
            "--executor dask needs Dask, an optional extra: pip install 'adbench-harness[dask]'"
        )


@contextlib.contextmanager
def _client(config: RunConfig) -> Iterator[Client]:
    from distributed import Client, LocalCluster

    if config.scheduler is not None:
        try:
            client = Client(config.scheduler, timeout=_CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as error:
            raise AdbenchError(
                f"--scheduler {config.scheduler}: no Dask scheduler answered ({error}); "
                "start one with `dask scheduler` or use --workers N"
            ) from None
        with client:
            yield client
        return
    cluster = LocalCluster(
        n_workers=config.workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
        # Workers whose cells run the run's thread count each share the cores. OpenMP threads that spin
        # while they wait then hold a core another worker's threads need: on 2 cores shared with other
        # work, 2 workers at 2 threads took 869 s for a grid that took 83 s with threads that sleep (46 s
        # at 1 thread each).
        env={"OMP_WAIT_POLICY": "PASSIVE"},
    )
    with cluster, Client(cluster) as client:
        yield client


def run_on_dask(
    config: RunConfig, tasks: list[CellTask], record: Callable[[CellOutcome], None], console: Console
) -> None:
    """Run `tasks` on the cluster and `record` each outcome here as it arrives; stop at the first
    failed cell (cancelling the rest) as the sequential executor does."""
    from distributed import as_completed
    from distributed.client import FutureCancelledError
    from distributed.scheduler import KilledWorker

    with _client(config) as client:
        submission = uuid.uuid4().hex[:8]
        futures: dict[Future, CellTask] = {}
        submitted: dict[tuple[str, str, int], Future] = {}
        for task in tasks:  # in run order: a method's cells after those of the method that trains for it
            provider = load_method(task.method).trained_by if config.eval_only_from is None else None
            after = submitted.get((provider, task.files.name, task.seed)) if provider else None
            future = client.submit(
                _run_cell_on_worker,
                task,
                *([after] if after is not None else []),
                key=f"adbench-{submission}-{task.label}",
                pure=False,
            )
            futures[future] = task
            submitted[(task.method, task.files.name, task.seed)] = future
        console.print(f"dask: {len(futures)} cells on {client.scheduler.address}", highlight=False)
        try:
            for future in as_completed(futures):
                try:
                    outcome = future.result()
                except KilledWorker as error:
                    raise AdbenchError(
                        f"{futures[future].label}: every Dask worker that ran this cell died ({error}); "
                        "check the workers' memory and logs"
                    ) from None
                except FutureCancelledError:
                    raise AdbenchError(f"{futures[future].label}: cancelled on the Dask cluster") from None
                record(outcome)
        finally:
            client.cancel(list(futures))
