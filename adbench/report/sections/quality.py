"""The image-level tables (Table II and III of the CBiGAN paper, and the threshold protocol's rates)."""

from __future__ import annotations

import pandas as pd

from adbench.report.context import QUALITY_TABLES, ReportInput
from adbench.report.render import render_table
from adbench.report.sections import Section

# Below this image AUROC with a pixel AUROC of at least the next, a cell's image score misses what its
# maps find: a reader takes it for a bug, so the report says why.
_IMAGE_BELOW, _PIXEL_AT_LEAST = 0.5, 0.9


def image_tables(report: ReportInput) -> Section:
    lines = []
    for metric, title in QUALITY_TABLES.items():
        if metric in report.present:
            lines += ["", f"## {title}", "", render_table(report.tables[metric])]
            if metric == "image_auroc":
                lines += maps_find_what_the_score_misses(report.results)
    return Section(lines)


def maps_find_what_the_score_misses(results: pd.DataFrame) -> list[str]:
    """A line per method and category whose image AUROC is below chance while its maps find the defects."""
    means = results.groupby(["metric", "method", "category"], sort=False)["value"].mean()
    lines = []
    for (metric, method, category), image in means.items():
        pixel = means.get(("pixel_auroc", method, category))
        if (
            metric == "image_auroc"
            and image < _IMAGE_BELOW
            and pixel is not None
            and pixel >= _PIXEL_AT_LEAST
        ):
            lines.append(
                f"- {method} on {category}: image AUROC {image:.3f} although its maps find the defects "
                f"(pixel AUROC {pixel:.3f}). The image score reduces each map to one number (its maximum, "
                "after a filter for some methods: see the method's `image_score`), and defect-free pixels "
                "far from the reconstruction can outscore a small defect; read the pixel metrics here."
            )
    return ["", *lines] if lines else []
