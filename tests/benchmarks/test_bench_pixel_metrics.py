"""Pixel AUROC + AP + exact AU-PRO together, against scikit-learn's roc_auc_score alone, same pixels.

The target is one MVTec AD category at full resolution (160 maps of 1024×1024, hundreds of regions):
ADBENCH_BENCH_FULL=1 nox -s bench. By default a quarter-side version (160 maps of 256×256) keeps the
session short; the ratio of the two timings in one run is what to compare. Peak memory of each, over
the size of the maps, is stored in the benchmark's extra_info (tracemalloc sees numpy's allocations).
"""

import os
import tracemalloc

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from adbench.metrics.pixel import label_regions, pixel_metrics

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
    return maps, masks, label_regions(masks)


def _peak_ratio(function, maps) -> float:
    tracemalloc.start()
    function()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / maps.nbytes


@pytest.mark.benchmark(group="pixel-metrics")
def test_adbench_auroc_ap_aupro(benchmark, category):
    maps, masks, regions = category
    benchmark.extra_info["regions"] = regions.count
    benchmark.extra_info["pixels"] = maps.size
    benchmark.extra_info["peak_memory_over_maps"] = _peak_ratio(
        lambda: pixel_metrics(maps, masks, regions), maps
    )
    metrics = benchmark.pedantic(pixel_metrics, args=(maps, masks, regions), rounds=3, iterations=1)
    assert metrics["pixel_auroc"] > 0.5


@pytest.mark.benchmark(group="pixel-metrics")
def test_scikit_learn_roc_auc_score(benchmark, category):
    maps, masks, _ = category
    benchmark.extra_info["peak_memory_over_maps"] = _peak_ratio(
        lambda: roc_auc_score(masks.ravel(), maps.ravel()), maps
    )
    auroc = benchmark.pedantic(roc_auc_score, args=(masks.ravel(), maps.ravel()), rounds=3, iterations=1)
    assert auroc == pytest.approx(pixel_metrics(maps, masks)["pixel_auroc"], abs=1e-9)
