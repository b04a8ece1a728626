"""What the commands print: per-category tables of metrics and timings, titled as the catalogue says."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd
from rich.markup import escape
from rich.table import Table

from adbench.cli.app import err_console, out_console
from adbench.evaluation.metrics.catalogue import METRICS

if TYPE_CHECKING:
    from adbench.run.folder import Manifest

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


def format_value(value: float) -> str:
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
        rendered.add_row(str(method), *(format_value(value) for value in row))
    return rendered


def print_tables(results: pd.DataFrame, metrics: Sequence[str] = TABLE_METRICS) -> None:
    """A category table for each of `metrics` that `results` holds, titled as the catalogue says."""
    from adbench.report.tables import category_table

    for metric in metrics:
        if (results["metric"] == metric).any():
            out_console.print(render_category_table(category_table(results, metric), METRICS[metric].short))


def print_timing(results: pd.DataFrame, manifest: Manifest, contended_timings: bool) -> None:
    """The timing tables, and how much slower each iterative method is than the fastest single-pass one
    (from the cells timed on a quiet machine, unless `contended_timings`)."""
    from adbench.machine.timing import TIMING_METRICS, contended_cells, contended_ratio_note, iterative_cost
    from adbench.registry import load_method

    print_tables(results, TIMING_METRICS)
    kinds: dict[str, str] = {
        method: load_method(method).inference_kind for method in results["method"].unique()
    }
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


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:,.1f} h"
