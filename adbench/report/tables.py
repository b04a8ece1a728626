"""Per-category tables from the tidy results table, in the layout of the CBiGAN paper's Tables II–III.

Pure functions: results table in, DataFrame out. Values are means over seeds; the textures, objects and
overall means are means over categories (the paper's convention), NaN where a group has no category.
"""

from __future__ import annotations

import pandas as pd

# The mean over a kind's categories, by kind, and over every category: the tables' last columns.
KIND_MEAN_COLUMN = {"texture": "textures_mean", "object": "objects_mean"}
OVERALL_MEAN = "overall_mean"
MEAN_COLUMNS = (*KIND_MEAN_COLUMN.values(), OVERALL_MEAN)


def category_order(results: pd.DataFrame) -> list[str]:
    """Textures first, then objects, alphabetical within each, as in the paper tables."""
    kinds = results.drop_duplicates("category").set_index("category")["category_kind"]
    return sorted(kinds.index, key=lambda name: (kinds[name] != "texture", name))


def category_table(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows: methods (in order of first appearance); columns: categories then the three means."""
    rows = results[results["metric"] == metric]
    per_category = rows.groupby(["method", "category"], sort=False)["value"].mean().unstack("category")
    per_category = per_category.reindex(index=list(dict.fromkeys(rows["method"])))
    categories = category_order(rows)
    table = per_category.reindex(columns=categories)
    kinds = rows.drop_duplicates("category").set_index("category")["category_kind"]
    nan = pd.Series(float("nan"), index=table.index)
    for kind, column in KIND_MEAN_COLUMN.items():
        of_kind = [name for name in categories if kinds[name] == kind]
        table[column] = table[of_kind].mean(axis=1, skipna=False) if of_kind else nan
    table[OVERALL_MEAN] = table[categories].mean(axis=1, skipna=False)
    table.columns.name = None
    table.index.name = "method"
    return table
