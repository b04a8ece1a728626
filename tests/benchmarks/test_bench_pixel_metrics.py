"""Every pixel metric together (AUROC, AP, F1-max, AU-PRO at four limits, AUPIMO) against scikit-learn's
roc_auc_score alone on the same pixels, their bootstrap intervals (200 resamples of whole images) beside
them, and the partial sort that AU-PRO alone needs against a full sort.

The target is one MVTec AD category at full resolution (160 maps of 1024×1024, hundreds of regions):
ADBENCH_BENCH_FULL=1 nox -s bench. By default a quarter-side version (160 maps of 256×256) keeps the
session short; the ratio of the timings in one run is what to compare. Peak memory of each, over the
size of the maps, is stored in the benchmark's extra_info (tracemalloc sees numpy's allocations).
"""

import os
import tracemalloc

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from adbench.evaluation.evaluate import map_metrics
from adbench.evaluation.metrics import pixel
from adbench.evaluation.metrics.pixel import label_regions, pixel_metrics
from adbench.evaluation.pixel_bootstrap import pixel_intervals

SIDE = 1024 if os.environ.get("ADBENCH_BENCH_FULL") else 256
COUNT = 160


@pytest.fixture(scope="module")
def category():
    rng = np.random.default_rng(0)
    masks = np.zeros((COUNT, SIDE, SIDE), np.uint8)
    y, x = np.ogrid[:SIDE, :SIDE]
    for mask in masks[COUNT // 4 :]:  # a quarter of the images are defect-free
        for _ in range(rng.integers(1, 6)):
            cy, cx = rng.integers(0, SIDE, 2)
            ry, rx = rng.integers(SIDE // 64, SIDE // 10, 2)
            mask[((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1] = 1
    maps = rng.random(masks.shape, dtype=np.float32)
    maps += 0.3 * masks
    labels = (np.arange(COUNT) >= COUNT // 4).astype(np.int64)
    return maps, masks, label_regions(masks), labels


def _peak_ratio(function, maps) -> float:
    tracemalloc.start()
    function()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / maps.nbytes


@pytest.mark.benchmark(group="pixel-metrics")
def test_adbench_every_pixel_metric(benchmark, category):
    maps, masks, regions, labels = category
    benchmark.extra_info["regions"] = regions.count
    benchmark.extra_info["pixels"] = maps.size
    benchmark.extra_info["peak_memory_over_maps"] = _peak_ratio(
        lambda: map_metrics(labels, maps, masks, regions), maps
    )
    evaluation = benchmark.pedantic(map_metrics, args=(labels, maps, masks, regions), rounds=3, iterations=1)
    assert evaluation.metrics["pixel_auroc"] > 0.5 and np.isfinite(evaluation.metrics["pixel_aupimo"])


@pytest.mark.benchmark(group="pixel-metrics")
def test_pixel_intervals_200_resamples_of_whole_images(benchmark, category):
    """The bootstrap of every pixel metric beside the metrics themselves (the group's other rows)."""
    maps, masks, regions, labels = category
    exact = map_metrics(labels, maps, masks, regions)
    benchmark.extra_info["peak_memory_over_maps"] = _peak_ratio(
        lambda: pixel_intervals(labels, maps, masks, regions, exact.metrics, 0, exact.aupimo), maps
    )
    intervals = benchmark.pedantic(
        pixel_intervals,
        args=(labels, maps, masks, regions, exact.metrics, 0, exact.aupimo),
        rounds=3,
        iterations=1,
    )
    low, high = intervals["pixel_auroc"]
    assert low <= exact.metrics["pixel_auroc"] <= high


@pytest.mark.benchmark(group="pixel-metrics")
def test_scikit_learn_roc_auc_score(benchmark, category):
    maps, masks, _, _ = category
    benchmark.extra_info["peak_memory_over_maps"] = _peak_ratio(
        lambda: roc_auc_score(masks.ravel(), maps.ravel()), maps
    )
    auroc = benchmark.pedantic(roc_auc_score, args=(masks.ravel(), maps.ravel()), rounds=3, iterations=1)
    assert auroc == pytest.approx(pixel_metrics(maps, masks)["pixel_auroc"], abs=1e-9)


@pytest.fixture(scope="module")
def defect_free_pixels(category):
    maps, masks, _, _ = category
    return maps[masks == 0]


@pytest.mark.benchmark(group="aupro-sort")
def test_partial_sort_of_the_defect_free_pixels_for_aupro_at_0_3(benchmark, defect_free_pixels):
    tail = benchmark.pedantic(
        lambda: pixel.sorted_tail(defect_free_pixels.copy(), 0.3), rounds=3, iterations=1
    )
    assert len(tail) >= 0.3 * len(defect_free_pixels)


@pytest.mark.benchmark(group="aupro-sort")
def test_full_sort_of_the_defect_free_pixels(benchmark, defect_free_pixels):
    def full_sort():
        values = defect_free_pixels.copy()
        values.sort()
        return values[pixel._tail_start(values, 0.3) :]

    tail = benchmark.pedantic(full_sort, rounds=3, iterations=1)
    assert np.array_equal(tail, pixel.sorted_tail(defect_free_pixels.copy(), 0.3))
