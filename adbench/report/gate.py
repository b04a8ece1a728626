"""The regression gate: a run's quality metrics against a committed baseline.

A baseline is a JSON file of (method, category, metric) → value, the mean over the run's seeds, for every
higher-is-better quality metric (timings depend on the machine and are never gated). A run fails the gate
when a baseline entry is missing from it or has dropped by more than the tolerance; improvements and
entries the baseline does not know pass. `exact` makes it two-sided: any change beyond the tolerance fails.

A baseline also records how its run was made (`protocol`: budget, dataset, seeds, pixel resolution,
kernels), and a run made otherwise is refused: its numbers would differ for reasons other than a
regression. Baselines written before the protocol was recorded are compared without that check.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from adbench.atomic import write_json_atomic
from adbench.errors import AdbenchError, closest_names
from adbench.evaluation.metrics.catalogue import GATED_METRICS
from adbench.files import parse_json, read_text_file
from adbench.machine.kernels import PORTABLE_VARIABLE
from adbench.machine.timing import TIMING_METRICS
from adbench.params import coerced, type_problem
from adbench.run.folder import Manifest

KEY = ["method", "category", "metric"]
BASELINE_FORMAT = 1


def gated_values(results: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds of every gated metric and of its upper confidence bound: columns method, category,
    metric, value, ci_high. An undefined value (NaN, e.g. AUPIMO on images too small to reach its FPR
    range) is left out: nothing can be gated on it, and against a baseline that has it, it is missing."""
    rows = results[results["metric"].isin(GATED_METRICS)]
    means = rows.groupby(KEY, sort=True)[["value", "ci_high"]].mean().reset_index()
    return means.dropna(subset=["value"])


def run_protocol(manifest: Manifest) -> dict[str, Any]:
    """What makes two runs' numbers comparable, from a run manifest's config."""
    config = manifest.config
    data = config.get("data")
    return {
        "budget": config.get("budget"),
        "dataset": "built-in synthetic" if data is None else Path(data).name,
        "seeds": config.get("seeds"),
        "pixel_resolution": config.get("pixel_resolution"),
        "kernels": manifest.kernels,
    }


def refuse_other_protocol(run_dir: Path, protocol: dict[str, Any], baseline_path: Path) -> None:
    """AdbenchError naming the first way the run was made differently from the baseline's run."""
    document = json.loads(baseline_path.read_text())  # read_baseline has checked it
    stored = document.get("protocol")
    if stored is None:  # a baseline written before the protocol was recorded
        return
    for key, expected in stored.items():
        if protocol.get(key) != expected:
            how = f" ({PORTABLE_VARIABLE}=1 selects portable kernels)" if key == "kernels" else ""
            raise AdbenchError(
                f"{run_dir}: {key} {protocol.get(key)!r}, but {baseline_path} was made with {expected!r}; "
                f"compare a run made like it{how}, or write a baseline for this one with --update"
            )


def write_baseline(path: Path, results: pd.DataFrame, run_ids: list[str], protocol: dict[str, Any]) -> None:
    values = gated_values(results)
    document = {
        "format": BASELINE_FORMAT,
        "runs": run_ids,
        "protocol": protocol,
        "entries": [
            {"method": r.method, "category": r.category, "metric": r.metric, "value": float(r.value)}
            for r in values.itertuples()
        ],
    }
    # What `read_baseline` would refuse is not written: a gate on it could never run.
    if problem := _baseline_problem(document):
        raise AdbenchError(f"{path}: not written; run {', '.join(run_ids)} gives no baseline ({problem})")
    write_json_atomic(path, document)


def read_baseline(path: Path) -> pd.DataFrame:
    """The baseline's entries; AdbenchError naming the file unless it holds at least one entry and each
    is a distinct (method, category, metric) with a finite value: a gate on nothing always passes."""
    text = read_text_file(
        path, "baseline", f"create it with `adbench compare RUN --baseline {path} --update`"
    )
    try:
        problem = _baseline_problem(document := parse_json(text))
    except ValueError as error:
        problem = str(error)
    if problem:
        raise AdbenchError(f"{path}: not an adbench baseline ({problem}); recreate it with --update")
    return pd.DataFrame(document["entries"], columns=[*KEY, "value"]).astype({"value": "float64"})


def _baseline_problem(document: Any) -> str | None:
    if not isinstance(document, dict):
        return f"a JSON {type(document).__name__}, not an object"
    if document.get("format") != BASELINE_FORMAT:
        return f"format {document.get('format')!r}, expected {BASELINE_FORMAT}"
    if "protocol" in document and not isinstance(document["protocol"], dict):
        return f"protocol is {json.dumps(document['protocol'])[:40]}, not an object"
    entries = document.get("entries")
    if not isinstance(entries, list):
        return f"entries is {json.dumps(entries)[:40]}, not a list"
    if not entries:
        return "no entries, nothing to gate on"
    for i, entry in enumerate(entries):
        if problem := _entry_problem(entry):
            return f"entry {i}: {problem}"
    repeated = next(
        (key for key, n in Counter(tuple(e[k] for k in KEY) for e in entries).items() if n > 1), None
    )
    if repeated:
        return f"{'/'.join(repeated)} listed more than once"
    return None


def _entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict) or set(entry) != {*KEY, "value"}:
        keys = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        return f"{keys}, expected an object with keys {', '.join(KEY)}, value"
    if not all(isinstance(entry[key], str) for key in KEY):
        return f"{', '.join(KEY)} must be strings"
    metric = entry["metric"]
    if metric in TIMING_METRICS:
        return f"metric {metric!r} is a timing, and timings are never gated (they depend on the machine)"
    if metric not in GATED_METRICS:
        near = closest_names(metric, GATED_METRICS)
        meant = f", perhaps {near[0]!r}" if near else ""
        return f"metric {metric!r} is not a quality metric the gate compares{meant}"
    value = entry["value"]
    if type_problem(float, value) or not math.isfinite(coerced(float, value)):
        return f"value {value!r} is not a finite number"
    return None


def regressions(
    results: pd.DataFrame,
    baseline: pd.DataFrame,
    tolerance: float,
    within_interval: bool = False,
    exact: bool = False,
) -> pd.DataFrame:
    """Baseline entries missing from `results` or lower by more than `tolerance`, with the change.

    `within_interval` (`compare --ci`): a metric with a confidence interval has dropped only when the
    baseline lies above the run's upper bound by more than `tolerance`; one without is compared as usual.
    `exact` (`compare --exact`): an entry fails when it moved either way by more than `tolerance`.
    """
    if tolerance < 0 or math.isnan(tolerance):
        raise AdbenchError(f"--tolerance {tolerance}: must be a non-negative number")
    current = gated_values(results).rename(columns={"value": "current"})
    merged = baseline.rename(columns={"value": "baseline"}).merge(current, on=KEY, how="left")
    merged["change"] = merged["current"] - merged["baseline"]
    reference = merged["current"]
    if within_interval:
        reference = merged["ci_high"].where(merged["ci_high"].notna(), merged["current"])
    if exact:
        moved = (merged["current"] - merged["baseline"]).abs() > tolerance
    else:
        moved = reference - merged["baseline"] < -tolerance
    failing = merged["current"].isna() | moved
    return merged[failing].drop(columns="ci_high").reset_index(drop=True)
