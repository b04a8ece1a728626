"""Pixel-level confidence intervals by resampling whole test images (adbench.evaluation.pixel_bootstrap)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from adbench.evaluation import pixel_bootstrap
from adbench.evaluation.bootstrap import stratified_counts
from adbench.evaluation.metrics.pixel import aupimo_per_image, label_regions, pixel_iou, pixel_metrics
from adbench.evaluation.metrics.spro import Defects, spro_metrics
from tests.helpers import adbench

THRESHOLD = 1.5


@pytest.fixture(scope="module")
def category():
    """12 defect-free and 14 anomalous 64 px maps: noise, defects a square brighter by 0.3-2.5."""
    rng = np.random.default_rng(0)
    normal, anomalous, size = 12, 14, 64
    labels = np.r_[np.zeros(normal, int), np.ones(anomalous, int)]
    masks = np.zeros((len(labels), size, size), np.uint8)
    maps = rng.normal(0, 1, masks.shape).astype(np.float32)
    for image in range(normal, len(labels)):
        y, x = rng.integers(10, 54, 2)
        half = int(rng.integers(3, 9))
        masks[image, y - half : y + half, x - half : x + half] = 1
        maps[image][masks[image] == 1] += rng.uniform(0.3, 2.5)
    return labels, maps, masks


def _image_counts(labels, resamples, seed):
    """(resamples, N): how often each test image is drawn, stratified as the bootstrap draws."""
    normal_counts, anomalous_counts = stratified_counts(labels, resamples, np.random.default_rng(seed))
    counts = np.zeros((resamples, len(labels)))
    counts[:, labels == 0], counts[:, labels == 1] = normal_counts, anomalous_counts
    return counts


def _exact(maps, masks):
    return pixel_metrics(maps, masks, label_regions(masks)) | {"pixel_iou": pixel_iou(maps, masks, THRESHOLD)}


def test_every_resample_equals_the_exact_metrics_of_the_resampled_images_up_to_the_binning(category):
    labels, maps, masks = category
    truth = masks != 0
    edges = pixel_bootstrap._thresholds(maps, truth, np.random.default_rng(1))
    histograms = pixel_bootstrap._Histograms(maps, truth, label_regions(masks), edges)
    iou_counts = pixel_bootstrap._iou_counts(maps, truth, THRESHOLD)
    counts = _image_counts(labels, 4, seed=5)
    binned = pixel_bootstrap._binned_metrics(counts, histograms, iou_counts)
    for resample in range(4):
        drawn = np.repeat(
            np.arange(len(labels)), counts[resample].astype(int)
        )  # an image drawn twice counts twice
        for metric, value in _exact(maps[drawn], masks[drawn]).items():
            assert binned[metric][resample] == pytest.approx(value, abs=1e-3), metric
    # Binning alone moves AUROC and AU-PRO by under 1e-5 here, AP and F1 (which read every defect
    # pixel's rank) by under 1e-3.
    whole = pixel_bootstrap._binned_metrics(np.ones((1, len(labels))), histograms, iou_counts)
    exact = _exact(maps, masks)
    assert whole["pixel_auroc"][0] == pytest.approx(exact["pixel_auroc"], abs=1e-5)
    assert whole["pixel_aupro_0.01"][0] == pytest.approx(exact["pixel_aupro_0.01"], abs=1e-5)


def test_intervals_hold_the_exact_value_and_aupimo_resamples_the_anomalous_images(category):
    labels, maps, masks = category
    exact = _exact(maps, masks)
    aupimo = np.where(labels == 1, np.linspace(0, 1, len(labels)), np.nan)
    exact["pixel_aupimo"] = float(np.nanmean(aupimo))
    intervals = pixel_bootstrap.pixel_intervals(
        labels, maps, masks, label_regions(masks), exact, seed=3, aupimo=aupimo, iou_threshold=THRESHOLD
    )
    assert set(intervals) == set(exact)
    for metric, (low, high) in intervals.items():
        assert low < exact[metric] < high, metric
        assert high - low > 0.02, f"{metric}: 26 images cannot pin a pixel metric down to 0.02"
    again = pixel_bootstrap.pixel_intervals(
        labels, maps, masks, label_regions(masks), exact, seed=3, aupimo=aupimo, iou_threshold=THRESHOLD
    )
    assert again == intervals, "seeded"
    # AUPIMO's resamples are means of the anomalous images' own values: the same counts, by hand.
    rng = np.random.default_rng([3, pixel_bootstrap._STREAM])
    pixel_bootstrap._thresholds(maps, masks != 0, rng)  # the draws that precede the resampling
    _, anomalous_counts = stratified_counts(labels, pixel_bootstrap.PIXEL_RESAMPLES, rng)
    means = anomalous_counts @ aupimo[labels == 1] / anomalous_counts.sum(axis=1)
    assert intervals["pixel_aupimo"] == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))


def test_wider_for_fewer_images(category):
    labels, maps, masks = category
    keep = np.r_[0:4, 12:16]
    few = pixel_bootstrap.pixel_intervals(
        labels[keep], maps[keep], masks[keep], label_regions(masks[keep]), _exact(maps[keep], masks[keep]), 0
    )
    many = pixel_bootstrap.pixel_intervals(labels, maps, masks, label_regions(masks), _exact(maps, masks), 0)
    assert few["pixel_auroc"][1] - few["pixel_auroc"][0] > many["pixel_auroc"][1] - many["pixel_auroc"][0]


def test_a_run_stores_pixel_intervals_and_says_when_it_skips_them(one_cell_run, tiny_root, tmp_path):
    results = pd.read_csv(one_cell_run / "results.csv").set_index("metric")
    for metric in ("pixel_auroc", "pixel_ap", "pixel_aupro_0.3", "pixel_iou"):
        low, value, high = results.loc[metric, ["ci_low", "value", "ci_high"]]
        assert low <= value <= high and high > low, metric
    assert np.isnan(results.loc["pixel_aupimo", "ci_low"]), "AUPIMO is undefined on 64 px images"
    thresholds = ["threshold_tpr", "threshold_tnr", "threshold_balanced_accuracy"]
    result = adbench(
        "run", "--methods", "l2ae", "--budget", "smoke", "--data", str(tiny_root), "--out", str(tmp_path),
        "--categories", "washer", "--name", "skip", "--pixel-ci-max-pixels", "1000",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    skipped = pd.read_csv(tmp_path / "skip" / "results.csv").set_index("metric")
    assert skipped.loc[["pixel_auroc", "pixel_iou"], "ci_low"].isna().all()
    assert skipped.loc["image_auroc", "ci_low"] <= skipped.loc["image_auroc", "value"], "image intervals stay"
    for table in (results, skipped):  # the protocol's rates are image-level: their intervals always stay
        low, value, high = (
            table.loc[thresholds, column].to_numpy() for column in ("ci_low", "value", "ci_high")
        )
        assert ((low <= value) & (value <= high)).all() and (high > low).any()
    manifest = json.loads((tmp_path / "skip" / "manifest.json").read_text())
    assert manifest["config"]["pixel_ci_max_pixels"] == 1000
    assert any("more than --pixel-ci-max-pixels 1,000" in w for w in manifest["cells"][0]["warnings"])


def test_aupimo_interval_in_a_category_large_enough_to_define_it():
    rng = np.random.default_rng(1)
    labels = np.r_[np.zeros(8, int), np.ones(8, int)]
    masks = np.zeros((16, 128, 128), np.uint8)
    masks[8:, 40:70, 40:70] = 1
    maps = rng.normal(0, 1, masks.shape).astype(np.float32) + 3.5 * masks
    aupimo = aupimo_per_image(maps, masks, labels)
    exact = pixel_metrics(maps, masks) | {"pixel_aupimo": float(np.nanmean(aupimo))}
    intervals = pixel_bootstrap.pixel_intervals(labels, maps, masks, label_regions(masks), exact, 0, aupimo)
    low, high = intervals["pixel_aupimo"]
    assert low <= exact["pixel_aupimo"] <= high


@pytest.fixture(scope="module")
def loco():
    """MVTec LOCO-like maps: 8 defect-free, 6 logical and 6 structural images; each anomalous image one
    or two single defects (the second overlapping the first), saturations relative and absolute."""
    rng = np.random.default_rng(4)
    size, types = 32, ["good"] * 8 + ["logical_anomalies"] * 6 + ["structural_anomalies"] * 6
    labels = np.array([t != "good" for t in types], dtype=int)
    maps = rng.normal(0, 1, (len(types), size, size)).astype(np.float32)
    images, pixel_lists, saturations = [], [], []
    for image in np.flatnonzero(labels):
        y, x = rng.integers(4, 24, 2)
        box = np.zeros((size, size), bool)
        box[y : y + 6, x : x + 6] = True
        maps[image][box] += rng.uniform(0.5, 3.0)
        for mask, saturation in ((box, 0.5 * 36), (box & (np.arange(size)[None, :] < x + 3), 10.0)):
            if image % 2 or saturation == 0.5 * 36:  # every other image holds the overlapping second
                images.append(image)
                pixel_lists.append(np.flatnonzero(mask.ravel()))
                saturations.append(min(saturation, mask.sum()))
    defects = Defects(
        np.array(images, np.int64),
        np.concatenate(pixel_lists).astype(np.int64),
        np.r_[0, np.cumsum([len(p) for p in pixel_lists])].astype(np.int64),
        np.array(saturations, np.float64),
    )
    masks = np.zeros(maps.shape, np.uint8)
    for d in range(len(defects)):
        masks[defects.image[d]].reshape(-1)[defects.pixels[defects.offsets[d] : defects.offsets[d + 1]]] = 1
    return labels, maps, masks, defects, np.array(types)


def _resampled_defects(defects: Defects, drawn: np.ndarray) -> Defects:
    """The single defects of the test set made of the images `drawn` (an image drawn twice, twice)."""
    images, pixels, saturations = [], [], []
    for position, image in enumerate(drawn):
        for d in np.flatnonzero(defects.image == image):
            images.append(position)
            pixels.append(defects.pixels[defects.offsets[d] : defects.offsets[d + 1]])
            saturations.append(defects.saturation[d])
    offsets = np.r_[0, np.cumsum([len(p) for p in pixels])].astype(np.int64)
    return Defects(np.array(images, np.int64), np.concatenate(pixels), offsets, np.array(saturations))


def test_every_spro_resample_equals_the_exact_aupro_saturated_of_the_resampled_images(loco):
    labels, maps, masks, defects, types = loco
    truth = masks != 0
    edges = pixel_bootstrap._thresholds(maps, truth, np.random.default_rng(1))
    histograms = pixel_bootstrap._Histograms(maps, truth, label_regions(masks), edges)
    single = pixel_bootstrap._defect_histograms(maps, defects, edges)
    counts = _image_counts(labels, 5, seed=2)
    binned = pixel_bootstrap._binned_spro(counts, histograms.normal, single, defects, types, labels)
    assert sorted(binned) == sorted(f"pixel_auspro_{limit}{suffix}" for limit in ("0.05", "0.3")
                                    for suffix in ("", "_logical", "_structural"))  # fmt: skip
    for resample in range(5):
        drawn = np.repeat(np.arange(len(labels)), counts[resample].astype(int))
        exact = spro_metrics(
            maps[drawn], masks[drawn], _resampled_defects(defects, drawn), types[drawn], labels[drawn]
        )
        for metric, value in exact.items():
            assert binned[metric][resample] == pytest.approx(value, abs=2e-3), (metric, resample)


def test_spro_intervals_hold_the_exact_values(loco):
    labels, maps, masks, defects, types = loco
    exact = spro_metrics(maps, masks, defects, types, labels)
    intervals = pixel_bootstrap.pixel_intervals(
        labels, maps, masks, label_regions(masks), exact, seed=0, defects=defects, defect_types=types
    )
    assert set(intervals) == set(exact)
    for metric, (low, high) in intervals.items():
        assert low <= exact[metric] <= high and high > low, metric
