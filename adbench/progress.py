"""Progress of a grid, as a terminal shows it (bars redrawn in place) or as a log file keeps it (lines).

On a terminal: a bar for the whole grid (cells done of all, elapsed, time left) above the bars of the
running cell's stages (decode, fit with its losses, score). Where the console is not a terminal (a log
file, CI, `2> run.log`), bars would appear only at the end, so `LogLines` prints a line when a stage
starts and when it ends, and the training's step and losses every tenth of its steps, as they happen.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

_REPORTS_PER_STAGE = 10


class LogLines(Progress):
    """A Progress that writes lines instead of redrawing bars."""

    def __init__(self, console: Console) -> None:
        super().__init__(console=console, disable=True)
        self._started: dict[TaskID, float] = {}
        self._next_report: dict[TaskID, int] = {}

    def _task(self, task_id: TaskID) -> Any:
        return next(task for task in self.tasks if task.id == task_id)

    def _say(self, text: str) -> None:
        self.console.print(f"{time.strftime('%H:%M:%S')} {text}", soft_wrap=True, highlight=False)

    def add_task(self, description: str, *args: Any, **kwargs: Any) -> TaskID:
        task = super().add_task(description, *args, **kwargs)
        total = self._task(task).total
        self._started[task] = time.monotonic()
        self._next_report[task] = 0 if total is None else max(1, int(total) // _REPORTS_PER_STAGE)
        self._say(f"{description}: started" + ("" if total is None else f", {int(total):,} to do"))
        return task

    def update(self, task_id: TaskID, **kwargs: Any) -> None:
        super().update(task_id, **kwargs)
        self._report(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._report(task_id)

    def _report(self, task_id: TaskID) -> None:
        task = self._task(task_id)
        due = self._next_report.get(task_id, 0)
        if task.total is None or not due or task.completed < due or task.completed >= task.total:
            return
        status = task.fields.get("status", "")
        self._say(
            f"{task.description}: {int(task.completed):,}/{int(task.total):,}"
            + (f" {status}" if status else "")
        )
        step = max(1, int(task.total) // _REPORTS_PER_STAGE)
        self._next_report[task_id] = (int(task.completed) // step + 1) * step  # one line per jump

    def remove_task(self, task_id: TaskID) -> None:
        task = self._task(task_id)
        seconds = time.monotonic() - self._started.pop(task_id, time.monotonic())
        self._next_report.pop(task_id, None)
        super().remove_task(task_id)
        self._say(f"{task.description}: done in {seconds:.1f} s")


@contextmanager
def stage_progress(console: Console) -> Iterator[Progress]:
    """Bars on a terminal, lines elsewhere."""
    if not console.is_terminal:
        yield LogLines(console)
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}"),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        yield progress
