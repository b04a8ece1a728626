"""Pixel metrics against scikit-learn, a brute-force per-threshold AU-PRO, and hand-computed cases."""

import itertools
from collections import deque

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from adbench.evaluation.metrics import pixel
from adbench.evaluation.metrics.image import MetricError
from adbench.evaluation.metrics.pixel import (
    PRO_LIMITS,
    aupimo_per_image,
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
@given(category, st.sampled_from([*PRO_LIMITS, 1.0]))
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
    precision, recall, _ = precision_recall_curve(truth, scores)
    with np.errstate(invalid="ignore"):
        f1 = np.nanmax(2 * precision * recall / (precision + recall))
    assert metrics["pixel_f1_max"] == pytest.approx(f1, abs=1e-9)
    for limit in PRO_LIMITS:  # one walk over the full sort for all limits; the partial sort for one
        assert metrics[f"pixel_aupro_{limit:g}"] == pytest.approx(pixel_aupro(maps, masks, limit), abs=1e-12)


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


@settings(max_examples=200, deadline=None)
@given(
    arrays(np.float32, st.integers(1, 60), elements=st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0])),
    st.sampled_from([*PRO_LIMITS, 1e-4, 0.5, 1.0]),
)
def test_the_partial_sort_equals_the_tail_of_the_full_sort(values, fpr):
    full = np.sort(values)
    assert np.array_equal(pixel.sorted_tail(values.copy(), fpr), full[pixel._tail_start(full, fpr) :])


def test_partial_sort_of_continuous_scores_keeps_the_crossing_and_its_ties():
    values = np.arange(1000, dtype=np.float32)
    values[890:905] = 900.0  # ties around the 0.1 quantile of the top
    tail = pixel.sorted_tail(np.random.default_rng(0).permutation(values), 0.1)
    # FPR(>= 900) = 110 / 1000 is the first above 0.1: the tail starts at the whole run of 900s.
    assert tail[0] == 900.0 and len(tail) == 110 and np.all(np.diff(tail) >= 0)


def brute_force_aupimo(maps, masks, labels, low=1e-5, high=1e-4):
    """Per image, every threshold tried in turn: mean per-image FPR over the normal images, TPR of the
    image's defect pixels, then the trapezoid in log FPR clipped to [low, high]."""
    maps = maps.astype(np.float32)
    normal = [m for m, label in zip(maps, labels, strict=True) if label == 0]
    points = [(0.0, None)]
    for t in sorted(set(maps.ravel().tolist()), reverse=True):
        fpr = float(np.mean([np.mean(m >= t) for m in normal]))
        points.append((fpr, t))
        if fpr > high:
            break
    result = []
    for image, mask in zip(maps, masks, strict=True):
        defect = image[mask != 0]
        if not len(defect):
            result.append(np.nan)
            continue
        curve = [(x, 0.0 if t is None else float(np.mean(defect >= t))) for x, t in points]
        area = 0.0
        for (x0, y0), (x1, y1) in itertools.pairwise(curve):
            if x1 <= low or x0 >= high or x1 == x0:
                continue
            if x0 == 0:
                return np.full(len(maps), np.nan)  # no threshold resolves FPR = low
            a, b = max(np.log(x0), np.log(low)), min(np.log(x1), np.log(high))
            y_at = lambda z, x0=x0, y0=y0, x1=x1, y1=y1: y0 + (y1 - y0) * (z - np.log(x0)) / np.log(x1 / x0)  # noqa: E731
            area += 0.5 * (y_at(a) + y_at(b)) * (b - a)
        result.append(area / np.log(high / low))
    return np.array(result)


@pytest.mark.parametrize("seed", range(4))
def test_aupimo_matches_brute_force_on_tie_heavy_maps(seed):
    rng = np.random.default_rng(seed)
    # Four defect-free images of 160 x 160 (102,400 pixels: FPR 1e-5 is one pixel) and three defective.
    maps = rng.random((7, 160, 160), dtype=np.float32)
    below_top = np.sort(maps[:4].ravel())[:-50]
    maps[:4, :2, :] = rng.choice(below_top, (4, 2, 160))  # repeated values among normal pixels
    masks = np.zeros(maps.shape, np.uint8)
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    masks[4, 10:30, 10:40] = masks[5, 50:52, :] = masks[6, 100:140, 100:110] = 1
    top = np.sort(maps[:4].ravel())[-30:]  # the normal images' highest scores, where AUPIMO lives
    for image, count in ((4, 300), (5, 100), (6, 200)):
        defect = maps[image][masks[image] != 0]
        chosen = rng.choice(defect.size, count, replace=False)
        defect[chosen] = rng.choice(top, count)  # ties with the thresholds themselves
        maps[image][masks[image] != 0] = defect
    maps[:4].reshape(-1)[rng.choice(4 * 160 * 160, 8, replace=False)] = top[-3]  # ties at the top
    expected = brute_force_aupimo(maps, masks, labels)
    assert np.isfinite(expected[4:]).all() and np.isnan(expected[:4]).all()
    assert np.allclose(aupimo_per_image(maps, masks, labels), expected, atol=1e-9, equal_nan=True)


def test_aupimo_by_hand_and_where_it_is_undefined():
    masks = np.zeros((3, 400, 500), np.uint8)
    masks[2, :10, :10] = 1
    maps = np.zeros(masks.shape, np.float32)  # two normal images: 400,000 pixels
    maps[0, 0, :40] = np.arange(1, 41)  # FPR(>= 40 - k) = (k + 1) / 400,000
    # Half the defect pixels sit at 36: found from FPR 5 / 400,000 = 1.25e-5 on; the rest never.
    maps[2, :5, :10] = 36.0
    lo = np.log(1.25e-5)
    # The curve is 0 at FPR 1e-5 (threshold 37, 4 pixels), rises to 0.5 at 1.25e-5 and stays there.
    expected = (0.5 * 0.5 * (lo - np.log(1e-5)) + 0.5 * (np.log(1e-4) - lo)) / np.log(10)
    result = aupimo_per_image(maps, masks, [0, 0, 1])
    assert np.isnan(result[:2]).all() and result[2] == pytest.approx(expected, abs=1e-12)
    small = (maps[:, :100, :100], masks[:, :100, :100], [0, 0, 1])  # 20,000 normal pixels: 1e-5 unseen
    assert np.isnan(aupimo_per_image(*small)).all()
    assert np.isnan(aupimo_per_image(maps, masks, [1, 1, 1])).all(), "no defect-free image"
