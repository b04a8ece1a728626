"""The regression gate: a run's quality metrics against a committed baseline.

A baseline is a JSON file of (method, category, metric) → value, the mean over the run's seeds, for every
higher-is-better quality metric (timings depend on the machine and are never gated). A run fails the gate
when a baseline entry is missing from it or has dropped by more than the tolerance; improvements and
entries the baseline does not know pass. `exact` makes it two-sided: any change beyond the tolerance fails.

A baseline also records how its run was made (`protocol`: budget, dataset, seeds, pixel resolution,
kernels, CPU vendor), and a run made otherwise is refused: its numbers would differ for reasons other than a
regression. Baselines written before the protocol was recorded are compared without that check.

Seeded training gives other numbers on another CPU vendor even with portable kernels (the smoke grid: 38
metrics beyond 0.02 between an Intel Xeon and an AMD EPYC, adbench/machine/kernels.py), so a file keeps
one baseline per CPU vendor (format 2), and a run is compared with its own vendor's. `--update` replaces the
run's vendor's and keeps the others made the same way, which a change that moves the numbers leaves stale
until someone remakes them on such a machine. Format 1, one baseline with no vendor, is still read and
compared with a run of any vendor.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
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
BASELINE_FORMAT = 2  # one baseline per CPU vendor
_SINGLE_FORMAT = 1  # one baseline, written before the vendor was recorded
VENDOR = "cpu_vendor"


@dataclass(frozen=True)
class Baseline:
    """What one run gave: its gated entries, with how it was made (None: not recorded)."""

    runs: list[str]
    protocol: dict[str, Any] | None
    entries: pd.DataFrame

    @property
    def cpu_vendor(self) -> str | None:
        return _vendor(self.protocol)


def _vendor(protocol: dict[str, Any] | None) -> str | None:
    return (protocol or {}).get(VENDOR)


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
    protocol = {
        "budget": config.get("budget"),
        "dataset": "built-in synthetic" if data is None else Path(data).name,
        "seeds": config.get("seeds"),
        "pixel_resolution": config.get("pixel_resolution"),
        "kernels": manifest.kernels,
    }
    if vendor := manifest.environment.get(VENDOR):  # runs made before it was recorded have none
        protocol[VENDOR] = vendor
    return protocol


def baseline_for_run(run_dir: Path, protocol: dict[str, Any], path: Path) -> pd.DataFrame:
    """The entries of `path`'s baseline for the run's CPU vendor; AdbenchError (one line) where it holds
    none, or where that one was made otherwise than the run."""
    baselines = read_baselines(path)
    vendor = protocol.get(VENDOR)
    chosen = next((b for b in baselines if b.cpu_vendor in (None, vendor)), None)
    if chosen is None:
        held = ", ".join(str(b.cpu_vendor) for b in baselines)
        made_on = f"made on CPU vendor {vendor}" if vendor else "made before adbench recorded the CPU vendor"
        raise AdbenchError(
            f"{run_dir}: {made_on}, but {path} holds baselines for {held} only (seeded training gives "
            "other numbers on another CPU vendor, even with portable kernels); add one with --update on this "
            "machine"
        )
    _refuse_other_protocol(run_dir, protocol, chosen.protocol, path)
    return chosen.entries


def _refuse_other_protocol(
    run_dir: Path, protocol: dict[str, Any], stored: dict[str, Any] | None, baseline_path: Path
) -> None:
    """AdbenchError naming the first way the run was made differently from the baseline's run."""
    if stored is None:  # a baseline written before the protocol was recorded
        return
    for key, expected in stored.items():
        if protocol.get(key) != expected:
            how = f" ({PORTABLE_VARIABLE}=1 selects portable kernels)" if key == "kernels" else ""
            raise AdbenchError(
                f"{run_dir}: {key} {protocol.get(key)!r}, but {baseline_path} was made with {expected!r}; "
                f"compare a run made like it{how}, or write a baseline for this one with --update"
            )


def write_baseline(
    path: Path, results: pd.DataFrame, run_ids: list[str], protocol: dict[str, Any]
) -> list[str]:
    """Write the run's baseline into `path`, replacing the one for its CPU vendor; the others are kept when
    made the same way otherwise. Returns one line per baseline of another vendor, saying what became of it."""
    values = gated_values(results)
    written = {
        "runs": run_ids,
        "protocol": protocol,
        "entries": [
            {"method": r.method, "category": r.category, "metric": r.metric, "value": float(r.value)}
            for r in values.itertuples()
        ],
    }
    # What `read_baselines` would refuse is not written: a gate on it could never run.
    if problem := _set_problem(written):
        raise AdbenchError(f"{path}: not written; run {', '.join(run_ids)} gives no baseline ({problem})")
    kept, notes = [], []
    vendor = protocol.get(VENDOR)
    for other in _readable_baselines(path):
        if other.cpu_vendor in (None, vendor):
            continue
        if vendor is None:  # a baseline without a vendor is compared with a run of any vendor: alone
            notes.append(
                f"dropped the {other.cpu_vendor} baseline ({', '.join(other.runs)}): this run records no "
                "CPU vendor, so its baseline stands for every vendor"
            )
        elif _without_vendor(other.protocol) == _without_vendor(protocol):
            kept.append(_set_document(other))
            notes.append(
                f"kept the {other.cpu_vendor} baseline ({', '.join(other.runs)}) as it was: if this change "
                f"moved the numbers, remake it with --update on a {other.cpu_vendor} machine"
            )
        else:
            notes.append(f"dropped the {other.cpu_vendor} baseline ({', '.join(other.runs)}): made otherwise")
    write_json_atomic(path, {"format": BASELINE_FORMAT, "baselines": [written, *kept]})
    return notes


def _readable_baselines(path: Path) -> list[Baseline]:
    """The baselines `path` holds now; none where it is missing or unreadable, which --update replaces."""
    if not path.is_file():
        return []
    try:
        return read_baselines(path)
    except AdbenchError:
        return []


def _without_vendor(protocol: dict[str, Any] | None) -> dict[str, Any]:
    return {key: value for key, value in (protocol or {}).items() if key != VENDOR}


def _set_document(baseline: Baseline) -> dict[str, Any]:
    return {
        "runs": baseline.runs,
        "protocol": baseline.protocol,
        "entries": baseline.entries.to_dict(orient="records"),
    }


def read_baselines(path: Path) -> list[Baseline]:
    """The file's baselines; AdbenchError naming the file unless each holds at least one entry and each
    entry is a distinct (method, category, metric) with a finite value (a gate on nothing always passes),
    and each baseline is for a different CPU vendor."""
    text = read_text_file(
        path, "baseline", f"create it with `adbench compare RUN --baseline {path} --update`"
    )
    try:
        problem = _document_problem(document := parse_json(text))
    except ValueError as error:
        problem = str(error)
    if problem:
        raise AdbenchError(f"{path}: not an adbench baseline ({problem}); recreate it with --update")
    sets = [document] if document["format"] == _SINGLE_FORMAT else document["baselines"]
    return [
        Baseline(
            runs=list(s.get("runs") or []),
            protocol=s.get("protocol"),
            entries=pd.DataFrame(s["entries"], columns=[*KEY, "value"]).astype({"value": "float64"}),
        )
        for s in sets
    ]


def _document_problem(document: Any) -> str | None:
    if not isinstance(document, dict):
        return f"a JSON {type(document).__name__}, not an object"
    if document.get("format") == _SINGLE_FORMAT:
        return _set_problem(document)
    if document.get("format") != BASELINE_FORMAT:
        return f"format {document.get('format')!r}, expected {BASELINE_FORMAT} (or {_SINGLE_FORMAT})"
    sets = document.get("baselines")
    if not isinstance(sets, list) or not sets:
        return f"baselines is {json.dumps(sets)[:40]}, not a list of at least one"
    for i, one in enumerate(sets):
        if not isinstance(one, dict):
            return f"baseline {i}: a JSON {type(one).__name__}, not an object"
        if problem := _set_problem(one):
            return f"baseline {i}: {problem}"
    vendors = [_vendor(one.get("protocol")) for one in sets]
    if len(sets) > 1 and (None in vendors or len(set(vendors)) < len(vendors)):
        return f"{len(sets)} baselines need one CPU vendor each in their protocol, not {vendors}"
    return None


def _set_problem(document: dict[str, Any]) -> str | None:
    runs = document.get("runs", [])
    if not isinstance(runs, list) or not all(isinstance(run, str) for run in runs):
        return f"runs is {json.dumps(runs)[:40]}, not a list of run names"
    if "protocol" in document and not isinstance(document["protocol"], dict):
        return f"protocol is {json.dumps(document['protocol'])[:40]}, not an object"
    vendor = _vendor(document.get("protocol"))
    if vendor is not None and (not isinstance(vendor, str) or not vendor):
        return f"{VENDOR} is {json.dumps(vendor)[:40]}, not a CPU vendor's name"
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
