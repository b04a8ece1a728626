"""Report figures (PNG, matplotlib's Agg backend), each from stored results and cell files only."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display is needed or wanted

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from sklearn.metrics import roc_curve

from adbench.report.tables import category_table
from adbench.samples import Samples
from adbench.timing import LATENCY_MEDIAN


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def metric_heatmap(results: pd.DataFrame, metric: str, path: Path) -> Path:
    """Method × category heatmap of a metric (means over seeds), with the three group means."""
    table = category_table(results, metric)
    # Tall enough for the column labels and the title even with a single method.
    figure, axes = plt.subplots(figsize=(1.0 + 0.9 * table.shape[1], max(2.5, 0.8 + 0.5 * table.shape[0])))
    sns.heatmap(
        table, annot=True, fmt=".2f", cmap="viridis", vmin=0, vmax=1, ax=axes, cbar_kws={"label": metric}
    )
    axes.set_title(metric)
    return _save(figure, path)


def roc_curves(cell_scores: pd.DataFrame, path: Path) -> Path:
    """One panel per category, one ROC curve per method (first seed), from the cells' scores.csv."""
    categories = list(dict.fromkeys(cell_scores["category"]))
    columns = min(4, len(categories))
    rows = -(-len(categories) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.0 * rows), squeeze=False)
    for panel, category in zip(axes.flat, categories, strict=False):
        for method, scores in cell_scores[cell_scores["category"] == category].groupby("method", sort=False):
            first_seed = scores[scores["seed"] == scores["seed"].min()]
            fpr, tpr, _ = roc_curve(first_seed["label"], first_seed["score"])
            panel.plot(fpr, tpr, label=method)
        panel.plot([0, 1], [0, 1], color="grey", linewidth=0.5, linestyle=":")
        panel.set(title=category, xlabel="false positive rate", ylabel="true positive rate")
        panel.legend(fontsize=7)
    for panel in list(axes.flat)[len(categories) :]:
        panel.set_visible(False)
    return _save(figure, path)


def accuracy_against_time(results: pd.DataFrame, kinds: dict[str, str], metric: str, path: Path) -> Path:
    """Overall mean of `metric` against median inference time per image (log axis), one point per method."""
    quality = category_table(results, metric)["overall_mean"]
    latency = category_table(results, LATENCY_MEDIAN)["overall_mean"]
    figure, axes = plt.subplots(figsize=(5.5, 4))
    for method in quality.index.intersection(latency.index):
        marker = "s" if kinds.get(method) == "iterative" else "o"
        axes.scatter(latency[method], quality[method], marker=marker, s=60)
        axes.annotate(
            f"{method} ({kinds.get(method, '?')})",
            (latency[method], quality[method]),
            fontsize=8,
            xytext=(5, 3),
            textcoords="offset points",
        )
    axes.set(
        xscale="log",
        xlabel="inference time per image, ms (median, log scale)",
        ylabel=f"{metric}, overall mean",
    )
    axes.set_title("quality against inference cost")
    return _save(figure, path)


def loss_curves(cell_losses: pd.DataFrame, path: Path) -> Path:
    """One panel per method: every logged loss against the step, a line per category (first seed)."""
    methods = list(dict.fromkeys(cell_losses["method"]))
    figure, axes = plt.subplots(1, len(methods), figsize=(4.2 * len(methods), 3.2), squeeze=False)
    for panel, method in zip(axes.flat, methods, strict=True):
        losses = cell_losses[cell_losses["method"] == method]
        losses = losses[losses["seed"] == losses["seed"].min()]
        for (category, loss), curve in losses.groupby(["category", "loss"], sort=False):
            panel.plot(curve["step"], curve["value"], label=f"{category} {loss}", linewidth=0.8)
        panel.set(title=method, xlabel="step", ylabel="loss")
        panel.legend(fontsize=6)
    return _save(figure, path)


def _picture(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(C, H, W) uint8 -> what imshow takes, with a grey colour map for one channel."""
    if image.shape[0] == 1:
        return image[0], "gray"
    return image.transpose(1, 2, 0), None


def qualitative_grid(category: str, samples: dict[str, Samples], path: Path) -> Path:
    """Rows: the kept test images. Columns: input and ground-truth mask, then for each method its
    reconstruction and its anomaly map over its input (colour scale shared by that method's rows)."""
    first = next(iter(samples.values()))
    # Methods agree on the images unless their runs used different data; show those that agree.
    samples = {method: kept for method, kept in samples.items() if np.array_equal(kept.names, first.names)}
    columns = ["input", "mask"]
    for method in samples:
        columns += [f"{method}\nreconstruction", f"{method}\nmap"]
    rows = len(first.names)
    figure, axes = plt.subplots(rows, len(columns), figsize=(1.7 * len(columns), 1.8 * rows), squeeze=False)
    for row in range(rows):
        picture, cmap = _picture(first.images[row])
        axes[row, 0].imshow(picture, cmap=cmap)
        axes[row, 0].set_ylabel("good" if first.labels[row] == 0 else "defect", fontsize=8)
        axes[row, 1].imshow(first.masks[row], cmap="gray", vmin=0, vmax=1)
        for index, kept in enumerate(samples.values()):
            reconstruction_panel, map_panel = axes[row, 2 + 2 * index], axes[row, 3 + 2 * index]
            if kept.reconstructions is not None:
                picture, cmap = _picture(kept.reconstructions[row])
                reconstruction_panel.imshow(picture, cmap=cmap)
            if kept.maps is not None:
                backdrop, _ = _picture(kept.images[row])
                map_panel.imshow(backdrop if backdrop.ndim == 2 else backdrop.mean(axis=2), cmap="gray")
                map_panel.imshow(
                    kept.maps[row], cmap="inferno", alpha=0.6, vmin=kept.maps.min(), vmax=kept.maps.max()
                )
    for column, title in enumerate(columns):
        axes[0, column].set_title(title, fontsize=8)
    for panel in axes.flat:
        panel.set_xticks([])
        panel.set_yticks([])
    figure.suptitle(category)
    return _save(figure, path)
