"""MVTec AD's threshold protocol (§4.3): a threshold from defect-free validation maps only.

The threshold is raised until the largest connected anomalous region (8-connected pixels with score
> t) over all validation maps is smaller than a minimum defect area; the smallest such t among the
validation maps' own values is used. On the test set an image is classified anomalous when its map
holds a region of at least that area above t, which gives TPR, TNR and their mean, the balanced
accuracy. Nothing here looks at test labels to choose anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

from adbench.evaluation.metrics.image import MetricError
from adbench.evaluation.metrics.pixel import EIGHT_CONNECTED

# The MVTec paper sets the minimum defect area per category without publishing the values; this default,
# a fraction of the map's area, keeps the protocol defined on any data. Runs record what they used.
DEFAULT_MIN_AREA_FRACTION = 0.001


@dataclass(frozen=True)
class ThresholdResult:
    threshold: float
    min_defect_area: int
    tpr: float
    tnr: float
    # Per test image, whether the protocol classified it anomalous: what the bootstrap resamples.
    anomalous: np.ndarray = field(repr=False, compare=False)

    @property
    def balanced_accuracy(self) -> float:
        return (self.tpr + self.tnr) / 2

    def to_manifest(self) -> dict[str, float | int]:
        return {
            "threshold": self.threshold,
            "min_defect_area": self.min_defect_area,
            "tpr": self.tpr,
            "tnr": self.tnr,
        }


def largest_region(maps: np.ndarray, threshold: float) -> np.ndarray:
    """Per map, the pixel count of its largest 8-connected region with score > threshold."""
    sizes = np.zeros(len(maps), dtype=np.int64)
    for i, anomaly_map in enumerate(maps):
        labels, count = ndimage.label(anomaly_map > threshold, structure=EIGHT_CONNECTED)
        if count:
            sizes[i] = np.bincount(labels.ravel())[1:].max()
    return sizes


def validation_threshold(validation_maps: ArrayLike, min_defect_area: int) -> float:
    """Smallest validation value t whose thresholded maps (> t) have no region of `min_defect_area` pixels."""
    maps = np.asarray(validation_maps, dtype=np.float32)
    if maps.ndim != 3 or len(maps) == 0:
        raise MetricError(f"validation maps must be a non-empty (N, H, W) array, got shape {maps.shape}")
    if not np.isfinite(maps).all():
        raise MetricError("validation maps contain NaN or infinite values")
    if min_defect_area < 1:
        raise MetricError(f"min_defect_area must be at least 1 pixel, got {min_defect_area}")
    candidates = np.unique(maps)
    # The largest region shrinks as the threshold rises, so binary search over the sorted candidates.
    low, high = 0, len(candidates) - 1  # at the maximum nothing is above t: always acceptable
    while low < high:
        middle = (low + high) // 2
        if largest_region(maps, float(candidates[middle])).max() < min_defect_area:
            high = middle
        else:
            low = middle + 1
    return float(candidates[low])


def evaluate_threshold(
    test_maps: ArrayLike, test_labels: ArrayLike, threshold: float, min_defect_area: int
) -> ThresholdResult:
    """TPR and TNR of 'has a region >= min_defect_area above threshold' on the test images."""
    maps = np.asarray(test_maps, dtype=np.float32)
    labels = np.asarray(test_labels) == 1
    if not labels.any() or labels.all():
        raise MetricError("the threshold protocol needs both defect-free and defective test images")
    predicted = largest_region(maps, threshold) >= min_defect_area
    return ThresholdResult(
        threshold=threshold,
        min_defect_area=min_defect_area,
        tpr=float(predicted[labels].mean()),
        tnr=float((~predicted[~labels]).mean()),
        anomalous=predicted,
    )


def default_min_defect_area(map_shape: tuple[int, int]) -> int:
    return max(1, round(DEFAULT_MIN_AREA_FRACTION * map_shape[0] * map_shape[1]))
