"""A report table (TableData) as markdown: values with their marks, "(paper)" rows, notes, intervals."""

from __future__ import annotations

import math

import pandas as pd

from adbench.evaluation.sensitivity import COLLAPSE_THRESHOLD, COLLAPSE_WARNING, INPUT_SENSITIVITY
from adbench.report.paper import covers_mvtec, paper_decimals, paper_notes, paper_rows
from adbench.report.statistics import CONTENDED_NOTE, TableData, format_value, table_data
from adbench.report.tables import MEAN_COLUMNS

# Beside a value whose cell failed the input-sensitivity check.
COLLAPSE_MARK = "⚠"
# Beside a timing taken on a contended machine (adbench.machine.timing), as in the report's list of
# those cells.
CONTENDED_MARK = "⏱"


def markdown_table(results: pd.DataFrame, metric: str, kinds: dict[str, str]) -> str:
    """Rows: methods grouped single-pass / iterative, then "(paper)" rows; a column's best value in bold
    where it is clearly ahead (`clearly_best`); one precision per column; the intervals below."""
    return render_table(table_data(results, metric, kinds))


def render_table(table: TableData) -> str:
    metric, columns = table.metric, table.columns
    lines = [
        "| method | inference | " + " | ".join(c.replace("_mean", " mean") for c in columns) + " |",
        "|---|---|" + "---:|" * len(columns),
    ]
    for method in table.methods:
        cells = []
        for column in columns:
            text = table.value_text(method, column)
            if (method, column) in table.best:
                text = f"**{text}**"
            if (method, column) in table.collapsed:
                text += f" {COLLAPSE_MARK}"
            if (method, column) in table.contended:
                text += f" {CONTENDED_MARK}"
            cells.append(text)
        lines.append(f"| {method} | {table.groups[method]} | " + " | ".join(cells) + " |")
    paper = paper_rows(metric, table.methods, [c for c in columns if c not in MEAN_COLUMNS])
    # Published values keep the paper's precision; means recomputed here are ours.
    every_category = covers_mvtec([c for c in columns if c not in MEAN_COLUMNS])
    for name, row in paper.iterrows():
        cells = [
            format_value(row[c], metric, paper_decimals(metric, str(name), c, every_category))
            for c in columns
        ]
        lines.append(f"| {name} | published | " + " | ".join(cells) + " |")
    notes = paper_notes(metric, paper)
    if notes:
        lines += ["", *(f"*{note}*" for note in notes)]
    if any(method in table.methods for method, _ in table.collapsed):
        note = (
            f"{COLLAPSE_MARK} {COLLAPSE_WARNING} ({INPUT_SENSITIVITY} below {COLLAPSE_THRESHOLD} in a seed)"
        )
        lines += ["", note]
    if table.contended:
        lines += ["", f"{CONTENDED_MARK} {CONTENDED_NOTE}"]
    if table.intervals is not None:
        lines += ["", *_interval_table(table)]
    return "\n".join(lines)


def _interval_table(table: TableData) -> list[str]:
    assert table.intervals is not None
    low, high, how = table.intervals
    columns = [column for column in low.columns if low[column].notna().any()]
    lines = [
        f"*{how}:*",
        "",
        "| method | " + " | ".join(c.replace("_mean", " mean") for c in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for method in table.methods:
        cells = []
        for column in columns:
            bounds, decimals = (low.at[method, column], high.at[method, column]), table.decimals[column]
            text = "—" if math.isnan(bounds[0]) else f"[{bounds[0]:,.{decimals}f}, {bounds[1]:,.{decimals}f}]"
            cells.append(text + (f" {COLLAPSE_MARK}" if (method, column) in table.collapsed else ""))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines
