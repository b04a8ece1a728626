"""The report's tables for a paper and for scripts, written beside the markdown: every table as LaTeX
(booktabs; `\\usepackage{booktabs}`) in NAME-tables.tex, and as numbers in NAME-tables.csv.

Both come from the same `TableData` as the markdown, so the three agree: means (± std over seeds) at the
column's precision, the clearly best value in bold, collapsed cells marked.
"""

from __future__ import annotations

import math

import pandas as pd

from adbench.evaluation.sensitivity import COLLAPSE_WARNING
from adbench.report.statistics import CONTENDED_NOTE, TableData

CSV_COLUMNS = ("table", "metric", "method", "inference", "column", "mean", "std", "ci_low", "ci_high", "best")
_LATEX_SPECIAL = {c: f"\\{c}" for c in "&%$#_{}"} | {
    "~": r"\textasciitilde{}",
    "^": r"\^{}",
    "\\": r"\textbackslash{}",
}


def tables_csv(tables: dict[str, TableData], titles: dict[str, str]) -> str:
    """One row per table, method and column; ci_low/ci_high the interval shown below the table."""
    rows = []
    for metric, title in titles.items():
        table = tables[metric]
        low, high = (None, None) if table.intervals is None else table.intervals[:2]
        for method in table.methods:
            for column in table.columns:
                bounds = [_bound(bound, method, column) for bound in (low, high)]
                rows.append(
                    (title, metric, method, table.groups[method], column, table.mean.at[method, column],
                     table.std.at[method, column], *bounds, (method, column) in table.best)
                )  # fmt: skip
    return pd.DataFrame(rows, columns=list(CSV_COLUMNS)).to_csv(index=False)


def _bound(frame: pd.DataFrame | None, method: str, column: str) -> float:
    if frame is None or column not in frame.columns:
        return math.nan
    return float(frame.at[method, column])


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(character, character) for character in text)


def tables_latex(tables: dict[str, TableData], titles: dict[str, str]) -> str:
    return "\n".join(_latex_table(tables[metric], title) for metric, title in titles.items())


def _latex_table(table: TableData, title: str) -> str:
    columns = table.columns
    header = " & ".join(
        ["method", "inference", *(latex_escape(c.replace("_mean", " mean")) for c in columns)]
    )
    body = []
    for method in table.methods:
        cells = []
        for column in columns:
            text = table.value_text(method, column, plus_minus=r"$\pm$").replace("—", "--")
            if (method, column) in table.best:
                text = rf"\textbf{{{text}}}"
            if (method, column) in table.collapsed:
                text += r"$^\dagger$"
            if (method, column) in table.contended:
                text += r"$^\ddagger$"
            cells.append(text)
        body.append(" & ".join([latex_escape(method), table.groups[method], *cells]) + r" \\")
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{latex_escape(title)}}}",
        r"\begin{tabular}{ll" + "r" * len(columns) + "}",
        r"\toprule",
        header + r" \\",
        r"\midrule",
        *body,
        r"\bottomrule",
        r"\end{tabular}",
    ]
    if table.collapsed & {(m, c) for m in table.methods for c in columns}:
        lines.append(rf"\\[2pt]{{\footnotesize $^\dagger$ {latex_escape(COLLAPSE_WARNING)}}}")
    if table.contended:
        lines.append(rf"\\[2pt]{{\footnotesize $^\ddagger$ {latex_escape(CONTENDED_NOTE)}}}")
    lines += [r"\end{table}", ""]
    return "\n".join(lines)
