"""The CBiGAN paper's published Tables II and III, as reference rows for reports on MVTec AD.

The CSV files in data/ are transcribed from the paper (see their header). They are shown only beside
runs whose categories are all MVTec AD categories, labelled "(paper)", and never mixed into results.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

import pandas as pd

from adbench.data.mvtec import OBJECTS, TEXTURES
from adbench.report.tables import MEAN_COLUMNS

# Our method name -> the paper's row name.
PAPER_NAMES = {"l2ae": "AE-L2", "ssimae": "AE-SSIM", "cbigan": "CBiGAN", "egbad": "EGBAD", "anogan": "AnoGAN"}
_TABLE_II = "cbigan-table2-balanced-accuracy.csv"
# The CBiGAN paper's Table II mixes two metrics: its own rows (CBiGAN, EGBAD) are the maximum balanced
# accuracy over thresholds, while the AE-L2, AE-SSIM and AnoGAN rows are copied from MVTec AD's Table 2,
# (TPR + TNR) / 2 at a threshold chosen on defect-free validation images. Each row goes beside its metric.
_AT_VALIDATION_THRESHOLD = frozenset({"AE-L2", "AE-SSIM", "AnoGAN"})
PAPER_TABLES: dict[str, tuple[str, Callable[[str], bool]]] = {
    "image_max_balanced_accuracy": (_TABLE_II, lambda row: row not in _AT_VALIDATION_THRESHOLD),
    "threshold_balanced_accuracy": (_TABLE_II, lambda row: row in _AT_VALIDATION_THRESHOLD),
    "image_auroc": ("cbigan-table3-auroc.csv", lambda row: True),
}
# Footnotes the report prints under a table holding these paper rows.
PAPER_NOTES = {
    "threshold_balanced_accuracy": (
        "The published rows of AE-L2, AE-SSIM and AnoGAN are MVTec AD's Table 2, the mean of TNR and TPR at "
        "its validation threshold, as the CBiGAN paper's Table II copies them: the protocol of this table."
    ),
    "CBiGAN": (
        "The published rows of CBiGAN and EGBAD come from the authors' script, which kept the best of about "
        "1,200 test-set evaluations during training; adbench scores the final moving average and selects "
        "nothing on test data."
    ),
}


def is_mvtec(categories: list[str]) -> bool:
    return bool(categories) and set(categories) <= set(TEXTURES) | set(OBJECTS)


PAPER_DECIMALS = 2  # the CBiGAN paper's tables give two decimals


def covers_mvtec(categories: list[str]) -> bool:
    """Whether `categories` are all 15 of MVTec AD, so that the paper's own means apply."""
    return set(categories) == set(TEXTURES) | set(OBJECTS)


def paper_notes(metric: str, rows: pd.DataFrame) -> list[str]:
    """The footnotes that `rows` (from `paper_rows`) need under the table of `metric`."""
    notes = [PAPER_NOTES[metric]] if metric in PAPER_NOTES and not rows.empty else []
    shown = [c for c in rows.columns if c not in MEAN_COLUMNS]
    if not rows.empty and not covers_mvtec(shown):
        notes.append(
            f"The paper rows' means are over the {len(shown)} categories shown, recomputed from its "
            "per-category values (its published means cover all 15)."
        )
    if any(name.split(" (")[0] in ("CBiGAN", "EGBAD") for name in rows.index):
        notes.append(PAPER_NOTES["CBiGAN"])
    return notes


def paper_rows(metric: str, methods: list[str], categories: list[str]) -> pd.DataFrame:
    """The paper's rows for `methods` (those it reports), over `categories`, indexed "<name> (paper)".

    Means are the paper's own when every MVTec AD category is shown, else recomputed over those shown.
    Empty when the metric has no paper table or the categories are not MVTec AD's.
    """
    if metric not in PAPER_TABLES or not is_mvtec(categories):
        return pd.DataFrame()
    file_name, shown = PAPER_TABLES[metric]
    source = resources.files("adbench.report").joinpath("data", file_name)
    with source.open() as stream:
        table = pd.read_csv(stream).set_index("method")
    names = [PAPER_NAMES[m] for m in methods if PAPER_NAMES.get(m) in table.index and shown(PAPER_NAMES[m])]
    rows = table.loc[names, categories].copy()
    if covers_mvtec(categories):
        rows[list(MEAN_COLUMNS)] = table.loc[names, list(MEAN_COLUMNS)]
    else:
        textures = [c for c in categories if c in TEXTURES]
        objects = [c for c in categories if c in OBJECTS]
        rows["textures_mean"] = rows[textures].mean(axis=1) if textures else float("nan")
        rows["objects_mean"] = rows[objects].mean(axis=1) if objects else float("nan")
        rows["overall_mean"] = rows[categories].mean(axis=1)
    rows.index = [f"{name} (paper)" for name in rows.index]
    return rows
