"""`adbench evaluate`, `report` and `compare`: what is made of maps and runs already on disk."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from adbench.cli.app import ContendedOption, FormatOption, app, err_console, out_console
from adbench.cli.tables import EVALUATE_METRICS, print_tables
from adbench.errors import AdbenchError
from adbench.run.options import parse_kinds, split_names


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
    from adbench.evaluation.external_maps import evaluate_maps

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
    print_tables(metrics.assign(method=anomaly_maps.name or str(anomaly_maps)), EVALUATE_METRICS)
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
    from adbench.report.builder import build_report
    from adbench.report.context import DEFAULT_COMPARISON

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
            help="Baseline JSON, e.g. reports/baselines/smoke-synthetic.json (the smoke grid's); it keeps "
            "one baseline per CPU vendor, and RUN is compared with its own vendor's.",
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
        bool,
        typer.Option(
            "--update",
            help="Write RUN's metrics as the baseline for its CPU vendor instead of checking (other vendors' "
            "baselines made the same way are kept).",
        ),
    ] = False,
) -> None:
    """Exit 1 when a metric of RUN is missing or dropped below the baseline by more than the tolerance."""
    from adbench.report.gate import VENDOR, baseline_for_run, regressions, run_protocol, write_baseline
    from adbench.run.folder import load_run

    if exact and within_interval:
        raise AdbenchError("--exact and --ci ask opposite questions; choose one")
    run = load_run(run_dir)
    protocol = run_protocol(run.manifest)
    if update:
        notes = write_baseline(baseline, run.results, [run_dir.name], protocol)
        vendor = protocol.get(VENDOR)
        out_console.print(f"baseline written: {baseline}" + (f" (for {vendor} CPUs)" if vendor else ""))
        for note in notes:
            out_console.print(note)
        return
    entries = baseline_for_run(run_dir, protocol, baseline)
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
