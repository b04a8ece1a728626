"""The stratified bootstrap of image metrics: the same values as resampling by hand, and its coverage."""

import numpy as np
import pytest
from scipy.stats import norm

from adbench.evaluation.bootstrap import (
    image_intervals,
    resampled_image_metrics,
    resampled_threshold_metrics,
    stratified_counts,
    threshold_intervals,
)
from adbench.evaluation.evaluate import image_metrics
from adbench.evaluation.metrics.threshold import evaluate_threshold


def test_every_resample_equals_the_metrics_of_the_resampled_test_set_with_ties():
    rng = np.random.default_rng(3)
    labels = np.array([0] * 13 + [1] * 9)
    scores = rng.integers(0, 6, len(labels)).astype(float)  # few values: ties everywhere
    normal_counts, anomalous_counts = stratified_counts(labels, 300, np.random.default_rng(0))
    assert (normal_counts.sum(axis=1) == 13).all() and (anomalous_counts.sum(axis=1) == 9).all()
    fast = resampled_image_metrics(labels, scores, normal_counts, anomalous_counts)
    normal, anomalous = scores[labels == 0], scores[labels == 1]
    for b in range(300):  # the slow reference: build each resampled test set and score it
        resampled = np.r_[np.repeat(normal, normal_counts[b]), np.repeat(anomalous, anomalous_counts[b])]
        expected = image_metrics(np.r_[np.zeros(13, int), np.ones(9, int)], resampled)
        for metric, value in expected.items():
            assert fast[metric][b] == pytest.approx(value, abs=1e-12), (metric, b)


def test_every_threshold_resample_equals_the_protocol_on_the_resampled_test_set():
    rng = np.random.default_rng(5)
    labels = np.array([0] * 11 + [1] * 7)
    maps = np.zeros((len(labels), 4, 4), np.float32)
    found = rng.random(len(labels)) < np.where(labels == 1, 0.7, 0.2)  # detections and false alarms
    maps[found, :2, :2] = 1.0
    protocol = evaluate_threshold(maps, labels, threshold=0.5, min_defect_area=3)
    normal_counts, anomalous_counts = stratified_counts(labels, 200, np.random.default_rng(1))
    fast = resampled_threshold_metrics(labels, protocol.anomalous, normal_counts, anomalous_counts)
    for b in range(200):  # the slow reference: the protocol run again on each resampled test set
        drawn = np.r_[np.repeat(np.flatnonzero(labels == 0), normal_counts[b]),
                      np.repeat(np.flatnonzero(labels == 1), anomalous_counts[b])]  # fmt: skip
        again = evaluate_threshold(maps[drawn], labels[drawn], threshold=0.5, min_defect_area=3)
        assert fast["threshold_tpr"][b] == pytest.approx(again.tpr, abs=1e-12)
        assert fast["threshold_tnr"][b] == pytest.approx(again.tnr, abs=1e-12)
        assert fast["threshold_balanced_accuracy"][b] == pytest.approx(again.balanced_accuracy, abs=1e-12)
    low, high = threshold_intervals(labels, protocol.anomalous, seed=0)["threshold_balanced_accuracy"]
    assert low < protocol.balanced_accuracy < high


def test_intervals_are_reproducible_from_the_seed_and_bracket_the_estimate():
    rng = np.random.default_rng(0)
    labels = np.array([0] * 40 + [1] * 30)
    scores = rng.normal(size=70) + labels
    first = image_intervals(labels, scores, seed=7)
    assert first == image_intervals(labels, scores, seed=7)
    assert first != image_intervals(labels, scores, seed=8)
    estimate = image_metrics(labels, scores)
    for metric, (low, high) in first.items():
        assert low < estimate[metric] < high, metric


def test_auroc_intervals_cover_the_true_value_about_95_percent_of_the_time():
    # Normal scores N(0, 1), anomalous N(1, 1): the true AUROC is Phi(1 / sqrt 2) = 0.760.
    truth = norm.cdf(1 / np.sqrt(2))
    rng = np.random.default_rng(42)
    labels = np.array([0] * 50 + [1] * 50)
    covered = 0
    for trial in range(200):
        scores = rng.normal(size=100) + labels
        low, high = image_intervals(labels, scores, seed=trial)["image_auroc"]
        covered += low <= truth <= high
    # 200 intervals at 95 %: 190 expected, binomial sd 3.1; three sd either side.
    assert 181 <= covered <= 199, covered
