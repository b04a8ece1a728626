"""The tidy results table, its atomic storage, and the provenance recorded with every run.

One row per run × method × category × seed × metric. `results.parquet` is the table of record;
`results.csv` is the same table for people and spreadsheets. Both are replaced atomically
(adbench.atomic), so a crash leaves the previous table intact.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from adbench.atomic import write_atomic_together
from adbench.errors import AdbenchError
from adbench.evaluation.metrics.catalogue import METRICS
from adbench.machine.cpu import cpu_model, cpu_vendor
from adbench.machine.kernels import kernels_in_use
from adbench.names import checked_name

# The table's columns, declared once; reports and the regression gate read exactly these.
COLUMNS: dict[str, str] = {
    "run_id": "string",  # the run folder's name
    "method": "string",  # entry-point name, e.g. "l2ae"
    "category": "string",  # dataset folder name, e.g. "carpet"
    "category_kind": "string",  # "texture" or "object", for the textures/objects means
    "seed": "int64",  # the seed the cell was trained with
    "metric": "string",  # e.g. "image_auroc"; each declared in adbench.evaluation.metrics.catalogue
    "value": "float64",
    # The 95 % confidence interval of `value` (adbench.evaluation.bootstrap); NaN where a metric has none.
    "ci_low": "float64",
    "ci_high": "float64",
}
# Columns that tables written before they existed lack; they read as NaN.
_ADDED_LATER = ("ci_low", "ci_high")
RESULTS_PARQUET = "results.parquet"
RESULTS_CSV = "results.csv"
MANIFEST = "manifest.json"


def results_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=list(COLUMNS))
    return frame.astype(COLUMNS)


def write_results(run_dir: Path, frame: pd.DataFrame) -> None:
    frame = frame.astype(COLUMNS)
    # Together: a full disk while writing the CSV must not leave a new parquet beside an old CSV.
    write_atomic_together(
        [
            (run_dir / RESULTS_PARQUET, lambda tmp: frame.to_parquet(tmp, index=False)),
            (run_dir / RESULTS_CSV, lambda tmp: frame.to_csv(tmp, index=False)),
        ]
    )


def read_results(run_dir: Path) -> pd.DataFrame:
    path = run_dir / RESULTS_PARQUET
    if not path.is_file():
        raise AdbenchError(f"{path}: no results table; is {run_dir} a finished adbench run folder?")
    try:
        frame = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several unrelated types for a damaged file
        raise AdbenchError(
            f"{path}: unreadable results table ({error}); it was changed outside adbench"
        ) from None
    for column in _ADDED_LATER:
        if column not in frame.columns:
            frame[column] = float("nan")
    missing = set(COLUMNS) - set(frame.columns)
    if missing:
        raise AdbenchError(f"{path}: missing columns {sorted(missing)}; it was changed outside adbench")
    try:
        frame = frame.astype(COLUMNS)
    except (ValueError, TypeError) as error:  # a hand edit can leave e.g. text in the seed column
        raise AdbenchError(
            f"{path}: a column holds values of the wrong type ({error}); it was changed outside adbench"
        ) from None
    for column in ("method", "category"):  # both name files the report writes (samples figures, cells)
        for name in frame[column].unique():
            checked_name(str(name), column, f"{path}: column {column}")
    unknown = sorted(set(frame["metric"].astype(str)) - set(METRICS))
    if unknown:
        raise AdbenchError(
            f"{path}: metric {unknown[0]!a:.80} is none adbench writes; it was changed outside adbench"
        )
    return frame


def git_commit() -> str | None:
    """The commit of the adbench source in use ('-dirty' if it has uncommitted changes); None outside git."""
    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=source,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def environment() -> dict[str, Any]:
    """Versions, machine, kernels and commit, for the manifest."""
    import torch

    versions: dict[str, str | None] = {}
    # Every library that computes numbers (kornia: augmentations and SSIM; scipy and scikit-image: the
    # synthetic data and connected components): a seeded result that moves between machines is traced
    # through these.
    packages = (
        "adbench-harness", "torch", "numpy", "pandas", "scikit-learn", "pillow", "safetensors", "kornia",
        "scipy", "scikit-image",
    )  # fmt: skip
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.machine(),
        # The gate's seeded smoke numbers differ between an AMD EPYC and an Intel Xeon under the same
        # portable kernels: the CPU says which machines a comparison spans.
        "cpu_model": cpu_model(),
        "cpu_vendor": cpu_vendor(),
        "torch_threads": torch.get_num_threads(),
        # PASSIVE when the run started beside busy processes (adbench/machine/sharing.py), or as the user
        # set it
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "kernels": kernels_in_use(),
        "cuda_available": torch.cuda.is_available(),
        "versions": versions,
        "git_commit": git_commit(),
    }
