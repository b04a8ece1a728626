"""The CBiGAN paper's published Tables II and III, as reference rows for reports on MVTec AD.

The CSV files in data/ are transcribed from the paper (see their header). They are shown only beside
runs whose categories are all MVTec AD categories, labelled "(paper)", and never mixed into results.
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

from adbench.data.mvtec import OBJECTS, TEXTURES
from adbench.report.tables import MEAN_COLUMNS

# Our method name -> the paper's row name.
PAPER_NAMES = {"l2ae": "AE-L2", "ssimae": "AE-SSIM", "cbigan": "CBiGAN", "egbad": "EGBAD", "anogan": "AnoGAN"}
PAPER_TABLES = {
    "image_max_balanced_accuracy": "cbigan-table2-balanced-accuracy.csv",
    "image_auroc": "cbigan-table3-auroc.csv",
}


def is_mvtec(categories: list[str]) -> bool:
    return bool(categories) and set(categories) <= set(TEXTURES) | set(OBJECTS)


def paper_rows(metric: str, methods: list[str], categories: list[str]) -> pd.DataFrame:
    """The paper's rows for `methods` (those it reports), over `categories`, indexed "<name> (paper)".

    Means are the paper's own when every MVTec AD category is shown, else recomputed over those shown.
    Empty when the metric has no paper table or the categories are not MVTec AD's.
    """
    if metric not in PAPER_TABLES or not is_mvtec(categories):
        return pd.DataFrame()
    source = resources.files("adbench.report").joinpath("data", PAPER_TABLES[metric])
    with source.open() as stream:
        table = pd.read_csv(stream).set_index("method")
    names = [PAPER_NAMES[m] for m in methods if PAPER_NAMES.get(m) in table.index]
    rows = table.loc[names, categories].copy()
    if set(categories) == set(TEXTURES) | set(OBJECTS):
        rows[list(MEAN_COLUMNS)] = table.loc[names, list(MEAN_COLUMNS)]
    else:
        textures = [c for c in categories if c in TEXTURES]
        objects = [c for c in categories if c in OBJECTS]
        rows["textures_mean"] = rows[textures].mean(axis=1) if textures else float("nan")
        rows["objects_mean"] = rows[objects].mean(axis=1) if objects else float("nan")
        rows["overall_mean"] = rows[categories].mean(axis=1)
    rows.index = [f"{name} (paper)" for name in rows.index]
    return rows
