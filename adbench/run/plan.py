"""`adbench run --dry-run`: the whole grid resolved, cell by cell, without training or writing anything.

Each cell's plan holds what the run would record in its manifest (params, training budget, the optimiser
steps `fit` takes on this category's training images) plus the input and patch sizes and the method's
declared departures from its paper. With `estimate`, a few training steps and a few scored images per
method and category are timed on the chosen device and scaled to the cell's steps and test set; that
decodes the images into the data cache, as a run would, and writes nothing else.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from rich.progress import Progress

from adbench.data.cache import CategoryTensors, describe, load_category
from adbench.data.layout import CategoryFiles
from adbench.detector import Detector, TrainingBudget
from adbench.errors import AdbenchError
from adbench.machine.devices import resolve_device, seed_everything
from adbench.machine.timing import MachineLoad, measured
from adbench.run.cell import new_detector
from adbench.run.config import RunConfig
from adbench.run.runner import resolve_grid

# Timed per (method, category) for an estimate: optimiser steps after one warm-up step, and test images.
ESTIMATE_STEPS = 2
ESTIMATE_IMAGES = 4


@dataclass(frozen=True)
class CellPlan:
    method: str
    inference_kind: str
    category: str
    category_kind: str
    dataset: str  # the resolved data root
    seed: int
    params: dict[str, Any]
    training_budget: dict[str, Any]
    steps: int  # optimiser steps on this category's training images
    batch_size: int
    image_size: int
    patch_size: int | None  # None for a method without patches
    train_images: int
    scored_images: int  # test and validation images, each scored once (with --save-maps, also unlabeled)
    departures: tuple[str, ...]
    # The method whose cell trains the networks this one scores with (it trains nothing itself: steps 0).
    trained_by: str | None = None
    # Why the run would stop before training (a missing resource: `Detector.check_resources` or
    # `check_scoring_resources`); None: it would go on.
    stops_before_training: str | None = None
    estimated_seconds: float | None = None
    # Why the estimate's timings ran on a contended machine (timing.MachineLoad's words); None when quiet.
    estimate_contended: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"departures": list(self.departures)}


def plan_grid(config: RunConfig, estimate: bool = False, progress: Progress | None = None) -> list[CellPlan]:
    """Every cell of the grid in run order; with `estimate`, its duration on `config.device`, each
    (method, category) timing advancing a `progress` bar (they take seconds each)."""
    grid = resolve_grid(config, dry_run=True)
    if estimate and grid.blocked:
        raise AdbenchError(next(iter(grid.blocked.values())))  # the timed steps need what is missing
    device = resolve_device(config.device)
    bar = progress if estimate else None
    probes = len(grid.files) * len(grid.methods)
    task = None if bar is None else bar.add_task("estimate: timing", total=probes, status="")
    cells = []
    for files in grid.files.values():
        category = describe(files, remember=False)
        for method in grid.methods.values():
            detector, budget = new_detector(method, category, config, torch.device("cpu"))
            trained_by = method.trained_by if config.eval_only_from is None else None
            steps = 0 if trained_by else detector.training_steps(budget, len(files.train))
            seconds, contended = None, None
            if estimate:
                if bar is not None and task is not None:
                    bar.update(task, status=f"{method.name}/{files.name}")
                seconds, contended = _estimate(method, steps, budget, files, config, device)
                if bar is not None and task is not None:
                    bar.advance(task)
            for seed in config.seeds:
                cells.append(
                    CellPlan(
                        method=method.name,
                        inference_kind=method.inference_kind,
                        category=files.name,
                        category_kind=category.kind,
                        dataset=str(grid.root.resolve()),
                        seed=seed,
                        params=dataclasses.asdict(detector.params),
                        training_budget=dataclasses.asdict(budget),
                        steps=steps,
                        batch_size=budget.batch_size,
                        image_size=detector.input_spec.image_size,
                        patch_size=getattr(detector.params, "patch_size", None),
                        train_images=len(files.train),
                        scored_images=_scored_images(files, config),
                        departures=method.departures(category, config.budget)
                        + method.params_departures(detector.params),
                        trained_by=trained_by,
                        stops_before_training=grid.blocked.get(method.name),
                        estimated_seconds=seconds,
                        estimate_contended=contended,
                    )
                )
    if bar is not None and task is not None:
        bar.remove_task(task)
    return cells


def _estimate(
    method: type[Detector],
    steps: int,
    budget: TrainingBudget,
    files: CategoryFiles,
    config: RunConfig,
    device: torch.device,
) -> tuple[float, str | None]:
    """Seconds the cell would take (timed training steps × its `steps` + timed scoring × its images), and
    why those timings were contended (None on a quiet machine), measured as the run's timings are."""
    seed_everything(0)
    category = describe(files)  # remembered in the cache: an estimate decodes the images, as a run does
    detector, _ = new_detector(method, category, config, device)
    tensors = load_category(files, category, detector.input_spec).on(device)
    train = CategoryTensors.as_float(tensors.train)
    # A warm-up, which also leaves a cell that trains nothing itself (steps 0) with networks to score.
    detector.fit(train, TrainingBudget(steps=1, batch_size=budget.batch_size))
    loads: list[MachineLoad] = []
    seconds = 0.0
    if steps:
        _, training = measured(
            device, lambda: detector.fit(train, TrainingBudget(ESTIMATE_STEPS, budget.batch_size))
        )
        loads.append(training)
        seconds += training.wall_seconds / ESTIMATE_STEPS * steps
    images = CategoryTensors.as_float(tensors.test[:ESTIMATE_IMAGES])
    detector.score(images[:1])  # warm-up
    _, scoring = measured(device, lambda: detector.score(images))
    loads.append(scoring)
    seconds += scoring.wall_seconds / len(images) * _scored_images(files, config)
    return seconds, _contention(*loads)


def _contention(*loads: MachineLoad) -> str | None:
    return next((load.contention for load in loads if load.contention), None)


def _scored_images(files: CategoryFiles, config: RunConfig) -> int:
    """Images a cell scores: test and validation, and MVTec AD 2's unlabeled ones when their maps are saved
    for submission."""
    return len(files.test) + len(files.validation) + (len(files.unlabeled) if config.save_maps else 0)
