"""Pixel-level metrics over one category: pure functions of anomaly maps and ground-truth masks.

Inputs: `maps` (N, H, W) anomaly scores (higher = more anomalous; converted to float32 so that ties are
as stored) and `masks` (N, H, W), nonzero = defect pixel. All pixels of all images of the category
count together. A pixel is predicted anomalous at threshold t when its score is >= t, and every distinct
score is a threshold (the last point of each run of ties).

One sort of the defect-free pixels' scores and one of the defect pixels' scores serve every pooled
metric (`pixel_metrics`); no loop over thresholds, no float64 copy of the maps:

- `pixel_auroc`: the Mann-Whitney statistic (ties count one half), equal to scikit-learn's roc_auc_score.
- `pixel_ap`: sum over thresholds of (recall step) × precision, as scikit-learn's average_precision_score.
- `pixel_f1_max`: the largest F1 over all thresholds. The threshold is chosen on the test labels, so it
  is an oracle figure, not what a deployed detector would reach.
- `pixel_aupro_<limit>`: MVTec AD's per-region overlap curve. Regions are the 8-connected components of
  each mask; PRO(t) is the mean over all regions of the category of the fraction of the region's pixels
  >= t; FPR(t) is over all defect-free pixels of the category. The curve runs from (0, 0) to (1, 1);
  its area up to the FPR limit (trapezoid rule, the curve interpolated linearly at exactly the limit)
  is divided by the limit. Only the defect-free scores above the largest limit's quantile are walked,
  for every limit at once (`PRO_LIMITS`).

`aupimo_per_image` is per image (Bertoldo et al., BMVC 2024): for each anomalous image, the TPR of its
own defect pixels against the FPR over the defect-free images only, integrated over log FPR from 1e-5 to
1e-4 and divided by log(10). Only the defect-free images' top 1e-4 of scores matter, which a partial
sort (`sorted_tail`) finds without sorting the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

from adbench.evaluation.metrics.image import MetricError

EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
# The FPR limits of AU-PRO: 0.3 as in MVTec AD, 0.05 as in MVTec AD 2, and two between or below.
PRO_LIMITS = (0.3, 0.1, 0.05, 0.01)
AUPIMO_FPR_RANGE = (1e-5, 1e-4)


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
class _Pixels:
    normal: np.ndarray  # defect-free pixels' scores, float32, in no particular order
    defect: np.ndarray  # defect pixels' scores, ascending, float32
    defect_order: np.ndarray  # permutation that sorted the defect pixels (flattened order -> sorted)


def checked_maps(maps: ArrayLike, masks: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(maps, dtype=np.float32)
    truth = np.asarray(masks) != 0
    if scores.shape != truth.shape or scores.ndim != 3:
        raise MetricError(f"maps and masks must both be (N, H, W), got {scores.shape} and {truth.shape}")
    if not np.isfinite(scores).all():
        raise MetricError("anomaly maps contain NaN or infinite values")
    return scores, truth


def _split_pixels(maps: ArrayLike, masks: ArrayLike) -> _Pixels:
    scores, truth = checked_maps(maps, masks)
    if not truth.any() or truth.all():
        raise MetricError("pixel metrics need both defect and defect-free pixels in the masks")
    defect = scores[truth]
    order = np.argsort(defect, kind="stable")
    return _Pixels(scores[~truth], defect[order], order)


@dataclass(frozen=True)
class _Ranks:
    """Per defect pixel (ascending), the defect-free pixels strictly below it and at or below it."""

    below: np.ndarray
    not_above: np.ndarray


def _ranks(normal: np.ndarray, defect: np.ndarray) -> _Ranks:
    return _Ranks(np.searchsorted(normal, defect, side="left"), np.searchsorted(normal, defect, side="right"))


def _auroc(ranks: _Ranks, normal_count: int) -> float:
    # Normal pixels strictly below a defect pixel count as wins, equal ones as half wins.
    wins = ranks.below.sum(dtype=np.float64) + 0.5 * (ranks.not_above - ranks.below).sum(dtype=np.float64)
    return float(wins / (float(normal_count) * float(len(ranks.below))))


def _distinct(ascending: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a sorted array and the index where each run of equal values starts."""
    starts = np.flatnonzero(np.r_[True, ascending[1:] != ascending[:-1]])
    return ascending[starts], starts


def _positives(defect: np.ndarray, ranks: _Ranks, normal_count: int) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives at each distinct defect score (ascending), the only thresholds that
    matter to precision and recall: between two of them, raising t only removes false positives."""
    _, first = _distinct(defect)
    true_positives = len(defect) - first  # defect pixels >= value
    false_positives = normal_count - ranks.below[first]
    return true_positives, false_positives


def _average_precision(true_positives: np.ndarray, false_positives: np.ndarray) -> float:
    precision = true_positives / (true_positives + false_positives)
    recall_steps = (true_positives - np.r_[true_positives[1:], 0]) / true_positives[0]
    return float(np.sum(recall_steps * precision))


def _f1_max(true_positives: np.ndarray, false_positives: np.ndarray) -> float:
    # F1 = 2 TP / (2 TP + FP + FN), and TP + FN is every defect pixel, true_positives[0].
    return float(np.max(2 * true_positives / (true_positives + false_positives + true_positives[0])))


def _tail_start(ascending: np.ndarray, fpr: float) -> int:
    """Where the scores that reach FPR <= `fpr` begin in a sorted array, with the run of ties that
    crosses it (a threshold inside that run is where the curve passes `fpr`)."""
    last_inside = max(0, len(ascending) - math.floor(fpr * len(ascending)) - 1)
    return int(np.searchsorted(ascending, ascending[last_inside], side="left"))


def sorted_tail(values: np.ndarray, fpr: float) -> np.ndarray:
    """`np.sort(values)[_tail_start(np.sort(values), fpr):]` without sorting the rest: a partition at
    the boundary value, a count of its ties below, and a sort of what lies above. Reorders `values`."""
    boundary_index = max(0, len(values) - math.floor(fpr * len(values)) - 1)
    values.partition(boundary_index)
    boundary = values[boundary_index]
    ties = np.count_nonzero(values[:boundary_index] == boundary)
    return np.concatenate([np.full(ties, boundary, dtype=values.dtype), np.sort(values[boundary_index:])])


# Distinct thresholds handled per vectorised step of the AU-PRO sum; bounds its temporary arrays.
_AUPRO_CHUNK = 1 << 20


def pro_areas(
    tail: np.ndarray, total: int, defect: np.ndarray, weights: np.ndarray, limits: tuple[float, ...]
) -> dict[float, float]:
    """Normalised PRO areas for each FPR limit. `tail`: the highest of `total` defect-free scores,
    ascending, reaching past the largest limit (`_tail_start`); `defect`: sorted defect scores, each
    adding its `weights` entry, 1 / (regions × its region's size), to PRO once the threshold reaches it."""
    pro_at_or_above = np.r_[np.cumsum(weights[::-1])[::-1], 0.0]  # PRO(t = defect[i]), ascending i
    values, at_or_above = _distinct(tail)
    np.subtract(len(tail), at_or_above, out=at_or_above)  # defect-free pixels >= each value
    # Where each defect pixel falls among the values: searching the few defect pixels in the many values
    # is several times faster than the other way round.
    values_below = np.searchsorted(values, defect, side="left")
    values_at_or_below = np.searchsorted(values, defect, side="right")
    # Each distinct defect-free value v ends a segment from (FPR(> v), PRO(> v)) to (FPR(>= v), PRO(>= v));
    # thresholds at defect-only values are vertical steps with no area. The walk goes from the top
    # value down, a chunk at a time, until every limit is passed.
    pending = sorted(limits)
    areas: dict[float, float] = {}
    area_above = 0.0  # of the chunks already walked
    for stop in range(len(values), 0, -_AUPRO_CHUNK):
        chunk = slice(max(0, stop - _AUPRO_CHUNK), stop)
        above_chunk = at_or_above[stop] if stop < len(values) else 0
        fpr_ge = at_or_above[chunk] / total
        fpr_gt = np.r_[at_or_above[chunk.start + 1 : stop], above_chunk] / total
        # PRO(>= v_j) sums the weights after the defect pixels < v_j: those with at most j values at or
        # below them. PRO(> v_j) after those <= v_j: at most j values strictly below them.
        pro_ge = pro_at_or_above[_count_at_or_below(values_at_or_below, chunk)]
        pro_gt = pro_at_or_above[_count_at_or_below(values_below, chunk)]
        segments = 0.5 * (pro_gt + pro_ge) * (fpr_ge - fpr_gt)
        while pending and pending[0] <= fpr_ge[0]:
            limit = pending.pop(0)
            k = int(np.count_nonzero(fpr_ge >= limit)) - 1  # the segment that reaches the limit
            pro_at_limit = pro_gt[k] + (limit - fpr_gt[k]) / (fpr_ge[k] - fpr_gt[k]) * (pro_ge[k] - pro_gt[k])
            inside = area_above + float(np.sum(segments[k + 1 :]))
            areas[limit] = inside + 0.5 * (pro_gt[k] + pro_at_limit) * (limit - fpr_gt[k])
        if not pending:
            break
        area_above += float(np.sum(segments))
    # The sums of 1/(regions × size) and of FPR steps round, to 1 + 2e-16 for a perfect map.
    return {limit: min(areas[limit] / limit, 1.0) for limit in limits}


def _count_at_or_below(positions: np.ndarray, chunk: slice) -> np.ndarray:
    """For each j in `chunk`, how many of the sorted `positions` are <= j."""
    low, high = np.searchsorted(positions, [chunk.start, chunk.stop], side="left")
    counts = np.bincount(positions[low:high] - chunk.start, minlength=chunk.stop - chunk.start)
    return low + np.cumsum(counts)


def _pro_weights(pixels: _Pixels, regions: Regions) -> np.ndarray:
    if len(regions.region_of_defect_pixel) != len(pixels.defect):
        raise MetricError(
            f"the regions label {len(regions.region_of_defect_pixel)} defect pixels but the masks hold "
            f"{len(pixels.defect)}; label the same masks"
        )
    return (1.0 / (regions.count * regions.sizes))[regions.region_of_defect_pixel[pixels.defect_order]]


def pixel_auroc(maps: ArrayLike, masks: ArrayLike) -> float:
    pixels = _split_pixels(maps, masks)
    pixels.normal.sort()
    return _auroc(_ranks(pixels.normal, pixels.defect), len(pixels.normal))


def pixel_average_precision(maps: ArrayLike, masks: ArrayLike) -> float:
    pixels = _split_pixels(maps, masks)
    pixels.normal.sort()
    ranks = _ranks(pixels.normal, pixels.defect)
    return _average_precision(*_positives(pixels.defect, ranks, len(pixels.normal)))


def pixel_aupro(
    maps: ArrayLike, masks: ArrayLike, max_fpr: float = 0.3, regions: Regions | None = None
) -> float:
    """Normalised area under the PRO curve up to `max_fpr`; pass `regions` to reuse a labelling."""
    if not 0 < max_fpr <= 1:
        raise MetricError(f"max_fpr must be in (0, 1], got {max_fpr}")
    pixels = _split_pixels(maps, masks)
    weights = _pro_weights(pixels, regions or label_regions(np.asarray(masks)))
    tail = sorted_tail(pixels.normal, max_fpr)  # AU-PRO alone needs no full sort
    return pro_areas(tail, len(pixels.normal), pixels.defect, weights, (max_fpr,))[max_fpr]


def pixel_metrics(
    maps: ArrayLike, masks: ArrayLike, regions: Regions | None = None, limits: tuple[float, ...] = PRO_LIMITS
) -> dict[str, float]:
    """AUROC, AP, F1-max and AU-PRO at each limit, from one sort, under their results-table names."""
    pixels = _split_pixels(maps, masks)
    weights = _pro_weights(pixels, regions or label_regions(np.asarray(masks)))
    normal = pixels.normal
    normal.sort()  # AUROC ranks every pixel, so a full sort; AU-PRO reads its top
    ranks = _ranks(normal, pixels.defect)
    positives = _positives(pixels.defect, ranks, len(normal))
    tail = normal[_tail_start(normal, max(limits)) :]
    aupro = pro_areas(tail, len(normal), pixels.defect, weights, limits)
    return {
        "pixel_auroc": _auroc(ranks, len(normal)),
        "pixel_ap": _average_precision(*positives),
        "pixel_f1_max": _f1_max(*positives),
        **{f"pixel_aupro_{limit:g}": aupro[limit] for limit in limits},
    }


def aupimo_per_image(
    maps: ArrayLike, masks: ArrayLike, labels: ArrayLike, fpr_range: tuple[float, float] = AUPIMO_FPR_RANGE
) -> np.ndarray:
    """AUPIMO of every image: (N,) float64, NaN for images with no defect pixel.

    The curve of an anomalous image runs through (FPR(t), TPR(t)) at every distinct score t of the
    defect-free images (label 0), with FPR(t) their mean per-image FPR (their pooled FPR: the maps share
    one size) and TPR(t) the fraction of the image's defect pixels >= t; it is integrated by the
    trapezoid rule in log FPR, interpolated linearly in log FPR at both ends of `fpr_range`. Everything
    is NaN when the defect-free images cannot resolve the lower end (fewer than 1 / 1e-5 pixels, or ties
    at the top that span it) or there are none.
    """
    low, high = fpr_range
    if not 0 < low < high <= 1:
        raise MetricError(f"the FPR range must satisfy 0 < low < high <= 1, got {fpr_range}")
    scores, truth = checked_maps(maps, masks)
    normal_images = np.asarray(labels) == 0
    if normal_images.shape != (len(scores),):
        raise MetricError(f"labels must be (N,) = ({len(scores)},), got {normal_images.shape}")
    result = np.full(len(scores), np.nan)
    if not normal_images.any():
        return result
    normal = scores[normal_images].ravel()
    total = len(normal)
    tail = sorted_tail(normal, high)
    del normal
    values, starts = _distinct(tail)
    values, fpr_ge = values[::-1], ((len(tail) - starts) / total)[::-1]  # from the top
    fpr_gt = np.r_[0.0, fpr_ge[:-1]]
    if fpr_ge[0] > low:  # the first threshold already passes the lower end: no curve at FPR = low
        return result
    used = (fpr_ge > low) & (fpr_gt < high)
    values, log_gt, log_ge = values[used], np.log(fpr_gt[used]), np.log(fpr_ge[used])
    start, end = np.maximum(log_gt, math.log(low)), np.minimum(log_ge, math.log(high))
    for image in np.flatnonzero(truth.any(axis=(1, 2))):
        defect = np.sort(scores[image][truth[image]])
        tpr_ge = 1.0 - np.searchsorted(defect, values, side="left") / len(defect)
        tpr_gt = 1.0 - np.searchsorted(defect, values, side="right") / len(defect)
        slope = (tpr_ge - tpr_gt) / (log_ge - log_gt)
        at_start, at_end = tpr_gt + slope * (start - log_gt), tpr_gt + slope * (end - log_gt)
        result[image] = np.sum(0.5 * (at_start + at_end) * (end - start)) / math.log(high / low)
    return result


def pixel_iou(maps: ArrayLike, masks: ArrayLike, threshold: float) -> float:
    """Intersection over union of {score >= threshold} and the defect pixels, over the whole category."""
    predicted = np.asarray(maps, dtype=np.float32) >= np.float32(threshold)
    truth = np.asarray(masks) != 0
    union = np.count_nonzero(predicted | truth)
    return float(np.count_nonzero(predicted & truth) / union) if union else 1.0
