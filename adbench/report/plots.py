"""Report figures (PNG, matplotlib's Agg backend), each from stored results and cell files only.

Every figure takes the report's `Style`: the methods in the report's order with one colour each, and the
categories in the tables' order, so a method looks the same and a category sits in the same place in
every figure. Axis and colour-bar labels are words (`metric_label`), never results-table identifiers.
Figures are sized from their grid and laid out by matplotlib's constrained layout.
"""

from __future__ import annotations

import textwrap
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed or wanted

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.metrics import roc_auc_score, roc_curve

from adbench.machine.timing import LATENCY_MEDIAN
from adbench.report.tables import category_table
from adbench.run.samples import Samples

METRIC_LABELS = {
    "image_auroc": "image AUROC",
    "image_max_balanced_accuracy": "image max balanced accuracy",
    "pixel_auroc": "pixel AUROC",
    "pixel_aupro_0.3": "pixel AU-PRO (FPR up to 0.3)",
    LATENCY_MEDIAN: "inference time per image, median (ms)",
}


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


@dataclass(frozen=True)
class Style:
    methods: list[str]  # the report's order
    categories: list[str]  # the tables' order: textures first
    colours: dict[str, tuple[float, float, float]]

    @classmethod
    def of(cls, methods: list[str], categories: list[str]) -> Style:
        palette = sns.color_palette("tab10" if len(methods) <= 10 else "husl", len(methods))
        return cls(methods, categories, dict(zip(methods, palette, strict=True)))


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def metric_heatmap(results: pd.DataFrame, metric: str, path: Path, style: Style) -> Path:
    """Method × category heatmap of a metric (means over seeds), with the three group means, each cell
    annotated with its value."""
    table = category_table(results, metric)
    table = table.reindex([m for m in style.methods if m in table.index])
    table.columns = [column.replace("_mean", " mean") for column in table.columns]
    label = metric_label(metric)
    longest_name = max(len(method) for method in table.index)
    width = 2.4 + 0.085 * longest_name + 0.62 * table.shape[1]
    height = 2.0 + 0.42 * table.shape[0]  # the rotated category names and the title take ~2 in.
    figure, axes = plt.subplots(figsize=(width, height), layout="constrained")
    sns.heatmap(
        table,
        annot=True,
        fmt=".2f",
        annot_kws={"fontsize": 8},
        cmap="viridis",
        vmin=0,
        vmax=1,
        ax=axes,
        cbar_kws={"label": label},
    )
    axes.set(xlabel="", ylabel="", title=f"{label} by method and category")
    axes.tick_params(axis="y", rotation=0)
    axes.tick_params(axis="x", rotation=45)
    for tick in axes.get_xticklabels():
        tick.set_horizontalalignment("right")
    return _save(figure, path)


def roc_curves(cell_scores: pd.DataFrame, path: Path, style: Style) -> Path:
    """One panel per category, each method's ROC curve of every seed in its colour, the legend giving its
    AUROC (mean ± std over seeds), from the cells' scores.csv."""
    categories = [c for c in style.categories if c in set(cell_scores["category"])]
    columns = min(4, len(categories))
    rows = -(-len(categories) // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(3.4 * columns, 3.2 * rows), squeeze=False, layout="constrained"
    )
    for panel, category in zip(axes.flat, categories, strict=False):
        in_category = cell_scores[cell_scores["category"] == category]
        for method in [m for m in style.methods if m in set(in_category["method"])]:
            aucs = []
            for index, (_, scores) in enumerate(in_category[in_category["method"] == method].groupby("seed")):
                fpr, tpr, _ = roc_curve(scores["label"], scores["score"])
                aucs.append(roc_auc_score(scores["label"], scores["score"]))
                panel.plot(fpr, tpr, color=style.colours[method], linewidth=1.0, alpha=0.8 if index else 1)
            spread = f" ± {np.std(aucs, ddof=1):.3f}, {len(aucs)} seeds" if len(aucs) > 1 else ""
            panel.plot(
                [], [], color=style.colours[method], label=f"{method} (AUROC {np.mean(aucs):.3f}{spread})"
            )
        panel.plot([0, 1], [0, 1], color="grey", linewidth=0.5, linestyle=":")
        panel.set(title=category, xlabel="false positive rate", ylabel="true positive rate")
        panel.legend(fontsize=7, loc="lower right")
    for panel in list(axes.flat)[len(categories) :]:
        panel.set_visible(False)
    return _save(figure, path)


def accuracy_against_time(
    results: pd.DataFrame,
    kinds: dict[str, str],
    metric: str,
    path: Path,
    style: Style,
    contended: AbstractSet[str] = frozenset(),
) -> Path:
    """Overall mean of `metric` against median inference time per image (log axis), one point per method;
    a method in `contended` (a latency of it timed on a contended machine) is drawn hollow and says so."""
    quality = category_table(results, metric)["overall_mean"]
    latency = category_table(results, LATENCY_MEDIAN)["overall_mean"]
    figure, axes = plt.subplots(figsize=(5.5, 4), layout="constrained")
    for method in [m for m in style.methods if m in quality.index and m in latency.index]:
        marker = "s" if kinds.get(method) == "iterative" else "o"
        colour = style.colours[method]
        fill = "none" if method in contended else colour
        axes.scatter(
            latency[method], quality[method], marker=marker, s=60, facecolors=fill, edgecolors=colour
        )
        axes.annotate(
            f"{method} ({kinds.get(method, '?')}{', timed contended' if method in contended else ''})",
            (latency[method], quality[method]),
            fontsize=8,
            xytext=(5, 3),
            textcoords="offset points",
        )
    axes.set(
        xscale="log",
        xlabel="inference time per image, ms (median, log scale)",
        ylabel=f"{metric_label(metric)}, overall mean",
    )
    axes.set_title("quality against inference cost")
    return _save(figure, path)


def loss_curves(
    cell_losses: pd.DataFrame, path: Path, style: Style, labels: dict[str, dict[str, str]]
) -> Path:
    """A row per method, a panel per loss (a loss in the thousands does not flatten one near zero): the
    loss against the step, a line per category (first seed). `labels`: per method, loss name -> words."""
    methods = [m for m in style.methods if m in set(cell_losses["method"])]
    losses = {m: list(dict.fromkeys(cell_losses.loc[cell_losses["method"] == m, "loss"])) for m in methods}
    columns = max(len(names) for names in losses.values())
    figure, axes = plt.subplots(
        len(methods),
        columns,
        figsize=(3.6 * columns, 2.8 * len(methods)),
        squeeze=False,
        layout="constrained",
    )
    categories = [c for c in style.categories if c in set(cell_losses["category"])]
    shades = dict(zip(categories, sns.color_palette("colorblind", len(categories)), strict=True))
    for row, method in enumerate(methods):
        rows = cell_losses[cell_losses["method"] == method]
        rows = rows[rows["seed"] == rows["seed"].min()]
        for column in range(columns):
            panel = axes[row, column]
            if column >= len(losses[method]):
                panel.set_visible(False)
                continue
            loss = losses[method][column]
            for category in categories:
                curve = rows[(rows["loss"] == loss) & (rows["category"] == category)]
                if not curve.empty:
                    panel.plot(
                        curve["step"], curve["value"], label=category, linewidth=0.8, color=shades[category]
                    )
            panel.set_title(panel_title(method, labels.get(method, {}).get(loss, loss)), fontsize=8)
            panel.set(xlabel="training step", ylabel="loss")
            panel.legend(fontsize=6)
    return _save(figure, path)


# Characters of an 8-point title that fit a 3.6-inch panel; a longer one was clipped at both ends.
PANEL_TITLE_WIDTH = 48


def panel_title(method: str, loss: str) -> str:
    """'method: loss words', wrapped onto lines that fit a loss panel."""
    return textwrap.fill(f"{method}: {loss}", PANEL_TITLE_WIDTH)


def _picture(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(C, H, W) uint8 -> what imshow takes, with a grey colour map for one channel."""
    if image.shape[0] == 1:
        return image[0], "gray"
    return image.transpose(1, 2, 0), None


def _row_name(name: str) -> str:
    """'pin/test/bent/003.png' -> 'bent\\n003': the defect type and the image."""
    path = Path(name)
    return f"{path.parent.name}\n{path.stem}"


def qualitative_grid(category: str, samples: dict[str, Samples], path: Path, style: Style) -> Path:
    """Rows: the kept test images, named by defect type and image. Columns: input and ground-truth mask,
    then for each method (the report's order) its reconstruction and its anomaly map over its input, the
    map's colour scale shared by that method's rows and shown by a colour bar."""
    methods = [m for m in style.methods if m in samples]
    first = samples[methods[0]]
    # Methods agree on the images unless their runs used different data; show those that agree.
    methods = [m for m in methods if np.array_equal(samples[m].names, first.names)]
    columns = ["input", "mask"]
    for method in methods:
        columns += [f"{method}\nreconstruction", f"{method}\nmap"]
    rows = len(first.names)
    figure, axes = plt.subplots(
        rows,
        len(columns),
        figsize=(1.8 * len(columns) + 0.6, 1.8 * rows + 0.6),
        squeeze=False,
        layout="constrained",
    )
    for row in range(rows):
        picture, cmap = _picture(first.images[row])
        axes[row, 0].imshow(picture, cmap=cmap)
        axes[row, 0].set_ylabel(_row_name(str(first.names[row])), fontsize=7)
        axes[row, 1].imshow(first.masks[row], cmap="gray", vmin=0, vmax=1)
    for index, method in enumerate(methods):
        kept = samples[method]
        reconstruction_column, map_column = 2 + 2 * index, 3 + 2 * index
        shown = None
        for row in range(rows):
            if kept.reconstructions is not None:
                picture, cmap = _picture(kept.reconstructions[row])
                axes[row, reconstruction_column].imshow(picture, cmap=cmap)
            if kept.maps is not None:
                backdrop, _ = _picture(kept.images[row])
                panel = axes[row, map_column]
                panel.imshow(backdrop if backdrop.ndim == 2 else backdrop.mean(axis=2), cmap="gray")
                shown = panel.imshow(
                    kept.maps[row], cmap="inferno", alpha=0.6, vmin=kept.maps.min(), vmax=kept.maps.max()
                )
        if shown is not None:
            bar = figure.colorbar(shown, ax=list(axes[:, map_column]), shrink=0.8, aspect=30)
            bar.set_label(f"{method} anomaly score", fontsize=7)
            bar.ax.tick_params(labelsize=6)
    for column, title in enumerate(columns):
        axes[0, column].set_title(title, fontsize=8)
    for panel in axes.flat:
        panel.set_xticks([])
        panel.set_yticks([])
    figure.suptitle(category)
    return _save(figure, path)
