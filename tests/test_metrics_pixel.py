"""Pixel metrics against scikit-learn, a brute-force per-threshold AU-PRO, and hand-computed cases."""

import itertools
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import average_precision_score, roc_auc_score

from adbench.metrics import pixel
from adbench.metrics.image import MetricError
from adbench.metrics.pixel import (
    label_regions,
    pixel_aupro,
    pixel_auroc,
    pixel_average_precision,
    pixel_iou,
    pixel_metrics,
)


def _regions_by_flood_fill(mask: np.ndarray) -> list[list[tuple[int, int]]]:
    """8-connected components, written independently of scipy."""
    seen = np.zeros(mask.shape, bool)
    regions = []
    for start in zip(*np.nonzero(mask), strict=True):
        if seen[start]:
            continue
        queue, region = deque([start]), []
        seen[start] = True
        while queue:
            y, x = queue.popleft()
            region.append((y, x))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = y + dy, x + dx
                    inside = 0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1]
                    if inside and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
        regions.append(region)
    return regions


def brute_force_aupro(maps: np.ndarray, masks: np.ndarray, max_fpr: float) -> float:
    maps = maps.astype(np.float32)
    regions = [(i, r) for i, mask in enumerate(masks) for r in _regions_by_flood_fill(mask != 0)]
    normal = maps[masks == 0]
    points = [(0.0, 0.0)]
    for t in sorted(set(maps.ravel().tolist()), reverse=True):
        fpr = float(np.mean(normal >= t))
        pro = np.mean([np.mean([maps[i][p] >= t for p in region]) for i, region in regions])
        points.append((fpr, float(pro)))
    points.append((1.0, 1.0))
    area = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 >= max_fpr:
            break
        if x1 > max_fpr:
            y1 = y0 + (y1 - y0) * (max_fpr - x0) / (x1 - x0)
            x1 = max_fpr
        area += 0.5 * (y0 + y1) * (x1 - x0)
    return area / max_fpr


def _category(draw_maps, draw_masks):
    masks = draw_masks
    if not masks.any() or masks.all():
        masks = masks.copy()
        masks.flat[0] = 1 - masks.flat[0]
    return draw_maps, masks


category = st.tuples(
    arrays(np.float32, (3, 6, 7), elements=st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])),
    arrays(np.uint8, (3, 6, 7), elements=st.sampled_from([0, 0, 1])),
).map(lambda pair: _category(*pair))


@settings(max_examples=150, deadline=None)
@given(category, st.sampled_from([0.3, 0.05, 1.0]))
def test_aupro_matches_brute_force_with_ties(data, max_fpr):
    maps, masks = data
    expected = brute_force_aupro(maps, masks, max_fpr)
    assert pixel_aupro(maps, masks, max_fpr) == pytest.approx(expected, abs=1e-6)


@settings(max_examples=150, deadline=None)
@given(category)
def test_auroc_and_ap_match_scikit_learn(data):
    maps, masks = data
    truth, scores = (masks.ravel() != 0).astype(int), maps.ravel()
    metrics = pixel_metrics(maps, masks)
    assert metrics["pixel_auroc"] == pytest.approx(roc_auc_score(truth, scores), abs=1e-9)
    assert metrics["pixel_ap"] == pytest.approx(average_precision_score(truth, scores), abs=1e-9)
    assert metrics["pixel_aupro_0.3"] == pytest.approx(pixel_aupro(maps, masks), abs=1e-12)


def test_continuous_scores_match_scikit_learn():
    rng = np.random.default_rng(0)
    masks = np.zeros((4, 32, 32), np.uint8)
    masks[1, 5:12, 5:9] = 1
    masks[2, 20:30, 3:5] = 1
    maps = rng.random((4, 32, 32), dtype=np.float32) + masks * 0.3
    truth, scores = masks.ravel(), maps.ravel()
    assert pixel_auroc(maps, masks) == pytest.approx(roc_auc_score(truth, scores), abs=1e-9)
    expected_ap = average_precision_score(truth, scores)
    assert pixel_average_precision(maps, masks) == pytest.approx(expected_ap, abs=1e-9)
    assert pixel_aupro(maps, masks) == pytest.approx(brute_force_aupro(maps, masks, 0.3), abs=1e-6)


def test_region_fully_found_at_zero_fpr_scores_one():
    masks = np.zeros((2, 8, 8), np.uint8)
    masks[0, 2:4, 2:5] = 1
    maps = np.where(masks == 1, 0.9, 0.1).astype(np.float32)
    maps[1, 0, 0] = 0.5  # normal pixels vary, all below the region
    assert pixel_aupro(maps, masks) == pytest.approx(1.0)
    assert pixel_auroc(maps, masks) == pytest.approx(1.0)
    assert pixel_average_precision(maps, masks) == pytest.approx(1.0)


def test_constant_map():
    masks = np.zeros((2, 5, 5), np.uint8)
    masks[0, 1:3, 1:3] = 1
    maps = np.full((2, 5, 5), 0.7, np.float32)
    # One threshold: the curve jumps from (0, 0) straight to (1, 1); area to 0.3 is 0.045, / 0.3.
    assert pixel_aupro(maps, masks) == pytest.approx(0.15)
    assert pixel_auroc(maps, masks) == pytest.approx(0.5)
    assert pixel_average_precision(maps, masks) == pytest.approx(4 / 50)


def test_single_pixel_defects_each_count_as_a_region():
    masks = np.zeros((1, 6, 6), np.uint8)
    masks[0, 0, 0] = masks[0, 0, 5] = masks[0, 5, 5] = 1  # three separate one-pixel regions
    maps = np.zeros((1, 6, 6), np.float32)
    maps[0, 0, 0], maps[0, 0, 5], maps[0, 5, 5] = 3.0, 2.0, -1.0
    assert label_regions(masks).count == 3
    # Two of three regions are found at FPR 0; the third only once every normal pixel is positive.
    # Curve: (0,0) (0,1/3) (0,2/3) (1, 2/3) (1,1) -> area up to 0.3 = 0.3 × 2/3.
    assert pixel_aupro(maps, masks) == pytest.approx(2 / 3)


def test_diagonal_pixels_are_one_region():
    masks = np.zeros((1, 4, 4), np.uint8)
    masks[0, 0, 0] = masks[0, 1, 1] = masks[0, 2, 2] = 1
    regions = label_regions(masks)
    assert regions.count == 1 and regions.sizes.tolist() == [3]


def test_iou_at_a_threshold():
    masks = np.zeros((1, 4, 4), np.uint8)
    masks[0, 0, :2] = 1
    maps = np.zeros((1, 4, 4), np.float32)
    maps[0, 0, 1:3] = 1.0
    assert pixel_iou(maps, masks, threshold=0.5) == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("maps", "masks", "message"),
    [
        (np.zeros((1, 3, 3)), np.zeros((1, 3, 3)), "both defect and defect-free"),
        (np.full((1, 2, 2), np.nan), np.eye(2)[None], "NaN"),
        (np.zeros((1, 3, 3)), np.zeros((1, 3, 4)), "must both be"),
    ],
)
def test_bad_inputs(maps, masks, message):
    with pytest.raises(MetricError, match=message):
        pixel_metrics(maps, masks)


@settings(max_examples=60, deadline=None)
@given(category)
def test_aupro_is_the_same_when_processed_in_small_chunks(data):
    maps, masks = data
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pixel, "_AUPRO_CHUNK", 2)
        assert pixel_aupro(maps, masks) == pytest.approx(brute_force_aupro(maps, masks, 0.3), abs=1e-6)
