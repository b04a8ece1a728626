"""Helpers that several test modules share: the command as a user runs it, short seeded training."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from adbench.data.cache import CategoryTensors, describe, load_category
from adbench.data.formats.mvtec_ad import read_category
from adbench.detector import BudgetName, Detector, TrainingBudget
from adbench.evaluation.metrics.image import image_auroc
from adbench.machine.timing import TIMING_METRICS
from adbench.run.folder import MANIFEST


def smoke_fit(
    method: type[Detector],
    root: Path,
    name: str,
    kind: str,
    steps: int,
    batch_size: int = 8,
    budget: BudgetName = "smoke",
    **params: Any,
) -> tuple[Detector, CategoryTensors]:
    """A detector after `steps` seeded steps at the `budget`'s parameters (`params` replaced), and its
    data."""
    files = read_category(root, name, kind)
    category = describe(files)
    torch.manual_seed(0)
    detector = method(dataclasses.replace(method.default_params(category, budget), **params))
    tensors = load_category(files, category, detector.input_spec)
    if steps:
        detector.fit(CategoryTensors.as_float(tensors.train), TrainingBudget(steps, batch_size))
    return detector, tensors


def auroc_on_test_set(detector: Detector, tensors: CategoryTensors) -> float:
    return image_auroc(
        tensors.test_labels, detector.score(CategoryTensors.as_float(tensors.test)).image_scores
    )


def smoke_auroc(
    method: type[Detector], root: Path, name: str, kind: str, steps: int, batch_size: int = 8
) -> float:
    """Image AUROC on the test set of `name` after `steps` seeded steps at the smoke parameters."""
    return auroc_on_test_set(*smoke_fit(method, root, name, kind, steps, batch_size))


def quality_rows(run_dir: Path) -> pd.DataFrame:
    """A run's results table without the timings (which vary between runs) and the run id, in its order."""
    results = pd.read_csv(run_dir / "results.csv")
    return results[~results.metric.isin(TIMING_METRICS)].drop(columns="run_id").reset_index(drop=True)


def adbench(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
    fresh: bool = False,
) -> subprocess.CompletedProcess[str]:
    """The `adbench` command as a user runs it: its exit code, stdout and stderr (`env` adds variables).

    It runs in this interpreter, since a fresh one spends about 5 s importing torch and pandas and the
    suite runs the command a few hundred times; warnings are written to its stderr as a fresh interpreter
    would print them. `fresh` runs it in a new interpreter instead, for what must not share this
    process's state (entry points on another path, a Dask client, signals).
    """
    if fresh:
        return subprocess.run(
            [sys.executable, "-c", "from adbench.cli import main; main()", *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=None if env is None else os.environ | env,
            timeout=timeout,
        )
    return _in_process(list(args), cwd, env or {})


# What Python's default filters hide (DeprecationWarning everywhere but in __main__).
_QUIET_IN_A_FRESH_INTERPRETER = (
    DeprecationWarning,
    PendingDeprecationWarning,
    ImportWarning,
    ResourceWarning,
)


def _in_process(args: list[str], cwd: Path | None, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    from adbench.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    saved_environment, saved_cwd, saved_argv = dict(os.environ), os.getcwd(), sys.argv
    code: int | str | None = 0
    try:
        os.environ.update(env)
        if cwd is not None:
            os.chdir(cwd)
        sys.argv = ["adbench", *args]
        with (
            contextlib.redirect_stdout(stdout),
            contextlib.redirect_stderr(stderr),
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("default")
            for quiet in _QUIET_IN_A_FRESH_INTERPRETER:
                warnings.simplefilter("ignore", quiet)
            try:
                main()
            except SystemExit as exit_:
                code = exit_.code
            except Exception:  # what a fresh interpreter prints for an uncaught exception
                stderr.write(traceback.format_exc())
                code = 1
            for warning in caught:
                stderr.write(
                    warnings.formatwarning(
                        warning.message, warning.category, warning.filename, warning.lineno
                    )
                )
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_environment)
    returncode = code if isinstance(code, int) else (0 if code is None else 1)
    return subprocess.CompletedProcess(["adbench", *args], returncode, stdout.getvalue(), stderr.getvalue())


def skimage_ssim_map(reconstruction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """scikit-image's full SSIM map with ssimae's settings: 11-tap Gaussian window, σ 1.5, data in [0, 1]."""
    from skimage.metrics import structural_similarity

    from adbench_methods.autoencoder.ssim import SSIM_WINDOW

    _, full = structural_similarity(
        reconstruction,
        target,
        win_size=SSIM_WINDOW,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        full=True,
    )
    return full


# A line of adbench.progress.LogLines: what a run writes, stage by stage, where stderr is no terminal.
PROGRESS_LINE = re.compile(r"\d\d:\d\d:\d\d ")
# What a command started in a fresh interpreter says on a busy machine (adbench/machine/sharing.py).
SHARING_NOTE = re.compile(r"note: other processes keep ")


def one_line(stderr: str) -> str:
    """The only non-blank line of `stderr` besides the progress lines and the busy machine's note, which
    must hold no traceback."""
    lines = [
        line
        for line in stderr.splitlines()
        if line.strip() and not PROGRESS_LINE.match(line) and not SHARING_NOTE.match(line)
    ]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden temporary files included) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def wait_until(condition: Callable[[], bool], process: subprocess.Popen, what: str) -> None:
    """Poll until `condition()` holds, failing if `process` ends first. No deadline of seconds: on a busy
    machine a fresh interpreter takes minutes to import torch and start, and a test that gives up early
    fails for the load, not for the code (#31 item 6); half an hour only guards against a hang."""
    give_up = time.monotonic() + 1800
    while not condition():
        assert process.poll() is None, f"the process ended before {what}"
        assert time.monotonic() < give_up, f"half an hour without {what}"
        time.sleep(0.05)


# For the tests of damaged run folders, full disks and one-line refusals, in several test modules.

# The checkpoint of conftest.py's `one_cell_run`, relative to its run folder.
CHECKPOINT = Path("cells/l2ae/washer/seed0/checkpoint.safetensors")


def copy_run(run_dir: Path, where: Path) -> Path:
    return Path(shutil.copytree(run_dir, where, symlinks=True))


def edit_manifest(run_dir: Path, edit: Callable[[dict], object]) -> None:
    path = run_dir / MANIFEST
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def smoke_run(data: Path, out: Path, *args: str, cwd: Path | None = None):
    return adbench(
        "run", "--methods", "l2ae", "--budget", "smoke", "--data", str(data), "--out", str(out), *args,
        cwd=cwd,
    )  # fmt: skip


def disk_full(error_path: str) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), error_path)


def assert_one_line_naming(result: subprocess.CompletedProcess[str], path: Path) -> None:
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(path) in result.stderr
