"""methods/fanogan: f-AnoGAN's networks as the authors' code builds them, its two training phases, its
score, and a detector that separates synthetic defects."""

import dataclasses
from itertools import pairwise

import pytest
import torch

from adbench.data.cache import CategoryTensors, describe, load_category
from adbench.data.formats.mvtec_ad import read_category
from adbench.detector import CategorySpec, TrainingBudget
from adbench.evaluation.metrics.image import image_auroc
from adbench.evaluation.sensitivity import input_sensitivity
from adbench_methods.fanogan.detector import FAnoGAN
from adbench_methods.fanogan.iterative import FAnoGANIterative, FAnoGANIterativeParams
from adbench_methods.fanogan.networks import LATENT_DIM, Critic, Encoder, Generator, block_widths


def test_the_authors_widths_at_64_px_and_one_more_block_per_doubling():
    assert block_widths(64, 64) == [512, 512, 256, 128, 64]  # wgangp_64x64.py: 8d, 8d, 4d, 2d, d
    assert block_widths(128, 64) == [512, 512, 512, 256, 128, 64]
    assert block_widths(32, 8) == [64, 32, 16, 8]
    with pytest.raises(ValueError, match="power of two of at least 32"):
        block_widths(48, 8)


def test_parameter_counts_at_the_codes_64_px_dim_64_on_grayscale():
    """Hand counts from wgangp_64x64.py's layer table: a residual block holds two normalisations (2 per
    channel), conv_1 3×3 without biases, conv_2 3×3 with, and a 1×1 shortcut with biases where the width
    or size changes; up-sampling blocks widen in conv_1, down-sampling blocks in conv_2."""

    def up(a, b):
        return 2 * a + 2 * b + 9 * a * b + (9 * b * b + b) + (a * b + b)

    def down(a, b):
        return 2 * a + 2 * a + 9 * a * a + (9 * a * b + b) + (a * b + b)

    widths = [512, 512, 256, 128, 64]  # 8d, 8d, 4d, 2d, d
    generator = (128 * 8192 + 8192) + sum(up(a, b) for a, b in pairwise(widths)) + 2 * 64 + 9 * 64 + 1
    trunk = (9 * 64 + 64) + sum(down(a, b) for a, b in pairwise(widths[::-1]))

    def count(module):
        return sum(parameter.numel() for parameter in module.parameters())

    assert count(Generator(1, 64, 64)) == generator
    assert count(Critic(1, 64, 64)) == trunk + 8192 + 1  # the linear score on 4×4×8d
    assert count(Encoder(1, 64, 64)) == trunk + 8192 * LATENT_DIM + LATENT_DIM


@pytest.mark.parametrize(("side", "channels"), [(64, 1), (128, 3)])
def test_shapes_features_and_a_bounded_latent(side, channels):
    generator, critic, encoder = (
        Generator(channels, side, 8),
        Critic(channels, side, 8),
        Encoder(channels, side, 8),
    )
    images = generator(torch.randn(3, LATENT_DIM))
    assert images.shape == (3, channels, side, side) and images.abs().max() <= 1
    assert critic(images).shape == (3,)
    assert critic.features(images).shape == (3, 4 * 4 * 8 * 8)  # 4×4×8d, before the linear score
    latents = encoder(images * 10)
    assert latents.shape == (3, LATENT_DIM) and latents.abs().max() <= 1  # tanh_fc


def test_paper_settings():
    texture = FAnoGAN.default_params(CategorySpec("carpet", "texture", 3), "paper")
    assert (texture.image_size, texture.patch_size, texture.width) == (512, 128, 64)
    obj = FAnoGAN.default_params(CategorySpec("screw", "object", 1), "paper")
    assert (obj.image_size, obj.patch_size, obj.critic_steps, obj.gradient_penalty) == (128, 128, 5, 10.0)
    assert (obj.learning_rate, obj.beta1, obj.beta2, obj.encoder_learning_rate, obj.kappa) == (
        1e-4,
        0.0,
        0.9,
        5e-5,
        1.0,
    )
    # AnoGAN's 7,850 generator updates on MVTec AD, then the code's 50,000 encoder updates.
    assert FAnoGAN.default_budget(CategorySpec("screw", "object", 1), "paper") == TrainingBudget(
        steps=57_850, batch_size=64
    )
    assert obj.encoder_share == 50_000 / 57_850
    assert FAnoGAN(dataclasses.replace(obj, width=2)).gan_steps(TrainingBudget(57_850, 64), 10) == 7_850
    # A budget of another length keeps the share: 500 steps are 68 GAN updates and 432 encoder updates.
    assert FAnoGAN(dataclasses.replace(obj, width=2)).gan_steps(TrainingBudget(500, 64), 10) == 68


def _small(encoder_share: float) -> FAnoGAN:
    params = FAnoGAN.default_params(CategorySpec("pin", "object", 1), "smoke")
    torch.manual_seed(0)
    return FAnoGAN(dataclasses.replace(params, image_size=32, patch_size=32, encoder_share=encoder_share))


def test_the_encoder_phase_leaves_the_gan_as_it_was_and_the_steps_are_reported_in_order():
    detector = _small(encoder_share=1.0)
    images = torch.rand(8, 1, 32, 32)
    before = {name: t.clone() for name, t in detector.state_tensors().items()}
    seen = []
    detector.fit(
        images, TrainingBudget(steps=4, batch_size=4), lambda step, losses: seen.append((step, losses))
    )
    after = detector.state_tensors()
    assert [step for step, _ in seen] == [0, 1, 2, 3] and all(set(loss) == {"encoder"} for _, loss in seen)
    gan = [name for name in before if not name.startswith("encoder.")]
    assert gan and all(torch.equal(before[name], after[name]) for name in gan)
    assert any(not torch.equal(before[name], after[name]) for name in before if name.startswith("encoder."))

    detector = _small(encoder_share=1 / 3)
    seen = []
    detector.fit(
        images, TrainingBudget(steps=3, batch_size=4), lambda step, losses: seen.append((step, losses))
    )
    assert [set(loss) for _, loss in seen] == [{"critic", "generator"}] * 2 + [{"encoder"}]


def test_the_score_is_the_image_and_feature_residual_and_the_map_the_pixel_residual():
    detector = _small(encoder_share=0.0)
    detector.load_state_tensors(detector.state_tensors())  # eval mode, as after loading
    images = torch.rand(3, 1, 32, 32)
    scores = detector.score(images)
    x = images * 2 - 1
    with torch.no_grad():
        reconstructions = detector.generator(detector.encoder(x))
        a_r = (x - reconstructions).pow(2).mean(dim=(1, 2, 3))
        a_d = (detector.critic.features(x) - detector.critic.features(reconstructions)).pow(2).mean(1)
    torch.testing.assert_close(
        torch.from_numpy(scores.image_scores), (a_r + a_d).double(), rtol=1e-5, atol=1e-6
    )
    assert scores.anomaly_maps is not None
    torch.testing.assert_close(torch.from_numpy(scores.anomaly_maps), (x - reconstructions).abs()[:, 0])


def test_briefly_trained_fanogan_and_its_iterative_mapping_follow_their_input_and_separate_defects(tiny_root):
    """At the default's learning rates, on 32-px washers: the encoder maps different images to different
    latents (its reconstructions follow the input: not a template), and the score separates defects; so
    does fanogan-iterative's search of 300 steps on the same G and D."""
    files = read_category(tiny_root, "washer", "object")
    category = describe(files)
    params = dataclasses.replace(
        FAnoGAN.default_params(category, "default"), image_size=32, patch_size=32, encoder_share=200 / 260
    )
    torch.manual_seed(0)
    detector = FAnoGAN(params)
    tensors = load_category(files, category, detector.input_spec)
    detector.fit(CategoryTensors.as_float(tensors.train), TrainingBudget(60 + 200, 8))
    test = CategoryTensors.as_float(tensors.test)
    auroc = image_auroc(tensors.test_labels, detector.score(test).image_scores)
    sensitivity = input_sensitivity(detector, test)
    print(f"fanogan on washer: image AUROC {auroc:.3f}, input sensitivity {sensitivity:.3f}")
    assert sensitivity > 0.05 and auroc > 0.8

    iterative = FAnoGANIterative(FAnoGANIterativeParams(**dataclasses.asdict(params), search_steps=300))
    iterative.adopt(detector)
    auroc = image_auroc(tensors.test_labels, iterative.score(test).image_scores)
    sensitivity = input_sensitivity(iterative, test)
    print(f"fanogan-iterative on washer: image AUROC {auroc:.3f}, input sensitivity {sensitivity:.3f}")
    # Better than chance (0.5) by a margin; on this 60-update GAN the search stays below the encoder.
    assert sensitivity > 0.05 and auroc > 0.65
