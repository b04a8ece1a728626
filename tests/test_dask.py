"""`--executor dask` on real clusters of separate processes: a local cluster, and a `dask scheduler` with
`dask worker`s started as subprocesses (one killed mid-cell; the workers resolving --device themselves)."""

import contextlib
import os
import signal
import subprocess
import sys

import pandas as pd
import pytest
import torch

from adbench.machine.timing import pinned_threads
from tests.helpers import adbench, quality_rows, wait_until

pytest.importorskip("distributed")

# cbigan's seeded training drifts apart with torch's thread count (on pin: image AUROC 0.438 at 2 threads,
# 0.487 at 1, a Dask worker's own count), so a cell computed at the worker's count shows in its table;
# 64 px keeps its texture cell seconds long.
GRID = (
    "--methods",
    "l2ae,cbigan",
    "--categories",
    "sand,pin",
    "--budget",
    "smoke",
    "--repeats",
    "1",
    "--set",
    "cbigan.image_size=64",
)
# Every run here is driven at this count, whatever the machine's cores, so that one core would not hide
# a worker computing at 1.
THREADS = 2
THREADS_ENV = {"OMP_NUM_THREADS": str(THREADS)}


def _assert_same_table(run_dir, reference_dir):
    """The same rows in the same order with the very same values, every cell computed at THREADS."""
    pd.testing.assert_frame_equal(quality_rows(run_dir), quality_rows(reference_dir), check_exact=True)
    for run in (run_dir, reference_dir):
        cells = pd.read_json(run / "manifest.json", typ="series")["cells"]
        assert {cell["torch_threads"] for cell in cells} == {THREADS}, run


@pytest.fixture(scope="module")
def sequential(tiny_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("sequential")
    with pinned_threads(THREADS):
        result = adbench("run", *GRID, "--data", str(tiny_root), "--out", str(out), "--name", "seq")
    assert result.returncode == 0, result.stderr
    return out / "seq"


def test_local_cluster_gives_the_sequential_table(sequential, tiny_root, tmp_path):
    result = adbench(
        "run", *GRID, "--data", str(tiny_root), "--out", str(tmp_path), "--name", "dask",
        "--executor", "dask", "--workers", "2", env=THREADS_ENV, fresh=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    _assert_same_table(tmp_path / "dask", sequential)


def test_a_cell_that_adopts_another_methods_networks_waits_for_it(tiny_root, tmp_path):
    """With two workers, fanogan-iterative's cell would start beside fanogan's and find no checkpoint
    to adopt, unless it waits for that cell."""
    result = adbench(
        "run", "--methods", "fanogan-iterative,fanogan", "--categories", "pin", "--budget", "smoke",
        "--repeats", "1", "--data", str(tiny_root), "--out", str(tmp_path), "--name", "dask",
        "--executor", "dask", "--workers", "2", env=THREADS_ENV, fresh=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    cells = pd.read_json(tmp_path / "dask" / "manifest.json", typ="series")["cells"]
    assert {cell["method"]: cell.get("trained_by") for cell in cells} == {
        "fanogan": None,
        "fanogan-iterative": "fanogan",
    }


def _start(*command: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    # A process group of its own, so that killing a worker takes its nanny-spawned children with it.
    return subprocess.Popen(
        [sys.executable, "-m", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=None if env is None else os.environ | env,
    )


# Workers whose own torch thread count is 1 (as a nanny's are), so that their cells must take the run's;
# their OpenMP threads sleep while they wait, since two workers share this machine's cores (README).
WORKER_ENV = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}


@contextlib.contextmanager
def _cluster(folder):
    """A `dask scheduler` and two `dask worker` processes; yields (address, worker processes)."""
    scheduler_file = folder / "scheduler.json"
    processes = [
        _start("distributed.cli.dask_scheduler", "--scheduler-file", str(scheduler_file), "--port", "0")
    ]
    try:
        wait_until(scheduler_file.exists, processes[0], "the scheduler wrote its address")
        address = pd.read_json(scheduler_file, typ="series")["address"]
        for _ in range(2):
            processes.append(
                _start(
                    "distributed.cli.dask_worker",
                    address,
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                    env=WORKER_ENV,
                )
            )
        yield address, processes[1:]
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)


def test_scheduler_and_worker_processes_survive_a_killed_worker(sequential, tiny_root, tmp_path):
    with _cluster(tmp_path) as (address, workers):
        run = subprocess.Popen(
            [sys.executable, "-c", "from adbench.cli import main; main()", "run", *GRID,
             "--data", str(tiny_root), "--out", str(tmp_path), "--name", "cluster",
             "--executor", "dask", "--scheduler", address],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ | THREADS_ENV,
        )  # fmt: skip
        cells = tmp_path / "cluster" / "cells"
        wait_until(lambda: any(cells.glob("*/*/seed*/")), run, "a worker could be killed")
        os.killpg(workers[0].pid, signal.SIGKILL)  # a worker dies mid-cell, without a goodbye
        workers[0].wait()
        _, stderr = run.communicate(timeout=600)
        assert run.returncode == 0, stderr
        _assert_same_table(tmp_path / "cluster", sequential)
        manifest = pd.read_json(tmp_path / "cluster" / "manifest.json", typ="series")
        assert manifest["status"] == "finished" and len(manifest["cells"]) == 4
        assert manifest["device"] == "cpu (resolved on each worker)"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs workers without CUDA")
def test_remote_workers_resolve_the_device_themselves(tiny_root, tmp_path):
    """A CPU-only login node may drive GPU workers: --device cuda is the workers' to accept or refuse."""
    with _cluster(tmp_path) as (address, _):
        result = adbench(
            "run", *GRID, "--data", str(tiny_root), "--out", str(tmp_path), "--name", "gpu",
            "--executor", "dask", "--scheduler", address, "--device", "cuda", fresh=True,
        )  # fmt: skip
    # The refusal comes from a worker (these have no GPU either), not from this process before submitting.
    assert result.returncode == 2, result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("error: on Dask worker") and "CUDA is not available" in error, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "gpu").exists(), "a run that fails before its first cell leaves no folder"


def test_dask_options_are_checked_before_anything_runs(tiny_root, tmp_path):
    cases = {
        ("--workers", "2"): "--scheduler and --workers belong to --executor dask",
        ("--executor", "dask"): "--executor dask needs exactly one of --scheduler",
        ("--executor", "spark"): "--executor spark: valid executors are sequential, dask",
        ("--executor", "dask", "--scheduler", "tcp://127.0.0.1:9"): "no Dask scheduler answered",
    }
    for flags, message in cases.items():
        result = adbench(
            "run",
            *GRID,
            "--data",
            str(tiny_root),
            "--out",
            str(tmp_path),
            *flags,
            fresh="--scheduler" in flags,
        )
        assert result.returncode == 2 and message in result.stderr, result.stderr
