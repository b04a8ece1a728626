"""Running the grid: methods × categories × seeds, one cell (adbench/run/cell.py) after another.

Everything that can be checked before training is checked first (method names, categories, folder
structure, the names, types and ranges of per-method parameters, then every image the grid uses,
decoded into the cache), so a typo or a damaged file fails before the run folder exists, not after an
hour. The results table is rewritten atomically after every cell, so an interruption keeps every
finished cell's rows. Cells run here one after another, or as Dask tasks (adbench/run/dask_executor.py);
either way this process alone records their outcomes.

The run folder's layout and its manifest are adbench.run.folder's.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from rich.console import Console
from rich.markup import escape

from adbench.atomic import make_folder, user_error
from adbench.data.cache import cache_root, describe, fingerprint, load_category, load_native_masks
from adbench.data.formats import DatasetFormat, read_dataset
from adbench.data.layout import CategoryFiles
from adbench.data.synth import default_dataset
from adbench.detector import CategorySpec, Detector, InputSpec, shared_params_mismatch
from adbench.errors import AdbenchError
from adbench.machine.devices import parse_device, resolve_device
from adbench.machine.kernels import PORTABLE_VARIABLE, kernels_in_use
from adbench.progress import stage_progress
from adbench.registry import load_method
from adbench.run.cell import (
    CellOutcome,
    CellTask,
    link_error,
    new_detector,
    run_cell,
    source_checkpoint,
    upscaled_note,
)
from adbench.run.config import RunConfig, checked_params
from adbench.run.dask_executor import require_dask, run_on_dask
from adbench.run.folder import (
    CELLS_FOLDER,
    CHECKPOINT,
    MANIFEST,
    Manifest,
    stale_temporary_files,
    write_manifest,
)
from adbench.run.lock import run_lock
from adbench.run.results import (
    RESULTS_PARQUET,
    environment,
    read_results,
    results_frame,
    write_results,
)


class RunInterrupted(Exception):
    """Ctrl-C or SIGTERM (`interruption`) after the run folder was made; its finished cells are kept."""

    def __init__(self, run_dir: Path, interruption: KeyboardInterrupt):
        super().__init__(str(run_dir))
        self.run_dir, self.interruption = run_dir, interruption


@dataclass(frozen=True)
class RunOutcome:
    run_dir: Path
    results: pd.DataFrame
    manifest: Manifest


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


def _grid_device(config: RunConfig) -> str:
    """The device the grid runs on, as the manifest records it.

    Workers of a remote Dask cluster may have devices this machine lacks (GPU nodes behind a CPU login
    node), so there each worker resolves --device for its own cells (recorded per cell) and only the
    name's syntax is checked here.
    """
    if config.executor == "dask" and config.scheduler is not None:
        if config.device != "auto":
            parse_device(config.device)
        return f"{config.device} (resolved on each worker)"
    return str(resolve_device(config.device))


@dataclass(frozen=True)
class ResolvedGrid:
    """What a config names, found and checked: the data's root, the method classes, each category's files."""

    root: Path
    format: DatasetFormat
    methods: dict[str, type[Detector]]
    files: dict[str, CategoryFiles]  # in grid order (textures first)
    # A dry run's methods whose run would stop before training (a missing resource): the one-line reason.
    blocked: dict[str, str] = field(default_factory=dict)


def resolve_grid(config: RunConfig, dry_run: bool = False) -> ResolvedGrid:
    """Everything that can fail before training, checked: the cache, the data, the methods, every
    method's parameter overrides for every category. A `dry_run` writes nothing, except the built-in
    synthetic dataset into the cache when it is used and not there yet, and records a missing resource in
    `blocked` instead of raising, so that its plan can still be shown."""
    if not dry_run or config.data is None:
        make_folder(cache_root())  # an unusable cache must stop the run before its folder exists
    root = config.data if config.data is not None else default_dataset(cache_root())
    dataset = read_dataset(root, config.categories, dict(config.kinds), config.data_format)
    methods = {name: load_method(name) for name in dict.fromkeys(config.methods)}
    files = dataset.files
    # Every cell's params (the overrides' names, types and ranges) and what they need besides the data
    # (texture folders, pretrained weights), before any training: to score, always; to train, for a run
    # that trains (re-scoring stored checkpoints does not).
    blocked: dict[str, str] = {}
    for category_files in files.values():
        category = describe(category_files, remember=not dry_run)
        for name, method in methods.items():
            defaults = method.default_params(category, config.budget)
            params = checked_params(name, defaults, config.method_params.get(name, {}))
            # A training run asks training's check first: its message can offer what only a new run may
            # change (a `--set` departure), which a re-scoring run, with the earlier run's params, cannot.
            checks = [method.check_scoring_resources]
            if config.eval_only_from is None:
                checks.insert(0, method.check_resources)
            if name not in blocked:
                try:
                    for check in checks:
                        check(params)
                except AdbenchError as error:
                    if not dry_run:
                        raise
                    blocked[name] = str(error)
    if config.eval_only_from is None:
        _check_shared_training(config, methods, files, dry_run)
    return ResolvedGrid(root, dataset.format, methods, files, blocked)


def _check_shared_training(
    config: RunConfig, methods: dict[str, type[Detector]], files: dict[str, CategoryFiles], dry_run: bool
) -> None:
    """Every method that scores with another's trained networks (`Detector.trained_by`) has that method
    in the grid, built with the params they share equal in every category."""
    for method in methods.values():
        provider_name = method.trained_by
        if provider_name is None:
            continue
        provider = methods.get(provider_name)
        if provider is None:
            raise AdbenchError(
                f"method {method.name} scores with the networks that {provider_name} trains; add "
                f"{provider_name} to --methods (one training per category and seed then serves both)"
            )
        if provider.trained_by is not None:
            raise AdbenchError(
                f"method {method.name}: its trained_by {provider_name!r} does not train its own networks "
                f"either (its trained_by is {provider.trained_by!r}); fix the plugin"
            )
        for category_files in files.values():
            category = describe(category_files, remember=not dry_run)
            params = [
                checked_params(
                    m.name, m.default_params(category, config.budget), config.method_params.get(m.name, {})
                )
                for m in (method, provider)
            ]
            mismatch = shared_params_mismatch(*params)
            if mismatch is not None:
                raise AdbenchError(
                    f"params.{method.name} and params.{provider_name} differ on {category.name} "
                    f"({mismatch}); {method.name} scores with the networks {provider_name} trains, so set "
                    "the fields they share to the same values for both, or for neither"
                )


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
    folder's lock (adbench.run.lock) is held from the first write into it to the last.
    """

    def __init__(self, config: RunConfig, console: Console, resume: bool = False) -> None:
        self.config = config
        self.console = console
        if config.executor == "dask":
            require_dask()
        self.device = _grid_device(config)
        grid = resolve_grid(config)
        self.root, self.format, self.methods, self.files = grid.root, grid.format, grid.methods, grid.files
        self.started = datetime.now(UTC)
        self.resume = resume
        self.finished: set[tuple[str, str, int]] = set()
        self.rows: list[dict[str, Any]] = []
        self.manifest: Manifest
        # Every cell of a run computes at one thread count (see cell.run_cell); a resumed run keeps its own.
        self.threads = torch.get_num_threads()
        assert config.run_name is not None or not resume
        self.run_dir = config.out / config.run_name if resume and config.run_name else Path()

    def execute(self) -> RunOutcome:
        with contextlib.ExitStack() as held:
            if self.resume:
                held.enter_context(run_lock(self.run_dir))
                self._read_stored()
            pending = self._pending()
            fingerprints = {name: fingerprint(files) for name, files in self.files.items()}
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
                write_manifest(self.run_dir, self.manifest)
            tasks = [
                CellTask(
                    self.config,
                    self.run_dir,
                    c.method.name,
                    c.files,
                    c.category,
                    c.seed,
                    data_fingerprint=fingerprints[c.files.name],
                    threads=self.threads,
                )
                for c in pending
            ]
            return self._run(tasks)

    def _create(self) -> None:
        self.run_dir = _new_run_dir(self.config, self.started)
        self.manifest = Manifest.new(
            run_id=self.run_dir.name,
            started_at=self.started.isoformat(),
            config=self.config.to_manifest(),
            dataset=str(self.root.resolve()),
            dataset_format=self.format.name,
            device=self.device,
            environment=environment(),
        )

    def _read_stored(self) -> None:
        """Find the finished cells of the run being resumed, changing nothing yet.

        A cell is finished when the manifest lists it, the results table holds its rows and its folder
        (with its checkpoint, for a run that trained) is inside this run folder; the manifest entry is
        written last, so a kill at any moment leaves either all three or a cell that is redone. Stored
        paths are never followed: the cell's place is derived from its method, category and seed.
        """
        self.manifest = Manifest.read(self.run_dir)
        stored_threads = _stored_computation(self.manifest, self.run_dir)
        if stored_threads is not None and stored_threads <= (os.cpu_count() or 1):
            self.threads = stored_threads
        elif stored_threads is not None:  # more threads than cores would slow every cell many times over
            self.console.print(
                f"[yellow]note:[/] the run's cells computed at {stored_threads} threads, more than this "
                f"machine's {os.cpu_count()} cores; the cells still to run compute at {self.threads}, "
                "which can change their results by rounding",
                highlight=False,
            )
        _refuse_links(self.run_dir / CELLS_FOLDER)
        stored = (
            read_results(self.run_dir) if (self.run_dir / RESULTS_PARQUET).exists() else results_frame([])
        )
        row_cells = list(zip(stored["method"], stored["category"], stored["seed"].astype(int), strict=True))
        with_rows = set(row_cells)
        kept = []
        for cell in self.manifest.cells:
            folder = self.run_dir / cell.folder
            on_disk = folder.is_dir() if self.config.eval_only_from else (folder / CHECKPOINT).is_file()
            if cell.key in with_rows and on_disk and cell.key not in self.finished:
                if self.config.eval_only_from is None:
                    cell = cell.with_entry(checkpoint=str(cell.folder / CHECKPOINT))
                kept.append(cell)
                self.finished.add(cell.key)
        self.manifest.cells = kept
        self.rows = stored[[key in self.finished for key in row_cells]].to_dict("records")

    def _reopen(self) -> None:
        """Continue the run in its own folder: forget its unfinished cells and a killed writer's files."""
        for leftover in stale_temporary_files(self.run_dir):
            leftover.unlink(missing_ok=True)
        self.manifest.status = "running"
        self.manifest.environment = environment() | {"torch_threads": self.threads}
        self.manifest.resumed_at.append(self.started.isoformat())
        write_manifest(self.run_dir, self.manifest)

    def _pending(self) -> list[_PendingCell]:
        """The cells still to run, in grid order (categories, then methods, then seeds), the methods that
        train their own networks first."""
        pending = []
        # A method that adopts another's trained networks runs after it (the cell loads its checkpoint).
        methods = sorted(self.methods.values(), key=lambda method: method.trained_by is not None)
        for category_name, files in self.files.items():
            category = describe(files)
            for method in methods:
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
        with stage_progress(self.console) as progress:
            task = progress.add_task("check data", total=total, status="")
            done = 0
            for (name, spec), cell in needed.items():
                progress.update(task, status=f"{escape(name)} at {spec.image_size} px")
                tensors = load_category(cell.files, cell.category, spec, lambda: progress.advance(task))
                done += len(cell.files.all_paths())
                progress.update(task, completed=done)  # a cached entry calls no progress callback
                if tensors.upscaled:
                    self.console.print(upscaled_note(cell.method.name, spec, tensors), highlight=False)
        config = self.config
        if config.score_metrics and (config.pixel_resolution == "native" or config.save_maps):
            for files in {cell.files.name: cell.files for cell in pending}.values():
                load_native_masks(files)  # the ground truth at its own size, checked and labelled

    def _run(self, tasks: list[CellTask]) -> RunOutcome:
        try:
            if self.config.executor == "dask":
                run_on_dask(self.config, tasks, self.record, self.console)
            else:
                with stage_progress(self.console) as progress:
                    grid = progress.add_task(f"grid: {len(tasks)} cells", total=len(tasks), status="")
                    for task in tasks:
                        self.record(run_cell(task, progress))
                        progress.advance(grid)
                    progress.remove_task(grid)
        except BaseException as raised:
            # A full disk or a folder turned read-only is the user's to fix, and gets the same advice.
            explained = user_error(raised) if isinstance(raised, OSError) else None
            error = explained or raised
            # Finished cells are already on disk; say in the manifest why the rest is missing.
            if isinstance(error, KeyboardInterrupt):
                status = "interrupted"
            elif isinstance(error, AdbenchError):
                status = f"failed: {error}"
            else:  # a bug, in a method or here: its traceback follows on the terminal
                status = f"failed: {type(error).__name__}: {error}"
            if status.startswith("failed") and not self.resume and not self._worth_keeping():
                shutil.rmtree(self.run_dir)  # nothing in it; keeping it would only block its --name
                if isinstance(error, AdbenchError):
                    raise AdbenchError(
                        f"{error} (no cell had finished, so the run folder is removed)"
                    ) from None
                raise
            # On a full disk this write fails too; the user must see the first error, not this one.
            with contextlib.suppress(AdbenchError):
                self._finish(status)
            if isinstance(error, KeyboardInterrupt):
                raise RunInterrupted(self.run_dir, error) from None
            if isinstance(error, AdbenchError):
                raise AdbenchError(
                    f"{error} (what finished is kept: `adbench run --resume "
                    f"{shlex.quote(str(self.run_dir))}` goes on from it)"
                ) from None
            raise
        self._finish("finished")
        return RunOutcome(self.run_dir, self._table(), self.manifest)

    def _worth_keeping(self) -> bool:
        """A finished cell, or a trained checkpoint whose scoring failed (the error points to it)."""
        return bool(self.manifest.cells) or any((self.run_dir / CELLS_FOLDER).rglob(CHECKPOINT))

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
        self.manifest.cells.append(outcome.record)
        write_manifest(self.run_dir, self.manifest)
        self.console.print(outcome.summary)

    def _finish(self, status: str) -> None:
        self.manifest.status, self.manifest.finished_at = status, datetime.now(UTC).isoformat()
        write_manifest(self.run_dir, self.manifest)


def _input_spec(method: type[Detector], category: CategorySpec, config: RunConfig, seed: int) -> InputSpec:
    """The images a cell's detector will ask for: built untrained on the CPU, or read from the checkpoint
    it re-scores (which also finds a missing or foreign checkpoint before any cell runs)."""
    if config.eval_only_from is None:
        return new_detector(method, category, config, torch.device("cpu"))[0].input_spec
    return method.load(source_checkpoint(config.eval_only_from, method.name, category.name, seed)).input_spec


def _stored_computation(manifest: Manifest, run_dir: Path) -> int | None:
    """The thread count the resumed run's cells computed at (None for a run that recorded none);
    AdbenchError when this process computes with other kernels than the run did, since its remaining
    cells would then differ from the ones it keeps by more than rounding."""
    if manifest.kernels != kernels_in_use():
        setting = f"{PORTABLE_VARIABLE}=1" if manifest.kernels == "portable" else f"{PORTABLE_VARIABLE} unset"
        raise AdbenchError(
            f"{run_dir / MANIFEST}: the run computed with {manifest.kernels} kernels, this process with "
            f"{kernels_in_use()}; resume it with {setting}, so that all its cells compute alike"
        )
    return manifest.torch_threads


def _refuse_links(folder: Path) -> None:
    """No symbolic link anywhere under `folder`: resuming deletes unfinished cell folders, and a link
    would make that delete someone else's files."""
    if folder.is_symlink():
        raise link_error(folder)
    for parent, folders, files in os.walk(folder):  # os.walk does not follow links into folders
        for name in (*folders, *files):
            if (Path(parent) / name).is_symlink():
                raise link_error(Path(parent) / name)


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
