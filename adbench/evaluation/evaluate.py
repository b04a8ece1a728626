"""From one cell's scores and the category's ground truth to named metric values.

The same functions serve `adbench run` and `adbench evaluate`, so every number in a results table comes
from one metric code. Maps and masks are compared at the same resolution: by default the ground-truth
masks' own, to which a run upsamples its maps (`upsample_maps`), as the MVTec AD evaluation does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from adbench.evaluation.metrics.image import average_precision, image_auroc, max_balanced_accuracy, max_f1
from adbench.evaluation.metrics.pixel import Regions, aupimo_per_image, pixel_iou, pixel_metrics
from adbench.evaluation.metrics.spro import Defects, spro_metrics
from adbench.evaluation.metrics.threshold import (
    ThresholdResult,
    default_min_defect_area,
    evaluate_threshold,
    validation_threshold,
)
from adbench.evaluation.pixel_bootstrap import pixel_intervals

# Maps upsampled per step: bounds the float32 temporaries to a few full-size maps.
_UPSAMPLE_CHUNK = 8


def image_metrics(labels: np.ndarray, image_scores: np.ndarray) -> dict[str, float]:
    return {
        "image_auroc": image_auroc(labels, image_scores),
        "image_max_balanced_accuracy": max_balanced_accuracy(labels, image_scores),
        "image_ap": average_precision(labels, image_scores),
        "image_f1_max": max_f1(labels, image_scores),
    }


@dataclass(frozen=True)
class MapEvaluation:
    metrics: dict[str, float]
    threshold: ThresholdResult | None  # the validation threshold protocol, for the manifest
    aupimo: np.ndarray  # (N,) per test image; NaN for defect-free images and where undefined
    intervals: dict[str, tuple[float, float]]  # 95 % bootstrap intervals; empty unless asked for


def map_metrics(
    labels: np.ndarray,
    maps: np.ndarray,
    masks: np.ndarray,
    regions: Regions,
    validation_maps: np.ndarray | None = None,
    interval_seed: int | None = None,
    defects: Defects | None = None,
    defect_types: Sequence[str] = (),
) -> MapEvaluation:
    """Pixel metrics, and the threshold protocol when defect-free validation maps are given; with
    `interval_seed`, also the pixel metrics' bootstrap intervals (adbench.evaluation.pixel_bootstrap);
    with the single `defects` of MVTec LOCO and the images' `defect_types`, AU-sPRO per type (with an
    interval too)."""
    aupimo = aupimo_per_image(maps, masks, labels)  # first: its copy is freed before the big sort
    metrics = pixel_metrics(maps, masks, regions)
    if defects is not None:
        metrics |= spro_metrics(maps, masks, defects, defect_types, labels)
    defined = aupimo[np.isfinite(aupimo)]
    metrics["pixel_aupimo"] = float(defined.mean()) if len(defined) else float("nan")
    if validation_maps is None:
        return MapEvaluation(
            metrics,
            None,
            aupimo,
            _intervals(
                labels, maps, masks, regions, metrics, aupimo, interval_seed, None, defects, defect_types
            ),
        )
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
    intervals = _intervals(
        labels, maps, masks, regions, metrics, aupimo, interval_seed, float(above), defects, defect_types
    )
    return MapEvaluation(metrics, protocol, aupimo, intervals)


def _intervals(
    labels: np.ndarray,
    maps: np.ndarray,
    masks: np.ndarray,
    regions: Regions,
    metrics: dict[str, float],
    aupimo: np.ndarray,
    seed: int | None,
    iou_threshold: float | None,
    defects: Defects | None,
    defect_types: Sequence[str],
) -> dict[str, tuple[float, float]]:
    if seed is None:
        return {}
    return pixel_intervals(
        labels,
        maps,
        masks,
        regions,
        metrics,
        seed,
        aupimo,
        iou_threshold,
        defects=defects,
        defect_types=defect_types,
    )


def upsample_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(N, h, w) maps as (N, H, W) float32: bilinear, align_corners=False (pixel centres line up, as in
    PIL's and torchvision's resize). A few maps at a time, so no float64 or second full-size copy."""
    if maps.shape[1:] == size:
        return np.asarray(maps, dtype=np.float32)
    upsampled = np.empty((len(maps), *size), dtype=np.float32)
    for start in range(0, len(maps), _UPSAMPLE_CHUNK):
        chunk = torch.from_numpy(np.asarray(maps[start : start + _UPSAMPLE_CHUNK], dtype=np.float32))
        resized = F.interpolate(chunk[:, None], size=size, mode="bilinear", align_corners=False)
        upsampled[start : start + len(chunk)] = resized[:, 0].numpy()
    return upsampled
