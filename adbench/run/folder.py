"""The run folder: its layout and file names, the manifest as typed records, loading a run, reading cells.

    <run>/manifest.json      the run's config, data, machine and one record per finished cell (`Manifest`)
    <run>/.lock              while a process works in the run (adbench.run.lock)
    <run>/results.parquet    the tidy results table, and results.csv (adbench.run.results)
    <run>/cells/<method>/<category>/seed<k>/   one cell's files (`cell_folder`): checkpoint.safetensors,
                             scores.csv, losses.csv, pimo.csv, samples.npz, with --save-maps maps/

Paths a manifest records are relative to the run folder, so a run folder can be moved. Every module
that reads or writes a run folder goes through this one; what runs made by older versions lack is
filled in here, once (`MANIFEST_VERSION` says which version wrote a manifest).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from adbench.atomic import write_json_atomic
from adbench.errors import AdbenchError
from adbench.files import read_json_file
from adbench.names import checked_name
from adbench.run.options import NOT_SET, RUN_OPTIONS
from adbench.run.results import read_results
from adbench.run.samples import SAMPLES_FILE, Samples, read_samples

MANIFEST = "manifest.json"
CELLS_FOLDER = "cells"
CHECKPOINT = "checkpoint.safetensors"
SCORES_FILE = "scores.csv"  # per test image: label, defect type, score
LOSSES_FILE = "losses.csv"  # per training step: each loss
PIMO_FILE = "pimo.csv"  # per anomalous test image: its AUPIMO
MAPS_FOLDER = "maps"  # --save-maps: MAPS/<category>/test/<defect>/<image name>.tiff
# --save-maps on MVTec AD 2: its private test sets' maps, laid out for the evaluation server
SUBMISSION_FOLDER = "anomaly_images"

# 1: every manifest written before the version was recorded (up to commit 4dd029d); 2: the same content
# with "manifest_version". A manifest keeps the version it was created with when a run is resumed.
MANIFEST_VERSION = 2
# What manifests of runs made before a field existed read as.
_STATUS_BEFORE = "finished"
_FORMAT_BEFORE = "mvtec_ad"  # runs made before dataset formats were read as MVTec AD
_KERNELS_BEFORE = "native"  # runs made before kernels were recorded used the machine's own

Cell = tuple[str, str, int]  # (method, category, seed)


def cell_folder(method: str, category: str, seed: int) -> Path:
    """A cell's folder relative to its run folder."""
    return Path(CELLS_FOLDER) / method / category / f"seed{seed}"


@dataclass(frozen=True)
class CellRecord:
    """A finished cell as the manifest records it. The typed fields are what adbench reads back;
    `entry` is the record as written (params, thresholds, warnings...), kept whole."""

    method: str
    category: str
    seed: int
    inference_kind: str | None  # None: a run made before it was recorded (the registry says)
    steps: int | None  # optimiser steps trained (older runs: the budget's); None: checkpoints loaded
    batch_size: int | None
    epochs: int | None
    trained: bool  # False: the cell scored an earlier run's checkpoint, or adopted another cell's networks
    trained_by: str | None  # the method whose cell (same category and seed) trained the networks it used
    timings: dict[str, dict[str, Any]]  # measurement name -> its machine load (adbench.machine.timing)
    entry: dict[str, Any]

    @property
    def key(self) -> Cell:
        return (self.method, self.category, self.seed)

    @property
    def folder(self) -> Path:
        return cell_folder(self.method, self.category, self.seed)

    def contention(self) -> dict[str, str]:
        """Measurement name -> why it was taken on a contended machine, for those that were."""
        return {name: str(load["contended"]) for name, load in self.timings.items() if load.get("contended")}

    def with_entry(self, **changes: Any) -> CellRecord:
        return dataclasses.replace(self, entry=self.entry | changes)

    @classmethod
    def of(cls, entry: dict[str, Any]) -> CellRecord:
        """The record of a cell entry adbench has just written (or has checked with `read`)."""
        budget = entry.get("training_budget")
        timing = entry.get("timing") or {}
        return cls(
            method=entry["method"],
            category=entry["category"],
            seed=int(entry["seed"]),
            inference_kind=entry.get("inference_kind"),
            steps=entry.get("steps") or (budget or {}).get("steps"),
            batch_size=None if budget is None else budget.get("batch_size"),
            epochs=None if budget is None else budget.get("epochs"),
            trained=budget is not None,
            trained_by=entry.get("trained_by"),
            timings=dict(timing.get("measurements") or {}),
            entry=entry,
        )

    @classmethod
    def read(cls, entry: Any, path: Path, index: int) -> CellRecord:
        """Cell `index` of the manifest at `path`, checked to name a method, a category and a seed (each
        names a folder of the cell's path)."""
        valid = (
            isinstance(entry, dict)
            and isinstance(entry.get("method"), str)
            and isinstance(entry.get("category"), str)
            and isinstance(entry.get("seed"), int)
            and not isinstance(entry.get("seed"), bool)
            and 0 <= entry["seed"] < 2**32
        )
        if not valid:
            raise AdbenchError(
                f"{path}: cell {index} does not name a method, a category and a seed from 0 to 2^32-1 "
                f"({json.dumps(entry)[:120]}); it was changed outside adbench"
            )
        for what in ("method", "category"):
            checked_name(entry[what], what, f"{path}: cell {index}")
        where = f"{path}: cell {index}"
        budget = _checked(entry, "training_budget", dict, where)
        for key in ("steps", "batch_size", "epochs"):
            _checked(budget or {}, key, int, f"{where}: training_budget")
        _checked(entry, "steps", int, where)
        _checked(entry, "inference_kind", str, where)
        if _checked(entry, "trained_by", str, where) is not None:
            checked_name(entry["trained_by"], "method", f"{where}: trained_by")
        timing = _checked(entry, "timing", dict, where) or {}
        measurements = _checked(timing, "measurements", dict, f"{where}: timing") or {}
        for name in measurements:
            _checked(measurements, name, dict, f"{where}: timing: measurements")
        return cls.of(entry)


def _checked(document: dict[str, Any], key: str, kind: type, where: str) -> Any:
    """document[key] when it is a `kind` or null or absent (None); AdbenchError otherwise."""
    value = document.get(key)
    if value is None or (isinstance(value, kind) and not isinstance(value, bool)):
        return value
    raise AdbenchError(
        f"{where}: {key} is {json.dumps(value)[:60]}, not {_IN_WORDS[kind]}; it was changed outside adbench"
    )


_IN_WORDS = {dict: "an object", list: "a list", int: "an integer", str: "a string"}


@dataclass
class Manifest:
    """A run's manifest.json. `config` holds the run's options by grid-file key, with the value runs made
    before an option existed read as (adbench.run.options) filled in; `stored_config` is as written."""

    version: int
    run_id: str
    status: str  # "running", "finished", "interrupted" or "failed: <why>"
    started_at: str | None
    stored_config: dict[str, Any]
    dataset: str | None
    dataset_format: str
    device: str | None
    environment: dict[str, Any]
    cells: list[CellRecord] = field(default_factory=list)
    finished_at: str | None = None
    resumed_at: list[str] = field(default_factory=list)

    @property
    def config(self) -> dict[str, Any]:
        before = {o.key: o.before for o in RUN_OPTIONS if o.before is not NOT_SET}
        return before | self.stored_config

    @property
    def kernels(self) -> str:
        return str(self.environment.get("kernels", _KERNELS_BEFORE))

    @property
    def torch_threads(self) -> int | None:
        """The thread count the run's cells computed at; None where none (or nonsense) was recorded."""
        threads = self.environment.get("torch_threads")
        return (
            threads if isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1 else None
        )

    @classmethod
    def new(
        cls,
        run_id: str,
        started_at: str,
        config: dict[str, Any],
        dataset: str,
        dataset_format: str,
        device: str,
        environment: dict[str, Any],
    ) -> Manifest:
        return cls(
            MANIFEST_VERSION,
            run_id,
            "running",
            started_at,
            config,
            dataset,
            dataset_format,
            device,
            environment,
        )

    @classmethod
    def read(cls, run_dir: Path, fix: str = "expected an adbench run folder") -> Manifest:
        """The manifest of `run_dir`; AdbenchError naming the file where it is not one adbench wrote."""
        path = run_dir / MANIFEST
        document = read_json_file(path, "run manifest", fix)
        if not isinstance(document, dict):
            raise AdbenchError(f"{path}: not a run manifest; it was changed outside adbench")
        cells = document.get("cells")
        if not isinstance(cells, list):
            raise AdbenchError(f"{path}: no list of cells; it was changed outside adbench")
        version = _checked(document, "manifest_version", int, str(path))
        if version is not None and not 1 <= version <= MANIFEST_VERSION:
            raise AdbenchError(
                f"{path}: manifest_version {version} is none this adbench reads (1 to {MANIFEST_VERSION}); "
                "a newer adbench wrote it, or it was changed outside adbench"
            )
        resumed_at = _checked(document, "resumed_at", list, str(path)) or []
        if not all(isinstance(when, str) for when in resumed_at):
            raise AdbenchError(f"{path}: resumed_at holds other than times; it was changed outside adbench")

        def text(key: str) -> str | None:
            return _checked(document, key, str, str(path))

        return cls(
            version=version or 1,
            run_id=text("run_id") or run_dir.name,
            status=text("status") or _STATUS_BEFORE,
            started_at=text("started_at"),
            stored_config=_checked(document, "config", dict, str(path)) or {},
            dataset=text("dataset"),
            dataset_format=text("dataset_format") or _FORMAT_BEFORE,
            device=text("device"),
            environment=_checked(document, "environment", dict, str(path)) or {},
            cells=[CellRecord.read(entry, path, index) for index, entry in enumerate(cells)],
            finished_at=text("finished_at"),
            resumed_at=resumed_at,
        )

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"manifest_version": self.version} if self.version >= 2 else {}
        document |= {
            "run_id": self.run_id,
            "status": self.status,
            "started_at": self.started_at,
            "config": self.stored_config,
            "dataset": self.dataset,
            "dataset_format": self.dataset_format,
            "device": self.device,
            "environment": self.environment,
            "cells": [cell.entry for cell in self.cells],
        }
        if self.finished_at is not None:
            document["finished_at"] = self.finished_at
        if self.resumed_at:
            document["resumed_at"] = self.resumed_at
        return document


def write_manifest(run_dir: Path, manifest: Manifest) -> None:
    write_json_atomic(run_dir / MANIFEST, manifest.to_json())


def stale_temporary_files(run_dir: Path) -> list[Path]:
    """Temporary files of atomic writes (adbench.atomic) that a killed process left behind."""
    return [
        path
        for path in (*run_dir.glob(".*.tmp"), *run_dir.glob(f"{CELLS_FOLDER}/*/*/seed*/.*.tmp"))
        if path.is_file()
    ]


@dataclass(frozen=True)
class StoredRun:
    """A run folder as a report or the gate reads it: its manifest and its results table."""

    path: Path
    manifest: Manifest
    results: pd.DataFrame


def load_run(run_dir: Path) -> StoredRun:
    return StoredRun(run_dir, Manifest.read(run_dir, "pass adbench run folders"), read_results(run_dir))


def _seed_of(seed_dir: Path) -> int:
    """k of a cell folder `seed<k>`; a stray folder by another name is the user's to remove."""
    number = seed_dir.name.removeprefix("seed")
    if not number.isdigit():
        raise AdbenchError(f"{seed_dir}: not a cell folder of adbench (seed<k>); move it out of the run")
    return int(number)


def cell_files(run_dir: Path, name: str) -> Iterator[tuple[Cell, Path]]:
    """Every cell folder's file `name` that exists, with its cell, in the order of the cells' paths."""
    for path in sorted((run_dir / CELLS_FOLDER).glob(f"*/*/seed*/{name}")):
        seed_dir = path.parent
        yield (seed_dir.parent.parent.name, seed_dir.parent.name, _seed_of(seed_dir)), path


def read_cell_tables(runs: list[StoredRun], name: str, columns: set[str]) -> pd.DataFrame:
    """Every cell's CSV file `name` (scores.csv, losses.csv), which must hold `columns`, with method,
    category and seed columns added."""
    frames = []
    for run in runs:
        for (method, category, seed), path in cell_files(run.path, name):
            try:
                frame = pd.read_csv(path)
            except (
                pd.errors.ParserError,
                pd.errors.EmptyDataError,
                UnicodeDecodeError,
                IsADirectoryError,
            ) as error:
                raise AdbenchError(f"{path}: unreadable ({error}); it was changed outside adbench") from None
            if not columns <= set(frame.columns):
                raise AdbenchError(
                    f"{path}: lacks the columns {sorted(columns - set(frame.columns))}; "
                    "it was changed outside adbench"
                )
            frames.append(frame.assign(method=method, category=category, seed=seed))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def category_samples(runs: list[StoredRun]) -> dict[str, dict[str, Samples]]:
    """Per category, each method's kept samples from its lowest seed (the first run that has them)."""
    by_category: dict[str, dict[str, Samples]] = {}
    for run in runs:
        for (method, category, _), path in sorted(cell_files(run.path, SAMPLES_FILE), key=lambda c: c[0][2]):
            methods = by_category.setdefault(category, {})
            if method not in methods:
                methods[method] = read_samples(path)
    return by_category
