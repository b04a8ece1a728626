"""95 % confidence intervals of a cell's pixel-level metrics, by resampling whole test images.

A pixel is not an independent sample: its neighbours share its defect, and a test set is a set of images.
So the resampled unit is the image, stratified as the image-level bootstrap (adbench.evaluation.bootstrap) is:
defect-free and anomalous images are drawn separately at their own counts, 200 resamples by default.

Every resample is a row of counts (how often each image was drawn), and every metric of all resamples at
once is a few matrix products over per-image histograms: each image's defect pixels, defect-free pixels
and ground-truth regions counted in the same K ≈ 4,000 score bins (thresholds at quantiles of the
defect-free scores, uniform and log-spaced in FPR down to 1e-4, and of the defect scores). A pixel's
exact score matters only through its bin, so the resampled curves are those of the binned maps; the
binned metric of the whole test set differs from the exact one by about 1e-4 to 1e-3, and each interval
is shifted by that difference so that it belongs to the exact value in the results table. The interval
is the percentile interval.

- `pixel_auroc`, `pixel_ap`, `pixel_f1_max`, `pixel_aupro_<limit>`: as adbench.evaluation.metrics.pixel
  defines them, pixels pooled over the resampled images (an image drawn twice counts twice).
- `pixel_iou`: at the cell's validation threshold, which stays fixed (it was chosen on validation maps).
- `pixel_aupimo`: the mean of the resampled anomalous images' own AUPIMO; the defect-free images that
  define its FPR axis stay as they are (a per-image metric's sample is its images).
- `pixel_auspro_<limit>_<type>` and their mean `pixel_auspro_<limit>` (MVTec LOCO): each single defect's
  pixels counted in the same bins, its saturated overlap min(pixels at or above / saturation, 1) per
  bin edge, averaged over the resampled images' defects of that type; negatives from those images and
  the defect-free ones. A resample that draws no image of a type (possible when a type has few) leaves
  that type's value undefined there and is left out of its interval.

Binning reads each image once; the cost is linear in the pixel count, so a run skips it, with a note,
above `RunConfig.pixel_ci_max_pixels`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from adbench.evaluation.bootstrap import LEVEL, stratified_counts
from adbench.evaluation.metrics.pixel import PRO_LIMITS, Regions
from adbench.evaluation.metrics.spro import SPRO_LIMITS, Defects, spro_name

PIXEL_RESAMPLES = 200
_STREAM = 0x91C5E1  # the resampling's own stream of the cell's seed
_THRESHOLD_SAMPLE = 2_000_000  # pixels of each kind from which the bin edges are estimated


def _thresholds(scores: np.ndarray, truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ascending bin edges, the lowest the smallest score, so every pixel is at or above one."""
    if scores.size <= 2 * _THRESHOLD_SAMPLE:
        normal, defect = scores[~truth], scores[truth]
    else:  # without a copy of every pixel
        drawn = rng.integers(0, scores.size, 2 * _THRESHOLD_SAMPLE)
        values, inside = scores.ravel()[drawn], truth.ravel()[drawn]
        normal, defect = values[~inside], values[inside] if inside.any() else scores[truth]
    fpr = np.unique(np.r_[np.linspace(0, 1, 2049), np.geomspace(1e-4, max(PRO_LIMITS), 1024)])
    edges = np.r_[np.quantile(normal, 1 - fpr), np.quantile(defect, np.linspace(0, 1, 1025)), scores.min()]
    return np.unique(edges.astype(np.float32))


def _bin_of(scores: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Each score's bin: the index of the highest edge at or below it. torch's bucketize is
    np.searchsorted(side="right") on every core, and binning is most of the bootstrap's cost."""
    return torch.bucketize(torch.from_numpy(scores), torch.from_numpy(edges), right=True).numpy() - 1


class _Histograms:
    """Per image, its pixels counted in the bins: `defect`, `normal` (N, K) and per region (R, K)."""

    def __init__(self, scores: np.ndarray, truth: np.ndarray, regions: Regions, edges: np.ndarray):
        images, bins = len(scores), len(edges)
        self.edges = edges
        self.defect = np.zeros((images, bins))
        self.normal = np.zeros((images, bins))
        self.region = np.zeros((regions.count, bins))
        self.region_image = np.zeros(regions.count, dtype=np.int64)
        start = 0
        for image in range(images):
            index = _bin_of(scores[image].ravel(), edges)
            inside = truth[image].ravel()
            defect_index = index[inside]
            self.defect[image] = np.bincount(defect_index, minlength=bins)
            self.normal[image] = np.bincount(index[~inside], minlength=bins)
            ids = regions.region_of_defect_pixel[start : start + len(defect_index)]
            start += len(ids)
            if len(ids):
                first, last = int(ids.min()), int(ids.max()) + 1
                local = (ids - first) * bins + defect_index
                self.region[first:last] = np.bincount(local, minlength=(last - first) * bins).reshape(
                    -1, bins
                )
                self.region_image[first:last] = image


def _defect_histograms(scores: np.ndarray, defects: Defects, edges: np.ndarray) -> np.ndarray:
    """(D, K): each single defect's pixels counted in the bins (a pixel of two defects in both)."""
    flat = scores.reshape(len(scores), -1)
    counted = np.zeros((len(defects), len(edges)))
    for d in range(len(defects)):
        pixels = defects.pixels[defects.offsets[d] : defects.offsets[d + 1]]
        counted[d] = np.bincount(_bin_of(flat[defects.image[d], pixels], edges), minlength=len(edges))
    return counted


def _from_top(counts: np.ndarray) -> np.ndarray:
    """Per bin edge, the pixels at or above it: (..., K) cumulative from the highest bin down, highest
    edge first."""
    return np.cumsum(counts[..., ::-1], axis=-1)


def _area_up_to(fpr: np.ndarray, y: np.ndarray, limit: float) -> np.ndarray:
    """Per row, the trapezoid area under (fpr, y) from 0 to `limit`, interpolated at the limit."""
    x0, x1, y0, y1 = fpr[:, :-1], fpr[:, 1:], y[:, :-1], y[:, 1:]
    end = np.minimum(x1, limit)
    width = np.clip(end - x0, 0, None)
    slope = np.divide(y1 - y0, x1 - x0, out=np.zeros_like(y0), where=x1 > x0)
    return np.sum(width * (y0 + (y0 + slope * width)) / 2, axis=1)


def _iou_counts(scores: np.ndarray, truth: np.ndarray, threshold: float) -> np.ndarray:
    """Per image, its pixels at or above `threshold` that are defects, at or above it, and defects (N, 3)."""
    above = scores >= np.float32(threshold)
    per_image = [(above & truth).sum(axis=(1, 2)), above.sum(axis=(1, 2)), truth.sum(axis=(1, 2))]
    return np.stack(per_image, axis=1).astype(np.float64)


def _binned_metrics(
    counts: np.ndarray, histograms: _Histograms, iou_counts: np.ndarray | None
) -> dict[str, np.ndarray]:
    """Every binned metric of every row of image `counts` (B, N), (B,) each."""
    true_positives = _from_top(counts @ histograms.defect)
    false_positives = _from_top(counts @ histograms.normal)
    positives, negatives = true_positives[:, -1:], false_positives[:, -1:]
    zero = np.zeros((len(counts), 1))
    tpr, fpr = np.hstack([zero, true_positives / positives]), np.hstack([zero, false_positives / negatives])
    predicted = true_positives + false_positives
    precision = np.divide(true_positives, predicted, out=np.zeros_like(predicted), where=predicted > 0)
    recall_steps = np.diff(true_positives, axis=1, prepend=0.0) / positives
    metrics = {
        "pixel_auroc": _area_up_to(fpr, tpr, 1.0),
        "pixel_ap": np.sum(recall_steps * precision, axis=1),
        "pixel_f1_max": np.max(2 * true_positives / (predicted + positives), axis=1),
    }
    if len(histograms.region):
        sizes = histograms.region.sum(axis=1, keepdims=True)
        overlap = _from_top(histograms.region) / sizes  # (R, K): fraction of each region at or above
        weights = counts[:, histograms.region_image]
        pro = np.hstack([zero, (weights @ overlap) / weights.sum(axis=1, keepdims=True)])
        for limit in PRO_LIMITS:
            metrics[f"pixel_aupro_{limit:g}"] = np.minimum(_area_up_to(fpr, pro, limit) / limit, 1.0)
    if iou_counts is not None:
        intersection, predicted_at, defect = (counts @ iou_counts).T
        union = predicted_at + defect - intersection
        metrics["pixel_iou"] = np.divide(intersection, union, out=np.ones_like(union), where=union > 0)
    return metrics


def _binned_spro(
    counts: np.ndarray,
    normal: np.ndarray,
    single: np.ndarray,
    defects: Defects,
    defect_types: np.ndarray,
    labels: np.ndarray,
) -> dict[str, np.ndarray]:
    """AU-sPRO per anomaly type and their mean for every row of image `counts` (B, N), from the images'
    defect-free pixel histograms `normal` (N, K) and the single defects' `single` (D, K)."""
    saturation = defects.saturation[:, None]
    # A defect that lost every pixel (saturation 0) is never found, and still counts in the mean.
    found = np.minimum(
        np.divide(_from_top(single), saturation, out=np.zeros_like(single), where=saturation > 0), 1.0
    )
    zero = np.zeros((len(counts), 1))
    defect_free = labels == 0
    per_type: dict[str, dict[float, np.ndarray]] = {}
    for anomaly_type in sorted(set(defect_types[~defect_free].tolist())):
        chosen_counts = counts * (defect_free | (defect_types == anomaly_type))
        false_positives = _from_top(chosen_counts @ normal)
        fpr = np.hstack([zero, false_positives / false_positives[:, -1:]])
        weights = chosen_counts[:, defects.image]  # (B, D): zero for the other types' defects
        drawn = weights.sum(axis=1, keepdims=True)
        mean_found = np.full((len(counts), found.shape[1]), np.nan)
        np.divide(weights @ found, drawn, out=mean_found, where=drawn > 0)
        spro = np.hstack([zero, mean_found])
        per_type[anomaly_type] = {
            limit: np.minimum(_area_up_to(fpr, spro, limit) / limit, 1.0) for limit in SPRO_LIMITS
        }
    metrics = {}
    for limit in SPRO_LIMITS:
        for anomaly_type, areas in per_type.items():
            metrics[spro_name(limit, anomaly_type)] = areas[limit]
        metrics[spro_name(limit)] = np.mean([areas[limit] for areas in per_type.values()], axis=0)
    return metrics


def pixel_intervals(
    labels: np.ndarray,
    maps: np.ndarray,
    masks: np.ndarray,
    regions: Regions,
    exact: dict[str, float],
    seed: int,
    aupimo: np.ndarray | None = None,
    iou_threshold: float | None = None,
    resamples: int = PIXEL_RESAMPLES,
    defects: Defects | None = None,
    defect_types: Sequence[str] = (),
) -> dict[str, tuple[float, float]]:
    """Percentile interval of each pixel metric in `exact` (its value on the whole test set) that this
    bootstrap covers, over `resamples` stratified resamples of whole images; with MVTec LOCO's single
    `defects` and each test image's `defect_types`, also of AU-sPRO."""
    labels = np.asarray(labels)
    scores, truth = np.asarray(maps, dtype=np.float32), np.asarray(masks) != 0
    rng = np.random.default_rng([seed, _STREAM])
    histograms = _Histograms(scores, truth, regions, _thresholds(scores, truth, rng))
    iou_counts = None if iou_threshold is None else _iou_counts(scores, truth, iou_threshold)
    normal_counts, anomalous_counts = stratified_counts(labels, resamples, rng)
    counts = np.zeros((resamples, len(labels)))
    counts[:, labels == 0], counts[:, labels == 1] = normal_counts, anomalous_counts
    whole_counts = np.ones((1, len(labels)))
    resampled = _binned_metrics(counts, histograms, iou_counts)
    whole = _binned_metrics(whole_counts, histograms, iou_counts)
    if defects is not None and len(defects):
        single = _defect_histograms(scores, defects, histograms.edges)
        types = np.asarray(defect_types)
        resampled |= _binned_spro(counts, histograms.normal, single, defects, types, labels)
        whole |= _binned_spro(whole_counts, histograms.normal, single, defects, types, labels)
    if aupimo is not None:
        anomalous = np.asarray(aupimo)[labels == 1]
        defined = np.isfinite(anomalous)
        if defined.any():
            drawn = anomalous_counts[:, defined]
            resampled["pixel_aupimo"] = drawn @ anomalous[defined] / drawn.sum(axis=1)
            whole["pixel_aupimo"] = np.array([anomalous[defined].mean()])
    tail = (1 - LEVEL) / 2
    intervals = {}
    for metric, values in resampled.items():
        if metric not in exact or not np.isfinite(exact[metric]):
            continue
        if np.isnan(values).all():
            continue
        shift = exact[metric] - float(whole[metric][0])
        low, high = np.nanquantile(values, [tail, 1 - tail]) + shift
        intervals[metric] = (float(np.clip(low, 0, 1)), float(np.clip(high, 0, 1)))
    return intervals
