"""methods/ganomaly: GANomaly's and Skip-GANomaly's networks as the authors' code builds them, their scores
by hand, their training, and detectors that separate synthetic defects."""

import dataclasses

import pytest
import torch

from adbench.data.cache import CategoryTensors, describe, load_category
from adbench.data.formats.mvtec_ad import read_category
from adbench.detector import CategorySpec, TrainingBudget
from adbench.evaluation.metrics.image import image_auroc
from adbench.evaluation.sensitivity import input_sensitivity
from adbench_methods.ganomaly.detector import GANomaly
from adbench_methods.ganomaly.networks import (
    LATENT_DIM,
    GANomalyDiscriminator,
    GANomalyGenerator,
    SkipGANomalyDiscriminator,
    UNetGenerator,
)
from adbench_methods.ganomaly.skip import SkipGANomaly


def _count(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def test_parameter_counts_at_the_codes_32_px_width_64_and_3_channels():
    """Hand counts from the codes' layer tables (4×4 kernels, no biases but the U-Net's last; batch norm
    holds 2 per channel)."""
    # DCGAN encoder: 3→64; 64→128 + BN; 128→256 + BN; 256→100 (4×4 valid).
    encoder = 3 * 64 * 16 + (64 * 128 * 16 + 2 * 128) + (128 * 256 * 16 + 2 * 256) + 256 * 100 * 16
    # DCGAN decoder: 100→256 (4×4) + BN; 256→128 + BN; 128→64 + BN; 64→3.
    decoder = (100 * 256 * 16 + 2 * 256) + (256 * 128 * 16 + 2 * 128) + (128 * 64 * 16 + 2 * 64) + 64 * 3 * 16
    assert (encoder, decoder) == (1_068_800, 1_068_928)
    assert _count(GANomalyGenerator(3, 32, 64)) == 2 * encoder + decoder
    # GANomaly's D: the encoder to 1 (its last convolution the classifier).
    assert _count(GANomalyDiscriminator(3, 32, 64)) == encoder - 256 * 100 * 16 + 256 * 1 * 16
    # Skip-GANomaly's D: the encoder to 100, then a 3×3 convolution to 1.
    assert _count(SkipGANomalyDiscriminator(3, 32, 64)) == encoder + 100 * 9
    # The U-Net at 32 px: five levels (innermost 512↔512; 256↔512; 128↔256; 64↔128; outermost 3↔64).
    unet = (
        (512 * 512 * 16 + 512 * 512 * 16 + 2 * 512)
        + (256 * 512 * 16 + 2 * 512 + 1024 * 256 * 16 + 2 * 256)
        + (128 * 256 * 16 + 2 * 256 + 512 * 128 * 16 + 2 * 128)
        + (64 * 128 * 16 + 2 * 128 + 256 * 64 * 16 + 2 * 64)
        + (3 * 64 * 16 + 128 * 3 * 16 + 3)
    )
    assert _count(UNetGenerator(3, 32, 64)) == unet
    # One more 512↔512 level per doubling of the side.
    assert _count(UNetGenerator(3, 64, 64)) == unet + 512 * 512 * 16 * 2 + 2 * 512 + 512 * 512 * 16 + 2 * 512


@pytest.mark.parametrize(("side", "channels"), [(32, 1), (64, 3), (128, 1)])
def test_shapes(side, channels):
    x = torch.rand(2, channels, side, side) * 2 - 1
    reconstruction, latent, relatent = GANomalyGenerator(channels, side, 8)(x)
    assert reconstruction.shape == x.shape and latent.shape == relatent.shape == (2, LATENT_DIM)
    probability, features = GANomalyDiscriminator(channels, side, 8)(x)
    assert probability.shape == (2,) and features.shape == (2, 8 * side // 8, 4, 4)
    assert UNetGenerator(channels, side, 8)(x).shape == x.shape
    probability, features = SkipGANomalyDiscriminator(channels, side, 8)(x)
    assert probability.shape == (2,) and features.shape == (2, LATENT_DIM, 1, 1)
    with pytest.raises(ValueError, match="power of two"):
        GANomalyGenerator(channels, 48, 8)


def _small(method, **changes):
    params = method.default_params(CategorySpec("pin", "object", 1), "smoke")
    torch.manual_seed(0)
    return method(dataclasses.replace(params, image_size=32, patch_size=32, **changes))


def test_ganomalys_score_is_the_latent_distance_and_its_map_the_pixel_residual():
    detector = _small(GANomaly)
    detector.load_state_tensors(detector.state_tensors())  # eval mode, as after loading
    images = torch.rand(3, 1, 32, 32)
    scores = detector.score(images)
    x = images * 2 - 1
    with torch.no_grad():
        latent = detector.generator.encoder(x)  # G_E(x)
        reconstruction = detector.generator.decoder(latent)  # G(x)
        relatent = detector.generator.reencoder(reconstruction)  # E(G(x))
    expected = (latent - relatent).flatten(1).pow(2).mean(dim=1)
    torch.testing.assert_close(torch.from_numpy(scores.image_scores), expected.double(), rtol=1e-5, atol=1e-7)
    assert scores.anomaly_maps is not None
    torch.testing.assert_close(torch.from_numpy(scores.anomaly_maps), (x - reconstruction).abs()[:, 0])


def test_skip_ganomalys_score_weighs_pixel_and_feature_residuals_by_lambda():
    detector = _small(SkipGANomaly)
    detector.load_state_tensors(detector.state_tensors())
    images = torch.rand(3, 1, 32, 32)
    scores = detector.score(images)
    x = images * 2 - 1
    with torch.no_grad():
        reconstruction = detector.generator(x)
        pixels = (x - reconstruction).pow(2).mean(dim=(1, 2, 3))
        features = (detector.discriminator(x)[1] - detector.discriminator(reconstruction)[1]).pow(2)
    expected = 0.9 * pixels + 0.1 * features.flatten(1).mean(dim=1)
    torch.testing.assert_close(torch.from_numpy(scores.image_scores), expected.double(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("method", [GANomaly, SkipGANomaly])
def test_an_images_score_uses_no_other_image(method):
    """Scored alone or among others (test images included), an image gets the same score: nothing of the
    test set enters it (no batch statistics, no scaling over the scored images)."""
    detector = _small(method)
    detector.fit(torch.rand(8, 1, 32, 32), TrainingBudget(steps=2, batch_size=4))
    images = torch.rand(5, 1, 32, 32)
    together = detector.score(images).image_scores
    alone = [detector.score(images[i : i + 1]).image_scores[0] for i in range(5)]
    torch.testing.assert_close(torch.tensor(together), torch.tensor(alone), rtol=1e-5, atol=1e-7)


def test_paper_settings():
    texture, obj = CategorySpec("carpet", "texture", 3), CategorySpec("screw", "object", 1)
    ganomaly = GANomaly.default_params(texture, "paper")
    assert (ganomaly.image_size, ganomaly.patch_size, ganomaly.width) == (512, 128, 64)
    assert (ganomaly.adversarial_weight, ganomaly.contextual_weight, ganomaly.encoder_weight) == (1, 50, 1)
    assert (ganomaly.learning_rate, ganomaly.beta1) == (2e-4, 0.5)
    skip = SkipGANomaly.default_params(obj, "paper")
    assert (skip.image_size, skip.patch_size, skip.width) == (128, 128, 64)
    assert (skip.adversarial_weight, skip.contextual_weight, skip.latent_weight, skip.score_lambda) == (
        1,
        40,
        1,
        0.9,
    )
    # The codes' 15 epochs, each of MVTec AD's 10,000 views, at batch 64.
    assert GANomaly.default_budget(obj, "paper") == TrainingBudget(steps=15 * 157, batch_size=64)
    assert SkipGANomaly.default_budget(texture, "paper") == TrainingBudget(steps=2_355, batch_size=64)


@pytest.mark.parametrize("method", [GANomaly, SkipGANomaly])
def test_a_step_updates_g_and_d_and_reports_their_losses(method):
    detector = _small(method)
    before = {name: tensor.clone() for name, tensor in detector.state_tensors().items()}
    seen = []
    detector.fit(
        torch.rand(8, 1, 32, 32), TrainingBudget(steps=1, batch_size=4), lambda _, losses: seen.append(losses)
    )
    after = detector.state_tensors()
    for network in ("generator.", "discriminator."):
        assert any(
            not torch.equal(before[name], after[name]) for name in before if name.startswith(network)
        ), network
    assert len(seen) == 1 and set(seen[0]) == set(method.loss_labels)


@pytest.mark.parametrize("method", [GANomaly, SkipGANomaly])
def test_briefly_trained_detectors_follow_their_input_and_separate_synthetic_defects(method, tiny_root):
    """At the paper's learning rate, 200 steps on 32-px washers: the reconstructions follow the input (not
    a template) and the score separates the defects better than chance."""
    files = read_category(tiny_root, "washer", "object")
    category = describe(files)
    params = dataclasses.replace(method.default_params(category, "default"), image_size=32, patch_size=32)
    torch.manual_seed(0)
    detector = method(params)
    tensors = load_category(files, category, detector.input_spec)
    detector.fit(CategoryTensors.as_float(tensors.train), TrainingBudget(200, 8))
    test = CategoryTensors.as_float(tensors.test)
    auroc = image_auroc(tensors.test_labels, detector.score(test).image_scores)
    sensitivity = input_sensitivity(detector, test)
    print(f"{method.name} on washer: image AUROC {auroc:.3f}, input sensitivity {sensitivity:.3f}")
    assert sensitivity > 0.05 and auroc > 0.65
