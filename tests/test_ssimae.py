import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adbench.data.cache import CategoryTensors
from adbench.detector import CategorySpec
from adbench.evaluation.sensitivity import input_sensitivity, is_collapsed
from adbench_methods.autoencoder.detector import AutoencoderParams, L2Autoencoder
from adbench_methods.autoencoder.ssim import SSIM_WINDOW, SSIMAutoencoder, ssim_map
from tests.helpers import skimage_ssim_map, smoke_auroc, smoke_fit
from tests.photos import PhotoSize, write_photo_dataset


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
        assert ssim_params.l2_weight == 1.0 and not ssim_params.sigmoid_output  # ssim.py says why
        shared = {k: v for k, v in dataclasses.asdict(ssim_params).items() if k != "l2_weight"}
        l2_params = L2Autoencoder.default_params(category, "paper")
        assert AutoencoderParams(**(shared | {"channels": 3})) == l2_params
    texture = SSIMAutoencoder.default_params(CategorySpec("carpet", "texture", 3), "paper")
    assert (texture.image_size, texture.patch_size, texture.patch_stride) == (512, 128, 30)


def test_trained_ssim_autoencoder_separates_synthetic_defects(tiny_root):
    untrained = smoke_auroc(SSIMAutoencoder, tiny_root, "washer", "object", steps=0)
    trained = smoke_auroc(SSIMAutoencoder, tiny_root, "washer", "object", steps=150)
    print(f"ssimae AUROC on washer (grey): untrained {untrained:.2f}, trained {trained:.2f}")
    assert untrained < 0.7 and trained > 0.9


@pytest.fixture(scope="module")
def photo_root(tmp_path_factory):
    return write_photo_dataset(tmp_path_factory.mktemp("photos") / "photos", size=PhotoSize(train_good=24))


def _default_fit(root, method, steps, **params):
    detector, tensors = smoke_fit(method, root, "gravel", "texture", steps, 16, budget="default", **params)
    return input_sensitivity(detector, CategoryTensors.as_float(tensors.validation))


def test_ssimae_follows_a_photograph_at_the_default_settings_and_ssim_alone_is_flagged(photo_root):
    """Gravel, a photograph of ordinary contrast: SSIM alone with a sigmoid output (ssimae before issue
    29) rebuilt it into one flat grey within 50 steps; with the squared error added it follows its input."""
    sensitivity = _default_fit(photo_root, SSIMAutoencoder, 200)
    flat = _default_fit(photo_root, SSIMAutoencoder, 100, l2_weight=0.0, sigmoid_output=True)
    print(f"gravel at default: sensitivity {sensitivity:.3f}; SSIM alone with a sigmoid {flat:.4f}")
    assert sensitivity > 0.1
    assert is_collapsed(flat), "the former configuration must be flagged"
