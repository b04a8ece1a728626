"""Which differences between methods are real: paired comparisons over the categories they share.

For one metric, each method's value per category is averaged over its seeds. Every pair of methods is
then compared over the categories both have: the mean difference (a minus b) with a percentile
bootstrap interval over categories, wins / ties / losses (a better, equal, worse, by the metric's
direction), the Wilcoxon signed-rank p-value (scipy.stats.wilcoxon with its defaults) and the
Holm-adjusted p-value over all pairs. Over the categories every method has: the Friedman test and the
average ranks (1 = best, ties share their mean rank). The critical-difference diagram places the methods
by average rank and links those whose Holm-adjusted Wilcoxon test does not separate them at 0.05.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from adbench.evaluation.metrics.catalogue import METRICS
from adbench.report.tables import MEAN_COLUMNS, category_table

COLUMNS = [
    *("metric", "method_a", "method_b", "n_categories", "mean_difference", "ci_low", "ci_high"),
    *("wins", "ties", "losses", "p_value", "p_holm"),
]
# Below this many shared categories a signed-rank test can hardly reject anything (with 5, its smallest
# two-sided p-value is 0.0625), so the report says so instead of printing a bare p-value.
MIN_CATEGORIES = 6
ALPHA = 0.05
RESAMPLES = 2000
_SEED = 0  # the interval over categories is a property of the table, the same on every report


def category_means(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """categories × methods: the metric's mean over seeds (NaN where a method lacks the category)."""
    return category_table(results, metric).drop(columns=list(MEAN_COLUMNS)).T


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment; NaN entries stay NaN and do not count as tests."""
    adjusted = np.full(len(p_values), np.nan)
    finite = np.flatnonzero(np.isfinite(p_values))
    order = finite[np.argsort(p_values[finite], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def _wilcoxon(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or np.all(a == b):  # nothing to rank: no evidence either way
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns about small samples; the report says it instead
        return float(stats.wilcoxon(a, b).pvalue)


def pairwise(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The comparisons table, one row per pair of methods (in report order), with exactly `COLUMNS`."""
    table = category_means(results, metric)
    sign = 1.0 if METRICS[metric].higher_is_better else -1.0
    rng = np.random.default_rng(_SEED)
    rows = []
    for method_a, method_b in itertools.combinations(table.columns, 2):
        shared = table[[method_a, method_b]].dropna()
        a, b = shared[method_a].to_numpy(), shared[method_b].to_numpy()
        difference = a - b
        low = high = math.nan
        if len(difference):
            drawn = rng.integers(0, len(difference), (RESAMPLES, len(difference)))
            resampled = difference[drawn].mean(axis=1)
            low, high = np.quantile(resampled, [ALPHA / 2, 1 - ALPHA / 2])
        rows.append(
            {
                "metric": metric,
                "method_a": method_a,
                "method_b": method_b,
                "n_categories": len(difference),
                "mean_difference": float(difference.mean()) if len(difference) else math.nan,
                "ci_low": float(low),
                "ci_high": float(high),
                "wins": int(np.sum(sign * difference > 0)),
                "ties": int(np.sum(difference == 0)),
                "losses": int(np.sum(sign * difference < 0)),
                "p_value": _wilcoxon(a, b),
            }
        )
    frame = pd.DataFrame(rows, columns=COLUMNS[:-1])
    frame["p_holm"] = holm(frame["p_value"].to_numpy(dtype=float))
    return frame[COLUMNS]


@dataclass(frozen=True)
class Ranking:
    average_ranks: pd.Series  # method -> mean rank over the categories every method has (1 = best)
    n_categories: int
    friedman_p: float  # NaN with fewer than 3 methods or 2 categories


def ranking(results: pd.DataFrame, metric: str) -> Ranking:
    complete = category_means(results, metric).dropna()
    sign = 1.0 if METRICS[metric].higher_is_better else -1.0
    ranks = complete.apply(lambda row: pd.Series(stats.rankdata(-sign * row.to_numpy()), row.index), axis=1)
    friedman = math.nan
    if complete.shape[1] >= 3 and len(complete) >= 2:
        friedman = float(stats.friedmanchisquare(*(complete[m].to_numpy() for m in complete.columns)).pvalue)
    return Ranking(ranks.mean().sort_values(), len(complete), friedman)


def linked_groups(order: list[str], comparisons: pd.DataFrame) -> list[tuple[int, int]]:
    """Maximal runs (first, last index in `order`) of methods no pair of which differs significantly."""
    separated = {
        frozenset((row.method_a, row.method_b))
        for row in comparisons.itertuples()
        if np.isfinite(row.p_holm) and row.p_holm < ALPHA
    }
    groups: list[tuple[int, int]] = []
    for first in range(len(order)):
        last = first
        while last + 1 < len(order) and all(
            frozenset((order[i], order[last + 1])) not in separated for i in range(first, last + 1)
        ):
            last += 1
        if last > first and not any(start <= first and last <= end for start, end in groups):
            groups.append((first, last))
    return groups


def critical_difference_diagram(ranks: Ranking, comparisons: pd.DataFrame, path: Path) -> Path:
    """Methods on an axis of average rank (best on the left); a bar links methods not separated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = list(ranks.average_ranks.index)
    groups = linked_groups(order, comparisons)
    count = len(order)
    figure, axis = plt.subplots(figsize=(7, 1.2 + 0.3 * count + 0.2 * len(groups)))
    axis.set_xlim(0.5, max(count, 2) + 0.5)
    axis.set_ylim(-(count + len(groups) + 1), 1.5)
    axis.hlines(0, 1, max(count, 2), color="black")
    for rank in range(1, max(count, 2) + 1):
        axis.vlines(rank, 0, 0.25, color="black")
        axis.text(rank, 0.45, str(rank), ha="center", fontsize=9)
    for index, method in enumerate(order):
        x = float(ranks.average_ranks[method])
        y: float = -(index + 1)
        left = index < (count + 1) // 2
        end = 0.6 if left else max(count, 2) + 0.4
        axis.plot([x, x, end], [0, y, y], color="black", linewidth=0.8)
        axis.text(end, y, f" {method} ({x:.2f}) " if left else f" ({x:.2f}) {method} ",
                  ha="right" if left else "left", va="center", fontsize=9)  # fmt: skip
    for level, (first, last) in enumerate(groups):
        y = -(count + level + 0.8)
        xs = [float(ranks.average_ranks[order[first]]), float(ranks.average_ranks[order[last]])]
        axis.plot(xs, [y, y], color="tab:red", linewidth=3)
    axis.set_axis_off()
    axis.set_title(
        f"average rank over {ranks.n_categories} categories; bars: not separated (Wilcoxon, Holm, {ALPHA})",
        fontsize=9,
    )
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return path
