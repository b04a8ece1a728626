"""MVTec LOCO's saturated per-region overlap (Bergmann et al., IJCV 2022, §4.2) and its area, AU-sPRO.

Each ground-truth defect (one mask file of MVTec LOCO) has a saturation area s: a pixel count, or a share
of the defect's area, as the dataset's defects_config.json says; an absolute s larger than the defect is
capped at its area, so a defect marked whole counts as found. At threshold t a defect scores
min(|{score >= t} ∩ defect| / s, 1), and sPRO(t) is the mean over the defects. False positives count only
pixels outside every defect; FPR(t) is over those pixels of the images scored together. The curve's area
up to an FPR limit, divided by the limit, is AU-sPRO, computed as AU-PRO is
(adbench.evaluation.metrics.pixel).

sPRO is AU-PRO's sum with other weights: the j-th highest-scoring pixel of a defect adds
clip(s − (j − 1), 0, 1) / s to that defect's score, and ties within a defect add the same in any order. A
pixel in two overlapping defects is counted once per defect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from adbench.evaluation.metrics.image import MetricError
from adbench.evaluation.metrics.pixel import checked_maps, pro_areas, sorted_tail

SPRO_LIMITS = (0.05, 0.3)  # the limits MVTec LOCO reports


@dataclass(frozen=True)
class Defects:
    """The single defects of a category's test masks, each with its saturation area."""

    image: np.ndarray  # (D,) int64: index of the test image that holds the defect
    pixels: np.ndarray  # flattened (row-major) pixel indices within its image, defect after defect
    offsets: np.ndarray  # (D + 1,) int64: defect d's pixels are pixels[offsets[d]:offsets[d + 1]]
    # (D,) float64 pixels, at most the defect's area; 0 for a defect that lost every pixel to resizing,
    # which counts in the mean and can never be found
    saturation: np.ndarray

    def __len__(self) -> int:
        return len(self.image)


def saturation_area(area: int, threshold: float, relative: bool, scale: float = 1.0) -> float:
    """The pixels a defect of `area` pixels needs marked to saturate; `scale` converts an absolute
    threshold, given at the masks' own size, to the size the metric is computed at."""
    needed = threshold * area if relative else threshold * scale
    return float(min(needed, area))


def _weights(scores: np.ndarray, saturation: float) -> tuple[np.ndarray, np.ndarray]:
    """A defect's scores and each one's weight, in descending order of score."""
    descending = np.sort(scores)[::-1]
    rank = np.arange(len(descending), dtype=np.float64)
    return descending, np.clip(saturation - rank, 0.0, 1.0) / saturation


def aupro_saturated(
    maps: np.ndarray,
    masks: np.ndarray,
    defects: Defects,
    images: np.ndarray | None = None,
    limits: Sequence[float] = SPRO_LIMITS,
) -> dict[float, float]:
    """AU-sPRO at each FPR limit over the test images selected by the boolean `images` (all if None):
    their defects, and their pixels outside every defect as the negatives."""
    for limit in limits:
        if not 0 < limit <= 1:
            raise MetricError(f"FPR limits must be in (0, 1], got {limit}")
    scores, truth = checked_maps(maps, masks)
    chosen = np.ones(len(scores), dtype=bool) if images is None else np.asarray(images, dtype=bool)
    return _areas(scores, truth, defects, chosen, tuple(limits))


def _areas(
    scores: np.ndarray, truth: np.ndarray, defects: Defects, chosen: np.ndarray, limits: tuple[float, ...]
) -> dict[float, float]:
    """`aupro_saturated` on maps and masks already checked."""
    used = np.flatnonzero(chosen[defects.image])
    if not len(used):
        raise MetricError("sPRO needs at least one defect among the images scored")
    negatives = scores[chosen[:, None, None] & ~truth]  # one copy, of those pixels only
    if not len(negatives):
        raise MetricError("sPRO needs pixels outside every defect")
    flat = scores.reshape(len(scores), -1)
    values, weights = [], []
    for d in used:
        pixels = defects.pixels[defects.offsets[d] : defects.offsets[d + 1]]
        if not len(pixels):
            continue
        descending, weight = _weights(flat[defects.image[d], pixels], float(defects.saturation[d]))
        values.append(descending)
        weights.append(weight / len(used))
    if not values:
        return {limit: 0.0 for limit in limits}
    defect_scores, defect_weights = np.concatenate(values), np.concatenate(weights)
    order = np.argsort(defect_scores, kind="stable")
    total = len(negatives)
    tail = sorted_tail(negatives, max(limits))
    return pro_areas(tail, total, defect_scores[order], defect_weights[order], limits)


def spro_name(limit: float, anomaly_type: str | None = None) -> str:
    """The results-table name of AU-sPRO at `limit` for one anomaly type (a trailing "_anomalies"
    dropped) or, without one, of the mean over the types."""
    if anomaly_type is None:
        return f"pixel_auspro_{limit:g}"
    return f"pixel_auspro_{limit:g}_{anomaly_type.removesuffix('_anomalies')}"


def spro_metrics(
    maps: np.ndarray, masks: np.ndarray, defects: Defects, defect_types: Sequence[str], labels: np.ndarray
) -> dict[str, float]:
    """AU-sPRO at each of SPRO_LIMITS per anomaly type (the defect-free images and that type's, as MVTec
    LOCO scores logical and structural anomalies apart) and their mean, under `spro_name`."""
    scores, truth = checked_maps(maps, masks)  # once for every type
    types = np.asarray(defect_types)
    normal = np.asarray(labels) == 0
    per_type: dict[str, dict[float, float]] = {}
    for anomaly_type in sorted(set(types[~normal].tolist())):
        per_type[anomaly_type] = _areas(scores, truth, defects, normal | (types == anomaly_type), SPRO_LIMITS)
    metrics = {}
    for limit in SPRO_LIMITS:
        for anomaly_type, areas in per_type.items():
            metrics[spro_name(limit, anomaly_type)] = areas[limit]
        metrics[spro_name(limit)] = float(np.mean([areas[limit] for areas in per_type.values()]))
    return metrics
