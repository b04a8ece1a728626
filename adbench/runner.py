"""Running the grid: methods × categories × seeds, each cell fit → score → metrics.

Everything that can be checked before training is checked first (method names, categories, folder
structure), so a typo fails in a second, not after an hour. The results table is rewritten atomically
after every cell, so an interruption keeps every finished cell's rows.

Run folder:

    <out>/<run-id>/manifest.json     resolved config, seeds, per-cell params and budgets, versions, commit
    <out>/<run-id>/results.parquet   the tidy table (and results.csv)
    <out>/<run-id>/cells/<method>/<category>/seed<k>/
        checkpoint.safetensors   losses.csv   scores.csv
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from adbench.atomic import write_json_atomic, write_text_atomic
from adbench.config import RunConfig
from adbench.data.cache import CategoryTensors, cache_root, describe, load_category
from adbench.data.layout import CategoryFiles, order_categories, read_category, read_kinds, resolve_categories
from adbench.data.synth import default_dataset
from adbench.detector import CategorySpec, Detector, Scores, TrainingBudget
from adbench.errors import AdbenchError
from adbench.evaluation import image_metrics, map_metrics
from adbench.metrics.threshold import ThresholdResult
from adbench.registry import load_method
from adbench.results import (
    MANIFEST,
    RESULTS_PARQUET,
    environment,
    read_results,
    results_frame,
    write_results,
)
from adbench.samples import SAMPLES_FILE, collect_samples, pick_samples, write_samples
from adbench.timing import LATENCY_MEDIAN, measure_latency, timed, timing_metrics

CHECKPOINT = "checkpoint.safetensors"
# Images per `score` call, the evaluation batch size: the paper's batch of 32, small enough for the
# progress bar to move.
SCORE_CHUNK = 32


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    results: pd.DataFrame


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise AdbenchError(f"--device {name}: {error}; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AdbenchError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise AdbenchError(f"--device {name}: MPS is not available on this machine; use --device cpu")
    return device


def _new_run_dir(config: RunConfig, started: datetime) -> Path:
    config.out.mkdir(parents=True, exist_ok=True)
    if config.run_name is not None:
        run_dir = config.out / config.run_name
        try:
            run_dir.mkdir()
        except FileExistsError:
            raise AdbenchError(
                f"{run_dir}: a run with this name exists and is never overwritten; choose another --name"
            ) from None
        return run_dir
    stem = f"{started:%Y%m%d-%H%M%S}-{'-'.join(config.methods)}"
    for attempt in range(1, 1000):
        run_dir = config.out / (stem if attempt == 1 else f"{stem}-{attempt}")
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            continue
    raise AdbenchError(f"{config.out}: could not create a new run folder for {stem}")


@contextmanager
def _progress(console: Console) -> Iterator[Progress]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        yield progress


def _score_in_chunks(detector: Detector, images: torch.Tensor, progress: Progress, label: str) -> Scores:
    task = progress.add_task(f"score {label}", total=len(images), status="")
    parts = []
    for chunk in images.split(SCORE_CHUNK):
        parts.append(detector.score(CategoryTensors.as_float(chunk)))
        progress.advance(task, len(chunk))
    progress.remove_task(task)
    maps = [part.anomaly_maps for part in parts]
    return Scores(
        np.concatenate([part.image_scores for part in parts]),
        None if any(m is None for m in maps) else np.concatenate(maps),
    )


class _Grid:
    """The state of one run while it executes: its folder, manifest and accumulated rows."""

    def __init__(self, config: RunConfig, console: Console, resume: bool = False) -> None:
        self.config = config
        self.console = console
        self.device = resolve_device(config.device)
        self.root = config.data if config.data is not None else default_dataset(cache_root())
        names = resolve_categories(self.root, config.categories)
        kinds = read_kinds(self.root, names, dict(config.kinds))
        self.methods = {name: load_method(name) for name in dict.fromkeys(config.methods)}
        self.files: dict[str, CategoryFiles] = {
            name: read_category(self.root, name, kinds[name]) for name in order_categories(names, kinds)
        }
        self.started = datetime.now(UTC)
        self.finished: set[tuple[str, str, int]] = set()
        if resume:
            self._reopen()
            return
        self.run_dir = _new_run_dir(config, self.started)
        self.rows: list[dict[str, Any]] = []
        self.manifest: dict[str, Any] = {
            "run_id": self.run_dir.name,
            "status": "running",
            "started_at": self.started.isoformat(),
            "config": config.to_manifest(),
            "dataset": str(self.root.resolve()),
            "device": str(self.device),
            "environment": environment(),
            "cells": [],
        }
        write_json_atomic(self.run_dir / MANIFEST, self.manifest)

    def _reopen(self) -> None:
        """Continue an interrupted run in its own folder: keep each finished cell, forget the rest.

        A cell is finished when the manifest lists it, its checkpoint exists and the results table holds
        its rows; the manifest entry is written last, so a kill at any moment leaves either all three or
        a cell that is redone from scratch.
        """
        assert self.config.run_name is not None
        self.run_dir = self.config.out / self.config.run_name
        self.manifest = json.loads((self.run_dir / MANIFEST).read_text())
        stored = (
            read_results(self.run_dir) if (self.run_dir / RESULTS_PARQUET).exists() else results_frame([])
        )
        row_cells = list(zip(stored["method"], stored["category"], stored["seed"].astype(int), strict=True))
        kept = []
        for cell in self.manifest["cells"]:
            key = (cell["method"], cell["category"], int(cell["seed"]))
            if key in set(row_cells) and Path(cell["checkpoint"]).is_file():
                kept.append(cell)
                self.finished.add(key)
        self.manifest["cells"] = kept
        self.rows = stored[[key in self.finished for key in row_cells]].to_dict("records")
        self.manifest |= {"status": "running", "environment": environment()}
        self.manifest.setdefault("resumed_at", []).append(self.started.isoformat())
        write_json_atomic(self.run_dir / MANIFEST, self.manifest)

    def execute(self) -> RunOutcome:
        try:
            with _progress(self.console) as progress:
                for category_name, files in self.files.items():
                    category = describe(files)
                    for method in self.methods.values():
                        for seed in self.config.seeds:
                            if (method.name, category_name, seed) in self.finished:
                                self.console.print(f"[blue]kept[/] {method.name}/{category_name}/seed{seed}")
                                continue
                            self._cell(progress, method, category_name, files, category, seed)
        except (KeyboardInterrupt, AdbenchError) as error:
            # Finished cells are already on disk; say in the manifest why the rest is missing.
            status = "interrupted" if isinstance(error, KeyboardInterrupt) else f"failed: {error}"
            self._finish(status)
            raise
        self._finish("finished")
        return RunOutcome(self.run_dir, results_frame(self.rows))

    def _finish(self, status: str) -> None:
        self.manifest |= {"status": status, "finished_at": datetime.now(UTC).isoformat()}
        write_json_atomic(self.run_dir / MANIFEST, self.manifest)

    def _cell(
        self,
        progress: Progress,
        method: type[Detector],
        category_name: str,
        files: CategoryFiles,
        category: CategorySpec,
        seed: int,
    ) -> None:
        label = f"{method.name}/{category_name}/seed{seed}"
        cell = Path("cells") / method.name / category_name / f"seed{seed}"
        cell_dir = self.run_dir / cell
        budget: TrainingBudget | None = None
        if self.config.eval_only_from is None:
            budget = method.default_budget(category, self.config.budget)
            seed_everything(seed)
            detector = method(method.default_params(category, self.config.budget), device=self.device)
            checkpoint = cell_dir / CHECKPOINT
        else:
            checkpoint = self.config.eval_only_from / cell / CHECKPOINT
            if not checkpoint.is_file():
                raise AdbenchError(
                    f"{checkpoint}: missing; that cell never finished training, so it cannot be re-scored"
                )
            detector = method.load(checkpoint, device=self.device)

        decode_task = progress.add_task(f"decode {category_name}", total=len(files.all_paths()), status="")
        tensors = load_category(files, category, detector.input_spec, lambda: progress.advance(decode_task))
        progress.remove_task(decode_task)

        if cell_dir.exists():  # left by an interrupted attempt; nothing in it was recorded as finished
            shutil.rmtree(cell_dir)
        cell_dir.mkdir(parents=True)
        fit_seconds = None if budget is None else _fit(progress, detector, tensors, budget, label, cell_dir)
        evaluate_started = time.perf_counter()
        threshold: ThresholdResult | None = None
        if self.config.score_metrics:
            try:
                metrics, threshold, score_seconds = _evaluate(progress, detector, tensors, label, cell_dir)
            except AdbenchError as error:
                raise AdbenchError(f"{label}: {error} (checkpoint kept in {cell_dir})") from None
        else:
            _, score_seconds = timed(
                detector.device, lambda: _score_in_chunks(detector, tensors.test, progress, label)
            )
            metrics = {}
        latency = measure_latency(
            detector, CategoryTensors.as_float(tensors.test[:1]), self.config.timing_repeats
        )
        metrics |= timing_metrics(fit_seconds, latency, len(tensors.test), score_seconds)
        evaluate_seconds = time.perf_counter() - evaluate_started

        self.rows += [
            {
                "run_id": self.run_dir.name,
                "method": method.name,
                "category": category_name,
                "category_kind": category.kind,
                "seed": seed,
                "metric": metric,
                "value": value,
            }
            for metric, value in metrics.items()
        ]
        write_results(self.run_dir, results_frame(self.rows))
        self.manifest["cells"].append(
            {
                "method": method.name,
                "inference_kind": method.inference_kind,
                "category": category_name,
                "seed": seed,
                "category_spec": dataclasses.asdict(category),
                "params": dataclasses.asdict(detector.params),
                "training_budget": None if budget is None else dataclasses.asdict(budget),
                "checkpoint": str(checkpoint),
                "fit_seconds": None if fit_seconds is None else round(fit_seconds, 3),
                "evaluate_seconds": round(evaluate_seconds, 3),
                "validation_threshold": None if threshold is None else dataclasses.asdict(threshold),
                "timing": {"latency_repeats": latency.repeats, "throughput_batch_size": SCORE_CHUNK},
            }
        )
        write_json_atomic(self.run_dir / MANIFEST, self.manifest)
        headline = ("image_auroc", "pixel_auroc", "pixel_aupro_0.3")
        self.console.print(
            f"[green]done[/] {label}: "
            + "".join(f"{metric} {metrics[metric]:.3f}, " for metric in headline if metric in metrics)
            + f"{metrics[LATENCY_MEDIAN]:.1f} ms/image"
            + ("" if fit_seconds is None else f" (fit {fit_seconds:.0f}s)")
        )


def _fit(
    progress: Progress,
    detector: Detector,
    tensors: CategoryTensors,
    budget: TrainingBudget,
    label: str,
    cell_dir: Path,
) -> float:
    """Train with a progress bar showing the losses; write losses.csv and the checkpoint; return seconds."""
    losses: list[dict[str, float]] = []
    steps = detector.training_steps(budget, len(tensors.train))
    task = progress.add_task(f"fit {label}", total=steps, status="")

    def on_step(step: int, step_losses: Mapping[str, float]) -> None:
        losses.append({"step": step, **step_losses})
        progress.update(task, advance=1, status=" ".join(f"{k} {v:.4g}" for k, v in step_losses.items()))

    started = time.perf_counter()
    detector.fit(CategoryTensors.as_float(tensors.train), budget, on_step)
    seconds = time.perf_counter() - started
    progress.remove_task(task)
    write_text_atomic(cell_dir / "losses.csv", pd.DataFrame(losses).to_csv(index=False))
    detector.save(cell_dir / CHECKPOINT)
    return seconds


def _evaluate(
    progress: Progress, detector: Detector, tensors: CategoryTensors, label: str, cell_dir: Path
) -> tuple[dict[str, float], ThresholdResult | None, float]:
    """Score the test set (scores.csv) and compute every metric the detector's output allows.

    Also returns the seconds that scoring the test set took, for the throughput figure.
    """
    scores, score_seconds = timed(
        detector.device, lambda: _score_in_chunks(detector, tensors.test, progress, label)
    )
    per_image = pd.DataFrame(
        {
            "image": tensors.test_names,
            "defect": tensors.test_defects,
            "label": tensors.test_labels,
            "score": scores.image_scores,
        }
    )
    write_text_atomic(cell_dir / "scores.csv", per_image.to_csv(index=False))
    _keep_samples(detector, tensors, scores, cell_dir)
    metrics = image_metrics(tensors.test_labels, scores.image_scores)
    if scores.anomaly_maps is None:
        return metrics, None, score_seconds
    # Defect-free validation maps choose the segmentation threshold (MVTec AD §4.3).
    validation = _score_in_chunks(detector, tensors.validation, progress, f"{label} validation")
    pixel, threshold = map_metrics(
        tensors.test_labels,
        scores.anomaly_maps,
        tensors.test_masks.numpy(),
        tensors.regions,
        validation.anomaly_maps,
    )
    return metrics | pixel, threshold, score_seconds


def run(config: RunConfig, console: Console | None = None) -> RunOutcome:
    """Train and evaluate every cell of the grid; the returned table is also on disk in the run folder."""
    return _Grid(config, console or Console(stderr=True)).execute()


def resume(run_dir: Path, console: Console | None = None) -> RunOutcome:
    """Finish an interrupted run in its own folder, keeping every cell it finished."""
    config = RunConfig.from_manifest(run_dir)
    return _Grid(config, console or Console(stderr=True), resume=True).execute()


def _keep_samples(detector: Detector, tensors: CategoryTensors, scores: Scores, cell_dir: Path) -> None:
    """Write the cell's few qualitative samples (images, reconstructions, maps, masks) for the report."""
    indices = pick_samples(tensors.test_labels, tensors.test_defects)
    if not indices:
        return
    samples = collect_samples(
        indices,
        tensors.test_names,
        tensors.test_labels,
        tensors.test,
        tensors.test_masks,
        scores.anomaly_maps,
        detector.reconstruct(CategoryTensors.as_float(tensors.test[indices])),
    )
    write_samples(cell_dir / SAMPLES_FILE, samples)
