"""From one cell's scores and the category's ground truth to named metric values.

The same function serves every method, so every number in a results table comes from one metric code.
"""

from __future__ import annotations

import numpy as np

from adbench.detector import Scores
from adbench.metrics.image import image_auroc, max_balanced_accuracy


def cell_metrics(labels: np.ndarray, scores: Scores) -> dict[str, float]:
    """Image-level metrics of one method on one category's test set (labels: 1 = anomalous)."""
    return {
        "image_auroc": image_auroc(labels, scores.image_scores),
        "image_max_balanced_accuracy": max_balanced_accuracy(labels, scores.image_scores),
    }
