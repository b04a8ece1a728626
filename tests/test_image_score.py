"""The autoencoders' image score (methods/common/image_score.py): DRAEM's mean-filtered maximum."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from adbench.detector import CategorySpec
from adbench_methods.autoencoder.detector import L2Autoencoder
from adbench_methods.common.image_score import image_scores, mean_filter_window


def _maps() -> torch.Tensor:
    """Two 64 px maps: a defect-free one with one hot pixel (10) on a low floor, and a defect, a 6×6
    region of 1."""
    hot_pixel = torch.full((64, 64), 0.01)
    hot_pixel[20, 30] = 10.0
    defect = torch.full((64, 64), 0.01)
    defect[40:46, 10:16] = 1.0
    return torch.stack([hot_pixel, defect])


def test_the_window_is_draems_21_pixels_at_256_scaled_and_odd():
    assert [mean_filter_window(side) for side in (256, 512, 128, 64, 8)] == [21, 43, 11, 5, 1]


def test_a_region_outranks_one_hot_pixel_and_the_raw_maximum_ranks_the_other_way():
    filtered = image_scores(_maps(), "mean-filtered-max")
    # By hand: the 5×5 window over the hot pixel averages (10 + 24 × 0.01) / 25; inside the region, 1.
    assert filtered[0].item() == pytest.approx((10 + 24 * 0.01) / 25, rel=1e-6)
    assert filtered[1].item() == pytest.approx(1.0, rel=1e-6)
    assert torch.equal(image_scores(_maps(), "max"), torch.tensor([10.0, 1.0]))


def test_the_autoencoders_score_with_the_chosen_rule_and_keep_their_maps():
    category = CategorySpec("pin", "object", 1)
    params = dataclasses.replace(L2Autoencoder.default_params(category, "smoke"))
    assert params.image_score == "mean-filtered-max"
    torch.manual_seed(0)
    images = torch.rand(3, 1, 64, 64)
    filtered = L2Autoencoder(params)
    raw = L2Autoencoder(dataclasses.replace(params, image_score="max"))
    raw.network.load_state_dict(filtered.network.state_dict())
    scores, raw_scores = filtered.score(images), raw.score(images)
    np.testing.assert_array_equal(scores.anomaly_maps, raw_scores.anomaly_maps)
    maps = torch.from_numpy(scores.anomaly_maps)
    filtered_by_hand = image_scores(maps, "mean-filtered-max").numpy()
    np.testing.assert_allclose(scores.image_scores, filtered_by_hand, rtol=1e-6)
    np.testing.assert_allclose(raw_scores.image_scores, maps.flatten(1).amax(1).numpy(), rtol=1e-6)
    assert (scores.image_scores < raw_scores.image_scores).all()
