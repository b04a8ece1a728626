"""What every section of a report reads: the runs, their results and the tables made of them, once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from adbench.errors import AdbenchError
from adbench.evaluation.metrics.catalogue import CATALOGUE
from adbench.machine.timing import contended_cells
from adbench.report.statistics import TableData, table_data
from adbench.report.tables import category_order
from adbench.run.folder import SCORES_FILE, StoredRun, read_cell_tables

# The report's tables by section, in the catalogue's order, titled as it says.
QUALITY_TABLES = {metric.name: metric.title for metric in CATALOGUE if metric.group == "image"}
PIXEL_TABLES = {metric.name: metric.title for metric in CATALOGUE if metric.group == "pixel"}
TIMING_TABLES = {metric.name: metric.title for metric in CATALOGUE if metric.group == "timing"}
DEFAULT_COMPARISON = "image_auroc"


def inference_kinds(runs: list[StoredRun]) -> dict[str, str]:
    """Method -> single-pass/iterative, as each run recorded it (the registry for older runs)."""
    from adbench.registry import load_method

    kinds: dict[str, str] = {}
    for run in runs:
        for cell in run.manifest.cells:
            if cell.inference_kind is not None:
                kinds[cell.method] = cell.inference_kind
    for method in {m for run in runs for m in run.results["method"].unique()} - kinds.keys():
        try:
            kinds[method] = load_method(method).inference_kind
        except AdbenchError:
            kinds[method] = "unknown"
    return kinds


@dataclass
class ReportInput:
    """The loaded runs and what is derived from them; `out` is the report file being written (its figures
    and other files go beside it)."""

    runs: list[StoredRun]
    results: pd.DataFrame  # every run's results table, concatenated
    out: Path
    comparison_metric: str
    contended_timings: bool  # count cells timed on a contended machine in the iterative/single-pass ratios

    @cached_property
    def kinds(self) -> dict[str, str]:
        return inference_kinds(self.runs)

    @cached_property
    def present(self) -> set[str]:
        return set(self.results["metric"])

    @cached_property
    def categories(self) -> list[str]:
        return category_order(self.results)

    @cached_property
    def titles(self) -> dict[str, str]:
        """Every table the results hold, in report order, with its title."""
        every = QUALITY_TABLES | PIXEL_TABLES | TIMING_TABLES
        return {metric: title for metric, title in every.items() if metric in self.present}

    @cached_property
    def contended(self) -> dict[tuple[str, str, int], str]:
        """Cells with a timing taken on a contended machine, and why (timing.contended_cells)."""
        return contended_cells([run.manifest for run in self.runs])

    @cached_property
    def tables(self) -> dict[str, TableData]:
        contended_pairs = {(method, category) for method, category, _ in self.contended}
        return {
            metric: table_data(self.results, metric, self.kinds, contended_pairs) for metric in self.titles
        }

    @cached_property
    def scores(self) -> pd.DataFrame:
        """Every cell's per-image scores (scores.csv), with method, category and seed."""
        return read_cell_tables(self.runs, SCORES_FILE, {"label", "score", "defect"})

    def file(self, suffix: str) -> Path:
        """A file beside the report, named after it: `file("-heatmap.png")` is report-heatmap.png."""
        return self.out.parent / f"{self.out.with_suffix('').name}{suffix}"
