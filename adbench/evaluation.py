"""From one cell's scores and the category's ground truth to named metric values.

The same functions serve `adbench run` and `adbench evaluate`, so every number in a results table comes
from one metric code. Maps and masks are compared at the same resolution: the detector's input size in
a run, the ground-truth masks' size in `evaluate`.
"""

from __future__ import annotations

import numpy as np

from adbench.metrics.image import image_auroc, max_balanced_accuracy
from adbench.metrics.pixel import Regions, pixel_iou, pixel_metrics
from adbench.metrics.threshold import (
    ThresholdResult,
    default_min_defect_area,
    evaluate_threshold,
    validation_threshold,
)


def image_metrics(labels: np.ndarray, image_scores: np.ndarray) -> dict[str, float]:
    return {
        "image_auroc": image_auroc(labels, image_scores),
        "image_max_balanced_accuracy": max_balanced_accuracy(labels, image_scores),
    }


def map_metrics(
    labels: np.ndarray,
    maps: np.ndarray,
    masks: np.ndarray,
    regions: Regions,
    validation_maps: np.ndarray | None = None,
) -> tuple[dict[str, float], ThresholdResult | None]:
    """Pixel metrics, and the threshold protocol when defect-free validation maps are given.

    The returned ThresholdResult (threshold, minimum area, test TPR/TNR) goes into the manifest.
    """
    metrics = pixel_metrics(maps, masks, regions)
    if validation_maps is None:
        return metrics, None
    min_area = default_min_defect_area(maps.shape[1:])
    threshold = validation_threshold(validation_maps, min_area)
    protocol = evaluate_threshold(maps, labels, threshold, min_area)
    # IoU uses the same segmentation as the protocol: pixels strictly above the validation threshold.
    above = np.nextafter(np.float32(threshold), np.float32(np.inf))
    metrics |= {
        "threshold_balanced_accuracy": protocol.balanced_accuracy,
        "threshold_tpr": protocol.tpr,
        "threshold_tnr": protocol.tnr,
        "pixel_iou": pixel_iou(maps, masks, float(above)),
    }
    return metrics, protocol
