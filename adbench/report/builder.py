"""`adbench report`: a markdown report of one or more runs, from their stored files only.

The report is its sections in this order (adbench.report.sections): the header, Table II and III of the
CBiGAN paper with "(paper)" reference rows on MVTec AD, the pixel-level tables, timings with the
iterative/single-pass ratios, the controlled comparison (single-pass against iterative inference on the
same trained networks), image AUROC per defect type, method comparisons, the tables as LaTeX and
CSV, figures (PNG files beside the report) and the provenance of every run. Plain GitHub-flavoured
markdown: pipe tables and image links, readable in a terminal as well as rendered.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from adbench.atomic import held_staging_folder
from adbench.errors import AdbenchError
from adbench.evaluation.metrics.catalogue import METRICS
from adbench.report.context import DEFAULT_COMPARISON, ReportInput
from adbench.report.sections import Section
from adbench.report.sections.controlled import controlled_comparison
from adbench.report.sections.defect_types import defect_types
from adbench.report.sections.exports import table_files
from adbench.report.sections.figures import figures
from adbench.report.sections.header import header
from adbench.report.sections.method_comparisons import method_comparisons
from adbench.report.sections.pixel import pixel_tables
from adbench.report.sections.provenance import provenance
from adbench.report.sections.quality import image_tables
from adbench.report.sections.timing import timing
from adbench.run.folder import StoredRun, load_run

SECTIONS: tuple[Callable[[ReportInput], Section], ...] = (
    header,
    image_tables,
    pixel_tables,
    timing,
    controlled_comparison,
    defect_types,
    method_comparisons,
    table_files,
    figures,
    provenance,
)


def build_report(
    run_dirs: list[Path],
    out: Path,
    comparison_metric: str = DEFAULT_COMPARISON,
    contended_timings: bool = False,
) -> Path:
    """Write the report to `out` and its figures and comparisons beside it (`<stem>-*.png`,
    `<stem>-comparisons.csv`); refuse to overwrite. `contended_timings` counts cells timed on a
    contended machine in the iterative/single-pass ratios.

    Everything is written into a hidden folder beside `out` first and placed only when none of the
    targets exists (not even as a link), so a failure or a refusal leaves nothing behind; the folder of a
    report killed there is removed by the next (`held_staging_folder`).
    """
    _refuse_existing(out, [out])
    runs = [load_run(path) for path in run_dirs]
    _refuse_shared_cells(runs)
    results = pd.concat([run.results for run in runs], ignore_index=True)
    if results.empty:
        raise AdbenchError(f"{run_dirs[0]}: the results table is empty; no cell finished in these runs")
    present = set(results["metric"])
    if comparison_metric != DEFAULT_COMPARISON and comparison_metric not in present:
        raise AdbenchError(
            f"--comparison-metric {comparison_metric}: not in these runs' results; "
            f"choose one of {', '.join(sorted(m for m in present if m in METRICS))}"
        )
    with held_staging_folder(out, "report") as staging:
        report = ReportInput(runs, results, staging / out.name, comparison_metric, contended_timings)
        lines: list[str] = []
        written: list[Path] = []
        for section in SECTIONS:
            made = section(report)
            lines += made.lines
            written += made.files
        report.out.write_text("\n".join(lines).rstrip() + "\n")
        _place(out, [*written, report.out])
    return out


def _refuse_shared_cells(runs: list[StoredRun]) -> None:
    """Runs are combined as more methods, categories or seeds; a cell held twice would count twice."""
    owner: dict[tuple[str, str, int], Path] = {}
    for run in runs:
        cells = run.results[["method", "category", "seed"]].drop_duplicates().itertuples(index=False)
        for method, category, seed in cells:
            key = (method, category, int(seed))
            if key in owner:
                raise AdbenchError(
                    f"{run.path}: {method}/{category}/seed{seed} is also in {owner[key]}; a report combines "
                    "runs of different methods, categories or seeds, so pass one of the two"
                )
            owner[key] = run.path


def _refuse_existing(out: Path, targets: list[Path]) -> None:
    for target in targets:
        if os.path.lexists(target):
            raise _exists_error(out, target)


def _exists_error(out: Path, target: Path) -> AdbenchError:
    stem = out.with_suffix("").name
    return AdbenchError(
        f"{target}: already exists and is never overwritten (a report writes {out.name}, its figures "
        f"{stem}-*.png, {stem}-comparisons.csv and {stem}-tables.tex/.csv); choose another --out"
    )


def _place(out: Path, written: list[Path]) -> None:
    """Move the staged files beside `out`; a hard link never replaces an existing file or link."""
    targets = [out.parent / path.name for path in written]
    _refuse_existing(out, targets)
    placed: list[Path] = []
    for path, target in zip(written, targets, strict=True):
        try:
            os.link(path, target)
        except FileExistsError:  # made by someone else since the check above
            for done in placed:
                done.unlink()
            raise _exists_error(out, target) from None
        placed.append(target)
