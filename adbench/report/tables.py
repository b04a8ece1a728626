"""Per-category tables from the tidy results table, in the layout of the CBiGAN paper's Tables II–III.

Pure functions: results table in, DataFrame out. Values are means over seeds; the textures, objects and
overall means are means over categories (the paper's convention), NaN where a group has no category.
"""

from __future__ import annotations

import pandas as pd

MEAN_COLUMNS = ("textures_mean", "objects_mean", "overall_mean")


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
    textures = [name for name in categories if kinds[name] == "texture"]
    objects = [name for name in categories if kinds[name] == "object"]
    nan = pd.Series(float("nan"), index=table.index)
    table["textures_mean"] = table[textures].mean(axis=1, skipna=False) if textures else nan
    table["objects_mean"] = table[objects].mean(axis=1, skipna=False) if objects else nan
    table["overall_mean"] = table[categories].mean(axis=1, skipna=False)
    table.columns.name = None
    table.index.name = "method"
    return table
