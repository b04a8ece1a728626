import numpy as np
import pytest

from adbench.evaluation.metrics.image import MetricError
from adbench.evaluation.metrics.threshold import evaluate_threshold, largest_region, validation_threshold


def test_largest_region_uses_eight_connectivity():
    maps = np.zeros((2, 5, 5), np.float32)
    maps[0, [0, 1, 2], [0, 1, 2]] = 1.0  # a diagonal: one region of 3
    maps[1, 0, 0] = maps[1, 4, 4] = 1.0  # two regions of 1
    assert largest_region(maps, 0.5).tolist() == [3, 1]


def test_threshold_is_the_smallest_validation_value_below_the_area():
    maps = np.zeros((2, 6, 6), np.float32)
    maps[0, :2, :2] = 0.8  # a 4-pixel blob
    maps[0, 4, 4] = 0.9  # a single hot pixel
    maps[1, 3, :3] = 0.5  # a 3-pixel streak
    # Above 0 and above 0.5 the largest region is the 4-pixel blob; above 0.8 only the hot pixel is left.
    assert validation_threshold(maps, min_defect_area=4) == pytest.approx(0.8)
    assert validation_threshold(maps, min_defect_area=5) == pytest.approx(0.0)
    assert validation_threshold(maps, min_defect_area=1) == pytest.approx(0.9)
    # The brute-force answer: scan every candidate from the bottom.
    for area in range(1, 8):
        expected = next(t for t in np.unique(maps) if largest_region(maps, float(t)).max() < area)
        assert validation_threshold(maps, area) == pytest.approx(expected)


def test_test_set_rates_at_the_threshold():
    maps = np.zeros((4, 6, 6), np.float32)
    maps[0, :2, :2] = 1.0  # anomalous, found (region of 4)
    maps[1, 0, 0] = 1.0  # anomalous, region too small: missed
    maps[2, 2:4, 2:4] = 1.0  # normal, false alarm
    result = evaluate_threshold(maps, [1, 1, 0, 0], threshold=0.5, min_defect_area=3)
    assert (result.tpr, result.tnr, result.balanced_accuracy) == (0.5, 0.5, 0.5)


def test_bad_validation_maps():
    with pytest.raises(MetricError, match="NaN"):
        validation_threshold(np.full((1, 2, 2), np.nan), 1)
    with pytest.raises(MetricError, match="non-empty"):
        validation_threshold(np.zeros((0, 2, 2)), 1)
