"""Image-level metrics: pure functions of labels and scores (numpy in, float out).

Conventions: label 1 = anomalous = the positive class; a higher score means more anomalous.

>>> image_auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
0.75
>>> max_balanced_accuracy([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
0.75
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from adbench.errors import AdbenchError


class MetricError(AdbenchError, ValueError):
    """Inputs on which a metric is undefined (one class only, NaN scores, mismatched lengths)."""


def _validate(y_true: ArrayLike, y_score: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(y_true)
    scores = np.asarray(y_score, dtype=np.float64)
    if labels.ndim != 1 or scores.ndim != 1 or len(labels) != len(scores):
        raise MetricError(
            f"labels and scores must be 1-D of equal length, got {labels.shape} and {scores.shape}"
        )
    if not np.isin(labels, (0, 1)).all():
        raise MetricError("labels must be 0 (normal) or 1 (anomalous)")
    if not np.isfinite(scores).all():
        bad = int((~np.isfinite(scores)).sum())
        raise MetricError(f"{bad} of {len(scores)} scores are NaN or infinite; the detector diverged")
    positives = int(labels.sum())
    if positives == 0 or positives == len(labels):
        only = "anomalous" if positives else "normal"
        raise MetricError(f"only {only} images in the test set; image metrics need both classes")
    return labels.astype(bool), scores


def _positives(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives at every distinct threshold, from the highest score down.

    Predicting anomalous when score >= t: tied scores enter together, so each point is attainable.
    """
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_labels = scores[order], labels[order]
    last_of_tie = np.r_[np.diff(sorted_scores) != 0, True]
    return np.cumsum(sorted_labels)[last_of_tie], np.cumsum(~sorted_labels)[last_of_tie]


def _binary_roc(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FPR and TPR at every distinct threshold, from 'nothing positive' to 'everything positive'."""
    true_positives, false_positives = _positives(labels, scores)
    tpr = np.r_[0.0, true_positives / labels.sum()]
    fpr = np.r_[0.0, false_positives / (~labels).sum()]
    return fpr, tpr


def image_auroc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the ROC curve; ties count one half (the Mann-Whitney U statistic)."""
    fpr, tpr = _binary_roc(*_validate(y_true, y_score))
    return float(np.trapezoid(tpr, fpr))


def max_balanced_accuracy(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """max over thresholds t of (TPR(t) + TNR(t)) / 2, the CBiGAN paper's Table II metric.

    Equals (1 + Youden's J) / 2 at its maximum; the trivial thresholds give 0.5, so it is never below.
    """
    fpr, tpr = _binary_roc(*_validate(y_true, y_score))
    return float(np.max((tpr + 1.0 - fpr) / 2.0))


def average_precision(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Sum over thresholds of (recall step) × precision, as scikit-learn's average_precision_score."""
    labels, scores = _validate(y_true, y_score)
    true_positives, false_positives = _positives(labels, scores)
    recall_steps = np.diff(true_positives, prepend=0) / labels.sum()
    return float(np.sum(recall_steps * true_positives / (true_positives + false_positives)))


def max_f1(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """The largest F1 over all thresholds: chosen on the test labels, an oracle figure."""
    labels, scores = _validate(y_true, y_score)
    true_positives, false_positives = _positives(labels, scores)
    return float(np.max(2 * true_positives / (true_positives + false_positives + labels.sum())))
