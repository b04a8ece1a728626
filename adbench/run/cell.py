"""One cell of a grid, from start to finish: fit (or load) → score → evaluate → store in its folder.

The sequential loop (adbench/run/runner.py) and the Dask executor (adbench/run/dask_executor.py) both call
`run_cell` with a `CellTask`, which holds everything the cell needs, so it can run in another process;
the caller records the returned `CellOutcome` (results rows, manifest entry, the line to print).

    <run>/cells/<method>/<category>/seed<k>/
        checkpoint.safetensors   losses.csv   scores.csv   pimo.csv   samples.npz
        maps/<category>/test/<defect>/<image name>.tiff   (with --save-maps)
        anomaly_images/<category>/test_private{,_mixed}/<stem>.tiff   (MVTec AD 2, with --save-maps)

Pixel metrics are computed at the ground-truth masks' size by default: each test and validation map is
upsampled bilinearly (float32) to it and scored against the original masks and their regions, so every
method meets the same ground truth whatever its input size. `--pixel-resolution input` scores at the
detector's input size instead, against masks resized (nearest) to it.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from math import nan
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.markup import escape
from rich.progress import Progress

from adbench.atomic import write_text_atomic
from adbench.data.cache import CategoryTensors, fingerprint, load_category, load_native_masks
from adbench.data.layout import CategoryFiles
from adbench.detector import (
    CategorySpec,
    Detector,
    InputSpec,
    Scores,
    TrainingBudget,
    shared_params_mismatch,
)
from adbench.errors import AdbenchError
from adbench.evaluation.bootstrap import image_intervals, threshold_intervals
from adbench.evaluation.evaluate import image_metrics, map_metrics, upsample_maps
from adbench.evaluation.external_maps import write_maps, write_submission
from adbench.evaluation.metrics.pixel import AUPIMO_FPR_RANGE
from adbench.evaluation.metrics.threshold import ThresholdResult
from adbench.evaluation.sensitivity import (
    COLLAPSE_THRESHOLD,
    COLLAPSE_WARNING,
    INPUT_SENSITIVITY,
    MAX_IMAGES,
    input_sensitivity,
    is_collapsed,
)
from adbench.machine.devices import device_name, precision, resolve_device, seed_everything
from adbench.machine.timing import (
    LATENCY_MEDIAN,
    Latency,
    MachineLoad,
    measure_latency,
    measured,
    pinned_threads,
    timing_metrics,
)
from adbench.names import inside
from adbench.registry import load_method
from adbench.run.config import RunConfig, checked_params
from adbench.run.folder import (
    CHECKPOINT,
    LOSSES_FILE,
    MAPS_FOLDER,
    PIMO_FILE,
    SCORES_FILE,
    SUBMISSION_FOLDER,
    CellRecord,
    cell_folder,
)
from adbench.run.samples import SAMPLES_FILE, collect_samples, pick_samples, write_samples

# Images per `score` call, the evaluation batch size: the paper's batch of 32, small enough for the
# progress bar to move.
SCORE_CHUNK = 32


@dataclass(frozen=True)
class CellTask:
    """Everything one cell needs, so that it can run in another process (the Dask executor)."""

    config: RunConfig
    run_dir: Path
    method: str
    files: CategoryFiles
    category: CategorySpec
    seed: int
    data_fingerprint: str  # the category's files as the run checked them (adbench.data.cache.fingerprint)
    # torch's thread count where the run is driven: the count every cell of the run computes at, whichever
    # process runs it (run_cell says why).
    threads: int

    @property
    def label(self) -> str:
        return f"{self.method}/{self.files.name}/seed{self.seed}"


@dataclass(frozen=True)
class CellOutcome:
    rows: list[dict[str, Any]]
    record: CellRecord  # its entry in the manifest
    summary: str  # the line printed when the cell is recorded


def new_detector(
    method: type[Detector], category: CategorySpec, config: RunConfig, device: torch.device
) -> tuple[Detector, TrainingBudget]:
    """An untrained detector with the cell's params (the budget's defaults and the config's overrides)
    and its training budget."""
    params = checked_params(
        method.name, method.default_params(category, config.budget), config.method_params.get(method.name, {})
    )
    try:
        detector = method(params, device=device)
    except (ValueError, TypeError) as error:
        raise AdbenchError(f"params.{method.name}: {error}") from None
    return detector, method.default_budget(category, config.budget)


def run_cell(task: CellTask, progress: Progress) -> CellOutcome:
    """Fit (or load), score, time and store one cell in its folder; the caller records the outcome.

    The same numbers wherever the cell runs: torch splits its float reductions by its thread count, so
    seeded training at 2 threads and at 1 drifts apart (cbigan's image AUROC 0.725 against 0.700 on
    the tiny synthetic sand at the smoke budget), and a Dask worker's own count is 1 (its nanny sets
    OMP_NUM_THREADS=1). Every cell therefore computes at the run's `task.threads`, and starts from its
    seed whether it trains or loads (a detector that draws random numbers when scoring would otherwise
    depend on the cells run before it in the same process).
    """
    with pinned_threads(task.threads):
        seed_everything(task.seed)
        return _run_seeded_cell(task, progress)


def _run_seeded_cell(task: CellTask, progress: Progress) -> CellOutcome:
    config, category, label = task.config, task.category, task.label
    device = resolve_device(config.device)
    cell = cell_folder(task.method, task.files.name, task.seed)
    budget: TrainingBudget | None = None
    adopted = False  # the detector scores with the networks of the `trained_by` method's cell
    if config.eval_only_from is None:
        method = load_method(task.method)
        detector, budget = new_detector(method, task.category, config, device)
        checkpoint = cell / CHECKPOINT
        if method.trained_by is not None:
            _adopt(detector, method.trained_by, task, device)
            budget, adopted = None, True
    else:
        source = source_checkpoint(config.eval_only_from, task.method, task.files.name, task.seed)
        detector = load_method(task.method).load(source, device=device)
        checkpoint = Path(os.path.abspath(source))

    if fingerprint(task.files) != task.data_fingerprint:  # what a run measures is the data it checked
        raise AdbenchError(
            f"{task.files.root / task.files.name}: files of {task.files.name} were added, replaced or edited "
            "after the run checked the dataset; put them back as they were"
        )
    decode_task = progress.add_task(
        f"decode {escape(task.files.name)}", total=len(task.files.all_paths()), status=""
    )
    tensors = load_category(task.files, category, detector.input_spec, lambda: progress.advance(decode_task))
    progress.remove_task(decode_task)
    tensors = tensors.on(device)  # once per cell; the detectors' own .to(device) calls are then free

    cell_dir = clear_cell_folder(task.run_dir, cell)
    with precision(device, config.amp):
        fit_load = None if budget is None else _fit(progress, detector, tensors, budget, label, cell_dir)
        if adopted:
            detector.save(cell_dir / CHECKPOINT)  # what it scored with, for --resume and --eval-only-from
        evaluate_started = time.perf_counter()
        if config.score_metrics:
            try:
                evaluated = _evaluate(progress, detector, tensors, task, cell_dir)
            except AdbenchError as error:
                raise AdbenchError(f"{label}: {error} (checkpoint kept in {cell_dir})") from None
        else:
            _, score_load = measured(
                detector.device, lambda: _score_in_chunks(detector, tensors.test, progress, label)
            )
            evaluated = _Evaluated({}, {}, None, score_load, None, ())
        latency = _time_latency(progress, detector, tensors, config.timing_repeats, label)
    fit_seconds = None if fit_load is None else fit_load.wall_seconds
    timings = timing_metrics(fit_seconds, latency, len(tensors.test), evaluated.score_load.wall_seconds)
    metrics = evaluated.metrics | timings
    intervals = evaluated.intervals | (
        {} if latency.interval_ms is None else {LATENCY_MEDIAN: latency.interval_ms}
    )
    loads = {"fit": fit_load, "latency": latency.load, "throughput": evaluated.score_load}
    contention = {
        name: load.contention for name, load in loads.items() if load is not None and load.contention
    }
    collapsed = is_collapsed(metrics.get(INPUT_SENSITIVITY, nan))
    threshold = evaluated.threshold
    evaluate_seconds = time.perf_counter() - evaluate_started

    rows = [
        {
            "run_id": task.run_dir.name,
            "method": task.method,
            "category": task.files.name,
            "category_kind": category.kind,
            "seed": task.seed,
            "metric": metric,
            "value": value,
            "ci_low": intervals.get(metric, (nan, nan))[0],
            "ci_high": intervals.get(metric, (nan, nan))[1],
        }
        for metric, value in metrics.items()
    ]
    entry: dict[str, Any] = {
        "method": task.method,
        "inference_kind": detector.inference_kind,
        "category": task.files.name,
        "seed": task.seed,
        "category_spec": dataclasses.asdict(category),
        "params": dataclasses.asdict(detector.params),
        "training_budget": None if budget is None else dataclasses.asdict(budget),
        "steps": None if budget is None else detector.training_steps(budget, len(tensors.train)),
        "checkpoint": str(checkpoint),
        **({"trained_by": detector.trained_by} if adopted else {}),
        # What the chosen params substitute for a resource the paper used (procedural textures for DTD,
        # a self-trained VQ-VAE for the published one): the report's provenance says it.
        "params_departures": list(type(detector).params_departures(detector.params)),
        "device": device_name(device),
        "torch_threads": task.threads,
        "amp": config.amp,
        "fit_seconds": None if fit_seconds is None else round(fit_seconds, 3),
        "evaluate_seconds": round(evaluate_seconds, 3),
        "validation_threshold": None if threshold is None else threshold.to_manifest(),
        "pixel_resolution": _resolution(config, evaluated.pixel_size),
        "input_sensitivity": metrics.get(INPUT_SENSITIVITY),
        "warnings": ([COLLAPSE_WARNING] if collapsed else [])
        + ([upscaled_note(task.method, detector.input_spec, tensors)] if tensors.upscaled else [])
        + list(evaluated.notes)
        + [f"timing: {name} timed on a contended machine ({why})" for name, why in contention.items()],
        "timing": _timing_entry(latency, loads),
    }
    headline = ("image_auroc", "pixel_auroc", "pixel_aupro_0.3")
    summary = (
        f"[green]done[/] {escape(label)}: "
        + "".join(f"{metric} {metrics[metric]:.3f}, " for metric in headline if metric in metrics)
        + _latency_text(latency)
        + ("" if fit_seconds is None else f" (fit {fit_seconds:.0f}s)")
        + (
            f" [bold yellow]timed on a contended machine:[/] {', '.join(contention)} "
            f"({escape(contention.get('latency') or next(iter(contention.values())))})"
            if contention
            else ""
        )
        + (
            f" [bold red]warning: {COLLAPSE_WARNING}[/] "
            f"({INPUT_SENSITIVITY} {metrics[INPUT_SENSITIVITY]:.2g} < {COLLAPSE_THRESHOLD})"
            if collapsed
            else ""
        )
    )
    return CellOutcome(rows, CellRecord.of(entry), summary)


def _adopt(detector: Detector, provider: str, task: CellTask, device: torch.device) -> None:
    """Give `detector` the trained networks of the run's `provider` cell of the same category and seed
    (the runner ran it first)."""
    checkpoint = task.run_dir / cell_folder(provider, task.files.name, task.seed) / CHECKPOINT
    if not checkpoint.is_file():
        raise AdbenchError(
            f"{checkpoint}: missing; {task.method} scores with the networks {provider} trains, and that "
            f"cell has not finished; run {provider} on {task.files.name} with seed {task.seed} first"
        )
    trained = load_method(provider).load(checkpoint, device=device)
    mismatch = shared_params_mismatch(detector.params, trained.params)
    if mismatch is not None:
        raise AdbenchError(
            f"{checkpoint}: trained with other params than {task.method}'s ({mismatch}); run both methods "
            "with the same settings"
        )
    try:
        detector.adopt(trained)
    except (TypeError, ValueError) as error:
        raise AdbenchError(f"{task.label}: cannot adopt {checkpoint} ({error})") from None


def _timing_entry(latency: Latency, loads: dict[str, MachineLoad | None]) -> dict[str, Any]:
    """The manifest's account of a cell's timings: repeats, the median's interval, and per measurement
    what the machine was doing (`contended` says why it cannot be trusted, or is null)."""
    return {
        "latency_repeats": latency.repeats,
        "latency_median_interval_ms": latency.interval_ms,
        "throughput_batch_size": SCORE_CHUNK,
        "measurements": {name: load.to_json() for name, load in loads.items() if load is not None},
    }


def _latency_text(latency: Latency) -> str:
    interval = (
        ""
        if latency.interval_ms is None
        else f" [{latency.interval_ms[0]:.1f}, {latency.interval_ms[1]:.1f}]"
    )
    return f"{latency.median_ms:.1f} ms/image{interval} (median of {latency.repeats})"


def _resolution(config: RunConfig, size: tuple[int, int] | None) -> str | None:
    """Where the cell's pixel metrics were computed, as the manifest and the report say it."""
    if size is None:
        return None
    where = "the masks' size" if config.pixel_resolution == "native" else "the detector's input size"
    return f"{config.pixel_resolution}: {size[1]}x{size[0]}, {where}"


def _fit(
    progress: Progress,
    detector: Detector,
    tensors: CategoryTensors,
    budget: TrainingBudget,
    label: str,
    cell_dir: Path,
) -> MachineLoad:
    """Train with a progress bar showing the losses; write losses.csv and the checkpoint; return the
    training's timing."""
    losses: list[dict[str, float]] = []
    steps = detector.training_steps(budget, len(tensors.train))
    task = progress.add_task(f"fit {escape(label)}", total=steps, status="")

    def on_step(step: int, step_losses: Mapping[str, float]) -> None:
        losses.append({"step": step, **step_losses})
        progress.update(task, advance=1, status=" ".join(f"{k} {v:.4g}" for k, v in step_losses.items()))

    _, load = measured(
        detector.device, lambda: detector.fit(CategoryTensors.as_float(tensors.train), budget, on_step)
    )
    progress.remove_task(task)
    write_text_atomic(cell_dir / LOSSES_FILE, pd.DataFrame(losses).to_csv(index=False))
    detector.save(cell_dir / CHECKPOINT)
    return load


@dataclass(frozen=True)
class _Evaluated:
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]  # 95 % confidence intervals, for the metrics that have one
    threshold: ThresholdResult | None
    score_load: MachineLoad  # scoring the test set, for the throughput figure
    pixel_size: tuple[int, int] | None  # (H, W) at which pixel metrics were computed; None: no maps
    notes: tuple[str, ...]


def _evaluate(
    progress: Progress, detector: Detector, tensors: CategoryTensors, task: CellTask, cell_dir: Path
) -> _Evaluated:
    """Score the test set (scores.csv) and compute every metric the detector's output allows; with
    maps, also the per-image AUPIMO (pimo.csv) and, with --save-maps, the maps themselves (maps/)."""
    label = task.label
    scores, score_load = measured(
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
    write_text_atomic(cell_dir / SCORES_FILE, per_image.to_csv(index=False))
    _keep_samples(detector, tensors, scores, cell_dir)
    metrics = image_metrics(tensors.test_labels, scores.image_scores)
    intervals = image_intervals(tensors.test_labels, scores.image_scores, task.seed)
    # Defect-free images only, validation first; training images top up a small validation split.
    defect_free = CategoryTensors.as_float(torch.cat([tensors.validation, tensors.train])[:MAX_IMAGES])
    # One reconstruction of a few images, but an iterative method searches each of them: a line for it.
    check = progress.add_task(f"check {escape(label)} input sensitivity", total=None, status="")
    metrics[INPUT_SENSITIVITY] = input_sensitivity(detector, defect_free)
    progress.remove_task(check)
    if scores.anomaly_maps is None:
        return _Evaluated(metrics, intervals, None, score_load, None, ())
    # Defect-free validation maps choose the segmentation threshold (MVTec AD §4.3).
    validation = _score_in_chunks(detector, tensors.validation, progress, f"{label} validation")
    assert validation.anomaly_maps is not None
    config = task.config
    native = None
    if config.pixel_resolution == "native" or config.save_maps:
        native = load_native_masks(task.files)
    if native is not None and config.pixel_resolution == "native":
        maps = upsample_maps(scores.anomaly_maps, native.size)
        # The threshold and its minimum area apply to test maps at this size, so validation maps are
        # brought to it too.
        validation_maps = upsample_maps(validation.anomaly_maps, native.size)
        masks, regions, defects = native.masks, native.regions, native.defects
    else:
        maps, validation_maps = scores.anomaly_maps, validation.anomaly_maps
        masks, regions, defects = tensors.test_masks.numpy(), tensors.regions, tensors.defects
    with_intervals = maps.size <= config.pixel_ci_max_pixels
    evaluation = map_metrics(
        tensors.test_labels,
        maps,
        masks,
        regions,
        validation_maps,
        task.seed if with_intervals else None,
        defects,
        tensors.test_defects,
    )
    del validation_maps
    pixel_size = (int(maps.shape[1]), int(maps.shape[2]))
    anomalous = tensors.test_labels == 1
    pimo = per_image[anomalous][["image", "defect"]].assign(aupimo=evaluation.aupimo[anomalous])
    write_text_atomic(cell_dir / PIMO_FILE, pimo.to_csv(index=False))
    if native is not None and config.save_maps:
        write_maps(cell_dir / MAPS_FOLDER, task.files, upsample_maps(maps, native.size))
    if tensors.unlabeled is not None and config.save_maps:
        unlabeled = _score_in_chunks(detector, tensors.unlabeled, progress, f"{label} unlabeled")
        assert unlabeled.anomaly_maps is not None
        write_submission(cell_dir / SUBMISSION_FOLDER, task.files, unlabeled.anomaly_maps)
    notes: tuple[str, ...] = (
        () if np.isfinite(evaluation.metrics["pixel_aupimo"]) else (_aupimo_note(tensors, pixel_size),)
    )
    if not with_intervals:
        notes += (
            f"note: {tensors.category.name}: pixel metrics without confidence intervals; the test maps hold "
            f"{maps.size:,} pixels, more than --pixel-ci-max-pixels {config.pixel_ci_max_pixels:,}",
        )
    if evaluation.threshold is not None:  # image-level decisions: as cheap as the image metrics' intervals
        intervals |= threshold_intervals(tensors.test_labels, evaluation.threshold.anomalous, task.seed)
    return _Evaluated(
        metrics | evaluation.metrics,
        intervals | evaluation.intervals,
        evaluation.threshold,
        score_load,
        pixel_size,
        notes,
    )


def _aupimo_note(tensors: CategoryTensors, pixel_size: tuple[int, int]) -> str:
    normal = int(np.sum(tensors.test_labels == 0))
    pixels = normal * pixel_size[0] * pixel_size[1]
    low = AUPIMO_FPR_RANGE[0]
    return (
        f"note: {tensors.category.name}: pixel_aupimo undefined; its {normal} defect-free test images "
        f"hold {pixels:,} pixels at {pixel_size[1]}x{pixel_size[0]}, too few (or too tied at the top) to "
        f"resolve FPR {low:g}, which takes at least {round(1 / low):,}"
    )


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


def _time_latency(
    progress: Progress, detector: Detector, tensors: CategoryTensors, repeats: int, label: str
) -> Latency:
    """The latency repeats on the first test image, with a bar (an iterative method's take minutes)."""
    task = progress.add_task(f"time {escape(label)} latency", total=repeats + 1, status="")
    image = CategoryTensors.as_float(tensors.test[:1])
    latency = measure_latency(detector, image, repeats, lambda: progress.advance(task))
    progress.remove_task(task)
    return latency


def _score_in_chunks(detector: Detector, images: torch.Tensor, progress: Progress, label: str) -> Scores:
    task = progress.add_task(f"score {escape(label)}", total=len(images), status="")
    parts = []
    for chunk in images.split(SCORE_CHUNK):
        parts.append(detector.score(CategoryTensors.as_float(chunk)))
        progress.advance(task, len(chunk))
    progress.remove_task(task)
    maps = [part.anomaly_maps for part in parts]
    return Scores(
        np.concatenate([part.image_scores for part in parts]),
        None if any(m is None for m in maps) else np.concatenate([m for m in maps if m is not None]),
    )


def source_checkpoint(source_run: Path, method: str, category: str, seed: int) -> Path:
    checkpoint = source_run / cell_folder(method, category, seed) / CHECKPOINT
    if not checkpoint.is_file():
        raise AdbenchError(
            f"{checkpoint}: missing; that cell never finished training, so it cannot be re-scored"
        )
    return checkpoint


def upscaled_note(method: str, spec: InputSpec, tensors: CategoryTensors) -> str:
    total = len(tensors.train) + len(tensors.validation) + len(tensors.test)
    return (
        f"note: {tensors.category.name}: {len(tensors.upscaled)} of {total} images are smaller than "
        f"{method}'s {spec.image_size} px input and are enlarged to it, e.g. {tensors.upscaled[0]}"
    )


def clear_cell_folder(run_dir: Path, cell: Path) -> Path:
    """`run_dir / cell`, emptied of an interrupted attempt's files; never through a symbolic link, and
    never anywhere but below the run's cells/ folder, whatever names made `cell` (adbench.names)."""
    for depth in range(1, len(cell.parts) + 1):
        if (run_dir / Path(*cell.parts[:depth])).is_symlink():
            raise link_error(run_dir / Path(*cell.parts[:depth]))
    cell_dir = inside(run_dir / cell.parts[0], run_dir / cell)
    if cell_dir.exists():  # nothing in it was recorded as finished
        shutil.rmtree(cell_dir)
    cell_dir.mkdir(parents=True)
    return cell_dir


def link_error(link: Path) -> AdbenchError:
    return AdbenchError(
        f"{link}: a symbolic link inside a run folder, which adbench never follows (it deletes unfinished "
        "cells); replace it with the files themselves"
    )
