"""Pixel-level metrics over one category: pure functions of anomaly maps and ground-truth masks.

Inputs: `maps` (N, H, W) anomaly scores (higher = more anomalous; converted to float32 so that ties are
as stored) and `masks` (N, H, W), nonzero = defect pixel. All pixels of all images of the category
count together. A pixel is predicted anomalous at threshold t when its score is >= t.

One sort of the defect-free pixels' scores and one of the defect pixels' scores serve all three
threshold-free metrics; no loop over thresholds, no float64 copy of the maps:

- `pixel_auroc`: the Mann-Whitney statistic (ties count one half), equal to scikit-learn's roc_auc_score.
- `pixel_average_precision`: sum over thresholds of (recall step) × precision, as scikit-learn's
  average_precision_score.
- `pixel_aupro`: MVTec AD's per-region overlap curve. Regions are the 8-connected components of each
  mask; PRO(t) is the mean over all regions of the category of the fraction of the region's pixels
  >= t; FPR(t) is over all defect-free pixels of the category. Every distinct score is a threshold
  (the last point of each run of ties), the curve runs from (0, 0) to (1, 1), and the area up to
  `max_fpr` (trapezoid rule, the curve interpolated linearly at exactly `max_fpr`) is divided by
  `max_fpr`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

from adbench.metrics.image import MetricError

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class Regions:
    """The ground-truth regions of a category: per defect pixel, its region's index (flattened order)."""

    count: int  # number of regions over all images
    region_of_defect_pixel: np.ndarray  # (number of defect pixels,) int32, in [0, count)
    sizes: np.ndarray  # (count,) int64 pixels per region


def label_regions(masks: np.ndarray) -> Regions:
    """8-connected components of every mask, numbered across the whole category."""
    region_ids = []
    sizes = []
    offset = 0
    for mask in masks:
        labels, count = ndimage.label(mask != 0, structure=EIGHT_CONNECTED)
        pixels = labels[labels > 0]
        region_ids.append((pixels - 1 + offset).astype(np.int32))
        sizes.append(np.bincount(pixels - 1, minlength=count))
        offset += count
    return Regions(
        offset,
        np.concatenate(region_ids) if region_ids else np.zeros(0, np.int32),
        np.concatenate(sizes).astype(np.int64) if sizes else np.zeros(0, np.int64),
    )


@dataclass(frozen=True)
class _SortedPixels:
    normal: np.ndarray  # defect-free pixels' scores, ascending, float32
    defect: np.ndarray  # defect pixels' scores, ascending, float32
    defect_order: np.ndarray  # permutation that sorted the defect pixels (flattened order -> sorted)


def _sorted_pixels(maps: ArrayLike, masks: ArrayLike) -> _SortedPixels:
    scores = np.asarray(maps, dtype=np.float32)
    truth = np.asarray(masks) != 0
    if scores.shape != truth.shape or scores.ndim != 3:
        raise MetricError(f"maps and masks must both be (N, H, W), got {scores.shape} and {truth.shape}")
    if not np.isfinite(scores).all():
        raise MetricError("anomaly maps contain NaN or infinite values")
    if not truth.any() or truth.all():
        raise MetricError("pixel metrics need both defect and defect-free pixels in the masks")
    normal = scores[~truth]
    normal.sort()
    defect = scores[truth]
    order = np.argsort(defect, kind="stable")
    return _SortedPixels(normal, defect[order], order)


def _auroc(pixels: _SortedPixels) -> float:
    # Per defect pixel: normal pixels strictly below it (wins) and equal to it (half wins).
    below = np.searchsorted(pixels.normal, pixels.defect, side="left")
    not_above = np.searchsorted(pixels.normal, pixels.defect, side="right")
    wins = below.sum(dtype=np.float64) + 0.5 * (not_above - below).sum(dtype=np.float64)
    return float(wins / (float(len(pixels.normal)) * float(len(pixels.defect))))


def _distinct(ascending: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a sorted array and the index where each run of equal values starts."""
    starts = np.flatnonzero(np.r_[True, ascending[1:] != ascending[:-1]])
    return ascending[starts], starts


def _average_precision(pixels: _SortedPixels) -> float:
    # Recall changes only at distinct defect scores; precision there counts everything >= the score.
    values, first = _distinct(pixels.defect)
    true_positives = len(pixels.defect) - first  # defect pixels >= value
    false_positives = len(pixels.normal) - np.searchsorted(pixels.normal, values, side="left")
    precision = true_positives / (true_positives + false_positives)
    recall_steps = (true_positives - np.r_[true_positives[1:], 0]) / len(pixels.defect)
    return float(np.sum(recall_steps * precision))


# Distinct thresholds handled per vectorised step of the AU-PRO sum; bounds its temporary arrays.
_AUPRO_CHUNK = 1 << 22


def _aupro(pixels: _SortedPixels, regions: Regions, max_fpr: float) -> float:
    # Each defect pixel adds 1 / (regions × its region's size) to PRO once the threshold reaches it.
    weights = (1.0 / (regions.count * regions.sizes))[regions.region_of_defect_pixel[pixels.defect_order]]
    pro_at_or_above = np.r_[np.cumsum(weights[::-1])[::-1], 0.0]  # PRO(t = defect[i]), ascending i
    del weights
    normal = pixels.normal
    total = len(normal)
    # Only the highest normal scores reach FPR <= max_fpr; keep them plus the run that crosses it.
    last_inside = max(0, total - int(np.floor(max_fpr * total)) - 1)
    tail_start = int(np.searchsorted(normal, normal[last_inside], side="left"))
    values, starts = _distinct(normal[tail_start:])
    starts += tail_start
    # Walk the distinct normal values v from the top. Each ends a segment from (FPR(> v), PRO(> v)) to
    # (FPR(>= v), PRO(>= v)); thresholds at defect-only values are vertical steps with no area.
    area, fpr_previous = 0.0, 0.0
    for stop in range(len(values), 0, -_AUPRO_CHUNK):
        chunk = slice(max(0, stop - _AUPRO_CHUNK), stop)
        chunk_values, chunk_starts = values[chunk][::-1], starts[chunk][::-1]
        fpr_ge = (total - chunk_starts) / total
        fpr_gt = np.r_[fpr_previous, fpr_ge[:-1]]
        pro_ge = pro_at_or_above[np.searchsorted(pixels.defect, chunk_values, side="left")]
        pro_gt = pro_at_or_above[np.searchsorted(pixels.defect, chunk_values, side="right")]
        inside = fpr_ge <= max_fpr
        area += float(np.sum(0.5 * (pro_gt[inside] + pro_ge[inside]) * (fpr_ge[inside] - fpr_gt[inside])))
        crossing = np.flatnonzero(~inside)
        if len(crossing):
            k = crossing[0]  # the segment that passes max_fpr: interpolate PRO there
            fraction = (max_fpr - fpr_gt[k]) / (fpr_ge[k] - fpr_gt[k])
            pro_at_max = pro_gt[k] + fraction * (pro_ge[k] - pro_gt[k])
            area += 0.5 * (pro_gt[k] + pro_at_max) * (max_fpr - fpr_gt[k])
            break
        fpr_previous = float(fpr_ge[-1])
    # The sums of 1/(regions × size) and of FPR steps round, to 1 + 2e-16 for a perfect map.
    return min(float(area / max_fpr), 1.0)


def pixel_auroc(maps: ArrayLike, masks: ArrayLike) -> float:
    return _auroc(_sorted_pixels(maps, masks))


def pixel_average_precision(maps: ArrayLike, masks: ArrayLike) -> float:
    return _average_precision(_sorted_pixels(maps, masks))


def pixel_aupro(
    maps: ArrayLike, masks: ArrayLike, max_fpr: float = 0.3, regions: Regions | None = None
) -> float:
    """Normalised area under the PRO curve up to `max_fpr`; pass `regions` to reuse a labelling."""
    if not 0 < max_fpr <= 1:
        raise MetricError(f"max_fpr must be in (0, 1], got {max_fpr}")
    return _aupro(_sorted_pixels(maps, masks), regions or label_regions(np.asarray(masks)), max_fpr)


def pixel_metrics(
    maps: ArrayLike, masks: ArrayLike, regions: Regions | None = None, max_fpr: float = 0.3
) -> dict[str, float]:
    """AUROC, AP and AU-PRO from one pass of sorting, under their results-table names."""
    pixels = _sorted_pixels(maps, masks)
    regions = regions or label_regions(np.asarray(masks))
    return {
        "pixel_auroc": _auroc(pixels),
        "pixel_ap": _average_precision(pixels),
        f"pixel_aupro_{max_fpr:g}": _aupro(pixels, regions, max_fpr),
    }


def pixel_iou(maps: ArrayLike, masks: ArrayLike, threshold: float) -> float:
    """Intersection over union of {score >= threshold} and the defect pixels, over the whole category."""
    predicted = np.asarray(maps, dtype=np.float32) >= np.float32(threshold)
    truth = np.asarray(masks) != 0
    union = np.count_nonzero(predicted | truth)
    return float(np.count_nonzero(predicted & truth) / union) if union else 1.0
