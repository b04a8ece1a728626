"""Which differences between methods are real: paired tests over categories, ranks, Friedman's test."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from adbench.report import paired_tests
from adbench.report.context import ReportInput
from adbench.report.sections import Section


def method_comparisons(report: ReportInput) -> Section:
    """Only with the comparison metric in the results and two methods or more."""
    metric = report.comparison_metric
    if metric not in report.present or report.results["method"].nunique() < 2:
        return Section([])
    lines, files = comparison_section(report.results, metric, report.out)
    return Section(["", *lines], files)


def comparison_section(results: pd.DataFrame, metric: str, out: Path) -> tuple[list[str], list[Path]]:
    """The method-comparison section, and the files it writes beside `out` (CSV, diagram)."""
    stem = out.with_suffix("")
    table = paired_tests.pairwise(results, metric)
    csv = Path(f"{stem}-comparisons.csv")
    table.to_csv(csv, index=False)
    lines = [
        f"## Method comparisons: `{metric}`",
        "",
        "Every pair of methods over the categories both have (values averaged over seeds): the mean "
        "difference a − b with a 95 % bootstrap interval over categories, a's wins / ties / losses, the "
        "Wilcoxon signed-rank p-value and its Holm adjustment over all pairs. With fewer than "
        f"{paired_tests.MIN_CATEGORIES} categories a signed-rank test can hardly reject anything, so no "
        f"p-value is shown. The same table is in `{csv.name}`.",
        "",
        "| a | b | categories | mean difference (95 % CI) | wins / ties / losses | p | p (Holm) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in table.itertuples():
        few = row.n_categories < paired_tests.MIN_CATEGORIES
        p_cells = ["little power", "—"] if few else [_p(row.p_value), _p(row.p_holm)]
        lines.append(
            f"| {row.method_a} | {row.method_b} | {row.n_categories} | {row.mean_difference:+.3f} "
            f"({row.ci_low:+.3f} to {row.ci_high:+.3f}) | {row.wins} / {row.ties} / {row.losses} | "
            + " | ".join(p_cells)
            + " |"
        )
    ranks = paired_tests.ranking(results, metric)
    friedman = _friedman_text(ranks)
    average = ", ".join(f"{method} {rank:.2f}" for method, rank in ranks.average_ranks.items())
    diagram = paired_tests.critical_difference_diagram(ranks, table, Path(f"{stem}-critical-difference.png"))
    lines += [
        "",
        f"Friedman test over the {ranks.n_categories} categories every method has: {friedman}. "
        f"Average ranks (1 = best): {average}.",
        "",
        f"![Critical-difference diagram of {metric}]({diagram.name})",
    ]
    return lines, [csv, diagram]


def _friedman_text(ranks: paired_tests.Ranking) -> str:
    """The Friedman test's p-value, or the reason these runs give none."""
    methods = len(ranks.average_ranks)
    if methods < 3:
        return f"not reported (it compares 3 or more methods; these runs have {methods})"
    if ranks.n_categories < paired_tests.MIN_CATEGORIES:
        return (
            f"not reported ({ranks.n_categories} categories give it little power; it needs "
            f"{paired_tests.MIN_CATEGORIES})"
        )
    if not math.isfinite(ranks.friedman_p):
        return "not reported (the methods rank alike on every category)"
    return f"p = {_p(ranks.friedman_p)}"


def _p(value: float) -> str:
    if not math.isfinite(value):
        return "—"
    return f"{value:.3g}" if value >= 0.001 else "< 0.001"
