"""MVTec LOCO's AU-sPRO against hand-computed cases and a brute-force curve."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from adbench.evaluation.metrics.spro import Defects, aupro_saturated, saturation_area, spro_metrics

# One image of 10 pixels: a 4-pixel defect (pixels 0-3) and 6 defect-free pixels.
SCORES = np.array([[[0.9, 0.8, 0.1, 0.1, 0.95, 0.5, 0.4, 0.3, 0.2, 0.05]]], dtype=np.float32)


def _defects(
    pixel_lists: list[list[int]], saturations: list[float], images: list[int] | None = None
) -> Defects:
    lengths = [len(p) for p in pixel_lists]
    return Defects(
        np.array(images or [0] * len(pixel_lists), dtype=np.int64),
        np.concatenate([np.array(p, dtype=np.int64) for p in pixel_lists]),
        np.r_[0, np.cumsum(lengths)].astype(np.int64),
        np.array(saturations, dtype=np.float64),
    )


def _union(shape: tuple[int, ...], defects: Defects) -> np.ndarray:
    masks = np.zeros(shape, dtype=np.uint8)
    flat = masks.reshape(len(masks), -1)
    for d in range(len(defects)):
        flat[defects.image[d], defects.pixels[defects.offsets[d] : defects.offsets[d + 1]]] = 1
    return masks


def test_absolute_saturation_counts_a_defect_found_once_enough_pixels_are():
    defects = _defects([[0, 1, 2, 3]], [saturation_area(4, 2, relative=False)])
    # FPR reaches 1/6 at 0.95 with nothing found; at 0.8 two pixels saturate the defect: sPRO 1.
    area = aupro_saturated(SCORES, _union(SCORES.shape, defects), defects, limits=(0.3,))[0.3]
    assert area == pytest.approx((0.3 - 1 / 6) / 0.3)


def test_relative_saturation_needs_the_share_of_the_area():
    defects = _defects([[0, 1, 2, 3]], [saturation_area(4, 1.0, relative=True)])
    area = aupro_saturated(SCORES, _union(SCORES.shape, defects), defects, limits=(0.3,))[0.3]
    assert area == pytest.approx(0.5 * (0.3 - 1 / 6) / 0.3)  # half the defect found from FPR 1/6 on


def test_overlapping_defects_each_count_and_their_pixels_are_never_false_positives():
    defects = _defects([[0, 1, 2, 3], [2, 3]], [2.0, 2.0])
    # The second defect (scores 0.1) is not found before FPR 0.3; the mean is half the first's.
    area = aupro_saturated(SCORES, _union(SCORES.shape, defects), defects, limits=(0.3,))[0.3]
    assert area == pytest.approx(0.5 * (0.3 - 1 / 6) / 0.3)


def test_absolute_saturation_is_capped_at_the_defect_area():
    assert saturation_area(3, 50, relative=False) == 3
    assert saturation_area(100, 50, relative=False, scale=0.25) == 12.5
    assert saturation_area(100, 0.5, relative=True) == 50


def _brute_force(maps: np.ndarray, masks: np.ndarray, defects: Defects, limit: float) -> float:
    flat = maps.reshape(len(maps), -1)
    negatives = maps[masks == 0]
    points = [(0.0, 0.0)]
    for t in sorted(set(maps.ravel().tolist()), reverse=True):
        found = []
        for d in range(len(defects)):
            pixels = flat[defects.image[d], defects.pixels[defects.offsets[d] : defects.offsets[d + 1]]]
            found.append(min(np.count_nonzero(pixels >= t) / defects.saturation[d], 1.0))
        points.append((float(np.mean(negatives >= t)), float(np.mean(found))))
    area = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 >= limit:
            break
        if x1 > limit:
            y1 = y0 + (limit - x0) / (x1 - x0) * (y1 - y0)
            x1 = limit
        area += 0.5 * (y0 + y1) * (x1 - x0)
    return area / limit


@pytest.mark.parametrize("seed", range(4))
def test_matches_a_brute_force_curve(seed):
    rng = np.random.default_rng(seed)
    maps = np.round(rng.random((3, 6, 6)), 2).astype(np.float32)  # rounded: ties
    pixel_lists = [list(rng.choice(36, size=int(rng.integers(2, 9)), replace=False)) for _ in range(4)]
    pixel_lists.append(pixel_lists[0][:2])  # overlapping the first
    images = [0, 1, 1, 2, 0]
    saturations = [saturation_area(len(p), float(rng.choice([0.3, 1.0])), True) for p in pixel_lists[:3]]
    saturations += [saturation_area(len(p), 3, False) for p in pixel_lists[3:]]
    defects = _defects(pixel_lists, saturations, images)
    for d in range(len(defects)):  # maps on defects a little higher, so the curve is not trivial
        maps[images[d]].reshape(-1)[pixel_lists[d]] += 0.3
    masks = _union(maps.shape, defects)
    areas = aupro_saturated(maps, masks, defects, limits=(0.05, 0.3))
    for limit in (0.05, 0.3):
        assert areas[limit] == pytest.approx(_brute_force(maps, masks, defects, limit), abs=1e-9)


def test_per_type_results_and_their_mean():
    maps = np.concatenate([SCORES, SCORES, SCORES])  # good, logical, structural
    defects = _defects([[0, 1, 2, 3], [0, 1, 2, 3]], [2.0, 4.0], images=[1, 2])
    masks = _union(maps.shape, defects)
    masks[0] = 0
    metrics = spro_metrics(
        maps, masks, defects, ["good", "logical_anomalies", "structural_anomalies"], np.array([0, 1, 1])
    )
    # Each type with the defect-free image: the defect-free image's pixels join the negatives.
    logical = aupro_saturated(maps, masks, defects, np.array([True, True, False]), limits=(0.05, 0.3))
    assert metrics["pixel_auspro_0.3_logical"] == logical[0.3]
    assert metrics["pixel_auspro_0.3"] == pytest.approx(
        (metrics["pixel_auspro_0.3_logical"] + metrics["pixel_auspro_0.3_structural"]) / 2
    )
    assert metrics["pixel_auspro_0.3_logical"] > metrics["pixel_auspro_0.3_structural"]
    assert set(metrics) == {
        f"pixel_auspro_{limit}{part}" for limit in ("0.05", "0.3") for part in ("", "_logical", "_structural")
    }
