"""The report's figures (PNG files beside it), each with its caption."""

from __future__ import annotations

from pathlib import Path

from adbench.errors import AdbenchError
from adbench.machine.timing import LATENCY_MEDIAN
from adbench.report import plots
from adbench.report.context import ReportInput
from adbench.report.sections import Section
from adbench.report.statistics import method_order
from adbench.run.folder import LOSSES_FILE, category_samples, read_cell_tables


def figures(report: ReportInput) -> Section:
    drawn = _draw(report)
    if not drawn:
        return Section([])
    lines = [
        "",
        "## Figures",
        "",
        *(f"![{caption}]({path.name})\n\n*{caption}*\n" for caption, path in drawn),
    ]
    return Section(lines, [path for _, path in drawn])


def _draw(report: ReportInput) -> list[tuple[str, Path]]:
    """Each figure's caption and file; methods with a latency timed on a contended machine are hollow."""
    results, scores = report.results, report.scores
    contended_methods = {method for method, _, _ in report.contended}
    style = plots.Style.of(method_order(results, report.kinds), report.categories)
    drawn = []
    if "image_auroc" in report.present:
        drawn.append(
            (
                "Image AUROC by method and category",
                plots.metric_heatmap(results, "image_auroc", report.file("-heatmap.png"), style),
            )
        )
        if LATENCY_MEDIAN in report.present:
            drawn.append(
                (
                    "Image AUROC against inference time per image: single-pass (circles) and iterative "
                    "(squares)" + ("; hollow: timed on a contended machine" if contended_methods else ""),
                    plots.accuracy_against_time(
                        results,
                        report.kinds,
                        "image_auroc",
                        report.file("-quality-vs-time.png"),
                        style,
                        contended_methods,
                    ),
                )
            )
    if not scores.empty:
        drawn.append(
            (
                "ROC curves per category, every seed; the legend gives each method's AUROC "
                "(mean ± std over seeds)",
                plots.roc_curves(scores, report.file("-roc.png"), style),
            )
        )
    kept = category_samples(report.runs)
    for category in [category for category in report.categories if category in kept]:
        drawn.append(
            (
                f"{category}: test images, reconstructions and anomaly maps (first seed)",
                plots.qualitative_grid(
                    category, kept[category], report.file(f"-samples-{category}.png"), style
                ),
            )
        )
    losses = read_cell_tables(report.runs, LOSSES_FILE, {"step"})
    if not losses.empty:
        long = losses.melt(id_vars=["step", "method", "category", "seed"], var_name="loss").dropna()
        drawn.append(
            (
                "Training losses per step, a panel per loss (first seed)",
                plots.loss_curves(long, report.file("-losses.png"), style, _loss_labels(set(long["method"]))),
            )
        )
    return drawn


def _loss_labels(methods: set[str]) -> dict[str, dict[str, str]]:
    """Each registered method's words for its losses (none for a method no longer installed)."""
    from adbench.registry import load_method

    labels = {}
    for method in methods:
        try:
            labels[method] = dict(load_method(method).loss_labels)
        except AdbenchError:
            labels[method] = {}
    return labels
