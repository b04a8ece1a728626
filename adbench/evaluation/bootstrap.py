"""95 % confidence intervals of a cell's image-level metrics, by a stratified bootstrap of its test images.

The image metrics come from the image scores; the threshold protocol's rates (MVTec AD §4.3) from each
test image's decision at the validation threshold, which stays fixed in every resample.

Normal and anomalous test images are resampled separately, with replacement and at their own counts, so
that every resample holds both classes in the test set's proportion. A resample is a row of counts (how
often each image was drawn), so every metric of all resamples at once is a few matrix products over the
test set's distinct scores: no Python loop per resample. The interval is the percentile interval
(2.5th and 97.5th percentiles of the resampled values). The generator is seeded from the cell's seed on
a stream of its own, so a cell's intervals are reproducible and independent of its training draws.
"""

from __future__ import annotations

import numpy as np

from adbench.evaluation.metrics.image import MetricError

RESAMPLES = 2000
LEVEL = 0.95
_STREAM = 0xB0075  # keeps the bootstrap's draws apart from any other use of the cell's seed


def stratified_counts(
    labels: np.ndarray, resamples: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(resamples, normal) and (resamples, anomalous) counts: how often each image is drawn."""

    def counts(size: int) -> np.ndarray:
        drawn = rng.integers(0, size, (resamples, size)) + size * np.arange(resamples)[:, None]
        return np.bincount(drawn.ravel(), minlength=resamples * size).reshape(resamples, size)

    return counts(int(np.sum(labels == 0))), counts(int(np.sum(labels == 1)))


def resampled_image_metrics(
    labels: np.ndarray, scores: np.ndarray, normal_counts: np.ndarray, anomalous_counts: np.ndarray
) -> dict[str, np.ndarray]:
    """Each image metric (adbench.evaluation.evaluate.image_metrics' names) of every resample, (resamples,).

    Thresholds absent from a resample change neither its true nor its false positives, so the original
    distinct scores serve every resample as its thresholds.
    """
    normal, anomalous = scores[labels == 0], scores[labels == 1]
    if len(normal) == 0 or len(anomalous) == 0:
        raise MetricError("a bootstrap of image metrics needs both normal and anomalous test images")
    c0, c1 = normal_counts.astype(np.float64), anomalous_counts.astype(np.float64)
    n0, n1 = len(normal), len(anomalous)
    # AUROC: the share of (anomalous, normal) pairs ranked right, ties one half, pairs weighted by counts.
    wins = (anomalous[:, None] > normal[None, :]) + 0.5 * (anomalous[:, None] == normal[None, :])
    auroc = np.einsum("bi,ij,bj->b", c1, wins, c0) / (n0 * n1)
    thresholds = np.unique(scores)[::-1]  # descending: positives grow along the axis
    true_positives = c1 @ (anomalous[:, None] >= thresholds[None, :])
    false_positives = c0 @ (normal[:, None] >= thresholds[None, :])
    balanced = np.maximum((true_positives / n1 + 1.0 - false_positives / n0).max(axis=1) / 2, 0.5)
    predicted = true_positives + false_positives
    precision = np.divide(true_positives, predicted, out=np.zeros_like(predicted), where=predicted > 0)
    recall_steps = np.diff(true_positives, axis=1, prepend=0.0) / n1
    return {
        "image_auroc": auroc,
        "image_max_balanced_accuracy": balanced,
        "image_ap": np.sum(recall_steps * precision, axis=1),
        "image_f1_max": np.max(2 * true_positives / (predicted + n1), axis=1),
    }


def resampled_threshold_metrics(
    labels: np.ndarray, anomalous: np.ndarray, normal_counts: np.ndarray, anomalous_counts: np.ndarray
) -> dict[str, np.ndarray]:
    """The threshold protocol's rates (adbench.evaluation.evaluate's `threshold_*` names) of every
    resample, from each test image's fixed decision: the threshold was chosen on validation maps, so it
    stays."""
    decided = np.asarray(anomalous, dtype=np.float64)
    tpr = anomalous_counts @ decided[labels == 1] / max(1, int(np.sum(labels == 1)))
    tnr = normal_counts @ (1.0 - decided[labels == 0]) / max(1, int(np.sum(labels == 0)))
    return {"threshold_tpr": tpr, "threshold_tnr": tnr, "threshold_balanced_accuracy": (tpr + tnr) / 2}


def _percentile_intervals(values: dict[str, np.ndarray], level: float) -> dict[str, tuple[float, float]]:
    tail = (1 - level) / 2
    return {
        metric: (float(np.quantile(resampled, tail)), float(np.quantile(resampled, 1 - tail)))
        for metric, resampled in values.items()
    }


def _cell_counts(labels: np.ndarray, seed: int, resamples: int) -> tuple[np.ndarray, np.ndarray]:
    """The cell's resamples: the same for its image metrics and its threshold protocol."""
    return stratified_counts(labels, resamples, np.random.default_rng([seed, _STREAM]))


def image_intervals(
    labels: np.ndarray, scores: np.ndarray, seed: int, resamples: int = RESAMPLES, level: float = LEVEL
) -> dict[str, tuple[float, float]]:
    """Percentile interval of every image metric over `resamples` stratified resamples."""
    labels = np.asarray(labels)
    counts = _cell_counts(labels, seed, resamples)
    return _percentile_intervals(
        resampled_image_metrics(labels, np.asarray(scores, dtype=np.float64), *counts), level
    )


def threshold_intervals(
    labels: np.ndarray, anomalous: np.ndarray, seed: int, resamples: int = RESAMPLES, level: float = LEVEL
) -> dict[str, tuple[float, float]]:
    """Percentile interval of the threshold protocol's TPR, TNR and balanced accuracy over the same
    resamples as `image_intervals` (for the same labels and seed); the validation set's own sampling
    error, through the threshold, is not in them."""
    labels = np.asarray(labels)
    counts = _cell_counts(labels, seed, resamples)
    return _percentile_intervals(resampled_threshold_metrics(labels, anomalous, *counts), level)
