import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adbench.detector import CategorySpec
from adbench_methods.autoencoder.detector import L2Autoencoder
from adbench_methods.autoencoder.ssim import SSIM_WINDOW, SSIMAutoencoder, ssim_map
from tests.helpers import skimage_ssim_map, smoke_auroc


def test_ssim_map_matches_scikit_image_away_from_the_border():
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(1, 1, 40, 40, generator=generator, dtype=torch.float64)
    reconstruction = F.avg_pool2d(target, 3, stride=1, padding=1) + 0.05 * torch.rand(
        1, 1, 40, 40, generator=generator, dtype=torch.float64
    )
    ours = ssim_map(reconstruction, target)[0].numpy()
    reference = skimage_ssim_map(reconstruction[0, 0].numpy(), target[0, 0].numpy())
    border = SSIM_WINDOW // 2  # the two libraries pad differently; inside, the windows are identical
    inner = (slice(border, -border),) * 2
    np.testing.assert_allclose(ours[inner], reference[inner], atol=1e-6)
    assert ours[inner].min() < 0.9, "the case must not be trivially similar"


def test_identical_images_have_zero_loss_and_a_zero_map():
    detector = SSIMAutoencoder(SSIMAutoencoder.default_params(CategorySpec("pin", "object", 1), "smoke"))
    image = torch.rand(2, 1, 32, 32)
    assert detector.reconstruction_loss(image, image).item() == pytest.approx(0, abs=1e-5)
    assert detector.anomaly_map(image, image).abs().max().item() < 1e-5
    assert detector.anomaly_map(image, 1 - image).min().item() > 0.5


def test_ssimae_is_l2ae_on_grayscale_with_the_ssim_loss():
    for kind in ("texture", "object"):
        category = CategorySpec("bottle", kind, 3)
        ssim_params = SSIMAutoencoder.default_params(category, "paper")
        assert ssim_params.channels == 1
        assert ssim_params.sigmoid_output  # the SSIM loss needs a bounded output (ssim.py)
        assert dataclasses.replace(ssim_params, channels=3, sigmoid_output=False) == (
            L2Autoencoder.default_params(category, "paper")
        )
    texture = SSIMAutoencoder.default_params(CategorySpec("carpet", "texture", 3), "paper")
    assert (texture.image_size, texture.patch_size, texture.patch_stride) == (512, 128, 30)


def test_trained_ssim_autoencoder_separates_synthetic_defects(tiny_root):
    untrained = smoke_auroc(SSIMAutoencoder, tiny_root, "washer", "object", steps=0)
    trained = smoke_auroc(SSIMAutoencoder, tiny_root, "washer", "object", steps=150)
    print(f"ssimae AUROC on washer (grey): untrained {untrained:.2f}, trained {trained:.2f}")
    assert untrained < 0.7 and trained > 0.9
