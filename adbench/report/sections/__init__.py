"""The report's sections, each a function from the loaded runs (ReportInput) to markdown lines and the
files it writes beside the report (`Section`); adbench.report.builder orders them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Section:
    lines: list[str]  # markdown lines, each section starting with its blank separating line
    files: list[Path] = field(default_factory=list)  # written beside the report, in this order
