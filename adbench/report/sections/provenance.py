"""Where each run's numbers come from: when, which code and versions, which machine, data and training."""

from __future__ import annotations

from typing import Any

from adbench.data.formats import FORMATS
from adbench.report.context import ReportInput
from adbench.report.sections import Section
from adbench.run.folder import Manifest, StoredRun


def provenance(report: ReportInput) -> Section:
    return Section(["", "## Provenance", ""] + [_provenance(run) + "\n" for run in report.runs])


def _provenance(run: StoredRun) -> str:
    manifest = run.manifest
    environment, config = manifest.environment, manifest.config
    versions = ", ".join(f"{k} {v}" for k, v in (environment.get("versions") or {}).items() if v)
    return "\n".join(
        [
            f"### {run.path.name}",
            "",
            f"- started {manifest.started_at}, finished {manifest.finished_at}, status {manifest.status}",
            f"- commit `{environment.get('git_commit')}`; python {environment.get('python')}; {versions}",
            f"- device {manifest.device}, {environment.get('torch_threads')} torch threads, "
            f"{_processor(environment)}{environment.get('platform')}",
            f"- budget `{config.get('budget')}`, seeds {config.get('seeds')}, "
            f"data `{manifest.dataset}` ({_format_title(manifest)})",
            "- training as run:",
            *_training_lines(manifest),
            *_departure_lines(manifest),
            f"- pixel metrics at resolution `{config.get('pixel_resolution')}`",
        ]
    )


def _processor(environment: dict[str, Any]) -> str:
    """The CPU, where the run recorded it (runs before 1f7052f did not): seeded numbers differ between
    CPU vendors."""
    return f"CPU {environment['cpu_model']}, " if environment.get("cpu_model") else ""


def _format_title(manifest: Manifest) -> str:
    """The dataset's format as its publisher names it."""
    name = manifest.dataset_format
    return next((f"{f.title} layout" for f in FORMATS if f.name == name), f"format {name}")


def _training_lines(manifest: Manifest) -> list[str]:
    """Per method, the optimiser steps and batch each category trained with, in words."""
    categories: dict[tuple[str, str], list[str]] = {}
    for cell in manifest.cells:
        if cell.trained_by is not None:
            how = f"the networks {cell.trained_by} trained (same category and seed), no training of its own"
        elif not cell.trained:
            how = "checkpoints loaded, no training"
        else:
            epochs = f"{cell.epochs:,} epochs" if cell.epochs else None
            counted = f"{cell.steps:,} steps" + (f" ({epochs})" if epochs else "") if cell.steps else epochs
            how = f"{counted} at batch {cell.batch_size}"
        categories.setdefault((cell.method, how), []).append(cell.category)
    return [
        f"  - {method}: {how} on {', '.join(dict.fromkeys(names))}"
        for (method, how), names in categories.items()
    ]


def _departure_lines(manifest: Manifest) -> list[str]:
    """Per method, what its params substituted for a resource its paper used (`params_departures`)."""
    found: dict[tuple[str, str], list[str]] = {}
    for cell in manifest.cells:
        for departure in cell.entry.get("params_departures") or []:
            found.setdefault((cell.method, str(departure)), []).append(cell.category)
    if not found:
        return []
    return ["- departures the params chose:"] + [
        f"  - {method}: {departure} ({', '.join(dict.fromkeys(names))})"
        for (method, departure), names in found.items()
    ]
