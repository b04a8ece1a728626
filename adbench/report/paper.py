"""Published per-category tables, as reference rows for reports on MVTec AD.

The CSV files in data/ are transcribed from the source papers:
- the CBiGAN paper's Tables II (balanced accuracy) and III (image AUROC), two decimals, with its own
  textures, objects and overall means;
- the DSR paper's Table 3 (image AUROC, in per cent there, one decimal: here fractions with three), its
  DSR row and the row of its reference [21], DRAEM, by the same authors. The paper prints only the
  overall average; the textures and objects means are recomputed here (shown at the report's precision,
  not the paper's). The excerpt's text extraction displaced one cell: in DRAEM's row (and CutPaste's)
  the transistor value (93.1) sits before the wood value in the last cell, while the DSR row keeps it in
  place after tile ("97.5 100 97.8"); the values transcribed follow the header's order, as in DSR's row.
They are shown only beside runs whose categories are all MVTec AD categories, labelled "(paper)", and
never mixed into results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

import pandas as pd

from adbench.data.mvtec import OBJECTS, TEXTURES
from adbench.report.tables import MEAN_COLUMNS


@dataclass(frozen=True)
class PaperTable:
    file: str  # in data/
    names: dict[str, str]  # our method -> the paper's row name
    decimals: int  # as the paper prints its values
    published_means: tuple[str, ...]  # the mean columns the paper prints; the others are recomputed


_CBIGAN_TABLE_II = PaperTable(
    "cbigan-table2-balanced-accuracy.csv",
    {"l2ae": "AE-L2", "ssimae": "AE-SSIM", "cbigan": "CBiGAN", "egbad": "EGBAD", "anogan": "AnoGAN"},
    2,
    MEAN_COLUMNS,
)
_CBIGAN_TABLE_III = PaperTable(
    "cbigan-table3-auroc.csv",
    {
        "l2ae": "AE-L2",
        "ssimae": "AE-SSIM",
        "cbigan": "CBiGAN",
        "egbad": "EGBAD",
        "anogan": "AnoGAN",
        "ganomaly": "GANomaly",
    },
    2,
    MEAN_COLUMNS,
)
_DSR_TABLE_3 = PaperTable("dsr-table3-auroc.csv", {"draem": "DRAEM", "dsr": "DSR"}, 3, ("overall_mean",))
# The CBiGAN paper's Table II mixes two metrics: its own rows (CBiGAN, EGBAD) are the maximum balanced
# accuracy over thresholds, while the AE-L2, AE-SSIM and AnoGAN rows are copied from MVTec AD's Table 2,
# (TPR + TNR) / 2 at a threshold chosen on defect-free validation images. Each row goes beside its metric.
_AT_VALIDATION_THRESHOLD = frozenset({"AE-L2", "AE-SSIM", "AnoGAN"})
PAPER_TABLES: dict[str, list[tuple[PaperTable, Callable[[str], bool]]]] = {
    "image_max_balanced_accuracy": [(_CBIGAN_TABLE_II, lambda row: row not in _AT_VALIDATION_THRESHOLD)],
    "threshold_balanced_accuracy": [(_CBIGAN_TABLE_II, lambda row: row in _AT_VALIDATION_THRESHOLD)],
    "image_auroc": [(_CBIGAN_TABLE_III, lambda row: True), (_DSR_TABLE_3, lambda row: True)],
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
    "DSR": (
        "The published rows of DRAEM and DSR are the DSR paper's Table 3 (in per cent there); it prints "
        "only the overall average, so their textures and objects means are recomputed from its values."
    ),
}


def is_mvtec(categories: list[str]) -> bool:
    return bool(categories) and set(categories) <= set(TEXTURES) | set(OBJECTS)


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
    shown_names = {name.split(" (")[0] for name in rows.index}
    if shown_names & {"CBiGAN", "EGBAD"}:
        notes.append(PAPER_NOTES["CBiGAN"])
    if shown_names & {"DRAEM", "DSR"}:
        notes.append(PAPER_NOTES["DSR"])
    return notes


def paper_rows(metric: str, methods: list[str], categories: list[str]) -> pd.DataFrame:
    """The papers' rows for `methods` (those they report), over `categories`, indexed "<name> (paper)".

    Means are the paper's own when every MVTec AD category is shown and the paper prints them, else
    recomputed over those shown. Empty when the metric has no paper table or the categories are not
    MVTec AD's.
    """
    if metric not in PAPER_TABLES or not is_mvtec(categories):
        return pd.DataFrame()
    found = [_rows_of(paper, shown, methods, categories) for paper, shown in PAPER_TABLES[metric]]
    found = [rows for rows in found if not rows.empty]
    return pd.concat(found) if found else pd.DataFrame()


def _rows_of(
    paper: PaperTable, shown: Callable[[str], bool], methods: list[str], categories: list[str]
) -> pd.DataFrame:
    source = resources.files("adbench.report").joinpath("data", paper.file)
    with source.open() as stream:
        table = pd.read_csv(stream).set_index("method")
    names = [paper.names[m] for m in methods if paper.names.get(m) in table.index and shown(paper.names[m])]
    rows = table.loc[names, categories].copy()
    textures = [c for c in categories if c in TEXTURES]
    objects = [c for c in categories if c in OBJECTS]
    rows["textures_mean"] = rows[textures].mean(axis=1) if textures else float("nan")
    rows["objects_mean"] = rows[objects].mean(axis=1) if objects else float("nan")
    rows["overall_mean"] = rows[categories].mean(axis=1)
    if covers_mvtec(categories):
        published = list(paper.published_means)
        rows[published] = table.loc[names, published]
    rows.index = [f"{name} (paper)" for name in rows.index]
    return rows


def paper_decimals(row: str, column: str, every_category: bool) -> int | None:
    """The precision a paper prints the value of `row` ("<name> (paper)") in `column` with; None for a
    value the paper does not print (a mean recomputed here), shown at the report's own precision."""
    name = row.removesuffix(" (paper)")
    for tables in PAPER_TABLES.values():
        for paper, _ in tables:
            if name in paper.names.values():
                if column not in MEAN_COLUMNS or (every_category and column in paper.published_means):
                    return paper.decimals
                return None
    return None
