import dataclasses

import pytest
import torch

from adbench.data.cache import CategoryTensors, describe, load_category
from adbench.data.formats.mvtec_ad import read_category
from adbench.detector import CategorySpec, TrainingBudget
from adbench.evaluation.metrics.image import image_auroc
from adbench_methods.anogan.detector import AnoGAN, uniform_latents
from adbench_methods.anogan.latent_search import search_latents
from adbench_methods.anogan.networks import LATENT_DIM, DCGANDiscriminator, DCGANGenerator


@pytest.mark.parametrize(("side", "channels"), [(128, 3), (64, 1), (16, 1)])
def test_dcgan_shapes(side, channels):
    generator, discriminator = DCGANGenerator(channels, side, 8), DCGANDiscriminator(channels, side, 8)
    images = generator(torch.randn(2, LATENT_DIM))
    assert images.shape == (2, channels, side, side) and images.abs().max() <= 1
    assert discriminator(images).shape == (2,)
    assert discriminator.features(images).shape[1:] == (64, side // 16, side // 16)


def _parameters(module: torch.nn.Module) -> int:
    return sum(weight.numel() for weight in module.parameters())


def test_parameter_counts_are_the_leedoyup_networks():
    """Counted by hand from that code's layers (every layer with a bias, batch norm with scale)."""
    generator, discriminator = DCGANGenerator(3, 128, 64), DCGANDiscriminator(3, 128, 64)
    linear = 64 * 8 * 8 * 512 + 8 * 8 * 512
    deconvs = sum(cin * cout * 25 + cout for cin, cout in [(512, 256), (256, 128), (128, 64), (64, 3)])
    assert _parameters(generator) == linear + deconvs + 2 * (512 + 256 + 128 + 64) == 6_437_891
    convs = sum(cin * cout * 25 + cout for cin, cout in [(3, 64), (64, 128), (128, 256), (256, 512)])
    assert _parameters(discriminator) == convs + 2 * (128 + 256 + 512) + 8 * 8 * 512 + 1 == 4_341_121
    assert [m.kernel_size for m in generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)] == [
        (5, 5)
    ] * 4


def test_paper_settings():
    texture = AnoGAN.default_params(CategorySpec("carpet", "texture", 3), "paper")
    assert (texture.image_size, texture.patch_size, texture.width) == (512, 128, 64)
    obj = AnoGAN.default_params(CategorySpec("screw", "object", 1), "paper")
    assert (obj.image_size, obj.patch_size, obj.learning_rate) == (128, 128, 2e-4)
    assert (obj.search_steps, obj.search_learning_rate, obj.score_lambda) == (300, 0.02, 0.1)
    # 50 epochs of 10,000 views at batch 64 for every category, whatever its number of training images.
    for name, kind, train_images in [("toothbrush", "object", 60), ("carpet", "texture", 280)]:
        category = CategorySpec(name, kind, 3)
        budget = AnoGAN.default_budget(category, "paper")
        assert budget == TrainingBudget(steps=7_850, batch_size=64)
        assert AnoGAN(AnoGAN.default_params(category, "paper")).training_steps(budget, train_images) == 7_850


def _trained_networks(side=16, seed=0):
    torch.manual_seed(seed)
    detector = AnoGAN(AnoGAN.default_params(CategorySpec("pin", "object", 1), "smoke"))
    detector = AnoGAN(dataclasses.replace(detector.params, image_size=side, patch_size=side, width=8))
    detector.fit(torch.rand(16, 1, side, side), TrainingBudget(steps=5, batch_size=8))
    return detector.generator.eval(), detector.discriminator.eval()


def test_batched_search_takes_the_same_steps_as_one_search_per_image():
    generator, discriminator = _trained_networks()
    torch.manual_seed(1)
    images, initial = torch.rand(6, 1, 16, 16) * 2 - 1, torch.randn(6, LATENT_DIM)
    batched, batched_losses, _ = search_latents(
        generator, discriminator.features, images, initial, 40, 0.02, 0.1
    )
    for i in range(len(images)):
        alone, alone_loss, _ = search_latents(
            generator, discriminator.features, images[i : i + 1], initial[i : i + 1], 40, 0.02, 0.1
        )
        torch.testing.assert_close(batched[i : i + 1], alone, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(batched_losses[i : i + 1], alone_loss, rtol=1e-4, atol=1e-3)
    assert not torch.allclose(batched, initial), "the search must move the latents"


def test_search_recovers_an_image_that_the_generator_drew():
    generator, discriminator = _trained_networks()
    torch.manual_seed(2)
    target_latents = uniform_latents(4, torch.device("cpu"))
    with torch.no_grad():
        images = generator(target_latents)
    initial = uniform_latents(4, torch.device("cpu"))
    _, start, _ = search_latents(generator, discriminator.features, images, initial, 0, 0.02, 0.1)
    _, found, reconstructions = search_latents(
        generator, discriminator.features, images, initial, 200, 0.02, 0.1
    )
    print(f"search loss per image: start {start.mean():.3f}, after 200 steps {found.mean():.3f}")
    assert (found < 0.3 * start).all()
    assert (images - reconstructions).abs().mean() < 0.3 * (images - generator(initial)).abs().mean()


def test_search_refuses_networks_in_training_mode():
    generator, discriminator = _trained_networks()
    with pytest.raises(ValueError, match="eval mode"):
        search_latents(
            generator.train(),
            discriminator.features,
            torch.zeros(1, 1, 16, 16),
            torch.zeros(1, 64),
            1,
            0.02,
            0.1,
        )


def test_briefly_trained_anogan_separates_synthetic_defects(tiny_root):
    files = read_category(tiny_root, "sand", "texture")
    category = describe(files)

    def auroc(steps):
        torch.manual_seed(0)
        detector = AnoGAN(dataclasses.replace(AnoGAN.default_params(category, "smoke"), search_steps=50))
        tensors = load_category(files, category, detector.input_spec)
        if steps:
            detector.fit(CategoryTensors.as_float(tensors.train), TrainingBudget(steps, 8))
        return image_auroc(
            tensors.test_labels, detector.score(CategoryTensors.as_float(tensors.test)).image_scores
        )

    untrained, trained = auroc(0), auroc(100)
    print(f"anogan image AUROC on sand: untrained {untrained:.2f}, trained {trained:.2f}")
    assert untrained < 0.7 and trained > 0.8
