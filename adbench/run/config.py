"""The one object that describes a run; the CLI builds it, the runner reads it, the manifest stores it.

A run's options come from three places, later ones winning: RunConfig's defaults, a grid file
(`--config grid.toml`, or an earlier run's manifest.json, whose "config" section has the same keys),
and the command-line flags. `OPTION_KEYS` lists the keys of both the file and the manifest.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adbench.data.formats import FORMAT_NAMES
from adbench.data.layout import check_kind_overrides
from adbench.data.synth import DEFAULT_DATASET_NAME
from adbench.detector import BUDGETS, BudgetName
from adbench.errors import AdbenchError, did_you_mean, unknown_name_message
from adbench.files import parse_json, parse_toml, read_text_file
from adbench.names import checked_name
from adbench.params import checked_params as checked_params  # re-exported: the runner imports it from here
from adbench.run.folder import MANIFEST, Manifest
from adbench.run.options import (
    EXECUTORS,
    OPTIONS_BY_KEY,
    PIXEL_RESOLUTIONS,
    RUN_OPTIONS,
    Conversion,
    ParamValue,
)

# More seeds than any study of seed variance uses; a longer list is a generated list gone wrong.
MAX_SEEDS = 1000
MAX_REPEATS = 1000  # single-image latency repeats: a median and a 95th percentile need no more


@dataclass(frozen=True)
class RunConfig:
    methods: tuple[str, ...]  # entry-point names, in report order
    categories: tuple[str, ...] | None  # None = every category of the dataset
    data: Path | None = None  # a dataset's root folder; None = the built-in synthetic dataset
    data_format: str | None = None  # one of FORMAT_NAMES; None = detected from the folder's contents
    seeds: tuple[int, ...] = (0,)
    budget: BudgetName = "default"
    out: Path = Path("runs")  # parent folder of run folders
    run_name: str | None = None  # the run folder's name; generated from the time when None
    device: str = "cpu"  # cpu, cuda, cuda:N, mps, or auto (the first of cuda, mps, cpu available)
    amp: bool = False  # mixed precision (bfloat16 autocast) around fit and score
    kinds: tuple[tuple[str, str], ...] = field(default=())  # (category, "texture"|"object") overrides
    # Per-method hyperparameter overrides, e.g. {"cbigan": {"alpha": 1e-4}}; checked against each
    # method's Params when the grid starts.
    method_params: Mapping[str, Mapping[str, ParamValue]] = field(default_factory=dict)
    executor: str = "sequential"
    scheduler: str | None = None  # dask: address of an existing scheduler, e.g. tcp://host:8786
    workers: int | None = None  # dask: size of a local cluster of worker processes
    eval_only_from: Path | None = None  # score this earlier run's checkpoints instead of training
    timing_repeats: int = 10  # single-image scoring repeats for the latency figures (≥ 6: an interval)
    score_metrics: bool = True  # False: time the detectors only (`adbench time`), no quality metrics
    pixel_resolution: str = "native"  # one of PIXEL_RESOLUTIONS
    save_maps: bool = False  # write every test map at the masks' size as float32 TIFF in the cell folder
    # Pixel metrics' confidence intervals (adbench.evaluation.pixel_bootstrap) only for test sets of at most
    # this many pixels at the evaluation size, since their cost grows with it; 0: never.
    pixel_ci_max_pixels: int = 300_000_000

    def __post_init__(self) -> None:
        if not self.methods:
            raise AdbenchError("no methods given; pass --methods, e.g. --methods l2ae")
        if self.categories is not None and not self.categories:
            raise AdbenchError("no categories given; pass --categories a,b or --all-categories")
        if not self.seeds:
            raise AdbenchError("no seeds given; pass --seeds, e.g. --seeds 0,1")
        if len(self.seeds) > MAX_SEEDS:
            raise AdbenchError(f"--seeds: {len(self.seeds):,} seeds; a grid takes at most {MAX_SEEDS:,}")
        # A repeated entry would run its cells twice and count them twice in every mean.
        for option, values in (
            ("methods", self.methods),
            ("categories", self.categories or ()),
            ("seeds", self.seeds),
        ):
            repeated = sorted(str(value) for value, count in Counter(values).items() if count > 1)
            if repeated:
                raise AdbenchError(f"--{option}: {', '.join(repeated)} listed more than once; list each once")
        for option, text in (
            ("name", self.run_name),
            ("data", self.data),
            ("out", self.out),
            ("eval-only", self.eval_only_from),
            *(("methods", method) for method in self.methods),
            *(("categories", category) for category in self.categories or ()),
        ):
            if text is not None and "\0" in str(text):
                raise AdbenchError(
                    f"--{option} {str(text)!r}: contains a NUL byte, which no file name can hold"
                )
        if self.run_name is not None:
            checked_name(self.run_name, "run name", "--name")
        out_of_range = [seed for seed in self.seeds if not 0 <= seed < 2**32]
        if out_of_range:
            raise AdbenchError(f"--seeds {out_of_range[0]}: seeds must be integers from 0 to {2**32 - 1}")
        if self.data_format is not None and self.data_format not in FORMAT_NAMES:
            raise AdbenchError(unknown_name_message("format", self.data_format, list(FORMAT_NAMES)))
        if self.budget not in BUDGETS:
            raise AdbenchError(unknown_name_message("budget", self.budget, list(BUDGETS)))
        if self.pixel_ci_max_pixels < 0:
            raise AdbenchError(
                f"--pixel-ci-max-pixels {self.pixel_ci_max_pixels}: must be 0 (no pixel intervals) or more"
            )
        if not 1 <= self.timing_repeats <= MAX_REPEATS:
            raise AdbenchError(f"--repeats {self.timing_repeats}: must be from 1 to {MAX_REPEATS:,}")
        check_kind_overrides(dict(self.kinds))
        unused = set(self.method_params) - set(self.methods)
        if unused:
            raise AdbenchError(
                f"params for {', '.join(sorted(unused))}: "
                f"not among the run's methods ({', '.join(self.methods)})"
            )
        if self.pixel_resolution not in PIXEL_RESOLUTIONS:
            raise AdbenchError(
                f"--pixel-resolution {self.pixel_resolution}: valid values are {', '.join(PIXEL_RESOLUTIONS)}"
            )
        if self.executor not in EXECUTORS:
            raise AdbenchError(f"--executor {self.executor}: valid executors are {', '.join(EXECUTORS)}")
        if self.executor == "sequential" and (self.scheduler is not None or self.workers is not None):
            raise AdbenchError("--scheduler and --workers belong to --executor dask")
        if self.executor == "dask" and (self.scheduler is None) == (self.workers is None):
            raise AdbenchError(
                "--executor dask needs exactly one of --scheduler tcp://HOST:PORT (an existing cluster) "
                "and --workers N (a local cluster of N processes)"
            )
        cores = os.cpu_count() or 1
        if self.workers is not None and not 1 <= self.workers <= cores:
            # Each worker is a process running one cell at a time: more than the cores gains nothing
            # and, from a file, could start thousands of processes.
            raise AdbenchError(f"--workers {self.workers}: must be from 1 to {cores}, this machine's cores")

    def to_manifest(self) -> dict[str, Any]:
        """The options in grid-file form (`OPTION_KEYS`), plus what only the harness sets."""
        document: dict[str, Any] = {}
        for option in RUN_OPTIONS:
            if option.key != "all_categories":  # categories = None says it
                document[option.key] = _to_file(option.conversion, getattr(self, option.field))
            if option.key == "repeats":  # the harness's own keys, where manifests have always had them
                document["eval_only_from"] = None if self.eval_only_from is None else str(self.eval_only_from)
                document["score_metrics"] = self.score_metrics
        return document

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> RunConfig:
        """Build from grid-file keys (validated by `read_grid_file` or the CLI); absent keys take defaults."""
        values: dict[str, Any] = {}
        for key, value in options.items():
            option = OPTIONS_BY_KEY.get(key)
            if option is None:  # what only the harness sets: eval_only_from, score_metrics
                values[key] = Path(value) if key == "eval_only_from" and value is not None else value
            elif key != "all_categories":  # it is categories = None, below
                values[option.field] = _to_field(option.conversion, value)
        if options.get("all_categories"):
            values["categories"] = None
        elif "categories" not in options or options["categories"] is None:
            raise AdbenchError("pass exactly one of --categories a,b and --all-categories")
        values.setdefault("methods", ())
        return cls(**values)

    @classmethod
    def from_manifest(cls, run_dir: Path, scheduler: str | None = None, rescoring: bool = False) -> RunConfig:
        """The config an earlier run folder was made with, its data fixed to the folder that run used.

        A Dask scheduler address is never taken from the file (see `refuse_stored_scheduler`):
        `scheduler` is the one given on the command line, and `rescoring` (the grid only, to score its
        checkpoints here) drops the stored executor altogether.
        """
        manifest_path = run_dir / MANIFEST
        manifest = Manifest.read(run_dir, f"expected an adbench run folder at {run_dir}")
        try:
            # Runs made before an option existed go on as they began (pixel_resolution: "input").
            stored = dict(manifest.config)
            # Checked as a grid file is: the keys only a manifest holds and unset (None) ones are not
            # grid-file options.
            check_options(
                manifest_path, {k: v for k, v in stored.items() if k in OPTION_KEYS and v is not None}
            )
            if rescoring:
                stored |= {"executor": "sequential", "scheduler": None, "workers": None}
            elif scheduler is not None or stored.get("scheduler") is not None:
                refuse_stored_scheduler(manifest_path, stored.get("scheduler"), scheduler)
                stored["scheduler"] = scheduler
            stored |= {
                "data": _stored_dataset(manifest),
                "out": str(run_dir.parent),
                "name": run_dir.name,
                "all_categories": stored["categories"] is None,
            }
            return cls.from_options(stored)
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            raise AdbenchError(f"{manifest_path}: not an adbench run manifest ({error!r})") from None
        except AdbenchError as error:  # a stored value the config refuses ("--seeds: ..."): say whose
            if str(error).startswith(f"{manifest_path}:"):
                raise
            raise AdbenchError(f"{manifest_path}: {error}") from None

    @classmethod
    def for_eval_only(cls, source_run: Path, options: Mapping[str, Any]) -> RunConfig:
        """The grid of an earlier run, to be re-scored (or timed) from its checkpoints in a new run folder.

        `options` (grid-file keys) say how: out, name, device, amp, repeats, score_metrics,
        pixel_resolution, save_maps, pixel_ci_max_pixels; those not
        given take RunConfig's defaults, not the source run's. `data` given scores on that dataset
        (the source's moved, or another with the same categories) instead of the source run's.
        """
        defaults = {item.name: item.default for item in dataclasses.fields(cls)}
        given = {
            OPTIONS_BY_KEY[key].field: _to_field(OPTIONS_BY_KEY[key].conversion, value)
            for key, value in options.items()
            if key in OPTIONS_BY_KEY
        }
        given["score_metrics"] = options.get("score_metrics", defaults["score_metrics"])
        source = cls.from_manifest(source_run, rescoring=True)
        if "data" in given:
            source = dataclasses.replace(source, data=Path(given["data"]))
        elif source.data is not None and not source.data.is_dir():
            raise AdbenchError(
                f"{source_run}: its dataset {source.data} is not there any more; "
                "pass --data with the dataset's new place"
            )
        # The data stays the source run's unless given (above); the other scoring options are this run's.
        scoring = [option.field for option in RUN_OPTIONS if option.rescoring and option.key != "data"]
        return dataclasses.replace(
            source,
            **{field_name: given.get(field_name, defaults[field_name]) for field_name in scoring},
            score_metrics=given["score_metrics"],
            eval_only_from=source_run,
        )


def refuse_stored_scheduler(source: Path, stored: str | None, given: str | None) -> None:
    """A Dask client unpickles what the scheduler's workers send back, so whoever chooses the address can
    run code as the user: a grid file or a run folder (both may come from someone else) never does."""
    if stored is not None and given is None:
        raise AdbenchError(
            f"{source}: names the Dask scheduler {stored!r}, which is only ever taken from the command line "
            f"(its workers' results run as code here); pass --scheduler {stored} yourself if you trust it"
        )


def _stored_dataset(manifest: Manifest) -> str | None:
    """Where a run's data is: the folder it recorded, or None (regenerate it) for the built-in synthetic
    dataset, which is byte-identical for its version, if that folder has since gone with the cache."""
    if manifest.dataset is None:
        raise ValueError("no dataset recorded")
    dataset = Path(manifest.dataset)
    try:
        present = dataset.is_dir()
    except OSError as error:  # no path at all (too long): the ValueError the caller names the file for
        raise ValueError(f"dataset {str(dataset)[:60]!r}: {error.strerror}") from None
    if manifest.stored_config["data"] is None and not present and dataset.name == DEFAULT_DATASET_NAME:
        return None
    return str(dataset)


def _to_field(conversion: Conversion, value: Any) -> Any:
    """A grid-file value as its RunConfig field holds it."""
    if value is None or conversion in ("same", "params"):
        return value
    if conversion == "path":
        return Path(value)
    if conversion == "list":
        return tuple(value)
    return tuple(dict(value).items())  # kinds


def _to_file(conversion: Conversion, value: Any) -> Any:
    """A RunConfig field's value as a grid file (and the manifest) holds it."""
    if value is None or conversion == "same":
        return value
    if conversion == "path":
        return str(value)
    if conversion == "list":
        return list(value)
    if conversion == "kinds":
        return dict(value)
    return {method: dict(values) for method, values in value.items()}  # params


# Grid-file key -> (type check, what a valid value looks like). The manifest's "config" section uses
# the same keys, so a run folder's manifest is itself a grid file.
OPTION_KEYS: dict[str, tuple[Any, str]] = {
    option.key: (option.file_check, option.expected) for option in RUN_OPTIONS
}
# Keys that a manifest holds but a grid file does not set: a reproduced run gets a new folder name and
# trains (it does not inherit an eval-only source or `adbench time`'s choice to skip quality metrics).
_MANIFEST_ONLY = ("name", "eval_only_from", "score_metrics")


def read_grid_file(path: Path) -> dict[str, Any]:
    """Options from a TOML grid file or a run's manifest.json, checked key by key."""
    text = read_text_file(path, "grid file", "pass --config a TOML grid file or a run's manifest.json")
    try:
        loaded = parse_json(text) if path.suffix == ".json" else parse_toml(text)
    except ValueError as error:
        raise AdbenchError(
            f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'} ({error})"
        ) from None
    if not isinstance(loaded, dict):
        raise AdbenchError(f"{path}: expected a table of options at the top level")
    if path.suffix == ".json" and "config" in loaded and "run_id" in loaded:  # a run's manifest
        if not isinstance(loaded["config"], dict):
            raise AdbenchError(f"{path}: its config is not a table; it was changed outside adbench")
        loaded = {
            key: value
            for key, value in loaded["config"].items()
            if key not in _MANIFEST_ONLY and value is not None
        }
        loaded["all_categories"] = "categories" not in loaded
    check_options(path, loaded)
    return loaded


def check_options(path: Path, options: Mapping[str, Any]) -> None:
    """AdbenchError naming `path` for the first key of `options` that is no grid-file key, or whose value
    has the wrong type."""
    for key, value in options.items():
        if key not in OPTION_KEYS:
            raise AdbenchError(
                f"{path}: unknown key {key!r:.60}.{did_you_mean(key, list(OPTION_KEYS))} "
                f"Valid keys: {', '.join(OPTION_KEYS)}"
            )
        check, expected = OPTION_KEYS[key]
        if not check(value):
            raise AdbenchError(f"{path}: {key} = {value!r:.80} has the wrong type; expected {expected}")
