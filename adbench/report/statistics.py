"""The numbers behind every report table, whatever it is rendered as (markdown, LaTeX, CSV).

Pure functions of the tidy results table: per method and column (categories, then the three group
means) the mean and standard deviation over seeds, the 95 % intervals, which value is clearly best, the
precision of each column, and which cells collapsed.
"""

from __future__ import annotations

import math
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import t as t_distribution

from adbench.evaluation.metrics.catalogue import METRICS
from adbench.evaluation.sensitivity import INPUT_SENSITIVITY, is_collapsed
from adbench.machine.timing import TIMING_METRICS
from adbench.report.tables import KIND_MEAN_COLUMN, OVERALL_MEAN, category_table

GROUP_ORDER = ("single-pass", "iterative")


def format_value(value: float, metric: str, decimals: int | None = None) -> str:
    if math.isnan(value):
        return "—"
    if decimals is None:
        decimals = column_decimals(pd.Series([value]), metric)
    return f"{value:,.{decimals}f}"


def column_decimals(values: pd.Series, metric: str) -> int:
    """One precision for a whole column: three decimals for quality metrics (they lie in [0, 1]); for
    timings, three significant digits of the column's smallest value (8.42 beside 149.13, not 8.422
    beside 149)."""
    if metric in METRICS and METRICS[metric].group != "timing":
        return 3
    finite = values[np.isfinite(values) & (values != 0)].abs()
    if finite.empty:
        return 3
    return int(np.clip(2 - math.floor(math.log10(finite.min())), 0, 3))


def clearly_best(
    mean: pd.DataFrame, intervals: tuple[pd.DataFrame, pd.DataFrame, str] | None, higher: bool
) -> set[tuple[str, str]]:
    """(method, column) of each column's best value when it is clearly ahead: at least one other method
    has a value there (alone, a method is best of nothing), none ties it, and it lies outside every other
    method's 95 % interval (where the other has one)."""
    best: set[tuple[str, str]] = set()
    for column in mean.columns:
        values = mean[column].dropna()
        if len(values) < 2:
            continue
        top = values.max() if higher else values.min()
        leaders = values.index[values == top]
        if len(leaders) > 1:
            continue
        ahead = True
        if intervals is not None and column in intervals[0].columns:
            bound = intervals[1] if higher else intervals[0]
            others = bound.loc[[m for m in values.index if m != leaders[0]], column].dropna()
            ahead = bool(((top > others) if higher else (top < others)).all())
        if ahead:
            best.add((leaders[0], column))
    return best


def _per_seed(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The category table of each seed, stacked (outer level: seed), so that every statistic over seeds
    of a group mean is taken over the per-seed group means."""
    per_seed = [category_table(rows, metric) for _, rows in results.groupby("seed")]
    return pd.concat(per_seed, keys=range(len(per_seed)))


def seed_statistics(results: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Mean and standard deviation over seeds of the category table (std NaN with one seed)."""
    stacked = _per_seed(results, metric)
    mean = stacked.groupby(level=1, sort=False).mean()
    std = stacked.groupby(level=1, sort=False).std(ddof=1)
    order = list(dict.fromkeys(results.loc[results["metric"] == metric, "method"]))
    return mean.reindex(order), std.reindex(order)


def mean_intervals(results: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, pd.DataFrame, str] | None:
    """95 % lower and upper bounds per method and column, and how they were obtained; None when the rows
    give none.

    With several seeds: the interval of the mean over seeds (Student's t with seeds − 1 degrees of
    freedom), for the methods with at least two. With one seed: the cell's own interval from the results
    table (the bootstrap over test images; the order statistics for latency), per category only.
    """
    stacked = _per_seed(results, metric)
    grouped = stacked.groupby(level=1, sort=False)
    order = list(dict.fromkeys(results.loc[results["metric"] == metric, "method"]))
    seeds = grouped.count()
    if int(seeds.to_numpy().max(initial=0)) >= 2:
        half = t_distribution.ppf(0.975, seeds - 1) * grouped.std(ddof=1) / np.sqrt(seeds)
        mean = grouped.mean()
        how = (
            f"95 % interval of the mean over {int(seeds.to_numpy().max())} seeds (Student's t, seeds − 1 "
            "degrees of freedom)"
        )
        return (mean - half).reindex(order), (mean + half).reindex(order), how
    rows = results[results["metric"] == metric]
    if rows["ci_low"].isna().all():
        return None
    bounds = rows.groupby(["method", "category"], sort=False)[["ci_low", "ci_high"]].mean()
    columns = list(category_table(results, metric).columns)
    low, high = (bounds[c].unstack("category").reindex(index=order, columns=columns) for c in bounds)
    source = (
        "the order statistics of the repeats"
        if metric in TIMING_METRICS
        else "a stratified bootstrap of whole test images"
        if metric.startswith("pixel_")
        else "a stratified bootstrap of the test images"
    )
    return low, high, f"95 % interval of each cell (one seed), from {source}"


def method_order(results: pd.DataFrame, kinds: dict[str, str]) -> list[str]:
    """The report's order of methods: single-pass, then iterative, each in order of first appearance."""
    methods = list(dict.fromkeys(results["method"]))
    return sorted(methods, key=lambda m: GROUP_ORDER.index(kinds[m]) if kinds.get(m) in GROUP_ORDER else 2)


def collapsed_cells(results: pd.DataFrame) -> set[tuple[str, str]]:
    """(method, category) pairs with a seed whose output did not depend on its input
    (adbench.evaluation.sensitivity)."""
    rows = results[results["metric"] == INPUT_SENSITIVITY]
    return {(row.method, row.category) for row in rows.itertuples() if is_collapsed(float(row.value))}


@dataclass(frozen=True)
class TableData:
    """One metric's table: rows `methods` (the report's order), `columns` (categories, then the means)."""

    metric: str
    methods: list[str]
    groups: dict[str, str]  # method -> single-pass / iterative
    mean: pd.DataFrame
    std: pd.DataFrame
    intervals: tuple[pd.DataFrame, pd.DataFrame, str] | None  # low, high, how they were obtained
    best: set[tuple[str, str]]
    decimals: dict[str, int]
    collapsed: set[tuple[str, str]]
    # (method, column) of a timing table holding a value timed on a contended machine: marked, never bold.
    contended: set[tuple[str, str]] = field(default_factory=set)

    @property
    def columns(self) -> list[str]:
        return list(self.mean.columns)

    def value_text(self, method: str, column: str, plus_minus: str = "±") -> str:
        """'0.873 ± 0.012' (the std where there are several seeds), at the column's precision."""
        decimals = self.decimals[column]
        text = format_value(self.mean.at[method, column], self.metric, decimals)
        std = self.std.at[method, column]
        return text if math.isnan(std) else f"{text} {plus_minus} {format_value(std, self.metric, decimals)}"


def table_data(
    results: pd.DataFrame,
    metric: str,
    kinds: dict[str, str],
    contended: AbstractSet[tuple[str, str]] = frozenset(),
) -> TableData:
    """`contended`: (method, category) pairs with a seed timed on a contended machine
    (timing.contended_cells), marked in a timing table's categories and in the means they enter."""
    mean, std = seed_statistics(results, metric)
    methods = method_order(results[results["metric"] == metric], kinds)
    mean, std = mean.loc[methods], std.loc[methods]
    intervals = mean_intervals(results, metric)
    marked = (
        _contended_columns(results, contended, list(mean.columns))
        if METRICS[metric].group == "timing"
        else set()
    )
    return TableData(
        metric,
        methods,
        {method: kinds.get(method, "unknown") for method in methods},
        mean,
        std,
        intervals,
        clearly_best(mean, intervals, METRICS[metric].higher_is_better) - marked,
        {column: column_decimals(mean[column], metric) for column in mean.columns},
        collapsed_cells(results),
        marked,
    )


CONTENDED_NOTE = "timed on a contended machine (a seed or a category it averages); never marked best"


def _contended_columns(
    results: pd.DataFrame, contended: AbstractSet[tuple[str, str]], columns: list[str]
) -> set[tuple[str, str]]:
    kinds = dict(zip(results["category"], results["category_kind"], strict=True))
    marked = set()
    for method, category in contended:
        marked |= {
            (method, category),
            (method, OVERALL_MEAN),
            (method, KIND_MEAN_COLUMN.get(kinds.get(category, ""), "")),
        }
    return {(method, column) for method, column in marked if column in columns}
