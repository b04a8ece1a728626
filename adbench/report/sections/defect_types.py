"""Image AUROC per defect type, from the stored per-image scores: which defects a method misses."""

from __future__ import annotations

import numpy as np
import pandas as pd

from adbench.evaluation.metrics.image import image_auroc
from adbench.report.context import ReportInput
from adbench.report.render import COLLAPSE_MARK
from adbench.report.sections import Section
from adbench.report.statistics import collapsed_cells, format_value


def defect_types(report: ReportInput) -> Section:
    scores, results = report.scores, report.results
    if scores.empty:
        return Section([])
    lines = [
        "",
        "## Image AUROC per defect type",
        "",
        "Defect-free test images against the images of one defect type, from the stored per-image "
        "scores (mean over seeds): which defects a method misses.",
    ]
    methods, collapsed = list(dict.fromkeys(results["method"])), collapsed_cells(results)
    for category in [c for c in report.categories if c in set(scores["category"])]:
        table = defect_type_table(scores[scores["category"] == category], methods, collapsed)
        lines += ["", f"### {category}", "", table]
    return Section(lines)


def defect_type_table(scores: pd.DataFrame, methods: list[str], collapsed: set[tuple[str, str]]) -> str:
    """One category's scores.csv rows of every method and seed -> methods × defect types, image AUROC;
    a method whose output did not depend on its input there (`collapsed_cells`) is marked."""
    defects = sorted(set(scores.loc[scores["label"] == 1, "defect"]))
    methods = [method for method in methods if method in set(scores["method"])]
    lines = ["| method | " + " | ".join(defects) + " |", "|---|" + "---:|" * len(defects)]
    for method in methods:
        cells = []
        for defect in defects:
            per_seed = []
            for _, seed_rows in scores[scores["method"] == method].groupby("seed"):
                rows = seed_rows[(seed_rows["label"] == 0) | (seed_rows["defect"] == defect)]
                if rows["label"].nunique() == 2:  # a test set without defect-free images has no AUROC
                    per_seed.append(image_auroc(rows["label"].to_numpy(), rows["score"].to_numpy()))
            text = format_value(float(np.mean(per_seed)), "image_auroc") if per_seed else "—"
            collapsed_here = (method, str(scores["category"].iloc[0])) in collapsed
            cells.append(f"{text} {COLLAPSE_MARK}" if collapsed_here else text)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
