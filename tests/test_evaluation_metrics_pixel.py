"""adbench/evaluation/metrics/pixel.py: the AU-PRO of a perfect map is 1, never a rounding error more."""

from __future__ import annotations

import numpy as np

from adbench.evaluation.metrics.pixel import pixel_aupro, pixel_metrics


def test_aupro_of_a_perfect_map_is_1_not_more():
    """Three 1-pixel regions found before any defect-free pixel: PRO is 1 at every FPR, but the sums of
    1/3 and of the FPR steps round to 1.0000000000000002 unless clipped."""
    masks = np.zeros((1, 8, 8), np.uint8)
    masks[0, 0, [0, 2, 4]] = 1
    maps = np.where(masks > 0, 2.0, np.arange(64).reshape(1, 8, 8) / 64).astype(np.float32)
    assert pixel_aupro(maps, masks, 0.3) == 1.0
    assert pixel_metrics(maps, masks)["pixel_aupro_0.3"] == 1.0
