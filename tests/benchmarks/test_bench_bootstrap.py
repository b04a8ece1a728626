"""The stratified bootstrap of a cell's image metrics (2,000 resamples) on the largest MVTec AD test set
(screw: 41 defect-free and 119 anomalous images); the goal is under a second per cell."""

import numpy as np
import pytest

from adbench.evaluation.bootstrap import image_intervals


@pytest.mark.benchmark(group="bootstrap")
def test_bootstrap_of_a_cells_image_metrics(benchmark):
    rng = np.random.default_rng(0)
    labels = np.array([0] * 41 + [1] * 119)
    scores = rng.normal(size=len(labels)) + labels
    intervals = benchmark.pedantic(image_intervals, args=(labels, scores, 0), rounds=5, iterations=1)
    benchmark.extra_info["seconds_per_cell"] = benchmark.stats.stats.median
    assert set(intervals) == {"image_auroc", "image_max_balanced_accuracy", "image_ap", "image_f1_max"}
