"""The `adbench` command: parse, build a RunConfig, call, render.

User-fixable problems (AdbenchError) end as one red line on stderr and exit code 2; Ctrl-C during a run
as one line and exit code 130. Nothing else is caught here, so real bugs keep their tracebacks.
"""

from __future__ import annotations

import math
import os
import shlex
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from adbench.atomic import user_error
from adbench.errors import AdbenchError
from adbench.files import encodes_as_utf8
from adbench.metrics.catalogue import METRICS
from adbench.options import (
    OPTIONS_BY_KEY,
    RUN_OPTIONS,
    flag_name,
    given_flags,
    parse_kinds,
    run_option_annotation,
    split_names,
    with_run_options,
)
from adbench.sharing import choose_wait_policy

if TYPE_CHECKING:
    from adbench.config import RunConfig
    from adbench.runner import RunOutcome

app = typer.Typer(
    name="adbench",
    help="Train and compare reconstruction-based image anomaly detectors on MVTec AD-style data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Plain help: typer's rich panels read "[default: 10]" as markup and drop it, and give every flag a
    # type ("--amp <bool>") as if it took a value.
    rich_markup_mode=None,
    context_settings={"max_content_width": 110},
)


def _print_version(given: bool) -> None:
    if given:
        from importlib import metadata

        out_console.print(f"adbench {metadata.version('adbench-harness')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
    ] = False,
) -> None:
    """Train and compare reconstruction-based image anomaly detectors on MVTec AD-style data."""


data_app = typer.Typer(
    help="Datasets: what a folder holds; generate the built-in synthetic data.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(data_app, name="data")

# Piped output gets a wide console: a 15-category table squeezed into 80 columns is unreadable.
# Names, paths and messages print as written: no markup ("pin[v2]"), no emoji codes ("cuda:x").
out_console = Console(markup=False, emoji=False, width=None if sys.stdout.isatty() else 250)
# In a log file a line is never wrapped: the progress and cell lines are read and grepped there.
err_console = Console(stderr=True, emoji=False, soft_wrap=not sys.stderr.isatty())

# The metrics each command prints, titled as the catalogue says.
TABLE_METRICS = ("image_max_balanced_accuracy", "image_auroc", "pixel_auroc", "pixel_aupro_0.3")
EVALUATE_METRICS = (
    *TABLE_METRICS,
    "image_ap",
    "image_f1_max",
    "pixel_ap",
    "pixel_f1_max",
    "pixel_aupro_0.1",
    "pixel_aupro_0.05",
    "pixel_aupro_0.01",
    "pixel_aupimo",
)


def _format(value: float) -> str:
    if math.isnan(value):
        return "—"
    # Quality metrics lie in [0, 1] and need three decimals; timings span milliseconds to hours.
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"


def render_category_table(table: pd.DataFrame, title: str) -> Table:
    rendered = Table(title=title, title_justify="left")
    rendered.add_column("method")
    for column in table.columns:
        rendered.add_column(column.replace("_mean", " mean"), justify="right")
    for method, row in table.iterrows():
        rendered.add_row(str(method), *(_format(value) for value in row))
    return rendered


# Options shared by `run` and `time`. Their defaults are None so that a grid file's value is overridden
# only by a flag actually given; the defaults named in the help live in RunConfig.
CategoriesOption = run_option_annotation("categories")
KindsOption = run_option_annotation("kinds")
FormatOption = run_option_annotation("format")
ContendedOption = Annotated[
    bool,
    typer.Option(
        "--contended-timings",
        help="Count timings taken on a contended machine in the iterative/single-pass ratios.",
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        help="Grid file (TOML) or an earlier run's manifest.json; flags given here override it.",
    ),
]


@app.command()
@with_run_options("run")
def run(
    options: dict[str, Any],
    config: ConfigOption = None,
    eval_only: Annotated[
        Path | None,
        typer.Option(
            metavar="RUN",
            help="Re-score an earlier run's checkpoints (same grid) into a new run folder; no training.",
        ),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(
            metavar="RUN",
            help="Finish an interrupted run in its folder: keep its finished cells, redo the rest.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Resolve the grid and print every cell's plan (params, steps, sizes, departures from the "
            "papers); train nothing, write nothing.",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="With --dry-run: one JSON object per cell on stdout.")
    ] = False,
    estimate: Annotated[
        bool,
        typer.Option(
            "--estimate",
            help="With --dry-run: time a few training steps and scored images per method and category on "
            "--device, and print each cell's and the grid's estimated duration.",
        ),
    ] = False,
    contended_timings: ContendedOption = False,
) -> None:
    """Train and evaluate every method on every category and seed; print the per-category tables."""
    from adbench.runner import resume as resume_grid

    if (as_json or estimate) and not dry_run:
        raise AdbenchError("--json and --estimate belong to --dry-run")
    if dry_run:
        if resume is not None or eval_only is not None:
            raise AdbenchError("--dry-run plans a new grid; drop --resume/--eval-only")
        _print_plan(_grid_config(options, config, None), as_json, estimate)
        return
    if resume is not None:
        refused = {key: value for key, value in options.items() if not OPTIONS_BY_KEY[key].resuming}
        extra = {"--eval-only": eval_only, "--config": config}
        given = given_flags(refused) + [flag for flag, value in extra.items() if value is not None]
        if given:
            allowed = ", ".join(flag_name(option) for option in RUN_OPTIONS if option.resuming)
            raise AdbenchError(
                f"{resume}: --resume continues that run's own grid; drop {', '.join(given)} "
                f"(only {allowed} may be given, for a run on an existing Dask cluster)"
            )
        outcome = _interruptible(lambda: resume_grid(resume, err_console, options["scheduler"]))
    else:
        outcome = _run_grid(_grid_config(options, config, eval_only))
    _print_tables(outcome.results)
    _print_timing(outcome.results, outcome.manifest, contended_timings)
    out_console.print(f"results: {outcome.run_dir / 'results.csv'}")


def _grid_config(
    flags: dict[str, object], grid_file: Path | None, from_run: Path | None, score_metrics: bool = True
) -> RunConfig:
    """The RunConfig of `run` and `time`: a grid file overridden by the flags given, or the grid of
    `from_run` re-scored from its checkpoints."""
    from adbench.config import RunConfig, read_grid_file, refuse_stored_scheduler

    given = {key: value for key, value in flags.items() if value is not None}
    if from_run is not None:
        refused = ["--config"] * (grid_file is not None) + given_flags(
            {key: value for key, value in given.items() if not OPTIONS_BY_KEY[key].rescoring}
        )
        if refused:
            raise AdbenchError(f"{from_run}: the grid comes from that run; drop {', '.join(refused)}")
        return RunConfig.for_eval_only(from_run, given | {"score_metrics": score_metrics})
    options = read_grid_file(grid_file) if grid_file is not None else {}
    if grid_file is not None:
        scheduler = given.get("scheduler")
        refuse_stored_scheduler(
            grid_file, options.get("scheduler"), None if scheduler is None else str(scheduler)
        )
    if "categories" in given and "all_categories" in given:
        raise AdbenchError("pass exactly one of --categories a,b and --all-categories")
    if "categories" in given or "all_categories" in given:
        options = {
            key: value for key, value in options.items() if key not in ("categories", "all_categories")
        }
    if "params" in given:  # --set overrides the grid file's params one by one, not as a whole
        stored = options.get("params", {})
        given["params"] = {
            method: {**stored.get(method, {}), **given["params"].get(method, {})}
            for method in {*stored, *given["params"]}
        }
    return RunConfig.from_options(options | given | {"score_metrics": score_metrics})


def _run_grid(config: RunConfig) -> RunOutcome:
    from adbench.runner import run as run_grid

    return _interruptible(lambda: run_grid(config, err_console))


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's time limit, `kill`), handled as the interruption it is, like Ctrl-C."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _interruptible(work: Callable[[], RunOutcome]) -> RunOutcome:
    from adbench.runner import RunInterrupted

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return work()
    except RunInterrupted as stopped:
        # Click would print a bare "Aborted!"; say what was kept and how to go on instead.
        err_console.print(
            f"[yellow]interrupted[/]: finished cells are kept in {escape(str(stopped.run_dir))}; "
            f"`adbench run --resume {escape(shlex.quote(str(stopped.run_dir)))}` finishes it",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(_interrupted_status(stopped.interruption)) from None
    except KeyboardInterrupt as interruption:  # before the run folder was made: nothing to keep
        err_console.print("[yellow]interrupted[/] before the run started; nothing was written")
        raise typer.Exit(_interrupted_status(interruption)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupted_status(interruption: KeyboardInterrupt) -> int:
    return 128 + signal.SIGTERM if isinstance(interruption, Terminated) else 130


@app.command("time")
@with_run_options("time")
def time_methods(
    options: dict[str, Any],
    config: ConfigOption = None,
    from_run: Annotated[
        Path | None,
        typer.Option(
            "--from", metavar="RUN", help="Time the checkpoints of an earlier run instead of training."
        ),
    ] = None,
    contended_timings: ContendedOption = False,
) -> None:
    """Time fitting and inference (latency, throughput) per method and category; no quality metrics."""
    outcome = _run_grid(_grid_config(options, config, from_run, score_metrics=False))
    _print_timing(outcome.results, outcome.manifest, contended_timings)
    out_console.print(f"results: {outcome.run_dir / 'results.csv'}")


def _print_timing(results: pd.DataFrame, manifest: dict[str, Any], contended_timings: bool) -> None:
    """The timing tables, and how much slower each iterative method is than the fastest single-pass one
    (from the cells timed on a quiet machine, unless `contended_timings`)."""
    from adbench.registry import load_method
    from adbench.timing import TIMING_METRICS, contended_cells, contended_ratio_note, iterative_cost

    _print_tables(results, TIMING_METRICS)
    kinds = {method: load_method(method).inference_kind for method in results["method"].unique()}
    contended = contended_cells([manifest])
    if contended:
        cells = ", ".join(f"{m}/{c}/seed{s}" for m, c, s in sorted(contended))
        note = contended_ratio_note(results, kinds, contended.keys(), contended_timings)
        said = f"{len(contended)} cell(s) were timed on a contended machine ({cells})" + (
            f"; {note}" if note else ""
        )
        err_console.print(f"[yellow]warning:[/] {escape(said)}", highlight=False)
    for row in iterative_cost(results, kinds, set() if contended_timings else contended.keys()).itertuples():
        out_console.print(
            f"{row.category}: {row.method} (iterative) takes {row.ratio:,.1f}× the time per image of "
            f"{row.versus}, the fastest single-pass method"
        )


def _print_plan(config: RunConfig, as_json: bool, estimate: bool) -> None:
    """The dry run's output: a table of the cells and the departures from the papers, or JSON lines."""
    import json

    from adbench.plan import plan_grid
    from adbench.progress import stage_progress

    with stage_progress(err_console) as progress:
        cells = plan_grid(config, estimate, progress)
    if as_json:
        for cell in cells:
            sys.stdout.write(json.dumps(cell.to_json()) + "\n")
        return
    table = Table(
        title=f"plan: {len(cells)} cells at the {config.budget} budget (nothing trained or written)"
    )
    for column in ("method", "category", "kind", "seed", "steps", "batch", "image", "patch", "lr"):
        table.add_column(column, justify="left" if column in ("method", "category", "kind") else "right")
    if estimate:
        table.add_column("estimate", justify="right")
    for cell in cells:
        row = [cell.method, cell.category, cell.category_kind, str(cell.seed), f"{cell.steps:,}"]
        row += [str(cell.batch_size), str(cell.image_size), str(cell.patch_size or "—")]
        row.append(f"{cell.params['learning_rate']:g}" if "learning_rate" in cell.params else "—")
        if estimate:
            row.append(_duration(cell.estimated_seconds or 0.0))
        table.add_row(*row)
    out_console.print(table)
    if cells:
        out_console.print(f"data: {cells[0].dataset}")
    out_console.print(f"departures from the papers at the {config.budget} budget:")
    shown: set[tuple[str, str]] = set()
    for cell in cells:
        for departure in cell.departures:
            if (cell.method, departure) not in shown:
                shown.add((cell.method, departure))
                applies = {c.category for c in cells if c.method == cell.method and departure in c.departures}
                every = applies == {c.category for c in cells}
                where = "all categories" if every else ", ".join(sorted(applies))
                out_console.print(f"- {cell.method} ({where}): {departure}")
    if not shown:
        out_console.print("- none declared")
    if estimate:
        total = sum(cell.estimated_seconds or 0.0 for cell in cells)
        out_console.print(f"estimated duration of the grid on {config.device}: {_duration(total)}")
        contended = [cell for cell in cells if cell.estimate_contended]
        if contended:
            first = contended[0]
            out_console.print(
                f"warning: the machine was contended while estimating ({first.method}/{first.category}: "
                f"{first.estimate_contended}); the estimate holds only if that load lasts the whole run: "
                "alone the grid takes less, and its real duration depends on what else runs on these cores",
                highlight=False,
                soft_wrap=True,
            )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:,.1f} h"


def _print_tables(results: pd.DataFrame, metrics: Sequence[str] = TABLE_METRICS) -> None:
    """A category table for each of `metrics` that `results` holds, titled as the catalogue says."""
    from adbench.report.tables import category_table

    for metric in metrics:
        if (results["metric"] == metric).any():
            out_console.print(render_category_table(category_table(results, metric), METRICS[metric].short))


@app.command()
def evaluate(
    dataset: Annotated[
        Path, typer.Option(metavar="DIR", help="The dataset's root folder, holding the ground truth.")
    ],
    anomaly_maps: Annotated[
        Path,
        typer.Option(metavar="DIR", help="Maps as DIR/<category>/test/<defect>/<image name>.tiff (or .npy)."),
    ],
    out: Annotated[
        Path, typer.Option(metavar="FILE", help="CSV to write (columns category, metric, value).")
    ],
    categories: Annotated[
        str | None, typer.Option(metavar="NAMES", help="Comma-separated categories. [default: all]")
    ] = None,
    kinds: Annotated[
        str | None,
        typer.Option(
            metavar="CATEGORY=KIND,...",
            help="Kinds of non-MVTec categories, e.g. bricks=texture,bolt=object.",
        ),
    ] = None,
    data_format: FormatOption = None,
) -> None:
    """Score anomaly maps made by any tool with adbench's metric code; print the table with the means."""
    from adbench.atomic import check_writable, write_atomic
    from adbench.external_maps import evaluate_maps

    if os.path.lexists(out):  # a dangling link too: a file is never put in place of one
        raise AdbenchError(f"{out}: already exists and is never overwritten; choose another --out")
    check_writable(out)
    with err_console.status("evaluating") as status:
        metrics = evaluate_maps(
            dataset,
            anomaly_maps,
            split_names(categories),
            parse_kinds(kinds),
            on_category=lambda name: status.update(f"evaluating {name}"),
            data_format=data_format,
            on_skipped=lambda names: err_console.print(
                f"note: no maps for {', '.join(names)} under {anomaly_maps}; scored the other categories",
                markup=False,
                highlight=False,
            ),
        )
    write_atomic(out, lambda tmp: metrics[["category", "metric", "value"]].to_csv(tmp, index=False))
    _print_tables(metrics.assign(method=anomaly_maps.name or str(anomaly_maps)), EVALUATE_METRICS)
    out_console.print(f"metrics: {out}")


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN", help="Run folders to report on together.")],
    out: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Markdown file to write; never overwritten. [default: <first run>/report.md]",
        ),
    ] = None,
    comparison_metric: Annotated[
        str | None,
        typer.Option(
            metavar="METRIC",
            help="Metric of the method comparisons (paired tests, ranks). [default: image_auroc]",
        ),
    ] = None,
    contended_timings: ContendedOption = False,
) -> None:
    """Write a markdown report (tables, figures, provenance) from stored results; nothing is retrained."""
    from adbench.report.markdown import DEFAULT_COMPARISON, build_report

    # Beside the results it reads, not in whatever repository the command runs from.
    target = out if out is not None else runs[0] / "report.md"
    with err_console.status("writing the report"):
        written = build_report(runs, target, comparison_metric or DEFAULT_COMPARISON, contended_timings)
    out_console.print(f"report: {written}")


@app.command()
def compare(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="The run folder to check.")],
    baseline: Annotated[
        Path,
        typer.Option(
            metavar="FILE",
            help="Baseline JSON, e.g. reports/baselines/smoke-synthetic.json (the smoke grid's).",
        ),
    ],
    tolerance: Annotated[
        float | None,
        typer.Option(
            metavar="DROP", help="Largest allowed drop of a metric. [default: 0.02; with --ci or --exact: 0]"
        ),
    ] = None,
    within_interval: Annotated[
        bool,
        typer.Option(
            "--ci",
            help="A metric with a confidence interval counts as dropped only when the baseline lies above "
            "the run's upper bound (by more than --tolerance, if given); others as without --ci.",
        ),
    ] = False,
    exact: Annotated[
        bool,
        typer.Option(
            "--exact",
            help="Two-sided: fail on any change beyond --tolerance, up or down (identical within tolerance).",
        ),
    ] = False,
    update: Annotated[
        bool, typer.Option("--update", help="Write RUN's metrics as the new baseline instead of checking.")
    ] = False,
) -> None:
    """Exit 1 when a metric of RUN is missing or dropped below the baseline by more than the tolerance."""
    from adbench.report.compare import (
        read_baseline,
        refuse_other_protocol,
        regressions,
        run_protocol,
        write_baseline,
    )
    from adbench.report.markdown import load_run

    if exact and within_interval:
        raise AdbenchError("--exact and --ci ask opposite questions; choose one")
    run = load_run(run_dir)
    protocol = run_protocol(run.manifest)
    if update:
        write_baseline(baseline, run.results, [run_dir.name], protocol)
        out_console.print(f"baseline written: {baseline}")
        return
    entries = read_baseline(baseline)
    refuse_other_protocol(run_dir, protocol, baseline)
    if tolerance is None:
        tolerance = 0.0 if within_interval or exact else 0.02
    failing = regressions(run.results, entries, tolerance, within_interval, exact)

    # The baseline's methods or categories this run left out (a one-category check against the full
    # grid) are not compared; a cell missing among the methods and categories it ran is a regression.
    def ran(table: pd.DataFrame) -> pd.Series:
        return table["method"].isin(run.results["method"]) & table["category"].isin(run.results["category"])

    if not ran(entries).any():
        raise AdbenchError(
            f"{run_dir}: runs no method on any category of {baseline}, so nothing was compared"
        )
    not_run = failing["current"].isna() & ~ran(failing)
    if not_run.any():
        left_out = failing[not_run]
        cells = sorted({f"{m}/{c}" for m, c in zip(left_out["method"], left_out["category"], strict=True)})
        out_console.print(
            f"not run here, so not compared: {len(cells)} cell(s) of the baseline ({', '.join(cells)})"
        )
        failing = failing[~not_run]
    if failing.empty:
        if exact:
            out_console.print(f"every baseline metric within {tolerance} of {baseline}")
        elif within_interval:
            out_console.print(f"no baseline value above the run's confidence bound by more than {tolerance}")
        else:
            out_console.print(f"no regression beyond {tolerance} against {baseline}")
        return
    table = Table("method", "category", "metric", "baseline", "current", "change", title="regressions")
    for row in failing.itertuples():
        missing = pd.isna(row.current)
        table.add_row(
            row.method,
            row.category,
            row.metric,
            f"{row.baseline:.4f}",
            "missing" if missing else f"{row.current:.4f}",
            "" if missing else f"{row.change:+.4f}",
        )
    out_console.print(table)
    missing = int(failing["current"].isna().sum())
    moved = len(failing) - missing
    if exact:
        what = f"changed by more than {tolerance}"
    elif within_interval:
        what = f"with the baseline above the run's upper confidence bound by more than {tolerance}"
    else:
        what = f"dropped by more than {tolerance}"
    out_console.print(f"{moved} metric(s) {what}; {missing} missing from the run")
    raise typer.Exit(1)


@app.command("methods")
def list_methods() -> None:
    """List the registered methods and their inference kind."""
    from adbench.registry import load_method, method_names

    table = Table("method", "inference", "class")
    for method_name in method_names():
        try:
            method = load_method(method_name)
        except AdbenchError as error:  # one broken plugin must not hide the others
            table.add_row(method_name, Text("unavailable", style="red"), str(error))
            continue
        table.add_row(method_name, method.inference_kind, f"{method.__module__}.{method.__qualname__}")
    out_console.print(table)


@data_app.command("info")
def data_info(
    root: Annotated[Path, typer.Argument(metavar="ROOT", help="The dataset's root folder.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per category, one per line.")
    ] = False,
    data_format: FormatOption = None,
    categories: CategoriesOption = None,
    kinds: KindsOption = None,
) -> None:
    """The dataset's format and, per category, its kind, channels, image sizes and images per split;
    every file is checked as `adbench run` checks it."""
    import json

    from adbench.data.info import dataset_info

    with err_console.status("checking the dataset") as status:
        checked = 0

        def on_file() -> None:
            nonlocal checked
            checked += 1
            if checked % 100 == 0:
                status.update(f"checking the dataset: {checked:,} files")

        title, infos, total = dataset_info(
            root, split_names(categories), parse_kinds(kinds), data_format, on_file
        )
    if as_json:
        for info in infos:
            sys.stdout.write(json.dumps(info.to_json()) + "\n")
        return
    table = Table(
        "category", "kind", "channels", "image sizes", "train", "validation", "test normal",
        "test anomalous", "defect types", "unlabeled", title=f"{title} at {root} ({total:,} files checked)",
    )  # fmt: skip
    for info in infos:
        table.add_row(
            info.category,
            info.kind,
            str(info.channels),
            ", ".join(info.sizes),
            *(str(value) for value in (info.train, info.validation, info.test_normal, info.test_anomalous)),
            str(info.defect_types),
            str(info.unlabeled),
        )
    out_console.print(table)


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(metavar="DIR", help="Folder to create (must not exist).")],
    seed: Annotated[
        int, typer.Option(metavar="SEED", help="Generator seed; the same seed gives byte-identical files.")
    ] = 0,
) -> None:
    """Write the synthetic dataset (MVTec AD layout) to a new folder."""
    from adbench.data.synth import generate

    if os.path.lexists(out):
        raise AdbenchError(f"{out}: already exists and is never overwritten; choose a new --out")
    generate(out, seed)
    out_console.print(f"synthetic dataset (seed {seed}) written to {out}")


def _refuse_undecodable(args: list[str]) -> None:
    """AdbenchError for the first argument whose bytes are not UTF-8 (Python holds them as surrogate
    escapes, which no UTF-8 terminal, manifest, report or parquet file can take), its bytes shown."""
    for index, arg in enumerate(args):
        if not encodes_as_utf8(arg):
            option = f"{args[index - 1]} " if index and args[index - 1].startswith("-") else ""
            shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            raise AdbenchError(
                f"{option}{shown}: not valid UTF-8; adbench records the paths and names it is given in "
                "UTF-8 files (manifests, reports), so rename it to UTF-8 (e.g. with convmv)"
            )


# typer from 0.2x on carries its own copy of click; either way its usage errors derive from the classes
# below, found through the one typer exports.
_USAGE_ERROR: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_CLICK_EXCEPTION: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


# Commands that train or score with torch: they choose OpenMP's wait policy before torch is imported.
_COMPUTING_COMMANDS = ("run", "time", "evaluate")


def main() -> None:
    try:
        _refuse_undecodable(sys.argv[1:])
        if sys.argv[1:2] and sys.argv[1] in _COMPUTING_COMMANDS and (note := choose_wait_policy()):
            err_console.print(f"note: {escape(note)}", highlight=False, soft_wrap=True)
        # Not standalone, so that a usage error is ours to print (in one line, as every other error);
        # what typer's standalone mode returns instead of exiting: an exit code, or a command's None.
        code = app(prog_name="adbench", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except _CLICK_EXCEPTION as error:
        if type(error).__name__ == "NoArgsIsHelpError":  # a group called alone: its help is the answer
            error.show()
            sys.exit(error.exit_code)
        message = " ".join(error.format_message().split()).rstrip(".")
        if isinstance(error, _USAGE_ERROR) and error.ctx is not None:
            message += f"; see {error.ctx.command_path} --help"
        err_console.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        sys.exit(error.exit_code)
    except typer.Abort:
        err_console.print("Aborted!", highlight=False)
        sys.exit(1)
    except AdbenchError as error:
        err_console.print(f"[red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except OSError as error:
        # A full disk or a folder this user may not write is the user's to fix wherever it happened.
        explained = user_error(error)
        if explained is None:
            raise
        err_console.print(f"[red]error:[/] {escape(str(explained))}", highlight=False, soft_wrap=True)
        sys.exit(2)
