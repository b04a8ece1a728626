"""Running the grid: methods × categories × seeds, each cell fit → score → metrics.

Everything that can be checked before training is checked first (method names, categories, folder
structure, the names, types and ranges of per-method parameters, then every image the grid uses,
decoded into the cache), so a typo or a damaged file fails before the run folder exists, not after an
hour. The results table is rewritten atomically after every cell, so an interruption keeps every
finished cell's rows. Cells run one after another here, or as Dask tasks (adbench/dask_executor.py):
`run_cell` needs only its `CellTask`, and this process alone records outcomes.

Run folder:

    <out>/<run-id>/manifest.json     resolved config, seeds, per-cell params and budgets, versions, commit;
                                     paths of the run's own files are relative to the run folder
    <out>/<run-id>/.lock             while a process works in the run (adbench.run_lock)
    <out>/<run-id>/results.parquet   the tidy table (and results.csv)
    <out>/<run-id>/cells/<method>/<category>/seed<k>/
        checkpoint.safetensors   losses.csv   scores.csv   samples.npz
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
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
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from adbench.atomic import make_folder, write_json_atomic, write_text_atomic
from adbench.config import RunConfig, checked_params
from adbench.data.cache import CategoryTensors, cache_root, describe, load_category
from adbench.data.layout import CategoryFiles, order_categories, read_category, read_kinds, resolve_categories
from adbench.data.synth import default_dataset
from adbench.detector import CategorySpec, Detector, InputSpec, Scores, TrainingBudget
from adbench.errors import AdbenchError
from adbench.evaluation import image_metrics, map_metrics
from adbench.files import read_json_file
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
from adbench.run_lock import run_lock
from adbench.samples import SAMPLES_FILE, collect_samples, pick_samples, write_samples
from adbench.sensitivity import (
    COLLAPSE_THRESHOLD,
    COLLAPSE_WARNING,
    INPUT_SENSITIVITY,
    MAX_IMAGES,
    input_sensitivity,
    is_collapsed,
)
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


def _parse_device(name: str) -> torch.device:
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise AdbenchError(f"--device {name}: {error}; use auto, cpu, cuda, cuda:N or mps") from None


def resolve_device(name: str) -> torch.device:
    """The device `name` means on this machine, refused in one line where this machine lacks it."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    device = _parse_device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AdbenchError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise AdbenchError(
            f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s), "
            f"cuda:0 to cuda:{torch.cuda.device_count() - 1}"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise AdbenchError(f"--device {name}: MPS is not available on this machine; use --device cpu")
    return device


def _precision(device: torch.device, amp: bool) -> torch.autocast:
    """bfloat16 autocast with --amp: it keeps float32's range, so no loss scaling is needed in the
    methods' own training loops (float16 would need a GradScaler there)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp)


def _new_run_dir(config: RunConfig, started: datetime) -> Path:
    make_folder(config.out)
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
    task = progress.add_task(f"score {escape(label)}", total=len(images), status="")
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


def _grid_device(config: RunConfig) -> str:
    """The device the grid runs on, as the manifest records it.

    Workers of a remote Dask cluster may have devices this machine lacks (GPU nodes behind a CPU login
    node), so there each worker resolves --device for its own cells (recorded per cell) and only the
    name's syntax is checked here.
    """
    if config.executor == "dask" and config.scheduler is not None:
        if config.device != "auto":
            _parse_device(config.device)
        return f"{config.device} (resolved on each worker)"
    return str(resolve_device(config.device))


@dataclass(frozen=True)
class ResolvedGrid:
    """What a config names, found and checked: the data's root, the method classes, each category's files."""

    root: Path
    methods: dict[str, type[Detector]]
    files: dict[str, CategoryFiles]  # in grid order (textures first)


def resolve_grid(config: RunConfig, dry_run: bool = False) -> ResolvedGrid:
    """Everything that can fail before training, checked: the cache, the data, the methods, every
    method's parameter overrides for every category. A `dry_run` writes nothing, except the built-in
    synthetic dataset into the cache when it is used and not there yet."""
    if not dry_run or config.data is None:
        make_folder(cache_root())  # an unusable cache must stop the run before its folder exists
    root = config.data if config.data is not None else default_dataset(cache_root())
    names = resolve_categories(root, config.categories)
    kinds = read_kinds(root, names, dict(config.kinds))
    methods = {name: load_method(name) for name in dict.fromkeys(config.methods)}
    files = {name: read_category(root, name, kinds[name]) for name in order_categories(names, kinds)}
    for name, overrides in config.method_params.items():  # names and types, before any training
        for category_files in files.values():
            category = describe(category_files, remember=not dry_run)
            checked_params(name, methods[name].default_params(category, config.budget), overrides)
    return ResolvedGrid(root, methods, files)


def cell_folder(method: str, category: str, seed: int) -> Path:
    """A cell's folder relative to its run folder; the manifest stores paths relative to it too, so a
    run folder can be moved or resumed from anywhere."""
    return Path("cells") / method / category / f"seed{seed}"


@dataclass(frozen=True)
class _PendingCell:
    method: type[Detector]
    files: CategoryFiles
    category: CategorySpec
    seed: int


class _Grid:
    """The state of one run while it executes: its folder, manifest and accumulated rows.

    Everything that can fail on the data (every image of the cells to run decoded, checked and cached)
    fails before the run folder is created or, when resuming, before anything in it changes; the run
    folder's lock (adbench.run_lock) is held from the first write into it to the last.
    """

    def __init__(self, config: RunConfig, console: Console, resume: bool = False) -> None:
        self.config = config
        self.console = console
        if config.executor == "dask":
            from adbench.dask_executor import require_dask

            require_dask()
        self.device = _grid_device(config)
        grid = resolve_grid(config)
        self.root, self.methods, self.files = grid.root, grid.methods, grid.files
        self.started = datetime.now(UTC)
        self.resume = resume
        self.finished: set[tuple[str, str, int]] = set()
        self.rows: list[dict[str, Any]] = []
        self.manifest: dict[str, Any] = {}
        assert config.run_name is not None or not resume
        self.run_dir = config.out / config.run_name if resume and config.run_name else Path()

    def execute(self) -> RunOutcome:
        with contextlib.ExitStack() as held:
            if self.resume:
                held.enter_context(run_lock(self.run_dir))
                self._read_stored()
            pending = self._pending()
            self._check_data(pending)
            if self.resume:
                self._reopen()
                for category in self.files:  # in grid order
                    for method, seed in itertools.product(self.methods, self.config.seeds):
                        if (method, category, seed) in self.finished:
                            self.console.print(f"[blue]kept[/] {escape(f'{method}/{category}/seed{seed}')}")
            else:
                self._create()
                held.enter_context(run_lock(self.run_dir))
                write_json_atomic(self.run_dir / MANIFEST, self.manifest)
            tasks = [
                CellTask(self.config, self.run_dir, c.method.name, c.files, c.category, c.seed)
                for c in pending
            ]
            return self._run(tasks)

    def _create(self) -> None:
        self.run_dir = _new_run_dir(self.config, self.started)
        self.manifest = {
            "run_id": self.run_dir.name,
            "status": "running",
            "started_at": self.started.isoformat(),
            "config": self.config.to_manifest(),
            "dataset": str(self.root.resolve()),
            "device": self.device,
            "environment": environment(),
            "cells": [],
        }

    def _read_stored(self) -> None:
        """Find the finished cells of the run being resumed, changing nothing yet.

        A cell is finished when the manifest lists it, the results table holds its rows and its folder
        (with its checkpoint, for a run that trained) is inside this run folder; the manifest entry is
        written last, so a kill at any moment leaves either all three or a cell that is redone. Stored
        paths are never followed: the cell's place is derived from its method, category and seed.
        """
        manifest_path = self.run_dir / MANIFEST
        self.manifest = read_json_file(manifest_path, "run manifest", "expected an adbench run folder")
        cells = _stored_cells(self.manifest, manifest_path)
        _refuse_links(self.run_dir / "cells")
        stored = (
            read_results(self.run_dir) if (self.run_dir / RESULTS_PARQUET).exists() else results_frame([])
        )
        row_cells = list(zip(stored["method"], stored["category"], stored["seed"].astype(int), strict=True))
        with_rows = set(row_cells)
        kept = []
        for cell in cells:
            key = (cell["method"], cell["category"], int(cell["seed"]))
            folder = self.run_dir / cell_folder(*key)
            on_disk = folder.is_dir() if self.config.eval_only_from else (folder / CHECKPOINT).is_file()
            if key in with_rows and on_disk and key not in self.finished:
                if self.config.eval_only_from is None:
                    cell = cell | {"checkpoint": str(cell_folder(*key) / CHECKPOINT)}
                kept.append(cell)
                self.finished.add(key)
        self.manifest["cells"] = kept
        self.rows = stored[[key in self.finished for key in row_cells]].to_dict("records")

    def _reopen(self) -> None:
        """Continue the run in its own folder: forget its unfinished cells and a killed writer's files."""
        for leftover in _stale_temporary_files(self.run_dir):
            leftover.unlink(missing_ok=True)
        self.manifest |= {"status": "running", "environment": environment()}
        self.manifest.setdefault("resumed_at", []).append(self.started.isoformat())
        write_json_atomic(self.run_dir / MANIFEST, self.manifest)

    def _pending(self) -> list[_PendingCell]:
        """The cells still to run, in grid order (categories, then methods, then seeds)."""
        pending = []
        for category_name, files in self.files.items():
            category = describe(files)
            for method in self.methods.values():
                for seed in self.config.seeds:
                    if (method.name, category_name, seed) not in self.finished:
                        pending.append(_PendingCell(method, files, category, seed))
        return pending

    def _check_data(self, pending: list[_PendingCell]) -> None:
        """Decode every image the pending cells use, at each input size they need, into the cache."""
        first_seed: dict[tuple[str, str], _PendingCell] = {}
        for cell in pending:  # the seeds of a method and category share their input spec
            first_seed.setdefault((cell.method.name, cell.files.name), cell)
        needed: dict[tuple[str, InputSpec], _PendingCell] = {}
        for cell in first_seed.values():
            spec = _input_spec(cell.method, cell.category, self.config, cell.seed)
            needed.setdefault((cell.files.name, spec), cell)
        total = sum(len(cell.files.all_paths()) for cell in needed.values())
        with _progress(self.console) as progress:
            task = progress.add_task("check data", total=total, status="")
            done = 0
            for (name, spec), cell in needed.items():
                progress.update(task, status=f"{escape(name)} at {spec.image_size} px")
                tensors = load_category(cell.files, cell.category, spec, lambda: progress.advance(task))
                done += len(cell.files.all_paths())
                progress.update(task, completed=done)  # a cached entry calls no progress callback
                if tensors.upscaled:
                    self.console.print(_upscaled_note(cell.method.name, spec, tensors), highlight=False)

    def _run(self, tasks: list[CellTask]) -> RunOutcome:
        try:
            if self.config.executor == "dask":
                from adbench.dask_executor import run_on_dask

                run_on_dask(self.config, tasks, self.record, self.console)
            else:
                with _progress(self.console) as progress:
                    for task in tasks:
                        self.record(run_cell(task, progress))
        except BaseException as error:
            # Finished cells are already on disk; say in the manifest why the rest is missing.
            if isinstance(error, KeyboardInterrupt):
                status = "interrupted"
            elif isinstance(error, AdbenchError):
                status = f"failed: {error}"
            else:  # a bug, in a method or here: its traceback follows on the terminal
                status = f"failed: {type(error).__name__}: {error}"
            if status.startswith("failed") and not self.resume and not self._worth_keeping():
                shutil.rmtree(self.run_dir)  # nothing in it; keeping it would only block its --name
                raise
            # On a full disk this write fails too; the user must see the first error, not this one.
            with contextlib.suppress(AdbenchError):
                self._finish(status)
            raise
        self._finish("finished")
        return RunOutcome(self.run_dir, self._table())

    def _worth_keeping(self) -> bool:
        """A finished cell, or a trained checkpoint whose scoring failed (the error points to it)."""
        return bool(self.manifest["cells"]) or any((self.run_dir / "cells").rglob(CHECKPOINT))

    def _table(self) -> pd.DataFrame:
        """Every finished cell's rows in grid order, whatever order the cells finished in."""
        order = {name: index for index, name in enumerate(self.files)}
        methods = {name: index for index, name in enumerate(self.methods)}
        ranked = sorted(
            self.rows,
            key=lambda row: (order.get(row["category"], -1), methods.get(row["method"], -1), row["seed"]),
        )
        return results_frame(ranked)

    def record(self, outcome: CellOutcome) -> None:
        """Add a finished cell: its rows to the results table, then its entry to the manifest (last, so
        that a cell is only ever counted finished when everything of it is on disk)."""
        self.rows += outcome.rows
        write_results(self.run_dir, self._table())
        self.manifest["cells"].append(outcome.manifest_entry)
        write_json_atomic(self.run_dir / MANIFEST, self.manifest)
        self.console.print(outcome.summary)

    def _finish(self, status: str) -> None:
        self.manifest |= {"status": status, "finished_at": datetime.now(UTC).isoformat()}
        write_json_atomic(self.run_dir / MANIFEST, self.manifest)


def _input_spec(method: type[Detector], category: CategorySpec, config: RunConfig, seed: int) -> InputSpec:
    """The images a cell's detector will ask for: built untrained on the CPU, or read from the checkpoint
    it re-scores (which also finds a missing or foreign checkpoint before any cell runs)."""
    if config.eval_only_from is None:
        return new_detector(method, category, config, torch.device("cpu"))[0].input_spec
    return method.load(_source_checkpoint(config.eval_only_from, method.name, category.name, seed)).input_spec


def _source_checkpoint(source_run: Path, method: str, category: str, seed: int) -> Path:
    checkpoint = source_run / cell_folder(method, category, seed) / CHECKPOINT
    if not checkpoint.is_file():
        raise AdbenchError(
            f"{checkpoint}: missing; that cell never finished training, so it cannot be re-scored"
        )
    return checkpoint


def _upscaled_note(method: str, spec: InputSpec, tensors: CategoryTensors) -> str:
    total = len(tensors.train) + len(tensors.validation) + len(tensors.test)
    return (
        f"note: {tensors.category.name}: {len(tensors.upscaled)} of {total} images are smaller than "
        f"{method}'s {spec.image_size} px input and are enlarged to it, e.g. {tensors.upscaled[0]}"
    )


def _stored_cells(manifest: Any, path: Path) -> list[dict[str, Any]]:
    """The manifest's cell entries, each checked to name a method, a category and a seed."""
    cells = manifest.get("cells") if isinstance(manifest, dict) else None
    if not isinstance(cells, list):
        raise AdbenchError(f"{path}: no list of cells; it was changed outside adbench")
    for index, cell in enumerate(cells):
        valid = (
            isinstance(cell, dict)
            and isinstance(cell.get("method"), str)
            and isinstance(cell.get("category"), str)
            and isinstance(cell.get("seed"), int)
            and not isinstance(cell.get("seed"), bool)
            and 0 <= cell["seed"] < 2**32
        )
        if not valid:
            raise AdbenchError(
                f"{path}: cell {index} does not name a method, a category and a seed from 0 to 2^32-1 "
                f"({json.dumps(cell)[:120]}); it was changed outside adbench"
            )
    return cells


def _refuse_links(folder: Path) -> None:
    """No symbolic link anywhere under `folder`: resuming deletes unfinished cell folders, and a link
    would make that delete someone else's files."""
    if folder.is_symlink():
        raise _link_error(folder)
    for parent, folders, files in os.walk(folder):  # os.walk does not follow links into folders
        for name in (*folders, *files):
            if (Path(parent) / name).is_symlink():
                raise _link_error(Path(parent) / name)


def _link_error(link: Path) -> AdbenchError:
    return AdbenchError(
        f"{link}: a symbolic link inside a run folder, which adbench never follows (it deletes unfinished "
        "cells); replace it with the files themselves"
    )


def _stale_temporary_files(run_dir: Path) -> list[Path]:
    """Temporary files of atomic writes (adbench.atomic) that a killed process left behind."""
    return [
        path for path in (*run_dir.glob(".*.tmp"), *run_dir.glob("cells/*/*/seed*/.*.tmp")) if path.is_file()
    ]


def _clear_cell_folder(run_dir: Path, cell: Path) -> Path:
    """`run_dir / cell`, emptied of an interrupted attempt's files; never through a symbolic link."""
    for depth in range(1, len(cell.parts) + 1):
        if (run_dir / Path(*cell.parts[:depth])).is_symlink():
            raise _link_error(run_dir / Path(*cell.parts[:depth]))
    cell_dir = run_dir / cell
    if cell_dir.exists():  # nothing in it was recorded as finished
        shutil.rmtree(cell_dir)
    cell_dir.mkdir(parents=True)
    return cell_dir


@dataclass(frozen=True)
class CellTask:
    """Everything one cell needs, so that it can run in another process (the Dask executor)."""

    config: RunConfig
    run_dir: Path
    method: str
    files: CategoryFiles
    category: CategorySpec
    seed: int

    @property
    def label(self) -> str:
        return f"{self.method}/{self.files.name}/seed{self.seed}"


@dataclass(frozen=True)
class CellOutcome:
    rows: list[dict[str, Any]]
    manifest_entry: dict[str, Any]
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
    """Fit (or load), score, time and store one cell in its folder; the caller records the outcome."""
    config, category, label = task.config, task.category, task.label
    device = resolve_device(config.device)
    cell = cell_folder(task.method, task.files.name, task.seed)
    budget: TrainingBudget | None = None
    if config.eval_only_from is None:
        seed_everything(task.seed)
        detector, budget = new_detector(load_method(task.method), task.category, config, device)
        checkpoint = cell / CHECKPOINT
    else:
        source = _source_checkpoint(config.eval_only_from, task.method, task.files.name, task.seed)
        detector = load_method(task.method).load(source, device=device)
        checkpoint = Path(os.path.abspath(source))

    decode_task = progress.add_task(
        f"decode {escape(task.files.name)}", total=len(task.files.all_paths()), status=""
    )
    tensors = load_category(task.files, category, detector.input_spec, lambda: progress.advance(decode_task))
    progress.remove_task(decode_task)
    tensors = tensors.on(device)  # once per cell; the detectors' own .to(device) calls are then free

    cell_dir = _clear_cell_folder(task.run_dir, cell)
    with _precision(device, config.amp):
        fit_seconds = None if budget is None else _fit(progress, detector, tensors, budget, label, cell_dir)
        evaluate_started = time.perf_counter()
        threshold: ThresholdResult | None = None
        if config.score_metrics:
            try:
                metrics, threshold, score_seconds = _evaluate(progress, detector, tensors, label, cell_dir)
            except AdbenchError as error:
                raise AdbenchError(f"{label}: {error} (checkpoint kept in {cell_dir})") from None
        else:
            _, score_seconds = timed(
                detector.device, lambda: _score_in_chunks(detector, tensors.test, progress, label)
            )
            metrics = {}
        latency = measure_latency(detector, CategoryTensors.as_float(tensors.test[:1]), config.timing_repeats)
    metrics |= timing_metrics(fit_seconds, latency, len(tensors.test), score_seconds)
    collapsed = is_collapsed(metrics.get(INPUT_SENSITIVITY, float("nan")))
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
        }
        for metric, value in metrics.items()
    ]
    entry = {
        "method": task.method,
        "inference_kind": detector.inference_kind,
        "category": task.files.name,
        "seed": task.seed,
        "category_spec": dataclasses.asdict(category),
        "params": dataclasses.asdict(detector.params),
        "training_budget": None if budget is None else dataclasses.asdict(budget),
        "steps": None if budget is None else detector.training_steps(budget, len(tensors.train)),
        "checkpoint": str(checkpoint),
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "amp": config.amp,
        "fit_seconds": None if fit_seconds is None else round(fit_seconds, 3),
        "evaluate_seconds": round(evaluate_seconds, 3),
        "validation_threshold": None if threshold is None else dataclasses.asdict(threshold),
        "input_sensitivity": metrics.get(INPUT_SENSITIVITY),
        "warnings": ([COLLAPSE_WARNING] if collapsed else [])
        + ([_upscaled_note(task.method, detector.input_spec, tensors)] if tensors.upscaled else []),
        "timing": {"latency_repeats": latency.repeats, "throughput_batch_size": SCORE_CHUNK},
    }
    headline = ("image_auroc", "pixel_auroc", "pixel_aupro_0.3")
    summary = (
        f"[green]done[/] {escape(label)}: "
        + "".join(f"{metric} {metrics[metric]:.3f}, " for metric in headline if metric in metrics)
        + f"{metrics[LATENCY_MEDIAN]:.1f} ms/image"
        + ("" if fit_seconds is None else f" (fit {fit_seconds:.0f}s)")
        + (
            f" [bold red]warning: {COLLAPSE_WARNING}[/] "
            f"({INPUT_SENSITIVITY} {metrics[INPUT_SENSITIVITY]:.2g} < {COLLAPSE_THRESHOLD})"
            if collapsed
            else ""
        )
    )
    return CellOutcome(rows, entry, summary)


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
    task = progress.add_task(f"fit {escape(label)}", total=steps, status="")

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
    # Defect-free images only, validation first; training images top up a small validation split.
    metrics[INPUT_SENSITIVITY] = input_sensitivity(
        detector, CategoryTensors.as_float(torch.cat([tensors.validation, tensors.train])[:MAX_IMAGES])
    )
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


def resume(run_dir: Path, console: Console | None = None, scheduler: str | None = None) -> RunOutcome:
    """Finish an interrupted run in its own folder, keeping every cell it finished; a run on an existing
    Dask cluster needs the `scheduler` address again (it is never taken from the folder)."""
    run_dir = Path(os.path.abspath(run_dir))  # `--resume .` from inside the run folder names it
    config = RunConfig.from_manifest(run_dir, scheduler)
    if config.data is not None and not config.data.is_dir():
        raise AdbenchError(
            f"{run_dir}: its dataset {config.data} is not there any more; put it back at that path "
            "(a resumed run goes on with the same data)"
        )
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
