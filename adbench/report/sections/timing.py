"""The timing tables, the cells timed on a contended machine, and the iterative/single-pass ratios."""

from __future__ import annotations

from adbench.machine.timing import contended_ratio_note, iterative_cost
from adbench.report.context import TIMING_TABLES, ReportInput
from adbench.report.render import CONTENDED_MARK, render_table
from adbench.report.sections import Section


def timing(report: ReportInput) -> Section:
    """The ratios leave out the cells timed on a contended machine unless `report.contended_timings`."""
    if not any(metric in report.present for metric in TIMING_TABLES):
        return Section([])
    results, kinds, contended = report.results, report.kinds, report.contended
    lines = ["", "## Timing"]
    for metric in [metric for metric in TIMING_TABLES if metric in report.tables]:
        lines += ["", f"### {TIMING_TABLES[metric]}", "", render_table(report.tables[metric])]
    if contended:
        note = contended_ratio_note(results, kinds, contended.keys(), report.contended_timings)
        lines += [
            "",
            f"{CONTENDED_MARK} Timed on a contended machine (other processes took cores, so these timings "
            f"say more about them than about the method){'; ' + note if note else ''}:",
            "",
            *(f"- {m}/{c}/seed{s}: {why}" for (m, c, s), why in sorted(contended.items())),
        ]
    ratios = iterative_cost(results, kinds, set() if report.contended_timings else contended.keys())
    if not ratios.empty:
        lines += ["", "Iterative against single-pass inference (median time per image):", ""]
        lines += [
            f"- {row.category}: {row.method} takes {row.ratio:,.1f}× the time of {row.versus}"
            for row in ratios.itertuples()
        ]
    return Section(lines)
