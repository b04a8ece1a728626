"""`adbench report`: a markdown report of one or more runs, from their stored files only.

Sections: Table II (maximum balanced accuracy) and Table III (image AUROC) in the paper's layout, with
"(paper)" reference rows on MVTec AD; pixel-level tables; timings with the iterative/single-pass ratio;
figures (PNG files beside the report); the provenance of every run. Plain GitHub-flavoured markdown:
pipe tables and image links, readable in a terminal as well as rendered.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adbench.atomic import held_staging_folder
from adbench.data.formats import FORMATS
from adbench.errors import AdbenchError
from adbench.evaluation.metrics.catalogue import CATALOGUE, METRICS
from adbench.evaluation.metrics.image import image_auroc
from adbench.evaluation.sensitivity import COLLAPSE_THRESHOLD, COLLAPSE_WARNING, INPUT_SENSITIVITY
from adbench.files import read_json_file
from adbench.machine.timing import (
    LATENCY_MEDIAN,
    contended_cells,
    contended_ratio_note,
    iterative_cost,
)
from adbench.report import paired_tests, plots
from adbench.report.export import tables_csv, tables_latex
from adbench.report.paper import PAPER_DECIMALS, covers_mvtec, paper_notes, paper_rows
from adbench.report.statistics import (
    CONTENDED_NOTE,
    TableData,
    collapsed_cells,
    format_value,
    method_order,
    table_data,
)
from adbench.report.tables import MEAN_COLUMNS, category_order
from adbench.run.results import MANIFEST, read_results
from adbench.run.samples import SAMPLES_FILE, Samples, read_samples

# The report's tables by section, in the catalogue's order, titled as it says.
QUALITY_TABLES = {metric.name: metric.title for metric in CATALOGUE if metric.group == "image"}
PIXEL_TABLES = {metric.name: metric.title for metric in CATALOGUE if metric.group == "pixel"}
TIMING_TABLES = {metric.name: metric.title for metric in CATALOGUE if metric.group == "timing"}
DEFAULT_COMPARISON = "image_auroc"
# Beside a value whose cell failed the input-sensitivity check.
COLLAPSE_MARK = "⚠"
# Beside a timing taken on a contended machine (adbench.machine.timing), as in the report's list of
# those cells.
CONTENDED_MARK = "⏱"


@dataclass(frozen=True)
class StoredRun:
    path: Path
    manifest: dict[str, Any]
    results: pd.DataFrame


def load_run(run_dir: Path) -> StoredRun:
    manifest = read_json_file(run_dir / MANIFEST, "run manifest", "pass adbench run folders")
    if not isinstance(manifest, dict):
        raise AdbenchError(f"{run_dir / MANIFEST}: not a run manifest; it was changed outside adbench")
    return StoredRun(run_dir, manifest, read_results(run_dir))


def inference_kinds(runs: list[StoredRun]) -> dict[str, str]:
    """Method -> single-pass/iterative, as each run recorded it (the registry for older runs)."""
    from adbench.registry import load_method

    kinds: dict[str, str] = {}
    for run in runs:
        for cell in run.manifest.get("cells", []):
            if "inference_kind" in cell:
                kinds[cell["method"]] = cell["inference_kind"]
    for method in {m for run in runs for m in run.results["method"].unique()} - kinds.keys():
        try:
            kinds[method] = load_method(method).inference_kind
        except AdbenchError:
            kinds[method] = "unknown"
    return kinds


def markdown_table(results: pd.DataFrame, metric: str, kinds: dict[str, str]) -> str:
    """Rows: methods grouped single-pass / iterative, then "(paper)" rows; a column's best value in bold
    where it is clearly ahead (`clearly_best`); one precision per column; the intervals below."""
    return _render_table(table_data(results, metric, kinds))


def _render_table(table: TableData) -> str:
    metric, columns = table.metric, table.columns
    lines = [
        "| method | inference | " + " | ".join(c.replace("_mean", " mean") for c in columns) + " |",
        "|---|---|" + "---:|" * len(columns),
    ]
    for method in table.methods:
        cells = []
        for column in columns:
            text = table.value_text(method, column)
            if (method, column) in table.best:
                text = f"**{text}**"
            if (method, column) in table.collapsed:
                text += f" {COLLAPSE_MARK}"
            if (method, column) in table.contended:
                text += f" {CONTENDED_MARK}"
            cells.append(text)
        lines.append(f"| {method} | {table.groups[method]} | " + " | ".join(cells) + " |")
    paper = paper_rows(metric, table.methods, [c for c in columns if c not in MEAN_COLUMNS])
    # Published values keep the paper's precision; means recomputed over a subset are ours.
    every_category = covers_mvtec([c for c in columns if c not in MEAN_COLUMNS])
    published = [c for c in columns if c not in MEAN_COLUMNS or every_category]
    for name, row in paper.iterrows():
        cells = [format_value(row[c], metric, PAPER_DECIMALS if c in published else None) for c in columns]
        lines.append(f"| {name} | published | " + " | ".join(cells) + " |")
    notes = paper_notes(metric, paper)
    if notes:
        lines += ["", *(f"*{note}*" for note in notes)]
    if any(method in table.methods for method, _ in table.collapsed):
        note = (
            f"{COLLAPSE_MARK} {COLLAPSE_WARNING} ({INPUT_SENSITIVITY} below {COLLAPSE_THRESHOLD} in a seed)"
        )
        lines += ["", note]
    if table.contended:
        lines += ["", f"{CONTENDED_MARK} {CONTENDED_NOTE}"]
    if table.intervals is not None:
        lines += ["", *_interval_table(table)]
    return "\n".join(lines)


def _interval_table(table: TableData) -> list[str]:
    assert table.intervals is not None
    low, high, how = table.intervals
    columns = [column for column in low.columns if low[column].notna().any()]
    lines = [
        f"*{how}:*",
        "",
        "| method | " + " | ".join(c.replace("_mean", " mean") for c in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for method in table.methods:
        cells = []
        for column in columns:
            bounds, decimals = (low.at[method, column], high.at[method, column]), table.decimals[column]
            text = "—" if math.isnan(bounds[0]) else f"[{bounds[0]:,.{decimals}f}, {bounds[1]:,.{decimals}f}]"
            cells.append(text + (f" {COLLAPSE_MARK}" if (method, column) in table.collapsed else ""))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def _timing_section(
    contended: dict[tuple[str, str, int], str],
    results: pd.DataFrame,
    kinds: dict[str, str],
    tables: dict[str, TableData],
    contended_timings: bool,
) -> list[str]:
    """The timing tables, the cells timed on a contended machine (`contended`, timing.contended_cells), and
    the iterative/single-pass ratios (without those cells unless `contended_timings`)."""
    lines = ["## Timing"]
    for metric in [metric for metric in TIMING_TABLES if metric in tables]:
        lines += ["", f"### {TIMING_TABLES[metric]}", "", _render_table(tables[metric])]
    if contended:
        note = contended_ratio_note(results, kinds, contended.keys(), contended_timings)
        lines += [
            "",
            f"{CONTENDED_MARK} Timed on a contended machine (other processes took cores, so these timings "
            f"say more about them than about the method){'; ' + note if note else ''}:",
            "",
            *(f"- {m}/{c}/seed{s}: {why}" for (m, c, s), why in sorted(contended.items())),
        ]
    ratios = iterative_cost(results, kinds, set() if contended_timings else contended.keys())
    if not ratios.empty:
        lines += ["", "Iterative against single-pass inference (median time per image):", ""]
        lines += [
            f"- {row.category}: {row.method} takes {row.ratio:,.1f}× the time of {row.versus}"
            for row in ratios.itertuples()
        ]
    return lines


# Below this image AUROC with a pixel AUROC of at least the next, a cell's image score misses what its
# maps find: a reader takes it for a bug, so the report says why.
_IMAGE_BELOW, _PIXEL_AT_LEAST = 0.5, 0.9


def _maps_find_what_the_score_misses(results: pd.DataFrame) -> list[str]:
    """A line per method and category whose image AUROC is below chance while its maps find the defects."""
    means = results.groupby(["metric", "method", "category"], sort=False)["value"].mean()
    lines = []
    for (metric, method, category), image in means.items():
        pixel = means.get(("pixel_auroc", method, category))
        if (
            metric == "image_auroc"
            and image < _IMAGE_BELOW
            and pixel is not None
            and pixel >= _PIXEL_AT_LEAST
        ):
            lines.append(
                f"- {method} on {category}: image AUROC {image:.3f} although its maps find the defects "
                f"(pixel AUROC {pixel:.3f}). The image score reduces each map to one number (its maximum, "
                "after a filter for some methods: see the method's `image_score`), and defect-free pixels "
                "far from the reconstruction can outscore a small defect; read the pixel metrics here."
            )
    return ["", *lines] if lines else []


def _unfinished_banner(runs: list[StoredRun]) -> list[str]:
    """A line at the top for each run still going or stopped before its end: its tables hold only the
    cells finished so far."""
    lines = []
    for run in runs:
        status = str(run.manifest.get("status", "finished"))
        if status == "finished":
            continue
        cells = run.manifest.get("cells")
        count = len(cells) if isinstance(cells, list) else 0
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


def _pixel_resolution(run: StoredRun) -> str:
    # Runs made before the option existed scored at the detectors' input size.
    return str(run.manifest.get("config", {}).get("pixel_resolution", "input"))


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


def _provenance(run: StoredRun) -> str:
    manifest = run.manifest
    environment = manifest.get("environment", {})
    config = manifest.get("config", {})
    versions = ", ".join(f"{k} {v}" for k, v in (environment.get("versions") or {}).items() if v)
    return "\n".join(
        [
            f"### {run.path.name}",
            "",
            f"- started {manifest.get('started_at')}, finished {manifest.get('finished_at')}, "
            f"status {manifest.get('status')}",
            f"- commit `{environment.get('git_commit')}`; python {environment.get('python')}; {versions}",
            f"- device {manifest.get('device')}, {environment.get('torch_threads')} torch threads, "
            f"{environment.get('platform')}",
            f"- budget `{config.get('budget')}`, seeds {config.get('seeds')}, "
            f"data `{manifest.get('dataset')}` ({_format_title(manifest)})",
            "- training as run:",
            *_training_lines(manifest),
            f"- pixel metrics at resolution `{_pixel_resolution(run)}`",
        ]
    )


def _format_title(manifest: dict[str, Any]) -> str:
    """The dataset's format as its publisher names it; runs made before formats were read as MVTec AD."""
    name = manifest.get("dataset_format", "mvtec_ad")
    return next((f"{f.title} layout" for f in FORMATS if f.name == name), f"format {name}")


def _training_lines(manifest: dict[str, Any]) -> list[str]:
    """Per method, the optimiser steps and batch each category trained with, in words."""
    categories: dict[tuple[str, str], list[str]] = {}
    for cell in manifest.get("cells", []):
        budget = cell.get("training_budget")
        if budget is None:
            how = "checkpoints loaded, no training"
        else:
            epochs = f"{budget['epochs']:,} epochs" if budget.get("epochs") else None
            steps = cell.get("steps") or budget.get("steps")  # runs before 2026-12 recorded no steps
            counted = f"{steps:,} steps" + (f" ({epochs})" if epochs else "") if steps else epochs
            how = f"{counted} at batch {budget.get('batch_size')}"
        categories.setdefault((str(cell.get("method")), how), []).append(str(cell.get("category")))
    return [
        f"  - {method}: {how} on {', '.join(dict.fromkeys(names))}"
        for (method, how), names in categories.items()
    ]


def _seed_of(seed_dir: Path) -> int:
    """k of a cell folder `seed<k>`; a stray folder by another name is the user's to remove."""
    number = seed_dir.name.removeprefix("seed")
    if not number.isdigit():
        raise AdbenchError(f"{seed_dir}: not a cell folder of adbench (seed<k>); move it out of the run")
    return int(number)


def _cell_files(runs: list[StoredRun], name: str, columns: set[str]) -> pd.DataFrame:
    """Every cell's `name` file (scores.csv, losses.csv), which must hold `columns`, with method,
    category and seed columns added."""
    frames = []
    for run in runs:
        for path in sorted((run.path / "cells").glob(f"*/*/seed*/{name}")):
            seed_dir = path.parent
            try:
                frame = pd.read_csv(path)
            except (
                pd.errors.ParserError,
                pd.errors.EmptyDataError,
                UnicodeDecodeError,
                IsADirectoryError,
            ) as error:
                raise AdbenchError(f"{path}: unreadable ({error}); it was changed outside adbench") from None
            if not columns <= set(frame.columns):
                raise AdbenchError(
                    f"{path}: lacks the columns {sorted(columns - set(frame.columns))}; "
                    "it was changed outside adbench"
                )
            frames.append(
                frame.assign(
                    method=seed_dir.parent.parent.name, category=seed_dir.parent.name, seed=_seed_of(seed_dir)
                )
            )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _category_samples(runs: list[StoredRun]) -> dict[str, dict[str, Samples]]:
    """Per category, each method's kept samples from its lowest seed (the first run that has them)."""
    by_category: dict[str, dict[str, Samples]] = {}
    for run in runs:
        paths = sorted(
            (run.path / "cells").glob(f"*/*/seed*/{SAMPLES_FILE}"),
            key=lambda path: _seed_of(path.parent),
        )
        for path in paths:
            method, category = path.parent.parent.parent.name, path.parent.parent.name
            methods = by_category.setdefault(category, {})
            if method not in methods:
                methods[method] = read_samples(path)
    return by_category


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
    kinds = inference_kinds(runs)
    present = set(results["metric"])
    if comparison_metric != DEFAULT_COMPARISON and comparison_metric not in present:
        raise AdbenchError(
            f"--comparison-metric {comparison_metric}: not in these runs' results; "
            f"choose one of {', '.join(sorted(m for m in present if m in METRICS))}"
        )
    with held_staging_folder(out, "report") as staging:
        report = _write_report(runs, results, kinds, staging / out.name, comparison_metric, contended_timings)
        _place(out, report)
    return out


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


def _write_report(
    runs: list[StoredRun],
    results: pd.DataFrame,
    kinds: dict[str, str],
    out: Path,
    comparison_metric: str,
    contended_timings: bool,
) -> list[Path]:
    """The figures and then the markdown file, all in `out`'s folder; returns their paths (report last)."""
    present = set(results["metric"])
    categories = category_order(results)
    titles = {
        metric: title
        for metric, title in (QUALITY_TABLES | PIXEL_TABLES | TIMING_TABLES).items()
        if metric in present
    }
    contended = contended_cells([run.manifest for run in runs])
    contended_pairs = {(method, category) for method, category, _ in contended}
    tables = {metric: table_data(results, metric, kinds, contended_pairs) for metric in titles}

    sections = [
        f"# adbench report: {', '.join(run.path.name for run in runs)}",
        "",
        f"Methods: {', '.join(dict.fromkeys(results['method']))}. Categories (textures first): "
        f"{', '.join(categories)}. Values are means over seeds (± standard deviation where there are "
        "several); the best value of a column is in bold where no other method ties it and it lies "
        "outside every other method's 95 % interval (the tables below each table). Rows marked "
        '"(paper)" are published numbers from the CBiGAN paper, shown for reference on MVTec AD only; '
        "they are not results of these runs.",
    ]
    smoke = [run.path.name for run in runs if run.manifest.get("config", {}).get("budget") == "smoke"]
    if smoke:
        sections[1:1] = [
            "",
            f"> **Smoke budget** ({', '.join(smoke)}): a few training steps per cell, to test the pipeline. "
            "These numbers are not results of the methods; train at `--budget default` or `paper` for those.",
        ]
    sections[1:1] = _unfinished_banner(runs)
    for metric, title in QUALITY_TABLES.items():
        if metric in present:
            sections += ["", f"## {title}", "", _render_table(tables[metric])]
            if metric == "image_auroc":
                sections += _maps_find_what_the_score_misses(results)
    pixel = [metric for metric in PIXEL_TABLES if metric in present]
    if pixel:
        sections += ["", "## Pixel level (methods with anomaly maps)", "", pixel_resolution_note(runs)]
        for metric in pixel:
            sections += ["", f"### {PIXEL_TABLES[metric]}", "", _render_table(tables[metric])]
    if any(metric in present for metric in TIMING_TABLES):
        sections += ["", *_timing_section(contended, results, kinds, tables, contended_timings)]

    scores = _cell_files(runs, "scores.csv", {"label", "score", "defect"})
    if not scores.empty:
        sections += [
            "",
            "## Image AUROC per defect type",
            "",
            "Defect-free test images against the images of one defect type, from the stored per-image "
            "scores (mean over seeds): which defects a method misses.",
        ]
        methods, collapsed = list(dict.fromkeys(results["method"])), collapsed_cells(results)
        for category in [c for c in categories if c in set(scores["category"])]:
            table = defect_type_table(scores[scores["category"] == category], methods, collapsed)
            sections += ["", f"### {category}", "", table]

    written: list[Path] = []
    if comparison_metric in present and results["method"].nunique() >= 2:
        section, written = comparison_section(results, comparison_metric, out)
        sections += ["", *section]

    stem = out.with_suffix("").name
    for suffix, text in (("tex", tables_latex(tables, titles)), ("csv", tables_csv(tables, titles))):
        path = out.parent / f"{stem}-tables.{suffix}"
        path.write_text(text)
        written.append(path)
    sections += [
        "",
        f"The tables are also in `{stem}-tables.tex` (LaTeX, booktabs) and `{stem}-tables.csv` (numbers).",
    ]
    figures = _figures(runs, results, kinds, out, scores, {method for method, _, _ in contended})
    if figures:
        sections += ["", "## Figures", ""]
        sections += [f"![{caption}]({path.name})\n\n*{caption}*\n" for caption, path in figures]
    sections += ["", "## Provenance", ""] + [_provenance(run) + "\n" for run in runs]
    out.write_text("\n".join(sections).rstrip() + "\n")
    return [*written, *(path for _, path in figures), out]


def comparison_section(results: pd.DataFrame, metric: str, out: Path) -> tuple[list[str], list[Path]]:
    """The method-comparison section, and the files it writes beside `out` (CSV, diagram)."""
    stem = out.with_suffix("")
    table = paired_tests.pairwise(results, metric)
    csv = Path(f"{stem}-comparisons.csv")
    table.to_csv(csv, index=False)
    lines = [
        f"## Method comparisons: `{metric}`",
        "",
        "Every pair of methods over the categories both have (values averaged over seeds): the mean "
        "difference a − b with a 95 % bootstrap interval over categories, a's wins / ties / losses, the "
        "Wilcoxon signed-rank p-value and its Holm adjustment over all pairs. With fewer than "
        f"{paired_tests.MIN_CATEGORIES} categories a signed-rank test can hardly reject anything, so no "
        f"p-value is shown. The same table is in `{csv.name}`.",
        "",
        "| a | b | categories | mean difference (95 % CI) | wins / ties / losses | p | p (Holm) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in table.itertuples():
        few = row.n_categories < paired_tests.MIN_CATEGORIES
        p_cells = ["little power", "—"] if few else [_p(row.p_value), _p(row.p_holm)]
        lines.append(
            f"| {row.method_a} | {row.method_b} | {row.n_categories} | {row.mean_difference:+.3f} "
            f"({row.ci_low:+.3f} to {row.ci_high:+.3f}) | {row.wins} / {row.ties} / {row.losses} | "
            + " | ".join(p_cells)
            + " |"
        )
    ranks = paired_tests.ranking(results, metric)
    friedman = _friedman_text(ranks)
    average = ", ".join(f"{method} {rank:.2f}" for method, rank in ranks.average_ranks.items())
    diagram = paired_tests.critical_difference_diagram(ranks, table, Path(f"{stem}-critical-difference.png"))
    lines += [
        "",
        f"Friedman test over the {ranks.n_categories} categories every method has: {friedman}. "
        f"Average ranks (1 = best): {average}.",
        "",
        f"![Critical-difference diagram of {metric}]({diagram.name})",
    ]
    return lines, [csv, diagram]


def _friedman_text(ranks: paired_tests.Ranking) -> str:
    """The Friedman test's p-value, or the reason these runs give none."""
    methods = len(ranks.average_ranks)
    if methods < 3:
        return f"not reported (it compares 3 or more methods; these runs have {methods})"
    if ranks.n_categories < paired_tests.MIN_CATEGORIES:
        return (
            f"not reported ({ranks.n_categories} categories give it little power; it needs "
            f"{paired_tests.MIN_CATEGORIES})"
        )
    if not math.isfinite(ranks.friedman_p):
        return "not reported (the methods rank alike on every category)"
    return f"p = {_p(ranks.friedman_p)}"


def _p(value: float) -> str:
    if not math.isfinite(value):
        return "—"
    return f"{value:.3g}" if value >= 0.001 else "< 0.001"


def defect_type_table(scores: pd.DataFrame, methods: list[str], collapsed: set[tuple[str, str]]) -> str:
    """One category's scores.csv rows of every method and seed -> methods × defect types, image AUROC;
    a method whose output did not depend on its input there (`collapsed_cells`) is marked."""
    defects = sorted(set(scores.loc[scores["label"] == 1, "defect"]))
    methods = [method for method in methods if method in set(scores["method"])]
    lines = ["| method | " + " | ".join(defects) + " |", "|---|" + "---:|" * len(defects)]
    for method in methods:
        cells = []
        for defect in defects:
            per_seed = []
            for _, seed_rows in scores[scores["method"] == method].groupby("seed"):
                rows = seed_rows[(seed_rows["label"] == 0) | (seed_rows["defect"] == defect)]
                if rows["label"].nunique() == 2:  # a test set without defect-free images has no AUROC
                    per_seed.append(image_auroc(rows["label"].to_numpy(), rows["score"].to_numpy()))
            text = format_value(float(np.mean(per_seed)), "image_auroc") if per_seed else "—"
            collapsed_here = (method, str(scores["category"].iloc[0])) in collapsed
            cells.append(f"{text} {COLLAPSE_MARK}" if collapsed_here else text)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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


def _figures(
    runs: list[StoredRun],
    results: pd.DataFrame,
    kinds: dict[str, str],
    out: Path,
    scores: pd.DataFrame,
    contended_methods: set[str],
) -> list[tuple[str, Path]]:
    """The report's figures; `contended_methods` have a latency timed on a contended machine."""
    stem = out.with_suffix("")
    style = plots.Style.of(method_order(results, kinds), category_order(results))
    figures = []
    if "image_auroc" in set(results["metric"]):
        figures.append(
            (
                "Image AUROC by method and category",
                plots.metric_heatmap(results, "image_auroc", Path(f"{stem}-heatmap.png"), style),
            )
        )
        if LATENCY_MEDIAN in set(results["metric"]):
            figures.append(
                (
                    "Image AUROC against inference time per image: single-pass (circles) and iterative "
                    "(squares)" + ("; hollow: timed on a contended machine" if contended_methods else ""),
                    plots.accuracy_against_time(
                        results,
                        kinds,
                        "image_auroc",
                        Path(f"{stem}-quality-vs-time.png"),
                        style,
                        contended_methods,
                    ),
                )
            )
    if not scores.empty:
        figures.append(
            (
                "ROC curves per category, every seed; the legend gives each method's AUROC "
                "(mean ± std over seeds)",
                plots.roc_curves(scores, Path(f"{stem}-roc.png"), style),
            )
        )
    kept = _category_samples(runs)
    for category in [category for category in category_order(results) if category in kept]:
        figures.append(
            (
                f"{category}: test images, reconstructions and anomaly maps (first seed)",
                plots.qualitative_grid(
                    category, kept[category], Path(f"{stem}-samples-{category}.png"), style
                ),
            )
        )
    losses = _cell_files(runs, "losses.csv", {"step"})
    if not losses.empty:
        long = losses.melt(id_vars=["step", "method", "category", "seed"], var_name="loss").dropna()
        figures.append(
            (
                "Training losses per step, a panel per loss (first seed)",
                plots.loss_curves(long, Path(f"{stem}-losses.png"), style, _loss_labels(set(long["method"]))),
            )
        )
    return figures
