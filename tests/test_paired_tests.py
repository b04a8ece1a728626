"""Method comparisons: paired tests against scipy, Holm by hand, the CSV's columns and the diagram."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from adbench.report import paired_tests as comparisons
from adbench.report.sections.method_comparisons import comparison_section
from adbench.run.results import results_frame


def _results(values: dict[str, list[list[float]]], metric="image_auroc") -> pd.DataFrame:
    """values[method][category] = one value per seed."""
    rows = [
        {
            "run_id": "r",
            "method": method,
            "category": f"c{category}",
            "category_kind": "object",
            "seed": seed,
            "metric": metric,
            "value": value,
        }
        for method, per_category in values.items()
        for category, seeds in enumerate(per_category)
        for seed, value in enumerate(seeds)
    ]
    return results_frame(rows)


@pytest.fixture
def three_methods():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 0.9, 8)
    return _results(
        {
            "a": [[v + 0.05, v + 0.07] for v in base],
            "b": [[v + 0.01 * rng.normal(), v] for v in base],
            "c": [[v - 0.1, v - 0.08] for v in base],
        }
    )


def test_pairs_match_scipy_on_the_seed_means_and_holm_by_hand(three_methods):
    table = comparisons.pairwise(three_methods, "image_auroc")
    assert list(table.columns) == comparisons.COLUMNS
    means = three_methods.groupby(["category", "method"])["value"].mean().unstack()
    for row in table.itertuples():
        a, b = means[row.method_a].to_numpy(), means[row.method_b].to_numpy()
        assert row.n_categories == 8
        assert row.mean_difference == pytest.approx(np.mean(a - b))
        assert row.ci_low <= row.mean_difference <= row.ci_high
        assert row.p_value == pytest.approx(stats.wilcoxon(a, b).pvalue)
        assert (row.wins, row.ties, row.losses) == (np.sum(a > b), np.sum(a == b), np.sum(a < b))
    p = table["p_value"].to_numpy()
    order = np.argsort(p)
    expected = np.maximum.accumulate(np.minimum(1, (3 - np.arange(3)) * p[order]))
    assert table["p_holm"].to_numpy()[order] == pytest.approx(expected)


def test_holm_by_hand_with_an_untestable_pair():
    adjusted = comparisons.holm(np.array([0.01, 0.04, np.nan, 0.03]))
    # Three tests: 3 × 0.01, then max(0.03, 2 × 0.03), then max(0.06, 1 × 0.04).
    assert adjusted[[0, 3, 1]] == pytest.approx([0.03, 0.06, 0.06]) and np.isnan(adjusted[2])


def test_friedman_and_average_ranks_match_scipy(three_methods):
    ranks = comparisons.ranking(three_methods, "image_auroc")
    means = three_methods.groupby(["category", "method"])["value"].mean().unstack()
    expected = stats.friedmanchisquare(means["a"], means["b"], means["c"]).pvalue
    assert ranks.friedman_p == pytest.approx(expected) and ranks.n_categories == 8
    assert ranks.average_ranks["a"] == 1.0 and ranks.average_ranks["c"] == 3.0


def test_lower_is_better_metrics_count_a_smaller_value_as_a_win():
    results = _results({"fast": [[1.0]] * 6, "slow": [[2.0]] * 6}, metric="infer_ms_per_image")
    row = comparisons.pairwise(results, "infer_ms_per_image").iloc[0]
    assert (row.wins, row.losses) == (6, 0) and row.mean_difference == -1.0


def test_the_section_writes_the_csv_and_the_diagram_and_withholds_weak_p_values(three_methods, tmp_path):
    lines, written = comparison_section(three_methods, "image_auroc", tmp_path / "r.md")
    csv, diagram = written
    assert list(pd.read_csv(csv).columns) == comparisons.COLUMNS and len(pd.read_csv(csv)) == 3
    assert diagram.read_bytes()[:4] == b"\x89PNG" and diagram.stat().st_size > 1000
    assert "little power" not in "\n".join(lines)
    few = _results({"a": [[0.9]] * 4, "b": [[0.8]] * 4})
    weak, _ = comparison_section(few, "image_auroc", tmp_path / "few.md")
    row = next(line for line in weak if line.startswith("| a | b | 4 |"))
    assert "little power" in row
    reason = "every method has: not reported (it compares 3 or more methods; these runs have 2)"
    assert reason in "\n".join(weak), "the real reason: two methods, not the categories"
    three_few = _results({"a": [[0.9]] * 4, "b": [[0.8]] * 4, "c": [[0.7]] * 4})
    lines, _ = comparison_section(three_few, "image_auroc", tmp_path / "three.md")
    assert "not reported (4 categories give it little power; it needs 6)" in "\n".join(lines)


def test_methods_the_tests_separate_are_not_linked(three_methods):
    table = comparisons.pairwise(three_methods, "image_auroc")
    order = list(comparisons.ranking(three_methods, "image_auroc").average_ranks.index)
    separated = table[table.p_holm < comparisons.ALPHA]
    groups = comparisons.linked_groups(order, table)
    for first, last in groups:
        members = set(order[first : last + 1])
        assert not any({row.method_a, row.method_b} <= members for row in separated.itertuples())
