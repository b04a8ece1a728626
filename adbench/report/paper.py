"""Published per-category tables, as reference rows for reports on MVTec AD.

The CSV files in data/ are transcribed from the source papers:
- the CBiGAN paper's Tables II (balanced accuracy) and III (image AUROC), two decimals, with its own
  textures, objects and overall means;
- the DSR paper's Table 3 (image AUROC, in per cent there, one decimal: here fractions with three), its
  DSR row and the row of its reference [21], DRAEM, by the same authors. The paper prints only the
  overall average; the textures and objects means are recomputed here (shown at the report's precision,
  not the paper's). The excerpt's text extraction displaced one cell: in DRAEM's row (and CutPaste's)
  the transistor value (93.1) sits before the wood value in the last cell, while the DSR row keeps it in
  place after tile ("97.5 100 97.8"); the values transcribed follow the header's order, as in DSR's row;
- the UTAD paper's Table 1 (two decimals), every row it lists, shown beside any run on MVTec AD: the
  per-category IoU with its row of means (beside `pixel_iou`), and its row of AUROC means, the only
  AUROC it prints (beside `pixel_auroc`). The text extraction lost the labels of the two mean rows, of
  the two "[12]" columns and the "γ" of γ-VAE; they are restored from MVTec AD's Table 3 (the
  segmentation's relative per-region overlap and ROC AUC per category): the AnoGAN column and the
  first "[12]" column equal MVTec AD's AnoGAN and AE (L2) overlaps in all 15 categories, the second
  "[12]" column its AE (SSIM) overlaps in 14 of them (leather: 0.34 in UTAD, 0.71 in MVTec AD; UTAD's
  0.34 is transcribed). The AUROC row is pixel-level: its AnoGAN, AE-L2 and AE-SSIM means (0.74, 0.82,
  0.87) are those of MVTec AD's segmentation ROC AUCs (0.743, 0.817, 0.869), while MVTec AD reports no
  image AUROC and the CBiGAN paper's image AUROC of AE-L2 averages 0.75. The IoU means are the paper's
  own, within its rounding of the 15 values, except CAVGA's: its 15 values (copied from CAVGA's
  supplement, the paper says) average 0.455, it prints 0.47 (and its text counts its 6% lead from it).
  The textures and objects means are recomputed here. The paper's IoU is not `pixel_iou`: UTAD's own row
  segments at the fixed threshold of its eq. 9 (the value was lost in the extraction), the rows from
  MVTec AD are its per-region overlap at a threshold chosen on defect-free validation images, and the
  paper does not say at which threshold the other methods were segmented.
Only rows of the run's methods are shown (each table maps ours to its names), except for a table that
shows `every_row`. Rows are shown only beside runs whose categories are all MVTec AD categories,
labelled "(paper)", and never mixed into results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
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
    # Show all the table's rows beside any run (on MVTec AD), not only those of the run's methods.
    every_row: bool = False


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
# The UTAD paper's Table 1: IoU per category and its mean; of the AUROC, only the mean over all 15.
_UTAD_NAMES = {"anogan": "AnoGAN", "l2ae": "AE-L2", "ssimae": "AE-SSIM", "utad": "UTAD"}
_UTAD_TABLE_1_IOU = PaperTable("utad-table1-iou.csv", _UTAD_NAMES, 2, ("overall_mean",), every_row=True)
_UTAD_TABLE_1_AUROC = PaperTable("utad-table1-auroc.csv", _UTAD_NAMES, 2, ("overall_mean",), every_row=True)
# The CBiGAN paper's Table II mixes two metrics: its own rows (CBiGAN, EGBAD) are the maximum balanced
# accuracy over thresholds, while the AE-L2, AE-SSIM and AnoGAN rows are copied from MVTec AD's Table 2,
# (TPR + TNR) / 2 at a threshold chosen on defect-free validation images. Each row goes beside its metric.
_AT_VALIDATION_THRESHOLD = frozenset({"AE-L2", "AE-SSIM", "AnoGAN"})
PAPER_TABLES: dict[str, list[tuple[PaperTable, Callable[[str], bool]]]] = {
    "image_max_balanced_accuracy": [(_CBIGAN_TABLE_II, lambda row: row not in _AT_VALIDATION_THRESHOLD)],
    "threshold_balanced_accuracy": [(_CBIGAN_TABLE_II, lambda row: row in _AT_VALIDATION_THRESHOLD)],
    "image_auroc": [(_CBIGAN_TABLE_III, lambda row: True), (_DSR_TABLE_3, lambda row: True)],
    "pixel_iou": [(_UTAD_TABLE_1_IOU, lambda row: True)],
    "pixel_auroc": [(_UTAD_TABLE_1_AUROC, lambda row: True)],
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
    "pixel_iou": (
        "Pixel IoU here segments at the validation threshold (chosen on defect-free validation maps); "
        "the published rows, the UTAD paper's Table 1, are not the same figure: UTAD's own row segments "
        "its error map at the paper's fixed threshold (its eq. 9); the AnoGAN, AE-L2 and AE-SSIM rows are "
        "MVTec AD's Table 3, a relative per-region overlap at MVTec AD's threshold chosen on defect-free "
        "validation images; for the other rows the paper does not say. Its AE-SSIM leather "
        "value (0.34) differs from MVTec AD's (0.71); its CAVGA mean (0.47) is not the mean of its 15 "
        "values (0.455). Its textures and objects means are recomputed from its values."
    ),
    "pixel_auroc": (
        "The published rows are the UTAD paper's Table 1, which prints the AUROC only as a mean over all 15 "
        "categories. It is pixel-level, though the paper does not say: its AnoGAN, AE-L2 and AE-SSIM "
        "means (0.74, 0.82, 0.87) are those of MVTec AD's per-category segmentation ROC AUCs."
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
    """The papers' rows for `methods` (those they report; every row of an `every_row` table), over
    `categories`, indexed "<name> (paper)".

    Means are the paper's own when every MVTec AD category is shown and the paper prints them, else
    recomputed over those shown; a row with no value over those (a paper printing only a mean over all
    15) is left out. Empty when the metric has no paper table, there are no methods, or the categories
    are not MVTec AD's.
    """
    if metric not in PAPER_TABLES or not methods or not is_mvtec(categories):
        return pd.DataFrame()
    found = [_rows_of(paper, shown, methods, categories) for paper, shown in PAPER_TABLES[metric]]
    found = [rows for rows in found if not rows.empty]
    return pd.concat(found) if found else pd.DataFrame()


def _rows_of(
    paper: PaperTable, shown: Callable[[str], bool], methods: list[str], categories: list[str]
) -> pd.DataFrame:
    table = _table(paper.file)
    names = list(table.index) if paper.every_row else [paper.names[m] for m in methods if m in paper.names]
    names = [name for name in names if name in table.index and shown(name)]
    rows = table.loc[names, categories].copy()
    textures = [c for c in categories if c in TEXTURES]
    objects = [c for c in categories if c in OBJECTS]
    rows["textures_mean"] = rows[textures].mean(axis=1) if textures else float("nan")
    rows["objects_mean"] = rows[objects].mean(axis=1) if objects else float("nan")
    rows["overall_mean"] = rows[categories].mean(axis=1)
    if covers_mvtec(categories):
        published = list(paper.published_means)
        rows[published] = table.loc[names, published]
    rows = rows.dropna(how="all")
    rows.index = [f"{name} (paper)" for name in rows.index]
    return rows


@cache
def _table(file: str) -> pd.DataFrame:
    """The transcription in data/`file`, indexed by the paper's row names; not to be modified."""
    source = resources.files("adbench.report").joinpath("data", file)
    with source.open(encoding="utf-8") as stream:
        return pd.read_csv(stream).set_index("method")


def paper_decimals(metric: str, row: str, column: str, every_category: bool) -> int | None:
    """The precision a paper prints the value of `row` ("<name> (paper)") in `column` of the table of
    `metric` with; None for a value the paper does not print (a mean recomputed here), shown at the
    report's own precision. The metric decides, since one name (AE-L2) is in tables with different
    published means."""
    name = row.removesuffix(" (paper)")
    for paper, _ in PAPER_TABLES.get(metric, []):
        if name in (_table(paper.file).index if paper.every_row else paper.names.values()):
            if column not in MEAN_COLUMNS or (every_category and column in paper.published_means):
                return paper.decimals
            return None
    return None
