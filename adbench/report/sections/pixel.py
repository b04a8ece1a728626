"""The pixel-level tables of the methods with anomaly maps, and which ground truth they were scored on."""

from __future__ import annotations

from adbench.report.context import PIXEL_TABLES, ReportInput
from adbench.report.render import render_table
from adbench.report.sections import Section
from adbench.run.folder import StoredRun


def pixel_tables(report: ReportInput) -> Section:
    pixel = [metric for metric in PIXEL_TABLES if metric in report.present]
    if not pixel:
        return Section([])
    lines = ["", "## Pixel level (methods with anomaly maps)", "", pixel_resolution_note(report.runs)]
    for metric in pixel:
        lines += ["", f"### {PIXEL_TABLES[metric]}", "", render_table(report.tables[metric])]
    return Section(lines)


def pixel_resolution_note(runs: list[StoredRun]) -> str:
    """Which ground truth the pixel tables were scored against, and a warning where runs differ."""
    used = {_pixel_resolution(run) for run in runs}
    where = {
        "native": "at the ground-truth masks' own size (each map upsampled bilinearly to its mask, so "
        "every method meets the same ground truth)",
        "input": "at each detector's input size (masks resized to it, so methods with different input "
        "sizes meet different ground truth)",
    }
    if len(used) == 1:
        return f"Pixel metrics computed {where.get(used.pop(), 'at an unrecorded resolution')}."
    return (
        "**Pixel metrics of these runs were computed at different resolutions "
        f"({', '.join(f'{run.path.name}: {_pixel_resolution(run)}' for run in runs)}); their pixel "
        "columns are not comparable.**"
    )


def _pixel_resolution(run: StoredRun) -> str:
    return str(run.manifest.config.get("pixel_resolution"))
