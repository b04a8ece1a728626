"""Helpers that several test modules share: the command as a subprocess, short seeded training."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from adbench.data.cache import CategoryTensors, describe, load_category
from adbench.data.layout import read_category
from adbench.detector import Detector, TrainingBudget
from adbench.metrics.image import image_auroc
from adbench.timing import TIMING_METRICS


def smoke_fit(
    method: type[Detector], root: Path, name: str, kind: str, steps: int, batch_size: int = 8, **params: Any
) -> tuple[Detector, CategoryTensors]:
    """A detector after `steps` seeded steps at the smoke parameters (`params` replaced), and its data."""
    files = read_category(root, name, kind)
    category = describe(files)
    torch.manual_seed(0)
    detector = method(dataclasses.replace(method.default_params(category, "smoke"), **params))
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
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """The `adbench` command as a user runs it, in a fresh interpreter (`env` adds variables)."""
    return subprocess.run(
        [sys.executable, "-c", "from adbench.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=None if env is None else os.environ | env,
        timeout=timeout,
    )


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


def one_line(stderr: str) -> str:
    """The only non-blank line of `stderr`, which must hold no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (hidden temporary files included) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
