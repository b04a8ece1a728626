"""`adbench run` and `adbench time`: a grid from flags and a grid file, run, resumed or only planned."""

from __future__ import annotations

import shlex
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.markup import escape
from rich.table import Table

from adbench.cli.app import ConfigOption, ContendedOption, app, err_console, out_console
from adbench.cli.tables import duration, print_tables, print_timing
from adbench.errors import AdbenchError
from adbench.run.options import OPTIONS_BY_KEY, RUN_OPTIONS, flag_name, given_flags, with_run_options

if TYPE_CHECKING:
    from adbench.run.config import RunConfig
    from adbench.run.plan import CellPlan
    from adbench.run.runner import RunOutcome


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
    from adbench.run.runner import resume as resume_grid

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
    print_tables(outcome.results)
    print_timing(outcome.results, outcome.manifest, contended_timings)
    out_console.print(f"results: {outcome.run_dir / 'results.csv'}")


def _grid_config(
    flags: dict[str, object], grid_file: Path | None, from_run: Path | None, score_metrics: bool = True
) -> RunConfig:
    """The RunConfig of `run` and `time`: a grid file overridden by the flags given, or the grid of
    `from_run` re-scored from its checkpoints."""
    from adbench.run.config import RunConfig, read_grid_file, refuse_stored_scheduler

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
        stored, flagged = options.get("params", {}), cast(dict[str, dict[str, Any]], given["params"])
        given["params"] = {
            method: {**stored.get(method, {}), **flagged.get(method, {})} for method in {*stored, *flagged}
        }
    return RunConfig.from_options(options | given | {"score_metrics": score_metrics})


def _run_grid(config: RunConfig) -> RunOutcome:
    from adbench.run.runner import run as run_grid

    return _interruptible(lambda: run_grid(config, err_console))


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's time limit, `kill`), handled as the interruption it is, like Ctrl-C."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _interruptible(work: Callable[[], RunOutcome]) -> RunOutcome:
    from adbench.run.runner import RunInterrupted

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
    print_timing(outcome.results, outcome.manifest, contended_timings)
    out_console.print(f"results: {outcome.run_dir / 'results.csv'}")


def _print_plan(config: RunConfig, as_json: bool, estimate: bool) -> None:
    """The dry run's output: a table of the cells and the departures from the papers, or JSON lines."""
    import json

    from adbench.progress import stage_progress
    from adbench.run.plan import plan_grid

    with stage_progress(err_console) as progress:
        cells = plan_grid(config, estimate, progress)
    if as_json:
        for cell in cells:
            sys.stdout.write(json.dumps(cell.to_json()) + "\n")
        _refuse_blocked(cells)
        return
    table = Table(
        title=f"plan: {len(cells)} cells at the {config.budget} budget (nothing trained or written)"
    )
    for column in ("method", "category", "kind", "seed", "steps", "batch", "image", "patch", "lr"):
        table.add_column(column, justify="left" if column in ("method", "category", "kind") else "right")
    if estimate:
        table.add_column("estimate", justify="right")
    for cell in cells:
        steps = f"{cell.trained_by}'s" if cell.trained_by else f"{cell.steps:,}"
        row = [cell.method, cell.category, cell.category_kind, str(cell.seed), steps]
        row += [str(cell.batch_size), str(cell.image_size), str(cell.patch_size or "—")]
        row.append(f"{cell.params['learning_rate']:g}" if "learning_rate" in cell.params else "—")
        if estimate:
            row.append(duration(cell.estimated_seconds or 0.0))
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
        out_console.print(f"estimated duration of the grid on {config.device}: {duration(total)}")
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
    _refuse_blocked(cells)


def _refuse_blocked(cells: list[CellPlan]) -> None:
    """After the plan is shown: the run it describes would stop before training, so the dry run fails
    with the first reason (a script using --dry-run as a preflight check sees it)."""
    blocked = next((cell for cell in cells if cell.stops_before_training), None)
    if blocked is not None:
        raise AdbenchError(f"the run would stop before training: {blocked.stops_before_training}")
