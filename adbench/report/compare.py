"""The regression gate: a run's quality metrics against a committed baseline.

A baseline is a JSON file of (method, category, metric) → value, the mean over the run's seeds, for every
higher-is-better quality metric (timings depend on the machine and are never gated). A run fails the gate
when a baseline entry is missing from it or has dropped by more than the tolerance; improvements and
entries the baseline does not know pass.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from adbench.atomic import write_json_atomic
from adbench.errors import AdbenchError
from adbench.metrics import HIGHER_IS_BETTER
from adbench.timing import TIMING_METRICS

KEY = ["method", "category", "metric"]
BASELINE_FORMAT = 1


def gated_values(results: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of every gated metric: columns method, category, metric, value."""
    gated = [m for m, higher in HIGHER_IS_BETTER.items() if higher and m not in TIMING_METRICS]
    rows = results[results["metric"].isin(gated)]
    return rows.groupby(KEY, sort=True)["value"].mean().reset_index()


def write_baseline(path: Path, results: pd.DataFrame, run_ids: list[str]) -> None:
    values = gated_values(results)
    document = {
        "format": BASELINE_FORMAT,
        "runs": run_ids,
        "entries": [
            {"method": r.method, "category": r.category, "metric": r.metric, "value": float(r.value)}
            for r in values.itertuples()
        ],
    }
    write_json_atomic(path, document)


def read_baseline(path: Path) -> pd.DataFrame:
    try:
        document = json.loads(path.read_text())
        entries = pd.DataFrame(document["entries"], columns=[*KEY, "value"])
        if document.get("format") != BASELINE_FORMAT:
            raise ValueError(f"format {document.get('format')!r}, expected {BASELINE_FORMAT}")
        return entries.astype({"value": "float64"})
    except FileNotFoundError:
        raise AdbenchError(
            f"{path}: no such baseline; create it with `adbench compare RUN --baseline {path} --update`"
        ) from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise AdbenchError(f"{path}: not an adbench baseline ({error}); recreate it with --update") from None


def regressions(results: pd.DataFrame, baseline: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """Baseline entries missing from `results` or lower by more than `tolerance`, with the change."""
    if tolerance < 0 or math.isnan(tolerance):
        raise AdbenchError(f"--tolerance {tolerance}: must be a non-negative number")
    current = gated_values(results).rename(columns={"value": "current"})
    merged = baseline.rename(columns={"value": "baseline"}).merge(current, on=KEY, how="left")
    merged["change"] = merged["current"] - merged["baseline"]
    failing = merged["current"].isna() | (merged["change"] < -tolerance)
    return merged[failing].reset_index(drop=True)
