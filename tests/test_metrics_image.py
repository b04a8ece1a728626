import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from adbench.evaluation.metrics.image import (
    MetricError,
    average_precision,
    image_auroc,
    max_balanced_accuracy,
    max_f1,
)


def _brute_force_balanced_accuracy(labels: np.ndarray, scores: np.ndarray) -> float:
    best = 0.0
    for threshold in [*np.unique(scores), np.inf]:
        predicted = scores >= threshold
        tpr = (predicted & (labels == 1)).sum() / (labels == 1).sum()
        tnr = (~predicted & (labels == 0)).sum() / (labels == 0).sum()
        best = max(best, (tpr + tnr) / 2)
    return float(best)


labelled_scores = st.integers(4, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda ys: 0 < sum(ys) < len(ys)),
        # Few distinct values, so ties are everywhere.
        st.lists(st.integers(0, 5).map(float), min_size=n, max_size=n),
    )
)


@settings(max_examples=200, deadline=None)
@given(labelled_scores)
def test_auroc_matches_scikit_learn_with_ties(data):
    labels, scores = map(np.asarray, data)
    assert image_auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(labelled_scores)
def test_max_balanced_accuracy_matches_brute_force_and_youden(data):
    labels, scores = map(np.asarray, data)
    value = max_balanced_accuracy(labels, scores)
    assert value == pytest.approx(_brute_force_balanced_accuracy(labels, scores), abs=1e-12)
    fpr, tpr, _ = roc_curve(labels, scores)
    assert value == pytest.approx((1 + np.max(tpr - fpr)) / 2, abs=1e-12)


def test_hand_computed_case_with_ties():
    labels = [0, 0, 0, 1, 1]
    scores = [0.1, 0.5, 0.5, 0.5, 0.9]
    # Pairs (anomalous, normal): 0.9 beats all three (3); 0.5 beats 0.1 (1) and ties two 0.5s (2 × 0.5).
    assert image_auroc(labels, scores) == pytest.approx(5 / 6)
    # t = 0.9: TPR 1/2, TNR 1 -> 0.75; t = 0.5: TPR 1, TNR 1/3 -> 2/3.
    assert max_balanced_accuracy(labels, scores) == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("scores", "auroc", "balanced"),
    [
        ([0.0, 0.1, 0.8, 0.9], 1.0, 1.0),  # perfect
        ([0.8, 0.9, 0.0, 0.1], 0.0, 0.5),  # inverted: no threshold helps
        ([0.3, 0.3, 0.3, 0.3], 0.5, 0.5),  # constant
    ],
)
def test_extreme_cases(scores, auroc, balanced):
    labels = [0, 0, 1, 1]
    assert image_auroc(labels, scores) == pytest.approx(auroc)
    assert max_balanced_accuracy(labels, scores) == pytest.approx(balanced)


@pytest.mark.parametrize("metric", [image_auroc, max_balanced_accuracy])
@pytest.mark.parametrize(
    ("labels", "scores", "message"),
    [
        ([0, 0, 0], [0.1, 0.2, 0.3], "only normal"),
        ([1, 1], [0.1, 0.2], "only anomalous"),
        ([0, 1], [0.1, float("nan")], "NaN"),
        ([0, 1, 1], [0.1, 0.2], "equal length"),
        ([0, 2], [0.1, 0.2], "0 \\(normal\\) or 1"),
    ],
)
def test_undefined_inputs_raise_clear_errors(metric, labels, scores, message):
    with pytest.raises(MetricError, match=message):
        metric(labels, scores)


def _brute_force_max_f1(labels: np.ndarray, scores: np.ndarray) -> float:
    best = 0.0
    for threshold in np.unique(scores):
        predicted = scores >= threshold
        tp = (predicted & (labels == 1)).sum()
        fp = (predicted & (labels == 0)).sum()
        fn = (~predicted & (labels == 1)).sum()
        best = max(best, 2 * tp / (2 * tp + fp + fn))
    return float(best)


@settings(max_examples=200, deadline=None)
@given(labelled_scores)
def test_average_precision_and_max_f1_match_scikit_learn_and_brute_force_with_ties(data):
    labels, scores = map(np.asarray, data)
    assert average_precision(labels, scores) == pytest.approx(
        average_precision_score(labels, scores), abs=1e-12
    )
    precision, recall, _ = precision_recall_curve(labels, scores)
    with np.errstate(invalid="ignore"):
        sklearn_f1 = np.nanmax(2 * precision * recall / (precision + recall))
    assert max_f1(labels, scores) == pytest.approx(sklearn_f1, abs=1e-12)
    assert max_f1(labels, scores) == pytest.approx(_brute_force_max_f1(labels, scores), abs=1e-12)


def test_average_precision_and_max_f1_by_hand():
    # Descending: 0.8 (anomalous), 0.4 (normal), 0.35 (anomalous), 0.1 (normal).
    # AP = 1/2 × 1 + 1/2 × 2/3; F1 at t = 0.8 is 2/3, at t = 0.35 it is 2·2/(4+1) = 0.8.
    assert average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(5 / 6)
    assert max_f1([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.8)
    assert max_f1([0, 1, 1], [0.2, 0.2, 0.2]) == pytest.approx(0.8), "one threshold: everything positive"
