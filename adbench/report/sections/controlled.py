"""The controlled comparison: a single-pass method against an iterative one that scored with the same
trained networks (its cells adopted them, `Detector.trained_by`), so that their differences in quality
and time per image are the inference's alone."""

from __future__ import annotations

import math

from adbench.machine.timing import LATENCY_MEDIAN
from adbench.report.context import ReportInput
from adbench.report.render import COLLAPSE_MARK, CONTENDED_MARK
from adbench.report.sections import Section
from adbench.report.statistics import TableData, format_value

# The quality columns, where the results hold them.
_QUALITY = {"image_auroc": "image AUROC", "pixel_auroc": "pixel AUROC"}


def shared_training_pairs(report: ReportInput) -> list[tuple[str, str]]:
    """(method that trained, method that adopted its networks) for every such pair in the runs whose
    inference kinds differ and whose results are both present, in the report's method order."""
    present = set(report.results["method"])
    pairs = {
        (cell.trained_by, cell.method)
        for run in report.runs
        for cell in run.manifest.cells
        if cell.trained_by is not None and {cell.trained_by, cell.method} <= present
    }
    ordered = [
        (provider, user)
        for provider, user in sorted(pairs)
        if report.kinds.get(provider) != report.kinds.get(user)
    ]
    return [(a, b) if report.kinds.get(a) == "single-pass" else (b, a) for a, b in ordered]


def controlled_comparison(report: ReportInput) -> Section:
    pairs = shared_training_pairs(report)
    if not pairs or LATENCY_MEDIAN not in report.tables:
        return Section([])
    lines = ["", "## Controlled comparison: single-pass against iterative inference on the same networks"]
    for single, iterative in pairs:
        lines += ["", *_pair_table(report, single, iterative)]
    return Section(lines)


def _pair_table(report: ReportInput, single: str, iterative: str) -> list[str]:
    quality = [report.tables[metric] for metric in _QUALITY if metric in report.tables]
    latency = report.tables[LATENCY_MEDIAN]
    columns = [column for column in latency.columns if _has(latency, (single, iterative), column)]
    header = ["category"]
    for table in quality:
        header += [f"{single} {_QUALITY[table.metric]}", f"{iterative} {_QUALITY[table.metric]}"]
    header += [f"{single} ms/image", f"{iterative} ms/image", "iterative / single-pass"]
    lines = [
        f"`{iterative}` scored with the networks `{single}` trained in the same run, category and seed; "
        "only the mapping from an image to its reconstruction differs, so these differences are the "
        "inference's (means over seeds; 95 % intervals in brackets, as in the tables above). "
        f"Time per image is the median latency; {CONTENDED_MARK} marks a timing taken on a contended "
        "machine, whose ratio is left out unless --contended-timings.",
        "",
        "| " + " | ".join(header) + " |",
        "|---|" + "---:|" * (len(header) - 1),
    ]
    for column in columns:
        cells = [column.replace("_mean", " mean")]
        for table in quality:
            cells += [_with_interval(table, method, column) for method in (single, iterative)]
        cells += [_with_interval(latency, method, column) for method in (single, iterative)]
        contended = any((method, column) in latency.contended for method in (single, iterative))
        ratio = latency.mean.at[iterative, column] / latency.mean.at[single, column]
        cells.append("—" if contended and not report.contended_timings else f"{ratio:,.1f}×")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _has(table: TableData, methods: tuple[str, str], column: str) -> bool:
    return all(
        method in table.mean.index and not math.isnan(table.mean.at[method, column]) for method in methods
    )


def _with_interval(table: TableData, method: str, column: str) -> str:
    if method not in table.mean.index:
        return "—"
    text = table.value_text(method, column)
    if table.intervals is not None:
        low, high, _ = table.intervals
        if column in low.columns and not math.isnan(low.at[method, column]):
            decimals = table.decimals[column]
            bounds = [format_value(b.at[method, column], table.metric, decimals) for b in (low, high)]
            text += f" [{bounds[0]}, {bounds[1]}]"
    if (method, column) in table.collapsed:
        text += f" {COLLAPSE_MARK}"
    if (method, column) in table.contended:
        text += f" {CONTENDED_MARK}"
    return text
