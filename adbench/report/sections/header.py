"""The report's title, what it holds, and banners for unfinished runs and smoke budgets."""

from __future__ import annotations

from adbench.report.context import ReportInput
from adbench.report.sections import Section
from adbench.run.folder import StoredRun


def header(report: ReportInput) -> Section:
    runs, results = report.runs, report.results
    intro = (
        f"Methods: {', '.join(dict.fromkeys(results['method']))}. Categories (textures first): "
        f"{', '.join(report.categories)}. Values are means over seeds (± standard deviation where there are "
        "several); the best value of a column is in bold where no other method ties it and it lies "
        "outside every other method's 95 % interval (the tables below each table). Rows marked "
        '"(paper)" are published numbers from the CBiGAN paper, shown for reference on MVTec AD only; '
        "they are not results of these runs."
    )
    smoke = [run.path.name for run in runs if run.manifest.config.get("budget") == "smoke"]
    smoke_banner = (
        [
            "",
            f"> **Smoke budget** ({', '.join(smoke)}): a few training steps per cell, to test the pipeline. "
            "These numbers are not results of the methods; train at `--budget default` or `paper` for those.",
        ]
        if smoke
        else []
    )
    title = f"# adbench report: {', '.join(run.path.name for run in runs)}"
    return Section([title, *_unfinished_banner(runs), *smoke_banner, "", intro])


def _unfinished_banner(runs: list[StoredRun]) -> list[str]:
    """A line at the top for each run still going or stopped before its end: its tables hold only the
    cells finished so far."""
    lines = []
    for run in runs:
        status = run.manifest.status
        if status == "finished":
            continue
        count = len(run.manifest.cells)
        if status == "running":
            what, then = "still running", "Report again when it ends."
        else:
            what = "stopped: " + " ".join(status.split())[:120]
            then = f"Finish it with `adbench run --resume {run.path}`, then report again."
        lines += [
            "",
            f"> **Unfinished run** ({run.path.name}, {what}): these tables hold its {count} finished "
            f"cell(s) only. {then}",
        ]
    return lines
