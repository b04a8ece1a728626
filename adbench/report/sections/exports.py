"""The report's tables as LaTeX (booktabs) and CSV files beside it."""

from __future__ import annotations

from adbench.report.context import ReportInput
from adbench.report.export import tables_csv, tables_latex
from adbench.report.sections import Section


def table_files(report: ReportInput) -> Section:
    files = []
    for suffix, text in (
        ("tex", tables_latex(report.tables, report.titles)),
        ("csv", tables_csv(report.tables, report.titles)),
    ):
        path = report.file(f"-tables.{suffix}")
        path.write_text(text)
        files.append(path)
    latex, csv = (path.name for path in files)
    return Section(["", f"The tables are also in `{latex}` (LaTeX, booktabs) and `{csv}` (numbers)."], files)
